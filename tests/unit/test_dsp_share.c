/* test_dsp_share.c -- rate shares by backlog: the formula (alone, floor, proportion, sum 1), the peers' records (channel, self, tombstone, staleness, lease slots, refusals). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "core/err.h"
#include "dispatcher/dsp_share.h"

static void test_formula(void **state)
{
	(void)state;
	int64_t none[1] = {0};
	/* alone with a backlog, or every peer idle: the whole limit */
	assert_true(dsp_share_of(100, NULL, 0, 0.05) == 1.0);
	assert_true(dsp_share_of(100, none, 1, 0.05) == 1.0);
	/* nothing to send: the floor */
	assert_true(dsp_share_of(0, (int64_t[]){100}, 1, 0.05) == 0.05);
	/* equal backlogs: half each */
	assert_float_equal(dsp_share_of(500, (int64_t[]){500}, 1, 0.05), 0.5, 1e-9);
	/* 90% / 10%: 0.05 + 0.9 x 0.9 and 0.05 + 0.9 x 0.1, summing to 1 */
	double a = dsp_share_of(9000, (int64_t[]){1000}, 1, 0.05);
	double b = dsp_share_of(1000, (int64_t[]){9000}, 1, 0.05);
	assert_float_equal(a, 0.86, 1e-9);
	assert_float_equal(b, 0.14, 1e-9);
	assert_float_equal(a + b, 1.0, 1e-9);
	/* a tiny backlog keeps the floor */
	double tiny = dsp_share_of(1, (int64_t[]){1000000}, 1, 0.05);
	assert_true(tiny > 0.05 && tiny < 0.0501);
	/* many dispatchers: the floor shrinks to 1/k, the shares still sum to 1 */
	int64_t five[4] = {10, 10, 10, 10};
	double s = dsp_share_of(10, five, 4, 0.5);
	assert_float_equal(s, 0.2, 1e-9);
	int64_t three[2] = {300, 600};
	double t = dsp_share_of(100, three, 2, 0.05) +
	           dsp_share_of(300, (int64_t[]){100, 600}, 2, 0.05) +
	           dsp_share_of(600, (int64_t[]){100, 300}, 2, 0.05);
	assert_float_equal(t, 1.0, 1e-9);
}

static int rec(dsp_share_t *s, const char *key, const char *val, int64_t now)
{
	return dsp_share_record(s, key, strlen(key), val, val ? strlen(val) : 0, now);
}

static void test_records(void **state)
{
	(void)state;
	dsp_share_t *s = dsp_share_new(MSG_CH_SMS, "d-self");
	assert_non_null(s);
	int fresh = -1;
	/* nobody else: the whole limit */
	assert_true(dsp_share_get(s, 100, 0, &fresh) == 1.0);
	assert_int_equal(fresh, 0);
	/* its own record and another channel's count for nothing */
	assert_int_equal(rec(s, "d-self",
	                     "{\"v\":1,\"dispatcher\":\"d-self\",\"channel\":\"sms\",\"backlog\":5,\"ts_ms\":1}",
	                     0),
	                 0);
	assert_int_equal(rec(s, "d-mail",
	                     "{\"v\":1,\"dispatcher\":\"d-mail\",\"channel\":\"email\",\"backlog\":900,\"ts_ms\":1}",
	                     0),
	                 0);
	assert_true(dsp_share_get(s, 100, 0, &fresh) == 1.0);
	assert_int_equal(fresh, 0);
	/* a peer with 9 times the backlog */
	assert_int_equal(rec(s, "d-b",
	                     "{\"v\":1,\"dispatcher\":\"d-b\",\"channel\":\"sms\",\"backlog\":900,\"ts_ms\":1}",
	                     0),
	                 0);
	assert_float_equal(dsp_share_get(s, 100, 1000, &fresh), 0.14, 1e-9);
	assert_int_equal(fresh, 1);
	/* its next record replaces the first */
	assert_int_equal(rec(s, "d-b",
	                     "{\"v\":1,\"dispatcher\":\"d-b\",\"channel\":\"sms\",\"backlog\":100,\"ts_ms\":2}",
	                     1000),
	                 0);
	assert_float_equal(dsp_share_get(s, 100, 1000, NULL), 0.5, 1e-9);
	assert_int_equal(dsp_share_busy(s, 1000), 1);
	/* idle: the whole limit for the one with a backlog, the peer still fresh */
	assert_int_equal(rec(s, "d-b",
	                     "{\"v\":1,\"dispatcher\":\"d-b\",\"channel\":\"sms\",\"backlog\":0,\"ts_ms\":3}",
	                     2000),
	                 0);
	assert_true(dsp_share_get(s, 100, 2000, &fresh) == 1.0);
	assert_int_equal(fresh, 1);
	assert_int_equal(dsp_share_busy(s, 2000), 0); /* fresh, but nothing to send */
	/* stale after DSP_SHARE_STALE_MS without a record: forgotten */
	assert_int_equal(rec(s, "d-b",
	                     "{\"v\":1,\"dispatcher\":\"d-b\",\"channel\":\"sms\",\"backlog\":100,\"ts_ms\":4}",
	                     3000),
	                 0);
	assert_float_equal(dsp_share_get(s, 100, 3000 + DSP_SHARE_STALE_MS, NULL), 0.5, 1e-9);
	assert_true(dsp_share_get(s, 100, 3001 + DSP_SHARE_STALE_MS, &fresh) == 1.0);
	assert_int_equal(fresh, 0);
	/* a tombstone: gone at once */
	assert_int_equal(rec(s, "d-c",
	                     "{\"v\":1,\"dispatcher\":\"d-c\",\"channel\":\"sms\",\"backlog\":100,\"ts_ms\":5}",
	                     9000),
	                 0);
	assert_float_equal(dsp_share_get(s, 100, 9000, NULL), 0.5, 1e-9);
	assert_int_equal(rec(s, "d-c", NULL, 9000), 0);
	assert_true(dsp_share_get(s, 100, 9000, &fresh) == 1.0);
	dsp_share_free(s);
}

/* The leases as a test sees them: slot i is held by holder[i] ("" free). */
static int holds(void *ctx, int slot, const char *id)
{
	char(*holder)[16] = ctx;
	return slot < 4 && !strcmp(holder[slot], id);
}

/* With partition leases a record names its slot: a killed dispatcher's backlog counts no more
 * once its slot is free (dsp_share_drop_dead) or a newer record of its slot comes from the
 * dispatcher started in its place -- not DSP_SHARE_STALE_MS later. */
/* A record of peer id in slot (-1: none) with backlog, written at ts_ms, read at now. */
static int rec_slot(dsp_share_t *s, const char *id, int backlog, int ts_ms, int slot, int64_t now)
{
	char v[256], sl[32] = "";
	if (slot >= 0)
		snprintf(sl, sizeof sl, ",\"slot\":%d", slot);
	snprintf(v, sizeof v,
	         "{\"v\":1,\"dispatcher\":\"%s\",\"channel\":\"sms\",\"backlog\":%d,\"ts_ms\":%d%s}",
	         id, backlog, ts_ms, sl);
	return rec(s, id, v, now);
}

static void test_slots(void **state)
{
	(void)state;
	dsp_share_t *s = dsp_share_new(MSG_CH_SMS, "d-self");
	dsp_share_set_slot(s, 1);
	int fresh = -1;
	assert_int_equal(rec_slot(s, "d-a", 900, 100, 0, 0), 0);
	assert_float_equal(dsp_share_get(s, 100, 0, &fresh), 0.14, 1e-9);
	/* d-a died; d-b took slot 0 and says it has nothing it can send yet (a catch-up) */
	assert_int_equal(rec_slot(s, "d-b", 0, 200, 0, 10), 0);
	assert_true(dsp_share_get(s, 100, 10, &fresh) == 1.0);
	assert_int_equal(fresh, 1);
	/* a record of the dead one read late changes nothing */
	assert_int_equal(rec_slot(s, "d-a", 900, 150, 0, 20), 0);
	assert_true(dsp_share_get(s, 100, 20, &fresh) == 1.0);
	assert_int_equal(fresh, 1);
	/* d-b has a backlog now; a peer with no slot (the group protocol) has one too */
	assert_int_equal(rec_slot(s, "d-b", 100, 300, 0, 30), 0);
	assert_int_equal(rec_slot(s, "d-g", 100, 300, -1, 30), 0);
	assert_float_equal(dsp_share_get(s, 100, 30, &fresh), 1.0 / 3, 1e-9);
	assert_int_equal(fresh, 2);
	/* slot 0 held by d-b still: kept */
	char holder[4][16] = {"d-b", "d-self", "", ""};
	dsp_share_drop_dead(s, holds, holder);
	assert_float_equal(dsp_share_get(s, 100, 35, &fresh), 1.0 / 3, 1e-9);
	/* slot 0 found held by another (d-b died, d-c took it at once): d-b is gone at once,
	 * d-g (no slot) stays */
	snprintf(holder[0], sizeof holder[0], "d-c");
	dsp_share_drop_dead(s, holds, holder);
	assert_float_equal(dsp_share_get(s, 100, 40, &fresh), 0.5, 1e-9);
	assert_int_equal(fresh, 1);
	/* slot 2 free: its peer is gone too */
	assert_int_equal(rec_slot(s, "d-z", 100, 300, 2, 50), 0);
	assert_float_equal(dsp_share_get(s, 100, 50, &fresh), 1.0 / 3, 1e-9);
	dsp_share_drop_dead(s, holds, holder);
	assert_float_equal(dsp_share_get(s, 100, 50, &fresh), 0.5, 1e-9);
	assert_int_equal(fresh, 1);
	dsp_share_free(s);
}

static void test_refusals(void **state)
{
	(void)state;
	dsp_share_t *s = dsp_share_new(MSG_CH_SMS, "d-self");
	static const char *const bad[] = {
	    "not json",
	    "[1]",
	    "{\"v\":2,\"dispatcher\":\"d-x\",\"channel\":\"sms\",\"backlog\":5}",
	    "{\"v\":1,\"dispatcher\":\"d-x\",\"channel\":\"sms\",\"backlog\":-5}",
	    "{\"v\":1,\"dispatcher\":\"d-x\",\"channel\":\"sms\",\"backlog\":\"5\"}",
	    "{\"v\":1,\"dispatcher\":\"d-x\",\"channel\":\"fax\",\"backlog\":5}",
	    "{\"v\":1,\"dispatcher\":\"d-y\",\"channel\":\"sms\",\"backlog\":5}", /* not its key */
	    "{\"v\":1,\"channel\":\"sms\",\"backlog\":5}",
	    "{\"v\":1,\"dispatcher\":\"d-x\",\"channel\":\"sms\",\"backlog\":5,\"slot\":-1}",
	    "{\"v\":1,\"dispatcher\":\"d-x\",\"channel\":\"sms\",\"backlog\":5,\"slot\":256}",
	    "{\"v\":1,\"dispatcher\":\"d-x\",\"channel\":\"sms\",\"backlog\":5,\"slot\":\"0\"}",
	    "{\"v\":1,\"dispatcher\":\"d-x\",\"channel\":\"sms\",\"backlog\":5,\"ts_ms\":\"1\"}",
	    "{\"v\":1,\"dispatcher\":\"d-x\",\"channel\":\"sms\",\"backlog\":5,\"ts_ms\":-1}",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(rec(s, "d-x", bad[i], 0), TOCSIN_ERR_INVAL);
	/* no key, a key too long */
	assert_int_equal(dsp_share_record(s, NULL, 0, "{}", 2, 0), TOCSIN_ERR_INVAL);
	char longkey[200];
	memset(longkey, 'k', sizeof longkey - 1);
	longkey[sizeof longkey - 1] = 0;
	assert_int_equal(rec(s, longkey, "{}", 0), TOCSIN_ERR_INVAL);
	/* nothing was taken in */
	int fresh = -1;
	assert_true(dsp_share_get(s, 100, 0, &fresh) == 1.0);
	assert_int_equal(fresh, 0);
	/* a full table refuses a newcomer, then takes one once a peer went stale */
	char key[32], val[160];
	for (int i = 0; i < DSP_SHARE_MAX_PEERS; i++) {
		snprintf(key, sizeof key, "d-%d", i);
		snprintf(val, sizeof val,
		         "{\"v\":1,\"dispatcher\":\"%s\",\"channel\":\"sms\",\"backlog\":1}", key);
		assert_int_equal(rec(s, key, val, 0), 0);
	}
	assert_int_equal(rec(s, "d-new",
	                     "{\"v\":1,\"dispatcher\":\"d-new\",\"channel\":\"sms\",\"backlog\":1}", 0),
	                 TOCSIN_ERR_TOOBIG);
	assert_int_equal(rec(s, "d-new",
	                     "{\"v\":1,\"dispatcher\":\"d-new\",\"channel\":\"sms\",\"backlog\":1}",
	                     DSP_SHARE_STALE_MS + 1),
	                 0);
	dsp_share_free(s);
}

static void test_encode(void **state)
{
	(void)state;
	dsp_share_t *s = dsp_share_new(MSG_CH_EMAIL, "tocsin-dispatch-email-42");
	buf_t b;
	buf_init(&b, 1024);
	assert_int_equal(dsp_share_encode(s, 1234, 1700000000000, &b), 0);
	assert_int_equal(
	    b.len,
	    strlen("{\"v\":1,\"dispatcher\":\"tocsin-dispatch-email-42\",\"channel\":\"email\",\"backlog\":1234,\"ts_ms\":1700000000000}"));
	assert_memory_equal(
	    b.p,
	    "{\"v\":1,\"dispatcher\":\"tocsin-dispatch-email-42\",\"channel\":\"email\",\"backlog\":1234,\"ts_ms\":1700000000000}",
	    b.len);
	/* what one encodes the other reads */
	dsp_share_t *o = dsp_share_new(MSG_CH_EMAIL, "other");
	assert_int_equal(dsp_share_record(o, "tocsin-dispatch-email-42", 24, b.p, b.len, 0), 0);
	assert_float_equal(dsp_share_get(o, 1234, 0, NULL), 0.5, 1e-9);
	/* with a lease slot it is named last */
	dsp_share_set_slot(s, 3);
	assert_int_equal(dsp_share_encode(s, 7, 1700000000000, &b), 0);
	static const char withslot[] =
	    "{\"v\":1,\"dispatcher\":\"tocsin-dispatch-email-42\",\"channel\":\"email\",\"backlog\":7,\"ts_ms\":1700000000000,\"slot\":3}";
	assert_int_equal(b.len, strlen(withslot));
	assert_memory_equal(b.p, withslot, b.len);
	assert_int_equal(dsp_share_record(o, "tocsin-dispatch-email-42", 24, b.p, b.len, 0), 0);
	buf_free(&b);
	dsp_share_free(s);
	dsp_share_free(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_formula), cmocka_unit_test(test_records),
	    cmocka_unit_test(test_slots),   cmocka_unit_test(test_refusals),
	    cmocka_unit_test(test_encode),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
