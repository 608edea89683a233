/* status.c -- `tocsin status <campaign>`: a campaign's counts per state and per vendor, from the store. */
#include "core/clock.h"
#include "core/cmd.h"
#include "core/err.h"
#include "tracker/api.h"
#include "tracker/presence.h"
#include "tracker/store.h"

#include <jansson.h>

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
	fprintf(f, "usage: tocsin status <campaign> [--json]\n"
	           "\n"
	           "Print a campaign's message counts per state and per vendor, read from the\n"
	           "tracker's sqlite store (tracker.db, default <var_dir>/tocsin.db). Read-only:\n"
	           "safe while `tocsin track` runs.\n"
	           "\n"
	           "  --json  one line: {\"campaign\":..,\"total\":N,\"states\":{..},\"vendors\":{..}}\n"
	           "          (states with zero messages omitted; total = distinct messages)\n"
	           "\n"
	           "exit: 0 ok, 1 unknown campaign or no database, 2 usage.\n");
}

int cmd_status(cfg_t *cfg, int argc, char **argv)
{
	static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {0}};
	int json = 0, o;
	optind = 1;
	while ((o = getopt_long(argc, argv, "jh", opts, NULL)) != -1) {
		switch (o) {
		case 'j': json = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (argc - optind != 1) {
		fprintf(stderr, "tocsin status: expected one campaign id (see tocsin status --help)\n");
		return 2;
	}
	const char *camp = argv[optind];
	char err[1024];
	trk_store_t *s = trk_store_open(cfg->db_path, 1, err, sizeof err);
	if (!s) {
		fprintf(stderr, "tocsin status: %s\n", err);
		return 1;
	}
	static trk_counts_t c; /* large; read-only command, one call */
	int rc = trk_store_counts(s, camp, &c);
	/* the campaign's state from its record on tocsin.campaigns ("unknown" before it) */
	char state[32] = "unknown";
	trk_api_q_t q = {.cfg = cfg, .rd = s};
	buf_t cb;
	buf_init(&cb, 1 << 20);
	json_t *cj = !rc && !trk_api_campaign(&q, camp, &cb) ? json_loadb(cb.p, cb.len, 0, NULL) : NULL;
	if (json_is_string(json_object_get(cj, "state")))
		snprintf(state, sizeof state, "%s", json_string_value(json_object_get(cj, "state")));
	/* a scheduled campaign's send_at (UTC), and an explicit urgent override of quiet hours */
	char when[96] = "", iso[32];
	int64_t send_at = json_integer_value(json_object_get(cj, "send_at_ms"));
	if (!strcmp(state, "scheduled") && send_at > 0)
		snprintf(when, sizeof when, " for %s", clock_iso8601(send_at, iso, sizeof iso));
	if (json_is_string(json_object_get(cj, "quiet_hours_override")))
		snprintf(when + strlen(when), sizeof when - strlen(when),
		         ", quiet hours OFF (urgent override)");
	/* the columns of the dashboard, and why messages failed (tracker/README.md) */
	char cols[512] = "", why[1024] = "";
	json_t *sm = json_object_get(cj, "summary");
#define SM(k) (long long)json_integer_value(json_object_get(sm, k))
	if (sm)
		snprintf(cols, sizeof cols,
		         "  audience %lld, sent %lld, delivered %lld, failed %lld, in progress %lld "
		         "(%lld retrying), cancelled %lld, expired %lld, opted out %lld, no receipt %lld\n",
		         SM("audience"), SM("sent"), SM("delivered"), SM("failed"),
		         SM("in_progress"), SM("retrying"), SM("cancelled"), SM("expired"),
		         SM("suppressed") +
		             (long long)json_integer_value(json_object_get(cj, "optouts")),
		         SM("unknown_receipt"));
#undef SM
	size_t ri;
	json_t *r;
	json_array_foreach(json_object_get(cj, "reasons"), ri, r)
	{
		size_t l = strlen(why);
		snprintf(why + l, sizeof why - l, "%s%s %lld",
		         l ? ", " : "  why: ", json_string_value(json_object_get(r, "reason")),
		         (long long)json_integer_value(json_object_get(r, "n")));
	}
	json_decref(cj);
	buf_free(&cb);
	trk_store_free(s);
	if (rc == TOCSIN_ERR_NOTFOUND) {
		fprintf(stderr, "tocsin status: unknown campaign \"%s\" in %s\n", camp, cfg->db_path);
		return 1;
	}
	if (rc) {
		fprintf(stderr, "tocsin status: cannot read %s: %s\n", cfg->db_path,
		        tocsin_strerror(rc));
		return 1;
	}
	if (json) {
		buf_t b;
		buf_init(&b, 1 << 20);
		rc = trk_counts_json(camp, &c, &b);
		if (!rc)
			printf("%s\n", b.p);
		buf_free(&b);
		return rc ? 1 : 0;
	}
	printf("campaign %s: %s%s, %lld messages\n%s", camp, state, when, (long long)c.total, cols);
	if (why[0])
		printf("%s\n", why);
	for (int i = 0; i < MSG_ST__COUNT; i++)
		if (c.states[i])
			printf("  %-12s %10lld\n", msg_state_name((msg_state_t)i),
			       (long long)c.states[i]);
	for (size_t k = 0; k < c.nvendors; k++) {
		printf("vendor %s:", c.vendors[k][0] ? c.vendors[k] : "(none yet)");
		for (int i = 0; i < MSG_ST__COUNT; i++)
			if (c.by_vendor[k][i])
				printf(" %s=%lld", msg_state_name((msg_state_t)i),
				       (long long)c.by_vendor[k][i]);
		printf("\n");
	}
	/* a channel without a dispatcher while messages wait (the tracker's presence report) */
	buf_t pb;
	buf_init(&pb, 1 << 20);
	json_t *pj = !trk_presence_report(cfg, &pb) ? json_loadb(pb.p, pb.len, 0, NULL) : NULL;
	size_t wi;
	json_t *w;
	json_array_foreach(json_object_get(pj, "warnings"), wi, w)
	    printf("warning: %s\n", json_string_value(w));
	json_decref(pj);
	buf_free(&pb);
	return 0;
}
