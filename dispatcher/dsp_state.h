/* dsp_state.h -- what every dispatcher must know before sending: campaign states, opt-outs,
 * vendor health, read from their compacted topics from the beginning. */
#ifndef TOCSIN_DSP_STATE_H
#define TOCSIN_DSP_STATE_H
#include <librdkafka/rdkafka.h>
#include <stdint.h>

#include "core/cfg.h"
#include "core/msg.h"
#include "dispatcher/dsp_share.h"

typedef struct dsp_state dsp_state_t;

/* Open a consumer assigned to every partition of tocsin.campaigns,
 * tocsin.optouts and tocsin.vendor-health from the start (no group offsets:
 * every dispatcher reads all of it); tocsin.status is read by a
 * catch-up (dsp_state_catch_up_start) and while followed. Caller owns the result (dsp_state_free).
 * One thread. */
dsp_state_t *dsp_state_new(const cfg_t *c, const char *client_id, char *err, size_t errlen);
void dsp_state_free(dsp_state_t *s);
/* Also read tocsin.backlog from its end on into share (borrowed; it must outlive s): the
 * other dispatchers' backlogs. 0, or TOCSIN_ERR_NOTFOUND when the cluster has no such
 * topic (an older one: the caller shares by partitions). Before the first catch-up. */
int dsp_state_read_backlogs(dsp_state_t *s, dsp_share_t *share);
/* The consumer's queue, for io-event wake-ups (borrowed). */
rd_kafka_queue_t *dsp_state_queue(dsp_state_t *s);
/* Apply every record that has arrived (never blocks). Returns how many. */
int dsp_state_poll(dsp_state_t *s);
/* Catching up: read every topic up to its end as it is at the start -- tocsin.status from
 * 30 s (and at least the last 100,000 records of each partition) back -- so the next send
 * knows every cancel, opt-out and outcome already published (by a dispatcher that had the
 * partitions before). Start when partitions are assigned; then call
 * dsp_state_catch_up_behind() from the loop until it says 0 (it never gives up: an end
 * the broker did not tell is asked again every second); tocsin.status is paused again
 * afterwards unless followed. A start while one is under way (its start known) extends it to
 * the new ends without reading again what it read. The start waits for the broker's answers,
 * each up to query_timeout_ms. */
void dsp_state_catch_up_start(dsp_state_t *s, int query_timeout_ms);
/* Read what has arrived (never blocks but for the broker's answers to a question asked
 * again); 1 while the catch-up is behind, with the tocsin.status records read so far and
 * to read in all in *read and *want; 0 once caught up (or none started). */
int dsp_state_catch_up_behind(dsp_state_t *s, int64_t *read, int64_t *want);
/* Follow tocsin.status (on = 1) as it grows, so dsp_state_finished() learns of receipts
 * (the tracker's records of a vendor's callbacks, which echo our id) while sends whose
 * answer never came are held; a catch-up then leaves it running. timeout_ms 0: only
 * from the next catch-up on (call it before the first one); > 0: at once from the
 * catch-up's lookback, waiting at most that long for the broker to say where. on = 0
 * pauses it again. */
void dsp_state_follow(dsp_state_t *s, int on, int timeout_ms);
int dsp_state_following(const dsp_state_t *s);
/* Look for id's outcome in what is followed (on = 1: from its send on, as a send that gets
 * no answer is held for a receipt that may already be on its way) or no more (0). Between catch-ups only watched ids are taken from the followed
 * records (the others are counted and skipped unread: this dispatcher knows its own
 * outcomes, and a catch-up reads everyone's); a catch-up takes every outcome. */
void dsp_state_watch(dsp_state_t *s, const char *id, int on);
/* 1 while following and tocsin.status is not yet read up to where it ended when the
 * following (re)started: a receipt already published may still come. */
int dsp_state_follow_behind(const dsp_state_t *s);
/* tocsin.status records read so far (catch-ups and following). */
uint64_t dsp_state_status_read(const dsp_state_t *s);
/* Has message id an outcome (a state past queued/retrying) on tocsin.status,
 * as read by the last catch-up (or recorded by this dispatcher)? A message whose outcome
 * was published but whose offset was not committed (a rebalance or a crash
 * in between) must not be sent again. Returns 0 (no outcome), DSP_DONE_SENT
 * (accepted/sent/delivered, or suppressed/cancelled: never send again) or
 * DSP_DONE_FAILED (failed/undelivered/bounced/expired: only a deliberate
 * resend, attempt > 0, goes out again). */
enum { DSP_DONE_SENT = 1, DSP_DONE_FAILED = 2 };
int dsp_state_finished(dsp_state_t *s, const char *id);

/* RUNNING when nothing is known of the campaign. */
msg_camp_state_t dsp_state_campaign(const dsp_state_t *s, const char *campaign);
int dsp_state_opted_out(const dsp_state_t *s, msg_channel_t ch, const char *address);
/* Record a local opt-out (seen in a vendor answer) before its event returns. */
void dsp_state_add_optout(dsp_state_t *s, msg_channel_t ch, const char *address);
/* The last vendor-health record for vendor: its state, whether an operator
 * decided it, and a sequence number that grows with every record applied
 * (0 = none yet), so the caller can tell a new record from one it has seen. */
uint64_t dsp_state_vendor_rec(const dsp_state_t *s, const char *vendor, msg_vh_state_t *st,
                              int *by_operator);

#endif
