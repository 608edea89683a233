/* test_trk_recon.c -- tracker/recon on a controllable clock: who is asked, what is published, when unknown_receipt comes, and that a late receipt still wins. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <sqlite3.h>

#include "core/cfg.h"
#include "core/err.h"
#include "tracker/recon.h"
#include "tracker/store.h"

#define T0 1700000000000LL
#define S 1000LL

static char dir[128], dbpath[256];
static trk_store_t *ST;
static cfg_t *C;

/* the fake world: a clock, Twilio's answers by reference, a vendor without lookup */
typedef struct world {
	int64_t now;
	int asks_tw, asks_vg, published;
} world_t;

static int64_t w_now(void *ctx) { return ((world_t *)ctx)->now; }

static int w_ask(void *ctx, const cfg_vendor_t *v, const char *ref, vnd_lookup_t *out)
{
	world_t *w = ctx;
	if (!strcmp(v->kind, "vonage")) {
		w->asks_vg++;
		return TOCSIN_ERR_CONFIG; /* no lookup API */
	}
	w->asks_tw++;
	memset(out, 0, sizeof *out);
	snprintf(out->detail, sizeof out->detail, "vendor says %s", ref);
	if (!strcmp(ref, "SMdeliv"))
		out->state = MSG_ST_DELIVERED;
	else if (!strcmp(ref, "SMsent"))
		out->state = MSG_ST_SENT;
	else if (!strcmp(ref, "SMundel")) {
		out->state = MSG_ST_UNDELIVERED;
		snprintf(out->code, sizeof out->code, "30003");
	} else if (!strcmp(ref, "SMerr"))
		return TOCSIN_ERR_AGAIN;
	else
		out->state = MSG_ST_ACCEPTED; /* still queued at the vendor */
	return 0;
}

/* what the ingest would do with the record once it is on tocsin.status */
static int w_publish(void *ctx, const msg_status_t *st)
{
	world_t *w = ctx;
	w->published++;
	assert_int_equal(st->latency_ms, -1); /* a receipt, not a vendor answer */
	assert_int_equal(st->attempt, 0);
	assert_true(st->ts_ms == w->now);
	assert_int_equal(trk_store_begin(ST), 0);
	int rc = trk_store_status(ST, st);
	assert_int_equal(trk_store_commit(ST), 0);
	return rc < 0 ? rc : 0;
}

static void put(const char *id, const char *camp, msg_state_t st, const char *vendor,
                const char *ref, int64_t ts)
{
	msg_status_t s = {.id = id,
	                  .campaign = camp,
	                  .channel = MSG_CH_SMS,
	                  .to = "+15555550100",
	                  .state = st,
	                  .vendor = vendor,
	                  .vendor_ref = ref,
	                  .latency_ms = 50,
	                  .ts_ms = ts};
	assert_int_equal(trk_store_begin(ST), 0);
	assert_int_equal(trk_store_status(ST, &s), 1);
	assert_int_equal(trk_store_commit(ST), 0);
}

static int state_of(const char *id, char *code, size_t codelen)
{
	sqlite3_stmt *q;
	assert_int_equal(sqlite3_prepare_v2(trk_store_db(ST),
	                                    "SELECT state, code FROM msgs WHERE id=?1", -1, &q, NULL),
	                 SQLITE_OK);
	sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
	int st = -1;
	if (sqlite3_step(q) == SQLITE_ROW) {
		st = sqlite3_column_int(q, 0);
		if (code)
			snprintf(code, codelen, "%s",
			         sqlite3_column_text(q, 1) ? (const char *)sqlite3_column_text(q, 1)
			                                   : "");
	}
	sqlite3_finalize(q);
	return st;
}

static int setup(void **st)
{
	(void)st;
	snprintf(dir, sizeof dir, "/tmp/test_trk_recon.%d", (int)getpid());
	snprintf(dbpath, sizeof dbpath, "%s/t.db", dir);
	char cfgpath[256], err[512];
	snprintf(cfgpath, sizeof cfgpath, "%s.json", dir);
	FILE *f = fopen(cfgpath, "w");
	fprintf(f,
	        "{\"var_dir\":\"%s\",\"vendors\":["
	        "{\"name\":\"tw\",\"kind\":\"twilio\",\"base_url\":\"http://127.0.0.1:1\",\"account\":\"ACt\","
	        "\"secret_env\":\"T_TW\",\"senders\":{\"main\":{\"from\":\"+15005550006\"}}},"
	        "{\"name\":\"vg\",\"kind\":\"vonage\",\"base_url\":\"http://127.0.0.1:1\",\"account\":\"k\","
	        "\"secret_env\":\"T_VG\",\"webhook_auth\":\"none\",\"senders\":{\"main\":{\"from\":\"15005550007\"}}}],"
	        "\"tracker\":{\"public_url\":\"https://t.example.org\",\"reconcile_after_s\":10,"
	        "\"unknown_receipt_after_s\":60}}",
	        dir);
	fclose(f);
	C = cfg_load(cfgpath, err, sizeof err);
	unlink(cfgpath);
	if (!C)
		return fprintf(stderr, "%s\n", err), -1;
	ST = trk_store_open(dbpath, 0, err, sizeof err);
	return ST ? 0 : -1;
}

static int teardown(void **st)
{
	(void)st;
	trk_store_free(ST);
	cfg_free(C);
	char cmd[200];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	return system(cmd);
}

static void test_passes(void **st)
{
	(void)st;
	/* m1..m6 in campaign c1; m7 already delivered; m8 a receipt that matched no campaign */
	put("m1", "c1", MSG_ST_ACCEPTED, "tw", "SMdeliv", T0 - 20 * S); /* asked: delivered */
	put("m2", "c1", MSG_ST_SENT, "tw", "SMq", T0 - 20 * S);         /* asked: still queued */
	put("m3", "c1", MSG_ST_ACCEPTED, "tw", "SMsent", T0 - 5 * S);   /* too recent to ask */
	put("m4", "c1", MSG_ST_ACCEPTED, "vg", "0A01", T0 - 20 * S);    /* no lookup API */
	put("m5", "c1", MSG_ST_ACCEPTED, "vg", "0A02", T0 - 70 * S);    /* past the deadline */
	put("m6", "c1", MSG_ST_ACCEPTED, "tw", "SMerr", T0 - 70 * S);   /* no answer, past it */
	put("m9", "c1", MSG_ST_ACCEPTED, "tw", "SMundel", T0 - 30 * S); /* asked: undelivered 30003 */
	put("m7", "c1", MSG_ST_DELIVERED, "tw", "SMdone", T0 - 90 * S);
	put("m8", "", MSG_ST_ACCEPTED, "tw", "SMorphan", T0 - 90 * S);
	world_t w = {.now = T0};
	trk_recon_io_t io = {w_now, w_ask, w_publish, &w};
	char err[256], code[64];
	trk_recon_t *r = trk_recon_new(C, &io, err, sizeof err);
	assert_non_null(r);

	assert_int_equal(trk_recon_pass(r, ST), 4); /* m1 delivered, m9 undelivered, m5 and m6 unknown */
	assert_int_equal(w.asks_tw, 4);             /* m1, m2, m6, m9: not m3 (recent), m7, m8 */
	assert_int_equal(w.asks_vg, 1);             /* once: then the vendor is left for the pass */
	assert_int_equal(state_of("m1", NULL, 0), MSG_ST_DELIVERED);
	assert_int_equal(state_of("m2", NULL, 0), MSG_ST_SENT);
	assert_int_equal(state_of("m3", NULL, 0), MSG_ST_ACCEPTED);
	assert_int_equal(state_of("m4", NULL, 0), MSG_ST_ACCEPTED);
	assert_int_equal(state_of("m5", code, sizeof code), MSG_ST_UNKNOWN_RECEIPT);
	assert_string_equal(code, "no_receipt");
	assert_int_equal(state_of("m6", NULL, 0), MSG_ST_UNKNOWN_RECEIPT);
	assert_int_equal(state_of("m9", code, sizeof code), MSG_ST_UNDELIVERED);
	assert_string_equal(code, "30003");
	assert_int_equal(state_of("m8", NULL, 0), MSG_ST_ACCEPTED); /* campaign "": left alone */
	trk_recon_stats_t s;
	trk_recon_stats(r, &s);
	assert_int_equal(s.asked, 4);
	assert_int_equal(s.reconciled, 2);
	assert_int_equal(s.unknown, 2);
	assert_int_equal(s.errors, 1);

	/* a second later: m2 was asked less than reconcile_after_s ago, nothing is due */
	w.now = T0 + 1 * S;
	assert_int_equal(trk_recon_pass(r, ST), 0);
	assert_int_equal(w.asks_tw, 4);

	/* 45 s later: m2 asked again (still queued) and past the deadline; m3 asked (sent); m4 past it */
	w.now = T0 + 45 * S;
	assert_int_equal(trk_recon_pass(r, ST), 3);
	assert_int_equal(w.asks_tw, 6);
	assert_int_equal(state_of("m2", NULL, 0), MSG_ST_UNKNOWN_RECEIPT);
	assert_int_equal(state_of("m3", NULL, 0), MSG_ST_SENT);
	assert_int_equal(state_of("m4", NULL, 0), MSG_ST_UNKNOWN_RECEIPT);

	/* unknown_receipt is not final: the late receipt still moves m5 on; nothing is left to do */
	put("m5", "c1", MSG_ST_DELIVERED, "vg", "0A02", T0 + 50 * S);
	assert_int_equal(state_of("m5", NULL, 0), MSG_ST_DELIVERED);
	w.now = T0 + 200 * S;
	int published = w.published;
	assert_int_equal(trk_recon_pass(r, ST), 1); /* m3: sent at T0+45 s, 155 s without news */
	assert_int_equal(w.published, published + 1);
	assert_int_equal(state_of("m3", NULL, 0), MSG_ST_UNKNOWN_RECEIPT);
	assert_int_equal(trk_recon_pass(r, ST), 0);
	trk_counts_t c;
	assert_int_equal(trk_store_counts(ST, "c1", &c), 0);
	assert_int_equal(c.states[MSG_ST_ACCEPTED] + c.states[MSG_ST_SENT], 0);
	trk_recon_free(r);
}

/* a failing publication is counted and changes nothing; the next pass tries again */
static int fail_publish(void *ctx, const msg_status_t *st)
{
	(void)ctx, (void)st;
	return TOCSIN_ERR_KAFKA;
}

static void test_publish_failure(void **st)
{
	(void)st;
	put("p1", "c2", MSG_ST_ACCEPTED, "vg", "0B01", T0 - 100 * S);
	world_t w = {.now = T0};
	trk_recon_io_t io = {w_now, w_ask, fail_publish, &w};
	char err[256];
	trk_recon_t *r = trk_recon_new(C, &io, err, sizeof err);
	assert_int_equal(trk_recon_pass(r, ST), 0);
	trk_recon_stats_t s;
	trk_recon_stats(r, &s);
	assert_true(s.errors >= 1);
	assert_int_equal(state_of("p1", NULL, 0), MSG_ST_ACCEPTED);
	trk_recon_free(r);
	io.publish = w_publish;
	r = trk_recon_new(C, &io, err, sizeof err);
	assert_int_equal(trk_recon_pass(r, ST), 1);
	assert_int_equal(state_of("p1", NULL, 0), MSG_ST_UNKNOWN_RECEIPT);
	trk_recon_free(r);
}

int main(void)
{
	setenv("T_TW", "tw-secret", 1);
	setenv("T_VG", "vg-secret", 1);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_passes),
	    cmocka_unit_test(test_publish_failure),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
