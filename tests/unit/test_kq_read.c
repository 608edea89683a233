/* test_kq_read.c -- core/kq's topic reader on an in-process mock Kafka cluster: exact records
 * to the high watermark at start, start offsets, skipped partitions, time bounds, stops. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "core/err.h"
#include "core/kq.h"

#define TOPIC "kq.read.test"
#define NP 3

static rd_kafka_t *mock_rk, *prod, *cons;
static rd_kafka_mock_cluster_t *mock;

/* n records "p<partition>-<k>" (k from first) into partition p */
static void put(int p, int first, int n)
{
	for (int k = first; k < first + n; k++) {
		char v[32];
		int len = snprintf(v, sizeof v, "p%d-%d", p, k);
		assert_int_equal(rd_kafka_producev(prod, RD_KAFKA_V_TOPIC(TOPIC),
		                                   RD_KAFKA_V_PARTITION(p),
		                                   RD_KAFKA_V_VALUE(v, (size_t)len),
		                                   RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
		                                   RD_KAFKA_V_END),
		                 0);
	}
	assert_int_equal(rd_kafka_flush(prod, 10000), 0);
}

static rd_kafka_t *client(rd_kafka_type_t type)
{
	char e[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_conf_set(conf, "bootstrap.servers", rd_kafka_mock_cluster_bootstraps(mock), NULL, 0);
	rd_kafka_conf_set(conf, "log_level", "2", NULL, 0);
	if (type == RD_KAFKA_CONSUMER) {
		rd_kafka_conf_set(conf, "group.id", "kq-read-test", NULL, 0);
		rd_kafka_conf_set(conf, "enable.auto.commit", "false", NULL, 0);
	}
	rd_kafka_t *rk = rd_kafka_new(type, conf, e, sizeof e);
	assert_non_null(rk);
	if (type == RD_KAFKA_CONSUMER)
		rd_kafka_poll_set_consumer(rk);
	return rk;
}

/* partitions 0, 1, 2 hold 5, 0 and 3 records */
static int setup(void **state)
{
	(void)state;
	char e[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_conf_set(conf, "log_level", "2", NULL, 0);
	mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, e, sizeof e);
	mock = rd_kafka_mock_cluster_new(mock_rk, 1);
	rd_kafka_mock_topic_create(mock, TOPIC, NP, 1);
	prod = client(RD_KAFKA_PRODUCER);
	cons = client(RD_KAFKA_CONSUMER);
	put(0, 0, 5);
	put(2, 0, 3);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	rd_kafka_consumer_close(cons);
	rd_kafka_destroy(cons);
	rd_kafka_destroy(prod);
	rd_kafka_mock_cluster_destroy(mock);
	rd_kafka_destroy(mock_rk);
	return 0;
}

/* what the callback saw, in order, as "p0-0,p0-1,…"; a record to produce in the middle */
typedef struct seen {
	char text[512];
	size_t len;
	int n, stop_after, rc_after, put_more;
	volatile sig_atomic_t *flag;
} seen_t;

static int on_rec(void *ud, const rd_kafka_message_t *m)
{
	seen_t *s = ud;
	s->len += (size_t)snprintf(s->text + s->len, sizeof s->text - s->len, "%s%.*s",
	                           s->n ? "," : "", (int)m->len, (const char *)m->payload);
	s->n++;
	if (s->put_more && s->n == 1)
		put(0, 100, 2); /* past the end captured at the start: never handed over */
	if (s->flag && s->n == s->stop_after)
		*s->flag = 1;
	return s->rc_after && s->n == s->rc_after ? TOCSIN_ERR_IO : 0;
}

static int64_t hi_of(int p)
{
	int64_t lo, hi;
	assert_int_equal(rd_kafka_query_watermark_offsets(cons, TOPIC, p, &lo, &hi, 5000), 0);
	return hi;
}

static void test_reads_to_the_start_watermark(void **state)
{
	(void)state;
	seen_t s = {.put_more = 1};
	int64_t lo[NP], hi[NP];
	kq_read_t r = {.topic = TOPIC, .nparts = NP, .timeout_ms = 20000, .lo = lo, .hi = hi};
	char err[256] = "";
	assert_int_equal(kq_read(cons, &r, on_rec, &s, err, sizeof err), 0);
	/* per partition in order; partitions may interleave */
	assert_int_equal(s.n, 8);
	assert_int_equal(r.got, 8);
	assert_int_equal(r.want, 8);
	assert_int_equal(r.nread, 2);
	assert_int_equal(lo[0], 0);
	assert_int_equal(hi[0], 5);
	assert_int_equal(hi[1], 0);
	assert_int_equal(hi[2], 3);
	assert_non_null(strstr(s.text, "p0-0"));
	assert_non_null(strstr(s.text, "p2-2"));
	assert_null(strstr(s.text, "p0-100"));
	const char *a = strstr(s.text, "p0-3"), *b = strstr(s.text, "p0-4");
	assert_true(a && b && a < b);
	assert_int_equal(hi_of(0), 7); /* the two records written during the read are there */
}

static void test_from_skip_restart(void **state)
{
	(void)state;
	int64_t h0 = hi_of(0); /* 7 after the test above */
	/* partition 0 from its last two records, 1 skipped, 2 from past its end (started over) */
	int64_t from[NP] = {h0 - 2, KQ_READ_SKIP, 99};
	seen_t s = {0};
	kq_read_t r = {.topic = TOPIC, .nparts = NP, .from = from, .timeout_ms = 20000};
	char err[256] = "";
	assert_int_equal(kq_read(cons, &r, on_rec, &s, err, sizeof err), 0);
	assert_int_equal(r.restarted, 1);
	assert_int_equal(r.truncated, 0);
	assert_int_equal(r.got, 5);
	assert_int_equal(s.n, 5);
	assert_non_null(strstr(s.text, "p0-100"));
	assert_non_null(strstr(s.text, "p0-101"));
	assert_null(strstr(s.text, "p0-4"));
	assert_non_null(strstr(s.text, "p2-0"));
	/* nothing to read at all: 0 at once */
	int64_t at_end[NP] = {h0, KQ_READ_SKIP, 3};
	seen_t s2 = {0};
	kq_read_t r2 = {.topic = TOPIC, .nparts = NP, .from = at_end};
	assert_int_equal(kq_read(cons, &r2, on_rec, &s2, err, sizeof err), 0);
	assert_int_equal(s2.n, 0);
	assert_int_equal(r2.want, 0);
}

static void test_since_tail(void **state)
{
	(void)state;
	/* the year 2100: no record is that recent, so only the tail is read */
	seen_t s = {0};
	kq_read_t r = {.topic = TOPIC,
	               .nparts = NP,
	               .since_ms = INT64_C(4102444800000),
	               .tail = 1,
	               .timeout_ms = 20000};
	char err[256] = "";
	assert_int_equal(kq_read(cons, &r, on_rec, &s, err, sizeof err), 0);
	assert_int_equal(s.n, 2);
	assert_string_equal(strstr(s.text, "p0-101") ? "ok" : s.text, "ok");
	assert_non_null(strstr(s.text, "p2-2"));
}

static void test_callback_error_and_stop(void **state)
{
	(void)state;
	char err[256] = "";
	seen_t s = {.rc_after = 2};
	kq_read_t r = {.topic = TOPIC, .nparts = NP, .timeout_ms = 20000};
	assert_int_equal(kq_read(cons, &r, on_rec, &s, err, sizeof err), TOCSIN_ERR_IO);
	assert_int_equal(s.n, 2);
	assert_non_null(strstr(err, TOPIC ": stopped at partition"));

	volatile sig_atomic_t flag = 0;
	seen_t s2 = {.flag = &flag, .stop_after = 1};
	kq_read_t r2 = {.topic = TOPIC, .nparts = NP, .timeout_ms = 20000, .stop = &flag};
	assert_int_equal(kq_read(cons, &r2, on_rec, &s2, err, sizeof err), TOCSIN_ERR_AGAIN);
	assert_true(r2.got >= 1 && r2.got < r2.want);
	assert_non_null(strstr(err, "stopped after"));

	kq_read_t r3 = {.topic = TOPIC, .nparts = KQ_READ_MAXPART + 1};
	assert_int_equal(kq_read(cons, &r3, on_rec, &s2, err, sizeof err), TOCSIN_ERR_INVAL);
}

/* keep: the read leaves every partition assigned, the empty one too, so the caller
 * follows the topic on (the producer's campaign watch) */
static void test_keep_follows(void **state)
{
	(void)state;
	seen_t s = {0};
	kq_read_t r = {.topic = TOPIC, .nparts = NP, .timeout_ms = 20000, .keep = 1};
	char err[256] = "";
	assert_int_equal(kq_read(cons, &r, on_rec, &s, err, sizeof err), 0);
	assert_int_equal(r.got, r.want);
	put(1, 0, 1); /* the partition that was empty */
	rd_kafka_message_t *m = NULL;
	for (int i = 0; i < 100 && !m; i++) {
		m = rd_kafka_consumer_poll(cons, 200);
		if (m && m->err) {
			rd_kafka_message_destroy(m);
			m = NULL;
		}
	}
	assert_non_null(m);
	assert_int_equal(m->partition, 1);
	assert_memory_equal(m->payload, "p1-0", 4);
	rd_kafka_message_destroy(m);
	rd_kafka_assign(cons, NULL);
}

/* kq_list_offsets: the ends and starts the broker tells, unknown for a partition it has not */
static void test_list_offsets(void **state)
{
	(void)state;
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(NP + 1);
	for (int p = 0; p < NP; p++)
		rd_kafka_topic_partition_list_add(l, TOPIC, p);
	rd_kafka_topic_partition_list_add(l, TOPIC, NP + 5);
	assert_int_equal(kq_list_offsets(cons, l, 1, -7, 5000), 1);
	for (int p = 0; p < NP; p++)
		assert_int_equal(l->elems[p].offset, hi_of(p));
	assert_int_equal(l->elems[NP].offset, -7);
	assert_int_equal(kq_list_offsets(cons, l, 0, -7, 5000), 1);
	for (int p = 0; p < NP; p++)
		assert_int_equal(l->elems[p].offset, 0);
	assert_int_equal(l->elems[NP].offset, -7);
	rd_kafka_topic_partition_list_destroy(l);
}

static void test_dispatch_group(void **state)
{
	(void)state;
	char g[64], tiny[8];
	assert_int_equal(kq_dispatch_group(MSG_CH_EMAIL, g, sizeof g), 21);
	assert_string_equal(g, "tocsin-dispatch-email");
	assert_int_equal(kq_dispatch_group(MSG_CH_SMS, tiny, sizeof tiny), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_reads_to_the_start_watermark),
	    cmocka_unit_test(test_from_skip_restart),
	    cmocka_unit_test(test_since_tail),
	    cmocka_unit_test(test_callback_error_and_stop),
	    cmocka_unit_test(test_keep_follows),
	    cmocka_unit_test(test_list_offsets),
	    cmocka_unit_test(test_dispatch_group),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
