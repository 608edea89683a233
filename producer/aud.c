/* aud.c -- streaming audience readers: RFC 4180 CSV, JSON Lines and SQLite, one row at a time. */
#include "producer/aud.h"
#include "core/err.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define AUD_INBUF (256 * 1024)

struct aud {
	aud_spec_t sp;
	char *path;
	/* file input (CSV, JSONL) */
	int fd;
	int seekable;
	unsigned char *in;
	size_t inlen, inpos;
	int64_t off;  /* file offset of in[inpos] */
	int64_t size; /* file size, 0 unknown */
	int64_t line; /* current line, 1-based */
	int eof;
	/* current record */
	char *rec;
	size_t reclen, reccap;
	size_t *foff; /* field offsets into rec (max_cols + 1) */
	size_t *flen;
	const char **vals;
	size_t nf;
	/* header */
	char **cols;
	size_t ncols;
	/* JSON Lines */
	json_t *jrow;     /* the row being returned */
	json_t *jpending; /* first object, read by aud_open */
	int64_t jpending_line;
	/* SQLite */
	sqlite3 *db;
	sqlite3_stmt *st;
	int64_t rowno;
};

int aud_utf8_ok(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;
	while (i < n) {
		unsigned char c = s[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		size_t k;
		uint32_t cp;
		if (c >= 0xc2 && c <= 0xdf) {
			k = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			k = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			k = 3;
			cp = c & 0x07;
		} else {
			return 0;
		}
		if (n - i <= k)
			return 0;
		for (size_t j = 1; j <= k; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + j] & 0x3f);
		}
		if ((k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += k + 1;
	}
	return 1;
}

/* ---- byte input with our own offsets, so a bad row can be re-read from a line ---- */

static int refill(aud_t *a)
{
	if (a->eof)
		return 0;
	for (;;) {
		ssize_t n = read(a->fd, a->in, AUD_INBUF);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		a->inlen = (size_t)n;
		a->inpos = 0;
		if (n == 0)
			a->eof = 1;
		return n > 0;
	}
}

/* next byte, -1 at EOF, -2 on read error */
static inline int getb(aud_t *a)
{
	if (a->inpos >= a->inlen) {
		int r = refill(a);
		if (r <= 0)
			return r < 0 ? -2 : -1;
	}
	a->off++;
	return a->in[a->inpos++];
}

static inline int peekb(aud_t *a)
{
	if (a->inpos >= a->inlen) {
		int r = refill(a);
		if (r <= 0)
			return -1;
	}
	return a->in[a->inpos];
}

static int seek_to(aud_t *a, int64_t off)
{
	if (lseek(a->fd, (off_t)off, SEEK_SET) < 0)
		return -1;
	a->off = off;
	a->inlen = a->inpos = 0;
	a->eof = 0;
	return 0;
}

/* ---- record building ---- */

typedef struct recst {
	int too_big, too_many, nul, quoted_field;
} recst_t;

static inline void rec_put(aud_t *a, recst_t *st, int c)
{
	if (a->reclen + 1 >= a->reccap) {
		st->too_big = 1;
		return;
	}
	if (c == 0)
		st->nul = 1;
	a->rec[a->reclen++] = (char)c;
}

static inline void rec_end_field(aud_t *a, recst_t *st, size_t fstart)
{
	if (st->too_big) {
		return;
	}
	if (a->nf >= a->sp.max_cols) {
		st->too_many = 1;
		a->reclen = fstart;
		return;
	}
	a->foff[a->nf] = fstart;
	a->flen[a->nf] = a->reclen - fstart;
	a->nf++;
	if (a->reclen + 1 >= a->reccap) {
		st->too_big = 1;
		return;
	}
	a->rec[a->reclen++] = 0;
}

enum { S_START, S_UNQ, S_Q, S_QQ };

/* Parse one CSV record. 1 = record (maybe flagged), 0 = EOF, -2 = read error,
 * -3 = unterminated quote (rows after the start line will be re-read). */
static int csv_record(aud_t *a, recst_t *st, int64_t *start_line)
{
	for (;;) {
		memset(st, 0, sizeof *st);
		a->nf = 0;
		a->reclen = 0;
		*start_line = a->line;
		int64_t first_nl = -1;
		int state = S_START, any = 0;
		size_t fstart = 0;
		for (;;) {
			int c = getb(a);
			if (c == -2)
				return -2;
			if (c == -1) {
				if (state == S_Q) {
					if (first_nl >= 0 && a->seekable) {
						if (seek_to(a, first_nl))
							return -2;
						a->line = *start_line + 1;
					}
					return -3;
				}
				if (!any)
					return 0;
				rec_end_field(a, st, fstart);
				return 1;
			}
			any = 1;
			if (c == '\n')
				a->line++;
			switch (state) {
			case S_START:
				fstart = a->reclen;
				if (c == '"') {
					state = S_Q;
					st->quoted_field = 1;
					break;
				}
				/* fallthrough */
			case S_UNQ:
				if (c == ',') {
					rec_end_field(a, st, fstart);
					state = S_START;
				} else if (c == '\n' || c == '\r') {
					if (c == '\r' && peekb(a) == '\n') {
						getb(a);
						a->line++;
					}
					rec_end_field(a, st, fstart);
					goto done;
				} else {
					rec_put(a, st, c);
					state = S_UNQ;
				}
				break;
			case S_Q:
				if (c == '"')
					state = S_QQ;
				else {
					if (c == '\n' && first_nl < 0)
						first_nl = a->off;
					rec_put(a, st, c);
				}
				break;
			case S_QQ:
				if (c == '"') {
					rec_put(a, st, '"');
					state = S_Q;
				} else if (c == ',') {
					rec_end_field(a, st, fstart);
					state = S_START;
				} else if (c == '\n' || c == '\r') {
					if (c == '\r' && peekb(a) == '\n') {
						getb(a);
						a->line++;
					}
					rec_end_field(a, st, fstart);
					goto done;
				} else { /* text after a closing quote: keep it (lenient) */
					rec_put(a, st, c);
					state = S_UNQ;
				}
				break;
			}
		}
	done:
		/* a blank line is no row */
		if (a->nf == 1 && a->flen[0] == 0 && !st->quoted_field && !st->too_big)
			continue;
		return 1;
	}
}

static void set_vals(aud_t *a, aud_row_t *r)
{
	for (size_t i = 0; i < a->nf; i++)
		a->vals[i] = a->rec + a->foff[i];
	r->vals = a->vals;
	r->lens = a->flen;
	r->n = a->nf;
}

static int csv_next(aud_t *a, aud_row_t *r)
{
	recst_t st;
	int64_t line;
	int rc = csv_record(a, &st, &line);
	r->line = line;
	r->why[0] = 0;
	r->n = 0;
	r->vals = a->vals;
	r->lens = a->flen;
	if (rc == 0)
		return 0;
	if (rc == -2) {
		snprintf(r->why, sizeof r->why, "read error: %s", strerror(errno));
		return TOCSIN_ERR_IO;
	}
	if (rc == -3) {
		snprintf(r->why, sizeof r->why, "unterminated quoted field");
		return TOCSIN_ERR_INVAL;
	}
	set_vals(a, r);
	if (st.too_big) {
		snprintf(r->why, sizeof r->why, "row longer than %zu bytes", a->sp.max_record);
		r->n = 0;
		return TOCSIN_ERR_INVAL;
	}
	if (st.too_many || a->nf != a->ncols) {
		snprintf(r->why, sizeof r->why, "%s%zu fields, the header has %zu",
		         st.too_many ? "more than " : "", a->nf, a->ncols);
		return TOCSIN_ERR_INVAL;
	}
	for (size_t i = 0; i < a->nf; i++) {
		if (memchr(a->vals[i], 0, a->flen[i])) {
			snprintf(r->why, sizeof r->why, "NUL byte in column %s", a->cols[i]);
			return TOCSIN_ERR_INVAL;
		}
		if (!aud_utf8_ok(a->vals[i], a->flen[i])) {
			snprintf(r->why, sizeof r->why, "invalid UTF-8 in column %s", a->cols[i]);
			return TOCSIN_ERR_INVAL;
		}
	}
	return 1;
}

static int set_cols(aud_t *a, char **names, size_t n, int64_t line, char *err, size_t errlen)
{
	a->cols = names;
	a->ncols = n;
	for (size_t i = 0; i < n; i++) {
		if (!names[i][0]) {
			snprintf(err, errlen, "%s:%lld: column %zu has no name", a->path,
			         (long long)line, i + 1);
			return -1;
		}
		for (size_t j = 0; j < i; j++)
			if (!strcmp(names[i], names[j])) {
				snprintf(err, errlen,
				         "%s:%lld: duplicate column name \"%s\" (columns %zu and %zu)",
				         a->path, (long long)line, names[i], j + 1, i + 1);
				return -1;
			}
	}
	return 0;
}

static char *trimdup(const char *s, size_t n)
{
	while (n && (*s == ' ' || *s == '\t')) {
		s++;
		n--;
	}
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	char *d = malloc(n + 1);
	if (d) {
		memcpy(d, s, n);
		d[n] = 0;
	}
	return d;
}

static int csv_header(aud_t *a, char *err, size_t errlen)
{
	/* UTF-8 BOM */
	if (peekb(a) == 0xef) {
		if (a->inlen - a->inpos >= 3 && !memcmp(a->in + a->inpos, "\xef\xbb\xbf", 3)) {
			a->inpos += 3;
			a->off += 3;
		}
	}
	recst_t st;
	int64_t line;
	int rc = csv_record(a, &st, &line);
	if (rc == 0) {
		snprintf(err, errlen, "%s: empty file (no header row)", a->path);
		return -1;
	}
	if (rc == -2) {
		snprintf(err, errlen, "%s: %s", a->path, strerror(errno));
		return -1;
	}
	if (rc == -3 || st.too_big || st.too_many || st.nul) {
		snprintf(err, errlen, "%s:%lld: bad header row (%s)", a->path, (long long)line,
		         rc == -3 ? "unterminated quote"
		         : st.nul ? "NUL byte"
		                  : "too long or too many columns");
		return -1;
	}
	char **names = calloc(a->nf + 1, sizeof *names);
	if (!names)
		return -1;
	for (size_t i = 0; i < a->nf; i++) {
		names[i] = trimdup(a->rec + a->foff[i], a->flen[i]);
		if (!names[i] || !aud_utf8_ok(names[i], strlen(names[i]))) {
			a->cols = names;
			a->ncols = i + 1;
			snprintf(err, errlen, "%s:%lld: invalid column name (column %zu)", a->path,
			         (long long)line, i + 1);
			return -1;
		}
	}
	return set_cols(a, names, a->nf, line, err, errlen);
}

/* ---- JSON Lines ---- */

/* Read one line into rec. 1 line, 0 EOF, -2 error; *too_big when it did not fit. */
static int read_line(aud_t *a, int *too_big)
{
	a->reclen = 0;
	*too_big = 0;
	int any = 0;
	for (;;) {
		int c = getb(a);
		if (c == -2)
			return -2;
		if (c == -1)
			break;
		any = 1;
		if (c == '\n') {
			a->line++;
			break;
		}
		if (a->reclen + 1 >= a->reccap)
			*too_big = 1;
		else
			a->rec[a->reclen++] = (char)c;
	}
	if (!any)
		return 0;
	if (a->reclen && a->rec[a->reclen - 1] == '\r')
		a->reclen--;
	a->rec[a->reclen] = 0;
	return 1;
}

static int blank(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t')
			return 0;
	return 1;
}

/* next JSON object line: 1 ok (*out), 0 EOF, -2 io, TOCSIN_ERR_INVAL bad line with why */
static int jsonl_obj(aud_t *a, json_t **out, int64_t *line, char *why, size_t whylen)
{
	for (;;) {
		int too_big;
		*line = a->line;
		int rc = read_line(a, &too_big);
		if (rc <= 0)
			return rc;
		if (too_big) {
			snprintf(why, whylen, "row longer than %zu bytes", a->sp.max_record);
			return TOCSIN_ERR_INVAL;
		}
		if (blank(a->rec, a->reclen))
			continue;
		if (memchr(a->rec, 0, a->reclen)) {
			snprintf(why, whylen, "NUL byte");
			return TOCSIN_ERR_INVAL;
		}
		json_error_t je;
		json_t *j = json_loadb(a->rec, a->reclen, JSON_REJECT_DUPLICATES, &je);
		if (!j) {
			snprintf(why, whylen, "invalid JSON at column %d: %s", je.column, je.text);
			return TOCSIN_ERR_INVAL;
		}
		if (!json_is_object(j)) {
			json_decref(j);
			snprintf(why, whylen, "not a JSON object");
			return TOCSIN_ERR_INVAL;
		}
		*out = j;
		return 1;
	}
}

static int jsonl_fill(aud_t *a, json_t *j, aud_row_t *r)
{
	a->reclen = 0;
	a->nf = a->ncols;
	for (size_t i = 0; i < a->ncols; i++) {
		json_t *v = json_object_get(j, a->cols[i]);
		a->flen[i] = 0;
		if (!v || json_is_null(v)) {
			a->vals[i] = NULL;
		} else if (json_is_string(v)) {
			a->vals[i] = json_string_value(v);
			a->flen[i] = json_string_length(v);
			if (memchr(a->vals[i], 0, a->flen[i])) {
				snprintf(r->why, sizeof r->why, "NUL character in field %s",
				         a->cols[i]);
				return TOCSIN_ERR_INVAL;
			}
		} else {
			char tmp[64];
			int n;
			if (json_is_integer(v))
				n = snprintf(tmp, sizeof tmp, "%lld", (long long)json_integer_value(v));
			else if (json_is_real(v))
				n = snprintf(tmp, sizeof tmp, "%.15g", json_real_value(v));
			else if (json_is_boolean(v))
				n = snprintf(tmp, sizeof tmp, "%s", json_is_true(v) ? "true" : "false");
			else {
				snprintf(r->why, sizeof r->why,
				         "field %s is not a string or number", a->cols[i]);
				return TOCSIN_ERR_INVAL;
			}
			if (a->reclen + (size_t)n + 1 >= a->reccap) {
				snprintf(r->why, sizeof r->why, "row too long");
				return TOCSIN_ERR_INVAL;
			}
			memcpy(a->rec + a->reclen, tmp, (size_t)n + 1);
			a->vals[i] = a->rec + a->reclen;
			a->flen[i] = (size_t)n;
			a->reclen += (size_t)n + 1;
		}
	}
	r->vals = a->vals;
	r->lens = a->flen;
	r->n = a->ncols;
	return 1;
}

static int jsonl_next(aud_t *a, aud_row_t *r)
{
	json_decref(a->jrow);
	a->jrow = NULL;
	r->why[0] = 0;
	r->n = 0;
	r->vals = a->vals;
	r->lens = a->flen;
	json_t *j;
	int rc;
	if (a->jpending) {
		j = a->jpending;
		a->jpending = NULL;
		r->line = a->jpending_line;
		rc = 1;
	} else {
		rc = jsonl_obj(a, &j, &r->line, r->why, sizeof r->why);
	}
	if (rc == -2) {
		snprintf(r->why, sizeof r->why, "read error: %s", strerror(errno));
		return TOCSIN_ERR_IO;
	}
	if (rc <= 0)
		return rc;
	a->jrow = j;
	return jsonl_fill(a, j, r);
}

static int jsonl_header(aud_t *a, char *err, size_t errlen)
{
	char why[200];
	for (;;) {
		json_t *j;
		int64_t line;
		int rc = jsonl_obj(a, &j, &line, why, sizeof why);
		if (rc == 0) {
			snprintf(err, errlen, "%s: empty file (no JSON object)", a->path);
			return -1;
		}
		if (rc == -2) {
			snprintf(err, errlen, "%s: %s", a->path, strerror(errno));
			return -1;
		}
		if (rc < 0) {
			snprintf(err, errlen, "%s:%lld: %s (the first line names the fields)",
			         a->path, (long long)line, why);
			return -1;
		}
		size_t n = json_object_size(j);
		if (n > a->sp.max_cols) {
			json_decref(j);
			snprintf(err, errlen, "%s:%lld: more than %zu fields", a->path,
			         (long long)line, a->sp.max_cols);
			return -1;
		}
		char **names = calloc(n + 1, sizeof *names);
		size_t k = 0;
		const char *key;
		json_t *v;
		json_object_foreach(j, key, v)
		{
			(void)v;
			names[k++] = strdup(key);
		}
		a->jpending = j;
		a->jpending_line = line;
		return set_cols(a, names, k, line, err, errlen);
	}
}

/* ---- SQLite ---- */

static int sqlite_open(aud_t *a, char *err, size_t errlen)
{
	if (access(a->path, R_OK)) {
		snprintf(err, errlen, "%s: %s", a->path, strerror(errno));
		return -1;
	}
	if (sqlite3_open_v2(a->path, &a->db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", a->path, a->db ? sqlite3_errmsg(a->db) : "cannot open");
		return -1;
	}
	char sql[1200];
	if (a->sp.query) {
		snprintf(sql, sizeof sql, "%s", a->sp.query);
	} else if (a->sp.table) {
		if (strchr(a->sp.table, '"') || strlen(a->sp.table) > 512) {
			snprintf(err, errlen, "%s: bad table name", a->path);
			return -1;
		}
		snprintf(sql, sizeof sql, "SELECT * FROM \"%s\"", a->sp.table);
	} else {
		snprintf(err, errlen, "%s: a SQLite audience needs \"table\" or \"query\"", a->path);
		return -1;
	}
	if (sqlite3_prepare_v2(a->db, sql, -1, &a->st, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", a->path, sqlite3_errmsg(a->db));
		return -1;
	}
	int n = sqlite3_column_count(a->st);
	if (n <= 0 || (size_t)n > a->sp.max_cols) {
		snprintf(err, errlen, "%s: the query returns %d columns", a->path, n);
		return -1;
	}
	char **names = calloc((size_t)n + 1, sizeof *names);
	for (int i = 0; i < n; i++)
		names[i] = strdup(sqlite3_column_name(a->st, i));
	return set_cols(a, names, (size_t)n, 0, err, errlen);
}

static int sqlite_next(aud_t *a, aud_row_t *r)
{
	r->why[0] = 0;
	r->n = 0;
	r->vals = a->vals;
	r->lens = a->flen;
	int rc = sqlite3_step(a->st);
	if (rc == SQLITE_DONE)
		return 0;
	r->line = ++a->rowno;
	if (rc != SQLITE_ROW) {
		snprintf(r->why, sizeof r->why, "%s", sqlite3_errmsg(a->db));
		return TOCSIN_ERR_IO;
	}
	size_t total = 0;
	for (size_t i = 0; i < a->ncols; i++) {
		if (sqlite3_column_type(a->st, (int)i) == SQLITE_NULL) {
			a->vals[i] = NULL;
			a->flen[i] = 0;
			continue;
		}
		a->vals[i] = (const char *)sqlite3_column_text(a->st, (int)i);
		a->flen[i] = (size_t)sqlite3_column_bytes(a->st, (int)i);
		total += a->flen[i];
	}
	r->n = a->ncols;
	if (total > a->sp.max_record) {
		snprintf(r->why, sizeof r->why, "row longer than %zu bytes", a->sp.max_record);
		return TOCSIN_ERR_INVAL;
	}
	for (size_t i = 0; i < a->ncols; i++) {
		if (!a->vals[i])
			continue;
		if (memchr(a->vals[i], 0, a->flen[i])) {
			snprintf(r->why, sizeof r->why, "NUL byte in column %s", a->cols[i]);
			return TOCSIN_ERR_INVAL;
		}
		if (!aud_utf8_ok(a->vals[i], a->flen[i])) {
			snprintf(r->why, sizeof r->why, "invalid UTF-8 in column %s", a->cols[i]);
			return TOCSIN_ERR_INVAL;
		}
	}
	return 1;
}

/* ---- public ---- */

aud_t *aud_open(const aud_spec_t *spec, char *err, size_t errlen)
{
	aud_t *a = calloc(1, sizeof *a);
	if (!a) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	a->sp = *spec;
	a->fd = -1;
	a->line = 1;
	if (!a->sp.max_record)
		a->sp.max_record = 1 << 20;
	if (!a->sp.max_cols)
		a->sp.max_cols = 1024;
	a->path = strdup(spec->path ? spec->path : "");
	a->reccap = a->sp.max_record + 1;
	a->rec = malloc(a->reccap);
	a->foff = calloc(a->sp.max_cols + 1, sizeof *a->foff);
	a->flen = calloc(a->sp.max_cols + 1, sizeof *a->flen);
	a->vals = calloc(a->sp.max_cols + 1, sizeof *a->vals);
	if (!a->path || !a->rec || !a->foff || !a->flen || !a->vals) {
		snprintf(err, errlen, "out of memory");
		aud_free(a);
		return NULL;
	}
	if (spec->fmt == AUD_SQLITE) {
		if (sqlite_open(a, err, errlen)) {
			aud_free(a);
			return NULL;
		}
		return a;
	}
	a->fd = open(a->path, O_RDONLY | O_CLOEXEC);
	struct stat sb;
	if (a->fd < 0 || fstat(a->fd, &sb)) {
		snprintf(err, errlen, "%s: %s", a->path, strerror(errno));
		aud_free(a);
		return NULL;
	}
	if (S_ISDIR(sb.st_mode)) {
		snprintf(err, errlen, "%s: is a directory", a->path);
		aud_free(a);
		return NULL;
	}
	a->seekable = S_ISREG(sb.st_mode);
	a->size = a->seekable ? (int64_t)sb.st_size : 0;
	a->in = malloc(AUD_INBUF);
	if (!a->in) {
		snprintf(err, errlen, "out of memory");
		aud_free(a);
		return NULL;
	}
	int rc = spec->fmt == AUD_JSONL ? jsonl_header(a, err, errlen) : csv_header(a, err, errlen);
	if (rc) {
		aud_free(a);
		return NULL;
	}
	return a;
}

void aud_free(aud_t *a)
{
	if (!a)
		return;
	if (a->fd >= 0)
		close(a->fd);
	if (a->st)
		sqlite3_finalize(a->st);
	if (a->db)
		sqlite3_close(a->db);
	json_decref(a->jrow);
	json_decref(a->jpending);
	for (size_t i = 0; a->cols && i < a->ncols; i++)
		free(a->cols[i]);
	free(a->cols);
	free(a->in);
	free(a->rec);
	free(a->foff);
	free(a->flen);
	free(a->vals);
	free(a->path);
	free(a);
}

size_t aud_ncols(const aud_t *a) { return a->ncols; }
const char *const *aud_cols(const aud_t *a) { return (const char *const *)a->cols; }

int aud_col(const aud_t *a, const char *name)
{
	for (size_t i = 0; i < a->ncols; i++)
		if (!strcmp(a->cols[i], name))
			return (int)i;
	return -1;
}

int aud_next(aud_t *a, aud_row_t *r)
{
	switch (a->sp.fmt) {
	case AUD_JSONL: return jsonl_next(a, r);
	case AUD_SQLITE: return sqlite_next(a, r);
	default: return csv_next(a, r);
	}
}

void aud_progress(const aud_t *a, int64_t *done, int64_t *total)
{
	*done = a->sp.fmt == AUD_SQLITE ? a->rowno : a->off;
	*total = a->sp.fmt == AUD_SQLITE ? 0 : a->size;
}
