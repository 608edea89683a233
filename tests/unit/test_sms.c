/* test_sms.c -- table tests for templates/sms: GSM-7 vs UCS-2, exact segments, smart replacement, footer, cap. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "core/err.h"
#include "templates/sms.h"

/* s repeated n times into buf. */
static const char *rep(char *buf, const char *s, int n)
{
	buf[0] = 0;
	for (int i = 0; i < n; i++)
		strcat(buf, s);
	return buf;
}

static void check(const char *s, sms_enc_t enc, int units, int segs)
{
	sms_info_t in;
	assert_int_equal(sms_analyze(s, strlen(s), &in), 0);
	if (in.enc != enc || in.units != units || in.segments != segs)
		fail_msg("\"%.40s...\" (%zu bytes): got %s/%d/%d want %s/%d/%d", s, strlen(s),
		         sms_enc_name(in.enc), in.units, in.segments, sms_enc_name(enc), units, segs);
}

static void test_boundaries(void **state)
{
	(void)state;
	static char b[8192], c[8192];
	check("", SMS_GSM7, 0, 1);
	check(rep(b, "a", 160), SMS_GSM7, 160, 1);
	check(rep(b, "a", 161), SMS_GSM7, 161, 2);
	check(rep(b, "a", 306), SMS_GSM7, 306, 2);
	check(rep(b, "a", 307), SMS_GSM7, 307, 3);
	check(rep(b, "\xD0\x96", 70), SMS_UCS2, 70, 1); /* Cyrillic Zhe */
	check(rep(b, "\xD0\x96", 71), SMS_UCS2, 71, 2);
	check(rep(b, "\xD0\x96", 134), SMS_UCS2, 134, 2);
	check(rep(b, "\xD0\x96", 135), SMS_UCS2, 135, 3);
	/* 80 euro signs = 160 septets: one SMS; 81 = 162 */
	check(rep(b, "\xE2\x82\xAC", 80), SMS_GSM7, 160, 1);
	check(rep(b, "\xE2\x82\xAC", 81), SMS_GSM7, 162, 2);
	/* escape pair at a part boundary: 152 'a' + '{' would straddle 153 -> moves to part 2 */
	snprintf(c, sizeof c, "%s{%s", rep(b, "a", 152), "xxxxxxxxxx");
	check(c, SMS_GSM7, 164, 2);
	/* 158 + escape pair = 160 fits one SMS exactly; one more septet splits */
	snprintf(c, sizeof c, "%s]", rep(b, "a", 158));
	check(c, SMS_GSM7, 160, 1);
	snprintf(c, sizeof c, "%s]", rep(b, "a", 159));
	check(c, SMS_GSM7, 161, 2);
	snprintf(c, sizeof c, "%s{%s", rep(b, "a", 152), rep(b + 4000, "a", 152));
	check(c, SMS_GSM7, 306, 3); /* 152 | {+151 = 153 | 1 */
	snprintf(c, sizeof c, "%s{%s", rep(b, "a", 151), rep(b + 4000, "a", 153));
	check(c, SMS_GSM7, 306, 2); /* 151+{ = 153 | 153 */
	/* emoji = 2 UTF-16 units; 35 emoji = 70 units = 1 SMS */
	check(rep(b, "\xF0\x9F\x98\x80", 35), SMS_UCS2, 70, 1);
	check(rep(b, "\xF0\x9F\x98\x80", 36), SMS_UCS2, 72, 2);
	/* 66 units then an emoji: the pair can't straddle the 67 boundary */
	snprintf(c, sizeof c, "%s\xF0\x9F\x98\x80%s", rep(b, "\xD0\x96", 66), "a");
	check(c, SMS_UCS2, 69, 1);
	snprintf(c, sizeof c, "%s\xF0\x9F\x98\x80%s", rep(b, "\xD0\x96", 66), rep(b + 4000, "a", 3));
	check(c, SMS_UCS2, 71, 2);
	snprintf(c, sizeof c, "%s\xF0\x9F\x98\x80%s", rep(b, "\xD0\x96", 66), rep(b + 4000, "a", 66));
	check(c, SMS_UCS2, 134, 3); /* 66 | 2+65 | 1 */
}

static void test_invalid(void **state)
{
	(void)state;
	sms_info_t in;
	assert_int_equal(sms_analyze("a\xC3", 2, &in), TOCSIN_ERR_INVAL);
	assert_int_equal(sms_analyze("\xED\xA0\x80", 3, &in), TOCSIN_ERR_INVAL); /* surrogate */
	assert_int_equal(sms_analyze("\xC0\xAF", 2, &in), TOCSIN_ERR_INVAL);     /* overlong */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_boundaries),
		cmocka_unit_test(test_invalid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
