/* ctl.h -- operator controls: pause/resume/cancel a campaign, drain/undrain a vendor, via Kafka records. */
#ifndef TOCSIN_TRK_CTL_H
#define TOCSIN_TRK_CTL_H
#include <librdkafka/rdkafka.h>
#include <stddef.h>

#include "core/cfg.h"
#include "tracker/store.h"

/* Publish the campaign record for action ("pause" | "resume" | "cancel") of
 * campaign id on tocsin.campaigns (key = id), carrying the name and queued
 * count the store knows (rd may be NULL: then none) and who did it (actor,
 * a trk_ctl_actor_ok name; NULL = nobody named), and wait up to 10 s for
 * the broker to acknowledge it. Returns 0; TOCSIN_ERR_INVAL (unknown action),
 * TOCSIN_ERR_NOTFOUND (rd knows no such campaign), TOCSIN_ERR_STATE (a
 * cancelled campaign cannot be paused or resumed), TOCSIN_ERR_KAFKA; err says
 * which. rk is a producer (borrowed). The producer's thread. */
int trk_ctl_campaign(rd_kafka_t *rk, trk_store_t *rd, const char *id, const char *action,
                     const char *actor, char *err, size_t errlen);

/* Publish a tocsin.vendor-health record (key = vendor) for action ("drain" ->
 * state drained, "undrain" -> healthy), by "operator", with actor.
 * TOCSIN_ERR_NOTFOUND when cfg has no such vendor. As above otherwise. */
int trk_ctl_vendor(rd_kafka_t *rk, const cfg_t *cfg, const char *vendor, const char *action,
                   const char *actor, char *err, size_t errlen);

/* 1 when name may name who did a control: 1..64 bytes of letters, digits and
 * . _ @ - (so it reads plainly on the timeline and in logs). Any thread. */
int trk_ctl_actor_ok(const char *name);

/* What a token's holder may do, each role all the earlier ones can and more:
 * viewer (read the compose pages and audiences), sender (upload, compose,
 * preview, test-send, launch where no approval is needed, request a launch),
 * approver (approve another person's launch), admin (the controls: pause,
 * resume, cancel, drain, undrain). */
typedef enum trk_role {
	TRK_ROLE_VIEWER = 0,
	TRK_ROLE_SENDER,
	TRK_ROLE_APPROVER,
	TRK_ROLE_ADMIN,
	TRK_ROLE__COUNT
} trk_role_t;
/* "viewer", "sender", "approver", "admin" (static). */
const char *trk_role_name(trk_role_t r);

/* The control tokens of tracker.control_tokens, one per person or role:
 * [{"name": "alice", "token_env": "TOCSIN_TOKEN_ALICE", "role": "sender"}, …]
 * (role: viewer, sender, approver or admin; default admin, what a token could
 * do before roles existed), and the shared token of tracker.control_token_env
 * (name "operator", role admin). A token whose
 * variable is unset is left out (logged). NULL with err on a malformed list
 * (not an array of such objects, an unknown key, a bad or repeated name, two
 * names with the same token). Caller owns (trk_ctl_tokens_free; NULL is a
 * no-op). Main thread; the result is read-only and may be shared. */
typedef struct trk_ctl_tokens trk_ctl_tokens_t;
trk_ctl_tokens_t *trk_ctl_tokens_new(const cfg_t *cfg, char *err, size_t errlen);
void trk_ctl_tokens_free(trk_ctl_tokens_t *t);
/* How many tokens are usable (0 = controls disabled). */
size_t trk_ctl_tokens_count(const trk_ctl_tokens_t *t);
/* The name whose token equals presented (compared in constant time with
 * every token), or NULL. Any thread. */
const char *trk_ctl_tokens_who(const trk_ctl_tokens_t *t, const char *presented);
/* trk_ctl_tokens_who, and the holder's role into *role. Any thread. */
const char *trk_ctl_tokens_who_role(const trk_ctl_tokens_t *t, const char *presented, trk_role_t *role);

/* The state a campaign is in according to rd (msg_camp_state_t), -1 if unknown. */
int trk_ctl_campaign_state(trk_store_t *rd, const char *id);

#endif
