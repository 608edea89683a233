/* fuzz_vnd_wh_mailgun.c -- libFuzzer target: the mailgun webhook parser (signature check and events). */
#include "tests/fuzz/fuzz_vnd_common.h"
FZ_TARGET(fz_webhook(3, d, n))
