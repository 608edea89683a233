/* test_tz.c -- core/tz (TZif zones, windows, RFC 3339), core/tzdb (data/tz lookups), core/clock's offset. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/tz.h"
#include "core/tzdb.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t at(const char *rfc)
{
	int64_t ms = 0;
	assert_int_equal(tz_parse_rfc3339(rfc, &ms), 0);
	return ms;
}

static void test_rfc3339(void **st)
{
	(void)st;
	int64_t ms;
	assert_int_equal(tz_parse_rfc3339("1970-01-01T00:00:00Z", &ms), 0);
	assert_true(ms == 0);
	assert_int_equal(tz_parse_rfc3339("2026-12-04T07:00:00-05:00", &ms), 0);
	assert_true(ms == 1796385600000LL);
	assert_true(at("2026-12-04T12:00:00.25Z") == 1796385600250LL);
	assert_true(at("2026-12-04T13:30:00+01:30") == 1796385600000LL);
	const char *bad[] = {"",
	                     "now",
	                     "2026-12-04",
	                     "2026-12-04T07:00:00",
	                     "2026-13-04T07:00:00Z",
	                     "2026-02-30T07:00:00Z",
	                     "2026-12-04T25:00:00Z",
	                     "2026-12-04T07:60:00Z",
	                     "2026-12-04T07:00:00+24:00",
	                     "2026-12-04T07:00:00-05:00x",
	                     "2026-12-04 07:00:00Z",
	                     "2026-12-04T07:00:00.Z",
	                     "1969-12-31T23:59:59Z"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(tz_parse_rfc3339(bad[i], &ms), -1);
}

static void test_hhmm(void **st)
{
	(void)st;
	int m = -1;
	assert_int_equal(tz_parse_hhmm("08:00", &m), 0);
	assert_int_equal(m, 480);
	assert_int_equal(tz_parse_hhmm("24:00", &m), 0);
	assert_int_equal(m, 1440);
	const char *bad[] = {"25:00", "24:01", "8:00",  "08:60", "08-00",
	                     "0800",  "",      "aa:bb", "08:00 "};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(tz_parse_hhmm(bad[i], &m), -1);
	char out[6];
	tz_fmt_hhmm(1230, out);
	assert_string_equal(out, "20:30");
}

static void test_zones(void **st)
{
	(void)st;
	char err[256];
	tz_t *ny = tz_load("America/New_York", err, sizeof err);
	tz_t *phx = tz_load("America/Phoenix", err, sizeof err);
	tz_t *syd = tz_load("Australia/Sydney", err, sizeof err);
	assert_non_null(ny);
	assert_non_null(phx);
	assert_non_null(syd);
	/* winter and summer, past the last transition of the file (the POSIX rule) */
	assert_int_equal(tz_offset(ny, at("2026-12-04T03:30:00Z") / 1000), -5 * 3600);
	assert_int_equal(tz_offset(ny, at("2026-07-04T12:00:00Z") / 1000), -4 * 3600);
	assert_int_equal(tz_offset(ny, at("2040-07-04T12:00:00Z") / 1000), -4 * 3600);
	assert_int_equal(tz_offset(ny, at("2040-01-04T12:00:00Z") / 1000), -5 * 3600);
	/* DST starts 2027-03-14 02:00 EST = 07:00Z */
	assert_int_equal(tz_offset(ny, at("2027-03-14T06:59:59Z") / 1000), -5 * 3600);
	assert_int_equal(tz_offset(ny, at("2027-03-14T07:00:00Z") / 1000), -4 * 3600);
	/* and ends 2027-11-07 02:00 EDT = 06:00Z */
	assert_int_equal(tz_offset(ny, at("2027-11-07T05:59:59Z") / 1000), -4 * 3600);
	assert_int_equal(tz_offset(ny, at("2027-11-07T06:00:00Z") / 1000), -5 * 3600);
	/* Phoenix: no DST */
	assert_int_equal(tz_offset(phx, at("2026-07-04T12:00:00Z") / 1000), -7 * 3600);
	assert_int_equal(tz_offset(phx, at("2036-07-04T12:00:00Z") / 1000), -7 * 3600);
	/* southern hemisphere: DST across new year */
	assert_int_equal(tz_offset(syd, at("2035-01-10T00:00:00Z") / 1000), 11 * 3600);
	assert_int_equal(tz_offset(syd, at("2035-07-10T00:00:00Z") / 1000), 10 * 3600);
	char s[64];
	tz_fmt_local(ny, at("2026-12-04T03:30:00Z"), s, sizeof s);
	assert_string_equal(s, "2026-12-03 22:30-05:00");
	/* refusals */
	const char *bad[] = {"Mars/Base", "../etc/passwd",    "/etc/passwd", "America//New_York",
	                     "",          "America/New York", "zone.tab"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err[0] = 0;
		assert_null(tz_load(bad[i], err, sizeof err));
		assert_non_null(strstr(err, "unknown time zone"));
	}
	tz_free(ny);
	tz_free(phx);
	tz_free(syd);
}

static void test_window(void **st)
{
	(void)st;
	char err[256];
	tz_t *ny = tz_load("America/New_York", err, sizeof err);
	tz_t *la = tz_load("America/Los_Angeles", err, sizeof err);
	tz_t *gu = tz_load("Asia/Bangkok", err, sizeof err);
	tz_window_t w = {8 * 60, 20 * 60};
	int64_t now = at("2026-12-03T22:30:00-05:00"), o = 0, c = 0;
	/* 22:30 in New York is 19:30 in Los Angeles: open there until 20:00 */
	assert_int_equal(tz_open(ny, w, now), 0);
	assert_int_equal(tz_open(la, w, now), 1);
	const tz_t *one[] = {la};
	assert_int_equal(tz_next_open(one, 1, w, now, 86400000LL * 2, &o, &c), 0);
	assert_true(o == now);
	assert_true(c == at("2026-12-03T20:00:00-08:00"));
	/* New York: held until 08:00 its time */
	const tz_t *e[] = {ny};
	assert_int_equal(tz_next_open(e, 1, w, now, 86400000LL * 2, &o, &c), 0);
	assert_true(o == at("2026-12-04T08:00:00-05:00"));
	assert_true(c == at("2026-12-04T20:00:00-05:00"));
	/* both (uncertain): open when it is 08:00 in LA (11:00 NY) until 20:00 NY (17:00 LA) */
	const tz_t *both[] = {ny, la};
	assert_int_equal(tz_next_open(both, 2, w, now, 86400000LL * 2, &o, &c), 0);
	assert_true(o == at("2026-12-04T08:00:00-08:00"));
	assert_true(c == at("2026-12-04T20:00:00-05:00"));
	/* New York and Bangkok (12 hours apart): 8-20 in one is 20-8 in the other, never both */
	const tz_t *far[] = {ny, gu};
	assert_int_equal(tz_next_open(far, 2, w, now, 86400000LL * 7, &o, &c), TOCSIN_ERR_NOTFOUND);
	/* a window over midnight */
	tz_window_t nightly = {21 * 60, 7 * 60};
	assert_int_equal(tz_open(ny, nightly, now), 1);
	assert_int_equal(tz_open(ny, nightly, at("2026-12-04T07:00:00-05:00")), 0);
	/* across the DST change: 08:00 local on the Sunday DST starts */
	assert_int_equal(tz_next_open(e, 1, w, at("2027-03-14T01:00:00-05:00"), 86400000LL, &o, &c), 0);
	assert_true(o == at("2027-03-14T08:00:00-04:00"));
	tz_free(ny);
	tz_free(la);
	tz_free(gu);
}

static const char *key(const tzdb_set_t *s) { return s ? s->key : "(none)"; }

static void test_tzdb(void **st)
{
	(void)st;
	char err[512] = "";
	tzdb_t *db = tzdb_open("data/tz", err, sizeof err);
	if (!db)
		fail_msg("%s", err);
	tzdb_src_t src;
	int rc;
	/* the pinned cases */
	assert_string_equal(key(tzdb_lookup(db, NULL, 0, NULL, 0, NULL, 0, "+12125551234", &src,
	                                    &rc, err, sizeof err)),
	                    "America/New_York");
	assert_int_equal(src, TZDB_SRC_PHONE);
	/* 907 spans Alaska and the Aleutians in libphonenumber's map: both, so the intersection */
	assert_string_equal(key(tzdb_lookup(db, NULL, 0, NULL, 0, NULL, 0, "+19075551234", &src,
	                                    &rc, err, sizeof err)),
	                    "America/Adak&America/Anchorage");
	/* an exchange the map places in Juneau */
	assert_string_equal(key(tzdb_lookup(db, NULL, 0, NULL, 0, NULL, 0, "+19072225555", &src,
	                                    &rc, err, sizeof err)),
	                    "America/Juneau");
	assert_string_equal(key(tzdb_lookup(db, NULL, 0, "85001", 5, NULL, 0, "+12125551234", &src,
	                                    &rc, err, sizeof err)),
	                    "America/Phoenix");
	assert_int_equal(src, TZDB_SRC_ZIP);
	assert_string_equal(key(tzdb_lookup(db, NULL, 0, "85001-1234", 10, NULL, 0, NULL, &src, &rc,
	                                    err, sizeof err)),
	                    "America/Phoenix");
	/* Puerto Rico: Atlantic time all year, not New York's (the ZIP list lacks it; build.py adds it) */
	assert_string_equal(key(tzdb_lookup(db, NULL, 0, "00901", 5, NULL, 0, NULL, &src, &rc, err,
	                                    sizeof err)),
	                    "America/Puerto_Rico");
	/* a state in two zones */
	assert_string_equal(key(tzdb_lookup(db, NULL, 0, NULL, 0, "tn", 2, "+12125551234", &src,
	                                    &rc, err, sizeof err)),
	                    "America/Chicago&America/New_York");
	assert_int_equal(src, TZDB_SRC_STATE);
	assert_string_equal(key(tzdb_lookup(db, NULL, 0, NULL, 0, "CA", 2, NULL, &src, &rc, err,
	                                    sizeof err)),
	                    "America/Los_Angeles");
	/* Oregon: the ZIP list has Pacific only; Malheur County's Mountain time comes from 49 CFR 71 */
	assert_string_equal(key(tzdb_lookup(db, NULL, 0, NULL, 0, "OR", 2, NULL, &src, &rc, err,
	                                    sizeof err)),
	                    "America/Boise&America/Los_Angeles");
	/* the IANA column wins over everything */
	assert_string_equal(key(tzdb_lookup(db, "America/Denver", 14, "85001", 5, "NY", 2,
	                                    "+12125551234", &src, &rc, err, sizeof err)),
	                    "America/Denver");
	assert_int_equal(src, TZDB_SRC_TZ);
	/* an unknown ZIP: the zones of its 3-digit prefix (838xx: Idaho's Pacific and Mountain) */
	const tzdb_set_t *u = tzdb_lookup(db, NULL, 0, "83899", 5, NULL, 0, NULL, &src, &rc, err,
	                                  sizeof err);
	assert_non_null(u);
	assert_int_equal(src, TZDB_SRC_ZIP);
	/* a ZIP of no known prefix, a bad state: the next source */
	assert_string_equal(key(tzdb_lookup(db, NULL, 0, "00000", 5, "XX", 2, "+13105550000", &src,
	                                    &rc, err, sizeof err)),
	                    "America/Los_Angeles");
	assert_int_equal(src, TZDB_SRC_PHONE);
	/* interned: the same set is the same pointer */
	assert_ptr_equal(tzdb_lookup(db, NULL, 0, NULL, 0, "CA", 2, NULL, &src, &rc, err, sizeof err),
	                 tzdb_lookup(db, "America/Los_Angeles", 19, NULL, 0, NULL, 0, NULL, &src,
	                             &rc, err, sizeof err));
	/* an unknown IANA name is an error, not a fallback */
	err[0] = 0;
	assert_null(
	    tzdb_lookup(db, "Mars/Base", 9, "85001", 5, NULL, 0, NULL, &src, &rc, err, sizeof err));
	assert_int_equal(rc, TOCSIN_ERR_INVAL);
	assert_string_equal(err, "unknown time zone \"Mars/Base\"");
	/* nothing known */
	assert_null(tzdb_lookup(db, NULL, 0, NULL, 0, NULL, 0, "+999", &src, &rc, err, sizeof err));
	assert_int_equal(rc, 0);
	tzdb_free(db);
	/* a missing table is one line naming it */
	assert_null(tzdb_open("tests/no-such-dir", err, sizeof err));
	assert_non_null(strstr(err, "tests/no-such-dir/phone.tsv"));
}

static void test_clock_offset(void **st)
{
	(void)st;
	int64_t v = 0;
	assert_int_equal(clock_parse_offset("-3600000", &v), 0);
	assert_true(v == -3600000);
	assert_int_equal(clock_parse_offset("1h", &v), -1);
	assert_int_equal(clock_parse_offset("", &v), -1);
	assert_int_equal(clock_parse_offset("99999999999999999", &v), -1);
	/* the process's offset is read once from the environment (set by main below) */
	assert_true(clock_wall_offset_ms() == 86400000LL);
	int64_t real = (int64_t)time(NULL) * 1000;
	int64_t w = clock_wall_ms();
	assert_true(w - real >= 86400000LL - 2000 && w - real <= 86400000LL + 2000);
}

int main(void)
{
	setenv("TOCSIN_NOW_OFFSET_MS", "86400000", 1);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rfc3339), cmocka_unit_test(test_hhmm),
	    cmocka_unit_test(test_zones),   cmocka_unit_test(test_window),
	    cmocka_unit_test(test_tzdb),    cmocka_unit_test(test_clock_offset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
