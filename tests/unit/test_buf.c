/* test_buf.c -- unit tests for core/buf: caps, escaping writers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
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

/* the one escaper, byte by byte against the rule written out here: buf_json_esc (the
 * producer's record writer) and buf_json_str (everyone else) write the same bytes, within
 * BUF_JSON_ESC_MAX, and buf_json_str asks the cap for exactly what it writes */
static void test_json_esc_every_byte(void **state)
{
	(void)state;
	for (int c = 0; c < 256; c++) {
		char in[3] = {'x', (char)c, 'y'}, want[16], got[BUF_JSON_ESC_MAX(3)];
		const char *mid = c == '"'    ? "\\\""
		                  : c == '\\' ? "\\\\"
		                  : c == '\n' ? "\\n"
		                  : c == '\r' ? "\\r"
		                  : c == '\t' ? "\\t"
		                              : NULL;
		char one[8] = {(char)c, 0};
		if (!mid && c < 0x20)
			snprintf(one, sizeof one, "\\u%04x", (unsigned)c);
		int wl = snprintf(want, sizeof want, "\"x%sy\"", mid ? mid : one);
		size_t gl = buf_json_esc(got, in, 3);
		assert_int_equal(gl, (size_t)wl);
		assert_memory_equal(got, want, gl);
		buf_t b, tight;
		buf_init(&b, 64);
		assert_int_equal(buf_json_str(&b, in, 3), 0);
		assert_int_equal(b.len, gl);
		assert_memory_equal(b.p, want, gl);
		buf_init(&tight, gl); /* exactly enough, and one byte less refused */
		assert_int_equal(buf_json_str(&tight, in, 3), 0);
		buf_free(&tight);
		buf_init(&tight, gl - 1);
		assert_int_equal(buf_json_str(&tight, in, 3), TOCSIN_ERR_TOOBIG);
		buf_free(&tight);
		buf_free(&b);
	}
	char worst[BUF_JSON_ESC_MAX(4)];
	assert_int_equal(buf_json_esc(worst, "\x01\x02\x1f\x00", 4), BUF_JSON_ESC_MAX(4));
	assert_memory_equal(worst, "\"\\u0001\\u0002\\u001f\\u0000\"", BUF_JSON_ESC_MAX(4));
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

/* Run fn in a child with stderr to a pipe: it must die of SIGABRT, and what it wrote is
 * returned in out. */
static void expect_panic(void (*fn)(void), char *out, size_t outlen)
{
	int fd[2];
	assert_int_equal(pipe(fd), 0);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(fd[1], 2);
		close(fd[0]);
		fn();
		_exit(0); /* not reached when the invariant check fires */
	}
	close(fd[1]);
	size_t n = 0;
	ssize_t r;
	while (n < outlen - 1 && (r = read(fd[0], out + n, outlen - 1 - n)) > 0)
		n += (size_t)r;
	out[n] = 0;
	close(fd[0]);
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGABRT);
}

static void corrupt_buf(void)
{
	buf_t b;
	buf_init(&b, 64);
	buf_puts(&b, "abc");
	b.len = b.cap + 5; /* a writer went past the allocation */
	buf_puts(&b, "d");
}

static void plain_panic(void) { tocsin_panic("lifecycle %s broke", "x"); }

/* core/err.h: a broken invariant aborts, one line naming the function (also in a build
 * with NDEBUG: it is never compiled out) */
static void test_panic_names_function(void **state)
{
	(void)state;
	char out[1024];
	expect_panic(plain_panic, out, sizeof out);
	assert_non_null(strstr(out, "tocsin: panic: plain_panic: lifecycle x broke\n"));
	assert_non_null(strstr(out, "event=panic func=plain_panic"));
	expect_panic(corrupt_buf, out, sizeof out);
	assert_non_null(strstr(out, "tocsin: panic: buf_reserve: buffer of 65 bytes holds 70 (cap 64)"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_append_and_cap),
	    cmocka_unit_test(test_printf_long),
	    cmocka_unit_test(test_i64),
	    cmocka_unit_test(test_json_str),
	    cmocka_unit_test(test_json_esc_every_byte),
	    cmocka_unit_test(test_form_enc),
	    cmocka_unit_test(test_panic_names_function),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
