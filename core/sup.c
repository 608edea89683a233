/* sup.c -- start tocsin's own processes as children, watch them, stop them in reverse order. */
#include "core/sup.h"
#include "core/clock.h"
#include "core/runfile.h"
#include "core/sig.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define SUP_MAX_CHILDREN 16
#define SUP_MAX_ARGS 16

typedef struct sup_child {
	char name[64];
	char log[4200];
	char *argv[SUP_MAX_ARGS + 4]; /* self, -c, cfg, args..., NULL; owned */
	pid_t pid;                    /* > 0 running; 0 never started or reaped */
	int status;                   /* exit status once reaped, else -1 */
} sup_child_t;

struct sup {
	char who[64];
	char self[4096];
	char *cfg_path;
	char log_dir[4096];
	char pids[4096];
	sup_child_t kids[SUP_MAX_CHILDREN];
	int n;
};

sup_t *sup_new(const char *who, const char *self, const char *cfg_path, const char *log_dir,
               const char *pids_file, char *err, size_t errlen)
{
	sup_t *s = calloc(1, sizeof *s);
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (snprintf(s->who, sizeof s->who, "%s", who) >= (int)sizeof s->who ||
	    snprintf(s->self, sizeof s->self, "%s", self) >= (int)sizeof s->self ||
	    snprintf(s->log_dir, sizeof s->log_dir, "%s", log_dir) >= (int)sizeof s->log_dir ||
	    snprintf(s->pids, sizeof s->pids, "%s", pids_file) >= (int)sizeof s->pids) {
		snprintf(err, errlen, "a path is too long");
		free(s);
		return NULL;
	}
	s->cfg_path = cfg_path ? strdup(cfg_path) : NULL;
	return s;
}

void sup_free(sup_t *s)
{
	if (!s)
		return;
	for (int i = 0; i < s->n; i++)
		for (int a = 0; s->kids[i].argv[a]; a++)
			free(s->kids[i].argv[a]);
	free(s->cfg_path);
	free(s);
}

void sup_stop_leftovers(sup_t *s)
{
	FILE *f = fopen(s->pids, "r");
	if (!f)
		return;
	long pid;
	while (fscanf(f, "%ld", &pid) == 1) {
		char exe[64], target[4096];
		snprintf(exe, sizeof exe, "/proc/%ld/exe", pid);
		ssize_t n = readlink(exe, target, sizeof target - 1);
		if (n <= 0)
			continue;
		target[n] = 0;
		if (strcmp(target, s->self) == 0 && pid != getpid()) {
			fprintf(stderr, "%s: stopping pid %ld left by an earlier run\n", s->who, pid);
			kill((pid_t)pid, SIGTERM);
			for (int t = 0; t < 100 && kill((pid_t)pid, 0) == 0; t++)
				usleep(100000);
			kill((pid_t)pid, SIGKILL);
		}
	}
	fclose(f);
	unlink(s->pids);
}

static int spawn(sup_t *s, sup_child_t *k)
{
	pid_t pid = fork();
	if (pid < 0) {
		fprintf(stderr, "%s: fork: %s\n", s->who, strerror(errno));
		return -1;
	}
	if (pid == 0) {
		int fd = open(k->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		setpgid(0, 0); /* a Ctrl-C reaches the parent, which stops its children in order */
		execv(s->self, k->argv);
		_exit(127);
	}
	k->pid = pid;
	k->status = -1;
	FILE *f = fopen(s->pids, "a");
	if (f) {
		fprintf(f, "%ld\n", (long)pid);
		fclose(f);
	}
	return 0;
}

int sup_start(sup_t *s, const char *name, char *const args[])
{
	if (s->n >= SUP_MAX_CHILDREN) {
		fprintf(stderr, "%s: more than %d processes\n", s->who, SUP_MAX_CHILDREN);
		return -1;
	}
	sup_child_t *k = &s->kids[s->n];
	memset(k, 0, sizeof *k);
	snprintf(k->name, sizeof k->name, "%s", name);
	snprintf(k->log, sizeof k->log, "%s/%s.log", s->log_dir, name);
	int a = 0;
	k->argv[a++] = strdup(s->self);
	if (s->cfg_path) {
		k->argv[a++] = strdup("-c");
		k->argv[a++] = strdup(s->cfg_path);
	}
	for (int i = 0; args[i] && i < SUP_MAX_ARGS; i++)
		k->argv[a++] = strdup(args[i]);
	k->argv[a] = NULL;
	for (int i = 0; i < a; i++)
		if (!k->argv[i]) {
			fprintf(stderr, "%s: out of memory\n", s->who);
			return -1;
		}
	s->n++;
	return spawn(s, k) ? -1 : s->n - 1;
}

int sup_restart(sup_t *s, int i)
{
	if (i < 0 || i >= s->n || sup_alive(s, i))
		return -1;
	return spawn(s, &s->kids[i]);
}

int sup_kill(sup_t *s, int i, int sig)
{
	if (i < 0 || i >= s->n || !sup_alive(s, i))
		return -1;
	return kill(s->kids[i].pid, sig) ? -1 : 0;
}

int sup_alive(sup_t *s, int i)
{
	sup_child_t *k = &s->kids[i];
	if (k->pid <= 0)
		return 0;
	int st;
	if (waitpid(k->pid, &st, WNOHANG) != k->pid)
		return 1;
	k->pid = 0;
	k->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	return 0;
}

int sup_status(const sup_t *s, int i) { return s->kids[i].pid > 0 ? -1 : s->kids[i].status; }
const char *sup_name(const sup_t *s, int i) { return s->kids[i].name; }
const char *sup_log(const sup_t *s, int i) { return s->kids[i].log; }
int sup_count(const sup_t *s) { return s->n; }

void sup_log_tail(const sup_t *s, int i)
{
	fprintf(stderr, "---- last lines of %s ----\n", s->kids[i].log);
	FILE *f = fopen(s->kids[i].log, "r");
	if (!f) {
		fprintf(stderr, "(no log)\n");
		return;
	}
	char lines[15][512];
	int n = 0;
	while (fgets(lines[n % 15], sizeof lines[0], f))
		n++;
	fclose(f);
	for (int j = n > 15 ? n - 15 : 0; j < n; j++) {
		fputs(lines[j % 15], stderr);
		size_t l = strlen(lines[j % 15]);
		if (l && lines[j % 15][l - 1] != '\n')
			fputc('\n', stderr);
	}
}

int sup_wait_runfile(sup_t *s, int i, const cfg_t *c, const char *rel, char *out, size_t outlen,
                     int timeout_s)
{
	int64_t end = clock_mono_ms() + (int64_t)timeout_s * 1000;
	while (clock_mono_ms() < end && !tocsin_stop) {
		if (runfile_read(c, rel, out, outlen) > 0)
			return 0;
		if (!sup_alive(s, i)) {
			fprintf(stderr, "%s: %s stopped during start-up\n", s->who, s->kids[i].name);
			sup_log_tail(s, i);
			return -1;
		}
		usleep(50000);
	}
	if (!tocsin_stop) {
		fprintf(stderr, "%s: %s did not start within %d s (waiting for %s/%s)\n", s->who,
		        s->kids[i].name, timeout_s, c->var_dir, rel);
		sup_log_tail(s, i);
	}
	return -1;
}

void sup_stop_all(sup_t *s)
{
	for (int i = s->n - 1; i >= 0; i--) {
		sup_child_t *k = &s->kids[i];
		if (!sup_alive(s, i))
			continue;
		kill(k->pid, SIGTERM);
		for (int t = 0; t < 300 && sup_alive(s, i); t++) /* 30 s */
			usleep(100000);
		if (sup_alive(s, i)) {
			fprintf(stderr, "%s: %s ignored SIGTERM for 30 s; killing it\n", s->who,
			        k->name);
			kill(k->pid, SIGKILL);
			int st;
			waitpid(k->pid, &st, 0);
			k->pid = 0;
			k->status = 128 + SIGKILL;
		} else if (k->status != 0) {
			fprintf(stderr, "%s: %s exited with status %d\n", s->who, k->name, k->status);
		}
	}
}
