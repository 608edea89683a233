/* capacity.h -- `tocsin capacity`: how long a blast takes at the configured limits, from the
 * configuration alone (nothing runs), which limit binds, and what one more number, vendor or
 * dispatcher would buy. `tocsin drill` prints the same table beside what it measured. */
#ifndef TOCSIN_CAPACITY_H
#define TOCSIN_CAPACITY_H
#include <jansson.h>
#include <stdio.h>

#include "core/cfg.h"

/* What one dispatcher sends per second against the emulator on loopback when nothing else
 * binds (bench/RESULTS.md, "dispatcher: end to end"): the CPU bound of one dispatcher. */
#define CAP_DSP_MSGS_PER_S 20000.0
/* Partitions of each outbox topic (README, "Kafka topics"): dispatchers beyond this many per
 * channel stand by. */
#define CAP_OUTBOX_PARTITIONS 12
/* Recipients per email request (SendGrid personalizations, Mailgun recipient-variables). */
#define CAP_EMAIL_BATCH 1000

typedef struct cap_opts {
	long audience;   /* recipients per channel, >= 1 */
	int segments;    /* SMS segments per message, 1..10 */
	int dispatchers; /* dispatchers per channel, 1..1000 */
	int latency_ms;  /* assumed vendor answer time, 1..60000 */
	const char *pool; /* sender pool of the blast; NULL: each route's first vendor's first pool */
} cap_opts_t;

/* The estimate for every channel that has a route, as a new JSON document owned by the caller:
 * {"audience","segments","dispatchers","latency_ms","channels":[{"channel","pool","unit",
 *  "vendors":[{"name","vendor_rate","sender_rate","window_rate","sustained","binds"}],
 *  "dispatcher_window","dispatcher_cpu","units_per_s","messages_per_s","seconds","binds",
 *  "what_if":{"number","vendor","dispatcher"}}]}; rates are units (SMS segments or emails)
 * per second, null = unlimited. Any thread; reads c only. */
json_t *cap_estimate(const cfg_t *c, const cap_opts_t *o);

/* The table of cap_estimate's document e, for a terminal. */
void cap_print(FILE *f, const json_t *e);

/* Seconds as "42 s", "3 min 20 s" or "1 h 05 min" into out. */
void cap_duration(double s, char *out, size_t outlen);

#endif
