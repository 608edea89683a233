/* vsend.h -- the one way to send to a vendor outside the dispatcher: synchronous, paced by the vendor's limits. */
#ifndef TOCSIN_VSEND_H
#define TOCSIN_VSEND_H
#include <stddef.h>
#include <stdint.h>

#include "core/cfg.h"
#include "core/msg.h"
#include "vendors/vnd.h"

/* A vsend_t sends to one configured vendor from outside the dispatcher: `tocsin
 * vendor-send`, the tracker's SMS replies (STOP confirmation, HELP), the tracker's
 * receipt reconciliation (vsend_lookup) and the browser's test send. Each request is
 *   - built by the vendor's adapter exactly as the dispatcher builds it (vnd_build),
 *   - sent by the dispatcher's HTTP engine (vendors/http.h, on the caller's thread),
 *   - classified by the adapter (vnd_classify: the retry taxonomy of VENDORS.md),
 *   - paced by the vendor's configured limits through the dispatcher's limiter
 *     (core/rl.h: rate_per_s, rate_per_sender or the pool's rate_per_number, burst,
 *     rate_decrease...), counting SMS segments (at least 1 a message) or emails.
 * So the sends of one vsend_t never exceed the vendor's limits: any 1-second
 * window holds at most rate_per_s + burst units (and per sender number its own
 * rate + burst), however many calls come at once; a 429 / "throttled" answer
 * slows it down and a Retry-After holds it, as in the dispatcher. The limits are
 * this vsend_t's own: the dispatchers' share of the vendor is not counted (the
 * tracker's replies are few next to a blast: tracker.reply_per_minute).
 *
 * Threads: a vsend_t is used by one thread at a time (the caller's); calls block
 * for the limiter's wait and the request (at most max_wait_ms + the vendor's
 * timeout_ms). Owned by the caller (vsend_new / vsend_free; NULL is a no-op). */
typedef struct vsend vsend_t;

/* The clock and the wait, replaceable for tests (a controllable clock) and for a
 * caller that must stop waiting at shutdown. NULL fields: the monotonic clock and
 * nanosleep. wait_ns returns nonzero to give up the wait (the call then returns
 * TOCSIN_ERR_TIMEOUT, nothing sent). */
typedef struct vsend_opts {
	int64_t (*now_ns)(void *ctx);
	int (*wait_ns)(void *ctx, int64_t ns);
	void *ctx;
} vsend_opts_t;

/* A sender for vendor v of c (both borrowed: they must outlive it); o may be NULL.
 * NULL with err (naming the vendor and, for a missing secret, its environment
 * variable, never its value) when the adapter or the limiter cannot be built. */
vsend_t *vsend_new(const cfg_t *c, const cfg_vendor_t *v, const vsend_opts_t *o, char *err,
                   size_t errlen);
void vsend_free(vsend_t *s);

/* The adapter (for vnd_max_batch, vnd_lookup_has, vnd_cfg). Borrowed. */
vnd_t *vsend_vnd(vsend_t *s);

/* The vendor's SLA state as the caller knows it (tocsin.vendor-health; default
 * healthy): while it is open or drained, vsend_msgs refuses (TOCSIN_ERR_AGAIN)
 * without sending, as the dispatcher does; probing and healthy send. */
void vsend_set_health(vsend_t *s, msg_vh_state_t st);

/* What happened to the request as a whole. */
typedef struct vsend_info {
	long http_status;   /* 0 when the transfer failed */
	int curl_code;      /* CURLcode, 0 on success */
	int64_t latency_ms; /* the request alone */
	int64_t waited_ms;  /* held by the limits before it went */
} vsend_info_t;

/* Send msgs[0..n) (1..vnd_max_batch; a batch shares sender pool and content) as one
 * request, after waiting for the limits of msgs[0]'s sender pool up to max_wait_ms
 * (-1: as long as it takes). Returns 0 when the request went out: results[0..n)
 * holds each message's outcome (vnd_classify; a transfer failure is a defer) and
 * info (may be NULL) the request's; or, with nothing sent and nothing taken from
 * the limits: TOCSIN_ERR_TIMEOUT (the limits would hold it longer, or wait_ns gave
 * up), TOCSIN_ERR_AGAIN (the vendor is open or drained), TOCSIN_ERR_INVAL /
 * TOCSIN_ERR_TOOBIG with err (the adapter cannot build it: vnd_build),
 * TOCSIN_ERR_NOMEM / TOCSIN_ERR_HTTP. */
int vsend_msgs(vsend_t *s, const msg_out_t *const *msgs, size_t n, int max_wait_ms,
               vnd_result_t *results, vsend_info_t *info, char *err, size_t errlen);

/* Ask the vendor what became of the message it accepted as ref (vnd_lookup_build /
 * vnd_lookup_parse), one unit of the vendor's limit, waiting for it up to
 * max_wait_ms. 0 with *out; TOCSIN_ERR_NOTFOUND (no lookup API: nothing sent; or the
 * vendor does not know ref), TOCSIN_ERR_AGAIN (transfer failure, 429, 5xx),
 * TOCSIN_ERR_AUTH, TOCSIN_ERR_INVAL (bad ref, unreadable answer), TOCSIN_ERR_TIMEOUT
 * as vsend_msgs; err says which. */
int vsend_lookup(vsend_t *s, const char *ref, int max_wait_ms, vnd_lookup_t *out, char *err,
                 size_t errlen);

#endif
