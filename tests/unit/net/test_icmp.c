/* SPDX-License-Identifier: BSD-3-Clause */
/* Unit tests: ICMP echo and destination unreachable (transport/net/icmp.c). */
#include <string.h>

#include "net_helper.h"

static int icmp_setup(void **state)
{
	if (net_setup(state))
		return -1;
	fix_learn(*state, PEER_IP, peer_mac);
	return 0;
}

static struct mst_pkt *mk_echo(struct net_fix *f, uint8_t type, uint16_t id, uint16_t seq,
			       const uint8_t *data, uint16_t len)
{
	uint8_t icmp[1600];
	uint16_t n = build_icmp_echo(icmp, type, id, seq, data, len);

	return mk_ip_frame(f, PEER_IP, OUR_IP, NET_IP_PROTO_ICMP, icmp, n);
}

static void assert_echo_reply(const struct mst_pkt *r, uint16_t id, uint16_t seq,
			      const uint8_t *data, uint16_t len)
{
	const uint8_t *h = r->data + 34;

	assert_memory_equal(r->data, peer_mac, 6);
	assert_ip_frame_ok(r, OUR_IP, PEER_IP, NET_IP_PROTO_ICMP);
	assert_int_equal(r->len, 14 + 20 + 8 + len);
	assert_int_equal(h[0], 0);
	assert_int_equal(h[1], 0);
	assert_int_equal(rd16(h + 4), id);
	assert_int_equal(rd16(h + 6), seq);
	if (len)
		assert_memory_equal(h + 8, data, len);
}

static void test_icmp_echo_reply_correct_and_in_place(void **state)
{
	struct net_fix *f = *state;
	const uint8_t data[] = "The quick brown fox";
	struct mst_pkt *p = mk_echo(f, 8, 0xbeef, 0x0102, data, sizeof(data));

	fix_input(f, p);
	assert_int_equal(drops_total(&f->st), 0);
	assert_int_equal(f->fio.n_tx, 1);
	assert_ptr_equal(f->fio.tx[0], p);
	assert_int_equal(f->fio.in_use, 1); /* no allocation */
	assert_echo_reply(f->fio.tx[0], 0xbeef, 0x0102, data, sizeof(data));
	assert_int_equal(f->st.ctr[MST_CTR_icmp_rx], 1);
	assert_int_equal(f->st.ctr[MST_CTR_icmp_echo_replies], 1);
}

static void test_icmp_echo_reply_all_payload_lengths(void **state)
{
	struct net_fix *f = *state;
	uint8_t data[1472];

	for (unsigned i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7 + 3);
	for (uint16_t len = 0; len <= sizeof(data); len += (len < 70 ? 1 : 97)) {
		fix_input(f, mk_echo(f, 8, len, (uint16_t)~len, data, len));
		assert_int_equal(f->fio.n_tx, 1);
		assert_echo_reply(f->fio.tx[0], len, (uint16_t)~len, data, len);
		fake_tx_clear(f);
	}
	assert_int_equal(drops_total(&f->st), 0);
}

static void test_icmp_echo_to_unknown_peer_waits_for_arp(void **state)
{
	struct net_fix *f = *state;
	const uint8_t other_mac[6] = { 0x02, 0, 0, 0, 0, 0x33 };
	uint8_t icmp[16];
	uint16_t n = build_icmp_echo(icmp, 8, 1, 2, "hi", 2);
	uint32_t other = ip4(10, 0, 0, 3);
	uint8_t b[64];
	uint16_t l = build_ipv4(b, other, OUR_IP, NET_IP_PROTO_ICMP, icmp, n);

	fix_input(f, mk_frame(f, our_mac, other_mac, NET_ETHERTYPE_IPV4, b, l));
	assert_int_equal(f->fio.n_tx, 1); /* ARP request, not the reply */
	assert_int_equal(rd16(f->fio.tx[0]->data + 12), NET_ETHERTYPE_ARP);
	assert_int_equal(net_arp_pending_count(f->ns), 1);
	fake_tx_clear(f);
	fix_input(f, mk_arp(f, our_mac, 2, other_mac, other, our_mac, OUR_IP));
	assert_int_equal(f->fio.n_tx, 1);
	assert_memory_equal(f->fio.tx[0]->data, other_mac, 6);
	assert_ip_frame_ok(f->fio.tx[0], OUR_IP, other, NET_IP_PROTO_ICMP);
}

static void test_icmp_truncated(void **state)
{
	struct net_fix *f = *state;

	for (uint16_t n = 0; n < 8; n++) {
		uint8_t icmp[8] = { 8, 0, 0, 0, 0, 0, 0, 0 };

		memset(&f->st, 0, sizeof(f->st));
		fix_input(f, mk_ip_frame(f, PEER_IP, OUR_IP, NET_IP_PROTO_ICMP, icmp, n));
		assert_dropped_silently(f, MST_DROP_icmp_truncated);
	}
}

static void test_icmp_bad_cksum(void **state)
{
	struct net_fix *f = *state;
	struct mst_pkt *p = mk_echo(f, 8, 1, 1, (const uint8_t *)"abc", 3);

	p->data[34 + 8] ^= 0x40;
	fix_input(f, p);
	assert_dropped_silently(f, MST_DROP_icmp_bad_cksum);
	assert_int_equal(f->st.ctr[MST_CTR_icmp_rx], 0);
}

static void test_icmp_echo_reply_received_counted_not_answered(void **state)
{
	struct net_fix *f = *state;

	fix_input(f, mk_echo(f, 0, 1, 1, NULL, 0));
	assert_dropped_silently(f, MST_DROP_icmp_unhandled_type);
	assert_int_equal(f->st.ctr[MST_CTR_icmp_rx], 1);
}

static void test_icmp_errors_received_not_answered(void **state)
{
	struct net_fix *f = *state;
	uint8_t icmp[36] = { 3, 3 };
	uint16_t c;

	build_ipv4(icmp + 8, OUR_IP, PEER_IP, NET_IP_PROTO_UDP, "\0\7\0\7\0\10\0\0", 8);
	c = net_cksum_fold(net_cksum_partial(icmp, sizeof(icmp), 0));
	memcpy(icmp + 2, &c, 2);
	fix_input(f, mk_ip_frame(f, PEER_IP, OUR_IP, NET_IP_PROTO_ICMP, icmp, sizeof(icmp)));
	assert_dropped_silently(f, MST_DROP_icmp_unhandled_type);
	assert_int_equal(f->st.ctr[MST_CTR_icmp_rx], 1);
}

static void test_icmp_echo_request_nonzero_code_ignored(void **state)
{
	struct net_fix *f = *state;
	uint8_t icmp[8] = { 8, 1, 0, 0, 0, 1, 0, 1 };
	uint16_t c = net_cksum_fold(net_cksum_partial(icmp, 8, 0));

	memcpy(icmp + 2, &c, 2);
	fix_input(f, mk_ip_frame(f, PEER_IP, OUR_IP, NET_IP_PROTO_ICMP, icmp, 8));
	assert_dropped_silently(f, MST_DROP_icmp_unhandled_type);
}

/* ---- destination unreachable ---- */

static struct mst_pkt *mk_udp_to(struct net_fix *f, uint16_t dport, uint16_t plen)
{
	uint8_t udp[256];
	uint8_t data[248];
	uint16_t n;

	for (unsigned i = 0; i < plen; i++)
		data[i] = (uint8_t)(0xc0 + i);
	n = build_udp(udp, PEER_IP, OUR_IP, 40000, dport, data, plen, true);
	return mk_ip_frame(f, PEER_IP, OUR_IP, NET_IP_PROTO_UDP, udp, n);
}

static void test_icmp_port_unreachable_format(void **state)
{
	struct net_fix *f = *state;
	struct mst_pkt *p = mk_udp_to(f, 9999, 100);
	uint8_t orig[28];
	const uint8_t *h;

	memcpy(orig, p->data + 14, 28); /* IP header + 8 bytes of UDP */
	fix_input(f, p);
	assert_one_drop(f, MST_DROP_udp_no_port);
	assert_int_equal(f->fio.n_tx, 1);
	assert_ptr_not_equal(f->fio.tx[0], p);
	assert_int_equal(f->fio.in_use, 1); /* the original was freed */
	assert_memory_equal(f->fio.tx[0]->data, peer_mac, 6);
	assert_ip_frame_ok(f->fio.tx[0], OUR_IP, PEER_IP, NET_IP_PROTO_ICMP);
	assert_int_equal(f->fio.tx[0]->len, 14 + 20 + 8 + 28);
	h = f->fio.tx[0]->data + 34;
	assert_int_equal(h[0], 3);
	assert_int_equal(h[1], 3);
	assert_int_equal(rd16(h + 4), 0);
	assert_int_equal(rd16(h + 6), 0);
	assert_memory_equal(h + 8, orig, 28);
	assert_int_equal(f->st.ctr[MST_CTR_icmp_unreach_sent], 1);
}

static void test_icmp_port_unreachable_short_payload(void **state)
{
	struct net_fix *f = *state;
	uint8_t udp[8];
	uint16_t n = build_udp(udp, PEER_IP, OUR_IP, 40000, 9, NULL, 0, true);

	fix_input(f, mk_ip_frame(f, PEER_IP, OUR_IP, NET_IP_PROTO_UDP, udp, n));
	assert_int_equal(f->fio.n_tx, 1);
	assert_int_equal(f->fio.tx[0]->len, 14 + 20 + 8 + 20 + 8);
	assert_ip_frame_ok(f->fio.tx[0], OUR_IP, PEER_IP, NET_IP_PROTO_ICMP);
}

static void test_icmp_no_error_for_link_broadcast(void **state)
{
	struct net_fix *f = *state;
	struct mst_pkt *p = mk_udp_to(f, 9999, 4);

	memcpy(p->data, bcast_mac, 6);
	fix_input(f, p);
	assert_dropped_silently(f, MST_DROP_udp_no_port);
	assert_int_equal(f->st.ctr[MST_CTR_icmp_unreach_sent], 0);
}

static void test_icmp_errors_rate_limited(void **state)
{
	struct net_fix *f = *state;
	unsigned sent = 0;

	for (unsigned i = 0; i < 250; i++) {
		fix_input(f, mk_udp_to(f, 9999, 4));
		sent += f->fio.n_tx;
		fake_tx_clear(f);
	}
	assert_int_equal(sent, 100);
	assert_int_equal(f->st.ctr[MST_CTR_icmp_unreach_sent], 100);
	assert_int_equal(f->st.drop[MST_DROP_icmp_rate_limited], 150);
	assert_int_equal(f->st.drop[MST_DROP_udp_no_port], 250);

	/* 50 ms later: 5 more tokens. */
	f->now += 50000000ull;
	for (unsigned i = 0; i < 10; i++) {
		fix_input(f, mk_udp_to(f, 9999, 4));
		sent += f->fio.n_tx;
		fake_tx_clear(f);
	}
	assert_int_equal(sent, 105);
	/* After a long quiet spell the burst is back, but not more. */
	f->now += 10000000000ull;
	for (unsigned i = 0; i < 150; i++) {
		fix_input(f, mk_udp_to(f, 9999, 4));
		sent += f->fio.n_tx;
		fake_tx_clear(f);
	}
	assert_int_equal(sent, 205);
	fake_assert_no_leak(f);
}

static void test_icmp_error_no_buffer(void **state)
{
	struct net_fix *f = *state;
	struct mst_pkt *p = mk_udp_to(f, 9999, 4);

	f->fio.alloc_fail = 1;
	fix_input(f, p);
	assert_int_equal(f->st.drop[MST_DROP_no_buffer], 1);
	assert_int_equal(f->st.drop[MST_DROP_udp_no_port], 1);
	assert_int_equal(drops_total(&f->st), 2);
	assert_int_equal(f->fio.n_tx, 0);
	fake_assert_no_leak(f);
}

static void test_icmp_error_tiny_mtu_truncates_quote(void **state)
{
	struct net_fix *f = *state;
	uint8_t b[128] = { 0 };
	uint8_t udp[16];
	uint16_t n;
	struct mst_pkt *p;

	f->conf.mtu = 68;
	net_fix_restart(f);
	fix_learn(f, PEER_IP, peer_mac);
	/* 60-byte header (options) + UDP to a closed port. */
	n = build_udp(udp, PEER_IP, OUR_IP, 40000, 9999, "12345678", 8, true);
	build_ipv4(b, PEER_IP, OUR_IP, NET_IP_PROTO_UDP, NULL, 0);
	b[0] = 0x4f;
	memcpy(b + 60, udp, n);
	wr16(b + 2, (uint16_t)(60 + n));
	p = mk_frame(f, our_mac, peer_mac, NET_ETHERTYPE_IPV4, b, (uint16_t)(60 + n));
	fix_ip_cksum(p);
	fix_input(f, p);
	assert_int_equal(f->fio.n_tx, 1);
	assert_int_equal(f->fio.tx[0]->len, 14 + 68);
	assert_ip_frame_ok(f->fio.tx[0], OUR_IP, PEER_IP, NET_IP_PROTO_ICMP);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, icmp_setup, net_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_icmp_echo_reply_correct_and_in_place),
		T(test_icmp_echo_reply_all_payload_lengths),
		T(test_icmp_echo_to_unknown_peer_waits_for_arp),
		T(test_icmp_truncated),
		T(test_icmp_bad_cksum),
		T(test_icmp_echo_reply_received_counted_not_answered),
		T(test_icmp_errors_received_not_answered),
		T(test_icmp_echo_request_nonzero_code_ignored),
		T(test_icmp_port_unreachable_format),
		T(test_icmp_port_unreachable_short_payload),
		T(test_icmp_no_error_for_link_broadcast),
		T(test_icmp_errors_rate_limited),
		T(test_icmp_error_no_buffer),
		T(test_icmp_error_tiny_mtu_truncates_quote),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
