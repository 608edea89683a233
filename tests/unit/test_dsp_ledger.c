/* test_dsp_ledger.c -- the dispatchers' ledger: ids noted by one run are known to the next, per channel; torn and foreign lines skipped; old files deleted; bad ids refused; a refresh reads what the others noted since. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <utime.h>
#include <cmocka.h>

#include "core/err.h"
#include "dispatcher/dsp_ledger.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof dir, "/tmp/test_dsp_ledger.XXXXXX");
	assert_non_null(mkdtemp(dir));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void put_file(const char *name, const char *text, time_t mtime)
{
	char p[256];
	snprintf(p, sizeof p, "%s/ledger/%s", dir, name);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	if (mtime) {
		struct utimbuf u = {mtime, mtime};
		assert_int_equal(utime(p, &u), 0);
	}
}

static void test_next_run_knows(void **state)
{
	(void)state;
	char err[256] = "", ld[128], p[256];
	snprintf(ld, sizeof ld, "%s/ledger", dir);
	dsp_ledger_t *a = dsp_ledger_open(ld, "sms", "tocsin-dispatch-sms-1", err, sizeof err);
	assert_non_null(a);
	assert_int_equal(dsp_ledger_loaded(a), 0);
	assert_int_equal(dsp_ledger_add(a, "0123456789abcdef0123456789abcdef"), 0);
	assert_int_equal(dsp_ledger_add(a, "ffffffffffffffffffffffffffffffff"), 0);
	assert_true(dsp_ledger_has(a, "0123456789abcdef0123456789abcdef"));
	assert_false(dsp_ledger_has(a, "00000000000000000000000000000000"));
	/* refused: empty, too long, a newline (it would forge a second line) */
	assert_int_equal(dsp_ledger_add(a, ""), TOCSIN_ERR_INVAL);
	char big[80];
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = 0;
	assert_int_equal(dsp_ledger_add(a, big), TOCSIN_ERR_INVAL);
	assert_int_equal(dsp_ledger_add(a, "abc\ndef"), TOCSIN_ERR_INVAL);
	assert_false(dsp_ledger_has(a, "abc"));
	dsp_ledger_free(a);
	/* the file holds exactly the two ids, owner-only */
	snprintf(p, sizeof p, "%s/sms-tocsin-dispatch-sms-1.ids", ld);
	FILE *f = fopen(p, "r");
	assert_non_null(f);
	char buf[200] = "";
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	assert_string_equal(buf,
	                    "0123456789abcdef0123456789abcdef\nffffffffffffffffffffffffffffffff\n");
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	/* another dispatcher's file (a torn last line), an email one, a stale one */
	put_file("sms-tocsin-dispatch-sms-2.ids", "11111111111111111111111111111111\n2222", 0);
	put_file("email-tocsin-dispatch-email-3.ids", "33333333333333333333333333333333\n", 0);
	put_file("sms-tocsin-dispatch-sms-4.ids", "44444444444444444444444444444444\n",
	         time(NULL) - DSP_LEDGER_KEEP_S - 60);
	dsp_ledger_t *b = dsp_ledger_open(ld, "sms", "tocsin-dispatch-sms-5", err, sizeof err);
	assert_non_null(b);
	assert_int_equal(dsp_ledger_loaded(b), 3);
	assert_true(dsp_ledger_has(b, "0123456789abcdef0123456789abcdef"));
	assert_true(dsp_ledger_has(b, "ffffffffffffffffffffffffffffffff"));
	assert_true(dsp_ledger_has(b, "11111111111111111111111111111111"));
	assert_false(dsp_ledger_has(b, "2222"));
	assert_false(dsp_ledger_has(b, "33333333333333333333333333333333"));
	assert_false(dsp_ledger_has(b, "44444444444444444444444444444444"));
	snprintf(p, sizeof p, "%s/sms-tocsin-dispatch-sms-4.ids", ld);
	assert_int_not_equal(access(p, F_OK), 0); /* deleted */
	dsp_ledger_free(b);
	dsp_ledger_free(NULL);
}

/* Noted ids reach the file at a flush (one write per vendor answer), or when 1000 wait. */
static long file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) ? -1 : (long)st.st_size;
}

static void test_flush(void **state)
{
	(void)state;
	char err[256] = "", ld[128], p[256];
	snprintf(ld, sizeof ld, "%s/ledger-flush", dir);
	dsp_ledger_t *a = dsp_ledger_open(ld, "email", "tocsin-dispatch-email-7", err, sizeof err);
	assert_non_null(a);
	snprintf(p, sizeof p, "%s/email-tocsin-dispatch-email-7.ids", ld);
	assert_int_equal(dsp_ledger_add(a, "0123456789abcdef0123456789abcdef"), 0);
	assert_int_equal(file_size(p), 0); /* not yet written ... */
	assert_true(dsp_ledger_has(a, "0123456789abcdef0123456789abcdef")); /* ... but known */
	assert_int_equal(dsp_ledger_flush(a), 0);
	assert_int_equal(file_size(p), 33);
	assert_int_equal(dsp_ledger_flush(a), 0); /* nothing more to write */
	assert_int_equal(file_size(p), 33);
	/* 1000 ids of 64 bytes fill the buffer: the 1001st writes them first */
	char id[65];
	for (int i = 0; i < 1001; i++) {
		snprintf(id, sizeof id, "%064d", i);
		assert_int_equal(dsp_ledger_add(a, id), 0);
	}
	assert_int_equal(file_size(p), 33 + 1000 * 65);
	dsp_ledger_free(a); /* flushes the last one */
	assert_int_equal(file_size(p), 33 + 1001 * 65);
}

/* Two dispatchers at once: what one notes after the other started is known to the other after
 * a refresh (as when it takes a killed one's partitions), read from where each file was last
 * read; a line being written is read once whole; a new file is read whole. */
static void test_refresh(void **state)
{
	(void)state;
	char err[256] = "", ld[128], p[256];
	snprintf(ld, sizeof ld, "%s/ledger", dir);
	dsp_ledger_t *a = dsp_ledger_open(ld, "sms", "tocsin-dispatch-sms-1", err, sizeof err);
	dsp_ledger_t *b = dsp_ledger_open(ld, "sms", "tocsin-dispatch-sms-2", err, sizeof err);
	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(dsp_ledger_add(a, "0123456789abcdef0123456789abcdef"), 0);
	assert_int_equal(dsp_ledger_flush(a), 0);
	assert_false(dsp_ledger_has(b, "0123456789abcdef0123456789abcdef"));
	assert_int_equal(dsp_ledger_refresh(b), 1);
	assert_true(dsp_ledger_has(b, "0123456789abcdef0123456789abcdef"));
	assert_int_equal(dsp_ledger_refresh(b), 0); /* nothing new */
	assert_int_equal(dsp_ledger_refresh(a), 0); /* its own file is not read back */
	/* a line half written, then finished */
	snprintf(p, sizeof p, "%s/sms-tocsin-dispatch-sms-1.ids", ld);
	FILE *f = fopen(p, "a");
	assert_non_null(f);
	fputs("5555555555555555", f);
	fflush(f);
	assert_int_equal(dsp_ledger_refresh(b), 0);
	assert_false(dsp_ledger_has(b, "5555555555555555"));
	fputs("5555555555555555\n", f);
	fclose(f);
	assert_int_equal(dsp_ledger_refresh(b), 1);
	assert_true(dsp_ledger_has(b, "55555555555555555555555555555555"));
	assert_false(dsp_ledger_has(b, "5555555555555555"));
	/* a dispatcher started since: its file whole */
	put_file("sms-tocsin-dispatch-sms-3.ids",
	         "66666666666666666666666666666666\n"
	         "77777777777777777777777777777777\n",
	         0);
	assert_int_equal(dsp_ledger_refresh(b), 2);
	assert_true(dsp_ledger_has(b, "77777777777777777777777777777777"));
	dsp_ledger_free(a);
	dsp_ledger_free(b);
}

static void test_unwritable_dir(void **state)
{
	(void)state;
	char err[256] = "";
	assert_null(dsp_ledger_open("/proc/no/such/ledger", "sms", "x", err, sizeof err));
	assert_non_null(strstr(err, "cannot create /proc/no/such/ledger"));
}

int main(void)
{
	const struct CMUnitTest t[] = {
	    cmocka_unit_test_setup_teardown(test_next_run_knows, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_flush, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refresh, setup, teardown),
	    cmocka_unit_test(test_unwritable_dir),
	};
	return cmocka_run_group_tests(t, NULL, NULL);
}
