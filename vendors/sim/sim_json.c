/* sim_json.c -- a non-allocating JSON scanner for the emulator's hot request bodies (SendGrid). */
#include "vendors/sim/sim_json.h"

#include <stdint.h>
#include <string.h>

#define SJ_MAX_DEPTH 64
#define SJ_MAX_DIGITS 15

static const char *ws(const char *p, const char *e)
{
	while (p < e && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
		p++;
	return p;
}

static int hexv(int c)
{
	return c >= '0' && c <= '9'   ? c - '0'
	       : c >= 'a' && c <= 'f' ? c - 'a' + 10
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10
	                              : -1;
}

/* 4 hex digits at p (p + 4 <= e checked by the caller); -1 if not hex */
static long hex4(const char *p)
{
	long v = 0;
	for (int i = 0; i < 4; i++) {
		int h = hexv((unsigned char)p[i]);
		if (h < 0)
			return -1;
		v = v * 16 + h;
	}
	return v;
}

/* One UTF-8 sequence starting at p (first byte >= 0x80): its length, 0 if invalid
 * (overlong, surrogate, above U+10FFFF, truncated). */
static size_t utf8_seq(const unsigned char *p, const unsigned char *e)
{
	unsigned c = p[0];
	size_t n;
	unsigned lo = 0x80, hi = 0xBF;
	if (c >= 0xC2 && c <= 0xDF)
		n = 2;
	else if (c >= 0xE0 && c <= 0xEF) {
		n = 3;
		if (c == 0xE0)
			lo = 0xA0;
		else if (c == 0xED)
			hi = 0x9F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 4;
		if (c == 0xF0)
			lo = 0x90;
		else if (c == 0xF4)
			hi = 0x8F;
	} else
		return 0;
	if ((size_t)(e - p) < n || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if ((p[i] & 0xC0) != 0x80)
			return 0;
	return n;
}

/* 1 when one of the 8 bytes at p is '"', '\\', a control character or not ASCII (what
 * v_str must look at); 0 when all 8 are plain and can be stepped over at once */
static int special8(const char *p)
{
	const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
	uint64_t x, q, b;
	memcpy(&x, p, 8);
	q = x ^ (ones * '"');
	b = x ^ (ones * '\\');
	return ((((q - ones) & ~q) | ((b - ones) & ~b) | ((x - ones * 0x20) & ~x) | x) & high) != 0;
}

/* a string token at p (*p == '"'): the position after its closing quote, or NULL */
static const char *v_str(const char *p, const char *e)
{
	p++;
	while (p < e) {
		while (e - p >= 8 && !special8(p))
			p += 8;
		if (p >= e)
			break;
		unsigned char c = (unsigned char)*p;
		if (c == '"')
			return p + 1;
		if (c < 0x20)
			return NULL;
		if (c == '\\') {
			if (e - p < 2)
				return NULL;
			char x = p[1];
			if (x == 'u') {
				if (e - p < 6)
					return NULL;
				long u = hex4(p + 2);
				if (u <= 0) /* not hex, or \u0000 (jansson refuses it by default) */
					return NULL;
				p += 6;
				if (u >= 0xDC00 && u <= 0xDFFF)
					return NULL;
				if (u >= 0xD800 && u <= 0xDBFF) {
					if (e - p < 6 || p[0] != '\\' || p[1] != 'u')
						return NULL;
					long l = hex4(p + 2);
					if (l < 0xDC00 || l > 0xDFFF)
						return NULL;
					p += 6;
				}
				continue;
			}
			if (!strchr("\"\\/bfnrt", x) || !x)
				return NULL;
			p += 2;
			continue;
		}
		if (c >= 0x80) {
			size_t n = utf8_seq((const unsigned char *)p, (const unsigned char *)e);
			if (!n)
				return NULL;
			p += n;
			continue;
		}
		p++;
	}
	return NULL;
}

static const char *v_num(const char *p, const char *e)
{
	int digits = 0;
	if (p < e && *p == '-')
		p++;
	if (p >= e)
		return NULL;
	if (*p == '0') {
		p++;
		digits++;
	} else if (*p >= '1' && *p <= '9') {
		while (p < e && *p >= '0' && *p <= '9')
			p++, digits++;
	} else
		return NULL;
	if (p < e && *p == '.') {
		p++;
		if (p >= e || *p < '0' || *p > '9')
			return NULL;
		while (p < e && *p >= '0' && *p <= '9')
			p++, digits++;
	}
	if (p < e && (*p == 'e' || *p == 'E')) /* left to jansson (range rules) */
		return NULL;
	return digits > SJ_MAX_DIGITS ? NULL : p;
}

static const char *v_val(const char *p, const char *e, int depth);

static const char *v_cont(const char *p, const char *e, int depth)
{
	char close = *p == '{' ? '}' : ']';
	int obj = *p == '{';
	if (depth >= SJ_MAX_DEPTH)
		return NULL;
	p = ws(p + 1, e);
	if (p < e && *p == close)
		return p + 1;
	for (;;) {
		if (obj) {
			if (p >= e || *p != '"' || !(p = v_str(p, e)))
				return NULL;
			p = ws(p, e);
			if (p >= e || *p != ':')
				return NULL;
			p = ws(p + 1, e);
		}
		if (!(p = v_val(p, e, depth + 1)))
			return NULL;
		p = ws(p, e);
		if (p >= e)
			return NULL;
		if (*p == close)
			return p + 1;
		if (*p != ',')
			return NULL;
		p = ws(p + 1, e);
	}
}

static const char *v_lit(const char *p, const char *e, const char *lit)
{
	size_t n = strlen(lit);
	return (size_t)(e - p) >= n && !memcmp(p, lit, n) ? p + n : NULL;
}

static const char *v_val(const char *p, const char *e, int depth)
{
	if (p >= e)
		return NULL;
	switch (*p) {
	case '{':
	case '[': return v_cont(p, e, depth);
	case '"': return v_str(p, e);
	case 't': return v_lit(p, e, "true");
	case 'f': return v_lit(p, e, "false");
	case 'n': return v_lit(p, e, "null");
	default: return v_num(p, e);
	}
}

int sj_parse(const char *body, size_t len, sj_t *root)
{
	const char *e = body + len, *p = ws(body, e);
	if (p >= e || *p != '{')
		return -1;
	const char *q = v_cont(p, e, 0);
	if (!q || ws(q, e) != e)
		return -1;
	root->p = p;
	root->n = (size_t)(q - p);
	return 0;
}

int sj_type(sj_t v)
{
	if (!v.p || !v.n)
		return SJ_NONE;
	switch (v.p[0]) {
	case '{': return SJ_OBJ;
	case '[': return SJ_ARR;
	case '"': return SJ_STR;
	case 't': return SJ_TRUE;
	case 'f': return SJ_FALSE;
	case 'n': return SJ_NULL;
	default: return SJ_NUM;
	}
}

/* a validated string token at p: the position after it (its closing quote is the
 * first one after an even run of backslashes; sj_parse saw it, so the search ends) */
static const char *s_str(const char *p)
{
	for (p++;; p++) {
		p = rawmemchr(p, '"');
		const char *b = p;
		while (b[-1] == '\\') /* stops at the opening quote at the latest */
			b--;
		if (!((p - b) & 1))
			return p + 1;
	}
}

/* a validated value at p: the position after it */
static const char *s_val(const char *p)
{
	if (*p == '"')
		return s_str(p);
	if (*p != '{' && *p != '[') {
		while (*p == '-' || *p == '.' || (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z'))
			p++;
		return p;
	}
	int depth = 0;
	for (;; p++) {
		char c = *p;
		if (c == '"')
			p = s_str(p) - 1;
		else if (c == '{' || c == '[')
			depth++;
		else if ((c == '}' || c == ']') && --depth == 0)
			return p + 1;
	}
}

int sj_iter(sj_t v, int want, sj_it_t *it)
{
	if (sj_type(v) != want)
		return -1;
	it->p = v.p + 1;
	it->end = v.p + v.n - 1; /* the closing bracket */
	return 0;
}

static const char *skip_sep(const char *p, const char *e)
{
	p = ws(p, e);
	if (p < e && *p == ',')
		p = ws(p + 1, e);
	return p;
}

int sj_next_member(sj_it_t *it, sj_t *key, sj_t *val)
{
	const char *p = skip_sep(it->p, it->end);
	if (p >= it->end)
		return 0;
	key->p = p;
	p = s_str(p);
	key->n = (size_t)(p - key->p);
	p = ws(p, it->end);
	p = ws(p + 1, it->end); /* the colon */
	val->p = p;
	p = s_val(p);
	val->n = (size_t)(p - val->p);
	it->p = p;
	return 1;
}

int sj_next_elem(sj_it_t *it, sj_t *val)
{
	const char *p = skip_sep(it->p, it->end);
	if (p >= it->end)
		return 0;
	val->p = p;
	p = s_val(p);
	val->n = (size_t)(p - val->p);
	it->p = p;
	return 1;
}

int sj_has_esc(sj_t t) { return t.n >= 2 && memchr(t.p + 1, '\\', t.n - 2) != NULL; }

int sj_key_is(sj_t key, const char *lit)
{
	size_t n = strlen(lit);
	return key.n == n + 2 && !memcmp(key.p + 1, lit, n);
}

/* decode (out != NULL) or measure string token t; returns the decoded length */
static size_t dec(sj_t t, char *out)
{
	const char *p = t.p + 1, *e = t.p + t.n - 1;
	size_t n = 0;
	while (p < e) {
		const char *b = memchr(p, '\\', (size_t)(e - p));
		size_t run = b ? (size_t)(b - p) : (size_t)(e - p);
		if (out)
			memcpy(out + n, p, run);
		n += run;
		p += run;
		if (!b)
			break;
		char x = p[1], c = 0;
		p += 2;
		switch (x) {
		case 'b': c = '\b'; break;
		case 'f': c = '\f'; break;
		case 'n': c = '\n'; break;
		case 'r': c = '\r'; break;
		case 't': c = '\t'; break;
		case 'u': break;
		default: c = x; break;
		}
		if (x != 'u') {
			if (out)
				out[n] = c;
			n++;
			continue;
		}
		uint32_t u = (uint32_t)hex4(p);
		p += 4;
		if (u >= 0xD800 && u <= 0xDBFF) { /* validated: a low surrogate follows */
			uint32_t l = (uint32_t)hex4(p + 2);
			p += 6;
			u = 0x10000 + ((u - 0xD800) << 10) + (l - 0xDC00);
		}
		unsigned char m[4];
		size_t k;
		if (u < 0x80)
			m[0] = (unsigned char)u, k = 1;
		else if (u < 0x800)
			m[0] = (unsigned char)(0xC0 | (u >> 6)),
			m[1] = (unsigned char)(0x80 | (u & 0x3F)), k = 2;
		else if (u < 0x10000)
			m[0] = (unsigned char)(0xE0 | (u >> 12)),
			m[1] = (unsigned char)(0x80 | ((u >> 6) & 0x3F)),
			m[2] = (unsigned char)(0x80 | (u & 0x3F)), k = 3;
		else
			m[0] = (unsigned char)(0xF0 | (u >> 18)),
			m[1] = (unsigned char)(0x80 | ((u >> 12) & 0x3F)),
			m[2] = (unsigned char)(0x80 | ((u >> 6) & 0x3F)),
			m[3] = (unsigned char)(0x80 | (u & 0x3F)), k = 4;
		if (out)
			memcpy(out + n, m, k);
		n += k;
	}
	if (out)
		out[n] = 0;
	return n;
}

size_t sj_str_len(sj_t t) { return dec(t, NULL); }

size_t sj_str_dec(sj_t t, char *out) { return dec(t, out); }
