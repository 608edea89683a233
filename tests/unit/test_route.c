/* test_route.c -- unit tests for dispatcher/route: priority, weights, cheapest, health fractions, sender pools. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "core/cfg.h"
#include "core/err.h"
#include "dispatcher/route.h"
#include "dispatcher/sla.h"

/* tw: pools main+gotv, cost 0.0079; vg: main, 0.0068; tw2: main, 0.01. */
static cfg_t *load(const char *route, const char *w_tw, const char *w_vg)
{
	char doc[2048];
	snprintf(doc, sizeof doc,
	         "{\"vendors\":["
	         "{\"name\":\"tw\",\"kind\":\"twilio\",\"base_url\":\"http://127.0.0.1:1\",\"cost\":0.0079,"
	         "\"senders\":{\"main\":\"+15005550006\",\"gotv\":\"+15005550007\"}%s},"
	         "{\"name\":\"vg\",\"kind\":\"vonage\",\"base_url\":\"http://127.0.0.1:1\",\"cost\":0.0068,"
	         "\"senders\":{\"main\":\"15005550008\"}%s},"
	         "{\"name\":\"tw2\",\"kind\":\"twilio\",\"base_url\":\"http://127.0.0.1:1\",\"cost\":0.01,"
	         "\"senders\":{\"main\":\"+15005550009\"}}],"
	         "\"routes\":{\"sms\":%s}}",
	         w_tw ? w_tw : "", w_vg ? w_vg : "", route);
	const char *path = "/tmp/tocsin-test-route.json";
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(doc, f);
	fclose(f);
	char err[256];
	cfg_t *c = cfg_load(path, err, sizeof err);
	if (!c)
		fail_msg("cfg: %s", err);
	remove(path);
	return c;
}

typedef struct fix {
	cfg_t *c;
	route_t *r;
	sla_t *sla[3];
} fix_t;

static void setup(fix_t *f, const char *route, const char *w_tw, const char *w_vg)
{
	char err[256];
	f->c = load(route, w_tw, w_vg);
	f->r = route_new(f->c, MSG_CH_SMS, err, sizeof err);
	if (!f->r)
		fail_msg("route_new: %s", err);
	sla_opts_t o;
	sla_opts_default(&o);
	for (int i = 0; i < 3; i++)
		f->sla[i] = sla_new(f->c->vendors[i].name, &o, err, sizeof err);
}

static void teardown(fix_t *f)
{
	for (int i = 0; i < 3; i++)
		sla_free(f->sla[i]);
	route_free(f->r);
	cfg_free(f->c);
}

/* Route n messages from pool; count picks per vendor; returns how many AGAIN. */
static int count(fix_t *f, const char *pool, int n, int64_t now, int exclude, int picks[3])
{
	msg_out_t m = {.channel = MSG_CH_SMS, .to = "+15551230000", .sender = pool, .segments = 1};
	int again = 0;
	picks[0] = picks[1] = picks[2] = 0;
	for (int i = 0; i < n; i++) {
		int v = -1;
		int rc = route_pick(f->r, &m, f->sla, now, exclude, &v);
		if (rc == TOCSIN_ERR_AGAIN) {
			again++;
			continue;
		}
		assert_int_equal(rc, 0);
		assert_true(v >= 0 && v < 3);
		picks[v]++;
	}
	return again;
}

#define TW 0
#define VG 1
#define TW2 2

static void test_priority(void **state)
{
	(void)state;
	fix_t f;
	int p[3];
	setup(&f, "{\"vendors\":[\"tw\",\"vg\",\"tw2\"]}", NULL, NULL);
	assert_int_equal(route_count(f.r), 3);
	assert_int_equal(route_vendor(f.r, 0), TW);
	assert_int_equal(count(&f, "main", 100, 0, -1, p), 0);
	assert_int_equal(p[TW], 100);
	/* no sla array at all = everything healthy */
	msg_out_t m = {.sender = "main"};
	int v = -1;
	assert_int_equal(route_pick(f.r, &m, NULL, 0, -1, &v), 0);
	assert_int_equal(v, TW);
	/* open and drained vendors are skipped */
	sla_apply(f.sla[TW], MSG_VH_OPEN, 0, 0, "t", NULL);
	assert_int_equal(count(&f, "main", 100, 0, -1, p), 0);
	assert_int_equal(p[VG], 100);
	sla_apply(f.sla[VG], MSG_VH_DRAINED, 1, 0, "t", NULL);
	assert_int_equal(count(&f, "main", 100, 0, -1, p), 0);
	assert_int_equal(p[TW2], 100);
	sla_apply(f.sla[TW2], MSG_VH_OPEN, 0, 0, "t", NULL);
	assert_int_equal(count(&f, "main", 10, 0, -1, p), 10); /* nothing left: hold */
	teardown(&f);
}

static void test_sender_pools(void **state)
{
	(void)state;
	fix_t f;
	int p[3];
	setup(&f, "{\"vendors\":[\"vg\",\"tw\",\"tw2\"]}", NULL, NULL);
	/* only tw owns a number for "gotv", although vg comes first */
	assert_int_equal(count(&f, "gotv", 50, 0, -1, p), 0);
	assert_int_equal(p[TW], 50);
	msg_out_t m = {.sender = "nobody"};
	int v = -1;
	assert_int_equal(route_pick(f.r, &m, f.sla, 0, -1, &v), TOCSIN_ERR_NOTFOUND);
	m.sender = NULL; /* no pool: nothing skipped */
	assert_int_equal(route_pick(f.r, &m, f.sla, 0, -1, &v), 0);
	assert_int_equal(v, VG);
	/* the only owner is down: wait, do not send from another vendor's number */
	sla_apply(f.sla[TW], MSG_VH_OPEN, 0, 0, "t", NULL);
	assert_int_equal(count(&f, "gotv", 10, 0, -1, p), 10);
	teardown(&f);
}

static void test_probing_and_ramp(void **state)
{
	(void)state;
	fix_t f;
	int p[3];
	setup(&f, "{\"vendors\":[\"tw\",\"vg\",\"tw2\"]}", NULL, NULL);
	sla_apply(f.sla[TW], MSG_VH_PROBING, 0, 0, "t", NULL);
	assert_int_equal(count(&f, "main", 1000, 0, -1, p), 0);
	assert_int_equal(p[TW], 50); /* exactly its 5% trickle */
	assert_int_equal(p[VG], 950);
	/* back to healthy: ramps from 5% to 100% over 10 s */
	sla_apply(f.sla[TW], MSG_VH_HEALTHY, 0, 0, "t", NULL);
	assert_int_equal(count(&f, "main", 1000, 5000, -1, p), 0);
	assert_true(p[TW] >= 524 && p[TW] <= 526);
	assert_int_equal(count(&f, "main", 1000, 10000, -1, p), 0);
	assert_int_equal(p[TW], 1000);
	/* ramping and alone: it takes everything rather than holding messages */
	sla_apply(f.sla[TW], MSG_VH_OPEN, 0, 20000, "t", NULL);
	sla_apply(f.sla[TW], MSG_VH_HEALTHY, 0, 20000, "t", NULL);
	sla_apply(f.sla[VG], MSG_VH_OPEN, 0, 20000, "t", NULL);
	sla_apply(f.sla[TW2], MSG_VH_OPEN, 0, 20000, "t", NULL);
	assert_int_equal(count(&f, "main", 100, 20000, -1, p), 0);
	assert_int_equal(p[TW], 100);
	/* probing and alone: only the trickle goes, the rest waits */
	sla_apply(f.sla[TW], MSG_VH_PROBING, 0, 20000, "t", NULL);
	assert_int_equal(count(&f, "main", 100, 20000, -1, p), 95);
	assert_int_equal(p[TW], 5);
	teardown(&f);
}

static void test_exclude(void **state)
{
	(void)state;
	fix_t f;
	int p[3];
	setup(&f, "{\"vendors\":[\"tw\",\"vg\",\"tw2\"]}", NULL, NULL);
	assert_int_equal(count(&f, "main", 10, 0, TW, p), 0);
	assert_int_equal(p[VG], 10);
	/* the excluded vendor is still used when it is the only one */
	assert_int_equal(count(&f, "gotv", 10, 0, TW, p), 0);
	assert_int_equal(p[TW], 10);
	sla_apply(f.sla[TW], MSG_VH_OPEN, 0, 0, "t", NULL);
	assert_int_equal(count(&f, "main", 10, 0, VG, p), 0);
	assert_int_equal(p[TW2], 10);
	teardown(&f);
}

static void test_cheapest(void **state)
{
	(void)state;
	fix_t f;
	int p[3];
	setup(&f, "{\"strategy\":\"cheapest\",\"vendors\":[\"tw2\",\"tw\",\"vg\"]}", NULL, NULL);
	assert_int_equal(route_vendor(f.r, 0), VG);
	assert_int_equal(route_vendor(f.r, 1), TW);
	assert_int_equal(route_vendor(f.r, 2), TW2);
	assert_int_equal(count(&f, "main", 20, 0, -1, p), 0);
	assert_int_equal(p[VG], 20);
	sla_apply(f.sla[VG], MSG_VH_OPEN, 0, 0, "t", NULL);
	assert_int_equal(count(&f, "main", 20, 0, -1, p), 0);
	assert_int_equal(p[TW], 20); /* cheapest among the healthy */
	teardown(&f);
}

static void test_weights(void **state)
{
	(void)state;
	fix_t f;
	int p[3];
	setup(&f, "{\"vendors\":[\"tw\",\"vg\",\"tw2\"]}", ",\"weight\":3", ",\"weight\":1");
	assert_int_equal(count(&f, "main", 400, 0, -1, p), 0);
	assert_int_equal(p[TW], 300);
	assert_int_equal(p[VG], 100);
	assert_int_equal(p[TW2], 0); /* no weight: standby */
	/* a weighted vendor probing gets weight x 5% */
	sla_apply(f.sla[TW], MSG_VH_PROBING, 0, 0, "t", NULL);
	assert_int_equal(count(&f, "main", 400, 0, -1, p), 0);
	assert_true(p[TW] >= 14 && p[TW] <= 16); /* 300 x 0.05 */
	assert_int_equal(p[TW2], 0);
	/* all weighted vendors out: the standby takes over */
	sla_apply(f.sla[TW], MSG_VH_OPEN, 0, 0, "t", NULL);
	sla_apply(f.sla[VG], MSG_VH_OPEN, 0, 0, "t", NULL);
	assert_int_equal(count(&f, "main", 50, 0, -1, p), 0);
	assert_int_equal(p[TW2], 50);
	teardown(&f);

	cfg_t *c = load("{\"vendors\":[\"tw\"]}", ",\"weight\":-2", NULL);
	char err[256];
	assert_null(route_new(c, MSG_CH_SMS, err, sizeof err));
	assert_non_null(strstr(err, "vendor tw"));
	assert_non_null(strstr(err, "weight"));
	/* a channel without vendors routes nothing */
	route_t *r = route_new(c, MSG_CH_EMAIL, err, sizeof err);
	assert_non_null(r);
	msg_out_t m = {.sender = "main"};
	int v;
	assert_int_equal(route_pick(r, &m, NULL, 0, -1, &v), TOCSIN_ERR_NOTFOUND);
	route_free(r);
	route_free(NULL);
	cfg_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_priority),         cmocka_unit_test(test_sender_pools),
	    cmocka_unit_test(test_probing_and_ramp), cmocka_unit_test(test_exclude),
	    cmocka_unit_test(test_cheapest),         cmocka_unit_test(test_weights),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
