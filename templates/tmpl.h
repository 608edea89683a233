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
#define TMPL_F_MISSING_EMPTY 0x1u /* a missing value with no default renders as "" instead of
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
/* Does every tag of t that prints field i keep the value's letters as they
 * are (no upper/lower/title filter; trim and default are allowed)? 1 also when
 * no tag prints it. Lets the email renderer put a placeholder where such a
 * value goes. Any thread. */
int tmpl_field_verbatim(const tmpl_t *t, size_t i);

#endif
