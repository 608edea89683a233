/* test_prod_addr.c -- unit tests for producer/addr (E.164, NANP, email) and producer/aset (dedupe set). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/err.h"
#include "producer/addr.h"
#include "producer/aset.h"

static void test_phone_ok(void **state)
{
	(void)state;
	static const char *const cases[][2] = {
	    {"(202) 555-2001", "+12025552001"},       {"202-555-2001", "+12025552001"},
	    {"+1 202 555 2001", "+12025552001"},      {"1.202.555.2001", "+12025552001"},
	    {"12025552001", "+12025552001"},          {" 202/555/2001 ", "+12025552001"},
	    {"+1 (415) 555-0123", "+14155550123"},    {"+44 20 7946 0958", "+442079460958"},
	    {"011 44 20 7946 0958", "+442079460958"}, {"+33 1 23 45 67 89", "+33123456789"},
	    {"907-555-9999", "+19075559999"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char out[ADDR_MAX];
		const char *why = NULL;
		int rc = addr_phone_norm(cases[i][0], strlen(cases[i][0]), out, &why);
		if (rc)
			fail_msg("%s: %s", cases[i][0], why);
		assert_string_equal(out, cases[i][1]);
	}
}

static void test_phone_bad(void **state)
{
	(void)state;
	static const char *const cases[][2] = {
	    {"", "no digits"},
	    {"()- ", "no digits"},
	    {"555-2012", "too few digits"},
	    {"202-555-20111", "too many digits"},
	    {"102-555-2009", "invalid area code"},
	    {"012-555-2009", "invalid area code"},
	    {"211-555-2009", "invalid area code (N11)"},
	    {"292-555-2009", "invalid area code (N9X reserved)"},
	    {"202-055-2009", "invalid exchange code"},
	    {"202-155-2009", "invalid exchange code"},
	    {"202-911-2010", "invalid exchange code (N11)"},
	    {"202-555-CALL", "invalid character"},
	    {"202-555-2001 x12", "extension not allowed"},
	    {"202+555", "misplaced '+'"},
	    {"+1 202 555 200", "too few digits"},
	    {"+1 202 555 20011", "too many digits"},
	    {"+0 123 456 789", "country code cannot start with 0"},
	    {"+44 1234", "too few digits"},
	    {"+4412345678901234", "too many digits"},
	    {"999999999999999999999999", "too many digits"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char out[ADDR_MAX];
		const char *why = NULL;
		int rc = addr_phone_norm(cases[i][0], strlen(cases[i][0]), out, &why);
		if (rc != TOCSIN_ERR_INVAL)
			fail_msg("%s: accepted as %s", cases[i][0], out);
		assert_string_equal(why, cases[i][1]);
	}
	/* embedded NUL */
	char out[ADDR_MAX];
	const char *why;
	assert_int_equal(addr_phone_norm("202\0555", 7, out, &why), TOCSIN_ERR_INVAL);
}

static void test_email(void **state)
{
	(void)state;
	static const char *const ok[][2] = {
	    {"ana@example.org", "ana@example.org"},
	    {"  Ana.Lopez@Example.ORG \t", "Ana.Lopez@example.org"},
	    {"a+tag@sub.example.co.uk", "a+tag@sub.example.co.uk"},
	    {"x_y-z@ex-ample.io", "x_y-z@ex-ample.io"},
	};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		char out[ADDR_MAX];
		const char *why = NULL;
		if (addr_email_norm(ok[i][0], strlen(ok[i][0]), out, &why))
			fail_msg("%s: %s", ok[i][0], why);
		assert_string_equal(out, ok[i][1]);
	}
	static const char *const bad[][2] = {
	    {"", "empty"},
	    {"   ", "empty"},
	    {"ana.example.org", "missing '@'"},
	    {"@example.org", "empty local part"},
	    {"ana@", "empty domain"},
	    {"ana@example", "domain has no '.'"},
	    {"ana@example.c", "invalid top-level domain"},
	    {"ana@example.123", "invalid top-level domain"},
	    {"ana@@example.org", "more than one '@'"},
	    {"an a@example.org", "invalid character in local part"},
	    {"ana@exa mple.org", "invalid character in domain"},
	    {"ana@-example.org", "domain label starts with '-'"},
	    {"ana@example-.org", "domain label ends with '-'"},
	    {"ana@example..org", "empty domain label"},
	    {"ana@example.org.", "domain ends with '.'"},
	    {".ana@example.org", "local part starts or ends with '.'"},
	    {"a..na@example.org", "'..' in local part"},
	    {"\"ana\"@example.org", "invalid character in local part"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char out[ADDR_MAX];
		const char *why = NULL;
		if (addr_email_norm(bad[i][0], strlen(bad[i][0]), out, &why) != TOCSIN_ERR_INVAL)
			fail_msg("%s: accepted as %s", bad[i][0], out);
		assert_string_equal(why, bad[i][1]);
	}
	/* too long: 65-byte local part, 300-byte address */
	char big[400], out[ADDR_MAX];
	const char *why;
	memset(big, 'a', 65);
	strcpy(big + 65, "@example.org");
	assert_int_equal(addr_email_norm(big, strlen(big), out, &why), TOCSIN_ERR_INVAL);
	assert_string_equal(why, "local part too long");
	memset(big, 'a', 300);
	big[10] = '@';
	big[300] = 0;
	assert_int_equal(addr_email_norm(big, strlen(big), out, &why), TOCSIN_ERR_INVAL);
	assert_string_equal(why, "too long");
}

static void test_aset(void **state)
{
	(void)state;
	char err[128];
	aset_t *s = aset_new(10, 0, err, sizeof err);
	assert_non_null(s);
	const int n = 200000;
	for (int i = 0; i < n; i++) {
		char a[32];
		int l = snprintf(a, sizeof a, "+1202%07d", i);
		assert_int_equal(aset_add(s, aset_key(0, a, (size_t)l)), 1);
	}
	for (int i = 0; i < n; i += 7) {
		char a[32];
		int l = snprintf(a, sizeof a, "+1202%07d", i);
		assert_int_equal(aset_add(s, aset_key(0, a, (size_t)l)), 0); /* duplicate */
		assert_true(aset_has(s, aset_key(0, a, (size_t)l)));
		assert_false(aset_has(s, aset_key(1, a, (size_t)l))); /* other channel */
	}
	assert_int_equal(aset_count(s), n);
	/* memory: well under 100 bytes per recipient */
	assert_true(aset_bytes(s) / n < 24);
	/* hash 0 is stored too */
	assert_int_equal(aset_add(s, 0), 1);
	assert_true(aset_has(s, 0));
	aset_free(s);
	aset_free(NULL);
	/* a cap */
	s = aset_new(10, 3, err, sizeof err);
	assert_int_equal(aset_add(s, 11), 1);
	assert_int_equal(aset_add(s, 12), 1);
	assert_int_equal(aset_add(s, 13), 1);
	assert_int_equal(aset_add(s, 13), 0);
	assert_int_equal(aset_add(s, 14), TOCSIN_ERR_TOOBIG);
	aset_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_phone_ok),
	    cmocka_unit_test(test_phone_bad),
	    cmocka_unit_test(test_email),
	    cmocka_unit_test(test_aset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
