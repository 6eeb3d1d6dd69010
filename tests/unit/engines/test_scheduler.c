/* SPDX-License-Identifier: BSD-3-Clause */
/* Scheduler state changes: idle back-off and the compacting grow/shrink
 * state machine, driven by synthetic measurements (engines/scheduler.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "engines/scheduler.h"

static void test_backoff_spins_then_sleeps_doubling_to_cap(void **state)
{
	struct sched_backoff b;

	(void)state;
	sched_backoff_init(&b, 3, 100);
	for (int i = 0; i < 3; i++)
		assert_int_equal(sched_backoff_next(&b, 0), 0); /* spin phase */
	assert_int_equal(sched_backoff_next(&b, 0), 1);
	assert_int_equal(sched_backoff_next(&b, 0), 2);
	assert_int_equal(sched_backoff_next(&b, 0), 4);
	assert_int_equal(sched_backoff_next(&b, 0), 8);
	assert_int_equal(sched_backoff_next(&b, 0), 16);
	assert_int_equal(sched_backoff_next(&b, 0), 32);
	assert_int_equal(sched_backoff_next(&b, 0), 64);
	assert_int_equal(sched_backoff_next(&b, 0), 100); /* capped, not 128 */
	assert_int_equal(sched_backoff_next(&b, 0), 100);
}

static void test_backoff_work_resets(void **state)
{
	struct sched_backoff b;

	(void)state;
	sched_backoff_init(&b, 1, 1000);
	assert_int_equal(sched_backoff_next(&b, 0), 0);
	assert_int_equal(sched_backoff_next(&b, 0), 1);
	assert_int_equal(sched_backoff_next(&b, 0), 2);
	assert_int_equal(sched_backoff_next(&b, 5), 0); /* work: poll again at once */
	assert_int_equal(sched_backoff_next(&b, 0), 0); /* back in the spin phase */
	assert_int_equal(sched_backoff_next(&b, 0), 1); /* sleep restarts at 1 µs */
}

static void test_backoff_zero_cap_is_one_us(void **state)
{
	struct sched_backoff b;

	(void)state;
	sched_backoff_init(&b, 0, 0);
	assert_int_equal(sched_backoff_next(&b, 0), 1);
	assert_int_equal(sched_backoff_next(&b, 0), 1);
}

static void test_compact_grows_after_sustained_delay(void **state)
{
	struct sched_compact s;

	(void)state;
	sched_compact_init(&s, 3, 100000);
	assert_int_equal(s.active, 1);
	for (int i = 0; i < SCHED_GROW_TICKS - 1; i++)
		assert_int_equal(sched_compact_tick(&s, 200000, 0.9), SCHED_STAY);
	assert_int_equal(sched_compact_tick(&s, 200000, 0.9), SCHED_GROW);
	assert_int_equal(s.active, 2);
}

static void test_compact_one_spike_does_not_grow(void **state)
{
	struct sched_compact s;

	(void)state;
	sched_compact_init(&s, 3, 100000);
	for (int i = 0; i < 10; i++) {
		/* alternate over/under: never SCHED_GROW_TICKS in a row */
		assert_int_equal(sched_compact_tick(&s, i % 2 ? 50000 : 500000, 0.9), SCHED_STAY);
	}
	assert_int_equal(s.active, 1);
}

static void test_compact_never_exceeds_max(void **state)
{
	struct sched_compact s;
	int grows = 0;

	(void)state;
	sched_compact_init(&s, 2, 1000);
	for (int i = 0; i < 50; i++)
		grows += sched_compact_tick(&s, 10000, 1.0) == SCHED_GROW;
	assert_int_equal(grows, 1);
	assert_int_equal(s.active, 2);
}

static void test_compact_shrinks_when_idle_not_below_one(void **state)
{
	struct sched_compact s;
	int shrinks = 0;

	(void)state;
	sched_compact_init(&s, 3, 1000);
	for (int i = 0; i < 2 * SCHED_GROW_TICKS; i++)
		sched_compact_tick(&s, 10000, 1.0);
	assert_int_equal(s.active, 3);
	for (int i = 0; i < SCHED_SHRINK_TICKS - 1; i++)
		assert_int_equal(sched_compact_tick(&s, 0, 0.01), SCHED_STAY);
	assert_int_equal(sched_compact_tick(&s, 0, 0.01), SCHED_SHRINK);
	assert_int_equal(s.active, 2);
	for (int i = 0; i < 10 * SCHED_SHRINK_TICKS; i++)
		shrinks += sched_compact_tick(&s, 0, 0.0) == SCHED_SHRINK;
	assert_int_equal(shrinks, 1);
	assert_int_equal(s.active, 1);
}

static void test_compact_busy_interrupts_shrink_count(void **state)
{
	struct sched_compact s;

	(void)state;
	sched_compact_init(&s, 2, 1000);
	for (int i = 0; i < SCHED_GROW_TICKS; i++)
		sched_compact_tick(&s, 10000, 1.0);
	assert_int_equal(s.active, 2);
	for (int i = 0; i < SCHED_SHRINK_TICKS - 1; i++)
		sched_compact_tick(&s, 0, 0.0);
	assert_int_equal(sched_compact_tick(&s, 0, 0.9), SCHED_STAY); /* busy: restart */
	for (int i = 0; i < SCHED_SHRINK_TICKS - 1; i++)
		assert_int_equal(sched_compact_tick(&s, 0, 0.0), SCHED_STAY);
	assert_int_equal(sched_compact_tick(&s, 0, 0.0), SCHED_SHRINK);
}

static void test_compact_worker_mapping_covers_all_workers(void **state)
{
	(void)state;
	assert_int_equal(sched_compact_worker(5, 0), 0);
	assert_int_equal(sched_compact_worker(5, 1), 0);
	for (unsigned active = 1; active <= 4; active++) {
		unsigned seen = 0;

		for (unsigned e = 0; e < 8; e++) {
			unsigned w = sched_compact_worker(e, active);

			assert_true(w < active);
			seen |= 1u << w;
		}
		assert_int_equal(seen, (1u << active) - 1);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backoff_spins_then_sleeps_doubling_to_cap),
		cmocka_unit_test(test_backoff_work_resets),
		cmocka_unit_test(test_backoff_zero_cap_is_one_us),
		cmocka_unit_test(test_compact_grows_after_sustained_delay),
		cmocka_unit_test(test_compact_one_spike_does_not_grow),
		cmocka_unit_test(test_compact_never_exceeds_max),
		cmocka_unit_test(test_compact_shrinks_when_idle_not_below_one),
		cmocka_unit_test(test_compact_busy_interrupts_shrink_count),
		cmocka_unit_test(test_compact_worker_mapping_covers_all_workers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
