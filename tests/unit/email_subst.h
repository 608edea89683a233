/* email_subst.h -- test-side vendor substitution (SendGrid keys one after another, Mailgun %recipient.x% in one pass) to check batched email against the inline render. */
#ifndef TOCSIN_TEST_EMAIL_SUBST_H
#define TOCSIN_TEST_EMAIL_SUBST_H
#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/msg.h"

/* A growable string for the tests (aborts on no memory). */
typedef struct es_str {
	char *p;
	size_t n, cap;
} es_str_t;

static void es_put(es_str_t *s, const char *p, size_t n)
{
	if (s->n + n + 1 > s->cap) {
		s->cap = (s->n + n + 1) * 2;
		s->p = realloc(s->p, s->cap);
		if (!s->p)
			abort();
	}
	if (n)
		memcpy(s->p + s->n, p, n);
	s->n += n;
	s->p[s->n] = 0;
}

/* SendGrid: for each member of subs (an object of strings, in its order) the
 * key "{{{tocsin:name}}}" replaced literally everywhere in the current text,
 * one key after another (as the emulator's sg_apply). Result in *out (reset). */
static void es_sendgrid(const char *src, size_t len, json_t *subs, es_str_t *out)
{
	out->n = 0;
	es_put(out, src, len);
	const char *k;
	json_t *v;
	json_object_foreach(subs, k, v)
	{
		char key[MSG_SUB_NAME_MAX + 32];
		snprintf(key, sizeof key, MSG_SUB_PREFIX "%s" MSG_SUB_SUFFIX, k);
		size_t kl = strlen(key);
		es_str_t t = {0};
		es_put(&t, "", 0);
		const char *p = out->p, *end = out->p + out->n, *q;
		while ((q = memmem(p, (size_t)(end - p), key, kl))) {
			es_put(&t, p, (size_t)(q - p));
			es_put(&t, json_string_value(v), json_string_length(v));
			p = q + kl;
		}
		es_put(&t, p, (size_t)(end - p));
		free(out->p);
		*out = t;
	}
}

/* Mailgun: the adapter's rewrite of each placeholder to %recipient.name%, then
 * one pass replacing %recipient.<name>% by vars[name] when it is a string (as
 * the emulator's mg_apply; a replaced value is not read again). */
static void es_mailgun(const char *src, size_t len, json_t *vars, es_str_t *out)
{
	es_str_t mg = {0};
	es_put(&mg, "", 0);
	const char *p = src, *end = src + len, *q;
	const size_t pl = strlen(MSG_SUB_PREFIX), sl = strlen(MSG_SUB_SUFFIX);
	while ((q = memmem(p, (size_t)(end - p), MSG_SUB_PREFIX, pl))) {
		const char *n = q + pl, *ne = n;
		while (ne < end && (isalnum((unsigned char)*ne) || *ne == '_'))
			ne++;
		if (ne == n || (size_t)(end - ne) < sl || memcmp(ne, MSG_SUB_SUFFIX, sl)) {
			es_put(&mg, p, (size_t)(n - p));
			p = n;
			continue;
		}
		es_put(&mg, p, (size_t)(q - p));
		es_put(&mg, "%recipient.", 11);
		es_put(&mg, n, (size_t)(ne - n));
		es_put(&mg, "%", 1);
		p = ne + sl;
	}
	es_put(&mg, p, (size_t)(end - p));
	out->n = 0;
	es_put(out, "", 0);
	p = mg.p;
	end = mg.p + mg.n;
	while ((q = memmem(p, (size_t)(end - p), "%recipient.", 11))) {
		const char *n = q + 11, *ne = memchr(n, '%', (size_t)(end - n));
		json_t *v = NULL;
		if (ne) {
			char name[128];
			size_t nl = (size_t)(ne - n) < sizeof name - 1 ? (size_t)(ne - n)
			                                               : sizeof name - 1;
			memcpy(name, n, nl);
			name[nl] = 0;
			v = json_object_get(vars, name);
		}
		if (!json_is_string(v)) {
			es_put(out, p, (size_t)(n - p));
			p = n;
			continue;
		}
		es_put(out, p, (size_t)(q - p));
		es_put(out, json_string_value(v), json_string_length(v));
		p = ne + 1;
	}
	es_put(out, p, (size_t)(end - p));
	free(mg.p);
}

#endif
