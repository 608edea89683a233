/* num.c -- strict decimal integer parsing: the whole string, in range, or an error. */
#include "core/num.h"

#include "core/err.h"

int num_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
	if (!s)
		return TOCSIN_ERR_INVAL;
	int neg = *s == '-';
	const char *p = s + neg;
	if (!*p)
		return TOCSIN_ERR_INVAL;
	uint64_t v = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	int big = 0;
	for (; *p; p++) {
		if (*p < '0' || *p > '9')
			return TOCSIN_ERR_INVAL;
		unsigned d = (unsigned)(*p - '0');
		if (v > (lim - d) / 10)
			big = 1; /* keep scanning: a malformed tail is still INVAL */
		else
			v = v * 10 + d;
	}
	if (big)
		return TOCSIN_ERR_TOOBIG;
	int64_t r = neg ? (v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v) : (int64_t)v;
	if (r < min || r > max)
		return TOCSIN_ERR_TOOBIG;
	*out = r;
	return 0;
}

int num_int(const char *s, int min, int max, int *out)
{
	int64_t v;
	int rc = num_i64(s, min, max, &v);
	if (!rc)
		*out = (int)v;
	return rc;
}
