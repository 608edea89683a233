/* drill_env.c -- `tocsin drill`'s private world: its copy of the configuration (every vendor on its
 * own emulator, every secret a placeholder), the processes it starts, and HTTP to them. */
#include "core/buf.h"
#include "core/drill.h"
#include "core/drill_int.h"
#include "core/runfile.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#define DRILL_HTTP_MAX (64u << 20)
#define DRILL_TOKEN "drill-control-token-not-a-secret"
#define DRILL_SECRET "drill-not-a-secret-0123456789abcdef0123456789abcdef"

/* ---- HTTP to the drill's own emulator and tracker ---- */

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
	return buf_append(ud, p, sz * n) ? 0 : sz * n;
}

/* method GET or POST (body JSON); the answer parsed, or NULL. */
json_t *drill_http_json(const char *method, const char *url, const char *body, const char *token)
{
	CURL *e = curl_easy_init();
	if (!e)
		return NULL;
	buf_t b;
	buf_init(&b, DRILL_HTTP_MAX);
	struct curl_slist *h = NULL;
	char ah[600];
	if (token && snprintf(ah, sizeof ah, "Authorization: Bearer %s", token) < (int)sizeof ah)
		h = curl_slist_append(h, ah);
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

json_t *drill_sim_get(drill_t *d, const char *path)
{
	char url[512];
	snprintf(url, sizeof url, "http://%s%s", d->sim, path);
	return drill_http_json("GET", url, NULL, NULL);
}

int drill_sim_post(drill_t *d, const char *path, const char *body)
{
	char url[512];
	snprintf(url, sizeof url, "http://%s%s", d->sim, path);
	json_t *j = drill_http_json("POST", url, body, NULL);
	json_decref(j);
	if (!j)
		fprintf(stderr, "tocsin drill: the emulator refused %s %s\n", path, body ? body : "");
	return j ? 0 : -1;
}

json_t *drill_trk_get(drill_t *d, const char *path)
{
	char url[1024];
	snprintf(url, sizeof url, "http://%s%s", d->trk, path);
	return drill_http_json("GET", url, NULL, d->token);
}

long drill_jl(const json_t *o, const char *k)
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
			snprintf(err, errlen,
			         "vendors[%zu].base_url would point at %.200s, not the drill's emulator %s",
			         i, u ? u : "(none)", want);
			return -1;
		}
	}
	const char *pu = json_string_value(
	    json_object_get(json_object_get(doc, "tracker"), "public_url"));
	if (pu && strncmp(pu, "http://127.0.0.1:", 17)) {
		snprintf(err, errlen, "tracker.public_url would point at %.200s, not 127.0.0.1", pu);
		return -1;
	}
	json_t *k = json_object_get(doc, "kafka");
	if (k && (!json_is_object(k) || json_object_size(k))) {
		snprintf(err, errlen,
		         "kafka would name a cluster; the drill runs only on its own embedded broker");
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
json_t *drill_private_doc(drill_t *d)
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
	d->token = DRILL_TOKEN;
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

int drill_launch_slot(drill_t *d)
{
	char *a_launch[] = {"launch", "--no-progress", "--max-lag", "0", d->campaign, NULL};
	if ((d->k_launch = sup_start(d->sup, "launch", a_launch)) < 0)
		return -1;
	while (sup_alive(d->sup, d->k_launch)) /* nothing to launch yet: it exits at once */
		usleep(20000);
	return 0;
}

/* start broker, emulator, tracker, then the dispatcher with the final configuration; the
 * tracker's port is chosen first, since the emulator signs inbound webhooks (the stop scenario)
 * over tracker.public_url */
int drill_start_all(drill_t *d)
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
	if (drill_launch_slot(d))
		return -1;
	printf("  broker, vendor emulator (http://%s), tracker (http://%s) and an SMS dispatcher up; "
	       "logs in %s/logs\n",
	       d->sim, d->trk, d->dir);
	fflush(stdout);
	return 0;
}
