/* email.h -- email parts (subject/text/html) from one recipient record, one-click unsubscribe tokens, URLs and headers. */
#ifndef TOCSIN_EMAIL_H
#define TOCSIN_EMAIL_H
#include <stddef.h>

#include "core/cfg.h"
#include "templates/tmpl.h"

/* The field every email body must print: the per-recipient unsubscribe URL. */
#define EMAIL_UNSUB_FIELD "unsubscribe_url"
/* Default name of the environment variable holding the unsubscribe HMAC key
 * (config: "email": {"unsubscribe_key_env": "..."}). */
#define EMAIL_UNSUB_KEY_ENV_DEFAULT "TOCSIN_UNSUB_KEY"
#define EMAIL_UNSUB_KEY_MIN 16 /* bytes of key at least */
#define EMAIL_CAMPAIGN_MAX 255 /* bytes of campaign id in a token */
#define EMAIL_ADDR_MAX 320     /* bytes of address in a token */
#define EMAIL_TOKEN_MAX 832    /* base64url token, NUL included */
#define EMAIL_URL_MAX 1536     /* unsubscribe URL, NUL included */
/* RFC 8058 */
#define EMAIL_LU_POST "List-Unsubscribe=One-Click"

/* ---- unsubscribe tokens ---- */

/* A token is base64url(version | campaign length | campaign | address |
 * HMAC-SHA256(key, all of that)): opaque in the URL and impossible to alter or
 * forge without the key; the tracker recovers campaign and address from it. */
typedef struct email_unsub email_unsub_t;

/* A signer/verifier with key[0..keylen) (at least EMAIL_UNSUB_KEY_MIN bytes;
 * copied) and the public base URL of the tracker (e.g. "https://t.example.org";
 * copied; may be NULL for a verifier only). Returns a new object (caller frees
 * with email_unsub_free) or NULL with the reason in err. Any thread; the
 * result is immutable and may be shared by threads. */
email_unsub_t *email_unsub_new(const void *key, size_t keylen, const char *base_url, char *err,
                               size_t errlen);
/* The same from the configuration: the key from the environment variable named
 * by "email"."unsubscribe_key_env" (default TOCSIN_UNSUB_KEY), the base URL
 * from tracker.public_url, else "http://<tracker.listen>" with a warning
 * logged. The key is never logged or copied into err. Main thread. */
email_unsub_t *email_unsub_from_cfg(const cfg_t *cfg, char *err, size_t errlen);
/* Free u and wipe its key state; NULL is a no-op. The owner's thread. */
void email_unsub_free(email_unsub_t *u);

/* Write the token for (campaign, addr[0..addrlen)) into out[0..cap) with a
 * NUL; *outlen = its length. Returns 0, TOCSIN_ERR_INVAL (campaign or address
 * empty or too long) or TOCSIN_ERR_TOOBIG (out too small). Allocates nothing.
 * Any thread. */
int email_unsub_token(const email_unsub_t *u, const char *campaign, const char *addr,
                      size_t addrlen, char *out, size_t cap, size_t *outlen);
/* "<base_url>/u/<token>" the same way; TOCSIN_ERR_CONFIG when u has no base URL. */
int email_unsub_url(const email_unsub_t *u, const char *campaign, const char *addr, size_t addrlen,
                    char *out, size_t cap, size_t *outlen);
/* Verify token[0..len) (as found after "/u/"; a trailing query string or
 * slash is not accepted) and extract its campaign and address as NUL-terminated
 * strings into campaign[ccap] and addr[acap]. Returns 0, TOCSIN_ERR_INVAL for
 * any malformed, altered or forged token (constant-time MAC comparison), or
 * TOCSIN_ERR_TOOBIG when an output is too small. Allocates nothing. Any thread
 * (the tracker calls it for POST /u/<token>). */
int email_unsub_verify(const email_unsub_t *u, const char *token, size_t len, char *campaign,
                       size_t ccap, char *addr, size_t acap);
/* The RFC 8058 header pair for url as a JSON object (msg_out_t.headers):
 * {"List-Unsubscribe":"<url>","List-Unsubscribe-Post":"List-Unsubscribe=One-Click"}
 * Returns 0 or TOCSIN_ERR_TOOBIG. Any thread. */
int email_unsub_headers(const char *url, size_t urllen, char *out, size_t cap, size_t *outlen);

/* ---- email templates ---- */

typedef struct email_tmpl email_tmpl_t;

/* Compile the subject (text), text part and HTML part (each src/len; text or
 * html may be NULL, not both) against the audience fields; "unsubscribe_url"
 * is added to the fields when absent. Refused (NULL, reason in err) when the
 * subject is empty, or when a body part given does not print
 * {{unsubscribe_url}}: every email must carry a visible unsubscribe link.
 * Errors start with the part: "html:3:7: unknown field ...". flags: TMPL_F_*.
 * Caller frees with email_free. Any thread; the result is immutable. */
email_tmpl_t *email_compile(const char *subject, size_t slen, const char *text, size_t tlen,
                            const char *html, size_t hlen, const char *const *fields,
                            size_t nfields, unsigned flags, char *err, size_t errlen);
/* Free e; NULL is a no-op. The owner's thread. */
void email_free(email_tmpl_t *e);

/* One rendered email; the strings point into the caller's buffer. */
typedef struct email_parts {
	const char *subject;
	size_t subject_len;
	const char *text; /* NULL when the campaign has no text part */
	size_t text_len;
	const char *html; /* NULL when the campaign has no HTML part */
	size_t html_len;
	const char *unsub_url; /* the recipient's unsubscribe URL */
	size_t unsub_url_len;
	const char *headers; /* email_unsub_headers() JSON for msg_out_t.headers */
	size_t headers_len;
	/* email_render_subs() only: the per-recipient substitutions as a JSON object
	 * for msg_out_t.subs ({"unsubscribe_url":"<url>"}), or NULL when the parts
	 * were rendered inline */
	const char *subs;
	size_t subs_len;
	int inline_why; /* EMAIL_INLINE_*: EMAIL_INLINE_NONE when subs is set */
} email_parts_t;

/* Why an email went inline (email_parts_t.inline_why). */
enum {
	EMAIL_INLINE_NONE = 0, /* batched: shared parts + subs */
	EMAIL_INLINE_ASKED,    /* email_render(): inline by request (preview) */
	EMAIL_INLINE_TEMPLATE, /* the template's own text spells "%recipient" (Mailgun would replace it) */
	EMAIL_INLINE_URL, /* the unsubscribe URL holds a character HTML escapes, '{', '}' or '%' */
	EMAIL_INLINE_VALUE, /* a rendered value holds '{' or "%recipient", or a line break in the subject */
	EMAIL_INLINE_SIZE, /* the substitutions would reach EMAIL_SUBS_MAX bytes (or the buffer) */
	EMAIL_INLINE_NREASONS
};
/* SendGrid's cap on one personalization's substitutions, keys
 * ("{{{tocsin:name}}}") and values together: the substitutions an email
 * carries stay under it as JSON (so also decoded), else it goes inline. */
#define EMAIL_SUBS_MAX 10000
/* A short name for an EMAIL_INLINE_* reason (static string). Any thread. */
const char *email_inline_name(int why);

/* The digest of what one recipient reads: hex SHA-256 over subject, text and
 * html, each as a presence byte, a 64-bit big-endian length and its bytes
 * (text/html NULL = absent). The emulator's GET /_sim/email/digests and
 * `tocsin preview --digests` print it, so a test compares the two. Any thread. */
#define EMAIL_DIGEST_HEX 65
void email_digest(const char *subject, size_t slen, const char *text, size_t tlen, const char *html,
                  size_t hlen, char hex[EMAIL_DIGEST_HEX]);

/* Render e for one recipient (vals/lens: the audience fields as compiled,
 * without unsubscribe_url) into buf[0..cap): the unsubscribe URL for
 * (campaign, addr), its headers, subject, text and html, each NUL-terminated,
 * pointed to by *out. Returns 0; TOCSIN_ERR_INVAL with why (missing field,
 * invalid UTF-8, a line break in the subject); TOCSIN_ERR_TOOBIG when buf is
 * too small. Allocates nothing. Any thread. */
int email_render(const email_tmpl_t *e, const email_unsub_t *u, const char *campaign,
                 const char *addr, size_t addrlen, const char *const *vals, const size_t *lens,
                 char *buf, size_t cap, email_parts_t *out, tmpl_why_t *why);

/* The placeholder email_render_subs() prints where the unsubscribe URL goes:
 * "{{{tocsin:unsubscribe_url}}}" (MSG_SUB_PREFIX + name + MSG_SUB_SUFFIX). */
#define EMAIL_UNSUB_PLACEHOLDER "{{{tocsin:" EMAIL_UNSUB_FIELD "}}}"

/* Like email_render(), but for batching: every part of the output that depends
 * on the recipient -- each {{value}} tag and each outermost section, with its
 * filters, default, HTML escaping and the text inside the section -- is a
 * placeholder MSG_SUB_PREFIX name MSG_SUB_SUFFIX in shared parts that every
 * recipient of e gets byte for byte (out->subject/text/html point into e:
 * valid until email_free), and out->subs holds {"name":"rendered piece",...}
 * for msg_out_t.subs. Identical pieces share one name (a field printed twice
 * the same way); the unsubscribe URL printed verbatim (any part, any escaping:
 * it has nothing to escape) is "unsubscribe_url"; others are named after
 * their field ("first_name", "first_name_2" for a second rendering of it,
 * "sec_city" for a section). Replacing each placeholder by its value gives
 * exactly email_render()'s parts. Falls back to email_render() for this
 * recipient (out->subs NULL, out->inline_why the reason) when that would not
 * be exact at a vendor or would break a vendor limit: see EMAIL_INLINE_*.
 * out->headers stays per recipient (List-Unsubscribe). Same returns,
 * ownership (but for the shared parts) and threading as email_render(), but
 * for buffer size: buf needs room for the pieces, not the whole parts, so a
 * recipient may be batched where email_render() would answer TOOBIG. */
int email_render_subs(const email_tmpl_t *e, const email_unsub_t *u, const char *campaign,
                      const char *addr, size_t addrlen, const char *const *vals, const size_t *lens,
                      char *buf, size_t cap, email_parts_t *out, tmpl_why_t *why);
/* Would email_render_subs() use the placeholder for recipients of e at all
 * (the template-level conditions)? Any thread. */
int email_subs_possible(const email_tmpl_t *e);

#endif
