/* dsp_int.h -- what the dispatcher's files share: its state (dsp_t: lanes, partitions, vendors,
 * requests) and the calls between the loop (dsp.c), sending (dsp_send.c), outcomes (dsp_outcome.c),
 * partitions (dsp_group.c), set-up (dsp_setup.c) and stats (dsp_stats.c). One thread: the loop's. */
#ifndef TOCSIN_DSP_INT_H
#define TOCSIN_DSP_INT_H
#include "core/buf.h"
#include "core/cfg.h"
#include "core/err.h"
#include "core/kq.h"
#include "core/log.h"
#include "core/rl.h"
#include "dispatcher/dsp_lease.h"
#include "dispatcher/dsp_ledger.h"
#include "dispatcher/dsp_metrics.h"
#include "dispatcher/dsp_queue.h"
#include "dispatcher/dsp_share.h"
#include "dispatcher/dsp_state.h"
#include "dispatcher/retry.h"
#include "dispatcher/route.h"
#include "dispatcher/sla.h"
#include "vendors/http.h"
#include "vendors/vnd.h"

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

#define DSP_MAX_PARTS 1024
/* Finished messages held behind an unfinished one of their partition (their offset
 * cannot be committed yet) may number this many times --max-pending: they no longer
 * count in the window, so a slow destination at a partition's head does not stop
 * every other one (each holds its arena, its record is released). */
#define DSP_DONE_HELD_FACTOR 4

typedef struct dsp_part dsp_part_t;

struct dsp_part {
	int32_t partition;
	kq_lane_t lane;
	int assigned;
	int held; /* paused until the state catch-up of its assignment is done (dsp_catch_up_tick) */
	int refetched; /* records below next_offset are being dropped (on_record), logged once */
	dsp_msg_t *head, *tail;
	int64_t next_offset; /* last consumed + 1, -1 before the first */
	int64_t committed;   /* last committed offset, -1 none */
	/* where its assignment started reading (the group's committed offset, asked then):
	 * RD_KAFKA_OFFSET_BEGINNING (-2) the log start, none committed; -1 unknown */
	int64_t start;
};

typedef struct dsp_vendor {
	vnd_t *a; /* NULL: not on this channel's route */
	const cfg_vendor_t *v;
	rl_t *rl;            /* rate limits: vendor and sender numbers, in segments */
	sla_t *sla;          /* SLA monitor and failover state */
	uint64_t health_seq; /* last tocsin.vendor-health record applied */
	int inflight;
	int unusable; /* config error seen: credentials or sender wrong */
	int64_t sent, accepted, deferred, failed, throttled;
	int64_t last_throttle_log_ms;
} dsp_vendor_t;

/* One HTTP request in flight: the messages it carries (one for SMS, up to the
 * vendor's batch size for email). Pooled, never allocated per message. */
typedef struct dsp_req {
	dsp_msg_t **msgs;
	size_t n, cap;
	int vendor;
	dq_dest_t *dest; /* the destination whose window it counts in */
	int64_t sent_ms; /* mono ms it was submitted (hang detection) */
	struct dsp_req *next_free;
} dsp_req_t;

/* One lane of the outbox: its topic, the partitions of it this dispatcher owns,
 * and its own window of pending messages (so bulk records never hold urgent
 * ones out of memory). */
typedef struct dsp_lane {
	const char *topic;
	int total_parts; /* partitions of the topic */
	int owned;       /* of them assigned to this dispatcher now */
	dsp_part_t *parts[DSP_MAX_PARTS];
	size_t npending;       /* consumed and not yet freed */
	size_t ndone;          /* of those, finished: held until the partition's head finishes */
	int paused;            /* consumption paused for backpressure */
	int64_t full_since_ms; /* mono ms since the window was full with nothing leaving it; 0 */
	uint64_t n_left, full_left; /* messages finished: all, and when full_since_ms was set */
} dsp_lane_t;

typedef struct dsp {
	cfg_t *cfg;
	msg_channel_t channel;
	dsp_lane_t lanes[KQ_LANE__COUNT];
	char group[64];
	char client_id[96];
	rd_kafka_t *cons;  /* outbox consumer-group member */
	rd_kafka_t *prod;  /* status / dead / optout producer */
	rd_kafka_t *state; /* campaigns, opt-outs, vendor health: read from the start */
	rd_kafka_queue_t *q_cons, *q_prod, *q_state;
	rd_kafka_queue_t *q_urgent; /* the urgent lane's partitions, forwarded here: polled first */
	int wake[2];
	http_t *http;
	dsp_vendor_t *vendors; /* indexed like cfg->vendors */
	sla_t **slas;          /* the same monitors, as route_pick() takes them */
	size_t nvendors;
	route_t *route;
	retry_t *retry;
	dsp_req_t *reqs, *free_reqs;
	const msg_out_t **batch; /* reused argument array for vnd_build/classify */
	vnd_result_t *results;
	size_t batch_cap;
	int64_t last_sla_ms;
	dq_t *q;                  /* destinations, timers, the message lifecycle */
	unsigned serve_turn;      /* rotates which destination of a priority is served first */
	size_t npending;          /* consumed and not yet freed, both lanes */
	size_t max_pending;       /* per lane */
	int draining;             /* no new sends (stop or revoke) */
	int64_t unacked_since_ms; /* mono ms since final statuses wait unacknowledged; 0 none */
	int64_t last_ack_ms;      /* mono ms of the broker's last acknowledgement */
	int64_t held_since_ms;    /* mono ms since sending stopped: broker unreachable; 0 not */
	int64_t last_commit_ms;
	int64_t catch_since_ms;  /* mono ms of the assignment whose catch-up holds sends; 0 none */
	int64_t catch_logged_ms; /* mono ms the wait was last logged */
	size_t catch_ledger;     /* ledger ids the catch-up read (dsp_ledger_refresh) */
	dsp_state_t *st;         /* campaign states, opt-outs, vendor health */
	dsp_share_t *share; /* the peers' backlogs (rate shares by backlog); NULL: by partitions */
	int owned_parts;    /* partitions of both lanes owned now */
	double rate_share;  /* the share of every vendor's rate applied now */
	int64_t share_pub_ms;    /* mono ms this dispatcher's backlog was last published */
	int64_t share_pub_own;   /* the backlog it published then */
	int64_t share_last_own;  /* the backlog at the last share tick */
	int64_t share_rise_ms;   /* mono ms the backlog last went from 0 to more */
	int64_t share_tick_ms;   /* mono ms the share was last computed */
	dsp_ledger_t *ledger;    /* ids a vendor took, kept outside Kafka (dsp_ledger.h) */
	char instance[128];      /* group.instance.id, "" when a dynamic member */
	int slot_fd;             /* the flock'd slot file (static membership, leases), -1 none */
	int slot;                /* its number, -1 none */
	dsp_lease_t *lease;      /* partition leases (dsp_group_leases); NULL: the group protocol */
	int64_t lease_tick_ms;   /* mono ms the leases were last looked at */
	int lease_rank, lease_n; /* the ranking seen then (n -1: none yet) */
	int commit_refused;      /* partition leases: the broker refused a commit (logged once) */
	buf_t buf;               /* reused encode buffer */
	/* counters */
	int64_t n_consumed, n_accepted, n_failed, n_retried, n_cancelled, n_suppressed, n_expired;
	int64_t n_status_errors;
	int64_t n_finals_acked; /* final statuses the broker acknowledged */
	int64_t n_already_done; /* consumed again after a rebalance or crash: not resent */
	int64_t n_refetched;    /* fetched again within one assignment: dropped (on_record) */
	int64_t n_ledgered;     /* consumed again after the broker lost its outcome: not resent */
	int64_t first_consume_ns, last_final_ns;
	int64_t last_progress_ms;
	dsp_metrics_t *met;              /* /metrics (dsp_metrics.h), NULL when not served */
	int64_t n_held, last_metrics_ms; /* messages held for want of a usable vendor */
	/* ambiguous sends (the request went out, no answer came): held for a receipt */
	int64_t amb_grace_ms; /* dispatcher.ambiguous_grace_ms; 0: retried at once */
	int64_t n_ambiguous, n_reconciled, n_resent_amb;
	size_t n_amb_held;   /* held now */
	int64_t amb_last_ms; /* mono ms one was last held */
} dsp_t;

/* m's ambiguity ends (confirmed, resent or dropped). */
static inline void dsp_amb_end(dsp_t *d, dsp_msg_t *m)
{
	if (m->amb_until) {
		m->amb_until = 0;
		d->n_amb_held--;
	}
}

/* Messages of lane l in the window: consumed and not finished. */
static inline size_t dsp_lane_active(const dsp_lane_t *l) { return l->npending - l->ndone; }

/* May lane l take another record? Room in the window, and not too many finished
 * ones held behind an unfinished partition head. */
static inline int dsp_lane_room(const dsp_t *d, const dsp_lane_t *l)
{
	return dsp_lane_active(l) < d->max_pending && l->ndone < DSP_DONE_HELD_FACTOR * d->max_pending;
}

/* ---- dsp.c: the loop and the message bookkeeping */
/* Free m (NONE or DONE) and everything it holds; it leaves its lane's counts. */
void dsp_msg_free(dsp_t *d, dsp_msg_t *m);
/* m just became DONE: it leaves its lane's window; its record is released. */
void dsp_msg_done(dsp_t *d, dsp_msg_t *m);
/* Pop finished messages off the head of partition p and free them. */
void dsp_part_advance(dsp_t *d, dsp_part_t *p);
/* Finish what is in flight: every send completes and its final status is acknowledged, or
 * timeout_ms passes (or SIGTERM with the broker unreachable). New sends are held meanwhile. */
void dsp_drain_inflight(dsp_t *d, int timeout_ms);

/* ---- dsp_send.c: choosing and sending */
/* A held message (NONE) finds its destination, or is finished, or waits on a timer. */
void dsp_admit(dsp_t *d, dsp_msg_t *m, int64_t now_ms);
/* Serve every destination with ready messages, highest priority first, then lend what is
 * left to vendors of the route with spare capacity. */
void dsp_serve_all(dsp_t *d, int64_t now_ms);

/* ---- dsp_outcome.c: answers, final statuses, SLA */
/* Put a status of m on tocsin.status; a final one (final 1) is acknowledged by dsp_on_delivery. */
void dsp_produce_status(dsp_t *d, dsp_msg_t *m, msg_state_t st, const char *vendor, const char *ref,
                        const char *code, const char *detail, int64_t latency_ms, int final);
/* Record m's final outcome and put it on tocsin.status (and tocsin.dead when failed or expired). */
void dsp_finish(dsp_t *d, dsp_msg_t *m, msg_state_t st, const char *vendor, const char *ref,
                const char *code, const char *detail, int64_t latency_ms);
/* The producer's delivery reports (opaque: the dsp_t). */
void dsp_on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque);
/* An ambiguous m's timer: confirmed by a receipt, held on, or sent again. */
void dsp_amb_check(dsp_t *d, dsp_msg_t *m, int64_t now);
/* A request answered (or failed): every message it carried gets its outcome. */
void dsp_on_done(dsp_t *d, http_done_t *hd);
/* Apply the vendor health others published, detect hangs, let each monitor judge its window. */
void dsp_sla_check(dsp_t *d, int64_t now_ms);

/* ---- dsp_group.c: partitions, membership, rebalances, commits, rate shares */
/* The lane of an outbox topic. */
kq_lane_t dsp_lane_of(const dsp_t *d, const char *topic);
/* Partition p of lane, made on first use; NULL when out of range or out of memory. */
dsp_part_t *dsp_part_get(dsp_t *d, kq_lane_t lane, int32_t p);
/* Commit every owned partition's offset up to its first unfinished message (sync: wait). */
void dsp_commit_parts(dsp_t *d, int sync);
/* The consumer's commit report: a failed commit is tried again on the next round. */
void dsp_on_commit(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                   rd_kafka_topic_partition_list_t *offsets, void *opaque);
/* Partition lost: what is not final goes back to Kafka; its messages are freed or discarded. */
void dsp_drop_partition(dsp_t *d, kq_lane_t lane, int32_t partition);
/* Pause (or resume) one assigned partition. */
void dsp_pause_one(rd_kafka_t *rk, const rd_kafka_topic_partition_t *tp, int pause);
/* Release the partitions handed over once the state catch-up of their assignment is done. */
void dsp_catch_up_tick(dsp_t *d, int64_t now);
/* Outbox records of its assigned partitions not yet consumed (held: those held for a catch-up
 * too; 0 leaves them out), from the cached high watermarks: no broker round trip. */
int64_t dsp_outbox_lag(dsp_t *d, int held);
/* What it can send now: dsp_outbox_lag(d, 0) plus its messages unfinished (both lanes); what
 * it publishes on tocsin.backlog and the progress line's backlog=. */
int64_t dsp_backlog(dsp_t *d);
/* Publish this dispatcher's backlog and take the share of the vendors' rates it leaves. */
void dsp_rate_share_tick(dsp_t *d, int64_t now);
/* The consumer's rebalance callback (opaque: the dsp_t). */
void dsp_on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *parts, void *opaque);
/* Partition leases: every DSP_LEASE_TICK_MS, take and let go of partitions toward the target. */
void dsp_group_leases(dsp_t *d, int64_t now);
/* How the outbox consumer cc gets its partitions: leases, or the group with or without static
 * membership (cc NULL: only check the config). */
int dsp_membership(dsp_t *d, rd_kafka_conf_t *cc, char *err, size_t errlen);

/* ---- dsp_setup.c */
/* Vendors, queues, the HTTP engine and the Kafka clients from d->cfg; d->channel, lanes,
 * group and client_id are set. 0, or an error with a reason in err (dsp_teardown frees what
 * was made). */
int dsp_setup(dsp_t *d, char *err, size_t errlen);
/* Release everything: last delivery reports, consumed records, the clients. */
void dsp_teardown(dsp_t *d);

/* ---- dsp_stats.c */
/* The numbers /metrics shows (about once a second) and the progress line (every 5 s, or at
 * once after last_progress_ms = 0). */
void dsp_progress(dsp_t *d, int64_t now);

#endif
