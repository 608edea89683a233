/* recon.c -- the receipt reconciler: messages left accepted/sent are asked about at the vendor, or marked unknown_receipt. */
#include "tracker/recon.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/kq.h"
#include "core/log.h"
#include "vendors/vsend.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RECON_PAGE 256 /* messages read per query */
#define RECON_MAX_CAMPAIGNS 5000
#define RECON_MEMO (1u << 16)   /* messages whose last question is remembered */
#define RECON_ASK_WAIT_MS 10000 /* longest a question waits for the vendor's rate limit */
#define RECON_MAX_FAILS 3 /* unanswered questions in a row before a vendor is left for the pass */

typedef struct row {
	int64_t rid, ts;
	int channel;
	msg_state_t state;
	char id[40], campaign[128], addr[320], vendor[64], ref[256];
} row_t;

struct trk_recon {
	const cfg_t *c;
	trk_recon_io_t io;
	/* the real ask and publish */
	vsend_t *vs[TRK_MAX_VENDORS];
	int vs_state[TRK_MAX_VENDORS]; /* 0 not built yet, 1 built, -1 cannot ask */
	rd_kafka_t *rk;
	buf_t enc;
	/* per pass */
	int fails[TRK_MAX_VENDORS];
	row_t *page;
	/* when each message was last asked about (key rid + 1) */
	uint64_t memo_k[RECON_MEMO];
	int64_t memo_at[RECON_MEMO];
	/* the thread */
	pthread_t th;
	int th_on;
	atomic_int stop;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	trk_recon_stats_t st;
};

static int vendor_idx(const cfg_t *c, const cfg_vendor_t *v)
{
	long i = v ? v - c->vendors : -1;
	return i >= 0 && (size_t)i < c->nvendors && i < TRK_MAX_VENDORS ? (int)i : -1;
}

static int64_t wall_now(void *ctx)
{
	(void)ctx;
	return clock_wall_ms();
}

/* The real question: vendor v's vsend (built on first use, on the pass's thread). */
static int real_ask(void *ctx, const cfg_vendor_t *v, const char *ref, vnd_lookup_t *out)
{
	trk_recon_t *r = ctx;
	int i = vendor_idx(r->c, v);
	if (i < 0 || r->vs_state[i] < 0)
		return TOCSIN_ERR_CONFIG;
	char err[256];
	if (!r->vs_state[i]) {
		r->vs[i] = vsend_new(r->c, v, NULL, err, sizeof err);
		r->vs_state[i] = r->vs[i] && vnd_lookup_has(vsend_vnd(r->vs[i])) ? 1 : -1;
		if (!r->vs[i])
			log_warn("event=reconcile_no_lookup vendor=%s reason=\"%s\"", v->name, err);
		if (r->vs_state[i] < 0)
			return TOCSIN_ERR_CONFIG;
	}
	int rc = vsend_lookup(r->vs[i], ref, RECON_ASK_WAIT_MS, out, err, sizeof err);
	if (rc && rc != TOCSIN_ERR_NOTFOUND)
		log_warn("event=reconcile_ask_failed vendor=%s err=\"%s\"", v->name, err);
	return rc;
}

static int real_publish(void *ctx, const msg_status_t *st)
{
	trk_recon_t *r = ctx;
	buf_reset(&r->enc);
	int rc = msg_status_encode(st, &r->enc);
	if (!rc)
		rc = kq_produce(r->rk, KQ_T_STATUS, st->id, strlen(st->id), r->enc.p, r->enc.len, NULL);
	rd_kafka_poll(r->rk, 0);
	return rc;
}

trk_recon_t *trk_recon_new(const cfg_t *cfg, const trk_recon_io_t *io, char *err, size_t errlen)
{
	trk_recon_t *r = calloc(1, sizeof *r);
	row_t *page = calloc(RECON_PAGE, sizeof *page);
	if (!r || !page) {
		free(r);
		free(page);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	r->c = cfg;
	r->page = page;
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, NULL);
	buf_init(&r->enc, 1 << 16);
	r->io.now_ms = io && io->now_ms ? io->now_ms : wall_now;
	r->io.ask = io && io->ask ? io->ask : real_ask;
	r->io.publish = io && io->publish ? io->publish : real_publish;
	r->io.ctx = io && io->ctx ? io->ctx : r;
	if (r->io.publish == real_publish) {
		rd_kafka_conf_t *conf = kq_conf_new(cfg, KQ_PRODUCER, "tocsin-tracker-recon", NULL,
		                                    err, errlen);
		if (!conf || !(r->rk = kq_new(conf, KQ_PRODUCER, 10000, err, errlen))) {
			trk_recon_free(r);
			return NULL;
		}
	}
	return r;
}

static void *recon_main(void *arg);

int trk_recon_start(trk_recon_t *r, char *err, size_t errlen)
{
	if (pthread_create(&r->th, NULL, recon_main, r)) {
		snprintf(err, errlen, "cannot start the reconcile thread");
		return TOCSIN_ERR_NOMEM;
	}
	r->th_on = 1;
	return 0;
}

void trk_recon_free(trk_recon_t *r)
{
	if (!r)
		return;
	if (r->th_on) {
		pthread_mutex_lock(&r->mu);
		atomic_store(&r->stop, 1);
		pthread_cond_broadcast(&r->cv);
		pthread_mutex_unlock(&r->mu);
		pthread_join(r->th, NULL);
	}
	for (int i = 0; i < TRK_MAX_VENDORS; i++)
		vsend_free(r->vs[i]);
	if (r->rk) {
		kq_flush(r->rk, 5000);
		rd_kafka_destroy(r->rk);
	}
	buf_free(&r->enc);
	pthread_cond_destroy(&r->cv);
	pthread_mutex_destroy(&r->mu);
	free(r->page);
	free(r);
}

void trk_recon_stats(trk_recon_t *r, trk_recon_stats_t *out)
{
	pthread_mutex_lock(&r->mu);
	*out = r->st;
	pthread_mutex_unlock(&r->mu);
}

static void count(trk_recon_t *r, int64_t *field)
{
	pthread_mutex_lock(&r->mu);
	(*field)++;
	pthread_mutex_unlock(&r->mu);
}

/* 1 when rid may be asked about now (then remembered as asked at now) */
static int memo_take(trk_recon_t *r, int64_t rid, int64_t now)
{
	uint64_t k = (uint64_t)rid + 1;
	size_t i = (size_t)(k * 0x9e3779b97f4a7c15ull >> 48) & (RECON_MEMO - 1);
	if (r->memo_k[i] == k && now - r->memo_at[i] < r->c->reconcile_after_s * 1000LL)
		return 0;
	r->memo_k[i] = k; /* a colliding message is forgotten: it is asked again, which is harmless */
	r->memo_at[i] = now;
	return 1;
}

static int publish(trk_recon_t *r, const row_t *m, msg_state_t st, const char *code,
                   const char *detail, int64_t now)
{
	const cfg_vendor_t *v = cfg_vendor(r->c, m->vendor);
	msg_status_t s = {.id = m->id,
	                  .campaign = m->campaign,
	                  .channel = (msg_channel_t)m->channel,
	                  .to = m->addr[0] ? m->addr : NULL,
	                  .state = st,
	                  .vendor = v ? v->name : m->vendor,
	                  .vendor_ref = m->ref[0] ? m->ref : NULL,
	                  .code = code && *code ? code : NULL,
	                  .detail = detail,
	                  .latency_ms = -1,
	                  .attempt = 0,
	                  .ts_ms = now};
	int rc = r->io.publish(r->io.ctx, &s);
	if (rc) {
		count(r, &r->st.errors);
		log_warn("event=reconcile_publish_failed id=%s err=\"%s\"", m->id, tocsin_strerror(rc));
	}
	return rc ? 0 : 1;
}

/* One message awaiting its receipt: ask, or mark unknown_receipt past the deadline. */
static int settle(trk_recon_t *r, const row_t *m, int64_t now)
{
	const cfg_vendor_t *v = cfg_vendor(r->c, m->vendor);
	int vi = vendor_idx(r->c, v);
	char detail[240];
	if (vi >= 0 && m->ref[0] && r->fails[vi] < RECON_MAX_FAILS && memo_take(r, m->rid, now)) {
		vnd_lookup_t lk;
		int rc = r->io.ask(r->io.ctx, v, m->ref, &lk);
		if (rc == TOCSIN_ERR_CONFIG) {
			r->fails[vi] = RECON_MAX_FAILS; /* this vendor cannot be asked */
		} else {
			count(r, &r->st.asked);
			r->fails[vi] = rc == TOCSIN_ERR_AGAIN || rc == TOCSIN_ERR_TIMEOUT
			                   ? r->fails[vi] + 1
			                   : 0;
			if (rc && rc != TOCSIN_ERR_NOTFOUND)
				count(r, &r->st.errors);
			if (!rc && msg_state_advances(m->state, lk.state)) {
				snprintf(detail, sizeof detail, "reconciled: %s", lk.detail);
				int n = publish(r, m, lk.state, lk.code, detail, now);
				if (n)
					count(r, &r->st.reconciled);
				return n;
			}
		}
	}
	if (now - m->ts < r->c->unknown_receipt_after_s * 1000LL)
		return 0;
	snprintf(detail, sizeof detail, "no receipt within %d s of the last status",
	         r->c->unknown_receipt_after_s);
	int n = publish(r, m, MSG_ST_UNKNOWN_RECEIPT, "no_receipt", detail, now);
	if (n)
		count(r, &r->st.unknown);
	return n;
}

static void col(sqlite3_stmt *q, int i, char *out, size_t cap)
{
	const unsigned char *t = sqlite3_column_text(q, i);
	snprintf(out, cap, "%s", t ? (const char *)t : "");
}

/* Page through one campaign's messages awaiting a receipt older than cutoff. */
static int campaign_pass(trk_recon_t *r, sqlite3_stmt *q, const char *camp, int64_t cutoff, int64_t now)
{
	int64_t after = 0;
	int published = 0;
	for (;;) {
		sqlite3_bind_text(q, 1, camp, -1, SQLITE_STATIC);
		sqlite3_bind_int64(q, 2, cutoff);
		sqlite3_bind_int64(q, 3, after);
		sqlite3_bind_int(q, 4, RECON_PAGE);
		int n = 0, rc;
		while (n < RECON_PAGE && (rc = sqlite3_step(q)) == SQLITE_ROW) {
			row_t *m = &r->page[n++];
			m->rid = sqlite3_column_int64(q, 0);
			col(q, 1, m->id, sizeof m->id);
			m->channel = sqlite3_column_int(q, 2);
			col(q, 3, m->addr, sizeof m->addr);
			m->state = (msg_state_t)sqlite3_column_int(q, 4);
			col(q, 5, m->vendor, sizeof m->vendor);
			col(q, 6, m->ref, sizeof m->ref);
			m->ts = sqlite3_column_int64(q, 7);
			snprintf(m->campaign, sizeof m->campaign, "%s", camp);
		}
		if (n < RECON_PAGE && rc != SQLITE_DONE) {
			sqlite3_reset(q);
			return TOCSIN_ERR_IO;
		}
		sqlite3_reset(q); /* no read transaction stays open while vendors are asked */
		for (int i = 0; i < n && !atomic_load(&r->stop); i++)
			published += settle(r, &r->page[i], now);
		if (n < RECON_PAGE || atomic_load(&r->stop))
			return published;
		after = r->page[n - 1].rid;
	}
}

int trk_recon_pass(trk_recon_t *r, trk_store_t *s)
{
	sqlite3 *db = trk_store_db(s);
	int64_t now = r->io.now_ms(r->io.ctx);
	int64_t cutoff = now - r->c->reconcile_after_s * 1000LL;
	memset(r->fails, 0, sizeof r->fails);
	/* the campaigns with messages awaiting a receipt, from the counters */
	sqlite3_stmt *cq = NULL, *q = NULL;
	char sql[512];
	snprintf(sql, sizeof sql,
	         "SELECT rid, " TRK_ID_SQL ", channel, addr, state, vendor, vendor_ref, ts_ms FROM msgs"
	         " WHERE campaign=?1 AND state IN (%d,%d) AND ts_ms<?2 AND rid>?3 ORDER BY rid LIMIT ?4",
	         MSG_ST_ACCEPTED, MSG_ST_SENT);
	char cs[256];
	snprintf(cs, sizeof cs,
	         "SELECT DISTINCT campaign FROM counts WHERE state IN (%d,%d) AND n>0 AND campaign<>''"
	         " LIMIT %d",
	         MSG_ST_ACCEPTED, MSG_ST_SENT, RECON_MAX_CAMPAIGNS);
	if (sqlite3_prepare_v2(db, cs, -1, &cq, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK) {
		log_error("event=reconcile_db_error err=\"%s\"", sqlite3_errmsg(db));
		sqlite3_finalize(cq);
		return TOCSIN_ERR_IO;
	}
	char(*camps)[128] = calloc(RECON_MAX_CAMPAIGNS, sizeof *camps);
	int nc = 0, rc = camps ? 0 : TOCSIN_ERR_NOMEM;
	while (!rc && nc < RECON_MAX_CAMPAIGNS && sqlite3_step(cq) == SQLITE_ROW)
		col(cq, 0, camps[nc++], sizeof camps[0]);
	sqlite3_finalize(cq);
	int published = 0;
	for (int i = 0; i < nc && !rc && !atomic_load(&r->stop); i++) {
		int n = campaign_pass(r, q, camps[i], cutoff, now);
		if (n < 0)
			rc = n;
		else
			published += n;
	}
	sqlite3_finalize(q);
	free(camps);
	if (r->rk && published)
		kq_flush(r->rk, 5000);
	count(r, &r->st.passes);
	return rc ? rc : published;
}

static void *recon_main(void *arg)
{
	trk_recon_t *r = arg;
	trk_store_t *s = NULL;
	int every = r->c->reconcile_after_s / 5;
	every = every < 1 ? 1 : every > 60 ? 60 : every;
	pthread_mutex_lock(&r->mu);
	while (!atomic_load(&r->stop)) {
		pthread_mutex_unlock(&r->mu);
		char err[512];
		if (!s && !(s = trk_store_open(r->c->db_path, 1, err, sizeof err)))
			log_warn("event=reconcile_no_store reason=\"%s\"", err);
		if (s) {
			trk_recon_stats_t a, b;
			trk_recon_stats(r, &a);
			int n = trk_recon_pass(r, s);
			trk_recon_stats(r, &b);
			if (n != 0 || b.asked > a.asked)
				log_info("event=reconcile_pass published=%d asked=%lld reconciled=%lld "
				         "unknown_receipt=%lld errors=%lld",
				         n, (long long)(b.asked - a.asked),
				         (long long)(b.reconciled - a.reconciled),
				         (long long)(b.unknown - a.unknown),
				         (long long)(b.errors - a.errors));
		}
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += every;
		pthread_mutex_lock(&r->mu);
		if (!atomic_load(&r->stop))
			pthread_cond_timedwait(&r->cv, &r->mu, &ts);
	}
	pthread_mutex_unlock(&r->mu);
	trk_store_free(s);
	return NULL;
}
