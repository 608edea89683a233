/* vnd.h -- the one vendor interface: build a request, classify the answer, parse webhooks. */
#ifndef TOCSIN_VND_H
#define TOCSIN_VND_H
#include <stddef.h>

#include "core/buf.h"
#include "core/cfg.h"
#include "core/msg.h"

/* The retry taxonomy of VENDORS.md: every adapter maps every answer to one. */
typedef enum vnd_outcome {
	VND_ACCEPTED = 0, /* the vendor took it; ref is its id */
	VND_DEFER,        /* retry later (429, 5xx, timeout, connection failure, throttled) */
	VND_PERMANENT,    /* never retry: invalid number, landline, content rejected */
	VND_OPTOUT,       /* the recipient opted out at the vendor: final + an opt-out event */
	VND_CONFIG,       /* credentials / sender wrong: the vendor is unusable until fixed */
} vnd_outcome_t;

const char *vnd_outcome_name(vnd_outcome_t o);

/* The answer for one message of a request. */
typedef struct vnd_result {
	vnd_outcome_t outcome;
	int throttled;      /* 1 when the defer was a rate limit (429 / Vonage status 1) */
	int retry_after_ms; /* from Retry-After, or -1 */
	char ref[96];       /* vendor message reference (Twilio SM…, Vonage message-id, …) */
	char code[32];      /* vendor error code, e.g. "21211", "http_503", "curl_7" */
	char detail[200];   /* short reason; never contains a secret */
} vnd_result_t;

/* One HTTP request as built by an adapter; the caller sends it with libcurl.
 * Buffers are owned by the request (vnd_req_init / vnd_req_free) and reused
 * across requests: vnd_build resets them. */
typedef struct vnd_req {
	buf_t url;
	buf_t body;
	buf_t content_type; /* "application/x-www-form-urlencoded", "application/json", … */
	buf_t userpwd;      /* "user:password" for HTTP Basic, or empty */
	buf_t bearer;       /* token for "Authorization: Bearer", or empty */
} vnd_req_t;

void vnd_req_init(vnd_req_t *r);
void vnd_req_free(vnd_req_t *r);

typedef struct vnd vnd_t;

/* An adapter for vendor v (its kind picks the implementation). c gives the
 * public URL for status callbacks. Fails (NULL + err) when the kind is unknown
 * or the secret's environment variable is unset. Caller owns the result
 * (vnd_free). Main thread; the adapter is then used by one thread. */
vnd_t *vnd_new(const cfg_t *c, const cfg_vendor_t *v, char *err, size_t errlen);
void vnd_free(vnd_t *a);

const cfg_vendor_t *vnd_cfg(const vnd_t *a);
/* Most messages one request may carry (1 for SMS vendors). */
int vnd_max_batch(const vnd_t *a);

/* Build the request for msgs[0..n) (1 <= n <= vnd_max_batch; in a batch all
 * share sender and content). Returns 0, TOCSIN_ERR_INVAL with err when a
 * message cannot be expressed for this vendor (e.g. no number for its sender
 * pool), TOCSIN_ERR_TOOBIG when it exceeds the vendor's limits. */
int vnd_build(vnd_t *a, const msg_out_t *const *msgs, size_t n, vnd_req_t *req, char *err,
              size_t errlen);

/* Classify the answer to a request built for msgs[0..n): http_status (0 when
 * the transfer failed, with curl_code set), the response body, and the
 * Retry-After in seconds (-1 if none). Fills results[0..n). Never fails:
 * unexpected answers are classified (an HTML error page from a proxy on a 5xx
 * is a defer; a 200 with a body it cannot read is a defer with a detail). */
void vnd_classify(vnd_t *a, const msg_out_t *const *msgs, size_t n, long http_status,
                  int curl_code, const char *body, size_t bodylen, long retry_after_s,
                  vnd_result_t *results);

#endif
