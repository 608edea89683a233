/* fuzz_vnd_wh_vonage.c -- libFuzzer target: the vonage webhook parser (signature check and events). */
#include "tests/fuzz/fuzz_vnd_common.h"
FZ_TARGET(fz_webhook(1, d, n))
