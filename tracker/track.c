/* track.c -- track: fold status events into sqlite (placeholder until its module lands). */
#include "core/cmd.h"
#include <stdio.h>

int cmd_track(cfg_t *cfg, int argc, char **argv)
{
	(void)cfg;
	(void)argc;
	(void)argv;
	fprintf(stderr, "tocsin track: not built yet\n");
	return 1;
}
