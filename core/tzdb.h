/* tzdb.h -- a recipient's time zone(s): IANA name, else ZIP, else state, else phone prefix (data/tz/). */
#ifndef TOCSIN_TZDB_H
#define TOCSIN_TZDB_H
#include <stddef.h>
#include <stdint.h>

#include "core/tz.h"

#define TZDB_SET_MAX 64 /* zones one recipient may be in (+1 alone names 42) */

/* The tables of data/tz/ (phone.tsv, zip.tsv, state.tsv; each file says its source and
 * date) and every zone they name, loaded from the tz database. */
typedef struct tzdb tzdb_t;

/* The candidate zones of one recipient: one zone = certain, several = uncertain (a
 * message goes only while the window is open in every one). Interned: the same set is
 * the same pointer for the life of the tzdb_t, so a caller may cache per set. */
typedef struct tzdb_set {
	int n;
	const tz_t *z[TZDB_SET_MAX];
	char key[1536]; /* the zone names joined by "&" */
	/* free for the caller (the producer caches the set's window here) */
	int64_t c_open_ms, c_close_ms, c_valid_until;
	int c_state;
	int64_t held, now, last_ms; /* preview counts */
} tzdb_set_t;

/* Where a recipient's zones came from. */
typedef enum tzdb_src {
	TZDB_SRC_NONE,
	TZDB_SRC_TZ,
	TZDB_SRC_ZIP,
	TZDB_SRC_STATE,
	TZDB_SRC_PHONE
} tzdb_src_t;
const char *tzdb_src_name(tzdb_src_t s);

/* Load the tables from dir (NULL: $TOCSIN_TZDATA, else data/tz beside the running binary,
 * else ./data/tz). Returns a new tzdb_t (tzdb_free) or NULL with "path:line: reason" in
 * err. Main thread; lookups afterwards from one thread at a time. */
tzdb_t *tzdb_open(const char *dir, char *err, size_t errlen);
void tzdb_free(tzdb_t *db);

/* A recipient's zones, by the first source that has a value: `tz` (an IANA name; unknown
 * -> NULL and TOCSIN_ERR_INVAL in *rc), `zip` (5 digits, or ZIP+4; unknown -> the zones of
 * its 3-digit prefix), `state` (USPS code, any case), `phone` (E.164 "+1212...": the
 * longest prefix of phone.tsv). Values may be NULL/empty (len 0). Returns the set (owned
 * by db) and its source in *src, or NULL (no source known: *rc 0; bad tz: *rc
 * TOCSIN_ERR_INVAL with the reason in err). */
const tzdb_set_t *tzdb_lookup(tzdb_t *db, const char *tz, size_t tzlen, const char *zip,
                              size_t ziplen, const char *state, size_t statelen, const char *phone,
                              tzdb_src_t *src, int *rc, char *err, size_t errlen);
/* One zone by IANA name, as a set (for a campaign-wide zone, tests). NULL with err. */
const tzdb_set_t *tzdb_zone(tzdb_t *db, const char *name, char *err, size_t errlen);
/* Every interned set, for reports: calls fn for each. */
void tzdb_each(tzdb_t *db, void (*fn)(void *ud, tzdb_set_t *s), void *ud);

#endif
