/* vonage.c -- the Vonage SMS API adapter: /sms/json, its always-200 status codes, delivery receipts. */
#include "vendors/vnd_int.h"

#include "core/err.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VG_MAX_ANSWER (256u << 10)

static int vg_build(vnd_t *a, const msg_out_t *const *msgs, size_t n, vnd_req_t *req, char *err,
                    size_t errlen)
{
	(void)n;
	const msg_out_t *m = msgs[0];
	const cfg_vendor_t *v = a->v;
	const cfg_sender_t *s = cfg_sender(v, m->sender);
	if (!s || !s->from) {
		snprintf(err, errlen, "vendor %s has no number for sender pool \"%s\"", v->name,
		         m->sender ? m->sender : "main");
		return TOCSIN_ERR_INVAL;
	}
	if (!m->to || !*m->to || !m->body || !*m->body) {
		snprintf(err, errlen, "message %s: an SMS needs \"to\" and \"body\"",
		         m->id ? m->id : "?");
		return TOCSIN_ERR_INVAL;
	}
	if (m->id && strlen(m->id) > 40) {
		snprintf(err, errlen,
		         "message id %.50s is longer than Vonage's 40-character client-ref", m->id);
		return TOCSIN_ERR_INVAL;
	}
	char to[32], from[32];
	const char *t = m->to[0] == '+' ? m->to + 1 : m->to;
	const char *f = s->from[0] == '+' ? s->from + 1 : s->from;
	size_t tl = strlen(t);
	for (size_t i = 0; i < tl; i++)
		if (!isdigit((unsigned char)t[i]))
			tl = 0;
	if (tl < 7 || tl >= sizeof to) {
		snprintf(err, errlen, "message %s: \"to\" %.40s is not an international number",
		         m->id ? m->id : "?", m->to);
		return TOCSIN_ERR_INVAL;
	}
	vnd_cpy(to, sizeof to, t);
	vnd_cpy(from, sizeof from, f);
	int rc = buf_printf(&req->url, "%s/sms/json", v->base_url);
	buf_t *b = &req->body;
	if (!rc)
		rc = buf_form_kv(b, "api_key", v->account);
	if (!rc)
		rc = buf_form_kv(b, "api_secret", a->secret);
	if (!rc)
		rc = buf_form_kv(b, "from", from);
	if (!rc)
		rc = buf_form_kv(b, "to", to);
	if (!rc)
		rc = buf_form_kv(b, "text", m->body);
	if (!rc)
		rc = buf_form_kv(b, "type", m->enc && !strcmp(m->enc, "ucs2") ? "unicode" : "text");
	if (!rc && m->id)
		rc = buf_form_kv(b, "client-ref", m->id);
	if (!rc && a->c && a->c->public_url && *a->c->public_url) {
		rc = buf_form_kv(b, "status-report-req", "1");
		buf_t *cb = &a->tmp;
		buf_reset(cb);
		if (!rc)
			rc = buf_printf(cb, "%.*s/webhooks/", (int)vnd_base_len(a->c->public_url),
			                a->c->public_url);
		if (!rc)
			rc = buf_url_enc(cb, v->name, strlen(v->name));
		if (!rc)
			rc = buf_puts(cb, "/status");
		if (!rc)
			rc = buf_form_kv(b, "callback", cb->p);
	}
	if (!rc)
		rc = buf_puts(&req->content_type, "application/x-www-form-urlencoded");
	if (rc)
		snprintf(err, errlen, "message %s: request too large for vendor %s",
		         m->id ? m->id : "?", v->name);
	return rc;
}

static void vg_classify(vnd_t *a, const msg_out_t *const *msgs, size_t n, long st, int curl_code,
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
	if (st == 401 || st == 403) {
		snprintf(code, sizeof code, "http_%ld", st);
		vnd_res(r, VND_CONFIG, code, "vendor refused our credentials (%ld)", st);
		vnd_fill_all(res, n, r);
		return;
	}
	json_t *j = len && len <= VG_MAX_ANSWER ? json_loadb(body, len, 0, NULL) : NULL;
	json_t *arr = json_object_get(j, "messages");
	if (st != 200 || !json_is_array(arr) || json_array_size(arr) == 0) {
		snprintf(code, sizeof code, "http_%ld", st);
		if (st == 200)
			vnd_res(r, VND_DEFER, code,
			        "200 with an unreadable body (%zu bytes, no messages[])", len);
		else if (st >= 400 && st < 500)
			vnd_res(r, VND_PERMANENT, code, "vendor rejected the request (%ld)", st);
		else
			vnd_res(r, VND_DEFER, code, "unexpected status %ld", st);
		json_decref(j);
		vnd_fill_all(res, n, r);
		return;
	}
	/* one element per SMS part: the message is accepted when every part is */
	size_t i;
	json_t *el;
	int bad = 0;
	json_array_foreach(arr, i, el)
	{
		const char *s = json_string_value(json_object_get(el, "status"));
		const char *et = json_string_value(json_object_get(el, "error-text"));
		if (!s) {
			vnd_res(r, VND_DEFER, "http_200", "200 with a message part lacking \"status\"");
			bad = 1;
			break;
		}
		if (!strcmp(s, "0"))
			continue;
		long c = strtol(s, NULL, 10);
		snprintf(code, sizeof code, "%.20s", s);
		if (!et)
			et = "";
		if (c == 1)
			r->throttled = 1, vnd_res(r, VND_DEFER, code, "throttled: %.150s", et);
		else if (c == 5)
			vnd_res(r, VND_DEFER, code, "vendor internal error: %.150s", et);
		else if (c == 4 || c == 8 || c == 9 || c == 14 || c == 15)
			vnd_res(r, VND_CONFIG, code, "vendor refused our account or sender: %.150s",
			        et);
		else
			vnd_res(r, VND_PERMANENT, code, "%.180s", et);
		bad = 1;
		break;
	}
	if (!bad) {
		/* the reference: every part's message-id (each part gets its own
		 * receipt), space-separated; ids that do not fit (or are empty or
		 * hold a space) are left out: the parts are sent all the same */
		size_t used = 0, kept = 0;
		json_array_foreach(arr, i, el)
		{
			const char *mid = json_string_value(json_object_get(el, "message-id"));
			size_t ml = mid ? strlen(mid) : 0;
			if (!ml || strcspn(mid, " ") != ml || used + (used > 0) + ml >= sizeof r->ref)
				continue;
			if (used)
				r->ref[used++] = ' ';
			memcpy(r->ref + used, mid, ml + 1);
			used += ml;
			kept++;
		}
		if (!used) {
			r->ref[0] = 0;
			vnd_res(r, VND_DEFER, "http_200", "accepted answer without a message-id");
		} else {
			r->outcome = VND_ACCEPTED;
			if (kept == json_array_size(arr))
				snprintf(r->detail, sizeof r->detail, "%zu part(s)", kept);
			else
				snprintf(r->detail, sizeof r->detail,
				         "%zu part(s), ids of %zu kept", json_array_size(arr), kept);
		}
	}
	json_decref(j);
	vnd_fill_all(res, n, r);
}

static msg_state_t vg_state(const char *s, int *known)
{
	*known = 1;
	if (!strcmp(s, "delivered"))
		return MSG_ST_DELIVERED;
	if (!strcmp(s, "accepted") || !strcmp(s, "buffered"))
		return MSG_ST_SENT;
	if (!strcmp(s, "failed") || !strcmp(s, "rejected"))
		return MSG_ST_FAILED;
	if (!strcmp(s, "expired"))
		return MSG_ST_UNDELIVERED;
	*known = 0;
	return MSG_ST_SENT;
}

typedef struct vg_params {
	vnd_form_t form;
	json_t *json;
} vg_params_t;

static const char *vg_get(vg_params_t *p, const char *k)
{
	if (p->json) {
		json_t *v = json_object_get(p->json, k);
		return json_is_string(v) ? json_string_value(v) : NULL;
	}
	return vnd_form_get(&p->form, k);
}

/* Check the request's "sig" (and its timestamp's age) over every parameter
 * but sig: 0, or TOCSIN_ERR_AUTH with err. On success the sig, lowercased,
 * is left in sigout (the replay key). */
static int vg_verify(vnd_t *a, vg_params_t *p, char *sigout, size_t sigcap, char *err, size_t errlen)
{
	if (!a->sig_secret) {
		snprintf(err, errlen,
		         "vendor %s: no signature secret to check webhooks with (set the environment "
		         "variable named by \"signature_secret_env\", or \"webhook_auth\":\"none\")",
		         a->v->name);
		return TOCSIN_ERR_AUTH;
	}
	const char *names[VND_FORM_MAX], *values[VND_FORM_MAX];
	char nums[64][24];
	size_t n = 0, nn = 0;
	if (p->json) {
		const char *k;
		json_t *v;
		json_object_foreach(p->json, k, v)
		{
			if (n == VND_FORM_MAX)
				break;
			if (json_is_string(v)) {
				names[n] = k;
				values[n++] = json_string_value(v);
			} else if (json_is_integer(v) && nn < 64) {
				snprintf(nums[nn], sizeof nums[nn], "%lld",
				         (long long)json_integer_value(v));
				names[n] = k;
				values[n++] = nums[nn++];
			}
		}
	} else {
		for (size_t i = 0; i < p->form.n; i++) {
			names[n] = p->form.name[i];
			values[n++] = p->form.value[i];
		}
	}
	const char *sig = vg_get(p, "sig");
	char want[160], got[160];
	size_t sl = sig ? strlen(sig) : 0;
	if (!sig || sl >= sizeof got) {
		snprintf(err, errlen, "vendor %s: webhook without a \"sig\" parameter", a->v->name);
		return TOCSIN_ERR_AUTH;
	}
	for (size_t i = 0; i <= sl; i++)
		got[i] = (char)tolower((unsigned char)sig[i]);
	if (vnd_vonage_sign(a->sig_secret, a->sig_method, names, values, n, want, sizeof want) ||
	    !vnd_ct_eq(want, strlen(want), got, sl)) {
		snprintf(err, errlen, "vendor %s: webhook \"sig\" does not match (%s)", a->v->name,
		         a->sig_method);
		return TOCSIN_ERR_AUTH;
	}
	int rc = vnd_wh_fresh(a, vg_get(p, "timestamp"), err, errlen);
	if (!rc)
		snprintf(sigout, sigcap, "vonage:%.140s", got);
	return rc;
}

static int vg_webhook(vnd_t *a, const vnd_wh_req_t *rq, vnd_wh_fn fn, void *ctx, char *err, size_t errlen)
{
	/* Signed webhooks: "sig" + "timestamp" among the parameters (VENDORS.md),
	 * unless the config opted out with "webhook_auth":"none" */
	vg_params_t p;
	memset(&p, 0, sizeof p);
	int rc;
	const char *ct = rq->content_type ? rq->content_type : "";
	if (rq->method && !strcmp(rq->method, "POST") && !strncmp(ct, "application/json", 16)) {
		p.json = json_loadb(rq->body ? rq->body : "", rq->bodylen, 0, NULL);
		if (!json_is_object(p.json)) {
			json_decref(p.json);
			snprintf(err, errlen, "vendor %s: webhook body is not a JSON object",
			         a->v->name);
			return a->wh_unsigned ? TOCSIN_ERR_INVAL : TOCSIN_ERR_AUTH;
		}
		rc = vnd_form_parse("", 0, &p.form);
	} else if (rq->method && !strcmp(rq->method, "POST"))
		rc = vnd_form_parse(rq->body ? rq->body : "", rq->bodylen, &p.form);
	else
		rc = vnd_form_parse(rq->query ? rq->query : "", rq->query ? strlen(rq->query) : 0,
		                    &p.form);
	if (rc) {
		vnd_form_free(&p.form);
		json_decref(p.json);
		snprintf(err, errlen, "vendor %s: webhook parameters too large", a->v->name);
		return rc;
	}
	char replay[160] = "";
	if (!a->wh_unsigned && (rc = vg_verify(a, &p, replay, sizeof replay, err, errlen))) {
		vnd_form_free(&p.form);
		json_decref(p.json);
		return rc;
	}
	vnd_wh_event_t *ev = calloc(1, sizeof *ev);
	if (!ev) {
		vnd_form_free(&p.form);
		json_decref(p.json);
		return TOCSIN_ERR_NOMEM;
	}
	const char *status = vg_get(&p, "status"), *text = vg_get(&p, "text");
	const char *msisdn = vg_get(&p, "msisdn");
	const char *mid = vg_get(&p, "messageId");
	if (!mid)
		mid = vg_get(&p, "message-id");
	char addr[40];
	addr[0] = 0;
	if (msisdn && *msisdn)
		snprintf(addr, sizeof addr, "%s%.30s", msisdn[0] == '+' ? "" : "+", msisdn);
	rc = 0;
	if (status) {
		ev->kind = VND_WH_STATUS;
		const char *cref = vg_get(&p, "client-ref");
		if (cref && strlen(cref) == MSG_ID_LEN)
			vnd_cpy(ev->id, sizeof ev->id, cref);
		vnd_cpy(ev->ref, sizeof ev->ref, mid);
		int known;
		ev->state = vg_state(status, &known);
		const char *ec = vg_get(&p, "err-code");
		vnd_cpy(ev->code, sizeof ev->code, ec);
		if (ec && !strcmp(ec, "9") && ev->state == MSG_ST_FAILED)
			ev->optout = 1;
		vnd_cpy(ev->detail, sizeof ev->detail, status);
		snprintf(ev->event_id, sizeof ev->event_id, "%.60s:%.30s", mid ? mid : "", status);
		vnd_cpy(ev->address, sizeof ev->address, addr);
		if (!known) {
			snprintf(err, errlen, "vendor %s: unknown receipt status \"%.40s\"",
			         a->v->name, status);
			rc = TOCSIN_ERR_INVAL;
		}
	} else if (text && addr[0]) {
		ev->kind = VND_WH_INBOUND;
		vnd_cpy(ev->ref, sizeof ev->ref, mid);
		vnd_cpy(ev->event_id, sizeof ev->event_id, mid);
		vnd_cpy(ev->address, sizeof ev->address, addr);
		const char *to = vg_get(&p, "to");
		if (to && *to && to[0] != '+')
			snprintf(ev->to, sizeof ev->to, "+%.60s", to);
		else
			vnd_cpy(ev->to, sizeof ev->to, to);
		vnd_cpy(ev->body, sizeof ev->body, text);
		ev->keyword = vnd_keyword(text);
	} else {
		snprintf(err, errlen, "vendor %s: webhook has neither status nor text+msisdn",
		         a->v->name);
		rc = TOCSIN_ERR_INVAL;
	}
	if (!rc) {
		vnd_cpy(ev->replay, sizeof ev->replay, replay);
		fn(ctx, ev);
	}
	free(ev);
	vnd_form_free(&p.form);
	json_decref(p.json);
	return rc ? rc : 1;
}

const vnd_ops_t vnd_vonage_ops = {"vonage", 1, vg_build, vg_classify, vg_webhook};
