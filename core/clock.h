/* clock.h -- wall and monotonic clocks in milliseconds and nanoseconds. */
#ifndef TOCSIN_CLOCK_H
#define TOCSIN_CLOCK_H
#include <stddef.h>
#include <stdint.h>

/* Milliseconds since the Unix epoch (for timestamps on the wire, expiry, send_at and
 * quiet hours), plus $TOCSIN_NOW_OFFSET_MS when it is set (a signed number of
 * milliseconds, read once per process): tests and drills shift "now" for every process
 * they start the same way, instead of sleeping for hours. Any thread. */
int64_t clock_wall_ms(void);
/* The offset in effect ($TOCSIN_NOW_OFFSET_MS, 0 when unset or malformed). Any thread. */
int64_t clock_wall_offset_ms(void);
/* Parse an offset as TOCSIN_NOW_OFFSET_MS takes it (decimal, within 100 years).
 * 0 or -1. Any thread. */
int clock_parse_offset(const char *s, int64_t *out);
/* Monotonic milliseconds (for timers and deadlines). Any thread. */
int64_t clock_mono_ms(void);
/* Monotonic nanoseconds (for latency measurement). Any thread. */
int64_t clock_mono_ns(void);
/* wall_ms as UTC "2026-12-03T10:06:06Z" into out (at least 21 bytes). Returns out. Any thread. */
char *clock_iso8601(int64_t wall_ms, char *out, size_t outlen);

#endif
