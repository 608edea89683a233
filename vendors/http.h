/* http.h -- the HTTP engine: vendor requests sent concurrently through libcurl's multi interface. */
#ifndef TOCSIN_HTTP_H
#define TOCSIN_HTTP_H
#include <stddef.h>
#include <stdint.h>

#include "vendors/vnd.h"

typedef struct http http_t;
typedef struct http_xfer http_xfer_t;

/* A finished transfer, as returned by http_next_done(). body points into the
 * transfer's own buffer and is valid until http_release(xfer). */
typedef struct http_done {
	http_xfer_t *xfer;
	void *opaque;       /* as given to http_submit() */
	long status;        /* HTTP status, 0 when the transfer failed */
	int curl_code;      /* CURLcode, 0 on success */
	const char *errstr; /* curl's message for curl_code ("" when none) */
	const char *body;
	size_t bodylen;
	long retry_after_s; /* Retry-After in seconds, -1 if none */
	int64_t latency_ns; /* submit to completion */
	int unanswered;     /* the request went out (curl wrote it) and no whole answer came
	                      * back (timeout, connection reset or closed after sending): the
	                      * server may have acted on it */
} http_done_t;

/* An engine for up to max_xfers concurrent transfers, reusing connections
 * (keep-alive) and transfer objects. Responses above max_body bytes fail the
 * transfer (curl_code CURLE_WRITE_ERROR, errstr "response too large").
 * threads == 0: transfers run on the caller's thread, inside http_run().
 * threads >= 1 (at most HTTP_MAX_THREADS): that many sending threads, each
 * with its own curl multi handle and connections; transfers are pinned to one
 * of them, and the caller's thread only builds requests and reads results.
 * Caller owns the result (http_free). One thread (the caller's) uses the API;
 * the sending threads are internal. */
#define HTTP_MAX_THREADS 16
http_t *http_new(int max_xfers, size_t max_body, int threads, char *err, size_t errlen);
void http_free(http_t *h);

/* A free transfer whose request the caller fills (e.g. with vnd_build on
 * http_xfer_req()), or NULL when max_xfers are in flight. */
http_xfer_t *http_acquire(http_t *h);
vnd_req_t *http_xfer_req(http_xfer_t *x);
/* Start x (a POST of its request's body, or a GET when req.get) with a whole-request timeout (with sending threads: handed to its
 * thread on the next http_run). On failure returns a tocsin_err_t and x stays
 * acquired (release it). */
int http_submit(http_t *h, http_xfer_t *x, int timeout_ms, void *opaque);
/* Give x back for reuse (after its result has been read, or unsubmitted).
 * Without sending threads a running x is cancelled; with them, releasing a
 * running x is a caller bug and is refused (logged). */
void http_release(http_t *h, http_xfer_t *x);

/* Drive transfers: wait up to timeout_ms for network activity (with sending
 * threads: for finished transfers) or for extra_fd (>= 0) to become readable.
 * Returns the transfers submitted whose results http_next_done has not yet
 * given (http_in_flight), or a negative tocsin_err_t. */
int http_run(http_t *h, int extra_fd, int timeout_ms);
/* Take the next finished transfer into *out: 1 when there was one, 0 when none. */
int http_next_done(http_t *h, http_done_t *out);
/* Transfers in flight now. */
int http_in_flight(const http_t *h);

#endif
