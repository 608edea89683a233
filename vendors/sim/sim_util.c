/* sim_util.c -- what the emulated APIs share: request headers, references, id counting, senders, webhook URLs, email checks. */
#include "vendors/sim/sim_int.h"

#include "core/clock.h"
#include "core/err.h"
#include "core/hash.h"
#include "core/log.h"
#include "templates/email.h"
#include "vendors/vnd_int.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

const char *sim_hdr(sim_req_t *rq, const char *name)
{
	return MHD_lookup_connection_value(rq->con, MHD_HEADER_KIND, name);
}

void sim_ref(sim_t *s, sim_vendor_t *sv, const char *prefix, char *out, size_t outlen)
{
	uint64_t n = atomic_fetch_add(&s->seq, 1);
	uint64_t a = hash64(&n, sizeof n, (uint64_t)(uintptr_t)sv), b = hash64(&n, sizeof n, 77);
	snprintf(out, outlen, "%s%016llx%016llx", prefix, (unsigned long long)a, (unsigned long long)b);
}

/* The id a message is counted by: ours when the request carries it, else
 * "to:<address>#<hash of the content>" (the same person getting the same
 * content twice is the duplicate that matters). */
void sim_count_id(sim_vendor_t *sv, const char *id, const char *to, const char *content)
{
	pthread_mutex_lock(&sv->fmu);
	int lose = sv->f.lose > 0 ? sv->f.lose-- : 0;
	pthread_mutex_unlock(&sv->fmu);
	if (lose) /* the "lose" fault: accepted, then gone (tocsin drill proves it notices) */
		return;
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
int sim_sender_ok(sim_vendor_t *sv, const char *from, const char *service)
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

/* the webhook base for vendor sv: the configured receipts URL, else {public_url}/webhooks/{name}/{leaf} */
const char *sim_hook_url(sim_t *s, sim_vendor_t *sv, const sim_fault_t *f, const char *leaf,
                         char *out, size_t outlen)
{
	if (f->receipt_url[0])
		return f->receipt_url;
	if (!s->c->public_url || !*s->c->public_url)
		return NULL;
	snprintf(out, outlen, "%.*s/webhooks/%s/%s", (int)vnd_base_len(s->c->public_url),
	         s->c->public_url, sv->v->name, leaf);
	return out;
}

static int b64url_val(int c)
{
	return c >= 'A' && c <= 'Z'   ? c - 'A'
	       : c >= 'a' && c <= 'z' ? c - 'a' + 26
	       : c >= '0' && c <= '9' ? c - '0' + 52
	       : c == '-'             ? 62
	       : c == '_'             ? 63
	                              : -1;
}

const char *sim_memfind(const char *h, size_t hl, const char *n, size_t nl)
{
	if (!nl)
		return h;
	const char *p = h, *end = h + hl;
	while ((size_t)(end - p) >= nl && (p = memchr(p, n[0], (size_t)(end - p) - nl + 1))) {
		if (!memcmp(p, n, nl))
			return p;
		p++;
	}
	return NULL;
}

/* Is the unsubscribe link of one accepted email intact? lu = its
 * List-Unsubscribe value ("<url>") after substitution, body[0..nbody) its
 * text/html after substitution. Counted in the vendor's stats:
 * unsub_checked (a List-Unsubscribe was there), unsub_ok (its URL appears in
 * every body part and its /u/<token> decodes to bytes naming this recipient),
 * unreplaced (a placeholder of ours or Mailgun's survived substitution). */
void sim_email_check(sim_vendor_t *sv, const char *to, const char *lu, const buf_t *body,
                     size_t nbody, int applied)
{
	if (applied)
		atomic_fetch_add(&sv->subs_applied, 1);
	int left = 0;
	for (size_t i = 0; i < nbody; i++)
		left |= sim_memfind(body[i].p, body[i].len, "{{{tocsin:", 10) != NULL ||
		        sim_memfind(body[i].p, body[i].len, "%recipient.", 11) != NULL;
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
		if (!sim_memfind(body[i].p, body[i].len, url, ul))
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

void sim_digests_init(sim_digests_t *d)
{
	memset(d, 0, sizeof *d);
	pthread_mutex_init(&d->mu, NULL);
}

void sim_digests_clear(sim_digests_t *d)
{
	for (size_t i = 0; i < d->cap; i++)
		free(d->t[i].to);
	free(d->t);
	d->t = NULL;
	d->cap = d->n = 0;
	d->repeats = d->dropped = 0;
}

void sim_digests_free(sim_digests_t *d)
{
	sim_digests_clear(d);
	pthread_mutex_destroy(&d->mu);
}

/* the slot of `to` in t[0..cap) (cap a power of two): its entry or a free one */
static sim_dg_t *dg_slot(sim_dg_t *t, size_t cap, const char *to)
{
	size_t i = (size_t)hash64(to, strlen(to), 17) & (cap - 1);
	while (t[i].to && strcmp(t[i].to, to))
		i = (i + 1) & (cap - 1);
	return &t[i];
}

void sim_email_digest(sim_vendor_t *sv, const sim_fault_t *f, const char *to, const char *subj,
                      size_t sl, const char *text, size_t tl, const char *html, size_t hl)
{
	if (!f->email_digests || !to)
		return;
	char hex[EMAIL_DIGEST_HEX];
	email_digest(subj ? subj : "", subj ? sl : 0, text, tl, html, hl, hex);
	sim_digests_t *d = &sv->dg;
	pthread_mutex_lock(&d->mu);
	if ((d->n + 1) * 2 > d->cap && d->n < SIM_DIGESTS_MAX) { /* grow: half full at most */
		size_t nc = d->cap ? d->cap * 2 : 1024;
		sim_dg_t *t = calloc(nc, sizeof *t);
		if (t) {
			for (size_t i = 0; i < d->cap; i++)
				if (d->t[i].to)
					*dg_slot(t, nc, d->t[i].to) = d->t[i];
			free(d->t);
			d->t = t;
			d->cap = nc;
		}
	}
	sim_dg_t *e = d->cap ? dg_slot(d->t, d->cap, to) : NULL;
	if (e && e->to) {
		e->n++;
		d->repeats++;
		memcpy(e->hex, hex, sizeof hex); /* the latest message */
	} else if (e && d->n < SIM_DIGESTS_MAX && (d->n + 1) * 2 <= d->cap && (e->to = strdup(to))) {
		memcpy(e->hex, hex, sizeof hex);
		e->n = 1;
		d->n++;
	} else
		d->dropped++;
	pthread_mutex_unlock(&d->mu);
}

void sim_digests_json(sim_digests_t *d, buf_t *b)
{
	pthread_mutex_lock(&d->mu);
	buf_puts(b, "{\"recipients\":{");
	int first = 1;
	for (size_t i = 0; i < d->cap; i++) {
		if (!d->t[i].to)
			continue;
		if (!first)
			buf_putc(b, ',');
		first = 0;
		buf_json_str(b, d->t[i].to, strlen(d->t[i].to));
		buf_putc(b, ':');
		buf_json_str(b, d->t[i].hex, strlen(d->t[i].hex));
	}
	buf_printf(b, "},\"kept\":%zu,\"repeats\":%llu,\"dropped\":%llu}", d->n,
	           (unsigned long long)d->repeats, (unsigned long long)d->dropped);
	pthread_mutex_unlock(&d->mu);
}
