/* dsp_share.h -- each dispatcher's share of its channel's vendor rates, by backlog, told to the others on tocsin.backlog. */
#ifndef TOCSIN_DSP_SHARE_H
#define TOCSIN_DSP_SHARE_H
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/msg.h"

/* Why: the dispatchers of a channel share each vendor's rate limit without talking to
 * each other directly. Shared by the partitions each owns, a dispatcher left with little
 * to send keeps its slice idle while another still has most of a blast: the tail ran at
 * half the vendor limit (issue 13 item 4). So each one publishes its backlog -- the outbox
 * records of its partitions not yet consumed plus the messages it holds unfinished -- on
 * tocsin.backlog every DSP_SHARE_EVERY_MS, and takes of every vendor of its channel
 *
 *     floor + (1 - k x floor) x own / (own + the others' backlogs)
 *
 * where k counts the dispatchers with a backlog (itself included) and floor is
 * min(DSP_SHARE_FLOOR, 1/k); alone with a backlog (k = 1): the whole limit. A dispatcher
 * with nothing to send counts for nobody (its own share is the floor until it has
 * something). A peer's record older than DSP_SHARE_STALE_MS is forgotten (it died); a
 * stopping dispatcher publishes a tombstone so the others take its slice at once. With
 * partition leases (dsp_lease.h: every dispatcher of the channel on one machine) a record
 * also names its writer's slot: a peer whose slot is no longer held, or held by another
 * dispatcher, is forgotten at the next lease tick (dsp_share_drop_dead), and the newer record of a slot replaces an older
 * one under another client id (the dispatcher that held it died and another took it), so
 * a killed dispatcher's backlog does not count for DSP_SHARE_STALE_MS after its death.
 *
 * Record (key: the dispatcher's client id; value null when it stopped; "slot" only with
 * partition leases):
 *     {"v":1,"dispatcher":"<client id>","channel":"sms","backlog":1234,"ts_ms":...,"slot":0}
 * One thread (the dispatcher's loop). */
#define DSP_SHARE_FLOOR 0.05
#define DSP_SHARE_STALE_MS 3000
#define DSP_SHARE_EVERY_MS 500
#define DSP_SHARE_MAX_PEERS 64
/* Slots a record may name: 0..DSP_SHARE_MAX_SLOT (dsp_lease.h's DSP_LEASE_MAX_SLOTS - 1). */
#define DSP_SHARE_MAX_SLOT 255

typedef struct dsp_share dsp_share_t;

/* The table of ch's peers of dispatcher self (client id, copied). NULL when out of memory. */
dsp_share_t *dsp_share_new(msg_channel_t ch, const char *self);
void dsp_share_free(dsp_share_t *s);
/* This dispatcher's partition-lease slot (0..DSP_SHARE_MAX_SLOT), named in its records from
 * now on; -1 (the default): none. */
void dsp_share_set_slot(dsp_share_t *s, int slot);
/* Does dispatcher id still hold slot? (ctx: the caller's; dsp_group.c asks the leases) */
typedef int (*dsp_share_alive_fn)(void *ctx, int slot, const char *id);
/* Forget every peer whose record names a slot it no longer holds, as alive() says. */
void dsp_share_drop_dead(dsp_share_t *s, dsp_share_alive_fn alive, void *ctx);
/* A record of tocsin.backlog read at now_ms (monotonic). Another channel's, and this
 * dispatcher's own, are ignored (0); so is one older (ts_ms) than the record of another
 * client id naming the same slot, which it replaces when newer. val NULL: the tombstone
 * of key. A malformed record or a table full: TOCSIN_ERR_INVAL / TOCSIN_ERR_TOOBIG,
 * nothing changed. */
int dsp_share_record(dsp_share_t *s, const void *key, size_t keylen, const void *val, size_t len,
                     int64_t now_ms);
/* This dispatcher's record, with backlog, into b (reset first). */
int dsp_share_encode(const dsp_share_t *s, int64_t backlog, int64_t ts_ms, buf_t *b);
/* This dispatcher's share now (0..1], own being its backlog; *fresh (may be NULL): the
 * peers with a fresh record (with a backlog or not). */
double dsp_share_get(dsp_share_t *s, int64_t own, int64_t now_ms, int *fresh);
/* The peers with a fresh record of a backlog > 0 (sending now, or about to). */
int dsp_share_busy(const dsp_share_t *s, int64_t now_ms);
/* The share of a dispatcher with backlog own among n peers' backlogs (the formula above). */
double dsp_share_of(int64_t own, const int64_t *peer, size_t n, double floor);

#endif
