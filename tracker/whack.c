/* whack.c -- webhook acknowledgements: waits for the broker's delivery reports, and the replay keys held meanwhile. */
#include "tracker/whack.h"

#include "core/clock.h"
#include "core/hash.h"

#include <microhttpd.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define SLOT_BITS 16
#define KEY_SLOTS (1u << 16) /* replay keys in flight: at most 3/4 of them held */

typedef struct wait {
	uint64_t gen; /* 0 = free */
	int pending;  /* records produced and not yet reported */
	int failed;   /* a report came with an error, or the wait timed out */
	int armed;    /* the connection is suspended: whoever ends the wait resumes it */
	int resumed;  /* resumed (once) */
	int64_t deadline_ms;
	struct MHD_Connection *c;
} wait_t;

struct trk_whack {
	pthread_mutex_t mu;
	wait_t *w;
	size_t n, next;
	uint64_t gen;
	int timeout_ms;
	int closing;
	uint64_t *keys; /* open addressing, linear probing; 0 = empty */
	size_t nkeys;
};

trk_whack_t *trk_whack_new(size_t slots, int timeout_ms)
{
	if (!slots || slots >= (1u << SLOT_BITS))
		return NULL;
	trk_whack_t *w = calloc(1, sizeof *w);
	if (!w)
		return NULL;
	w->w = calloc(slots, sizeof *w->w);
	w->keys = calloc(KEY_SLOTS, sizeof *w->keys);
	if (!w->w || !w->keys) {
		free(w->w);
		free(w->keys);
		free(w);
		return NULL;
	}
	pthread_mutex_init(&w->mu, NULL);
	w->n = slots;
	w->timeout_ms = timeout_ms;
	return w;
}

void trk_whack_free(trk_whack_t *w)
{
	if (!w)
		return;
	pthread_mutex_destroy(&w->mu);
	free(w->w);
	free(w->keys);
	free(w);
}

/* the wait tok names, or NULL when it was closed (caller holds mu) */
static wait_t *find(trk_whack_t *w, uint64_t tok)
{
	size_t i = (size_t)(tok & ((1u << SLOT_BITS) - 1));
	if (!tok || i >= w->n || w->w[i].gen != tok >> SLOT_BITS)
		return NULL;
	return &w->w[i];
}

uint64_t trk_whack_open(trk_whack_t *w)
{
	uint64_t tok = 0;
	pthread_mutex_lock(&w->mu);
	for (size_t k = 0; k < w->n && !w->closing; k++) {
		size_t i = (w->next + k) % w->n;
		if (w->w[i].gen)
			continue;
		w->next = i + 1;
		wait_t *x = &w->w[i];
		memset(x, 0, sizeof *x);
		x->gen = ++w->gen;
		x->deadline_ms = clock_mono_ms() + w->timeout_ms;
		tok = x->gen << SLOT_BITS | i;
		break;
	}
	pthread_mutex_unlock(&w->mu);
	return tok;
}

void *trk_whack_opaque(uint64_t tok) { return (void *)(uintptr_t)tok; }

static void add(trk_whack_t *w, uint64_t tok, int d)
{
	pthread_mutex_lock(&w->mu);
	wait_t *x = find(w, tok);
	if (x)
		x->pending += d;
	pthread_mutex_unlock(&w->mu);
}

void trk_whack_add(trk_whack_t *w, uint64_t tok) { add(w, tok, 1); }
void trk_whack_unadd(trk_whack_t *w, uint64_t tok) { add(w, tok, -1); }

int trk_whack_arm(trk_whack_t *w, uint64_t tok, struct MHD_Connection *c)
{
	pthread_mutex_lock(&w->mu);
	wait_t *x = find(w, tok);
	int go = x && x->pending > 0 && !x->failed && !w->closing;
	pthread_mutex_unlock(&w->mu);
	if (!go)
		return 0;
	/* Suspend first, then arm: a report that ends the wait resumes only an
	 * armed wait, so a connection is never resumed before it is suspended. */
	MHD_suspend_connection(c);
	pthread_mutex_lock(&w->mu);
	x = find(w, tok); /* only trk_whack_close frees it, and it is ours */
	x->c = c;
	x->armed = 1;
	int now = (x->pending <= 0 || x->failed || w->closing) && !x->resumed;
	if (now) {
		x->resumed = 1;
		x->failed |= w->closing;
	}
	pthread_mutex_unlock(&w->mu);
	if (now)
		MHD_resume_connection(c);
	return 1;
}

int trk_whack_sleep(trk_whack_t *w, uint64_t tok, struct MHD_Connection *c, int ms)
{
	pthread_mutex_lock(&w->mu);
	wait_t *x = find(w, tok);
	if (x) {
		x->pending = 1; /* a record that never comes: the deadline ends the wait */
		x->deadline_ms = clock_mono_ms() + ms;
	}
	pthread_mutex_unlock(&w->mu);
	return x ? trk_whack_arm(w, tok, c) : 0;
}

int trk_whack_close(trk_whack_t *w, uint64_t tok)
{
	pthread_mutex_lock(&w->mu);
	wait_t *x = find(w, tok);
	int ok = x && x->pending <= 0 && !x->failed;
	if (x)
		x->gen = 0;
	pthread_mutex_unlock(&w->mu);
	return ok;
}

void trk_whack_report(trk_whack_t *w, void *opaque, int ok)
{
	uint64_t tok = (uint64_t)(uintptr_t)opaque;
	if (!tok)
		return;
	struct MHD_Connection *c = NULL;
	pthread_mutex_lock(&w->mu);
	wait_t *x = find(w, tok);
	if (x) {
		x->pending--;
		if (!ok)
			x->failed = 1;
		/* the last report, or a failure: no reason to wait for the rest */
		if ((x->pending <= 0 || x->failed) && x->armed && !x->resumed) {
			x->resumed = 1;
			c = x->c;
		}
	}
	pthread_mutex_unlock(&w->mu);
	if (c)
		MHD_resume_connection(c);
}

/* Fail and resume the armed waits that match: past now_ms (now_ms > 0), or all. */
static int expire(trk_whack_t *w, int64_t now_ms, int closing)
{
	struct MHD_Connection *batch[256];
	int total = 0;
	for (;;) {
		size_t nb = 0;
		pthread_mutex_lock(&w->mu);
		if (closing)
			w->closing = 1;
		for (size_t i = 0; i < w->n && nb < sizeof batch / sizeof batch[0]; i++) {
			wait_t *x = &w->w[i];
			if (!x->gen || !x->armed || x->resumed || (!closing && x->deadline_ms > now_ms))
				continue;
			x->failed = 1;
			x->resumed = 1;
			batch[nb++] = x->c;
		}
		pthread_mutex_unlock(&w->mu);
		for (size_t i = 0; i < nb; i++)
			MHD_resume_connection(batch[i]);
		total += (int)nb;
		if (nb < sizeof batch / sizeof batch[0])
			return total;
	}
}

int trk_whack_tick(trk_whack_t *w, int64_t now_ms) { return expire(w, now_ms, 0); }
void trk_whack_shutdown(trk_whack_t *w) { expire(w, 0, 1); }

/* ---- replay keys in flight ---- */

static uint64_t key_hash(const char *key) { return hash64(key, strlen(key), 0x77686b) | 1; }

/* slot of h, or of the empty slot where it would go */
static size_t key_slot(const trk_whack_t *w, uint64_t h)
{
	size_t i = (size_t)h & (KEY_SLOTS - 1);
	while (w->keys[i] && w->keys[i] != h)
		i = (i + 1) & (KEY_SLOTS - 1);
	return i;
}

int trk_whack_key_held(const trk_whack_t *w, const char *key)
{
	return w->keys[key_slot(w, key_hash(key))] != 0;
}

int trk_whack_key_hold(trk_whack_t *w, const char *key)
{
	uint64_t h = key_hash(key);
	size_t i = key_slot(w, h);
	if (w->keys[i])
		return 0;
	if (w->nkeys >= KEY_SLOTS / 4 * 3)
		return -1;
	w->keys[i] = h;
	w->nkeys++;
	return 1;
}

void trk_whack_key_drop(trk_whack_t *w, const char *key)
{
	size_t i = key_slot(w, key_hash(key));
	if (!w->keys[i])
		return;
	/* backward-shift deletion: every key after the hole that may move into it does */
	for (size_t j = i;;) {
		j = (j + 1) & (KEY_SLOTS - 1);
		if (!w->keys[j])
			break;
		size_t home = (size_t)w->keys[j] & (KEY_SLOTS - 1);
		int between = i <= j ? (home > i && home <= j) : (home > i || home <= j);
		if (!between) {
			w->keys[i] = w->keys[j];
			i = j;
		}
	}
	w->keys[i] = 0;
	w->nkeys--;
}
