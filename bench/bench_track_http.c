/* bench_track_http.c -- a closed-loop HTTP/1.1 GET client that times every request (keep-alive, N connections, one thread each). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "core/num.h"

/* Usage: bench_track_http HOST:PORT PATH SECONDS [CONNECTIONS]
 * Prints one line: requests rps p50_ms p99_ms max_ms over50 bad
 * (bad = answers other than 200 or broken connections). Each connection
 * sends its next request only after the whole answer (Content-Length) has
 * arrived, so the latencies add up to at most SECONDS x CONNECTIONS. */

#define MAX_LAT (1u << 22)
#define RBUF (1u << 20)

typedef struct th {
	struct sockaddr_in sa;
	const char *hostport; /* the Host header: the tracker refuses names it does not serve */
	const char *path;
	double secs;
	double *lat; /* ms */
	size_t n, cap;
	long bad;
} th_t;

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int dial(th_t *t)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (fd < 0 || connect(fd, (struct sockaddr *)&t->sa, sizeof t->sa)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* One GET; 200 -> 0, other status -> 1, connection trouble -> -1. */
static int get(int fd, const char *req, size_t reqlen, char *buf)
{
	if (write(fd, req, reqlen) != (ssize_t)reqlen)
		return -1;
	size_t have = 0;
	long want = -1, status = 0;
	size_t head = 0;
	for (;;) {
		ssize_t r = read(fd, buf + have, RBUF - 1 - have);
		if (r <= 0)
			return -1;
		have += (size_t)r;
		buf[have] = 0;
		if (!head) {
			char *e = strstr(buf, "\r\n\r\n");
			if (!e) {
				if (have >= RBUF - 1)
					return -1;
				continue;
			}
			head = (size_t)(e - buf) + 4;
			status = strtol(buf + 9, NULL, 10);
			char *cl = strcasestr(buf, "\r\nContent-Length:");
			if (!cl || cl > e)
				return -1;
			want = strtol(cl + 17, NULL, 10);
		}
		if (have - head >= (size_t)want) /* the body may not fit RBUF: reuse the buffer */
			return status == 200 ? 0 : 1;
		if (have >= RBUF / 2) {
			want -= (long)(have - head);
			head = 0;
			have = 0;
			head = 0;
			/* keep reading body bytes only */
			for (;;) {
				ssize_t r2 = read(fd, buf, RBUF - 1);
				if (r2 <= 0)
					return -1;
				want -= r2;
				if (want <= 0)
					return status == 200 ? 0 : 1;
			}
		}
	}
}

static void *run(void *arg)
{
	th_t *t = arg;
	char *buf = malloc(RBUF);
	char req[4096];
	int reqlen = snprintf(req, sizeof req,
	                      "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: keep-alive\r\n\r\n",
	                      t->path, t->hostport);
	int fd = dial(t);
	double end = now_ms() + t->secs * 1000;
	while (buf && fd >= 0 && now_ms() < end && t->n < t->cap) {
		double t0 = now_ms();
		int rc = get(fd, req, (size_t)reqlen, buf);
		double dt = now_ms() - t0;
		if (rc < 0) {
			t->bad++;
			close(fd);
			fd = dial(t);
			continue;
		}
		if (rc > 0)
			t->bad++;
		t->lat[t->n++] = dt;
	}
	if (fd >= 0)
		close(fd);
	free(buf);
	return NULL;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: bench_track_http HOST:PORT PATH SECONDS [CONNECTIONS]\n");
		return 2;
	}
	char host[64];
	const char *colon = strrchr(argv[1], ':');
	int conns = 4, port = 0;
	double secs = atof(argv[3]);
	if (argc > 4 && num_int(argv[4], 1, 64, &conns))
		conns = -1;
	if (!colon || (size_t)(colon - argv[1]) >= sizeof host || conns < 1 || conns > 64 ||
	    num_int(colon + 1, 1, 65535, &port) || secs <= 0 || secs > 600) {
		fprintf(stderr, "bench_track_http: bad arguments\n");
		return 2;
	}
	memcpy(host, argv[1], (size_t)(colon - argv[1]));
	host[colon - argv[1]] = 0;
	th_t *ts = calloc((size_t)conns, sizeof *ts);
	pthread_t *ids = calloc((size_t)conns, sizeof *ids);
	for (int i = 0; i < conns; i++) {
		ts[i].sa.sin_family = AF_INET;
		ts[i].sa.sin_port = htons((uint16_t)port);
		inet_pton(AF_INET, host, &ts[i].sa.sin_addr);
		ts[i].hostport = argv[1];
		ts[i].path = argv[2];
		ts[i].secs = secs;
		ts[i].cap = MAX_LAT;
		ts[i].lat = malloc(sizeof(double) * MAX_LAT);
		pthread_create(&ids[i], NULL, run, &ts[i]);
	}
	size_t n = 0;
	long bad = 0;
	for (int i = 0; i < conns; i++) {
		pthread_join(ids[i], NULL);
		n += ts[i].n;
		bad += ts[i].bad;
	}
	double *all = malloc(sizeof(double) * (n ? n : 1));
	size_t k = 0;
	for (int i = 0; i < conns; i++) {
		memcpy(all + k, ts[i].lat, sizeof(double) * ts[i].n);
		k += ts[i].n;
	}
	qsort(all, n, sizeof *all, cmp);
	long over = 0;
	for (size_t i = 0; i < n; i++)
		over += all[i] >= 50.0;
	printf("%zu %.0f %.3f %.3f %.1f %ld %ld\n", n, n / secs, n ? all[n / 2] : 0,
	       n ? all[(size_t)(n * 0.99)] : 0, n ? all[n - 1] : 0, over, bad);
	return n ? 0 : 1;
}
