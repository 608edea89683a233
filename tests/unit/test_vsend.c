/* test_vsend.c -- vendors/vsend against the in-process emulator on a controllable clock: a burst held to the vendor's limit, refusals that send nothing, lookups. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "core/cfg.h"
#include "core/err.h"
#include "vendors/sim/sim.h"
#include "vendors/sim/sim_int.h"
#include "vendors/vsend.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SEC 1000000000LL
#define RATE 5  /* the vendor's rate_per_s */
#define BURST 1 /* and burst */

static sim_t *SIM;
static cfg_t *C0, *C;

/* the controllable clock: a wait moves it forward at once */
typedef struct fake {
	int64_t now;
	int64_t waited;
} fake_t;
static int64_t fake_now(void *ctx) { return ((fake_t *)ctx)->now; }
static int fake_wait(void *ctx, int64_t ns)
{
	fake_t *f = ctx;
	f->now += ns;
	f->waited += ns;
	return 0;
}
static int give_up(void *ctx, int64_t ns)
{
	(void)ctx, (void)ns;
	return 1;
}

static uint64_t sim_count(const char *name, int accepted)
{
	for (size_t i = 0; i < SIM->nv; i++)
		if (!strcmp(SIM->vs[i].v->name, name))
			return accepted ? atomic_load(&SIM->vs[i].accepted)
			                : atomic_load(&SIM->vs[i].requests);
	return 0;
}

static int write_cfg(const char *path, const char *base)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -1;
	fprintf(f,
	        "{\"var_dir\":\"/tmp\",\"vendors\":["
	        "{\"name\":\"tw\",\"kind\":\"twilio\",\"base_url\":\"%s\",\"account\":\"ACtest\","
	        "\"secret_env\":\"T_TW\",\"rate_per_s\":%d,\"burst\":%d,"
	        "\"senders\":{\"main\":{\"from\":\"+15005550006\"}}},"
	        "{\"name\":\"vg\",\"kind\":\"vonage\",\"base_url\":\"%s\",\"account\":\"vgkey\","
	        "\"secret_env\":\"T_VG\",\"webhook_auth\":\"none\",\"senders\":{\"main\":{\"from\":\"15005550007\"}}}]}",
	        base, RATE, BURST, base);
	return fclose(f);
}

static int setup(void **st)
{
	(void)st;
	setenv("T_TW", "tw-secret-token", 1);
	setenv("T_VG", "vg-secret", 1);
	curl_global_init(CURL_GLOBAL_ALL);
	char path[] = "/tmp/test_vsend_XXXXXX", err[512];
	close(mkstemp(path));
	if (write_cfg(path, "http://127.0.0.1:1") || !(C0 = cfg_load(path, err, sizeof err)))
		return fprintf(stderr, "%s\n", err), -1;
	if (!(SIM = sim_new(C0, 0, 2, err, sizeof err)))
		return fprintf(stderr, "%s\n", err), -1;
	char base[64];
	snprintf(base, sizeof base, "http://127.0.0.1:%d", sim_port(SIM));
	if (write_cfg(path, base) || !(C = cfg_load(path, err, sizeof err)))
		return fprintf(stderr, "%s\n", err), -1;
	unlink(path);
	return 0;
}

static int teardown(void **st)
{
	(void)st;
	sim_free(SIM);
	cfg_free(C);
	cfg_free(C0);
	return 0;
}

static void sms(msg_out_t *m, char *to, size_t tolen, int i, const char *pool)
{
	snprintf(to, tolen, "+1202555%04d", i);
	*m = (msg_out_t){.channel = MSG_CH_SMS,
	                 .to = to,
	                 .sender = pool,
	                 .body = "reply",
	                 .enc = "gsm7",
	                 .segments = 1};
}

/* 40 sends at once: every one reaches the vendor, and no 1-second window of the
 * (controllable) clock holds more than rate + burst of them */
static void test_burst_held_to_limit(void **st)
{
	(void)st;
	fake_t fk = {.now = 100 * SEC};
	vsend_opts_t o = {.now_ns = fake_now, .wait_ns = fake_wait, .ctx = &fk};
	char err[256];
	vsend_t *s = vsend_new(C, cfg_vendor(C, "tw"), &o, err, sizeof err);
	assert_non_null(s);
	enum { N = 40 };
	int64_t at[N];
	uint64_t acc0 = sim_count("tw", 1);
	for (int i = 0; i < N; i++) {
		msg_out_t m;
		char to[32];
		sms(&m, to, sizeof to, i, "main");
		const msg_out_t *pm[1] = {&m};
		vnd_result_t r;
		vsend_info_t info;
		assert_int_equal(vsend_msgs(s, pm, 1, -1, &r, &info, err, sizeof err), 0);
		assert_int_equal(r.outcome, VND_ACCEPTED);
		assert_int_equal(info.http_status, 201);
		at[i] = fk.now; /* when it went, on the limiter's clock */
	}
	assert_int_equal(sim_count("tw", 1) - acc0, N);
	for (int i = 0; i < N; i++) {
		int in = 0;
		for (int k = i; k < N && at[k] < at[i] + SEC; k++)
			in++;
		assert_true(in <= RATE + BURST);
	}
	/* the whole burst took (N - 1 - burst) / rate seconds of waiting */
	assert_true(fk.waited >= (int64_t)(N - 1 - BURST) * SEC / RATE);
	vsend_free(s);
}

/* what would wait too long, fails to build, or meets an open vendor sends nothing and
 * takes nothing from the limit */
static void test_refusals_send_nothing(void **st)
{
	(void)st;
	fake_t fk = {.now = 500 * SEC};
	vsend_opts_t o = {.now_ns = fake_now, .wait_ns = fake_wait, .ctx = &fk};
	char err[256];
	vsend_t *s = vsend_new(C, cfg_vendor(C, "tw"), &o, err, sizeof err);
	assert_non_null(s);
	msg_out_t m;
	char to[32];
	sms(&m, to, sizeof to, 900, "main");
	const msg_out_t *pm[1] = {&m};
	vnd_result_t r;
	for (int i = 0; i < 1 + BURST; i++) /* the burst, at once */
		assert_int_equal(vsend_msgs(s, pm, 1, 0, &r, NULL, err, sizeof err), 0);
	uint64_t req0 = sim_count("tw", 0);
	assert_int_equal(vsend_msgs(s, pm, 1, 0, &r, NULL, err, sizeof err), TOCSIN_ERR_TIMEOUT);
	assert_non_null(strstr(err, "rate limit"));
	/* a wait given up (shutdown) */
	vsend_t *s2 = vsend_new(C, cfg_vendor(C, "tw"), &(vsend_opts_t){fake_now, give_up, &fk},
	                        err, sizeof err);
	for (int i = 0; i < 1 + BURST; i++)
		assert_int_equal(vsend_msgs(s2, pm, 1, -1, &r, NULL, err, sizeof err), 0);
	req0 = sim_count("tw", 0);
	assert_int_equal(vsend_msgs(s2, pm, 1, -1, &r, NULL, err, sizeof err), TOCSIN_ERR_TIMEOUT);
	vsend_free(s2);
	/* a pool the vendor has no number for: the adapter's refusal */
	msg_out_t bad = m;
	bad.sender = "nosuchpool";
	const msg_out_t *pb[1] = {&bad};
	assert_int_equal(vsend_msgs(s, pb, 1, -1, &r, NULL, err, sizeof err), TOCSIN_ERR_INVAL);
	assert_non_null(strstr(err, "nosuchpool"));
	/* open / drained: not sent; probing / healthy: sent */
	fk.now += 10 * SEC; /* the limiter is idle again */
	vsend_set_health(s, MSG_VH_OPEN);
	assert_int_equal(vsend_msgs(s, pm, 1, -1, &r, NULL, err, sizeof err), TOCSIN_ERR_AGAIN);
	vsend_set_health(s, MSG_VH_DRAINED);
	assert_int_equal(vsend_msgs(s, pm, 1, -1, &r, NULL, err, sizeof err), TOCSIN_ERR_AGAIN);
	assert_int_equal(sim_count("tw", 0), req0); /* none of the refusals reached the vendor */
	/* and none took from the limit: the burst is all there */
	vsend_set_health(s, MSG_VH_PROBING);
	int64_t t0 = fk.now;
	for (int i = 0; i < 1 + BURST; i++)
		assert_int_equal(vsend_msgs(s, pm, 1, -1, &r, NULL, err, sizeof err), 0);
	assert_int_equal(fk.now, t0);
	assert_int_equal(sim_count("tw", 0), req0 + 1 + BURST);
	vsend_free(s);
}

/* Twilio's Fetch Message answers what became of a message; Vonage has no lookup */
static void test_lookup(void **st)
{
	(void)st;
	char err[256];
	vsend_t *s = vsend_new(C, cfg_vendor(C, "tw"), NULL, err, sizeof err);
	assert_non_null(s);
	assert_int_equal(vnd_lookup_has(vsend_vnd(s)), 1);
	msg_out_t m;
	char to[32];
	sms(&m, to, sizeof to, 777, "main");
	const msg_out_t *pm[1] = {&m};
	vnd_result_t r;
	assert_int_equal(vsend_msgs(s, pm, 1, -1, &r, NULL, err, sizeof err), 0);
	assert_int_equal(r.outcome, VND_ACCEPTED);
	vnd_lookup_t lk;
	assert_int_equal(vsend_lookup(s, r.ref, -1, &lk, err, sizeof err), 0);
	assert_true(lk.state == MSG_ST_ACCEPTED || lk.state == MSG_ST_SENT ||
	            lk.state == MSG_ST_DELIVERED || lk.state == MSG_ST_UNDELIVERED);
	/* after the emulator's receipt delay (200 ms) it is final */
	usleep(400000);
	assert_int_equal(vsend_lookup(s, r.ref, -1, &lk, err, sizeof err), 0);
	assert_true(lk.state == MSG_ST_DELIVERED || lk.state == MSG_ST_UNDELIVERED);
	if (lk.state == MSG_ST_UNDELIVERED)
		assert_string_equal(lk.code, "30003");
	uint64_t req0 = sim_count("tw", 0);
	assert_int_equal(vsend_lookup(s, "SM00000000000000000000000000000000", -1, &lk, err, sizeof err),
	                 TOCSIN_ERR_NOTFOUND);
	assert_int_equal(sim_count("tw", 0), req0 + 1);
	assert_int_equal(vsend_lookup(s, "../Messages", -1, &lk, err, sizeof err), TOCSIN_ERR_INVAL);
	assert_int_equal(vsend_lookup(s, "", -1, &lk, err, sizeof err), TOCSIN_ERR_INVAL);
	assert_int_equal(sim_count("tw", 0), req0 + 1); /* refused before sending */
	vsend_free(s);
	vsend_t *v = vsend_new(C, cfg_vendor(C, "vg"), NULL, err, sizeof err);
	assert_non_null(v);
	assert_int_equal(vnd_lookup_has(vsend_vnd(v)), 0);
	assert_int_equal(vsend_lookup(v, "0A0000000123ABCD", -1, &lk, err, sizeof err),
	                 TOCSIN_ERR_NOTFOUND);
	vsend_free(v);
}

/* a missing secret names its variable, never a value */
static void test_new_refusal(void **st)
{
	(void)st;
	char err[256];
	unsetenv("T_TW");
	assert_null(vsend_new(C, cfg_vendor(C, "tw"), NULL, err, sizeof err));
	assert_non_null(strstr(err, "T_TW"));
	setenv("T_TW", "tw-secret-token", 1);
	vsend_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_burst_held_to_limit),
	    cmocka_unit_test(test_refusals_send_nothing),
	    cmocka_unit_test(test_lookup),
	    cmocka_unit_test(test_new_refusal),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
