/* test_tmpl_golden.c -- golden-file tests: every tests/data/templates/NAME.in renders to exactly NAME.out. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/err.h"
#include "templates/sms.h"
#include "templates/tmpl.h"

/* .in format: header lines, a line "---", then the template (exact bytes to EOF).
 *   # comment
 *   mode: text | html
 *   missing: reject | empty
 *   sms: smart=0|1 max=N footer=TEXT    (run sms_finish and print its analysis)
 *   cap: N                              (output buffer size, default 4096)
 *   field NAME=VALUE   (VALUE with \n \t \\ \xHH escapes)   field NAME   (no value)
 * .out: the rendered bytes; with sms: they are followed by "\n~~~ enc=.. units=.. segments=.. replaced=..";
 * or "compile error: <message>" / "rejected: <reason>" / "too big: <reason>". */

static const char *dir = "tests/data/templates";

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char *p = malloc(1 << 21);
	size_t n = fread(p, 1, (1 << 21) - 1, f);
	fclose(f);
	p[n] = 0;
	*len = n;
	return p;
}

static size_t unescape(const char *s, size_t n, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\\' && i + 1 < n) {
			char c = s[++i];
			if (c == 'n')
				out[o++] = '\n';
			else if (c == 't')
				out[o++] = '\t';
			else if (c == 'r')
				out[o++] = '\r';
			else if (c == 'x' && i + 2 < n) {
				char h[3] = {s[i + 1], s[i + 2], 0};
				out[o++] = (char)strtol(h, NULL, 16);
				i += 2;
			} else
				out[o++] = c;
		} else
			out[o++] = s[i];
	}
	return o;
}

#define MAXF 32

/* Run one .in; the result goes to res (malloc'd). */
/* The slots' twin of tmpl_render (email batching, templates/tmpl.h): the
 * literal text with every slot's own render in its place is the same bytes,
 * and the first slot that fails fails with the same reason. */
static void slots_twin(const tmpl_t *t, const char *const *vals, const size_t *lens, int rc,
                       const char *res, size_t n, const tmpl_why_t *why)
{
	size_t ns = tmpl_slots(t);
	const char **sv = calloc(ns + 1, sizeof *sv);
	size_t *sl = calloc(ns + 1, sizeof *sl);
	char **own = calloc(ns + 1, sizeof *own);
	int failed = 0;
	for (size_t i = 0; i < ns && !failed; i++) {
		own[i] = malloc(1 << 16);
		tmpl_why_t w;
		int r = tmpl_render_slot(t, i, vals, lens, own[i], 1 << 16, &sl[i], &w);
		if (r == TOCSIN_ERR_INVAL && rc == TOCSIN_ERR_INVAL) {
			assert_string_equal(w.reason, why->reason);
			failed = 1;
		} else if (r == TOCSIN_ERR_INVAL)
			fail_msg("slot %zu rejects (%s) where tmpl_render gave %d", i, w.reason, rc);
		sv[i] = own[i];
	}
	if (rc == 0) {
		char *with = malloc(n + 1);
		size_t wn = 0;
		assert_int_equal(tmpl_render_with(t, sv, sl, with, n + 1, &wn), 0);
		assert_int_equal(wn, n);
		assert_memory_equal(with, res, n);
		free(with);
	} else if (rc == TOCSIN_ERR_INVAL)
		assert_true(failed);
	for (size_t i = 0; i < ns; i++)
		free(own[i]);
	free(own);
	free(sv);
	free(sl);
}

static char *run_one(const char *in, size_t inlen, size_t *reslen)
{
	char *names[MAXF], *vals[MAXF];
	size_t lens[MAXF], nf = 0;
	tmpl_mode_t mode = TMPL_TEXT;
	unsigned flags = 0;
	int sms = 0;
	sms_opts_t so = {0};
	char footer[256] = "";
	size_t cap = 4096;
	const char *p = in, *end = in + inlen;
	const char *src = NULL;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t ll = nl ? (size_t)(nl - p) : (size_t)(end - p);
		char line[1024];
		snprintf(line, sizeof line, "%.*s", (int)ll, p);
		p = nl ? nl + 1 : end;
		if (strcmp(line, "---") == 0) {
			src = p;
			break;
		}
		if (line[0] == '#' || line[0] == 0)
			continue;
		if (strncmp(line, "mode: ", 6) == 0)
			mode = strcmp(line + 6, "html") == 0 ? TMPL_HTML : TMPL_TEXT;
		else if (strcmp(line, "missing: empty") == 0)
			flags |= TMPL_F_MISSING_EMPTY;
		else if (strncmp(line, "cap: ", 5) == 0)
			cap = (size_t)atol(line + 5);
		else if (strncmp(line, "sms:", 4) == 0) {
			sms = 1;
			char *q;
			if ((q = strstr(line, "smart=")))
				so.smart = atoi(q + 6);
			if ((q = strstr(line, "max=")))
				so.max_segments = atoi(q + 4);
			if ((q = strstr(line, "footer="))) {
				size_t fl = unescape(q + 7, strlen(q + 7), footer);
				footer[fl] = 0;
				so.footer = footer;
			}
		} else if (strncmp(line, "field ", 6) == 0) {
			assert_true(nf < MAXF);
			char *eq = strchr(line + 6, '=');
			if (eq) {
				names[nf] = strndup(line + 6, (size_t)(eq - line - 6));
				vals[nf] = malloc(strlen(eq) + 1);
				lens[nf] = unescape(eq + 1, strlen(eq + 1), vals[nf]);
			} else {
				names[nf] = strdup(line + 6);
				vals[nf] = NULL;
				lens[nf] = 0;
			}
			nf++;
		} else
			fail_msg("bad header line: %s", line);
	}
	assert_non_null(src);
	char *res = malloc(cap + 4096);
	char err[512];
	tmpl_t *t = tmpl_compile_ex(src, (size_t)(end - src), mode, (const char *const *)names, nf,
	                            flags, err, sizeof err);
	if (!t) {
		*reslen = (size_t)sprintf(res, "compile error: %s\n", err);
	} else {
		tmpl_why_t why;
		size_t n = 0;
		int rc = tmpl_render(t, (const char *const *)vals, lens, res, cap, &n, &why);
		slots_twin(t, (const char *const *)vals, lens, rc, res, n, &why);
		if (rc == TOCSIN_ERR_INVAL)
			*reslen = (size_t)sprintf(res, "rejected: %s\n", why.reason);
		else if (rc == TOCSIN_ERR_TOOBIG)
			*reslen = (size_t)sprintf(res, "too big: %s\n", why.reason);
		else if (rc)
			fail_msg("render rc %d", rc);
		else if (sms) {
			sms_info_t info;
			int nrep;
			char reason[160];
			rc = sms_finish(res, &n, cap, &so, &info, &nrep, NULL, reason, sizeof reason);
			if (rc)
				*reslen = (size_t)sprintf(res, "rejected: %s\n", reason);
			else
				*reslen = n + (size_t)sprintf(res + n,
				                              "\n~~~ enc=%s units=%d segments=%d replaced=%d\n",
				                              sms_enc_name(info.enc), info.units,
				                              info.segments, nrep);
		} else
			*reslen = n;
		tmpl_free(t);
	}
	for (size_t i = 0; i < nf; i++) {
		free(names[i]);
		free(vals[i]);
	}
	return res;
}

static void test_golden(void **state)
{
	(void)state;
	DIR *d = opendir(dir);
	if (!d)
		fail_msg("cannot open %s (run from the repository root)", dir);
	int count = 0, bad = 0;
	struct dirent *de;
	int update = getenv("UPDATE_GOLDEN") != NULL;
	while ((de = readdir(d))) {
		size_t nl = strlen(de->d_name);
		if (nl < 4 || strcmp(de->d_name + nl - 3, ".in") != 0)
			continue;
		char path[1024], opath[1024];
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		snprintf(opath, sizeof opath, "%s/%.*s.out", dir, (int)(nl - 3), de->d_name);
		size_t inlen, outlen = 0, reslen = 0;
		char *in = slurp(path, &inlen);
		assert_non_null(in);
		char *res = run_one(in, inlen, &reslen);
		if (update) {
			FILE *f = fopen(opath, "wb");
			fwrite(res, 1, reslen, f);
			fclose(f);
		}
		char *want = slurp(opath, &outlen);
		if (!want) {
			fprintf(stderr, "%s: missing %s\n", path, opath);
			bad++;
		} else if (outlen != reslen || memcmp(want, res, reslen) != 0) {
			fprintf(stderr, "%s: got (%zu bytes):\n%.*s\n--- want %s (%zu bytes):\n%s\n",
			        path, reslen, (int)reslen, res, opath, outlen, want);
			bad++;
		}
		count++;
		free(in);
		free(res);
		free(want);
	}
	closedir(d);
	fprintf(stderr, "golden: %d files, %d mismatched\n", count, bad);
	assert_true(count >= 10);
	assert_int_equal(bad, 0);
}

int main(void)
{
	if (getenv("TOCSIN_GOLDEN_DIR")) /* run from elsewhere */
		dir = getenv("TOCSIN_GOLDEN_DIR");
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_golden),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
