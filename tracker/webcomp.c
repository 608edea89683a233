/* webcomp.c -- compose analysis, preview and test send for the page, by the launch's own code (templates/, producer/, vendors/vsend.h). */
#include "tracker/web_int.h"

#include "core/clock.h"
#include "core/err.h"
#include "core/hash.h"
#include "core/log.h"
#include "producer/addr.h"
#include "producer/aud.h"
#include "producer/camp.h"
#include "producer/prod.h"
#include "templates/email.h"
#include "templates/sms.h"
#include "templates/tmpl.h"
#include "vendors/vsend.h"

#include <errno.h>
#include <sqlite3.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RENDER_CAP (16u << 10)
#define MAX_UNKNOWN 16
#define MAX_FORCED 8
#define PREVIEW_N_MAX 50
#define SAMPLE_ROW_MAX 1000
#define SEND_OUT_MAX 1024
#define TEST_SEND_WAIT_MS 10000   /* held by the vendor's limits at most this long */
#define TEST_TO_MAX 320           /* bytes of the typed address */
#define EMAIL_TEST_CAP (1u << 20) /* a rendered test email */

/* The audience's columns and row `row` (the row-th good row), for rendering. */
typedef struct sample {
	aud_t *a;
	aud_row_t r;
	int have_row;
	int row;
} sample_t;

static int sample_open(trk_web_t *w, const char *aud_id, int row, sample_t *s, char *err, size_t errlen)
{
	char path[WEB_PATH];
	memset(s, 0, sizeof *s);
	if (!aud_id || web_aud_path(w, aud_id, path, sizeof path)) {
		snprintf(err, errlen, "no such audience (upload one or pick one from the list)");
		return TOCSIN_ERR_NOTFOUND;
	}
	aud_spec_t spec = {.fmt = AUD_CSV, .path = path};
	if (!(s->a = aud_open(&spec, err, errlen)))
		return TOCSIN_ERR_INVAL;
	int rc, good = -1;
	while (good < row && (rc = aud_next(s->a, &s->r)) != 0 && rc != TOCSIN_ERR_IO)
		good += rc == 1;
	s->have_row = good == row;
	return 0;
}

/* The request's audience and sample row ("audience", "row") opened into s: 0, or -1 with
 * the refusal answered into *ret. */
static int sample_from(trk_web_t *w, struct MHD_Connection *c, json_t *rq, sample_t *s,
                       enum MHD_Result *ret)
{
	json_t *rowv = json_object_get(rq, "row");
	int row = json_is_integer(rowv) ? (int)json_integer_value(rowv) : 0;
	memset(s, 0, sizeof *s);
	if (row < 0 || row >= SAMPLE_ROW_MAX) {
		*ret = web_err(c, 400, "row must be 0..%d", SAMPLE_ROW_MAX - 1);
		return -1;
	}
	char err[512];
	int rc = sample_open(w, json_string_value(json_object_get(rq, "audience")), row, s, err,
	                     sizeof err);
	if (rc) {
		aud_free(s->a);
		*ret = web_err(c, rc == TOCSIN_ERR_NOTFOUND ? 404 : 400, "%s", err);
		return -1;
	}
	s->row = row;
	return 0;
}

/* Compile src against the columns; a field the audience lacks is listed in
 * unknown and compiled in as an extra (rendering then finds it missing), so
 * every unknown field is named at once. NULL with err for other errors. */
static tmpl_t *compile_all(const char *src, tmpl_mode_t mode, const char *const *cols, size_t ncols,
                           const char *extra_field, json_t *unknown, char *err, size_t errlen)
{
	const char *fields[TMPL_MAX_FIELDS];
	char names[MAX_UNKNOWN][128];
	size_t nf = 0;
	for (size_t i = 0; i < ncols && nf < TMPL_MAX_FIELDS - MAX_UNKNOWN - 1; i++)
		fields[nf++] = cols[i];
	if (extra_field)
		fields[nf++] = extra_field;
	for (int nx = 0;; nx++) {
		tmpl_t *t = tmpl_compile_ex(src, strlen(src), mode, fields, nf, 0, err, errlen);
		if (t || nx == MAX_UNKNOWN)
			return t;
		const char *q = strstr(err, "unknown field \""), *e = q ? strchr(q + 15, '"') : NULL;
		if (!e || (size_t)(e - q - 15) >= sizeof names[0])
			return NULL;
		snprintf(names[nx], sizeof names[0], "%.*s", (int)(e - q - 15), q + 15);
		json_array_append_new(unknown, json_string(names[nx]));
		fields[nf++] = names[nx];
	}
}

/* UTF-8 code points of s[0..n) */
static int64_t chars(const char *s, size_t n)
{
	int64_t k = 0;
	for (size_t i = 0; i < n; i++)
		k += ((unsigned char)s[i] & 0xC0) != 0x80;
	return k;
}

/* The characters of s that are not GSM-7 (each once, in order), as sms_analyze sees them. */
static json_t *forced_by(const char *s, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n && json_array_size(a) < MAX_FORCED;) {
		size_t l = 1;
		while (i + l < n && ((unsigned char)s[i + l] & 0xC0) == 0x80 && l < 4)
			l++;
		sms_info_t info;
		if (sms_analyze(s + i, l, &info) == 0 && info.enc == SMS_UCS2) {
			unsigned cp = (unsigned char)s[i];
			if (l > 1) {
				cp &= 0xFFu >> (l + 1);
				for (size_t k = 1; k < l; k++)
					cp = (cp << 6) | ((unsigned char)s[i + k] & 0x3F);
			}
			char code[16];
			snprintf(code, sizeof code, "U+%04X", cp);
			int seen = 0;
			size_t k;
			json_t *e;
			json_array_foreach(a, k, e)
			    seen |= !strcmp(json_string_value(json_object_get(e, "code")), code);
			if (!seen)
				json_array_append_new(a, json_pack("{ss#ss}", "char", s + i, (int)l,
				                                   "code", code));
		}
		i += l;
	}
	return a;
}

static json_t *info_json(const sms_info_t *i, const char *s, size_t n)
{
	return json_pack("{sssisisI}", "encoding", sms_enc_name(i->enc), "units", i->units,
	                 "segments", i->segments, "chars", (json_int_t)chars(s, n));
}

/* The SMS analysis of the request's template for the sample row. */
static json_t *sms_compose(const sample_t *s, json_t *sms)
{
	json_t *o = json_object(), *unknown = json_array();
	const char *src = json_string_value(json_object_get(sms, "template"));
	json_object_set_new(o, "unknown_fields", unknown);
	if (!src) {
		json_object_set_new(o, "error", json_string("sms.template must be a string"));
		return o;
	}
	char err[512];
	tmpl_t *t = compile_all(src, TMPL_TEXT, aud_cols(s->a), aud_ncols(s->a), NULL, unknown, err,
	                        sizeof err);
	if (!t) {
		json_object_set_new(o, "error", json_string(err));
		return o;
	}
	/* the suggestion applies to what staff typed: the template itself */
	size_t tl = strlen(src);
	char *sug = malloc(tl + 1);
	unsigned counts[SMS_SMART_NKINDS] = {0};
	if (sug) {
		memcpy(sug, src, tl + 1);
		if (sms_smart_replace(sug, &tl, counts) > 0) {
			sug[tl] = 0;
			json_t *rep = json_array();
			for (int k = 0; k < SMS_SMART_NKINDS; k++) {
				const char *to = NULL, *from = sms_smart_from(k, &to);
				if (from && counts[k])
					json_array_append_new(rep, json_pack("{sssssi}", "from",
					                                     from, "to", to ? to : "",
					                                     "n", counts[k]));
			}
			json_object_set_new(o, "suggestion",
			                    json_pack("{ssso}", "template", sug, "replaced", rep));
		}
		free(sug);
	}
	if (!s->have_row) {
		json_object_set_new(o, "error", json_string("the audience has no such row"));
		tmpl_free(t);
		return o;
	}
	char *body = malloc(RENDER_CAP), *fin = malloc(RENDER_CAP);
	size_t bl = 0;
	tmpl_why_t why;
	int rc = body && fin ? tmpl_render(t, s->r.vals, s->r.lens, body, RENDER_CAP, &bl, &why)
	                     : TOCSIN_ERR_NOMEM;
	tmpl_free(t);
	if (rc) {
		json_object_set_new(o, "error",
		                    json_string(rc == TOCSIN_ERR_INVAL ? why.reason
		                                                       : "rendered message too long"));
		free(body);
		free(fin);
		return o;
	}
	body[bl] = 0;
	json_object_set_new(o, "rendered", json_stringn(body, bl));
	/* as typed (no replacement, no footer): its encoding and what forced it */
	sms_info_t info;
	if (sms_analyze(body, bl, &info) == 0) {
		json_t *typed = info_json(&info, body, bl);
		json_object_set_new(typed, "forced_by", forced_by(body, bl));
		json_object_set_new(o, "as_typed", typed);
	}
	/* at send: the campaign's own options, as the launch finishes every message */
	json_t *ms = json_object_get(sms, "max_segments"), *sm = json_object_get(sms, "smart_replace");
	sms_opts_t so = {.smart = sm ? json_is_true(sm) : 1,
	                 .max_segments = json_is_integer(ms) ? (int)json_integer_value(ms) : 0,
	                 .footer = json_string_value(json_object_get(sms, "footer"))};
	memcpy(fin, body, bl + 1);
	size_t fl = bl;
	char reason[200];
	int nrep = 0;
	rc = sms_finish(fin, &fl, RENDER_CAP, &so, &info, &nrep, NULL, reason, sizeof reason);
	json_t *at = rc ? json_pack("{ss}", "error", reason) : info_json(&info, fin, fl);
	json_object_set_new(at, "smart_replace", json_boolean(so.smart));
	json_object_set_new(at, "replaced", json_integer(nrep));
	if (!rc)
		json_object_set_new(at, "body", json_stringn(fin, fl));
	json_object_set_new(o, "at_send", at);
	free(body);
	free(fin);
	return o;
}

static json_t *email_compose(const sample_t *s, json_t *email)
{
	json_t *o = json_object(), *unknown = json_array();
	json_object_set_new(o, "unknown_fields", unknown);
	static const char *const parts[] = {"subject", "text", "html"};
	for (int i = 0; i < 3; i++) {
		const char *src = json_string_value(json_object_get(email, parts[i]));
		if (!src)
			continue;
		char err[512];
		tmpl_t *t = compile_all(src, i == 2 ? TMPL_HTML : TMPL_TEXT, aud_cols(s->a),
		                        aud_ncols(s->a), "unsubscribe_url", unknown, err, sizeof err);
		if (!t) {
			char e2[600];
			snprintf(e2, sizeof e2, "%s:%s", parts[i], err);
			json_object_set_new(o, "error", json_string(e2));
			continue;
		}
		tmpl_free(t);
	}
	return o;
}

enum MHD_Result web_compose(trk_web_t *w, struct MHD_Connection *c, json_t *rq)
{
	sample_t s;
	enum MHD_Result ret;
	if (sample_from(w, c, rq, &s, &ret))
		return ret;
	json_t *o = json_pack("{si}", "row", s.row);
	if (json_is_object(json_object_get(rq, "sms")))
		json_object_set_new(o, "sms", sms_compose(&s, json_object_get(rq, "sms")));
	if (json_is_object(json_object_get(rq, "email")))
		json_object_set_new(o, "email", email_compose(&s, json_object_get(rq, "email")));
	aud_free(s.a);
	return web_json(c, 200, o);
}

static int id_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n < 1 || n > 64)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '_' || s[i] == '-'))
			return 0;
	return 1;
}

json_t *web_campaign_doc(trk_web_t *w, json_t *rq, int id_required, char *err, size_t errlen)
{
	static const char *const allowed[] = {"audience",
	                                      "id",
	                                      "name",
	                                      "phone_column",
	                                      "email_column",
	                                      "sms",
	                                      "email",
	                                      "priority",
	                                      "expires_in_s",
	                                      "on_missing_field",
	                                      "send_at",
	                                      "quiet_hours",
	                                      "confirm",
	                                      "n",
	                                      "row",
	                                      "to",
	                                      NULL};
	const char *k;
	json_t *v;
	json_object_foreach(rq, k, v)
	{
		int ok = 0;
		for (const char *const *a = allowed; *a; a++)
			ok |= !strcmp(*a, k);
		if (!ok) {
			snprintf(err, errlen, "unknown field \"%.60s\"", k);
			return NULL;
		}
	}
	char path[WEB_PATH];
	if (web_aud_path(w, json_string_value(json_object_get(rq, "audience")), path, sizeof path)) {
		snprintf(err, errlen, "no such audience (upload one or pick one from the list)");
		return NULL;
	}
	const char *id = json_string_value(json_object_get(rq, "id"));
	if (!id && !id_required)
		id = "preview";
	if (!id_ok(id)) {
		snprintf(err, errlen, "the campaign id must be 1..64 of letters, digits, . _ -");
		return NULL;
	}
	json_t *aud = json_pack("{ssss}", "path", path, "format", "csv");
	const char *ph = json_string_value(json_object_get(rq, "phone_column"));
	const char *em = json_string_value(json_object_get(rq, "email_column"));
	if (ph)
		json_object_set_new(aud, "phone", json_string(ph));
	if (em)
		json_object_set_new(aud, "email", json_string(em));
	json_t *doc = json_pack("{ssso}", "id", id, "audience", aud);
	static const char *const copied[] = {"name",     "sms",          "email",
	                                     "priority", "expires_in_s", "on_missing_field",
	                                     "send_at",  "quiet_hours",  NULL};
	for (const char *const *a = copied; *a; a++)
		if ((v = json_object_get(rq, *a)))
			json_object_set(doc, *a, v);
	return doc;
}

/* The price per unit of the vendor that would carry channel ch first. */
static const cfg_vendor_t *first_vendor(const cfg_t *cfg, msg_channel_t ch)
{
	const cfg_route_t *r = &cfg->routes[ch];
	for (size_t i = 0; i < r->nvendors; i++) {
		const cfg_vendor_t *v = cfg_vendor(cfg, r->vendors[i]);
		if (v && v->channel == ch)
			return v;
	}
	for (size_t i = 0; i < cfg->nvendors; i++)
		if (cfg->vendors[i].channel == ch)
			return &cfg->vendors[i];
	return NULL;
}

/* The rendered messages `tocsin preview` prints ("--- N. file:line sms to ADDR (...)\nbody"). */
static json_t *parse_previews(const char *s)
{
	json_t *a = json_array();
	const char *p = !strncmp(s, "--- ", 4) ? s : strstr(s, "\n--- ");
	while (p) {
		if (*p == '\n')
			p++;
		const char *nl = strchr(p, '\n'), *next = nl ? strstr(nl, "\n--- ") : NULL;
		if (!nl)
			break;
		const char *end = next ? next : p + strlen(p);
		const char *sp = strstr(p, " sms to "), *ep = strstr(p, " email to ");
		int sms = sp && sp < nl;
		const char *to = sms ? sp + 8 : ep && ep < nl ? ep + 10 : NULL;
		if (to) {
			const char *te = sms ? strstr(to, " (") : nl;
			if (!te || te > nl)
				te = nl;
			const char *colon = to - (sms ? 8 : 10);
			while (colon > p && *colon != ':')
				colon--;
			size_t bl = (size_t)(end - nl - 1);
			while (bl && nl[bl] == '\n')
				bl--;
			json_array_append_new(a, json_pack("{ss ss# sI ss#}", "channel",
			                                   sms ? "sms" : "email", "to", to,
			                                   (int)(te - to), "line",
			                                   (json_int_t)strtoll(colon + 1, NULL, 10),
			                                   "body", nl + 1,
			                                   (int)(end > nl + 1 ? bl : 0)));
		}
		p = next;
	}
	return a;
}

int web_write_doc(json_t *doc, const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || json_dumpfd(doc, fd, JSON_INDENT(2))) {
		snprintf(err, errlen, "cannot write the campaign file (see the tracker's log)");
		log_warn("event=compose_failed path=%s err=\"%s\"", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return TOCSIN_ERR_IO;
	}
	close(fd);
	return 0;
}

int web_dry_run(trk_web_t *w, json_t *doc, const char *path, int n, int64_t *recipients,
                double *cost, json_t **out, char *err, size_t errlen)
{
	if (web_write_doc(doc, path, err, errlen))
		return TOCSIN_ERR_IO;
	camp_t *camp = camp_load(path, err, errlen);
	if (!camp)
		return TOCSIN_ERR_INVAL;
	char *text = NULL;
	size_t tlen = 0;
	FILE *mf = open_memstream(&text, &tlen);
	prod_opts_t po = {.dry = 1, .preview_n = n, .out = mf};
	prod_t *p = mf ? prod_new(w->cfg, camp, &po, err, errlen) : NULL;
	int rc = p ? prod_run(p, err, errlen) : TOCSIN_ERR_INVAL;
	if (mf)
		fclose(mf);
	if (!rc) {
		const prod_stats_t *st = prod_stats(p);
		double total = 0;
		json_t *costs = json_array();
		for (int ch = 0; ch < MSG_CH__COUNT; ch++) {
			int on = ch == MSG_CH_SMS ? camp->sms_on : camp->email_on;
			const cfg_vendor_t *first = on ? first_vendor(w->cfg, (msg_channel_t)ch) : NULL;
			double units = ch == MSG_CH_SMS ? (double)st->segments
			                                : (double)st->ch_queued[ch];
			for (size_t i = 0; on && i < w->cfg->nvendors; i++) {
				const cfg_vendor_t *v = &w->cfg->vendors[i];
				if ((int)v->channel != ch)
					continue;
				json_array_append_new(costs, json_pack("{sssssfsfsfsb}", "vendor",
				                                       v->name, "channel",
				                                       msg_channel_name(v->channel),
				                                       "unit_cost", v->cost, "units",
				                                       units, "cost", v->cost * units,
				                                       "first", v == first));
			}
			if (first)
				total += first->cost * units;
		}
		*recipients = st->queued;
		*cost = total;
		if (out) {
			json_t *seg = json_object(), *why = json_array();
			for (int s = 1; s <= PROD_MAX_SEGS; s++)
				if (st->seg_hist[s]) {
					char k[16];
					snprintf(k, sizeof k, "%d%s", s, s == PROD_MAX_SEGS ? "+" : "");
					json_object_set_new(seg, k, json_integer(st->seg_hist[s]));
				}
			for (int i = 0; i < st->nreasons; i++)
				json_array_append_new(why, json_pack("{sssI}", "reason",
				                                     st->reasons[i].text, "n",
				                                     (json_int_t)st->reasons[i].n));
			if (st->reasons_other)
				json_array_append_new(why,
				                      json_pack("{sssI}", "reason", "other reasons",
				                                "n", (json_int_t)st->reasons_other));
			*out = json_pack(
			    "{s:o, s:{sI sI sI sI sI}, s:{sI sI}, s:o, s:o, sI, sI, s:o, sf, sf}",
			    "messages", parse_previews(text ? text : ""), "counts", "read",
			    (json_int_t)st->read, "queued", (json_int_t)st->queued, "rejected",
			    (json_int_t)st->rejected, "suppressed", (json_int_t)st->suppressed,
			    "duplicates", (json_int_t)st->duplicates, "encodings", "gsm7",
			    (json_int_t)st->by_enc[0], "ucs2", (json_int_t)st->by_enc[1],
			    "segments", seg, "rejected", why, "segments_total",
			    (json_int_t)st->segments, "replaced", (json_int_t)st->replaced, "cost",
			    costs, "cost_total", total, "elapsed_s", st->elapsed_s);
			/* send_at and quiet hours: how many wait, until when */
			json_object_set_new(*out, "held",
			                    json_pack("{sI sI sI sI}", "n", (json_int_t)st->held,
			                              "expired", (json_int_t)st->expired,
			                              "first_due_ms", (json_int_t)st->first_due_ms,
			                              "last_due_ms", (json_int_t)st->last_due_ms));
		}
	}
	free(text);
	prod_free(p);
	camp_free(camp);
	return rc;
}

/* The preview cache: the counts of a campaign document previewed, for its launch. */
static uint64_t doc_key(json_t *doc)
{
	char *s = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
	uint64_t k = s ? hash64(s, strlen(s), 19) | 1 : 0;
	free(s);
	return k;
}

enum MHD_Result web_preview(trk_web_t *w, struct MHD_Connection *c, json_t *rq, const char *who)
{
	char err[1024];
	json_t *nv = json_object_get(rq, "n");
	int n = json_is_integer(nv) ? (int)json_integer_value(nv) : 5;
	if (n < 0 || n > PREVIEW_N_MAX)
		return web_err(c, 400, "n must be 0..%d", PREVIEW_N_MAX);
	json_t *doc = web_campaign_doc(w, rq, 0, err, sizeof err);
	if (!doc)
		return web_err(c, 400, "%s", err);
	char path[WEB_PATH];
	pthread_mutex_lock(&w->mu);
	uint64_t seq = ++w->seq;
	pthread_mutex_unlock(&w->mu);
	snprintf(path, sizeof path, "%s/preview-%d-%llu.json", w->comp_dir, (int)getpid(),
	         (unsigned long long)seq);
	int64_t recipients = 0;
	double cost = 0;
	json_t *o = NULL;
	int rc = web_dry_run(w, doc, path, n, &recipients, &cost, &o, err, sizeof err);
	unlink(path);
	if (!rc) {
		pthread_mutex_lock(&w->mu);
		web_pcache_t *pc = &w->pcache[w->pcache_next++ % WEB_PREVIEW_CACHE];
		pc->key = doc_key(doc);
		pc->recipients = recipients;
		pc->cost = cost;
		pthread_mutex_unlock(&w->mu);
		log_info("event=web_preview actor=%s campaign=%s recipients=%lld", who,
		         json_string_value(json_object_get(doc, "id")), (long long)recipients);
	}
	json_decref(doc);
	return rc ? web_err(c, 400, "%s", err) : web_json(c, 200, o);
}

int web_preview_cached(trk_web_t *w, json_t *doc, int64_t *recipients, double *cost)
{
	uint64_t k = doc_key(doc);
	int hit = 0;
	pthread_mutex_lock(&w->mu);
	for (int i = 0; i < WEB_PREVIEW_CACHE && !hit; i++)
		if (k && w->pcache[i].key == k) {
			*recipients = w->pcache[i].recipients;
			*cost = w->pcache[i].cost;
			hit = 1;
		}
	pthread_mutex_unlock(&w->mu);
	return hit;
}

/* Send m to its address through vendor v with vendors/vsend.h (the adapter's
 * request, the dispatcher's HTTP engine, the vendor's limits): 0 with *res, or an
 * error with err (nothing sent). */
static int send_one(trk_web_t *w, const cfg_vendor_t *v, const msg_out_t *m, vnd_result_t *res,
                    char *err, size_t errlen)
{
	vsend_t *vs = vsend_new(w->cfg, v, NULL, err, errlen);
	if (!vs)
		return TOCSIN_ERR_CONFIG;
	/* the vendor's SLA state as the store knows it: open or drained sends nothing */
	pthread_mutex_lock(&w->wmu);
	sqlite3_stmt *q = NULL;
	if (w->wr && sqlite3_prepare_v2(trk_store_db(w->wr), "SELECT state FROM vendors WHERE name=?1",
	                                -1, &q, NULL) == SQLITE_OK) {
		sqlite3_bind_text(q, 1, v->name, -1, SQLITE_STATIC);
		if (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_int(q, 0) >= 0 &&
		    sqlite3_column_int(q, 0) < MSG_VH__COUNT)
			vsend_set_health(vs, (msg_vh_state_t)sqlite3_column_int(q, 0));
	}
	sqlite3_finalize(q);
	pthread_mutex_unlock(&w->wmu);
	int rc = vsend_msgs(vs, &m, 1, TEST_SEND_WAIT_MS, res, NULL, err, errlen);
	vsend_free(vs);
	return rc;
}

/* Send the test m through v, put it on the timeline (the address masked as
 * shown) and answer: 200 when the vendor accepted it, else 502. o (stolen)
 * holds the message's parts for the answer. */
static enum MHD_Result send_test(trk_web_t *w, struct MHD_Connection *c, const char *who,
                                 const cfg_vendor_t *v, const msg_out_t *m, const char *masked,
                                 json_t *o)
{
	char line[SEND_OUT_MAX];
	vnd_result_t res;
	memset(&res, 0, sizeof res);
	int rc = send_one(w, v, m, &res, line, sizeof line);
	const char *outcome = rc == TOCSIN_ERR_AGAIN ? "vendor unavailable (open or drained)"
	                      : rc                   ? "not sent"
	                                             : vnd_outcome_name(res.outcome);
	if (!rc)
		snprintf(line, sizeof line, "code=%s ref=%s %s", res.code[0] ? res.code : "-",
		         res.ref[0] ? res.ref : "-", res.detail);
	web_record(w, "test", "test send", who, "test send to %s (%s) through %s: %s", masked,
	           msg_channel_name(m->channel), v->name, outcome);
	json_t *sent = json_pack("{ss ss ss ss ss ss}", "channel", msg_channel_name(m->channel),
	                         "vendor", v->name, "to", m->to, "id", m->id, "outcome", outcome,
	                         "detail", line);
	json_object_update(o, sent);
	json_decref(sent);
	return web_json(c, !rc && res.outcome == VND_ACCEPTED ? 200 : 502, o);
}

/* The test's message id: of no campaign (the tracker counts it with the test
 * sends, apart from every campaign). */
static void test_id(const char *channel, const char *to, char id[MSG_ID_LEN + 1])
{
	char salt[96];
	snprintf(salt, sizeof salt, "test-send:%lld", (long long)clock_wall_ms());
	msg_make_id(salt, channel, to, id);
}

static enum MHD_Result test_send_sms(trk_web_t *w, struct MHD_Connection *c, json_t *rq,
                                     const char *who, const char *to_in)
{
	json_t *sms = json_object_get(rq, "sms");
	if (!json_is_object(sms))
		return web_err(c, 400,
		               "a test send to a phone needs the SMS version (\"sms\": {\"template\": ...})");
	char to[ADDR_MAX];
	const char *why = NULL;
	if (addr_phone_norm(to_in, strlen(to_in), to, &why))
		return web_err(c, 400, "\"%.40s\" is not a phone number: %s", to_in, why);
	const cfg_vendor_t *v = first_vendor(w->cfg, MSG_CH_SMS);
	if (!v)
		return web_err(c, 409, "no SMS vendor is configured");
	sample_t s;
	enum MHD_Result ret;
	if (sample_from(w, c, rq, &s, &ret))
		return ret;
	json_t *an = sms_compose(&s, sms);
	aud_free(s.a);
	json_t *at = json_object_get(an, "at_send");
	const char *body = json_string_value(json_object_get(at, "body"));
	if (json_array_size(json_object_get(an, "unknown_fields")) || !body) {
		const char *e = json_string_value(json_object_get(an, "error"));
		if (!e)
			e = json_string_value(json_object_get(at, "error"));
		enum MHD_Result r = web_err(c, 400, "cannot render the message: %s",
		                            e ? e : "unknown fields in the template");
		json_decref(an);
		return r;
	}
	/* marked: the text says TEST */
	size_t tl = strlen(body) + 8;
	char *text = malloc(tl), id[MSG_ID_LEN + 1], masked[ADDR_MAX];
	if (!text) {
		json_decref(an);
		return web_err(c, 500, "out of memory");
	}
	snprintf(text, tl, "TEST: %s", body);
	json_decref(an);
	test_id("sms", to, id);
	sms_info_t info;
	if (sms_analyze(text, strlen(text), &info))
		info = (sms_info_t){.enc = SMS_UCS2, .segments = 1};
	const char *pool = json_string_value(json_object_get(sms, "sender"));
	msg_out_t m = {.id = id,
	               .campaign = "vendor-send",
	               .channel = MSG_CH_SMS,
	               .to = to,
	               .sender = pool ? pool : "main",
	               .body = text,
	               .enc = sms_enc_name(info.enc),
	               .segments = info.segments,
	               .created_ms = clock_wall_ms()};
	size_t al = strlen(to);
	snprintf(masked, sizeof masked, "%.*s****", (int)(al > 4 ? al - 4 : 0), to);
	enum MHD_Result r = send_test(w, c, who, v, &m, masked, json_pack("{ss}", "text", text));
	free(text);
	return r;
}

/* The email version of rq compiled against the sample's columns as the launch
 * compiles it (templates/email.h: the subject, a text and/or HTML part, each
 * body printing {{unsubscribe_url}}), or NULL with err. */
static email_tmpl_t *email_of(const sample_t *s, json_t *rq, char *err, size_t errlen)
{
	json_t *em = json_object_get(rq, "email");
	const char *sj = json_string_value(json_object_get(em, "subject"));
	const char *tx = json_string_value(json_object_get(em, "text"));
	const char *ht = json_string_value(json_object_get(em, "html"));
	const char *om = json_string_value(json_object_get(rq, "on_missing_field"));
	if (!sj || (!tx && !ht)) {
		snprintf(err, errlen, "email needs \"subject\" and \"text\" and/or \"html\"");
		return NULL;
	}
	return email_compile(sj, strlen(sj), tx, tx ? strlen(tx) : 0, ht, ht ? strlen(ht) : 0,
	                     aud_cols(s->a), aud_ncols(s->a),
	                     om && !strcmp(om, "empty") ? TMPL_F_MISSING_EMPTY : 0, err, errlen);
}

static enum MHD_Result test_send_email(trk_web_t *w, struct MHD_Connection *c, json_t *rq,
                                       const char *who, const char *to_in)
{
	if (!json_is_object(json_object_get(rq, "email")))
		return web_err(c, 400,
		               "a test send to an email address needs the email version "
		               "(\"email\": {\"subject\", \"text\" and/or \"html\"})");
	char to[ADDR_MAX];
	const char *why = NULL;
	if (addr_email_norm(to_in, strlen(to_in), to, &why))
		return web_err(c, 400, "\"to\" is not an email address: %s", why);
	const cfg_vendor_t *v = first_vendor(w->cfg, MSG_CH_EMAIL);
	if (!v)
		return web_err(c, 409, "no email vendor is configured");
	if (!w->unsub)
		return web_err(c, 409, "cannot sign the unsubscribe link: %s", w->unsub_err);
	sample_t s;
	enum MHD_Result ret;
	if (sample_from(w, c, rq, &s, &ret))
		return ret;
	char err[600];
	email_tmpl_t *e = s.have_row ? email_of(&s, rq, err, sizeof err) : NULL;
	if (!s.have_row)
		snprintf(err, sizeof err, "the audience has no such row");
	char *buf = e ? malloc(EMAIL_TEST_CAP) : NULL;
	email_parts_t ep;
	tmpl_why_t tw;
	int rc = !e     ? TOCSIN_ERR_INVAL
	         : !buf ? TOCSIN_ERR_NOMEM
	                : email_render(e, w->unsub, "vendor-send", to, strlen(to), s.r.vals,
	                               s.r.lens, buf, EMAIL_TEST_CAP, &ep, &tw);
	int compiled = e != NULL;
	email_free(e);
	aud_free(s.a);
	if (rc) {
		if (compiled)
			snprintf(err, sizeof err, "%s",
			         rc == TOCSIN_ERR_INVAL    ? tw.reason
			         : rc == TOCSIN_ERR_TOOBIG ? "rendered message too long"
			                                   : "out of memory");
		free(buf);
		return web_err(c, 400, "cannot render the email: %s", err);
	}
	/* marked: the subject says TEST */
	size_t sl = ep.subject_len + 8;
	char *subject = malloc(sl), id[MSG_ID_LEN + 1], masked[ADDR_MAX];
	if (!subject) {
		free(buf);
		return web_err(c, 500, "out of memory");
	}
	snprintf(subject, sl, "TEST: %.*s", (int)ep.subject_len, ep.subject);
	test_id("email", to, id);
	json_t *em = json_object_get(rq, "email");
	const char *pool = json_string_value(json_object_get(em, "sender"));
	msg_out_t m = {.id = id,
	               .campaign = "vendor-send",
	               .channel = MSG_CH_EMAIL,
	               .to = to,
	               .sender = pool ? pool : "main",
	               .subject = subject,
	               .text = ep.text,
	               .html = ep.html,
	               .headers = ep.headers,
	               .segments = 1,
	               .created_ms = clock_wall_ms()};
	const char *at = strchr(to, '@');
	snprintf(masked, sizeof masked, "%.1s****%s", to, at ? at : "");
	json_t *o = json_pack("{ss so so}", "subject", subject, "text",
	                      ep.text ? json_stringn(ep.text, ep.text_len) : json_null(), "html",
	                      ep.html ? json_stringn(ep.html, ep.html_len) : json_null());
	enum MHD_Result r = send_test(w, c, who, v, &m, masked, o);
	free(subject);
	free(buf);
	return r;
}

enum MHD_Result web_test_send(trk_web_t *w, struct MHD_Connection *c, json_t *rq, const char *who)
{
	json_t *tv = json_object_get(rq, "to");
	const char *to = json_string_value(tv);
	if (!to || !to[0])
		return web_err(c, 400, "\"to\": the phone number or email address to send the test to");
	if (json_string_length(tv) > TEST_TO_MAX || strlen(to) != json_string_length(tv))
		return web_err(c, 400, "\"to\" must be at most %d characters of one address",
		               TEST_TO_MAX);
	return strchr(to, '@') ? test_send_email(w, c, rq, who, to) : test_send_sms(w, c, rq, who, to);
}
