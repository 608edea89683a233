/* hist.c -- log-linear latency histogram: bucket geometry, record, merge, percentiles. */
#include "core/hist.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HALF (1u << (HIST_SUB_BITS - 1)) /* linear buckets per power of two above the exact range */

struct hist {
	uint64_t count;
	uint64_t min, max;
	double sum;
	uint64_t b[HIST_NBUCKETS];
};

size_t hist_bucket_of(uint64_t v)
{
	if (v > HIST_MAX_VALUE)
		v = HIST_MAX_VALUE;
	if (v < (UINT64_C(1) << HIST_SUB_BITS))
		return (size_t)v;
	int msb = 63 - __builtin_clzll(v);
	int shift = msb - (HIST_SUB_BITS - 1);
	return (size_t)shift * HALF + (size_t)(v >> shift);
}

uint64_t hist_bucket_lo(size_t i)
{
	if (i >= HIST_NBUCKETS)
		i = HIST_NBUCKETS - 1;
	if (i < (1u << HIST_SUB_BITS))
		return i;
	size_t shift = i / HALF - 1;
	uint64_t mant = i % HALF + HALF;
	return mant << shift;
}

uint64_t hist_bucket_hi(size_t i)
{
	if (i >= HIST_NBUCKETS - 1)
		return HIST_MAX_VALUE;
	return hist_bucket_lo(i + 1) - 1;
}

hist_t *hist_new(char *err, size_t errlen)
{
	hist_t *h = calloc(1, sizeof *h);
	if (!h && err && errlen)
		snprintf(err, errlen, "hist_new: out of memory");
	return h;
}

void hist_free(hist_t *h) { free(h); }

void hist_record_n(hist_t *h, uint64_t v, uint64_t n)
{
	if (!n)
		return;
	if (h->count == 0 || v < h->min)
		h->min = v;
	if (h->count == 0 || v > h->max)
		h->max = v;
	h->count += n;
	h->sum += (double)v * (double)n;
	h->b[hist_bucket_of(v)] += n;
}

void hist_record(hist_t *h, uint64_t v) { hist_record_n(h, v, 1); }

void hist_reset(hist_t *h) { memset(h, 0, sizeof *h); }

int hist_merge(hist_t *dst, const hist_t *src)
{
	if (!src->count)
		return 0;
	if (dst->count == 0 || src->min < dst->min)
		dst->min = src->min;
	if (dst->count == 0 || src->max > dst->max)
		dst->max = src->max;
	dst->count += src->count;
	dst->sum += src->sum;
	for (size_t i = 0; i < HIST_NBUCKETS; i++)
		dst->b[i] += src->b[i];
	return 0;
}

uint64_t hist_count(const hist_t *h) { return h->count; }
uint64_t hist_min(const hist_t *h) { return h->count ? h->min : 0; }
uint64_t hist_max(const hist_t *h) { return h->count ? h->max : 0; }
double hist_mean(const hist_t *h) { return h->count ? h->sum / (double)h->count : 0; }

uint64_t hist_percentile(const hist_t *h, double q)
{
	if (!h->count)
		return 0;
	if (!(q > 0))
		return h->min;
	if (q >= 100)
		return h->max;
	uint64_t rank = (uint64_t)ceil(q * (double)h->count / 100.0 - 1e-9);
	if (rank < 1)
		rank = 1;
	uint64_t seen = 0;
	size_t first = hist_bucket_of(h->min), last = hist_bucket_of(h->max);
	for (size_t i = first; i <= last; i++) {
		seen += h->b[i];
		if (seen >= rank) {
			uint64_t v = hist_bucket_hi(i);
			if (v > h->max)
				v = h->max;
			if (v < h->min)
				v = h->min;
			return v;
		}
	}
	return h->max;
}

uint64_t hist_count_le(const hist_t *h, uint64_t v)
{
	size_t last = hist_bucket_of(v);
	uint64_t n = 0;
	for (size_t i = 0; i <= last; i++)
		n += h->b[i];
	return n;
}

uint64_t hist_bucket_count(const hist_t *h, size_t i) { return i < HIST_NBUCKETS ? h->b[i] : 0; }
