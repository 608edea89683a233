/* fuzz_vnd_resp_sendgrid.c -- libFuzzer target: the sendgrid adapter classifying any HTTP answer. */
#include "tests/fuzz/fuzz_vnd_common.h"
FZ_TARGET(fz_classify(2, d, n))
