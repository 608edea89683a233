/* dsp_stats.c -- what the dispatcher tells about itself: the progress line and the numbers /metrics shows. */
#include "dispatcher/dsp_int.h"

/* The numbers /metrics shows that the loop keeps anyway, about once a second. */
static void metrics_tick(dsp_t *d, int64_t now)
{
	if (!d->met || now - d->last_metrics_ms < 1000)
		return;
	d->last_metrics_ms = now;
	dsp_metrics_gauges_t g = {.retries = d->n_retried,
	                          .in_flight = http_in_flight(d->http),
	                          .ready = (int64_t)dq_count(d->q, DQ_READY),
	                          .waiting = (int64_t)dq_count(d->q, DQ_TIMER) - d->n_held,
	                          .awaiting_ack = (int64_t)dq_unacked(d->q),
	                          .held = d->n_held,
	                          .lag = dsp_outbox_lag(d, 1),
	                          .ambiguous = d->n_ambiguous,
	                          .reconciled = d->n_reconciled,
	                          .resent_after_ambiguity = d->n_resent_amb};
	for (size_t i = 0; i < d->nvendors && i < DSP_METRICS_MAX_VENDORS; i++, g.nvendors++) {
		g.accepted[i] = d->vendors[i].accepted;
		g.failed[i] = d->vendors[i].failed;
		g.deferred[i] = d->vendors[i].deferred;
	}
	dsp_metrics_set(d->met, &g);
}

void dsp_progress(dsp_t *d, int64_t now)
{
	metrics_tick(d, now);
	if (now - d->last_progress_ms < 5000)
		return;
	d->last_progress_ms = now;
	/* where the pending messages are: an operator's first question when it stalls */
	log_info("event=progress consumed=%lld accepted=%lld failed=%lld retried=%lld "
	         "cancelled=%lld suppressed=%lld expired=%lld already_done=%lld pending=%zu "
	         "ready=%zu waiting=%zu in_flight=%d awaiting_ack=%zu done_unfreed=%zu "
	         "ambiguous=%lld ambiguous_held=%zu reconciled=%lld resent_after_ambiguity=%lld "
	         "ledgered=%lld backlog=%lld rate_share=%.3f refetched=%lld",
	         (long long)d->n_consumed, (long long)d->n_accepted, (long long)d->n_failed,
	         (long long)d->n_retried, (long long)d->n_cancelled, (long long)d->n_suppressed,
	         (long long)d->n_expired, (long long)d->n_already_done, d->npending,
	         dq_count(d->q, DQ_READY), dq_count(d->q, DQ_TIMER), http_in_flight(d->http),
	         dq_unacked(d->q), dq_count(d->q, DQ_DONE), (long long)d->n_ambiguous, d->n_amb_held,
	         (long long)d->n_reconciled, (long long)d->n_resent_amb, (long long)d->n_ledgered,
	         (long long)dsp_backlog(d), d->rate_share, (long long)d->n_refetched);
}
