/* test_vnd_sim.c -- every adapter against the running emulator: sends, auth errors, faults, signed receipts, inbound STOP. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "core/cfg.h"
#include "core/clock.h"
#include "core/err.h"
#include "vendors/sim/sim.h"
#include "vendors/sim/sim_int.h"
#include "vendors/vnd.h"
#include "vendors/vnd_int.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *NAMES[4] = {"tw", "vg", "sg", "mg"};

/* ---- webhook receiver (the tracker's side, in miniature) ---- */

typedef struct rx {
	pthread_mutex_t mu;
	int port;
	vnd_t *a[4];
	int events[4][MSG_ST__COUNT];
	int unsub[4], optout[4], inbound_stop[4], rejected, bad, with_id[4];
	char last[4][4096];    /* the last webhook body per vendor */
	char last_idem[4][64]; /* its I-Twilio-Idempotency-Token */
	char public_url[64];
} rx_t;

static rx_t RX;
static sim_t *SIM;
static cfg_t *C, *C0;
static char BASE[64];

typedef struct rxc {
	char body[1 << 16];
	size_t len;
} rxc_t;

static const char *rx_hdr(void *ctx, const char *name)
{
	return MHD_lookup_connection_value(ctx, MHD_HEADER_KIND, name);
}

static int rx_event(void *ctx, const vnd_wh_event_t *ev)
{
	int k = *(int *)ctx;
	if (ev->kind == VND_WH_STATUS) {
		RX.events[k][ev->state]++;
		if (ev->id[0])
			RX.with_id[k]++;
		if (ev->optout)
			RX.optout[k]++;
	} else if (ev->kind == VND_WH_UNSUB)
		RX.unsub[k]++;
	else if (ev->kind == VND_WH_INBOUND && ev->keyword == VND_KW_STOP)
		RX.inbound_stop[k]++;
	return 0;
}

static enum MHD_Result rx_req(void *cls, struct MHD_Connection *con, const char *url,
                              const char *method, const char *ver, const char *up, size_t *upsz,
                              void **cc)
{
	(void)cls, (void)ver;
	rxc_t *x = *cc;
	if (!x) {
		*cc = calloc(1, sizeof(rxc_t));
		return MHD_YES;
	}
	if (*upsz) {
		if (x->len + *upsz < sizeof x->body) {
			memcpy(x->body + x->len, up, *upsz);
			x->len += *upsz;
		}
		*upsz = 0;
		return MHD_YES;
	}
	unsigned st = 404;
	int k = -1;
	for (int i = 0; i < 4; i++) {
		char pre[32];
		snprintf(pre, sizeof pre, "/webhooks/%s/", NAMES[i]);
		if (!strncmp(url, pre, strlen(pre)))
			k = i;
	}
	if (k >= 0) {
		const char *mid = MHD_lookup_connection_value(con, MHD_GET_ARGUMENT_KIND, "mid");
		char full[512], q[128] = "";
		if (mid)
			snprintf(q, sizeof q, "mid=%s", mid);
		snprintf(full, sizeof full, "%s%s%s%s", RX.public_url, url, mid ? "?" : "", q);
		vnd_wh_req_t rq = {method, full, mid ? q : NULL, rx_hdr(con, "Content-Type"),
		                   rx_hdr, con,  x->body,        x->len};
		char err[256];
		pthread_mutex_lock(&RX.mu);
		snprintf(RX.last[k], sizeof RX.last[k], "%.*s", (int)x->len, x->body);
		const char *idem = rx_hdr(con, "I-Twilio-Idempotency-Token");
		snprintf(RX.last_idem[k], sizeof RX.last_idem[k], "%s", idem ? idem : "");
		int rc = vnd_webhook(RX.a[k], &rq, rx_event, &k, err, sizeof err);
		if (rc == TOCSIN_ERR_AUTH)
			RX.rejected++, st = 403;
		else if (rc < 0)
			RX.bad++, st = 400, fprintf(stderr, "webhook %s: %s\n", NAMES[k], err);
		else
			st = 200;
		pthread_mutex_unlock(&RX.mu);
	}
	struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	enum MHD_Result ret = MHD_queue_response(con, st, r);
	MHD_destroy_response(r);
	return ret;
}

static void rx_done(void *cls, struct MHD_Connection *c, void **cc, enum MHD_RequestTerminationCode t)
{
	(void)cls, (void)c, (void)t;
	free(*cc);
	*cc = NULL;
}

static struct MHD_Daemon *RXD;

static int setup(void **st)
{
	(void)st;
	setenv("T_TW", "tw-secret-token", 1);
	setenv("T_VG", "vg-secret", 1);
	setenv("T_VG_SIG", "sig-secret-123", 1);
	setenv("T_SG", "SG.secret-key", 1);
	setenv("T_MG", "key-mg-secret", 1);
	curl_global_init(CURL_GLOBAL_ALL);
	pthread_mutex_init(&RX.mu, NULL);
	struct sockaddr_in sa = {0};
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	RXD = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, rx_req, NULL,
	                       MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_NOTIFY_COMPLETED, rx_done,
	                       NULL, MHD_OPTION_END);
	if (!RXD)
		return -1;
	RX.port = MHD_get_daemon_info(RXD, MHD_DAEMON_INFO_BIND_PORT)->port;
	snprintf(RX.public_url, sizeof RX.public_url, "http://127.0.0.1:%d", RX.port);
	/* the emulator needs the config, the config needs the emulator's port: bind it first */
	char path[] = "/tmp/test_vnd_sim_XXXXXX";
	int fd = mkstemp(path);
	FILE *f = fdopen(fd, "w");
	const char *tmpl =
	    "{\"var_dir\":\"/tmp\",\"tracker\":{\"public_url\":\"%s\"},\"vendors\":["
	    "{\"name\":\"tw\",\"kind\":\"twilio\",\"base_url\":\"%s\",\"account\":\"ACtest\",\"secret_env\":\"T_TW\",\"senders\":{\"main\":\"+15005550006\"}},"
	    "{\"name\":\"vg\",\"kind\":\"vonage\",\"base_url\":\"%s\",\"account\":\"vgkey\",\"secret_env\":\"T_VG\",\"signature_secret_env\":\"T_VG_SIG\",\"signature_method\":\"sha256\",\"senders\":{\"main\":\"+15005550007\"}},"
	    "{\"name\":\"sg\",\"kind\":\"sendgrid\",\"base_url\":\"%s\",\"account\":\"-\",\"secret_env\":\"T_SG\",\"webhook_public_key\":\"%s\",\"senders\":{\"main\":\"news@example.org\"}},"
	    "{\"name\":\"mg\",\"kind\":\"mailgun\",\"base_url\":\"%s\",\"account\":\"mg.example.org\",\"secret_env\":\"T_MG\",\"senders\":{\"main\":\"news@mg.example.org\"}}]}";
	fprintf(f, tmpl, RX.public_url, "http://127.0.0.1:1", "http://127.0.0.1:1",
	        "http://127.0.0.1:1", "", "http://127.0.0.1:1");
	fclose(f);
	char err[512];
	cfg_t *c0 = C0 = cfg_load(path, err, sizeof err);
	if (!c0)
		return fprintf(stderr, "%s\n", err), -1;
	SIM = sim_new(c0, 0, 2, err, sizeof err);
	if (!SIM)
		return fprintf(stderr, "%s\n", err), -1;
	snprintf(BASE, sizeof BASE, "http://127.0.0.1:%d", sim_port(SIM));
	/* the emulator's SendGrid public key, for the receiver */
	char pub[512] = "";
	CURL *h = curl_easy_init();
	char url[128];
	snprintf(url, sizeof url, "%s/_sim/keys", BASE);
	FILE *mf = fmemopen(pub, sizeof pub - 1, "w");
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, mf);
	assert_int_equal(curl_easy_perform(h), CURLE_OK);
	fclose(mf);
	curl_easy_cleanup(h);
	json_t *kj = json_loads(pub, 0, NULL);
	const char *sgpub = json_string_value(json_object_get(json_object_get(kj, "sendgrid"), "sg"));
	if (!sgpub)
		return fprintf(stderr, "no key in %s\n", pub), -1;
	f = fopen(path, "w");
	fprintf(f, tmpl, RX.public_url, BASE, BASE, BASE, sgpub, BASE);
	fclose(f);
	json_decref(kj);
	C = cfg_load(path, err, sizeof err);
	unlink(path);
	if (!C)
		return fprintf(stderr, "%s\n", err), -1;
	/* keep c0 alive: the emulator reads it (same vendors, same secrets) */
	for (int i = 0; i < 4; i++) {
		RX.a[i] = vnd_new(C, cfg_vendor(C, NAMES[i]), err, sizeof err);
		if (!RX.a[i])
			return fprintf(stderr, "%s\n", err), -1;
	}
	return 0;
}

static int teardown(void **st)
{
	(void)st;
	sim_free(SIM);
	MHD_stop_daemon(RXD);
	for (int i = 0; i < 4; i++)
		vnd_free(RX.a[i]);
	cfg_free(C);
	cfg_free(C0);
	curl_global_cleanup();
	return 0;
}

/* ---- client ---- */

typedef struct resp {
	char body[1 << 16];
	size_t len;
} resp_t;

static size_t wr(char *p, size_t sz, size_t n, void *u)
{
	resp_t *r = u;
	size_t k = sz * n;
	if (r->len + k < sizeof r->body) {
		memcpy(r->body + r->len, p, k);
		r->len += k;
	}
	return k;
}

static long http(const char *method, const char *url, const char *ctype, const char *body,
                 const char *userpwd, const char *bearer, long timeout_ms, resp_t *r,
                 int *curl_code, long *retry_after)
{
	CURL *h = curl_easy_init();
	struct curl_slist *hd = NULL;
	char line[1200];
	if (ctype) {
		snprintf(line, sizeof line, "Content-Type: %s", ctype);
		hd = curl_slist_append(hd, line);
	}
	if (bearer && *bearer) {
		snprintf(line, sizeof line, "Authorization: Bearer %s", bearer);
		hd = curl_slist_append(hd, line);
	}
	hd = curl_slist_append(hd, "Expect:");
	memset(r, 0, sizeof *r);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	if (body)
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	if (userpwd && *userpwd)
		curl_easy_setopt(h, CURLOPT_USERPWD, userpwd);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, wr);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
	int cc = curl_easy_perform(h);
	long st = 0;
	curl_off_t ra = -1;
	if (cc == CURLE_OK) {
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &st);
		curl_easy_getinfo(h, CURLINFO_RETRY_AFTER, &ra);
	}
	if (curl_code)
		*curl_code = cc;
	if (retry_after)
		*retry_after = ra > 0 ? (long)ra : -1;
	curl_slist_free_all(hd);
	curl_easy_cleanup(h);
	return st;
}

static void simctl(const char *path, const char *json)
{
	char url[128];
	snprintf(url, sizeof url, "%s%s", BASE, path);
	resp_t r;
	long st = http(json ? "POST" : "GET", url, "application/json", json ? json : NULL, NULL,
	               NULL, 5000, &r, NULL, NULL);
	if (st != 200)
		fail_msg("%s -> %ld %.*s", path, st, (int)r.len, r.body);
}

static json_t *stats(const char *name)
{
	char url[128];
	snprintf(url, sizeof url, "%s/_sim/stats", BASE);
	resp_t r;
	assert_int_equal(http("GET", url, NULL, NULL, NULL, NULL, 5000, &r, NULL, NULL), 200);
	json_t *j = json_loadb(r.body, r.len, 0, NULL);
	json_t *v = json_incref(json_object_get(json_object_get(j, "vendors"), name));
	json_decref(j);
	assert_non_null(v);
	return v;
}

static msg_out_t mk(int vendor, int i, char *idbuf, char *tobuf)
{
	msg_out_t m;
	memset(&m, 0, sizeof m);
	snprintf(idbuf, 33, "%08d%08d%016x", vendor, i, 0xabcdu);
	m.id = idbuf;
	m.campaign = "c1";
	m.sender = "main";
	if (vendor < 2) {
		snprintf(tobuf, 32, "+1555%07d", i);
		m.channel = MSG_CH_SMS;
		m.body = "Rally at 7pm tonight. Reply STOP to opt out.";
		m.enc = "gsm7";
	} else {
		snprintf(tobuf, 64, "user%d@example.org", i);
		m.channel = MSG_CH_EMAIL;
		m.subject = "Rally tonight";
		m.text = "Rally at 7pm.";
		m.headers = "{\"List-Unsubscribe\":\"<https://u.example.org/x>\"}";
	}
	m.to = tobuf;
	return m;
}

/* send n messages (one request for email vendors, one each for SMS) and classify */
static void send_n(int k, int first, int n, vnd_result_t *res, const char *mutate_auth, long timeout_ms)
{
	vnd_t *a = RX.a[k];
	static char ids[1000][33], tos[1000][64];
	msg_out_t ms[1000];
	const msg_out_t *pm[1000];
	for (int i = 0; i < n; i++) {
		ms[i] = mk(k, first + i, ids[i], tos[i]);
		pm[i] = &ms[i];
	}
	int per = vnd_max_batch(a);
	vnd_req_t rq;
	vnd_req_init(&rq);
	for (int i = 0; i < n; i += per) {
		int cnt = n - i < per ? n - i : per;
		char err[256];
		assert_int_equal(vnd_build(a, pm + i, (size_t)cnt, &rq, err, sizeof err), 0);
		if (mutate_auth) {
			if (rq.userpwd.len) {
				buf_reset(&rq.userpwd);
				buf_puts(&rq.userpwd, k == 3 ? "api:wrong" : "ACtest:wrong");
			} else if (rq.bearer.len) {
				buf_reset(&rq.bearer);
				buf_puts(&rq.bearer, "wrong");
			} else {
				char *p = strstr(rq.body.p, "api_secret=");
				assert_non_null(p);
				p[11] = 'X';
			}
		}
		resp_t r;
		int cc;
		long ra;
		long st = http("POST", rq.url.p, rq.content_type.p, rq.body.p, rq.userpwd.p,
		               rq.bearer.p, timeout_ms, &r, &cc, &ra);
		vnd_classify(a, pm + i, (size_t)cnt, st, cc, r.body, r.len, ra, res + i);
	}
	vnd_req_free(&rq);
}

static void expect_all(vnd_result_t *res, int n, vnd_outcome_t o, const char *code)
{
	for (int i = 0; i < n; i++) {
		if (res[i].outcome != o || (code && strcmp(res[i].code, code)))
			fail_msg("message %d: want %s %s, got %s %s (%s)", i, vnd_outcome_name(o),
			         code ? code : "", vnd_outcome_name(res[i].outcome), res[i].code,
			         res[i].detail);
	}
}

static void test_accept_and_count(void **st)
{
	(void)st;
	simctl("/_sim/reset", "{}");
	simctl("/_sim/config", "{\"receipts\":{\"enabled\":false}}");
	vnd_result_t res[1000];
	for (int k = 0; k < 4; k++) {
		int n = k < 2 ? 20 : 1000;
		send_n(k, 0, n, res, NULL, 5000);
		expect_all(res, n, VND_ACCEPTED, NULL);
		if (k != 2)
			assert_true(res[0].ref[0]);
		json_t *s = stats(NAMES[k]);
		assert_int_equal(json_integer_value(json_object_get(s, "accepted")), n);
		assert_int_equal(json_integer_value(json_object_get(s, "unique_ids")), n);
		assert_int_equal(json_integer_value(json_object_get(s, "duplicate_count")), 0);
		assert_int_equal(json_integer_value(json_object_get(s, "requests")), k < 2 ? n : 1);
		json_decref(s);
	}
	/* the same messages again: every id is reported as a duplicate */
	send_n(0, 0, 3, res, NULL, 5000);
	send_n(3, 5, 2, res, NULL, 5000);
	json_t *s = stats("tw");
	assert_int_equal(json_integer_value(json_object_get(s, "duplicate_count")), 3);
	assert_int_equal(json_array_size(json_object_get(s, "duplicate_ids")), 3);
	assert_string_equal(json_string_value(json_array_get(json_object_get(s, "duplicate_ids"), 0)),
	                    "0000000000000000000000000000abcd");
	json_decref(s);
	s = stats("mg");
	assert_int_equal(json_integer_value(json_object_get(s, "duplicate_count")), 2);
	json_decref(s);
	simctl("/_sim/reset", "{}");
	s = stats("tw");
	assert_int_equal(json_integer_value(json_object_get(s, "requests")), 0);
	assert_int_equal(json_integer_value(json_object_get(s, "unique_ids")), 0);
	json_decref(s);
}

/* 40,000 ids: the id set grows past its first table; duplicates are listed at most 1000 */
static void test_many_ids(void **st)
{
	(void)st;
	simctl("/_sim/reset", "{}");
	simctl("/_sim/config", "{\"receipts\":{\"enabled\":false}}");
	static vnd_result_t res[1000];
	for (int b = 0; b < 40; b++) {
		send_n(2, b * 1000, 1000, res, NULL, 10000);
		expect_all(res, 1000, VND_ACCEPTED, NULL);
	}
	json_t *s = stats("sg");
	assert_int_equal(json_integer_value(json_object_get(s, "unique_ids")), 40000);
	assert_int_equal(json_integer_value(json_object_get(s, "duplicate_count")), 0);
	json_decref(s);
	send_n(2, 5000, 1000, res, NULL, 10000);
	send_n(2, 7000, 1000, res, NULL, 10000);
	send_n(2, 5000, 1000, res, NULL, 10000); /* the third sighting: counted, not listed again */
	s = stats("sg");
	assert_int_equal(json_integer_value(json_object_get(s, "unique_ids")), 40000);
	assert_int_equal(json_integer_value(json_object_get(s, "duplicate_count")), 3000);
	assert_int_equal(json_array_size(json_object_get(s, "duplicate_ids")), 1000);
	json_decref(s);
	simctl("/_sim/reset", "{}");
}

static void test_wrong_auth(void **st)
{
	(void)st;
	vnd_result_t res[4];
	const char *codes[4] = {"20003", "4", "http_401", "http_401"};
	for (int k = 0; k < 4; k++) {
		send_n(k, 0, 1, res, "wrong", 5000);
		expect_all(res, 1, VND_CONFIG, codes[k]);
	}
}

static void test_faults(void **st)
{
	(void)st;
	vnd_result_t res[4];
	simctl("/_sim/config", "{\"vendor\":\"tw\",\"throttle_rate\":1,\"retry_after_s\":2}");
	send_n(0, 0, 1, res, NULL, 5000);
	expect_all(res, 1, VND_DEFER, "20429");
	assert_int_equal(res[0].throttled, 1);
	assert_int_equal(res[0].retry_after_ms, 2000);
	simctl("/_sim/config", "{\"vendor\":\"vg\",\"throttle_rate\":1}");
	send_n(1, 0, 1, res, NULL, 5000);
	expect_all(res, 1, VND_DEFER, "1");
	assert_int_equal(res[0].throttled, 1);
	simctl("/_sim/config", "{\"throttle_rate\":0,\"error_rate\":1}");
	for (int k = 0; k < 4; k++) {
		send_n(k, 0, 1, res, NULL, 5000);
		expect_all(res, 1, VND_DEFER, "http_500");
	}
	simctl("/_sim/config", "{\"error_rate\":0,\"outage\":\"503\"}");
	for (int k = 0; k < 4; k++) {
		send_n(k, 0, 1, res, NULL, 5000);
		expect_all(res, 1, VND_DEFER, "http_503");
	}
	simctl("/_sim/config", "{\"outage\":\"reset\"}");
	for (int k = 0; k < 4; k++) {
		send_n(k, 0, 1, res, NULL, 5000);
		assert_int_equal(res[0].outcome, VND_DEFER);
		assert_true(!strncmp(res[0].code, "curl_", 5));
	}
	simctl("/_sim/config", "{\"vendor\":\"tw\",\"outage\":\"hang\"}");
	int64_t t0 = clock_mono_ms();
	send_n(0, 0, 1, res, NULL, 300);
	expect_all(res, 1, VND_DEFER, "curl_28");
	assert_true(clock_mono_ms() - t0 >= 290);
	simctl("/_sim/config", "{\"outage\":\"none\",\"permanent_rate\":1}");
	send_n(0, 0, 1, res, NULL, 5000);
	expect_all(res, 1, VND_PERMANENT, "21211");
	send_n(1, 0, 1, res, NULL, 5000);
	expect_all(res, 1, VND_PERMANENT, "3");
	simctl("/_sim/config", "{\"permanent_rate\":0,\"optout_rate\":1}");
	send_n(0, 0, 1, res, NULL, 5000);
	expect_all(res, 1, VND_OPTOUT, "21610");
	simctl("/_sim/config", "{\"optout_rate\":0,\"latency_ms\":{\"median\":120,\"tail\":200}}");
	t0 = clock_mono_ms();
	send_n(0, 0, 1, res, NULL, 5000);
	expect_all(res, 1, VND_ACCEPTED, NULL);
	assert_true(clock_mono_ms() - t0 >= 55);
	simctl("/_sim/config", "{\"reset\":true}");
	/* bad control input: one clear error, nothing changed */
	char url[128];
	snprintf(url, sizeof url, "%s/_sim/config", BASE);
	resp_t r;
	assert_int_equal(http("POST", url, "application/json", "{\"error_rate\":2}", NULL, NULL,
	                      5000, &r, NULL, NULL),
	                 400);
	assert_int_equal(http("POST", url, "application/json", "{\"vendor\":\"nope\"}", NULL, NULL,
	                      5000, &r, NULL, NULL),
	                 404);
	assert_int_equal(http("POST", url, "application/json", "{trunc", NULL, NULL, 5000, &r, NULL,
	                      NULL),
	                 400);
	assert_int_equal(http("POST", url, "application/json", "{\"email_digests\":1}", NULL, NULL,
	                      5000, &r, NULL, NULL),
	                 400);
	assert_non_null(strstr(r.body, "email_digests"));
	snprintf(url, sizeof url, "%s/_sim/config", BASE);
	assert_int_equal(http("GET", url, NULL, NULL, NULL, NULL, 5000, &r, NULL, NULL), 200);
	assert_non_null(strstr(r.body, "\"email_digests\":false"));
}

static void test_validation(void **st)
{
	(void)st;
	char url[256];
	resp_t r;
	snprintf(url, sizeof url, "%s/2010-04-01/Accounts/ACtest/Messages.json", BASE);
	assert_int_equal(http("POST", url, "application/x-www-form-urlencoded",
	                      "From=%2B15005550006&Body=hi", "ACtest:tw-secret-token", NULL, 5000,
	                      &r, NULL, NULL),
	                 400);
	assert_non_null(strstr(r.body, "\"code\":21604"));
	assert_int_equal(http("POST", url, "application/x-www-form-urlencoded",
	                      "To=%2B15551234567&From=%2B15005550006", "ACtest:tw-secret-token",
	                      NULL, 5000, &r, NULL, NULL),
	                 400);
	assert_non_null(strstr(r.body, "\"code\":21602"));
	snprintf(url, sizeof url, "%s/v3/mail/send", BASE);
	assert_int_equal(http("POST", url, "application/json",
	                      "{\"personalizations\":[{\"to\":[{\"email\":\"a@b.org\"}]}],\"from\":{\"email\":\"x\"},\"subject\":\"s\",\"content\":[{\"type\":\"text/plain\",\"value\":\"v\"}]}",
	                      NULL, "SG.secret-key", 5000, &r, NULL, NULL),
	                 400);
	assert_non_null(strstr(r.body, "\"field\":\"from.email\""));
	snprintf(url, sizeof url, "%s/v3/mg.example.org/messages", BASE);
	assert_int_equal(http("POST", url, "application/x-www-form-urlencoded",
	                      "to=a%40b.org&subject=s&text=t", "api:key-mg-secret", NULL, 5000, &r,
	                      NULL, NULL),
	                 400);
	assert_non_null(strstr(r.body, "'from' parameter is missing"));
	snprintf(url, sizeof url, "%s/sms/json", BASE);
	assert_int_equal(http("POST", url, "application/x-www-form-urlencoded",
	                      "api_key=vgkey&api_secret=vg-secret&to=15551234567&text=hi", NULL,
	                      NULL, 5000, &r, NULL, NULL),
	                 200);
	assert_non_null(strstr(r.body, "Missing from param"));
}

static int receipts_done(int want)
{
	pthread_mutex_lock(&RX.mu);
	int ok = RX.events[0][MSG_ST_DELIVERED] + RX.events[0][MSG_ST_UNDELIVERED] >= want &&
	         RX.events[1][MSG_ST_DELIVERED] + RX.events[1][MSG_ST_FAILED] >= want &&
	         RX.events[2][MSG_ST_DELIVERED] + RX.unsub[2] >= want &&
	         RX.events[3][MSG_ST_DELIVERED] + RX.events[3][MSG_ST_BOUNCED] >= want &&
	         RX.inbound_stop[0] >= 1 && RX.inbound_stop[1] >= 1 && RX.unsub[3] >= 1;
	pthread_mutex_unlock(&RX.mu);
	return ok;
}

static void test_receipts(void **st)
{
	(void)st;
	simctl("/_sim/config",
	       "{\"receipts\":{\"enabled\":true,\"delay_ms\":100,\"delivered_rate\":1}}");
	vnd_result_t res[10];
	for (int k = 0; k < 4; k++) {
		send_n(k, 100, 10, res, NULL, 5000);
		expect_all(res, 10, VND_ACCEPTED, NULL);
	}
	simctl("/_sim/inbound", "{\"vendor\":\"tw\",\"from\":\"+15551230000\",\"body\":\"Stop\"}");
	simctl("/_sim/inbound", "{\"vendor\":\"vg\",\"from\":\"+15551230001\",\"body\":\"STOP\"}");
	simctl("/_sim/inbound", "{\"vendor\":\"mg\",\"from\":\"someone@example.org\"}");
	for (int i = 0; i < 100 && !receipts_done(10); i++)
		usleep(50000);
	pthread_mutex_lock(&RX.mu);
	for (int k = 0; k < 4; k++)
		if (RX.events[k][MSG_ST_DELIVERED] != 10)
			fail_msg("vendor %s: %d delivered receipts, want 10 (rejected %d, bad %d)",
			         NAMES[k], RX.events[k][MSG_ST_DELIVERED], RX.rejected, RX.bad);
	assert_int_equal(RX.with_id[0], 20); /* sent + delivered, each with our id */
	assert_int_equal(RX.with_id[1], 10);
	assert_int_equal(RX.with_id[2], 10);
	assert_int_equal(RX.with_id[3], 10);
	assert_int_equal(RX.events[0][MSG_ST_SENT], 10);
	assert_int_equal(RX.inbound_stop[0], 1);
	assert_int_equal(RX.inbound_stop[1], 1);
	assert_int_equal(RX.unsub[3], 1);
	assert_int_equal(RX.rejected, 0);
	assert_int_equal(RX.bad, 0);
	memset(RX.events, 0, sizeof RX.events);
	pthread_mutex_unlock(&RX.mu);
	/* an undelivered mix: opt-outs and failures */
	simctl("/_sim/config", "{\"receipts\":{\"delivered_rate\":0}}");
	simctl("/_sim/config", "{\"vendor\":\"vg\",\"optout_rate\":1}");
	send_n(0, 200, 5, res, NULL, 5000);
	send_n(1, 200, 5, res, NULL, 5000);
	for (int i = 0; i < 100; i++) {
		pthread_mutex_lock(&RX.mu);
		int done = RX.events[0][MSG_ST_UNDELIVERED] >= 5 && RX.optout[1] >= 5;
		pthread_mutex_unlock(&RX.mu);
		if (done)
			break;
		usleep(50000);
	}
	pthread_mutex_lock(&RX.mu);
	assert_int_equal(RX.events[0][MSG_ST_UNDELIVERED], 5);
	assert_int_equal(RX.events[1][MSG_ST_FAILED], 5);
	assert_int_equal(RX.optout[1], 5);
	pthread_mutex_unlock(&RX.mu);
	simctl("/_sim/config", "{\"reset\":true}");
}

/* the SendGrid adapter refuses a batch naming one address twice (any two positions), and
 * its header walk keeps escaped values as they are */
static void test_sendgrid_batch_build(void **st)
{
	(void)st;
	vnd_t *a = RX.a[2];
	static char ids[1000][33], tos[1000][64];
	static msg_out_t ms[1000];
	const msg_out_t *pm[1000];
	for (int i = 0; i < 1000; i++) {
		ms[i] = mk(2, i, ids[i], tos[i]);
		pm[i] = &ms[i];
	}
	vnd_req_t rq;
	vnd_req_init(&rq);
	char err[256];
	assert_int_equal(vnd_build(a, pm, 1000, &rq, err, sizeof err), 0);
	int pos[][2] = {{0, 1}, {0, 999}, {500, 998}, {998, 999}};
	for (size_t k = 0; k < sizeof pos / sizeof *pos; k++) {
		ms[pos[k][1]].to = tos[pos[k][0]];
		err[0] = 0;
		assert_int_not_equal(vnd_build(a, pm, 1000, &rq, err, sizeof err), 0);
		char want[200];
		snprintf(want, sizeof want, "batch: address %s appears twice (messages %s and %s)",
		         tos[pos[k][0]], ids[pos[k][0]], ids[pos[k][1]]);
		assert_string_equal(err, want);
		ms[pos[k][1]].to = tos[pos[k][1]];
	}
	/* escapes in header values: copied as they are; a control byte: refused by the fast walk,
	 * then written the careful way */
	ms[0].headers = "{\"List-Unsubscribe\":\"<https://u.example.org/x?a=\\\"b\\\\>\"}";
	ms[1].headers = "{\"X-Tab\":\"a\\tb\\u0041\"}";
	assert_int_equal(vnd_build(a, pm, 2, &rq, err, sizeof err), 0);
	assert_non_null(
	    strstr(rq.body.p, "\"List-Unsubscribe\":\"<https://u.example.org/x?a=\\\"b\\\\>\""));
	assert_non_null(strstr(rq.body.p, "\"X-Tab\":\"a\\tb\\u0041\""));
	json_t *j = json_loads(rq.body.p, 0, NULL);
	assert_non_null(j);
	json_decref(j);
	vnd_req_free(&rq);
}

/* ---- SendGrid: the scanner reading answers and counts exactly as the jansson reading ---- */

static sim_vendor_t *sg_vendor(void)
{
	for (size_t i = 0; i < SIM->nv; i++)
		if (!strcmp(SIM->vs[i].v->name, "sg"))
			return &SIM->vs[i];
	fail_msg("no sg vendor");
	return NULL;
}

typedef struct sg_run {
	int rc;
	unsigned status;
	char *body, hname[48];
	uint64_t accepted, subs, checked, unsub_ok, unreplaced, sightings;
} sg_run_t;

static void sg_one(const char *body, size_t len, int mode, sg_run_t *r)
{
	sim_vendor_t *sv = sg_vendor();
	sim_fault_t f;
	memset(&f, 0, sizeof f);
	f.delivered_rate = 1;
	uint64_t a0 = atomic_load(&sv->accepted), s0 = atomic_load(&sv->subs_applied),
	         c0 = atomic_load(&sv->unsub_checked), o0 = atomic_load(&sv->unsub_ok),
	         u0 = atomic_load(&sv->unreplaced);
	pthread_mutex_lock(&sv->ids.mu);
	uint64_t i0 = sv->ids.n + sv->ids.dup_count;
	pthread_mutex_unlock(&sv->ids.mu);
	sim_ans_t ans;
	memset(&ans, 0, sizeof ans);
	ans.retry_after_s = -1;
	buf_init(&ans.body, 64u << 20);
	r->rc = sim_sendgrid_body(SIM, sv, &f, body, len, mode, &ans);
	r->status = ans.status;
	r->body = strdup(ans.body.p ? ans.body.p : "");
	memcpy(r->hname, ans.hname, sizeof r->hname);
	buf_free(&ans.body);
	r->accepted = atomic_load(&sv->accepted) - a0;
	r->subs = atomic_load(&sv->subs_applied) - s0;
	r->checked = atomic_load(&sv->unsub_checked) - c0;
	r->unsub_ok = atomic_load(&sv->unsub_ok) - o0;
	r->unreplaced = atomic_load(&sv->unreplaced) - u0;
	pthread_mutex_lock(&sv->ids.mu);
	r->sightings = sv->ids.n + sv->ids.dup_count - i0;
	pthread_mutex_unlock(&sv->ids.mu);
}

/* Run body through jansson (mode 1) and the scanner alone (mode 2): the same
 * answer and counts. Returns 1 when the scanner left it to jansson. */
static int sg_same(const char *body)
{
	sg_run_t a, b;
	size_t len = strlen(body);
	sg_one(body, len, 1, &a);
	sg_one(body, len, 2, &b);
	int fell = b.rc == 1;
	if (!fell && (a.status != b.status || strcmp(a.body, b.body) || strcmp(a.hname, b.hname) ||
	              a.accepted != b.accepted || a.subs != b.subs || a.checked != b.checked ||
	              a.unsub_ok != b.unsub_ok || a.unreplaced != b.unreplaced ||
	              a.sightings != b.sightings))
		fail_msg("scanner differs for %.300s\n jansson: %u %s acc %llu subs %llu chk %llu ok %llu unr %llu ids %llu\n"
		         " scanner: %u %s acc %llu subs %llu chk %llu ok %llu unr %llu ids %llu",
		         body, a.status, a.body, (unsigned long long)a.accepted,
		         (unsigned long long)a.subs, (unsigned long long)a.checked,
		         (unsigned long long)a.unsub_ok, (unsigned long long)a.unreplaced,
		         (unsigned long long)a.sightings, b.status, b.body,
		         (unsigned long long)b.accepted, (unsigned long long)b.subs,
		         (unsigned long long)b.checked, (unsigned long long)b.unsub_ok,
		         (unsigned long long)b.unreplaced, (unsigned long long)b.sightings);
	free(a.body);
	free(b.body);
	return fell;
}

#define SG_TOP                                                                                      \
	"\"from\":{\"email\":\"news@example.org\"},\"subject\":\"Hi {{{tocsin:first}}}\","          \
	"\"content\":[{\"type\":\"text/plain\",\"value\":\"Hi\\n<https://a.org/t/u/YUBiLm9yZw>\"}," \
	"{\"type\":\"text/html\",\"value\":\"<a href=\\\"{{{tocsin:unsubscribe_url}}}\\\">x</a>\"}]"

static void test_sendgrid_scanner(void **st)
{
	(void)st;
	/* handled by the scanner: the same answers and counts as jansson */
	const char *same[] = {
	    /* accepted, with substitutions, headers per personalization and at the top, escapes in values */
	    "{\"personalizations\":[{\"to\":[{\"email\":\"a@b.org\"}],\"custom_args\":{\"tocsin_id\":\"id\\u0031\"},"
	    "\"substitutions\":{\"{{{tocsin:unsubscribe_url}}}\":\"https:\\/\\/a.org\\/t\\/u\\/YUBiLm9yZw\",\"{{{tocsin:first}}}\":\"Pat\"},"
	    "\"headers\":{\"List-Unsubscribe\":\"<{{{tocsin:unsubscribe_url}}}>\"}},"
	    "{\"to\":[{\"email\":\"c@d.org\"},{\"email\":\"e@f.org\"}],\"substitutions\":{}}],"
	    "\"headers\":{\"List-Unsubscribe\":\"<https://a.org/t/u/YUBiLm9yZw>\"},\"custom_args\":{\"tocsin_id\":\"top\"}," SG_TOP
	    "}",
	    /* duplicate top-level keys: the last wins, as with jansson */
	    "{\"subject\":1,\"personalizations\":[],\"personalizations\":[{\"to\":[{\"email\":\"g@h.org\"}]}]," SG_TOP
	    "}",
	    /* the checks, in order */
	    "{" SG_TOP "}",
	    "{\"personalizations\":{}," SG_TOP "}",
	    "{\"personalizations\":[{\"to\":[{\"email\":\"a@b.org\"}]}],\"from\":{\"email\":\"x\"},\"subject\":\"s\",\"content\":[{\"value\":\"v\"}]}",
	    "{\"personalizations\":[{\"to\":[{\"email\":\"a@b.org\"}]}],\"from\":\"news@example.org\",\"subject\":\"s\",\"content\":[{\"value\":\"v\"}]}",
	    "{\"personalizations\":[{\"to\":[{\"email\":\"a@b.org\"}]}],\"from\":{\"email\":\"news@example.org\"},\"content\":[{\"value\":\"v\"}]}",
	    "{\"personalizations\":[{\"to\":[{\"email\":\"a@b.org\"}]}],\"from\":{\"email\":\"news@example.org\"},\"template_id\":null,\"content\":[{\"value\":\"v\"}]}",
	    "{\"personalizations\":[{\"to\":[{\"email\":\"a@b.org\"}]}],\"from\":{\"email\":\"other@example.org\"},\"subject\":\"s\",\"content\":[{\"value\":\"v\"}]}",
	    "{\"personalizations\":[{\"to\":[{\"email\":\"a@b.org\"}]}],\"from\":{\"email\":\"news@example.org\"},\"subject\":\"s\",\"content\":[]}",
	    "{\"personalizations\":[{\"to\":[]}]," SG_TOP "}",
	    "{\"personalizations\":[7]," SG_TOP "}",
	    "{\"personalizations\":[{\"to\":[{\"email\":\"a@b.org\"},{\"email\":\"not an address\"}]}]," SG_TOP
	    "}",
	    "{\"personalizations\":[{\"to\":[{\"email\":\"a@b.org\"}]},{\"to\":[{\"email\":\"a@b.org\"}]}]," SG_TOP
	    "}",
	    "{\"personalizations\":[{\"to\":[{\"email\":\"a@b.org\"},{\"email\":\"a\\u0040b.org\"}]}]," SG_TOP
	    "}",
	    "{\"personalizations\":[{\"to\":[{\"email\":\"a@b.org\"}],\"substitutions\":[]}]," SG_TOP
	    "}",
	    "{\"personalizations\":[{\"to\":[{\"email\":\"a@b.org\"}],\"substitutions\":null}]," SG_TOP
	    "}",
	    "{\"personalizations\":[{\"to\":[{\"email\":\"a@b.org\"}],\"substitutions\":{\"k\":1}}]," SG_TOP
	    "}",
	    "{\"personalizations\":[{\"to\":[{\"email\":\"a@b.org\"}],\"custom_args\":\"x\",\"headers\":7}]," SG_TOP
	    "}",
	    "{\"personalizations\":[{\"to\":[{\"email\":\"a@b.org\"}],\"headers\":{\"List-Unsubscribe\":null}}],"
	    "\"headers\":{\"List-Unsubscribe\":\"<https://a.org/t/u/YUBiLm9yZw>\"}," SG_TOP "}",
	};
	sg_run_t r; /* the first one, read by the scanner: what it found */
	sg_one(same[0], strlen(same[0]), 2, &r);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.status, 202);
	assert_string_equal(r.hname, "X-Message-Id");
	assert_int_equal(r.accepted, 2);
	assert_int_equal(r.subs, 1);       /* only the first has substitutions that apply */
	assert_int_equal(r.checked, 2);    /* its own header, then the top-level one */
	assert_int_equal(r.unsub_ok, 1);   /* the top-level link names a@b.org, not c@d.org */
	assert_int_equal(r.unreplaced, 1); /* the second's html keeps the placeholder */
	assert_int_equal(r.sightings, 2);  /* "id1" (decoded) and "top" */
	free(r.body);
	sg_one(same[2], strlen(same[2]), 2, &r);
	assert_int_equal(r.status, 400);
	assert_non_null(strstr(r.body, "\"field\":\"personalizations\""));
	free(r.body);
	for (size_t i = 0; i < sizeof same / sizeof *same; i++)
		if (sg_same(same[i]))
			fail_msg("left to jansson: %s", same[i]);
	/* left to jansson (escaped or duplicate keys where order or size matter, bad JSON) */
	const char *fall[] = {
	    "{\"personalizations\":[{\"to\":[{\"email\":\"a@b.org\"}],\"custom_args\":{\"k\":\"1\",\"k\":\"2\"}}]," SG_TOP
	    "}",
	    "{\"personalizations\":[{\"to\":[{\"email\":\"a@b.org\"}],\"substitutions\":{\"k\":1,\"k\":\"2\"}}]," SG_TOP
	    "}",
	    "{\"person\\u0061lizations\":[{\"to\":[{\"email\":\"a@b.org\"}]}]," SG_TOP "}",
	    "{\"personalizations\":[{\"to\":[{\"email\":\"a@b.org\"}]}]," SG_TOP,
	    "{\"personalizations\":[{\"to\":[{\"email\":\"a@b.org\"}]}],\"x\":1e3," SG_TOP "}",
	    "[1]",
	    "",
	};
	for (size_t i = 0; i < sizeof fall / sizeof *fall; i++)
		if (!sg_same(fall[i]))
			fail_msg("scanner should leave to jansson: %s", fall[i]);
	/* the size limits, at the edge */
	static char big[40000];
	char val[10000];
	for (int n = 9985; n <= 9990; n++) { /* custom_args: 9 + 4 + n + 2 around 10,000 */
		memset(val, 'v', (size_t)n);
		val[n] = 0;
		snprintf(big, sizeof big,
		         "{\"personalizations\":[{\"to\":[{\"email\":\"a@b.org\"}],\"custom_args\":{\"tocsin_id\":\"%s\"}}]," SG_TOP
		         "}",
		         val);
		assert_int_equal(sg_same(big), 0);
		snprintf(big, sizeof big,
		         "{\"personalizations\":[{\"to\":[{\"email\":\"a@b.org\"}],\"substitutions\":{\"{{{tocsin:first}}}\":\"%s\"}}]," SG_TOP
		         "}",
		         val);
		assert_int_equal(sg_same(big), 0);
	}
	/* 1000 personalizations pass, 1001 do not; 1001 recipients in 1000 personalizations do not */
	static char huge[200000];
	for (int np = 1000; np <= 1001; np++)
		for (int extra = 0; extra <= 1; extra++) {
			size_t n = (size_t)snprintf(huge, sizeof huge, "{\"personalizations\":[");
			for (int i = 0; i < np; i++)
				n += (size_t)snprintf(huge + n, sizeof huge - n,
				                      "%s{\"to\":[{\"email\":\"r%d@b.org\"}%s]}",
				                      i ? "," : "", i,
				                      extra && i == 0 ? ",{\"email\":\"x@b.org\"}"
				                                      : "");
			snprintf(huge + n, sizeof huge - n, "]," SG_TOP "}");
			assert_int_equal(sg_same(huge), 0);
		}
}

/* ---- signed webhooks: vectors computed apart (python3 hashlib/hmac/base64), then what is sent ---- */

static void test_sig_vectors(void **st)
{
	(void)st;
	/* unsorted on purpose; '&' and '=' in a value become '_' */
	const char *names[] = {"msisdn", "to", "text", "messageId", "timestamp", "api-key"};
	const char *vals[] = {"447700900001",     "447700900000", "a&b=c Stop",
	                      "0A00000012345678", "1700000000",   "vgkey"};
	const char *want[] = {
	    "ebe0aa6f3b12180e8d09a5f67cc69d7e",
	    "536CFBE924D42118533E817E9A57D48A",
	    "4074E71B20BA79EDA6897675247CF0FC3DFC932E",
	    "052D35410DCB80007A8465E6BC0F0DE9B020E7352A5C44AB8E4306054B3C018B",
	    "357D4DB6875DDEDB71F8BC1557192329FD44DBA6E3DA8E98F298BACB46BF92001BD21F27B99AD77F452F90063E0AC75E7E"
	    "3C513E3241D13DAD0FB4AEDB253215",
	};
	const char *methods[] = {"md5hash", "md5", "sha1", "sha256", "sha512"};
	char out[160];
	for (int m = 0; m < 5; m++) {
		assert_int_equal(sim_vsig_method(methods[m]), m);
		assert_int_equal(sim_vonage_sig(m, "sig-secret-123", names, vals, 6, out, sizeof out),
		                 0);
		assert_string_equal(out, want[m]);
	}
	assert_int_equal(sim_vsig_method(NULL), SIM_VSIG_MD5HASH);
	assert_int_equal(sim_vsig_method("sha3"), -1);
	assert_int_equal(sim_vonage_sig(SIM_VSIG_SHA512, "k", names, vals, 6, out, 100),
	                 TOCSIN_ERR_TOOBIG);
	assert_int_equal(sim_vonage_sig(SIM_VSIG_SHA1, NULL, names, vals, 6, out, sizeof out),
	                 TOCSIN_ERR_INVAL);
	/* the emulator's Twilio and Mailgun signatures, from the same independent computation */
	const char *tn[] = {"To", "MessageSid", "Body"}, *tv[] = {"+15551234567", "SM1", "a&b=c"};
	assert_int_equal(sim_twilio_sig("tw-token", "https://t.example.org/webhooks/tw/status?mid=abc",
	                                tn, tv, 3, out, sizeof out),
	                 0);
	assert_string_equal(out, "QLqVQzPWsGycWDMdS/d+GAWc/Tk=");
	assert_int_equal(sim_mailgun_sig("mg-key", "1700000000", "tok123", out, sizeof out), 0);
	assert_string_equal(out, "e0741584da3d9b3bd6434198b43ef7eddd18478ecaae6f887a98ad4518af96bf");
}

static int last_has(int k, const char *needle)
{
	pthread_mutex_lock(&RX.mu);
	int ok = strstr(RX.last[k], needle) != NULL;
	pthread_mutex_unlock(&RX.mu);
	return ok;
}

/* what the emulator posts: timestamp (now) and a sha256 sig over every other parameter;
 * Twilio webhooks carry a fresh I-Twilio-Idempotency-Token each */
static void test_vonage_signed_webhooks(void **st)
{
	(void)st;
	memset(RX.last, 0, sizeof RX.last);
	simctl("/_sim/inbound",
	       "{\"vendor\":\"vg\",\"from\":\"+15551230009\",\"body\":\"a&b=c STOP\"}");
	for (int i = 0; i < 100 && !last_has(1, "sig="); i++)
		usleep(20000);
	pthread_mutex_lock(&RX.mu);
	char body[4096];
	memcpy(body, RX.last[1], sizeof body);
	pthread_mutex_unlock(&RX.mu);
	vnd_form_t fm;
	assert_int_equal(vnd_form_parse(body, strlen(body), &fm), 0);
	const char *names[32], *vals[32], *sig = NULL, *ts = NULL;
	size_t n = 0;
	for (size_t i = 0; i < fm.n && n < 32; i++) {
		if (!strcmp(fm.name[i], "sig")) {
			sig = fm.value[i];
			continue;
		}
		if (!strcmp(fm.name[i], "timestamp"))
			ts = fm.value[i];
		names[n] = fm.name[i];
		vals[n++] = fm.value[i];
	}
	assert_non_null(sig);
	assert_non_null(ts);
	assert_string_equal(vnd_form_get(&fm, "text"), "a&b=c STOP");
	long long t = strtoll(ts, NULL, 10), now = (long long)time(NULL);
	assert_true(t >= now - 5 && t <= now + 1);
	char want[160];
	assert_int_equal(sim_vonage_sig(SIM_VSIG_SHA256, "sig-secret-123", names, vals, n, want,
	                                sizeof want),
	                 0);
	assert_string_equal(sig, want);
	assert_int_equal(strlen(sig), 64);
	vnd_form_free(&fm);
	/* Twilio: two inbound webhooks, two different idempotency tokens */
	char tok[2][64];
	for (int i = 0; i < 2; i++) {
		memset(RX.last[0], 0, sizeof RX.last[0]);
		simctl("/_sim/inbound",
		       "{\"vendor\":\"tw\",\"from\":\"+15551230010\",\"body\":\"HELP\"}");
		for (int w = 0; w < 100 && !last_has(0, "Body="); w++)
			usleep(20000);
		pthread_mutex_lock(&RX.mu);
		memcpy(tok[i], RX.last_idem[0], sizeof tok[i]);
		pthread_mutex_unlock(&RX.mu);
		assert_true(strlen(tok[i]) >= 16);
	}
	assert_string_not_equal(tok[0], tok[1]);
}

/* a config the emulator cannot sign with is refused at start (by cfg_load or the emulator),
 * naming the field */
static void test_vonage_sig_config(void **st)
{
	(void)st;
	const char *bad[][2] = {
	    {"\"signature_secret_env\":\"T_VG_SIG\",\"signature_method\":\"sha3\"", "signature_method"},
	    {"\"signature_secret_env\":\"T_VG_SIG_UNSET\"", "T_VG_SIG_UNSET"},
	    {"\"signature_secret_env\":7", "signature_secret_env"},
	};
	unsetenv("T_VG_SIG_UNSET");
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		char path[] = "/tmp/test_vnd_sim_cfg_XXXXXX";
		int fd = mkstemp(path);
		FILE *f = fdopen(fd, "w");
		fprintf(f,
		        "{\"var_dir\":\"/tmp\",\"vendors\":[{\"name\":\"v\",\"kind\":\"vonage\",\"base_url\":"
		        "\"http://127.0.0.1:1\",\"account\":\"k\",\"secret_env\":\"T_VG\",%s}]}",
		        bad[i][0]);
		fclose(f);
		char err[512] = "";
		cfg_t *c = cfg_load(path, err, sizeof err);
		unlink(path);
		if (!c) { /* core/cfg.c refuses it already, naming the field */
			if (!strstr(err, bad[i][1]))
				fail_msg("error \"%s\" does not name %s", err, bad[i][1]);
			continue;
		}
		sim_t *s = sim_new(c, 0, 1, err, sizeof err);
		if (s)
			fail_msg("config %s was accepted", bad[i][0]);
		if (!strstr(err, bad[i][1]))
			fail_msg("error \"%s\" does not name %s", err, bad[i][1]);
		cfg_free(c);
	}
}

/* ---- fidelity: what the real APIs accept and refuse ---- */

static long post(const char *path, const char *ctype, const char *body, const char *userpwd,
                 const char *bearer, resp_t *r)
{
	char url[600];
	snprintf(url, sizeof url, "%s%s", BASE, path);
	return http("POST", url, ctype, body, userpwd, bearer, 5000, r, NULL, NULL);
}

static long get(const char *path, const char *userpwd, resp_t *r)
{
	char url[600];
	snprintf(url, sizeof url, "%s%s", BASE, path);
	return http("GET", url, NULL, NULL, userpwd, NULL, 5000, r, NULL, NULL);
}

static json_t *stat_of(const char *name, const char *key)
{
	json_t *s = stats(name);
	json_t *v = json_incref(json_object_get(s, key));
	json_decref(s);
	return v;
}

static long long accepted(const char *name)
{
	json_t *v = stat_of(name, "accepted");
	long long n = json_integer_value(v);
	json_decref(v);
	return n;
}

/* the official Vonage SDK's shape: a JSON body, credentials in HTTP Basic */
static void test_vonage_json_basic(void **st)
{
	(void)st;
	resp_t r;
	const char *js = "{\"from\":\"15005550007\",\"to\":\"15551234567\",\"text\":\"hi\",\"client-ref\":\"j1\"}";
	long long a0 = accepted("vg");
	assert_int_equal(post("/sms/json", "application/json", js, "vgkey:vg-secret", NULL, &r), 200);
	assert_non_null(strstr(r.body, "\"status\":\"0\""));
	assert_non_null(strstr(r.body, "\"client-ref\":\"j1\""));
	/* credentials in the JSON body, and the form shape, still work */
	assert_int_equal(post("/sms/json", "application/json",
	                      "{\"api_key\":\"vgkey\",\"api_secret\":\"vg-secret\",\"from\":\"15005550007\",\"to\":\"15551234567\",\"text\":\"hi\"}",
	                      NULL, NULL, &r),
	                 200);
	assert_non_null(strstr(r.body, "\"status\":\"0\""));
	assert_int_equal(post("/sms/json", "application/x-www-form-urlencoded",
	                      "api_key=vgkey&api_secret=vg-secret&from=15005550007&to=15551234567&text=hi+there",
	                      NULL, NULL, &r),
	                 200);
	assert_non_null(strstr(r.body, "\"status\":\"0\""));
	assert_int_equal(accepted("vg"), a0 + 3);
	/* wrong credentials, either way: status 4, nothing accepted */
	const char *bad[][3] = {
	    {"application/json", js, "vgkey:wrong"},
	    {"application/json", js, "nokey:vg-secret"},
	    {"application/json",
	     "{\"api_key\":\"vgkey\",\"api_secret\":\"wrong\",\"from\":\"15005550007\",\"to\":\"15551234567\",\"text\":\"hi\"}",
	     NULL},
	    {"application/x-www-form-urlencoded",
	     "api_key=vgkey&api_secret=wrong&from=15005550007&to=15551234567&text=hi", NULL},
	    {"application/json", js, NULL},
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		assert_int_equal(post("/sms/json", bad[i][0], bad[i][1], bad[i][2], NULL, &r), 200);
		if (!strstr(r.body, "\"status\":\"4\""))
			fail_msg("case %zu: %s", i, r.body);
	}
	/* a Basic header that does not decode is bad credentials too, even with good ones in the body */
	char url[128];
	snprintf(url, sizeof url, "%s/sms/json", BASE);
	CURL *h = curl_easy_init();
	struct curl_slist *hd = curl_slist_append(NULL, "Authorization: Basic !!!");
	hd = curl_slist_append(hd, "Content-Type: application/x-www-form-urlencoded");
	memset(&r, 0, sizeof r);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS,
	                 "api_key=vgkey&api_secret=vg-secret&from=15005550007&to=15551234567&text=hi");
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, wr);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &r);
	assert_int_equal(curl_easy_perform(h), CURLE_OK);
	curl_slist_free_all(hd);
	curl_easy_cleanup(h);
	assert_non_null(strstr(r.body, "\"status\":\"4\""));
	/* JSON that is not an object of values */
	assert_int_equal(post("/sms/json", "application/json", "{\"to\":[1]}", "vgkey:vg-secret",
	                      NULL, &r),
	                 200);
	assert_non_null(strstr(r.body, "\"status\":\"2\""));
	assert_int_equal(accepted("vg"), a0 + 3);
}

/* the emulator's own form reader: '+', %XX, a bad escape kept, empty pieces skipped, caps */
static void test_form(void **st)
{
	(void)st;
	sim_form_t f;
	const char *in = "a=b+c%20d&e&&f=%zz%4&%41%3D=%26&g=";
	assert_int_equal(sim_form_parse(in, strlen(in), &f), 0);
	assert_int_equal(f.n, 5);
	assert_string_equal(sim_form_get(&f, "a"), "b c d");
	assert_string_equal(sim_form_get(&f, "e"), "");
	assert_string_equal(sim_form_get(&f, "f"), "%zz%4");
	assert_string_equal(sim_form_get(&f, "A="), "&");
	assert_string_equal(sim_form_get(&f, "g"), "");
	assert_null(sim_form_get(&f, "h"));
	sim_form_free(&f);
	static char many[2 * 2101 + 1];
	for (int i = 0; i < 2101; i++)
		memcpy(many + 2 * i, "x&", 2);
	assert_int_equal(sim_form_parse(many, 2 * 2100 - 1, &f), 0); /* 2100 fields: at the cap */
	assert_int_equal(f.n, 2100);
	sim_form_free(&f);
	assert_int_equal(sim_form_parse(many, 2 * 2101 - 1, &f), TOCSIN_ERR_TOOBIG);
	sim_form_free(&f);
	const char *js = "{\"to\":\"1555\",\"n\":42,\"r\":1.5,\"b\":true,\"z\":null}";
	assert_int_equal(sim_form_json(js, strlen(js), &f), 0);
	assert_int_equal(f.n, 4);
	assert_string_equal(sim_form_get(&f, "to"), "1555");
	assert_string_equal(sim_form_get(&f, "n"), "42");
	assert_string_equal(sim_form_get(&f, "r"), "1.5");
	assert_string_equal(sim_form_get(&f, "b"), "true");
	assert_null(sim_form_get(&f, "z"));
	sim_form_free(&f);
	assert_int_equal(sim_form_json("[1]", 3, &f), TOCSIN_ERR_INVAL);
	sim_form_free(&f);
	assert_int_equal(sim_form_json("{\"a\":{}}", 8, &f), TOCSIN_ERR_INVAL);
	sim_form_free(&f);
}

/* segment counts as Twilio counts them; each case worked out by hand from GSM 03.38 / UTF-16 */
static void test_segments(void **st)
{
	(void)st;
	char t[2048];
	int u;
	/* £ is in GSM-7: 100 of them are 100 septets */
	t[0] = 0;
	for (int i = 0; i < 100; i++)
		strcat(t, "\xc2\xa3");
	assert_int_equal(sim_segments(t, 0, &u), 1);
	assert_int_equal(u, 0);
	/* '{' is an extension character: 100 cost 200 septets, 76 pairs (152) in the first part */
	memset(t, '{', 100), t[100] = 0;
	assert_int_equal(sim_segments(t, 0, &u), 2);
	assert_int_equal(u, 0);
	memset(t, '{', 80), t[80] = 0; /* 160 septets: one part */
	assert_int_equal(sim_segments(t, 0, NULL), 1);
	/* 152 'a' then 77 '{': 306 septets would be 2 x 153, but no pair is split: 152 | 76 pairs | 1 pair */
	memset(t, 'a', 152), memset(t + 152, '{', 77), t[229] = 0;
	assert_int_equal(sim_segments(t, 0, NULL), 3);
	/* UCS-2: an emoji is 2 UTF-16 units; 35 fit in one part (70), 36 need two */
	t[0] = 0;
	for (int i = 0; i < 35; i++)
		strcat(t, "\xf0\x9f\x98\x80");
	assert_int_equal(sim_segments(t, 0, &u), 1);
	assert_int_equal(u, 1);
	strcat(t, "\xf0\x9f\x98\x80");
	assert_int_equal(sim_segments(t, 0, NULL), 2);
	/* 66 'ж', an emoji, 66 'ж': 134 units would be 2 x 67, but the pair is not split: 66 | 2+65 | 1 */
	t[0] = 0;
	for (int i = 0; i < 66; i++)
		strcat(t, "\xd0\xb6");
	strcat(t, "\xf0\x9f\x98\x80");
	for (int i = 0; i < 66; i++)
		strcat(t, "\xd0\xb6");
	assert_int_equal(sim_segments(t, 0, NULL), 3);
	/* one character outside GSM-7 makes it all UCS-2; a backtick is not in GSM-7 */
	memset(t, 'a', 100), t[100] = '`', t[101] = 0;
	assert_int_equal(sim_segments(t, 0, &u), 2);
	assert_int_equal(u, 1);
	assert_int_equal(sim_segments("hello", 1, &u), 1); /* Vonage type=unicode */
	assert_int_equal(u, 1);
	/* what Twilio answers */
	resp_t r;
	char body[1200] = "To=%2B15551234567&From=%2B15005550006&Body=";
	for (int i = 0; i < 100; i++)
		strcat(body, "%C2%A3");
	assert_int_equal(post("/2010-04-01/Accounts/ACtest/Messages.json",
	                      "application/x-www-form-urlencoded", body, "ACtest:tw-secret-token",
	                      NULL, &r),
	                 201);
	assert_non_null(strstr(r.body, "\"num_segments\":\"1\""));
	strcpy(body, "To=%2B15551234567&From=%2B15005550006&Body=");
	for (int i = 0; i < 100; i++)
		strcat(body, "%7B");
	assert_int_equal(post("/2010-04-01/Accounts/ACtest/Messages.json",
	                      "application/x-www-form-urlencoded", body, "ACtest:tw-secret-token",
	                      NULL, &r),
	                 201);
	assert_non_null(strstr(r.body, "\"num_segments\":\"2\""));
}

/* Twilio: list (filters, paging) and fetch, answered like Twilio */
static void test_twilio_list_fetch(void **st)
{
	(void)st;
	simctl("/_sim/config",
	       "{\"vendor\":\"tw\",\"receipts\":{\"enabled\":false,\"delay_ms\":0,\"delivered_rate\":1}}");
	resp_t r;
	char sids[3][40];
	const char *tos[3] = {"%2B15557770001", "%2B15557770002", "%2B15557770001"};
	for (int i = 0; i < 3; i++) {
		char body[200];
		snprintf(body, sizeof body, "To=%s&From=%%2B15005550006&Body=list+%d", tos[i], i);
		assert_int_equal(post("/2010-04-01/Accounts/ACtest/Messages.json",
		                      "application/x-www-form-urlencoded", body,
		                      "ACtest:tw-secret-token", NULL, &r),
		                 201);
		assert_non_null(strstr(r.body, "\"status\":\"queued\""));
		assert_non_null(strstr(r.body, "\"date_sent\":null"));
		json_t *j = json_loadb(r.body, r.len, 0, NULL);
		snprintf(sids[i], sizeof sids[i], "%s", json_string_value(json_object_get(j, "sid")));
		json_decref(j);
	}
	usleep(20000); /* delay 0: sent and delivered a moment after */
	assert_int_equal(get("/2010-04-01/Accounts/ACtest/Messages.json?To=%2B15557770001&PageSize=1",
	                     "ACtest:tw-secret-token", &r),
	                 200);
	json_t *j = json_loadb(r.body, r.len, 0, NULL);
	json_t *ms = json_object_get(j, "messages");
	assert_int_equal(json_array_size(ms), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(ms, 0), "sid")),
	                    sids[2]); /* newest first */
	assert_string_equal(json_string_value(json_object_get(json_array_get(ms, 0), "status")),
	                    "delivered");
	assert_true(json_is_string(json_object_get(json_array_get(ms, 0), "date_sent")));
	assert_int_equal(json_integer_value(json_object_get(j, "page_size")), 1);
	assert_int_equal(json_integer_value(json_object_get(j, "page")), 0);
	const char *next = json_string_value(json_object_get(j, "next_page_uri"));
	assert_non_null(next);
	assert_non_null(strstr(next, "To=%2B15557770001"));
	assert_non_null(strstr(next, "Page=1"));
	assert_true(json_is_null(json_object_get(j, "previous_page_uri")));
	char nextb[400];
	snprintf(nextb, sizeof nextb, "%s", next);
	json_decref(j);
	assert_int_equal(get(nextb, "ACtest:tw-secret-token", &r), 200);
	j = json_loadb(r.body, r.len, 0, NULL);
	ms = json_object_get(j, "messages");
	assert_int_equal(json_array_size(ms), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(ms, 0), "sid")), sids[0]);
	assert_true(json_is_null(json_object_get(j, "next_page_uri")));
	assert_int_equal(json_integer_value(json_object_get(j, "start")), 1);
	json_decref(j);
	/* DateSent: today (UTC) matches, the day before and DateSent< it match nothing */
	char today[16], yday[16], path[300];
	time_t now = time(NULL), yt = now - 86400;
	struct tm tm;
	strftime(today, sizeof today, "%Y-%m-%d", gmtime_r(&now, &tm));
	strftime(yday, sizeof yday, "%Y-%m-%d", gmtime_r(&yt, &tm));
	const char *q[][2] = {{"DateSent=", today},
	                      {"DateSent=", yday},
	                      {"DateSent%3C=", yday},
	                      {"DateSent%3E=", yday}};
	size_t want[] = {2, 0, 0, 2};
	for (int k = 0; k < 4; k++) {
		snprintf(path, sizeof path,
		         "/2010-04-01/Accounts/ACtest/Messages.json?To=%%2B15557770001&%s%s",
		         q[k][0], q[k][1]);
		assert_int_equal(get(path, "ACtest:tw-secret-token", &r), 200);
		j = json_loadb(r.body, r.len, 0, NULL);
		if (json_array_size(json_object_get(j, "messages")) != want[k])
			fail_msg("%s: %zu messages, want %zu", path,
			         json_array_size(json_object_get(j, "messages")), want[k]);
		json_decref(j);
	}
	/* fetch */
	snprintf(path, sizeof path, "/2010-04-01/Accounts/ACtest/Messages/%s.json", sids[1]);
	assert_int_equal(get(path, "ACtest:tw-secret-token", &r), 200);
	j = json_loadb(r.body, r.len, 0, NULL);
	assert_string_equal(json_string_value(json_object_get(j, "sid")), sids[1]);
	assert_string_equal(json_string_value(json_object_get(j, "to")), "+15557770002");
	assert_string_equal(json_string_value(json_object_get(j, "body")), "list 1");
	assert_string_equal(json_string_value(json_object_get(j, "num_segments")), "1");
	assert_true(json_is_null(json_object_get(j, "error_code")));
	json_decref(j);
	/* refusals: unknown sid (404 20404), wrong credentials, bad paging or date, other methods */
	assert_int_equal(get("/2010-04-01/Accounts/ACtest/Messages/SM00000000000000000000000000000000.json",
	                     "ACtest:tw-secret-token", &r),
	                 404);
	assert_non_null(strstr(r.body, "\"code\":20404"));
	assert_non_null(strstr(r.body, "\"status\":404"));
	assert_int_equal(get(path, "ACtest:wrong", &r), 401);
	assert_non_null(strstr(r.body, "\"code\":20003"));
	assert_int_equal(get("/2010-04-01/Accounts/ACtest/Messages.json?PageSize=0",
	                     "ACtest:tw-secret-token", &r),
	                 400);
	assert_int_equal(get("/2010-04-01/Accounts/ACtest/Messages.json?PageSize=5x",
	                     "ACtest:tw-secret-token", &r),
	                 400);
	assert_int_equal(get("/2010-04-01/Accounts/ACtest/Messages.json?DateSent=yesterday",
	                     "ACtest:tw-secret-token", &r),
	                 400);
	assert_int_equal(post(path + 0, "application/x-www-form-urlencoded", "Body=x",
	                      "ACtest:tw-secret-token", NULL, &r),
	                 405);
	/* undelivered: error_code 30003 */
	simctl("/_sim/config", "{\"vendor\":\"tw\",\"receipts\":{\"delivered_rate\":0}}");
	assert_int_equal(post("/2010-04-01/Accounts/ACtest/Messages.json",
	                      "application/x-www-form-urlencoded",
	                      "To=%2B15557770003&From=%2B15005550006&Body=x",
	                      "ACtest:tw-secret-token", NULL, &r),
	                 201);
	j = json_loadb(r.body, r.len, 0, NULL);
	snprintf(path, sizeof path, "/2010-04-01/Accounts/ACtest/Messages/%s.json",
	         json_string_value(json_object_get(j, "sid")));
	json_decref(j);
	usleep(20000);
	assert_int_equal(get(path, "ACtest:tw-secret-token", &r), 200);
	assert_non_null(strstr(r.body, "\"status\":\"undelivered\""));
	assert_non_null(strstr(r.body, "\"error_code\":30003"));
	simctl("/_sim/config", "{\"reset\":true}");
}

#define SGF                                                                                        \
	"\"from\":{\"email\":\"news@example.org\"},\"subject\":\"s\",\"content\":[{\"type\":\"text/plain\",\"value\":\"v\"}]"

/* SendGrid: cc/bcc are recipients (counted, checked for duplicates), errors name the right place */
static void test_sendgrid_fidelity(void **st)
{
	(void)st;
	struct {
		const char *body;
		unsigned status;
		const char *field, *msg;
	} cases[] = {
	    {"{\"personalizations\":[{\"to\":[{\"email\":\"a@b.org\"}],\"cc\":[{\"email\":\"c@b.org\"}],\"bcc\":[{\"email\":\"d@b.org\"}]}]," SGF
	     "}",
	     202, NULL, NULL},
	    {"{\"personalizations\":[{\"to\":[{\"email\":\"a@b.org\"}]},{\"to\":[{\"email\":\"x@b.org\"}],\"cc\":[{\"email\":\"a@b.org\"}]}]," SGF
	     "}",
	     400, "personalizations.1.cc.0.email",
	     "instance of [a@b.org] in the personalizations.1.cc field"},
	    {"{\"personalizations\":[{\"to\":[{\"email\":\"a@b.org\"}]},{\"to\":[{\"email\":\"x@b.org\"}]},{\"to\":[{\"email\":\"y@b.org\"},{\"email\":\"x@b.org\"}]}]," SGF
	     "}",
	     400, "personalizations.2.to.1.email",
	     "instance of [x@b.org] in the personalizations.2.to field"},
	    {"{\"personalizations\":[{\"to\":[{\"email\":\"a@b.org\"}],\"bcc\":[{\"email\":\"A@b\"}]}]," SGF
	     "}",
	     400, "personalizations.0.bcc.0.email", "Does not contain a valid address."},
	    {"{\"personalizations\":[{\"to\":[{\"email\":\"a@b.org\"}],\"cc\":{\"email\":\"c@b.org\"}}]," SGF
	     "}",
	     400, "personalizations.0.cc", "Expected: array"},
	    {"{\"personalizations\":[{\"to\":[{\"email\":\"a@b.org\"}]}],\"subject\":\"s\",\"content\":[{\"type\":\"text/plain\",\"value\":\"v\"}]}",
	     400, "from", "The from object must be provided"},
	    {"{\"personalizations\":[{\"to\":[{\"email\":\"a@b.org\"}]}],\"from\":{\"email\":\"nope\"},\"subject\":\"s\",\"content\":[{\"type\":\"text/plain\",\"value\":\"v\"}]}",
	     400, "from.email", "does not contain a valid address"},
	};
	resp_t r;
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		long long a0 = accepted("sg");
		long st2 = post("/v3/mail/send", "application/json", cases[i].body, NULL,
		                "SG.secret-key", &r);
		if (st2 != (long)cases[i].status)
			fail_msg("case %zu: %ld %.*s", i, st2, (int)r.len, r.body);
		if (cases[i].field) {
			json_t *j = json_loadb(r.body, r.len, 0, NULL);
			json_t *e = json_array_get(json_object_get(j, "errors"), 0);
			assert_string_equal(json_string_value(json_object_get(e, "field")),
			                    cases[i].field);
			if (!strstr(json_string_value(json_object_get(e, "message")), cases[i].msg))
				fail_msg("case %zu: message %s", i,
				         json_string_value(json_object_get(e, "message")));
			json_decref(j);
			assert_int_equal(accepted("sg"), a0);
		}
		/* the scanner reading and the jansson reading agree */
		assert_int_equal(sg_same(cases[i].body), 0);
	}
	/* cc and bcc count toward the 1,000 recipients: 1 to + 999 bcc pass, 1 to + 1000 bcc do not */
	static char big[100000];
	for (int nb = 999; nb <= 1000; nb++) {
		size_t n = (size_t)
		    snprintf(big, sizeof big,
		             "{\"personalizations\":[{\"to\":[{\"email\":\"t@b.org\"}],\"bcc\":[");
		for (int i = 0; i < nb; i++)
			n += (size_t)snprintf(big + n, sizeof big - n,
			                      "%s{\"email\":\"b%d@b.org\"}", i ? "," : "", i);
		snprintf(big + n, sizeof big - n, "]}]," SGF "}");
		long want = nb == 999 ? 202 : 400;
		assert_int_equal(post("/v3/mail/send", "application/json", big, NULL,
		                      "SG.secret-key", &r),
		                 want);
		if (want == 400)
			assert_non_null(strstr(r.body, "1000 or fewer (found 1001)"));
		assert_int_equal(sg_same(big), 0);
	}
	/* unknown paths and methods, in SendGrid's shape */
	assert_int_equal(post("/v3/mail/sendx", "application/json", "{}", NULL, "SG.secret-key", &r),
	                 404);
	assert_non_null(
	    strstr(r.body, "\"errors\":[{\"field\":null,\"message\":\"resource not found\"}]"));
	assert_int_equal(get("/v3/mail/send", NULL, &r), 405);
	assert_non_null(strstr(r.body, "\"errors\""));
}

/* Mailgun: a to value is an address list, the key is checked before the domain */
static void test_mailgun_fidelity(void **st)
{
	(void)st;
	resp_t r;
	const char *mp = "/v3/mg.example.org/messages";
	long long a0 = accepted("mg");
	assert_int_equal(post(mp, "application/x-www-form-urlencoded",
	                      "from=news%40mg.example.org&to=a%40x.org%2C+%22Doe%2C+Ann%22+%3Cann%40y.org%3E&to=Bob+%3Cbob%40z.org%3E&subject=s&text=t",
	                      "api:key-mg-secret", NULL, &r),
	                 200);
	assert_int_equal(accepted("mg"), a0 + 3);
	/* "a@x.org, a@x.org" style lists count each; a trailing comma is allowed */
	assert_int_equal(post(mp, "application/x-www-form-urlencoded",
	                      "from=news%40mg.example.org&to=c%40x.org%2C&subject=s&text=t",
	                      "api:key-mg-secret", NULL, &r),
	                 200);
	assert_int_equal(accepted("mg"), a0 + 4);
	const char *bad[] = {"to=not-an-address", "to=a%40x.org%2C%2Cb%40x.org", "to=Ann+%3C%3E",
	                     "to=a+b%40x.org"};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		char body[300];
		snprintf(body, sizeof body, "from=news%%40mg.example.org&%s&subject=s&text=t", bad[i]);
		assert_int_equal(post(mp, "application/x-www-form-urlencoded", body,
		                      "api:key-mg-secret", NULL, &r),
		                 400);
		if (!strstr(r.body, "'to' parameter is not a valid address"))
			fail_msg("%s: %s", bad[i], r.body);
	}
	/* 1001 addresses in one to value: too many */
	static char many[40000];
	size_t n = (size_t)snprintf(many, sizeof many,
	                            "from=news%%40mg.example.org&subject=s&text=t&to=");
	for (int i = 0; i < 1001; i++)
		n += (size_t)snprintf(many + n, sizeof many - n, "%sr%d%%40x.org", i ? "%2C" : "", i);
	assert_int_equal(post(mp, "application/x-www-form-urlencoded", many, "api:key-mg-secret",
	                      NULL, &r),
	                 400);
	assert_non_null(strstr(r.body, "too many recipients"));
	assert_int_equal(accepted("mg"), a0 + 4);
	/* key before domain: a wrong key is 401 whatever the domain; a right key on an unknown domain 404 */
	const char *ok = "from=news%40mg.example.org&to=a%40x.org&subject=s&text=t";
	assert_int_equal(post("/v3/other.example.org/messages", "application/x-www-form-urlencoded",
	                      ok, "api:wrong", NULL, &r),
	                 401);
	assert_int_equal(post("/v3/other.example.org/messages", "application/x-www-form-urlencoded",
	                      ok, NULL, NULL, &r),
	                 401);
	assert_int_equal(post("/v3/other.example.org/messages", "application/x-www-form-urlencoded",
	                      ok, "api:key-mg-secret", NULL, &r),
	                 404);
	assert_non_null(strstr(r.body, "Domain not found"));
	/* unknown paths and methods, in Mailgun's shape */
	assert_int_equal(post("/v3/mg.example.org/nothing", "application/x-www-form-urlencoded", ok,
	                      "api:key-mg-secret", NULL, &r),
	                 404);
	assert_string_equal(r.body, "{\"message\":\"Not Found\"}");
	assert_int_equal(get(mp, "api:key-mg-secret", &r), 405);
	assert_non_null(strstr(r.body, "\"message\""));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_accept_and_count),
	    cmocka_unit_test(test_many_ids),
	    cmocka_unit_test(test_wrong_auth),
	    cmocka_unit_test(test_faults),
	    cmocka_unit_test(test_validation),
	    cmocka_unit_test(test_receipts),
	    cmocka_unit_test(test_sendgrid_scanner),
	    cmocka_unit_test(test_sendgrid_batch_build),
	    cmocka_unit_test(test_sig_vectors),
	    cmocka_unit_test(test_vonage_signed_webhooks),
	    cmocka_unit_test(test_vonage_sig_config),
	    cmocka_unit_test(test_vonage_json_basic),
	    cmocka_unit_test(test_form),
	    cmocka_unit_test(test_segments),
	    cmocka_unit_test(test_twilio_list_fetch),
	    cmocka_unit_test(test_sendgrid_fidelity),
	    cmocka_unit_test(test_mailgun_fidelity),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
