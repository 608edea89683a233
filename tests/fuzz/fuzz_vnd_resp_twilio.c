/* fuzz_vnd_resp_twilio.c -- libFuzzer target: the twilio adapter classifying any HTTP answer. */
#include "tests/fuzz/fuzz_vnd_common.h"
FZ_TARGET(fz_classify(0, d, n))
