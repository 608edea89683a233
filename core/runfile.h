/* runfile.h -- small files under <var_dir>/run that tell one process where another listens. */
#ifndef TOCSIN_RUNFILE_H
#define TOCSIN_RUNFILE_H
#include <stddef.h>
#include <sys/types.h>

#include "core/cfg.h"

/* Create <var_dir>/run (and var_dir) if missing. 0 or TOCSIN_ERR_IO with err. */
int runfile_mkdir(const cfg_t *c, char *err, size_t errlen);
/* Write text to <var_dir>/<rel> atomically (temp file + rename). */
int runfile_write(const cfg_t *c, const char *rel, const char *text, char *err, size_t errlen);
/* Read <var_dir>/<rel> into out, trailing whitespace trimmed. Length or -1. */
int runfile_read(const cfg_t *c, const char *rel, char *out, size_t outlen);
/* Remove <var_dir>/<rel>; missing is fine. */
void runfile_remove(const cfg_t *c, const char *rel);
/* The pid stored in <var_dir>/<rel> if that process is alive, else 0. */
pid_t runfile_live_pid(const cfg_t *c, const char *rel);

#endif
