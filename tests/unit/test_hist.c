/* test_hist.c -- unit tests for core/hist: bucket geometry, exact small values, percentiles, merge. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/hist.h"

static void test_geometry(void **state)
{
	(void)state;
	assert_int_equal(HIST_NBUCKETS, 1152);
	/* Buckets tile the value range without gaps or overlaps. */
	assert_int_equal(hist_bucket_lo(0), 0);
	for (size_t i = 0; i + 1 < HIST_NBUCKETS; i++) {
		assert_true(hist_bucket_lo(i) <= hist_bucket_hi(i));
		assert_int_equal(hist_bucket_hi(i) + 1, hist_bucket_lo(i + 1));
		assert_int_equal(hist_bucket_of(hist_bucket_lo(i)), i);
		assert_int_equal(hist_bucket_of(hist_bucket_hi(i)), i);
		/* relative width at most 1/32 above the exact range */
		if (i >= 64)
			assert_true((hist_bucket_hi(i) - hist_bucket_lo(i) + 1) * 32 <=
			            hist_bucket_lo(i));
	}
	assert_int_equal(hist_bucket_hi(HIST_NBUCKETS - 1), HIST_MAX_VALUE);
	assert_int_equal(hist_bucket_of(UINT64_MAX), HIST_NBUCKETS - 1);
	/* a few values by hand */
	assert_int_equal(hist_bucket_of(63), 63);
	assert_int_equal(hist_bucket_of(64), 64);
	assert_int_equal(hist_bucket_of(65), 64);
	assert_int_equal(hist_bucket_of(66), 65);
	assert_int_equal(hist_bucket_lo(96), 128);
}

static void test_exact_small(void **state)
{
	(void)state;
	hist_t *h = hist_new(NULL, 0);
	assert_non_null(h);
	assert_int_equal(hist_percentile(h, 50), 0);
	for (uint64_t v = 1; v <= 20; v++)
		hist_record(h, v);
	assert_int_equal(hist_count(h), 20);
	assert_int_equal(hist_min(h), 1);
	assert_int_equal(hist_max(h), 20);
	assert_int_equal(hist_percentile(h, 50), 10);
	assert_int_equal(hist_percentile(h, 95), 19);
	assert_int_equal(hist_percentile(h, 100), 20);
	assert_int_equal(hist_percentile(h, 0), 1);
	assert_true(hist_mean(h) > 10.49 && hist_mean(h) < 10.51);
	assert_int_equal(hist_count_le(h, 5), 5);
	hist_free(h);
	hist_free(NULL);
}

static void test_percentiles_large(void **state)
{
	(void)state;
	hist_t *h = hist_new(NULL, 0);
	/* 1..100000 microseconds, uniform */
	for (uint64_t v = 1; v <= 100000; v++)
		hist_record(h, v);
	static const double qs[] = {50, 90, 95, 99, 99.9};
	for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) {
		uint64_t truth = (uint64_t)(qs[i] * 1000);
		uint64_t got = hist_percentile(h, qs[i]);
		assert_true(got >= truth);
		assert_true(got <= truth + truth / 32 + 1);
	}
	hist_reset(h);
	assert_int_equal(hist_count(h), 0);
	hist_record_n(h, 5000, 99);
	hist_record(h, 2000000);
	assert_true(hist_percentile(h, 99) <= 5000 + 5000 / 32);
	assert_int_equal(hist_percentile(h, 99.5), 2000000); /* clamped to the exact max */
	hist_free(h);
}

static void test_merge(void **state)
{
	(void)state;
	hist_t *a = hist_new(NULL, 0), *b = hist_new(NULL, 0), *all = hist_new(NULL, 0);
	for (uint64_t v = 0; v < 5000; v += 7) {
		hist_record(v % 2 ? a : b, v * 13);
		hist_record(all, v * 13);
	}
	hist_record(b, HIST_MAX_VALUE + 100);
	hist_record(all, HIST_MAX_VALUE + 100);
	assert_int_equal(hist_merge(a, b), 0);
	assert_int_equal(hist_count(a), hist_count(all));
	assert_int_equal(hist_min(a), hist_min(all));
	assert_int_equal(hist_max(a), hist_max(all));
	for (size_t i = 0; i < HIST_NBUCKETS; i++)
		assert_int_equal(hist_bucket_count(a, i), hist_bucket_count(all, i));
	assert_int_equal(hist_percentile(a, 42), hist_percentile(all, 42));
	hist_t *e = hist_new(NULL, 0);
	assert_int_equal(hist_merge(a, e), 0); /* merging empty changes nothing */
	assert_int_equal(hist_count(a), hist_count(all));
	hist_free(a);
	hist_free(b);
	hist_free(all);
	hist_free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_geometry),
	    cmocka_unit_test(test_exact_small),
	    cmocka_unit_test(test_percentiles_large),
	    cmocka_unit_test(test_merge),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
