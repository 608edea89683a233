/* fuzz_vnd_common.h -- shared harness for the vendor fuzz targets: a config with all four vendors. */
#ifndef FUZZ_VND_COMMON_H
#define FUZZ_VND_COMMON_H
#include "core/cfg.h"
#include "core/err.h"
#include "vendors/vnd.h"
#include "vendors/vnd_int.h"

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static cfg_t *FZ_C;
static vnd_t *FZ_A[4];
static EVP_PKEY *FZ_SGKEY;
static const char *const FZ_NAMES[4] = {"tw", "vg", "sg", "mg"};

static void fz_init(void)
{
	setenv("FZ_TW", "tw-token", 1);
	setenv("FZ_VG", "vg-secret", 1);
	setenv("FZ_SG", "SG.key", 1);
	setenv("FZ_MG", "mg-key", 1);
	FZ_SGKEY = EVP_EC_gen("P-256");
	unsigned char der[200], *p = der;
	int n = i2d_PUBKEY(FZ_SGKEY, &p);
	char pub[300];
	vnd_b64(der, (size_t)n, pub, sizeof pub);
	char path[] = "/tmp/fuzz_vnd_XXXXXX";
	int fd = mkstemp(path);
	FILE *f = fdopen(fd, "w");
	fprintf(f,
	        "{\"var_dir\":\"/tmp\",\"tracker\":{\"public_url\":\"https://h.example.org\"},\"vendors\":["
	        "{\"name\":\"tw\",\"kind\":\"twilio\",\"base_url\":\"http://s\",\"account\":\"AC1\",\"secret_env\":\"FZ_TW\",\"senders\":{\"main\":\"+15005550006\"}},"
	        "{\"name\":\"vg\",\"kind\":\"vonage\",\"base_url\":\"http://s\",\"account\":\"k\",\"secret_env\":\"FZ_VG\",\"senders\":{\"main\":\"+15005550007\"}},"
	        "{\"name\":\"sg\",\"kind\":\"sendgrid\",\"base_url\":\"http://s\",\"account\":\"-\",\"secret_env\":\"FZ_SG\",\"webhook_public_key\":\"%s\",\"senders\":{\"main\":\"a@b.org\"}},"
	        "{\"name\":\"mg\",\"kind\":\"mailgun\",\"base_url\":\"http://s\",\"account\":\"mg.b.org\",\"secret_env\":\"FZ_MG\",\"senders\":{\"main\":\"a@mg.b.org\"}}]}",
	        pub);
	fclose(f);
	char err[256];
	FZ_C = cfg_load(path, err, sizeof err);
	unlink(path);
	if (!FZ_C) {
		fprintf(stderr, "fuzz: %s\n", err);
		abort();
	}
	for (int i = 0; i < 4; i++)
		if (!(FZ_A[i] = vnd_new(FZ_C, cfg_vendor(FZ_C, FZ_NAMES[i]), err, sizeof err)))
			abort();
}

/* classify data as vendor k's answer: byte 0-1 = HTTP status, byte 2 = curl code/retry-after */
static inline void fz_classify(int k, const uint8_t *d, size_t n)
{
	if (n < 3)
		return;
	long st = ((long)d[0] << 8 | d[1]) % 600;
	int cc = st == 0 ? d[2] % 100 : 0;
	long ra = d[2] & 0x80 ? (long)(d[2] & 0x7f) : -1;
	static const msg_out_t m = {.id = "0123456789abcdef0123456789abcdef",
	                            .to = "a@b.org",
	                            .sender = "main"};
	const msg_out_t *ms[3] = {&m, &m, &m};
	vnd_result_t r[3];
	vnd_classify(FZ_A[k], ms, k >= 2 ? 3 : 1, st, cc, (const char *)d + 3, n - 3, ra, r);
	for (int i = 0; i < (k >= 2 ? 3 : 1); i++)
		if ((unsigned)r[i].outcome > VND_CONFIG || !memchr(r[i].code, 0, sizeof r[i].code) ||
		    !memchr(r[i].detail, 0, sizeof r[i].detail))
			abort();
}

typedef struct fz_h {
	const char *n[2];
	const char *v[2];
} fz_h_t;

static const char *fz_hget(void *ctx, const char *name)
{
	fz_h_t *h = ctx;
	for (int i = 0; i < 2; i++)
		if (h->n[i] && !strcasecmp(h->n[i], name))
			return h->v[i];
	return NULL;
}

static int fz_ev(void *ctx, const vnd_wh_event_t *ev)
{
	(void)ctx;
	if ((unsigned)ev->state >= MSG_ST__COUNT || ev->body[sizeof ev->body - 1] ||
	    ev->address[sizeof ev->address - 1])
		abort();
	return 0;
}

/* parse data as a webhook for vendor k; byte 0 picks method/content type. The
 * harness signs the body correctly on odd selectors so the parser behind the
 * signature check is reached too. */
static inline void fz_webhook(int k, const uint8_t *d, size_t n)
{
	if (n < 1)
		return;
	int sel = d[0];
	char *body = malloc(n);
	memcpy(body, d + 1, n - 1);
	body[n - 1] = 0;
	size_t blen = n - 1;
	const char *url = "https://h.example.org/webhooks/x/status?mid=0123456789abcdef0123456789abcdef";
	const char *query = "mid=0123456789abcdef0123456789abcdef";
	char sig[256] = "bad", ts[] = "1700000000";
	fz_h_t h = {{0}, {0}};
	if (k == 0) {
		h.n[0] = "X-Twilio-Signature";
		h.v[0] = sig;
		static vnd_form_t f;
		if (sel & 1) {
			if (!vnd_form_parse(body, blen, &f))
				vnd_twilio_sign("tw-token", url, (const char *const *)f.name,
				                (const char *const *)f.value, f.n, sig, sizeof sig);
			vnd_form_free(&f);
		}
	} else if (k == 2) {
		h.n[0] = "X-Twilio-Email-Event-Webhook-Signature";
		h.v[0] = sig;
		h.n[1] = "X-Twilio-Email-Event-Webhook-Timestamp";
		h.v[1] = ts;
		if (sel & 1) {
			unsigned char s[128];
			size_t sl = sizeof s;
			EVP_MD_CTX *md = EVP_MD_CTX_new();
			EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, FZ_SGKEY);
			EVP_DigestSignUpdate(md, ts, strlen(ts));
			EVP_DigestSignUpdate(md, body, blen);
			if (EVP_DigestSignFinal(md, s, &sl) == 1)
				vnd_b64(s, sl, sig, sizeof sig);
			EVP_MD_CTX_free(md);
		}
	}
	vnd_wh_req_t rq = {(sel & 2) ? "GET" : "POST",
	                   url,
	                   (sel & 4) ? (const char *)body : query,
	                   (sel & 8) ? "application/json" : "application/x-www-form-urlencoded",
	                   fz_hget,
	                   &h,
	                   body,
	                   blen};
	char err[256];
	int rc = vnd_webhook(FZ_A[k], &rq, fz_ev, NULL, err, sizeof err);
	if (rc < 0 && !memchr(err, 0, sizeof err))
		abort();
	free(body);
}

#define FZ_TARGET(call)                                                                            \
	int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);                                    \
	int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)                                     \
	{                                                                                          \
		if (!FZ_C)                                                                         \
			fz_init();                                                                 \
		call;                                                                              \
		return 0;                                                                          \
	}
#endif
