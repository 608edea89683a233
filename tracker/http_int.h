/* http_int.h -- what the tracker's HTTP server (http.c) and its webhook path (hooks.c) share: the server, a request, the answers. */
#ifndef TOCSIN_TRK_HTTP_INT_H
#define TOCSIN_TRK_HTTP_INT_H
#include "core/buf.h"
#include "templates/email.h"
#include "tracker/ctl.h"
#include "tracker/reply.h"
#include "tracker/store.h"
#include "tracker/trk.h"
#include "tracker/web.h"
#include "tracker/whack.h"
#include "vendors/vnd.h"

#include <librdkafka/rdkafka.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdint.h>

#define MAX_BODY (4u << 20) /* webhook and API request bodies */
#define MAX_URI 8192
#define MAX_READERS 8
#define MAX_WH_VENDORS 32
#define CACHE_N 16
#define CACHE_KEY 512
#define STOP_SLOTS 4096
#define WH_ACK_TIMEOUT_MS 5000 /* a webhook waits this long for the broker, then 503 */

typedef struct acache {
	char key[CACHE_KEY]; /* raw URI with its query */
	int64_t at_ms;       /* mono time it was computed; 0 = empty */
	char *body;
	size_t len;
	int refreshing; /* one request is computing a fresh answer: others get this one */
} acache_t;

typedef struct wh_vendor {
	const cfg_vendor_t *v;
	vnd_t *a; /* NULL when the adapter could not be built (secret unset, unknown kind) */
	const char *auth; /* "signed", "none" (opted out) or "unverifiable" (no key: all refused) */
	pthread_mutex_t mu;
	int64_t ok, forbidden, bad, events;
	int64_t replayed, mismatched; /* events refused as seen before / carried by another vendor */
} wh_vendor_t;

struct trk_http {
	const cfg_t *cfg;
	trk_live_t *live;
	struct MHD_Daemon *d;
	char addr[64];
	rd_kafka_t *rk; /* producer for webhooks' events and controls */
	pthread_t poller;
	int poller_on;
	volatile int stopping;
	pthread_mutex_t mu; /* readers pool, writer, counters */
	trk_store_t *readers[MAX_READERS];
	int nreaders;
	trk_reply_t *reply;  /* worker: SMS replies through the adapters, review-list writes */
	pthread_mutex_t smu; /* seen */
	trk_store_t *seen;   /* the webhook replay memory (wh_seen in <db>-webhooks) */
	trk_whack_t *ack;    /* webhooks waiting for the broker's acknowledgement, their keys */
	int64_t unacked;     /* webhooks answered 503: the broker did not acknowledge in time */
	int nearly;          /* receipts waiting for their message's accepted record (h->mu) */
	int64_t early_ok;    /* ... and taken after waiting */
	wh_vendor_t wh[MAX_WH_VENDORS];
	size_t nwh;
	email_unsub_t *unsub;
	trk_ctl_tokens_t *tokens; /* named control tokens (tracker/ctl.h); none: controls disabled */
	trk_web_t *web;           /* the compose-and-launch page and its API (tracker/web.h) */
	char program[128], help_reply[480], stop_reply[320], start_reply[320];
	int64_t unsub_ok, unsub_bad, ctl_denied, slow, host_denied;
	/* addresses confirmed an opt-out recently (hash, mono ms): a second STOP
	 * sent before the first is folded into the store gets no second reply */
	uint64_t stop_h[STOP_SLOTS];
	int64_t stop_at[STOP_SLOTS];
	struct MHD_Response *page; /* the dashboard, built once */
	/* Answers to the endpoints the dashboard polls, kept api_cache_ms: every
	 * open dashboard polls each of them every second, and they need not cost
	 * a query each. */
	pthread_mutex_t cmu;
	int cache_ms;
	acache_t cache[CACHE_N];
};

/* One request's state: the raw URI and the body as it arrives. */
typedef struct req {
	char *uri;
	buf_t body;
	int too_big;
	int started;     /* the first call (headers only) has been seen */
	int web;         /* answered by tracker/web.c, body and all */
	void *wreq;      /* its state (trk_web_req_free) */
	int64_t t0_ns;   /* headers received */
	int64_t work_ns; /* spent answering (queries, JSON) */
	/* a webhook waiting for the broker (tracker/whack.h): its wait, the replay
	 * keys it holds (NUL-separated), their clock, and the answer to give once
	 * every record is acknowledged */
	uint64_t tok;
	buf_t keys;
	int64_t now_s;
	unsigned code;
	const char *ctype;
	buf_t ans;
	/* a receipt waiting for its message's accepted record: since (mono ms; 0
	 * never waited, -1 waited and done), and whether it sleeps now */
	int64_t early_t0;
	int early;
} req_t;

/* ---- http.c, for hooks.c (the HTTP threads) ---- */
/* Answer {"error": msg} with code. */
enum MHD_Result trk_http_answer_err(struct MHD_Connection *c, unsigned code, const char *msg);
/* A read-only store connection from the pool (NULL with err); give it back with
 * trk_http_reader_put (NULL is a no-op). */
trk_store_t *trk_http_reader_get(trk_http_t *h, char *err, size_t errlen);
void trk_http_reader_put(trk_http_t *h, trk_store_t *s);

/* ---- hooks.c: /webhooks/<vendor>/..., for http.c ---- */
/* Answer a webhook request r (its body read) for url; a request it suspends
 * (waiting for the broker or for an accepted record) comes back through
 * trk_wh_resume. An HTTP thread. */
enum MHD_Result trk_wh_handle(trk_http_t *h, struct MHD_Connection *c, const char *method,
                              const char *url, req_t *r);
/* r was resumed (r->tok or r->early set): answer it, or look at it again. */
enum MHD_Result trk_wh_resume(trk_http_t *h, struct MHD_Connection *c, const char *method,
                              const char *url, req_t *r);
/* r's connection ended: a wait it holds ends unanswered (its keys let go of). */
void trk_wh_req_end(trk_http_t *h, req_t *r);
/* Set up h's webhooks: an adapter per vendor (each one's auth logged), the test
 * clock, the replay memory (<db>-webhooks). 0, or an error with err (h is then
 * freed by the caller). Main thread, before the server starts. */
int trk_wh_init(trk_http_t *h, char *err, size_t errlen);
/* The delivery report callback of h->rk (opaque: h). The poll thread. */
void trk_wh_on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque);
/* Produce an opt-out; tok is the wait of the webhook it belongs to (0: none). */
int trk_wh_produce_optout(trk_http_t *h, uint64_t tok, const msg_optout_t *o);

#endif
