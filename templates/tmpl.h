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

/* Does the template use field i anywhere? (lets the producer skip work) */
int tmpl_uses_field(const tmpl_t *t, size_t i);

#endif
