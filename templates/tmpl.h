/* tmpl.h -- compile a message template once per campaign, render it per recipient. */
#ifndef TOCSIN_TMPL_H
#define TOCSIN_TMPL_H
#include <stddef.h>

typedef struct tmpl tmpl_t;

typedef enum tmpl_mode {
	TMPL_TEXT = 0, /* SMS text, email subject and text part: values inserted as they are */
	TMPL_HTML = 1, /* email HTML: {{var}} is HTML-escaped, {{{var}}} is raw */
} tmpl_mode_t;

/* Why one recipient could not be rendered (tmpl_render() < 0). */
typedef struct tmpl_why {
	int field;        /* index into the compile-time fields of the missing/bad value, or -1 */
	char reason[160]; /* e.g. "missing field first_name", "invalid UTF-8 in field city" */
} tmpl_why_t;

/* Compile src[0..len) in mode. Every variable is resolved against
 * fields[0..nfields) (the audience's column names, plus any the producer adds
 * such as "unsubscribe_url") once, here; a name not in fields is a compile
 * error. Returns a new template (caller frees with tmpl_free) or NULL with
 * "line:col: what was wrong, what was expected" in err. Any thread; the
 * result is immutable and may be shared by threads. */
tmpl_t *tmpl_compile(const char *src, size_t len, tmpl_mode_t mode, const char *const *fields,
                     size_t nfields, char *err, size_t errlen);
/* Free t; NULL is a no-op. The owner's thread, once no renderer uses t. */
void tmpl_free(tmpl_t *t);

/* Render t for one recipient whose field i has value vals[i] of lens[i] bytes
 * (vals[i] NULL or lens[i] 0: no value). Writes at most outcap bytes including a
 * NUL into out and the length (without the NUL) into *outlen. Allocates nothing.
 * Returns 0; TOCSIN_ERR_INVAL with why filled when the recipient must be
 * rejected (a variable with no value and no default, invalid UTF-8 in a value);
 * TOCSIN_ERR_TOOBIG when out is too small (never a truncated message).
 * Any thread (t is read-only). */
int tmpl_render(const tmpl_t *t, const char *const *vals, const size_t *lens, char *out,
                size_t outcap, size_t *outlen, tmpl_why_t *why);

/* Does the template use field i anywhere, in a tag or a section? (lets the
 * producer skip work) Any thread. */
int tmpl_uses_field(const tmpl_t *t, size_t i);

/* ---- additions (templates owner): options, introspection ---- */

/* Limits: a template source of at most TMPL_MAX_SRC bytes, at most
 * TMPL_MAX_FIELDS fields, sections nested at most TMPL_MAX_DEPTH deep, at
 * most TMPL_MAX_FILTERS filters on one tag. Beyond them compile fails. */
#define TMPL_MAX_SRC (1u << 20)
#define TMPL_MAX_FIELDS 512
#define TMPL_MAX_DEPTH 32
#define TMPL_MAX_FILTERS 8

/* Compile flags. */
#define TMPL_F_MISSING_EMPTY                                                                       \
	0x1u /* a missing value with no default renders as "" instead of
                                     rejecting the recipient (the campaign's explicit choice) */

/* tmpl_compile() with flags (TMPL_F_*). Same ownership and threading. */
tmpl_t *tmpl_compile_ex(const char *src, size_t len, tmpl_mode_t mode, const char *const *fields,
                        size_t nfields, unsigned flags, char *err, size_t errlen);

/* The number of fields t was compiled against, and the name of field i
 * (owned by t, valid until tmpl_free; NULL when i is out of range). Any thread. */
size_t tmpl_nfields(const tmpl_t *t);
/* Does a {{var}} / {{{var}}} tag of t print field i (a section tag alone does not)? Any thread. */
int tmpl_prints_field(const tmpl_t *t, size_t i);
const char *tmpl_field_name(const tmpl_t *t, size_t i);

/* ---- slots: rendering split for vendor substitutions (email batching) ----
 * A template's output is its top-level literal text with, between, its
 * "slots": each {{var}} tag outside any section and each outermost section
 * {{#x}}...{{/x}} / {{^x}}...{{/x}} (with everything inside it). Only slots
 * depend on the recipient, and tmpl_render() is exactly the literal text with
 * each slot replaced by tmpl_render_slot() for that recipient (same errors, in
 * the same order). All of these: any thread, no allocation. */

/* The number of slots of t, in output order. */
size_t tmpl_slots(const tmpl_t *t);
/* The field slot i prints (a tag) or tests (a section, *section = 1), -1 when out of range. */
int tmpl_slot_field(const tmpl_t *t, size_t i, int *section);
/* Does slot i of a render byte for byte like slot j of b for every recipient
 * (same ops, filters, defaults, literal text, escaping and flags)? */
int tmpl_slot_same(const tmpl_t *a, size_t i, const tmpl_t *b, size_t j);
/* Is slot i a tag whose filters are only trim/default (a non-empty value with
 * no white space at its ends and nothing HTML escapes comes out as it is)? */
int tmpl_slot_verbatim(const tmpl_t *t, size_t i);
/* Render slot i alone for one recipient: same contract as tmpl_render(). */
int tmpl_render_slot(const tmpl_t *t, size_t i, const char *const *vals, const size_t *lens,
                     char *out, size_t outcap, size_t *outlen, tmpl_why_t *why);
/* The output with slot i replaced by slotvals[i][0..slotlens[i]) for every
 * slot (e.g. a placeholder): into out[0..outcap) with a NUL, length in
 * *outlen. Returns 0, TOCSIN_ERR_TOOBIG or TOCSIN_ERR_INVAL. */
int tmpl_render_with(const tmpl_t *t, const char *const *slotvals, const size_t *slotlens,
                     char *out, size_t outcap, size_t *outlen);

#endif
