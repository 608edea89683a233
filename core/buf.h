/* buf.h -- growable byte buffers with a hard size cap, and escaping writers. */
#ifndef TOCSIN_BUF_H
#define TOCSIN_BUF_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* A plain value type: the caller owns the struct, buf_free() releases p.
 * len bytes are used; p is always NUL-terminated after any successful write
 * (the NUL is not counted in len). Growth beyond max fails with
 * TOCSIN_ERR_TOOBIG and leaves the contents as they were. Not thread-safe:
 * one thread owns a buffer at a time. */
typedef struct buf {
	char *p;
	size_t len;
	size_t cap;
	size_t max;
} buf_t;

void buf_init(buf_t *b, size_t max);
void buf_free(buf_t *b);
static inline void buf_reset(buf_t *b)
{
	b->len = 0;
	if (b->p)
		b->p[0] = 0;
}
/* Ensure room for extra more bytes (plus the NUL). */
int buf_reserve(buf_t *b, size_t extra);
int buf_append(buf_t *b, const void *p, size_t n);
int buf_puts(buf_t *b, const char *s);
int buf_putc(buf_t *b, char c);
int buf_printf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_put_i64(buf_t *b, int64_t v);
/* Append s[0..n) as a JSON string literal, quotes included. Bytes >= 0x80 are
 * copied as they are (the caller guarantees UTF-8); control bytes are escaped. */
int buf_json_str(buf_t *b, const char *s, size_t n);
/* Bytes a JSON string literal spends on each input byte: 1 = copied as it is,
 * 2 = \" \\ \n \r \t, 6 = \u00XX (the other control bytes). */
extern const unsigned char buf_json_out[256];
/* The same escape (the one JSON string escaper) written to dst, which has room for
 * BUF_JSON_ESC_MAX(n) bytes: for a hot path that reserves once for a whole record
 * (producer/penc.c; inline, as the record writer's speed wants). Returns the bytes
 * written; no NUL. Allocates nothing. Any thread. */
#define BUF_JSON_ESC_MAX(n) (6 * (n) + 2)
static inline size_t buf_json_esc(char *dst, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	char *d = dst;
	*d++ = '"';
	size_t i = 0;
	while (i < n) {
		size_t j = i; /* a run of bytes copied as they are, at memcpy's speed */
		while (j < n && buf_json_out[u[j]] == 1)
			j++;
		if (j > i) {
			memcpy(d, u + i, j - i);
			d += j - i;
			i = j;
			if (i >= n)
				break;
		}
		unsigned char c = u[i++];
		switch (c) {
		case '"':
			*d++ = '\\';
			*d++ = '"';
			break;
		case '\\':
			*d++ = '\\';
			*d++ = '\\';
			break;
		case '\n':
			*d++ = '\\';
			*d++ = 'n';
			break;
		case '\r':
			*d++ = '\\';
			*d++ = 'r';
			break;
		case '\t':
			*d++ = '\\';
			*d++ = 't';
			break;
		default:
			memcpy(d, "\\u00", 4);
			d[4] = "0123456789abcdef"[c >> 4];
			d[5] = "0123456789abcdef"[c & 15];
			d += 6;
		}
	}
	*d++ = '"';
	return (size_t)(d - dst);
}

/* Append s[0..n) application/x-www-form-urlencoded (space as '+'). */
int buf_form_enc(buf_t *b, const char *s, size_t n);
/* Append one form field "k=v" (v form-encoded), preceded by '&' unless b is empty. */
int buf_form_kv(buf_t *b, const char *k, const char *v);
/* Append the NUL-terminated s with & < > " escaped, for HTML or XML text and attribute values. */
int buf_xml_text(buf_t *b, const char *s);
/* Append s[0..n) percent-encoded for a URL query or path (RFC 3986 unreserved kept). */
int buf_url_enc(buf_t *b, const char *s, size_t n);

#endif
