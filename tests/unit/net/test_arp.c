/* SPDX-License-Identifier: BSD-3-Clause */
/* Unit tests: ARP cache, replies, resolution and pending queue (arp.c). */
#include <errno.h>
#include <string.h>

#include "net_helper.h"

#define MS 1000000ull

#define PROTO_TEST 253 /* RFC 3692 experimentation: no L4 checksum */

/* Send an 8-byte payload whose first byte is `tag` to dst. */
static int send_tagged(struct net_fix *f, uint32_t dst, uint8_t tag)
{
	struct mst_pkt *p = fake_alloc(f);
	uint8_t *d = must_append(p, 8);

	memset(d, 0, 8);
	d[0] = tag;
	return net_ip_output(f->ns, p, dst, PROTO_TEST, f->now);
}

static void assert_arp_frame(const struct mst_pkt *p, const uint8_t *eth_dst, uint16_t op,
			     const uint8_t *sha, uint32_t spa, const uint8_t *tha, uint32_t tpa)
{
	const uint8_t *a = p->data + 14;

	assert_int_equal(p->len, 42);
	assert_memory_equal(p->data, eth_dst, 6);
	assert_memory_equal(p->data + 6, our_mac, 6);
	assert_int_equal(rd16(p->data + 12), NET_ETHERTYPE_ARP);
	assert_int_equal(rd16(a), 1);
	assert_int_equal(rd16(a + 2), 0x0800);
	assert_int_equal(a[4], 6);
	assert_int_equal(a[5], 4);
	assert_int_equal(rd16(a + 6), op);
	assert_memory_equal(a + 8, sha, 6);
	assert_int_equal(rd32n(a + 14), spa);
	assert_memory_equal(a + 18, tha, 6);
	assert_int_equal(rd32n(a + 24), tpa);
}

static void test_arp_request_for_us_answered_in_place(void **state)
{
	struct net_fix *f = *state;
	struct mst_pkt *p = mk_arp(f, bcast_mac, 1, peer_mac, PEER_IP, bcast_mac, OUR_IP);
	uint8_t *tail = must_append(p, 18); /* sender's Ethernet padding */

	memset(tail, 0, 18);
	fix_input(f, p);
	assert_int_equal(drops_total(&f->st), 0);
	assert_int_equal(f->fio.n_tx, 1);
	assert_ptr_equal(f->fio.tx[0], p); /* reused, no allocation */
	assert_int_equal(f->fio.in_use, 1);
	assert_arp_frame(f->fio.tx[0], peer_mac, 2, our_mac, OUR_IP, peer_mac, PEER_IP);
	assert_int_equal(f->st.ctr[MST_CTR_arp_replies_sent], 1);
	assert_int_equal(f->st.ctr[MST_CTR_arp_rx], 1);
	assert_int_equal(f->st.ctr[MST_CTR_arp_cache_learned], 1);
	assert_int_equal(net_arp_count(f->ns), 1);
}

static void test_arp_reply_to_us_is_learned(void **state)
{
	struct net_fix *f = *state;
	uint8_t mac[6];

	fix_input(f, mk_arp(f, our_mac, 2, peer_mac, PEER_IP, our_mac, OUR_IP));
	assert_int_equal(drops_total(&f->st), 0);
	assert_int_equal(f->fio.n_tx, 0);
	fake_assert_no_leak(f);
	assert_true(net_arp_lookup(f->ns, PEER_IP, mac, f->now));
	assert_memory_equal(mac, peer_mac, 6);
}

static void test_arp_request_for_other_not_learned(void **state)
{
	struct net_fix *f = *state;
	uint8_t mac[6];

	fix_input(f, mk_arp(f, bcast_mac, 1, peer_mac, PEER_IP, bcast_mac, ip4(10, 0, 0, 9)));
	assert_dropped_silently(f, MST_DROP_arp_not_for_us);
	assert_false(net_arp_lookup(f->ns, PEER_IP, mac, f->now));
	assert_int_equal(net_arp_count(f->ns), 0);
}

static void test_arp_known_sender_refreshed_by_any_packet(void **state)
{
	struct net_fix *f = *state;
	const uint8_t moved[6] = { 0x02, 0, 0, 0, 0, 0x42 };
	uint8_t mac[6];

	fix_learn(f, PEER_IP, peer_mac);
	/* RFC 826 merge: a request to somebody else still updates the entry. */
	fix_input(f, mk_arp(f, bcast_mac, 1, moved, PEER_IP, bcast_mac, ip4(10, 0, 0, 9)));
	assert_dropped_silently(f, MST_DROP_arp_not_for_us);
	assert_true(net_arp_lookup(f->ns, PEER_IP, mac, f->now));
	assert_memory_equal(mac, moved, 6);
	assert_int_equal(f->st.ctr[MST_CTR_arp_cache_learned], 1);
}

static void test_arp_truncated(void **state)
{
	struct net_fix *f = *state;
	struct mst_pkt *p = mk_arp(f, bcast_mac, 1, peer_mac, PEER_IP, bcast_mac, OUR_IP);

	mst_pkt_trim(p, 41);
	fix_input(f, p);
	assert_dropped_silently(f, MST_DROP_arp_truncated);
}

static void test_arp_bad_format_fields(void **state)
{
	struct net_fix *f = *state;
	/* byte offset in the ARP header, value */
	const struct { unsigned off; uint8_t v; } bad[] = {
		{ 1, 6 },    /* htype 6 (IEEE 802) */
		{ 0, 1 },    /* htype 0x0101 */
		{ 2, 0x86 }, /* ptype 0x86dd */
		{ 3, 0x06 }, /* ptype 0x0806 */
		{ 4, 8 },    /* hlen */
		{ 5, 16 },   /* plen */
	};

	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct mst_pkt *p = mk_arp(f, bcast_mac, 1, peer_mac, PEER_IP, bcast_mac, OUR_IP);

		p->data[14 + bad[i].off] = bad[i].v;
		memset(&f->st, 0, sizeof(f->st));
		fix_input(f, p);
		assert_dropped_silently(f, MST_DROP_arp_bad_format);
	}
}

static void test_arp_bad_opcodes(void **state)
{
	struct net_fix *f = *state;
	const uint16_t ops[] = { 0, 3, 4, 0x0100, 0xffff };

	for (unsigned i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		memset(&f->st, 0, sizeof(f->st));
		fix_input(f, mk_arp(f, bcast_mac, ops[i], peer_mac, PEER_IP, bcast_mac, OUR_IP));
		assert_dropped_silently(f, MST_DROP_arp_bad_op);
	}
}

static void test_arp_bad_senders(void **state)
{
	struct net_fix *f = *state;
	const uint32_t ips[] = { 0, 0xffffffffu, ip4(224, 0, 0, 1), ip4(239, 1, 2, 3), OUR_IP };
	const uint8_t mc[6] = { 0x01, 0, 0x5e, 0, 0, 1 };
	const uint8_t zero[6] = { 0 };
	struct mst_pkt *p;

	for (unsigned i = 0; i < sizeof(ips) / sizeof(ips[0]); i++) {
		memset(&f->st, 0, sizeof(f->st));
		fix_input(f, mk_arp(f, bcast_mac, 1, peer_mac, ips[i], bcast_mac, OUR_IP));
		assert_dropped_silently(f, MST_DROP_arp_bad_sender);
	}
	/* Sender hardware address multicast or zero (Ethernet source is fine). */
	memset(&f->st, 0, sizeof(f->st));
	p = mk_arp(f, bcast_mac, 1, peer_mac, PEER_IP, bcast_mac, OUR_IP);
	memcpy(p->data + 14 + 8, mc, 6);
	fix_input(f, p);
	assert_dropped_silently(f, MST_DROP_arp_bad_sender);
	memset(&f->st, 0, sizeof(f->st));
	p = mk_arp(f, bcast_mac, 1, peer_mac, PEER_IP, bcast_mac, OUR_IP);
	memcpy(p->data + 14 + 8, zero, 6);
	fix_input(f, p);
	assert_dropped_silently(f, MST_DROP_arp_bad_sender);
	assert_int_equal(net_arp_count(f->ns), 0);
}

static void test_arp_entry_expires_with_virtual_clock(void **state)
{
	struct net_fix *f = *state;
	uint8_t mac[6];
	uint64_t t0 = f->now;

	fix_learn(f, PEER_IP, peer_mac);
	net_timer(f->ns, t0 + 60000 * MS - 1);
	assert_true(net_arp_lookup(f->ns, PEER_IP, mac, t0 + 60000 * MS - 1));
	assert_int_equal(f->st.ctr[MST_CTR_arp_cache_expired], 0);
	assert_false(net_arp_lookup(f->ns, PEER_IP, mac, t0 + 60000 * MS));
	net_timer(f->ns, t0 + 60000 * MS);
	assert_int_equal(f->st.ctr[MST_CTR_arp_cache_expired], 1);
	assert_int_equal(net_arp_count(f->ns), 0);
	net_timer(f->ns, t0 + 120000 * MS);
	assert_int_equal(f->st.ctr[MST_CTR_arp_cache_expired], 1);
}

/* The send path checks the deadline itself: between an entry's expiry and
 * the next arp_timer() run, a frame must not go to the stale MAC but wait
 * behind a fresh request (the peer may have moved). Mutation probe: the
 * `now_ns < e->deadline_ns` test in arp_output() ignored. */
static void test_arp_send_after_expiry_resolves_again(void **state)
{
	struct net_fix *f = *state;
	uint64_t t0 = f->now;

	fix_learn(f, PEER_IP, peer_mac);
	f->now = t0 + 60000 * MS - 1;
	assert_int_equal(send_tagged(f, PEER_IP, 1), 0);
	assert_int_equal(f->fio.n_tx, 1);
	assert_memory_equal(f->fio.tx[0]->data, peer_mac, 6);
	fake_tx_clear(f);

	f->now = t0 + 60000 * MS; /* expired; the timer has not run */
	assert_int_equal(send_tagged(f, PEER_IP, 2), 0);
	assert_int_equal(f->st.ctr[MST_CTR_arp_cache_expired], 1);
	assert_int_equal(f->fio.n_tx, 1);
	assert_arp_frame(f->fio.tx[0], bcast_mac, 1, our_mac, OUR_IP,
			 (const uint8_t[6]){ 0 }, PEER_IP);
	assert_int_equal(net_arp_pending_count(f->ns), 1);
	fake_tx_clear(f);

	fix_input(f, mk_arp(f, our_mac, 2, peer_mac, PEER_IP, our_mac, OUR_IP));
	assert_int_equal(net_arp_pending_count(f->ns), 0);
	assert_int_equal(f->fio.n_tx, 1);
	assert_int_equal(f->fio.tx[0]->data[34], 2);
}

static void test_arp_configured_timeout_and_refresh(void **state)
{
	struct net_fix *f = *state;
	uint8_t mac[6];

	f->conf.arp_timeout_ms = 500;
	net_fix_restart(f);
	fix_learn(f, PEER_IP, peer_mac);
	f->now += 400 * MS;
	fix_learn(f, PEER_IP, peer_mac); /* refresh: lives until +900 ms */
	net_timer(f->ns, f->now + 499 * MS);
	assert_true(net_arp_lookup(f->ns, PEER_IP, mac, f->now + 499 * MS));
	net_timer(f->ns, f->now + 500 * MS);
	assert_int_equal(f->st.ctr[MST_CTR_arp_cache_expired], 1);
	assert_int_equal(net_arp_count(f->ns), 0);
}

static void test_arp_pending_frames_sent_in_order_on_reply(void **state)
{
	struct net_fix *f = *state;

	for (uint8_t i = 0; i < 5; i++)
		assert_int_equal(send_tagged(f, PEER_IP, (uint8_t)(0x10 + i)), 0);
	/* One request, frames wait. */
	assert_int_equal(f->fio.n_tx, 1);
	assert_arp_frame(f->fio.tx[0], bcast_mac, 1, our_mac, OUR_IP,
			 (const uint8_t[6]){ 0 }, PEER_IP);
	assert_int_equal(f->st.ctr[MST_CTR_arp_requests_sent], 1);
	assert_int_equal(net_arp_pending_count(f->ns), 5);
	fake_tx_clear(f);

	f->now += 3 * MS;
	fix_input(f, mk_arp(f, our_mac, 2, peer_mac, PEER_IP, our_mac, OUR_IP));
	assert_int_equal(net_arp_pending_count(f->ns), 0);
	assert_int_equal(f->fio.n_tx, 5);
	assert_int_equal(f->st.ctr[MST_CTR_arp_pending_sent], 5);
	for (unsigned i = 0; i < 5; i++) {
		const struct mst_pkt *p = f->fio.tx[i];

		assert_memory_equal(p->data, peer_mac, 6);
		assert_ip_frame_ok(p, OUR_IP, PEER_IP, PROTO_TEST);
		assert_int_equal(p->data[34], 0x10 + i);
	}
	assert_int_equal(drops_total(&f->st), 0);
}

static void test_arp_pending_other_destinations_keep_waiting(void **state)
{
	struct net_fix *f = *state;
	uint32_t other = ip4(10, 0, 0, 3);

	send_tagged(f, PEER_IP, 1);
	send_tagged(f, other, 2);
	send_tagged(f, PEER_IP, 3);
	assert_int_equal(f->st.ctr[MST_CTR_arp_requests_sent], 2);
	fake_tx_clear(f);
	fix_input(f, mk_arp(f, our_mac, 2, peer_mac, PEER_IP, our_mac, OUR_IP));
	assert_int_equal(f->fio.n_tx, 2);
	assert_int_equal(f->fio.tx[0]->data[34], 1);
	assert_int_equal(f->fio.tx[1]->data[34], 3);
	assert_int_equal(net_arp_pending_count(f->ns), 1);
}

static void test_arp_retries_then_unresolved(void **state)
{
	struct net_fix *f = *state;
	uint64_t t0 = f->now;

	send_tagged(f, PEER_IP, 1);
	send_tagged(f, PEER_IP, 2);
	assert_int_equal(f->st.ctr[MST_CTR_arp_requests_sent], 1);
	net_timer(f->ns, t0 + 999 * MS);
	assert_int_equal(f->st.ctr[MST_CTR_arp_requests_sent], 1);
	net_timer(f->ns, t0 + 1000 * MS);
	assert_int_equal(f->st.ctr[MST_CTR_arp_requests_sent], 2);
	net_timer(f->ns, t0 + 2000 * MS);
	assert_int_equal(f->st.ctr[MST_CTR_arp_requests_sent], 3);
	assert_int_equal(net_arp_pending_count(f->ns), 2);
	net_timer(f->ns, t0 + 3000 * MS);
	assert_int_equal(f->st.ctr[MST_CTR_arp_requests_sent], 3);
	assert_int_equal(net_arp_pending_count(f->ns), 0);
	assert_int_equal(f->st.drop[MST_DROP_arp_unresolved], 2);
	assert_int_equal(drops_total(&f->st), 2);
	assert_int_equal(f->fio.n_tx, 3); /* the three requests only */
	for (unsigned i = 0; i < 3; i++)
		assert_arp_frame(f->fio.tx[i], bcast_mac, 1, our_mac, OUR_IP,
				 (const uint8_t[6]){ 0 }, PEER_IP);
	fake_tx_clear(f);
	fake_assert_no_leak(f);

	/* A later send starts over. */
	send_tagged(f, PEER_IP, 3);
	assert_int_equal(f->st.ctr[MST_CTR_arp_requests_sent], 4);
}

static void test_arp_pending_queue_full(void **state)
{
	struct net_fix *f = *state;

	for (unsigned i = 0; i < 64; i++)
		assert_int_equal(send_tagged(f, PEER_IP, (uint8_t)i), 0);
	assert_int_equal(net_arp_pending_count(f->ns), 64);
	assert_int_equal(send_tagged(f, PEER_IP, 0xff), -ENOBUFS);
	assert_int_equal(send_tagged(f, ip4(10, 0, 0, 5), 0xff), -ENOBUFS);
	assert_int_equal(f->st.drop[MST_DROP_arp_pending_full], 2);
	assert_int_equal(drops_total(&f->st), 2);
	assert_int_equal(f->fio.in_use, 64 + 1); /* queued + the request */
	/* Resolve: all 64 leave in order. */
	fake_tx_clear(f);
	fix_input(f, mk_arp(f, our_mac, 2, peer_mac, PEER_IP, our_mac, OUR_IP));
	assert_int_equal(f->fio.n_tx, 64);
	for (unsigned i = 0; i < 64; i++)
		assert_int_equal(f->fio.tx[i]->data[34], i);
}

static void test_arp_request_alloc_failure_counts_and_retries(void **state)
{
	struct net_fix *f = *state;

	struct mst_pkt *p = fake_alloc(f);

	memset(must_append(p, 8), 0, 8);
	f->fio.alloc_fail = 1; /* the request's buffer */
	assert_int_equal(net_ip_output(f->ns, p, PEER_IP, NET_IP_PROTO_UDP, f->now), 0);
	assert_int_equal(f->fio.n_tx, 0);
	assert_int_equal(net_arp_pending_count(f->ns), 1);
	assert_int_equal(f->st.ctr[MST_CTR_arp_requests_sent], 0);
	assert_int_equal(f->st.drop[MST_DROP_no_buffer], 1);
	net_timer(f->ns, f->now + 1000 * MS);
	assert_int_equal(f->st.ctr[MST_CTR_arp_requests_sent], 1);
	assert_int_equal(f->fio.n_tx, 1);
}

static void test_arp_gratuitous_format(void **state)
{
	struct net_fix *f = *state;

	assert_int_equal(net_send_gratuitous_arp(f->ns, f->now), 0);
	assert_int_equal(f->fio.n_tx, 1);
	assert_arp_frame(f->fio.tx[0], bcast_mac, 1, our_mac, OUR_IP, (const uint8_t[6]){ 0 },
			 OUR_IP);
	assert_int_equal(f->st.ctr[MST_CTR_arp_gratuitous_sent], 1);
}

static void test_arp_gratuitous_no_buffer(void **state)
{
	struct net_fix *f = *state;

	f->fio.alloc_fail = 1;
	assert_int_equal(net_send_gratuitous_arp(f->ns, f->now), -ENOBUFS);
	assert_dropped_silently(f, MST_DROP_no_buffer);
	assert_int_equal(f->st.ctr[MST_CTR_arp_gratuitous_sent], 0);
}

static void test_arp_cache_holds_many_entries(void **state)
{
	struct net_fix *f = *state;
	unsigned n;

	f->conf.prefix_len = 16;
	net_fix_restart(f);
	for (unsigned i = 0; i < 600; i++) {
		uint8_t mac[6] = { 0x02, 0, 0, 0, (uint8_t)(i >> 8), (uint8_t)i };

		fix_input(f, mk_arp(f, our_mac, 2, mac, ip4(10, 0, (uint8_t)(1 + i / 250),
							       (uint8_t)(1 + i % 250)),
				    our_mac, OUR_IP));
	}
	n = net_arp_count(f->ns);
	/* Bounded probing may evict a few; most must fit. */
	assert_true(n >= 550 && n <= 600);
	assert_int_equal(drops_total(&f->st), 0);
	fake_assert_no_leak(f);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, net_setup, net_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_arp_request_for_us_answered_in_place),
		T(test_arp_reply_to_us_is_learned),
		T(test_arp_request_for_other_not_learned),
		T(test_arp_known_sender_refreshed_by_any_packet),
		T(test_arp_truncated),
		T(test_arp_bad_format_fields),
		T(test_arp_bad_opcodes),
		T(test_arp_bad_senders),
		T(test_arp_entry_expires_with_virtual_clock),
		T(test_arp_configured_timeout_and_refresh),
	T(test_arp_send_after_expiry_resolves_again),
		T(test_arp_pending_frames_sent_in_order_on_reply),
		T(test_arp_pending_other_destinations_keep_waiting),
		T(test_arp_retries_then_unresolved),
		T(test_arp_pending_queue_full),
		T(test_arp_request_alloc_failure_counts_and_retries),
		T(test_arp_gratuitous_format),
		T(test_arp_gratuitous_no_buffer),
		T(test_arp_cache_holds_many_entries),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
