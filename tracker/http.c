/* http.c -- the tracker's HTTP server: routing, dashboard, JSON API, /metrics, webhooks. */
#include "core/err.h"
#include "core/log.h"
#include "core/runfile.h"
#include "tracker/trk.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct trk_live {
	pthread_mutex_t mu;
	int64_t lag, total, applied, bad;
};

trk_live_t *trk_live_new(void)
{
	trk_live_t *l = calloc(1, sizeof *l);
	if (l) {
		pthread_mutex_init(&l->mu, NULL);
		l->lag = -1;
	}
	return l;
}

void trk_live_free(trk_live_t *l)
{
	if (!l)
		return;
	pthread_mutex_destroy(&l->mu);
	free(l);
}

void trk_live_status(trk_live_t *l, const msg_status_t *s, int applied)
{
	(void)l;
	(void)s;
	(void)applied;
}

void trk_live_lag(trk_live_t *l, int64_t lag)
{
	pthread_mutex_lock(&l->mu);
	l->lag = lag;
	pthread_mutex_unlock(&l->mu);
}

void trk_live_ingest(trk_live_t *l, int64_t total, int64_t applied, int64_t bad)
{
	pthread_mutex_lock(&l->mu);
	l->total = total;
	l->applied = applied;
	l->bad = bad;
	pthread_mutex_unlock(&l->mu);
}

struct trk_http {
	const cfg_t *cfg;
	trk_live_t *live;
	struct MHD_Daemon *d;
	char addr[64];
};

static enum MHD_Result answer(struct MHD_Connection *c, unsigned code, const char *ctype,
                              const char *body, size_t len)
{
	struct MHD_Response *r =
	    MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", ctype);
	enum MHD_Result ret = MHD_queue_response(c, code, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *upload,
                               size_t *upload_size, void **req)
{
	(void)cls;
	(void)version;
	(void)upload;
	(void)method;
	if (!*req) {
		*req = (void *)1;
		return MHD_YES;
	}
	if (*upload_size) {
		*upload_size = 0;
		return MHD_YES;
	}
	if (!strcmp(url, "/healthz"))
		return answer(c, 200, "text/plain", "ok\n", 3);
	static const char nf[] = "{\"error\":\"not found\"}\n";
	return answer(c, 404, "application/json", nf, sizeof nf - 1);
}

/* Parse "HOST:PORT" (HOST must be a loopback IPv4 literal or "localhost"). */
static int parse_listen(const char *s, struct sockaddr_in *sa, char *err, size_t errlen)
{
	const char *colon = strrchr(s, ':');
	char host[64];
	if (!colon || colon == s || (size_t)(colon - s) >= sizeof host) {
		snprintf(err, errlen, "listen address \"%s\" is not HOST:PORT", s);
		return TOCSIN_ERR_INVAL;
	}
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = 0;
	char *end;
	long port = strtol(colon + 1, &end, 10);
	if (*end || end == colon + 1 || port < 0 || port > 65535) {
		snprintf(err, errlen, "listen address \"%s\": bad port", s);
		return TOCSIN_ERR_INVAL;
	}
	memset(sa, 0, sizeof *sa);
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	if (!strcmp(host, "localhost"))
		snprintf(host, sizeof host, "127.0.0.1");
	if (inet_pton(AF_INET, host, &sa->sin_addr) != 1 ||
	    (ntohl(sa->sin_addr.s_addr) >> 24) != 127) {
		snprintf(err, errlen, "listen address \"%s\": the tracker listens on 127.0.0.1 only", s);
		return TOCSIN_ERR_INVAL;
	}
	return 0;
}

trk_http_t *trk_http_new(const cfg_t *cfg, const char *listen, trk_live_t *live, char *err,
                         size_t errlen)
{
	struct sockaddr_in sa;
	if (parse_listen(listen, &sa, err, errlen))
		return NULL;
	trk_http_t *h = calloc(1, sizeof *h);
	if (!h) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	h->cfg = cfg;
	h->live = live;
	h->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL_LINUX_ONLY |
	                            MHD_USE_ERROR_LOG,
	                        0, NULL, NULL, handler, h, MHD_OPTION_SOCK_ADDR, &sa,
	                        MHD_OPTION_THREAD_POOL_SIZE, 2u, MHD_OPTION_CONNECTION_TIMEOUT, 30u,
	                        MHD_OPTION_END);
	if (!h->d) {
		snprintf(err, errlen, "cannot listen on %s (address in use?)", listen);
		free(h);
		return NULL;
	}
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
	char ip[32];
	inet_ntop(AF_INET, &sa.sin_addr, ip, sizeof ip);
	snprintf(h->addr, sizeof h->addr, "%s:%u", ip, di ? (unsigned)di->port : 0u);
	char line[80];
	snprintf(line, sizeof line, "%s\n", h->addr);
	if (runfile_write(cfg, "run/track.addr", line, err, errlen)) {
		trk_http_free(h);
		return NULL;
	}
	return h;
}

const char *trk_http_addr(const trk_http_t *h) { return h->addr; }

void trk_http_free(trk_http_t *h)
{
	if (!h)
		return;
	if (h->d)
		MHD_stop_daemon(h->d);
	free(h);
}
