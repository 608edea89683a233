/* ctl.h -- operator controls: pause/resume/cancel a campaign, drain/undrain a vendor, via Kafka records. */
#ifndef TOCSIN_TRK_CTL_H
#define TOCSIN_TRK_CTL_H
#include <librdkafka/rdkafka.h>
#include <stddef.h>

#include "core/cfg.h"
#include "tracker/store.h"

/* Publish the campaign record for action ("pause" | "resume" | "cancel") of
 * campaign id on tocsin.campaigns (key = id), carrying the name and queued
 * count the store knows (rd may be NULL: then none), and wait up to 10 s for
 * the broker to acknowledge it. Returns 0; TOCSIN_ERR_INVAL (unknown action),
 * TOCSIN_ERR_NOTFOUND (rd knows no such campaign), TOCSIN_ERR_STATE (a
 * cancelled campaign cannot be paused or resumed), TOCSIN_ERR_KAFKA; err says
 * which. rk is a producer (borrowed). The producer's thread. */
int trk_ctl_campaign(rd_kafka_t *rk, trk_store_t *rd, const char *id, const char *action,
                     char *err, size_t errlen);

/* Publish a tocsin.vendor-health record (key = vendor) for action ("drain" ->
 * state drained, "undrain" -> healthy), by "operator". TOCSIN_ERR_NOTFOUND
 * when cfg has no such vendor. As above otherwise. */
int trk_ctl_vendor(rd_kafka_t *rk, const cfg_t *cfg, const char *vendor, const char *action,
                   char *err, size_t errlen);

/* The state a campaign is in according to rd (msg_camp_state_t), -1 if unknown. */
int trk_ctl_campaign_state(trk_store_t *rd, const char *id);

#endif
