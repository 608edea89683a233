/* dead.c -- `tocsin dead`: list the messages that could not be sent (tocsin.dead), with why. */
#include "core/clock.h"
#include "core/cmd.h"
#include "core/kq.h"
#include "core/log.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: tocsin dead [--campaign ID] [--json] [--limit N]\n"
	        "\n"
	        "Read tocsin.dead from its start to its current end and print every message that\n"
	        "could not be sent: id, campaign, final state, vendor code, attempts and the\n"
	        "reason; then a count. With --json, one JSON record per line as stored (the\n"
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
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(nparts);
	int64_t *high = calloc((size_t)nparts, sizeof *high);
	int waiting = 0;
	for (int p = 0; p < nparts; p++) {
		int64_t lo = 0, hi = 0;
		rd_kafka_query_watermark_offsets(rk, KQ_T_DEAD, p, &lo, &hi, 10000);
		high[p] = hi;
		if (hi > lo) {
			rd_kafka_topic_partition_list_add(l, KQ_T_DEAD, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
			waiting++;
		}
	}
	rd_kafka_assign(rk, l);
	rd_kafka_topic_partition_list_destroy(l);
	long shown = 0, total = 0;
	int64_t deadline = clock_mono_ms() + 30000;
	while (waiting > 0 && clock_mono_ms() < deadline) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
		if (!m)
			continue;
		if (m->err) {
			rd_kafka_message_destroy(m);
			continue;
		}
		if (m->offset + 1 >= high[m->partition])
			waiting--;
		json_t *r = json_loadb(m->payload, m->len, 0, NULL);
		const char *c = str(r, "campaign");
		if (r && (!campaign || !strcmp(c, campaign))) {
			total++;
			if (limit < 0 || shown < limit) {
				shown++;
				if (json)
					printf("%.*s\n", (int)m->len, (const char *)m->payload);
				else
					printf("%s  %-12s %-8s %-10s %3lld  %s\n", str(r, "id"), c, str(r, "state"),
					       str(r, "code"), (long long)json_integer_value(json_object_get(r, "attempts")),
					       str(r, "reason"));
			}
		} else if (!r && !campaign) {
			total++;
			if (!json)
				printf("(unreadable record at partition %d offset %lld)\n", (int)m->partition,
				       (long long)m->offset);
		}
		json_decref(r);
		rd_kafka_message_destroy(m);
	}
	if (waiting > 0)
		fprintf(stderr, "tocsin dead: gave up reading after 30 s; the list may be incomplete\n");
	if (!json)
		printf("%ld dead letter%s%s%s\n", total, total == 1 ? "" : "s", campaign ? " for " : "",
		       campaign ? campaign : "");
	free(high);
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	return waiting > 0 ? 1 : 0;
}
