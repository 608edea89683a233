/* prod_int.h -- what the producer's files share (producer/prod*.c): the launch's state; not a public interface. */
#ifndef TOCSIN_PROD_INT_H
#define TOCSIN_PROD_INT_H
#include "producer/prod.h"
#include "core/buf.h"
#include "core/kq.h"
#include "core/tz.h"
#include "core/tzdb.h"
#include "hold/hold.h"
#include "producer/aset.h"
#include "producer/aud.h"
#include "producer/penc.h"
#include "templates/email.h"
#include "templates/tmpl.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

#define MAXPART 64
#define EPOCHS 8
/* The broker unreachable this long (no acknowledgement, every connection down): the launch
 * gives up with one line instead of waiting (its messages time out a little later). */
#define PROD_BROKER_LOST_MS 20000
/* Signs of a lost broker, the first of which starts that clock: messages waiting this long
 * with no delivery report, the lag gate's committed-offset query failing, every broker
 * connection down (librdkafka's ALL_BROKERS_DOWN). */
#define PROD_ACK_STALL_MS 3000
#define SMS_BODY_CAP (16 * 1024)
#define EMAIL_BUF_CAP (2 * 1024 * 1024)

struct prod {
	const cfg_t *cfg;
	const camp_t *camp;
	prod_opts_t o;
	prod_stats_t st;
	aud_t *aud;
	int col[2]; /* address column per channel, -1 = none */
	int on[2];
	tmpl_t *t_sms;
	penc_t *penc; /* the SMS record writer */
	email_tmpl_t *t_email;
	email_unsub_t *unsub;
	size_t nfields;    /* audience columns */
	const char **vals; /* nfields */
	size_t *lens;
	char *body, *ebuf;
	buf_t rec;       /* encoded record, reused */
	buf_t srec;      /* --resend-failed: the `queued` status record, reused */
	int resuming;    /* continuing an interrupted launch (checkpoint not done) */
	aset_t *seen;    /* dedupe */
	aset_t *sup;     /* opted out */
	aset_t *already; /* ids found in the outbox past the checkpoint */
	aset_t *failed;  /* --resend-failed: ids whose final state is a failure */
	rd_kafka_t *rk;
	rd_kafka_t *lag_rk[2];
	rd_kafka_t *watch; /* tocsin.campaigns: operator pause / cancel during the launch */
	int camp_state;    /* latest state of this campaign seen there, -1 none */
	int64_t last_watch;
	int nparts[2];
	int64_t offs[2][MAXPART]; /* checkpoint: next offset after our delivered messages */
	/* Checkpoint epochs: messages are tagged with their epoch; an epoch's end
	 * position becomes the checkpoint once every message of it and of all
	 * earlier epochs is delivered (no flush barrier on the hot path). */
	struct epoch {
		int64_t produced, delivered;
		int64_t rows, queued, rj_bytes; /* position at its end */
		int closed;
		int64_t offs[2][MAXPART];
	} ep[EPOCHS];
	int64_t ep_cur, ep_done; /* current epoch; oldest not yet checkpointed */
	int64_t ck_rows, ck_queued, ck_rj;
	char errstr[256]; /* first delivery error */
	/* the broker watch: down_mono_ms is written by the launch thread and the watchdog
	 * thread (__atomic); the rest by whichever set it first */
	int64_t down_mono_ms; /* since when the broker is unreachable (0: it answers) */
	int64_t down_wall_ms;
	int64_t ack_ref_ms; /* launch thread: mono ms of the last delivery report, or of an empty queue */
	pthread_t watchdog;
	int watchdog_on, watchdog_stop;
	FILE *rejects;
	char rejects_path[4096], report_path[4096], ckpt_path[4096], dir[3800];
	int64_t ckpt_rows; /* rows of the checkpoint to replay */
	int64_t t0_ms;
	int64_t now_ms;
	int64_t created_ms;
	int64_t bytes_produced;
	int64_t last_lag_check;
	int64_t lag_cached;
	int64_t lag_at_check;      /* measured lag at the last check */
	int64_t produced_at_check; /* p->st.produced then */
	int printed;               /* previews printed */
	int64_t aud_size, aud_mtime;
	/* send_at and quiet hours */
	tzdb_t *tzdb; /* NULL when no channel has quiet hours */
	hold_t *hold; /* the holding store (launch only) */
	int tzcol[3]; /* timezone, zip, state columns; -1 = none */
	int qh_on[2];
	tz_window_t qh[2];
	int64_t sa_now, sa_held; /* preview: messages without quiet hours, now or at send_at */
};

#define QH_HORIZON_MS (8 * 86400000LL) /* how far ahead a window is looked for */
#define SEND_AT_GRACE_MS 300000        /* send_at this far in the past is still "now" */

/* prod_read.c: reading topics back (the resume scan, --resend-failed, the campaign watch) */
rd_kafka_t *prod_launch_consumer(const cfg_t *cfg, const char *camp_id, const char *what,
                                 int timeout_ms, char *err, size_t errlen);
int prod_topic_parts(rd_kafka_t *rk, const char *topic);
int prod_scan_already(prod_t *p, json_t *offs, char *err, size_t errlen);
int prod_load_failed(prod_t *p, char *err, size_t errlen);
int prod_watch_start(prod_t *p, char *err, size_t errlen);
void prod_watch_poll(prod_t *p, int wait_ms);

/* prod_run.c: the launch's Kafka callbacks (set up by prod_new) */
void prod_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque);
void prod_err_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque);

/* prod_report.c: report.json (finished: the run ended without an error) */
void prod_write_report(prod_t *p, int finished);

#endif
