/* aset.c -- a compact set of 64-bit address hashes for dedupe and suppression (~8-23 bytes/entry). */
#include "producer/aset.h"
#include "core/err.h"
#include "core/hash.h"

#include <stdio.h>
#include <stdlib.h>

struct aset {
	uint64_t *slot; /* 0 = empty */
	size_t mask;    /* capacity - 1, capacity a power of two */
	size_t n;
	size_t max;
};

aset_t *aset_new(size_t hint, size_t max_entries, char *err, size_t errlen)
{
	aset_t *s = calloc(1, sizeof *s);
	size_t cap = 1024;
	while (cap < hint + hint / 2)
		cap *= 2;
	if (s)
		s->slot = calloc(cap, sizeof *s->slot);
	if (!s || !s->slot) {
		free(s);
		snprintf(err, errlen, "out of memory for a set of %zu entries", hint);
		return NULL;
	}
	s->mask = cap - 1;
	s->max = max_entries;
	return s;
}

void aset_free(aset_t *s)
{
	if (!s)
		return;
	free(s->slot);
	free(s);
}

static int put(uint64_t *slot, size_t mask, uint64_t h)
{
	size_t i = (size_t)h & mask;
	while (slot[i]) {
		if (slot[i] == h)
			return 0;
		i = (i + 1) & mask;
	}
	slot[i] = h;
	return 1;
}

static int grow(aset_t *s)
{
	size_t cap = (s->mask + 1) * 2;
	uint64_t *ns = calloc(cap, sizeof *ns);
	if (!ns)
		return TOCSIN_ERR_NOMEM;
	for (size_t i = 0; i <= s->mask; i++)
		if (s->slot[i])
			put(ns, cap - 1, s->slot[i]);
	free(s->slot);
	s->slot = ns;
	s->mask = cap - 1;
	return 0;
}

int aset_add(aset_t *s, uint64_t h)
{
	if (!h)
		h = 1;
	if ((s->n + 1) * 10 > (s->mask + 1) * 7) {
		int rc = grow(s);
		if (rc)
			return rc;
	}
	if (s->max && s->n >= s->max && !aset_has(s, h))
		return TOCSIN_ERR_TOOBIG;
	int added = put(s->slot, s->mask, h);
	s->n += (size_t)added;
	return added;
}

int aset_has(const aset_t *s, uint64_t h)
{
	if (!h)
		h = 1;
	size_t i = (size_t)h & s->mask;
	while (s->slot[i]) {
		if (s->slot[i] == h)
			return 1;
		i = (i + 1) & s->mask;
	}
	return 0;
}

size_t aset_count(const aset_t *s) { return s->n; }
size_t aset_bytes(const aset_t *s) { return (s->mask + 1) * sizeof *s->slot; }

uint64_t aset_key(int channel, const char *addr, size_t len)
{
	return hash64(addr, len, 0x6164647273657430ULL + (uint64_t)channel);
}
