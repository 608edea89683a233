/* hash.c -- fast non-cryptographic hashes and the deterministic message id. */
#include "core/hash.h"
#include <string.h>

static uint64_t fmix64(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdULL;
	k ^= k >> 33;
	k *= 0xc4ceb9fe1a85ec53ULL;
	k ^= k >> 33;
	return k;
}

uint64_t hash64(const void *p, size_t n, uint64_t seed)
{
	const unsigned char *s = p;
	uint64_t h = 0xcbf29ce484222325ULL ^ fmix64(seed + 0x9e3779b97f4a7c15ULL);
	for (size_t i = 0; i < n; i++) {
		h ^= s[i];
		h *= 0x100000001b3ULL;
	}
	return fmix64(h ^ n);
}

static uint64_t hash_parts(const char *a, const char *b, const char *c, uint64_t seed)
{
	/* Hash the three parts with their lengths so ("ab","c") != ("a","bc"). */
	uint64_t h = seed;
	h = hash64(a, strlen(a), h) ^ (strlen(a) * 0x9e3779b97f4a7c15ULL);
	h = hash64(b, strlen(b), h) ^ (strlen(b) * 0x9e3779b97f4a7c15ULL);
	h = hash64(c, strlen(c), h);
	return h;
}

void msg_make_id(const char *campaign, const char *channel, const char *addr, char out[MSG_ID_LEN + 1])
{
	static const char hx[] = "0123456789abcdef";
	uint64_t h[2] = {hash_parts(campaign, channel, addr, 0x746f6373696e3131ULL),
	                 hash_parts(campaign, channel, addr, 0x6d73672d69642d32ULL)};
	for (int w = 0; w < 2; w++)
		for (int i = 0; i < 16; i++)
			out[w * 16 + i] = hx[(h[w] >> (60 - 4 * i)) & 15];
	out[MSG_ID_LEN] = 0;
}
