/* launch.c -- launch/preview: expand a campaign into the outbox (placeholder until its module lands). */
#include "core/cmd.h"
#include <stdio.h>

int cmd_launch(cfg_t *cfg, int argc, char **argv)
{
	(void)cfg;
	(void)argc;
	(void)argv;
	fprintf(stderr, "tocsin launch: not built yet\n");
	return 1;
}

int cmd_preview(cfg_t *cfg, int argc, char **argv)
{
	(void)cfg;
	(void)argc;
	(void)argv;
	fprintf(stderr, "tocsin preview: not built yet\n");
	return 1;
}
