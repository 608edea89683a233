/* drill.c -- `tocsin drill`: options, a private copy of the configuration on the emulator with its
 * own broker, tracker and dispatcher (drill_env.c), one real blast per scenario with a fault
 * injected (drill_blast.c, drill_measure.c), the table and the report (drill_report.c). */
#include "core/capacity.h"
#include "core/clock.h"
#include "core/cmd.h"
#include "core/drill.h"
#include "core/drill_int.h"
#include "core/num.h"
#include "core/runfile.h"
#include "core/sig.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const drill_sc_t drill_sc[SC__COUNT] = {
    {"capacity", "the whole audience at the configured limits"},
    {"503", "the primary vendor answers 503 to everything"},
    {"slow", "the primary vendor answers slower than its SLA p95_ms"},
    {"429", "the primary vendor throttles 90% of requests (429, Retry-After 1 s)"},
    {"hang", "the primary vendor stops answering (connections hang)"},
    {"auth", "the primary vendor starts refusing our credentials mid-blast (Twilio 401 20003)"},
    {"kill", "the dispatcher is SIGKILLed mid-blast and started again"},
    {"cancel", "the campaign is cancelled mid-blast"},
    {"stop", "the last 50 recipients reply STOP mid-blast"},
};

/* ---- the command ---- */

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: tocsin drill [--audience N] [--scenarios all|LIST] [--report FILE.html]\n"
	        "                    [--segments S] [--latency-ms L] [--use-running]\n"
	        "\n"
	        "Rehearse the bad night on your own configuration, privately: copy it into\n"
	        "<var_dir>/drill/ with every vendor's base_url on a vendor emulator of its own, its own\n"
	        "embedded broker, tracker and one dispatcher per channel (every secret replaced by a\n"
	        "placeholder; it refuses to run if anything would still point elsewhere), then run each\n"
	        "scenario as a real SMS blast to a synthetic audience from the route's first vendor's\n"
	        "sender pool, the emulator answering in L ms:\n"
	        "\n");
	for (int i = 0; i < SC__COUNT; i++)
		fprintf(f, "  %-9s %s\n", drill_sc[i].name, drill_sc[i].title);
	fprintf(
	    f,
	    "\n"
	    "--scenarios all runs capacity first (its rate sizes the other blasts), then kill and auth\n"
	    "(a restarted dispatcher reads tocsin.status back before it sends: early, that is one\n"
	    "blast's), then the others in the order above, stop last; a LIST runs in its order.\n"
	    "capacity blasts N recipients; the others blast as many as their fault and the recovery\n"
	    "after it need (at most N, unless N would end the blast before the fault), inject it\n"
	    "after 4 s of steady traffic on a healthy primary and measure, from the\n"
	    "emulator's counters and the tracker's API: time to detect (the primary opened; auth:\n"
	    "no request reaches it any more), time until 99%% of the requests arrive at the\n"
	    "secondary (250 ms buckets from the emulator's 50 ms ticks), the route's rate after\n"
	    "that (at least a quarter of before), time to recover (the primary, or after a\n"
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
	    "  --latency-ms L     the emulator's median answer time, 1..5000 (default 100)\n"
	    "  --use-running      drill on the broker, emulator, tracker and dispatchers of the\n"
	    "                     running `tocsin up` of this config instead of its own; refused\n"
	    "                     unless every vendor's base_url is that emulator, the broker is\n"
	    "                     its embedded one and the config is unchanged since it started;\n"
	    "                     kill, auth and stop are left out; the emulator's faults are put\n"
	    "                     back at the end\n");
}

/* The order of --scenarios all: capacity first (its measured rate sizes the other blasts), then
 * the two that restart the dispatcher while tocsin.status holds one blast (a restarted dispatcher
 * reads it back before it sends: on the embedded broker, which cannot look offsets up by time,
 * the last 100,000 records of each partition -- after six scenarios about 140,000 records and
 * 46 s of catch-up), stop last (its opt-outs stay). */
static const sc_kind_t all_order[SC__COUNT] = {SC_CAPACITY, SC_KILL, SC_AUTH,   SC_503, SC_SLOW,
                                               SC_429,      SC_HANG, SC_CANCEL, SC_STOP};

static int parse_scenarios(drill_t *d, const char *list)
{
	memset(d->want, 0, sizeof d->want);
	d->norder = 0;
	if (!strcmp(list, "all")) {
		for (int i = 0; i < SC__COUNT; i++)
			d->want[d->order[d->norder++] = all_order[i]] = 1;
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
			if (!strcmp(t, drill_sc[i].name))
				found = i;
		if (found < 0) {
			fprintf(stderr, "tocsin drill: unknown scenario \"%.40s\" (", t);
			for (int i = 0; i < SC__COUNT; i++)
				fprintf(stderr, "%s%s", i ? ", " : "", drill_sc[i].name);
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

/* --use-running drills only what leaves the running processes as they were: kill and auth
 * stop its dispatcher, stop writes opt-outs of synthetic numbers into its store. With "all"
 * they are left out; named, refused. */
static const sc_kind_t not_running[] = {SC_KILL, SC_AUTH, SC_STOP};

static int running_scenarios(drill_t *d, int named)
{
	int no = 0;
	for (size_t i = 0; i < sizeof not_running / sizeof *not_running; i++)
		no |= d->want[not_running[i]];
	if (no && named) {
		fprintf(stderr,
		        "tocsin drill: --use-running cannot run kill, auth or stop (they stop the running "
		        "dispatcher or write opt-outs into its store): run them without --use-running\n");
		return -1;
	}
	int n = 0;
	for (int i = 0; i < d->norder; i++) {
		int k = d->order[i], drop = 0;
		for (size_t j = 0; j < sizeof not_running / sizeof *not_running; j++)
			drop |= k == (int)not_running[j];
		d->want[k] = !drop;
		if (!drop)
			d->order[n++] = k;
	}
	d->norder = n;
	return 0;
}

/* The options into d and report; -1 to go on, else the exit status. */
static int parse_opts(drill_t *d, int argc, char **argv, char *report, size_t replen)
{
	static const struct option opts[] = {{"audience", required_argument, NULL, 'n'},
	                                     {"scenarios", required_argument, NULL, 's'},
	                                     {"report", required_argument, NULL, 'r'},
	                                     {"segments", required_argument, NULL, 'g'},
	                                     {"latency-ms", required_argument, NULL, 'l'},
	                                     {"use-running", no_argument, NULL, 'u'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {0}};
	int o, named = 0;
	int64_t n;
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case 'n':
			if (num_i64(optarg, 100, 2000000, &n)) {
				fprintf(stderr, "tocsin drill: --audience must be 100..2000000\n");
				return 2;
			}
			d->audience = (long)n;
			break;
		case 's':
			if (parse_scenarios(d, optarg))
				return 2;
			named = strcmp(optarg, "all") != 0;
			break;
		case 'r':
			if (snprintf(report, replen, "%s", optarg) >= (int)replen - 8 ||
			    strlen(optarg) < 6 || strcmp(optarg + strlen(optarg) - 5, ".html")) {
				fprintf(stderr,
				        "tocsin drill: --report must name a .html file (at most 2000 bytes)\n");
				return 2;
			}
			break;
		case 'g':
			if (num_int(optarg, 1, 10, &d->segments)) {
				fprintf(stderr, "tocsin drill: --segments must be 1..10\n");
				return 2;
			}
			break;
		case 'l':
			if (num_int(optarg, 1, 5000, &d->latency_ms)) {
				fprintf(stderr, "tocsin drill: --latency-ms must be 1..5000\n");
				return 2;
			}
			break;
		case 'u': d->use_running = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	return d->use_running && running_scenarios(d, named) ? 2 : -1;
}

/* the SMS route's primary and secondary, and the primary's SLA; 0, or 2 (said) */
static int pick_route(drill_t *d, const cfg_t *cfg)
{
	const cfg_route_t *rt = &cfg->routes[MSG_CH_SMS];
	if (rt->nvendors < 1) {
		fprintf(stderr, "tocsin drill: %s: no SMS route to rehearse\n", cfg->path);
		return 2;
	}
	const cfg_vendor_t *pv = cfg_vendor(cfg, rt->vendors[0]);
	d->primary = pv->name;
	d->secondary = rt->nvendors > 1 ? rt->vendors[1] : NULL;
	d->pool = pv->nsenders ? pv->senders[0].pool : "main";
	if (!d->secondary &&
	    (d->want[SC_503] || d->want[SC_SLOW] || d->want[SC_HANG] || d->want[SC_AUTH])) {
		fprintf(stderr, "tocsin drill: the SMS route has one vendor: the failover scenarios need a "
		                "second (run --scenarios capacity,429,kill,cancel,stop)\n");
		return 2;
	}
	d->sla = (sla_t){sla_num(pv, "p95_ms", 2000), sla_num(pv, "window_s", 5),
	                 sla_num(pv, "min_open_s", 5), sla_num(pv, "probe_windows", 3),
	                 sla_num(pv, "ramp_s", 10)};
	d->inject = getenv("TOCSIN_DRILL_INJECT");
	d->timeout_ms = pv->timeout_ms;
	return 0;
}

/* <var_dir>/drill/ and the paths in it, emptied; d->sup. 0, or the exit status (said). */
static int prepare_dir(drill_t *d, char *report, size_t replen, char *jpath, size_t jlen)
{
	const cfg_t *cfg = d->user;
	ssize_t sl = readlink("/proc/self/exe", d->self, sizeof d->self - 1);
	if (sl <= 0) {
		fprintf(stderr, "tocsin drill: cannot find my own executable\n");
		return 1;
	}
	d->self[sl] = 0;
	mkdir(cfg->var_dir, 0755);
	char *rp = realpath(cfg->var_dir, NULL);
	if (!rp || snprintf(d->dir, sizeof d->dir, "%s/drill", rp) >= (int)sizeof d->dir - 64) {
		fprintf(stderr, "tocsin drill: cannot use var_dir %s\n", cfg->var_dir);
		free(rp);
		return 1;
	}
	free(rp);
	d->probe.var_dir = d->dir;
	snprintf(d->cfgpath, sizeof d->cfgpath, "%s/tocsin.json", d->dir);
	snprintf(d->csv, sizeof d->csv, "%s/audience.csv", d->dir);
	snprintf(d->campaign, sizeof d->campaign, "%s/campaign.json", d->dir);
	if (!report[0])
		snprintf(report, replen, "%.2000s/drill.html", d->dir);
	snprintf(jpath, jlen, "%.*s.json", (int)strlen(report) - 5, report);
	char err[600];
	if (d->use_running && drill_use_running(d, err, sizeof err)) {
		fprintf(stderr, "tocsin drill: %s\n", err);
		return 2;
	}
	char logs[2200], pids[2200], rm[2300];
	snprintf(logs, sizeof logs, "%s/logs", d->dir);
	snprintf(pids, sizeof pids, "%s/run/drill.pids", d->dir);
	/* --use-running: only `tocsin launch` is the drill's, on the running configuration */
	d->sup = sup_new("tocsin drill", d->self, d->use_running ? cfg->path : d->cfgpath, logs,
	                 pids, err, sizeof err);
	if (!d->sup) {
		fprintf(stderr, "tocsin drill: %s\n", err);
		return 1;
	}
	sup_stop_leftovers(d->sup);
	snprintf(rm, sizeof rm, "rm -rf '%s'", d->dir); /* a fresh broker: nothing from last time */
	if (strchr(d->dir, '\'') || system(rm) || runfile_mkdir(&d->probe, err, sizeof err) ||
	    mkdir(logs, 0755)) {
		fprintf(stderr, "tocsin drill: cannot prepare %s\n", d->dir);
		return 1;
	}
	return 0;
}

/* How many recipients scenario k blasts. */
static long blast_size(drill_t *d, sc_kind_t k)
{
	if (k == SC_CAPACITY)
		return d->audience;
	/* after the fault: a cancel leaves 10 s of the blast to cancel; the stoppers are the file's
	 * last recipients, reached about 5 s after their STOP (more than twice the 2 s promise:
	 * the check still sees a late opt-out) */
	double secs = DRILL_PRE_MS / 1000.0 + drill_fault_ms(d, k) / 1000.0 +
	              drill_recover_budget_ms(d, k) / 1000.0 +
	              (k == SC_CANCEL ? 10
	               : k == SC_STOP ? 5
	                              : 4);
	/* as many as the fault and its recovery need, at most N -- unless N would end the blast
	 * before the fault does */
	double least = d->rate * (DRILL_PRE_MS + drill_fault_ms(d, k) + 4000) / 1000.0;
	double most = d->audience > least ? (double)d->audience : least;
	long n = (long)(d->rate * secs < most ? d->rate * secs : most);
	return n < 100 ? 100 : n;
}

/* Every scenario asked, each result appended to results; 0, or -1 when a process stopped. */
static int run_all(drill_t *d, json_t *results)
{
	long stamp = (long)(clock_wall_ms() / 1000);
	for (int oi = 0; oi < d->norder && !tocsin_stop; oi++) {
		sc_kind_t k = (sc_kind_t)d->order[oi];
		run_t r = {.kind = k, .begin = clock_wall_ms()};
		drill_primary_reset(d);
		r.n = blast_size(d, k);
		if (d->use_running) /* the running store keeps the last drill's campaigns */
			snprintf(r.id, sizeof r.id, "drill-%s-%ld", drill_sc[k].name, stamp);
		else
			snprintf(r.id, sizeof r.id, "drill-%s", drill_sc[k].name);
		printf("  %-8s %ld messages: %s\n", drill_sc[k].name, r.n, drill_sc[k].title);
		fflush(stdout);
		if (drill_blast(d, &r))
			return -1;
		json_t *m = drill_measure(d, &r);
		drill_phases(&r, clock_wall_ms(), m);
		if (k == SC_CAPACITY && json_number_value(json_object_get(m, "rate_per_s")) > 0)
			d->rate = json_number_value(json_object_get(m, "rate_per_s"));
		json_array_append_new(results, m);
	}
	return 0;
}

/* The table, the report and the verdict: the exit status. */
static int finish(drill_t *d, json_t *cap, json_t *results, int64_t begun, int64_t started,
                  const char *report, const char *jpath)
{
	const cfg_t *cfg = d->user;
	double la[1] = {0};
	getloadavg(la, 1);
	json_t *doc = json_pack("{s:i,s:s,s:I,s:i,s:i,s:s,s:s,s:s,s:f,s:I,s:b,s:O,s:O}", "v", 1,
	                        "config", cfg->path, "audience", (json_int_t)d->audience, "segments",
	                        d->segments, "latency_ms", d->latency_ms, "primary", d->primary,
	                        "secondary", d->secondary ? d->secondary : "", "pool", d->pool,
	                        "load", la[0], "duration_ms", (json_int_t)(clock_wall_ms() - started),
	                        "use_running", d->use_running, "capacity", cap, "scenarios", results);
	int pass = 1, rc = 1;
	size_t i;
	json_t *sc;
	char err[512];
	json_array_foreach(results, i, sc) pass &= json_is_true(json_object_get(sc, "pass"));
	json_object_set_new(doc, "pass", json_boolean(pass));
	json_object_set_new(doc, "startup_ms", json_integer(started - begun));
	json_object_set_new(doc, "load_start", json_real(d->load_start));
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
	return rc;
}

/* the capacity estimate for the drill's blast; d->rate and d->secondary_rate from it */
static json_t *estimate(drill_t *d)
{
	cap_opts_t co = {.audience = d->audience,
	                 .segments = d->segments,
	                 .dispatchers = 1,
	                 .latency_ms = d->latency_ms,
	                 .pool = d->pool};
	json_t *cap = cap_estimate(d->user, &co);
	json_t *sms = json_array_get(json_object_get(cap, "channels"), 0), *cv;
	d->rate = json_number_value(json_object_get(sms, "messages_per_s"));
	size_t ci;
	json_array_foreach(json_object_get(sms, "vendors"), ci,
	                   cv) if (d->secondary &&
	                           !strcmp(json_string_value(json_object_get(cv, "name")) ?: "",
	                                   d->secondary))
	    d->secondary_rate = json_number_value(json_object_get(cv, "sustained")) / d->segments;
	return cap;
}

int cmd_drill(cfg_t *cfg, int argc, char **argv)
{
	static drill_t d; /* large; one per process */
	int64_t begun = clock_wall_ms();
	memset(&d, 0, sizeof d);
	getloadavg(&d.load_start, 1);
	d.user = cfg;
	d.audience = 20000;
	d.segments = 1;
	d.latency_ms = 100;
	parse_scenarios(&d, "all");
	char report[2048] = "", jpath[2048];
	int rc = parse_opts(&d, argc, argv, report, sizeof report);
	if (rc >= 0) /* --help, or a bad option: nothing is started */
		return rc;
	rc = pick_route(&d, cfg);
	if (rc == 0)
		rc = prepare_dir(&d, report, sizeof report, jpath, sizeof jpath);
	if (rc || !d.sup) {
		sup_free(d.sup);
		json_decref(d.sim_saved);
		return rc;
	}
	json_t *cap = estimate(&d), *results = json_array();
	printf("tocsin drill: %s, %ld recipients, SMS route %s%s%s, state and logs in %s\n",
	       cfg->path, d.audience, d.primary, d.secondary ? " then " : "",
	       d.secondary ? d.secondary : "", d.dir);
	fflush(stdout);
	rc = 1;
	int started_ok;
	if (d.use_running) {
		started_ok = !drill_launch_slot(&d);
		printf("  using the running `tocsin up`: vendor emulator http://%s, tracker http://%s\n",
		       d.sim, d.trk);
	} else {
		d.doc = drill_private_doc(&d);
		started_ok = !drill_start_all(&d);
	}
	int64_t started = clock_wall_ms();
	if (started_ok && !run_all(&d, results))
		rc = finish(&d, cap, results, begun, started, report, jpath);
	fflush(stdout);
	if (d.use_running)
		drill_sim_restore(&d);
	sup_stop_all(d.sup);
	sup_free(d.sup);
	json_decref(results);
	json_decref(cap);
	json_decref(d.doc);
	json_decref(d.sim_saved);
	return rc;
}
