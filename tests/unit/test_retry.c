/* test_retry.c -- unit tests for dispatcher/retry: backoff bounds, jitter spread, Retry-After, attempts, budget, expiry. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "core/cfg.h"
#include "core/err.h"
#include "dispatcher/retry.h"

static retry_t *mk(double budget, double min_per_s)
{
	char err[200];
	retry_t *r = retry_new_opts(6, 500, 30000, budget, min_per_s, 42, err, sizeof err);
	assert_non_null(r);
	return r;
}

static void test_backoff_bounds_and_jitter(void **state)
{
	(void)state;
	retry_t *r = mk(1, 1e6);
	static const int64_t caps[] = {500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000};
	for (int a = 0; a < 9; a++)
		assert_int_equal(retry_cap_ms(r, a), caps[a]);
	assert_int_equal(retry_cap_ms(r, 1000), 30000); /* no overflow */
	for (int a = 0; a < 5; a++) {
		msg_out_t m = {.attempt = a};
		int64_t lo = INT64_MAX, hi = -1, sum = 0;
		int quart[4] = {0};
		for (int i = 0; i < 4000; i++) {
			retry_decision_t d;
			assert_int_equal(retry_decide(r, &m, 1000000, 0, 0, &d), 0);
			assert_int_equal(d.verdict, RETRY_LATER);
			assert_string_equal(d.reason, "backoff");
			assert_int_equal(d.next_attempt, a + 1);
			assert_true(d.delay_ms >= 0 && d.delay_ms <= caps[a]);
			assert_int_equal(d.not_before_ms, 1000000 + d.delay_ms);
			lo = d.delay_ms < lo ? d.delay_ms : lo;
			hi = d.delay_ms > hi ? d.delay_ms : hi;
			sum += d.delay_ms;
			quart[d.delay_ms * 4 / (caps[a] + 1)]++;
		}
		/* full jitter: the whole range is used, roughly uniformly */
		assert_true(lo <= caps[a] / 50);
		assert_true(hi >= caps[a] - caps[a] / 50);
		double mean = (double)sum / 4000;
		assert_true(mean > caps[a] * 0.45 && mean < caps[a] * 0.55);
		for (int q = 0; q < 4; q++)
			assert_true(quart[q] > 850 && quart[q] < 1150);
	}
	retry_free(r);
	retry_free(NULL);
}

static void test_retry_after_and_attempts(void **state)
{
	(void)state;
	retry_t *r = mk(1, 1e6);
	retry_decision_t d;
	msg_out_t m = {.attempt = 0};
	/* Retry-After longer than the backoff wins */
	assert_int_equal(retry_decide(r, &m, 0, 7000, 0, &d), 0);
	assert_int_equal(d.verdict, RETRY_LATER);
	assert_int_equal(d.delay_ms, 7000);
	assert_string_equal(d.reason, "retry_after");
	/* ... also beyond retry_max_ms */
	m.attempt = 3;
	assert_int_equal(retry_decide(r, &m, 0, 60000, 0, &d), 0);
	assert_int_equal(d.delay_ms, 60000);
	/* a 429 keeps the attempt number and is never final for attempts */
	m.attempt = 5;
	assert_int_equal(retry_decide(r, &m, 0, 2000, 1, &d), 0);
	assert_int_equal(d.verdict, RETRY_LATER);
	assert_int_equal(d.next_attempt, 5);
	assert_true(d.delay_ms >= 2000);
	/* attempt 5 of max 6 deferred: final */
	assert_int_equal(retry_decide(r, &m, 0, 0, 0, &d), 0);
	assert_int_equal(d.verdict, RETRY_FINAL_ATTEMPTS);
	assert_string_equal(d.reason, "max_attempts");
	m.attempt = 4;
	assert_int_equal(retry_decide(r, &m, 0, 0, 0, &d), 0);
	assert_int_equal(d.verdict, RETRY_LATER);
	assert_int_equal(d.next_attempt, 5);
	retry_free(r);
}

static void test_expiry(void **state)
{
	(void)state;
	retry_t *r = mk(1, 1e6);
	retry_decision_t d;
	msg_out_t m = {.attempt = 0, .expires_ms = 10000};
	assert_int_equal(retry_expired(&m, 9999), 0);
	assert_int_equal(retry_expired(&m, 10000), 1);
	m.expires_ms = 0;
	assert_int_equal(retry_expired(&m, INT64_MAX), 0);
	m.expires_ms = 10000;
	assert_int_equal(retry_decide(r, &m, 10000, 0, 0, &d), 0);
	assert_int_equal(d.verdict, RETRY_FINAL_EXPIRED);
	assert_string_equal(d.reason, "expired");
	/* a Retry-After past the expiry: no point waiting */
	assert_int_equal(retry_decide(r, &m, 5000, 6000, 0, &d), 0);
	assert_int_equal(d.verdict, RETRY_FINAL_EXPIRED);
	assert_int_equal(retry_decide(r, &m, 5000, 4000, 0, &d), 0);
	assert_int_equal(d.verdict, RETRY_LATER);
	assert_true(d.not_before_ms < 10000);
	retry_free(r);
}

static void test_budget(void **state)
{
	(void)state;
	/* 20% of first attempts, 1 retry/s minimum: starts with 11 tokens */
	retry_t *r = mk(0.2, 1);
	retry_decision_t d;
	msg_out_t m = {.attempt = 0};
	int later = 0, parked = 0;
	for (int i = 0; i < 30; i++) {
		retry_decide(r, &m, 0, 0, 0, &d);
		if (d.verdict == RETRY_LATER)
			later++;
		if (d.verdict == RETRY_PARKED) {
			parked++;
			assert_string_equal(d.reason, "budget");
			/* parked, not dropped: it comes back after retry_max_ms or more */
			assert_true(d.delay_ms >= 30000 && d.delay_ms <= 60000);
			assert_int_equal(d.next_attempt, 1);
		}
	}
	assert_int_equal(later, 11);
	assert_int_equal(parked, 19);
	/* 429s never use the budget */
	retry_decide(r, &m, 0, 0, 1, &d);
	assert_int_equal(d.verdict, RETRY_LATER);
	/* 100 first attempts earn 20 retries */
	for (int i = 0; i < 100; i++)
		retry_note_send(r, 0);
	assert_true(retry_budget_left(r, 0) > 19.99 && retry_budget_left(r, 0) < 20.01);
	later = 0;
	for (int i = 0; i < 30; i++) {
		retry_decide(r, &m, 0, 0, 0, &d);
		later += d.verdict == RETRY_LATER;
	}
	assert_int_equal(later, 20);
	/* time refills at the minimum rate: 5 s -> 5 retries */
	assert_true(retry_budget_left(r, 5000) > 4.99 && retry_budget_left(r, 5000) < 5.01);
	/* a long quiet time refills only up to 10 s worth of the minimum (+1) */
	assert_true(retry_budget_left(r, 1000000) < 11.01);
	retry_free(r);
}

static void test_from_config(void **state)
{
	(void)state;
	const char *path = "/tmp/tocsin-test-retry.json";
	FILE *f = fopen(path, "w");
	fputs("{\"dispatcher\":{\"max_attempts\":3,\"retry_base_ms\":100,\"retry_max_ms\":400,"
	      "\"retry_budget\":0.5}}",
	      f);
	fclose(f);
	char err[256];
	cfg_t *c = cfg_load(path, err, sizeof err);
	assert_non_null(c);
	retry_t *r = retry_new(c, 7, err, sizeof err);
	assert_non_null(r);
	assert_int_equal(retry_cap_ms(r, 0), 100);
	assert_int_equal(retry_cap_ms(r, 5), 400);
	retry_decision_t d;
	msg_out_t m = {.attempt = 2};
	retry_decide(r, &m, 0, 0, 0, &d);
	assert_int_equal(d.verdict, RETRY_FINAL_ATTEMPTS);
	retry_free(r);
	cfg_free(c);
	f = fopen(path, "w");
	fputs("{\"dispatcher\":{\"retry_budget\":\"lots\"}}", f);
	fclose(f);
	c = cfg_load(path, err, sizeof err);
	assert_non_null(c);
	assert_null(retry_new(c, 7, err, sizeof err));
	assert_non_null(strstr(err, "dispatcher.retry_budget"));
	assert_non_null(strstr(err, path));
	cfg_free(c);
	remove(path);
	assert_null(retry_new_opts(0, 1, 1, 0.2, 1, 1, err, sizeof err));
	assert_null(retry_new_opts(3, 10, 5, 0.2, 1, 1, err, sizeof err));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_backoff_bounds_and_jitter),
	    cmocka_unit_test(test_retry_after_and_attempts),
	    cmocka_unit_test(test_expiry),
	    cmocka_unit_test(test_budget),
	    cmocka_unit_test(test_from_config),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
