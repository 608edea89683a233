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
	assert_int_equal(rend("Hi {{first_name}}, vote in {{ city }}!", TMPL_TEXT, 0, "Ana", "Reno", out,
	                      sizeof out, &why), 0);
	assert_string_equal(out, "Hi Ana, vote in Reno!");
	assert_int_equal(rend("Hi {{first_name|default:\"friend\"}}!", TMPL_TEXT, 0, NULL, NULL, out,
	                      sizeof out, &why), 0);
	assert_string_equal(out, "Hi friend!");
	assert_int_equal(rend("Hi {{first_name|default:'a \\'b\\''}}!", TMPL_TEXT, 0, "", NULL, out,
	                      sizeof out, &why), 0);
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
	                      sizeof out, &why), 0);
	assert_string_equal(out, "Hi ,");
}

static void test_toobig_never_truncates(void **state)
{
	(void)state;
	char out[8];
	tmpl_why_t why;
	memset(out, 'Z', sizeof out);
	assert_int_equal(rend("Hi {{first_name}}!", TMPL_TEXT, 0, "Alexandra", NULL, out, sizeof out, &why),
	                 TOCSIN_ERR_TOOBIG);
	assert_int_equal(rend("Hi {{first_name}}!", TMPL_TEXT, 0, "Ale", NULL, out, sizeof out, &why), 0);
	assert_string_equal(out, "Hi Ale!");
	assert_int_equal(rend("Hi {{first_name}}!!", TMPL_TEXT, 0, "Ale", NULL, out, sizeof out, &why),
	                 TOCSIN_ERR_TOOBIG);
}

static void test_compile_errors(void **state)
{
	(void)state;
	char err[256];
	assert_null(comp("Hi\n  {{frist_name}}", TMPL_TEXT, 0, err));
	assert_string_equal(err, "2:5: unknown field \"frist_name\" (fields: first_name, city, unsubscribe_url)");
	assert_null(comp("Hi {{first_name", TMPL_TEXT, 0, err));
	assert_string_equal(err, "1:4: unclosed tag, expected \"}}\"");
	assert_null(comp("{{first_name|shout}}", TMPL_TEXT, 0, err));
	assert_string_equal(err, "1:14: unknown filter \"shout\" (filters: upper, lower, title, trim, default:\"text\")");
	assert_null(comp("{{#city}}x", TMPL_TEXT, 0, err));
	assert_string_equal(err, "1:1: section {{#city}} is never closed, expected {{/city}}");
	assert_null(comp("{{#city}}x{{/first_name}}", TMPL_TEXT, 0, err));
	assert_string_equal(err, "1:11: {{/first_name}} does not match {{#city}} opened at 1:1, expected {{/city}}");
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vars_and_default),
		cmocka_unit_test(test_missing),
		cmocka_unit_test(test_toobig_never_truncates),
		cmocka_unit_test(test_compile_errors),
		cmocka_unit_test(test_uses_field),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
