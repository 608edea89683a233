/* sendgrid.c -- the SendGrid v3 Mail Send adapter: batches of personalizations, signed event webhooks. */
#include "vendors/vnd_int.h"

#include "core/err.h"
#include "core/hash.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SG_MAX_BATCH 1000
#define SG_MAX_ANSWER (256u << 10)
#define SG_MAX_CUSTOM_ARGS 10000
#define SG_MAX_SUBS                                                                                \
	10000 /* bytes of substitutions per personalization (the JSON object, keys
                             included: never less than SendGrid's count; = EMAIL_SUBS_MAX) */

/* append the raw JSON object text j (validated) or fail */
static int put_headers(buf_t *b, const char *raw, const char *id, char *err, size_t errlen)
{
	json_t *h = json_loads(raw, 0, NULL);
	if (!json_is_object(h)) {
		json_decref(h);
		snprintf(err, errlen, "message %s: \"headers\" is not a JSON object", id ? id : "?");
		return TOCSIN_ERR_INVAL;
	}
	const char *k;
	json_t *v;
	int first = 1, rc = buf_putc(b, '{');
	json_object_foreach(h, k, v)
	{
		if (!json_is_string(v))
			continue;
		if (!first)
			rc = rc ? rc : buf_putc(b, ',');
		first = 0;
		rc = rc ? rc : buf_json_str(b, k, strlen(k));
		rc = rc ? rc : buf_putc(b, ':');
		rc = rc ? rc : buf_json_str(b, json_string_value(v), json_string_length(v));
	}
	rc = rc ? rc : buf_putc(b, '}');
	json_decref(h);
	return rc;
}

/* Walk a flat JSON object of strings (as the producer writes "headers" and
 * "subs"): for each member call fn with the raw key (between its quotes) and
 * the raw value token (quotes included, escapes kept). Returns 0, or -1 when
 * raw is not such an object (then the caller falls back or refuses). No
 * allocation. */
typedef int (*flat_fn)(void *ctx, const char *k, size_t kl, const char *v, size_t vl, int first);
static const char *str_end(const char *p)
{ /* p at the opening quote; returns past the closing quote or NULL */
	for (p++;;) {
		size_t n = strcspn(p, "\"\\"); /* runs of plain bytes at library speed */
		int bad = 0;
		for (size_t i = 0; i < n; i++)
			bad |= (unsigned char)p[i] < 0x20;
		if (bad)
			return NULL;
		p += n;
		if (*p == '"')
			return p + 1;
		if (!*p || !*++p) /* the end, or a backslash at the end */
			return NULL;
		p++; /* the escaped byte */
	}
}
static const char *skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}
static int flat_each(const char *raw, void *ctx, flat_fn fn)
{
	const char *p = skip_ws(raw);
	if (*p++ != '{')
		return -1;
	p = skip_ws(p);
	if (*p == '}')
		return *skip_ws(p + 1) ? -1 : 0;
	for (int first = 1;; first = 0) {
		if (*p != '"')
			return -1;
		const char *k = p + 1, *ke = str_end(p);
		if (!ke)
			return -1;
		p = skip_ws(ke);
		if (*p++ != ':')
			return -1;
		p = skip_ws(p);
		if (*p != '"')
			return -1;
		const char *v = p, *ve = str_end(p);
		if (!ve)
			return -1;
		if (fn && fn(ctx, k, (size_t)(ke - 1 - k), v, (size_t)(ve - v), first))
			return -1;
		p = skip_ws(ve);
		if (*p == ',') {
			p = skip_ws(p + 1);
			continue;
		}
		if (*p == '}' && !*skip_ws(p + 1))
			return 0;
		return -1;
	}
}

/* "key":"value" as it is */
static int put_member(void *ctx, const char *k, size_t kl, const char *v, size_t vl, int first)
{
	buf_t *b = ctx;
	int rc = first ? 0 : buf_putc(b, ',');
	rc = rc ? rc : buf_putc(b, '"');
	rc = rc ? rc : buf_append(b, k, kl);
	rc = rc ? rc : buf_puts(b, "\":");
	return rc ? rc : buf_append(b, v, vl);
}

/* "{{{tocsin:key}}}":"value": SendGrid replaces the key literally, everywhere in
 * subject and content, for this personalization only */
static int put_sub(void *ctx, const char *k, size_t kl, const char *v, size_t vl, int first)
{
	buf_t *b = ctx;
	if (kl == 0 || kl > MSG_SUB_NAME_MAX)
		return -1;
	for (size_t i = 0; i < kl; i++)
		if (!(isalnum((unsigned char)k[i]) || k[i] == '_'))
			return -1;
	int rc = first ? 0 : buf_putc(b, ',');
	rc = rc ? rc : buf_puts(b, "\"" MSG_SUB_PREFIX);
	rc = rc ? rc : buf_append(b, k, kl);
	rc = rc ? rc : buf_puts(b, MSG_SUB_SUFFIX "\":");
	return rc ? rc : buf_append(b, v, vl);
}

/* Headers every message of a batch has with the same value (List-Unsubscribe-Post)
 * go once at the top level instead of in each personalization. */
#define SG_MAX_SHARED 8
typedef struct hspan {
	const char *k, *v;
	size_t kl, vl;
	int keep;
} hspan_t;
typedef struct hspans {
	hspan_t s[SG_MAX_SHARED];
	int n;
	buf_t *b;  /* emit_unshared: where to write */
	int wrote; /* emit_unshared: members written */
} hspans_t;

static int collect(void *ctx, const char *k, size_t kl, const char *v, size_t vl, int first)
{
	(void)first;
	hspans_t *h = ctx;
	if (h->n >= SG_MAX_SHARED)
		return -1;
	h->s[h->n++] = (hspan_t){k, v, kl, vl, 1};
	return 0;
}

static const hspan_t *find_span(const hspans_t *h, const char *k, size_t kl)
{
	for (int i = 0; i < h->n; i++)
		if (h->s[i].keep && h->s[i].kl == kl && !memcmp(h->s[i].k, k, kl))
			return &h->s[i];
	return NULL;
}

/* the members of one message's headers that are not shared */
static int emit_unshared(void *ctx, const char *k, size_t kl, const char *v, size_t vl, int first)
{
	(void)first;
	hspans_t *sh = ctx;
	if (find_span(sh, k, kl))
		return 0;
	return put_member(sh->b, k, kl, v, vl, sh->wrote++ == 0);
}

/* sh = the headers (raw key and value) all n messages carry identically */
static void shared_headers(const msg_out_t *const *msgs, size_t n, hspans_t *sh)
{
	memset(sh, 0, sizeof *sh);
	if (n < 2 || !msgs[0]->headers || flat_each(msgs[0]->headers, sh, collect)) {
		sh->n = 0;
		return;
	}
	for (size_t i = 1; i < n; i++) {
		hspans_t mi;
		memset(&mi, 0, sizeof mi);
		if (!msgs[i]->headers || flat_each(msgs[i]->headers, &mi, collect)) {
			sh->n = 0;
			return;
		}
		int left = 0;
		for (int k = 0; k < sh->n; k++) {
			const hspan_t *o = sh->s[k].keep ? find_span(&mi, sh->s[k].k, sh->s[k].kl)
			                                 : NULL;
			sh->s[k].keep = o && o->vl == sh->s[k].vl && !memcmp(o->v, sh->s[k].v, o->vl);
			left += sh->s[k].keep;
		}
		if (!left) {
			sh->n = 0;
			return;
		}
	}
}

/* every "to" an address, and one address once per request (else SendGrid answers 400 for
 * the whole batch) */
static int sg_check_to(const msg_out_t *const *msgs, size_t n, char *err, size_t errlen)
{
	uint64_t hs[SG_MAX_BATCH];
	uint16_t ht[2 * SG_MAX_BATCH + 48]; /* open addressing: index + 1 of each address */
	const size_t hmask = 2047;
	memset(ht, 0, sizeof ht);
	for (size_t i = 0; i < n; i++) {
		const msg_out_t *m = msgs[i];
		if (!m->to || !strchr(m->to, '@')) {
			snprintf(err, errlen, "message %s: \"to\" %.80s is not an email address",
			         m->id ? m->id : "?", m->to ? m->to : "(none)");
			return TOCSIN_ERR_INVAL;
		}
		hs[i] = hash64(m->to, strlen(m->to), 5);
		size_t j = hs[i] & hmask;
		for (; ht[j]; j = (j + 1) & hmask) {
			size_t k = ht[j] - 1u;
			if (hs[k] == hs[i] && !strcmp(msgs[k]->to, m->to)) {
				snprintf(err, errlen,
				         "batch: address %.80s appears twice (messages %s and %s)",
				         m->to, msgs[k]->id ? msgs[k]->id : "?", m->id ? m->id : "?");
				return TOCSIN_ERR_INVAL;
			}
		}
		ht[j] = (uint16_t)(i + 1);
	}
	return 0;
}

/* The steps of one personalization below return 0, or an error described in err that
 * fails the batch as it is; a buffer past its cap is left in *brc (the caller's "too
 * large" answer). */

/* its "headers": the members the batch does not share (all shared: no "headers"), or the
 * careful way when they are not a flat object of strings */
static int sg_put_own_headers(buf_t *b, const msg_out_t *m, hspans_t *sh, int *brc, char *err,
                              size_t errlen)
{
	size_t start = b->len;
	int rc = buf_puts(b, ",\"headers\":{");
	size_t mark = b->len;
	sh->b = b;
	sh->wrote = 0;
	if (!rc && flat_each(m->headers, sh, emit_unshared) == 0) {
		if (sh->wrote)
			rc = buf_putc(b, '}');
		else
			b->len = start; /* every header is shared: none here */
	} else if (!rc) {               /* not a flat object of strings: the careful way */
		b->len = mark - 1;
		int hr = put_headers(b, m->headers, m->id, err, errlen);
		if (hr)
			return hr;
	}
	*brc = rc;
	return 0;
}

/* its "substitutions", within SendGrid's size */
static int sg_put_subs(buf_t *b, const msg_out_t *m, int *brc, char *err, size_t errlen)
{
	int rc = buf_puts(b, ",\"substitutions\":");
	size_t mark = b->len; /* the object's bytes, as the producer counts them */
	rc = rc ? rc : buf_putc(b, '{');
	if (!rc && flat_each(m->subs, b, put_sub)) {
		snprintf(err, errlen,
		         "message %s: \"subs\" is not an object of strings with names of "
		         "1-%d letters, digits or _",
		         m->id ? m->id : "?", MSG_SUB_NAME_MAX);
		return TOCSIN_ERR_INVAL;
	}
	rc = rc ? rc : buf_putc(b, '}');
	if (!rc && b->len - mark >= SG_MAX_SUBS) {
		snprintf(err, errlen, "message %s: substitutions exceed SendGrid's %d bytes",
		         m->id ? m->id : "?", SG_MAX_SUBS);
		return TOCSIN_ERR_TOOBIG;
	}
	*brc = rc;
	return 0;
}

/* one personalization: to, custom_args (tocsin_id; tocsin_campaign unless the batch has one
 * campaign), its own headers, its substitutions */
static int sg_put_one(buf_t *b, const msg_out_t *m, int first, int one_campaign, hspans_t *sh,
                      int *brc, char *err, size_t errlen)
{
	int rc = first ? 0 : buf_putc(b, ',');
	rc = rc ? rc : buf_puts(b, "{\"to\":[{\"email\":");
	rc = rc ? rc : buf_json_str(b, m->to, strlen(m->to));
	rc = rc ? rc : buf_puts(b, "}],\"custom_args\":{\"tocsin_id\":");
	rc = rc ? rc : buf_json_str(b, m->id ? m->id : "", m->id ? strlen(m->id) : 0);
	if (!rc && m->campaign) {
		if (strlen(m->campaign) > SG_MAX_CUSTOM_ARGS / 2) {
			snprintf(err, errlen, "message %s: campaign id too long for custom_args",
			         m->id ? m->id : "?");
			return TOCSIN_ERR_TOOBIG;
		}
		if (!one_campaign) {
			rc = buf_puts(b, ",\"tocsin_campaign\":");
			rc = rc ? rc : buf_json_str(b, m->campaign, strlen(m->campaign));
		}
	}
	rc = rc ? rc : buf_putc(b, '}');
	int hard = 0;
	if (!rc && m->headers && *m->headers)
		hard = sg_put_own_headers(b, m, sh, &rc, err, errlen);
	if (!hard && !rc && m->subs && *m->subs)
		hard = sg_put_subs(b, m, &rc, err, errlen);
	if (hard)
		return hard;
	*brc = rc ? rc : buf_putc(b, '}');
	return 0;
}

/* from, subject and content, once for the batch */
static int sg_put_content(buf_t *b, const cfg_sender_t *s, const msg_out_t *m0)
{
	int rc = buf_puts(b, "],\"from\":{\"email\":");
	rc = rc ? rc : buf_json_str(b, s->from, strlen(s->from));
	rc = rc ? rc : buf_puts(b, "},\"subject\":");
	rc = rc ? rc : buf_json_str(b, m0->subject, strlen(m0->subject));
	rc = rc ? rc : buf_puts(b, ",\"content\":[");
	if (!rc && m0->text) {
		rc = buf_puts(b, "{\"type\":\"text/plain\",\"value\":");
		rc = rc ? rc : buf_json_str(b, m0->text, strlen(m0->text));
		rc = rc ? rc : buf_putc(b, '}');
	}
	if (!rc && m0->html) {
		rc = buf_puts(b, m0->text ? ",{\"type\":\"text/html\",\"value\":"
		                          : "{\"type\":\"text/html\",\"value\":");
		rc = rc ? rc : buf_json_str(b, m0->html, strlen(m0->html));
		rc = rc ? rc : buf_putc(b, '}');
	}
	return rc ? rc : buf_putc(b, ']');
}

/* the top-level "headers": those every message carries identically */
static int sg_put_shared(buf_t *b, const hspans_t *sh)
{
	int rc = 0;
	for (int k = 0, w = 0; k < sh->n && !rc; k++)
		if (sh->s[k].keep) {
			rc = buf_puts(b, w ? "," : ",\"headers\":{");
			rc = rc ? rc
			        : put_member(b, sh->s[k].k, sh->s[k].kl, sh->s[k].v, sh->s[k].vl, 1);
			w++;
			int more = 0;
			for (int q = k + 1; q < sh->n; q++)
				more |= sh->s[q].keep;
			if (!rc && !more)
				rc = buf_putc(b, '}');
		}
	return rc;
}

static int sg_build(vnd_t *a, const msg_out_t *const *msgs, size_t n, vnd_req_t *req, char *err,
                    size_t errlen)
{
	const cfg_vendor_t *v = a->v;
	const msg_out_t *m0 = msgs[0];
	const cfg_sender_t *s;
	int erc = vnd_email_first(v, m0, &s, err, errlen);
	erc = erc ? erc : sg_check_to(msgs, n, err, errlen);
	if (erc)
		return erc;
	hspans_t sh;
	shared_headers(msgs, n, &sh);
	/* one campaign for the whole batch (the dispatcher's rule): its tocsin_campaign goes
	 * once in the top-level custom_args, which SendGrid merges into every event */
	int one_campaign = m0->campaign != NULL;
	for (size_t i = 1; i < n && one_campaign; i++)
		one_campaign = msgs[i]->campaign && !strcmp(msgs[i]->campaign, m0->campaign);
	int rc = buf_printf(&req->url, "%s/v3/mail/send", v->base_url);
	buf_t *b = &req->body;
	rc = rc ? rc : buf_puts(b, "{\"personalizations\":[");
	for (size_t i = 0; i < n && !rc; i++) {
		int hard = sg_put_one(b, msgs[i], i == 0, one_campaign, &sh, &rc, err, errlen);
		if (hard)
			return hard;
	}
	rc = rc ? rc : sg_put_content(b, s, m0);
	rc = rc ? rc : sg_put_shared(b, &sh);
	if (!rc && one_campaign) {
		rc = buf_puts(b, ",\"custom_args\":{\"tocsin_campaign\":");
		rc = rc ? rc : buf_json_str(b, m0->campaign, strlen(m0->campaign));
		rc = rc ? rc : buf_putc(b, '}');
	}
	rc = rc ? rc : buf_putc(b, '}');
	if (!rc && b->len >= 30u * 1000 * 1000)
		rc = TOCSIN_ERR_TOOBIG;
	rc = rc ? rc : buf_puts(&req->content_type, "application/json");
	rc = rc ? rc : buf_puts(&req->bearer, a->secret);
	if (rc) {
		snprintf(err, errlen, "batch of %zu: request exceeds SendGrid's 30 MB limit", n);
		return TOCSIN_ERR_TOOBIG;
	}
	return 0;
}

/* index i from an error field "personalizations.<i>...", or -1 */
static long field_index(const char *f)
{
	if (!f || strncmp(f, "personalizations.", 17))
		return -1;
	char *end;
	long i = strtol(f + 17, &end, 10);
	return end == f + 17 ? -1 : i;
}

static void sg_classify(vnd_t *a, const msg_out_t *const *msgs, size_t n, long st, int curl_code,
                        const char *body, size_t len, long retry_after_s, vnd_result_t *res)
{
	(void)a;
	(void)msgs;
	vnd_result_t *r = &res[0];
	if (vnd_common_defer(st, curl_code, body, len, retry_after_s, r)) {
		vnd_fill_all(res, n, r);
		return;
	}
	char code[32];
	snprintf(code, sizeof code, "http_%ld", st);
	if (st == 202) {
		r->outcome = VND_ACCEPTED;
		vnd_cpy(r->detail, sizeof r->detail, "queued (batch)");
		vnd_fill_all(res, n, r);
		return;
	}
	json_t *j = len && len <= SG_MAX_ANSWER ? json_loadb(body, len, 0, NULL) : NULL;
	json_t *errs = json_object_get(j, "errors");
	const char *msg = json_string_value(json_object_get(json_array_get(errs, 0), "message"));
	const char *field = json_string_value(json_object_get(json_array_get(errs, 0), "field"));
	if (!msg)
		msg = j ? "no message" : "unreadable body";
	if (st == 401 || st == 403)
		vnd_res(r, VND_CONFIG, code, "vendor refused our API key (%ld): %.120s", st, msg);
	else if (st == 400 || st == 413) {
		/* errors naming personalizations.<i> fail those messages; the rest may go again */
		int all_indexed = json_array_size(errs) > 0;
		size_t k;
		json_t *e;
		json_array_foreach(errs, k, e)
		{
			long ix = field_index(json_string_value(json_object_get(e, "field")));
			if (ix < 0 || (size_t)ix >= n)
				all_indexed = 0;
		}
		if (n > 1 && all_indexed && st == 400) {
			vnd_res(r, VND_DEFER, "batch_peer_rejected",
			        "another message of this batch was rejected; send again without it");
			vnd_fill_all(res, n, r);
			json_array_foreach(errs, k, e)
			{
				long ix = field_index(json_string_value(json_object_get(e, "field")));
				const char *em = json_string_value(json_object_get(e, "message"));
				vnd_res(&res[ix], VND_PERMANENT, code, "%.60s: %.120s",
				        json_string_value(json_object_get(e, "field")), em ? em : "");
				res[ix].retry_after_ms = -1;
			}
			json_decref(j);
			return;
		}
		vnd_res(r, VND_PERMANENT, code, "%.60s%s%.120s", field ? field : "",
		        field ? ": " : "", msg);
	} else if (st == 200)
		vnd_res(r, VND_DEFER, code,
		        "200 where SendGrid answers 202 (%zu bytes): not trusted", len);
	else if (st >= 400 && st < 500)
		vnd_res(r, VND_PERMANENT, code, "%.160s", msg);
	else
		vnd_res(r, VND_DEFER, code, "unexpected status %ld", st);
	json_decref(j);
	vnd_fill_all(res, n, r);
}

static int sg_event(json_t *e, vnd_wh_event_t *ev)
{
	const char *event = json_string_value(json_object_get(e, "event"));
	const char *email = json_string_value(json_object_get(e, "email"));
	if (!event || !email)
		return -1;
	memset(ev, 0, sizeof *ev);
	const char *id = json_string_value(json_object_get(e, "tocsin_id"));
	if (id && strlen(id) == MSG_ID_LEN)
		vnd_cpy(ev->id, sizeof ev->id, id);
	vnd_cpy(ev->ref, sizeof ev->ref, json_string_value(json_object_get(e, "sg_message_id")));
	vnd_cpy(ev->event_id, sizeof ev->event_id,
	        json_string_value(json_object_get(e, "sg_event_id")));
	vnd_cpy(ev->address, sizeof ev->address, email);
	vnd_cpy(ev->code, sizeof ev->code, event);
	const char *reason = json_string_value(json_object_get(e, "reason"));
	const char *type = json_string_value(json_object_get(e, "type"));
	snprintf(ev->detail, sizeof ev->detail, "%.40s%s%.150s", event, reason ? ": " : "",
	         reason ? reason : "");
	ev->kind = VND_WH_STATUS;
	if (!strcmp(event, "processed"))
		ev->state = MSG_ST_ACCEPTED;
	else if (!strcmp(event, "deferred"))
		ev->state = MSG_ST_SENT;
	else if (!strcmp(event, "delivered") || !strcmp(event, "open") || !strcmp(event, "click"))
		ev->state = MSG_ST_DELIVERED;
	else if (!strcmp(event, "bounce"))
		ev->state = type && !strcmp(type, "blocked") ? MSG_ST_FAILED : MSG_ST_BOUNCED;
	else if (!strcmp(event, "dropped"))
		ev->state = MSG_ST_FAILED;
	else if (!strcmp(event, "spamreport") || !strcmp(event, "unsubscribe") ||
	         !strcmp(event, "group_unsubscribe")) {
		ev->kind = VND_WH_UNSUB;
		ev->optout = 1;
		ev->state = MSG_ST_DELIVERED;
	} else
		return 1; /* an event we do not track (e.g. group_resubscribe): skipped */
	return 0;
}

static int sg_webhook(vnd_t *a, const vnd_wh_req_t *rq, vnd_wh_fn fn, void *ctx, char *err, size_t errlen)
{
	const char *sig = rq->header
	                      ? rq->header(rq->header_ctx, "X-Twilio-Email-Event-Webhook-Signature")
	                      : NULL;
	const char *ts = rq->header
	                     ? rq->header(rq->header_ctx, "X-Twilio-Email-Event-Webhook-Timestamp")
	                     : NULL;
	if (!a->wh_pubkey) {
		snprintf(err, errlen,
		         "vendor %s: no \"webhook_public_key\" configured to verify events",
		         a->v->name);
		return TOCSIN_ERR_AUTH;
	}
	if (!sig || !ts) {
		snprintf(err, errlen, "vendor %s: event webhook without signature headers", a->v->name);
		return TOCSIN_ERR_AUTH;
	}
	if (vnd_sendgrid_verify(a->wh_pubkey, ts, sig, rq->body, rq->bodylen)) {
		snprintf(err, errlen, "vendor %s: event webhook signature does not verify", a->v->name);
		return TOCSIN_ERR_AUTH;
	}
	int fr = vnd_wh_fresh(a, ts, err, errlen);
	if (fr)
		return fr;
	json_error_t je;
	json_t *arr = json_loadb(rq->body ? rq->body : "", rq->bodylen, 0, &je);
	if (!json_is_array(arr)) {
		json_decref(arr);
		snprintf(err, errlen,
		         "vendor %s: event webhook body is not a JSON array (line %d: %.80s)",
		         a->v->name, je.line, je.text);
		return TOCSIN_ERR_INVAL;
	}
	vnd_wh_event_t *ev = malloc(sizeof *ev);
	if (!ev) {
		json_decref(arr);
		return TOCSIN_ERR_NOMEM;
	}
	int count = 0, bad = 0;
	size_t i;
	json_t *e;
	json_array_foreach(arr, i, e)
	{
		int rc = sg_event(e, ev);
		if (rc < 0)
			bad++;
		else if (rc == 0) {
			if (ev->event_id[0])
				snprintf(ev->replay, sizeof ev->replay, "sendgrid:%s", ev->event_id);
			count++;
			if (fn(ctx, ev))
				break;
		}
	}
	free(ev);
	json_decref(arr);
	if (bad && !count) {
		snprintf(err, errlen, "vendor %s: %d event(s) without \"event\" or \"email\"",
		         a->v->name, bad);
		return TOCSIN_ERR_INVAL;
	}
	return count;
}

const vnd_ops_t vnd_sendgrid_ops = {"sendgrid", SG_MAX_BATCH, sg_build, sg_classify, sg_webhook};
