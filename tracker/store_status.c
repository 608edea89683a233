/* store_status.c -- the tracker store's status ingest: which attempt a record belongs to, forward-only state moves, counters. */
#include "tracker/store_int.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int count_delta(trk_store_t *s, const char *camp, int ch, const char *vendor, int state, int d)
{
	if (state < 0 || state >= MSG_ST__COUNT || ch < 0 || ch > 1)
		tocsin_panic("count of state %d, channel %d", state, ch);
	agg_t *a = store_agg_slot(s, AGG_COUNT, camp, vendor, NULL, state, ch);
	if (!a)
		return TOCSIN_ERR_IO;
	a->n += d;
	return 0;
}

/* What the tracker knows of a stored message (the cache entry or the id index). */
typedef struct mrow {
	int found;
	msg_state_t state;
	int channel, attempt, reopened;
	int64_t rid;
	char camp[256], vendor[64];
} mrow_t;

static void cache_put(trk_store_t *s, cent_t *ce, const unsigned char raw[16], const mrow_t *m)
{
	int c = store_intern(s, m->camp), v = m->vendor[0] ? store_intern(s, m->vendor) : 0;
	if (!c || (m->vendor[0] && !v)) {
		ce->used = 0;
		return;
	}
	memcpy(ce->id, raw, 16);
	ce->rid = m->rid;
	ce->state = (uint8_t)m->state;
	ce->camp = (uint8_t)c;
	ce->vendor = (uint8_t)v;
	ce->channel = (uint8_t)m->channel;
	ce->attempt = (uint8_t)(m->attempt < 0 ? 0 : m->attempt > 255 ? 255 : m->attempt);
	ce->reopened = (uint8_t)(m->reopened != 0);
	ce->used = 1;
}

static int is_failure(msg_state_t st)
{
	return st == MSG_ST_FAILED || st == MSG_ST_UNDELIVERED || st == MSG_ST_BOUNCED ||
	       st == MSG_ST_EXPIRED;
}

static int prefix(const char *s, const char *p) { return s && !strncmp(s, p, strlen(p)); }

int trk_store_answer(const msg_status_t *st)
{
	if (st->latency_ms < 0 || !st->vendor || !*st->vendor)
		return TRK_ANS_NONE;
	const char *code = st->code ? st->code : "";
	int deferred = st->state == MSG_ST_RETRYING;
	if (st->state == MSG_ST_ACCEPTED)
		return TRK_ANS_OK;
	if (st->state == MSG_ST_FAILED || st->state == MSG_ST_EXPIRED)
		/* the dispatcher's words when the last of the retries was a deferral */
		deferred = prefix(st->detail, "gave up after ") ||
		           prefix(st->detail, "expired after ");
	else if (!deferred)
		return TRK_ANS_NONE;
	if (!deferred)
		return TRK_ANS_REFUSED;
	if (!strcmp(code, "http_429") || !strcmp(code, "20429") || !strcmp(code, "1"))
		return TRK_ANS_THROTTLED;
	if (!strcmp(code, "curl_28"))
		return TRK_ANS_TIMEOUT;
	return TRK_ANS_ERROR;
}

static const struct reason {
	const char *code, *text;
	int permanent;
} reasons[] = {
    {"21211", "invalid number", 1},
    {"21614", "not a mobile number", 1},
    {"21635", "landline number", 1},
    {"30006", "landline or unreachable carrier", 1},
    {"30005", "unknown or inactive number", 1},
    {"21610", "opted out (replied STOP)", 1},
    {"opted_out", "opted out", 1},
    {"suppressed", "opted out", 1},
    {"no_route", "no vendor configured for its channel", 1},
    {"build", "the vendor request could not be built", 1},
    {"30003", "phone unreachable or off", 0},
    {"30008", "carrier error", 0},
    {"30007", "filtered by the carrier", 0},
    {"curl_28", "vendor timed out", 0},
    {"http_429", "vendor rate limit", 0},
    {"20429", "vendor rate limit", 0},
    {"expired", "expired before it could be sent", 0},
    {"undelivered", "not delivered", 0},
    {"bounced", "bounced", 0},
    {"failed", "failed", 0},
};

const char *trk_code_reason(const char *code, int *permanent, char *buf, size_t buflen)
{
	int perm = 0;
	const char *r = NULL;
	code = code ? code : "";
	for (size_t i = 0; i < sizeof reasons / sizeof reasons[0] && !r; i++)
		if (!strcmp(code, reasons[i].code))
			r = reasons[i].text, perm = reasons[i].permanent;
	if (!r && prefix(code, "http_5"))
		r = "vendor outage (5xx answers)";
	else if (!r && prefix(code, "curl_"))
		r = "vendor unreachable (refused or reset)";
	else if (!r) {
		snprintf(buf, buflen, "vendor code %.40s", code);
		r = buf;
	}
	if (permanent)
		*permanent = perm;
	return r;
}

/* The message's row, from the cache or the id index. */
static int msg_lookup(trk_store_t *s, const char *id, unsigned char raw[16], cent_t **cep, mrow_t *m)
{
	memset(m, 0, sizeof *m);
	*cep = NULL;
	if (!s->cache) /* first status event: only the ingest handle pays for the cache */
		s->cache = calloc(CACHE_SLOTS, sizeof *s->cache);
	if (s->cache && store_bind_id(NULL, 0, id, raw)) {
		uint64_t h;
		memcpy(&h, raw, sizeof h);
		cent_t *ce = *cep = &s->cache[h & (CACHE_SLOTS - 1)];
		if (ce->used && !memcmp(ce->id, raw, 16)) {
			m->found = 1;
			m->state = (msg_state_t)ce->state;
			m->rid = ce->rid;
			m->channel = ce->channel;
			m->attempt = ce->attempt;
			m->reopened = ce->reopened;
			snprintf(m->camp, sizeof m->camp, "%s", ce->camp ? s->names[ce->camp] : "");
			snprintf(m->vendor, sizeof m->vendor, "%s",
			         ce->vendor ? s->names[ce->vendor] : "");
			return 0;
		}
	}
	sqlite3_stmt *g = s->q[Q_GET];
	store_bind_id(g, 1, id, raw);
	int rc = sqlite3_step(g);
	if (rc == SQLITE_ROW) {
		m->found = 1;
		m->state = (msg_state_t)sqlite3_column_int(g, 0);
		const unsigned char *c = sqlite3_column_text(g, 1);
		const unsigned char *v = sqlite3_column_text(g, 2);
		m->rid = sqlite3_column_int64(g, 3);
		m->channel = sqlite3_column_int(g, 4);
		m->attempt = sqlite3_column_int(g, 5);
		m->reopened = sqlite3_column_int(g, 6) > 0;
		snprintf(m->camp, sizeof m->camp, "%s", c ? (const char *)c : "");
		snprintf(m->vendor, sizeof m->vendor, "%s", v ? (const char *)v : "");
	} else if (rc != SQLITE_DONE) {
		sqlite3_reset(g);
		log_error("event=db_error db=%s err=\"%s\"", s->path, sqlite3_errmsg(s->db));
		return TOCSIN_ERR_IO;
	}
	sqlite3_reset(g);
	if (m->found && *cep)
		cache_put(s, *cep, raw, m);
	return 0;
}

/* The stored ts, code and generation of a message (the rare paths: resends). */
typedef struct mextra {
	int64_t ts_ms, gen, gen_ts;
	char code[64];
} mextra_t;

static int msg_extra(trk_store_t *s, int64_t rid, mextra_t *x)
{
	memset(x, 0, sizeof *x);
	sqlite3_stmt *q = s->q[Q_MSG];
	sqlite3_bind_int64(q, 1, rid);
	int rc = sqlite3_step(q);
	if (rc == SQLITE_ROW) {
		x->ts_ms = sqlite3_column_int64(q, 0);
		const unsigned char *c = sqlite3_column_text(q, 2);
		snprintf(x->code, sizeof x->code, "%s", c ? (const char *)c : "");
		x->gen = sqlite3_column_int64(q, 5);
		x->gen_ts = sqlite3_column_int64(q, 6);
	}
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
	return rc == SQLITE_ROW ? 0 : TOCSIN_ERR_IO;
}

/* A receipt carrying the vendor reference of an earlier attempt of rid? */
static int old_ref(trk_store_t *s, int64_t rid, const char *ref)
{
	sqlite3_stmt *q = s->q[Q_OLDREF];
	sqlite3_bind_int64(q, 1, rid);
	sqlite3_bind_text(q, 2, ref, -1, SQLITE_STATIC);
	int yes = sqlite3_step(q) == SQLITE_ROW;
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
	return yes;
}

static int code_delta(trk_store_t *s, const char *camp, const char *vendor, const char *code,
                      msg_state_t st, int d)
{
	agg_t *a = store_agg_slot(s, AGG_CODE, camp, vendor,
	                          code && *code ? code : msg_state_name(st), 0, 0);
	if (!a)
		return TOCSIN_ERR_IO;
	a->n += d;
	return 0;
}

/* A webhook receipt arrived before the dispatcher's event and was filed without a
 * campaign: move it (and its count) to st's campaign now. */
static int adopt_campaign(trk_store_t *s, const msg_status_t *st, mrow_t *m, cent_t *ce,
                          const unsigned char raw[16])
{
	int rc;
	sqlite3_stmt *fq = s->q[Q_FIXCAMP];
	sqlite3_bind_int64(fq, 1, m->rid);
	sqlite3_bind_text(fq, 2, st->campaign, -1, SQLITE_STATIC);
	if ((rc = store_step_done(s, fq)) ||
	    (rc = count_delta(s, "", m->channel, m->vendor, m->state, -1)) ||
	    (rc = count_delta(s, st->campaign, m->channel, m->vendor, m->state, +1)))
		return rc;
	snprintf(m->camp, sizeof m->camp, "%s", st->campaign);
	if (ce)
		cache_put(s, ce, raw, m);
	return 0;
}

/* Which attempt does the record belong to (README "status-record rules")? 1: an earlier
 * attempt's, ignored; 0 with *reopen (a resend after the failure it repeats) and *x (the
 * stored ts and code, when read). */
static int which_attempt(trk_store_t *s, const msg_status_t *st, const mrow_t *m, int64_t ts,
                         mextra_t *x, int *reopen)
{
	int rc;
	*reopen = 0;
	if (m->found && m->reopened) {
		if ((rc = msg_extra(s, m->rid, x)))
			return rc;
		if (ts < x->gen_ts ||
		    (st->vendor_ref && *st->vendor_ref && old_ref(s, m->rid, st->vendor_ref)))
			return 1; /* a record of an earlier attempt */
	}
	if (m->found && is_failure(m->state) && st->attempt >= 1) {
		if (!m->reopened && (rc = msg_extra(s, m->rid, x)))
			return rc;
		*reopen = ts > x->ts_ms; /* a resend, after the outcome it repeats */
	}
	return 0;
}

/* A record that does not move the state: the send's own reference (its accepted record,
 * from the vendor's answer: every part id of a Vonage SMS) replaces the one a receipt
 * that got here first left (only its part's id). */
static int keep_state(trk_store_t *s, const msg_status_t *st, const mrow_t *m)
{
	if (m->found && st->state == MSG_ST_ACCEPTED && st->latency_ms >= 0 && st->vendor_ref &&
	    *st->vendor_ref && st->vendor && !strcmp(st->vendor, m->vendor)) {
		sqlite3_stmt *rq = s->q[Q_SETREF];
		sqlite3_bind_int64(rq, 1, m->rid);
		sqlite3_bind_text(rq, 2, st->vendor_ref, -1, SQLITE_STATIC);
		return store_step_done(s, rq);
	}
	return 0;
}

/* The message's row inserted, updated, or reopened for a resend (the outcome it repeats
 * kept in its history). */
static int write_row(trk_store_t *s, const msg_status_t *st, const mrow_t *m, const mextra_t *x,
                     unsigned char raw[16], int reopen, const char *camp, const char *vendor,
                     int64_t ts)
{
	int rc;
	sqlite3_stmt *q;
	if (!m->found) {
		q = s->q[Q_INS];
		store_bind_id(q, 1, st->id, raw);
		sqlite3_bind_text(q, 2, st->campaign, -1, SQLITE_STATIC);
		sqlite3_bind_int(q, 3, st->channel);
		store_bind_opt(q, 4, st->to);
		sqlite3_bind_int(q, 5, st->state);
		sqlite3_bind_text(q, 6, vendor, -1, SQLITE_STATIC);
		store_bind_opt(q, 7, st->vendor_ref);
		store_bind_opt(q, 8, st->code);
		store_bind_opt(q, 9, st->detail);
		sqlite3_bind_int(q, 10, st->attempt);
		sqlite3_bind_int64(q, 11, ts);
		return store_step_done(s, q);
	}
	if (reopen) {
		/* keep the outcome being repeated in the message's history */
		sqlite3_stmt *hq = s->q[Q_HIST];
		sqlite3_bind_int64(hq, 1, m->rid);
		if ((rc = store_step_done(s, hq)) ||
		    (rc = code_delta(s, camp, m->vendor, x->code, m->state, -1)))
			return rc;
	}
	q = s->q[reopen ? Q_REOPEN : Q_UPD];
	sqlite3_bind_int64(q, 1, m->rid);
	sqlite3_bind_int(q, 2, st->state);
	sqlite3_bind_text(q, 3, vendor, -1, SQLITE_STATIC);
	store_bind_opt(q, 4, st->vendor_ref);
	store_bind_opt(q, 5, st->code);
	store_bind_opt(q, 6, st->detail);
	sqlite3_bind_int(q, 7, reopen || st->attempt > m->attempt ? st->attempt : m->attempt);
	sqlite3_bind_int64(q, 8, ts);
	if (!reopen) {
		store_bind_opt(q, 9, st->to);
		/* a receipt (no vendor answer) keeps the reference the send stored */
		sqlite3_bind_int(q, 10, st->latency_ms < 0);
	}
	return store_step_done(s, q);
}

/* The counters the move changes: the state counts (old state out, new in), failure
 * codes, the per-second series and the vendor's latency histogram. */
static int count_move(trk_store_t *s, const msg_status_t *st, const mrow_t *m, const char *camp,
                      int ch, const char *vendor, int64_t ts)
{
	int rc;
	if (m->found && (rc = count_delta(s, camp, ch, m->vendor, m->state, -1)))
		return rc;
	if ((rc = count_delta(s, camp, ch, vendor, st->state, +1)))
		return rc;
	if ((is_failure(st->state) || st->state == MSG_ST_SUPPRESSED) &&
	    (rc = code_delta(s, camp, vendor, st->code, st->state, +1)))
		return rc;
	agg_t *a = store_agg_slot(s, AGG_SERIES, camp, vendor, NULL, 0, ts / 1000);
	if (!a)
		return TOCSIN_ERR_IO;
	int ans = trk_store_answer(st);
	if (ans > TRK_ANS_OK)
		a->ans[ans]++;
	if (st->state == MSG_ST_ACCEPTED)
		a->sends++;
	if (st->state == MSG_ST_SENT || st->state == MSG_ST_DELIVERED ||
	    st->state == MSG_ST_UNDELIVERED || st->state == MSG_ST_BOUNCED)
		a->receipts++;
	if (is_failure(st->state))
		a->failures++;
	if (ans != TRK_ANS_NONE && ans != TRK_ANS_THROTTLED) {
		a->lat[trk_lat_bucket(st->latency_ms)]++;
		a->lat_sum += st->latency_ms;
		if (vendor[0]) {
			agg_t *l = store_agg_slot(s, AGG_LAT, "", vendor, NULL, 0, 0);
			if (!l)
				return TOCSIN_ERR_IO;
			l->lat[trk_lat_bucket(st->latency_ms)]++;
			l->lat_sum += st->latency_ms;
		}
	}
	return 0;
}

int trk_store_status(trk_store_t *s, const msg_status_t *st)
{
	if (!s->in_tx)
		return TOCSIN_ERR_STATE;
	if (!st->id || !st->campaign || (unsigned)st->state >= MSG_ST__COUNT)
		return TOCSIN_ERR_INVAL;
	unsigned char raw[16];
	int rc, reopen;
	cent_t *ce;
	mrow_t m;
	if ((rc = msg_lookup(s, st->id, raw, &ce, &m)))
		return rc;
	int64_t ts = st->ts_ms > 0 ? st->ts_ms : clock_wall_ms();
	if (m.found && !m.camp[0] && st->campaign[0] && (rc = adopt_campaign(s, st, &m, ce, raw)))
		return rc;
	mextra_t x = {0};
	if ((rc = which_attempt(s, st, &m, ts, &x, &reopen)))
		return rc < 0 ? rc : 0;
	int advance = !m.found || reopen || msg_state_advances(m.state, st->state) ||
	              (m.state == MSG_ST_RETRYING && st->state == MSG_ST_RETRYING &&
	               st->attempt > m.attempt && m.attempt < 255);
	if (!advance)
		return keep_state(s, st, &m);
	const char *vendor = st->vendor && *st->vendor ? st->vendor : (m.found ? m.vendor : "");
	const char *camp = m.found ? m.camp : st->campaign;
	int ch = m.found ? m.channel : (int)st->channel;
	if ((rc = write_row(s, st, &m, &x, raw, reopen, camp, vendor, ts)))
		return rc;
	mrow_t now = m;
	now.found = 1;
	now.rid = m.found ? m.rid : sqlite3_last_insert_rowid(s->db);
	now.state = st->state;
	now.channel = ch;
	now.attempt = reopen || st->attempt > m.attempt ? st->attempt : m.attempt;
	now.reopened = m.reopened || reopen;
	snprintf(now.camp, sizeof now.camp, "%s", camp);
	snprintf(now.vendor, sizeof now.vendor, "%s", vendor);
	if (ce)
		cache_put(s, ce, raw, &now);
	if ((rc = count_move(s, st, &m, camp, ch, vendor, ts)))
		return rc;
	return 1;
}
