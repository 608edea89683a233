/* sim.h -- the vendor emulator engine behind `tocsin vendor-sim` (also embeddable by tests). */
#ifndef TOCSIN_SIM_H
#define TOCSIN_SIM_H
#include <stddef.h>

#include "core/cfg.h"

typedef struct sim sim_t;

/* Start serving the four vendor APIs for c's vendors on 127.0.0.1:port (0 =
 * any free port) with threads HTTP worker threads. c must outlive the sim.
 * Returns the running emulator (caller owns, sim_free) or NULL with err.
 * Main thread. */
sim_t *sim_new(const cfg_t *c, int port, int threads, char *err, size_t errlen);
/* The port actually bound. Any thread. */
int sim_port(const sim_t *s);
/* Stop serving (hung connections are dropped, pending receipts discarded) and free. */
void sim_free(sim_t *s);

#endif
