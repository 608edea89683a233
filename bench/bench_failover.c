/* bench_failover.c -- failover time and flapping of the SLA monitor + router on a simulated clock, vs a breaker without hysteresis. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cfg.h"
#include "core/err.h"
#include "dispatcher/route.h"
#include "dispatcher/sla.h"

#define SIM_MS 120000
#define RATE 1000 /* messages per second, one per ms */
#define WIN 100   /* traffic share measured per 100 ms */
#define MAXLAT 12000

/* Vendor behaviour per scenario: outcome and latency of a send at t. */
typedef struct beh {
	int kind; /* 0 = 503s, 1 = slow, 2 = noisy errors */
	int64_t fail_from, fail_to;
} beh_t;

static void behave(const beh_t *b, int vendor, int64_t t, long seq, sla_outcome_t *o, int64_t *lat)
{
	*o = SLA_OK;
	*lat = 50;
	if (vendor != 0)
		return;
	if (b->kind == 2) { /* error rate alternating 10% / 30% by second, mean 20% = the threshold */
		int pct = (t / 1000) % 2 ? 30 : 10;
		if (seq % 10 < pct / 10)
			*o = SLA_ERROR;
		return;
	}
	if (t < b->fail_from || t >= b->fail_to)
		return;
	if (b->kind == 0) {
		*o = SLA_ERROR;
		*lat = 20;
	} else {
		*lat = 3000;
	}
}

typedef struct ev {
	int vendor;
	sla_outcome_t o;
	int64_t lat;
	int next;
} ev_t;

typedef struct res {
	int64_t failover_ms; /* first 100-ms window after fail_from with >= 99% on the secondary */
	int64_t failback_ms; /* after fail_to: first window with >= 99% back on the primary */
	long sent_primary_during; /* sends to the failing primary while failing */
	int transitions, to_healthy;
	char first[300];
} res_t;

static cfg_t *load(void)
{
	const char *doc = "{\"vendors\":["
	                  "{\"name\":\"primary\",\"kind\":\"twilio\",\"base_url\":\"http://127.0.0.1:1\","
	                  "\"senders\":{\"main\":\"+15005550006\"}},"
	                  "{\"name\":\"secondary\",\"kind\":\"vonage\",\"base_url\":\"http://127.0.0.1:1\","
	                  "\"senders\":{\"main\":\"15005550007\"}}],"
	                  "\"routes\":{\"sms\":{\"vendors\":[\"primary\",\"secondary\"]}}}";
	const char *path = "/tmp/tocsin-bench-failover.json";
	FILE *f = fopen(path, "w");
	if (!f)
		exit(1);
	fputs(doc, f);
	fclose(f);
	char err[256];
	cfg_t *c = cfg_load(path, err, sizeof err);
	remove(path);
	if (!c) {
		fprintf(stderr, "bench_failover: %s\n", err);
		exit(1);
	}
	return c;
}

/* hysteresis = 0: a plain breaker for the baseline: open when the window
 * breaches, closed again as soon as it does not (evaluated the same way). */
static void run(const cfg_t *c, const beh_t *b, int hysteresis, res_t *r)
{
	char err[256];
	route_t *rt = route_new(c, MSG_CH_SMS, err, sizeof err);
	sla_opts_t o;
	sla_opts_default(&o);
	sla_t *s[2];
	for (int i = 0; i < 2; i++)
		s[i] = sla_new(c->vendors[i].name, &o, err, sizeof err);
	static int head[SIM_MS + MAXLAT];
	static ev_t ev[SIM_MS + 10];
	memset(head, -1, sizeof head);
	memset(r, 0, sizeof *r);
	r->failover_ms = r->failback_ms = -1;
	int nev = 0;
	long win_cnt[2] = {0, 0}, nsent[2] = {0, 0};
	int plain_open = 0;
	msg_out_t m = {.channel = MSG_CH_SMS, .to = "+15551230000", .sender = "main", .segments = 1};
	for (int64_t t = 0; t < SIM_MS; t++) {
		/* completions due now */
		for (int e = head[t]; e >= 0; e = ev[e].next)
			sla_record(s[ev[e].vendor], t, ev[e].o, ev[e].lat * 1000);
		/* evaluate every 100 ms */
		if (t % 100 == 0) {
			if (hysteresis) {
				sla_transition_t tr;
				if (sla_tick(s[0], t, &tr)) {
					if (!r->transitions)
						sla_format(&tr, "primary", r->first, sizeof r->first);
					r->transitions++;
					r->to_healthy += tr.to == MSG_VH_HEALTHY;
				}
			} else {
				sla_stats_t st;
				sla_stats(s[0], t, &st);
				int bad = st.answers >= o.min_samples &&
				          (st.error_rate > o.error_rate || st.p95_ms > o.p95_ms);
				if (bad != plain_open) {
					plain_open = bad;
					r->transitions++;
					r->to_healthy += !bad;
					sla_apply(s[0], bad ? MSG_VH_OPEN : MSG_VH_HEALTHY, 1, t,
					          "plain", NULL);
				}
			}
		}
		/* one message per ms */
		int v = -1;
		if (route_pick(rt, &m, s, t, -1, &v) == 0) {
			sla_outcome_t oc;
			int64_t lat;
			behave(b, v, t, nsent[v]++, &oc, &lat);
			ev[nev] = (ev_t){v, oc, lat, head[t + lat]};
			head[t + lat] = nev++;
			win_cnt[v]++;
			if (v == 0 && t >= b->fail_from && t < b->fail_to)
				r->sent_primary_during++;
		}
		if ((t + 1) % WIN == 0) {
			long tot = win_cnt[0] + win_cnt[1];
			if (tot && r->failover_ms < 0 && t >= b->fail_from &&
			    win_cnt[1] * 100 >= tot * 99)
				r->failover_ms = t + 1 - b->fail_from;
			if (tot && r->failback_ms < 0 && t >= b->fail_to && win_cnt[0] * 100 >= tot * 99)
				r->failback_ms = t + 1 - b->fail_to;
			win_cnt[0] = win_cnt[1] = 0;
		}
	}
	for (int i = 0; i < 2; i++)
		sla_free(s[i]);
	route_free(rt);
}

int main(void)
{
	cfg_t *c = load();
	res_t a, al, n, nb;
	beh_t b503 = {0, 10000, 40000}, bslow = {1, 10000, 40000}, bnoise = {2, 0, SIM_MS};
	run(c, &b503, 1, &a);
	run(c, &bslow, 1, &al);
	run(c, &bnoise, 1, &n);
	run(c, &bnoise, 0, &nb);
	printf("bench_failover: %d msg/s simulated for %d s, primary + secondary, default sla options\n",
	       RATE, SIM_MS / 1000);
	printf("  503s from 10 s to 40 s: 99%% on secondary after %lld ms (target <= 2000); "
	       "%ld sends hit the failing primary; back on primary %lld ms after recovery\n",
	       (long long)a.failover_ms, a.sent_primary_during, (long long)a.failback_ms);
	printf("    first transition: %s\n", a.first);
	printf("  latency 3 s from 10 s: 99%% on secondary after %lld ms (target <= 2 windows = "
	       "10000); back %lld ms after recovery\n",
	       (long long)al.failover_ms, (long long)al.failback_ms);
	printf("  noisy errors around the threshold for 120 s: %d transitions, %d back to healthy; "
	       "baseline without hysteresis: %d transitions, %d back to healthy; ratio %.1f\n",
	       n.transitions, n.to_healthy, nb.transitions, nb.to_healthy,
	       (double)nb.transitions / (n.transitions ? n.transitions : 1));
	int ok = a.failover_ms >= 0 && a.failover_ms <= 2000 && al.failover_ms >= 0 &&
	         al.failover_ms <= 10000 && a.failback_ms > 0 && al.failback_ms > 0 &&
	         n.to_healthy == 0 && nb.transitions > n.transitions;
	printf("%s\n", ok ? "OK" : "FAILED");
	cfg_free(c);
	return ok ? 0 : 1;
}
