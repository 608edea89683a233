/* sim_vonage.c -- the emulated Vonage SMS API: /sms/json by form, JSON or query; receipts and inbound messages, signed. */
#include "vendors/sim/sim_int.h"

#include "core/clock.h"
#include "core/err.h"
#include "core/hash.h"
#include "core/log.h"
#include "vendors/vnd_int.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* parts that get a receipt of their own (the later parts of a longer text share the last one's id slot) */
#define SIM_VG_PARTS 64

static void vg_answer(sim_ans_t *ans, const char *status, const char *text)
{
	ans->status = 200;
	ans->ctype = "application/json";
	buf_reset(&ans->body);
	buf_printf(&ans->body,
	           "{\"message-count\":\"1\",\"messages\":[{\"status\":\"%s\",\"error-text\":", status);
	buf_json_str(&ans->body, text, strlen(text));
	buf_puts(&ans->body, "}]}");
}

static int vg_match(sim_vendor_t *sv, const void *ctx)
{
	const char *const *kv = ctx;
	return kv[0] && kv[1] && sv->v->account && sv->secret && !strcmp(sv->v->account, kv[0]) &&
	       vnd_ct_eq(sv->secret, strlen(sv->secret), kv[1], strlen(kv[1]));
}

static int vg_key(sim_vendor_t *sv, const void *ctx)
{
	return ctx && sv->v->account && !strcmp(sv->v->account, ctx);
}

/* The form names/vals[0..n) into b (reset first). */
static void vg_form(buf_t *b, const char *const *names, const char *const *vals, size_t n)
{
	buf_reset(b);
	for (size_t i = 0; i < n; i++) {
		if (i)
			buf_putc(b, '&');
		buf_form_enc(b, names[i], strlen(names[i]));
		buf_putc(b, '=');
		buf_form_enc(b, vals[i], strlen(vals[i]));
	}
}

/* sim_sign_fn: the webhook's fields (it->raw: name NUL value NUL ...) with `timestamp`
 * (now_s: when this delivery is sent) and `sig` added, as Vonage signs each request. */
static int vg_sign(sim_item_t *it, int64_t now_s)
{
	const char *names[18], *vals[18];
	size_t n = 0;
	for (size_t at = 0; at < it->rawlen && n < 16;) {
		names[n] = it->raw + at;
		at += strlen(names[n]) + 1;
		if (at >= it->rawlen)
			return -1;
		vals[n] = it->raw + at;
		at += strlen(vals[n++]) + 1;
	}
	char ts[24], sig[160];
	snprintf(ts, sizeof ts, "%lld", (long long)now_s);
	names[n] = "timestamp";
	vals[n++] = ts;
	if (sim_vonage_sig(it->sv->vg_sig_method, it->sv->vg_sig, names, vals, n, sig, sizeof sig))
		return -1;
	names[n] = "sig";
	vals[n++] = sig;
	buf_t b;
	buf_init(&b, 1 << 20);
	vg_form(&b, names, vals, n);
	char *body = b.p ? strndup(b.p, b.len) : NULL;
	buf_free(&b);
	if (!body)
		return -1;
	free(it->body);
	it->body = body;
	return 0;
}

/* Queue a Vonage webhook: the form names/vals[0..n) (n <= 16), signed when sv has a
 * signature secret: `timestamp` (unix seconds when each delivery is sent, a retry
 * included) and `sig` added (vg_sign). */
static void vg_webhook(sim_t *s, sim_vendor_t *sv, double delay, const char *url,
                       const char **names, const char **vals, size_t n)
{
	buf_t b;
	buf_init(&b, 1 << 20);
	if (sv->vg_sig && n <= 16) {
		for (size_t i = 0; i < n; i++) {
			buf_append(&b, names[i], strlen(names[i]) + 1);
			buf_append(&b, vals[i], strlen(vals[i]) + 1);
		}
		sim_webhook_signed(s, sv, delay, url, "application/x-www-form-urlencoded", b.p,
		                   b.len, vg_sign);
	} else {
		vg_form(&b, names, vals, n);
		sim_webhook_later(s, sv, delay, url, "application/x-www-form-urlencoded", b.p, NULL,
		                  NULL, NULL, NULL);
	}
	buf_free(&b);
}

/* a Vonage `message-timestamp` (UTC "YYYY-MM-DD HH:MM:SS") for now + delay_ms */
static void vg_time(double delay_ms, char *out, size_t outlen)
{
	time_t t = time(NULL) + (time_t)(delay_ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, outlen, "%Y-%m-%d %H:%M:%S", &tm);
}

static void vg_receipt(sim_t *s, sim_vendor_t *sv, const char *url, const char *mid, const char *to,
                       const char *from, const char *status, const char *errcode, const char *cref,
                       double delay)
{
	char ts[32];
	vg_time(delay, ts, sizeof ts);
	const char *names[18] = {
	    "msisdn", "to",       "network-code", "messageId",         "price",     "status",
	    "scts",   "err-code", "api-key",      "message-timestamp", "client-ref"};
	const char *vals[18] = {to,           from,    "310004",       mid, "0.00570000", status,
	                        "2611212342", errcode, sv->v->account, ts,  cref};
	vg_webhook(s, sv, delay, url, names, vals, cref ? 11 : 10);
}

/* HTTP Basic credentials "user:password" from an Authorization value, into out
 * (user) and *pw; 0, or -1 when it is not Basic or not well-formed. */
static int basic_creds(const char *auth, char *out, size_t outlen, const char **pw)
{
	if (!auth || strncasecmp(auth, "Basic ", 6))
		return -1;
	const char *b = auth + 6;
	while (*b == ' ')
		b++;
	size_t n = strlen(b);
	if (!n || n % 4 || 3 * (n / 4) >= outlen)
		return -1;
	int len = EVP_DecodeBlock((unsigned char *)out, (const unsigned char *)b, (int)n);
	if (len < 0)
		return -1;
	len -= (b[n - 1] == '=') + (b[n - 2] == '=');
	out[len] = 0;
	char *colon = memchr(out, ':', (size_t)len);
	if (!colon || strlen(out) != (size_t)len)
		return -1;
	*colon = 0;
	*pw = colon + 1;
	return 0;
}

/* The parameters of a Vonage SMS request as Vonage reads them: the query (GET),
 * a JSON object or a form; 0, or -1 with the answer in ans. */
static int vg_params(sim_req_t *rq, sim_form_t *fm, sim_ans_t *ans)
{
	const char *ct = sim_hdr(rq, "Content-Type");
	int rc;
	if (!strcmp(rq->method, "GET"))
		rc = sim_form_args(rq->con, fm);
	else if (ct && !strncasecmp(ct, "application/json", 16))
		rc = sim_form_json(rq->body, rq->bodylen, fm);
	else
		rc = sim_form_parse(rq->body, rq->bodylen, fm);
	if (!rc)
		return 0;
	sim_form_free(fm);
	vg_answer(ans, "2",
	          rc == TOCSIN_ERR_INVAL ? "Missing params: the body is not a JSON object of values"
	                                 : "Missing params: request too large");
	return -1;
}

void sim_api_vonage(sim_t *s, sim_req_t *rq, sim_ans_t *ans)
{
	sim_form_t fm;
	if (vg_params(rq, &fm, ans))
		return;
	/* the credentials: HTTP Basic (the current SDKs) or api_key/api_secret parameters */
	char basic[400];
	const char *kv[2] = {sim_form_get(&fm, "api_key"), sim_form_get(&fm, "api_secret")};
	const char *auth = sim_hdr(rq, "Authorization");
	if (auth && !basic_creds(auth, basic, sizeof basic, &kv[1]))
		kv[0] = basic;
	else if (auth && !strncasecmp(auth, "Basic ", 6))
		kv[0] = kv[1] = NULL; /* a Basic header that does not decode: bad credentials */

	sim_vendor_t *owner0 = sim_find(s, SIM_VONAGE, vg_key, kv[0]);
	if (owner0 && sim_outage(s, owner0, ans)) {
		sim_form_free(&fm);
		return;
	}
	sim_vendor_t *sv = sim_find(s, SIM_VONAGE, vg_match, kv);
	if (!sv) {
		sim_vendor_t *owner = sim_find(s, SIM_VONAGE, vg_key, kv[0]);
		if (owner)
			sim_note_request(owner);
		vg_answer(ans, "4", "Bad Credentials");
		sim_form_free(&fm);
		return;
	}
	sim_note_request(sv);
	sim_fault_t f;
	sim_fault_get(sv, &f);
	if (sim_faults(s, sv, &f, ans)) {
		sim_form_free(&fm);
		return;
	}
	const char *from = sim_form_get(&fm, "from"), *to = sim_form_get(&fm, "to");
	const char *text = sim_form_get(&fm, "text"), *type = sim_form_get(&fm, "type");
	const char *cref = sim_form_get(&fm, "client-ref"), *cb = sim_form_get(&fm, "callback");
	int digits = to && *to && strlen(to) >= 7 && strlen(to) <= 15;
	for (const char *p = to; digits && *p; p++)
		digits = isdigit((unsigned char)*p);
	if (!from || !*from)
		vg_answer(ans, "2", "Missing from param");
	else if (!to || !*to)
		vg_answer(ans, "2", "Missing to param");
	else if (!text || !*text)
		vg_answer(ans, "2", "Missing text param");
	else if (!digits || !strcmp(to, "15005550001") ||
	         (f.permanent_rate > 0 && sim_rand(s) < f.permanent_rate))
		vg_answer(ans, "3", "Invalid to param");
	else if (type && strcmp(type, "text") && strcmp(type, "unicode") && strcmp(type, "binary"))
		vg_answer(ans, "3", "Invalid type param");
	else if (cref && strlen(cref) > 40)
		vg_answer(ans, "3", "Invalid client-ref param");
	else if (!sim_sender_ok(sv, from, NULL))
		vg_answer(ans, "15", "Illegal Sender Address - rejected");
	else {
		int parts = sim_segments(text, type && !strcmp(type, "unicode"), NULL);
		sim_note_accepted(sv, 1);
		sim_count_id(sv, cref, to, text);
		buf_t *b = &ans->body;
		ans->status = 200;
		ans->ctype = "application/json";
		buf_printf(b, "{\"message-count\":\"%d\",\"messages\":[", parts);
		/* one message-id per part, and (as Vonage does) one signed receipt per part */
		char mid[SIM_VG_PARTS][40];
		int np = parts < SIM_VG_PARTS ? parts : SIM_VG_PARTS;
		for (int i = 0; i < parts; i++) {
			char *m = mid[i < np ? i : np - 1];
			sim_ref(s, sv, "", m, 19);
			for (char *p = m; *p; p++)
				*p = (char)toupper((unsigned char)*p);
			buf_printf(b,
			           "%s{\"to\":\"%s\",\"message-id\":\"%s\",\"status\":\"0\","
			           "\"remaining-balance\":\"15.53590000\",\"message-price\":\"0.00570000\","
			           "\"network\":\"310004\"",
			           i ? "," : "", to, m);
			if (cref) {
				buf_puts(b, ",\"client-ref\":");
				buf_json_str(b, cref, strlen(cref));
			}
			buf_putc(b, '}');
		}
		buf_puts(b, "]}");
		char ub[600];
		const char *rurl = f.receipt_url[0] ? f.receipt_url
		                   : cb             ? cb
		                        : sim_hook_url(s, sv, &f, "status", ub, sizeof ub);
		if (f.receipts && rurl) {
			int opt = !strcmp(to, "15005550004") ||
			          (f.optout_rate > 0 && sim_rand(s) < f.optout_rate);
			int ok = !opt && (f.delivered_rate >= 1 || sim_rand(s) < f.delivered_rate);
			for (int i = 0; i < np; i++)
				vg_receipt(s, sv, rurl, mid[i], to, from,
				           opt  ? "failed"
				           : ok ? "delivered"
				                : "expired",
				           opt  ? "9"
				           : ok ? "0"
				                : "5",
				           cref, f.receipt_delay_ms);
		}
	}
	sim_form_free(&fm);
}

/* A Vonage vendor's webhook signing: `webhook_auth` "none" sends unsigned; else
 * `signature_secret_env` (an env var that must be set) with `signature_method`. */
int sim_vonage_setup(sim_vendor_t *sv, char *err, size_t errlen)
{
	json_t *raw = sv->v->raw;
	json_t *wa = json_object_get(raw, "webhook_auth"),
	       *se = json_object_get(raw, "signature_secret_env");
	json_t *sm = json_object_get(raw, "signature_method");
	if ((wa && !json_is_string(wa)) || (se && !json_is_string(se)) || (sm && !json_is_string(sm))) {
		snprintf(err, errlen,
		         "vendor %s: \"webhook_auth\", \"signature_secret_env\" and "
		         "\"signature_method\" must be strings",
		         sv->v->name);
		return -1;
	}
	sv->vg_sig_method = sim_vsig_method(json_string_value(sm));
	if (sv->vg_sig_method < 0) {
		snprintf(err, errlen,
		         "vendor %s: \"signature_method\" must be md5hash, md5, sha1, sha256 or sha512",
		         sv->v->name);
		return -1;
	}
	if (wa && !strcmp(json_string_value(wa), "none"))
		return 0;
	if (!se)
		return 0;
	sv->vg_sig = getenv(json_string_value(se));
	if (!sv->vg_sig || !*sv->vg_sig) {
		snprintf(err, errlen,
		         "vendor %s: environment variable %s (signature_secret_env) is not set",
		         sv->v->name, json_string_value(se));
		sv->vg_sig = NULL;
		return -1;
	}
	return 0;
}

void sim_vonage_inbound(sim_t *s, sim_vendor_t *sv, const char *url, const char *from,
                        const char *to, const char *body)
{
	char ref[40];
	sim_ref(s, sv, "", ref, 19);
	char ts[32];
	vg_time(0, ts, sizeof ts);
	const char *names[18] = {"msisdn", "to",      "messageId",        "type",
	                         "text",   "api-key", "message-timestamp"};
	const char *vals[18] = {from[0] == '+' ? from + 1 : from,
	                        to[0] == '+' ? to + 1 : to,
	                        ref,
	                        "text",
	                        body,
	                        sv->v->account ? sv->v->account : "",
	                        ts};
	vg_webhook(s, sv, 0, url, names, vals, 7);
}
