/* sim_json.h -- a non-allocating JSON scanner for the emulator's hot request bodies (SendGrid). */
#ifndef TOCSIN_SIM_JSON_H
#define TOCSIN_SIM_JSON_H
#include <stddef.h>

/* One JSON value's raw text inside the caller's body (not a copy, not NUL-terminated). */
typedef struct sj {
	const char *p;
	size_t n;
} sj_t;

enum { SJ_NONE = 0, SJ_OBJ, SJ_ARR, SJ_STR, SJ_NUM, SJ_TRUE, SJ_FALSE, SJ_NULL };

/* Validate body[0..len) as exactly one JSON object (surrounding whitespace
 * allowed) that jansson's json_loadb(flags 0) loads to the same value. 0 with
 * *root spanning the object; -1 when it is not valid JSON, or uses something
 * the scanner leaves to jansson (\u0000, nesting deeper than 64, numbers of
 * more than 15 digits or with an exponent): the caller falls back to jansson.
 * Allocates nothing, never reads past len. Any thread. */
int sj_parse(const char *body, size_t len, sj_t *root);

/* The type (SJ_*) of a value from a validated document; SJ_NONE for an empty span. */
int sj_type(sj_t v);

/* Iteration over the members of an object or the elements of an array of a
 * validated document (sj_parse returned 0). All calls below read only the
 * caller's body (which must outlive the spans), allocate nothing, and may be
 * called from any thread. */
typedef struct sj_it {
	const char *p, *end;
} sj_it_t;
/* Start iterating v; -1 when v is not of type want (SJ_OBJ or SJ_ARR). */
int sj_iter(sj_t v, int want, sj_it_t *it);
/* Next member: *key is the raw string token including its quotes; 1 when
 * there was one, 0 at the end. */
int sj_next_member(sj_it_t *it, sj_t *key, sj_t *val);
/* Next element: 1 when there was one, 0 at the end. */
int sj_next_elem(sj_it_t *it, sj_t *val);

/* 1 when the string token t (quotes included) contains an escape. */
int sj_has_esc(sj_t t);
/* 1 when the key token (quotes included) is exactly lit with no escapes. */
int sj_key_is(sj_t key, const char *lit);
/* The decoded length of string token t (quotes included); t must be valid. */
size_t sj_str_len(sj_t t);
/* Decode string token t (quotes included) into out, which must hold
 * sj_str_len(t) + 1 bytes; NUL-terminated. Returns the decoded length. */
size_t sj_str_dec(sj_t t, char *out);

#endif
