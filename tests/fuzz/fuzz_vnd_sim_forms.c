/* fuzz_vnd_sim_forms.c -- libFuzzer target: the emulator's request parsers (multipart, urlencoded, flat JSON) and segment count. */
#include "vendors/sim/sim_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	/* first line = Content-Type, the rest = body (NUL-terminated like a buf_t) */
	const uint8_t *nl = memchr(d, '\n', n);
	size_t cl = nl ? (size_t)(nl - d) : 0;
	char *ct = strndup((const char *)d, cl);
	size_t bl = nl ? n - cl - 1 : n;
	char *body = malloc(bl + 1);
	memcpy(body, nl ? (const char *)nl + 1 : (const char *)d, bl);
	body[bl] = 0;
	static mp_field_t fs[64];
	int k = sim_mp_parse(ct, body, bl, fs, 64);
	for (int i = 0; i < k; i++)
		if (fs[i].val < body || fs[i].val + fs[i].len > body + bl ||
		    !memchr(fs[i].name, 0, sizeof fs[i].name))
			abort();
	sim_form_t f;
	if (!sim_form_parse(body, bl, &f))
		for (size_t i = 0; i < f.n; i++)
			if (!f.name[i] || !f.val[i])
				abort();
	sim_form_free(&f);
	if (!sim_form_json(body, bl, &f))
		for (size_t i = 0; i < f.n; i++)
			if (!f.name[i] || !f.val[i])
				abort();
	sim_form_free(&f);
	int ucs2 = -1;
	if (sim_segments(body, 0, &ucs2) < 1 || (ucs2 != 0 && ucs2 != 1))
		abort();
	free(ct);
	free(body);
	return 0;
}
