/* twilio.c -- the Twilio Programmable Messaging adapter: Create Message, errors, status callbacks. */
#include "vendors/vnd_int.h"

#include "core/clock.h"
#include "core/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TW_MAX_ANSWER (256u << 10) /* a Twilio answer is < 2 KB; never parse more than this */

static size_t utf8_chars(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		n += ((unsigned char)*s & 0xC0) != 0x80;
	return n;
}

static int tw_build(vnd_t *a, const msg_out_t *const *msgs, size_t n, vnd_req_t *req, char *err,
                    size_t errlen)
{
	(void)n;
	const msg_out_t *m = msgs[0];
	const cfg_vendor_t *v = a->v;
	const cfg_sender_t *s = cfg_sender(v, m->sender);
	if (!s) {
		snprintf(err, errlen, "vendor %s has no number for sender pool \"%s\"", v->name,
		         m->sender ? m->sender : "main");
		return TOCSIN_ERR_INVAL;
	}
	if (!m->to || !*m->to || !m->body) {
		snprintf(err, errlen, "message %s: an SMS needs \"to\" and \"body\"",
		         m->id ? m->id : "?");
		return TOCSIN_ERR_INVAL;
	}
	if (utf8_chars(m->body) > 1600) {
		snprintf(err, errlen, "message %s: body of %zu characters exceeds Twilio's 1600",
		         m->id ? m->id : "?", utf8_chars(m->body));
		return TOCSIN_ERR_TOOBIG;
	}
	int rc = buf_printf(&req->url, "%s/2010-04-01/Accounts/", v->base_url);
	if (!rc)
		rc = buf_url_enc(&req->url, v->account, strlen(v->account));
	if (!rc)
		rc = buf_puts(&req->url, "/Messages.json");
	buf_t *b = &req->body;
	if (!rc)
		rc = buf_form_kv(b, "To", m->to);
	if (!rc)
		rc = s->service ? buf_form_kv(b, "MessagingServiceSid", s->service)
		                : buf_form_kv(b, "From", s->from);
	if (!rc)
		rc = buf_form_kv(b, "Body", m->body);
	if (!rc && a->c && a->c->public_url && *a->c->public_url && m->id) {
		buf_t *t = &a->tmp;
		buf_reset(t);
		rc = buf_printf(t, "%.*s/webhooks/", (int)vnd_base_len(a->c->public_url),
		                a->c->public_url);
		if (!rc)
			rc = buf_url_enc(t, v->name, strlen(v->name));
		if (!rc)
			rc = buf_puts(t, "/status?mid=");
		if (!rc)
			rc = buf_url_enc(t, m->id, strlen(m->id));
		if (!rc)
			rc = buf_form_kv(b, "StatusCallback", t->p);
	}
	if (!rc && m->expires_ms > 0) {
		int64_t left = (m->expires_ms - clock_wall_ms()) / 1000;
		if (left < 1)
			left = 1;
		if (left > 36000)
			left = 36000;
		char tmp[24];
		snprintf(tmp, sizeof tmp, "%lld", (long long)left);
		rc = buf_form_kv(b, "ValidityPeriod", tmp);
	}
	if (!rc)
		rc = buf_puts(&req->content_type, "application/x-www-form-urlencoded");
	if (!rc)
		rc = buf_printf(&req->userpwd, "%s:%s", v->account, a->secret);
	if (rc)
		snprintf(err, errlen, "message %s: request too large for vendor %s",
		         m->id ? m->id : "?", v->name);
	return rc;
}

static void tw_classify(vnd_t *a, const msg_out_t *const *msgs, size_t n, long st, int curl_code,
                        const char *body, size_t len, long retry_after_s, vnd_result_t *res)
{
	(void)a;
	(void)msgs;
	vnd_result_t *r = &res[0];
	if (vnd_common_defer(st, curl_code, body, len, retry_after_s, r)) {
		if (st == 429)
			vnd_cpy(r->code, sizeof r->code, "20429");
		vnd_fill_all(res, n, r);
		return;
	}
	char code[32];
	if (st == 200 || st == 201) {
		/* the hot path: read sid and status without allocating */
		char sid[sizeof r->ref];
		int ok = len <= TW_MAX_ANSWER &&
		         vnd_json_top_str(body, len, "sid", sid, sizeof sid) == 1;
		if (ok && strlen(sid) >= 2 && strlen(sid) < sizeof sid - 1) {
			r->outcome = VND_ACCEPTED;
			vnd_cpy(r->ref, sizeof r->ref, sid);
			vnd_json_top_str(body, len, "status", r->detail, sizeof r->detail);
		} else {
			snprintf(code, sizeof code, "http_%ld", st);
			vnd_res(r, VND_DEFER, code,
			        "status %ld with an unreadable body (%zu bytes, no sid)", st, len);
		}
		vnd_fill_all(res, n, r);
		return;
	}
	json_t *j = NULL;
	if (len > 0 && len <= TW_MAX_ANSWER)
		j = json_loadb(body, len, 0, NULL);
	json_t *jc = json_object_get(j, "code");
	const char *msg = json_string_value(json_object_get(j, "message"));
	long ec = json_is_integer(jc) ? (long)json_integer_value(jc) : 0;
	if (!ec && json_is_string(jc))
		ec = strtol(json_string_value(jc), NULL, 10);
	if (ec)
		snprintf(code, sizeof code, "%ld", ec);
	else
		snprintf(code, sizeof code, "http_%ld", st);
	if (!msg)
		msg = j ? "no message" : "unreadable body";
	if (ec == 21610)
		vnd_res(r, VND_OPTOUT, code, "recipient opted out (replied STOP): %.120s", msg);
	else if (ec == 20429)
		r->throttled = 1, vnd_res(r, VND_DEFER, code, "too many requests: %.120s", msg);
	else if (st == 401 || st == 403 || ec == 20003 || ec == 20404 || st == 404 || ec == 21606 ||
	         ec == 21212 || ec == 21659 || ec == 21701 || ec == 21703 || ec == 21704)
		vnd_res(r, VND_CONFIG, code, "vendor refused our account or sender (%ld): %.120s",
		        st, msg);
	else if (st >= 400 && st < 500)
		vnd_res(r, VND_PERMANENT, code, "%.160s", msg);
	else
		vnd_res(r, VND_DEFER, code, "unexpected status %ld: %.120s", st, msg);
	json_decref(j);
	vnd_fill_all(res, n, r);
}

static msg_state_t tw_state(const char *s, int *known)
{
	*known = 1;
	if (!strcmp(s, "delivered") || !strcmp(s, "read"))
		return MSG_ST_DELIVERED;
	if (!strcmp(s, "sent") || !strcmp(s, "sending"))
		return MSG_ST_SENT;
	if (!strcmp(s, "undelivered"))
		return MSG_ST_UNDELIVERED;
	if (!strcmp(s, "failed"))
		return MSG_ST_FAILED;
	if (!strcmp(s, "queued") || !strcmp(s, "accepted") || !strcmp(s, "scheduled"))
		return MSG_ST_ACCEPTED;
	*known = 0;
	return MSG_ST_SENT;
}

/* value of name in query string q (decoded into out), or NULL */
static const char *query_get(const char *q, const char *name, char *out, size_t outlen)
{
	if (!q)
		return NULL;
	vnd_form_t f;
	if (vnd_form_parse(q, strlen(q), &f)) {
		vnd_form_free(&f);
		return NULL;
	}
	const char *v = vnd_form_get(&f, name);
	if (v)
		vnd_cpy(out, outlen, v);
	vnd_form_free(&f);
	return v ? out : NULL;
}

static int tw_webhook(vnd_t *a, const vnd_wh_req_t *rq, vnd_wh_fn fn, void *ctx, char *err, size_t errlen)
{
	const char *sig = rq->header ? rq->header(rq->header_ctx, "X-Twilio-Signature") : NULL;
	if (!sig || !*sig) {
		snprintf(err, errlen, "vendor %s: webhook without X-Twilio-Signature", a->v->name);
		return TOCSIN_ERR_AUTH;
	}
	/* POST: the form params are signed after the URL; GET: everything is in the
	 * (signed) URL, and the event's fields are read from the query */
	vnd_form_t f;
	int rc = 0, post = rq->method && !strcmp(rq->method, "POST");
	if (post)
		rc = vnd_form_parse(rq->body ? rq->body : "", rq->bodylen, &f);
	else
		rc = vnd_form_parse("", 0, &f);
	if (rc) {
		vnd_form_free(&f);
		snprintf(err, errlen, "vendor %s: webhook form has too many fields or is too large",
		         a->v->name);
		return rc;
	}
	char want[64];
	if (vnd_twilio_sign(a->secret, rq->url ? rq->url : "", (const char *const *)f.name,
	                    (const char *const *)f.value, f.n, want, sizeof want) ||
	    !vnd_ct_eq(want, strlen(want), sig, strlen(sig))) {
		vnd_form_free(&f);
		snprintf(err, errlen, "vendor %s: X-Twilio-Signature does not match", a->v->name);
		return TOCSIN_ERR_AUTH;
	}
	if (!post) {
		vnd_form_free(&f);
		rc = vnd_form_parse(rq->query ? rq->query : "", rq->query ? strlen(rq->query) : 0, &f);
		if (rc) {
			vnd_form_free(&f);
			snprintf(err, errlen, "vendor %s: webhook query too large", a->v->name);
			return rc;
		}
	}
	vnd_wh_event_t *ev = calloc(1, sizeof *ev);
	if (!ev) {
		vnd_form_free(&f);
		return TOCSIN_ERR_NOMEM;
	}
	const char *status = vnd_form_get(&f, "MessageStatus");
	if (!status)
		status = vnd_form_get(&f, "SmsStatus");
	const char *bodytext = vnd_form_get(&f, "Body");
	const char *sid = vnd_form_get(&f, "MessageSid");
	if (!sid)
		sid = vnd_form_get(&f, "SmsSid");
	int count = 0;
	if (status && !(bodytext && !strcmp(status, "received"))) {
		ev->kind = VND_WH_STATUS;
		char mid[64];
		const char *m = query_get(rq->query, "mid", mid, sizeof mid);
		if (m && strlen(m) == MSG_ID_LEN)
			vnd_cpy(ev->id, sizeof ev->id, m);
		vnd_cpy(ev->ref, sizeof ev->ref, sid);
		int known;
		ev->state = tw_state(status, &known);
		const char *ec = vnd_form_get(&f, "ErrorCode");
		vnd_cpy(ev->code, sizeof ev->code, ec);
		if (ec && !strcmp(ec, "21610"))
			ev->optout = 1;
		vnd_cpy(ev->detail, sizeof ev->detail, status);
		snprintf(ev->event_id, sizeof ev->event_id, "%.60s:%.30s", sid ? sid : "", status);
		vnd_cpy(ev->address, sizeof ev->address, vnd_form_get(&f, "To"));
		if (!known) {
			snprintf(err, errlen, "vendor %s: unknown MessageStatus \"%.40s\"",
			         a->v->name, status);
			rc = TOCSIN_ERR_INVAL;
		}
	} else if (bodytext) {
		ev->kind = VND_WH_INBOUND;
		vnd_cpy(ev->ref, sizeof ev->ref, sid);
		vnd_cpy(ev->address, sizeof ev->address, vnd_form_get(&f, "From"));
		vnd_cpy(ev->to, sizeof ev->to, vnd_form_get(&f, "To"));
		vnd_cpy(ev->body, sizeof ev->body, bodytext);
		vnd_cpy(ev->event_id, sizeof ev->event_id, sid);
		ev->keyword = vnd_keyword(bodytext);
		const char *oot = vnd_form_get(&f, "OptOutType");
		if (oot && !strcmp(oot, "STOP"))
			ev->keyword = VND_KW_STOP;
		else if (oot && !strcmp(oot, "START"))
			ev->keyword = VND_KW_START;
		else if (oot && !strcmp(oot, "HELP"))
			ev->keyword = VND_KW_HELP;
		if (!ev->address[0]) {
			snprintf(err, errlen, "vendor %s: inbound message without From", a->v->name);
			rc = TOCSIN_ERR_INVAL;
		}
	} else {
		snprintf(err, errlen, "vendor %s: webhook has neither MessageStatus nor Body",
		         a->v->name);
		rc = TOCSIN_ERR_INVAL;
	}
	if (!rc) {
		/* replay keys: the signed MessageSid (+ status for receipts, which come
		 * once per status), and the unsigned retry token Twilio adds */
		if (sid && *sid)
			snprintf(ev->replay, sizeof ev->replay, "twilio:%.100s%s%.30s", sid,
			         ev->kind == VND_WH_STATUS ? ":" : "",
			         ev->kind == VND_WH_STATUS ? status : "");
		const char *idem = rq->header
		                       ? rq->header(rq->header_ctx, "I-Twilio-Idempotency-Token")
		                       : NULL;
		if (idem && *idem)
			snprintf(ev->replay_alt, sizeof ev->replay_alt, "twilio-idem:%.140s", idem);
		fn(ctx, ev);
		count = 1;
	}
	free(ev);
	vnd_form_free(&f);
	return rc ? rc : count;
}

/* Fetch Message: GET .../Accounts/{AccountSid}/Messages/{sid}.json (ref checked by vnd_lookup_build) */
int vnd_twilio_lookup_build(vnd_t *a, const char *ref, vnd_req_t *req, char *err, size_t errlen)
{
	const cfg_vendor_t *v = a->v;
	int rc = buf_printf(&req->url, "%s/2010-04-01/Accounts/", v->base_url);
	if (!rc)
		rc = buf_url_enc(&req->url, v->account, strlen(v->account));
	if (!rc)
		rc = buf_printf(&req->url, "/Messages/%s.json", ref);
	if (!rc)
		rc = buf_printf(&req->userpwd, "%s:%s", v->account, a->secret);
	if (rc)
		snprintf(err, errlen, "vendor %s: lookup request too large", v->name);
	return rc;
}

int vnd_twilio_lookup_parse(vnd_t *a, long st, int curl_code, const char *body, size_t len,
                            vnd_lookup_t *out)
{
	(void)a;
	if (curl_code || st == 429 || st >= 500 || st == 0)
		return TOCSIN_ERR_AGAIN;
	if (st == 404)
		return TOCSIN_ERR_NOTFOUND;
	if (st == 401 || st == 403)
		return TOCSIN_ERR_AUTH;
	char status[32], ec[32] = "";
	if (st != 200 || len > TW_MAX_ANSWER ||
	    vnd_json_top_str(body, len, "status", status, sizeof status) != 1)
		return TOCSIN_ERR_INVAL;
	int known;
	out->state = tw_state(status, &known);
	if (!known)
		return TOCSIN_ERR_INVAL;
	/* error_code is a number (or null) in Twilio's answer */
	json_t *j = json_loadb(body, len, 0, NULL);
	json_t *e = json_object_get(j, "error_code");
	if (json_is_integer(e))
		snprintf(ec, sizeof ec, "%lld", (long long)json_integer_value(e));
	else if (json_is_string(e))
		vnd_cpy(ec, sizeof ec, json_string_value(e));
	json_decref(j);
	vnd_cpy(out->code, sizeof out->code, ec);
	snprintf(out->detail, sizeof out->detail, "vendor says %s", status);
	return 0;
}

const vnd_ops_t vnd_twilio_ops = {"twilio", 1, tw_build, tw_classify, tw_webhook};
