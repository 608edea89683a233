/* test_vnd.c -- vendor adapters: request bytes, canned answers per error code, webhooks and signatures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "core/cfg.h"
#include "core/err.h"
#include "templates/email.h"
#include "vendors/vnd.h"

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#ifndef DATA_DIR
#define DATA_DIR "tests/data/vendors"
#endif

static cfg_t *C;
static EVP_PKEY *SGKEY;
static char SGPUB[256];

static const char *ID1 = "0123456789abcdef0123456789abcdef";
static const char *ID2 = "fedcba9876543210fedcba9876543210";
static const char *ID3 = "00112233445566778899aabbccddeeff";

static int b64(const unsigned char *p, size_t n, char *out)
{
	return EVP_EncodeBlock((unsigned char *)out, p, (int)n);
}

static int setup(void **st)
{
	(void)st;
	setenv("T_TW", "tw-secret-token", 1);
	setenv("T_VG", "vg-secret", 1);
	setenv("T_SG", "SG.secret-key", 1);
	setenv("T_MG", "key-mg-secret", 1);
	setenv("T_MGW", "mg-webhook-signing-key", 1);
	setenv("T_VGS", "secret", 1);
	setenv("TOCSIN_TEST_NOW_S", "1700000000", 1); /* the webhook clock */
	SGKEY = EVP_EC_gen("P-256");
	unsigned char der[200], *p = der;
	int n = i2d_PUBKEY(SGKEY, &p);
	b64(der, (size_t)n, SGPUB);
	char path[] = "/tmp/test_vnd_cfgXXXXXX";
	int fd = mkstemp(path);
	FILE *f = fdopen(fd, "w");
	fprintf(
	    f,
	    "{\"var_dir\":\"/tmp\",\"tracker\":{\"public_url\":\"https://hooks.example.org\"},"
	    "\"vendors\":["
	    "{\"name\":\"tw\",\"kind\":\"twilio\",\"base_url\":\"http://sim\",\"account\":\"ACtest\","
	    "\"secret_env\":\"T_TW\",\"senders\":{\"main\":{\"from\":\"+15005550006\"},\"svc\":{\"service\":\"MG123\"}}},"
	    "{\"name\":\"vg\",\"kind\":\"vonage\",\"base_url\":\"http://sim\",\"account\":\"vgkey\","
	    "\"secret_env\":\"T_VG\",\"webhook_auth\":\"none\",\"senders\":{\"main\":\"+15005550007\"}},"
	    "{\"name\":\"vgs\",\"kind\":\"vonage\",\"base_url\":\"http://sim\",\"account\":\"vgkey\","
	    "\"secret_env\":\"T_VG\",\"signature_secret_env\":\"T_VGS\",\"senders\":{\"main\":\"+15005550007\"}},"
	    "{\"name\":\"vgx\",\"kind\":\"vonage\",\"base_url\":\"http://sim\",\"account\":\"vgkey\","
	    "\"secret_env\":\"T_VG\",\"senders\":{\"main\":\"+15005550007\"}},"
	    "{\"name\":\"sg\",\"kind\":\"sendgrid\",\"base_url\":\"http://sim\",\"account\":\"x\","
	    "\"secret_env\":\"T_SG\",\"webhook_public_key\":\"%s\",\"senders\":{\"main\":\"news@example.org\"}},"
	    "{\"name\":\"mg\",\"kind\":\"mailgun\",\"base_url\":\"http://sim\",\"account\":\"mg.example.org\","
	    "\"secret_env\":\"T_MG\",\"webhook_key_env\":\"T_MGW\",\"senders\":{\"main\":\"news@mg.example.org\"}}"
	    "]}",
	    SGPUB);
	fclose(f);
	char err[512];
	C = cfg_load(path, err, sizeof err);
	unlink(path);
	if (!C)
		fprintf(stderr, "cfg: %s\n", err);
	return C ? 0 : -1;
}

static int teardown(void **st)
{
	(void)st;
	cfg_free(C);
	EVP_PKEY_free(SGKEY);
	return 0;
}

static vnd_t *adapter(const char *name)
{
	char err[256];
	vnd_t *a = vnd_new(C, cfg_vendor(C, name), err, sizeof err);
	if (!a)
		fprintf(stderr, "vnd_new: %s\n", err);
	assert_non_null(a);
	return a;
}

static msg_out_t sms(const char *id, const char *to, const char *body)
{
	msg_out_t m;
	memset(&m, 0, sizeof m);
	m.id = id;
	m.campaign = "c1";
	m.channel = MSG_CH_SMS;
	m.to = to;
	m.sender = "main";
	m.body = body;
	m.enc = "gsm7";
	m.segments = 1;
	return m;
}

static msg_out_t email(const char *id, const char *to)
{
	msg_out_t m;
	memset(&m, 0, sizeof m);
	m.id = id;
	m.campaign = "c1";
	m.channel = MSG_CH_EMAIL;
	m.to = to;
	m.sender = "main";
	m.subject = "Rally tonight";
	m.text = "Join us at 7.";
	m.html = "<p>Join us at 7.</p>";
	m.segments = 1;
	return m;
}

/* ---- requests ---- */

static void test_twilio_build(void **st)
{
	(void)st;
	vnd_t *a = adapter("tw");
	assert_int_equal(vnd_max_batch(a), 1);
	msg_out_t m = sms(ID1, "+15551234567", "Vote & win: 100%");
	const msg_out_t *ms[] = {&m};
	vnd_req_t r;
	vnd_req_init(&r);
	char err[256];
	assert_int_equal(vnd_build(a, ms, 1, &r, err, sizeof err), 0);
	assert_string_equal(r.url.p, "http://sim/2010-04-01/Accounts/ACtest/Messages.json");
	assert_string_equal(r.body.p,
	                    "To=%2B15551234567&From=%2B15005550006&Body=Vote+%26+win%3A+100%25"
	                    "&StatusCallback=https%3A%2F%2Fhooks.example.org%2Fwebhooks%2Ftw%2Fstatus%3Fmid%3D"
	                    "0123456789abcdef0123456789abcdef");
	assert_string_equal(r.content_type.p, "application/x-www-form-urlencoded");
	assert_string_equal(r.userpwd.p, "ACtest:tw-secret-token");
	/* a messaging service instead of From */
	m.sender = "svc";
	assert_int_equal(vnd_build(a, ms, 1, &r, err, sizeof err), 0);
	assert_non_null(strstr(r.body.p, "&MessagingServiceSid=MG123&"));
	assert_null(strstr(r.body.p, "From="));
	/* no number for the pool */
	m.sender = "nope";
	assert_int_equal(vnd_build(a, ms, 1, &r, err, sizeof err), TOCSIN_ERR_INVAL);
	assert_non_null(strstr(err, "nope"));
	/* too long */
	char big[1700];
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = 0;
	m = sms(ID1, "+15551234567", big);
	assert_int_equal(vnd_build(a, ms, 1, &r, err, sizeof err), TOCSIN_ERR_TOOBIG);
	vnd_req_free(&r);
	vnd_free(a);
}

static void test_vonage_build(void **st)
{
	(void)st;
	vnd_t *a = adapter("vg");
	msg_out_t m = sms(ID1, "+15551234567", "Hé");
	m.enc = "ucs2";
	const msg_out_t *ms[] = {&m};
	vnd_req_t r;
	vnd_req_init(&r);
	char err[256];
	assert_int_equal(vnd_build(a, ms, 1, &r, err, sizeof err), 0);
	assert_string_equal(r.url.p, "http://sim/sms/json");
	assert_string_equal(
	    r.body.p,
	    "api_key=vgkey&api_secret=vg-secret&from=15005550007&to=15551234567"
	    "&text=H%C3%A9&type=unicode&client-ref=0123456789abcdef0123456789abcdef"
	    "&status-report-req=1&callback=https%3A%2F%2Fhooks.example.org%2Fwebhooks%2Fvg%2Fstatus");
	assert_int_equal(r.userpwd.len, 0);
	vnd_req_free(&r);
	vnd_free(a);
}

static void test_sendgrid_build(void **st)
{
	(void)st;
	vnd_t *a = adapter("sg");
	assert_int_equal(vnd_max_batch(a), 1000);
	msg_out_t m1 = email(ID1, "a@example.org"), m2 = email(ID2, "b@example.org");
	m1.headers = "{\"List-Unsubscribe\":\"<https://u.example.org/t1>\",\"List-Unsubscribe-Post\":\"List-Unsubscribe=One-Click\"}";
	const msg_out_t *ms[] = {&m1, &m2};
	vnd_req_t r;
	vnd_req_init(&r);
	char err[256];
	assert_int_equal(vnd_build(a, ms, 2, &r, err, sizeof err), 0);
	assert_string_equal(r.url.p, "http://sim/v3/mail/send");
	assert_string_equal(r.bearer.p, "SG.secret-key");
	assert_string_equal(r.content_type.p, "application/json");
	json_t *j = json_loads(r.body.p, 0, NULL);
	assert_non_null(j);
	json_t *p = json_object_get(j, "personalizations");
	assert_int_equal(json_array_size(p), 2);
	assert_string_equal(json_string_value(
	                        json_object_get(json_object_get(json_array_get(p, 1), "custom_args"),
	                                        "tocsin_id")),
	                    ID2);
	assert_string_equal(json_string_value(json_object_get(
	                        json_array_get(json_object_get(json_array_get(p, 0), "to"), 0), "email")),
	                    "a@example.org");
	assert_string_equal(json_string_value(
	                        json_object_get(json_object_get(json_array_get(p, 0), "headers"),
	                                        "List-Unsubscribe")),
	                    "<https://u.example.org/t1>");
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "from"), "email")),
	                    "news@example.org");
	assert_int_equal(json_array_size(json_object_get(j, "content")), 2);
	json_decref(j);
	/* the same address twice in a batch is refused before SendGrid does */
	m2.to = "a@example.org";
	assert_int_equal(vnd_build(a, ms, 2, &r, err, sizeof err), TOCSIN_ERR_INVAL);
	assert_non_null(strstr(err, "twice"));
	/* bad headers JSON */
	m2.to = "b@example.org";
	m1.headers = "{not json";
	assert_int_equal(vnd_build(a, ms, 2, &r, err, sizeof err), TOCSIN_ERR_INVAL);
	vnd_req_free(&r);
	vnd_free(a);
}

static void test_mailgun_build(void **st)
{
	(void)st;
	vnd_t *a = adapter("mg");
	msg_out_t m1 = email(ID1, "a@example.org"), m2 = email(ID2, "b@example.org");
	m1.headers = "{\"List-Unsubscribe\":\"<https://u/1>\",\"X-Campaign\":\"c1\"}";
	m2.headers = "{\"List-Unsubscribe\":\"<https://u/2>\",\"X-Campaign\":\"c1\"}";
	const msg_out_t *ms[] = {&m1, &m2};
	vnd_req_t r;
	vnd_req_init(&r);
	char err[256];
	assert_int_equal(vnd_build(a, ms, 2, &r, err, sizeof err), 0);
	assert_string_equal(r.url.p, "http://sim/v3/mg.example.org/messages");
	assert_string_equal(r.userpwd.p, "api:key-mg-secret");
	assert_non_null(strstr(r.content_type.p, "multipart/form-data; boundary="));
	const char *b = r.body.p;
	assert_non_null(strstr(b, "name=\"to\"\r\n\r\na@example.org\r\n"));
	assert_non_null(strstr(b, "name=\"to\"\r\n\r\nb@example.org\r\n"));
	assert_non_null(strstr(b, "name=\"h:X-Campaign\"\r\n\r\nc1\r\n"));
	assert_non_null(
	    strstr(b, "name=\"h:List-Unsubscribe\"\r\n\r\n%recipient.h_List_Unsubscribe%\r\n"));
	assert_non_null(strstr(b, "name=\"v:tocsin_id\"\r\n\r\n%recipient.tocsin_id%\r\n"));
	assert_non_null(strstr(
	    b, "\"b@example.org\":{\"tocsin_id\":\"fedcba9876543210fedcba9876543210\",\"h_List_Unsubscribe\":\"<https://u/2>\"}"));
	/* one inline message (no subs): no recipient variables, so Mailgun replaces nothing in
	 * it (a recipient's own "%recipient.x%" reaches them as written); its id as it is */
	m1.text = "Hi %recipient.tocsin_id% and %recipient.h_List_Unsubscribe%";
	vnd_req_free(&r);
	vnd_req_init(&r);
	assert_int_equal(vnd_build(a, ms, 1, &r, err, sizeof err), 0);
	b = r.body.p;
	assert_null(strstr(b, "recipient-variables"));
	char want[128];
	snprintf(want, sizeof want, "name=\"v:tocsin_id\"\r\n\r\n%s\r\n", ID1);
	assert_non_null(strstr(b, want));
	assert_non_null(strstr(
	    b, "name=\"text\"\r\n\r\nHi %recipient.tocsin_id% and %recipient.h_List_Unsubscribe%\r\n"));
	assert_non_null(strstr(b, "name=\"h:List-Unsubscribe\"\r\n\r\n<https://u/1>\r\n"));
	vnd_req_free(&r);
	vnd_free(a);
}

/* Per-recipient substitutions: SendGrid's personalization "substitutions"
 * keyed by the placeholder literal; Mailgun's recipient-variables with the
 * placeholder rewritten to %recipient.<name>% in the shared parts. */
static void test_email_subs(void **st)
{
	(void)st;
	msg_out_t m1 = email(ID1, "a@example.org"), m2 = email(ID2, "b@example.org");
	m1.text = m2.text = "Stop: {{{tocsin:unsubscribe_url}}} {{{tocsin:nope";
	m1.html = m2.html = "<a href=\"{{{tocsin:unsubscribe_url}}}\">x</a>";
	m1.subs = "{\"unsubscribe_url\":\"https://t/u/AAA\"}";
	m2.subs = "{\"unsubscribe_url\":\"https://t/u/B\\\"B\"}";
	m1.headers = "{\"List-Unsubscribe\":\"<https://t/u/AAA>\"}";
	m2.headers = "{\"List-Unsubscribe\":\"<https://t/u/BBB>\"}";
	const msg_out_t *ms[] = {&m1, &m2};
	vnd_req_t r;
	vnd_req_init(&r);
	char err[256];
	vnd_t *a = adapter("sg");
	assert_int_equal(vnd_build(a, ms, 2, &r, err, sizeof err), 0);
	json_t *j = json_loads(r.body.p, 0, NULL);
	assert_non_null(j);
	json_t *p = json_object_get(j, "personalizations");
	assert_string_equal(json_string_value(json_object_get(json_object_get(json_array_get(p, 0),
	                                                                      "substitutions"),
	                                                      "{{{tocsin:unsubscribe_url}}}")),
	                    "https://t/u/AAA");
	assert_string_equal(json_string_value(json_object_get(json_object_get(json_array_get(p, 1),
	                                                                      "substitutions"),
	                                                      "{{{tocsin:unsubscribe_url}}}")),
	                    "https://t/u/B\"B");
	assert_string_equal(json_string_value(
	                        json_object_get(json_object_get(json_array_get(p, 1), "headers"),
	                                        "List-Unsubscribe")),
	                    "<https://t/u/BBB>");
	assert_string_equal(json_string_value(
	                        json_object_get(json_array_get(json_object_get(j, "content"), 0),
	                                        "value")),
	                    m1.text); /* the shared part as it is: SendGrid substitutes */
	/* one campaign: tocsin_campaign once at the top level (merged into events by SendGrid) */
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "custom_args"),
	                                                      "tocsin_campaign")),
	                    "c1");
	assert_null(json_object_get(json_object_get(json_array_get(p, 0), "custom_args"),
	                            "tocsin_campaign"));
	json_decref(j);
	/* a header every message has with the same value goes once at the top level */
	m1.headers = "{\"List-Unsubscribe\":\"<https://t/u/AAA>\",\"List-Unsubscribe-Post\":\"List-Unsubscribe=One-Click\"}";
	m2.headers = "{\"List-Unsubscribe-Post\":\"List-Unsubscribe=One-Click\", \"List-Unsubscribe\":\"<https://t/u/BBB>\"}";
	assert_int_equal(vnd_build(a, ms, 2, &r, err, sizeof err), 0);
	j = json_loads(r.body.p, 0, NULL);
	assert_non_null(j);
	p = json_object_get(j, "personalizations");
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "headers"),
	                                                      "List-Unsubscribe-Post")),
	                    "List-Unsubscribe=One-Click");
	assert_int_equal(json_object_size(json_object_get(j, "headers")), 1);
	for (int i = 0; i < 2; i++) {
		json_t *hh = json_object_get(json_array_get(p, i), "headers");
		assert_int_equal(json_object_size(hh), 1);
		assert_non_null(json_object_get(hh, "List-Unsubscribe"));
	}
	json_decref(j);
	/* every header shared: no per-personalization headers at all */
	m2.headers = m1.headers;
	m2.to = "c@example.org";
	m1.headers = m2.headers = "{\"X-A\":\"1\"}";
	assert_int_equal(vnd_build(a, ms, 2, &r, err, sizeof err), 0);
	j = json_loads(r.body.p, 0, NULL);
	assert_non_null(j);
	assert_null(
	    json_object_get(json_array_get(json_object_get(j, "personalizations"), 0), "headers"));
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "headers"), "X-A")),
	                    "1");
	json_decref(j);
	m2.to = "b@example.org";
	/* names must be plain: refused, never sent half-substituted */
	m2.subs = "{\"bad name\":\"x\"}";
	assert_int_equal(vnd_build(a, ms, 2, &r, err, sizeof err), TOCSIN_ERR_INVAL);
	assert_non_null(strstr(err, "subs"));
	m2.subs = "{\"unsubscribe_url\":7}";
	assert_int_equal(vnd_build(a, ms, 2, &r, err, sizeof err), TOCSIN_ERR_INVAL);
	vnd_free(a);

	m2.subs = "{\"unsubscribe_url\":\"https://t/u/BBB\"}";
	m1.headers = "{\"List-Unsubscribe\":\"<https://t/u/AAA>\"}";
	m2.headers = "{\"List-Unsubscribe\":\"<https://t/u/BBB>\"}";
	a = adapter("mg");
	vnd_req_free(&r);
	vnd_req_init(&r);
	assert_int_equal(vnd_build(a, ms, 2, &r, err, sizeof err), 0);
	const char *b = r.body.p;
	assert_non_null(
	    strstr(b, "name=\"text\"\r\n\r\nStop: %recipient.unsubscribe_url% {{{tocsin:nope\r\n"));
	assert_non_null(
	    strstr(b, "name=\"html\"\r\n\r\n<a href=\"%recipient.unsubscribe_url%\">x</a>\r\n"));
	assert_non_null(
	    strstr(b, "\"a@example.org\":{\"unsubscribe_url\":\"https://t/u/AAA\",\"tocsin_id\":"));
	assert_non_null(
	    strstr(b, "\"b@example.org\":{\"unsubscribe_url\":\"https://t/u/BBB\",\"tocsin_id\":"));
	assert_non_null(
	    strstr(b, "name=\"h:List-Unsubscribe\"\r\n\r\n%recipient.h_List_Unsubscribe%\r\n"));
	/* a name that would clash with our own recipient variables is refused */
	m2.subs = "{\"tocsin_id\":\"x\"}";
	assert_int_equal(vnd_build(a, ms, 2, &r, err, sizeof err), TOCSIN_ERR_INVAL);
	/* one message with subs and one without cannot share a request */
	m2.subs = NULL;
	assert_int_equal(vnd_build(a, ms, 2, &r, err, sizeof err), TOCSIN_ERR_INVAL);
	vnd_req_free(&r);
	vnd_free(a);
}

/* ---- canned answers ---- */

static char *slurp(const char *name, size_t *len)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", DATA_DIR, name);
	FILE *f = fopen(path, "rb");
	if (!f)
		fail_msg("cannot open fixture %s", path);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *p = malloc((size_t)n + 1);
	*len = fread(p, 1, (size_t)n, f);
	p[*len] = 0;
	fclose(f);
	return p;
}

static void test_canned_answers(void **st)
{
	(void)st;
	char path[512];
	snprintf(path, sizeof path, "%s/cases.txt", DATA_DIR);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	char line[512];
	int ncases = 0, lineno = 0;
	while (fgets(line, sizeof line, f)) {
		lineno++;
		if (line[0] == '#' || line[0] == '\n')
			continue;
		char vend[16], file[128], outc[16], code[32];
		long status, ra;
		int curl, n, thr, ram = -1;
		int k = sscanf(line, "%15s %ld %ld %d %d %127s %15s %31s %d %d", vend, &status, &ra,
		               &curl, &n, file, outc, code, &thr, &ram);
		if (k < 9)
			fail_msg("cases.txt:%d: malformed", lineno);
		vnd_t *a = adapter(vend);
		size_t len;
		char *body = slurp(file, &len);
		msg_out_t m[3] = {email(ID1, "a@example.org"), email(ID2, "b@example.org"),
		                  email(ID3, "c@example.org")};
		const msg_out_t *ms[] = {&m[0], &m[1], &m[2]};
		vnd_result_t res[3];
		vnd_classify(a, ms, (size_t)n, status, curl, body, len, ra, res);
		for (int i = 0; i < n; i++) {
			if (strcmp(vnd_outcome_name(res[i].outcome), outc) ||
			    (strcmp(code, "-") && strcmp(res[i].code, code)) ||
			    res[i].throttled != thr || (ram != -1 && res[i].retry_after_ms != ram))
				fail_msg("cases.txt:%d (%s): got %s code=%s throttled=%d retry_after_ms=%d detail=%s",
				         lineno, file, vnd_outcome_name(res[i].outcome), res[i].code,
				         res[i].throttled, res[i].retry_after_ms, res[i].detail);
			if (res[i].outcome == VND_ACCEPTED && strcmp(vend, "sg"))
				assert_true(res[i].ref[0]);
		}
		free(body);
		vnd_free(a);
		ncases++;
	}
	fclose(f);
	assert_true(ncases >= 40);
}

static void test_batch_partial_reject(void **st)
{
	(void)st;
	vnd_t *a = adapter("sg");
	size_t len;
	char *body = slurp("sg-400-index1.json", &len);
	msg_out_t m[3] = {email(ID1, "a@x.org"), email(ID2, "b@x.org"), email(ID3, "c@x.org")};
	const msg_out_t *ms[] = {&m[0], &m[1], &m[2]};
	vnd_result_t res[3];
	vnd_classify(a, ms, 3, 400, 0, body, len, -1, res);
	assert_int_equal(res[0].outcome, VND_DEFER);
	assert_int_equal(res[1].outcome, VND_PERMANENT);
	assert_int_equal(res[2].outcome, VND_DEFER);
	assert_string_equal(res[0].code, "batch_peer_rejected");
	free(body);
	vnd_free(a);
}

static void test_huge_answer(void **st)
{
	(void)st;
	size_t n = 10u << 20;
	char *big = malloc(n);
	memset(big, '{', n);
	const char *kinds[] = {"tw", "vg", "sg", "mg"};
	for (int k = 0; k < 4; k++) {
		vnd_t *a = adapter(kinds[k]);
		msg_out_t m = email(ID1, "a@x.org");
		const msg_out_t *ms[] = {&m};
		vnd_result_t r;
		vnd_classify(a, ms, 1, 200, 0, big, n, -1, &r);
		assert_int_equal(r.outcome, VND_DEFER);
		vnd_classify(a, ms, 1, 201, 0, big, n, -1, &r);
		assert_true(r.outcome == VND_DEFER || (k == 2 && r.outcome == VND_DEFER));
		vnd_free(a);
	}
	free(big);
}

/* ---- signatures ---- */

static void test_twilio_vector(void **st)
{
	(void)st;
	const char *names[] = {"CallSid", "Caller", "Digits", "From", "To"};
	const char *vals[] = {"CA1234567890ABCDE", "+12349013030", "1234", "+12349013030",
	                      "+18005551212"};
	char sig[64];
	assert_int_equal(vnd_twilio_sign("12345", "https://mycompany.com/myapp.php?foo=1&bar=2",
	                                 names, vals, 5, sig, sizeof sig),
	                 0);
	assert_string_equal(sig, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
	/* order of parameters does not matter; their content does */
	const char *names2[] = {"To", "From", "Digits", "Caller", "CallSid"};
	const char *vals2[] = {"+18005551212", "+12349013030", "1234", "+12349013030",
	                       "CA1234567890ABCDE"};
	assert_int_equal(vnd_twilio_sign("12345", "https://mycompany.com/myapp.php?foo=1&bar=2",
	                                 names2, vals2, 5, sig, sizeof sig),
	                 0);
	assert_string_equal(sig, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
	vals2[2] = "1235";
	vnd_twilio_sign("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", names2, vals2, 5,
	                sig, sizeof sig);
	assert_string_not_equal(sig, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
}

static void test_sendgrid_vector(void **st)
{
	(void)st;
	const char *key =
	    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjcMMsTbhdbcwHBcepxo7yAQGhHPTnlvFYPAZFceEu/1FwCM/QmGUhA==";
	const char *body =
	    "{\"category\":\"example_payload\",\"event\":\"test_event\",\"message_id\":\"message_id\"}";
	const char *sig =
	    "MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6BpSzoQsbVRamr2nlxFDWYNH2j/0=";
	assert_int_equal(vnd_sendgrid_verify(key, "1588788367", sig, body, strlen(body)), 0);
	/* tampered body, timestamp, signature; garbage key */
	char t[200];
	snprintf(t, sizeof t, "%s", body);
	t[20] ^= 1;
	assert_int_equal(vnd_sendgrid_verify(key, "1588788367", sig, t, strlen(t)), TOCSIN_ERR_AUTH);
	assert_int_equal(vnd_sendgrid_verify(key, "1588788368", sig, body, strlen(body)),
	                 TOCSIN_ERR_AUTH);
	assert_int_equal(vnd_sendgrid_verify(key, "1588788367", "MEUCIQ==", body, strlen(body)),
	                 TOCSIN_ERR_AUTH);
	assert_int_equal(vnd_sendgrid_verify("bm90IGEga2V5", "1588788367", sig, body, strlen(body)),
	                 TOCSIN_ERR_AUTH);
	assert_int_equal(vnd_sendgrid_verify(key, "1588788367", "!!!", body, strlen(body)),
	                 TOCSIN_ERR_AUTH);
}

static void test_mailgun_sign(void **st)
{
	(void)st;
	char out[80];
	/* HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog") split as ts + token */
	assert_int_equal(vnd_mailgun_sign("key", "The quick brown fox ", "jumps over the lazy dog",
	                                  out, sizeof out),
	                 0);
	assert_string_equal(out, "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8");
	assert_true(vnd_ct_eq("abc", 3, "abc", 3));
	assert_false(vnd_ct_eq("abc", 3, "abd", 3));
	assert_false(vnd_ct_eq("abc", 3, "abcd", 4));
}

/* ---- webhooks ---- */

typedef struct hdrs {
	const char *n[4], *v[4];
} hdrs_t;

static const char *hget(void *ctx, const char *name)
{
	hdrs_t *h = ctx;
	for (int i = 0; i < 4; i++)
		if (h->n[i] && !strcasecmp(h->n[i], name))
			return h->v[i];
	return NULL;
}

typedef struct got {
	int n;
	vnd_wh_event_t ev[8];
} got_t;

static int collect(void *ctx, const vnd_wh_event_t *ev)
{
	got_t *g = ctx;
	if (g->n < 8)
		g->ev[g->n] = *ev;
	g->n++;
	return 0;
}

static int tw_post(vnd_t *a, const char *url, const char *query, const char *body, const char *sig,
                   got_t *g)
{
	hdrs_t h = {{"X-Twilio-Signature"}, {sig}};
	vnd_wh_req_t rq = {"POST", url, query, "application/x-www-form-urlencoded",
	                   hget,   &h,  body,  strlen(body)};
	char err[256];
	memset(g, 0, sizeof *g);
	return vnd_webhook(a, &rq, collect, g, err, sizeof err);
}

static void test_twilio_webhooks(void **st)
{
	(void)st;
	vnd_t *a = adapter("tw");
	const char *url = "https://hooks.example.org/webhooks/tw/status?mid=0123456789abcdef0123456789abcdef";
	const char *names[] = {"MessageSid", "MessageStatus", "To", "ErrorCode"};
	const char *vals[] = {"SM1", "undelivered", "+15551234567", "30003"};
	char sig[64];
	vnd_twilio_sign("tw-secret-token", url, names, vals, 4, sig, sizeof sig);
	const char *body = "MessageSid=SM1&MessageStatus=undelivered&To=%2B15551234567&ErrorCode=30003";
	got_t g;
	assert_int_equal(tw_post(a, url, "mid=0123456789abcdef0123456789abcdef", body, sig, &g), 1);
	assert_int_equal(g.ev[0].kind, VND_WH_STATUS);
	assert_string_equal(g.ev[0].id, ID1);
	assert_string_equal(g.ev[0].ref, "SM1");
	assert_int_equal(g.ev[0].state, MSG_ST_UNDELIVERED);
	assert_string_equal(g.ev[0].code, "30003");
	assert_string_equal(g.ev[0].address, "+15551234567");
	assert_string_equal(g.ev[0].replay, "twilio:SM1:undelivered"); /* signed fields */
	assert_string_equal(g.ev[0].replay_alt, "");                   /* no retry token */
	/* tampered body, missing signature, other URL */
	assert_int_equal(tw_post(a, url, NULL,
	                         "MessageSid=SM1&MessageStatus=delivered&To=%2B15551234567&ErrorCode=30003",
	                         sig, &g),
	                 TOCSIN_ERR_AUTH);
	assert_int_equal(g.n, 0);
	assert_int_equal(tw_post(a, url, NULL, body, "", &g), TOCSIN_ERR_AUTH);
	assert_int_equal(tw_post(a, "https://evil.example.org/webhooks/tw/status?mid=0123456789abcdef0123456789abcdef",
	                         NULL, body, sig, &g),
	                 TOCSIN_ERR_AUTH);
	/* a receipt for an unknown id (no mid) is still reported, with an empty id */
	const char *url2 = "https://hooks.example.org/webhooks/tw/status";
	const char *n2[] = {"MessageSid", "MessageStatus"};
	const char *v2[] = {"SM9", "delivered"};
	vnd_twilio_sign("tw-secret-token", url2, n2, v2, 2, sig, sizeof sig);
	assert_int_equal(tw_post(a, url2, NULL, "MessageSid=SM9&MessageStatus=delivered", sig, &g), 1);
	assert_string_equal(g.ev[0].id, "");
	assert_int_equal(g.ev[0].state, MSG_ST_DELIVERED);
	/* a GET callback: only the URL is signed, the fields come from the query */
	const char *url4 =
	    "https://hooks.example.org/webhooks/tw/status?mid=0123456789abcdef0123456789abcdef&MessageSid=SM4&MessageStatus=sent";
	vnd_twilio_sign("tw-secret-token", url4, NULL, NULL, 0, sig, sizeof sig);
	hdrs_t h4 = {{"X-Twilio-Signature"}, {sig}};
	vnd_wh_req_t rq4 = {"GET", url4, strchr(url4, '?') + 1, NULL, hget, &h4, NULL, 0};
	char err4[256];
	memset(&g, 0, sizeof g);
	assert_int_equal(vnd_webhook(a, &rq4, collect, &g, err4, sizeof err4), 1);
	assert_int_equal(g.ev[0].state, MSG_ST_SENT);
	assert_string_equal(g.ev[0].id, ID1);
	assert_string_equal(g.ev[0].ref, "SM4");
	/* inbound STOP */
	const char *url3 = "https://hooks.example.org/webhooks/tw/inbound";
	const char *n3[] = {"From", "To", "Body", "MessageSid"};
	const char *v3[] = {"+15551234567", "+15005550006", " stop ", "SM7"};
	vnd_twilio_sign("tw-secret-token", url3, n3, v3, 4, sig, sizeof sig);
	assert_int_equal(tw_post(a, url3, NULL,
	                         "From=%2B15551234567&To=%2B15005550006&Body=+stop+&MessageSid=SM7",
	                         sig, &g),
	                 1);
	assert_int_equal(g.ev[0].kind, VND_WH_INBOUND);
	assert_int_equal(g.ev[0].keyword, VND_KW_STOP);
	assert_string_equal(g.ev[0].address, "+15551234567");
	assert_string_equal(g.ev[0].to, "+15005550006");
	vnd_free(a);
}

static void test_vonage_webhooks(void **st)
{
	(void)st;
	vnd_t *a = adapter("vg");
	got_t g;
	memset(&g, 0, sizeof g);
	char err[256];
	vnd_wh_req_t rq = {"GET",
	                   "https://h/webhooks/vg/status",
	                   "msisdn=15551234567&to=15005550007&messageId=0A1&status=failed&err-code=9&client-ref=0123456789abcdef0123456789abcdef",
	                   NULL,
	                   NULL,
	                   NULL,
	                   NULL,
	                   0};
	assert_int_equal(vnd_webhook(a, &rq, collect, &g, err, sizeof err), 1);
	assert_int_equal(g.ev[0].state, MSG_ST_FAILED);
	assert_int_equal(g.ev[0].optout, 1);
	assert_string_equal(g.ev[0].id, ID1);
	assert_string_equal(g.ev[0].address, "+15551234567");
	const char *js = "{\"msisdn\":\"15551234567\",\"to\":\"15005550007\",\"messageId\":\"0B2\",\"text\":\"Help\",\"type\":\"text\"}";
	vnd_wh_req_t rq2 = {"POST", "https://h/webhooks/vg/inbound",
	                    NULL,   "application/json",
	                    NULL,   NULL,
	                    js,     strlen(js)};
	memset(&g, 0, sizeof g);
	assert_int_equal(vnd_webhook(a, &rq2, collect, &g, err, sizeof err), 1);
	assert_int_equal(g.ev[0].kind, VND_WH_INBOUND);
	assert_int_equal(g.ev[0].keyword, VND_KW_HELP);
	vnd_wh_req_t rq3 = {"POST", "https://h/", NULL,           "application/json",
	                    NULL,   NULL,         "{\"msisdn\":", 10};
	assert_int_equal(vnd_webhook(a, &rq3, collect, &g, err, sizeof err), TOCSIN_ERR_INVAL);
	vnd_free(a);
}

/* Vectors: md5hash from Vonage's SDK tests (params a=1, b=2, timestamp=1461605396, secret
 * "secret"); the HMAC ones computed with python's hmac/hashlib over "&a=1&b=2&timestamp=1461605396". */
static void test_vonage_sign(void **st)
{
	(void)st;
	const char *n[] = {"timestamp", "b", "sig", "a"}, *v[] = {"1461605396", "2", "ignored", "1"};
	static const struct {
		const char *m, *want;
	} V[] = {
	    {"md5hash", "6af838ef94998832dbfc29020b564830"},
	    {"md5", "c15c21ced558c93a226c305f58f902f2"},
	    {"sha1", "3e19a4e6880fdc2c1426bfd0587c98b9532f0210"},
	    {"sha256", "a321e824b9b816be7c3f28859a31749a098713d39f613c80d455bbaffae1cd24"},
	    {"sha512", "812a18f76680fa0fe1b8bd9ee1625466ceb1bd96242e4d050d2cfd9a7b40166c63ed26ec9702168781"
	               "b6edcf1633db8ff95af9341701004eec3fcf9550572ee8"},
	};
	char out[160];
	for (size_t i = 0; i < sizeof V / sizeof V[0]; i++) {
		assert_int_equal(vnd_vonage_sign("secret", V[i].m, n, v, 4, out, sizeof out), 0);
		assert_string_equal(out, V[i].want);
	}
	assert_int_equal(vnd_vonage_sign("secret", "sha3", n, v, 4, out, sizeof out), TOCSIN_ERR_INVAL);
	/* '&' and '=' inside values are replaced by '_' before hashing */
	const char *n2[] = {"text", "timestamp"}, *v2[] = {"a&b=c", "1"};
	assert_int_equal(vnd_vonage_sign("k", "md5hash", n2, v2, 2, out, sizeof out), 0);
	assert_string_equal(out, "b05196594c5ba3374d7642a7c799df21");
}

/* Signed Vonage webhooks: a good sig (any case) passes with its replay key; missing, wrong,
 * tampered or stale ones are refused; a vendor without a secret refuses everything. */
static void test_vonage_signed(void **st)
{
	(void)st;
	vnd_t *a = adapter("vgs");
	got_t g;
	memset(&g, 0, sizeof g);
	char err[256], q[512], sig[160];
	const char *n[] = {"msisdn", "to", "messageId", "text", "type", "timestamp"};
	const char *v[] = {"15551234567", "15005550007", "0B1", "STOP", "text", "1700000000"};
	/* the expected sig from python: md5(sorted "&k=v"... + "secret") */
	assert_int_equal(vnd_vonage_sign("secret", "md5hash", n, v, 6, sig, sizeof sig), 0);
	assert_string_equal(sig, "9edb8ff504c863c4f625d431033e791b");
	snprintf(q, sizeof q,
	         "msisdn=15551234567&to=15005550007&messageId=0B1&text=STOP&type=text&timestamp=1700000000&sig=%s",
	         "9EDB8FF504C863C4F625D431033E791B");
	vnd_wh_req_t rq = {"POST", "https://h/webhooks/vgs/inbound",
	                   NULL,   "application/x-www-form-urlencoded",
	                   NULL,   NULL,
	                   q,      strlen(q)};
	assert_int_equal(vnd_webhook(a, &rq, collect, &g, err, sizeof err), 1);
	assert_int_equal(g.ev[0].keyword, VND_KW_STOP);
	assert_string_equal(g.ev[0].replay, "vonage:9edb8ff504c863c4f625d431033e791b");
	assert_string_equal(vnd_wh_auth(a), "signed");
	/* tampered text, no sig, stale timestamp (the clock is 1700000000, window 300 s) */
	char t[512];
	snprintf(t, sizeof t, "%s", q);
	memcpy(strstr(t, "STOP"), "HELP", 4);
	vnd_wh_req_t r2 = rq;
	r2.body = t, r2.bodylen = strlen(t);
	assert_int_equal(vnd_webhook(a, &r2, collect, &g, err, sizeof err), TOCSIN_ERR_AUTH);
	const char *nosig =
	    "msisdn=15551234567&to=15005550007&messageId=0B1&text=STOP&type=text&timestamp=1700000000";
	r2.body = nosig, r2.bodylen = strlen(nosig);
	assert_int_equal(vnd_webhook(a, &r2, collect, &g, err, sizeof err), TOCSIN_ERR_AUTH);
	const char *vs[] = {"15551234567", "15005550007", "0B1", "STOP", "text", "1699999600"};
	assert_int_equal(vnd_vonage_sign("secret", "md5hash", n, vs, 6, sig, sizeof sig), 0);
	snprintf(t, sizeof t,
	         "msisdn=15551234567&to=15005550007&messageId=0B1&text=STOP&type=text&timestamp=1699999600&sig=%s",
	         sig);
	r2.body = t, r2.bodylen = strlen(t);
	assert_int_equal(vnd_webhook(a, &r2, collect, &g, err, sizeof err), TOCSIN_ERR_AUTH);
	assert_non_null(strstr(err, "s from now"));
	vnd_free(a);
	/* no signature secret and no "webhook_auth":"none": refused, and said so */
	a = adapter("vgx");
	assert_string_equal(vnd_wh_auth(a), "unverifiable");
	assert_int_equal(vnd_webhook(a, &rq, collect, &g, err, sizeof err), TOCSIN_ERR_AUTH);
	assert_non_null(strstr(err, "signature_secret_env"));
	vnd_free(a);
	a = adapter("vg");
	assert_string_equal(vnd_wh_auth(a), "none");
	vnd_free(a);
}

static void test_ref_matches(void **st)
{
	(void)st;
	assert_true(vnd_ref_matches("twilio", "SM1", "SM1"));
	assert_false(vnd_ref_matches("twilio", "SM1", "SM2"));
	assert_true(vnd_ref_matches("mailgun", "<a@mg.x>", "a@mg.x"));
	assert_false(vnd_ref_matches("mailgun", "<a@mg.x>", "b@mg.x"));
	assert_true(vnd_ref_matches("sendgrid", "xid", "xid.filter0001.3"));
	assert_false(vnd_ref_matches("sendgrid", "xid", "xidd.filter"));
	assert_false(vnd_ref_matches("vonage", "xid", "xid.filter"));
	assert_true(vnd_ref_matches("vonage", "", "0A1"));
	assert_true(vnd_ref_matches("vonage", "0A1", ""));
	/* a long Vonage SMS: every part's id is stored, each part's receipt names its own */
	assert_true(vnd_ref_matches("vonage", "0A1 0A2 0A3", "0A1"));
	assert_true(vnd_ref_matches("vonage", "0A1 0A2 0A3", "0A2"));
	assert_true(vnd_ref_matches("vonage", "0A1 0A2 0A3", "0A3"));
	assert_false(vnd_ref_matches("vonage", "0A1 0A2 0A3", "0A"));
	assert_false(vnd_ref_matches("vonage", "0A1 0A2 0A3", "0A2 0A3"));
	assert_false(vnd_ref_matches("vonage", "0A1 0A2 0A3", "0B2"));
	assert_false(vnd_ref_matches("twilio", "SM1 SM2", "SM2"));
}

/* Vonage answers one element per part: the reference keeps every part's
 * message-id (as many as fit), space-separated */
static void test_vonage_parts(void **st)
{
	(void)st;
	vnd_t *a = adapter("vg");
	msg_out_t m = sms(ID1, "+15550000001", "x");
	const msg_out_t *ms[] = {&m};
	vnd_result_t r;
	const char *three =
	    "{\"message-count\":\"3\",\"messages\":[{\"message-id\":\"0A1\",\"status\":\"0\"},"
	    "{\"message-id\":\"0A2\",\"status\":\"0\"},{\"message-id\":\"0A3\",\"status\":\"0\"}]}";
	vnd_classify(a, ms, 1, 200, 0, three, strlen(three), -1, &r);
	assert_int_equal(r.outcome, VND_ACCEPTED);
	assert_string_equal(r.ref, "0A1 0A2 0A3");
	assert_string_equal(r.detail, "3 part(s)");
	/* 20 UUID-sized ids: those that fit are kept and the detail says so */
	char big[4096] = "{\"messages\":[";
	for (int i = 0; i < 20; i++)
		snprintf(big + strlen(big), sizeof big - strlen(big),
		         "%s{\"message-id\":\"%08d-0000-0000-0000-000000000000\",\"status\":\"0\"}",
		         i ? "," : "", i);
	strcat(big, "]}");
	vnd_classify(a, ms, 1, 200, 0, big, strlen(big), -1, &r);
	assert_int_equal(r.outcome, VND_ACCEPTED);
	assert_int_equal(strlen(r.ref), 6 * 37 - 1);
	assert_true(vnd_ref_matches("vonage", r.ref, "00000005-0000-0000-0000-000000000000"));
	assert_false(vnd_ref_matches("vonage", r.ref, "00000006-0000-0000-0000-000000000000"));
	assert_string_equal(r.detail, "20 part(s), ids of 6 kept");
	/* a part without an id: sent all the same (no resend), its id not kept */
	const char *noid = "{\"messages\":[{\"status\":\"0\"},{\"message-id\":\"0A2\",\"status\":\"0\"}]}";
	vnd_classify(a, ms, 1, 200, 0, noid, strlen(noid), -1, &r);
	assert_int_equal(r.outcome, VND_ACCEPTED);
	assert_string_equal(r.ref, "0A2");
	assert_string_equal(r.detail, "2 part(s), ids of 1 kept");
	/* no id at all: not a usable answer (as before) */
	const char *none = "{\"messages\":[{\"status\":\"0\"}]}";
	vnd_classify(a, ms, 1, 200, 0, none, strlen(none), -1, &r);
	assert_int_equal(r.outcome, VND_DEFER);
	assert_string_equal(r.ref, "");
	vnd_free(a);
}

static void sg_sign(const char *ts, const char *body, char *out)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char sig[128];
	size_t sl = sizeof sig;
	EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, SGKEY);
	EVP_DigestSignUpdate(md, ts, strlen(ts));
	EVP_DigestSignUpdate(md, body, strlen(body));
	EVP_DigestSignFinal(md, sig, &sl);
	EVP_MD_CTX_free(md);
	b64(sig, sl, out);
}

static void test_sendgrid_webhooks(void **st)
{
	(void)st;
	vnd_t *a = adapter("sg");
	const char *body =
	    "[{\"email\":\"a@example.org\",\"timestamp\":1,\"event\":\"delivered\",\"sg_event_id\":\"e1\","
	    "\"sg_message_id\":\"x.filter.0\",\"tocsin_id\":\"0123456789abcdef0123456789abcdef\"},"
	    "{\"email\":\"b@example.org\",\"timestamp\":1,\"event\":\"bounce\",\"type\":\"bounce\",\"reason\":\"550 no such user\",\"sg_event_id\":\"e2\",\"tocsin_id\":\"fedcba9876543210fedcba9876543210\"},"
	    "{\"email\":\"c@example.org\",\"timestamp\":1,\"event\":\"spamreport\",\"sg_event_id\":\"e3\"},"
	    "{\"email\":\"c@example.org\",\"timestamp\":1,\"event\":\"group_resubscribe\",\"sg_event_id\":\"e4\"}]";
	char sig[200];
	sg_sign("1700000000", body, sig);
	hdrs_t h = {{"X-Twilio-Email-Event-Webhook-Signature", "X-Twilio-Email-Event-Webhook-Timestamp"},
	            {sig, "1700000000"}};
	vnd_wh_req_t rq = {"POST", "https://h/webhooks/sg/events",
	                   NULL,   "application/json",
	                   hget,   &h,
	                   body,   strlen(body)};
	got_t g;
	memset(&g, 0, sizeof g);
	char err[256];
	assert_int_equal(vnd_webhook(a, &rq, collect, &g, err, sizeof err), 3);
	assert_int_equal(g.ev[0].state, MSG_ST_DELIVERED);
	assert_string_equal(g.ev[0].id, ID1);
	assert_string_equal(g.ev[0].event_id, "e1");
	assert_int_equal(g.ev[1].state, MSG_ST_BOUNCED);
	assert_int_equal(g.ev[2].kind, VND_WH_UNSUB);
	assert_string_equal(g.ev[2].address, "c@example.org");
	/* tampered */
	char *t = strdup(body);
	t[30] = 'X';
	rq.body = t;
	memset(&g, 0, sizeof g);
	assert_int_equal(vnd_webhook(a, &rq, collect, &g, err, sizeof err), TOCSIN_ERR_AUTH);
	assert_int_equal(g.n, 0);
	free(t);
	hdrs_t none = {{0}, {0}};
	rq.body = body;
	rq.header_ctx = &none;
	assert_int_equal(vnd_webhook(a, &rq, collect, &g, err, sizeof err), TOCSIN_ERR_AUTH);
	vnd_free(a);
}

static void test_mailgun_webhooks(void **st)
{
	(void)st;
	vnd_t *a = adapter("mg");
	char sig[80];
	vnd_mailgun_sign("mg-webhook-signing-key", "1700000000", "tok123", sig, sizeof sig);
	char body[1024];
	snprintf(body, sizeof body,
	         "{\"signature\":{\"timestamp\":\"1700000000\",\"token\":\"tok123\",\"signature\":\"%s\"},"
	         "\"event-data\":{\"event\":\"failed\",\"severity\":\"permanent\",\"recipient\":\"a@example.org\","
	         "\"id\":\"ev1\",\"user-variables\":{\"tocsin_id\":\"0123456789abcdef0123456789abcdef\"},"
	         "\"delivery-status\":{\"code\":550,\"message\":\"No such user\"}}}",
	         sig);
	vnd_wh_req_t rq = {"POST", "https://h/webhooks/mg/events",
	                   NULL,   "application/json",
	                   NULL,   NULL,
	                   body,   strlen(body)};
	got_t g;
	memset(&g, 0, sizeof g);
	char err[256];
	assert_int_equal(vnd_webhook(a, &rq, collect, &g, err, sizeof err), 1);
	assert_int_equal(g.ev[0].state, MSG_ST_BOUNCED);
	assert_string_equal(g.ev[0].id, ID1);
	assert_string_equal(g.ev[0].code, "550");
	/* signed with the API key instead of the webhook key: refused */
	vnd_mailgun_sign("key-mg-secret", "1700000000", "tok123", sig, sizeof sig);
	snprintf(body, sizeof body,
	         "{\"signature\":{\"timestamp\":\"1700000000\",\"token\":\"tok123\",\"signature\":\"%s\"},"
	         "\"event-data\":{\"event\":\"unsubscribed\",\"recipient\":\"a@example.org\"}}",
	         sig);
	rq.bodylen = strlen(body);
	assert_int_equal(vnd_webhook(a, &rq, collect, &g, err, sizeof err), TOCSIN_ERR_AUTH);
	rq.body = "{\"event-data\":{}}";
	rq.bodylen = strlen(rq.body);
	assert_int_equal(vnd_webhook(a, &rq, collect, &g, err, sizeof err), TOCSIN_ERR_AUTH);
	rq.body = "not json";
	rq.bodylen = 8;
	assert_int_equal(vnd_webhook(a, &rq, collect, &g, err, sizeof err), TOCSIN_ERR_AUTH);
	vnd_free(a);
}

/* the allocation-free scanner behind the Twilio 201 path (vendors/vnd_int.h) */
int vnd_json_top_str(const char *p, size_t n, const char *key, char *out, size_t outlen);

static void test_json_scan(void **st)
{
	(void)st;
	char out[64];
#define SCAN(js, key) vnd_json_top_str(js, strlen(js), key, out, sizeof out)
	assert_int_equal(SCAN("{\"sid\":\"SM1\"}", "sid"), 1);
	assert_string_equal(out, "SM1");
	assert_int_equal(SCAN(" { \"account_sid\" : \"AC\" , \"sid\" : \"SM\\\"2\" } ", "sid"), 1);
	assert_string_equal(out, "SM\"2");
	assert_int_equal(SCAN("{\"a\":{\"sid\":\"x\"},\"b\":[1,{\"sid\":2}]}", "sid"), 0);
	assert_int_equal(SCAN("{\"sid\":12}", "sid"), 0);
	assert_int_equal(SCAN("{}", "sid"), 0);
	assert_int_equal(SCAN("{\"sid\":\"SM1\"", "sid"), -1);   /* truncated */
	assert_int_equal(SCAN("{\"sid\":\"SM1\"}x", "sid"), -1); /* trailing bytes */
	assert_int_equal(SCAN("{\"sid\":\"SM1\",}", "sid"), -1); /* trailing comma */
	assert_int_equal(SCAN("{\"sid\":tru}", "sid"), -1);
	assert_int_equal(SCAN("[\"sid\"]", "sid"), -1);
	assert_int_equal(SCAN("", "sid"), -1);
	assert_int_equal(SCAN("<html>", "sid"), -1);
	char deep[300];
	memset(deep, '[', 200);
	deep[200] = 0;
	char js[400];
	snprintf(js, sizeof js, "{\"a\":%s}", deep);
	assert_int_equal(SCAN(js, "sid"), -1);
#undef SCAN
}

static void test_keywords(void **st)
{
	(void)st;
	assert_int_equal(vnd_keyword("STOP"), VND_KW_STOP);
	assert_int_equal(vnd_keyword("  stop\n"), VND_KW_STOP);
	assert_int_equal(vnd_keyword("Opt Out"), VND_KW_STOP);
	assert_int_equal(vnd_keyword("unsubscribe"), VND_KW_STOP);
	assert_int_equal(vnd_keyword("Quit"), VND_KW_STOP);
	assert_int_equal(vnd_keyword("STOPALL"), VND_KW_STOP);
	assert_int_equal(vnd_keyword("start"), VND_KW_START);
	assert_int_equal(vnd_keyword("UNSTOP"), VND_KW_START);
	assert_int_equal(vnd_keyword("yes"), VND_KW_START);
	assert_int_equal(vnd_keyword("info"), VND_KW_HELP);
	assert_int_equal(vnd_keyword("please stop texting me"), VND_KW_OTHER);
	assert_int_equal(vnd_keyword(""), VND_KW_OTHER);
	assert_int_equal(vnd_keyword(NULL), VND_KW_OTHER);
	assert_int_equal(vnd_keyword("STOP STOP"), VND_KW_OTHER);
}

static void test_new_errors(void **st)
{
	(void)st;
	char err[256];
	unsetenv("T_VG");
	assert_null(vnd_new(C, cfg_vendor(C, "vg"), err, sizeof err));
	assert_non_null(strstr(err, "T_VG"));
	assert_null(strstr(err, "vg-secret"));
	setenv("T_VG", "vg-secret", 1);
	vnd_free(NULL);
	vnd_req_free(NULL);
}

/* The producer's cap on a recipient's substitutions and the SendGrid adapter's
 * agree at the boundary: the largest value email_render_subs() still batches
 * builds, one byte more goes inline (never a batch the adapter refuses). */
static void test_sendgrid_subs_limit(void **st)
{
	(void)st;
	static const char *const f[] = {"first_name"};
	char err[256];
	const char *t = "Hi {{first_name}} {{unsubscribe_url}}";
	email_tmpl_t *e = email_compile("Hi {{first_name}}", 17, t, strlen(t), NULL, 0, f, 1, 0,
	                                err, sizeof err);
	assert_non_null(e);
	email_unsub_t *u = email_unsub_new("0123456789abcdef-key", 20, "https://t.example.org", err,
	                                   sizeof err);
	assert_non_null(u);
	static char val[EMAIL_SUBS_MAX], buf[1 << 16];
	memset(val, 'a', sizeof val);
	val[0] = '"';                   /* escaped in the JSON: counted as it is sent */
	size_t lo = 1, hi = sizeof val; /* batched at lo, inline at hi */
	while (hi - lo > 1) {
		size_t mid = (lo + hi) / 2;
		const char *vals[1] = {val};
		size_t lens[1] = {mid};
		email_parts_t p;
		tmpl_why_t why;
		assert_int_equal(email_render_subs(e, u, "c1", "a@example.org", 13, vals, lens, buf,
		                                   sizeof buf, &p, &why),
		                 0);
		*(p.subs ? &lo : &hi) = mid;
		if (!p.subs)
			assert_int_equal(p.inline_why, EMAIL_INLINE_SIZE);
	}
	vnd_t *a = adapter("sg");
	vnd_req_t r;
	vnd_req_init(&r);
	for (size_t len = lo; len <= hi; len++) {
		const char *vals[1] = {val};
		size_t lens[1] = {len};
		email_parts_t p;
		tmpl_why_t why;
		assert_int_equal(email_render_subs(e, u, "c1", "a@example.org", 13, vals, lens, buf,
		                                   sizeof buf, &p, &why),
		                 0);
		msg_out_t m = email(ID1, "a@example.org");
		m.subject = p.subject;
		m.text = p.text;
		m.html = p.html;
		m.headers = p.headers;
		m.subs = p.subs;
		const msg_out_t *ms[] = {&m};
		int rc = vnd_build(a, ms, 1, &r, err, sizeof err);
		if (len == lo)
			assert_int_equal(rc, 0);
		else
			assert_null(p.subs); /* inline: nothing to refuse */
		vnd_req_free(&r);
		vnd_req_init(&r);
	}
	assert_true(lo > 9700 && lo < EMAIL_SUBS_MAX); /* one name for subject and text: same rendering */
	vnd_free(a);
	email_unsub_free(u);
	email_free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_twilio_build),      cmocka_unit_test(test_vonage_build),
	    cmocka_unit_test(test_sendgrid_build),    cmocka_unit_test(test_mailgun_build),
	    cmocka_unit_test(test_email_subs),        cmocka_unit_test(test_sendgrid_subs_limit),
	    cmocka_unit_test(test_canned_answers),    cmocka_unit_test(test_batch_partial_reject),
	    cmocka_unit_test(test_huge_answer),       cmocka_unit_test(test_twilio_vector),
	    cmocka_unit_test(test_sendgrid_vector),   cmocka_unit_test(test_mailgun_sign),
	    cmocka_unit_test(test_twilio_webhooks),   cmocka_unit_test(test_vonage_webhooks),
	    cmocka_unit_test(test_sendgrid_webhooks), cmocka_unit_test(test_mailgun_webhooks),
	    cmocka_unit_test(test_keywords),          cmocka_unit_test(test_new_errors),
	    cmocka_unit_test(test_json_scan),         cmocka_unit_test(test_vonage_sign),
	    cmocka_unit_test(test_vonage_signed),     cmocka_unit_test(test_ref_matches),
	    cmocka_unit_test(test_vonage_parts),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
