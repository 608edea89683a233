/* dsp_metrics.h -- a dispatcher's Prometheus /metrics: sends, defers by reason, retries, in flight, waits, SLA transitions, dead letters, lag, held. */
#ifndef TOCSIN_DSP_METRICS_H
#define TOCSIN_DSP_METRICS_H
#include <stddef.h>
#include <stdint.h>

#include "core/cfg.h"
#include "core/msg.h"

/* Each dispatcher serves its own metrics over HTTP when
 * dispatcher.metrics_listen is set ("127.0.0.1:PORT"; port 0 picks one and
 * writes it to <var_dir>/run/<client_id>.metrics.addr). Counters are kept by
 * the dispatcher's loop thread; the server thread renders them under a mutex.
 * Not set: dsp_metrics_new returns NULL with err "" and every call below is a
 * no-op on NULL. */
typedef struct dsp_metrics dsp_metrics_t;

/* Vendors are cfg->vendors by index; channel is this dispatcher's. NULL with
 * err set on a bad listen address or a port in use. Caller owns
 * (dsp_metrics_free; NULL is a no-op). Main thread. */
dsp_metrics_t *dsp_metrics_new(const cfg_t *cfg, msg_channel_t channel, const char *client_id,
                               char *err, size_t errlen);
void dsp_metrics_free(dsp_metrics_t *m);
/* "127.0.0.1:PORT" (owned by m). */
const char *dsp_metrics_addr(const dsp_metrics_t *m);

/* ---- events, from the loop thread ---- */
/* A vendor's answer to a request, as the SLA monitor classed it (sla_outcome_t). */
void dsp_metrics_answer(dsp_metrics_t *m, int vendor, int sla_outcome);
/* A destination had to wait for vendor's rate limiter. */
void dsp_metrics_rl_wait(dsp_metrics_t *m, int vendor);
/* vendor's SLA state changed from -> to (msg_vh_state_t). */
void dsp_metrics_sla(dsp_metrics_t *m, int vendor, int from, int to);
/* A message (or an unreadable record) went to tocsin.dead. */
void dsp_metrics_dead(dsp_metrics_t *m);

/* ---- the numbers the loop already keeps, copied about once a second ---- */
#define DSP_METRICS_MAX_VENDORS 32
typedef struct dsp_metrics_gauges {
	int64_t retries;                      /* retries scheduled */
	int64_t in_flight;                    /* HTTP requests */
	int64_t ready, waiting, awaiting_ack; /* pending messages by where they are */
	int64_t held;                         /* waiting for a usable vendor */
	int64_t lag;                          /* outbox records not yet consumed, -1 unknown */
	/* sends whose request went out with no answer back, and what became of them */
	int64_t ambiguous, reconciled, resent_after_ambiguity;
	size_t nvendors;
	int64_t accepted[DSP_METRICS_MAX_VENDORS], failed[DSP_METRICS_MAX_VENDORS],
	    deferred[DSP_METRICS_MAX_VENDORS];
} dsp_metrics_gauges_t;
void dsp_metrics_set(dsp_metrics_t *m, const dsp_metrics_gauges_t *g);

#endif
