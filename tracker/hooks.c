/* hooks.c -- the tracker's vendor webhooks: verify, check the carrier, take the replay keys, produce, answer once the broker acknowledged. */
#include "core/clock.h"
#include "core/err.h"
#include "core/hash.h"
#include "core/kq.h"
#include "core/log.h"
#include "core/num.h"
#include "tracker/http_int.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STOP_MEMORY_MS (10 * 60 * 1000)
/* A receipt that overtook its message's accepted record is looked at again every
 * WH_EARLY_STEP_MS for up to WH_EARLY_MAX_MS, WH_EARLY_MAX such requests at once. */
#define WH_EARLY_STEP_MS 200
#define WH_EARLY_MAX_MS 5000
#define WH_EARLY_MAX 256

/* The delivery report of every record this producer sends: a webhook's wait
 * counts it (the poll thread). */
void trk_wh_on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk;
	trk_http_t *h = opaque;
	if (h && h->ack)
		trk_whack_report(h->ack, m->_private, m->err == RD_KAFKA_RESP_ERR_NO_ERROR);
}

/* Produce one record; tok (0: none) is the wait of the webhook it belongs to. */
static int produce_for(trk_http_t *h, uint64_t tok, const char *topic, const char *key, const buf_t *b)
{
	if (tok)
		trk_whack_add(h->ack, tok);
	int rc = kq_produce(h->rk, topic, key, strlen(key), b->p, b->len, trk_whack_opaque(tok));
	if (rc && tok)
		trk_whack_unadd(h->ack, tok);
	return rc;
}

static int produce_status(trk_http_t *h, uint64_t tok, const msg_status_t *s)
{
	buf_t b;
	buf_init(&b, 16384);
	int rc = msg_status_encode(s, &b);
	if (!rc)
		rc = produce_for(h, tok, KQ_T_STATUS, s->id, &b);
	buf_free(&b);
	return rc;
}

int trk_wh_produce_optout(trk_http_t *h, uint64_t tok, const msg_optout_t *o)
{
	char key[400];
	if (msg_optout_key(o->channel, o->address, key, sizeof key) < 0)
		return TOCSIN_ERR_TOOBIG;
	buf_t b;
	buf_init(&b, 8192);
	int rc = msg_optout_encode(o, &b);
	if (!rc)
		rc = produce_for(h, tok, KQ_T_OPTOUTS, key, &b);
	buf_free(&b);
	return rc;
}

/* ---- webhooks ---- */

typedef struct wh_ctx {
	trk_http_t *h;
	wh_vendor_t *w;
	trk_store_t *rd;
	buf_t *reply;  /* inline reply (TwiML) for an inbound message, or empty */
	int64_t now_s; /* the webhook clock */
	uint64_t tok;  /* the request's wait for the broker (tracker/whack.h) */
	buf_t *keys;   /* the replay keys the request holds */
	int produced, failed, replayed, mismatched;
} wh_ctx_t;

static int already_opted_out(trk_store_t *rd, msg_channel_t ch, const char *addr)
{
	if (!rd)
		return 0;
	sqlite3_stmt *q = NULL;
	int yes = 0;
	if (sqlite3_prepare_v2(trk_store_db(rd),
	                       "SELECT optin FROM optouts WHERE channel=?1 AND address=?2", -1, &q,
	                       NULL) == SQLITE_OK) {
		sqlite3_bind_int(q, 1, ch);
		sqlite3_bind_text(q, 2, addr, -1, SQLITE_STATIC);
		yes = sqlite3_step(q) == SQLITE_ROW && sqlite3_column_int(q, 0) == 0;
	}
	sqlite3_finalize(q);
	return yes;
}

/* 1 when addr confirmed an opt-out within STOP_MEMORY_MS; with set, remember it
 * now (set = 1) or forget it (set = -1, an opt-in). */
static int stop_recent(trk_http_t *h, msg_channel_t ch, const char *addr, int set)
{
	uint64_t k = hash64(addr, strlen(addr), (uint64_t)ch + 1) | 1;
	size_t i = k & (STOP_SLOTS - 1);
	int64_t now = clock_mono_ms();
	pthread_mutex_lock(&h->mu);
	int yes = h->stop_h[i] == k && now - h->stop_at[i] < STOP_MEMORY_MS;
	if (set > 0) {
		h->stop_h[i] = k;
		h->stop_at[i] = now;
	} else if (set < 0 && h->stop_h[i] == k) {
		h->stop_h[i] = 0;
	}
	pthread_mutex_unlock(&h->mu);
	return yes;
}

static void set_reply(wh_ctx_t *x, const char *text)
{
	buf_reset(x->reply);
	buf_puts(x->reply, "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Message>");
	buf_xml_text(x->reply, text);
	buf_puts(x->reply, "</Message></Response>");
}

/* Hold the event's replay keys (key2 may be ""): 1 both new (go on), 0 one was
 * seen before or is held by a request in flight, -1 the memory failed (the
 * event is not acted on; the vendor retries). A held key enters the replay
 * memory only once the request's records are acknowledged (wh_release), so a
 * tracker killed before that forgets it and the vendor's retry passes. */
static int seen_take(wh_ctx_t *x, const char *key1, const char *key2)
{
	trk_http_t *h = x->h;
	if (!h->seen)
		return 1;
	const char *k[2] = {key1, key2};
	int r = 1;
	pthread_mutex_lock(&h->smu);
	for (int i = 0; i < 2 && r > 0; i++)
		if (k[i][0])
			r = trk_whack_key_held(h->ack, k[i])
			        ? 0
			        : trk_store_seen_peek(h->seen, k[i], x->now_s);
	for (int i = 0; i < 2 && r > 0; i++)
		if (k[i][0]) {
			r = trk_whack_key_hold(h->ack, k[i]);
			if (r > 0 && buf_append(x->keys, k[i], strlen(k[i]) + 1)) {
				trk_whack_key_drop(h->ack, k[i]);
				r = -1;
			}
			if (r <= 0 && i == 1 && k[0][0]) { /* not held: let go of the first */
				trk_whack_key_drop(h->ack, k[0]);
				x->keys->len -= strlen(k[0]) + 1;
			}
		}
	pthread_mutex_unlock(&h->smu);
	return r < 0 ? -1 : r;
}

/* The request's records are acknowledged (acked): its keys go to the replay
 * memory; or not: they are let go of, so the vendor's retry passes. Either
 * way its wait ends. */
static void wh_release(trk_http_t *h, req_t *r, int acked)
{
	if (r->tok)
		trk_whack_close(h->ack, r->tok);
	r->tok = 0;
	pthread_mutex_lock(&h->smu);
	for (size_t at = 0; at < r->keys.len;) {
		const char *k = r->keys.p + at;
		/* kept twice the freshness window: a replay is refused as stale after it */
		if (acked &&
		    trk_store_seen(h->seen, k, r->now_s, 2 * (int64_t)h->cfg->webhook_max_age_s) < 0)
			log_error("event=replay_key_not_kept key_bytes=%zu", strlen(k));
		trk_whack_key_drop(h->ack, k);
		at += strlen(k) + 1;
	}
	pthread_mutex_unlock(&h->smu);
	buf_reset(&r->keys);
}

typedef struct carrier_q {
	const cfg_vendor_t *v;
	const char *ref;
	char *hit; /* the stored reference that matched */
	size_t hitlen;
} carrier_q_t;

/* 1 when vendor carried an attempt under ref and q's receipt names it */
static int carried(void *ctx, const char *vendor, const char *ref)
{
	carrier_q_t *q = ctx;
	if ((vendor[0] && strcmp(vendor, q->v->name)) || !vnd_ref_matches(q->v->kind, ref, q->ref))
		return 0;
	if (ref[0])
		snprintf(q->hit, q->hitlen, "%s", ref);
	return 1;
}

/* 1 when the receipt ev may be applied to its message: the store does not
 * know the message yet (its accepted record may still be on its way), or
 * this vendor carried it under this reference (now, or in an earlier attempt
 * of a resent message: the store keeps such a late receipt out of the
 * counts). camp gets its campaign; ref the stored reference the receipt
 * matched (all of a Vonage message's part ids: the record carries it, so a
 * part's receipt neither replaces the message's reference with its own part
 * id nor looks like one of an earlier attempt), else (none stored) the
 * receipt's own. */
static int carrier_ok(wh_ctx_t *x, const vnd_wh_event_t *ev, char *camp, size_t camplen, char *ref,
                      size_t reflen)
{
	char vendor[64], stored[sizeof((vnd_result_t *)0)->ref];
	camp[0] = 0;
	snprintf(ref, reflen, "%s", ev->ref);
	if (!x->rd || trk_store_msg_info(x->rd, ev->id, camp, camplen, vendor, sizeof vendor,
	                                 stored, sizeof stored))
		return 1;
	carrier_q_t q = {x->w->v, ev->ref, ref, reflen};
	return carried(&q, vendor, stored) || trk_store_msg_earlier(x->rd, ev->id, carried, &q) == 1;
}

/* Produce ev's address of channel ch as opted out (optin 0) or back in (1), from source, counted
 * against campaign camp ("" or NULL: none), under the webhook's acknowledgement token. */
static int wh_optout(trk_http_t *h, const wh_ctx_t *x, msg_channel_t ch, const vnd_wh_event_t *ev,
                     int optin, const char *source, const char *camp, int64_t now)
{
	msg_optout_t o = {.channel = ch,
	                  .address = ev->address,
	                  .optin = optin,
	                  .source = source,
	                  .campaign = camp && camp[0] ? camp : NULL,
	                  .ts_ms = now};
	return trk_wh_produce_optout(h, x->tok, &o);
}

static int on_wh_event(void *ctx, const vnd_wh_event_t *ev)
{
	wh_ctx_t *x = ctx;
	trk_http_t *h = x->h;
	const cfg_vendor_t *v = x->w->v;
	int64_t now = clock_wall_ms();
	int rc = 0;
	char camp[256], ref[sizeof((vnd_result_t *)0)->ref];
	if (ev->kind == VND_WH_STATUS && !ev->id[0]) {
		log_warn("event=webhook_unmatched vendor=%s ref=%s", v->name, ev->ref);
		return 0;
	}
	if (ev->kind == VND_WH_STATUS && !carrier_ok(x, ev, camp, sizeof camp, ref, sizeof ref)) {
		x->mismatched++;
		return 0;
	}
	int take = seen_take(x, ev->replay, ev->replay_alt);
	if (take == 0) {
		x->replayed++;
		return 0;
	}
	if (take < 0) {
		x->failed++;
		return 0;
	}
	if (ev->kind == VND_WH_STATUS) {
		msg_status_t s = {.id = ev->id,
		                  .campaign = camp,
		                  .channel = v->channel,
		                  .to = ev->address[0] ? ev->address : NULL,
		                  .state = ev->state,
		                  .vendor = v->name,
		                  .vendor_ref = ref[0] ? ref : NULL,
		                  .code = ev->code[0] ? ev->code : NULL,
		                  .detail = ev->detail[0] ? ev->detail : NULL,
		                  .latency_ms = -1,
		                  .attempt = 0,
		                  .ts_ms = now};
		rc = produce_status(h, x->tok, &s);
		if (!rc && ev->optout && ev->address[0])
			rc = wh_optout(h, x, v->channel, ev, 0, "vendor_receipt", camp, now);
	} else if (ev->kind == VND_WH_UNSUB) {
		if (ev->address[0]) {
			if (x->rd)
				trk_store_last_campaign(x->rd, v->channel, ev->address, camp,
				                        sizeof camp);
			rc = wh_optout(h, x, v->channel, ev, 0, "vendor_unsubscribe", camp, now);
		}
	} else if (ev->kind == VND_WH_INBOUND) {
		const char *text = NULL;
		if (ev->keyword == VND_KW_STOP) {
			/* One confirmation: only when this is news. The opt-out counts
			 * against the campaign that last messaged the address. */
			int again = stop_recent(h, v->channel, ev->address, 0) ||
			            already_opted_out(x->rd, v->channel, ev->address);
			if (x->rd)
				trk_store_last_campaign(x->rd, v->channel, ev->address, camp,
				                        sizeof camp);
			rc = wh_optout(h, x, v->channel, ev, 0, "sms_stop", camp, now);
			if (!again && !rc) {
				text = h->stop_reply;
				stop_recent(h, v->channel, ev->address, 1);
			}
		} else if (ev->keyword == VND_KW_START) {
			rc = wh_optout(h, x, v->channel, ev, 1, "sms_start", NULL, now);
			stop_recent(h, v->channel, ev->address, -1);
			text = h->start_reply;
		} else if (ev->keyword == VND_KW_HELP) {
			text = h->help_reply;
		}
		/* The reply: Twilio takes it inline (TwiML in the answer); other
		 * vendors get a one-message request from the worker, after the
		 * webhook is acknowledged. */
		if (text && !rc) {
			if (!strcmp(v->kind, "twilio")) {
				if (!h->reply || !trk_reply_permit(h->reply, v, ev->address, ev->to))
					set_reply(x, text);
			} else if (h->reply) {
				int qr = trk_reply_sms(h->reply, v, ev->address, ev->to, text);
				/* the limits log their own refusals (bounded) */
				if (qr && qr != TOCSIN_ERR_TOOBIG && qr != TOCSIN_ERR_INVAL)
					log_warn("event=reply_not_queued vendor=%s kind=%s err=\"%s\"",
					         v->name, vnd_kw_name(ev->keyword),
					         tocsin_strerror(qr));
			}
		}
		/* Every inbound message is kept; free text is what staff review. */
		if (h->reply)
			trk_reply_inbound(h->reply, now, v->name, ev->address, ev->to, ev->body,
			                  vnd_kw_name(ev->keyword));
	}
	if (rc)
		x->failed++; /* not acted on: the request's keys are let go of, the vendor retries */
	else
		x->produced++;
	return 0;
}

/* A taken webhook whose wait ended: the answer kept for it once every record
 * was acknowledged, else 503 (its keys let go of: the vendor's retry passes). */
static enum MHD_Result wh_resumed(trk_http_t *h, struct MHD_Connection *c, req_t *r)
{
	int ok = trk_whack_close(h->ack, r->tok);
	r->tok = 0;
	wh_release(h, r, ok);
	if (ok)
		return trk_web_answer(c, r->code, r->ctype, r->ans.p, r->ans.len);
	pthread_mutex_lock(&h->mu);
	int64_t nth = ++h->unacked;
	pthread_mutex_unlock(&h->mu);
	if (nth <= 20 || nth % 1000 == 0)
		log_warn("event=webhook_unacked path=%.200s total=%lld reason=\"the broker did not "
		         "acknowledge its records within %d ms: 503, the vendor retries\"",
		         r->uri, (long long)nth, WH_ACK_TIMEOUT_MS);
	return trk_http_answer_err(c, 503, "the broker did not acknowledge the events; retry");
}

/* 1 when request r, a receipt refused only as mismatched, may wait for its
 * message's accepted record (a receipt can overtake it: the dispatcher's record
 * goes through Kafka and the ingest, the vendor's webhook straight here). */
static int wh_early(trk_http_t *h, req_t *r)
{
	int64_t now = clock_mono_ms();
	if (r->early_t0 < 0)
		return 0;
	if (r->early_t0 > 0)
		return now - r->early_t0 < WH_EARLY_MAX_MS;
	pthread_mutex_lock(&h->mu);
	int ok = h->nearly < WH_EARLY_MAX;
	h->nearly += ok;
	pthread_mutex_unlock(&h->mu);
	r->early_t0 = ok ? now : -1;
	return ok;
}

/* r no longer waits for an accepted record (taken: its receipt was taken after waiting) */
static void wh_early_end(trk_http_t *h, req_t *r, int taken)
{
	if (r->early_t0 <= 0)
		return;
	int64_t waited = clock_mono_ms() - r->early_t0;
	r->early_t0 = -1;
	pthread_mutex_lock(&h->mu);
	h->nearly--;
	int64_t nth = h->early_ok += taken;
	pthread_mutex_unlock(&h->mu);
	if (taken && (nth <= 20 || nth % 1000 == 0))
		log_info("event=webhook_early_taken path=%.200s waited_ms=%lld total=%lld", r->uri,
		         (long long)waited, (long long)nth);
}

/* Count request x's outcome at its vendor w (whose mutex the caller holds; it is
 * released here): a request all of whose events were refused is refused as a
 * whole (*n becomes the error, err says why). Returns the how-manieth refusal of
 * its kind (0 when taken), so logs stay bounded under a flood. */
static int64_t wh_count(wh_vendor_t *w, const wh_ctx_t *x, int *np, char *err, size_t errlen)
{
	int n = *np;
	/* a request all of whose events were refused is refused as a whole */
	if (n > 0 && !x->produced && !x->failed && (x->mismatched || x->replayed)) {
		snprintf(err, errlen, "vendor %s: %s", w->v->name,
		         x->mismatched ? "receipt for a message this vendor did not carry (vendor or "
		                         "reference differs)"
		                       : "replayed webhook (its token or event id was taken before)");
		n = x->mismatched ? TOCSIN_ERR_AUTH : TOCSIN_ERR_STATE;
	}
	w->replayed += x->replayed;
	w->mismatched += x->mismatched;
	int64_t nth = 0;
	if (n == TOCSIN_ERR_AUTH)
		nth = ++w->forbidden;
	else if (n < 0)
		nth = ++w->bad;
	else {
		w->ok++;
		w->events += n;
	}
	int64_t nmis = w->mismatched, nrep = w->replayed;
	pthread_mutex_unlock(&w->mu);
	if (x->mismatched && (nmis <= 20 || nmis % 1000 == 0))
		log_warn("event=webhook_mismatch vendor=%s ignored=%d total=%lld", w->v->name,
		         x->mismatched, (long long)nmis);
	if (x->replayed && (nrep <= 20 || nrep % 1000 == 0))
		log_warn("event=webhook_replay vendor=%s ignored=%d total=%lld", w->v->name,
		         x->replayed, (long long)nrep);
	*np = n;
	return nth;
}

static const char *hdr_lookup(void *ctx, const char *name)
{
	return MHD_lookup_connection_value((struct MHD_Connection *)ctx, MHD_HEADER_KIND, name);
}

enum MHD_Result trk_wh_handle(trk_http_t *h, struct MHD_Connection *c, const char *method,
                              const char *url, req_t *r)
{
	const char *name = url + strlen("/webhooks/");
	const char *slash = strchr(name, '/');
	size_t nl = slash ? (size_t)(slash - name) : strlen(name);
	wh_vendor_t *w = NULL;
	for (size_t i = 0; i < h->nwh; i++)
		if (strlen(h->wh[i].v->name) == nl && !strncmp(h->wh[i].v->name, name, nl))
			w = &h->wh[i];
	if (!w)
		return trk_http_answer_err(c, 404, "no such vendor in the configuration");
	if (!w->a)
		return trk_http_answer_err(c, 503,
		                           "webhooks for this vendor are not configured (secret unset)");
	/* inbound texts by POST only (an <img> on any page could fire a GET) */
	if (slash && !strcmp(slash, "/inbound") && strcmp(method, "POST"))
		return trk_http_answer_err(c, 405, "inbound messages are taken by POST only");
	char full[MAX_URI + 1024];
	const char *base = h->cfg->public_url ? h->cfg->public_url : "";
	size_t bl = strlen(base);
	while (bl > 0 && base[bl - 1] == '/')
		bl--;
	snprintf(full, sizeof full, "%.*s%s", (int)bl, base, r->uri);
	const char *q = strchr(r->uri, '?');
	log_debug("event=webhook vendor=%s url=\"%s\" bytes=%zu", w->v->name, full, r->body.len);
	vnd_wh_req_t rq = {.method = method,
	                   .url = full,
	                   .query = q ? q + 1 : NULL,
	                   .content_type = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	                                                               "Content-Type"),
	                   .header = hdr_lookup,
	                   .header_ctx = c,
	                   .body = r->body.p,
	                   .bodylen = r->body.len};
	char err[256] = "";
	buf_t reply;
	buf_init(&reply, 4096);
	char e2[256];
	r->tok = trk_whack_open(h->ack);
	if (!r->tok) {
		buf_free(&reply);
		return trk_http_answer_err(c, 503, "too many webhooks waiting for the broker; retry");
	}
	r->now_s = vnd_wh_now_s();
	wh_ctx_t x = {.h = h,
	              .w = w,
	              .rd = trk_http_reader_get(h, e2, sizeof e2),
	              .reply = &reply,
	              .now_s = r->now_s,
	              .tok = r->tok,
	              .keys = &r->keys};
	pthread_mutex_lock(&w->mu);
	int n = vnd_webhook(w->a, &rq, on_wh_event, &x, err, sizeof err);
	if (n > 0 && !x.produced && !x.failed && x.mismatched && !x.replayed && wh_early(h, r)) {
		/* looked at again in WH_EARLY_STEP_MS (nothing taken, nothing counted yet) */
		pthread_mutex_unlock(&w->mu);
		trk_http_reader_put(h, x.rd);
		buf_free(&reply);
		r->early = 1;
		if (trk_whack_sleep(h->ack, r->tok, c, WH_EARLY_STEP_MS))
			return MHD_YES;
		r->early = 0;
		wh_release(h, r, 0);
		wh_early_end(h, r, 0);
		return trk_http_answer_err(c, 503, "the tracker is stopping; retry");
	}
	wh_early_end(h, r, n > 0 && !x.mismatched);
	int64_t nth = wh_count(w, &x, &n, err, sizeof err);
	trk_http_reader_put(h, x.rd);
	enum MHD_Result ret;
	int say = nth <= 20 || nth % 1000 == 0;
	if (n >= 0 && !x.failed) {
		/* Taken: answered 200 only once the broker acknowledged every record
		 * the events produced (a SIGKILL before that leaves the vendor
		 * unanswered, so it retries, and the keys unkept, so the retry passes). */
		buf_reset(&r->ans);
		r->code = 200;
		if (reply.len) {
			r->ctype = "text/xml";
			buf_append(&r->ans, reply.p, reply.len);
		} else if (!strcmp(w->v->kind, "twilio")) {
			r->ctype = "text/xml";
			buf_puts(&r->ans,
			         "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response></Response>");
		} else {
			r->ctype = "application/json";
			buf_puts(&r->ans, "{\"ok\":true}\n");
		}
		buf_free(&reply);
		if (trk_whack_arm(h->ack, r->tok, c))
			return MHD_YES; /* suspended: trk_wh_resume answers */
		return wh_resumed(h, c, r);
	}
	wh_release(h, r, 0);
	if (n == TOCSIN_ERR_AUTH) {
		if (say)
			log_warn("event=webhook_forbidden vendor=%s path=%s err=\"%s\" total=%lld",
			         w->v->name, url, err, (long long)nth);
		ret = trk_http_answer_err(c, 403, err[0] ? err : "bad or missing signature");
	} else if (n == TOCSIN_ERR_TOOBIG) {
		ret = trk_http_answer_err(c, 413, "body too large");
	} else if (n < 0) {
		if (say)
			log_warn("event=webhook_bad vendor=%s err=\"%s\" total=%lld", w->v->name,
			         err, (long long)nth);
		ret = trk_http_answer_err(c, 400, err[0] ? err : "unreadable webhook");
	} else {
		/* Not acknowledged: the vendor retries and nothing is lost. */
		ret = trk_http_answer_err(c, 503, "could not queue the events; retry");
	}
	buf_free(&reply);
	return ret;
}

enum MHD_Result trk_wh_resume(trk_http_t *h, struct MHD_Connection *c, const char *method,
                              const char *url, req_t *r)
{
	if (r->early) { /* a receipt's wait for its accepted record: look again */
		r->early = 0;
		wh_release(h, r, 0);
		return trk_wh_handle(h, c, method, url, r);
	}
	return wh_resumed(h, c, r); /* the broker answered, or its wait ended */
}

void trk_wh_req_end(trk_http_t *h, req_t *r)
{
	if (r->tok) /* a waiting webhook whose connection ended: it was not answered */
		wh_release(h, r, 0);
	wh_early_end(h, r, 0);
}

int trk_wh_init(trk_http_t *h, char *err, size_t errlen)
{
	for (size_t i = 0; i < h->cfg->nvendors && h->nwh < MAX_WH_VENDORS; i++) {
		wh_vendor_t *w = &h->wh[h->nwh++];
		w->v = &h->cfg->vendors[i];
		pthread_mutex_init(&w->mu, NULL);
		char e[256];
		w->a = vnd_new(h->cfg, w->v, e, sizeof e);
		if (!w->a)
			log_warn("event=webhooks_disabled vendor=%s reason=\"%s\"", w->v->name, e);
		w->auth = vnd_wh_auth_cfg(w->v);
		if (!strcmp(w->auth, "none"))
			log_error("event=webhooks_unsigned vendor=%s reason=\"webhook_auth is none: anyone "
			          "who can reach /webhooks/%s/ can forge receipts and inbound texts\"",
			          w->v->name, w->v->name);
		else if (!strcmp(w->auth, "unverifiable"))
			log_error("event=webhooks_unverifiable vendor=%s reason=\"no key to verify its "
			          "webhooks (%s): every one is refused with 403\"",
			          w->v->name,
			          !strcmp(w->v->kind, "vonage")
			              ? "set signature_secret_env and that environment variable"
			              : "set webhook_public_key");
	}
	const char *tn = getenv("TOCSIN_TEST_NOW_S");
	int64_t tv;
	if (tn && *tn && num_i64(tn, 1, INT64_MAX / 4, &tv)) {
		snprintf(err, errlen, "TOCSIN_TEST_NOW_S=\"%.40s\" is not a Unix time in seconds", tn);
		return TOCSIN_ERR_CONFIG;
	}
	if (tn && *tn)
		log_warn("event=test_clock now_s=%lld reason=\"TOCSIN_TEST_NOW_S is set (tests only): "
		         "webhook freshness and replay memory use it\"",
		         (long long)vnd_wh_now_s());
	pthread_mutex_init(&h->smu, NULL);
	char sp[4200];
	snprintf(sp, sizeof sp, "%s-webhooks", h->cfg->db_path);
	h->seen = trk_store_open_seen(sp, err, errlen);
	return h->seen ? 0 : TOCSIN_ERR_IO;
}
