/* bench_sim_sg.c -- the emulator's reading of a 1000-recipient SendGrid request: scanner vs jansson (baseline), one thread. */
#include "core/clock.h"
#include "vendors/sim/sim_int.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "core/num.h"

/* the adapter's request shape (as bench_email.sh's ceiling): 1000 personalizations with
 * their own id, List-Unsubscribe and unsubscribe-URL substitution; personal: also
 * first_name and city and their HTML twins, as bench_email.sh's personalized campaign */
static void body_1000(buf_t *b, int round, int personal)
{
	buf_puts(b, "{\"personalizations\":[");
	for (int i = 0; i < 1000; i++) {
		int n = round * 1000 + i;
		char url[300], raw[100];
		int rl = snprintf(raw, sizeof raw, "\001bench\001ceiling%d@example.org\001%08x", n,
		                  n * 7919);
		size_t ul = (size_t)snprintf(url, sizeof url, "https://act.example.org/t/u/");
		static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
		uint32_t acc = 0;
		int bits = 0;
		for (int k = 0; k < rl; k++) { /* base64url of the token: it names the recipient */
			acc = (acc << 8) | (unsigned char)raw[k];
			for (bits += 8; bits >= 6; bits -= 6)
				url[ul++] = b64[(acc >> (bits - 6)) & 63];
		}
		if (bits)
			url[ul++] = b64[(acc << (6 - bits)) & 63];
		url[ul] = 0;
		buf_printf(b,
		           "%s{\"to\":[{\"email\":\"ceiling%d@example.org\"}],\"custom_args\":{\"tocsin_id\":\"%032x\"},"
		           "\"headers\":{\"List-Unsubscribe\":\"<%s>\"},\"substitutions\":{",
		           i ? "," : "", n, n, url);
		if (personal)
			buf_printf(b,
			           "\"{{{tocsin:first_name}}}\":\"Bea%d\",\"{{{tocsin:city}}}\":\"City %d\","
			           "\"{{{tocsin:first_name_2}}}\":\"Bea%d\",\"{{{tocsin:city_2}}}\":\"City %d\",",
			           n % 200, n % 97, n % 200, n % 97);
		buf_printf(b, "\"{{{tocsin:unsubscribe_url}}}\":\"%s\"}}", url);
	}
	if (personal) {
		buf_puts(b,
		         "],\"from\":{\"email\":\"news@example.org\"},\"subject\":\"Tonight: the vote on the cuts\","
		         "\"content\":[{\"type\":\"text/plain\",\"value\":\"Hi {{{tocsin:first_name}}}, call your council "
		         "member in {{{tocsin:city}}} tonight.\\nUnsubscribe: {{{tocsin:unsubscribe_url}}}\"},{\"type\":\"text/html\","
		         "\"value\":\"<p>Hi {{{tocsin:first_name_2}}}, call your council member in {{{tocsin:city_2}}} tonight."
		         "</p><p><a href=\\\"{{{tocsin:unsubscribe_url}}}\\\">Unsubscribe</a></p>\"}],"
		         "\"headers\":{\"List-Unsubscribe-Post\":\"List-Unsubscribe=One-Click\"},"
		         "\"custom_args\":{\"tocsin_campaign\":\"ceiling\"}}");
		return;
	}
	buf_puts(b,
	         "],\"from\":{\"email\":\"news@example.org\"},\"subject\":\"Tonight: the vote on the cuts\","
	         "\"content\":[{\"type\":\"text/plain\",\"value\":\"Hi Pat, call your council member tonight (ref r1).\\n"
	         "Unsubscribe: {{{tocsin:unsubscribe_url}}}\"},{\"type\":\"text/html\",\"value\":\"<p>Hi Pat, call your "
	         "council member tonight (ref r1).</p><p><a href=\\\"{{{tocsin:unsubscribe_url}}}\\\">Unsubscribe</a></p>\"}],"
	         "\"headers\":{\"List-Unsubscribe-Post\":\"List-Unsubscribe=One-Click\"},"
	         "\"custom_args\":{\"tocsin_campaign\":\"ceiling\"}}");
}

/* CPU ms (this thread) per body for mode over reps bodies (distinct ids each round); checks every answer */
static double run(sim_t *s, sim_vendor_t *sv, buf_t *bodies, int nb, int mode, int reps, int *bad)
{
	sim_fault_t f;
	memset(&f, 0, sizeof f);
	f.delivered_rate = 1;
	sim_ans_t ans;
	memset(&ans, 0, sizeof ans);
	buf_init(&ans.body, 1 << 20);
	uint64_t acc0 = atomic_load(&sv->accepted), ok0 = atomic_load(&sv->unsub_ok);
	struct timespec t0, t1;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
	for (int r = 0; r < reps; r++) {
		buf_reset(&ans.body);
		ans.status = 0;
		if (sim_sendgrid_body(s, sv, &f, bodies[r % nb].p, bodies[r % nb].len, mode, &ans) ||
		    ans.status != 202)
			(*bad)++;
	}
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
	if (atomic_load(&sv->accepted) - acc0 != (uint64_t)reps * 1000 ||
	    atomic_load(&sv->unsub_ok) - ok0 != (uint64_t)reps * 1000)
		(*bad)++;
	buf_free(&ans.body);
	return ((double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6) / reps;
}

int main(int argc, char **argv)
{
	int reps = 200;
	if (argc > 1 && num_int(argv[1], 1, 100000, &reps))
		reps = -1;
	if (reps < 1 || reps > 100000) {
		fprintf(stderr, "usage: bench_sim_sg [REPS (1-100000, default 200)]\n");
		return 2;
	}
	char path[] = "/tmp/bench_sim_sg_XXXXXX";
	int fd = mkstemp(path);
	FILE *cf = fdopen(fd, "w");
	fputs("{\"var_dir\":\"/tmp\",\"vendors\":[{\"name\":\"sg\",\"kind\":\"sendgrid\",\"base_url\":\"http://127.0.0.1:1\","
	      "\"account\":\"-\",\"secret_env\":\"BENCH_SG\",\"senders\":{\"main\":\"news@example.org\"}}]}",
	      cf);
	fclose(cf);
	setenv("BENCH_SG", "bench-key", 1);
	char err[512];
	cfg_t *c = cfg_load(path, err, sizeof err);
	unlink(path);
	sim_t *s = c ? sim_new(c, 0, 1, err, sizeof err) : NULL;
	if (!s) {
		fprintf(stderr, "bench_sim_sg: %s\n", err);
		return 1;
	}
	sim_vendor_t *sv = &s->vs[0];
	enum { NB = 8 };
	buf_t bodies[NB];
	int bad = 0, jreps = reps / 10 > 0 ? reps / 10 : 1;
	for (int personal = 0; personal < 2; personal++) {
		for (int i = 0; i < NB; i++) {
			buf_init(&bodies[i], 8u << 20);
			body_1000(&bodies[i], personal * NB + i, personal);
		}
		run(s, sv, bodies, NB, 0, NB, &bad); /* warm-up */
		double ms_j = run(s, sv, bodies, NB, 1, jreps, &bad);
		double ms_s = run(s, sv, bodies, NB, 2, reps, &bad);
		printf("%s 1000-recipient SendGrid body of %zu bytes, CPU time per body: scanner %.3f ms (%.2f us per "
		       "recipient, %d bodies), jansson baseline %.3f ms (%d bodies); ratio %.1fx\n",
		       personal ? "personalized" : "plain", bodies[0].len, ms_s, ms_s, reps, ms_j,
		       jreps, ms_j / ms_s);
		for (int i = 0; i < NB; i++)
			buf_free(&bodies[i]);
	}
	printf("check: every body answered 202 with 1000 accepted and 1000 unsubscribe links intact -> %s\n",
	       bad ? "WRONG" : "OK");
	sim_free(s);
	cfg_free(c);
	return bad ? 1 : 0;
}
