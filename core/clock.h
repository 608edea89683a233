/* clock.h -- wall and monotonic clocks in milliseconds and nanoseconds. */
#ifndef TOCSIN_CLOCK_H
#define TOCSIN_CLOCK_H
#include <stdint.h>

/* Milliseconds since the Unix epoch (for timestamps on the wire). Any thread. */
int64_t clock_wall_ms(void);
/* Monotonic milliseconds (for timers and deadlines). Any thread. */
int64_t clock_mono_ms(void);
/* Monotonic nanoseconds (for latency measurement). Any thread. */
int64_t clock_mono_ns(void);

#endif
