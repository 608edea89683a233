/* http.c -- the tracker's HTTP server: routing, JSON API, controls, /metrics, one-click unsubscribe (webhooks: hooks.c). */
#include "core/clock.h"
#include "core/err.h"
#include "core/hash.h"
#include "core/kq.h"
#include "core/log.h"
#include "core/num.h"
#include "core/runfile.h"
#include "templates/email.h"
#include "tracker/api.h"
#include "tracker/ctl.h"
#include "tracker/reply.h"
#include "tracker/presence.h"
#include "tracker/store.h"
#include "tracker/trk.h"
#include "tracker/web.h"
#include "tracker/http_int.h"
#include "vendors/vnd.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SLOW_NS (50 * 1000000LL) /* the dashboard API's budget per request */
#define CACHE_MAX_BODY (1u << 20)
#define CACHE_MS_DEFAULT 250
#define HTTP_THREADS 4
#define HTTP_CONN_LIMIT 4000u   /* connections in all (the tracker's fds allow it) */
#define HTTP_IDLE_TIMEOUT_S 10u /* a connection silent this long is closed */

/* ---- live counters ---- */

struct trk_live {
	pthread_mutex_t mu;
	int64_t lag, total, applied, bad;
	int64_t broker_down_ms; /* 0 = reachable */
};

void trk_live_broker(trk_live_t *l, int64_t down_since_ms)
{
	pthread_mutex_lock(&l->mu);
	l->broker_down_ms = down_since_ms;
	pthread_mutex_unlock(&l->mu);
}

int64_t trk_live_broker_down(trk_live_t *l)
{
	if (!l)
		return 0;
	pthread_mutex_lock(&l->mu);
	int64_t v = l->broker_down_ms;
	pthread_mutex_unlock(&l->mu);
	return v;
}

trk_live_t *trk_live_new(void)
{
	trk_live_t *l = calloc(1, sizeof *l);
	if (l) {
		pthread_mutex_init(&l->mu, NULL);
		l->lag = -1;
	}
	return l;
}

void trk_live_free(trk_live_t *l)
{
	if (!l)
		return;
	pthread_mutex_destroy(&l->mu);
	free(l);
}

void trk_live_lag(trk_live_t *l, int64_t lag)
{
	if (!l)
		return;
	pthread_mutex_lock(&l->mu);
	l->lag = lag;
	pthread_mutex_unlock(&l->mu);
}

void trk_live_ingest(trk_live_t *l, int64_t total, int64_t applied, int64_t bad)
{
	if (!l)
		return;
	pthread_mutex_lock(&l->mu);
	l->total = total;
	l->applied = applied;
	l->bad = bad;
	pthread_mutex_unlock(&l->mu);
}

static void *uri_log(void *cls, const char *uri, struct MHD_Connection *c)
{
	(void)cls;
	(void)c;
	req_t *r = calloc(1, sizeof *r);
	if (!r)
		return NULL;
	r->uri = strndup(uri ? uri : "", MAX_URI);
	buf_init(&r->body, MAX_BODY);
	buf_init(&r->keys, MAX_BODY);
	buf_init(&r->ans, 65536);
	r->t0_ns = clock_mono_ns();
	return r;
}

static void req_done(void *cls, struct MHD_Connection *c, void **con_cls,
                     enum MHD_RequestTerminationCode toe)
{
	trk_http_t *h = cls;
	(void)c;
	(void)toe;
	req_t *r = *con_cls;
	if (!r)
		return;
	/* A request slower than the dashboard's budget is logged with where the
	 * time went (answering vs. waiting for a thread / the network). */
	int64_t total = clock_mono_ns() - r->t0_ns;
	if (total >= SLOW_NS) {
		pthread_mutex_lock(&h->mu);
		int64_t nth = ++h->slow;
		pthread_mutex_unlock(&h->mu);
		if (nth <= 20 || nth % 100 == 0) {
			const char *q = strchr(r->uri, '?');
			size_t pl = q ? (size_t)(q - r->uri) : strlen(r->uri);
			log_warn("event=slow_request path=%.*s total_ms=%.1f work_ms=%.1f slow_total=%lld",
			         (int)(pl > 200 ? 200 : pl), r->uri, total / 1e6, r->work_ns / 1e6,
			         (long long)nth);
		}
	}
	trk_wh_req_end(h, r);
	trk_web_req_free(r->wreq);
	free(r->uri);
	buf_free(&r->body);
	buf_free(&r->keys);
	buf_free(&r->ans);
	free(r);
	*con_cls = NULL;
}

static enum MHD_Result answer(struct MHD_Connection *c, unsigned code, const char *ctype,
                              const char *body, size_t len)
{
	return trk_web_answer(c, code, ctype, body, len);
}

enum MHD_Result trk_http_answer_err(struct MHD_Connection *c, unsigned code, const char *msg)
{
	buf_t b;
	buf_init(&b, 4096);
	buf_puts(&b, "{\"error\":");
	buf_json_str(&b, msg, strlen(msg));
	buf_puts(&b, "}\n");
	enum MHD_Result r = answer(c, code, "application/json", b.p, b.len);
	buf_free(&b);
	return r;
}

trk_store_t *trk_http_reader_get(trk_http_t *h, char *err, size_t errlen)
{
	pthread_mutex_lock(&h->mu);
	trk_store_t *s = h->nreaders > 0 ? h->readers[--h->nreaders] : NULL;
	pthread_mutex_unlock(&h->mu);
	if (!s)
		s = trk_store_open(h->cfg->db_path, 1, err, errlen);
	if (!s) { /* the reason names the file: logged, not answered */
		log_warn("event=store_unavailable err=\"%s\"", err);
		snprintf(err, errlen, "the store is not readable now");
	}
	return s;
}

void trk_http_reader_put(trk_http_t *h, trk_store_t *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&h->mu);
	if (h->nreaders < MAX_READERS) {
		h->readers[h->nreaders++] = s;
		s = NULL;
	}
	pthread_mutex_unlock(&h->mu);
	trk_store_free(s);
}

/* ---- Kafka ---- */

/* The webhook producer makes few, full requests: the CPU that the broker and
 * librdkafka spend per request, not the network, bounds the rate of webhooks
 * answered once acknowledged (bench/RESULTS.md, "Webhook intake"). One request
 * in flight per broker connection (the records that come while it is out go
 * together in the next one), a linger of 3 ms (1 ms made a request of nearly
 * every record), and no compression (an lz4 frame per small batch costs more
 * CPU than it saves on loopback). acks=all and idempotence stay (core/kq.c).
 * Each applies unless the config's kafka section sets it (or an alias). */
static void wh_producer_conf(const cfg_t *cfg, rd_kafka_conf_t *conf)
{
	static const char *const defaults[][3] = {
	    {"linger.ms", "queue.buffering.max.ms", "3"},
	    {"max.in.flight.requests.per.connection", "max.in.flight", "1"},
	    {"compression.type", "compression.codec", "none"},
	    {"socket.nagle.disable", NULL, "true"},
	};
	for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++)
		if (!json_object_get(cfg->kafka, defaults[i][0]) &&
		    !(defaults[i][1] && json_object_get(cfg->kafka, defaults[i][1])))
			rd_kafka_conf_set(conf, defaults[i][0], defaults[i][2], NULL, 0);
}

static void *poll_main(void *arg)
{
	trk_http_t *h = arg;
	int64_t last = 0;
	while (!h->stopping) {
		rd_kafka_poll(h->rk, 100); /* delivery reports: webhooks answered (hooks.c) */
		int64_t now = clock_mono_ms();
		if (now - last < 100) /* returns at each report: the rest every 100 ms */
			continue;
		last = now;
		trk_whack_tick(h->ack, now); /* waits past their time: 503 (hooks.c logs each) */
		if (h->seen) {               /* the replay keys of the last 100 ms to disk */
			pthread_mutex_lock(&h->smu);
			trk_store_seen_flush(h->seen);
			pthread_mutex_unlock(&h->smu);
		}
	}
	return NULL;
}

/* ---- RFC 8058 one-click unsubscribe ---- */

static enum MHD_Result unsubscribe(trk_http_t *h, struct MHD_Connection *c, const char *method,
                                   const char *url)
{
	static const char head[] = "<!doctype html><html><head><meta charset=\"utf-8\"><meta "
	                           "name=\"viewport\" content=\"width=device-width\"><title>Unsubscribe"
	                           "</title><style>body{font:16px system-ui,sans-serif;max-width:34em;"
	                           "margin:3em auto;padding:0 1em}button{font-size:16px;padding:.5em 1em}"
	                           "</style></head><body>";
	if (!h->unsub)
		return answer(c, 503, "text/html; charset=utf-8",
		              "<p>Unsubscribe links are not configured on this server.</p>", 59);
	const char *tok = url + 3;
	char camp[EMAIL_CAMPAIGN_MAX + 1], addr[EMAIL_ADDR_MAX + 1];
	if (email_unsub_verify(h->unsub, tok, strlen(tok), camp, sizeof camp, addr, sizeof addr)) {
		pthread_mutex_lock(&h->mu);
		h->unsub_bad++;
		pthread_mutex_unlock(&h->mu);
		buf_t b;
		buf_init(&b, 4096);
		buf_puts(&b, head);
		buf_puts(&b,
		         "<h1>This unsubscribe link is not valid</h1><p>It may have been cut short "
		         "when it was copied. Please use the link from the email itself.</p></body></html>");
		enum MHD_Result r = answer(c, 400, "text/html; charset=utf-8", b.p, b.len);
		buf_free(&b);
		return r;
	}
	buf_t b;
	buf_init(&b, 16384);
	buf_puts(&b, head);
	enum MHD_Result r;
	if (!strcmp(method, "POST")) {
		msg_optout_t o = {.channel = MSG_CH_EMAIL,
		                  .address = addr,
		                  .optin = 0,
		                  .source = "one_click",
		                  .campaign = camp,
		                  .ts_ms = clock_wall_ms()};
		int rc = trk_wh_produce_optout(h, 0, &o);
		if (!rc && kq_flush(h->rk, 5000))
			rc = TOCSIN_ERR_TIMEOUT;
		if (rc) {
			buf_puts(&b, "<h1>Please try again</h1><p>We could not record your request just now."
			             "</p></body></html>");
			r = answer(c, 503, "text/html; charset=utf-8", b.p, b.len);
		} else {
			pthread_mutex_lock(&h->mu);
			h->unsub_ok++;
			pthread_mutex_unlock(&h->mu);
			log_info("event=unsubscribe source=one_click campaign=%s", camp);
			buf_puts(&b, "<h1>You are unsubscribed</h1><p>You will get no more email from us.</p>"
			             "</body></html>");
			r = answer(c, 200, "text/html; charset=utf-8", b.p, b.len);
		}
	} else {
		/* GET: a landing page only (mail scanners follow links); the button POSTs. */
		buf_puts(&b, "<h1>Unsubscribe?</h1><p>Press the button to stop getting these emails.</p>"
		             "<form method=\"post\"><button type=\"submit\">Unsubscribe</button></form>"
		             "</body></html>");
		r = answer(c, 200, "text/html; charset=utf-8", b.p, b.len);
	}
	buf_free(&b);
	return r;
}

/* ---- controls ---- */

static void cache_clear(trk_http_t *h);

static enum MHD_Result control(trk_http_t *h, struct MHD_Connection *c, const char *kind,
                               const char *name, const char *action)
{
	if (!trk_ctl_tokens_count(h->tokens))
		return trk_http_answer_err(c, 403,
		                           "controls are disabled: set tracker.control_token_env "
		                           "or tracker.control_tokens and their environment variables");
	trk_role_t role = TRK_ROLE_VIEWER;
	const char *who = trk_web_token_who(h->tokens, c, &role);
	if (!who) {
		pthread_mutex_lock(&h->mu);
		h->ctl_denied++;
		pthread_mutex_unlock(&h->mu);
		log_warn("event=control_denied %s=%s action=%s", kind, name, action);
		return trk_http_answer_err(c, 401, "missing or wrong control token");
	}
	if (role < TRK_ROLE_ADMIN) {
		pthread_mutex_lock(&h->mu);
		h->ctl_denied++;
		pthread_mutex_unlock(&h->mu);
		log_warn("event=control_denied %s=%s action=%s actor=%s role=%s", kind, name,
		         action, who, trk_role_name(role));
		return trk_http_answer_err(c, 403,
		                           "the controls need the admin role (your token's role is "
		                           "not admin)");
	}
	char err[512];
	int rc;
	if (!strcmp(kind, "campaign")) {
		trk_store_t *rd = trk_http_reader_get(h, err, sizeof err);
		rc = trk_ctl_campaign(h->rk, rd, name, action, who, err, sizeof err);
		trk_http_reader_put(h, rd);
	} else {
		rc = trk_ctl_vendor(h->rk, h->cfg, name, action, who, err, sizeof err);
	}
	if (rc == TOCSIN_ERR_NOTFOUND)
		return trk_http_answer_err(c, 404, err);
	if (rc == TOCSIN_ERR_STATE)
		return trk_http_answer_err(c, 409, err);
	if (rc == TOCSIN_ERR_INVAL)
		return trk_http_answer_err(c, 400, err);
	if (rc)
		return trk_http_answer_err(c, 503, err);
	cache_clear(h); /* the next poll asks the store again */
	buf_t b;
	buf_init(&b, 4096);
	buf_printf(&b, "{\"ok\":true,\"%s\":", kind);
	buf_json_str(&b, name, strlen(name));
	buf_printf(&b, ",\"action\":\"%s\"}\n", action);
	enum MHD_Result r = answer(c, 200, "application/json", b.p, b.len);
	buf_free(&b);
	return r;
}

/* ---- routing ---- */

static const char *arg(struct MHD_Connection *c, const char *k)
{
	return MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, k);
}

/* Query argument k as a strict decimal int into *out (left as is when absent):
 * 0, or TOCSIN_ERR_INVAL with the reason in b ("limit=4294967297" is refused,
 * not read as 1). The endpoint checks the range. */
static int int_arg(struct MHD_Connection *c, const char *k, int *out, buf_t *b)
{
	const char *s = arg(c, k);
	if (!s || !num_int(s, INT32_MIN, INT32_MAX, out))
		return 0;
	buf_reset(b);
	buf_printf(b, "%s must be a decimal integer in range", k);
	return TOCSIN_ERR_INVAL;
}

/* The endpoints the dashboard polls (their answers may be up to api_cache_ms old). */
static int cacheable(const char *url)
{
	if (!strcmp(url, "/api/campaigns") || !strcmp(url, "/api/vendors") ||
	    !strcmp(url, "/api/series") || !strcmp(url, "/api/timeline") ||
	    !strcmp(url, "/api/inbound"))
		return 1;
	return !strncmp(url, "/api/campaigns/", 15) && !strchr(url + 15, '/');
}

/* Answer from the cache when raw's answer is fresh enough, or when it is
 * being recomputed by another request and at most 2 s older than that: 1
 * answered. Otherwise 0, and the caller computes it (and must cache_put or
 * cache_done). */
static int cache_answer(trk_http_t *h, struct MHD_Connection *c, const char *raw, enum MHD_Result *ret)
{
	int64_t now = clock_mono_ms();
	int hit = 0, found = 0;
	pthread_mutex_lock(&h->cmu);
	for (int i = 0; i < CACHE_N && !found; i++) {
		acache_t *e = &h->cache[i];
		if (!e->at_ms || strcmp(e->key, raw))
			continue;
		found = 1;
		int64_t age = now - e->at_ms;
		if (age < h->cache_ms || (e->refreshing && age < h->cache_ms + 2000)) {
			*ret = answer(c, 200, "application/json", e->body, e->len);
			hit = 1;
		} else {
			e->refreshing = 1; /* this request recomputes it */
		}
	}
	pthread_mutex_unlock(&h->cmu);
	return hit;
}

/* The recomputation of raw ended without an answer to keep. */
static void cache_done(trk_http_t *h, const char *raw)
{
	pthread_mutex_lock(&h->cmu);
	for (int i = 0; i < CACHE_N; i++)
		if (!strcmp(h->cache[i].key, raw))
			h->cache[i].refreshing = 0;
	pthread_mutex_unlock(&h->cmu);
}

static void cache_put(trk_http_t *h, const char *raw, const buf_t *b)
{
	char *copy = b->len > CACHE_MAX_BODY || strlen(raw) >= CACHE_KEY
	                 ? NULL
	                 : malloc(b->len ? b->len : 1);
	if (!copy) { /* not kept: no stale copy either */
		pthread_mutex_lock(&h->cmu);
		for (int i = 0; i < CACHE_N; i++)
			if (!strcmp(h->cache[i].key, raw))
				h->cache[i].at_ms = h->cache[i].refreshing = 0;
		pthread_mutex_unlock(&h->cmu);
		return;
	}
	memcpy(copy, b->p, b->len);
	pthread_mutex_lock(&h->cmu);
	acache_t *v = &h->cache[0];
	for (int i = 0; i < CACHE_N; i++) {
		acache_t *e = &h->cache[i];
		if (!strcmp(e->key, raw)) {
			v = e;
			break;
		}
		if (e->at_ms < v->at_ms)
			v = e;
	}
	free(v->body);
	snprintf(v->key, sizeof v->key, "%s", raw);
	v->body = copy;
	v->len = b->len;
	v->at_ms = clock_mono_ms();
	v->refreshing = 0;
	pthread_mutex_unlock(&h->cmu);
}

static void cache_clear(trk_http_t *h)
{
	pthread_mutex_lock(&h->cmu);
	for (int i = 0; i < CACHE_N; i++) {
		h->cache[i].at_ms = 0;
		h->cache[i].refreshing = 0;
	}
	pthread_mutex_unlock(&h->cmu);
}

/* /api/vendors: one vendor's webhook counters since start */
static void wh_json(void *ctx, const char *vendor, buf_t *b)
{
	trk_http_t *h = ctx;
	for (size_t i = 0; i < h->nwh; i++) {
		wh_vendor_t *w = &h->wh[i];
		if (strcmp(w->v->name, vendor))
			continue;
		pthread_mutex_lock(&w->mu);
		buf_printf(b,
		           ",\"webhooks\":{\"ok\":%lld,\"forbidden\":%lld,\"bad\":%lld,\"replayed\":%lld,"
		           "\"mismatched\":%lld}",
		           (long long)w->ok, (long long)w->forbidden, (long long)w->bad,
		           (long long)w->replayed, (long long)w->mismatched);
		pthread_mutex_unlock(&w->mu);
	}
}

static enum MHD_Result api_get(trk_http_t *h, struct MHD_Connection *c, const char *url, const char *raw)
{
	int cache = h->cache_ms > 0 && cacheable(url);
	enum MHD_Result cr;
	if (cache && cache_answer(h, c, raw, &cr))
		return cr;
	char err[512];
	trk_store_t *rd = trk_http_reader_get(h, err, sizeof err);
	if (!rd) {
		if (cache)
			cache_done(h, raw);
		return trk_http_answer_err(c, 503, err);
	}
	buf_t b;
	buf_init(&b, 64u << 20);
	int rc;
	const char *ctype = "application/json";
	trk_api_q_t q = {.cfg = h->cfg, .rd = rd, .wh_json = wh_json, .wh_ctx = h};
	if (!strcmp(url, "/api/campaigns"))
		rc = trk_api_campaigns(&q, &b);
	else if (!strcmp(url, "/api/alerts"))
		rc = trk_api_alerts(&q, trk_live_broker_down(h->live), &b);
	else if (!strcmp(url, "/api/vendors"))
		rc = trk_api_vendors(&q, &b);
	else if (!strcmp(url, "/api/series")) {
		int n = 120;
		rc = int_arg(c, "seconds", &n, &b);
		if (!rc)
			rc = trk_api_series(&q, arg(c, "campaign"), n, &b);
	} else if (!strcmp(url, "/api/timeline")) {
		int n = 50;
		rc = int_arg(c, "limit", &n, &b);
		if (!rc)
			rc = trk_api_timeline(&q, n, &b);
	} else if (!strcmp(url, "/api/inbound")) {
		int n = 50;
		rc = int_arg(c, "limit", &n, &b);
		if (!rc)
			rc = trk_api_inbound(&q, n, &b);
	} else if (!strcmp(url, "/api/health")) {
		rc = trk_presence_report(h->cfg, &b);
	} else if (!strncmp(url, "/api/campaigns/", 15)) {
		char id[256];
		const char *p = url + 15, *sl = strchr(p, '/');
		size_t n = sl ? (size_t)(sl - p) : strlen(p);
		if (n == 0 || n >= sizeof id) {
			rc = TOCSIN_ERR_INVAL;
		} else {
			memcpy(id, p, n);
			id[n] = 0;
			if (!sl) {
				rc = trk_api_campaign(&q, id, &b);
			} else if (!strcmp(sl, "/recipients") || !strcmp(sl, "/recipients.csv")) {
				const char *fmt = arg(c, "format");
				int csv = !strcmp(sl, "/recipients.csv") ||
				          (fmt && !strcmp(fmt, "csv"));
				int lim = 100;
				rc = int_arg(c, "limit", &lim, &b);
				if (!rc)
					rc = trk_api_recipients(&q, id, arg(c, "state"),
					                        arg(c, "code"), arg(c, "after"),
					                        csv ? -1 : lim, csv, &b);
				if (csv)
					ctype = "text/csv; charset=utf-8";
			} else {
				rc = TOCSIN_ERR_NOTFOUND;
			}
		}
	} else {
		rc = TOCSIN_ERR_NOTFOUND;
	}
	trk_http_reader_put(h, rd);
	enum MHD_Result r;
	if (rc && cache)
		cache_done(h, raw);
	if (rc == TOCSIN_ERR_NOTFOUND)
		r = trk_http_answer_err(c, 404, "not found");
	else if (rc == TOCSIN_ERR_INVAL)
		r = trk_http_answer_err(c, 400, b.len ? b.p : "bad request");
	else if (rc == TOCSIN_ERR_TOOBIG)
		r = trk_http_answer_err(c, 413, "answer too large: use paging (after=, limit=)");
	else if (rc)
		r = trk_http_answer_err(c, 500, tocsin_strerror(rc));
	else {
		r = answer(c, 200, ctype, b.p, b.len);
		if (cache)
			cache_put(h, raw, &b);
	}
	buf_free(&b);
	return r;
}

static enum MHD_Result metrics(trk_http_t *h, struct MHD_Connection *c)
{
	char err[512];
	trk_store_t *rd = trk_http_reader_get(h, err, sizeof err);
	if (!rd)
		return answer(c, 503, "text/plain", err, strlen(err));
	buf_t b;
	buf_init(&b, 32u << 20);
	trk_api_q_t q = {.cfg = h->cfg, .rd = rd};
	int rc = trk_api_metrics(&q, &b);
	trk_http_reader_put(h, rd);
	struct {
		int64_t lag, total, applied, bad;
	} L = {-1, 0, 0, 0};
	if (h->live) {
		pthread_mutex_lock(&h->live->mu);
		L.lag = h->live->lag;
		L.total = h->live->total;
		L.applied = h->live->applied;
		L.bad = h->live->bad;
		pthread_mutex_unlock(&h->live->mu);
	}
	buf_printf(&b,
	           "# HELP tocsin_tracker_consumer_lag Records on the tracker's topics not yet folded.\n"
	           "# TYPE tocsin_tracker_consumer_lag gauge\ntocsin_tracker_consumer_lag %lld\n"
	           "# HELP tocsin_tracker_records_total Records consumed by the tracker.\n"
	           "# TYPE tocsin_tracker_records_total counter\n"
	           "tocsin_tracker_records_total{result=\"applied\"} %lld\n"
	           "tocsin_tracker_records_total{result=\"ignored\"} %lld\n"
	           "tocsin_tracker_records_total{result=\"bad\"} %lld\n",
	           (long long)L.lag, (long long)L.applied, (long long)(L.total - L.applied - L.bad),
	           (long long)L.bad);
	/* one family after the other (the text format wants each family's samples together) */
	static const char *const fam[3] = {
	    "# HELP tocsin_webhooks_total Webhook requests by vendor and result.\n"
	    "# TYPE tocsin_webhooks_total counter\n",
	    "# HELP tocsin_webhook_events_refused_total Signed webhook events refused as replayed or "
	    "not matching their message.\n# TYPE tocsin_webhook_events_refused_total counter\n",
	    "# HELP tocsin_webhook_auth 1 for how each vendor's webhooks are authenticated.\n"
	    "# TYPE tocsin_webhook_auth gauge\n"};
	for (int f = 0; f < 3; f++) {
		buf_puts(&b, fam[f]);
		for (size_t i = 0; i < h->nwh; i++) {
			wh_vendor_t *w = &h->wh[i];
			pthread_mutex_lock(&w->mu);
			int64_t ok = w->ok, fb = w->forbidden, bad = w->bad;
			int64_t rp = w->replayed, mm = w->mismatched;
			pthread_mutex_unlock(&w->mu);
			const char *vn = w->v->name;
			if (f == 0)
				buf_printf(&b,
				           "tocsin_webhooks_total{vendor=\"%s\",result=\"ok\"} %lld\n"
				           "tocsin_webhooks_total{vendor=\"%s\",result=\"forbidden\"} %lld\n"
				           "tocsin_webhooks_total{vendor=\"%s\",result=\"bad\"} %lld\n",
				           vn, (long long)ok, vn, (long long)fb, vn, (long long)bad);
			else if (f == 1)
				buf_printf(&b,
				           "tocsin_webhook_events_refused_total{vendor=\"%s\",reason=\"replayed\"} "
				           "%lld\ntocsin_webhook_events_refused_total{vendor=\"%s\",reason="
				           "\"mismatched\"} %lld\n",
				           vn, (long long)rp, vn, (long long)mm);
			else
				buf_printf(&b, "tocsin_webhook_auth{vendor=\"%s\",auth=\"%s\"} 1\n",
				           vn, w->auth);
		}
	}
	pthread_mutex_lock(&h->mu);
	buf_printf(&b,
	           "# HELP tocsin_unsubscribe_total One-click unsubscribe requests by result.\n"
	           "# TYPE tocsin_unsubscribe_total counter\n"
	           "tocsin_unsubscribe_total{result=\"ok\"} %lld\n"
	           "tocsin_unsubscribe_total{result=\"invalid\"} %lld\n"
	           "# HELP tocsin_control_denied_total Control requests refused for a missing or wrong token.\n"
	           "# TYPE tocsin_control_denied_total counter\ntocsin_control_denied_total %lld\n"
	           "# HELP tocsin_http_host_refused_total Requests refused for a Host header not in "
	           "tracker.allowed_hosts.\n"
	           "# TYPE tocsin_http_host_refused_total counter\ntocsin_http_host_refused_total %lld\n",
	           (long long)h->unsub_ok, (long long)h->unsub_bad, (long long)h->ctl_denied,
	           (long long)h->host_denied);
	pthread_mutex_unlock(&h->mu);
	if (h->reply) {
		trk_reply_stats_t rs;
		trk_reply_stats(h->reply, &rs);
		buf_printf(&b,
		           "# HELP tocsin_replies_total SMS replies (STOP confirmation, HELP, START) sent "
		           "through a vendor adapter.\n# TYPE tocsin_replies_total counter\n"
		           "tocsin_replies_total{result=\"sent\"} %lld\n"
		           "tocsin_replies_total{result=\"failed\"} %lld\n"
		           "tocsin_replies_total{result=\"dropped\"} %lld\n"
		           "tocsin_replies_total{result=\"limited\"} %lld\n"
		           "tocsin_replies_total{result=\"refused_country\"} %lld\n",
		           (long long)rs.sent, (long long)rs.failed, (long long)rs.dropped,
		           (long long)rs.limited, (long long)rs.refused_country);
	}
	enum MHD_Result r = rc ? answer(c, 500, "text/plain", "metrics failed\n", 15)
	                       : answer(c, 200, "text/plain; version=0.0.4", b.p, b.len);
	buf_free(&b);
	return r;
}

static enum MHD_Result route(trk_http_t *h, struct MHD_Connection *c, const char *url,
                             const char *method, req_t *r);

/* 1 when name[0..n) equals s, ignoring case */
static int name_is(const char *name, size_t n, const char *s)
{
	return strlen(s) == n && !strncasecmp(name, s, n);
}

/* The Host header is one the operator configured (tracker.allowed_hosts: "host" = any
 * port, "host:port" exact), or by default a loopback name or public_url's host. */
static int host_ok(const trk_http_t *h, struct MHD_Connection *c)
{
	const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host");
	if (!host || !*host)
		return 0;
	size_t hl = strlen(host), nl = hl; /* nl: without ":port" */
	const char *colon = strrchr(host, ':');
	if (colon && !strchr(colon, ']'))
		nl = (size_t)(colon - host);
	json_t *ah = h->cfg->allowed_hosts;
	if (ah) {
		size_t i;
		json_t *e;
		json_array_foreach(ah, i, e)
		{
			const char *a = json_string_value(e);
			if (name_is(host, hl, a) || (!strchr(a, ':') && name_is(host, nl, a)))
				return 1;
		}
		return 0;
	}
	if (name_is(host, nl, "127.0.0.1") || name_is(host, nl, "localhost") ||
	    name_is(host, nl, "[::1]"))
		return 1;
	const char *pu = h->cfg->public_url, *p = pu ? strstr(pu, "://") : NULL;
	if (!p)
		return 0;
	p += 3;
	size_t pl = strcspn(p, ":/");
	return pl == nl && !strncasecmp(p, host, nl);
}

/* 403 for a Host the API does not answer (counted, logged bounded). */
static enum MHD_Result host_refused(trk_http_t *h, struct MHD_Connection *c)
{
	pthread_mutex_lock(&h->mu);
	int64_t nth = ++h->host_denied;
	pthread_mutex_unlock(&h->mu);
	if (nth <= 20 || nth % 1000 == 0)
		log_warn("event=host_refused host=\"%.100s\" total=%lld",
		         MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host"), (long long)nth);
	return trk_http_answer_err(c, 403, "Host not allowed: add it to tracker.allowed_hosts");
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *upload,
                               size_t *upload_size, void **con_cls)
{
	(void)version;
	trk_http_t *h = cls;
	req_t *r = *con_cls;
	if (!r)
		return MHD_NO;
	if (!r->started) {
		r->started = 1;
		if (!h->web || !trk_web_wants(url))
			return MHD_YES;
		if (!host_ok(h, c))
			return host_refused(h, c);
		r->web = 1; /* its body (an audience upload) streams to tracker/web.c */
	}
	if (r->web)
		return trk_web_handle(h->web, c, url, method, upload, upload_size, &r->wreq);
	if (r->early || r->tok) /* a webhook resumed (tracker/hooks.c) */
		return trk_wh_resume(h, c, method, url, r);
	if (*upload_size) {
		if (buf_append(&r->body, upload, *upload_size))
			r->too_big = 1;
		*upload_size = 0;
		return MHD_YES;
	}
	if (r->too_big)
		return trk_http_answer_err(c, 413, "request body too large (max 4 MiB)");
	int64_t t = clock_mono_ns();
	enum MHD_Result ret = route(h, c, url, method, r);
	r->work_ns += clock_mono_ns() - t;
	return ret;
}

static enum MHD_Result route(trk_http_t *h, struct MHD_Connection *c, const char *url,
                             const char *method, req_t *r)
{
	int get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
	int post = !strcmp(method, "POST");
	if (!strncmp(url, "/webhooks/", 10) && (post || get))
		return trk_wh_handle(h, c, method, url, r);
	if (!strncmp(url, "/u/", 3) && (post || get))
		return unsubscribe(h, c, method, url);
	if (get && !strcmp(url, "/healthz"))
		return answer(c, 200, "text/plain", "ok\n", 3);
	/* the API, dashboard and metrics answer only the names the operator reaches
	 * them by: a page whose DNS name rebinds to 127.0.0.1 gets nothing */
	if (!host_ok(h, c))
		return host_refused(h, c);
	if (post && !strncmp(url, "/api/", 5)) {
		/* /api/campaigns/<id>/<action> and /api/vendors/<name>/<action> */
		char kind[16], name[256], action[16];
		const char *p = url + 5;
		if (!strncmp(p, "campaigns/", 10)) {
			snprintf(kind, sizeof kind, "campaign");
			p += 10;
		} else if (!strncmp(p, "vendors/", 8)) {
			snprintf(kind, sizeof kind, "vendor");
			p += 8;
		} else
			return trk_http_answer_err(c, 404, "not found");
		const char *sl = strrchr(p, '/');
		if (!sl || sl == p || (size_t)(sl - p) >= sizeof name || strlen(sl + 1) >= sizeof action)
			return trk_http_answer_err(c, 404, "not found");
		memcpy(name, p, (size_t)(sl - p));
		name[sl - p] = 0;
		snprintf(action, sizeof action, "%s", sl + 1);
		return control(h, c, kind, name, action);
	}
	if (!get)
		return trk_http_answer_err(c, 405, "method not allowed");
	if (!strcmp(url, "/") || !strcmp(url, "/index.html"))
		return h->page ? MHD_queue_response(c, 200, h->page)
		               : answer(c, 200, "text/html; charset=utf-8", trk_dashboard_html,
		                        strlen(trk_dashboard_html));
	if (!strcmp(url, "/metrics"))
		return metrics(h, c);
	if (!strncmp(url, "/api/", 5))
		return api_get(h, c, url, r->uri);
	return trk_http_answer_err(c, 404, "not found");
}

/* Parse "HOST:PORT" (HOST must be a loopback IPv4 literal or "localhost"). */
static int parse_listen(const char *s, struct sockaddr_in *sa, char *err, size_t errlen)
{
	const char *colon = strrchr(s, ':');
	char host[64];
	if (!colon || colon == s || (size_t)(colon - s) >= sizeof host) {
		snprintf(err, errlen, "listen address \"%s\" is not HOST:PORT", s);
		return TOCSIN_ERR_INVAL;
	}
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = 0;
	char *end;
	long port = strtol(colon + 1, &end, 10);
	if (*end || end == colon + 1 || port < 0 || port > 65535) {
		snprintf(err, errlen, "listen address \"%s\": bad port", s);
		return TOCSIN_ERR_INVAL;
	}
	memset(sa, 0, sizeof *sa);
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	if (!strcmp(host, "localhost"))
		snprintf(host, sizeof host, "127.0.0.1");
	if (inet_pton(AF_INET, host, &sa->sin_addr) != 1 || (ntohl(sa->sin_addr.s_addr) >> 24) != 127) {
		snprintf(err, errlen,
		         "listen address \"%s\": the tracker listens on 127.0.0.1 only", s);
		return TOCSIN_ERR_INVAL;
	}
	return 0;
}

int trk_listen_check(const char *listen, char *err, size_t errlen)
{
	struct sockaddr_in sa;
	return parse_listen(listen, &sa, err, errlen);
}

static const char *compliance_str(const cfg_t *cfg, const char *k, const char *dflt)
{
	json_t *o = json_object_get(cfg->root, "compliance");
	json_t *v = json_object_get(o, k);
	return json_is_string(v) ? json_string_value(v) : dflt;
}

trk_http_t *trk_http_new(const cfg_t *cfg, const char *listen, trk_live_t *live, char *err, size_t errlen)
{
	struct sockaddr_in sa;
	if (parse_listen(listen, &sa, err, errlen))
		return NULL;
	trk_http_t *h = calloc(1, sizeof *h);
	if (!h) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	h->cfg = cfg;
	h->live = live;
	pthread_mutex_init(&h->mu, NULL);
	const char *prog = compliance_str(cfg, "program", "tocsin alerts");
	snprintf(h->program, sizeof h->program, "%s", prog);
	snprintf(h->help_reply, sizeof h->help_reply, "%s",
	         compliance_str(cfg, "help_reply",
	                        "Rapid-response alerts. Msg frequency varies. Msg&data rates may "
	                        "apply. Reply STOP to stop, HELP for help."));
	snprintf(h->stop_reply, sizeof h->stop_reply, "%s",
	         compliance_str(cfg, "stop_reply",
	                        "You are unsubscribed and will get no more messages. Reply START "
	                        "to resubscribe."));
	snprintf(h->start_reply, sizeof h->start_reply, "%s",
	         compliance_str(cfg, "start_reply",
	                        "You are subscribed again. Reply STOP to stop, HELP for help."));
	if (!(h->tokens = trk_ctl_tokens_new(cfg, err, errlen))) {
		free(h);
		return NULL;
	}
	if (!(h->web = trk_web_new(cfg, h->tokens, err, errlen))) {
		trk_ctl_tokens_free(h->tokens);
		free(h);
		return NULL;
	}
	if (!trk_ctl_tokens_count(h->tokens))
		log_warn("event=controls_disabled reason=\"no control token is set (tracker.control_token_env, "
		         "tracker.control_tokens)\"");
	if (trk_wh_init(h, err, errlen)) {
		trk_http_free(h);
		return NULL;
	}
	char e[256];
	h->unsub = email_unsub_from_cfg(cfg, e, sizeof e);
	if (!h->unsub)
		log_info("event=unsubscribe_disabled reason=\"%s\"", e);
	pthread_mutex_init(&h->cmu, NULL);
	h->cache_ms = CACHE_MS_DEFAULT;
	json_t *cm = json_object_get(json_object_get(cfg->root, "tracker"), "api_cache_ms");
	if (json_is_integer(cm) && json_integer_value(cm) >= 0 && json_integer_value(cm) <= 10000)
		h->cache_ms = (int)json_integer_value(cm);
	else if (cm)
		log_warn("event=config_ignored field=tracker.api_cache_ms reason=\"not an integer "
		         "0..10000\" default=%d",
		         CACHE_MS_DEFAULT);
	h->page = MHD_create_response_from_buffer(strlen(trk_dashboard_html),
	                                          (void *)trk_dashboard_html, MHD_RESPMEM_PERSISTENT);
	if (h->page) {
		MHD_add_response_header(h->page, "Content-Type", "text/html; charset=utf-8");
		MHD_add_response_header(h->page, "Cache-Control", "no-store");
		MHD_add_response_header(h->page, "X-Frame-Options", "DENY");
	}
	h->reply = trk_reply_new(cfg, err, errlen);
	if (!h->reply) {
		trk_http_free(h);
		return NULL;
	}
	if (!(h->ack = trk_whack_new(HTTP_CONN_LIMIT, WH_ACK_TIMEOUT_MS))) {
		snprintf(err, errlen, "out of memory");
		trk_http_free(h);
		return NULL;
	}
	rd_kafka_conf_t *conf = kq_conf_new(cfg, KQ_PRODUCER, "tocsin-tracker-http", NULL, err, errlen);
	if (conf) { /* a webhook is answered once its records' delivery reports came */
		rd_kafka_conf_set_dr_msg_cb(conf, trk_wh_on_delivery);
		rd_kafka_conf_set_opaque(conf, h);
		wh_producer_conf(cfg, conf);
	}
	h->rk = conf ? kq_new(conf, KQ_PRODUCER, 10000, err, errlen) : NULL;
	if (!h->rk) {
		trk_http_free(h);
		return NULL;
	}
	if (pthread_create(&h->poller, NULL, poll_main, h) == 0)
		h->poller_on = 1;
	h->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL_LINUX_ONLY |
	                            MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME,
	                        0, NULL, NULL, handler, h, MHD_OPTION_SOCK_ADDR, &sa,
	                        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)HTTP_THREADS,
	                        MHD_OPTION_CONNECTION_TIMEOUT, HTTP_IDLE_TIMEOUT_S,
	                        MHD_OPTION_CONNECTION_LIMIT, HTTP_CONN_LIMIT,
	                        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)cfg->conns_per_ip,
	                        MHD_OPTION_URI_LOG_CALLBACK, uri_log, h,
	                        MHD_OPTION_NOTIFY_COMPLETED, req_done, h, MHD_OPTION_END);
	if (!h->d) {
		snprintf(err, errlen, "cannot listen on %s (address in use?)", listen);
		trk_http_free(h);
		return NULL;
	}
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
	char ip[32];
	inet_ntop(AF_INET, &sa.sin_addr, ip, sizeof ip);
	snprintf(h->addr, sizeof h->addr, "%s:%u", ip, di ? (unsigned)di->port : 0u);
	char line[80];
	snprintf(line, sizeof line, "%s\n", h->addr);
	if (runfile_write(cfg, "run/track.addr", line, err, errlen)) {
		trk_http_free(h);
		return NULL;
	}
	return h;
}

const char *trk_http_addr(const trk_http_t *h) { return h->addr; }

void trk_http_free(trk_http_t *h)
{
	if (!h)
		return;
	if (h->d && h->rk) /* what waiting webhooks produced, for up to 2 s; then 503 */
		kq_flush(h->rk, 2000);
	if (h->ack)
		trk_whack_shutdown(h->ack); /* every suspended webhook resumed before the stop */
	if (h->d)
		MHD_stop_daemon(h->d);
	h->stopping = 1;
	trk_web_free(h->web); /* waits for a launch it started to be handed over; borrows tokens */
	trk_ctl_tokens_free(h->tokens);
	trk_reply_free(h->reply); /* after the server: no more jobs come in */
	if (h->poller_on)
		pthread_join(h->poller, NULL);
	trk_store_free(h->seen); /* after the poller, which flushes it; writes what is left */
	if (h->rk) {
		if (kq_flush(h->rk, 10000))
			log_warn("event=producer_flush_timeout");
		rd_kafka_destroy(h->rk);
	}
	for (size_t i = 0; i < h->nwh; i++) {
		vnd_free(h->wh[i].a);
		pthread_mutex_destroy(&h->wh[i].mu);
	}
	for (int i = 0; i < h->nreaders; i++)
		trk_store_free(h->readers[i]);
	email_unsub_free(h->unsub);
	if (h->page)
		MHD_destroy_response(h->page);
	for (int i = 0; i < CACHE_N; i++)
		free(h->cache[i].body);
	trk_whack_free(h->ack);
	pthread_mutex_destroy(&h->cmu);
	pthread_mutex_destroy(&h->smu);
	pthread_mutex_destroy(&h->mu);
	free(h);
}
