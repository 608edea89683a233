/* retry.h -- retry policy: exponential backoff with full jitter, Retry-After, attempt cap, retry budget, expiry. */
#ifndef TOCSIN_RETRY_H
#define TOCSIN_RETRY_H
#include <stddef.h>
#include <stdint.h>

#include "core/cfg.h"
#include "core/msg.h"

/* What to do with a message whose send attempt was deferred (429, 5xx,
 * timeout, connection error). Times are wall-clock ms (msg_out_t.expires_ms
 * and not_before_ms are wall clock).
 *
 * Backoff: attempt a (m->attempt, 0 = the first try just failed) waits a
 * uniformly random time in [0, min(retry_max_ms, retry_base_ms * 2^a)] (full
 * jitter), but never less than the vendor's Retry-After.
 * Attempts: the send that fails as attempt max_attempts-1 is final (failed,
 * reason "max_attempts"). A throttled answer (429: never processed by the
 * vendor) does not use up an attempt nor the budget.
 * Expiry: when expires_ms is set and the retry could not start before it, the
 * message is final (expired).
 * Budget: retries may be at most `retry_budget` (dispatcher config, default
 * 0.2) times the first attempts, plus `retry_budget_min_per_s` (default 10)
 * per second, as a token bucket that banks at most 10 s of the per-second
 * minimum plus the budget of 10,000 first attempts (it starts with the 10 s). A retry beyond
 * the budget is not dropped: it is parked for retry_max_ms (plus jitter) so an
 * outage does not turn into a retry storm, and no recipient is lost. */

typedef enum retry_verdict {
	RETRY_LATER = 0,      /* retry at not_before_ms with attempt next_attempt */
	RETRY_PARKED,         /* budget exhausted: retry later than usual (not_before_ms) */
	RETRY_FINAL_ATTEMPTS, /* give up: status failed, to tocsin.dead */
	RETRY_FINAL_EXPIRED,  /* give up: status expired, to tocsin.dead */
} retry_verdict_t;

typedef struct retry_decision {
	retry_verdict_t verdict;
	int64_t delay_ms;      /* from now; 0 for finals */
	int64_t not_before_ms; /* now + delay */
	int next_attempt;      /* attempt number for the retry (unchanged after a 429) */
	const char *reason; /* static: "backoff", "retry_after", "budget", "max_attempts", "expired" */
} retry_decision_t;

typedef struct retry retry_t;

/* Policy from cfg (max_attempts, retry_base_ms, retry_max_ms; "dispatcher":
 * "retry_budget", "retry_budget_min_per_s"). seed seeds the jitter (use e.g.
 * the process id and time; tests pass a constant). NULL with a reason naming
 * the field in err. Owned by the caller. */
retry_t *retry_new(const cfg_t *cfg, uint64_t seed, char *err, size_t errlen);
/* The same from numbers (budget as a fraction, min_per_s retries per second). */
retry_t *retry_new_opts(int max_attempts, int base_ms, int max_ms, double budget, double min_per_s,
                        uint64_t seed, char *err, size_t errlen);
void retry_free(retry_t *r);

/* A first attempt was sent at now_ms: earns budget for retries. */
void retry_note_send(retry_t *r, int64_t now_ms);
/* Decide for m, whose attempt m->attempt was deferred at now_ms. retry_after_ms
 * is the vendor's Retry-After in ms (0 = none); throttled is 1 for a 429 /
 * "throttled" answer. A LATER / PARKED verdict uses one retry from the budget
 * (not for throttled). Returns 0 and fills *d. */
int retry_decide(retry_t *r, const msg_out_t *m, int64_t now_ms, int64_t retry_after_ms,
                 int throttled, retry_decision_t *d);
/* 1 when m has expired at now_ms (check before each send), else 0. */
int retry_expired(const msg_out_t *m, int64_t now_ms);
/* The backoff cap for attempt a: min(retry_max_ms, retry_base_ms * 2^a). */
int64_t retry_cap_ms(const retry_t *r, int attempt);
/* Retries currently affordable (whole tokens) at now_ms. */
double retry_budget_left(retry_t *r, int64_t now_ms);

#endif
