/* api.c -- the tracker's read queries: campaigns, vendors, series, timeline, recipients, metrics. */
#include "tracker/api.h"
#include "core/num.h"
#include "vendors/vnd.h"
#include "core/clock.h"
#include "core/err.h"

#include <stdint.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CAMPS 500
/* /metrics: a campaign's tocsin_messages series are exported while it has
 * messages in progress or had activity (a status record, a campaign record)
 * within this many seconds (tracker/README.md "Metrics") */
#define TRK_METRICS_CAMPAIGN_TTL_S 3600

static int dberr(trk_api_q_t *q)
{
	(void)q;
	return TOCSIN_ERR_IO;
}

static int prep(trk_api_q_t *q, const char *sql, sqlite3_stmt **st)
{
	if (sqlite3_prepare_v2(trk_store_db(q->rd), sql, -1, st, NULL) != SQLITE_OK) {
		sqlite3_finalize(*st);
		*st = NULL;
		return dberr(q);
	}
	return 0;
}

static const char *col(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	return t ? (const char *)t : "";
}

static void jstr(buf_t *b, const char *s) { buf_json_str(b, s, strlen(s)); }

static void jstr_or_null(buf_t *b, sqlite3_stmt *st, int i)
{
	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		buf_puts(b, "null");
	else
		jstr(b, col(st, i));
}

static void states_obj(buf_t *b, const int64_t *s)
{
	buf_putc(b, '{');
	int first = 1;
	for (int i = 0; i < MSG_ST__COUNT; i++) {
		if (!s[i])
			continue;
		buf_printf(b, "%s\"%s\":%lld", first ? "" : ",", msg_state_name((msg_state_t)i),
		           (long long)s[i]);
		first = 0;
	}
	buf_putc(b, '}');
}

/* ---- campaigns ---- */

typedef struct camp {
	char id[256];
	char name[256];
	int state; /* msg_camp_state_t or -1 */
	int64_t queued, ts_ms, optouts, total;
	int64_t send_at_ms; /* 0 = no send_at */
	int qh_urgent;      /* launched with "quiet_hours": {"override": "urgent"} */
	int64_t states[MSG_ST__COUNT];
	int64_t ch[MSG_CH__COUNT][MSG_ST__COUNT];
	int64_t recent_sends; /* accepted by vendors over the last RATE_WINDOW_S seconds */
} camp_t;

#define RATE_WINDOW_S 20 /* a campaign's rate and ETA: accepted per second over this */
#define NO_CAMPAIGN(id) (!*(id) || !strcmp((id), "vendor-send"))

static camp_t *camp_find(camp_t *cs, size_t *n, const char *id, int add)
{
	for (size_t i = 0; i < *n; i++)
		if (!strcmp(cs[i].id, id))
			return &cs[i];
	if (!add || *n >= MAX_CAMPS)
		return NULL;
	camp_t *c = &cs[(*n)++];
	memset(c, 0, sizeof *c);
	snprintf(c->id, sizeof c->id, "%s", id);
	c->state = -1;
	c->queued = -1;
	return c;
}

/* Load every campaign (or only `only`) with its state counts. */
static int load_camps(trk_api_q_t *q, const char *only, camp_t *cs, size_t *n)
{
	sqlite3_stmt *st;
	*n = 0;
#define CAMP_COLS "SELECT id, name, state, queued, ts_ms, send_at_ms, qh_urgent FROM campaigns"
	int bad = prep(q, only ? CAMP_COLS " WHERE id=?1" : CAMP_COLS " ORDER BY ts_ms DESC", &st);
#undef CAMP_COLS
	if (bad)
		return TOCSIN_ERR_IO;
	if (only)
		sqlite3_bind_text(st, 1, only, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW) {
		camp_t *c = camp_find(cs, n, col(st, 0), 1);
		if (!c)
			break;
		snprintf(c->name, sizeof c->name, "%s", col(st, 1));
		c->state = sqlite3_column_int(st, 2);
		c->queued = sqlite3_column_type(st, 3) == SQLITE_NULL ? -1
		                                                      : sqlite3_column_int64(st, 3);
		c->ts_ms = sqlite3_column_int64(st, 4);
		c->send_at_ms = sqlite3_column_int64(st, 5);
		c->qh_urgent = sqlite3_column_int(st, 6) != 0;
	}
	sqlite3_finalize(st);
	if (prep(q,
	         only ? "SELECT campaign, state, SUM(n), channel FROM counts WHERE campaign=?1"
	                " GROUP BY 1, 2, 4"
	              : "SELECT campaign, state, SUM(n), channel FROM counts GROUP BY 1, 2, 4",
	         &st))
		return TOCSIN_ERR_IO;
	if (only)
		sqlite3_bind_text(st, 1, only, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW) {
		int64_t v = sqlite3_column_int64(st, 2);
		int s = sqlite3_column_int(st, 1), ch = sqlite3_column_int(st, 3);
		if (!v || (unsigned)s >= MSG_ST__COUNT)
			continue;
		camp_t *c = camp_find(cs, n, col(st, 0), 1);
		if (!c)
			break;
		c->states[s] += v;
		c->total += v;
		if ((unsigned)ch < MSG_CH__COUNT)
			c->ch[ch][s] += v;
	}
	sqlite3_finalize(st);
	if (prep(q,
	         only ? "SELECT campaign, SUM(sends) FROM series WHERE sec>=?1 AND campaign=?2"
	                " GROUP BY 1"
	              : "SELECT campaign, SUM(sends) FROM series WHERE sec>=?1 GROUP BY 1",
	         &st))
		return TOCSIN_ERR_IO;
	sqlite3_bind_int64(st, 1, clock_wall_ms() / 1000 - RATE_WINDOW_S);
	if (only)
		sqlite3_bind_text(st, 2, only, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW) {
		camp_t *c = camp_find(cs, n, col(st, 0), 0);
		if (c)
			c->recent_sends = sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	if (prep(q,
	         "SELECT campaign, COUNT(*) FROM optouts WHERE optin=0 AND campaign IS NOT NULL"
	         " GROUP BY 1",
	         &st))
		return TOCSIN_ERR_IO;
	while (sqlite3_step(st) == SQLITE_ROW) {
		camp_t *c = camp_find(cs, n, col(st, 0), 0);
		if (c)
			c->optouts = sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	return 0;
}

/* The columns a staffer reads, from one set of state counts (README "Campaign
 * columns"); they add up: audience = delivered + awaiting_receipt +
 * unknown_receipt + failed + in_progress + cancelled + expired + suppressed. */
typedef struct summary {
	int64_t audience, sent, delivered, awaiting, unknown, failed, in_progress, retrying,
	    cancelled, expired, suppressed;
} summary_t;

static void summarize(const int64_t *s, int64_t audience, summary_t *o)
{
	int64_t total = 0;
	for (int i = 0; i < MSG_ST__COUNT; i++)
		total += s[i];
	o->audience = audience > total ? audience : total;
	o->delivered = s[MSG_ST_DELIVERED];
	o->awaiting = s[MSG_ST_ACCEPTED] + s[MSG_ST_SENT];
	o->unknown = s[MSG_ST_UNKNOWN_RECEIPT];
	o->failed = s[MSG_ST_FAILED] + s[MSG_ST_UNDELIVERED] + s[MSG_ST_BOUNCED];
	o->sent = o->delivered + o->awaiting + o->unknown + s[MSG_ST_UNDELIVERED] + s[MSG_ST_BOUNCED];
	o->retrying = s[MSG_ST_RETRYING];
	o->in_progress = s[MSG_ST_QUEUED] + s[MSG_ST_RETRYING] + (o->audience - total);
	o->cancelled = s[MSG_ST_CANCELLED];
	o->expired = s[MSG_ST_EXPIRED];
	o->suppressed = s[MSG_ST_SUPPRESSED];
}

static void summary_json(buf_t *b, const summary_t *o)
{
	buf_printf(b,
	           "{\"audience\":%lld,\"sent\":%lld,\"delivered\":%lld,\"awaiting_receipt\":%lld,"
	           "\"unknown_receipt\":%lld,\"failed\":%lld,\"in_progress\":%lld,\"retrying\":%lld,"
	           "\"cancelled\":%lld,\"expired\":%lld,\"suppressed\":%lld}",
	           (long long)o->audience, (long long)o->sent, (long long)o->delivered,
	           (long long)o->awaiting, (long long)o->unknown, (long long)o->failed,
	           (long long)o->in_progress, (long long)o->retrying, (long long)o->cancelled,
	           (long long)o->expired, (long long)o->suppressed);
}

/* The state shown: the record's, except that a running campaign with nothing
 * left in progress is done. */
static const char *camp_state(const camp_t *c, const summary_t *sm)
{
	if (c->state < 0)
		return "unknown";
	if (c->state == MSG_CAMP_RUNNING && c->queued >= 0 && sm->in_progress == 0)
		return msg_camp_state_name(MSG_CAMP_DONE);
	return msg_camp_state_name((msg_camp_state_t)c->state);
}

static void camp_json(buf_t *b, const camp_t *c)
{
	summary_t sm;
	summarize(c->states, c->queued, &sm);
	buf_puts(b, "{\"id\":");
	jstr(b, c->id);
	buf_puts(b, ",\"name\":");
	jstr(b, c->name[0] ? c->name : c->id);
	buf_printf(b, ",\"state\":\"%s\",\"queued\":%lld,\"total\":%lld,\"states\":",
	           camp_state(c, &sm), (long long)c->queued, (long long)c->total);
	states_obj(b, c->states);
	int64_t pending = c->states[MSG_ST_QUEUED] + c->states[MSG_ST_RETRYING];
	int64_t denom = c->queued > c->total ? c->queued : c->total;
	double progress = denom > 0 ? (double)(c->total - pending) / (double)denom : 0;
	buf_printf(b, ",\"optouts\":%lld,\"progress\":%.4f,\"updated_ms\":%lld,\"send_at_ms\":%lld",
	           (long long)c->optouts, progress, (long long)c->ts_ms, (long long)c->send_at_ms);
	buf_printf(b, ",\"quiet_hours_override\":%s,\"summary\":", c->qh_urgent ? "\"urgent\"" : "null");
	summary_json(b, &sm);
	buf_puts(b, ",\"channels\":{");
	int first = 1;
	for (int ch = 0; ch < MSG_CH__COUNT; ch++) {
		int64_t t = 0;
		for (int i = 0; i < MSG_ST__COUNT; i++)
			t += c->ch[ch][i];
		if (!t)
			continue;
		summary_t cs;
		summarize(c->ch[ch], 0, &cs); /* the launch's count is for all channels together */
		buf_printf(b, "%s\"%s\":", first ? "" : ",", msg_channel_name((msg_channel_t)ch));
		summary_json(b, &cs);
		first = 0;
	}
	double rate = (double)c->recent_sends / RATE_WINDOW_S;
	buf_printf(b, "},\"rate_per_s\":%.1f,\"eta_s\":", rate);
	if (sm.in_progress > 0 && rate >= 0.1 && c->state == MSG_CAMP_RUNNING)
		buf_printf(b, "%.0f}", (double)sm.in_progress / rate);
	else
		buf_puts(b, "null}");
}

int trk_api_campaigns(trk_api_q_t *q, buf_t *b)
{
	camp_t *cs = calloc(MAX_CAMPS, sizeof *cs);
	size_t n = 0;
	if (!cs)
		return TOCSIN_ERR_NOMEM;
	int rc = load_camps(q, NULL, cs, &n);
	if (!rc) {
		/* Test sends (tocsin vendor-send) and receipts that match no
		 * campaign are counted apart, never as a campaign. */
		int64_t other[MSG_ST__COUNT] = {0}, ototal = 0;
		buf_puts(b, "{\"campaigns\":[");
		int first = 1;
		for (size_t i = 0; i < n; i++) {
			if (NO_CAMPAIGN(cs[i].id)) {
				for (int k = 0; k < MSG_ST__COUNT; k++)
					other[k] += cs[i].states[k];
				ototal += cs[i].total;
				continue;
			}
			if (!first)
				buf_putc(b, ',');
			first = 0;
			camp_json(b, &cs[i]);
		}
		buf_printf(b, "],\"unattributed\":{\"total\":%lld,\"states\":", (long long)ototal);
		states_obj(b, other);
		rc = buf_puts(b, "}}\n");
	}
	free(cs);
	return rc;
}

/* Failures and opt-outs grouped by plain-language reason, largest first:
 * [{"reason","n","permanent","codes":"c1,c2"}] ("codes" is what the
 * recipients list takes as code=). */
#define MAX_REASONS 64
static void reasons_json(trk_api_q_t *q, const char *id, buf_t *b)
{
	struct {
		char text[64];
		char codes[200];
		int64_t n;
		int permanent;
	} rs[MAX_REASONS];
	char tmp[64];
	size_t nr = 0;
	sqlite3_stmt *st;
	if (!prep(q,
	          "SELECT code, SUM(n) FROM codes WHERE campaign=?1 GROUP BY 1 HAVING SUM(n)>0"
	          " ORDER BY 2 DESC LIMIT 200",
	          &st)) {
		sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
		while (sqlite3_step(st) == SQLITE_ROW) {
			int perm;
			const char *code = col(st, 0);
			const char *t = trk_code_reason(code, &perm, tmp, sizeof tmp);
			size_t k = 0;
			while (k < nr && strcmp(rs[k].text, t))
				k++;
			if (k == nr) {
				if (nr == MAX_REASONS)
					continue;
				snprintf(rs[nr].text, sizeof rs[nr].text, "%s", t);
				rs[nr].codes[0] = 0;
				rs[nr].n = 0;
				rs[nr].permanent = perm;
				nr++;
			}
			size_t l = strlen(rs[k].codes);
			if (l + strlen(code) + 2 < sizeof rs[k].codes)
				snprintf(rs[k].codes + l, sizeof rs[k].codes - l, "%s%s",
				         l ? "," : "", code);
			rs[k].n += sqlite3_column_int64(st, 1);
		}
		sqlite3_finalize(st);
	}
	for (size_t i = 1; i < nr; i++) /* by count, largest first (few entries) */
		for (size_t j = i; j > 0 && rs[j].n > rs[j - 1].n; j--) {
			__typeof__(rs[0]) t = rs[j];
			rs[j] = rs[j - 1];
			rs[j - 1] = t;
		}
	buf_putc(b, '[');
	for (size_t i = 0; i < nr; i++) {
		buf_puts(b, i ? ",{\"reason\":" : "{\"reason\":");
		jstr(b, rs[i].text);
		buf_printf(b, ",\"n\":%lld,\"permanent\":%s,\"codes\":", (long long)rs[i].n,
		           rs[i].permanent ? "true" : "false");
		jstr(b, rs[i].codes);
		buf_putc(b, '}');
	}
	buf_putc(b, ']');
}

int trk_api_campaign(trk_api_q_t *q, const char *id, buf_t *b)
{
	camp_t *cs = calloc(1, sizeof *cs);
	size_t n = 0;
	if (!cs)
		return TOCSIN_ERR_NOMEM;
	int rc = load_camps(q, id, cs, &n);
	camp_t *c = n ? camp_find(cs, &n, id, 0) : NULL;
	if (!rc && !c)
		rc = TOCSIN_ERR_NOTFOUND;
	if (!rc) {
		camp_json(b, c);
		b->len--; /* reopen the object */
		buf_puts(b, ",\"vendors\":{");
		sqlite3_stmt *st;
		if (prep(q,
		         "SELECT vendor, state, SUM(n) FROM counts WHERE campaign=?1 AND vendor<>''"
		         " GROUP BY 1, 2 ORDER BY 1, 2",
		         &st) == 0) {
			sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
			char cur[128] = "";
			int first = 1;
			while (sqlite3_step(st) == SQLITE_ROW) {
				if (!sqlite3_column_int64(st, 2))
					continue;
				if (strcmp(cur, col(st, 0))) {
					if (cur[0])
						buf_putc(b, '}');
					buf_puts(b, first ? "" : ",");
					first = 0;
					snprintf(cur, sizeof cur, "%s", col(st, 0));
					jstr(b, cur);
					buf_puts(b, ":{");
				} else {
					buf_putc(b, ',');
				}
				buf_printf(b, "\"%s\":%lld",
				           msg_state_name((msg_state_t)sqlite3_column_int(st, 1)),
				           (long long)sqlite3_column_int64(st, 2));
			}
			if (cur[0])
				buf_putc(b, '}');
			sqlite3_finalize(st);
		}
		buf_puts(b, "},\"codes\":[");
		if (prep(q,
		         "SELECT vendor, code, SUM(n) FROM codes WHERE campaign=?1 GROUP BY 1, 2"
		         " ORDER BY 3 DESC LIMIT 100",
		         &st) == 0) {
			sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
			int first = 1;
			while (sqlite3_step(st) == SQLITE_ROW) {
				buf_puts(b, first ? "{\"vendor\":" : ",{\"vendor\":");
				first = 0;
				jstr(b, col(st, 0));
				buf_puts(b, ",\"code\":");
				jstr(b, col(st, 1));
				buf_printf(b, ",\"n\":%lld}", (long long)sqlite3_column_int64(st, 2));
			}
			sqlite3_finalize(st);
		}
		buf_puts(b, "],\"reasons\":");
		reasons_json(q, id, b);
		rc = buf_puts(b, "}\n");
	}
	free(cs);
	return rc;
}

/* ---- latency ---- */

static void lat_blob(sqlite3_stmt *st, int i, int64_t *acc)
{
	const void *p = sqlite3_column_blob(st, i);
	int n = sqlite3_column_bytes(st, i);
	if (!p || n != (int)(sizeof(int64_t) * TRK_LAT_BUCKETS))
		return;
	int64_t v[TRK_LAT_BUCKETS];
	memcpy(v, p, sizeof v);
	for (int k = 0; k < TRK_LAT_BUCKETS; k++)
		acc[k] += v[k];
}

/* The p-quantile (0..1) of histogram h, interpolated within its bucket; -1 if empty. */
static double lat_quantile(const int64_t *h, double p)
{
	int64_t n = 0;
	for (int k = 0; k < TRK_LAT_BUCKETS; k++)
		n += h[k];
	if (!n)
		return -1;
	double want = p * (double)n, cum = 0;
	for (int k = 0; k < TRK_LAT_BUCKETS; k++) {
		if (cum + (double)h[k] >= want && h[k] > 0) {
			double lo = k ? trk_lat_bound(k - 1) : 0;
			double hi = trk_lat_bound(k) >= 0 ? trk_lat_bound(k) : lo * 2;
			return lo + (hi - lo) * ((want - cum) / (double)h[k]);
		}
		cum += (double)h[k];
	}
	return trk_lat_bound(TRK_LAT_BUCKETS - 2);
}

static double sla_num(const cfg_vendor_t *v, const char *k, double dflt)
{
	json_t *s = v ? json_object_get(v->raw, "sla") : NULL;
	json_t *x = json_object_get(s, k);
	return json_is_number(x) ? json_number_value(x) : dflt;
}

/* ---- vendors ---- */

/* A vendor's answers over some time, as the dispatcher's SLA monitor counts
 * them (dispatcher/sla.h): answers = accepted + refused + errors + timeouts
 * (throttles apart); error_rate = errors / answers, timeout_rate = timeouts /
 * answers. */
typedef struct answers {
	int64_t ok, refused, errors, timeouts;
} answers_t;

static int64_t answers_n(const answers_t *a)
{
	return a->ok + a->refused + a->errors + a->timeouts;
}
static double answers_rate(const answers_t *a, int64_t n)
{
	int64_t d = answers_n(a);
	return d > 0 ? (double)n / (double)d : 0.0;
}

int trk_api_vendors(trk_api_q_t *q, buf_t *b)
{
	int64_t now_s = clock_wall_ms() / 1000;
	const int window = 60;
	/* names: configured vendors first, then any the store has heard of */
	char names[64][64];
	size_t nn = 0;
	for (size_t i = 0; i < q->cfg->nvendors && nn < 64; i++)
		snprintf(names[nn++], sizeof names[0], "%s", q->cfg->vendors[i].name);
	sqlite3_stmt *st;
	if (prep(q, "SELECT name FROM vendors UNION SELECT DISTINCT vendor FROM counts WHERE vendor<>''",
	         &st))
		return TOCSIN_ERR_IO;
	while (sqlite3_step(st) == SQLITE_ROW && nn < 64) {
		size_t k = 0;
		while (k < nn && strcmp(names[k], col(st, 0)))
			k++;
		if (k == nn)
			snprintf(names[nn++], sizeof names[0], "%s", col(st, 0));
	}
	sqlite3_finalize(st);
	buf_puts(b, "{\"vendors\":[");
	for (size_t i = 0; i < nn; i++) {
		const cfg_vendor_t *v = cfg_vendor(q->cfg, names[i]);
		buf_puts(b, i ? ",{\"name\":" : "{\"name\":");
		jstr(b, names[i]);
		buf_puts(b, ",\"kind\":");
		jstr(b, v ? v->kind : "");
		buf_printf(b, ",\"channel\":\"%s\",\"configured\":%s",
		           v ? msg_channel_name(v->channel) : "", v ? "true" : "false");
		/* SLA state */
		if (prep(q, "SELECT state, reason, by, ts_ms, p95_ms, error_rate FROM vendors WHERE name=?1",
		         &st))
			return TOCSIN_ERR_IO;
		sqlite3_bind_text(st, 1, names[i], -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW) {
			buf_printf(b, ",\"state\":\"%s\",\"reason\":",
			           msg_vh_state_name((msg_vh_state_t)sqlite3_column_int(st, 0)));
			jstr_or_null(b, st, 1);
			buf_puts(b, ",\"by\":");
			jstr_or_null(b, st, 2);
			buf_printf(b, ",\"since_ms\":%lld", (long long)sqlite3_column_int64(st, 3));
		} else {
			buf_puts(b, ",\"state\":\"healthy\",\"reason\":null,\"by\":null,\"since_ms\":0");
		}
		sqlite3_finalize(st);
		buf_printf(b, ",\"sla\":{\"p95_ms\":%g,\"error_rate\":%g,\"timeout_rate\":%g}",
		           sla_num(v, "p95_ms", 2000), sla_num(v, "error_rate", 0.2),
		           sla_num(v, "timeout_rate", 0.1));
		if (v)
			buf_printf(b, ",\"webhook_auth\":\"%s\"", vnd_wh_auth_cfg(v));
		if (v && q->wh_json)
			q->wh_json(q->wh_ctx, v->name, b);
		/* recent figures: every answer as the SLA monitor counts it */
		if (prep(q,
		         "SELECT SUM(sends), SUM(receipts), SUM(failures), SUM(errors), SUM(timeouts),"
		         " SUM(refused), SUM(throttled) FROM series WHERE sec>=?1 AND vendor=?2",
		         &st))
			return TOCSIN_ERR_IO;
		int64_t r[7] = {0}, lat[TRK_LAT_BUCKETS] = {0};
		sqlite3_bind_int64(st, 1, now_s - window);
		sqlite3_bind_text(st, 2, names[i], -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW)
			for (int k = 0; k < 7; k++)
				r[k] = sqlite3_column_int64(st, k);
		sqlite3_finalize(st);
		if (prep(q, "SELECT lat FROM series WHERE sec>=?1 AND vendor=?2", &st))
			return TOCSIN_ERR_IO;
		sqlite3_bind_int64(st, 1, now_s - window);
		sqlite3_bind_text(st, 2, names[i], -1, SQLITE_STATIC);
		while (sqlite3_step(st) == SQLITE_ROW)
			lat_blob(st, 0, lat);
		sqlite3_finalize(st);
		answers_t a = {r[0], r[5], r[3], r[4]};
		buf_printf(b,
		           ",\"recent\":{\"window_s\":%d,\"sends\":%lld,\"receipts\":%lld,\"failures\":%lld,"
		           "\"answers\":%lld,\"errors\":%lld,\"timeouts\":%lld,\"refused\":%lld,"
		           "\"throttled\":%lld,\"error_rate\":%.4f,\"timeout_rate\":%.4f,"
		           "\"p50_ms\":%.0f,\"p95_ms\":%.0f}",
		           window, (long long)r[0], (long long)r[1], (long long)r[2],
		           (long long)answers_n(&a), (long long)r[3], (long long)r[4], (long long)r[5],
		           (long long)r[6], answers_rate(&a, a.errors), answers_rate(&a, a.timeouts),
		           lat_quantile(lat, 0.5), lat_quantile(lat, 0.95));
		/* all-time counts */
		int64_t states[MSG_ST__COUNT] = {0};
		if (prep(q, "SELECT state, SUM(n) FROM counts WHERE vendor=?1 GROUP BY 1", &st))
			return TOCSIN_ERR_IO;
		sqlite3_bind_text(st, 1, names[i], -1, SQLITE_STATIC);
		while (sqlite3_step(st) == SQLITE_ROW) {
			int s = sqlite3_column_int(st, 0);
			if ((unsigned)s < MSG_ST__COUNT)
				states[s] = sqlite3_column_int64(st, 1);
		}
		sqlite3_finalize(st);
		buf_puts(b, ",\"states\":");
		states_obj(b, states);
		buf_putc(b, '}');
	}
	return buf_puts(b, "]}\n");
}

/* ---- series ---- */

#define MAX_SERIES_V 16
int trk_api_series(trk_api_q_t *q, const char *campaign, int seconds, buf_t *b)
{
	if (seconds < 1 || seconds > 3600) {
		buf_puts(b, "seconds must be 1..3600");
		return TOCSIN_ERR_INVAL;
	}
	int64_t now_s = clock_wall_ms() / 1000, from = now_s - seconds + 1;
	size_t n = (size_t)seconds;
	/* [0] totals, [1+k] vendor k */
	typedef struct row {
		int64_t sends, receipts, failures;
		answers_t a;
		int64_t lat[TRK_LAT_BUCKETS];
	} row_t;
	row_t *rows = calloc((MAX_SERIES_V + 1) * n, sizeof *rows);
	char vn[MAX_SERIES_V][64];
	size_t nv = 0;
	if (!rows)
		return TOCSIN_ERR_NOMEM;
	sqlite3_stmt *st;
	if (prep(q,
	         campaign ? "SELECT sec, vendor, sends, receipts, failures, lat, refused, errors,"
	                    " timeouts FROM series WHERE sec>=?1 AND sec<=?2 AND campaign=?3"
	                  : "SELECT sec, vendor, sends, receipts, failures, lat, refused, errors,"
	                    " timeouts FROM series WHERE sec>=?1 AND sec<=?2",
	         &st)) {
		free(rows);
		return TOCSIN_ERR_IO;
	}
	sqlite3_bind_int64(st, 1, from);
	sqlite3_bind_int64(st, 2, now_s);
	if (campaign)
		sqlite3_bind_text(st, 3, campaign, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW) {
		int64_t sec = sqlite3_column_int64(st, 0);
		if (sec < from || sec > now_s)
			continue;
		size_t t = (size_t)(sec - from);
		const char *v = col(st, 1);
		size_t k = 0;
		if (v[0]) {
			while (k < nv && strcmp(vn[k], v))
				k++;
			if (k == nv && nv < MAX_SERIES_V)
				snprintf(vn[nv++], sizeof vn[0], "%s", v);
		}
		row_t *rs[2] = {&rows[t], v[0] && k < nv ? &rows[(1 + k) * n + t] : NULL};
		for (int j = 0; j < 2; j++) {
			if (!rs[j])
				continue;
			rs[j]->sends += sqlite3_column_int64(st, 2);
			rs[j]->receipts += sqlite3_column_int64(st, 3);
			rs[j]->failures += sqlite3_column_int64(st, 4);
			lat_blob(st, 5, rs[j]->lat);
			rs[j]->a.ok += sqlite3_column_int64(st, 2);
			rs[j]->a.refused += sqlite3_column_int64(st, 6);
			rs[j]->a.errors += sqlite3_column_int64(st, 7);
			rs[j]->a.timeouts += sqlite3_column_int64(st, 8);
		}
	}
	sqlite3_finalize(st);
	buf_printf(b, "{\"now_s\":%lld,\"from_s\":%lld,\"seconds\":%d", (long long)now_s,
	           (long long)from, seconds);
	static const char *const names[4] = {"sends", "receipts", "failures", "deferred"};
	for (int f = 0; f < 4; f++) {
		buf_printf(b, ",\"%s\":[", names[f]);
		for (size_t t = 0; t < n; t++) {
			row_t *r = &rows[t];
			int64_t v = f == 0   ? r->sends
			            : f == 1 ? r->receipts
			            : f == 2 ? r->failures
			                     : r->a.errors + r->a.timeouts;
			buf_printf(b, "%s%lld", t ? "," : "", (long long)v);
		}
		buf_putc(b, ']');
	}
	buf_puts(b, ",\"vendors\":{");
	for (size_t k = 0; k < nv; k++) {
		buf_puts(b, k ? "," : "");
		jstr(b, vn[k]);
		buf_puts(b, ":{");
		static const char *const vf[] = {"sends",      "failures",     "errors", "timeouts",
		                                 "error_rate", "timeout_rate", "p50_ms", "p95_ms"};
		for (int f = 0; f < 8; f++) {
			buf_printf(b, "%s\"%s\":[", f ? "," : "", vf[f]);
			for (size_t t = 0; t < n; t++) {
				row_t *r = &rows[(1 + k) * n + t];
				double v;
				switch (f) {
				case 0: v = (double)r->sends; break;
				case 1: v = (double)r->failures; break;
				case 2: v = (double)r->a.errors; break;
				case 3: v = (double)r->a.timeouts; break;
				case 4: v = answers_rate(&r->a, r->a.errors); break;
				case 5: v = answers_rate(&r->a, r->a.timeouts); break;
				default: v = lat_quantile(r->lat, f == 6 ? 0.5 : 0.95);
				}
				buf_printf(b, f == 4 || f == 5 ? "%s%.3f" : "%s%.0f", t ? "," : "", v);
			}
			buf_putc(b, ']');
		}
		const cfg_vendor_t *v = cfg_vendor(q->cfg, vn[k]);
		buf_printf(b, ",\"sla\":{\"p95_ms\":%g,\"error_rate\":%g,\"timeout_rate\":%g}}",
		           sla_num(v, "p95_ms", 2000), sla_num(v, "error_rate", 0.2),
		           sla_num(v, "timeout_rate", 0.1));
	}
	free(rows);
	return buf_puts(b, "}}\n");
}

/* ---- alerts: why a running campaign cannot progress ---- */

int trk_api_alerts(trk_api_q_t *q, int64_t broker_down_ms, buf_t *b)
{
	int64_t now = clock_wall_ms();
	int first = 1;
	buf_puts(b, "{\"alerts\":[");
	if (broker_down_ms > 0) {
		buf_printf(b,
		           "{\"kind\":\"broker\",\"since_ms\":%lld,\"text\":\"Kafka broker unreachable for "
		           "%lld s: no message is sent or tracked until it is back\"}",
		           (long long)broker_down_ms, (long long)((now - broker_down_ms) / 1000));
		first = 0;
	}
	/* the campaigns with messages still to send, and their channels (none seen yet: any) */
	camp_t *cs = calloc(MAX_CAMPS, sizeof *cs);
	size_t n = 0;
	if (!cs)
		return TOCSIN_ERR_NOMEM;
	int rc = load_camps(q, NULL, cs, &n);
	for (int ch = 0; ch < MSG_CH__COUNT && !rc; ch++) {
		/* the channel's route: healthy or probing vendors can carry it */
		const cfg_route_t *r = &q->cfg->routes[ch];
		char names[512] = "";
		int usable = 0, any = 0;
		for (size_t i = 0; i < q->cfg->nvendors; i++) {
			const cfg_vendor_t *v = &q->cfg->vendors[i];
			int in_route = r->nvendors == 0 && v->channel == (msg_channel_t)ch;
			for (size_t k = 0; k < r->nvendors && !in_route; k++)
				in_route = !strcmp(r->vendors[k], v->name);
			if (!in_route)
				continue;
			any = 1;
			int st = MSG_VH_HEALTHY;
			sqlite3_stmt *qs;
			if (!prep(q, "SELECT state FROM vendors WHERE name=?1", &qs)) {
				sqlite3_bind_text(qs, 1, v->name, -1, SQLITE_STATIC);
				if (sqlite3_step(qs) == SQLITE_ROW)
					st = sqlite3_column_int(qs, 0);
				sqlite3_finalize(qs);
			}
			usable |= st == MSG_VH_HEALTHY || st == MSG_VH_PROBING;
			size_t l = strlen(names);
			snprintf(names + l, sizeof names - l, "%s%s %s", l ? ", " : "", v->name,
			         msg_vh_state_name((msg_vh_state_t)st));
		}
		if (usable || !any)
			continue;
		int listed = 0;
		for (size_t i = 0; i < n; i++) {
			camp_t *c = &cs[i];
			summary_t sm;
			summarize(c->states, c->queued, &sm);
			int64_t seen = 0;
			for (int k = 0; k < MSG_CH__COUNT; k++)
				for (int j = 0; j < MSG_ST__COUNT; j++)
					seen += c->ch[k][j];
			int64_t here = c->ch[ch][MSG_ST_QUEUED] + c->ch[ch][MSG_ST_RETRYING];
			if (NO_CAMPAIGN(c->id) || c->state != MSG_CAMP_RUNNING ||
			    sm.in_progress == 0 || (seen && !here))
				continue;
			if (!listed++) {
				buf_printf(b, "%s{\"kind\":\"no_vendor\",\"channel\":\"%s\",\"vendors\":",
				           first ? "" : ",", msg_channel_name((msg_channel_t)ch));
				jstr(b, names);
				buf_puts(b, ",\"campaigns\":[");
				first = 0;
			} else {
				buf_putc(b, ',');
			}
			jstr(b, c->id);
		}
		if (listed) {
			char t[700];
			snprintf(t, sizeof t,
			         "No healthy %s vendor (%s): %d running campaign%s cannot progress until one "
			         "recovers or is undrained",
			         msg_channel_name((msg_channel_t)ch), names, listed,
			         listed == 1 ? "" : "s");
			buf_puts(b, "],\"text\":");
			jstr(b, t);
			buf_putc(b, '}');
		}
	}
	free(cs);
	if (rc)
		return rc;
	return buf_puts(b, "]}\n");
}

/* ---- timeline, inbound ---- */

/* The newest rows of sql (?1 = limit, 1..1000): {"<list>":[{"ts_ms":N,"<name>":"…",…}]} with
 * column 0 the ts_ms and the others text named by names (NULL-terminated; a name starting
 * with '?' is null where the column is, the others "" ). */
static int newest_json(trk_api_q_t *q, const char *sql, int limit, const char *list,
                       const char *const *names, buf_t *b)
{
	if (limit < 1 || limit > 1000) {
		buf_puts(b, "limit must be 1..1000");
		return TOCSIN_ERR_INVAL;
	}
	sqlite3_stmt *st;
	if (prep(q, sql, &st))
		return TOCSIN_ERR_IO;
	sqlite3_bind_int(st, 1, limit);
	buf_printf(b, "{\"%s\":[", list);
	int first = 1;
	while (sqlite3_step(st) == SQLITE_ROW) {
		buf_printf(b, "%s{\"ts_ms\":%lld", first ? "" : ",",
		           (long long)sqlite3_column_int64(st, 0));
		first = 0;
		for (int i = 0; names[i]; i++) {
			int nullable = names[i][0] == '?';
			buf_printf(b, ",\"%s\":", names[i] + nullable);
			if (nullable)
				jstr_or_null(b, st, i + 1);
			else
				jstr(b, col(st, i + 1));
		}
		buf_putc(b, '}');
	}
	sqlite3_finalize(st);
	return buf_puts(b, "]}\n");
}

int trk_api_timeline(trk_api_q_t *q, int limit, buf_t *b)
{
	static const char *const names[] = {"kind", "subject", "detail", "?actor", NULL};
	return newest_json(q,
	                   "SELECT ts_ms, kind, subject, detail, actor FROM timeline ORDER BY ts_ms DESC"
	                   " LIMIT ?1",
	                   limit, "events", names, b);
}

int trk_api_inbound(trk_api_q_t *q, int limit, buf_t *b)
{
	static const char *const names[] = {"vendor", "from", "to", "body", "kind", NULL};
	return newest_json(q,
	                   "SELECT ts_ms, vendor, from_addr, to_addr, body, kind FROM inbound"
	                   " ORDER BY ts_ms DESC LIMIT ?1",
	                   limit, "inbound", names, b);
}

/* ---- recipients ---- */

static void csv_field(buf_t *b, const char *s)
{
	/* a leading = + - @ TAB or CR makes a spreadsheet run the field as a formula */
	int formula = s[0] && strchr("=+-@\t\r", s[0]);
	if (!strpbrk(s, ",\"\r\n") && !formula) {
		buf_puts(b, s);
		return;
	}
	/* Quote, and defuse a formula with a leading '. */
	buf_putc(b, '"');
	if (formula)
		buf_putc(b, '\'');
	for (; *s; s++) {
		if (*s == '"')
			buf_putc(b, '"');
		buf_putc(b, *s);
	}
	buf_putc(b, '"');
}

/* The earlier attempts of message rid as a JSON array. */
static void history_json(trk_api_q_t *q, int64_t rid, buf_t *b)
{
	sqlite3_stmt *st;
	buf_putc(b, '[');
	if (!prep(q, "SELECT state, vendor, code, detail, ts_ms FROM attempts WHERE rid=?1 ORDER BY gen",
	          &st)) {
		sqlite3_bind_int64(st, 1, rid);
		for (int i = 0; sqlite3_step(st) == SQLITE_ROW; i++) {
			int s = sqlite3_column_int(st, 0);
			buf_printf(b, "%s{\"state\":\"%s\",\"vendor\":", i ? "," : "",
			           (unsigned)s < MSG_ST__COUNT ? msg_state_name((msg_state_t)s) : "?");
			jstr(b, col(st, 1));
			buf_puts(b, ",\"code\":");
			jstr_or_null(b, st, 2);
			buf_puts(b, ",\"detail\":");
			jstr_or_null(b, st, 3);
			buf_printf(b, ",\"ts_ms\":%lld}", (long long)sqlite3_column_int64(st, 4));
		}
		sqlite3_finalize(st);
	}
	buf_putc(b, ']');
}

/* What a recipients page asks for, checked: the failure codes (as ",c1,c2," for instr()),
 * the states, and where the previous page ended. */
typedef struct rcpt_filter {
	char cset[520];
	int want[MSG_ST__COUNT];
	int after_state;
	int64_t after_rid;
} rcpt_filter_t;

/* The query of a recipients page into f: 0, or TOCSIN_ERR_INVAL with the reason in b. */
static int rcpt_filter(rcpt_filter_t *f, const char *states, const char *codes, const char *after,
                       int limit, int csv, buf_t *b)
{
	memset(f, 0, sizeof *f);
	if (codes && *codes) {
		if (strlen(codes) > 500 || strstr(codes, ",,") || codes[0] == ',' ||
		    codes[strlen(codes) - 1] == ',') {
			buf_puts(b, "code must be a comma list of failure codes, 500 bytes at most");
			return TOCSIN_ERR_INVAL;
		}
		snprintf(f->cset, sizeof f->cset, ",%s,", codes);
	}
	if (!states || !*states) {
		for (int i = 0; i < MSG_ST__COUNT; i++)
			f->want[i] = i != MSG_ST_DELIVERED;
	} else {
		char tmp[256];
		snprintf(tmp, sizeof tmp, "%s", states);
		for (char *save = NULL, *t = strtok_r(tmp, ",", &save); t;
		     t = strtok_r(NULL, ",", &save)) {
			msg_state_t s;
			if (msg_state_parse(t, &s)) {
				buf_printf(b, "unknown state \"%.40s\"", t);
				return TOCSIN_ERR_INVAL;
			}
			f->want[s] = 1;
		}
	}
	if (!csv && (limit < 1 || limit > 10000)) {
		buf_puts(b, "limit must be 1..10000");
		return TOCSIN_ERR_INVAL;
	}
	if (after && *after) {
		/* "STATE:RID", both whole decimal integers */
		char as[24];
		size_t al = strcspn(after, ":");
		int ok = al < sizeof as;
		if (ok) {
			memcpy(as, after, al);
			as[al] = 0;
			ok = !num_int(as, 0, MSG_ST__COUNT - 1, &f->after_state) &&
			     (!after[al] || !num_i64(after + al + 1, 0, INT64_MAX, &f->after_rid));
		}
		if (!ok) {
			buf_puts(b, "after must be the \"next\" value of the previous page");
			return TOCSIN_ERR_INVAL;
		}
	}
	return 0;
}

/* One recipient (the row st is on, in state) as a CSV line or a JSON object (rows: its
 * place on the page, from 1). */
static int rcpt_row(trk_api_q_t *q, sqlite3_stmt *st, const char *state, int64_t rows, int csv,
                    buf_t *b)
{
	if (csv) {
		csv_field(b, col(st, 1));
		buf_putc(b, ',');
		csv_field(b, col(st, 2));
		buf_printf(b, ",%s,", state);
		csv_field(b, col(st, 4));
		buf_putc(b, ',');
		csv_field(b, col(st, 5));
		buf_putc(b, ',');
		csv_field(b, col(st, 6));
		return buf_printf(b, ",%lld,%lld\r\n", (long long)sqlite3_column_int64(st, 7),
		                  (long long)sqlite3_column_int64(st, 8));
	}
	buf_puts(b, rows > 1 ? ",{\"id\":" : "{\"id\":");
	jstr(b, col(st, 1));
	buf_puts(b, ",\"to\":");
	jstr_or_null(b, st, 2);
	buf_printf(b, ",\"state\":\"%s\",\"vendor\":", state);
	jstr(b, col(st, 4));
	buf_puts(b, ",\"code\":");
	jstr_or_null(b, st, 5);
	buf_puts(b, ",\"detail\":");
	jstr_or_null(b, st, 6);
	int64_t gen = sqlite3_column_int64(st, 8);
	buf_printf(b, ",\"ts_ms\":%lld,\"resends\":%lld", (long long)sqlite3_column_int64(st, 7),
	           (long long)gen);
	if (gen > 0) {
		buf_puts(b, ",\"history\":");
		history_json(q, sqlite3_column_int64(st, 0), b);
	}
	return buf_putc(b, '}');
}

int trk_api_recipients(trk_api_q_t *q, const char *id, const char *states, const char *codes,
                       const char *after, int limit, int csv, buf_t *b)
{
	rcpt_filter_t f;
	if (rcpt_filter(&f, states, codes, after, limit, csv, b))
		return TOCSIN_ERR_INVAL;
	{
		trk_counts_t *c = malloc(sizeof *c);
		if (!c)
			return TOCSIN_ERR_NOMEM;
		int rc = trk_store_counts(q->rd, id, c);
		free(c);
		if (rc)
			return rc;
	}
	/* One index range (campaign, state, rid) per state, in state order; the
	 * cursor is "<state>:<rid>". */
	sqlite3_stmt *st;
	if (prep(q,
	         "SELECT rid, " TRK_ID_SQL ", addr, state, vendor, code, detail, ts_ms, gen FROM msgs"
	         " WHERE campaign=?1 AND state=?2 AND rid>?3 AND (?5 IS NULL OR"
	         " instr(?5, ',' || COALESCE(NULLIF(code, ''), ?6) || ',') > 0) ORDER BY rid LIMIT ?4",
	         &st))
		return TOCSIN_ERR_IO;
	int rc = 0;
	int64_t rows = 0, last = -1;
	int last_state = 0;
	int64_t left = csv && limit < 0 ? INT64_MAX : limit;
	if (csv)
		rc = buf_puts(b, "id,to,state,vendor,code,detail,ts_ms,resends\r\n");
	else {
		buf_puts(b, "{\"campaign\":");
		jstr(b, id);
		rc = buf_puts(b, ",\"items\":[");
	}
	for (int s = f.after_state; s < MSG_ST__COUNT && !rc && left > 0; s++) {
		if (!f.want[s])
			continue;
		sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 2, s);
		sqlite3_bind_int64(st, 3, s == f.after_state ? f.after_rid : 0);
		sqlite3_bind_int64(st, 4, left);
		const char *state = msg_state_name((msg_state_t)s);
		if (f.cset[0])
			sqlite3_bind_text(st, 5, f.cset, -1, SQLITE_STATIC);
		else
			sqlite3_bind_null(st, 5);
		sqlite3_bind_text(st, 6, s == MSG_ST_SUPPRESSED ? "suppressed" : state, -1,
		                  SQLITE_STATIC);
		while (!rc && sqlite3_step(st) == SQLITE_ROW) {
			last = sqlite3_column_int64(st, 0);
			last_state = s;
			rows++;
			left--;
			rc = rcpt_row(q, st, state, rows, csv, b);
		}
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	if (rc)
		return TOCSIN_ERR_TOOBIG;
	if (!csv) {
		if (left == 0)
			buf_printf(b, "],\"next\":\"%d:%lld\"}\n", last_state, (long long)last);
		else
			buf_puts(b, "],\"next\":null}\n");
	}
	return 0;
}

/* ---- metrics ---- */

static void prom_label(buf_t *b, const char *s)
{
	buf_putc(b, '"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			buf_putc(b, '\\');
		if (*s == '\n')
			buf_puts(b, "\\n");
		else
			buf_putc(b, *s);
	}
	buf_putc(b, '"');
}

/* One tocsin_messages-style sample: {campaign?, channel, vendor, state} n;
 * a message never given to a vendor has vendor "none". */
static void msg_sample(buf_t *b, const char *metric, const char *camp, int ch, const char *vendor,
                       int state, int64_t n)
{
	buf_printf(b, "%s{", metric);
	if (camp) {
		buf_puts(b, "campaign=");
		prom_label(b, *camp ? camp : "none");
		buf_putc(b, ',');
	}
	buf_printf(b, "channel=\"%s\",vendor=", msg_channel_name((msg_channel_t)ch));
	prom_label(b, *vendor ? vendor : "none");
	buf_printf(b, ",state=\"%s\"} %lld\n", msg_state_name((msg_state_t)state), (long long)n);
}

int trk_api_metrics(trk_api_q_t *q, buf_t *b)
{
	sqlite3_stmt *st;
	int64_t now_s = clock_wall_ms() / 1000;
	buf_puts(b, "# HELP tocsin_messages Messages by campaign, channel, vendor and current state, "
	            "for campaigns with messages in progress or activity in the last hour.\n"
	            "# TYPE tocsin_messages gauge\n");
	if (prep(q,
	         "WITH live(c) AS (SELECT campaign FROM series WHERE sec>=?1"
	         " UNION SELECT id FROM campaigns WHERE ts_ms>=?1 * 1000"
	         " UNION SELECT campaign FROM counts WHERE state IN (?2, ?3) AND n>0)"
	         " SELECT campaign, channel, vendor, state, SUM(n) FROM counts"
	         " WHERE campaign IN (SELECT c FROM live) GROUP BY 1, 2, 3, 4",
	         &st))
		return TOCSIN_ERR_IO;
	sqlite3_bind_int64(st, 1, now_s - TRK_METRICS_CAMPAIGN_TTL_S);
	sqlite3_bind_int(st, 2, MSG_ST_QUEUED);
	sqlite3_bind_int(st, 3, MSG_ST_RETRYING);
	while (sqlite3_step(st) == SQLITE_ROW) {
		int64_t n = sqlite3_column_int64(st, 4);
		int ch = sqlite3_column_int(st, 1), s = sqlite3_column_int(st, 3);
		if (n && (unsigned)ch < MSG_CH__COUNT && (unsigned)s < MSG_ST__COUNT)
			msg_sample(b, "tocsin_messages", col(st, 0), ch, col(st, 2), s, n);
	}
	sqlite3_finalize(st);
	buf_puts(b, "# HELP tocsin_messages_all Messages of every campaign by channel, vendor and "
	            "current state.\n# TYPE tocsin_messages_all gauge\n");
	if (prep(q, "SELECT channel, vendor, state, SUM(n) FROM counts GROUP BY 1, 2, 3", &st))
		return TOCSIN_ERR_IO;
	while (sqlite3_step(st) == SQLITE_ROW) {
		int64_t n = sqlite3_column_int64(st, 3);
		int ch = sqlite3_column_int(st, 0), s = sqlite3_column_int(st, 2);
		if (n && (unsigned)ch < MSG_CH__COUNT && (unsigned)s < MSG_ST__COUNT)
			msg_sample(b, "tocsin_messages_all", NULL, ch, col(st, 1), s, n);
	}
	sqlite3_finalize(st);

	buf_puts(b, "# HELP tocsin_vendor_latency_seconds Vendor request latency (every answer but "
	            "throttles).\n# TYPE tocsin_vendor_latency_seconds histogram\n");
	if (prep(q, "SELECT vendor, lat, lat_sum FROM lat_total WHERE vendor<>'' ORDER BY vendor", &st))
		return TOCSIN_ERR_IO;
	char cur[128] = "";
	int64_t h[TRK_LAT_BUCKETS] = {0}, sum = 0;
	for (int more = 1; more;) {
		more = sqlite3_step(st) == SQLITE_ROW;
		if (!more || strcmp(cur, col(st, 0))) {
			if (cur[0]) {
				int64_t cum = 0;
				for (int k = 0; k < TRK_LAT_BUCKETS; k++) {
					cum += h[k];
					buf_puts(b, "tocsin_vendor_latency_seconds_bucket{vendor=");
					prom_label(b, cur);
					if (trk_lat_bound(k) >= 0)
						buf_printf(b, ",le=\"%g\"} %lld\n",
						           trk_lat_bound(k) / 1000.0, (long long)cum);
					else
						buf_printf(b, ",le=\"+Inf\"} %lld\n", (long long)cum);
				}
				buf_puts(b, "tocsin_vendor_latency_seconds_sum{vendor=");
				prom_label(b, cur);
				buf_printf(b, "} %.3f\ntocsin_vendor_latency_seconds_count{vendor=",
				           (double)sum / 1000.0);
				prom_label(b, cur);
				buf_printf(b, "} %lld\n", (long long)cum);
			}
			if (!more)
				break;
			snprintf(cur, sizeof cur, "%s", col(st, 0));
			memset(h, 0, sizeof h);
			sum = 0;
		}
		lat_blob(st, 1, h);
		sum += sqlite3_column_int64(st, 2);
	}
	sqlite3_finalize(st);

	buf_puts(b, "# HELP tocsin_vendor_sla_state 1 for the SLA state each vendor is in.\n"
	            "# TYPE tocsin_vendor_sla_state gauge\n");
	for (size_t i = 0; i < q->cfg->nvendors; i++) {
		const char *name = q->cfg->vendors[i].name;
		int state = MSG_VH_HEALTHY;
		if (prep(q, "SELECT state FROM vendors WHERE name=?1", &st))
			return TOCSIN_ERR_IO;
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW)
			state = sqlite3_column_int(st, 0);
		sqlite3_finalize(st);
		for (int s = 0; s < MSG_VH__COUNT; s++) {
			buf_puts(b, "tocsin_vendor_sla_state{vendor=");
			prom_label(b, name);
			buf_printf(b, ",state=\"%s\"} %d\n", msg_vh_state_name((msg_vh_state_t)s),
			           s == state);
		}
	}
	buf_puts(b, "# HELP tocsin_optouts Addresses currently opted out, by channel.\n"
	            "# TYPE tocsin_optouts gauge\n");
	if (prep(q, "SELECT channel, COUNT(*) FROM optouts WHERE optin=0 GROUP BY 1", &st))
		return TOCSIN_ERR_IO;
	while (sqlite3_step(st) == SQLITE_ROW)
		buf_printf(b, "tocsin_optouts{channel=\"%s\"} %lld\n",
		           msg_channel_name((msg_channel_t)sqlite3_column_int(st, 0)),
		           (long long)sqlite3_column_int64(st, 1));
	sqlite3_finalize(st);
	return buf_puts(b, "");
}
