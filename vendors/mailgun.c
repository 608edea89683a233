/* mailgun.c -- the Mailgun messages adapter: multipart batches with recipient-variables, signed webhooks. */
#include "vendors/vnd_int.h"

#include "core/err.h"
#include "core/hash.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MG_MAX_BATCH 1000
#define MG_MAX_ANSWER (256u << 10)
#define MG_MAX_REQUEST (25u * 1000 * 1000) /* Mailgun's maximum message size */
#define MG_BOUNDARY "tocsin-mg-7d1f0c3a9b2e4f68"

static int part(buf_t *b, const char *name, const char *value, size_t vlen)
{
	int rc = buf_puts(b, "--" MG_BOUNDARY "\r\nContent-Disposition: form-data; name=\"");
	rc = rc ? rc : buf_puts(b, name);
	rc = rc ? rc : buf_puts(b, "\"\r\n\r\n");
	rc = rc ? rc : buf_append(b, value, vlen);
	rc = rc ? rc : buf_puts(b, "\r\n");
	return rc;
}

static void hdr_var(const char *k, char *out, size_t outlen)
{
	size_t o = snprintf(out, outlen, "h_");
	for (; *k && o + 1 < outlen; k++)
		out[o++] = isalnum((unsigned char)*k) ? *k : '_';
	out[o] = 0;
}

/* Append src[0..len) to b with every MSG_SUB_PREFIX name MSG_SUB_SUFFIX
 * rewritten to Mailgun's %recipient.name% (when subs is set). */
static int put_subst(buf_t *b, const char *src, size_t len, int subs)
{
	static const char pre[] = MSG_SUB_PREFIX, suf[] = MSG_SUB_SUFFIX;
	const size_t pl = sizeof pre - 1, sl = sizeof suf - 1;
	const char *p = src, *end = src + len;
	int rc = 0;
	while (subs && !rc) {
		const char *q = memmem(p, (size_t)(end - p), pre, pl);
		if (!q)
			break;
		const char *n = q + pl, *ne = n;
		while (ne < end && (isalnum((unsigned char)*ne) || *ne == '_'))
			ne++;
		if (ne == n || ne - n > MSG_SUB_NAME_MAX || (size_t)(end - ne) < sl ||
		    memcmp(ne, suf, sl)) { /* not a placeholder: as it is */
			rc = buf_append(b, p, (size_t)(n - p));
			p = n;
			continue;
		}
		rc = buf_append(b, p, (size_t)(q - p));
		rc = rc ? rc : buf_puts(b, "%recipient.");
		rc = rc ? rc : buf_append(b, n, (size_t)(ne - n));
		rc = rc ? rc : buf_putc(b, '%');
		p = ne + sl;
	}
	return rc ? rc : buf_append(b, p, (size_t)(end - p));
}

static int part_subst(buf_t *b, const char *name, const char *value, int subs)
{
	int rc = buf_puts(b, "--" MG_BOUNDARY "\r\nContent-Disposition: form-data; name=\"");
	rc = rc ? rc : buf_puts(b, name);
	rc = rc ? rc : buf_puts(b, "\"\r\n\r\n");
	rc = rc ? rc : put_subst(b, value, strlen(value), subs);
	rc = rc ? rc : buf_puts(b, "\r\n");
	return rc;
}

/* every "to" a plain address: Mailgun reads a "to" part as a list */
static int mg_check_to(const msg_out_t *const *msgs, size_t n, char *err, size_t errlen)
{
	for (size_t i = 0; i < n; i++)
		if (!msgs[i]->to || !strchr(msgs[i]->to, '@') || strpbrk(msgs[i]->to, ",;<>\"\r\n")) {
			snprintf(err, errlen, "message %s: \"to\" %.80s is not a plain email address",
			         msgs[i]->id ? msgs[i]->id : "?",
			         msgs[i]->to ? msgs[i]->to : "(none)");
			return TOCSIN_ERR_INVAL;
		}
	return 0;
}

/* hs[i] = message i's "headers" parsed (NULL when it has none) */
static int mg_parse_headers(const msg_out_t *const *msgs, size_t n, json_t **hs, char *err, size_t errlen)
{
	int rc = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		if (msgs[i]->headers && *msgs[i]->headers) {
			hs[i] = json_loads(msgs[i]->headers, 0, NULL);
			if (!json_is_object(hs[i])) {
				snprintf(err, errlen, "message %s: \"headers\" is not a JSON object",
				         msgs[i]->id ? msgs[i]->id : "?");
				rc = TOCSIN_ERR_INVAL;
			}
		}
	}
	return rc;
}

/* 1 when o is an object of strings named as recipient variables may be (not ours) */
static int mg_subs_ok(json_t *o)
{
	const char *k;
	json_t *val;
	int ok = json_is_object(o);
	json_object_foreach(o, k, val)
	{
		size_t kl = strlen(k), good = kl > 0 && kl <= MSG_SUB_NAME_MAX &&
		                              json_is_string(val) && strcmp(k, "tocsin_id") &&
		                              strncmp(k, "h_", 2);
		for (size_t c = 0; c < kl && good; c++)
			good = isalnum((unsigned char)k[c]) || k[c] == '_';
		ok &= (int)good;
	}
	return ok;
}

/* ss[i] = message i's "subs" parsed: per-recipient substitutions become recipient
 * variables of the same name, so every message of a batch has them or none has */
static int mg_parse_subs(const msg_out_t *const *msgs, size_t n, int subs, json_t **ss, char *err,
                         size_t errlen)
{
	const msg_out_t *m0 = msgs[0];
	for (size_t i = 0; i < n; i++) {
		if ((msgs[i]->subs && *msgs[i]->subs) != subs) {
			snprintf(err, errlen, "batch: message %s %s \"subs\" and message %s %s",
			         m0->id ? m0->id : "?", subs ? "has" : "lacks",
			         msgs[i]->id ? msgs[i]->id : "?", subs ? "does not" : "does");
			return TOCSIN_ERR_INVAL;
		}
		if (!subs)
			continue;
		ss[i] = json_loads(msgs[i]->subs, 0, NULL);
		if (!mg_subs_ok(ss[i])) {
			snprintf(err, errlen,
			         "message %s: \"subs\" is not an object of strings with names of 1-%d "
			         "letters, digits or _ (not tocsin_id, not h_*)",
			         msgs[i]->id ? msgs[i]->id : "?", MSG_SUB_NAME_MAX);
			return TOCSIN_ERR_INVAL;
		}
	}
	return 0;
}

/* shared: header -> its value when every message has the same, else "%recipient.h_x%" */
static void mg_shared_headers(json_t *const *hs, size_t n, json_t *shared)
{
	const char *k;
	json_t *val;
	json_object_foreach(hs[0], k, val)
	{
		if (!json_is_string(val))
			continue;
		int same = 1;
		for (size_t i = 1; i < n; i++)
			same &= json_equal(val, json_object_get(hs[i], k));
		if (same)
			json_object_set(shared, k, val);
		else {
			char var[80], ref[100];
			hdr_var(k, var, sizeof var);
			snprintf(ref, sizeof ref, "%%recipient.%s%%", var);
			json_object_set_new(shared, k, json_string(ref));
		}
	}
}

/* one recipient's variables: its substitutions, tocsin_id, its value of each varying header */
static json_t *mg_vars_of(const msg_out_t *m, json_t *h, json_t *subs, json_t *shared)
{
	json_t *o = json_object();
	if (subs)
		json_object_update(o, subs);
	json_object_set_new(o, "tocsin_id", json_string(m->id ? m->id : ""));
	const char *k;
	json_t *val;
	json_object_foreach(shared, k, val)
	{
		const char *sv = json_string_value(val);
		if (sv && !strncmp(sv, "%recipient.", 11)) {
			char var[80];
			hdr_var(k, var, sizeof var);
			json_t *mine = json_object_get(h, k);
			json_object_set_new(o, var,
			                    json_string(json_is_string(mine) ? json_string_value(mine)
			                                                     : ""));
		}
	}
	return o;
}

/* rv: address -> its recipient variables; one address once per batch */
static int mg_recipient_vars(const msg_out_t *const *msgs, size_t n, json_t *const *hs,
                             json_t *const *ss, json_t *shared, json_t *rv, char *err, size_t errlen)
{
	int rc = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		json_t *o = mg_vars_of(msgs[i], hs[i], ss[i], shared);
		if (json_object_get(rv, msgs[i]->to)) {
			snprintf(err, errlen, "batch: address %.80s appears twice", msgs[i]->to);
			rc = TOCSIN_ERR_INVAL;
		}
		json_object_set_new(rv, msgs[i]->to, o);
	}
	return rc;
}

/* the parts "h:<header>" (a shared value or its recipient variable) */
static int mg_put_headers(buf_t *b, json_t *shared)
{
	int rc = 0;
	const char *k;
	json_t *val;
	json_object_foreach(shared, k, val)
	{
		char name[200];
		if (strpbrk(k, "\"\r\n") || snprintf(name, sizeof name, "h:%s", k) >= (int)sizeof name)
			continue;
		rc = rc ? rc : part(b, name, json_string_value(val), json_string_length(val));
	}
	return rc;
}

/* "v:tocsin_id" and "recipient-variables": one message without substitutions (an inline
 * render) carries no recipient variables: Mailgun would otherwise replace any
 * %recipient.x% its text holds */
static int mg_put_vars(buf_t *b, const msg_out_t *m0, size_t n, int subs, json_t *rv)
{
	int plain = n == 1 && !subs, rc;
	if (plain)
		rc = part(b, "v:tocsin_id", m0->id ? m0->id : "", m0->id ? strlen(m0->id) : 0);
	else
		rc = part(b, "v:tocsin_id", "%recipient.tocsin_id%", 21);
	if (!rc && !plain) {
		char *j = json_dumps(rv, JSON_COMPACT);
		rc = j ? part(b, "recipient-variables", j, strlen(j)) : TOCSIN_ERR_NOMEM;
		free(j);
	}
	return rc;
}

/* the multipart body: from, every to, subject, text, html, the headers, the variables */
static int mg_put_body(buf_t *b, const cfg_sender_t *s, const msg_out_t *const *msgs, size_t n,
                       int subs, json_t *shared, json_t *rv)
{
	const msg_out_t *m0 = msgs[0];
	int rc = part(b, "from", s->from, strlen(s->from));
	for (size_t i = 0; i < n && !rc; i++)
		rc = part(b, "to", msgs[i]->to, strlen(msgs[i]->to));
	rc = rc ? rc : part_subst(b, "subject", m0->subject, subs);
	if (!rc && m0->text)
		rc = part_subst(b, "text", m0->text, subs);
	if (!rc && m0->html)
		rc = part_subst(b, "html", m0->html, subs);
	rc = rc ? rc : mg_put_headers(b, shared);
	rc = rc ? rc : mg_put_vars(b, m0, n, subs, rv);
	return rc ? rc : buf_puts(b, "--" MG_BOUNDARY "--\r\n");
}

static int mg_build(vnd_t *a, const msg_out_t *const *msgs, size_t n, vnd_req_t *req, char *err,
                    size_t errlen)
{
	const cfg_vendor_t *v = a->v;
	const msg_out_t *m0 = msgs[0];
	const cfg_sender_t *s;
	int rc = vnd_email_first(v, m0, &s, err, errlen);
	rc = rc ? rc : mg_check_to(msgs, n, err, errlen);
	if (rc)
		return rc;
	json_t **hs = calloc(n, sizeof *hs);
	if (!hs)
		return TOCSIN_ERR_NOMEM;
	rc = mg_parse_headers(msgs, n, hs, err, errlen);
	json_t **ss = calloc(n, sizeof *ss);
	int subs = m0->subs && *m0->subs;
	if (!ss)
		rc = TOCSIN_ERR_NOMEM;
	rc = rc ? rc : mg_parse_subs(msgs, n, subs, ss, err, errlen);
	json_t *rv = json_object();
	json_t *shared = json_object(); /* header -> literal or "%recipient.h_x%" */
	if (!rc && hs[0])
		mg_shared_headers(hs, n, shared);
	rc = rc ? rc : mg_recipient_vars(msgs, n, hs, ss, shared, rv, err, errlen);
	rc = rc ? rc : buf_printf(&req->url, "%s/v3/", v->base_url);
	rc = rc ? rc : buf_url_enc(&req->url, v->account, strlen(v->account));
	rc = rc ? rc : buf_puts(&req->url, "/messages");
	rc = rc ? rc : mg_put_body(&req->body, s, msgs, n, subs, shared, rv);
	if (!rc && req->body.len > MG_MAX_REQUEST)
		rc = TOCSIN_ERR_TOOBIG; /* the dispatcher sends the first message alone */
	rc = rc ? rc : buf_puts(&req->content_type, "multipart/form-data; boundary=" MG_BOUNDARY);
	rc = rc ? rc : buf_printf(&req->userpwd, "api:%s", a->secret);
	if (rc == TOCSIN_ERR_TOOBIG)
		snprintf(err, errlen, "batch of %zu: request too large for vendor %s", n, v->name);
	for (size_t i = 0; i < n; i++) {
		json_decref(hs[i]);
		if (ss)
			json_decref(ss[i]);
	}
	free(hs);
	free(ss);
	json_decref(rv);
	json_decref(shared);
	return rc;
}

static void mg_classify(vnd_t *a, const msg_out_t *const *msgs, size_t n, long st, int curl_code,
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
	json_t *j = len && len <= MG_MAX_ANSWER ? json_loadb(body, len, 0, NULL) : NULL;
	const char *msg = json_string_value(json_object_get(j, "message"));
	if (st == 200) {
		const char *id = json_string_value(json_object_get(j, "id"));
		if (id && *id && strlen(id) < sizeof r->ref) {
			r->outcome = VND_ACCEPTED;
			vnd_cpy(r->ref, sizeof r->ref, id);
			vnd_cpy(r->detail, sizeof r->detail, msg ? msg : "queued");
		} else
			vnd_res(r, VND_DEFER, code,
			        "200 with an unreadable body (%zu bytes, no id)", len);
	} else {
		if (!msg)
			msg = j ? "no message" : "unreadable body";
		if (st == 401 || st == 402 || st == 403 || st == 404)
			vnd_res(r, VND_CONFIG, code,
			        "vendor refused our key or domain (%ld): %.120s", st, msg);
		else if (st >= 400 && st < 500)
			vnd_res(r, VND_PERMANENT, code, "%.160s", msg);
		else
			vnd_res(r, VND_DEFER, code, "unexpected status %ld", st);
	}
	json_decref(j);
	vnd_fill_all(res, n, r);
}

static int mg_webhook(vnd_t *a, const vnd_wh_req_t *rq, vnd_wh_fn fn, void *ctx, char *err, size_t errlen)
{
	json_error_t je;
	json_t *j = json_loadb(rq->body ? rq->body : "", rq->bodylen, 0, &je);
	json_t *sg = json_object_get(j, "signature");
	const char *ts = json_string_value(json_object_get(sg, "timestamp"));
	const char *tok = json_string_value(json_object_get(sg, "token"));
	const char *sig = json_string_value(json_object_get(sg, "signature"));
	char want[80];
	const char *key = a->wh_key ? a->wh_key : a->secret;
	if (!ts || !tok || !sig || vnd_mailgun_sign(key, ts, tok, want, sizeof want) ||
	    !vnd_ct_eq(want, strlen(want), sig, strlen(sig))) {
		json_decref(j);
		snprintf(err, errlen, "vendor %s: webhook signature %s", a->v->name,
		         !j     ? "missing (body is not JSON)"
		         : !sig ? "missing"
		                : "does not match");
		return TOCSIN_ERR_AUTH;
	}
	int fr = vnd_wh_fresh(a, ts, err, errlen);
	if (fr) {
		json_decref(j);
		return fr;
	}
	json_t *ed = json_object_get(j, "event-data");
	const char *event = json_string_value(json_object_get(ed, "event"));
	const char *rcpt = json_string_value(json_object_get(ed, "recipient"));
	if (!event || !rcpt) {
		json_decref(j);
		snprintf(err, errlen, "vendor %s: webhook event-data lacks event or recipient",
		         a->v->name);
		return TOCSIN_ERR_INVAL;
	}
	vnd_wh_event_t *ev = calloc(1, sizeof *ev);
	if (!ev) {
		json_decref(j);
		return TOCSIN_ERR_NOMEM;
	}
	const char *id = json_string_value(
	    json_object_get(json_object_get(ed, "user-variables"), "tocsin_id"));
	if (id && strlen(id) == MSG_ID_LEN)
		vnd_cpy(ev->id, sizeof ev->id, id);
	vnd_cpy(ev->ref, sizeof ev->ref,
	        json_string_value(
	            json_object_get(json_object_get(json_object_get(ed, "message"), "headers"),
	                            "message-id")));
	vnd_cpy(ev->event_id, sizeof ev->event_id, json_string_value(json_object_get(ed, "id")));
	if (!ev->event_id[0])
		vnd_cpy(ev->event_id, sizeof ev->event_id, tok);
	snprintf(ev->replay, sizeof ev->replay, "mailgun:%.140s", tok);
	vnd_cpy(ev->address, sizeof ev->address, rcpt);
	vnd_cpy(ev->code, sizeof ev->code, event);
	const char *sev = json_string_value(json_object_get(ed, "severity"));
	json_t *ds = json_object_get(ed, "delivery-status");
	const char *dmsg = json_string_value(json_object_get(ds, "message"));
	json_t *dcode = json_object_get(ds, "code");
	if (json_is_integer(dcode))
		snprintf(ev->code, sizeof ev->code, "%lld", (long long)json_integer_value(dcode));
	snprintf(ev->detail, sizeof ev->detail, "%.30s%s%.20s%s%.140s", event, sev ? " " : "",
	         sev ? sev : "", dmsg ? ": " : "", dmsg ? dmsg : "");
	ev->kind = VND_WH_STATUS;
	int skip = 0;
	if (!strcmp(event, "accepted"))
		ev->state = MSG_ST_ACCEPTED;
	else if (!strcmp(event, "delivered") || !strcmp(event, "opened") || !strcmp(event, "clicked"))
		ev->state = MSG_ST_DELIVERED;
	else if (!strcmp(event, "failed"))
		ev->state = sev && !strcmp(sev, "temporary") ? MSG_ST_SENT : MSG_ST_BOUNCED;
	else if (!strcmp(event, "rejected"))
		ev->state = MSG_ST_FAILED;
	else if (!strcmp(event, "unsubscribed") || !strcmp(event, "complained")) {
		ev->kind = VND_WH_UNSUB;
		ev->optout = 1;
		ev->state = MSG_ST_DELIVERED;
	} else
		skip = 1;
	int count = 0;
	if (!skip) {
		fn(ctx, ev);
		count = 1;
	}
	free(ev);
	json_decref(j);
	return count;
}

const vnd_ops_t vnd_mailgun_ops = {"mailgun", MG_MAX_BATCH, mg_build, mg_classify, mg_webhook};
