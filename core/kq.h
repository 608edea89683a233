/* kq.h -- Kafka client wrappers: topics, bootstrap discovery, producer/consumer set-up. */
#ifndef TOCSIN_KQ_H
#define TOCSIN_KQ_H
#include <librdkafka/rdkafka.h>
#include <stddef.h>

#include "core/cfg.h"

#define KQ_T_CAMPAIGNS "tocsin.campaigns"
#define KQ_T_OUTBOX_SMS "tocsin.outbox.sms"
#define KQ_T_OUTBOX_EMAIL "tocsin.outbox.email"
#define KQ_T_OUTBOX_SMS_URGENT "tocsin.outbox.sms.urgent"
#define KQ_T_OUTBOX_EMAIL_URGENT "tocsin.outbox.email.urgent"
#define KQ_T_STATUS "tocsin.status"
#define KQ_T_OPTOUTS "tocsin.optouts"
#define KQ_T_VENDOR_HEALTH "tocsin.vendor-health"
#define KQ_T_DEAD "tocsin.dead"

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
rd_kafka_t *kq_new(rd_kafka_conf_t *conf, kq_role_t role, int timeout_ms, char *err,
                   size_t errlen);

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
int kq_produce(rd_kafka_t *rk, const char *topic, const void *key, size_t keylen,
               const void *val, size_t vallen, void *msg_opaque);

/* Flush outstanding produce requests for up to timeout_ms. 0 when all were
 * delivered, TOCSIN_ERR_TIMEOUT otherwise. */
int kq_flush(rd_kafka_t *rk, int timeout_ms);

/* Records behind the high watermarks of consumer rk's assigned partitions
 * (cached watermarks: no network round trip), -1 when unknown. The
 * consumer's thread. */
int64_t kq_consumer_lag(rd_kafka_t *rk);

#endif
