/* bench_rl.c -- rate precision of the GCRA limiter on a simulated 20 s clock at 500 segments/s, vs a fixed-window counter. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "core/rl.h"

#define RATE 500
#define BURST 10
#define SECONDS 20
#define NSENDERS 50
#define SENDER_RATE 20
#define NS 1000000000LL
#define MAXEV (RATE * SECONDS + 1000)

typedef struct ev {
	int64_t t;
	int units;
	int sender;
} ev_t;

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * NS + ts.tv_nsec;
}

/* Segments of message i: a fixed mix of 1, 2 and 3-segment SMS (avg 1.6). */
static int segs(long i) { return i % 5 == 0 ? 3 : i % 5 == 1 ? 2 : 1; }

/* Largest sum of units in any half-open window [t, t + width) (of sender s, or all when s < 0). */
static long max_win(const ev_t *e, long n, int s, int64_t width)
{
	long best = 0, sum = 0, j = 0;
	for (long i = 0; i < n; i++) {
		if (s >= 0 && e[i].sender != s)
			continue;
		while (j < n && e[j].t < e[i].t + width) {
			if (s < 0 || e[j].sender == s)
				sum += e[j].units;
			j++;
		}
		if (sum > best)
			best = sum;
		sum -= e[i].units;
	}
	return best;
}

static long max_window(const ev_t *e, long n, int s) { return max_win(e, n, s, NS); }

static long units_in(const ev_t *e, long n, int64_t end)
{
	long u = 0;
	for (long i = 0; i < n && e[i].t < end; i++)
		u += e[i].units;
	return u;
}

/* Greedy demand through the GCRA limiter; the caller sleeps exactly the wait
 * it is told (ms_timers: rounded up to whole ms, as a dispatcher timer does). */
static long run_gcra(ev_t *e, int ms_timers, long *calls)
{
	char err[200];
	rl_t *rl = rl_new_rate(RATE, SENDER_RATE, BURST, NSENDERS, err, sizeof err);
	if (!rl) {
		fprintf(stderr, "bench_rl: %s\n", err);
		exit(1);
	}
	long n = 0, i = 0;
	*calls = 0;
	for (int64_t t = 0; t < SECONDS * NS && n < MAXEV;) {
		int s = (int)(i % NSENDERS), u = segs(i);
		int64_t w = 0;
		(*calls)++;
		int rc = rl_take(rl, s, u, t, &w);
		if (rc == 0) {
			e[n++] = (ev_t){t, u, s};
			i++;
			continue;
		}
		if (rc != TOCSIN_ERR_AGAIN || w <= 0 || w == RL_NEVER) {
			fprintf(stderr, "bench_rl: unexpected rc %d wait %lld\n", rc, (long long)w);
			exit(1);
		}
		t += ms_timers ? (w + 999999) / 1000000 * 1000000 : w;
	}
	rl_free(rl);
	return n;
}

/* Baseline: a fixed-window counter (RATE + BURST units per calendar second),
 * the common naive limiter; waits until the next second when full. */
static long run_fixed(ev_t *e, long *calls)
{
	long n = 0, i = 0, used = 0;
	int64_t win = 0;
	*calls = 0;
	for (int64_t t = 0; t < SECONDS * NS && n < MAXEV;) {
		int u = segs(i);
		(*calls)++;
		if (t / NS != win) {
			win = t / NS;
			used = 0;
		}
		if (used + u <= RATE + BURST) {
			used += u;
			e[n++] = (ev_t){t, u, (int)(i % NSENDERS)};
			i++;
			/* spread within the second as a paced sender would not: send as fast as allowed */
			continue;
		}
		t = (win + 1) * NS - 1000000; /* just before the boundary, then across it */
		if (t / NS == win)
			t += 1000000;
	}
	return n;
}

int main(void)
{
	static ev_t eg[MAXEV], em[MAXEV], ef[MAXEV];
	long cg, cm, cf, ng = 0, nm, nf = 0;
	/* Timing: best of 30 repetitions each, so a busy machine disturbs it less. */
	double ns_g = 1e30, ns_f = 1e30;
	for (int rep = 0; rep < 30; rep++) {
		int64_t t0 = mono_ns();
		ng = run_gcra(eg, 0, &cg);
		int64_t t1 = mono_ns();
		nf = run_fixed(ef, &cf);
		int64_t t2 = mono_ns();
		if ((double)(t1 - t0) / (double)cg < ns_g)
			ns_g = (double)(t1 - t0) / (double)cg;
		if ((double)(t2 - t1) / (double)cf < ns_f)
			ns_f = (double)(t2 - t1) / (double)cf;
	}
	nm = run_gcra(em, 1, &cm);

	double want = (double)RATE * SECONDS;
	double ach_g = (double)units_in(eg, ng, SECONDS * NS);
	double ach_m = (double)units_in(em, nm, SECONDS * NS);
	double ach_f = (double)units_in(ef, nf, SECONDS * NS);
	long wg = max_window(eg, ng, -1), wm = max_window(em, nm, -1), wf = max_window(ef, nf, -1);
	long ws = 0;
	for (int s = 0; s < NSENDERS; s++) {
		long x = max_window(eg, ng, s);
		ws = x > ws ? x : ws;
	}
	printf("bench_rl: configured %d segments/s, burst %d, %d s simulated, %d senders at %d/s\n",
	       RATE, BURST, SECONDS, NSENDERS, SENDER_RATE);
	printf("  gcra (ns timers):  %.0f segments = %.2f/s (%+.3f%%), max 1-s window %ld (limit %d)\n",
	       ach_g, ach_g / SECONDS, (ach_g / want - 1) * 100, wg, RATE + BURST);
	printf("  gcra (ms timers):  %.0f segments = %.2f/s (%+.3f%%), max 1-s window %ld\n", ach_m,
	       ach_m / SECONDS, (ach_m / want - 1) * 100, wm);
	printf("  per-sender max 1-s window %ld (limit %d)\n", ws, SENDER_RATE + BURST);
	printf("  baseline fixed-window counter: %.0f segments (%+.3f%%), max 1-s window %ld\n",
	       ach_f, (ach_f / want - 1) * 100, wf);
	long sg = max_win(eg, ng, -1, NS / 10), sf = max_win(ef, nf, -1, NS / 10);
	printf("  smoothness: max 100-ms window gcra %ld (ideal %d), baseline %ld: ratio baseline/gcra "
	       "%.2f\n",
	       sg, RATE / 10 + BURST, sf, (double)sf / (double)sg);
	printf("  cost (best of 30): gcra %.1f ns/decision, baseline %.1f ns/decision: ratio %.2f\n",
	       ns_g, ns_f, ns_g / ns_f);
	int ok = 1;
	if (ach_g < want * 0.99 || ach_g > want * 1.01 || ach_m < want * 0.99 || ach_m > want * 1.01) {
		printf("FAIL: achieved rate outside +-1%%\n");
		ok = 0;
	}
	if (wg > RATE + BURST || wm > RATE + BURST || ws > SENDER_RATE + BURST ||
	    sg > RATE / 10 + BURST) {
		printf("FAIL: a 1-second window above rate + burst\n");
		ok = 0;
	}
	printf("%s\n", ok ? "OK" : "FAILED");
	return ok ? 0 : 1;
}
