/* test_http.c -- the HTTP engine against a real local server: echo, Retry-After, size cap, failures, wake-ups, free. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "core/buf.h"
#include "core/err.h"
#include "vendors/http.h"
#include "vendors/vnd.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_BODY (16 * 1024)   /* the engines' response cap */
#define BIG_LEN (MAX_BODY * 4) /* what /big answers: above the cap */
#define ECHO_MAX (64 * 1024)   /* the server's request body cap */
#define N_ECHO 2000
#define ECHO_XFERS 64
#define WALL_NS (30LL * 1000000000LL) /* every loop gives up after 30 s */

static struct MHD_Daemon *D;
static unsigned PORT;      /* the MHD server */
static int SILENT_FD = -1; /* a listening socket nobody accepts on: requests never answered */
static unsigned SILENT_PORT;
static char *BIG; /* BIG_LEN bytes, and MAX_BODY bytes for /exact */

/* prestates: the number of sending threads each test runs with */
static int T0 = 0, T1 = 1, T2 = 2;

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* ---- the server ---------------------------------------------------------------------- */

typedef struct srv_req {
	char *p;
	size_t len;
	int toobig;
} srv_req_t;

static enum MHD_Result answer(struct MHD_Connection *c, unsigned status, const void *p, size_t n,
                              enum MHD_ResponseMemoryMode mode, const char *hname, const char *hval)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(n, (void *)p, mode);
	if (!r)
		return MHD_NO;
	if (hname)
		MHD_add_response_header(r, hname, hval);
	enum MHD_Result ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result on_req(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *up, size_t *upsz, void **ctx)
{
	(void)cls;
	(void)version;
	srv_req_t *r = *ctx;
	if (!r) {
		if (!(r = calloc(1, sizeof *r)))
			return MHD_NO;
		*ctx = r;
		return MHD_YES;
	}
	if (*upsz) {
		if (r->len + *upsz > ECHO_MAX) {
			r->toobig = 1;
		} else {
			char *np = realloc(r->p, r->len + *upsz);
			if (!np)
				return MHD_NO;
			memcpy(np + r->len, up, *upsz);
			r->p = np;
			r->len += *upsz;
		}
		*upsz = 0;
		return MHD_YES;
	}
	if (!strcmp(url, "/echo")) {
		if (strcmp(method, "POST"))
			return answer(c, 405, "POST only", 9, MHD_RESPMEM_PERSISTENT, NULL, NULL);
		if (r->toobig)
			return answer(c, 413, "", 0, MHD_RESPMEM_PERSISTENT, NULL, NULL);
		return answer(c, 200, r->len ? r->p : "", r->len, MHD_RESPMEM_MUST_COPY, NULL, NULL);
	}
	if (!strcmp(url, "/slow-retry"))
		return answer(c, 429, "slow down", 9, MHD_RESPMEM_PERSISTENT, "Retry-After", "7");
	if (!strcmp(url, "/big"))
		return answer(c, 200, BIG, BIG_LEN, MHD_RESPMEM_PERSISTENT, NULL, NULL);
	if (!strcmp(url, "/exact"))
		return answer(c, 200, BIG, MAX_BODY, MHD_RESPMEM_PERSISTENT, NULL, NULL);
	return answer(c, 404, "no such path", 12, MHD_RESPMEM_PERSISTENT, NULL, NULL);
}

static void on_done(void *cls, struct MHD_Connection *c, void **ctx, enum MHD_RequestTerminationCode t)
{
	(void)cls;
	(void)c;
	(void)t;
	srv_req_t *r = *ctx;
	if (r) {
		free(r->p);
		free(r);
	}
	*ctx = NULL;
}

/* A TCP socket on 127.0.0.1 with a kernel-chosen port; listening when backlog > 0. */
static int tcp_socket(unsigned *port, int backlog)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t al = sizeof a;
	if (bind(fd, (struct sockaddr *)&a, sizeof a) || (backlog > 0 && listen(fd, backlog)) ||
	    getsockname(fd, (struct sockaddr *)&a, &al)) {
		close(fd);
		return -1;
	}
	*port = ntohs(a.sin_port);
	return fd;
}

static int group_setup(void **st)
{
	(void)st;
	if (!(BIG = malloc(BIG_LEN)))
		return -1;
	for (size_t i = 0; i < BIG_LEN; i++)
		BIG[i] = (char)('a' + i % 26);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	D = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, NULL, NULL, on_req,
	                     NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&a,
	                     MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL, MHD_OPTION_THREAD_POOL_SIZE,
	                     (unsigned)4, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_END);
	if (!D) {
		fprintf(stderr, "cannot start the test HTTP server\n");
		return -1;
	}
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(D, MHD_DAEMON_INFO_BIND_PORT);
	if (!di || !di->port) {
		fprintf(stderr, "cannot read the test server's port\n");
		return -1;
	}
	PORT = di->port;
	/* backlog large enough that every test connection completes its handshake */
	if ((SILENT_FD = tcp_socket(&SILENT_PORT, 128)) < 0) {
		fprintf(stderr, "cannot open the silent listener\n");
		return -1;
	}
	return 0;
}

static int group_teardown(void **st)
{
	(void)st;
	if (D)
		MHD_stop_daemon(D);
	if (SILENT_FD >= 0)
		close(SILENT_FD);
	free(BIG);
	return 0;
}

/* ---- helpers ------------------------------------------------------------------------- */

static int threads_of(void **st) { return *(int *)*st; }

static http_t *engine(int max_xfers, int threads)
{
	char err[256] = "";
	http_t *h = http_new(max_xfers, MAX_BODY, threads, err, sizeof err);
	if (!h)
		fprintf(stderr, "http_new: %s\n", err);
	assert_non_null(h);
	return h;
}

/* Fill x's request: a POST of body[0..n) to path on port. */
static void fill(http_xfer_t *x, unsigned port, const char *path, const char *body, size_t n)
{
	vnd_req_t *r = http_xfer_req(x);
	buf_reset(&r->url);
	buf_reset(&r->body);
	buf_reset(&r->content_type);
	buf_reset(&r->userpwd);
	buf_reset(&r->bearer);
	assert_int_equal(buf_printf(&r->url, "http://127.0.0.1:%u%s", port, path), 0);
	assert_int_equal(buf_append(&r->body, body, n), 0);
	assert_int_equal(buf_puts(&r->content_type, "text/plain"), 0);
}

/* Submit one request and wait (30 s at most) for its result into *d; the
 * transfer is left for the caller to release. */
static void one(http_t *h, unsigned port, const char *path, const char *body, http_done_t *d)
{
	http_xfer_t *x = http_acquire(h);
	assert_non_null(x);
	fill(x, port, path, body, strlen(body));
	assert_int_equal(http_submit(h, x, 10000, (void *)0x5eed), 0);
	assert_int_equal(http_in_flight(h), 1);
	int64_t t0 = now_ns();
	int got = 0;
	while (!got && now_ns() - t0 < WALL_NS) {
		assert_true(http_run(h, -1, 100) >= 0);
		got = http_next_done(h, d);
	}
	assert_int_equal(got, 1);
	assert_ptr_equal(d->xfer, x);
	assert_ptr_equal(d->opaque, (void *)0x5eed);
	assert_int_equal(http_in_flight(h), 0);
	assert_int_equal(http_next_done(h, &(http_done_t){0}), 0);
}

/* The distinct body of echo request i into out (>= 1100 bytes); returns its length. */
static size_t echo_body(int i, char *out)
{
	int n = snprintf(out, 64, "msg=%d;", i);
	size_t len = (size_t)n + (size_t)((i * 37) % 1000);
	for (size_t k = (size_t)n; k < len; k++)
		out[k] = (char)('A' + (i + (int)k) % 58);
	return len;
}

/* ---- 1. many POSTs through a window of transfers ---------------------------------------- */

static void test_echo_many(void **st)
{
	int threads = threads_of(st);
	http_t *h = engine(ECHO_XFERS, threads);
	static unsigned char seen[N_ECHO];
	memset(seen, 0, sizeof seen);
	char body[1200];
	int next = 0, done = 0, max_seen_in_flight = 0;
	int64_t t0 = now_ns();
	while (done < N_ECHO && now_ns() - t0 < WALL_NS) {
		http_xfer_t *x;
		while (next < N_ECHO && (x = http_acquire(h))) {
			size_t n = echo_body(next, body);
			fill(x, PORT, "/echo", body, n);
			assert_int_equal(http_submit(h, x, 10000, (void *)(intptr_t)(next + 1)), 0);
			next++;
		}
		if (http_in_flight(h) > max_seen_in_flight)
			max_seen_in_flight = http_in_flight(h);
		int rc = http_run(h, -1, 100);
		assert_true(rc >= 0);
		http_done_t d;
		while (http_next_done(h, &d)) {
			intptr_t id = (intptr_t)d.opaque - 1;
			assert_true(id >= 0 && id < N_ECHO);
			if (d.status != 200 || d.curl_code != 0)
				fprintf(stderr, "request %d: status %ld curl %d (%s)\n", (int)id,
				        d.status, d.curl_code, d.errstr);
			assert_int_equal(d.status, 200);
			assert_int_equal(d.curl_code, 0);
			assert_string_equal(d.errstr, "");
			assert_int_equal(d.retry_after_s, -1);
			size_t n = echo_body((int)id, body);
			assert_int_equal(d.bodylen, n);
			assert_memory_equal(d.body, body, n);
			assert_true(d.latency_ns > 0);
			assert_int_equal(seen[id], 0);
			seen[id] = 1;
			done++;
			http_release(h, d.xfer);
		}
	}
	assert_int_equal(next, N_ECHO);
	assert_int_equal(done, N_ECHO);
	for (int i = 0; i < N_ECHO; i++)
		assert_int_equal(seen[i], 1);
	/* the window was used and never exceeded */
	assert_int_equal(max_seen_in_flight, ECHO_XFERS);
	assert_int_equal(http_in_flight(h), 0);
	/* every transfer is free again */
	http_xfer_t *all[ECHO_XFERS];
	for (int i = 0; i < ECHO_XFERS; i++)
		assert_non_null(all[i] = http_acquire(h));
	assert_null(http_acquire(h));
	for (int i = 0; i < ECHO_XFERS; i++)
		http_release(h, all[i]);
	http_free(h);
}

/* ---- 2. Retry-After ---------------------------------------------------------------------- */

static void test_retry_after(void **st)
{
	http_t *h = engine(4, threads_of(st));
	http_done_t d;
	one(h, PORT, "/slow-retry", "x=1", &d);
	assert_int_equal(d.curl_code, 0);
	assert_int_equal(d.status, 429);
	assert_int_equal(d.retry_after_s, 7);
	assert_int_equal(d.bodylen, 9);
	assert_memory_equal(d.body, "slow down", 9);
	http_release(h, d.xfer);
	/* the same transfer object reused for a plain answer: no stale Retry-After */
	one(h, PORT, "/echo", "again", &d);
	assert_int_equal(d.status, 200);
	assert_int_equal(d.retry_after_s, -1);
	assert_int_equal(d.bodylen, 5);
	assert_memory_equal(d.body, "again", 5);
	http_release(h, d.xfer);
	http_free(h);
}

/* ---- 3. the response size cap --------------------------------------------------------------- */

static void test_too_big(void **st)
{
	http_t *h = engine(4, threads_of(st));
	http_done_t d;
	one(h, PORT, "/big", "x=1", &d);
	assert_int_not_equal(d.curl_code, 0);
	assert_int_equal(d.curl_code, CURLE_WRITE_ERROR);
	assert_string_equal(d.errstr, "response too large");
	assert_int_equal(d.status, 0);
	assert_true(d.bodylen <= MAX_BODY);
	http_release(h, d.xfer);
	/* exactly max_body is allowed */
	one(h, PORT, "/exact", "x=1", &d);
	assert_int_equal(d.curl_code, 0);
	assert_int_equal(d.status, 200);
	assert_int_equal(d.bodylen, MAX_BODY);
	assert_memory_equal(d.body, BIG, MAX_BODY);
	http_release(h, d.xfer);
	/* and the engine still works after a failed transfer */
	one(h, PORT, "/echo", "after", &d);
	assert_int_equal(d.curl_code, 0);
	assert_int_equal(d.status, 200);
	assert_int_equal(d.bodylen, 5);
	assert_memory_equal(d.body, "after", 5);
	http_release(h, d.xfer);
	http_free(h);
}

/* ---- 4. connection refused ------------------------------------------------------------- */

static void test_refused(void **st)
{
	unsigned dead;
	int fd = tcp_socket(&dead, 0); /* bound, not listening, then closed: nobody there */
	assert_true(fd >= 0);
	close(fd);
	http_t *h = engine(4, threads_of(st));
	http_done_t d;
	one(h, dead, "/echo", "x=1", &d);
	assert_int_not_equal(d.curl_code, 0);
	assert_int_equal(d.curl_code, CURLE_COULDNT_CONNECT);
	assert_int_equal(d.status, 0);
	assert_int_equal(d.bodylen, 0);
	assert_true(strlen(d.errstr) > 0);
	assert_string_not_equal(d.errstr, "response too large");
	assert_true(d.latency_ns > 0);
	http_release(h, d.xfer);
	http_free(h);
}

/* ---- 5. http_run wakes on extra_fd ------------------------------------------------------- */

static void test_extra_fd(void **st)
{
	http_t *h = engine(4, threads_of(st));
	int p[2];
	assert_int_equal(pipe(p), 0);
	/* nothing readable: http_run waits its timeout (so the wake below is the byte's doing) */
	int64_t t0 = now_ns();
	assert_int_equal(http_run(h, p[0], 200), 0);
	int64_t idle = now_ns() - t0;
	assert_true(idle >= 150LL * 1000000);
	/* a readable extra_fd ends the wait (correctness bound, not a benchmark) */
	assert_int_equal(write(p[1], "x", 1), 1);
	t0 = now_ns();
	assert_int_equal(http_run(h, p[0], 5000), 0);
	int64_t woke = now_ns() - t0;
	assert_true(woke < 2000LL * 1000000);
	char c;
	assert_int_equal(read(p[0], &c, 1), 1);
	assert_int_equal(c, 'x');
	assert_int_equal(http_in_flight(h), 0);
	close(p[0]);
	close(p[1]);
	http_free(h);
}

/* ---- 6. http_new's limits ----------------------------------------------------------------- */

static void test_new_limits(void **st)
{
	(void)st;
	char err[256];
	int bad[] = {-1, -100, HTTP_MAX_THREADS + 1, 1000};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		strcpy(err, "");
		assert_null(http_new(4, MAX_BODY, bad[i], err, sizeof err));
		assert_true(strlen(err) > 0);
		assert_non_null(strstr(err, "threads"));
	}
	strcpy(err, "");
	assert_null(http_new(0, MAX_BODY, 1, err, sizeof err));
	assert_true(strlen(err) > 0);
	/* the bounds themselves are accepted */
	http_t *h = http_new(HTTP_MAX_THREADS, MAX_BODY, HTTP_MAX_THREADS, err, sizeof err);
	assert_non_null(h);
	http_free(h);
	assert_non_null(h = http_new(1, MAX_BODY, 0, err, sizeof err));
	http_free(h);
	http_free(NULL);
}

/* ---- 7. http_free with transfers still running ------------------------------------------- */

/* On the caller's thread, a transfer released after it finished but before
 * http_next_done gave it is cancelled: never handed out as done afterwards,
 * and the engine's count and free list stay right. */
static void test_release_finished(void **st)
{
	(void)st;
	http_t *h = engine(2, 0);
	http_xfer_t *x = http_acquire(h);
	assert_non_null(x);
	fill(x, PORT, "/echo", "a", 1);
	assert_int_equal(http_submit(h, x, 10000, (void *)1), 0);
	/* drive it to the end without taking its result */
	int64_t t0 = now_ns();
	while (now_ns() - t0 < 2000000000LL)
		assert_true(http_run(h, -1, 20) >= 0);
	assert_int_equal(http_in_flight(h), 1); /* finished, not yet taken */
	http_release(h, x);
	assert_int_equal(http_in_flight(h), 0);
	http_done_t d;
	assert_int_equal(http_next_done(h, &d), 0);
	assert_int_equal(http_in_flight(h), 0);
	http_xfer_t *a = http_acquire(h), *b = http_acquire(h);
	assert_non_null(a);
	assert_non_null(b);
	assert_ptr_not_equal(a, b);
	assert_null(http_acquire(h));
	/* and the engine still works */
	http_release(h, a);
	http_release(h, b);
	one(h, PORT, "/echo", "again", &d);
	assert_int_equal(d.status, 200);
	http_release(h, d.xfer);
	http_free(h);
}

static void free_running(int threads, int hand_over)
{
	http_t *h = engine(16, threads);
	for (int i = 0; i < 10; i++) {
		http_xfer_t *x = http_acquire(h);
		assert_non_null(x);
		fill(x, SILENT_PORT, "/echo", "never answered", 14);
		assert_int_equal(http_submit(h, x, 20000, (void *)(intptr_t)(i + 1)), 0);
	}
	assert_int_equal(http_in_flight(h), 10);
	if (hand_over) {
		/* hand the transfers to the sending threads (or start them) and let them
		 * connect and send: nothing can finish, the server never answers */
		int64_t t0 = now_ns();
		while (now_ns() - t0 < 150LL * 1000000)
			assert_int_equal(http_run(h, -1, 50), 10);
		http_done_t d;
		assert_int_equal(http_next_done(h, &d), 0);
		assert_int_equal(http_in_flight(h), 10);
	}
	int64_t t0 = now_ns();
	http_free(h);
	/* a hang detector, not a benchmark: the sending threads notice the stop at once */
	assert_true(now_ns() - t0 < 5000LL * 1000000);
}

static void test_free_running(void **st)
{
	free_running(threads_of(st), 1);
	free_running(threads_of(st), 0);
}

int main(void)
{
	/* a hung engine fails the run instead of blocking it */
	alarm(60);
	const struct CMUnitTest tests[] = {
	    {"test_echo_many/threads=0", test_echo_many, NULL, NULL, &T0},
	    {"test_echo_many/threads=1", test_echo_many, NULL, NULL, &T1},
	    {"test_echo_many/threads=2", test_echo_many, NULL, NULL, &T2},
	    {"test_retry_after/threads=0", test_retry_after, NULL, NULL, &T0},
	    {"test_retry_after/threads=2", test_retry_after, NULL, NULL, &T2},
	    {"test_too_big/threads=0", test_too_big, NULL, NULL, &T0},
	    {"test_too_big/threads=2", test_too_big, NULL, NULL, &T2},
	    {"test_refused/threads=0", test_refused, NULL, NULL, &T0},
	    {"test_refused/threads=1", test_refused, NULL, NULL, &T1},
	    {"test_refused/threads=2", test_refused, NULL, NULL, &T2},
	    {"test_extra_fd/threads=0", test_extra_fd, NULL, NULL, &T0},
	    {"test_extra_fd/threads=2", test_extra_fd, NULL, NULL, &T2},
	    cmocka_unit_test(test_new_limits),
	    cmocka_unit_test(test_release_finished),
	    {"test_free_running/threads=0", test_free_running, NULL, NULL, &T0},
	    {"test_free_running/threads=1", test_free_running, NULL, NULL, &T1},
	    {"test_free_running/threads=2", test_free_running, NULL, NULL, &T2},
	};
	return cmocka_run_group_tests_name("http", tests, group_setup, group_teardown);
}
