/* test_tmpl.c -- unit tests for templates/tmpl: compile errors, render, missing fields, filters, sections, HTML. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "core/err.h"
#include "templates/tmpl.h"

static const char *const F[] = {"first_name", "city", "unsubscribe_url"};
#define NF 3

static tmpl_t *comp(const char *src, tmpl_mode_t mode, unsigned flags, char *err)
{
	return tmpl_compile_ex(src, strlen(src), mode, F, NF, flags, err, 256);
}

/* Render src with values v0,v1,v2 (NULL = missing); returns rc, fills out/why. */
static int rend(const char *src, tmpl_mode_t mode, unsigned flags, const char *v0, const char *v1,
                char *out, size_t cap, tmpl_why_t *why)
{
	char err[256];
	tmpl_t *t = comp(src, mode, flags, err);
	if (!t)
		fail_msg("compile %s: %s", src, err);
	const char *vals[NF] = {v0, v1, "https://x/u/T"};
	size_t lens[NF] = {v0 ? strlen(v0) : 0, v1 ? strlen(v1) : 0, 13};
	size_t n = 0;
	int rc = tmpl_render(t, vals, lens, out, cap, &n, why);
	if (rc == 0)
		assert_int_equal(n, strlen(out));
	tmpl_free(t);
	return rc;
}

static void test_vars_and_default(void **state)
{
	(void)state;
	char out[256];
	tmpl_why_t why;
	assert_int_equal(rend("Hi {{first_name}}, vote in {{ city }}!", TMPL_TEXT, 0, "Ana", "Reno",
	                      out, sizeof out, &why),
	                 0);
	assert_string_equal(out, "Hi Ana, vote in Reno!");
	assert_int_equal(rend("Hi {{first_name|default:\"friend\"}}!", TMPL_TEXT, 0, NULL, NULL,
	                      out, sizeof out, &why),
	                 0);
	assert_string_equal(out, "Hi friend!");
	assert_int_equal(rend("Hi {{first_name|default:'a \\'b\\''}}!", TMPL_TEXT, 0, "", NULL, out,
	                      sizeof out, &why),
	                 0);
	assert_string_equal(out, "Hi a 'b'!");
}

static void test_missing(void **state)
{
	(void)state;
	char out[256];
	tmpl_why_t why;
	assert_int_equal(rend("Hi {{first_name}},", TMPL_TEXT, 0, NULL, "x", out, sizeof out, &why),
	                 TOCSIN_ERR_INVAL);
	assert_string_equal(why.reason, "missing field first_name");
	assert_int_equal(why.field, 0);
	/* whitespace only, trimmed: still missing */
	assert_int_equal(rend("Hi {{first_name|trim}},", TMPL_TEXT, 0, "  ", "x", out, sizeof out, &why),
	                 TOCSIN_ERR_INVAL);
	/* the campaign's explicit choice */
	assert_int_equal(rend("Hi {{first_name}},", TMPL_TEXT, TMPL_F_MISSING_EMPTY, NULL, "x", out,
	                      sizeof out, &why),
	                 0);
	assert_string_equal(out, "Hi ,");
}

static void test_toobig_never_truncates(void **state)
{
	(void)state;
	char out[8];
	tmpl_why_t why;
	memset(out, 'Z', sizeof out);
	assert_int_equal(rend("Hi {{first_name}}!", TMPL_TEXT, 0, "Alexandra", NULL, out,
	                      sizeof out, &why),
	                 TOCSIN_ERR_TOOBIG);
	assert_int_equal(rend("Hi {{first_name}}!", TMPL_TEXT, 0, "Ale", NULL, out, sizeof out, &why),
	                 0);
	assert_string_equal(out, "Hi Ale!");
	assert_int_equal(rend("Hi {{first_name}}!!", TMPL_TEXT, 0, "Ale", NULL, out, sizeof out, &why),
	                 TOCSIN_ERR_TOOBIG);
}

static void test_compile_errors(void **state)
{
	(void)state;
	char err[256];
	assert_null(comp("Hi\n  {{frist_name}}", TMPL_TEXT, 0, err));
	assert_string_equal(err, "2:5: unknown field \"frist_name\" (did you mean first_name?)");
	assert_null(comp("Hi {{first_name", TMPL_TEXT, 0, err));
	assert_string_equal(err, "1:4: unclosed tag, expected \"}}\"");
	assert_null(comp("{{first_name|shout}}", TMPL_TEXT, 0, err));
	assert_string_equal(
	    err,
	    "1:14: unknown filter \"shout\" (filters: upper, lower, title, trim, default:\"text\")");
	assert_null(comp("{{#city}}x", TMPL_TEXT, 0, err));
	assert_string_equal(err, "1:1: section {{#city}} is never closed, expected {{/city}}");
	assert_null(comp("{{#city}}x{{/first_name}}", TMPL_TEXT, 0, err));
	assert_string_equal(
	    err, "1:11: {{/first_name}} does not match {{#city}} opened at 1:1, expected {{/city}}");
	assert_null(comp("{{first_name|default:\"x}}", TMPL_TEXT, 0, err));
	assert_string_equal(err, "1:22: unterminated string, expected closing \"");
	assert_null(comp("ab\xff", TMPL_TEXT, 0, err));
	assert_string_equal(err, "1:3: invalid UTF-8 in template (byte 0xff)");
	assert_null(comp("{{}}", TMPL_TEXT, 0, err));
	assert_string_equal(err, "1:3: expected a field name");
}

static void test_uses_field(void **state)
{
	(void)state;
	char err[256];
	tmpl_t *t = comp("{{#city}}x{{/city}}", TMPL_TEXT, 0, err);
	assert_non_null(t);
	assert_int_equal(tmpl_uses_field(t, 0), 0);
	assert_int_equal(tmpl_uses_field(t, 1), 1);
	assert_int_equal(tmpl_uses_field(t, 7), 0);
	assert_int_equal(tmpl_nfields(t), 3);
	assert_string_equal(tmpl_field_name(t, 2), "unsubscribe_url");
	tmpl_free(t);
	tmpl_free(NULL);
}

static void test_bad_input(void **state)
{
	(void)state;
	char err[256];
	/* a 1 MB field into a 1600-byte SMS buffer: too big, never truncated */
	static char huge[1 << 20];
	memset(huge, 'x', sizeof huge);
	tmpl_t *t = comp("Hi {{first_name}}", TMPL_TEXT, 0, err);
	assert_non_null(t);
	const char *vals[NF] = {huge, "", ""};
	size_t lens[NF] = {sizeof huge, 0, 0};
	char out[1601];
	size_t n = 99;
	tmpl_why_t why;
	assert_int_equal(tmpl_render(t, vals, lens, out, sizeof out, &n, &why), TOCSIN_ERR_TOOBIG);
	assert_int_equal(n, 0);
	assert_string_equal(why.reason, "rendered message exceeds 1600 bytes");
	/* invalid UTF-8 in a value, even at the very end */
	vals[0] = "Jos\xC3";
	lens[0] = 4;
	assert_int_equal(tmpl_render(t, vals, lens, out, sizeof out, &n, &why), TOCSIN_ERR_INVAL);
	assert_string_equal(why.reason, "invalid UTF-8 in field first_name");
	tmpl_free(t);
	/* sections nested too deep, too many filters, source too big */
	static char deep[4096];
	char *w = deep;
	for (int i = 0; i < TMPL_MAX_DEPTH + 1; i++)
		w += sprintf(w, "{{#city}}");
	assert_null(comp(deep, TMPL_TEXT, 0, err));
	assert_string_equal(err, "1:289: sections nested too deep (at most 32)");
	assert_null(comp("{{city|trim|trim|trim|trim|trim|trim|trim|trim|trim}}", TMPL_TEXT, 0, err));
	assert_string_equal(err, "1:48: too many filters on one tag (at most 8)");
	static char big[TMPL_MAX_SRC + 2];
	memset(big, 'a', sizeof big - 1);
	assert_null(tmpl_compile(big, sizeof big - 1, TMPL_TEXT, F, NF, err, sizeof err));
	assert_string_equal(err, "1:1: template is 1048577 bytes, at most 1048576 allowed");
	/* an unknown name with no fields at all; a NUL inside the source; a tiny err buffer */
	assert_null(tmpl_compile("{{x}}", 5, TMPL_TEXT, NULL, 0, err, sizeof err));
	assert_string_equal(err, "1:3: unknown field \"x\" (fields: none)");
	assert_null(tmpl_compile("{{x\0}}", 6, TMPL_TEXT, F, NF, err, sizeof err));
	assert_null(tmpl_compile("{{x}}", 5, TMPL_TEXT, F, NF, err, 4));
	assert_string_equal(err, "1:3");
	assert_null(tmpl_compile("{{x}}", 5, TMPL_TEXT, F, NF, NULL, 0));
	/* an empty template renders to "" */
	t = tmpl_compile("", 0, TMPL_TEXT, F, NF, err, sizeof err);
	assert_non_null(t);
	assert_int_equal(tmpl_render(t, vals, lens, out, 1, &n, &why), 0);
	assert_int_equal(n, 0);
	assert_string_equal(out, "");
	tmpl_free(t);
}

static void test_html_and_filters(void **state)
{
	(void)state;
	char out[256];
	tmpl_why_t why;
	/* escaping happens after filters, and fits exactly or fails */
	assert_int_equal(rend("{{first_name|upper}}", TMPL_HTML, 0, "a&b", NULL, out, sizeof out, &why),
	                 0);
	assert_string_equal(out, "A&amp;B");
	assert_int_equal(rend("{{first_name}}", TMPL_HTML, 0, "<>", NULL, out, 9, &why), 0);
	assert_string_equal(out, "&lt;&gt;");
	assert_int_equal(rend("{{first_name}}", TMPL_HTML, 0, "<>", NULL, out, 8, &why),
	                 TOCSIN_ERR_TOOBIG);
	assert_int_equal(rend("{{{first_name}}}", TMPL_HTML, 0, "<i>", NULL, out, sizeof out, &why), 0);
	assert_string_equal(out, "<i>");
	/* the default is a value too: escaped in HTML */
	assert_int_equal(rend("{{first_name|default:\"A&B\"}}", TMPL_HTML, 0, NULL, NULL, out,
	                      sizeof out, &why),
	                 0);
	assert_string_equal(out, "A&amp;B");
	/* title case, Latin-1 letters */
	assert_int_equal(rend("{{first_name|title}}", TMPL_TEXT, 0, "\xC3\xA9MILE d'ARC", NULL, out,
	                      sizeof out, &why),
	                 0);
	assert_string_equal(out, "\xC3\x89mile D'arc");
	/* sections do not reject a missing field: they test it */
	assert_int_equal(rend("{{#first_name}}Hi {{first_name}}{{/first_name}}{{^first_name}}Hi{{/first_name}}!",
	                      TMPL_TEXT, 0, NULL, NULL, out, sizeof out, &why),
	                 0);
	assert_string_equal(out, "Hi!");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_vars_and_default),
	    cmocka_unit_test(test_missing),
	    cmocka_unit_test(test_toobig_never_truncates),
	    cmocka_unit_test(test_compile_errors),
	    cmocka_unit_test(test_uses_field),
	    cmocka_unit_test(test_bad_input),
	    cmocka_unit_test(test_html_and_filters),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
