/* dsp_setup.c -- the dispatcher's set-up and teardown: vendors, the send engine, the Kafka clients. */
#include "dispatcher/dsp_int.h"
#include "core/clock.h"
#include "core/runfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DSP_MAX_BODY (1 << 20) /* largest vendor response read */
/* The status producer's linger.ms (setup_state). */
#define DSP_STATUS_LINGER_MS "50"
/* A send with no answer (ambiguous) is held dispatcher.ambiguous_grace_ms (default) for a
 * receipt (dsp_outcome.c). */
#define DSP_AMB_GRACE_MS 10000

/* The vendors of the channel's route: adapter, limiters and SLA monitor each. *max_batch: the
 * largest batch one of them takes. */
static int setup_vendors(dsp_t *d, size_t *max_batch, char *err, size_t errlen)
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
	*max_batch = 1;
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
		if ((size_t)vnd_max_batch(dv->a) > *max_batch)
			*max_batch = (size_t)vnd_max_batch(dv->a);
	}
	return 0;
}

/* The dispatcher's own fields of the config, checked before anything starts. *by_backlog:
 * dispatcher.rate_share is "backlog". */
static int setup_options(dsp_t *d, int *by_backlog, char *err, size_t errlen)
{
	const cfg_t *c = d->cfg;
	json_t *g = json_object_get(json_object_get(c->root, "dispatcher"), "ambiguous_grace_ms");
	d->amb_grace_ms = DSP_AMB_GRACE_MS;
	if (g && (!json_is_integer(g) || json_integer_value(g) < 0 || json_integer_value(g) > 600000)) {
		snprintf(err, errlen,
		         "%s: dispatcher.ambiguous_grace_ms must be an integer 0..600000", c->path);
		return TOCSIN_ERR_CONFIG;
	} else if (g)
		d->amb_grace_ms = json_integer_value(g);
	json_t *rs = json_object_get(json_object_get(c->root, "dispatcher"), "rate_share");
	*by_backlog = !rs || (json_is_string(rs) && !strcmp(json_string_value(rs), "backlog"));
	if (rs && !*by_backlog &&
	    !(json_is_string(rs) && !strcmp(json_string_value(rs), "partitions"))) {
		snprintf(err, errlen,
		         "%s: dispatcher.rate_share must be \"backlog\" or \"partitions\"", c->path);
		return TOCSIN_ERR_CONFIG;
	}
	if (dsp_membership(d, NULL, err, errlen))
		return TOCSIN_ERR_CONFIG;
	return 0;
}

/* The send engine: destinations, route, retry rules, max_in_flight pooled requests of up to
 * max_batch messages, the HTTP engine and the loop's wake-up pipe. */
static int setup_engine(dsp_t *d, size_t max_batch, char *err, size_t errlen)
{
	const cfg_t *c = d->cfg;
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
	return 0;
}

/* The status producer, the state reader (campaigns, opt-outs, vendor health, tocsin.status;
 * the peers' backlogs when by_backlog) and the ledger. */
static int setup_state(dsp_t *d, int by_backlog, char *err, size_t errlen)
{
	const cfg_t *c = d->cfg;
	rd_kafka_conf_t *pc = kq_conf_new(c, KQ_PRODUCER, d->client_id, NULL, err, errlen);
	if (!pc)
		return TOCSIN_ERR_CONFIG;
	/* The outcomes go to tocsin.status in batches of up to DSP_STATUS_LINGER_MS: the embedded
	 * broker (librdkafka's mock) answers a fetch with one produced batch a partition, so a
	 * catch-up reads as many records a round trip as a batch holds (5 ms batches: 10-14k
	 * records/s, seconds of held partitions at every restart, issue 13). The config wins. */
	if (!json_object_get(c->kafka, "linger.ms") &&
	    !json_object_get(c->kafka, "queue.buffering.max.ms"))
		rd_kafka_conf_set(pc, "linger.ms", DSP_STATUS_LINGER_MS, NULL, 0);
	rd_kafka_conf_set_dr_msg_cb(pc, dsp_on_delivery);
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
	return 0;
}

/* The outbox consumer: a member of the channel's group subscribed to both lanes, or with
 * partition leases a consumer assigned by dsp_group_leases (the urgent lane's partitions
 * forwarded to their own queue at assignment), every queue waking the loop. */
static int setup_consumer(dsp_t *d, char *err, size_t errlen)
{
	const cfg_t *c = d->cfg;
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
	int rc = dsp_membership(d, cc, err, errlen);
	if (rc) {
		rd_kafka_conf_destroy(cc);
		return rc;
	}
	rd_kafka_conf_set_rebalance_cb(cc, dsp_on_rebalance);
	rd_kafka_conf_set_offset_commit_cb(cc, dsp_on_commit);
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
	/* with partition leases nothing joins the group: dsp_group_leases assigns */
	rd_kafka_resp_err_t e = d->lease ? RD_KAFKA_RESP_ERR_NO_ERROR
	                                 : rd_kafka_subscribe(d->cons, topics);
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

int dsp_setup(dsp_t *d, char *err, size_t errlen)
{
	size_t max_batch;
	int by_backlog, rc;
	if ((rc = setup_vendors(d, &max_batch, err, errlen)) ||
	    (rc = setup_options(d, &by_backlog, err, errlen)) ||
	    (rc = setup_engine(d, max_batch, err, errlen)) ||
	    (rc = setup_state(d, by_backlog, err, errlen)) || (rc = setup_consumer(d, err, errlen)))
		return rc;
	return 0;
}

void dsp_teardown(dsp_t *d)
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
				dsp_drop_partition(d, (kq_lane_t)ln, i);
		}
	dsp_msg_t *m;
	while (d->q && (m = dq_any(d->q)))
		dsp_msg_free(d, m);
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
	dsp_lease_free(d->lease); /* after the consumer: its last commit was made */
	if (d->slot_fd >= 0)
		close(d->slot_fd);
	if (d->wake[0] > 0) {
		close(d->wake[0]);
		close(d->wake[1]);
	}
	buf_free(&d->buf);
}
