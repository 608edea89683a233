/* pfile.c -- owner-only files for recipients' data (stores, caches, rejects). */
#include "core/pfile.h"

#include "core/err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int pfile_private(const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 || fchmod(fd, 0600)) {
		snprintf(err, errlen, "cannot create %s owner-only: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return TOCSIN_ERR_IO;
	}
	close(fd);
	return 0;
}
