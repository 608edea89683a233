/* broker.c -- `tocsin broker`: host librdkafka's mock cluster on loopback as the embedded Kafka. */
#include "core/num.h"
#include "core/cmd.h"
#include "core/err.h"
#include "core/kq.h"
#include "core/log.h"
#include "core/runfile.h"
#include "core/sig.h"

#include <getopt.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: tocsin broker [--brokers N] [--outbox-partitions N]\n"
	        "\n"
	        "Host the embedded Kafka broker: librdkafka's mock cluster of N brokers (default 3)\n"
	        "on 127.0.0.1, with every tocsin topic created. Writes the bootstrap list to\n"
	        "<var_dir>/" KQ_RUN_BOOTSTRAP ", which every other command reads when the config\n"
	        "names no kafka.\"bootstrap.servers\". Runs until SIGTERM or Ctrl-C.\n"
	        "\n"
	        "Limits: in memory only (everything is gone when it stops); each partition keeps\n"
	        "at most 5 MiB or 100,000 message batches and drops the oldest beyond that;\n"
	        "plaintext only. For production point the config at a real Kafka cluster.\n"
	        "\n"
	        "  --brokers N            mock brokers (1..9, default 3)\n"
	        "  --outbox-partitions N  partitions of each outbox topic, both lanes (default 12);\n"
	        "                         since retention is per partition, more partitions let more\n"
	        "                         messages wait in the outbox (e.g. for a capacity drill)\n");
}

int cmd_broker(cfg_t *cfg, int argc, char **argv)
{
	static const struct option opts[] = {{"brokers", required_argument, NULL, 'b'},
	                                     {"outbox-partitions", required_argument, NULL, 'p'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {0}};
	int nbrokers = 3, outbox_parts = 0, o;
	while ((o = getopt_long(argc, argv, "b:p:h", opts, NULL)) != -1) {
		switch (o) {
		case 'b':
			if (num_int(optarg, 1, 9, &nbrokers)) {
				fprintf(stderr, "tocsin broker: --brokers must be 1..9\n");
				return 2;
			}
			break;
		case 'p':
			if (num_int(optarg, 1, 1000, &outbox_parts)) {
				fprintf(stderr, "tocsin broker: --outbox-partitions must be 1..1000\n");
				return 2;
			}
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	char err[512];
	pid_t other = runfile_live_pid(cfg, KQ_RUN_PID);
	if (other && other != getpid()) {
		fprintf(stderr,
		        "tocsin broker: an embedded broker is already running (pid %d, var_dir %s)\n",
		        (int)other, cfg->var_dir);
		return 1;
	}
	if (runfile_mkdir(cfg, err, sizeof err)) {
		fprintf(stderr, "tocsin broker: %s\n", err);
		return 1;
	}
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_conf_set(conf, "client.id", "tocsin-broker", NULL, 0);
	rd_kafka_conf_set(conf, "log_level", "3", NULL, 0);
	char e[512];
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, e, sizeof e);
	if (!rk) {
		fprintf(stderr, "tocsin broker: cannot create the Kafka handle: %s\n", e);
		return 1;
	}
	rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, nbrokers);
	if (!mc) {
		fprintf(stderr, "tocsin broker: cannot start the mock cluster\n");
		rd_kafka_destroy(rk);
		return 1;
	}
	for (size_t i = 0; i < kq_ntopics; i++) {
		int parts = kq_topics[i].partitions;
		if (outbox_parts && !strncmp(kq_topics[i].name, "tocsin.outbox.", 14))
			parts = outbox_parts;
		rd_kafka_resp_err_t rc = rd_kafka_mock_topic_create(mc, kq_topics[i].name, parts,
		                                                    nbrokers < 3 ? nbrokers : 3);
		if (rc) {
			fprintf(stderr, "tocsin broker: cannot create topic %s: %s\n",
			        kq_topics[i].name, rd_kafka_err2str(rc));
			rd_kafka_mock_cluster_destroy(mc);
			rd_kafka_destroy(rk);
			return 1;
		}
	}
	const char *bs = rd_kafka_mock_cluster_bootstraps(mc);
	char pid[32];
	snprintf(pid, sizeof pid, "%d", (int)getpid());
	if (runfile_write(cfg, KQ_RUN_PID, pid, err, sizeof err) ||
	    runfile_write(cfg, KQ_RUN_BOOTSTRAP, bs, err, sizeof err)) {
		fprintf(stderr, "tocsin broker: %s\n", err);
		rd_kafka_mock_cluster_destroy(mc);
		rd_kafka_destroy(rk);
		return 1;
	}
	char path[4096];
	cfg_var_path(cfg, KQ_RUN_BOOTSTRAP, path, sizeof path);
	log_info("event=broker_started brokers=%d bootstrap=%s run_file=%s topics=%zu", nbrokers,
	         bs, path, kq_ntopics);
	log_warn("event=broker_limits msg=\"embedded broker: in memory only, lost on stop; each "
	         "partition keeps at most 5 MiB or 100000 message batches and drops the oldest "
	         "beyond that; plaintext only; use a real Kafka cluster in production\"");
	while (!tocsin_stop)
		usleep(100000);
	log_info("event=broker_stopping signal=%d", (int)tocsin_stop);
	runfile_remove(cfg, KQ_RUN_BOOTSTRAP);
	runfile_remove(cfg, KQ_RUN_PID);
	rd_kafka_mock_cluster_destroy(mc);
	rd_kafka_destroy(rk);
	log_info("event=broker_stopped");
	return 0;
}
