/* tz.h -- IANA time zones (TZif from tzdata), local windows (quiet hours) and RFC 3339 instants. */
#ifndef TOCSIN_TZ_H
#define TOCSIN_TZ_H
#include <stddef.h>
#include <stdint.h>

/* One IANA zone read from the compiled tz database ($TZDIR, else /usr/share/zoneinfo,
 * Debian's tzdata): its transitions and the POSIX rule for the years after them. */
typedef struct tz tz_t;

/* A name tz_load accepts: 1..64 of A-Z a-z 0-9 _ + - /, no "." component, not starting
 * with '/'. 1 or 0. Any thread. */
int tz_name_ok(const char *name, size_t len);
/* Load zone `name` ("America/New_York", "UTC"). Returns a new tz_t (tz_free) or NULL
 * with "unknown time zone \"Mars/Base\"" (or why the file is unreadable) in err.
 * Any thread; the tz_t is read-only afterwards and may be shared between threads. */
tz_t *tz_load(const char *name, char *err, size_t errlen);
void tz_free(tz_t *z);
/* The zone's name (owned by z). */
const char *tz_name(const tz_t *z);
/* UTC offset in seconds (east positive: New York in winter -18000) at instant t_s (Unix
 * seconds). Any thread. */
int32_t tz_offset(const tz_t *z, int64_t t_s);

/* A daily window of local time: [start, end) in minutes after local midnight, 0..1440;
 * start > end wraps over midnight (21:00-07:00); start == end is never open. */
typedef struct tz_window {
	int start, end;
} tz_window_t;

/* "HH:MM" (00:00..24:00, two digits each) to minutes after midnight. 0 or -1. */
int tz_parse_hhmm(const char *s, int *min);
/* Format minutes as "HH:MM" into out (6 bytes). */
void tz_fmt_hhmm(int min, char out[6]);
/* Whether w is open in zone z at t_ms. 1 or 0. */
int tz_open(const tz_t *z, tz_window_t w, int64_t t_ms);
/* The first instant >= t_ms at which w is open in every zone of zs[0..n) at once (the
 * intersection rule for an uncertain zone), in *open_ms, and the first instant after that
 * at which it closes in any of them, in *close_ms. Searches up to horizon_ms ahead.
 * Returns 0, or TOCSIN_ERR_NOTFOUND when the windows never overlap within the horizon
 * (zones too far apart for the window). Any thread. */
int tz_next_open(const tz_t *const *zs, int n, tz_window_t w, int64_t t_ms, int64_t horizon_ms,
                 int64_t *open_ms, int64_t *close_ms);

/* Parse an RFC 3339 date-time with an offset ("2026-12-04T07:00:00-05:00",
 * "2026-12-04T12:00:00.5Z") into Unix milliseconds. 0 or -1 (malformed, out of range,
 * no offset). Any thread. */
int tz_parse_rfc3339(const char *s, int64_t *ms);
/* Format t_ms as local time in z: "2026-12-04 08:00 EST" style, "YYYY-MM-DD HH:MM+hh:mm". */
void tz_fmt_local(const tz_t *z, int64_t t_ms, char *out, size_t outlen);

#endif
