/* dsp_metrics.c -- a dispatcher's Prometheus /metrics, served by libmicrohttpd from counters the loop keeps. */
#include "dispatcher/dsp_metrics.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "core/runfile.h"
#include "dispatcher/sla.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NV DSP_METRICS_MAX_VENDORS

struct dsp_metrics {
	const cfg_t *cfg;
	msg_channel_t channel;
	struct MHD_Daemon *d;
	char addr[64];
	pthread_mutex_t mu;
	/* under mu */
	int64_t defers[NV][3]; /* error, timeout, throttled */
	int64_t rl_waits[NV];
	int64_t sla[NV][MSG_VH__COUNT][MSG_VH__COUNT];
	int64_t dead;
	dsp_metrics_gauges_t g;
};

static void label(buf_t *b, const char *s)
{
	buf_putc(b, '"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			buf_putc(b, '\\');
		buf_putc(b, *s == '\n' ? ' ' : *s);
	}
	buf_putc(b, '"');
}

/* name{channel="sms",vendor="x"<extra>} v */
static void sample(buf_t *b, const dsp_metrics_t *m, const char *name, int vendor,
                   const char *extra, int64_t v)
{
	buf_printf(b, "%s{channel=\"%s\"", name, msg_channel_name(m->channel));
	if (vendor >= 0) {
		buf_puts(b, ",vendor=");
		label(b, m->cfg->vendors[vendor].name);
	}
	buf_printf(b, "%s} %lld\n", extra ? extra : "", (long long)v);
}

static void family(buf_t *b, const char *name, const char *type, const char *help)
{
	buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A family with one sample, labelled by channel only. */
static void single(buf_t *b, const dsp_metrics_t *m, const char *name, const char *type,
                   const char *help, int64_t v)
{
	family(b, name, type, help);
	sample(b, m, name, -1, NULL, v);
}

/* This dispatcher's vendors: those of its channel. */
static int mine(const dsp_metrics_t *m, size_t i)
{
	return i < NV && m->cfg->vendors[i].channel == m->channel;
}

static void render(dsp_metrics_t *m, buf_t *b)
{
	pthread_mutex_lock(&m->mu);
	const dsp_metrics_gauges_t *g = &m->g;
	size_t nv = m->cfg->nvendors < NV ? m->cfg->nvendors : NV;
	family(b, "tocsin_dispatch_sends_total", "counter",
	       "Messages sent to each vendor by outcome (accepted, failed for good, deferred).");
	for (size_t i = 0; i < nv; i++)
		if (mine(m, i)) {
			sample(b, m, "tocsin_dispatch_sends_total", (int)i, ",outcome=\"accepted\"",
			       g->accepted[i]);
			sample(b, m, "tocsin_dispatch_sends_total", (int)i, ",outcome=\"failed\"",
			       g->failed[i]);
			sample(b, m, "tocsin_dispatch_sends_total", (int)i, ",outcome=\"deferred\"",
			       g->deferred[i]);
		}
	family(b, "tocsin_dispatch_defers_total", "counter",
	       "Vendor requests deferred, by reason (error: 5xx, refused, reset; timeout; throttled: 429).");
	static const char *const why[3] = {",reason=\"error\"", ",reason=\"timeout\"",
	                                   ",reason=\"throttled\""};
	for (size_t i = 0; i < nv; i++)
		for (int k = 0; k < 3 && mine(m, i); k++)
			sample(b, m, "tocsin_dispatch_defers_total", (int)i, why[k], m->defers[i][k]);
	family(b, "tocsin_dispatch_rate_limit_waits_total", "counter",
	       "Times a vendor's destination waited for its rate limiter.");
	for (size_t i = 0; i < nv; i++)
		if (mine(m, i))
			sample(b, m, "tocsin_dispatch_rate_limit_waits_total", (int)i, NULL,
			       m->rl_waits[i]);
	family(b, "tocsin_dispatch_sla_transitions_total", "counter",
	       "SLA state changes of each vendor seen by this dispatcher (its own and applied).");
	for (size_t i = 0; i < nv; i++)
		for (int f = 0; f < MSG_VH__COUNT && mine(m, i); f++)
			for (int t = 0; t < MSG_VH__COUNT; t++)
				if (m->sla[i][f][t]) {
					char x[80];
					snprintf(x, sizeof x, ",from=\"%s\",to=\"%s\"",
					         msg_vh_state_name(f), msg_vh_state_name(t));
					sample(b, m, "tocsin_dispatch_sla_transitions_total",
					       (int)i, x, m->sla[i][f][t]);
				}
	single(b, m, "tocsin_dispatch_retries_total", "counter",
	       "Retries scheduled after a deferral.", g->retries);
	single(b, m, "tocsin_dispatch_dead_letters_total", "counter",
	       "Records sent to tocsin.dead.", m->dead);
	single(b, m, "tocsin_dispatch_ambiguous_total", "counter",
	       "Sends whose request went out and got no answer (timeout, reset): held for a receipt.",
	       g->ambiguous);
	single(b, m, "tocsin_dispatch_reconciled_total", "counter",
	       "Ambiguous sends a receipt confirmed: not sent again.", g->reconciled);
	single(b, m, "tocsin_dispatch_resent_after_ambiguity_total", "counter",
	       "Ambiguous sends nothing confirmed within the grace: sent again (possible duplicates).",
	       g->resent_after_ambiguity);
	single(b, m, "tocsin_dispatch_in_flight", "gauge", "HTTP requests to vendors in flight.",
	       g->in_flight);
	family(b, "tocsin_dispatch_pending_messages", "gauge",
	       "Messages taken from the outbox and not yet final, by where they are.");
	sample(b, m, "tocsin_dispatch_pending_messages", -1, ",where=\"ready\"", g->ready);
	sample(b, m, "tocsin_dispatch_pending_messages", -1, ",where=\"waiting\"", g->waiting);
	sample(b, m, "tocsin_dispatch_pending_messages", -1, ",where=\"awaiting_ack\"",
	       g->awaiting_ack);
	single(b, m, "tocsin_dispatch_held_messages", "gauge",
	       "Messages held because no vendor of the route can take them (open, drained).", g->held);
	single(b, m, "tocsin_dispatch_consumer_lag", "gauge",
	       "Outbox records of this dispatcher's partitions not yet consumed (-1 unknown).",
	       g->lag);
	pthread_mutex_unlock(&m->mu);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *size, void **ptr)
{
	(void)version, (void)data, (void)size, (void)ptr;
	dsp_metrics_t *m = cls;
	int ok = !strcmp(method, "GET") && !strcmp(url, "/metrics");
	buf_t b;
	buf_init(&b, 1u << 20);
	if (ok)
		render(m, &b);
	else
		buf_puts(&b, "only GET /metrics\n");
	struct MHD_Response *r = MHD_create_response_from_buffer(b.len, b.p, MHD_RESPMEM_MUST_COPY);
	buf_free(&b);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type",
	                        ok ? "text/plain; version=0.0.4" : "text/plain; charset=utf-8");
	enum MHD_Result rc = MHD_queue_response(c, ok ? 200 : 404, r);
	MHD_destroy_response(r);
	return rc;
}

dsp_metrics_t *dsp_metrics_new(const cfg_t *cfg, msg_channel_t channel, const char *client_id,
                               char *err, size_t errlen)
{
	err[0] = 0;
	json_t *l = json_object_get(json_object_get(cfg->root, "dispatcher"), "metrics_listen");
	if (!l)
		return NULL;
	const char *s = json_string_value(l);
	unsigned port = 0;
	char tail;
	if (!s || sscanf(s, "127.0.0.1:%u%c", &port, &tail) != 1 || port > 65535) {
		snprintf(err, errlen, "%s: dispatcher.metrics_listen must be \"127.0.0.1:PORT\"",
		         cfg->path);
		return NULL;
	}
	dsp_metrics_t *m = calloc(1, sizeof *m);
	if (!m) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	m->cfg = cfg;
	m->channel = channel;
	m->g.lag = -1;
	pthread_mutex_init(&m->mu, NULL);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	m->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, (uint16_t)port,
	                        NULL, NULL, on_request, m, MHD_OPTION_SOCK_ADDR,
	                        (struct sockaddr *)&sa, MHD_OPTION_CONNECTION_LIMIT, (unsigned)64,
	                        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10, MHD_OPTION_END);
	const union MHD_DaemonInfo *di = m->d ? MHD_get_daemon_info(m->d, MHD_DAEMON_INFO_BIND_PORT)
	                                      : NULL;
	if (!di) {
		snprintf(err, errlen, "dispatcher metrics: cannot listen on %s (address in use?)", s);
		dsp_metrics_free(m);
		return NULL;
	}
	snprintf(m->addr, sizeof m->addr, "127.0.0.1:%u", (unsigned)di->port);
	char rel[160];
	snprintf(rel, sizeof rel, "run/%s.metrics.addr", client_id);
	if (runfile_write(cfg, rel, m->addr, err, errlen)) {
		dsp_metrics_free(m);
		return NULL;
	}
	log_info("event=metrics_listening addr=%s", m->addr);
	return m;
}

void dsp_metrics_free(dsp_metrics_t *m)
{
	if (!m)
		return;
	if (m->d)
		MHD_stop_daemon(m->d);
	pthread_mutex_destroy(&m->mu);
	free(m);
}

const char *dsp_metrics_addr(const dsp_metrics_t *m) { return m ? m->addr : ""; }

void dsp_metrics_answer(dsp_metrics_t *m, int vendor, int o)
{
	int k = o == SLA_ERROR ? 0 : o == SLA_TIMEOUT ? 1 : o == SLA_THROTTLED ? 2 : -1;
	if (!m || k < 0 || vendor < 0 || vendor >= NV)
		return;
	pthread_mutex_lock(&m->mu);
	m->defers[vendor][k]++;
	pthread_mutex_unlock(&m->mu);
}

void dsp_metrics_rl_wait(dsp_metrics_t *m, int vendor)
{
	if (!m || vendor < 0 || vendor >= NV)
		return;
	pthread_mutex_lock(&m->mu);
	m->rl_waits[vendor]++;
	pthread_mutex_unlock(&m->mu);
}

void dsp_metrics_sla(dsp_metrics_t *m, int vendor, int from, int to)
{
	if (!m || vendor < 0 || vendor >= NV || (unsigned)from >= MSG_VH__COUNT ||
	    (unsigned)to >= MSG_VH__COUNT)
		return;
	pthread_mutex_lock(&m->mu);
	m->sla[vendor][from][to]++;
	pthread_mutex_unlock(&m->mu);
}

void dsp_metrics_dead(dsp_metrics_t *m)
{
	if (!m)
		return;
	pthread_mutex_lock(&m->mu);
	m->dead++;
	pthread_mutex_unlock(&m->mu);
}

void dsp_metrics_set(dsp_metrics_t *m, const dsp_metrics_gauges_t *g)
{
	if (!m)
		return;
	pthread_mutex_lock(&m->mu);
	m->g = *g;
	pthread_mutex_unlock(&m->mu);
}
