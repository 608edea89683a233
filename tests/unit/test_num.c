/* test_num.c -- core/num: strict decimal integers (whole string, in range, overflow refused). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "core/err.h"
#include "core/num.h"

#include <stdint.h>

static void test_num_ok(void **st)
{
	(void)st;
	int64_t v = 0;
	assert_int_equal(num_i64("0", 0, 10, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(num_i64("-42", -100, 100, &v), 0);
	assert_int_equal(v, -42);
	assert_int_equal(num_i64("9223372036854775807", INT64_MIN, INT64_MAX, &v), 0);
	assert_true(v == INT64_MAX);
	assert_int_equal(num_i64("-9223372036854775808", INT64_MIN, INT64_MAX, &v), 0);
	assert_true(v == INT64_MIN);
	int i = 0;
	assert_int_equal(num_int("10000", 1, 10000, &i), 0);
	assert_int_equal(i, 10000);
}

static void test_num_refused(void **st)
{
	(void)st;
	int64_t v = 7;
	const char *inval[] = {"",     "-",   "+1",  " 1",  "1 ",         "1x",
	                       "0x10", "1e3", "1.0", "--1", "4294967297a"};
	for (size_t k = 0; k < sizeof inval / sizeof inval[0]; k++)
		assert_int_equal(num_i64(inval[k], INT64_MIN, INT64_MAX, &v), TOCSIN_ERR_INVAL);
	assert_int_equal(num_i64(NULL, 0, 1, &v), TOCSIN_ERR_INVAL);
	/* out of range, never wrapped: 2^32 + 1 is not 1 */
	int i = 5;
	assert_int_equal(num_int("4294967297", 1, 10000, &i), TOCSIN_ERR_TOOBIG);
	assert_int_equal(i, 5);
	assert_int_equal(num_i64("9223372036854775808", INT64_MIN, INT64_MAX, &v), TOCSIN_ERR_TOOBIG);
	assert_int_equal(num_i64("-9223372036854775809", INT64_MIN, INT64_MAX, &v), TOCSIN_ERR_TOOBIG);
	assert_int_equal(num_i64("99999999999999999999999", INT64_MIN, INT64_MAX, &v),
	                 TOCSIN_ERR_TOOBIG);
	assert_int_equal(num_i64("0", 1, 10, &v), TOCSIN_ERR_TOOBIG);
	assert_int_equal(v, 7);
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(test_num_ok),
	                                   cmocka_unit_test(test_num_refused)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
