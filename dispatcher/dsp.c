/* dsp.c -- `tocsin dispatch`: consume the outbox, send through vendors, report every outcome,
 * commit offsets only past messages whose final outcome is on tocsin.status. */
#include "dispatcher/dsp_queue.h"
#include "dispatcher/dsp_ledger.h"
#include "dispatcher/dsp_metrics.h"
#include "dispatcher/dsp_share.h"
#include "dispatcher/dsp_state.h"
#include "dispatcher/retry.h"
#include "core/rl.h"
#include "dispatcher/route.h"
#include "dispatcher/sla.h"
#include "core/clock.h"
#include "core/cmd.h"
#include "core/err.h"
#include "core/kq.h"
#include "core/log.h"
#include "core/runfile.h"
#include "core/sig.h"
#include "vendors/http.h"
#include "vendors/vnd.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <sys/file.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DSP_MAX_PARTS 1024
#define DSP_MAX_BODY (1 << 20) /* largest vendor response read */
#define DSP_PAUSED_RECHECK_MS 200
/* Offsets are committed this often: what a kill -9 can resend is what was sent in this
 * window plus what was in flight. */
#define DSP_COMMIT_EVERY_MS 100
/* Finished messages held behind an unfinished one of their partition (their offset
 * cannot be committed yet) may number this many times --max-pending: they no longer
 * count in the window, so a slow destination at a partition's head does not stop
 * every other one (each holds its arena, its record is released). */
#define DSP_DONE_HELD_FACTOR 4
/* A pending window full this long means sending is stuck, not just busy: pause. */
#define DSP_STUCK_PAUSE_MS 2000
/* rl_set_share() takes a fraction: the share in ten-thousandths. */
#define DSP_SHARE_SCALE 10000
/* The share by backlog is computed this often (published every DSP_SHARE_EVERY_MS). */
#define DSP_SHARE_TICK_MS 100
/* A catch-up holding sends is logged after this long, then this often (catch_up_tick). */
#define DSP_CATCH_UP_LOG_MS 5000
#define DSP_CATCH_UP_LOG_EVERY_MS 30000
/* Final statuses waiting this long with no acknowledgement from the broker at all: it is
 * unreachable, and sending stops (an outcome that cannot be recorded would be sent again). */
#define DSP_ACK_STALL_MS 1500
/* Stopping while the broker is unreachable: what is in flight gets this long. */
#define DSP_STOP_UNREACHABLE_MS 2500
/* A send with no answer (ambiguous) is held dispatcher.ambiguous_grace_ms (default) for a
 * receipt, which is looked for this often (tocsin.status is followed all along). */
#define DSP_AMB_GRACE_MS 10000
#define DSP_AMB_RECHECK_MS 200
#define DSP_AMB_MAX_GRACES 3

typedef struct dsp_part dsp_part_t;

struct dsp_part {
	int32_t partition;
	kq_lane_t lane;
	int assigned;
	int held; /* paused until the state catch-up of its assignment is done (catch_up_tick) */
	dsp_msg_t *head, *tail;
	int64_t next_offset; /* last consumed + 1, -1 before the first */
	int64_t committed;   /* last committed offset, -1 none */
};

typedef struct dsp_vendor {
	vnd_t *a; /* NULL: not on this channel's route */
	const cfg_vendor_t *v;
	rl_t *rl;            /* rate limits: vendor and sender numbers, in segments */
	sla_t *sla;          /* SLA monitor and failover state */
	uint64_t health_seq; /* last tocsin.vendor-health record applied */
	int inflight;
	int unusable; /* config error seen: credentials or sender wrong */
	int64_t sent, accepted, deferred, failed, throttled;
	int64_t last_throttle_log_ms;
} dsp_vendor_t;

/* One HTTP request in flight: the messages it carries (one for SMS, up to the
 * vendor's batch size for email). Pooled, never allocated per message. */
typedef struct dsp_req {
	dsp_msg_t **msgs;
	size_t n, cap;
	int vendor;
	dq_dest_t *dest; /* the destination whose window it counts in */
	int64_t sent_ms; /* mono ms it was submitted (hang detection) */
	struct dsp_req *next_free;
} dsp_req_t;

/* One lane of the outbox: its topic, the partitions of it this dispatcher owns,
 * and its own window of pending messages (so bulk records never hold urgent
 * ones out of memory). */
typedef struct dsp_lane {
	const char *topic;
	int total_parts; /* partitions of the topic */
	int owned;       /* of them assigned to this dispatcher now */
	dsp_part_t *parts[DSP_MAX_PARTS];
	size_t npending;       /* consumed and not yet freed */
	size_t ndone;          /* of those, finished: held until the partition's head finishes */
	int paused;            /* consumption paused for backpressure */
	int64_t full_since_ms; /* mono ms since the window was full with nothing leaving it; 0 */
	uint64_t n_left, full_left; /* messages finished: all, and when full_since_ms was set */
} dsp_lane_t;

typedef struct dsp {
	cfg_t *cfg;
	msg_channel_t channel;
	dsp_lane_t lanes[KQ_LANE__COUNT];
	char group[64];
	char client_id[96];
	rd_kafka_t *cons;  /* outbox consumer-group member */
	rd_kafka_t *prod;  /* status / dead / optout producer */
	rd_kafka_t *state; /* campaigns, opt-outs, vendor health: read from the start */
	rd_kafka_queue_t *q_cons, *q_prod, *q_state;
	rd_kafka_queue_t *q_urgent; /* the urgent lane's partitions, forwarded here: polled first */
	int wake[2];
	http_t *http;
	dsp_vendor_t *vendors; /* indexed like cfg->vendors */
	sla_t **slas;          /* the same monitors, as route_pick() takes them */
	size_t nvendors;
	route_t *route;
	retry_t *retry;
	dsp_req_t *reqs, *free_reqs;
	const msg_out_t **batch; /* reused argument array for vnd_build/classify */
	vnd_result_t *results;
	size_t batch_cap;
	int64_t last_sla_ms;
	dq_t *q;                  /* destinations, timers, the message lifecycle */
	unsigned serve_turn;      /* rotates which destination of a priority is served first */
	size_t npending;          /* consumed and not yet freed, both lanes */
	size_t max_pending;       /* per lane */
	int draining;             /* no new sends (stop or revoke) */
	int64_t unacked_since_ms; /* mono ms since final statuses wait unacknowledged; 0 none */
	int64_t last_ack_ms;      /* mono ms of the broker's last acknowledgement */
	int64_t held_since_ms;    /* mono ms since sending stopped: broker unreachable; 0 not */
	int64_t last_commit_ms;
	int64_t catch_since_ms;  /* mono ms of the assignment whose catch-up holds sends; 0 none */
	int64_t catch_logged_ms; /* mono ms the wait was last logged */
	dsp_state_t *st;         /* campaign states, opt-outs, vendor health */
	dsp_share_t *share; /* the peers' backlogs (rate shares by backlog); NULL: by partitions */
	int owned_parts;    /* partitions of both lanes owned now */
	double rate_share;  /* the share of every vendor's rate applied now */
	int64_t share_pub_ms;  /* mono ms this dispatcher's backlog was last published */
	int64_t share_tick_ms; /* mono ms the share was last computed */
	dsp_ledger_t *ledger;  /* ids a vendor took, kept outside Kafka (dsp_ledger.h) */
	char instance[128];    /* group.instance.id, "" when a dynamic member */
	int slot_fd;           /* the flock'd slot file behind instance, -1 none */
	buf_t buf;             /* reused encode buffer */
	/* counters */
	int64_t n_consumed, n_accepted, n_failed, n_retried, n_cancelled, n_suppressed, n_expired;
	int64_t n_status_errors;
	int64_t n_finals_acked; /* final statuses the broker acknowledged */
	int64_t n_already_done; /* consumed again after a rebalance or crash: not resent */
	int64_t n_ledgered;     /* consumed again after the broker lost its outcome: not resent */
	int64_t first_consume_ns, last_final_ns;
	int64_t last_progress_ms;
	dsp_metrics_t *met;              /* /metrics (dsp_metrics.h), NULL when not served */
	int64_t n_held, last_metrics_ms; /* messages held for want of a usable vendor */
	/* ambiguous sends (the request went out, no answer came): held for a receipt */
	int64_t amb_grace_ms; /* dispatcher.ambiguous_grace_ms; 0: retried at once */
	int64_t n_ambiguous, n_reconciled, n_resent_amb;
	size_t n_amb_held;   /* held now */
	int64_t amb_last_ms; /* mono ms one was last held */
} dsp_t;

/* ------------------------------------------------------------------ messages */

/* m's ambiguity ends (confirmed, resent or dropped). */
static void amb_end(dsp_t *d, dsp_msg_t *m)
{
	if (m->amb_until) {
		m->amb_until = 0;
		d->n_amb_held--;
	}
}

static void msg_free(dsp_t *d, dsp_msg_t *m)
{
	d->n_held -= m->held;
	amb_end(d, m);
	if (m->watched)
		dsp_state_watch(d->st, m->m.id, 0);
	dsp_lane_t *l = &d->lanes[m->lane];
	if (m->where == DQ_DONE)
		l->ndone--;
	dq_release(d->q, m);
	if (m->rkm)
		rd_kafka_message_destroy(m->rkm);
	free(m);
	d->npending--;
	l->npending--;
}

/* m just became DONE: it leaves its lane's window; its record is not needed any more. */
static void msg_done(dsp_t *d, dsp_msg_t *m)
{
	dsp_lane_t *l = &d->lanes[m->lane];
	l->ndone++;
	l->n_left++;
	if (m->rkm) {
		rd_kafka_message_destroy(m->rkm);
		m->rkm = NULL;
	}
}

/* Messages of lane l in the window: consumed and not finished. */
static size_t lane_active(const dsp_lane_t *l) { return l->npending - l->ndone; }

/* May lane l take another record? Room in the window, and not too many finished
 * ones held behind an unfinished partition head. */
static int lane_room(const dsp_t *d, const dsp_lane_t *l)
{
	return lane_active(l) < d->max_pending && l->ndone < DSP_DONE_HELD_FACTOR * d->max_pending;
}

/* Pop finished messages off the head of their partition and free them. */
static void part_advance(dsp_t *d, dsp_part_t *p)
{
	while (p->head && p->head->where == DQ_DONE) {
		dsp_msg_t *m = p->head;
		p->head = m->part_next;
		if (!p->head)
			p->tail = NULL;
		msg_free(d, m);
	}
}

/* ------------------------------------------------------------------ status events */

static void produce_status(dsp_t *d, dsp_msg_t *m, msg_state_t st, const char *vendor, const char *ref,
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
static void finish(dsp_t *d, dsp_msg_t *m, msg_state_t st, const char *vendor, const char *ref,
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
	produce_status(d, m, st, m->vendor_name, m->ref, m->code, m->detail, latency_ms, 1);
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
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
	msg_done(d, m);
	d->last_ack_ms = clock_mono_ms();
	d->n_finals_acked++;
	d->last_final_ns = clock_mono_ns();
	if (m->discard) { /* its partition is gone: nobody will pop it */
		msg_free(d, m);
		return;
	}
	part_advance(d, m->part);
}

/* ------------------------------------------------------------------ sending */

static int is_timeout(int curl_code) { return curl_code == 28; /* CURLE_OPERATION_TIMEDOUT */ }

/* Same campaign, sender and shared content (subject/text/html with their
 * substitution placeholders), so one batch request can carry both; per-recipient
 * "headers" (List-Unsubscribe) and "subs" travel in each recipient's slot. */
static int batchable(const msg_out_t *a, const msg_out_t *b)
{
#define SAME(f) ((a->f == NULL && b->f == NULL) || (a->f && b->f && !strcmp(a->f, b->f)))
	return SAME(campaign) && SAME(sender) && SAME(subject) && SAME(text) && SAME(html) &&
	       strcmp(a->to, b->to) != 0;
#undef SAME
}

/* Take from destination src the messages that can share m's request to
 * vendor vi (batch vendors only), up to the batch size; m itself first. They
 * come from m's campaign list, which holds messages produced together. */
static size_t gather(dsp_t *d, dsp_msg_t *m, dq_dest_t *src, int vi, dsp_req_t *r)
{
	size_t max = (size_t)vnd_max_batch(d->vendors[vi].a);
	if (max > r->cap)
		max = r->cap;
	r->msgs[0] = m;
	r->n = 1;
	if (max <= 1)
		return 1;
	/* addresses already in the batch: an open-addressed table of 64-bit hashes
	 * (an address twice would make the vendor refuse the whole request) */
	enum { GT = 4096 };
	uint64_t tab[GT];
	int use_tab = max * 2 <= GT;
	if (use_tab) {
		memset(tab, 0, sizeof tab);
		uint64_t h = hash64(m->m.to, strlen(m->m.to), 11) | 1;
		tab[h & (GT - 1)] = h;
	}
	int64_t wall = clock_wall_ms();
	const dsp_msg_t *q;
	while (r->n < max && (q = dq_peek_same(src, m))) {
		/* the first that cannot join ends the batch: it goes on its own turn */
		if (q->discard || !batchable(&m->m, &q->m) ||
		    dsp_state_campaign(d->st, q->m.campaign) != MSG_CAMP_RUNNING ||
		    dsp_state_opted_out(d->st, q->m.channel, q->m.to) ||
		    (q->m.expires_ms > 0 && wall >= q->m.expires_ms) || q->m.not_before_ms > wall)
			break;
		int dup = 0;
		if (use_tab) { /* same hash: compare the addresses themselves */
			uint64_t h = hash64(q->m.to, strlen(q->m.to), 11) | 1;
			size_t k = h & (GT - 1);
			for (; tab[k] && !dup; k = (k + 1) & (GT - 1))
				if (tab[k] == h)
					for (size_t i = 0; i < r->n && !dup; i++)
						dup = !strcmp(r->msgs[i]->m.to, q->m.to);
			if (!dup)
				tab[k] = h;
		} else
			for (size_t i = 0; i < r->n && !dup; i++)
				dup = !strcmp(r->msgs[i]->m.to, q->m.to);
		if (dup)
			break;
		r->msgs[r->n++] = dq_pop_same(d->q, src, m);
	}
	return r->n;
}

/* Give messages r->msgs[from..n) back to the front of src, in order. */
static void unsend_from(dsp_t *d, dq_dest_t *src, dsp_req_t *r, size_t from)
{
	for (size_t i = r->n; i > from; i--)
		dq_unpop(d->q, r->msgs[i - 1], src);
	r->n = from;
}

static void req_put(dsp_t *d, dsp_req_t *r)
{
	r->n = 0;
	r->next_free = d->free_reqs;
	d->free_reqs = r;
}

/* What happens to m (held, NONE) before it may be sent: cancelled, paused,
 * expired, opted out or not yet due are dealt with here. Returns 1 when m was
 * handled so, 0 when it may go. */
static int settle(dsp_t *d, dsp_msg_t *m, int64_t now_ms)
{
	msg_camp_state_t cs = dsp_state_campaign(d->st, m->m.campaign);
	if (cs == MSG_CAMP_CANCELLED) {
		finish(d, m, MSG_ST_CANCELLED, NULL, NULL, "cancelled", "campaign cancelled", -1);
		return 1;
	}
	if (cs == MSG_CAMP_PAUSED) {
		dq_timer(d->q, m, now_ms + DSP_PAUSED_RECHECK_MS);
		return 1;
	}
	int64_t wall = clock_wall_ms();
	if (retry_expired(&m->m, wall)) {
		finish(d, m, MSG_ST_EXPIRED, NULL, NULL, "expired",
		       "expired before it could be sent", -1);
		return 1;
	}
	if (dsp_state_opted_out(d->st, m->m.channel, m->m.to)) {
		finish(d, m, MSG_ST_SUPPRESSED, NULL, NULL, "opted_out",
		       "recipient opted out before sending", -1);
		return 1;
	}
	if (m->m.not_before_ms > wall) {
		dq_timer(d->q, m, now_ms + (m->m.not_before_ms - wall));
		return 1;
	}
	return 0;
}

/* The sender slot of m's pool at vendor v (-1: the vendor has no number of its own for it). */
static int sender_slot(const dsp_vendor_t *v, const dsp_msg_t *m)
{
	return rl_sender(v->rl, m->m.sender ? m->m.sender : "main");
}

/* A held message (NONE) finds its destination: the vendor the route picks for
 * it now, and that vendor's queue of its sender pool. */
static void admit(dsp_t *d, dsp_msg_t *m, int64_t now_ms)
{
	d->n_held -= m->held;
	m->held = 0;
	if (settle(d, m, now_ms))
		return;
	int vi;
	int rc = route_pick(d->route, &m->m, d->slas, now_ms, m->last_vendor, &vi);
	if (rc == TOCSIN_ERR_NOTFOUND) {
		char why[160];
		snprintf(why, sizeof why,
		         "no %s vendor of the route has a number for sender pool \"%s\"",
		         msg_channel_name(d->channel), m->m.sender ? m->m.sender : "main");
		finish(d, m, MSG_ST_FAILED, NULL, NULL, "no_route", why, -1);
		return;
	}
	dsp_vendor_t *v = rc == 0 ? &d->vendors[vi] : NULL;
	if (!v || !v->a || v->unusable) {
		/* Every vendor that could take it is open, drained, probing or
		 * unusable: hold it; consumption pauses when too many wait. */
		m->held = 1;
		d->n_held++;
		dq_timer(d->q, m, now_ms + 100);
		return;
	}
	dq_ready(d->q, m, dq_dest(d->q, vi, sender_slot(v, m)));
}

/* Send m (just popped from destination src) in one request through vendor vi.
 * Returns 0 when handled, 1 when the destination must wait (its vendor's
 * window or its limiter: m is back in src, src's timer set for a rate limit),
 * -1 when the dispatcher has no request left (m is back in src). */
static int send_one(dsp_t *d, dsp_msg_t *m, dq_dest_t *src, int vi, int64_t now_ms)
{
	dsp_vendor_t *v = &d->vendors[vi];
	dq_dest_t *dst = dq_dest(d->q, vi, sender_slot(v, m));
	if (v->inflight >= v->v->max_in_flight) {
		dq_unpop(d->q, m, src);
		return 1;
	}
	if (!d->free_reqs) {
		dq_unpop(d->q, m, src);
		return -1;
	}
	int64_t now_ns = clock_mono_ns();
	int slot = dq_dest_slot(dst);
	int units = m->m.channel == MSG_CH_SMS && m->m.segments > 0 ? m->m.segments : 1;
	int64_t wait_ms;
	if ((wait_ms = rl_wait_ms(v->rl, slot, units, now_ns)) > 0) {
		dsp_metrics_rl_wait(d->met, vi);
		/* rounded up to a whole ms: the timer never fires early, so nothing spins */
		dq_dest_wait(dst, now_ms + (wait_ms == RL_NEVER ? 100 : wait_ms));
		dq_unpop(d->q, m, src);
		return 1;
	}
	dsp_req_t *r = d->free_reqs;
	d->free_reqs = r->next_free;
	size_t n = gather(d, m, src, vi, r);
	/* The whole batch must fit the limiter now; send fewer if it does not. */
	while (n > 1 && rl_wait_ns(v->rl, slot, units * (int)n, now_ns) > 0)
		n--;
	unsend_from(d, src, r, n);
	http_xfer_t *x = http_acquire(d->http);
	if (!x) {
		unsend_from(d, src, r, 0);
		req_put(d, r);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		d->batch[i] = &r->msgs[i]->m;
	char err[256];
	int rc = vnd_build(v->a, d->batch, n, http_xfer_req(x), err, sizeof err);
	if (rc && n > 1) { /* one bad message must not fail its batch: send m alone */
		unsend_from(d, src, r, 1);
		n = 1;
		rc = vnd_build(v->a, d->batch, 1, http_xfer_req(x), err, sizeof err);
	}
	if (rc) {
		http_release(d->http, x);
		req_put(d, r);
		finish(d, m, MSG_ST_FAILED, v->v->name, NULL, "build", err, -1);
		return 0;
	}
	if (rl_take(v->rl, slot, units * (int)n, now_ns, NULL) != 0)
		rl_take(v->rl, slot, 1, now_ns, NULL); /* oversize first message: charged as it goes */
	if (http_submit(d->http, x, v->v->timeout_ms, r)) {
		http_release(d->http, x);
		unsend_from(d, src, r, 0);
		req_put(d, r);
		return -1;
	}
	r->vendor = vi;
	r->dest = dst;
	r->sent_ms = now_ms;
	dq_inflight(d->q, dst, r->msgs, n);
	for (size_t i = 0; i < n; i++) {
		dsp_msg_t *q = r->msgs[i];
		q->vendor = vi;
		/* a receipt of a send that gets no answer may be published before the request
		 * times out: its id is looked for in tocsin.status from the send on */
		if (d->amb_grace_ms > 0 && !q->watched) {
			dsp_state_watch(d->st, q->m.id, 1);
			q->watched = 1;
		}
		if (q->attempt == 0)
			retry_note_send(d->retry, clock_wall_ms());
	}
	v->inflight++;
	v->sent += (int64_t)n;
	return 0;
}

/* The sender pool of destination x, or NULL for the queue of pools its vendor has no number for. */
static const char *dest_pool(const dsp_t *d, const dq_dest_t *x)
{
	int s = dq_dest_slot(x);
	return s < 0 ? NULL : d->vendors[dq_dest_vendor(x)].v->senders[s].pool;
}

static int same_pool(const dsp_t *d, const dq_dest_t *a, const dq_dest_t *b)
{
	const char *pa = dest_pool(d, a), *pb = dest_pool(d, b);
	return pa && pb && !strcmp(pa, pb);
}

/* Send messages waiting in destination src through vendor vi (its own, or
 * another with room), until src is empty or vi must wait. Returns -1 when the dispatcher has no
 * request left, else 0. */
static int lend(dsp_t *d, dq_dest_t *src, int vi, int64_t now_ms)
{
	dsp_msg_t *m;
	while ((m = dq_pop(d->q, src))) {
		if (m->discard) {
			msg_free(d, m);
			continue;
		}
		if (settle(d, m, now_ms))
			continue;
		int rc = send_one(d, m, src, vi, now_ms);
		if (rc)
			return rc < 0 ? -1 : 0;
	}
	return 0;
}

/* Send what destination src holds until it is empty or must wait. A vendor
 * that can no longer take traffic (open, drained, unusable) gives its
 * messages back to the route. Returns -1 when the dispatcher has no request
 * left (stop serving), else 0. */
static int serve(dsp_t *d, dq_dest_t *src, int64_t now_ms)
{
	int vi = dq_dest_vendor(src);
	dsp_vendor_t *v = &d->vendors[vi];
	dsp_msg_t *m;
	if (v->unusable || sla_fraction(v->sla, now_ms) <= 0) {
		while ((m = dq_pop(d->q, src))) {
			if (m->discard)
				msg_free(d, m);
			else
				admit(d, m, now_ms);
		}
		return 0;
	}
	if (dq_dest_wait_until(src) > now_ms)
		return 0;
	return lend(d, src, vi, now_ms);
}

/* Serve every destination with ready messages: the highest priority waiting
 * first, destinations of equal priority in turns. */
static void serve_all(dsp_t *d, int64_t now_ms)
{
	size_t nd = dq_ndests(d->q), n = 0;
	dq_dest_t *order[nd ? nd : 1];
	int top[nd ? nd : 1];
	d->serve_turn++;
	for (size_t k = 0; k < nd; k++) {
		dq_dest_t *x = dq_dest_at(d->q, (k + d->serve_turn) % nd);
		if (!dq_dest_ready(x))
			continue;
		/* insertion by priority, stable: the rotation decides among equals */
		int t = dq_dest_top(x);
		size_t i = n++;
		while (i > 0 && top[i - 1] < t) {
			order[i] = order[i - 1];
			top[i] = top[i - 1];
			i--;
		}
		order[i] = x;
		top[i] = t;
	}
	for (size_t i = 0; i < n; i++)
		if (serve(d, order[i], now_ms) < 0)
			return;
	/* What is still ready now waits on its own vendor (limiter, window). A
	 * vendor of the route at full traffic with nothing of its own to send for
	 * the same sender pool takes it: a busy, slow or hung vendor's backlog
	 * fills the others' spare capacity, in route order. */
	for (size_t k = 0; k < route_count(d->route); k++) {
		int vi = route_vendor(d->route, k);
		dsp_vendor_t *v = &d->vendors[vi];
		if (!v->a || v->unusable || sla_fraction(v->sla, now_ms) < 1)
			continue;
		for (size_t s = 0; s < v->v->nsenders; s++) {
			dq_dest_t *to = dq_dest(d->q, vi, (int)s);
			if (dq_dest_ready(to) || dq_dest_wait_until(to) > now_ms)
				continue;
			for (size_t i = 0; i < n; i++) {
				dq_dest_t *from = order[i];
				if (from == to || !dq_dest_ready(from) || !same_pool(d, from, to))
					continue;
				if (lend(d, from, vi, now_ms) < 0)
					return;
				if (dq_dest_wait_until(to) > now_ms || v->inflight >= v->v->max_in_flight)
					break;
			}
		}
	}
}

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
		finish(d, m, rd.verdict == RETRY_FINAL_EXPIRED ? MSG_ST_EXPIRED : MSG_ST_FAILED,
		       vendor, NULL, code, why, lat);
		return;
	}
	m->attempt = rd.next_attempt;
	d->n_retried++;
	produce_status(d, m, MSG_ST_RETRYING, vendor, NULL, code, detail, lat, 0);
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
	produce_status(d, m, MSG_ST_RETRYING, vendor, NULL, "ambiguous", detail, lat, 0);
	dq_timer(d->q, m, now + DSP_AMB_RECHECK_MS);
}

/* An ambiguous m's timer: a receipt on tocsin.status confirms the vendor took it (it
 * is finished accepted, "reconciled"); past its grace with none it is sent again
 * ("resent_after_ambiguity", noted on tocsin.dead: the recipient may get two). */
static void amb_check(dsp_t *d, dsp_msg_t *m, int64_t now)
{
	dsp_vendor_t *v = m->last_vendor >= 0 ? &d->vendors[m->last_vendor] : NULL;
	const char *vendor = v ? v->v->name : NULL;
	if (dsp_state_finished(d->st, m->m.id) == DSP_DONE_SENT) {
		amb_end(d, m);
		d->n_reconciled++;
		if (v)
			v->accepted++;
		dsp_ledger_add(d->ledger, m->m.id);
		dsp_ledger_flush(d->ledger);
		finish(d, m, MSG_ST_ACCEPTED, vendor, NULL, "reconciled",
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
	amb_end(d, m);
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
		finish(d, m, MSG_ST_ACCEPTED, v->v->name, r->ref, NULL, NULL, lat);
		return;
	case VND_PERMANENT:
		v->failed++;
		finish(d, m, MSG_ST_FAILED, v->v->name, r->ref, r->code, r->detail, lat);
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
		finish(d, m, MSG_ST_FAILED, v->v->name, r->ref, r->code[0] ? r->code : "opted_out",
		       r->detail[0] ? r->detail : "recipient opted out at the vendor", lat);
		return;
	}
	case VND_CONFIG:
		/* Not the recipient's fault: the vendor is unusable until fixed. The
		 * attempt is not charged; the message goes to another vendor or waits. */
		if (!v->unusable)
			take_out(d, vi, r);
		m->last_vendor = vi;
		admit(d, m, clock_mono_ms());
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

static void on_done(dsp_t *d, http_done_t *hd)
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
static void sla_check(dsp_t *d, int64_t now_ms)
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

/* ------------------------------------------------------------------ consuming */

/* The lane of an outbox topic. */
static kq_lane_t lane_of(const dsp_t *d, const char *topic)
{
	return topic && !strcmp(topic, d->lanes[KQ_LANE_URGENT].topic) ? KQ_LANE_URGENT : KQ_LANE_BULK;
}

static dsp_part_t *part_get(dsp_t *d, kq_lane_t lane, int32_t p)
{
	if (p < 0 || p >= DSP_MAX_PARTS)
		return NULL;
	dsp_part_t **pp = &d->lanes[lane].parts[p];
	if (!*pp) {
		if (!(*pp = calloc(1, sizeof(dsp_part_t))))
			return NULL;
		(*pp)->partition = p;
		(*pp)->lane = lane;
		(*pp)->next_offset = -1;
		(*pp)->committed = -1;
	}
	return *pp;
}

static void on_record(dsp_t *d, rd_kafka_message_t *rkm)
{
	if (rkm->err) {
		if (rkm->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET ||
		    rkm->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE)
			log_error("event=outbox_truncated partition=%d err=\"%s\" msg=\"messages were "
			          "dropped from the log before they were dispatched\"",
			          (int)rkm->partition, rd_kafka_message_errstr(rkm));
		else
			log_warn("event=consume_error err=\"%s\"", rd_kafka_message_errstr(rkm));
		rd_kafka_message_destroy(rkm);
		return;
	}
	kq_lane_t lane = lane_of(d, rd_kafka_topic_name(rkm->rkt));
	dsp_part_t *p = part_get(d, lane, rkm->partition);
	dsp_msg_t *m = p ? calloc(1, sizeof *m + rkm->len + 1) : NULL;
	if (!m) {
		log_error("event=out_of_memory partition=%d", (int)rkm->partition);
		rd_kafka_message_destroy(rkm);
		return;
	}
	d->npending++;
	d->lanes[lane].npending++;
	m->lane = lane;
	dq_enter(d->q, m);
	if (!d->n_consumed++)
		d->first_consume_ns = clock_mono_ns();
	m->rkm = rkm;
	m->part = p;
	m->offset = rkm->offset;
	m->vendor = m->last_vendor = -1;
	p->next_offset = rkm->offset + 1;
	if (p->tail)
		p->tail->part_next = m;
	else
		p->head = m;
	p->tail = m;
	char err[256];
	int bad = msg_out_scan(rkm->payload, rkm->len, &m->m, m->arena, rkm->len + 1, err, sizeof err);
	if (!bad && m->m.channel != d->channel) {
		snprintf(err, sizeof err, "a %s message on %s", msg_channel_name(m->m.channel),
		         d->lanes[lane].topic);
		bad = 1;
	}
	if (bad) {
		/* Unreadable: nothing to send and no id to report under. Keep it on
		 * tocsin.dead with the reason and move past it. */
		log_error("event=bad_outbox_record partition=%d offset=%lld reason=\"%s\"",
		          (int)rkm->partition, (long long)rkm->offset, err);
		kq_produce(d->prod, KQ_T_DEAD, rkm->key, rkm->key_len, rkm->payload, rkm->len, NULL);
		dsp_metrics_dead(d->met);
		dq_skip(d->q, m);
		msg_done(d, m);
		part_advance(d, p);
		return;
	}
	/* Already has an outcome (its offset was not committed before a rebalance or a
	 * crash): never send it again; a deliberate resend of a failure (attempt > 0) goes. */
	int done = dsp_state_finished(d->st, m->m.id);
	if (done == DSP_DONE_SENT || (done == DSP_DONE_FAILED && m->m.attempt == 0)) {
		d->n_already_done++;
		if (log_enabled(TLOG_DEBUG))
			log_debug("event=skip_already_done id=%s partition=%d offset=%lld", m->m.id,
			          (int)rkm->partition, (long long)rkm->offset);
		dq_skip(d->q, m);
		msg_done(d, m);
		part_advance(d, p);
		return;
	}
	m->attempt = m->m.attempt;
	/* A vendor took it, but its outcome is not on tocsin.status: the broker lost it (an
	 * embedded broker restarted, a relaunch). The ledger remembers; its outcome is put back. */
	if (m->m.attempt == 0 && dsp_ledger_has(d->ledger, m->m.id)) {
		d->n_ledgered++;
		finish(d, m, MSG_ST_ACCEPTED, NULL, NULL, "ledger",
		       "a vendor took it before the broker lost its outcome (dispatcher ledger): not "
		       "sent again",
		       -1);
		return;
	}
	admit(d, m, clock_mono_ms());
}

static void commit_parts(dsp_t *d, int sync)
{
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(16);
	for (int ln = 0; ln < KQ_LANE__COUNT; ln++)
		for (int i = 0; i < DSP_MAX_PARTS; i++) {
			dsp_part_t *p = d->lanes[ln].parts[i];
			if (!p || !p->assigned || p->next_offset < 0)
				continue;
			int64_t off = p->head ? p->head->offset : p->next_offset;
			if (off > p->committed) {
				rd_kafka_topic_partition_list_add(l, d->lanes[ln].topic, p->partition)
				    ->offset = off;
				p->committed = off;
			}
		}
	if (l->cnt) {
		rd_kafka_resp_err_t e = rd_kafka_commit(d->cons, l, sync ? 0 : 1);
		if (e && e != RD_KAFKA_RESP_ERR__NO_OFFSET)
			log_warn("event=commit_failed err=\"%s\"", rd_kafka_err2str(e));
	}
	rd_kafka_topic_partition_list_destroy(l);
}

/* A commit that failed (e.g. during a rebalance) is tried again on the next round. */
static void on_commit(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
	(void)rk;
	dsp_t *d = opaque;
	if (!err || err == RD_KAFKA_RESP_ERR__NO_OFFSET || !offsets)
		return;
	for (int i = 0; i < offsets->cnt; i++) {
		int32_t p = offsets->elems[i].partition;
		dsp_lane_t *l = &d->lanes[lane_of(d, offsets->elems[i].topic)];
		if (p >= 0 && p < DSP_MAX_PARTS && l->parts[p])
			l->parts[p]->committed = -1;
	}
	log_debug("event=commit_failed err=\"%s\" action=retry", rd_kafka_err2str(err));
}

static void drain_wake(dsp_t *d)
{
	char b[64];
	while (read(d->wake[0], b, sizeof b) > 0) {
	}
}

/* Never send what cannot be recorded: final statuses waiting DSP_ACK_STALL_MS with
 * no acknowledgement from the broker stop new sends (one line), until it
 * acknowledges again. */
static void ack_watch(dsp_t *d, int64_t now)
{
	size_t unacked = dq_unacked(d->q);
	if (!unacked)
		d->unacked_since_ms = 0;
	else if (!d->unacked_since_ms)
		d->unacked_since_ms = now;
	int64_t since = d->unacked_since_ms > d->last_ack_ms ? d->unacked_since_ms : d->last_ack_ms;
	if (!d->held_since_ms && unacked && now - since >= DSP_ACK_STALL_MS) {
		d->held_since_ms = since;
		char ts[32];
		clock_iso8601(clock_wall_ms() - (now - since), ts, sizeof ts);
		log_error("event=broker_unreachable since=%s held=%zu in_flight=%d msg=\"broker "
		          "unreachable since %s: %zu outcomes held, sending paused\"",
		          ts, unacked, http_in_flight(d->http), ts, unacked);
	} else if (d->held_since_ms && d->last_ack_ms > d->held_since_ms) {
		log_info("event=broker_reachable held_ms=%lld unacked=%zu msg=\"the broker acknowledges "
		         "again: sending resumed\"",
		         (long long)(now - d->held_since_ms), unacked);
		d->held_since_ms = 0;
	}
}

/* Send what is ready, collect what finished, serve delivery reports. */
static void pump(dsp_t *d, int timeout_ms)
{
	int64_t now = clock_mono_ms();
	rd_kafka_poll(d->prod, 0); /* acknowledgements first: ack_watch judges by them */
	ack_watch(d, now);
	sla_check(d, now);
	dsp_msg_t *m;
	while ((m = dq_due(d->q, now))) {
		if (m->refinal) { /* a final status to produce again */
			produce_status(d, m, m->final_state, m->vendor_name, m->ref, m->code,
			               m->detail, m->latency_ms, 1);
			continue;
		}
		if (m->discard)
			msg_free(d, m);
		else if (m->amb_until)
			amb_check(d, m, now);
		else
			admit(d, m, now);
	}
	if (!d->draining && !d->held_since_ms)
		serve_all(d, now);
	/* sleep until a destination's limiter or the first timer allows more; a
	 * completion wakes the loop for a full window */
	int64_t until = dq_next_due(d->q);
	for (size_t i = 0; i < dq_ndests(d->q); i++) {
		dq_dest_t *x = dq_dest_at(d->q, i);
		if (dq_dest_ready(x) && dq_dest_wait_until(x) > now && dq_dest_wait_until(x) < until)
			until = dq_dest_wait_until(x);
	}
	if (until != INT64_MAX && until - now < timeout_ms)
		timeout_ms = until <= now ? 0 : (int)(until - now);
	if (timeout_ms > 200) /* SLA windows are judged every 200 ms */
		timeout_ms = 200;
	if (http_run(d->http, d->wake[0], timeout_ms) < 0)
		log_warn("event=http_engine_error");
	drain_wake(d);
	http_done_t hd;
	while (http_next_done(d->http, &hd))
		on_done(d, &hd);
	rd_kafka_poll(d->prod, 0);
}

/* ------------------------------------------------------------------ rebalance */

/* Finish what is in flight: every send completes and its final status is
 * acknowledged, or timeout_ms passes. New sends are held meanwhile. */
static void drain_inflight(dsp_t *d, int timeout_ms)
{
	int was = d->draining;
	d->draining = 1;
	int64_t end = clock_mono_ms() + timeout_ms;
	for (;;) {
		size_t final_pending = dq_unacked(d->q);
		if (!http_in_flight(d->http) && !final_pending)
			break;
		/* stopping with the broker gone: nothing will be acknowledged; the sends in
		 * flight get a moment, and SIGTERM is honoured */
		if (tocsin_stop && d->held_since_ms &&
		    (!http_in_flight(d->http) ||
		     clock_mono_ms() - d->held_since_ms >= DSP_STOP_UNREACHABLE_MS)) {
			log_error("event=stop_unacknowledged in_flight=%d final_pending=%zu msg=\"stopping "
			          "with the broker unreachable: these outcomes were not recorded; their "
			          "offsets are not committed, so the next owner sends them again\"",
			          http_in_flight(d->http), final_pending);
			break;
		}
		if (clock_mono_ms() >= end) {
			log_warn("event=drain_timeout in_flight=%d final_pending=%zu",
			         http_in_flight(d->http), final_pending);
			break;
		}
		pump(d, 20);
		rd_kafka_poll(d->prod, 10);
	}
	d->draining = was;
}

static void drop_partition(dsp_t *d, kq_lane_t lane, int32_t partition)
{
	dsp_part_t *p = partition >= 0 && partition < DSP_MAX_PARTS ? d->lanes[lane].parts[partition]
	                                                            : NULL;
	if (!p)
		return;
	/* Whatever is not final goes back to Kafka: the next owner gets it from
	 * the committed offset. Messages sitting in the ready queue or the timer
	 * heap are freed when next popped; finished ones now. */
	dsp_msg_t *m = p->head;
	while (m) {
		dsp_msg_t *next = m->part_next;
		m->part_next = NULL;
		m->discard = 1;
		if (m->where == DQ_DONE || m->where == DQ_NONE)
			msg_free(d, m);
		m = next;
	}
	free(p);
	d->lanes[lane].parts[partition] = NULL;
}

/* Pause (or resume) one assigned partition. */
static void pause_one(rd_kafka_t *rk, const rd_kafka_topic_partition_t *tp, int pause)
{
	rd_kafka_topic_partition_list_t *one = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(one, tp->topic, tp->partition);
	if (pause)
		rd_kafka_pause_partitions(rk, one);
	else
		rd_kafka_resume_partitions(rk, one);
	rd_kafka_topic_partition_list_destroy(one);
}

/* Partitions handed over stay paused until the state catch-up started at their assignment
 * has read every topic to where it then ended, however long that takes: sending before
 * would resend what the previous owner already sent (issue 13). Waiting is logged after
 * DSP_CATCH_UP_LOG_MS, then every DSP_CATCH_UP_LOG_EVERY_MS, with the progress. */
static void catch_up_tick(dsp_t *d, int64_t now)
{
	if (!d->catch_since_ms)
		return;
	int64_t read = 0, want = 0;
	int held = 0;
	for (int ln = 0; ln < KQ_LANE__COUNT; ln++)
		for (int i = 0; i < DSP_MAX_PARTS; i++)
			held += d->lanes[ln].parts[i] && d->lanes[ln].parts[i]->held;
	if (dsp_state_catch_up_behind(d->st, &read, &want)) {
		int64_t waited = now - d->catch_since_ms;
		if (waited >= DSP_CATCH_UP_LOG_MS &&
		    (!d->catch_logged_ms || now - d->catch_logged_ms >= DSP_CATCH_UP_LOG_EVERY_MS)) {
			d->catch_logged_ms = now;
			log_warn("event=catch_up_waiting partitions=%d waited_ms=%lld status_read=%lld "
			         "status_to_read=%lld msg=\"holding sends on %d partitions handed over "
			         "until tocsin.status is read to where it ended at the assignment: %lld "
			         "of %lld records read\"",
			         held, (long long)waited, (long long)read, (long long)want, held,
			         (long long)read, (long long)want);
		}
		return;
	}
	rd_kafka_topic_partition_list_t *a = NULL;
	if (!rd_kafka_assignment(d->cons, &a) && a) {
		for (int i = 0; i < a->cnt; i++) {
			kq_lane_t ln = lane_of(d, a->elems[i].topic);
			dsp_part_t *p = part_get(d, ln, a->elems[i].partition);
			if (p && p->held) {
				p->held = 0;
				if (!d->lanes[ln].paused)
					pause_one(d->cons, &a->elems[i], 0);
			}
		}
		rd_kafka_topic_partition_list_destroy(a);
	}
	log_info("event=catch_up_done partitions=%d ms=%lld status_read=%lld", held,
	         (long long)(now - d->catch_since_ms), (long long)want);
	d->catch_since_ms = 0;
}

/* Every vendor's rate times share (0..1]. */
static void set_share(dsp_t *d, double share)
{
	d->rate_share = share;
	for (size_t i = 0; i < d->nvendors; i++)
		if (d->vendors[i].rl)
			rl_set_share(d->vendors[i].rl, (int)(share * DSP_SHARE_SCALE + 0.5),
			             DSP_SHARE_SCALE);
}

/* Rate shares by backlog (dispatcher/dsp_share.h): publish this dispatcher's backlog every
 * DSP_SHARE_EVERY_MS and take the share the peers' backlogs leave it. With no fresh
 * record of any peer while it owns only some partitions (the others have not said yet),
 * the partition share stays. */
static void share_tick(dsp_t *d, int64_t now)
{
	if (!d->share || now - d->share_tick_ms < DSP_SHARE_TICK_MS)
		return;
	d->share_tick_ms = now;
	int64_t lag = kq_consumer_lag(d->cons);
	int64_t own = (lag > 0 ? lag : 0) + (int64_t)lane_active(&d->lanes[KQ_LANE_BULK]) +
	              (int64_t)lane_active(&d->lanes[KQ_LANE_URGENT]);
	if (now - d->share_pub_ms >= DSP_SHARE_EVERY_MS && !d->held_since_ms &&
	    !dsp_share_encode(d->share, own, clock_wall_ms(), &d->buf)) {
		d->share_pub_ms = now;
		kq_produce(d->prod, KQ_T_BACKLOG, d->client_id, strlen(d->client_id), d->buf.p,
		           d->buf.len, NULL);
	}
	int fresh = 0;
	double share = dsp_share_get(d->share, own, now, &fresh);
	int total = d->lanes[KQ_LANE_BULK].total_parts + d->lanes[KQ_LANE_URGENT].total_parts;
	if (!fresh && d->owned_parts < total)
		share = (double)d->owned_parts / total;
	if (fabs(share - d->rate_share) >= 0.005)
		set_share(d, share);
}

/* Is the group's rebalance protocol cooperative (partition.assignment.strategy
 * cooperative-sticky: a rebalance hands over only the partitions that move, the others
 * keep sending through it), not eager (every partition revoked and assigned again)? */
static int cooperative(rd_kafka_t *rk)
{
	const char *p = rd_kafka_rebalance_protocol(rk);
	return p && !strcmp(p, "COOPERATIVE");
}

/* Apply the change of assignment, incremental or whole; one line when it fails. */
static void reassign(rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts, int assign)
{
	if (!cooperative(rk)) {
		rd_kafka_assign(rk, assign ? parts : NULL);
		return;
	}
	rd_kafka_error_t *e = assign ? rd_kafka_incremental_assign(rk, parts)
	                             : rd_kafka_incremental_unassign(rk, parts);
	if (e) {
		log_warn("event=reassign_failed assign=%d err=\"%s\"", assign,
		         rd_kafka_error_string(e));
		rd_kafka_error_destroy(e);
	}
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
	dsp_t *d = opaque;
	int total = d->lanes[KQ_LANE_BULK].total_parts + d->lanes[KQ_LANE_URGENT].total_parts;
	if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
		for (int i = 0; i < parts->cnt; i++) {
			kq_lane_t ln = lane_of(d, parts->elems[i].topic);
			dsp_part_t *p = part_get(d, ln, parts->elems[i].partition);
			if (p)
				p->assigned = 1;
			d->lanes[ln].owned++;
			if (ln == KQ_LANE_URGENT) { /* its records go to the queue polled first */
				rd_kafka_queue_t *pq = rd_kafka_queue_get_partition(
				    rk, parts->elems[i].topic, parts->elems[i].partition);
				if (pq) {
					rd_kafka_queue_forward(pq, d->q_urgent);
					rd_kafka_queue_destroy(pq);
				}
			}
		}
		/* the rate share: partitions owned of both lanes together, until share_tick knows
		 * the others' backlogs */
		d->owned_parts = d->lanes[KQ_LANE_BULK].owned + d->lanes[KQ_LANE_URGENT].owned;
		set_share(d, (double)d->owned_parts / total);
		log_info("event=assigned partitions=%d of=%d topic=%s urgent_partitions=%d of=%d "
		         "topic=%s new=%d",
		         d->lanes[KQ_LANE_BULK].owned, d->lanes[KQ_LANE_BULK].total_parts,
		         d->lanes[KQ_LANE_BULK].topic, d->lanes[KQ_LANE_URGENT].owned,
		         d->lanes[KQ_LANE_URGENT].total_parts, d->lanes[KQ_LANE_URGENT].topic,
		         parts->cnt);
		reassign(rk, parts, 1);
		if (!parts->cnt)
			return;
		/* The outcomes the previous owners published before they let go are read before
		 * anything of these partitions is consumed: they stay paused until then. */
		dsp_state_catch_up_start(d->st, 10000);
		d->catch_since_ms = clock_mono_ms();
		d->catch_logged_ms = 0;
		for (int i = 0; i < parts->cnt; i++) {
			dsp_part_t *p = part_get(d, lane_of(d, parts->elems[i].topic),
			                         parts->elems[i].partition);
			if (p)
				p->held = 1;
			pause_one(rk, &parts->elems[i], 1);
		}
		catch_up_tick(d, d->catch_since_ms);
		return;
	}
	log_info("event=revoked partitions=%d msg=\"finishing in-flight sends before handing over\"",
	         parts->cnt);
	drain_inflight(d, 30000);
	commit_parts(d, 1);
	for (int i = 0; i < parts->cnt; i++) {
		kq_lane_t ln = lane_of(d, parts->elems[i].topic);
		drop_partition(d, ln, parts->elems[i].partition);
		if (d->lanes[ln].owned > 0)
			d->lanes[ln].owned--;
	}
	if (!cooperative(rk))
		d->lanes[KQ_LANE_BULK].owned = d->lanes[KQ_LANE_URGENT].owned = 0;
	d->owned_parts = d->lanes[KQ_LANE_BULK].owned + d->lanes[KQ_LANE_URGENT].owned;
	reassign(rk, parts, 0);
}

/* ------------------------------------------------------------------ set-up and loop */

/* Backpressure, per lane. At max_pending the loop stops taking records and librdkafka
 * stops fetching once its own queue is full (queued.max.messages.kbytes); the
 * records it prefetched stay, so sending goes on at full speed the moment room
 * frees up. Pausing the partitions throws that prefetch away (librdkafka
 * re-fetches on resume), so it is kept for a full window from which nothing
 * has left for DSP_STUCK_PAUSE_MS -- vendors down, a campaign paused -- where
 * it lets the loop go on polling the consumer (rebalances,
 * max.poll.interval.ms) without taking more records into memory. */
static void backpressure(dsp_t *d, kq_lane_t lane, int64_t now_ms)
{
	dsp_lane_t *l = &d->lanes[lane];
	/* stuck: full, and nothing has left the window for a while */
	if (lane_room(d, l)) {
		l->full_since_ms = 0;
	} else if (!l->full_since_ms || l->n_left != l->full_left) {
		l->full_since_ms = now_ms;
		l->full_left = l->n_left;
	}
	int want_pause = l->full_since_ms && now_ms - l->full_since_ms >= DSP_STUCK_PAUSE_MS;
	int want_resume = l->paused && lane_active(l) <= d->max_pending / 2 &&
	                  l->ndone <= DSP_DONE_HELD_FACTOR * d->max_pending / 2;
	if (want_pause == l->paused || (!want_pause && !want_resume))
		return;
	rd_kafka_topic_partition_list_t *a = NULL;
	if (rd_kafka_assignment(d->cons, &a) || !a)
		return;
	for (int i = 0; i < a->cnt; i++) {
		if (lane_of(d, a->elems[i].topic) != lane)
			continue;
		dsp_part_t *p = part_get(d, lane, a->elems[i].partition);
		if (want_pause || !p || !p->held) /* a held one waits for its catch-up */
			pause_one(d->cons, &a->elems[i], want_pause);
	}
	log_info("event=backpressure action=%s topic=%s pending=%zu",
	         want_pause ? "pause" : "resume", l->topic, l->npending);
	l->paused = want_pause;
	rd_kafka_topic_partition_list_destroy(a);
}

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
	                          .lag = kq_consumer_lag(d->cons),
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

static void progress(dsp_t *d, int64_t now)
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
	         "ledgered=%lld rate_share=%.3f",
	         (long long)d->n_consumed, (long long)d->n_accepted, (long long)d->n_failed,
	         (long long)d->n_retried, (long long)d->n_cancelled, (long long)d->n_suppressed,
	         (long long)d->n_expired, (long long)d->n_already_done, d->npending,
	         dq_count(d->q, DQ_READY), dq_count(d->q, DQ_TIMER), http_in_flight(d->http),
	         dq_unacked(d->q), dq_count(d->q, DQ_DONE), (long long)d->n_ambiguous,
	         d->n_amb_held, (long long)d->n_reconciled, (long long)d->n_resent_amb,
	         (long long)d->n_ledgered, d->rate_share);
}

/* Group membership of the outbox consumer cc (issue 13 item 4; cc NULL: only check the
 * config, before anything starts). A dead member's partitions move when its session times
 * out (core/kq.c: session.timeout.ms 10000; a shorter one made the kill loop worse on the
 * embedded broker, bench/RESULTS.md). Static membership
 * (group.instance.id = <host>-<channel>-<slot>, the slot the lowest free one among
 * <var_dir>/run/dispatch-<channel>-<slot>.lock, held by flock for the process's life, so a
 * restarted dispatcher takes its slot again and the broker hands its partitions back
 * without a rebalance): dispatcher.static_membership "auto" (default: on with a configured
 * cluster, off with the embedded broker, whose librdkafka 2.0 mock ignores
 * group.instance.id and would keep a stopped static member's partitions until its session
 * times out), true or false. */
static int membership(dsp_t *d, rd_kafka_conf_t *cc, char *err, size_t errlen)
{
	const cfg_t *c = d->cfg;
	json_t *sm = json_object_get(json_object_get(c->root, "dispatcher"), "static_membership");
	int on = json_object_get(c->kafka, "bootstrap.servers") != NULL;
	if (sm && json_is_boolean(sm))
		on = json_is_true(sm);
	else if (sm && !(json_is_string(sm) && !strcmp(json_string_value(sm), "auto"))) {
		snprintf(err, errlen,
		         "%s: dispatcher.static_membership must be \"auto\", true or false", c->path);
		return TOCSIN_ERR_CONFIG;
	}
	if (!cc || !on || json_object_get(c->kafka, "group.instance.id"))
		return 0;
	char host[64] = "host", rel[96], path[4096];
	gethostname(host, sizeof host - 1);
	for (int slot = 0; slot < 256; slot++) {
		snprintf(rel, sizeof rel, "run/dispatch-%s-%d.lock", msg_channel_name(d->channel),
		         slot);
		int fd = cfg_var_path(c, rel, path, sizeof path)
		             ? -1
		             : open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0)
			break;
		if (flock(fd, LOCK_EX | LOCK_NB)) {
			close(fd);
			continue;
		}
		d->slot_fd = fd; /* held until exit */
		snprintf(d->instance, sizeof d->instance, "%s-%s-%d", host,
		         msg_channel_name(d->channel), slot);
		rd_kafka_conf_set(cc, "group.instance.id", d->instance, NULL, 0);
		return 0;
	}
	log_warn("event=static_membership_off msg=\"no free slot under %s/run: joining as a "
	         "dynamic member\"",
	         c->var_dir);
	return 0;
}

static int setup(dsp_t *d, char *err, size_t errlen)
{
	const cfg_t *c = d->cfg;
	const cfg_route_t *r = &c->routes[d->channel];
	if (r->nvendors == 0) {
		snprintf(err, errlen, "%s: no %s vendor is configured (routes.%s)", c->path,
		         msg_channel_name(d->channel), msg_channel_name(d->channel));
		return TOCSIN_ERR_CONFIG;
	}
	d->nvendors = c->nvendors;
	d->vendors = calloc(c->nvendors, sizeof *d->vendors);
	d->slas = calloc(c->nvendors, sizeof *d->slas);
	if (!d->vendors || !d->slas)
		return TOCSIN_ERR_NOMEM;
	size_t max_batch = 1;
	for (size_t i = 0; i < r->nvendors; i++) {
		const cfg_vendor_t *v = cfg_vendor(c, r->vendors[i]);
		size_t vi = (size_t)(v - c->vendors);
		dsp_vendor_t *dv = &d->vendors[vi];
		char e[512];
		dv->v = v;
		if (!(dv->a = vnd_new(c, v, e, sizeof e)) || !(dv->rl = rl_new(v, e, sizeof e)) ||
		    !(dv->sla = sla_new_vendor(v, e, sizeof e))) {
			if (!strncmp(e, "vendor ", 7) || strstr(e, v->name))
				snprintf(err, errlen, "%s", e); /* already names the vendor */
			else
				snprintf(err, errlen, "vendor %s: %s", v->name, e);
			return TOCSIN_ERR_CONFIG;
		}
		d->slas[vi] = dv->sla;
		if ((size_t)vnd_max_batch(dv->a) > max_batch)
			max_batch = (size_t)vnd_max_batch(dv->a);
	}
	json_t *g = json_object_get(json_object_get(c->root, "dispatcher"), "ambiguous_grace_ms");
	d->amb_grace_ms = DSP_AMB_GRACE_MS;
	if (g && (!json_is_integer(g) || json_integer_value(g) < 0 || json_integer_value(g) > 600000)) {
		snprintf(err, errlen,
		         "%s: dispatcher.ambiguous_grace_ms must be an integer 0..600000", c->path);
		return TOCSIN_ERR_CONFIG;
	} else if (g)
		d->amb_grace_ms = json_integer_value(g);
	json_t *rs = json_object_get(json_object_get(c->root, "dispatcher"), "rate_share");
	int by_backlog = !rs || (json_is_string(rs) && !strcmp(json_string_value(rs), "backlog"));
	if (rs && !by_backlog && !(json_is_string(rs) && !strcmp(json_string_value(rs), "partitions"))) {
		snprintf(err, errlen,
		         "%s: dispatcher.rate_share must be \"backlog\" or \"partitions\"", c->path);
		return TOCSIN_ERR_CONFIG;
	}
	if (membership(d, NULL, err, errlen))
		return TOCSIN_ERR_CONFIG;
	if (!(d->q = dq_new(c, err, errlen)))
		return TOCSIN_ERR_NOMEM;
	if (!(d->route = route_new(c, d->channel, err, errlen)))
		return TOCSIN_ERR_CONFIG;
	if (!(d->retry = retry_new(c, (uint64_t)clock_mono_ns() ^ (uint64_t)getpid(), err, errlen)))
		return TOCSIN_ERR_CONFIG;
	d->batch_cap = max_batch;
	d->batch = calloc(max_batch, sizeof *d->batch);
	d->results = calloc(max_batch, sizeof *d->results);
	d->reqs = calloc((size_t)c->max_in_flight, sizeof *d->reqs);
	if (!d->batch || !d->results || !d->reqs)
		return TOCSIN_ERR_NOMEM;
	for (int i = c->max_in_flight - 1; i >= 0; i--) {
		dsp_req_t *q = &d->reqs[i];
		q->cap = max_batch;
		if (!(q->msgs = calloc(max_batch, sizeof *q->msgs)))
			return TOCSIN_ERR_NOMEM;
		q->next_free = d->free_reqs;
		d->free_reqs = q;
	}
	d->http = http_new(c->max_in_flight, DSP_MAX_BODY, c->http_threads, err, errlen);
	if (!d->http)
		return TOCSIN_ERR_NOMEM;
	if (pipe2(d->wake, O_NONBLOCK | O_CLOEXEC)) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		return TOCSIN_ERR_IO;
	}
	rd_kafka_conf_t *pc = kq_conf_new(c, KQ_PRODUCER, d->client_id, NULL, err, errlen);
	if (!pc)
		return TOCSIN_ERR_CONFIG;
	rd_kafka_conf_set_dr_msg_cb(pc, on_delivery);
	rd_kafka_conf_set_opaque(pc, d);
	if (!(d->prod = kq_new(pc, KQ_PRODUCER, 10000, err, errlen)))
		return TOCSIN_ERR_KAFKA;
	if (!(d->st = dsp_state_new(c, d->client_id, err, errlen)))
		return TOCSIN_ERR_KAFKA;
	if (by_backlog && !(d->share = dsp_share_new(d->channel, d->client_id)))
		return TOCSIN_ERR_NOMEM;
	if (d->share && dsp_state_read_backlogs(d->st, d->share)) {
		log_warn("event=rate_share_by_partitions msg=\"no topic %s on the cluster: each "
		         "dispatcher's share of a vendor's rate follows the partitions it owns\"",
		         KQ_T_BACKLOG);
		dsp_share_free(d->share);
		d->share = NULL;
	}
	char ldir[4096];
	if (runfile_mkdir(c, err, errlen) || cfg_var_path(c, "ledger", ldir, sizeof ldir) ||
	    !(d->ledger = dsp_ledger_open(ldir, msg_channel_name(d->channel), d->client_id, err, errlen)))
		return TOCSIN_ERR_IO;
	/* tocsin.status is followed from this first catch-up on (never re-sought: a receipt
	 * confirming an ambiguous send is read as it is published) */
	if (d->amb_grace_ms > 0)
		dsp_state_follow(d->st, 1, 0);
	rd_kafka_conf_t *cc = kq_conf_new(c, KQ_CONSUMER, d->client_id, d->group, err, errlen);
	if (!cc)
		return TOCSIN_ERR_CONFIG;
	if (d->channel == MSG_CH_EMAIL) {
		/* Batches of up to 1000 need deeper prefetch than SMS: a queue that fills
		 * stalls fetching for fetch.error.backoff.ms each time. The config wins. */
		static const char *const email_props[][2] = {{"queued.max.messages.kbytes", "65536"},
		                                             {"fetch.error.backoff.ms", "20"}};
		for (size_t i = 0; i < 2; i++)
			if (!json_object_get(c->kafka, email_props[i][0]))
				rd_kafka_conf_set(cc, email_props[i][0], email_props[i][1], NULL, 0);
	}
	if (membership(d, cc, err, errlen))
		return TOCSIN_ERR_CONFIG;
	rd_kafka_conf_set_rebalance_cb(cc, on_rebalance);
	rd_kafka_conf_set_offset_commit_cb(cc, on_commit);
	rd_kafka_conf_set_opaque(cc, d);
	if (!(d->cons = kq_new(cc, KQ_CONSUMER, 10000, err, errlen)))
		return TOCSIN_ERR_KAFKA;
	/* The partition counts for rate shares come from the cluster, not a constant. */
	rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(KQ_LANE__COUNT);
	for (int ln = 0; ln < KQ_LANE__COUNT; ln++) {
		dsp_lane_t *l = &d->lanes[ln];
		l->total_parts = kq_partitions(d->cons, l->topic, 10000);
		if (l->total_parts <= 0) {
			snprintf(err, errlen,
			         "topic %s does not exist on the cluster (create it with its "
			         "partitions; the embedded broker does this itself)",
			         l->topic);
			rd_kafka_topic_partition_list_destroy(topics);
			return TOCSIN_ERR_KAFKA;
		}
		rd_kafka_topic_partition_list_add(topics, l->topic, RD_KAFKA_PARTITION_UA);
	}
	d->q_urgent = rd_kafka_queue_new(d->cons);
	rd_kafka_queue_io_event_enable(d->q_urgent, d->wake[1], "u", 1);
	rd_kafka_resp_err_t e = rd_kafka_subscribe(d->cons, topics);
	rd_kafka_topic_partition_list_destroy(topics);
	if (e) {
		snprintf(err, errlen, "cannot subscribe to %s and %s: %s", d->lanes[0].topic,
		         d->lanes[1].topic, rd_kafka_err2str(e));
		return TOCSIN_ERR_KAFKA;
	}
	d->q_cons = rd_kafka_queue_get_consumer(d->cons);
	d->q_prod = rd_kafka_queue_get_main(d->prod);
	rd_kafka_queue_io_event_enable(d->q_cons, d->wake[1], "c", 1);
	rd_kafka_queue_io_event_enable(d->q_prod, d->wake[1], "p", 1);
	rd_kafka_queue_io_event_enable(dsp_state_queue(d->st), d->wake[1], "s", 1);
	return 0;
}

static void teardown(dsp_t *d)
{
	dsp_metrics_free(d->met);
	if (d->q_cons)
		rd_kafka_queue_destroy(d->q_cons);
	if (d->q_urgent)
		rd_kafka_queue_destroy(d->q_urgent);
	if (d->q_prod)
		rd_kafka_queue_destroy(d->q_prod);
	/* Serve the last delivery reports while the messages they point at live; with
	 * the broker unreachable, give up on them at once (reports with an error). */
	if (d->prod && d->held_since_ms) {
		rd_kafka_purge(d->prod, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
		rd_kafka_poll(d->prod, 100);
	} else if (d->prod && kq_flush(d->prod, 10000))
		log_warn("event=flush_timeout msg=\"some status events were not acknowledged\"");
	/* Release every consumed record before the consumer goes: librdkafka's
	 * destroy waits for them. Anything not final goes back to Kafka (its
	 * offset was never committed). */
	for (int ln = 0; ln < KQ_LANE__COUNT; ln++)
		for (int i = 0; i < DSP_MAX_PARTS; i++) {
			dsp_part_t *p = d->lanes[ln].parts[i];
			for (dsp_msg_t *m = p ? p->head : NULL; m; m = m->part_next)
				if (m->where == DQ_INFLIGHT || m->where == DQ_FINAL_PENDING) {
					/* stuck past the drain timeout: drop the record, keep the struct */
					rd_kafka_message_destroy(m->rkm);
					m->rkm = NULL;
					dq_abandon(d->q, m);
				}
			if (p)
				drop_partition(d, (kq_lane_t)ln, i);
		}
	dsp_msg_t *m;
	while (d->q && (m = dq_any(d->q)))
		msg_free(d, m);
	if (d->cons && d->held_since_ms) {
		/* Leaving the group and destroying the consumer wait for the broker
		 * (librdkafka 2.0 blocks ~10 s here); the process is exiting: leave the
		 * handle to the OS so SIGTERM is honoured at once. */
		log_warn("event=consumer_abandoned msg=\"the broker is unreachable: not leaving the "
		         "group; it notices at session.timeout.ms\"");
	} else if (d->cons) {
		rd_kafka_consumer_close(d->cons);
		rd_kafka_destroy(d->cons);
	}
	if (d->prod)
		rd_kafka_destroy(d->prod);
	dsp_state_free(d->st);
	dsp_share_free(d->share);
	dsp_ledger_free(d->ledger);
	http_free(d->http);
	for (size_t i = 0; d->vendors && i < d->nvendors; i++) {
		vnd_free(d->vendors[i].a);
		rl_free(d->vendors[i].rl);
		sla_free(d->vendors[i].sla);
	}
	free(d->vendors);
	free(d->slas);
	route_free(d->route);
	retry_free(d->retry);
	for (int i = 0; d->reqs && i < d->cfg->max_in_flight; i++)
		free(d->reqs[i].msgs);
	free(d->reqs);
	free(d->batch);
	free(d->results);
	dq_free(d->q);
	if (d->slot_fd >= 0)
		close(d->slot_fd);
	if (d->wake[0] > 0) {
		close(d->wake[0]);
		close(d->wake[1]);
	}
	buf_free(&d->buf);
}

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: tocsin dispatch [--channel sms|email] [--max-pending N]\n"
	        "\n"
	        "Join the consumer group tocsin-dispatch-<channel> on tocsin.outbox.<channel> and\n"
	        "tocsin.outbox.<channel>.urgent (the urgent lane, always drained first), send\n"
	        "each message through the channel's route of vendors (routes.<channel> in the\n"
	        "config), and publish every outcome on tocsin.status. Offsets are committed only\n"
	        "past messages whose final status the broker has acknowledged, so a crash loses\n"
	        "nothing. Run several for more throughput: the group shares the partitions.\n"
	        "\n"
	        "  --channel C       sms (default) or email\n"
	        "  --max-pending N   messages held in memory per lane: at N the dispatcher takes\n"
	        "                    no more records of that lane, and pauses its partitions when\n"
	        "                    none has finished for 2 s (default 10000 for sms, 40000 for\n"
	        "                    email, whose batches hold 1000)\n"
	        "\n"
	        "The HTTP transfers run on dispatcher.http_threads threads (default 2).\n"
	        "\n"
	        "SIGTERM or Ctrl-C: finish in-flight sends, commit, leave the group, exit 0.\n"
	        "With the broker unreachable (event=broker_unreachable: sending paused), the\n"
	        "sends in flight get 2.5 s, then it exits without the commit and the group leave.\n");
}

int cmd_dispatch(cfg_t *cfg, int argc, char **argv)
{
	static const struct option opts[] = {{"channel", required_argument, NULL, 'c'},
	                                     {"max-pending", required_argument, NULL, 'm'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {0}};
	dsp_t d;
	memset(&d, 0, sizeof d);
	d.cfg = cfg;
	d.channel = MSG_CH_SMS;
	d.max_pending = 10000;
	d.wake[0] = d.wake[1] = -1;
	d.slot_fd = -1;
	d.rate_share = 1; /* every limiter starts whole */
	int o, max_pending_set = 0;
	while ((o = getopt_long(argc, argv, "c:m:h", opts, NULL)) != -1) {
		switch (o) {
		case 'c':
			if (msg_channel_parse(optarg, &d.channel)) {
				fprintf(stderr,
				        "tocsin dispatch: unknown channel \"%s\" (sms, email)\n",
				        optarg);
				return 2;
			}
			break;
		case 'm': {
			long n = strtol(optarg, NULL, 10);
			if (n < 1 || n > 10000000) {
				fprintf(stderr, "tocsin dispatch: --max-pending must be 1..10000000\n");
				return 2;
			}
			d.max_pending = (size_t)n;
			max_pending_set = 1;
			break;
		}
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!max_pending_set && d.channel == MSG_CH_EMAIL)
		d.max_pending = 40000; /* room for a few dozen batches of 1000 in flight and waiting */
	for (int ln = 0; ln < KQ_LANE__COUNT; ln++)
		d.lanes[ln].topic = kq_outbox_lane_topic(d.channel, (kq_lane_t)ln);
	kq_dispatch_group(d.channel, d.group, sizeof d.group);
	snprintf(d.client_id, sizeof d.client_id, "%s-%d", d.group, (int)getpid());
	buf_init(&d.buf, 4 << 20);
	srand((unsigned)(clock_mono_ns() ^ getpid()));
	char err[1024];
	if (setup(&d, err, sizeof err) ||
	    (!(d.met = dsp_metrics_new(cfg, d.channel, d.client_id, err, sizeof err)) && err[0])) {
		fprintf(stderr, "tocsin dispatch: %s\n", err);
		teardown(&d);
		return 1;
	}
	log_info("event=dispatch_started channel=%s group=%s instance=%s vendors=%zu "
	         "max_in_flight=%d ledger_ids=%zu",
	         msg_channel_name(d.channel), d.group, d.instance[0] ? d.instance : "dynamic",
	         d.nvendors, cfg->max_in_flight, dsp_ledger_loaded(d.ledger));
	while (!tocsin_stop) {
		int64_t now = clock_mono_ms();
		dsp_state_poll(d.st);
		rd_kafka_message_t *rkm;
		dsp_lane_t *ul = &d.lanes[KQ_LANE_URGENT], *bl = &d.lanes[KQ_LANE_BULK];
		/* The urgent lane first, in its own window: a full bulk window never keeps an
		 * urgent record out, and its messages go first at every destination. */
		while (lane_room(&d, ul) && (rkm = rd_kafka_consume_queue(d.q_urgent, 0)))
			on_record(&d, rkm);
		while (lane_room(&d, bl) && (rkm = rd_kafka_consumer_poll(d.cons, 0)))
			on_record(&d, rkm);
		/* Paused and full: still poll (paused partitions deliver nothing), so the
		 * group sees this member alive past max.poll.interval.ms and rebalances are
		 * served while every vendor is down. */
		if (bl->paused && !lane_room(&d, bl) && (rkm = rd_kafka_consumer_poll(d.cons, 0)))
			on_record(&d, rkm);
		backpressure(&d, KQ_LANE_URGENT, now);
		backpressure(&d, KQ_LANE_BULK, now);
		pump(&d, 100);
		if (now - d.last_commit_ms >= DSP_COMMIT_EVERY_MS) {
			commit_parts(&d, 0);
			d.last_commit_ms = now;
		}
		catch_up_tick(&d, now);
		share_tick(&d, now);
		progress(&d, now);
	}
	log_info("event=dispatch_stopping signal=%d in_flight=%d pending=%zu", (int)tocsin_stop,
	         http_in_flight(d.http), d.npending);
	drain_inflight(&d, 30000);
	if (!d.held_since_ms) /* a synchronous commit would wait for the broker */
		commit_parts(&d, 1);
	if (d.share && !d.held_since_ms) /* the others take this one's slice at once */
		kq_produce(d.prod, KQ_T_BACKLOG, d.client_id, strlen(d.client_id), NULL, 0, NULL);
	d.last_progress_ms = 0;
	progress(&d, clock_mono_ms());
	double secs = d.n_finals_acked ? (d.last_final_ns - d.first_consume_ns) / 1e9 : 0;
	log_info("event=dispatch_summary finals=%lld seconds=%.3f per_second=%.0f "
	         "msg=\"from the first message consumed to the last final status acknowledged\"",
	         (long long)d.n_finals_acked, secs, secs > 0 ? d.n_finals_acked / secs : 0.0);
	teardown(&d);
	log_info("event=dispatch_stopped");
	return 0;
}
