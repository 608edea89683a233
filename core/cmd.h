/* cmd.h -- the subcommands of the one `tocsin` binary; each module provides its entry point. */
#ifndef TOCSIN_CMD_H
#define TOCSIN_CMD_H
#include "core/cfg.h"

/* Every command: cfg is loaded by main (owned by main; read-only), argv[0]
 * is the command name. Returns the process exit code: 0 ok, 1 failed,
 * 2 usage error. Main thread. */
typedef int (*cmd_fn)(cfg_t *cfg, int argc, char **argv);

int cmd_broker(cfg_t *cfg, int argc, char **argv);      /* core/broker.c */
int cmd_vendor_sim(cfg_t *cfg, int argc, char **argv);  /* vendors/sim/sim.c */
int cmd_vendor_send(cfg_t *cfg, int argc, char **argv); /* vendors/send.c */
int cmd_launch(cfg_t *cfg, int argc, char **argv);      /* producer/launch.c */
int cmd_preview(cfg_t *cfg, int argc, char **argv);     /* producer/launch.c */
int cmd_dispatch(cfg_t *cfg, int argc, char **argv);    /* dispatcher/dsp.c */
int cmd_dead(cfg_t *cfg, int argc, char **argv);        /* dispatcher/dead.c */
int cmd_track(cfg_t *cfg, int argc, char **argv);       /* tracker/track.c */
int cmd_status(cfg_t *cfg, int argc, char **argv);      /* tracker/status.c */
int cmd_campaign(cfg_t *cfg, int argc, char **argv);    /* tracker/ctlcmd.c */
int cmd_vendor(cfg_t *cfg, int argc, char **argv);      /* tracker/ctlcmd.c */
int cmd_hold(cfg_t *cfg, int argc, char **argv);        /* hold/hold.c */
int cmd_up(cfg_t *cfg, int argc, char **argv);          /* core/up.c */
int cmd_demo(cfg_t *cfg, int argc, char **argv);        /* core/demo.c */
int cmd_capacity(cfg_t *cfg, int argc, char **argv);    /* core/capacity.c */
int cmd_drill(cfg_t *cfg, int argc, char **argv);       /* core/drill.c */

#endif
