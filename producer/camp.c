/* camp.c -- the campaign file (campaign.json): audience, column mapping, SMS and email versions. */
#include "producer/camp.h"
#include "core/err.h"
#include "core/near.h"
#include "core/tz.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *dup_or(json_t *o, const char *k, const char *dflt)
{
	json_t *v = json_object_get(o, k);
	if (json_is_string(v))
		return strdup(json_string_value(v));
	return dflt ? strdup(dflt) : NULL;
}

/* path relative to the campaign file's directory */
static char *rel_path(const char *campfile, const char *p)
{
	if (!p)
		return NULL;
	if (p[0] == '/')
		return strdup(p);
	const char *slash = strrchr(campfile, '/');
	if (!slash)
		return strdup(p);
	size_t dl = (size_t)(slash - campfile);
	size_t n = dl + strlen(p) + 2;
	char *r = malloc(n);
	if (r)
		snprintf(r, n, "%.*s/%s", (int)dl, campfile, p);
	return r;
}

static int ends_with(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);
	return a >= b && !strcasecmp(s + a - b, suf);
}

static int bad_type(json_t *o, const char *k, int (*is)(const json_t *))
{
	json_t *v = json_object_get(o, k);
	return v && !is(v);
}

static int is_str(const json_t *v) { return json_is_string(v); }
static int is_int(const json_t *v) { return json_is_integer(v); }
static int is_obj(const json_t *v) { return json_is_object(v); }
static int is_bool(const json_t *v) { return json_is_boolean(v); }

/* Check every key of o against known (NULL-terminated); the first other one is a one-line
 * error naming where ("sms.tempalte") and the closest known key. Returns 0 or -1. */
static int known_keys(const char *path, const char *where, json_t *o, const char *const *known,
                      char *err, size_t errlen)
{
	const char *k;
	json_t *v;
	json_object_foreach(o, k, v)
	{
		near_t n;
		near_init(&n, k);
		int ok = 0;
		for (int i = 0; known[i]; i++) {
			ok |= !strcmp(known[i], k);
			near_offer(&n, known[i]);
		}
		if (ok)
			continue;
		const char *best = near_best(&n);
		if (best)
			snprintf(err, errlen, "%s: unknown field %s%s%s (did you mean %s?)", path,
			         where, *where ? "." : "", k, best);
		else
			snprintf(err, errlen, "%s: unknown field %s%s%s", path, where,
			         *where ? "." : "", k);
		return -1;
	}
	return 0;
}

/* "send_at" and "quiet_hours": one line naming the field on bad input. */
static int camp_schedule(camp_t *c, json_t *r, const char *path, char *err, size_t errlen)
{
	json_t *sa = json_object_get(r, "send_at");
	c->qh_start = c->qh_end = -1;
	if (sa) {
		const char *s = json_string_value(sa);
		if (!s || (strcmp(s, "now") && tz_parse_rfc3339(s, &c->send_at_ms))) {
			snprintf(err, errlen,
			         "%s: send_at: \"%.64s\" is not \"now\" or an RFC 3339 time with an offset "
			         "(e.g. \"2026-12-04T07:00:00-05:00\")",
			         path, s ? s : "(not a string)");
			return -1;
		}
	}
	json_t *qh = json_object_get(r, "quiet_hours");
	if (!qh)
		return 0;
	static const char *const qk[] = {"start", "end", "override", NULL};
	if (!json_is_object(qh)) {
		snprintf(err, errlen,
		         "%s: quiet_hours must be {\"start\": \"HH:MM\", \"end\": \"HH:MM\"} or {\"override\": \"urgent\"}",
		         path);
		return -1;
	}
	if (known_keys(path, "quiet_hours", qh, qk, err, errlen))
		return -1;
	json_t *ov = json_object_get(qh, "override");
	if (ov) {
		if (!json_is_string(ov) || strcmp(json_string_value(ov), "urgent") ||
		    json_object_size(qh) != 1) {
			snprintf(err, errlen,
			         "%s: quiet_hours.override: the only override is \"urgent\", alone "
			         "(it sends at any hour, and preview and the dashboard say so)",
			         path);
			return -1;
		}
		c->qh_urgent = 1;
		return 0;
	}
	const char *k[2] = {"start", "end"};
	int *v[2] = {&c->qh_start, &c->qh_end};
	for (int i = 0; i < 2; i++) {
		json_t *x = json_object_get(qh, k[i]);
		if (!x || !json_is_string(x) || tz_parse_hhmm(json_string_value(x), v[i])) {
			snprintf(err, errlen, "%s: quiet_hours.%s must be \"HH:MM\" (00:00..24:00)",
			         path, k[i]);
			return -1;
		}
	}
	return 0;
}

/* The campaign's own fields: id, name, priority, expiry, send_at and quiet hours, on_missing_field, the rejects and report paths. */
static int load_head(camp_t *c, json_t *r, const char *path, char *err, size_t errlen)
{
	const char *id = json_string_value(json_object_get(r, "id"));
	if (!id || !*id || strlen(id) > 64 ||
	    strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") !=
	        strlen(id)) {
		snprintf(err, errlen, "%s: \"id\" must be 1..64 characters of A-Z a-z 0-9 . _ -", path);
		return TOCSIN_ERR_INVAL;
	}
	c->id = strdup(id);
	if (bad_type(r, "name", is_str) || bad_type(r, "priority", is_int) ||
	    bad_type(r, "expires_in_s", is_int) || bad_type(r, "rejects", is_str) ||
	    bad_type(r, "report", is_str) || bad_type(r, "on_missing_field", is_str)) {
		snprintf(err, errlen,
		         "%s: \"name\", \"rejects\", \"report\", \"on_missing_field\" must be strings and "
		         "\"priority\", \"expires_in_s\" integers",
		         path);
		return TOCSIN_ERR_INVAL;
	}
	c->name = dup_or(r, "name", id);
	c->priority = (int)json_integer_value(json_object_get(r, "priority"));
	json_t *ex = json_object_get(r, "expires_in_s");
	c->expires_s = ex ? json_integer_value(ex) : 86400;
	if (c->expires_s < 0) {
		snprintf(err, errlen, "%s: \"expires_in_s\" must be >= 0", path);
		return TOCSIN_ERR_INVAL;
	}
	if (camp_schedule(c, r, path, err, errlen))
		return TOCSIN_ERR_INVAL;
	const char *om = json_string_value(json_object_get(r, "on_missing_field"));
	if (om && strcmp(om, "reject") && strcmp(om, "empty")) {
		snprintf(err, errlen, "%s: \"on_missing_field\" must be \"reject\" or \"empty\"", path);
		return TOCSIN_ERR_INVAL;
	}
	c->missing_empty = om && !strcmp(om, "empty");
	char *rj = dup_or(r, "rejects", NULL), *rp = dup_or(r, "report", NULL);
	c->rejects_path = rel_path(path, rj);
	c->report_path = rel_path(path, rp);
	free(rj);
	free(rp);
	return 0;
}

/* The audience: its file (relative to the campaign file), format, table or query, the columns named, the country of phone numbers. */
static int load_audience(camp_t *c, json_t *r, const char *path, char *err, size_t errlen)
{
	const char *k;
	json_t *v;
	json_t *a = json_object_get(r, "audience");
	if (json_is_string(a)) {
		c->aud_path = rel_path(path, json_string_value(a));
		a = NULL;
	} else if (json_is_object(a)) {
		const char *ap = json_string_value(json_object_get(a, "path"));
		if (!ap) {
			snprintf(err, errlen,
			         "%s: \"audience.path\" is required (a CSV, JSON Lines or SQLite file)",
			         path);
			return TOCSIN_ERR_INVAL;
		}
		c->aud_path = rel_path(path, ap);
	} else {
		snprintf(err, errlen,
		         "%s: \"audience\" is required: a file name or {\"path\", ...}", path);
		return TOCSIN_ERR_INVAL;
	}
	const char *fmt = a ? json_string_value(json_object_get(a, "format")) : NULL;
	if (!fmt)
		fmt = ends_with(c->aud_path, ".jsonl") || ends_with(c->aud_path, ".ndjson") ? "jsonl"
		      : ends_with(c->aud_path, ".db") || ends_with(c->aud_path, ".sqlite") ||
		              ends_with(c->aud_path, ".sqlite3")
		          ? "sqlite"
		          : "csv";
	if (!strcmp(fmt, "csv"))
		c->aud.fmt = AUD_CSV;
	else if (!strcmp(fmt, "jsonl"))
		c->aud.fmt = AUD_JSONL;
	else if (!strcmp(fmt, "sqlite"))
		c->aud.fmt = AUD_SQLITE;
	else {
		snprintf(err, errlen,
		         "%s: \"audience.format\" must be csv, jsonl or sqlite, not \"%s\"", path,
		         fmt);
		return TOCSIN_ERR_INVAL;
	}
	if (a) {
		static const char *const strs[] = {"path",  "format",  "table",    "query",
		                                   "phone", "email",   "timezone", "zip",
		                                   "state", "country", NULL};
		if (known_keys(path, "audience", a, strs, err, errlen))
			return TOCSIN_ERR_INVAL;
		json_object_foreach(a, k, v)
		{
			if (!json_is_string(v)) {
				snprintf(err, errlen, "%s: audience.%s: must be a string", path, k);
				return TOCSIN_ERR_INVAL;
			}
		}
	}
	c->aud_table = a ? dup_or(a, "table", NULL) : NULL;
	c->aud_query = a ? dup_or(a, "query", NULL) : NULL;
	if (c->aud.fmt == AUD_SQLITE && !c->aud_table && !c->aud_query) {
		snprintf(err, errlen,
		         "%s: a SQLite audience needs \"audience.table\" or \"audience.query\"", path);
		return TOCSIN_ERR_INVAL;
	}
	c->col_phone = a ? dup_or(a, "phone", "phone") : strdup("phone");
	c->col_email = a ? dup_or(a, "email", "email") : strdup("email");
	c->col_tz = a ? dup_or(a, "timezone", NULL) : NULL;
	c->col_zip = a ? dup_or(a, "zip", NULL) : NULL;
	c->col_state = a ? dup_or(a, "state", NULL) : NULL;
	c->country = a ? dup_or(a, "country", "US") : strdup("US");
	if (strcmp(c->country, "US") && strcmp(c->country, "CA")) {
		snprintf(err, errlen,
		         "%s: audience.country: only \"US\" or \"CA\" (+1) is supported, not \"%s\"",
		         path, c->country);
		return TOCSIN_ERR_INVAL;
	}
	c->aud.path = c->aud_path;
	c->aud.table = c->aud_table;
	c->aud.query = c->aud_query;
	return 0;
}

/* The SMS version ("sms"), when there is one. */
static int load_sms(camp_t *c, json_t *r, const char *path, char *err, size_t errlen)
{
	json_t *s = json_object_get(r, "sms");
	if (s) {
		if (!json_is_object(s)) {
			snprintf(err, errlen, "%s: \"sms\" must be an object", path);
			return TOCSIN_ERR_INVAL;
		}
		static const char *const sms_keys[] = {"sender", "template",      "max_segments",
		                                       "footer", "smart_replace", NULL};
		if (known_keys(path, "sms", s, sms_keys, err, errlen))
			return TOCSIN_ERR_INVAL;
		if (bad_type(s, "sender", is_str) || bad_type(s, "footer", is_str) ||
		    bad_type(s, "max_segments", is_int) || bad_type(s, "smart_replace", is_bool) ||
		    !json_is_string(json_object_get(s, "template"))) {
			snprintf(err, errlen,
			         "%s: sms needs \"template\" (a string); \"sender\", \"footer\" are strings, "
			         "\"max_segments\" an integer, \"smart_replace\" a boolean",
			         path);
			return TOCSIN_ERR_INVAL;
		}
		c->sms_on = 1;
		c->sms_sender = dup_or(s, "sender", "main");
		c->sms_template = dup_or(s, "template", NULL);
		c->sms_footer = dup_or(s, "footer", NULL);
		json_t *ms = json_object_get(s, "max_segments");
		c->sms_max_segments = ms ? (int)json_integer_value(ms) : 6;
		if (c->sms_max_segments < 1 || c->sms_max_segments > 20) {
			snprintf(err, errlen, "%s: sms.max_segments must be 1..20", path);
			return TOCSIN_ERR_INVAL;
		}
		json_t *sm = json_object_get(s, "smart_replace");
		c->sms_smart = sm ? json_is_true(sm) : 1;
	}
	return 0;
}

/* The email version ("email"), when there is one. */
static int load_email(camp_t *c, json_t *r, const char *path, char *err, size_t errlen)
{
	const char *k;
	json_t *v;
	json_t *e = json_object_get(r, "email");
	if (e) {
		if (!json_is_object(e)) {
			snprintf(err, errlen, "%s: \"email\" must be an object", path);
			return TOCSIN_ERR_INVAL;
		}
		static const char *const email_keys[] = {"sender", "subject", "text", "html", NULL};
		if (known_keys(path, "email", e, email_keys, err, errlen))
			return TOCSIN_ERR_INVAL;
		json_object_foreach(e, k, v)
		{
			if (!json_is_string(v)) {
				snprintf(err, errlen, "%s: email.%s: must be a string", path, k);
				return TOCSIN_ERR_INVAL;
			}
		}
		if (!json_object_get(e, "subject") ||
		    (!json_object_get(e, "text") && !json_object_get(e, "html"))) {
			snprintf(err, errlen,
			         "%s: email needs \"subject\" and \"text\" and/or \"html\"", path);
			return TOCSIN_ERR_INVAL;
		}
		c->email_on = 1;
		c->email_sender = dup_or(e, "sender", "main");
		c->email_subject = dup_or(e, "subject", NULL);
		c->email_text = dup_or(e, "text", NULL);
		c->email_html = dup_or(e, "html", NULL);
	}
	return 0;
}

camp_t *camp_load(const char *path, char *err, size_t errlen)
{
	camp_t *c = calloc(1, sizeof *c);
	if (!c) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->path = strdup(path);
	if (access(path, R_OK)) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	json_error_t je;
	c->root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	if (!c->root) {
		if (je.line > 0)
			snprintf(err, errlen, "%s:%d:%d: %s", path, je.line, je.column, je.text);
		else
			snprintf(err, errlen, "%s: %s", path, je.text);
		goto fail;
	}
	json_t *r = c->root;
	if (!json_is_object(r)) {
		snprintf(err, errlen, "%s: the campaign must be a JSON object", path);
		goto fail;
	}
	static const char *const known[] = {
	    "id",          "name",         "audience",         "sms",     "email",
	    "priority",    "expires_in_s", "on_missing_field", "rejects", "report",
	    "description", "send_at",      "quiet_hours",      NULL};
	if (known_keys(path, "", r, known, err, errlen) || load_head(c, r, path, err, errlen) ||
	    load_audience(c, r, path, err, errlen) || load_sms(c, r, path, err, errlen) ||
	    load_email(c, r, path, err, errlen))
		goto fail;
	if (!c->sms_on && !c->email_on) {
		snprintf(err, errlen, "%s: the campaign has neither \"sms\" nor \"email\"", path);
		goto fail;
	}
	(void)is_obj;
	return c;
fail:
	camp_free(c);
	return NULL;
}

void camp_free(camp_t *c)
{
	if (!c)
		return;
	free(c->path);
	free(c->id);
	free(c->name);
	free(c->aud_path);
	free(c->aud_table);
	free(c->aud_query);
	free(c->col_phone);
	free(c->col_email);
	free(c->col_tz);
	free(c->col_zip);
	free(c->col_state);
	free(c->country);
	free(c->sms_sender);
	free(c->sms_template);
	free(c->sms_footer);
	free(c->email_sender);
	free(c->email_subject);
	free(c->email_text);
	free(c->email_html);
	free(c->rejects_path);
	free(c->report_path);
	json_decref(c->root);
	free(c);
}
