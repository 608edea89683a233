/* dsp.c -- dispatch: send outbox messages to vendors (placeholder until its module lands). */
#include "core/cmd.h"
#include <stdio.h>

int cmd_dispatch(cfg_t *cfg, int argc, char **argv)
{
	(void)cfg;
	(void)argc;
	(void)argv;
	fprintf(stderr, "tocsin dispatch: not built yet\n");
	return 1;
}
