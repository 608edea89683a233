/* test_sim_json.c -- the emulator's JSON scanner: validation as jansson's, escapes, nesting, truncation, duplicate keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "vendors/sim/sim_json.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* parse s from an exact-size heap copy (reads past the end show under ASan) */
static int parse(const char *s, size_t n, sj_t *root)
{
	char *c = malloc(n ? n : 1);
	memcpy(c, s, n);
	sj_t r;
	int rc = sj_parse(c, n, &r);
	if (root && !rc) { /* re-point into s */
		root->p = s + (r.p - c);
		root->n = r.n;
	}
	free(c);
	return rc;
}

static int ok(const char *s) { return parse(s, strlen(s), NULL) == 0; }

static void test_valid(void **st)
{
	(void)st;
	const char *good[] = {
	    "{}",
	    " {} ",
	    "\n\t{ }\r\n",
	    "{\"a\":1}",
	    "{\"a\":-0.5,\"b\":[1,2,[3,{}]],\"c\":null,\"d\":true,\"e\":false}",
	    "{\"s\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\"}",
	    "{\"\":\"\"}",
	    "{\"u\":\"caf\xc3\xa9 \xf0\x9f\x98\x80\"}",
	    "{\"n\":123456789012345}",
	    "{\"a\" : [ ] , \"b\" : { } }",
	};
	for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
		if (!ok(good[i]))
			fail_msg("should parse: %s", good[i]);
		json_t *j = json_loads(good[i], 0, NULL); /* jansson agrees */
		assert_non_null(j);
		json_decref(j);
	}
}

/* bad JSON, or what the scanner leaves to jansson: always -1 */
static void test_refused(void **st)
{
	(void)st;
	const char *bad[] = {
	    "",
	    " ",
	    "[]",
	    "\"s\"",
	    "1",
	    "{",
	    "}",
	    "{\"a\"}",
	    "{\"a\":}",
	    "{\"a\":1,}",
	    "{,}",
	    "{\"a\":1}x",
	    "{\"a\":1}{}",
	    "{a:1}",
	    "{\"a\":01}",
	    "{\"a\":1.}",
	    "{\"a\":.5}",
	    "{\"a\":-}",
	    "{\"a\":+1}",
	    "{\"a\":1e5}",
	    "{\"a\":1234567890123456}",
	    "{\"a\":tru}",
	    "{\"a\":nul}",
	    "{\"a\":True}",
	    "{\"a\":\"\\u0000\"}",
	    "{\"a\":\"\\ud800\"}",
	    "{\"a\":\"\\udc00\"}",
	    "{\"a\":\"\\ud800\\u0041\"}",
	    "{\"a\":\"\\x\"}",
	    "{\"a\":\"\\u12\"}",
	    "{\"a\":\"\\u12g4\"}",
	    "{\"a\":\"tab\there\"}",
	    "{\"a\":\"\xc0\xaf\"}",
	    "{\"a\":\"\xed\xa0\x80\"}",
	    "{\"a\":\"\xf4\x90\x80\x80\"}",
	    "{\"a\":\"\xc3\"}",
	    "{\"a\":\"\x80\"}",
	    "{\"a\":[1,2}",
	    "{\"a\":{]}",
	    "{\"a\":\"unterminated}",
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		if (ok(bad[i]))
			fail_msg("should be refused: %s", bad[i]);
	/* a raw NUL inside the body */
	assert_int_equal(parse("{\"a\":\"x\0y\"}", 11, NULL), -1);
	assert_int_equal(parse("{}\0", 3, NULL), -1);
}

/* every proper prefix of a valid body is refused (truncated uploads) */
static void test_truncated(void **st)
{
	(void)st;
	const char *s = "{\"personalizations\":[{\"to\":[{\"email\":\"a@b.org\"}],\"custom_args\":{\"tocsin_id\":\"x\\u00e9\\n\"}}],"
	                "\"n\":[1,-2.5,true,false,null],\"k\":{\"deep\":[[[{}]]]}}";
	size_t n = strlen(s);
	assert_int_equal(parse(s, n, NULL), 0);
	for (size_t i = 0; i < n; i++)
		if (parse(s, i, NULL) == 0)
			fail_msg("prefix of %zu bytes accepted", i);
}

static void test_nesting(void **st)
{
	(void)st;
	char b[400];
	/* 64 levels of containers: the root object and 63 arrays */
	size_t n = 0;
	b[n++] = '{';
	memcpy(b + n, "\"a\":", 4);
	n += 4;
	for (int i = 0; i < 63; i++)
		b[n++] = '[';
	for (int i = 0; i < 63; i++)
		b[n++] = ']';
	b[n++] = '}';
	assert_int_equal(parse(b, n, NULL), 0);
	/* one more level: left to jansson */
	n = 0;
	b[n++] = '{';
	memcpy(b + n, "\"a\":", 4);
	n += 4;
	for (int i = 0; i < 64; i++)
		b[n++] = '[';
	for (int i = 0; i < 64; i++)
		b[n++] = ']';
	b[n++] = '}';
	assert_int_equal(parse(b, n, NULL), -1);
}

static void test_iterate_and_decode(void **st)
{
	(void)st;
	const char *s = " {\"a\" : \"x\\\"y\\\\z\\/\\u00e9\\ud83d\\ude00\\n\", \"b\":[1, {\"c\":\"}]\"}, \"]\" ],"
	                "\"a\":\"second\", \"e\\u0073c\":null, \"d\":{\"q\":[[]]}} ";
	sj_t r, k, v;
	assert_int_equal(parse(s, strlen(s), &r), 0);
	assert_int_equal(sj_type(r), SJ_OBJ);
	sj_it_t it;
	assert_int_equal(sj_iter(r, SJ_ARR, &it), -1);
	assert_int_equal(sj_iter(r, SJ_OBJ, &it), 0);
	const char *keys[] = {"a", "b", "a", NULL, "d"};
	int types[] = {SJ_STR, SJ_ARR, SJ_STR, SJ_NULL, SJ_OBJ};
	int i = 0;
	char out[64];
	while (sj_next_member(&it, &k, &v)) {
		assert_true(i < 5);
		if (keys[i]) {
			assert_true(sj_key_is(k, keys[i]));
			assert_false(sj_has_esc(k));
		} else {
			assert_true(sj_has_esc(k)); /* "e\u0073c" = "esc": not a plain match */
			assert_false(sj_key_is(k, "esc"));
			assert_int_equal(sj_str_dec(k, out), 3);
			assert_string_equal(out, "esc");
		}
		assert_int_equal(sj_type(v), types[i]);
		if (i == 0) {
			assert_true(sj_has_esc(v));
			const char *want = "x\"y\\z/\xc3\xa9\xf0\x9f\x98\x80\n";
			assert_int_equal(sj_str_len(v), strlen(want));
			assert_int_equal(sj_str_dec(v, out), strlen(want));
			assert_string_equal(out, want);
		}
		if (i == 1) { /* brackets inside strings do not end the array */
			sj_it_t ai;
			sj_t e;
			int n = 0;
			assert_int_equal(sj_iter(v, SJ_ARR, &ai), 0);
			while (sj_next_elem(&ai, &e))
				n++;
			assert_int_equal(n, 3);
			assert_int_equal(v.n, strlen("[1, {\"c\":\"}]\"}, \"]\" ]"));
		}
		if (i == 2) { /* a duplicate key is seen twice; the consumer decides (last wins) */
			assert_false(sj_has_esc(v));
			assert_int_equal(sj_str_len(v), 6);
		}
		i++;
	}
	assert_int_equal(i, 5);
	/* empty containers */
	assert_int_equal(parse("{\"a\":[],\"b\":{}}", 15, &r), 0);
	assert_int_equal(sj_iter(r, SJ_OBJ, &it), 0);
	assert_int_equal(sj_next_member(&it, &k, &v), 1);
	sj_it_t e2;
	sj_t x;
	assert_int_equal(sj_iter(v, SJ_ARR, &e2), 0);
	assert_int_equal(sj_next_elem(&e2, &x), 0);
	assert_int_equal(sj_next_member(&it, &k, &v), 1);
	assert_int_equal(sj_iter(v, SJ_OBJ, &e2), 0);
	assert_int_equal(sj_next_member(&e2, &k, &x), 0);
	assert_int_equal(sj_next_member(&it, &k, &v), 0);
	sj_t none = {NULL, 0};
	assert_int_equal(sj_type(none), SJ_NONE);
	assert_int_equal(sj_iter(none, SJ_OBJ, &it), -1);
}

/* the decoded strings are the ones jansson reads */
static void test_decode_like_jansson(void **st)
{
	(void)st;
	const char *vals[] = {"plain",
	                      "",
	                      "a\\nb\\tc\\rd\\be\\ff",
	                      "\\u0041\\u00ff\\u0800\\uffff\\ud800\\udc00\\udbff\\udfff",
	                      "\\\"quoted\\\" \\\\ back \\/ slash",
	                      "<a href=\\\"https://x.org/u/AQ\\\">x</a>"};
	for (size_t i = 0; i < sizeof vals / sizeof *vals; i++) {
		char body[256];
		snprintf(body, sizeof body, "{\"v\":\"%s\"}", vals[i]);
		sj_t r, k, v;
		sj_it_t it;
		assert_int_equal(parse(body, strlen(body), &r), 0);
		assert_int_equal(sj_iter(r, SJ_OBJ, &it), 0);
		assert_int_equal(sj_next_member(&it, &k, &v), 1);
		json_t *j = json_loads(body, 0, NULL);
		json_t *jv = json_object_get(j, "v");
		char out[256];
		assert_int_equal(sj_str_len(v), json_string_length(jv));
		assert_int_equal(sj_str_dec(v, out), json_string_length(jv));
		assert_memory_equal(out, json_string_value(jv), json_string_length(jv));
		json_decref(j);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_valid),
	    cmocka_unit_test(test_refused),
	    cmocka_unit_test(test_truncated),
	    cmocka_unit_test(test_nesting),
	    cmocka_unit_test(test_iterate_and_decode),
	    cmocka_unit_test(test_decode_like_jansson),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
