/* addr.h -- address normalization: phones to E.164 (NANP rules for +1), emails to a canonical form. */
#ifndef TOCSIN_ADDR_H
#define TOCSIN_ADDR_H
#include <stddef.h>

#define ADDR_MAX 256 /* longest normalized address, NUL included */

/* Normalize the phone number s[0..n) to E.164 into out[ADDR_MAX].
 * Punctuation (spaces, ()-./) is stripped; "+CC..." and "011CC..." are
 * international (8..15 digits); anything else is NANP with the default
 * country +1: 10 digits or 11 with a leading 1, area code and exchange
 * [2-9]XX and not N11, area code not N9X. Returns 0, or TOCSIN_ERR_INVAL
 * with a short static reason in *why (e.g. "too few digits"). Allocates
 * nothing. Any thread. */
int addr_phone_norm(const char *s, size_t n, char out[ADDR_MAX], const char **why);

/* Normalize the email s[0..n): surrounding whitespace trimmed, the domain
 * lowercased; one '@', a local part of 1..64 printable characters without
 * spaces or ()<>[]:;,@\", a domain of dot-separated labels [a-z0-9-] (not
 * starting or ending with '-') with at least two labels and a TLD of 2+
 * letters; 254 bytes at most. Returns 0 or TOCSIN_ERR_INVAL with *why. Any thread. */
int addr_email_norm(const char *s, size_t n, char out[ADDR_MAX], const char **why);

#endif
