/* rl.c -- GCRA pacing per vendor and per sender, with partition share and 429 adaptation. */
#include "core/rl.h"
#include "core/err.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NS 1000000000LL

struct rl {
	double rate;        /* configured vendor units/s, 0 = unlimited */
	double rate_sender; /* configured per-sender units/s, 0 = unlimited */
	double burst;       /* configured extra units at once */
	double share;       /* owned / total partitions */
	/* adaptation */
	double decrease, recover_per_s, min_frac;
	double dec_factor; /* factor right after the last decrease */
	int64_t t_dec;     /* when; INT64_MIN = never */
	double learned;    /* learned rate for an unlimited vendor, 0 = none */
	int64_t hold_ns;   /* nothing before this */
	/* units taken per second, for the learned rate */
	int64_t sec;
	int64_t cur_cnt, prev_cnt;
	/* GCRA theoretical arrival times */
	int64_t tat;
	size_t nsenders;
	int64_t *tat_s;
	double *rate_s;        /* per slot: its pool's "rate_per_number", or -1 = rate_sender */
	const cfg_vendor_t *v; /* for pool names, or NULL */
};

static rl_t *mk(double rate, double rate_sender, int burst, size_t nsenders, char *err, size_t errlen)
{
	if (!(rate >= 0) || !(rate_sender >= 0) || burst < 0 || !isfinite(rate) ||
	    !isfinite(rate_sender)) {
		snprintf(err, errlen, "rl: rates must be finite numbers >= 0 and burst >= 0");
		return NULL;
	}
	rl_t *rl = calloc(1, sizeof *rl);
	int64_t *ts = calloc(nsenders + 1, sizeof *ts);
	double *rs = calloc(nsenders + 1, sizeof *rs);
	if (!rl || !ts || !rs) {
		free(rl);
		free(ts);
		free(rs);
		snprintf(err, errlen, "rl: out of memory");
		return NULL;
	}
	rl->rate = rate;
	rl->rate_sender = rate_sender;
	rl->burst = burst;
	rl->share = 1;
	rl->decrease = 0.5;
	rl->recover_per_s = 0.1;
	rl->min_frac = 0.05;
	rl->dec_factor = 1;
	rl->t_dec = INT64_MIN;
	rl->hold_ns = INT64_MIN;
	rl->sec = INT64_MIN;
	rl->tat = INT64_MIN;
	rl->nsenders = nsenders;
	rl->tat_s = ts;
	rl->rate_s = rs;
	for (size_t i = 0; i < nsenders; i++) {
		ts[i] = INT64_MIN;
		rs[i] = -1;
	}
	return rl;
}

rl_t *rl_new_rate(double rate_per_s, double rate_per_sender, int burst, size_t nsenders, char *err,
                  size_t errlen)
{
	return mk(rate_per_s, rate_per_sender, burst, nsenders, err, errlen);
}

static int opt(const cfg_vendor_t *v, const char *k, double lo, double hi, double *out, char *err,
               size_t errlen)
{
	json_t *x = v->raw ? json_object_get(v->raw, k) : NULL;
	if (!x)
		return 0;
	if (!json_is_number(x) || json_number_value(x) < lo || json_number_value(x) > hi) {
		snprintf(err, errlen, "vendor %s: \"%s\" must be a number in [%g, %g]", v->name, k,
		         lo, hi);
		return -1;
	}
	*out = json_number_value(x);
	return 0;
}

rl_t *rl_new(const cfg_vendor_t *v, char *err, size_t errlen)
{
	double dec = 0.5, rec = 0.1, minf = 0.05;
	if (opt(v, "rate_decrease", 0.01, 0.99, &dec, err, errlen) ||
	    opt(v, "rate_recover_per_s", 0.001, 1, &rec, err, errlen) ||
	    opt(v, "rate_min_fraction", 0.001, 1, &minf, err, errlen))
		return NULL;
	rl_t *rl = mk(v->rate_per_s, v->rate_per_sender, v->burst, v->nsenders, err, errlen);
	if (!rl)
		return NULL;
	/* a sender pool's own number rate: senders.<pool>.rate_per_number */
	json_t *senders = v->raw ? json_object_get(v->raw, "senders") : NULL;
	for (size_t i = 0; i < v->nsenders && senders; i++) {
		json_t *so = json_object_get(senders, v->senders[i].pool);
		json_t *x = json_is_object(so) ? json_object_get(so, "rate_per_number") : NULL;
		if (!x)
			continue;
		if (!json_is_number(x) || !(json_number_value(x) >= 0) ||
		    !isfinite(json_number_value(x))) {
			snprintf(err, errlen,
			         "vendor %s: senders.%s.\"rate_per_number\" must be a number >= 0 "
			         "(0 = unlimited)",
			         v->name, v->senders[i].pool);
			rl_free(rl);
			return NULL;
		}
		rl->rate_s[i] = json_number_value(x);
	}
	rl->decrease = dec;
	rl->recover_per_s = rec;
	rl->min_frac = minf;
	rl->v = v;
	return rl;
}

void rl_free(rl_t *rl)
{
	if (!rl)
		return;
	free(rl->tat_s);
	free(rl->rate_s);
	free(rl);
}

int rl_sender(const rl_t *rl, const char *pool)
{
	if (!rl->v || !pool)
		return -1;
	for (size_t i = 0; i < rl->v->nsenders; i++)
		if (rl->v->senders[i].pool && strcmp(rl->v->senders[i].pool, pool) == 0)
			return (int)i;
	return -1;
}

double rl_factor(const rl_t *rl, int64_t now_ns)
{
	if (rl->t_dec == INT64_MIN)
		return 1;
	double dt = now_ns > rl->t_dec ? (double)(now_ns - rl->t_dec) / 1e9 : 0;
	double f = rl->dec_factor + rl->recover_per_s * dt;
	return f >= 1 ? 1 : f;
}

/* Effective vendor rate: -1 unlimited, 0 none, else units/s. */
static double vendor_rate(const rl_t *rl, int64_t now_ns)
{
	double f = rl_factor(rl, now_ns);
	double base = rl->rate;
	if (base <= 0) {
		if (rl->learned <= 0 || f >= 1)
			return -1;
		base = rl->learned;
	}
	return base * rl->share * f;
}

static double sender_rate(const rl_t *rl, int s)
{
	double r = rl->rate_s[s] >= 0 ? rl->rate_s[s] : rl->rate_sender;
	return r <= 0 ? -1 : r * rl->share;
}

double rl_rate(const rl_t *rl, int64_t now_ns)
{
	double r = vendor_rate(rl, now_ns);
	return r < 0 ? 0 : r;
}

double rl_share(const rl_t *rl) { return rl->share; }

/* The least tolerance beyond one unit of a limiter whose rate before the share is 500/s or
 * more (T <= 2 ms at the whole rate): the caller's timers fire in whole ms, up to ~2 ms late,
 * and with a smaller tolerance each late wake-up is time lost for good (at 884/s and burst 0
 * a dispatcher reached about 500/s; two dispatchers sharing 1,000/s by backlog at 0.499 each,
 * about 380/s each). Decided on the whole rate, so that a share just under a half keeps what
 * a share of exactly a half has; 2 ms of each share adds up to 2 ms of the whole rate. Slower
 * limiters stay exact: there 2 ms would let two units into one window of a 1/s number. */
#define RL_SLACK_NS 2e6

/* GCRA: wait before n units may go on a limiter at rate r (share of the whole rate) with
 * state tat. */
static int64_t gcra_wait(double r, double share, double burst, int64_t tat, int n, int64_t now)
{
	if (r < 0)
		return 0;
	if (r == 0)
		return RL_NEVER;
	double T = 1e9 / r;
	double slack = burst * T;
	if (T * share <= RL_SLACK_NS && slack < RL_SLACK_NS)
		slack = RL_SLACK_NS;
	double cost = T * n, tol = slack + T;
	if (tat == INT64_MIN || tat <= now)
		return 0;
	if (cost > tol) /* larger than the bucket: goes when idle */
		return tat - now;
	double w = (double)(tat - now) + cost - tol;
	return w <= 0 ? 0 : (int64_t)ceil(w);
}

static int64_t gcra_after(double r, int64_t tat, int n, int64_t now)
{
	int64_t start = (tat == INT64_MIN || tat < now) ? now : tat;
	return start + (int64_t)llround(1e9 / r * n);
}

int64_t rl_wait_ns(const rl_t *rl, int s, int n, int64_t now_ns)
{
	if (n < 1)
		n = 1;
	double vr = vendor_rate(rl, now_ns);
	int64_t w = gcra_wait(vr, rl->share, rl->burst * rl->share, rl->tat, n, now_ns);
	if (s >= 0 && (size_t)s < rl->nsenders) {
		int64_t w2 = gcra_wait(sender_rate(rl, s), rl->share, rl->burst * rl->share,
		                       rl->tat_s[s], n, now_ns);
		if (w2 > w)
			w = w2;
	}
	if (w != RL_NEVER && rl->hold_ns != INT64_MIN && rl->hold_ns - now_ns > w)
		w = rl->hold_ns - now_ns;
	return w;
}

int64_t rl_wait_ms(const rl_t *rl, int s, int n, int64_t now_ns)
{
	int64_t w = rl_wait_ns(rl, s, n, now_ns);
	if (w == RL_NEVER)
		return w;
	return (w + 999999) / 1000000;
}

int rl_take(rl_t *rl, int s, int n, int64_t now_ns, int64_t *wait_ns)
{
	if (n < 1 || s < -1 || (s >= 0 && (size_t)s >= rl->nsenders))
		return TOCSIN_ERR_INVAL;
	int64_t w = rl_wait_ns(rl, s, n, now_ns);
	if (wait_ns)
		*wait_ns = w;
	if (w > 0)
		return TOCSIN_ERR_AGAIN;
	double vr = vendor_rate(rl, now_ns);
	if (vr > 0)
		rl->tat = gcra_after(vr, rl->tat, n, now_ns);
	double sr = s >= 0 ? sender_rate(rl, s) : -1;
	if (s >= 0 && sr > 0)
		rl->tat_s[s] = gcra_after(sr, rl->tat_s[s], n, now_ns);
	int64_t sec = now_ns / NS;
	if (sec != rl->sec) {
		rl->prev_cnt = sec == rl->sec + 1 ? rl->cur_cnt : 0;
		rl->cur_cnt = 0;
		rl->sec = sec;
	}
	rl->cur_cnt += n;
	return 0;
}

int rl_set_share(rl_t *rl, int owned, int total)
{
	if (total <= 0 || owned < 0 || owned > total)
		return TOCSIN_ERR_INVAL;
	rl->share = (double)owned / (double)total;
	return 0;
}

void rl_throttled(rl_t *rl, int64_t now_ns)
{
	if (rl->t_dec != INT64_MIN && now_ns - rl->t_dec < NS)
		return; /* one decrease per second: a burst of 429s is one signal */
	double f = rl_factor(rl, now_ns);
	if (rl->rate <= 0 && (rl->learned <= 0 || f >= 1)) {
		int64_t sec = now_ns / NS;
		int64_t seen = 0;
		if (sec == rl->sec)
			seen = rl->cur_cnt > rl->prev_cnt ? rl->cur_cnt : rl->prev_cnt;
		else if (sec == rl->sec + 1)
			seen = rl->cur_cnt;
		rl->learned = seen > 1 ? (double)seen : 1;
		f = 1;
	}
	f *= rl->decrease;
	rl->dec_factor = f < rl->min_frac ? rl->min_frac : f;
	rl->t_dec = now_ns;
}

void rl_hold_until(rl_t *rl, int64_t until_ns)
{
	if (rl->hold_ns == INT64_MIN || until_ns > rl->hold_ns)
		rl->hold_ns = until_ns;
}
