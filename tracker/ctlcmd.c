/* ctlcmd.c -- `tocsin campaign pause|resume|cancel <id>` and `tocsin vendor drain|undrain <name>`. */
#include "core/cmd.h"
#include "core/err.h"
#include "core/kq.h"
#include "tracker/api.h"
#include "tracker/ctl.h"

#include <jansson.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int help_asked(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return 1;
	return 0;
}

/* Take "--as NAME" (anywhere after the action) out of argv into *actor; the
 * default is the OS user. 0, or -1 with the reason on stderr. */
static int take_actor(int *argc, char **argv, const char *cmd, char *actor, size_t len)
{
	const char *as = NULL;
	int n = 0;
	for (int i = 0; i < *argc; i++) {
		if (!strcmp(argv[i], "--as") && i + 1 < *argc)
			as = argv[++i];
		else if (!strncmp(argv[i], "--as=", 5))
			as = argv[i] + 5;
		else
			argv[n++] = argv[i];
	}
	*argc = n;
	if (!as) {
		struct passwd *pw = getpwuid(geteuid());
		as = pw && pw->pw_name ? pw->pw_name : getenv("USER");
	}
	if (!as || !trk_ctl_actor_ok(as)) {
		fprintf(stderr,
		        "tocsin %s: --as needs a name of 1..64 letters, digits, . _ @ - (who did it)\n",
		        cmd);
		return -1;
	}
	snprintf(actor, len, "%s", as);
	return 0;
}

static rd_kafka_t *producer(const cfg_t *cfg, const char *cmd)
{
	char err[1024];
	rd_kafka_conf_t *conf = kq_conf_new(cfg, KQ_PRODUCER, "tocsin-ctl", NULL, err, sizeof err);
	rd_kafka_t *rk = conf ? kq_new(conf, KQ_PRODUCER, 10000, err, sizeof err) : NULL;
	if (!rk)
		fprintf(stderr, "tocsin %s: %s\n", cmd, err);
	return rk;
}

/* `tocsin campaign list [--json]`: every campaign the tracker knows, newest first. */
static int campaign_list(cfg_t *cfg, int json)
{
	char err[1024];
	trk_store_t *rd = trk_store_open(cfg->db_path, 1, err, sizeof err);
	if (!rd) {
		fprintf(stderr, "tocsin campaign: %s\n", err);
		return 1;
	}
	trk_api_q_t q = {.cfg = cfg, .rd = rd};
	buf_t b;
	buf_init(&b, 16u << 20);
	int rc = trk_api_campaigns(&q, &b);
	trk_store_free(rd);
	json_t *j = rc ? NULL : json_loadb(b.p, b.len, 0, NULL);
	if (!j) {
		fprintf(stderr, "tocsin campaign: cannot read the campaigns of %s: %s\n",
		        cfg->db_path, tocsin_strerror(rc ? rc : TOCSIN_ERR_IO));
		buf_free(&b);
		return 1;
	}
	if (json)
		fwrite(b.p, 1, b.len, stdout);
	else {
		printf("%-24s %-28s %-10s %10s %10s %9s\n", "id", "name", "state", "done", "queued",
		       "progress");
		size_t i;
		json_t *c;
		json_array_foreach(json_object_get(j, "campaigns"), i, c)
		{
			json_t *st = json_object_get(c, "states");
			long long pending = json_integer_value(json_object_get(st, "queued")) +
			                    json_integer_value(json_object_get(st, "retrying"));
			long long total = json_integer_value(json_object_get(c, "total"));
			printf("%-24s %-28.28s %-10s %10lld %10lld %8.1f%%\n",
			       json_string_value(json_object_get(c, "id")),
			       json_string_value(json_object_get(c, "name")),
			       json_string_value(json_object_get(c, "state")), total - pending,
			       (long long)json_integer_value(json_object_get(c, "queued")),
			       100 * json_number_value(json_object_get(c, "progress")));
		}
	}
	json_decref(j);
	buf_free(&b);
	return 0;
}

int cmd_campaign(cfg_t *cfg, int argc, char **argv)
{
	static const char use[] =
	    "usage: tocsin campaign pause|resume|cancel <campaign-id> [--as NAME]\n"
	    "       tocsin campaign list [--json]\n"
	    "\n"
	    "list: every campaign the tracker's store knows, newest first: id, name, state\n"
	    "(launching, running, paused, cancelled, done), messages done (past queued and\n"
	    "retrying), messages queued by the launch, progress. --json: GET /api/campaigns.\n"
	    "\n"
	    "Publish the campaign's new state on tocsin.campaigns; every dispatcher stops\n"
	    "(pause, cancel) or restarts (resume) sending it within about a second. A\n"
	    "cancelled campaign cannot be resumed. When the tracker's database exists the\n"
	    "campaign must be known to it (its name and queued count are carried over).\n"
	    "--as NAME says who did it (default: the OS user); the tracker's timeline shows it.\n";
	if (help_asked(argc, argv)) {
		fputs(use, stdout);
		return 0;
	}
	if (argc >= 2 && argc <= 3 && !strcmp(argv[1], "list") &&
	    (argc == 2 || !strcmp(argv[2], "--json")))
		return campaign_list(cfg, argc == 3);
	char actor[65];
	if (take_actor(&argc, argv, "campaign", actor, sizeof actor))
		return 2;
	if (argc != 3 ||
	    (strcmp(argv[1], "pause") && strcmp(argv[1], "resume") && strcmp(argv[1], "cancel"))) {
		fputs(use, stderr);
		return 2;
	}
	char err[1024];
	trk_store_t *rd = NULL;
	if (access(cfg->db_path, F_OK) == 0) {
		rd = trk_store_open(cfg->db_path, 1, err, sizeof err);
		if (!rd) {
			fprintf(stderr, "tocsin campaign: %s\n", err);
			return 1;
		}
	}
	rd_kafka_t *rk = producer(cfg, "campaign");
	int rc = rk ? trk_ctl_campaign(rk, rd, argv[2], argv[1], actor, err, sizeof err)
	            : TOCSIN_ERR_KAFKA;
	if (rk && rc)
		fprintf(stderr, "tocsin campaign: %s\n", err);
	if (!rc)
		printf("campaign %s: %s published on %s\n", argv[2],
		       !strcmp(argv[1], "pause")    ? "paused"
		       : !strcmp(argv[1], "resume") ? "running"
		                                    : "cancelled",
		       KQ_T_CAMPAIGNS);
	if (rk)
		rd_kafka_destroy(rk);
	trk_store_free(rd);
	return rc ? 1 : 0;
}

int cmd_vendor(cfg_t *cfg, int argc, char **argv)
{
	static const char use[] =
	    "usage: tocsin vendor drain|undrain <vendor-name> [--as NAME]\n"
	    "\n"
	    "drain: publish state \"drained\" (by operator) on tocsin.vendor-health; dispatchers\n"
	    "send nothing more through that vendor and fail over to the next in its route.\n"
	    "A drained vendor is never re-opened automatically. undrain: publish \"healthy\".\n"
	    "--as NAME says who did it (default: the OS user); the tracker's timeline shows it.\n";
	if (help_asked(argc, argv)) {
		fputs(use, stdout);
		return 0;
	}
	char actor[65];
	if (take_actor(&argc, argv, "vendor", actor, sizeof actor))
		return 2;
	if (argc != 3 || (strcmp(argv[1], "drain") && strcmp(argv[1], "undrain"))) {
		fputs(use, stderr);
		return 2;
	}
	char err[1024];
	if (!cfg_vendor(cfg, argv[2])) {
		fprintf(stderr, "tocsin vendor: unknown vendor \"%s\" (not in %s)\n", argv[2],
		        cfg->path);
		return 1;
	}
	rd_kafka_t *rk = producer(cfg, "vendor");
	if (!rk)
		return 1;
	int rc = trk_ctl_vendor(rk, cfg, argv[2], argv[1], actor, err, sizeof err);
	if (rc)
		fprintf(stderr, "tocsin vendor: %s\n", err);
	else
		printf("vendor %s: %s published on %s\n", argv[2],
		       !strcmp(argv[1], "drain") ? "drained" : "healthy", KQ_T_VENDOR_HEALTH);
	rd_kafka_destroy(rk);
	return rc ? 1 : 0;
}
