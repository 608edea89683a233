/* sla.h -- per-vendor SLA monitor: rolling window of latency/errors/timeouts/receipts, failover state with hysteresis. */
#ifndef TOCSIN_SLA_H
#define TOCSIN_SLA_H
#include <stddef.h>
#include <stdint.h>

#include "core/cfg.h"
#include "core/msg.h"

/* Thresholds and timings, from the vendor's "sla" object (dispatcher/README.md).
 * A plain value struct. */
typedef struct sla_opts {
	double p95_ms;        /* latency p95 above this breaches; 0 = not checked. default 2000 */
	double error_rate;    /* errors / answers above this breaches. default 0.2 */
	double timeout_rate;  /* timeouts / answers above this breaches. default 0.1 */
	double min_delivered; /* delivered / receipts below this breaches; 0 = off. default 0 */
	int window_s;         /* rolling window, 1 s buckets, 1..60. default 5 */
	int min_samples;      /* answers (or receipts) needed to judge. default 20 */
	int min_open_s;       /* minimum time open before probing. default 5 */
	int probe_windows;    /* consecutive good probe windows before traffic returns. default 3 */
	int probe_min_samples; /* answers in a probe window to judge it. default 5 */
	double probe_fraction; /* share of the vendor's traffic while probing. default 0.05 */
	int ramp_s; /* traffic returns linearly from probe_fraction to 1 over this. default 10 */
	double recover_ratio; /* a probe window is good when every metric is within
	                         recover_ratio x its threshold (hysteresis band). default 0.8 */
} sla_opts_t;

/* The defaults above. */
void sla_opts_default(sla_opts_t *o);
/* Fill o from defaults overridden by the fields of obj (the vendor's "sla"
 * object; NULL = defaults). Returns 0, or TOCSIN_ERR_CONFIG with a reason
 * naming vendor and field in err (vendor may be NULL). Any thread. */
int sla_opts_parse(const json_t *obj, const char *vendor, sla_opts_t *o, char *err, size_t errlen);

typedef enum sla_outcome {
	SLA_OK = 0, /* the vendor answered: accepted, or a permanent per-recipient failure */
	SLA_ERROR,  /* 5xx, connection refused/reset, malformed answer: counts against the vendor */
	SLA_TIMEOUT, /* no answer within the vendor's timeout */
	SLA_THROTTLED, /* 429: counted and reported, but never a breach (the rate limiter slows down) */
} sla_outcome_t;

/* The numbers of one window, as reported with a transition. */
typedef struct sla_stats {
	int64_t answers; /* ok + error + timeout */
	int64_t ok, errors, timeouts, throttled;
	int64_t receipts, delivered;
	double p50_ms, p95_ms, p99_ms;   /* -1 when no latency sample */
	double error_rate, timeout_rate; /* -1 when no answer */
	double delivered_ratio;          /* -1 when no receipt */
} sla_stats_t;

/* A state change, for the caller to log and publish as msg_vhealth_t. */
typedef struct sla_transition {
	msg_vh_state_t from, to;
	char reason[160];  /* e.g. "error_rate 0.42 > 0.20 (n=50)", "3 good probe windows" */
	sla_stats_t stats; /* the window that decided */
	int64_t ts_ms;     /* the caller's now_ms */
} sla_transition_t;

typedef struct sla sla_t;

/* A monitor for one vendor with options o, starting healthy at full traffic.
 * name is copied. NULL with a reason in err. Owned by the caller (sla_free()).
 * Not thread-safe: one thread (the dispatcher's loop) owns it. */
sla_t *sla_new(const char *name, const sla_opts_t *o, char *err, size_t errlen);
/* sla_new() with options from v->raw "sla" (errors name the vendor and field). */
sla_t *sla_new_vendor(const cfg_vendor_t *v, char *err, size_t errlen);
void sla_free(sla_t *s);

/* Count one answer at now_ms (monotonic ms) with its latency in microseconds
 * (ignored for SLA_THROTTLED). O(1), no allocation. A time more than 63 s
 * older than the newest recorded is ignored. */
void sla_record(sla_t *s, int64_t now_ms, sla_outcome_t o, int64_t latency_us);
/* The caller's requests in flight to this vendor now: n of them older than
 * p95_ms, the oldest oldest_ms old. A healthy vendor with at least
 * probe_min_samples such requests and no answer at all for p95_ms is hung:
 * the next sla_tick() opens it ("p95_ms 2000: hung, ..."), without waiting for the
 * requests' timeout_ms. Call before each sla_tick(). */
void sla_overdue(sla_t *s, int n, int64_t oldest_ms);
/* Count one delivery receipt: delivered = 1, undelivered/failed = 0. */
void sla_receipt(sla_t *s, int64_t now_ms, int delivered);

/* Evaluate at now_ms; call at least once a second (e.g. every 100-250 ms).
 * Returns 1 and fills *t when the state changed (healthy->open on a breach
 * or a hang (sla_overdue()),
 * open->probing after min_open_s, probing->open on a bad probe window,
 * probing->healthy after probe_windows good windows), else 0. Drained never
 * changes here. */
int sla_tick(sla_t *s, int64_t now_ms, sla_transition_t *t);

/* Apply a state decided elsewhere (another dispatcher's record on
 * tocsin.vendor-health, or an operator): timers restart at now_ms; entering
 * healthy starts the ramp; stats before now_ms no longer count. A drained
 * vendor leaves drained only when operator is 1; from anyone else that is
 * ignored with TOCSIN_ERR_STATE. Applying the current state changes nothing
 * and returns 0 (*t untouched). Returns 1 and fills *t (if not NULL) when the
 * state changed. */
int sla_apply(sla_t *s, msg_vh_state_t st, int operator, int64_t now_ms, const char *reason,
              sla_transition_t *t);

/* Fill h (for msg_vhealth_encode()) from transition t of vendor name, decided
 * by `by` (e.g. the dispatcher's client id) at wall-clock ts_ms. h's strings
 * point into t and into the arguments: keep them alive while h is used. */
void sla_vhealth(const sla_transition_t *t, const char *vendor, const char *by, int64_t ts_ms,
                 msg_vhealth_t *h);
/* Write t as one key=value log fragment into out (always NUL-terminated):
 * vendor=tw from=healthy to=open reason="error_rate 0.42 > 0.20 (n=50)"
 * answers=50 error_rate=0.420 timeout_rate=0.000 p50_ms=.. p95_ms=.. p99_ms=..
 * delivered=-1. Returns the length snprintf would have written. */
int sla_format(const sla_transition_t *t, const char *vendor, char *out, size_t outlen);

msg_vh_state_t sla_state(const sla_t *s);
/* Share of this vendor's normal traffic it should get now: 1 healthy, ramping
 * from probe_fraction to 1 over ramp_s after recovery, probe_fraction while
 * probing, 0 open or drained. */
double sla_fraction(const sla_t *s, int64_t now_ms);
/* The current window's numbers (healthy: the last window_s seconds; probing:
 * the current probe window). */
void sla_stats(sla_t *s, int64_t now_ms, sla_stats_t *out);
const char *sla_name(const sla_t *s);
const sla_opts_t *sla_opts(const sla_t *s);

#endif
