/* sim_sign.c -- the emulator's own webhook signatures, written apart from the verifiers in vendors/ they check. */
#include "vendors/sim/sim_int.h"

#include "core/err.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

#define SIM_SIG_MAX_INPUT (1u << 20)

static const char *const vsig_names[] = {"md5hash", "md5", "sha1", "sha256", "sha512"};

int sim_vsig_method(const char *name)
{
	if (!name)
		return SIM_VSIG_MD5HASH;
	for (int i = 0; i < (int)(sizeof vsig_names / sizeof *vsig_names); i++)
		if (!strcmp(name, vsig_names[i]))
			return i;
	return -1;
}

static void hex(const unsigned char *p, size_t n, int upper, char *out)
{
	const char *d = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[p[i] >> 4];
		out[2 * i + 1] = d[p[i] & 15];
	}
	out[2 * n] = 0;
}

enum { OUT_HEX, OUT_HEX_UPPER, OUT_B64 };

/* The digest (key NULL) or the HMAC keyed by key of b's bytes, into out as enc;
 * frees b. rc: the error building b, if any, returned as it is. */
static int finish(int rc, buf_t *b, const EVP_MD *alg, const char *key, int enc, char *out, size_t outlen)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	const unsigned char *p = (const unsigned char *)(b->p ? b->p : "");
	if (!rc && (key ? !HMAC(alg, key, (int)strlen(key), p, b->len, md, &mdlen)
	                : !EVP_Digest(p, b->len, md, &mdlen, alg, NULL)))
		rc = TOCSIN_ERR_INVAL;
	buf_free(b);
	if (rc)
		return rc;
	size_t need = enc == OUT_B64 ? 4 * (((size_t)mdlen + 2) / 3) + 1 : 2 * (size_t)mdlen + 1;
	if (need > outlen)
		return TOCSIN_ERR_TOOBIG;
	if (enc == OUT_B64)
		EVP_EncodeBlock((unsigned char *)out, md, (int)mdlen);
	else
		hex(md, mdlen, enc == OUT_HEX_UPPER, out);
	return 0;
}

/* ord[0..n) = the indexes of names in byte order of the names, equal names in
 * their order (insertion sort: n <= 64) */
static void by_name(const char *const *names, size_t n, size_t *ord)
{
	for (size_t i = 0; i < n; i++) {
		size_t j = i;
		while (j > 0 && strcmp(names[ord[j - 1]], names[i]) > 0) {
			ord[j] = ord[j - 1];
			j--;
		}
		ord[j] = i;
	}
}

int sim_vonage_sig(int method, const char *secret, const char *const *names,
                   const char *const *vals, size_t n, char *out, size_t outlen)
{
	if (!secret || method < 0 || method > SIM_VSIG_SHA512 || n > 64)
		return TOCSIN_ERR_INVAL;
	size_t ord[64];
	by_name(names, n, ord);
	buf_t b;
	buf_init(&b, SIM_SIG_MAX_INPUT);
	int rc = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		const char *v = vals[ord[i]];
		rc = buf_putc(&b, '&');
		rc = rc ? rc : buf_puts(&b, names[ord[i]]);
		rc = rc ? rc : buf_putc(&b, '=');
		for (; !rc && *v; v++) /* '&' and '=' in a value become '_' */
			rc = buf_putc(&b, *v == '&' || *v == '=' ? '_' : *v);
	}
	if (method == SIM_VSIG_MD5HASH) {
		rc = rc ? rc : buf_puts(&b, secret);
		return finish(rc, &b, EVP_md5(), NULL, OUT_HEX, out, outlen);
	}
	const EVP_MD *alg = method == SIM_VSIG_MD5      ? EVP_md5()
	                    : method == SIM_VSIG_SHA1   ? EVP_sha1()
	                    : method == SIM_VSIG_SHA256 ? EVP_sha256()
	                                                : EVP_sha512();
	/* the HMAC variants in upper case, as Vonage's libraries write them */
	return finish(rc, &b, alg, secret, OUT_HEX_UPPER, out, outlen);
}

int sim_twilio_sig(const char *token, const char *url, const char *const *names,
                   const char *const *vals, size_t n, char *out, size_t outlen)
{
	if (!token || !url || n > 64)
		return TOCSIN_ERR_INVAL;
	size_t ord[64];
	by_name(names, n, ord);
	buf_t b;
	buf_init(&b, SIM_SIG_MAX_INPUT);
	int rc = buf_puts(&b, url);
	for (size_t i = 0; i < n && !rc; i++) {
		rc = buf_puts(&b, names[ord[i]]);
		rc = rc ? rc : buf_puts(&b, vals[ord[i]]);
	}
	return finish(rc, &b, EVP_sha1(), token, OUT_B64, out, outlen);
}

int sim_mailgun_sig(const char *key, const char *timestamp, const char *token, char *out, size_t outlen)
{
	if (!key || !timestamp || !token)
		return TOCSIN_ERR_INVAL;
	buf_t b;
	buf_init(&b, 1024);
	int rc = buf_puts(&b, timestamp);
	rc = rc ? rc : buf_puts(&b, token);
	return finish(rc, &b, EVP_sha256(), key, OUT_HEX, out, outlen);
}
