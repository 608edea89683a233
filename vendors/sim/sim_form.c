/* sim_form.c -- the emulator's own reading of request parameters (urlencoded forms, flat JSON objects). */
#include "vendors/sim/sim_int.h"

#include "core/err.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* room for n pairs and size bytes of text */
static int form_alloc(sim_form_t *f, size_t n, size_t size)
{
	memset(f, 0, sizeof *f);
	if (n > SIM_FORM_MAX)
		return TOCSIN_ERR_TOOBIG;
	/* one block: the name and value pointers, then the text */
	char **p = malloc(2 * (n ? n : 1) * sizeof *p + (size ? size : 1));
	if (!p)
		return TOCSIN_ERR_NOMEM;
	f->name = p;
	f->val = p + (n ? n : 1);
	f->store = (char *)(p + 2 * (n ? n : 1));
	return 0;
}

static int hexval(int c)
{
	return c >= '0' && c <= '9'   ? c - '0'
	       : c >= 'a' && c <= 'f' ? c - 'a' + 10
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10
	                              : -1;
}

/* decode the form-encoded s[0..n) ('+' is a space, %XX a byte; a '%' not
 * followed by two hex digits stays as it is) into o; returns the end */
static char *decode(const char *s, size_t n, char *o)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '+')
			*o++ = ' ';
		else if (s[i] == '%' && i + 2 < n && hexval((unsigned char)s[i + 1]) >= 0 &&
		         hexval((unsigned char)s[i + 2]) >= 0) {
			*o++ = (char)(hexval((unsigned char)s[i + 1]) * 16 +
			              hexval((unsigned char)s[i + 2]));
			i += 2;
		} else
			*o++ = s[i];
	}
	*o++ = 0;
	return o;
}

int sim_form_parse(const char *s, size_t len, sim_form_t *f)
{
	size_t n = 0;
	for (size_t i = 0; i < len; i++)
		n += s[i] == '&';
	int rc = form_alloc(f, n + 1, len + 2 * (n + 1));
	if (rc)
		return rc;
	char *o = f->store;
	const char *p = s, *end = s + len;
	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *e = amp ? amp : end;
		if (e > p) { /* "a=b", "a" (empty value); empty pieces ("&&") are skipped */
			const char *eq = memchr(p, '=', (size_t)(e - p));
			f->name[f->n] = o;
			o = decode(p, (size_t)((eq ? eq : e) - p), o);
			f->val[f->n] = o;
			o = eq ? decode(eq + 1, (size_t)(e - eq - 1), o) : decode("", 0, o);
			f->n++;
		}
		p = e + 1;
	}
	return 0;
}

int sim_form_json(const char *s, size_t len, sim_form_t *f)
{
	memset(f, 0, sizeof *f);
	json_t *j = json_loadb(s, len, 0, NULL);
	if (!json_is_object(j)) {
		json_decref(j);
		return TOCSIN_ERR_INVAL;
	}
	size_t size = 0;
	const char *k;
	json_t *v;
	json_object_foreach(j, k, v)
	{
		if (json_is_object(v) || json_is_array(v)) {
			json_decref(j);
			return TOCSIN_ERR_INVAL;
		}
		size += strlen(k) + 1 + (json_is_string(v) ? json_string_length(v) : 32) + 1;
	}
	int rc = form_alloc(f, json_object_size(j), size);
	char *o = f->store;
	json_object_foreach(j, k, v)
	{
		if (rc || json_is_null(v))
			continue;
		size_t kl = strlen(k);
		f->name[f->n] = memcpy(o, k, kl + 1);
		o += kl + 1;
		f->val[f->n] = o;
		if (json_is_string(v)) {
			/* a value with a NUL in it ("\u0000") ends there, as in a C string */
			memcpy(o, json_string_value(v), json_string_length(v) + 1);
			o += json_string_length(v) + 1;
		} else if (json_is_integer(v))
			o += snprintf(o, 32, "%lld", (long long)json_integer_value(v)) + 1;
		else if (json_is_real(v))
			o += snprintf(o, 32, "%.17g", json_real_value(v)) + 1;
		else
			o += snprintf(o, 32, "%s", json_is_true(v) ? "true" : "false") + 1;
		f->n++;
	}
	json_decref(j);
	return rc;
}

typedef struct args_ctx {
	sim_form_t *f;
	size_t n, size;
	char *o;
} args_ctx_t;

static enum MHD_Result args_count(void *cls, enum MHD_ValueKind kind, const char *k, const char *v)
{
	(void)kind;
	args_ctx_t *x = cls;
	x->n++;
	x->size += strlen(k) + 1 + (v ? strlen(v) : 0) + 1;
	return x->n > SIM_FORM_MAX ? MHD_NO : MHD_YES;
}

static enum MHD_Result args_copy(void *cls, enum MHD_ValueKind kind, const char *k, const char *v)
{
	(void)kind;
	args_ctx_t *x = cls;
	sim_form_t *f = x->f;
	if (f->n == x->n)
		return MHD_NO;
	size_t kl = strlen(k), vl = v ? strlen(v) : 0;
	f->name[f->n] = memcpy(x->o, k, kl + 1);
	x->o += kl + 1;
	f->val[f->n++] = memcpy(x->o, v ? v : "", vl + 1);
	x->o += vl + 1;
	return MHD_YES;
}

int sim_form_args(struct MHD_Connection *con, sim_form_t *f)
{
	args_ctx_t x = {f, 0, 0, NULL};
	memset(f, 0, sizeof *f);
	MHD_get_connection_values(con, MHD_GET_ARGUMENT_KIND, args_count, &x);
	int rc = form_alloc(f, x.n, x.size);
	if (rc)
		return rc;
	x.o = f->store;
	MHD_get_connection_values(con, MHD_GET_ARGUMENT_KIND, args_copy, &x);
	return 0;
}

const char *sim_form_get(const sim_form_t *f, const char *name)
{
	for (size_t i = 0; i < f->n; i++)
		if (!strcmp(f->name[i], name))
			return f->val[i];
	return NULL;
}

void sim_form_free(sim_form_t *f)
{
	free(f->name); /* the one block */
	memset(f, 0, sizeof *f);
}

int sim_mp_parse(const char *ctype, const char *body, size_t len, mp_field_t *fs, int max)
{
	const char *bp = ctype ? strstr(ctype, "boundary=") : NULL;
	if (!bp)
		return -1;
	bp += 9;
	char bnd[200];
	size_t bl = strcspn(bp, ";");
	if (*bp == '"') {
		bp++;
		bl = strcspn(bp, "\"");
	}
	if (bl == 0 || bl + 4 >= sizeof bnd)
		return -1;
	bnd[0] = '-';
	bnd[1] = '-';
	memcpy(bnd + 2, bp, bl);
	bl += 2;
	bnd[bl] = 0;
	int n = 0;
	const char *p = memmem(body, len, bnd, bl), *end = body + len;
	while (p) {
		p += bl;
		if (end - p >= 2 && p[0] == '-' && p[1] == '-')
			return n;
		if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
			return -1;
		p += 2;
		const char *hend = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
		if (!hend)
			return -1;
		const char *nm = memmem(p, (size_t)(hend - p), "name=\"", 6);
		const char *v = hend + 4;
		const char *next = memmem(v, (size_t)(end - v), bnd, bl);
		if (!next || next - v < 2 || !nm)
			return -1;
		if (n >= max)
			return -1;
		nm += 6;
		size_t nl = strcspn(nm, "\"");
		if (nl >= sizeof fs[n].name || nm + nl > hend)
			return -1;
		memcpy(fs[n].name, nm, nl);
		fs[n].name[nl] = 0;
		fs[n].val = v;
		fs[n].len = (size_t)(next - v - 2);
		n++;
		p = next;
	}
	return -1;
}
