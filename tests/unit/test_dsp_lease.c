/* test_dsp_lease.c -- partition leases on one host: slots taken lowest first and ranked while held, a dead holder's slot and leases free at once, one holder per partition lease. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <cmocka.h>

#include "dispatcher/dsp_lease.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof dir, "/tmp/test_dsp_lease.XXXXXX");
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

/* Three dispatchers take slots 0, 1, 2 and rank 0, 1, 2 of 3; the middle one dies (its
 * descriptor closed, as the kernel does for a killed process): the others rank 0 and 1 of
 * 2, and the next to start takes slot 1 again. Another channel's slots are its own. */
static void test_slots_rank(void **state)
{
	(void)state;
	int fd[4], n;
	char err[256];
	for (int i = 0; i < 3; i++)
		assert_int_equal(dsp_lease_slot_take(dir, "sms", i == 1 ? "d-one" : NULL, &fd[i]), i);
	dsp_lease_t *l0 = dsp_lease_new(dir, "sms", 0, err, sizeof err);
	dsp_lease_t *l2 = dsp_lease_new(dir, "sms", 2, err, sizeof err);
	assert_non_null(l0);
	assert_non_null(l2);
	assert_int_equal(dsp_lease_rank(l0, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(dsp_lease_rank(l2, &n), 2);
	assert_int_equal(n, 3);
	/* who holds a slot, as its holder wrote it; nothing written: "" */
	assert_string_equal(dsp_lease_holder(l2, 1), "d-one");
	assert_string_equal(dsp_lease_holder(l2, 0), "");
	assert_string_equal(dsp_lease_holder(l2, 2), ""); /* its own */
	close(fd[1]);
	assert_int_equal(dsp_lease_rank(l0, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(dsp_lease_rank(l2, &n), 1);
	assert_int_equal(n, 2);
	/* the live slots as last ranked: 0 and 2, not the dead one's 1 */
	const unsigned char *live = dsp_lease_live(l2);
	assert_true(live[0] && !live[1] && live[2] && !live[3]);
	assert_int_equal(dsp_lease_slot_take(dir, "sms", "d-one-again", &fd[1]), 1);
	assert_int_equal(dsp_lease_rank(l2, &n), 2);
	assert_int_equal(n, 3);
	assert_true(live[0] && live[1] && live[2]);
	assert_string_equal(dsp_lease_holder(l2, 1), "d-one-again"); /* the whole file rewritten */
	assert_int_equal(dsp_lease_slot_take(dir, "email", NULL, &fd[3]), 0);
	close(fd[3]);
	/* the target: 12 partitions among 3 live, each partition exactly one's */
	for (int32_t p = 0; p < 12; p++)
		assert_int_equal(dsp_lease_mine(0, 3, p) + dsp_lease_mine(1, 3, p) +
		                     dsp_lease_mine(2, 3, p),
		                 1);
	assert_true(dsp_lease_mine(1, 3, 4));
	assert_false(dsp_lease_mine(0, 0, 0));
	dsp_lease_free(l0);
	dsp_lease_free(l2);
	for (int i = 0; i < 3; i++)
		close(fd[i]);
}

/* One holder per lease; a lease let go, or its holder gone, is free for the other at once; the
 * two lanes' partitions are separate leases; out of range is refused. */
static void test_leases(void **state)
{
	(void)state;
	char err[256];
	dsp_lease_t *a = dsp_lease_new(dir, "sms", 0, err, sizeof err);
	dsp_lease_t *b = dsp_lease_new(dir, "sms", 1, err, sizeof err);
	assert_int_equal(dsp_lease_take(a, 0, 3), 1);
	assert_int_equal(dsp_lease_take(a, 0, 3), 1); /* already held */
	assert_int_equal(dsp_lease_take(b, 0, 3), 0);
	assert_int_equal(dsp_lease_take(b, 1, 3), 1); /* the urgent lane's partition 3 */
	assert_true(dsp_lease_held(a, 0, 3));
	assert_false(dsp_lease_held(b, 0, 3));
	dsp_lease_drop(a, 0, 3);
	assert_false(dsp_lease_held(a, 0, 3));
	assert_int_equal(dsp_lease_take(b, 0, 3), 1);
	assert_int_equal(dsp_lease_take(a, 0, 3), 0);
	dsp_lease_free(b); /* dies holding both */
	assert_int_equal(dsp_lease_take(a, 0, 3), 1);
	assert_int_equal(dsp_lease_take(a, 1, 3), 1);
	assert_true(dsp_lease_take(a, 2, 0) < 0);
	assert_true(dsp_lease_take(a, 0, DSP_LEASE_MAX_PARTS) < 0);
	assert_true(dsp_lease_take(a, 0, -1) < 0);
	dsp_lease_free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_slots_rank, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_leases, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
