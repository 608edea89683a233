/* bench_launch.c -- CSV audience -> outbox on the embedded broker (librdkafka mock cluster):
 * recipients/s of the whole expansion (parse, normalize, dedupe, render, encode, produce) next
 * to librdkafka's bare produce rate of the same messages, measured in the same run. */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/hash.h"
#include "core/kq.h"
#include "core/log.h"
#include "core/msg.h"
#include "producer/camp.h"
#include "producer/prod.h"
#include "core/num.h"

static double thread_cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *const names[] = {"Ana",   "Ben",   "Carla", "Dev",
                                    "Elena", "Farid", "Grace", "Hiro"};
static const char *const cities[] = {"Washington", "New York", "Denver", "Austin"};

/* recipient i: a distinct valid NANP number in one of four spellings */
static int phone_of(long i, char *out, size_t n)
{
	static const char *const areas[] = {"202", "212", "303", "415", "512",
	                                    "617", "702", "808", "907", "971"};
	long a = i % 10, rest = i / 10;               /* 100,000 recipients per area code */
	int ex = 220 + (int)(rest / 10000) % 70 * 10; /* 220..910 step 10: never N11 */
	int line = (int)(rest % 10000);
	switch (i % 4) {
	case 0: return snprintf(out, n, "(%s) %03d-%04d", areas[a], ex, line);
	case 1: return snprintf(out, n, "%s-%03d-%04d", areas[a], ex, line);
	case 2: return snprintf(out, n, "+1 %s %03d %04d", areas[a], ex, line);
	default: return snprintf(out, n, "1.%s.%03d.%04d", areas[a], ex, line);
	}
}

static int64_t outbox_total(rd_kafka_t *rk)
{
	int64_t t = 0;
	for (int p = 0; p < 12; p++) {
		int64_t lo, hi;
		if (!rd_kafka_query_watermark_offsets(rk, KQ_T_OUTBOX_SMS, p, &lo, &hi, 5000))
			t += hi;
	}
	return t;
}

int main(int argc, char **argv)
{
	int64_t v = 1000000;
	long n = argc > 1 && num_i64(argv[1], 1000, 7000000, &v) ? -1 : (long)v;
	if (n < 1000 || n > 7000000) {
		fprintf(stderr, "usage: bench_launch [ROWS 1000..7000000]\n");
		return 2;
	}
	log_init("bench", TLOG_WARN);
	const char *dir = "bench/out/launch";
	if (system("mkdir -p bench/out/launch"))
		return 1;
	/* the audience */
	char csv[256];
	snprintf(csv, sizeof csv, "%s/audience-%ld.csv", dir, n);
	FILE *f = fopen(csv, "w");
	if (!f) {
		perror(csv);
		return 1;
	}
	fprintf(f, "first_name,last_name,phone,city,zip\n");
	for (long i = 0; i < n; i++) {
		char ph[40];
		phone_of(i, ph, sizeof ph);
		fprintf(f, "%s,Smith,%s,%s,%05ld\n", names[i % 8], ph, cities[i % 4],
		        10000 + i % 90000);
	}
	fclose(f);

	/* the embedded broker, as `tocsin broker` runs it: a 3-broker mock cluster */
	char e[512];
	rd_kafka_conf_t *mc_conf = rd_kafka_conf_new();
	rd_kafka_conf_set(mc_conf, "log_level", "2", NULL, 0);
	rd_kafka_t *mrk = rd_kafka_new(RD_KAFKA_PRODUCER, mc_conf, e, sizeof e);
	rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(mrk, 3);
	for (size_t i = 0; i < kq_ntopics; i++)
		rd_kafka_mock_topic_create(mc, kq_topics[i].name, kq_topics[i].partitions, 3);
	char cfgp[256], text[1024], campp[256];
	snprintf(cfgp, sizeof cfgp, "%s/tocsin.json", dir);
	snprintf(text, sizeof text,
	         "{\"var_dir\":\"%s/var\",\"quiet_hours\":{\"sms\":{\"enabled\":false}},"
	         "\"kafka\":{\"bootstrap.servers\":\"%s\"}}",
	         dir, rd_kafka_mock_cluster_bootstraps(mc));
	f = fopen(cfgp, "w");
	fputs(text, f);
	fclose(f);
	if (system("rm -rf bench/out/launch/var"))
		return 1;
	snprintf(campp, sizeof campp, "%s/campaign.json", dir);
	f = fopen(campp, "w");
	fprintf(f,
	        "{\"id\":\"bench\",\"audience\":\"audience-%ld.csv\",\"sms\":{\"sender\":\"main\","
	        "\"template\":\"Hi {{first_name}}, the {{city}} council votes tonight. Call now: "
	        "555-0100. Reply STOP to opt out\"}}\n",
	        n);
	fclose(f);
	cfg_t *cfg = cfg_load(cfgp, e, sizeof e);
	camp_t *camp = cfg ? camp_load(campp, e, sizeof e) : NULL;
	if (!camp) {
		fprintf(stderr, "bench_launch: %s\n", e);
		return 1;
	}

	/* 1. the launch: --max-lag 0 (no dispatcher runs here; the broker may drop old batches) */
	prod_opts_t o = {.max_lag = 0};
	prod_t *p = prod_new(cfg, camp, &o, e, sizeof e);
	if (!p) {
		fprintf(stderr, "bench_launch: %s\n", e);
		return 1;
	}
	rd_kafka_conf_t *qc = kq_conf_new(cfg, KQ_PRODUCER, "bench-q", NULL, e, sizeof e);
	rd_kafka_t *q = kq_new(qc, KQ_PRODUCER, 10000, e, sizeof e);
	int64_t before = outbox_total(q);
	double c0 = thread_cpu_s();
	int64_t t0 = clock_mono_ns();
	int rc = prod_run(p, e, sizeof e);
	double launch_s = (double)(clock_mono_ns() - t0) / 1e9, launch_cpu = thread_cpu_s() - c0;
	const prod_stats_t *st = prod_stats(p);
	int64_t landed = outbox_total(q) - before;
	int ok = rc == 0 && st->read == n && st->queued == n && st->produced == n &&
	         st->delivery_failed == 0 && landed == n;
	printf("bench_launch: %ld-row CSV -> tocsin.outbox.sms on the embedded broker (3-broker mock, 12 partitions, lz4, idempotent)\n",
	       n);
	printf("  launch:        %ld recipients in %.2f s wall = %.0f recipients/s; main thread %.2f s CPU = %.0f recipients per CPU-second\n",
	       n, launch_s, (double)n / launch_s, launch_cpu, (double)n / launch_cpu);
	printf("                 read %lld queued %lld rejected %lld duplicates %lld produced %lld, outbox grew by %lld, delivery failures %lld\n",
	       (long long)st->read, (long long)st->queued, (long long)st->rejected,
	       (long long)st->duplicates, (long long)st->produced, (long long)landed,
	       (long long)st->delivery_failed);
	prod_free(p);

	/* 2. the baseline: librdkafka's bare produce of the same messages (pre-encoded records,
	 * same keys, same producer settings), from the same thread */
	long ncache = n < 100000 ? n : 100000;
	char **keys = calloc((size_t)ncache, sizeof *keys),
	     **vals = calloc((size_t)ncache, sizeof *vals);
	size_t *vlens = calloc((size_t)ncache, sizeof *vlens);
	buf_t b;
	buf_init(&b, 1 << 20);
	int64_t now = clock_wall_ms();
	for (long i = 0; i < ncache; i++) {
		char to[20], body[200], id[MSG_ID_LEN + 1];
		long a = i % 10, rest = i / 10;
		static const char *const areas[] = {"202", "212", "303", "415", "512",
		                                    "617", "702", "808", "907", "971"};
		snprintf(to, sizeof to, "+1%s%03d%04d", areas[a],
		         220 + (int)(rest / 10000) % 70 * 10, (int)(rest % 10000));
		snprintf(body, sizeof body,
		         "Hi %s, the %s council votes tonight. Call now: 555-0100. Reply STOP to opt out",
		         names[i % 8], cities[i % 4]);
		msg_make_id("bench", "sms", to, id);
		msg_out_t m = {.id = id,
		               .campaign = "bench",
		               .channel = MSG_CH_SMS,
		               .to = to,
		               .sender = "main",
		               .body = body,
		               .enc = "gsm7",
		               .segments = 1,
		               .created_ms = now,
		               .expires_ms = now + 86400000};
		buf_reset(&b);
		msg_out_encode(&m, &b);
		keys[i] = strdup(to);
		vals[i] = malloc(b.len);
		memcpy(vals[i], b.p, b.len);
		vlens[i] = b.len;
	}
	buf_free(&b);
	rd_kafka_conf_t *bc = kq_conf_new(cfg, KQ_PRODUCER, "bench-bare", NULL, e, sizeof e);
	rd_kafka_t *bare = kq_new(bc, KQ_PRODUCER, 10000, e, sizeof e);
	before = outbox_total(q);
	c0 = thread_cpu_s();
	t0 = clock_mono_ns();
	for (long i = 0; i < n; i++) {
		long k = i % ncache;
		if (kq_produce(bare, KQ_T_OUTBOX_SMS, keys[k], strlen(keys[k]), vals[k], vlens[k], NULL))
			return 1;
		if ((i & 1023) == 0)
			rd_kafka_poll(bare, 0);
	}
	int frc = kq_flush(bare, 120000);
	double bare_s = (double)(clock_mono_ns() - t0) / 1e9, bare_cpu = thread_cpu_s() - c0;
	landed = outbox_total(q) - before;
	ok = ok && frc == 0 && landed == n;
	printf("  bare produce:  %ld messages in %.2f s wall = %.0f messages/s; main thread %.2f s CPU = %.0f per CPU-second\n",
	       n, bare_s, (double)n / bare_s, bare_cpu, (double)n / bare_cpu);
	printf("  ratio launch / bare produce: wall %.2f, main-thread CPU %.2f\n",
	       bare_s / launch_s, bare_cpu / launch_cpu);
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	printf("  peak RSS of this process (broker included): %ld MB\n", ru.ru_maxrss / 1024);
	printf("%s\n", ok ? "OK" : "FAILED: counts do not add up");
	for (long i = 0; i < ncache; i++) {
		free(keys[i]);
		free(vals[i]);
	}
	free(keys);
	free(vals);
	free(vlens);
	rd_kafka_destroy(bare);
	rd_kafka_destroy(q);
	camp_free(camp);
	cfg_free(cfg);
	rd_kafka_mock_cluster_destroy(mc);
	rd_kafka_destroy(mrk);
	return ok ? 0 : 1;
}
