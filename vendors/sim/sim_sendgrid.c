/* sim_sendgrid.c -- the emulated SendGrid /v3/mail/send (a scanner reading and a jansson reading); signed events. */
#include "vendors/sim/sim_int.h"
#include "vendors/sim/sim_json.h"

#include "core/clock.h"
#include "core/err.h"
#include "core/hash.h"
#include "core/log.h"
#include "vendors/vnd_int.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static void sg_error(sim_ans_t *ans, unsigned st, const char *field, const char *msg)
{
	ans->status = st;
	ans->ctype = "application/json";
	buf_reset(&ans->body);
	buf_puts(&ans->body, "{\"errors\":[{\"message\":");
	buf_json_str(&ans->body, msg, strlen(msg));
	buf_puts(&ans->body, ",\"field\":");
	if (field)
		buf_json_str(&ans->body, field, strlen(field));
	else
		buf_puts(&ans->body, "null");
	buf_puts(&ans->body, ",\"help\":null}]}");
}

/* the from checks both readings share: no from object names `from`, a bad address `from.email` */
static void sg_err_from(sim_ans_t *ans, int has_from)
{
	if (!has_from)
		sg_error(ans, 400, "from", "The from object must be provided for every email send. It is an object "
		                           "that requires the email parameter, but may also contain a name parameter.");
	else
		sg_error(ans, 400, "from.email", "The from email does not contain a valid address.");
}

/* address em[0..n) of personalizations.i.<kind>.k: not an address (dup 0) or seen before (dup 1) */
static void sg_err_addr(sim_ans_t *ans, size_t i, const char *kind, size_t k, const char *em, size_t n,
                        int dup)
{
	char field[96], msg[600];
	snprintf(field, sizeof field, "personalizations.%zu.%s.%zu.email", i, kind, k);
	if (!dup) {
		sg_error(ans, 400, field, "Does not contain a valid address.");
		return;
	}
	snprintf(msg, sizeof msg, "Each email address in the personalization block should be unique between to, "
	                          "cc, and bcc. We found the first duplicate instance of [%.*s] in the "
	                          "personalizations.%zu.%s field.", (int)(n < 320 ? n : 320), em, i, kind);
	sg_error(ans, 400, field, msg);
}

/* the recipient lists of a personalization, in the order SendGrid checks them */
static const char *const sg_kinds[3] = {"to", "cc", "bcc"};

static int sg_match(sim_vendor_t *sv, const void *tok)
{
	return sv->secret && vnd_ct_eq(sv->secret, strlen(sv->secret), tok, strlen(tok));
}

static int is_email(const char *s)
{
	const char *at = s ? strchr(s, '@') : NULL;
	return at && at > s && strchr(at + 1, '.') && !strpbrk(s, " \t\r\n<>,;\"");
}

/* sign a SendGrid event batch and queue it */
/* The event SendGrid reports for recipient email of a request (delivered, bounce or
 * unsubscribe, drawn from the faults f), as a new object for the events array. */
static json_t *sg_event(sim_t *s, sim_vendor_t *sv, const sim_fault_t *f, const char *email,
                        const char *xid, size_t i)
{
	double u = sim_rand(s);
	const char *ev = "delivered";
	if (f->optout_rate > 0 && u < f->optout_rate)
		ev = "unsubscribe";
	else if ((f->permanent_rate > 0 && sim_rand(s) < f->permanent_rate) ||
	         !(f->delivered_rate >= 1 || sim_rand(s) < f->delivered_rate))
		ev = "bounce";
	json_t *o = json_object();
	json_object_set_new(o, "email", json_string(email));
	json_object_set_new(o, "timestamp", json_integer((json_int_t)time(NULL)));
	json_object_set_new(o, "event", json_string(ev));
	char eid[40], smid[80];
	sim_ref(s, sv, "", eid, 23);
	snprintf(smid, sizeof smid, "%s.filter0001.%zu", xid, i);
	json_object_set_new(o, "sg_event_id", json_string(eid));
	json_object_set_new(o, "sg_message_id", json_string(smid));
	if (!strcmp(ev, "bounce")) {
		json_object_set_new(o, "type", json_string("bounce"));
		json_object_set_new(o, "reason", json_string("550 5.1.1 The email account that you tried "
		                                             "to reach does not exist."));
	}
	return o;
}

static void sg_events(sim_t *s, sim_vendor_t *sv, const char *url, json_t *events, double delay)
{
	char *body = json_dumps(events, JSON_COMPACT);
	if (!body || !sv->sg_key) {
		free(body);
		return;
	}
	char ts[24]; /* signed when it is due, as SendGrid signs when it posts */
	snprintf(ts, sizeof ts, "%lld", (long long)(time(NULL) + (time_t)(delay / 1000)));
	unsigned char sig[160];
	size_t sl = sizeof sig;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int ok = md && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, sv->sg_key) == 1 &&
	         EVP_DigestSignUpdate(md, ts, strlen(ts)) == 1 &&
	         EVP_DigestSignUpdate(md, body, strlen(body)) == 1 &&
	         EVP_DigestSignFinal(md, sig, &sl) == 1;
	EVP_MD_CTX_free(md);
	char sig64[256];
	if (ok && vnd_b64(sig, sl, sig64, sizeof sig64) > 0)
		sim_webhook_later(s, sv, delay, url, "application/json", body,
		                  "X-Twilio-Email-Event-Webhook-Signature", sig64,
		                  "X-Twilio-Email-Event-Webhook-Timestamp", ts);
	free(body);
}

/* SendGrid: every key of subs (an object of strings) replaced literally in
 * src[0..len) by its value, key by key. Result in out (reset first). */
static int sg_apply(buf_t *out, const char *src, size_t len, json_t *subs, int *applied)
{
	buf_reset(out);
	int rc = buf_append(out, src, len);
	const char *k;
	json_t *v;
	buf_t tmp;
	buf_init(&tmp, SIM_PART_MAX);
	json_object_foreach(subs, k, v)
	{
		size_t kl = strlen(k);
		if (!kl || !json_is_string(v) || rc)
			continue;
		const char *p = out->p, *end = out->p + out->len, *q;
		buf_reset(&tmp);
		int hit = 0;
		while ((q = sim_memfind(p, (size_t)(end - p), k, kl))) {
			rc = rc ? rc : buf_append(&tmp, p, (size_t)(q - p));
			rc = rc ? rc : buf_append(&tmp, json_string_value(v), json_string_length(v));
			p = q + kl;
			hit = 1;
		}
		if (!hit)
			continue;
		*applied = 1;
		rc = rc ? rc : buf_append(&tmp, p, (size_t)(end - p));
		buf_reset(out);
		rc = rc ? rc : buf_append(out, tmp.p, tmp.len);
	}
	buf_free(&tmp);
	return rc;
}

void sim_api_sendgrid(sim_t *s, sim_req_t *rq, sim_ans_t *ans)
{
	const char *auth = sim_hdr(rq, "Authorization");
	sim_vendor_t *sv = auth && !strncmp(auth, "Bearer ", 7) ? sim_find(s, SIM_SENDGRID, sg_match, auth + 7) : NULL;
	if (!sv) {
		sg_error(ans, 401, NULL, "The provided authorization grant is invalid, expired, or revoked");
		return;
	}
	sim_note_request(sv);
	sim_fault_t f;
	sim_fault_get(sv, &f);
	if (sim_faults(s, sv, &f, ans))
		return;
	sim_sendgrid_body(s, sv, &f, rq->body, rq->bodylen, 0, ans);
}

/* the jansson reading of a /v3/mail/send body: every check and answer, for what the scanner leaves */
static void sg_slow(sim_t *s, sim_vendor_t *sv, const sim_fault_t *fp, const char *body, size_t bodylen,
                    sim_ans_t *ans)
{
	sim_fault_t f = *fp;
	json_error_t je;
	json_t *j = json_loadb(body, bodylen, 0, &je);
	if (!json_is_object(j)) {
		json_decref(j);
		sg_error(ans, 400, NULL, "Bad Request");
		return;
	}
	json_t *ps = json_object_get(j, "personalizations");
	json_t *from = json_object_get(json_object_get(j, "from"), "email");
	json_t *content = json_object_get(j, "content");
	char field[96], msg[200];
	size_t np = json_array_size(ps), nrcpt = 0;
	const char *bad = NULL;
	if (!json_is_array(ps) || np == 0)
		sg_error(ans, 400, "personalizations", "The personalizations field is required and must have at least one personalization."), bad = "p";
	else if (np > 1000)
		sg_error(ans, 400, "personalizations", "The personalizations field must have 1000 or fewer personalizations."), bad = "p";
	else if (!json_is_string(from) || !is_email(json_string_value(from)))
		sg_err_from(ans, json_is_object(json_object_get(j, "from"))), bad = "f";
	else if (!json_is_string(json_object_get(j, "subject")) && !json_object_get(j, "template_id"))
		sg_error(ans, 400, "subject", "The subject is required. You can get around this requirement if you use a template with a subject defined or if every personalization has a subject defined."), bad = "s";
	else if (!sim_sender_ok(sv, json_string_value(from), NULL))
		sg_error(ans, 403, "from", "The from address does not match a verified Sender Identity. Mail cannot be sent until this error is resolved."), bad = "v";
	else if (!json_is_array(content) || json_array_size(content) == 0)
		sg_error(ans, 400, "content", "Unless a valid template_id is provided, the content parameter is required. There must be at least one defined content block."), bad = "c";
	if (bad) {
		json_decref(j);
		return;
	}
	json_t *seen = json_object();
	size_t i;
	json_t *p;
	json_array_foreach(ps, i, p)
	{
		json_t *to = json_object_get(p, "to");
		if (!json_is_array(to) || json_array_size(to) == 0) {
			snprintf(field, sizeof field, "personalizations.%zu.to", i);
			sg_error(ans, 400, field, "The to array is required for all personalization objects, and must have at least one email object with a valid email address.");
			bad = "t";
			break;
		}
		for (int kind = 0; kind < 3 && !bad; kind++) {
			json_t *list = json_object_get(p, sg_kinds[kind]);
			if (kind && list && !json_is_array(list)) {
				snprintf(field, sizeof field, "personalizations.%zu.%s", i, sg_kinds[kind]);
				sg_error(ans, 400, field, "Invalid type. Expected: array, given: another type.");
				bad = "l";
				break;
			}
			size_t k;
			json_t *e;
			json_array_foreach(list, k, e)
			{
				const char *em = json_string_value(json_object_get(e, "email"));
				if (!is_email(em) || json_object_get(seen, em)) {
					sg_err_addr(ans, i, sg_kinds[kind], k, em ? em : "", em ? strlen(em) : 0, em && is_email(em));
					bad = "e";
					break;
				}
				json_object_set_new(seen, em, json_true());
				nrcpt++;
			}
		}
		if (bad)
			break;
		/* the size of custom_args as compact JSON, near enough (keys, values, quotes) */
		size_t cal = 0;
		{
			const char *ck;
			json_t *cv;
			json_object_foreach(json_object_get(p, "custom_args"), ck, cv)
			{
				cal += strlen(ck) + 4;
				cal += json_is_string(cv) ? json_string_length(cv) + 2 : 24;
			}
		}
		if (cal >= 10000) {
			snprintf(field, sizeof field, "personalizations.%zu.custom_args", i);
			sg_error(ans, 400, field, "The custom_args total size must be less than 10000 bytes.");
			bad = "a";
			break;
		}
		json_t *sub = json_object_get(p, "substitutions");
		if (sub) {
			size_t tot = 0;
			const char *sk;
			json_t *sval;
			int okv = json_is_object(sub);
			json_object_foreach(sub, sk, sval)
			{
				okv &= json_is_string(sval);
				tot += strlen(sk) + (json_is_string(sval) ? json_string_length(sval) : 0);
			}
			snprintf(field, sizeof field, "personalizations.%zu.substitutions", i);
			if (!okv) {
				sg_error(ans, 400, field, "Substitutions must be an object of string values.");
				bad = "u";
				break;
			}
			if (tot >= 10000) {
				sg_error(ans, 400, field, "The substitutions total size must be less than 10000 bytes.");
				bad = "u";
				break;
			}
		}
	}
	json_decref(seen);
	if (!bad && nrcpt > 1000) {
		snprintf(msg, sizeof msg, "The total number of recipients must be 1000 or fewer (found %zu).", nrcpt);
		sg_error(ans, 400, "personalizations", msg);
		bad = "n";
	}
	if (bad) {
		json_decref(j);
		return;
	}
	char xid[40];
	sim_ref(s, sv, "", xid, 23);
	ans->status = 202;
	ans->ctype = NULL;
	memcpy(ans->hname, "X-Message-Id", 13);
	vnd_cpy(ans->hval, sizeof ans->hval, xid);
	sim_note_accepted(sv, np);
	char ub[600];
	const char *rurl = f.receipts ? sim_hook_url(s, sv, &f, "events", ub, sizeof ub) : NULL;
	json_t *events = rurl ? json_array() : NULL;
	json_t *topargs = json_object_get(j, "custom_args");
	/* each recipient's message as SendGrid would write it: substitutions applied
	 * to subject and every content value, then its unsubscribe link checked */
	json_t *subj = json_object_get(j, "subject");
	size_t nc = json_array_size(content) < 3 ? json_array_size(content) : 3; /* parts[3]: the header */
	buf_t parts[5];
	for (size_t k = 0; k < 5; k++)
		buf_init(&parts[k], SIM_PART_MAX);
	json_t *tophdr = json_object_get(j, "headers");
	json_array_foreach(ps, i, p)
	{
		{
			json_t *sub = json_object_get(p, "substitutions");
			int applied = 0;
			for (size_t k = 0; k < nc; k++) {
				json_t *cv = json_object_get(json_array_get(content, k), "value");
				sg_apply(&parts[k], json_string_value(cv) ? json_string_value(cv) : "",
				         json_string_length(cv), sub, &applied);
			}
			sg_apply(&parts[4], json_string_value(subj) ? json_string_value(subj) : "",
			         json_string_length(subj), sub, &applied);
			int ctext = -1, chtml = -1;
			for (size_t k = 0; k < nc; k++) {
				const char *ty = json_string_value(json_object_get(json_array_get(content, k), "type"));
				if (ty && !strcmp(ty, "text/plain") && ctext < 0)
					ctext = (int)k;
				else if (ty && !strcmp(ty, "text/html") && chtml < 0)
					chtml = (int)k;
			}
			sim_email_digest(sv, &f, json_string_value(json_object_get(json_array_get(json_object_get(p, "to"), 0), "email")),
			                 parts[4].p, parts[4].len, ctext < 0 ? NULL : parts[ctext].p,
			                 ctext < 0 ? 0 : parts[ctext].len, chtml < 0 ? NULL : parts[chtml].p,
			                 chtml < 0 ? 0 : parts[chtml].len);
			json_t *luj = json_object_get(json_object_get(p, "headers"), "List-Unsubscribe");
			if (!luj)
				luj = json_object_get(tophdr, "List-Unsubscribe");
			const char *lu = json_string_value(luj);
			if (lu && !sg_apply(&parts[3], lu, strlen(lu), sub, &applied) && !buf_putc(&parts[3], 0))
				lu = parts[3].p;
			sim_email_check(sv, json_string_value(json_object_get(json_array_get(json_object_get(p, "to"), 0), "email")),
			            lu, parts, nc, applied);
		}
		json_t *ca = json_object_get(p, "custom_args");
		const char *id = json_string_value(json_object_get(ca, "tocsin_id"));
		if (!id)
			id = json_string_value(json_object_get(topargs, "tocsin_id"));
		sim_count_id(sv, id, json_string_value(json_object_get(json_array_get(json_object_get(p, "to"), 0), "email")),
		         json_string_value(json_object_get(j, "subject")));
		if (!events)
			continue;
		const char *em = json_string_value(json_object_get(json_array_get(json_object_get(p, "to"), 0), "email"));
		json_t *o = sg_event(s, sv, &f, em, xid, i);
		const char *k;
		json_t *v;
		json_object_foreach(topargs, k, v) json_object_set(o, k, v); /* merged, as SendGrid does */
		json_object_foreach(ca, k, v) json_object_set(o, k, v);
		json_array_append_new(events, o);
	}
	for (size_t k = 0; k < 5; k++)
		buf_free(&parts[k]);
	if (events && json_array_size(events))
		sg_events(s, sv, rurl, events, f.receipt_delay_ms);
	json_decref(events);
	json_decref(j);
}

/* one personalization, as checked: spans into the body or the request's arena */
typedef struct sg_pers {
	const char *to0;   /* its first address, NUL-terminated */
	const char *id;    /* custom_args.tocsin_id, NUL-terminated, or NULL */
	sj_t ca;           /* custom_args (any type), or p == NULL */
	const char *lu;    /* headers.List-Unsubscribe when a string */
	int lu_set;        /* headers had List-Unsubscribe (any type) */
	size_t sub0, nsub; /* its substitutions in sg_fast_t.subs */
} sg_pers_t;

typedef struct sg_sub {
	const char *k, *v;
	size_t kl, vl;
} sg_sub_t;

/* per-request state of the scanner reading: one arena for decoded strings, one
 * table of the request's addresses, one list of substitutions */
typedef struct sg_fast {
	char *arena;
	size_t alen, acap;
	sg_pers_t *ps;
	sg_sub_t *subs;
	size_t nsubs, capsubs;
	struct sg_seen {
		uint64_t h;
		const char *p;
		size_t n;
	} *seen;
	size_t nseen, capseen;
} sg_fast_t;

#define SG_FALLBACK 1

/* string token t as a NUL-terminated string: in place when it has no escape
 * and is followed by nothing we need (never: the body is const), so copied or
 * decoded into the arena. NULL when the arena is full. */
static const char *sg_cstr(sg_fast_t *x, sj_t t, size_t *len)
{
	size_t n = sj_has_esc(t) ? sj_str_len(t) : t.n - 2;
	if (x->alen + n + 1 > x->acap)
		return NULL;
	char *o = x->arena + x->alen;
	if (sj_has_esc(t))
		sj_str_dec(t, o);
	else {
		memcpy(o, t.p + 1, n);
		o[n] = 0;
	}
	x->alen += n + 1;
	if (len)
		*len = n;
	return o;
}

/* string token t as bytes: in the body when it has no escape, else decoded into the arena */
static const char *sg_bytes(sg_fast_t *x, sj_t t, size_t *len)
{
	if (!sj_has_esc(t)) {
		*len = t.n - 2;
		return t.p + 1;
	}
	return sg_cstr(x, t, len);
}

/* members names[0..n) of o into vals (last one wins, as with jansson); all
 * absent when o is not an object. SG_FALLBACK when a key has an escape. */
static int sg_get(sj_t o, const char *const *names, sj_t *vals, int n)
{
	for (int i = 0; i < n; i++)
		vals[i].p = NULL, vals[i].n = 0;
	sj_it_t it;
	if (sj_iter(o, SJ_OBJ, &it))
		return 0;
	sj_t k, v;
	while (sj_next_member(&it, &k, &v)) {
		if (sj_has_esc(k))
			return SG_FALLBACK;
		for (int i = 0; i < n; i++)
			if (sj_key_is(k, names[i]))
				vals[i] = v;
	}
	return 0;
}

/* the keys of object o, checked distinct and escape-free (else SG_FALLBACK) */
static int sg_plain_keys(sj_t o)
{
	sj_it_t it;
	if (sj_iter(o, SJ_OBJ, &it))
		return 0;
	sj_t ks[64], k, v;
	int n = 0;
	while (sj_next_member(&it, &k, &v)) {
		if (sj_has_esc(k) || n == 64)
			return SG_FALLBACK;
		for (int i = 0; i < n; i++)
			if (ks[i].n == k.n && !memcmp(ks[i].p, k.p, k.n))
				return SG_FALLBACK;
		ks[n++] = k;
	}
	return 0;
}

static int is_email_n(const char *s, size_t n)
{
	const char *at = memchr(s, '@', n);
	if (!at || at == s || !memchr(at + 1, '.', (size_t)(s + n - at - 1)))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (strchr(" \t\r\n<>,;\"", s[i]) && s[i])
			return 0;
	return 1;
}

/* 1 when the address was already in the request; adds it otherwise (-1: no memory) */
static int sg_seen(sg_fast_t *x, const char *p, size_t n)
{
	if ((x->nseen + 1) * 2 > x->capseen) {
		size_t nc = x->capseen ? x->capseen * 2 : 2048;
		struct sg_seen *t = calloc(nc, sizeof *t);
		if (!t)
			return -1;
		for (size_t i = 0; i < x->capseen; i++) {
			if (!x->seen[i].p)
				continue;
			size_t j = x->seen[i].h & (nc - 1);
			while (t[j].p)
				j = (j + 1) & (nc - 1);
			t[j] = x->seen[i];
		}
		free(x->seen);
		x->seen = t;
		x->capseen = nc;
	}
	uint64_t h = hash64(p, n, 5);
	size_t j = h & (x->capseen - 1);
	for (; x->seen[j].p; j = (j + 1) & (x->capseen - 1))
		if (x->seen[j].h == h && x->seen[j].n == n && !memcmp(x->seen[j].p, p, n))
			return 1;
	x->seen[j].h = h;
	x->seen[j].p = p;
	x->seen[j].n = n;
	x->nseen++;
	return 0;
}

/* SendGrid substitutions from a list: like sg_apply, with tmp reused by the caller */
static int sg_apply_list(buf_t *out, buf_t *tmp, const char *src, size_t len, const sg_sub_t *subs,
                         size_t nsub, int *applied)
{
	buf_reset(out);
	int rc = buf_append(out, src, len);
	for (size_t i = 0; i < nsub && !rc; i++) {
		const sg_sub_t *sb = &subs[i];
		if (!sb->kl)
			continue;
		const char *p = out->p, *end = out->p + out->len, *q;
		buf_reset(tmp);
		int hit = 0;
		while ((q = sim_memfind(p, (size_t)(end - p), sb->k, sb->kl))) {
			rc = rc ? rc : buf_append(tmp, p, (size_t)(q - p));
			rc = rc ? rc : buf_append(tmp, sb->v, sb->vl);
			p = q + sb->kl;
			hit = 1;
		}
		if (!hit)
			continue;
		*applied = 1;
		rc = rc ? rc : buf_append(tmp, p, (size_t)(end - p));
		if (!rc) { /* the result becomes out: swap the buffers */
			buf_t t = *out;
			*out = *tmp;
			*tmp = t;
		}
	}
	return rc;
}

static void sg_fast_free(sg_fast_t *x)
{
	free(x->arena);
	free(x->ps);
	free(x->subs);
	free(x->seen);
}

/* a JSON object span as a jansson value (events only), NULL when it is not an object */
static json_t *sg_obj(sj_t v)
{
	return sj_type(v) == SJ_OBJ ? json_loadb(v.p, v.n, 0, NULL) : NULL;
}

/* The scanner reading: 0 when the body was answered, SG_FALLBACK (nothing
 * counted, ans untouched) when it is left to jansson. */
static int sg_fast(sim_t *s, sim_vendor_t *sv, const sim_fault_t *fp, const char *body, size_t len,
                   sim_ans_t *ans)
{
	sj_t j;
	if (sj_parse(body, len, &j))
		return SG_FALLBACK;
	static const char *const top_names[] = {"personalizations", "from", "content", "subject",
	                                        "template_id", "headers", "custom_args"};
	sj_t tv[7];
	if (sg_get(j, top_names, tv, 7))
		return SG_FALLBACK;
	sj_t ps = tv[0], fromo = tv[1], content = tv[2], subj = tv[3], tmpl = tv[4], tophdr = tv[5],
	     topargs = tv[6];
	sg_fast_t x;
	memset(&x, 0, sizeof x);
	x.acap = 2 * len + 64;
	x.arena = malloc(x.acap);
	if (!x.arena)
		return SG_FALLBACK;
	int rc = SG_FALLBACK;
	char field[96], msg[200];
	size_t np = 0, nrcpt = 0;
	sj_it_t it;
	sj_t v, k;
	if (!sj_iter(ps, SJ_ARR, &it))
		while (sj_next_elem(&it, &v))
			np++;
	static const char *const email_name[] = {"email"};
	sj_t fromv;
	if (sg_get(fromo, email_name, &fromv, 1))
		goto out;
	const char *from = sj_type(fromv) == SJ_STR ? sg_cstr(&x, fromv, NULL) : NULL;
	if (sj_type(fromv) == SJ_STR && !from)
		goto out;
	size_t ncontent = 0;
	if (!sj_iter(content, SJ_ARR, &it))
		while (sj_next_elem(&it, &v))
			ncontent++;
	/* the same checks in the same order as sg_slow; no count changes before all pass */
	const char *bad = NULL;
	if (sj_type(ps) != SJ_ARR || np == 0)
		sg_error(ans, 400, "personalizations", "The personalizations field is required and must have at least one personalization."), bad = "p";
	else if (np > 1000)
		sg_error(ans, 400, "personalizations", "The personalizations field must have 1000 or fewer personalizations."), bad = "p";
	else if (!from || !is_email(from))
		sg_err_from(ans, sj_type(fromo) == SJ_OBJ), bad = "f";
	else if (sj_type(subj) != SJ_STR && !tmpl.p)
		sg_error(ans, 400, "subject", "The subject is required. You can get around this requirement if you use a template with a subject defined or if every personalization has a subject defined."), bad = "s";
	else if (!sim_sender_ok(sv, from, NULL))
		sg_error(ans, 403, "from", "The from address does not match a verified Sender Identity. Mail cannot be sent until this error is resolved."), bad = "v";
	else if (sj_type(content) != SJ_ARR || ncontent == 0)
		sg_error(ans, 400, "content", "Unless a valid template_id is provided, the content parameter is required. There must be at least one defined content block."), bad = "c";
	if (bad) {
		rc = 0;
		goto out;
	}
	x.ps = calloc(np, sizeof *x.ps);
	if (!x.ps)
		goto out;
	static const char *const p_names[] = {"to", "custom_args", "substitutions", "headers", "cc", "bcc"};
	static const char *const id_name[] = {"tocsin_id"};
	static const char *const lu_name[] = {"List-Unsubscribe"};
	sj_t p;
	size_t i = 0;
	sj_iter(ps, SJ_ARR, &it);
	for (; sj_next_elem(&it, &p); i++) {
		sg_pers_t *pr = &x.ps[i];
		sj_t pv[6], idv, luv;
		if (sg_get(p, p_names, pv, 6))
			goto out;
		sj_t to = pv[0], ca = pv[1], sub = pv[2], hd = pv[3], lists[3] = {pv[0], pv[4], pv[5]};
		sj_it_t ti;
		if (sj_iter(to, SJ_ARR, &ti) || !sj_next_elem(&ti, &v)) {
			snprintf(field, sizeof field, "personalizations.%zu.to", i);
			sg_error(ans, 400, field, "The to array is required for all personalization objects, and must have at least one email object with a valid email address.");
			bad = "t";
			break;
		}
		for (int kind = 0; kind < 3 && !bad; kind++) {
			if (kind && lists[kind].p && sj_type(lists[kind]) != SJ_ARR) {
				snprintf(field, sizeof field, "personalizations.%zu.%s", i, sg_kinds[kind]);
				sg_error(ans, 400, field, "Invalid type. Expected: array, given: another type.");
				bad = "l";
				break;
			}
			if (sj_iter(lists[kind], SJ_ARR, &ti))
				continue;
			for (size_t kk = 0; sj_next_elem(&ti, &v); kk++) {
				sj_t ev;
				if (sg_get(v, email_name, &ev, 1))
					goto out;
				const char *em = NULL;
				size_t eml = 0;
				int first = !kind && !kk;
				if (sj_type(ev) == SJ_STR) {
					em = first ? sg_cstr(&x, ev, &eml) : sg_bytes(&x, ev, &eml);
					if (!em)
						goto out;
				}
				if (first)
					pr->to0 = em;
				int seen = em && is_email_n(em, eml) ? sg_seen(&x, em, eml) : 0;
				if (seen < 0)
					goto out;
				if (!em || !is_email_n(em, eml) || seen) {
					sg_err_addr(ans, i, sg_kinds[kind], kk, em ? em : "", eml, seen);
					bad = "e";
					break;
				}
				nrcpt++;
			}
		}
		if (bad)
			break;
		/* custom_args: its size as sg_slow counts it */
		if (sg_plain_keys(ca))
			goto out;
		size_t cal = 0;
		if (!sj_iter(ca, SJ_OBJ, &ti))
			while (sj_next_member(&ti, &k, &v))
				cal += k.n - 2 + 4 + (sj_type(v) == SJ_STR ? sj_str_len(v) + 2 : 24);
		if (cal >= 10000) {
			snprintf(field, sizeof field, "personalizations.%zu.custom_args", i);
			sg_error(ans, 400, field, "The custom_args total size must be less than 10000 bytes.");
			bad = "a";
			break;
		}
		pr->ca = ca;
		if (sg_get(ca, id_name, &idv, 1))
			goto out;
		if (sj_type(idv) == SJ_STR && !(pr->id = sg_cstr(&x, idv, NULL)))
			goto out;
		if (sub.p) {
			if (sg_plain_keys(sub))
				goto out;
			size_t tot = 0;
			int okv = sj_type(sub) == SJ_OBJ;
			pr->sub0 = x.nsubs;
			if (!sj_iter(sub, SJ_OBJ, &ti))
				while (sj_next_member(&ti, &k, &v)) {
					okv &= sj_type(v) == SJ_STR;
					if (sj_type(v) != SJ_STR)
						continue;
					if (x.nsubs == x.capsubs) {
						size_t nc = x.capsubs ? x.capsubs * 2 : 1024;
						sg_sub_t *ns = realloc(x.subs, nc * sizeof *ns);
						if (!ns)
							goto out;
						x.subs = ns;
						x.capsubs = nc;
					}
					sg_sub_t *sb = &x.subs[x.nsubs++];
					sb->k = k.p + 1;
					sb->kl = k.n - 2;
					if (!(sb->v = sg_bytes(&x, v, &sb->vl)))
						goto out;
					tot += sb->kl + sb->vl;
				}
			pr->nsub = x.nsubs - pr->sub0;
			snprintf(field, sizeof field, "personalizations.%zu.substitutions", i);
			if (!okv) {
				sg_error(ans, 400, field, "Substitutions must be an object of string values.");
				bad = "u";
				break;
			}
			if (tot >= 10000) {
				sg_error(ans, 400, field, "The substitutions total size must be less than 10000 bytes.");
				bad = "u";
				break;
			}
		}
		if (sg_get(hd, lu_name, &luv, 1))
			goto out;
		pr->lu_set = luv.p != NULL;
		if (sj_type(luv) == SJ_STR && !(pr->lu = sg_cstr(&x, luv, NULL)))
			goto out;
	}
	if (!bad && nrcpt > 1000) {
		snprintf(msg, sizeof msg, "The total number of recipients must be 1000 or fewer (found %zu).", nrcpt);
		sg_error(ans, 400, "personalizations", msg);
		bad = "n";
	}
	if (bad) {
		rc = 0;
		goto out;
	}
	/* what stays the same for every recipient: content, subject, the top-level header, the top id */
	size_t nc = ncontent < 3 ? ncontent : 3; /* parts[3]: the header */
	const char *cval[3] = {"", "", ""};
	size_t clen[3] = {0, 0, 0};
	int ctext = -1, chtml = -1; /* which content part is text/plain, text/html */
	static const char *const value_name[] = {"value", "type"};
	sj_iter(content, SJ_ARR, &it);
	for (size_t c = 0; c < nc && sj_next_elem(&it, &v); c++) {
		sj_t cv[2];
		if (sg_get(v, value_name, cv, 2))
			goto out;
		if (sj_type(cv[0]) == SJ_STR && !(cval[c] = sg_bytes(&x, cv[0], &clen[c])))
			goto out;
		const char *ty = sj_type(cv[1]) == SJ_STR ? sg_cstr(&x, cv[1], NULL) : NULL;
		if (ty && !strcmp(ty, "text/plain") && ctext < 0)
			ctext = (int)c;
		else if (ty && !strcmp(ty, "text/html") && chtml < 0)
			chtml = (int)c;
	}
	const char *subject = NULL;
	size_t subjl = 0;
	if (sj_type(subj) == SJ_STR && !(subject = sg_cstr(&x, subj, &subjl)))
		goto out;
	sj_t tluv, tidv;
	if (sg_get(tophdr, lu_name, &tluv, 1) || sg_get(topargs, id_name, &tidv, 1))
		goto out;
	const char *toplu = NULL, *topid = NULL;
	if (sj_type(tluv) == SJ_STR && !(toplu = sg_cstr(&x, tluv, NULL)))
		goto out;
	if (sj_type(tidv) == SJ_STR && !(topid = sg_cstr(&x, tidv, NULL)))
		goto out;
	sim_fault_t f = *fp;
	char ub[600];
	const char *rurl = f.receipts ? sim_hook_url(s, sv, &f, "events", ub, sizeof ub) : NULL;
	json_t *topj = rurl ? sg_obj(topargs) : NULL;
	if (rurl && sg_plain_keys(topargs)) {
		json_decref(topj);
		goto out;
	}
	/* from here on the request is accepted: the answer and the counts, as sg_slow */
	rc = 0;
	char xid[40];
	sim_ref(s, sv, "", xid, 23);
	ans->status = 202;
	ans->ctype = NULL;
	memcpy(ans->hname, "X-Message-Id", 13);
	vnd_cpy(ans->hval, sizeof ans->hval, xid);
	sim_note_accepted(sv, np);
	json_t *events = rurl ? json_array() : NULL;
	buf_t parts[5], tmp;
	for (size_t c = 0; c < 5; c++)
		buf_init(&parts[c], SIM_PART_MAX);
	buf_init(&tmp, SIM_PART_MAX);
	for (i = 0; i < np; i++) {
		sg_pers_t *pr = &x.ps[i];
		const sg_sub_t *sb = x.subs ? x.subs + pr->sub0 : NULL;
		int applied = 0;
		for (size_t c = 0; c < nc; c++)
			sg_apply_list(&parts[c], &tmp, cval[c], clen[c], sb, pr->nsub, &applied);
		sg_apply_list(&parts[4], &tmp, subject ? subject : "", subjl, sb, pr->nsub, &applied);
		sim_email_digest(sv, &f, pr->to0, parts[4].p, parts[4].len, ctext < 0 ? NULL : parts[ctext].p,
		                 ctext < 0 ? 0 : parts[ctext].len, chtml < 0 ? NULL : parts[chtml].p,
		                 chtml < 0 ? 0 : parts[chtml].len);
		const char *lu = pr->lu_set ? pr->lu : toplu;
		if (lu && !sg_apply_list(&parts[3], &tmp, lu, strlen(lu), sb, pr->nsub, &applied) &&
		    !buf_putc(&parts[3], 0))
			lu = parts[3].p;
		sim_email_check(sv, pr->to0, lu, parts, nc, applied);
		sim_count_id(sv, pr->id ? pr->id : topid, pr->to0, subject);
		if (!events)
			continue;
		json_t *o = sg_event(s, sv, &f, pr->to0, xid, i);
		const char *ck;
		json_t *cv, *caj = sg_obj(pr->ca);
		json_object_foreach(topj, ck, cv) json_object_set(o, ck, cv); /* merged, as SendGrid does */
		json_object_foreach(caj, ck, cv) json_object_set(o, ck, cv);
		json_decref(caj);
		json_array_append_new(events, o);
	}
	for (size_t c = 0; c < 5; c++)
		buf_free(&parts[c]);
	buf_free(&tmp);
	if (events && json_array_size(events))
		sg_events(s, sv, rurl, events, f.receipt_delay_ms);
	json_decref(events);
	json_decref(topj);
out:
	sg_fast_free(&x);
	if (rc == SG_FALLBACK) { /* leave ans as it was */
		ans->status = 0;
		buf_reset(&ans->body);
	}
	return rc;
}

int sim_sendgrid_body(sim_t *s, sim_vendor_t *sv, const sim_fault_t *f, const char *body, size_t len,
                      int mode, sim_ans_t *ans)
{
	if (mode != 1 && sg_fast(s, sv, f, body, len, ans) == 0)
		return 0;
	if (mode == 2)
		return SG_FALLBACK;
	sg_slow(s, sv, f, body, len, ans);
	return 0;
}

int sim_sendgrid_setup(sim_vendor_t *sv, char *err, size_t errlen)
{
	json_t *k = sv->v->raw ? json_object_get(sv->v->raw, "sim_signing_key_env") : NULL;
	const char *pem = json_is_string(k) ? getenv(json_string_value(k)) : NULL;
	if (pem) {
		BIO *bio = BIO_new_mem_buf(pem, -1);
		sv->sg_key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
		BIO_free(bio);
		if (!sv->sg_key) {
			snprintf(err, errlen, "vendor %s: env %s does not hold a PEM EC private key",
			         sv->v->name, json_string_value(k));
			return -1;
		}
	} else {
		sv->sg_key = EVP_EC_gen("P-256");
		if (!sv->sg_key) {
			snprintf(err, errlen, "vendor %s: cannot generate a P-256 key", sv->v->name);
			return -1;
		}
	}
	unsigned char der[300], *p = der;
	int n = i2d_PUBKEY(sv->sg_key, NULL);
	if (n <= 0 || n > (int)sizeof der || i2d_PUBKEY(sv->sg_key, &p) != n ||
	    vnd_b64(der, (size_t)n, sv->sg_pub, sizeof sv->sg_pub) < 0) {
		snprintf(err, errlen, "vendor %s: cannot encode the webhook public key", sv->v->name);
		return -1;
	}
	return 0;
}

void sim_sendgrid_inbound(sim_t *s, sim_vendor_t *sv, const char *url, const char *from, const char *to,
                          const char *body)
{
	(void)to;
	(void)body;
	char ref[40];
	json_t *ev = json_pack("[{s:s,s:I,s:s,s:s}]", "email", from, "timestamp",
	                       (json_int_t)time(NULL), "event", "unsubscribe", "sg_event_id", "sim-unsub");
	sim_ref(s, sv, "", ref, 23);
	json_object_set_new(json_array_get(ev, 0), "sg_event_id", json_string(ref));
	sg_events(s, sv, url, ev, 0);
	json_decref(ev);
}
