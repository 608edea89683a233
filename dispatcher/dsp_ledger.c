/* dsp_ledger.c -- the dispatchers' ledger of ids a vendor took: append-only files under <var_dir>/ledger, a hash set in memory. */
#include "dispatcher/dsp_ledger.h"
#include "core/err.h"
#include "core/hash.h"
#include "core/log.h"
#include "producer/aset.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DSP_LEDGER_ID_MAX 64
/* Lines noted and not yet written: one vendor answer's worth (a SendGrid request holds 1000). */
#define DSP_LEDGER_BUF (1000 * (DSP_LEDGER_ID_MAX + 1))
/* The set starts this big (slots), so a blast of a few hundred thousand does not rehash it. */
#define DSP_LEDGER_SET_START (1 << 19)

/* Files read so far (dsp_ledger_refresh reads on from where each stopped); one beyond
 * DSP_LEDGER_MAX_FILES is read whole at each refresh. */
#define DSP_LEDGER_MAX_FILES 1024

typedef struct ledger_file {
	dev_t dev;
	ino_t ino;
	off_t off; /* after its last whole line read */
} ledger_file_t;

struct dsp_ledger {
	aset_t *ids; /* hash64 of each id */
	int fd;      /* this run's file */
	size_t loaded;
	char dir[4096], prefix[64], own[160]; /* the directory, "<channel>-", this run's file name */
	ledger_file_t files[DSP_LEDGER_MAX_FILES];
	size_t nfiles;
	char buf[DSP_LEDGER_BUF]; /* lines noted since the last flush */
	size_t nbuf;
};

static uint64_t ledger_key(const char *id, size_t n) { return hash64(id, n, 0x6c656467); }

/* Read the ids of one file from where the last read of it stopped: lines of 1..64 bytes
 * ending in a newline (a torn last line of a killed writer, or one being written, is skipped
 * and read whole next time). Returns the ids read. */
static size_t ledger_load(dsp_ledger_t *l, const char *path, const struct stat *st)
{
	ledger_file_t *lf = NULL;
	for (size_t i = 0; i < l->nfiles && !lf; i++)
		if (l->files[i].dev == st->st_dev && l->files[i].ino == st->st_ino)
			lf = &l->files[i];
	if (!lf && l->nfiles < DSP_LEDGER_MAX_FILES) {
		lf = &l->files[l->nfiles++];
		*lf = (ledger_file_t){st->st_dev, st->st_ino, 0};
	}
	if (lf && lf->off >= st->st_size)
		return 0;
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	if (lf && fseeko(f, lf->off, SEEK_SET)) {
		fclose(f);
		return 0;
	}
	size_t nread = 0;
	char line[DSP_LEDGER_ID_MAX + 8];
	while (fgets(line, sizeof line, f)) {
		size_t n = strcspn(line, "\n");
		if (line[n] != '\n') { /* too long, or torn: skip the rest of it */
			int c;
			while ((c = fgetc(f)) != EOF && c != '\n') {
			}
			if (c == EOF)
				break; /* torn: read again next time */
		} else if (n > 0 && n <= DSP_LEDGER_ID_MAX) {
			if (aset_add(l->ids, ledger_key(line, n)) < 0)
				break;
			nread++;
		}
		if (lf)
			lf->off = ftello(f);
	}
	fclose(f);
	return nread;
}

/* Read the channel's files under l->dir but this run's own (from where each was last read);
 * with keep_s > 0 delete the ones not written for that long instead. The ids read. */
static size_t ledger_scan(dsp_ledger_t *l, DIR *dd, time_t keep_s)
{
	char path[4352];
	time_t now = time(NULL);
	size_t nread = 0;
	struct dirent *e;
	while ((e = readdir(dd))) {
		size_t n = strlen(e->d_name);
		struct stat st;
		if (strncmp(e->d_name, l->prefix, strlen(l->prefix)) || n < 5 ||
		    strcmp(e->d_name + n - 4, ".ids") || !strcmp(e->d_name, l->own))
			continue;
		if (snprintf(path, sizeof path, "%s/%s", l->dir, e->d_name) >= (int)sizeof path ||
		    lstat(path, &st) || !S_ISREG(st.st_mode))
			continue;
		if (keep_s > 0 && now - st.st_mtime > keep_s)
			unlink(path);
		else
			nread += ledger_load(l, path, &st);
	}
	return nread;
}

dsp_ledger_t *dsp_ledger_open(const char *dir, const char *channel, const char *client_id,
                              char *err, size_t errlen)
{
	dsp_ledger_t *l = calloc(1, sizeof *l);
	if (!l || !(l->ids = aset_new(DSP_LEDGER_SET_START, DSP_LEDGER_MAX_IDS, err, errlen))) {
		if (l && !err[0])
			snprintf(err, errlen, "out of memory");
		free(l);
		return NULL;
	}
	l->fd = -1;
	char path[4352];
	if (snprintf(l->dir, sizeof l->dir, "%s", dir) >= (int)sizeof l->dir ||
	    snprintf(l->prefix, sizeof l->prefix, "%s-", channel) >= (int)sizeof l->prefix ||
	    snprintf(l->own, sizeof l->own, "%s%s.ids", l->prefix, client_id) >= (int)sizeof l->own) {
		snprintf(err, errlen, "ledger path too long under %s", dir);
		dsp_ledger_free(l);
		return NULL;
	}
	if (mkdir(dir, 0700) && errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
		dsp_ledger_free(l);
		return NULL;
	}
	DIR *dd = opendir(dir);
	if (!dd) {
		snprintf(err, errlen, "cannot read %s: %s", dir, strerror(errno));
		dsp_ledger_free(l);
		return NULL;
	}
	l->loaded = ledger_scan(l, dd, DSP_LEDGER_KEEP_S);
	closedir(dd);
	snprintf(path, sizeof path, "%s/%s", l->dir, l->own);
	l->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (l->fd < 0) {
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		dsp_ledger_free(l);
		return NULL;
	}
	return l;
}

size_t dsp_ledger_refresh(dsp_ledger_t *l)
{
	DIR *dd = opendir(l->dir);
	if (!dd)
		return 0;
	size_t n = ledger_scan(l, dd, 0);
	closedir(dd);
	return n;
}

void dsp_ledger_free(dsp_ledger_t *l)
{
	if (!l)
		return;
	dsp_ledger_flush(l);
	if (l->fd >= 0)
		close(l->fd);
	aset_free(l->ids);
	free(l);
}

int dsp_ledger_add(dsp_ledger_t *l, const char *id)
{
	size_t n = strlen(id);
	if (n == 0 || n > DSP_LEDGER_ID_MAX || strchr(id, '\n'))
		return TOCSIN_ERR_INVAL;
	int rc = aset_add(l->ids, ledger_key(id, n));
	if (rc < 0) {
		log_warn("event=ledger_full id=%s max=%u msg=\"not remembered in memory\"", id,
		         DSP_LEDGER_MAX_IDS);
		return rc;
	}
	if (l->nbuf + n + 1 > sizeof l->buf && dsp_ledger_flush(l))
		return TOCSIN_ERR_IO;
	memcpy(l->buf + l->nbuf, id, n);
	l->buf[l->nbuf + n] = '\n';
	l->nbuf += n + 1;
	return 0;
}

int dsp_ledger_flush(dsp_ledger_t *l)
{
	if (!l->nbuf)
		return 0;
	ssize_t w = l->fd >= 0 ? write(l->fd, l->buf, l->nbuf) : -1;
	size_t lines = 0;
	for (size_t i = 0; i < l->nbuf; i++)
		lines += l->buf[i] == '\n';
	int rc = 0;
	if (w != (ssize_t)l->nbuf) {
		log_warn("event=ledger_write_failed ids=%zu err=\"%s\"", lines,
		         w < 0 ? strerror(errno) : "short write");
		rc = TOCSIN_ERR_IO;
	}
	l->nbuf = 0;
	return rc;
}

int dsp_ledger_has(const dsp_ledger_t *l, const char *id)
{
	size_t n = strlen(id);
	return n && n <= DSP_LEDGER_ID_MAX && aset_has(l->ids, ledger_key(id, n)) == 1;
}

size_t dsp_ledger_loaded(const dsp_ledger_t *l) { return l->loaded; }
