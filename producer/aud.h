/* aud.h -- streaming audience readers: RFC 4180 CSV, JSON Lines and SQLite, one row at a time. */
#ifndef TOCSIN_AUD_H
#define TOCSIN_AUD_H
#include <stddef.h>
#include <stdint.h>

typedef enum aud_fmt { AUD_CSV = 0, AUD_JSONL, AUD_SQLITE } aud_fmt_t;

typedef struct aud_spec {
	aud_fmt_t fmt;
	const char *path;  /* file (CSV, JSONL, SQLite database) */
	const char *table; /* SQLite: read every row of this table ... */
	const char *query; /* ... or of this SELECT (wins over table) */
	size_t max_record; /* bytes in one row; 0 = 1 MiB. Longer rows are rejected. */
	size_t max_cols;   /* columns; 0 = 1024 */
} aud_spec_t;

/* One row. Everything points into the reader and stays valid until the next
 * aud_next() call. vals[i] is NULL when column i has no value (SQL NULL,
 * JSON null or absent key); CSV empty fields are "" with lens[i] = 0. */
typedef struct aud_row {
	const char *const *vals;
	const size_t *lens;
	size_t n;      /* values present in this row (may differ from aud_ncols on a bad row) */
	int64_t line;  /* CSV/JSONL: 1-based line where the row starts; SQLite: 1-based row */
	char why[200]; /* reason when aud_next() returned TOCSIN_ERR_INVAL */
} aud_row_t;

typedef struct aud aud_t;

/* Open the audience and read its header (CSV header row; JSON Lines: the keys
 * of the first object; SQLite: the result columns). Returns a reader the
 * caller owns (aud_free) or NULL with "path: reason" / "path:line: reason"
 * in err: missing or unreadable file, empty file, duplicate or empty column
 * name, bad SQL. Main thread (or any single thread). */
aud_t *aud_open(const aud_spec_t *spec, char *err, size_t errlen);
void aud_free(aud_t *a);

size_t aud_ncols(const aud_t *a);
/* Column names (owned by a). */
const char *const *aud_cols(const aud_t *a);
/* Index of the column named name, or -1. */
int aud_col(const aud_t *a, const char *name);

/* Read the next row: 1 = a good row in *r; 0 = end of input; TOCSIN_ERR_INVAL
 * = a bad row (r->line and r->why say where and why; r->vals may hold what
 * could be parsed) and the reader has moved past it; TOCSIN_ERR_IO = the
 * input could not be read (r->why says why): stop. Never crashes on any input:
 * wrong field count, unterminated quote (the rows after its line are read
 * again), invalid UTF-8, NUL bytes and oversized rows are bad rows.
 * Thread: the reader's owner. */
int aud_next(aud_t *a, aud_row_t *r);

/* Progress: bytes consumed and the input size (0 when unknown). */
void aud_progress(const aud_t *a, int64_t *done, int64_t *total);

/* 1 if s[0..n) is valid UTF-8 (no overlongs, surrogates or > U+10FFFF). */
int aud_utf8_ok(const char *s, size_t n);

#endif
