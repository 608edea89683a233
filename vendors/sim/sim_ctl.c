/* sim_ctl.c -- the emulator's front: sim_new, routing to the four vendor APIs, and the /_sim/ control API. */
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

static const char *const outage_names[] = {"none", "refuse", "reset", "503", "hang", "auth"};
#define OUTAGES (sizeof outage_names / sizeof *outage_names)

static void fault_json(const sim_fault_t *f, buf_t *b)
{
	buf_printf(b,
	           "{\"latency_ms\":{\"median\":%g,\"tail\":%g},\"error_rate\":%g,\"throttle_rate\":%g,"
	           "\"retry_after_s\":%d,\"outage\":\"%s\",\"permanent_rate\":%g,\"optout_rate\":%g,\"lose\":%d,"
	           "\"receipts\":{\"enabled\":%s,\"delay_ms\":%g,\"delivered_rate\":%g,"
	           "\"retries\":%s,\"retry_scale\":%g,\"url\":",
	           f->lat_median_ms, f->lat_tail_ms, f->error_rate, f->throttle_rate,
	           f->retry_after_s, outage_names[f->outage], f->permanent_rate, f->optout_rate,
	           f->lose, f->receipts ? "true" : "false", f->receipt_delay_ms, f->delivered_rate,
	           f->receipt_retries ? "true" : "false", f->retry_scale);
	if (f->receipt_url[0])
		buf_json_str(b, f->receipt_url, strlen(f->receipt_url));
	else
		buf_puts(b, "null");
	buf_printf(b, "},\"email_digests\":%s}", f->email_digests ? "true" : "false");
}

static int getrate(json_t *o, const char *k, double *out, char *err, size_t errlen)
{
	json_t *v = json_object_get(o, k);
	if (!v)
		return 0;
	if (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > 1) {
		snprintf(err, errlen, "\"%s\" must be a number 0..1", k);
		return -1;
	}
	*out = json_number_value(v);
	return 0;
}

static int getms(json_t *o, const char *k, double *out, char *err, size_t errlen)
{
	json_t *v = json_object_get(o, k);
	if (!v)
		return 0;
	if (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > 600000) {
		snprintf(err, errlen, "\"%s\" must be a number of milliseconds 0..600000", k);
		return -1;
	}
	*out = json_number_value(v);
	return 0;
}

/* 0 when every key of o is one of known[0..n); else -1 with err naming it (prefix + key) */
static int known_keys(json_t *o, const char *const *known, size_t n, const char *prefix, char *err,
                      size_t errlen)
{
	const char *k;
	json_t *v;
	json_object_foreach(o, k, v)
	{
		int ok = 0;
		for (size_t i = 0; i < n; i++)
			ok |= !strcmp(k, known[i]);
		if (!ok) {
			snprintf(err, errlen, "unknown field \"%s%.60s\"", prefix, k);
			return -1;
		}
	}
	return 0;
}

/* apply the JSON settings o to f; 0 or -1 with err (f unchanged on error) */
static int fault_apply(sim_fault_t *f0, json_t *o, char *err, size_t errlen)
{
	static const char *const known[] = {"vendor",         "latency_ms",    "error_rate",
	                                    "throttle_rate",  "retry_after_s", "outage",
	                                    "permanent_rate", "optout_rate",   "receipts",
	                                    "reset",          "email_digests", "lose"};
	static const char *const rknown[] = {"enabled", "delay_ms", "delivered_rate",
	                                     "url",     "retries",  "retry_scale"};
	if (known_keys(o, known, sizeof known / sizeof *known, "", err, errlen))
		return -1;
	sim_fault_t f = *f0;
	if (json_is_true(json_object_get(o, "reset"))) {
		char url[sizeof f.receipt_url];
		memcpy(url, f.receipt_url, sizeof url);
		memset(&f, 0, sizeof f);
		f.retry_after_s = 1;
		f.delivered_rate = 1;
		f.receipt_delay_ms = 200;
		f.receipt_retries = 1;
		f.retry_scale = 1;
	}
	json_t *lat = json_object_get(o, "latency_ms");
	if (lat && json_is_number(lat))
		f.lat_median_ms = f.lat_tail_ms = json_number_value(lat);
	else if (lat && (!json_is_object(lat) || getms(lat, "median", &f.lat_median_ms, err, errlen) ||
	                 getms(lat, "tail", &f.lat_tail_ms, err, errlen))) {
		if (!json_is_object(lat))
			snprintf(err, errlen, "\"latency_ms\" must be {\"median\":ms,\"tail\":ms}");
		return -1;
	}
	if (getrate(o, "error_rate", &f.error_rate, err, errlen) ||
	    getrate(o, "throttle_rate", &f.throttle_rate, err, errlen) ||
	    getrate(o, "permanent_rate", &f.permanent_rate, err, errlen) ||
	    getrate(o, "optout_rate", &f.optout_rate, err, errlen))
		return -1;
	json_t *ra = json_object_get(o, "retry_after_s");
	if (ra) {
		if (!json_is_integer(ra) || json_integer_value(ra) < 0 ||
		    json_integer_value(ra) > 3600) {
			snprintf(err, errlen, "\"retry_after_s\" must be an integer 0..3600");
			return -1;
		}
		f.retry_after_s = (int)json_integer_value(ra);
	}
	json_t *ed = json_object_get(o, "email_digests");
	if (ed && !json_is_boolean(ed)) {
		snprintf(err, errlen, "\"email_digests\" must be true or false");
		return -1;
	}
	if (ed)
		f.email_digests = json_is_true(ed);
	json_t *lo = json_object_get(o, "lose");
	if (lo) {
		if (!json_is_integer(lo) || json_integer_value(lo) < 0 ||
		    json_integer_value(lo) > 1000) {
			snprintf(err, errlen, "\"lose\" must be an integer 0..1000");
			return -1;
		}
		f.lose = (int)json_integer_value(lo);
	}
	json_t *out = json_object_get(o, "outage");
	if (out) {
		const char *os = json_string_value(out);
		int found = -1;
		for (int i = 0; os && i < (int)OUTAGES; i++)
			if (!strcmp(os, outage_names[i]))
				found = i;
		if (found < 0) {
			snprintf(err, errlen,
			         "\"outage\" must be one of none, refuse, reset, 503, hang, auth");
			return -1;
		}
		f.outage = found;
	}
	json_t *rc = json_object_get(o, "receipts");
	if (rc) {
		if (!json_is_object(rc)) {
			snprintf(err, errlen, "\"receipts\" must be an object");
			return -1;
		}
		if (known_keys(rc, rknown, sizeof rknown / sizeof *rknown, "receipts.", err, errlen))
			return -1;
		json_t *en = json_object_get(rc, "enabled"), *rt = json_object_get(rc, "retries");
		if ((en && !json_is_boolean(en)) || (rt && !json_is_boolean(rt))) {
			snprintf(err, errlen, "\"receipts.%s\" must be true or false",
			         en && !json_is_boolean(en) ? "enabled" : "retries");
			return -1;
		}
		if (en)
			f.receipts = json_is_true(en);
		if (rt)
			f.receipt_retries = json_is_true(rt);
		json_t *sc = json_object_get(rc, "retry_scale");
		if (sc && (!json_is_number(sc) || json_number_value(sc) < 0.0001 ||
		           json_number_value(sc) > 1)) {
			snprintf(err, errlen, "\"receipts.retry_scale\" must be a number 0.0001..1");
			return -1;
		}
		if (sc)
			f.retry_scale = json_number_value(sc);
		if (getms(rc, "delay_ms", &f.receipt_delay_ms, err, errlen) ||
		    getrate(rc, "delivered_rate", &f.delivered_rate, err, errlen))
			return -1;
		json_t *u = json_object_get(rc, "url");
		if (u && !json_is_null(u)) {
			const char *us = json_string_value(u);
			if (!us || strlen(us) >= sizeof f.receipt_url ||
			    (strncmp(us, "http://", 7) && strncmp(us, "https://", 8))) {
				snprintf(err, errlen,
				         "\"receipts.url\" must be an http(s) URL under 512 bytes");
				return -1;
			}
			vnd_cpy(f.receipt_url, sizeof f.receipt_url, us);
		} else if (u)
			f.receipt_url[0] = 0;
	}
	*f0 = f;
	return 0;
}

static void ctl_stats(sim_t *s, sim_ans_t *ans)
{
	buf_t *b = &ans->body;
	buf_puts(b, "{\"vendors\":{");
	for (size_t i = 0; i < s->nv; i++) {
		sim_vendor_t *sv = &s->vs[i];
		if (i)
			buf_putc(b, ',');
		buf_json_str(b, sv->v->name, strlen(sv->v->name));
		pthread_mutex_lock(&sv->ids.mu);
		buf_printf(b,
		           ":{\"requests\":%llu,\"accepted\":%llu,\"unique_ids\":%zu,\"duplicate_count\":%llu,"
		           "\"duplicate_ids\":[",
		           (unsigned long long)atomic_load(&sv->requests),
		           (unsigned long long)atomic_load(&sv->accepted), sv->ids.n,
		           (unsigned long long)sv->ids.dup_count);
		for (size_t k = 0; k < sv->ids.ndups; k++) {
			if (k)
				buf_putc(b, ',');
			buf_json_str(b, sv->ids.dups[k], strlen(sv->ids.dups[k]));
		}
		pthread_mutex_unlock(&sv->ids.mu);
		/* "per_second": [[unix second, accepted], ...] oldest first, last SIM_SECS seconds */
		buf_puts(b, "],\"per_second\":[");
		int64_t now = clock_wall_ms() / 1000, first = 1;
		pthread_mutex_lock(&sv->secmu);
		for (int64_t sec = now - SIM_SECS + 1; sec <= now; sec++) {
			size_t k = (size_t)(sec % SIM_SECS);
			if (sv->sec_key[k] != sec || !sv->sec_count[k])
				continue;
			buf_printf(b, "%s[%lld,%llu]", first ? "" : ",", (long long)sec,
			           (unsigned long long)sv->sec_count[k]);
			first = 0;
		}
		pthread_mutex_unlock(&sv->secmu);
		buf_puts(b, "]}");
	}
	buf_puts(b, "}}");
	ans->status = 200;
	ans->ctype = "application/json";
}

/* one email vendor's counts for GET /_sim/email */
static void email_counts(sim_vendor_t *sv, buf_t *b)
{
	buf_printf(b,
	           "{\"accepted\":%llu,\"subs_applied\":%llu,\"unsub_checked\":%llu,"
	           "\"unsub_ok\":%llu,\"unreplaced\":%llu}",
	           (unsigned long long)atomic_load(&sv->accepted),
	           (unsigned long long)atomic_load(&sv->subs_applied),
	           (unsigned long long)atomic_load(&sv->unsub_checked),
	           (unsigned long long)atomic_load(&sv->unsub_ok),
	           (unsigned long long)atomic_load(&sv->unreplaced));
}

/* one email vendor's digests for GET /_sim/email/digests */
static void email_digests(sim_vendor_t *sv, buf_t *b) { sim_digests_json(&sv->dg, b); }

/* {"vendors":{"<email vendor>":<what fn writes>,...}} */
static void ctl_email_vendors(sim_t *s, sim_ans_t *ans, void (*fn)(sim_vendor_t *, buf_t *))
{
	buf_t *b = &ans->body;
	buf_puts(b, "{\"vendors\":{");
	int first = 1;
	for (size_t i = 0; i < s->nv; i++) {
		sim_vendor_t *sv = &s->vs[i];
		if (sv->kind != SIM_SENDGRID && sv->kind != SIM_MAILGUN)
			continue;
		if (!first)
			buf_putc(b, ',');
		first = 0;
		buf_json_str(b, sv->v->name, strlen(sv->v->name));
		buf_putc(b, ':');
		fn(sv, b);
	}
	buf_puts(b, "}}");
	ans->status = 200;
	ans->ctype = "application/json";
}

/* GET /_sim/ticks: per vendor, [tick, requests arrived, messages accepted] for every 50 ms
 * tick (unix ms / 50) of the last 409.6 s with any, oldest first */
static void ctl_ticks(sim_t *s, sim_ans_t *ans)
{
	buf_t *b = &ans->body;
	buf_printf(b, "{\"tick_ms\":%d,\"vendors\":{", SIM_TICK_MS);
	int64_t now = clock_wall_ms() / SIM_TICK_MS;
	for (size_t i = 0; i < s->nv; i++) {
		sim_vendor_t *sv = &s->vs[i];
		buf_puts(b, i ? "," : "");
		buf_json_str(b, sv->v->name, strlen(sv->v->name));
		buf_puts(b, ":[");
		int first = 1;
		pthread_mutex_lock(&sv->secmu);
		for (int64_t t = now - SIM_TICKS + 1; t <= now; t++) {
			size_t k = (size_t)(t % SIM_TICKS);
			if (sv->tick_key[k] != t || !(sv->tick_req[k] | sv->tick_acc[k]))
				continue;
			buf_printf(b, "%s[%lld,%u,%u]", first ? "" : ",", (long long)t,
			           (unsigned)sv->tick_req[k], (unsigned)sv->tick_acc[k]);
			first = 0;
		}
		pthread_mutex_unlock(&sv->secmu);
		buf_putc(b, ']');
	}
	buf_puts(b, "}}");
	ans->status = 200;
	ans->ctype = "application/json";
}

static void ctl_reset(sim_t *s, sim_ans_t *ans)
{
	for (size_t i = 0; i < s->nv; i++) {
		sim_vendor_t *sv = &s->vs[i];
		pthread_mutex_lock(&sv->ids.mu);
		atomic_store(&sv->requests, 0);
		atomic_store(&sv->accepted, 0);
		atomic_store(&sv->subs_applied, 0);
		atomic_store(&sv->unsub_checked, 0);
		atomic_store(&sv->unsub_ok, 0);
		atomic_store(&sv->unreplaced, 0);
		sim_ids_clear(&sv->ids);
		pthread_mutex_unlock(&sv->ids.mu);
		pthread_mutex_lock(&sv->dg.mu);
		sim_digests_clear(&sv->dg);
		pthread_mutex_unlock(&sv->dg.mu);
		pthread_mutex_lock(&sv->secmu);
		memset(sv->sec_key, 0, sizeof sv->sec_key);
		memset(sv->sec_count, 0, sizeof sv->sec_count);
		memset(sv->tick_key, 0, sizeof sv->tick_key);
		pthread_mutex_unlock(&sv->secmu);
	}
	atomic_store(&s->wh_sent, 0);
	atomic_store(&s->wh_failed, 0);
	atomic_store(&s->wh_dropped, 0);
	ans->status = 200;
	ans->ctype = "application/json";
	buf_puts(&ans->body, "{\"ok\":true}");
	log_info("event=sim_reset");
}

static void ctl_config_get(sim_t *s, sim_ans_t *ans)
{
	buf_t *b = &ans->body;
	buf_puts(b, "{\"vendors\":{");
	for (size_t i = 0; i < s->nv; i++) {
		sim_fault_t f;
		sim_fault_get(&s->vs[i], &f);
		if (i)
			buf_putc(b, ',');
		buf_json_str(b, s->vs[i].v->name, strlen(s->vs[i].v->name));
		buf_putc(b, ':');
		fault_json(&f, b);
	}
	buf_puts(b, "}}");
	ans->status = 200;
	ans->ctype = "application/json";
}

static void ctl_error(sim_ans_t *ans, unsigned st, const char *msg)
{
	ans->status = st;
	ans->ctype = "application/json";
	buf_reset(&ans->body);
	buf_puts(&ans->body, "{\"error\":");
	buf_json_str(&ans->body, msg, strlen(msg));
	buf_putc(&ans->body, '}');
}

static void ctl_config_post(sim_t *s, sim_req_t *rq, sim_ans_t *ans)
{
	json_error_t je;
	json_t *o = json_loadb(rq->body ? rq->body : "", rq->bodylen, 0, &je);
	char err[300];
	if (!json_is_object(o)) {
		snprintf(err, sizeof err, "/_sim/config: body must be a JSON object (line %d: %.100s)",
		         je.line, je.text);
		ctl_error(ans, 400, err);
		json_decref(o);
		return;
	}
	const char *name = json_string_value(json_object_get(o, "vendor"));
	if (json_object_get(o, "vendor") && !name) {
		ctl_error(ans, 400, "/_sim/config: \"vendor\" must be a vendor name");
		json_decref(o);
		return;
	}
	size_t hit = 0;
	for (size_t i = 0; i < s->nv; i++) {
		sim_vendor_t *sv = &s->vs[i];
		if (name && strcmp(name, sv->v->name))
			continue;
		pthread_mutex_lock(&sv->fmu);
		int rc = fault_apply(&sv->f, o, err, sizeof err);
		pthread_mutex_unlock(&sv->fmu);
		if (rc) {
			char e2[400];
			snprintf(e2, sizeof e2, "/_sim/config: %s", err);
			ctl_error(ans, 400, e2);
			json_decref(o);
			return;
		}
		hit++;
	}
	if (!hit) {
		snprintf(err, sizeof err, "/_sim/config: no vendor named \"%.80s\" in the config",
		         name);
		ctl_error(ans, 404, err);
		json_decref(o);
		return;
	}
	char *dump = json_dumps(o, JSON_COMPACT);
	log_info("event=sim_config vendor=%s settings=%s", name ? name : "*", dump ? dump : "?");
	free(dump);
	json_decref(o);
	ctl_config_get(s, ans);
}

static void ctl_keys(sim_t *s, sim_ans_t *ans)
{
	buf_t *b = &ans->body;
	buf_puts(b, "{\"sendgrid\":{");
	int first = 1;
	for (size_t i = 0; i < s->nv; i++) {
		if (s->vs[i].kind != SIM_SENDGRID)
			continue;
		if (!first)
			buf_putc(b, ',');
		first = 0;
		buf_json_str(b, s->vs[i].v->name, strlen(s->vs[i].v->name));
		buf_putc(b, ':');
		buf_json_str(b, s->vs[i].sg_pub, strlen(s->vs[i].sg_pub));
	}
	buf_puts(b, "}}");
	ans->status = 200;
	ans->ctype = "application/json";
}

static void ctl_receipts(sim_t *s, sim_ans_t *ans)
{
	pthread_mutex_lock(&s->wmu);
	size_t queued = s->wq_n;
	pthread_mutex_unlock(&s->wmu);
	pthread_mutex_lock(&s->mu);
	size_t sched = s->nheap;
	pthread_mutex_unlock(&s->mu);
	buf_printf(&ans->body,
	           "{\"sent\":%llu,\"failed\":%llu,\"retried\":%llu,\"dropped\":%llu,"
	           "\"scheduled\":%zu,\"sending\":%zu}",
	           (unsigned long long)atomic_load(&s->wh_sent),
	           (unsigned long long)atomic_load(&s->wh_failed),
	           (unsigned long long)atomic_load(&s->wh_retried),
	           (unsigned long long)atomic_load(&s->wh_dropped), sched, queued);
	ans->status = 200;
	ans->ctype = "application/json";
}

/* POST /_sim/clock {"advance_s": N}: the signing clock (sim_now_s) moves N seconds on
 * (|N| <= 30 days), so a test sees a retry sent "later" without waiting for it. */
static void ctl_clock(sim_t *s, sim_req_t *rq, sim_ans_t *ans)
{
	json_t *j = json_loadb(rq->body ? rq->body : "", rq->bodylen, 0, NULL);
	json_t *a = json_object_get(j, "advance_s");
	ans->ctype = "application/json";
	if (!json_is_integer(a) || json_object_size(j) != 1 || json_integer_value(a) > 2592000 ||
	    json_integer_value(a) < -2592000) {
		json_decref(j);
		ctl_error(ans, 400, "/_sim/clock wants {\"advance_s\": N} (seconds, |N| <= 2592000)");
		return;
	}
	atomic_fetch_add(&s->clock_advance_s, (int_fast64_t)json_integer_value(a));
	json_decref(j);
	ans->status = 200;
	buf_printf(&ans->body, "{\"now_s\":%lld}", (long long)sim_now_s(s));
}

static int by_name(sim_vendor_t *sv, const void *name) { return !strcmp(sv->v->name, name); }

/* POST /_sim/inbound: a signed inbound message (Twilio, Vonage) or unsubscribe (SendGrid, Mailgun) */
static void ctl_inbound(sim_t *s, sim_req_t *rq, sim_ans_t *ans)
{
	json_t *j = json_loadb(rq->body, rq->bodylen, 0, NULL);
	const char *name = json_string_value(json_object_get(j, "vendor"));
	const char *from = json_string_value(json_object_get(j, "from"));
	const char *body = json_string_value(json_object_get(j, "body"));
	const char *to = json_string_value(json_object_get(j, "to"));
	const char *url = json_string_value(json_object_get(j, "url"));
	sim_vendor_t *sv = NULL;
	for (int k = 0; name && !sv && k < 4; k++)
		sv = sim_find(s, k, by_name, name);
	ans->ctype = "application/json";
	if (!json_is_object(j) || !sv || !from) {
		ans->status = 400;
		buf_puts(&ans->body,
		         "{\"error\":\"/_sim/inbound wants {\\\"vendor\\\":<configured vendor name>,"
		         "\\\"from\\\":<address>,\\\"body\\\":\\\"STOP\\\"} (to, url optional)\"}");
		json_decref(j);
		return;
	}
	if (!body)
		body = "STOP";
	if (!to)
		to = sv->v->nsenders && sv->v->senders[0].from ? sv->v->senders[0].from
		                                               : "+15005550006";
	sim_fault_t f;
	sim_fault_get(sv, &f);
	char ub[600];
	const char *leaf = sv->kind == SIM_TWILIO || sv->kind == SIM_VONAGE ? "inbound" : "events";
	if (!url)
		url = sim_hook_url(s, sv, &f, leaf, ub, sizeof ub);
	if (!url) {
		ans->status = 400;
		buf_puts(&ans->body, "{\"error\":\"no webhook URL: set tracker.public_url in the config or "
		                     "\\\"url\\\" here\"}");
		json_decref(j);
		return;
	}
	static void (*const inbound[4])(sim_t *, sim_vendor_t *, const char *, const char *,
	                                const char *,
	                                const char *) = {sim_twilio_inbound, sim_vonage_inbound,
	                                                 sim_sendgrid_inbound, sim_mailgun_inbound};
	inbound[sv->kind](s, sv, url, from, to, body);
	ans->status = 200;
	buf_puts(&ans->body, "{\"queued\":true,\"url\":");
	buf_json_str(&ans->body, url, strlen(url));
	buf_putc(&ans->body, '}');
	json_decref(j);
}

static void route(sim_t *s, sim_req_t *rq, sim_ans_t *ans)
{
	const char *u = rq->url;
	int post = !strcmp(rq->method, "POST"), get = !strcmp(rq->method, "GET");
	if (!strncmp(u, "/_sim/", 6)) {
		const char *c = u + 6;
		if (!strcmp(c, "stats") && get)
			ctl_stats(s, ans);
		else if (!strcmp(c, "ticks") && get) /* per 50 ms: requests and acceptances */
			ctl_ticks(s, ans);
		else if (!strcmp(c, "email") && get) /* what the recipients would have received */
			ctl_email_vendors(s, ans, email_counts);
		else if (!strcmp(c, "email/digests") && get) /* the digest of what each one read */
			ctl_email_vendors(s, ans, email_digests);
		else if (!strcmp(c, "reset") && post)
			ctl_reset(s, ans);
		else if (!strcmp(c, "config") && get)
			ctl_config_get(s, ans);
		else if (!strcmp(c, "config") && post)
			ctl_config_post(s, rq, ans);
		else if (!strcmp(c, "keys") && get)
			ctl_keys(s, ans);
		else if (!strcmp(c, "receipts") && get)
			ctl_receipts(s, ans);
		else if (!strcmp(c, "inbound") && post)
			ctl_inbound(s, rq, ans);
		else if (!strcmp(c, "clock") && post)
			ctl_clock(s, rq, ans);
		else
			ctl_error(ans, 404,
			          "no such control endpoint (stats, ticks, email, email/digests, reset, config, keys, "
			          "receipts, inbound, clock)");
		return;
	}
	char acct[128];
	if (!strncmp(u, "/2010-04-01/Accounts/", 21)) {
		const char *a = u + 21, *sl = strchr(a, '/');
		if (sl && (size_t)(sl - a) < sizeof acct && !strncmp(sl, "/Messages", 9)) {
			memcpy(acct, a, (size_t)(sl - a));
			acct[sl - a] = 0;
			sim_api_twilio(s, rq, acct, sl, ans);
			return;
		}
	} else if (!strcmp(u, "/sms/json") && (post || get)) {
		sim_api_vonage(s, rq, ans);
		return;
	} else if (!strncmp(u, "/v3/", 4)) {
		/* SendGrid and Mailgun share /v3/: Mailgun's paths name a domain (a dot) or
		 * come with Basic credentials, SendGrid's with a Bearer key */
		const char *a = u + 4, *sl = strchr(a, '/'),
		           *auth = MHD_lookup_connection_value(rq->con, MHD_HEADER_KIND,
		                                               "Authorization");
		int mailgun = auth ? !strncasecmp(auth, "Basic ", 6)
		                   : sl && memchr(a, '.', (size_t)(sl - a)) != NULL;
		if (!strcmp(u, "/v3/mail/send") && post) {
			sim_api_sendgrid(s, rq, ans);
			return;
		}
		if (mailgun && sl && (size_t)(sl - a) < sizeof acct && !strcmp(sl, "/messages") &&
		    post) {
			memcpy(acct, a, (size_t)(sl - a));
			acct[sl - a] = 0;
			sim_api_mailgun(s, rq, acct, ans);
			return;
		}
		int known = !strcmp(u, "/v3/mail/send") || (mailgun && sl && !strcmp(sl, "/messages"));
		ans->status = known ? 405 : 404;
		ans->ctype = "application/json";
		if (mailgun)
			buf_puts(&ans->body, known ? "{\"message\":\"Method Not Allowed\"}"
			                           : "{\"message\":\"Not Found\"}");
		else
			buf_puts(&ans->body,
			         known ? "{\"errors\":[{\"field\":null,\"message\":\"method not allowed\"}]}"
			               : "{\"errors\":[{\"field\":null,\"message\":\"resource not found\"}]}");
		return;
	}
	/* anything else: Twilio's shape (/2010-04-01/…), else a plain JSON 404 */
	ans->status = 404;
	ans->ctype = "application/json";
	if (!strncmp(u, "/2010-04-01/", 12))
		buf_puts(&ans->body,
		         "{\"code\":20404,\"message\":\"The requested resource was not found\","
		         "\"more_info\":\"https://www.twilio.com/docs/errors/20404\",\"status\":404}");
	else
		buf_puts(&ans->body, "{\"error\":\"not found\"}");
}

/* each vendor's own settings (sim_setup_fn) */
static int vendor_setup(sim_vendor_t *sv, char *err, size_t errlen)
{
	if (sv->kind == SIM_SENDGRID)
		return sim_sendgrid_setup(sv, err, errlen);
	if (sv->kind == SIM_VONAGE)
		return sim_vonage_setup(sv, err, errlen);
	return 0;
}

sim_t *sim_new(const cfg_t *c, int port, int threads, char *err, size_t errlen)
{
	return sim_srv_new(c, port, threads, vendor_setup, route, err, errlen);
}
