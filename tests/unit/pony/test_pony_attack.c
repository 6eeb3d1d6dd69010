/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests: Pony against hostile or unlucky peers (issue 13). Each test
 * builds the attack packet by packet through the harness and checks that
 * the victim keeps serving everyone else.
 */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pony_helper.h"
#include "transport/pony/pony_wire.h"

static bool a_done_1(struct world *w, void *arg)
{
	return w->a.n_tx >= 1;
}

/* ---- a late ACK (item 5) ---- */

#define LATE_PSN 600u /* A's data packet that is lost once */
static bool late_dropped;
static uint32_t late_a_epoch, late_b_epoch;

static bool drop_late_psn(struct world *w, const struct mst_pkt *p, uint32_t src, uint32_t dst)
{
	if (src != A_IP || pkt_type(p) != PONY_T_DATA || pkt_psn(p) != LATE_PSN || late_dropped)
		return false;
	late_dropped = true;
	late_a_epoch = pkt_src_epoch(p);
	late_b_epoch = pkt_dst_epoch(p);
	return true;
}

/* An ACK from B that was overtaken by a whole window of newer ones: its
 * selective-ack bit for psn LATE_PSN - win names a packet A retired long
 * ago, whose window slot LATE_PSN (lost, not yet retransmitted) now uses.
 * It must not retire LATE_PSN: the message would never complete (before
 * the fix A reported it sent while B never got it whole). */
static void test_pony_late_ack_keeps_newer_slot(void **state)
{
	struct world *w = mkworld();
	uint32_t len = 1000 * 1420, win = 512;
	uint8_t *buf = malloc(len);
	uint8_t d[sizeof(struct pony_hdr) + sizeof(struct pony_ack_ext)];
	struct pony_ack_ext a;

	fill_pattern(buf, len, 11);
	late_dropped = false;
	w->filter = drop_late_psn;
	assert_int_equal(node_send(&w->a, 1, 2, 0, buf, len, 1), 0);
	while (!late_dropped)
		world_run(w, 1, NULL, NULL);
	memset(&a, 0, sizeof(a));
	a.cum = htonl(LATE_PSN - win - 1);
	a.credits = htonl(win);
	a.sack[0] = 1; /* psn cum + 1 = LATE_PSN - win */
	put_pony_hdr(d, PONY_T_ACK, 0, late_b_epoch, late_a_epoch, 0);
	memcpy(d + sizeof(struct pony_hdr), &a, sizeof(a));
	pony_input(w->a.py, pkt_new(w, d, sizeof(d)), B_IP, w->now);
	assert_true(world_run(w, 5000 * MS, a_done_1, NULL));
	assert_int_equal(w->a.tx[0].status, 0);
	assert_int_equal(w->b.n_order, 1);
	assert_int_equal(fnv(w->b.rx[0].buf, len), fnv(buf, len));
	assert_true(w->a.st.drop[MST_DROP_pony_late_sack] >= 1);
	free(buf);
	rmworld(w);
}

/* ---- message pool exhaustion by one peer (item 1) ---- */

#define C_IP 0x0300000au /* 10.0.0.3: a third host, the attacker (no spoofing) */

/* One DATA packet from C: the 1-byte first piece of a 64 KiB message that
 * C abandoned (SKIP: no endpoint is involved) and never finishes. */
static void inject_partial(struct world *w, struct node *victim, uint32_t i)
{
	uint8_t d[PONY_DATA_HLEN];
	struct pony_data_ext x = {
		.msg_id = htonl(i), .stream = htonl(i / 256), .seq = htonl(i % 256),
		.msg_len = htonl(65536), .off = 0, .src_svc = htons(1), .dst_svc = htons(2),
		.seg_len = htons(1),
	};

	put_pony_hdr(d, PONY_T_DATA, PONY_F_SKIP, 12345, 0, i);
	memcpy(d + sizeof(struct pony_hdr), &x, sizeof(x));
	pony_input(victim->py, pkt_new(w, d, sizeof(d)), C_IP, w->now);
}

static bool flow_of(struct node *n, uint32_t peer, uint64_t now, struct pony_flow_info *fi)
{
	for (unsigned i = 0; i < pony_flow_count(n->py); i++)
		if (pony_flow_info(n->py, i, fi, now) == 0 && fi->peer == peer)
			return true;
	return false;
}

static bool a_and_b_sent(struct world *w, void *arg)
{
	return w->a.n_tx >= 1 && w->b.n_tx >= 1;
}

/* C sends more first pieces than B's whole message pool holds. C gets its
 * share and no more; A's message to B and B's own send to A go through;
 * once C is quiet for rx_stall_ms its flow is reset and its share freed.
 * Before the fix B's pool was full for good: B refused A ("busy") and its
 * own sends failed with ENOBUFS. */
static void test_pony_partial_flood_one_peer(void **state)
{
	struct world *w = calloc(1, sizeof(*w));
	struct pony_conf c = conf_small();
	struct pony_flow_info fi;
	uint8_t msg[3000];

	c.rx_stall_ms = 1000;
	world_init(w, &c);
	fill_pattern(msg, sizeof(msg), 5);
	for (uint32_t i = 0; i < c.max_msgs + 100; i++)
		inject_partial(w, &w->b, i);
	assert_true(flow_of(&w->b, C_IP, w->now, &fi));
	assert_true(fi.rx_msgs_partial <= c.max_msgs / 8); /* the default share */
	assert_true(w->b.st.drop[MST_DROP_pony_peer_over_share] > 0);
	assert_int_equal(node_send(&w->a, 1, 2, 0, msg, sizeof(msg), 1), 0);
	assert_int_equal(node_send(&w->b, 2, 1, 0, msg, sizeof(msg), 2), 0);
	assert_true(world_run(w, 100 * MS, a_and_b_sent, NULL));
	assert_int_equal(w->a.tx[0].status, 0);
	assert_int_equal(w->b.tx[0].status, 0);
	assert_int_equal(w->b.n_order, 1);
	assert_int_equal(fnv(w->b.rx[0].buf, sizeof(msg)), fnv(msg, sizeof(msg)));
	/* C goes quiet: its partial messages expire with its flow */
	world_run(w, c.rx_stall_ms * MS + 10 * MS, NULL, NULL);
	assert_false(flow_of(&w->b, C_IP, w->now, &fi));
	assert_int_equal(w->b.st.ctr[MST_CTR_pony_rx_stalled], 1);
	/* A's idle flow to B stays */
	assert_true(flow_of(&w->b, A_IP, w->now, &fi));
	rmworld(w);
}

/* A peer's share also bounds the READs we serve for it, and our own READs
 * and sends keep the reserve: C's READ requests beyond its share wait. */
static void inject_read_req(struct world *w, struct node *victim, uint32_t i)
{
	uint8_t d[sizeof(struct pony_hdr) + sizeof(struct pony_read_ext)];
	struct pony_read_ext r = {
		.req_id = htonl(i), .key = htobe64(7), .off = 0, .len = htonl(1000000),
		.src_svc = htons(1), .dst_svc = htons(30),
	};

	put_pony_hdr(d, PONY_T_READ_REQ, 0, 12345, 0, i);
	memcpy(d + sizeof(struct pony_hdr), &r, sizeof(r));
	pony_input(victim->py, pkt_new(w, d, sizeof(d)), C_IP, w->now);
}

static void test_pony_read_flood_one_peer(void **state)
{
	struct world *w = mkworld();
	static uint8_t region[1000000];
	struct pony_flow_info fi;

	w->b.regions[0] = (struct region){ .svc = 30, .key = 7, .buf = region, .len = sizeof(region) };
	w->b.n_regions = 1;
	for (uint32_t i = 0; i < w->b.conf.max_msgs; i++)
		inject_read_req(w, &w->b, i);
	assert_true(flow_of(&w->b, C_IP, w->now, &fi));
	assert_true(fi.tx_msgs_queued <= w->b.conf.max_msgs / 8);
	assert_true(w->b.st.drop[MST_DROP_pony_peer_over_share] > 0);
	assert_int_equal(node_send(&w->b, 2, 1, 0, region, 100, 2), 0);
	rmworld(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pony_late_ack_keeps_newer_slot),
		cmocka_unit_test(test_pony_partial_flood_one_peer),
		cmocka_unit_test(test_pony_read_flood_one_peer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
