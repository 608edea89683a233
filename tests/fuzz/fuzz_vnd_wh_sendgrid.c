/* fuzz_vnd_wh_sendgrid.c -- libFuzzer target: the sendgrid webhook parser (signature check and events). */
#include "tests/fuzz/fuzz_vnd_common.h"
FZ_TARGET(fz_webhook(2, d, n))
