/* addr.c -- address normalization: phones to E.164 (NANP rules for +1), emails to a canonical form. */
#include "producer/addr.h"
#include "core/err.h"

#include <string.h>

static int fail(const char **why, const char *reason)
{
	if (why)
		*why = reason;
	return TOCSIN_ERR_INVAL;
}

int addr_phone_norm(const char *s, size_t n, char out[ADDR_MAX], const char **why)
{
	char d[32];
	size_t nd = 0;
	int plus = 0, seen_digit = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= '0' && c <= '9') {
			if (nd >= 20)
				return fail(why, "too many digits");
			d[nd++] = (char)c;
			seen_digit = 1;
		} else if (c == '+') {
			if (seen_digit || plus)
				return fail(why, "misplaced '+'");
			plus = 1;
		} else if (c == ' ' || c == '(' || c == ')' || c == '-' || c == '.' || c == '/' ||
		           c == '\t') {
			continue;
		} else if (c == 0) {
			return fail(why, "NUL byte");
		} else {
			return fail(why, (c == 'x' || c == 'X' || c == '#') ? "extension not allowed"
			                                                    : "invalid character");
		}
	}
	if (nd == 0)
		return fail(why, "no digits");
	const char *p = d;
	size_t np = nd;
	int intl = plus;
	if (!plus && np > 3 && !memcmp(p, "011", 3)) {
		p += 3;
		np -= 3;
		intl = 1;
	}
	if (intl && p[0] != '1') {
		if (p[0] == '0')
			return fail(why, "country code cannot start with 0");
		if (np < 8)
			return fail(why, "too few digits");
		if (np > 15)
			return fail(why, "too many digits");
		out[0] = '+';
		memcpy(out + 1, p, np);
		out[np + 1] = 0;
		return 0;
	}
	/* NANP */
	if (np == 11 && p[0] == '1') {
		p++;
		np--;
	} else if (intl) { /* +1 must be followed by 10 digits */
		return fail(why, np < 11 ? "too few digits" : "too many digits");
	}
	if (np < 10)
		return fail(why, "too few digits");
	if (np > 10)
		return fail(why, "too many digits");
	if (p[0] < '2')
		return fail(why, "invalid area code");
	if (p[1] == '1' && p[2] == '1')
		return fail(why, "invalid area code (N11)");
	if (p[1] == '9')
		return fail(why, "invalid area code (N9X reserved)");
	if (p[3] < '2')
		return fail(why, "invalid exchange code");
	if (p[4] == '1' && p[5] == '1')
		return fail(why, "invalid exchange code (N11)");
	out[0] = '+';
	out[1] = '1';
	memcpy(out + 2, p, 10);
	out[12] = 0;
	return 0;
}

static int local_ok(unsigned char c)
{
	if (c <= ' ' || c >= 0x7f)
		return 0;
	return !strchr("()<>[]:;,@\\\"", c);
}

int addr_email_norm(const char *s, size_t n, char out[ADDR_MAX], const char **why)
{
	while (n && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')) {
		s++;
		n--;
	}
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
		n--;
	if (n == 0)
		return fail(why, "empty");
	if (n > 254)
		return fail(why, "too long");
	const char *at = memchr(s, '@', n);
	if (!at)
		return fail(why, "missing '@'");
	size_t nl = (size_t)(at - s), ndom = n - nl - 1;
	if (nl == 0)
		return fail(why, "empty local part");
	if (nl > 64)
		return fail(why, "local part too long");
	if (ndom == 0)
		return fail(why, "empty domain");
	for (size_t i = 0; i < nl; i++)
		if (!local_ok((unsigned char)s[i]))
			return fail(why, "invalid character in local part");
	if (s[0] == '.' || s[nl - 1] == '.')
		return fail(why, "local part starts or ends with '.'");
	for (size_t i = 1; i < nl; i++)
		if (s[i] == '.' && s[i - 1] == '.')
			return fail(why, "'..' in local part");
	memcpy(out, s, nl + 1);
	char *dom = out + nl + 1;
	size_t label = 0, labels = 0, tld_alpha = 1;
	for (size_t i = 0; i < ndom; i++) {
		unsigned char c = (unsigned char)at[1 + i];
		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		if (c == '.') {
			if (label == 0)
				return fail(why, "empty domain label");
			if (dom[i - 1] == '-')
				return fail(why, "domain label ends with '-'");
			labels++;
			label = 0;
			tld_alpha = 1;
		} else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-') {
			if (c == '-' && label == 0)
				return fail(why, "domain label starts with '-'");
			if (++label > 63)
				return fail(why, "domain label too long");
			if (!(c >= 'a' && c <= 'z'))
				tld_alpha = 0;
		} else if (c == '@') {
			return fail(why, "more than one '@'");
		} else {
			return fail(why, "invalid character in domain");
		}
		dom[i] = (char)c;
	}
	if (label == 0)
		return fail(why, "domain ends with '.'");
	if (dom[ndom - 1] == '-')
		return fail(why, "domain label ends with '-'");
	if (labels == 0)
		return fail(why, "domain has no '.'");
	if (label < 2 || !tld_alpha)
		return fail(why, "invalid top-level domain");
	dom[ndom] = 0;
	return 0;
}
