/* num.h -- strict decimal integer parsing for outside input (query strings, headers, timestamps). */
#ifndef TOCSIN_NUM_H
#define TOCSIN_NUM_H
#include <stdint.h>

/* Parse s as a whole decimal integer: an optional '-', then 1..19 digits,
 * nothing else (no spaces, no '+', no hex, no trailing bytes), within
 * [min, max]. 0 with *out set, or TOCSIN_ERR_INVAL (malformed) /
 * TOCSIN_ERR_TOOBIG (out of range, overflow included); *out is untouched on
 * failure. Any thread; allocates nothing. */
int num_i64(const char *s, int64_t min, int64_t max, int64_t *out);

/* num_i64 into an int. */
int num_int(const char *s, int min, int max, int *out);

#endif
