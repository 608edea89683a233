/* test_rl.c -- unit tests for core/rl: exact GCRA conformance, burst, segments, senders, share, adaptation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "core/cfg.h"
#include "core/err.h"
#include "core/rl.h"

#define MS 1000000LL
#define S 1000000000LL

static void test_gcra_exact(void **state)
{
	(void)state;
	char err[200];
	rl_t *rl = rl_new_rate(10, 0, 2, 0, err, sizeof err); /* T = 100 ms, 1 + 2 at once */
	assert_non_null(rl);
	int64_t w = -1;
	/* table: time, units, expected result, expected wait */
	static const struct {
		int64_t t;
		int n;
		int rc;
		int64_t wait;
	} steps[] = {
	    {0, 1, 0, 0},
	    {0, 1, 0, 0},
	    {0, 1, 0, 0},
	    {0, 1, TOCSIN_ERR_AGAIN, 100 * MS}, /* bucket full: next unit in exactly T */
	    {100 * MS - 1, 1, TOCSIN_ERR_AGAIN, 1},
	    {100 * MS, 1, 0, 0},
	    {100 * MS, 1, TOCSIN_ERR_AGAIN, 100 * MS},
	    {150 * MS, 2, TOCSIN_ERR_AGAIN, 150 * MS}, /* two units need two intervals */
	    {300 * MS, 2, 0, 0},
	    {1300 * MS, 3, 0, 0}, /* idle long enough: the full burst again */
	    {1300 * MS, 1, TOCSIN_ERR_AGAIN, 100 * MS},
	};
	for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
		int rc = rl_take(rl, -1, steps[i].n, steps[i].t, &w);
		if (rc != steps[i].rc || w != steps[i].wait)
			fail_msg("step %zu: rc %d wait %lld, want rc %d wait %lld", i, rc,
			         (long long)w, steps[i].rc, (long long)steps[i].wait);
	}
	/* wait is a query: it does not consume */
	assert_int_equal(rl_wait_ns(rl, -1, 1, 1300 * MS), 100 * MS);
	assert_int_equal(rl_wait_ns(rl, -1, 1, 1300 * MS), 100 * MS);
	assert_int_equal(rl_take(rl, -1, 0, 0, NULL), TOCSIN_ERR_INVAL);
	assert_int_equal(rl_take(rl, 0, 1, 0, NULL), TOCSIN_ERR_INVAL); /* no sender slots */
	rl_free(rl);
	rl_free(NULL);
}

static void test_oversize_and_rounding(void **state)
{
	(void)state;
	char err[200];
	rl_t *rl = rl_new_rate(10, 0, 2, 0, err, sizeof err);
	/* 5 segments > 1 + burst: allowed when idle, then costs 500 ms */
	assert_int_equal(rl_take(rl, -1, 5, 0, NULL), 0);
	assert_int_equal(rl_wait_ns(rl, -1, 1, 0), 300 * MS);
	assert_int_equal(rl_wait_ns(rl, -1, 5, 0), 500 * MS); /* oversize waits for idle */
	assert_int_equal(rl_take(rl, -1, 5, 500 * MS, NULL), 0);
	rl_free(rl);
	/* wait in ms rounds up so a timer never fires early */
	rl = rl_new_rate(3, 0, 0, 0, err, sizeof err);
	assert_int_equal(rl_take(rl, -1, 1, 0, NULL), 0);
	assert_int_equal(rl_wait_ns(rl, -1, 1, 0), 333333333);
	assert_int_equal(rl_wait_ms(rl, -1, 1, 0), 334);
	assert_int_equal(rl_wait_ms(rl, -1, 1, 333 * MS), 1);
	rl_free(rl);
	/* unlimited */
	rl = rl_new_rate(0, 0, 0, 0, err, sizeof err);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(rl_take(rl, -1, 10, 0, NULL), 0);
	assert_true(rl_rate(rl, 0) == 0);
	rl_free(rl);
	assert_null(rl_new_rate(-1, 0, 0, 0, err, sizeof err));
	assert_null(rl_new_rate(1, 0, -1, 0, err, sizeof err));
}

static void test_window_bound(void **state)
{
	(void)state;
	/* Greedy sender at 7/s with burst 3, asking every 13 ms: no half-open 1 s
	 * window may hold more than rate + burst = 10 units, and the long-run rate holds. */
	char err[200];
	rl_t *rl = rl_new_rate(7, 0, 3, 0, err, sizeof err);
	int64_t ts[400];
	int n = 0;
	for (int64_t t = 0; t < 40 * S && n < 400; t += 13 * MS)
		if (rl_take(rl, -1, 1, t, NULL) == 0)
			ts[n++] = t;
	assert_true(n >= 7 * 40 + 3 - 1 && n <= 7 * 40 + 3 + 1);
	for (int i = 0; i < n; i++) {
		int k = 0;
		for (int j = i; j < n && ts[j] < ts[i] + S; j++)
			k++;
		assert_true(k <= 10);
	}
	rl_free(rl);
}

/* A caller whose timers fire in whole ms and late (as the dispatcher's): at 884/s with burst 0,
 * it waits the rounded-up ms plus 1 ms more each time and takes what passes. Without the 2 ms
 * floor of tolerance each late wake-up was lost for good (about 500/s); with it the rate holds,
 * and no 1 s window holds more than rate + 2 ms worth (884 + 1). */
static void test_late_timers(void **state)
{
	(void)state;
	char err[200];
	rl_t *rl = rl_new_rate(884, 0, 0, 0, err, sizeof err);
	static int64_t ts[20000];
	int n = 0;
	int64_t t = 0;
	while (t < 10 * S && n < 20000) {
		int64_t w;
		while (n < 20000 && rl_take(rl, -1, 1, t, &w) == 0)
			ts[n++] = t;
		t += (w + MS - 1) / MS * MS + MS; /* the timer: whole ms, rounded up, then 1 ms late */
	}
	assert_true(n >= 884 * 10 - 10 && n <= 884 * 10 + 2);
	for (int i = 0, j = 0; i < n; i++) {
		while (j < n && ts[j] < ts[i] + S)
			j++;
		assert_true(j - i <= 884 + 1);
	}
	rl_free(rl);
}

/* The same caller at a share just under a half of 1,000/s (two dispatchers by backlog: 0.499
 * each): the floor is decided on the whole rate, so the 499/s share holds too (it got about
 * 390/s when the floor was decided on the shared rate, T = 2.004 ms), and no 1 s window holds
 * more than 499 + 1. A 400/s limiter of its own (unshared) stays exact: 400 in any 1 s. */
static void test_late_timers_share(void **state)
{
	(void)state;
	char err[200];
	static int64_t ts[20000];
	for (int k = 0; k < 2; k++) {
		rl_t *rl = rl_new_rate(k ? 400 : 1000, 0, 0, 0, err, sizeof err);
		if (!k)
			assert_int_equal(rl_set_share(rl, 499, 1000), 0);
		int rate = k ? 400 : 499, n = 0;
		int64_t t = 0;
		while (t < 10 * S && n < 20000) {
			int64_t w;
			while (n < 20000 && rl_take(rl, -1, 1, t, &w) == 0)
				ts[n++] = t;
			t += (w + MS - 1) / MS * MS + MS;
		}
		if (!k)
			assert_true(n >= rate * 10 - 10 && n <= rate * 10 + 2);
		else
			assert_true(n < rate * 10 * 9 / 10); /* exact: late wake-ups cost it */
		for (int i = 0, j = 0; i < n; i++) {
			while (j < n && ts[j] < ts[i] + S)
				j++;
			assert_true(j - i <= rate + (k ? 0 : 1));
		}
		rl_free(rl);
	}
}

static void test_senders(void **state)
{
	(void)state;
	char err[200];
	rl_t *rl = rl_new_rate(100, 1, 0, 2, err, sizeof err);
	assert_int_equal(rl_take(rl, 0, 1, 0, NULL), 0);
	int64_t w;
	assert_int_equal(rl_take(rl, 0, 1, 0, &w), TOCSIN_ERR_AGAIN);
	assert_int_equal(w, 1 * S);                             /* the number's own limit, 1/s */
	assert_int_equal(rl_take(rl, 1, 1, 10 * MS, NULL), 0);  /* another number is free */
	assert_int_equal(rl_take(rl, -1, 1, 20 * MS, NULL), 0); /* vendor-only */
	/* the vendor limit still binds sender traffic: 100/s, burst 0 */
	assert_int_equal(rl_wait_ns(rl, 1, 1, 20 * MS), 990 * MS);
	assert_int_equal(rl_take(rl, 2, 1, 0, NULL), TOCSIN_ERR_INVAL);
	rl_free(rl);
}

static void test_share(void **state)
{
	(void)state;
	char err[200];
	rl_t *rl = rl_new_rate(100, 0, 4, 0, err, sizeof err);
	assert_int_equal(rl_set_share(rl, 1, 4), 0); /* 25/s, burst 1 */
	assert_true(rl_share(rl) == 0.25);
	assert_true(rl_rate(rl, 0) == 25);
	assert_int_equal(rl_take(rl, -1, 1, 0, NULL), 0);
	assert_int_equal(rl_take(rl, -1, 1, 0, NULL), 0);
	int64_t w;
	assert_int_equal(rl_take(rl, -1, 1, 0, &w), TOCSIN_ERR_AGAIN);
	assert_int_equal(w, 40 * MS);
	assert_int_equal(rl_set_share(rl, 3, 4), 0); /* rebalance: 75/s */
	assert_true(rl_rate(rl, 0) == 75);
	assert_int_equal(rl_set_share(rl, 0, 4), 0); /* owns nothing: never */
	assert_true(rl_wait_ns(rl, -1, 1, 10 * S) == RL_NEVER);
	assert_true(rl_wait_ms(rl, -1, 1, 10 * S) == RL_NEVER);
	assert_int_equal(rl_set_share(rl, 5, 4), TOCSIN_ERR_INVAL);
	assert_int_equal(rl_set_share(rl, 1, 0), TOCSIN_ERR_INVAL);
	assert_int_equal(rl_set_share(rl, -1, 4), TOCSIN_ERR_INVAL);
	rl_free(rl);
}

static int near(double a, double b) { return a > b - 1e-9 && a < b + 1e-9; }

static void test_adaptive(void **state)
{
	(void)state;
	char err[200];
	rl_t *rl = rl_new_rate(100, 0, 0, 0, err, sizeof err);
	rl_throttled(rl, 0);
	assert_true(near(rl_factor(rl, 0), 0.5));
	assert_true(near(rl_rate(rl, 0), 50));
	rl_throttled(rl, 500 * MS); /* same storm: one decrease per second */
	assert_true(near(rl_factor(rl, 500 * MS), 0.55));
	rl_throttled(rl, 1 * S); /* factor 0.6 then halved */
	assert_true(near(rl_factor(rl, 1 * S), 0.3));
	assert_true(near(rl_factor(rl, 6 * S), 0.8)); /* +0.1 per second */
	assert_true(near(rl_factor(rl, 8 * S), 1.0));
	assert_true(near(rl_rate(rl, 100 * S), 100));
	for (int i = 0; i < 20; i++)
		rl_throttled(rl, 200 * S + i * S);
	/* a 429 every second: (f + 0.1) / 2 settles at 0.1 */
	assert_true(rl_factor(rl, 219 * S) > 0.1 - 1e-5 && rl_factor(rl, 219 * S) < 0.1 + 1e-5);
	/* the lower rate paces: ~10/s -> ~100 ms apart */
	assert_int_equal(rl_take(rl, -1, 1, 219 * S, NULL), 0);
	assert_true(rl_wait_ns(rl, -1, 1, 219 * S) > 99 * MS &&
	            rl_wait_ns(rl, -1, 1, 219 * S) < 101 * MS);
	rl_free(rl);

	/* unlimited vendor: learns the rate it was sending at */
	rl = rl_new_rate(0, 0, 0, 0, err, sizeof err);
	for (int i = 0; i < 100; i++)
		assert_int_equal(rl_take(rl, -1, 1, 100 * MS + i * MS, NULL), 0);
	rl_throttled(rl, 1050 * MS);
	assert_true(near(rl_rate(rl, 1050 * MS), 50));
	assert_int_equal(rl_take(rl, -1, 1, 1050 * MS, NULL), 0);
	assert_int_equal(rl_wait_ns(rl, -1, 1, 1050 * MS), 20 * MS);
	assert_true(rl_rate(rl, 7 * S) == 0); /* recovered: unlimited again */
	assert_int_equal(rl_wait_ns(rl, -1, 1, 7 * S), 0);
	/* Retry-After for the whole vendor */
	rl_hold_until(rl, 9 * S);
	assert_int_equal(rl_wait_ns(rl, -1, 1, 8 * S), 1 * S);
	assert_int_equal(rl_take(rl, -1, 1, 9 * S, NULL), 0);
	rl_free(rl);
}

/* The config in json, through a file as cfg_load() reads it. */
static cfg_t *cfg_from(const char *path, const char *json)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(json, f);
	fclose(f);
	char err[256];
	cfg_t *c = cfg_load(path, err, sizeof err);
	remove(path);
	return c;
}

static void test_from_config(void **state)
{
	(void)state;
	char err[256];
	cfg_t *c = cfg_from(
	    "/tmp/tocsin-test-rl.json",
	    "{\"vendors\":[{\"name\":\"tw\",\"kind\":\"twilio\",\"base_url\":\"http://127.0.0.1:1\","
	    "\"senders\":{\"main\":{\"from\":\"+15005550006\"},\"gotv\":\"+15005550007\"},"
	    "\"rate_per_s\":50,\"rate_per_sender\":1,\"burst\":2,\"rate_decrease\":0.25,"
	    "\"rate_min_fraction\":0.2},"
	    "{\"name\":\"bad\",\"kind\":\"twilio\",\"base_url\":\"http://127.0.0.1:1\","
	    "\"rate_decrease\":5}]}");
	assert_non_null(c);
	rl_t *rl = rl_new(cfg_vendor(c, "tw"), err, sizeof err);
	assert_non_null(rl);
	assert_int_equal(rl_sender(rl, "main"), 0);
	assert_int_equal(rl_sender(rl, "gotv"), 1);
	assert_int_equal(rl_sender(rl, "other"), -1);
	assert_int_equal(rl_sender(rl, NULL), -1);
	/* per-sender 1/s with burst 2: three at once, then 1 s apart */
	for (int i = 0; i < 3; i++)
		assert_int_equal(rl_take(rl, 1, 1, 0, NULL), 0);
	assert_int_equal(rl_wait_ns(rl, 1, 1, 0), 1 * S);
	rl_throttled(rl, 0);
	assert_true(near(rl_rate(rl, 0), 12.5));
	rl_throttled(rl, 1 * S); /* (0.25 + 0.1) * 0.25 < 0.2: the floor */
	assert_true(near(rl_factor(rl, 1 * S), 0.2));
	rl_free(rl);
	assert_null(rl_new(cfg_vendor(c, "bad"), err, sizeof err));
	assert_non_null(strstr(err, "vendor bad"));
	assert_non_null(strstr(err, "rate_decrease"));
	cfg_free(c);
}

/* senders.<pool>.rate_per_number: a pool's own number rate beside the vendor's rate_per_sender */
static void test_pool_rate(void **state)
{
	(void)state;
	char err[256];
	cfg_t *c = cfg_from(
	    "/tmp/tocsin-test-rl-pool.json",
	    "{\"vendors\":[{\"name\":\"tw\",\"kind\":\"twilio\",\"base_url\":\"http://127.0.0.1:1\","
	    "\"senders\":{\"long\":{\"from\":\"+15005550006\",\"rate_per_number\":1},"
	    "\"short\":{\"from\":\"12345\",\"rate_per_number\":100},\"main\":\"+15005550007\"},"
	    "\"rate_per_sender\":3},"
	    "{\"name\":\"bad\",\"kind\":\"twilio\",\"base_url\":\"http://127.0.0.1:1\","
	    "\"senders\":{\"p\":{\"from\":\"+15005550008\",\"rate_per_number\":\"fast\"}}}]}");
	assert_non_null(c);
	rl_t *rl = rl_new(cfg_vendor(c, "tw"), err, sizeof err);
	assert_non_null(rl);
	int lng = rl_sender(rl, "long"), sht = rl_sender(rl, "short"), mn = rl_sender(rl, "main");
	assert_true(lng >= 0 && sht >= 0 && mn >= 0);
	/* long: 1/s; short: 100/s (10 ms apart); main: the vendor's rate_per_sender 3/s */
	assert_int_equal(rl_take(rl, lng, 1, 0, NULL), 0);
	assert_int_equal(rl_wait_ns(rl, lng, 1, 0), 1 * S);
	assert_int_equal(rl_take(rl, sht, 1, 0, NULL), 0);
	assert_int_equal(rl_wait_ns(rl, sht, 1, 0), 10 * MS);
	assert_int_equal(rl_take(rl, mn, 1, 0, NULL), 0);
	assert_int_equal(rl_wait_ns(rl, mn, 1, 0), 333333333);
	rl_free(rl);
	assert_null(rl_new(cfg_vendor(c, "bad"), err, sizeof err));
	assert_non_null(strstr(err, "senders.p.\"rate_per_number\""));
	cfg_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_gcra_exact),
	    cmocka_unit_test(test_oversize_and_rounding),
	    cmocka_unit_test(test_window_bound),
	    cmocka_unit_test(test_late_timers),
	    cmocka_unit_test(test_late_timers_share),
	    cmocka_unit_test(test_senders),
	    cmocka_unit_test(test_share),
	    cmocka_unit_test(test_adaptive),
	    cmocka_unit_test(test_from_config),
	    cmocka_unit_test(test_pool_rate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
