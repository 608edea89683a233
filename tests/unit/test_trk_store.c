/* test_trk_store.c -- unit tests for tracker/store: every out-of-order pair, duplicates, counts, series. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <sqlite3.h>

#include "core/err.h"
#include "core/hash.h"
#include "tracker/store.h"

static char dbpath[256];

static trk_store_t *fresh(void)
{
	snprintf(dbpath, sizeof dbpath, "/tmp/test_trk_store.%d/sub/dir/t.db", (int)getpid());
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf /tmp/test_trk_store.%d", (int)getpid());
	assert_int_equal(system(cmd), 0);
	char err[256];
	trk_store_t *s = trk_store_open(dbpath, 0, err, sizeof err); /* creates the dirs */
	assert_non_null(s);
	return s;
}

static void cleanup(trk_store_t *s)
{
	trk_store_free(s);
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf /tmp/test_trk_store.%d", (int)getpid());
	assert_int_equal(system(cmd), 0);
}

static msg_status_t ev(const char *id, const char *camp, msg_state_t st, const char *vendor)
{
	msg_status_t s;
	memset(&s, 0, sizeof s);
	s.id = id;
	s.campaign = camp;
	s.channel = MSG_CH_SMS;
	s.to = "+15555550100";
	s.state = st;
	s.vendor = vendor;
	s.latency_ms = 80;
	s.ts_ms = 1700000000000;
	return s;
}

/* The spec, written independently of msg_state_advances: non-final states move
 * forward in order; the first final state a message reaches is where it stays. */
static int is_final(int s) { return s >= MSG_ST_DELIVERED && s != MSG_ST_UNKNOWN_RECEIPT; }
/* the non-final order: queued < retrying < accepted < sent < unknown_receipt */
static int order(int s) { return s == MSG_ST_UNKNOWN_RECEIPT ? 100 : s; }
static int expect(int a, int b)
{
	if (is_final(a))
		return a;
	if (is_final(b))
		return b;
	return order(b) > order(a) ? b : a;
}

static int state_of(trk_store_t *s, const char *id)
{
	sqlite3_stmt *q;
	assert_int_equal(sqlite3_prepare_v2(trk_store_db(s), "SELECT state FROM msgs WHERE id=?1",
	                                    -1, &q, NULL),
	                 SQLITE_OK);
	sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
	int st = sqlite3_step(q) == SQLITE_ROW ? sqlite3_column_int(q, 0) : -1;
	sqlite3_finalize(q);
	return st;
}

static void test_every_pair(void **state)
{
	(void)state;
	trk_store_t *s = fresh();
	int64_t want[MSG_ST__COUNT] = {0};
	char ids[MSG_ST__COUNT * MSG_ST__COUNT][40];
	/* Each pair in its own transaction, then both events again (duplicates)
	 * in a later one: nothing may change. */
	for (int a = 0; a < MSG_ST__COUNT; a++)
		for (int b = 0; b < MSG_ST__COUNT; b++) {
			char *id = ids[a * MSG_ST__COUNT + b];
			snprintf(id, 40, "m-%02d-%02d", a, b);
			assert_int_equal(trk_store_begin(s), 0);
			msg_status_t e1 = ev(id, "c1", (msg_state_t)a, "twilio");
			msg_status_t e2 = ev(id, "c1", (msg_state_t)b, "twilio");
			assert_int_equal(trk_store_status(s, &e1), 1);
			int r = trk_store_status(s, &e2);
			assert_int_equal(r, expect(a, b) == b && b != a ? 1 : 0);
			assert_int_equal(trk_store_commit(s), 0);
			want[expect(a, b)]++;
		}
	assert_int_equal(trk_store_begin(s), 0);
	for (int a = 0; a < MSG_ST__COUNT; a++)
		for (int b = 0; b < MSG_ST__COUNT; b++) {
			const char *id = ids[a * MSG_ST__COUNT + b];
			msg_status_t e1 = ev(id, "c1", (msg_state_t)a, "twilio");
			msg_status_t e2 = ev(id, "c1", (msg_state_t)b, "twilio");
			assert_int_equal(trk_store_status(s, &e2), 0);
			assert_int_equal(trk_store_status(s, &e1), 0);
		}
	assert_int_equal(trk_store_commit(s), 0);
	for (int a = 0; a < MSG_ST__COUNT; a++)
		for (int b = 0; b < MSG_ST__COUNT; b++)
			assert_int_equal(state_of(s, ids[a * MSG_ST__COUNT + b]), expect(a, b));
	trk_counts_t c;
	assert_int_equal(trk_store_counts(s, "c1", &c), 0);
	assert_int_equal(c.total, MSG_ST__COUNT * MSG_ST__COUNT);
	for (int i = 0; i < MSG_ST__COUNT; i++)
		assert_int_equal(c.states[i], want[i]);
	assert_int_equal(c.nvendors, 1);
	assert_string_equal(c.vendors[0], "twilio");
	cleanup(s);
}

static void test_receipt_orders(void **state)
{
	(void)state;
	/* All 6 orders of accepted/sent/delivered end delivered; a late sent
	 * never overwrites delivered. */
	static const int perms[6][3] = {{2, 3, 4}, {2, 4, 3}, {3, 2, 4},
	                                {3, 4, 2}, {4, 2, 3}, {4, 3, 2}};
	trk_store_t *s = fresh();
	assert_int_equal(trk_store_begin(s), 0);
	for (int p = 0; p < 6; p++) {
		char id[16];
		snprintf(id, sizeof id, "p%d", p);
		for (int k = 0; k < 3; k++) {
			msg_status_t e = ev(id, "c2", (msg_state_t)perms[p][k], "vonage");
			assert_true(trk_store_status(s, &e) >= 0);
		}
	}
	assert_int_equal(trk_store_commit(s), 0);
	trk_counts_t c;
	assert_int_equal(trk_store_counts(s, "c2", &c), 0);
	assert_int_equal(c.total, 6);
	assert_int_equal(c.states[MSG_ST_DELIVERED], 6);
	buf_t b;
	buf_init(&b, 4096);
	assert_int_equal(trk_counts_json("c2", &c, &b), 0);
	assert_string_equal(b.p, "{\"campaign\":\"c2\",\"total\":6,\"states\":{\"delivered\":6},"
	                         "\"vendors\":{\"vonage\":{\"delivered\":6}}}");
	buf_free(&b);
	cleanup(s);
}

static void test_vendor_kept_and_moved(void **state)
{
	(void)state;
	trk_store_t *s = fresh();
	assert_int_equal(trk_store_begin(s), 0);
	msg_status_t e = ev("x", "c3", MSG_ST_RETRYING, NULL); /* no vendor yet */
	assert_int_equal(trk_store_status(s, &e), 1);
	assert_int_equal(trk_store_commit(s), 0);
	assert_int_equal(trk_store_begin(s), 0);
	e = ev("x", "c3", MSG_ST_ACCEPTED, "vonage"); /* failover picked vonage */
	assert_int_equal(trk_store_status(s, &e), 1);
	e = ev("x", "other-campaign", MSG_ST_DELIVERED, NULL); /* receipt without vendor */
	assert_int_equal(trk_store_status(s, &e), 1);
	assert_int_equal(trk_store_commit(s), 0);
	trk_counts_t c;
	assert_int_equal(trk_store_counts(s, "c3", &c), 0);
	assert_int_equal(c.total, 1);
	assert_int_equal(c.states[MSG_ST_DELIVERED], 1);
	assert_int_equal(c.nvendors, 1);
	assert_string_equal(c.vendors[0], "vonage");
	assert_int_equal(trk_store_counts(s, "other-campaign", &c), TOCSIN_ERR_NOTFOUND);
	cleanup(s);
}

static void test_series_and_codes(void **state)
{
	(void)state;
	trk_store_t *s = fresh();
	assert_int_equal(trk_store_begin(s), 0);
	for (int i = 0; i < 10; i++) {
		char id[16];
		snprintf(id, sizeof id, "s%d", i);
		msg_status_t e = ev(id, "c4", MSG_ST_ACCEPTED, "twilio");
		e.latency_ms = 100 * (i + 1);
		assert_int_equal(trk_store_status(s, &e), 1);
		assert_int_equal(trk_store_status(s, &e), 0); /* duplicate */
		if (i < 3) {
			msg_status_t f = ev(id, "c4", MSG_ST_UNDELIVERED, "twilio");
			f.code = "30003";
			assert_int_equal(trk_store_status(s, &f), 1);
		}
	}
	assert_int_equal(trk_store_commit(s), 0);
	sqlite3_stmt *q;
	assert_int_equal(sqlite3_prepare_v2(trk_store_db(s),
	                                    "SELECT SUM(sends), SUM(receipts), SUM(failures) FROM series"
	                                    " WHERE campaign='c4'",
	                                    -1, &q, NULL),
	                 SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(q, 0), 10);
	assert_int_equal(sqlite3_column_int(q, 1), 3);
	assert_int_equal(sqlite3_column_int(q, 2), 3);
	sqlite3_finalize(q);
	assert_int_equal(sqlite3_prepare_v2(trk_store_db(s),
	                                    "SELECT code, n FROM codes WHERE campaign='c4'", -1, &q,
	                                    NULL),
	                 SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(q, 0), "30003");
	assert_int_equal(sqlite3_column_int(q, 1), 3);
	sqlite3_finalize(q);
	/* retention: series older than the cut go, counts stay */
	assert_int_equal(trk_store_prune(s, 1700000000), 0);
	assert_int_equal(trk_store_prune(s, 1700000001), 1);
	trk_counts_t c;
	assert_int_equal(trk_store_counts(s, "c4", &c), 0);
	assert_int_equal(c.total, 10);
	assert_int_equal(trk_lat_bucket(5), 0);
	assert_int_equal(trk_lat_bucket(100), 3);
	assert_int_equal(trk_lat_bucket(1000000), TRK_LAT_BUCKETS - 1);
	cleanup(s);
}

static int64_t q1(trk_store_t *s, const char *sql)
{
	sqlite3_stmt *q;
	assert_int_equal(sqlite3_prepare_v2(trk_store_db(s), sql, -1, &q, NULL), SQLITE_OK);
	int64_t v = sqlite3_step(q) == SQLITE_ROW ? sqlite3_column_int64(q, 0) : -1;
	sqlite3_finalize(q);
	return v;
}

/* Every deferred answer is counted the way the SLA monitor counts it: each
 * retrying record with a higher attempt, throttles apart, the last deferral
 * of a give-up too; a re-read record is not counted twice. */
static void test_deferrals_counted(void **state)
{
	(void)state;
	trk_store_t *s = fresh();
	const char *id = "0123456789abcdef0123456789abcdef"; /* cached path */
	assert_int_equal(trk_store_begin(s), 0);
	for (int round = 0; round < 2; round++) { /* round 2: everything re-read */
		for (int a = 1; a <= 3; a++) {
			msg_status_t e = ev(id, "d", MSG_ST_RETRYING, "tw");
			e.attempt = a;
			e.code = a == 1 ? "http_503" : a == 2 ? "curl_28" : "http_429";
			assert_int_equal(trk_store_status(s, &e), round ? 0 : 1);
		}
		msg_status_t f = ev(id, "d", MSG_ST_FAILED, "tw");
		f.attempt = 4;
		f.code = "curl_7";
		f.detail = "gave up after 4 attempts; last answer: connection refused";
		assert_int_equal(trk_store_status(s, &f), round ? 0 : 1);
		msg_status_t p = ev("other", "d", MSG_ST_FAILED, "tw");
		p.code = "21211";
		p.detail = "invalid To";
		assert_int_equal(trk_store_status(s, &p), round ? 0 : 1);
		msg_status_t ok = ev("third", "d", MSG_ST_ACCEPTED, "tw");
		assert_int_equal(trk_store_status(s, &ok), round ? 0 : 1);
	}
	assert_int_equal(trk_store_commit(s), 0);
	assert_int_equal(q1(s, "SELECT SUM(errors) FROM series"), 2); /* 503 + refused */
	assert_int_equal(q1(s, "SELECT SUM(timeouts) FROM series"), 1);
	assert_int_equal(q1(s, "SELECT SUM(throttled) FROM series"), 1);
	assert_int_equal(q1(s, "SELECT SUM(refused) FROM series"), 1);
	assert_int_equal(q1(s, "SELECT SUM(sends) FROM series"), 1);
	assert_int_equal(q1(s, "SELECT SUM(failures) FROM series"), 2);
	/* answers with a latency sample: all but the throttle */
	assert_int_equal(q1(s, "SELECT lat_sum FROM lat_total WHERE vendor='tw'"), 5 * 80);
	trk_counts_t c;
	assert_int_equal(trk_store_counts(s, "d", &c), 0);
	assert_int_equal(c.states[MSG_ST_FAILED], 2);
	assert_int_equal(c.by_channel[MSG_CH_SMS][MSG_ST_FAILED], 2);
	cleanup(s);
}

/* A resend is a new attempt: failed -> (resend) accepted -> delivered; the
 * old attempt's late receipt and re-read records change nothing. */
static void test_resend_new_attempt(void **state)
{
	(void)state;
	for (int cached = 0; cached < 2; cached++) {
		trk_store_t *s = fresh();
		const char *id = cached ? "00112233445566778899aabbccddeeff" : "resent-1";
		assert_int_equal(trk_store_begin(s), 0);
		msg_status_t a = ev(id, "r", MSG_ST_ACCEPTED, "tw");
		a.vendor_ref = "SM-old";
		a.ts_ms = 1000;
		assert_int_equal(trk_store_status(s, &a), 1);
		msg_status_t u = ev(id, "r", MSG_ST_UNDELIVERED, "tw");
		u.vendor_ref = "SM-old";
		u.code = "30003";
		u.latency_ms = -1;
		u.ts_ms = 2000;
		assert_int_equal(trk_store_status(s, &u), 1);
		/* a record of the first attempt re-read (attempt 1, older): nothing */
		msg_status_t r = ev(id, "r", MSG_ST_RETRYING, "tw");
		r.attempt = 1;
		r.ts_ms = 500;
		assert_int_equal(trk_store_status(s, &r), 0);
		assert_int_equal(state_of(s, id), cached ? -1 : MSG_ST_UNDELIVERED);
		/* the resend: attempt 1, later */
		msg_status_t n = ev(id, "r", MSG_ST_ACCEPTED, "vg");
		n.vendor_ref = "VG-new";
		n.attempt = 1;
		n.ts_ms = 3000;
		assert_int_equal(trk_store_status(s, &n), 1);
		/* the old attempt's late receipt: ignored */
		msg_status_t late = u;
		late.ts_ms = 4000;
		late.state = MSG_ST_FAILED;
		assert_int_equal(trk_store_status(s, &late), 0);
		/* the old attempt's records re-read after a crash: ignored */
		assert_int_equal(trk_store_status(s, &a), 0);
		assert_int_equal(trk_store_status(s, &u), 0);
		msg_status_t d = ev(id, "r", MSG_ST_DELIVERED, "vg");
		d.vendor_ref = "VG-new";
		d.latency_ms = -1;
		d.ts_ms = 5000;
		assert_int_equal(trk_store_status(s, &d), 1);
		assert_int_equal(trk_store_commit(s), 0);
		trk_counts_t c;
		assert_int_equal(trk_store_counts(s, "r", &c), 0);
		assert_int_equal(c.total, 1);
		assert_int_equal(c.states[MSG_ST_DELIVERED], 1);
		assert_int_equal(c.states[MSG_ST_UNDELIVERED], 0);
		assert_int_equal(q1(s, "SELECT COALESCE(SUM(n),0) FROM codes WHERE campaign='r'"), 0);
		assert_int_equal(q1(s, "SELECT gen FROM msgs"), 1);
		assert_int_equal(q1(s, "SELECT state FROM attempts WHERE gen=0"), MSG_ST_UNDELIVERED);
		/* a resend that fails again is still one failure, of the new attempt */
		assert_int_equal(trk_store_begin(s), 0);
		msg_status_t x = ev("p2", "r", MSG_ST_FAILED, "tw");
		x.code = "21211";
		x.ts_ms = 1000;
		assert_int_equal(trk_store_status(s, &x), 1);
		x.attempt = 1;
		x.ts_ms = 6000;
		x.code = "21614";
		assert_int_equal(trk_store_status(s, &x), 1);
		assert_int_equal(trk_store_commit(s), 0);
		assert_int_equal(q1(s, "SELECT n FROM codes WHERE code='21614'"), 1);
		assert_int_equal(q1(s, "SELECT n FROM codes WHERE code='21211'"), 0);
		assert_int_equal(trk_store_counts(s, "r", &c), 0);
		assert_int_equal(c.states[MSG_ST_FAILED], 1);
		cleanup(s);
	}
}

/* A store from before the channel of the counts is rebuilt from its messages. */
static void test_migrate(void **state)
{
	(void)state;
	trk_store_t *s = fresh();
	trk_store_free(s);
	sqlite3 *db;
	assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
	assert_int_equal(
	    sqlite3_exec(db,
	                 "DROP TABLE msgs; DROP TABLE counts; DROP TABLE series;"
	                 "CREATE TABLE msgs(rid INTEGER PRIMARY KEY, id NOT NULL UNIQUE,"
	                 " campaign TEXT NOT NULL, channel INTEGER, addr TEXT, state INTEGER"
	                 " NOT NULL, vendor TEXT NOT NULL DEFAULT '', vendor_ref TEXT, code"
	                 " TEXT, detail TEXT, attempt INTEGER, ts_ms INTEGER);"
	                 "CREATE TABLE counts(campaign TEXT NOT NULL, vendor TEXT NOT NULL,"
	                 " state INTEGER NOT NULL, n INTEGER NOT NULL, PRIMARY KEY(campaign,"
	                 " vendor, state)) WITHOUT ROWID;"
	                 "CREATE TABLE series(sec INTEGER NOT NULL, campaign TEXT NOT NULL,"
	                 " vendor TEXT NOT NULL, sends INTEGER NOT NULL, receipts INTEGER NOT"
	                 " NULL, failures INTEGER NOT NULL, lat BLOB, lat_sum INTEGER NOT NULL"
	                 " DEFAULT 0, PRIMARY KEY(sec, campaign, vendor)) WITHOUT ROWID;"
	                 "INSERT INTO msgs(id,campaign,channel,state,vendor) VALUES"
	                 " ('a','m',1,4,'sg'),('b','m',1,4,'sg'),('c','m',0,6,'');"
	                 "INSERT INTO counts VALUES('m','sg',4,2),('m','',6,1);"
	                 "DROP TABLE campaigns; CREATE TABLE campaigns(id TEXT PRIMARY KEY,"
	                 " name TEXT, state INTEGER, queued INTEGER, ts_ms INTEGER);"
	                 "INSERT INTO campaigns VALUES('m','M',1,3,10);",
	                 NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
	char err[256];
	s = trk_store_open(dbpath, 0, err, sizeof err);
	assert_non_null(s);
	trk_counts_t c;
	assert_int_equal(trk_store_counts(s, "m", &c), 0);
	assert_int_equal(c.by_channel[MSG_CH_EMAIL][MSG_ST_DELIVERED], 2);
	assert_int_equal(c.by_channel[MSG_CH_SMS][MSG_ST_CANCELLED], 1);
	assert_int_equal(trk_store_begin(s), 0);
	msg_status_t r = ev("c", "m", MSG_ST_DELIVERED, "tw");
	r.attempt = 1;
	r.ts_ms = 1;
	assert_int_equal(trk_store_status(s, &r), 0); /* cancelled is final and no failure */
	/* the campaigns table gains send_at_ms and qh_urgent; the old row is kept */
	msg_campaign_t mc = {
	    .id = "m", .state = MSG_CAMP_SCHEDULED, .queued = -1, .send_at_ms = 7000, .ts_ms = 20};
	assert_int_equal(trk_store_campaign(s, &mc), 0);
	assert_int_equal(trk_store_commit(s), 0);
	assert_int_equal(q1(s, "SELECT send_at_ms + queued + qh_urgent FROM campaigns"), 7003);
	assert_int_equal(q1(s, "SELECT COUNT(*) FROM campaigns WHERE name='M'"), 1);
	cleanup(s);
}

static void test_campaign_latest_wins(void **state)
{
	(void)state;
	trk_store_t *s = fresh();
	assert_int_equal(trk_store_begin(s), 0);
	msg_campaign_t c = {.id = "c5",
	                    .name = "Rally",
	                    .state = MSG_CAMP_SCHEDULED,
	                    .queued = 10,
	                    .send_at_ms = 1796400000000,
	                    .qh_urgent = 1,
	                    .ts_ms = 2000};
	assert_int_equal(trk_store_campaign(s, &c), 0);
	msg_campaign_t old = {
	    .id = "c5", .name = NULL, .state = MSG_CAMP_LAUNCHING, .queued = -1, .ts_ms = 1000};
	assert_int_equal(trk_store_campaign(s, &old), 0);
	msg_campaign_t p = {.id = "c5", .name = NULL, .state = MSG_CAMP_PAUSED, .queued = -1, .ts_ms = 3000};
	assert_int_equal(trk_store_campaign(s, &p), 0);
	assert_int_equal(trk_store_commit(s), 0);
	sqlite3_stmt *q;
	assert_int_equal(sqlite3_prepare_v2(trk_store_db(s),
	                                    "SELECT name, state, queued, send_at_ms, qh_urgent FROM campaigns"
	                                    " WHERE id='c5'",
	                                    -1, &q, NULL),
	                 SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(q, 0), "Rally");
	assert_int_equal(sqlite3_column_int(q, 1), MSG_CAMP_PAUSED);
	assert_int_equal(sqlite3_column_int(q, 2), 10);
	/* the pause record carries neither: the scheduled one's send_at and override stay */
	assert_int_equal(sqlite3_column_int64(q, 3), 1796400000000);
	assert_int_equal(sqlite3_column_int(q, 4), 1);
	sqlite3_finalize(q);
	trk_counts_t cc;
	assert_int_equal(trk_store_counts(s, "c5", &cc), 0); /* known campaign, no messages yet */
	assert_int_equal(cc.total, 0);
	cleanup(s);
}

static void test_receipt_before_campaign(void **state)
{
	(void)state;
	/* A webhook receipt (no campaign known yet) arrives before the
	 * dispatcher's accepted event: the message moves to its campaign. */
	trk_store_t *s = fresh();
	const char *id = "0123456789abcdef0123456789abcdef"; /* cached, blob id */
	assert_int_equal(trk_store_begin(s), 0);
	msg_status_t r = ev(id, "", MSG_ST_DELIVERED, "twilio");
	assert_int_equal(trk_store_status(s, &r), 1);
	assert_int_equal(trk_store_commit(s), 0);
	assert_int_equal(trk_store_begin(s), 0);
	msg_status_t a = ev(id, "c6", MSG_ST_ACCEPTED, "twilio");
	assert_int_equal(trk_store_status(s, &a), 0); /* state stays delivered */
	assert_int_equal(trk_store_commit(s), 0);
	trk_counts_t c;
	assert_int_equal(trk_store_counts(s, "c6", &c), 0);
	assert_int_equal(c.total, 1);
	assert_int_equal(c.states[MSG_ST_DELIVERED], 1);
	assert_int_equal(trk_store_counts(s, "", &c), 0);
	assert_int_equal(c.total, 0);
	char camp[64];
	assert_int_equal(trk_store_msg_campaign(s, id, camp, sizeof camp), 0);
	assert_string_equal(camp, "c6");
	/* a second handle (no cache) sees the same */
	char err[256];
	trk_store_t *r2 = trk_store_open(dbpath, 1, err, sizeof err);
	assert_non_null(r2);
	assert_int_equal(trk_store_counts(r2, "c6", &c), 0);
	assert_int_equal(c.states[MSG_ST_DELIVERED], 1);
	trk_store_free(r2);
	cleanup(s);
}

static void test_readonly_missing(void **state)
{
	(void)state;
	char err[512];
	assert_null(trk_store_open("/nonexistent/dir/tocsin.db", 1, err, sizeof err));
	assert_non_null(strstr(err, "/nonexistent/dir/tocsin.db"));
	trk_store_free(NULL);
	/* not a tracker database */
	FILE *f = fopen("/tmp/test_trk_notdb", "w");
	fputs("hello, this is not sqlite\n", f);
	fclose(f);
	assert_null(trk_store_open("/tmp/test_trk_notdb", 1, err, sizeof err));
	unlink("/tmp/test_trk_notdb");
}

/* An inbound STOP is counted against the campaign whose message to that
 * address has the latest event, whatever order the rows arrived in. */
static void test_last_campaign(void **state)
{
	(void)state;
	trk_store_t *s = fresh();
	/* ids as the producer makes them: msg_make_id(campaign, channel, address) */
	char i1[MSG_ID_LEN + 1], i2[MSG_ID_LEN + 1], i3[MSG_ID_LEN + 1], i4[MSG_ID_LEN + 1];
	msg_make_id("later", "sms", "+15550001001", i1);
	msg_make_id("earlier", "sms", "+15550001001", i2);
	msg_make_id("other", "sms", "+15550001002", i3);
	msg_make_id("mail", "email", "+15550001001", i4);
	assert_int_equal(trk_store_begin(s), 0);
	msg_status_t a = ev(i1, "later", MSG_ST_ACCEPTED, "vonage"); /* arrives first, newer */
	a.to = "+15550001001";
	a.ts_ms = 2000;
	msg_status_t b = ev(i2, "earlier", MSG_ST_ACCEPTED, "vonage");
	b.to = "+15550001001";
	b.ts_ms = 1000;
	msg_status_t c = ev(i3, "other", MSG_ST_ACCEPTED, "vonage");
	c.to = "+15550001002";
	c.ts_ms = 3000;
	msg_status_t e = ev(i4, "mail", MSG_ST_ACCEPTED, "sendgrid");
	e.channel = MSG_CH_EMAIL;
	e.to = "+15550001001"; /* same text, other channel: never matched */
	e.ts_ms = 9000;
	assert_int_equal(trk_store_status(s, &a), 1);
	assert_int_equal(trk_store_status(s, &b), 1);
	assert_int_equal(trk_store_status(s, &c), 1);
	assert_int_equal(trk_store_status(s, &e), 1);
	assert_int_equal(trk_store_commit(s), 0);
	char out[64];
	assert_int_equal(trk_store_last_campaign(s, MSG_CH_SMS, "+15550001001", out, sizeof out), 0);
	assert_string_equal(out, "later");
	assert_int_equal(trk_store_last_campaign(s, MSG_CH_SMS, "+15550001002", out, sizeof out), 0);
	assert_string_equal(out, "other");
	assert_int_equal(trk_store_last_campaign(s, MSG_CH_SMS, "+15550009999", out, sizeof out),
	                 TOCSIN_ERR_NOTFOUND);
	assert_string_equal(out, "");
	assert_int_equal(trk_store_last_campaign(s, MSG_CH_SMS, "", out, sizeof out),
	                 TOCSIN_ERR_NOTFOUND);
	/* a later receipt of the older message makes its campaign the latest */
	assert_int_equal(trk_store_begin(s), 0);
	msg_status_t d = ev(i2, "earlier", MSG_ST_DELIVERED, "vonage");
	d.ts_ms = 5000;
	assert_int_equal(trk_store_status(s, &d), 1);
	assert_int_equal(trk_store_commit(s), 0);
	assert_int_equal(trk_store_last_campaign(s, MSG_CH_SMS, "+15550001001", out, sizeof out), 0);
	assert_string_equal(out, "earlier");
	cleanup(s);
}

/* The /metrics histogram: all-time per vendor, untouched by series pruning. */
static int earlier_cb(void *ctx, const char *vendor, const char *ref)
{
	char *out = ctx;
	snprintf(out + strlen(out), 128 - strlen(out), "%s/%s;", vendor, ref);
	return 0;
}

/* The webhook replay memory: a key is taken once until it expires, survives
 * reopening the file, and can be forgotten; the file is 0600. */
static void test_seen(void **state)
{
	(void)state;
	trk_store_t *s = fresh();
	struct stat stt;
	assert_int_equal(stat(dbpath, &stt), 0);
	assert_int_equal(stt.st_mode & 0777, 0600);
	char sp[300], err[256];
	snprintf(sp, sizeof sp, "%s-webhooks", dbpath);
	trk_store_t *w = trk_store_open_seen(sp, err, sizeof err);
	assert_non_null(w);
	assert_int_equal(stat(sp, &stt), 0);
	assert_int_equal(stt.st_mode & 0777, 0600);
	assert_int_equal(trk_store_seen(w, "mailgun:tok1", 1000, 600), 1);
	assert_int_equal(trk_store_seen(w, "mailgun:tok1", 1001, 600), 0);
	assert_int_equal(trk_store_seen(w, "mailgun:tok2", 1001, 600), 1);
	trk_store_free(w);
	w = trk_store_open_seen(sp, err, sizeof err);
	assert_non_null(w);
	assert_int_equal(trk_store_seen(w, "mailgun:tok1", 1599, 600), 0); /* kept across a restart */
	assert_int_equal(trk_store_seen(w, "mailgun:tok1", 1601, 600), 1); /* expired: new again */
	assert_int_equal(trk_store_seen(w, "mailgun:tok1", 1602, 600), 0);
	assert_int_equal(trk_store_unsee(w, "mailgun:tok2"), 0);
	assert_int_equal(trk_store_seen(w, "mailgun:tok2", 1602, 600), 1);
	/* more than one batch (256) of keys: every one is still known, before and after writing */
	char k[32];
	for (int i = 0; i < 600; i++) {
		snprintf(k, sizeof k, "sendgrid:e%d", i);
		assert_int_equal(trk_store_seen(w, k, 1700, 600), 1);
	}
	for (int i = 0; i < 600; i += 97) {
		snprintf(k, sizeof k, "sendgrid:e%d", i);
		assert_int_equal(trk_store_seen(w, k, 1701, 600), 0);
	}
	assert_int_equal(trk_store_seen_flush(w), 0);
	assert_int_equal(trk_store_seen(w, "sendgrid:e599", 1702, 600), 0);
	trk_store_free(w);
	/* msg_info: campaign, vendor and reference as stored */
	assert_int_equal(trk_store_begin(s), 0);
	msg_status_t e = ev("m1", "c9", MSG_ST_ACCEPTED, "vonage");
	e.vendor_ref = "0A1";
	assert_int_equal(trk_store_status(s, &e), 1);
	assert_int_equal(trk_store_commit(s), 0);
	char camp[64], vendor[64], ref[64];
	assert_int_equal(trk_store_msg_info(s, "m1", camp, sizeof camp, vendor, sizeof vendor, ref,
	                                    sizeof ref),
	                 0);
	assert_string_equal(camp, "c9");
	assert_string_equal(vendor, "vonage");
	assert_string_equal(ref, "0A1");
	assert_int_equal(trk_store_msg_info(s, "m2", camp, sizeof camp, vendor, sizeof vendor, ref,
	                                    sizeof ref),
	                 TOCSIN_ERR_NOTFOUND);
	/* a long Vonage SMS: the send's reference lists every part's id; a part's
	 * receipt never replaces it, and when a receipt got here before the send's
	 * accepted record, that record puts it in */
	assert_int_equal(trk_store_begin(s), 0);
	msg_status_t p1 = ev("m4", "c9", MSG_ST_ACCEPTED, "vonage");
	p1.vendor_ref = "0A1 0A2 0A3";
	assert_int_equal(trk_store_status(s, &p1), 1);
	msg_status_t p2 = ev("m4", "c9", MSG_ST_DELIVERED, "vonage");
	p2.vendor_ref = "0A2", p2.latency_ms = -1;
	assert_int_equal(trk_store_status(s, &p2), 1);
	msg_status_t q2 = ev("m5", "c9", MSG_ST_DELIVERED, "vonage");
	q2.vendor_ref = "0B2", q2.latency_ms = -1;
	assert_int_equal(trk_store_status(s, &q2), 1);
	msg_status_t q1 = ev("m5", "c9", MSG_ST_ACCEPTED, "vonage");
	q1.vendor_ref = "0B1 0B2 0B3";
	assert_int_equal(trk_store_status(s, &q1), 0); /* no state change */
	msg_status_t q3 = ev("m5", "c9", MSG_ST_ACCEPTED, "twilio");
	q3.vendor_ref = "SM1";
	assert_int_equal(trk_store_status(s, &q3), 0); /* another vendor's: not taken */
	assert_int_equal(trk_store_commit(s), 0);
	assert_int_equal(trk_store_msg_info(s, "m4", camp, sizeof camp, vendor, sizeof vendor, ref,
	                                    sizeof ref),
	                 0);
	assert_string_equal(ref, "0A1 0A2 0A3");
	assert_int_equal(trk_store_msg_info(s, "m5", camp, sizeof camp, vendor, sizeof vendor, ref,
	                                    sizeof ref),
	                 0);
	assert_string_equal(ref, "0B1 0B2 0B3");
	/* a resent message: its earlier attempt's vendor and reference are listed */
	assert_int_equal(trk_store_begin(s), 0);
	msg_status_t a = ev("m3", "c9", MSG_ST_ACCEPTED, "tw");
	a.vendor_ref = "SM-old", a.ts_ms = 1000;
	assert_int_equal(trk_store_status(s, &a), 1);
	msg_status_t u = a;
	u.state = MSG_ST_UNDELIVERED, u.ts_ms = 2000, u.latency_ms = -1;
	assert_int_equal(trk_store_status(s, &u), 1);
	msg_status_t n = ev("m3", "c9", MSG_ST_ACCEPTED, "vg");
	n.vendor_ref = "VG-new", n.attempt = 1, n.ts_ms = 3000;
	assert_int_equal(trk_store_status(s, &n), 1);
	assert_int_equal(trk_store_commit(s), 0);
	char seen[128] = "";
	assert_int_equal(trk_store_msg_earlier(s, "m3", earlier_cb, seen), 0);
	assert_string_equal(seen, "tw/SM-old;");
	assert_int_equal(trk_store_msg_earlier(s, "m1", earlier_cb, seen), 0);
	cleanup(s);
}

static void test_lat_total(void **state)
{
	(void)state;
	trk_store_t *s = fresh();
	assert_int_equal(trk_store_begin(s), 0);
	for (int i = 0; i < 6; i++) {
		char id[16];
		snprintf(id, sizeof id, "t%d", i);
		msg_status_t e = ev(id, "c5", MSG_ST_ACCEPTED, i < 4 ? "twilio" : "vonage");
		e.latency_ms = i < 4 ? 20 : 400;
		assert_int_equal(trk_store_status(s, &e), 1);
		msg_status_t d = ev(id, "c5", MSG_ST_DELIVERED, i < 4 ? "twilio" : "vonage");
		d.latency_ms = -1; /* a receipt carries no request latency */
		assert_int_equal(trk_store_status(s, &d), 1);
	}
	assert_int_equal(trk_store_commit(s), 0);
	assert_int_equal(trk_store_prune(s, 1800000000), 2); /* every series row goes */
	sqlite3_stmt *q;
	assert_int_equal(sqlite3_prepare_v2(trk_store_db(s),
	                                    "SELECT vendor, lat, lat_sum FROM lat_total ORDER BY vendor",
	                                    -1, &q, NULL),
	                 SQLITE_OK);
	int64_t h[TRK_LAT_BUCKETS];
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(q, 0), "twilio");
	assert_int_equal(sqlite3_column_bytes(q, 1), (int)sizeof h);
	memcpy(h, sqlite3_column_blob(q, 1), sizeof h);
	assert_int_equal(h[trk_lat_bucket(20)], 4);
	assert_int_equal(sqlite3_column_int64(q, 2), 80);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(q, 0), "vonage");
	memcpy(h, sqlite3_column_blob(q, 1), sizeof h);
	assert_int_equal(h[trk_lat_bucket(400)], 2);
	assert_int_equal(sqlite3_column_int64(q, 2), 800);
	assert_int_equal(sqlite3_step(q), SQLITE_DONE);
	sqlite3_finalize(q);
	cleanup(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_every_pair),
	    cmocka_unit_test(test_receipt_orders),
	    cmocka_unit_test(test_vendor_kept_and_moved),
	    cmocka_unit_test(test_series_and_codes),
	    cmocka_unit_test(test_campaign_latest_wins),
	    cmocka_unit_test(test_receipt_before_campaign),
	    cmocka_unit_test(test_readonly_missing),
	    cmocka_unit_test(test_last_campaign),
	    cmocka_unit_test(test_lat_total),
	    cmocka_unit_test(test_seen),
	    cmocka_unit_test(test_deferrals_counted),
	    cmocka_unit_test(test_resend_new_attempt),
	    cmocka_unit_test(test_migrate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
