/* bench_render.c -- renders/s of a typical 2-variable SMS template with segment counting vs plain snprintf; counts mallocs. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "templates/sms.h"
#include "templates/tmpl.h"
#include "core/num.h"

/* ---- malloc interposer: every allocation in the process goes through here ---- */
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
static unsigned long n_alloc; /* bench-local counter, not shared state of the program */

void *malloc(size_t n)
{
	__atomic_fetch_add(&n_alloc, 1, __ATOMIC_RELAXED);
	return __libc_malloc(n);
}
void *calloc(size_t a, size_t b)
{
	__atomic_fetch_add(&n_alloc, 1, __ATOMIC_RELAXED);
	return __libc_calloc(a, b);
}
void *realloc(void *p, size_t n)
{
	__atomic_fetch_add(&n_alloc, 1, __ATOMIC_RELAXED);
	return __libc_realloc(p, n);
}
void free(void *p) { __libc_free(p); }

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#define NREC 1024
static const char *first[] = {"Ana",       "Bo",     "Carmen", "Dwayne",
                              "Esperanza", "Fatima", "Guo",    "Hannah"};
static const char *cities[] = {"Reno", "Las Vegas", "Carson City", "Henderson", "Sparks", "Elko"};

int main(int argc, char **argv)
{
	int64_t v = 5000000;
	long n = argc > 1 && num_i64(argv[1], 1000, 200000000, &v) ? -1 : (long)v;
	if (n < 1000 || n > 200000000) {
		fprintf(stderr, "usage: bench_render [renders (1000..200000000), default 5000000]\n");
		return 2;
	}
	const char *src = "Hi {{first_name}}, polls in {{city}} close at 8pm tonight. Find your polling "
	                  "place: vote.example.org/p";
	const char *fmt = "Hi %s, polls in %s close at 8pm tonight. Find your polling place: vote.example.org/p";
	const char *const fields[] = {"first_name", "city"};
	char err[256];
	tmpl_t *t = tmpl_compile(src, strlen(src), TMPL_TEXT, fields, 2, err, sizeof err);
	if (!t) {
		fprintf(stderr, "bench_render: compile: %s\n", err);
		return 1;
	}
	static const char *vals[NREC][2];
	static size_t lens[NREC][2];
	for (int i = 0; i < NREC; i++) {
		vals[i][0] = first[i % 8];
		vals[i][1] = cities[(i / 8) % 6];
		lens[i][0] = strlen(vals[i][0]);
		lens[i][1] = strlen(vals[i][1]);
	}
	char out[1024], ref[1024];
	tmpl_why_t why;
	size_t minlen = sizeof out, maxlen = 0;
	/* correctness first: every record renders exactly like snprintf, one GSM-7 segment */
	for (int i = 0; i < NREC; i++) {
		size_t ol;
		if (tmpl_render(t, vals[i], lens[i], out, sizeof out, &ol, &why) != 0) {
			fprintf(stderr, "bench_render: render failed: %s\n", why.reason);
			return 1;
		}
		int rl = snprintf(ref, sizeof ref, fmt, vals[i][0], vals[i][1]);
		minlen = ol < minlen ? ol : minlen;
		maxlen = ol > maxlen ? ol : maxlen;
		sms_info_t si;
		if ((size_t)rl != ol || memcmp(out, ref, ol) != 0 || sms_analyze(out, ol, &si) != 0 ||
		    si.enc != SMS_GSM7 || si.segments != 1 || si.units != rl) {
			fprintf(stderr, "bench_render: wrong output for record %d: \"%s\" vs \"%s\"\n",
			        i, out, ref);
			return 1;
		}
	}
	/* the interposer is live: this strdup must be counted */
	unsigned long a0 = n_alloc;
	char *probe = strdup("probe");
	int interposed = n_alloc == a0 + 1;
	free(probe);
	if (!interposed) {
		fprintf(stderr, "bench_render: malloc interposer not active\n");
		return 1;
	}

	/* ROUNDS alternating rounds of each, best round kept: the machine is shared, so
	 * the best round is the closest to what one quiet core does. */
	enum { ROUNDS = 7 };
	long per = n / ROUNDS;
	unsigned long sink = 0, segs = 0, allocs = 0;
	double t_snp = 1e9, t_ren = 1e9, t_fin = 1e9;
	const sms_opts_t fo = {.smart = 1, .footer = "STOP=opt out"};
	for (int r = 0; r < ROUNDS; r++) {
		double t0 = now();
		for (long i = 0; i < per; i++) {
			int k = (int)(i & (NREC - 1));
			sink += (unsigned long)snprintf(ref, sizeof ref, fmt, vals[k][0], vals[k][1]);
		}
		double dt = now() - t0;
		if (dt < t_snp)
			t_snp = dt;

		/* tocsin: render + exact segment counting */
		unsigned long before = n_alloc;
		t0 = now();
		for (long i = 0; i < per; i++) {
			int k = (int)(i & (NREC - 1));
			size_t ol;
			sms_info_t si;
			if (tmpl_render(t, vals[k], lens[k], out, sizeof out, &ol, &why) != 0 ||
			    sms_analyze(out, ol, &si) != 0)
				return 1;
			segs += (unsigned long)si.segments;
			sink += ol;
		}
		dt = now() - t0;
		allocs += n_alloc - before;
		if (dt < t_ren)
			t_ren = dt;

		/* the full SMS path: render + smart replacement + footer + count + cap */
		before = n_alloc;
		t0 = now();
		for (long i = 0; i < per; i++) {
			int k = (int)(i & (NREC - 1));
			size_t ol;
			sms_info_t si;
			int nrep;
			char reason[160];
			if (tmpl_render(t, vals[k], lens[k], out, sizeof out, &ol, &why) != 0 ||
			    sms_finish(out, &ol, sizeof out, &fo, &si, &nrep, NULL, reason,
			               sizeof reason) != 0 ||
			    si.segments != 1)
				return 1;
			sink += ol;
		}
		dt = now() - t0;
		allocs += n_alloc - before;
		if (dt < t_fin)
			t_fin = dt;
	}
	n = per * ROUNDS;
	double r_snp = (double)per / t_snp, r_ren = (double)per / t_ren;
	printf("bench_render: %ld renders of a 2-variable SMS template (%zu-%zu bytes), best of %d rounds\n",
	       n, minlen, maxlen, ROUNDS);
	printf("  snprintf baseline        : %10.0f /s  (%.1f ns each)\n", r_snp, 1e9 / r_snp);
	printf("  tmpl_render+sms_analyze  : %10.0f /s  (%.1f ns each)\n", r_ren, 1e9 / r_ren);
	printf("  ratio render/snprintf    : %.2fx\n", r_ren / r_snp);
	printf("  + smart replace + footer + cap (sms_finish): %.0f /s (%.1f ns each)\n",
	       (double)per / t_fin, 1e9 * t_fin / (double)per);
	printf("  allocations in the render loops: %lu (%.6f per render)\n", allocs,
	       (double)allocs / (double)(2 * n));
	printf("  segments counted: %lu (expected %ld)  [sink %lu]\n", segs, n, sink % 10);
	int ok = allocs == 0 && segs == (unsigned long)n;
	printf("  check: %s; target >= 3000000 renders/s: %s\n", ok ? "ok" : "FAILED",
	       r_ren >= 3e6 ? "met" : "NOT met");
	tmpl_free(t);
	return ok ? 0 : 1;
}
