/* sim_twilio.c -- the emulated Twilio Messages API: create, list, fetch; status callbacks and inbound messages. */
#include "vendors/sim/sim_int.h"

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

static void tw_error(sim_ans_t *ans, unsigned st, int code, const char *msg)
{
	ans->status = st;
	ans->ctype = "application/json";
	buf_reset(&ans->body);
	buf_printf(&ans->body, "{\"code\":%d,\"message\":", code);
	buf_json_str(&ans->body, msg, strlen(msg));
	buf_printf(&ans->body,
	           ",\"more_info\":\"https://www.twilio.com/docs/errors/%d\",\"status\":%u}", code,
	           st);
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
	                        "From",       "To",     "ApiVersion",    "ErrorCode"};
	const char *vals[9] = {sid,
	                       sid,
	                       status,
	                       status,
	                       sv->v->account ? sv->v->account : "",
	                       from ? from : "",
	                       to,
	                       "2010-04-01",
	                       errcode};
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
	sim_ref(s, sv, "", tok, sizeof tok);
	sim_webhook_later(s, sv, delay, url, "application/x-www-form-urlencoded", b.p,
	                  "X-Twilio-Signature", sig, "I-Twilio-Idempotency-Token", tok);
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
	int64_t sent = m->created_ms + (int64_t)(m->delay_ms / 2),
	        done = m->created_ms + (int64_t)m->delay_ms;
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
static void tw_msg_json(buf_t *b, const char *acc, const sim_twmsg_t *m, const char *body,
                        int64_t now_ms, const char *created)
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
	buf_puts(b, undelivered
	                ? "\",\"direction\":\"outbound-api\",\"error_code\":30003,\"error_message\":"
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

/* keep a copy of m (its body copied) in sv's ring, over the oldest */
static void tw_keep(sim_vendor_t *sv, const sim_twmsg_t *m, const char *body)
{
	if (!sv->tw)
		return;
	size_t len = strlen(body);
	pthread_mutex_lock(&sv->twmu);
	sim_twmsg_t *slot = &sv->tw[sv->tw_next];
	char *buf = slot->body;
	size_t cap = slot->bodycap;
	if (cap < len + 1) { /* the slot's buffer is reused once the ring has wrapped */
		char *nb = realloc(buf, len + 1);
		if (!nb) {
			pthread_mutex_unlock(&sv->twmu);
			return;
		}
		buf = nb;
		cap = len + 1;
	}
	*slot = *m;
	slot->body = memcpy(buf, body, len + 1);
	slot->bodycap = cap;
	sv->tw_next = (sv->tw_next + 1) % SIM_TW_KEEP;
	if (sv->tw_n < SIM_TW_KEEP)
		sv->tw_n++;
	pthread_mutex_unlock(&sv->twmu);
}

/* The Twilio vendor of account when the request's Basic credentials are its own;
 * else NULL with ans set (401 20003, or the outage). Counts the request. */
static sim_vendor_t *tw_auth(sim_t *s, sim_req_t *rq, const char *account, sim_ans_t *ans)
{
	sim_vendor_t *sv = sim_find(s, SIM_TWILIO, match_account, account);
	if (sv && sim_outage(s, sv, ans))
		return NULL;
	if (sv)
		sim_note_request(sv);
	const char *auth = sim_hdr(rq, "Authorization");
	if (!sv || !sv->basic[0] || !auth ||
	    !vnd_ct_eq(auth, strlen(auth), sv->basic, strlen(sv->basic))) {
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
	if (*end &&
	    (!(end = strptime(end, "T%H:%M:%S", &tm)) || (strcmp(end, "Z") && strcmp(end, "+00:00"))))
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
			snprintf(msg, sizeof msg,
			         "Invalid %s: %.40s (YYYY-MM-DD or YYYY-MM-DDThh:mm:ssZ)", dk[k], v);
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
		if ((lim[0] >= 0 &&
		     (sent < 0 || (day[0] ? sday != lim[0] : sent / 1000 != lim[0] / 1000))) ||
		    (lim[1] >= 0 &&
		     (sent < 0 || (day[1] ? sday > lim[1] : sent / 1000 > lim[1] / 1000))) ||
		    (lim[2] >= 0 &&
		     (sent < 0 || (day[2] ? sday < lim[2] : sent / 1000 < lim[2] / 1000))))
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
	buf_printf(b,
	           "],\"end\":%ld,\"first_page_uri\":\"/2010-04-01/Accounts/%s/Messages.json?%sPageSize=%ld&Page=0\","
	           "\"next_page_uri\":",
	           n ? page * size + n - 1 : 0, acc, fs, size);
	if (more)
		buf_printf(b, "\"/2010-04-01/Accounts/%s/Messages.json?%sPageSize=%ld&Page=%ld\"",
		           acc, fs, size, page + 1);
	else
		buf_puts(b, "null");
	buf_printf(b, ",\"page\":%ld,\"page_size\":%ld,\"previous_page_uri\":", page, size);
	if (page > 0)
		buf_printf(b, "\"/2010-04-01/Accounts/%s/Messages.json?%sPageSize=%ld&Page=%ld\"",
		           acc, fs, size, page - 1);
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
		snprintf(msg, sizeof msg,
		         "The 'From' number %.40s is not a valid phone number, shortcode, "
		         "or alphanumeric sender ID.",
		         from);
		tw_error(ans, 400, 21212, msg);
	} else if (!body || !*body) {
		tw_error(ans, 400, 21602, "Message body is required.");
	} else if (utf8_chars(body) > 1600) {
		tw_error(ans, 400, 21617,
		         "The concatenated message body exceeds the 1600 character limit.");
	} else if (cb && strncmp(cb, "http://", 7) && strncmp(cb, "https://", 8)) {
		tw_error(ans, 400, 21609, "Invalid StatusCallback URL");
	} else if (mss && *mss && !sim_sender_ok(sv, NULL, mss)) {
		snprintf(msg, sizeof msg, "The Messaging Service Sid %.40s is invalid.", mss);
		tw_error(ans, 400, 21701, msg);
	} else if ((!mss || !*mss) && !sim_sender_ok(sv, from, NULL)) {
		snprintf(msg, sizeof msg,
		         "The From phone number %.40s is not a valid, SMS-capable inbound "
		         "phone number or short code for your account.",
		         from);
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
		sim_ref(s, sv, "SM", m.sid, sizeof m.sid);
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
		sim_count_id(sv, url_mid(cb, mid, sizeof mid), to, body);
		ans->status = 201;
		ans->ctype = "application/json";
		tw_msg_json(&ans->body, sv->v->account, &m, body, m.created_ms, date);
		tw_keep(sv, &m, body);
		const char *rurl = f.receipt_url[0] ? f.receipt_url : cb;
		if (f.receipts && rurl) {
			int ok = m.ok;
			tw_receipt(s, sv, &f, rurl, sid, from, to, "sent", NULL,
			           f.receipt_delay_ms / 2);
			tw_receipt(s, sv, &f, rurl, sid, from, to, ok ? "delivered" : "undelivered",
			           ok ? NULL : "30003", f.receipt_delay_ms);
		}
	}
	sim_form_free(&fm);
}

void sim_twilio_inbound(sim_t *s, sim_vendor_t *sv, const char *url, const char *from,
                        const char *to, const char *body)
{
	char ref[40];
	sim_ref(s, sv, "SM", ref, sizeof ref);
	const char *names[] = {"MessageSid", "SmsSid", "AccountSid", "From",
	                       "To",         "Body",   "NumMedia",   "ApiVersion"};
	const char *vals[] = {ref,  ref,         sv->v->account ? sv->v->account : "",
	                      from, to,          body,
	                      "0",  "2010-04-01"};
	char sig[64];
	buf_t b;
	buf_init(&b, 1 << 16);
	for (int i = 0; i < 8; i++) {
		buf_printf(&b, "%s%s=", i ? "&" : "", names[i]);
		buf_form_enc(&b, vals[i], strlen(vals[i]));
	}
	char tok[40];
	sim_ref(s, sv, "", tok, sizeof tok);
	if (sv->secret && !sim_twilio_sig(sv->secret, url, names, vals, 8, sig, sizeof sig))
		sim_webhook_later(s, sv, 0, url, "application/x-www-form-urlencoded", b.p,
		                  "X-Twilio-Signature", sig, "I-Twilio-Idempotency-Token", tok);
	buf_free(&b);
}
