/* SPDX-License-Identifier: BSD-3-Clause */
/* SPSC ring and byte FIFO helpers of libmustang (client/ring.h, fifo.h). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "fifo.h"
#include "ring.h"

static struct mst_shm_ring *ring_new(uint32_t start)
{
	struct mst_shm_ring *r = aligned_alloc(64, sizeof(*r));

	memset(r, 0, sizeof(*r));
	r->prod = r->cons = start;
	return r;
}

static void test_ring_push_pop_in_order(void **state)
{
	struct mst_shm_ring *r = ring_new(0);
	struct mst_shm_msg m = { 0 }, o;

	for (uint32_t i = 0; i < MST_SHM_RING_SLOTS; i++) {
		m.seq = i;
		assert_int_equal(ring_push(r, &m), 0);
	}
	assert_int_equal(ring_push(r, &m), -ENOBUFS);
	assert_int_equal(ring_avail(r), MST_SHM_RING_SLOTS);
	for (uint32_t i = 0; i < MST_SHM_RING_SLOTS; i++) {
		assert_int_equal(ring_pop(r, &o), 1);
		assert_int_equal(o.seq, i);
	}
	assert_int_equal(ring_pop(r, &o), 0);
	free(r);
}

static void test_ring_wraparound_of_free_running_indices(void **state)
{
	struct mst_shm_ring *r = ring_new(UINT32_MAX - 700);
	struct mst_shm_msg m = { 0 }, o;
	uint32_t next = 0, want = 0;

	/* Several fill/drain rounds straddling 2^32. */
	for (int round = 0; round < 5; round++) {
		while (ring_push(r, &m) == 0)
			m.seq = ++next;
		assert_int_equal(ring_avail(r), MST_SHM_RING_SLOTS);
		for (int k = 0; k < 600; k++) {
			assert_int_equal(ring_pop(r, &o), 1);
			assert_int_equal(o.seq, want++);
		}
	}
	assert_true(r->prod < 10000); /* it wrapped */
	while (ring_pop(r, &o) == 1)
		assert_int_equal(o.seq, want++);
	assert_int_equal(want, next);
	free(r);
}

static void test_ring_consumer_rejects_corrupt_prod(void **state)
{
	struct mst_shm_ring *r = ring_new(UINT32_MAX - 3);
	struct mst_shm_msg o;

	r->prod = r->cons + MST_SHM_RING_SLOTS + 1;
	assert_int_equal(ring_avail(r), -EBADMSG);
	assert_int_equal(ring_pop(r, &o), -EBADMSG);
	assert_int_equal(ring_drain(r), -EBADMSG);
	r->prod = r->cons - 1; /* "behind" the consumer */
	assert_int_equal(ring_pop(r, &o), -EBADMSG);
	r->prod = r->cons + MST_SHM_RING_SLOTS; /* exactly full is fine */
	assert_int_equal(ring_avail(r), MST_SHM_RING_SLOTS);
	free(r);
}

#define STRESS_N 1000000u

static void *producer(void *arg)
{
	struct mst_shm_ring *r = arg;
	struct mst_shm_msg m = { 0 };

	for (uint32_t i = 0; i < STRESS_N; i++) {
		m.seq = i;
		m.a = (uint64_t)i * 2654435761u;
		m.d = ~m.a;
		while (ring_push(r, &m) < 0)
			;
	}
	return NULL;
}

static void test_ring_two_thread_stress(void **state)
{
	struct mst_shm_ring *r = ring_new(UINT32_MAX - 5000);
	struct mst_shm_msg o = { 0 };
	pthread_t th;
	uint32_t want = 0;

	pthread_create(&th, NULL, producer, r);
	while (want < STRESS_N) {
		int n = ring_pop(r, &o);

		assert_true(n >= 0);
		if (!n)
			continue;
		if (o.seq != want || o.a != (uint64_t)want * 2654435761u || o.d != ~o.a)
			fail_msg("message %u: got seq %u", want, o.seq);
		want++;
	}
	pthread_join(th, NULL);
	assert_int_equal(ring_avail(r), 0);
	free(r);
}

static void test_fifo_copy_with_wrap(void **state)
{
	uint8_t fifo[64], in[64], out[64];
	void *p1, *p2;
	size_t n1, n2;
	uint32_t pos = UINT32_MAX - 9; /* counter wraps inside the copy */

	for (int i = 0; i < 64; i++)
		in[i] = (uint8_t)(i * 7 + 1);
	memset(fifo, 0, sizeof(fifo));
	fifo_copy_in(fifo, 64, pos, in, 40);
	assert_int_equal(fifo[(pos & 63)], in[0]);
	assert_int_equal(fifo[0], in[10]);
	fifo_copy_out(fifo, 64, pos, out, 40);
	assert_memory_equal(in, out, 40);
	fifo_regions(fifo, 64, pos, 40, &p1, &n1, &p2, &n2);
	assert_ptr_equal(p1, fifo + 54);
	assert_int_equal(n1, 10);
	assert_ptr_equal(p2, fifo);
	assert_int_equal(n2, 30);
	fifo_regions(fifo, 64, 3, 20, &p1, &n1, &p2, &n2);
	assert_int_equal(n1, 20);
	assert_null(p2);
	assert_int_equal(n2, 0);
	/* A full FIFO's worth from the middle. */
	fifo_copy_in(fifo, 64, 17, in, 64);
	fifo_copy_out(fifo, 64, 17, out, 64);
	assert_memory_equal(in, out, 64);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ring_push_pop_in_order),
		cmocka_unit_test(test_ring_wraparound_of_free_running_indices),
		cmocka_unit_test(test_ring_consumer_rejects_corrupt_prod),
		cmocka_unit_test(test_ring_two_thread_stress),
		cmocka_unit_test(test_fifo_copy_with_wrap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
