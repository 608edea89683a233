/* aset.h -- a compact set of 64-bit address hashes for dedupe and suppression (~8-23 bytes/entry). */
#ifndef TOCSIN_ASET_H
#define TOCSIN_ASET_H
#include <stddef.h>
#include <stdint.h>

typedef struct aset aset_t;

/* A new empty set sized for about hint entries, growing up to max_entries
 * (0 = no cap). Caller owns it (aset_free). NULL with err. Any thread. */
aset_t *aset_new(size_t hint, size_t max_entries, char *err, size_t errlen);
void aset_free(aset_t *s);

/* Add h: 1 if it was new, 0 if already present, TOCSIN_ERR_NOMEM or
 * TOCSIN_ERR_TOOBIG (cap reached). Thread: the set's owner. */
int aset_add(aset_t *s, uint64_t h);
/* 1 if h is present. */
int aset_has(const aset_t *s, uint64_t h);
size_t aset_count(const aset_t *s);
/* Bytes of memory held by the table. */
size_t aset_bytes(const aset_t *s);

/* The hash of one (channel, normalized address) pair as stored in a set. */
uint64_t aset_key(int channel, const char *addr, size_t len);

#endif
