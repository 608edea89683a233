/* sim_srv.c -- the emulator's engine: HTTP server, id counting, fault injection, scheduler and webhook senders; it knows no vendor API. */
#include "vendors/sim/sim_int.h"

#include "core/clock.h"
#include "core/err.h"
#include "core/hash.h"
#include "core/log.h"
#include "vendors/vnd_int.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define SIM_MAX_REQ (32u << 20)
#define SIM_IDS_MAX_CAP (1u << 24)
#define SIM_WQ_MAX 1000000
#define SIM_MAX_HUNG 10000

typedef struct sim_conn {
	buf_t body;
	struct MHD_Response *resp; /* prepared answer waiting for a delay */
	unsigned status;
	int hang;
} sim_conn_t;

double sim_rand(sim_t *s)
{
	uint64_t n = atomic_fetch_add(&s->seq, 1);
	uint64_t h = hash64(&n, sizeof n, 0x9e3779b97f4a7c15ull);
	return (double)(h >> 11) / 9007199254740992.0;
}

void sim_fault_get(sim_vendor_t *sv, sim_fault_t *f)
{
	pthread_mutex_lock(&sv->fmu);
	*f = sv->f;
	pthread_mutex_unlock(&sv->fmu);
}

/* The "auth" outage: how each vendor refuses credentials it no longer takes (the same answers
 * as a wrong secret: Twilio 401 20003, Vonage status 4, SendGrid 401, Mailgun 401). */
static void sim_auth_refused(int kind, sim_ans_t *ans)
{
	ans->status = kind == SIM_VONAGE ? 200 : 401;
	ans->ctype = kind == SIM_MAILGUN ? "text/plain" : "application/json";
	if (kind == SIM_TWILIO) {
		buf_puts(&ans->body, "{\"code\":20003,\"message\":\"Authenticate\",\"more_info\":"
		                     "\"https://www.twilio.com/docs/errors/20003\",\"status\":401}");
		snprintf(ans->hname, sizeof ans->hname, "WWW-Authenticate");
		snprintf(ans->hval, sizeof ans->hval, "Basic realm=\"Twilio API\"");
	} else if (kind == SIM_VONAGE) {
		buf_puts(&ans->body, "{\"message-count\":\"1\",\"messages\":[{\"status\":\"4\","
		                     "\"error-text\":\"Bad Credentials\"}]}");
	} else if (kind == SIM_SENDGRID) {
		buf_puts(&ans->body,
		         "{\"errors\":[{\"field\":null,\"message\":\"The provided authorization "
		         "grant is invalid, expired, or revoked\",\"help\":null}]}");
	} else {
		buf_puts(&ans->body, "Forbidden");
	}
}

int sim_faults(sim_t *s, sim_vendor_t *sv, const sim_fault_t *f, sim_ans_t *ans)
{
	if (f->outage == SIM_OUT_REFUSE || f->outage == SIM_OUT_RESET) {
		ans->drop = 1;
		return 1;
	}
	if (f->outage == SIM_OUT_HANG) {
		ans->hang = 1;
		return 1;
	}
	if (f->outage == SIM_OUT_AUTH) { /* our credentials revoked: each vendor's own refusal */
		sim_auth_refused(sv->kind, ans);
		return 1;
	}
	if (f->lat_median_ms > 0 || f->lat_tail_ms > 0) {
		/* median m: 98% spread evenly over [m/2, 3m/2]; tail t is the p99:
		 * 1% over [3m/2, t], the slowest 1% over [t, 2t] */
		double u = sim_rand(s), m = f->lat_median_ms;
		double t = f->lat_tail_ms > 1.5 * m ? f->lat_tail_ms : 1.5 * m;
		if (u < 0.98)
			ans->delay_ms = m * (0.5 + u / 0.98);
		else if (u < 0.99)
			ans->delay_ms = 1.5 * m + (t - 1.5 * m) * (u - 0.98) / 0.01;
		else
			ans->delay_ms = t + t * (u - 0.99) / 0.01;
	}
	int kind = sv->kind;
	if (f->outage == SIM_OUT_503 || (f->error_rate > 0 && sim_rand(s) < f->error_rate)) {
		unsigned st = f->outage == SIM_OUT_503 ? 503 : 500;
		ans->status = st;
		if (kind == SIM_TWILIO) {
			ans->ctype = "application/json";
			buf_printf(&ans->body,
			           "{\"code\":%d,\"message\":\"%s\",\"more_info\":\"https://www.twilio.com/docs/"
			           "errors/%d\",\"status\":%u}",
			           st == 503 ? 20503 : 20500,
			           st == 503 ? "Service Unavailable" : "Internal Server Error",
			           st == 503 ? 20503 : 20500, st);
		} else if (kind == SIM_SENDGRID) {
			ans->ctype = "application/json";
			buf_printf(&ans->body,
			           "{\"errors\":[{\"field\":null,\"message\":\"%s\",\"help\":null}]}",
			           st == 503 ? "service unavailable" : "internal error");
		} else {
			ans->ctype = "text/html";
			buf_printf(&ans->body,
			           "<html><head><title>%u %s</title></head><body><center><h1>%u %s</h1>"
			           "</center></body></html>\n",
			           st,
			           st == 503 ? "Service Temporarily Unavailable"
			                     : "Internal Server Error",
			           st,
			           st == 503 ? "Service Temporarily Unavailable"
			                     : "Internal Server Error");
		}
		return 1;
	}
	if (f->throttle_rate > 0 && sim_rand(s) < f->throttle_rate) {
		if (kind == SIM_VONAGE) {
			ans->status = 200;
			ans->ctype = "application/json";
			buf_puts(&ans->body,
			         "{\"message-count\":\"1\",\"messages\":[{\"status\":\"1\","
			         "\"error-text\":\"Throughput Rate Exceeded - please wait [ 1000 ] "
			         "and retry\"}]}");
			return 1;
		}
		ans->status = 429;
		ans->retry_after_s = f->retry_after_s;
		ans->ctype = "application/json";
		if (kind == SIM_TWILIO)
			buf_puts(&ans->body,
			         "{\"code\":20429,\"message\":\"Too Many Requests\",\"more_info\":"
			         "\"https://www.twilio.com/docs/errors/20429\",\"status\":429}");
		else if (kind == SIM_SENDGRID)
			buf_puts(&ans->body,
			         "{\"errors\":[{\"field\":null,\"message\":\"too many requests\","
			         "\"help\":null}]}");
		else
			buf_puts(&ans->body, "{\"message\":\"Too many requests\"}");
		return 1;
	}
	return 0;
}

int sim_outage(sim_t *s, sim_vendor_t *sv, sim_ans_t *ans)
{
	sim_fault_t f;
	sim_fault_get(sv, &f);
	if (f.outage == SIM_OUT_NONE)
		return 0;
	sim_note_request(sv);
	return sim_faults(s, sv, &f, ans);
}

static void ids_init(sim_ids_t *ids)
{
	pthread_mutex_init(&ids->mu, NULL);
	ids->cap = 1u << 16;
	ids->t = calloc(ids->cap, sizeof *ids->t);
	ids->dups = calloc(SIM_MAX_DUP_IDS, sizeof *ids->dups);
}

void sim_ids_clear(sim_ids_t *ids)
{
	memset(ids->t, 0, ids->cap * sizeof *ids->t);
	ids->n = 0;
	ids->overflow = 0;
	ids->dup_count = 0;
	ids->ndups = 0;
}

static void ids_free(sim_ids_t *ids)
{
	free(ids->t);
	free(ids->dups);
	pthread_mutex_destroy(&ids->mu);
}

static sim_slot_t *ids_slot(sim_slot_t *t, size_t cap, uint64_t a, uint64_t b)
{
	size_t i = (size_t)(a ^ (b * 0x9e3779b97f4a7c15ull)) & (cap - 1);
	while (t[i].cnt && (t[i].a != a || t[i].b != b))
		i = (i + 1) & (cap - 1);
	return &t[i];
}

void sim_ids_add(sim_vendor_t *sv, const char *id)
{
	if (!id || !*id)
		return;
	size_t len = strnlen(id, 200);
	uint64_t a = hash64(id, len, 1), b = hash64(id, len, 2);
	sim_ids_t *ids = &sv->ids;
	pthread_mutex_lock(&ids->mu);
	if (ids->t && (ids->n + 1) * 2 > ids->cap && ids->cap < SIM_IDS_MAX_CAP) {
		size_t nc = ids->cap * 2;
		sim_slot_t *nt = calloc(nc, sizeof *nt);
		if (nt) {
			for (size_t i = 0; i < ids->cap; i++)
				if (ids->t[i].cnt)
					*ids_slot(nt, nc, ids->t[i].a, ids->t[i].b) = ids->t[i];
			free(ids->t);
			ids->t = nt;
			ids->cap = nc;
		}
	}
	if (!ids->t || (ids->n + 1) * 4 > ids->cap * 3) {
		ids->overflow = 1;
		pthread_mutex_unlock(&ids->mu);
		return;
	}
	sim_slot_t *sl = ids_slot(ids->t, ids->cap, a, b);
	if (!sl->cnt) {
		sl->a = a;
		sl->b = b;
		ids->n++;
	} else {
		ids->dup_count++;
		if (sl->cnt == 1 && ids->ndups < SIM_MAX_DUP_IDS)
			vnd_cpy(ids->dups[ids->ndups++], sizeof ids->dups[0], id);
	}
	if (sl->cnt < UINT32_MAX)
		sl->cnt++;
	pthread_mutex_unlock(&ids->mu);
}

sim_vendor_t *sim_find(sim_t *s, int kind, int (*pred)(sim_vendor_t *, const void *), const void *ctx)
{
	for (size_t i = 0; i < s->nv; i++)
		if (s->vs[i].kind == kind && (!pred || pred(&s->vs[i], ctx)))
			return &s->vs[i];
	return NULL;
}

/* sv's slot for the current 50 ms tick, emptied when it held an older one; under secmu */
static size_t tick_slot(sim_vendor_t *sv, int64_t now_ms)
{
	int64_t t = now_ms / SIM_TICK_MS;
	size_t i = (size_t)(t % SIM_TICKS);
	if (sv->tick_key[i] != t) {
		sv->tick_key[i] = t;
		sv->tick_req[i] = sv->tick_acc[i] = 0;
	}
	return i;
}

void sim_note_accepted(sim_vendor_t *sv, uint64_t n)
{
	atomic_fetch_add(&sv->accepted, n);
	int64_t now = clock_wall_ms(), sec = now / 1000;
	size_t i = (size_t)(sec % SIM_SECS);
	pthread_mutex_lock(&sv->secmu);
	if (sv->sec_key[i] != sec) {
		sv->sec_key[i] = sec;
		sv->sec_count[i] = 0;
	}
	sv->sec_count[i] += n;
	sv->tick_acc[tick_slot(sv, now)] += (uint32_t)n;
	pthread_mutex_unlock(&sv->secmu);
}

void sim_note_request(sim_vendor_t *sv)
{
	atomic_fetch_add(&sv->requests, 1);
	int64_t now = clock_wall_ms();
	pthread_mutex_lock(&sv->secmu);
	sv->tick_req[tick_slot(sv, now)]++;
	pthread_mutex_unlock(&sv->secmu);
}

static void heap_push(sim_t *s, sim_item_t *it)
{
	if (s->nheap == s->capheap) {
		size_t nc = s->capheap ? s->capheap * 2 : 1024;
		sim_item_t **nh = realloc(s->heap, nc * sizeof *nh);
		if (!nh)
			return;
		s->heap = nh;
		s->capheap = nc;
	}
	size_t i = s->nheap++;
	while (i > 0 && s->heap[(i - 1) / 2]->due > it->due) {
		s->heap[i] = s->heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	s->heap[i] = it;
	pthread_cond_signal(&s->cv);
}

static sim_item_t *heap_pop(sim_t *s)
{
	sim_item_t *top = s->heap[0], *last = s->heap[--s->nheap];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= s->nheap)
			break;
		if (c + 1 < s->nheap && s->heap[c + 1]->due < s->heap[c]->due)
			c++;
		if (s->heap[c]->due >= last->due)
			break;
		s->heap[i] = s->heap[c];
		i = c;
	}
	if (s->nheap)
		s->heap[i] = last;
	return top;
}

static void item_free(sim_item_t *it)
{
	if (!it)
		return;
	free(it->url);
	free(it->body);
	free(it->ctype);
	free(it->h1n);
	free(it->h1v);
	free(it->h2n);
	free(it->h2v);
	free(it->raw);
	free(it);
}

static void wq_push(sim_t *s, sim_item_t *it)
{
	pthread_mutex_lock(&s->wmu);
	if (s->wq_n >= s->wq_cap) {
		atomic_fetch_add(&s->wh_dropped, 1);
		pthread_mutex_unlock(&s->wmu);
		item_free(it);
		return;
	}
	s->wq[(s->wq_head + s->wq_n++) % s->wq_cap] = it;
	pthread_cond_signal(&s->wcv);
	pthread_mutex_unlock(&s->wmu);
}

static void *timer_main(void *arg)
{
	sim_t *s = arg;
	pthread_mutex_lock(&s->mu);
	for (;;) {
		if (s->stopping)
			break;
		if (!s->nheap) {
			pthread_cond_wait(&s->cv, &s->mu);
			continue;
		}
		int64_t now = clock_mono_ms();
		if (s->heap[0]->due > now) {
			int64_t wait = s->heap[0]->due - now;
			if (wait > 1000)
				wait = 1000;
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += (long)(wait % 1000) * 1000000L;
			ts.tv_sec += wait / 1000 + ts.tv_nsec / 1000000000L;
			ts.tv_nsec %= 1000000000L;
			pthread_cond_timedwait(&s->cv, &s->mu, &ts);
			continue;
		}
		sim_item_t *it = heap_pop(s);
		pthread_mutex_unlock(&s->mu);
		if (it->type == 0) {
			MHD_resume_connection(it->con);
			free(it);
		} else
			wq_push(s, it);
		pthread_mutex_lock(&s->mu);
	}
	/* stopping: resume every suspended connection so the daemon can close it */
	while (s->nheap) {
		sim_item_t *it = heap_pop(s);
		if (it->type == 0)
			MHD_resume_connection(it->con);
		item_free(it);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

static char *dupn(const char *p) { return p ? strdup(p) : NULL; }

/* (re)schedule webhook it at due; it is freed when the queue is full */
static void schedule(sim_t *s, sim_item_t *it, int64_t due)
{
	it->due = due;
	pthread_mutex_lock(&s->mu);
	if (s->nheap >= SIM_WQ_MAX || s->stopping) {
		pthread_mutex_unlock(&s->mu);
		atomic_fetch_add(&s->wh_dropped, 1);
		item_free(it);
		return;
	}
	heap_push(s, it);
	pthread_mutex_unlock(&s->mu);
}

static void later(sim_t *s, sim_vendor_t *sv, double delay_ms, int once, const char *url,
                  const char *ctype, const char *body, const char *h1n, const char *h1v,
                  const char *h2n, const char *h2v)
{
	sim_item_t *it = calloc(1, sizeof *it);
	if (!it)
		return;
	it->type = 1;
	it->sv = sv;
	it->once = once;
	it->first_ms = clock_mono_ms() + (int64_t)delay_ms;
	it->url = dupn(url);
	it->ctype = dupn(ctype);
	it->body = dupn(body);
	it->h1n = dupn(h1n);
	it->h1v = dupn(h1v);
	it->h2n = dupn(h2n);
	it->h2v = dupn(h2v);
	schedule(s, it, it->first_ms);
}

void sim_webhook_later(sim_t *s, sim_vendor_t *sv, double delay_ms, const char *url,
                       const char *ctype, const char *body, const char *h1n, const char *h1v,
                       const char *h2n, const char *h2v)
{
	later(s, sv, delay_ms, 0, url, ctype, body, h1n, h1v, h2n, h2v);
}

int64_t sim_now_s(sim_t *s)
{
	return clock_wall_ms() / 1000 + (int64_t)atomic_load(&s->clock_advance_s);
}

void sim_webhook_signed(sim_t *s, sim_vendor_t *sv, double delay_ms, const char *url,
                        const char *ctype, const void *raw, size_t rawlen, sim_sign_fn sign)
{
	sim_item_t *it = calloc(1, sizeof *it);
	if (!it || !(it->raw = malloc(rawlen ? rawlen : 1))) {
		free(it);
		return;
	}
	memcpy(it->raw, raw, rawlen);
	it->rawlen = rawlen;
	it->sign = sign;
	it->type = 1;
	it->sv = sv;
	it->first_ms = clock_mono_ms() + (int64_t)delay_ms;
	it->url = dupn(url);
	it->ctype = dupn(ctype);
	schedule(s, it, it->first_ms);
}

void sim_webhook_once(sim_t *s, sim_vendor_t *sv, double delay_ms, const char *url,
                      const char *ctype, const char *body, const char *h1n, const char *h1v,
                      const char *h2n, const char *h2v)
{
	later(s, sv, delay_ms, 1, url, ctype, body, h1n, h1v, h2n, h2v);
}

/* When webhook it, whose delivery number it->tries just failed (status: the HTTP
 * answer, 0 when no answer came), is tried again, as its vendor does
 * (vendors/README.md, "Webhook retries"): ms from now, or -1 for never. */
static double retry_in(const sim_item_t *it, long status, int64_t now, const sim_fault_t *f)
{
	static const double mailgun_min[] = {5, 10, 15, 60, 120, 240}; /* then it stops (8 h) */
	double k = f->retry_scale > 0 ? f->retry_scale : 1, since = (double)(now - it->first_ms);
	if (!f->receipt_retries || it->once)
		return -1;
	switch (it->sv->kind) {
	case SIM_TWILIO: /* rc=1, rp=ct: once more at once, when the connection failed, within tt 15 s */
		return status == 0 && it->tries < 2 && since < 15000 ? 0 : -1;
	case SIM_VONAGE: /* on 429, 5xx or no answer: after 5 s, doubling up to 15 min, for 24 h */
	case SIM_SENDGRID: { /* retries for up to 24 h; its schedule is not published: Vonage's */
		if (status && status != 429 && status < 500)
			return -1;
		int n = it->tries < 16 ? it->tries : 16;
		double d = 5000.0 * (double)(1 << (n - 1));
		d = (d < 900000 ? d : 900000) * k;
		return since + d <= 86400000.0 * k ? d : -1;
	}
	case SIM_MAILGUN: /* any answer but 2xx and 406: 5, 10, 15 min, 1, 2, 4 h apart */
		if (status == 406 || it->tries > 6)
			return -1;
		return mailgun_min[it->tries - 1] * 60000 * k;
	}
	return -1;
}

static size_t discard(char *p, size_t sz, size_t n, void *u)
{
	(void)p;
	(void)u;
	return sz * n;
}

static void *sender_main(void *arg)
{
	sim_t *s = arg;
	CURL *h = curl_easy_init();
	for (;;) {
		pthread_mutex_lock(&s->wmu);
		while (!s->wq_n && !s->stopping)
			pthread_cond_wait(&s->wcv, &s->wmu);
		if (s->stopping) {
			pthread_mutex_unlock(&s->wmu);
			break;
		}
		sim_item_t *it = s->wq[s->wq_head];
		s->wq_head = (s->wq_head + 1) % s->wq_cap;
		s->wq_n--;
		pthread_mutex_unlock(&s->wmu);
		long code = 0;
		CURLcode cc = CURLE_FAILED_INIT;
		if (it->sign && it->sign(it, sim_now_s(s)))
			log_warn("event=sim_webhook_unsigned vendor=%s msg=\"cannot sign\"",
			         it->sv->v->name);
		if (h) {
			struct curl_slist *hd = NULL;
			char line[1024];
			snprintf(line, sizeof line, "Content-Type: %s",
			         it->ctype ? it->ctype : "text/plain");
			hd = curl_slist_append(hd, line);
			if (it->h1n) {
				snprintf(line, sizeof line, "%s: %s", it->h1n, it->h1v ? it->h1v : "");
				hd = curl_slist_append(hd, line);
			}
			if (it->h2n) {
				snprintf(line, sizeof line, "%s: %s", it->h2n, it->h2v ? it->h2v : "");
				hd = curl_slist_append(hd, line);
			}
			hd = curl_slist_append(hd, "Expect:");
			curl_easy_reset(h);
			curl_easy_setopt(h, CURLOPT_URL, it->url);
			curl_easy_setopt(h, CURLOPT_POSTFIELDS, it->body ? it->body : "");
			curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
			curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
			curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
			curl_easy_setopt(h, CURLOPT_USERAGENT, "TwilioProxy/1.1 (tocsin vendor-sim)");
			curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
			cc = curl_easy_perform(h);
			curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
			curl_slist_free_all(hd);
		}
		it->tries++;
		if (cc == CURLE_OK && code >= 200 && code < 300) {
			atomic_fetch_add(&s->wh_sent, 1);
			item_free(it);
			continue;
		}
		sim_fault_t f;
		sim_fault_get(it->sv, &f);
		int64_t now = clock_mono_ms();
		double d = retry_in(it, cc == CURLE_OK ? code : 0, now, &f);
		if (d >= 0) {
			atomic_fetch_add(&s->wh_retried, 1);
			schedule(s, it, now + (int64_t)d);
			continue;
		}
		atomic_fetch_add(&s->wh_failed, 1);
		log_warn("event=sim_webhook_failed vendor=%s url=%s http=%ld curl=%d tries=%d",
		         it->sv->v->name, it->url, code, (int)cc, it->tries);
		item_free(it);
	}
	curl_easy_cleanup(h);
	return NULL;
}

static enum MHD_Result send_ans(struct MHD_Connection *con, sim_ans_t *ans, sim_conn_t *x, int later)
{
	struct MHD_Response *r;
	if (ans->body.p && ans->body.len) { /* MHD takes the buffer and free()s it */
		r = MHD_create_response_from_buffer(ans->body.len, ans->body.p, MHD_RESPMEM_MUST_FREE);
		if (r)
			ans->body.p = NULL, ans->body.len = ans->body.cap = 0;
	} else
		r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	if (!r)
		return MHD_NO;
	if (ans->ctype)
		MHD_add_response_header(r, "Content-Type", ans->ctype);
	if (ans->retry_after_s >= 0) {
		char ra[24];
		snprintf(ra, sizeof ra, "%d", ans->retry_after_s);
		MHD_add_response_header(r, "Retry-After", ra);
	}
	if (ans->hname[0])
		MHD_add_response_header(r, ans->hname, ans->hval);
	if (later) {
		x->resp = r;
		x->status = ans->status;
		return MHD_YES;
	}
	enum MHD_Result ret = MHD_queue_response(con, ans->status, r);
	if (ret != MHD_YES)
		log_warn("event=sim_queue_failed status=%u len=%zu", ans->status, ans->body.len);
	MHD_destroy_response(r);
	return ret;
}

/* Suspend con until due; -1 (not suspended) when stopping or out of memory. */
static int suspend_until(sim_t *s, struct MHD_Connection *con, int64_t due)
{
	sim_item_t *it = calloc(1, sizeof *it);
	if (!it)
		return -1;
	it->type = 0;
	it->con = con;
	it->due = due;
	pthread_mutex_lock(&s->mu);
	if (s->stopping) {
		pthread_mutex_unlock(&s->mu);
		free(it);
		return -1;
	}
	MHD_suspend_connection(con);
	heap_push(s, it);
	pthread_mutex_unlock(&s->mu);
	return 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *con, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **cc)
{
	(void)version;
	sim_t *s = cls;
	sim_conn_t *x = *cc;
	if (!x) {
		x = calloc(1, sizeof *x);
		if (!x)
			return MHD_NO;
		buf_init(&x->body, SIM_MAX_REQ);
		*cc = x;
		return MHD_YES;
	}
	if (x->hang) /* resumed at shutdown */
		return MHD_NO;
	if (x->resp) {
		enum MHD_Result ret = MHD_queue_response(con, x->status, x->resp);
		MHD_destroy_response(x->resp);
		x->resp = NULL;
		return ret;
	}
	if (*upload_size) {
		if (x->body.len <= SIM_MAX_REQ && buf_append(&x->body, upload_data, *upload_size))
			x->body.len = SIM_MAX_REQ + 1; /* mark: too large, keep reading */
		*upload_size = 0;
		return MHD_YES;
	}
	sim_ans_t ans;
	memset(&ans, 0, sizeof ans);
	ans.retry_after_s = -1;
	buf_init(&ans.body, 64u << 20);
	if (x->body.len > SIM_MAX_REQ) {
		ans.status = 413;
		ans.ctype = "application/json";
		buf_puts(&ans.body,
		         "{\"errors\":[{\"field\":null,\"message\":\"request too large\"}]}");
	} else {
		sim_req_t rq = {con, method, url, x->body.p ? x->body.p : "", x->body.len};
		s->route(s, &rq, &ans);
	}
	enum MHD_Result ret;
	if (ans.drop) {
		const union MHD_ConnectionInfo *ci =
		    MHD_get_connection_info(con, MHD_CONNECTION_INFO_CONNECTION_FD);
		if (ci) {
			struct linger lg = {1, 0}; /* close with RST */
			setsockopt(ci->connect_fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
		}
		ret = MHD_NO;
	} else if (ans.hang) {
		if (atomic_fetch_add(&s->hung, 1) >= SIM_MAX_HUNG) {
			atomic_fetch_sub(&s->hung, 1);
			ret = MHD_NO;
		} else {
			x->hang = 1;
			ret = suspend_until(s, con, INT64_MAX) ? MHD_NO : MHD_YES;
		}
	} else if (ans.delay_ms >= 1) {
		ret = send_ans(con, &ans, x, 1);
		if (ret == MHD_YES && suspend_until(s, con, clock_mono_ms() + (int64_t)ans.delay_ms)) {
			ret = MHD_queue_response(con, x->status, x->resp);
			MHD_destroy_response(x->resp);
			x->resp = NULL;
		}
	} else {
		ret = send_ans(con, &ans, x, 0);
	}
	buf_free(&ans.body);
	return ret;
}

static void on_completed(void *cls, struct MHD_Connection *con, void **cc,
                         enum MHD_RequestTerminationCode toe)
{
	(void)con;
	(void)toe;
	sim_t *s = cls;
	sim_conn_t *x = *cc;
	if (!x)
		return;
	if (x->hang)
		atomic_fetch_sub(&s->hung, 1);
	if (x->resp)
		MHD_destroy_response(x->resp);
	buf_free(&x->body);
	free(x);
	*cc = NULL;
}

sim_t *sim_srv_new(const cfg_t *c, int port, int threads, sim_setup_fn setup, sim_route_fn route,
                   char *err, size_t errlen)
{
	sim_t *s = calloc(1, sizeof *s);
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->c = c;
	s->route = route;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	pthread_mutex_init(&s->wmu, NULL);
	pthread_cond_init(&s->wcv, NULL);
	pthread_mutex_init(&s->dmu, NULL);
	s->wq_cap = SIM_WQ_MAX;
	s->wq = calloc(s->wq_cap, sizeof *s->wq);
	s->vs = calloc(c->nvendors ? c->nvendors : 1, sizeof *s->vs);
	if (!s->wq || !s->vs) {
		snprintf(err, errlen, "out of memory");
		free(s->wq);
		free(s->vs);
		free(s);
		return NULL;
	}
	static const char *const kinds[] = {"twilio", "vonage", "sendgrid", "mailgun"};
	for (size_t i = 0; i < c->nvendors; i++) {
		const cfg_vendor_t *v = &c->vendors[i];
		sim_vendor_t *sv = &s->vs[s->nv];
		sv->kind = -1;
		for (int k = 0; k < 4; k++)
			if (!strcmp(v->kind, kinds[k]))
				sv->kind = k;
		if (sv->kind < 0)
			continue;
		sv->v = v;
		sv->secret = cfg_secret(v);
		if (!sv->secret)
			log_warn("event=sim_vendor_no_secret vendor=%s env=%s msg=\"every request for this "
			         "vendor will fail authentication\"",
			         v->name, v->secret_env ? v->secret_env : "(none)");
		if (sv->secret && (sv->kind == SIM_TWILIO || sv->kind == SIM_MAILGUN)) {
			char up[512];
			unsigned char *u = (unsigned char *)up;
			int n = snprintf(up, sizeof up, "%s:%s",
			                 sv->kind == SIM_MAILGUN ? "api"
			                                         : (v->account ? v->account : ""),
			                 sv->secret);
			memcpy(sv->basic, "Basic ", 6);
			if (n < 0 || (size_t)n >= sizeof up ||
			    vnd_b64(u, (size_t)n, sv->basic + 6, sizeof sv->basic - 6) < 0)
				sv->basic[0] = 0;
		}
		json_t *wk = v->raw ? json_object_get(v->raw, "webhook_key_env") : NULL;
		sv->wh_key = json_is_string(wk) ? getenv(json_string_value(wk)) : NULL;
		if (!sv->wh_key)
			sv->wh_key = sv->secret;
		ids_init(&sv->ids);
		sim_digests_init(&sv->dg);
		pthread_mutex_init(&sv->twmu, NULL);
		if (sv->kind == SIM_TWILIO)
			sv->tw = calloc(SIM_TW_KEEP, sizeof *sv->tw);
		pthread_mutex_init(&sv->fmu, NULL);
		pthread_mutex_init(&sv->secmu, NULL);
		sv->f.retry_after_s = 1;
		sv->f.delivered_rate = 1;
		sv->f.receipt_delay_ms = 200;
		sv->f.receipt_retries = 1;
		sv->f.retry_scale = 1;
		sv->f.receipts = c->public_url && *c->public_url;
		s->nv++;
		if (setup && setup(sv, err, errlen)) {
			sim_free(s);
			return NULL;
		}
	}
	if (pthread_create(&s->timer, NULL, timer_main, s)) {
		snprintf(err, errlen, "cannot start the timer thread");
		free(s->wq);
		free(s->vs);
		free(s);
		return NULL;
	}
	for (int i = 0; i < SIM_WH_SENDERS; i++)
		pthread_create(&s->sender[i], NULL, sender_main, s);
	struct sockaddr_in sa;
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	/* poll, not epoll: with libmicrohttpd 0.9.75's epoll thread pool, a burst of
	 * new connections sometimes stayed in the accept queue, unanswered, until
	 * the 120 s connection timeout (seen as 128 connections with their requests
	 * in Recv-Q and both workers idle in epoll_wait, about one run in ten of
	 * bench_curl's 200k requests). poll is level-triggered: 40 runs, no stall. */
	unsigned flags = MHD_USE_POLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_TURBO;
	s->d = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR,
	                        (struct sockaddr *)&sa, MHD_OPTION_THREAD_POOL_SIZE,
	                        (unsigned)threads, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
	                        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
	                        MHD_OPTION_CONNECTION_LIMIT, (unsigned)20000,
	                        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)8192,
	                        MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024, MHD_OPTION_END);
	if (!s->d) {
		snprintf(err, errlen, "cannot listen on 127.0.0.1:%d (address in use?)", port);
		sim_free(s);
		return NULL;
	}
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
	s->port = di ? di->port : port;
	return s;
}

int sim_port(const sim_t *s) { return s->port; }

void sim_free(sim_t *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	s->stopping = 1;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	pthread_mutex_lock(&s->wmu);
	pthread_cond_broadcast(&s->wcv);
	pthread_mutex_unlock(&s->wmu);
	if (s->timer)
		pthread_join(s->timer, NULL);
	for (int i = 0; i < SIM_WH_SENDERS; i++)
		if (s->sender[i])
			pthread_join(s->sender[i], NULL);
	if (s->d)
		MHD_stop_daemon(s->d);
	for (size_t i = 0; i < s->wq_n; i++)
		item_free(s->wq[(s->wq_head + i) % s->wq_cap]);
	for (size_t i = 0; i < s->nheap; i++) /* webhooks queued while stopping */
		item_free(s->heap[i]);
	free(s->wq);
	free(s->heap);
	for (size_t i = 0; i < s->nv; i++) {
		ids_free(&s->vs[i].ids);
		sim_digests_free(&s->vs[i].dg);
		pthread_mutex_destroy(&s->vs[i].fmu);
		pthread_mutex_destroy(&s->vs[i].secmu);
		EVP_PKEY_free(s->vs[i].sg_key);
		for (size_t k = 0; s->vs[i].tw && k < SIM_TW_KEEP; k++)
			free(s->vs[i].tw[k].body);
		free(s->vs[i].tw);
		pthread_mutex_destroy(&s->vs[i].twmu);
	}
	free(s->vs);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->wmu);
	pthread_cond_destroy(&s->wcv);
	pthread_mutex_destroy(&s->dmu);
	free(s);
}
