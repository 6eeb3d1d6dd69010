/* SPDX-License-Identifier: BSD-3-Clause */
/* Unit tests: Pony one-sided READ, served by the peer's engine alone. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pony_helper.h"

static struct world *mkworld_read(void)
{
	struct world *w = calloc(1, sizeof(*w));
	struct pony_conf c;

	pony_conf_defaults(&c);
	c.max_flows = 16;
	c.max_msgs = 64;
	world_init(w, &c);
	return w;
}

static bool reads_done(struct world *w, void *arg)
{
	return w->a.n_rd >= *(unsigned *)arg;
}

static int do_read(struct world *w, uint16_t svc, uint64_t key, uint64_t off, uint32_t len,
		   void *dst, uint64_t cookie)
{
	return pony_read(w->a.py, B_IP, 1, svc, key, off, len, dst, cookie, w->now);
}

static void test_pony_read_results(void **state)
{
	struct world *w = mkworld_read();
	static uint8_t region[100000], dst[100000];
	unsigned want = 5;

	fill_pattern(region, sizeof(region), 5);
	w->b.regions[0] = (struct region){ .svc = 30, .key = 7, .buf = region, .len = sizeof(region) };
	w->b.regions[1] = (struct region){ .svc = 30, .key = 8, .buf = region, .len = 10,
					   .perm_err = -EACCES };
	w->b.n_regions = 2;
	assert_int_equal(do_read(w, 30, 7, 100, 1000, dst, 1), 0);     /* ok */
	assert_int_equal(do_read(w, 30, 7, 99990, 11, dst, 2), 0);     /* past the end */
	assert_int_equal(do_read(w, 30, 9, 0, 1, dst, 3), 0);          /* no such key */
	assert_int_equal(do_read(w, 30, 8, 0, 1, dst, 4), 0);          /* not allowed */
	assert_int_equal(do_read(w, 31, 7, 0, 1, dst, 5), 0);          /* key of another svc */
	assert_true(world_run(w, 100 * MS, reads_done, &want));
	assert_int_equal(find_done(w->a.rd, w->a.n_rd, 1)->status, 0);
	assert_memory_equal(dst, region + 100, 1000);
	assert_int_equal(find_done(w->a.rd, w->a.n_rd, 2)->status, -ERANGE);
	assert_int_equal(find_done(w->a.rd, w->a.n_rd, 3)->status, -ENOENT);
	assert_int_equal(find_done(w->a.rd, w->a.n_rd, 4)->status, -EACCES);
	assert_int_equal(find_done(w->a.rd, w->a.n_rd, 5)->status, -ENOENT);
	assert_int_equal(w->b.n_order, 0); /* the app on B saw nothing */
	world_run(w, 1 * MS, NULL, NULL);  /* the last ACK reaches B */
	assert_int_equal(w->b.st.ctr[MST_CTR_pony_reads_served], 1);
	world_fini(w);
	free(w);
}

static void large_read(unsigned loss)
{
	struct world *w = mkworld_read();
	uint32_t n = 16u << 20;
	uint8_t *region = malloc(n), *dst = malloc(n);
	unsigned want = 1;

	fill_pattern(region, n, 9);
	w->loss = loss;
	w->b.regions[0] = (struct region){ .svc = 30, .key = 1, .buf = region, .len = n };
	w->b.n_regions = 1;
	assert_int_equal(do_read(w, 30, 1, 0, n, dst, 1), 0);
	assert_true(world_run(w, 30000 * MS, reads_done, &want));
	assert_int_equal(w->a.rd[0].status, 0);
	assert_true(fnv(dst, n) == fnv(region, n));
	assert_true(w->b.st.ctr[MST_CTR_pony_tx_pkts] > n / 1500);
	free(region);
	free(dst);
	world_fini(w);
	free(w);
}

static void test_pony_read_large(void **state) { large_read(0); }
static void test_pony_read_large_lossy(void **state) { large_read(20); }

/* The serving side's message pool is full: requests wait (not acked), then complete. */
static void test_pony_read_server_pool_full(void **state)
{
	struct world *w = mkworld_read();
	static uint8_t region[200000], dst[100][2000];
	unsigned want = 100;

	fill_pattern(region, sizeof(region), 1);
	w->b.regions[0] = (struct region){ .svc = 30, .key = 1, .buf = region, .len = sizeof(region) };
	w->b.n_regions = 1;
	for (unsigned i = 0; i < 60; i++)
		assert_int_equal(do_read(w, 30, 1, i * 1000, 2000, dst[i], i), 0);
	/* B's pool (64) must also take B's own traffic: fill it with reads of A */
	assert_true(world_run(w, 3000 * MS, reads_done, &(unsigned){ 60 }));
	for (unsigned i = 60; i < 100; i++)
		assert_int_equal(do_read(w, 30, 1, i * 1000, 2000, dst[i], i), 0);
	assert_true(world_run(w, 3000 * MS, reads_done, &want));
	for (unsigned i = 0; i < 100; i++) {
		assert_int_equal(find_done(w->a.rd, w->a.n_rd, i)->status, 0);
		assert_memory_equal(dst[i], region + i * 1000, 2000);
	}
	world_fini(w);
	free(w);
}

/* The region disappears mid-response: the reader gets the error. */
static void test_pony_read_region_gone(void **state)
{
	struct world *w = mkworld_read();
	uint32_t n = 16u << 20;
	uint8_t *region = malloc(n), *dst = malloc(n);
	unsigned want = 1;

	w->b.regions[0] = (struct region){ .svc = 30, .key = 1, .buf = region, .len = n };
	w->b.n_regions = 1;
	assert_int_equal(do_read(w, 30, 1, 0, n, dst, 1), 0);
	world_run(w, 500 * US, NULL, NULL);
	assert_int_equal(w->a.n_rd, 0);
	w->b.n_regions = 0;
	assert_true(world_run(w, 1000 * MS, reads_done, &want));
	assert_int_equal(w->a.rd[0].status, -ENOENT);
	world_run(w, 100 * MS, NULL, NULL);
	free(region);
	free(dst);
	world_fini(w);
	free(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pony_read_results),
		cmocka_unit_test(test_pony_read_large),
		cmocka_unit_test(test_pony_read_large_lossy),
		cmocka_unit_test(test_pony_read_server_pool_full),
		cmocka_unit_test(test_pony_read_region_gone),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
