/* dsp_lease.h -- partition leases on one host: which dispatchers of a channel are alive (slot files held by flock), which outbox partitions each should consume, and a lease file per partition held while one does. */
#ifndef TOCSIN_DSP_LEASE_H
#define TOCSIN_DSP_LEASE_H
#include <stddef.h>
#include <stdint.h>

/* Why: the embedded broker (librdkafka 2.0.2's mock cluster) ignores group.instance.id, and
 * every rebalance waits session.timeout.ms - 1000 for members to rejoin, so with a dispatcher
 * killed and restarted every few seconds its group never settles (bench/RESULTS.md, issue 13
 * item 4). With that broker every dispatcher of a channel runs on one machine and shares
 * var_dir, so they agree on the partitions among themselves through files and flock(2):
 *
 *   - slots: <dir>/dispatch-<channel>-<slot>.lock, the lowest free one taken and held by each
 *     dispatcher for its life (dsp_lease_slot_take); a slot whose lock can be taken is free;
 *   - the target: the live slots in order, ranked 0..n-1; partition p of each lane belongs to
 *     the live slot of rank p mod n (dsp_lease_mine);
 *   - leases: <dir>/outbox-<channel>-p<N>.lock (bulk lane) and
 *     <dir>/outbox-<channel>-urgent-p<N>.lock, held while a dispatcher consumes partition N
 *     (dsp_lease_take, dsp_lease_drop): two never consume one partition at once.
 *
 * The kernel drops a dead process's locks, so its slot and its leases are free at once.
 * One thread (the dispatcher's loop). */
#define DSP_LEASE_MAX_SLOTS 256
#define DSP_LEASE_MAX_PARTS 1024
#define DSP_LEASE_HOLDER_MAX 96

typedef struct dsp_lease dsp_lease_t;

/* Take the lowest free slot under dir for channel (the file is created, 0600) and hold it,
 * writing holder (its client id, up to DSP_LEASE_HOLDER_MAX - 1 bytes; NULL: nothing) in it:
 * returns the slot with its descriptor in *fd (the caller keeps it open for its life), or -1
 * when none of DSP_LEASE_MAX_SLOTS is free or dir cannot be written (errno set). */
int dsp_lease_slot_take(const char *dir, const char *channel, const char *holder, int *fd);

/* Leases of channel's partitions under dir, for the dispatcher holding slot (taken by
 * dsp_lease_slot_take; its descriptor stays the caller's). Caller owns the result
 * (dsp_lease_free, which drops every lease it holds). NULL with a reason in err. */
dsp_lease_t *dsp_lease_new(const char *dir, const char *channel, int slot, char *err, size_t errlen);
void dsp_lease_free(dsp_lease_t *l);

/* Probe the slots: the live ones (held by someone, this one included) ranked in order; returns
 * this dispatcher's rank with the number of live slots in *n. Probing takes a free slot's lock
 * shared for an instant (and lets it go): a dispatcher starting just then takes the next slot,
 * another probing just then is not misled. */
int dsp_lease_rank(dsp_lease_t *l, int *n);
/* The slots found live by the last dsp_lease_rank (this one's included): DSP_LEASE_MAX_SLOTS
 * entries, 1 live; all 0 before the first. */
const unsigned char *dsp_lease_live(const dsp_lease_t *l);
/* What the holder of slot wrote in it (dsp_lease_slot_take), as read by the last
 * dsp_lease_rank: "" when not live, not written yet, or this dispatcher's own. */
const char *dsp_lease_holder(const dsp_lease_t *l, int slot);
/* Does partition p belong to the live slot of rank (of n)? */
static inline int dsp_lease_mine(int rank, int n, int32_t p) { return n > 0 && p % n == rank; }

/* Take the lease of partition p of lane (0 bulk, 1 urgent) if it is free: 1 held (now or
 * already), 0 another dispatcher holds it, negative on error (out of range, a file that
 * cannot be opened). */
int dsp_lease_take(dsp_lease_t *l, int lane, int32_t p);
/* Let partition p of lane go (nothing when not held). */
void dsp_lease_drop(dsp_lease_t *l, int lane, int32_t p);
int dsp_lease_held(const dsp_lease_t *l, int lane, int32_t p);

#endif
