/* fuzz_tmpl.c -- libFuzzer target: template compile + render + SMS finish + email parts + unsubscribe token verify. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "templates/email.h"
#include "templates/sms.h"
#include "templates/tmpl.h"
#include "templates/utf8.h"

#define NF 4
static const char *const F[NF] = {"a", "b", "first_name", "city"};

static void check(int cond)
{
	if (!cond)
		abort();
}

/* Input: byte 0 = options; then the template up to a NUL; then NF values separated by NULs. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	uint8_t opt = data[0];
	const char *p = (const char *)data + 1, *end = (const char *)data + size;
	const char *z = memchr(p, 0, (size_t)(end - p));
	size_t tlen = z ? (size_t)(z - p) : (size_t)(end - p);
	/* a copy with no slack, so that any over-read of the source is caught */
	char *src = malloc(tlen ? tlen : 1);
	memcpy(src, p, tlen);
	const char *vals[NF] = {0};
	size_t lens[NF] = {0};
	const char *q = z ? z + 1 : end;
	for (int i = 0; i < NF && q < end; i++) {
		const char *e = memchr(q, 0, (size_t)(end - q));
		size_t l = e ? (size_t)(e - q) : (size_t)(end - q);
		vals[i] = q;
		lens[i] = l;
		q = e ? e + 1 : end;
	}
	tmpl_mode_t mode = (opt & 1) ? TMPL_HTML : TMPL_TEXT;
	unsigned flags = (opt & 2) ? TMPL_F_MISSING_EMPTY : 0;
	char err[256];
	tmpl_t *t = tmpl_compile_ex(src, tlen, mode, F, NF, flags, err, sizeof err);
	if (!t) {
		check(err[0] != 0 && strlen(err) < sizeof err);
	} else {
		size_t cap = (opt & 4) ? 1 + (size_t)(opt >> 3) * 8 : 4096;
		char *out = malloc(cap); /* exact size: ASan catches any overflow */
		size_t n = 0;
		tmpl_why_t why;
		int rc = tmpl_render(t, vals, lens, out, cap, &n, &why);
		check(rc == 0 || rc == TOCSIN_ERR_INVAL || rc == TOCSIN_ERR_TOOBIG);
		if (rc == 0) {
			check(n < cap && out[n] == 0);
			check(utf8_valid(out, n, NULL)); /* valid template + valid values -> valid output */
			char *again = malloc(cap);
			size_t n2 = 0;
			check(tmpl_render(t, vals, lens, again, cap, &n2, &why) == 0);
			check(n2 == n && memcmp(out, again, n) == 0);
			free(again);
			sms_info_t info;
			check(sms_analyze(out, n, &info) == 0);
			check(info.segments >= 1 && info.units >= 0);
			sms_opts_t so = {.smart = opt & 0x10,
			                 .max_segments = 3,
			                 .footer = (opt & 0x20) ? "Reply STOP to opt out" : NULL};
			int nrep;
			char reason[160];
			rc = sms_finish(out, &n, cap, &so, &info, &nrep, NULL, reason, sizeof reason);
			check(rc == 0 || rc == TOCSIN_ERR_TOOBIG);
			if (rc == 0)
				check(info.segments <= 3 && n < cap && out[n] == 0);
		} else if (rc == TOCSIN_ERR_INVAL) {
			check(why.reason[0] != 0);
		}
		free(out);
		tmpl_free(t);
	}
	/* the same source as an email body, and the unsubscribe token parser on the values */
	static email_unsub_t *u;
	if (!u) {
		char e2[128];
		u = email_unsub_new("fuzz-key-0123456789", 19, "https://t.example.org", e2, sizeof e2);
	}
	email_tmpl_t *et = email_compile("Hi {{first_name|default:\"x\"}}", 29, src, tlen, src,
	                                 tlen, F, NF, flags, err, sizeof err);
	if (et) {
		static char buf[1 << 16];
		email_parts_t parts;
		tmpl_why_t why;
		const char *addr = lens[0] ? vals[0] : "x@y.z";
		size_t al = lens[0] ? lens[0] : 5;
		int rc = email_render(et, u, "c1", addr, al, vals, lens, buf, sizeof buf, &parts, &why);
		if (rc == 0) {
			char c[300], a[400];
			const char *tok = strstr(parts.unsub_url, "/u/") + 3;
			check(email_unsub_verify(u, tok, strlen(tok), c, sizeof c, a, sizeof a) == 0);
			check(strcmp(c, "c1") == 0 && strlen(a) == al && memcmp(a, addr, al) == 0);
		}
		email_free(et);
	}
	if (lens[1]) {
		char c[300], a[400];
		int rc = email_unsub_verify(u, vals[1], lens[1], c, sizeof c, a, sizeof a);
		check(rc == TOCSIN_ERR_INVAL || rc == 0 || rc == TOCSIN_ERR_TOOBIG);
	}
	free(src);
	return 0;
}
