/* penc.c -- the outbox record writer of the hot path: byte for byte msg_out_encode() for SMS, with the per-campaign parts escaped once. */
#include "producer/penc.h"
#include "core/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct penc {
	buf_t head; /* {"v":1,"id":" */
	buf_t mid;  /* ","campaign":"<c>","channel":"sms","to": */
	buf_t tail; /* ,"sender":"<s>","body": */
	char prio[32];
};

static size_t put_i64(char *d, int64_t v)
{
	char tmp[24];
	char *e = tmp + sizeof tmp, *s = e;
	uint64_t x = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
	do {
		*--s = (char)('0' + x % 10);
		x /= 10;
	} while (x);
	if (v < 0)
		*--s = '-';
	memcpy(d, s, (size_t)(e - s));
	return (size_t)(e - s);
}

penc_t *penc_new(const char *campaign, const char *sender, int priority, char *err, size_t errlen)
{
	penc_t *e = calloc(1, sizeof *e);
	if (!e) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	buf_init(&e->head, 64);
	buf_init(&e->mid, 4096);
	buf_init(&e->tail, 4096);
	int rc = buf_puts(&e->head, "{\"v\":1,\"id\":");
	rc = rc ? rc : buf_puts(&e->mid, ",\"campaign\":");
	rc = rc ? rc : buf_json_str(&e->mid, campaign, strlen(campaign));
	rc = rc ? rc : buf_puts(&e->mid, ",\"channel\":\"sms\",\"to\":");
	rc = rc ? rc : buf_puts(&e->tail, ",\"sender\":");
	rc = rc ? rc : buf_json_str(&e->tail, sender, strlen(sender));
	rc = rc ? rc : buf_puts(&e->tail, ",\"body\":");
	if (rc) {
		snprintf(err, errlen, "campaign id or sender too long");
		penc_free(e);
		return NULL;
	}
	snprintf(e->prio, sizeof e->prio, "%d", priority);
	return e;
}

void penc_free(penc_t *e)
{
	if (!e)
		return;
	buf_free(&e->head);
	buf_free(&e->mid);
	buf_free(&e->tail);
	free(e);
}

int penc_sms(const penc_t *e, buf_t *b, const char *id, const char *to, size_t tolen,
             const char *body, size_t bodylen, const char *enc, int segments, int64_t created_ms,
             int64_t expires_ms, int attempt)
{
	size_t idl = strlen(id), encl = strlen(enc);
	size_t need = e->head.len + e->mid.len + e->tail.len + 6 * (idl + tolen + bodylen + encl) +
	              8 + 200 + strlen(e->prio);
	int rc = buf_reserve(b, need);
	if (rc)
		return rc;
	char *d = b->p + b->len;
	memcpy(d, e->head.p, e->head.len);
	d += e->head.len;
	d += buf_json_esc(d, id, idl);
	memcpy(d, e->mid.p, e->mid.len);
	d += e->mid.len;
	d += buf_json_esc(d, to, tolen);
	memcpy(d, e->tail.p, e->tail.len);
	d += e->tail.len;
	d += buf_json_esc(d, body, bodylen);
	memcpy(d, ",\"enc\":", 7);
	d += 7;
	d += buf_json_esc(d, enc, encl);
	memcpy(d, ",\"segments\":", 12);
	d += 12;
	d += put_i64(d, segments);
	memcpy(d, ",\"priority\":", 12);
	d += 12;
	size_t pl = strlen(e->prio);
	memcpy(d, e->prio, pl);
	d += pl;
	memcpy(d, ",\"created_ms\":", 14);
	d += 14;
	d += put_i64(d, created_ms);
	memcpy(d, ",\"expires_ms\":", 14);
	d += 14;
	d += put_i64(d, expires_ms);
	memcpy(d, ",\"attempt\":", 11);
	d += 11;
	d += put_i64(d, attempt);
	memcpy(d, ",\"not_before_ms\":0}", 19);
	d += 19;
	b->len = (size_t)(d - b->p);
	b->p[b->len] = 0;
	return 0;
}
