/* drill.c -- `tocsin drill`: a private copy of the configuration on the emulator, its own broker,
 * tracker and dispatchers (core/sup), and one real blast per scenario with a fault injected. */
#include "core/capacity.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/cmd.h"
#include "core/drill.h"
#include "core/num.h"
#include "core/runfile.h"
#include "core/sig.h"
#include "core/sup.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define DRILL_BUCKET_MS 250
#define DRILL_PRE_MS 4000     /* steady traffic before a fault */
#define DRILL_HTTP_MAX (64u << 20)
#define DRILL_TOKEN "drill-control-token-not-a-secret"
#define DRILL_SECRET "drill-not-a-secret-0123456789abcdef0123456789abcdef"

/* The scenarios, in the order they run. */
typedef enum { SC_CAPACITY, SC_503, SC_SLOW, SC_429, SC_HANG, SC_KILL, SC_CANCEL, SC_STOP, SC__COUNT } sc_kind_t;
static const struct {
	const char *name, *title;
} sc_info[SC__COUNT] = {
    {"capacity", "the whole audience at the configured limits"},
    {"503", "the primary vendor answers 503 to everything"},
    {"slow", "the primary vendor answers slower than its SLA p95_ms"},
    {"429", "the primary vendor throttles 90% of requests (429, Retry-After 1 s)"},
    {"hang", "the primary vendor stops answering (connections hang)"},
    {"kill", "the dispatcher is SIGKILLed mid-blast and started again"},
    {"cancel", "the campaign is cancelled mid-blast"},
    {"stop", "the last 50 recipients reply STOP mid-blast"},
};
#define DRILL_STOPPERS 50

typedef struct sla {
	double p95_ms, window_s, min_open_s, probe_windows, ramp_s;
} sla_t;

typedef struct drill {
	const cfg_t *user;
	char self[4096], dir[2048], cfgpath[2200], csv[2200], campaign[2200];
	char sim[256], trk[256];
	cfg_t probe;     /* var_dir = dir, for run files */
	json_t *doc;     /* the drill's configuration document */
	sup_t *sup;
	int k_dsp, k_launch;
	long audience;
	int segments, latency_ms, want[SC__COUNT];
	const char *primary, *secondary, *pool;
	sla_t sla;
	double rate;     /* messages/s to size blasts: measured by capacity, else the estimate */
	const char *inject; /* TOCSIN_DRILL_INJECT, test only */
	int timeout_ms;     /* the primary's */
	int order[SC__COUNT], norder; /* scenarios in the order asked */
} drill_t;

/* ---- HTTP to the drill's own emulator and tracker ---- */

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
	return buf_append(ud, p, sz * n) ? 0 : sz * n;
}

/* method GET or POST (body JSON); the answer parsed, or NULL. */
static json_t *http_json(const char *method, const char *url, const char *body, int auth)
{
	CURL *e = curl_easy_init();
	if (!e)
		return NULL;
	buf_t b;
	buf_init(&b, DRILL_HTTP_MAX);
	struct curl_slist *h = NULL;
	if (auth)
		h = curl_slist_append(h, "Authorization: Bearer " DRILL_TOKEN);
	if (body)
		h = curl_slist_append(h, "Content-Type: application/json");
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
	if (body)
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
	else if (!strcmp(method, "POST"))
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 10000L);
	long code = 0;
	CURLcode rc = curl_easy_perform(e);
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_cleanup(e);
	curl_slist_free_all(h);
	json_t *j = rc == CURLE_OK && code / 100 == 2 && b.p ? json_loads(b.p, 0, NULL) : NULL;
	buf_free(&b);
	return j;
}

static json_t *sim_get(drill_t *d, const char *path)
{
	char url[512];
	snprintf(url, sizeof url, "http://%s%s", d->sim, path);
	return http_json("GET", url, NULL, 0);
}

static int sim_post(drill_t *d, const char *path, const char *body)
{
	char url[512];
	snprintf(url, sizeof url, "http://%s%s", d->sim, path);
	json_t *j = http_json("POST", url, body, 0);
	json_decref(j);
	if (!j)
		fprintf(stderr, "tocsin drill: the emulator refused %s %s\n", path, body ? body : "");
	return j ? 0 : -1;
}

static json_t *trk_get(drill_t *d, const char *path)
{
	char url[1024];
	snprintf(url, sizeof url, "http://%s%s", d->trk, path);
	return http_json("GET", url, NULL, 0);
}

static long jl(const json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	return json_is_integer(v) ? (long)json_integer_value(v) : 0;
}

/* ---- the private configuration ---- */

int drill_check_private(const json_t *doc, const char *sim, char *err, size_t errlen)
{
	char want[300];
	snprintf(want, sizeof want, "http://%s", sim);
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(doc, "vendors"), i, v)
	{
		const char *u = json_string_value(json_object_get(v, "base_url"));
		if (!u || strcmp(u, want)) {
			snprintf(err, errlen, "vendors[%zu].base_url would point at %.200s, not the drill's emulator %s",
			         i, u ? u : "(none)", want);
			return -1;
		}
	}
	const char *pu = json_string_value(json_object_get(json_object_get(doc, "tracker"), "public_url"));
	if (pu && strncmp(pu, "http://127.0.0.1:", 17)) {
		snprintf(err, errlen, "tracker.public_url would point at %.200s, not 127.0.0.1", pu);
		return -1;
	}
	json_t *k = json_object_get(doc, "kafka");
	if (k && (!json_is_object(k) || json_object_size(k))) {
		snprintf(err, errlen, "kafka would name a cluster; the drill runs only on its own embedded broker");
		return -1;
	}
	return 0;
}

/* Every "*_env" of o (recursively) names a drill-only variable holding a placeholder, and the
 * variable it named is removed from our environment, so no real secret reaches a child. */
static void private_envs(json_t *o, int *n)
{
	const char *k;
	json_t *v;
	size_t i;
	if (json_is_array(o)) {
		json_array_foreach(o, i, v) private_envs(v, n);
		return;
	}
	void *tmp;
	json_object_foreach_safe(o, tmp, k, v)
	{
		size_t kl = strlen(k);
		if (!strcmp(k, "sim_signing_key_env")) { /* a PEM key: the emulator makes its own */
			json_object_del(o, k);
		} else if (kl > 4 && !strcmp(k + kl - 4, "_env") && json_is_string(v)) {
			char name[64];
			snprintf(name, sizeof name, "TOCSIN_DRILL_SECRET_%d", (*n)++);
			unsetenv(json_string_value(v));
			setenv(name, DRILL_SECRET, 1);
			json_object_set_new(o, k, json_string(name));
		} else if (json_is_object(v) || json_is_array(v)) {
			private_envs(v, n);
		}
	}
}

/* The drill's document from the user's: own var_dir, embedded broker, every vendor on the
 * emulator, the tracker on a free port, placeholders for every secret. */
static json_t *private_doc(drill_t *d)
{
	json_t *doc = json_deep_copy(d->user->root);
	json_object_set_new(doc, "var_dir", json_string(d->dir));
	json_object_set_new(doc, "kafka", json_object());
	int n = 0;
	private_envs(doc, &n);
	json_t *t = json_object_get(doc, "tracker");
	if (!json_is_object(t)) {
		t = json_object();
		json_object_set_new(doc, "tracker", t);
	}
	json_object_del(t, "db");
	json_object_del(t, "allowed_hosts");
	json_object_del(t, "control_tokens");
	json_object_set_new(t, "listen", json_string("127.0.0.1:0"));
	json_object_set_new(t, "control_token_env", json_string("TOCSIN_DRILL_CONTROL"));
	setenv("TOCSIN_DRILL_CONTROL", DRILL_TOKEN, 1);
	json_object_del(json_object_get(doc, "dispatcher"), "metrics_listen");
	/* the drill sends now: nothing held for quiet hours (it blasts SMS only) */
	json_t *q = json_object_get(doc, "quiet_hours");
	if (!json_is_object(q)) {
		q = json_object();
		json_object_set_new(doc, "quiet_hours", q);
	}
	json_object_set_new(q, "sms", json_pack("{s:b}", "enabled", 0));
	return doc;
}

static int write_doc(drill_t *d)
{
	char url[300];
	snprintf(url, sizeof url, "http://%s", d->sim);
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(d->doc, "vendors"), i, v)
	    json_object_set_new(v, "base_url", json_string(url));
	snprintf(url, sizeof url, "http://%s", d->trk);
	json_object_set_new(json_object_get(d->doc, "tracker"), "public_url", json_string(url));
	char err[600];
	if (drill_check_private(d->doc, d->sim, err, sizeof err)) {
		fprintf(stderr, "tocsin drill: refusing to run: %s\n", err);
		return -1;
	}
	if (json_dump_file(d->doc, d->cfgpath, JSON_INDENT(1))) {
		fprintf(stderr, "tocsin drill: cannot write %s\n", d->cfgpath);
		return -1;
	}
	/* what every child will load, checked again as they will read it */
	cfg_t *c = cfg_load(d->cfgpath, err, sizeof err);
	if (!c) {
		fprintf(stderr, "tocsin drill: %s\n", err);
		return -1;
	}
	int bad = 0;
	snprintf(url, sizeof url, "http://%s", d->sim);
	for (size_t k = 0; k < c->nvendors; k++)
		if (strcmp(c->vendors[k].base_url, url)) {
			fprintf(stderr, "tocsin drill: refusing to run: vendor %s would point at %s\n",
			        c->vendors[k].name, c->vendors[k].base_url);
			bad = 1;
		}
	cfg_free(c);
	return bad ? -1 : 0;
}

/* ---- one scenario ---- */

typedef struct run {
	sc_kind_t kind;
	char id[64];
	long n;             /* recipients */
	int64_t t0, first, fault, clear; /* wall ms; 0 = not (yet) */
	int restarted;
} run_t;

/* The phone number of synthetic recipient i (E.164, valid US numbers). */
static void phone_of(long i, char *out, size_t outlen)
{
	static const int areas[] = {202, 212, 303, 415, 617, 718, 312, 512, 213, 404, 305, 206};
	static const int exch[] = {234, 345, 456, 567, 678, 789, 432, 543, 654, 765};
	snprintf(out, outlen, "+1%d%d%04ld", areas[i / 100000 % 12], exch[i / 10000 % 10], i % 10000);
}

static int write_audience(drill_t *d, run_t *r)
{
	FILE *f = fopen(d->csv, "w");
	if (!f)
		return -1;
	fputs("first_name,phone\n", f);
	char ph[32];
	for (long i = 0; i < r->n; i++) {
		phone_of(i, ph, sizeof ph);
		fprintf(f, "Pat%ld,%s\n", i, ph);
	}
	if (fclose(f))
		return -1;
	/* a text of exactly `segments` GSM-7 segments for 8-digit names: 160, else 153 per part */
	int len = d->segments == 1 ? 150 : 153 * d->segments - 10;
	char text[2048] = "Hi {{first_name}}, ";
	size_t tl = strlen(text);
	for (; (int)tl < len - 8 && tl < sizeof text - 1; tl++)
		text[tl] = "drill please ignore "[tl % 20];
	text[tl] = 0;
	json_t *c = json_pack("{s:s,s:s,s:{s:s,s:s},s:{s:s,s:s},s:i}", "id", r->id, "name", r->id,
	                      "audience", "path", d->csv, "phone", "phone", "sms", "sender", d->pool,
	                      "template", text, "expires_in_s", 3600);
	int rc = json_dump_file(c, d->campaign, 0);
	json_decref(c);
	return rc;
}

static void sim_defaults(drill_t *d)
{
	char b[256];
	snprintf(b, sizeof b,
	         "{\"reset\":true,\"receipts\":{\"enabled\":false},\"latency_ms\":{\"median\":%d,\"tail\":%d}}",
	         d->latency_ms, 2 * d->latency_ms);
	sim_post(d, "/_sim/config", b);
}

static int fault_apply(drill_t *d, run_t *r, int on)
{
	char b[256];
	switch (r->kind) {
	case SC_503:
	case SC_HANG:
		snprintf(b, sizeof b, "{\"vendor\":\"%s\",\"outage\":\"%s\"}", d->primary,
		         on ? (r->kind == SC_503 ? "503" : "hang") : "none");
		return sim_post(d, "/_sim/config", b);
	case SC_SLOW: {
		/* median twice the SLA's p95; the slowest answers (up to twice the tail) still inside
		 * timeout_ms, so nothing times out: that is the hang scenario */
		double med = 2 * d->sla.p95_ms, tail = d->timeout_ms * 0.45;
		if (tail < med)
			tail = med;
		snprintf(b, sizeof b, "{\"vendor\":\"%s\",\"latency_ms\":{\"median\":%.0f,\"tail\":%.0f}}",
		         d->primary, on ? med : d->latency_ms, on ? tail : 2 * d->latency_ms);
		return sim_post(d, "/_sim/config", b);
	}
	case SC_429:
		snprintf(b, sizeof b, "{\"vendor\":\"%s\",\"throttle_rate\":%s,\"retry_after_s\":1}",
		         d->primary, on ? "0.9" : "0");
		return sim_post(d, "/_sim/config", b);
	case SC_KILL:
		return on ? sup_kill(d->sup, d->k_dsp, SIGKILL) : 0;
	case SC_STOP:
		/* the last recipients of the file (not sent yet) reply STOP, the real way: a signed
		 * inbound webhook from the emulator to the tracker, then tocsin.optouts */
		for (long i = r->n - DRILL_STOPPERS; on && i < r->n; i++) {
			char ph[32];
			phone_of(i < 0 ? 0 : i, ph, sizeof ph);
			snprintf(b, sizeof b, "{\"vendor\":\"%s\",\"from\":\"%s\",\"body\":\"STOP\"}", d->primary, ph);
			if (sim_post(d, "/_sim/inbound", b))
				return -1;
		}
		return 0;
	case SC_CANCEL:
		if (on) {
			char url[512];
			snprintf(url, sizeof url, "http://%s/api/campaigns/%s/cancel", d->trk, r->id);
			json_t *j = http_json("POST", url, NULL, 1);
			json_decref(j);
			return j ? 0 : -1;
		}
		return 0;
	default: return 0;
	}
}

/* how long the fault lasts: long enough for the SLA to judge it */
static int64_t fault_ms(drill_t *d, sc_kind_t k)
{
	double w = d->sla.window_s * 1000;
	switch (k) {
	case SC_503: case SC_HANG: return (int64_t)(w + 3000);
	case SC_SLOW: return (int64_t)(2 * w + 3 * d->sla.p95_ms + 3000);
	case SC_429: return 6000;
	default: return 0;
	}
}

/* expected time from clearing to full traffic again: open, probe windows, ramp */
static int64_t recover_budget_ms(drill_t *d, sc_kind_t k)
{
	if (k == SC_KILL)
		return 15000; /* the group notices the dead member at session.timeout.ms (10 s) */
	if (k == SC_CANCEL || k == SC_STOP || k == SC_CAPACITY)
		return 0;
	return (int64_t)((d->sla.min_open_s + d->sla.probe_windows * d->sla.window_s + d->sla.ramp_s) * 1000) + 3000;
}

/* The SLA state the tracker shows for vendor name ("" when it has none yet) into st. */
static const char *vendor_state(drill_t *d, const char *name, char *st, size_t stlen)
{
	json_t *j = trk_get(d, "/api/vendors"), *v;
	size_t i;
	st[0] = 0;
	json_array_foreach(json_object_get(j, "vendors"), i, v)
	    if (!strcmp(json_string_value(json_object_get(v, "name")) ?: "", name))
	        snprintf(st, stlen, "%s", json_string_value(json_object_get(v, "state")) ?: "");
	json_decref(j);
	return st;
}

/* A scenario starts from a healthy primary: one the last scenario left open or probing is
 * drained and undrained (what RUNBOOK section 1 does once a vendor is fixed). */
static void primary_reset(drill_t *d)
{
	char st[32], now[32];
	vendor_state(d, d->primary, st, sizeof st);
	if (!st[0] || !strcmp(st, "healthy"))
		return;
	char url[512];
	for (int i = 0; i < 2; i++) {
		snprintf(url, sizeof url, "http://%s/api/vendors/%s/%s", d->trk, d->primary, i ? "undrain" : "drain");
		json_decref(http_json("POST", url, NULL, 1));
		for (int t = 0; t < 50 && strcmp(vendor_state(d, d->primary, now, sizeof now), i ? "healthy" : "drained"); t++)
			usleep(100000);
	}
	printf("  (%s was %s after the last scenario: drained and undrained; now %s)\n", d->primary, st,
	       vendor_state(d, d->primary, now, sizeof now));
	fflush(stdout);
}

static long finals_of(json_t *c)
{
	long n = 0;
	const char *k;
	json_t *v;
	json_object_foreach(json_object_get(c, "states"), k, v)
	    if (strcmp(k, "queued") && strcmp(k, "retrying"))
	        n += (long)json_integer_value(v);
	return n;
}

/* Run the blast of r, injecting its fault; 0 when every message ended (or time ran out: the
 * counts say so), -1 when a process of the drill stopped. */
static int blast(drill_t *d, run_t *r)
{
	sim_defaults(d);
	sim_post(d, "/_sim/reset", NULL);
	if (d->inject && !strncmp(d->inject, "lose:", 5) && !strcmp(d->inject + 5, sc_info[r->kind].name)) {
		char b[128];
		snprintf(b, sizeof b, "{\"vendor\":\"%s\",\"lose\":1}", d->primary);
		sim_post(d, "/_sim/config", b);
	}
	if (write_audience(d, r)) {
		fprintf(stderr, "tocsin drill: cannot write %s\n", d->csv);
		return -1;
	}
	r->t0 = clock_wall_ms();
	if (sup_restart(d->sup, d->k_launch))
		return -1;
	int64_t limit = (int64_t)(60000 + 4000.0 * r->n / (d->rate > 1 ? d->rate : 1));
	int64_t fdur = fault_ms(d, r->kind), last_print = 0;
	char path[256];
	snprintf(path, sizeof path, "/api/campaigns/%s", r->id);
	int launch_done = 0;
	char st[32];
	while (!tocsin_stop) {
		usleep(100000);
		int64_t now = clock_wall_ms();
		if (!launch_done && !sup_alive(d->sup, d->k_launch)) {
			launch_done = 1;
			if (sup_status(d->sup, d->k_launch) != 0) {
				fprintf(stderr, "tocsin drill: %s: launch failed\n", r->id);
				sup_log_tail(d->sup, d->k_launch);
				return -1;
			}
		}
		for (int i = 0; i < d->k_launch; i++)
			if (i != d->k_dsp && !sup_alive(d->sup, i)) {
				fprintf(stderr, "tocsin drill: %s stopped unexpectedly\n", sup_name(d->sup, i));
				sup_log_tail(d->sup, i);
				return -1;
			}
		if (r->kind == SC_KILL && r->fault && !r->restarted && !sup_alive(d->sup, d->k_dsp)) {
			if (sup_restart(d->sup, d->k_dsp))
				return -1;
			r->restarted = 1;
		}
		json_t *c = trk_get(d, path);
		long fin = finals_of(c);
		json_decref(c);
		if (fin > 0 && !r->first)
			r->first = now;
		/* the fault starts after DRILL_PRE_MS of traffic, with the primary healthy (a previous
		 * scenario's fault may still be wearing off) */
		if (r->kind != SC_CAPACITY && r->first && !r->fault && now - r->first >= DRILL_PRE_MS &&
		    !strcmp(vendor_state(d, d->primary, st, sizeof st), "healthy")) {
			if (fault_apply(d, r, 1))
				return -1;
			r->fault = clock_wall_ms();
			printf("  %-8s fault at %.1f s (%ld of %ld final)\n", sc_info[r->kind].name,
			       (r->fault - r->t0) / 1000.0, fin, r->n);
			fflush(stdout);
		}
		if (r->fault && !r->clear && fdur && now - r->fault >= fdur) {
			fault_apply(d, r, 0);
			r->clear = clock_wall_ms();
		}
		if (now - last_print >= 5000) {
			printf("  %-8s %ld / %ld final, %.0f s\n", sc_info[r->kind].name, fin, r->n,
			       (now - r->t0) / 1000.0);
			fflush(stdout);
			last_print = now;
		}
		if (fin >= r->n || now - r->t0 > limit)
			break;
	}
	if (r->fault && !r->clear) {
		fault_apply(d, r, 0);
		r->clear = r->kind == SC_KILL || r->kind == SC_CANCEL || r->kind == SC_STOP ? r->fault
		                                                                              : clock_wall_ms();
	}
	return tocsin_stop ? -1 : 0;
}

/* ---- what the blast did ---- */

/* Every accepted message of r from the tracker: ts_ms and vendor index into vs (appended). */
typedef struct acc {
	int64_t *ts;
	int *v;
	long n, cap;
	long stop_late;   /* SC_STOP: stoppers accepted later than 2 s after their STOP */
} acc_t;

static int vendor_ix(json_t *vs, const char *name)
{
	size_t i;
	json_t *v;
	json_array_foreach(vs, i, v) if (!strcmp(json_string_value(v), name)) return (int)i;
	json_array_append_new(vs, json_string(name));
	return (int)json_array_size(vs) - 1;
}

static void fetch_accepted(drill_t *d, run_t *r, acc_t *a, json_t *vs)
{
	char after[128] = "";
	for (int page = 0; page < 10000; page++) {
		char path[512];
		snprintf(path, sizeof path, "/api/campaigns/%s/recipients?state=accepted,sent,delivered&limit=10000%s%s",
		         r->id, after[0] ? "&after=" : "", after);
		json_t *j = trk_get(d, path), *it;
		size_t i;
		json_array_foreach(json_object_get(j, "items"), i, it)
		{
			if (a->n == a->cap) {
				a->cap = a->cap ? a->cap * 2 : 4096;
				a->ts = realloc(a->ts, a->cap * sizeof *a->ts);
				a->v = realloc(a->v, a->cap * sizeof *a->v);
			}
			a->ts[a->n] = json_integer_value(json_object_get(it, "ts_ms"));
			if (r->kind == SC_STOP && r->fault && a->ts[a->n] > r->fault + 2000) {
				const char *to = json_string_value(json_object_get(it, "to")) ?: "";
				for (long k = r->n - DRILL_STOPPERS; k < r->n; k++) {
					char ph[32];
					phone_of(k < 0 ? 0 : k, ph, sizeof ph);
					a->stop_late += !strcmp(ph, to);
				}
			}
			a->v[a->n++] = vendor_ix(vs, json_string_value(json_object_get(it, "vendor")) ?: "?");
		}
		const char *nx = json_string_value(json_object_get(j, "next"));
		int more = nx && json_array_size(json_object_get(j, "items")) > 0;
		if (more)
			snprintf(after, sizeof after, "%s", nx);
		json_decref(j);
		if (!more)
			break;
	}
}

/* The first time in the timeline at or after from_ms that vendor went healthy -> open. */
static int64_t opened_at(drill_t *d, const char *vendor, int64_t from_ms)
{
	json_t *j = trk_get(d, "/api/timeline?limit=500"), *e;
	size_t i;
	int64_t best = 0;
	json_array_foreach(json_object_get(j, "events"), i, e)
	{
		int64_t ts = json_integer_value(json_object_get(e, "ts_ms"));
		if (ts >= from_ms - 50 && !strcmp(json_string_value(json_object_get(e, "kind")) ?: "", "vendor") &&
		    !strcmp(json_string_value(json_object_get(e, "subject")) ?: "", vendor) &&
		    strstr(json_string_value(json_object_get(e, "detail")) ?: "", "-> open") && (!best || ts < best))
			best = ts;
	}
	json_decref(j);
	return best;
}

/* Per second from `from` (n seconds), the traffic on every vendor into tot and on the primary into
 * prim: requests answered (sends, failures, errors, timeouts) from the tracker's series, or for
 * a slow primary, whose answers come seconds after the requests, the messages the emulator
 * accepted per second of arrival. */
static void per_second(drill_t *d, run_t *r, int64_t from, size_t n, double *prim, double *tot)
{
	const char *k;
	json_t *v;
	if (r->kind == SC_SLOW) {
		json_t *j = sim_get(d, "/_sim/stats");
		json_object_foreach(json_object_get(j, "vendors"), k, v)
		{
			size_t i;
			json_t *p;
			json_array_foreach(json_object_get(v, "per_second"), i, p)
			{
				int64_t sec = json_integer_value(json_array_get(p, 0)) - from;
				double c = (double)json_integer_value(json_array_get(p, 1));
				if (sec >= 0 && sec < (int64_t)n) {
					tot[sec] += c;
					prim[sec] += strcmp(k, d->primary) ? 0 : c;
				}
			}
		}
		json_decref(j);
		return;
	}
	char path[256];
	snprintf(path, sizeof path, "/api/series?seconds=3600&campaign=%s", r->id);
	json_t *j = trk_get(d, path);
	int64_t off = from - json_integer_value(json_object_get(j, "from_s"));
	static const char *const f[] = {"sends", "failures", "errors", "timeouts"};
	json_object_foreach(json_object_get(j, "vendors"), k, v) for (int x = 0; x < 4; x++)
	{
		size_t i;
		json_t *c;
		json_array_foreach(json_object_get(v, f[x]), i, c)
		{
			int64_t sec = (int64_t)i - off;
			if (sec >= 0 && sec < (int64_t)n) {
				tot[sec] += json_number_value(c);
				prim[sec] += strcmp(k, d->primary) ? 0 : json_number_value(c);
			}
		}
	}
	json_decref(j);
}

/* The sum of field (e.g. "timeouts") of vendor over r's whole blast, from the tracker's series. */
static long series_total(drill_t *d, run_t *r, const char *vendor, const char *field)
{
	char path[256];
	snprintf(path, sizeof path, "/api/series?seconds=3600&campaign=%s", r->id);
	json_t *j = trk_get(d, path), *c;
	size_t i;
	double n = 0;
	json_array_foreach(json_object_get(json_object_get(json_object_get(j, "vendors"), vendor), field), i, c)
	    n += json_number_value(c);
	json_decref(j);
	return (long)n;
}

/* ms from the fault until the start of the first second from which every second with traffic,
 * while the primary is kept out (until it may be probed: opened + sla.min_open_s, or the fault
 * is cleared), had at most 1% of it on the primary; -1: never. An upper bound, within a second. */
static int64_t switched_at(drill_t *d, run_t *r, int64_t opened)
{
	int64_t end = r->clear;
	if (opened && opened + (int64_t)(d->sla.min_open_s * 1000) < end)
		end = opened + (int64_t)(d->sla.min_open_s * 1000);
	int64_t from = r->fault / 1000, last = end / 1000; /* full seconds [from, last) */
	if (last <= from)
		return -1;
	size_t n = (size_t)(last - from);
	double *prim = calloc(n, sizeof *prim), *tot = calloc(n, sizeof *tot);
	if (!prim || !tot) {
		free(prim);
		free(tot);
		return -1;
	}
	per_second(d, r, from, n, prim, tot);
	int64_t sw = -1;
	for (long sec = (long)n - 1; sec >= 0; sec--) {
		if (tot[sec] > 0 && prim[sec] * 100 > tot[sec])
			break;
		sw = (from + sec) * 1000 - r->fault;
	}
	free(prim);
	free(tot);
	return sw == -1 ? -1 : sw < 0 ? 0 : sw;
}

static int cmp_i64(const void *x, const void *y)
{
	int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
	return a < b ? -1 : a > b;
}

static json_t *ms_or_null(int64_t ms) { return ms >= 0 ? json_integer(ms) : json_null(); }

static json_t *measure(drill_t *d, run_t *r)
{
	json_t *vs = json_array();
	acc_t a = {0};
	fetch_accepted(d, r, &a, vs);
	char path[256];
	snprintf(path, sizeof path, "/api/campaigns/%s", r->id);
	json_t *c = trk_get(d, path);
	json_t *states = json_object_get(c, "states");
	long ok = jl(states, "accepted") + jl(states, "sent") + jl(states, "delivered");
	long cancelled = jl(states, "cancelled"), finals = finals_of(c);
	json_t *sim = sim_get(d, "/_sim/stats");
	long s_acc = 0, s_uniq = 0, s_dup = 0;
	const char *k;
	json_t *v;
	json_object_foreach(json_object_get(sim, "vendors"), k, v)
	{
		s_acc += jl(v, "accepted");
		s_uniq += jl(v, "unique_ids");
		s_dup += jl(v, "duplicate_count");
	}
	json_decref(sim);
	/* lost: not final, final but not sent (failed, expired...; cancelled only when cancelling),
	 * or counted accepted by the tracker but never received by the vendor */
	long suppressed = jl(states, "suppressed");
	long lost = (r->n - finals) + (finals - ok - (r->kind == SC_CANCEL ? cancelled : 0) -
	                               (r->kind == SC_STOP ? suppressed : 0)) +
	            (ok > s_uniq ? ok - s_uniq : 0);
	long twice = s_dup + (s_uniq > ok ? s_uniq - ok : 0);
	/* sent twice: only what was in flight at a kill, or a request to a slow vendor that timed
	 * out (the vendor may have taken it after all) and was sent again elsewhere */
	long bound = r->kind == SC_KILL ? d->user->max_in_flight
	             : r->kind == SC_SLOW ? series_total(d, r, d->primary, "timeouts")
	                                  : 0;

	/* the series: accepted per vendor per bucket from t0 */
	int64_t tmax = r->t0;
	for (long i = 0; i < a.n; i++)
		if (a.ts[i] > tmax)
			tmax = a.ts[i];
	long nb = (long)((tmax - r->t0) / DRILL_BUCKET_MS) + 1;
	if (nb > 20000)
		nb = 20000;
	size_t nv = json_array_size(vs);
	long *cnt = calloc((size_t)nb * (nv ? nv : 1), sizeof *cnt);
	for (long i = 0; i < a.n; i++) {
		long b = (long)((a.ts[i] - r->t0) / DRILL_BUCKET_MS);
		if (b >= 0 && b < nb)
			cnt[b * (long)nv + a.v[i]]++;
	}
	int pix = -1;
	for (size_t i = 0; i < nv; i++)
		if (!strcmp(json_string_value(json_array_get(vs, i)), d->primary))
			pix = (int)i;
	json_t *series = json_object();
	for (size_t i = 0; i < nv; i++) {
		json_t *arr = json_array();
		for (long b = 0; b < nb; b++)
			json_array_append_new(arr, json_integer(cnt[b * (long)nv + i]));
		json_object_set_new(series, json_string_value(json_array_get(vs, i)), arr);
	}
	/* sustained rate: the middle 80% of acceptances over the time they took */
	double rate = 0;
	if (a.n >= 10) {
		int64_t *ts = malloc((size_t)a.n * sizeof *ts);
		if (ts) {
			memcpy(ts, a.ts, (size_t)a.n * sizeof *ts);
			qsort(ts, (size_t)a.n, sizeof *ts, cmp_i64);
			int64_t t10 = ts[a.n / 10], t90 = ts[a.n * 9 / 10];
			if (t90 > t10)
				rate = (double)(a.n * 8 / 10) * 1000.0 / (double)(t90 - t10);
			free(ts);
		}
	}
	/* detect, switch, recover */
	int64_t detect = -1, sw = -1, recover = -1;
	if (r->fault && (r->kind == SC_503 || r->kind == SC_SLOW || r->kind == SC_HANG)) {
		int64_t op = opened_at(d, d->primary, r->fault);
		detect = op ? op - r->fault : -1;
		sw = switched_at(d, r, op);
	}
	long fb = r->fault ? (long)((r->fault - r->t0) / DRILL_BUCKET_MS) : -1;
	long cb = r->clear ? (long)((r->clear - r->t0) / DRILL_BUCKET_MS) : nb;
	/* recover: from the clearing, the first second whose traffic is back to 90% of the
	 * pre-fault level (on the primary for vendor faults; all traffic after a kill) */
	if (fb > 4 && r->kind != SC_CANCEL && r->kind != SC_STOP) {
		double pre = 0;
		long pb0 = fb - 4 * (1000 / DRILL_BUCKET_MS) > 0 ? fb - 4 * (1000 / DRILL_BUCKET_MS) : 0;
		for (long b = pb0; b < fb; b++)
			for (size_t i = 0; i < nv; i++)
				if (r->kind == SC_KILL || (int)i == pix)
					pre += cnt[b * (long)nv + i];
		pre /= (double)(fb - pb0);
		long per_s = 1000 / DRILL_BUCKET_MS;
		for (long b = cb; b + per_s <= nb && pre > 0; b++) {
			double s = 0;
			for (long x = b; x < b + per_s; x++)
				for (size_t i = 0; i < nv; i++)
					if (r->kind == SC_KILL || (int)i == pix)
						s += cnt[x * (long)nv + i];
			if (s / per_s >= 0.9 * pre) {
				recover = (b - cb) * DRILL_BUCKET_MS;
				break;
			}
		}
	}
	long after_cancel = 0;
	if (r->kind == SC_CANCEL && r->fault)
		for (long i = 0; i < a.n; i++)
			after_cancel += a.ts[i] > r->fault + 2000;

	/* limits from the primary's SLA, and the verdict */
	int64_t lim_detect = -1, lim_switch = -1;
	if (r->kind == SC_503 || r->kind == SC_HANG) {
		lim_detect = (int64_t)(d->sla.window_s * 1000 + 1000);
		lim_switch = lim_detect + 1000;
	} else if (r->kind == SC_SLOW) {
		lim_detect = (int64_t)(2 * d->sla.window_s * 1000 + 2 * d->sla.p95_ms + 1000);
		lim_switch = lim_detect + 1000;
	}
	json_t *fails = json_array();
	char msg[256];
	if (lost) {
		snprintf(msg, sizeof msg, "%ld message%s lost", lost, lost == 1 ? "" : "s");
		json_array_append_new(fails, json_string(msg));
	}
	if (twice > bound) {
		snprintf(msg, sizeof msg, "%ld sent twice (bound %ld)", twice, bound);
		json_array_append_new(fails, json_string(msg));
	}
	if (r->kind != SC_CAPACITY && !r->fault)
		json_array_append_new(fails, json_string("the fault never started (blast too short or the primary never healthy)"));
	if (lim_detect >= 0 && r->fault && (detect < 0 || detect > lim_detect)) {
		snprintf(msg, sizeof msg, "failover not detected within %lld ms", (long long)lim_detect);
		json_array_append_new(fails, json_string(msg));
	}
	if (lim_switch >= 0 && r->fault && (sw < 0 || sw > lim_switch)) {
		snprintf(msg, sizeof msg, "99%% not on the secondary within %lld ms", (long long)lim_switch);
		json_array_append_new(fails, json_string(msg));
	}
	if (a.stop_late) {
		snprintf(msg, sizeof msg, "%ld sent more than 2 s after they replied STOP", a.stop_late);
		json_array_append_new(fails, json_string(msg));
	}
	if (r->kind == SC_STOP && suppressed > DRILL_STOPPERS) {
		snprintf(msg, sizeof msg, "%ld suppressed, only %d replied STOP", suppressed, DRILL_STOPPERS);
		json_array_append_new(fails, json_string(msg));
	}
	if (after_cancel) {
		snprintf(msg, sizeof msg, "%ld sent more than 2 s after the cancel", after_cancel);
		json_array_append_new(fails, json_string(msg));
	}
	json_t *res = json_pack(
	    "{s:s,s:s,s:s,s:I,s:s,s:I,s:I,s:f,s:o,s:o,s:o,s:I,s:I,s:I,s:I,s:I,s:{s:I,s:I,s:I},"
	    "s:{s:o,s:o},s:{s:i,s:o},s:b,s:o}",
	    "name", sc_info[r->kind].name, "title", sc_info[r->kind].title, "campaign", r->id,
	    "messages", (json_int_t)r->n, "primary", d->primary, "elapsed_ms",
	    (json_int_t)((tmax > r->t0 ? tmax : clock_wall_ms()) - r->t0), "accepted", (json_int_t)ok,
	    "rate_per_s", round(rate * 10) / 10, "detect_ms", ms_or_null(detect), "switch_ms",
	    ms_or_null(sw), "recover_ms", ms_or_null(recover), "lost", (json_int_t)lost, "twice",
	    (json_int_t)twice, "twice_bound", (json_int_t)bound, "cancelled", (json_int_t)cancelled,
	    "after_cancel", (json_int_t)after_cancel, "emulator", "accepted", (json_int_t)s_acc,
	    "unique", (json_int_t)s_uniq, "duplicates", (json_int_t)s_dup, "limits", "detect_ms",
	    ms_or_null(lim_detect), "switch_ms", ms_or_null(lim_switch), "series", "bucket_ms",
	    DRILL_BUCKET_MS, "vendors", series, "pass", json_array_size(fails) == 0, "failures", fails);
	json_object_set_new(res, "suppressed", json_integer(suppressed));
	json_object_set_new(res, "stop_late", json_integer(a.stop_late));
	json_object_set_new(res, "fault_ms", r->fault ? json_integer(r->fault - r->t0) : json_null());
	json_object_set_new(res, "clear_ms", r->clear ? json_integer(r->clear - r->t0) : json_null());
	free(cnt);
	free(a.ts);
	free(a.v);
	json_decref(c);
	json_decref(vs);
	return res;
}


/* ---- the command ---- */

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: tocsin drill [--audience N] [--scenarios all|LIST] [--report FILE.html]\n"
	        "                    [--segments S] [--latency-ms L]\n"
	        "\n"
	        "Rehearse the bad night on your own configuration, privately: copy it into\n"
	        "<var_dir>/drill/ with every vendor's base_url on a vendor emulator of its own, its own\n"
	        "embedded broker, tracker and one dispatcher per channel (every secret replaced by a\n"
	        "placeholder; it refuses to run if anything would still point elsewhere), then run each\n"
	        "scenario as a real SMS blast to a synthetic audience from the route's first vendor's\n"
	        "sender pool, the emulator answering in L ms:\n"
	        "\n");
	for (int i = 0; i < SC__COUNT; i++)
		fprintf(f, "  %-9s %s\n", sc_info[i].name, sc_info[i].title);
	fprintf(f,
	        "\n"
	        "capacity blasts N recipients; the others blast as many as their fault and the recovery\n"
	        "after it need (at most N, unless N would end the blast before the fault), inject it\n"
	        "after 4 s of steady traffic on a healthy primary and measure, from the\n"
	        "emulator's counters and the tracker's API: time to detect (the primary opened), time\n"
	        "until 99%% of traffic is on the secondary, time to recover (the primary, or after a\n"
	        "kill all traffic, back to 90%% of its level before), messages lost (must be 0) and\n"
	        "sent twice (0, or at most dispatcher.max_in_flight after a kill). Limits come from the\n"
	        "primary's sla. Prints the table and the capacity estimate (tocsin capacity), writes the\n"
	        "HTML report and the JSON it is built from (same name, .json), and exits 1 naming each\n"
	        "scenario that broke a promise and the count, 0 when all passed.\n"
	        "\n"
	        "  --audience N       recipients (default 20000)\n"
	        "  --scenarios LIST   comma-separated names from above, or all (default)\n"
	        "  --report FILE      the HTML report (default <var_dir>/drill/drill.html)\n"
	        "  --segments S       SMS segments per message, 1..10 (default 1)\n"
	        "  --latency-ms L     the emulator's median answer time, 1..5000 (default 100)\n");
}

static int parse_scenarios(drill_t *d, const char *list)
{
	memset(d->want, 0, sizeof d->want);
	d->norder = 0;
	if (!strcmp(list, "all")) {
		for (int i = 0; i < SC__COUNT; i++)
			d->want[d->order[d->norder++] = i] = 1;
		return 0;
	}
	char tmp[512];
	if (snprintf(tmp, sizeof tmp, "%s", list) >= (int)sizeof tmp) {
		fprintf(stderr, "tocsin drill: --scenarios is too long\n");
		return -1;
	}
	char *save = NULL;
	for (char *t = strtok_r(tmp, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		int found = -1;
		for (int i = 0; i < SC__COUNT; i++)
			if (!strcmp(t, sc_info[i].name))
				found = i;
		if (found < 0) {
			fprintf(stderr, "tocsin drill: unknown scenario \"%.40s\" (", t);
			for (int i = 0; i < SC__COUNT; i++)
				fprintf(stderr, "%s%s", i ? ", " : "", sc_info[i].name);
			fprintf(stderr, ", all)\n");
			return -1;
		}
		if (!d->want[found])
			d->want[d->order[d->norder++] = found] = 1;
	}
	return 0;
}

static double sla_num(const cfg_vendor_t *v, const char *k, double dflt)
{
	json_t *x = json_object_get(json_object_get(v->raw, "sla"), k);
	return json_is_number(x) ? json_number_value(x) : dflt;
}

/* A port free on 127.0.0.1 now, or 0. */
static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = 0;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof a;
	if (fd >= 0 && !bind(fd, (struct sockaddr *)&a, sizeof a) &&
	    !getsockname(fd, (struct sockaddr *)&a, &al))
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

/* start broker, emulator, tracker, then the dispatcher with the final configuration; the
 * tracker's port is chosen first, since the emulator signs inbound webhooks (the stop scenario)
 * over tracker.public_url */
static int start_all(drill_t *d)
{
	static char *const a_broker[] = {"broker", NULL};
	static char *const a_sim[] = {"vendor-sim", "--listen", "127.0.0.1:0", NULL};
	char *a_track[] = {"track", "--listen", d->trk, NULL}, taddr[256];
	static char *const a_dsp[] = {"dispatch", "--channel", "sms", NULL};
	char bs[2048];
	int k;
	snprintf(d->sim, sizeof d->sim, "127.0.0.1:9");
	int tp = free_port();
	if (!tp) {
		fprintf(stderr, "tocsin drill: no free port on 127.0.0.1 for the tracker\n");
		return -1;
	}
	snprintf(d->trk, sizeof d->trk, "127.0.0.1:%d", tp);
	if (write_doc(d))
		return -1;
	if ((k = sup_start(d->sup, "broker", a_broker)) < 0 ||
	    sup_wait_runfile(d->sup, k, &d->probe, "run/broker.bootstrap", bs, sizeof bs, 30))
		return -1;
	if ((k = sup_start(d->sup, "vendor-sim", a_sim)) < 0 ||
	    sup_wait_runfile(d->sup, k, &d->probe, "run/vendor-sim.addr", d->sim, sizeof d->sim, 30))
		return -1;
	if ((k = sup_start(d->sup, "track", a_track)) < 0 ||
	    sup_wait_runfile(d->sup, k, &d->probe, "run/track.addr", taddr, sizeof taddr, 30))
		return -1;
	if (write_doc(d))
		return -1;
	if ((d->k_dsp = sup_start(d->sup, "dispatch-sms", a_dsp)) < 0)
		return -1;
	char *a_launch[] = {"launch", "--no-progress", "--max-lag", "0", d->campaign, NULL};
	if ((d->k_launch = sup_start(d->sup, "launch", a_launch)) < 0)
		return -1;
	while (sup_alive(d->sup, d->k_launch)) /* nothing to launch yet: it exits at once */
		usleep(20000);
	printf("  broker, vendor emulator (http://%s), tracker (http://%s) and an SMS dispatcher up; "
	       "logs in %s/logs\n",
	       d->sim, d->trk, d->dir);
	fflush(stdout);
	return 0;
}

int cmd_drill(cfg_t *cfg, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"audience", required_argument, NULL, 'n'}, {"scenarios", required_argument, NULL, 's'},
	    {"report", required_argument, NULL, 'r'},   {"segments", required_argument, NULL, 'g'},
	    {"latency-ms", required_argument, NULL, 'l'}, {"help", no_argument, NULL, 'h'},
	    {0}};
	static drill_t d; /* large; one per process */
	memset(&d, 0, sizeof d);
	d.user = cfg;
	d.audience = 20000;
	d.segments = 1;
	d.latency_ms = 100;
	parse_scenarios(&d, "all");
	char report[2048] = "";
	int o;
	int64_t n;
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case 'n':
			if (num_i64(optarg, 100, 2000000, &n)) {
				fprintf(stderr, "tocsin drill: --audience must be 100..2000000\n");
				return 2;
			}
			d.audience = (long)n;
			break;
		case 's':
			if (parse_scenarios(&d, optarg))
				return 2;
			break;
		case 'r':
			if (snprintf(report, sizeof report, "%s", optarg) >= (int)sizeof report - 8 ||
			    strlen(optarg) < 6 || strcmp(optarg + strlen(optarg) - 5, ".html")) {
				fprintf(stderr, "tocsin drill: --report must name a .html file (at most 2000 bytes)\n");
				return 2;
			}
			break;
		case 'g':
			if (num_int(optarg, 1, 10, &d.segments)) {
				fprintf(stderr, "tocsin drill: --segments must be 1..10\n");
				return 2;
			}
			break;
		case 'l':
			if (num_int(optarg, 1, 5000, &d.latency_ms)) {
				fprintf(stderr, "tocsin drill: --latency-ms must be 1..5000\n");
				return 2;
			}
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	const cfg_route_t *rt = &cfg->routes[MSG_CH_SMS];
	if (rt->nvendors < 1) {
		fprintf(stderr, "tocsin drill: %s: no SMS route to rehearse\n", cfg->path);
		return 2;
	}
	const cfg_vendor_t *pv = cfg_vendor(cfg, rt->vendors[0]);
	d.primary = pv->name;
	d.secondary = rt->nvendors > 1 ? rt->vendors[1] : NULL;
	d.pool = pv->nsenders ? pv->senders[0].pool : "main";
	if (!d.secondary && (d.want[SC_503] || d.want[SC_SLOW] || d.want[SC_HANG])) {
		fprintf(stderr, "tocsin drill: the SMS route has one vendor: the failover scenarios need a "
		                "second (run --scenarios capacity,429,kill,cancel)\n");
		return 2;
	}
	d.sla = (sla_t){sla_num(pv, "p95_ms", 2000), sla_num(pv, "window_s", 5), sla_num(pv, "min_open_s", 5),
	                sla_num(pv, "probe_windows", 3), sla_num(pv, "ramp_s", 10)};
	d.inject = getenv("TOCSIN_DRILL_INJECT");
	d.timeout_ms = pv->timeout_ms;
	ssize_t sl = readlink("/proc/self/exe", d.self, sizeof d.self - 1);
	if (sl <= 0) {
		fprintf(stderr, "tocsin drill: cannot find my own executable\n");
		return 1;
	}
	d.self[sl] = 0;
	mkdir(cfg->var_dir, 0755);
	char *rp = realpath(cfg->var_dir, NULL);
	if (!rp || snprintf(d.dir, sizeof d.dir, "%s/drill", rp) >= (int)sizeof d.dir - 64) {
		fprintf(stderr, "tocsin drill: cannot use var_dir %s\n", cfg->var_dir);
		free(rp);
		return 1;
	}
	free(rp);
	d.probe.var_dir = d.dir;
	snprintf(d.cfgpath, sizeof d.cfgpath, "%s/tocsin.json", d.dir);
	snprintf(d.csv, sizeof d.csv, "%s/audience.csv", d.dir);
	snprintf(d.campaign, sizeof d.campaign, "%s/campaign.json", d.dir);
	if (!report[0])
		snprintf(report, sizeof report, "%.2000s/drill.html", d.dir);
	char jpath[2048];
	snprintf(jpath, sizeof jpath, "%.*s.json", (int)strlen(report) - 5, report);

	char logs[2200], pids[2200], err[512];
	snprintf(logs, sizeof logs, "%s/logs", d.dir);
	snprintf(pids, sizeof pids, "%s/run/drill.pids", d.dir);
	d.sup = sup_new("tocsin drill", d.self, d.cfgpath, logs, pids, err, sizeof err);
	if (!d.sup) {
		fprintf(stderr, "tocsin drill: %s\n", err);
		return 1;
	}
	sup_stop_leftovers(d.sup);
	char rm[2300];
	snprintf(rm, sizeof rm, "rm -rf '%s'", d.dir); /* a fresh broker: nothing from last time */
	if (strchr(d.dir, '\'') || system(rm) || runfile_mkdir(&d.probe, err, sizeof err) ||
	    mkdir(logs, 0755)) {
		fprintf(stderr, "tocsin drill: cannot prepare %s\n", d.dir);
		sup_free(d.sup);
		return 1;
	}
	d.doc = private_doc(&d);
	cap_opts_t co = {.audience = d.audience, .segments = d.segments, .dispatchers = 1,
	                 .latency_ms = d.latency_ms, .pool = d.pool};
	json_t *cap = cap_estimate(cfg, &co);
	d.rate = json_number_value(json_object_get(json_array_get(json_object_get(cap, "channels"), 0),
	                                           "messages_per_s"));
	printf("tocsin drill: %s, %ld recipients, SMS route %s%s%s, state and logs in %s\n", cfg->path,
	       d.audience, d.primary, d.secondary ? " then " : "", d.secondary ? d.secondary : "", d.dir);
	fflush(stdout);
	json_t *results = json_array();
	int rc = 1;
	if (start_all(&d))
		goto out;
	int64_t started = clock_wall_ms();
	for (int oi = 0; oi < d.norder && !tocsin_stop; oi++) {
		int k = d.order[oi];
		primary_reset(&d);
		run_t r = {.kind = (sc_kind_t)k};
		snprintf(r.id, sizeof r.id, "drill-%s", sc_info[k].name);
		if (k == SC_CAPACITY) {
			r.n = d.audience;
		} else {
			double secs = DRILL_PRE_MS / 1000.0 + fault_ms(&d, r.kind) / 1000.0 +
			              recover_budget_ms(&d, r.kind) / 1000.0 +
			              (k == SC_CANCEL || k == SC_STOP ? 10 : 4);
			/* as many as the fault and its recovery need, at most N -- unless N would end
			 * the blast before the fault does */
			double least = d.rate * (DRILL_PRE_MS + fault_ms(&d, r.kind) + 4000) / 1000.0;
			double most = d.audience > least ? (double)d.audience : least;
			r.n = (long)(d.rate * secs < most ? d.rate * secs : most);
			if (r.n < 100)
				r.n = 100;
		}
		printf("  %-8s %ld messages: %s\n", sc_info[k].name, r.n, sc_info[k].title);
		fflush(stdout);
		if (blast(&d, &r))
			goto out;
		json_t *m = measure(&d, &r);
		if (k == SC_CAPACITY && json_number_value(json_object_get(m, "rate_per_s")) > 0)
			d.rate = json_number_value(json_object_get(m, "rate_per_s"));
		json_array_append_new(results, m);
	}
	double la[1] = {0};
	getloadavg(la, 1);
	json_t *doc = json_pack("{s:i,s:s,s:I,s:i,s:i,s:s,s:s,s:s,s:f,s:I,s:O,s:O}", "v", 1, "config",
	                        cfg->path, "audience", (json_int_t)d.audience, "segments", d.segments,
	                        "latency_ms", d.latency_ms, "primary", d.primary, "secondary",
	                        d.secondary ? d.secondary : "", "pool", d.pool, "load", la[0],
	                        "duration_ms", (json_int_t)(clock_wall_ms() - started), "capacity", cap,
	                        "scenarios", results);
	int pass = 1;
	size_t i;
	json_t *sc;
	json_array_foreach(results, i, sc) pass &= json_is_true(json_object_get(sc, "pass"));
	json_object_set_new(doc, "pass", json_boolean(pass));
	printf("\n");
	drill_print(stdout, doc);
	if (drill_write_report(doc, report, jpath, err, sizeof err)) {
		fprintf(stderr, "tocsin drill: %s\n", err);
	} else {
		printf("\nreport: %s (built from %s)\n", report, jpath);
		rc = pass ? 0 : 1;
	}
	if (!pass) {
		fprintf(stderr, "tocsin drill: FAILED:");
		json_array_foreach(results, i, sc)
		{
			size_t j;
			json_t *f;
			json_array_foreach(json_object_get(sc, "failures"), j, f)
			    fprintf(stderr, " %s: %s;", json_string_value(json_object_get(sc, "name")),
			            json_string_value(f));
		}
		fprintf(stderr, "\n");
	}
	json_decref(doc);
out:
	fflush(stdout);
	sup_stop_all(d.sup);
	sup_free(d.sup);
	json_decref(results);
	json_decref(cap);
	json_decref(d.doc);
	return rc;
}
