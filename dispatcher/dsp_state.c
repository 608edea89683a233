/* dsp_state.c -- campaign states, opt-outs and vendor health, folded from their topics. */
#include "dispatcher/dsp_state.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/hash.h"
#include "core/kq.h"
#include "core/log.h"
#include "core/num.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
/* At each catch-up tocsin.status is read from this long ago: a message is redelivered only
 * when its partition's offset was not committed, and commits happen every 100 ms (a failed
 * one is retried), so its outcome, if any, is seconds old. */
#define DSP_STATUS_LOOKBACK_MS (30 * 1000)
/* ... and at least this many of the last records of each of its partitions. */
#define DSP_STATUS_LOOKBACK_RECORDS 100000
/* Outcomes are remembered this long (two generations of it), then forgotten. */
#define DSP_DONE_KEEP_MS (10 * 60 * 1000)
#include <string.h>
#include <unistd.h>
/* A target's end the broker did not tell (a failed watermark query). */
#define DSP_END_UNKNOWN (-2)

typedef struct named {
	char *name;
	int state;
	int by_operator; /* vendor health: decided by an operator */
	uint64_t seq;    /* vendor health: dsp_state's record counter when it last changed */
} named_t;

/* A map from 64-bit hashes to one byte, open addressing; key 0 is reserved as empty. */
typedef struct u64map {
	uint64_t *keys;
	unsigned char *vals;
	size_t cap, used;
} u64map_t;

struct dsp_state {
	rd_kafka_t *rk;
	rd_kafka_queue_t *q;
	named_t *camps;
	size_t ncamps, capcamps;
	named_t *vendors;
	size_t nvendors, capvendors;
	/* opt-outs by hash of "<channel>:<address>": 1 = opted out, 0 = opted back in */
	u64map_t optouts;
	/* messages that already have an outcome on tocsin.status (key = hash of the id), in two
	 * generations: ids older than two rotations are forgotten (their offsets are long
	 * committed) so memory stays bounded */
	u64map_t done_cur, done_prev;
	/* ids whose outcome is looked for while following (dsp_state_watch) */
	u64map_t watch;
	int64_t done_rotated_ms;
	rd_kafka_topic_partition_list_t *targets; /* high watermarks to catch up to */
	int64_t *t_from, *t_seen; /* per target: where reading started, last offset read + 1 */
	uint64_t vh_seq;          /* vendor-health records applied */
	int follow;               /* tocsin.status is read continuously (dsp_state_follow) */
	uint64_t n_status;        /* tocsin.status records read */
	/* a catch-up under way (dsp_state_catch_up_start): whether the status lookback is still
	 * unknown, when the broker was last asked, and how long each question may take */
	int catching_up, catch_unknown, catch_query_ms;
	int64_t catch_retry_ms;
	dsp_share_t *share; /* tocsin.backlog's records go here (dsp_state_read_backlogs); NULL none */
	/* TOCSIN_DSP_STATE_READ_PER_S (fault injection: a slow reader): records applied a
	 * second at most, 0 = no cap; tokens and when they were last added */
	int64_t read_per_s, read_tokens, read_refill_ms;
};

static named_t *named_find(named_t *a, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(a[i].name, name) == 0)
			return &a[i];
	return NULL;
}

static named_t *named_set(named_t **a, size_t *n, size_t *cap, const char *name, int state)
{
	named_t *e = named_find(*a, *n, name);
	if (e) {
		e->state = state;
		return e;
	}
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 16;
		named_t *na = realloc(*a, nc * sizeof *na);
		if (!na)
			return NULL;
		*a = na;
		*cap = nc;
	}
	char *dup = strdup(name);
	if (!dup)
		return NULL;
	(*a)[*n] = (named_t){dup, state, 0, 0};
	return &(*a)[(*n)++];
}

static uint64_t optout_hash(msg_channel_t ch, const char *address)
{
	char key[512];
	int n = msg_optout_key(ch, address, key, sizeof key);
	uint64_t h = hash64(key, n > 0 ? (size_t)n : 0, 0x6f7074);
	return h ? h : 1;
}

static void map_put(u64map_t *m, uint64_t h, unsigned char v);

static int map_grow(u64map_t *m)
{
	size_t oc = m->cap, nc = oc ? oc * 2 : 4096;
	uint64_t *ok = m->keys;
	unsigned char *ov = m->vals;
	m->keys = calloc(nc, sizeof *m->keys);
	m->vals = calloc(nc, 1);
	if (!m->keys || !m->vals) {
		free(m->keys);
		free(m->vals);
		m->keys = ok;
		m->vals = ov;
		return TOCSIN_ERR_NOMEM;
	}
	m->cap = nc;
	m->used = 0;
	for (size_t i = 0; i < oc; i++)
		if (ok[i])
			map_put(m, ok[i], ov[i]);
	free(ok);
	free(ov);
	return 0;
}

static void map_put(u64map_t *m, uint64_t h, unsigned char v)
{
	if ((m->used + 1) * 4 >= m->cap * 3 && map_grow(m))
		return;
	size_t i = h & (m->cap - 1);
	while (m->keys[i] && m->keys[i] != h)
		i = (i + 1) & (m->cap - 1);
	if (!m->keys[i]) {
		m->keys[i] = h;
		m->used++;
	}
	m->vals[i] = v;
}

static int map_get(const u64map_t *m, uint64_t h)
{
	if (!m->cap)
		return 0;
	size_t i = h & (m->cap - 1);
	while (m->keys[i]) {
		if (m->keys[i] == h)
			return m->vals[i];
		i = (i + 1) & (m->cap - 1);
	}
	return 0;
}

/* Remove h (backward-shift deletion: the rest of its cluster is put back). */
static void map_del(u64map_t *m, uint64_t h)
{
	if (!m->cap)
		return;
	size_t i = h & (m->cap - 1);
	while (m->keys[i] && m->keys[i] != h)
		i = (i + 1) & (m->cap - 1);
	if (!m->keys[i])
		return;
	m->keys[i] = 0;
	m->used--;
	for (size_t j = (i + 1) & (m->cap - 1); m->keys[j]; j = (j + 1) & (m->cap - 1)) {
		uint64_t k = m->keys[j];
		unsigned char v = m->vals[j];
		m->keys[j] = 0;
		m->used--;
		map_put(m, k, v);
	}
}

static void map_free(u64map_t *m)
{
	free(m->keys);
	free(m->vals);
	memset(m, 0, sizeof *m);
}

static uint64_t id_hash(const void *id, size_t n)
{
	uint64_t h = hash64(id, n, 0x646f6e65);
	return h ? h : 1;
}

/* Partitions of topic on the cluster (1 when unknown). */
static int topic_parts(rd_kafka_t *rk, const char *topic)
{
	int n = kq_partitions(rk, topic, 10000);
	return n > 0 ? n : 1;
}

dsp_state_t *dsp_state_new(const cfg_t *c, const char *client_id, char *err, size_t errlen)
{
	dsp_state_t *s = calloc(1, sizeof *s);
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	char group[96];
	snprintf(group, sizeof group, "tocsin-state-reader-%d", (int)getpid());
	rd_kafka_conf_t *conf = kq_conf_new(c, KQ_CONSUMER, client_id, group, err, errlen);
	if (!conf) {
		free(s);
		return NULL;
	}
	rd_kafka_conf_set(conf, "fetch.wait.max.ms", "50", NULL, 0);
	/* a small prefetch: the reader keeps up with tocsin.status, it does not need the
	 * outbox consumer's deep queue (the email channel's 64 MiB) */
	rd_kafka_conf_set(conf, "queued.max.messages.kbytes", "4096", NULL, 0);
	s->rk = kq_new(conf, KQ_CONSUMER, 10000, err, errlen);
	if (!s->rk) {
		free(s);
		return NULL;
	}
	/* The compacted state topics from the start. tocsin.status is read only in
	 * dsp_state_catch_up(), from DSP_STATUS_LOOKBACK_MS back to its end, and paused in
	 * between: this dispatcher learns its own outcomes itself, and another's matter only
	 * for partitions it is handed (the busiest topic is not read all the time). */
	static const char *const topics[] = {KQ_T_CAMPAIGNS, KQ_T_OPTOUTS, KQ_T_VENDOR_HEALTH,
	                                     KQ_T_STATUS};
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(16);
	s->targets = rd_kafka_topic_partition_list_new(16);
	for (size_t t = 0; t < 4; t++) {
		int parts = topic_parts(s->rk, topics[t]);
		for (int p = 0; p < parts; p++) {
			rd_kafka_topic_partition_list_add(s->targets, topics[t], p);
			if (t < 3)
				rd_kafka_topic_partition_list_add(l, topics[t], p)->offset =
				    RD_KAFKA_OFFSET_BEGINNING;
		}
	}
	s->done_rotated_ms = clock_mono_ms();
	const char *slow = getenv("TOCSIN_DSP_STATE_READ_PER_S");
	if (slow && num_i64(slow, 1, 100000000, &s->read_per_s))
		log_warn("event=bad_env name=TOCSIN_DSP_STATE_READ_PER_S msg=\"not an integer "
		         "1..100000000: ignored\"");
	else if (slow)
		log_warn("event=state_read_capped per_s=%lld msg=\"TOCSIN_DSP_STATE_READ_PER_S: the "
		         "state topics are read slowly on purpose (fault injection)\"",
		         (long long)s->read_per_s);
	s->t_from = calloc((size_t)s->targets->cnt + 1, sizeof *s->t_from);
	s->t_seen = calloc((size_t)s->targets->cnt + 1, sizeof *s->t_seen);
	if (!s->t_from || !s->t_seen) {
		snprintf(err, errlen, "out of memory");
		rd_kafka_topic_partition_list_destroy(l);
		dsp_state_free(s);
		return NULL;
	}
	rd_kafka_resp_err_t e = rd_kafka_assign(s->rk, l);
	rd_kafka_topic_partition_list_destroy(l);
	if (e) {
		snprintf(err, errlen, "cannot read the state topics: %s", rd_kafka_err2str(e));
		dsp_state_free(s);
		return NULL;
	}
	s->q = rd_kafka_queue_get_consumer(s->rk);
	return s;
}

void dsp_state_free(dsp_state_t *s)
{
	if (!s)
		return;
	if (s->q)
		rd_kafka_queue_destroy(s->q);
	if (s->rk) {
		rd_kafka_consumer_close(s->rk);
		rd_kafka_destroy(s->rk);
	}
	if (s->targets)
		rd_kafka_topic_partition_list_destroy(s->targets);
	for (size_t i = 0; i < s->ncamps; i++)
		free(s->camps[i].name);
	for (size_t i = 0; i < s->nvendors; i++)
		free(s->vendors[i].name);
	free(s->camps);
	free(s->vendors);
	free(s->t_from);
	free(s->t_seen);
	map_free(&s->optouts);
	map_free(&s->done_cur);
	map_free(&s->done_prev);
	map_free(&s->watch);
	free(s);
}

rd_kafka_queue_t *dsp_state_queue(dsp_state_t *s) { return s->q; }

int dsp_state_read_backlogs(dsp_state_t *s, dsp_share_t *share)
{
	if (kq_partitions(s->rk, KQ_T_BACKLOG, 10000) <= 0)
		return TOCSIN_ERR_NOTFOUND;
	rd_kafka_topic_partition_list_t *l = NULL;
	if (rd_kafka_assignment(s->rk, &l) || !l)
		return TOCSIN_ERR_KAFKA;
	rd_kafka_position(s->rk, l); /* the state topics go on where they are */
	for (int i = 0; i < l->cnt; i++)
		if (l->elems[i].offset < 0)
			l->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING;
	rd_kafka_topic_partition_list_add(l, KQ_T_BACKLOG, 0)->offset = RD_KAFKA_OFFSET_END;
	rd_kafka_resp_err_t e = rd_kafka_assign(s->rk, l);
	rd_kafka_topic_partition_list_destroy(l);
	if (e)
		return TOCSIN_ERR_KAFKA;
	s->share = share;
	return 0;
}

static void apply(dsp_state_t *s, const rd_kafka_message_t *m)
{
	const char *topic = rd_kafka_topic_name(m->rkt);
	for (int i = 0; s->t_seen && i < s->targets->cnt; i++)
		if (s->targets->elems[i].partition == m->partition &&
		    !strcmp(s->targets->elems[i].topic, topic)) {
			if (m->offset + 1 > s->t_seen[i])
				s->t_seen[i] = m->offset + 1;
			break;
		}
	char err[256];
	json_t *hold = NULL;
	if (s->share && !strcmp(topic, KQ_T_BACKLOG)) {
		if (dsp_share_record(s->share, m->key, m->key_len, m->payload, m->len,
		                     clock_mono_ms()) == TOCSIN_ERR_INVAL)
			log_warn("event=bad_state_record topic=%s offset=%lld reason=\"not a backlog "
			         "record\"",
			         topic, (long long)m->offset);
		return;
	}
	if (!m->payload) /* a tombstone */
		return;
	if (!strcmp(topic, KQ_T_STATUS)) {
		/* Only "has this message an outcome?": the key is the id; any state past
		 * queued/retrying counts. Scanned without allocating on this busy topic
		 * (a record too long for the stack buffer is the rare heap case). */
		s->n_status++;
		/* between catch-ups only the watched ids (ambiguous sends) matter: skip the rest
		 * unread (a dispatcher reads back every outcome it publishes) */
		if (!s->catching_up && (!m->key || !map_get(&s->watch, id_hash(m->key, m->key_len))))
			return;
		char sb[4096];
		char *buf = m->len < sizeof sb ? sb : malloc(m->len + 1);
		msg_status_t st;
		if (m->key && buf &&
		    !msg_status_scan(m->payload, m->len, &st, buf, m->len + 1, err, sizeof err) &&
		    st.state != MSG_ST_QUEUED && st.state != MSG_ST_RETRYING) {
			unsigned char v = st.state == MSG_ST_FAILED ||
			                          st.state == MSG_ST_UNDELIVERED ||
			                          st.state == MSG_ST_BOUNCED ||
			                          st.state == MSG_ST_EXPIRED
			                      ? DSP_DONE_FAILED
			                      : DSP_DONE_SENT;
			map_put(&s->done_cur, id_hash(m->key, m->key_len), v);
		}
		if (buf != sb)
			free(buf);
		return;
	}
	if (!strcmp(topic, KQ_T_CAMPAIGNS)) {
		msg_campaign_t c;
		if (msg_campaign_parse(m->payload, m->len, &c, &hold, err, sizeof err) == 0) {
			msg_camp_state_t old = dsp_state_campaign(s, c.id);
			named_set(&s->camps, &s->ncamps, &s->capcamps, c.id, (int)c.state);
			if (old != c.state)
				log_info("event=campaign_state campaign=%s state=%s", c.id,
				         msg_camp_state_name(c.state));
		}
	} else if (!strcmp(topic, KQ_T_OPTOUTS)) {
		msg_optout_t o;
		if (msg_optout_parse(m->payload, m->len, &o, &hold, err, sizeof err) == 0)
			map_put(&s->optouts, optout_hash(o.channel, o.address), o.optin ? 0 : 1);
	} else if (!strcmp(topic, KQ_T_VENDOR_HEALTH)) {
		msg_vhealth_t h;
		if (msg_vhealth_parse(m->payload, m->len, &h, &hold, err, sizeof err) == 0) {
			named_t *e = named_set(&s->vendors, &s->nvendors, &s->capvendors, h.vendor,
			                       (int)h.state);
			if (e) {
				e->by_operator = h.by && !strcmp(h.by, "operator");
				e->seq = ++s->vh_seq;
			}
			log_info("event=vendor_health vendor=%s state=%s by=%s reason=\"%s\"",
			         h.vendor, msg_vh_state_name(h.state), h.by ? h.by : "?",
			         h.reason ? h.reason : "");
		}
	}
	if (!hold)
		log_warn("event=bad_state_record topic=%s offset=%lld reason=\"%s\"", topic,
		         (long long)m->offset, err);
	json_decref(hold);
}

/* The next record, waiting up to timeout_ms; NULL when none, or when the injected read
 * cap (TOCSIN_DSP_STATE_READ_PER_S) is used up for now. */
static rd_kafka_message_t *next_record(dsp_state_t *s, int timeout_ms)
{
	if (s->read_per_s > 0) { /* tokens in thousandths of a record */
		int64_t now = clock_mono_ms();
		if (!s->read_refill_ms)
			s->read_refill_ms = now;
		s->read_tokens += (now - s->read_refill_ms) * s->read_per_s;
		s->read_refill_ms = now;
		if (s->read_tokens > s->read_per_s * 1000)
			s->read_tokens = s->read_per_s * 1000;
		if (s->read_tokens < 1000) {
			if (timeout_ms > 0)
				usleep((useconds_t)(timeout_ms < 50 ? timeout_ms : 50) * 1000);
			return NULL;
		}
		s->read_tokens -= 1000;
	}
	return rd_kafka_consumer_poll(s->rk, timeout_ms);
}

int dsp_state_poll(dsp_state_t *s)
{
	int n = 0;
	rd_kafka_message_t *m;
	while ((m = next_record(s, 0))) {
		if (!m->err) {
			apply(s, m);
			n++;
		}
		rd_kafka_message_destroy(m);
	}
	return n;
}

/* (Re)assign: the state topics where they are, tocsin.status from the lookback. */
static int assign_with_status(dsp_state_t *s, int timeout_ms)
{
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(s->targets->cnt);
	rd_kafka_topic_partition_list_t *since = rd_kafka_topic_partition_list_new(8);
	for (int i = 0; i < s->targets->cnt; i++) {
		rd_kafka_topic_partition_t *t = &s->targets->elems[i];
		if (!strcmp(t->topic, KQ_T_STATUS))
			rd_kafka_topic_partition_list_add(since, t->topic, t->partition)->offset =
			    clock_wall_ms() - DSP_STATUS_LOOKBACK_MS;
		else
			rd_kafka_topic_partition_list_add(l, t->topic, t->partition);
	}
	if (s->share)
		rd_kafka_topic_partition_list_add(l, KQ_T_BACKLOG, 0);
	rd_kafka_position(s->rk, l);
	for (int i = 0; i < l->cnt; i++)
		if (l->elems[i].offset < 0)
			l->elems[i].offset = strcmp(l->elems[i].topic, KQ_T_BACKLOG)
			                         ? RD_KAFKA_OFFSET_BEGINNING
			                         : RD_KAFKA_OFFSET_END;
	/* From 30 s back, and at least the last DSP_STATUS_LOOKBACK_RECORDS of each partition
	 * (a cluster that cannot look offsets up by time, like the embedded one, answers -1). */
	rd_kafka_topic_partition_list_t *his = rd_kafka_topic_partition_list_copy(since),
	                                *los = rd_kafka_topic_partition_list_copy(since);
	kq_list_offsets(s->rk, his, 1, DSP_END_UNKNOWN, timeout_ms);
	kq_list_offsets(s->rk, los, 0, DSP_END_UNKNOWN, timeout_ms);
	int ok = since->cnt && rd_kafka_offsets_for_times(s->rk, since, timeout_ms) == 0;
	int unknown = 0;
	for (int i = 0; i < since->cnt; i++) {
		int32_t p = since->elems[i].partition;
		int64_t lo = los->elems[i].offset, hi = his->elems[i].offset, from;
		if (lo == DSP_END_UNKNOWN || hi == DSP_END_UNKNOWN) {
			/* where to start is unknown: from the end for now, and the caller asks again */
			from = RD_KAFKA_OFFSET_END;
			unknown++;
		} else {
			from = hi - DSP_STATUS_LOOKBACK_RECORDS;
			if (ok && since->elems[i].offset >= 0 && since->elems[i].offset < from)
				from = since->elems[i].offset;
			if (from < lo)
				from = lo;
		}
		rd_kafka_topic_partition_list_add(l, KQ_T_STATUS, p)->offset = from;
		for (int k = 0; k < s->targets->cnt; k++)
			if (s->targets->elems[k].partition == p &&
			    !strcmp(s->targets->elems[k].topic, KQ_T_STATUS)) {
				s->t_from[k] = from == RD_KAFKA_OFFSET_END ? INT64_MAX : from;
				s->targets->elems[k].offset = from == RD_KAFKA_OFFSET_END
				                                  ? DSP_END_UNKNOWN
				                                  : hi;
			}
	}
	if (unknown)
		log_warn("event=status_lookback_failed partitions=%d msg=\"the broker did not say where "
		         "tocsin.status ends\"",
		         unknown);
	rd_kafka_resp_err_t e = rd_kafka_assign(s->rk, l);
	rd_kafka_topic_partition_list_destroy(since);
	rd_kafka_topic_partition_list_destroy(his);
	rd_kafka_topic_partition_list_destroy(los);
	rd_kafka_topic_partition_list_destroy(l);
	return e ? TOCSIN_ERR_KAFKA : unknown ? TOCSIN_ERR_AGAIN : 0;
}

/* Pause (1) or resume (0) the tocsin.status partitions; a pause outlives a re-assign. */
static void pause_status(dsp_state_t *s, int pause)
{
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(8);
	for (int i = 0; i < s->targets->cnt; i++)
		if (!strcmp(s->targets->elems[i].topic, KQ_T_STATUS))
			rd_kafka_topic_partition_list_add(l, KQ_T_STATUS,
			                                  s->targets->elems[i].partition);
	if (pause)
		rd_kafka_pause_partitions(s->rk, l);
	else
		rd_kafka_resume_partitions(s->rk, l);
	rd_kafka_topic_partition_list_destroy(l);
}

/* Where each target ends now: its high watermark, DSP_END_UNKNOWN when the broker did not say. */
static void take_ends(dsp_state_t *s, int timeout_ms)
{
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_copy(s->targets);
	kq_list_offsets(s->rk, l, 1, DSP_END_UNKNOWN, timeout_ms);
	for (int i = 0; i < s->targets->cnt && i < l->cnt; i++)
		s->targets->elems[i].offset = l->elems[i].offset;
	rd_kafka_topic_partition_list_destroy(l);
}

void dsp_state_catch_up_start(dsp_state_t *s, int query_timeout_ms)
{
	if (s->catching_up && !s->catch_unknown) {
		/* one already under way read from an older lookback and took every outcome since:
		 * it goes on to the new ends instead of starting over (partitions handed over in
		 * turn, as when dispatchers are killed one after another) */
		take_ends(s, query_timeout_ms);
		s->catch_retry_ms = clock_mono_ms();
		return;
	}
	s->catch_unknown = assign_with_status(s, query_timeout_ms) != 0;
	if (s->catch_unknown)
		log_warn("event=state_assign_failed msg=\"cannot (re)read tocsin.status yet: "
		         "asking again every second\"");
	pause_status(s, 0);
	take_ends(s, query_timeout_ms);
	s->catching_up = 1;
	s->catch_retry_ms = clock_mono_ms();
	s->catch_query_ms = query_timeout_ms;
}

/* Is target i read to the end taken at the start? */
static int target_behind(const dsp_state_t *s, int i)
{
	int64_t want = s->targets->elems[i].offset;
	if (want == DSP_END_UNKNOWN)
		return 1;
	/* caught up: read to the end, or started at (or past) it */
	return want > 0 && s->t_seen[i] < want && s->t_from[i] < want;
}

int dsp_state_catch_up_behind(dsp_state_t *s, int64_t *read, int64_t *want)
{
	*read = *want = 0;
	if (!s->catching_up)
		return 0;
	dsp_state_poll(s);
	int behind = 0, unknown = s->catch_unknown;
	for (int i = 0; i < s->targets->cnt; i++) {
		rd_kafka_topic_partition_t *t = &s->targets->elems[i];
		if (t->offset == DSP_END_UNKNOWN)
			unknown = 1;
		if (target_behind(s, i))
			behind = 1;
		if (!strcmp(t->topic, KQ_T_STATUS) && t->offset >= 0 && s->t_from[i] < t->offset) {
			*want += t->offset - s->t_from[i];
			*read += (s->t_seen[i] < t->offset ? s->t_seen[i] : t->offset) - s->t_from[i];
		}
	}
	if (unknown && clock_mono_ms() - s->catch_retry_ms >= 1000) {
		/* the broker did not say where to start or end: ask again, never go ahead blind */
		s->catch_retry_ms = clock_mono_ms();
		if (s->catch_unknown)
			s->catch_unknown = assign_with_status(s, s->catch_query_ms) != 0;
		if (!s->catch_unknown)
			take_ends(s, s->catch_query_ms);
		return 1;
	}
	if (behind || unknown)
		return 1;
	s->catching_up = 0;
	if (!s->follow)
		pause_status(s, 1);
	return 0;
}

void dsp_state_follow(dsp_state_t *s, int on, int timeout_ms)
{
	if (!on == !s->follow)
		return;
	s->follow = on;
	if (on && timeout_ms > 0 && assign_with_status(s, timeout_ms))
		log_warn("event=state_assign_failed msg=\"cannot (re)read tocsin.status\"");
	if (timeout_ms > 0 || !on)
		pause_status(s, !on);
	log_info("event=status_follow on=%d", on);
}

int dsp_state_following(const dsp_state_t *s) { return s->follow; }

void dsp_state_watch(dsp_state_t *s, const char *id, int on)
{
	uint64_t h = id_hash(id, strlen(id));
	if (on)
		map_put(&s->watch, h, 1);
	else
		map_del(&s->watch, h);
}

int dsp_state_follow_behind(const dsp_state_t *s)
{
	for (int i = 0; s->follow && i < s->targets->cnt; i++) {
		int64_t want = s->targets->elems[i].offset;
		if (!strcmp(s->targets->elems[i].topic, KQ_T_STATUS) && want > 0 &&
		    s->t_seen[i] < want && s->t_from[i] < want)
			return 1;
	}
	return 0;
}

uint64_t dsp_state_status_read(const dsp_state_t *s) { return s->n_status; }

int dsp_state_finished(dsp_state_t *s, const char *id)
{
	int64_t now = clock_mono_ms();
	if (now - s->done_rotated_ms >= DSP_DONE_KEEP_MS) {
		map_free(&s->done_prev);
		s->done_prev = s->done_cur;
		memset(&s->done_cur, 0, sizeof s->done_cur);
		s->done_rotated_ms = now;
	}
	uint64_t h = id_hash(id, strlen(id));
	int v = map_get(&s->done_cur, h);
	return v ? v : map_get(&s->done_prev, h);
}

msg_camp_state_t dsp_state_campaign(const dsp_state_t *s, const char *campaign)
{
	named_t *e = named_find(s->camps, s->ncamps, campaign);
	return e ? (msg_camp_state_t)e->state : MSG_CAMP_RUNNING;
}

int dsp_state_opted_out(const dsp_state_t *s, msg_channel_t ch, const char *address)
{
	return map_get(&s->optouts, optout_hash(ch, address)) == 1;
}

void dsp_state_add_optout(dsp_state_t *s, msg_channel_t ch, const char *address)
{
	map_put(&s->optouts, optout_hash(ch, address), 1);
}

uint64_t dsp_state_vendor_rec(const dsp_state_t *s, const char *vendor, msg_vh_state_t *st,
                              int *by_operator)
{
	named_t *e = named_find(s->vendors, s->nvendors, vendor);
	if (!e)
		return 0;
	*st = (msg_vh_state_t)e->state;
	*by_operator = e->by_operator;
	return e->seq;
}
