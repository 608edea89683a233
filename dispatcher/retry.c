/* retry.c -- backoff with full jitter, Retry-After, attempts, expiry and the retry budget token bucket. */
#include "dispatcher/retry.h"
#include "core/err.h"

#include <stdio.h>
#include <stdlib.h>

struct retry {
	int max_attempts;
	int64_t base_ms, max_ms;
	double budget, min_per_s;
	double tokens, cap;
	int64_t last_ms; /* last refill; INT64_MIN = never */
	uint64_t rng;
};

retry_t *retry_new_opts(int max_attempts, int base_ms, int max_ms, double budget, double min_per_s,
                        uint64_t seed, char *err, size_t errlen)
{
	if (max_attempts < 1 || base_ms < 1 || max_ms < base_ms || !(budget >= 0 && budget <= 10) ||
	    !(min_per_s >= 0 && min_per_s <= 1e6)) {
		snprintf(err, errlen,
		         "retry: need max_attempts >= 1, 1 <= retry_base_ms <= retry_max_ms, "
		         "retry_budget in [0, 10], retry_budget_min_per_s in [0, 1e6]");
		return NULL;
	}
	retry_t *r = calloc(1, sizeof *r);
	if (!r) {
		snprintf(err, errlen, "retry: out of memory");
		return NULL;
	}
	r->max_attempts = max_attempts;
	r->base_ms = base_ms;
	r->max_ms = max_ms;
	r->budget = budget;
	r->min_per_s = min_per_s;
	r->cap = min_per_s * 10 + 1 + budget * 10000;
	r->tokens = min_per_s * 10 + 1;
	r->last_ms = INT64_MIN;
	r->rng = seed ? seed : 0x9e3779b97f4a7c15ULL;
	return r;
}

retry_t *retry_new(const cfg_t *cfg, uint64_t seed, char *err, size_t errlen)
{
	double budget = 0.2, minps = 10;
	json_t *d = cfg->root ? json_object_get(cfg->root, "dispatcher") : NULL;
	json_t *x = d ? json_object_get(d, "retry_budget") : NULL;
	if (x) {
		if (!json_is_number(x) || json_number_value(x) < 0 || json_number_value(x) > 10) {
			snprintf(err, errlen, "%s: dispatcher.retry_budget must be a number in [0, 10]",
			         cfg->path ? cfg->path : "config");
			return NULL;
		}
		budget = json_number_value(x);
	}
	x = d ? json_object_get(d, "retry_budget_min_per_s") : NULL;
	if (x) {
		if (!json_is_number(x) || json_number_value(x) < 0 || json_number_value(x) > 1e6) {
			snprintf(err, errlen,
			         "%s: dispatcher.retry_budget_min_per_s must be a number in [0, 1000000]",
			         cfg->path ? cfg->path : "config");
			return NULL;
		}
		minps = json_number_value(x);
	}
	return retry_new_opts(cfg->max_attempts, cfg->retry_base_ms, cfg->retry_max_ms, budget,
	                      minps, seed, err, errlen);
}

void retry_free(retry_t *r) { free(r); }

static uint64_t rnd(retry_t *r) /* xorshift64* */
{
	uint64_t x = r->rng;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	r->rng = x;
	return x * 0x2545F4914F6CDD1DULL;
}

/* Uniform in [0, n]. */
static int64_t uniform(retry_t *r, int64_t n)
{
	if (n <= 0)
		return 0;
	return (int64_t)(rnd(r) % (uint64_t)(n + 1));
}

int64_t retry_cap_ms(const retry_t *r, int attempt)
{
	if (attempt < 0)
		attempt = 0;
	int64_t c = r->base_ms;
	for (int i = 0; i < attempt && c < r->max_ms; i++)
		c *= 2;
	return c < r->max_ms ? c : r->max_ms;
}

static void refill(retry_t *r, int64_t now_ms)
{
	/* Time refills only up to 10 s of the minimum; sends can bank up to cap. */
	double floor_cap = r->min_per_s * 10 + 1;
	if (r->last_ms != INT64_MIN && now_ms > r->last_ms && r->tokens < floor_cap) {
		r->tokens += r->min_per_s * (double)(now_ms - r->last_ms) / 1000.0;
		if (r->tokens > floor_cap)
			r->tokens = floor_cap;
	}
	if (r->last_ms == INT64_MIN || now_ms > r->last_ms)
		r->last_ms = now_ms;
}

void retry_note_send(retry_t *r, int64_t now_ms)
{
	refill(r, now_ms);
	r->tokens += r->budget;
	if (r->tokens > r->cap)
		r->tokens = r->cap;
}

double retry_budget_left(retry_t *r, int64_t now_ms)
{
	refill(r, now_ms);
	return r->tokens;
}

int retry_expired(const msg_out_t *m, int64_t now_ms)
{
	return m->expires_ms > 0 && now_ms >= m->expires_ms;
}

int retry_decide(retry_t *r, const msg_out_t *m, int64_t now_ms, int64_t retry_after_ms,
                 int throttled, retry_decision_t *d)
{
	if (!r || !m || !d)
		return TOCSIN_ERR_INVAL;
	int a = m->attempt < 0 ? 0 : m->attempt;
	d->next_attempt = throttled ? a : a + 1;
	d->delay_ms = 0;
	d->not_before_ms = now_ms;
	if (retry_expired(m, now_ms)) {
		d->verdict = RETRY_FINAL_EXPIRED;
		d->reason = "expired";
		return 0;
	}
	if (!throttled && a + 1 >= r->max_attempts) {
		d->verdict = RETRY_FINAL_ATTEMPTS;
		d->reason = "max_attempts";
		return 0;
	}
	int64_t delay = uniform(r, retry_cap_ms(r, a));
	d->verdict = RETRY_LATER;
	d->reason = "backoff";
	if (!throttled) {
		refill(r, now_ms);
		if (r->tokens >= 1 - 1e-9) {
			r->tokens -= 1;
		} else {
			d->verdict = RETRY_PARKED;
			d->reason = "budget";
			delay = r->max_ms + uniform(r, r->max_ms);
		}
	}
	if (retry_after_ms > 0 && retry_after_ms > delay) {
		delay = retry_after_ms;
		if (d->verdict == RETRY_LATER)
			d->reason = "retry_after";
	}
	if (m->expires_ms > 0 && now_ms + delay >= m->expires_ms) {
		d->verdict = RETRY_FINAL_EXPIRED;
		d->reason = "expired";
		d->delay_ms = 0;
		d->not_before_ms = now_ms;
		return 0;
	}
	d->delay_ms = delay;
	d->not_before_ms = now_ms + delay;
	return 0;
}
