/* prod.c -- campaign expansion: audience rows -> normalized, deduped, rendered outbox messages; here the launch is set up (prod_new) and torn down. */
#include "producer/prod_int.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/hash.h"
#include "core/kq.h"
#include "core/log.h"
#include "core/msg.h"
#include "core/runfile.h"
#include "core/sig.h"
#include "producer/addr.h"
#include "producer/aset.h"
#include "producer/aud.h"
#include "producer/optc.h"
#include "producer/penc.h"
#include "core/tz.h"
#include "core/tzdb.h"
#include "hold/hold.h"
#include "tracker/store.h"
#include "templates/email.h"
#include "templates/tmpl.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------- helpers */

/* The rejects file holds recipients' rows: owner only (0600, also when it existed). */
static FILE *rejects_open(const char *path, const char *mode)
{
	FILE *f = fopen(path, mode);
	if (f && fchmod(fileno(f), 0600)) {
		fclose(f);
		return NULL;
	}
	return f;
}

static int mkdir_p(const char *dir)
{
	char tmp[4096];
	snprintf(tmp, sizeof tmp, "%s", dir);
	for (char *s = tmp + 1; *s; s++)
		if (*s == '/') {
			*s = 0;
			if (mkdir(tmp, 0755) && errno != EEXIST)
				return -1;
			*s = '/';
		}
	return mkdir(tmp, 0755) && errno != EEXIST ? -1 : 0;
}

/* ------------------------------------------------------------------ setup */

static tmpl_t *compile(prod_t *p, const char *src, tmpl_mode_t mode, const char *what, char *err,
                       size_t errlen)
{
	char e[512];
	tmpl_t *t = tmpl_compile_ex(src, strlen(src), mode, p->vals, p->nfields,
	                            p->camp->missing_empty ? TMPL_F_MISSING_EMPTY : 0, e, sizeof e);
	if (!t)
		snprintf(err, errlen, "%s: %s: %s (audience columns: %s)", p->camp->path, what, e,
		         p->camp->aud_path);
	return t;
}

/* send_at and quiet hours: each channel's window (the configuration's, or the campaign's
 * narrower one; none with the urgent override), the zone columns and tables. */
static int sched_setup(prod_t *p, char *err, size_t errlen)
{
	const camp_t *c = p->camp;
	const cfg_t *cfg = p->cfg;
	const char *cols[3] = {c->col_tz, c->col_zip, c->col_state};
	for (int k = 0; k < 3; k++)
		p->tzcol[k] = cols[k] ? aud_col(p->aud, cols[k]) : -1;
	int need = 0;
	for (int ch = 0; ch < 2; ch++) {
		p->qh_on[ch] = p->on[ch] && cfg->qh_on[ch] && !c->qh_urgent;
		p->qh[ch] = (tz_window_t){cfg->qh_start[ch], cfg->qh_end[ch]};
		if (!p->qh_on[ch] || c->qh_start < 0)
			continue;
		/* the campaign may only narrow the window */
		tz_window_t w = {c->qh_start, c->qh_end};
		int inside = w.start < w.end && p->qh[ch].start < p->qh[ch].end
		                 ? w.start >= p->qh[ch].start && w.end <= p->qh[ch].end
		                 : w.start == p->qh[ch].start && w.end == p->qh[ch].end;
		if (!inside) {
			char a[6], b[6], x[6], y[6];
			tz_fmt_hhmm(w.start, a), tz_fmt_hhmm(w.end, b);
			tz_fmt_hhmm(p->qh[ch].start, x), tz_fmt_hhmm(p->qh[ch].end, y);
			snprintf(err, errlen,
			         "%s: quiet_hours: %s-%s is not inside the %s window of %s "
			         "(%s-%s): a campaign may only narrow it (or name {\"override\": \"urgent\"})",
			         c->path, a, b, msg_channel_name((msg_channel_t)ch), cfg->path, x, y);
			return TOCSIN_ERR_CONFIG;
		}
		p->qh[ch] = w;
	}
	for (int ch = 0; ch < 2; ch++)
		need |= p->qh_on[ch];
	if (need && !(p->tzdb = tzdb_open(NULL, err, errlen)))
		return TOCSIN_ERR_CONFIG;
	if (c->qh_urgent)
		log_warn("event=quiet_hours_override campaign=%s override=urgent msg=\"quiet hours are off "
		         "for this campaign\"",
		         c->id);
	return 0;
}

/* The audience: opened, its size and mtime (the checkpoint's guard), the field names the
 * templates compile against, and the address and zone columns the campaign names. */
static int open_audience(prod_t *p, char *err, size_t errlen)
{
	const camp_t *camp = p->camp;
	p->aud = aud_open(&camp->aud, err, errlen);
	if (!p->aud)
		return TOCSIN_ERR_INVAL;
	struct stat sb;
	if (!stat(camp->aud_path, &sb)) {
		p->aud_size = (int64_t)sb.st_size;
		p->aud_mtime = (int64_t)sb.st_mtime;
	}
	size_t nc = aud_ncols(p->aud);
	p->nfields = nc;
	p->vals = calloc(p->nfields, sizeof *p->vals);
	p->lens = calloc(p->nfields, sizeof *p->lens);
	if (!p->vals || !p->lens) {
		snprintf(err, errlen, "out of memory");
		return TOCSIN_ERR_NOMEM;
	}
	/* field names for compile: the columns, then unsubscribe_url */
	const char *const *cols = aud_cols(p->aud);
	for (size_t i = 0; i < nc; i++)
		p->vals[i] = cols[i];
	const char *colname[2] = {camp->col_phone, camp->col_email};
	for (int ch = 0; ch < 2; ch++) {
		p->col[ch] = aud_col(p->aud, colname[ch]);
		if (p->on[ch] && p->col[ch] < 0) {
			snprintf(err, errlen,
			         "%s:1: no column \"%s\" for the %s address (set audience.%s in %s)",
			         camp->aud_path, colname[ch], ch ? "email" : "phone",
			         ch ? "email" : "phone", camp->path);
			return TOCSIN_ERR_INVAL;
		}
	}
	const char *extra[3][2] = {{camp->col_tz, "timezone"},
	                           {camp->col_zip, "zip"},
	                           {camp->col_state, "state"}};
	for (int k = 0; k < 3; k++)
		if (extra[k][0] && aud_col(p->aud, extra[k][0]) < 0) {
			snprintf(err, errlen, "%s:1: no column \"%s\" (audience.%s in %s)",
			         camp->aud_path, extra[k][0], extra[k][1], camp->path);
			return TOCSIN_ERR_INVAL;
		}
	return 0;
}

/* The SMS template, the email templates with their unsubscribe links, the SMS record writer. */
static int compile_templates(prod_t *p, char *err, size_t errlen)
{
	const camp_t *camp = p->camp;
	const cfg_t *cfg = p->cfg;
	if (camp->sms_on &&
	    !(p->t_sms = compile(p, camp->sms_template, TMPL_TEXT, "sms.template", err, errlen)))
		return TOCSIN_ERR_INVAL;
	if (camp->email_on) {
		char e[512];
		const char *tx = camp->email_text, *ht = camp->email_html;
		p->t_email = email_compile(camp->email_subject, strlen(camp->email_subject), tx,
		                           tx ? strlen(tx) : 0, ht, ht ? strlen(ht) : 0, p->vals,
		                           p->nfields, camp->missing_empty ? TMPL_F_MISSING_EMPTY : 0,
		                           e, sizeof e);
		if (!p->t_email) {
			snprintf(err, errlen, "%s: email.%s", camp->path, e);
			return TOCSIN_ERR_INVAL;
		}
		if (p->o.dry && !p->o.digests)
			p->unsub = email_unsub_new("tocsin-preview-key-not-for-sending", 34,
			                           cfg->public_url ? cfg->public_url
			                                           : "https://preview.invalid",
			                           e, sizeof e);
		else
			p->unsub = email_unsub_from_cfg(cfg, e, sizeof e);
		if (!p->unsub) {
			snprintf(err, errlen, "%s: email unsubscribe links: %s", cfg->path, e);
			return TOCSIN_ERR_CONFIG;
		}
	}
	if (camp->sms_on &&
	    !(p->penc = penc_new(camp->id, camp->sms_sender, camp->priority, err, errlen)))
		return TOCSIN_ERR_INVAL;
	return 0;
}

/* The render buffers and the address sets (dedupe, opted out, already queued, failed). */
static int alloc_sets(prod_t *p, char *err, size_t errlen)
{
	p->body = malloc(SMS_BODY_CAP);
	p->ebuf = malloc(EMAIL_BUF_CAP);
	p->seen = aset_new(1 << 16, PROD_MAX_RECIPIENTS, err, errlen);
	p->sup = aset_new(1024, 0, err, errlen);
	p->already = aset_new(1024, 0, err, errlen);
	p->failed = aset_new(1024, 0, err, errlen);
	if (!p->body || !p->ebuf || !p->seen || !p->sup || !p->already || !p->failed)
		return TOCSIN_ERR_NOMEM;
	return 0;
}

/* The launch's directory and its files: checkpoint, rejects, report. */
static int output_paths(prod_t *p, char *err, size_t errlen)
{
	const camp_t *camp = p->camp;
	const prod_opts_t *o = &p->o;
	snprintf(p->dir, sizeof p->dir, "%s/launch/%s", p->cfg->var_dir, camp->id);
	snprintf(p->ckpt_path, sizeof p->ckpt_path, "%s/checkpoint.json", p->dir);
	snprintf(p->rejects_path, sizeof p->rejects_path, "%s",
	         o->rejects_path      ? o->rejects_path
	         : camp->rejects_path ? camp->rejects_path
	                              : "");
	if (!p->rejects_path[0])
		snprintf(p->rejects_path, sizeof p->rejects_path, "%s/%s", p->dir,
		         o->dry ? "preview-rejects.csv" : "rejects.csv");
	snprintf(p->report_path, sizeof p->report_path, "%s",
	         o->report_path      ? o->report_path
	         : camp->report_path ? camp->report_path
	                             : "");
	if (!p->report_path[0])
		snprintf(p->report_path, sizeof p->report_path, "%s/%s", p->dir,
		         o->dry ? "preview.json" : "report.json");
	if (mkdir_p(p->dir)) {
		snprintf(err, errlen, "cannot create %s: %s", p->dir, strerror(errno));
		return TOCSIN_ERR_IO;
	}
	return 0;
}

/* Opt-outs: the local cache, synced from tocsin.optouts when launching. */
static int load_optouts(prod_t *p, char *err, size_t errlen)
{
	optc_t *oc = optc_open(p->cfg, err, errlen);
	if (!oc)
		return TOCSIN_ERR_IO;
	int rc = 0;
	if (!p->o.dry && optc_sync(oc, p->cfg, p->o.kafka_timeout_ms, err, errlen))
		rc = TOCSIN_ERR_KAFKA;
	else if (optc_load(oc, p->sup, err, errlen))
		rc = TOCSIN_ERR_IO;
	optc_close(oc);
	return rc;
}

/* The checkpoint of an earlier launch of this campaign (*ck, NULL: none or --restart),
 * refused when unreadable or when the audience changed since. */
static int ckpt_load(prod_t *p, json_t **ck, char *err, size_t errlen)
{
	const camp_t *camp = p->camp;
	*ck = NULL;
	if (p->o.restart || access(p->ckpt_path, F_OK))
		return 0;
	json_error_t je;
	json_t *j = json_load_file(p->ckpt_path, 0, &je);
	if (!j || json_integer_value(json_object_get(j, "v")) != 1) {
		snprintf(err, errlen, "%s: unreadable checkpoint (%s); run again with --restart",
		         p->ckpt_path, j ? "wrong version" : je.text);
		json_decref(j);
		return TOCSIN_ERR_STATE;
	}
	if (json_integer_value(json_object_get(j, "audience_size")) != p->aud_size ||
	    strcmp(json_string_value(json_object_get(j, "audience")) ?: "", camp->aud_path)) {
		snprintf(err, errlen,
		         "%s: the audience changed since the launch this checkpoint belongs to (%s); "
		         "use --restart to start over",
		         p->ckpt_path, camp->aud_path);
		json_decref(j);
		return TOCSIN_ERR_STATE;
	}
	if (!json_is_true(json_object_get(j, "done"))) {
		p->ckpt_rows = json_integer_value(json_object_get(j, "rows"));
		/* an interrupted --resend-failed continues as one */
		if (json_is_true(json_object_get(j, "resend_failed")) && !p->o.resend_failed) {
			log_warn("event=resume_resend campaign=%s msg=\"continuing an interrupted "
			         "--resend-failed\"",
			         camp->id);
			p->o.resend_failed = 1;
		}
	}
	*ck = j;
	return 0;
}

/* The Kafka producer, with the delivery and error callbacks of prod_run.c. */
static int producer_open(prod_t *p, char *err, size_t errlen)
{
	rd_kafka_conf_t *conf = kq_conf_new(p->cfg, KQ_PRODUCER, "tocsin-launch", NULL, err, errlen);
	if (!conf)
		return TOCSIN_ERR_KAFKA;
	rd_kafka_conf_set_dr_msg_cb(conf, prod_dr_cb);
	rd_kafka_conf_set_error_cb(conf, prod_err_cb);
	rd_kafka_conf_set_opaque(conf, p);
	/* a lost broker fails the messages soon after broker_lost() gives up (the config wins) */
	if (!json_object_get(p->cfg->kafka, "message.timeout.ms")) {
		char mt[16];
		snprintf(mt, sizeof mt, "%d", PROD_BROKER_LOST_MS + 5000);
		rd_kafka_conf_set(conf, "message.timeout.ms", mt, NULL, 0);
	}
	p->rk = kq_new(conf, KQ_PRODUCER, p->o.kafka_timeout_ms, err, errlen);
	p->ack_ref_ms = clock_mono_ms();
	return p->rk ? 0 : TOCSIN_ERR_KAFKA;
}

/* Each outbox's partitions and where they end now (the first checkpoint). An outbox that
 * ends before the checkpoint's offsets was reset: the checkpoint (*ck) is dropped. */
static int outbox_ends(prod_t *p, json_t **ck, char *err, size_t errlen)
{
	for (int ch = 0; ch < 2; ch++) {
		if (!p->on[ch])
			continue;
		const char *topic = kq_outbox_topic_for((msg_channel_t)ch, p->camp->priority);
		p->nparts[ch] = prod_topic_parts(p->rk, topic);
		if (p->nparts[ch] <= 0) {
			snprintf(err, errlen, "Kafka topic %s does not exist", topic);
			return TOCSIN_ERR_KAFKA;
		}
		json_t *cko = *ck ? json_object_get(json_object_get(*ck, "offsets"),
		                                    msg_channel_name((msg_channel_t)ch))
		                  : NULL;
		for (int i = 0; i < p->nparts[ch]; i++) {
			int64_t lo = 0, hi = 0;
			if (rd_kafka_query_watermark_offsets(p->rk, topic, i, &lo, &hi, 5000))
				continue;
			p->offs[ch][i] = hi;
			/* the outbox ends before the checkpoint's offsets: it was reset (an
			 * embedded broker restarted, the topic recreated); nothing of the
			 * earlier launch is there any more */
			if (*ck && json_integer_value(json_array_get(cko, (size_t)i)) > hi) {
				log_warn("event=outbox_reset campaign=%s topic=%s partition=%d "
				         "checkpoint_offset=%lld high_watermark=%lld msg=\"the outbox was "
				         "reset since the last launch: launching from the start\"",
				         p->camp->id, topic, i,
				         (long long)json_integer_value(json_array_get(cko, (size_t)i)),
				         (long long)hi);
				json_decref(*ck);
				*ck = NULL;
				p->ckpt_rows = 0;
			}
		}
	}
	return 0;
}

/* The rejects file: truncated to what the checkpoint covered when resuming (rj_bytes),
 * else started over with its header. */
static int rejects_reopen(prod_t *p, int64_t rj_bytes, char *err, size_t errlen)
{
	p->rejects = rejects_open(p->rejects_path, p->resuming ? "r+" : "w");
	if (!p->rejects && p->resuming)
		p->rejects = rejects_open(p->rejects_path, "w"), rj_bytes = 0;
	if (!p->rejects) {
		snprintf(err, errlen, "%s: %s", p->rejects_path, strerror(errno));
		return TOCSIN_ERR_IO;
	}
	if (p->resuming && rj_bytes > 0) {
		if (ftruncate(fileno(p->rejects), (off_t)rj_bytes) || fseek(p->rejects, 0, SEEK_END)) {
			snprintf(err, errlen, "%s: %s", p->rejects_path, strerror(errno));
			return TOCSIN_ERR_IO;
		}
	} else {
		if (ftruncate(fileno(p->rejects), 0)) {
			snprintf(err, errlen, "%s: %s", p->rejects_path, strerror(errno));
			return TOCSIN_ERR_IO;
		}
		fputs("where,channel,value,reason\n", p->rejects);
	}
	return 0;
}

/* Flow control: one consumer per channel in the dispatchers' group, to read their lag
 * (--max-lag; auto = from record sizes on the embedded broker, unbounded on a real one). */
static int lag_consumers(prod_t *p, char *err, size_t errlen)
{
	json_t *bs = json_object_get(p->cfg->kafka, "bootstrap.servers");
	int embedded = !(json_is_string(bs) && json_string_length(bs) > 0);
	if (p->o.max_lag < 0)
		p->o.max_lag = embedded ? -1 : 0; /* -1 stays: computed from record sizes */
	if (p->o.max_lag == 0)
		return 0;
	for (int ch = 0; ch < 2; ch++) {
		if (!p->on[ch])
			continue;
		char gid[64];
		kq_dispatch_group((msg_channel_t)ch, gid, sizeof gid);
		p->lag_rk[ch] = kq_consumer_new(p->cfg, KQ_G_LAUNCH_PREFIX "lag", gid,
		                                p->o.kafka_timeout_ms, err, errlen);
		if (!p->lag_rk[ch])
			return TOCSIN_ERR_KAFKA;
	}
	return 0;
}

/* The launch proper (not a preview): the checkpoint, the holding store, the producer,
 * what a resume or --resend-failed must skip, the rejects file, the campaign watch and
 * the lag consumers. 1: the campaign had finished before (st.already_done), 0 ready. */
static int launch_setup(prod_t *p, char *err, size_t errlen)
{
	const camp_t *camp = p->camp;
	json_t *ck = NULL;
	if (ckpt_load(p, &ck, err, errlen))
		return TOCSIN_ERR_STATE;
	/* a fresh launch refuses a send_at in the past (a resumed one goes on) */
	if (!ck && camp->send_at_ms && camp->send_at_ms < clock_wall_ms() - SEND_AT_GRACE_MS) {
		snprintf(err, errlen,
		         "%s: send_at: it is in the past (more than %d minutes ago); use "
		         "\"now\" or a later time; nothing queued",
		         camp->path, SEND_AT_GRACE_MS / 60000);
		return TOCSIN_ERR_INVAL;
	}
	if (!(p->hold = hold_open(p->cfg, err, errlen)) || producer_open(p, err, errlen) ||
	    outbox_ends(p, &ck, err, errlen)) {
		json_decref(ck);
		return TOCSIN_ERR_KAFKA;
	}
	int done = ck && json_is_true(json_object_get(ck, "done"));
	if (done && !p->o.resend_failed) {
		p->st.already_done = 1;
		p->st.queued = json_integer_value(json_object_get(ck, "queued"));
		json_decref(ck);
		return 1;
	}
	if (ck && p->ckpt_rows >= 0 && !done &&
	    prod_scan_already(p, json_object_get(ck, "offsets"), err, errlen)) {
		json_decref(ck);
		return TOCSIN_ERR_KAFKA;
	}
	int64_t rj_bytes = ck ? json_integer_value(json_object_get(ck, "rejects_bytes")) : 0;
	p->resuming = ck && !done;
	json_decref(ck);
	if (p->o.resend_failed && prod_load_failed(p, err, errlen))
		return TOCSIN_ERR_KAFKA;
	if (rejects_reopen(p, rj_bytes, err, errlen))
		return TOCSIN_ERR_IO;
	/* operator controls on tocsin.campaigns */
	if (prod_watch_start(p, err, errlen))
		return TOCSIN_ERR_KAFKA;
	if (p->camp_state == MSG_CAMP_CANCELLED) {
		snprintf(err, errlen,
		         "campaign %s was cancelled (%s); a cancelled campaign is never sent again: "
		         "launch it under a new id",
		         camp->id, KQ_T_CAMPAIGNS);
		return TOCSIN_ERR_STATE;
	}
	return lag_consumers(p, err, errlen);
}

prod_t *prod_new(const cfg_t *cfg, const camp_t *camp, const prod_opts_t *o, char *err, size_t errlen)
{
	prod_t *p = calloc(1, sizeof *p);
	if (!p) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	p->cfg = cfg;
	p->camp = camp;
	p->o = *o;
	if (!p->o.ckpt_every_ms)
		p->o.ckpt_every_ms = 1000;
	if (!p->o.kafka_timeout_ms)
		p->o.kafka_timeout_ms = 10000;
	if (!p->o.out)
		p->o.out = stdout;
	p->t0_ms = clock_mono_ms();
	p->on[MSG_CH_SMS] = camp->sms_on;
	p->on[MSG_CH_EMAIL] = camp->email_on;
	buf_init(&p->rec, 4 * 1024 * 1024);
	buf_init(&p->srec, 1024);

	if (open_audience(p, err, errlen) || sched_setup(p, err, errlen) ||
	    compile_templates(p, err, errlen) || alloc_sets(p, err, errlen) ||
	    output_paths(p, err, errlen) || load_optouts(p, err, errlen))
		goto fail;
	if (p->o.dry) {
		p->rejects = rejects_open(p->rejects_path, "w");
		if (!p->rejects) {
			snprintf(err, errlen, "%s: %s", p->rejects_path, strerror(errno));
			goto fail;
		}
		fputs("where,channel,value,reason\n", p->rejects);
		return p;
	}
	if (launch_setup(p, err, errlen) < 0)
		goto fail;
	return p;
fail:
	prod_free(p);
	return NULL;
}

void prod_free(prod_t *p)
{
	if (!p)
		return;
	if (p->watchdog_on) {
		__atomic_store_n(&p->watchdog_stop, 1, __ATOMIC_SEQ_CST);
		pthread_join(p->watchdog, NULL);
	}
	if (__atomic_load_n(&p->down_mono_ms, __ATOMIC_SEQ_CST)) {
		/* the broker is gone: closing the clients would wait for it (librdkafka 2.0
		 * blocks ~10 s per consumer); the process is exiting, leave them to the OS */
		log_warn("event=kafka_clients_abandoned msg=\"the broker is unreachable: not closing "
		         "the Kafka clients\"");
		p->rk = p->lag_rk[0] = p->lag_rk[1] = p->watch = NULL;
	}
	if (p->rk) {
		rd_kafka_flush(p->rk, 10000);
		rd_kafka_destroy(p->rk);
	}
	for (int ch = 0; ch < 2; ch++)
		if (p->lag_rk[ch]) {
			rd_kafka_destroy(p->lag_rk[ch]);
		}
	if (p->watch) {
		rd_kafka_consumer_close(p->watch);
		rd_kafka_destroy(p->watch);
	}
	if (p->rejects)
		fclose(p->rejects);
	aud_free(p->aud);
	tmpl_free(p->t_sms);
	penc_free(p->penc);
	email_free(p->t_email);
	email_unsub_free(p->unsub);
	free(p->vals);
	free(p->lens);
	free(p->body);
	free(p->ebuf);
	buf_free(&p->rec);
	buf_free(&p->srec);
	aset_free(p->seen);
	aset_free(p->sup);
	aset_free(p->already);
	aset_free(p->failed);
	hold_close(p->hold);
	tzdb_free(p->tzdb);
	free(p);
}

const prod_stats_t *prod_stats(const prod_t *p) { return &p->st; }
const char *prod_rejects_path(const prod_t *p) { return p->rejects_path; }
const char *prod_report_path(const prod_t *p) { return p->report_path; }
