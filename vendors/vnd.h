/* vnd.h -- the one vendor interface: build a request, classify the answer, parse webhooks. */
#ifndef TOCSIN_VND_H
#define TOCSIN_VND_H
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/cfg.h"
#include "core/msg.h"

/* The retry taxonomy of VENDORS.md: every adapter maps every answer to one. */
typedef enum vnd_outcome {
	VND_ACCEPTED = 0, /* the vendor took it; ref is its id */
	VND_DEFER,        /* retry later (429, 5xx, timeout, connection failure, throttled) */
	VND_PERMANENT,    /* never retry: invalid number, landline, content rejected */
	VND_OPTOUT,       /* the recipient opted out at the vendor: final + an opt-out event */
	VND_CONFIG,       /* credentials / sender wrong: the vendor is unusable until fixed */
} vnd_outcome_t;

/* A static name ("accepted", "defer", …); never NULL. Any thread. */
const char *vnd_outcome_name(vnd_outcome_t o);

/* The answer for one message of a request. */
typedef struct vnd_result {
	vnd_outcome_t outcome;
	int throttled;      /* 1 when the defer was a rate limit (429 / Vonage status 1) */
	int retry_after_ms; /* from Retry-After, or -1 */
	char ref[256];      /* vendor message reference (Twilio SM…, Mailgun <…>); Vonage: every
	                       part's message-id, space-separated, as many as fit */
	char code[32];      /* vendor error code, e.g. "21211", "http_503", "curl_7" */
	char detail[200];   /* short reason; never contains a secret */
} vnd_result_t;

/* One HTTP request as built by an adapter; the caller sends it with libcurl.
 * Buffers are owned by the request (vnd_req_init / vnd_req_free) and reused
 * across requests: vnd_build resets them. */
typedef struct vnd_req {
	buf_t url;
	buf_t body;
	buf_t content_type; /* "application/x-www-form-urlencoded", "application/json", … */
	buf_t userpwd;      /* "user:password" for HTTP Basic, or empty */
	buf_t bearer;       /* token for "Authorization: Bearer", or empty */
	int get; /* 1: a GET without a body (vnd_lookup_build); vnd_build sets 0 (POST) */
} vnd_req_t;

/* Set up r's buffers (caps: URL 8 KiB, body 32 MiB); vnd_req_free releases them
 * (NULL is a no-op). The caller owns r; one thread at a time. */
void vnd_req_init(vnd_req_t *r);
void vnd_req_free(vnd_req_t *r);

typedef struct vnd vnd_t;

/* An adapter for vendor v (its kind picks the implementation). c gives the
 * public URL for status callbacks. Fails (NULL + err) when the kind is unknown
 * or the secret's environment variable is unset. Caller owns the result
 * (vnd_free). Main thread; the adapter is then used by one thread. */
vnd_t *vnd_new(const cfg_t *c, const cfg_vendor_t *v, char *err, size_t errlen);
void vnd_free(vnd_t *a);

/* The vendor's config (borrowed from the cfg_t given to vnd_new). */
const cfg_vendor_t *vnd_cfg(const vnd_t *a);
/* Most messages one request may carry (1 for SMS vendors). */
int vnd_max_batch(const vnd_t *a);

/* Build the request for msgs[0..n) (1 <= n <= vnd_max_batch; in a batch all
 * share sender and content). Returns 0, TOCSIN_ERR_INVAL with err when a
 * message cannot be expressed for this vendor (e.g. no number for its sender
 * pool), TOCSIN_ERR_TOOBIG when it exceeds the vendor's limits. */
int vnd_build(vnd_t *a, const msg_out_t *const *msgs, size_t n, vnd_req_t *req, char *err,
              size_t errlen);

/* Classify the answer to a request built for msgs[0..n): http_status (0 when
 * the transfer failed, with curl_code set), the response body, and the
 * Retry-After in seconds (-1 if none). Fills results[0..n). Never fails:
 * unexpected answers are classified (an HTML error page from a proxy on a 5xx
 * is a defer; a 200 with a body it cannot read is a defer with a detail). */
void vnd_classify(vnd_t *a, const msg_out_t *const *msgs, size_t n, long http_status, int curl_code,
                  const char *body, size_t bodylen, long retry_after_s, vnd_result_t *results);

/* ---- asking the vendor what became of a message (receipt reconciliation) ----------- */

/* What the vendor's API says of one message it accepted. */
typedef struct vnd_lookup {
	msg_state_t state; /* accepted (still queued/sending), sent, delivered, undelivered, failed */
	char code[32];     /* the vendor's error code, "" if none */
	char detail[200]; /* the vendor's status word; never a secret */
} vnd_lookup_t;

/* 1 when vendor a has an API that says what became of a message (Twilio: Fetch
 * Message); 0 for the others (Vonage, SendGrid, Mailgun: none is used). Any thread. */
int vnd_lookup_has(const vnd_t *a);
/* Build the request asking vendor a about the message it accepted as ref (the
 * reference its answer gave: Twilio "SM..."): Twilio GET
 * {base}/2010-04-01/Accounts/{AccountSid}/Messages/{ref}.json. 0,
 * TOCSIN_ERR_NOTFOUND when the vendor has no such API, TOCSIN_ERR_INVAL with err
 * for a ref that is not one (letters and digits, 1..64). The thread owning a. */
int vnd_lookup_build(vnd_t *a, const char *ref, vnd_req_t *req, char *err, size_t errlen);
/* Read the answer to that request into *out: 0; TOCSIN_ERR_NOTFOUND when the vendor
 * does not know the message (404); TOCSIN_ERR_AGAIN for a transfer failure, 429 or
 * 5xx (ask later); TOCSIN_ERR_INVAL for an answer it cannot read; TOCSIN_ERR_AUTH for
 * 401/403. Never crashes on any input. The thread owning a. */
int vnd_lookup_parse(vnd_t *a, long http_status, int curl_code, const char *body, size_t bodylen,
                     vnd_lookup_t *out);

/* ---- webhooks: receipts, inbound messages, unsubscribes ---------------------------- */

/* Keyword class of an inbound SMS body (VENDORS.md compliance): the body trimmed,
 * case-insensitive, single word (or "OPT OUT"). */
typedef enum vnd_kw {
	VND_KW_OTHER = 0, /* free text: goes to the review list */
	VND_KW_STOP,  /* STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE, OPTOUT, OPT OUT */
	VND_KW_START, /* START, YES, UNSTOP */
	VND_KW_HELP,  /* HELP, INFO */
} vnd_kw_t;
/* The class of body (NULL is "other"). Any thread. */
vnd_kw_t vnd_keyword(const char *body);
/* "stop", "start", "help" or "other" (static). Any thread. */
const char *vnd_kw_name(vnd_kw_t k);

typedef enum vnd_wh_kind {
	VND_WH_STATUS = 0, /* a delivery receipt / event for a message we sent */
	VND_WH_INBOUND,    /* an SMS from a recipient to one of our numbers */
	VND_WH_UNSUB,      /* an address unsubscribed (email unsubscribe / spam report) */
} vnd_wh_kind_t;

/* One event parsed from a webhook. All strings are NUL-terminated copies
 * (truncated to fit; never contain a secret). */
typedef struct vnd_wh_event {
	vnd_wh_kind_t kind;
	/* VND_WH_STATUS */
	char id[MSG_ID_LEN + 1]; /* our message id, "" when the vendor did not echo it */
	char ref[96];            /* vendor message reference, "" if none */
	msg_state_t state; /* mapped state (sent, delivered, undelivered, failed, bounced, ...) */
	int optout;        /* 1: this receipt also means the recipient opted out
	                            (Vonage err-code 9, SendGrid unsubscribe/spamreport,
	                            Mailgun unsubscribed/complained) */
	char code[32];     /* vendor error code / event name, "" if none */
	char detail[200];  /* vendor status word or reason */
	char event_id[96]; /* vendor's event id for de-duplication (sg_event_id, Mailgun
	                            token, Twilio MessageSid+status), "" if none */
	char replay[160];  /* what must be seen once (the caller refuses a second time),
	                            from signed fields: "mailgun:<token>",
	                            "sendgrid:<sg_event_id>", "vonage:<sig>",
	                            "twilio:<MessageSid>[:<status>]"; "" when there is none */
	char replay_alt[160]; /* a second such key from an unsigned header (Twilio's
	                            I-Twilio-Idempotency-Token: "twilio-idem:<token>"), or "" */
	/* VND_WH_STATUS / VND_WH_UNSUB: recipient address; VND_WH_INBOUND: sender */
	char address[320];
	/* VND_WH_INBOUND */
	char to[64];      /* our number that received it */
	char body[1700];  /* the text as received */
	vnd_kw_t keyword; /* its class; also VND_KW_STOP for Twilio OptOutType=STOP */
} vnd_wh_event_t;

/* A header lookup: the value of header name (case-insensitive) or NULL. */
typedef const char *(*vnd_hdr_fn)(void *ctx, const char *name);

/* One incoming webhook HTTP request, as the HTTP server received it. */
typedef struct vnd_wh_req {
	const char *method;       /* "POST" or "GET" */
	const char *url;          /* full URL as configured at the vendor, query included:
	                             cfg->public_url + path + "?" + query (Twilio signs this) */
	const char *query;        /* raw query string without '?', or NULL */
	const char *content_type; /* Content-Type header or NULL */
	vnd_hdr_fn header;        /* may be NULL: then no headers */
	void *header_ctx;
	const char *body; /* raw body bytes (may be NULL when bodylen is 0) */
	size_t bodylen;
} vnd_wh_req_t;

/* Called once per parsed event; return 0 to go on, nonzero to stop. */
typedef int (*vnd_wh_fn)(void *ctx, const vnd_wh_event_t *ev);

/* Verify and parse one webhook request for vendor a. The signature is checked
 * first over the raw request (Twilio X-Twilio-Signature HMAC-SHA1 with the auth
 * token; SendGrid ECDSA P-256 with vendor field "webhook_public_key"; Mailgun
 * HMAC-SHA256 with the key in env var "webhook_key_env", else the API key;
 * Vonage "sig" with the secret in env var "signature_secret_env" and
 * "signature_method", unless the vendor says "webhook_auth":"none"), and so is
 * the signed timestamp's age: more than tracker.webhook_max_age_s from now
 * (the wall clock, or TOCSIN_TEST_NOW_S when set: tests only) is refused. Then every event is passed to fn
 * in order. Returns the number of events (>= 0), TOCSIN_ERR_AUTH when the
 * signature is missing, wrong or stale, or the vendor has no key to check it
 * with (answer 403; nothing was passed to fn), TOCSIN_ERR_INVAL with err for a
 * body it cannot read, TOCSIN_ERR_TOOBIG over 4 MiB. Never crashes on any
 * input. The thread that owns a (vnd_t is not shared). */
int vnd_webhook(vnd_t *a, const vnd_wh_req_t *rq, vnd_wh_fn fn, void *ctx, char *err, size_t errlen);

/* The clock webhook freshness is judged by (Unix s): TOCSIN_TEST_NOW_S when
 * set (tests only), else the wall clock. Any thread. */
int64_t vnd_wh_now_s(void);

/* How vendor a's webhooks are authenticated (static string): "signed",
 * "none" (the config opted out: webhooks taken unsigned) or "unverifiable"
 * (no key configured to check them: every webhook is refused). Any thread. */
const char *vnd_wh_auth(const vnd_t *a);
/* The same, from the config alone (for a vendor whose adapter could not be built). */
const char *vnd_wh_auth_cfg(const cfg_vendor_t *v);

/* 1 when a receipt's vendor reference got is the reference stored for the
 * message (stored, from the vendor's answer to the send) under vendor kind's
 * rules: equal, ignoring Mailgun's angle brackets, or SendGrid's
 * "<X-Message-Id>.<suffix>" of the shared id, or for Vonage any one of the
 * space-separated part ids stored (each part of a long SMS has its own
 * receipt); an empty got or stored matches (nothing to compare). Any thread. */
int vnd_ref_matches(const char *kind, const char *stored, const char *got);

/* ---- signature primitives (exposed for the emulator and tests) ---------------------- */

/* Twilio: base64(HMAC-SHA1(token, url + sorted name+value pairs)) into out (>= 29 bytes).
 * names/values are decoded parameter strings. Returns 0 or TOCSIN_ERR_INVAL. Any thread. */
int vnd_twilio_sign(const char *token, const char *url, const char *const *names,
                    const char *const *values, size_t n, char *out, size_t outlen);
/* Mailgun: lowercase hex HMAC-SHA256(key, timestamp + token) into out (>= 65 bytes). */
int vnd_mailgun_sign(const char *key, const char *timestamp, const char *token, char *out,
                     size_t outlen);
/* SendGrid: verify base64 DER ECDSA signature sig over timestamp + body with the
 * base64 DER SPKI P-256 public key pubkey_b64. 0 when valid, TOCSIN_ERR_AUTH otherwise. */
int vnd_sendgrid_verify(const char *pubkey_b64, const char *timestamp, const char *sig_b64,
                        const char *body, size_t bodylen);
/* Vonage signed webhooks and requests: lowercase hex signature of the
 * parameters names/values (decoded; "sig" is skipped), sorted by name and
 * joined as "&name=value" with '&' and '=' in values replaced by '_'; method
 * "md5hash" (MD5 of the string + secret) or "md5", "sha1", "sha256", "sha512"
 * (HMAC of the string keyed with secret). Into out (>= 129 bytes). 0, or
 * TOCSIN_ERR_INVAL (unknown method, too many params). Any thread. */
int vnd_vonage_sign(const char *secret, const char *method, const char *const *names,
                    const char *const *values, size_t n, char *out, size_t outlen);
/* Constant-time equality of a[0..n) and b[0..m): 1 when equal (length leaks only). */
int vnd_ct_eq(const void *a, size_t n, const void *b, size_t m);

#endif
