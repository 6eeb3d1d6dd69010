/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Latency histogram, log-linear in the manner of HdrHistogram: values below
 * 2^(HIST_SUB_BITS) are counted exactly; above, each power-of-two range
 * [2^k, 2^(k+1)) is split into 2^(HIST_SUB_BITS-1) equal buckets, so a
 * bucket is at most 1/128 (0.78 %) of its values wide. Values are
 * nanoseconds (up to 2^40 ns, ~18 minutes; larger ones land in the last
 * bucket, and max keeps the exact value).
 *
 * The counts array is part of the struct: a histogram is allocated once,
 * before measuring, and hist_record() never allocates. One writer (the
 * thread that owns it); a reader on another thread may merge it while it
 * is written (hist_merge() reads with relaxed loads: a progress line, not a
 * result).
 *
 *   hist_init() -> hist_record()... -> hist_merge() -> hist_percentile()
 */
#ifndef LG_HIST_H
#define LG_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS 8                          /* 256 exact values, then halves */
#define HIST_HALF (1u << (HIST_SUB_BITS - 1))    /* buckets per power of two: 128 */
#define HIST_MAX_BITS 40                         /* values up to 2^40 - 1 */
#define HIST_BUCKETS ((HIST_MAX_BITS - HIST_SUB_BITS + 2) * HIST_HALF)
#define HIST_VMAX ((UINT64_C(1) << HIST_MAX_BITS) - 1)

struct hist {
	uint64_t count;                  /* values recorded */
	uint64_t sum;                    /* for the mean */
	uint64_t min, max;               /* exact */
	uint64_t counts[HIST_BUCKETS];
};

/* Bucket index of v (clamped to HIST_VMAX). */
static inline unsigned hist_index(uint64_t v)
{
	unsigned msb, shift;

	if (v > HIST_VMAX)
		v = HIST_VMAX;
	msb = 63u - (unsigned)__builtin_clzll(v | (HIST_HALF * 2 - 1));
	shift = msb - (HIST_SUB_BITS - 1);
	/* shift == 0: v < 256, index v. Otherwise v >> shift is in
	 * [128, 256) and each shift step adds 128 buckets. */
	return shift * HIST_HALF + (unsigned)(v >> shift);
}

/* Relaxed load/store instead of a locked add: one writer, and a reader
 * that only wants a recent value. */
#define HIST_BUMP(p, n) __atomic_store_n((p), __atomic_load_n((p), __ATOMIC_RELAXED) + (n), \
					 __ATOMIC_RELAXED)

static inline void hist_record(struct hist *h, uint64_t v)
{
	HIST_BUMP(&h->counts[hist_index(v)], 1);
	HIST_BUMP(&h->count, 1);
	h->sum += v;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
}

void hist_init(struct hist *h);
/* Lowest and highest value that map to bucket i. */
uint64_t hist_bucket_low(unsigned i);
uint64_t hist_bucket_high(unsigned i);
/* dst += src. */
void hist_merge(struct hist *dst, const struct hist *src);
/* The value at percentile p (0 < p <= 100): the smallest recorded value v
 * such that at least p % of the values are <= v, as the midpoint of its
 * bucket clamped to [min, max]. 0 when empty. */
uint64_t hist_percentile(const struct hist *h, double p);
double hist_mean(const struct hist *h);

#endif /* LG_HIST_H */
