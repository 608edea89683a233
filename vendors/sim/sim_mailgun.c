/* sim_mailgun.c -- the emulated Mailgun /v3/{domain}/messages; signed events. */
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

static void mg_error(sim_ans_t *ans, unsigned st, const char *msg)
{
	ans->status = st;
	ans->ctype = "application/json";
	buf_reset(&ans->body);
	buf_puts(&ans->body, "{\"message\":");
	buf_json_str(&ans->body, msg, strlen(msg));
	buf_putc(&ans->body, '}');
}

/* Mailgun: %recipient.<name>% replaced by vars[name] when it is a string. */
static int mg_apply(buf_t *out, const char *src, size_t len, json_t *vars, int *applied)
{
	buf_reset(out);
	const char *p = src, *end = src + len, *q;
	int rc = 0;
	while (!rc && (q = sim_memfind(p, (size_t)(end - p), "%recipient.", 11))) {
		const char *n = q + 11, *ne = memchr(n, '%', (size_t)(end - n));
		char name[128];
		json_t *v = NULL;
		if (ne && (size_t)(ne - n) < sizeof name) {
			memcpy(name, n, (size_t)(ne - n));
			name[ne - n] = 0;
			v = json_object_get(vars, name);
		}
		if (!json_is_string(v)) {
			rc = buf_append(out, p, (size_t)(n - p));
			p = n;
			continue;
		}
		rc = buf_append(out, p, (size_t)(q - p));
		rc = rc ? rc : buf_append(out, json_string_value(v), json_string_length(v));
		p = ne + 1;
		*applied = 1;
	}
	return rc ? rc : buf_append(out, p, (size_t)(end - p));
}

static int mg_match(sim_vendor_t *sv, const void *ctx)
{
	return sv->v->account && !strcmp(sv->v->account, ctx);
}

/* 1 when auth (an Authorization value) is sv's API key */
static int mg_key(sim_vendor_t *sv, const void *auth)
{
	return sv->basic[0] && auth && vnd_ct_eq(auth, strlen(auth), sv->basic, strlen(sv->basic));
}

/* The addresses of one `to` value as Mailgun reads it: a comma-separated list
 * ("a@x.org, Ann <ann@y.org>", commas inside quotes do not split), each the
 * part in <...> when there is one. Appended to to[*n..max) (NUL-terminated,
 * at most 319 bytes each); -1 for an entry that is not an address, or too many. */
static int mg_addrs(const char *v, size_t len, char (*to)[320], int max, int *n)
{
	const char *p = v, *end = v + len;
	while (p <= end) {
		const char *q = p;
		int quoted = 0;
		while (q < end && (quoted || *q != ',')) {
			if (*q == '"')
				quoted = !quoted;
			q++;
		}
		const char *a = p, *z = q; /* this entry, trimmed, or its <...> part */
		const char *lt = memchr(a, '<', (size_t)(z - a)),
		           *gt = lt ? memchr(lt, '>', (size_t)(z - lt)) : NULL;
		if (lt && gt)
			a = lt + 1, z = gt;
		while (a < z && (*a == ' ' || *a == '\t'))
			a++;
		while (z > a && (z[-1] == ' ' || z[-1] == '\t'))
			z--;
		if (z > a || q < end || (lt && gt)) { /* an empty last entry ("a@x.org,") is allowed */
			const char *at = memchr(a, '@', (size_t)(z - a));
			if (!at || at == a || at == z - 1 || z - a >= 320 || *n >= max ||
			    memchr(a, ' ', (size_t)(z - a)) || memchr(a, '<', (size_t)(z - a)))
				return -1;
			memcpy(to[*n], a, (size_t)(z - a));
			to[*n][z - a] = 0;
			(*n)++;
		}
		p = q + 1;
	}
	return 0;
}

static void mg_event(sim_t *s, sim_vendor_t *sv, const char *url, const char *event,
                     const char *severity, const char *rcpt, const char *id, const char *msgid,
                     double delay)
{
	char tok[64], sig[80], ts[24];
	sim_ref(s, sv, "", tok, 50);
	time_t due = time(NULL) + (time_t)(delay / 1000); /* signed when it is due */
	snprintf(ts, sizeof ts, "%lld", (long long)due);
	if (!sv->wh_key || sim_mailgun_sig(sv->wh_key, ts, tok, sig, sizeof sig))
		return;
	json_t *o = json_pack("{s:{s:s,s:s,s:s},s:{s:s,s:s,s:f,s:s,s:{s:{s:s}}}}", "signature",
	                      "timestamp", ts, "token", tok, "signature", sig, "event-data",
	                      "event", event, "recipient", rcpt, "timestamp", (double)due, "id",
	                      tok, "message", "headers", "message-id", msgid);
	if (!o)
		return;
	json_t *ed = json_object_get(o, "event-data");
	if (severity) {
		json_object_set_new(ed, "severity", json_string(severity));
		json_object_set_new(ed, "delivery-status",
		                    json_pack("{s:i,s:s}", "code", 550, "message",
		                              "5.1.1 No such user"));
	}
	json_object_set_new(ed, "user-variables", json_pack("{s:s}", "tocsin_id", id ? id : ""));
	char *body = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (body && !strcmp(event, "delivered")) /* Mailgun never retries a delivered event */
		sim_webhook_once(s, sv, delay, url, "application/json", body, NULL, NULL, NULL, NULL);
	else if (body)
		sim_webhook_later(s, sv, delay, url, "application/json", body, NULL, NULL, NULL, NULL);
	free(body);
}

/* one /messages request as read: its fields (spans into the form) and its addresses */
typedef struct mg_req {
	const mp_field_t *from, *subject, *text, *html, *rv, *vid, *hlu;
	char (*tos)[320]; /* 1001 entries; NULL when out of memory */
	int nto, badto;   /* badto: 1 = an entry is not an address, 2 = too many */
	json_t *rvj;      /* recipient-variables, parsed */
} mg_req_t;

/* the fields of the body (multipart or urlencoded) into fs[0..2100); -1 when it is neither */
static int mg_fields(sim_req_t *rq, mp_field_t *fs, sim_form_t *fm)
{
	const char *ct = sim_hdr(rq, "Content-Type");
	if (ct && !strncasecmp(ct, "multipart/form-data", 19))
		return sim_mp_parse(ct, rq->body, rq->bodylen, fs, 2100);
	if (!ct || strncasecmp(ct, "application/x-www-form-urlencoded", 33) ||
	    sim_form_parse(rq->body, rq->bodylen, fm))
		return -1;
	int nf = 0;
	for (size_t i = 0; i < fm->n && nf < 2100; i++, nf++) {
		vnd_cpy(fs[nf].name, sizeof fs[nf].name, fm->name[i]);
		fs[nf].val = fm->val[i];
		fs[nf].len = strlen(fm->val[i]);
	}
	return nf;
}

/* the fields Mailgun reads, and every `to` address */
static void mg_pick(const mp_field_t *fs, int nf, mg_req_t *r)
{
	memset(r, 0, sizeof *r);
	r->tos = malloc(1001 * sizeof *r->tos);
	for (int i = 0; r->tos && i < nf; i++) {
		const char *n = fs[i].name;
		if (!strcmp(n, "from"))
			r->from = &fs[i];
		else if (!strcmp(n, "to") && !r->badto &&
		         mg_addrs(fs[i].val, fs[i].len, r->tos, 1001, &r->nto))
			r->badto = r->nto < 1001 ? 1 : 2;
		else if (!strcmp(n, "subject"))
			r->subject = &fs[i];
		else if (!strcmp(n, "text"))
			r->text = &fs[i];
		else if (!strcmp(n, "html"))
			r->html = &fs[i];
		else if (!strcmp(n, "recipient-variables"))
			r->rv = &fs[i];
		else if (!strcmp(n, "v:tocsin_id"))
			r->vid = &fs[i];
		else if (!strcmp(n, "h:List-Unsubscribe"))
			r->hlu = &fs[i];
	}
	r->rvj = r->rv ? json_loadb(r->rv->val, r->rv->len, 0, NULL) : NULL;
}

/* Mailgun's checks in its order: 1 with the error answered, 0 when the request is good */
static int mg_refused(const mg_req_t *r, sim_ans_t *ans)
{
	if (!r->tos)
		mg_error(ans, 500, "out of memory");
	else if (!r->from || !r->from->len)
		mg_error(ans, 400, "'from' parameter is missing");
	else if (r->badto == 1)
		mg_error(ans, 400, "'to' parameter is not a valid address. please check documentation");
	else if (!r->nto)
		mg_error(ans, 400, "'to' parameter is missing");
	else if (r->nto > 1000 || r->badto == 2)
		mg_error(ans, 400, "'to' parameter: too many recipients (max 1000)");
	else if (!r->subject)
		mg_error(ans, 400, "'subject' parameter is missing");
	else if (!r->text && !r->html)
		mg_error(ans, 400, "Need at least one of 'text' or 'html' parameters specified");
	else if (r->rv && !json_is_object(r->rvj))
		mg_error(ans, 400, "recipient-variables parameter is not a valid JSON");
	else
		return 0;
	return 1;
}

/* recipient to's message as Mailgun would write it: recorded and checked */
static void mg_rebuild(sim_vendor_t *sv, const sim_fault_t *f, const mg_req_t *r, const char *to)
{
	json_t *vars = json_object_get(r->rvj, to);
	buf_t parts[2], lub, sb;
	size_t np = 0;
	int applied = 0, at[2] = {-1, -1};
	const mp_field_t *bodies[2] = {r->text, r->html};
	for (int k = 0; k < 2; k++) {
		if (!bodies[k])
			continue;
		buf_init(&parts[np], SIM_PART_MAX);
		mg_apply(&parts[np], bodies[k]->val, bodies[k]->len, vars, &applied);
		at[k] = (int)np++;
	}
	buf_init(&sb, SIM_PART_MAX);
	mg_apply(&sb, r->subject->val, r->subject->len, vars, &applied);
	sim_email_digest(sv, f, to, sb.p ? sb.p : "", sb.len,
	                 at[0] < 0        ? NULL
	                 : parts[at[0]].p ? parts[at[0]].p
	                                  : "",
	                 at[0] < 0 ? 0 : parts[at[0]].len,
	                 at[1] < 0        ? NULL
	                 : parts[at[1]].p ? parts[at[1]].p
	                                  : "",
	                 at[1] < 0 ? 0 : parts[at[1]].len);
	buf_free(&sb);
	buf_init(&lub, SIM_PART_MAX);
	const char *lu = NULL;
	if (r->hlu && !mg_apply(&lub, r->hlu->val, r->hlu->len, vars, &applied) && !buf_putc(&lub, 0))
		lu = lub.p;
	sim_email_check(sv, to, lu, parts, np, applied);
	buf_free(&lub);
	for (size_t k = 0; k < np; k++)
		buf_free(&parts[k]);
}

/* a good request: answered 200, each recipient counted, rebuilt and given its event */
static void mg_accept(sim_t *s, sim_vendor_t *sv, const sim_fault_t *fp, const mg_req_t *r,
                      const char *domain, sim_ans_t *ans)
{
	sim_fault_t f = *fp;
	char mid[200], ref[40], tsb[32];
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(tsb, sizeof tsb, "%Y%m%d%H%M%S", &tm);
	sim_ref(s, sv, "", ref, 17);
	snprintf(mid, sizeof mid, "<%s.1.%s@%.100s>", tsb, ref, domain);
	ans->status = 200;
	ans->ctype = "application/json";
	buf_puts(&ans->body, "{\"id\":");
	buf_json_str(&ans->body, mid, strlen(mid));
	buf_puts(&ans->body, ",\"message\":\"Queued. Thank you.\"}");
	sim_note_accepted(sv, (uint64_t)r->nto);
	char ub[600];
	const char *rurl = f.receipts ? sim_hook_url(s, sv, &f, "events", ub, sizeof ub) : NULL;
	const mp_field_t *vid = r->vid;
	for (int i = 0; i < r->nto; i++) {
		const char *to = r->tos[i];
		char idb[80];
		const char *id = json_string_value(
		    json_object_get(json_object_get(r->rvj, to), "tocsin_id"));
		if (!id && vid && vid->len < sizeof idb &&
		    (vid->len < 11 || memcmp(vid->val, "%recipient.", 11))) {
			memcpy(idb, vid->val, vid->len);
			idb[vid->len] = 0;
			id = idb;
		}
		char subj[256] = "";
		memcpy(subj, r->subject->val,
		       r->subject->len < sizeof subj ? r->subject->len : sizeof subj - 1);
		sim_count_id(sv, id, to, subj);
		mg_rebuild(sv, &f, r, to);
		if (!rurl)
			continue;
		if (f.optout_rate > 0 && sim_rand(s) < f.optout_rate)
			mg_event(s, sv, rurl, "unsubscribed", NULL, to, id, mid, f.receipt_delay_ms);
		else if ((f.permanent_rate > 0 && sim_rand(s) < f.permanent_rate) ||
		         !(f.delivered_rate >= 1 || sim_rand(s) < f.delivered_rate))
			mg_event(s, sv, rurl, "failed", "permanent", to, id, mid, f.receipt_delay_ms);
		else
			mg_event(s, sv, rurl, "delivered", NULL, to, id, mid, f.receipt_delay_ms);
	}
}

void sim_api_mailgun(sim_t *s, sim_req_t *rq, const char *domain, sim_ans_t *ans)
{
	sim_vendor_t *sv = sim_find(s, SIM_MAILGUN, mg_match, domain);
	const char *auth = sim_hdr(rq, "Authorization");
	if (sv && sim_outage(s, sv, ans))
		return;
	if (sv)
		sim_note_request(sv);
	/* the key is the account's: checked before the domain, as Mailgun does */
	if (!(sv ? mg_key(sv, auth) : sim_find(s, SIM_MAILGUN, mg_key, auth) != NULL)) {
		ans->status = 401;
		ans->ctype = "text/plain";
		buf_puts(&ans->body, "Forbidden");
		return;
	}
	if (!sv) {
		char m[200];
		snprintf(m, sizeof m, "Domain not found: %.100s", domain);
		mg_error(ans, 404, m);
		return;
	}
	sim_fault_t f;
	sim_fault_get(sv, &f);
	if (sim_faults(s, sv, &f, ans))
		return;
	mp_field_t *fs = malloc(2100 * sizeof *fs);
	if (!fs) {
		mg_error(ans, 500, "out of memory");
		return;
	}
	sim_form_t fm;
	memset(&fm, 0, sizeof fm);
	int nf = mg_fields(rq, fs, &fm);
	if (nf < 0) {
		sim_form_free(&fm);
		free(fs);
		mg_error(ans, 400,
		         "Bad request: the body is not a valid multipart/form-data or urlencoded form");
		return;
	}
	mg_req_t r;
	mg_pick(fs, nf, &r);
	if (!mg_refused(&r, ans))
		mg_accept(s, sv, &f, &r, domain, ans);
	json_decref(r.rvj);
	sim_form_free(&fm);
	free(r.tos);
	free(fs);
}

void sim_mailgun_inbound(sim_t *s, sim_vendor_t *sv, const char *url, const char *from,
                         const char *to, const char *body)
{
	(void)to;
	(void)body;
	mg_event(s, sv, url, "unsubscribed", NULL, from, NULL, "<sim@unsub>", 0);
}
