/* demo.c -- `tocsin demo`: run broker, emulator, tracker and a dispatcher, launch the example
 * campaign, wait until every recipient is accepted, print what happened, stop everything. */
#include "core/num.h"
#include "core/clock.h"
#include "core/cmd.h"
#include "core/err.h"
#include "core/kq.h"
#include "core/log.h"
#include "core/runfile.h"
#include "core/sig.h"
#include "core/sup.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct demo {
	char self[4096]; /* this executable */
	char var[2048];  /* var dir of the demo */
	char cfg[2200];  /* its config file */
	char campaign[4096];
	char campaign_id[256];
	long expected; /* recipients in the audience */
	int timeout_s;
	sup_t *sup;                        /* broker, vendor-sim, track, dispatch */
	char logs[4200];                   /* the processes' logs */
	char sim_addr[256], trk_addr[256]; /* where the emulator and the tracker listen */
} demo_t;

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: tocsin demo [--campaign FILE] [--timeout S] [--expect N]\n"
	        "\n"
	        "Run the whole path on the embedded defaults: start the embedded Kafka broker, the\n"
	        "vendor emulator, the tracker and one SMS dispatcher in the background (state and\n"
	        "logs under <var_dir>/demo), launch the campaign (default examples/campaign.json,\n"
	        "10,000 recipients), wait until every recipient is accepted by the vendor, print a\n"
	        "summary (per state, per vendor, elapsed, messages/s, what the emulator received),\n"
	        "stop every process it started and exit 0 -- or 1, saying what went wrong.\n"
	        "\n"
	        "  --campaign FILE  campaign to launch (default examples/campaign.json)\n"
	        "  --timeout S      give up after S seconds of waiting (default 180)\n"
	        "  --expect N       recipients expected (default: data rows of the audience CSV)\n");
}

static int rm_rf(const char *path)
{
	char cmd[4300];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
	return system(cmd);
}

static int write_config(demo_t *d, const char *sim_addr, const char *track_addr)
{
	FILE *f = fopen(d->cfg, "w");
	if (!f) {
		fprintf(stderr, "tocsin demo: cannot write %s: %s\n", d->cfg, strerror(errno));
		return -1;
	}
	fprintf(f,
	        "{\n"
	        "  \"var_dir\": \"%s\",\n"
	        "  \"kafka\": {},\n"
	        "  \"vendors\": [\n"
	        "    {\"name\": \"twilio\", \"kind\": \"twilio\", \"channel\": \"sms\",\n"
	        "     \"base_url\": \"http://%s\", \"account\": \"ACdemo000000000000000000000000000\",\n"
	        "     \"secret_env\": \"TOCSIN_TWILIO_TOKEN\",\n"
	        "     \"senders\": {\"main\": {\"from\": \"+15005550006\"}},\n"
	        "     \"max_in_flight\": 64, \"timeout_ms\": 10000, \"cost\": 0.0079}\n"
	        "  ],\n"
	        "  \"routes\": {\"sms\": {\"strategy\": \"priority\", \"vendors\": [\"twilio\"]}},\n"
	        "  \"dispatcher\": {\"max_attempts\": 6, \"retry_base_ms\": 200, \"retry_max_ms\": 5000,\n"
	        "                 \"max_in_flight\": 128},\n"
	        "  \"tracker\": {\"listen\": \"127.0.0.1:0\", \"public_url\": \"http://%s\"}\n"
	        "}\n",
	        d->var, sim_addr ? sim_addr : "127.0.0.1:9", track_addr ? track_addr : "127.0.0.1:9");
	return fclose(f) == 0 ? 0 : -1;
}

/* Run `tocsin -c cfg args...` and capture its stdout into out (NUL-terminated).
 * Returns its exit status, or -1. */
static int run_capture(demo_t *d, char *const args[], char *out, size_t outlen, int quiet)
{
	int pfd[2];
	if (pipe(pfd))
		return -1;
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		dup2(pfd[1], 1);
		close(pfd[0]);
		close(pfd[1]);
		if (quiet) { /* "no such campaign yet" while the tracker catches up */
			int null = open("/dev/null", O_WRONLY);
			if (null >= 0)
				dup2(null, 2);
		}
		char *argv[16];
		int n = 0;
		argv[n++] = d->self;
		argv[n++] = "-c";
		argv[n++] = d->cfg;
		for (int i = 0; args[i] && n < 15; i++)
			argv[n++] = args[i];
		argv[n] = NULL;
		execv(d->self, argv);
		_exit(127);
	}
	close(pfd[1]);
	size_t len = 0;
	ssize_t r;
	while ((r = read(pfd[0], out + len, outlen - 1 - len)) > 0 && len < outlen - 1)
		len += (size_t)r;
	out[len] = 0;
	close(pfd[0]);
	int st;
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
	char **acc = ud;
	size_t have = *acc ? strlen(*acc) : 0, len = sz * n;
	if (have + len > (8u << 20))
		return 0;
	char *np = realloc(*acc, have + len + 1);
	if (!np)
		return 0;
	memcpy(np + have, p, len);
	np[have + len] = 0;
	*acc = np;
	return len;
}

static json_t *http_get_json(const char *url)
{
	CURL *e = curl_easy_init();
	char *acc = NULL;
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &acc);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 5000L);
	CURLcode rc = curl_easy_perform(e);
	curl_easy_cleanup(e);
	json_t *j = rc == CURLE_OK && acc ? json_loads(acc, 0, NULL) : NULL;
	free(acc);
	return j;
}

static long count_rows(const char *campaign_path, char *id, size_t idlen)
{
	json_error_t je;
	json_t *c = json_load_file(campaign_path, 0, &je);
	if (!c) {
		fprintf(stderr, "tocsin demo: %s:%d: %s\n", campaign_path, je.line, je.text);
		return -1;
	}
	snprintf(id, idlen, "%s", json_string_value(json_object_get(c, "id")) ?: "demo");
	json_t *aud = json_object_get(c, "audience");
	const char *p = json_is_string(aud) ? json_string_value(aud)
	                                    : json_string_value(json_object_get(aud, "path"));
	long rows = -1;
	if (p) {
		char full[8192];
		if (p[0] == '/') {
			snprintf(full, sizeof full, "%s", p);
		} else {
			const char *slash = strrchr(campaign_path, '/');
			int dl = slash ? (int)(slash - campaign_path) : 1;
			snprintf(full, sizeof full, "%.*s/%s", dl, slash ? campaign_path : ".", p);
		}
		FILE *f = fopen(full, "r");
		if (f) {
			int ch, last = '\n';
			rows = 0;
			while ((ch = getc(f)) != EOF) {
				if (ch == '\n')
					rows++;
				last = ch;
			}
			if (last != '\n')
				rows++;
			rows--; /* header */
			fclose(f);
		}
	}
	json_decref(c);
	return rows;
}

static long jint(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	return json_is_integer(v) ? (long)json_integer_value(v) : 0;
}

/* The options into d: -1 to go on, else the exit status. */
static int demo_args(demo_t *d, int argc, char **argv)
{
	static const struct option opts[] = {{"campaign", required_argument, NULL, 'c'},
	                                     {"timeout", required_argument, NULL, 't'},
	                                     {"expect", required_argument, NULL, 'e'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {0}};
	snprintf(d->campaign, sizeof d->campaign, "examples/campaign.json");
	d->timeout_s = 180;
	d->expected = -1;
	int o;
	int64_t ex;
	while ((o = getopt_long(argc, argv, "c:t:e:h", opts, NULL)) != -1) {
		switch (o) {
		case 'c': snprintf(d->campaign, sizeof d->campaign, "%s", optarg); break;
		case 't':
			if (num_int(optarg, 1, 86400, &d->timeout_s)) {
				fprintf(stderr, "tocsin demo: --timeout must be 1..86400 seconds\n");
				return 2;
			}
			break;
		case 'e':
			if (num_i64(optarg, 0, INT64_MAX, &ex)) {
				fprintf(stderr, "tocsin demo: --expect must be a count >= 0\n");
				return 2;
			}
			d->expected = ex;
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	return -1;
}

/* This executable, the campaign's size, a fresh var dir with its supervisor and first
 * config (probe: a config naming that var dir). 0, else 1 said on stderr. */
static int demo_prepare(demo_t *d, const cfg_t *cfg, cfg_t *probe)
{
	ssize_t sl = readlink("/proc/self/exe", d->self, sizeof d->self - 1);
	if (sl <= 0) {
		fprintf(stderr, "tocsin demo: cannot find my own executable\n");
		return 1;
	}
	d->self[sl] = 0;
	long rows = count_rows(d->campaign, d->campaign_id, sizeof d->campaign_id);
	if (rows < 0 && d->expected < 0) {
		fprintf(stderr, "tocsin demo: cannot read the campaign or its audience (%s)\n",
		        d->campaign);
		return 1;
	}
	if (d->expected < 0)
		d->expected = rows;
	/* A fresh directory each run: the embedded broker is in memory, so state
	 * left from a previous run would only disagree with it. */
	snprintf(d->var, sizeof d->var, "%s/demo", cfg->var_dir);
	char *rp = realpath(cfg->var_dir, NULL);
	if (!rp) {
		mkdir(cfg->var_dir, 0755);
		rp = realpath(cfg->var_dir, NULL);
	}
	if (rp) {
		snprintf(d->var, sizeof d->var, "%s/demo", rp);
		free(rp);
	}
	*probe = (cfg_t){.var_dir = d->var};
	char pids[4200];
	snprintf(d->logs, sizeof d->logs, "%s/logs", d->var);
	snprintf(pids, sizeof pids, "%s/run/demo.pids", d->var);
	snprintf(d->cfg, sizeof d->cfg, "%s/tocsin.json", d->var);
	char err[512];
	d->sup = sup_new("tocsin demo", d->self, d->cfg, d->logs, pids, err, sizeof err);
	if (!d->sup) {
		fprintf(stderr, "tocsin demo: %s\n", err);
		return 1;
	}
	sup_stop_leftovers(d->sup);
	rm_rf(d->var);
	if (runfile_mkdir(probe, err, sizeof err) || (mkdir(d->logs, 0755) && errno != EEXIST) ||
	    write_config(d, NULL, NULL)) {
		fprintf(stderr, "tocsin demo: cannot prepare %s\n", d->var);
		sup_free(d->sup);
		return 1;
	}
	return 0;
}

/* Broker, emulator, tracker and one SMS dispatcher, each up before the next (the config
 * rewritten with the emulator's and tracker's addresses): 0, or -1. */
static int demo_start(demo_t *d, const cfg_t *probe)
{
	static char *const a_broker[] = {"broker", NULL};
	static char *const a_sim[] = {"vendor-sim", "--listen", "127.0.0.1:0", NULL};
	static char *const a_track[] = {"track", "--listen", "127.0.0.1:0", NULL};
	static char *const a_dispatch[] = {"dispatch", "--channel", "sms", NULL};
	char bs[2048];
	int kid;
	if ((kid = sup_start(d->sup, "broker", a_broker)) < 0 ||
	    sup_wait_runfile(d->sup, kid, probe, "run/broker.bootstrap", bs, sizeof bs, 20))
		return -1;
	printf("  broker      up  (embedded Kafka, 3 brokers: %s)\n", bs);
	if ((kid = sup_start(d->sup, "vendor-sim", a_sim)) < 0 ||
	    sup_wait_runfile(d->sup, kid, probe, "run/vendor-sim.addr", d->sim_addr,
	                     sizeof d->sim_addr, 20))
		return -1;
	printf("  vendor-sim  up  (Twilio API emulator on http://%s)\n", d->sim_addr);
	if ((kid = sup_start(d->sup, "track", a_track)) < 0 ||
	    sup_wait_runfile(d->sup, kid, probe, "run/track.addr", d->trk_addr, sizeof d->trk_addr, 20))
		return -1;
	printf("  tracker     up  (http://%s)\n", d->trk_addr);
	if (write_config(d, d->sim_addr, d->trk_addr))
		return -1;
	if (sup_start(d->sup, "dispatch", a_dispatch) < 0)
		return -1;
	char grp[64];
	kq_dispatch_group(MSG_CH_SMS, grp, sizeof grp);
	printf("  dispatcher  up  (consumer group %s)\n\n", grp);
	fflush(stdout);
	return 0;
}

/* Messages accepted by the vendor (accepted, sent or delivered) in a states object. */
static long accepted_of(json_t *states)
{
	return jint(states, "accepted") + jint(states, "sent") + jint(states, "delivered");
}

/* Until the tracker has every recipient in a final or accepted state, or the timeout:
 * the last `tocsin status --json` (NULL: none; the caller frees it). -1 when one of the
 * processes stopped. */
static int demo_wait(demo_t *d, int64_t t0, json_t **stp)
{
	char *a_status[] = {"status", d->campaign_id, "--json", NULL};
	static char out[65536];
	json_t *st = NULL;
	int64_t deadline = clock_mono_ms() + (int64_t)d->timeout_s * 1000, last_print = 0;
	while (!tocsin_stop) {
		json_decref(st);
		st = NULL;
		if (run_capture(d, a_status, out, sizeof out, 1) == 0)
			st = json_loads(out, 0, NULL);
		json_t *states = json_object_get(st, "states");
		long accepted = accepted_of(states);
		long finals = accepted + jint(states, "failed") + jint(states, "undelivered") +
		              jint(states, "bounced") + jint(states, "cancelled") +
		              jint(states, "expired") + jint(states, "suppressed");
		int64_t now = clock_mono_ms();
		if (now - last_print >= 1000) {
			printf("  ... %ld / %ld accepted, %ld final, %.1f s\n", accepted,
			       d->expected, finals, (now - t0) / 1000.0);
			fflush(stdout);
			last_print = now;
		}
		if (finals >= d->expected)
			break;
		for (int i = 0; i < sup_count(d->sup); i++)
			if (!sup_alive(d->sup, i)) {
				fprintf(stderr, "tocsin demo: %s stopped unexpectedly\n",
				        sup_name(d->sup, i));
				sup_log_tail(d->sup, i);
				json_decref(st);
				return -1;
			}
		if (now >= deadline) {
			fprintf(stderr, "tocsin demo: only %ld of %ld recipients finished after %d s\n",
			        finals, d->expected, d->timeout_s);
			break;
		}
		usleep(250000);
	}
	*stp = st;
	return 0;
}

/* The summary: per state, per vendor, what the emulator received, the times. 0 when every
 * recipient was accepted exactly once. */
static int demo_report(demo_t *d, json_t *st, int64_t launched_ms, int64_t elapsed)
{
	char url[512];
	snprintf(url, sizeof url, "http://%s/_sim/stats", d->sim_addr);
	json_t *sim = http_get_json(url);
	long accepted = accepted_of(json_object_get(st, "states")), total = jint(st, "total");
	printf("\n== tocsin demo: campaign %s ==\n", d->campaign_id);
	printf("%-14s %10s\n", "state", "messages");
	const char *k;
	json_t *v;
	json_object_foreach(json_object_get(st, "states"), k, v)
	    printf("%-14s %10lld\n", k, (long long)json_integer_value(v));
	printf("%-14s %10ld\n", "total", total);
	printf("\n%-14s %10s %10s\n", "vendor", "messages", "accepted");
	json_object_foreach(json_object_get(st, "vendors"), k, v)
	{
		long sum = 0;
		const char *k2;
		json_t *v2;
		json_object_foreach(v, k2, v2) sum += (long)json_integer_value(v2);
		printf("%-14s %10ld %10ld\n", k, sum, accepted_of(v));
	}
	long sim_unique = -1, sim_dups = -1, sim_acc = -1;
	json_object_foreach(json_object_get(sim, "vendors"), k, v)
	{
		sim_unique = (sim_unique < 0 ? 0 : sim_unique) + jint(v, "unique_ids");
		sim_dups = (sim_dups < 0 ? 0 : sim_dups) + jint(v, "duplicate_count");
		sim_acc = (sim_acc < 0 ? 0 : sim_acc) + jint(v, "accepted");
	}
	printf("\nemulator: %ld messages accepted, %ld distinct ids, %ld sent twice\n", sim_acc,
	       sim_unique, sim_dups);
	printf("launch: %.2f s;  end to end: %.2f s, %.0f messages/s\n", launched_ms / 1000.0,
	       elapsed / 1000.0, elapsed > 0 ? accepted * 1000.0 / elapsed : 0.0);
	json_decref(sim);
	if (accepted == d->expected && total == d->expected && sim_dups == 0 &&
	    sim_unique == d->expected) {
		printf("result: OK -- all %ld recipients accepted exactly once\n", d->expected);
		return 0;
	}
	printf("result: FAILED -- expected %ld accepted exactly once\n", d->expected);
	return 1;
}

int cmd_demo(cfg_t *cfg, int argc, char **argv)
{
	static demo_t d; /* large; one per process */
	memset(&d, 0, sizeof d);
	cfg_t probe;
	int rc = demo_args(&d, argc, argv);
	if (rc >= 0)
		return rc;
	if (demo_prepare(&d, cfg, &probe))
		return 1;
	if (!getenv("TOCSIN_TWILIO_TOKEN"))
		setenv("TOCSIN_TWILIO_TOKEN", "demo-token-not-a-secret", 1);
	printf("tocsin demo: campaign %s (%ld recipients), state and logs in %s\n", d.campaign_id,
	       d.expected, d.var);
	fflush(stdout);
	rc = 1;
	int64_t t0 = clock_mono_ms();
	if (demo_start(&d, &probe))
		goto out;
	/* Launch in the foreground: its summary is part of what the demo shows. */
	static char out[65536];
	char *a_launch[] = {"launch", d.campaign, NULL};
	int64_t tl = clock_mono_ms();
	int lrc = run_capture(&d, a_launch, out, sizeof out, 0);
	fputs(out, stdout);
	if (lrc != 0) {
		fprintf(stderr, "tocsin demo: launch failed (exit %d)\n", lrc);
		goto out;
	}
	int64_t launched_ms = clock_mono_ms() - tl;
	json_t *st = NULL;
	if (demo_wait(&d, t0, &st))
		goto out;
	rc = demo_report(&d, st, launched_ms, clock_mono_ms() - t0);
	json_decref(st);
out:
	fflush(stdout);
	sup_stop_all(d.sup);
	sup_free(d.sup);
	printf("stopped broker, vendor-sim, tracker and dispatcher; logs in %s\n", d.logs);
	return rc;
}
