/* dsp_queue.h -- the dispatcher's per-destination queues (vendor x sender pool) and timers: the only code that moves a message between states. */
#ifndef TOCSIN_DSP_QUEUE_H
#define TOCSIN_DSP_QUEUE_H
#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

#include "core/cfg.h"
#include "core/err.h"
#include "core/msg.h"

/* The model is Postfix's queue manager: one destination per vendor x sender
 * pool (what a rate limit and a concurrency window apply to), each with its
 * own ready list, its in-flight window (requests), its limiter slot and its
 * timer (wait_until: the limiter said "not before"). A message waiting on one
 * destination never holds back a message for another.
 *
 * Inside a destination, ready messages are kept per campaign: the campaign of
 * the highest priority goes first, and campaigns of the same priority take
 * turns (round-robin, one request each), so a second campaign does not wait
 * for the first to finish.
 *
 * Lifecycle. A message is in exactly one place (dq_enter: a new one is NONE;
 * dq_release: it may be freed, from NONE or DONE only):
 *   NONE  --dq_ready-->  READY  --dq_pop-->  NONE  (dq_unpop puts it back in front)
 *   NONE  --dq_timer-->  TIMER  --dq_due-->  NONE
 *   NONE  --dq_inflight--> INFLIGHT --dq_landed--> NONE
 *   NONE  --dq_final-->  FINAL_PENDING --dq_acked--> DONE
 *   FINAL_PENDING --dq_refinal--> TIMER --dq_due--> FINAL_PENDING (its status is produced again)
 *   NONE  --dq_skip-->   DONE (nothing to send: unreadable, or already has an outcome)
 * Every function checks the state it is given and aborts with dq_panic()
 * naming itself when an invariant breaks. Nothing here allocates per message
 * on a path that can drop one: the timers are an intrusive heap, destinations
 * are made at start, and a campaign list that cannot be allocated falls back
 * to the destination's spare list (fairness degrades; nothing is lost).
 *
 * Not thread-safe: the dispatcher's loop thread owns a dq_t and its messages. */

typedef enum dq_where {
	DQ_NONE,          /* held by the caller, being decided */
	DQ_READY,         /* in a destination's ready list */
	DQ_TIMER,         /* waiting for a time (retry backoff, paused campaign, not_before) */
	DQ_INFLIGHT,      /* in an HTTP request */
	DQ_FINAL_PENDING, /* final status produced, broker acknowledgement awaited */
	DQ_DONE,          /* final and acknowledged: its offset may be committed */
	DQ__COUNT
} dq_where_t;

typedef struct dq dq_t;
typedef struct dq_dest dq_dest_t;
typedef struct dq_camp dq_camp_t;
struct dsp_part;

/* One consumed outbox record. The fields above `where` belong to the caller
 * (dsp.c and the files sharing dsp_int.h); the fields from `where` down are written only by dsp_queue.c. */
typedef struct dsp_msg {
	rd_kafka_message_t *rkm; /* keeps the record (and its offset) alive */
	msg_out_t m;
	struct dsp_part *part;
	int64_t offset;
	struct dsp_msg *part_next; /* consumed order within the partition */
	int discard;               /* its partition was revoked: drop when next touched */
	int held;                  /* waiting for a usable vendor (the dispatcher counts these) */
	int watched;       /* its id is watched in tocsin.status (dsp_state_watch) until freed */
	int attempt;       /* sends tried so far */
	int vendor;        /* vendor index of the send in flight, -1 none */
	int lane;          /* kq_lane_t of the topic it came from */
	int last_vendor;   /* vendor that last deferred, -1 none */
	int64_t amb_until; /* mono ms: a send to last_vendor went out and got no answer (ambiguous);
	                    * held until then for a receipt to confirm it; 0 none */
	/* the final outcome, kept to re-produce its status if delivery fails */
	msg_state_t final_state;
	char vendor_name[64];
	char ref[256]; /* vnd_result_t.ref */
	char code[32];
	char detail[200];
	int64_t latency_ms;
	/* ---- owned by dsp_queue.c */
	dq_where_t where;
	dq_dest_t *dest;                 /* READY: the destination it waits in */
	dq_camp_t *camp;                 /* READY: its campaign list */
	struct dsp_msg *q_next;          /* READY: next in its campaign list */
	struct dsp_msg *t_child, *t_sib; /* TIMER: pairing-heap links */
	int64_t due_ms;                  /* TIMER: monotonic ms */
	int refinal;                     /* TIMER: a final status to produce again */
	char arena[]; /* m's strings, unescaped from the record (one allocation per message) */
} dsp_msg_t;

/* Abort naming the function: an invariant of the message lifecycle broke.
 * Never compiled out. */
#define dq_panic(...) tocsin_panic_at(__func__, __VA_ARGS__)
#define dq_panic_at tocsin_panic_at /* core/err.h */

/* Destinations for every vendor of cfg (index like cfg->vendors): one per
 * sender pool of the vendor (slot 0..nsenders-1, as rl_sender() numbers
 * them) plus one for messages whose pool has no number there (slot -1).
 * NULL with a reason in err. Owned by the caller (dq_free, which frees no
 * message: pop them first). */
dq_t *dq_new(const cfg_t *cfg, char *err, size_t errlen);
void dq_free(dq_t *q);

/* The destination of vendor vi and sender slot (-1..nsenders-1); aborts when
 * out of range. */
dq_dest_t *dq_dest(dq_t *q, int vi, int slot);
int dq_dest_vendor(const dq_dest_t *d);
int dq_dest_slot(const dq_dest_t *d);
/* Ready messages and requests in flight of destination d. */
size_t dq_dest_ready(const dq_dest_t *d);
int dq_dest_inflight(const dq_dest_t *d);
/* Highest priority among d's ready messages (INT32_MIN when none). */
int dq_dest_top(const dq_dest_t *d);
/* The destination's timer: nothing is taken from it before until_ms. */
int64_t dq_dest_wait_until(const dq_dest_t *d);
void dq_dest_wait(dq_dest_t *d, int64_t until_ms);
/* Number of destinations, and destination i (0 <= i < dq_ndests). */
size_t dq_ndests(const dq_t *q);
dq_dest_t *dq_dest_at(dq_t *q, size_t i);

/* A new message (just consumed) enters, NONE. */
void dq_enter(dq_t *q, dsp_msg_t *m);
/* NONE -> READY at the back of its campaign's list in destination d. */
void dq_ready(dq_t *q, dsp_msg_t *m, dq_dest_t *d);
/* READY -> NONE: the next message d should send (highest priority, then the
 * campaign whose turn it is), or NULL when d is empty. Its campaign's turn
 * ends. */
dsp_msg_t *dq_pop(dq_t *q, dq_dest_t *d);
/* The next ready message in d of the same campaign and priority as `like`
 * (a message just popped), or NULL: dq_peek_same() looks, dq_pop_same() takes
 * it (READY -> NONE). They fill a batch request; turns do not change. */
const dsp_msg_t *dq_peek_same(const dq_dest_t *d, const dsp_msg_t *like);
dsp_msg_t *dq_pop_same(dq_t *q, dq_dest_t *d, const dsp_msg_t *like);
/* NONE -> READY at the front of its campaign's list in d; its campaign gets
 * the next turn again (the message could not go yet). */
void dq_unpop(dq_t *q, dsp_msg_t *m, dq_dest_t *d);

/* NONE -> TIMER until due_ms (monotonic). */
void dq_timer(dq_t *q, dsp_msg_t *m, int64_t due_ms);
/* FINAL_PENDING -> TIMER, due at once: its final status must be produced again. */
void dq_refinal(dq_t *q, dsp_msg_t *m);
/* The earliest timer due at or before now_ms: TIMER -> NONE, or
 * TIMER -> FINAL_PENDING when it was a dq_refinal() (m->refinal is then 1
 * until the next transition). NULL when none is due. */
dsp_msg_t *dq_due(dq_t *q, int64_t now_ms);
/* Monotonic ms of the earliest timer, or INT64_MAX when none. */
int64_t dq_next_due(const dq_t *q);
/* Any message still READY or TIMER (-> NONE), for teardown; NULL when none. */
dsp_msg_t *dq_any(dq_t *q);

/* NONE -> INFLIGHT for the n messages of one request to destination d
 * (its window counts the request). */
void dq_inflight(dq_t *q, dq_dest_t *d, dsp_msg_t *const *msgs, size_t n);
/* INFLIGHT -> NONE: the request to d carrying msgs answered. */
void dq_landed(dq_t *q, dq_dest_t *d, dsp_msg_t *const *msgs, size_t n);

/* NONE -> FINAL_PENDING: its final status is being produced. */
void dq_final(dq_t *q, dsp_msg_t *m);
/* FINAL_PENDING -> DONE: the broker acknowledged the final status. */
void dq_acked(dq_t *q, dsp_msg_t *m);
/* NONE -> DONE: nothing to send or report (unreadable record, already has an outcome). */
void dq_skip(dq_t *q, dsp_msg_t *m);
/* INFLIGHT or FINAL_PENDING -> NONE at shutdown, past the drain timeout: the
 * record goes back to Kafka uncommitted. */
void dq_abandon(dq_t *q, dsp_msg_t *m);
/* The caller frees m: it must be NONE or DONE (anything else aborts: a
 * message in a list would be lost). */
void dq_release(dq_t *q, dsp_msg_t *m);

/* Messages in each state, and campaign lists that fell back to a spare
 * (allocation failures), for the progress line. */
size_t dq_count(const dq_t *q, dq_where_t w);
/* Final statuses not yet acknowledged: FINAL_PENDING plus those waiting to be produced again. */
size_t dq_unacked(const dq_t *q);
uint64_t dq_spare_uses(const dq_t *q);

#endif
