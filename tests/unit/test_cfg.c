/* test_cfg.c -- unit tests for core/cfg: defaults, validation messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/cfg.h"

static char *write_tmp(const char *text)
{
	static char path[64];
	snprintf(path, sizeof path, "/tmp/tocsin-test-cfg-%d.json", (int)getpid());
	FILE *f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	return path;
}

static void test_defaults(void **state)
{
	(void)state;
	char err[256];
	unsetenv("TOCSIN_CONFIG");
	char cwd[4096];
	assert_non_null(getcwd(cwd, sizeof cwd));
	assert_int_equal(chdir("/"), 0); /* no ./tocsin.json there */
	cfg_t *c = cfg_load(NULL, err, sizeof err);
	assert_int_equal(chdir(cwd), 0);
	assert_non_null(c);
	assert_string_equal(c->path, "(built-in defaults)");
	assert_string_equal(c->var_dir, "var");
	assert_int_equal(c->nvendors, 1);
	assert_string_equal(c->vendors[0].kind, "twilio");
	assert_int_equal(c->routes[MSG_CH_SMS].nvendors, 1);
	assert_non_null(cfg_sender(&c->vendors[0], "main"));
	assert_null(cfg_sender(&c->vendors[0], "other"));
	assert_string_equal(c->db_path, "var/tocsin.db");
	assert_int_equal(c->http_threads, 2);
	cfg_free(c);
	cfg_free(NULL);
}

static void expect_error(const char *json, const char *needle)
{
	char err[512];
	char *p = write_tmp(json);
	cfg_t *c = cfg_load(p, err, sizeof err);
	assert_null(c);
	if (!strstr(err, needle))
		fail_msg("error \"%s\" lacks \"%s\"", err, needle);
	unlink(p);
}

static void test_errors(void **state)
{
	(void)state;
	expect_error("{", "invalid JSON");
	expect_error("{\"vendors\":[{\"name\":\"a\",\"kind\":\"fax\",\"base_url\":\"http://x\"}]}",
	             "unknown kind \"fax\"");
	expect_error("{\"vendors\":[{\"name\":\"a\",\"kind\":\"twilio\"}]}", "base_url");
	expect_error("{\"vendors\":[{\"name\":\"a\",\"kind\":\"twilio\",\"base_url\":\"http://x\"}],"
	             "\"routes\":{\"sms\":{\"vendors\":[\"b\"]}}}",
	             "unknown vendor \"b\"");
	expect_error("{\"kafka\":{\"linger.ms\":5}}", "must be a string");
	expect_error("{\"dispatcher\":{\"http_threads\":17}}", "dispatcher.http_threads must be 0..16");
	expect_error("{\"dispatcher\":{\"http_threads\":-1}}", "dispatcher.http_threads must be 0..16");
	char err[256];
	assert_null(cfg_load("/nonexistent/tocsin.json", err, sizeof err));
	assert_non_null(strstr(err, "cannot read config"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(test_defaults),
	                                   cmocka_unit_test(test_errors)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
