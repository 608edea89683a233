/* api.h -- the tracker's read queries as JSON / CSV / Prometheus text, and the dashboard page. */
#ifndef TOCSIN_TRK_API_H
#define TOCSIN_TRK_API_H
#include "core/buf.h"
#include "core/cfg.h"
#include "tracker/store.h"

/* A query context: the config (vendors, SLA thresholds) and a read-only store
 * handle, both borrowed. Every call appends its answer to b and returns 0,
 * TOCSIN_ERR_NOTFOUND, TOCSIN_ERR_INVAL (with the reason written to b),
 * TOCSIN_ERR_TOOBIG (b's cap) or TOCSIN_ERR_IO. The thread owning rd. */
typedef struct trk_api_q {
	const cfg_t *cfg;
	trk_store_t *rd;
	/* optional: append vendor's live webhook counters as `,"webhooks":{..}` to b */
	void (*wh_json)(void *ctx, const char *vendor, buf_t *b);
	void *wh_ctx;
} trk_api_q_t;

/* {"campaigns":[{"id","name","state","queued","total","states":{..},"optouts","progress"}]} */
int trk_api_campaigns(trk_api_q_t *q, buf_t *b);
/* One campaign: the above plus "vendors":{name:{state:n}} and "codes":[{"vendor","code","n"}]. */
int trk_api_campaign(trk_api_q_t *q, const char *id, buf_t *b);
/* {"vendors":[{"name","kind","channel","state","reason","by","ts_ms","sla":{..},
 * "webhook_auth","webhooks":{..},"recent":{..}}]} */
int trk_api_vendors(trk_api_q_t *q, buf_t *b);
/* Per-second series over the last seconds (1..3600): totals and per vendor. */
int trk_api_series(trk_api_q_t *q, const char *campaign, int seconds, buf_t *b);
/* Why running campaigns cannot progress: {"alerts":[{"kind":"broker","since_ms","text"},
 * {"kind":"no_vendor","channel","vendors","campaigns":[..],"text"}]}; broker_down_ms is
 * when the tracker lost the Kafka broker (0 = reachable). */
int trk_api_alerts(trk_api_q_t *q, int64_t broker_down_ms, buf_t *b);
/* {"events":[{"ts_ms","kind","subject","detail","actor"}]}, newest first, limit 1..1000. */
int trk_api_timeline(trk_api_q_t *q, int limit, buf_t *b);
/* {"inbound":[{"ts_ms","vendor","from","to","body","kind"}]}, newest first. */
int trk_api_inbound(trk_api_q_t *q, int limit, buf_t *b);
/* Recipients of campaign id in states (comma list of state names, or NULL
 * for every state but delivered: "who did not get it"), with a failure code
 * in codes (comma list, as the "codes" of a campaign's "reasons"; NULL = any;
 * a record without a code matches its state's name), after message row
 * `after` (the "next" of the previous page), limit 1..10000 per page as JSON
 * {"items":[..],"next":".."|null}, or csv=1: every row as CSV with a header
 * (limit ignored; bounded by b's cap). */
int trk_api_recipients(trk_api_q_t *q, const char *id, const char *states, const char *codes,
                       const char *after, int limit, int csv, buf_t *b);
/* Prometheus text exposition of the store's counters, latency histograms and states. */
int trk_api_metrics(trk_api_q_t *q, buf_t *b);

/* The dashboard: one self-contained HTML page (no external resources). */
extern const char trk_dashboard_html[];

#endif
