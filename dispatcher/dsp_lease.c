/* dsp_lease.c -- partition leases on one host: slot files and per-partition lease files held by flock(2). */
#include "dispatcher/dsp_lease.h"
#include "core/err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#define LEASE_LANES 2

struct dsp_lease {
	char dir[4096];
	char channel[16];
	int slot;
	/* per lane and partition: the lease file's descriptor (-1 not opened yet) and whether
	 * this dispatcher holds its lock */
	int fd[LEASE_LANES][DSP_LEASE_MAX_PARTS];
	unsigned char held[LEASE_LANES][DSP_LEASE_MAX_PARTS];
	unsigned char live[DSP_LEASE_MAX_SLOTS]; /* the slots held at the last dsp_lease_rank */
	char holder[DSP_LEASE_MAX_SLOTS][DSP_LEASE_HOLDER_MAX]; /* what their holders wrote */
};

static int slot_path(const char *dir, const char *channel, int slot, char *out, size_t outlen)
{
	int n = snprintf(out, outlen, "%s/dispatch-%s-%d.lock", dir, channel, slot);
	return n > 0 && (size_t)n < outlen ? 0 : -1;
}

int dsp_lease_slot_take(const char *dir, const char *channel, const char *holder, int *fd)
{
	char path[4200];
	for (int slot = 0; slot < DSP_LEASE_MAX_SLOTS; slot++) {
		if (slot_path(dir, channel, slot, path, sizeof path)) {
			errno = ENAMETOOLONG;
			return -1;
		}
		int f = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (f < 0)
			return -1;
		if (flock(f, LOCK_EX | LOCK_NB)) {
			close(f);
			continue;
		}
		size_t n = holder ? strnlen(holder, DSP_LEASE_HOLDER_MAX - 1) : 0;
		if (ftruncate(f, 0) || (n && pwrite(f, holder, n, 0) != (ssize_t)n)) {
			close(f);
			return -1;
		}
		*fd = f;
		return slot;
	}
	errno = EBUSY;
	return -1;
}

dsp_lease_t *dsp_lease_new(const char *dir, const char *channel, int slot, char *err, size_t errlen)
{
	dsp_lease_t *l = calloc(1, sizeof *l);
	if (!l) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	int n = snprintf(l->dir, sizeof l->dir, "%s", dir);
	if (n <= 0 || (size_t)n >= sizeof l->dir - 64 || strlen(channel) >= sizeof l->channel) {
		snprintf(err, errlen, "partition leases: directory name too long");
		free(l);
		return NULL;
	}
	snprintf(l->channel, sizeof l->channel, "%s", channel);
	l->slot = slot;
	for (int ln = 0; ln < LEASE_LANES; ln++)
		for (int p = 0; p < DSP_LEASE_MAX_PARTS; p++)
			l->fd[ln][p] = -1;
	return l;
}

void dsp_lease_free(dsp_lease_t *l)
{
	if (!l)
		return;
	for (int ln = 0; ln < LEASE_LANES; ln++)
		for (int p = 0; p < DSP_LEASE_MAX_PARTS; p++)
			if (l->fd[ln][p] >= 0)
				close(l->fd[ln][p]); /* drops the lock too */
	free(l);
}

int dsp_lease_rank(dsp_lease_t *l, int *n)
{
	char path[4200];
	int live = 0, rank = 0;
	memset(l->live, 0, sizeof l->live);
	memset(l->holder, 0, sizeof l->holder);
	for (int slot = 0; slot < DSP_LEASE_MAX_SLOTS; slot++) {
		if (slot == l->slot) {
			l->live[slot] = 1;
			rank = live++;
			continue;
		}
		if (slot_path(l->dir, l->channel, slot, path, sizeof path))
			break;
		int f = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (f < 0) {
			if (errno == ENOENT && slot > l->slot)
				break; /* slots are taken lowest first: none beyond a missing one above ours */
			continue;
		}
		if (flock(f, LOCK_EX | LOCK_NB)) {
			l->live[slot] = 1;
			live++; /* held: a dispatcher lives there; who, if it wrote it yet */
			ssize_t r = pread(f, l->holder[slot], DSP_LEASE_HOLDER_MAX - 1, 0);
			l->holder[slot][r > 0 ? r : 0] = '\0';
		}
		close(f); /* a free one's lock, if taken, goes with it */
	}
	*n = live;
	return rank;
}

const unsigned char *dsp_lease_live(const dsp_lease_t *l) { return l->live; }

const char *dsp_lease_holder(const dsp_lease_t *l, int slot)
{
	return slot >= 0 && slot < DSP_LEASE_MAX_SLOTS ? l->holder[slot] : "";
}

int dsp_lease_take(dsp_lease_t *l, int lane, int32_t p)
{
	if (lane < 0 || lane >= LEASE_LANES || p < 0 || p >= DSP_LEASE_MAX_PARTS)
		return TOCSIN_ERR_INVAL;
	if (l->held[lane][p])
		return 1;
	if (l->fd[lane][p] < 0) {
		char path[4200];
		snprintf(path, sizeof path, "%s/outbox-%s%s-p%d.lock", l->dir, l->channel,
		         lane ? "-urgent" : "", (int)p);
		l->fd[lane][p] = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (l->fd[lane][p] < 0)
			return TOCSIN_ERR_IO;
	}
	if (flock(l->fd[lane][p], LOCK_EX | LOCK_NB))
		return errno == EWOULDBLOCK ? 0 : TOCSIN_ERR_IO;
	l->held[lane][p] = 1;
	return 1;
}

void dsp_lease_drop(dsp_lease_t *l, int lane, int32_t p)
{
	if (!dsp_lease_held(l, lane, p))
		return;
	flock(l->fd[lane][p], LOCK_UN);
	l->held[lane][p] = 0;
}

int dsp_lease_held(const dsp_lease_t *l, int lane, int32_t p)
{
	return lane >= 0 && lane < LEASE_LANES && p >= 0 && p < DSP_LEASE_MAX_PARTS &&
	       l->held[lane][p];
}
