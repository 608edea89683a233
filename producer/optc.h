/* optc.h -- the local opt-out cache: tocsin.optouts folded into <var_dir>/optouts.db (sqlite). */
#ifndef TOCSIN_OPTC_H
#define TOCSIN_OPTC_H
#include <stddef.h>

#include "core/cfg.h"
#include "producer/aset.h"

typedef struct optc optc_t;

/* Open (create) <var_dir>/optouts.db. NULL with "path: reason" in err. Main thread. */
optc_t *optc_open(const cfg_t *cfg, char *err, size_t errlen);
void optc_close(optc_t *o);

/* Read tocsin.optouts from the offsets stored in the cache up to the current
 * end (at most timeout_ms), apply each opt-out / opt-in, and store the new
 * offsets, in one transaction. 0 or TOCSIN_ERR_KAFKA/TOCSIN_ERR_IO with err. */
int optc_sync(optc_t *o, const cfg_t *cfg, int timeout_ms, char *err, size_t errlen);

/* Add aset_key(channel, address) of every opted-out address to set. */
int optc_load(optc_t *o, aset_t *set, char *err, size_t errlen);

/* Record one opt-out (optin = 0) or opt-in directly (tests, operator tools). */
int optc_put(optc_t *o, int channel, const char *address, int optin, char *err, size_t errlen);

#endif
