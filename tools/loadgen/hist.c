/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Log-linear latency histogram: bucket bounds, merge, percentiles.
 * The recording path is inline in hist.h.
 */
#include <string.h>

#include "hist.h"

void hist_init(struct hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

uint64_t hist_bucket_low(unsigned i)
{
	unsigned shift;

	if (i < 2 * HIST_HALF)
		return i;
	shift = i / HIST_HALF - 1;
	return (uint64_t)(i - shift * HIST_HALF) << shift;
}

uint64_t hist_bucket_high(unsigned i)
{
	unsigned shift;

	if (i < 2 * HIST_HALF)
		return i;
	shift = i / HIST_HALF - 1;
	return (((uint64_t)(i - shift * HIST_HALF) + 1) << shift) - 1;
}

void hist_merge(struct hist *dst, const struct hist *src)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		uint64_t c = __atomic_load_n(&src->counts[i], __ATOMIC_RELAXED);

		dst->counts[i] += c;
		n += c;
	}
	/* count from the buckets, so percentiles of a live merge add up */
	dst->count += n;
	dst->sum += src->sum;
	if (src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
}

uint64_t hist_percentile(const struct hist *h, double p)
{
	uint64_t rank, seen = 0;

	if (h->count == 0)
		return 0;
	if (p >= 100.0)
		return h->max;
	/* rank = ceil(p/100 * count), at least 1 */
	rank = (uint64_t)(p / 100.0 * (double)h->count);
	if ((double)rank < p / 100.0 * (double)h->count)
		rank++;
	if (rank == 0)
		rank = 1;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += h->counts[i];
		if (seen >= rank) {
			uint64_t lo = hist_bucket_low(i), hi = hist_bucket_high(i);
			uint64_t v = lo + (hi - lo) / 2;

			if (v < h->min)
				v = h->min;
			if (v > h->max)
				v = h->max;
			return v;
		}
	}
	return h->max;
}

double hist_mean(const struct hist *h)
{
	return h->count ? (double)h->sum / (double)h->count : 0.0;
}
