/* sup.h -- start tocsin's own processes as children, watch them, stop them in reverse order. */
#ifndef TOCSIN_SUP_H
#define TOCSIN_SUP_H
#include <stddef.h>

#include "core/cfg.h"

typedef struct sup sup_t;

/* A supervisor whose children run `self [-c cfg_path] ARGS...` with stdout and stderr in
 * <log_dir>/<name>.log (truncated), each in its own process group (a Ctrl-C reaches only the
 * parent, which stops them in order), their pids appended to pids_file. cfg_path NULL: the
 * children find the configuration as the parent did. who prefixes its messages ("tocsin up").
 * Copies every string. NULL with err on failure. Main thread only, like every sup_ call. */
sup_t *sup_new(const char *who, const char *self, const char *cfg_path, const char *log_dir,
               const char *pids_file, char *err, size_t errlen);
/* Stops nothing: call sup_stop_all first. sup_free(NULL) is a no-op. */
void sup_free(sup_t *s);
/* Stop what an interrupted earlier run left in pids_file: the pids still running this same
 * executable. */
void sup_stop_leftovers(sup_t *s);
/* Start child name with args (NULL-terminated, copied). Its index, or -1 (printed). */
int sup_start(sup_t *s, const char *name, char *const args[]);
/* Start child i again with its arguments (after it stopped). 0 or -1. */
int sup_restart(sup_t *s, int i);
/* Send signal sig to child i while it runs (`tocsin drill` SIGKILLs a dispatcher). 0, or -1
 * when it is not running. */
int sup_kill(sup_t *s, int i, int sig);
/* 1 while child i runs; reaps it (and remembers its exit status) when it has stopped. */
int sup_alive(sup_t *s, int i);
/* The exit status of a stopped child i (128+signal when killed), or -1 while it runs. */
int sup_status(const sup_t *s, int i);
const char *sup_name(const sup_t *s, int i);
const char *sup_log(const sup_t *s, int i);
int sup_count(const sup_t *s);
/* Print the last lines of child i's log to stderr. */
void sup_log_tail(const sup_t *s, int i);
/* Wait up to timeout_s for <var_dir>/<rel> of c to hold something (copied into out); fails,
 * showing the child's log tail, when child i stops first or the time runs out. 0 or -1. */
int sup_wait_runfile(sup_t *s, int i, const cfg_t *c, const char *rel, char *out, size_t outlen,
                     int timeout_s);
/* SIGTERM each running child, the last started first, waiting up to 30 s each before SIGKILL;
 * prints any that exited with a failure status. */
void sup_stop_all(sup_t *s);

#endif
