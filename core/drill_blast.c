/* drill_blast.c -- one scenario of `tocsin drill`: the synthetic audience, the fault turned on after
 * steady traffic and off again, and the blast followed until every message ended. */
#include "core/clock.h"
#include "core/drill_int.h"
#include "core/sig.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The phone number of synthetic recipient i (E.164, valid US numbers). */
void drill_phone_of(long i, char *out, size_t outlen)
{
	static const int areas[] = {202, 212, 303, 415, 617, 718, 312, 512, 213, 404, 305, 206};
	static const int exch[] = {234, 345, 456, 567, 678, 789, 432, 543, 654, 765};
	snprintf(out, outlen, "+1%d%d%04ld", areas[i / 100000 % 12], exch[i / 10000 % 10], i % 10000);
}

static int write_audience(drill_t *d, run_t *r)
{
	FILE *f = fopen(d->csv, "w");
	if (!f)
		return -1;
	fputs("first_name,phone\n", f);
	char ph[32];
	for (long i = 0; i < r->n; i++) {
		drill_phone_of(i, ph, sizeof ph);
		fprintf(f, "Pat%ld,%s\n", i, ph);
	}
	if (fclose(f))
		return -1;
	/* a text of exactly `segments` GSM-7 segments for 8-digit names: 160, else 153 per part */
	int len = d->segments == 1 ? 150 : 153 * d->segments - 10;
	char text[2048] = "Hi {{first_name}}, ";
	size_t tl = strlen(text);
	for (; (int)tl < len - 8 && tl < sizeof text - 1; tl++)
		text[tl] = "drill please ignore "[tl % 20];
	text[tl] = 0;
	json_t *c = json_pack("{s:s,s:s,s:{s:s,s:s},s:{s:s,s:s},s:i}", "id", r->id, "name", r->id,
	                      "audience", "path", d->csv, "phone", "phone", "sms", "sender",
	                      d->pool, "template", text, "expires_in_s", 3600);
	if (d->use_running) /* the user's quiet hours: a rehearsal sends now, to synthetic numbers */
		json_object_set_new(c, "quiet_hours", json_pack("{s:s}", "override", "urgent"));
	int rc = json_dump_file(c, d->campaign, 0);
	json_decref(c);
	return rc;
}

static void sim_defaults(drill_t *d)
{
	char b[256];
	snprintf(b, sizeof b,
	         "{\"reset\":true,\"receipts\":{\"enabled\":false},\"latency_ms\":{\"median\":%d,\"tail\":%d}}",
	         d->latency_ms, 2 * d->latency_ms);
	drill_sim_post(d, "/_sim/config", b);
}

static int fault_apply(drill_t *d, run_t *r, int on)
{
	char b[256];
	switch (r->kind) {
	case SC_503:
	case SC_HANG:
		snprintf(b, sizeof b, "{\"vendor\":\"%s\",\"outage\":\"%s\"}", d->primary,
		         on ? (r->kind == SC_503 ? "503" : "hang") : "none");
		return drill_sim_post(d, "/_sim/config", b);
	case SC_SLOW: {
		/* median twice the SLA's p95; the slowest answers (up to twice the tail) still inside
		 * timeout_ms, so nothing times out: that is the hang scenario */
		double med = 2 * d->sla.p95_ms, tail = d->timeout_ms * 0.45;
		if (tail < med)
			tail = med;
		snprintf(b, sizeof b,
		         "{\"vendor\":\"%s\",\"latency_ms\":{\"median\":%.0f,\"tail\":%.0f}}",
		         d->primary, on ? med : d->latency_ms, on ? tail : 2 * d->latency_ms);
		return drill_sim_post(d, "/_sim/config", b);
	}
	case SC_429:
		snprintf(b, sizeof b, "{\"vendor\":\"%s\",\"throttle_rate\":%s,\"retry_after_s\":1}",
		         d->primary, on ? "0.9" : "0");
		return drill_sim_post(d, "/_sim/config", b);
	case SC_AUTH:
		/* our credentials revoked at the primary; fixed again the way RUNBOOK section 6 does:
		 * the right credentials, then the dispatcher restarted (it stops using a vendor that
		 * refused them until it starts again) -- drill_blast starts it once it has stopped */
		snprintf(b, sizeof b, "{\"vendor\":\"%s\",\"outage\":\"%s\"}", d->primary,
		         on ? "auth" : "none");
		if (drill_sim_post(d, "/_sim/config", b))
			return -1;
		return on ? 0 : sup_kill(d->sup, d->k_dsp, SIGTERM);
	case SC_KILL: return on ? sup_kill(d->sup, d->k_dsp, SIGKILL) : 0;
	case SC_STOP:
		/* the last recipients of the file (not sent yet) reply STOP, the real way: a signed
		 * inbound webhook from the emulator to the tracker, then tocsin.optouts */
		if (on) {
			d->stop_lo = r->n > DRILL_STOPPERS ? r->n - DRILL_STOPPERS : 0;
			d->stop_hi = r->n;
		}
		for (long i = r->n - DRILL_STOPPERS; on && i < r->n; i++) {
			char ph[32];
			drill_phone_of(i < 0 ? 0 : i, ph, sizeof ph);
			snprintf(b, sizeof b, "{\"vendor\":\"%s\",\"from\":\"%s\",\"body\":\"STOP\"}",
			         d->primary, ph);
			if (drill_sim_post(d, "/_sim/inbound", b))
				return -1;
		}
		return 0;
	case SC_CANCEL:
		if (on) {
			char url[512];
			snprintf(url, sizeof url, "http://%s/api/campaigns/%s/cancel", d->trk, r->id);
			json_t *j = drill_http_json("POST", url, NULL, d->token);
			json_decref(j);
			return j ? 0 : -1;
		}
		return 0;
	default: return 0;
	}
}

/* how long the fault lasts: long enough for the SLA to judge it -- 1 s past the limit of "99% on
 * the secondary" (drill_measure.c: detect's limit + 1 s), so a late switch still shows and the
 * route's rate after it can be judged */
int64_t drill_fault_ms(drill_t *d, sc_kind_t k)
{
	double w = d->sla.window_s * 1000;
	switch (k) {
	case SC_503:
	case SC_HANG: return (int64_t)(w + 3000);
	case SC_SLOW: return (int64_t)(2 * w + 2 * d->sla.p95_ms + 3000);
	case SC_429:
	case SC_AUTH: return 6000;
	default: return 0;
	}
}

/* expected time from clearing to full traffic again: open, probe windows, ramp */
int64_t drill_recover_budget_ms(drill_t *d, sc_kind_t k)
{
	if (k == SC_KILL)
		return 15000; /* the group notices the dead member at session.timeout.ms (10 s) */
	if (k == SC_AUTH) /* the restarted dispatcher rejoins, then the primary may still be open */
		return (int64_t)((d->sla.min_open_s + d->sla.probe_windows * d->sla.window_s +
		                  d->sla.ramp_s) *
		                 1000) +
		       10000;
	if (k == SC_CANCEL || k == SC_STOP || k == SC_CAPACITY)
		return 0;
	return (int64_t)((d->sla.min_open_s + d->sla.probe_windows * d->sla.window_s + d->sla.ramp_s) *
	                 1000) +
	       3000;
}

/* The SLA state the tracker shows for vendor name ("" when it has none yet) into st. */
static const char *vendor_state(drill_t *d, const char *name, char *st, size_t stlen)
{
	json_t *j = drill_trk_get(d, "/api/vendors"), *v;
	size_t i;
	st[0] = 0;
	json_array_foreach(json_object_get(j, "vendors"), i,
	                   v) if (!strcmp(json_string_value(json_object_get(v, "name")) ?: "", name))
	    snprintf(st, stlen, "%s", json_string_value(json_object_get(v, "state")) ?: "");
	json_decref(j);
	return st;
}

/* A scenario starts from a healthy primary: one the last scenario left open or probing is
 * drained and undrained (what RUNBOOK section 1 does once a vendor is fixed). */
void drill_primary_reset(drill_t *d)
{
	char st[32], now[32];
	vendor_state(d, d->primary, st, sizeof st);
	if (!st[0] || !strcmp(st, "healthy"))
		return;
	char url[512];
	for (int i = 0; i < 2; i++) {
		snprintf(url, sizeof url, "http://%s/api/vendors/%s/%s", d->trk, d->primary,
		         i ? "undrain" : "drain");
		json_decref(drill_http_json("POST", url, NULL, d->token));
		for (int t = 0; t < 50 && strcmp(vendor_state(d, d->primary, now, sizeof now),
		                                 i ? "healthy" : "drained");
		     t++)
			usleep(100000);
	}
	printf("  (%s was %s after the last scenario: drained and undrained; now %s)\n", d->primary,
	       st, vendor_state(d, d->primary, now, sizeof now));
	fflush(stdout);
}

long drill_finals_of(json_t *c)
{
	long n = 0;
	const char *k;
	json_t *v;
	json_object_foreach(json_object_get(c, "states"), k,
	                    v) if (strcmp(k, "queued") && strcmp(k, "retrying"))
	    n += (long)json_integer_value(v);
	return n;
}

/* Run the blast of r, injecting its fault; 0 when every message ended (or time ran out: the
 * counts say so), -1 when a process of the drill stopped. */
long drill_opted(const drill_t *d, long n)
{
	long hi = d->stop_hi < n ? d->stop_hi : n;
	return hi > d->stop_lo ? hi - d->stop_lo : 0;
}

/* Start the dispatcher again once the fault of r stopped it (killed; or, for auth, stopped at the
 * clearing); 0, or -1 when it cannot start. */
static int dsp_restart(drill_t *d, run_t *r)
{
	int stopped_by_us = (r->kind == SC_KILL && r->fault) || (r->kind == SC_AUTH && r->clear);
	if (!stopped_by_us || r->restarted || sup_alive(d->sup, d->k_dsp))
		return 0;
	if (sup_restart(d->sup, d->k_dsp))
		return -1;
	r->restarted = 1;
	return 0;
}

int drill_blast(drill_t *d, run_t *r)
{
	sim_defaults(d);
	drill_sim_post(d, "/_sim/reset", NULL);
	if (d->inject && !strncmp(d->inject, "lose:", 5) &&
	    !strcmp(d->inject + 5, drill_sc[r->kind].name)) {
		char b[128];
		snprintf(b, sizeof b, "{\"vendor\":\"%s\",\"lose\":1}", d->primary);
		drill_sim_post(d, "/_sim/config", b);
	}
	if (write_audience(d, r)) {
		fprintf(stderr, "tocsin drill: cannot write %s\n", d->csv);
		return -1;
	}
	r->t0 = clock_wall_ms();
	if (sup_restart(d->sup, d->k_launch))
		return -1;
	int64_t limit = (int64_t)(60000 + 4000.0 * r->n / (d->rate > 1 ? d->rate : 1));
	int64_t fdur = drill_fault_ms(d, r->kind), last_print = 0;
	char path[256];
	snprintf(path, sizeof path, "/api/campaigns/%s", r->id);
	int launch_done = 0;
	char st[32];
	while (!tocsin_stop) {
		usleep(100000);
		int64_t now = clock_wall_ms();
		if (!launch_done && !sup_alive(d->sup, d->k_launch)) {
			launch_done = 1;
			if (sup_status(d->sup, d->k_launch) != 0) {
				fprintf(stderr, "tocsin drill: %s: launch failed\n", r->id);
				sup_log_tail(d->sup, d->k_launch);
				return -1;
			}
		}
		if (d->use_running && !drill_running_alive(d)) {
			fprintf(stderr, "tocsin drill: the running `tocsin up` stopped\n");
			return -1;
		}
		for (int i = 0; i < d->k_launch; i++)
			if (i != d->k_dsp && !sup_alive(d->sup, i)) {
				fprintf(stderr, "tocsin drill: %s stopped unexpectedly\n",
				        sup_name(d->sup, i));
				sup_log_tail(d->sup, i);
				return -1;
			}
		if (dsp_restart(d, r))
			return -1;
		json_t *c = drill_trk_get(d, path);
		long fin = drill_finals_of(c), queued = drill_jl(c, "queued");
		json_decref(c);
		/* recipients a stop scenario opted out are skipped at launch: never final */
		long skipped = launch_done && queued > 0 && queued < r->n ? r->n - queued : 0;
		long target = r->n - (skipped < drill_opted(d, r->n) ? skipped : drill_opted(d, r->n));
		if (fin > 0 && !r->first)
			r->first = now;
		/* the fault starts after DRILL_PRE_MS of traffic, with the primary healthy (a previous
		 * scenario's fault may still be wearing off) */
		if (r->kind != SC_CAPACITY && r->first && !r->fault && now - r->first >= DRILL_PRE_MS &&
		    !strcmp(vendor_state(d, d->primary, st, sizeof st), "healthy")) {
			if (fault_apply(d, r, 1))
				return -1;
			r->fault = clock_wall_ms();
			printf("  %-8s fault at %.1f s (%ld of %ld final)\n",
			       drill_sc[r->kind].name, (r->fault - r->t0) / 1000.0, fin, r->n);
			fflush(stdout);
		}
		if (r->fault && !r->clear && fdur && now - r->fault >= fdur) {
			fault_apply(d, r, 0);
			r->clear = clock_wall_ms();
		}
		if (now - last_print >= 5000) {
			printf("  %-8s %ld / %ld final, %.0f s\n", drill_sc[r->kind].name, fin,
			       r->n, (now - r->t0) / 1000.0);
			fflush(stdout);
			last_print = now;
		}
		if (fin >= target || now - r->t0 > limit)
			break;
	}
	if (r->fault && !r->clear) {
		fault_apply(d, r, 0);
		r->clear = r->kind == SC_KILL || r->kind == SC_CANCEL || r->kind == SC_STOP
		               ? r->fault
		               : clock_wall_ms();
	}
	/* the next scenario needs the dispatcher the clearing stopped */
	for (int i = 0; i < 300 && !tocsin_stop && r->kind == SC_AUTH && r->clear && !r->restarted;
	     i++) {
		if (dsp_restart(d, r))
			return -1;
		usleep(100000);
	}
	r->done = clock_wall_ms();
	return tocsin_stop ? -1 : 0;
}
