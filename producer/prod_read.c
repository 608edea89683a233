/* prod_read.c -- reading topics back: the outbox past a checkpoint (resume, --check-outbox), tocsin.status (--resend-failed), the campaign watch. */
#include "producer/prod_int.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/msg.h"
#include "core/sig.h"
#include "tracker/store.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------ reading topics back */

/* A consumer of the producer's own reads: client id KQ_G_LAUNCH_PREFIX "<what>", group
 * KQ_G_LAUNCH_PREFIX "<what>-<campaign>". NULL with err. */
rd_kafka_t *prod_launch_consumer(const cfg_t *cfg, const char *camp_id, const char *what,
                                 int timeout_ms, char *err, size_t errlen)
{
	char cid[64], gid[192];
	snprintf(cid, sizeof cid, KQ_G_LAUNCH_PREFIX "%s", what);
	snprintf(gid, sizeof gid, KQ_G_LAUNCH_PREFIX "%s-%s", what, camp_id);
	return kq_consumer_new(cfg, cid, gid, timeout_ms, err, errlen);
}

int prod_topic_parts(rd_kafka_t *rk, const char *topic)
{
	int n = kq_partitions(rk, topic, 5000);
	return n > MAXPART ? MAXPART : n;
}

/* The string arena of msg's non-allocating decoders: record length + 1 always suffices. */
typedef struct arena {
	char *p;
	size_t cap;
} arena_t;

static char *arena_fit(arena_t *a, size_t len)
{
	if (len + 1 > a->cap) {
		size_t n = len + 1 < 4096 ? 4096 : len + 1;
		char *q = realloc(a->p, n);
		if (!q)
			return NULL;
		a->p = q;
		a->cap = n;
	}
	return a->p;
}

/* The outbox records of one campaign: the set of their ids, and how many came twice. */
typedef struct outbox_ids {
	const char *camp_id;
	aset_t *ids;
	arena_t a;
	int64_t mine, dups;
} outbox_ids_t;

static int on_outbox(void *ud, const rd_kafka_message_t *m)
{
	outbox_ids_t *x = ud;
	char *buf = arena_fit(&x->a, m->len), e[128];
	msg_out_t o;
	if (!buf)
		return TOCSIN_ERR_NOMEM;
	if (msg_out_scan(m->payload, m->len, &o, buf, m->len + 1, e, sizeof e) ||
	    strcmp(o.campaign, x->camp_id) || strlen(o.id) != MSG_ID_LEN)
		return 0; /* another campaign's, or not an outbox record */
	x->mine++;
	int rc = aset_add(x->ids, hash64(o.id, MSG_ID_LEN, 0));
	if (rc < 0)
		return TOCSIN_ERR_NOMEM;
	x->dups += rc == 0;
	return 0;
}

/* Read the outbox past the checkpoint offsets and remember the ids of this
 * campaign that are already there (produced before a crash, not checkpointed). */
int prod_scan_already(prod_t *p, json_t *offs, char *err, size_t errlen)
{
	rd_kafka_t *c = prod_launch_consumer(p->cfg, p->camp->id, "scan", p->o.kafka_timeout_ms,
	                                     err, errlen);
	if (!c)
		return TOCSIN_ERR_KAFKA;
	outbox_ids_t x = {.camp_id = p->camp->id, .ids = p->already};
	int64_t got = 0, want = 0, t_end = clock_mono_ms() + 60000;
	int rc = 0;
	char e[256] = "";
	for (int ch = 0; ch < 2 && !rc; ch++) {
		json_t *a = json_object_get(offs, msg_channel_name((msg_channel_t)ch));
		if (!p->on[ch] || !json_is_array(a))
			continue;
		int64_t from[MAXPART], lo[MAXPART];
		for (int i = 0; i < p->nparts[ch]; i++) {
			from[i] = KQ_READ_SKIP;
			if (i < (int)json_array_size(a)) {
				from[i] = p->offs[ch][i] = json_integer_value(
				    json_array_get(a, (size_t)i));
				if (from[i] < 0)
					from[i] = 0;
			}
		}
		int64_t left = t_end - clock_mono_ms();
		kq_read_t r = {.topic = kq_outbox_topic_for((msg_channel_t)ch, p->camp->priority),
		               .nparts = p->nparts[ch],
		               .from = from,
		               .lo = lo,
		               .timeout_ms = left > 1 ? (int)left : 1,
		               .stop = &tocsin_stop};
		rc = kq_read(c, &r, on_outbox, &x, e, sizeof e);
		got += r.got;
		want += r.want;
		for (int i = 0; i < p->nparts[ch]; i++)
			if (from[i] != KQ_READ_SKIP && lo[i] > from[i])
				log_error("event=outbox_truncated topic=%s partition=%d checkpoint=%lld "
				          "log_start=%lld msg=\"cannot verify what the crashed run produced\"",
				          r.topic, i, (long long)from[i], (long long)lo[i]);
	}
	free(x.a.p);
	rd_kafka_consumer_close(c);
	rd_kafka_destroy(c);
	if (rc == TOCSIN_ERR_TIMEOUT || rc == TOCSIN_ERR_AGAIN) {
		snprintf(err, errlen,
		         "resume: could read only %lld of %lld outbox messages past the checkpoint",
		         (long long)got, (long long)want);
		return TOCSIN_ERR_TIMEOUT;
	}
	if (rc) {
		snprintf(err, errlen, "resume: %s", e);
		return rc;
	}
	log_info("event=resume_scan campaign=%s scanned=%lld already_queued=%zu", p->camp->id,
	         (long long)got, aset_count(p->already));
	return 0;
}

/* --resend-failed: the latest outcome of each message id, from tocsin.status
 * read in order (a key's records are in one partition). Open addressing on
 * the id's hash; v: 0 sent or in flight, 1 failed (retryable), 2 + k failed
 * permanently for reason k of the stats' perm[], RS_REQUEUED re-queued by an
 * earlier resend (its `queued` record, attempt >= 1, is the latest), RS_DONE
 * delivered (or suppressed, cancelled: never sent again). */
#define RS_DONE 255
#define RS_REQUEUED 254
typedef struct rs_ent {
	uint64_t h;
	uint8_t used, v;
} rs_ent_t;
typedef struct rs_map {
	rs_ent_t *e;
	size_t cap, n;
} rs_map_t;

static rs_ent_t *rs_get(rs_map_t *m, uint64_t h)
{
	if (m->n * 2 >= m->cap) {
		size_t nc = m->cap ? m->cap * 2 : 4096;
		rs_ent_t *ne = calloc(nc, sizeof *ne);
		if (!ne)
			return NULL;
		for (size_t i = 0; i < m->cap; i++)
			if (m->e[i].used)
				for (size_t j = m->e[i].h & (nc - 1);; j = (j + 1) & (nc - 1))
					if (!ne[j].used) {
						ne[j] = m->e[i];
						break;
					}
		free(m->e);
		m->e = ne;
		m->cap = nc;
	}
	for (size_t j = h & (m->cap - 1);; j = (j + 1) & (m->cap - 1)) {
		if (!m->e[j].used) {
			m->e[j].used = 1;
			m->e[j].h = h;
			m->e[j].v = 0;
			m->n++;
			return &m->e[j];
		}
		if (m->e[j].h == h)
			return &m->e[j];
	}
}

/* The reason index of a permanent failure code (added to the stats' list). */
static int perm_reason(prod_t *p, const char *text)
{
	prod_stats_t *st = &p->st;
	for (int i = 0; i < st->nperm; i++)
		if (!strcmp(st->perm[i].text, text))
			return i;
	if (st->nperm == PROD_MAX_PERM)
		return PROD_MAX_PERM - 1;
	snprintf(st->perm[st->nperm].text, sizeof st->perm[0].text, "%s", text);
	return st->nperm++;
}

/* The latest outcome of each message of one campaign, from tocsin.status. */
typedef struct failed_scan {
	prod_t *p;
	rs_map_t map;
	arena_t a;
} failed_scan_t;

static int on_status(void *ud, const rd_kafka_message_t *m)
{
	failed_scan_t *f = ud;
	char *buf = arena_fit(&f->a, m->len), e[128];
	msg_status_t s;
	if (!buf)
		return TOCSIN_ERR_NOMEM;
	if (msg_status_scan(m->payload, m->len, &s, buf, m->len + 1, e, sizeof e) ||
	    strcmp(s.campaign, f->p->camp->id) || strlen(s.id) != MSG_ID_LEN)
		return 0; /* another campaign's, or not a status record */
	rs_ent_t *x = rs_get(&f->map, hash64(s.id, MSG_ID_LEN, 0));
	if (!x)
		return TOCSIN_ERR_NOMEM;
	if (x->v == RS_DONE) {
		/* delivered (or suppressed, cancelled) stays so */
	} else if (s.state == MSG_ST_DELIVERED || s.state == MSG_ST_SUPPRESSED ||
	           s.state == MSG_ST_CANCELLED) {
		x->v = RS_DONE;
	} else if (s.state == MSG_ST_FAILED || s.state == MSG_ST_UNDELIVERED ||
	           s.state == MSG_ST_BOUNCED || s.state == MSG_ST_EXPIRED) {
		int perm;
		char tmp[64];
		const char *why = trk_code_reason(s.code && *s.code ? s.code : msg_state_name(s.state),
		                                  &perm, tmp, sizeof tmp);
		x->v = perm ? (uint8_t)(2 + perm_reason(f->p, why)) : 1;
	} else if (s.state == MSG_ST_QUEUED && s.attempt >= 1) {
		x->v = RS_REQUEUED; /* an earlier --resend-failed re-queued it */
	} else {
		x->v = 0;
	}
	return 0;
}

/* Read tocsin.status and collect the ids of this campaign whose latest
 * outcome is a failure (failed, undelivered, bounced, expired); one a resend
 * would repeat (tracker/store.h trk_code_reason: invalid or landline number,
 * opted out, configuration) only with include_permanent. A later record of
 * the message (a resend queued, accepted, retrying or delivered) clears it.
 * One whose latest record is an earlier resend's `queued` is counted as
 * already re-queued and left out, except when continuing an interrupted
 * resend: its outbox record may be the one the interruption lost, and the
 * outbox scan past the checkpoint (p->already) skips those that are there. */
int prod_load_failed(prod_t *p, char *err, size_t errlen)
{
	rd_kafka_t *c = prod_launch_consumer(p->cfg, p->camp->id, "resend", p->o.kafka_timeout_ms,
	                                     err, errlen);
	if (!c)
		return TOCSIN_ERR_KAFKA;
	failed_scan_t f = {.p = p};
	kq_read_t r = {.topic = KQ_T_STATUS,
	               .nparts = prod_topic_parts(c, KQ_T_STATUS),
	               .timeout_ms = 120000,
	               .stop = &tocsin_stop};
	if (r.nparts < 0)
		r.nparts = 0;
	char e[256] = "";
	int rc = kq_read(c, &r, on_status, &f, e, sizeof e), oom = rc == TOCSIN_ERR_NOMEM;
	for (size_t i = 0; i < f.map.cap && !oom; i++) {
		rs_ent_t *x = &f.map.e[i];
		if (!x->used || !x->v || x->v == RS_DONE)
			continue;
		if (x->v == RS_REQUEUED) {
			p->st.resend_requeued++;
			if (!p->resuming)
				continue;
		} else if (x->v >= 2) {
			p->st.perm[x->v - 2].n++;
			p->st.resend_permanent++;
			if (!p->o.include_permanent)
				continue;
		}
		p->st.resend_found++;
		if (aset_add(p->failed, x->h) < 0)
			oom = 1;
	}
	free(f.map.e);
	free(f.a.p);
	rd_kafka_consumer_close(c);
	rd_kafka_destroy(c);
	if (oom) {
		snprintf(err, errlen, "--resend-failed: out of memory reading tocsin.status");
		return TOCSIN_ERR_NOMEM;
	}
	if (rc == TOCSIN_ERR_TIMEOUT || rc == TOCSIN_ERR_AGAIN) {
		snprintf(err, errlen, "--resend-failed: read only %lld of %lld status events",
		         (long long)r.got, (long long)r.want);
		return TOCSIN_ERR_TIMEOUT;
	}
	if (rc) {
		snprintf(err, errlen, "--resend-failed: %s", e);
		return rc;
	}
	log_info("event=resend_failed campaign=%s status_events=%lld failed=%zu permanent=%lld "
	         "already_requeued=%lld include_permanent=%d resuming=%d",
	         p->camp->id, (long long)r.got, aset_count(p->failed),
	         (long long)p->st.resend_permanent, (long long)p->st.resend_requeued,
	         p->o.include_permanent, p->resuming);
	return 0;
}

/* A record of tocsin.campaigns: remember the latest state of this campaign. */
static int on_campaign(void *ud, const rd_kafka_message_t *m)
{
	prod_t *p = ud;
	if (m->key_len == strlen(p->camp->id) && !memcmp(m->key, p->camp->id, m->key_len)) {
		msg_campaign_t c;
		json_t *hold = NULL;
		char e[128];
		if (!msg_campaign_parse(m->payload, m->len, &c, &hold, e, sizeof e) && c.id &&
		    !strcmp(c.id, p->camp->id))
			p->camp_state = (int)c.state;
		json_decref(hold);
	}
	return 0;
}

/* Apply every record of tocsin.campaigns available now (wait at most wait_ms for
 * the first). */
void prod_watch_poll(prod_t *p, int wait_ms)
{
	if (!p->watch)
		return;
	for (;;) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(p->watch, wait_ms);
		wait_ms = 0;
		if (!m)
			return;
		if (!m->err)
			on_campaign(p, m);
		rd_kafka_message_destroy(m);
	}
}

/* Read tocsin.campaigns to its end (the campaign's state so far), then keep following it. */
int prod_watch_start(prod_t *p, char *err, size_t errlen)
{
	p->watch = prod_launch_consumer(p->cfg, p->camp->id, "watch", p->o.kafka_timeout_ms, err,
	                                errlen);
	if (!p->watch)
		return TOCSIN_ERR_KAFKA;
	p->camp_state = -1;
	kq_read_t r = {.topic = KQ_T_CAMPAIGNS,
	               .nparts = prod_topic_parts(p->watch, KQ_T_CAMPAIGNS),
	               .timeout_ms = 10000,
	               .keep = 1};
	if (r.nparts < 0)
		r.nparts = 0;
	char e[256];
	/* the backlog, up to the high watermarks at start; a slow read is not fatal (the
	 * watch goes on during the launch) */
	if (kq_read(p->watch, &r, on_campaign, p, e, sizeof e))
		log_warn("event=campaign_watch_slow campaign=%s err=\"%s\"", p->camp->id, e);
	return 0;
}

/* ------------------------------------------------------- outbox check */

int prod_check_outbox(const cfg_t *cfg, const camp_t *camp, FILE *out, char *err, size_t errlen)
{
	rd_kafka_t *c = prod_launch_consumer(cfg, camp->id, "check", 10000, err, errlen);
	if (!c)
		return TOCSIN_ERR_KAFKA;
	int on[2] = {camp->sms_on, camp->email_on}, rc = 0;
	for (int ch = 0; ch < 2 && !rc; ch++) {
		if (!on[ch])
			continue;
		int64_t lo[MAXPART];
		kq_read_t r = {.topic = kq_outbox_topic_for((msg_channel_t)ch, camp->priority),
		               .nparts = prod_topic_parts(c, kq_outbox_topic_for((msg_channel_t)ch,
		                                                                 camp->priority)),
		               .timeout_ms = 120000,
		               .stop = &tocsin_stop,
		               .lo = lo};
		if (r.nparts < 0)
			r.nparts = 0;
		char e[256] = "";
		outbox_ids_t x = {.camp_id = camp->id, .ids = aset_new(1 << 16, 0, e, sizeof e)};
		int rrc = x.ids ? kq_read(c, &r, on_outbox, &x, e, sizeof e) : TOCSIN_ERR_NOMEM;
		int64_t truncated = 0;
		for (int i = 0; i < r.nparts; i++)
			truncated += lo[i] > 0;
		fprintf(out,
		        "outbox %s: campaign %s: %lld messages, %zu distinct ids, %lld duplicates%s\n",
		        r.topic, camp->id, (long long)x.mine, x.ids ? aset_count(x.ids) : 0,
		        (long long)x.dups,
		        truncated ? " (the log start moved: older messages were dropped by retention)"
		                  : "");
		if (rrc == TOCSIN_ERR_TIMEOUT || rrc == TOCSIN_ERR_AGAIN) {
			snprintf(err, errlen, "read only %lld of %lld messages of %s",
			         (long long)r.got, (long long)r.want, r.topic);
			rc = TOCSIN_ERR_TIMEOUT;
		} else if (rrc) {
			snprintf(err, errlen, "%s", e);
			rc = rrc;
		} else if (x.dups) {
			snprintf(err, errlen, "%lld duplicate messages in %s", (long long)x.dups,
			         r.topic);
			rc = 1;
		}
		aset_free(x.ids);
		free(x.a.p);
	}
	rd_kafka_consumer_close(c);
	rd_kafka_destroy(c);
	return rc;
}
