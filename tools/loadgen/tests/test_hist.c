/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mustang-load's histogram: bucket geometry, precision, and percentiles
 * against a sorted reference of the same values.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../hist.h"

static struct hist *hnew(void)
{
	struct hist *h = malloc(sizeof(*h));

	assert_non_null(h);
	hist_init(h);
	return h;
}

static void test_hist_small_values_exact(void **state)
{
	(void)state;
	for (uint64_t v = 0; v < 256; v++) {
		assert_int_equal(hist_index(v), v);
		assert_int_equal(hist_bucket_low(hist_index(v)), v);
		assert_int_equal(hist_bucket_high(hist_index(v)), v);
	}
}

static void test_hist_buckets_contiguous(void **state)
{
	(void)state;
	for (unsigned i = 1; i < HIST_BUCKETS; i++)
		assert_int_equal(hist_bucket_low(i), hist_bucket_high(i - 1) + 1);
	assert_int_equal(hist_bucket_high(HIST_BUCKETS - 1), HIST_VMAX);
}

static void test_hist_value_in_its_bucket_within_1pct(void **state)
{
	uint64_t x = 88172645463325252ull;

	(void)state;
	for (int n = 0; n < 1000000; n++) {
		uint64_t v, lo, hi;
		unsigned i;

		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		v = x >> (24 + (x & 15));      /* spread over many magnitudes */
		if (v > HIST_VMAX)
			v = HIST_VMAX;
		i = hist_index(v);
		assert_true(i < HIST_BUCKETS);
		lo = hist_bucket_low(i);
		hi = hist_bucket_high(i);
		assert_true(lo <= v && v <= hi);
		/* bucket width relative to its values: under 1 % */
		assert_true((double)(hi - lo) <= 0.01 * (double)lo || hi == lo);
	}
}

static void test_hist_huge_value_clamped(void **state)
{
	struct hist *h = hnew();

	(void)state;
	hist_record(h, UINT64_MAX / 2);
	assert_int_equal(h->counts[HIST_BUCKETS - 1], 1);
	assert_int_equal(h->max, UINT64_MAX / 2);
	assert_int_equal(hist_percentile(h, 50), UINT64_MAX / 2); /* clamped to [min,max] */
	free(h);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* percentile p of a sorted array: the value of rank ceil(p/100 * n) */
static uint64_t ref_pct(const uint64_t *s, size_t n, double p)
{
	double r = p / 100.0 * (double)n;
	size_t k = (size_t)r;

	if ((double)k < r)
		k++;
	if (k == 0)
		k = 1;
	return s[k - 1];
}

static void check_against_reference(uint64_t *v, size_t n)
{
	static const double ps[] = { 1, 10, 50, 90, 99, 99.9, 99.99, 100 };
	struct hist *h = hnew();

	for (size_t i = 0; i < n; i++)
		hist_record(h, v[i]);
	qsort(v, n, sizeof(*v), cmp_u64);
	assert_int_equal(h->count, n);
	assert_int_equal(h->min, v[0]);
	assert_int_equal(h->max, v[n - 1]);
	for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++) {
		uint64_t want = ref_pct(v, n, ps[i]), got = hist_percentile(h, ps[i]);
		double err = want ? (double)(got > want ? got - want : want - got) / (double)want : 0;

		if (err > 0.01)
			fail_msg("p%g: got %llu, reference %llu (%.2f%%)", ps[i],
				 (unsigned long long)got, (unsigned long long)want, err * 100);
	}
	free(h);
}

static void test_hist_percentiles_lognormalish(void **state)
{
	size_t n = 200000;
	uint64_t *v = malloc(n * sizeof(*v)), x = 0x9e3779b97f4a7c15ull;

	(void)state;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		/* latency-like: 5 us base, long tail to ~10 ms */
		v[i] = 5000 + (x % 1000) * ((x >> 20) % 1000 < 990 ? 10 : 10000);
	}
	check_against_reference(v, n);
	free(v);
}

static void test_hist_percentiles_uniform_and_tiny(void **state)
{
	uint64_t v1[] = { 42 };
	uint64_t *v = malloc(100000 * sizeof(*v));

	(void)state;
	check_against_reference(v1, 1);
	for (size_t i = 0; i < 100000; i++)
		v[i] = i * 37 + 1;
	check_against_reference(v, 100000);
	free(v);
}

static void test_hist_merge_adds(void **state)
{
	struct hist *a = hnew(), *b = hnew(), *m = hnew();

	(void)state;
	for (uint64_t i = 1; i <= 1000; i++)
		hist_record(i & 1 ? a : b, i * 1000);
	hist_merge(m, a);
	hist_merge(m, b);
	assert_int_equal(m->count, 1000);
	assert_int_equal(m->min, 1000);
	assert_int_equal(m->max, 1000000);
	assert_true(hist_percentile(m, 50) >= 495000 && hist_percentile(m, 50) <= 505000);
	assert_true(hist_mean(m) > 500499 && hist_mean(m) < 500501);
	free(a);
	free(b);
	free(m);
}

static void test_hist_empty(void **state)
{
	struct hist *h = hnew();

	(void)state;
	assert_int_equal(hist_percentile(h, 99), 0);
	assert_true(hist_mean(h) == 0);
	free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hist_small_values_exact),
		cmocka_unit_test(test_hist_buckets_contiguous),
		cmocka_unit_test(test_hist_value_in_its_bucket_within_1pct),
		cmocka_unit_test(test_hist_huge_value_clamped),
		cmocka_unit_test(test_hist_percentiles_lognormalish),
		cmocka_unit_test(test_hist_percentiles_uniform_and_tiny),
		cmocka_unit_test(test_hist_merge_adds),
		cmocka_unit_test(test_hist_empty),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
