/* sim_api.c -- the emulated vendor APIs: request validation, answers, receipts, inbound messages. */
#include "vendors/sim/sim_int.h"
#include "vendors/sim/sim_json.h"

#include "core/clock.h"
#include "core/err.h"
#include "core/hash.h"
#include "core/log.h"
#include "vendors/vnd_int.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static const char *hdr(sim_req_t *rq, const char *name)
{
	return MHD_lookup_connection_value(rq->con, MHD_HEADER_KIND, name);
}

static void make_ref(sim_t *s, sim_vendor_t *sv, const char *prefix, char *out, size_t outlen)
{
	uint64_t n = atomic_fetch_add(&s->seq, 1);
	uint64_t a = hash64(&n, sizeof n, (uint64_t)(uintptr_t)sv), b = hash64(&n, sizeof n, 77);
	snprintf(out, outlen, "%s%016llx%016llx", prefix, (unsigned long long)a, (unsigned long long)b);
}

/* The id a message is counted by: ours when the request carries it, else
 * "to:<address>#<hash of the content>" (the same person getting the same
 * content twice is the duplicate that matters). */
static void count_id(sim_vendor_t *sv, const char *id, const char *to, const char *content)
{
	if (id && *id) {
		sim_ids_add(sv, id);
		return;
	}
	if (!to)
		return;
	char k[400];
	uint64_t h = content ? hash64(content, strlen(content), 9) : 0;
	snprintf(k, sizeof k, "to:%.320s#%08llx", to, (unsigned long long)(h & 0xffffffffu));
	sim_ids_add(sv, k);
}

/* 1 when from (a number, an address) or service is one of sv's configured senders;
 * a vendor with no senders configured accepts any. Numbers compare by digits. */
static int sender_ok(sim_vendor_t *sv, const char *from, const char *service)
{
	const cfg_vendor_t *v = sv->v;
	if (!v->nsenders)
		return 1;
	for (size_t i = 0; i < v->nsenders; i++) {
		const cfg_sender_t *c = &v->senders[i];
		if (service && *service) {
			if (c->service && !strcmp(c->service, service))
				return 1;
			continue;
		}
		if (!from || !c->from)
			continue;
		const char *a = c->from[0] == '+' ? c->from + 1 : c->from;
		const char *b = from[0] == '+' ? from + 1 : from;
		if (!strcasecmp(a, b))
			return 1;
	}
	return 0;
}

static int is_e164(const char *s)
{
	if (!s || *s != '+')
		return 0;
	size_t n = 0;
	for (s++; *s; s++, n++)
		if (!isdigit((unsigned char)*s))
			return 0;
	return n >= 8 && n <= 15;
}

static size_t utf8_chars(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		n += ((unsigned char)*s & 0xC0) != 0x80;
	return n;
}

/* the mid=<id> parameter of a callback URL, into out */
static const char *url_mid(const char *url, char *out, size_t outlen)
{
	const char *q = url ? strchr(url, '?') : NULL;
	while (q) {
		q++;
		if (!strncmp(q, "mid=", 4)) {
			q += 4;
			size_t n = strcspn(q, "&#");
			if (n >= outlen)
				n = outlen - 1;
			memcpy(out, q, n);
			out[n] = 0;
			return out;
		}
		q = strchr(q, '&');
	}
	return NULL;
}

/* the current RFC 2822 date; formatted once a second (shared by the HTTP threads) */
static void rfc2822(sim_t *s, char *out, size_t outlen)
{
	time_t t = time(NULL);
	pthread_mutex_lock(&s->dmu);
	if (t != s->date_sec) {
		struct tm tm;
		gmtime_r(&t, &tm);
		strftime(s->date, sizeof s->date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
		s->date_sec = t;
	}
	vnd_cpy(out, outlen, s->date);
	pthread_mutex_unlock(&s->dmu);
}

/* ---- Twilio ---- */

static void tw_error(sim_ans_t *ans, unsigned st, int code, const char *msg)
{
	ans->status = st;
	ans->ctype = "application/json";
	buf_reset(&ans->body);
	buf_printf(&ans->body, "{\"code\":%d,\"message\":", code);
	buf_json_str(&ans->body, msg, strlen(msg));
	buf_printf(&ans->body, ",\"more_info\":\"https://www.twilio.com/docs/errors/%d\",\"status\":%u}",
	           code, st);
}

static int match_account(sim_vendor_t *sv, const void *acct)
{
	return sv->v->account && !strcmp(sv->v->account, acct);
}

static void tw_receipt(sim_t *s, sim_vendor_t *sv, const sim_fault_t *f, const char *url,
                       const char *sid, const char *from, const char *to, const char *status,
                       const char *errcode, double delay)
{
	const char *names[9] = {"MessageSid", "SmsSid", "MessageStatus", "SmsStatus", "AccountSid",
	                        "From", "To", "ApiVersion", "ErrorCode"};
	const char *vals[9] = {sid, sid, status, status, sv->v->account ? sv->v->account : "",
	                       from ? from : "", to, "2010-04-01", errcode};
	size_t n = errcode ? 9 : 8;
	char sig[64];
	if (!sv->secret || sim_twilio_sig(sv->secret, url, names, vals, n, sig, sizeof sig))
		return;
	buf_t b;
	buf_init(&b, 8192);
	for (size_t i = 0; i < n; i++) {
		if (i)
			buf_putc(&b, '&');
		buf_puts(&b, names[i]);
		buf_putc(&b, '=');
		buf_form_enc(&b, vals[i], strlen(vals[i]));
	}
	(void)f;
	char tok[40];
	make_ref(s, sv, "", tok, sizeof tok);
	sim_webhook_later(s, sv, delay, url, "application/x-www-form-urlencoded", b.p, "X-Twilio-Signature",
	                  sig, "I-Twilio-Idempotency-Token", tok);
	buf_free(&b);
}

/* RFC 2822 date of wall-clock ms */
static void date_of(int64_t ms, char *out, size_t outlen)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, outlen, "%a, %d %b %Y %H:%M:%S +0000", &tm);
}

/* m's status at now_ms; *sent_ms / *upd_ms get when it was sent (-1: not yet) and last changed */
static const char *tw_status(const sim_twmsg_t *m, int64_t now_ms, int64_t *sent_ms, int64_t *upd_ms)
{
	int64_t sent = m->created_ms + (int64_t)(m->delay_ms / 2), done = m->created_ms + (int64_t)m->delay_ms;
	if (now_ms <= m->created_ms) /* the create answer: never further than queued */
		sent = done = INT64_MAX;
	*sent_ms = now_ms >= sent ? sent : -1;
	*upd_ms = now_ms >= done ? done : now_ms >= sent ? sent : m->created_ms;
	if (now_ms >= done)
		return m->ok ? "delivered" : "undelivered";
	if (now_ms >= sent)
		return "sent";
	return m->mss[0] ? "accepted" : "queued";
}

/* Message resource m as Twilio writes it, at now_ms. created: its date_created, when the
 * caller has it formatted (the create answer, the benchmark's hot path: plain appends). */
static void tw_msg_json(buf_t *b, const char *acc, const sim_twmsg_t *m, const char *body, int64_t now_ms,
                        const char *created)
{
	int64_t sent_ms, upd_ms;
	const char *status = tw_status(m, now_ms, &sent_ms, &upd_ms);
	char dc[64], ds[64], du[64], nseg[16];
	if (!created) {
		date_of(m->created_ms, dc, sizeof dc);
		created = dc;
	}
	if (sent_ms >= 0)
		date_of(sent_ms, ds, sizeof ds);
	if (upd_ms != m->created_ms)
		date_of(upd_ms, du, sizeof du);
	snprintf(nseg, sizeof nseg, "%d", m->nseg);
	int undelivered = !strcmp(status, "undelivered");
	buf_reserve(b, 1200 + 2 * strlen(body));
	buf_puts(b, "{\"account_sid\":\"");
	buf_puts(b, acc);
	buf_puts(b, "\",\"api_version\":\"2010-04-01\",\"body\":");
	buf_json_str(b, body, strlen(body));
	buf_puts(b, ",\"date_created\":\"");
	buf_puts(b, created);
	if (sent_ms >= 0) {
		buf_puts(b, "\",\"date_sent\":\"");
		buf_puts(b, ds);
		buf_puts(b, "\",\"date_updated\":\"");
	} else
		buf_puts(b, "\",\"date_sent\":null,\"date_updated\":\"");
	buf_puts(b, upd_ms != m->created_ms ? du : created);
	buf_puts(b, undelivered ? "\",\"direction\":\"outbound-api\",\"error_code\":30003,\"error_message\":"
	                          "\"Unreachable destination handset\",\"from\":"
	                        : "\",\"direction\":\"outbound-api\",\"error_code\":null,\"error_message\":null,"
	                          "\"from\":");
	if (m->from[0])
		buf_json_str(b, m->from, strlen(m->from));
	else
		buf_puts(b, "null");
	buf_puts(b, ",\"messaging_service_sid\":");
	if (m->mss[0])
		buf_json_str(b, m->mss, strlen(m->mss));
	else
		buf_puts(b, "null");
	buf_puts(b, ",\"num_media\":\"0\",\"num_segments\":\"");
	buf_puts(b, nseg);
	buf_puts(b, "\",\"price\":null,\"price_unit\":\"USD\",\"sid\":\"");
	buf_puts(b, m->sid);
	buf_puts(b, "\",\"status\":\"");
	buf_puts(b, status);
	buf_puts(b, "\",\"subresource_uris\":{\"media\":\"/2010-04-01/Accounts/");
	buf_puts(b, acc);
	buf_puts(b, "/Messages/");
	buf_puts(b, m->sid);
	buf_puts(b, "/Media.json\"},\"to\":");
	buf_json_str(b, m->to, strlen(m->to));
	buf_puts(b, ",\"uri\":\"/2010-04-01/Accounts/");
	buf_puts(b, acc);
	buf_puts(b, "/Messages/");
	buf_puts(b, m->sid);
	buf_puts(b, ".json\"}");
}

/* keep a copy of m (its body copied) in sv's ring, the oldest dropped */
static void tw_keep(sim_vendor_t *sv, const sim_twmsg_t *m, const char *body)
{
	if (!sv->tw)
		return;
	char *copy = strdup(body);
	pthread_mutex_lock(&sv->twmu);
	sim_twmsg_t *slot = &sv->tw[sv->tw_next];
	char *old = slot->body;
	*slot = *m;
	slot->body = copy;
	sv->tw_next = (sv->tw_next + 1) % SIM_TW_KEEP;
	if (sv->tw_n < SIM_TW_KEEP)
		sv->tw_n++;
	pthread_mutex_unlock(&sv->twmu);
	free(old);
}

/* The Twilio vendor of account when the request's Basic credentials are its own;
 * else NULL with ans set (401 20003, or the outage). Counts the request. */
static sim_vendor_t *tw_auth(sim_t *s, sim_req_t *rq, const char *account, sim_ans_t *ans)
{
	sim_vendor_t *sv = sim_find(s, SIM_TWILIO, match_account, account);
	if (sv && sim_outage(s, sv, ans))
		return NULL;
	if (sv)
		atomic_fetch_add(&sv->requests, 1);
	const char *auth = hdr(rq, "Authorization");
	if (!sv || !sv->basic[0] || !auth || !vnd_ct_eq(auth, strlen(auth), sv->basic, strlen(sv->basic))) {
		tw_error(ans, 401, 20003, "Authenticate");
		memcpy(ans->hname, "WWW-Authenticate", 17);
		snprintf(ans->hval, sizeof ans->hval, "Basic realm=\"Twilio API\"");
		return NULL;
	}
	return sv;
}

/* a Twilio date filter value: "YYYY-MM-DD" (day = 1) or "YYYY-MM-DDTHH:MM:SSZ"; -1 when neither */
static int64_t tw_date(const char *v, int *day)
{
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	char *end = strptime(v, "%Y-%m-%d", &tm);
	if (!end)
		return -1;
	*day = !*end;
	if (*end && (!(end = strptime(end, "T%H:%M:%S", &tm)) || (strcmp(end, "Z") && strcmp(end, "+00:00"))))
		return -1;
	return (int64_t)timegm(&tm) * 1000;
}

/* a whole decimal number lo..hi, else -1 */
static long whole(const char *v, long lo, long hi)
{
	char *end;
	errno = 0;
	long n = v && *v && isdigit((unsigned char)*v) ? strtol(v, &end, 10) : -1;
	return n < 0 || errno || *end || n < lo || n > hi ? -1 : n;
}

/* GET .../Messages.json: newest first, filtered by To, From and DateSent (=, <=, >=), paged */
static void tw_list(sim_vendor_t *sv, sim_req_t *rq, sim_ans_t *ans)
{
	sim_form_t q;
	if (sim_form_args(rq->con, &q)) {
		sim_form_free(&q);
		tw_error(ans, 400, 20001, "Too many query parameters");
		return;
	}
	const char *to = sim_form_get(&q, "To"), *from = sim_form_get(&q, "From");
	const char *dk[3] = {"DateSent", "DateSent<", "DateSent>"};
	int64_t lim[3] = {-1, -1, -1};
	int day[3] = {0, 0, 0};
	long size = 50, page = 0;
	const char *ps = sim_form_get(&q, "PageSize"), *pg = sim_form_get(&q, "Page");
	char msg[160];
	for (int k = 0; k < 3; k++) {
		const char *v = sim_form_get(&q, dk[k]);
		if (v && (lim[k] = tw_date(v, &day[k])) < 0) {
			snprintf(msg, sizeof msg, "Invalid %s: %.40s (YYYY-MM-DD or YYYY-MM-DDThh:mm:ssZ)", dk[k], v);
			tw_error(ans, 400, 20001, msg);
			sim_form_free(&q);
			return;
		}
	}
	if ((ps && (size = whole(ps, 1, 1000)) < 0) || (pg && (page = whole(pg, 0, 1000000)) < 0)) {
		tw_error(ans, 400, 20001, "Invalid paging: PageSize 1..1000, Page a whole number");
		sim_form_free(&q);
		return;
	}
	/* the filters again, for the page links */
	buf_t f;
	buf_init(&f, 4096);
	const char *fk[5] = {"To", "From", dk[0], dk[1], dk[2]};
	for (int k = 0; k < 5; k++) {
		const char *v = sim_form_get(&q, fk[k]);
		if (!v)
			continue;
		buf_url_enc(&f, fk[k], strlen(fk[k]));
		buf_putc(&f, '=');
		buf_url_enc(&f, v, strlen(v));
		buf_putc(&f, '&');
	}
	const char *acc = sv->v->account;
	buf_t *b = &ans->body;
	ans->status = 200;
	ans->ctype = "application/json";
	buf_puts(b, "{\"messages\":[");
	int64_t now = clock_wall_ms();
	long skip = page * size, n = 0, more = 0;
	pthread_mutex_lock(&sv->twmu);
	for (size_t i = 0; i < sv->tw_n && !more; i++) {
		const sim_twmsg_t *m = &sv->tw[(sv->tw_next + SIM_TW_KEEP - 1 - i) % SIM_TW_KEEP];
		int64_t sent, upd;
		tw_status(m, now, &sent, &upd);
		if ((to && strcmp(to, m->to)) || (from && strcmp(from, m->from)))
			continue;
		int64_t sday = sent - sent % 86400000;
		if ((lim[0] >= 0 && (sent < 0 || (day[0] ? sday != lim[0] : sent / 1000 != lim[0] / 1000))) ||
		    (lim[1] >= 0 && (sent < 0 || (day[1] ? sday > lim[1] : sent / 1000 > lim[1] / 1000))) ||
		    (lim[2] >= 0 && (sent < 0 || (day[2] ? sday < lim[2] : sent / 1000 < lim[2] / 1000))))
			continue;
		if (skip > 0) {
			skip--;
			continue;
		}
		if (n == size) {
			more = 1;
			continue;
		}
		if (n++)
			buf_putc(b, ',');
		tw_msg_json(b, acc, m, m->body, now, NULL);
	}
	pthread_mutex_unlock(&sv->twmu);
	const char *fs = f.p ? f.p : "";
	buf_printf(b, "],\"end\":%ld,\"first_page_uri\":\"/2010-04-01/Accounts/%s/Messages.json?%sPageSize=%ld&Page=0\","
	              "\"next_page_uri\":", n ? page * size + n - 1 : 0, acc, fs, size);
	if (more)
		buf_printf(b, "\"/2010-04-01/Accounts/%s/Messages.json?%sPageSize=%ld&Page=%ld\"", acc, fs, size, page + 1);
	else
		buf_puts(b, "null");
	buf_printf(b, ",\"page\":%ld,\"page_size\":%ld,\"previous_page_uri\":", page, size);
	if (page > 0)
		buf_printf(b, "\"/2010-04-01/Accounts/%s/Messages.json?%sPageSize=%ld&Page=%ld\"", acc, fs, size, page - 1);
	else
		buf_puts(b, "null");
	buf_printf(b, ",\"start\":%ld,\"uri\":\"/2010-04-01/Accounts/%s/Messages.json?%sPageSize=%ld&Page=%ld\"}",
	           page * size, acc, fs, size, page);
	buf_free(&f);
	sim_form_free(&q);
}

/* GET .../Messages/{sid}.json */
static void tw_fetch(sim_vendor_t *sv, const char *sid, size_t sidlen, const char *path, sim_ans_t *ans)
{
	int64_t now = clock_wall_ms();
	int found = 0;
	pthread_mutex_lock(&sv->twmu);
	for (size_t i = 0; i < sv->tw_n && !found; i++) {
		const sim_twmsg_t *m = &sv->tw[(sv->tw_next + SIM_TW_KEEP - 1 - i) % SIM_TW_KEEP];
		if (strlen(m->sid) == sidlen && !memcmp(m->sid, sid, sidlen)) {
			ans->status = 200;
			ans->ctype = "application/json";
			tw_msg_json(&ans->body, sv->v->account, m, m->body, now, NULL);
			found = 1;
		}
	}
	pthread_mutex_unlock(&sv->twmu);
	if (!found) {
		char msg[300];
		snprintf(msg, sizeof msg, "The requested resource %.200s was not found", path);
		tw_error(ans, 404, 20404, msg);
	}
}

static void tw_create(sim_t *s, sim_vendor_t *sv, const sim_fault_t *fp, sim_req_t *rq, sim_ans_t *ans);

void sim_api_twilio(sim_t *s, sim_req_t *rq, const char *account, const char *rest, sim_ans_t *ans)
{
	int post = !strcmp(rq->method, "POST"), get = !strcmp(rq->method, "GET");
	const char *sid = !strncmp(rest, "/Messages/", 10) ? rest + 10 : NULL;
	size_t sidlen = sid ? strcspn(sid, "/") : 0;
	int list = !strcmp(rest, "/Messages.json");
	int fetch = sid && sidlen > 5 && !sid[sidlen] && !strcmp(sid + sidlen - 5, ".json");
	if (!list && !fetch) {
		char msg[300];
		snprintf(msg, sizeof msg, "The requested resource %.200s was not found", rq->url);
		tw_error(ans, 404, 20404, msg);
		return;
	}
	if (!(list && (post || get)) && !(fetch && get)) {
		tw_error(ans, 405, 20004, "Method not allowed");
		return;
	}
	sim_vendor_t *sv = tw_auth(s, rq, account, ans);
	if (!sv)
		return;
	sim_fault_t f;
	sim_fault_get(sv, &f);
	if (sim_faults(s, sv, &f, ans))
		return;
	if (fetch)
		tw_fetch(sv, sid, sidlen - 5, rq->url, ans);
	else if (get)
		tw_list(sv, rq, ans);
	else
		tw_create(s, sv, &f, rq, ans);
}

static void tw_create(sim_t *s, sim_vendor_t *sv, const sim_fault_t *fp, sim_req_t *rq, sim_ans_t *ans)
{
	sim_fault_t f = *fp;
	sim_form_t fm;
	if (sim_form_parse(rq->body, rq->bodylen, &fm)) {
		sim_form_free(&fm);
		tw_error(ans, 400, 21619, "The request body is too large or has too many parameters");
		return;
	}
	const char *to = sim_form_get(&fm, "To"), *from = sim_form_get(&fm, "From");
	const char *mss = sim_form_get(&fm, "MessagingServiceSid"), *body = sim_form_get(&fm, "Body");
	const char *cb = sim_form_get(&fm, "StatusCallback");
	char msg[200];
	if (!to || !*to) {
		tw_error(ans, 400, 21604, "A 'To' phone number is required.");
	} else if (!is_e164(to)) {
		snprintf(msg, sizeof msg, "The 'To' number %.40s is not a valid phone number.", to);
		tw_error(ans, 400, 21211, msg);
	} else if ((!from || !*from) && (!mss || !*mss)) {
		tw_error(ans, 400, 21603, "A 'From' phone number is required.");
	} else if (from && *from && !is_e164(from)) {
		snprintf(msg, sizeof msg, "The 'From' number %.40s is not a valid phone number, shortcode, "
		                          "or alphanumeric sender ID.", from);
		tw_error(ans, 400, 21212, msg);
	} else if (!body || !*body) {
		tw_error(ans, 400, 21602, "Message body is required.");
	} else if (utf8_chars(body) > 1600) {
		tw_error(ans, 400, 21617, "The concatenated message body exceeds the 1600 character limit.");
	} else if (cb && strncmp(cb, "http://", 7) && strncmp(cb, "https://", 8)) {
		tw_error(ans, 400, 21609, "Invalid StatusCallback URL");
	} else if (mss && *mss && !sender_ok(sv, NULL, mss)) {
		snprintf(msg, sizeof msg, "The Messaging Service Sid %.40s is invalid.", mss);
		tw_error(ans, 400, 21701, msg);
	} else if ((!mss || !*mss) && !sender_ok(sv, from, NULL)) {
		snprintf(msg, sizeof msg, "The From phone number %.40s is not a valid, SMS-capable inbound "
		                          "phone number or short code for your account.", from);
		tw_error(ans, 400, 21606, msg);
	} else if (!strcmp(to, "+15005550001")) {
		snprintf(msg, sizeof msg, "The 'To' number %s is not a valid phone number.", to);
		tw_error(ans, 400, 21211, msg);
	} else if (!strcmp(to, "+15005550009")) {
		tw_error(ans, 400, 21614, "'To' number is not a valid mobile number");
	} else if (!strcmp(to, "+15005550010")) {
		tw_error(ans, 400, 21635, "'To' number cannot be a landline.");
	} else if (!strcmp(to, "+15005550004") || (f.optout_rate > 0 && sim_rand(s) < f.optout_rate)) {
		tw_error(ans, 400, 21610, "Attempt to send to unsubscribed recipient");
	} else if (f.permanent_rate > 0 && sim_rand(s) < f.permanent_rate) {
		snprintf(msg, sizeof msg, "The 'To' number %.40s is not a valid phone number.", to);
		tw_error(ans, 400, 21211, msg);
	} else {
		char date[64], mid[80];
		sim_twmsg_t m;
		memset(&m, 0, sizeof m);
		make_ref(s, sv, "SM", m.sid, sizeof m.sid);
		const char *sid = m.sid;
		vnd_cpy(m.to, sizeof m.to, to);
		vnd_cpy(m.from, sizeof m.from, from);
		vnd_cpy(m.mss, sizeof m.mss, mss);
		m.created_ms = clock_wall_ms();
		m.delay_ms = f.receipt_delay_ms;
		m.nseg = sim_segments(body, 0, NULL);
		m.ok = f.delivered_rate >= 1 || sim_rand(s) < f.delivered_rate;
		rfc2822(s, date, sizeof date);
		sim_note_accepted(sv, 1);
		count_id(sv, url_mid(cb, mid, sizeof mid), to, body);
		ans->status = 201;
		ans->ctype = "application/json";
		tw_msg_json(&ans->body, sv->v->account, &m, body, m.created_ms, date);
		tw_keep(sv, &m, body);
		const char *rurl = f.receipt_url[0] ? f.receipt_url : cb;
		if (f.receipts && rurl) {
			int ok = m.ok;
			tw_receipt(s, sv, &f, rurl, sid, from, to, "sent", NULL, f.receipt_delay_ms / 2);
			tw_receipt(s, sv, &f, rurl, sid, from, to, ok ? "delivered" : "undelivered",
			           ok ? NULL : "30003", f.receipt_delay_ms);
		}
	}
	sim_form_free(&fm);
}


/* the webhook base for vendor sv: the configured receipts URL, else {public_url}/webhooks/{name}/{leaf} */
static const char *hook_url(sim_t *s, sim_vendor_t *sv, const sim_fault_t *f, const char *leaf,
                            char *out, size_t outlen)
{
	if (f->receipt_url[0])
		return f->receipt_url;
	if (!s->c->public_url || !*s->c->public_url)
		return NULL;
	snprintf(out, outlen, "%.*s/webhooks/%s/%s", (int)vnd_base_len(s->c->public_url), s->c->public_url,
	         sv->v->name, leaf);
	return out;
}

/* ---- Vonage ---- */

static void vg_answer(sim_ans_t *ans, const char *status, const char *text)
{
	ans->status = 200;
	ans->ctype = "application/json";
	buf_reset(&ans->body);
	buf_printf(&ans->body, "{\"message-count\":\"1\",\"messages\":[{\"status\":\"%s\",\"error-text\":",
	           status);
	buf_json_str(&ans->body, text, strlen(text));
	buf_puts(&ans->body, "}]}");
}

static int vg_match(sim_vendor_t *sv, const void *ctx)
{
	const char *const *kv = ctx;
	return kv[0] && kv[1] && sv->v->account && sv->secret && !strcmp(sv->v->account, kv[0]) &&
	       vnd_ct_eq(sv->secret, strlen(sv->secret), kv[1], strlen(kv[1]));
}

static int vg_key(sim_vendor_t *sv, const void *ctx)
{
	return ctx && sv->v->account && !strcmp(sv->v->account, ctx);
}

/* Queue a Vonage webhook: the form names/vals[0..n) (n <= 16), signed when sv has a
 * signature secret: `timestamp` (unix seconds when it is due) and `sig` added. */
static void vg_webhook(sim_t *s, sim_vendor_t *sv, double delay, const char *url, const char **names,
                       const char **vals, size_t n)
{
	char ts[24], sig[160];
	if (sv->vg_sig && n <= 16) {
		snprintf(ts, sizeof ts, "%lld", (long long)(time(NULL) + (time_t)(delay / 1000)));
		names[n] = "timestamp";
		vals[n++] = ts;
		if (sim_vonage_sig(sv->vg_sig_method, sv->vg_sig, names, vals, n, sig, sizeof sig)) {
			log_warn("event=sim_webhook_unsigned vendor=%s msg=\"cannot sign\"", sv->v->name);
			return;
		}
		names[n] = "sig";
		vals[n++] = sig;
	}
	buf_t b;
	buf_init(&b, 1 << 20);
	for (size_t i = 0; i < n; i++) {
		if (i)
			buf_putc(&b, '&');
		buf_form_enc(&b, names[i], strlen(names[i]));
		buf_putc(&b, '=');
		buf_form_enc(&b, vals[i], strlen(vals[i]));
	}
	sim_webhook_later(s, sv, delay, url, "application/x-www-form-urlencoded", b.p, NULL, NULL, NULL,
	                  NULL);
	buf_free(&b);
}

/* a Vonage `message-timestamp` (UTC "YYYY-MM-DD HH:MM:SS") for now + delay_ms */
static void vg_time(double delay_ms, char *out, size_t outlen)
{
	time_t t = time(NULL) + (time_t)(delay_ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, outlen, "%Y-%m-%d %H:%M:%S", &tm);
}

static void vg_receipt(sim_t *s, sim_vendor_t *sv, const char *url, const char *mid,
                       const char *to, const char *from, const char *status, const char *errcode,
                       const char *cref, double delay)
{
	char ts[32];
	vg_time(delay, ts, sizeof ts);
	const char *names[18] = {"msisdn", "to", "network-code", "messageId", "price", "status", "scts",
	                         "err-code", "api-key", "message-timestamp", "client-ref"};
	const char *vals[18] = {to, from, "310004", mid, "0.00570000", status, "2611212342", errcode,
	                        sv->v->account, ts, cref};
	vg_webhook(s, sv, delay, url, names, vals, cref ? 11 : 10);
}

/* HTTP Basic credentials "user:password" from an Authorization value, into out
 * (user) and *pw; 0, or -1 when it is not Basic or not well-formed. */
static int basic_creds(const char *auth, char *out, size_t outlen, const char **pw)
{
	if (!auth || strncasecmp(auth, "Basic ", 6))
		return -1;
	const char *b = auth + 6;
	while (*b == ' ')
		b++;
	size_t n = strlen(b);
	if (!n || n % 4 || 3 * (n / 4) >= outlen)
		return -1;
	int len = EVP_DecodeBlock((unsigned char *)out, (const unsigned char *)b, (int)n);
	if (len < 0)
		return -1;
	len -= (b[n - 1] == '=') + (b[n - 2] == '=');
	out[len] = 0;
	char *colon = memchr(out, ':', (size_t)len);
	if (!colon || strlen(out) != (size_t)len)
		return -1;
	*colon = 0;
	*pw = colon + 1;
	return 0;
}

/* The parameters of a Vonage SMS request as Vonage reads them: the query (GET),
 * a JSON object or a form; 0, or -1 with the answer in ans. */
static int vg_params(sim_req_t *rq, sim_form_t *fm, sim_ans_t *ans)
{
	const char *ct = hdr(rq, "Content-Type");
	int rc;
	if (!strcmp(rq->method, "GET"))
		rc = sim_form_args(rq->con, fm);
	else if (ct && !strncasecmp(ct, "application/json", 16))
		rc = sim_form_json(rq->body, rq->bodylen, fm);
	else
		rc = sim_form_parse(rq->body, rq->bodylen, fm);
	if (!rc)
		return 0;
	sim_form_free(fm);
	vg_answer(ans, "2", rc == TOCSIN_ERR_INVAL ? "Missing params: the body is not a JSON object of values"
	                                           : "Missing params: request too large");
	return -1;
}

void sim_api_vonage(sim_t *s, sim_req_t *rq, sim_ans_t *ans)
{
	sim_form_t fm;
	if (vg_params(rq, &fm, ans))
		return;
	/* the credentials: HTTP Basic (the current SDKs) or api_key/api_secret parameters */
	char basic[400];
	const char *kv[2] = {sim_form_get(&fm, "api_key"), sim_form_get(&fm, "api_secret")};
	const char *auth = hdr(rq, "Authorization");
	if (auth && !basic_creds(auth, basic, sizeof basic, &kv[1]))
		kv[0] = basic;
	else if (auth && !strncasecmp(auth, "Basic ", 6))
		kv[0] = kv[1] = NULL; /* a Basic header that does not decode: bad credentials */

	sim_vendor_t *owner0 = sim_find(s, SIM_VONAGE, vg_key, kv[0]);
	if (owner0 && sim_outage(s, owner0, ans)) {
		sim_form_free(&fm);
		return;
	}
	sim_vendor_t *sv = sim_find(s, SIM_VONAGE, vg_match, kv);
	if (!sv) {
		sim_vendor_t *owner = sim_find(s, SIM_VONAGE, vg_key, kv[0]);
		if (owner)
			atomic_fetch_add(&owner->requests, 1);
		vg_answer(ans, "4", "Bad Credentials");
		sim_form_free(&fm);
		return;
	}
	atomic_fetch_add(&sv->requests, 1);
	sim_fault_t f;
	sim_fault_get(sv, &f);
	if (sim_faults(s, sv, &f, ans)) {
		sim_form_free(&fm);
		return;
	}
	const char *from = sim_form_get(&fm, "from"), *to = sim_form_get(&fm, "to");
	const char *text = sim_form_get(&fm, "text"), *type = sim_form_get(&fm, "type");
	const char *cref = sim_form_get(&fm, "client-ref"), *cb = sim_form_get(&fm, "callback");
	int digits = to && *to && strlen(to) >= 7 && strlen(to) <= 15;
	for (const char *p = to; digits && *p; p++)
		digits = isdigit((unsigned char)*p);
	if (!from || !*from)
		vg_answer(ans, "2", "Missing from param");
	else if (!to || !*to)
		vg_answer(ans, "2", "Missing to param");
	else if (!text || !*text)
		vg_answer(ans, "2", "Missing text param");
	else if (!digits || !strcmp(to, "15005550001") ||
	         (f.permanent_rate > 0 && sim_rand(s) < f.permanent_rate))
		vg_answer(ans, "3", "Invalid to param");
	else if (type && strcmp(type, "text") && strcmp(type, "unicode") && strcmp(type, "binary"))
		vg_answer(ans, "3", "Invalid type param");
	else if (cref && strlen(cref) > 40)
		vg_answer(ans, "3", "Invalid client-ref param");
	else if (!sender_ok(sv, from, NULL))
		vg_answer(ans, "15", "Illegal Sender Address - rejected");
	else {
		int parts = sim_segments(text, type && !strcmp(type, "unicode"), NULL);
		sim_note_accepted(sv, 1);
		count_id(sv, cref, to, text);
		buf_t *b = &ans->body;
		ans->status = 200;
		ans->ctype = "application/json";
		buf_printf(b, "{\"message-count\":\"%d\",\"messages\":[", parts);
		char mid[40], first[40];
		for (int i = 0; i < parts; i++) {
			make_ref(s, sv, "", mid, 19);
			for (char *p = mid; *p; p++)
				*p = (char)toupper((unsigned char)*p);
			if (!i)
				memcpy(first, mid, sizeof first);
			buf_printf(b, "%s{\"to\":\"%s\",\"message-id\":\"%s\",\"status\":\"0\","
			              "\"remaining-balance\":\"15.53590000\",\"message-price\":\"0.00570000\","
			              "\"network\":\"310004\"",
			           i ? "," : "", to, mid);
			if (cref) {
				buf_puts(b, ",\"client-ref\":");
				buf_json_str(b, cref, strlen(cref));
			}
			buf_putc(b, '}');
		}
		buf_puts(b, "]}");
		char ub[600];
		const char *rurl = f.receipt_url[0] ? f.receipt_url : cb ? cb : hook_url(s, sv, &f, "status", ub, sizeof ub);
		if (f.receipts && rurl) {
			int opt = !strcmp(to, "15005550004") || (f.optout_rate > 0 && sim_rand(s) < f.optout_rate);
			int ok = !opt && (f.delivered_rate >= 1 || sim_rand(s) < f.delivered_rate);
			vg_receipt(s, sv, rurl, first, to, from, opt ? "failed" : ok ? "delivered" : "expired",
			           opt ? "9" : ok ? "0" : "5", cref, f.receipt_delay_ms);
		}
	}
	sim_form_free(&fm);
}

/* ---- SendGrid ---- */

static void sg_error(sim_ans_t *ans, unsigned st, const char *field, const char *msg)
{
	ans->status = st;
	ans->ctype = "application/json";
	buf_reset(&ans->body);
	buf_puts(&ans->body, "{\"errors\":[{\"message\":");
	buf_json_str(&ans->body, msg, strlen(msg));
	buf_puts(&ans->body, ",\"field\":");
	if (field)
		buf_json_str(&ans->body, field, strlen(field));
	else
		buf_puts(&ans->body, "null");
	buf_puts(&ans->body, ",\"help\":null}]}");
}

/* the from checks both readings share: no from object names `from`, a bad address `from.email` */
static void sg_err_from(sim_ans_t *ans, int has_from)
{
	if (!has_from)
		sg_error(ans, 400, "from", "The from object must be provided for every email send. It is an object "
		                           "that requires the email parameter, but may also contain a name parameter.");
	else
		sg_error(ans, 400, "from.email", "The from email does not contain a valid address.");
}

/* address em[0..n) of personalizations.i.<kind>.k: not an address (dup 0) or seen before (dup 1) */
static void sg_err_addr(sim_ans_t *ans, size_t i, const char *kind, size_t k, const char *em, size_t n,
                        int dup)
{
	char field[96], msg[600];
	snprintf(field, sizeof field, "personalizations.%zu.%s.%zu.email", i, kind, k);
	if (!dup) {
		sg_error(ans, 400, field, "Does not contain a valid address.");
		return;
	}
	snprintf(msg, sizeof msg, "Each email address in the personalization block should be unique between to, "
	                          "cc, and bcc. We found the first duplicate instance of [%.*s] in the "
	                          "personalizations.%zu.%s field.", (int)(n < 320 ? n : 320), em, i, kind);
	sg_error(ans, 400, field, msg);
}

/* the recipient lists of a personalization, in the order SendGrid checks them */
static const char *const sg_kinds[3] = {"to", "cc", "bcc"};

static int sg_match(sim_vendor_t *sv, const void *tok)
{
	return sv->secret && vnd_ct_eq(sv->secret, strlen(sv->secret), tok, strlen(tok));
}

static int is_email(const char *s)
{
	const char *at = s ? strchr(s, '@') : NULL;
	return at && at > s && strchr(at + 1, '.') && !strpbrk(s, " \t\r\n<>,;\"");
}

/* sign a SendGrid event batch and queue it */
/* The event SendGrid reports for recipient email of a request (delivered, bounce or
 * unsubscribe, drawn from the faults f), as a new object for the events array. */
static json_t *sg_event(sim_t *s, sim_vendor_t *sv, const sim_fault_t *f, const char *email,
                        const char *xid, size_t i)
{
	double u = sim_rand(s);
	const char *ev = "delivered";
	if (f->optout_rate > 0 && u < f->optout_rate)
		ev = "unsubscribe";
	else if ((f->permanent_rate > 0 && sim_rand(s) < f->permanent_rate) ||
	         !(f->delivered_rate >= 1 || sim_rand(s) < f->delivered_rate))
		ev = "bounce";
	json_t *o = json_object();
	json_object_set_new(o, "email", json_string(email));
	json_object_set_new(o, "timestamp", json_integer((json_int_t)time(NULL)));
	json_object_set_new(o, "event", json_string(ev));
	char eid[40], smid[80];
	make_ref(s, sv, "", eid, 23);
	snprintf(smid, sizeof smid, "%s.filter0001.%zu", xid, i);
	json_object_set_new(o, "sg_event_id", json_string(eid));
	json_object_set_new(o, "sg_message_id", json_string(smid));
	if (!strcmp(ev, "bounce")) {
		json_object_set_new(o, "type", json_string("bounce"));
		json_object_set_new(o, "reason", json_string("550 5.1.1 The email account that you tried "
		                                             "to reach does not exist."));
	}
	return o;
}

static void sg_events(sim_t *s, sim_vendor_t *sv, const char *url, json_t *events, double delay)
{
	char *body = json_dumps(events, JSON_COMPACT);
	if (!body || !sv->sg_key) {
		free(body);
		return;
	}
	char ts[24]; /* signed when it is due, as SendGrid signs when it posts */
	snprintf(ts, sizeof ts, "%lld", (long long)(time(NULL) + (time_t)(delay / 1000)));
	unsigned char sig[160];
	size_t sl = sizeof sig;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int ok = md && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, sv->sg_key) == 1 &&
	         EVP_DigestSignUpdate(md, ts, strlen(ts)) == 1 &&
	         EVP_DigestSignUpdate(md, body, strlen(body)) == 1 &&
	         EVP_DigestSignFinal(md, sig, &sl) == 1;
	EVP_MD_CTX_free(md);
	char sig64[256];
	if (ok && vnd_b64(sig, sl, sig64, sizeof sig64) > 0)
		sim_webhook_later(s, sv, delay, url, "application/json", body,
		                  "X-Twilio-Email-Event-Webhook-Signature", sig64,
		                  "X-Twilio-Email-Event-Webhook-Timestamp", ts);
	free(body);
}

/* ---- email content: substitutions as the vendors apply them, unsubscribe checks ---- */

#define SIM_PART_MAX (8u << 20)

/* SendGrid: every key of subs (an object of strings) replaced literally in
 * src[0..len) by its value, key by key. Result in out (reset first). */
static int sg_apply(buf_t *out, const char *src, size_t len, json_t *subs, int *applied)
{
	buf_reset(out);
	int rc = buf_append(out, src, len);
	const char *k;
	json_t *v;
	buf_t tmp;
	buf_init(&tmp, SIM_PART_MAX);
	json_object_foreach(subs, k, v)
	{
		size_t kl = strlen(k);
		if (!kl || !json_is_string(v) || rc)
			continue;
		const char *p = out->p, *end = out->p + out->len, *q;
		buf_reset(&tmp);
		int hit = 0;
		while ((q = memmem(p, (size_t)(end - p), k, kl))) {
			rc = rc ? rc : buf_append(&tmp, p, (size_t)(q - p));
			rc = rc ? rc : buf_append(&tmp, json_string_value(v), json_string_length(v));
			p = q + kl;
			hit = 1;
		}
		if (!hit)
			continue;
		*applied = 1;
		rc = rc ? rc : buf_append(&tmp, p, (size_t)(end - p));
		buf_reset(out);
		rc = rc ? rc : buf_append(out, tmp.p, tmp.len);
	}
	buf_free(&tmp);
	return rc;
}

/* Mailgun: %recipient.<name>% replaced by vars[name] when it is a string. */
static int mg_apply(buf_t *out, const char *src, size_t len, json_t *vars, int *applied)
{
	buf_reset(out);
	const char *p = src, *end = src + len, *q;
	int rc = 0;
	while (!rc && (q = memmem(p, (size_t)(end - p), "%recipient.", 11))) {
		const char *n = q + 11, *ne = memchr(n, '%', (size_t)(end - n));
		char name[128];
		json_t *v = NULL;
		if (ne && (size_t)(ne - n) < sizeof name) {
			memcpy(name, n, (size_t)(ne - n));
			name[ne - n] = 0;
			v = json_object_get(vars, name);
		}
		if (!json_is_string(v)) {
			rc = buf_append(out, p, (size_t)(n - p));
			p = n;
			continue;
		}
		rc = buf_append(out, p, (size_t)(q - p));
		rc = rc ? rc : buf_append(out, json_string_value(v), json_string_length(v));
		p = ne + 1;
		*applied = 1;
	}
	return rc ? rc : buf_append(out, p, (size_t)(end - p));
}

static int b64url_val(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' : c >= 'a' && c <= 'z' ? c - 'a' + 26
	       : c >= '0' && c <= '9' ? c - '0' + 52 : c == '-' ? 62 : c == '_' ? 63 : -1;
}

/* Is the unsubscribe link of one accepted email intact? lu = its
 * List-Unsubscribe value ("<url>") after substitution, body[0..nbody) its
 * text/html after substitution. Counted in the vendor's stats:
 * unsub_checked (a List-Unsubscribe was there), unsub_ok (its URL appears in
 * every body part and its /u/<token> decodes to bytes naming this recipient),
 * unreplaced (a placeholder of ours or Mailgun's survived substitution). */
static void email_check(sim_vendor_t *sv, const char *to, const char *lu, const buf_t *body,
                        size_t nbody, int applied)
{
	if (applied)
		atomic_fetch_add(&sv->subs_applied, 1);
	int left = 0;
	for (size_t i = 0; i < nbody; i++)
		left |= memmem(body[i].p, body[i].len, "{{{tocsin:", 10) != NULL ||
		        memmem(body[i].p, body[i].len, "%recipient.", 11) != NULL;
	if (lu && (strstr(lu, "{{{tocsin:") || strstr(lu, "%recipient.")))
		left = 1;
	if (left)
		atomic_fetch_add(&sv->unreplaced, 1);
	if (!lu || !to)
		return;
	atomic_fetch_add(&sv->unsub_checked, 1);
	const char *a = strchr(lu, '<'), *z = a ? strchr(a, '>') : NULL;
	if (!a || !z || z - a < 2)
		return;
	const char *url = a + 1;
	size_t ul = (size_t)(z - url);
	for (size_t i = 0; i < nbody; i++)
		if (!memmem(body[i].p, body[i].len, url, ul))
			return;
	const char *tok = NULL;
	for (const char *q = url; (q = memmem(q, (size_t)(url + ul - q), "/u/", 3)); q += 3)
		tok = q + 3;
	if (!tok)
		return;
	unsigned char raw[1200];
	size_t n = 0, bits = 0;
	uint32_t acc = 0;
	for (const char *q = tok; q < url + ul; q++) {
		int v = b64url_val((unsigned char)*q);
		if (v < 0 || n >= sizeof raw)
			return;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			raw[n++] = (unsigned char)(acc >> bits);
		}
	}
	if (memmem(raw, n, to, strlen(to)))
		atomic_fetch_add(&sv->unsub_ok, 1);
}

void sim_api_sendgrid(sim_t *s, sim_req_t *rq, sim_ans_t *ans)
{
	const char *auth = hdr(rq, "Authorization");
	sim_vendor_t *sv = auth && !strncmp(auth, "Bearer ", 7) ? sim_find(s, SIM_SENDGRID, sg_match, auth + 7) : NULL;
	if (!sv) {
		sg_error(ans, 401, NULL, "The provided authorization grant is invalid, expired, or revoked");
		return;
	}
	atomic_fetch_add(&sv->requests, 1);
	sim_fault_t f;
	sim_fault_get(sv, &f);
	if (sim_faults(s, sv, &f, ans))
		return;
	sim_sendgrid_body(s, sv, &f, rq->body, rq->bodylen, 0, ans);
}

/* the jansson reading of a /v3/mail/send body: every check and answer, for what the scanner leaves */
static void sg_slow(sim_t *s, sim_vendor_t *sv, const sim_fault_t *fp, const char *body, size_t bodylen,
                    sim_ans_t *ans)
{
	sim_fault_t f = *fp;
	json_error_t je;
	json_t *j = json_loadb(body, bodylen, 0, &je);
	if (!json_is_object(j)) {
		json_decref(j);
		sg_error(ans, 400, NULL, "Bad Request");
		return;
	}
	json_t *ps = json_object_get(j, "personalizations");
	json_t *from = json_object_get(json_object_get(j, "from"), "email");
	json_t *content = json_object_get(j, "content");
	char field[96], msg[200];
	size_t np = json_array_size(ps), nrcpt = 0;
	const char *bad = NULL;
	if (!json_is_array(ps) || np == 0)
		sg_error(ans, 400, "personalizations", "The personalizations field is required and must have at least one personalization."), bad = "p";
	else if (np > 1000)
		sg_error(ans, 400, "personalizations", "The personalizations field must have 1000 or fewer personalizations."), bad = "p";
	else if (!json_is_string(from) || !is_email(json_string_value(from)))
		sg_err_from(ans, json_is_object(json_object_get(j, "from"))), bad = "f";
	else if (!json_is_string(json_object_get(j, "subject")) && !json_object_get(j, "template_id"))
		sg_error(ans, 400, "subject", "The subject is required. You can get around this requirement if you use a template with a subject defined or if every personalization has a subject defined."), bad = "s";
	else if (!sender_ok(sv, json_string_value(from), NULL))
		sg_error(ans, 403, "from", "The from address does not match a verified Sender Identity. Mail cannot be sent until this error is resolved."), bad = "v";
	else if (!json_is_array(content) || json_array_size(content) == 0)
		sg_error(ans, 400, "content", "Unless a valid template_id is provided, the content parameter is required. There must be at least one defined content block."), bad = "c";
	if (bad) {
		json_decref(j);
		return;
	}
	json_t *seen = json_object();
	size_t i;
	json_t *p;
	json_array_foreach(ps, i, p)
	{
		json_t *to = json_object_get(p, "to");
		if (!json_is_array(to) || json_array_size(to) == 0) {
			snprintf(field, sizeof field, "personalizations.%zu.to", i);
			sg_error(ans, 400, field, "The to array is required for all personalization objects, and must have at least one email object with a valid email address.");
			bad = "t";
			break;
		}
		for (int kind = 0; kind < 3 && !bad; kind++) {
			json_t *list = json_object_get(p, sg_kinds[kind]);
			if (kind && list && !json_is_array(list)) {
				snprintf(field, sizeof field, "personalizations.%zu.%s", i, sg_kinds[kind]);
				sg_error(ans, 400, field, "Invalid type. Expected: array, given: another type.");
				bad = "l";
				break;
			}
			size_t k;
			json_t *e;
			json_array_foreach(list, k, e)
			{
				const char *em = json_string_value(json_object_get(e, "email"));
				if (!is_email(em) || json_object_get(seen, em)) {
					sg_err_addr(ans, i, sg_kinds[kind], k, em ? em : "", em ? strlen(em) : 0, em && is_email(em));
					bad = "e";
					break;
				}
				json_object_set_new(seen, em, json_true());
				nrcpt++;
			}
		}
		if (bad)
			break;
		/* the size of custom_args as compact JSON, near enough (keys, values, quotes) */
		size_t cal = 0;
		{
			const char *ck;
			json_t *cv;
			json_object_foreach(json_object_get(p, "custom_args"), ck, cv)
			{
				cal += strlen(ck) + 4;
				cal += json_is_string(cv) ? json_string_length(cv) + 2 : 24;
			}
		}
		if (cal >= 10000) {
			snprintf(field, sizeof field, "personalizations.%zu.custom_args", i);
			sg_error(ans, 400, field, "The custom_args total size must be less than 10000 bytes.");
			bad = "a";
			break;
		}
		json_t *sub = json_object_get(p, "substitutions");
		if (sub) {
			size_t tot = 0;
			const char *sk;
			json_t *sval;
			int okv = json_is_object(sub);
			json_object_foreach(sub, sk, sval)
			{
				okv &= json_is_string(sval);
				tot += strlen(sk) + (json_is_string(sval) ? json_string_length(sval) : 0);
			}
			snprintf(field, sizeof field, "personalizations.%zu.substitutions", i);
			if (!okv) {
				sg_error(ans, 400, field, "Substitutions must be an object of string values.");
				bad = "u";
				break;
			}
			if (tot >= 10000) {
				sg_error(ans, 400, field, "The substitutions total size must be less than 10000 bytes.");
				bad = "u";
				break;
			}
		}
	}
	json_decref(seen);
	if (!bad && nrcpt > 1000) {
		snprintf(msg, sizeof msg, "The total number of recipients must be 1000 or fewer (found %zu).", nrcpt);
		sg_error(ans, 400, "personalizations", msg);
		bad = "n";
	}
	if (bad) {
		json_decref(j);
		return;
	}
	char xid[40];
	make_ref(s, sv, "", xid, 23);
	ans->status = 202;
	ans->ctype = NULL;
	memcpy(ans->hname, "X-Message-Id", 13);
	vnd_cpy(ans->hval, sizeof ans->hval, xid);
	sim_note_accepted(sv, np);
	char ub[600];
	const char *rurl = f.receipts ? hook_url(s, sv, &f, "events", ub, sizeof ub) : NULL;
	json_t *events = rurl ? json_array() : NULL;
	json_t *topargs = json_object_get(j, "custom_args");
	/* each recipient's message as SendGrid would write it: substitutions applied
	 * to subject and every content value, then its unsubscribe link checked */
	json_t *subj = json_object_get(j, "subject");
	size_t nc = json_array_size(content) < 3 ? json_array_size(content) : 3; /* parts[3]: the header */
	buf_t parts[5];
	for (size_t k = 0; k < 5; k++)
		buf_init(&parts[k], SIM_PART_MAX);
	json_t *tophdr = json_object_get(j, "headers");
	json_array_foreach(ps, i, p)
	{
		{
			json_t *sub = json_object_get(p, "substitutions");
			int applied = 0;
			for (size_t k = 0; k < nc; k++) {
				json_t *cv = json_object_get(json_array_get(content, k), "value");
				sg_apply(&parts[k], json_string_value(cv) ? json_string_value(cv) : "",
				         json_string_length(cv), sub, &applied);
			}
			sg_apply(&parts[4], json_string_value(subj) ? json_string_value(subj) : "",
			         json_string_length(subj), sub, &applied);
			json_t *luj = json_object_get(json_object_get(p, "headers"), "List-Unsubscribe");
			if (!luj)
				luj = json_object_get(tophdr, "List-Unsubscribe");
			const char *lu = json_string_value(luj);
			if (lu && !sg_apply(&parts[3], lu, strlen(lu), sub, &applied) && !buf_putc(&parts[3], 0))
				lu = parts[3].p;
			email_check(sv, json_string_value(json_object_get(json_array_get(json_object_get(p, "to"), 0), "email")),
			            lu, parts, nc, applied);
		}
		json_t *ca = json_object_get(p, "custom_args");
		const char *id = json_string_value(json_object_get(ca, "tocsin_id"));
		if (!id)
			id = json_string_value(json_object_get(topargs, "tocsin_id"));
		count_id(sv, id, json_string_value(json_object_get(json_array_get(json_object_get(p, "to"), 0), "email")),
		         json_string_value(json_object_get(j, "subject")));
		if (!events)
			continue;
		const char *em = json_string_value(json_object_get(json_array_get(json_object_get(p, "to"), 0), "email"));
		json_t *o = sg_event(s, sv, &f, em, xid, i);
		const char *k;
		json_t *v;
		json_object_foreach(topargs, k, v) json_object_set(o, k, v); /* merged, as SendGrid does */
		json_object_foreach(ca, k, v) json_object_set(o, k, v);
		json_array_append_new(events, o);
	}
	for (size_t k = 0; k < 5; k++)
		buf_free(&parts[k]);
	if (events && json_array_size(events))
		sg_events(s, sv, rurl, events, f.receipt_delay_ms);
	json_decref(events);
	json_decref(j);
}

/* ---- SendGrid: the scanner reading of /v3/mail/send (no per-recipient allocation) ---- */

/* one personalization, as checked: spans into the body or the request's arena */
typedef struct sg_pers {
	const char *to0;   /* its first address, NUL-terminated */
	const char *id;    /* custom_args.tocsin_id, NUL-terminated, or NULL */
	sj_t ca;           /* custom_args (any type), or p == NULL */
	const char *lu;    /* headers.List-Unsubscribe when a string */
	int lu_set;        /* headers had List-Unsubscribe (any type) */
	size_t sub0, nsub; /* its substitutions in sg_fast_t.subs */
} sg_pers_t;

typedef struct sg_sub {
	const char *k, *v;
	size_t kl, vl;
} sg_sub_t;

/* per-request state of the scanner reading: one arena for decoded strings, one
 * table of the request's addresses, one list of substitutions */
typedef struct sg_fast {
	char *arena;
	size_t alen, acap;
	sg_pers_t *ps;
	sg_sub_t *subs;
	size_t nsubs, capsubs;
	struct sg_seen {
		uint64_t h;
		const char *p;
		size_t n;
	} *seen;
	size_t nseen, capseen;
} sg_fast_t;

#define SG_FALLBACK 1

/* string token t as a NUL-terminated string: in place when it has no escape
 * and is followed by nothing we need (never: the body is const), so copied or
 * decoded into the arena. NULL when the arena is full. */
static const char *sg_cstr(sg_fast_t *x, sj_t t, size_t *len)
{
	size_t n = sj_has_esc(t) ? sj_str_len(t) : t.n - 2;
	if (x->alen + n + 1 > x->acap)
		return NULL;
	char *o = x->arena + x->alen;
	if (sj_has_esc(t))
		sj_str_dec(t, o);
	else {
		memcpy(o, t.p + 1, n);
		o[n] = 0;
	}
	x->alen += n + 1;
	if (len)
		*len = n;
	return o;
}

/* string token t as bytes: in the body when it has no escape, else decoded into the arena */
static const char *sg_bytes(sg_fast_t *x, sj_t t, size_t *len)
{
	if (!sj_has_esc(t)) {
		*len = t.n - 2;
		return t.p + 1;
	}
	return sg_cstr(x, t, len);
}

/* members names[0..n) of o into vals (last one wins, as with jansson); all
 * absent when o is not an object. SG_FALLBACK when a key has an escape. */
static int sg_get(sj_t o, const char *const *names, sj_t *vals, int n)
{
	for (int i = 0; i < n; i++)
		vals[i].p = NULL, vals[i].n = 0;
	sj_it_t it;
	if (sj_iter(o, SJ_OBJ, &it))
		return 0;
	sj_t k, v;
	while (sj_next_member(&it, &k, &v)) {
		if (sj_has_esc(k))
			return SG_FALLBACK;
		for (int i = 0; i < n; i++)
			if (sj_key_is(k, names[i]))
				vals[i] = v;
	}
	return 0;
}

/* the keys of object o, checked distinct and escape-free (else SG_FALLBACK) */
static int sg_plain_keys(sj_t o)
{
	sj_it_t it;
	if (sj_iter(o, SJ_OBJ, &it))
		return 0;
	sj_t ks[64], k, v;
	int n = 0;
	while (sj_next_member(&it, &k, &v)) {
		if (sj_has_esc(k) || n == 64)
			return SG_FALLBACK;
		for (int i = 0; i < n; i++)
			if (ks[i].n == k.n && !memcmp(ks[i].p, k.p, k.n))
				return SG_FALLBACK;
		ks[n++] = k;
	}
	return 0;
}

static int is_email_n(const char *s, size_t n)
{
	const char *at = memchr(s, '@', n);
	if (!at || at == s || !memchr(at + 1, '.', (size_t)(s + n - at - 1)))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (strchr(" \t\r\n<>,;\"", s[i]) && s[i])
			return 0;
	return 1;
}

/* 1 when the address was already in the request; adds it otherwise (-1: no memory) */
static int sg_seen(sg_fast_t *x, const char *p, size_t n)
{
	if ((x->nseen + 1) * 2 > x->capseen) {
		size_t nc = x->capseen ? x->capseen * 2 : 2048;
		struct sg_seen *t = calloc(nc, sizeof *t);
		if (!t)
			return -1;
		for (size_t i = 0; i < x->capseen; i++) {
			if (!x->seen[i].p)
				continue;
			size_t j = x->seen[i].h & (nc - 1);
			while (t[j].p)
				j = (j + 1) & (nc - 1);
			t[j] = x->seen[i];
		}
		free(x->seen);
		x->seen = t;
		x->capseen = nc;
	}
	uint64_t h = hash64(p, n, 5);
	size_t j = h & (x->capseen - 1);
	for (; x->seen[j].p; j = (j + 1) & (x->capseen - 1))
		if (x->seen[j].h == h && x->seen[j].n == n && !memcmp(x->seen[j].p, p, n))
			return 1;
	x->seen[j].h = h;
	x->seen[j].p = p;
	x->seen[j].n = n;
	x->nseen++;
	return 0;
}

/* SendGrid substitutions from a list: like sg_apply, with tmp reused by the caller */
static int sg_apply_list(buf_t *out, buf_t *tmp, const char *src, size_t len, const sg_sub_t *subs,
                         size_t nsub, int *applied)
{
	buf_reset(out);
	int rc = buf_append(out, src, len);
	for (size_t i = 0; i < nsub && !rc; i++) {
		const sg_sub_t *sb = &subs[i];
		if (!sb->kl)
			continue;
		const char *p = out->p, *end = out->p + out->len, *q;
		buf_reset(tmp);
		int hit = 0;
		while ((q = memmem(p, (size_t)(end - p), sb->k, sb->kl))) {
			rc = rc ? rc : buf_append(tmp, p, (size_t)(q - p));
			rc = rc ? rc : buf_append(tmp, sb->v, sb->vl);
			p = q + sb->kl;
			hit = 1;
		}
		if (!hit)
			continue;
		*applied = 1;
		rc = rc ? rc : buf_append(tmp, p, (size_t)(end - p));
		if (!rc) { /* the result becomes out: swap the buffers */
			buf_t t = *out;
			*out = *tmp;
			*tmp = t;
		}
	}
	return rc;
}

static void sg_fast_free(sg_fast_t *x)
{
	free(x->arena);
	free(x->ps);
	free(x->subs);
	free(x->seen);
}

/* a JSON object span as a jansson value (events only), NULL when it is not an object */
static json_t *sg_obj(sj_t v)
{
	return sj_type(v) == SJ_OBJ ? json_loadb(v.p, v.n, 0, NULL) : NULL;
}

/* The scanner reading: 0 when the body was answered, SG_FALLBACK (nothing
 * counted, ans untouched) when it is left to jansson. */
static int sg_fast(sim_t *s, sim_vendor_t *sv, const sim_fault_t *fp, const char *body, size_t len,
                   sim_ans_t *ans)
{
	sj_t j;
	if (sj_parse(body, len, &j))
		return SG_FALLBACK;
	static const char *const top_names[] = {"personalizations", "from", "content", "subject",
	                                        "template_id", "headers", "custom_args"};
	sj_t tv[7];
	if (sg_get(j, top_names, tv, 7))
		return SG_FALLBACK;
	sj_t ps = tv[0], fromo = tv[1], content = tv[2], subj = tv[3], tmpl = tv[4], tophdr = tv[5],
	     topargs = tv[6];
	sg_fast_t x;
	memset(&x, 0, sizeof x);
	x.acap = 2 * len + 64;
	x.arena = malloc(x.acap);
	if (!x.arena)
		return SG_FALLBACK;
	int rc = SG_FALLBACK;
	char field[96], msg[200];
	size_t np = 0, nrcpt = 0;
	sj_it_t it;
	sj_t v, k;
	if (!sj_iter(ps, SJ_ARR, &it))
		while (sj_next_elem(&it, &v))
			np++;
	static const char *const email_name[] = {"email"};
	sj_t fromv;
	if (sg_get(fromo, email_name, &fromv, 1))
		goto out;
	const char *from = sj_type(fromv) == SJ_STR ? sg_cstr(&x, fromv, NULL) : NULL;
	if (sj_type(fromv) == SJ_STR && !from)
		goto out;
	size_t ncontent = 0;
	if (!sj_iter(content, SJ_ARR, &it))
		while (sj_next_elem(&it, &v))
			ncontent++;
	/* the same checks in the same order as sg_slow; no count changes before all pass */
	const char *bad = NULL;
	if (sj_type(ps) != SJ_ARR || np == 0)
		sg_error(ans, 400, "personalizations", "The personalizations field is required and must have at least one personalization."), bad = "p";
	else if (np > 1000)
		sg_error(ans, 400, "personalizations", "The personalizations field must have 1000 or fewer personalizations."), bad = "p";
	else if (!from || !is_email(from))
		sg_err_from(ans, sj_type(fromo) == SJ_OBJ), bad = "f";
	else if (sj_type(subj) != SJ_STR && !tmpl.p)
		sg_error(ans, 400, "subject", "The subject is required. You can get around this requirement if you use a template with a subject defined or if every personalization has a subject defined."), bad = "s";
	else if (!sender_ok(sv, from, NULL))
		sg_error(ans, 403, "from", "The from address does not match a verified Sender Identity. Mail cannot be sent until this error is resolved."), bad = "v";
	else if (sj_type(content) != SJ_ARR || ncontent == 0)
		sg_error(ans, 400, "content", "Unless a valid template_id is provided, the content parameter is required. There must be at least one defined content block."), bad = "c";
	if (bad) {
		rc = 0;
		goto out;
	}
	x.ps = calloc(np, sizeof *x.ps);
	if (!x.ps)
		goto out;
	static const char *const p_names[] = {"to", "custom_args", "substitutions", "headers", "cc", "bcc"};
	static const char *const id_name[] = {"tocsin_id"};
	static const char *const lu_name[] = {"List-Unsubscribe"};
	sj_t p;
	size_t i = 0;
	sj_iter(ps, SJ_ARR, &it);
	for (; sj_next_elem(&it, &p); i++) {
		sg_pers_t *pr = &x.ps[i];
		sj_t pv[6], idv, luv;
		if (sg_get(p, p_names, pv, 6))
			goto out;
		sj_t to = pv[0], ca = pv[1], sub = pv[2], hd = pv[3], lists[3] = {pv[0], pv[4], pv[5]};
		sj_it_t ti;
		if (sj_iter(to, SJ_ARR, &ti) || !sj_next_elem(&ti, &v)) {
			snprintf(field, sizeof field, "personalizations.%zu.to", i);
			sg_error(ans, 400, field, "The to array is required for all personalization objects, and must have at least one email object with a valid email address.");
			bad = "t";
			break;
		}
		for (int kind = 0; kind < 3 && !bad; kind++) {
			if (kind && lists[kind].p && sj_type(lists[kind]) != SJ_ARR) {
				snprintf(field, sizeof field, "personalizations.%zu.%s", i, sg_kinds[kind]);
				sg_error(ans, 400, field, "Invalid type. Expected: array, given: another type.");
				bad = "l";
				break;
			}
			if (sj_iter(lists[kind], SJ_ARR, &ti))
				continue;
			for (size_t kk = 0; sj_next_elem(&ti, &v); kk++) {
				sj_t ev;
				if (sg_get(v, email_name, &ev, 1))
					goto out;
				const char *em = NULL;
				size_t eml = 0;
				int first = !kind && !kk;
				if (sj_type(ev) == SJ_STR) {
					em = first ? sg_cstr(&x, ev, &eml) : sg_bytes(&x, ev, &eml);
					if (!em)
						goto out;
				}
				if (first)
					pr->to0 = em;
				int seen = em && is_email_n(em, eml) ? sg_seen(&x, em, eml) : 0;
				if (seen < 0)
					goto out;
				if (!em || !is_email_n(em, eml) || seen) {
					sg_err_addr(ans, i, sg_kinds[kind], kk, em ? em : "", eml, seen);
					bad = "e";
					break;
				}
				nrcpt++;
			}
		}
		if (bad)
			break;
		/* custom_args: its size as sg_slow counts it */
		if (sg_plain_keys(ca))
			goto out;
		size_t cal = 0;
		if (!sj_iter(ca, SJ_OBJ, &ti))
			while (sj_next_member(&ti, &k, &v))
				cal += k.n - 2 + 4 + (sj_type(v) == SJ_STR ? sj_str_len(v) + 2 : 24);
		if (cal >= 10000) {
			snprintf(field, sizeof field, "personalizations.%zu.custom_args", i);
			sg_error(ans, 400, field, "The custom_args total size must be less than 10000 bytes.");
			bad = "a";
			break;
		}
		pr->ca = ca;
		if (sg_get(ca, id_name, &idv, 1))
			goto out;
		if (sj_type(idv) == SJ_STR && !(pr->id = sg_cstr(&x, idv, NULL)))
			goto out;
		if (sub.p) {
			if (sg_plain_keys(sub))
				goto out;
			size_t tot = 0;
			int okv = sj_type(sub) == SJ_OBJ;
			pr->sub0 = x.nsubs;
			if (!sj_iter(sub, SJ_OBJ, &ti))
				while (sj_next_member(&ti, &k, &v)) {
					okv &= sj_type(v) == SJ_STR;
					if (sj_type(v) != SJ_STR)
						continue;
					if (x.nsubs == x.capsubs) {
						size_t nc = x.capsubs ? x.capsubs * 2 : 1024;
						sg_sub_t *ns = realloc(x.subs, nc * sizeof *ns);
						if (!ns)
							goto out;
						x.subs = ns;
						x.capsubs = nc;
					}
					sg_sub_t *sb = &x.subs[x.nsubs++];
					sb->k = k.p + 1;
					sb->kl = k.n - 2;
					if (!(sb->v = sg_bytes(&x, v, &sb->vl)))
						goto out;
					tot += sb->kl + sb->vl;
				}
			pr->nsub = x.nsubs - pr->sub0;
			snprintf(field, sizeof field, "personalizations.%zu.substitutions", i);
			if (!okv) {
				sg_error(ans, 400, field, "Substitutions must be an object of string values.");
				bad = "u";
				break;
			}
			if (tot >= 10000) {
				sg_error(ans, 400, field, "The substitutions total size must be less than 10000 bytes.");
				bad = "u";
				break;
			}
		}
		if (sg_get(hd, lu_name, &luv, 1))
			goto out;
		pr->lu_set = luv.p != NULL;
		if (sj_type(luv) == SJ_STR && !(pr->lu = sg_cstr(&x, luv, NULL)))
			goto out;
	}
	if (!bad && nrcpt > 1000) {
		snprintf(msg, sizeof msg, "The total number of recipients must be 1000 or fewer (found %zu).", nrcpt);
		sg_error(ans, 400, "personalizations", msg);
		bad = "n";
	}
	if (bad) {
		rc = 0;
		goto out;
	}
	/* what stays the same for every recipient: content, subject, the top-level header, the top id */
	size_t nc = ncontent < 3 ? ncontent : 3; /* parts[3]: the header */
	const char *cval[3] = {"", "", ""};
	size_t clen[3] = {0, 0, 0};
	static const char *const value_name[] = {"value"};
	sj_iter(content, SJ_ARR, &it);
	for (size_t c = 0; c < nc && sj_next_elem(&it, &v); c++) {
		sj_t cv;
		if (sg_get(v, value_name, &cv, 1))
			goto out;
		if (sj_type(cv) == SJ_STR && !(cval[c] = sg_bytes(&x, cv, &clen[c])))
			goto out;
	}
	const char *subject = NULL;
	size_t subjl = 0;
	if (sj_type(subj) == SJ_STR && !(subject = sg_cstr(&x, subj, &subjl)))
		goto out;
	sj_t tluv, tidv;
	if (sg_get(tophdr, lu_name, &tluv, 1) || sg_get(topargs, id_name, &tidv, 1))
		goto out;
	const char *toplu = NULL, *topid = NULL;
	if (sj_type(tluv) == SJ_STR && !(toplu = sg_cstr(&x, tluv, NULL)))
		goto out;
	if (sj_type(tidv) == SJ_STR && !(topid = sg_cstr(&x, tidv, NULL)))
		goto out;
	sim_fault_t f = *fp;
	char ub[600];
	const char *rurl = f.receipts ? hook_url(s, sv, &f, "events", ub, sizeof ub) : NULL;
	json_t *topj = rurl ? sg_obj(topargs) : NULL;
	if (rurl && sg_plain_keys(topargs)) {
		json_decref(topj);
		goto out;
	}
	/* from here on the request is accepted: the answer and the counts, as sg_slow */
	rc = 0;
	char xid[40];
	make_ref(s, sv, "", xid, 23);
	ans->status = 202;
	ans->ctype = NULL;
	memcpy(ans->hname, "X-Message-Id", 13);
	vnd_cpy(ans->hval, sizeof ans->hval, xid);
	sim_note_accepted(sv, np);
	json_t *events = rurl ? json_array() : NULL;
	buf_t parts[5], tmp;
	for (size_t c = 0; c < 5; c++)
		buf_init(&parts[c], SIM_PART_MAX);
	buf_init(&tmp, SIM_PART_MAX);
	for (i = 0; i < np; i++) {
		sg_pers_t *pr = &x.ps[i];
		const sg_sub_t *sb = x.subs ? x.subs + pr->sub0 : NULL;
		int applied = 0;
		for (size_t c = 0; c < nc; c++)
			sg_apply_list(&parts[c], &tmp, cval[c], clen[c], sb, pr->nsub, &applied);
		sg_apply_list(&parts[4], &tmp, subject ? subject : "", subjl, sb, pr->nsub, &applied);
		const char *lu = pr->lu_set ? pr->lu : toplu;
		if (lu && !sg_apply_list(&parts[3], &tmp, lu, strlen(lu), sb, pr->nsub, &applied) &&
		    !buf_putc(&parts[3], 0))
			lu = parts[3].p;
		email_check(sv, pr->to0, lu, parts, nc, applied);
		count_id(sv, pr->id ? pr->id : topid, pr->to0, subject);
		if (!events)
			continue;
		json_t *o = sg_event(s, sv, &f, pr->to0, xid, i);
		const char *ck;
		json_t *cv, *caj = sg_obj(pr->ca);
		json_object_foreach(topj, ck, cv) json_object_set(o, ck, cv); /* merged, as SendGrid does */
		json_object_foreach(caj, ck, cv) json_object_set(o, ck, cv);
		json_decref(caj);
		json_array_append_new(events, o);
	}
	for (size_t c = 0; c < 5; c++)
		buf_free(&parts[c]);
	buf_free(&tmp);
	if (events && json_array_size(events))
		sg_events(s, sv, rurl, events, f.receipt_delay_ms);
	json_decref(events);
	json_decref(topj);
out:
	sg_fast_free(&x);
	if (rc == SG_FALLBACK) { /* leave ans as it was */
		ans->status = 0;
		buf_reset(&ans->body);
	}
	return rc;
}

int sim_sendgrid_body(sim_t *s, sim_vendor_t *sv, const sim_fault_t *f, const char *body, size_t len,
                      int mode, sim_ans_t *ans)
{
	if (mode != 1 && sg_fast(s, sv, f, body, len, ans) == 0)
		return 0;
	if (mode == 2)
		return SG_FALLBACK;
	sg_slow(s, sv, f, body, len, ans);
	return 0;
}

/* ---- Mailgun ---- */

static void mg_error(sim_ans_t *ans, unsigned st, const char *msg)
{
	ans->status = st;
	ans->ctype = "application/json";
	buf_reset(&ans->body);
	buf_puts(&ans->body, "{\"message\":");
	buf_json_str(&ans->body, msg, strlen(msg));
	buf_putc(&ans->body, '}');
}

int sim_mp_parse(const char *ctype, const char *body, size_t len, mp_field_t *fs, int max)
{
	const char *bp = ctype ? strstr(ctype, "boundary=") : NULL;
	if (!bp)
		return -1;
	bp += 9;
	char bnd[200];
	size_t bl = strcspn(bp, ";");
	if (*bp == '"') {
		bp++;
		bl = strcspn(bp, "\"");
	}
	if (bl == 0 || bl + 4 >= sizeof bnd)
		return -1;
	bnd[0] = '-';
	bnd[1] = '-';
	memcpy(bnd + 2, bp, bl);
	bl += 2;
	bnd[bl] = 0;
	int n = 0;
	const char *p = memmem(body, len, bnd, bl), *end = body + len;
	while (p) {
		p += bl;
		if (end - p >= 2 && p[0] == '-' && p[1] == '-')
			return n;
		if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
			return -1;
		p += 2;
		const char *hend = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
		if (!hend)
			return -1;
		const char *nm = memmem(p, (size_t)(hend - p), "name=\"", 6);
		const char *v = hend + 4;
		const char *next = memmem(v, (size_t)(end - v), bnd, bl);
		if (!next || next - v < 2 || !nm)
			return -1;
		if (n >= max)
			return -1;
		nm += 6;
		size_t nl = strcspn(nm, "\"");
		if (nl >= sizeof fs[n].name || nm + nl > hend)
			return -1;
		memcpy(fs[n].name, nm, nl);
		fs[n].name[nl] = 0;
		fs[n].val = v;
		fs[n].len = (size_t)(next - v - 2);
		n++;
		p = next;
	}
	return -1;
}

static int mg_match(sim_vendor_t *sv, const void *ctx)
{
	return sv->v->account && !strcmp(sv->v->account, ctx);
}

/* 1 when auth (an Authorization value) is sv's API key */
static int mg_key(sim_vendor_t *sv, const void *auth)
{
	return sv->basic[0] && auth && vnd_ct_eq(auth, strlen(auth), sv->basic, strlen(sv->basic));
}

/* The addresses of one `to` value as Mailgun reads it: a comma-separated list
 * ("a@x.org, Ann <ann@y.org>", commas inside quotes do not split), each the
 * part in <...> when there is one. Appended to to[*n..max) (NUL-terminated,
 * at most 319 bytes each); -1 for an entry that is not an address, or too many. */
static int mg_addrs(const char *v, size_t len, char (*to)[320], int max, int *n)
{
	const char *p = v, *end = v + len;
	while (p <= end) {
		const char *q = p;
		int quoted = 0;
		while (q < end && (quoted || *q != ',')) {
			if (*q == '"')
				quoted = !quoted;
			q++;
		}
		const char *a = p, *z = q; /* this entry, trimmed, or its <...> part */
		const char *lt = memchr(a, '<', (size_t)(z - a)), *gt = lt ? memchr(lt, '>', (size_t)(z - lt)) : NULL;
		if (lt && gt)
			a = lt + 1, z = gt;
		while (a < z && (*a == ' ' || *a == '\t'))
			a++;
		while (z > a && (z[-1] == ' ' || z[-1] == '\t'))
			z--;
		if (z > a || q < end || (lt && gt)) { /* an empty last entry ("a@x.org,") is allowed */
			const char *at = memchr(a, '@', (size_t)(z - a));
			if (!at || at == a || at == z - 1 || z - a >= 320 || *n >= max ||
			    memchr(a, ' ', (size_t)(z - a)) || memchr(a, '<', (size_t)(z - a)))
				return -1;
			memcpy(to[*n], a, (size_t)(z - a));
			to[*n][z - a] = 0;
			(*n)++;
		}
		p = q + 1;
	}
	return 0;
}

static void mg_event(sim_t *s, sim_vendor_t *sv, const char *url, const char *event,
                     const char *severity, const char *rcpt, const char *id, const char *msgid,
                     double delay)
{
	char tok[64], sig[80], ts[24];
	make_ref(s, sv, "", tok, 50);
	time_t due = time(NULL) + (time_t)(delay / 1000); /* signed when it is due */
	snprintf(ts, sizeof ts, "%lld", (long long)due);
	if (!sv->wh_key || sim_mailgun_sig(sv->wh_key, ts, tok, sig, sizeof sig))
		return;
	json_t *o = json_pack("{s:{s:s,s:s,s:s},s:{s:s,s:s,s:f,s:s,s:{s:{s:s}}}}", "signature",
	                      "timestamp", ts, "token", tok, "signature", sig, "event-data", "event",
	                      event, "recipient", rcpt, "timestamp", (double)due, "id", tok,
	                      "message", "headers", "message-id", msgid);
	if (!o)
		return;
	json_t *ed = json_object_get(o, "event-data");
	if (severity) {
		json_object_set_new(ed, "severity", json_string(severity));
		json_object_set_new(ed, "delivery-status",
		                    json_pack("{s:i,s:s}", "code", 550, "message", "5.1.1 No such user"));
	}
	json_object_set_new(ed, "user-variables", json_pack("{s:s}", "tocsin_id", id ? id : ""));
	char *body = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (body)
		sim_webhook_later(s, sv, delay, url, "application/json", body, NULL, NULL, NULL, NULL);
	free(body);
}

void sim_api_mailgun(sim_t *s, sim_req_t *rq, const char *domain, sim_ans_t *ans)
{
	sim_vendor_t *sv = sim_find(s, SIM_MAILGUN, mg_match, domain);
	const char *auth = hdr(rq, "Authorization");
	if (sv && sim_outage(s, sv, ans))
		return;
	if (sv)
		atomic_fetch_add(&sv->requests, 1);
	/* the key is the account's: checked before the domain, as Mailgun does */
	if (!(sv ? mg_key(sv, auth) : sim_find(s, SIM_MAILGUN, mg_key, auth) != NULL)) {
		ans->status = 401;
		ans->ctype = "text/plain";
		buf_puts(&ans->body, "Forbidden");
		return;
	}
	if (!sv) {
		char m[200];
		snprintf(m, sizeof m, "Domain not found: %.100s", domain);
		mg_error(ans, 404, m);
		return;
	}
	sim_fault_t f;
	sim_fault_get(sv, &f);
	if (sim_faults(s, sv, &f, ans))
		return;
	mp_field_t *fs = malloc(2100 * sizeof *fs);
	if (!fs) {
		mg_error(ans, 500, "out of memory");
		return;
	}
	const char *ct = hdr(rq, "Content-Type");
	int nf = 0;
	sim_form_t fm;
	memset(&fm, 0, sizeof fm);
	if (ct && !strncasecmp(ct, "multipart/form-data", 19)) {
		nf = sim_mp_parse(ct, rq->body, rq->bodylen, fs, 2100);
	} else if (ct && !strncasecmp(ct, "application/x-www-form-urlencoded", 33) &&
	           !sim_form_parse(rq->body, rq->bodylen, &fm)) {
		for (size_t i = 0; i < fm.n && nf < 2100; i++, nf++) {
			vnd_cpy(fs[nf].name, sizeof fs[nf].name, fm.name[i]);
			fs[nf].val = fm.val[i];
			fs[nf].len = strlen(fm.val[i]);
		}
	} else
		nf = -1;
	if (nf < 0) {
		sim_form_free(&fm);
		free(fs);
		mg_error(ans, 400, "Bad request: the body is not a valid multipart/form-data or urlencoded form");
		return;
	}
	const mp_field_t *from = NULL, *subject = NULL, *text = NULL, *html = NULL, *rv = NULL, *vid = NULL,
	                 *hlu = NULL;
	int nto = 0, badto = 0;
	char(*tos)[320] = malloc(1001 * sizeof *tos);
	for (int i = 0; tos && i < nf; i++) {
		const char *n = fs[i].name;
		if (!strcmp(n, "from"))
			from = &fs[i];
		else if (!strcmp(n, "to") && !badto && mg_addrs(fs[i].val, fs[i].len, tos, 1001, &nto))
			badto = nto < 1001 ? 1 : 2;
		else if (!strcmp(n, "subject"))
			subject = &fs[i];
		else if (!strcmp(n, "text"))
			text = &fs[i];
		else if (!strcmp(n, "html"))
			html = &fs[i];
		else if (!strcmp(n, "recipient-variables"))
			rv = &fs[i];
		else if (!strcmp(n, "v:tocsin_id"))
			vid = &fs[i];
		else if (!strcmp(n, "h:List-Unsubscribe"))
			hlu = &fs[i];
	}
	json_t *rvj = rv ? json_loadb(rv->val, rv->len, 0, NULL) : NULL;
	if (!tos)
		mg_error(ans, 500, "out of memory");
	else if (!from || !from->len)
		mg_error(ans, 400, "'from' parameter is missing");
	else if (badto == 1)
		mg_error(ans, 400, "'to' parameter is not a valid address. please check documentation");
	else if (!nto)
		mg_error(ans, 400, "'to' parameter is missing");
	else if (nto > 1000 || badto == 2)
		mg_error(ans, 400, "'to' parameter: too many recipients (max 1000)");
	else if (!subject)
		mg_error(ans, 400, "'subject' parameter is missing");
	else if (!text && !html)
		mg_error(ans, 400, "Need at least one of 'text' or 'html' parameters specified");
	else if (rv && !json_is_object(rvj))
		mg_error(ans, 400, "recipient-variables parameter is not a valid JSON");
	else {
		char mid[200], ref[40], tsb[32];
		time_t t = time(NULL);
		struct tm tm;
		gmtime_r(&t, &tm);
		strftime(tsb, sizeof tsb, "%Y%m%d%H%M%S", &tm);
		make_ref(s, sv, "", ref, 17);
		snprintf(mid, sizeof mid, "<%s.1.%s@%.100s>", tsb, ref, domain);
		ans->status = 200;
		ans->ctype = "application/json";
		buf_puts(&ans->body, "{\"id\":");
		buf_json_str(&ans->body, mid, strlen(mid));
		buf_puts(&ans->body, ",\"message\":\"Queued. Thank you.\"}");
		sim_note_accepted(sv, (uint64_t)nto);
		char ub[600];
		const char *rurl = f.receipts ? hook_url(s, sv, &f, "events", ub, sizeof ub) : NULL;
		for (int i = 0; i < nto; i++) {
			const char *to = tos[i];
			char idb[80];
			const char *id = json_string_value(json_object_get(json_object_get(rvj, to), "tocsin_id"));
			if (!id && vid && vid->len < sizeof idb && (vid->len < 11 || memcmp(vid->val, "%recipient.", 11))) {
				memcpy(idb, vid->val, vid->len);
				idb[vid->len] = 0;
				id = idb;
			}
			char subj[256] = "";
			if (subject)
				memcpy(subj, subject->val, subject->len < sizeof subj ? subject->len : sizeof subj - 1);
			count_id(sv, id, to, subj);
			{ /* the recipient's message as Mailgun would write it */
				json_t *vars = json_object_get(rvj, to);
				buf_t parts[2], lub;
				size_t np = 0;
				int applied = 0;
				const mp_field_t *bodies[2] = {text, html};
				for (int k = 0; k < 2; k++) {
					if (!bodies[k])
						continue;
					buf_init(&parts[np], SIM_PART_MAX);
					mg_apply(&parts[np], bodies[k]->val, bodies[k]->len, vars, &applied);
					np++;
				}
				buf_init(&lub, SIM_PART_MAX);
				const char *lu = NULL;
				if (hlu && !mg_apply(&lub, hlu->val, hlu->len, vars, &applied) && !buf_putc(&lub, 0))
					lu = lub.p;
				email_check(sv, to, lu, parts, np, applied);
				buf_free(&lub);
				for (size_t k = 0; k < np; k++)
					buf_free(&parts[k]);
			}
			if (!rurl)
				continue;
			if (f.optout_rate > 0 && sim_rand(s) < f.optout_rate)
				mg_event(s, sv, rurl, "unsubscribed", NULL, to, id, mid, f.receipt_delay_ms);
			else if ((f.permanent_rate > 0 && sim_rand(s) < f.permanent_rate) ||
			         !(f.delivered_rate >= 1 || sim_rand(s) < f.delivered_rate))
				mg_event(s, sv, rurl, "failed", "permanent", to, id, mid, f.receipt_delay_ms);
			else
				mg_event(s, sv, rurl, "delivered", NULL, to, id, mid, f.receipt_delay_ms);
		}
	}
	json_decref(rvj);
	sim_form_free(&fm);
	free(tos);
	free(fs);
}

/* ---- simulated inbound messages / unsubscribes ---- */

static int by_name(sim_vendor_t *sv, const void *name)
{
	return !strcmp(sv->v->name, name);
}

void sim_inbound(sim_t *s, sim_req_t *rq, sim_ans_t *ans)
{
	json_t *j = json_loadb(rq->body, rq->bodylen, 0, NULL);
	const char *name = json_string_value(json_object_get(j, "vendor"));
	const char *from = json_string_value(json_object_get(j, "from"));
	const char *body = json_string_value(json_object_get(j, "body"));
	const char *to = json_string_value(json_object_get(j, "to"));
	const char *url = json_string_value(json_object_get(j, "url"));
	sim_vendor_t *sv = NULL;
	for (int k = 0; name && !sv && k < 4; k++)
		sv = sim_find(s, k, by_name, name);
	ans->ctype = "application/json";
	if (!json_is_object(j) || !sv || !from) {
		ans->status = 400;
		buf_puts(&ans->body, "{\"error\":\"/_sim/inbound wants {\\\"vendor\\\":<configured vendor name>,"
		                     "\\\"from\\\":<address>,\\\"body\\\":\\\"STOP\\\"} (to, url optional)\"}");
		json_decref(j);
		return;
	}
	if (!body)
		body = "STOP";
	if (!to)
		to = sv->v->nsenders && sv->v->senders[0].from ? sv->v->senders[0].from : "+15005550006";
	sim_fault_t f;
	sim_fault_get(sv, &f);
	char ub[600];
	const char *leaf = sv->kind == SIM_TWILIO || sv->kind == SIM_VONAGE ? "inbound" : "events";
	if (!url)
		url = hook_url(s, sv, &f, leaf, ub, sizeof ub);
	if (!url) {
		ans->status = 400;
		buf_puts(&ans->body, "{\"error\":\"no webhook URL: set tracker.public_url in the config or "
		                     "\\\"url\\\" here\"}");
		json_decref(j);
		return;
	}
	char ref[40];
	if (sv->kind == SIM_TWILIO) {
		make_ref(s, sv, "SM", ref, sizeof ref);
		const char *names[] = {"MessageSid", "SmsSid", "AccountSid", "From", "To", "Body", "NumMedia", "ApiVersion"};
		const char *vals[] = {ref, ref, sv->v->account ? sv->v->account : "", from, to, body, "0", "2010-04-01"};
		char sig[64];
		buf_t b;
		buf_init(&b, 1 << 16);
		for (int i = 0; i < 8; i++) {
			buf_printf(&b, "%s%s=", i ? "&" : "", names[i]);
			buf_form_enc(&b, vals[i], strlen(vals[i]));
		}
		char tok[40];
		make_ref(s, sv, "", tok, sizeof tok);
		if (sv->secret && !sim_twilio_sig(sv->secret, url, names, vals, 8, sig, sizeof sig))
			sim_webhook_later(s, sv, 0, url, "application/x-www-form-urlencoded", b.p,
			                  "X-Twilio-Signature", sig, "I-Twilio-Idempotency-Token", tok);
		buf_free(&b);
	} else if (sv->kind == SIM_VONAGE) {
		make_ref(s, sv, "", ref, 19);
		char ts[32];
		vg_time(0, ts, sizeof ts);
		const char *names[18] = {"msisdn", "to", "messageId", "type", "text", "api-key",
		                         "message-timestamp"};
		const char *vals[18] = {from[0] == '+' ? from + 1 : from, to[0] == '+' ? to + 1 : to, ref,
		                        "text", body, sv->v->account ? sv->v->account : "", ts};
		vg_webhook(s, sv, 0, url, names, vals, 7);
	} else if (sv->kind == SIM_SENDGRID) {
		json_t *ev = json_pack("[{s:s,s:I,s:s,s:s}]", "email", from, "timestamp",
		                       (json_int_t)time(NULL), "event", "unsubscribe", "sg_event_id", "sim-unsub");
		make_ref(s, sv, "", ref, 23);
		json_object_set_new(json_array_get(ev, 0), "sg_event_id", json_string(ref));
		sg_events(s, sv, url, ev, 0);
		json_decref(ev);
	} else {
		mg_event(s, sv, url, "unsubscribed", NULL, from, NULL, "<sim@unsub>", 0);
	}
	ans->status = 200;
	buf_puts(&ans->body, "{\"queued\":true,\"url\":");
	buf_json_str(&ans->body, url, strlen(url));
	buf_putc(&ans->body, '}');
	json_decref(j);
}
