/* dsp_outcome.c -- the dispatcher's outcome path: a vendor's answer judged (accepted, deferred,
 * ambiguous, refused), final statuses and dead letters produced and acknowledged, SLA monitors fed. */
#include "dispatcher/dsp_int.h"
#include "core/clock.h"

#include <stdio.h>
#include <string.h>

/* An ambiguous send (no answer) waits for a receipt, looked for this often (tocsin.status is
 * followed all along), at most this many graces (dispatcher.ambiguous_grace_ms). */
#define DSP_AMB_RECHECK_MS 200
#define DSP_AMB_MAX_GRACES 3

void dsp_produce_status(dsp_t *d, dsp_msg_t *m, msg_state_t st, const char *vendor, const char *ref,
                        const char *code, const char *detail, int64_t latency_ms, int final)
{
	msg_status_t s = {.id = m->m.id,
	                  .campaign = m->m.campaign,
	                  .channel = m->m.channel,
	                  .to = m->m.to,
	                  .state = st,
	                  .vendor = vendor && *vendor ? vendor : NULL,
	                  .vendor_ref = ref && *ref ? ref : NULL,
	                  .code = code && *code ? code : NULL,
	                  .detail = detail && *detail ? detail : NULL,
	                  .latency_ms = latency_ms,
	                  .attempt = m->attempt,
	                  .ts_ms = clock_wall_ms()};
	buf_reset(&d->buf);
	if (msg_status_encode(&s, &d->buf)) {
		log_error("event=status_encode_failed id=%s", m->m.id);
		return;
	}
	if (kq_produce(d->prod, KQ_T_STATUS, m->m.id, strlen(m->m.id), d->buf.p, d->buf.len,
	               final ? m : NULL)) {
		d->n_status_errors++;
		if (final) /* not queued: try again from the loop */
			dq_refinal(d->q, m);
	}
}

/* tocsin.dead: m's original record with the state, code and reason. */
static void dead_letter(dsp_t *d, dsp_msg_t *m, msg_state_t st, const char *code, const char *reason)
{
	msg_dead_t dl = {.id = m->m.id,
	                 .campaign = m->m.campaign,
	                 .state = st,
	                 .code = code,
	                 .reason = reason,
	                 .attempts = m->attempt,
	                 .ts_ms = clock_wall_ms(),
	                 .message = m->rkm->payload,
	                 .message_len = m->rkm->len};
	buf_reset(&d->buf);
	if (msg_dead_encode(&dl, &d->buf))
		log_error("event=dead_encode_failed id=%s", m->m.id);
	else
		kq_produce(d->prod, KQ_T_DEAD, m->m.id, strlen(m->m.id), d->buf.p, d->buf.len, NULL);
}

/* Record the final outcome and put it on tocsin.status; the message is done
 * (its offset may be committed) once the broker has acknowledged it. */
void dsp_finish(dsp_t *d, dsp_msg_t *m, msg_state_t st, const char *vendor, const char *ref,
                const char *code, const char *detail, int64_t latency_ms)
{
	m->final_state = st;
	snprintf(m->vendor_name, sizeof m->vendor_name, "%s", vendor ? vendor : "");
	snprintf(m->ref, sizeof m->ref, "%s", ref ? ref : "");
	snprintf(m->code, sizeof m->code, "%s", code ? code : "");
	snprintf(m->detail, sizeof m->detail, "%s", detail ? detail : "");
	m->latency_ms = latency_ms;
	dq_final(d->q, m);
	switch (st) {
	case MSG_ST_ACCEPTED: d->n_accepted++; break;
	case MSG_ST_CANCELLED: d->n_cancelled++; break;
	case MSG_ST_SUPPRESSED: d->n_suppressed++; break;
	case MSG_ST_EXPIRED: d->n_expired++; break;
	default: d->n_failed++; break;
	}
	if (st == MSG_ST_FAILED || st == MSG_ST_EXPIRED) {
		dead_letter(d, m, st, m->code, m->detail);
		dsp_metrics_dead(d->met);
	}
	dsp_produce_status(d, m, st, m->vendor_name, m->ref, m->code, m->detail, latency_ms, 1);
}

void dsp_on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
	(void)rk;
	dsp_t *d = opaque;
	dsp_msg_t *m = rkm->_private;
	if (!m)
		return;
	if (rkm->err) {
		log_warn("event=status_not_delivered id=%s err=\"%s\" action=retry", m->m.id,
		         rd_kafka_err2str(rkm->err));
		d->n_status_errors++;
		dq_refinal(d->q, m); /* re-produced from the loop; the offset waits */
		return;
	}
	dq_acked(d->q, m);
	dsp_msg_done(d, m);
	d->last_ack_ms = clock_mono_ms();
	d->n_finals_acked++;
	d->last_final_ns = clock_mono_ns();
	if (m->discard) { /* its partition is gone: nobody will pop it */
		dsp_msg_free(d, m);
		return;
	}
	dsp_part_advance(d, m->part);
}

static int is_timeout(int curl_code) { return curl_code == 28; /* CURLE_OPERATION_TIMEDOUT */ }

static sla_outcome_t sla_outcome_of(const vnd_result_t *r, int curl_code)
{
	switch (r->outcome) {
	case VND_DEFER:
		if (r->throttled)
			return SLA_THROTTLED;
		return is_timeout(curl_code) ? SLA_TIMEOUT : SLA_ERROR;
	case VND_CONFIG: return SLA_ERROR;
	default: return SLA_OK;
	}
}

/* m was deferred by vendor (code, detail: its answer): retry it after a backoff, or
 * finish it failed or expired when the retry rules say so. */
static void defer(dsp_t *d, dsp_msg_t *m, const char *vendor, int retry_after_ms, int throttled,
                  const char *code, const char *detail, int64_t lat)
{
	msg_out_t probe = m->m;
	probe.attempt = m->attempt;
	retry_decision_t rd;
	int64_t wall = clock_wall_ms();
	retry_decide(d->retry, &probe, wall, retry_after_ms > 0 ? retry_after_ms : 0, throttled, &rd);
	if (rd.verdict == RETRY_FINAL_ATTEMPTS || rd.verdict == RETRY_FINAL_EXPIRED) {
		char why[300];
		snprintf(why, sizeof why, "%s after %d attempts; last answer: %s",
		         rd.verdict == RETRY_FINAL_EXPIRED ? "expired" : "gave up", m->attempt + 1,
		         detail);
		m->attempt++;
		dsp_finish(d, m, rd.verdict == RETRY_FINAL_EXPIRED ? MSG_ST_EXPIRED : MSG_ST_FAILED,
		           vendor, NULL, code, why, lat);
		return;
	}
	m->attempt = rd.next_attempt;
	d->n_retried++;
	dsp_produce_status(d, m, MSG_ST_RETRYING, vendor, NULL, code, detail, lat, 0);
	dq_timer(d->q, m, clock_mono_ms() + rd.delay_ms);
}

/* The request carrying m went out and no answer came back (a timeout, a connection
 * reset or closed after sending): the vendor may have taken it. Not retried blindly:
 * held for dispatcher.ambiguous_grace_ms while tocsin.status is followed for a receipt
 * (vendors echo our id in their callbacks; the tracker puts them there). */
static void amb_hold(dsp_t *d, dsp_msg_t *m, const char *vendor, const char *why, int64_t lat)
{
	int64_t now = clock_mono_ms();
	m->amb_until = now + d->amb_grace_ms;
	d->n_amb_held++;
	d->n_ambiguous++;
	d->amb_last_ms = now;
	char detail[300];
	snprintf(detail, sizeof detail,
	         "no answer after the request went out (%.150s): held up to %lld ms for a receipt "
	         "before sending again",
	         why, (long long)d->amb_grace_ms);
	dsp_produce_status(d, m, MSG_ST_RETRYING, vendor, NULL, "ambiguous", detail, lat, 0);
	dq_timer(d->q, m, now + DSP_AMB_RECHECK_MS);
}

/* An ambiguous m's timer: a receipt on tocsin.status confirms the vendor took it (it
 * is finished accepted, "reconciled"); past its grace with none it is sent again
 * ("resent_after_ambiguity", noted on tocsin.dead: the recipient may get two). */
void dsp_amb_check(dsp_t *d, dsp_msg_t *m, int64_t now)
{
	dsp_vendor_t *v = m->last_vendor >= 0 ? &d->vendors[m->last_vendor] : NULL;
	const char *vendor = v ? v->v->name : NULL;
	if (dsp_state_finished(d->st, m->m.id) == DSP_DONE_SENT) {
		dsp_amb_end(d, m);
		d->n_reconciled++;
		if (v)
			v->accepted++;
		dsp_ledger_add(d->ledger, m->m.id);
		dsp_ledger_flush(d->ledger);
		dsp_finish(d, m, MSG_ST_ACCEPTED, vendor, NULL, "reconciled",
		           "the request got no answer; a receipt confirmed the vendor took it", -1);
		return;
	}
	/* held until the grace is over and tocsin.status is read up to where it ended when
	 * the following last (re)started (a rebalance's catch-up seeks it back), at most
	 * DSP_AMB_MAX_GRACES graces */
	if (now < m->amb_until || (dsp_state_follow_behind(d->st) &&
	                           now < m->amb_until + (DSP_AMB_MAX_GRACES - 1) * d->amb_grace_ms)) {
		dq_timer(d->q, m, now + DSP_AMB_RECHECK_MS);
		return;
	}
	dsp_amb_end(d, m);
	d->n_resent_amb++;
	static const char why[] = "the request got no answer and no receipt came within "
	                          "dispatcher.ambiguous_grace_ms: sent again (the recipient may "
	                          "get it twice)";
	dead_letter(d, m, MSG_ST_RETRYING, "ambiguous_resent", why);
	log_info("event=ambiguous_resent id=%s vendor=%s status_records_read=%llu following=%d",
	         m->m.id, vendor ? vendor : "", (unsigned long long)dsp_state_status_read(d->st),
	         dsp_state_following(d->st));
	defer(d, m, vendor, 0, 0, "ambiguous_resent", why, -1);
}

/* Log a state change of vendor vi's monitor; published (tocsin.vendor-health) so every
 * dispatcher applies it and the tracker's timeline shows it, unless local. */
static void vendor_state_note(dsp_t *d, int vi, const sla_transition_t *t, int local)
{
	dsp_vendor_t *v = &d->vendors[vi];
	char line[512];
	sla_format(t, v->v->name, line, sizeof line);
	log_warn("event=vendor_state %s%s", line, local ? " scope=this_dispatcher" : "");
	dsp_metrics_sla(d->met, vi, t->from, t->to);
	if (local)
		return;
	msg_vhealth_t h;
	sla_vhealth(t, v->v->name, d->client_id, clock_wall_ms(), &h);
	buf_reset(&d->buf);
	if (!msg_vhealth_encode(&h, &d->buf))
		kq_produce(d->prod, KQ_T_VENDOR_HEALTH, v->v->name, strlen(v->v->name), d->buf.p,
		           d->buf.len, NULL);
}

/* Vendor vi refused our credentials or sender (r): not the recipient's fault, and no later
 * request from this process will do better. It is unusable until this dispatcher restarts:
 * its monitor is opened at once, so route_pick() passes it by and new messages go to the next
 * vendor instead of waiting for it, and neither its ticks nor another's record brings it back.
 * The open state is this dispatcher's only (not published): a dispatcher restarted with a new
 * secret must not inherit it, and every other one learns the same from its own first refusal. */
static void take_out(dsp_t *d, int vi, const vnd_result_t *r)
{
	dsp_vendor_t *v = &d->vendors[vi];
	log_error("event=vendor_unusable vendor=%s code=%s detail=\"%s\" action=failover "
	          "msg=\"fix its credentials or senders and restart the dispatcher\"",
	          v->v->name, r->code, r->detail);
	v->unusable = 1;
	char why[160];
	snprintf(why, sizeof why, "refused our credentials or sender (%.40s): until restarted",
	         r->code[0] ? r->code : "config");
	sla_transition_t t;
	if (sla_apply(v->sla, MSG_VH_OPEN, 0, clock_mono_ms(), why, &t) == 1)
		vendor_state_note(d, vi, &t, 1);
}

static void on_result(dsp_t *d, dsp_msg_t *m, dsp_vendor_t *v, int vi, const vnd_result_t *r,
                      int64_t lat, int unanswered)
{
	m->vendor = -1;
	switch (r->outcome) {
	case VND_ACCEPTED:
		v->accepted++;
		dsp_ledger_add(d->ledger, m->m.id);
		dsp_finish(d, m, MSG_ST_ACCEPTED, v->v->name, r->ref, NULL, NULL, lat);
		return;
	case VND_PERMANENT:
		v->failed++;
		dsp_finish(d, m, MSG_ST_FAILED, v->v->name, r->ref, r->code, r->detail, lat);
		return;
	case VND_OPTOUT: {
		v->failed++;
		dsp_state_add_optout(d->st, m->m.channel, m->m.to);
		msg_optout_t o = {.channel = m->m.channel,
		                  .address = m->m.to,
		                  .source = "vendor",
		                  .campaign = m->m.campaign,
		                  .ts_ms = clock_wall_ms()};
		char key[512];
		buf_reset(&d->buf);
		if (msg_optout_key(m->m.channel, m->m.to, key, sizeof key) > 0 &&
		    !msg_optout_encode(&o, &d->buf))
			kq_produce(d->prod, KQ_T_OPTOUTS, key, strlen(key), d->buf.p, d->buf.len, NULL);
		dsp_finish(d, m, MSG_ST_FAILED, v->v->name, r->ref, r->code[0] ? r->code : "opted_out",
		           r->detail[0] ? r->detail : "recipient opted out at the vendor", lat);
		return;
	}
	case VND_CONFIG:
		/* Not the recipient's fault: the vendor is unusable until fixed. The
		 * attempt is not charged; the message goes to another vendor or waits. */
		if (!v->unusable)
			take_out(d, vi, r);
		m->last_vendor = vi;
		dsp_admit(d, m, clock_mono_ms());
		return;
	case VND_DEFER: break;
	}
	v->deferred++;
	m->last_vendor = vi;
	if (unanswered && d->amb_grace_ms > 0) {
		amb_hold(d, m, v->v->name, r->detail, lat);
		return;
	}
	defer(d, m, v->v->name, r->retry_after_ms, r->throttled, r->code, r->detail, lat);
}

void dsp_on_done(dsp_t *d, http_done_t *hd)
{
	dsp_req_t *r = hd->opaque;
	int vi = r->vendor;
	dsp_vendor_t *v = &d->vendors[vi];
	v->inflight--;
	size_t n = r->n;
	dq_landed(d->q, r->dest, r->msgs, n);
	for (size_t i = 0; i < n; i++)
		d->batch[i] = &r->msgs[i]->m;
	vnd_classify(v->a, d->batch, n, hd->status, hd->curl_code, hd->body, hd->bodylen,
	             hd->retry_after_s, d->results);
	if (hd->curl_code) /* say what the transport said, and where: for the on-call engineer */
		for (size_t i = 0; i < n; i++)
			snprintf(d->results[i].detail, sizeof d->results[i].detail, "%s (%s)",
			         hd->errstr, v->v->base_url);
	int64_t lat = hd->latency_ns / 1000000;
	int64_t now_ms = clock_mono_ms();
	/* One request is one sample for the SLA: the first message's outcome
	 * speaks for the transport. */
	sla_outcome_t so = sla_outcome_of(&d->results[0], hd->curl_code);
	sla_record(v->sla, now_ms, so, hd->latency_ns / 1000);
	dsp_metrics_answer(d->met, vi, so);
	if (so == SLA_THROTTLED) {
		int64_t now_ns = clock_mono_ns();
		rl_throttled(v->rl, now_ns);
		if (d->results[0].retry_after_ms > 0)
			rl_hold_until(v->rl, now_ns + (int64_t)d->results[0].retry_after_ms * 1000000);
		v->throttled++;
		if (now_ms - v->last_throttle_log_ms >= 1000) {
			v->last_throttle_log_ms = now_ms;
			log_warn("event=vendor_throttled vendor=%s throttled=%lld rate_per_s=%.1f factor=%.2f "
			         "retry_after_ms=%d",
			         v->v->name, (long long)v->throttled, rl_rate(v->rl, now_ns),
			         rl_factor(v->rl, now_ns), d->results[0].retry_after_ms);
		}
	}
	if (log_enabled(TLOG_DEBUG))
		log_debug("event=send_done vendor=%s messages=%zu outcome=%s http=%ld code=%s "
		          "latency_ms=%lld",
		          v->v->name, n, vnd_outcome_name(d->results[0].outcome), hd->status,
		          d->results[0].code, (long long)lat);
	http_release(d->http, hd->xfer);
	for (size_t i = 0; i < n; i++)
		on_result(d, r->msgs[i], v, vi, &d->results[i], lat, hd->unanswered);
	dsp_ledger_flush(d->ledger); /* the ids this answer took, in one write */
	r->n = 0;
	r->next_free = d->free_reqs;
	d->free_reqs = r;
}

/* Apply what other dispatchers and operators published on
 * tocsin.vendor-health, then let each monitor judge its window. */
void dsp_sla_check(dsp_t *d, int64_t now_ms)
{
	int judge = now_ms - d->last_sla_ms >= 200;
	if (judge) /* requests in flight past each vendor's p95_ms: a hang shows before timeout_ms */
		for (size_t i = 0; i < d->nvendors; i++) {
			dsp_vendor_t *v = &d->vendors[i];
			if (!v->a)
				continue;
			int n = 0;
			int64_t oldest = 0, p95 = (int64_t)sla_opts(v->sla)->p95_ms;
			for (int k = 0; p95 > 0 && v->inflight && k < d->cfg->max_in_flight; k++) {
				const dsp_req_t *r = &d->reqs[k];
				if (r->n && r->vendor == (int)i && now_ms - r->sent_ms > p95) {
					n++;
					if (now_ms - r->sent_ms > oldest)
						oldest = now_ms - r->sent_ms;
				}
			}
			sla_overdue(v->sla, n, oldest);
		}
	for (size_t i = 0; i < d->nvendors; i++) {
		dsp_vendor_t *v = &d->vendors[i];
		if (!v->a)
			continue;
		msg_vh_state_t st;
		int by_op;
		sla_transition_t t;
		uint64_t seq = dsp_state_vendor_rec(d->st, v->v->name, &st, &by_op);
		if (seq != v->health_seq) {
			v->health_seq = seq;
			/* refused our credentials: out until restarted, whatever anyone says */
			if (v->unusable)
				continue;
			if (sla_apply(v->sla, st, by_op, now_ms,
			              by_op ? "operator" : "another dispatcher", &t) == 1) {
				char line[512];
				sla_format(&t, v->v->name, line, sizeof line);
				log_info("event=vendor_state_applied %s by=%s", line,
				         by_op ? "operator" : "tocsin.vendor-health");
				dsp_metrics_sla(d->met, (int)i, t.from, t.to);
			}
		}
		if (now_ms - d->last_sla_ms < 200)
			continue;
		if (!v->unusable && sla_tick(v->sla, now_ms, &t) == 1)
			vendor_state_note(d, (int)i, &t, 0);
	}
	if (now_ms - d->last_sla_ms >= 200)
		d->last_sla_ms = now_ms;
}
