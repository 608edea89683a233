/* prod.c -- campaign expansion: audience rows -> normalized, deduped, rendered outbox messages. */
#include "producer/prod.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/hash.h"
#include "core/kq.h"
#include "core/log.h"
#include "core/msg.h"
#include "core/runfile.h"
#include "core/sig.h"
#include "producer/addr.h"
#include "producer/aset.h"
#include "producer/aud.h"
#include "producer/optc.h"
#include "producer/penc.h"
#include "core/tz.h"
#include "core/tzdb.h"
#include "hold/hold.h"
#include "tracker/store.h"
#include "templates/email.h"
#include "templates/tmpl.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAXPART 64
#define EPOCHS 8
/* The broker unreachable this long (no acknowledgement, every connection down): the launch
 * gives up with one line instead of waiting (its messages time out a little later). */
#define PROD_BROKER_LOST_MS 20000
/* Signs of a lost broker, the first of which starts that clock: messages waiting this long
 * with no delivery report, the lag gate's committed-offset query failing, every broker
 * connection down (librdkafka's ALL_BROKERS_DOWN). */
#define PROD_ACK_STALL_MS 3000
#define SMS_BODY_CAP (16 * 1024)
#define EMAIL_BUF_CAP (2 * 1024 * 1024)

struct prod {
	const cfg_t *cfg;
	const camp_t *camp;
	prod_opts_t o;
	prod_stats_t st;
	aud_t *aud;
	int col[2];           /* address column per channel, -1 = none */
	int on[2];
	tmpl_t *t_sms;
	penc_t *penc;         /* the SMS record writer */
	email_tmpl_t *t_email;
	email_unsub_t *unsub;
	size_t nfields;       /* audience columns */
	const char **vals;    /* nfields */
	size_t *lens;
	char *body, *ebuf;
	buf_t rec;            /* encoded record, reused */
	buf_t srec;           /* --resend-failed: the `queued` status record, reused */
	int resuming;         /* continuing an interrupted launch (checkpoint not done) */
	aset_t *seen;         /* dedupe */
	aset_t *sup;          /* opted out */
	aset_t *already;      /* ids found in the outbox past the checkpoint */
	aset_t *failed;       /* --resend-failed: ids whose final state is a failure */
	rd_kafka_t *rk;
	rd_kafka_t *lag_rk[2];
	rd_kafka_t *watch;        /* tocsin.campaigns: operator pause / cancel during the launch */
	int camp_state;           /* latest state of this campaign seen there, -1 none */
	int64_t last_watch;
	int nparts[2];
	int64_t offs[2][MAXPART]; /* checkpoint: next offset after our delivered messages */
	/* Checkpoint epochs: messages are tagged with their epoch; an epoch's end
	 * position becomes the checkpoint once every message of it and of all
	 * earlier epochs is delivered (no flush barrier on the hot path). */
	struct epoch {
		int64_t produced, delivered;
		int64_t rows, queued, rj_bytes; /* position at its end */
		int closed;
		int64_t offs[2][MAXPART];
	} ep[EPOCHS];
	int64_t ep_cur, ep_done; /* current epoch; oldest not yet checkpointed */
	int64_t ck_rows, ck_queued, ck_rj;
	char errstr[256];     /* first delivery error */
	/* the broker watch: down_mono_ms is written by the launch thread and the watchdog
	 * thread (__atomic); the rest by whichever set it first */
	int64_t down_mono_ms; /* since when the broker is unreachable (0: it answers) */
	int64_t down_wall_ms;
	int64_t ack_ref_ms;   /* launch thread: mono ms of the last delivery report, or of an empty queue */
	pthread_t watchdog;
	int watchdog_on, watchdog_stop;
	FILE *rejects;
	char rejects_path[4096], report_path[4096], ckpt_path[4096], dir[3800];
	int64_t ckpt_rows;    /* rows of the checkpoint to replay */
	int64_t t0_ms;
	int64_t now_ms;
	int64_t created_ms;
	int64_t bytes_produced;
	int64_t last_lag_check;
	int64_t lag_cached;
	int64_t lag_at_check;      /* measured lag at the last check */
	int64_t produced_at_check; /* p->st.produced then */
	int printed;          /* previews printed */
	int64_t aud_size, aud_mtime;
	/* send_at and quiet hours */
	tzdb_t *tzdb;         /* NULL when no channel has quiet hours */
	hold_t *hold;         /* the holding store (launch only) */
	int tzcol[3];         /* timezone, zip, state columns; -1 = none */
	int qh_on[2];
	tz_window_t qh[2];
	int64_t sa_now, sa_held; /* preview: messages without quiet hours, now or at send_at */
};

#define QH_HORIZON_MS (8 * 86400000LL) /* how far ahead a window is looked for */
#define SEND_AT_GRACE_MS 300000        /* send_at this far in the past is still "now" */

/* ---------------------------------------------------------------- helpers */

/* The rejects file holds recipients' rows: owner only (0600, also when it existed). */
static FILE *rejects_open(const char *path, const char *mode)
{
	FILE *f = fopen(path, mode);
	if (f && fchmod(fileno(f), 0600)) {
		fclose(f);
		return NULL;
	}
	return f;
}

static void count_reason(prod_stats_t *st, const char *why)
{
	char key[96];
	size_t k = 0;
	for (const char *s = why; *s && k < sizeof key - 1; s++) {
		/* a standalone number ("2 fields, the header has 3") becomes N */
		const char *e = s;
		while (*e >= '0' && *e <= '9')
			e++;
		if (e > s && (s == why || s[-1] == ' ') &&
		    (!*e || *e == ' ' || *e == ',' || *e == ')')) {
			while (s[1] >= '0' && s[1] <= '9')
				s++;
			key[k++] = 'N';
		} else {
			key[k++] = *s;
		}
	}
	key[k] = 0;
	for (int i = 0; i < st->nreasons; i++)
		if (!strcmp(st->reasons[i].text, key)) {
			st->reasons[i].n++;
			return;
		}
	if (st->nreasons < PROD_MAX_REASONS) {
		snprintf(st->reasons[st->nreasons].text, sizeof st->reasons[0].text, "%s", key);
		st->reasons[st->nreasons++].n = 1;
	} else {
		st->reasons_other++;
	}
}

static void csv_field(FILE *f, const char *s, size_t n)
{
	size_t lim = n > 200 ? 200 : n;
	fputc('"', f);
	for (size_t i = 0; i < lim; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"')
			fputs("\"\"", f);
		else if (c < 0x20 && c != '\t')
			fputc('?', f);
		else
			fputc(c, f);
	}
	if (n > lim)
		fprintf(f, "...(%zu bytes)", n);
	fputc('"', f);
}

static void reject(prod_t *p, int64_t line, const char *channel, const char *val, size_t vlen,
                   const char *why)
{
	count_reason(&p->st, why);
	if (!p->rejects)
		return;
	fprintf(p->rejects, "%s:%lld,%s,", p->camp->aud_path, (long long)line, channel);
	csv_field(p->rejects, val ? val : "", val ? vlen : 0);
	fputc(',', p->rejects);
	csv_field(p->rejects, why, strlen(why));
	fputc('\n', p->rejects);
}

static int mkdir_p(const char *dir)
{
	char tmp[4096];
	snprintf(tmp, sizeof tmp, "%s", dir);
	for (char *s = tmp + 1; *s; s++)
		if (*s == '/') {
			*s = 0;
			if (mkdir(tmp, 0755) && errno != EEXIST)
				return -1;
			*s = '/';
		}
	return mkdir(tmp, 0755) && errno != EEXIST ? -1 : 0;
}

/* ------------------------------------------------------------ Kafka side */

/* The broker stopped answering (why: what showed it): the clock of broker_lost()
 * starts, with one line. Launch thread only. */
static void broker_down(prod_t *p, const char *why)
{
	int64_t zero = 0, now = clock_mono_ms(), wall = clock_wall_ms();
	if (!__atomic_compare_exchange_n(&p->down_mono_ms, &zero, now, 0, __ATOMIC_SEQ_CST,
	                                 __ATOMIC_SEQ_CST))
		return;
	__atomic_store_n(&p->down_wall_ms, wall, __ATOMIC_SEQ_CST);
	char ts[32];
	clock_iso8601(wall, ts, sizeof ts);
	int n = p->rk ? rd_kafka_outq_len(p->rk) : 0;
	log_error("event=broker_unreachable since=%s unconfirmed=%d reason=\"%s\" msg=\"Kafka "
	          "broker unreachable since %s: %d messages not confirmed; the launch gives up "
	          "after %d s unless it comes back\"",
	          ts, n, why, ts, n, PROD_BROKER_LOST_MS / 1000);
}

static void broker_up(prod_t *p)
{
	if (__atomic_exchange_n(&p->down_mono_ms, 0, __ATOMIC_SEQ_CST))
		log_info("event=broker_reachable msg=\"Kafka answers again\"");
}

/* Messages waiting with no delivery report for PROD_ACK_STALL_MS: the broker is gone
 * (launch thread). */
static void ack_watch(prod_t *p)
{
	int64_t now = clock_mono_ms();
	if (!p->rk || rd_kafka_outq_len(p->rk) == 0)
		p->ack_ref_ms = now;
	else if (now - p->ack_ref_ms >= PROD_ACK_STALL_MS)
		broker_down(p, "no delivery report for 3 s");
}

/* The watchdog thread: a metadata request every second, unanswered in 500 ms = the broker
 * is gone, answered = it is there (the tracker asks the same way). Its own thread, so the
 * loss is seen while the launch thread waits in a call to the broker that is gone. */
static void *watchdog_main(void *arg)
{
	prod_t *p = arg;
	while (!__atomic_load_n(&p->watchdog_stop, __ATOMIC_SEQ_CST)) {
		const struct rd_kafka_metadata *md = NULL;
		rd_kafka_resp_err_t e = rd_kafka_metadata(p->rk, 0, NULL, &md, 500);
		if (md)
			rd_kafka_metadata_destroy(md);
		if (e)
			broker_down(p, rd_kafka_err2str(e));
		else
			broker_up(p);
		for (int i = 0; i < 10 && !__atomic_load_n(&p->watchdog_stop, __ATOMIC_SEQ_CST); i++)
			usleep(50 * 1000);
	}
	return NULL;
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk;
	prod_t *p = opaque;
	if (m->err) {
		if (!p->st.delivery_failed)
			snprintf(p->errstr, sizeof p->errstr, "%s", rd_kafka_err2str(m->err));
		p->st.delivery_failed++;
		return;
	}
	broker_up(p);
	uintptr_t op = (uintptr_t)m->_private, ch = op & 3;
	if (ch >= 1 && ch <= 2) {
		struct epoch *e = &p->ep[(op >> 2) % EPOCHS];
		e->delivered++;
		if (m->partition >= 0 && m->partition < MAXPART && m->offset + 1 > e->offs[ch - 1][m->partition])
			e->offs[ch - 1][m->partition] = m->offset + 1;
	}
}

/* librdkafka's errors (on the launch's thread, from rd_kafka_poll): every broker
 * connection down is one sign of a lost broker. */
static void err_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	(void)rk;
	prod_t *p = opaque;
	if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
		broker_down(p, reason);
	else
		log_warn("event=kafka_error err=\"%s\" reason=\"%s\"", rd_kafka_err2str(err), reason);
}

/* Has the broker been unreachable for PROD_BROKER_LOST_MS? */
static int broker_lost(prod_t *p)
{
	int64_t since = __atomic_load_n(&p->down_mono_ms, __ATOMIC_SEQ_CST);
	return since && clock_mono_ms() - since >= PROD_BROKER_LOST_MS;
}

/* --resend-failed: a message re-queued with attempt >= 1 gets a `queued` status
 * record carrying that attempt, so its latest outcome is no longer the failure
 * and a second --resend-failed before it is sent leaves it out ("already
 * re-queued") instead of queueing it twice (producer/README.md). */
static int produce_requeued(prod_t *p, const msg_out_t *m)
{
	msg_status_t s = {.id = m->id, .campaign = m->campaign, .channel = m->channel, .to = m->to,
	                  .state = MSG_ST_QUEUED, .detail = "re-queued by --resend-failed",
	                  .latency_ms = -1, .attempt = m->attempt, .ts_ms = clock_wall_ms()};
	buf_reset(&p->srec);
	int rc = msg_status_encode(&s, &p->srec);
	if (!rc)
		rc = kq_produce(p->rk, KQ_T_STATUS, m->id, strlen(m->id), p->srec.p, p->srec.len, NULL);
	return rc;
}

static int topic_parts(rd_kafka_t *rk, const char *topic)
{
	int n = kq_partitions(rk, topic, 5000);
	return n > MAXPART ? MAXPART : n;
}

static int produce_campaign(prod_t *p, msg_camp_state_t state, int64_t queued)
{
	buf_t b;
	buf_init(&b, 4096);
	msg_campaign_t c = {.id = p->camp->id, .name = p->camp->name, .state = state,
	                    .queued = queued, .qh_urgent = p->camp->qh_urgent, .ts_ms = clock_wall_ms()};
	/* launched ahead of its send_at: "scheduled" (tocsin hold makes it running) */
	if (p->camp->send_at_ms > clock_wall_ms() && state != MSG_CAMP_LAUNCHING) {
		c.state = MSG_CAMP_SCHEDULED;
		c.send_at_ms = p->camp->send_at_ms;
	}
	int rc = msg_campaign_encode(&c, &b);
	if (!rc)
		rc = kq_produce(p->rk, KQ_T_CAMPAIGNS, p->camp->id, strlen(p->camp->id), b.p, b.len, NULL);
	buf_free(&b);
	return rc;
}

/* lag of channel ch: high watermarks minus the dispatcher group's committed offsets */
static int64_t channel_lag(prod_t *p, int ch)
{
	if (!p->lag_rk[ch])
		return 0;
	int64_t lag = kq_group_lag(p->rk, p->lag_rk[ch],
	                           kq_outbox_topic_for((msg_channel_t)ch, p->camp->priority), p->nparts[ch]);
	return lag < 0 ? p->lag_cached : lag;
}

static int64_t total_lag(prod_t *p)
{
	int64_t lag = 0;
	for (int ch = 0; ch < 2; ch++)
		if (p->on[ch])
			lag += channel_lag(p, ch);
	p->lag_cached = lag;
	return lag;
}

/* ------------------------------------------------------------ checkpoint */

static int ckpt_write(prod_t *p, int done)
{
	if (p->o.dry || !p->rk)
		return 0;
	if (p->rejects)
		fflush(p->rejects);
	json_t *j = json_object();
	json_object_set_new(j, "v", json_integer(1));
	json_object_set_new(j, "campaign", json_string(p->camp->id));
	json_object_set_new(j, "audience", json_string(p->camp->aud_path));
	json_object_set_new(j, "audience_size", json_integer(p->aud_size));
	json_object_set_new(j, "audience_mtime", json_integer(p->aud_mtime));
	json_object_set_new(j, "rows", json_integer(p->ck_rows));
	json_object_set_new(j, "queued", json_integer(p->ck_queued));
	json_object_set_new(j, "done", json_boolean(done));
	json_object_set_new(j, "resend_failed", json_boolean(p->o.resend_failed));
	json_object_set_new(j, "rejects_bytes", json_integer(p->ck_rj));
	json_object_set_new(j, "ts_ms", json_integer(clock_wall_ms()));
	json_t *offs = json_object();
	for (int ch = 0; ch < 2; ch++) {
		if (!p->on[ch])
			continue;
		json_t *a = json_array();
		for (int i = 0; i < p->nparts[ch]; i++)
			json_array_append_new(a, json_integer(p->offs[ch][i]));
		json_object_set_new(offs, msg_channel_name((msg_channel_t)ch), a);
	}
	json_object_set_new(j, "offsets", offs);
	char tmp[4200];
	snprintf(tmp, sizeof tmp, "%s.tmp", p->ckpt_path);
	int rc = json_dump_file(j, tmp, JSON_COMPACT);
	json_decref(j);
	if (rc || rename(tmp, p->ckpt_path)) {
		log_error("event=checkpoint_failed path=%s err=\"%s\"", p->ckpt_path, strerror(errno));
		return TOCSIN_ERR_IO;
	}
	return 0;
}

/* ------------------------------------------------------ reading topics back */

/* A consumer of the producer's own reads: client id KQ_G_LAUNCH_PREFIX "<what>", group
 * KQ_G_LAUNCH_PREFIX "<what>-<campaign>". NULL with err. */
static rd_kafka_t *launch_consumer(const cfg_t *cfg, const char *camp_id, const char *what,
                                   int timeout_ms, char *err, size_t errlen)
{
	char cid[64], gid[192];
	snprintf(cid, sizeof cid, KQ_G_LAUNCH_PREFIX "%s", what);
	snprintf(gid, sizeof gid, KQ_G_LAUNCH_PREFIX "%s-%s", what, camp_id);
	return kq_consumer_new(cfg, cid, gid, timeout_ms, err, errlen);
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
static int scan_already(prod_t *p, json_t *offs, char *err, size_t errlen)
{
	rd_kafka_t *c =
	    launch_consumer(p->cfg, p->camp->id, "scan", p->o.kafka_timeout_ms, err, errlen);
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
				from[i] = p->offs[ch][i] = json_integer_value(json_array_get(a, (size_t)i));
				if (from[i] < 0)
					from[i] = 0;
			}
		}
		int64_t left = t_end - clock_mono_ms();
		kq_read_t r = {.topic = kq_outbox_topic_for((msg_channel_t)ch, p->camp->priority),
		               .nparts = p->nparts[ch], .from = from, .lo = lo,
		               .timeout_ms = left > 1 ? (int)left : 1, .stop = &tocsin_stop};
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
		snprintf(err, errlen, "resume: could read only %lld of %lld outbox messages past the checkpoint",
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
static int load_failed(prod_t *p, char *err, size_t errlen)
{
	rd_kafka_t *c =
	    launch_consumer(p->cfg, p->camp->id, "resend", p->o.kafka_timeout_ms, err, errlen);
	if (!c)
		return TOCSIN_ERR_KAFKA;
	failed_scan_t f = {.p = p};
	kq_read_t r = {.topic = KQ_T_STATUS, .nparts = topic_parts(c, KQ_T_STATUS),
	               .timeout_ms = 120000, .stop = &tocsin_stop};
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
static void watch_poll(prod_t *p, int wait_ms)
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
static int watch_start(prod_t *p, char *err, size_t errlen)
{
	p->watch =
	    launch_consumer(p->cfg, p->camp->id, "watch", p->o.kafka_timeout_ms, err, errlen);
	if (!p->watch)
		return TOCSIN_ERR_KAFKA;
	p->camp_state = -1;
	kq_read_t r = {.topic = KQ_T_CAMPAIGNS, .nparts = topic_parts(p->watch, KQ_T_CAMPAIGNS),
	               .timeout_ms = 10000, .keep = 1};
	if (r.nparts < 0)
		r.nparts = 0;
	char e[256];
	/* the backlog, up to the high watermarks at start; a slow read is not fatal (the
	 * watch goes on during the launch) */
	if (kq_read(p->watch, &r, on_campaign, p, e, sizeof e))
		log_warn("event=campaign_watch_slow campaign=%s err=\"%s\"", p->camp->id, e);
	return 0;
}

/* ------------------------------------------------------------------ setup */

static tmpl_t *compile(prod_t *p, const char *src, tmpl_mode_t mode, const char *what, char *err,
                       size_t errlen)
{
	char e[512];
	tmpl_t *t = tmpl_compile_ex(src, strlen(src), mode, p->vals, p->nfields,
	                            p->camp->missing_empty ? TMPL_F_MISSING_EMPTY : 0, e, sizeof e);
	if (!t)
		snprintf(err, errlen, "%s: %s: %s (audience columns: %s)", p->camp->path, what, e,
		         p->camp->aud_path);
	return t;
}

/* send_at and quiet hours: each channel's window (the configuration's, or the campaign's
 * narrower one; none with the urgent override), the zone columns and tables. */
static int sched_setup(prod_t *p, char *err, size_t errlen)
{
	const camp_t *c = p->camp;
	const cfg_t *cfg = p->cfg;
	const char *cols[3] = {c->col_tz, c->col_zip, c->col_state};
	for (int k = 0; k < 3; k++)
		p->tzcol[k] = cols[k] ? aud_col(p->aud, cols[k]) : -1;
	int need = 0;
	for (int ch = 0; ch < 2; ch++) {
		p->qh_on[ch] = p->on[ch] && cfg->qh_on[ch] && !c->qh_urgent;
		p->qh[ch] = (tz_window_t){cfg->qh_start[ch], cfg->qh_end[ch]};
		if (!p->qh_on[ch] || c->qh_start < 0)
			continue;
		/* the campaign may only narrow the window */
		tz_window_t w = {c->qh_start, c->qh_end};
		int inside = w.start < w.end && p->qh[ch].start < p->qh[ch].end
		                 ? w.start >= p->qh[ch].start && w.end <= p->qh[ch].end
		                 : w.start == p->qh[ch].start && w.end == p->qh[ch].end;
		if (!inside) {
			char a[6], b[6], x[6], y[6];
			tz_fmt_hhmm(w.start, a), tz_fmt_hhmm(w.end, b);
			tz_fmt_hhmm(p->qh[ch].start, x), tz_fmt_hhmm(p->qh[ch].end, y);
			snprintf(err, errlen, "%s: quiet_hours: %s-%s is not inside the %s window of %s "
			         "(%s-%s): a campaign may only narrow it (or name {\"override\": \"urgent\"})",
			         c->path, a, b, msg_channel_name((msg_channel_t)ch), cfg->path, x, y);
			return TOCSIN_ERR_CONFIG;
		}
		p->qh[ch] = w;
	}
	for (int ch = 0; ch < 2; ch++)
		need |= p->qh_on[ch];
	if (need && !(p->tzdb = tzdb_open(NULL, err, errlen)))
		return TOCSIN_ERR_CONFIG;
	if (c->qh_urgent)
		log_warn("event=quiet_hours_override campaign=%s override=urgent msg=\"quiet hours are off "
		         "for this campaign\"", c->id);
	return 0;
}

prod_t *prod_new(const cfg_t *cfg, const camp_t *camp, const prod_opts_t *o, char *err,
                 size_t errlen)
{
	prod_t *p = calloc(1, sizeof *p);
	if (!p) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	p->cfg = cfg;
	p->camp = camp;
	p->o = *o;
	if (!p->o.ckpt_every_ms)
		p->o.ckpt_every_ms = 1000;
	if (!p->o.kafka_timeout_ms)
		p->o.kafka_timeout_ms = 10000;
	if (!p->o.out)
		p->o.out = stdout;
	p->t0_ms = clock_mono_ms();
	p->on[MSG_CH_SMS] = camp->sms_on;
	p->on[MSG_CH_EMAIL] = camp->email_on;
	buf_init(&p->rec, 4 * 1024 * 1024);
	buf_init(&p->srec, 1024);

	p->aud = aud_open(&camp->aud, err, errlen);
	if (!p->aud)
		goto fail;
	struct stat sb;
	if (!stat(camp->aud_path, &sb)) {
		p->aud_size = (int64_t)sb.st_size;
		p->aud_mtime = (int64_t)sb.st_mtime;
	}
	size_t nc = aud_ncols(p->aud);
	p->nfields = nc;
	p->vals = calloc(p->nfields, sizeof *p->vals);
	p->lens = calloc(p->nfields, sizeof *p->lens);
	if (!p->vals || !p->lens) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	/* field names for compile: the columns, then unsubscribe_url */
	const char *const *cols = aud_cols(p->aud);
	for (size_t i = 0; i < nc; i++)
		p->vals[i] = cols[i];
	const char *colname[2] = {camp->col_phone, camp->col_email};
	for (int ch = 0; ch < 2; ch++) {
		p->col[ch] = aud_col(p->aud, colname[ch]);
		if (p->on[ch] && p->col[ch] < 0) {
			snprintf(err, errlen, "%s:1: no column \"%s\" for the %s address (set audience.%s in %s)",
			         camp->aud_path, colname[ch], ch ? "email" : "phone", ch ? "email" : "phone",
			         camp->path);
			goto fail;
		}
	}
	const char *extra[3][2] = {{camp->col_tz, "timezone"}, {camp->col_zip, "zip"},
	                           {camp->col_state, "state"}};
	for (int k = 0; k < 3; k++)
		if (extra[k][0] && aud_col(p->aud, extra[k][0]) < 0) {
			snprintf(err, errlen, "%s:1: no column \"%s\" (audience.%s in %s)", camp->aud_path,
			         extra[k][0], extra[k][1], camp->path);
			goto fail;
		}
	if (sched_setup(p, err, errlen))
		goto fail;
	if (camp->sms_on && !(p->t_sms = compile(p, camp->sms_template, TMPL_TEXT, "sms.template", err, errlen)))
		goto fail;
	if (camp->email_on) {
		char e[512];
		const char *tx = camp->email_text, *ht = camp->email_html;
		p->t_email = email_compile(camp->email_subject, strlen(camp->email_subject), tx,
		                           tx ? strlen(tx) : 0, ht, ht ? strlen(ht) : 0, p->vals,
		                           p->nfields, camp->missing_empty ? TMPL_F_MISSING_EMPTY : 0, e,
		                           sizeof e);
		if (!p->t_email) {
			snprintf(err, errlen, "%s: email.%s", camp->path, e);
			goto fail;
		}
		if (o->dry && !o->digests)
			p->unsub = email_unsub_new("tocsin-preview-key-not-for-sending", 34,
			                           cfg->public_url ? cfg->public_url : "https://preview.invalid",
			                           e, sizeof e);
		else
			p->unsub = email_unsub_from_cfg(cfg, e, sizeof e);
		if (!p->unsub) {
			snprintf(err, errlen, "%s: email unsubscribe links: %s", cfg->path, e);
			goto fail;
		}
	}
	if (camp->sms_on && !(p->penc = penc_new(camp->id, camp->sms_sender, camp->priority, err, errlen)))
		goto fail;
	p->body = malloc(SMS_BODY_CAP);
	p->ebuf = malloc(EMAIL_BUF_CAP);
	p->seen = aset_new(1 << 16, PROD_MAX_RECIPIENTS, err, errlen);
	p->sup = aset_new(1024, 0, err, errlen);
	p->already = aset_new(1024, 0, err, errlen);
	p->failed = aset_new(1024, 0, err, errlen);
	if (!p->body || !p->ebuf || !p->seen || !p->sup || !p->already ||
	    !p->failed)
		goto fail;

	/* output files */
	snprintf(p->dir, sizeof p->dir, "%s/launch/%s", cfg->var_dir, camp->id);
	snprintf(p->ckpt_path, sizeof p->ckpt_path, "%s/checkpoint.json", p->dir);
	snprintf(p->rejects_path, sizeof p->rejects_path, "%s",
	         o->rejects_path ? o->rejects_path
	         : camp->rejects_path ? camp->rejects_path
	                              : "");
	if (!p->rejects_path[0])
		snprintf(p->rejects_path, sizeof p->rejects_path, "%s/%s", p->dir,
		         o->dry ? "preview-rejects.csv" : "rejects.csv");
	snprintf(p->report_path, sizeof p->report_path, "%s",
	         o->report_path ? o->report_path
	         : camp->report_path ? camp->report_path
	                             : "");
	if (!p->report_path[0])
		snprintf(p->report_path, sizeof p->report_path, "%s/%s", p->dir,
		         o->dry ? "preview.json" : "report.json");
	if (mkdir_p(p->dir)) {
		snprintf(err, errlen, "cannot create %s: %s", p->dir, strerror(errno));
		goto fail;
	}

	/* opt-outs: the local cache, synced from tocsin.optouts when launching */
	optc_t *oc = optc_open(cfg, err, errlen);
	if (!oc)
		goto fail;
	if (!o->dry && optc_sync(oc, cfg, o->kafka_timeout_ms ? o->kafka_timeout_ms : 10000, err, errlen)) {
		optc_close(oc);
		goto fail;
	}
	if (optc_load(oc, p->sup, err, errlen)) {
		optc_close(oc);
		goto fail;
	}
	optc_close(oc);

	if (o->dry) {
		p->rejects = rejects_open(p->rejects_path, "w");
		if (!p->rejects) {
			snprintf(err, errlen, "%s: %s", p->rejects_path, strerror(errno));
			goto fail;
		}
		fputs("where,channel,value,reason\n", p->rejects);
		return p;
	}

	/* checkpoint */
	json_t *ck = NULL;
	if (!o->restart && !access(p->ckpt_path, F_OK)) {
		json_error_t je;
		ck = json_load_file(p->ckpt_path, 0, &je);
		if (!ck || json_integer_value(json_object_get(ck, "v")) != 1) {
			snprintf(err, errlen, "%s: unreadable checkpoint (%s); run again with --restart", p->ckpt_path,
			         ck ? "wrong version" : je.text);
			json_decref(ck);
			goto fail;
		}
		if (json_integer_value(json_object_get(ck, "audience_size")) != p->aud_size ||
		    strcmp(json_string_value(json_object_get(ck, "audience")) ?: "", camp->aud_path)) {
			snprintf(err, errlen,
			         "%s: the audience changed since the launch this checkpoint belongs to (%s); "
			         "use --restart to start over",
			         p->ckpt_path, camp->aud_path);
			json_decref(ck);
			goto fail;
		}
		if (!json_is_true(json_object_get(ck, "done"))) {
			p->ckpt_rows = json_integer_value(json_object_get(ck, "rows"));
			/* an interrupted --resend-failed continues as one */
			if (json_is_true(json_object_get(ck, "resend_failed")) && !p->o.resend_failed) {
				log_warn("event=resume_resend campaign=%s msg=\"continuing an interrupted "
				         "--resend-failed\"",
				         camp->id);
				p->o.resend_failed = 1;
			}
		}
	}

	/* a fresh launch refuses a send_at in the past (a resumed one goes on) */
	if (!ck && camp->send_at_ms && camp->send_at_ms < clock_wall_ms() - SEND_AT_GRACE_MS) {
		snprintf(err, errlen, "%s: send_at: it is in the past (more than %d minutes ago); use "
		         "\"now\" or a later time; nothing queued", camp->path, SEND_AT_GRACE_MS / 60000);
		goto fail;
	}
	if (!(p->hold = hold_open(cfg, err, errlen))) {
		json_decref(ck);
		goto fail;
	}
	/* the producer */
	rd_kafka_conf_t *conf = kq_conf_new(cfg, KQ_PRODUCER, "tocsin-launch", NULL, err, errlen);
	if (!conf) {
		json_decref(ck);
		goto fail;
	}
	rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
	rd_kafka_conf_set_error_cb(conf, err_cb);
	rd_kafka_conf_set_opaque(conf, p);
	/* a lost broker fails the messages soon after broker_lost() gives up (the config wins) */
	if (!json_object_get(cfg->kafka, "message.timeout.ms")) {
		char mt[16];
		snprintf(mt, sizeof mt, "%d", PROD_BROKER_LOST_MS + 5000);
		rd_kafka_conf_set(conf, "message.timeout.ms", mt, NULL, 0);
	}
	p->rk = kq_new(conf, KQ_PRODUCER, p->o.kafka_timeout_ms, err, errlen);
	p->ack_ref_ms = clock_mono_ms();
	if (!p->rk) {
		json_decref(ck);
		goto fail;
	}
	for (int ch = 0; ch < 2; ch++) {
		if (!p->on[ch])
			continue;
		const char *topic = kq_outbox_topic_for((msg_channel_t)ch, p->camp->priority);
		p->nparts[ch] = topic_parts(p->rk, topic);
		if (p->nparts[ch] <= 0) {
			snprintf(err, errlen, "Kafka topic %s does not exist", topic);
			json_decref(ck);
			goto fail;
		}
		json_t *cko = ck ? json_object_get(json_object_get(ck, "offsets"),
		                                   msg_channel_name((msg_channel_t)ch))
		                 : NULL;
		for (int i = 0; i < p->nparts[ch]; i++) {
			int64_t lo = 0, hi = 0;
			if (!rd_kafka_query_watermark_offsets(p->rk, topic, i, &lo, &hi, 5000)) {
				p->offs[ch][i] = hi;
				/* the outbox ends before the checkpoint's offsets: it was reset (an
				 * embedded broker restarted, the topic recreated); nothing of the
				 * earlier launch is there any more */
				if (ck && json_integer_value(json_array_get(cko, (size_t)i)) > hi) {
					log_warn("event=outbox_reset campaign=%s topic=%s partition=%d "
					         "checkpoint_offset=%lld high_watermark=%lld msg=\"the outbox was "
					         "reset since the last launch: launching from the start\"",
					         camp->id, topic, i,
					         (long long)json_integer_value(json_array_get(cko, (size_t)i)),
					         (long long)hi);
					json_decref(ck);
					ck = NULL;
					p->ckpt_rows = 0;
				}
			}
		}
	}
	if (ck && json_is_true(json_object_get(ck, "done")) && !p->o.resend_failed) {
		p->st.already_done = 1;
		p->st.queued = json_integer_value(json_object_get(ck, "queued"));
		json_decref(ck);
		return p;
	}
	if (ck && p->ckpt_rows >= 0 && !json_is_true(json_object_get(ck, "done"))) {
		int rc = scan_already(p, json_object_get(ck, "offsets"), err, errlen);
		if (rc) {
			json_decref(ck);
			goto fail;
		}
	}
	int64_t rj_bytes = ck ? json_integer_value(json_object_get(ck, "rejects_bytes")) : 0;
	int resuming = ck && !json_is_true(json_object_get(ck, "done"));
	p->resuming = resuming;
	json_decref(ck);
	if (p->o.resend_failed && load_failed(p, err, errlen))
		goto fail;

	/* rejects file: truncated to what the checkpoint covered when resuming */
	p->rejects = rejects_open(p->rejects_path, resuming ? "r+" : "w");
	if (!p->rejects && resuming)
		p->rejects = rejects_open(p->rejects_path, "w"), rj_bytes = 0;
	if (!p->rejects) {
		snprintf(err, errlen, "%s: %s", p->rejects_path, strerror(errno));
		goto fail;
	}
	if (resuming && rj_bytes > 0) {
		if (ftruncate(fileno(p->rejects), (off_t)rj_bytes) || fseek(p->rejects, 0, SEEK_END)) {
			snprintf(err, errlen, "%s: %s", p->rejects_path, strerror(errno));
			goto fail;
		}
	} else {
		if (ftruncate(fileno(p->rejects), 0)) {
			snprintf(err, errlen, "%s: %s", p->rejects_path, strerror(errno));
			goto fail;
		}
		fputs("where,channel,value,reason\n", p->rejects);
	}

	/* operator controls on tocsin.campaigns */
	if (watch_start(p, err, errlen))
		goto fail;
	if (p->camp_state == MSG_CAMP_CANCELLED) {
		snprintf(err, errlen,
		         "campaign %s was cancelled (%s); a cancelled campaign is never sent again: "
		         "launch it under a new id",
		         camp->id, KQ_T_CAMPAIGNS);
		goto fail;
	}

	/* flow control */
	json_t *bs = json_object_get(cfg->kafka, "bootstrap.servers");
	int embedded = !(json_is_string(bs) && json_string_length(bs) > 0);
	if (p->o.max_lag < 0)
		p->o.max_lag = embedded ? -1 : 0; /* -1 stays: computed from record sizes */
	if (p->o.max_lag != 0) {
		for (int ch = 0; ch < 2; ch++) {
			if (!p->on[ch])
				continue;
			char gid[64];
			kq_dispatch_group((msg_channel_t)ch, gid, sizeof gid);
			p->lag_rk[ch] = kq_consumer_new(cfg, KQ_G_LAUNCH_PREFIX "lag", gid, p->o.kafka_timeout_ms, err, errlen);
			if (!p->lag_rk[ch])
				goto fail;
		}
	}
	return p;
fail:
	prod_free(p);
	return NULL;
}

void prod_free(prod_t *p)
{
	if (!p)
		return;
	if (p->watchdog_on) {
		__atomic_store_n(&p->watchdog_stop, 1, __ATOMIC_SEQ_CST);
		pthread_join(p->watchdog, NULL);
	}
	if (__atomic_load_n(&p->down_mono_ms, __ATOMIC_SEQ_CST)) {
		/* the broker is gone: closing the clients would wait for it (librdkafka 2.0
		 * blocks ~10 s per consumer); the process is exiting, leave them to the OS */
		log_warn("event=kafka_clients_abandoned msg=\"the broker is unreachable: not closing "
		         "the Kafka clients\"");
		p->rk = p->lag_rk[0] = p->lag_rk[1] = p->watch = NULL;
	}
	if (p->rk) {
		rd_kafka_flush(p->rk, 10000);
		rd_kafka_destroy(p->rk);
	}
	for (int ch = 0; ch < 2; ch++)
		if (p->lag_rk[ch]) {
			rd_kafka_destroy(p->lag_rk[ch]);
		}
	if (p->watch) {
		rd_kafka_consumer_close(p->watch);
		rd_kafka_destroy(p->watch);
	}
	if (p->rejects)
		fclose(p->rejects);
	aud_free(p->aud);
	tmpl_free(p->t_sms);
	penc_free(p->penc);
	email_free(p->t_email);
	email_unsub_free(p->unsub);
	free(p->vals);
	free(p->lens);
	free(p->body);
	free(p->ebuf);
	buf_free(&p->rec);
	buf_free(&p->srec);
	aset_free(p->seen);
	aset_free(p->sup);
	aset_free(p->already);
	aset_free(p->failed);
	hold_close(p->hold);
	tzdb_free(p->tzdb);
	free(p);
}

/* ------------------------------------------------------------- the loop */

enum { R_QUEUED, R_REJECTED, R_SUPPRESSED, R_DUP, R_NONE };

/* When the message of channel ch to addr (the row in p->vals) may go: *due = base (now,
 * or send_at), or later when its recipient's quiet-hours window is closed then, with the
 * zone set in *set. Returns 0; 1 when the window does not open before expires (never
 * sent: expired, reason in why); -1 when the row is rejected (why). */
static int due_of(prod_t *p, int ch, const char *addr, int64_t now, int64_t expires,
                  int64_t *due, int64_t *close, tzdb_set_t **set, char *why, size_t whylen)
{
	int64_t base = p->camp->send_at_ms > now ? p->camp->send_at_ms : now;
	*due = base;
	*close = 0;
	*set = NULL;
	if (!p->qh_on[ch])
		return 0;
	const char *v[3] = {NULL, NULL, NULL};
	size_t l[3] = {0, 0, 0};
	for (int k = 0; k < 3; k++)
		if (p->tzcol[k] >= 0 && p->vals[p->tzcol[k]])
			v[k] = p->vals[p->tzcol[k]], l[k] = p->lens[p->tzcol[k]];
	tzdb_src_t src;
	int rc;
	char e[160];
	tzdb_set_t *s = (tzdb_set_t *)tzdb_lookup(p->tzdb, v[0], l[0], v[1], l[1], v[2], l[2],
	                                          ch == MSG_CH_SMS ? addr : NULL, &src, &rc, e, sizeof e);
	if (!s) {
		if (rc)
			snprintf(why, whylen, "invalid timezone: %s", e);
		else
			snprintf(why, whylen, "no time zone for quiet hours (no timezone, zip or state, "
			         "and no known phone prefix)");
		return -1;
	}
	*set = s;
	/* one window computation per zone set while its answer holds (base only grows) */
	if (ch != MSG_CH_SMS || base >= s->c_valid_until) {
		int64_t o = 0, c = 0;
		if (tz_next_open((const tz_t *const *)s->z, s->n, p->qh[ch], base, QH_HORIZON_MS, &o, &c)) {
			s->c_state = 2; /* never */
			s->c_valid_until = base + 3600000;
		} else if (o <= base) {
			s->c_state = 1; /* open at base */
			s->c_open_ms = base;
			s->c_close_ms = c;
			s->c_valid_until = c;
		} else {
			s->c_state = 0; /* opens at o */
			s->c_open_ms = o;
			s->c_close_ms = c;
			s->c_valid_until = o;
		}
		if (ch != MSG_CH_SMS)
			s->c_valid_until = INT64_MIN;
	}
	if (s->c_state == 2 || (s->c_state == 0 && expires > 0 && s->c_open_ms >= expires)) {
		snprintf(why, whylen, "quiet hours: the window %s before the message expires (%.60s)",
		         s->c_state == 2 ? "is never open in every zone at once" : "does not open", s->key);
		return 1;
	}
	*due = s->c_state == 1 ? base : s->c_open_ms;
	*close = s->c_close_ms;
	return 0;
}

/* An expired status record for a message whose window does not open in time. */
static int produce_expired(prod_t *p, const char *id, int ch, const char *addr, const char *why)
{
	msg_status_t s = {.id = id, .campaign = p->camp->id, .channel = (msg_channel_t)ch, .to = addr,
	                  .state = MSG_ST_EXPIRED, .code = "quiet_hours", .detail = why,
	                  .latency_ms = -1, .ts_ms = clock_wall_ms()};
	buf_reset(&p->srec);
	int rc = msg_status_encode(&s, &p->srec);
	if (!rc)
		rc = kq_produce(p->rk, KQ_T_STATUS, id, strlen(id), p->srec.p, p->srec.len, NULL);
	return rc;
}

/* Render and produce (or count) one channel for the row in p->vals. */
static int do_channel(prod_t *p, int ch, const aud_row_t *r, int replay, int *outcome)
{
	const char *chn = msg_channel_name((msg_channel_t)ch);
	const char *raw = p->vals[p->col[ch]];
	size_t rawlen = p->lens[p->col[ch]];
	char addr[ADDR_MAX];
	const char *why = NULL;
	char reason[200];
	*outcome = R_NONE;
	if (!raw || rawlen == 0)
		return 0; /* no address for this channel: decided by the caller */
	int rc = ch == MSG_CH_SMS ? addr_phone_norm(raw, rawlen, addr, &why)
	                          : addr_email_norm(raw, rawlen, addr, &why);
	if (rc) {
		snprintf(reason, sizeof reason, "invalid %s: %s", ch ? "email" : "phone", why);
		if (!replay)
			reject(p, r->line, chn, raw, rawlen, reason);
		p->st.ch_rejected[ch]++;
		*outcome = R_REJECTED;
		return 0;
	}
	size_t alen = strlen(addr);
	uint64_t key = aset_key(ch, addr, alen);
	if (aset_has(p->sup, key)) {
		p->st.ch_suppressed[ch]++;
		*outcome = R_SUPPRESSED;
		return 0;
	}
	if (aset_has(p->seen, key)) {
		p->st.ch_duplicates[ch]++;
		*outcome = R_DUP;
		return 0;
	}
	int64_t now = clock_wall_ms(), due = 0;
	int64_t expires = p->camp->expires_s ? p->created_ms + p->camp->expires_s * 1000 : 0;
	tzdb_set_t *zset = NULL;
	int64_t close = 0;
	int dr = due_of(p, ch, addr, now, expires, &due, &close, &zset, reason, sizeof reason);
	if (dr < 0) {
		if (!replay)
			reject(p, r->line, chn, raw, rawlen, reason);
		p->st.ch_rejected[ch]++;
		*outcome = R_REJECTED;
		return 0;
	}
	tmpl_why_t tw;
	msg_out_t m = {0};
	size_t blen = 0;
	int eform = EMAIL_INLINE_NONE;
	char digest[EMAIL_DIGEST_HEX];
	sms_info_t info = {0};
	if (ch == MSG_CH_SMS) {
		rc = tmpl_render(p->t_sms, p->vals, p->lens, p->body, SMS_BODY_CAP, &blen, &tw);
		if (rc) {
			snprintf(reason, sizeof reason, "%s",
			         rc == TOCSIN_ERR_TOOBIG ? "message too long" : tw.reason);
		} else {
			sms_opts_t so = {.smart = p->camp->sms_smart,
			                 .max_segments = p->camp->sms_max_segments,
			                 .footer = p->camp->sms_footer};
			int nrep = 0;
			rc = sms_finish(p->body, &blen, SMS_BODY_CAP, &so, &info, &nrep,
			                p->o.dry ? p->st.replaced_kind : NULL, reason, sizeof reason);
			p->st.replaced += nrep;
		}
		m.body = p->body;
		m.enc = sms_enc_name(info.enc);
		m.segments = info.segments;
	} else {
		email_parts_t ep;
		/* the outbox gets the shared parts with a placeholder per piece and the
		 * pieces in "subs", so the dispatcher can batch them; preview shows them
		 * inline, and counts the form a launch would queue */
		rc = email_render_subs(p->t_email, p->unsub, p->camp->id, addr, alen, p->vals, p->lens,
		                       p->ebuf, EMAIL_BUF_CAP, &ep, &tw);
		eform = ep.inline_why;
		if (!rc && p->o.dry)
			rc = email_render(p->t_email, p->unsub, p->camp->id, addr, alen, p->vals, p->lens,
			                  p->ebuf, EMAIL_BUF_CAP, &ep, &tw);
		if (rc)
			snprintf(reason, sizeof reason, "%s",
			         rc == TOCSIN_ERR_TOOBIG ? "message too long" : tw.reason);
		m.subject = ep.subject;
		m.text = ep.text;
		m.html = ep.html;
		m.headers = ep.headers;
		m.subs = ep.subs;
		m.segments = 1;
		if (!rc && p->o.digests)
			email_digest(ep.subject, ep.subject_len, ep.text, ep.text_len, ep.html, ep.html_len,
			             digest);
	}
	if (rc) {
		if (!replay)
			reject(p, r->line, chn, raw, rawlen, reason);
		p->st.ch_rejected[ch]++;
		*outcome = R_REJECTED;
		return 0;
	}
	if (aset_add(p->seen, key) < 0) {
		log_error("event=dedupe_full campaign=%s entries=%zu msg=\"more than %d distinct "
		          "addresses in one launch, or out of memory\"",
		          p->camp->id, aset_count(p->seen), PROD_MAX_RECIPIENTS);
		return TOCSIN_ERR_TOOBIG;
	}
	char id[MSG_ID_LEN + 1];
	msg_make_id(p->camp->id, chn, addr, id);
	if (p->o.resend_failed && !replay) {
		if (!aset_has(p->failed, hash64(id, MSG_ID_LEN, 0))) {
			p->st.resend_skipped++;
			*outcome = R_NONE;
			return 0;
		}
	}
	p->st.ch_queued[ch]++;
	*outcome = R_QUEUED;
	if (ch == MSG_CH_SMS) {
		p->st.by_enc[info.enc]++;
		p->st.seg_hist[info.segments > PROD_MAX_SEGS ? PROD_MAX_SEGS : info.segments]++;
		p->st.segments += info.segments;
	} else
		p->st.email_form[eform]++;
	int held = dr == 0 && due > now + 1000;
	if (dr == 1) {
		p->st.expired++;
	} else if (held) {
		p->st.held++;
		if (!p->st.first_due_ms || due < p->st.first_due_ms)
			p->st.first_due_ms = due;
		if (due > p->st.last_due_ms)
			p->st.last_due_ms = due;
	}
	if (p->o.dry) {
		int64_t *cnt = zset ? (held ? &zset->held : &zset->now) : held ? &p->sa_held : &p->sa_now;
		*cnt += dr == 0;
		if (zset && held && due > zset->last_ms)
			zset->last_ms = due;
	}
	if (replay)
		return 0;
	if (p->o.dry && p->o.digests && ch == MSG_CH_EMAIL)
		fprintf(p->o.digests, "%s %s\n", addr, digest);
	if (p->o.dry) {
		if (p->printed < p->o.preview_n) {
			p->printed++;
			FILE *f = p->o.out;
			if (ch == MSG_CH_SMS)
				fprintf(f, "--- %d. %s:%lld sms to %s (%s, %d segment%s, %zu bytes)\n%s\n",
				        p->printed, p->camp->aud_path, (long long)r->line, addr, m.enc,
				        m.segments, m.segments == 1 ? "" : "s", blen, p->body);
			else
				fprintf(f, "--- %d. %s:%lld email to %s\nSubject: %s\n%s%s%s%s\n", p->printed,
				        p->camp->aud_path, (long long)r->line, addr, m.subject,
				        m.text ? "\n" : "", m.text ? m.text : "", m.html ? "\n[html]\n" : "",
				        m.html ? m.html : "");
		}
		return 0;
	}
	if (aset_count(p->already) && aset_has(p->already, hash64(id, MSG_ID_LEN, 0))) {
		p->st.already++;
		return 0;
	}
	m.id = id;
	m.campaign = p->camp->id;
	m.channel = (msg_channel_t)ch;
	m.to = addr;
	m.sender = ch == MSG_CH_SMS ? p->camp->sms_sender : p->camp->email_sender;
	m.priority = p->camp->priority;
	m.created_ms = p->created_ms;
	/* a message not sent before its recipient's window closes expires then: the
	 * dispatchers never send it outside the window (--resend-failed holds it again) */
	m.expires_ms = close > 0 && (expires == 0 || close < expires) ? close : expires;
	m.attempt = p->o.resend_failed ? 1 : 0;
	buf_reset(&p->rec);
	if (ch == MSG_CH_SMS)
		rc = penc_sms(p->penc, &p->rec, id, addr, alen, p->body, blen, m.enc, m.segments,
		              m.created_ms, m.expires_ms, m.attempt);
	else
		rc = msg_out_encode(&m, &p->rec);
	if (rc) {
		snprintf(reason, sizeof reason, "record too large");
		reject(p, r->line, chn, raw, rawlen, reason);
		p->st.ch_queued[ch]--;
		p->st.ch_rejected[ch]++;
		*outcome = R_REJECTED;
		return 0;
	}
	const char *topic = kq_outbox_topic_for((msg_channel_t)ch, p->camp->priority);
	if (dr == 1)
		return produce_expired(p, id, ch, addr, reason);
	if (held) {
		/* durable with the next checkpoint (hold_commit in epoch_close) */
		if (hold_put(p->hold, id, p->camp->id, topic, addr, due, m.expires_ms, zset ? zset->key : "",
		             p->rec.p, p->rec.len, p->created_ms, p->o.resend_failed)) {
			log_error("event=hold_failed campaign=%s id=%s", p->camp->id, id);
			return TOCSIN_ERR_IO;
		}
		/* a resend held for its window is re-queued all the same (a second
		 * --resend-failed leaves it out) */
		return p->o.resend_failed ? produce_requeued(p, &m) : 0;
	}
	rc = kq_produce(p->rk, topic, addr, alen, p->rec.p, p->rec.len,
	                (void *)(uintptr_t)(((uintptr_t)(p->ep_cur % EPOCHS) << 2) | (uintptr_t)(ch + 1)));
	if (rc)
		return rc;
	if (p->o.resend_failed && (rc = produce_requeued(p, &m)))
		return rc;
	p->ep[p->ep_cur % EPOCHS].produced++;
	p->st.produced++;
	p->bytes_produced += (int64_t)p->rec.len;
	return 0;
}

static int do_row(prod_t *p, int arc, aud_row_t *r, int replay)
{
	p->st.read++;
	if (arc < 0) {
		/* a bad row: report its phone (or first) value when there is one */
		int c = p->col[p->on[MSG_CH_SMS] ? MSG_CH_SMS : MSG_CH_EMAIL];
		const char *v = c >= 0 && (size_t)c < r->n ? r->vals[c] : NULL;
		size_t vl = v ? r->lens[c] : 0;
		if (!replay)
			reject(p, r->line, "-", v, vl, r->why);
		p->st.rejected++;
		return 0;
	}
	size_t nc = p->nfields;
	for (size_t i = 0; i < nc; i++) {
		p->vals[i] = r->vals[i];
		p->lens[i] = r->vals[i] ? r->lens[i] : 0;
	}
	int out[2] = {R_NONE, R_NONE}, have = 0;
	for (int ch = 0; ch < 2; ch++) {
		if (!p->on[ch])
			continue;
		int rc = do_channel(p, ch, r, replay, &out[ch]);
		if (rc)
			return rc;
		if (p->vals[p->col[ch]] && p->lens[p->col[ch]])
			have = 1;
	}
	if (out[0] == R_QUEUED || out[1] == R_QUEUED)
		p->st.queued++;
	else if (out[0] == R_REJECTED || out[1] == R_REJECTED)
		p->st.rejected++;
	else if (out[0] == R_SUPPRESSED || out[1] == R_SUPPRESSED)
		p->st.suppressed++;
	else if (out[0] == R_DUP || out[1] == R_DUP)
		p->st.duplicates++;
	else if (!have) {
		char why[160];
		snprintf(why, sizeof why, "missing %s",
		         p->on[0] && p->on[1] ? "phone and email"
		         : p->on[0]           ? "phone"
		                              : "email");
		int c = p->col[p->on[MSG_CH_SMS] ? MSG_CH_SMS : MSG_CH_EMAIL];
		if (!replay)
			reject(p, r->line, p->on[0] && p->on[1] ? "-" : msg_channel_name(p->on[0] ? MSG_CH_SMS : MSG_CH_EMAIL),
			       "", 0, why);
		(void)c;
		p->st.rejected++;
	} else {
		p->st.queued++; /* --resend-failed: not failed before, counted as queued earlier */
	}
	return 0;
}

static void progress(prod_t *p, int final)
{
	int64_t done, total;
	aud_progress(p->aud, &done, &total);
	double el = (double)(clock_mono_ms() - p->t0_ms) / 1000.0;
	double rate = el > 0 ? (double)p->st.read / el : 0;
	char eta[32] = "";
	if (total > 0 && done > 0 && el > 0.5 && !final) {
		double left = el * (double)(total - done) / (double)done;
		snprintf(eta, sizeof eta, "  ETA %.0fs", left);
	}
	fprintf(stderr, "\r\033[Kread %lld  queued %lld  rejected %lld  suppressed %lld  duplicates %lld  %.0f rows/s%s%s",
	        (long long)p->st.read, (long long)p->st.queued, (long long)p->st.rejected,
	        (long long)p->st.suppressed, (long long)p->st.duplicates, rate, eta,
	        final ? "\n" : "");
}

static int64_t lag_bound(prod_t *p)
{
	int64_t bound = p->o.max_lag;
	if (bound >= 0)
		return bound;
	/* embedded broker: each partition keeps at most 5 MiB and drops the oldest */
	int64_t avg = p->st.produced > 0 ? p->bytes_produced / p->st.produced : 300;
	return kq_lag_bound(avg, p->nparts[0] > p->nparts[1] ? p->nparts[0] : p->nparts[1]);
}

/* Wait while more than the bound of messages are produced (or in flight) but not
 * yet consumed by the dispatcher groups. Cheap when far from the bound: the lag
 * is estimated from the last measurement plus what was produced since. */
static void lag_gate(prod_t *p)
{
	if (p->o.max_lag == 0 || !p->rk || __atomic_load_n(&p->down_mono_ms, __ATOMIC_SEQ_CST))
		return;
	int64_t bound = lag_bound(p);
	p->st.max_lag_used = bound;
	int64_t est = p->lag_at_check + (p->st.produced - p->produced_at_check);
	if (est <= bound)
		return;
	int64_t t0 = clock_mono_ms(), last_log = t0;
	int64_t lag = total_lag(p) + rd_kafka_outq_len(p->rk);
	while (lag > bound && !tocsin_stop && !broker_lost(p)) {
		rd_kafka_poll(p->rk, 50);
		ack_watch(p);
		if (__atomic_load_n(&p->down_mono_ms, __ATOMIC_SEQ_CST))
			continue; /* asking a broker that is gone for offsets only blocks */
		if (p->o.progress && isatty(2))
			progress(p, 0);
		int64_t t = clock_mono_ms();
		if (t - last_log > 10000) {
			log_info("event=waiting_for_dispatch lag=%lld max_lag=%lld", (long long)lag,
			         (long long)bound);
			last_log = t;
		}
		lag = total_lag(p) + rd_kafka_outq_len(p->rk);
	}
	p->lag_at_check = lag;
	p->produced_at_check = p->st.produced;
	p->st.lag_waits_ms += clock_mono_ms() - t0;
}

static int check_delivery(prod_t *p, char *err, size_t errlen)
{
	if (broker_lost(p)) {
		char ts[32];
		clock_iso8601(__atomic_load_n(&p->down_wall_ms, __ATOMIC_SEQ_CST), ts, sizeof ts);
		snprintf(err, errlen,
		         "the Kafka broker has been unreachable since %s: %d messages not confirmed; "
		         "nothing after the last checkpoint counts: run the same command again once "
		         "it is back (RUNBOOK.md, \"The broker is down\")",
		         ts, rd_kafka_outq_len(p->rk));
		return TOCSIN_ERR_KAFKA;
	}
	if (p->st.delivery_failed) {
		snprintf(err, errlen,
		         "%lld messages could not be delivered to Kafka (%s); nothing after the last "
		         "checkpoint counts: run the same command again to continue",
		         (long long)p->st.delivery_failed, p->errstr);
		return TOCSIN_ERR_KAFKA;
	}
	return 0;
}

static void write_report(prod_t *p, int finished);

/* Move the checkpoint past every fully delivered, closed epoch; write it when it moved. */
static void epoch_advance_fwd(prod_t *p)
{
	int moved = 0;
	while (p->ep_done < p->ep_cur && !p->st.delivery_failed) {
		struct epoch *e = &p->ep[p->ep_done % EPOCHS];
		if (!e->closed || e->delivered < e->produced)
			break;
		for (int ch = 0; ch < 2; ch++)
			for (int i = 0; i < MAXPART; i++)
				if (e->offs[ch][i] > p->offs[ch][i])
					p->offs[ch][i] = e->offs[ch][i];
		p->ck_rows = e->rows;
		p->ck_queued = e->queued;
		p->ck_rj = e->rj_bytes;
		e->closed = 0;
		p->ep_done++;
		moved = 1;
	}
	if (moved)
		ckpt_write(p, 0);
}

/* Close the current epoch at the current position and open the next. */
static void epoch_close(prod_t *p)
{
	struct epoch *e = &p->ep[p->ep_cur % EPOCHS];
	if (p->hold && hold_commit(p->hold))
		p->st.delivery_failed++, snprintf(p->errstr, sizeof p->errstr, "cannot write the holding store");
	if (p->rejects)
		fflush(p->rejects);
	e->rows = p->st.read;
	e->queued = p->st.queued;
	e->rj_bytes = p->rejects ? ftell(p->rejects) : 0;
	e->closed = 1;
	p->ep_cur++;
	struct epoch *n = &p->ep[p->ep_cur % EPOCHS];
	/* the ring is full only when an epoch 8 checkpoints old is still in flight */
	while (p->ep_done + EPOCHS <= p->ep_cur && !p->st.delivery_failed)
		rd_kafka_poll(p->rk, 10), epoch_advance_fwd(p);
	memset(n, 0, sizeof *n);
}

int prod_run(prod_t *p, char *err, size_t errlen)
{
	if (p->st.already_done)
		return 0;
	if (p->rk && !p->watchdog_on)
		p->watchdog_on = !pthread_create(&p->watchdog, NULL, watchdog_main, p);
	p->created_ms = clock_wall_ms();
	if (p->rk && !p->ckpt_rows) {
		/* the first checkpoint: nothing done yet, the outbox ends where it ends now;
		 * a crash before the next one re-reads the outbox from here */
		p->ck_rj = p->rejects ? ftell(p->rejects) : 0;
		if (ckpt_write(p, 0)) {
			snprintf(err, errlen, "cannot write the checkpoint %s", p->ckpt_path);
			return TOCSIN_ERR_IO;
		}
	}
	if (p->rk && p->camp_state != MSG_CAMP_PAUSED && produce_campaign(p, MSG_CAMP_LAUNCHING, -1)) {
		snprintf(err, errlen, "cannot produce to %s", KQ_T_CAMPAIGNS);
		return TOCSIN_ERR_KAFKA;
	}
	aud_row_t r;
	int64_t last_ck = clock_mono_ms(), last_prog = 0;
	int tty = p->o.progress && isatty(2);
	int rc = 0;
	/* replay what the checkpoint covers: rebuild the dedupe set, produce nothing */
	if (p->ckpt_rows > 0) {
		while (p->st.read < p->ckpt_rows) {
			int arc = aud_next(p->aud, &r);
			if (arc == 0)
				break;
			if (arc == TOCSIN_ERR_IO) {
				snprintf(err, errlen, "%s:%lld: %s", p->camp->aud_path, (long long)r.line, r.why);
				return TOCSIN_ERR_IO;
			}
			if ((rc = do_row(p, arc, &r, 1)))
				return rc;
		}
		p->st.resumed_rows = p->st.read;
		p->ck_rows = p->st.read;
		p->ck_queued = p->st.queued;
		p->ck_rj = p->rejects ? ftell(p->rejects) : 0;
		log_info("event=resumed campaign=%s rows=%lld queued_before=%lld", p->camp->id,
		         (long long)p->st.read, (long long)p->st.queued);
	}
	int64_t n = 0;
	for (;;) {
		if (tocsin_stop) {
			snprintf(err, errlen, "stopped by signal %d after %lld rows; run the same command to continue",
			         (int)tocsin_stop, (long long)p->st.read);
			rc = TOCSIN_ERR_STATE;
			break;
		}
		int arc = aud_next(p->aud, &r);
		if (arc == 0)
			break;
		if (arc == TOCSIN_ERR_IO) {
			snprintf(err, errlen, "%s:%lld: %s", p->camp->aud_path, (long long)r.line, r.why);
			rc = TOCSIN_ERR_IO;
			break;
		}
		if ((rc = do_row(p, arc, &r, 0))) {
			char fe[256] = "";
			if (p->rk)
				rd_kafka_poll(p->rk, 0);
			if (p->rk && rd_kafka_fatal_error(p->rk, fe, sizeof fe) == RD_KAFKA_RESP_ERR_NO_ERROR)
				fe[0] = 0;
			if (rc == TOCSIN_ERR_TOOBIG)
				snprintf(err, errlen, "%s:%lld: more than %d distinct addresses in one launch "
				         "(or out of memory); split the audience", p->camp->aud_path,
				         (long long)r.line, PROD_MAX_RECIPIENTS);
			else if (!check_delivery(p, err, errlen))
				snprintf(err, errlen,
				         "producing to Kafka failed at %s:%lld%s%s; messages could not be "
				         "delivered to Kafka: run the same command again to continue",
				         p->camp->aud_path, (long long)r.line, fe[0] ? ": " : "", fe);
			break;
		}
		lag_gate(p);
		if (broker_lost(p)) {
			rc = check_delivery(p, err, errlen);
			break;
		}
		if (p->o.crash_after_rows && p->st.read >= p->o.crash_after_rows) {
			/* test hook: stop like kill -9 would, the checkpoint left behind */
			rd_kafka_flush(p->rk, 30000);
			rd_kafka_destroy(p->rk);
			p->rk = NULL;
			snprintf(err, errlen, "crashed on purpose after %lld rows", (long long)p->st.read);
			return TOCSIN_ERR_STATE;
		}
		if ((++n & 1023) == 0) {
			int64_t now = clock_mono_ms();
			if (p->rk) {
				rd_kafka_poll(p->rk, 0);
				ack_watch(p);
				if ((rc = check_delivery(p, err, errlen)))
					break;
				epoch_advance_fwd(p);
				if (now - p->last_watch >= 200) {
					p->last_watch = now;
					watch_poll(p, 0);
					if (p->camp_state == MSG_CAMP_CANCELLED) {
						snprintf(err, errlen,
						         "campaign %s was cancelled during the launch: stopped after "
						         "%lld rows",
						         p->camp->id, (long long)p->st.read);
						rc = TOCSIN_ERR_STATE;
						break;
					}
				}
				if (now - last_ck >= p->o.ckpt_every_ms) {
					epoch_close(p);
					last_ck = clock_mono_ms();
				}
			}
			if (tty && now - last_prog >= 250) {
				progress(p, 0);
				last_prog = now;
			}
		}
	}
	if (p->rk && !rc && broker_lost(p))
		rc = check_delivery(p, err, errlen);
	if (p->rk) {
		if (!broker_lost(p) && kq_flush(p->rk, 120000) && !rc) {
			snprintf(err, errlen, "Kafka did not confirm delivery of %d messages within 120 s",
			         rd_kafka_outq_len(p->rk));
			rc = TOCSIN_ERR_TIMEOUT;
		}
		if (!rc)
			rc = check_delivery(p, err, errlen);
		if (!rc || p->st.delivery_failed == 0) {
			/* everything produced is delivered: the checkpoint is the current position */
			epoch_close(p);
			epoch_advance_fwd(p);
			if (rd_kafka_outq_len(p->rk) == 0 && p->ep_done == p->ep_cur) {
				p->ck_rows = p->st.read;
				p->ck_queued = p->st.queued;
				p->ck_rj = p->rejects ? ftell(p->rejects) : 0;
			}
		}
		watch_poll(p, 0);
		if (!rc && p->camp_state == MSG_CAMP_CANCELLED) {
			snprintf(err, errlen, "campaign %s was cancelled during the launch", p->camp->id);
			rc = TOCSIN_ERR_STATE;
		}
		if (!rc && p->hold && hold_commit(p->hold)) {
			snprintf(err, errlen, "cannot write the holding store %s/hold.db", p->cfg->var_dir);
			rc = TOCSIN_ERR_IO;
		}
		if (!rc) {
			ckpt_write(p, 1);
			/* "running" unless an operator paused it meanwhile: then it stays paused */
			if (p->camp_state == MSG_CAMP_PAUSED)
				log_warn("event=campaign_paused campaign=%s msg=\"paused during the launch; "
				         "the dispatchers hold its messages until it is resumed\"",
				         p->camp->id);
			else
				/* a resend keeps the audience the first launch published (-1 = unchanged) */
				produce_campaign(p, MSG_CAMP_RUNNING,
				                 p->o.resend_failed ? -1 : p->st.ch_queued[0] + p->st.ch_queued[1]);
			if (kq_flush(p->rk, 30000)) {
				snprintf(err, errlen, "Kafka did not confirm the campaign record");
				rc = TOCSIN_ERR_TIMEOUT;
			}
		} else if (p->st.delivery_failed == 0) {
			ckpt_write(p, 0);
		}
	}
	if (tty)
		progress(p, 1);
	p->st.elapsed_s = (double)(clock_mono_ms() - p->t0_ms) / 1000.0;
	if (p->rejects)
		fflush(p->rejects);
	write_report(p, rc == 0);
	return rc;
}

const prod_stats_t *prod_stats(const prod_t *p) { return &p->st; }
const char *prod_rejects_path(const prod_t *p) { return p->rejects_path; }
const char *prod_report_path(const prod_t *p) { return p->report_path; }

static json_t *reasons_json(const prod_stats_t *st)
{
	json_t *o = json_object();
	for (int i = 0; i < st->nreasons; i++)
		json_object_set_new(o, st->reasons[i].text, json_integer(st->reasons[i].n));
	if (st->reasons_other)
		json_object_set_new(o, "(other)", json_integer(st->reasons_other));
	return o;
}

static void write_report(prod_t *p, int finished)
{
	const prod_stats_t *st = &p->st;
	json_t *j = json_object();
	json_object_set_new(j, "campaign", json_string(p->camp->id));
	json_object_set_new(j, "audience", json_string(p->camp->aud_path));
	json_object_set_new(j, "mode", json_string(p->o.dry ? "preview" : "launch"));
	json_object_set_new(j, "finished", json_boolean(finished));
	json_object_set_new(j, "read", json_integer(st->read));
	json_object_set_new(j, "queued", json_integer(st->queued));
	json_object_set_new(j, "rejected", json_integer(st->rejected));
	json_object_set_new(j, "suppressed", json_integer(st->suppressed));
	json_object_set_new(j, "duplicates", json_integer(st->duplicates));
	json_t *chs = json_object();
	for (int ch = 0; ch < 2; ch++) {
		if (!p->on[ch])
			continue;
		json_t *c = json_object();
		json_object_set_new(c, "queued", json_integer(st->ch_queued[ch]));
		json_object_set_new(c, "rejected", json_integer(st->ch_rejected[ch]));
		json_object_set_new(c, "suppressed", json_integer(st->ch_suppressed[ch]));
		json_object_set_new(c, "duplicates", json_integer(st->ch_duplicates[ch]));
		json_object_set_new(chs, msg_channel_name((msg_channel_t)ch), c);
	}
	json_object_set_new(j, "channels", chs);
	json_object_set_new(j, "rejected_by_reason", reasons_json(st));
	json_object_set_new(j, "produced", json_integer(st->produced));
	json_object_set_new(j, "already_in_outbox", json_integer(st->already));
	json_object_set_new(j, "resumed_from_row", json_integer(st->resumed_rows));
	json_object_set_new(j, "delivery_failures", json_integer(st->delivery_failed));
	json_object_set_new(j, "sms_segments", json_integer(st->segments));
	if (p->on[MSG_CH_EMAIL]) {
		json_t *ef = json_object();
		for (int k = 0; k < EMAIL_INLINE_NREASONS; k++)
			if (k != EMAIL_INLINE_ASKED)
				json_object_set_new(ef, email_inline_name(k), json_integer(st->email_form[k]));
		json_object_set_new(j, "email_forms", ef);
	}
	json_object_set_new(j, "held", json_integer(st->held));
	json_object_set_new(j, "expired_quiet_hours", json_integer(st->expired));
	json_object_set_new(j, "elapsed_s", json_real(st->elapsed_s));
	json_object_set_new(j, "rows_per_s",
	                    json_real(st->elapsed_s > 0 ? (double)st->read / st->elapsed_s : 0));
	json_object_set_new(j, "max_lag", json_integer(st->max_lag_used));
	json_object_set_new(j, "lag_wait_ms", json_integer(st->lag_waits_ms));
	json_object_set_new(j, "rejects_file", json_string(p->rejects_path));
	if (p->o.resend_failed)
		json_object_set_new(j, "resend_failed", json_integer(st->produced)),
		    json_object_set_new(j, "resend_permanent", json_integer(st->resend_permanent)),
		    json_object_set_new(j, "resend_already_requeued", json_integer(st->resend_requeued));
	char tmp[4200];
	snprintf(tmp, sizeof tmp, "%s.tmp", p->report_path);
	if (json_dump_file(j, tmp, JSON_INDENT(2)) || rename(tmp, p->report_path))
		log_warn("event=report_failed path=%s err=\"%s\"", p->report_path, strerror(errno));
	json_decref(j);
}

/* "; N permanent failures left out (invalid number 3, …)" or "…included". */
static void prod_print_permanent(const prod_t *p, FILE *f)
{
	const prod_stats_t *st = &p->st;
	if (!st->resend_permanent)
		return;
	fprintf(f, "; %lld permanent failure%s %s (", (long long)st->resend_permanent,
	        st->resend_permanent == 1 ? "" : "s",
	        p->o.include_permanent ? "included (--include-permanent)"
	                               : "left out (--include-permanent to resend them)");
	for (int i = 0; i < st->nperm; i++)
		fprintf(f, "%s%s %lld", i ? ", " : "", st->perm[i].text, (long long)st->perm[i].n);
	fputc(')', f);
}

/* "; N already re-queued by an earlier --resend-failed (…)". */
static void prod_print_requeued(const prod_t *p, FILE *f)
{
	const prod_stats_t *st = &p->st;
	if (st->resend_requeued && !p->resuming)
		fprintf(f, "; %lld already re-queued by an earlier --resend-failed (not re-queued again)",
		        (long long)st->resend_requeued);
}

int prod_resend_plan(const cfg_t *cfg, const camp_t *camp, const prod_opts_t *o, FILE *out,
                     char *err, size_t errlen)
{
	prod_t *p = calloc(1, sizeof *p);
	if (!p)
		return TOCSIN_ERR_NOMEM;
	p->cfg = cfg;
	p->camp = camp;
	p->o = *o;
	p->o.resend_failed = 1;
	if (p->o.kafka_timeout_ms <= 0)
		p->o.kafka_timeout_ms = 10000;
	int rc = TOCSIN_ERR_NOMEM;
	p->failed = aset_new(1024, 0, err, errlen);
	if (p->failed && !(rc = load_failed(p, err, errlen))) {
		fprintf(out, "campaign %s: --resend-failed --dry-run: would re-queue %lld message%s",
		        camp->id, (long long)p->st.resend_found, p->st.resend_found == 1 ? "" : "s");
		prod_print_permanent(p, out);
		prod_print_requeued(p, out);
		fputs("\n", out);
	}
	aset_free(p->failed);
	free(p);
	return rc;
}

void prod_print_summary(const prod_t *p, FILE *f)
{
	const prod_stats_t *st = &p->st;
	if (st->already_done) {
		fprintf(f,
		        "campaign %s was already launched (%lld recipients queued); nothing new to send.\n"
		        "Use --resend-failed to re-queue the recipients whose messages failed.\n",
		        p->camp->id, (long long)st->queued);
		return;
	}
	if (p->o.resend_failed) {
		/* what was re-queued, not the audience's rows */
		fprintf(f, "campaign %s: --resend-failed: re-queued %lld message%s", p->camp->id,
		        (long long)st->produced, st->produced == 1 ? "" : "s");
		if (st->already)
			fprintf(f, " (%lld already in the outbox)", (long long)st->already);
		fprintf(f, "; %lld failed in tocsin.status", (long long)(st->resend_found));
		prod_print_permanent(p, f);
		prod_print_requeued(p, f);
		fputc('\n', f);
		fprintf(f, "  read %lld rows, rejected %lld, suppressed %lld, duplicates %lld",
		        (long long)st->read, (long long)st->rejected, (long long)st->suppressed,
		        (long long)st->duplicates);
	} else
		fprintf(f, "campaign %s: read %lld, queued %lld, rejected %lld, suppressed %lld, duplicates %lld",
		        p->camp->id, (long long)st->read, (long long)st->queued, (long long)st->rejected,
		        (long long)st->suppressed, (long long)st->duplicates);
	if (!p->o.dry)
		fprintf(f, " (%.2f s, %.0f rows/s)", st->elapsed_s,
		        st->elapsed_s > 0 ? (double)st->read / st->elapsed_s : 0.0);
	fputc('\n', f);
	for (int ch = 0; ch < 2; ch++)
		if (p->on[ch] && p->on[!ch])
			fprintf(f, "  %-5s queued %lld, rejected %lld, suppressed %lld, duplicates %lld\n",
			        msg_channel_name((msg_channel_t)ch), (long long)st->ch_queued[ch],
			        (long long)st->ch_rejected[ch], (long long)st->ch_suppressed[ch],
			        (long long)st->ch_duplicates[ch]);
	if (st->resumed_rows)
		fprintf(f, "  resumed after row %lld; %lld messages were already in the outbox\n",
		        (long long)st->resumed_rows, (long long)st->already);
	if (p->o.resend_failed)
		fprintf(f, "  %lld recipients had not failed (not re-queued)\n",
		        (long long)(st->resend_skipped - (p->resuming ? 0 : st->resend_requeued)));
	if (st->nreasons) {
		fprintf(f, "  rejected by reason:\n");
		for (int i = 0; i < st->nreasons; i++)
			fprintf(f, "    %8lld  %s\n", (long long)st->reasons[i].n, st->reasons[i].text);
		if (st->reasons_other)
			fprintf(f, "    %8lld  (other reasons)\n", (long long)st->reasons_other);
		fprintf(f, "  rejects: %s\n", p->rejects_path);
	}
	if (st->held && !p->o.dry) {
		char a[48], b[48];
		tz_fmt_local(NULL, st->first_due_ms, a, sizeof a);
		tz_fmt_local(NULL, st->last_due_ms, b, sizeof b);
		fprintf(f, "  held %lld for send_at or quiet hours, due %s .. %s UTC (tocsin hold releases them)\n",
		        (long long)st->held, a, b);
	}
	if (st->expired)
		fprintf(f, "  expired %lld: quiet hours do not open before they expire\n", (long long)st->expired);
	if (st->delivery_failed)
		fprintf(f, "  delivery failures: %lld\n", (long long)st->delivery_failed);
	if (p->on[MSG_CH_EMAIL]) {
		int64_t inl = 0;
		for (int k = EMAIL_INLINE_NONE + 1; k < EMAIL_INLINE_NREASONS; k++)
			inl += st->email_form[k];
		fprintf(f, "  email: %lld batched (shared parts + substitutions), %lld inline",
		        (long long)st->email_form[EMAIL_INLINE_NONE], (long long)inl);
		for (int k = EMAIL_INLINE_NONE + 1, first = 1; k < EMAIL_INLINE_NREASONS; k++)
			if (st->email_form[k]) {
				fprintf(f, "%s%s %lld", first ? " (" : ", ", email_inline_name(k),
				        (long long)st->email_form[k]);
				first = 0;
			}
		fprintf(f, "%s\n", inl ? ")" : "");
	}
	fprintf(f, "  report: %s\n", p->report_path);
}

typedef struct when {
	FILE *f;
	double rate;      /* messages per second at the configured rates, 0 = unknown */
	int64_t last_ms;  /* estimate of the last send */
} when_t;

static void print_zone(void *ud, tzdb_set_t *z)
{
	when_t *w = ud;
	char until[48] = "";
	if (!z->now && !z->held)
		return;
	if (z->held)
		tz_fmt_local(z->z[0], z->last_ms, until, sizeof until);
	fprintf(w->f, "  %-40.40s%s now %lld, held %lld%s%s\n", z->key, z->n > 1 ? " (uncertain)" : "",
	        (long long)z->now, (long long)z->held, z->held ? " until " : "", until);
	if (z->held && w->rate > 0 && z->last_ms + (int64_t)(1000.0 * (double)z->held / w->rate) > w->last_ms)
		w->last_ms = z->last_ms + (int64_t)(1000.0 * (double)z->held / w->rate);
}

/* Go now vs held, by zone, and when the last message goes at the configured rates. */
static void print_when(const prod_t *p, FILE *f)
{
	const prod_stats_t *st = &p->st;
	int64_t now = clock_wall_ms();
	char t[48];
	if (p->camp->send_at_ms) {
		tz_fmt_local(NULL, p->camp->send_at_ms, t, sizeof t);
		fprintf(f, "send_at: %s (UTC)%s\n", t, p->camp->send_at_ms <= now ? ", already past: now" : "");
	}
	if (p->camp->qh_urgent)
		fprintf(f, "quiet hours: OFF -- urgent override named in %s (\"quiet_hours\": {\"override\": \"urgent\"})\n",
		        p->camp->path);
	for (int ch = 0; ch < 2; ch++) {
		if (!p->qh_on[ch])
			continue;
		char a[6], b[6];
		tz_fmt_hhmm(p->qh[ch].start, a), tz_fmt_hhmm(p->qh[ch].end, b);
		fprintf(f, "quiet hours: %s only %s-%s recipient local time\n", msg_channel_name((msg_channel_t)ch), a, b);
	}
	double rate = 0;
	for (size_t i = 0; i < p->cfg->nvendors; i++)
		if (p->on[p->cfg->vendors[i].channel])
			rate += p->cfg->vendors[i].rate_per_s;
	int64_t msgs = st->ch_queued[0] + st->ch_queued[1];
	fprintf(f, "when: %lld go now, %lld held", (long long)(msgs - st->held - st->expired), (long long)st->held);
	if (st->held) {
		tz_fmt_local(NULL, st->first_due_ms, t, sizeof t);
		fprintf(f, " (first due %s UTC", t);
		tz_fmt_local(NULL, st->last_due_ms, t, sizeof t);
		fprintf(f, ", last due %s UTC)", t);
	}
	fprintf(f, ", %lld expire before their window opens\n", (long long)st->expired);
	when_t w = {.f = f, .rate = rate, .last_ms = now};
	if (rate > 0)
		w.last_ms = now + (int64_t)(1000.0 * (double)(p->sa_now) / rate);
	if (p->tzdb) {
		fprintf(f, "by zone (the set a recipient may be in):\n");
		tzdb_each(p->tzdb, print_zone, &w);
	}
	if (p->sa_now || p->sa_held)
		fprintf(f, "  %-40s now %lld, held %lld (send_at)\n", "(no quiet hours)", (long long)p->sa_now,
		        (long long)p->sa_held);
	if (p->sa_held && rate > 0 && p->camp->send_at_ms + (int64_t)(1000.0 * (double)p->sa_held / rate) > w.last_ms)
		w.last_ms = p->camp->send_at_ms + (int64_t)(1000.0 * (double)p->sa_held / rate);
	if (rate > 0) {
		tz_fmt_local(NULL, w.last_ms, t, sizeof t);
		fprintf(f, "last message at the configured rates (%.0f/s): about %s UTC\n", rate, t);
	} else {
		fprintf(f, "last message: no rate_per_s configured, cannot estimate\n");
	}
}

void prod_print_preview(const prod_t *p, FILE *f)
{
	const prod_stats_t *st = &p->st;
	fprintf(f, "\n");
	prod_print_summary(p, f);
	print_when(p, f);
	if (p->on[MSG_CH_SMS]) {
		fprintf(f, "sms by encoding: gsm7 %lld, ucs2 %lld\n", (long long)st->by_enc[0],
		        (long long)st->by_enc[1]);
		fprintf(f, "sms segments per message:\n");
		for (int s = 1; s <= PROD_MAX_SEGS; s++)
			if (st->seg_hist[s])
				fprintf(f, "  %2d%s %8lld\n", s, s == PROD_MAX_SEGS ? "+" : " ",
				        (long long)st->seg_hist[s]);
		fprintf(f, "sms segments total: %lld\n", (long long)st->segments);
		fprintf(f, "replaced characters: %lld\n", (long long)st->replaced);
		for (int k = 0; k < SMS_SMART_NKINDS; k++) {
			const char *to = NULL, *from = sms_smart_from(k, &to);
			if (from && st->replaced_kind[k])
				fprintf(f, "  %-6s -> \"%s\"  %u\n", from, to ? to : "", st->replaced_kind[k]);
		}
	}
	fprintf(f, "estimated cost:\n");
	int any = 0;
	for (size_t i = 0; i < p->cfg->nvendors; i++) {
		const cfg_vendor_t *v = &p->cfg->vendors[i];
		if (!p->on[v->channel])
			continue;
		double units = v->channel == MSG_CH_SMS ? (double)st->segments : (double)st->ch_queued[1];
		fprintf(f, "  %-16s %-5s %.4f x %.0f %s = %.2f\n", v->name, msg_channel_name(v->channel),
		        v->cost, units, v->channel == MSG_CH_SMS ? "segments" : "emails", v->cost * units);
		any = 1;
	}
	if (!any)
		fprintf(f, "  (no vendor configured for this campaign's channels)\n");
}

/* ------------------------------------------------------- outbox check */

int prod_check_outbox(const cfg_t *cfg, const camp_t *camp, FILE *out, char *err, size_t errlen)
{
	rd_kafka_t *c = launch_consumer(cfg, camp->id, "check", 10000, err, errlen);
	if (!c)
		return TOCSIN_ERR_KAFKA;
	int on[2] = {camp->sms_on, camp->email_on}, rc = 0;
	for (int ch = 0; ch < 2 && !rc; ch++) {
		if (!on[ch])
			continue;
		int64_t lo[MAXPART];
		kq_read_t r = {.topic = kq_outbox_topic_for((msg_channel_t)ch, camp->priority),
		               .nparts = topic_parts(c, kq_outbox_topic_for((msg_channel_t)ch, camp->priority)),
		               .timeout_ms = 120000, .stop = &tocsin_stop, .lo = lo};
		if (r.nparts < 0)
			r.nparts = 0;
		char e[256] = "";
		outbox_ids_t x = {.camp_id = camp->id, .ids = aset_new(1 << 16, 0, e, sizeof e)};
		int rrc = x.ids ? kq_read(c, &r, on_outbox, &x, e, sizeof e) : TOCSIN_ERR_NOMEM;
		int64_t truncated = 0;
		for (int i = 0; i < r.nparts; i++)
			truncated += lo[i] > 0;
		fprintf(out, "outbox %s: campaign %s: %lld messages, %zu distinct ids, %lld duplicates%s\n",
		        r.topic, camp->id, (long long)x.mine, x.ids ? aset_count(x.ids) : 0,
		        (long long)x.dups,
		        truncated ? " (the log start moved: older messages were dropped by retention)" : "");
		if (rrc == TOCSIN_ERR_TIMEOUT || rrc == TOCSIN_ERR_AGAIN) {
			snprintf(err, errlen, "read only %lld of %lld messages of %s", (long long)r.got,
			         (long long)r.want, r.topic);
			rc = TOCSIN_ERR_TIMEOUT;
		} else if (rrc) {
			snprintf(err, errlen, "%s", e);
			rc = rrc;
		} else if (x.dups) {
			snprintf(err, errlen, "%lld duplicate messages in %s", (long long)x.dups, r.topic);
			rc = 1;
		}
		aset_free(x.ids);
		free(x.a.p);
	}
	rd_kafka_consumer_close(c);
	rd_kafka_destroy(c);
	return rc;
}
