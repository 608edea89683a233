/* kq.c -- Kafka client wrappers: topics, bootstrap discovery, producer/consumer set-up. */
#include "core/kq.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/runfile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const kq_topic_spec_t kq_topics[] = {
    {KQ_T_CAMPAIGNS, 1, 1},
    {KQ_T_OUTBOX_SMS, 12, 0},
    {KQ_T_OUTBOX_EMAIL, 12, 0},
    {KQ_T_STATUS, 6, 0},
    {KQ_T_OPTOUTS, 3, 1},
    {KQ_T_VENDOR_HEALTH, 1, 1},
    {KQ_T_DEAD, 3, 0},
    {KQ_T_OUTBOX_SMS_URGENT, 12, 0},
    {KQ_T_OUTBOX_EMAIL_URGENT, 12, 0},
    {KQ_T_BACKLOG, 1, 1},
};
const size_t kq_ntopics = sizeof kq_topics / sizeof kq_topics[0];

const char *kq_outbox_topic(msg_channel_t ch)
{
	return ch == MSG_CH_EMAIL ? KQ_T_OUTBOX_EMAIL : KQ_T_OUTBOX_SMS;
}

kq_lane_t kq_lane_of(int priority)
{
	return priority >= KQ_URGENT_PRIORITY ? KQ_LANE_URGENT : KQ_LANE_BULK;
}

const char *kq_outbox_lane_topic(msg_channel_t ch, kq_lane_t l)
{
	if (l == KQ_LANE_URGENT)
		return ch == MSG_CH_EMAIL ? KQ_T_OUTBOX_EMAIL_URGENT : KQ_T_OUTBOX_SMS_URGENT;
	return kq_outbox_topic(ch);
}

const char *kq_outbox_topic_for(msg_channel_t ch, int priority)
{
	return kq_outbox_lane_topic(ch, kq_lane_of(priority));
}

int kq_dispatch_group(msg_channel_t ch, char *out, size_t outlen)
{
	int n = snprintf(out, outlen, KQ_G_DISPATCH_PREFIX "%s", msg_channel_name(ch));
	return n < 0 || (size_t)n >= outlen ? -1 : n;
}

int kq_bootstrap(const cfg_t *c, char *out, size_t outlen, char *err, size_t errlen)
{
	json_t *bs = json_object_get(c->kafka, "bootstrap.servers");
	if (json_is_string(bs) && json_string_length(bs) > 0) {
		snprintf(out, outlen, "%s", json_string_value(bs));
		return 0;
	}
	char path[4096];
	cfg_var_path(c, KQ_RUN_BOOTSTRAP, path, sizeof path);
	if (runfile_read(c, KQ_RUN_BOOTSTRAP, out, outlen) <= 0) {
		snprintf(err, errlen,
		         "no Kafka broker: the config (%s) sets no kafka.\"bootstrap.servers\" and no "
		         "embedded broker is running (no %s); start one with `tocsin broker`",
		         c->path, path);
		return TOCSIN_ERR_CONFIG;
	}
	if (!runfile_live_pid(c, KQ_RUN_PID)) {
		snprintf(err, errlen,
		         "no Kafka broker: %s is stale (the embedded broker that wrote it is not "
		         "running); start one with `tocsin broker`",
		         path);
		return TOCSIN_ERR_CONFIG;
	}
	return 0;
}

/* librdkafka's own log lines, as one key=value line of ours (from its threads). */
static void on_rdkafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	(void)rk;
	int lvl = level <= 3   ? TLOG_ERROR
	          : level <= 5 ? TLOG_WARN
	          : level <= 6 ? TLOG_INFO
	                       : TLOG_DEBUG;
	log_at(lvl, "event=kafka facility=%s msg=\"%s\"", fac, buf);
}

static int set(rd_kafka_conf_t *conf, const char *k, const char *v, char *err, size_t errlen)
{
	char e[256];
	if (rd_kafka_conf_set(conf, k, v, e, sizeof e) != RD_KAFKA_CONF_OK) {
		snprintf(err, errlen, "kafka property %s: %s", k, e);
		return -1;
	}
	return 0;
}

rd_kafka_conf_t *kq_conf_new(const cfg_t *c, kq_role_t role, const char *client_id,
                             const char *group, char *err, size_t errlen)
{
	char bs[2048];
	if (kq_bootstrap(c, bs, sizeof bs, err, errlen))
		return NULL;
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_conf_set_log_cb(conf, on_rdkafka_log);
	static const char *const producer_defaults[][2] = {
	    {"enable.idempotence", "true"},   {"acks", "all"},
	    {"compression.type", "lz4"},      {"linger.ms", "5"},
	    {"batch.num.messages", "10000"},  {"queue.buffering.max.messages", "200000"},
	    {"message.timeout.ms", "120000"},
	};
	static const char *const consumer_defaults[][2] = {
	    {"enable.auto.commit", "false"},        {"enable.auto.offset.store", "false"},
	    {"auto.offset.reset", "earliest"},      {"enable.partition.eof", "false"},
	    {"queued.max.messages.kbytes", "8192"}, {"session.timeout.ms", "10000"},
	    {"heartbeat.interval.ms", "1000"},
	};
	int bad = set(conf, "client.id", client_id ? client_id : "tocsin", err, errlen);
	if (role == KQ_PRODUCER) {
		for (size_t i = 0;
		     !bad && i < sizeof producer_defaults / sizeof producer_defaults[0]; i++)
			bad = set(conf, producer_defaults[i][0], producer_defaults[i][1], err, errlen);
	} else {
		for (size_t i = 0;
		     !bad && i < sizeof consumer_defaults / sizeof consumer_defaults[0]; i++)
			bad = set(conf, consumer_defaults[i][0], consumer_defaults[i][1], err, errlen);
		if (!bad && group)
			bad = set(conf, "group.id", group, err, errlen);
	}
	const char *k;
	json_t *v;
	json_object_foreach(c->kafka, k, v)
	{
		if (bad)
			break;
		/* Producer-only and consumer-only properties warn on the other role:
		 * skip the ones librdkafka refuses for this role instead of failing. */
		char e[256];
		if (rd_kafka_conf_set(conf, k, json_string_value(v), e, sizeof e) != RD_KAFKA_CONF_OK) {
			snprintf(err, errlen, "%s: kafka property %s: %s", c->path, k, e);
			bad = 1;
		}
	}
	if (!bad)
		bad = set(conf, "bootstrap.servers", bs, err, errlen);
	if (bad) {
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	return conf;
}

rd_kafka_t *kq_new(rd_kafka_conf_t *conf, kq_role_t role, int timeout_ms, char *err, size_t errlen)
{
	char e[512];
	char bs[1024];
	size_t bsl = sizeof bs;
	if (rd_kafka_conf_get(conf, "bootstrap.servers", bs, &bsl) != RD_KAFKA_CONF_OK)
		snprintf(bs, sizeof bs, "?");
	rd_kafka_t *rk = rd_kafka_new(role == KQ_PRODUCER ? RD_KAFKA_PRODUCER : RD_KAFKA_CONSUMER,
	                              conf, e, sizeof e);
	if (!rk) {
		rd_kafka_conf_destroy(conf);
		snprintf(err, errlen, "cannot create Kafka client: %s", e);
		return NULL;
	}
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_resp_err_t rc = rd_kafka_metadata(rk, 0, NULL, &md, timeout_ms);
	if (rc) {
		snprintf(err, errlen, "cannot reach Kafka at %s within %d ms: %s", bs, timeout_ms,
		         rd_kafka_err2str(rc));
		rd_kafka_destroy(rk);
		return NULL;
	}
	rd_kafka_metadata_destroy(md);
	if (role == KQ_CONSUMER)
		rd_kafka_poll_set_consumer(rk);
	return rk;
}

int kq_partitions(rd_kafka_t *rk, const char *topic, int timeout_ms)
{
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
	int n = -1;
	if (t && !rd_kafka_metadata(rk, 0, t, &md, timeout_ms) && md->topic_cnt == 1 &&
	    !md->topics[0].err && md->topics[0].partition_cnt > 0)
		n = md->topics[0].partition_cnt;
	if (md)
		rd_kafka_metadata_destroy(md);
	if (t)
		rd_kafka_topic_destroy(t);
	return n;
}

rd_kafka_t *kq_consumer_new(const cfg_t *c, const char *client_id, const char *group,
                            int timeout_ms, char *err, size_t errlen)
{
	rd_kafka_conf_t *conf = kq_conf_new(c, KQ_CONSUMER, client_id, group, err, errlen);
	return conf ? kq_new(conf, KQ_CONSUMER, timeout_ms, err, errlen) : NULL;
}

int kq_produce(rd_kafka_t *rk, const char *topic, const void *key, size_t keylen, const void *val,
               size_t vallen, void *msg_opaque)
{
	for (;;) {
		rd_kafka_resp_err_t e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic),
		                                          RD_KAFKA_V_KEY(key, keylen),
		                                          RD_KAFKA_V_VALUE((void *)val, vallen),
		                                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
		                                          RD_KAFKA_V_OPAQUE(msg_opaque),
		                                          RD_KAFKA_V_END);
		if (!e)
			return 0;
		if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
			rd_kafka_poll(rk, 10);
			continue;
		}
		log_error("event=produce_failed topic=%s err=\"%s\"", topic, rd_kafka_err2str(e));
		return TOCSIN_ERR_KAFKA;
	}
}

int kq_flush(rd_kafka_t *rk, int timeout_ms)
{
	return rd_kafka_flush(rk, timeout_ms) ? TOCSIN_ERR_TIMEOUT : 0;
}

int64_t kq_consumer_lag(rd_kafka_t *rk)
{
	rd_kafka_topic_partition_list_t *a = NULL;
	if (rd_kafka_assignment(rk, &a) || !a)
		return -1;
	int64_t lag = 0;
	if (a->cnt > 0 && !rd_kafka_position(rk, a)) {
		for (int i = 0; i < a->cnt; i++) {
			int64_t lo = -1, hi = -1;
			rd_kafka_topic_partition_t *p = &a->elems[i];
			if (rd_kafka_get_watermark_offsets(rk, p->topic, p->partition, &lo, &hi) ||
			    hi < 0)
				continue;
			/* nothing consumed since the assignment: where it starts (the committed
			 * offset) is not known here -- not the log start, which counted a partition
			 * its previous owner read to the end as wholly unread */
			if (p->offset >= 0 && hi > p->offset)
				lag += hi - p->offset;
		}
	}
	rd_kafka_topic_partition_list_destroy(a);
	return lag;
}

int kq_list_offsets(rd_kafka_t *rk, rd_kafka_topic_partition_list_t *l, int end, int64_t unknown,
                    int timeout_ms)
{
	for (int i = 0; i < l->cnt; i++)
		l->elems[i].offset = end ? RD_KAFKA_OFFSET_END : RD_KAFKA_OFFSET_BEGINNING;
	int failed = l->cnt && rd_kafka_offsets_for_times(rk, l, timeout_ms) != 0, n = 0;
	for (int i = 0; i < l->cnt; i++)
		if (failed || l->elems[i].err || l->elems[i].offset < 0) {
			l->elems[i].offset = unknown;
			n++;
		}
	return failed ? -1 : n;
}

int64_t kq_group_lag(rd_kafka_t *rk, rd_kafka_t *grk, const char *topic, int nparts)
{
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(nparts > 0 ? nparts : 1);
	for (int i = 0; i < nparts; i++)
		rd_kafka_topic_partition_list_add(l, topic, i);
	if (rd_kafka_committed(grk, l, 2000)) {
		rd_kafka_topic_partition_list_destroy(l);
		return -1;
	}
	/* the log ends and starts of every partition in one request each */
	rd_kafka_topic_partition_list_t *his = rd_kafka_topic_partition_list_copy(l),
	                                *los = rd_kafka_topic_partition_list_copy(l);
	int64_t lag = 0;
	if (kq_list_offsets(rk, his, 1, -1, 1500) < 0 || kq_list_offsets(rk, los, 0, -1, 1500) < 0)
		lag = -1;
	for (int i = 0; lag >= 0 && i < l->cnt; i++) {
		int64_t lo = los->elems[i].offset, hi = his->elems[i].offset, c = l->elems[i].offset;
		if (hi < 0 || lo < 0)
			continue;
		if (c >= 0 && c < lo)
			log_error("event=outbox_truncated topic=%s partition=%d committed=%lld log_start=%lld "
			          "msg=\"the broker dropped messages the dispatchers never read\"",
			          topic, i, (long long)c, (long long)lo);
		if (c < lo)
			c = lo;
		if (hi > c)
			lag += hi - c;
	}
	rd_kafka_topic_partition_list_destroy(his);
	rd_kafka_topic_partition_list_destroy(los);
	rd_kafka_topic_partition_list_destroy(l);
	return lag;
}

int64_t kq_lag_bound(int64_t avg, int np)
{
	if (avg < 64)
		avg = 64;
	int64_t per = (int64_t)(5 * 1024 * 1024 * 6 / 10) / avg;
	if (per > 60000)
		per = 60000;
	return per * (np > 0 ? np : 1) * 7 / 10;
}

/* ---- reading a topic to its end ---- */

/* Per-partition state of one read: records below end still to read; end < 0 = done. */
typedef struct kq_rpart {
	int64_t end;
} kq_rpart_t;

/* Start offsets by time (offsets_for_times); -1 where the cluster has none. */
static void read_since(rd_kafka_t *rk, const kq_read_t *r, int qt, int64_t *at)
{
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(r->nparts);
	for (int i = 0; i < r->nparts; i++) {
		rd_kafka_topic_partition_list_add(l, r->topic, i)->offset = r->since_ms;
		at[i] = -1;
	}
	if (rd_kafka_offsets_for_times(rk, l, qt) == RD_KAFKA_RESP_ERR_NO_ERROR)
		for (int i = 0; i < l->cnt; i++)
			if (!l->elems[i].err && l->elems[i].partition >= 0 &&
			    l->elems[i].partition < r->nparts)
				at[l->elems[i].partition] = l->elems[i].offset;
	rd_kafka_topic_partition_list_destroy(l);
}

/* Query each partition's watermarks and choose where its read starts; the list to assign. */
static rd_kafka_topic_partition_list_t *read_plan(rd_kafka_t *rk, kq_read_t *r, int qt, kq_rpart_t *pt)
{
	int64_t at[KQ_READ_MAXPART];
	if (!r->from && r->since_ms > 0)
		read_since(rk, r, qt, at);
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(r->nparts ? r->nparts
	                                                                                 : 1);
	for (int i = 0; i < r->nparts; i++) {
		int64_t lo = -1, hi = -1;
		pt[i].end = -1;
		if (r->from && r->from[i] == KQ_READ_SKIP) {
			/* not read */
		} else if (rd_kafka_query_watermark_offsets(rk, r->topic, i, &lo, &hi, qt)) {
			r->unknown++;
			lo = hi = -1;
		} else {
			int64_t s = lo;
			if (r->from) {
				s = r->from[i];
				if (s < lo)
					r->truncated++, s = lo;
				else if (s > hi)
					r->restarted++, s = lo;
			} else if (r->since_ms > 0) {
				s = at[i] >= 0 && at[i] < hi ? at[i] : hi;
				if (r->tail > 0 && hi - r->tail < s)
					s = hi - r->tail;
				if (s < lo)
					s = lo;
			}
			if (hi > s || r->keep) /* a caller that follows on needs the empty ones too */
				rd_kafka_topic_partition_list_add(l, r->topic, i)->offset = s;
			if (hi > s) {
				pt[i].end = hi;
				r->want += hi - s;
				r->nread++;
			}
		}
		if (r->lo)
			r->lo[i] = lo;
		if (r->hi)
			r->hi[i] = hi;
	}
	return l;
}

/* Partitions whose consumer position reached their end are done (the records at the
 * end of a compacted log may be gone). Returns how many are still to read. */
static int read_positions(rd_kafka_t *rk, const kq_read_t *r, kq_rpart_t *pt, int left)
{
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(left);
	for (int i = 0; i < r->nparts; i++)
		if (pt[i].end >= 0)
			rd_kafka_topic_partition_list_add(l, r->topic, i);
	if (!rd_kafka_position(rk, l))
		for (int i = 0; i < l->cnt; i++) {
			kq_rpart_t *x = &pt[l->elems[i].partition];
			if (!l->elems[i].err && l->elems[i].offset >= x->end)
				x->end = -1, left--;
		}
	rd_kafka_topic_partition_list_destroy(l);
	return left;
}

int kq_read(rd_kafka_t *rk, kq_read_t *r, kq_record_fn fn, void *ud, char *err, size_t errlen)
{
	r->want = r->got = 0;
	r->nread = r->unknown = r->truncated = r->restarted = 0;
	if (r->nparts < 0 || r->nparts > KQ_READ_MAXPART) {
		snprintf(err, errlen, "%s: cannot read %d partitions (at most %d)", r->topic,
		         r->nparts, KQ_READ_MAXPART);
		return TOCSIN_ERR_INVAL;
	}
	int timeout = r->timeout_ms > 0 ? r->timeout_ms : 60000;
	int qt = r->query_timeout_ms > 0 ? r->query_timeout_ms : 5000;
	int64_t t_end = clock_mono_ms() + timeout;
	kq_rpart_t pt[KQ_READ_MAXPART];
	rd_kafka_topic_partition_list_t *l = read_plan(rk, r, qt, pt);
	int left = r->nread, rc = 0;
	if (l->cnt) {
		rd_kafka_resp_err_t e = rd_kafka_assign(rk, l);
		if (e) {
			snprintf(err, errlen, "%s: cannot assign %d partitions: %s", r->topic,
			         l->cnt, rd_kafka_err2str(e));
			left = 0;
			rc = TOCSIN_ERR_KAFKA;
		}
	}
	rd_kafka_topic_partition_list_destroy(l);
	while (left > 0 && !rc) {
		int64_t now = clock_mono_ms();
		if (r->stop && *r->stop) {
			rc = TOCSIN_ERR_AGAIN;
			snprintf(err, errlen, "%s: stopped after %lld of %lld records", r->topic,
			         (long long)r->got, (long long)r->want);
			break;
		}
		if (now >= t_end) {
			rc = TOCSIN_ERR_TIMEOUT;
			snprintf(err, errlen, "%s: read %lld of %lld records within %d ms",
			         r->topic, (long long)r->got, (long long)r->want, timeout);
			break;
		}
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, t_end - now < 200
		                                                       ? (int)(t_end - now)
		                                                       : 200);
		if (!m) {
			left = read_positions(rk, r, pt, left);
			continue;
		}
		kq_rpart_t *x = !m->err && m->partition >= 0 && m->partition < r->nparts &&
		                        !strcmp(rd_kafka_topic_name(m->rkt), r->topic)
		                    ? &pt[m->partition]
		                    : NULL;
		int deliver = x && (r->keep || (x->end >= 0 && m->offset < x->end));
		if (deliver) {
			r->got++;
			rc = fn(ud, m);
			if (rc)
				snprintf(err, errlen, "%s: stopped at partition %d offset %lld",
				         r->topic, (int)m->partition, (long long)m->offset);
		}
		if (x && x->end >= 0 && m->offset + 1 >= x->end) {
			x->end = -1;
			if (--left < 0)
				tocsin_panic("%s: %d partitions left to read", r->topic, left);
		}
		rd_kafka_message_destroy(m);
	}
	if (!r->keep)
		rd_kafka_assign(rk, NULL);
	return rc;
}
