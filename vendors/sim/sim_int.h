/* sim_int.h -- the emulator's shared state: vendors, fault settings, id sets, the scheduler. */
#ifndef TOCSIN_SIM_INT_H
#define TOCSIN_SIM_INT_H
#include "vendors/sim/sim.h"

#include "core/buf.h"

#include <microhttpd.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

enum { SIM_TWILIO = 0, SIM_VONAGE, SIM_SENDGRID, SIM_MAILGUN };
enum { SIM_OUT_NONE = 0, SIM_OUT_REFUSE, SIM_OUT_RESET, SIM_OUT_503, SIM_OUT_HANG, SIM_OUT_AUTH };
/* Vonage signature methods (config `signature_method`) */
enum { SIM_VSIG_MD5HASH = 0, SIM_VSIG_MD5, SIM_VSIG_SHA1, SIM_VSIG_SHA256, SIM_VSIG_SHA512 };

#define SIM_MAX_DUP_IDS 1000

typedef struct sim_fault {
	double lat_median_ms, lat_tail_ms; /* 0 = answer at once */
	double error_rate;                 /* 5xx */
	double throttle_rate;              /* 429 + Retry-After / Vonage status 1 */
	int retry_after_s;
	int outage;            /* SIM_OUT_* */
	double permanent_rate; /* invalid number */
	double optout_rate;    /* 21610 / err-code 9 */
	int receipts;          /* send delivery receipts */
	double receipt_delay_ms;
	double delivered_rate;
	char receipt_url[512]; /* "" = from the request / public_url */
	int email_digests;     /* record a digest of each email recipient's message */
	int lose; /* the next N accepted messages go uncounted (tocsin drill's injected bug) */
	int receipt_retries; /* 1: a failed webhook is retried as the vendor does */
	double retry_scale;  /* the vendor's retry delays and window times this */
} sim_fault_t;

/* email vendors: the digest (templates/email.h email_digest) of what each
 * accepted recipient reads, by address (GET /_sim/email/digests) */
#define SIM_DIGESTS_MAX 250000
typedef struct sim_dg {
	char *to; /* owned; NULL = free slot */
	char hex[65];
	uint32_t n; /* times accepted */
} sim_dg_t;
typedef struct sim_digests {
	pthread_mutex_t mu;
	sim_dg_t *t;
	size_t cap, n;
	uint64_t repeats, dropped; /* accepted again; not kept (table full) */
} sim_digests_t;

typedef struct sim_slot {
	uint64_t a, b;
	uint32_t cnt;
} sim_slot_t;

typedef struct sim_ids {
	pthread_mutex_t mu;
	sim_slot_t *t;
	size_t cap, n;
	int overflow;
	uint64_t dup_count;
	char (*dups)[48];
	size_t ndups;
} sim_ids_t;

#define SIM_SECS 256
#define SIM_TICK_MS 50    /* GET /_sim/ticks: requests and acceptances per 50 ms ... */
#define SIM_TICKS 8192    /* ... for the last 409.6 s (tocsin drill's failover timing) */
#define SIM_TW_KEEP 20000 /* Twilio messages kept per vendor for list and fetch */

/* one message a Twilio vendor accepted, for GET .../Messages(.json|/{sid}.json) */
typedef struct sim_twmsg {
	char sid[40], to[24], from[24], mss[40];
	char *body; /* owned, bodycap bytes (reused when the ring wraps) */
	size_t bodycap;
	int64_t created_ms; /* wall clock */
	double delay_ms;    /* sent at half of it, then delivered (ok) or undelivered 30003 */
	int nseg, ok;
} sim_twmsg_t;

typedef struct sim_vendor {
	const cfg_vendor_t *v;
	int kind;
	const char *secret; /* environment-owned; never logged */
	char basic[600];    /* expected Authorization value for HTTP Basic vendors */
	atomic_uint_fast64_t requests, accepted;
	/* email content checks on accepted recipients (sim_util.c sim_email_check) */
	atomic_uint_fast64_t subs_applied, unsub_checked, unsub_ok, unreplaced;
	sim_ids_t ids;
	sim_digests_t dg;
	/* accepted messages per wall-clock second, for rate checks (last SIM_SECS seconds) */
	pthread_mutex_t secmu;
	int64_t sec_key[SIM_SECS];
	uint64_t sec_count[SIM_SECS];
	/* requests arrived and messages accepted per SIM_TICK_MS (under secmu) */
	int64_t tick_key[SIM_TICKS];
	uint32_t tick_req[SIM_TICKS], tick_acc[SIM_TICKS];
	pthread_mutex_t fmu;
	sim_fault_t f;
	EVP_PKEY *sg_key;   /* SendGrid event-webhook signing key (ephemeral or from env) */
	char sg_pub[256];   /* its public half, base64 DER SPKI */
	const char *wh_key; /* Mailgun webhook signing key */
	pthread_mutex_t twmu; /* Twilio: the last SIM_TW_KEEP messages, a ring (tw == NULL otherwise) */
	sim_twmsg_t *tw;
	size_t tw_n, tw_next;
	const char *vg_sig; /* Vonage signature secret (env-owned); NULL: webhooks go unsigned */
	int vg_sig_method;  /* SIM_VSIG_* */
} sim_vendor_t;

/* Webhooks in flight at once: a vendor posts many at a time, so one receiver that answers
 * slowly (a tracker that waits for its broker's acknowledgement) does not hold the rest. */
#define SIM_WH_SENDERS 32

/* A scheduled item: resume a suspended connection, or send a webhook. */
typedef struct sim_item sim_item_t;
/* Signs webhook it for a delivery at now_s (the emulator's clock, sim_now_s): rebuilds
 * it->body (and its headers) from it->raw, as a vendor signs every delivery of a webhook
 * anew; 0, or -1 to send it as it was. */
typedef int (*sim_sign_fn)(sim_item_t *it, int64_t now_s);
struct sim_item {
	int64_t due;
	int type; /* 0 resume, 1 webhook */
	struct MHD_Connection *con;
	sim_vendor_t *sv;
	char *url, *body, *ctype, *h1n, *h1v, *h2n, *h2v;
	int tries;        /* webhook: deliveries tried so far */
	int once;         /* webhook: never retried (Mailgun's delivered events) */
	int64_t first_ms; /* webhook: when it was first due (mono) */
	sim_sign_fn sign; /* webhook: signed anew before every delivery, or NULL */
	char *raw;        /* what sign signs (its own format) */
	size_t rawlen;
};

typedef struct sim_req sim_req_t;
typedef struct sim_ans sim_ans_t;
/* answers one API request (sim_ctl.c's router); called on the HTTP threads */
typedef void (*sim_route_fn)(sim_t *s, sim_req_t *rq, sim_ans_t *ans);
/* reads a vendor's own settings at start; 0 or -1 with err */
typedef int (*sim_setup_fn)(sim_vendor_t *sv, char *err, size_t errlen);

struct sim {
	const cfg_t *c;
	sim_route_fn route;
	struct MHD_Daemon *d;
	int port;
	sim_vendor_t *vs;
	size_t nv;
	atomic_uint_fast64_t seq;
	/* scheduler */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	sim_item_t **heap;
	size_t nheap, capheap;
	int stopping;
	pthread_t timer;
	/* webhook senders */
	pthread_mutex_t wmu;
	pthread_cond_t wcv;
	sim_item_t **wq;
	size_t wq_head, wq_n, wq_cap;
	pthread_t sender[SIM_WH_SENDERS];
	atomic_uint_fast64_t wh_sent, wh_failed, wh_dropped, wh_retried;
	atomic_uint_fast64_t hung;
	atomic_int_fast64_t clock_advance_s; /* POST /_sim/clock: added to the signing clock */
	/* Date cache for answers */
	pthread_mutex_t dmu;
	time_t date_sec;
	char date[40];
};

/* One parsed API request and the answer being built. */
struct sim_req {
	struct MHD_Connection *con;
	const char *method, *url;
	const char *body;
	size_t bodylen;
};

struct sim_ans {
	unsigned status;
	buf_t body;
	const char *ctype;
	char hname[48], hval[160]; /* one extra header, or hname[0] = 0 */
	int retry_after_s;         /* -1 none */
	int drop;                  /* close the connection without an answer */
	int hang;                  /* never answer */
	double delay_ms;
};

/* ---- the engine (sim_srv.c): knows no vendor API ---- */

/* The emulator for c's vendors: setup(sv) reads each vendor's own settings, then the
 * server listens on 127.0.0.1:port with threads HTTP threads, every request answered
 * by route. NULL with err. Main thread. (sim_new in sim_ctl.c is the public face.) */
sim_t *sim_srv_new(const cfg_t *c, int port, int threads, sim_setup_fn setup, sim_route_fn route,
                   char *err, size_t errlen);
/* forget every id (the caller holds ids->mu) */
void sim_ids_clear(sim_ids_t *ids);
/* uniform [0,1) from the shared sequence; any thread */
double sim_rand(sim_t *s);
/* a copy of sv's fault settings */
void sim_fault_get(sim_vendor_t *sv, sim_fault_t *f);
/* count n accepted messages for sv now (accepted total, per second, per tick); thread-safe */
void sim_note_accepted(sim_vendor_t *sv, uint64_t n);
/* count one request that reached sv (its total and its 50 ms tick) */
void sim_note_request(sim_vendor_t *sv);
/* record accepted message id for sv; thread-safe */
void sim_ids_add(sim_vendor_t *sv, const char *id);
/* the vendor of kind matching pred(sv, ctx), or NULL */
sim_vendor_t *sim_find(sim_t *s, int kind, int (*pred)(sim_vendor_t *, const void *), const void *ctx);
/* Apply the common faults (outage, latency, 5xx, throttle) for sv. Returns 1
 * when ans is final (no normal processing). */
int sim_faults(sim_t *s, sim_vendor_t *sv, const sim_fault_t *f, sim_ans_t *ans);
/* An outage of sv (its front end is down) answers before credentials are
 * checked: 1 when ans is final (the request is counted). */
int sim_outage(sim_t *s, sim_vendor_t *sv, sim_ans_t *ans);
/* Queue a signed webhook POST for later (due = now + delay_ms). Takes copies. A delivery
 * that fails is tried again the way sv's vendor retries (vendors/README.md, "Webhook
 * retries"), with the same body and headers, unless receipts.retries is off. */
void sim_webhook_later(sim_t *s, sim_vendor_t *sv, double delay_ms, const char *url,
                       const char *ctype, const char *body, const char *h1n, const char *h1v,
                       const char *h2n, const char *h2v);
/* The same for a webhook whose signature covers a timestamp: sign(it, now) builds its
 * body (and headers) from raw[0..rawlen) before every delivery, so a retry is signed when
 * it is sent, as the vendor does (vendors/README.md, "Webhook retries"). Takes copies. */
void sim_webhook_signed(sim_t *s, sim_vendor_t *sv, double delay_ms, const char *url,
                        const char *ctype, const void *raw, size_t rawlen, sim_sign_fn sign);
/* The emulator's clock for signed timestamps (unix s): the wall clock (with
 * TOCSIN_NOW_OFFSET_MS) plus what POST /_sim/clock advanced it by. Any thread. */
int64_t sim_now_s(sim_t *s);
/* The same for a webhook the vendor never retries (Mailgun's delivered events). */
void sim_webhook_once(sim_t *s, sim_vendor_t *sv, double delay_ms, const char *url,
                      const char *ctype, const char *body, const char *h1n, const char *h1v,
                      const char *h2n, const char *h2v);

/* Request parameters as the emulator reads them (sim_form.c): decoded copies in one store. */
#define SIM_FORM_MAX 2100
typedef struct sim_form {
	size_t n;
	char **name, **val;
	char *store;
} sim_form_t;
/* An application/x-www-form-urlencoded s[0..len) ('+' a space, %XX a byte, "a" an
 * empty value). 0, TOCSIN_ERR_TOOBIG (more than SIM_FORM_MAX fields) or
 * TOCSIN_ERR_NOMEM; sim_form_free in every case. Any thread. */
int sim_form_parse(const char *s, size_t len, sim_form_t *f);
/* A JSON object of scalars s[0..len) as parameters (numbers and booleans as their
 * text, nulls left out). 0, TOCSIN_ERR_INVAL (not an object of scalars) or another
 * error; sim_form_free in every case. Any thread. */
int sim_form_json(const char *s, size_t len, sim_form_t *f);
/* The query parameters of con (MHD has decoded them), like sim_form_parse. HTTP thread. */
int sim_form_args(struct MHD_Connection *con, sim_form_t *f);
/* The first value of name, or NULL. */
const char *sim_form_get(const sim_form_t *f, const char *name);
void sim_form_free(sim_form_t *f);

/* One field of a multipart/form-data body. */
typedef struct mp_field {
	char name[128];
	const char *val; /* points into the body; not NUL-terminated */
	size_t len;
} mp_field_t;
/* Split body[0..len) (which must be followed by a NUL, as buf_t guarantees)
 * per the boundary in ctype into at most max fields. Count, or -1 for a body
 * that is not well-formed multipart. Any thread. */
int sim_mp_parse(const char *ctype, const char *body, size_t len, mp_field_t *fs, int max);

/* SIM_VSIG_* for a `signature_method` name (NULL: the default md5hash), or -1. Any thread. */
int sim_vsig_method(const char *name);
/* Vonage's `sig` (sim_sign.c): the parameters names/vals[0..n) (n <= 64, without sig)
 * sorted by name, each written "&name=value" with '&' and '=' in the value made '_';
 * md5hash: MD5 of that string followed by secret, lower-case hex; md5/sha1/sha256/sha512:
 * HMAC of the string keyed by secret, upper-case hex. Into out; 0, TOCSIN_ERR_INVAL or
 * TOCSIN_ERR_TOOBIG. Any thread. */
int sim_vonage_sig(int method, const char *secret, const char *const *names,
                   const char *const *vals, size_t n, char *out, size_t outlen);
/* Twilio's X-Twilio-Signature (sim_sign.c): base64 HMAC-SHA1 keyed by the auth token
 * of url followed by every name and value (n <= 64) sorted by name. 0 or an error. */
int sim_twilio_sig(const char *token, const char *url, const char *const *names,
                   const char *const *vals, size_t n, char *out, size_t outlen);
/* Mailgun's webhook signature (sim_sign.c): lower-case hex HMAC-SHA256 keyed by key of
 * timestamp followed by token. 0 or an error. */
int sim_mailgun_sig(const char *key, const char *timestamp, const char *token, char *out,
                    size_t outlen);

/* Segments of the SMS text (UTF-8) as the vendors count them (sim_seg.c): GSM-7 when
 * every character is in the GSM 03.38 alphabet (extension characters cost 2 septets;
 * 160 in one part, else parts of 153), else UCS-2 (or always, with force_ucs2) in
 * UTF-16 units (an emoji past U+FFFF is 2; 70 in one part, else parts of 67); an
 * escape or surrogate pair is never split across parts. *ucs2 (may be NULL) says
 * which. Any thread. */
int sim_segments(const char *text, int force_ucs2, int *ucs2);

/* ---- what the vendor APIs share (sim_util.c) ---- */

/* email parts (subject, bodies, header) are built up to this size */
#define SIM_PART_MAX (8u << 20)
/* the request header name, or NULL; HTTP thread */
const char *sim_hdr(sim_req_t *rq, const char *name);
/* a fresh reference (prefix + hex) for sv into out, truncated to outlen */
void sim_ref(sim_t *s, sim_vendor_t *sv, const char *prefix, char *out, size_t outlen);
/* Count an accepted message: by id when the request carries ours, else by
 * "to:<address>#<hash of the content>". Thread-safe. */
void sim_count_id(sim_vendor_t *sv, const char *id, const char *to, const char *content);
/* 1 when from (a number, an address) or service is one of sv's configured senders
 * (any, when it has none); numbers compare by digits */
int sim_sender_ok(sim_vendor_t *sv, const char *from, const char *service);
/* the webhook URL for sv: the configured receipts URL, else {public_url}/webhooks/{name}/{leaf}
 * in out; NULL when neither is set */
const char *sim_hook_url(sim_t *s, sim_vendor_t *sv, const sim_fault_t *f, const char *leaf,
                         char *out, size_t outlen);
/* The first n[0..nl) in h[0..hl), or NULL (memchr on its first byte + memcmp: for the short
 * needles and short parts of email substitution it is several times cheaper than memmem). */
const char *sim_memfind(const char *h, size_t hl, const char *n, size_t nl);
/* The unsubscribe and substitution checks of one accepted email (see GET /_sim/email). */
void sim_email_check(sim_vendor_t *sv, const char *to, const char *lu, const buf_t *body,
                     size_t nbody, int applied);
/* Record the digest of what `to` reads (subject, text, html after substitution;
 * text/html NULL when absent) when f->email_digests is on. Thread-safe. */
void sim_email_digest(sim_vendor_t *sv, const sim_fault_t *f, const char *to, const char *subj,
                      size_t sl, const char *text, size_t tl, const char *html, size_t hl);
void sim_digests_init(sim_digests_t *d);
void sim_digests_clear(sim_digests_t *d); /* caller holds d->mu */
void sim_digests_free(sim_digests_t *d);
/* {"recipients":{"<to>":"<hex>",...},"kept":N,"repeats":N,"dropped":N} (takes d->mu) */
void sim_digests_json(sim_digests_t *d, buf_t *b);

/* ---- the four vendor APIs (sim_twilio.c, sim_vonage.c, sim_sendgrid.c, sim_mailgun.c) ---- */

/* Twilio: rest is the path after /2010-04-01/Accounts/{account} */
void sim_api_twilio(sim_t *s, sim_req_t *rq, const char *account, const char *rest, sim_ans_t *ans);
void sim_api_vonage(sim_t *s, sim_req_t *rq, sim_ans_t *ans);
void sim_api_sendgrid(sim_t *s, sim_req_t *rq, sim_ans_t *ans);
void sim_api_mailgun(sim_t *s, sim_req_t *rq, const char *domain, sim_ans_t *ans);
/* The SendGrid /v3/mail/send body after credentials and faults: checks, answer,
 * counts, events. mode 0: the scanner (sim_json.h), with jansson for what it
 * leaves; 1: jansson only; 2: the scanner only, returning 1 (nothing answered,
 * nothing counted) when it leaves the body to jansson. 0 when answered. Any
 * HTTP thread. */
int sim_sendgrid_body(sim_t *s, sim_vendor_t *sv, const sim_fault_t *f, const char *body,
                      size_t len, int mode, sim_ans_t *ans);
/* Post what POST /_sim/inbound asks for to url at once: an inbound message from -> to
 * with body (Twilio, Vonage, signed as the vendor signs), an unsubscribe of from
 * (SendGrid, Mailgun; to and body unused). */
void sim_twilio_inbound(sim_t *s, sim_vendor_t *sv, const char *url, const char *from,
                        const char *to, const char *body);
void sim_vonage_inbound(sim_t *s, sim_vendor_t *sv, const char *url, const char *from,
                        const char *to, const char *body);
void sim_sendgrid_inbound(sim_t *s, sim_vendor_t *sv, const char *url, const char *from,
                          const char *to, const char *body);
void sim_mailgun_inbound(sim_t *s, sim_vendor_t *sv, const char *url, const char *from,
                         const char *to, const char *body);
/* Each vendor's own settings, read at start (sim_setup_fn): the SendGrid event signing
 * key, the Vonage webhook signature secret and method. 0 or -1 with err. */
int sim_sendgrid_setup(sim_vendor_t *sv, char *err, size_t errlen);
int sim_vonage_setup(sim_vendor_t *sv, char *err, size_t errlen);

#endif
