/* fuzz_vnd_resp_mailgun.c -- libFuzzer target: the mailgun adapter classifying any HTTP answer. */
#include "tests/fuzz/fuzz_vnd_common.h"
FZ_TARGET(fz_classify(3, d, n))
