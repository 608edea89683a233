/* rl.h -- GCRA rate limiter per vendor and per sender number, in SMS segments, shared by partition fraction. */
#ifndef TOCSIN_RL_H
#define TOCSIN_RL_H
#include <stddef.h>
#include <stdint.h>

#include "core/cfg.h"

/* One rl_t per vendor. It paces units (SMS segments, or emails) through two
 * GCRA limiters: the vendor's (rate_per_s, burst) and one per sender number
 * of the vendor (rate_per_sender, or the pool's own senders.<pool>.rate_per_number
 * when it has one; same burst). A request of n units passes
 * only when both limiters allow it. Time is passed in by the caller as
 * monotonic nanoseconds, so the limiter is deterministic; it never sleeps:
 * rl_take() says how long to wait and the caller arms a timer.
 *
 * Conformance (GCRA, emission interval T = 1/rate, tolerance burst*T, at least
 * 2 ms when the rate before the share is >= 500/s): at most 1 + burst units at once
 * from idle (with the floor: 1 + max(burst, 2 ms worth)), then one unit per T; any
 * half-open window of length W holds at most rate*W + that extra (rounded up to a whole
 * unit). The 2 ms floor is the caller's timer granularity: the dispatcher's timers fire
 * in whole ms, and without it each late wake-up is time lost for good (at 884/s, burst
 * 0, a dispatcher reached ~500/s). It is decided on the whole rate, not the share, so
 * that dispatchers sharing a fast vendor keep it at any share (2 ms of each share adds
 * up to 2 ms of the vendor). Below 500/s the limiter stays exact (a late wake-up costs
 * up to ~2 ms of each T: set burst to absorb it). A request larger
 * than 1 + burst units passes when the limiter is idle and then costs its
 * full n*T, so long messages are never starved and the average rate holds.
 *
 * Sharing: the dispatcher sets its share of the vendor (by backlog, or owned
 * partitions / total partitions: dispatcher/README.md); rates and burst are
 * multiplied by it.
 * Adaptive rate: rl_throttled() (a 429 or a vendor "throttled" answer)
 * multiplies the vendor rate by `rate_decrease` (default 0.5, floor
 * `rate_min_fraction` 0.05), at most once per second; the rate recovers by
 * `rate_recover_per_s` (default 0.1 of the configured rate) per second.
 * A vendor configured unlimited (rate_per_s 0) that answers 429 gets a
 * learned rate: the units it accepted in the last second, then the same
 * decrease/recovery; it is unlimited again once fully recovered.
 *
 * Not thread-safe: one thread owns each rl_t (the dispatcher's event loop).
 * In core/ (moved from dispatcher/) so that sends outside the dispatcher can be
 * paced by the same limiter. */

#define RL_NEVER INT64_MAX /* wait returned when the share is 0: no units can go */

typedef struct rl rl_t;

/* A limiter for vendor v (rate_per_s, rate_per_sender, burst; from v->raw:
 * "rate_decrease", "rate_recover_per_s", "rate_min_fraction"). v must outlive
 * the limiter (it keeps v's sender pool names). Returns NULL with a reason
 * naming the vendor and field in err. Owned by the caller (rl_free()). */
rl_t *rl_new(const cfg_vendor_t *v, char *err, size_t errlen);
/* The same from numbers, with nsenders sender slots (0..nsenders-1) and no
 * pool names (rl_sender() then returns -1). rate 0 = unlimited. */
rl_t *rl_new_rate(double rate_per_s, double rate_per_sender, int burst, size_t nsenders, char *err,
                  size_t errlen);
/* Release rl; rl_free(NULL) does nothing. */
void rl_free(rl_t *rl);

/* The sender slot of pool (index into the vendor's senders[]), or -1 when the
 * vendor owns no number for it. */
int rl_sender(const rl_t *rl, const char *pool);

/* Nanoseconds until n units from sender slot s (-1 = no per-sender limit)
 * may go at now_ns: 0 = now, RL_NEVER = share is 0. Does not consume. */
int64_t rl_wait_ns(const rl_t *rl, int s, int n, int64_t now_ns);
/* As rl_wait_ns() in milliseconds, rounded up (so a timer never fires early
 * and the caller never spins); RL_NEVER stays RL_NEVER. */
int64_t rl_wait_ms(const rl_t *rl, int s, int n, int64_t now_ns);
/* Take n units for sender slot s at now_ns when they may go now: returns 0.
 * Otherwise consumes nothing, returns TOCSIN_ERR_AGAIN and sets *wait_ns
 * (if not NULL) as rl_wait_ns(). n < 1 or s out of range: TOCSIN_ERR_INVAL. */
int rl_take(rl_t *rl, int s, int n, int64_t now_ns, int64_t *wait_ns);

/* Set this dispatcher's share of the vendor: owned/total partitions (total > 0,
 * 0 <= owned <= total), or TOCSIN_ERR_INVAL. Call on every rebalance. */
int rl_set_share(rl_t *rl, int owned, int total);
double rl_share(const rl_t *rl);

/* The vendor answered "too many requests" at now_ns: decrease the rate. */
void rl_throttled(rl_t *rl, int64_t now_ns);
/* Hold every unit until until_ns (a Retry-After for the whole vendor). */
void rl_hold_until(rl_t *rl, int64_t until_ns);
/* The vendor's effective rate now (units/s, after share and adaptation);
 * 0 = unlimited. */
double rl_rate(const rl_t *rl, int64_t now_ns);
/* The adaptation factor now: 1 = full configured rate, < 1 after a 429. */
double rl_factor(const rl_t *rl, int64_t now_ns);

#endif
