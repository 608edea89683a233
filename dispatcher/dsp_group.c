/* dsp_group.c -- the dispatcher's outbox partitions: group membership, rebalances, the catch-up
 * hold of a partition handed over, offset commits, and the rate share they imply. */
#include "dispatcher/dsp_int.h"
#include "core/clock.h"
#include "core/sig.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* rl_set_share() takes a fraction: the share in ten-thousandths. */
#define DSP_SHARE_SCALE 10000
/* The share by backlog is computed this often (published every DSP_SHARE_EVERY_MS). */
#define DSP_SHARE_TICK_MS 100
/* A backlog that just appeared takes the floor this long: the peers' next ticks have read it. */
#define DSP_SHARE_SETTLE_MS 300
/* A catch-up holding sends is logged after this long, then this often (dsp_catch_up_tick). */
#define DSP_CATCH_UP_LOG_MS 5000
#define DSP_CATCH_UP_LOG_EVERY_MS 30000
/* Partition leases: the live dispatchers are ranked and leases moved this often. */
#define DSP_LEASE_TICK_MS 200

/* The lane of an outbox topic. */
kq_lane_t dsp_lane_of(const dsp_t *d, const char *topic)
{
	return topic && !strcmp(topic, d->lanes[KQ_LANE_URGENT].topic) ? KQ_LANE_URGENT : KQ_LANE_BULK;
}

dsp_part_t *dsp_part_get(dsp_t *d, kq_lane_t lane, int32_t p)
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
		(*pp)->start = -1;
	}
	return *pp;
}

void dsp_commit_parts(dsp_t *d, int sync)
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
void dsp_on_commit(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                   rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
	(void)rk;
	dsp_t *d = opaque;
	if (!err || err == RD_KAFKA_RESP_ERR__NO_OFFSET || !offsets)
		return;
	for (int i = 0; i < offsets->cnt; i++) {
		int32_t p = offsets->elems[i].partition;
		dsp_lane_t *l = &d->lanes[dsp_lane_of(d, offsets->elems[i].topic)];
		if (p >= 0 && p < DSP_MAX_PARTS && l->parts[p])
			l->parts[p]->committed = -1;
	}
	log_debug("event=commit_failed err=\"%s\" action=retry", rd_kafka_err2str(err));
	/* a consumer outside the group commits as nobody (generation -1): the embedded broker
	 * refuses that once any member has joined the group */
	if (d->lease && !d->commit_refused &&
	    (err == RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID || err == RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION)) {
		d->commit_refused = 1;
		log_error("event=commit_refused err=\"%s\" msg=\"the broker refuses this dispatcher's "
		          "offsets: a dispatcher of group %s joined it (dispatcher.partition_leases false) "
		          "since the broker started; every dispatcher of a channel must use the same "
		          "setting, and the embedded broker must be restarted\"",
		          rd_kafka_err2str(err), d->group);
	}
}

void dsp_drop_partition(dsp_t *d, kq_lane_t lane, int32_t partition)
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
			dsp_msg_free(d, m);
		m = next;
	}
	free(p);
	d->lanes[lane].parts[partition] = NULL;
}

/* Pause (or resume) one assigned partition. */
void dsp_pause_one(rd_kafka_t *rk, const rd_kafka_topic_partition_t *tp, int pause)
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
void dsp_catch_up_tick(dsp_t *d, int64_t now)
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
			kq_lane_t ln = dsp_lane_of(d, a->elems[i].topic);
			dsp_part_t *p = dsp_part_get(d, ln, a->elems[i].partition);
			if (p && p->held) {
				p->held = 0;
				if (!d->lanes[ln].paused)
					dsp_pause_one(d->cons, &a->elems[i], 0);
			}
		}
		rd_kafka_topic_partition_list_destroy(a);
	}
	log_info("event=catch_up_done partitions=%d ms=%lld status_read=%lld ledger_read=%zu", held,
	         (long long)(now - d->catch_since_ms), (long long)want, d->catch_ledger);
	d->catch_since_ms = 0;
	d->catch_ledger = 0;
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

/* Records of partition p not yet consumed: its high watermark as last fetched less where it
 * is read to -- the last record consumed + 1, or before the first the offset its assignment
 * started from (rd_kafka_position() says nothing then, and the log start, which
 * kq_consumer_lag took for it, counted a partition read to its end by its previous owner
 * as wholly unread: a dispatcher with nothing left kept most of the rate, issue 13). 0 while
 * either is unknown. */
static int64_t part_lag(dsp_t *d, const dsp_part_t *p)
{
	int64_t lo = -1, hi = -1;
	if (rd_kafka_get_watermark_offsets(d->cons, d->lanes[p->lane].topic, p->partition, &lo, &hi) ||
	    hi < 0)
		return 0;
	int64_t pos = p->next_offset >= 0                     ? p->next_offset
	              : p->start == RD_KAFKA_OFFSET_BEGINNING ? lo
	                                                      : p->start;
	return pos >= 0 && hi > pos ? hi - pos : 0;
}

int64_t dsp_outbox_lag(dsp_t *d, int held)
{
	int64_t lag = 0;
	for (int ln = 0; ln < KQ_LANE__COUNT; ln++)
		for (int i = 0; i < d->lanes[ln].total_parts && i < DSP_MAX_PARTS; i++) {
			dsp_part_t *p = d->lanes[ln].parts[i];
			if (p && p->assigned && (held || !p->held))
				lag += part_lag(d, p);
		}
	return lag;
}

int64_t dsp_backlog(dsp_t *d)
{
	return dsp_outbox_lag(d, 0) + (int64_t)dsp_lane_active(&d->lanes[KQ_LANE_BULK]) +
	       (int64_t)dsp_lane_active(&d->lanes[KQ_LANE_URGENT]);
}

/* Rate shares by backlog (dispatcher/dsp_share.h): publish this dispatcher's backlog every
 * DSP_SHARE_EVERY_MS -- what it can send now: the records of its partitions not held for a
 * catch-up and not yet consumed, and its messages unfinished; the partitions held count for
 * nobody until their catch-up is done, so the peer that can send takes the whole rate
 * meanwhile -- and at once when it starts or stops having one (a catch-up done, the last
 * message sent), and take the share the peers' backlogs leave it. With no fresh record of
 * any peer while it owns only some partitions (the others have not said yet), the
 * partition share stays. */
void dsp_rate_share_tick(dsp_t *d, int64_t now)
{
	if (!d->share || now - d->share_tick_ms < DSP_SHARE_TICK_MS)
		return;
	d->share_tick_ms = now;
	int64_t own = dsp_backlog(d);
	if (own > 0 && !d->share_last_own)
		d->share_rise_ms = now;
	d->share_last_own = own;
	if ((now - d->share_pub_ms >= DSP_SHARE_EVERY_MS || !own != !d->share_pub_own) &&
	    !d->held_since_ms && !dsp_share_encode(d->share, own, clock_wall_ms(), &d->buf)) {
		d->share_pub_ms = now;
		d->share_pub_own = own;
		kq_produce(d->prod, KQ_T_BACKLOG, d->client_id, strlen(d->client_id), d->buf.p,
		           d->buf.len, NULL);
	}
	int fresh = 0;
	double share = dsp_share_get(d->share, own, now, &fresh);
	/* a backlog that just appeared (a blast starts, a catch-up ends): a peer that read this
	 * one's 0 takes the whole rate until it reads the new record (the producer's linger, its
	 * fetch wait, its tick). Until then the floor when a peer has a backlog (it goes at the
	 * whole rate), else an equal slice (a peer's backlog may be appearing too) */
	if (fresh && own > 0 && now - d->share_rise_ms < DSP_SHARE_SETTLE_MS) {
		double settle = dsp_share_busy(d->share, now) ? DSP_SHARE_FLOOR : 1.0 / (fresh + 1);
		share = share < settle ? share : settle;
	}
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

/* Partitions parts (of rk) are this dispatcher's now: counted, where each starts reading
 * asked (the group's committed offsets, for its backlog: part_lag), the urgent lane's records
 * forwarded to the queue polled first, the rate share by partitions set. */
static void parts_take(dsp_t *d, rd_kafka_t *rk, const rd_kafka_topic_partition_list_t *parts)
{
	int total = d->lanes[KQ_LANE_BULK].total_parts + d->lanes[KQ_LANE_URGENT].total_parts;
	rd_kafka_topic_partition_list_t *c = rd_kafka_topic_partition_list_copy(parts);
	int known = !rd_kafka_committed(rk, c, 2000);
	for (int i = 0; i < parts->cnt; i++) {
		kq_lane_t ln = dsp_lane_of(d, parts->elems[i].topic);
		dsp_part_t *p = dsp_part_get(d, ln, parts->elems[i].partition);
		if (p) {
			p->assigned = 1;
			p->start = !known || c->elems[i].err ? -1
			           : c->elems[i].offset >= 0 ? c->elems[i].offset
			                                     : RD_KAFKA_OFFSET_BEGINNING;
		}
		d->lanes[ln].owned++;
		if (ln == KQ_LANE_URGENT) { /* its records go to the queue polled first */
			rd_kafka_queue_t *pq = rd_kafka_queue_get_partition(rk, parts->elems[i].topic,
			                                                    parts->elems[i].partition);
			if (pq) {
				rd_kafka_queue_forward(pq, d->q_urgent);
				rd_kafka_queue_destroy(pq);
			}
		}
	}
	rd_kafka_topic_partition_list_destroy(c);
	/* the rate share: partitions owned of both lanes together, until dsp_rate_share_tick knows
	 * the others' backlogs (once it does, it decides: a restarted dispatcher took half the
	 * rate here while its peer, reading its 0, still took all of it) */
	d->owned_parts = d->lanes[KQ_LANE_BULK].owned + d->lanes[KQ_LANE_URGENT].owned;
	int fresh = 0;
	if (d->share)
		dsp_share_get(d->share, 0, clock_mono_ms(), &fresh);
	if (!fresh)
		set_share(d, (double)d->owned_parts / total);
}

/* The outcomes the previous owners of parts (just assigned) published before they let go are
 * read before anything of these partitions is consumed: they stay paused until then. */
static void parts_hold(dsp_t *d, rd_kafka_t *rk, const rd_kafka_topic_partition_list_t *parts)
{
	if (!parts->cnt)
		return;
	d->catch_since_ms = clock_mono_ms(); /* its ms= counts the start's questions too */
	d->catch_logged_ms = 0;
	for (int i = 0; i < parts->cnt; i++) {
		dsp_part_t *p = dsp_part_get(d, dsp_lane_of(d, parts->elems[i].topic),
		                             parts->elems[i].partition);
		if (p)
			p->held = 1;
		dsp_pause_one(rk, &parts->elems[i], 1);
	}
	/* what the dispatchers of this machine noted since it started: a killed one's last
	 * outcomes may never have reached the broker (they wait up to the producer's linger) */
	d->catch_ledger += dsp_ledger_refresh(d->ledger);
	dsp_state_catch_up_start(d->st, 10000);
	dsp_catch_up_tick(d, clock_mono_ms());
}

/* Hand parts over: the sends in flight finish and their outcomes are acknowledged, offsets are
 * committed synchronously, and what was not sent goes back to Kafka for the next owner. */
static void parts_give_up(dsp_t *d, const rd_kafka_topic_partition_list_t *parts)
{
	dsp_drain_inflight(d, 30000);
	dsp_commit_parts(d, 1);
	for (int i = 0; i < parts->cnt; i++) {
		kq_lane_t ln = dsp_lane_of(d, parts->elems[i].topic);
		dsp_drop_partition(d, ln, parts->elems[i].partition);
		if (d->lanes[ln].owned > 0)
			d->lanes[ln].owned--;
	}
}

/* What this dispatcher owns now, for the lines of an assignment change. */
#define OWNED_FMT "partitions=%d of=%d topic=%s urgent_partitions=%d of=%d topic=%s"
#define OWNED_ARGS(d)                                                                              \
	(d)->lanes[KQ_LANE_BULK].owned, (d)->lanes[KQ_LANE_BULK].total_parts,                      \
	    (d)->lanes[KQ_LANE_BULK].topic, (d)->lanes[KQ_LANE_URGENT].owned,                      \
	    (d)->lanes[KQ_LANE_URGENT].total_parts, (d)->lanes[KQ_LANE_URGENT].topic

void dsp_on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *parts, void *opaque)
{
	dsp_t *d = opaque;
	if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
		parts_take(d, rk, parts);
		log_info("event=assigned " OWNED_FMT " new=%d", OWNED_ARGS(d), parts->cnt);
		reassign(rk, parts, 1);
		parts_hold(d, rk, parts);
		return;
	}
	log_info("event=revoked partitions=%d msg=\"finishing in-flight sends before handing over\"",
	         parts->cnt);
	parts_give_up(d, parts);
	if (!cooperative(rk))
		d->lanes[KQ_LANE_BULK].owned = d->lanes[KQ_LANE_URGENT].owned = 0;
	d->owned_parts = d->lanes[KQ_LANE_BULK].owned + d->lanes[KQ_LANE_URGENT].owned;
	reassign(rk, parts, 0);
}

/* The partitions of both lanes whose lease this dispatcher (rank of n live) takes now (take
 * 1: its own by the target, free, and taken) or lets go (take 0: held, another's by the
 * target), as a list a consumer assigns from the committed offsets; "1,3,5" of each lane in
 * names. */
static rd_kafka_topic_partition_list_t *lease_changes(dsp_t *d, int rank, int n, int take,
                                                      char *names, size_t nameslen)
{
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(16);
	size_t at = 0;
	names[0] = '\0';
	for (int ln = 0; ln < KQ_LANE__COUNT; ln++) {
		int first = 1;
		for (int32_t p = 0; p < d->lanes[ln].total_parts; p++) {
			int mine = dsp_lease_mine(rank, n, p), held = dsp_lease_held(d->lease, ln, p);
			if (take ? !mine || held || dsp_lease_take(d->lease, ln, p) != 1 : !held || mine)
				continue;
			rd_kafka_topic_partition_list_add(l, d->lanes[ln].topic, p)->offset =
			    RD_KAFKA_OFFSET_INVALID; /* from the group's committed offset */
			int w = snprintf(names + at, nameslen - at, "%s%s%s%d", first && at ? " " : "",
			                 first ? (ln == KQ_LANE_URGENT ? "urgent=" : "bulk=") : "",
			                 first ? "" : ",", (int)p);
			if (w > 0 && (size_t)w < nameslen - at)
				at += (size_t)w;
			first = 0;
		}
	}
	return l;
}

/* Partitions of both lanes that would move now: held and another's (take 0), or this one's
 * and not held (take 1: free or not yet let go). */
static int lease_moves(const dsp_t *d, int rank, int n, int take)
{
	int k = 0;
	for (int ln = 0; ln < KQ_LANE__COUNT; ln++)
		for (int32_t p = 0; p < d->lanes[ln].total_parts; p++)
			k += dsp_lease_mine(rank, n, p) == take &&
			     dsp_lease_held(d->lease, ln, p) != take;
	return k;
}

/* Does the broker answer now (within 500 ms)? Leases move only then: a catch-up's queries and
 * a synchronous commit wait for it, and SIGTERM would wait with them. */
static int broker_answers(dsp_t *d)
{
	if (d->held_since_ms || tocsin_stop)
		return 0;
	/* bounded by its timeout (a watermark query once waited 30 min with the embedded broker
	 * gone, and SIGTERM was never honoured) */
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(l, d->lanes[KQ_LANE_BULK].topic, 0);
	int ok = kq_list_offsets(d->cons, l, 1, -1, 500) == 0;
	rd_kafka_topic_partition_list_destroy(l);
	return ok;
}

/* Does dispatcher id hold slot, by the leases' last ranking? A free slot: no; one whose holder
 * wrote another id: no (it died and another took the slot at once, as a restart does, before
 * a ranking found it free); one whose holder has not written yet: yes. */
static int slot_held_by(void *ctx, int slot, const char *id)
{
	const dsp_lease_t *l = ctx;
	if (slot >= DSP_LEASE_MAX_SLOTS)
		return 1;
	const char *h = dsp_lease_holder(l, slot);
	return dsp_lease_live(l)[slot] && (!h[0] || !strcmp(h, id));
}

/* Partition leases (dispatcher.partition_leases, dispatcher/dsp_lease.h): every
 * DSP_LEASE_TICK_MS, rank the live dispatchers of the channel and move toward the target --
 * partition p is the live slot of rank p mod n's. What is another's now is handed over as a
 * revoke does (parts_give_up), then unassigned and its lease let go; what is this one's and
 * free (its owner let it go, or died: the kernel dropped its locks) is leased, assigned from
 * the committed offset and held for the catch-up like an assignment. A give-up waits until
 * the same ranking was seen twice in a row (a dispatcher that dies at once moves nothing);
 * nothing moves while the broker does not answer. */
void dsp_group_leases(dsp_t *d, int64_t now)
{
	if (!d->lease || now - d->lease_tick_ms < DSP_LEASE_TICK_MS)
		return;
	d->lease_tick_ms = now;
	int n, rank = dsp_lease_rank(d->lease, &n);
	if (d->share) /* a dead dispatcher's backlog counts no more */
		dsp_share_drop_dead(d->share, slot_held_by, d->lease);
	int stable = rank == d->lease_rank && n == d->lease_n;
	d->lease_rank = rank;
	d->lease_n = n;
	int give = stable && lease_moves(d, rank, n, 0);
	if ((!give && !lease_moves(d, rank, n, 1)) || !broker_answers(d))
		return;
	char names[2048];
	rd_kafka_topic_partition_list_t *l;
	if (give) {
		l = lease_changes(d, rank, n, 0, names, sizeof names);
		if (l->cnt) {
			parts_give_up(d, l);
			rd_kafka_error_t *e = rd_kafka_incremental_unassign(d->cons, l);
			if (e) {
				log_warn("event=reassign_failed assign=0 err=\"%s\"",
				         rd_kafka_error_string(e));
				rd_kafka_error_destroy(e);
			}
			for (int i = 0; i < l->cnt; i++)
				dsp_lease_drop(d->lease, dsp_lane_of(d, l->elems[i].topic),
				               l->elems[i].partition);
			d->owned_parts = d->lanes[KQ_LANE_BULK].owned + d->lanes[KQ_LANE_URGENT].owned;
			log_info("event=lease_released " OWNED_FMT " released=%s live=%d rank=%d",
			         OWNED_ARGS(d), names, n, rank);
		}
		rd_kafka_topic_partition_list_destroy(l);
	}
	l = lease_changes(d, rank, n, 1, names, sizeof names);
	if (l->cnt) {
		parts_take(d, d->cons, l);
		rd_kafka_error_t *e = rd_kafka_incremental_assign(d->cons, l);
		if (e) { /* not consumed: the leases go, taken again at a next tick */
			log_warn("event=reassign_failed assign=1 err=\"%s\"", rd_kafka_error_string(e));
			rd_kafka_error_destroy(e);
			for (int i = 0; i < l->cnt; i++) {
				kq_lane_t ln = dsp_lane_of(d, l->elems[i].topic);
				dsp_drop_partition(d, ln, l->elems[i].partition);
				d->lanes[ln].owned--;
				dsp_lease_drop(d->lease, ln, l->elems[i].partition);
			}
			d->owned_parts = d->lanes[KQ_LANE_BULK].owned + d->lanes[KQ_LANE_URGENT].owned;
		} else {
			log_info("event=lease_acquired " OWNED_FMT " acquired=%s live=%d rank=%d",
			         OWNED_ARGS(d), names, n, rank);
			parts_hold(d, d->cons, l);
		}
	}
	rd_kafka_topic_partition_list_destroy(l);
}

/* "auto", true or false at dispatcher.<key> into *on (auto: auto_on); refused with one line. */
static int auto_bool(const cfg_t *c, const char *key, int auto_on, int *on, char *err, size_t errlen)
{
	json_t *v = json_object_get(json_object_get(c->root, "dispatcher"), key);
	*on = auto_on;
	if (v && json_is_boolean(v))
		*on = json_is_true(v);
	else if (v && !(json_is_string(v) && !strcmp(json_string_value(v), "auto"))) {
		snprintf(err, errlen, "%s: dispatcher.%s must be \"auto\", true or false", c->path,
		         key);
		return TOCSIN_ERR_CONFIG;
	}
	return 0;
}

/* How the outbox consumer cc gets its partitions (issue 13 item 4; cc NULL: only check the
 * config, before anything starts).
 * Partition leases (dispatcher.partition_leases "auto": on with the embedded broker, off with
 * a configured cluster; true; false): no group protocol at all, the dispatchers of the channel
 * share them through files under <var_dir>/run (dsp_group_leases, dispatcher/dsp_lease.h); the
 * group's committed offsets stay where a consumer takes up a partition. Else the group
 * protocol: a dead member's partitions move when its session times out (core/kq.c:
 * session.timeout.ms 10000; a shorter one made the kill loop worse on the embedded broker,
 * bench/RESULTS.md). Static membership (group.instance.id = <host>-<channel>-<slot>, so a
 * restarted dispatcher takes its slot again and the broker hands its partitions back without
 * a rebalance): dispatcher.static_membership "auto" (default: on with a configured cluster,
 * off with the embedded broker, whose librdkafka 2.0 mock ignores group.instance.id and would
 * keep a stopped static member's partitions until its session times out), true or false.
 * Either way the slot is the lowest free one among <var_dir>/run/dispatch-<channel>-<slot>.lock,
 * held by flock for the process's life. */
int dsp_membership(dsp_t *d, rd_kafka_conf_t *cc, char *err, size_t errlen)
{
	const cfg_t *c = d->cfg;
	int cluster = json_object_get(c->kafka, "bootstrap.servers") != NULL, sm, leases;
	if (auto_bool(c, "static_membership", cluster, &sm, err, errlen) ||
	    auto_bool(c, "partition_leases", !cluster, &leases, err, errlen))
		return TOCSIN_ERR_CONFIG;
	if (!cc || (!leases && (!sm || json_object_get(c->kafka, "group.instance.id"))))
		return 0;
	const char *ch = msg_channel_name(d->channel);
	char host[64] = "host", dir[4096];
	gethostname(host, sizeof host - 1);
	int slot = cfg_var_path(c, "run", dir, sizeof dir)
	               ? -1
	               : dsp_lease_slot_take(dir, ch, d->client_id, &d->slot_fd);
	if (slot < 0 && leases) {
		snprintf(err, errlen, "partition leases: no free slot among %s/dispatch-%s-*.lock: %s",
		         dir, ch, strerror(errno));
		return TOCSIN_ERR_IO;
	}
	if (slot < 0) {
		log_warn("event=static_membership_off msg=\"no free slot under %s/run: joining as a "
		         "dynamic member\"",
		         c->var_dir);
		return 0;
	}
	d->slot = slot;
	if (leases) {
		d->lease_n = -1;
		if (d->share) /* the slot is named in its tocsin.backlog records */
			dsp_share_set_slot(d->share, slot);
		return (d->lease = dsp_lease_new(dir, ch, slot, err, errlen)) ? 0 : TOCSIN_ERR_NOMEM;
	}
	snprintf(d->instance, sizeof d->instance, "%s-%s-%d", host, ch, slot);
	rd_kafka_conf_set(cc, "group.instance.id", d->instance, NULL, 0);
	return 0;
}
