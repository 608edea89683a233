/* vnd_int.h -- what the adapters share inside vendors/: the adapter table and small helpers. */
#ifndef TOCSIN_VND_INT_H
#define TOCSIN_VND_INT_H
#include "vendors/vnd.h"

#include <stdint.h>
#include <string.h>

/* Largest webhook body or vendor response we read. */
#define VND_MAX_BODY (4u << 20)
#define VND_FORM_MAX 512

typedef struct vnd_ops {
	const char *kind;
	int max_batch;
	int (*build)(vnd_t *a, const msg_out_t *const *msgs, size_t n, vnd_req_t *req, char *err,
	             size_t errlen);
	void (*classify)(vnd_t *a, const msg_out_t *const *msgs, size_t n, long http_status,
	                 int curl_code, const char *body, size_t bodylen, long retry_after_s,
	                 vnd_result_t *results);
	int (*webhook)(vnd_t *a, const vnd_wh_req_t *rq, vnd_wh_fn fn, void *ctx, char *err,
	               size_t errlen);
} vnd_ops_t;

/* The vendors with a message lookup API (vnd_lookup_build / vnd_lookup_parse): Twilio. */
int vnd_twilio_lookup_build(vnd_t *a, const char *ref, vnd_req_t *req, char *err, size_t errlen);
int vnd_twilio_lookup_parse(vnd_t *a, long http_status, int curl_code, const char *body,
                            size_t bodylen, vnd_lookup_t *out);

struct vnd {
	const cfg_t *c;
	const cfg_vendor_t *v;
	const vnd_ops_t *ops;
	const char *secret;     /* from the environment; never logged */
	const char *wh_key;     /* Mailgun webhook signing key (env), or NULL */
	const char *wh_pubkey;  /* SendGrid webhook public key (config), or NULL */
	const char *sig_secret; /* Vonage signature secret (env "signature_secret_env"), or NULL */
	const char *sig_method; /* Vonage "signature_method": md5hash (default), md5, sha1, ... */
	int wh_unsigned;        /* "webhook_auth":"none": webhooks are taken without a signature */
	buf_t tmp;              /* scratch reused across calls */
};

extern const vnd_ops_t vnd_twilio_ops, vnd_vonage_ops, vnd_sendgrid_ops, vnd_mailgun_ops;

/* Set r to outcome with code and a printf detail. */
void vnd_res(vnd_result_t *r, vnd_outcome_t o, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Copy s (may be NULL) into dst[cap], truncating. */
void vnd_cpy(char *dst, size_t cap, const char *s);
/* Length of url without trailing slashes. */
static inline size_t vnd_base_len(const char *url)
{
	size_t n = strlen(url);
	while (n > 0 && url[n - 1] == '/')
		n--;
	return n;
}
/* 1 when body looks like HTML (a proxy's error page). */
int vnd_is_html(const char *body, size_t n);
/* Classify the transport-level answers every vendor shares: curl failure,
 * 5xx, HTML, 429. Returns 1 when r was set. */
int vnd_common_defer(long http_status, int curl_code, const char *body, size_t n,
                     long retry_after_s, vnd_result_t *r);
void vnd_fill_all(vnd_result_t *res, size_t n, const vnd_result_t *one);
/* The checks every email request starts with, on the batch's first message m0: v's
 * from-address for m0's sender pool (into *s) and a subject with a text or html part.
 * 0, or TOCSIN_ERR_INVAL with the reason in err. */
int vnd_email_first(const cfg_vendor_t *v, const msg_out_t *m0, const cfg_sender_t **s, char *err,
                    size_t errlen);

/* A decoded application/x-www-form-urlencoded set (copies in one allocation). */
typedef struct vnd_form {
	size_t n;
	char *name[VND_FORM_MAX];
	char *value[VND_FORM_MAX];
	char *store;
} vnd_form_t;
/* Parse s[0..len); 0, TOCSIN_ERR_TOOBIG (too many fields / too long), TOCSIN_ERR_NOMEM. */
int vnd_form_parse(const char *s, size_t len, vnd_form_t *f);
void vnd_form_free(vnd_form_t *f);
/* First value of name, or NULL. */
const char *vnd_form_get(const vnd_form_t *f, const char *name);

/* Scan the JSON object p[0..n) without allocating: copy the top-level string
 * field key (simple escapes decoded, \u as '?') into out. 1 found, 0 absent or
 * not a string, -1 when the text is not one well-formed JSON object. */
int vnd_json_top_str(const char *p, size_t n, const char *key, char *out, size_t outlen);

/* 0 when the signed timestamp ts (decimal Unix seconds) is within the config's
 * tracker.webhook_max_age_s of vnd_wh_now_s(); TOCSIN_ERR_AUTH with err naming
 * vendor a when it is missing, not a number or too far off. */
int vnd_wh_fresh(const vnd_t *a, const char *ts, char *err, size_t errlen);

/* base64 of p[0..n) into out (NUL-terminated); length or -1 when out is too small. */
int vnd_b64(const unsigned char *p, size_t n, char *out, size_t outlen);
/* decode base64 s into out; decoded length or -1. */
int vnd_unb64(const char *s, unsigned char *out, size_t outlen);

#endif
