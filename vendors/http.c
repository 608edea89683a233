/* http.c -- the HTTP engine: vendor requests sent concurrently through libcurl's multi interface,
 * on the caller's thread or on sending threads of their own. */
#include "vendors/http.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/hash.h"
#include "core/log.h"

#include <curl/curl.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

typedef struct lane lane_t;

struct http_xfer {
	CURL *easy;
	vnd_req_t req;
	buf_t resp;
	struct curl_slist *headers;
	uint64_t headers_key; /* hash of what headers was built from: rebuilt only on change */
	void *opaque;
	lane_t *lane; /* the multi handle (and thread) this transfer always runs on */
	int64_t start_ns, end_ns;
	int busy;    /* acquired */
	int running; /* submitted, its result not yet taken by http_next_done */
	int too_big;
	/* the result, written where the transfer finished */
	CURLcode cc;
	const char *errstr;
	http_xfer_t *next; /* free list, a submit queue or a done queue: one at a time */
};

/* A list of transfers in order, linked through next. */
typedef struct xlist {
	http_xfer_t *head, *tail;
} xlist_t;

/* One curl multi handle with its connections, and (threaded) the thread driving it. */
struct lane {
	http_t *h;
	CURLM *multi;
	pthread_t th;
	int started;
	pthread_mutex_t mu; /* guards in and stop */
	xlist_t in;         /* submitted by the caller, not yet added to multi */
	int stop;
	xlist_t out; /* the caller's submissions not yet handed over (caller's thread) */
};

struct http {
	lane_t *lanes;
	int nlanes;
	int threaded;
	http_xfer_t *xfers;
	int max_xfers;
	size_t max_body;
	http_xfer_t *free_list;
	int running;
	xlist_t ready;           /* finished, for http_next_done (caller's thread) */
	pthread_mutex_t done_mu; /* guards done */
	xlist_t done;            /* finished on the sending threads */
	int done_fd;             /* eventfd: done went from empty to non-empty */
};

static void xl_push(xlist_t *l, http_xfer_t *x)
{
	x->next = NULL;
	if (l->tail)
		l->tail->next = x;
	else
		l->head = x;
	l->tail = x;
}

static void xl_cat(xlist_t *l, xlist_t *more)
{
	if (!more->head)
		return;
	if (l->tail)
		l->tail->next = more->head;
	else
		l->head = more->head;
	l->tail = more->tail;
	more->head = more->tail = NULL;
}

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
	http_xfer_t *x = ud;
	size_t len = sz * n;
	if (buf_append(&x->resp, p, len)) {
		x->too_big = 1;
		return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
	}
	return len;
}

/* Move the lane's finished transfers (removed from its multi, results
 * recorded) onto *to. Runs on the thread that drives the lane. */
static void lane_collect(lane_t *l, xlist_t *to)
{
	int left;
	CURLMsg *m;
	while ((m = curl_multi_info_read(l->multi, &left))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		http_xfer_t *x = NULL;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
		x->cc = m->data.result;
		curl_multi_remove_handle(l->multi, m->easy_handle);
		x->end_ns = clock_mono_ns();
		x->errstr = x->cc ? (x->too_big ? "response too large" : curl_easy_strerror(x->cc))
		                  : "";
		xl_push(to, x);
	}
}

static void *lane_main(void *arg)
{
	lane_t *l = arg;
	http_t *h = l->h;
	for (;;) {
		pthread_mutex_lock(&l->mu);
		int stop = l->stop;
		xlist_t in = l->in;
		l->in.head = l->in.tail = NULL;
		pthread_mutex_unlock(&l->mu);
		if (stop)
			break;
		xlist_t fin = {0};
		for (http_xfer_t *x = in.head, *next; x; x = next) {
			next = x->next;
			if (curl_multi_add_handle(l->multi, x->easy) != CURLM_OK) {
				x->cc = CURLE_FAILED_INIT;
				x->errstr = "cannot start the transfer";
				x->end_ns = clock_mono_ns();
				xl_push(&fin, x);
			}
		}
		int still;
		curl_multi_perform(l->multi, &still);
		lane_collect(l, &fin);
		if (fin.head) {
			pthread_mutex_lock(&h->done_mu);
			int was_empty = !h->done.head;
			xl_cat(&h->done, &fin);
			pthread_mutex_unlock(&h->done_mu);
			uint64_t one = 1;
			if (was_empty && write(h->done_fd, &one, sizeof one) < 0 && errno != EAGAIN)
				log_warn("event=http_wake_failed err=\"%s\"", strerror(errno));
		}
		curl_multi_poll(l->multi, NULL, 0, 1000, NULL);
	}
	return NULL;
}

http_t *http_new(int max_xfers, size_t max_body, int threads, char *err, size_t errlen)
{
	if (max_xfers < 1 || threads < 0 || threads > HTTP_MAX_THREADS) {
		snprintf(err, errlen,
		         "HTTP engine: %d transfers on %d threads (1.. transfers, 0..%d threads)",
		         max_xfers, threads, HTTP_MAX_THREADS);
		return NULL;
	}
	/* Reference-counted by libcurl; balanced in http_free(). */
	if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
		snprintf(err, errlen, "curl_global_init failed");
		return NULL;
	}
	http_t *h = calloc(1, sizeof *h);
	if (!h) {
		curl_global_cleanup();
		snprintf(err, errlen, "out of memory creating the HTTP engine");
		return NULL;
	}
	h->done_fd = -1;
	h->threaded = threads > 0;
	h->nlanes = threads > 0 ? threads : 1;
	if (h->nlanes > max_xfers)
		h->nlanes = max_xfers;
	h->max_xfers = max_xfers;
	h->max_body = max_body;
	pthread_mutex_init(&h->done_mu, NULL);
	if (!(h->xfers = calloc((size_t)max_xfers, sizeof *h->xfers)) ||
	    !(h->lanes = calloc((size_t)h->nlanes, sizeof *h->lanes)))
		goto nomem;
	for (int i = 0; i < h->nlanes; i++) {
		lane_t *l = &h->lanes[i];
		l->h = h;
		pthread_mutex_init(&l->mu, NULL);
		if (!(l->multi = curl_multi_init()))
			goto nomem;
		/* each lane keeps the connections of its share of the transfers */
		curl_multi_setopt(l->multi, CURLMOPT_MAXCONNECTS,
		                  (long)((max_xfers + h->nlanes - 1) / h->nlanes));
	}
	for (int i = max_xfers - 1; i >= 0; i--) {
		http_xfer_t *x = &h->xfers[i];
		vnd_req_init(&x->req);
		buf_init(&x->resp, max_body);
		x->lane = &h->lanes[i % h->nlanes];
		x->next = h->free_list;
		h->free_list = x;
	}
	if (h->threaded) {
		if ((h->done_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
			snprintf(err, errlen, "eventfd: %s", strerror(errno));
			http_free(h);
			return NULL;
		}
		for (int i = 0; i < h->nlanes; i++) {
			int rc = pthread_create(&h->lanes[i].th, NULL, lane_main, &h->lanes[i]);
			if (rc) {
				snprintf(err, errlen, "cannot start an HTTP sending thread: %s",
				         strerror(rc));
				http_free(h);
				return NULL;
			}
			h->lanes[i].started = 1;
		}
	}
	return h;
nomem:
	snprintf(err, errlen, "out of memory creating the HTTP engine");
	http_free(h);
	return NULL;
}

void http_free(http_t *h)
{
	if (!h)
		return;
	for (int i = 0; h->lanes && i < h->nlanes; i++) {
		lane_t *l = &h->lanes[i];
		if (!l->started)
			continue;
		pthread_mutex_lock(&l->mu);
		l->stop = 1;
		pthread_mutex_unlock(&l->mu);
		curl_multi_wakeup(l->multi);
		pthread_join(l->th, NULL);
	}
	for (int i = 0; h->xfers && i < h->max_xfers; i++) {
		http_xfer_t *x = &h->xfers[i];
		if (x->easy) {
			/* not in a multi any more is fine: libcurl ignores the removal */
			curl_multi_remove_handle(x->lane->multi, x->easy);
			curl_easy_cleanup(x->easy);
		}
		curl_slist_free_all(x->headers);
		vnd_req_free(&x->req);
		buf_free(&x->resp);
	}
	for (int i = 0; h->lanes && i < h->nlanes; i++) {
		if (h->lanes[i].multi)
			curl_multi_cleanup(h->lanes[i].multi);
		pthread_mutex_destroy(&h->lanes[i].mu);
	}
	if (h->done_fd >= 0)
		close(h->done_fd);
	pthread_mutex_destroy(&h->done_mu);
	free(h->lanes);
	free(h->xfers);
	free(h);
	curl_global_cleanup();
}

http_xfer_t *http_acquire(http_t *h)
{
	http_xfer_t *x = h->free_list;
	if (!x)
		return NULL;
	h->free_list = x->next;
	x->busy = 1;
	return x;
}

vnd_req_t *http_xfer_req(http_xfer_t *x) { return &x->req; }

void http_release(http_t *h, http_xfer_t *x)
{
	if (!x || !x->busy)
		return;
	if (x->running) {
		if (h->threaded) {
			log_error("event=http_release_running msg=\"a transfer still running on a sending "
			          "thread cannot be released; kept\"");
			return;
		}
		/* cancelled in flight, or finished and not yet taken: out of both */
		curl_multi_remove_handle(x->lane->multi, x->easy);
		for (http_xfer_t **pp = &h->ready.head, *prev = NULL; *pp; prev = *pp, pp = &(*pp)->next)
			if (*pp == x) {
				*pp = x->next;
				if (h->ready.tail == x)
					h->ready.tail = prev;
				break;
			}
		x->running = 0;
		h->running--;
	}
	x->busy = 0;
	x->next = h->free_list;
	h->free_list = x;
}

/* Options that never change for a transfer object, set once. */
static int easy_init(http_xfer_t *x)
{
	if (!(x->easy = curl_easy_init()))
		return TOCSIN_ERR_NOMEM;
	CURL *e = x->easy;
	curl_easy_setopt(e, CURLOPT_POST, 1L);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(e, CURLOPT_PRIVATE, x);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "tocsin/0.1");
	curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	return 0;
}

/* The request headers of x's request, rebuilt only when its content type or
 * bearer token differs from the last request on this transfer object. */
static void set_headers(http_xfer_t *x)
{
	uint64_t key = hash64(x->req.content_type.p ? x->req.content_type.p : "",
	                      x->req.content_type.len, 1);
	key = hash64(x->req.bearer.p ? x->req.bearer.p : "", x->req.bearer.len, key);
	if (x->headers && key == x->headers_key)
		return;
	curl_slist_free_all(x->headers);
	x->headers = NULL;
	char line[512];
	if (x->req.content_type.len) {
		snprintf(line, sizeof line, "Content-Type: %s", x->req.content_type.p);
		x->headers = curl_slist_append(x->headers, line);
	}
	if (x->req.bearer.len) {
		/* Handed to curl; never logged. */
		buf_t a;
		buf_init(&a, 8192);
		buf_puts(&a, "Authorization: Bearer ");
		buf_append(&a, x->req.bearer.p, x->req.bearer.len);
		x->headers = curl_slist_append(x->headers, a.p ? a.p : "");
		buf_free(&a);
	}
	x->headers = curl_slist_append(x->headers, "Expect:");
	x->headers = curl_slist_append(x->headers, "Accept: application/json");
	x->headers_key = key;
	curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->headers);
}

int http_submit(http_t *h, http_xfer_t *x, int timeout_ms, void *opaque)
{
	if (!x->easy && easy_init(x))
		return TOCSIN_ERR_NOMEM;
	CURL *e = x->easy;
	buf_reset(&x->resp);
	x->too_big = 0;
	set_headers(x);
	curl_easy_setopt(e, CURLOPT_URL, x->req.url.p);
	if (x->req.get) { /* a lookup (vnd_lookup_build); the next POST sets its fields again */
		curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
	} else {
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->req.body.p ? x->req.body.p : "");
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->req.body.len);
	}
	if (x->req.userpwd.len) {
		curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(e, CURLOPT_USERPWD, x->req.userpwd.p);
	} else {
		curl_easy_setopt(e, CURLOPT_USERPWD, NULL);
	}
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)(timeout_ms < 5000 ? timeout_ms : 5000));
	x->start_ns = clock_mono_ns();
	if (h->threaded) {
		xl_push(&x->lane->out, x); /* handed over by the next http_run */
	} else if (curl_multi_add_handle(x->lane->multi, e) != CURLM_OK) {
		return TOCSIN_ERR_HTTP;
	}
	x->opaque = opaque;
	x->running = 1;
	h->running++;
	return 0;
}

/* Threaded: hand each lane what was submitted since the last call. */
static void hand_over(http_t *h)
{
	for (int i = 0; i < h->nlanes; i++) {
		lane_t *l = &h->lanes[i];
		if (!l->out.head)
			continue;
		pthread_mutex_lock(&l->mu);
		xl_cat(&l->in, &l->out);
		pthread_mutex_unlock(&l->mu);
		curl_multi_wakeup(l->multi);
	}
}

/* Threaded: take what the sending threads finished. */
static void take_done(http_t *h)
{
	pthread_mutex_lock(&h->done_mu);
	xl_cat(&h->ready, &h->done);
	pthread_mutex_unlock(&h->done_mu);
}

int http_run(http_t *h, int extra_fd, int timeout_ms)
{
	if (!h->threaded) {
		lane_t *l = &h->lanes[0];
		int still = 0;
		struct curl_waitfd wfd = {.fd = extra_fd, .events = CURL_WAIT_POLLIN, .revents = 0};
		CURLMcode mc = curl_multi_poll(l->multi, extra_fd >= 0 ? &wfd : NULL,
		                               extra_fd >= 0 ? 1 : 0, timeout_ms, NULL);
		if (mc != CURLM_OK)
			return TOCSIN_ERR_HTTP;
		mc = curl_multi_perform(l->multi, &still);
		if (mc != CURLM_OK)
			return TOCSIN_ERR_HTTP;
		lane_collect(l, &h->ready);
		return h->running;
	}
	hand_over(h);
	take_done(h);
	if (!h->ready.head) {
		struct pollfd p[2] = {{.fd = h->done_fd, .events = POLLIN},
		                      {.fd = extra_fd, .events = POLLIN}};
		if (poll(p, extra_fd >= 0 ? 2 : 1, timeout_ms) < 0 && errno != EINTR)
			return TOCSIN_ERR_IO;
		uint64_t v;
		if (p[0].revents && read(h->done_fd, &v, sizeof v) < 0 && errno != EAGAIN)
			return TOCSIN_ERR_IO;
		take_done(h);
	}
	return h->running;
}

int http_next_done(http_t *h, http_done_t *out)
{
	http_xfer_t *x = h->ready.head;
	if (!x)
		return 0;
	h->ready.head = x->next;
	if (!h->ready.head)
		h->ready.tail = NULL;
	x->running = 0;
	h->running--;
	memset(out, 0, sizeof *out);
	out->xfer = x;
	out->opaque = x->opaque;
	out->curl_code = (int)x->cc;
	out->errstr = x->errstr;
	out->latency_ns = x->end_ns - x->start_ns;
	out->retry_after_s = -1;
	if (x->cc == CURLE_OPERATION_TIMEDOUT || x->cc == CURLE_GOT_NOTHING ||
	    x->cc == CURLE_RECV_ERROR || x->cc == CURLE_PARTIAL_FILE) {
		long sent = 0; /* bytes of request written: 0 when it never got out (connect) */
		out->unanswered = curl_easy_getinfo(x->easy, CURLINFO_REQUEST_SIZE, &sent) == CURLE_OK &&
		                  sent > 0;
	}
	if (x->cc == CURLE_OK) {
		curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &out->status);
		curl_off_t ra = -1;
		if (curl_easy_getinfo(x->easy, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0)
			out->retry_after_s = (long)ra;
	}
	out->body = x->resp.p ? x->resp.p : "";
	out->bodylen = x->resp.len;
	return 1;
}

int http_in_flight(const http_t *h) { return h->running; }
