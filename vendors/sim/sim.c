/* sim.c -- vendor-sim: the vendor API emulator (placeholder until its module lands). */
#include "core/cmd.h"
#include <stdio.h>

int cmd_vendor_sim(cfg_t *cfg, int argc, char **argv)
{
	(void)cfg;
	(void)argc;
	(void)argv;
	fprintf(stderr, "tocsin vendor-sim: not built yet\n");
	return 1;
}
