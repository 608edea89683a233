/* route.h -- choose a vendor for a message: priority (with weights) or cheapest, skipping unhealthy and numberless vendors. */
#ifndef TOCSIN_ROUTE_H
#define TOCSIN_ROUTE_H
#include <stddef.h>
#include <stdint.h>

#include "core/cfg.h"
#include "core/msg.h"
#include "dispatcher/sla.h"

/* One route_t per channel, built from cfg->routes[ch].
 *
 * Candidates are the route's vendors in order ("priority"), or sorted by
 * cfg_vendor_t.cost, cheapest first, ties in route order ("cheapest").
 * A vendor is skipped when it owns no number for the message's sender pool
 * (cfg_sender() is NULL; a message without a sender skips no vendor), and
 * when its SLA state is open or drained.
 *
 * Weights: a vendor's config may say "weight": N (> 0). When any eligible
 * candidate has a weight, traffic is split among the eligible weighted
 * vendors in proportion to their weights (smooth weighted round robin:
 * deterministic, exact over a cycle); a weighted vendor below full traffic
 * (probing, ramping) gets weight x fraction and what it gives up goes to the
 * weighted vendors at full traffic. Vendors without a weight are standbys
 * used, in order, only when no weighted vendor takes the message.
 * Without weights the first eligible candidate takes all traffic.
 *
 * Traffic fraction (sla_fraction()): a probing vendor takes only its trickle
 * (e.g. 1 message in 20) and the rest falls through to the next candidate; a
 * vendor ramping up after recovery takes its growing fraction. Fractions are
 * applied with a per-vendor credit counter, so they are exact and
 * deterministic. When only probing vendors are left and none is due a
 * message now, route_pick() answers TOCSIN_ERR_AGAIN (the caller holds the
 * message and tries again later); a ramping vendor is never refused when it
 * is the last one. Fractions count route_pick() calls: a message picked
 * but then held (rate limit, in-flight cap) and picked again counts twice.
 *
 * Not thread-safe: the dispatcher's loop thread owns a route_t. */

typedef struct route route_t;

/* The route of channel ch in cfg (cfg must outlive it). NULL with a reason
 * in err (e.g. a vendor with a bad "weight"). Owned by the caller. */
route_t *route_new(const cfg_t *cfg, msg_channel_t ch, char *err, size_t errlen);
void route_free(route_t *r);

/* Pick a vendor for m at now_ms (monotonic, as given to the sla_t's).
 * sla[i] is the monitor of cfg->vendors[i] (NULL array or NULL entry =
 * healthy). exclude is a cfg vendor index to avoid (the vendor that just
 * deferred this message) or -1; it is still used when nothing else is
 * eligible. On success returns 0 and *vendor = index into cfg->vendors.
 * TOCSIN_ERR_NOTFOUND: no vendor of the route owns a number for the sender
 * pool (the message can never go: fail it). TOCSIN_ERR_AGAIN: every vendor
 * that could take it is open/drained or only probing (hold it and retry; pause
 * the partitions if this persists). */
int route_pick(route_t *r, const msg_out_t *m, sla_t *const *sla, int64_t now_ms, int exclude,
               int *vendor);

/* Number of candidates, and the cfg vendor index of candidate i in order. */
size_t route_count(const route_t *r);
int route_vendor(const route_t *r, size_t i);

#endif
