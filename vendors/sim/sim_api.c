/* sim_api.c -- the emulated vendor APIs: request validation, answers, receipts, inbound messages. */
#include "vendors/sim/sim_int.h"

#include "core/clock.h"
#include "core/hash.h"
#include "core/log.h"
#include "vendors/vnd_int.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static int segments(const char *body)
{
	size_t n = utf8_chars(body);
	int ascii = 1;
	for (const char *p = body; *p; p++)
		if ((unsigned char)*p >= 0x80)
			ascii = 0;
	size_t one = ascii ? 160 : 70, part = ascii ? 153 : 67;
	return n <= one ? 1 : (int)((n + part - 1) / part);
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

static void rfc2822(char *out, size_t outlen)
{
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, outlen, "%a, %d %b %Y %H:%M:%S +0000", &tm);
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
	if (!sv->secret || vnd_twilio_sign(sv->secret, url, names, vals, n, sig, sizeof sig))
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
	sim_webhook_later(s, sv, delay, url, "application/x-www-form-urlencoded", b.p, "X-Twilio-Signature",
	                  sig, NULL, NULL);
	buf_free(&b);
}

void sim_api_twilio(sim_t *s, sim_req_t *rq, const char *account, sim_ans_t *ans)
{
	sim_vendor_t *sv = sim_find(s, SIM_TWILIO, match_account, account);
	const char *auth = hdr(rq, "Authorization");
	if (!sv || !sv->basic[0] || !auth ||
	    !vnd_ct_eq(auth, strlen(auth), sv->basic, strlen(sv->basic))) {
		if (sv)
			atomic_fetch_add(&sv->requests, 1);
		tw_error(ans, 401, 20003, "Authenticate");
		ans->hname[0] = 0;
		memcpy(ans->hname, "WWW-Authenticate", 17);
		snprintf(ans->hval, sizeof ans->hval, "Basic realm=\"Twilio API\"");
		return;
	}
	atomic_fetch_add(&sv->requests, 1);
	sim_fault_t f;
	sim_fault_get(sv, &f);
	if (sim_faults(s, sv, &f, ans))
		return;
	vnd_form_t fm;
	if (vnd_form_parse(rq->body, rq->bodylen, &fm)) {
		vnd_form_free(&fm);
		tw_error(ans, 400, 21619, "The request body is too large or has too many parameters");
		return;
	}
	const char *to = vnd_form_get(&fm, "To"), *from = vnd_form_get(&fm, "From");
	const char *mss = vnd_form_get(&fm, "MessagingServiceSid"), *body = vnd_form_get(&fm, "Body");
	const char *cb = vnd_form_get(&fm, "StatusCallback");
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
		char sid[40], date[64], mid[80];
		make_ref(s, sv, "SM", sid, sizeof sid);
		rfc2822(date, sizeof date);
		atomic_fetch_add(&sv->accepted, 1);
		if (url_mid(cb, mid, sizeof mid))
			sim_ids_add(sv, mid);
		buf_t *b = &ans->body;
		const char *acc = sv->v->account;
		ans->status = 201;
		ans->ctype = "application/json";
		buf_printf(b, "{\"account_sid\":\"%s\",\"api_version\":\"2010-04-01\",\"body\":", acc);
		buf_json_str(b, body, strlen(body));
		buf_printf(b, ",\"date_created\":\"%s\",\"date_sent\":null,\"date_updated\":\"%s\","
		              "\"direction\":\"outbound-api\",\"error_code\":null,\"error_message\":null,"
		              "\"from\":", date, date);
		if (from && *from)
			buf_json_str(b, from, strlen(from));
		else
			buf_puts(b, "null");
		buf_puts(b, ",\"messaging_service_sid\":");
		if (mss && *mss)
			buf_json_str(b, mss, strlen(mss));
		else
			buf_puts(b, "null");
		buf_printf(b, ",\"num_media\":\"0\",\"num_segments\":\"%d\",\"price\":null,"
		              "\"price_unit\":\"USD\",\"sid\":\"%s\",\"status\":\"%s\","
		              "\"subresource_uris\":{\"media\":\"/2010-04-01/Accounts/%s/Messages/%s/Media.json\"},"
		              "\"to\":",
		           segments(body), sid, mss && *mss ? "accepted" : "queued", acc, sid);
		buf_json_str(b, to, strlen(to));
		buf_printf(b, ",\"uri\":\"/2010-04-01/Accounts/%s/Messages/%s.json\"}", acc, sid);
		const char *rurl = f.receipt_url[0] ? f.receipt_url : cb;
		if (f.receipts && rurl) {
			int ok = f.delivered_rate >= 1 || sim_rand(s) < f.delivered_rate;
			tw_receipt(s, sv, &f, rurl, sid, from, to, "sent", NULL, f.receipt_delay_ms / 2);
			tw_receipt(s, sv, &f, rurl, sid, from, to, ok ? "delivered" : "undelivered",
			           ok ? NULL : "30003", f.receipt_delay_ms);
		}
	}
	vnd_form_free(&fm);
}

/* ---- Vonage, SendGrid, Mailgun: see below ---- */

void sim_api_vonage(sim_t *s, sim_req_t *rq, sim_ans_t *ans)
{
	(void)s, (void)rq;
	ans->status = 501;
	ans->ctype = "application/json";
	buf_puts(&ans->body, "{\"error\":\"not emulated yet\"}");
}

void sim_api_sendgrid(sim_t *s, sim_req_t *rq, sim_ans_t *ans)
{
	sim_api_vonage(s, rq, ans);
}

void sim_api_mailgun(sim_t *s, sim_req_t *rq, const char *domain, sim_ans_t *ans)
{
	(void)domain;
	sim_api_vonage(s, rq, ans);
}

void sim_inbound(sim_t *s, sim_req_t *rq, sim_ans_t *ans)
{
	sim_api_vonage(s, rq, ans);
}
