/* capacity.c -- `tocsin capacity`: the sustained rate per channel at the configured limits and
 * how long an audience takes, from the configuration alone. */
#include "core/capacity.h"
#include "core/cmd.h"
#include "core/num.h"

#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* One vendor's three limits in units/s (INFINITY = unlimited) and which one binds. */
typedef struct cap_row {
	const cfg_vendor_t *v;
	int has_sender;
	double vendor_rate, sender_rate, window_rate, sustained;
	const char *binds;
} cap_row_t;

/* The pool's per-number rate on v: senders.<pool>.rate_per_number, else rate_per_sender;
 * 0 = unlimited (as core/rl.c reads them). */
static double pool_rate(const cfg_vendor_t *v, const char *pool)
{
	json_t *so = json_object_get(json_object_get(v->raw, "senders"), pool);
	json_t *x = json_is_object(so) ? json_object_get(so, "rate_per_number") : NULL;
	double r = json_is_number(x) ? json_number_value(x) : v->rate_per_sender;
	return r > 0 ? r : INFINITY;
}

/* units one request carries: an SMS of `segments` segments, or a batch of emails */
static double per_request(msg_channel_t ch, const cap_opts_t *o)
{
	return ch == MSG_CH_SMS ? (double)o->segments : (double)CAP_EMAIL_BATCH;
}

static int eff_dispatchers(int d) { return d > CAP_OUTBOX_PARTITIONS ? CAP_OUTBOX_PARTITIONS : d; }

static void row_eval(const cfg_t *c, msg_channel_t ch, const cfg_vendor_t *v, const char *pool,
                     const cap_opts_t *o, int dispatchers, int numbers, cap_row_t *r)
{
	memset(r, 0, sizeof *r);
	r->v = v;
	r->has_sender = cfg_sender(v, pool) != NULL;
	r->vendor_rate = v->rate_per_s > 0 ? v->rate_per_s : INFINITY;
	r->sender_rate = pool_rate(v, pool) * numbers;
	int win = v->max_in_flight < c->max_in_flight ? v->max_in_flight : c->max_in_flight;
	r->window_rate = eff_dispatchers(dispatchers) * win * per_request(ch, o) * 1000.0 /
	                 o->latency_ms;
	if (!r->has_sender) {
		r->sustained = 0;
		r->binds = "no sender";
		return;
	}
	r->sustained = r->window_rate;
	r->binds = "max_in_flight";
	if (r->sender_rate <= r->sustained) {
		r->sustained = r->sender_rate;
		r->binds = json_object_get(json_object_get(json_object_get(v->raw, "senders"), pool),
		                           "rate_per_number")
		               ? "rate_per_number"
		               : "rate_per_sender";
	}
	if (r->vendor_rate <= r->sustained) {
		r->sustained = r->vendor_rate;
		r->binds = "rate_per_s";
	}
}

/* The route's total in units/s with `dispatchers`, one more number on vendor index plus_num
 * (-1: none) and a copy of vendor index plus_vendor (-1: none); *binds names the limit. */
static double chan_total(const cfg_t *c, msg_channel_t ch, const char *pool, const cap_opts_t *o,
                         int dispatchers, int plus_num, int plus_vendor, const char **binds,
                         double *window, double *cpu)
{
	const cfg_route_t *rt = &c->routes[ch];
	double sum = 0;
	for (size_t i = 0; i < rt->nvendors; i++) {
		cap_row_t r;
		row_eval(c, ch, cfg_vendor(c, rt->vendors[i]), pool, o, dispatchers,
		         (int)i == plus_num ? 2 : 1, &r);
		sum += r.sustained;
		if ((int)i == plus_vendor)
			sum += r.sustained;
	}
	int d = eff_dispatchers(dispatchers);
	double w = d * (double)c->max_in_flight * per_request(ch, o) * 1000.0 / o->latency_ms;
	double u = d * CAP_DSP_MSGS_PER_S * (ch == MSG_CH_SMS ? o->segments : 1);
	if (window)
		*window = w;
	if (cpu)
		*cpu = u;
	double t = sum;
	*binds = "vendors";
	if (w < t) {
		t = w;
		*binds = "dispatcher.max_in_flight";
	}
	if (u < t) {
		t = u;
		*binds = "dispatcher CPU";
	}
	return t;
}

static json_t *rate_json(double r)
{
	return isinf(r) ? json_null() : json_real(round(r * 10) / 10);
}

/* {"messages_per_s","seconds"} for a total of units/s */
static json_t *outcome(msg_channel_t ch, const cap_opts_t *o, double units)
{
	double mps = units / (ch == MSG_CH_SMS ? o->segments : 1);
	return json_pack("{s:o,s:o}", "messages_per_s", json_real(round(mps * 10) / 10), "seconds",
	                 json_real(mps > 0 ? round(o->audience / mps * 10) / 10 : -1));
}

static json_t *chan_json(const cfg_t *c, msg_channel_t ch, const cap_opts_t *o)
{
	const cfg_route_t *rt = &c->routes[ch];
	const char *pool = o->pool;
	if (!pool) {
		const cfg_vendor_t *v0 = cfg_vendor(c, rt->vendors[0]);
		pool = v0 && v0->nsenders ? v0->senders[0].pool : "main";
	}
	json_t *vs = json_array();
	char vbinds[512] = "";
	size_t vl = 0;
	int best = -1, best_num = -1;
	double best_s = 0, best_gain = 0;
	const char *binds;
	double window, cpu;
	double total = chan_total(c, ch, pool, o, o->dispatchers, -1, -1, &binds, &window, &cpu);
	for (size_t i = 0; i < rt->nvendors; i++) {
		cap_row_t r;
		row_eval(c, ch, cfg_vendor(c, rt->vendors[i]), pool, o, o->dispatchers, 1, &r);
		json_array_append_new(vs, json_pack("{s:s,s:o,s:o,s:o,s:o,s:s}", "name", r.v->name,
		                                    "vendor_rate", rate_json(r.vendor_rate),
		                                    "sender_rate", rate_json(r.sender_rate),
		                                    "window_rate", rate_json(r.window_rate), "sustained",
		                                    rate_json(r.sustained), "binds", r.binds));
		if (r.has_sender && vl < sizeof vbinds)
			vl += (size_t)snprintf(vbinds + vl, sizeof vbinds - vl, "%s%s %s",
			                       vl ? ", " : "", r.v->name, r.binds);
		if (r.sustained > best_s) {
			best_s = r.sustained;
			best = (int)i;
		}
		const char *b2;
		double g = chan_total(c, ch, pool, o, o->dispatchers, (int)i, -1, &b2, NULL, NULL) -
		           total;
		if (g > best_gain + 1e-9) {
			best_gain = g;
			best_num = (int)i;
		}
	}
	char why[600];
	if (!strcmp(binds, "vendors"))
		snprintf(why, sizeof why, "vendor limits (%s)", vbinds);
	else
		snprintf(why, sizeof why, "%s", binds);
	if (o->dispatchers > CAP_OUTBOX_PARTITIONS) {
		size_t wl = strlen(why);
		snprintf(why + wl, sizeof why - wl, "; only %d of %d dispatchers get partitions",
		         CAP_OUTBOX_PARTITIONS, o->dispatchers);
	}
	json_t *wi = json_object();
	const char *b2;
	if (best_num >= 0) {
		json_t *n = outcome(ch, o, total + best_gain);
		json_object_set_new(n, "where", json_string(rt->vendors[best_num]));
		json_object_set_new(wi, "number", n);
	} else {
		json_object_set_new(wi, "number", json_null());
	}
	if (best >= 0) {
		json_t *n = outcome(ch, o,
		                    chan_total(c, ch, pool, o, o->dispatchers, -1, best, &b2, NULL,
		                               NULL));
		json_object_set_new(n, "like", json_string(rt->vendors[best]));
		json_object_set_new(wi, "vendor", n);
	} else {
		json_object_set_new(wi, "vendor", json_null());
	}
	json_object_set_new(
	    wi, "dispatcher",
	    outcome(ch, o, chan_total(c, ch, pool, o, o->dispatchers + 1, -1, -1, &b2, NULL, NULL)));
	json_t *cj = json_pack("{s:s,s:s,s:s,s:o,s:o,s:o,s:o,s:s,s:o}", "channel",
	                       msg_channel_name(ch), "pool", pool, "unit",
	                       ch == MSG_CH_SMS ? "segments" : "emails", "vendors", vs,
	                       "dispatcher_window", rate_json(window), "dispatcher_cpu",
	                       rate_json(cpu), "units_per_s", rate_json(total), "binds", why,
	                       "what_if", wi);
	json_t *res = outcome(ch, o, total);
	json_object_update(cj, res);
	json_decref(res);
	return cj;
}

json_t *cap_estimate(const cfg_t *c, const cap_opts_t *o)
{
	json_t *chans = json_array();
	for (int ch = 0; ch < MSG_CH__COUNT; ch++)
		if (c->routes[ch].nvendors)
			json_array_append_new(chans, chan_json(c, (msg_channel_t)ch, o));
	return json_pack("{s:I,s:i,s:i,s:i,s:o}", "audience", (json_int_t)o->audience, "segments",
	                 o->segments, "dispatchers", o->dispatchers, "latency_ms", o->latency_ms,
	                 "channels", chans);
}

void cap_duration(double s, char *out, size_t outlen)
{
	if (s < 0)
		snprintf(out, outlen, "never");
	else if (s < 100)
		snprintf(out, outlen, "%.1f s", s);
	else if (s < 3600)
		snprintf(out, outlen, "%d min %02d s", (int)s / 60, (int)s % 60);
	else
		snprintf(out, outlen, "%d h %02d min", (int)(s / 3600), (int)s % 3600 / 60);
}

static void fmt_rate(json_t *r, char *out, size_t outlen)
{
	if (!json_is_number(r))
		snprintf(out, outlen, "unlimited");
	else
		snprintf(out, outlen, "%.0f/s", json_number_value(r));
}

static double num(const json_t *o, const char *k)
{
	return json_number_value(json_object_get(o, k));
}

static void print_if(FILE *f, const char *what, const char *what_none, json_t *w, const char *key)
{
	char d[64];
	if (!json_is_object(w)) {
		fprintf(f, "  %-34s no gain (that limit does not bind)\n", what_none);
		return;
	}
	cap_duration(num(w, "seconds"), d, sizeof d);
	char lbl[96];
	snprintf(lbl, sizeof lbl, "%s%s%s", what, key ? " " : "",
	         key ? json_string_value(json_object_get(w, key)) : "");
	fprintf(f, "  %-34s %8.0f messages/s, %s\n", lbl, num(w, "messages_per_s"), d);
}

void cap_print(FILE *f, const json_t *e)
{
	size_t i;
	json_t *ch;
	fprintf(f,
	        "capacity at the configured limits: %lld recipients per channel, %d segment(s) per SMS, "
	        "%d dispatcher(s) per channel, vendors answering in %d ms\n",
	        (long long)json_integer_value(json_object_get(e, "audience")),
	        (int)json_integer_value(json_object_get(e, "segments")),
	        (int)json_integer_value(json_object_get(e, "dispatchers")),
	        (int)json_integer_value(json_object_get(e, "latency_ms")));
	json_array_foreach(json_object_get(e, "channels"), i, ch)
	{
		const char *unit = json_string_value(json_object_get(ch, "unit"));
		fprintf(f, "\n%s (sender pool %s; rates in %s/s)\n",
		        json_string_value(json_object_get(ch, "channel")),
		        json_string_value(json_object_get(ch, "pool")), unit);
		fprintf(f, "  %-14s %12s %12s %12s %12s  %s\n", "vendor", "rate_per_s", "sender",
		        "in flight", "sustained", "binds");
		size_t k;
		json_t *v;
		json_array_foreach(json_object_get(ch, "vendors"), k, v)
		{
			char a[32], b[32], c[32], d[32];
			fmt_rate(json_object_get(v, "vendor_rate"), a, sizeof a);
			fmt_rate(json_object_get(v, "sender_rate"), b, sizeof b);
			fmt_rate(json_object_get(v, "window_rate"), c, sizeof c);
			fmt_rate(json_object_get(v, "sustained"), d, sizeof d);
			fprintf(f, "  %-14s %12s %12s %12s %12s  %s\n",
			        json_string_value(json_object_get(v, "name")), a, b, c, d,
			        json_string_value(json_object_get(v, "binds")));
		}
		char dur[64];
		cap_duration(num(ch, "seconds"), dur, sizeof dur);
		fprintf(f, "  route: %.0f %s/s = %.0f messages/s; %lld recipients take %s\n",
		        num(ch, "units_per_s"), unit, num(ch, "messages_per_s"),
		        (long long)json_integer_value(json_object_get(e, "audience")), dur);
		fprintf(f, "  binds: %s (dispatcher window %.0f/s, CPU about %.0f/s)\n",
		        json_string_value(json_object_get(ch, "binds")),
		        num(ch, "dispatcher_window"), num(ch, "dispatcher_cpu"));
		json_t *wi = json_object_get(ch, "what_if");
		print_if(f, "+1 sender number on", "+1 sender number",
		         json_object_get(wi, "number"), "where");
		print_if(f, "+1 vendor like", "+1 vendor", json_object_get(wi, "vendor"), "like");
		print_if(f, "+1 dispatcher", "+1 dispatcher", json_object_get(wi, "dispatcher"), NULL);
	}
}

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: tocsin capacity [--audience N] [--segments S] [--dispatchers D] [--latency-ms L]\n"
	        "                       [--pool NAME] [--json]\n"
	        "\n"
	        "From the configuration alone (nothing is started or sent): per channel and vendor of\n"
	        "its route, the sustained rate at the configured limits -- the vendor's rate_per_s,\n"
	        "the sender pool's rate_per_number (or rate_per_sender) and max_in_flight requests\n"
	        "per dispatcher answered in L ms -- the route's total (vendors of a route add up: what\n"
	        "one cannot take goes to the next), capped by dispatcher.max_in_flight and about\n"
	        "%.0f messages/s of CPU per dispatcher, how long N recipients take, which limit binds,\n"
	        "and what one more sender number, one more vendor like the best one, or one more\n"
	        "dispatcher would buy. At most %d dispatchers per channel do work (outbox partitions).\n"
	        "\n"
	        "  --audience N     recipients per channel (default 100000)\n"
	        "  --segments S     SMS segments per message, 1..10 (default 1)\n"
	        "  --dispatchers D  dispatchers per channel, 1..1000 (default 1)\n"
	        "  --latency-ms L   vendor answer time to assume, 1..60000 (default 100; see\n"
	        "                   latency_ms= of `tocsin vendor-send`)\n"
	        "  --pool NAME      sender pool of the blast (default: the first of the route's first vendor)\n"
	        "  --json           print the estimate as JSON\n",
	        CAP_DSP_MSGS_PER_S, CAP_OUTBOX_PARTITIONS);
}

int cmd_capacity(cfg_t *cfg, int argc, char **argv)
{
	static const struct option opts[] = {{"audience", required_argument, NULL, 'n'},
	                                     {"segments", required_argument, NULL, 's'},
	                                     {"dispatchers", required_argument, NULL, 'd'},
	                                     {"latency-ms", required_argument, NULL, 'l'},
	                                     {"pool", required_argument, NULL, 'p'},
	                                     {"json", no_argument, NULL, 'j'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {0}};
	cap_opts_t o = {.audience = 100000, .segments = 1, .dispatchers = 1, .latency_ms = 100};
	int opt, as_json = 0;
	int64_t n;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'n':
			if (num_i64(optarg, 1, 100000000, &n)) {
				fprintf(stderr, "tocsin capacity: --audience must be 1..100000000\n");
				return 2;
			}
			o.audience = (long)n;
			break;
		case 's':
			if (num_int(optarg, 1, 10, &o.segments)) {
				fprintf(stderr, "tocsin capacity: --segments must be 1..10\n");
				return 2;
			}
			break;
		case 'd':
			if (num_int(optarg, 1, 1000, &o.dispatchers)) {
				fprintf(stderr, "tocsin capacity: --dispatchers must be 1..1000\n");
				return 2;
			}
			break;
		case 'l':
			if (num_int(optarg, 1, 60000, &o.latency_ms)) {
				fprintf(stderr, "tocsin capacity: --latency-ms must be 1..60000\n");
				return 2;
			}
			break;
		case 'p': o.pool = optarg; break;
		case 'j': as_json = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	int routes = 0;
	for (int ch = 0; ch < MSG_CH__COUNT; ch++)
		routes += cfg->routes[ch].nvendors > 0;
	if (!routes) {
		fprintf(stderr, "tocsin capacity: %s: no channel has a vendor\n", cfg->path);
		return 1;
	}
	if (o.pool) {
		int found = 0;
		for (size_t i = 0; i < cfg->nvendors; i++)
			found |= cfg_sender(&cfg->vendors[i], o.pool) != NULL;
		if (!found) {
			fprintf(stderr, "tocsin capacity: no vendor has sender pool \"%.64s\"\n",
			        o.pool);
			return 2;
		}
	}
	json_t *e = cap_estimate(cfg, &o);
	if (as_json) {
		char *s = json_dumps(e, JSON_INDENT(1));
		puts(s);
		free(s);
	} else {
		cap_print(stdout, e);
	}
	json_decref(e);
	return 0;
}
