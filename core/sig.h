/* sig.h -- the process stop flag set by SIGTERM/SIGINT, and helpers around it. */
#ifndef TOCSIN_SIG_H
#define TOCSIN_SIG_H
#include <signal.h>

/* Set to the signal number by SIGTERM or SIGINT; the one mutable global. */
extern volatile sig_atomic_t tocsin_stop;

/* Install the SIGTERM/SIGINT handlers (no SA_RESTART, so blocking calls
 * return EINTR) and ignore SIGPIPE. Main thread, once. */
void sig_install(void);

#endif
