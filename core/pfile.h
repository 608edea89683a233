/* pfile.h -- files that hold recipients' data: created and kept owner-only (0600). */
#ifndef TOCSIN_PFILE_H
#define TOCSIN_PFILE_H
#include <stddef.h>

/* Create path if missing with mode 0600, and set an existing one to 0600
 * (sqlite gives a database's -wal and -shm files the database file's mode,
 * so call it before opening the database). 0, or TOCSIN_ERR_IO with err
 * naming path. Any thread. */
int pfile_private(const char *path, char *err, size_t errlen);

#endif
