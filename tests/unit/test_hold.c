/* test_hold.c -- hold/hold.c: the holding store's put is idempotent on the message id, and a resend re-arms a done row once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "core/cfg.h"
#include "hold/hold.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[256];

/* "state due_ms rec gen" of row id */
static void row(const char *id, char *out, size_t n)
{
	char path[300];
	snprintf(path, sizeof path, "%s/hold.db", dir);
	sqlite3 *db = NULL;
	sqlite3_stmt *q = NULL;
	out[0] = 0;
	assert_int_equal(sqlite3_open(path, &db), 0);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT state, due_ms, coalesce(rec,'-'), gen FROM held WHERE id=?1",
	                                    -1, &q, NULL),
	                 0);
	sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
	if (sqlite3_step(q) == SQLITE_ROW)
		snprintf(out, n, "%d %lld %s %lld", sqlite3_column_int(q, 0),
		         (long long)sqlite3_column_int64(q, 1),
		         (const char *)sqlite3_column_text(q, 2),
		         (long long)sqlite3_column_int64(q, 3));
	sqlite3_finalize(q);
	sqlite3_close(db);
}

static void set_state(const char *id, int st)
{
	char path[300], sql[200];
	snprintf(path, sizeof path, "%s/hold.db", dir);
	snprintf(sql, sizeof sql, "UPDATE held SET state=%d, rec=NULL WHERE id='%s'", st, id);
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open(path, &db), 0);
	sqlite3_busy_timeout(db, 2000);
	if (sqlite3_exec(db, sql, NULL, NULL, NULL))
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
	sqlite3_close(db);
}

static void test_put(void **st)
{
	(void)st;
	snprintf(dir, sizeof dir, "/tmp/test_hold.%d", (int)getpid());
	mkdir(dir, 0700);
	cfg_t c = {.var_dir = dir};
	char err[256] = "", r[256];
	hold_t *h = hold_open(&c, err, sizeof err);
	if (!h)
		fail_msg("%s", err);
	const char *id = "0123456789abcdef0123456789abcdef";
	assert_int_equal(hold_put(h, id, "c1", "tocsin.outbox.sms", "+12125550000", 1000, 9000,
	                          "America/New_York", "R1", 2, 10, 0),
	                 0);
	/* the same message again (a resumed launch): left as it is */
	assert_int_equal(hold_put(h, id, "c1", "tocsin.outbox.sms", "+12125550000", 2000, 9000,
	                          "America/New_York", "R2", 2, 11, 0),
	                 0);
	assert_int_equal(hold_commit(h), 0);
	row(id, r, sizeof r);
	assert_string_equal(r, "0 1000 R1 10");
	/* released; a launch (not a resend) does not hold it again */
	set_state(id, HOLD_RELEASED);
	assert_int_equal(hold_put(h, id, "c1", "tocsin.outbox.sms", "+12125550000", 3000, 9000, "",
	                          "R3", 2, 12, 0),
	                 0);
	assert_int_equal(hold_commit(h), 0);
	row(id, r, sizeof r);
	assert_string_equal(r, "2 1000 - 10");
	/* a resend (a later run) re-arms it, once: the same run again leaves it */
	assert_int_equal(hold_put(h, id, "c1", "tocsin.outbox.sms", "+12125550000", 4000, 9000, "",
	                          "R4", 2, 13, 1),
	                 0);
	assert_int_equal(hold_commit(h), 0);
	row(id, r, sizeof r);
	assert_string_equal(r, "0 4000 R4 13");
	assert_int_equal(hold_put(h, id, "c1", "tocsin.outbox.sms", "+12125550000", 5000, 9000, "",
	                          "R5", 2, 13, 1),
	                 0);
	assert_int_equal(hold_commit(h), 0);
	row(id, r, sizeof r);
	assert_string_equal(r, "0 4000 R4 13");
	set_state(id, HOLD_EXPIRED);
	assert_int_equal(hold_put(h, id, "c1", "tocsin.outbox.sms", "+12125550000", 6000, 9000, "",
	                          "R6", 2, 13, 1),
	                 0);
	assert_int_equal(hold_commit(h), 0);
	row(id, r, sizeof r);
	assert_string_equal(r, "4 4000 - 13");
	hold_close(h);
	/* the store holds recipients' data: owner only */
	char path[300];
	struct stat sb;
	snprintf(path, sizeof path, "%s/hold.db", dir);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(test_put)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
