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
#include "core/near.h"

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
	assert_int_equal(c->nvendors, 4);
	assert_string_equal(c->vendors[0].kind, "twilio");
	assert_int_equal(c->routes[MSG_CH_SMS].nvendors, 2);
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
#define VG "{\"vendors\":[{\"name\":\"v\",\"kind\":\"vonage\",\"base_url\":\"http://x\","
	expect_error(VG "\"webhook_auth\":\"off\"}]}",
	             "\"webhook_auth\" must be \"signed\" or \"none\"");
	expect_error(VG "\"signature_method\":\"sha3\"}]}", "\"signature_method\" must be md5hash");
	expect_error(VG "\"signature_secret_env\":7}]}", "\"signature_secret_env\" must be a string");
	expect_error(VG "\"reply_countries\":[\"1x\"]}]}",
	             "vendor v: \"reply_countries\" entries are calling codes like");
	expect_error(VG "\"senders\":{\"intl\":{\"from\":\"15005550008\",\"reply_countries\":\"44\"}}}]}",
	             "vendor v: sender pool intl: \"reply_countries\" must be an array");
	expect_error(VG "\"senders\":{\"intl\":{\"from\":\"15005550008\",\"reply_countries\":[\"+4444\"]}}}]}",
	             "sender pool intl: \"reply_countries\" entries are calling codes like");
	expect_error("{\"vendors\":[{\"name\":\"t\",\"kind\":\"twilio\",\"base_url\":\"http://x\","
	             "\"webhook_auth\":\"none\"}]}",
	             "is for Vonage only");
#undef VG
	expect_error("{\"tracker\":{\"webhook_max_age_s\":0}}",
	             "tracker.webhook_max_age_s must be 1..86400");
	expect_error("{\"tracker\":{\"reply_per_minute\":-1}}", "tracker.reply_per_minute must be");
	expect_error("{\"tracker\":{\"conns_per_ip\":0}}", "tracker.conns_per_ip must be 1..10000");
	expect_error("{\"tracker\":{\"reconcile_after_s\":-1}}",
	             "tracker.reconcile_after_s must be 0..604800");
	expect_error("{\"tracker\":{\"reconcile_after_s\":\"10\"}}",
	             "tracker.reconcile_after_s must be");
	expect_error("{\"tracker\":{\"reconcile_after_s\":600,\"unknown_receipt_after_s\":300}}",
	             "tracker.unknown_receipt_after_s must be 1..2592000 and at least tracker.reconcile_after_s");
	expect_error("{\"tracker\":{\"unknown_receipt_after_s\":0}}",
	             "tracker.unknown_receipt_after_s must be");
	expect_error("{\"tracker\":{\"reconcile_after_sec\":5}}", "did you mean reconcile_after_s");
	expect_error("{\"tracker\":{\"allowed_hosts\":\"x\"}}",
	             "tracker.allowed_hosts must be a non-empty array");
	expect_error("{\"tracker\":{\"allowed_hosts\":[1]}}",
	             "tracker.allowed_hosts must hold strings");
	char err[256];
	assert_null(cfg_load("/nonexistent/tocsin.json", err, sizeof err));
	assert_non_null(strstr(err, "cannot read config"));
}

/* The whole one-line error, without the file name prefix. */
static void expect_exact(const char *json, const char *want)
{
	char err[512];
	char *p = write_tmp(json);
	cfg_t *c = cfg_load(p, err, sizeof err);
	assert_null(c);
	size_t pl = strlen(p);
	assert_true(strncmp(err, p, pl) == 0 && err[pl] == ':');
	assert_string_equal(err + pl + 2, want);
	unlink(p);
}

#define TW "\"name\":\"t\",\"kind\":\"twilio\",\"base_url\":\"http://x\""

static void test_unknown_keys(void **state)
{
	(void)state;
	/* the typos of issue 14, each with its full key path and the closest known key */
	expect_exact("{\"vendors\":[{" TW ",\"rate_per_sec\":5}]}",
	             "unknown field vendors[0].rate_per_sec (did you mean rate_per_s?)");
	expect_exact("{\"dispatcher\":{\"max_attempt\":3}}",
	             "unknown field dispatcher.max_attempt (did you mean max_attempts?)");
	expect_exact("{\"tracker\":{\"pubic_url\":\"http://x\"}}",
	             "unknown field tracker.pubic_url (did you mean public_url?)");
	expect_exact("{\"routes\":{\"sms\":{\"stratgy\":\"cheapest\"}}}",
	             "unknown field routes.sms.stratgy (did you mean strategy?)");
	/* deeper objects: sender pools, sla, the second vendor */
	expect_exact("{\"vendors\":[{" TW ",\"senders\":{\"main\":{\"form\":\"+1\"}}}]}",
	             "unknown field vendors[0].senders.main.form (did you mean from?)");
	expect_exact("{\"vendors\":[{" TW "},{\"name\":\"u\",\"kind\":\"vonage\",\"base_url\":"
	             "\"http://x\",\"sla\":{\"p59_ms\":1}}]}",
	             "unknown field vendors[1].sla.p59_ms (did you mean p95_ms?)");
	/* a field of another kind of vendor, and nothing close at all */
	expect_exact("{\"vendors\":[{" TW ",\"webhook_public_key\":\"x\"}]}",
	             "unknown field vendors[0].webhook_public_key (only sendgrid vendors have it)");
	expect_exact("{\"email\":{\"zzzzzzzzzz\":1}}",
	             "unknown field email.zzzzzzzzzz (known: unsubscribe_key_env)");
	expect_exact("{\"routes\":{\"smss\":{}}}", "unknown field routes.smss (did you mean sms?)");
	/* kafka properties are passed to librdkafka as they are */
	char err[512];
	char *p = write_tmp("{\"kafka\":{\"anything.goes\":\"1\"}}");
	cfg_t *c = cfg_load(p, err, sizeof err);
	assert_non_null(c);
	cfg_free(c);
	unlink(p);
}

static void test_near(void **state)
{
	(void)state;
	assert_int_equal(near_dist("stratgy", "strategy"), 1);
	assert_int_equal(near_dist("pubic_url", "public_url"), 1);
	assert_int_equal(near_dist("ab", "ba"), 1); /* a swap is one edit */
	assert_int_equal(near_dist("", "abc"), 3);
	near_t n;
	near_init(&n, "first_nmae");
	near_offer(&n, "last_name");
	near_offer(&n, "first_name");
	near_offer(&n, "phone");
	assert_string_equal(near_best(&n), "first_name");
	near_init(&n, "zip");
	near_offer(&n, "first_name");
	assert_null(near_best(&n)); /* too far to be a typo */
}

/* The built-in defaults are examples/tocsin.json, key for key. */
static void test_defaults_are_the_example(void **state)
{
	(void)state;
	json_error_t je;
	json_t *a = json_loads(cfg_default_json, 0, &je);
	json_t *b = json_load_file("examples/tocsin.json", 0, &je);
	assert_non_null(a);
	if (!b)
		fail_msg("examples/tocsin.json: %s", je.text);
	assert_true(json_equal(a, b));
	json_decref(a);
	json_decref(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(test_defaults),
	                                   cmocka_unit_test(test_errors),
	                                   cmocka_unit_test(test_unknown_keys),
	                                   cmocka_unit_test(test_near),
	                                   cmocka_unit_test(test_defaults_are_the_example)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
