/* vsend.c -- sends outside the dispatcher: the adapter's request, the HTTP engine, the vendor's rate limit. */
#include "vendors/vsend.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/rl.h"
#include "vendors/http.h"
#include "vendors/vnd_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NS_PER_MS 1000000LL

struct vsend {
	const cfg_vendor_t *v;
	vnd_t *a;
	rl_t *rl;
	http_t *http;
	vsend_opts_t o;
	msg_vh_state_t health;
};

static int64_t mono_now(void *ctx)
{
	(void)ctx;
	return clock_mono_ns();
}

static int nap(void *ctx, int64_t ns)
{
	(void)ctx;
	struct timespec ts = {.tv_sec = ns / 1000000000LL, .tv_nsec = ns % 1000000000LL};
	while (nanosleep(&ts, &ts) != 0)
		;
	return 0;
}

vsend_t *vsend_new(const cfg_t *c, const cfg_vendor_t *v, const vsend_opts_t *o, char *err, size_t errlen)
{
	vsend_t *s = calloc(1, sizeof *s);
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->v = v;
	s->o.now_ns = o && o->now_ns ? o->now_ns : mono_now;
	s->o.wait_ns = o && o->wait_ns ? o->wait_ns : nap;
	s->o.ctx = o ? o->ctx : NULL;
	s->health = MSG_VH_HEALTHY;
	if (!(s->a = vnd_new(c, v, err, errlen)) || !(s->rl = rl_new(v, err, errlen)) ||
	    !(s->http = http_new(1, VND_MAX_BODY, 0, err, errlen))) {
		vsend_free(s);
		return NULL;
	}
	return s;
}

void vsend_free(vsend_t *s)
{
	if (!s)
		return;
	http_free(s->http);
	rl_free(s->rl);
	vnd_free(s->a);
	free(s);
}

vnd_t *vsend_vnd(vsend_t *s) { return s->a; }

void vsend_set_health(vsend_t *s, msg_vh_state_t st) { s->health = st; }

/* Take units for sender slot from the limits, waiting up to max_wait_ms (-1: no
 * bound). 0, or TOCSIN_ERR_TIMEOUT with nothing taken. */
static int pace(vsend_t *s, int slot, int units, int max_wait_ms, int64_t *waited_ms, char *err,
                size_t errlen)
{
	int64_t waited = 0, w = 0;
	while (rl_take(s->rl, slot, units, s->o.now_ns(s->o.ctx), &w) != 0) {
		if (w == RL_NEVER || (max_wait_ms >= 0 && waited + w > max_wait_ms * NS_PER_MS)) {
			snprintf(err, errlen,
			         "vendor %s: its rate limit holds %d unit(s) longer than %d ms",
			         s->v->name, units, max_wait_ms);
			return TOCSIN_ERR_TIMEOUT;
		}
		if (s->o.wait_ns(s->o.ctx, w)) {
			snprintf(err, errlen, "vendor %s: wait for the rate limit given up",
			         s->v->name);
			return TOCSIN_ERR_TIMEOUT;
		}
		waited += w;
	}
	*waited_ms = waited / NS_PER_MS;
	return 0;
}

/* Send the request built into x and wait for its answer (x stays acquired). */
static int run(vsend_t *s, http_xfer_t *x, http_done_t *d, char *err, size_t errlen)
{
	int rc = http_submit(s->http, x, s->v->timeout_ms > 0 ? s->v->timeout_ms : 10000, NULL);
	if (rc) {
		snprintf(err, errlen, "vendor %s: cannot start the request", s->v->name);
		return rc;
	}
	while (!http_next_done(s->http, d))
		if ((rc = http_run(s->http, -1, 200)) < 0) {
			snprintf(err, errlen, "vendor %s: HTTP engine failed", s->v->name);
			return rc;
		}
	return 0;
}

int vsend_msgs(vsend_t *s, const msg_out_t *const *msgs, size_t n, int max_wait_ms,
               vnd_result_t *results, vsend_info_t *info, char *err, size_t errlen)
{
	vsend_info_t dummy;
	info = info ? info : &dummy;
	memset(info, 0, sizeof *info);
	if (s->health == MSG_VH_OPEN || s->health == MSG_VH_DRAINED) {
		snprintf(err, errlen, "vendor %s is %s: not sent", s->v->name,
		         msg_vh_state_name(s->health));
		return TOCSIN_ERR_AGAIN;
	}
	http_xfer_t *x = http_acquire(s->http);
	if (!x) {
		snprintf(err, errlen, "vendor %s: no transfer free", s->v->name);
		return TOCSIN_ERR_STATE;
	}
	int rc = vnd_build(s->a, msgs, n, http_xfer_req(x), err, errlen);
	int units = 0;
	for (size_t i = 0; i < n; i++)
		units += msgs[i]->channel == MSG_CH_SMS && msgs[i]->segments > 0 ? msgs[i]->segments
		                                                                 : 1;
	if (!rc)
		rc = pace(s, rl_sender(s->rl, msgs[0]->sender), units, max_wait_ms,
		          &info->waited_ms, err, errlen);
	http_done_t d;
	if (!rc)
		rc = run(s, x, &d, err, errlen);
	if (rc) {
		http_release(s->http, x);
		return rc;
	}
	info->http_status = d.status;
	info->curl_code = d.curl_code;
	info->latency_ms = d.latency_ns / NS_PER_MS;
	vnd_classify(s->a, msgs, n, d.status, d.curl_code, d.body, d.bodylen, d.retry_after_s, results);
	http_release(s->http, x);
	int64_t now = s->o.now_ns(s->o.ctx);
	for (size_t i = 0; i < n; i++) {
		if (results[i].throttled) {
			rl_throttled(s->rl, now);
			if (results[i].retry_after_ms > 0)
				rl_hold_until(s->rl, now + results[i].retry_after_ms * NS_PER_MS);
			break;
		}
	}
	return 0;
}

int vsend_lookup(vsend_t *s, const char *ref, int max_wait_ms, vnd_lookup_t *out, char *err,
                 size_t errlen)
{
	memset(out, 0, sizeof *out);
	http_xfer_t *x = http_acquire(s->http);
	if (!x) {
		snprintf(err, errlen, "vendor %s: no transfer free", s->v->name);
		return TOCSIN_ERR_STATE;
	}
	int64_t waited;
	int rc = vnd_lookup_build(s->a, ref, http_xfer_req(x), err, errlen);
	if (!rc)
		rc = pace(s, -1, 1, max_wait_ms, &waited, err, errlen);
	http_done_t d;
	if (!rc)
		rc = run(s, x, &d, err, errlen);
	if (!rc) {
		rc = vnd_lookup_parse(s->a, d.status, d.curl_code, d.body, d.bodylen, out);
		if (rc)
			snprintf(err, errlen, "vendor %s: lookup of %s answered http=%ld curl=%d: %s",
			         s->v->name, ref, d.status, d.curl_code, tocsin_strerror(rc));
		if (d.status == 429)
			rl_throttled(s->rl, s->o.now_ns(s->o.ctx));
	}
	http_release(s->http, x);
	return rc;
}
