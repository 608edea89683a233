/* test_capacity.c -- core/capacity: exact figures of the config-only estimate for a small config
 * (which limit binds per vendor and route, the what-ifs, the email batch, the partition cap). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "core/capacity.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const small_cfg =
    "{\"vendors\": ["
    " {\"name\":\"a\",\"kind\":\"twilio\",\"base_url\":\"http://127.0.0.1:9\",\"rate_per_s\":100,"
    "  \"senders\":{\"main\":{\"from\":\"+15005550006\",\"rate_per_number\":30},"
    "             \"other\":{\"from\":\"+15005550008\"}}},"
    " {\"name\":\"b\",\"kind\":\"vonage\",\"base_url\":\"http://127.0.0.1:9\",\"max_in_flight\":10,"
    "  \"senders\":{\"main\":{\"from\":\"15005550007\"}}},"
    " {\"name\":\"sg\",\"kind\":\"sendgrid\",\"base_url\":\"http://127.0.0.1:9\",\"rate_per_s\":50,"
    "  \"senders\":{\"main\":{\"from\":\"a@example.org\"}}}],"
    " \"routes\":{\"sms\":{\"vendors\":[\"a\",\"b\"]},\"email\":{\"vendors\":[\"sg\"]}},"
    " \"dispatcher\":{\"max_in_flight\":256}}";

static cfg_t *load(void)
{
	char path[64], err[512];
	snprintf(path, sizeof path, "/tmp/tocsin-test-cap-%d.json", (int)getpid());
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(small_cfg, f);
	fclose(f);
	cfg_t *c = cfg_load(path, err, sizeof err);
	unlink(path);
	if (!c)
		fail_msg("%s", err);
	return c;
}

static double at(json_t *o, const char *k) { return json_number_value(json_object_get(o, k)); }

static json_t *chan(json_t *e, size_t i)
{
	return json_array_get(json_object_get(e, "channels"), i);
}

static void test_capacity_sms(void **st)
{
	(void)st;
	cfg_t *c = load();
	cap_opts_t o = {.audience = 10000, .segments = 2, .dispatchers = 1, .latency_ms = 100};
	json_t *e = cap_estimate(c, &o);
	json_t *sms = chan(e, 0);
	assert_string_equal(json_string_value(json_object_get(sms, "channel")), "sms");
	assert_string_equal(json_string_value(json_object_get(sms, "pool")), "main");
	json_t *a = json_array_get(json_object_get(sms, "vendors"), 0);
	json_t *b = json_array_get(json_object_get(sms, "vendors"), 1);
	/* a: 100/s account, 30/s for its one number, 64 in flight x 2 segments / 100 ms */
	assert_true(at(a, "vendor_rate") == 100 && at(a, "sender_rate") == 30);
	assert_true(at(a, "window_rate") == 1280 && at(a, "sustained") == 30);
	assert_string_equal(json_string_value(json_object_get(a, "binds")), "rate_per_number");
	/* b: no rate limits; 10 in flight x 2 segments / 100 ms = 200 segments/s */
	assert_true(json_is_null(json_object_get(b, "vendor_rate")));
	assert_true(json_is_null(json_object_get(b, "sender_rate")));
	assert_true(at(b, "sustained") == 200);
	assert_string_equal(json_string_value(json_object_get(b, "binds")), "max_in_flight");
	/* the route: 230 segments/s = 115 messages/s; 10,000 take 87.0 s */
	assert_true(at(sms, "units_per_s") == 230 && at(sms, "messages_per_s") == 115);
	assert_true(at(sms, "seconds") == 87.0);
	assert_true(at(sms, "dispatcher_window") == 5120 && at(sms, "dispatcher_cpu") == 40000);
	assert_string_equal(json_string_value(json_object_get(sms, "binds")),
	                    "vendor limits (a rate_per_number, b max_in_flight)");
	json_t *wi = json_object_get(sms, "what_if");
	/* one more number on a: 60/s there -> 130 messages/s, 76.9 s */
	json_t *n = json_object_get(wi, "number");
	assert_string_equal(json_string_value(json_object_get(n, "where")), "a");
	assert_true(at(n, "messages_per_s") == 130 && at(n, "seconds") == 76.9);
	/* a vendor like b (the best, 200/s) -> 430 segments/s = 215 messages/s, 46.5 s */
	json_t *v = json_object_get(wi, "vendor");
	assert_string_equal(json_string_value(json_object_get(v, "like")), "b");
	assert_true(at(v, "messages_per_s") == 215 && at(v, "seconds") == 46.5);
	/* a second dispatcher doubles b's window: 30 + 400 = 430 segments/s */
	json_t *d = json_object_get(wi, "dispatcher");
	assert_true(at(d, "messages_per_s") == 215);
	json_decref(e);

	/* sender pool "other": a has no rate_per_number there -> its window binds; b has no number */
	o.pool = "other";
	o.segments = 1;
	e = cap_estimate(c, &o);
	sms = chan(e, 0);
	b = json_array_get(json_object_get(sms, "vendors"), 1);
	assert_string_equal(json_string_value(json_object_get(b, "binds")), "no sender");
	assert_true(at(b, "sustained") == 0);
	assert_true(at(sms, "messages_per_s") == 100); /* a's 100/s account limit */
	json_decref(e);
	cfg_free(c);
}

static void test_capacity_email_and_partitions(void **st)
{
	(void)st;
	cfg_t *c = load();
	cap_opts_t o = {.audience = 10000, .segments = 3, .dispatchers = 20, .latency_ms = 100};
	json_t *e = cap_estimate(c, &o);
	json_t *em = chan(e, 1);
	assert_string_equal(json_string_value(json_object_get(em, "unit")), "emails");
	/* segments do not apply to email; 1,000 recipients per request */
	assert_true(at(em, "messages_per_s") == 50 && at(em, "seconds") == 200);
	json_t *sg = json_array_get(json_object_get(em, "vendors"), 0);
	assert_true(at(sg, "window_rate") == 12 * 64 * 1000 * 10);
	/* 20 dispatchers: only 12 get partitions, and the table says so */
	json_t *sms = chan(e, 0);
	assert_non_null(strstr(json_string_value(json_object_get(sms, "binds")),
	                       "only 12 of 20 dispatchers get partitions"));
	assert_true(at(sms, "dispatcher_cpu") == 12 * 20000.0 * 3);
	json_decref(e);
	char d[64];
	cap_duration(86.96, d, sizeof d);
	assert_string_equal(d, "87.0 s");
	cap_duration(200, d, sizeof d);
	assert_string_equal(d, "3 min 20 s");
	cap_duration(2.5 * 3600, d, sizeof d);
	assert_string_equal(d, "2 h 30 min");
	cfg_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(test_capacity_sms),
	                                   cmocka_unit_test(test_capacity_email_and_partitions)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
