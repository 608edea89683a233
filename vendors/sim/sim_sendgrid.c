/* sim_sendgrid.c -- the emulated SendGrid /v3/mail/send (one set of checks and rebuild, read by a scanner with a jansson fallback); signed events. */
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
		sg_error(ans, 400, "from",
		         "The from object must be provided for every email send. It is an object "
		         "that requires the email parameter, but may also contain a name parameter.");
	else
		sg_error(ans, 400, "from.email", "The from email does not contain a valid address.");
}

/* address em[0..n) of personalizations.i.<kind>.k: not an address (dup 0) or seen before (dup 1) */
static void sg_err_addr(sim_ans_t *ans, size_t i, const char *kind, size_t k, const char *em,
                        size_t n, int dup)
{
	char field[96], msg[600];
	snprintf(field, sizeof field, "personalizations.%zu.%s.%zu.email", i, kind, k);
	if (!dup) {
		sg_error(ans, 400, field, "Does not contain a valid address.");
		return;
	}
	snprintf(msg, sizeof msg,
	         "Each email address in the personalization block should be unique between to, "
	         "cc, and bcc. We found the first duplicate instance of [%.*s] in the "
	         "personalizations.%zu.%s field.",
	         (int)(n < 320 ? n : 320), em, i, kind);
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
		json_object_set_new(o, "reason",
		                    json_string("550 5.1.1 The email account that you tried "
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

void sim_api_sendgrid(sim_t *s, sim_req_t *rq, sim_ans_t *ans)
{
	const char *auth = sim_hdr(rq, "Authorization");
	sim_vendor_t *sv = auth && !strncmp(auth, "Bearer ", 7)
	                       ? sim_find(s, SIM_SENDGRID, sg_match, auth + 7)
	                       : NULL;
	if (!sv) {
		sg_error(ans, 401, NULL,
		         "The provided authorization grant is invalid, expired, or revoked");
		return;
	}
	sim_note_request(sv);
	sim_fault_t f;
	sim_fault_get(sv, &f);
	if (sim_faults(s, sv, &f, ans))
		return;
	sim_sendgrid_body(s, sv, &f, rq->body, rq->bodylen, 0, ans);
}

/* One substitution: key and value bytes (into the body, the arena or jansson's strings). */
typedef struct sg_sub {
	const char *k, *v;
	size_t kl, vl;
} sg_sub_t;

/* SendGrid substitutions: every key of subs[0..nsub) replaced literally in src[0..len) by
 * its value, key by key (a later key also in what an earlier value put there). Result in
 * out; tmp is the caller's scratch buffer. */
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

/* What both readings know of the top level, for the checks SendGrid makes first. */
typedef struct sg_top {
	int ps_arr;       /* personalizations is an array */
	size_t np;        /* its length */
	int from_obj;     /* from is an object */
	const char *from; /* from.email when a string, NUL-terminated */
	int subj_str;     /* subject is a string */
	int tmpl;         /* template_id is there (any value) */
	int content_arr;  /* content is an array */
	size_t ncontent;  /* its length */
} sg_top_t;

/* The top-level checks in SendGrid's order: 1 with the error answered, else 0. */
static int sg_top_refused(sim_vendor_t *sv, const sg_top_t *t, sim_ans_t *ans)
{
	if (!t->ps_arr || t->np == 0)
		sg_error(ans, 400, "personalizations",
		         "The personalizations field is required and must have at least one personalization.");
	else if (t->np > 1000)
		sg_error(ans, 400, "personalizations",
		         "The personalizations field must have 1000 or fewer personalizations.");
	else if (!t->from || !is_email(t->from))
		sg_err_from(ans, t->from_obj);
	else if (!t->subj_str && !t->tmpl)
		sg_error(ans, 400, "subject",
		         "The subject is required. You can get around this requirement if you use a template with a subject defined or if every personalization has a subject defined.");
	else if (!sim_sender_ok(sv, t->from, NULL))
		sg_error(ans, 403, "from",
		         "The from address does not match a verified Sender Identity. Mail cannot be sent until this error is resolved.");
	else if (!t->content_arr || t->ncontent == 0)
		sg_error(ans, 400, "content",
		         "Unless a valid template_id is provided, the content parameter is required. There must be at least one defined content block.");
	else
		return 0;
	return 1;
}

/* personalization i without a to array of at least one element */
static void sg_err_to(sim_ans_t *ans, size_t i)
{
	char field[96];
	snprintf(field, sizeof field, "personalizations.%zu.to", i);
	sg_error(ans, 400, field,
	         "The to array is required for all personalization objects, and must have at least one email object with a valid email address.");
}

/* personalization i's cc or bcc (kind 1, 2) there but not an array */
static void sg_err_list(sim_ans_t *ans, size_t i, int kind)
{
	char field[96];
	snprintf(field, sizeof field, "personalizations.%zu.%s", i, sg_kinds[kind]);
	sg_error(ans, 400, field, "Invalid type. Expected: array, given: another type.");
}

/* personalization i's custom_args of cal bytes (keys, values, quotes): 1 when refused */
static int sg_ca_refused(sim_ans_t *ans, size_t i, size_t cal)
{
	if (cal < 10000)
		return 0;
	char field[96];
	snprintf(field, sizeof field, "personalizations.%zu.custom_args", i);
	sg_error(ans, 400, field, "The custom_args total size must be less than 10000 bytes.");
	return 1;
}

/* personalization i's substitutions (okv: an object of strings; tot: bytes of keys and
 * values): 1 when refused */
static int sg_subs_refused(sim_ans_t *ans, size_t i, int okv, size_t tot)
{
	char field[96];
	snprintf(field, sizeof field, "personalizations.%zu.substitutions", i);
	if (!okv)
		sg_error(ans, 400, field, "Substitutions must be an object of string values.");
	else if (tot >= 10000)
		sg_error(ans, 400, field,
		         "The substitutions total size must be less than 10000 bytes.");
	else
		return 0;
	return 1;
}

/* more than 1000 recipients over every to, cc and bcc: 1 when refused */
static int sg_nrcpt_refused(sim_ans_t *ans, size_t nrcpt)
{
	if (nrcpt <= 1000)
		return 0;
	char msg[200];
	snprintf(msg, sizeof msg,
	         "The total number of recipients must be 1000 or fewer (found %zu).", nrcpt);
	sg_error(ans, 400, "personalizations", msg);
	return 1;
}

/* An accepted request: what every recipient shares, and the buffers its messages are rebuilt in. */
typedef struct sg_msg {
	const char *cval[3]; /* content values (at most 3: parts[3] is the header) */
	size_t clen[3], nc;
	int ctext, chtml;    /* which content part is text/plain, text/html (-1: none) */
	const char *subject; /* NULL when not a string */
	size_t subjl;
	const char *toplu, *topid; /* top-level List-Unsubscribe, custom_args.tocsin_id */
	json_t *topargs;           /* top-level custom_args (merged into every event), borrowed */
	const char *rurl;          /* where events go; NULL: none */
	json_t *events;
	sim_fault_t f;
	char xid[40];
	buf_t parts[5], tmp;
} sg_msg_t;

/* the request is accepted (202, counted): m's answer-wide part, and m->parts ready */
static void sg_accept(sim_t *s, sim_vendor_t *sv, const sim_fault_t *f, size_t np, sg_msg_t *m,
                      char *ub, size_t ublen, sim_ans_t *ans)
{
	m->f = *f;
	sim_ref(s, sv, "", m->xid, 23);
	ans->status = 202;
	ans->ctype = NULL;
	memcpy(ans->hname, "X-Message-Id", 13);
	vnd_cpy(ans->hval, sizeof ans->hval, m->xid);
	sim_note_accepted(sv, np);
	m->rurl = m->f.receipts ? sim_hook_url(s, sv, &m->f, "events", ub, ublen) : NULL;
	m->events = m->rurl ? json_array() : NULL;
	for (size_t c = 0; c < 5; c++)
		buf_init(&m->parts[c], SIM_PART_MAX);
	buf_init(&m->tmp, SIM_PART_MAX);
}

/* Recipient i (first address to0, custom_args.tocsin_id id, List-Unsubscribe lu, its
 * substitutions, its custom_args caj): its message as SendGrid would write it
 * (substitutions applied to subject and every content value), recorded and checked,
 * counted, and its event queued. */
static void sg_recipient(sim_t *s, sim_vendor_t *sv, sg_msg_t *m, size_t i, const char *to0,
                         const char *id, const char *lu, const sg_sub_t *sb, size_t nsub, json_t *caj)
{
	buf_t *parts = m->parts;
	int applied = 0;
	for (size_t c = 0; c < m->nc; c++)
		sg_apply_list(&parts[c], &m->tmp, m->cval[c], m->clen[c], sb, nsub, &applied);
	sg_apply_list(&parts[4], &m->tmp, m->subject ? m->subject : "", m->subjl, sb, nsub, &applied);
	sim_email_digest(sv, &m->f, to0, parts[4].p, parts[4].len,
	                 m->ctext < 0 ? NULL : parts[m->ctext].p,
	                 m->ctext < 0 ? 0 : parts[m->ctext].len,
	                 m->chtml < 0 ? NULL : parts[m->chtml].p,
	                 m->chtml < 0 ? 0 : parts[m->chtml].len);
	if (lu && !sg_apply_list(&parts[3], &m->tmp, lu, strlen(lu), sb, nsub, &applied) &&
	    !buf_putc(&parts[3], 0))
		lu = parts[3].p;
	sim_email_check(sv, to0, lu, parts, m->nc, applied);
	sim_count_id(sv, id ? id : m->topid, to0, m->subject);
	if (!m->events)
		return;
	json_t *o = sg_event(s, sv, &m->f, to0, m->xid, i);
	const char *ck;
	json_t *cv;
	json_object_foreach(m->topargs, ck, cv) json_object_set(o, ck, cv); /* merged, as SendGrid does */
	json_object_foreach(caj, ck, cv) json_object_set(o, ck, cv);
	json_array_append_new(m->events, o);
}

/* after the last recipient: the events posted, the buffers freed */
static void sg_accept_end(sim_t *s, sim_vendor_t *sv, sg_msg_t *m)
{
	for (size_t c = 0; c < 5; c++)
		buf_free(&m->parts[c]);
	buf_free(&m->tmp);
	if (m->events && json_array_size(m->events))
		sg_events(s, sv, m->rurl, m->events, m->f.receipt_delay_ms);
	json_decref(m->events);
}

/* the jansson reading's checks of every personalization (addresses, lists, custom_args,
 * substitutions, the recipient count): 1 with the error answered, else 0 */
static int sg_slow_refused(json_t *ps, sim_ans_t *ans)
{
	json_t *seen = json_object(), *p;
	size_t i, nrcpt = 0;
	int bad = 0;
	json_array_foreach(ps, i, p)
	{
		json_t *to = json_object_get(p, "to");
		if (!json_is_array(to) || json_array_size(to) == 0) {
			sg_err_to(ans, i);
			bad = 1;
			break;
		}
		for (int kind = 0; kind < 3 && !bad; kind++) {
			json_t *list = json_object_get(p, sg_kinds[kind]), *e;
			if (kind && list && !json_is_array(list)) {
				sg_err_list(ans, i, kind);
				bad = 1;
				break;
			}
			size_t k;
			json_array_foreach(list, k, e)
			{
				const char *em = json_string_value(json_object_get(e, "email"));
				if (!is_email(em) || json_object_get(seen, em)) {
					sg_err_addr(ans, i, sg_kinds[kind], k, em ? em : "",
					            em ? strlen(em) : 0, em && is_email(em));
					bad = 1;
					break;
				}
				json_object_set_new(seen, em, json_true());
				nrcpt++;
			}
		}
		if (bad)
			break;
		size_t cal = 0; /* the size of custom_args as compact JSON, near enough (keys, values, quotes) */
		const char *ck;
		json_t *cv, *sub = json_object_get(p, "substitutions");
		json_object_foreach(json_object_get(p, "custom_args"), ck, cv)
		    cal += strlen(ck) + 4 + (json_is_string(cv) ? json_string_length(cv) + 2 : 24);
		if ((bad = sg_ca_refused(ans, i, cal)))
			break;
		if (!sub)
			continue;
		size_t tot = 0;
		int okv = json_is_object(sub);
		json_object_foreach(sub, ck, cv)
		{
			okv &= json_is_string(cv);
			tot += strlen(ck) + (json_is_string(cv) ? json_string_length(cv) : 0);
		}
		if ((bad = sg_subs_refused(ans, i, okv, tot)))
			break;
	}
	json_decref(seen);
	return bad || sg_nrcpt_refused(ans, nrcpt);
}

/* the string members of a substitutions object as a list in *subs (grown as needed): their count */
static size_t sg_slow_subs(json_t *sub, sg_sub_t **subs, size_t *cap)
{
	size_t n = 0;
	const char *k;
	json_t *v;
	json_object_foreach(sub, k, v)
	{
		if (!json_is_string(v))
			continue;
		if (n == *cap) {
			size_t nc = *cap ? *cap * 2 : 16;
			sg_sub_t *ns = realloc(*subs, nc * sizeof *ns);
			if (!ns)
				break;
			*subs = ns;
			*cap = nc;
		}
		(*subs)[n++] = (sg_sub_t){k, json_string_value(v), strlen(k), json_string_length(v)};
	}
	return n;
}

/* the jansson reading of a /v3/mail/send body, for what the scanner leaves (sg_fast): the
 * same checks, answers and rebuild, read with jansson */
static void sg_slow(sim_t *s, sim_vendor_t *sv, const sim_fault_t *fp, const char *body,
                    size_t bodylen, sim_ans_t *ans)
{
	json_error_t je;
	json_t *j = json_loadb(body, bodylen, 0, &je);
	if (!json_is_object(j)) {
		json_decref(j);
		sg_error(ans, 400, NULL, "Bad Request");
		return;
	}
	json_t *ps = json_object_get(j, "personalizations"), *content = json_object_get(j, "content");
	json_t *fromo = json_object_get(j, "from"), *subj = json_object_get(j, "subject");
	sg_top_t t = {json_is_array(ps),      json_array_size(ps),
	              json_is_object(fromo),  json_string_value(json_object_get(fromo, "email")),
	              json_is_string(subj),   json_object_get(j, "template_id") != NULL,
	              json_is_array(content), json_array_size(content)};
	if (sg_top_refused(sv, &t, ans) || sg_slow_refused(ps, ans)) {
		json_decref(j);
		return;
	}
	sg_msg_t m;
	memset(&m, 0, sizeof m);
	m.nc = t.ncontent < 3 ? t.ncontent : 3;
	m.ctext = m.chtml = -1;
	for (size_t k = 0; k < m.nc; k++) {
		json_t *cv = json_object_get(json_array_get(content, k), "value");
		const char *ty = json_string_value(json_object_get(json_array_get(content, k), "type"));
		m.cval[k] = json_string_value(cv) ? json_string_value(cv) : "";
		m.clen[k] = json_string_length(cv);
		if (ty && !strcmp(ty, "text/plain") && m.ctext < 0)
			m.ctext = (int)k;
		else if (ty && !strcmp(ty, "text/html") && m.chtml < 0)
			m.chtml = (int)k;
	}
	m.subject = json_string_value(subj);
	m.subjl = json_string_length(subj);
	m.topargs = json_object_get(j, "custom_args");
	m.topid = json_string_value(json_object_get(m.topargs, "tocsin_id"));
	json_t *tophdr = json_object_get(j, "headers"), *p;
	char ub[600];
	sg_accept(s, sv, fp, t.np, &m, ub, sizeof ub, ans);
	sg_sub_t *subs = NULL;
	size_t i, cap = 0;
	json_array_foreach(ps, i, p)
	{
		size_t nsub = sg_slow_subs(json_object_get(p, "substitutions"), &subs, &cap);
		json_t *ca = json_object_get(p, "custom_args");
		json_t *luj = json_object_get(json_object_get(p, "headers"), "List-Unsubscribe");
		if (!luj)
			luj = json_object_get(tophdr, "List-Unsubscribe");
		const char *to0 = json_string_value(
		    json_object_get(json_array_get(json_object_get(p, "to"), 0), "email"));
		sg_recipient(s, sv, &m, i, to0, json_string_value(json_object_get(ca, "tocsin_id")),
		             json_string_value(luj), subs, nsub, ca);
	}
	free(subs);
	sg_accept_end(s, sv, &m);
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
	} * seen;
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

/* the scanner reading's checks of every personalization, as sg_slow_refused, filling
 * x->ps: 0 when all pass, 1 with the error answered, -1 to leave the body to jansson */
static int sg_fast_refused(sg_fast_t *x, sj_t ps, sim_ans_t *ans)
{
	static const char *const p_names[] = {"to",      "custom_args", "substitutions",
	                                      "headers", "cc",          "bcc"};
	static const char *const email_name[] = {"email"};
	static const char *const id_name[] = {"tocsin_id"};
	static const char *const lu_name[] = {"List-Unsubscribe"};
	size_t nrcpt = 0, i = 0;
	sj_it_t it, ti;
	sj_t p, v, k;
	sj_iter(ps, SJ_ARR, &it);
	for (; sj_next_elem(&it, &p); i++) {
		sg_pers_t *pr = &x->ps[i];
		sj_t pv[6], idv, luv;
		if (sg_get(p, p_names, pv, 6))
			return -1;
		sj_t ca = pv[1], sub = pv[2], hd = pv[3], lists[3] = {pv[0], pv[4], pv[5]};
		if (sj_iter(lists[0], SJ_ARR, &ti) || !sj_next_elem(&ti, &v)) {
			sg_err_to(ans, i);
			return 1;
		}
		for (int kind = 0; kind < 3; kind++) {
			if (kind && lists[kind].p && sj_type(lists[kind]) != SJ_ARR) {
				sg_err_list(ans, i, kind);
				return 1;
			}
			if (sj_iter(lists[kind], SJ_ARR, &ti))
				continue;
			for (size_t kk = 0; sj_next_elem(&ti, &v); kk++) {
				sj_t ev;
				if (sg_get(v, email_name, &ev, 1))
					return -1;
				const char *em = NULL;
				size_t eml = 0;
				int first = !kind && !kk;
				if (sj_type(ev) == SJ_STR)
					em = first ? sg_cstr(x, ev, &eml) : sg_bytes(x, ev, &eml);
				if (sj_type(ev) == SJ_STR && !em)
					return -1;
				if (first)
					pr->to0 = em;
				int seen = em && is_email_n(em, eml) ? sg_seen(x, em, eml) : 0;
				if (seen < 0)
					return -1;
				if (!em || !is_email_n(em, eml) || seen) {
					sg_err_addr(ans, i, sg_kinds[kind], kk, em ? em : "", eml,
					            seen);
					return 1;
				}
				nrcpt++;
			}
		}
		/* custom_args: its size as sg_slow counts it */
		if (sg_plain_keys(ca))
			return -1;
		size_t cal = 0;
		if (!sj_iter(ca, SJ_OBJ, &ti))
			while (sj_next_member(&ti, &k, &v))
				cal += k.n - 2 + 4 + (sj_type(v) == SJ_STR ? sj_str_len(v) + 2 : 24);
		if (sg_ca_refused(ans, i, cal))
			return 1;
		pr->ca = ca;
		if (sg_get(ca, id_name, &idv, 1) ||
		    (sj_type(idv) == SJ_STR && !(pr->id = sg_cstr(x, idv, NULL))))
			return -1;
		if (sub.p) {
			if (sg_plain_keys(sub))
				return -1;
			size_t tot = 0;
			int okv = sj_type(sub) == SJ_OBJ;
			pr->sub0 = x->nsubs;
			if (!sj_iter(sub, SJ_OBJ, &ti))
				while (sj_next_member(&ti, &k, &v)) {
					okv &= sj_type(v) == SJ_STR;
					if (sj_type(v) != SJ_STR)
						continue;
					if (x->nsubs == x->capsubs) {
						size_t nc = x->capsubs ? x->capsubs * 2 : 1024;
						sg_sub_t *ns = realloc(x->subs, nc * sizeof *ns);
						if (!ns)
							return -1;
						x->subs = ns;
						x->capsubs = nc;
					}
					sg_sub_t *sb = &x->subs[x->nsubs++];
					sb->k = k.p + 1;
					sb->kl = k.n - 2;
					if (!(sb->v = sg_bytes(x, v, &sb->vl)))
						return -1;
					tot += sb->kl + sb->vl;
				}
			pr->nsub = x->nsubs - pr->sub0;
			if (sg_subs_refused(ans, i, okv, tot))
				return 1;
		}
		if (sg_get(hd, lu_name, &luv, 1))
			return -1;
		pr->lu_set = luv.p != NULL;
		if (sj_type(luv) == SJ_STR && !(pr->lu = sg_cstr(x, luv, NULL)))
			return -1;
	}
	return sg_nrcpt_refused(ans, nrcpt);
}

/* what every recipient shares into m (content parts, subject, top-level tocsin_id), and the
 * top-level List-Unsubscribe into *toplu: 0, or -1 to leave the body to jansson */
static int sg_fast_shared(sg_fast_t *x, sj_t content, sj_t subj, sj_t tophdr, sj_t topargs,
                          size_t ncontent, sg_msg_t *m, const char **toplu)
{
	static const char *const value_name[] = {"value", "type"};
	static const char *const id_name[] = {"tocsin_id"};
	static const char *const lu_name[] = {"List-Unsubscribe"};
	m->nc = ncontent < 3 ? ncontent : 3;
	m->ctext = m->chtml = -1;
	sj_it_t it;
	sj_t v;
	sj_iter(content, SJ_ARR, &it);
	for (size_t c = 0; c < 3; c++)
		m->cval[c] = "";
	for (size_t c = 0; c < m->nc && sj_next_elem(&it, &v); c++) {
		sj_t cv[2];
		if (sg_get(v, value_name, cv, 2))
			return -1;
		if (sj_type(cv[0]) == SJ_STR && !(m->cval[c] = sg_bytes(x, cv[0], &m->clen[c])))
			return -1;
		const char *ty = sj_type(cv[1]) == SJ_STR ? sg_cstr(x, cv[1], NULL) : NULL;
		if (ty && !strcmp(ty, "text/plain") && m->ctext < 0)
			m->ctext = (int)c;
		else if (ty && !strcmp(ty, "text/html") && m->chtml < 0)
			m->chtml = (int)c;
	}
	if (sj_type(subj) == SJ_STR && !(m->subject = sg_cstr(x, subj, &m->subjl)))
		return -1;
	sj_t tluv, tidv;
	if (sg_get(tophdr, lu_name, &tluv, 1) || sg_get(topargs, id_name, &tidv, 1))
		return -1;
	if (sj_type(tluv) == SJ_STR && !(*toplu = sg_cstr(x, tluv, NULL)))
		return -1;
	if (sj_type(tidv) == SJ_STR && !(m->topid = sg_cstr(x, tidv, NULL)))
		return -1;
	return 0;
}

/* The scanner reading: 0 when the body was answered, SG_FALLBACK (nothing
 * counted, ans untouched) when it is left to jansson (sg_slow). */
static int sg_fast(sim_t *s, sim_vendor_t *sv, const sim_fault_t *fp, const char *body, size_t len,
                   sim_ans_t *ans)
{
	sj_t j;
	if (sj_parse(body, len, &j))
		return SG_FALLBACK;
	static const char *const top_names[] = {"personalizations", "from",        "content",
	                                        "subject",          "template_id", "headers",
	                                        "custom_args"};
	static const char *const email_name[] = {"email"};
	sj_t tv[7], fromv, v;
	if (sg_get(j, top_names, tv, 7))
		return SG_FALLBACK;
	sj_t ps = tv[0], fromo = tv[1], content = tv[2], subj = tv[3], tophdr = tv[5], topargs = tv[6];
	sg_fast_t x;
	memset(&x, 0, sizeof x);
	x.acap = 2 * len + 64;
	if (!(x.arena = malloc(x.acap)))
		return SG_FALLBACK;
	int rc = SG_FALLBACK;
	sg_top_t t = {sj_type(ps) == SJ_ARR,      0,
	              sj_type(fromo) == SJ_OBJ,   NULL,
	              sj_type(subj) == SJ_STR,    tv[4].p != NULL,
	              sj_type(content) == SJ_ARR, 0};
	sj_it_t it;
	if (!sj_iter(ps, SJ_ARR, &it))
		while (sj_next_elem(&it, &v))
			t.np++;
	if (!sj_iter(content, SJ_ARR, &it))
		while (sj_next_elem(&it, &v))
			t.ncontent++;
	if (sg_get(fromo, email_name, &fromv, 1) ||
	    (sj_type(fromv) == SJ_STR && !(t.from = sg_cstr(&x, fromv, NULL))))
		goto out;
	if (sg_top_refused(sv, &t, ans)) {
		rc = 0;
		goto out;
	}
	if (!(x.ps = calloc(t.np, sizeof *x.ps)))
		goto out;
	int pr = sg_fast_refused(&x, ps, ans);
	if (pr) {
		rc = pr > 0 ? 0 : SG_FALLBACK;
		goto out;
	}
	sg_msg_t m;
	memset(&m, 0, sizeof m);
	const char *toplu = NULL;
	char ub[600];
	const char *rurl = fp->receipts ? sim_hook_url(s, sv, fp, "events", ub, sizeof ub) : NULL;
	if (sg_fast_shared(&x, content, subj, tophdr, topargs, t.ncontent, &m, &toplu) ||
	    (rurl && sg_plain_keys(topargs)))
		goto out;
	/* from here on the request is accepted: the answer and the counts, as sg_slow */
	rc = 0;
	json_t *topj = rurl ? sg_obj(topargs) : NULL;
	m.topargs = topj;
	sg_accept(s, sv, fp, t.np, &m, ub, sizeof ub, ans);
	for (size_t i = 0; i < t.np; i++) {
		sg_pers_t *p = &x.ps[i];
		json_t *caj = m.events ? sg_obj(p->ca) : NULL;
		sg_recipient(s, sv, &m, i, p->to0, p->id, p->lu_set ? p->lu : toplu,
		             x.subs ? x.subs + p->sub0 : NULL, p->nsub, caj);
		json_decref(caj);
	}
	sg_accept_end(s, sv, &m);
	json_decref(topj);
out:
	sg_fast_free(&x);
	if (rc == SG_FALLBACK) { /* leave ans as it was */
		ans->status = 0;
		buf_reset(&ans->body);
	}
	return rc;
}

int sim_sendgrid_body(sim_t *s, sim_vendor_t *sv, const sim_fault_t *f, const char *body,
                      size_t len, int mode, sim_ans_t *ans)
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

void sim_sendgrid_inbound(sim_t *s, sim_vendor_t *sv, const char *url, const char *from,
                          const char *to, const char *body)
{
	(void)to;
	(void)body;
	char ref[40];
	json_t *ev = json_pack("[{s:s,s:I,s:s,s:s}]", "email", from, "timestamp",
	                       (json_int_t)time(NULL), "event", "unsubscribe", "sg_event_id",
	                       "sim-unsub");
	sim_ref(s, sv, "", ref, 23);
	json_object_set_new(json_array_get(ev, 0), "sg_event_id", json_string(ref));
	sg_events(s, sv, url, ev, 0);
	json_decref(ev);
}
