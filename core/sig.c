/* sig.c -- the process stop flag set by SIGTERM/SIGINT. */
#include "core/sig.h"
#include <string.h>

volatile sig_atomic_t tocsin_stop = 0;

static void on_stop(int sig) { tocsin_stop = sig; }

void sig_install(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}
