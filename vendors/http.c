/* http.c -- the HTTP engine: vendor requests sent concurrently through libcurl's multi interface. */
#include "vendors/http.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/hash.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct http_xfer {
	CURL *easy;
	vnd_req_t req;
	buf_t resp;
	struct curl_slist *headers;
	uint64_t headers_key; /* hash of what headers was built from: rebuilt only on change */
	void *opaque;
	int64_t start_ns;
	int busy;      /* acquired */
	int running;   /* submitted, not finished */
	int too_big;
	http_xfer_t *next_free;
};

struct http {
	CURLM *multi;
	http_xfer_t *xfers;
	int max_xfers;
	size_t max_body;
	http_xfer_t *free_list;
	int running;
	char errbuf[CURL_ERROR_SIZE];
};

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

http_t *http_new(int max_xfers, size_t max_body, char *err, size_t errlen)
{
	/* Reference-counted by libcurl; balanced in http_free(). */
	if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
		snprintf(err, errlen, "curl_global_init failed");
		return NULL;
	}
	http_t *h = calloc(1, sizeof *h);
	if (!h || !(h->xfers = calloc((size_t)max_xfers, sizeof *h->xfers)) ||
	    !(h->multi = curl_multi_init())) {
		snprintf(err, errlen, "out of memory creating the HTTP engine");
		if (h)
			http_free(h);
		else
			curl_global_cleanup();
		return NULL;
	}
	h->max_xfers = max_xfers;
	h->max_body = max_body;
	curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, (long)max_xfers);
	for (int i = max_xfers - 1; i >= 0; i--) {
		http_xfer_t *x = &h->xfers[i];
		vnd_req_init(&x->req);
		buf_init(&x->resp, max_body);
		x->next_free = h->free_list;
		h->free_list = x;
	}
	return h;
}

void http_free(http_t *h)
{
	if (!h)
		return;
	for (int i = 0; h->xfers && i < h->max_xfers; i++) {
		http_xfer_t *x = &h->xfers[i];
		if (x->easy) {
			if (x->running)
				curl_multi_remove_handle(h->multi, x->easy);
			curl_easy_cleanup(x->easy);
		}
		curl_slist_free_all(x->headers);
		vnd_req_free(&x->req);
		buf_free(&x->resp);
	}
	if (h->multi)
		curl_multi_cleanup(h->multi);
	free(h->xfers);
	free(h);
	curl_global_cleanup();
}

http_xfer_t *http_acquire(http_t *h)
{
	http_xfer_t *x = h->free_list;
	if (!x)
		return NULL;
	h->free_list = x->next_free;
	x->busy = 1;
	return x;
}

vnd_req_t *http_xfer_req(http_xfer_t *x) { return &x->req; }

void http_release(http_t *h, http_xfer_t *x)
{
	if (!x || !x->busy)
		return;
	if (x->running) {
		curl_multi_remove_handle(h->multi, x->easy);
		x->running = 0;
		h->running--;
	}
	x->busy = 0;
	x->next_free = h->free_list;
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
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->req.body.p ? x->req.body.p : "");
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->req.body.len);
	if (x->req.userpwd.len) {
		curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(e, CURLOPT_USERPWD, x->req.userpwd.p);
	} else {
		curl_easy_setopt(e, CURLOPT_USERPWD, NULL);
	}
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)(timeout_ms < 5000 ? timeout_ms : 5000));
	if (curl_multi_add_handle(h->multi, e) != CURLM_OK)
		return TOCSIN_ERR_HTTP;
	x->opaque = opaque;
	x->running = 1;
	x->start_ns = clock_mono_ns();
	h->running++;
	return 0;
}

int http_run(http_t *h, int extra_fd, int timeout_ms)
{
	int still = 0;
	struct curl_waitfd wfd = {.fd = extra_fd, .events = CURL_WAIT_POLLIN, .revents = 0};
	CURLMcode mc = curl_multi_poll(h->multi, extra_fd >= 0 ? &wfd : NULL, extra_fd >= 0 ? 1 : 0,
	                               timeout_ms, NULL);
	if (mc != CURLM_OK)
		return TOCSIN_ERR_HTTP;
	mc = curl_multi_perform(h->multi, &still);
	if (mc != CURLM_OK)
		return TOCSIN_ERR_HTTP;
	return still;
}

int http_next_done(http_t *h, http_done_t *out)
{
	int left;
	CURLMsg *m;
	while ((m = curl_multi_info_read(h->multi, &left))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		http_xfer_t *x = NULL;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
		CURLcode cc = m->data.result;
		curl_multi_remove_handle(h->multi, m->easy_handle);
		x->running = 0;
		h->running--;
		memset(out, 0, sizeof *out);
		out->xfer = x;
		out->opaque = x->opaque;
		out->curl_code = (int)cc;
		out->errstr = cc ? (x->too_big ? "response too large" : curl_easy_strerror(cc)) : "";
		out->latency_ns = clock_mono_ns() - x->start_ns;
		if (cc == CURLE_OK) {
			curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &out->status);
			curl_off_t ra = -1;
			if (curl_easy_getinfo(x->easy, CURLINFO_RETRY_AFTER, &ra) != CURLE_OK || ra <= 0)
				ra = -1;
			out->retry_after_s = (long)ra;
		} else {
			out->retry_after_s = -1;
		}
		out->body = x->resp.p ? x->resp.p : "";
		out->bodylen = x->resp.len;
		return 1;
	}
	return 0;
}

int http_in_flight(const http_t *h) { return h->running; }
