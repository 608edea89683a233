/* dsp_group.c -- the dispatcher's outbox partitions: group membership, rebalances, the catch-up
 * hold of a partition handed over, offset commits, and the rate share they imply. */
#include "dispatcher/dsp_int.h"
#include "core/clock.h"

#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

/* rl_set_share() takes a fraction: the share in ten-thousandths. */
#define DSP_SHARE_SCALE 10000
/* The share by backlog is computed this often (published every DSP_SHARE_EVERY_MS). */
#define DSP_SHARE_TICK_MS 100
/* A catch-up holding sends is logged after this long, then this often (dsp_catch_up_tick). */
#define DSP_CATCH_UP_LOG_MS 5000
#define DSP_CATCH_UP_LOG_EVERY_MS 30000

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
void dsp_rate_share_tick(dsp_t *d, int64_t now)
{
	if (!d->share || now - d->share_tick_ms < DSP_SHARE_TICK_MS)
		return;
	d->share_tick_ms = now;
	int64_t lag = kq_consumer_lag(d->cons);
	int64_t own = (lag > 0 ? lag : 0) + (int64_t)dsp_lane_active(&d->lanes[KQ_LANE_BULK]) +
	              (int64_t)dsp_lane_active(&d->lanes[KQ_LANE_URGENT]);
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

void dsp_on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *parts, void *opaque)
{
	dsp_t *d = opaque;
	int total = d->lanes[KQ_LANE_BULK].total_parts + d->lanes[KQ_LANE_URGENT].total_parts;
	if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
		for (int i = 0; i < parts->cnt; i++) {
			kq_lane_t ln = dsp_lane_of(d, parts->elems[i].topic);
			dsp_part_t *p = dsp_part_get(d, ln, parts->elems[i].partition);
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
		/* the rate share: partitions owned of both lanes together, until dsp_rate_share_tick knows
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
			dsp_part_t *p = dsp_part_get(d, dsp_lane_of(d, parts->elems[i].topic),
			                             parts->elems[i].partition);
			if (p)
				p->held = 1;
			dsp_pause_one(rk, &parts->elems[i], 1);
		}
		dsp_catch_up_tick(d, d->catch_since_ms);
		return;
	}
	log_info("event=revoked partitions=%d msg=\"finishing in-flight sends before handing over\"",
	         parts->cnt);
	dsp_drain_inflight(d, 30000);
	dsp_commit_parts(d, 1);
	for (int i = 0; i < parts->cnt; i++) {
		kq_lane_t ln = dsp_lane_of(d, parts->elems[i].topic);
		dsp_drop_partition(d, ln, parts->elems[i].partition);
		if (d->lanes[ln].owned > 0)
			d->lanes[ln].owned--;
	}
	if (!cooperative(rk))
		d->lanes[KQ_LANE_BULK].owned = d->lanes[KQ_LANE_URGENT].owned = 0;
	d->owned_parts = d->lanes[KQ_LANE_BULK].owned + d->lanes[KQ_LANE_URGENT].owned;
	reassign(rk, parts, 0);
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
int dsp_membership(dsp_t *d, rd_kafka_conf_t *cc, char *err, size_t errlen)
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
