/* prod.h -- campaign expansion: audience rows -> normalized, deduped, rendered outbox messages. */
#ifndef TOCSIN_PROD_H
#define TOCSIN_PROD_H
#include <stdint.h>
#include <stdio.h>

#include "core/cfg.h"
#include "producer/camp.h"
#include "templates/email.h"
#include "templates/sms.h"

#define PROD_MAX_REASONS 64
#define PROD_MAX_PERM 16 /* reasons of permanent failures told apart by --resend-failed */
#define PROD_MAX_RECIPIENTS 100000000 /* distinct addresses per channel in one launch */
#define PROD_MAX_SEGS 21              /* segments histogram: 1..20, and 21 = more */

typedef struct prod_opts {
	int dry;           /* preview: scan and count, produce nothing, touch no checkpoint */
	int preview_n;     /* dry: print the first N rendered messages to out */
	FILE *out;         /* dry: where previews go (default stdout) */
	FILE *digests;     /* dry: "<address> <email_digest of the inline render>" per queued email,
	                        unsubscribe links signed with the real key (tests compare them with
	                        the emulator's GET /_sim/email/digests) */
	int resend_failed; /* re-queue only recipients whose latest outcome is a failure */
	int include_permanent; /* resend_failed: also failures a resend would repeat */
	int restart;           /* ignore an existing checkpoint (ids stay the same) */
	int64_t max_lag;   /* messages not yet consumed by the dispatchers: -1 auto, 0 unbounded */
	int progress;      /* a progress line on stderr (when it is a terminal) */
	int ckpt_every_ms; /* checkpoint interval; 0 = 1000 */
	const char *rejects_path; /* override the campaign's / default path */
	const char *report_path;
	int kafka_timeout_ms;     /* connect / metadata timeout; 0 = 10000 */
	int64_t crash_after_rows; /* tests: stop after this many rows as if killed (0 = never) */
} prod_opts_t;

typedef struct prod_reason {
	char text[96];
	int64_t n;
} prod_reason_t;

/* Counts of one run. Rows: read = queued + rejected + suppressed + duplicates
 * (a row is queued when at least one of its channels was queued). */
typedef struct prod_stats {
	int64_t read, queued, rejected, suppressed, duplicates;
	int64_t ch_queued[2], ch_rejected[2], ch_suppressed[2], ch_duplicates[2];
	int64_t produced;        /* messages handed to Kafka in this run */
	int64_t already;         /* found already in the outbox when resuming, not produced again */
	int64_t delivery_failed; /* delivery reports with an error */
	int64_t resumed_rows;    /* rows before the checkpoint this run continued from */
	int64_t resend_skipped;  /* --resend-failed: recipients not failed, skipped */
	int64_t resend_found;    /* --resend-failed: failed messages to re-queue (tocsin.status) */
	int64_t resend_requeued; /* --resend-failed: failed messages an earlier resend re-queued
	                            (its `queued` record is their latest): not re-queued again */
	int64_t resend_permanent; /* --resend-failed: permanent failures found (left out unless
	                             include_permanent), by reason in perm[] */
	prod_reason_t perm[PROD_MAX_PERM];
	int nperm;
	prod_reason_t reasons[PROD_MAX_REASONS];
	int nreasons;
	int64_t reasons_other;
	/* SMS analysis (preview and launch) */
	int64_t by_enc[2];
	int64_t seg_hist[PROD_MAX_SEGS + 1];
	int64_t segments;
	int64_t replaced;
	unsigned replaced_kind[SMS_SMART_NKINDS];
	/* email (launch): queued emails by form, EMAIL_INLINE_NONE = shared parts + subs
	 * (batchable), the others rendered inline for that reason (email_inline_name) */
	int64_t email_form[EMAIL_INLINE_NREASONS];
	/* send_at and quiet hours (hold/hold.h): messages held, ended expired at launch (their
	 * window does not open before they expire), and the span of the held ones' due times */
	int64_t held, expired, first_due_ms, last_due_ms;
	int64_t lag_waits_ms; /* time spent waiting on --max-lag */
	int64_t max_lag_used; /* the bound in effect (0 = none) */
	double elapsed_s;
	int already_done; /* the campaign had finished before: nothing was done */
} prod_stats_t;

typedef struct prod prod_t;

/* Prepare a run of camp: open the audience, map its columns, compile the
 * templates, and (unless dry) connect the producer, sync the opt-out cache
 * and read the checkpoint. cfg and camp are borrowed and must outlive the
 * prod_t. Returns a new prod_t (prod_free) or NULL with one line in err
 * ("path: reason", "campaign.json: sms.template: 1:4: unknown field x", the
 * Kafka bootstrap message...). Main thread. */
prod_t *prod_new(const cfg_t *cfg, const camp_t *camp, const prod_opts_t *o, char *err, size_t errlen);
void prod_free(prod_t *p);

/* Run to the end of the audience (or until tocsin_stop). Returns 0 when the
 * run finished (even with rejected rows), TOCSIN_ERR_* with err otherwise
 * (delivery failures, Kafka errors, stopped by a signal: the checkpoint lets
 * the same command continue). Main thread. */
int prod_run(prod_t *p, char *err, size_t errlen);

/* The counts so far (owned by p). */
const prod_stats_t *prod_stats(const prod_t *p);
/* Where the rejects and the report went (owned by p). */
const char *prod_rejects_path(const prod_t *p);
const char *prod_report_path(const prod_t *p);

/* Print the human summary of st to f. Main thread. */
void prod_print_summary(const prod_t *p, FILE *f);
/* Print the preview analysis (encodings, segments, reasons, replacements,
 * cost per vendor of cfg). */
void prod_print_preview(const prod_t *p, FILE *f);

/* Read tocsin.outbox.<channel> from the log start and print, for camp, the
 * messages, distinct ids and duplicates found ("outbox tocsin.outbox.sms:
 * campaign demo: 10000 messages, 10000 distinct ids, 0 duplicates").
 * Returns 0, 1 when duplicates were found, or TOCSIN_ERR_* with err. Main thread. */
int prod_check_outbox(const cfg_t *cfg, const camp_t *camp, FILE *out, char *err, size_t errlen);

/* --resend-failed --dry-run: read tocsin.status as --resend-failed does and
 * print to out how many messages it would re-queue and the permanent
 * failures it would leave out (o->include_permanent counts them in);
 * produces nothing. 0 or a tocsin_err_t with err. Main thread. */
int prod_resend_plan(const cfg_t *cfg, const camp_t *camp, const prod_opts_t *o, FILE *out,
                     char *err, size_t errlen);

#endif
