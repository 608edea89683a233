/* test_drill.c -- core/drill: the drill runs only when every address of its configuration is its
 * own (vendors on its emulator, tracker on loopback, no Kafka cluster), naming what is not; its
 * table says each scenario's wall time and where it went, and the whole drill's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "core/drill.h"

#include <stdio.h>
#include <stdlib.h>
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

/* The terminal table of a result document: wall and phases per scenario, halves rounded up as
 * the report's browser check (JavaScript's toFixed) does, the whole drill's time and load. */
static void test_drill_print(void **st)
{
	(void)st;
	json_t *r = json_loads(
	    "{\"duration_ms\":335480,\"startup_ms\":1250,\"load_start\":2.2,\"load\":2.91,"
	    "\"pass\":true,\"capacity\":{},\"scenarios\":[{\"name\":\"kill\",\"messages\":20000,"
	    "\"elapsed_ms\":30125,\"wall_ms\":31875,\"rate_per_s\":650.4,\"detect_ms\":null,"
	    "\"switch_ms\":null,\"recover_ms\":1125,\"lost\":0,\"twice\":128,\"twice_bound\":256,"
	    "\"pass\":true,\"failures\":[],\"phases_ms\":{\"prepare\":40,\"first\":610,"
	    "\"steady\":4100,\"fault\":0,\"tail\":26525,\"measure\":600}}]}",
	    0, NULL);
	assert_non_null(r);
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	assert_non_null(f);
	drill_print(f, r);
	fclose(f);
	assert_non_null(strstr(out, "kill          20000   30.13 s   31.88 s      650        -           "
	                            "-    1.13 s      0      128 (256)  PASS\n"));
	assert_non_null(strstr(out, "\ntime (s)   prepare    first   steady    fault     tail  measure"
	                            "     wall\nkill           0.0      0.6      4.1      0.0     26.5"
	                            "      0.6     31.9\n"));
	assert_non_null(strstr(out, "\ndrill: 1 scenario(s) in 5 min 35 s, after 1.2 s starting its "
	                            "processes; load average 2.20 at the start, 2.91 at the end\n"));
	free(out);
	json_decref(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(test_drill_private),
	                                   cmocka_unit_test(test_drill_print)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
