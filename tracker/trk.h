/* trk.h -- the tracker's HTTP side (dashboard, JSON API, /metrics, webhooks) and its live counters. */
#ifndef TOCSIN_TRK_H
#define TOCSIN_TRK_H
#include <stddef.h>
#include <stdint.h>

#include "core/cfg.h"
#include "core/msg.h"

/* Live counters shared by the ingest loop and the HTTP threads (mutex inside).
 * Caller owns (trk_live_free; NULL is a no-op). Any thread. */
typedef struct trk_live trk_live_t;
trk_live_t *trk_live_new(void);
void trk_live_free(trk_live_t *l);
/* The ingest loop's consumer lag (messages behind the high watermark), -1 unknown. */
void trk_live_lag(trk_live_t *l, int64_t lag);
/* The ingest loop's view of the Kafka broker: since when it is unreachable
 * (wall ms), 0 when reachable. trk_live_broker_down() reads it. */
void trk_live_broker(trk_live_t *l, int64_t down_since_ms);
int64_t trk_live_broker_down(trk_live_t *l);
/* Ingest totals for /metrics. */
void trk_live_ingest(trk_live_t *l, int64_t total, int64_t applied, int64_t bad);

/* The HTTP server: listens on listen ("HOST:PORT", 127.0.0.1 only; port 0
 * picks one), writes "127.0.0.1:PORT" to <var_dir>/run/track.addr once
 * listening. Serves with its own threads and its own read-only store
 * connections and Kafka producer. cfg and live are borrowed and must outlive
 * the server. NULL + err on failure. Main thread. */
typedef struct trk_http trk_http_t;
trk_http_t *trk_http_new(const cfg_t *cfg, const char *listen, trk_live_t *live, char *err,
                         size_t errlen);
/* 0 when listen is a valid "HOST:PORT" on 127.0.0.1, else TOCSIN_ERR_INVAL with err. */
int trk_listen_check(const char *listen, char *err, size_t errlen);
/* "127.0.0.1:PORT" (owned by the server). */
const char *trk_http_addr(const trk_http_t *h);
/* Stop serving, flush the producer; NULL is a no-op. Main thread. */
void trk_http_free(trk_http_t *h);

#endif
