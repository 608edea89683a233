/* bench_curl.c -- the ceiling for dispatcher throughput: a bare curl-multi loop posting
 * Twilio-shaped requests to the emulator with keep-alive, no Kafka, no bookkeeping.
 *   bench_curl HOST:PORT ACCOUNT_SID TOKEN N CONCURRENCY
 * Prints requests/s and checks every answer was a 201. */
#include <curl/curl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "core/num.h"

static size_t sink(char *p, size_t s, size_t n, void *u)
{
	(void)p;
	(void)u;
	return s * n;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc != 6) {
		fprintf(stderr, "usage: bench_curl HOST:PORT ACCOUNT_SID TOKEN N CONCURRENCY\n");
		return 2;
	}
	const char *host = argv[1], *sid = argv[2], *tok = argv[3];
	int64_t n;
	int conc;
	if (num_i64(argv[4], 1, INT64_MAX, &n) || num_int(argv[5], 1, 100000, &conc)) {
		fprintf(stderr, "bench_curl: N and CONCURRENCY must be whole numbers >= 1\n");
		return 2;
	}
	char url[512], userpwd[256];
	snprintf(url, sizeof url, "http://%s/2010-04-01/Accounts/%s/Messages.json", host, sid);
	snprintf(userpwd, sizeof userpwd, "%s:%s", sid, tok);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	CURLM *m = curl_multi_init();
	curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, (long)conc);
	CURL **e = calloc((size_t)conc, sizeof *e);
	char(*body)[512] = calloc((size_t)conc, sizeof *body);
	struct curl_slist *h = curl_slist_append(NULL, "Expect:");
	long started = 0, done = 0, ok = 0;
	if (conc < 1 || conc > 4096) {
		fprintf(stderr, "bench_curl: CONCURRENCY must be 1..4096\n");
		return 2;
	}
	static int busy[4096];
	double t0 = now_s();
	for (int i = 0; i < conc; i++)
		e[i] = curl_easy_init();
	for (;;) {
		/* (re)start idle handles */
		for (int i = 0; i < conc && started < n; i++) {
			if (busy[i])
				continue;
			snprintf(body[i], sizeof body[i],
			         "To=%%2B1202555%04ld&From=%%2B15005550006&Body=Hi+Pat%ld%%2C+vote+no+on+the+"
			         "cuts+tonight.&StatusCallback=http%%3A%%2F%%2F127.0.0.1%%3A9%%2Fwebhooks%%2F"
			         "twilio%%2Fstatus%%3Fmid%%3Dbench%032ld",
			         started % 10000, started, started);
			curl_easy_reset(e[i]);
			curl_easy_setopt(e[i], CURLOPT_URL, url);
			curl_easy_setopt(e[i], CURLOPT_USERPWD, userpwd);
			curl_easy_setopt(e[i], CURLOPT_POSTFIELDS, body[i]);
			curl_easy_setopt(e[i], CURLOPT_HTTPHEADER, h);
			curl_easy_setopt(e[i], CURLOPT_WRITEFUNCTION, sink);
			curl_easy_setopt(e[i], CURLOPT_PRIVATE, (char *)(intptr_t)i);
			curl_multi_add_handle(m, e[i]);
			busy[i] = 1;
			started++;
		}
		int running;
		curl_multi_perform(m, &running);
		CURLMsg *msg;
		int left;
		while ((msg = curl_multi_info_read(m, &left))) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			char *pv;
			long code = 0;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &pv);
			curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &code);
			ok += code == 201;
			curl_multi_remove_handle(m, msg->easy_handle);
			busy[(intptr_t)pv] = 0;
			done++;
		}
		if (done >= n)
			break;
		/* every handle busy, or nothing left to start: wait for sockets */
		if (started - done >= conc || started >= n)
			curl_multi_poll(m, NULL, 0, 100, NULL);
	}
	double dt = now_s() - t0;
	printf("bare curl multi: %ld requests in %.2f s = %.0f requests/s (%ld answered 201)\n", n,
	       dt, n / dt, ok);
	for (int i = 0; i < conc; i++)
		curl_easy_cleanup(e[i]);
	curl_multi_cleanup(m);
	curl_slist_free_all(h);
	free(e);
	free(body);
	return ok == n ? 0 : 1;
}
