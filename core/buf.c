/* buf.c -- growable byte buffers with a hard size cap, and escaping writers. */
#include "core/buf.h"
#include "core/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void buf_init(buf_t *b, size_t max)
{
	b->p = NULL;
	b->len = b->cap = 0;
	b->max = max;
}

void buf_free(buf_t *b)
{
	if (!b)
		return;
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

int buf_reserve(buf_t *b, size_t extra)
{
	if (b->len > b->max || (b->cap ? b->len >= b->cap : b->len != 0))
		tocsin_panic("buffer of %zu bytes holds %zu (cap %zu)", b->cap, b->len, b->max);
	if (extra > b->max || b->len > b->max - extra)
		return TOCSIN_ERR_TOOBIG;
	size_t need = b->len + extra + 1;
	if (need <= b->cap)
		return TOCSIN_OK;
	size_t ncap = b->cap ? b->cap : 256;
	while (ncap < need)
		ncap *= 2;
	if (ncap > b->max + 1)
		ncap = b->max + 1;
	char *np = realloc(b->p, ncap);
	if (!np)
		return TOCSIN_ERR_NOMEM;
	b->p = np;
	b->cap = ncap;
	return TOCSIN_OK;
}

int buf_append(buf_t *b, const void *p, size_t n)
{
	int rc = buf_reserve(b, n);
	if (rc)
		return rc;
	if (n)
		memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = 0;
	return TOCSIN_OK;
}

int buf_puts(buf_t *b, const char *s) { return buf_append(b, s, strlen(s)); }

int buf_putc(buf_t *b, char c) { return buf_append(b, &c, 1); }

int buf_printf(buf_t *b, const char *fmt, ...)
{
	va_list ap;
	char small[256];
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof small, fmt, ap);
	va_end(ap);
	if (n < 0)
		return TOCSIN_ERR_INVAL;
	if ((size_t)n < sizeof small)
		return buf_append(b, small, (size_t)n);
	int rc = buf_reserve(b, (size_t)n);
	if (rc)
		return rc;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return TOCSIN_OK;
}

int buf_put_i64(buf_t *b, int64_t v)
{
	char tmp[24];
	char *e = tmp + sizeof tmp, *s = e;
	uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
	do {
		*--s = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		*--s = '-';
	return buf_append(b, s, (size_t)(e - s));
}

/* bytes a JSON string literal spends on each input byte (core/buf.h) */
const unsigned char buf_json_out[256] = {
    6, 6, 6, 6, 6, 6, 6, 6, 6, 2, 2, 6, 6, 2, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6,
    1, 1, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
};

int buf_json_str(buf_t *b, const char *s, size_t n)
{
	size_t out = 2; /* exactly what it takes: the cap refuses nothing that fits */
	for (size_t i = 0; i < n; i++)
		out += buf_json_out[(unsigned char)s[i]];
	int rc = buf_reserve(b, out);
	if (rc)
		return rc;
	b->len += buf_json_esc(b->p + b->len, s, n);
	b->p[b->len] = 0;
	return TOCSIN_OK;
}

static int is_unreserved(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_' || c == '.' || c == '~';
}

static int enc(buf_t *b, const char *s, size_t n, int form)
{
	size_t out = 0;
	for (size_t i = 0; i < n; i++)
		out += is_unreserved((unsigned char)s[i]) || (form && s[i] == ' ') ? 1 : 3;
	int rc = buf_reserve(b, out);
	if (rc)
		return rc;
	char *d = b->p + b->len;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (is_unreserved(c)) {
			*d++ = (char)c;
		} else if (form && c == ' ') {
			*d++ = '+';
		} else {
			*d++ = '%';
			*d++ = "0123456789ABCDEF"[c >> 4];
			*d++ = "0123456789ABCDEF"[c & 15];
		}
	}
	b->len = (size_t)(d - b->p);
	b->p[b->len] = 0;
	return TOCSIN_OK;
}

int buf_form_enc(buf_t *b, const char *s, size_t n) { return enc(b, s, n, 1); }
int buf_url_enc(buf_t *b, const char *s, size_t n) { return enc(b, s, n, 0); }

int buf_form_kv(buf_t *b, const char *k, const char *v)
{
	int rc = b->len ? buf_putc(b, '&') : 0;
	if (!rc)
		rc = buf_puts(b, k);
	if (!rc)
		rc = buf_putc(b, '=');
	if (!rc)
		rc = buf_form_enc(b, v, strlen(v));
	return rc;
}

int buf_xml_text(buf_t *b, const char *s)
{
	int rc = 0;
	for (; *s && !rc; s++) {
		switch (*s) {
		case '<': rc = buf_puts(b, "&lt;"); break;
		case '>': rc = buf_puts(b, "&gt;"); break;
		case '&': rc = buf_puts(b, "&amp;"); break;
		case '"': rc = buf_puts(b, "&quot;"); break;
		default: rc = buf_putc(b, *s);
		}
	}
	return rc;
}
