/* api.c -- the tracker's read queries: campaigns, vendors, series, timeline, recipients, metrics. */
#include "tracker/api.h"
#include "core/clock.h"
#include "core/err.h"

#include <stdint.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CAMPS 500

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
	int state;    /* msg_camp_state_t or -1 */
	int64_t queued, ts_ms, optouts, total;
	int64_t states[MSG_ST__COUNT];
} camp_t;

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
	if (prep(q, only ? "SELECT id, name, state, queued, ts_ms FROM campaigns WHERE id=?1"
	                 : "SELECT id, name, state, queued, ts_ms FROM campaigns ORDER BY ts_ms DESC",
	         &st))
		return TOCSIN_ERR_IO;
	if (only)
		sqlite3_bind_text(st, 1, only, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW) {
		camp_t *c = camp_find(cs, n, col(st, 0), 1);
		if (!c)
			break;
		snprintf(c->name, sizeof c->name, "%s", col(st, 1));
		c->state = sqlite3_column_int(st, 2);
		c->queued = sqlite3_column_type(st, 3) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 3);
		c->ts_ms = sqlite3_column_int64(st, 4);
	}
	sqlite3_finalize(st);
	if (prep(q, only ? "SELECT campaign, state, SUM(n) FROM counts WHERE campaign=?1 GROUP BY 1, 2"
	                 : "SELECT campaign, state, SUM(n) FROM counts GROUP BY 1, 2",
	         &st))
		return TOCSIN_ERR_IO;
	if (only)
		sqlite3_bind_text(st, 1, only, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW) {
		int64_t v = sqlite3_column_int64(st, 2);
		int s = sqlite3_column_int(st, 1);
		if (!v || (unsigned)s >= MSG_ST__COUNT)
			continue;
		camp_t *c = camp_find(cs, n, col(st, 0), 1);
		if (!c)
			break;
		c->states[s] += v;
		c->total += v;
	}
	sqlite3_finalize(st);
	if (prep(q, "SELECT campaign, COUNT(*) FROM optouts WHERE optin=0 AND campaign IS NOT NULL"
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

static void camp_json(buf_t *b, const camp_t *c)
{
	buf_puts(b, "{\"id\":");
	jstr(b, c->id);
	buf_puts(b, ",\"name\":");
	jstr(b, c->name[0] ? c->name : c->id);
	buf_printf(b, ",\"state\":\"%s\",\"queued\":%lld,\"total\":%lld,\"states\":",
	           c->state >= 0 ? msg_camp_state_name((msg_camp_state_t)c->state) : "unknown",
	           (long long)c->queued, (long long)c->total);
	states_obj(b, c->states);
	int64_t pending = c->states[MSG_ST_QUEUED] + c->states[MSG_ST_RETRYING];
	int64_t denom = c->queued > c->total ? c->queued : c->total;
	double progress = denom > 0 ? (double)(c->total - pending) / (double)denom : 0;
	buf_printf(b, ",\"optouts\":%lld,\"progress\":%.4f,\"updated_ms\":%lld}", (long long)c->optouts,
	           progress, (long long)c->ts_ms);
}

int trk_api_campaigns(trk_api_q_t *q, buf_t *b)
{
	camp_t *cs = calloc(MAX_CAMPS, sizeof *cs);
	size_t n = 0;
	if (!cs)
		return TOCSIN_ERR_NOMEM;
	int rc = load_camps(q, NULL, cs, &n);
	if (!rc) {
		buf_puts(b, "{\"campaigns\":[");
		for (size_t i = 0; i < n; i++) {
			if (i)
				buf_putc(b, ',');
			camp_json(b, &cs[i]);
		}
		rc = buf_puts(b, "]}\n");
	}
	free(cs);
	return rc;
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
		if (prep(q, "SELECT vendor, state, SUM(n) FROM counts WHERE campaign=?1 AND vendor<>''"
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
				buf_printf(b, "\"%s\":%lld", msg_state_name((msg_state_t)sqlite3_column_int(st, 1)),
				           (long long)sqlite3_column_int64(st, 2));
			}
			if (cur[0])
				buf_putc(b, '}');
			sqlite3_finalize(st);
		}
		buf_puts(b, "},\"codes\":[");
		if (prep(q, "SELECT vendor, code, SUM(n) FROM codes WHERE campaign=?1 GROUP BY 1, 2"
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
		rc = buf_puts(b, "]}\n");
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
		buf_printf(b, ",\"channel\":\"%s\",\"configured\":%s", v ? msg_channel_name(v->channel) : "",
		           v ? "true" : "false");
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
		buf_printf(b, ",\"sla\":{\"p95_ms\":%g,\"error_rate\":%g}", sla_num(v, "p95_ms", 2000),
		           sla_num(v, "error_rate", 0.2));
		/* recent figures */
		if (prep(q, "SELECT SUM(sends), SUM(receipts), SUM(failures) FROM series"
		            " WHERE sec>=?1 AND vendor=?2",
		         &st))
			return TOCSIN_ERR_IO;
		int64_t sends = 0, receipts = 0, failures = 0, lat[TRK_LAT_BUCKETS] = {0};
		sqlite3_bind_int64(st, 1, now_s - window);
		sqlite3_bind_text(st, 2, names[i], -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW) {
			sends = sqlite3_column_int64(st, 0);
			receipts = sqlite3_column_int64(st, 1);
			failures = sqlite3_column_int64(st, 2);
		}
		sqlite3_finalize(st);
		if (prep(q, "SELECT lat FROM series WHERE sec>=?1 AND vendor=?2", &st))
			return TOCSIN_ERR_IO;
		sqlite3_bind_int64(st, 1, now_s - window);
		sqlite3_bind_text(st, 2, names[i], -1, SQLITE_STATIC);
		while (sqlite3_step(st) == SQLITE_ROW)
			lat_blob(st, 0, lat);
		sqlite3_finalize(st);
		double answered = (double)(sends + failures);
		buf_printf(b,
		           ",\"recent\":{\"window_s\":%d,\"sends\":%lld,\"receipts\":%lld,\"failures\":%lld,"
		           "\"error_rate\":%.4f,\"p50_ms\":%.0f,\"p95_ms\":%.0f}",
		           window, (long long)sends, (long long)receipts, (long long)failures,
		           answered > 0 ? (double)failures / answered : 0.0, lat_quantile(lat, 0.5),
		           lat_quantile(lat, 0.95));
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
		int64_t lat[TRK_LAT_BUCKETS];
	} row_t;
	row_t *rows = calloc((MAX_SERIES_V + 1) * n, sizeof *rows);
	char vn[MAX_SERIES_V][64];
	size_t nv = 0;
	if (!rows)
		return TOCSIN_ERR_NOMEM;
	sqlite3_stmt *st;
	if (prep(q, campaign ? "SELECT sec, vendor, sends, receipts, failures, lat FROM series"
	                       " WHERE sec>=?1 AND sec<=?2 AND campaign=?3"
	                     : "SELECT sec, vendor, sends, receipts, failures, lat FROM series"
	                       " WHERE sec>=?1 AND sec<=?2",
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
		}
	}
	sqlite3_finalize(st);
	buf_printf(b, "{\"now_s\":%lld,\"from_s\":%lld,\"seconds\":%d", (long long)now_s,
	           (long long)from, seconds);
	static const char *const names[3] = {"sends", "receipts", "failures"};
	for (int f = 0; f < 3; f++) {
		buf_printf(b, ",\"%s\":[", names[f]);
		for (size_t t = 0; t < n; t++) {
			row_t *r = &rows[t];
			buf_printf(b, "%s%lld", t ? "," : "",
			           (long long)(f == 0 ? r->sends : f == 1 ? r->receipts : r->failures));
		}
		buf_putc(b, ']');
	}
	buf_puts(b, ",\"vendors\":{");
	for (size_t k = 0; k < nv; k++) {
		buf_puts(b, k ? "," : "");
		jstr(b, vn[k]);
		buf_puts(b, ":{");
		for (int f = 0; f < 5; f++) {
			static const char *const vf[5] = {"sends", "failures", "error_rate", "p50_ms", "p95_ms"};
			buf_printf(b, "%s\"%s\":[", f ? "," : "", vf[f]);
			for (size_t t = 0; t < n; t++) {
				row_t *r = &rows[(1 + k) * n + t];
				double v;
				if (f == 0)
					v = (double)r->sends;
				else if (f == 1)
					v = (double)r->failures;
				else if (f == 2)
					v = r->sends + r->failures ? (double)r->failures / (double)(r->sends + r->failures)
					                           : 0;
				else
					v = lat_quantile(r->lat, f == 3 ? 0.5 : 0.95);
				buf_printf(b, f == 2 ? "%s%.3f" : "%s%.0f", t ? "," : "", v);
			}
			buf_putc(b, ']');
		}
		const cfg_vendor_t *v = cfg_vendor(q->cfg, vn[k]);
		buf_printf(b, ",\"sla\":{\"p95_ms\":%g,\"error_rate\":%g}}", sla_num(v, "p95_ms", 2000),
		           sla_num(v, "error_rate", 0.2));
	}
	free(rows);
	return buf_puts(b, "}}\n");
}

/* ---- timeline, inbound ---- */

int trk_api_timeline(trk_api_q_t *q, int limit, buf_t *b)
{
	if (limit < 1 || limit > 1000) {
		buf_puts(b, "limit must be 1..1000");
		return TOCSIN_ERR_INVAL;
	}
	sqlite3_stmt *st;
	if (prep(q, "SELECT ts_ms, kind, subject, detail FROM timeline ORDER BY ts_ms DESC LIMIT ?1",
	         &st))
		return TOCSIN_ERR_IO;
	sqlite3_bind_int(st, 1, limit);
	buf_puts(b, "{\"events\":[");
	int first = 1;
	while (sqlite3_step(st) == SQLITE_ROW) {
		buf_printf(b, "%s{\"ts_ms\":%lld,\"kind\":", first ? "" : ",",
		           (long long)sqlite3_column_int64(st, 0));
		first = 0;
		jstr(b, col(st, 1));
		buf_puts(b, ",\"subject\":");
		jstr(b, col(st, 2));
		buf_puts(b, ",\"detail\":");
		jstr(b, col(st, 3));
		buf_putc(b, '}');
	}
	sqlite3_finalize(st);
	return buf_puts(b, "]}\n");
}

int trk_api_inbound(trk_api_q_t *q, int limit, buf_t *b)
{
	if (limit < 1 || limit > 1000) {
		buf_puts(b, "limit must be 1..1000");
		return TOCSIN_ERR_INVAL;
	}
	sqlite3_stmt *st;
	if (prep(q, "SELECT ts_ms, vendor, from_addr, to_addr, body, kind FROM inbound"
	            " ORDER BY ts_ms DESC LIMIT ?1",
	         &st))
		return TOCSIN_ERR_IO;
	sqlite3_bind_int(st, 1, limit);
	buf_puts(b, "{\"inbound\":[");
	int first = 1;
	while (sqlite3_step(st) == SQLITE_ROW) {
		buf_printf(b, "%s{\"ts_ms\":%lld,\"vendor\":", first ? "" : ",",
		           (long long)sqlite3_column_int64(st, 0));
		first = 0;
		jstr(b, col(st, 1));
		buf_puts(b, ",\"from\":");
		jstr(b, col(st, 2));
		buf_puts(b, ",\"to\":");
		jstr(b, col(st, 3));
		buf_puts(b, ",\"body\":");
		jstr(b, col(st, 4));
		buf_puts(b, ",\"kind\":");
		jstr(b, col(st, 5));
		buf_putc(b, '}');
	}
	sqlite3_finalize(st);
	return buf_puts(b, "]}\n");
}

/* ---- recipients ---- */

static void csv_field(buf_t *b, const char *s)
{
	if (!strpbrk(s, ",\"\r\n") && s[0] != '=' && s[0] != '+' && s[0] != '-' && s[0] != '@') {
		buf_puts(b, s);
		return;
	}
	/* Quote, and defuse spreadsheet formulas (a leading = + - @) with a '. */
	buf_putc(b, '"');
	if (s[0] == '=' || s[0] == '-' || s[0] == '@')
		buf_putc(b, '\'');
	for (; *s; s++) {
		if (*s == '"')
			buf_putc(b, '"');
		buf_putc(b, *s);
	}
	buf_putc(b, '"');
}

int trk_api_recipients(trk_api_q_t *q, const char *id, const char *states, const char *after,
                       int limit, int csv, buf_t *b)
{
	/* the state set */
	int want[MSG_ST__COUNT] = {0}, nwant = 0;
	if (!states || !*states) {
		for (int i = 0; i < MSG_ST__COUNT; i++)
			if (i != MSG_ST_DELIVERED)
				want[i] = 1, nwant++;
	} else {
		char tmp[256];
		snprintf(tmp, sizeof tmp, "%s", states);
		for (char *save = NULL, *t = strtok_r(tmp, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
			msg_state_t s;
			if (msg_state_parse(t, &s)) {
				buf_printf(b, "unknown state \"%.40s\"", t);
				return TOCSIN_ERR_INVAL;
			}
			if (!want[s])
				want[s] = 1, nwant++;
		}
	}
	if (!csv && (limit < 1 || limit > 10000)) {
		buf_puts(b, "limit must be 1..10000");
		return TOCSIN_ERR_INVAL;
	}
	int after_state = 0;
	int64_t after_rid = 0;
	if (after && *after) {
		char *end;
		long as = strtol(after, &end, 10);
		if (*end == ':')
			after_rid = strtoll(end + 1, &end, 10);
		if (*end || as < 0 || as >= MSG_ST__COUNT || after_rid < 0) {
			buf_puts(b, "after must be the \"next\" value of the previous page");
			return TOCSIN_ERR_INVAL;
		}
		after_state = (int)as;
	}
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
	         "SELECT rid, " TRK_ID_SQL ", addr, state, vendor, code, detail, ts_ms FROM msgs"
	         " WHERE campaign=?1 AND state=?2 AND rid>?3 ORDER BY rid LIMIT ?4",
	         &st))
		return TOCSIN_ERR_IO;
	int rc = 0;
	int64_t rows = 0, last = -1;
	int last_state = 0;
	int64_t left = csv && limit < 0 ? INT64_MAX : limit;
	if (csv)
		rc = buf_puts(b, "id,to,state,vendor,code,detail,ts_ms\r\n");
	else {
		buf_puts(b, "{\"campaign\":");
		jstr(b, id);
		rc = buf_puts(b, ",\"items\":[");
	}
	for (int s = after_state; s < MSG_ST__COUNT && !rc && left > 0; s++) {
		if (!want[s])
			continue;
		sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 2, s);
		sqlite3_bind_int64(st, 3, s == after_state ? after_rid : 0);
		sqlite3_bind_int64(st, 4, left);
		const char *state = msg_state_name((msg_state_t)s);
		while (!rc && sqlite3_step(st) == SQLITE_ROW) {
			last = sqlite3_column_int64(st, 0);
			last_state = s;
			rows++;
			left--;
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
				rc = buf_printf(b, ",%lld\r\n", (long long)sqlite3_column_int64(st, 7));
			} else {
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
				rc = buf_printf(b, ",\"ts_ms\":%lld}", (long long)sqlite3_column_int64(st, 7));
			}
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
	(void)nwant;
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

int trk_api_metrics(trk_api_q_t *q, buf_t *b)
{
	sqlite3_stmt *st;
	buf_puts(b, "# HELP tocsin_messages Messages by campaign, channel, vendor and current state.\n"
	            "# TYPE tocsin_messages gauge\n");
	if (prep(q, "SELECT campaign, vendor, state, SUM(n) FROM counts GROUP BY 1, 2, 3", &st))
		return TOCSIN_ERR_IO;
	while (sqlite3_step(st) == SQLITE_ROW) {
		int64_t n = sqlite3_column_int64(st, 3);
		if (!n)
			continue;
		const cfg_vendor_t *v = cfg_vendor(q->cfg, col(st, 1));
		buf_puts(b, "tocsin_messages{campaign=");
		prom_label(b, col(st, 0));
		buf_printf(b, ",channel=\"%s\",vendor=", v ? msg_channel_name(v->channel) : "");
		prom_label(b, col(st, 1));
		buf_printf(b, ",state=\"%s\"} %lld\n", msg_state_name((msg_state_t)sqlite3_column_int(st, 2)),
		           (long long)n);
	}
	sqlite3_finalize(st);

	buf_puts(b, "# HELP tocsin_vendor_latency_ms Vendor request latency.\n"
	            "# TYPE tocsin_vendor_latency_ms histogram\n");
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
					buf_puts(b, "tocsin_vendor_latency_ms_bucket{vendor=");
					prom_label(b, cur);
					if (trk_lat_bound(k) >= 0)
						buf_printf(b, ",le=\"%d\"} %lld\n", trk_lat_bound(k), (long long)cum);
					else
						buf_printf(b, ",le=\"+Inf\"} %lld\n", (long long)cum);
				}
				buf_puts(b, "tocsin_vendor_latency_ms_sum{vendor=");
				prom_label(b, cur);
				buf_printf(b, "} %lld\ntocsin_vendor_latency_ms_count{vendor=", (long long)sum);
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
			buf_printf(b, ",state=\"%s\"} %d\n", msg_vh_state_name((msg_vh_state_t)s), s == state);
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
