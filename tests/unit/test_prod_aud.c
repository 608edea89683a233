/* test_prod_aud.c -- unit tests for producer/aud: RFC 4180 CSV corpus, JSON Lines, SQLite, bad input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/err.h"
#include "producer/aud.h"

#define DATA "tests/data/audience/"

static aud_t *open_fmt(const char *path, aud_fmt_t fmt, char *err, size_t errlen)
{
	aud_spec_t sp = {.fmt = fmt, .path = path, .table = "people"};
	return aud_open(&sp, err, errlen);
}

typedef struct want {
	int rc; /* 1 row, TOCSIN_ERR_INVAL bad row */
	int64_t line;
	const char *v0; /* first value (rows) or the reason (bad rows) */
	const char *v2; /* third value (rows) or NULL */
} want_t;

static void test_csv_nasty(void **state)
{
	(void)state;
	char err[256];
	aud_t *a = open_fmt(DATA "nasty.csv", AUD_CSV, err, sizeof err);
	if (!a)
		fail_msg("%s", err);
	assert_int_equal(aud_ncols(a), 3);
	assert_string_equal(aud_cols(a)[0], "first_name"); /* the BOM is gone */
	assert_int_equal(aud_col(a, "phone"), 1);
	assert_int_equal(aud_col(a, "nope"), -1);
	static const want_t w[] = {
	    {1, 2, "Ana", "plain"},
	    {1, 3, "Ben, Jr.", "comma, inside"},
	    {1, 4, "Carla", "she said \"hi\""},
	    {1, 5, "Dev", "two\r\nlines"},
	    {TOCSIN_ERR_INVAL, 7, "2 fields, the header has 3", NULL},
	    {TOCSIN_ERR_INVAL, 8, "4 fields, the header has 3", NULL},
	    {1, 9, "Grace", "dup of Ana"},
	    {1, 10, "Hiro", "no phone"},
	    {1, 11, "Imani", "bad area"},
	    {1, 12, "Jon", "N11 exchange"},
	    {1, 13, "Kiara", "too long"},
	    {1, 14, "Luis", "too short"},
	    {1, 15, "Mei", "letters"},
	    {TOCSIN_ERR_INVAL, 16, "invalid UTF-8 in column first_name", NULL},
	    {TOCSIN_ERR_INVAL, 17, "NUL byte in column first_name", NULL},
	    {1, 19, "", "no name"},
	    {1, 20, "Priya", "intl"},
	    {1, 21, "Quinn", "quoted phone"},
	    {TOCSIN_ERR_INVAL, 22, "unterminated quoted field", NULL},
	    {1, 23, "Sam", "after the bad quote"},
	    {1, 24, "Tariq", "dup of Ben"},
	};
	aud_row_t r;
	for (size_t i = 0; i < sizeof w / sizeof w[0]; i++) {
		int rc = aud_next(a, &r);
		if (rc != w[i].rc || r.line != w[i].line)
			fail_msg("row %zu: rc %d line %lld (%s), want rc %d line %lld", i, rc,
			         (long long)r.line, r.why, w[i].rc, (long long)w[i].line);
		if (rc == 1) {
			assert_int_equal(r.n, 3);
			assert_int_equal(r.lens[0], strlen(w[i].v0));
			assert_memory_equal(r.vals[0], w[i].v0, r.lens[0]);
			assert_string_equal(r.vals[2], w[i].v2);
		} else {
			assert_string_equal(r.why, w[i].v0);
		}
	}
	assert_int_equal(aud_next(a, &r), 0);
	assert_int_equal(aud_next(a, &r), 0);
	int64_t done, total;
	aud_progress(a, &done, &total);
	assert_true(total > 0 && done == total);
	aud_free(a);
	aud_free(NULL);
}

static void test_header_errors(void **state)
{
	(void)state;
	char err[256];
	assert_null(open_fmt(DATA "empty.csv", AUD_CSV, err, sizeof err));
	assert_string_equal(err, DATA "empty.csv: empty file (no header row)");
	assert_null(open_fmt(DATA "dupcols.csv", AUD_CSV, err, sizeof err));
	assert_string_equal(err, DATA
	                    "dupcols.csv:1: duplicate column name \"first_name\" (columns 1 and 3)");
	assert_null(open_fmt(DATA "missing.csv", AUD_CSV, err, sizeof err));
	assert_string_equal(err, DATA "missing.csv: No such file or directory");
	assert_null(open_fmt(DATA, AUD_CSV, err, sizeof err));
	assert_non_null(strstr(err, "is a directory"));
	aud_t *a = open_fmt(DATA "header_only.csv", AUD_CSV, err, sizeof err);
	assert_non_null(a);
	aud_row_t r;
	assert_int_equal(aud_next(a, &r), 0);
	aud_free(a);
}

static char *tmpfile_with(const void *p, size_t n)
{
	static char path[64];
	snprintf(path, sizeof path, "/tmp/test_prod_aud.%d.csv", (int)getpid());
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	fwrite(p, 1, n, f);
	fclose(f);
	return path;
}

static void test_big_field(void **state)
{
	(void)state;
	/* a 10 MB field between two good rows: rejected, both neighbours read */
	size_t big = 10 * 1024 * 1024;
	char *s = malloc(big + 200);
	size_t n = (size_t)sprintf(s, "name,phone\nA,202-555-2001\nB,\"");
	memset(s + n, 'x', big);
	n += big;
	n += (size_t)sprintf(s + n, "\"\nC,202-555-2003\n");
	char *path = tmpfile_with(s, n);
	free(s);
	char err[256];
	aud_t *a = open_fmt(path, AUD_CSV, err, sizeof err);
	assert_non_null(a);
	aud_row_t r;
	assert_int_equal(aud_next(a, &r), 1);
	assert_int_equal(aud_next(a, &r), TOCSIN_ERR_INVAL);
	assert_int_equal(r.line, 3);
	assert_string_equal(r.why, "row longer than 1048576 bytes");
	assert_int_equal(aud_next(a, &r), 1);
	assert_int_equal(r.line, 4);
	assert_string_equal(r.vals[0], "C");
	assert_int_equal(aud_next(a, &r), 0);
	aud_free(a);
	unlink(path);
}

static void test_random_bytes(void **state)
{
	(void)state;
	/* never crashes, always ends, every row has the header's width or is rejected */
	unsigned seed = 12345;
	for (int round = 0; round < 200; round++) {
		char buf[4096];
		size_t n = (size_t)(rand_r(&seed) % sizeof buf);
		memcpy(buf, "a,b,c\n", 6);
		for (size_t i = 6; i < n; i++) {
			static const char alpha[] = "ab,\"\n\r\0\xff\xc3\xa9 1";
			buf[i] = alpha[rand_r(&seed) % (sizeof alpha - 1)];
		}
		char *path = tmpfile_with(buf, n < 6 ? 6 : n);
		char err[256];
		aud_t *a = open_fmt(path, AUD_CSV, err, sizeof err);
		assert_non_null(a);
		aud_row_t r;
		int rc, rows = 0;
		while ((rc = aud_next(a, &r)) != 0) {
			assert_true(rc == 1 || rc == TOCSIN_ERR_INVAL);
			if (rc == 1)
				assert_int_equal(r.n, 3);
			assert_true(++rows < 5000);
		}
		aud_free(a);
		unlink(path);
	}
}

static void test_jsonl(void **state)
{
	(void)state;
	char err[256];
	aud_t *a = open_fmt(DATA "people.jsonl", AUD_JSONL, err, sizeof err);
	if (!a)
		fail_msg("%s", err);
	assert_int_equal(aud_ncols(a), 2);
	assert_string_equal(aud_cols(a)[0], "first_name");
	aud_row_t r;
	assert_int_equal(aud_next(a, &r), 1);
	assert_int_equal(r.line, 1);
	assert_string_equal(r.vals[1], "(202) 555-2101");
	assert_int_equal(aud_next(a, &r), 1);
	assert_int_equal(r.line, 2);
	assert_int_equal(aud_next(a, &r), TOCSIN_ERR_INVAL);
	assert_int_equal(r.line, 3);
	assert_non_null(strstr(r.why, "invalid JSON"));
	assert_int_equal(aud_next(a, &r), TOCSIN_ERR_INVAL);
	assert_string_equal(r.why, "not a JSON object");
	assert_int_equal(aud_next(a, &r), 1);
	assert_int_equal(r.line, 5);
	assert_null(r.vals[0]); /* null = no value */
	assert_int_equal(aud_next(a, &r), 1);
	assert_int_equal(r.line, 7);                  /* the blank line 6 is no row */
	assert_string_equal(r.vals[1], "2025552107"); /* a number as text */
	assert_int_equal(aud_next(a, &r), 1);
	assert_int_equal(aud_next(a, &r), 0);
	aud_free(a);
}

static void test_sqlite(void **state)
{
	(void)state;
	char err[256];
	aud_t *a = open_fmt(DATA "people.db", AUD_SQLITE, err, sizeof err);
	if (!a)
		fail_msg("%s", err);
	assert_int_equal(aud_ncols(a), 3);
	assert_string_equal(aud_cols(a)[2], "email");
	aud_row_t r;
	int n = 0;
	while (aud_next(a, &r) == 1) {
		n++;
		assert_int_equal(r.line, n);
		if (n == 2)
			assert_null(r.vals[1]); /* SQL NULL */
	}
	assert_int_equal(n, 5);
	aud_free(a);
	aud_spec_t sp = {.fmt = AUD_SQLITE,
	                 .path = DATA "people.db",
	                 .query = "SELECT first_name AS name, phone FROM people WHERE phone IS NOT NULL"};
	a = aud_open(&sp, err, sizeof err);
	assert_non_null(a);
	assert_string_equal(aud_cols(a)[0], "name");
	n = 0;
	while (aud_next(a, &r) == 1)
		n++;
	assert_int_equal(n, 4);
	aud_free(a);
	sp.query = "SELECT nope FROM people";
	assert_null(aud_open(&sp, err, sizeof err));
	assert_non_null(strstr(err, "no such column"));
}

static void test_utf8(void **state)
{
	(void)state;
	assert_true(aud_utf8_ok("h\xc3\xa9llo \xf0\x9f\x98\x80", 11));
	assert_false(aud_utf8_ok("\xc3", 1));             /* truncated */
	assert_false(aud_utf8_ok("\xc0\xaf", 2));         /* overlong */
	assert_false(aud_utf8_ok("\xed\xa0\x80", 3));     /* surrogate */
	assert_false(aud_utf8_ok("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
	assert_false(aud_utf8_ok("\xff", 1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_csv_nasty), cmocka_unit_test(test_header_errors),
	    cmocka_unit_test(test_big_field), cmocka_unit_test(test_random_bytes),
	    cmocka_unit_test(test_jsonl),     cmocka_unit_test(test_sqlite),
	    cmocka_unit_test(test_utf8),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
