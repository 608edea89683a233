/* email.c -- email parts from one recipient record, HMAC-SHA256 unsubscribe tokens, RFC 8058 headers. */
#define OPENSSL_SUPPRESS_DEPRECATED /* SHA256_Init & co: plain structs, no allocation */
#include "templates/email.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "core/msg.h"

#define TOKEN_VERSION 1
#define MAC_LEN 32

struct email_unsub {
	SHA256_CTX inner; /* state after absorbing key ^ ipad */
	SHA256_CTX outer; /* state after absorbing key ^ opad */
	char *base;       /* base URL without a trailing slash, or NULL */
	size_t baselen;
};

/* ---- base64url without padding ---- */

static const char b64u[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static size_t b64u_len(size_t n) { return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0); }

static void b64u_enc(const unsigned char *in, size_t n, char *out)
{
	size_t i = 0, o = 0;
	for (; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[o++] = b64u[v >> 18];
		out[o++] = b64u[(v >> 12) & 63];
		out[o++] = b64u[(v >> 6) & 63];
		out[o++] = b64u[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;
		out[o++] = b64u[v >> 18];
		out[o++] = b64u[(v >> 12) & 63];
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		out[o++] = b64u[v >> 18];
		out[o++] = b64u[(v >> 12) & 63];
		out[o++] = b64u[(v >> 6) & 63];
	}
}

static int b64u_val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

/* Decode in[0..n) into out[0..cap); returns the decoded length or -1. Strict:
 * no padding, no stray bits. */
static long b64u_dec(const char *in, size_t n, unsigned char *out, size_t cap)
{
	if (n % 4 == 1)
		return -1;
	size_t need = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
	if (need > cap)
		return -1;
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0;
	for (size_t i = 0; i < n; i++) {
		int v = b64u_val((unsigned char)in[i]);
		if (v < 0)
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (acc != 0) /* non-canonical trailing bits */
		return -1;
	return (long)o;
}

/* ---- HMAC-SHA256 with precomputed pads ---- */

email_unsub_t *email_unsub_new(const void *key, size_t keylen, const char *base_url, char *err,
                               size_t errlen)
{
	if (!key || keylen < EMAIL_UNSUB_KEY_MIN) {
		snprintf(err, errlen, "unsubscribe key is %zu bytes, at least %d needed",
		         key ? keylen : 0, EMAIL_UNSUB_KEY_MIN);
		return NULL;
	}
	email_unsub_t *u = calloc(1, sizeof *u);
	if (!u) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	unsigned char k[64] = {0};
	if (keylen > 64)
		SHA256(key, keylen, k);
	else
		memcpy(k, key, keylen);
	unsigned char pad[64];
	for (int i = 0; i < 64; i++)
		pad[i] = k[i] ^ 0x36;
	SHA256_Init(&u->inner);
	SHA256_Update(&u->inner, pad, 64);
	for (int i = 0; i < 64; i++)
		pad[i] = k[i] ^ 0x5c;
	SHA256_Init(&u->outer);
	SHA256_Update(&u->outer, pad, 64);
	OPENSSL_cleanse(k, sizeof k);
	OPENSSL_cleanse(pad, sizeof pad);
	if (base_url && base_url[0]) {
		size_t bl = strlen(base_url);
		while (bl > 0 && base_url[bl - 1] == '/')
			bl--;
		u->base = strndup(base_url, bl);
		if (!u->base) {
			email_unsub_free(u);
			snprintf(err, errlen, "out of memory");
			return NULL;
		}
		u->baselen = bl;
	}
	return u;
}

email_unsub_t *email_unsub_from_cfg(const cfg_t *cfg, char *err, size_t errlen)
{
	const char *env = EMAIL_UNSUB_KEY_ENV_DEFAULT;
	json_t *em = cfg && cfg->root ? json_object_get(cfg->root, "email") : NULL;
	json_t *ke = em ? json_object_get(em, "unsubscribe_key_env") : NULL;
	if (ke) {
		if (!json_is_string(ke) || !json_string_value(ke)[0]) {
			snprintf(err, errlen,
			         "%s: email.unsubscribe_key_env must be a non-empty string",
			         cfg->path ? cfg->path : "config");
			return NULL;
		}
		env = json_string_value(ke);
	}
	const char *key = getenv(env);
	if (!key || !key[0]) {
		snprintf(err, errlen,
		         "unsubscribe key: environment variable %s is not set (config email.unsubscribe_key_env)",
		         env);
		return NULL;
	}
	if (strlen(key) < EMAIL_UNSUB_KEY_MIN) {
		snprintf(err, errlen, "unsubscribe key in %s is %zu bytes, at least %d needed", env,
		         strlen(key), EMAIL_UNSUB_KEY_MIN);
		return NULL;
	}
	if (cfg->public_url && cfg->public_url[0])
		return email_unsub_new(key, strlen(key), cfg->public_url, err, errlen);
	/* no public URL: links point at the local tracker (fine for a demo, not for real mail) */
	char base[512];
	snprintf(base, sizeof base, "http://%s",
	         cfg->track_listen ? cfg->track_listen : "127.0.0.1:8026");
	log_warn("event=unsub_base_default base=%s reason=\"tracker.public_url is not set\"", base);
	return email_unsub_new(key, strlen(key), base, err, errlen);
}

void email_unsub_free(email_unsub_t *u)
{
	if (!u)
		return;
	free(u->base);
	OPENSSL_cleanse(u, sizeof *u);
	free(u);
}

static void hmac(const email_unsub_t *u, const unsigned char *p, size_t n, unsigned char mac[MAC_LEN])
{
	SHA256_CTX c = u->inner;
	unsigned char ih[MAC_LEN];
	SHA256_Update(&c, p, n);
	SHA256_Final(ih, &c);
	c = u->outer;
	SHA256_Update(&c, ih, sizeof ih);
	SHA256_Final(mac, &c);
}

#define RAW_MAX (2 + EMAIL_CAMPAIGN_MAX + EMAIL_ADDR_MAX + MAC_LEN)

int email_unsub_token(const email_unsub_t *u, const char *campaign, const char *addr,
                      size_t addrlen, char *out, size_t cap, size_t *outlen)
{
	if (!u || !campaign || !addr || !out)
		return TOCSIN_ERR_INVAL;
	size_t cl = strlen(campaign);
	if (cl == 0 || cl > EMAIL_CAMPAIGN_MAX || addrlen == 0 || addrlen > EMAIL_ADDR_MAX)
		return TOCSIN_ERR_INVAL;
	unsigned char raw[RAW_MAX];
	size_t n = 0;
	raw[n++] = TOKEN_VERSION;
	raw[n++] = (unsigned char)cl;
	memcpy(raw + n, campaign, cl);
	n += cl;
	memcpy(raw + n, addr, addrlen);
	n += addrlen;
	hmac(u, raw, n, raw + n);
	n += MAC_LEN;
	size_t tl = b64u_len(n);
	if (tl + 1 > cap)
		return TOCSIN_ERR_TOOBIG;
	b64u_enc(raw, n, out);
	out[tl] = 0;
	if (outlen)
		*outlen = tl;
	return 0;
}

int email_unsub_url(const email_unsub_t *u, const char *campaign, const char *addr, size_t addrlen,
                    char *out, size_t cap, size_t *outlen)
{
	if (!u || !out)
		return TOCSIN_ERR_INVAL;
	if (!u->base)
		return TOCSIN_ERR_CONFIG;
	if (u->baselen + 3 + 1 > cap)
		return TOCSIN_ERR_TOOBIG;
	memcpy(out, u->base, u->baselen);
	memcpy(out + u->baselen, "/u/", 3);
	size_t tl;
	int rc = email_unsub_token(u, campaign, addr, addrlen, out + u->baselen + 3,
	                           cap - u->baselen - 3, &tl);
	if (rc)
		return rc;
	if (outlen)
		*outlen = u->baselen + 3 + tl;
	return 0;
}

int email_unsub_verify(const email_unsub_t *u, const char *token, size_t len, char *campaign,
                       size_t ccap, char *addr, size_t acap)
{
	if (!u || !token || !campaign || !addr)
		return TOCSIN_ERR_INVAL;
	if (len > b64u_len(RAW_MAX))
		return TOCSIN_ERR_INVAL;
	unsigned char raw[RAW_MAX];
	long n = b64u_dec(token, len, raw, sizeof raw);
	if (n < 2 + 1 + 1 + MAC_LEN || raw[0] != TOKEN_VERSION)
		return TOCSIN_ERR_INVAL;
	size_t cl = raw[1];
	size_t body = (size_t)n - MAC_LEN;
	if (cl == 0 || 2 + cl >= body)
		return TOCSIN_ERR_INVAL;
	unsigned char mac[MAC_LEN];
	hmac(u, raw, body, mac);
	if (CRYPTO_memcmp(mac, raw + body, MAC_LEN) != 0)
		return TOCSIN_ERR_INVAL;
	size_t al = body - 2 - cl;
	if (cl + 1 > ccap || al + 1 > acap)
		return TOCSIN_ERR_TOOBIG;
	memcpy(campaign, raw + 2, cl);
	campaign[cl] = 0;
	memcpy(addr, raw + 2 + cl, al);
	addr[al] = 0;
	return 0;
}

int email_unsub_headers(const char *url, size_t urllen, char *out, size_t cap, size_t *outlen)
{
	static const char a[] = "{\"List-Unsubscribe\":\"<";
	static const char b[] = ">\",\"List-Unsubscribe-Post\":\"" EMAIL_LU_POST "\"}";
	if (!url || !out)
		return TOCSIN_ERR_INVAL;
	/* the URL is ours (base URL + base64url), but never let it break the JSON or the header */
	for (size_t i = 0; i < urllen; i++) {
		unsigned char c = (unsigned char)url[i];
		if (c < 0x21 || c == '"' || c == '\\' || c == '<' || c == '>' || c >= 0x7f)
			return TOCSIN_ERR_INVAL;
	}
	size_t n = sizeof a - 1 + urllen + sizeof b - 1;
	if (n + 1 > cap)
		return TOCSIN_ERR_TOOBIG;
	memcpy(out, a, sizeof a - 1);
	memcpy(out + sizeof a - 1, url, urllen);
	memcpy(out + sizeof a - 1 + urllen, b, sizeof b);
	if (outlen)
		*outlen = n;
	return 0;
}

/* ---- email templates ---- */

/* One distinct slot of the three parts (tmpl_slots): what one placeholder stands for. */
typedef struct eslot {
	uint8_t part;  /* 0 subject, 1 text, 2 html: where it first appears */
	uint32_t slot; /* its slot index in that part */
	int unsub;     /* the unsubscribe URL itself (every verbatim tag of it, any part) */
	char name[MSG_SUB_NAME_MAX + 1];
	char ph[MSG_SUB_NAME_MAX + sizeof MSG_SUB_PREFIX + sizeof MSG_SUB_SUFFIX]; /* its placeholder */
	size_t phlen;
} eslot_t;

struct email_tmpl {
	tmpl_t *subject, *text, *html;
	size_t nfields; /* audience fields as given to email_compile */
	size_t unsub;   /* index of unsubscribe_url among the compiled fields */
	int subs_ok;    /* the placeholder form is exact for this template (email_render_subs) */
	int has_unsub_slot; /* some eslot has unsub set */
	eslot_t *slots;     /* distinct slots in order of first appearance (subject, text, html) */
	size_t nslots;
	uint32_t *map[3]; /* per part: its slot i -> index into slots */
	char *shared[3];  /* per part: the output with every slot a placeholder (NULL: no part) */
	size_t shared_len[3];
};

static const tmpl_t *part_of(const email_tmpl_t *e, int k)
{
	return k == 0 ? e->subject : k == 1 ? e->text : e->html;
}

/* A placeholder name for field name f: [A-Za-z0-9_], never tocsin_id or h_*
 * (Mailgun's recipient variables of our own), unique among e's slots. */
static void slot_name(const email_tmpl_t *e, const char *prefix, const char *f, char *out)
{
	char base[MSG_SUB_NAME_MAX + 1];
	size_t n = 0, pl = strlen(prefix);
	memcpy(base, prefix, pl);
	n = pl;
	for (; f && *f && n < 44; f++)
		base[n++] = (isalnum((unsigned char)*f) && (unsigned char)*f < 0x80) ? *f : '_';
	base[n] = 0;
	if (n == 0 || !strncmp(base, "h_", 2) || !strcmp(base, "tocsin_id")) {
		memmove(base + 2, base, n + 1);
		memcpy(base, "v_", 2);
	}
	for (unsigned k = 1;; k++) {
		if (k == 1)
			snprintf(out, MSG_SUB_NAME_MAX + 1, "%s", base);
		else
			snprintf(out, MSG_SUB_NAME_MAX + 1, "%.50s_%u", base, k);
		int taken = !strcmp(out, EMAIL_UNSUB_FIELD);
		for (size_t i = 0; i < e->nslots && !taken; i++)
			taken = !strcmp(e->slots[i].name, out);
		if (!taken)
			return;
	}
}

/* The distinct slots, their placeholders and the shared parts. 0 or -1 (no memory). */
static int plan_subs(email_tmpl_t *e)
{
	size_t total = 0;
	for (int k = 0; k < 3; k++)
		total += tmpl_slots(part_of(e, k));
	e->slots = calloc(total ? total : 1, sizeof *e->slots);
	if (!e->slots)
		return -1;
	for (int k = 0; k < 3; k++) {
		const tmpl_t *t = part_of(e, k);
		if (!t)
			continue;
		size_t ns = tmpl_slots(t);
		e->map[k] = calloc(ns ? ns : 1, sizeof *e->map[k]);
		if (!e->map[k])
			return -1;
		for (size_t i = 0; i < ns; i++) {
			int sec = 0, f = tmpl_slot_field(t, i, &sec);
			int unsub = !sec && f == (int)e->unsub && tmpl_slot_verbatim(t, i);
			size_t d = 0;
			for (; d < e->nslots; d++) {
				const eslot_t *o = &e->slots[d];
				if (unsub ? o->unsub
				          : !o->unsub &&
				                tmpl_slot_same(part_of(e, o->part), o->slot, t, i))
					break;
			}
			if (d == e->nslots) {
				eslot_t *o = &e->slots[e->nslots];
				o->part = (uint8_t)k;
				o->slot = (uint32_t)i;
				o->unsub = unsub;
				if (unsub)
					snprintf(o->name, sizeof o->name, "%s", EMAIL_UNSUB_FIELD);
				else
					slot_name(e, sec ? "sec_" : "",
					          tmpl_field_name(t, (size_t)f), o->name);
				o->phlen = (size_t)snprintf(o->ph, sizeof o->ph,
				                            MSG_SUB_PREFIX "%s" MSG_SUB_SUFFIX,
				                            o->name);
				e->nslots++;
				e->has_unsub_slot |= unsub;
			}
			e->map[k][i] = (uint32_t)d;
		}
	}
	const char **pv = calloc(total ? total : 1, sizeof *pv);
	size_t *pl = calloc(total ? total : 1, sizeof *pl);
	int rc = pv && pl ? 0 : -1;
	for (int k = 0; k < 3 && !rc; k++) {
		const tmpl_t *t = part_of(e, k);
		if (!t)
			continue;
		size_t ns = tmpl_slots(t), cap = 1;
		for (size_t i = 0; i < ns; i++) {
			pv[i] = e->slots[e->map[k][i]].ph;
			pl[i] = e->slots[e->map[k][i]].phlen;
			cap += pl[i];
		}
		/* top-level literal text is at most the template source: grow until it fits */
		for (cap += 4096; !rc; cap *= 2) {
			free(e->shared[k]);
			if (!(e->shared[k] = malloc(cap))) {
				rc = -1;
				break;
			}
			int r = tmpl_render_with(t, pv, pl, e->shared[k], cap, &e->shared_len[k]);
			if (r == 0)
				break;
			if (r != TOCSIN_ERR_TOOBIG || cap > 4 * (size_t)TMPL_MAX_SRC)
				rc = -1;
		}
		/* Mailgun would read %recipient.x% in our own literal text: keep such templates inline */
		if (!rc && memmem(e->shared[k], e->shared_len[k], "%recipient", 10))
			e->subs_ok = 0;
	}
	free(pv);
	free(pl);
	return rc;
}

static tmpl_t *part(const char *name, const char *src, size_t len, tmpl_mode_t mode,
                    const char *const *fields, size_t nf, unsigned flags, char *err, size_t errlen)
{
	char e[384];
	tmpl_t *t = tmpl_compile_ex(src, len, mode, fields, nf, flags, e, sizeof e);
	if (!t)
		snprintf(err, errlen, "%s:%s", name, e);
	return t;
}

email_tmpl_t *email_compile(const char *subject, size_t slen, const char *text, size_t tlen,
                            const char *html, size_t hlen, const char *const *fields,
                            size_t nfields, unsigned flags, char *err, size_t errlen)
{
	if (err && errlen)
		err[0] = 0;
	if (nfields >= TMPL_MAX_FIELDS) {
		snprintf(err, errlen, "%zu fields, at most %d allowed", nfields, TMPL_MAX_FIELDS - 1);
		return NULL;
	}
	if (!subject || slen == 0) {
		snprintf(err, errlen, "subject: the email has no subject");
		return NULL;
	}
	const char *nl = memchr(subject, '\n', slen);
	if (!nl)
		nl = memchr(subject, '\r', slen);
	if (nl) {
		snprintf(err, errlen, "subject: a line break at byte %zu; a subject is one line",
		         (size_t)(nl - subject) + 1);
		return NULL;
	}
	if (!text && !html) {
		snprintf(err, errlen, "body: the email has neither a text nor an HTML part");
		return NULL;
	}
	const char *f[TMPL_MAX_FIELDS];
	size_t nf = nfields, unsub = nfields;
	for (size_t i = 0; i < nfields; i++) {
		f[i] = fields[i];
		if (fields[i] && strcmp(fields[i], EMAIL_UNSUB_FIELD) == 0)
			unsub = i;
	}
	if (unsub == nfields)
		f[nf++] = EMAIL_UNSUB_FIELD;
	email_tmpl_t *e = calloc(1, sizeof *e);
	if (!e) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	e->nfields = nfields;
	e->unsub = unsub;
	e->subject = part("subject", subject, slen, TMPL_TEXT, f, nf, flags, err, errlen);
	if (!e->subject)
		goto fail;
	if (text) {
		e->text = part("text", text, tlen, TMPL_TEXT, f, nf, flags, err, errlen);
		if (!e->text)
			goto fail;
		if (!tmpl_prints_field(e->text, unsub)) {
			snprintf(err, errlen,
			         "text: no unsubscribe link: the text part must contain {{" EMAIL_UNSUB_FIELD
			         "}}");
			goto fail;
		}
	}
	if (html) {
		e->html = part("html", html, hlen, TMPL_HTML, f, nf, flags, err, errlen);
		if (!e->html)
			goto fail;
		if (!tmpl_prints_field(e->html, unsub)) {
			snprintf(err, errlen,
			         "html: no unsubscribe link: the HTML part must contain {{" EMAIL_UNSUB_FIELD
			         "}}");
			goto fail;
		}
	}
	e->subs_ok = 1;
	if (plan_subs(e)) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	return e;
fail:
	email_free(e);
	return NULL;
}

void email_free(email_tmpl_t *e)
{
	if (!e)
		return;
	tmpl_free(e->subject);
	tmpl_free(e->text);
	tmpl_free(e->html);
	for (int k = 0; k < 3; k++) {
		free(e->map[k]);
		free(e->shared[k]);
	}
	free(e->slots);
	free(e);
}

static int email_toobig(tmpl_why_t *why)
{
	if (why)
		snprintf(why->reason, sizeof why->reason, "rendered email too big");
	return TOCSIN_ERR_TOOBIG;
}

static int render_part(const tmpl_t *t, const char *const *v, const size_t *l, char *buf,
                       size_t cap, size_t *used, const char **p, size_t *plen, tmpl_why_t *why)
{
	size_t n;
	int rc = tmpl_render(t, v, l, buf + *used, cap - *used, &n, why);
	if (rc)
		return rc;
	*p = buf + *used;
	*plen = n;
	*used += n + 1;
	return 0;
}

/* the URL must read the same in every part (no HTML escape) and inside JSON */
static int url_plain(const char *u, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strchr("&<>\"'\\{}%", u[i]) || (unsigned char)u[i] < 0x20)
			return 0;
	return 1;
}

/* The batched form for one recipient (v/l: every field, the unsubscribe URL
 * included): each distinct slot rendered into buf after `used`, then
 * out->subs = {"name":"value",...} and the shared parts. Returns
 * EMAIL_INLINE_NONE when done, else why the caller must render inline (which
 * also decides any rejection, with the inline render's own reason). */
static int render_subs(const email_tmpl_t *e, const char *const *v, const size_t *l, char *buf,
                       size_t cap, size_t used, email_parts_t *out)
{
	if (!e->subs_ok)
		return EMAIL_INLINE_TEMPLATE;
	if (e->has_unsub_slot && !url_plain(out->unsub_url, out->unsub_url_len))
		return EMAIL_INLINE_URL;
	/* pass 1: the values, each as a 4-byte length and its bytes */
	size_t vstart = used;
	for (size_t d = 0; d < e->nslots; d++) {
		const eslot_t *o = &e->slots[d];
		if (cap - used < 5)
			return EMAIL_INLINE_SIZE;
		char *p = buf + used + 4;
		size_t n;
		if (o->unsub) {
			n = out->unsub_url_len;
			if (n + 1 > cap - used - 4)
				return EMAIL_INLINE_SIZE;
			memcpy(p, out->unsub_url, n);
		} else if (tmpl_render_slot(part_of(e, o->part), o->slot, v, l, p, cap - used - 4,
		                            &n, NULL))
			return EMAIL_INLINE_SIZE; /* too big here, or a rejection the inline render words */
		/* a value must not make the vendor see a placeholder ('{': SendGrid replaces
		 * keys one after another) or a recipient variable (Mailgun) */
		if (memchr(p, '{', n) || memmem(p, n, "%recipient", 10))
			return EMAIL_INLINE_VALUE;
		if (o->part == 0 && (memchr(p, '\n', n) || memchr(p, '\r', n)))
			return EMAIL_INLINE_VALUE; /* the inline render rejects it */
		uint32_t n32 = (uint32_t)n;
		memcpy(buf + used, &n32, 4);
		used += 4 + n;
	}
	/* pass 2: the JSON object, written by buf_json_str into the rest of buf (a
	 * buf_t over memory it never grows: max < cap), capped as SendGrid counts
	 * substitutions (keys "{{{tocsin:name}}}"); JSON is never shorter than what
	 * it decodes to */
	if (cap - used < 3)
		return EMAIL_INLINE_SIZE;
	buf_t jb = {.p = buf + used, .len = 0, .cap = cap - used, .max = cap - used - 1};
	const size_t keyx = e->nslots * (sizeof MSG_SUB_PREFIX + sizeof MSG_SUB_SUFFIX - 2);
	const char *p = buf + vstart;
	int rc = buf_putc(&jb, '{');
	for (size_t d = 0; d < e->nslots && !rc; d++) {
		uint32_t n32;
		memcpy(&n32, p, 4);
		rc = d ? buf_putc(&jb, ',') : 0;
		rc = rc ? rc : buf_json_str(&jb, e->slots[d].name, strlen(e->slots[d].name));
		rc = rc ? rc : buf_putc(&jb, ':');
		rc = rc ? rc : buf_json_str(&jb, p + 4, n32);
		if (!rc && jb.len + 1 + keyx >= EMAIL_SUBS_MAX)
			rc = TOCSIN_ERR_TOOBIG;
		p += 4 + n32;
	}
	rc = rc ? rc : buf_putc(&jb, '}');
	if (rc)
		return EMAIL_INLINE_SIZE;
	char *j = jb.p;
	out->subs = j;
	out->subs_len = jb.len;
	out->subject = e->shared[0];
	out->subject_len = e->shared_len[0];
	out->text = e->shared[1];
	out->text_len = e->shared_len[1];
	out->html = e->shared[2];
	out->html_len = e->shared_len[2];
	return EMAIL_INLINE_NONE;
}

/* email_render() (subs == 0) or email_render_subs() (subs == 1) */
static int render_email(const email_tmpl_t *e, const email_unsub_t *u, const char *campaign,
                        const char *addr, size_t addrlen, const char *const *vals, const size_t *lens,
                        char *buf, size_t cap, email_parts_t *out, tmpl_why_t *why, int subs)
{
	if (why) {
		why->field = -1;
		why->reason[0] = 0;
	}
	if (!e || !u || !buf || !out || (e->nfields && (!vals || !lens)))
		return TOCSIN_ERR_INVAL;
	memset(out, 0, sizeof *out);
	size_t used = 0, n;
	int rc = email_unsub_url(u, campaign, addr, addrlen, buf, cap, &n);
	if (rc) {
		if (why)
			snprintf(why->reason, sizeof why->reason, "%s",
			         rc == TOCSIN_ERR_TOOBIG ? "rendered email too big"
			         : rc == TOCSIN_ERR_CONFIG
			             ? "no public URL for unsubscribe links"
			             : "address or campaign unfit for an unsubscribe link");
		return rc;
	}
	out->unsub_url = buf;
	out->unsub_url_len = n;
	used = n + 1;
	rc = email_unsub_headers(out->unsub_url, n, buf + used, cap - used, &n);
	if (rc) {
		if (why)
			snprintf(why->reason, sizeof why->reason, "rendered email too big");
		return rc;
	}
	out->headers = buf + used;
	out->headers_len = n;
	used += n + 1;

	const char *v[TMPL_MAX_FIELDS];
	size_t l[TMPL_MAX_FIELDS];
	for (size_t i = 0; i < e->nfields; i++) {
		v[i] = vals[i];
		l[i] = lens[i];
	}
	v[e->unsub] = out->unsub_url;
	l[e->unsub] = out->unsub_url_len;
	out->inline_why = subs ? render_subs(e, v, l, buf, cap, used, out) : EMAIL_INLINE_ASKED;
	if (out->inline_why == EMAIL_INLINE_NONE)
		return 0;

	if (used >= cap)
		return email_toobig(why);
	rc = render_part(e->subject, v, l, buf, cap, &used, &out->subject, &out->subject_len, why);
	if (rc)
		return rc;
	if (memchr(out->subject, '\n', out->subject_len) ||
	    memchr(out->subject, '\r', out->subject_len)) {
		if (why)
			snprintf(why->reason, sizeof why->reason, "line break in subject");
		return TOCSIN_ERR_INVAL;
	}
	if (e->text) {
		if (used >= cap)
			return email_toobig(why);
		rc = render_part(e->text, v, l, buf, cap, &used, &out->text, &out->text_len, why);
		if (rc)
			return rc;
	}
	if (e->html) {
		if (used >= cap)
			return email_toobig(why);
		rc = render_part(e->html, v, l, buf, cap, &used, &out->html, &out->html_len, why);
		if (rc)
			return rc;
	}
	return 0;
}

int email_render(const email_tmpl_t *e, const email_unsub_t *u, const char *campaign,
                 const char *addr, size_t addrlen, const char *const *vals, const size_t *lens,
                 char *buf, size_t cap, email_parts_t *out, tmpl_why_t *why)
{
	return render_email(e, u, campaign, addr, addrlen, vals, lens, buf, cap, out, why, 0);
}

int email_render_subs(const email_tmpl_t *e, const email_unsub_t *u, const char *campaign,
                      const char *addr, size_t addrlen, const char *const *vals, const size_t *lens,
                      char *buf, size_t cap, email_parts_t *out, tmpl_why_t *why)
{
	return render_email(e, u, campaign, addr, addrlen, vals, lens, buf, cap, out, why, 1);
}

int email_subs_possible(const email_tmpl_t *e) { return e && e->subs_ok; }

const char *email_inline_name(int why)
{
	switch (why) {
	case EMAIL_INLINE_NONE: return "batched";
	case EMAIL_INLINE_ASKED: return "inline";
	case EMAIL_INLINE_TEMPLATE: return "template spells %recipient";
	case EMAIL_INLINE_URL: return "unsubscribe URL not plain";
	case EMAIL_INLINE_VALUE: return "value holds { or %recipient";
	case EMAIL_INLINE_SIZE: return "substitutions over 10,000 bytes";
	default: return "?";
	}
}

static void dg_part(SHA256_CTX *c, const char *p, size_t n)
{
	unsigned char h[9] = {p != NULL};
	for (int i = 0; i < 8; i++)
		h[1 + i] = (unsigned char)((uint64_t)(p ? n : 0) >> (56 - 8 * i));
	SHA256_Update(c, h, p ? 9 : 1);
	if (p && n)
		SHA256_Update(c, p, n);
}

void email_digest(const char *subject, size_t slen, const char *text, size_t tlen, const char *html,
                  size_t hlen, char hex[EMAIL_DIGEST_HEX])
{
	static const char hx[] = "0123456789abcdef";
	SHA256_CTX c;
	unsigned char md[SHA256_DIGEST_LENGTH];
	SHA256_Init(&c);
	dg_part(&c, subject, slen);
	dg_part(&c, text, tlen);
	dg_part(&c, html, hlen);
	SHA256_Final(md, &c);
	for (int i = 0; i < SHA256_DIGEST_LENGTH; i++) {
		hex[2 * i] = hx[md[i] >> 4];
		hex[2 * i + 1] = hx[md[i] & 15];
	}
	hex[2 * SHA256_DIGEST_LENGTH] = 0;
}
