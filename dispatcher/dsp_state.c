/* dsp_state.c -- campaign states, opt-outs and vendor health, folded from their topics. */
#include "dispatcher/dsp_state.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/hash.h"
#include "core/kq.h"
#include "core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct named {
	char *name;
	int state;
	int by_operator; /* vendor health: decided by an operator */
	uint64_t seq;    /* vendor health: dsp_state's record counter when it last changed */
} named_t;

struct dsp_state {
	rd_kafka_t *rk;
	rd_kafka_queue_t *q;
	named_t *camps;
	size_t ncamps, capcamps;
	named_t *vendors;
	size_t nvendors, capvendors;
	/* opt-outs: open addressing on a 64-bit hash of "<channel>:<address>";
	 * value 1 = opted out, 0 = opted back in. Key 0 is reserved as empty. */
	uint64_t *keys;
	unsigned char *vals;
	size_t cap, used;
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

static void set_put(dsp_state_t *s, uint64_t h, unsigned char v);

static int set_grow(dsp_state_t *s)
{
	size_t oc = s->cap, nc = oc ? oc * 2 : 4096;
	uint64_t *ok = s->keys;
	unsigned char *ov = s->vals;
	s->keys = calloc(nc, sizeof *s->keys);
	s->vals = calloc(nc, 1);
	if (!s->keys || !s->vals) {
		free(s->keys);
		free(s->vals);
		s->keys = ok;
		s->vals = ov;
		return TOCSIN_ERR_NOMEM;
	}
	s->cap = nc;
	s->used = 0;
	for (size_t i = 0; i < oc; i++)
		if (ok[i])
			set_put(s, ok[i], ov[i]);
	free(ok);
	free(ov);
	return 0;
}

static void set_put(dsp_state_t *s, uint64_t h, unsigned char v)
{
	if ((s->used + 1) * 4 >= s->cap * 3 && set_grow(s))
		return;
	size_t i = h & (s->cap - 1);
	while (s->keys[i] && s->keys[i] != h)
		i = (i + 1) & (s->cap - 1);
	if (!s->keys[i]) {
		s->keys[i] = h;
		s->used++;
	}
	s->vals[i] = v;
}

static int set_get(const dsp_state_t *s, uint64_t h)
{
	if (!s->cap)
		return 0;
	size_t i = h & (s->cap - 1);
	while (s->keys[i]) {
		if (s->keys[i] == h)
			return s->vals[i];
		i = (i + 1) & (s->cap - 1);
	}
	return 0;
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
	static const char *const topics[] = {KQ_T_CAMPAIGNS, KQ_T_OPTOUTS, KQ_T_VENDOR_HEALTH};
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(8);
	s->targets = rd_kafka_topic_partition_list_new(8);
	for (size_t t = 0; t < 3; t++) {
		int parts = 1;
		for (size_t k = 0; k < kq_ntopics; k++)
			if (!strcmp(kq_topics[k].name, topics[t]))
				parts = kq_topics[k].partitions;
		for (int p = 0; p < parts; p++) {
			rd_kafka_topic_partition_list_add(l, topics[t], p)->offset = RD_KAFKA_OFFSET_BEGINNING;
			int64_t lo = 0, hi = 0;
			if (!rd_kafka_query_watermark_offsets(s->rk, topics[t], p, &lo, &hi, 5000))
				rd_kafka_topic_partition_list_add(s->targets, topics[t], p)->offset = hi;
		}
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
	free(s->keys);
	free(s->vals);
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
			set_put(s, optout_hash(o.channel, o.address), o.optin ? 0 : 1);
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

msg_camp_state_t dsp_state_campaign(const dsp_state_t *s, const char *campaign)
{
	named_t *e = named_find(s->camps, s->ncamps, campaign);
	return e ? (msg_camp_state_t)e->state : MSG_CAMP_RUNNING;
}

int dsp_state_opted_out(const dsp_state_t *s, msg_channel_t ch, const char *address)
{
	return set_get(s, optout_hash(ch, address)) == 1;
}

void dsp_state_add_optout(dsp_state_t *s, msg_channel_t ch, const char *address)
{
	set_put(s, optout_hash(ch, address), 1);
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
