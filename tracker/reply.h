/* reply.h -- the tracker's slow webhook work on one worker thread: SMS replies (STOP confirmation, HELP text) and the inbound review list. */
#ifndef TOCSIN_TRK_REPLY_H
#define TOCSIN_TRK_REPLY_H
#include <stddef.h>
#include <stdint.h>

#include "core/cfg.h"

/* A bounded queue (TRK_REPLY_QUEUE jobs) served by one worker thread, so a
 * webhook is acknowledged before anything slow happens: the worker sends SMS
 * replies through the vendor's vsend (vendors/vsend.h: the adapter's request, the
 * HTTP engine, the vendor's rate limit and its SLA state as the store folded it
 * from tocsin.vendor-health; up to 3 tries on a defer or while the vendor is open
 * or drained) and writes inbound texts for review with its own sqlite connection. cfg is borrowed and must outlive the worker. NULL + err
 * on failure. Main thread. */
#define TRK_REPLY_QUEUE 512
typedef struct trk_reply trk_reply_t;
trk_reply_t *trk_reply_new(const cfg_t *cfg, char *err, size_t errlen);
/* Stop the worker: the jobs still queued get up to 5 s, then the rest are
 * dropped (counted, logged). NULL is a no-op. Main thread. */
void trk_reply_free(trk_reply_t *r);

/* Queue text as one SMS to `to` (E.164) through vendor v (borrowed from the
 * cfg), sent from the number of v's sender pool whose number is `via` (the
 * number the inbound message reached; NULL or unknown = v's first pool).
 * Limits first: `to` must be in one of the "reply_countries" (calling codes)
 * of that sender pool, else of v (default "1"), else TOCSIN_ERR_INVAL; at most tracker.reply_per_number_hour
 * replies to one number per hour and tracker.reply_per_minute in all, else
 * TOCSIN_ERR_TOOBIG (both counted and logged, bounded). Returns 0,
 * TOCSIN_ERR_AGAIN when the queue is full (the reply is dropped and
 * counted), TOCSIN_ERR_CONFIG when v has no usable adapter (secret unset).
 * Strings are copied (truncated to fit). Any thread. */
int trk_reply_sms(trk_reply_t *r, const cfg_vendor_t *v, const char *to, const char *via,
                  const char *text);

/* The limits alone, for a reply the vendor sends itself (Twilio's inline
 * TwiML) from our number `via`: 0 (counted against the limits), TOCSIN_ERR_INVAL, TOCSIN_ERR_TOOBIG
 * as above, TOCSIN_ERR_CONFIG when v is not from the cfg. Any thread. */
int trk_reply_permit(trk_reply_t *r, const cfg_vendor_t *v, const char *to, const char *via);

/* Queue an inbound message for the review list (trk_store_inbound). 0 or
 * TOCSIN_ERR_AGAIN (queue full: dropped, counted). Any thread. */
int trk_reply_inbound(trk_reply_t *r, int64_t ts_ms, const char *vendor, const char *from,
                      const char *to, const char *body, const char *kind);

/* Totals since start: replies accepted by the vendor, replies that failed
 * (refused, or still deferred after the last try), jobs dropped (queue full or
 * at shutdown), jobs waiting now, replies refused by the limits. Any thread. */
typedef struct trk_reply_stats {
	int64_t sent, failed, dropped, queued;
	int64_t limited, refused_country; /* not queued: over a rate limit / country not allowed */
} trk_reply_stats_t;
void trk_reply_stats(trk_reply_t *r, trk_reply_stats_t *out);

/* Wait up to timeout_ms until the queue is empty and the worker idle: 0, or
 * TOCSIN_ERR_TIMEOUT. Any thread but the worker (tests, shutdown). */
int trk_reply_drain(trk_reply_t *r, int timeout_ms);

#endif
