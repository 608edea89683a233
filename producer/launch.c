/* launch.c -- `tocsin launch` and `tocsin preview`: expand a campaign into the outbox, or cost it. */
#include "core/cmd.h"
#include "core/err.h"
#include "core/log.h"
#include "core/num.h"
#include "producer/camp.h"
#include "producer/prod.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void launch_usage(FILE *f)
{
	fprintf(f,
	        "usage: tocsin launch <campaign.json> [options]\n"
	        "\n"
	        "Expand a campaign into one outbox message per recipient and channel: read the\n"
	        "audience (CSV, JSON Lines or SQLite), normalize phones to E.164 and emails, drop\n"
	        "duplicates and opted-out addresses, render the templates, and produce to\n"
	        "tocsin.outbox.sms / tocsin.outbox.email. Bad rows go to the rejects file with\n"
	        "file:line, the raw value and the reason; the rest of the audience goes out.\n"
	        "\n"
	        "A launch checkpoints its position every second: after a crash or kill -9, run the\n"
	        "same command again and it continues where it stopped without producing anything\n"
	        "twice. A finished campaign sends nothing new when launched again.\n"
	        "\n"
	        "options:\n"
	        "  --resend-failed   re-queue only recipients whose latest outcome on\n"
	        "                    tocsin.status is a failure (failed, undelivered, bounced,\n"
	        "                    expired), leaving out those a resend would repeat (invalid\n"
	        "                    or landline number, opted out, configuration)\n"
	        "  --include-permanent  with --resend-failed: resend those too\n"
	        "  --dry-run         with --resend-failed: print how many would be re-queued, send\n"
	        "                    nothing\n"
	        "  --restart         ignore the checkpoint and start over (message ids are the same)\n"
	        "  --max-lag N       pause while more than N messages wait for the dispatchers\n"
	        "                    (default: none on a configured Kafka; on the embedded broker a\n"
	        "                    bound that keeps the outbox inside its per-partition retention)\n"
	        "                    0 = unbounded\n"
	        "  --rejects PATH    rejects file (default <var_dir>/launch/<id>/rejects.csv)\n"
	        "  --report PATH     JSON report (default <var_dir>/launch/<id>/report.json)\n"
	        "  --no-progress     no progress line on a terminal\n"
	        "  --check-outbox    send nothing: read the outbox and print this campaign's\n"
	        "                    messages, distinct ids and duplicates (exit 1 on duplicates)\n"
	        "  -h, --help        this help\n"
	        "\n"
	        "exit: 0 the audience was processed (rejected rows are in the summary), 1 nothing or\n"
	        "not all could be done (the line says why), 2 usage. See producer/README.md.\n");
}

static void preview_usage(FILE *f)
{
	fprintf(f,
	        "usage: tocsin preview <campaign.json> [--n N] [--digests PATH]\n"
	        "\n"
	        "Compile the campaign's templates, print the first N rendered messages (default 5),\n"
	        "then scan the whole audience without sending anything and print: recipients by\n"
	        "SMS encoding, a histogram of segments, rejected recipients by reason, replaced\n"
	        "characters, and the estimated cost per configured vendor (segments x cost for SMS,\n"
	        "emails x cost for email). Needs no broker. Rejects go to\n"
	        "<var_dir>/launch/<id>/preview-rejects.csv.\n"
	        "\n"
	        "options:\n"
	        "  --n N        how many rendered messages to print (0..1000)\n"
	        "  --digests PATH  write \"<address> <digest>\" for every email that would be\n"
	        "               queued: the SHA-256 digest of its inline render (subject, text,\n"
	        "               html) with the real unsubscribe links (needs the unsubscribe key),\n"
	        "               to compare with the emulator's GET /_sim/email/digests\n"
	        "  -h, --help   this help\n");
}

static int parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
	char *end;
	long long v = strtoll(s, &end, 10);
	if (!*s || *end || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

int cmd_launch(cfg_t *cfg, int argc, char **argv)
{
	static const struct option opts[] = {{"resend-failed", no_argument, NULL, 'f'},
	                                     {"restart", no_argument, NULL, 'R'},
	                                     {"max-lag", required_argument, NULL, 'l'},
	                                     {"rejects", required_argument, NULL, 'r'},
	                                     {"report", required_argument, NULL, 'o'},
	                                     {"no-progress", no_argument, NULL, 'P'},
	                                     {"check-outbox", no_argument, NULL, 'C'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {"include-permanent", no_argument, NULL, 'I'},
	                                     {"dry-run", no_argument, NULL, 'D'},
	                                     {0}};
	int check = 0, dry_run = 0;
	prod_opts_t po = {.max_lag = -1, .progress = 1};
	const char *ck = getenv("TOCSIN_LAUNCH_CHECKPOINT_MS"); /* tests and benches */
	int ck_ms;
	if (ck && !num_int(ck, 1, INT_MAX, &ck_ms))
		po.ckpt_every_ms = ck_ms;
	int o;
	optind = 1;
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case 'f': po.resend_failed = 1; break;
		case 'R': po.restart = 1; break;
		case 'l':
			if (parse_i64(optarg, 0, INT64_MAX / 2, &po.max_lag)) {
				fprintf(stderr,
				        "tocsin launch: --max-lag needs a number of messages >= 0, not \"%s\"\n",
				        optarg);
				return 2;
			}
			break;
		case 'r': po.rejects_path = optarg; break;
		case 'o': po.report_path = optarg; break;
		case 'P': po.progress = 0; break;
		case 'C': check = 1; break;
		case 'I': po.include_permanent = 1; break;
		case 'D': dry_run = 1; break;
		case 'h': launch_usage(stdout); return 0;
		default: launch_usage(stderr); return 2;
		}
	}
	if ((dry_run || po.include_permanent) && !po.resend_failed) {
		fprintf(stderr, "tocsin launch: --%s goes with --resend-failed\n",
		        dry_run ? "dry-run" : "include-permanent");
		return 2;
	}
	if (optind != argc - 1) {
		fprintf(stderr, "tocsin launch: %s\n",
		        optind >= argc ? "which campaign? (tocsin launch <campaign.json>)"
		                       : "one campaign file at a time");
		return 2;
	}
	char err[1024] = "";
	camp_t *camp = camp_load(argv[optind], err, sizeof err);
	if (!camp) {
		fprintf(stderr, "tocsin launch: %s\n", err);
		return 1;
	}
	if (camp->email_on && !check && !(cfg->public_url && cfg->public_url[0])) {
		fprintf(stderr,
		        "tocsin launch: %s: campaign %s has an email version but tracker.public_url is "
		        "not set in %s (unsubscribe links and receipts need it); nothing queued\n",
		        camp->path, camp->id, cfg->path);
		camp_free(camp);
		return 2;
	}
	if (check) {
		int crc = prod_check_outbox(cfg, camp, stdout, err, sizeof err);
		if (crc)
			fprintf(stderr, "tocsin launch: %s\n", err);
		camp_free(camp);
		return crc ? 1 : 0;
	}
	if (dry_run) {
		int drc = prod_resend_plan(cfg, camp, &po, stdout, err, sizeof err);
		if (drc)
			fprintf(stderr, "tocsin launch: %s\n", err);
		camp_free(camp);
		return drc ? 1 : 0;
	}
	prod_t *p = prod_new(cfg, camp, &po, err, sizeof err);
	if (!p) {
		fprintf(stderr, "tocsin launch: %s\n", err);
		camp_free(camp);
		return 1;
	}
	err[0] = 0;
	int rc = prod_run(p, err, sizeof err);
	prod_print_summary(p, stdout);
	const prod_stats_t *st = prod_stats(p);
	log_info("event=launch_done campaign=%s read=%lld queued=%lld rejected=%lld suppressed=%lld "
	         "duplicates=%lld produced=%lld rc=%d",
	         camp->id, (long long)st->read, (long long)st->queued, (long long)st->rejected,
	         (long long)st->suppressed, (long long)st->duplicates, (long long)st->produced, rc);
	int code = 0;
	if (rc) {
		fprintf(stderr, "tocsin launch: %s\n", err);
		code = 1;
	} else if (!st->already_done && st->read == 0) {
		fprintf(stderr, "tocsin launch: nothing queued: the audience has no rows (%s)\n",
		        camp->aud_path);
		code = 1;
	} else if (!st->already_done && st->queued == 0 && !po.resend_failed) {
		fprintf(stderr,
		        "tocsin launch: nothing queued: all %lld rows were rejected, suppressed or duplicates (see %s)\n",
		        (long long)st->read, prod_rejects_path(p));
		code = 1;
	}
	prod_free(p);
	camp_free(camp);
	return code;
}

int cmd_preview(cfg_t *cfg, int argc, char **argv)
{
	static const struct option opts[] = {{"n", required_argument, NULL, 'n'},
	                                     {"digests", required_argument, NULL, 'd'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {0}};
	int64_t n = 5;
	const char *dpath = NULL;
	int o;
	optind = 1;
	while ((o = getopt_long(argc, argv, "n:h", opts, NULL)) != -1) {
		switch (o) {
		case 'n':
			if (parse_i64(optarg, 0, 1000, &n)) {
				fprintf(stderr,
				        "tocsin preview: --n needs a number 0..1000, not \"%s\"\n",
				        optarg);
				return 2;
			}
			break;
		case 'd': dpath = optarg; break;
		case 'h': preview_usage(stdout); return 0;
		default: preview_usage(stderr); return 2;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "tocsin preview: %s\n",
		        optind >= argc ? "which campaign? (tocsin preview <campaign.json>)"
		                       : "one campaign file at a time");
		return 2;
	}
	char err[1024] = "";
	camp_t *camp = camp_load(argv[optind], err, sizeof err);
	if (!camp) {
		fprintf(stderr, "tocsin preview: %s\n", err);
		return 1;
	}
	prod_opts_t po = {.dry = 1, .preview_n = (int)n, .out = stdout};
	if (dpath && !(po.digests = fopen(dpath, "w"))) {
		fprintf(stderr, "tocsin preview: --digests %s: %s\n", dpath, strerror(errno));
		camp_free(camp);
		return 1;
	}
	prod_t *p = prod_new(cfg, camp, &po, err, sizeof err);
	if (!p) {
		fprintf(stderr, "tocsin preview: %s\n", err);
		if (po.digests)
			fclose(po.digests);
		camp_free(camp);
		return 1;
	}
	int rc = prod_run(p, err, sizeof err);
	if (po.digests && fclose(po.digests) && !rc) {
		snprintf(err, sizeof err, "--digests %s: %s", dpath, strerror(errno));
		rc = TOCSIN_ERR_IO;
	}
	prod_print_preview(p, stdout);
	if (rc)
		fprintf(stderr, "tocsin preview: %s\n", err);
	prod_free(p);
	camp_free(camp);
	return rc ? 1 : 0;
}
