/* optc.c -- the local opt-out cache: tocsin.optouts folded into <var_dir>/optouts.db (sqlite). */
#include "producer/optc.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/kq.h"
#include "core/log.h"
#include "core/pfile.h"
#include "core/msg.h"
#include "core/sig.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct optc {
	sqlite3 *db;
	char path[4096];
};

optc_t *optc_open(const cfg_t *cfg, char *err, size_t errlen)
{
	optc_t *o = calloc(1, sizeof *o);
	if (!o) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	mkdir(cfg->var_dir, 0755);
	cfg_var_path(cfg, "optouts.db", o->path, sizeof o->path);
	/* opted-out addresses: owner only */
	if (pfile_private(o->path, err, errlen)) {
		optc_close(o);
		return NULL;
	}
	if (sqlite3_open(o->path, &o->db) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", o->path, o->db ? sqlite3_errmsg(o->db) : "cannot open");
		optc_close(o);
		return NULL;
	}
	sqlite3_busy_timeout(o->db, 5000);
	char *e = NULL;
	if (sqlite3_exec(o->db,
	                 "PRAGMA journal_mode=WAL;"
	                 "CREATE TABLE IF NOT EXISTS optout(channel INTEGER NOT NULL, address TEXT NOT NULL,"
	                 " optin INTEGER NOT NULL, ts_ms INTEGER, PRIMARY KEY(channel, address));"
	                 "CREATE TABLE IF NOT EXISTS pos(part INTEGER PRIMARY KEY, next INTEGER NOT NULL);",
	                 NULL, NULL, &e) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", o->path, e ? e : "cannot create tables");
		sqlite3_free(e);
		optc_close(o);
		return NULL;
	}
	return o;
}

void optc_close(optc_t *o)
{
	if (!o)
		return;
	if (o->db)
		sqlite3_close(o->db);
	free(o);
}

int optc_put(optc_t *o, int channel, const char *address, int optin, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(o->db,
	                       "INSERT INTO optout(channel,address,optin,ts_ms) VALUES(?,?,?,?) "
	                       "ON CONFLICT(channel,address) DO UPDATE SET optin=excluded.optin, ts_ms=excluded.ts_ms",
	                       -1, &st, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", o->path, sqlite3_errmsg(o->db));
		return TOCSIN_ERR_IO;
	}
	sqlite3_bind_int(st, 1, channel);
	sqlite3_bind_text(st, 2, address, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, optin);
	sqlite3_bind_int64(st, 4, clock_wall_ms());
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		snprintf(err, errlen, "%s: %s", o->path, sqlite3_errmsg(o->db));
		return TOCSIN_ERR_IO;
	}
	return 0;
}

/* The next offset of each partition the sync got to, and whether the cache took every record. */
typedef struct optc_sync_ctx {
	optc_t *o;
	int64_t next[KQ_READ_MAXPART];
	int bad;
	char *err;
	size_t errlen;
} optc_sync_ctx_t;

static int on_optout(void *ud, const rd_kafka_message_t *m)
{
	optc_sync_ctx_t *x = ud;
	msg_optout_t ev;
	json_t *hold = NULL;
	char e[200];
	if (!msg_optout_parse(m->payload, m->len, &ev, &hold, e, sizeof e) && ev.address) {
		if (optc_put(x->o, (int)ev.channel, ev.address, ev.optin, x->err, x->errlen))
			x->bad = 1;
	} else {
		log_warn("event=bad_optout partition=%d offset=%lld err=\"%s\"", m->partition,
		         (long long)m->offset, e);
	}
	json_decref(hold);
	x->next[m->partition] = m->offset + 1; /* kq_read hands only partitions < nparts */
	return 0;
}

int optc_sync(optc_t *o, const cfg_t *cfg, int timeout_ms, char *err, size_t errlen)
{
	rd_kafka_t *c = kq_consumer_new(cfg, KQ_G_LAUNCH_OPTOUTS, KQ_G_LAUNCH_OPTOUTS, timeout_ms,
	                                err, errlen);
	if (!c)
		return TOCSIN_ERR_KAFKA;
	int np = kq_partitions(c, KQ_T_OPTOUTS, timeout_ms);
	if (np > KQ_READ_MAXPART)
		np = KQ_READ_MAXPART;
	optc_sync_ctx_t x = {.o = o, .err = err, .errlen = errlen};
	int64_t from[KQ_READ_MAXPART];
	for (int i = 0; i < np; i++) {
		from[i] = 0;
		x.next[i] = -1;
		sqlite3_stmt *st;
		if (sqlite3_prepare_v2(o->db, "SELECT next FROM pos WHERE part=?", -1, &st, NULL) ==
		    SQLITE_OK) {
			sqlite3_bind_int(st, 1, i);
			if (sqlite3_step(st) == SQLITE_ROW)
				from[i] = sqlite3_column_int64(st, 0);
			sqlite3_finalize(st);
		}
		if (from[i] < 0)
			from[i] = 0;
	}
	/* before the log start: from the log start; past the end (a new embedded broker,
	 * its log starts over): from the log start too */
	kq_read_t r = {.topic = KQ_T_OPTOUTS,
	               .nparts = np > 0 ? np : 0,
	               .from = from,
	               .timeout_ms = timeout_ms,
	               .query_timeout_ms = timeout_ms,
	               .stop = &tocsin_stop};
	char e[256] = "";
	sqlite3_exec(o->db, "BEGIN", NULL, NULL, NULL);
	int rc = kq_read(c, &r, on_optout, &x, e, sizeof e);
	for (int i = 0; i < np; i++) {
		if (x.next[i] < 0)
			continue;
		sqlite3_stmt *st;
		if (sqlite3_prepare_v2(o->db, "INSERT OR REPLACE INTO pos(part,next) VALUES(?,?)",
		                       -1, &st, NULL) == SQLITE_OK) {
			sqlite3_bind_int(st, 1, i);
			sqlite3_bind_int64(st, 2, x.next[i]);
			sqlite3_step(st);
			sqlite3_finalize(st);
		}
	}
	sqlite3_exec(o->db, x.bad ? "ROLLBACK" : "COMMIT", NULL, NULL, NULL);
	rd_kafka_consumer_close(c);
	rd_kafka_destroy(c);
	if (x.bad)
		return TOCSIN_ERR_IO;
	if (rc == TOCSIN_ERR_TIMEOUT || rc == TOCSIN_ERR_AGAIN) {
		snprintf(err, errlen, "read only %lld of %lld opt-outs from %s within %d ms",
		         (long long)r.got, (long long)r.want, KQ_T_OPTOUTS, timeout_ms);
		return TOCSIN_ERR_TIMEOUT;
	}
	if (rc) {
		snprintf(err, errlen, "%s", e);
		return rc;
	}
	log_info("event=optouts_synced new=%lld cache=%s", (long long)r.got, o->path);
	return 0;
}

int optc_load(optc_t *o, aset_t *set, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(o->db, "SELECT channel, address FROM optout WHERE optin=0", -1, &st,
	                       NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", o->path, sqlite3_errmsg(o->db));
		return TOCSIN_ERR_IO;
	}
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *a = (const char *)sqlite3_column_text(st, 1);
		if (a && aset_add(set, aset_key(sqlite3_column_int(st, 0), a, strlen(a))) < 0) {
			snprintf(err, errlen, "out of memory loading opt-outs");
			sqlite3_finalize(st);
			return TOCSIN_ERR_NOMEM;
		}
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		snprintf(err, errlen, "%s: %s", o->path, sqlite3_errmsg(o->db));
		return TOCSIN_ERR_IO;
	}
	return 0;
}
