/* tmpl.c -- mustache-style templates: compile once against field names, render per recipient without allocating. */
#include "templates/tmpl.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/near.h"
#include "templates/utf8.h"

enum op_kind { OP_TEXT, OP_VAR, OP_SEC, OP_INV, OP_END };
enum filt_kind { F_UPPER, F_LOWER, F_TITLE, F_TRIM, F_DEFAULT };

typedef struct filt {
	uint8_t kind;
	uint32_t off, len; /* F_DEFAULT: the literal in t->pool */
} filt_t;

typedef struct op {
	uint8_t kind;
	uint8_t raw; /* OP_VAR: {{{x}}}, never HTML-escaped */
	uint8_t nfilt;
	uint8_t has_default;
	int field;         /* OP_VAR / OP_SEC / OP_INV */
	uint32_t off, len; /* OP_TEXT: bytes in t->pool */
	uint32_t jump;     /* OP_SEC / OP_INV: index of the matching OP_END */
	filt_t filt[TMPL_MAX_FILTERS];
} op_t;

struct tmpl {
	tmpl_mode_t mode;
	unsigned flags;
	op_t *ops;
	size_t nops;
	char *pool; /* literal text and default strings */
	size_t nfields;
	char **names;
	uint8_t *used;
	size_t *slot_op; /* first op of each top-level {{var}} or section (tmpl_slots) */
	size_t nslots;
};

/* ---- compile ---- */

typedef struct cc {
	const char *src;
	size_t len;
	size_t pos;
	tmpl_t *t;
	size_t opcap;
	size_t poollen;
	const char *const *fields;
	char *err;
	size_t errlen;
	size_t stack[TMPL_MAX_DEPTH]; /* op index of each open section */
	size_t depth;
} cc_t;

static void pos_linecol(const char *src, size_t at, int *line, int *col)
{
	int l = 1, c = 1;
	for (size_t i = 0; i < at; i++) {
		if (src[i] == '\n') {
			l++;
			c = 1;
		} else if (((unsigned char)src[i] & 0xC0) != 0x80) {
			c++;
		}
	}
	*line = l;
	*col = c;
}

__attribute__((format(printf, 3, 4))) static int cc_err(cc_t *c, size_t at, const char *fmt, ...)
{
	if (!c->err || c->errlen == 0)
		return -1;
	int line, col;
	pos_linecol(c->src, at, &line, &col);
	int n = snprintf(c->err, c->errlen, "%d:%d: ", line, col);
	if (n < 0 || (size_t)n >= c->errlen)
		return -1;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

static op_t *cc_op(cc_t *c, int kind)
{
	if (c->t->nops == c->opcap) {
		size_t ncap = c->opcap ? c->opcap * 2 : 16;
		op_t *n = realloc(c->t->ops, ncap * sizeof *n);
		if (!n)
			return NULL;
		c->t->ops = n;
		c->opcap = ncap;
	}
	op_t *o = &c->t->ops[c->t->nops++];
	memset(o, 0, sizeof *o);
	o->kind = (uint8_t)kind;
	o->field = -1;
	return o;
}

static int cc_text(cc_t *c, size_t from, size_t to)
{
	if (to <= from)
		return 0;
	op_t *last = c->t->nops ? &c->t->ops[c->t->nops - 1] : NULL;
	size_t n = to - from;
	memcpy(c->t->pool + c->poollen, c->src + from, n);
	if (last && last->kind == OP_TEXT && last->off + last->len == c->poollen) {
		last->len += (uint32_t)n;
	} else {
		op_t *o = cc_op(c, OP_TEXT);
		if (!o)
			return cc_err(c, from, "out of memory");
		o->off = (uint32_t)c->poollen;
		o->len = (uint32_t)n;
	}
	c->poollen += n;
	return 0;
}

static int is_ws(char ch) { return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r'; }

static void skip_ws(cc_t *c)
{
	while (c->pos < c->len && is_ws(c->src[c->pos]))
		c->pos++;
}

/* Field names in tags: ASCII letters, digits, '_', '.', '-', and any non-ASCII (UTF-8) letter. */
static int name_char(char ch)
{
	unsigned char c = (unsigned char)ch;
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '.' || c == '-' || c >= 0x80;
}

/* Resolve the name at src[from..to) to a field index, or fail naming the fields. */
static int cc_field(cc_t *c, size_t from, size_t to)
{
	size_t n = to - from;
	for (size_t i = 0; i < c->t->nfields; i++)
		if (strlen(c->t->names[i]) == n && memcmp(c->t->names[i], c->src + from, n) == 0)
			return (int)i;
	char list[512];
	size_t ll = 0;
	list[0] = 0;
	for (size_t i = 0; i < c->t->nfields && ll + 8 < sizeof list; i++) {
		int w = snprintf(list + ll, sizeof list - ll, "%s%s", i ? ", " : "", c->t->names[i]);
		if (w < 0 || (size_t)w >= sizeof list - ll) {
			snprintf(list + ll, sizeof list - ll, ", ...");
			break;
		}
		ll += (size_t)w;
	}
	if (n > 64)
		n = 64;
	char word[65];
	memcpy(word, c->src + from, n);
	word[n] = 0;
	near_t nr;
	near_init(&nr, word);
	for (size_t i = 0; i < c->t->nfields; i++)
		near_offer(&nr, c->t->names[i]);
	const char *best = near_best(&nr);
	if (best)
		cc_err(c, from, "unknown field \"%s\" (did you mean %s?)", word, best);
	else
		cc_err(c, from, "unknown field \"%s\" (fields: %s)", word,
		       c->t->nfields ? list : "none");
	return -1;
}

/* Parse |filter|default:"x" ... into o; c->pos is at the first '|' or the close. */
static int cc_filters(cc_t *c, op_t *o)
{
	for (;;) {
		skip_ws(c);
		if (c->pos >= c->len || c->src[c->pos] != '|')
			return 0;
		c->pos++;
		skip_ws(c);
		size_t f0 = c->pos;
		while (c->pos < c->len &&
		       ((c->src[c->pos] >= 'a' && c->src[c->pos] <= 'z') ||
		        (c->src[c->pos] >= 'A' && c->src[c->pos] <= 'Z') || c->src[c->pos] == '_'))
			c->pos++;
		size_t fl = c->pos - f0;
		if (o->nfilt >= TMPL_MAX_FILTERS)
			return cc_err(c, f0, "too many filters on one tag (at most %d)",
			              TMPL_MAX_FILTERS);
		filt_t *f = &o->filt[o->nfilt];
		const char *fn = c->src + f0;
		if (fl == 5 && memcmp(fn, "upper", 5) == 0)
			f->kind = F_UPPER;
		else if (fl == 5 && memcmp(fn, "lower", 5) == 0)
			f->kind = F_LOWER;
		else if (fl == 5 && memcmp(fn, "title", 5) == 0)
			f->kind = F_TITLE;
		else if (fl == 4 && memcmp(fn, "trim", 4) == 0)
			f->kind = F_TRIM;
		else if (fl == 7 && memcmp(fn, "default", 7) == 0) {
			f->kind = F_DEFAULT;
			skip_ws(c);
			if (c->pos >= c->len || c->src[c->pos] != ':')
				return cc_err(c, c->pos, "expected ':\"text\"' after default");
			c->pos++;
			skip_ws(c);
			if (c->pos >= c->len || (c->src[c->pos] != '"' && c->src[c->pos] != '\''))
				return cc_err(c, c->pos, "expected a quoted string after default:");
			char q = c->src[c->pos];
			size_t q0 = c->pos++;
			f->off = (uint32_t)c->poollen;
			for (;;) {
				if (c->pos >= c->len)
					return cc_err(c, q0,
					              "unterminated string, expected closing %c", q);
				char ch = c->src[c->pos++];
				if (ch == q)
					break;
				if (ch == '\\' && c->pos < c->len &&
				    (c->src[c->pos] == q || c->src[c->pos] == '\\'))
					ch = c->src[c->pos++];
				c->t->pool[c->poollen++] = ch;
			}
			f->len = (uint32_t)(c->poollen - f->off);
			o->has_default = 1;
		} else {
			if (fl == 0)
				return cc_err(c, f0,
				              "expected a filter name after '|' (filters: upper, "
				              "lower, title, trim, default:\"text\")");
			if (fl > 32)
				fl = 32;
			return cc_err(c, f0,
			              "unknown filter \"%.*s\" (filters: upper, lower, title, trim, "
			              "default:\"text\")",
			              (int)fl, fn);
		}
		o->nfilt++;
	}
}

static int cc_expect_close(cc_t *c, size_t tag0, int triple)
{
	skip_ws(c);
	const char *want = triple ? "}}}" : "}}";
	size_t wl = triple ? 3 : 2;
	if (c->pos + wl <= c->len && memcmp(c->src + c->pos, want, wl) == 0) {
		c->pos += wl;
		return 0;
	}
	if (c->pos >= c->len)
		return cc_err(c, tag0, "unclosed tag, expected \"%s\"", want);
	/* no close before the next tag or the end: say so rather than complain about a character */
	const char *close = memmem(c->src + c->pos, c->len - c->pos, want, wl);
	const char *next = memmem(c->src + c->pos, c->len - c->pos, "{{", 2);
	if (!close || (next && next < close))
		return cc_err(c, tag0, "unclosed tag, expected \"%s\"", want);
	unsigned char ch = (unsigned char)c->src[c->pos];
	if (ch >= 0x20 && ch < 0x7f)
		return cc_err(c, c->pos, "expected \"%s\" or \"|filter\", found '%c'", want, ch);
	return cc_err(c, c->pos, "expected \"%s\" or \"|filter\", found byte 0x%02x", want, ch);
}

static int cc_tag(cc_t *c)
{
	size_t tag0 = c->pos;
	int triple = 0;
	c->pos += 2;
	if (c->pos < c->len && c->src[c->pos] == '{') {
		triple = 1;
		c->pos++;
	}
	skip_ws(c);
	char sigil = 0;
	if (!triple && c->pos < c->len &&
	    (c->src[c->pos] == '#' || c->src[c->pos] == '^' || c->src[c->pos] == '/' ||
	     c->src[c->pos] == '!')) {
		sigil = c->src[c->pos++];
	}
	if (sigil == '!') { /* comment: up to the next }} */
		for (size_t i = c->pos; i + 1 < c->len; i++)
			if (c->src[i] == '}' && c->src[i + 1] == '}') {
				c->pos = i + 2;
				return 0;
			}
		return cc_err(c, tag0, "unclosed comment, expected \"}}\"");
	}
	skip_ws(c);
	size_t n0 = c->pos;
	while (c->pos < c->len && name_char(c->src[c->pos]))
		c->pos++;
	size_t n1 = c->pos;
	if (n1 == n0) {
		if (c->pos >= c->len)
			return cc_err(c, tag0, "unclosed tag, expected a field name and \"}}\"");
		return cc_err(c, n0, "expected a field name");
	}
	int field = cc_field(c, n0, n1);
	if (field < 0)
		return -1;
	if (sigil) {
		skip_ws(c);
		if (c->pos < c->len && c->src[c->pos] == '|')
			return cc_err(c, c->pos, "a section tag takes no filters, expected \"}}\"");
	}
	if (sigil == '#' || sigil == '^') {
		if (c->depth >= TMPL_MAX_DEPTH)
			return cc_err(c, tag0, "sections nested too deep (at most %d)", TMPL_MAX_DEPTH);
		if (cc_expect_close(c, tag0, 0))
			return -1;
		op_t *o = cc_op(c, sigil == '#' ? OP_SEC : OP_INV);
		if (!o)
			return cc_err(c, tag0, "out of memory");
		o->field = field;
		o->off = (uint32_t)tag0; /* where it opened, for errors */
		c->stack[c->depth++] = c->t->nops - 1;
		c->t->used[field] = 1;
		return 0;
	}
	if (sigil == '/') {
		if (cc_expect_close(c, tag0, 0))
			return -1;
		if (c->depth == 0)
			return cc_err(c, tag0, "{{/%s}} closes no open section", c->t->names[field]);
		op_t *open = &c->t->ops[c->stack[c->depth - 1]];
		if (open->field != field) {
			int l, col;
			pos_linecol(c->src, open->off, &l, &col);
			return cc_err(c, tag0,
			              "{{/%s}} does not match {{%c%s}} opened at %d:%d, expected {{/%s}}",
			              c->t->names[field], open->kind == OP_SEC ? '#' : '^',
			              c->t->names[open->field], l, col, c->t->names[open->field]);
		}
		size_t oi = c->stack[--c->depth];
		op_t *o = cc_op(c, OP_END);
		if (!o)
			return cc_err(c, tag0, "out of memory");
		o->field = field;
		c->t->ops[oi].jump = (uint32_t)(c->t->nops - 1);
		return 0;
	}
	op_t *o = cc_op(c, OP_VAR);
	if (!o)
		return cc_err(c, tag0, "out of memory");
	o->field = field;
	o->raw = (uint8_t)triple;
	c->t->used[field] = 1;
	if (cc_filters(c, o))
		return -1;
	return cc_expect_close(c, tag0, triple);
}

tmpl_t *tmpl_compile_ex(const char *src, size_t len, tmpl_mode_t mode, const char *const *fields,
                        size_t nfields, unsigned flags, char *err, size_t errlen)
{
	if (err && errlen)
		err[0] = 0;
	if (!src && len) {
		if (err)
			snprintf(err, errlen, "1:1: no template source");
		return NULL;
	}
	if (len > TMPL_MAX_SRC) {
		if (err)
			snprintf(err, errlen, "1:1: template is %zu bytes, at most %u allowed", len,
			         (unsigned)TMPL_MAX_SRC);
		return NULL;
	}
	if (nfields > TMPL_MAX_FIELDS || (nfields && !fields)) {
		if (err)
			snprintf(err, errlen, "1:1: %zu fields, at most %d allowed", nfields,
			         TMPL_MAX_FIELDS);
		return NULL;
	}
	if (mode != TMPL_TEXT && mode != TMPL_HTML) {
		if (err)
			snprintf(err, errlen, "1:1: unknown template mode %d", (int)mode);
		return NULL;
	}
	cc_t c = {.src = src ? src : "", .len = len, .fields = fields, .err = err, .errlen = errlen};
	size_t bad;
	if (!utf8_valid(c.src, len, &bad)) {
		cc_err(&c, bad, "invalid UTF-8 in template (byte 0x%02x)", (unsigned char)c.src[bad]);
		return NULL;
	}
	tmpl_t *t = calloc(1, sizeof *t);
	if (!t)
		goto nomem;
	c.t = t;
	t->mode = mode;
	t->flags = flags;
	t->pool = malloc(len + 1);
	t->names = calloc(nfields ? nfields : 1, sizeof *t->names);
	t->used = calloc(nfields ? nfields : 1, 1);
	if (!t->pool || !t->names || !t->used)
		goto nomem;
	for (size_t i = 0; i < nfields; i++) {
		t->names[i] = strdup(fields[i] ? fields[i] : "");
		if (!t->names[i])
			goto nomem;
		t->nfields = i + 1;
	}
	while (c.pos < len) {
		const char *q = memmem(c.src + c.pos, len - c.pos, "{{", 2);
		size_t at = q ? (size_t)(q - c.src) : len;
		if (cc_text(&c, c.pos, at))
			goto fail;
		c.pos = at;
		if (!q)
			break;
		if (cc_tag(&c))
			goto fail;
	}
	if (c.depth) {
		op_t *open = &t->ops[c.stack[c.depth - 1]];
		cc_err(&c, open->off, "section {{%c%s}} is never closed, expected {{/%s}}",
		       open->kind == OP_SEC ? '#' : '^', t->names[open->field], t->names[open->field]);
		goto fail;
	}
	for (size_t i = 0; i < t->nops; i++)
		t->nslots += t->ops[i].kind == OP_VAR || t->ops[i].kind == OP_SEC ||
		             t->ops[i].kind == OP_INV;
	t->slot_op = malloc((t->nslots ? t->nslots : 1) * sizeof *t->slot_op);
	if (!t->slot_op)
		goto nomem;
	t->nslots = 0;
	for (size_t i = 0; i < t->nops; i++) {
		int k = t->ops[i].kind;
		if (k != OP_VAR && k != OP_SEC && k != OP_INV)
			continue;
		t->slot_op[t->nslots++] = i;
		if (k != OP_VAR)
			i = t->ops[i].jump; /* the section's body belongs to its slot */
	}
	return t;
nomem:
	if (err)
		snprintf(err, errlen, "1:1: out of memory compiling template");
fail:
	tmpl_free(t);
	return NULL;
}

tmpl_t *tmpl_compile(const char *src, size_t len, tmpl_mode_t mode, const char *const *fields,
                     size_t nfields, char *err, size_t errlen)
{
	return tmpl_compile_ex(src, len, mode, fields, nfields, 0, err, errlen);
}

void tmpl_free(tmpl_t *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->nfields; i++)
		free(t->names[i]);
	free(t->names);
	free(t->used);
	free(t->slot_op);
	free(t->pool);
	free(t->ops);
	free(t);
}

int tmpl_uses_field(const tmpl_t *t, size_t i) { return t && i < t->nfields && t->used[i]; }

int tmpl_prints_field(const tmpl_t *t, size_t i)
{
	if (!t || i >= t->nfields)
		return 0;
	for (size_t k = 0; k < t->nops; k++)
		if (t->ops[k].kind == OP_VAR && t->ops[k].field == (int)i)
			return 1;
	return 0;
}

size_t tmpl_nfields(const tmpl_t *t) { return t ? t->nfields : 0; }

const char *tmpl_field_name(const tmpl_t *t, size_t i)
{
	return t && i < t->nfields ? t->names[i] : NULL;
}

/* ---- render ---- */

/* Case mapping for ASCII and Latin-1 letters (same byte length both ways). */
static void case_map(char *s, size_t n, int mode /* 0 lower, 1 upper, 2 title */)
{
	int word_start = 1;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		int up = mode == 1 || (mode == 2 && word_start);
		int letter = 0;
		if (ch >= 'a' && ch <= 'z') {
			letter = 1;
			if (up)
				s[i] = (char)(ch - 32);
		} else if (ch >= 'A' && ch <= 'Z') {
			letter = 1;
			if (!up)
				s[i] = (char)(ch + 32);
		} else if (ch == 0xC3 && i + 1 < n) {
			unsigned char d = (unsigned char)s[i + 1];
			if (d >= 0x80 && d <= 0x9E && d != 0x97) { /* À..Þ except × */
				letter = 1;
				if (!up)
					s[i + 1] = (char)(d + 0x20);
			} else if (d >= 0xA0 && d <= 0xBE && d != 0xB7) { /* à..þ except ÷ */
				letter = 1;
				if (up)
					s[i + 1] = (char)(d - 0x20);
			} else if (d == 0x9F || d == 0xBF) { /* ß ÿ: no one-char upper case */
				letter = 1;
			}
			i++;
		} else if (ch >= 0x80) {
			/* other scripts: left as they are, but a lead byte starts or continues a word */
			letter = ch >= 0xC0 ? 1 : !word_start;
		} else if (ch == '\'') {
			letter = !word_start; /* o'brien -> O'brien, don't -> Don't */
		}
		word_start = !letter;
	}
}

static size_t html_extra(const char *s, size_t n)
{
	size_t e = 0;
	for (size_t i = 0; i < n; i++) {
		switch (s[i]) {
		case '&': e += 4; break;  /* &amp; */
		case '<': e += 3; break;  /* &lt; */
		case '>': e += 3; break;  /* &gt; */
		case '"': e += 5; break;  /* &quot; */
		case '\'': e += 4; break; /* &#39; */
		default: break;
		}
	}
	return e;
}

/* Escape s[0..n) in place, growing it to n + extra bytes (room checked by the caller). */
static void html_escape_inplace(char *s, size_t n, size_t extra)
{
	char *w = s + n + extra;
	for (size_t i = n; i-- > 0;) {
		const char *rep = NULL;
		size_t rl = 0;
		switch (s[i]) {
		case '&': rep = "&amp;", rl = 5; break;
		case '<': rep = "&lt;", rl = 4; break;
		case '>': rep = "&gt;", rl = 4; break;
		case '"': rep = "&quot;", rl = 6; break;
		case '\'': rep = "&#39;", rl = 5; break;
		default: *--w = s[i]; continue;
		}
		w -= rl;
		memcpy(w, rep, rl);
	}
}

static int why_set(tmpl_why_t *why, int field, const char *fmt, const char *name)
{
	if (why) {
		why->field = field;
		snprintf(why->reason, sizeof why->reason, fmt, name);
	}
	return TOCSIN_ERR_INVAL;
}

static int too_big(tmpl_why_t *why, size_t cap)
{
	if (why) {
		why->field = -1;
		snprintf(why->reason, sizeof why->reason, "rendered message exceeds %zu bytes",
		         cap ? cap - 1 : 0);
	}
	return TOCSIN_ERR_TOOBIG;
}

/* Render ops[from..to) after out[0..*po), advancing *po; out[outcap - 1] is kept for the NUL. */
static int render_ops(const tmpl_t *t, size_t from, size_t to, const char *const *vals,
                      const size_t *lens, char *out, size_t outcap, size_t *po, tmpl_why_t *why)
{
	size_t o = *po;
	const size_t room = outcap - 1; /* keep one byte for the NUL */
	const op_t *ops = t->ops;
	for (size_t i = from; i < to; i++) {
		const op_t *op = &ops[i];
		switch (op->kind) {
		case OP_TEXT:
			if (op->len > room - o)
				return too_big(why, outcap);
			memcpy(out + o, t->pool + op->off, op->len);
			o += op->len;
			break;
		case OP_SEC:
		case OP_INV: {
			int has = vals[op->field] && lens[op->field] > 0;
			if (has != (op->kind == OP_SEC))
				i = op->jump; /* skip the body; the loop steps past the END */
			break;
		}
		case OP_END: break;
		case OP_VAR: {
			const char *v = vals[op->field];
			size_t vl = v ? lens[op->field] : 0;
			if (vl) {
				size_t bad;
				if (!utf8_valid(v, vl, &bad))
					return why_set(why, op->field, "invalid UTF-8 in field %s",
					               t->names[op->field]);
				if (vl > room - o)
					return too_big(why, outcap);
				memcpy(out + o, v, vl);
			}
			char *s = out + o;
			size_t n = vl;
			for (unsigned k = 0; k < op->nfilt; k++) {
				const filt_t *f = &op->filt[k];
				switch (f->kind) {
				case F_UPPER: case_map(s, n, 1); break;
				case F_LOWER: case_map(s, n, 0); break;
				case F_TITLE: case_map(s, n, 2); break;
				case F_TRIM: {
					size_t a = 0, b = n;
					while (a < b && is_ws(s[a]))
						a++;
					while (b > a && is_ws(s[b - 1]))
						b--;
					if (a)
						memmove(s, s + a, b - a);
					n = b - a;
					break;
				}
				case F_DEFAULT:
					if (n == 0) {
						if (f->len > room - o)
							return too_big(why, outcap);
						memcpy(s, t->pool + f->off, f->len);
						n = f->len;
					}
					break;
				}
			}
			if (n == 0 && !op->has_default && !(t->flags & TMPL_F_MISSING_EMPTY))
				return why_set(why, op->field, "missing field %s", t->names[op->field]);
			if (t->mode == TMPL_HTML && !op->raw) {
				size_t extra = html_extra(s, n);
				if (extra) {
					if (n + extra > room - o)
						return too_big(why, outcap);
					html_escape_inplace(s, n, extra);
					n += extra;
				}
			}
			o += n;
			break;
		}
		}
	}
	*po = o;
	return 0;
}

static int render_range(const tmpl_t *t, size_t from, size_t to, const char *const *vals,
                        const size_t *lens, char *out, size_t outcap, size_t *outlen, tmpl_why_t *why)
{
	if (why) {
		why->field = -1;
		why->reason[0] = 0;
	}
	if (outlen)
		*outlen = 0;
	if (!t || !out || outcap == 0 || (t->nfields && (!vals || !lens)))
		return TOCSIN_ERR_INVAL;
	size_t o = 0;
	int rc = render_ops(t, from, to, vals, lens, out, outcap, &o, why);
	if (rc)
		return rc;
	out[o] = 0;
	if (outlen)
		*outlen = o;
	return 0;
}

int tmpl_render(const tmpl_t *t, const char *const *vals, const size_t *lens, char *out,
                size_t outcap, size_t *outlen, tmpl_why_t *why)
{
	return render_range(t, 0, t ? t->nops : 0, vals, lens, out, outcap, outlen, why);
}

/* ---- slots: the parts of the output that depend on the recipient ---- */

size_t tmpl_slots(const tmpl_t *t) { return t ? t->nslots : 0; }

int tmpl_slot_field(const tmpl_t *t, size_t i, int *section)
{
	if (!t || i >= t->nslots)
		return -1;
	const op_t *o = &t->ops[t->slot_op[i]];
	if (section)
		*section = o->kind != OP_VAR;
	return o->field;
}

/* one past the last op of slot i */
static size_t slot_end(const tmpl_t *t, size_t i)
{
	const op_t *o = &t->ops[t->slot_op[i]];
	return o->kind == OP_VAR ? t->slot_op[i] + 1 : (size_t)o->jump + 1;
}

int tmpl_render_slot(const tmpl_t *t, size_t i, const char *const *vals, const size_t *lens,
                     char *out, size_t outcap, size_t *outlen, tmpl_why_t *why)
{
	if (!t || i >= t->nslots)
		return TOCSIN_ERR_INVAL;
	return render_range(t, t->slot_op[i], slot_end(t, i), vals, lens, out, outcap, outlen, why);
}

/* does op a render like op b (a in ta, b in tb) for every recipient? */
static int op_same(const tmpl_t *ta, const op_t *a, const tmpl_t *tb, const op_t *b)
{
	if (a->kind != b->kind || a->field != b->field)
		return 0;
	switch (a->kind) {
	case OP_TEXT:
		return a->len == b->len && !memcmp(ta->pool + a->off, tb->pool + b->off, a->len);
	case OP_VAR:
		if ((ta->mode == TMPL_HTML && !a->raw) != (tb->mode == TMPL_HTML && !b->raw) ||
		    a->nfilt != b->nfilt || a->has_default != b->has_default ||
		    (ta->flags & TMPL_F_MISSING_EMPTY) != (tb->flags & TMPL_F_MISSING_EMPTY))
			return 0;
		for (unsigned k = 0; k < a->nfilt; k++) {
			const filt_t *fa = &a->filt[k], *fb = &b->filt[k];
			if (fa->kind != fb->kind ||
			    (fa->kind == F_DEFAULT &&
			     (fa->len != fb->len ||
			      memcmp(ta->pool + fa->off, tb->pool + fb->off, fa->len))))
				return 0;
		}
		return 1;
	default: return 1;
	}
}

int tmpl_slot_same(const tmpl_t *a, size_t i, const tmpl_t *b, size_t j)
{
	if (!a || !b || i >= a->nslots || j >= b->nslots)
		return 0;
	size_t a0 = a->slot_op[i], a1 = slot_end(a, i), b0 = b->slot_op[j], b1 = slot_end(b, j);
	if (a1 - a0 != b1 - b0)
		return 0;
	for (size_t k = 0; k < a1 - a0; k++) {
		const op_t *x = &a->ops[a0 + k], *y = &b->ops[b0 + k];
		if (!op_same(a, x, b, y))
			return 0;
		if ((x->kind == OP_SEC || x->kind == OP_INV) && x->jump - a0 != y->jump - b0)
			return 0;
	}
	return 1;
}

int tmpl_slot_verbatim(const tmpl_t *t, size_t i)
{
	if (!t || i >= t->nslots)
		return 0;
	const op_t *o = &t->ops[t->slot_op[i]];
	if (o->kind != OP_VAR)
		return 0;
	for (unsigned f = 0; f < o->nfilt; f++)
		if (o->filt[f].kind != F_TRIM && o->filt[f].kind != F_DEFAULT)
			return 0;
	return 1;
}

int tmpl_render_with(const tmpl_t *t, const char *const *slotvals, const size_t *slotlens,
                     char *out, size_t outcap, size_t *outlen)
{
	if (outlen)
		*outlen = 0;
	if (!t || !out || outcap == 0 || (t->nslots && (!slotvals || !slotlens)))
		return TOCSIN_ERR_INVAL;
	size_t o = 0, s = 0;
	for (size_t i = 0; i < t->nops;) {
		const char *p;
		size_t n;
		if (s < t->nslots && t->slot_op[s] == i) {
			p = slotvals[s];
			n = slotlens[s];
			i = slot_end(t, s++);
		} else { /* top-level text (comments leave nothing) */
			const op_t *op = &t->ops[i++];
			p = t->pool + op->off;
			n = op->kind == OP_TEXT ? op->len : 0;
		}
		if (n > outcap - 1 - o)
			return TOCSIN_ERR_TOOBIG;
		if (n)
			memcpy(out + o, p, n);
		o += n;
	}
	out[o] = 0;
	if (outlen)
		*outlen = o;
	return 0;
}
