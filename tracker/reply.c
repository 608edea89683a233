/* reply.c -- the tracker's webhook worker: SMS replies through the vendor adapters, inbound review writes. */
#include "tracker/reply.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/hash.h"
#include "core/log.h"
#include "templates/sms.h"
#include "tracker/store.h"
#include "vendors/vsend.h"

#include <sqlite3.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REPLY_TRIES 3
#define REPLY_MAX_WAIT_MS 60000 /* longest a reply waits for the vendor's rate limit */
#define REPLY_MAX_VENDORS 32
#define REPLY_STOP_GRACE_MS 5000
#define REPLY_NUM_SLOTS 8192 /* numbers whose hourly reply count is remembered */
#define REPLY_MAX_CC 16

enum { JOB_SMS = 0, JOB_INBOUND = 1 };

typedef struct job {
	int kind;
	int vendor; /* index into cfg->vendors */
	int64_t ts_ms;
	char vname[64];
	char to[64];    /* SMS: recipient; inbound: our number */
	char via[64];   /* SMS: the number the inbound reached */
	char from[320]; /* inbound: sender */
	char text[1700];
	char kw[8];
} job_t;

struct trk_reply {
	const cfg_t *cfg;
	pthread_t th;
	int th_on;
	pthread_mutex_t mu;
	pthread_cond_t cv, idle_cv;
	job_t *q;
	size_t head, n;
	int busy, stopping;
	int64_t stop_by_ms; /* mono deadline for the remaining jobs once stopping */
	int64_t sent, failed, dropped, limited, refused_country;
	/* reply limits: per number per hour (hash, window start, count), all per minute */
	uint64_t num_h[REPLY_NUM_SLOTS];
	int64_t num_at[REPLY_NUM_SLOTS];
	int num_n[REPLY_NUM_SLOTS];
	int64_t min_at;
	int min_n;
	/* country calling codes each vendor may reply to ("1", "44", ...) */
	char cc[REPLY_MAX_VENDORS][REPLY_MAX_CC][4];
	int ncc[REPLY_MAX_VENDORS];
	vsend_t *vs[REPLY_MAX_VENDORS]; /* per configured vendor; NULL: none (not SMS, secret unset) */
	trk_store_t *wr;                /* the review list writer; NULL: not kept */
	sqlite3_stmt *vh;               /* the vendor's SLA state, as the store folded it */
};

/* Same digits, ignoring a leading '+'. */
static int same_number(const char *a, const char *b)
{
	if (!a || !b)
		return 0;
	a += *a == '+';
	b += *b == '+';
	return *a && !strcmp(a, b);
}

static const char *pool_for(const cfg_vendor_t *v, const char *via)
{
	for (size_t i = 0; i < v->nsenders; i++)
		if (same_number(v->senders[i].from, via))
			return v->senders[i].pool;
	for (size_t i = 0; i < v->nsenders; i++)
		if (v->senders[i].from || v->senders[i].service)
			return v->senders[i].pool;
	return "main";
}

/* Sleep up to ms unless stopping (mutex held on entry and exit). */
static void nap(trk_reply_t *r, int ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	while (!r->stopping && pthread_cond_timedwait(&r->cv, &r->mu, &ts) != ETIMEDOUT)
		;
}

/* vsend's wait for the rate limit: interrupted by shutdown (mutex not held). */
static int wait_limit(void *ctx, int64_t ns)
{
	trk_reply_t *r = ctx;
	pthread_mutex_lock(&r->mu);
	int stop = r->stopping;
	if (!stop)
		nap(r, (int)(ns / 1000000 + 1));
	stop = r->stopping;
	pthread_mutex_unlock(&r->mu);
	return stop;
}

/* The vendor's SLA state from the store (tocsin.vendor-health as folded); healthy when unknown. */
static msg_vh_state_t vendor_health(trk_reply_t *r, const char *name)
{
	msg_vh_state_t st = MSG_VH_HEALTHY;
	if (!r->vh)
		return st;
	sqlite3_bind_text(r->vh, 1, name, -1, SQLITE_STATIC);
	if (sqlite3_step(r->vh) == SQLITE_ROW) {
		int v = sqlite3_column_int(r->vh, 0);
		if (v >= 0 && v < MSG_VH__COUNT)
			st = (msg_vh_state_t)v;
	}
	sqlite3_reset(r->vh);
	return st;
}

/* Send one SMS reply through the vendor's vsend (its adapter, the HTTP engine, its rate
 * limit, its SLA state); mutex not held. Returns 1 accepted, 0 failed. */
static int send_sms(trk_reply_t *r, const job_t *j)
{
	const cfg_vendor_t *v = &r->cfg->vendors[j->vendor];
	vsend_t *vs = r->vs[j->vendor];
	sms_info_t info;
	if (sms_analyze(j->text, strlen(j->text), &info))
		info = (sms_info_t){.enc = SMS_UCS2, .segments = 1};
	msg_out_t m = {.id = NULL, /* no client-ref: a reply is not a campaign message */
	               .campaign = NULL,
	               .channel = MSG_CH_SMS,
	               .to = j->to,
	               .sender = pool_for(v, j->via),
	               .body = j->text,
	               .enc = sms_enc_name(info.enc),
	               .segments = info.segments,
	               .created_ms = clock_wall_ms()};
	const msg_out_t *pm[1] = {&m};
	vnd_result_t res;
	char err[256];
	for (int t = 0; t < REPLY_TRIES; t++) {
		vsend_set_health(vs, vendor_health(r, v->name));
		int rc = vsend_msgs(vs, pm, 1, REPLY_MAX_WAIT_MS, &res, NULL, err, sizeof err);
		if (rc && rc != TOCSIN_ERR_AGAIN) {
			log_warn("event=reply_failed vendor=%s reason=\"%s\"", v->name, err);
			return 0;
		}
		if (rc) { /* the vendor is open or drained: hold the reply as a deferral */
			res = (vnd_result_t){.outcome = VND_DEFER, .retry_after_ms = -1};
			snprintf(res.code, sizeof res.code, "vendor_unavailable");
			snprintf(res.detail, sizeof res.detail, "%.190s", err);
		} else if (res.outcome == VND_ACCEPTED) {
			log_info("event=reply_sent vendor=%s ref=%s segments=%d", v->name, res.ref,
			         info.segments);
			return 1;
		}
		if (res.outcome != VND_DEFER || t == REPLY_TRIES - 1)
			break;
		int wait = res.retry_after_ms > 0 ? res.retry_after_ms : 500 << t;
		if (wait > 5000)
			wait = 5000;
		if (wait_limit(r, (int64_t)wait * 1000000))
			break;
	}
	log_warn("event=reply_failed vendor=%s outcome=%s code=%s detail=\"%s\"", v->name,
	         vnd_outcome_name(res.outcome), res.code, res.detail);
	return 0;
}

static void *worker(void *arg)
{
	trk_reply_t *r = arg;
	job_t *j = malloc(sizeof *j);
	pthread_mutex_lock(&r->mu);
	for (;;) {
		while (!r->n && !r->stopping)
			pthread_cond_wait(&r->cv, &r->mu);
		if (!r->n || !j)
			break;
		if (r->stopping && clock_mono_ms() > r->stop_by_ms) {
			r->dropped += (int64_t)r->n;
			log_warn("event=reply_dropped reason=shutdown jobs=%zu", r->n);
			r->n = 0;
			break;
		}
		*j = r->q[r->head];
		r->head = (r->head + 1) % TRK_REPLY_QUEUE;
		r->n--;
		r->busy = 1;
		pthread_mutex_unlock(&r->mu);
		int ok = 1;
		if (j->kind == JOB_SMS) {
			ok = send_sms(r, j);
		} else if (r->wr) {
			if (trk_store_inbound(r->wr, j->ts_ms, j->vname, j->from, j->to, j->text, j->kw))
				log_warn("event=inbound_not_kept vendor=%s kind=%s", j->vname, j->kw);
		}
		pthread_mutex_lock(&r->mu);
		if (j->kind == JOB_SMS) {
			if (ok)
				r->sent++;
			else
				r->failed++;
		}
		r->busy = 0;
		if (!r->n)
			pthread_cond_broadcast(&r->idle_cv);
	}
	r->busy = 0;
	pthread_cond_broadcast(&r->idle_cv);
	pthread_mutex_unlock(&r->mu);
	free(j);
	return NULL;
}

trk_reply_t *trk_reply_new(const cfg_t *cfg, char *err, size_t errlen)
{
	trk_reply_t *r = calloc(1, sizeof *r);
	job_t *q = calloc(TRK_REPLY_QUEUE, sizeof *q);
	if (!r || !q) {
		free(r);
		free(q);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	r->cfg = cfg;
	r->q = q;
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, NULL);
	pthread_cond_init(&r->idle_cv, NULL);
	vsend_opts_t vo = {.now_ns = NULL, .wait_ns = wait_limit, .ctx = r};
	for (size_t i = 0; i < cfg->nvendors && i < REPLY_MAX_VENDORS; i++) {
		const cfg_vendor_t *v = &cfg->vendors[i];
		if (v->channel != MSG_CH_SMS)
			continue;
		char e[256];
		r->vs[i] = vsend_new(cfg, v, &vo, e, sizeof e);
		if (!r->vs[i])
			log_warn("event=replies_disabled vendor=%s reason=\"%s\"", v->name, e);
		json_t *cc = json_object_get(v->raw, "reply_countries"), *c;
		size_t k;
		if (!json_is_array(cc))
			snprintf(r->cc[i][r->ncc[i]++], sizeof r->cc[i][0], "1");
		json_array_foreach(cc, k, c) if (r->ncc[i] < REPLY_MAX_CC && json_is_string(c))
		    snprintf(r->cc[i][r->ncc[i]++], sizeof r->cc[i][0], "%s",
		             json_string_value(c) + (json_string_value(c)[0] == '+'));
	}
	char e[512];
	r->wr = trk_store_open(cfg->db_path, 0, e, sizeof e);
	if (!r->wr)
		log_warn("event=review_list_disabled reason=\"%s\"", e);
	else if (sqlite3_prepare_v2(trk_store_db(r->wr), "SELECT state FROM vendors WHERE name=?1",
	                            -1, &r->vh, NULL) != SQLITE_OK)
		log_warn("event=reply_sla_unknown reason=\"%s\"", sqlite3_errmsg(trk_store_db(r->wr)));
	if (pthread_create(&r->th, NULL, worker, r)) {
		snprintf(err, errlen, "cannot start the reply worker thread");
		trk_reply_free(r);
		return NULL;
	}
	r->th_on = 1;
	return r;
}

void trk_reply_free(trk_reply_t *r)
{
	if (!r)
		return;
	if (r->th_on) {
		pthread_mutex_lock(&r->mu);
		r->stopping = 1;
		r->stop_by_ms = clock_mono_ms() + REPLY_STOP_GRACE_MS;
		pthread_cond_broadcast(&r->cv);
		pthread_mutex_unlock(&r->mu);
		pthread_join(r->th, NULL);
	}
	if (r->sent || r->failed || r->dropped)
		log_info("event=replies sent=%lld failed=%lld dropped=%lld", (long long)r->sent,
		         (long long)r->failed, (long long)r->dropped);
	for (size_t i = 0; i < REPLY_MAX_VENDORS; i++)
		vsend_free(r->vs[i]);
	sqlite3_finalize(r->vh);
	trk_store_free(r->wr);
	pthread_cond_destroy(&r->cv);
	pthread_cond_destroy(&r->idle_cv);
	pthread_mutex_destroy(&r->mu);
	free(r->q);
	free(r);
}

/* A free slot at the tail (mutex held), or NULL when full (counted). */
static job_t *slot(trk_reply_t *r)
{
	if (r->n >= TRK_REPLY_QUEUE || r->stopping) {
		r->dropped++;
		if (r->dropped <= 20 || r->dropped % 1000 == 0)
			log_warn("event=reply_dropped reason=queue_full dropped_total=%lld",
			         (long long)r->dropped);
		return NULL;
	}
	job_t *j = &r->q[(r->head + r->n) % TRK_REPLY_QUEUE];
	j->via[0] = j->from[0] = j->kw[0] = 0;
	return j;
}

/* 1 when `to` (E.164) is in a country the sender pool of `via` (our number texted) may reply
 * to: the pool's own "reply_countries" when it has them, else vendor idx's */
static int country_ok(const trk_reply_t *r, const cfg_vendor_t *v, int idx, const char *to,
                      const char *via)
{
	if (!to || to[0] != '+')
		return 0;
	json_t *pool = json_object_get(json_object_get(v->raw, "senders"), pool_for(v, via ? via : ""));
	json_t *own = json_object_get(pool, "reply_countries"), *c;
	size_t k;
	if (json_is_array(own)) { /* checked by cfg_load: calling codes, "+" optional */
		json_array_foreach(own, k, c)
		{
			const char *cc = json_string_value(c);
			cc += cc && cc[0] == '+';
			if (cc && *cc && !strncmp(to + 1, cc, strlen(cc)))
				return 1;
		}
		return 0;
	}
	for (int i = 0; i < r->ncc[idx]; i++)
		if (!strncmp(to + 1, r->cc[idx][i], strlen(r->cc[idx][i])))
			return 1;
	return 0;
}

/* Count a reply to `to` against the limits (mutex held): 1 allowed (counted), 0 over. */
static int limit_take(trk_reply_t *r, const char *to)
{
	int64_t now = vnd_wh_now_s() * 1000; /* the webhook clock: TOCSIN_TEST_NOW_S in tests */
	const cfg_t *c = r->cfg;
	if (now - r->min_at >= 60000 || !r->min_at) {
		r->min_at = now;
		r->min_n = 0;
	}
	if (r->min_n >= c->reply_per_minute)
		return 0;
	uint64_t k = hash64(to, strlen(to), 0x7265706c79) | 1;
	size_t i = k & (REPLY_NUM_SLOTS - 1);
	if (r->num_h[i] != k || now - r->num_at[i] >= 3600 * 1000LL) {
		r->num_h[i] = k; /* a colliding number's count is forgotten: the per-minute cap holds */
		r->num_at[i] = now;
		r->num_n[i] = 0;
	}
	if (r->num_n[i] >= c->reply_per_number_hour)
		return 0;
	r->num_n[i]++;
	r->min_n++;
	return 1;
}

/* trk_reply_permit with the mutex held */
static int permit(trk_reply_t *r, const cfg_vendor_t *v, int idx, const char *to, const char *via)
{
	if (!country_ok(r, v, idx, to, via)) {
		int64_t n = ++r->refused_country;
		if (n <= 20 || n % 1000 == 0)
			log_warn("event=reply_refused reason=country vendor=%s to=%.24s total=%lld",
			         v->name, to ? to : "", (long long)n);
		return TOCSIN_ERR_INVAL;
	}
	if (!limit_take(r, to)) {
		int64_t n = ++r->limited;
		if (n <= 20 || n % 1000 == 0)
			log_warn("event=reply_refused reason=rate_limit vendor=%s to=%.24s total=%lld",
			         v->name, to, (long long)n);
		return TOCSIN_ERR_TOOBIG;
	}
	return 0;
}

static int vendor_idx(const trk_reply_t *r, const cfg_vendor_t *v)
{
	int idx = (int)(v - r->cfg->vendors);
	return idx < 0 || (size_t)idx >= r->cfg->nvendors || idx >= REPLY_MAX_VENDORS ? -1 : idx;
}

int trk_reply_permit(trk_reply_t *r, const cfg_vendor_t *v, const char *to, const char *via)
{
	int idx = vendor_idx(r, v);
	if (idx < 0)
		return TOCSIN_ERR_CONFIG;
	pthread_mutex_lock(&r->mu);
	int rc = permit(r, v, idx, to, via);
	pthread_mutex_unlock(&r->mu);
	return rc;
}

int trk_reply_sms(trk_reply_t *r, const cfg_vendor_t *v, const char *to, const char *via,
                  const char *text)
{
	int idx = vendor_idx(r, v);
	if (idx < 0 || !r->vs[idx])
		return TOCSIN_ERR_CONFIG;
	pthread_mutex_lock(&r->mu);
	int rc = permit(r, v, idx, to, via);
	if (rc) {
		pthread_mutex_unlock(&r->mu);
		return rc;
	}
	job_t *j = slot(r);
	if (j) {
		j->kind = JOB_SMS;
		j->vendor = idx;
		snprintf(j->vname, sizeof j->vname, "%s", v->name);
		snprintf(j->to, sizeof j->to, "%s", to ? to : "");
		snprintf(j->via, sizeof j->via, "%s", via ? via : "");
		snprintf(j->text, sizeof j->text, "%s", text ? text : "");
		r->n++;
		pthread_cond_signal(&r->cv);
	}
	pthread_mutex_unlock(&r->mu);
	return j ? 0 : TOCSIN_ERR_AGAIN;
}

int trk_reply_inbound(trk_reply_t *r, int64_t ts_ms, const char *vendor, const char *from,
                      const char *to, const char *body, const char *kind)
{
	pthread_mutex_lock(&r->mu);
	job_t *j = slot(r);
	if (j) {
		j->kind = JOB_INBOUND;
		j->ts_ms = ts_ms;
		snprintf(j->vname, sizeof j->vname, "%s", vendor ? vendor : "");
		snprintf(j->from, sizeof j->from, "%s", from ? from : "");
		snprintf(j->to, sizeof j->to, "%s", to ? to : "");
		snprintf(j->text, sizeof j->text, "%s", body ? body : "");
		snprintf(j->kw, sizeof j->kw, "%s", kind ? kind : "");
		r->n++;
		pthread_cond_signal(&r->cv);
	}
	pthread_mutex_unlock(&r->mu);
	return j ? 0 : TOCSIN_ERR_AGAIN;
}

void trk_reply_stats(trk_reply_t *r, trk_reply_stats_t *out)
{
	pthread_mutex_lock(&r->mu);
	out->sent = r->sent;
	out->failed = r->failed;
	out->dropped = r->dropped;
	out->limited = r->limited;
	out->refused_country = r->refused_country;
	out->queued = (int64_t)r->n + r->busy;
	pthread_mutex_unlock(&r->mu);
}

int trk_reply_drain(trk_reply_t *r, int timeout_ms)
{
	int64_t end = clock_mono_ms() + timeout_ms;
	pthread_mutex_lock(&r->mu);
	while ((r->n || r->busy) && r->th_on) {
		int64_t left = end - clock_mono_ms();
		if (left <= 0)
			break;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += left / 1000;
		ts.tv_nsec += (long)(left % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&r->idle_cv, &r->mu, &ts);
	}
	int rc = r->n || r->busy ? TOCSIN_ERR_TIMEOUT : 0;
	pthread_mutex_unlock(&r->mu);
	return rc;
}
