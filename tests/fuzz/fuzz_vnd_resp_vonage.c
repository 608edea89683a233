/* fuzz_vnd_resp_vonage.c -- libFuzzer target: the vonage adapter classifying any HTTP answer. */
#include "tests/fuzz/fuzz_vnd_common.h"
FZ_TARGET(fz_classify(1, d, n))
