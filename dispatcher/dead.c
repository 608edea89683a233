/* dead.c -- `tocsin dead`: list the messages that could not be sent (tocsin.dead), with why. */
#include "core/cmd.h"
#include "core/err.h"
#include "core/kq.h"
#include "core/log.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f)
{
	fprintf(f, "usage: tocsin dead [--campaign ID] [--json] [--limit N]\n"
	           "\n"
	           "Read tocsin.dead from its start to its current end and print every message that\n"
	           "could not be sent: id, campaign, final state, vendor code, attempts and the\n"
	           "reason; and every message sent again after an ambiguous outcome (code\n"
	           "ambiguous_resent: its request went out, no answer and no receipt came, so the\n"
	           "recipient may have two); then the counts. With --json, one JSON record per line as stored (the\n"
	           "original outbox record is under \"message\"). Nothing is consumed or committed.\n"
	           "\n"
	           "  --campaign ID  only this campaign's messages\n"
	           "  --json         print the records as JSON lines\n"
	           "  --limit N      print at most N (the count still covers all)\n");
}

static const char *str(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	return json_is_string(v) ? json_string_value(v) : "";
}

typedef struct dead_list {
	const char *campaign; /* only this campaign, or NULL */
	int json;
	long limit; /* -1 = all */
	long shown, total;
	long resent; /* of total: code ambiguous_resent, sent again after an ambiguous outcome */
} dead_list_t;

/* kq_read callback: count and print one record of tocsin.dead. */
static int dead_record(void *ud, const rd_kafka_message_t *m)
{
	dead_list_t *dl = ud;
	json_t *r = json_loadb(m->payload, m->len, 0, NULL);
	const char *c = str(r, "campaign");
	if (r && (!dl->campaign || !strcmp(c, dl->campaign))) {
		dl->total++;
		dl->resent += !strcmp(str(r, "code"), "ambiguous_resent");
		if (dl->limit < 0 || dl->shown < dl->limit) {
			dl->shown++;
			if (dl->json)
				printf("%.*s\n", (int)m->len, (const char *)m->payload);
			else
				printf("%s  %-12s %-8s %-10s %3lld  %s\n", str(r, "id"), c,
				       str(r, "state"), str(r, "code"),
				       (long long)json_integer_value(json_object_get(r, "attempts")),
				       str(r, "reason"));
		}
	} else if (!r && !dl->campaign) {
		dl->total++;
		if (!dl->json)
			printf("(unreadable record at partition %d offset %lld)\n",
			       (int)m->partition, (long long)m->offset);
	}
	json_decref(r);
	return 0;
}

int cmd_dead(cfg_t *cfg, int argc, char **argv)
{
	static const struct option opts[] = {{"campaign", required_argument, NULL, 'c'},
	                                     {"json", no_argument, NULL, 'j'},
	                                     {"limit", required_argument, NULL, 'l'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {0}};
	const char *campaign = NULL;
	int json = 0, o;
	long limit = -1;
	while ((o = getopt_long(argc, argv, "c:jl:h", opts, NULL)) != -1) {
		switch (o) {
		case 'c': campaign = optarg; break;
		case 'j': json = 1; break;
		case 'l':
			limit = strtol(optarg, NULL, 10);
			if (limit < 0) {
				fprintf(stderr, "tocsin dead: --limit must be >= 0\n");
				return 2;
			}
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "tocsin dead: unexpected argument \"%s\"\n", argv[optind]);
		return 2;
	}
	char err[1024], group[64];
	snprintf(group, sizeof group, "tocsin-dead-reader-%d", (int)getpid());
	rd_kafka_t *rk = kq_consumer_new(cfg, "tocsin-dead", group, 10000, err, sizeof err);
	if (!rk) {
		fprintf(stderr, "tocsin dead: %s\n", err);
		return 1;
	}
	/* Every partition from the start, up to the end seen now. */
	int nparts = kq_partitions(rk, KQ_T_DEAD, 10000);
	if (nparts <= 0) {
		fprintf(stderr, "tocsin dead: topic %s does not exist\n", KQ_T_DEAD);
		rd_kafka_destroy(rk);
		return 1;
	}
	dead_list_t dl = {.campaign = campaign, .json = json, .limit = limit};
	kq_read_t rd = {.topic = KQ_T_DEAD,
	                .nparts = nparts,
	                .timeout_ms = 30000,
	                .query_timeout_ms = 10000};
	int rc = kq_read(rk, &rd, dead_record, &dl, err, sizeof err);
	if (rc == TOCSIN_ERR_TIMEOUT)
		fprintf(stderr,
		        "tocsin dead: gave up reading after 30 s; the list may be incomplete\n");
	else if (rc)
		fprintf(stderr, "tocsin dead: %s; the list may be incomplete\n", err);
	long dead = dl.total - dl.resent;
	if (!json && dl.resent)
		printf("%ld sent again after an ambiguous outcome (ambiguous_resent: the recipient may "
		       "have two)\n",
		       dl.resent);
	if (!json)
		printf("%ld dead letter%s%s%s\n", dead, dead == 1 ? "" : "s",
		       campaign ? " for " : "", campaign ? campaign : "");
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	return rc ? 1 : 0;
}
