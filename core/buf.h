/* buf.h -- growable byte buffers with a hard size cap, and escaping writers. */
#ifndef TOCSIN_BUF_H
#define TOCSIN_BUF_H
#include <stddef.h>
#include <stdint.h>

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
/* Append s[0..n) application/x-www-form-urlencoded (space as '+'). */
int buf_form_enc(buf_t *b, const char *s, size_t n);
/* Append one form field "k=v" (v form-encoded), preceded by '&' unless b is empty. */
int buf_form_kv(buf_t *b, const char *k, const char *v);
/* Append the NUL-terminated s with & < > " escaped, for HTML or XML text and attribute values. */
int buf_xml_text(buf_t *b, const char *s);
/* Append s[0..n) percent-encoded for a URL query or path (RFC 3986 unreserved kept). */
int buf_url_enc(buf_t *b, const char *s, size_t n);

#endif
