/* tz.c -- IANA time zones (TZif from tzdata), local windows (quiet hours) and RFC 3339 instants. */
#include "core/tz.h"
#include "core/err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TZ_FILE_MAX (256 * 1024) /* the largest zoneinfo file is ~4 KiB */
#define TZ_DEFAULT_DIR "/usr/share/zoneinfo"

/* A POSIX TZ rule date: Mm.w.d (kind 'M'), Jn (kind 'J', 1..365, no Feb 29) or n (kind 'n',
 * 0..365), and the local time of day of the change in seconds. */
typedef struct tz_rdate {
	char kind;
	int m, w, d, n;
	int32_t secs;
} tz_rdate_t;

struct tz {
	char name[72];
	int64_t *trans; /* transition instants, ascending */
	uint8_t *idx;   /* type after each transition */
	int32_t *utoff; /* per type */
	uint8_t *isdst; /* per type */
	size_t ntrans, ntypes;
	/* the footer rule for instants past the last transition */
	int has_rule, rule_dst;
	int32_t std_off, dst_off; /* UTC offsets, east positive */
	tz_rdate_t start, end;
};

int tz_name_ok(const char *name, size_t len)
{
	if (!name || len == 0 || len > 64 || name[0] == '/' || name[len - 1] == '/')
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '+' || c == '-' || c == '/'))
			return 0;
		if (c == '/' && name[i + 1] == '/')
			return 0;
	}
	return 1;
}

static int64_t be64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return (int64_t)v;
}

static int32_t be32(const unsigned char *p)
{
	return (int32_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]);
}

/* days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil) */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

static int is_leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static int mdays(int64_t y, int m)
{
	static const int md[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	return m == 2 && is_leap(y) ? 29 : md[m - 1];
}

static int64_t floor_div(int64_t a, int64_t b)
{
	return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* ------------------------------------------------------------ POSIX TZ rule */

/* [+-]hh[:mm[:ss]] -> seconds; *p advanced. */
static int parse_hms(const char **p, int32_t *out, int maxh)
{
	const char *s = *p;
	int sign = 1;
	if (*s == '+' || *s == '-')
		sign = *s++ == '-' ? -1 : 1;
	if (*s < '0' || *s > '9')
		return -1;
	int h = 0, m = 0, sec = 0;
	while (*s >= '0' && *s <= '9')
		h = h * 10 + (*s++ - '0');
	if (h > maxh)
		return -1;
	if (*s == ':') {
		s++;
		if (s[0] < '0' || s[0] > '5' || s[1] < '0' || s[1] > '9')
			return -1;
		m = (s[0] - '0') * 10 + (s[1] - '0');
		s += 2;
		if (*s == ':') {
			s++;
			if (s[0] < '0' || s[0] > '5' || s[1] < '0' || s[1] > '9')
				return -1;
			sec = (s[0] - '0') * 10 + (s[1] - '0');
			s += 2;
		}
	}
	*out = sign * (h * 3600 + m * 60 + sec);
	*p = s;
	return 0;
}

static int parse_abbr(const char **p)
{
	const char *s = *p;
	if (*s == '<') {
		const char *e = strchr(s, '>');
		if (!e || e - s < 4)
			return -1;
		*p = e + 1;
		return 0;
	}
	size_t n = 0;
	while ((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z'))
		n++;
	if (n < 3)
		return -1;
	*p = s + n;
	return 0;
}

static int parse_num(const char **p, int lo, int hi, int *out)
{
	const char *s = *p;
	if (*s < '0' || *s > '9')
		return -1;
	int v = 0;
	while (*s >= '0' && *s <= '9' && v <= hi)
		v = v * 10 + (*s++ - '0');
	if (v < lo || v > hi)
		return -1;
	*out = v;
	*p = s;
	return 0;
}

static int parse_rdate(const char **p, tz_rdate_t *r)
{
	const char *s = *p;
	memset(r, 0, sizeof *r);
	if (*s == 'M') {
		s++;
		r->kind = 'M';
		if (parse_num(&s, 1, 12, &r->m) || *s++ != '.' || parse_num(&s, 1, 5, &r->w) ||
		    *s++ != '.' || parse_num(&s, 0, 6, &r->d))
			return -1;
	} else if (*s == 'J') {
		s++;
		r->kind = 'J';
		if (parse_num(&s, 1, 365, &r->n))
			return -1;
	} else {
		r->kind = 'n';
		if (parse_num(&s, 0, 365, &r->n))
			return -1;
	}
	r->secs = 7200;
	if (*s == '/') {
		s++;
		if (parse_hms(&s, &r->secs, 167))
			return -1;
	}
	*p = s;
	return 0;
}

/* "EST5EDT,M3.2.0,M11.1.0", "<+0330>-3:30", "UTC0". 0 or -1. */
static int parse_rule(tz_t *z, const char *s)
{
	int32_t off;
	if (parse_abbr(&s) || parse_hms(&s, &off, 24))
		return -1;
	z->std_off = -off;
	z->rule_dst = 0;
	if (!*s) {
		z->has_rule = 1;
		return 0;
	}
	if (parse_abbr(&s))
		return -1;
	z->dst_off = z->std_off + 3600;
	if (*s && *s != ',') {
		if (parse_hms(&s, &off, 24))
			return -1;
		z->dst_off = -off;
	}
	if (*s++ != ',' || parse_rdate(&s, &z->start) || *s++ != ',' || parse_rdate(&s, &z->end) || *s)
		return -1;
	z->rule_dst = 1;
	z->has_rule = 1;
	return 0;
}

/* Days since the epoch of rule date r in year y. */
static int64_t rdate_day(const tz_rdate_t *r, int64_t y)
{
	int64_t jan1 = days_from_civil(y, 1, 1);
	if (r->kind == 'J')
		return jan1 + r->n - 1 + (is_leap(y) && r->n >= 60);
	if (r->kind == 'n')
		return jan1 + r->n;
	int64_t first = days_from_civil(y, r->m, 1);
	int wd = (int)(((first + 4) % 7 + 7) % 7); /* 1970-01-01 was a Thursday */
	int day = 1 + (r->d - wd + 7) % 7 + (r->w - 1) * 7;
	while (day > mdays(y, r->m))
		day -= 7;
	return first + day - 1;
}

static int32_t rule_offset(const tz_t *z, int64_t t)
{
	if (!z->rule_dst)
		return z->std_off;
	int64_t y;
	int m, d;
	civil_from_days(floor_div(t + z->std_off, 86400), &y, &m, &d);
	/* start is written in standard time, end in daylight time */
	int64_t s = rdate_day(&z->start, y) * 86400 + z->start.secs - z->std_off;
	int64_t e = rdate_day(&z->end, y) * 86400 + z->end.secs - z->dst_off;
	int dst = s < e ? (t >= s && t < e) : !(t >= e && t < s);
	return dst ? z->dst_off : z->std_off;
}

/* ------------------------------------------------------------------ TZif */

static int tzif_parse(tz_t *z, const unsigned char *b, size_t n)
{
	if (n < 44 || memcmp(b, "TZif", 4))
		return -1;
	int ver = b[4];
	size_t cnt[6];
	for (int i = 0; i < 6; i++)
		cnt[i] = (uint32_t)be32(b + 20 + 4 * i);
	/* isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt */
	size_t v1 = cnt[3] * 5 + cnt[4] * 6 + cnt[5] + cnt[2] * 8 + cnt[1] + cnt[0];
	const unsigned char *h = b;
	int tsz = 4;
	if (ver >= '2') {
		if (44 + v1 + 44 > n)
			return -1;
		h = b + 44 + v1;
		if (memcmp(h, "TZif", 4))
			return -1;
		for (int i = 0; i < 6; i++)
			cnt[i] = (uint32_t)be32(h + 20 + 4 * i);
		tsz = 8;
	}
	size_t need = cnt[3] * (size_t)(tsz + 1) + cnt[4] * 6 + cnt[5] +
	              cnt[2] * (size_t)(tsz + 4) + cnt[1] + cnt[0];
	if (cnt[4] == 0 || cnt[4] > 256 || cnt[3] > 100000 || (size_t)(h - b) + 44 + need > n)
		return -1;
	const unsigned char *p = h + 44;
	z->ntrans = cnt[3];
	z->ntypes = cnt[4];
	z->trans = calloc(z->ntrans + 1, sizeof *z->trans);
	z->idx = calloc(z->ntrans + 1, 1);
	z->utoff = calloc(z->ntypes, sizeof *z->utoff);
	z->isdst = calloc(z->ntypes, 1);
	if (!z->trans || !z->idx || !z->utoff || !z->isdst)
		return -1;
	for (size_t i = 0; i < z->ntrans; i++, p += tsz)
		z->trans[i] = tsz == 8 ? be64(p) : be32(p);
	for (size_t i = 0; i < z->ntrans; i++, p++) {
		if (*p >= z->ntypes)
			return -1;
		z->idx[i] = *p;
	}
	for (size_t i = 0; i < z->ntypes; i++, p += 6) {
		z->utoff[i] = be32(p);
		z->isdst[i] = p[4];
		if (z->utoff[i] < -26 * 3600 || z->utoff[i] > 26 * 3600)
			return -1;
	}
	p += cnt[5] + cnt[2] * (size_t)(tsz + 4) + cnt[1] + cnt[0];
	if (ver >= '2' && p < b + n && *p == '\n') {
		const unsigned char *e = memchr(p + 1, '\n', (size_t)(b + n - p - 1));
		if (e && e > p + 1) {
			char rule[128];
			size_t rl = (size_t)(e - p - 1);
			if (rl < sizeof rule) {
				memcpy(rule, p + 1, rl);
				rule[rl] = 0;
				if (parse_rule(z, rule))
					z->has_rule = 0;
			}
		}
	}
	return 0;
}

tz_t *tz_load(const char *name, char *err, size_t errlen)
{
	if (!name || !tz_name_ok(name, strlen(name))) {
		snprintf(err, errlen, "unknown time zone \"%.80s\"", name ? name : "");
		return NULL;
	}
	const char *dir = getenv("TZDIR");
	char path[512];
	snprintf(path, sizeof path, "%s/%s", dir && *dir ? dir : TZ_DEFAULT_DIR, name);
	FILE *f = fopen(path, "rb");
	if (!f) {
		if (errno == ENOENT || errno == ENOTDIR)
			snprintf(err, errlen, "unknown time zone \"%s\"", name);
		else
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	unsigned char *b = malloc(TZ_FILE_MAX);
	size_t n = b ? fread(b, 1, TZ_FILE_MAX, f) : 0;
	fclose(f);
	tz_t *z = calloc(1, sizeof *z);
	if (!b || !z || tzif_parse(z, b, n)) {
		snprintf(err, errlen, "unknown time zone \"%s\" (%s is not a TZif file)", name, path);
		free(b);
		tz_free(z);
		return NULL;
	}
	free(b);
	snprintf(z->name, sizeof z->name, "%s", name);
	return z;
}

void tz_free(tz_t *z)
{
	if (!z)
		return;
	free(z->trans);
	free(z->idx);
	free(z->utoff);
	free(z->isdst);
	free(z);
}

const char *tz_name(const tz_t *z) { return z->name; }

int32_t tz_offset(const tz_t *z, int64_t t)
{
	if (z->ntrans == 0 || t < z->trans[0]) {
		if (z->ntrans == 0 && z->has_rule)
			return rule_offset(z, t);
		for (size_t i = 0; i < z->ntypes; i++)
			if (!z->isdst[i])
				return z->utoff[i];
		return z->utoff[0];
	}
	if (t >= z->trans[z->ntrans - 1] && z->has_rule)
		return rule_offset(z, t);
	size_t lo = 0, hi = z->ntrans; /* the last transition <= t */
	while (hi - lo > 1) {
		size_t mid = (lo + hi) / 2;
		if (z->trans[mid] <= t)
			lo = mid;
		else
			hi = mid;
	}
	return z->utoff[z->idx[lo]];
}

/* ------------------------------------------------------------- windows */

int tz_parse_hhmm(const char *s, int *min)
{
	if (!s || strlen(s) != 5 || s[2] != ':')
		return -1;
	for (int i = 0; i < 5; i++)
		if (i != 2 && (s[i] < '0' || s[i] > '9'))
			return -1;
	int h = (s[0] - '0') * 10 + (s[1] - '0'), m = (s[3] - '0') * 10 + (s[4] - '0');
	if (h > 24 || m > 59 || (h == 24 && m))
		return -1;
	*min = h * 60 + m;
	return 0;
}

void tz_fmt_hhmm(int min, char out[6])
{
	if (min < 0 || min > 1440)
		min = 0;
	snprintf(out, 6, "%02d:%02d", min / 60 % 100, min % 60);
}

static int tod_min(const tz_t *z, int64_t t_s)
{
	int64_t l = t_s + tz_offset(z, t_s);
	return (int)((l % 86400 + 86400) % 86400 / 60);
}

static int win_in(tz_window_t w, int m)
{
	if (w.start < w.end)
		return m >= w.start && m < w.end;
	if (w.start > w.end)
		return m >= w.start || m < w.end;
	return 0;
}

int tz_open(const tz_t *z, tz_window_t w, int64_t t_ms)
{
	return win_in(w, tod_min(z, floor_div(t_ms, 1000)));
}

/* The first instant > t_s (seconds) at which local time in z reads `min` minutes after
 * midnight (on a DST gap: the first minute after it). */
static int64_t next_local(const tz_t *z, int64_t t_s, int min)
{
	int64_t local = t_s + tz_offset(z, t_s);
	int64_t cand = floor_div(local, 86400) * 86400 + (int64_t)min * 60;
	if (cand <= local)
		cand += 86400;
	int64_t u = cand - tz_offset(z, t_s);
	u = cand - tz_offset(z, u);
	u = cand - tz_offset(z, u);
	return u > t_s ? u : t_s + 60;
}

int tz_next_open(const tz_t *const *zs, int n, tz_window_t w, int64_t t_ms, int64_t horizon_ms,
                 int64_t *open_ms, int64_t *close_ms)
{
	if (n <= 0 || w.start == w.end)
		return TOCSIN_ERR_NOTFOUND;
	int64_t t0 = floor_div(t_ms, 1000), u = t0, lim = t0 + horizon_ms / 1000;
	for (int iter = 0; iter < 256; iter++) {
		int all = 1;
		for (int i = 0; i < n; i++) {
			if (win_in(w, tod_min(zs[i], u)))
				continue;
			all = 0;
			u = next_local(zs[i], u, w.start);
			/* on a DST gap the start minute may not exist: step to the first open minute */
			for (int k = 0; k < 180 && !win_in(w, tod_min(zs[i], u)); k++)
				u += 60;
		}
		if (u > lim)
			return TOCSIN_ERR_NOTFOUND;
		if (!all)
			continue;
		int64_t c = INT64_MAX;
		for (int i = 0; i < n; i++) {
			int64_t ci = next_local(zs[i], u, w.end);
			if (ci < c)
				c = ci;
		}
		*open_ms = u == t0 ? t_ms : u * 1000;
		*close_ms = c * 1000;
		return 0;
	}
	return TOCSIN_ERR_NOTFOUND;
}

/* ------------------------------------------------------------ RFC 3339 */

static int digits(const char *s, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

int tz_parse_rfc3339(const char *s, int64_t *ms)
{
	int Y, M, D, h, m, sec, frac = 0;
	if (!s || strlen(s) < 20 || strlen(s) > 40 || digits(s, 4, &Y) || s[4] != '-' ||
	    digits(s + 5, 2, &M) || s[7] != '-' || digits(s + 8, 2, &D) ||
	    (s[10] != 'T' && s[10] != 't') || digits(s + 11, 2, &h) || s[13] != ':' ||
	    digits(s + 14, 2, &m) || s[16] != ':' || digits(s + 17, 2, &sec))
		return -1;
	if (Y < 1970 || Y > 9999 || M < 1 || M > 12 || D < 1 || D > mdays(Y, M) || h > 23 ||
	    m > 59 || sec > 60)
		return -1;
	if (sec == 60)
		sec = 59; /* a leap second: the instant before it */
	const char *p = s + 19;
	if (*p == '.') {
		p++;
		int nd = 0;
		while (*p >= '0' && *p <= '9') {
			if (nd < 3)
				frac = frac * 10 + (*p - '0');
			nd++;
			p++;
		}
		if (!nd)
			return -1;
		for (; nd < 3; nd++)
			frac *= 10;
	}
	int off = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int oh, om;
		if (digits(p + 1, 2, &oh) || p[3] != ':' || digits(p + 4, 2, &om) || oh > 23 || om > 59)
			return -1;
		off = (oh * 60 + om) * 60 * (*p == '-' ? -1 : 1);
		p += 6;
	} else {
		return -1;
	}
	if (*p)
		return -1;
	int64_t t = days_from_civil(Y, M, D) * 86400 + h * 3600 + m * 60 + sec - off;
	*ms = t * 1000 + frac;
	return 0;
}

void tz_fmt_local(const tz_t *z, int64_t t_ms, char *out, size_t outlen)
{
	int64_t t = floor_div(t_ms, 1000);
	int32_t off = z ? tz_offset(z, t) : 0;
	int64_t l = t + off, y;
	int mo, d;
	civil_from_days(floor_div(l, 86400), &y, &mo, &d);
	int64_t s = (l % 86400 + 86400) % 86400;
	int ao = off < 0 ? -off : off;
	snprintf(out, outlen, "%04lld-%02d-%02d %02d:%02d%c%02d:%02d", (long long)y, mo, d,
	         (int)(s / 3600), (int)(s / 60 % 60), off < 0 ? '-' : '+', ao / 3600, ao / 60 % 60);
}
