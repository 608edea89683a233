/* drill_measure.c -- what one blast of `tocsin drill` did: accepted per vendor over time, detect,
 * 99% on the secondary, recovery, lost and sent twice, and the verdict against the limits. */
#include "core/clock.h"
#include "core/drill_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- what the blast did ---- */

/* Every accepted message of r from the tracker: ts_ms and vendor index into vs (appended). */
typedef struct acc {
	int64_t *ts;
	int *v;
	long n, cap;
	long stop_late; /* SC_STOP: stoppers accepted later than 2 s after their STOP */
} acc_t;

static int vendor_ix(json_t *vs, const char *name)
{
	size_t i;
	json_t *v;
	json_array_foreach(vs, i, v) if (!strcmp(json_string_value(v), name)) return (int)i;
	json_array_append_new(vs, json_string(name));
	return (int)json_array_size(vs) - 1;
}

static void fetch_accepted(drill_t *d, run_t *r, acc_t *a, json_t *vs)
{
	char after[128] = "";
	for (int page = 0; page < 10000; page++) {
		char path[512];
		snprintf(path, sizeof path,
		         "/api/campaigns/%s/recipients?state=accepted,sent,delivered&limit=10000%s%s",
		         r->id, after[0] ? "&after=" : "", after);
		json_t *j = drill_trk_get(d, path), *it;
		size_t i;
		json_array_foreach(json_object_get(j, "items"), i, it)
		{
			if (a->n == a->cap) {
				a->cap = a->cap ? a->cap * 2 : 4096;
				a->ts = realloc(a->ts, a->cap * sizeof *a->ts);
				a->v = realloc(a->v, a->cap * sizeof *a->v);
			}
			a->ts[a->n] = json_integer_value(json_object_get(it, "ts_ms"));
			if (r->kind == SC_STOP && r->fault && a->ts[a->n] > r->fault + 2000) {
				const char *to = json_string_value(json_object_get(it, "to")) ?: "";
				for (long k = r->n - DRILL_STOPPERS; k < r->n; k++) {
					char ph[32];
					drill_phone_of(k < 0 ? 0 : k, ph, sizeof ph);
					a->stop_late += !strcmp(ph, to);
				}
			}
			a->v[a->n++] = vendor_ix(vs, json_string_value(json_object_get(it, "vendor"))
			                                 ?: "?");
		}
		const char *nx = json_string_value(json_object_get(j, "next"));
		int more = nx && json_array_size(json_object_get(j, "items")) > 0;
		if (more)
			snprintf(after, sizeof after, "%s", nx);
		json_decref(j);
		if (!more)
			break;
	}
}

/* The first time in the timeline at or after from_ms that vendor went healthy -> open. */
static int64_t opened_at(drill_t *d, const char *vendor, int64_t from_ms)
{
	json_t *j = drill_trk_get(d, "/api/timeline?limit=500"), *e;
	size_t i;
	int64_t best = 0;
	json_array_foreach(json_object_get(j, "events"), i, e)
	{
		int64_t ts = json_integer_value(json_object_get(e, "ts_ms"));
		if (ts >= from_ms - 50 &&
		    !strcmp(json_string_value(json_object_get(e, "kind")) ?: "", "vendor") &&
		    !strcmp(json_string_value(json_object_get(e, "subject")) ?: "", vendor) &&
		    strstr(json_string_value(json_object_get(e, "detail")) ?: "", "-> open") &&
		    (!best || ts < best))
			best = ts;
	}
	json_decref(j);
	return best;
}

/* The sum of field (e.g. "timeouts") of vendor over r's whole blast, from the tracker's series. */
static long series_total(drill_t *d, run_t *r, const char *vendor, const char *field)
{
	char path[256];
	snprintf(path, sizeof path, "/api/series?seconds=3600&campaign=%s", r->id);
	json_t *j = drill_trk_get(d, path), *c;
	size_t i;
	double n = 0;
	json_array_foreach(json_object_get(json_object_get(json_object_get(j, "vendors"), vendor), field),
	                   i, c) n += json_number_value(c);
	json_decref(j);
	return (long)n;
}

/* Requests that reached each vendor from the emulator's 50 ms ticks, in DRILL_BUCKET_MS buckets
 * from the fault up to end: on every vendor into tot, on the primary into prim (nb buckets). */
static void buckets_from_ticks(drill_t *d, run_t *r, const json_t *ticks, long nb, double *prim,
                               double *tot)
{
	int64_t tick = drill_jl(ticks, "tick_ms");
	const char *k;
	json_t *v, *t;
	size_t i;
	json_object_foreach(json_object_get(ticks, "vendors"), k, v) json_array_foreach(v, i, t)
	{
		int64_t ms = json_integer_value(json_array_get(t, 0)) * tick;
		double req = (double)json_integer_value(json_array_get(t, 1));
		long b = ms >= r->fault ? (long)((ms - r->fault) / DRILL_BUCKET_MS) : -1;
		if (tick > 0 && b >= 0 && b < nb) {
			tot[b] += req;
			prim[b] += strcmp(k, d->primary) ? 0 : req;
		}
	}
}

/* ms from the fault until the start of the first DRILL_BUCKET_MS bucket from which every bucket
 * with traffic, while the primary is kept out (until it may be probed: opened + sla.min_open_s,
 * or the fault is cleared), had at most 1% of the requests on the primary, as the emulator saw
 * them arrive (GET /_sim/ticks, 50 ms); -1: never. bench_failover_e2e.sh's measure. */
static int64_t switched_at(drill_t *d, run_t *r, int64_t opened, const json_t *ticks)
{
	int64_t end = r->clear;
	if (opened && opened + (int64_t)(d->sla.min_open_s * 1000) < end)
		end = opened + (int64_t)(d->sla.min_open_s * 1000);
	long nb = (long)((end - r->fault) / DRILL_BUCKET_MS);
	if (nb <= 0)
		return -1;
	double *prim = calloc((size_t)nb, sizeof *prim), *tot = calloc((size_t)nb, sizeof *tot);
	int64_t sw = -1;
	if (prim && tot) {
		buckets_from_ticks(d, r, ticks, nb, prim, tot);
		for (long b = nb - 1; b >= 0 && !(tot[b] > 0 && prim[b] * 100 > tot[b]); b--)
			sw = (int64_t)b * DRILL_BUCKET_MS;
	}
	free(prim);
	free(tot);
	return sw;
}

/* The auth scenario's detection: ms from the fault to the end of the last 50 ms tick before the
 * clearing in which a request still reached the primary (the dispatcher stops using a vendor
 * at its first refusal of our credentials); 0 when none did. */
static int64_t last_primary_request(drill_t *d, run_t *r, const json_t *ticks)
{
	int64_t tick = drill_jl(ticks, "tick_ms"), last = r->fault;
	json_t *t;
	size_t i;
	json_array_foreach(json_object_get(json_object_get(ticks, "vendors"), d->primary), i, t)
	{
		int64_t end = (json_integer_value(json_array_get(t, 0)) + 1) * tick;
		if (json_integer_value(json_array_get(t, 1)) > 0 && end > last && end - tick < r->clear)
			last = end;
	}
	return last - r->fault;
}

static int cmp_i64(const void *x, const void *y)
{
	int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
	return a < b ? -1 : a > b;
}

static json_t *ms_or_null(int64_t ms) { return ms >= 0 ? json_integer(ms) : json_null(); }
static json_t *rate_or_null(double r)
{
	return r >= 0 ? json_real(round(r * 10) / 10) : json_null();
}

/* What one blast did: the counts, the series and the times of drill_measure's result. */
typedef struct meas {
	long ok, cancelled, finals, suppressed; /* the tracker's states */
	long s_acc, s_uniq, s_dup;              /* the emulator's counts */
	long lost, twice, bound, after_cancel;
	int64_t tmax;  /* the last acceptance */
	long *cnt, nb; /* accepted per bucket (nb) per vendor (nv) from t0 */
	size_t nv;
	int pix; /* the primary's vendor index, or -1 */
	double rate;
	int64_t detect, sw, recover, lim_detect, lim_switch; /* -1: none */
	double before, during; /* vendor faults: accepted/s on the route before the fault and from
	                        * the switch to the clearing (-1: not measured) */
	double least;          /* during must be at least this: the route kept carrying the blast */
} meas_t;

/* lost and sent twice from the tracker's states and the emulator's counters */
static void count_outcomes(drill_t *d, run_t *r, meas_t *m)
{
	char path[256];
	snprintf(path, sizeof path, "/api/campaigns/%s", r->id);
	json_t *c = drill_trk_get(d, path);
	json_t *states = json_object_get(c, "states");
	m->ok = drill_jl(states, "accepted") + drill_jl(states, "sent") + drill_jl(states, "delivered");
	m->cancelled = drill_jl(states, "cancelled");
	m->finals = drill_finals_of(c);
	m->suppressed = drill_jl(states, "suppressed");
	json_t *sim = drill_sim_get(d, "/_sim/stats");
	const char *k;
	json_t *v;
	json_object_foreach(json_object_get(sim, "vendors"), k, v)
	{
		m->s_acc += drill_jl(v, "accepted");
		m->s_uniq += drill_jl(v, "unique_ids");
		m->s_dup += drill_jl(v, "duplicate_count");
	}
	json_decref(sim);
	/* not sent rightly: the stoppers in their scenario (suppressed), and in a later one those
	 * of them its audience holds again (the producer skips them at launch, so the tracker
	 * never counts them, or the dispatcher suppresses them) */
	long opted = drill_opted(d, r->n);
	long unknown = r->n - drill_jl(c, "total"), gone = (unknown > 0 ? unknown : 0) + m->suppressed;
	long right = r->kind == SC_STOP ? m->suppressed : gone < opted ? gone : opted;
	/* lost: not final, final but not sent (failed, expired...; cancelled only when cancelling),
	 * or counted accepted by the tracker but never received by the vendor */
	m->lost = (r->n - m->finals) +
	          (m->finals - m->ok - (r->kind == SC_CANCEL ? m->cancelled : 0) - right) +
	          (m->ok > m->s_uniq ? m->ok - m->s_uniq : 0);
	m->twice = m->s_dup + (m->s_uniq > m->ok ? m->s_uniq - m->ok : 0);
	json_decref(c);
	/* sent twice: only what was in flight at a kill, or a request to a slow vendor that got no
	 * answer in timeout_ms (the vendor may have taken it) and was sent again elsewhere -- the
	 * dispatcher holds such a request as "ambiguous", which the series counts among the
	 * errors, not the timeouts; the slow emulator answers no request with an error */
	m->bound = r->kind == SC_KILL   ? d->user->max_in_flight
	           : r->kind == SC_SLOW ? series_total(d, r, d->primary, "timeouts") +
	                                      series_total(d, r, d->primary, "errors")
	                                : 0;
}

/* the acceptances a into m->cnt (per bucket per vendor from t0); the report's series */
static json_t *bucket_accepted(drill_t *d, run_t *r, const acc_t *a, json_t *vs, meas_t *m)
{
	m->tmax = r->t0;
	for (long i = 0; i < a->n; i++)
		if (a->ts[i] > m->tmax)
			m->tmax = a->ts[i];
	m->nb = (long)((m->tmax - r->t0) / DRILL_BUCKET_MS) + 1;
	if (m->nb > 20000)
		m->nb = 20000;
	m->nv = json_array_size(vs);
	m->cnt = calloc((size_t)m->nb * (m->nv ? m->nv : 1), sizeof *m->cnt);
	for (long i = 0; m->cnt && i < a->n; i++) {
		long b = (long)((a->ts[i] - r->t0) / DRILL_BUCKET_MS);
		if (b >= 0 && b < m->nb)
			m->cnt[b * (long)m->nv + a->v[i]]++;
	}
	m->pix = -1;
	json_t *series = json_object();
	for (size_t i = 0; i < m->nv; i++) {
		if (!strcmp(json_string_value(json_array_get(vs, i)), d->primary))
			m->pix = (int)i;
		json_t *arr = json_array();
		for (long b = 0; m->cnt && b < m->nb; b++)
			json_array_append_new(arr, json_integer(m->cnt[b * (long)m->nv + i]));
		json_object_set_new(series, json_string_value(json_array_get(vs, i)), arr);
	}
	return series;
}

/* sustained rate: the middle 80% of acceptances over the time they took */
static double sustained_rate(const acc_t *a)
{
	double rate = 0;
	int64_t *ts = a->n >= 10 ? malloc((size_t)a->n * sizeof *ts) : NULL;
	if (ts) {
		memcpy(ts, a->ts, (size_t)a->n * sizeof *ts);
		qsort(ts, (size_t)a->n, sizeof *ts, cmp_i64);
		int64_t t10 = ts[a->n / 10], t90 = ts[a->n * 9 / 10];
		if (t90 > t10)
			rate = (double)(a->n * 8 / 10) * 1000.0 / (double)(t90 - t10);
		free(ts);
	}
	return rate;
}

/* accepted in bucket b on the primary (vendor faults) or on every vendor (after a kill) */
static double watched(const run_t *r, const meas_t *m, long b)
{
	double s = 0;
	for (size_t i = 0; i < m->nv; i++)
		if (r->kind == SC_KILL || (int)i == m->pix)
			s += (double)m->cnt[b * (long)m->nv + i];
	return s;
}

/* recover: from the clearing, the first second whose traffic is back to 90% of the pre-fault
 * level (on the primary for vendor faults; all traffic after a kill); -1: not in the blast */
static int64_t recovered_after(const run_t *r, const meas_t *m)
{
	long fb = r->fault ? (long)((r->fault - r->t0) / DRILL_BUCKET_MS) : -1;
	long cb = r->clear ? (long)((r->clear - r->t0) / DRILL_BUCKET_MS) : m->nb;
	long per_s = 1000 / DRILL_BUCKET_MS;
	if (fb <= 4 || !m->cnt || r->kind == SC_CANCEL || r->kind == SC_STOP)
		return -1;
	double pre = 0;
	long pb0 = fb - 4 * per_s > 0 ? fb - 4 * per_s : 0;
	for (long b = pb0; b < fb; b++)
		pre += watched(r, m, b);
	pre /= (double)(fb - pb0);
	for (long b = cb; b + per_s <= m->nb && pre > 0; b++) {
		double s = 0;
		for (long x = b; x < b + per_s; x++)
			s += watched(r, m, x);
		if (s / per_s >= 0.9 * pre)
			return (b - cb) * DRILL_BUCKET_MS;
	}
	return -1;
}

/* accepted per second on every vendor over buckets [b0, b1) */
static double route_rate(const meas_t *m, long b0, long b1)
{
	double s = 0;
	if (b0 < 0)
		b0 = 0;
	if (b1 > m->nb)
		b1 = m->nb;
	for (long b = b0; b < b1; b++)
		for (size_t i = 0; i < m->nv; i++)
			s += (double)m->cnt[b * (long)m->nv + i];
	return b1 > b0 ? s * 1000.0 / (double)((b1 - b0) * DRILL_BUCKET_MS) : -1;
}

/* After the switch the secondary carries the blast: the route's rate from the switch to the
 * clearing against the 4 s before the fault (a vendor out of the route may stop traffic that
 * the tracker still shows healthy: the dispatcher holding messages for it). */
static void kept_carrying(drill_t *d, run_t *r, meas_t *m)
{
	m->before = m->during = m->least = -1;
	if (!m->cnt || !r->fault || !r->clear || m->sw < 0)
		return;
	long fb = (long)((r->fault - r->t0) / DRILL_BUCKET_MS);
	long sb = (long)((r->fault + m->sw - r->t0) / DRILL_BUCKET_MS) + 1;
	long cb = (long)((r->clear - r->t0) / DRILL_BUCKET_MS);
	if (cb - sb < 1000 / DRILL_BUCKET_MS)
		return; /* under a second to judge */
	m->before = route_rate(m, fb - 4000 / DRILL_BUCKET_MS, fb);
	m->during = route_rate(m, sb, cb);
	double can = d->secondary_rate > 0 && d->secondary_rate < m->before ? d->secondary_rate
	                                                                    : m->before;
	m->least = 0.25 * can;
}

/* detect and 99% on the secondary, and their limits (from the primary's SLA) */
static void failover_times(drill_t *d, run_t *r, meas_t *m)
{
	m->detect = m->sw = m->lim_detect = m->lim_switch = -1;
	int vendor_fault = r->kind == SC_503 || r->kind == SC_SLOW || r->kind == SC_HANG ||
	                   r->kind == SC_AUTH;
	if (r->fault && vendor_fault) {
		json_t *ticks = drill_sim_get(d, "/_sim/ticks");
		int64_t op = r->kind == SC_AUTH ? 0 : opened_at(d, d->primary, r->fault);
		m->detect = r->kind == SC_AUTH ? last_primary_request(d, r, ticks)
		            : op               ? op - r->fault
		                               : -1;
		m->sw = switched_at(d, r, op, ticks);
		json_decref(ticks);
	}
	if (r->kind == SC_503 || r->kind == SC_HANG)
		m->lim_detect = (int64_t)(d->sla.window_s * 1000 + 1000);
	else if (r->kind == SC_SLOW)
		m->lim_detect = (int64_t)(2 * d->sla.window_s * 1000 + 2 * d->sla.p95_ms + 1000);
	else if (r->kind == SC_AUTH) /* the first refusal takes the vendor out: no SLA window */
		m->lim_detect = 1000;
	if (m->lim_detect >= 0)
		m->lim_switch = m->lim_detect + 1000;
}

static void fail(json_t *fails, const char *fmt, long long n, long long n2)
{
	char msg[256];
	snprintf(msg, sizeof msg, fmt, n, n2);
	json_array_append_new(fails, json_string(msg));
}

/* every promise m broke, one line each */
static json_t *verdict(const run_t *r, const meas_t *m, long stop_late)
{
	json_t *fails = json_array();
	if (m->lost)
		fail(fails, m->lost == 1 ? "%lld message lost" : "%lld messages lost", m->lost, 0);
	if (m->twice > m->bound)
		fail(fails, "%lld sent twice (bound %lld)", m->twice, m->bound);
	if (r->kind != SC_CAPACITY && !r->fault)
		fail(fails,
		     "the fault never started (blast too short or the primary never healthy)", 0, 0);
	if (m->lim_detect >= 0 && r->fault && (m->detect < 0 || m->detect > m->lim_detect))
		fail(fails, "failover not detected within %lld ms", m->lim_detect, 0);
	if (m->lim_switch >= 0 && r->fault && (m->sw < 0 || m->sw > m->lim_switch))
		fail(fails, "99%% not on the secondary within %lld ms", m->lim_switch, 0);
	if (m->least > 0 && m->during < m->least)
		fail(fails,
		     "the blast stalled: %lld/s on the route from the switch to the clearing, %lld/s before",
		     llround(m->during), llround(m->before));
	if (stop_late)
		fail(fails, "%lld sent more than 2 s after they replied STOP", stop_late, 0);
	if (r->kind == SC_STOP && m->suppressed > DRILL_STOPPERS)
		fail(fails, "%lld suppressed, only %lld replied STOP", m->suppressed, DRILL_STOPPERS);
	if (m->after_cancel)
		fail(fails, "%lld sent more than 2 s after the cancel", m->after_cancel, 0);
	return fails;
}

json_t *drill_measure(drill_t *d, run_t *r)
{
	json_t *vs = json_array();
	acc_t a = {0};
	meas_t m = {0};
	fetch_accepted(d, r, &a, vs);
	count_outcomes(d, r, &m);
	json_t *series = bucket_accepted(d, r, &a, vs, &m);
	m.rate = sustained_rate(&a);
	failover_times(d, r, &m);
	m.recover = recovered_after(r, &m);
	kept_carrying(d, r, &m);
	if (r->kind == SC_CANCEL && r->fault)
		for (long i = 0; i < a.n; i++)
			m.after_cancel += a.ts[i] > r->fault + 2000;
	json_t *fails = verdict(r, &m, a.stop_late);
	json_t *res = json_pack(
	    "{s:s,s:s,s:s,s:I,s:s,s:I,s:I,s:f,s:o,s:o,s:o,s:I,s:I,s:I,s:I,s:I,s:{s:I,s:I,s:I},"
	    "s:{s:o,s:o},s:{s:i,s:o},s:b,s:o}",
	    "name", drill_sc[r->kind].name, "title", drill_sc[r->kind].title, "campaign", r->id,
	    "messages", (json_int_t)r->n, "primary", d->primary, "elapsed_ms",
	    (json_int_t)((m.tmax > r->t0 ? m.tmax : clock_wall_ms()) - r->t0), "accepted",
	    (json_int_t)m.ok, "rate_per_s", round(m.rate * 10) / 10, "detect_ms", ms_or_null(m.detect),
	    "switch_ms", ms_or_null(m.sw), "recover_ms", ms_or_null(m.recover), "lost",
	    (json_int_t)m.lost, "twice", (json_int_t)m.twice, "twice_bound", (json_int_t)m.bound,
	    "cancelled", (json_int_t)m.cancelled, "after_cancel", (json_int_t)m.after_cancel,
	    "emulator", "accepted", (json_int_t)m.s_acc, "unique", (json_int_t)m.s_uniq,
	    "duplicates", (json_int_t)m.s_dup, "limits", "detect_ms", ms_or_null(m.lim_detect),
	    "switch_ms", ms_or_null(m.lim_switch), "series", "bucket_ms", DRILL_BUCKET_MS,
	    "vendors", series, "pass", json_array_size(fails) == 0, "failures", fails);
	json_object_set_new(res, "suppressed", json_integer(m.suppressed));
	json_object_set_new(res, "route_per_s",
	                    json_pack("{s:o,s:o,s:o}", "before", rate_or_null(m.before), "during",
	                              rate_or_null(m.during), "least", rate_or_null(m.least)));
	json_object_set_new(res, "stop_late", json_integer(a.stop_late));
	json_object_set_new(res, "fault_ms", r->fault ? json_integer(r->fault - r->t0) : json_null());
	json_object_set_new(res, "clear_ms", r->clear ? json_integer(r->clear - r->t0) : json_null());
	free(m.cnt);
	free(a.ts);
	free(a.v);
	json_decref(vs);
	return res;
}

/* ms from a to b, or null when either did not happen */
static json_t *span(int64_t a, int64_t b)
{
	return a && b && b >= a ? json_integer(b - a) : json_null();
}

void drill_phases(const run_t *r, int64_t measured_ms, json_t *m)
{
	int64_t from = r->clear ? r->clear : r->first ? r->first : r->t0;
	json_object_set_new(m, "wall_ms", json_integer(measured_ms - r->begin));
	json_object_set_new(m, "phases_ms",
	                    json_pack("{s:o,s:o,s:o,s:o,s:o,s:o}", "prepare", span(r->begin, r->t0),
	                              "first", span(r->t0, r->first), "steady",
	                              span(r->first, r->fault), "fault", span(r->fault, r->clear), "tail",
	                              span(from, r->done), "measure", span(r->done, measured_ms)));
}
