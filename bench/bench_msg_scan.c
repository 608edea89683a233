/* bench_msg_scan.c -- the dispatcher's reading of one outbox record (msg_out_scan) and one status record (msg_status_scan) against jansson (baseline), one thread. */
#include "core/buf.h"
#include "core/msg.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A personalized email as bench_email.sh launches it: the shared parts with placeholders,
 * each recipient's values and unsubscribe link in subs (the producer's record shape). */
static void email_record(buf_t *b)
{
	const char *url = "https://act.example.org/t/u/AQViZW5jaAFzdXBwb3J0ZXIyMDAwMDAxN0BleGFtcGxlLm9yZwE"
	                  "wMDAxZTBmNA";
	char headers[512], subs[1024];
	snprintf(headers, sizeof headers, "{\"List-Unsubscribe\":\"<%s>\"}", url);
	snprintf(subs, sizeof subs,
	         "{\"first_name\":\"Beana\",\"city\":\"City 17\",\"first_name_2\":\"Beana\","
	         "\"city_2\":\"City 17\",\"unsubscribe_url\":\"%s\"}",
	         url);
	msg_out_t m = {
	    .id = "9f86d081884c7d659a2feaa0c55ad015",
	    .campaign = "personal-1",
	    .channel = MSG_CH_EMAIL,
	    .to = "supporter20000017@example.org",
	    .sender = "main",
	    .subject = "Tonight: the vote on the cuts",
	    .text = "Hi {{{tocsin:first_name}}}, call your council member in {{{tocsin:city}}} "
	            "tonight.\nUnsubscribe: {{{tocsin:unsubscribe_url}}}",
	    .html = "<p>Hi {{{tocsin:first_name_2}}}, call your council member in {{{tocsin:city_2}}} "
	            "tonight.</p><p><a href=\"{{{tocsin:unsubscribe_url}}}\">Unsubscribe</a></p>",
	    .headers = headers,
	    .subs = subs,
	    .segments = 1,
	    .created_ms = 1796323529000,
	    .expires_ms = 1796327129000,
	};
	msg_out_encode(&m, b);
}

static void status_record(buf_t *b)
{
	msg_status_t s = {.id = "9f86d081884c7d659a2feaa0c55ad015",
	                  .campaign = "personal-1",
	                  .channel = MSG_CH_EMAIL,
	                  .to = "supporter20000017@example.org",
	                  .state = MSG_ST_ACCEPTED,
	                  .vendor = "sendgrid",
	                  .vendor_ref = "sg-4f1c2a",
	                  .latency_ms = 41,
	                  .ts_ms = 1796323530000};
	msg_status_encode(&s, b);
}

/* this thread's CPU time (robust to a loaded machine, unlike the wall clock) */
static int64_t cpu_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* CPU ns per record over n reads, the best of 5 rounds */
static double time_scan(const buf_t *b, int status, int jansson, int n)
{
	static char arena[1 << 14];
	double best = 1e30;
	for (int r = 0; r < 5; r++) {
		int64_t t0 = cpu_ns();
		for (int i = 0; i < n; i++) {
			char err[128];
			int rc;
			json_t *hold = NULL;
			if (status) {
				msg_status_t s;
				rc = jansson
				         ? msg_status_parse(b->p, b->len, &s, &hold, err, sizeof err)
				         : msg_status_scan(b->p, b->len, &s, arena, sizeof arena,
				                           err, sizeof err);
			} else {
				msg_out_t m;
				rc = jansson ? msg_out_parse(b->p, b->len, &m, &hold, err, sizeof err)
				             : msg_out_scan(b->p, b->len, &m, arena, sizeof arena,
				                            err, sizeof err);
			}
			json_decref(hold);
			if (rc) {
				fprintf(stderr, "bench_msg_scan: %s\n", err);
				exit(1);
			}
		}
		double ns = (double)(cpu_ns() - t0) / n;
		best = ns < best ? ns : best;
	}
	return best;
}

/* 1 when both readings of the record give the same subs (outbox) or vendor_ref (status) */
static int same_reading(const buf_t *b, int status)
{
	static char arena[1 << 14];
	char err[128];
	json_t *hold = NULL;
	const char *a = NULL, *j = NULL;
	if (status) {
		msg_status_t s1, s2;
		if (!msg_status_scan(b->p, b->len, &s1, arena, sizeof arena, err, sizeof err) &&
		    !msg_status_parse(b->p, b->len, &s2, &hold, err, sizeof err))
			a = s1.vendor_ref, j = s2.vendor_ref;
	} else {
		msg_out_t m1, m2;
		if (!msg_out_scan(b->p, b->len, &m1, arena, sizeof arena, err, sizeof err) &&
		    !msg_out_parse(b->p, b->len, &m2, &hold, err, sizeof err))
			a = m1.subs, j = m2.subs;
	}
	int ok = a && j && !strcmp(a, j);
	json_decref(hold);
	return ok;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? (int)strtol(argv[1], NULL, 10) : 200000;
	if (n <= 0 || n > 100000000) {
		fprintf(stderr, "usage: bench_msg_scan [RECORDS per round (default 200000)]\n");
		return 2;
	}
	buf_t e, s;
	buf_init(&e, 4096);
	buf_init(&s, 1024);
	email_record(&e);
	status_record(&s);
	int ok = same_reading(&e, 0) && same_reading(&s, 1);
	double es = time_scan(&e, 0, 0, n), ej = time_scan(&e, 0, 1, n / 4);
	printf("outbox record (%zu bytes, personalized email): scanner %.0f ns, jansson %.0f ns of CPU per "
	       "record\n",
	       e.len, es, ej);
	double ss = time_scan(&s, 1, 0, n), sj = time_scan(&s, 1, 1, n / 4);
	printf("status record (%zu bytes): scanner %.0f ns, jansson %.0f ns of CPU per record\n",
	       s.len, ss, sj);
	printf("scanner / jansson: outbox %.2f, status %.2f -> %s\n", es / ej, ss / sj,
	       ok ? "OK" : "WRONG (the two readings differ)");
	buf_free(&e);
	buf_free(&s);
	return ok ? 0 : 1;
}
