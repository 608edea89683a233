/* test_sla.c -- unit tests for dispatcher/sla: breaches, hysteresis, min open time, probe windows, ramp, drain. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "core/err.h"
#include "dispatcher/sla.h"

typedef struct run {
	sla_transition_t tr[256];
	int n;
} run_t;

/* Feed per_s answers a second from t0 to t1 (ms), spread evenly, with the given
 * error and timeout fractions (deterministic pattern) and latency; tick every
 * 250 ms and collect transitions. per_s 0 = only ticks. */
static void feed(sla_t *s, run_t *r, int64_t t0, int64_t t1, int per_s, double err_frac,
                 double to_frac, int64_t lat_ms)
{
	double acc_e = 0, acc_t = 0;
	int64_t step = per_s ? 1000 / per_s : 250;
	int64_t next_tick = t0;
	for (int64_t t = t0; t < t1; t += step) {
		if (per_s) {
			acc_e += err_frac;
			acc_t += to_frac;
			sla_outcome_t o = SLA_OK;
			if (acc_e >= 1 - 1e-9) {
				acc_e -= 1;
				o = SLA_ERROR;
			} else if (acc_t >= 1 - 1e-9) {
				acc_t -= 1;
				o = SLA_TIMEOUT;
			}
			sla_record(s, t, o, lat_ms * 1000);
		}
		while (next_tick <= t) {
			if (r->n < 256 && sla_tick(s, next_tick, &r->tr[r->n]))
				r->n++;
			next_tick += 250;
		}
	}
}

static sla_t *mk(void)
{
	sla_opts_t o;
	sla_opts_default(&o);
	char err[200];
	sla_t *s = sla_new("tw", &o, err, sizeof err);
	assert_non_null(s);
	return s;
}

static void test_defaults_and_parse(void **state)
{
	(void)state;
	sla_opts_t o;
	char err[200];
	assert_int_equal(sla_opts_parse(NULL, "tw", &o, err, sizeof err), 0);
	assert_true(o.p95_ms == 2000 && o.error_rate == 0.2 && o.timeout_rate == 0.1);
	assert_int_equal(o.window_s, 5);
	assert_int_equal(o.min_samples, 20);
	assert_int_equal(o.min_open_s, 5);
	assert_int_equal(o.probe_windows, 3);
	assert_int_equal(o.ramp_s, 10);
	json_t *j = json_loads("{\"p95_ms\": 800, \"window_s\": 2, \"probe_windows\": 1}", 0, NULL);
	assert_int_equal(sla_opts_parse(j, "tw", &o, err, sizeof err), 0);
	assert_true(o.p95_ms == 800);
	assert_int_equal(o.window_s, 2);
	assert_int_equal(o.probe_windows, 1);
	json_decref(j);
	j = json_loads("{\"p95\": 800}", 0, NULL);
	assert_int_equal(sla_opts_parse(j, "tw", &o, err, sizeof err), TOCSIN_ERR_CONFIG);
	assert_non_null(strstr(err, "vendor tw"));
	assert_non_null(strstr(err, "\"p95\""));
	json_decref(j);
	j = json_loads("{\"window_s\": 0}", 0, NULL);
	assert_int_equal(sla_opts_parse(j, "tw", &o, err, sizeof err), TOCSIN_ERR_CONFIG);
	assert_non_null(strstr(err, "window_s"));
	json_decref(j);
	j = json_loads("{\"error_rate\": \"high\"}", 0, NULL);
	assert_int_equal(sla_opts_parse(j, "tw", &o, err, sizeof err), TOCSIN_ERR_CONFIG);
	json_decref(j);
	j = json_loads("[]", 0, NULL);
	assert_int_equal(sla_opts_parse(j, "tw", &o, err, sizeof err), TOCSIN_ERR_CONFIG);
	json_decref(j);
	sla_free(NULL);
}

static void test_breach_error_rate(void **state)
{
	(void)state;
	sla_t *s = mk();
	run_t r = {0};
	feed(s, &r, 0, 10000, 100, 0, 0, 50);
	assert_int_equal(r.n, 0);
	assert_true(sla_fraction(s, 10000) == 1);
	/* every request fails (503s) from t = 10 s */
	feed(s, &r, 10000, 14000, 100, 1, 0, 50);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.tr[0].from, MSG_VH_HEALTHY);
	assert_int_equal(r.tr[0].to, MSG_VH_OPEN);
	assert_true(r.tr[0].ts_ms <= 11500); /* within 1.5 s of the first failure */
	assert_non_null(strstr(r.tr[0].reason, "error_rate"));
	assert_true(r.tr[0].stats.error_rate > 0.2);
	assert_true(r.tr[0].stats.answers >= 20);
	assert_int_equal(sla_state(s), MSG_VH_OPEN);
	assert_true(sla_fraction(s, 12000) == 0);
	char line[400];
	sla_format(&r.tr[0], "tw", line, sizeof line);
	assert_non_null(strstr(line, "vendor=tw from=healthy to=open reason=\"error_rate 0.2"));
	assert_non_null(strstr(line, " answers=4"));
	msg_vhealth_t h;
	sla_vhealth(&r.tr[0], "tw", "dsp-1", 1700000000000LL, &h);
	assert_int_equal(h.state, MSG_VH_OPEN);
	assert_string_equal(h.reason, r.tr[0].reason);
	assert_true(h.error_rate == r.tr[0].stats.error_rate && h.error_rate > 0.2);
	buf_t b;
	buf_init(&b, 4096);
	assert_int_equal(msg_vhealth_encode(&h, &b), 0);
	assert_non_null(strstr(b.p, "\"state\":\"open\""));
	assert_null(strstr(b.p, "actor")); /* a dispatcher decided: nobody named */
	buf_free(&b);
	sla_free(s);

	/* 30% errors: breached once the window average passes 20% */
	s = mk();
	memset(&r, 0, sizeof r);
	feed(s, &r, 0, 5000, 100, 0, 0, 50);
	feed(s, &r, 5000, 12000, 100, 0.3, 0, 50);
	assert_int_equal(r.n, 1);
	assert_true(r.tr[0].ts_ms >= 7500 && r.tr[0].ts_ms <= 9500);
	sla_free(s);
}

static void test_breach_latency_and_timeouts(void **state)
{
	(void)state;
	sla_t *s = mk();
	run_t r = {0};
	feed(s, &r, 0, 6000, 100, 0, 0, 100);
	feed(s, &r, 6000, 9000, 100, 0, 0, 3000); /* every answer takes 3 s now */
	assert_int_equal(r.n, 1);
	assert_non_null(strstr(r.tr[0].reason, "p95_ms"));
	assert_true(r.tr[0].stats.p95_ms >= 3000 && r.tr[0].stats.p95_ms <= 3100);
	assert_true(r.tr[0].stats.p50_ms >= 100 && r.tr[0].stats.p50_ms <= 104);
	assert_true(r.tr[0].ts_ms <= 7000);
	sla_free(s);

	s = mk();
	memset(&r, 0, sizeof r);
	feed(s, &r, 0, 4000, 100, 0, 0.15, 100); /* 15% timeouts > 10% */
	assert_int_equal(r.n, 1);
	assert_non_null(strstr(r.tr[0].reason, "timeout_rate"));
	assert_true(r.tr[0].stats.timeout_rate > 0.1);
	sla_free(s);

	/* too few samples to judge: 10 answers, all errors */
	s = mk();
	memset(&r, 0, sizeof r);
	feed(s, &r, 0, 5000, 2, 1, 0, 100);
	assert_int_equal(r.n, 0);
	/* 429s are never a breach */
	for (int i = 0; i < 500; i++)
		sla_record(s, 6000 + i, SLA_THROTTLED, 0);
	assert_int_equal(sla_tick(s, 6600, &r.tr[0]), 0);
	sla_stats_t st;
	sla_stats(s, 6600, &st);
	assert_int_equal(st.throttled, 500);
	sla_free(s);
}

static void test_receipts(void **state)
{
	(void)state;
	sla_opts_t o;
	sla_opts_default(&o);
	o.min_delivered = 0.8;
	char err[100];
	sla_t *s = sla_new("tw", &o, err, sizeof err);
	sla_transition_t t;
	for (int i = 0; i < 30; i++) {
		sla_record(s, 1000 + i, SLA_OK, 1000);
		sla_receipt(s, 1000 + i, i % 2);
	}
	assert_int_equal(sla_tick(s, 1500, &t), 1);
	assert_non_null(strstr(t.reason, "delivered"));
	assert_true(t.stats.delivered_ratio == 0.5);
	sla_free(s);
}

static void test_no_flapping(void **state)
{
	(void)state;
	/* Noise above the threshold in single seconds, mean below: never trips. */
	sla_t *s = mk();
	run_t r = {0};
	static const double pattern[] = {0.05, 0.25, 0.1, 0.3, 0.05};
	for (int sec = 0; sec < 120; sec++)
		feed(s, &r, sec * 1000, sec * 1000 + 1000, 100, pattern[sec % 5], 0, 50);
	assert_int_equal(r.n, 0);
	sla_free(s);

	/* Noise straddling the threshold (window average 0.18 / 0.22): it opens
	 * once, then its probe windows are never good enough (> 0.8 x threshold),
	 * so traffic never flaps back and forth. */
	s = mk();
	memset(&r, 0, sizeof r);
	for (int sec = 0; sec < 120; sec++) {
		double e = sec % 2 ? 0.3 : 0.1;
		msg_vh_state_t st = sla_state(s);
		int per_s = st == MSG_VH_HEALTHY ? 100 : st == MSG_VH_PROBING ? 20 : 0;
		feed(s, &r, sec * 1000, sec * 1000 + 1000, per_s, e, 0, 50);
		if (!per_s)
			feed(s, &r, sec * 1000, sec * 1000 + 1000, 0, 0, 0, 0);
	}
	int to_open = 0, to_healthy = 0;
	for (int i = 0; i < r.n; i++) {
		to_open += r.tr[i].from == MSG_VH_HEALTHY && r.tr[i].to == MSG_VH_OPEN;
		to_healthy += r.tr[i].to == MSG_VH_HEALTHY;
	}
	assert_int_equal(to_open, 1);
	assert_int_equal(to_healthy, 0);
	assert_int_not_equal(sla_state(s), MSG_VH_HEALTHY);
	sla_free(s);
}

static void test_recovery_cycle(void **state)
{
	(void)state;
	sla_t *s = mk();
	run_t r = {0};
	feed(s, &r, 0, 3000, 100, 1, 0, 50);
	assert_int_equal(r.n, 1);
	int64_t opened = r.tr[0].ts_ms;
	/* minimum time open: nothing before 5 s, probing right after */
	feed(s, &r, opened, opened + 4900, 0, 0, 0, 0);
	assert_int_equal(r.n, 1);
	feed(s, &r, opened + 4900, opened + 5300, 0, 0, 0, 0);
	assert_int_equal(r.n, 2);
	assert_int_equal(r.tr[1].to, MSG_VH_PROBING);
	int64_t probing = r.tr[1].ts_ms;
	assert_true(probing >= opened + 5000 && probing <= opened + 5250);
	assert_true(sla_fraction(s, probing) == 0.05);
	/* the old failures do not count against the probe: good trickle from here */
	feed(s, &r, probing, probing + 12000, 5, 0, 0, 50);
	assert_int_equal(r.n, 2); /* two good windows are not enough */
	feed(s, &r, probing + 12000, probing + 17500, 5, 0, 0, 50);
	assert_int_equal(r.n, 3);
	assert_int_equal(r.tr[2].to, MSG_VH_HEALTHY);
	assert_non_null(strstr(r.tr[2].reason, "3 good probe windows"));
	int64_t back = r.tr[2].ts_ms;
	assert_true(back >= probing + 15000 && back <= probing + 16250);
	/* traffic returns gradually over ramp_s = 10 s */
	assert_true(sla_fraction(s, back) == 0.05);
	double mid = sla_fraction(s, back + 5000);
	assert_true(mid > 0.52 && mid < 0.53);
	assert_true(sla_fraction(s, back + 10000) == 1);
	/* and stays healthy on good traffic */
	feed(s, &r, back, back + 30000, 100, 0, 0, 50);
	assert_int_equal(r.n, 3);
	sla_free(s);
}

static void test_bad_probe_reopens(void **state)
{
	(void)state;
	sla_t *s = mk();
	run_t r = {0};
	feed(s, &r, 0, 2000, 100, 1, 0, 50);
	feed(s, &r, 2000, 8000, 0, 0, 0, 0);
	assert_int_equal(r.n, 2);
	assert_int_equal(sla_state(s), MSG_VH_PROBING);
	int64_t p = r.tr[1].ts_ms;
	feed(s, &r, p, p + 7000, 5, 0.5, 0, 50); /* still failing */
	assert_int_equal(r.n, 3);
	assert_int_equal(r.tr[2].from, MSG_VH_PROBING);
	assert_int_equal(r.tr[2].to, MSG_VH_OPEN);
	assert_non_null(strstr(r.tr[2].reason, "probe window 1"));
	/* min open time starts again */
	int64_t o2 = r.tr[2].ts_ms;
	feed(s, &r, o2, o2 + 4900, 0, 0, 0, 0);
	assert_int_equal(r.n, 3);
	/* in the hysteresis band (0.18 > 0.8 x 0.2): probing goes on, never healthy */
	feed(s, &r, o2 + 4900, o2 + 5300, 0, 0, 0, 0);
	assert_int_equal(sla_state(s), MSG_VH_PROBING);
	int64_t p2 = r.tr[r.n - 1].ts_ms;
	feed(s, &r, p2, p2 + 40000, 50, 0.18, 0, 50);
	assert_int_equal(sla_state(s), MSG_VH_PROBING);
	/* a window without enough samples is neither good nor bad */
	int64_t t = p2 + 40000;
	feed(s, &r, t, t + 20000, 0, 0, 0, 0);
	assert_int_equal(sla_state(s), MSG_VH_PROBING);
	sla_free(s);
}

static void test_drain_and_apply(void **state)
{
	(void)state;
	sla_t *s = mk();
	run_t r = {0};
	sla_transition_t t;
	assert_int_equal(sla_apply(s, MSG_VH_DRAINED, 1, 1000, "operator drain", &t), 1);
	assert_int_equal(t.from, MSG_VH_HEALTHY);
	assert_int_equal(t.to, MSG_VH_DRAINED);
	assert_string_equal(t.reason, "operator drain");
	assert_true(sla_fraction(s, 1000) == 0);
	/* never re-opened automatically, whatever happens */
	feed(s, &r, 1000, 100000, 100, 0, 0, 50);
	assert_int_equal(r.n, 0);
	assert_int_equal(sla_state(s), MSG_VH_DRAINED);
	/* another dispatcher's automatic decision does not undrain */
	assert_int_equal(sla_apply(s, MSG_VH_HEALTHY, 0, 100000, "probe", &t), TOCSIN_ERR_STATE);
	assert_int_equal(sla_apply(s, MSG_VH_PROBING, 0, 100000, "probe", &t), TOCSIN_ERR_STATE);
	assert_int_equal(sla_state(s), MSG_VH_DRAINED);
	assert_int_equal(sla_apply(s, MSG_VH_DRAINED, 1, 100000, "again", &t), 0); /* same: no-op */
	/* undrain: back with a ramp */
	assert_int_equal(sla_apply(s, MSG_VH_HEALTHY, 1, 100000, "operator undrain", &t), 1);
	assert_true(sla_fraction(s, 100000) == 0.05);
	assert_true(sla_fraction(s, 110000) == 1);
	assert_int_equal(sla_apply(s, (msg_vh_state_t)99, 1, 0, "x", &t), TOCSIN_ERR_INVAL);
	sla_free(s);

	/* A remote "open": our timers start now, probing after min_open_s. */
	s = mk();
	memset(&r, 0, sizeof r);
	feed(s, &r, 0, 3000, 100, 0.15, 0, 50);
	assert_int_equal(sla_apply(s, MSG_VH_OPEN, 0, 3000, "remote", NULL), 1);
	assert_int_equal(sla_apply(s, MSG_VH_OPEN, 0, 3100, "remote echo", NULL), 0);
	feed(s, &r, 3000, 7900, 0, 0, 0, 0);
	assert_int_equal(r.n, 0);
	feed(s, &r, 7900, 8300, 0, 0, 0, 0);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.tr[0].to, MSG_VH_PROBING);
	/* A remote "healthy": numbers from before it no longer count. */
	sla_free(s);
	s = mk();
	memset(&r, 0, sizeof r);
	for (int i = 0; i < 19; i++)
		sla_record(s, 1000 + i, SLA_ERROR, 1000);
	assert_int_equal(sla_apply(s, MSG_VH_OPEN, 0, 1100, "remote", NULL), 1);
	assert_int_equal(sla_apply(s, MSG_VH_HEALTHY, 0, 1200, "remote", NULL), 1);
	for (int i = 0; i < 5; i++)
		sla_record(s, 2100 + i, SLA_ERROR, 1000);
	assert_int_equal(sla_tick(s, 2500, &t), 0); /* only 5 answers count, not 24 */
	sla_free(s);
}

static void test_stale_and_backwards(void **state)
{
	(void)state;
	sla_t *s = mk();
	sla_transition_t t;
	/* failures long ago no longer count, even without ticks in between */
	for (int i = 0; i < 50; i++)
		sla_record(s, 1000 + i, SLA_ERROR, 1000);
	for (int i = 0; i < 20; i++)
		sla_record(s, 100000 + i, SLA_OK, 1000);
	assert_int_equal(sla_tick(s, 100500, &t), 0);
	/* a time from before the ring must not wipe the newer second's numbers */
	sla_record(s, 100000 - 64000, SLA_ERROR, 1000);
	sla_stats_t st;
	sla_stats(s, 100500, &st);
	assert_int_equal(st.ok, 20);
	assert_int_equal(st.errors, 0);
	/* a one-second window with one probe window works too */
	sla_opts_t o;
	sla_opts_default(&o);
	o.window_s = 1;
	o.probe_windows = 1;
	o.min_open_s = 0;
	o.ramp_s = 0;
	char err[100];
	sla_t *q = sla_new("q", &o, err, sizeof err);
	for (int i = 0; i < 30; i++)
		sla_record(q, 500 + i, SLA_TIMEOUT, 10000000);
	assert_int_equal(sla_tick(q, 600, &t), 1);
	assert_int_equal(t.to, MSG_VH_OPEN);
	assert_int_equal(sla_tick(q, 600, &t), 1);
	assert_int_equal(t.to, MSG_VH_PROBING);
	for (int i = 0; i < 10; i++)
		sla_record(q, 1100 + i * 50, SLA_OK, 1000);
	assert_int_equal(sla_tick(q, 1900, &t), 0); /* window [1 s, 2 s) not complete */
	assert_int_equal(sla_tick(q, 2000, &t), 1);
	assert_int_equal(t.to, MSG_VH_HEALTHY);
	assert_true(sla_fraction(q, 2000) == 1); /* no ramp configured */
	sla_free(q);
	sla_free(s);
}

/* A vendor that stops answering: requests in flight past p95_ms with no answer
 * for p95_ms open it at once, long before timeout_ms would count them. */
static void test_hung(void **state)
{
	(void)state;
	sla_t *s = mk();
	run_t r = {0};
	feed(s, &r, 0, 5000, 200, 0, 0, 50); /* 1000 good answers in the window */
	sla_transition_t t;
	/* 64 in flight, none older than p95_ms (2000): nothing */
	sla_overdue(s, 0, 1500);
	assert_int_equal(sla_tick(s, 6500, &t), 0);
	/* 4 past p95_ms: below probe_min_samples (5) */
	sla_overdue(s, 4, 2100);
	assert_int_equal(sla_tick(s, 7000, &t), 0);
	/* an answer came within p95_ms: slow, not hung */
	sla_record(s, 6000, SLA_OK, 50000);
	sla_overdue(s, 64, 2100);
	assert_int_equal(sla_tick(s, 7900, &t), 0);
	/* nothing answered for p95_ms, 64 past it: open */
	assert_int_equal(sla_tick(s, 8000, &t), 1);
	assert_int_equal(t.to, MSG_VH_OPEN);
	assert_non_null(strstr(t.reason, "p95_ms 2000: hung, 64 requests in flight past it"));
	assert_int_equal(sla_state(s), MSG_VH_OPEN);
	sla_free(s);
	/* p95_ms 0 (not checked): never hung */
	sla_opts_t o;
	sla_opts_default(&o);
	o.p95_ms = 0;
	char err[100];
	s = sla_new("tw", &o, err, sizeof err);
	sla_overdue(s, 64, 60000);
	assert_int_equal(sla_tick(s, 60000, &t), 0);
	sla_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults_and_parse),
	    cmocka_unit_test(test_breach_error_rate),
	    cmocka_unit_test(test_breach_latency_and_timeouts),
	    cmocka_unit_test(test_receipts),
	    cmocka_unit_test(test_no_flapping),
	    cmocka_unit_test(test_recovery_cycle),
	    cmocka_unit_test(test_bad_probe_reopens),
	    cmocka_unit_test(test_drain_and_apply),
	    cmocka_unit_test(test_stale_and_backwards),
	    cmocka_unit_test(test_hung),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
