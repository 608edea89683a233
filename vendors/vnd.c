/* vnd.c -- the vendor interface: adapter lookup, shared classification, forms, keywords, signatures. */
#include "vendors/vnd_int.h"

#include "core/err.h"
#include "core/num.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <time.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VND_REQ_MAX (32u << 20) /* SendGrid's 30 MB request limit, with room */

const char *vnd_outcome_name(vnd_outcome_t o)
{
	switch (o) {
	case VND_ACCEPTED: return "accepted";
	case VND_DEFER: return "defer";
	case VND_PERMANENT: return "permanent";
	case VND_OPTOUT: return "optout";
	case VND_CONFIG: return "config";
	}
	return "unknown";
}

void vnd_req_init(vnd_req_t *r)
{
	buf_init(&r->url, 8192);
	buf_init(&r->body, VND_REQ_MAX);
	buf_init(&r->content_type, 256);
	buf_init(&r->userpwd, 1024);
	buf_init(&r->bearer, 1024);
	r->get = 0;
}

void vnd_req_free(vnd_req_t *r)
{
	if (!r)
		return;
	buf_free(&r->url);
	buf_free(&r->body);
	buf_free(&r->content_type);
	buf_free(&r->userpwd);
	buf_free(&r->bearer);
}

static const vnd_ops_t *const all_ops[] = {&vnd_twilio_ops, &vnd_vonage_ops, &vnd_sendgrid_ops,
                                           &vnd_mailgun_ops};

vnd_t *vnd_new(const cfg_t *c, const cfg_vendor_t *v, char *err, size_t errlen)
{
	const vnd_ops_t *ops = NULL;
	for (size_t i = 0; i < sizeof all_ops / sizeof all_ops[0]; i++)
		if (v->kind && strcmp(all_ops[i]->kind, v->kind) == 0)
			ops = all_ops[i];
	if (!ops) {
		snprintf(err, errlen,
		         "vendor %s: unknown kind \"%s\" (twilio, vonage, sendgrid, mailgun)",
		         v->name, v->kind ? v->kind : "");
		return NULL;
	}
	if (strcmp(ops->kind, "sendgrid") && (!v->account || !*v->account)) {
		snprintf(err, errlen, "vendor %s: \"account\" is required for kind %s", v->name,
		         v->kind);
		return NULL;
	}
	const char *secret = cfg_secret(v);
	if (!secret || !*secret) {
		snprintf(err, errlen, "vendor %s: the secret's environment variable %s is unset",
		         v->name, v->secret_env ? v->secret_env : "(no \"secret_env\" in config)");
		return NULL;
	}
	vnd_t *a = calloc(1, sizeof *a);
	if (!a) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	a->c = c;
	a->v = v;
	a->ops = ops;
	a->secret = secret;
	json_t *k = v->raw ? json_object_get(v->raw, "webhook_key_env") : NULL;
	if (json_is_string(k))
		a->wh_key = getenv(json_string_value(k));
	k = v->raw ? json_object_get(v->raw, "webhook_public_key") : NULL;
	if (json_is_string(k))
		a->wh_pubkey = json_string_value(k);
	k = v->raw ? json_object_get(v->raw, "signature_secret_env") : NULL;
	if (json_is_string(k)) {
		a->sig_secret = getenv(json_string_value(k));
		if (a->sig_secret && !*a->sig_secret)
			a->sig_secret = NULL;
	}
	k = v->raw ? json_object_get(v->raw, "signature_method") : NULL;
	a->sig_method = json_is_string(k) ? json_string_value(k) : "md5hash";
	a->wh_unsigned = !strcmp(vnd_wh_auth_cfg(v), "none");
	buf_init(&a->tmp, VND_REQ_MAX);
	return a;
}

void vnd_free(vnd_t *a)
{
	if (!a)
		return;
	buf_free(&a->tmp);
	free(a);
}

const cfg_vendor_t *vnd_cfg(const vnd_t *a) { return a->v; }
int vnd_max_batch(const vnd_t *a) { return a->ops->max_batch; }

static void req_reset(vnd_req_t *req)
{
	buf_reset(&req->url);
	buf_reset(&req->body);
	buf_reset(&req->content_type);
	buf_reset(&req->userpwd);
	buf_reset(&req->bearer);
	req->get = 0;
}

int vnd_build(vnd_t *a, const msg_out_t *const *msgs, size_t n, vnd_req_t *req, char *err, size_t errlen)
{
	if (n < 1 || n > (size_t)a->ops->max_batch) {
		snprintf(err, errlen, "vendor %s: batch of %zu messages (1..%d allowed)",
		         a->v->name, n, a->ops->max_batch);
		return TOCSIN_ERR_INVAL;
	}
	req_reset(req);
	return a->ops->build(a, msgs, n, req, err, errlen);
}

static const struct lookup_ops {
	const vnd_ops_t *ops;
	int (*build)(vnd_t *a, const char *ref, vnd_req_t *req, char *err, size_t errlen);
	int (*parse)(vnd_t *a, long http_status, int curl_code, const char *body, size_t bodylen,
	             vnd_lookup_t *out);
} lookups[] = {{&vnd_twilio_ops, vnd_twilio_lookup_build, vnd_twilio_lookup_parse}};

static const struct lookup_ops *lookup_of(const vnd_t *a)
{
	for (size_t i = 0; i < sizeof lookups / sizeof lookups[0]; i++)
		if (lookups[i].ops == a->ops)
			return &lookups[i];
	return NULL;
}

int vnd_lookup_has(const vnd_t *a) { return lookup_of(a) != NULL; }

int vnd_lookup_build(vnd_t *a, const char *ref, vnd_req_t *req, char *err, size_t errlen)
{
	const struct lookup_ops *lo = lookup_of(a);
	if (!lo) {
		snprintf(err, errlen, "vendor %s (%s) has no message lookup API", a->v->name,
		         a->ops->kind);
		return TOCSIN_ERR_NOTFOUND;
	}
	size_t n = ref ? strlen(ref) : 0;
	int ok = n >= 1 && n <= 64;
	for (size_t i = 0; ok && i < n; i++)
		ok = (ref[i] >= '0' && ref[i] <= '9') || (ref[i] >= 'A' && ref[i] <= 'Z') ||
		     (ref[i] >= 'a' && ref[i] <= 'z');
	if (!ok) {
		snprintf(err, errlen, "vendor %s: \"%.64s\" is not a message reference", a->v->name,
		         ref ? ref : "");
		return TOCSIN_ERR_INVAL;
	}
	req_reset(req);
	req->get = 1;
	return lo->build(a, ref, req, err, errlen);
}

int vnd_lookup_parse(vnd_t *a, long http_status, int curl_code, const char *body, size_t bodylen,
                     vnd_lookup_t *out)
{
	memset(out, 0, sizeof *out);
	const struct lookup_ops *lo = lookup_of(a);
	if (!lo)
		return TOCSIN_ERR_NOTFOUND;
	if (!body)
		bodylen = 0;
	return lo->parse(a, http_status, curl_code, body ? body : "", bodylen, out);
}

void vnd_classify(vnd_t *a, const msg_out_t *const *msgs, size_t n, long http_status, int curl_code,
                  const char *body, size_t bodylen, long retry_after_s, vnd_result_t *results)
{
	for (size_t i = 0; i < n; i++) {
		memset(&results[i], 0, sizeof results[i]);
		results[i].retry_after_ms = -1;
	}
	if (!body)
		bodylen = 0;
	a->ops->classify(a, msgs, n, http_status, curl_code, body ? body : "", bodylen,
	                 retry_after_s, results);
}

int vnd_webhook(vnd_t *a, const vnd_wh_req_t *rq, vnd_wh_fn fn, void *ctx, char *err, size_t errlen)
{
	if (rq->bodylen > VND_MAX_BODY) {
		snprintf(err, errlen, "vendor %s: webhook body of %zu bytes exceeds %u", a->v->name,
		         rq->bodylen, VND_MAX_BODY);
		return TOCSIN_ERR_TOOBIG;
	}
	return a->ops->webhook(a, rq, fn, ctx, err, errlen);
}

const char *vnd_wh_auth_cfg(const cfg_vendor_t *v)
{
	json_t *k = v->raw ? json_object_get(v->raw, "webhook_auth") : NULL;
	if (json_is_string(k) && !strcmp(json_string_value(k), "none"))
		return "none";
	const char *key = NULL;
	if (v->kind && !strcmp(v->kind, "vonage"))
		key = "signature_secret_env";
	else if (v->kind && !strcmp(v->kind, "sendgrid"))
		key = "webhook_public_key";
	if (!key)
		return "signed"; /* Twilio and Mailgun sign with the API secret itself */
	k = v->raw ? json_object_get(v->raw, key) : NULL;
	if (!json_is_string(k) || !*json_string_value(k))
		return "unverifiable";
	if (!strcmp(key, "signature_secret_env")) {
		const char *e = getenv(json_string_value(k));
		if (!e || !*e)
			return "unverifiable";
	}
	return "signed";
}

const char *vnd_wh_auth(const vnd_t *a) { return vnd_wh_auth_cfg(a->v); }

/* s without surrounding angle brackets: start and length */
static const char *ref_core(const char *s, size_t *n)
{
	size_t l = strlen(s);
	if (l >= 2 && s[0] == '<' && s[l - 1] == '>') {
		*n = l - 2;
		return s + 1;
	}
	*n = l;
	return s;
}

int vnd_ref_matches(const char *kind, const char *stored, const char *got)
{
	if (!stored || !*stored || !got || !*got)
		return 1;
	size_t sn, gn;
	const char *sp = ref_core(stored, &sn), *gp = ref_core(got, &gn);
	if (sn == gn && !memcmp(sp, gp, sn))
		return 1;
	/* Vonage: one message-id per part of a long SMS, one receipt per part */
	if (kind && !strcmp(kind, "vonage")) {
		for (const char *t = stored; *t;) {
			size_t tl = strcspn(t, " ");
			if (tl == gn && !memcmp(t, gp, gn))
				return 1;
			t += tl + (t[tl] == ' ');
		}
		return 0;
	}
	/* SendGrid: one X-Message-Id per request, each event's sg_message_id extends it */
	return kind && !strcmp(kind, "sendgrid") && gn > sn && !memcmp(sp, gp, sn) && gp[sn] == '.';
}

int64_t vnd_wh_now_s(void)
{
	const char *e = getenv("TOCSIN_TEST_NOW_S");
	int64_t t;
	if (e && !num_i64(e, 1, INT64_MAX / 4, &t))
		return t;
	return (int64_t)time(NULL);
}

int vnd_wh_fresh(const vnd_t *a, const char *ts, char *err, size_t errlen)
{
	int max = a->c && a->c->webhook_max_age_s > 0 ? a->c->webhook_max_age_s : 300;
	int64_t t;
	if (!ts || num_i64(ts, 0, INT64_MAX / 2, &t)) {
		snprintf(err, errlen, "vendor %s: webhook timestamp %s", a->v->name,
		         ts ? "is not a number of seconds" : "missing");
		return TOCSIN_ERR_AUTH;
	}
	int64_t d = vnd_wh_now_s() - t;
	if (d > max || d < -max) {
		snprintf(err, errlen,
		         "vendor %s: webhook timestamp %lld is %lld s from now (more than %d)",
		         a->v->name, (long long)t, (long long)(d < 0 ? -d : d), max);
		return TOCSIN_ERR_AUTH;
	}
	return 0;
}

/* ---- shared helpers ---- */

void vnd_cpy(char *dst, size_t cap, const char *s)
{
	if (!cap)
		return;
	if (!s)
		s = "";
	size_t n = strlen(s);
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, s, n);
	dst[n] = 0;
}

void vnd_res(vnd_result_t *r, vnd_outcome_t o, const char *code, const char *fmt, ...)
{
	r->outcome = o;
	vnd_cpy(r->code, sizeof r->code, code);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->detail, sizeof r->detail, fmt, ap);
	va_end(ap);
	/* details quote vendor text: keep them one printable line */
	for (char *p = r->detail; *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = ' ';
}

int vnd_is_html(const char *body, size_t n)
{
	size_t i = 0;
	while (i < n && isspace((unsigned char)body[i]))
		i++;
	return i < n && body[i] == '<';
}

void vnd_fill_all(vnd_result_t *res, size_t n, const vnd_result_t *one)
{
	for (size_t i = 0; i < n; i++)
		res[i] = *one;
}

int vnd_common_defer(long http_status, int curl_code, const char *body, size_t n,
                     long retry_after_s, vnd_result_t *r)
{
	char code[32];
	r->retry_after_ms = retry_after_s >= 0
	                        ? (int)(retry_after_s > 86400 ? 86400000 : retry_after_s * 1000)
	                        : -1;
	if (http_status == 0) {
		snprintf(code, sizeof code, "curl_%d", curl_code);
		vnd_res(r, VND_DEFER, code, "transfer failed (curl error %d)", curl_code);
		return 1;
	}
	if (http_status == 429) {
		r->throttled = 1;
		vnd_res(r, VND_DEFER, "http_429", "rate limited by the vendor");
		return 1;
	}
	if (http_status >= 500 && http_status <= 599) {
		snprintf(code, sizeof code, "http_%ld", http_status);
		vnd_res(r, VND_DEFER, code, "vendor error %ld%s", http_status,
		        vnd_is_html(body, n) ? " (HTML page)" : "");
		return 1;
	}
	if (vnd_is_html(body, n)) {
		snprintf(code, sizeof code, "http_%ld", http_status);
		vnd_res(r, VND_DEFER, code, "HTML page with status %ld (a proxy?)", http_status);
		return 1;
	}
	return 0;
}

/* ---- forms ---- */

static int hexv(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* decode s[0..n) into d (room n+1); returns decoded length */
static size_t form_dec(const char *s, size_t n, char *d)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '+')
			d[o++] = ' ';
		else if (s[i] == '%' && i + 2 < n + 0 && hexv(s[i + 1]) >= 0 && hexv(s[i + 2]) >= 0) {
			d[o++] = (char)(hexv(s[i + 1]) * 16 + hexv(s[i + 2]));
			i += 2;
		} else
			d[o++] = s[i];
	}
	d[o] = 0;
	return o;
}

int vnd_form_parse(const char *s, size_t len, vnd_form_t *f)
{
	f->n = 0;
	f->store = NULL;
	if (len > VND_MAX_BODY)
		return TOCSIN_ERR_TOOBIG;
	f->store = malloc(len * 2 + 2);
	if (!f->store)
		return TOCSIN_ERR_NOMEM;
	char *d = f->store;
	size_t i = 0;
	while (i < len) {
		size_t e = i;
		while (e < len && s[e] != '&')
			e++;
		if (e > i) {
			if (f->n >= VND_FORM_MAX)
				return TOCSIN_ERR_TOOBIG;
			size_t eq = i;
			while (eq < e && s[eq] != '=')
				eq++;
			f->name[f->n] = d;
			d += form_dec(s + i, eq - i, d) + 1;
			f->value[f->n] = d;
			d += form_dec(s + (eq < e ? eq + 1 : e), eq < e ? e - eq - 1 : 0, d) + 1;
			f->n++;
		}
		i = e + 1;
	}
	return 0;
}

void vnd_form_free(vnd_form_t *f)
{
	if (!f)
		return;
	free(f->store);
	f->store = NULL;
	f->n = 0;
}

const char *vnd_form_get(const vnd_form_t *f, const char *name)
{
	for (size_t i = 0; i < f->n; i++)
		if (strcmp(f->name[i], name) == 0)
			return f->value[i];
	return NULL;
}

/* ---- keywords ---- */

vnd_kw_t vnd_keyword(const char *body)
{
	if (!body)
		return VND_KW_OTHER;
	while (isspace((unsigned char)*body))
		body++;
	size_t n = strlen(body);
	while (n && (isspace((unsigned char)body[n - 1]) || body[n - 1] == '.' || body[n - 1] == '!'))
		n--;
	if (n == 0 || n > 11)
		return VND_KW_OTHER;
	char w[16];
	for (size_t i = 0; i < n; i++)
		w[i] = (char)toupper((unsigned char)body[i]);
	w[n] = 0;
	static const char *const stop[] = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END",
	                                   "QUIT", "REVOKE",  "OPTOUT",      "OPT OUT"};
	static const char *const start[] = {"START", "YES", "UNSTOP"};
	static const char *const help[] = {"HELP", "INFO"};
	for (size_t i = 0; i < sizeof stop / sizeof *stop; i++)
		if (!strcmp(w, stop[i]))
			return VND_KW_STOP;
	for (size_t i = 0; i < sizeof start / sizeof *start; i++)
		if (!strcmp(w, start[i]))
			return VND_KW_START;
	for (size_t i = 0; i < sizeof help / sizeof *help; i++)
		if (!strcmp(w, help[i]))
			return VND_KW_HELP;
	return VND_KW_OTHER;
}

const char *vnd_kw_name(vnd_kw_t k)
{
	switch (k) {
	case VND_KW_STOP: return "stop";
	case VND_KW_START: return "start";
	case VND_KW_HELP: return "help";
	case VND_KW_OTHER: return "other";
	}
	return "other";
}

/* ---- signatures ---- */

int vnd_ct_eq(const void *a, size_t n, const void *b, size_t m)
{
	if (n != m)
		return 0;
	const unsigned char *x = a, *y = b;
	unsigned char d = 0;
	for (size_t i = 0; i < n; i++)
		d |= x[i] ^ y[i];
	return d == 0;
}

int vnd_b64(const unsigned char *p, size_t n, char *out, size_t outlen)
{
	if (outlen < 4 * ((n + 2) / 3) + 1)
		return -1;
	return EVP_EncodeBlock((unsigned char *)out, p, (int)n);
}

int vnd_unb64(const char *s, unsigned char *out, size_t outlen)
{
	size_t n = strlen(s);
	if (n % 4 || n / 4 * 3 > outlen)
		return -1;
	int r = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n);
	if (r < 0)
		return -1;
	if (n && s[n - 1] == '=')
		r--;
	if (n > 1 && s[n - 2] == '=')
		r--;
	return r;
}

static int cmp_idx(const void *x, const void *y, void *ctx)
{
	const char *const *names = ctx;
	size_t i = *(const size_t *)x, j = *(const size_t *)y;
	int c = strcmp(names[i], names[j]);
	return c ? c : (i < j ? -1 : i > j);
}

/* idx[0..n) = the order of names sorted by byte value (stable) */
static void sort_names(const char *const *names, size_t n, size_t *idx)
{
	for (size_t i = 0; i < n; i++)
		idx[i] = i;
	qsort_r(idx, n, sizeof idx[0], cmp_idx, (void *)names);
}

int vnd_twilio_sign(const char *token, const char *url, const char *const *names,
                    const char *const *values, size_t n, char *out, size_t outlen)
{
	if (!token || !url || n > VND_FORM_MAX)
		return TOCSIN_ERR_INVAL;
	size_t idx[VND_FORM_MAX];
	sort_names(names, n, idx);
	buf_t b;
	buf_init(&b, VND_MAX_BODY * 2);
	int rc = buf_puts(&b, url);
	for (size_t i = 0; i < n && !rc; i++) {
		rc = buf_puts(&b, names[idx[i]]);
		if (!rc)
			rc = buf_puts(&b, values[idx[i]]);
	}
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	if (!rc && !HMAC(EVP_sha1(), token, (int)strlen(token),
	                 (const unsigned char *)(b.p ? b.p : ""), b.len, mac, &maclen))
		rc = TOCSIN_ERR_INVAL;
	buf_free(&b);
	if (rc)
		return rc;
	return vnd_b64(mac, maclen, out, outlen) < 0 ? TOCSIN_ERR_TOOBIG : 0;
}

int vnd_vonage_sign(const char *secret, const char *method, const char *const *names,
                    const char *const *values, size_t n, char *out, size_t outlen)
{
	const EVP_MD *md = NULL;
	int plain = !method || !strcmp(method, "md5hash");
	if (!plain && !strcmp(method, "md5"))
		md = EVP_md5();
	else if (!plain && !strcmp(method, "sha1"))
		md = EVP_sha1();
	else if (!plain && !strcmp(method, "sha256"))
		md = EVP_sha256();
	else if (!plain && !strcmp(method, "sha512"))
		md = EVP_sha512();
	if (!secret || (!plain && !md) || n > VND_FORM_MAX || outlen < 2 * EVP_MAX_MD_SIZE + 1)
		return TOCSIN_ERR_INVAL;
	size_t idx[VND_FORM_MAX];
	sort_names(names, n, idx);
	buf_t b;
	buf_init(&b, VND_MAX_BODY * 2);
	int rc = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		if (!strcmp(names[idx[i]], "sig"))
			continue;
		rc = buf_printf(&b, "&%s=", names[idx[i]]);
		for (const char *v = values[idx[i]]; *v && !rc; v++)
			rc = buf_putc(&b, *v == '&' || *v == '=' ? '_' : *v);
	}
	if (!rc && plain)
		rc = buf_puts(&b, secret);
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	const unsigned char *msg = (const unsigned char *)(b.p ? b.p : "");
	if (!rc && plain && !EVP_Digest(msg, b.len, mac, &maclen, EVP_md5(), NULL))
		rc = TOCSIN_ERR_INVAL;
	else if (!rc && !plain && !HMAC(md, secret, (int)strlen(secret), msg, b.len, mac, &maclen))
		rc = TOCSIN_ERR_INVAL;
	buf_free(&b);
	if (rc)
		return rc;
	for (unsigned i = 0; i < maclen; i++)
		snprintf(out + 2 * i, 3, "%02x", mac[i]);
	out[2 * maclen] = 0;
	return 0;
}

int vnd_mailgun_sign(const char *key, const char *timestamp, const char *token, char *out, size_t outlen)
{
	if (!key || !timestamp || !token || outlen < 65)
		return TOCSIN_ERR_INVAL;
	size_t tl = strlen(timestamp), kl = strlen(token);
	if (tl > 64 || kl > 256)
		return TOCSIN_ERR_INVAL;
	unsigned char msg[320];
	memcpy(msg, timestamp, tl);
	memcpy(msg + tl, token, kl);
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	if (!HMAC(EVP_sha256(), key, (int)strlen(key), msg, tl + kl, mac, &maclen))
		return TOCSIN_ERR_INVAL;
	for (unsigned i = 0; i < maclen; i++)
		snprintf(out + 2 * i, 3, "%02x", mac[i]);
	return 0;
}

int vnd_sendgrid_verify(const char *pubkey_b64, const char *timestamp, const char *sig_b64,
                        const char *body, size_t bodylen)
{
	if (!pubkey_b64 || !timestamp || !sig_b64 || strlen(pubkey_b64) > 1024 ||
	    strlen(sig_b64) > 512 || strlen(timestamp) > 64)
		return TOCSIN_ERR_AUTH;
	unsigned char der[800], sig[400];
	int dl = vnd_unb64(pubkey_b64, der, sizeof der);
	int sl = vnd_unb64(sig_b64, sig, sizeof sig);
	if (dl <= 0 || sl <= 0)
		return TOCSIN_ERR_AUTH;
	const unsigned char *p = der;
	EVP_PKEY *pk = d2i_PUBKEY(NULL, &p, dl);
	if (!pk)
		return TOCSIN_ERR_AUTH;
	int ok = 0;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (md && EVP_PKEY_get_base_id(pk) == EVP_PKEY_EC &&
	    EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pk) == 1 &&
	    EVP_DigestVerifyUpdate(md, timestamp, strlen(timestamp)) == 1 &&
	    EVP_DigestVerifyUpdate(md, body ? body : "", bodylen) == 1 &&
	    EVP_DigestVerifyFinal(md, sig, (size_t)sl) == 1)
		ok = 1;
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(pk);
	return ok ? 0 : TOCSIN_ERR_AUTH;
}

/* ---- a non-allocating scan of a JSON object's top-level string field ---- */

static size_t js_ws(const char *p, size_t n, size_t i)
{
	while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
		i++;
	return i;
}

/* p[i] == '"': index just past the closing quote, or 0 when unterminated */
static size_t js_str_end(const char *p, size_t n, size_t i)
{
	for (i++; i < n; i++) {
		if (p[i] == '\\')
			i++;
		else if (p[i] == '"')
			return i + 1;
		else if ((unsigned char)p[i] < 0x20)
			return 0;
	}
	return 0;
}

/* skip one value starting at p[i]; index past it or 0 when malformed */
static size_t js_skip(const char *p, size_t n, size_t i, int depth)
{
	if (i >= n || depth > 64)
		return 0;
	if (p[i] == '"')
		return js_str_end(p, n, i);
	if (p[i] == '{' || p[i] == '[') {
		char close = p[i] == '{' ? '}' : ']';
		int obj = p[i] == '{';
		i = js_ws(p, n, i + 1);
		if (i < n && p[i] == close)
			return i + 1;
		for (;;) {
			if (obj) {
				if (i >= n || p[i] != '"' || !(i = js_str_end(p, n, i)))
					return 0;
				i = js_ws(p, n, i);
				if (i >= n || p[i] != ':')
					return 0;
				i = js_ws(p, n, i + 1);
			}
			if (!(i = js_skip(p, n, i, depth + 1)))
				return 0;
			i = js_ws(p, n, i);
			if (i < n && p[i] == ',') {
				i = js_ws(p, n, i + 1);
				continue;
			}
			return i < n && p[i] == close ? i + 1 : 0;
		}
	}
	size_t s = i;
	while (i < n && (p[i] == '-' || p[i] == '+' || p[i] == '.' || (p[i] >= '0' && p[i] <= '9') ||
	                 (p[i] >= 'a' && p[i] <= 'z') || (p[i] >= 'A' && p[i] <= 'Z')))
		i++;
	if (i == s)
		return 0;
	if ((p[s] >= 'a' && p[s] <= 'z') && !((i - s == 4 && !memcmp(p + s, "true", 4)) ||
	                                      (i - s == 4 && !memcmp(p + s, "null", 4)) ||
	                                      (i - s == 5 && !memcmp(p + s, "false", 5))))
		return 0;
	return i;
}

int vnd_json_top_str(const char *p, size_t n, const char *key, char *out, size_t outlen)
{
	size_t kl = strlen(key), i = js_ws(p, n, 0);
	int found = 0;
	if (outlen)
		out[0] = 0;
	if (i >= n || p[i] != '{')
		return -1;
	i = js_ws(p, n, i + 1);
	if (i < n && p[i] == '}')
		return js_ws(p, n, i + 1) == n ? 0 : -1;
	for (;;) {
		if (i >= n || p[i] != '"')
			return -1;
		size_t ke = js_str_end(p, n, i);
		if (!ke)
			return -1;
		int match = ke - i - 2 == kl && !memcmp(p + i + 1, key, kl);
		i = js_ws(p, n, ke);
		if (i >= n || p[i] != ':')
			return -1;
		i = js_ws(p, n, i + 1);
		size_t ve = js_skip(p, n, i, 0);
		if (!ve)
			return -1;
		if (match && !found && p[i] == '"' && outlen) {
			size_t o = 0;
			for (size_t k = i + 1; k < ve - 1 && o + 1 < outlen; k++) {
				char c = p[k];
				if (c == '\\') {
					c = p[++k];
					c = c == 'n'   ? '\n'
					    : c == 't' ? '\t'
					    : c == 'r' ? '\r'
					    : c == 'b' ? '\b'
					    : c == 'f' ? '\f'
					    : c == 'u' ? '?'
					               : c;
					if (p[k] == 'u')
						k += 4 < ve - 1 - k ? 4 : ve - 2 - k;
				}
				out[o++] = c;
			}
			out[o] = 0;
			found = 1;
		}
		i = js_ws(p, n, ve);
		if (i < n && p[i] == ',') {
			i = js_ws(p, n, i + 1);
			continue;
		}
		if (i < n && p[i] == '}')
			return js_ws(p, n, i + 1) == n ? found : -1;
		return -1;
	}
}

int vnd_email_first(const cfg_vendor_t *v, const msg_out_t *m0, const cfg_sender_t **s, char *err,
                    size_t errlen)
{
	*s = cfg_sender(v, m0->sender);
	if (!*s || !(*s)->from) {
		snprintf(err, errlen, "vendor %s has no from-address for sender pool \"%s\"",
		         v->name, m0->sender ? m0->sender : "main");
		return TOCSIN_ERR_INVAL;
	}
	if (!m0->subject || (!m0->text && !m0->html)) {
		snprintf(err, errlen, "message %s: an email needs \"subject\" and \"text\" or \"html\"",
		         m0->id ? m0->id : "?");
		return TOCSIN_ERR_INVAL;
	}
	return 0;
}
