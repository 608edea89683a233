/* clock.c -- wall and monotonic clocks; the wall clock shifted by $TOCSIN_NOW_OFFSET_MS for tests. */
#include "core/clock.h"
#include "core/num.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* Set once (pthread_once) from the environment, read-only afterwards. */
static int64_t wall_offset_ms;
static pthread_once_t wall_once = PTHREAD_ONCE_INIT;

int clock_parse_offset(const char *s, int64_t *out)
{
	/* at most 100 years either way */
	return num_i64(s, -3153600000000LL, 3153600000000LL, out) ? -1 : 0;
}

static void wall_init(void)
{
	int64_t v;
	if (!clock_parse_offset(getenv("TOCSIN_NOW_OFFSET_MS"), &v))
		wall_offset_ms = v;
}

int64_t clock_wall_offset_ms(void)
{
	pthread_once(&wall_once, wall_init);
	return wall_offset_ms;
}

int64_t clock_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + clock_wall_offset_ms();
}

int64_t clock_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t clock_mono_ms(void) { return clock_mono_ns() / 1000000; }

char *clock_iso8601(int64_t wall_ms, char *out, size_t outlen)
{
	time_t t = (time_t)(wall_ms / 1000);
	struct tm tm;
	if (!gmtime_r(&t, &tm) || !strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(out, outlen, "?");
	return out;
}
