/* dsp_state.c -- campaign states, opt-outs and vendor health, folded from their topics. */
#include "dispatcher/dsp_state.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/hash.h"
#include "core/kq.h"
#include "core/log.h"

#include <stdio.h>
#include <stdlib.h>
#define DSP_STATUS_LOOKBACK_MS (15 * 60 * 1000)
#include <string.h>
#include <unistd.h>

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
	int64_t done_rotated_ms;
	rd_kafka_topic_partition_list_t *targets; /* high watermarks to catch up to */
	uint64_t vh_seq; /* vendor-health records applied */
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
	int n = 1;
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
	const struct rd_kafka_metadata *md = NULL;
	if (rkt && !rd_kafka_metadata(rk, 0, rkt, &md, 10000) && md->topic_cnt == 1 &&
	    md->topics[0].partition_cnt > 0)
		n = md->topics[0].partition_cnt;
	if (md)
		rd_kafka_metadata_destroy(md);
	if (rkt)
		rd_kafka_topic_destroy(rkt);
	return n;
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
	s->rk = kq_new(conf, KQ_CONSUMER, 10000, err, errlen);
	if (!s->rk) {
		free(s);
		return NULL;
	}
	/* The compacted state topics from the start; tocsin.status from DSP_STATUS_LOOKBACK_MS
	 * ago: outcomes older than that have long had their outbox offsets committed. */
	static const char *const topics[] = {KQ_T_CAMPAIGNS, KQ_T_OPTOUTS, KQ_T_VENDOR_HEALTH,
	                                     KQ_T_STATUS};
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(16);
	s->targets = rd_kafka_topic_partition_list_new(16);
	rd_kafka_topic_partition_list_t *since = rd_kafka_topic_partition_list_new(16);
	for (size_t t = 0; t < 4; t++) {
		int parts = topic_parts(s->rk, topics[t]);
		for (int p = 0; p < parts; p++) {
			rd_kafka_topic_partition_list_add(s->targets, topics[t], p);
			if (t < 3)
				rd_kafka_topic_partition_list_add(l, topics[t], p)->offset =
				    RD_KAFKA_OFFSET_BEGINNING;
			else
				rd_kafka_topic_partition_list_add(since, topics[t], p)->offset =
				    clock_wall_ms() - DSP_STATUS_LOOKBACK_MS;
		}
	}
	if (since->cnt && rd_kafka_offsets_for_times(s->rk, since, 10000) == 0) {
		for (int i = 0; i < since->cnt; i++) /* -1: nothing that recent: start at the end */
			rd_kafka_topic_partition_list_add(l, KQ_T_STATUS, since->elems[i].partition)->offset =
			    since->elems[i].offset >= 0 ? since->elems[i].offset : RD_KAFKA_OFFSET_END;
	} else {
		for (int i = 0; i < since->cnt; i++)
			rd_kafka_topic_partition_list_add(l, KQ_T_STATUS, since->elems[i].partition)->offset =
			    RD_KAFKA_OFFSET_END;
		log_warn("event=status_lookback_failed msg=\"reading tocsin.status from its end: a "
		         "message finished just before this dispatcher started could be sent again\"");
	}
	rd_kafka_topic_partition_list_destroy(since);
	s->done_rotated_ms = clock_mono_ms();
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
	map_free(&s->optouts);
	map_free(&s->done_cur);
	map_free(&s->done_prev);
	free(s);
}

rd_kafka_queue_t *dsp_state_queue(dsp_state_t *s) { return s->q; }

static void apply(dsp_state_t *s, const rd_kafka_message_t *m)
{
	const char *topic = rd_kafka_topic_name(m->rkt);
	char err[256];
	json_t *hold = NULL;
	if (!m->payload) /* a tombstone */
		return;
	if (!strcmp(topic, KQ_T_STATUS)) {
		/* Only "has this message an outcome?": the key is the id; any state past
		 * queued/retrying counts. No JSON parse on this busy topic. */
		static const char pat[] = "\"state\":\"";
		const char *v = m->payload, *st = memmem(v, m->len, pat, sizeof pat - 1);
		if (m->key && st) {
			st += sizeof pat - 1;
			size_t left = m->len - (size_t)(st - v);
			static const char *const failures[] = {"failed\"", "undelivered\"", "bounced\"",
			                                       "expired\""};
			if ((left >= 7 && !memcmp(st, "queued\"", 7)) ||
			    (left >= 9 && !memcmp(st, "retrying\"", 9)))
				return;
			unsigned char v = DSP_DONE_SENT;
			for (size_t i = 0; i < 4; i++)
				if (left >= strlen(failures[i]) && !memcmp(st, failures[i], strlen(failures[i])))
					v = DSP_DONE_FAILED;
			map_put(&s->done_cur, id_hash(m->key, m->key_len), v);
		}
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
			named_t *e =
			    named_set(&s->vendors, &s->nvendors, &s->capvendors, h.vendor, (int)h.state);
			if (e) {
				e->by_operator = h.by && !strcmp(h.by, "operator");
				e->seq = ++s->vh_seq;
			}
			log_info("event=vendor_health vendor=%s state=%s by=%s reason=\"%s\"", h.vendor,
			         msg_vh_state_name(h.state), h.by ? h.by : "?", h.reason ? h.reason : "");
		}
	}
	if (!hold)
		log_warn("event=bad_state_record topic=%s offset=%lld reason=\"%s\"", topic,
		         (long long)m->offset, err);
	json_decref(hold);
}

int dsp_state_poll(dsp_state_t *s)
{
	int n = 0;
	rd_kafka_message_t *m;
	while ((m = rd_kafka_consumer_poll(s->rk, 0))) {
		if (!m->err) {
			apply(s, m);
			n++;
		}
		rd_kafka_message_destroy(m);
	}
	return n;
}

int dsp_state_catch_up(dsp_state_t *s, int timeout_ms)
{
	int64_t end = clock_mono_ms() + timeout_ms;
	/* the ends as they are now */
	for (int i = 0; i < s->targets->cnt; i++) {
		int64_t lo = 0, hi = -1;
		rd_kafka_topic_partition_t *t = &s->targets->elems[i];
		if (rd_kafka_query_watermark_offsets(s->rk, t->topic, t->partition, &lo, &hi, timeout_ms))
			hi = -1;
		t->offset = hi;
	}
	for (;;) {
		dsp_state_poll(s);
		rd_kafka_topic_partition_list_t *pos = rd_kafka_topic_partition_list_copy(s->targets);
		rd_kafka_position(s->rk, pos);
		int behind = 0;
		for (int i = 0; i < pos->cnt; i++) {
			int64_t want = s->targets->elems[i].offset;
			if (want > 0 && pos->elems[i].offset < want)
				behind = 1;
		}
		rd_kafka_topic_partition_list_destroy(pos);
		if (!behind)
			return 0;
		if (clock_mono_ms() >= end)
			return TOCSIN_ERR_TIMEOUT;
		rd_kafka_message_t *m = rd_kafka_consumer_poll(s->rk, 50);
		if (m) {
			if (!m->err)
				apply(s, m);
			rd_kafka_message_destroy(m);
		}
	}
}

int dsp_state_finished(dsp_state_t *s, const char *id)
{
	int64_t now = clock_mono_ms();
	if (now - s->done_rotated_ms >= DSP_STATUS_LOOKBACK_MS) {
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

msg_vh_state_t dsp_state_vendor(const dsp_state_t *s, const char *vendor)
{
	named_t *e = named_find(s->vendors, s->nvendors, vendor);
	return e ? (msg_vh_state_t)e->state : MSG_VH_HEALTHY;
}

int dsp_state_vendor_usable(const dsp_state_t *s, const char *vendor)
{
	msg_vh_state_t st = dsp_state_vendor(s, vendor);
	return st != MSG_VH_OPEN && st != MSG_VH_DRAINED;
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
