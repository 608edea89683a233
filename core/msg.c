/* msg.c -- encode and parse the JSON records tocsin puts on Kafka. */
#include "core/msg.h"
#include "core/err.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const channel_names[MSG_CH__COUNT] = {"sms", "email"};
static const char *const state_names[MSG_ST__COUNT] = {
    "queued",    "retrying", "accepted", "sent",        "delivered", "suppressed",
    "cancelled", "expired",  "failed",   "undelivered", "bounced",   "unknown_receipt"};
static const char *const camp_names[MSG_CAMP__COUNT] = {"launching", "running", "paused",
                                                        "cancelled", "done",    "scheduled"};
static const char *const vh_names[MSG_VH__COUNT] = {"healthy", "open", "probing", "drained"};

static int lookup(const char *const *names, int n, const char *s)
{
	if (!s)
		return -1;
	for (int i = 0; i < n; i++)
		if (strcmp(names[i], s) == 0)
			return i;
	return -1;
}

const char *msg_channel_name(msg_channel_t ch)
{
	return (unsigned)ch < MSG_CH__COUNT ? channel_names[ch] : "?";
}

int msg_channel_parse(const char *s, msg_channel_t *out)
{
	int i = lookup(channel_names, MSG_CH__COUNT, s);
	if (i < 0)
		return TOCSIN_ERR_INVAL;
	*out = (msg_channel_t)i;
	return TOCSIN_OK;
}

const char *msg_state_name(msg_state_t st)
{
	return (unsigned)st < MSG_ST__COUNT ? state_names[st] : "?";
}

int msg_state_parse(const char *s, msg_state_t *out)
{
	int i = lookup(state_names, MSG_ST__COUNT, s);
	if (i < 0)
		return TOCSIN_ERR_INVAL;
	*out = (msg_state_t)i;
	return TOCSIN_OK;
}

bool msg_state_is_final(msg_state_t st)
{
	return st >= MSG_ST_DELIVERED && st != MSG_ST_UNKNOWN_RECEIPT;
}

/* the order of the states that are not final: unknown_receipt comes after sent */
static int rank(msg_state_t st) { return st == MSG_ST_UNKNOWN_RECEIPT ? MSG_ST_SENT + 1 : (int)st; }

bool msg_state_advances(msg_state_t from, msg_state_t to)
{
	if (msg_state_is_final(from))
		return false;
	if (msg_state_is_final(to))
		return true;
	return rank(to) > rank(from);
}

const char *msg_camp_state_name(msg_camp_state_t st)
{
	return (unsigned)st < MSG_CAMP__COUNT ? camp_names[st] : "?";
}

int msg_camp_state_parse(const char *s, msg_camp_state_t *out)
{
	int i = lookup(camp_names, MSG_CAMP__COUNT, s);
	if (i < 0)
		return TOCSIN_ERR_INVAL;
	*out = (msg_camp_state_t)i;
	return TOCSIN_OK;
}

const char *msg_vh_state_name(msg_vh_state_t st)
{
	return (unsigned)st < MSG_VH__COUNT ? vh_names[st] : "?";
}

int msg_vh_state_parse(const char *s, msg_vh_state_t *out)
{
	int i = lookup(vh_names, MSG_VH__COUNT, s);
	if (i < 0)
		return TOCSIN_ERR_INVAL;
	*out = (msg_vh_state_t)i;
	return TOCSIN_OK;
}

int msg_optout_key(msg_channel_t ch, const char *address, char *out, size_t outlen)
{
	int n = snprintf(out, outlen, "%s:%s", msg_channel_name(ch), address);
	return n < 0 || (size_t)n >= outlen ? -1 : n;
}

/* ---- writers ---- */

typedef struct jw {
	buf_t *b;
	int rc;
	int first;
} jw_t;

/* ,"k": in one append (k is one of this file's literal keys) */
static void jw_key(jw_t *w, const char *k)
{
	if (w->rc)
		return;
	char t[64];
	size_t n = strlen(k), o = 0;
	if (n > sizeof t - 4) {
		w->rc = TOCSIN_ERR_INVAL;
		return;
	}
	if (!w->first)
		t[o++] = ',';
	w->first = 0;
	t[o++] = '"';
	memcpy(t + o, k, n);
	o += n;
	t[o++] = '"';
	t[o++] = ':';
	w->rc = buf_append(w->b, t, o);
}

static void jw_str(jw_t *w, const char *k, const char *v)
{
	if (!v || w->rc)
		return;
	jw_key(w, k);
	if (!w->rc)
		w->rc = buf_json_str(w->b, v, strlen(v));
}

static void jw_raw(jw_t *w, const char *k, const char *v)
{
	if (!v || w->rc)
		return;
	jw_key(w, k);
	if (!w->rc)
		w->rc = buf_puts(w->b, v);
}

static void jw_int(jw_t *w, const char *k, int64_t v)
{
	if (w->rc)
		return;
	jw_key(w, k);
	if (!w->rc)
		w->rc = buf_put_i64(w->b, v);
}

static jw_t jw_begin(buf_t *b)
{
	jw_t w = {b, buf_append(b, "{\"v\":1", 6), 0};
	return w;
}

static int jw_end(jw_t *w)
{
	if (!w->rc)
		w->rc = buf_putc(w->b, '}');
	return w->rc;
}

int msg_out_encode(const msg_out_t *m, buf_t *b)
{
	jw_t w = jw_begin(b);
	jw_str(&w, "id", m->id);
	jw_str(&w, "campaign", m->campaign);
	jw_str(&w, "channel", msg_channel_name(m->channel));
	jw_str(&w, "to", m->to);
	jw_str(&w, "sender", m->sender);
	jw_str(&w, "body", m->body);
	jw_str(&w, "subject", m->subject);
	jw_str(&w, "text", m->text);
	jw_str(&w, "html", m->html);
	jw_raw(&w, "headers", m->headers);
	jw_raw(&w, "subs", m->subs);
	jw_str(&w, "enc", m->enc);
	jw_int(&w, "segments", m->segments);
	jw_int(&w, "priority", m->priority);
	jw_int(&w, "created_ms", m->created_ms);
	jw_int(&w, "expires_ms", m->expires_ms);
	jw_int(&w, "attempt", m->attempt);
	jw_int(&w, "not_before_ms", m->not_before_ms);
	return jw_end(&w);
}

int msg_status_encode(const msg_status_t *s, buf_t *b)
{
	jw_t w = jw_begin(b);
	jw_str(&w, "id", s->id);
	jw_str(&w, "campaign", s->campaign);
	jw_str(&w, "channel", msg_channel_name(s->channel));
	jw_str(&w, "to", s->to);
	jw_str(&w, "state", msg_state_name(s->state));
	jw_str(&w, "vendor", s->vendor);
	jw_str(&w, "vendor_ref", s->vendor_ref);
	jw_str(&w, "code", s->code);
	jw_str(&w, "detail", s->detail);
	if (s->latency_ms >= 0)
		jw_int(&w, "latency_ms", s->latency_ms);
	jw_int(&w, "attempt", s->attempt);
	jw_int(&w, "ts_ms", s->ts_ms);
	return jw_end(&w);
}

int msg_campaign_encode(const msg_campaign_t *c, buf_t *b)
{
	jw_t w = jw_begin(b);
	jw_str(&w, "id", c->id);
	jw_str(&w, "name", c->name);
	jw_str(&w, "state", msg_camp_state_name(c->state));
	if (c->queued >= 0)
		jw_int(&w, "queued", c->queued);
	if (c->send_at_ms > 0)
		jw_int(&w, "send_at_ms", c->send_at_ms);
	if (c->qh_urgent)
		jw_str(&w, "quiet_hours_override", "urgent");
	jw_int(&w, "ts_ms", c->ts_ms);
	jw_str(&w, "actor", c->actor);
	return jw_end(&w);
}

int msg_dead_encode(const msg_dead_t *d, buf_t *b)
{
	jw_t w = jw_begin(b);
	jw_str(&w, "id", d->id);
	jw_str(&w, "campaign", d->campaign);
	jw_str(&w, "state", msg_state_name(d->state));
	jw_str(&w, "code", d->code);
	jw_str(&w, "reason", d->reason);
	jw_int(&w, "attempts", d->attempts);
	jw_int(&w, "ts_ms", d->ts_ms);
	if (d->message && !w.rc) {
		jw_key(&w, "message");
		if (!w.rc)
			w.rc = buf_append(w.b, d->message, d->message_len);
	}
	return jw_end(&w);
}

static void jw_dbl(jw_t *w, const char *k, double v)
{
	if (w->rc || v < 0)
		return;
	jw_key(w, k);
	if (!w->rc)
		w->rc = buf_printf(w->b, "%.6g", v);
}

int msg_vhealth_encode(const msg_vhealth_t *h, buf_t *b)
{
	jw_t w = jw_begin(b);
	jw_str(&w, "vendor", h->vendor);
	jw_str(&w, "state", msg_vh_state_name(h->state));
	jw_str(&w, "reason", h->reason);
	jw_str(&w, "by", h->by);
	jw_dbl(&w, "p95_ms", h->p95_ms);
	jw_dbl(&w, "error_rate", h->error_rate);
	jw_int(&w, "ts_ms", h->ts_ms);
	jw_str(&w, "actor", h->actor);
	return jw_end(&w);
}

int msg_optout_encode(const msg_optout_t *o, buf_t *b)
{
	jw_t w = jw_begin(b);
	jw_str(&w, "channel", msg_channel_name(o->channel));
	jw_str(&w, "address", o->address);
	jw_str(&w, "action", o->optin ? "optin" : "optout");
	jw_str(&w, "source", o->source);
	jw_str(&w, "campaign", o->campaign);
	jw_int(&w, "ts_ms", o->ts_ms);
	return jw_end(&w);
}

/* ---- parsers ---- */

static json_t *parse_obj(const void *data, size_t len, char *err, size_t errlen)
{
	json_error_t je;
	json_t *o = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
	if (!o) {
		snprintf(err, errlen, "invalid JSON at column %d: %s", je.column, je.text);
		return NULL;
	}
	if (!json_is_object(o)) {
		snprintf(err, errlen, "record is not a JSON object");
		json_decref(o);
		return NULL;
	}
	json_t *v = json_object_get(o, "v");
	if (!json_is_integer(v) || json_integer_value(v) != MSG_VERSION) {
		snprintf(err, errlen, "unsupported record version (want \"v\":%d)", MSG_VERSION);
		json_decref(o);
		return NULL;
	}
	return o;
}

static const char *gs(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

static int64_t gi(json_t *o, const char *k, int64_t dflt)
{
	json_t *v = json_object_get(o, k);
	return json_is_integer(v) ? (int64_t)json_integer_value(v) : dflt;
}

static int fail(json_t **hold, json_t *o, char *err, size_t errlen, const char *what)
{
	snprintf(err, errlen, "%s", what);
	json_decref(o);
	*hold = NULL;
	return TOCSIN_ERR_INVAL;
}

int msg_out_parse(const void *data, size_t len, msg_out_t *m, json_t **hold, char *err, size_t errlen)
{
	*hold = NULL;
	json_t *o = parse_obj(data, len, err, errlen);
	if (!o)
		return TOCSIN_ERR_INVAL;
	memset(m, 0, sizeof *m);
	m->id = gs(o, "id");
	m->campaign = gs(o, "campaign");
	m->to = gs(o, "to");
	if (!m->id || !m->campaign || !m->to)
		return fail(hold, o, err, errlen, "outbox record lacks id, campaign or to");
	if (msg_channel_parse(gs(o, "channel"), &m->channel))
		return fail(hold, o, err, errlen, "outbox record has an unknown channel");
	m->sender = gs(o, "sender");
	m->body = gs(o, "body");
	m->subject = gs(o, "subject");
	m->text = gs(o, "text");
	m->html = gs(o, "html");
	m->enc = gs(o, "enc");
	m->segments = (int)gi(o, "segments", 1);
	m->priority = (int)gi(o, "priority", 0);
	m->created_ms = gi(o, "created_ms", 0);
	m->expires_ms = gi(o, "expires_ms", 0);
	m->attempt = (int)gi(o, "attempt", 0);
	m->not_before_ms = gi(o, "not_before_ms", 0);
	/* raw JSON object text for headers/subs, kept alive by the tree under a private key */
	static const char *const rawk[2] = {"headers", "subs"};
	for (int i = 0; i < 2; i++) {
		json_t *h = json_object_get(o, rawk[i]);
		if (!json_is_object(h))
			continue;
		char *txt = json_dumps(h, JSON_COMPACT | JSON_PRESERVE_ORDER);
		json_t *js = txt ? json_string(txt) : NULL;
		free(txt);
		if (!js || json_object_set_new(o, i ? "\001subs" : "\001headers", js))
			return fail(hold, o, err, errlen, "out of memory");
		if (i)
			m->subs = json_string_value(js);
		else
			m->headers = json_string_value(js);
	}
	*hold = o;
	return TOCSIN_OK;
}

int msg_status_parse(const void *data, size_t len, msg_status_t *s, json_t **hold, char *err,
                     size_t errlen)
{
	*hold = NULL;
	json_t *o = parse_obj(data, len, err, errlen);
	if (!o)
		return TOCSIN_ERR_INVAL;
	memset(s, 0, sizeof *s);
	s->id = gs(o, "id");
	s->campaign = gs(o, "campaign");
	if (!s->id || !s->campaign)
		return fail(hold, o, err, errlen, "status record lacks id or campaign");
	if (msg_state_parse(gs(o, "state"), &s->state))
		return fail(hold, o, err, errlen, "status record has an unknown state");
	if (msg_channel_parse(gs(o, "channel"), &s->channel))
		return fail(hold, o, err, errlen, "status record has an unknown channel");
	s->to = gs(o, "to");
	s->vendor = gs(o, "vendor");
	s->vendor_ref = gs(o, "vendor_ref");
	s->code = gs(o, "code");
	s->detail = gs(o, "detail");
	s->latency_ms = gi(o, "latency_ms", -1);
	s->attempt = (int)gi(o, "attempt", 0);
	s->ts_ms = gi(o, "ts_ms", 0);
	*hold = o;
	return TOCSIN_OK;
}

int msg_campaign_parse(const void *data, size_t len, msg_campaign_t *c, json_t **hold, char *err,
                       size_t errlen)
{
	*hold = NULL;
	json_t *o = parse_obj(data, len, err, errlen);
	if (!o)
		return TOCSIN_ERR_INVAL;
	memset(c, 0, sizeof *c);
	c->id = gs(o, "id");
	if (!c->id)
		return fail(hold, o, err, errlen, "campaign record lacks id");
	if (msg_camp_state_parse(gs(o, "state"), &c->state))
		return fail(hold, o, err, errlen, "campaign record has an unknown state");
	c->name = gs(o, "name");
	c->queued = gi(o, "queued", -1);
	c->send_at_ms = gi(o, "send_at_ms", 0);
	const char *ov = gs(o, "quiet_hours_override");
	c->qh_urgent = ov && !strcmp(ov, "urgent");
	c->ts_ms = gi(o, "ts_ms", 0);
	c->actor = gs(o, "actor");
	*hold = o;
	return TOCSIN_OK;
}

static double gd(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	return json_is_number(v) ? json_number_value(v) : -1;
}

int msg_vhealth_parse(const void *data, size_t len, msg_vhealth_t *h, json_t **hold, char *err,
                      size_t errlen)
{
	*hold = NULL;
	json_t *o = parse_obj(data, len, err, errlen);
	if (!o)
		return TOCSIN_ERR_INVAL;
	memset(h, 0, sizeof *h);
	h->vendor = gs(o, "vendor");
	if (!h->vendor)
		return fail(hold, o, err, errlen, "vendor-health record lacks vendor");
	if (msg_vh_state_parse(gs(o, "state"), &h->state))
		return fail(hold, o, err, errlen, "vendor-health record has an unknown state");
	h->reason = gs(o, "reason");
	h->by = gs(o, "by");
	h->p95_ms = gd(o, "p95_ms");
	h->error_rate = gd(o, "error_rate");
	h->ts_ms = gi(o, "ts_ms", 0);
	h->actor = gs(o, "actor");
	*hold = o;
	return TOCSIN_OK;
}

int msg_optout_parse(const void *data, size_t len, msg_optout_t *op, json_t **hold, char *err,
                     size_t errlen)
{
	*hold = NULL;
	json_t *o = parse_obj(data, len, err, errlen);
	if (!o)
		return TOCSIN_ERR_INVAL;
	memset(op, 0, sizeof *op);
	op->address = gs(o, "address");
	if (!op->address)
		return fail(hold, o, err, errlen, "opt-out record lacks address");
	if (msg_channel_parse(gs(o, "channel"), &op->channel))
		return fail(hold, o, err, errlen, "opt-out record has an unknown channel");
	const char *a = gs(o, "action");
	if (!a || (strcmp(a, "optout") && strcmp(a, "optin")))
		return fail(hold, o, err, errlen, "opt-out record action must be optout or optin");
	op->optin = strcmp(a, "optin") == 0;
	op->source = gs(o, "source");
	op->campaign = gs(o, "campaign");
	op->ts_ms = gi(o, "ts_ms", 0);
	*hold = o;
	return TOCSIN_OK;
}

int msg_dead_parse(const void *data, size_t len, msg_dead_t *d, json_t **hold, char *err, size_t errlen)
{
	*hold = NULL;
	json_t *o = parse_obj(data, len, err, errlen);
	if (!o)
		return TOCSIN_ERR_INVAL;
	memset(d, 0, sizeof *d);
	d->id = gs(o, "id");
	d->campaign = gs(o, "campaign");
	if (!d->id || !d->campaign)
		return fail(hold, o, err, errlen, "dead letter lacks id or campaign");
	if (msg_state_parse(gs(o, "state"), &d->state))
		return fail(hold, o, err, errlen, "dead letter has an unknown state");
	d->code = gs(o, "code");
	d->reason = gs(o, "reason");
	d->attempts = (int)gi(o, "attempts", 0);
	d->ts_ms = gi(o, "ts_ms", 0);
	json_t *m = json_object_get(o, "message");
	if (m) {
		if (!json_is_object(m))
			return fail(hold, o, err, errlen, "dead letter message is not an object");
		char *txt = json_dumps(m, JSON_COMPACT | JSON_PRESERVE_ORDER);
		json_t *js = txt ? json_string(txt) : NULL;
		free(txt);
		if (!js || json_object_set_new(o, "\001message", js))
			return fail(hold, o, err, errlen, "out of memory");
		d->message = json_string_value(js);
		d->message_len = json_string_length(js);
	}
	*hold = o;
	return TOCSIN_OK;
}

/* ---- a non-allocating scanner for outbox records ---- */

typedef struct scan {
	const char *p, *end;
	char *out, *oend; /* string arena */
	const char *why;
} scan_t;

static void ws(scan_t *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

static int hexv(int c)
{
	return c >= '0' && c <= '9'   ? c - '0'
	       : c >= 'a' && c <= 'f' ? c - 'a' + 10
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10
	                              : -1;
}

static int hex4(scan_t *s, unsigned *v)
{
	if (s->end - s->p < 4)
		return -1;
	*v = 0;
	for (int i = 0; i < 4; i++) {
		int h = hexv((unsigned char)s->p[i]);
		if (h < 0)
			return -1;
		*v = *v << 4 | (unsigned)h;
	}
	s->p += 4;
	return 0;
}

/* The high bit of each of the 8 bytes of x (little-endian) that is '"', '\\' or a control
 * character (below 0x20): the bytes a string cannot copy as they are; 0 when there is none.
 * The lowest flag set is always a true one (the SWAR zero-byte test can flag a byte above a
 * true match, never one below). */
static inline uint64_t special8(uint64_t x)
{
	const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
	uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');
	return (((q - ones) & ~q) | ((b - ones) & ~b) | ((x - ones * 0x20) & ~x)) & high;
}

/* Scan a string (s->p at the opening quote) into the arena; NULL on error. Runs of plain
 * bytes are copied 8 at a time while the arena has room for them; the byte loop below
 * does the rest, with the same checks and reasons. */
static const char *sstr(scan_t *s)
{
	if (s->p >= s->end || *s->p != '"') {
		s->why = "expected a string";
		return NULL;
	}
	s->p++;
	char *start = s->out;
	for (;;) {
		const char *p = s->p; /* locals: the stores through out cannot alias them */
		char *out = s->out;
		while (s->end - p >= 8 && s->oend - out > 12) {
			uint64_t x, sp;
			memcpy(&x, p, 8);
			memcpy(out, &x, 8);       /* room checked; only the plain bytes count */
			if ((sp = special8(x))) { /* its lowest flag is exact: skip the bytes before */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
				size_t k = (size_t)__builtin_ctzll(sp) / 8;
#else /* the lowest flag is the last byte in memory: let the byte loop take all 8 */
				size_t k = 0;
#endif
				out += k;
				p += k;
				break;
			}
			out += 8;
			p += 8;
		}
		s->p = p;
		s->out = out;
		if (s->p >= s->end || *s->p == '"')
			break;
		unsigned char c = (unsigned char)*s->p++;
		if (c < 0x20) {
			s->why = "control character in a string";
			return NULL;
		}
		if (s->out + 4 >= s->oend) {
			s->why = "record too large";
			return NULL;
		}
		if (c != '\\') {
			*s->out++ = (char)c;
			continue;
		}
		if (s->p >= s->end)
			break;
		char e = *s->p++;
		unsigned u, lo;
		switch (e) {
		case '"': *s->out++ = '"'; break;
		case '\\': *s->out++ = '\\'; break;
		case '/': *s->out++ = '/'; break;
		case 'b': *s->out++ = '\b'; break;
		case 'f': *s->out++ = '\f'; break;
		case 'n': *s->out++ = '\n'; break;
		case 'r': *s->out++ = '\r'; break;
		case 't': *s->out++ = '\t'; break;
		case 'u':
			if (hex4(s, &u)) {
				s->why = "bad \\u escape";
				return NULL;
			}
			if (u >= 0xd800 && u < 0xdc00) { /* a surrogate pair */
				if (s->end - s->p < 6 || s->p[0] != '\\' || s->p[1] != 'u') {
					s->why = "lone surrogate";
					return NULL;
				}
				s->p += 2;
				if (hex4(s, &lo) || lo < 0xdc00 || lo > 0xdfff) {
					s->why = "lone surrogate";
					return NULL;
				}
				u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
			} else if (u >= 0xdc00 && u < 0xe000) {
				s->why = "lone surrogate";
				return NULL;
			}
			if (u == 0) {
				s->why = "NUL in a string";
				return NULL;
			}
			if (u < 0x80) {
				*s->out++ = (char)u;
			} else if (u < 0x800) {
				*s->out++ = (char)(0xc0 | u >> 6);
				*s->out++ = (char)(0x80 | (u & 0x3f));
			} else if (u < 0x10000) {
				*s->out++ = (char)(0xe0 | u >> 12);
				*s->out++ = (char)(0x80 | (u >> 6 & 0x3f));
				*s->out++ = (char)(0x80 | (u & 0x3f));
			} else {
				*s->out++ = (char)(0xf0 | u >> 18);
				*s->out++ = (char)(0x80 | (u >> 12 & 0x3f));
				*s->out++ = (char)(0x80 | (u >> 6 & 0x3f));
				*s->out++ = (char)(0x80 | (u & 0x3f));
			}
			break;
		default: s->why = "bad escape"; return NULL;
		}
	}
	if (s->p >= s->end) {
		s->why = "unterminated string";
		return NULL;
	}
	s->p++; /* closing quote */
	*s->out++ = 0;
	return start;
}

/* Skip any JSON value; returns its start, or NULL on error. */
static const char *sskip(scan_t *s, int depth)
{
	ws(s);
	const char *start = s->p;
	if (s->p >= s->end) {
		s->why = "truncated";
		return NULL;
	}
	if (depth > 32) {
		s->why = "nested too deep";
		return NULL;
	}
	char c = *s->p;
	if (c == '"') {
		char *mark = s->out;
		const char *r = sstr(s);
		s->out = mark; /* skipped strings take no room */
		return r ? start : NULL;
	}
	if (c == '{' || c == '[') {
		char close = c == '{' ? '}' : ']';
		s->p++;
		ws(s);
		if (s->p < s->end && *s->p == close) {
			s->p++;
			return start;
		}
		for (;;) {
			if (c == '{') {
				ws(s);
				if (!sskip(s, depth + 1))
					return NULL;
				ws(s);
				if (s->p >= s->end || *s->p++ != ':') {
					s->why = "expected ':'";
					return NULL;
				}
			}
			if (!sskip(s, depth + 1))
				return NULL;
			ws(s);
			if (s->p < s->end && *s->p == ',') {
				s->p++;
				continue;
			}
			if (s->p < s->end && *s->p == close) {
				s->p++;
				return start;
			}
			s->why = "expected ',' or a closing bracket";
			return NULL;
		}
	}
	if (c == '-' || (c >= '0' && c <= '9')) {
		s->p++;
		while (s->p < s->end && ((*s->p >= '0' && *s->p <= '9') || *s->p == '+' ||
		                         *s->p == '-' || *s->p == '.' || *s->p == 'e' || *s->p == 'E'))
			s->p++;
		return start;
	}
	static const char *const lits[] = {"true", "false", "null"};
	for (int i = 0; i < 3; i++) {
		size_t n = strlen(lits[i]);
		if ((size_t)(s->end - s->p) >= n && !memcmp(s->p, lits[i], n)) {
			s->p += n;
			return start;
		}
	}
	s->why = "unexpected character";
	return NULL;
}

static int sint(const char *v, size_t n, int64_t *out)
{
	int64_t x = 0;
	size_t i = 0;
	int neg = n && v[0] == '-';
	i = (size_t)neg;
	if (i >= n)
		return -1;
	for (; i < n; i++) {
		if (v[i] < '0' || v[i] > '9' || x > (INT64_MAX - 9) / 10)
			return -1;
		x = x * 10 + (v[i] - '0');
	}
	*out = neg ? -x : x;
	return 0;
}

/* One scanner: walks a record's object and hands each key (kn bytes) to a field handler,
 * which consumes the value (returns -1 with s->why set on error). */
typedef int (*scan_field_fn)(scan_t *s, const char *k, size_t kn, void *ctx);

/* Copy a raw JSON object value into the arena; NULL on error. */
static const char *sraw(scan_t *s)
{
	const char *st = sskip(s, 0);
	if (!st)
		return NULL;
	size_t n = (size_t)(s->p - st);
	if ((size_t)(s->oend - s->out) <= n) {
		s->why = "record too large";
		return NULL;
	}
	memcpy(s->out, st, n);
	s->out[n] = 0;
	const char *r = s->out;
	s->out += n + 1;
	return r;
}

/* A string field (anything else is skipped and leaves *sp NULL), or an integer field. */
static int sfield_str(scan_t *s, const char **sp)
{
	if (s->p < s->end && *s->p == '"')
		return (*sp = sstr(s)) ? 0 : -1;
	return sskip(s, 0) ? 0 : -1;
}

static int sfield_int(scan_t *s, int64_t *ip, int *np)
{
	const char *st = sskip(s, 0);
	int64_t x;
	if (!st)
		return -1;
	if (sint(st, (size_t)(s->p - st), &x)) {
		s->why = "expected an integer";
		return -1;
	}
	if (ip)
		*ip = x;
	else
		*np = x < INT32_MIN ? INT32_MIN : x > INT32_MAX ? INT32_MAX : (int)x;
	return 0;
}

/* Walk the object; *v gets "v". 0, or TOCSIN_ERR_INVAL with a reason in err. */
static inline int scan_object(const void *data, size_t len, char *strbuf, size_t strcap,
                              scan_field_fn field, void *ctx, int64_t *v, char *err, size_t errlen)
{
	scan_t s = {data, (const char *)data + len, strbuf, strbuf + strcap, NULL};
	*v = -1;
	ws(&s);
	if (s.p >= s.end || *s.p != '{') {
		snprintf(err, errlen, "record is not a JSON object");
		return TOCSIN_ERR_INVAL;
	}
	s.p++;
	ws(&s);
	if (s.p < s.end && *s.p == '}')
		s.p++;
	else
		for (;;) {
			ws(&s);
			char *mark = s.out;
			const char *k = sstr(&s);
			if (!k)
				goto bad;
			ws(&s);
			if (s.p >= s.end || *s.p++ != ':') {
				s.why = "expected ':'";
				goto bad;
			}
			ws(&s);
			size_t kn = (size_t)(s.out - k) - 1;
			s.out = mark; /* the key is not kept (its bytes stay readable until overwritten) */
			int rc = kn == 1 && k[0] == 'v' ? sfield_int(&s, v, NULL)
			                                : field(&s, k, kn, ctx);
			if (rc)
				goto bad;
			ws(&s);
			if (s.p < s.end && *s.p == ',') {
				s.p++;
				continue;
			}
			if (s.p < s.end && *s.p == '}') {
				s.p++;
				break;
			}
			s.why = "expected ',' or '}'";
			goto bad;
		}
	ws(&s);
	if (s.p != s.end) {
		s.why = "text after the record";
		goto bad;
	}
	if (*v != MSG_VERSION) {
		snprintf(err, errlen, "unsupported record version (want \"v\":%d)", MSG_VERSION);
		return TOCSIN_ERR_INVAL;
	}
	return TOCSIN_OK;
bad:
	snprintf(err, errlen, "invalid JSON at byte %zu: %s", (size_t)(s.p - (const char *)data),
	         s.why ? s.why : "?");
	return TOCSIN_ERR_INVAL;
}

/* The key k of kn bytes is the literal lit (the length first: most keys differ in it). */
#define KEQ(k, kn, lit) ((kn) == sizeof lit - 1 && !memcmp(k, lit, sizeof lit - 1))

typedef struct out_ctx {
	msg_out_t *m;
	const char *channel;
} out_ctx_t;

static int out_field(scan_t *s, const char *k, size_t kn, void *ctx)
{
	out_ctx_t *c = ctx;
	msg_out_t *m = c->m;
	const char **sp = NULL;
	int64_t *ip = NULL;
	int *np = NULL;
	if (KEQ(k, kn, "id"))
		sp = &m->id;
	else if (KEQ(k, kn, "campaign"))
		sp = &m->campaign;
	else if (KEQ(k, kn, "channel"))
		sp = &c->channel;
	else if (KEQ(k, kn, "to"))
		sp = &m->to;
	else if (KEQ(k, kn, "sender"))
		sp = &m->sender;
	else if (KEQ(k, kn, "body"))
		sp = &m->body;
	else if (KEQ(k, kn, "subject"))
		sp = &m->subject;
	else if (KEQ(k, kn, "text"))
		sp = &m->text;
	else if (KEQ(k, kn, "html"))
		sp = &m->html;
	else if (KEQ(k, kn, "enc"))
		sp = &m->enc;
	else if (KEQ(k, kn, "created_ms"))
		ip = &m->created_ms;
	else if (KEQ(k, kn, "expires_ms"))
		ip = &m->expires_ms;
	else if (KEQ(k, kn, "not_before_ms"))
		ip = &m->not_before_ms;
	else if (KEQ(k, kn, "segments"))
		np = &m->segments;
	else if (KEQ(k, kn, "priority"))
		np = &m->priority;
	else if (KEQ(k, kn, "attempt"))
		np = &m->attempt;
	else if ((KEQ(k, kn, "headers") || KEQ(k, kn, "subs")) && s->p < s->end && *s->p == '{') {
		const char **raw = k[0] == 's' ? &m->subs : &m->headers;
		return (*raw = sraw(s)) ? 0 : -1;
	}
	if (sp)
		return sfield_str(s, sp);
	if (ip || np)
		return sfield_int(s, ip, np);
	return sskip(s, 0) ? 0 : -1;
}

int msg_out_scan(const void *data, size_t len, msg_out_t *m, char *strbuf, size_t strcap, char *err,
                 size_t errlen)
{
	memset(m, 0, sizeof *m);
	m->segments = 1;
	out_ctx_t c = {m, NULL};
	int64_t v;
	int rc = scan_object(data, len, strbuf, strcap, out_field, &c, &v, err, errlen);
	if (rc)
		return rc;
	if (!m->id || !m->campaign || !m->to) {
		snprintf(err, errlen, "outbox record lacks id, campaign or to");
		return TOCSIN_ERR_INVAL;
	}
	if (msg_channel_parse(c.channel, &m->channel)) {
		snprintf(err, errlen, "outbox record has an unknown channel");
		return TOCSIN_ERR_INVAL;
	}
	return TOCSIN_OK;
}

typedef struct status_ctx {
	msg_status_t *s;
	const char *channel, *state;
} status_ctx_t;

static int status_field(scan_t *s, const char *k, size_t kn, void *ctx)
{
	status_ctx_t *c = ctx;
	msg_status_t *st = c->s;
	const char **sp = NULL;
	if (KEQ(k, kn, "id"))
		sp = &st->id;
	else if (KEQ(k, kn, "campaign"))
		sp = &st->campaign;
	else if (KEQ(k, kn, "channel"))
		sp = &c->channel;
	else if (KEQ(k, kn, "to"))
		sp = &st->to;
	else if (KEQ(k, kn, "state"))
		sp = &c->state;
	else if (KEQ(k, kn, "vendor"))
		sp = &st->vendor;
	else if (KEQ(k, kn, "vendor_ref"))
		sp = &st->vendor_ref;
	else if (KEQ(k, kn, "code"))
		sp = &st->code;
	else if (KEQ(k, kn, "detail"))
		sp = &st->detail;
	else if (KEQ(k, kn, "latency_ms"))
		return sfield_int(s, &st->latency_ms, NULL);
	else if (KEQ(k, kn, "ts_ms"))
		return sfield_int(s, &st->ts_ms, NULL);
	else if (KEQ(k, kn, "attempt"))
		return sfield_int(s, NULL, &st->attempt);
	if (sp)
		return sfield_str(s, sp);
	return sskip(s, 0) ? 0 : -1;
}

int msg_status_scan(const void *data, size_t len, msg_status_t *st, char *strbuf, size_t strcap,
                    char *err, size_t errlen)
{
	memset(st, 0, sizeof *st);
	st->latency_ms = -1;
	status_ctx_t c = {st, NULL, NULL};
	int64_t v;
	int rc = scan_object(data, len, strbuf, strcap, status_field, &c, &v, err, errlen);
	if (rc)
		return rc;
	if (!st->id || !st->campaign) {
		snprintf(err, errlen, "status record lacks id or campaign");
		return TOCSIN_ERR_INVAL;
	}
	if (msg_state_parse(c.state, &st->state)) {
		snprintf(err, errlen, "status record has an unknown state");
		return TOCSIN_ERR_INVAL;
	}
	if (msg_channel_parse(c.channel, &st->channel)) {
		snprintf(err, errlen, "status record has an unknown channel");
		return TOCSIN_ERR_INVAL;
	}
	return TOCSIN_OK;
}
