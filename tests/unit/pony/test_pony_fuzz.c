/* SPDX-License-Identifier: BSD-3-Clause */
/* Unit tests: garbage and hostile input to pony_input(). */
#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "pony_helper.h"
#include "transport/pony/pony_wire.h"

static struct world *mkworld_fuzz(uint32_t max_flows)
{
	struct world *w = calloc(1, sizeof(*w));
	struct pony_conf c;

	pony_conf_defaults(&c);
	c.max_flows = max_flows;
	c.max_msgs = 256;
	world_init(w, &c);
	return w;
}

/* A valid first DATA packet of a 2-packet message, as a new flow sends it. */
static uint16_t mk_data(uint8_t *b, uint32_t epoch, uint32_t psn)
{
	struct pony_hdr h = { .ver = PONY_VERSION, .type = PONY_T_DATA, .src_epoch = htonl(epoch),
			      .psn = htonl(psn) };
	struct pony_data_ext d = { .msg_id = htonl(psn), .msg_len = htonl(200), .off = 0,
				   .src_svc = htons(1), .dst_svc = htons(2), .seg_len = htons(100) };

	memcpy(b, &h, sizeof(h));
	memcpy(b + sizeof(h), &d, sizeof(d));
	memset(b + PONY_DATA_HLEN, 0x33, 100);
	return PONY_DATA_HLEN + 100;
}

static void test_pony_fuzz_garbage(void **state)
{
	struct world *w = mkworld_fuzz(16);
	uint8_t b[1500];

	for (unsigned i = 0; i < 200000; i++) {
		uint16_t len = (uint16_t)(rnd(w) % 400);

		for (unsigned j = 0; j < len; j++)
			b[j] = (uint8_t)rnd(w);
		if (i & 1) { /* get past the first checks more often */
			b[0] = PONY_VERSION;
			if (len > 1)
				b[1] = (uint8_t)(1 + rnd(w) % 7);
		}
		pony_input(w->b.py, pkt_new(w, b, len), (uint32_t)(rnd(w) % 64) + 1, w->now);
		if (i % 1000 == 0) {
			w->now += 100 * US;
			pony_poll(w->b.py, w->now);
		}
	}
	assert_true(total_drops(&w->b.st) > 100000);
	assert_true(w->b.st.drop[MST_DROP_pony_truncated] > 0);
	assert_true(w->b.st.drop[MST_DROP_pony_bad_version] > 0);
	assert_true(w->b.st.drop[MST_DROP_pony_bad_type] > 0);
	assert_true(pony_flow_count(w->b.py) <= 16);
	world_fini(w);
	free(w);
}

/* Mutations of real traffic: bit flips and truncation on a live transfer. */
static void test_pony_fuzz_mutated(void **state)
{
	struct world *w = mkworld_fuzz(16);
	static uint8_t buf[300000];
	uint8_t pkt[1500];

	w->corrupt = 50;
	w->truncate = 20;
	fill_pattern(buf, sizeof(buf), 4);
	for (unsigned i = 0; i < 20; i++)
		node_send(&w->a, 1, 2, i % 3, buf, 1 + (uint32_t)(rnd(w) % sizeof(buf)), i);
	world_run(w, 2000 * MS, NULL, NULL);
	/* corrupted data may be delivered (Pony trusts the UDP checksum), but nothing crashes */
	assert_true(total_drops(&w->b.st) + total_drops(&w->a.st) > 0);
	/* replayed, mutated copies of one valid packet */
	for (unsigned i = 0; i < 50000; i++) {
		uint16_t len = mk_data(pkt, 5, (uint32_t)(rnd(w) % 2000));

		pkt[rnd(w) % len] ^= (uint8_t)rnd(w);
		pony_input(w->b.py, pkt_new(w, pkt, (uint16_t)(rnd(w) % (len + 1))), 0x0900000a,
			   w->now);
	}
	world_run(w, 100 * MS, NULL, NULL);
	world_fini(w);
	free(w);
}

/* Valid packets from 100k (spoofed) source addresses, half of them to a
 * service nobody bound: none of them creates state (issue 13 item 3: each
 * used to take a flow, a NAK kept it from eviction, and the table was
 * full). Each gets a CHALLENGE no larger than itself; a real peer gets
 * through at once. */
static void test_pony_many_sources_no_state(void **state)
{
	struct world *w = mkworld_fuzz(64);
	uint8_t pkt[1500];

	w->b.bound_lo = w->b.bound_hi = 2;
	for (uint32_t i = 0; i < 100000; i++) {
		uint16_t len = mk_data(pkt, 1000 + i, 0);

		if (i % 2)
			pkt[sizeof(struct pony_hdr) + offsetof(struct pony_data_ext, dst_svc) + 1] = 3;
		pony_input(w->b.py, pkt_new(w, pkt, len), htonl(0x0b000000u + i), w->now);
		assert_int_equal(pony_flow_count(w->b.py), 0);
	}
	assert_int_equal(w->b.st.drop[MST_DROP_pony_unvalidated], 100000);
	assert_int_equal(w->b.st.ctr[MST_CTR_pony_challenges_sent], 100000);
	assert_int_equal(w->b.st.ctr[MST_CTR_pony_flows_created], 0);
	world_purge_others(w);
	assert_int_equal(w->to_others, 100000);
	assert_true(w->to_others_bytes <= 100000ull * 40);
	{
		uint8_t m[100] = { 1 };
		unsigned want = 1;

		assert_int_equal(node_send(&w->a, 1, 2, 0, m, sizeof(m), 1), 0);
		assert_true(world_run(w, 10 * MS, all_tx_done, &want));
		assert_int_equal(w->a.tx[0].status, 0);
	}
	world_fini(w);
	free(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pony_fuzz_garbage),
		cmocka_unit_test(test_pony_fuzz_mutated),
		cmocka_unit_test(test_pony_many_sources_no_state),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
