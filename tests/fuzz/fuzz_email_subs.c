/* fuzz_email_subs.c -- libFuzzer target: batched email (shared parts + substitutions) against the inline render, through SendGrid's and Mailgun's substitution. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "templates/email.h"
#include "tests/unit/email_subst.h"

#define NF 3
static const char *const F[NF] = {"first_name", "city", "bio"};

static void check(int cond)
{
	if (!cond)
		abort();
}

/* next NUL-separated piece of [*p, end) */
static const char *piece(const char **p, const char *end, size_t *len)
{
	const char *s = *p, *z = s < end ? memchr(s, 0, (size_t)(end - s)) : NULL;
	*len = z ? (size_t)(z - s) : (size_t)(end - s);
	*p = z ? z + 1 : end;
	return s;
}

/* Input: byte 0 = options; then subject, text, html and NF values separated by NULs.
 * When the email compiles and renders, the batched form through either vendor's
 * substitution must be byte for byte the inline render, and a rejection the same. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	uint8_t opt = data[0];
	const char *p = (const char *)data + 1, *end = (const char *)data + size;
	size_t sl, tl, hl;
	const char *s = piece(&p, end, &sl), *t = piece(&p, end, &tl), *h = piece(&p, end, &hl);
	const char *vals[NF] = {0};
	size_t lens[NF] = {0};
	for (int i = 0; i < NF; i++)
		vals[i] = piece(&p, end, &lens[i]);
	static email_unsub_t *u;
	if (!u) {
		char e2[128];
		u = email_unsub_new("fuzz-key-0123456789", 19, "https://t.example.org", e2, sizeof e2);
	}
	char err[512];
	email_tmpl_t *e = email_compile(s, sl, (opt & 1) ? NULL : t, tl, (opt & 2) ? NULL : h, hl, F,
	                                NF, (opt & 4) ? TMPL_F_MISSING_EMPTY : 0, err, sizeof err);
	if (!e)
		return 0;
	static char b1[1 << 17], b2[1 << 17];
	size_t cap = (opt & 8) ? 200 + (size_t)(opt >> 4) * 64 : sizeof b1;
	email_parts_t ps, pi;
	tmpl_why_t w1, w2;
	int r1 = email_render_subs(e, u, "c1", "a@b.org", 7, vals, lens, b1, cap, &ps, &w1);
	int r2 = email_render(e, u, "c1", "a@b.org", 7, vals, lens, b2, cap, &pi, &w2);
	/* the batched form needs room for the pieces, not the whole parts: it may fit
	 * a buffer the inline render does not (then nothing to compare) */
	if (r1 == 0 && ps.subs && r2 == TOCSIN_ERR_TOOBIG) {
		email_free(e);
		return 0;
	}
	check(r1 == r2);
	if (r1 == TOCSIN_ERR_INVAL)
		check(!strcmp(w1.reason, w2.reason));
	if (r1 == 0 && ps.subs) {
		check(ps.inline_why == EMAIL_INLINE_NONE && email_subs_possible(e));
		json_t *subs = json_loads(ps.subs, 0, NULL);
		check(json_is_object(subs));
		/* under SendGrid's cap as it counts: keys "{{{tocsin:name}}}" and values */
		check(ps.subs_len + 13 * json_object_size(subs) < EMAIL_SUBS_MAX);
		es_str_t o = {0};
		const char *sp[3] = {ps.subject, ps.text, ps.html},
		           *qp[3] = {pi.subject, pi.text, pi.html};
		size_t spl[3] = {ps.subject_len, ps.text_len, ps.html_len},
		       qpl[3] = {pi.subject_len, pi.text_len, pi.html_len};
		for (int k = 0; k < 3; k++) {
			check((sp[k] == NULL) == (qp[k] == NULL));
			if (!sp[k])
				continue;
			es_sendgrid(sp[k], spl[k], subs, &o);
			check(o.n == qpl[k] && !memcmp(o.p, qp[k], o.n));
			es_mailgun(sp[k], spl[k], subs, &o);
			check(o.n == qpl[k] && !memcmp(o.p, qp[k], o.n));
		}
		free(o.p);
		json_decref(subs);
	} else if (r1 == 0) {
		check(ps.inline_why != EMAIL_INLINE_NONE && ps.inline_why != EMAIL_INLINE_ASKED);
		check(ps.subject_len == pi.subject_len &&
		      !memcmp(ps.subject, pi.subject, pi.subject_len));
		check(ps.text_len == pi.text_len &&
		      (!pi.text || !memcmp(ps.text, pi.text, pi.text_len)));
		check(ps.html_len == pi.html_len &&
		      (!pi.html || !memcmp(ps.html, pi.html, pi.html_len)));
	}
	email_free(e);
	return 0;
}
