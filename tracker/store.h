/* store.h -- the tracker's sqlite store: messages by state, counts, time series, campaigns, vendors, opt-outs. */
#ifndef TOCSIN_TRK_STORE_H
#define TOCSIN_TRK_STORE_H
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/msg.h"

/* One store handle = one sqlite connection. A writer (tracker ingest) opens
 * it read-write; readers (HTTP API, `tocsin status`) open their own read-only
 * handles, which WAL lets run beside the writer. A handle is used by one
 * thread at a time. */
typedef struct trk_store trk_store_t;

/* Latency histogram: TRK_LAT_BUCKETS buckets; trk_lat_bound(i) is bucket i's
 * upper bound in ms (-1 for the last, open bucket). Any thread. */
#define TRK_LAT_BUCKETS 16
/* SQL expression giving a stored message id as text (ids of 32 hex digits are kept as blobs). */
#define TRK_ID_SQL "(CASE WHEN typeof(id)='blob' THEN lower(hex(id)) ELSE id END)"
int trk_lat_bucket(int64_t ms);
int trk_lat_bound(int i);

/* Open (and for a writer, create with parent directories and schema) the
 * store at path. readonly=1 fails with a clear err naming path when the file
 * does not exist. Caller owns the result (trk_store_free). Any thread. */
trk_store_t *trk_store_open(const char *path, int readonly, char *err, size_t errlen);
/* Commit nothing pending (a writer should trk_store_commit first); NULL is a no-op. */
void trk_store_free(trk_store_t *s);

/* Start a write transaction (writer only). 0 or TOCSIN_ERR_IO. */
int trk_store_begin(trk_store_t *s);
/* Flush batched counters and commit. 0 or TOCSIN_ERR_IO (then the
 * transaction is rolled back and the caller must not commit Kafka offsets). */
int trk_store_commit(trk_store_t *s);
/* 1 while a transaction is open. */
int trk_store_in_tx(const trk_store_t *s);

/* What a status record says of the vendor's answer to one send, classified as
 * the dispatcher's SLA monitor counts it (dispatcher/sla.h): accepted (ok), a
 * permanent per-recipient refusal (also ok for the SLA), a deferral that
 * counts against the vendor (5xx, refused, reset, other transport errors), a
 * timeout (curl 28), or a throttle (429, Twilio 20429, Vonage 1; never a
 * breach). A deferral is a `retrying` record, or a `failed`/`expired` one
 * whose detail is the dispatcher's "gave up after ..."/"expired after ..."
 * (its last try was deferred). Records without latency (receipts, cancels,
 * expiry before sending) are no answer. Any thread. */
enum {
	TRK_ANS_NONE = -1,
	TRK_ANS_OK = 0,
	TRK_ANS_REFUSED,
	TRK_ANS_ERROR,
	TRK_ANS_TIMEOUT,
	TRK_ANS_THROTTLED,
	TRK_ANS__COUNT
};
int trk_store_answer(const msg_status_t *st);

/* The plain-language reason for a failure code as the store keeps it (the
 * vendor's or the dispatcher's code; for a record without one, the state's
 * name), e.g. "21211" -> "invalid number". *permanent (may be NULL) is set to
 * 1 when sending again would fail the same way: invalid or landline number,
 * opted out, a configuration error (no route, a request that cannot be
 * built). Unknown codes read "vendor code <code>", not permanent. Returns a
 * static string or one written into buf. Any thread. */
const char *trk_code_reason(const char *code, int *permanent, char *buf, size_t buflen);

/* Fold one status event (inside a transaction). A message's state only moves
 * forward (msg_state_advances), except that a resend starts a new attempt
 * (tracker/README.md, "status-record rules"); a duplicate, a late event or a
 * record of an earlier attempt changes nothing. A `retrying` record with a
 * higher attempt than the stored one is new information (a further deferral)
 * and is counted. Returns
 * 1 when the message state changed, 0 when ignored, negative tocsin_err_t on
 * a database failure. st's strings are borrowed for the call. */
int trk_store_status(trk_store_t *s, const msg_status_t *st);
/* Fold a campaign record (latest ts wins). */
int trk_store_campaign(trk_store_t *s, const msg_campaign_t *c);
/* Fold a vendor-health record; each change is also kept on the timeline. */
int trk_store_vhealth(trk_store_t *s, const msg_vhealth_t *h);
/* Fold an opt-out record. */
int trk_store_optout(trk_store_t *s, const msg_optout_t *o);
/* Add an entry to the timeline (operator actions, failovers), with who did it
 * (actor: the control's person or role, NULL for none). */
int trk_store_event(trk_store_t *s, int64_t ts_ms, const char *kind, const char *subject,
                    const char *detail, const char *actor);
/* Keep an inbound free-text reply for review. */
int trk_store_inbound(trk_store_t *s, int64_t ts_ms, const char *vendor, const char *from,
                      const char *to, const char *body, const char *kind);

/* Drop per-second series older than before_s (Unix seconds); in its own
 * short transaction (writer, outside trk_store_begin/commit). Rows deleted, or
 * a negative tocsin_err_t. */
int trk_store_prune(trk_store_t *s, int64_t before_s);

/* ---- reads (any handle) ---- */

/* Counts of one campaign: total distinct messages, per state, per vendor x
 * state (vendor index into names[]; "" = no vendor yet). */
#define TRK_MAX_VENDORS 32
typedef struct trk_counts {
	int64_t total;
	int64_t states[MSG_ST__COUNT];
	size_t nvendors;
	char vendors[TRK_MAX_VENDORS][64];
	int64_t by_vendor[TRK_MAX_VENDORS][MSG_ST__COUNT];
	int64_t by_channel[MSG_CH__COUNT][MSG_ST__COUNT];
} trk_counts_t;

/* Fill out for campaign. TOCSIN_ERR_NOTFOUND when the store knows nothing of
 * it (no message and no campaign record). */
int trk_store_counts(trk_store_t *s, const char *campaign, trk_counts_t *out);

/* Append {"campaign":..,"total":N,"states":{..},"vendors":{..}} (zero states
 * omitted, vendor "" omitted) to b. */
int trk_counts_json(const char *campaign, const trk_counts_t *c, buf_t *b);

/* The campaign, vendor and vendor reference of message id as stored (0),
 * TOCSIN_ERR_NOTFOUND ("" in each); vendor/ref may be NULL. */
int trk_store_msg_info(trk_store_t *s, const char *id, char *camp, size_t camplen, char *vendor,
                       size_t vendorlen, char *ref, size_t reflen);

/* The earlier attempts of message id (a resent message's history): fn(vendor,
 * ref) for each until it returns nonzero. 1 when one did, 0 none, TOCSIN_ERR_IO. */
int trk_store_msg_earlier(trk_store_t *s, const char *id,
                          int (*fn)(void *ctx, const char *vendor, const char *ref), void *ctx);

/* The webhook replay memory's own file (WAL, 0600), apart from the store so
 * a webhook never waits for the ingest's transactions. Caller owns the result
 * (trk_store_free); only trk_store_seen / trk_store_unsee apply to it. */
trk_store_t *trk_store_open_seen(const char *path, char *err, size_t errlen);

/* Webhook replay memory (a trk_store_open_seen handle): take
 * key once. 1 when it is new (now remembered until now_s + keep_s), 0 when it
 * was taken before and has not expired, or TOCSIN_ERR_IO. Expired keys are
 * deleted as new ones come, so the table holds about one window's worth. */
int trk_store_seen(trk_store_t *s, const char *key, int64_t now_s, int64_t keep_s);
/* The same question without taking key: 1 new, 0 taken and not expired, or
 * TOCSIN_ERR_IO (the webhook path takes a key only once its records are acknowledged). */
int trk_store_seen_peek(trk_store_t *s, const char *key, int64_t now_s);
/* Write the keys taken since the last write in one transaction (trk_store_seen
 * does it every 256 keys; call it about every 100 ms, and trk_store_free does it
 * at the end): 0 or TOCSIN_ERR_IO. A crash loses the unwritten keys, so a
 * request repeated right after a crash may pass once. */
int trk_store_seen_flush(trk_store_t *s);
/* Forget key (its request could not be acted on: the vendor's retry must pass). */
int trk_store_unsee(trk_store_t *s, const char *key);

/* The campaign of message id into out (0), TOCSIN_ERR_NOTFOUND ("" in out). */
int trk_store_msg_campaign(trk_store_t *s, const char *id, char *out, size_t outlen);

/* The campaign that last messaged addr on channel ch (of its messages to that
 * address, the one with the latest event), into out: 0, TOCSIN_ERR_NOTFOUND
 * ("" in out) or TOCSIN_ERR_IO. Message ids being msg_make_id(campaign,
 * channel, address), it probes the id index once per campaign the store
 * knows (up to 5,000), so addr must be normalized as the producer does. Any
 * handle; the thread owning s. */
int trk_store_last_campaign(trk_store_t *s, msg_channel_t ch, const char *addr, char *out,
                            size_t outlen);

/* The raw sqlite3 handle, for the HTTP API's read queries. */
struct sqlite3 *trk_store_db(trk_store_t *s);

#endif
