/* recon.h -- receipts that never came: ask the vendor where it has an API, else mark the message unknown_receipt after a deadline. */
#ifndef TOCSIN_TRK_RECON_H
#define TOCSIN_TRK_RECON_H
#include <stddef.h>
#include <stdint.h>

#include "core/cfg.h"
#include "core/msg.h"
#include "tracker/store.h"
#include "vendors/vnd.h"

/* A message the store holds as `accepted` or `sent` (taken by the vendor, its
 * final receipt not folded) whose last status record is older than
 * tracker.reconcile_after_s is reconciled, in passes every reconcile_after_s / 5
 * (1..60 s):
 *   - when its vendor has a lookup API (vnd_lookup_has: Twilio), the vendor is asked
 *     (vsend_lookup: the adapter's request, the HTTP engine, the vendor's rate limit),
 *     at most once per reconcile_after_s per message; an answer that moves the
 *     message forward (sent, delivered, undelivered, failed) is published on
 *     tocsin.status as a receipt would be (latency -1, attempt 0, the stored
 *     vendor_ref, detail "reconciled: vendor says <status>");
 *   - once its last record is older than tracker.unknown_receipt_after_s and nothing
 *     moved it, it is published as `unknown_receipt` (code "no_receipt"): not final,
 *     so a receipt that comes later still moves it on.
 * Nothing is changed in the store directly: the ingest folds the records like any
 * other. Campaign "" (receipts that matched no message) is left alone. */
typedef struct trk_recon trk_recon_t;

/* What a pass uses of the outside world, replaceable in tests: the wall clock (ms),
 * the question to vendor v about ref (0 with *out, or a tocsin_err_t: no answer),
 * and the publication of one status record (0 or a tocsin_err_t). NULL fields: the
 * real ones (clock_wall_ms, a vsend per vendor, a Kafka producer on tocsin.status). */
typedef struct trk_recon_io {
	int64_t (*now_ms)(void *ctx);
	int (*ask)(void *ctx, const cfg_vendor_t *v, const char *ref, vnd_lookup_t *out);
	int (*publish)(void *ctx, const msg_status_t *st);
	void *ctx;
} trk_recon_io_t;

/* A reconciler for cfg (borrowed; outlives it); io may be NULL. The real publisher
 * needs the broker (NULL + err when it cannot be reached). Main thread. */
trk_recon_t *trk_recon_new(const cfg_t *cfg, const trk_recon_io_t *io, char *err, size_t errlen);
/* Stop its thread (if started) and free; NULL is a no-op. Main thread. */
void trk_recon_free(trk_recon_t *r);

/* One pass over the store s (any handle, e.g. read-only): the number of records
 * published, or a negative tocsin_err_t (TOCSIN_ERR_IO: the store). The thread
 * owning r and s. */
int trk_recon_pass(trk_recon_t *r, trk_store_t *s);

/* Run passes on a thread of its own (with its own read-only handle on
 * cfg->db_path) until trk_recon_free. 0 or TOCSIN_ERR_NOMEM with err. Main thread. */
int trk_recon_start(trk_recon_t *r, char *err, size_t errlen);

/* Totals since start. Any thread. */
typedef struct trk_recon_stats {
	int64_t passes;
	int64_t asked;      /* questions sent to vendors */
	int64_t reconciled; /* records published from a vendor's answer */
	int64_t unknown;    /* unknown_receipt records published */
	int64_t errors;     /* questions unanswered, records not published */
} trk_recon_stats_t;
void trk_recon_stats(trk_recon_t *r, trk_recon_stats_t *out);

#endif
