/* test_msg.c -- unit tests for core/msg and core/hash: ids, state order, round trips. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "core/err.h"
#include "core/msg.h"

static void test_id_deterministic(void **state)
{
	(void)state;
	char a[MSG_ID_LEN + 1], b[MSG_ID_LEN + 1], c[MSG_ID_LEN + 1], d[MSG_ID_LEN + 1];
	msg_make_id("camp1", "sms", "+15555550100", a);
	msg_make_id("camp1", "sms", "+15555550100", b);
	msg_make_id("camp1", "sms", "+15555550101", c);
	msg_make_id("camp1s", "ms", "+15555550100", d); /* parts are length-delimited */
	assert_int_equal(strlen(a), MSG_ID_LEN);
	assert_string_equal(a, b);
	assert_string_not_equal(a, c);
	assert_string_not_equal(a, d);
	/* Stable across builds and machines: pinned value. */
	char e[MSG_ID_LEN + 1];
	msg_make_id("demo", "sms", "+12025550123", e);
	assert_string_equal(e, "7a5229f1ce0fea39e9e3b93d957a12a1");
}

static void test_state_order(void **state)
{
	(void)state;
	assert_true(msg_state_advances(MSG_ST_QUEUED, MSG_ST_ACCEPTED));
	assert_true(msg_state_advances(MSG_ST_ACCEPTED, MSG_ST_DELIVERED));
	assert_true(msg_state_advances(MSG_ST_RETRYING, MSG_ST_FAILED));
	assert_false(msg_state_advances(MSG_ST_SENT, MSG_ST_ACCEPTED));
	assert_false(msg_state_advances(MSG_ST_DELIVERED, MSG_ST_SENT));
	assert_false(msg_state_advances(MSG_ST_DELIVERED, MSG_ST_DELIVERED));
	assert_false(msg_state_advances(MSG_ST_FAILED, MSG_ST_DELIVERED));
	assert_false(msg_state_advances(MSG_ST_ACCEPTED, MSG_ST_ACCEPTED));
	for (int s = 0; s < MSG_ST__COUNT; s++) {
		msg_state_t p;
		assert_int_equal(msg_state_parse(msg_state_name((msg_state_t)s), &p), 0);
		assert_int_equal(p, s);
	}
	msg_state_t p;
	assert_int_equal(msg_state_parse("bogus", &p), TOCSIN_ERR_INVAL);
}

static void test_out_roundtrip(void **state)
{
	(void)state;
	buf_t b;
	buf_init(&b, 1 << 16);
	msg_out_t m = {.id = "00112233445566778899aabbccddeeff",
	               .campaign = "c1",
	               .channel = MSG_CH_SMS,
	               .to = "+15555550100",
	               .sender = "main",
	               .body = "Hi \"Ana\"\nmeet at 5",
	               .enc = "gsm7",
	               .segments = 1,
	               .created_ms = 1700000000000LL,
	               .expires_ms = 1700000600000LL};
	assert_int_equal(msg_out_encode(&m, &b), 0);
	msg_out_t r;
	json_t *hold;
	char err[128];
	assert_int_equal(msg_out_parse(b.p, b.len, &r, &hold, err, sizeof err), 0);
	assert_string_equal(r.id, m.id);
	assert_string_equal(r.body, m.body);
	assert_string_equal(r.to, m.to);
	assert_int_equal(r.channel, MSG_CH_SMS);
	assert_int_equal(r.expires_ms, m.expires_ms);
	assert_null(r.subject);
	json_decref(hold);
	buf_free(&b);
}

static void test_parse_rejects(void **state)
{
	(void)state;
	msg_out_t r;
	json_t *hold;
	char err[128];
	const char *bad[] = {"", "[]", "{\"v\":2,\"id\":\"x\",\"campaign\":\"c\",\"to\":\"t\"}",
	                     "{\"v\":1,\"campaign\":\"c\",\"to\":\"t\",\"channel\":\"sms\"}",
	                     "{\"v\":1,\"id\":\"x\",\"campaign\":\"c\",\"to\":\"t\",\"channel\":\"fax\"}",
	                     "{\"v\":1,\"id\":\"x\""};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(msg_out_parse(bad[i], strlen(bad[i]), &r, &hold, err, sizeof err),
		                 TOCSIN_ERR_INVAL);
		assert_null(hold);
		assert_true(strlen(err) > 0);
	}
}

static void test_status_roundtrip(void **state)
{
	(void)state;
	buf_t b;
	buf_init(&b, 1 << 16);
	msg_status_t s = {.id = "abc", .campaign = "c1", .channel = MSG_CH_SMS, .to = "+1555",
	                  .state = MSG_ST_ACCEPTED, .vendor = "twilio", .vendor_ref = "SM1",
	                  .latency_ms = 12, .attempt = 1, .ts_ms = 5};
	assert_int_equal(msg_status_encode(&s, &b), 0);
	assert_string_equal(b.p, "{\"v\":1,\"id\":\"abc\",\"campaign\":\"c1\",\"channel\":\"sms\","
	                         "\"to\":\"+1555\",\"state\":\"accepted\",\"vendor\":\"twilio\","
	                         "\"vendor_ref\":\"SM1\",\"latency_ms\":12,\"attempt\":1,\"ts_ms\":5}");
	msg_status_t r;
	json_t *hold;
	char err[128];
	assert_int_equal(msg_status_parse(b.p, b.len, &r, &hold, err, sizeof err), 0);
	assert_int_equal(r.state, MSG_ST_ACCEPTED);
	assert_string_equal(r.vendor_ref, "SM1");
	assert_int_equal(r.latency_ms, 12);
	json_decref(hold);
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_id_deterministic), cmocka_unit_test(test_state_order),
	    cmocka_unit_test(test_out_roundtrip),    cmocka_unit_test(test_parse_rejects),
	    cmocka_unit_test(test_status_roundtrip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
