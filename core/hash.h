/* hash.h -- fast non-cryptographic hashes and the deterministic message id. */
#ifndef TOCSIN_HASH_H
#define TOCSIN_HASH_H
#include <stddef.h>
#include <stdint.h>

/* 64-bit hash of p[0..n) with seed (FNV-1a, then a murmur3 finalizer).
 * Not for adversarial input. Any thread. */
uint64_t hash64(const void *p, size_t n, uint64_t seed);

#define MSG_ID_LEN 32
/* The deterministic message id of ARCHITECTURE.md: 32 lowercase hex chars
 * derived from campaign id + channel + normalized address, written with a NUL
 * into out[MSG_ID_LEN + 1]. The same inputs give the same id on every run and
 * every machine. Any thread. */
void msg_make_id(const char *campaign, const char *channel, const char *addr, char out[MSG_ID_LEN + 1]);

#endif
