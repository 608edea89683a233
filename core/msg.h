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
	MSG_ST__COUNT
} msg_state_t;

const char *msg_state_name(msg_state_t st);
int msg_state_parse(const char *s, msg_state_t *out);
bool msg_state_is_final(msg_state_t st);
/* May a message in state from move to state to? Forward only: non-final
 * states advance in order; any final state beats every non-final one; once
 * final, a message stays where it is (so a late "sent" never overwrites
 * "delivered", and a duplicate event changes nothing). */
bool msg_state_advances(msg_state_t from, msg_state_t to);

/* One rendered message on tocsin.outbox.<channel>, key = `to`.
 * All strings are borrowed (NUL-terminated); NULL means absent. */
typedef struct msg_out {
	const char *id;       /* msg_make_id(campaign, channel, to) */
	const char *campaign; /* campaign id */
	msg_channel_t channel;
	const char *to;       /* normalized address: E.164 or lowercased-domain email */
	const char *sender;   /* sender pool name, bound to a number per vendor */
	const char *body;     /* SMS text */
	const char *subject;  /* email */
	const char *text;     /* email text part */
	const char *html;     /* email html part */
	const char *headers;  /* email extra headers: a raw JSON object, or NULL */
	const char *enc;      /* SMS encoding: "gsm7" or "ucs2" */
	int segments;         /* SMS segments (1 for email) */
	int priority;         /* 0 normal; higher goes first */
	int64_t created_ms;
	int64_t expires_ms;   /* 0 = never */
	int attempt;          /* 0 for the first try */
	int64_t not_before_ms;
} msg_out_t;

/* Append m as one JSON object to b (a direct escaping writer; no allocation
 * beyond b's growth). Returns 0 or a tocsin_err_t. Thread: b's owner. */
int msg_out_encode(const msg_out_t *m, buf_t *b);
/* Parse an outbox record. On success *hold owns the parsed tree that m's
 * strings point into: json_decref(*hold) when done with m. On failure returns
 * TOCSIN_ERR_INVAL with a reason in err and *hold is NULL. Any thread. */
int msg_out_parse(const void *data, size_t len, msg_out_t *m, json_t **hold, char *err,
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

/* Campaign states on tocsin.campaigns (compacted, key = campaign id). */
typedef enum msg_camp_state {
	MSG_CAMP_LAUNCHING = 0,
	MSG_CAMP_RUNNING,
	MSG_CAMP_PAUSED,
	MSG_CAMP_CANCELLED,
	MSG_CAMP_DONE,
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
	int64_t ts_ms;
} msg_campaign_t;
int msg_campaign_encode(const msg_campaign_t *c, buf_t *b);
int msg_campaign_parse(const void *data, size_t len, msg_campaign_t *c, json_t **hold, char *err,
                       size_t errlen);

#endif
