/* msg.h -- the message schema on Kafka: outbox messages, status events, campaign records. */
#ifndef TOCSIN_MSG_H
#define TOCSIN_MSG_H
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/hash.h"

#define MSG_VERSION 1

typedef enum msg_channel { MSG_CH_SMS = 0, MSG_CH_EMAIL = 1, MSG_CH__COUNT } msg_channel_t;
const char *msg_channel_name(msg_channel_t ch);
/* 0 and *out set, or TOCSIN_ERR_INVAL for an unknown name. */
int msg_channel_parse(const char *s, msg_channel_t *out);

/* States of ARCHITECTURE.md. The first five move forward in this order; the
 * rest (and delivered) are final. */
typedef enum msg_state {
	MSG_ST_QUEUED = 0,
	MSG_ST_RETRYING,
	MSG_ST_ACCEPTED,
	MSG_ST_SENT,
	MSG_ST_DELIVERED,
	MSG_ST_SUPPRESSED,
	MSG_ST_CANCELLED,
	MSG_ST_EXPIRED,
	MSG_ST_FAILED,
	MSG_ST_UNDELIVERED,
	MSG_ST_BOUNCED,
	/* not final, ordered after sent (numbered last so stored values keep their meaning):
	 * taken by the vendor, no receipt by tracker.unknown_receipt_after_s; a late receipt
	 * still moves it on */
	MSG_ST_UNKNOWN_RECEIPT,
	MSG_ST__COUNT
} msg_state_t;

const char *msg_state_name(msg_state_t st);
int msg_state_parse(const char *s, msg_state_t *out);
bool msg_state_is_final(msg_state_t st);
/* May a message in state from move to state to? Forward only: non-final
 * states advance in order (queued < retrying < accepted < sent <
 * unknown_receipt); any final state beats every non-final one; once
 * final, a message stays where it is (so a late "sent" never overwrites
 * "delivered", and a duplicate event changes nothing). */
bool msg_state_advances(msg_state_t from, msg_state_t to);

/* One rendered message on tocsin.outbox.<channel>, key = `to`.
 * All strings are borrowed (NUL-terminated); NULL means absent. */
typedef struct msg_out {
	const char *id;       /* msg_make_id(campaign, channel, to) */
	const char *campaign; /* campaign id */
	msg_channel_t channel;
	const char *to;      /* normalized address: E.164 or lowercased-domain email */
	const char *sender;  /* sender pool name, bound to a number per vendor */
	const char *body;    /* SMS text */
	const char *subject; /* email */
	const char *text;    /* email text part */
	const char *html;    /* email html part */
	const char *headers; /* email extra headers: a raw JSON object, or NULL */
	const char *enc;     /* SMS encoding: "gsm7" or "ucs2" */
	int segments;        /* SMS segments (1 for email) */
	int priority;        /* 0 normal; higher goes first */
	int64_t created_ms;
	int64_t expires_ms; /* 0 = never */
	int attempt;        /* 0 for the first try */
	int64_t not_before_ms;
	/* email per-recipient substitutions: a raw JSON object of strings keyed by
	 * placeholder name, e.g. {"unsubscribe_url":"https://…/u/<token>"}, or NULL.
	 * The shared parts (subject/text/html) then carry MSG_SUB_PREFIX name
	 * MSG_SUB_SUFFIX where the value goes: "{{{tocsin:unsubscribe_url}}}". */
	const char *subs;
} msg_out_t;

/* The outbox placeholder syntax for msg_out_t.subs: "{{{tocsin:" name "}}}",
 * name = [A-Za-z0-9_]{1,MSG_SUB_NAME_MAX}. Templates can never print it (a
 * template cannot contain "{{" literally) and the producer falls back to a
 * fully inline render when recipient data could form it. */
#define MSG_SUB_PREFIX "{{{tocsin:"
#define MSG_SUB_SUFFIX "}}}"
#define MSG_SUB_NAME_MAX 64

/* Append m as one JSON object to b (a direct escaping writer; no allocation
 * beyond b's growth). Returns 0 or a tocsin_err_t. Thread: b's owner. */
int msg_out_encode(const msg_out_t *m, buf_t *b);
/* Parse an outbox record. "headers" and "subs" come back as their compact
 * JSON object text (only when they are objects). On success *hold owns the parsed tree that m's
 * strings point into: json_decref(*hold) when done with m. On failure returns
 * TOCSIN_ERR_INVAL with a reason in err and *hold is NULL. Any thread. */
int msg_out_parse(const void *data, size_t len, msg_out_t *m, json_t **hold, char *err, size_t errlen);

/* The same without allocating: strings are unescaped into strbuf (strcap >=
 * len + 1 always suffices: an unescaped string is never longer than its JSON)
 * and m's strings point into it. "headers" is copied as its raw JSON object
 * text, and so is "subs". Rejects what msg_out_parse rejects (invalid JSON, wrong "v", missing
 * id/campaign/to, unknown channel) with a reason in err. For the dispatcher's
 * hot path. Any thread. */
int msg_out_scan(const void *data, size_t len, msg_out_t *m, char *strbuf, size_t strcap, char *err,
                 size_t errlen);

/* One state change on tocsin.status, key = id. Strings borrowed; NULL = absent. */
typedef struct msg_status {
	const char *id;
	const char *campaign;
	msg_channel_t channel;
	const char *to;
	msg_state_t state;
	const char *vendor;
	const char *vendor_ref;
	const char *code;   /* the vendor's error code, or ours */
	const char *detail; /* human-readable reason; never a secret */
	int64_t latency_ms; /* request latency, -1 if none */
	int attempt;
	int64_t ts_ms;
} msg_status_t;

int msg_status_encode(const msg_status_t *s, buf_t *b);
/* As msg_out_parse(). */
int msg_status_parse(const void *data, size_t len, msg_status_t *s, json_t **hold, char *err,
                     size_t errlen);
/* The same without allocating, as msg_out_scan() (strcap >= len + 1 always suffices):
 * s's strings point into strbuf. Rejects what msg_status_parse rejects (invalid JSON,
 * wrong "v", missing id/campaign, unknown state or channel) except duplicate keys (the
 * last wins), and also refuses a non-integer latency_ms/attempt/ts_ms. For reading tocsin.status in bulk (the producer's --resend-failed). Any thread. */
int msg_status_scan(const void *data, size_t len, msg_status_t *s, char *strbuf, size_t strcap,
                    char *err, size_t errlen);

/* A dead letter on tocsin.dead, key = id: a message that could not be sent, with the
 * reason and the original outbox record:
 * {"v":1,"id","campaign","state","code","reason","attempts","ts_ms","message":<outbox record>}.
 * Strings borrowed; NULL = absent. */
typedef struct msg_dead {
	const char *id;
	const char *campaign;
	msg_state_t state;  /* failed or expired */
	const char *code;   /* the vendor's error code, or ours */
	const char *reason; /* human-readable; never a secret */
	int attempts;
	int64_t ts_ms;
	const char *message; /* the outbox record as JSON object text (message_len bytes) */
	size_t message_len;
} msg_dead_t;
/* Append d to b; message is written as it is (it must be one JSON object). */
int msg_dead_encode(const msg_dead_t *d, buf_t *b);
/* As msg_out_parse(); "message" comes back as its compact JSON object text
 * (NUL-terminated, message_len bytes). Refuses a record without id or campaign, with an
 * unknown state, or whose message is not an object. */
int msg_dead_parse(const void *data, size_t len, msg_dead_t *d, json_t **hold, char *err,
                   size_t errlen);

/* Campaign states on tocsin.campaigns (compacted, key = campaign id). */
typedef enum msg_camp_state {
	MSG_CAMP_LAUNCHING = 0,
	MSG_CAMP_RUNNING,
	MSG_CAMP_PAUSED,
	MSG_CAMP_CANCELLED,
	MSG_CAMP_DONE,
	MSG_CAMP_SCHEDULED, /* launched with a send_at still ahead: nothing sent before it */
	MSG_CAMP__COUNT
} msg_camp_state_t;
const char *msg_camp_state_name(msg_camp_state_t st);
int msg_camp_state_parse(const char *s, msg_camp_state_t *out);

/* A campaign record: {"v":1,"id","name","state","ts_ms", ...}. */
typedef struct msg_campaign {
	const char *id;
	const char *name;
	msg_camp_state_t state;
	int64_t queued;     /* messages produced so far, -1 if unknown */
	int64_t send_at_ms; /* "send_at_ms": a scheduled campaign's send_at, 0 = none */
	int qh_urgent;      /* "quiet_hours_override":"urgent": launched with quiet hours off */
	int64_t ts_ms;
	const char *actor; /* who changed it: the person or role of an operator control, or NULL */
} msg_campaign_t;
int msg_campaign_encode(const msg_campaign_t *c, buf_t *b);
int msg_campaign_parse(const void *data, size_t len, msg_campaign_t *c, json_t **hold, char *err,
                       size_t errlen);

/* Vendor SLA states on tocsin.vendor-health (compacted, key = vendor name). */
typedef enum msg_vh_state {
	MSG_VH_HEALTHY = 0, /* full traffic */
	MSG_VH_OPEN,        /* SLA breached: no traffic */
	MSG_VH_PROBING,     /* a trickle to test recovery */
	MSG_VH_DRAINED,     /* an operator took it out; never re-opened automatically */
	MSG_VH__COUNT
} msg_vh_state_t;
const char *msg_vh_state_name(msg_vh_state_t st);
int msg_vh_state_parse(const char *s, msg_vh_state_t *out);

/* {"v":1,"vendor","state","reason","by","p95_ms","error_rate","ts_ms"}. */
typedef struct msg_vhealth {
	const char *vendor;
	msg_vh_state_t state;
	const char *reason; /* e.g. "error_rate 0.42 > 0.20", "operator drain" */
	const char *by;     /* who decided: dispatcher client id, or "operator" */
	double p95_ms;      /* -1 if unknown */
	double error_rate;  /* -1 if unknown */
	int64_t ts_ms;
	const char *actor; /* by "operator": the person or role who did it, or NULL */
} msg_vhealth_t;
int msg_vhealth_encode(const msg_vhealth_t *h, buf_t *b);
int msg_vhealth_parse(const void *data, size_t len, msg_vhealth_t *h, json_t **hold, char *err,
                      size_t errlen);

/* Opt-outs on tocsin.optouts (compacted, key = "<channel>:<address>"):
 * {"v":1,"channel","address","action":"optout"|"optin","source","campaign","ts_ms"}. */
typedef struct msg_optout {
	msg_channel_t channel;
	const char *address;  /* normalized, as in msg_out_t.to */
	int optin;            /* 0 = opt-out, 1 = opt back in (START) */
	const char *source;   /* "sms_stop", "vendor_21610", "one_click", "operator", … */
	const char *campaign; /* campaign that triggered it, or NULL */
	int64_t ts_ms;
} msg_optout_t;
int msg_optout_encode(const msg_optout_t *o, buf_t *b);
int msg_optout_parse(const void *data, size_t len, msg_optout_t *o, json_t **hold, char *err,
                     size_t errlen);
/* Write the topic key "<channel>:<address>" into out. Returns its length or -1 if too long. */
int msg_optout_key(msg_channel_t ch, const char *address, char *out, size_t outlen);

#endif
