/* kq.h -- Kafka client wrappers: topics, bootstrap discovery, producer/consumer set-up. */
#ifndef TOCSIN_KQ_H
#define TOCSIN_KQ_H
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "core/cfg.h"

#define KQ_T_CAMPAIGNS "tocsin.campaigns"
#define KQ_T_OUTBOX_SMS "tocsin.outbox.sms"
#define KQ_T_OUTBOX_EMAIL "tocsin.outbox.email"
#define KQ_T_OUTBOX_SMS_URGENT "tocsin.outbox.sms.urgent"
#define KQ_T_OUTBOX_EMAIL_URGENT "tocsin.outbox.email.urgent"
#define KQ_T_STATUS "tocsin.status"
#define KQ_T_OPTOUTS "tocsin.optouts"
#define KQ_T_VENDOR_HEALTH "tocsin.vendor-health"
#define KQ_T_BACKLOG "tocsin.backlog" /* each dispatcher's backlog: dispatcher/dsp_share.h */
#define KQ_T_DEAD "tocsin.dead"

/* Consumer groups. The dispatchers of channel ch form "tocsin-dispatch-<channel>"
 * (the producer reads their committed offsets to measure the lag). */
#define KQ_G_DISPATCH_PREFIX "tocsin-dispatch-"
/* The producer's own reads: KQ_G_LAUNCH_PREFIX "<what>-<campaign id>", and the opt-out sync. */
#define KQ_G_LAUNCH_PREFIX "tocsin-launch-"
#define KQ_G_LAUNCH_OPTOUTS "tocsin-launch-optouts"
/* The tracker's consumer group (tocsin.status, tocsin.campaigns, tocsin.vendor-health, tocsin.optouts). */
#define KQ_G_TRACKER "tocsin-tracker"

/* The run file the embedded broker writes, relative to var_dir. */
#define KQ_RUN_BOOTSTRAP "run/broker.bootstrap"
#define KQ_RUN_PID "run/broker.pid"

typedef struct kq_topic_spec {
	const char *name;
	int partitions;
	int compacted;
} kq_topic_spec_t;

/* Every tocsin topic with its partition count (read-only table). */
extern const kq_topic_spec_t kq_topics[];
extern const size_t kq_ntopics;

/* tocsin.outbox.<channel>: the bulk lane. */
const char *kq_outbox_topic(msg_channel_t ch);

/* Lanes. A campaign whose priority is at least KQ_URGENT_PRIORITY goes to the
 * urgent lane, tocsin.outbox.<channel>.urgent, which dispatchers drain before
 * the bulk lane; every other priority (0, the default, and below) is bulk. */
#define KQ_URGENT_PRIORITY 1
typedef enum kq_lane { KQ_LANE_BULK = 0, KQ_LANE_URGENT = 1, KQ_LANE__COUNT } kq_lane_t;
kq_lane_t kq_lane_of(int priority);
/* The outbox topic of channel ch in lane l. */
const char *kq_outbox_lane_topic(msg_channel_t ch, kq_lane_t l);
/* The outbox topic a campaign of this priority writes to. */
const char *kq_outbox_topic_for(msg_channel_t ch, int priority);

/* The dispatchers' consumer group of channel ch, "tocsin-dispatch-<channel>", into out.
 * Returns its length, or -1 when outlen is too small. Any thread. */
int kq_dispatch_group(msg_channel_t ch, char *out, size_t outlen);

/* The bootstrap list: kafka."bootstrap.servers" from the config, else the
 * embedded broker's run file (checking that its process is alive). Writes
 * into out; returns 0, or TOCSIN_ERR_CONFIG with a one-line reason in err
 * ("no broker configured and none running: start `tocsin broker`"). */
int kq_bootstrap(const cfg_t *c, char *out, size_t outlen, char *err, size_t errlen);

typedef enum kq_role { KQ_PRODUCER, KQ_CONSUMER } kq_role_t;

/* A new conf for role: tocsin's defaults (producer: idempotent, acks=all,
 * lz4, small linger; consumer: group.id=group, manual commits and offset
 * stores, earliest reset), then the config's kafka properties on top, then
 * the bootstrap list. The caller may add callbacks, then passes it to
 * kq_new() which takes ownership. NULL with err on failure. Main thread. */
rd_kafka_conf_t *kq_conf_new(const cfg_t *c, kq_role_t role, const char *client_id,
                             const char *group, char *err, size_t errlen);

/* Create the handle from conf (ownership of conf passes in, even on failure),
 * then check the cluster answers a metadata request within timeout_ms.
 * Returns the handle (caller owns: rd_kafka_destroy) or NULL with err. */
rd_kafka_t *kq_new(rd_kafka_conf_t *conf, kq_role_t role, int timeout_ms, char *err, size_t errlen);

/* Partitions of topic on the cluster, from a metadata request of up to timeout_ms;
 * -1 when the topic does not exist or the cluster does not answer. The handle's thread. */
int kq_partitions(rd_kafka_t *rk, const char *topic, int timeout_ms);

/* kq_conf_new(KQ_CONSUMER) then kq_new(): a consumer that needs no callbacks of its own.
 * Caller owns the handle; NULL with err on failure. Main thread. */
rd_kafka_t *kq_consumer_new(const cfg_t *c, const char *client_id, const char *group,
                            int timeout_ms, char *err, size_t errlen);

/* Produce with a copy of key and value (RD_KAFKA_MSG_F_COPY), waiting by
 * polling while the local queue is full. msg_opaque reaches the delivery
 * report. Returns 0 or TOCSIN_ERR_KAFKA. The producer's owning thread. */
int kq_produce(rd_kafka_t *rk, const char *topic, const void *key, size_t keylen, const void *val,
               size_t vallen, void *msg_opaque);

/* Flush outstanding produce requests for up to timeout_ms. 0 when all were
 * delivered, TOCSIN_ERR_TIMEOUT otherwise. */
int kq_flush(rd_kafka_t *rk, int timeout_ms);

/* Records behind the high watermarks of consumer rk's assigned partitions
 * (cached watermarks: no network round trip), -1 when unknown. A partition
 * nothing was consumed from since its assignment counts 0 (its position is
 * not known without asking the broker; the dispatcher asks at assignment:
 * dsp_outbox_lag). The consumer's thread. */
int64_t kq_consumer_lag(rd_kafka_t *rk);

/* The log ends (end 1) or starts (end 0) of the partitions of l into their offsets, in one
 * ListOffsets request a broker (offsets_for_times), bounded by timeout_ms even when the
 * broker is gone (rd_kafka_query_watermark_offsets() is two requests a partition, each a
 * round trip of 20-50 ms on the embedded broker, and once waited 30 min past its own
 * timeout with the broker gone). A partition the broker did not tell gets offset unknown.
 * -1 when the request failed (every offset unknown), else how many it did not tell. */
int kq_list_offsets(rd_kafka_t *rk, rd_kafka_topic_partition_list_t *l, int end, int64_t unknown,
                    int timeout_ms);

/* Records of partitions 0..nparts-1 of topic not yet committed by the consumer group of
 * grk (a consumer created with that group id, never subscribed): high watermarks (asked
 * through rk) minus the group's committed offsets. A committed offset below the log start
 * is logged as event=outbox_truncated. -1 when the committed offsets or the log ends cannot
 * be read. The caller's thread (blocking, up to 5 s per call: three requests). */
int64_t kq_group_lag(rd_kafka_t *rk, rd_kafka_t *grk, const char *topic, int nparts);
/* How many messages of avg_bytes may wait uncommitted on nparts partitions of the
 * embedded broker, which keeps at most 5 MiB per partition and drops the oldest: 60% of
 * 5 MiB per partition (no compression assumed, at most 60,000), with 30% headroom for
 * uneven partitions. Any thread. */
int64_t kq_lag_bound(int64_t avg_bytes, int nparts);

/* ---- reading a topic to its end ----
 * kq_read() reads partitions 0..nparts-1 of one topic, each from a start offset, up to
 * the high watermark queried when the read starts, and hands every record below it to
 * fn. Start offsets: from[i] when from is set (KQ_READ_SKIP: that partition is not
 * read); else the first record at or after since_ms (offsets_for_times) when since_ms
 * is set, but at least the last tail records; else the log start. A start before the
 * log start reads from the log start (counted in truncated); a start past the high
 * watermark means the log started over (a new embedded broker) and reads from the log
 * start too (counted in restarted). A partition is done when a record at or past its
 * end arrived or the consumer's position reached it, so a compacted topic (offsets with
 * gaps) finishes as well. A partition whose watermarks cannot be queried is not read
 * (counted in unknown). */
#define KQ_READ_SKIP (-1)
#define KQ_READ_MAXPART 256

typedef struct kq_read {
	/* in */
	const char *topic;
	int nparts;           /* partitions 0..nparts-1; at most KQ_READ_MAXPART */
	const int64_t *from;  /* nparts start offsets, or NULL */
	int64_t since_ms;     /* without from: wall-clock ms to start at; 0 = the log start */
	int64_t tail;         /* with since_ms: read at least the last tail records */
	int timeout_ms;       /* the whole read, queries included; 0 = 60000 */
	int query_timeout_ms; /* each watermark/time query; 0 = 5000 */
	int keep;             /* leave the partitions assigned (the caller follows on); records
	                       * past the end that arrive meanwhile go to fn too. 0: records
	                       * past the end are dropped and the assignment is removed. */
	const volatile sig_atomic_t *stop; /* stop when *stop is set; NULL = never */
	/* out, per partition (optional, nparts entries each): the watermarks queried, -1 unknown */
	int64_t *lo, *hi;
	/* out */
	int64_t want;  /* records between the start offsets and the ends (offsets, gaps included) */
	int64_t got;   /* records handed to fn */
	int nread;     /* partitions that had records to read */
	int unknown;   /* partitions not read: watermarks unknown */
	int truncated; /* partitions whose from[] was before the log start */
	int restarted; /* partitions whose from[] was past the high watermark */
} kq_read_t;

/* Called for each record (m->err == 0) of a kq_read(), in partition order; m is
 * borrowed for the call. Return 0 to go on; anything else stops the read, and
 * kq_read() returns it. */
typedef int (*kq_record_fn)(void *ud, const rd_kafka_message_t *m);

/* Read r->topic as described above with the consumer rk (created by
 * kq_consumer_new(); no subscription; its assignment is replaced). Returns 0 when
 * every partition reached its end; fn's non-zero value; TOCSIN_ERR_TIMEOUT when
 * timeout_ms passed first, TOCSIN_ERR_AGAIN when *stop was set, TOCSIN_ERR_KAFKA when
 * the partitions cannot be assigned, TOCSIN_ERR_INVAL for a bad nparts, each with a
 * one-line reason in err ("tocsin.status: read 10 of 12 records within 5000 ms").
 * r's out fields are set in every case. rk's thread. */
int kq_read(rd_kafka_t *rk, kq_read_t *r, kq_record_fn fn, void *ud, char *err, size_t errlen);

#endif
