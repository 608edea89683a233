/* test_trk_whack.c -- tracker/whack: a webhook's wait counts its delivery reports, reports of a closed wait are ignored, replay keys in flight are held once and let go of. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "core/clock.h"
#include "tracker/whack.h"

/* a wait never armed (no connection): closed ok only when every record was reported ok */
static void test_waits(void **st)
{
	(void)st;
	trk_whack_t *w = trk_whack_new(4, 5000);
	assert_non_null(w);
	uint64_t a = trk_whack_open(w), b = trk_whack_open(w);
	assert_true(a && b && a != b);
	trk_whack_add(w, a);
	trk_whack_add(w, a);
	trk_whack_report(w, trk_whack_opaque(a), 1);
	trk_whack_add(w, b);
	trk_whack_report(w, trk_whack_opaque(b), 0);    /* an error report */
	assert_int_equal(trk_whack_arm(w, b, NULL), 0); /* failed: answer now, no suspend */
	assert_int_equal(trk_whack_close(w, b), 0);
	assert_int_equal(trk_whack_close(w, a), 0); /* one record not reported */
	/* a report for a closed wait is ignored, also once its slot is reused */
	uint64_t c = trk_whack_open(w);
	trk_whack_report(w, trk_whack_opaque(a), 0);
	trk_whack_report(w, trk_whack_opaque(b), 0);
	trk_whack_add(w, c);
	trk_whack_add(w, c);
	trk_whack_unadd(w, c); /* its produce call failed */
	trk_whack_report(w, trk_whack_opaque(c), 1);
	assert_int_equal(trk_whack_arm(w, c, NULL), 0); /* all acknowledged: answer now */
	assert_int_equal(trk_whack_close(w, c), 1);
	trk_whack_report(w, NULL, 0); /* a record of no webhook (a control) */
	/* every slot taken: no wait (the webhook is answered 503) */
	uint64_t t[4];
	for (int i = 0; i < 4; i++)
		assert_true((t[i] = trk_whack_open(w)) != 0);
	assert_int_equal(trk_whack_open(w), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(trk_whack_close(w, t[i]), 1); /* nothing produced: ok */
	/* closing: no new wait */
	trk_whack_shutdown(w);
	assert_int_equal(trk_whack_open(w), 0);
	assert_int_equal(trk_whack_tick(w, clock_mono_ms() + 10000), 0);
	trk_whack_free(w);
	trk_whack_free(NULL);
}

/* keys: held once, let go of, the table's probe chains intact after deletions */
static void test_keys(void **st)
{
	(void)st;
	trk_whack_t *w = trk_whack_new(1, 5000);
	char k[64];
	enum { N = 40000 };
	for (int i = 0; i < N; i++) {
		snprintf(k, sizeof k, "SM%08d:delivered", i);
		assert_int_equal(trk_whack_key_hold(w, k), 1);
	}
	assert_int_equal(trk_whack_key_hold(w, "SM00000007:delivered"), 0);
	/* full at 3/4 of 65,536 */
	int full = 0;
	for (int i = N; i < 60000 && !full; i++) {
		snprintf(k, sizeof k, "SM%08d:delivered", i);
		full = trk_whack_key_hold(w, k) < 0;
	}
	assert_true(full);
	for (int i = N; i < 60000; i++) {
		snprintf(k, sizeof k, "SM%08d:delivered", i);
		trk_whack_key_drop(w, k);
	}
	for (int i = 0; i < N; i += 2) {
		snprintf(k, sizeof k, "SM%08d:delivered", i);
		trk_whack_key_drop(w, k);
	}
	for (int i = 0; i < N; i++) {
		snprintf(k, sizeof k, "SM%08d:delivered", i);
		assert_int_equal(trk_whack_key_held(w, k), i % 2);
	}
	trk_whack_key_drop(w, "never held");
	for (int i = 1; i < N; i += 2) {
		snprintf(k, sizeof k, "SM%08d:delivered", i);
		trk_whack_key_drop(w, k);
	}
	assert_int_equal(trk_whack_key_hold(w, "SM00000007:delivered"), 1);
	trk_whack_free(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_waits),
	    cmocka_unit_test(test_keys),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
