/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mustang-load's stall tracker (lg.h): the longest time without a
 * completed op, per connection and across threads, including a stall
 * still going at the end and a run without any op.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../lg.h"

#define MS 1000000ull

static void test_stall_gaps(void **state)
{
	struct lg_stall s;

	(void)state;
	lg_stall_init(&s, 0);
	lg_stall_mark(&s, 1000 * MS);          /* first op: no gap before it */
	assert_int_equal(s.max_ns, 0);
	lg_stall_mark(&s, 1001 * MS);
	lg_stall_mark(&s, 1250 * MS);          /* the pause: 249 ms */
	lg_stall_mark(&s, 1251 * MS);
	lg_stall_mark(&s, 1240 * MS);          /* an older time: ignored */
	assert_int_equal(s.last_ns, 1251 * MS);
	assert_int_equal(s.max_ns, 249 * MS);
	/* measured [1000, 1300] ms: the 49 ms at the end do not beat 249 */
	assert_int_equal(lg_stall_end(&s, 1000 * MS, 1300 * MS), 249 * MS);
	/* ... but a stall still going at the end counts up to it */
	assert_int_equal(lg_stall_end(&s, 1000 * MS, 1700 * MS), 449 * MS);
	/* an end before the last op (a --requests run) adds nothing */
	assert_int_equal(lg_stall_end(&s, 1000 * MS, 1251 * MS), 249 * MS);
}

static void test_stall_from_start_and_none(void **state)
{
	struct lg_stall s;

	(void)state;
	/* after a warm-up the interval starts at a time: the first op closes a gap */
	lg_stall_init(&s, 500 * MS);
	lg_stall_mark(&s, 800 * MS);
	assert_int_equal(s.max_ns, 300 * MS);
	/* no op at all: stalled for the whole measured interval */
	lg_stall_init(&s, 0);
	assert_int_equal(lg_stall_end(&s, 500 * MS, 2500 * MS), 2000 * MS);
	lg_stall_init(&s, 500 * MS);
	assert_int_equal(lg_stall_end(&s, 500 * MS, 2500 * MS), 2000 * MS);
	/* stopped before the interval began */
	assert_int_equal(lg_stall_end(&s, 500 * MS, 400 * MS), 0);
}

static void test_stall_shared(void **state)
{
	uint64_t last = 0;

	(void)state;
	assert_int_equal(lg_stall_mark_shared(&last, 100), 0);   /* first op */
	assert_int_equal(lg_stall_mark_shared(&last, 130), 30);
	assert_int_equal(lg_stall_mark_shared(&last, 120), 0);   /* another thread was later */
	assert_int_equal(last, 130);
	assert_int_equal(lg_stall_mark_shared(&last, 130), 0);
	assert_int_equal(lg_stall_mark_shared(&last, 200), 70);
}

/* Two threads completing ops in turn, 1 ms apart, with one 50 ms pause
 * that both see: the longest gap any of them closes is the pause, never
 * more than the gap between two marks. */
struct turn {
	uint64_t *last;
	volatile uint64_t *clock;   /* the next time to mark, odd/even per thread */
	unsigned me;
	uint64_t max;
};

static void *turn_thread(void *arg)
{
	struct turn *t = arg;

	for (;;) {
		uint64_t c = __atomic_load_n(t->clock, __ATOMIC_ACQUIRE);

		if (c >= 2000)
			return NULL;
		if (c % 2 != t->me) {
			sched_yield();
			continue;
		}
		uint64_t now = (c < 1000 ? c : c + 49) * MS;  /* op 1000 comes 50 ms late */
		uint64_t gap = lg_stall_mark_shared(t->last, now);

		if (gap > t->max)
			t->max = gap;
		__atomic_store_n(t->clock, c + 1, __ATOMIC_RELEASE);
	}
}

static void test_stall_shared_threads(void **state)
{
	uint64_t last = 0;
	volatile uint64_t clock = 1;
	struct turn t[2] = { { &last, &clock, 0, 0 }, { &last, &clock, 1, 0 } };
	pthread_t tid[2];

	(void)state;
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&tid[i], NULL, turn_thread, &t[i]), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(tid[i], NULL);
	assert_int_equal(t[0].max > t[1].max ? t[0].max : t[1].max, 50 * MS);
	assert_int_equal(t[0].max, 50 * MS);   /* op 1000 is thread 0's */
	assert_int_equal(t[1].max, 1 * MS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stall_gaps),
		cmocka_unit_test(test_stall_from_start_and_none),
		cmocka_unit_test(test_stall_shared),
		cmocka_unit_test(test_stall_shared_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
