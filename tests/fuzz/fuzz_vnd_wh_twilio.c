/* fuzz_vnd_wh_twilio.c -- libFuzzer target: the twilio webhook parser (signature check and events). */
#include "tests/fuzz/fuzz_vnd_common.h"
FZ_TARGET(fz_webhook(0, d, n))
