/* tzdb.c -- a recipient's time zone(s): IANA name, else ZIP, else state, else phone prefix (data/tz/). */
#include "core/tzdb.h"
#include "core/err.h"
#include "core/num.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define TZDB_MAX_ZONES 1024  /* distinct zones loaded (the tz database has ~600) */
#define TZDB_MAX_SETS 8192   /* distinct candidate sets */
#define TZDB_MAX_ROWS 100000 /* rows of one table */

typedef struct pfx {
	char p[12];
	tzdb_set_t *s;
} pfx_t;

typedef struct zrange {
	int lo, hi;
	tzdb_set_t *s;
} zrange_t;

typedef struct st {
	char code[4];
	tzdb_set_t *s;
} st_t;

struct tzdb {
	tz_t *zones[TZDB_MAX_ZONES];
	size_t nzones;
	tzdb_set_t **sets;
	size_t nsets;
	pfx_t *pfx;
	size_t npfx;
	int pfx_maxlen;
	zrange_t *zr;
	size_t nzr;
	st_t *st;
	size_t nst;
};

const char *tzdb_src_name(tzdb_src_t s)
{
	static const char *const n[] = {"none", "timezone", "zip", "state", "phone"};
	return (unsigned)s < 5 ? n[s] : "none";
}

/* The zone called name (len bytes), loaded once. NULL with err. */
static const tz_t *zone_get(tzdb_t *db, const char *name, size_t len, char *err, size_t errlen)
{
	char nm[80];
	if (!tz_name_ok(name, len)) {
		snprintf(err, errlen, "unknown time zone \"%.*s\"", (int)(len > 64 ? 64 : len), name);
		return NULL;
	}
	memcpy(nm, name, len);
	nm[len] = 0;
	for (size_t i = 0; i < db->nzones; i++)
		if (!strcmp(tz_name(db->zones[i]), nm))
			return db->zones[i];
	if (db->nzones == TZDB_MAX_ZONES) {
		snprintf(err, errlen, "more than %d distinct time zones", TZDB_MAX_ZONES);
		return NULL;
	}
	tz_t *z = tz_load(nm, err, errlen);
	if (z)
		db->zones[db->nzones++] = z;
	return z;
}

static int zcmp(const void *a, const void *b)
{
	return strcmp(tz_name(*(const tz_t *const *)a), tz_name(*(const tz_t *const *)b));
}

/* Intern the set of zones zs[0..n) (sorted, deduplicated here). */
static tzdb_set_t *set_intern(tzdb_t *db, const tz_t **zs, int n, char *err, size_t errlen)
{
	const tz_t *v[TZDB_SET_MAX];
	int k = 0;
	qsort(zs, (size_t)n, sizeof *zs, zcmp);
	for (int i = 0; i < n; i++)
		if (!k || v[k - 1] != zs[i])
			v[k++] = zs[i];
	char key[1536];
	size_t kl = 0;
	key[0] = 0;
	for (int i = 0; i < k; i++)
		kl += (size_t)snprintf(key + kl, kl < sizeof key ? sizeof key - kl : 0, "%s%s",
		                       i ? "&" : "", tz_name(v[i]));
	if (kl >= sizeof key) {
		snprintf(err, errlen, "zone set too long");
		return NULL;
	}
	for (size_t i = 0; i < db->nsets; i++)
		if (!strcmp(db->sets[i]->key, key))
			return db->sets[i];
	if (db->nsets == TZDB_MAX_SETS) {
		snprintf(err, errlen, "more than %d distinct zone sets", TZDB_MAX_SETS);
		return NULL;
	}
	if (!(db->nsets & (db->nsets + 1)) || !db->sets) {
		size_t cap = db->nsets ? (db->nsets + 1) * 2 : 64;
		tzdb_set_t **ns = realloc(db->sets, cap * sizeof *ns);
		if (!ns)
			return NULL;
		db->sets = ns;
	}
	tzdb_set_t *s = calloc(1, sizeof *s);
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->n = k;
	memcpy(s->z, v, (size_t)k * sizeof v[0]);
	memcpy(s->key, key, kl + 1);
	s->c_valid_until = INT64_MIN;
	db->sets[db->nsets++] = s;
	return s;
}

/* "A&B&C" -> set. */
static tzdb_set_t *set_parse(tzdb_t *db, const char *s, char *err, size_t errlen)
{
	const tz_t *zs[TZDB_SET_MAX];
	int n = 0;
	while (*s) {
		const char *e = strchr(s, '&');
		size_t l = e ? (size_t)(e - s) : strlen(s);
		if (n == TZDB_SET_MAX) {
			snprintf(err, errlen, "more than %d zones", TZDB_SET_MAX);
			return NULL;
		}
		if (!(zs[n++] = zone_get(db, s, l, err, errlen)))
			return NULL;
		s += l + (e != NULL);
	}
	if (!n) {
		snprintf(err, errlen, "no zone");
		return NULL;
	}
	return set_intern(db, zs, n, err, errlen);
}

/* Read a table: calls row(db, fields, nf) for each non-comment line. */
static int table_read(tzdb_t *db, const char *dir, const char *file,
                      int (*row)(tzdb_t *, char **, int, char *, size_t), char *err, size_t errlen)
{
	char path[4096], line[2048], e[256];
	snprintf(path, sizeof path, "%s/%s", dir, file);
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(err, errlen, "%s: %s (the time zone tables: data/tz/SOURCE.md)", path,
		         strerror(errno));
		return TOCSIN_ERR_IO;
	}
	int ln = 0, rc = 0;
	while (fgets(line, sizeof line, f)) {
		ln++;
		if (ln > TZDB_MAX_ROWS) {
			snprintf(err, errlen, "%s: more than %d lines", path, TZDB_MAX_ROWS);
			rc = TOCSIN_ERR_TOOBIG;
			break;
		}
		line[strcspn(line, "\r\n")] = 0;
		if (!line[0] || line[0] == '#')
			continue;
		char *fl[4];
		int nf = 0;
		for (char *s = line, *t; nf < 4 && s; s = t) {
			t = strchr(s, '\t');
			if (t)
				*t++ = 0;
			fl[nf++] = s;
		}
		if ((rc = row(db, fl, nf, e, sizeof e))) {
			snprintf(err, errlen, "%s:%d: %s", path, ln, e);
			break;
		}
	}
	fclose(f);
	return rc;
}

static int row_phone(tzdb_t *db, char **f, int nf, char *err, size_t errlen)
{
	size_t pl = nf == 2 ? strlen(f[0]) : 0;
	if (pl < 1 || pl >= sizeof db->pfx[0].p || strspn(f[0], "0123456789") != pl) {
		snprintf(err, errlen, "want <digits>\\t<zones>");
		return TOCSIN_ERR_INVAL;
	}
	if (!(db->npfx & (db->npfx + 1)) || !db->pfx) {
		pfx_t *n = realloc(db->pfx, (db->npfx + 1) * 2 * sizeof *n);
		if (!n)
			return TOCSIN_ERR_NOMEM;
		db->pfx = n;
	}
	pfx_t *p = &db->pfx[db->npfx];
	memcpy(p->p, f[0], pl + 1);
	if (!(p->s = set_parse(db, f[1], err, errlen)))
		return TOCSIN_ERR_INVAL;
	db->npfx++;
	if ((int)pl > db->pfx_maxlen)
		db->pfx_maxlen = (int)pl;
	return 0;
}

static int zip5(const char *s, size_t len)
{
	char d[6];
	int v;
	if (len != 5)
		return -1;
	memcpy(d, s, 5); /* s need not end after its 5 digits */
	d[5] = 0;
	return num_int(d, 0, 99999, &v) ? -1 : v;
}

static int row_zip(tzdb_t *db, char **f, int nf, char *err, size_t errlen)
{
	int lo = nf == 3 ? zip5(f[0], strlen(f[0])) : -1, hi = nf == 3 ? zip5(f[1], strlen(f[1])) : -1;
	if (lo < 0 || hi < lo || (db->nzr && lo <= db->zr[db->nzr - 1].hi)) {
		snprintf(err, errlen, "want <first>\\t<last>\\t<zones>, ascending and not overlapping");
		return TOCSIN_ERR_INVAL;
	}
	if (!(db->nzr & (db->nzr + 1)) || !db->zr) {
		zrange_t *n = realloc(db->zr, (db->nzr + 1) * 2 * sizeof *n);
		if (!n)
			return TOCSIN_ERR_NOMEM;
		db->zr = n;
	}
	zrange_t *r = &db->zr[db->nzr];
	r->lo = lo;
	r->hi = hi;
	if (!(r->s = set_parse(db, f[2], err, errlen)))
		return TOCSIN_ERR_INVAL;
	db->nzr++;
	return 0;
}

static int row_state(tzdb_t *db, char **f, int nf, char *err, size_t errlen)
{
	if (nf != 2 || strlen(f[0]) != 2) {
		snprintf(err, errlen, "want <USPS code>\\t<zones>");
		return TOCSIN_ERR_INVAL;
	}
	st_t *n = realloc(db->st, (db->nst + 1) * sizeof *n);
	if (!n)
		return TOCSIN_ERR_NOMEM;
	db->st = n;
	snprintf(n[db->nst].code, sizeof n[0].code, "%c%c", f[0][0] & ~0x20, f[0][1] & ~0x20);
	if (!(n[db->nst].s = set_parse(db, f[1], err, errlen)))
		return TOCSIN_ERR_INVAL;
	db->nst++;
	return 0;
}

static int pfx_cmp(const void *a, const void *b)
{
	return strcmp(((const pfx_t *)a)->p, ((const pfx_t *)b)->p);
}

tzdb_t *tzdb_open(const char *dir, char *err, size_t errlen)
{
	char d[4096];
	if (!dir || !*dir) {
		const char *e = getenv("TOCSIN_TZDATA");
		if (e && *e) {
			snprintf(d, sizeof d, "%s", e);
		} else {
			/* data/tz beside the binary (the repository root), else ./data/tz */
			ssize_t n = readlink("/proc/self/exe", d, sizeof d - 16);
			char *sl = n > 0 ? memrchr(d, '/', (size_t)n) : NULL;
			if (sl) {
				snprintf(sl, sizeof d - (size_t)(sl - d), "/data/tz");
				if (access(d, R_OK))
					sl = NULL;
			}
			if (!sl)
				snprintf(d, sizeof d, "data/tz");
		}
		dir = d;
	}
	tzdb_t *db = calloc(1, sizeof *db);
	if (!db) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (table_read(db, dir, "phone.tsv", row_phone, err, errlen) ||
	    table_read(db, dir, "zip.tsv", row_zip, err, errlen) ||
	    table_read(db, dir, "state.tsv", row_state, err, errlen)) {
		tzdb_free(db);
		return NULL;
	}
	if (db->npfx)
		qsort(db->pfx, db->npfx, sizeof *db->pfx, pfx_cmp);
	return db;
}

void tzdb_free(tzdb_t *db)
{
	if (!db)
		return;
	for (size_t i = 0; i < db->nzones; i++)
		tz_free(db->zones[i]);
	for (size_t i = 0; i < db->nsets; i++)
		free(db->sets[i]);
	free(db->sets);
	free(db->pfx);
	free(db->zr);
	free(db->st);
	free(db);
}

static const tzdb_set_t *by_zip(tzdb_t *db, const char *zip, size_t len)
{
	char e[128];
	if (len == 10 && zip[5] == '-')
		len = 5; /* ZIP+4 */
	int z = zip5(zip, len);
	if (z < 0)
		return NULL;
	size_t lo = 0, hi = db->nzr;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (db->zr[mid].hi < z)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < db->nzr && db->zr[lo].lo <= z)
		return db->zr[lo].s;
	/* unknown ZIP: every zone of its 3-digit prefix */
	const tz_t *zs[TZDB_SET_MAX];
	int n = 0, p0 = z / 100 * 100, p1 = p0 + 99;
	for (size_t i = 0; i < db->nzr; i++) {
		if (db->zr[i].hi < p0 || db->zr[i].lo > p1)
			continue;
		for (int k = 0; k < db->zr[i].s->n && n < TZDB_SET_MAX; k++)
			zs[n++] = db->zr[i].s->z[k];
	}
	return n ? set_intern(db, zs, n, e, sizeof e) : NULL;
}

static const tzdb_set_t *by_state(tzdb_t *db, const char *s, size_t len)
{
	if (len != 2)
		return NULL;
	for (size_t i = 0; i < db->nst; i++)
		if (!strncasecmp(db->st[i].code, s, 2))
			return db->st[i].s;
	return NULL;
}

static const tzdb_set_t *by_phone(tzdb_t *db, const char *phone)
{
	if (!phone)
		return NULL;
	if (*phone == '+')
		phone++;
	size_t dl = strspn(phone, "0123456789");
	for (int l = db->pfx_maxlen < (int)dl ? db->pfx_maxlen : (int)dl; l >= 1; l--) {
		pfx_t key;
		memcpy(key.p, phone, (size_t)l);
		key.p[l] = 0;
		pfx_t *h = bsearch(&key, db->pfx, db->npfx, sizeof key, pfx_cmp);
		if (h)
			return h->s;
	}
	return NULL;
}

const tzdb_set_t *tzdb_zone(tzdb_t *db, const char *name, char *err, size_t errlen)
{
	const tz_t *z = zone_get(db, name, strlen(name), err, errlen);
	return z ? set_intern(db, &z, 1, err, errlen) : NULL;
}

const tzdb_set_t *tzdb_lookup(tzdb_t *db, const char *tz, size_t tzlen, const char *zip,
                              size_t ziplen, const char *state, size_t statelen, const char *phone,
                              tzdb_src_t *src, int *rc, char *err, size_t errlen)
{
	*rc = 0;
	*src = TZDB_SRC_NONE;
	const tzdb_set_t *s;
	if (tz && tzlen) {
		const tz_t *z = zone_get(db, tz, tzlen, err, errlen);
		if (!z) {
			*rc = TOCSIN_ERR_INVAL;
			return NULL;
		}
		*src = TZDB_SRC_TZ;
		s = set_intern(db, &z, 1, err, errlen);
		if (!s)
			*rc = TOCSIN_ERR_NOMEM;
		return s;
	}
	if (zip && ziplen && (s = by_zip(db, zip, ziplen))) {
		*src = TZDB_SRC_ZIP;
		return s;
	}
	if (state && statelen && (s = by_state(db, state, statelen))) {
		*src = TZDB_SRC_STATE;
		return s;
	}
	if ((s = by_phone(db, phone))) {
		*src = TZDB_SRC_PHONE;
		return s;
	}
	return NULL;
}

void tzdb_each(tzdb_t *db, void (*fn)(void *ud, tzdb_set_t *s), void *ud)
{
	for (size_t i = 0; i < db->nsets; i++)
		fn(ud, db->sets[i]);
}
