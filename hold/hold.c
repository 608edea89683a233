/* hold.c -- the holding store (<var_dir>/hold.db) and `tocsin hold`, which moves due messages to the outbox. */
#include "hold/hold.h"
#include "core/clock.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/kq.h"
#include "core/log.h"
#include "core/msg.h"
#include "core/pfile.h"
#include "core/sig.h"

#include <fcntl.h>
#include <getopt.h>
#include <sys/file.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HOLD_BATCH 5000 /* rows released per round */
#define HOLD_MAXPART 64
#define HOLD_TOPICS 4 /* the outbox topics: two channels x two lanes */

struct hold {
	sqlite3 *db;
	sqlite3_stmt *put;
	int in_tx;
	char path[4096];
};

static const char *const hold_schema =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=NORMAL;"
    "CREATE TABLE IF NOT EXISTS held("
    " id TEXT PRIMARY KEY, campaign TEXT NOT NULL, topic TEXT NOT NULL, addr TEXT NOT NULL,"
    " due_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL, zones TEXT NOT NULL,"
    " state INTEGER NOT NULL DEFAULT 0, rec BLOB, gen INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX IF NOT EXISTS held_due ON held(state, due_ms);"
    /* the outbox offsets before the batch in state 1 was produced (its in-doubt check) */
    "CREATE TABLE IF NOT EXISTS rel_mark(topic TEXT NOT NULL, part INTEGER NOT NULL,"
    " off INTEGER NOT NULL, PRIMARY KEY(topic, part));";

static int db_err(hold_t *h, char *err, size_t errlen)
{
	snprintf(err, errlen, "%.512s: %.400s", h->path, sqlite3_errmsg(h->db));
	return TOCSIN_ERR_IO;
}

hold_t *hold_open(const cfg_t *cfg, char *err, size_t errlen)
{
	hold_t *h = calloc(1, sizeof *h);
	if (!h) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	snprintf(h->path, sizeof h->path, "%s/hold.db", cfg->var_dir);
	/* recipients' addresses and messages: owner only */
	if (pfile_private(h->path, err, errlen)) {
		hold_close(h);
		return NULL;
	}
	if (sqlite3_open_v2(h->path, &h->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) ||
	    sqlite3_busy_timeout(h->db, 10000) || sqlite3_exec(h->db, hold_schema, NULL, NULL, NULL) ||
	    /* a store made before "gen" existed (fails harmlessly when it is there) */
	    (sqlite3_exec(h->db, "ALTER TABLE held ADD COLUMN gen INTEGER NOT NULL DEFAULT 0", NULL,
	                  NULL, NULL),
	     0) ||
	    sqlite3_prepare_v2(h->db,
	                       "INSERT INTO held(id,campaign,topic,addr,due_ms,expires_ms,zones,rec,gen) "
	                       "VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9) ON CONFLICT(id) DO UPDATE SET "
	                       "state=0, topic=excluded.topic, addr=excluded.addr, due_ms=excluded.due_ms, "
	                       "expires_ms=excluded.expires_ms, zones=excluded.zones, rec=excluded.rec, "
	                       "gen=excluded.gen WHERE ?10 AND held.state>=2 AND excluded.gen>held.gen",
	                       -1, &h->put, NULL)) {
		if (h->db)
			db_err(h, err, errlen);
		else
			snprintf(err, errlen, "%s: cannot open", h->path);
		hold_close(h);
		return NULL;
	}
	return h;
}

void hold_close(hold_t *h)
{
	if (!h)
		return;
	if (h->in_tx)
		sqlite3_exec(h->db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_finalize(h->put);
	sqlite3_close(h->db);
	free(h);
}

int hold_put(hold_t *h, const char *id, const char *campaign, const char *topic, const char *addr,
             int64_t due_ms, int64_t expires_ms, const char *zones, const void *rec, size_t reclen,
             int64_t gen, int rearm)
{
	if (!h->in_tx) {
		if (sqlite3_exec(h->db, "BEGIN", NULL, NULL, NULL))
			return TOCSIN_ERR_IO;
		h->in_tx = 1;
	}
	sqlite3_stmt *q = h->put;
	sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, campaign, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 3, topic, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 4, addr, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 5, due_ms);
	sqlite3_bind_int64(q, 6, expires_ms);
	sqlite3_bind_text(q, 7, zones ? zones : "", -1, SQLITE_STATIC);
	sqlite3_bind_blob(q, 8, rec, (int)reclen, SQLITE_STATIC);
	sqlite3_bind_int64(q, 9, gen);
	sqlite3_bind_int(q, 10, rearm != 0);
	int rc = sqlite3_step(q);
	sqlite3_reset(q);
	return rc == SQLITE_DONE ? 0 : TOCSIN_ERR_IO;
}

int hold_commit(hold_t *h)
{
	if (!h->in_tx)
		return 0;
	h->in_tx = 0;
	return sqlite3_exec(h->db, "COMMIT", NULL, NULL, NULL) ? TOCSIN_ERR_IO : 0;
}

/* ------------------------------------------------------------ the releaser */

typedef struct rel {
	const cfg_t *cfg;
	hold_t *h;
	rd_kafka_t *rk;                 /* producer: outbox and status records */
	rd_kafka_t *watch;              /* follows tocsin.campaigns */
	rd_kafka_t *grp[MSG_CH__COUNT]; /* the dispatcher groups, for their lag */
	json_t *camps;                  /* campaign id -> [state, name] */
	int nparts[HOLD_TOPICS];        /* partitions of each outbox topic, asked once (0 = none) */
	int64_t last_prune;             /* mono ms of the last prune of old rows */
	int64_t failed;                 /* delivery reports with an error in this round */
	int64_t released, cancelled, expired;
	int crash_after_flush; /* tests: $TOCSIN_HOLD_CRASH_AFTER_FLUSH=1 dies like kill -9 after
	                        * a round is acknowledged, before it is recorded released */
	int lock_fd;           /* <var_dir>/hold.db.lock, flock'd: one releaser per store */
	buf_t b;
} rel_t;

static void rel_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk;
	rel_t *r = opaque;
	if (m->err)
		r->failed++;
}

static const char *const rel_topics[HOLD_TOPICS] = {KQ_T_OUTBOX_SMS, KQ_T_OUTBOX_EMAIL,
                                                    KQ_T_OUTBOX_SMS_URGENT, KQ_T_OUTBOX_EMAIL_URGENT};

static int camp_state(rel_t *r, const char *id)
{
	json_t *v = json_object_get(r->camps, id);
	return v ? (int)json_integer_value(json_array_get(v, 0)) : -1;
}

static int on_campaign(void *ud, const rd_kafka_message_t *m)
{
	rel_t *r = ud;
	msg_campaign_t c;
	json_t *hold = NULL;
	char e[128];
	if (!msg_campaign_parse(m->payload, m->len, &c, &hold, e, sizeof e) && c.id)
		json_object_set_new(r->camps, c.id,
		                    json_pack("[isIi]", (int)c.state, c.name ? c.name : c.id,
		                              (json_int_t)c.send_at_ms, c.qh_urgent));
	json_decref(hold);
	return 0;
}

static void watch_poll(rel_t *r, int wait_ms)
{
	for (;;) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(r->watch, wait_ms);
		wait_ms = 0;
		if (!m)
			return;
		if (!m->err)
			on_campaign(r, m);
		rd_kafka_message_destroy(m);
	}
}

/* The campaigns in state st right now, as a SQL list for IN: "'','a','b'" (ids are
 * [A-Za-z0-9._-], checked by the launch; anything else is left out). */
static void camp_list(rel_t *r, int st, buf_t *out)
{
	buf_reset(out);
	buf_append(out, "''", 2);
	const char *k;
	json_t *v;
	json_object_foreach(r->camps, k, v)
	{
		if (json_integer_value(json_array_get(v, 0)) != st ||
		    strspn(k, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") !=
		        strlen(k))
			continue;
		buf_append(out, ",'", 2);
		buf_append(out, k, strlen(k));
		buf_append(out, "'", 1);
	}
	buf_append(out, "", 1);
}

/* Outbox messages not yet committed by the dispatchers, all lanes; -1 unknown. */
static int64_t outbox_lag(rel_t *r)
{
	int64_t lag = 0;
	for (int i = 0; i < HOLD_TOPICS; i++) {
		int np = r->nparts[i];
		int64_t l = np > 0 ? kq_group_lag(r->rk, r->grp[i % 2], rel_topics[i], np) : 0;
		if (l < 0)
			return -1;
		lag += l;
	}
	return lag;
}

/* A status record for a held message that ends without being sent. */
static int produce_final(rel_t *r, const char *id, const char *campaign, const char *topic,
                         const char *addr, msg_state_t st, const char *code, const char *detail)
{
	msg_status_t s = {.id = id,
	                  .campaign = campaign,
	                  .channel = strstr(topic, ".email") ? MSG_CH_EMAIL : MSG_CH_SMS,
	                  .to = addr,
	                  .state = st,
	                  .code = code,
	                  .detail = detail,
	                  .latency_ms = -1,
	                  .ts_ms = clock_wall_ms()};
	buf_reset(&r->b);
	if (msg_status_encode(&s, &r->b))
		return TOCSIN_ERR_INVAL;
	return kq_produce(r->rk, KQ_T_STATUS, id, strlen(id), r->b.p, r->b.len, NULL);
}

/* After a crash between producing a batch and recording it: the rows still in state 1
 * whose record is in the outbox past the marks are released; the others are held again. */
static int on_outbox_rec(void *ud, const rd_kafka_message_t *m)
{
	rel_t *r = ud;
	char *buf = malloc(m->len + 1), e[128];
	msg_out_t o;
	if (!buf)
		return TOCSIN_ERR_NOMEM;
	if (!msg_out_scan(m->payload, m->len, &o, buf, m->len + 1, e, sizeof e) && o.id) {
		sqlite3_stmt *q;
		if (!sqlite3_prepare_v2(r->h->db,
		                        "UPDATE held SET state=2, rec=NULL WHERE id=?1 AND state=1",
		                        -1, &q, NULL)) {
			sqlite3_bind_text(q, 1, o.id, -1, SQLITE_STATIC);
			sqlite3_step(q);
			sqlite3_finalize(q);
		}
	}
	free(buf);
	return 0;
}

static int recover(rel_t *r, char *err, size_t errlen)
{
	sqlite3_stmt *q;
	int n = 0;
	if (sqlite3_prepare_v2(r->h->db, "SELECT count(*) FROM held WHERE state=1", -1, &q, NULL))
		return db_err(r->h, err, errlen);
	if (sqlite3_step(q) == SQLITE_ROW)
		n = sqlite3_column_int(q, 0);
	sqlite3_finalize(q);
	if (!n)
		return 0;
	rd_kafka_t *c = kq_consumer_new(r->cfg, "tocsin-hold-recover", "tocsin-hold-recover", 10000,
	                                err, errlen);
	if (!c)
		return TOCSIN_ERR_KAFKA;
	sqlite3_exec(r->h->db, "BEGIN", NULL, NULL, NULL);
	int rc = 0;
	for (int i = 0; i < HOLD_TOPICS && !rc; i++) {
		int64_t from[HOLD_MAXPART];
		int np = kq_partitions(c, rel_topics[i], 5000), any = 0;
		if (np <= 0)
			continue;
		if (np > HOLD_MAXPART)
			np = HOLD_MAXPART;
		for (int p = 0; p < np; p++)
			from[p] = KQ_READ_SKIP;
		if (sqlite3_prepare_v2(r->h->db, "SELECT part, off FROM rel_mark WHERE topic=?1",
		                       -1, &q, NULL))
			break;
		sqlite3_bind_text(q, 1, rel_topics[i], -1, SQLITE_STATIC);
		while (sqlite3_step(q) == SQLITE_ROW) {
			int p = sqlite3_column_int(q, 0);
			if (p >= 0 && p < np)
				from[p] = sqlite3_column_int64(q, 1), any = 1;
		}
		sqlite3_finalize(q);
		if (!any)
			continue;
		char e[256] = "";
		kq_read_t rd = {.topic = rel_topics[i],
		                .nparts = np,
		                .from = from,
		                .timeout_ms = 120000,
		                .stop = &tocsin_stop};
		rc = kq_read(c, &rd, on_outbox_rec, r, e, sizeof e);
		if (rc)
			snprintf(err, errlen, "in-doubt check of %s: %s", rel_topics[i], e);
	}
	if (!rc)
		sqlite3_exec(r->h->db, "UPDATE held SET state=0 WHERE state=1", NULL, NULL, NULL);
	sqlite3_exec(r->h->db, rc ? "ROLLBACK" : "COMMIT", NULL, NULL, NULL);
	rd_kafka_consumer_close(c);
	rd_kafka_destroy(c);
	log_info("event=hold_recovered in_doubt=%d rc=%d", n, rc);
	return rc;
}

/* Record the outbox's high watermarks: the start of the in-doubt check of the next batch. */
static int mark(rel_t *r)
{
	sqlite3_exec(r->h->db, "DELETE FROM rel_mark", NULL, NULL, NULL);
	for (int i = 0; i < HOLD_TOPICS; i++) {
		int np = r->nparts[i];
		for (int p = 0; p < np && p < HOLD_MAXPART; p++) {
			int64_t lo = 0, hi = 0;
			if (rd_kafka_query_watermark_offsets(r->rk, rel_topics[i], p, &lo, &hi, 5000))
				return TOCSIN_ERR_KAFKA;
			sqlite3_stmt *q;
			if (sqlite3_prepare_v2(r->h->db, "INSERT INTO rel_mark VALUES(?1,?2,?3)",
			                       -1, &q, NULL))
				return TOCSIN_ERR_IO;
			sqlite3_bind_text(q, 1, rel_topics[i], -1, SQLITE_STATIC);
			sqlite3_bind_int(q, 2, p);
			sqlite3_bind_int64(q, 3, hi);
			sqlite3_step(q);
			sqlite3_finalize(q);
		}
	}
	return 0;
}

/* The campaign record "running" for a scheduled campaign whose first messages go now. */
static void camp_running(rel_t *r, const char *id)
{
	json_t *v = json_object_get(r->camps, id);
	if (!v || json_integer_value(json_array_get(v, 0)) != MSG_CAMP_SCHEDULED)
		return;
	msg_campaign_t c = {.id = id,
	                    .name = json_string_value(json_array_get(v, 1)),
	                    .state = MSG_CAMP_RUNNING,
	                    .queued = -1,
	                    .ts_ms = clock_wall_ms(),
	                    .actor = "tocsin-hold",
	                    /* carried on, so the compacted record keeps them (the tracker shows them) */
	                    .send_at_ms = json_integer_value(json_array_get(v, 2)),
	                    .qh_urgent = (int)json_integer_value(json_array_get(v, 3))};
	buf_reset(&r->b);
	if (!msg_campaign_encode(&c, &r->b))
		kq_produce(r->rk, KQ_T_CAMPAIGNS, id, strlen(id), r->b.p, r->b.len, NULL);
	json_array_set_new(v, 0, json_integer(MSG_CAMP_RUNNING));
	log_info("event=campaign_running campaign=%s msg=\"send_at reached\"", id);
}

/* One round: up to HOLD_BATCH held rows that are due (or whose campaign was cancelled) go
 * to the outbox (or end cancelled / expired on tocsin.status). Returns rows done, or <0. */
static int release_round(rel_t *r, int64_t now, buf_t *paused, char *err, size_t errlen)
{
	camp_list(r, MSG_CAMP_PAUSED, paused);
	/* cancelled campaigns' rows go at once, due or not */
	buf_t canc;
	buf_init(&canc, 1 << 20);
	camp_list(r, MSG_CAMP_CANCELLED, &canc);
	buf_t sql;
	buf_init(&sql, 4 << 20);
	int bad = buf_printf(&sql,
	                     "SELECT id, campaign, topic, addr, expires_ms, rec FROM held WHERE state=0 AND "
	                     "(due_ms<=?1 OR campaign IN (%s)) AND campaign NOT IN (%s) "
	                     "ORDER BY due_ms LIMIT %d",
	                     canc.p, paused->p, HOLD_BATCH) ||
	          buf_putc(&sql, 0);
	buf_free(&canc);
	sqlite3_stmt *q = NULL;
	if (bad || sqlite3_prepare_v2(r->h->db, sql.p, -1, &q, NULL)) {
		buf_free(&sql);
		return bad ? TOCSIN_ERR_TOOBIG : db_err(r->h, err, errlen);
	}
	buf_free(&sql);
	sqlite3_bind_int64(q, 1, now);
	/* first the marks and state 1 for the batch, durably; then produce */
	if (sqlite3_exec(r->h->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) || mark(r)) {
		sqlite3_finalize(q);
		sqlite3_exec(r->h->db, "ROLLBACK", NULL, NULL, NULL);
		snprintf(err, errlen, "cannot record the outbox offsets before a release");
		return TOCSIN_ERR_KAFKA;
	}
	sqlite3_stmt *u;
	sqlite3_prepare_v2(r->h->db, "UPDATE held SET state=?2, rec=NULL WHERE id=?1", -1, &u, NULL);
	typedef struct done {
		char id[MSG_ID_LEN + 1];
		int st;
	} done_t;
	done_t *d = malloc(HOLD_BATCH * sizeof *d);
	int n = 0, rc = 0;
	r->failed = 0;
	while (d && !rc && sqlite3_step(q) == SQLITE_ROW) {
		const char *id = (const char *)sqlite3_column_text(q, 0);
		const char *camp = (const char *)sqlite3_column_text(q, 1);
		const char *topic = (const char *)sqlite3_column_text(q, 2);
		const char *addr = (const char *)sqlite3_column_text(q, 3);
		int64_t exp = sqlite3_column_int64(q, 4);
		const void *rec = sqlite3_column_blob(q, 5);
		int reclen = sqlite3_column_bytes(q, 5);
		if (!id || strlen(id) > MSG_ID_LEN || !camp || !topic || !addr)
			continue;
		int st = HOLD_RELEASED;
		if (camp_state(r, camp) == MSG_CAMP_CANCELLED) {
			st = HOLD_CANCELLED;
			rc = produce_final(r, id, camp, topic, addr, MSG_ST_CANCELLED, "cancelled",
			                   "campaign cancelled while the message was held");
		} else if (exp > 0 && now >= exp) {
			st = HOLD_EXPIRED;
			rc = produce_final(r, id, camp, topic, addr, MSG_ST_EXPIRED, "expired",
			                   "expired while held for send_at or quiet hours");
		} else {
			camp_running(r, camp);
			rc = kq_produce(r->rk, topic, addr, strlen(addr), rec, (size_t)reclen, NULL);
		}
		snprintf(d[n].id, sizeof d[n].id, "%s", id);
		d[n++].st = st;
		sqlite3_bind_text(u, 1, id, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int(u, 2, HOLD_RELEASING);
		sqlite3_step(u);
		sqlite3_reset(u);
	}
	sqlite3_finalize(q);
	/* the batch is in state 1 before anything of it can reach a dispatcher */
	if (sqlite3_exec(r->h->db, "COMMIT", NULL, NULL, NULL))
		rc = TOCSIN_ERR_IO;
	if (!rc && n && (kq_flush(r->rk, 60000) || r->failed))
		rc = TOCSIN_ERR_KAFKA;
	if (!rc && n && r->crash_after_flush) {
		log_warn("event=hold_crash_on_purpose n=%d", n);
		raise(SIGKILL);
	}
	if (!rc && n) {
		sqlite3_exec(r->h->db, "BEGIN", NULL, NULL, NULL);
		for (int i = 0; i < n; i++) {
			sqlite3_bind_text(u, 1, d[i].id, -1, SQLITE_STATIC);
			sqlite3_bind_int(u, 2, d[i].st);
			sqlite3_step(u);
			sqlite3_reset(u);
			r->released += d[i].st == HOLD_RELEASED;
			r->cancelled += d[i].st == HOLD_CANCELLED;
			r->expired += d[i].st == HOLD_EXPIRED;
		}
		if (sqlite3_exec(r->h->db, "COMMIT", NULL, NULL, NULL))
			rc = TOCSIN_ERR_IO;
	}
	sqlite3_finalize(u);
	free(d);
	if (rc) {
		snprintf(err, errlen,
		         "release of %d held messages not confirmed by Kafka (%lld delivery "
		         "errors); they stay in doubt and are checked against the outbox",
		         n, (long long)r->failed);
		return rc;
	}
	if (n)
		log_info("event=hold_released n=%d released=%lld cancelled=%lld expired=%lld", n,
		         (long long)r->released, (long long)r->cancelled, (long long)r->expired);
	return n;
}

/* Rows done (released, cancelled, expired) a day past their expiry: no launch of theirs can
 * resume any more (its messages would expire), so the id is no longer needed. 10,000 at a
 * time, at most once a minute. */
static void prune(rel_t *r, int64_t now)
{
	if (clock_mono_ms() - r->last_prune < 60000)
		return;
	r->last_prune = clock_mono_ms();
	sqlite3_stmt *q;
	if (sqlite3_prepare_v2(r->h->db,
	                       "DELETE FROM held WHERE rowid IN (SELECT rowid FROM held WHERE state>=2 "
	                       "AND expires_ms>0 AND expires_ms<?1 LIMIT 10000)",
	                       -1, &q, NULL))
		return;
	sqlite3_bind_int64(q, 1, now - 86400000LL);
	sqlite3_step(q);
	sqlite3_finalize(q);
	int n = sqlite3_changes(r->h->db);
	if (n)
		log_info("event=hold_pruned rows=%d", n);
}

static void hold_usage(FILE *f)
{
	fprintf(f,
	        "usage: tocsin hold\n"
	        "\n"
	        "Release held messages: every message the launch held for its campaign's send_at or\n"
	        "its recipient's quiet hours waits in <var_dir>/hold.db; when it is due this command\n"
	        "produces it to the outbox (at most as far ahead of the dispatchers as the outbox may\n"
	        "hold), or ends it cancelled (campaign cancelled) or expired (past expires_in_s) on\n"
	        "tocsin.status. A paused campaign's messages stay held. Runs until SIGTERM; run one per\n"
	        "var_dir (`tocsin up` starts it). After a crash it checks the batch it was releasing\n"
	        "against the outbox, so nothing is produced twice. See README.md, \"Scheduled sends\n"
	        "and quiet hours\".\n");
}

/* one releaser per store (a second one would take the first one's round for in doubt),
 * then the store, the producer, the campaign watch read to its end, the dispatcher
 * groups (for their lag) and the outbox partitions */
static int rel_open(rel_t *r, char *err, size_t errlen)
{
	const cfg_t *cfg = r->cfg;
	char lock[4200];
	snprintf(lock, sizeof lock, "%s/hold.db.lock", cfg->var_dir);
	r->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (r->lock_fd < 0 || flock(r->lock_fd, LOCK_EX | LOCK_NB)) {
		snprintf(err, errlen,
		         "%.900s: another tocsin hold is releasing this store (one per var_dir)",
		         lock);
		return -1;
	}
	if (!(r->h = hold_open(cfg, err, errlen)))
		return -1;
	rd_kafka_conf_t *conf = kq_conf_new(cfg, KQ_PRODUCER, "tocsin-hold", NULL, err, errlen);
	if (!conf)
		return -1;
	rd_kafka_conf_set_dr_msg_cb(conf, rel_dr);
	rd_kafka_conf_set_opaque(conf, r);
	if (!(r->rk = kq_new(conf, KQ_PRODUCER, 10000, err, errlen)))
		return -1;
	if (!(r->watch = kq_consumer_new(cfg, "tocsin-hold", "tocsin-hold-campaigns", 10000, err,
	                                 errlen)))
		return -1;
	for (int ch = 0; ch < MSG_CH__COUNT; ch++) {
		char gid[64];
		kq_dispatch_group((msg_channel_t)ch, gid, sizeof gid);
		if (!(r->grp[ch] = kq_consumer_new(cfg, "tocsin-hold-lag", gid, 10000, err, errlen)))
			return -1;
	}
	kq_read_t rd = {.topic = KQ_T_CAMPAIGNS,
	                .nparts = kq_partitions(r->watch, KQ_T_CAMPAIGNS, 5000),
	                .timeout_ms = 10000,
	                .keep = 1};
	if (rd.nparts < 0)
		rd.nparts = 0;
	char e[256];
	if (kq_read(r->watch, &rd, on_campaign, r, e, sizeof e))
		log_warn("event=campaign_watch_slow err=\"%s\"", e);
	for (int i = 0; i < HOLD_TOPICS; i++) {
		r->nparts[i] = kq_partitions(r->rk, rel_topics[i], 5000);
		if (r->nparts[i] < 0)
			r->nparts[i] = 0;
	}
	return 0;
}

/* release rounds until SIGTERM: on the embedded broker never further ahead of the
 * dispatchers than the outbox may hold; a failed round is checked again as after a crash */
static void rel_run(rel_t *r, buf_t *paused, char *err, size_t errlen)
{
	int64_t last_log = 0;
	while (!tocsin_stop) {
		watch_poll(r, 0);
		int64_t now = clock_wall_ms();
		int64_t lag = outbox_lag(r), bound = kq_lag_bound(400, 12);
		json_t *bs = json_object_get(r->cfg->kafka, "bootstrap.servers");
		int embedded = !(json_is_string(bs) && json_string_length(bs) > 0);
		if (embedded && (lag < 0 || lag > bound)) {
			if (clock_mono_ms() - last_log > 10000) {
				log_info("event=hold_waiting_for_dispatch lag=%lld bound=%lld",
				         (long long)lag, (long long)bound);
				last_log = clock_mono_ms();
			}
			watch_poll(r, 200);
			continue;
		}
		prune(r, now);
		int n = release_round(r, now, paused, err, errlen);
		if (n < 0) {
			log_error("event=hold_release_failed err=\"%s\"", err);
			if (recover(r, err, errlen))
				log_error("event=hold_recover_failed err=\"%s\"", err);
			watch_poll(r, 1000);
			continue;
		}
		if (n < HOLD_BATCH)
			watch_poll(r, 200);
	}
}

static void rel_close(rel_t *r)
{
	for (int ch = 0; ch < MSG_CH__COUNT; ch++)
		if (r->grp[ch])
			rd_kafka_destroy(r->grp[ch]);
	if (r->watch) {
		rd_kafka_consumer_close(r->watch);
		rd_kafka_destroy(r->watch);
	}
	if (r->rk) {
		rd_kafka_flush(r->rk, 10000);
		rd_kafka_destroy(r->rk);
	}
	hold_close(r->h);
	if (r->lock_fd >= 0)
		close(r->lock_fd);
	json_decref(r->camps);
	buf_free(&r->b);
}

int cmd_hold(cfg_t *cfg, int argc, char **argv)
{
	int o;
	optind = 1;
	static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {0}};
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (o == 'h') {
			hold_usage(stdout);
			return 0;
		}
		hold_usage(stderr);
		return 2;
	}
	if (optind != argc) {
		hold_usage(stderr);
		return 2;
	}
	char err[1024] = "";
	rel_t r = {.cfg = cfg, .camps = json_object(), .lock_fd = -1};
	const char *crash = getenv("TOCSIN_HOLD_CRASH_AFTER_FLUSH");
	r.crash_after_flush = crash && !strcmp(crash, "1");
	buf_init(&r.b, 64 * 1024);
	buf_t paused;
	buf_init(&paused, 1 << 20);
	int code = 1;
	if (!rel_open(&r, err, sizeof err) && !recover(&r, err, sizeof err)) {
		log_info("event=hold_started db=%s", r.h->path);
		rel_run(&r, &paused, err, sizeof err);
		code = 0;
		log_info("event=hold_stopped released=%lld cancelled=%lld expired=%lld",
		         (long long)r.released, (long long)r.cancelled, (long long)r.expired);
	}
	if (code)
		fprintf(stderr, "tocsin hold: %s\n", err);
	rel_close(&r);
	buf_free(&paused);
	return code;
}
