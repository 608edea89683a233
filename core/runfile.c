/* runfile.c -- small files under <var_dir>/run that tell one process where another listens. */
#include "core/runfile.h"
#include "core/err.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int mkdir_p(const char *dir)
{
	char tmp[4096];
	snprintf(tmp, sizeof tmp, "%s", dir);
	for (char *p = tmp + 1; *p; p++) {
		if (*p == '/') {
			*p = 0;
			if (mkdir(tmp, 0755) && errno != EEXIST)
				return -1;
			*p = '/';
		}
	}
	return mkdir(tmp, 0755) && errno != EEXIST ? -1 : 0;
}

int runfile_mkdir(const cfg_t *c, char *err, size_t errlen)
{
	char dir[4096];
	cfg_var_path(c, "run", dir, sizeof dir);
	if (mkdir_p(dir)) {
		snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
		return TOCSIN_ERR_IO;
	}
	return 0;
}

int runfile_write(const cfg_t *c, const char *rel, const char *text, char *err, size_t errlen)
{
	char path[4096], tmp[4200];
	if (runfile_mkdir(c, err, errlen))
		return TOCSIN_ERR_IO;
	cfg_var_path(c, rel, path, sizeof path);
	snprintf(tmp, sizeof tmp, "%s.%d.tmp", path, (int)getpid());
	FILE *f = fopen(tmp, "w");
	if (!f || fputs(text, f) < 0 || fputc('\n', f) < 0 || fclose(f) != 0 || rename(tmp, path) != 0) {
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
		unlink(tmp);
		return TOCSIN_ERR_IO;
	}
	return 0;
}

int runfile_read(const cfg_t *c, const char *rel, char *out, size_t outlen)
{
	char path[4096];
	cfg_var_path(c, rel, path, sizeof path);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t n = fread(out, 1, outlen - 1, f);
	fclose(f);
	out[n] = 0;
	while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' ' || out[n - 1] == '\r'))
		out[--n] = 0;
	return (int)n;
}

void runfile_remove(const cfg_t *c, const char *rel)
{
	char path[4096];
	cfg_var_path(c, rel, path, sizeof path);
	unlink(path);
}

pid_t runfile_live_pid(const cfg_t *c, const char *rel)
{
	char buf[32];
	if (runfile_read(c, rel, buf, sizeof buf) <= 0)
		return 0;
	long pid = strtol(buf, NULL, 10);
	if (pid <= 0)
		return 0;
	if (kill((pid_t)pid, 0) != 0 && errno == ESRCH)
		return 0;
	return (pid_t)pid;
}
