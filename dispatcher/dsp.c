/* dsp.c -- `tocsin dispatch`: consume the outbox, send through vendors, report every outcome,
 * commit offsets only past messages whose final outcome is on tocsin.status. */
#include "dispatcher/dsp_int.h"
#include "core/clock.h"
#include "core/cmd.h"
#include "core/sig.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Offsets are committed this often: what a kill -9 can resend is what was sent in this
 * window plus what was in flight. */
#define DSP_COMMIT_EVERY_MS 100
/* A pending window full this long means sending is stuck, not just busy: pause. */
#define DSP_STUCK_PAUSE_MS 2000
/* Final statuses waiting this long with no acknowledgement from the broker at all: it is
 * unreachable, and sending stops (an outcome that cannot be recorded would be sent again). */
#define DSP_ACK_STALL_MS 1500
/* Stopping while the broker is unreachable: what is in flight gets this long. */
#define DSP_STOP_UNREACHABLE_MS 2500

void dsp_msg_free(dsp_t *d, dsp_msg_t *m)
{
	d->n_held -= m->held;
	dsp_amb_end(d, m);
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
void dsp_msg_done(dsp_t *d, dsp_msg_t *m)
{
	dsp_lane_t *l = &d->lanes[m->lane];
	l->ndone++;
	l->n_left++;
	if (m->rkm) {
		rd_kafka_message_destroy(m->rkm);
		m->rkm = NULL;
	}
}

/* Pop finished messages off the head of their partition and free them. */
void dsp_part_advance(dsp_t *d, dsp_part_t *p)
{
	while (p->head && p->head->where == DQ_DONE) {
		dsp_msg_t *m = p->head;
		p->head = m->part_next;
		if (!p->head)
			p->tail = NULL;
		dsp_msg_free(d, m);
	}
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
	kq_lane_t lane = dsp_lane_of(d, rd_kafka_topic_name(rkm->rkt));
	if (d->lease && !dsp_lease_held(d->lease, lane, rkm->partition)) {
		/* fetched before the partition was handed over: its new owner reads it */
		rd_kafka_message_destroy(rkm);
		return;
	}
	dsp_part_t *p = dsp_part_get(d, lane, rkm->partition);
	if (p && p->next_offset >= 0 && rkm->offset < p->next_offset) {
		/* consumed already in this assignment, its first copy on its way: librdkafka 2.0
		 * can fetch a resumed partition again from an older offset (confluentinc/librdkafka
		 * #4637), and a second copy still pending would be sent twice (tests/it/0515 in CI:
		 * 252 records again after the catch-up's resume, 36 sent twice) */
		if (!p->refetched)
			log_warn("event=refetch_dropped topic=%s partition=%d offset=%lld "
			         "next_offset=%lld msg=\"records consumed already in this assignment "
			         "came again: dropped\"",
			         d->lanes[lane].topic, (int)rkm->partition, (long long)rkm->offset,
			         (long long)p->next_offset);
		p->refetched = 1;
		d->n_refetched++;
		rd_kafka_message_destroy(rkm);
		return;
	}
	/* the header cleared, not the arena: msg_out_scan writes what it reads of it (clearing
	 * ~1 KB a personalized email record was 1% of the email path, h17's profile) */
	dsp_msg_t *m = p ? malloc(sizeof *m + rkm->len + 1) : NULL;
	if (m)
		memset(m, 0, sizeof *m);
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
	p->refetched = 0;
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
		dsp_msg_done(d, m);
		dsp_part_advance(d, p);
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
		dsp_msg_done(d, m);
		dsp_part_advance(d, p);
		return;
	}
	m->attempt = m->m.attempt;
	/* A vendor took it, but its outcome is not on tocsin.status: the broker lost it (an
	 * embedded broker restarted, a relaunch). The ledger remembers; its outcome is put back. */
	if (m->m.attempt == 0 && dsp_ledger_has(d->ledger, m->m.id)) {
		d->n_ledgered++;
		dsp_finish(d, m, MSG_ST_ACCEPTED, NULL, NULL, "ledger",
		           "a vendor took it before the broker lost its outcome (dispatcher ledger): not "
		           "sent again",
		           -1);
		return;
	}
	dsp_admit(d, m, clock_mono_ms());
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
	dsp_sla_check(d, now);
	dsp_msg_t *m;
	while ((m = dq_due(d->q, now))) {
		if (m->refinal) { /* a final status to produce again */
			dsp_produce_status(d, m, m->final_state, m->vendor_name, m->ref, m->code,
			                   m->detail, m->latency_ms, 1);
			continue;
		}
		if (m->discard)
			dsp_msg_free(d, m);
		else if (m->amb_until)
			dsp_amb_check(d, m, now);
		else
			dsp_admit(d, m, now);
	}
	if (!d->draining && !d->held_since_ms)
		dsp_serve_all(d, now);
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
		dsp_on_done(d, &hd);
	rd_kafka_poll(d->prod, 0);
}

/* Finish what is in flight: every send completes and its final status is
 * acknowledged, or timeout_ms passes. New sends are held meanwhile. */
void dsp_drain_inflight(dsp_t *d, int timeout_ms)
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
		if (http_in_flight(d->http)) /* the outcomes wait only for the broker, not the linger */
			rd_kafka_poll(d->prod, 10);
		else
			rd_kafka_flush(d->prod, 10);
	}
	d->draining = was;
}

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
	if (dsp_lane_room(d, l)) {
		l->full_since_ms = 0;
	} else if (!l->full_since_ms || l->n_left != l->full_left) {
		l->full_since_ms = now_ms;
		l->full_left = l->n_left;
	}
	int want_pause = l->full_since_ms && now_ms - l->full_since_ms >= DSP_STUCK_PAUSE_MS;
	int want_resume = l->paused && dsp_lane_active(l) <= d->max_pending / 2 &&
	                  l->ndone <= DSP_DONE_HELD_FACTOR * d->max_pending / 2;
	if (want_pause == l->paused || (!want_pause && !want_resume))
		return;
	rd_kafka_topic_partition_list_t *a = NULL;
	if (rd_kafka_assignment(d->cons, &a) || !a)
		return;
	for (int i = 0; i < a->cnt; i++) {
		if (dsp_lane_of(d, a->elems[i].topic) != lane)
			continue;
		dsp_part_t *p = dsp_part_get(d, lane, a->elems[i].partition);
		if (want_pause || !p || !p->held) /* a held one waits for its catch-up */
			dsp_pause_one(d->cons, &a->elems[i], want_pause);
	}
	log_info("event=backpressure action=%s topic=%s pending=%zu",
	         want_pause ? "pause" : "resume", l->topic, l->npending);
	l->paused = want_pause;
	rd_kafka_topic_partition_list_destroy(a);
}

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: tocsin dispatch [--channel sms|email] [--max-pending N]\n"
	        "\n"
	        "Consume tocsin.outbox.<channel> and tocsin.outbox.<channel>.urgent (the urgent\n"
	        "lane, always drained first), send each message through the channel's route of\n"
	        "vendors (routes.<channel> in the config), and publish every outcome on\n"
	        "tocsin.status. Offsets are committed (consumer group tocsin-dispatch-<channel>)\n"
	        "only past messages whose final status the broker has acknowledged, so a crash\n"
	        "loses nothing. Run several for more throughput: they share the partitions, by\n"
	        "leases on this machine with the embedded broker (dispatcher.partition_leases),\n"
	        "else as one consumer group.\n"
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
	d.slot_fd = d.slot = -1;
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
	if (dsp_setup(&d, err, sizeof err) ||
	    (!(d.met = dsp_metrics_new(cfg, d.channel, d.client_id, err, sizeof err)) && err[0])) {
		fprintf(stderr, "tocsin dispatch: %s\n", err);
		dsp_teardown(&d);
		return 1;
	}
	log_info("event=dispatch_started channel=%s group=%s instance=%s partitions_by=%s slot=%d "
	         "vendors=%zu max_in_flight=%d ledger_ids=%zu",
	         msg_channel_name(d.channel), d.group, d.instance[0] ? d.instance : "dynamic",
	         d.lease ? "leases" : "group", d.slot, d.nvendors, cfg->max_in_flight,
	         dsp_ledger_loaded(d.ledger));
	while (!tocsin_stop) {
		int64_t now = clock_mono_ms();
		dsp_state_poll(d.st);
		rd_kafka_message_t *rkm;
		dsp_lane_t *ul = &d.lanes[KQ_LANE_URGENT], *bl = &d.lanes[KQ_LANE_BULK];
		/* The urgent lane first, in its own window: a full bulk window never keeps an
		 * urgent record out, and its messages go first at every destination. */
		while (dsp_lane_room(&d, ul) && (rkm = rd_kafka_consume_queue(d.q_urgent, 0)))
			on_record(&d, rkm);
		while (dsp_lane_room(&d, bl) && (rkm = rd_kafka_consumer_poll(d.cons, 0)))
			on_record(&d, rkm);
		/* Paused and full: still poll (paused partitions deliver nothing), so the
		 * group sees this member alive past max.poll.interval.ms and rebalances are
		 * served while every vendor is down. */
		if (bl->paused && !dsp_lane_room(&d, bl) && (rkm = rd_kafka_consumer_poll(d.cons, 0)))
			on_record(&d, rkm);
		backpressure(&d, KQ_LANE_URGENT, now);
		backpressure(&d, KQ_LANE_BULK, now);
		pump(&d, 100);
		if (now - d.last_commit_ms >= DSP_COMMIT_EVERY_MS) {
			dsp_commit_parts(&d, 0);
			d.last_commit_ms = now;
		}
		dsp_group_leases(&d, now);
		dsp_catch_up_tick(&d, now);
		dsp_rate_share_tick(&d, now);
		dsp_progress(&d, now);
	}
	log_info("event=dispatch_stopping signal=%d in_flight=%d pending=%zu", (int)tocsin_stop,
	         http_in_flight(d.http), d.npending);
	dsp_drain_inflight(&d, 30000);
	if (!d.held_since_ms) /* a synchronous commit would wait for the broker */
		dsp_commit_parts(&d, 1);
	if (d.share && !d.held_since_ms) /* the others take this one's slice at once */
		kq_produce(d.prod, KQ_T_BACKLOG, d.client_id, strlen(d.client_id), NULL, 0, NULL);
	d.last_progress_ms = 0;
	dsp_progress(&d, clock_mono_ms());
	double secs = d.n_finals_acked ? (d.last_final_ns - d.first_consume_ns) / 1e9 : 0;
	log_info("event=dispatch_summary finals=%lld seconds=%.3f per_second=%.0f "
	         "msg=\"from the first message consumed to the last final status acknowledged\"",
	         (long long)d.n_finals_acked, secs, secs > 0 ? d.n_finals_acked / secs : 0.0);
	dsp_teardown(&d);
	log_info("event=dispatch_stopped");
	return 0;
}
