/* test_drill.c -- core/drill: the drill runs only when every address of its configuration is its
 * own (vendors on its emulator, tracker on loopback, no Kafka cluster), naming what is not. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "core/drill.h"

#include <string.h>

static const char *const good = "{\"kafka\":{},\"vendors\":[{\"name\":\"a\",\"base_url\":\"http://127.0.0.1:4000\"},"
                                "{\"name\":\"b\",\"base_url\":\"http://127.0.0.1:4000\"}],"
                                "\"tracker\":{\"public_url\":\"http://127.0.0.1:4001\"}}";

static int check(const char *text, char *err, size_t errlen)
{
	json_t *doc = json_loads(text, 0, NULL);
	assert_non_null(doc);
	int rc = drill_check_private(doc, "127.0.0.1:4000", err, errlen);
	json_decref(doc);
	return rc;
}

static void test_drill_private(void **st)
{
	(void)st;
	char err[600];
	assert_int_equal(check(good, err, sizeof err), 0);
	assert_int_equal(check("{\"vendors\":[{\"base_url\":\"http://127.0.0.1:4000\"},"
	                       "{\"base_url\":\"https://api.twilio.com\"}]}",
	                       err, sizeof err),
	                 -1);
	assert_string_equal(err, "vendors[1].base_url would point at https://api.twilio.com, not the "
	                         "drill's emulator http://127.0.0.1:4000");
	/* another emulator, a prefix of ours, or none at all */
	assert_int_equal(check("{\"vendors\":[{\"base_url\":\"http://127.0.0.1:40001\"}]}", err,
	                       sizeof err),
	                 -1);
	assert_int_equal(check("{\"vendors\":[{\"base_url\":\"http://127.0.0.1:4000/x\"}]}", err,
	                       sizeof err),
	                 -1);
	assert_int_equal(check("{\"vendors\":[{\"name\":\"a\"}]}", err, sizeof err), -1);
	assert_string_equal(
	    err,
	    "vendors[0].base_url would point at (none), not the drill's emulator http://127.0.0.1:4000");
	assert_int_equal(check("{\"tracker\":{\"public_url\":\"https://tocsin.example.org\"}}", err,
	                       sizeof err),
	                 -1);
	assert_string_equal(err,
	                    "tracker.public_url would point at https://tocsin.example.org, not 127.0.0.1");
	assert_int_equal(check("{\"kafka\":{\"bootstrap.servers\":\"kafka1:9092\"}}", err, sizeof err),
	                 -1);
	assert_non_null(strstr(err, "kafka would name a cluster"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(test_drill_private)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
