/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Shared by the hostile-app tests (app_hostile.c, pony_hostile.c): a
 * seeded xorshift64* generator (reproducible garbage) and a monotonic
 * clock in nanoseconds.
 */
#ifndef MST_TESTS_HOSTILE_UTIL_H
#define MST_TESTS_HOSTILE_UTIL_H

#include <stdint.h>
#include <time.h>

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static inline uint64_t rnd(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 0x2545f4914f6cdd1dull;
}

static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#endif /* MST_TESTS_HOSTILE_UTIL_H */
