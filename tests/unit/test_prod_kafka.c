/* test_prod_kafka.c -- producer end to end on an in-process mock Kafka cluster: exact outbox
 * records, campaign states, suppression, multi-channel, crash + resume without duplicates,
 * --resend-failed and --max-lag. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <pthread.h>
#include <cmocka.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <sqlite3.h>
#include <time.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/hash.h"
#include "core/kq.h"
#include "core/log.h"
#include "core/msg.h"
#include "producer/aset.h"
#include "producer/camp.h"
#include "producer/prod.h"

static rd_kafka_t *mock_rk;
static rd_kafka_mock_cluster_t *mock;
static char dir[256], cfgpath[300], bootstrap[512];
static cfg_t *cfg;

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int setup(void **state)
{
	(void)state;
	log_init("test", TLOG_WARN);
	char e[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_conf_set(conf, "log_level", "2", NULL, 0);
	mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, e, sizeof e);
	mock = rd_kafka_mock_cluster_new(mock_rk, 1);
	for (size_t i = 0; i < kq_ntopics; i++)
		rd_kafka_mock_topic_create(mock, kq_topics[i].name, kq_topics[i].partitions, 1);
	snprintf(bootstrap, sizeof bootstrap, "%s", rd_kafka_mock_cluster_bootstraps(mock));
	snprintf(dir, sizeof dir, "/tmp/test_prod_kafka.%d", (int)getpid());
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s", dir, dir);
	if (system(cmd))
		return -1;
	snprintf(cfgpath, sizeof cfgpath, "%s/tocsin.json", dir);
	char text[2048];
	snprintf(text, sizeof text,
	         "{\"var_dir\":\"%s/var\",\"kafka\":{\"bootstrap.servers\":\"%s\"},"
	         "\"tracker\":{\"public_url\":\"https://t.example.org\"},"
	         "\"quiet_hours\":{\"sms\":{\"enabled\":false}}}",
	         dir, bootstrap);
	write_file(cfgpath, text);
	cfg = cfg_load(cfgpath, e, sizeof e);
	if (!cfg) {
		fprintf(stderr, "%s\n", e);
		return -1;
	}
	setenv("TOCSIN_UNSUB_KEY", "test-unsubscribe-key-0123456789", 1);
	/* the audience: 3000 rows, every 30th a duplicate of the row before, every 50th without a phone */
	char path[400];
	snprintf(path, sizeof path, "%s/aud.csv", dir);
	FILE *f = fopen(path, "w");
	fprintf(f, "first_name,phone,email\n");
	for (int i = 0; i < 3000; i++) {
		int n = (i % 30 == 29) ? i - 1 : i;
		if (i % 50 == 49)
			fprintf(f, "P%d,,p%d@example.org\n", i, i);
		else
			fprintf(f, "P%d,(303) %03d-%04d,p%d@Example.org\n", i, 220 + 100 * (n % 7),
			        n, n);
	}
	fclose(f);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	cfg_free(cfg);
	rd_kafka_mock_cluster_destroy(mock);
	rd_kafka_destroy(mock_rk);
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	return system(cmd);
}

static camp_t *campaign(const char *id, const char *extra)
{
	char path[400], text[2048], e[512];
	snprintf(path, sizeof path, "%s/%s.json", dir, id);
	snprintf(text, sizeof text, "{\"id\":\"%s\",\"audience\":\"aud.csv\",%s}", id,
	         extra ? extra : "\"sms\":{\"sender\":\"main\",\"template\":\"Hi {{first_name}}\"}");
	write_file(path, text);
	camp_t *c = camp_load(path, e, sizeof e);
	if (!c)
		fail_msg("%s", e);
	return c;
}

static int run(camp_t *c, prod_opts_t *o, prod_stats_t *st, char *err, size_t errlen)
{
	prod_t *p = prod_new(cfg, c, o, err, errlen);
	if (!p)
		fail_msg("prod_new: %s", err);
	int rc = prod_run(p, err, errlen);
	*st = *prod_stats(p);
	prod_free(p);
	return rc;
}

/* Read every record of topic; call fn for each. */
typedef void (*rec_fn)(const rd_kafka_message_t *m, void *arg);
static int64_t read_topic(const char *topic, rec_fn fn, void *arg)
{
	char e[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, NULL, 0);
	rd_kafka_conf_set(conf, "group.id", "test-reader", NULL, 0);
	rd_kafka_conf_set(conf, "enable.partition.eof", "false", NULL, 0);
	rd_kafka_t *c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, e, sizeof e);
	assert_non_null(c);
	rd_kafka_poll_set_consumer(c);
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(16);
	int64_t want = 0;
	for (int i = 0; i < 16; i++) {
		int64_t lo, hi;
		if (rd_kafka_query_watermark_offsets(c, topic, i, &lo, &hi, 5000))
			break;
		if (hi > lo) {
			rd_kafka_topic_partition_list_add(l, topic, i)->offset = lo;
			want += hi - lo;
		}
	}
	int64_t got = 0, end = clock_mono_ms() + 20000;
	if (l->cnt)
		rd_kafka_assign(c, l);
	while (got < want && clock_mono_ms() < end) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 100);
		if (!m)
			continue;
		if (!m->err) {
			got++;
			fn(m, arg);
		}
		rd_kafka_message_destroy(m);
	}
	rd_kafka_topic_partition_list_destroy(l);
	rd_kafka_consumer_close(c);
	rd_kafka_destroy(c);
	assert_int_equal(got, want);
	return got;
}

typedef struct outbox_check {
	const char *campaign;
	int64_t n, dup_ids;
	aset_t *ids;
	int bad;
	int attempt1;
	char first_body[64];
} outbox_check_t;

static void check_out(const rd_kafka_message_t *m, void *arg)
{
	outbox_check_t *oc = arg;
	msg_out_t o;
	json_t *hold;
	char e[200];
	if (msg_out_parse(m->payload, m->len, &o, &hold, e, sizeof e)) {
		oc->bad++;
		return;
	}
	if (strcmp(o.campaign, oc->campaign)) {
		json_decref(hold);
		return;
	}
	oc->n++;
	char id[MSG_ID_LEN + 1];
	msg_make_id(o.campaign, msg_channel_name(o.channel), o.to, id);
	if (strcmp(id, o.id) || m->key_len != strlen(o.to) || memcmp(m->key, o.to, m->key_len))
		oc->bad++;
	if (aset_add(oc->ids, hash64(o.id, MSG_ID_LEN, 0)) == 0)
		oc->dup_ids++;
	if (!strcmp(o.to, "+13032200000"))
		snprintf(oc->first_body, sizeof oc->first_body, "%s", o.body ? o.body : o.subject);
	if (o.attempt == 1)
		oc->attempt1++;
	json_decref(hold);
}

static outbox_check_t outbox(const char *topic, const char *campaign)
{
	char e[100];
	outbox_check_t oc = {.campaign = campaign, .ids = aset_new(1024, 0, e, sizeof e)};
	read_topic(topic, check_out, &oc);
	aset_free(oc.ids);
	return oc;
}

/* 3000 rows: 60 without a phone, 100 duplicates (every 30th; 2 of them are also phone-less rows? no:
 * rows 29+30k are dups, rows 49+50k lack a phone; both when i % 150 == 149) */
static void expected(int64_t *queued, int64_t *rejected, int64_t *dups)
{
	int64_t q = 0, r = 0, d = 0;
	for (int i = 0; i < 3000; i++) {
		if (i % 50 == 49)
			r++;
		else if (i % 30 == 29 && (i - 1) % 50 != 49)
			d++;
		else
			q++;
	}
	*queued = q;
	*rejected = r;
	*dups = d;
}

static void test_launch_exact(void **state)
{
	(void)state;
	camp_t *c = campaign("t-exact", NULL);
	prod_opts_t o = {.max_lag = 0};
	prod_stats_t st;
	char err[512] = "";
	assert_int_equal(run(c, &o, &st, err, sizeof err), 0);
	int64_t q, r, d;
	expected(&q, &r, &d);
	assert_int_equal(st.read, 3000);
	assert_int_equal(st.queued, q);
	assert_int_equal(st.rejected, r);
	assert_int_equal(st.duplicates, d);
	assert_int_equal(st.suppressed, 0);
	assert_int_equal(st.read, st.queued + st.rejected + st.suppressed + st.duplicates);
	assert_int_equal(st.produced, q);
	outbox_check_t oc = outbox(KQ_T_OUTBOX_SMS, "t-exact");
	assert_int_equal(oc.bad, 0);
	assert_int_equal(oc.n, q);
	assert_int_equal(oc.dup_ids, 0);
	assert_string_equal(oc.first_body, "Hi P0");
	/* launching again sends nothing new */
	assert_int_equal(run(c, &o, &st, err, sizeof err), 0);
	assert_int_equal(st.already_done, 1);
	assert_int_equal(st.produced, 0);
	assert_int_equal(outbox(KQ_T_OUTBOX_SMS, "t-exact").n, q);
	camp_free(c);
}

typedef struct camp_check {
	int launching, running;
	int64_t queued;
} camp_check_t;

static void check_camp(const rd_kafka_message_t *m, void *arg)
{
	camp_check_t *cc = arg;
	msg_campaign_t c;
	json_t *hold;
	char e[100];
	if (msg_campaign_parse(m->payload, m->len, &c, &hold, e, sizeof e))
		return;
	if (!strcmp(c.id, "t-exact")) {
		if (c.state == MSG_CAMP_LAUNCHING)
			cc->launching++;
		if (c.state == MSG_CAMP_RUNNING) {
			cc->running++;
			cc->queued = c.queued;
		}
	}
	json_decref(hold);
}

static void test_campaign_states(void **state)
{
	(void)state;
	camp_check_t cc = {0};
	read_topic(KQ_T_CAMPAIGNS, check_camp, &cc);
	int64_t q, r, d;
	expected(&q, &r, &d);
	assert_int_equal(cc.launching, 1);
	assert_int_equal(cc.running, 1);
	assert_int_equal(cc.queued, q);
}

static void test_crash_resume(void **state)
{
	(void)state;
	camp_t *c = campaign("t-crash", NULL);
	/* checkpoint every few ms: with 1-row epochs the checkpoint trails the crash point */
	prod_opts_t o = {.max_lag = 0, .ckpt_every_ms = 1, .crash_after_rows = 2500};
	prod_stats_t st;
	char err[512] = "";
	assert_int_equal(run(c, &o, &st, err, sizeof err), TOCSIN_ERR_STATE);
	int64_t first = st.produced;
	assert_true(first > 2000);
	o.crash_after_rows = 0;
	assert_int_equal(run(c, &o, &st, err, sizeof err), 0);
	int64_t q, r, d;
	expected(&q, &r, &d);
	/* the checkpoint is the start (written before the first row) or a later delivered epoch */
	assert_true(st.resumed_rows >= 0 && st.resumed_rows <= 2500);
	assert_int_equal(st.queued, q);
	assert_int_equal(st.rejected, r);
	assert_int_equal(st.duplicates, d);
	/* what the crashed run produced past its checkpoint was found, not produced again */
	assert_int_equal(first + st.produced, q);
	outbox_check_t oc = outbox(KQ_T_OUTBOX_SMS, "t-crash");
	assert_int_equal(oc.n, q);
	assert_int_equal(oc.dup_ids, 0);
	/* the rejects file lists each rejected row once, crash or not */
	char path[600], line[512];
	snprintf(path, sizeof path, "%s/var/launch/t-crash/rejects.csv", dir);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	int lines = 0;
	while (fgets(line, sizeof line, f))
		lines++;
	fclose(f);
	assert_int_equal(lines, 1 + r);
	camp_free(c);
}

static void test_suppression(void **state)
{
	(void)state;
	/* opt out row 0's phone and row 1's email */
	buf_t b;
	buf_init(&b, 4096);
	char e[512], key[300];
	rd_kafka_conf_t *conf = kq_conf_new(cfg, KQ_PRODUCER, "test", NULL, e, sizeof e);
	rd_kafka_t *pr = kq_new(conf, KQ_PRODUCER, 5000, e, sizeof e);
	assert_non_null(pr);
	msg_optout_t ev[2] = {
	    {.channel = MSG_CH_SMS, .address = "+13032200000", .source = "sms_stop"},
	    {.channel = MSG_CH_EMAIL, .address = "p1@example.org", .source = "one_click"}};
	for (int i = 0; i < 2; i++) {
		buf_reset(&b);
		assert_int_equal(msg_optout_encode(&ev[i], &b), 0);
		int kl = msg_optout_key(ev[i].channel, ev[i].address, key, sizeof key);
		assert_int_equal(kq_produce(pr, KQ_T_OPTOUTS, key, (size_t)kl, b.p, b.len, NULL), 0);
	}
	assert_int_equal(kq_flush(pr, 10000), 0);
	rd_kafka_destroy(pr);
	buf_free(&b);
	camp_t *c = campaign("t-sup", NULL);
	prod_opts_t o = {.max_lag = 0};
	prod_stats_t st;
	assert_int_equal(run(c, &o, &st, e, sizeof e), 0);
	int64_t q, r, d;
	expected(&q, &r, &d);
	assert_int_equal(st.suppressed, 1);
	assert_int_equal(st.queued, q - 1);
	assert_int_equal(st.read, st.queued + st.rejected + st.suppressed + st.duplicates);
	assert_int_equal(outbox(KQ_T_OUTBOX_SMS, "t-sup").n, q - 1);
	camp_free(c);

	/* multi-channel: SMS and email per recipient; row 0 still gets its email, row 1 its SMS */
	c = campaign("t-multi",
	             "\"sms\":{\"template\":\"Hi {{first_name}}\"},"
	             "\"email\":{\"subject\":\"For {{first_name}}\","
	             "\"text\":\"Hello {{first_name}}. Unsubscribe: {{unsubscribe_url}}\"}");
	assert_int_equal(run(c, &o, &st, e, sizeof e), 0);
	/* rows without a phone still get email: nothing rejected at row level */
	assert_int_equal(st.rejected, 0);
	assert_int_equal(st.ch_suppressed[0], 1);
	assert_int_equal(st.ch_suppressed[1], 1);
	assert_int_equal(st.ch_queued[0], q - 1);
	assert_int_equal(st.ch_queued[1], 3000 - d - 1 - 0);
	assert_int_equal(st.read, st.queued + st.rejected + st.suppressed + st.duplicates);
	outbox_check_t oc = outbox(KQ_T_OUTBOX_EMAIL, "t-multi");
	assert_int_equal(oc.n, st.ch_queued[1]);
	assert_int_equal(oc.dup_ids, 0);
	assert_int_equal(oc.bad, 0);
	camp_free(c);
}

static void test_resend_failed(void **state)
{
	(void)state;
	/* t-exact is done. The latest outcome decides; delivered stays delivered;
	 * permanent failures only with include_permanent. */
	static const struct {
		const char *to;
		int n;
		msg_state_t st[3];
		const char *code[3];
		int attempt[3];
	} m[] = {
	    {"+13033200001", 2, {MSG_ST_ACCEPTED, MSG_ST_FAILED}, {NULL, "http_503"}, {0, 3}},
	    {"+13034200002", 2, {MSG_ST_RETRYING, MSG_ST_UNDELIVERED}, {"http_503", "30003"}, {1, 0}},
	    {"+13035200003", 2, {MSG_ST_ACCEPTED, MSG_ST_DELIVERED}, {NULL, NULL}, {0, 0}},
	    {"+13036200004", 2, {MSG_ST_DELIVERED, MSG_ST_FAILED}, {NULL, NULL}, {0, 0}},
	    {"+13037200005", 1, {MSG_ST_FAILED}, {"21211"}, {0}}, /* invalid number */
	    {"+13038200006", 2, {MSG_ST_UNDELIVERED, MSG_ST_ACCEPTED}, {"30003", NULL}, {0, 1}},
	    {"+13033200008", 3, {MSG_ST_EXPIRED, MSG_ST_ACCEPTED, MSG_ST_DELIVERED}, {NULL}, {0, 1, 0}},
	};
	size_t nm = sizeof m / sizeof m[0];
	char e[512];
	rd_kafka_conf_t *conf = kq_conf_new(cfg, KQ_PRODUCER, "test", NULL, e, sizeof e);
	rd_kafka_t *pr = kq_new(conf, KQ_PRODUCER, 5000, e, sizeof e);
	buf_t b;
	buf_init(&b, 4096);
	for (size_t i = 0; i < nm; i++)
		for (int k = 0; k < m[i].n; k++) {
			char id[MSG_ID_LEN + 1];
			msg_make_id("t-exact", "sms", m[i].to, id);
			msg_status_t s = {.id = id,
			                  .campaign = "t-exact",
			                  .channel = MSG_CH_SMS,
			                  .to = m[i].to,
			                  .state = m[i].st[k],
			                  .code = m[i].code[k],
			                  .attempt = m[i].attempt[k],
			                  .latency_ms = -1};
			buf_reset(&b);
			assert_int_equal(msg_status_encode(&s, &b), 0);
			assert_int_equal(kq_produce(pr, KQ_T_STATUS, id, MSG_ID_LEN, b.p, b.len, NULL),
			                 0);
		}
	assert_int_equal(kq_flush(pr, 10000), 0);
	rd_kafka_destroy(pr);
	buf_free(&b);
	camp_t *c = campaign("t-exact", NULL);
	/* the dry run counts and sends nothing */
	prod_opts_t o = {.max_lag = 0, .resend_failed = 1};
	char out[1024] = "";
	FILE *f = fmemopen(out, sizeof out, "w");
	int prc = prod_resend_plan(cfg, c, &o, f, e, sizeof e);
	if (prc)
		fail_msg("resend plan: %s", e);
	fclose(f);
	assert_non_null(strstr(out, "would re-queue 2 messages; 1 permanent failure left out"));
	assert_non_null(strstr(out, "invalid number 1"));
	assert_int_equal(outbox(KQ_T_OUTBOX_SMS, "t-exact").attempt1, 0);
	prod_stats_t st;
	assert_int_equal(run(c, &o, &st, e, sizeof e), 0);
	assert_int_equal(st.produced, 2);
	assert_int_equal(st.resend_found, 2);
	assert_int_equal(st.resend_permanent, 1);
	outbox_check_t oc = outbox(KQ_T_OUTBOX_SMS, "t-exact");
	assert_int_equal(oc.attempt1, 2);
	/* with include_permanent the invalid number goes too; the two the first run
	 * re-queued (its `queued` records, attempt 1, are their latest) are not queued twice */
	o.include_permanent = 1;
	assert_int_equal(run(c, &o, &st, e, sizeof e), 0);
	assert_int_equal(st.produced, 1);
	assert_int_equal(st.resend_requeued, 2);
	assert_int_equal(outbox(KQ_T_OUTBOX_SMS, "t-exact").attempt1, 3);
	camp_free(c);
}

/* a slow "dispatcher": consumes tocsin.outbox.sms in group tocsin-dispatch-sms and
 * commits; records the largest lag it sees */
typedef struct slow {
	volatile int stop;
	int64_t consumed, max_lag;
} slow_t;

static void *slow_consumer(void *arg)
{
	slow_t *s = arg;
	char e[512];
	rd_kafka_conf_t *conf = kq_conf_new(cfg, KQ_CONSUMER, "slow", "tocsin-dispatch-sms", e,
	                                    sizeof e);
	rd_kafka_t *c = kq_new(conf, KQ_CONSUMER, 5000, e, sizeof e);
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(l, KQ_T_OUTBOX_SMS, RD_KAFKA_PARTITION_UA);
	rd_kafka_subscribe(c, l);
	rd_kafka_topic_partition_list_destroy(l);
	while (!s->stop) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 50);
		if (!m)
			continue;
		if (!m->err) {
			s->consumed++;
			rd_kafka_offset_store(m->rkt, m->partition, m->offset);
			if (s->consumed % 50 == 0) {
				rd_kafka_commit(c, NULL, 0);
				usleep(2000);
			}
		}
		rd_kafka_message_destroy(m);
	}
	rd_kafka_commit(c, NULL, 0);
	rd_kafka_consumer_close(c);
	rd_kafka_destroy(c);
	return NULL;
}

static void test_max_lag(void **state)
{
	(void)state;
	slow_t s = {0};
	pthread_t th;
	pthread_create(&th, NULL, slow_consumer, &s);
	/* wait until it has joined and caught up with what earlier tests produced */
	int64_t end = clock_mono_ms() + 30000;
	while (s.consumed < 3000 && clock_mono_ms() < end)
		usleep(100000);
	camp_t *c = campaign("t-lag", NULL);
	prod_opts_t o = {.max_lag = 300};
	prod_stats_t st;
	char err[512];
	int64_t t0 = clock_mono_ms();
	assert_int_equal(run(c, &o, &st, err, sizeof err), 0);
	int64_t q, r, d;
	expected(&q, &r, &d);
	assert_int_equal(st.queued, q - 1); /* +13032200000 opted out in test_suppression */
	/* the launch waited for the slow consumer */
	assert_true(st.lag_waits_ms > 0);
	assert_int_equal(st.max_lag_used, 300);
	/* and the consumer was never more than the bound (plus one batch of in-flight) behind:
	 * when the launch ended, the consumer had read all but at most the bound */
	assert_true(s.consumed >= 3000 + (q - 1) - 300 - 1);
	s.stop = 1;
	pthread_join(th, NULL);
	(void)t0;
	camp_free(c);
}

static void put_campaign(const char *id, msg_camp_state_t st)
{
	char e[512];
	rd_kafka_conf_t *conf = kq_conf_new(cfg, KQ_PRODUCER, "test", NULL, e, sizeof e);
	rd_kafka_t *pr = kq_new(conf, KQ_PRODUCER, 5000, e, sizeof e);
	buf_t b;
	buf_init(&b, 4096);
	msg_campaign_t c = {.id = id, .name = id, .state = st, .queued = -1, .ts_ms = clock_wall_ms()};
	assert_int_equal(msg_campaign_encode(&c, &b), 0);
	assert_int_equal(kq_produce(pr, KQ_T_CAMPAIGNS, id, strlen(id), b.p, b.len, NULL), 0);
	assert_int_equal(kq_flush(pr, 10000), 0);
	rd_kafka_destroy(pr);
	buf_free(&b);
}

typedef struct last_state {
	const char *id;
	int state, n;
} last_state_t;

static void last_camp(const rd_kafka_message_t *m, void *arg)
{
	last_state_t *ls = arg;
	msg_campaign_t c;
	json_t *hold;
	char e[100];
	if (!msg_campaign_parse(m->payload, m->len, &c, &hold, e, sizeof e) && !strcmp(c.id, ls->id)) {
		ls->state = (int)c.state;
		ls->n++;
	}
	json_decref(hold);
}

static void test_operator_controls(void **state)
{
	(void)state;
	char e[512];
	prod_opts_t o = {.max_lag = 0};
	/* a cancelled campaign is refused */
	put_campaign("t-cancel", MSG_CAMP_CANCELLED);
	camp_t *c = campaign("t-cancel", NULL);
	assert_null(prod_new(cfg, c, &o, e, sizeof e));
	assert_non_null(strstr(e, "was cancelled"));
	camp_free(c);
	/* a campaign paused before (or during) its launch stays paused: no launching/running record */
	put_campaign("t-pause", MSG_CAMP_PAUSED);
	c = campaign("t-pause", NULL);
	prod_stats_t st;
	assert_int_equal(run(c, &o, &st, e, sizeof e), 0);
	last_state_t ls = {.id = "t-pause"};
	read_topic(KQ_T_CAMPAIGNS, last_camp, &ls);
	assert_int_equal(ls.n, 1);
	assert_int_equal(ls.state, MSG_CAMP_PAUSED);
	camp_free(c);
}

static void test_delivery_failure(void **state)
{
	(void)state;
	/* the broker refuses every produce request: nothing counts as queued, the run fails
	 * with the reason, and the checkpoint stays at the start */
	rd_kafka_resp_err_t errs[64];
	for (int i = 0; i < 64; i++)
		errs[i] = RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED;
	rd_kafka_mock_push_request_errors_array(mock, 0 /* Produce */, 64, errs);
	camp_t *c = campaign("t-fail", NULL);
	prod_opts_t o = {.max_lag = 0};
	prod_stats_t st;
	char err[512] = "";
	int rc = run(c, &o, &st, err, sizeof err);
	rd_kafka_mock_clear_request_errors(mock, 0);
	assert_int_equal(rc, TOCSIN_ERR_KAFKA);
	assert_true(st.delivery_failed > 0);
	assert_non_null(strstr(err, "could not be delivered to Kafka"));
	char path[600];
	snprintf(path, sizeof path, "%s/var/launch/t-fail/checkpoint.json", dir);
	json_error_t je;
	json_t *ck = json_load_file(path, 0, &je);
	assert_non_null(ck);
	assert_int_equal(json_integer_value(json_object_get(ck, "rows")), 0);
	assert_false(json_is_true(json_object_get(ck, "done")));
	json_decref(ck);
	camp_free(c);
}

/* rows of the holding store in state st (-1: all) */
static int64_t held_rows(int st)
{
	char path[400];
	snprintf(path, sizeof path, "%s/var/hold.db", dir);
	sqlite3 *db = NULL;
	sqlite3_stmt *q = NULL;
	int64_t n = -1;
	if (!sqlite3_open(path, &db) &&
	    !sqlite3_prepare_v2(db,
	                        st < 0 ? "SELECT count(*) FROM held"
	                               : "SELECT count(*) FROM held WHERE state=?1",
	                        -1, &q, NULL)) {
		sqlite3_bind_int(q, 1, st);
		if (sqlite3_step(q) == SQLITE_ROW)
			n = sqlite3_column_int64(q, 0);
	}
	sqlite3_finalize(q);
	sqlite3_close(db);
	return n;
}

/* send_at an hour ahead: every message goes to the holding store (state 0), none to the
 * outbox; a relaunch from the start holds none twice; the campaign record is "scheduled". */
static void test_send_at_held(void **state)
{
	(void)state;
	char extra[512], ts[64];
	time_t t = time(NULL) + 3600;
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
	snprintf(extra, sizeof extra,
	         "\"sms\":{\"sender\":\"main\",\"template\":\"Hi {{first_name}}\"},\"send_at\":\"%s\"",
	         ts);
	camp_t *c = campaign("t-sched", extra);
	prod_opts_t o = {.max_lag = 0};
	prod_stats_t st;
	char err[512] = "";
	assert_int_equal(run(c, &o, &st, err, sizeof err), 0);
	int64_t q, r, d;
	expected(&q, &r, &d);
	assert_int_equal(st.queued, q);
	assert_int_equal(st.held, q);
	assert_int_equal(st.produced, 0);
	assert_int_equal(outbox(KQ_T_OUTBOX_SMS, "t-sched").n, 0);
	assert_int_equal(held_rows(0), q);
	o.restart = 1;
	assert_int_equal(run(c, &o, &st, err, sizeof err), 0);
	assert_int_equal(held_rows(-1), q);
	camp_free(c);
	/* send_at in the past (beyond the grace): refused, nothing held */
	snprintf(extra, sizeof extra,
	         "\"sms\":{\"sender\":\"main\",\"template\":\"x\"},\"send_at\":\"2020-01-01T00:00:00Z\"");
	c = campaign("t-past", extra);
	o.restart = 0;
	assert_null(prod_new(cfg, c, &o, err, sizeof err));
	assert_non_null(strstr(err, "send_at: it is in the past"));
	assert_int_equal(held_rows(-1), q);
	camp_free(c);
}

int main(void)
{
	alarm(300); /* a hang is a failure */
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_launch_exact),     cmocka_unit_test(test_campaign_states),
	    cmocka_unit_test(test_send_at_held),     cmocka_unit_test(test_crash_resume),
	    cmocka_unit_test(test_suppression),      cmocka_unit_test(test_resend_failed),
	    cmocka_unit_test(test_max_lag),          cmocka_unit_test(test_operator_controls),
	    cmocka_unit_test(test_delivery_failure),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
