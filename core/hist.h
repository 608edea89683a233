/* hist.h -- fixed-bucket log-linear histograms (latencies) with percentiles; no allocation on record. */
#ifndef TOCSIN_HIST_H
#define TOCSIN_HIST_H
#include <stddef.h>
#include <stdint.h>

/* Values are unsigned integers in the caller's unit (tocsin records latency in
 * microseconds). Values 0..63 have exact buckets; above, each power of two is
 * split into 32 linear buckets, so a bucket's width is at most 1/32 (3.1%) of
 * its lower bound. Values above HIST_MAX_VALUE are counted in the last bucket
 * (and in max). A histogram is not thread-safe: one thread owns it; merge
 * copies from another thread's histogram only while that one is not written. */
#define HIST_SUB_BITS 6
#define HIST_MAX_VALUE ((UINT64_C(1) << 40) - 1)
#define HIST_NBUCKETS                                                                              \
	((40 - HIST_SUB_BITS + 1) * (1 << (HIST_SUB_BITS - 1)) + (1 << (HIST_SUB_BITS - 1)))

typedef struct hist hist_t;

/* A new empty histogram owned by the caller (hist_free()); NULL with a reason
 * in err when out of memory. Any thread. */
hist_t *hist_new(char *err, size_t errlen);
/* Release h; hist_free(NULL) does nothing. Owner thread. */
void hist_free(hist_t *h);
/* Count one value v (no allocation, O(1)). Owner thread. */
void hist_record(hist_t *h, uint64_t v);
/* Count n values equal to v. Owner thread. */
void hist_record_n(hist_t *h, uint64_t v, uint64_t n);
/* Forget every value. Owner thread. */
void hist_reset(hist_t *h);
/* Add every count of src into dst (src unchanged). Returns 0. dst's owner
 * thread, with src not being written meanwhile. */
int hist_merge(hist_t *dst, const hist_t *src);

/* Number of values recorded. Any reader of h. */
uint64_t hist_count(const hist_t *h);
/* Smallest / largest value recorded (exact), 0 when empty. */
uint64_t hist_min(const hist_t *h);
uint64_t hist_max(const hist_t *h);
/* Arithmetic mean of the values recorded (exact up to double precision), 0 when empty. */
double hist_mean(const hist_t *h);
/* The value at percentile q (0..100): the upper bound of the bucket holding the
 * ceil(q/100 * count)-th smallest value, clamped to [min, max], so it is never
 * below the true percentile and at most 3.1% above it. 0 when empty. */
uint64_t hist_percentile(const hist_t *h, double q);
/* How many recorded values are <= v, counting whole buckets (the bucket of v
 * included): for Prometheus-style cumulative buckets. */
uint64_t hist_count_le(const hist_t *h, uint64_t v);

/* Bucket geometry, for exporters: the bucket index of v, and the inclusive
 * lowest / highest value of bucket i (i < HIST_NBUCKETS). Any thread. */
size_t hist_bucket_of(uint64_t v);
uint64_t hist_bucket_lo(size_t i);
uint64_t hist_bucket_hi(size_t i);
/* Count in bucket i (0 when i is out of range). */
uint64_t hist_bucket_count(const hist_t *h, size_t i);

#endif
