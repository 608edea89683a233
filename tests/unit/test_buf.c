/* test_buf.c -- unit tests for core/buf: caps, escaping writers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "core/buf.h"
#include "core/err.h"

static void test_append_and_cap(void **state)
{
	(void)state;
	buf_t b;
	buf_init(&b, 8);
	assert_int_equal(buf_puts(&b, "abcd"), 0);
	assert_int_equal(buf_puts(&b, "efgh"), 0);
	assert_string_equal(b.p, "abcdefgh");
	/* One more byte exceeds the cap and leaves the contents as they were. */
	assert_int_equal(buf_putc(&b, 'x'), TOCSIN_ERR_TOOBIG);
	assert_int_equal(b.len, 8);
	assert_string_equal(b.p, "abcdefgh");
	buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_int_equal(buf_printf(&b, "%d-%s", 42, "x"), 0);
	assert_string_equal(b.p, "42-x");
	buf_free(&b);
	buf_free(&b); /* twice is harmless */
}

static void test_printf_long(void **state)
{
	(void)state;
	buf_t b;
	buf_init(&b, 1 << 20);
	char big[1000];
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = 0;
	assert_int_equal(buf_printf(&b, "<%s>", big), 0);
	assert_int_equal(b.len, 1001);
	assert_int_equal(b.p[0], '<');
	assert_int_equal(b.p[1000], '>');
	buf_free(&b);
}

static void test_i64(void **state)
{
	(void)state;
	buf_t b;
	buf_init(&b, 100);
	buf_put_i64(&b, 0);
	buf_putc(&b, ' ');
	buf_put_i64(&b, -9223372036854775807LL - 1);
	buf_putc(&b, ' ');
	buf_put_i64(&b, 1234567890123LL);
	assert_string_equal(b.p, "0 -9223372036854775808 1234567890123");
	buf_free(&b);
}

static void test_json_str(void **state)
{
	(void)state;
	buf_t b;
	buf_init(&b, 1000);
	const char in[] = "a\"b\\c\nd\x01\xc3\xa9";
	assert_int_equal(buf_json_str(&b, in, sizeof in - 1), 0);
	assert_string_equal(b.p, "\"a\\\"b\\\\c\\nd\\u0001\xc3\xa9\"");
	buf_free(&b);
	buf_init(&b, 5);
	assert_int_equal(buf_json_str(&b, "abcd", 4), TOCSIN_ERR_TOOBIG);
	assert_int_equal(b.len, 0);
	buf_free(&b);
}

static void test_form_enc(void **state)
{
	(void)state;
	buf_t b;
	buf_init(&b, 1000);
	buf_form_enc(&b, "Hi Ana & +1/x=é", strlen("Hi Ana & +1/x=é"));
	assert_string_equal(b.p, "Hi+Ana+%26+%2B1%2Fx%3D%C3%A9");
	buf_reset(&b);
	buf_url_enc(&b, "a b~", 4);
	assert_string_equal(b.p, "a%20b~");
	buf_reset(&b);
	assert_int_equal(buf_form_kv(&b, "To", "+1 555"), 0);
	assert_int_equal(buf_form_kv(&b, "Body", "a&b"), 0);
	assert_string_equal(b.p, "To=%2B1+555&Body=a%26b");
	buf_reset(&b);
	assert_int_equal(buf_xml_text(&b, "<a href=\"x\">R&D</a> é"), 0);
	assert_string_equal(b.p, "&lt;a href=&quot;x&quot;&gt;R&amp;D&lt;/a&gt; é");
	buf_free(&b);
	buf_init(&b, 8);
	assert_int_equal(buf_xml_text(&b, "<<<"), TOCSIN_ERR_TOOBIG); /* capped: stops, says so */
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_append_and_cap), cmocka_unit_test(test_printf_long),
	    cmocka_unit_test(test_i64),            cmocka_unit_test(test_json_str),
	    cmocka_unit_test(test_form_enc),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
