/* sla.c -- per-vendor SLA window (1 s buckets) and the healthy/open/probing state machine with hysteresis. */
#include "dispatcher/sla.h"
#include "core/err.h"
#include "core/hist.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NB 64 /* ring of 1 s buckets; window_s <= 60 */
#define MAX_WINDOW 60

typedef struct bucket {
	int64_t sec; /* which second this slot holds; INT64_MIN = empty */
	int64_t ok, errors, timeouts, throttled, receipts, delivered;
	hist_t *lat; /* microseconds */
} bucket_t;

struct sla {
	char name[64];
	sla_opts_t o;
	msg_vh_state_t st;
	int64_t since_ms;      /* entered the current state */
	int64_t ramp_from_ms;  /* healthy: ramp start; INT64_MIN = no ramp */
	int64_t eval_from_sec; /* healthy: first second that counts */
	int64_t probe_sec;     /* probing: first second of probe window 0 */
	int probe_k;           /* probing: next probe window to judge */
	int good;              /* probing: consecutive good windows */
	bucket_t b[NB];
	hist_t *scratch;
	int64_t last_answer_ms; /* the last sla_record(); INT64_MIN none */
	int overdue;            /* requests in flight past p95_ms, as last reported */
	int64_t oldest_ms;      /* the oldest one's age */
};

void sla_opts_default(sla_opts_t *o)
{
	o->p95_ms = 2000;
	o->error_rate = 0.2;
	o->timeout_rate = 0.1;
	o->min_delivered = 0;
	o->window_s = 5;
	o->min_samples = 20;
	o->min_open_s = 5;
	o->probe_windows = 3;
	o->probe_min_samples = 5;
	o->probe_fraction = 0.05;
	o->ramp_s = 10;
	o->recover_ratio = 0.8;
}

static int num(const json_t *obj, const char *k, double lo, double hi, double *out,
               const char *vendor, char *err, size_t errlen)
{
	json_t *x = json_object_get(obj, k);
	if (!x)
		return 0;
	if (!json_is_number(x) || !(json_number_value(x) >= lo) || !(json_number_value(x) <= hi)) {
		snprintf(err, errlen, "vendor %s: \"sla\".\"%s\" must be a number in [%g, %g]",
		         vendor ? vendor : "?", k, lo, hi);
		return TOCSIN_ERR_CONFIG;
	}
	*out = json_number_value(x);
	return 0;
}

int sla_opts_parse(const json_t *obj, const char *vendor, sla_opts_t *o, char *err, size_t errlen)
{
	sla_opts_default(o);
	if (!obj)
		return 0;
	if (!json_is_object(obj)) {
		snprintf(err, errlen, "vendor %s: \"sla\" must be an object", vendor ? vendor : "?");
		return TOCSIN_ERR_CONFIG;
	}
	static const char *const known[] = {"p95_ms",         "error_rate",    "timeout_rate",
	                                    "min_delivered",  "window_s",      "min_samples",
	                                    "min_open_s",     "probe_windows", "probe_min_samples",
	                                    "probe_fraction", "ramp_s",        "recover_ratio"};
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)obj, k, v)
	{
		int ok = 0;
		for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
			ok |= strcmp(k, known[i]) == 0;
		if (!ok) {
			snprintf(err, errlen, "vendor %s: unknown field \"sla\".\"%s\"",
			         vendor ? vendor : "?", k);
			return TOCSIN_ERR_CONFIG;
		}
	}
	double ws = o->window_s, ms = o->min_samples, mo = o->min_open_s, pw = o->probe_windows,
	       pm = o->probe_min_samples, rs = o->ramp_s;
	int rc;
	if ((rc = num(obj, "p95_ms", 0, 3600e3, &o->p95_ms, vendor, err, errlen)) ||
	    (rc = num(obj, "error_rate", 0, 1, &o->error_rate, vendor, err, errlen)) ||
	    (rc = num(obj, "timeout_rate", 0, 1, &o->timeout_rate, vendor, err, errlen)) ||
	    (rc = num(obj, "min_delivered", 0, 1, &o->min_delivered, vendor, err, errlen)) ||
	    (rc = num(obj, "window_s", 1, MAX_WINDOW, &ws, vendor, err, errlen)) ||
	    (rc = num(obj, "min_samples", 1, 1e9, &ms, vendor, err, errlen)) ||
	    (rc = num(obj, "min_open_s", 0, 86400, &mo, vendor, err, errlen)) ||
	    (rc = num(obj, "probe_windows", 1, 1000, &pw, vendor, err, errlen)) ||
	    (rc = num(obj, "probe_min_samples", 1, 1e9, &pm, vendor, err, errlen)) ||
	    (rc = num(obj, "probe_fraction", 0.001, 1, &o->probe_fraction, vendor, err, errlen)) ||
	    (rc = num(obj, "ramp_s", 0, 86400, &rs, vendor, err, errlen)) ||
	    (rc = num(obj, "recover_ratio", 0.01, 1, &o->recover_ratio, vendor, err, errlen)))
		return rc;
	o->window_s = (int)ws;
	o->min_samples = (int)ms;
	o->min_open_s = (int)mo;
	o->probe_windows = (int)pw;
	o->probe_min_samples = (int)pm;
	o->ramp_s = (int)rs;
	return 0;
}

sla_t *sla_new(const char *name, const sla_opts_t *o, char *err, size_t errlen)
{
	if (o->window_s < 1 || o->window_s > MAX_WINDOW || o->min_samples < 1 ||
	    o->probe_windows < 1 || o->probe_min_samples < 1 || o->min_open_s < 0 ||
	    o->ramp_s < 0 || !(o->probe_fraction > 0 && o->probe_fraction <= 1)) {
		snprintf(err, errlen, "sla %s: options out of range", name ? name : "?");
		return NULL;
	}
	sla_t *s = calloc(1, sizeof *s);
	if (!s)
		goto nomem;
	snprintf(s->name, sizeof s->name, "%s", name ? name : "");
	s->o = *o;
	s->st = MSG_VH_HEALTHY;
	s->since_ms = INT64_MIN;
	s->ramp_from_ms = INT64_MIN;
	s->eval_from_sec = INT64_MIN;
	s->last_answer_ms = INT64_MIN;
	if (!(s->scratch = hist_new(err, errlen)))
		goto nomem;
	for (int i = 0; i < NB; i++) {
		s->b[i].sec = INT64_MIN;
		if (!(s->b[i].lat = hist_new(err, errlen)))
			goto nomem;
	}
	return s;
nomem:
	sla_free(s);
	snprintf(err, errlen, "sla %s: out of memory", name ? name : "?");
	return NULL;
}

sla_t *sla_new_vendor(const cfg_vendor_t *v, char *err, size_t errlen)
{
	sla_opts_t o;
	if (sla_opts_parse(v->raw ? json_object_get(v->raw, "sla") : NULL, v->name, &o, err, errlen))
		return NULL;
	return sla_new(v->name, &o, err, errlen);
}

void sla_free(sla_t *s)
{
	if (!s)
		return;
	for (int i = 0; i < NB; i++)
		hist_free(s->b[i].lat);
	hist_free(s->scratch);
	free(s);
}

static int64_t sec_of(int64_t ms) { return ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000); }

static bucket_t *slot(sla_t *s, int64_t now_ms)
{
	int64_t sec = sec_of(now_ms);
	bucket_t *b = &s->b[((sec % NB) + NB) % NB];
	if (b->sec != INT64_MIN && sec < b->sec)
		return NULL; /* older than the ring holds: drop rather than wipe newer numbers */
	if (b->sec != sec) {
		hist_t *h = b->lat;
		hist_reset(h);
		memset(b, 0, sizeof *b);
		b->lat = h;
		b->sec = sec;
	}
	return b;
}

void sla_record(sla_t *s, int64_t now_ms, sla_outcome_t o, int64_t latency_us)
{
	if (s->last_answer_ms == INT64_MIN || now_ms > s->last_answer_ms)
		s->last_answer_ms = now_ms;
	bucket_t *b = slot(s, now_ms);
	if (!b)
		return;
	switch (o) {
	case SLA_OK: b->ok++; break;
	case SLA_ERROR: b->errors++; break;
	case SLA_TIMEOUT: b->timeouts++; break;
	case SLA_THROTTLED: b->throttled++; return;
	default: return;
	}
	hist_record(b->lat, latency_us < 0 ? 0 : (uint64_t)latency_us);
}

void sla_overdue(sla_t *s, int n, int64_t oldest_ms)
{
	s->overdue = n < 0 ? 0 : n;
	s->oldest_ms = oldest_ms;
}

/* Hung: at least probe_min_samples requests in flight past p95_ms, and no
 * answer at all for p95_ms. */
static int hung(const sla_t *s, int64_t now_ms, char *why, size_t whylen)
{
	if (s->o.p95_ms <= 0 || s->overdue < s->o.probe_min_samples ||
	    (s->last_answer_ms != INT64_MIN && now_ms - s->last_answer_ms < (int64_t)s->o.p95_ms))
		return 0;
	snprintf(why, whylen,
	         "p95_ms %.0f: hung, %d requests in flight past it (oldest %lld ms), no answer for %lld ms",
	         s->o.p95_ms, s->overdue, (long long)s->oldest_ms,
	         (long long)(s->last_answer_ms == INT64_MIN ? s->oldest_ms
	                                                    : now_ms - s->last_answer_ms));
	return 1;
}

void sla_receipt(sla_t *s, int64_t now_ms, int delivered)
{
	bucket_t *b = slot(s, now_ms);
	if (!b)
		return;
	b->receipts++;
	if (delivered)
		b->delivered++;
}

/* Sum seconds [from_sec, to_sec] (clamped to the ring) into out. */
static void gather(sla_t *s, int64_t from_sec, int64_t to_sec, sla_stats_t *out)
{
	memset(out, 0, sizeof *out);
	hist_reset(s->scratch);
	if (to_sec - from_sec >= NB)
		from_sec = to_sec - NB + 1;
	for (int64_t sec = from_sec; sec <= to_sec; sec++) {
		bucket_t *b = &s->b[((sec % NB) + NB) % NB];
		if (b->sec != sec)
			continue;
		out->ok += b->ok;
		out->errors += b->errors;
		out->timeouts += b->timeouts;
		out->throttled += b->throttled;
		out->receipts += b->receipts;
		out->delivered += b->delivered;
		hist_merge(s->scratch, b->lat);
	}
	out->answers = out->ok + out->errors + out->timeouts;
	if (hist_count(s->scratch)) {
		out->p50_ms = (double)hist_percentile(s->scratch, 50) / 1000.0;
		out->p95_ms = (double)hist_percentile(s->scratch, 95) / 1000.0;
		out->p99_ms = (double)hist_percentile(s->scratch, 99) / 1000.0;
	} else {
		out->p50_ms = out->p95_ms = out->p99_ms = -1;
	}
	out->error_rate = out->answers ? (double)out->errors / (double)out->answers : -1;
	out->timeout_rate = out->answers ? (double)out->timeouts / (double)out->answers : -1;
	out->delivered_ratio = out->receipts ? (double)out->delivered / (double)out->receipts : -1;
}

/* 1 with a reason when st breaches the thresholds scaled by k (k = 1: breach;
 * k = recover_ratio: "not good enough"). Receipts are judged only when
 * use_receipts (they lag, so probe windows ignore them). */
static int breach(const sla_opts_t *o, const sla_stats_t *st, double k, int64_t min_n,
                  int use_receipts, char *why, size_t whylen)
{
	if (st->answers >= min_n) {
		if (st->error_rate > o->error_rate * k) {
			snprintf(why, whylen, "error_rate %.2f > %.2f (n=%lld)", st->error_rate,
			         o->error_rate * k, (long long)st->answers);
			return 1;
		}
		if (st->timeout_rate > o->timeout_rate * k) {
			snprintf(why, whylen, "timeout_rate %.2f > %.2f (n=%lld)", st->timeout_rate,
			         o->timeout_rate * k, (long long)st->answers);
			return 1;
		}
		if (o->p95_ms > 0 && st->p95_ms > o->p95_ms * k) {
			snprintf(why, whylen, "p95_ms %.0f > %.0f (n=%lld)", st->p95_ms,
			         o->p95_ms * k, (long long)st->answers);
			return 1;
		}
	}
	if (use_receipts && o->min_delivered > 0 && st->receipts >= min_n &&
	    st->delivered_ratio < o->min_delivered) {
		snprintf(why, whylen, "delivered %.2f < %.2f (n=%lld)", st->delivered_ratio,
		         o->min_delivered, (long long)st->receipts);
		return 1;
	}
	return 0;
}

static void enter(sla_t *s, msg_vh_state_t to, int64_t now_ms, sla_transition_t *t,
                  const sla_stats_t *st, const char *reason)
{
	if (t) {
		t->from = s->st;
		t->to = to;
		snprintf(t->reason, sizeof t->reason, "%s", reason ? reason : "");
		if (st) {
			t->stats = *st;
		} else {
			memset(&t->stats, 0, sizeof t->stats);
			t->stats.p50_ms = t->stats.p95_ms = t->stats.p99_ms = -1;
			t->stats.error_rate = t->stats.timeout_rate = t->stats.delivered_ratio = -1;
		}
		t->ts_ms = now_ms;
	}
	msg_vh_state_t from = s->st;
	s->st = to;
	s->since_ms = now_ms;
	if (to == MSG_VH_HEALTHY) {
		/* Old numbers no longer count; traffic ramps up unless we were never out. */
		s->eval_from_sec = sec_of(now_ms) + (now_ms % 1000 ? 1 : 0);
		s->ramp_from_ms = (from == MSG_VH_HEALTHY || s->o.ramp_s == 0) ? INT64_MIN : now_ms;
	} else if (to == MSG_VH_PROBING) {
		s->probe_sec = sec_of(now_ms) + (now_ms % 1000 ? 1 : 0);
		s->probe_k = 0;
		s->good = 0;
	}
}

int sla_tick(sla_t *s, int64_t now_ms, sla_transition_t *t)
{
	sla_stats_t st;
	char why[120];
	int64_t now_sec = sec_of(now_ms);
	switch (s->st) {
	case MSG_VH_HEALTHY: {
		int64_t from = now_sec - s->o.window_s + 1;
		if (s->eval_from_sec != INT64_MIN && s->eval_from_sec > from)
			from = s->eval_from_sec;
		if (from > now_sec)
			from = now_sec;
		gather(s, from, now_sec, &st);
		if (!hung(s, now_ms, why, sizeof why) &&
		    (s->eval_from_sec > now_sec ||
		     !breach(&s->o, &st, 1, s->o.min_samples, 1, why, sizeof why)))
			return 0;
		enter(s, MSG_VH_OPEN, now_ms, t, &st, why);
		return 1;
	}
	case MSG_VH_OPEN:
		if (now_ms - s->since_ms < (int64_t)s->o.min_open_s * 1000)
			return 0;
		snprintf(why, sizeof why, "open for %ds: probing with %.0f%% of traffic",
		         s->o.min_open_s, s->o.probe_fraction * 100);
		enter(s, MSG_VH_PROBING, now_ms, t, NULL, why);
		return 1;
	case MSG_VH_PROBING:
		/* Judge every complete probe window in order; at most one transition. */
		for (;;) {
			int64_t w0 = s->probe_sec + (int64_t)s->probe_k * s->o.window_s;
			int64_t w1 = w0 + s->o.window_s - 1;
			if (now_sec <= w1)
				return 0;
			s->probe_k++;
			gather(s, w0, w1, &st);
			if (breach(&s->o, &st, 1, s->o.probe_min_samples, 0, why, sizeof why)) {
				char r[160];
				snprintf(r, sizeof r, "probe window %d: %s", s->probe_k, why);
				enter(s, MSG_VH_OPEN, now_ms, t, &st, r);
				return 1;
			}
			if (st.answers < s->o.probe_min_samples)
				continue; /* too little traffic to judge: neither good nor bad */
			if (breach(&s->o, &st, s->o.recover_ratio, s->o.probe_min_samples, 0, why,
			           sizeof why)) {
				s->good = 0; /* within the hysteresis band: not good enough */
				continue;
			}
			if (++s->good >= s->o.probe_windows) {
				snprintf(why, sizeof why,
				         "%d good probe windows; ramping to full traffic over %ds",
				         s->good, s->o.ramp_s);
				enter(s, MSG_VH_HEALTHY, now_ms, t, &st, why);
				return 1;
			}
		}
	default: return 0;
	}
}

int sla_apply(sla_t *s, msg_vh_state_t st, int operator, int64_t now_ms, const char *reason,
              sla_transition_t *t)
{
	if ((unsigned)st >= MSG_VH__COUNT)
		return TOCSIN_ERR_INVAL;
	if (st == s->st)
		return 0;
	if (s->st == MSG_VH_DRAINED && !operator)
		return TOCSIN_ERR_STATE;
	enter(s, st, now_ms, t, NULL, reason);
	return 1;
}

msg_vh_state_t sla_state(const sla_t *s) { return s->st; }

double sla_fraction(const sla_t *s, int64_t now_ms)
{
	switch (s->st) {
	case MSG_VH_HEALTHY:
		if (s->ramp_from_ms != INT64_MIN && s->o.ramp_s > 0) {
			double x = (double)(now_ms - s->ramp_from_ms) / (s->o.ramp_s * 1000.0);
			if (x < 0)
				x = 0;
			if (x < 1)
				return s->o.probe_fraction + (1 - s->o.probe_fraction) * x;
		}
		return 1;
	case MSG_VH_PROBING: return s->o.probe_fraction;
	default: return 0;
	}
}

void sla_stats(sla_t *s, int64_t now_ms, sla_stats_t *out)
{
	int64_t now_sec = sec_of(now_ms);
	int64_t from = now_sec - s->o.window_s + 1;
	if (s->st == MSG_VH_PROBING)
		from = s->probe_sec + (int64_t)s->probe_k * s->o.window_s;
	else if (s->st == MSG_VH_HEALTHY && s->eval_from_sec != INT64_MIN && s->eval_from_sec > from)
		from = s->eval_from_sec;
	gather(s, from, now_sec, out);
}

const char *sla_name(const sla_t *s) { return s->name; }
const sla_opts_t *sla_opts(const sla_t *s) { return &s->o; }

void sla_vhealth(const sla_transition_t *t, const char *vendor, const char *by, int64_t ts_ms,
                 msg_vhealth_t *h)
{
	*h = (msg_vhealth_t){.vendor = vendor,
	                     .state = t->to,
	                     .reason = t->reason,
	                     .by = by,
	                     .p95_ms = t->stats.p95_ms,
	                     .error_rate = t->stats.error_rate,
	                     .ts_ms = ts_ms}; /* every other field (actor) unset */
}

int sla_format(const sla_transition_t *t, const char *vendor, char *out, size_t outlen)
{
	return snprintf(out, outlen,
	                "vendor=%s from=%s to=%s reason=\"%s\" answers=%lld error_rate=%.3f "
	                "timeout_rate=%.3f p50_ms=%.0f p95_ms=%.0f p99_ms=%.0f delivered=%.3f",
	                vendor ? vendor : "?", msg_vh_state_name(t->from), msg_vh_state_name(t->to),
	                t->reason, (long long)t->stats.answers, t->stats.error_rate,
	                t->stats.timeout_rate, t->stats.p50_ms, t->stats.p95_ms, t->stats.p99_ms,
	                t->stats.delivered_ratio);
}
