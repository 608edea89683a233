/* ctlcmd.c -- `tocsin campaign pause|resume|cancel <id>` and `tocsin vendor drain|undrain <name>`. */
#include "core/cmd.h"
#include "core/err.h"
#include "core/kq.h"
#include "tracker/ctl.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int help_asked(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return 1;
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

int cmd_campaign(cfg_t *cfg, int argc, char **argv)
{
	static const char use[] =
	    "usage: tocsin campaign pause|resume|cancel <campaign-id>\n"
	    "\n"
	    "Publish the campaign's new state on tocsin.campaigns; every dispatcher stops\n"
	    "(pause, cancel) or restarts (resume) sending it within about a second. A\n"
	    "cancelled campaign cannot be resumed. When the tracker's database exists the\n"
	    "campaign must be known to it (its name and queued count are carried over).\n";
	if (help_asked(argc, argv)) {
		fputs(use, stdout);
		return 0;
	}
	if (argc != 3 || (strcmp(argv[1], "pause") && strcmp(argv[1], "resume") &&
	                  strcmp(argv[1], "cancel"))) {
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
	int rc = rk ? trk_ctl_campaign(rk, rd, argv[2], argv[1], err, sizeof err) : TOCSIN_ERR_KAFKA;
	if (rk && rc)
		fprintf(stderr, "tocsin campaign: %s\n", err);
	if (!rc)
		printf("campaign %s: %s published on %s\n", argv[2],
		       !strcmp(argv[1], "pause") ? "paused" : !strcmp(argv[1], "resume") ? "running" : "cancelled",
		       KQ_T_CAMPAIGNS);
	if (rk)
		rd_kafka_destroy(rk);
	trk_store_free(rd);
	return rc ? 1 : 0;
}

int cmd_vendor(cfg_t *cfg, int argc, char **argv)
{
	static const char use[] =
	    "usage: tocsin vendor drain|undrain <vendor-name>\n"
	    "\n"
	    "drain: publish state \"drained\" (by operator) on tocsin.vendor-health; dispatchers\n"
	    "send nothing more through that vendor and fail over to the next in its route.\n"
	    "A drained vendor is never re-opened automatically. undrain: publish \"healthy\".\n";
	if (help_asked(argc, argv)) {
		fputs(use, stdout);
		return 0;
	}
	if (argc != 3 || (strcmp(argv[1], "drain") && strcmp(argv[1], "undrain"))) {
		fputs(use, stderr);
		return 2;
	}
	char err[1024];
	if (!cfg_vendor(cfg, argv[2])) {
		fprintf(stderr, "tocsin vendor: unknown vendor \"%s\" (not in %s)\n", argv[2], cfg->path);
		return 1;
	}
	rd_kafka_t *rk = producer(cfg, "vendor");
	if (!rk)
		return 1;
	int rc = trk_ctl_vendor(rk, cfg, argv[2], argv[1], err, sizeof err);
	if (rc)
		fprintf(stderr, "tocsin vendor: %s\n", err);
	else
		printf("vendor %s: %s published on %s\n", argv[2],
		       !strcmp(argv[1], "drain") ? "drained" : "healthy", KQ_T_VENDOR_HEALTH);
	rd_kafka_destroy(rk);
	return rc ? 1 : 0;
}
