/* prod_report.c -- what a launch or preview tells: report.json, the summary, the preview's when/cost, the --resend-failed plan. */
#include "producer/prod_int.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/msg.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static json_t *reasons_json(const prod_stats_t *st)
{
	json_t *o = json_object();
	for (int i = 0; i < st->nreasons; i++)
		json_object_set_new(o, st->reasons[i].text, json_integer(st->reasons[i].n));
	if (st->reasons_other)
		json_object_set_new(o, "(other)", json_integer(st->reasons_other));
	return o;
}

void prod_write_report(prod_t *p, int finished)
{
	const prod_stats_t *st = &p->st;
	json_t *j = json_object();
	json_object_set_new(j, "campaign", json_string(p->camp->id));
	json_object_set_new(j, "audience", json_string(p->camp->aud_path));
	json_object_set_new(j, "mode", json_string(p->o.dry ? "preview" : "launch"));
	json_object_set_new(j, "finished", json_boolean(finished));
	json_object_set_new(j, "read", json_integer(st->read));
	json_object_set_new(j, "queued", json_integer(st->queued));
	json_object_set_new(j, "rejected", json_integer(st->rejected));
	json_object_set_new(j, "suppressed", json_integer(st->suppressed));
	json_object_set_new(j, "duplicates", json_integer(st->duplicates));
	json_t *chs = json_object();
	for (int ch = 0; ch < 2; ch++) {
		if (!p->on[ch])
			continue;
		json_t *c = json_object();
		json_object_set_new(c, "queued", json_integer(st->ch_queued[ch]));
		json_object_set_new(c, "rejected", json_integer(st->ch_rejected[ch]));
		json_object_set_new(c, "suppressed", json_integer(st->ch_suppressed[ch]));
		json_object_set_new(c, "duplicates", json_integer(st->ch_duplicates[ch]));
		json_object_set_new(chs, msg_channel_name((msg_channel_t)ch), c);
	}
	json_object_set_new(j, "channels", chs);
	json_object_set_new(j, "rejected_by_reason", reasons_json(st));
	json_object_set_new(j, "produced", json_integer(st->produced));
	json_object_set_new(j, "already_in_outbox", json_integer(st->already));
	json_object_set_new(j, "resumed_from_row", json_integer(st->resumed_rows));
	json_object_set_new(j, "delivery_failures", json_integer(st->delivery_failed));
	json_object_set_new(j, "sms_segments", json_integer(st->segments));
	if (p->on[MSG_CH_EMAIL]) {
		json_t *ef = json_object();
		for (int k = 0; k < EMAIL_INLINE_NREASONS; k++)
			if (k != EMAIL_INLINE_ASKED)
				json_object_set_new(ef, email_inline_name(k),
				                    json_integer(st->email_form[k]));
		json_object_set_new(j, "email_forms", ef);
	}
	json_object_set_new(j, "held", json_integer(st->held));
	json_object_set_new(j, "expired_quiet_hours", json_integer(st->expired));
	json_object_set_new(j, "elapsed_s", json_real(st->elapsed_s));
	json_object_set_new(j, "rows_per_s",
	                    json_real(st->elapsed_s > 0 ? (double)st->read / st->elapsed_s : 0));
	json_object_set_new(j, "max_lag", json_integer(st->max_lag_used));
	json_object_set_new(j, "lag_wait_ms", json_integer(st->lag_waits_ms));
	json_object_set_new(j, "rejects_file", json_string(p->rejects_path));
	if (p->o.resend_failed)
		json_object_set_new(j, "resend_failed", json_integer(st->produced)),
		    json_object_set_new(j, "resend_permanent", json_integer(st->resend_permanent)),
		    json_object_set_new(j, "resend_already_requeued",
		                        json_integer(st->resend_requeued));
	char tmp[4200];
	snprintf(tmp, sizeof tmp, "%s.tmp", p->report_path);
	if (json_dump_file(j, tmp, JSON_INDENT(2)) || rename(tmp, p->report_path))
		log_warn("event=report_failed path=%s err=\"%s\"", p->report_path, strerror(errno));
	json_decref(j);
}

/* "; N permanent failures left out (invalid number 3, …)" or "…included". */
static void prod_print_permanent(const prod_t *p, FILE *f)
{
	const prod_stats_t *st = &p->st;
	if (!st->resend_permanent)
		return;
	fprintf(f, "; %lld permanent failure%s %s (", (long long)st->resend_permanent,
	        st->resend_permanent == 1 ? "" : "s",
	        p->o.include_permanent ? "included (--include-permanent)"
	                               : "left out (--include-permanent to resend them)");
	for (int i = 0; i < st->nperm; i++)
		fprintf(f, "%s%s %lld", i ? ", " : "", st->perm[i].text, (long long)st->perm[i].n);
	fputc(')', f);
}

/* "; N already re-queued by an earlier --resend-failed (…)". */
static void prod_print_requeued(const prod_t *p, FILE *f)
{
	const prod_stats_t *st = &p->st;
	if (st->resend_requeued && !p->resuming)
		fprintf(f, "; %lld already re-queued by an earlier --resend-failed (not re-queued again)",
		        (long long)st->resend_requeued);
}

int prod_resend_plan(const cfg_t *cfg, const camp_t *camp, const prod_opts_t *o, FILE *out,
                     char *err, size_t errlen)
{
	prod_t *p = calloc(1, sizeof *p);
	if (!p)
		return TOCSIN_ERR_NOMEM;
	p->cfg = cfg;
	p->camp = camp;
	p->o = *o;
	p->o.resend_failed = 1;
	if (p->o.kafka_timeout_ms <= 0)
		p->o.kafka_timeout_ms = 10000;
	int rc = TOCSIN_ERR_NOMEM;
	p->failed = aset_new(1024, 0, err, errlen);
	if (p->failed && !(rc = prod_load_failed(p, err, errlen))) {
		fprintf(out, "campaign %s: --resend-failed --dry-run: would re-queue %lld message%s",
		        camp->id, (long long)p->st.resend_found, p->st.resend_found == 1 ? "" : "s");
		prod_print_permanent(p, out);
		prod_print_requeued(p, out);
		fputs("\n", out);
	}
	aset_free(p->failed);
	free(p);
	return rc;
}

void prod_print_summary(const prod_t *p, FILE *f)
{
	const prod_stats_t *st = &p->st;
	if (st->already_done) {
		fprintf(f,
		        "campaign %s was already launched (%lld recipients queued); nothing new to send.\n"
		        "Use --resend-failed to re-queue the recipients whose messages failed.\n",
		        p->camp->id, (long long)st->queued);
		return;
	}
	if (p->o.resend_failed) {
		/* what was re-queued, not the audience's rows */
		fprintf(f, "campaign %s: --resend-failed: re-queued %lld message%s", p->camp->id,
		        (long long)st->produced, st->produced == 1 ? "" : "s");
		if (st->already)
			fprintf(f, " (%lld already in the outbox)", (long long)st->already);
		fprintf(f, "; %lld failed in tocsin.status", (long long)(st->resend_found));
		prod_print_permanent(p, f);
		prod_print_requeued(p, f);
		fputc('\n', f);
		fprintf(f, "  read %lld rows, rejected %lld, suppressed %lld, duplicates %lld",
		        (long long)st->read, (long long)st->rejected, (long long)st->suppressed,
		        (long long)st->duplicates);
	} else
		fprintf(f, "campaign %s: read %lld, queued %lld, rejected %lld, suppressed %lld, duplicates %lld",
		        p->camp->id, (long long)st->read, (long long)st->queued,
		        (long long)st->rejected, (long long)st->suppressed, (long long)st->duplicates);
	if (!p->o.dry)
		fprintf(f, " (%.2f s, %.0f rows/s)", st->elapsed_s,
		        st->elapsed_s > 0 ? (double)st->read / st->elapsed_s : 0.0);
	fputc('\n', f);
	for (int ch = 0; ch < 2; ch++)
		if (p->on[ch] && p->on[!ch])
			fprintf(f, "  %-5s queued %lld, rejected %lld, suppressed %lld, duplicates %lld\n",
			        msg_channel_name((msg_channel_t)ch), (long long)st->ch_queued[ch],
			        (long long)st->ch_rejected[ch], (long long)st->ch_suppressed[ch],
			        (long long)st->ch_duplicates[ch]);
	if (st->resumed_rows)
		fprintf(f, "  resumed after row %lld; %lld messages were already in the outbox\n",
		        (long long)st->resumed_rows, (long long)st->already);
	if (p->o.resend_failed)
		fprintf(f, "  %lld recipients had not failed (not re-queued)\n",
		        (long long)(st->resend_skipped - (p->resuming ? 0 : st->resend_requeued)));
	if (st->nreasons) {
		fprintf(f, "  rejected by reason:\n");
		for (int i = 0; i < st->nreasons; i++)
			fprintf(f, "    %8lld  %s\n", (long long)st->reasons[i].n, st->reasons[i].text);
		if (st->reasons_other)
			fprintf(f, "    %8lld  (other reasons)\n", (long long)st->reasons_other);
		fprintf(f, "  rejects: %s\n", p->rejects_path);
	}
	if (st->held && !p->o.dry) {
		char a[48], b[48];
		tz_fmt_local(NULL, st->first_due_ms, a, sizeof a);
		tz_fmt_local(NULL, st->last_due_ms, b, sizeof b);
		fprintf(f, "  held %lld for send_at or quiet hours, due %s .. %s UTC (tocsin hold releases them)\n",
		        (long long)st->held, a, b);
	}
	if (st->expired)
		fprintf(f, "  expired %lld: quiet hours do not open before they expire\n",
		        (long long)st->expired);
	if (st->delivery_failed)
		fprintf(f, "  delivery failures: %lld\n", (long long)st->delivery_failed);
	if (p->on[MSG_CH_EMAIL]) {
		int64_t inl = 0;
		for (int k = EMAIL_INLINE_NONE + 1; k < EMAIL_INLINE_NREASONS; k++)
			inl += st->email_form[k];
		fprintf(f, "  email: %lld batched (shared parts + substitutions), %lld inline",
		        (long long)st->email_form[EMAIL_INLINE_NONE], (long long)inl);
		for (int k = EMAIL_INLINE_NONE + 1, first = 1; k < EMAIL_INLINE_NREASONS; k++)
			if (st->email_form[k]) {
				fprintf(f, "%s%s %lld", first ? " (" : ", ", email_inline_name(k),
				        (long long)st->email_form[k]);
				first = 0;
			}
		fprintf(f, "%s\n", inl ? ")" : "");
	}
	fprintf(f, "  report: %s\n", p->report_path);
}

typedef struct when {
	FILE *f;
	double rate;     /* messages per second at the configured rates, 0 = unknown */
	int64_t last_ms; /* estimate of the last send */
} when_t;

static void print_zone(void *ud, tzdb_set_t *z)
{
	when_t *w = ud;
	char until[48] = "";
	if (!z->now && !z->held)
		return;
	if (z->held)
		tz_fmt_local(z->z[0], z->last_ms, until, sizeof until);
	fprintf(w->f, "  %-40.40s%s now %lld, held %lld%s%s\n", z->key, z->n > 1 ? " (uncertain)" : "",
	        (long long)z->now, (long long)z->held, z->held ? " until " : "", until);
	if (z->held && w->rate > 0 &&
	    z->last_ms + (int64_t)(1000.0 * (double)z->held / w->rate) > w->last_ms)
		w->last_ms = z->last_ms + (int64_t)(1000.0 * (double)z->held / w->rate);
}

/* Go now vs held, by zone, and when the last message goes at the configured rates. */
static void print_when(const prod_t *p, FILE *f)
{
	const prod_stats_t *st = &p->st;
	int64_t now = clock_wall_ms();
	char t[48];
	if (p->camp->send_at_ms) {
		tz_fmt_local(NULL, p->camp->send_at_ms, t, sizeof t);
		fprintf(f, "send_at: %s (UTC)%s\n", t,
		        p->camp->send_at_ms <= now ? ", already past: now" : "");
	}
	if (p->camp->qh_urgent)
		fprintf(f, "quiet hours: OFF -- urgent override named in %s (\"quiet_hours\": {\"override\": \"urgent\"})\n",
		        p->camp->path);
	for (int ch = 0; ch < 2; ch++) {
		if (!p->qh_on[ch])
			continue;
		char a[6], b[6];
		tz_fmt_hhmm(p->qh[ch].start, a), tz_fmt_hhmm(p->qh[ch].end, b);
		fprintf(f, "quiet hours: %s only %s-%s recipient local time\n",
		        msg_channel_name((msg_channel_t)ch), a, b);
	}
	double rate = 0;
	for (size_t i = 0; i < p->cfg->nvendors; i++)
		if (p->on[p->cfg->vendors[i].channel])
			rate += p->cfg->vendors[i].rate_per_s;
	int64_t msgs = st->ch_queued[0] + st->ch_queued[1];
	fprintf(f, "when: %lld go now, %lld held", (long long)(msgs - st->held - st->expired),
	        (long long)st->held);
	if (st->held) {
		tz_fmt_local(NULL, st->first_due_ms, t, sizeof t);
		fprintf(f, " (first due %s UTC", t);
		tz_fmt_local(NULL, st->last_due_ms, t, sizeof t);
		fprintf(f, ", last due %s UTC)", t);
	}
	fprintf(f, ", %lld expire before their window opens\n", (long long)st->expired);
	when_t w = {.f = f, .rate = rate, .last_ms = now};
	if (rate > 0)
		w.last_ms = now + (int64_t)(1000.0 * (double)(p->sa_now) / rate);
	if (p->tzdb) {
		fprintf(f, "by zone (the set a recipient may be in):\n");
		tzdb_each(p->tzdb, print_zone, &w);
	}
	if (p->sa_now || p->sa_held)
		fprintf(f, "  %-40s now %lld, held %lld (send_at)\n", "(no quiet hours)",
		        (long long)p->sa_now, (long long)p->sa_held);
	if (p->sa_held && rate > 0 &&
	    p->camp->send_at_ms + (int64_t)(1000.0 * (double)p->sa_held / rate) > w.last_ms)
		w.last_ms = p->camp->send_at_ms + (int64_t)(1000.0 * (double)p->sa_held / rate);
	if (rate > 0) {
		tz_fmt_local(NULL, w.last_ms, t, sizeof t);
		fprintf(f, "last message at the configured rates (%.0f/s): about %s UTC\n", rate, t);
	} else {
		fprintf(f, "last message: no rate_per_s configured, cannot estimate\n");
	}
}

void prod_print_preview(const prod_t *p, FILE *f)
{
	const prod_stats_t *st = &p->st;
	fprintf(f, "\n");
	prod_print_summary(p, f);
	print_when(p, f);
	if (p->on[MSG_CH_SMS]) {
		fprintf(f, "sms by encoding: gsm7 %lld, ucs2 %lld\n", (long long)st->by_enc[0],
		        (long long)st->by_enc[1]);
		fprintf(f, "sms segments per message:\n");
		for (int s = 1; s <= PROD_MAX_SEGS; s++)
			if (st->seg_hist[s])
				fprintf(f, "  %2d%s %8lld\n", s, s == PROD_MAX_SEGS ? "+" : " ",
				        (long long)st->seg_hist[s]);
		fprintf(f, "sms segments total: %lld\n", (long long)st->segments);
		fprintf(f, "replaced characters: %lld\n", (long long)st->replaced);
		for (int k = 0; k < SMS_SMART_NKINDS; k++) {
			const char *to = NULL, *from = sms_smart_from(k, &to);
			if (from && st->replaced_kind[k])
				fprintf(f, "  %-6s -> \"%s\"  %u\n", from, to ? to : "",
				        st->replaced_kind[k]);
		}
	}
	fprintf(f, "estimated cost:\n");
	int any = 0;
	for (size_t i = 0; i < p->cfg->nvendors; i++) {
		const cfg_vendor_t *v = &p->cfg->vendors[i];
		if (!p->on[v->channel])
			continue;
		double units = v->channel == MSG_CH_SMS ? (double)st->segments
		                                        : (double)st->ch_queued[1];
		fprintf(f, "  %-16s %-5s %.4f x %.0f %s = %.2f\n", v->name,
		        msg_channel_name(v->channel), v->cost, units,
		        v->channel == MSG_CH_SMS ? "segments" : "emails", v->cost * units);
		any = 1;
	}
	if (!any)
		fprintf(f, "  (no vendor configured for this campaign's channels)\n");
}
