/* demo.c -- demo: the whole path end to end (placeholder until its module lands). */
#include "core/cmd.h"
#include <stdio.h>

int cmd_demo(cfg_t *cfg, int argc, char **argv)
{
	(void)cfg;
	(void)argc;
	(void)argv;
	fprintf(stderr, "tocsin demo: not built yet\n");
	return 1;
}
