/* status.c -- status: print a campaign's counts per state (placeholder until its module lands). */
#include "core/cmd.h"
#include <stdio.h>

int cmd_status(cfg_t *cfg, int argc, char **argv)
{
	(void)cfg;
	(void)argc;
	(void)argv;
	fprintf(stderr, "tocsin status: not built yet\n");
	return 1;
}
