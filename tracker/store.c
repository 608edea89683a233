/* store.c -- the tracker's sqlite store: forward-only message states, batched counters and series. */
#include "tracker/store_int.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/pfile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Latency histogram bucket upper bounds (ms); the last bucket is open. */
static const int lat_bounds[TRK_LAT_BUCKETS - 1] = {10,   25,   50,   100,  200,  300,   500,  750,
                                                    1000, 1500, 2000, 3000, 5000, 10000, 30000};

int trk_lat_bucket(int64_t ms)
{
	for (int i = 0; i < TRK_LAT_BUCKETS - 1; i++)
		if (ms <= lat_bounds[i])
			return i;
	return TRK_LAT_BUCKETS - 1;
}

int trk_lat_bound(int i) { return i < TRK_LAT_BUCKETS - 1 ? lat_bounds[i] : -1; }

static const char schema[] =
    /* Rows live in arrival order (rid), so the receipts of messages sent
     * together update neighbouring pages; the id index is only read on update. */
    "CREATE TABLE IF NOT EXISTS msgs(rid INTEGER PRIMARY KEY, id NOT NULL UNIQUE,"
    " campaign TEXT NOT NULL, channel INTEGER, addr TEXT, state INTEGER NOT NULL,"
    " vendor TEXT NOT NULL DEFAULT '', vendor_ref TEXT, code TEXT, detail TEXT, attempt INTEGER,"
    " ts_ms INTEGER, gen INTEGER NOT NULL DEFAULT 0, gen_ts INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX IF NOT EXISTS msgs_state ON msgs(campaign, state);"
    /* an address index cost the ingest a third of its rate (random inserts);
     * stores made while it existed lose it */
    "DROP INDEX IF EXISTS msgs_addr;"
    "CREATE TABLE IF NOT EXISTS counts(campaign TEXT NOT NULL, channel INTEGER NOT NULL,"
    " vendor TEXT NOT NULL, state INTEGER NOT NULL, n INTEGER NOT NULL,"
    " PRIMARY KEY(campaign, channel, vendor, state)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS codes(campaign TEXT NOT NULL, vendor TEXT NOT NULL,"
    " code TEXT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY(campaign, vendor, code)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS series(sec INTEGER NOT NULL, campaign TEXT NOT NULL,"
    " vendor TEXT NOT NULL, sends INTEGER NOT NULL, receipts INTEGER NOT NULL,"
    " failures INTEGER NOT NULL, lat BLOB, lat_sum INTEGER NOT NULL DEFAULT 0,"
    " errors INTEGER NOT NULL DEFAULT 0, timeouts INTEGER NOT NULL DEFAULT 0,"
    " refused INTEGER NOT NULL DEFAULT 0, throttled INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY(sec, campaign, vendor)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS campaigns(id TEXT PRIMARY KEY, name TEXT, state INTEGER,"
    " queued INTEGER, ts_ms INTEGER, send_at_ms INTEGER, qh_urgent INTEGER);"
    "CREATE TABLE IF NOT EXISTS vendors(name TEXT PRIMARY KEY, state INTEGER, reason TEXT,"
    " by TEXT, p95_ms REAL, error_rate REAL, ts_ms INTEGER);"
    "CREATE TABLE IF NOT EXISTS optouts(channel INTEGER NOT NULL, address TEXT NOT NULL,"
    " optin INTEGER, source TEXT, campaign TEXT, ts_ms INTEGER, PRIMARY KEY(channel, address));"
    "CREATE TABLE IF NOT EXISTS timeline(ts_ms INTEGER, kind TEXT, subject TEXT, detail TEXT,"
    " actor TEXT);"
    "CREATE INDEX IF NOT EXISTS timeline_ts ON timeline(ts_ms);"
    /* all-time latency histogram per vendor (the /metrics histogram: counters
     * that never go back when series are pruned, and no scan of the series) */
    "CREATE TABLE IF NOT EXISTS lat_total(vendor TEXT PRIMARY KEY, lat BLOB,"
    " lat_sum INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS inbound(ts_ms INTEGER, vendor TEXT, from_addr TEXT,"
    " to_addr TEXT, body TEXT, kind TEXT);"
    /* earlier attempts of resent messages (msgs holds the current one) */
    "CREATE TABLE IF NOT EXISTS attempts(rid INTEGER NOT NULL, gen INTEGER NOT NULL,"
    " state INTEGER, vendor TEXT, vendor_ref TEXT, code TEXT, detail TEXT, attempt INTEGER,"
    " ts_ms INTEGER, PRIMARY KEY(rid, gen)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS attempts_ref ON attempts(rid, vendor_ref);";

/* webhook replay memory, in a file of its own (trk_store_open_seen): each key
 * (Mailgun token, sg_event_id, Twilio sid, Vonage sig) is taken once until exp_s */
static const char seen_schema[] =
    "CREATE TABLE IF NOT EXISTS wh_seen(key TEXT PRIMARY KEY, exp_s INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS wh_seen_exp ON wh_seen(exp_s);";
static const char *const seen_sqls[4] = {
    /* a key whose memory expired is taken again (the vendor's window is shorter) */
    ("INSERT INTO wh_seen(key, exp_s) VALUES(?1, ?2) ON CONFLICT(key) DO "
     "UPDATE SET exp_s=excluded.exp_s WHERE wh_seen.exp_s < ?3"),
    "DELETE FROM wh_seen WHERE key=?1", "DELETE FROM wh_seen WHERE exp_s < ?1",
    "SELECT exp_s FROM wh_seen WHERE key=?1"};
#define SEEN_BATCH 256

static const char *const sqls[Q__COUNT] = {
    [Q_GET] = "SELECT state, campaign, vendor, rid, channel, attempt, gen FROM msgs WHERE id=?1",
    [Q_INS] = "INSERT INTO msgs(id,campaign,channel,addr,state,vendor,vendor_ref,code,detail,"
              "attempt,ts_ms) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)",
    [Q_UPD] = "UPDATE msgs SET state=?2, vendor=?3,"
              " vendor_ref=CASE WHEN ?10 AND vendor_ref<>'' THEN vendor_ref ELSE COALESCE(?4,vendor_ref) END,"
              " code=COALESCE(?5,code), detail=COALESCE(?6,detail), attempt=?7, ts_ms=?8,"
              " addr=COALESCE(addr,?9) WHERE rid=?1",
    [Q_REOPEN] = "UPDATE msgs SET state=?2, vendor=?3, vendor_ref=?4, code=?5, detail=?6, attempt=?7,"
                 " ts_ms=?8, gen=gen+1, gen_ts=?8 WHERE rid=?1",
    [Q_MSG] = "SELECT ts_ms, vendor_ref, code, detail, attempt, gen, gen_ts FROM msgs WHERE rid=?1",
    [Q_HIST] = "INSERT OR REPLACE INTO attempts SELECT rid, gen, state, vendor, vendor_ref, code, detail,"
               " attempt, ts_ms FROM msgs WHERE rid=?1",
    [Q_OLDREF] = "SELECT 1 FROM attempts WHERE rid=?1 AND vendor_ref=?2",
    [Q_COUNT] = "INSERT INTO counts VALUES(?1,?2,?3,?4,?5) ON CONFLICT DO UPDATE SET n=n+excluded.n",
    [Q_CODE] = "INSERT INTO codes VALUES(?1,?2,?3,?4) ON CONFLICT DO UPDATE SET n=n+excluded.n",
    [Q_SERIES] = "INSERT INTO series VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12)"
                 " ON CONFLICT DO UPDATE SET "
                 "sends=sends+excluded.sends, receipts=receipts+excluded.receipts, "
                 "failures=failures+excluded.failures, lat=trk_lat_add(lat, excluded.lat),"
                 " lat_sum=lat_sum+excluded.lat_sum, errors=errors+excluded.errors,"
                 " timeouts=timeouts+excluded.timeouts, refused=refused+excluded.refused,"
                 " throttled=throttled+excluded.throttled",
    [Q_FIXCAMP] = "UPDATE msgs SET campaign=?2 WHERE rid=?1",
    [Q_SETREF] = "UPDATE msgs SET vendor_ref=?2 WHERE rid=?1",
    /* send_at_ms and the urgent override stick (hold's "running" record does not carry them) */
    [Q_CAMP] = "INSERT INTO campaigns VALUES(?1,?2,?3,?4,?5,?6,?7) ON CONFLICT(id) DO UPDATE SET "
               "name=COALESCE(excluded.name,name), state=excluded.state,"
               " queued=CASE WHEN excluded.queued>=0 THEN excluded.queued ELSE queued END,"
               " send_at_ms=CASE WHEN excluded.send_at_ms>0 THEN excluded.send_at_ms"
               " ELSE send_at_ms END,"
               " qh_urgent=MAX(COALESCE(qh_urgent,0),excluded.qh_urgent),"
               " ts_ms=excluded.ts_ms WHERE excluded.ts_ms>=ts_ms",
    [Q_VH] = "INSERT INTO vendors VALUES(?1,?2,?3,?4,?5,?6,?7) ON CONFLICT(name) DO UPDATE SET "
             "state=excluded.state, reason=excluded.reason, by=excluded.by,"
             " p95_ms=excluded.p95_ms, error_rate=excluded.error_rate, ts_ms=excluded.ts_ms"
             " WHERE excluded.ts_ms>=ts_ms",
    [Q_OPT] = "INSERT INTO optouts VALUES(?1,?2,?3,?4,?5,?6) ON CONFLICT DO UPDATE SET "
              "optin=excluded.optin, source=excluded.source, campaign=excluded.campaign,"
              " ts_ms=excluded.ts_ms WHERE excluded.ts_ms>=ts_ms",
    [Q_EVENT] = "INSERT INTO timeline(ts_ms, kind, subject, detail, actor) VALUES(?1,?2,?3,?4,?5)",
    [Q_INBOUND] = "INSERT INTO inbound VALUES(?1,?2,?3,?4,?5,?6)",
    [Q_LAT] = "INSERT INTO lat_total VALUES(?1,?2,?3) ON CONFLICT DO UPDATE SET "
              "lat=trk_lat_add(lat, excluded.lat), lat_sum=lat_sum+excluded.lat_sum",
    [Q_BEGIN] = "BEGIN IMMEDIATE",
    [Q_COMMIT] = "COMMIT",
    [Q_ROLLBACK] = "ROLLBACK",
};

/* The latency blob: TRK_LAT_BUCKETS little-endian int64 counts. */
static void blob_get(const void *p, int n, int64_t out[TRK_LAT_BUCKETS])
{
	memset(out, 0, sizeof(int64_t) * TRK_LAT_BUCKETS);
	if (p && n == (int)(sizeof(int64_t) * TRK_LAT_BUCKETS))
		memcpy(out, p, (size_t)n);
}

static void lat_add_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	(void)argc;
	int64_t a[TRK_LAT_BUCKETS], b[TRK_LAT_BUCKETS];
	blob_get(sqlite3_value_blob(argv[0]), sqlite3_value_bytes(argv[0]), a);
	blob_get(sqlite3_value_blob(argv[1]), sqlite3_value_bytes(argv[1]), b);
	for (int i = 0; i < TRK_LAT_BUCKETS; i++)
		a[i] += b[i];
	sqlite3_result_blob(ctx, a, sizeof a, SQLITE_TRANSIENT);
}

/* The interned index of name (1..CACHE_NAMES), 0 when the table is full. */
int store_intern(trk_store_t *s, const char *name)
{
	for (int i = 1; i <= s->nnames; i++)
		if (!strcmp(s->names[i], name))
			return i;
	if (s->nnames >= CACHE_NAMES || strlen(name) > 255)
		return 0;
	char *d = strdup(name);
	if (!d)
		return 0;
	s->names[++s->nnames] = d;
	return s->nnames;
}

static void cache_clear(trk_store_t *s)
{
	if (s->cache)
		memset(s->cache, 0, CACHE_SLOTS * sizeof *s->cache);
}

static int mkdirs(const char *path, char *err, size_t errlen)
{
	char tmp[4096];
	if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp) {
		snprintf(err, errlen, "database path too long: %.100s...", path);
		return TOCSIN_ERR_TOOBIG;
	}
	char *slash = strrchr(tmp, '/');
	if (!slash || slash == tmp)
		return 0;
	*slash = 0;
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(tmp, 0755) && errno != EEXIST)
			goto fail;
		*p = '/';
	}
	if (mkdir(tmp, 0755) && errno != EEXIST)
		goto fail;
	return 0;
fail:
	snprintf(err, errlen, "cannot create directory %s for the database: %s", tmp, strerror(errno));
	return TOCSIN_ERR_IO;
}

/* sqlite's default busy wait (1, 2, 5 ... 100 ms steps, 5 s in all), but a
 * wait is logged: a reader waiting on the writer is what makes an API
 * answer slow. */
static int busy_wait(void *arg, int n)
{
	static const int steps[] = {1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100};
	trk_store_t *s = arg;
	int waited = 0;
	for (int i = 0; i < n; i++)
		waited += steps[i < 12 ? i : 11];
	if (waited >= 5000)
		return 0;
	int ms = steps[n < 12 ? n : 11];
	if (n == 3)
		log_warn("event=db_busy db=%s role=%s waited_ms=%d", s->path,
		         s->readonly ? "reader" : "writer", waited);
	struct timespec ts = {0, (long)ms * 1000000L};
	nanosleep(&ts, NULL);
	return 1;
}

/* A store from before lat_total: sum the series' histograms into it once. */
static int lat_backfill(trk_store_t *s)
{
	sqlite3_stmt *q = NULL;
	int empty = 1, rc = 0;
	if (sqlite3_prepare_v2(s->db, "SELECT 1 FROM lat_total LIMIT 1", -1, &q, NULL) != SQLITE_OK)
		return TOCSIN_ERR_IO;
	empty = sqlite3_step(q) != SQLITE_ROW;
	sqlite3_finalize(q);
	if (!empty)
		return 0;
	if (sqlite3_prepare_v2(s->db,
	                       "SELECT vendor, lat, lat_sum FROM series WHERE vendor<>'' ORDER BY vendor",
	                       -1, &q, NULL) != SQLITE_OK)
		return TOCSIN_ERR_IO;
	char cur[256] = "";
	int64_t h[TRK_LAT_BUCKETS] = {0}, sum = 0;
	sqlite3_exec(s->db, "BEGIN", NULL, NULL, NULL);
	for (int more = 1; more && !rc;) {
		more = sqlite3_step(q) == SQLITE_ROW;
		const char *v = more ? (const char *)sqlite3_column_text(q, 0) : "";
		if (!more || strcmp(cur, v ? v : "")) {
			if (cur[0]) {
				sqlite3_stmt *w = s->q[Q_LAT];
				sqlite3_bind_text(w, 1, cur, -1, SQLITE_STATIC);
				sqlite3_bind_blob(w, 2, h, sizeof h, SQLITE_STATIC);
				sqlite3_bind_int64(w, 3, sum);
				rc = store_step_done(s, w);
			}
			if (!more)
				break;
			snprintf(cur, sizeof cur, "%s", v ? v : "");
			memset(h, 0, sizeof h);
			sum = 0;
		}
		int64_t b[TRK_LAT_BUCKETS];
		blob_get(sqlite3_column_blob(q, 1), sqlite3_column_bytes(q, 1), b);
		for (int k = 0; k < TRK_LAT_BUCKETS; k++)
			h[k] += b[k];
		sum += sqlite3_column_int64(q, 2);
	}
	sqlite3_finalize(q);
	sqlite3_exec(s->db, rc ? "ROLLBACK" : "COMMIT", NULL, NULL, NULL);
	return rc;
}

/* 1 when table has column col, 0 when not, -1 when there is no such table. */
static int has_col(sqlite3 *db, const char *table, const char *col)
{
	char sql[128];
	snprintf(sql, sizeof sql, "PRAGMA table_info(%s)", table);
	sqlite3_stmt *q = NULL;
	int tbl = -1, yes = 0;
	if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) == SQLITE_OK)
		while (sqlite3_step(q) == SQLITE_ROW) {
			tbl = 0;
			const unsigned char *n = sqlite3_column_text(q, 1);
			yes |= n && !strcmp((const char *)n, col);
		}
	sqlite3_finalize(q);
	return tbl < 0 ? -1 : yes;
}

/* Bring a store made by an earlier tracker to this schema: messages' attempt
 * generation, the answer columns of the series, a campaign's send_at and urgent
 * override, the channel of the counts (rebuilt from the messages). Before the schema statements. */
static int migrate(trk_store_t *s, char **e)
{
	int rc = SQLITE_OK;
	if (has_col(s->db, "msgs", "gen") == 0)
		rc = sqlite3_exec(s->db,
		                  "ALTER TABLE msgs ADD COLUMN gen INTEGER NOT NULL DEFAULT 0;"
		                  "ALTER TABLE msgs ADD COLUMN gen_ts INTEGER NOT NULL DEFAULT 0;",
		                  NULL, NULL, e);
	if (rc == SQLITE_OK && has_col(s->db, "series", "errors") == 0)
		rc = sqlite3_exec(s->db,
		                  "ALTER TABLE series ADD COLUMN errors INTEGER NOT NULL DEFAULT 0;"
		                  "ALTER TABLE series ADD COLUMN timeouts INTEGER NOT NULL DEFAULT 0;"
		                  "ALTER TABLE series ADD COLUMN refused INTEGER NOT NULL DEFAULT 0;"
		                  "ALTER TABLE series ADD COLUMN throttled INTEGER NOT NULL DEFAULT 0;",
		                  NULL, NULL, e);
	if (rc == SQLITE_OK && has_col(s->db, "timeline", "actor") == 0)
		rc = sqlite3_exec(s->db, "ALTER TABLE timeline ADD COLUMN actor TEXT;", NULL, NULL, e);
	if (rc == SQLITE_OK && has_col(s->db, "campaigns", "send_at_ms") == 0)
		rc = sqlite3_exec(s->db,
		                  "ALTER TABLE campaigns ADD COLUMN send_at_ms INTEGER;"
		                  "ALTER TABLE campaigns ADD COLUMN qh_urgent INTEGER;",
		                  NULL, NULL, e);
	if (rc == SQLITE_OK && has_col(s->db, "counts", "channel") == 0)
		rc = sqlite3_exec(s->db,
		                  "BEGIN; DROP TABLE counts;"
		                  "CREATE TABLE counts(campaign TEXT NOT NULL, channel INTEGER NOT NULL,"
		                  " vendor TEXT NOT NULL, state INTEGER NOT NULL, n INTEGER NOT NULL,"
		                  " PRIMARY KEY(campaign, channel, vendor, state)) WITHOUT ROWID;"
		                  "INSERT INTO counts SELECT campaign, COALESCE(channel, 0), vendor, state,"
		                  " COUNT(*) FROM msgs GROUP BY 1, 2, 3, 4; COMMIT;",
		                  NULL, NULL, e);
	return rc;
}

trk_store_t *trk_store_open(const char *path, int readonly, char *err, size_t errlen)
{
	if (readonly && access(path, F_OK) != 0) {
		snprintf(err, errlen,
		         "no tracker database at %s (has `tocsin track` run with this config?)", path);
		return NULL;
	}
	if (!readonly && mkdirs(path, err, errlen))
		return NULL;
	/* recipients' numbers and addresses: owner only */
	if (!readonly && pfile_private(path, err, errlen))
		return NULL;
	trk_store_t *s = calloc(1, sizeof *s);
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->readonly = readonly;
	s->path = strdup(path);
	int flags = readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
	flags |= SQLITE_OPEN_NOMUTEX;
	if (sqlite3_open_v2(path, &s->db, flags, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "cannot open database %s: %s", path,
		         s->db ? sqlite3_errmsg(s->db) : "out of memory");
		trk_store_free(s);
		return NULL;
	}
	sqlite3_busy_handler(s->db, busy_wait, s);
	sqlite3_create_function(s->db, "trk_lat_add", 2, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
	                        lat_add_fn, NULL, NULL);
	char *e = NULL;
	if (!readonly) {
		if (sqlite3_exec(s->db,
		                 "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
		                 " PRAGMA cache_size=-262144; PRAGMA temp_store=MEMORY;"
		                 " PRAGMA mmap_size=1073741824; PRAGMA wal_autocheckpoint=20000;",
		                 NULL, NULL, &e) != SQLITE_OK ||
		    migrate(s, &e) != SQLITE_OK ||
		    sqlite3_exec(s->db, schema, NULL, NULL, &e) != SQLITE_OK) {
			snprintf(err, errlen, "cannot set up database %s: %s", path, e ? e : "?");
			sqlite3_free(e);
			trk_store_free(s);
			return NULL;
		}
		for (int i = 0; i < Q__COUNT; i++) {
			if (sqlite3_prepare_v3(s->db, sqls[i], -1, SQLITE_PREPARE_PERSISTENT,
			                       &s->q[i], NULL) != SQLITE_OK) {
				snprintf(err, errlen, "database %s: prepare: %s", path,
				         sqlite3_errmsg(s->db));
				trk_store_free(s);
				return NULL;
			}
		}
		if (lat_backfill(s)) {
			snprintf(err, errlen, "database %s: filling lat_total: %s", path,
			         sqlite3_errmsg(s->db));
			trk_store_free(s);
			return NULL;
		}
		s->agg = calloc(AGG_SLOTS, sizeof *s->agg);
		if (!s->agg) {
			snprintf(err, errlen, "out of memory");
			trk_store_free(s);
			return NULL;
		}
	} else {
		/* A reader must see a readable schema: a database file from
		 * something else is reported, not crashed on. */
		sqlite3_stmt *st = NULL;
		if (sqlite3_prepare_v2(s->db, "SELECT 1 FROM counts LIMIT 1", -1, &st, NULL) !=
		    SQLITE_OK) {
			snprintf(err, errlen, "%s is not a tracker database: %s", path,
			         sqlite3_errmsg(s->db));
			sqlite3_finalize(st);
			trk_store_free(s);
			return NULL;
		}
		sqlite3_finalize(st);
		/* Readers map the file (no read() copy per page) and keep a
		 * warm page cache of their own: the API's answers stay fast
		 * beside the writer. */
		sqlite3_exec(s->db, "PRAGMA mmap_size=268435456; PRAGMA cache_size=-16384;", NULL,
		             NULL, NULL);
	}
	return s;
}

trk_store_t *trk_store_open_seen(const char *path, char *err, size_t errlen)
{
	if (mkdirs(path, err, errlen) || pfile_private(path, err, errlen))
		return NULL;
	trk_store_t *s = calloc(1, sizeof *s);
	if (!s || !(s->path = strdup(path))) {
		free(s);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	char *e = NULL;
	if (sqlite3_open_v2(path, &s->db,
	                    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
	                    NULL) != SQLITE_OK ||
	    sqlite3_exec(s->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", NULL, NULL,
	                 &e) != SQLITE_OK ||
	    sqlite3_exec(s->db, seen_schema, NULL, NULL, &e) != SQLITE_OK ||
	    sqlite3_prepare_v3(s->db, seen_sqls[0], -1, SQLITE_PREPARE_PERSISTENT, &s->seen_q[0], NULL) ||
	    sqlite3_prepare_v3(s->db, seen_sqls[1], -1, SQLITE_PREPARE_PERSISTENT, &s->seen_q[1], NULL) ||
	    sqlite3_prepare_v3(s->db, seen_sqls[2], -1, SQLITE_PREPARE_PERSISTENT, &s->seen_q[2], NULL) ||
	    sqlite3_prepare_v3(s->db, seen_sqls[3], -1, SQLITE_PREPARE_PERSISTENT, &s->seen_q[3], NULL) ||
	    !(s->pend = calloc(SEEN_BATCH, sizeof *s->pend))) {
		snprintf(err, errlen, "cannot set up %s: %s", path,
		         e       ? e
		         : s->db ? sqlite3_errmsg(s->db)
		                 : "out of memory");
		sqlite3_free(e);
		trk_store_free(s);
		return NULL;
	}
	sqlite3_busy_handler(s->db, busy_wait, s);
	return s;
}

void trk_store_free(trk_store_t *s)
{
	if (!s)
		return;
	if (s->in_tx && s->q[Q_ROLLBACK]) {
		sqlite3_step(s->q[Q_ROLLBACK]);
		sqlite3_reset(s->q[Q_ROLLBACK]);
	}
	for (int i = 0; i < Q__COUNT; i++)
		sqlite3_finalize(s->q[i]);
	if (s->npend)
		trk_store_seen_flush(s);
	free(s->pend);
	for (int i = 0; i < 4; i++)
		sqlite3_finalize(s->seen_q[i]);
	if (s->db)
		sqlite3_close(s->db);
	free(s->agg);
	free(s->cache);
	for (int i = 1; i <= s->nnames; i++)
		free(s->names[i]);
	free(s->path);
	free(s);
}

sqlite3 *trk_store_db(trk_store_t *s) { return s->db; }
int trk_store_in_tx(const trk_store_t *s) { return s->in_tx; }

int store_step_done(trk_store_t *s, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		log_error("event=db_error db=%s err=\"%s\"", s->path, sqlite3_errmsg(s->db));
		return TOCSIN_ERR_IO;
	}
	return 0;
}

int trk_store_begin(trk_store_t *s)
{
	if (s->readonly || s->in_tx)
		return TOCSIN_ERR_STATE;
	int rc = store_step_done(s, s->q[Q_BEGIN]);
	if (!rc)
		s->in_tx = 1;
	return rc;
}

static int agg_flush(trk_store_t *s)
{
	int rc = 0;
	for (size_t i = 0; i < AGG_SLOTS && !rc; i++) {
		agg_t *a = &s->agg[i];
		if (!a->used)
			continue;
		const char *camp = a->key;
		const char *vendor = camp + strlen(camp) + 1;
		sqlite3_stmt *q;
		if (a->kind == AGG_COUNT) {
			if (a->n == 0)
				continue;
			q = s->q[Q_COUNT];
			sqlite3_bind_text(q, 1, camp, -1, SQLITE_STATIC);
			sqlite3_bind_int64(q, 2, a->sec); /* the channel */
			sqlite3_bind_text(q, 3, vendor, -1, SQLITE_STATIC);
			sqlite3_bind_int(q, 4, a->state);
			sqlite3_bind_int64(q, 5, a->n);
		} else if (a->kind == AGG_CODE) {
			q = s->q[Q_CODE];
			sqlite3_bind_text(q, 1, camp, -1, SQLITE_STATIC);
			sqlite3_bind_text(q, 2, vendor, -1, SQLITE_STATIC);
			sqlite3_bind_text(q, 3, vendor + strlen(vendor) + 1, -1, SQLITE_STATIC);
			sqlite3_bind_int64(q, 4, a->n);
		} else if (a->kind == AGG_LAT) {
			q = s->q[Q_LAT];
			sqlite3_bind_text(q, 1, vendor, -1, SQLITE_STATIC);
			sqlite3_bind_blob(q, 2, a->lat, sizeof a->lat, SQLITE_STATIC);
			sqlite3_bind_int64(q, 3, a->lat_sum);
		} else {
			q = s->q[Q_SERIES];
			sqlite3_bind_int64(q, 1, a->sec);
			sqlite3_bind_text(q, 2, camp, -1, SQLITE_STATIC);
			sqlite3_bind_text(q, 3, vendor, -1, SQLITE_STATIC);
			sqlite3_bind_int64(q, 4, a->sends);
			sqlite3_bind_int64(q, 5, a->receipts);
			sqlite3_bind_int64(q, 6, a->failures);
			sqlite3_bind_blob(q, 7, a->lat, sizeof a->lat, SQLITE_STATIC);
			sqlite3_bind_int64(q, 8, a->lat_sum);
			sqlite3_bind_int64(q, 9, a->ans[TRK_ANS_ERROR]);
			sqlite3_bind_int64(q, 10, a->ans[TRK_ANS_TIMEOUT]);
			sqlite3_bind_int64(q, 11, a->ans[TRK_ANS_REFUSED]);
			sqlite3_bind_int64(q, 12, a->ans[TRK_ANS_THROTTLED]);
		}
		rc = store_step_done(s, q);
	}
	memset(s->agg, 0, AGG_SLOTS * sizeof *s->agg);
	s->nagg = 0;
	return rc;
}

agg_t *store_agg_slot(trk_store_t *s, int kind, const char *campaign, const char *vendor,
                      const char *extra, int state, int64_t sec)
{
	char key[AGG_KEY];
	size_t cl = strnlen(campaign, 80), vl = strnlen(vendor, 60),
	       el = extra ? strnlen(extra, 40) : 0;
	size_t klen = 0;
	memcpy(key, campaign, cl);
	key[cl] = 0;
	memcpy(key + cl + 1, vendor, vl);
	key[cl + 1 + vl] = 0;
	klen = cl + vl + 2;
	if (extra) {
		memcpy(key + klen, extra, el);
		key[klen + el] = 0;
		klen += el + 1;
	}
	uint64_t h = hash64(key, klen,
	                    (uint64_t)kind * 1000003u + (uint64_t)state * 7919u + (uint64_t)sec);
	if (!s->in_tx || kind < AGG_COUNT || kind > AGG_LAT)
		tocsin_panic("aggregate of kind %d outside a transaction (in_tx=%d)", kind, s->in_tx);
	if (s->nagg >= AGG_SLOTS * 3 / 4 && agg_flush(s))
		return NULL;
	if (s->nagg >= AGG_SLOTS)
		tocsin_panic("%zu aggregation slots of %d in use", (size_t)s->nagg, AGG_SLOTS);
	for (size_t i = h & (AGG_SLOTS - 1);; i = (i + 1) & (AGG_SLOTS - 1)) {
		agg_t *a = &s->agg[i];
		if (!a->used) {
			a->used = 1;
			a->h = h;
			a->kind = kind;
			a->state = state;
			a->sec = sec;
			memcpy(a->key, key, klen);
			a->klen = klen;
			s->nagg++;
			return a;
		}
		if (a->h == h && a->kind == kind && a->state == state && a->sec == sec &&
		    a->klen == klen && !memcmp(a->key, key, klen))
			return a;
	}
}

int trk_store_commit(trk_store_t *s)
{
	if (!s->in_tx)
		return TOCSIN_ERR_STATE;
	int rc = agg_flush(s);
	if (!rc)
		rc = store_step_done(s, s->q[Q_COMMIT]);
	if (rc) {
		store_step_done(s, s->q[Q_ROLLBACK]);
		cache_clear(s);
		memset(s->agg, 0, AGG_SLOTS * sizeof *s->agg);
		s->nagg = 0;
	}
	s->in_tx = 0;
	return rc;
}

void store_bind_opt(sqlite3_stmt *q, int i, const char *v)
{
	if (v)
		sqlite3_bind_text(q, i, v, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(q, i);
}

/* Our ids are 32 hex digits: stored as 16-byte blobs (a smaller id index);
 * anything else is stored as the text it is. */
int store_bind_id(sqlite3_stmt *q, int i, const char *id, unsigned char raw[16])
{
	size_t n = strlen(id);
	if (n == 32) {
		int ok = 1;
		for (size_t k = 0; k < 32 && ok; k++) {
			char c = id[k];
			int v = c >= '0' && c <= '9'   ? c - '0'
			        : c >= 'a' && c <= 'f' ? c - 'a' + 10
			                               : -1;
			if (v < 0)
				ok = 0;
			else if (k % 2 == 0)
				raw[k / 2] = (unsigned char)(v << 4);
			else
				raw[k / 2] |= (unsigned char)v;
		}
		if (ok) {
			if (q)
				sqlite3_bind_blob(q, i, raw, 16, SQLITE_STATIC);
			return 1;
		}
	}
	if (q)
		sqlite3_bind_text(q, i, id, (int)n, SQLITE_STATIC);
	return 0;
}

int trk_store_campaign(trk_store_t *s, const msg_campaign_t *c)
{
	sqlite3_stmt *q = s->q[Q_CAMP];
	sqlite3_bind_text(q, 1, c->id, -1, SQLITE_STATIC);
	store_bind_opt(q, 2, c->name);
	sqlite3_bind_int(q, 3, c->state);
	sqlite3_bind_int64(q, 4, c->queued);
	sqlite3_bind_int64(q, 5, c->ts_ms);
	sqlite3_bind_int64(q, 6, c->send_at_ms > 0 ? c->send_at_ms : 0);
	sqlite3_bind_int(q, 7, c->qh_urgent != 0);
	int rc = store_step_done(s, q);
	if (!rc && sqlite3_changes(s->db) > 0) {
		char d[160];
		snprintf(d, sizeof d, "campaign %s%s%.64s", msg_camp_state_name(c->state),
		         c->actor ? " by " : "", c->actor ? c->actor : "");
		rc = trk_store_event(s, c->ts_ms, "campaign", c->id, d, c->actor);
	}
	return rc;
}

int trk_store_vhealth(trk_store_t *s, const msg_vhealth_t *h)
{
	/* Only a change of state goes on the timeline. */
	int prev = -1;
	sqlite3_stmt *g = NULL;
	if (sqlite3_prepare_v2(s->db, "SELECT state FROM vendors WHERE name=?1", -1, &g, NULL) ==
	    SQLITE_OK) {
		sqlite3_bind_text(g, 1, h->vendor, -1, SQLITE_STATIC);
		if (sqlite3_step(g) == SQLITE_ROW)
			prev = sqlite3_column_int(g, 0);
	}
	sqlite3_finalize(g);
	sqlite3_stmt *q = s->q[Q_VH];
	sqlite3_bind_text(q, 1, h->vendor, -1, SQLITE_STATIC);
	sqlite3_bind_int(q, 2, h->state);
	store_bind_opt(q, 3, h->reason);
	store_bind_opt(q, 4, h->by);
	sqlite3_bind_double(q, 5, h->p95_ms);
	sqlite3_bind_double(q, 6, h->error_rate);
	sqlite3_bind_int64(q, 7, h->ts_ms);
	int rc = store_step_done(s, q);
	if (!rc && sqlite3_changes(s->db) > 0 && prev != (int)h->state) {
		char d[400];
		snprintf(d, sizeof d, "%s -> %s by %s%s%.64s%s: %s",
		         prev >= 0 ? msg_vh_state_name(prev) : "new", msg_vh_state_name(h->state),
		         h->by ? h->by : "?", h->actor ? " (" : "", h->actor ? h->actor : "",
		         h->actor ? ")" : "", h->reason ? h->reason : "");
		rc = trk_store_event(s, h->ts_ms, "vendor", h->vendor, d, h->actor);
	}
	return rc;
}

int trk_store_optout(trk_store_t *s, const msg_optout_t *o)
{
	sqlite3_stmt *q = s->q[Q_OPT];
	sqlite3_bind_int(q, 1, o->channel);
	sqlite3_bind_text(q, 2, o->address, -1, SQLITE_STATIC);
	sqlite3_bind_int(q, 3, o->optin);
	store_bind_opt(q, 4, o->source);
	store_bind_opt(q, 5, o->campaign);
	sqlite3_bind_int64(q, 6, o->ts_ms);
	return store_step_done(s, q);
}

int trk_store_event(trk_store_t *s, int64_t ts_ms, const char *kind, const char *subject,
                    const char *detail, const char *actor)
{
	sqlite3_stmt *q = s->q[Q_EVENT];
	sqlite3_bind_int64(q, 1, ts_ms > 0 ? ts_ms : clock_wall_ms());
	store_bind_opt(q, 2, kind);
	store_bind_opt(q, 3, subject);
	store_bind_opt(q, 4, detail);
	store_bind_opt(q, 5, actor);
	return store_step_done(s, q);
}

int trk_store_inbound(trk_store_t *s, int64_t ts_ms, const char *vendor, const char *from,
                      const char *to, const char *body, const char *kind)
{
	sqlite3_stmt *q = s->q[Q_INBOUND];
	sqlite3_bind_int64(q, 1, ts_ms > 0 ? ts_ms : clock_wall_ms());
	store_bind_opt(q, 2, vendor);
	store_bind_opt(q, 3, from);
	store_bind_opt(q, 4, to);
	store_bind_opt(q, 5, body);
	store_bind_opt(q, 6, kind);
	return store_step_done(s, q);
}

/* ---- reads ---- */

int trk_store_counts(trk_store_t *s, const char *campaign, trk_counts_t *out)
{
	memset(out, 0, sizeof *out);
	sqlite3_stmt *q = NULL;
	if (sqlite3_prepare_v2(s->db,
	                       "SELECT vendor, state, SUM(n), channel FROM counts WHERE campaign=?1"
	                       " GROUP BY vendor, state, channel ORDER BY vendor, state",
	                       -1, &q, NULL) != SQLITE_OK) {
		log_error("event=db_error err=\"%s\"", sqlite3_errmsg(s->db));
		return TOCSIN_ERR_IO;
	}
	sqlite3_bind_text(q, 1, campaign, -1, SQLITE_STATIC);
	int rc, any = 0;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		any = 1;
		const char *v = (const char *)sqlite3_column_text(q, 0);
		int st = sqlite3_column_int(q, 1);
		int64_t n = sqlite3_column_int64(q, 2);
		if ((unsigned)st >= MSG_ST__COUNT || n == 0)
			continue;
		v = v ? v : "";
		size_t k = 0;
		while (k < out->nvendors && strcmp(out->vendors[k], v))
			k++;
		if (k == out->nvendors && k < TRK_MAX_VENDORS) {
			snprintf(out->vendors[k], sizeof out->vendors[k], "%s", v);
			out->nvendors++;
		}
		if (k < TRK_MAX_VENDORS)
			out->by_vendor[k][st] += n;
		int ch = sqlite3_column_int(q, 3);
		if ((unsigned)ch < MSG_CH__COUNT)
			out->by_channel[ch][st] += n;
		out->states[st] += n;
		out->total += n;
	}
	sqlite3_finalize(q);
	if (rc != SQLITE_DONE) {
		log_error("event=db_error err=\"%s\"", sqlite3_errmsg(s->db));
		return TOCSIN_ERR_IO;
	}
	if (!any) {
		if (sqlite3_prepare_v2(s->db, "SELECT 1 FROM campaigns WHERE id=?1", -1, &q, NULL) !=
		    SQLITE_OK)
			return TOCSIN_ERR_IO;
		sqlite3_bind_text(q, 1, campaign, -1, SQLITE_STATIC);
		any = sqlite3_step(q) == SQLITE_ROW;
		sqlite3_finalize(q);
	}
	return any ? 0 : TOCSIN_ERR_NOTFOUND;
}

static int states_json(const int64_t *states, buf_t *b)
{
	int rc = buf_putc(b, '{'), first = 1;
	for (int i = 0; i < MSG_ST__COUNT && !rc; i++) {
		if (!states[i])
			continue;
		if (!first)
			rc |= buf_putc(b, ',');
		first = 0;
		rc |= buf_printf(b, "\"%s\":%lld", msg_state_name((msg_state_t)i),
		                 (long long)states[i]);
	}
	return rc | buf_putc(b, '}');
}

int trk_counts_json(const char *campaign, const trk_counts_t *c, buf_t *b)
{
	int rc = buf_puts(b, "{\"campaign\":");
	rc |= buf_json_str(b, campaign, strlen(campaign));
	rc |= buf_printf(b, ",\"total\":%lld,\"states\":", (long long)c->total);
	rc |= states_json(c->states, b);
	rc |= buf_puts(b, ",\"vendors\":{");
	int first = 1;
	for (size_t k = 0; k < c->nvendors; k++) {
		if (!c->vendors[k][0])
			continue;
		if (!first)
			rc |= buf_putc(b, ',');
		first = 0;
		rc |= buf_json_str(b, c->vendors[k], strlen(c->vendors[k]));
		rc |= buf_putc(b, ':');
		rc |= states_json(c->by_vendor[k], b);
	}
	rc |= buf_puts(b, "}}");
	return rc ? TOCSIN_ERR_TOOBIG : 0;
}

int trk_store_msg_info(trk_store_t *s, const char *id, char *camp, size_t camplen, char *vendor,
                       size_t vendorlen, char *ref, size_t reflen)
{
	camp[0] = 0;
	if (vendor)
		vendor[0] = 0;
	if (ref)
		ref[0] = 0;
	sqlite3_stmt *q = NULL;
	if (sqlite3_prepare_v2(s->db, "SELECT campaign, vendor, vendor_ref FROM msgs WHERE id=?1",
	                       -1, &q, NULL) != SQLITE_OK) {
		sqlite3_finalize(q);
		return TOCSIN_ERR_IO;
	}
	unsigned char raw[16];
	store_bind_id(q, 1, id, raw);
	int rc = TOCSIN_ERR_NOTFOUND;
	if (sqlite3_step(q) == SQLITE_ROW) {
		const unsigned char *c = sqlite3_column_text(q, 0), *v = sqlite3_column_text(q, 1),
		                    *r = sqlite3_column_text(q, 2);
		snprintf(camp, camplen, "%s", c ? (const char *)c : "");
		if (vendor)
			snprintf(vendor, vendorlen, "%s", v ? (const char *)v : "");
		if (ref)
			snprintf(ref, reflen, "%s", r ? (const char *)r : "");
		rc = 0;
	}
	sqlite3_finalize(q);
	return rc;
}

int trk_store_msg_earlier(trk_store_t *s, const char *id,
                          int (*fn)(void *ctx, const char *vendor, const char *ref), void *ctx)
{
	sqlite3_stmt *q = NULL;
	if (sqlite3_prepare_v2(s->db,
	                       "SELECT a.vendor, a.vendor_ref FROM attempts a JOIN msgs m ON m.rid=a.rid"
	                       " WHERE m.id=?1",
	                       -1, &q, NULL) != SQLITE_OK) {
		sqlite3_finalize(q);
		return TOCSIN_ERR_IO;
	}
	unsigned char raw[16];
	store_bind_id(q, 1, id, raw);
	int hit = 0;
	while (!hit && sqlite3_step(q) == SQLITE_ROW) {
		const unsigned char *v = sqlite3_column_text(q, 0), *r = sqlite3_column_text(q, 1);
		hit = fn(ctx, v ? (const char *)v : "", r ? (const char *)r : "") ? 1 : 0;
	}
	sqlite3_finalize(q);
	return hit;
}

int trk_store_msg_campaign(trk_store_t *s, const char *id, char *out, size_t outlen)
{
	return trk_store_msg_info(s, id, out, outlen, NULL, 0, NULL, 0);
}

int trk_store_seen_flush(trk_store_t *s)
{
	if (!s->npend)
		return 0;
	int rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK
	             ? 0
	             : TOCSIN_ERR_IO;
	sqlite3_stmt *q = s->seen_q[0];
	for (size_t i = 0; i < s->npend && !rc; i++) {
		sqlite3_bind_text(q, 1, s->pend[i].key, -1, SQLITE_STATIC);
		sqlite3_bind_int64(q, 2, s->pend[i].exp_s);
		sqlite3_bind_int64(q, 3, s->pend[i].exp_s); /* an expired row is replaced */
		if (sqlite3_step(q) != SQLITE_DONE)
			rc = TOCSIN_ERR_IO;
		sqlite3_reset(q);
	}
	sqlite3_clear_bindings(q);
	if (!rc && sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		rc = TOCSIN_ERR_IO;
	if (rc) {
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		log_error("event=db_error db=%s err=\"%s\" keys_lost=%zu", s->path,
		          sqlite3_errmsg(s->db), s->npend);
	}
	int64_t before = s->seen_n / 4096;
	s->seen_n += (int64_t)s->npend;
	s->npend = 0;
	if (s->seen_n / 4096 != before) { /* the file holds about one window's worth */
		q = s->seen_q[2];
		sqlite3_bind_int64(q, 1, s->seen_now);
		sqlite3_step(q);
		sqlite3_reset(q);
	}
	return rc;
}

int trk_store_seen_peek(trk_store_t *s, const char *key, int64_t now_s)
{
	if (!s->pend)
		return TOCSIN_ERR_STATE;
	if (strlen(key) >= sizeof s->pend[0].key)
		return TOCSIN_ERR_TOOBIG;
	for (size_t i = 0; i < s->npend; i++)
		if (!strcmp(s->pend[i].key, key) && s->pend[i].exp_s >= now_s)
			return 0;
	sqlite3_stmt *q = s->seen_q[3];
	sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
	int st = sqlite3_step(q);
	int64_t exp = st == SQLITE_ROW ? sqlite3_column_int64(q, 0) : -1;
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
	if (st != SQLITE_ROW && st != SQLITE_DONE)
		return TOCSIN_ERR_IO;
	return exp >= now_s ? 0 : 1;
}

int trk_store_seen(trk_store_t *s, const char *key, int64_t now_s, int64_t keep_s)
{
	if (!s->pend)
		return TOCSIN_ERR_STATE;
	if (strlen(key) >= sizeof s->pend[0].key)
		return TOCSIN_ERR_TOOBIG;
	int r = trk_store_seen_peek(s, key, now_s);
	if (r <= 0)
		return r;
	s->seen_now = now_s;
	/* new (or its memory expired): remembered now, written with the next batch */
	snprintf(s->pend[s->npend].key, sizeof s->pend[0].key, "%s", key);
	s->pend[s->npend++].exp_s = now_s + keep_s;
	if (s->npend == SEEN_BATCH)
		trk_store_seen_flush(s);
	return 1;
}

int trk_store_unsee(trk_store_t *s, const char *key)
{
	for (size_t i = 0; i < s->npend; i++)
		if (!strcmp(s->pend[i].key, key)) {
			s->pend[i] = s->pend[--s->npend];
			break;
		}
	sqlite3_stmt *q = s->seen_q[1];
	if (!q)
		return TOCSIN_ERR_STATE;
	sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
	int st = sqlite3_step(q);
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
	return st == SQLITE_DONE ? 0 : TOCSIN_ERR_IO;
}

int trk_store_last_campaign(trk_store_t *s, msg_channel_t ch, const char *addr, char *out, size_t outlen)
{
	out[0] = 0;
	if (!addr || !*addr)
		return TOCSIN_ERR_NOTFOUND;
	/* Message ids are msg_make_id(campaign, channel, address): for each
	 * campaign the store knows, one probe of the id index says whether it
	 * messaged this address (no address index for the ingest to keep up). */
	sqlite3_stmt *c = NULL, *q = NULL;
	if (sqlite3_prepare_v2(s->db,
	                       "SELECT id FROM campaigns UNION"
	                       " SELECT DISTINCT campaign FROM counts WHERE campaign<>'' LIMIT ?1",
	                       -1, &c, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db, "SELECT ts_ms, rid FROM msgs WHERE id=?1 AND campaign=?2", -1,
	                       &q, NULL) != SQLITE_OK) {
		log_error("event=db_error db=%s err=\"%s\"", s->path, sqlite3_errmsg(s->db));
		sqlite3_finalize(c);
		sqlite3_finalize(q);
		return TOCSIN_ERR_IO;
	}
	sqlite3_bind_int(c, 1, TRK_LAST_CAMPAIGNS);
	const char *chn = msg_channel_name(ch);
	int64_t best_ts = INT64_MIN, best_rid = -1;
	int rc;
	while ((rc = sqlite3_step(c)) == SQLITE_ROW) {
		const char *camp = (const char *)sqlite3_column_text(c, 0);
		if (!camp || !*camp)
			continue;
		char id[MSG_ID_LEN + 1];
		unsigned char raw[16];
		msg_make_id(camp, chn, addr, id);
		store_bind_id(q, 1, id, raw);
		sqlite3_bind_text(q, 2, camp, -1, SQLITE_STATIC);
		if (sqlite3_step(q) == SQLITE_ROW) {
			int64_t ts = sqlite3_column_int64(q, 0), rid = sqlite3_column_int64(q, 1);
			if (ts > best_ts || (ts == best_ts && rid > best_rid)) {
				best_ts = ts;
				best_rid = rid;
				snprintf(out, outlen, "%s", camp);
			}
		}
		sqlite3_reset(q);
		sqlite3_clear_bindings(q);
	}
	sqlite3_finalize(q);
	sqlite3_finalize(c);
	if (rc != SQLITE_DONE) {
		log_error("event=db_error db=%s err=\"%s\"", s->path, sqlite3_errmsg(s->db));
		out[0] = 0;
		return TOCSIN_ERR_IO;
	}
	return out[0] ? 0 : TOCSIN_ERR_NOTFOUND;
}

int trk_store_prune(trk_store_t *s, int64_t before_s)
{
	if (s->readonly || s->in_tx)
		return TOCSIN_ERR_STATE;
	sqlite3_stmt *q = NULL;
	if (sqlite3_prepare_v2(s->db, "DELETE FROM series WHERE sec<?1", -1, &q, NULL) != SQLITE_OK) {
		sqlite3_finalize(q);
		return TOCSIN_ERR_IO;
	}
	sqlite3_bind_int64(q, 1, before_s);
	int rc = sqlite3_step(q) == SQLITE_DONE ? sqlite3_changes(s->db) : TOCSIN_ERR_IO;
	sqlite3_finalize(q);
	return rc;
}
