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

/* The token of the last CHALLENGE queued for ip (0: none). */
static uint64_t challenge_for(struct world *w, uint32_t ip)
{
	uint64_t tok = 0;

	for (unsigned i = 0; i < w->nq; i++) {
		const struct mst_pkt *p = w->q[i].p;

		if (w->q[i].dst == ip && pkt_type(p) == PONY_T_CHALLENGE) {
			memcpy(&tok, p->data + sizeof(struct pony_hdr), sizeof(tok));
			tok = be64toh(tok);
		}
	}
	return tok;
}

static void inject_response(struct world *w, struct node *victim, uint32_t ip, uint32_t epoch,
			    uint64_t token)
{
	uint8_t d[sizeof(struct pony_hdr) + sizeof(struct pony_token_ext)];
	struct pony_token_ext t = { .token = htobe64(token) };

	put_pony_hdr(d, PONY_T_RESPONSE, 0, epoch, 0, 0);
	memcpy(d + sizeof(struct pony_hdr), &t, sizeof(t));
	pony_input(victim->py, pkt_new(w, d, sizeof(d)), ip, w->now);
}

/* C (no spoofing: it is at C_IP) passes address validation: its first
 * packet is challenged, it echoes the token. */
static void c_validates(struct world *w, struct node *victim)
{
	uint64_t tok;

	inject_partial(w, victim, 0);
	tok = challenge_for(w, C_IP);
	assert_true(tok != 0);
	inject_response(w, victim, C_IP, 12345, tok);
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
	c_validates(w, &w->b);
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
	c_validates(w, &w->b);
	for (uint32_t i = 0; i < w->b.conf.max_msgs; i++)
		inject_read_req(w, &w->b, i);
	assert_true(flow_of(&w->b, C_IP, w->now, &fi));
	assert_true(fi.tx_msgs_queued <= w->b.conf.max_msgs / 8);
	assert_true(w->b.st.drop[MST_DROP_pony_peer_over_share] > 0);
	assert_int_equal(node_send(&w->b, 2, 1, 0, region, 100, 2), 0);
	rmworld(w);
}

/* ---- spoofed packets (items 2-4: address validation) ---- */

static bool a_done_n(struct world *w, void *arg)
{
	return w->a.n_tx >= *(unsigned *)arg;
}

/* A DATA packet claiming to be A with epoch e, starting a conversation
 * (dst_epoch 0), as an off-path host spoofing A's address sends it. */
static void inject_spoofed_start(struct world *w, uint32_t e)
{
	uint8_t d[PONY_DATA_HLEN + 1];
	struct pony_data_ext x = {
		.msg_id = htonl(77), .msg_len = htonl(1), .src_svc = htons(1), .dst_svc = htons(2),
		.seg_len = htons(1),
	};

	put_pony_hdr(d, PONY_T_DATA, 0, e, 0, 0);
	memcpy(d + sizeof(struct pony_hdr), &x, sizeof(x));
	d[PONY_DATA_HLEN] = 'x';
	pony_input(w->b.py, pkt_new(w, d, sizeof(d)), A_IP, w->now);
}

/* While A streams a message to B, packets spoofing A's address with other
 * epochs (X + 2^31, X + 1, random: once "newer" always or half the time)
 * reach B. They used to fail B's flow (-ECONNRESET to every op to A) and
 * make B drop A's real packets as stale. Now each only gets a CHALLENGE
 * (which goes to the real A, who ignores it): the message arrives, the
 * spoofed data is never delivered. A real restart of A still replaces
 * the flow (its RESPONSE proves it). */
static void test_pony_spoofed_epoch_keeps_flow(void **state)
{
	struct world *w = mkworld();
	uint32_t len = 200 * 1420, e;
	uint8_t *buf = malloc(len), small[10] = { 3 };
	unsigned want = 1;

	fill_pattern(buf, len, 21);
	flow_warm_up(w);
	assert_int_equal(node_send(&w->a, 1, 2, 0, buf, len, 1), 0);
	world_run(w, 100 * US, NULL, NULL);
	e = late_a_epoch; /* any value: the attacker does not know A's epoch */
	for (uint32_t i = 0; i < 64; i++)
		inject_spoofed_start(w, i == 0 ? e + 0x80000000u : i == 1 ? e + 1 : (uint32_t)rnd(w) | 1);
	assert_true(world_run(w, 2000 * MS, a_done_n, &want));
	assert_int_equal(w->a.tx[0].status, 0);
	assert_int_equal(w->b.n_order, 1);
	assert_int_equal(w->b.rx[0].mi.len, len);
	assert_int_equal(fnv(w->b.rx[0].buf, len), fnv(buf, len));
	assert_int_equal(w->b.st.ctr[MST_CTR_pony_flows_failed], 0);
	assert_true(w->b.st.drop[MST_DROP_pony_unvalidated] >= 64);
	assert_int_equal(w->a.st.ctr[MST_CTR_pony_challenges_rx], 0); /* A ignores them */
	/* A restarts for real: B's flow is replaced once A echoes the token */
	node_restart(w, &w->a);
	assert_int_equal(node_send(&w->a, 1, 2, 0, small, sizeof(small), 2), 0);
	want = 2;
	assert_true(world_run(w, 100 * MS, a_done_n, &want));
	assert_int_equal(w->a.tx[1].status, 0);
	assert_int_equal(w->b.n_order, 2);
	assert_int_equal(w->b.st.ctr[MST_CTR_pony_flows_failed], 1);
	assert_true(w->b.st.ctr[MST_CTR_pony_peers_validated] >= 1);
	free(buf);
	rmworld(w);
}

/* A READ request with a spoofed source (C) for a region that exists: the
 * response would go to C. Before validation B sends C no more than it
 * received (the CHALLENGE); it used to stream the whole READ at the
 * initial window (64 x 1,502 bytes for 56). */
static void test_pony_spoofed_read_no_amplification(void **state)
{
	struct world *w = mkworld();
	static uint8_t region[1000000];
	uint64_t in = 0;

	w->b.regions[0] = (struct region){ .svc = 30, .key = 7, .buf = region, .len = sizeof(region) };
	w->b.n_regions = 1;
	for (uint32_t i = 0; i < 100; i++) {
		inject_read_req(w, &w->b, i);
		in += sizeof(struct pony_hdr) + sizeof(struct pony_read_ext);
	}
	world_run(w, 50 * MS, NULL, NULL);
	assert_true(w->to_others_bytes <= 3 * in);
	assert_int_equal(pony_flow_count(w->b.py), 0);
	assert_int_equal(w->b.st.ctr[MST_CTR_pony_reads_served], 0);
	rmworld(w);
}

/* A RESPONSE counts only with the token B issued to that address, for
 * that epoch, in the last 2 s: not a changed bit, another epoch, another
 * address, nor an old token. */
static void test_pony_response_needs_fresh_token(void **state)
{
	struct world *w = mkworld();
	uint64_t tok;

	inject_partial(w, &w->b, 0);
	tok = challenge_for(w, C_IP);
	assert_true(tok != 0);
	inject_response(w, &w->b, C_IP, 12345, tok ^ 1);
	inject_response(w, &w->b, C_IP, 12346, tok);
	inject_response(w, &w->b, A_IP, 12345, tok);
	w->now += 3000 * MS;
	inject_response(w, &w->b, C_IP, 12345, tok);
	assert_int_equal(w->b.st.drop[MST_DROP_pony_bad_token], 4);
	assert_int_equal(pony_flow_count(w->b.py), 0);
	w->now -= 2500 * MS; /* (the harness clock only moves forward elsewhere) */
	inject_response(w, &w->b, C_IP, 12345, tok);
	assert_int_equal(pony_flow_count(w->b.py), 1);
	assert_int_equal(w->b.st.ctr[MST_CTR_pony_peers_validated], 1);
	rmworld(w);
}

/* ---- fields a flow's packets must get right ---- */

/* One DATA piece from C of message msg_id on stream 5 with number seq. */
static void inject_numbered(struct world *w, struct node *victim, uint32_t msg_id, uint32_t seq,
			    uint32_t psn)
{
	uint8_t d[PONY_DATA_HLEN];
	struct pony_data_ext x = {
		.msg_id = htonl(msg_id), .stream = htonl(5), .seq = htonl(seq),
		.msg_len = htonl(65536), .off = 0, .src_svc = htons(1), .dst_svc = htons(2),
		.seg_len = htons(1),
	};

	put_pony_hdr(d, PONY_T_DATA, PONY_F_SKIP, 12345, 0, psn);
	memcpy(d + sizeof(struct pony_hdr), &x, sizeof(x));
	pony_input(victim->py, pkt_new(w, d, sizeof(d)), C_IP, w->now);
}

/* A message number max_msgs or more ahead of the stream's next one cannot
 * be a message the peer has in flight (it holds at most max_msgs): it is
 * refused as a bad field and takes no message; one less is accepted. */
static void test_pony_msg_number_too_far_ahead(void **state)
{
	struct world *w = mkworld();
	uint32_t max = w->b.conf.max_msgs;
	struct pony_flow_info fi;

	c_validates(w, &w->b);
	inject_numbered(w, &w->b, 1, max, 1);
	assert_int_equal(w->b.st.drop[MST_DROP_pony_bad_field], 1);
	assert_true(flow_of(&w->b, C_IP, w->now, &fi));
	assert_int_equal(fi.rx_msgs_partial, 0);
	inject_numbered(w, &w->b, 2, max - 1, 2);
	assert_int_equal(w->b.st.drop[MST_DROP_pony_bad_field], 1);
	assert_true(flow_of(&w->b, C_IP, w->now, &fi));
	assert_int_equal(fi.rx_msgs_partial, 1);
	rmworld(w);
}

static uint32_t ack_a_epoch, ack_b_epoch, ack_psn;
static bool ack_seen;

/* Keep every ACK from B away from A; note the epochs and psn of A's data. */
static bool drop_acks_to_a(struct world *w, const struct mst_pkt *p, uint32_t src, uint32_t dst)
{
	if (src == A_IP && pkt_type(p) == PONY_T_DATA) {
		ack_a_epoch = pkt_src_epoch(p);
		ack_b_epoch = pkt_dst_epoch(p);
		ack_psn = pkt_psn(p);
		ack_seen = true;
	}
	return src == B_IP;
}

static void inject_ack(struct world *w, uint32_t src_epoch, uint32_t dst_epoch, uint32_t cum)
{
	uint8_t d[sizeof(struct pony_hdr) + sizeof(struct pony_ack_ext)];
	struct pony_ack_ext a;

	memset(&a, 0, sizeof(a));
	a.cum = htonl(cum);
	a.credits = htonl(w->a.conf.window_pkts);
	put_pony_hdr(d, PONY_T_ACK, 0, src_epoch, dst_epoch, 0);
	memcpy(d + sizeof(struct pony_hdr), &a, sizeof(a));
	pony_input(w->a.py, pkt_new(w, d, sizeof(d)), B_IP, w->now);
}

/* An ACK addressed to another incarnation of A's flow (its dst_epoch is
 * not A's epoch: a stale packet from before a restart, or a guess) says
 * nothing about what B holds: it is dropped as stale and completes
 * nothing. The same ACK with A's epoch completes the message. */
static void test_pony_ack_for_other_epoch_ignored(void **state)
{
	struct world *w = mkworld();
	uint8_t msg[100] = { 9 };

	flow_warm_up(w);
	ack_seen = false;
	w->filter = drop_acks_to_a;
	assert_int_equal(node_send(&w->a, 1, 2, 0, msg, sizeof(msg), 1), 0);
	while (!ack_seen)
		world_run(w, 1, NULL, NULL);
	inject_ack(w, ack_b_epoch, ack_a_epoch + 1, ack_psn + 1);
	inject_ack(w, ack_b_epoch, ack_a_epoch ^ 0x80000000u, ack_psn + 1);
	assert_int_equal(w->a.st.drop[MST_DROP_pony_stale_epoch], 2);
	assert_int_equal(w->a.n_tx, 0);
	inject_ack(w, ack_b_epoch, ack_a_epoch, ack_psn + 1);
	assert_int_equal(w->a.n_tx, 1);
	assert_int_equal(w->a.tx[0].status, 0);
	rmworld(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pony_late_ack_keeps_newer_slot),
		cmocka_unit_test(test_pony_partial_flood_one_peer),
		cmocka_unit_test(test_pony_read_flood_one_peer),
		cmocka_unit_test(test_pony_spoofed_epoch_keeps_flow),
		cmocka_unit_test(test_pony_spoofed_read_no_amplification),
		cmocka_unit_test(test_pony_response_needs_fresh_token),
		cmocka_unit_test(test_pony_msg_number_too_far_ahead),
		cmocka_unit_test(test_pony_ack_for_other_epoch_ignored),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
