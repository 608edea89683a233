/* prod_run.c -- the launch loop: rows -> rendered outbox records, the broker watch, delivery epochs and the checkpoint. */
#include "producer/prod_int.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/msg.h"
#include "core/sig.h"
#include "producer/addr.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---------------------------------------------------------------- rejects */

static void count_reason(prod_stats_t *st, const char *why)
{
	char key[96];
	size_t k = 0;
	for (const char *s = why; *s && k < sizeof key - 1; s++) {
		/* a standalone number ("2 fields, the header has 3") becomes N */
		const char *e = s;
		while (*e >= '0' && *e <= '9')
			e++;
		if (e > s && (s == why || s[-1] == ' ') &&
		    (!*e || *e == ' ' || *e == ',' || *e == ')')) {
			while (s[1] >= '0' && s[1] <= '9')
				s++;
			key[k++] = 'N';
		} else {
			key[k++] = *s;
		}
	}
	key[k] = 0;
	for (int i = 0; i < st->nreasons; i++)
		if (!strcmp(st->reasons[i].text, key)) {
			st->reasons[i].n++;
			return;
		}
	if (st->nreasons < PROD_MAX_REASONS) {
		snprintf(st->reasons[st->nreasons].text, sizeof st->reasons[0].text, "%s", key);
		st->reasons[st->nreasons++].n = 1;
	} else {
		st->reasons_other++;
	}
}

static void csv_field(FILE *f, const char *s, size_t n)
{
	size_t lim = n > 200 ? 200 : n;
	fputc('"', f);
	for (size_t i = 0; i < lim; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"')
			fputs("\"\"", f);
		else if (c < 0x20 && c != '\t')
			fputc('?', f);
		else
			fputc(c, f);
	}
	if (n > lim)
		fprintf(f, "...(%zu bytes)", n);
	fputc('"', f);
}

static void reject(prod_t *p, int64_t line, const char *channel, const char *val, size_t vlen,
                   const char *why)
{
	count_reason(&p->st, why);
	if (!p->rejects)
		return;
	fprintf(p->rejects, "%s:%lld,%s,", p->camp->aud_path, (long long)line, channel);
	csv_field(p->rejects, val ? val : "", val ? vlen : 0);
	fputc(',', p->rejects);
	csv_field(p->rejects, why, strlen(why));
	fputc('\n', p->rejects);
}

/* ------------------------------------------------------------ Kafka side */

/* The broker stopped answering (why: what showed it): the clock of broker_lost()
 * starts, with one line. Launch thread only. */
static void broker_down(prod_t *p, const char *why)
{
	int64_t zero = 0, now = clock_mono_ms(), wall = clock_wall_ms();
	if (!__atomic_compare_exchange_n(&p->down_mono_ms, &zero, now, 0, __ATOMIC_SEQ_CST,
	                                 __ATOMIC_SEQ_CST))
		return;
	__atomic_store_n(&p->down_wall_ms, wall, __ATOMIC_SEQ_CST);
	char ts[32];
	clock_iso8601(wall, ts, sizeof ts);
	int n = p->rk ? rd_kafka_outq_len(p->rk) : 0;
	log_error("event=broker_unreachable since=%s unconfirmed=%d reason=\"%s\" msg=\"Kafka "
	          "broker unreachable since %s: %d messages not confirmed; the launch gives up "
	          "after %d s unless it comes back\"",
	          ts, n, why, ts, n, PROD_BROKER_LOST_MS / 1000);
}

static void broker_up(prod_t *p)
{
	if (__atomic_exchange_n(&p->down_mono_ms, 0, __ATOMIC_SEQ_CST))
		log_info("event=broker_reachable msg=\"Kafka answers again\"");
}

/* Messages waiting with no delivery report for PROD_ACK_STALL_MS: the broker is gone
 * (launch thread). */
static void ack_watch(prod_t *p)
{
	int64_t now = clock_mono_ms();
	if (!p->rk || rd_kafka_outq_len(p->rk) == 0)
		p->ack_ref_ms = now;
	else if (now - p->ack_ref_ms >= PROD_ACK_STALL_MS)
		broker_down(p, "no delivery report for 3 s");
}

/* The watchdog thread: a metadata request every second, unanswered in 500 ms = the broker
 * is gone, answered = it is there (the tracker asks the same way). Its own thread, so the
 * loss is seen while the launch thread waits in a call to the broker that is gone. */
static void *watchdog_main(void *arg)
{
	prod_t *p = arg;
	while (!__atomic_load_n(&p->watchdog_stop, __ATOMIC_SEQ_CST)) {
		const struct rd_kafka_metadata *md = NULL;
		rd_kafka_resp_err_t e = rd_kafka_metadata(p->rk, 0, NULL, &md, 500);
		if (md)
			rd_kafka_metadata_destroy(md);
		if (e)
			broker_down(p, rd_kafka_err2str(e));
		else
			broker_up(p);
		for (int i = 0; i < 10 && !__atomic_load_n(&p->watchdog_stop, __ATOMIC_SEQ_CST); i++)
			usleep(50 * 1000);
	}
	return NULL;
}

void prod_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk;
	prod_t *p = opaque;
	if (m->err) {
		if (!p->st.delivery_failed)
			snprintf(p->errstr, sizeof p->errstr, "%s", rd_kafka_err2str(m->err));
		p->st.delivery_failed++;
		return;
	}
	broker_up(p);
	uintptr_t op = (uintptr_t)m->_private, ch = op & 3;
	if (ch >= 1 && ch <= 2) {
		struct epoch *e = &p->ep[(op >> 2) % EPOCHS];
		e->delivered++;
		if (m->partition >= 0 && m->partition < MAXPART &&
		    m->offset + 1 > e->offs[ch - 1][m->partition])
			e->offs[ch - 1][m->partition] = m->offset + 1;
	}
}

/* librdkafka's errors (on the launch's thread, from rd_kafka_poll): every broker
 * connection down is one sign of a lost broker. */
void prod_err_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	(void)rk;
	prod_t *p = opaque;
	if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
		broker_down(p, reason);
	else
		log_warn("event=kafka_error err=\"%s\" reason=\"%s\"", rd_kafka_err2str(err), reason);
}

/* Has the broker been unreachable for PROD_BROKER_LOST_MS? */
static int broker_lost(prod_t *p)
{
	int64_t since = __atomic_load_n(&p->down_mono_ms, __ATOMIC_SEQ_CST);
	return since && clock_mono_ms() - since >= PROD_BROKER_LOST_MS;
}

/* --resend-failed: a message re-queued with attempt >= 1 gets a `queued` status
 * record carrying that attempt, so its latest outcome is no longer the failure
 * and a second --resend-failed before it is sent leaves it out ("already
 * re-queued") instead of queueing it twice (producer/README.md). */
static int produce_requeued(prod_t *p, const msg_out_t *m)
{
	msg_status_t s = {.id = m->id,
	                  .campaign = m->campaign,
	                  .channel = m->channel,
	                  .to = m->to,
	                  .state = MSG_ST_QUEUED,
	                  .detail = "re-queued by --resend-failed",
	                  .latency_ms = -1,
	                  .attempt = m->attempt,
	                  .ts_ms = clock_wall_ms()};
	buf_reset(&p->srec);
	int rc = msg_status_encode(&s, &p->srec);
	if (!rc)
		rc = kq_produce(p->rk, KQ_T_STATUS, m->id, strlen(m->id), p->srec.p, p->srec.len, NULL);
	return rc;
}

static int produce_campaign(prod_t *p, msg_camp_state_t state, int64_t queued)
{
	buf_t b;
	buf_init(&b, 4096);
	msg_campaign_t c = {.id = p->camp->id,
	                    .name = p->camp->name,
	                    .state = state,
	                    .queued = queued,
	                    .qh_urgent = p->camp->qh_urgent,
	                    .ts_ms = clock_wall_ms()};
	/* launched ahead of its send_at: "scheduled" (tocsin hold makes it running) */
	if (p->camp->send_at_ms > clock_wall_ms() && state != MSG_CAMP_LAUNCHING) {
		c.state = MSG_CAMP_SCHEDULED;
		c.send_at_ms = p->camp->send_at_ms;
	}
	int rc = msg_campaign_encode(&c, &b);
	if (!rc)
		rc = kq_produce(p->rk, KQ_T_CAMPAIGNS, p->camp->id, strlen(p->camp->id), b.p, b.len,
		                NULL);
	buf_free(&b);
	return rc;
}

/* lag of channel ch: high watermarks minus the dispatcher group's committed offsets */
static int64_t channel_lag(prod_t *p, int ch)
{
	if (!p->lag_rk[ch])
		return 0;
	int64_t lag = kq_group_lag(p->rk, p->lag_rk[ch],
	                           kq_outbox_topic_for((msg_channel_t)ch, p->camp->priority),
	                           p->nparts[ch]);
	return lag < 0 ? p->lag_cached : lag;
}

static int64_t total_lag(prod_t *p)
{
	int64_t lag = 0;
	for (int ch = 0; ch < 2; ch++)
		if (p->on[ch])
			lag += channel_lag(p, ch);
	p->lag_cached = lag;
	return lag;
}

/* ------------------------------------------------------------ checkpoint */

static int ckpt_write(prod_t *p, int done)
{
	if (p->o.dry || !p->rk)
		return 0;
	/* a finished checkpoint covers every row read: a launch marked done is never resumed */
	if (p->ck_rows > p->st.read || (done && p->ck_rows != p->st.read))
		tocsin_panic("campaign %s: checkpoint at row %lld (done=%d) after %lld rows read",
		             p->camp->id, (long long)p->ck_rows, done, (long long)p->st.read);
	if (p->rejects)
		fflush(p->rejects);
	json_t *j = json_object();
	json_object_set_new(j, "v", json_integer(1));
	json_object_set_new(j, "campaign", json_string(p->camp->id));
	json_object_set_new(j, "audience", json_string(p->camp->aud_path));
	json_object_set_new(j, "audience_size", json_integer(p->aud_size));
	json_object_set_new(j, "audience_mtime", json_integer(p->aud_mtime));
	json_object_set_new(j, "rows", json_integer(p->ck_rows));
	json_object_set_new(j, "queued", json_integer(p->ck_queued));
	json_object_set_new(j, "done", json_boolean(done));
	json_object_set_new(j, "resend_failed", json_boolean(p->o.resend_failed));
	json_object_set_new(j, "rejects_bytes", json_integer(p->ck_rj));
	json_object_set_new(j, "ts_ms", json_integer(clock_wall_ms()));
	json_t *offs = json_object();
	for (int ch = 0; ch < 2; ch++) {
		if (!p->on[ch])
			continue;
		json_t *a = json_array();
		for (int i = 0; i < p->nparts[ch]; i++)
			json_array_append_new(a, json_integer(p->offs[ch][i]));
		json_object_set_new(offs, msg_channel_name((msg_channel_t)ch), a);
	}
	json_object_set_new(j, "offsets", offs);
	char tmp[4200];
	snprintf(tmp, sizeof tmp, "%s.tmp", p->ckpt_path);
	int rc = json_dump_file(j, tmp, JSON_COMPACT);
	json_decref(j);
	if (rc || rename(tmp, p->ckpt_path)) {
		log_error("event=checkpoint_failed path=%s err=\"%s\"", p->ckpt_path, strerror(errno));
		return TOCSIN_ERR_IO;
	}
	return 0;
}

/* ------------------------------------------------------------- the loop */

enum { R_QUEUED, R_REJECTED, R_SUPPRESSED, R_DUP, R_NONE };

/* When the message of channel ch to addr (the row in p->vals) may go: *due = base (now,
 * or send_at), or later when its recipient's quiet-hours window is closed then, with the
 * zone set in *set. Returns 0; 1 when the window does not open before expires (never
 * sent: expired, reason in why); -1 when the row is rejected (why). */
static int due_of(prod_t *p, int ch, const char *addr, int64_t now, int64_t expires, int64_t *due,
                  int64_t *close, tzdb_set_t **set, char *why, size_t whylen)
{
	int64_t base = p->camp->send_at_ms > now ? p->camp->send_at_ms : now;
	*due = base;
	*close = 0;
	*set = NULL;
	if (!p->qh_on[ch])
		return 0;
	const char *v[3] = {NULL, NULL, NULL};
	size_t l[3] = {0, 0, 0};
	for (int k = 0; k < 3; k++)
		if (p->tzcol[k] >= 0 && p->vals[p->tzcol[k]])
			v[k] = p->vals[p->tzcol[k]], l[k] = p->lens[p->tzcol[k]];
	tzdb_src_t src;
	int rc;
	char e[160];
	tzdb_set_t *s = (tzdb_set_t *)tzdb_lookup(p->tzdb, v[0], l[0], v[1], l[1], v[2], l[2],
	                                          ch == MSG_CH_SMS ? addr : NULL, &src, &rc, e,
	                                          sizeof e);
	if (!s) {
		if (rc)
			snprintf(why, whylen, "invalid timezone: %s", e);
		else
			snprintf(why, whylen,
			         "no time zone for quiet hours (no timezone, zip or state, "
			         "and no known phone prefix)");
		return -1;
	}
	*set = s;
	/* one window computation per zone set while its answer holds (base only grows) */
	if (ch != MSG_CH_SMS || base >= s->c_valid_until) {
		int64_t o = 0, c = 0;
		if (tz_next_open((const tz_t *const *)s->z, s->n, p->qh[ch], base, QH_HORIZON_MS,
		                 &o, &c)) {
			s->c_state = 2; /* never */
			s->c_valid_until = base + 3600000;
		} else if (o <= base) {
			s->c_state = 1; /* open at base */
			s->c_open_ms = base;
			s->c_close_ms = c;
			s->c_valid_until = c;
		} else {
			s->c_state = 0; /* opens at o */
			s->c_open_ms = o;
			s->c_close_ms = c;
			s->c_valid_until = o;
		}
		if (ch != MSG_CH_SMS)
			s->c_valid_until = INT64_MIN;
	}
	if (s->c_state == 2 || (s->c_state == 0 && expires > 0 && s->c_open_ms >= expires)) {
		snprintf(why, whylen, "quiet hours: the window %s before the message expires (%.60s)",
		         s->c_state == 2 ? "is never open in every zone at once" : "does not open",
		         s->key);
		return 1;
	}
	*due = s->c_state == 1 ? base : s->c_open_ms;
	*close = s->c_close_ms;
	return 0;
}

/* An expired status record for a message whose window does not open in time. */
static int produce_expired(prod_t *p, const char *id, int ch, const char *addr, const char *why)
{
	msg_status_t s = {.id = id,
	                  .campaign = p->camp->id,
	                  .channel = (msg_channel_t)ch,
	                  .to = addr,
	                  .state = MSG_ST_EXPIRED,
	                  .code = "quiet_hours",
	                  .detail = why,
	                  .latency_ms = -1,
	                  .ts_ms = clock_wall_ms()};
	buf_reset(&p->srec);
	int rc = msg_status_encode(&s, &p->srec);
	if (!rc)
		rc = kq_produce(p->rk, KQ_T_STATUS, id, strlen(id), p->srec.p, p->srec.len, NULL);
	return rc;
}

/* One message being made: channel ch of the row in p->vals. */
typedef struct one {
	int ch;
	const aud_row_t *r;
	int replay; /* rebuilding the dedupe set from the checkpoint: produce nothing */
	const char *chn, *raw;
	size_t rawlen;
	char addr[ADDR_MAX];
	size_t alen;
	int64_t now, due, close, expires;
	tzdb_set_t *zset;
	int dr; /* due_of(): 0 goes (now or held until due), 1 expires unsent */
	int held;
	msg_out_t m;
	size_t blen; /* SMS body length */
	int eform;   /* email: the form it is queued in */
	sms_info_t info;
	char digest[EMAIL_DIGEST_HEX];
	char id[MSG_ID_LEN + 1];
	char reason[200];
} one_t;

/* The message is refused (x->reason): a rejects line (not when replaying), counted. */
static int refuse(prod_t *p, const one_t *x, int *outcome)
{
	if (!x->replay)
		reject(p, x->r->line, x->chn, x->raw, x->rawlen, x->reason);
	p->st.ch_rejected[x->ch]++;
	*outcome = R_REJECTED;
	return 0;
}

/* The address normalized and looked up in the opt-outs and the dedupe set, then when
 * it may go. 1: decided here (*outcome), 0: render it. */
static int check_address(prod_t *p, one_t *x, uint64_t *key, int *outcome)
{
	const char *why = NULL;
	int ch = x->ch;
	int rc = ch == MSG_CH_SMS ? addr_phone_norm(x->raw, x->rawlen, x->addr, &why)
	                          : addr_email_norm(x->raw, x->rawlen, x->addr, &why);
	if (rc) {
		snprintf(x->reason, sizeof x->reason, "invalid %s: %s", ch ? "email" : "phone", why);
		return !refuse(p, x, outcome);
	}
	x->alen = strlen(x->addr);
	*key = aset_key(ch, x->addr, x->alen);
	if (aset_has(p->sup, *key)) {
		p->st.ch_suppressed[ch]++;
		*outcome = R_SUPPRESSED;
		return 1;
	}
	if (aset_has(p->seen, *key)) {
		p->st.ch_duplicates[ch]++;
		*outcome = R_DUP;
		return 1;
	}
	x->now = clock_wall_ms();
	x->expires = p->camp->expires_s ? p->created_ms + p->camp->expires_s * 1000 : 0;
	x->dr = due_of(p, ch, x->addr, x->now, x->expires, &x->due, &x->close, &x->zset, x->reason,
	               sizeof x->reason);
	if (x->dr < 0)
		return !refuse(p, x, outcome);
	return 0;
}

/* The SMS body into p->body: rendered, then finished (smart characters, footer, segments). */
static int render_sms(prod_t *p, one_t *x)
{
	tmpl_why_t tw;
	int rc = tmpl_render(p->t_sms, p->vals, p->lens, p->body, SMS_BODY_CAP, &x->blen, &tw);
	if (rc) {
		snprintf(x->reason, sizeof x->reason, "%s",
		         rc == TOCSIN_ERR_TOOBIG ? "message too long" : tw.reason);
	} else {
		sms_opts_t so = {.smart = p->camp->sms_smart,
		                 .max_segments = p->camp->sms_max_segments,
		                 .footer = p->camp->sms_footer};
		int nrep = 0;
		rc = sms_finish(p->body, &x->blen, SMS_BODY_CAP, &so, &x->info, &nrep,
		                p->o.dry ? p->st.replaced_kind : NULL, x->reason, sizeof x->reason);
		p->st.replaced += nrep;
	}
	x->m.body = p->body;
	x->m.enc = sms_enc_name(x->info.enc);
	x->m.segments = x->info.segments;
	return rc;
}

/* The email's parts into p->ebuf. */
static int render_email(prod_t *p, one_t *x)
{
	tmpl_why_t tw;
	email_parts_t ep;
	/* the outbox gets the shared parts with a placeholder per piece and the
	 * pieces in "subs", so the dispatcher can batch them; preview shows them
	 * inline, and counts the form a launch would queue */
	int rc = email_render_subs(p->t_email, p->unsub, p->camp->id, x->addr, x->alen, p->vals,
	                           p->lens, p->ebuf, EMAIL_BUF_CAP, &ep, &tw);
	x->eform = ep.inline_why;
	if (!rc && p->o.dry)
		rc = email_render(p->t_email, p->unsub, p->camp->id, x->addr, x->alen, p->vals,
		                  p->lens, p->ebuf, EMAIL_BUF_CAP, &ep, &tw);
	if (rc)
		snprintf(x->reason, sizeof x->reason, "%s",
		         rc == TOCSIN_ERR_TOOBIG ? "message too long" : tw.reason);
	x->m.subject = ep.subject;
	x->m.text = ep.text;
	x->m.html = ep.html;
	x->m.headers = ep.headers;
	x->m.subs = ep.subs;
	x->m.segments = 1;
	if (!rc && p->o.digests)
		email_digest(ep.subject, ep.subject_len, ep.text, ep.text_len, ep.html, ep.html_len,
		             x->digest);
	return rc;
}

/* A queued message counted: by encoding and segments or email form, held or expired,
 * and (preview) by zone. */
static void count_queued(prod_t *p, one_t *x)
{
	int ch = x->ch;
	p->st.ch_queued[ch]++;
	if (ch == MSG_CH_SMS) {
		p->st.by_enc[x->info.enc]++;
		p->st.seg_hist[x->info.segments > PROD_MAX_SEGS ? PROD_MAX_SEGS : x->info.segments]++;
		p->st.segments += x->info.segments;
	} else
		p->st.email_form[x->eform]++;
	x->held = x->dr == 0 && x->due > x->now + 1000;
	if (x->dr == 1) {
		p->st.expired++;
	} else if (x->held) {
		p->st.held++;
		if (!p->st.first_due_ms || x->due < p->st.first_due_ms)
			p->st.first_due_ms = x->due;
		if (x->due > p->st.last_due_ms)
			p->st.last_due_ms = x->due;
	}
	if (p->o.dry) {
		tzdb_set_t *z = x->zset;
		int64_t *cnt = z         ? (x->held ? &z->held : &z->now)
		               : x->held ? &p->sa_held
		                         : &p->sa_now;
		*cnt += x->dr == 0;
		if (z && x->held && x->due > z->last_ms)
			z->last_ms = x->due;
	}
}

/* Preview: the email's digest line, and the first preview_n messages printed. */
static void preview_one(prod_t *p, const one_t *x)
{
	if (p->o.digests && x->ch == MSG_CH_EMAIL)
		fprintf(p->o.digests, "%s %s\n", x->addr, x->digest);
	if (p->printed >= p->o.preview_n)
		return;
	p->printed++;
	FILE *f = p->o.out;
	const msg_out_t *m = &x->m;
	if (x->ch == MSG_CH_SMS)
		fprintf(f, "--- %d. %s:%lld sms to %s (%s, %d segment%s, %zu bytes)\n%s\n",
		        p->printed, p->camp->aud_path, (long long)x->r->line, x->addr, m->enc,
		        m->segments, m->segments == 1 ? "" : "s", x->blen, p->body);
	else
		fprintf(f, "--- %d. %s:%lld email to %s\nSubject: %s\n%s%s%s%s\n", p->printed,
		        p->camp->aud_path, (long long)x->r->line, x->addr, m->subject,
		        m->text ? "\n" : "", m->text ? m->text : "", m->html ? "\n[html]\n" : "",
		        m->html ? m->html : "");
}

/* The outbox record of the message, into p->rec. */
static int encode_one(prod_t *p, one_t *x)
{
	msg_out_t *m = &x->m;
	int ch = x->ch;
	m->id = x->id;
	m->campaign = p->camp->id;
	m->channel = (msg_channel_t)ch;
	m->to = x->addr;
	m->sender = ch == MSG_CH_SMS ? p->camp->sms_sender : p->camp->email_sender;
	m->priority = p->camp->priority;
	m->created_ms = p->created_ms;
	/* a message not sent before its recipient's window closes expires then: the
	 * dispatchers never send it outside the window (--resend-failed holds it again) */
	m->expires_ms = x->close > 0 && (x->expires == 0 || x->close < x->expires) ? x->close
	                                                                           : x->expires;
	m->attempt = p->o.resend_failed ? 1 : 0;
	buf_reset(&p->rec);
	if (ch == MSG_CH_SMS)
		return penc_sms(p->penc, &p->rec, x->id, x->addr, x->alen, p->body, x->blen, m->enc,
		                m->segments, m->created_ms, m->expires_ms, m->attempt);
	return msg_out_encode(m, &p->rec);
}

/* The encoded message goes: its expired status (window never opens in time), into the
 * holding store (due later), or to the outbox in the current epoch. */
static int send_one(prod_t *p, one_t *x)
{
	int ch = x->ch, rc;
	const char *topic = kq_outbox_topic_for((msg_channel_t)ch, p->camp->priority);
	if (x->dr == 1)
		return produce_expired(p, x->id, ch, x->addr, x->reason);
	if (x->held) {
		/* durable with the next checkpoint (hold_commit in epoch_close) */
		if (hold_put(p->hold, x->id, p->camp->id, topic, x->addr, x->due, x->m.expires_ms,
		             x->zset ? x->zset->key : "", p->rec.p, p->rec.len, p->created_ms,
		             p->o.resend_failed)) {
			log_error("event=hold_failed campaign=%s id=%s", p->camp->id, x->id);
			return TOCSIN_ERR_IO;
		}
		/* a resend held for its window is re-queued all the same (a second
		 * --resend-failed leaves it out) */
		return p->o.resend_failed ? produce_requeued(p, &x->m) : 0;
	}
	rc = kq_produce(p->rk, topic, x->addr, x->alen, p->rec.p, p->rec.len,
	                (void *)(uintptr_t)(((uintptr_t)(p->ep_cur % EPOCHS) << 2) |
	                                    (uintptr_t)(ch + 1)));
	if (rc)
		return rc;
	if (p->o.resend_failed && (rc = produce_requeued(p, &x->m)))
		return rc;
	p->ep[p->ep_cur % EPOCHS].produced++;
	p->st.produced++;
	p->bytes_produced += (int64_t)p->rec.len;
	return 0;
}

/* Render and produce (or count) one channel for the row in p->vals. */
static int do_channel(prod_t *p, int ch, const aud_row_t *r, int replay, int *outcome)
{
	one_t x = {.ch = ch,
	           .r = r,
	           .replay = replay,
	           .chn = msg_channel_name((msg_channel_t)ch),
	           .raw = p->vals[p->col[ch]],
	           .rawlen = p->lens[p->col[ch]]};
	uint64_t key = 0;
	*outcome = R_NONE;
	if (!x.raw || x.rawlen == 0)
		return 0; /* no address for this channel: decided by the caller */
	if (check_address(p, &x, &key, outcome))
		return 0;
	if (ch == MSG_CH_SMS ? render_sms(p, &x) : render_email(p, &x))
		return refuse(p, &x, outcome);
	if (aset_add(p->seen, key) < 0) {
		log_error("event=dedupe_full campaign=%s entries=%zu msg=\"more than %d distinct "
		          "addresses in one launch, or out of memory\"",
		          p->camp->id, aset_count(p->seen), PROD_MAX_RECIPIENTS);
		return TOCSIN_ERR_TOOBIG;
	}
	msg_make_id(p->camp->id, x.chn, x.addr, x.id);
	if (p->o.resend_failed && !replay && !aset_has(p->failed, hash64(x.id, MSG_ID_LEN, 0))) {
		p->st.resend_skipped++;
		*outcome = R_NONE;
		return 0;
	}
	*outcome = R_QUEUED;
	count_queued(p, &x);
	if (replay)
		return 0;
	if (p->o.dry) {
		preview_one(p, &x);
		return 0;
	}
	if (aset_count(p->already) && aset_has(p->already, hash64(x.id, MSG_ID_LEN, 0))) {
		p->st.already++;
		return 0;
	}
	if (encode_one(p, &x)) {
		snprintf(x.reason, sizeof x.reason, "record too large");
		reject(p, r->line, x.chn, x.raw, x.rawlen, x.reason);
		p->st.ch_queued[ch]--;
		p->st.ch_rejected[ch]++;
		*outcome = R_REJECTED;
		return 0;
	}
	return send_one(p, &x);
}

static int do_row(prod_t *p, int arc, aud_row_t *r, int replay)
{
	p->st.read++;
	if (arc < 0) {
		/* a bad row: report its phone (or first) value when there is one */
		int c = p->col[p->on[MSG_CH_SMS] ? MSG_CH_SMS : MSG_CH_EMAIL];
		const char *v = c >= 0 && (size_t)c < r->n ? r->vals[c] : NULL;
		size_t vl = v ? r->lens[c] : 0;
		if (!replay)
			reject(p, r->line, "-", v, vl, r->why);
		p->st.rejected++;
		return 0;
	}
	size_t nc = p->nfields;
	for (size_t i = 0; i < nc; i++) {
		p->vals[i] = r->vals[i];
		p->lens[i] = r->vals[i] ? r->lens[i] : 0;
	}
	int out[2] = {R_NONE, R_NONE}, have = 0;
	for (int ch = 0; ch < 2; ch++) {
		if (!p->on[ch])
			continue;
		int rc = do_channel(p, ch, r, replay, &out[ch]);
		if (rc)
			return rc;
		if (p->vals[p->col[ch]] && p->lens[p->col[ch]])
			have = 1;
	}
	if (out[0] == R_QUEUED || out[1] == R_QUEUED)
		p->st.queued++;
	else if (out[0] == R_REJECTED || out[1] == R_REJECTED)
		p->st.rejected++;
	else if (out[0] == R_SUPPRESSED || out[1] == R_SUPPRESSED)
		p->st.suppressed++;
	else if (out[0] == R_DUP || out[1] == R_DUP)
		p->st.duplicates++;
	else if (!have) {
		char why[160];
		snprintf(why, sizeof why, "missing %s",
		         p->on[0] && p->on[1] ? "phone and email"
		         : p->on[0]           ? "phone"
		                              : "email");
		int c = p->col[p->on[MSG_CH_SMS] ? MSG_CH_SMS : MSG_CH_EMAIL];
		if (!replay)
			reject(p, r->line,
			       p->on[0] && p->on[1]
			           ? "-"
			           : msg_channel_name(p->on[0] ? MSG_CH_SMS : MSG_CH_EMAIL),
			       "", 0, why);
		(void)c;
		p->st.rejected++;
	} else {
		p->st.queued++; /* --resend-failed: not failed before, counted as queued earlier */
	}
	return 0;
}

static void progress(prod_t *p, int final)
{
	int64_t done, total;
	aud_progress(p->aud, &done, &total);
	double el = (double)(clock_mono_ms() - p->t0_ms) / 1000.0;
	double rate = el > 0 ? (double)p->st.read / el : 0;
	char eta[32] = "";
	if (total > 0 && done > 0 && el > 0.5 && !final) {
		double left = el * (double)(total - done) / (double)done;
		snprintf(eta, sizeof eta, "  ETA %.0fs", left);
	}
	fprintf(stderr,
	        "\r\033[Kread %lld  queued %lld  rejected %lld  suppressed %lld  duplicates %lld  %.0f rows/s%s%s",
	        (long long)p->st.read, (long long)p->st.queued, (long long)p->st.rejected,
	        (long long)p->st.suppressed, (long long)p->st.duplicates, rate, eta,
	        final ? "\n" : "");
}

static int64_t lag_bound(prod_t *p)
{
	int64_t bound = p->o.max_lag;
	if (bound >= 0)
		return bound;
	/* embedded broker: each partition keeps at most 5 MiB and drops the oldest */
	int64_t avg = p->st.produced > 0 ? p->bytes_produced / p->st.produced : 300;
	return kq_lag_bound(avg, p->nparts[0] > p->nparts[1] ? p->nparts[0] : p->nparts[1]);
}

/* Wait while more than the bound of messages are produced (or in flight) but not
 * yet consumed by the dispatcher groups. Cheap when far from the bound: the lag
 * is estimated from the last measurement plus what was produced since. */
static void lag_gate(prod_t *p)
{
	if (p->o.max_lag == 0 || !p->rk || __atomic_load_n(&p->down_mono_ms, __ATOMIC_SEQ_CST))
		return;
	int64_t bound = lag_bound(p);
	p->st.max_lag_used = bound;
	int64_t est = p->lag_at_check + (p->st.produced - p->produced_at_check);
	if (est <= bound)
		return;
	int64_t t0 = clock_mono_ms(), last_log = t0;
	int64_t lag = total_lag(p) + rd_kafka_outq_len(p->rk);
	while (lag > bound && !tocsin_stop && !broker_lost(p)) {
		rd_kafka_poll(p->rk, 50);
		ack_watch(p);
		if (__atomic_load_n(&p->down_mono_ms, __ATOMIC_SEQ_CST))
			continue; /* asking a broker that is gone for offsets only blocks */
		if (p->o.progress && isatty(2))
			progress(p, 0);
		int64_t t = clock_mono_ms();
		if (t - last_log > 10000) {
			log_info("event=waiting_for_dispatch lag=%lld max_lag=%lld", (long long)lag,
			         (long long)bound);
			last_log = t;
		}
		lag = total_lag(p) + rd_kafka_outq_len(p->rk);
	}
	p->lag_at_check = lag;
	p->produced_at_check = p->st.produced;
	p->st.lag_waits_ms += clock_mono_ms() - t0;
}

static int check_delivery(prod_t *p, char *err, size_t errlen)
{
	if (broker_lost(p)) {
		char ts[32];
		clock_iso8601(__atomic_load_n(&p->down_wall_ms, __ATOMIC_SEQ_CST), ts, sizeof ts);
		snprintf(err, errlen,
		         "the Kafka broker has been unreachable since %s: %d messages not confirmed; "
		         "nothing after the last checkpoint counts: run the same command again once "
		         "it is back (RUNBOOK.md, \"The broker is down\")",
		         ts, rd_kafka_outq_len(p->rk));
		return TOCSIN_ERR_KAFKA;
	}
	if (p->st.delivery_failed) {
		snprintf(err, errlen,
		         "%lld messages could not be delivered to Kafka (%s); nothing after the last "
		         "checkpoint counts: run the same command again to continue",
		         (long long)p->st.delivery_failed, p->errstr);
		return TOCSIN_ERR_KAFKA;
	}
	return 0;
}

/* Move the checkpoint past every fully delivered, closed epoch; write it when it moved. */
static void epoch_advance_fwd(prod_t *p)
{
	int moved = 0;
	if (p->ep_done > p->ep_cur)
		tocsin_panic("checkpointed epoch %lld is past the open one %lld",
		             (long long)p->ep_done, (long long)p->ep_cur);
	while (p->ep_done < p->ep_cur && !p->st.delivery_failed) {
		struct epoch *e = &p->ep[p->ep_done % EPOCHS];
		if (!e->closed || e->delivered < e->produced)
			break;
		for (int ch = 0; ch < 2; ch++)
			for (int i = 0; i < MAXPART; i++)
				if (e->offs[ch][i] > p->offs[ch][i])
					p->offs[ch][i] = e->offs[ch][i];
		p->ck_rows = e->rows;
		p->ck_queued = e->queued;
		p->ck_rj = e->rj_bytes;
		e->closed = 0;
		p->ep_done++;
		moved = 1;
	}
	if (moved)
		ckpt_write(p, 0);
}

/* Close the current epoch at the current position and open the next. */
static void epoch_close(prod_t *p)
{
	struct epoch *e = &p->ep[p->ep_cur % EPOCHS];
	if (p->hold && hold_commit(p->hold))
		p->st.delivery_failed++,
		    snprintf(p->errstr, sizeof p->errstr, "cannot write the holding store");
	if (p->rejects)
		fflush(p->rejects);
	e->rows = p->st.read;
	e->queued = p->st.queued;
	e->rj_bytes = p->rejects ? ftell(p->rejects) : 0;
	e->closed = 1;
	p->ep_cur++;
	struct epoch *n = &p->ep[p->ep_cur % EPOCHS];
	/* the ring is full only when an epoch 8 checkpoints old is still in flight */
	while (p->ep_done + EPOCHS <= p->ep_cur && !p->st.delivery_failed)
		rd_kafka_poll(p->rk, 10), epoch_advance_fwd(p);
	memset(n, 0, sizeof *n);
}

/* The first checkpoint: nothing done yet, the outbox ends where it ends now; a crash
 * before the next one re-reads the outbox from here. */
static int first_checkpoint(prod_t *p, char *err, size_t errlen)
{
	if (p->rk && !p->ckpt_rows) {
		p->ck_rj = p->rejects ? ftell(p->rejects) : 0;
		if (ckpt_write(p, 0)) {
			snprintf(err, errlen, "cannot write the checkpoint %s", p->ckpt_path);
			return TOCSIN_ERR_IO;
		}
	}
	if (p->rk && p->camp_state != MSG_CAMP_PAUSED && produce_campaign(p, MSG_CAMP_LAUNCHING, -1)) {
		snprintf(err, errlen, "cannot produce to %s", KQ_T_CAMPAIGNS);
		return TOCSIN_ERR_KAFKA;
	}
	return 0;
}

/* Replay what the checkpoint covers: rebuild the dedupe set, produce nothing. */
static int replay_checkpoint(prod_t *p, char *err, size_t errlen)
{
	aud_row_t r;
	int rc;
	if (p->ckpt_rows <= 0)
		return 0;
	while (p->st.read < p->ckpt_rows) {
		int arc = aud_next(p->aud, &r);
		if (arc == 0)
			break;
		if (arc == TOCSIN_ERR_IO) {
			snprintf(err, errlen, "%s:%lld: %s", p->camp->aud_path, (long long)r.line,
			         r.why);
			return TOCSIN_ERR_IO;
		}
		if ((rc = do_row(p, arc, &r, 1)))
			return rc;
	}
	p->st.resumed_rows = p->st.read;
	p->ck_rows = p->st.read;
	p->ck_queued = p->st.queued;
	p->ck_rj = p->rejects ? ftell(p->rejects) : 0;
	log_info("event=resumed campaign=%s rows=%lld queued_before=%lld", p->camp->id,
	         (long long)p->st.read, (long long)p->st.queued);
	return 0;
}

/* A row failed to produce (rc): the one line that says why. */
static void row_failed(prod_t *p, int rc, const aud_row_t *r, char *err, size_t errlen)
{
	char fe[256] = "";
	if (p->rk)
		rd_kafka_poll(p->rk, 0);
	if (p->rk && rd_kafka_fatal_error(p->rk, fe, sizeof fe) == RD_KAFKA_RESP_ERR_NO_ERROR)
		fe[0] = 0;
	if (rc == TOCSIN_ERR_TOOBIG)
		snprintf(err, errlen,
		         "%s:%lld: more than %d distinct addresses in one launch "
		         "(or out of memory); split the audience",
		         p->camp->aud_path, (long long)r->line, PROD_MAX_RECIPIENTS);
	else if (!check_delivery(p, err, errlen))
		snprintf(err, errlen,
		         "producing to Kafka failed at %s:%lld%s%s; messages could not be "
		         "delivered to Kafka: run the same command again to continue",
		         p->camp->aud_path, (long long)r->line, fe[0] ? ": " : "", fe);
}

/* Every 1024 rows: delivery reports, the checkpoint, the campaign watch (a cancel stops
 * the launch), the progress line. *last_ck / *last_prog: when each was last done. */
static int every_1024(prod_t *p, int64_t *last_ck, int64_t *last_prog, char *err, size_t errlen)
{
	int64_t now = clock_mono_ms();
	int rc;
	if (p->rk) {
		rd_kafka_poll(p->rk, 0);
		ack_watch(p);
		if ((rc = check_delivery(p, err, errlen)))
			return rc;
		epoch_advance_fwd(p);
		if (now - p->last_watch >= 200) {
			p->last_watch = now;
			prod_watch_poll(p, 0);
			if (p->camp_state == MSG_CAMP_CANCELLED) {
				snprintf(err, errlen,
				         "campaign %s was cancelled during the launch: stopped after "
				         "%lld rows",
				         p->camp->id, (long long)p->st.read);
				return TOCSIN_ERR_STATE;
			}
		}
		if (now - *last_ck >= p->o.ckpt_every_ms) {
			epoch_close(p);
			*last_ck = clock_mono_ms();
		}
	}
	if (p->o.progress && isatty(2) && now - *last_prog >= 250) {
		progress(p, 0);
		*last_prog = now;
	}
	return 0;
}

/* The rows after the checkpoint, to the end of the audience or the first error.
 * 1: stopped by the crash_after_rows test hook (err set). */
static int rows_loop(prod_t *p, char *err, size_t errlen, int *rcp)
{
	aud_row_t r;
	int64_t last_ck = clock_mono_ms(), last_prog = 0, n = 0;
	int rc = 0;
	for (;;) {
		if (tocsin_stop) {
			snprintf(err, errlen,
			         "stopped by signal %d after %lld rows; run the same command to continue",
			         (int)tocsin_stop, (long long)p->st.read);
			rc = TOCSIN_ERR_STATE;
			break;
		}
		int arc = aud_next(p->aud, &r);
		if (arc == 0)
			break;
		if (arc == TOCSIN_ERR_IO) {
			snprintf(err, errlen, "%s:%lld: %s", p->camp->aud_path, (long long)r.line,
			         r.why);
			rc = TOCSIN_ERR_IO;
			break;
		}
		if ((rc = do_row(p, arc, &r, 0))) {
			row_failed(p, rc, &r, err, errlen);
			break;
		}
		lag_gate(p);
		if (broker_lost(p)) {
			rc = check_delivery(p, err, errlen);
			break;
		}
		if (p->o.crash_after_rows && p->st.read >= p->o.crash_after_rows) {
			/* test hook: stop like kill -9 would, the checkpoint left behind */
			rd_kafka_flush(p->rk, 30000);
			rd_kafka_destroy(p->rk);
			p->rk = NULL;
			snprintf(err, errlen, "crashed on purpose after %lld rows",
			         (long long)p->st.read);
			*rcp = TOCSIN_ERR_STATE;
			return 1;
		}
		if ((++n & 1023) == 0 && (rc = every_1024(p, &last_ck, &last_prog, err, errlen)))
			break;
	}
	*rcp = rc;
	return 0;
}

/* The end of a launch that ran (rc: how the rows ended): everything delivered, the last
 * checkpoint (done when rc is 0), the holding store committed, the campaign "running". */
static int finish(prod_t *p, int rc, char *err, size_t errlen)
{
	if (!rc && broker_lost(p))
		rc = check_delivery(p, err, errlen);
	if (!broker_lost(p) && kq_flush(p->rk, 120000) && !rc) {
		snprintf(err, errlen, "Kafka did not confirm delivery of %d messages within 120 s",
		         rd_kafka_outq_len(p->rk));
		rc = TOCSIN_ERR_TIMEOUT;
	}
	if (!rc)
		rc = check_delivery(p, err, errlen);
	if (!rc || p->st.delivery_failed == 0) {
		/* everything produced is delivered: the checkpoint is the current position */
		epoch_close(p);
		epoch_advance_fwd(p);
		if (rd_kafka_outq_len(p->rk) == 0 && p->ep_done == p->ep_cur) {
			p->ck_rows = p->st.read;
			p->ck_queued = p->st.queued;
			p->ck_rj = p->rejects ? ftell(p->rejects) : 0;
		}
	}
	prod_watch_poll(p, 0);
	if (!rc && p->camp_state == MSG_CAMP_CANCELLED) {
		snprintf(err, errlen, "campaign %s was cancelled during the launch", p->camp->id);
		rc = TOCSIN_ERR_STATE;
	}
	if (!rc && p->hold && hold_commit(p->hold)) {
		snprintf(err, errlen, "cannot write the holding store %s/hold.db", p->cfg->var_dir);
		rc = TOCSIN_ERR_IO;
	}
	if (rc) {
		if (p->st.delivery_failed == 0)
			ckpt_write(p, 0);
		return rc;
	}
	ckpt_write(p, 1);
	/* "running" unless an operator paused it meanwhile: then it stays paused */
	if (p->camp_state == MSG_CAMP_PAUSED)
		log_warn("event=campaign_paused campaign=%s msg=\"paused during the launch; "
		         "the dispatchers hold its messages until it is resumed\"",
		         p->camp->id);
	else
		/* a resend keeps the audience the first launch published (-1 = unchanged) */
		produce_campaign(p, MSG_CAMP_RUNNING,
		                 p->o.resend_failed ? -1 : p->st.ch_queued[0] + p->st.ch_queued[1]);
	if (kq_flush(p->rk, 30000)) {
		snprintf(err, errlen, "Kafka did not confirm the campaign record");
		return TOCSIN_ERR_TIMEOUT;
	}
	return 0;
}

int prod_run(prod_t *p, char *err, size_t errlen)
{
	if (p->st.already_done)
		return 0;
	if (p->rk && !p->watchdog_on)
		p->watchdog_on = !pthread_create(&p->watchdog, NULL, watchdog_main, p);
	p->created_ms = clock_wall_ms();
	int rc = first_checkpoint(p, err, errlen);
	if (!rc)
		rc = replay_checkpoint(p, err, errlen);
	if (rc)
		return rc;
	if (rows_loop(p, err, errlen, &rc))
		return rc;
	if (p->rk)
		rc = finish(p, rc, err, errlen);
	if (p->o.progress && isatty(2))
		progress(p, 1);
	p->st.elapsed_s = (double)(clock_mono_ms() - p->t0_ms) / 1000.0;
	if (p->rejects)
		fflush(p->rejects);
	prod_write_report(p, rc == 0);
	return rc;
}
