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

/* Every character of the GSM 03.38 basic table costs 1 septet, every extension character 2. */
static void test_tables(void **state)
{
	(void)state;
	static const char *basic[] = {
	    "@",        "\xC2\xA3", "$",        "\xC2\xA5", "\xC3\xA8", "\xC3\xA9", "\xC3\xB9",
	    "\xC3\xAC", "\xC3\xB2", "\xC3\x87", "\n",       "\xC3\x98", "\xC3\xB8", "\r",
	    "\xC3\x85", "\xC3\xA5", "\xCE\x94", "_",        "\xCE\xA6", "\xCE\x93", "\xCE\x9B",
	    "\xCE\xA9", "\xCE\xA0", "\xCE\xA8", "\xCE\xA3", "\xCE\x98", "\xCE\x9E", "\xC3\x86",
	    "\xC3\xA6", "\xC3\x9F", "\xC3\x89", " ",        "!",        "\"",       "#",
	    "\xC2\xA4", "%",        "&",        "'",        "(",        ")",        "*",
	    "+",        ",",        "-",        ".",        "/",        "0",        "1",
	    "2",        "3",        "4",        "5",        "6",        "7",        "8",
	    "9",        ":",        ";",        "<",        "=",        ">",        "?",
	    "\xC2\xA1", "A",        "B",        "C",        "D",        "E",        "F",
	    "G",        "H",        "I",        "J",        "K",        "L",        "M",
	    "N",        "O",        "P",        "Q",        "R",        "S",        "T",
	    "U",        "V",        "W",        "X",        "Y",        "Z",        "\xC3\x84",
	    "\xC3\x96", "\xC3\x91", "\xC3\x9C", "\xC2\xA7", "\xC2\xBF", "a",        "b",
	    "c",        "d",        "e",        "f",        "g",        "h",        "i",
	    "j",        "k",        "l",        "m",        "n",        "o",        "p",
	    "q",        "r",        "s",        "t",        "u",        "v",        "w",
	    "x",        "y",        "z",        "\xC3\xA4", "\xC3\xB6", "\xC3\xB1", "\xC3\xBC",
	    "\xC3\xA0",
	};
	static const char *ext[] = {"\x0C", "^", "{", "}", "\\",
	                            "[",    "~", "]", "|", "\xE2\x82\xAC"};
	static const char *not_gsm[] = {
	    "`",
	    "\t",
	    "\x7F",
	    "\xC3\xA1" /* a-acute */,
	    "\xC3\xAB" /* e-diaeresis */,
	    "\xC3\xA7" /* c-cedilla */,
	    "\xC2\xA0" /* nbsp */,
	    "\xE2\x80\x99" /* curly apostrophe */,
	    "\xCE\xB1" /* alpha */,
	    "\xCC\x81" /* combining acute */,
	    "\xF0\x9F\x98\x80" /* emoji */,
	};
	assert_int_equal(sizeof basic / sizeof basic[0], 127); /* 128 positions minus ESC */
	char b[64];
	for (size_t i = 0; i < sizeof basic / sizeof basic[0]; i++) {
		snprintf(b, sizeof b, "x%sx", basic[i]);
		check(b, SMS_GSM7, 3, 1);
	}
	for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
		snprintf(b, sizeof b, "x%sx", ext[i]);
		check(b, SMS_GSM7, 4, 1);
	}
	for (size_t i = 0; i < sizeof not_gsm / sizeof not_gsm[0]; i++) {
		sms_info_t in;
		snprintf(b, sizeof b, "x%sx", not_gsm[i]);
		assert_int_equal(sms_analyze(b, strlen(b), &in), 0);
		if (in.enc != SMS_UCS2)
			fail_msg("not_gsm[%zu] analyzed as GSM-7", i);
	}
	/* every extension char at the 153 boundary of a long message: never split */
	static char big[512];
	for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
		char *w = big;
		for (int k = 0; k < 152; k++)
			*w++ = 'a';
		w += sprintf(w, "%s", ext[i]);
		for (int k = 0; k < 20; k++)
			*w++ = 'b';
		*w = 0;
		check(big, SMS_GSM7, 174, 2); /* 152 | pair + 20 */
		big[0] = 'c';
		memmove(big, big + 1, strlen(big)); /* 151 a + pair = 153 exactly */
		check(big, SMS_GSM7, 173, 2);
	}
	/* combining marks: each one is a UTF-16 unit of its own */
	check("e\xCC\x81"
	      "e\xCC\x81",
	      SMS_UCS2, 4, 1);
	/* emoji with a variation selector and a ZWJ sequence: 2+1 and 2+1+2 units */
	check("\xE2\x9D\xA4\xEF\xB8\x8F", SMS_UCS2, 2, 1);
	check("\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x92\xBB", SMS_UCS2, 5, 1);
}

static void test_smart(void **state)
{
	(void)state;
	char s[256];
	unsigned counts[SMS_SMART_NKINDS] = {0};
	strcpy(s, "It\xE2\x80\x99s \xE2\x80\x9C"
	          "Day\xE2\x80\x9D \xE2\x80\x94 go\xE2\x80\xA6\xC2\xA0"
	          "now\xE2\x80\x8B!");
	size_t n = strlen(s);
	assert_int_equal(sms_smart_replace(s, &n, counts), 7);
	assert_int_equal(n, strlen("It's \"Day\" - go... now!"));
	assert_memory_equal(s, "It's \"Day\" - go... now!", n);
	int k19 = -1, k1d = -1;
	for (int k = 0; k < SMS_SMART_NKINDS; k++) {
		const char *to;
		const char *from = sms_smart_from(k, &to);
		assert_non_null(from);
		if (strcmp(from, "\xE2\x80\x99") == 0)
			k19 = k;
		if (strcmp(from, "\xE2\x80\x9D") == 0)
			k1d = k;
		/* a replacement is never longer than what it replaces, and is GSM-7 */
		assert_true(strlen(to) <= strlen(from));
		sms_info_t in;
		assert_int_equal(sms_analyze(to, strlen(to), &in), 0);
		assert_int_equal(in.enc, SMS_GSM7);
	}
	assert_null(sms_smart_from(SMS_SMART_NKINDS, NULL));
	assert_int_equal(counts[k19], 1);
	assert_int_equal(counts[k1d], 1);
	/* nothing to replace; invalid UTF-8 left as it is */
	strcpy(s, "plain \xFF text");
	n = strlen(s);
	assert_int_equal(sms_smart_replace(s, &n, NULL), 0);
	assert_string_equal(s, "plain \xFF text");
}

static void test_finish(void **state)
{
	(void)state;
	char body[400], reason[160];
	sms_info_t in;
	int nrep;
	sms_opts_t o = {.smart = 1, .footer = "Reply STOP to opt out"};
	/* smart + footer: GSM-7, footer counted */
	strcpy(body, "Vote \xE2\x80\x94 today");
	size_t n = strlen(body);
	assert_int_equal(sms_finish(body, &n, sizeof body, &o, &in, &nrep, NULL, reason, sizeof reason),
	                 0);
	assert_string_equal(body, "Vote - today\nReply STOP to opt out");
	assert_int_equal(n, strlen(body));
	assert_int_equal(nrep, 1);
	assert_int_equal(in.enc, SMS_GSM7);
	assert_int_equal(in.units, 34);
	/* a typographic apostrophe in the footer is replaced too */
	sms_opts_t o2 = {.smart = 1, .footer = "Don\xE2\x80\x99t want these? Reply STOP"};
	strcpy(body, "Vote");
	n = 4;
	assert_int_equal(sms_finish(body, &n, sizeof body, &o2, &in, &nrep, NULL, reason, sizeof reason),
	                 0);
	assert_string_equal(body, "Vote\nDon't want these? Reply STOP");
	assert_int_equal(nrep, 1);
	assert_int_equal(in.enc, SMS_GSM7);
	/* the footer tips 150 septets into two segments */
	memset(body, 'a', 150);
	body[150] = 0;
	n = 150;
	assert_int_equal(sms_finish(body, &n, sizeof body, &o, &in, &nrep, NULL, reason, sizeof reason),
	                 0);
	assert_int_equal(in.units, 172);
	assert_int_equal(in.segments, 2);
	/* default cap 6: 6*153 = 918 septets pass, 919 are refused */
	static char big[2000];
	sms_opts_t plain = {0};
	memset(big, 'a', 918);
	big[918] = 0;
	n = 918;
	assert_int_equal(sms_finish(big, &n, sizeof big, &plain, &in, NULL, NULL, reason, sizeof reason),
	                 0);
	assert_int_equal(in.segments, 6);
	big[918] = 'a';
	big[919] = 0;
	n = 919;
	assert_int_equal(sms_finish(big, &n, sizeof big, &plain, &in, NULL, NULL, reason, sizeof reason),
	                 TOCSIN_ERR_TOOBIG);
	assert_string_equal(reason, "message is 7 segments (gsm7), cap is 6");
	/* no room for the footer: an error, not a truncated footer */
	strcpy(body, "Hi");
	n = 2;
	assert_int_equal(sms_finish(body, &n, 10, &o, &in, NULL, NULL, reason, sizeof reason),
	                 TOCSIN_ERR_TOOBIG);
	assert_string_equal(body, "Hi");
	/* invalid UTF-8 */
	strcpy(body, "Hi \xC3");
	n = strlen(body);
	assert_int_equal(sms_finish(body, &n, sizeof body, &plain, &in, NULL, NULL, reason,
	                            sizeof reason),
	                 TOCSIN_ERR_INVAL);
	assert_string_equal(reason, "invalid UTF-8 in message");
}

/* The word-at-a-time fast path agrees with the per-character tables for every
 * ASCII byte at every position of a long message. */
static void test_fast_path(void **state)
{
	(void)state;
	for (int c = 1; c < 128; c++) {
		char shortb[4] = {'x', (char)c, 'x', 0};
		sms_info_t ref;
		assert_int_equal(sms_analyze(shortb, 3, &ref), 0);
		for (int len = 1; len <= 40; len++) {
			for (int pos = 0; pos < len; pos++) {
				char b[64];
				memset(b, 'a', (size_t)len);
				b[pos] = (char)c;
				sms_info_t in;
				assert_int_equal(sms_analyze(b, (size_t)len, &in), 0);
				if (in.enc != ref.enc ||
				    (in.enc == SMS_GSM7 && in.units != len - 1 + (ref.units - 2)) ||
				    (in.enc == SMS_UCS2 && in.units != len))
					fail_msg("byte 0x%02x at %d of %d: %s/%d, short form %s/%d",
					         c, pos, len, sms_enc_name(in.enc), in.units,
					         sms_enc_name(ref.enc), ref.units);
			}
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_boundaries), cmocka_unit_test(test_invalid),
	    cmocka_unit_test(test_tables),     cmocka_unit_test(test_fast_path),
	    cmocka_unit_test(test_smart),      cmocka_unit_test(test_finish),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
