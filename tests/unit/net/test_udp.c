/* SPDX-License-Identifier: BSD-3-Clause */
/* Unit tests: UDP input and the echo service (transport/net/udp.c). */
#include <string.h>

#include "net_helper.h"

static int udp_setup(void **state)
{
	if (net_setup(state))
		return -1;
	fix_learn(*state, PEER_IP, peer_mac);
	return 0;
}

static struct mst_pkt *mk_udp(struct net_fix *f, uint16_t sport, uint16_t dport,
			      const void *data, uint16_t len, bool cksum)
{
	uint8_t udp[1600];
	uint16_t n = build_udp(udp, PEER_IP, OUR_IP, sport, dport, data, len, cksum);

	return mk_ip_frame(f, PEER_IP, OUR_IP, NET_IP_PROTO_UDP, udp, n);
}

static void assert_echo(const struct mst_pkt *r, uint16_t dport, const void *data,
			uint16_t len)
{
	const uint8_t *u = r->data + 34;

	assert_memory_equal(r->data, peer_mac, 6);
	assert_ip_frame_ok(r, OUR_IP, PEER_IP, NET_IP_PROTO_UDP);
	assert_int_equal(r->len, 14 + 20 + 8 + len);
	assert_int_equal(rd16(u), 7);
	assert_int_equal(rd16(u + 2), dport);
	assert_int_equal(rd16(u + 4), 8 + len);
	assert_int_not_equal(rd16(u + 6), 0);
	if (len)
		assert_memory_equal(u + 8, data, len);
}

static void test_udp_echo_reply_in_place(void **state)
{
	struct net_fix *f = *state;
	struct mst_pkt *p = mk_udp(f, 51000, 7, "hello, echo", 11, true);

	fix_input(f, p);
	assert_int_equal(drops_total(&f->st), 0);
	assert_int_equal(f->fio.n_tx, 1);
	assert_ptr_equal(f->fio.tx[0], p);
	assert_int_equal(f->fio.in_use, 1);
	assert_echo(f->fio.tx[0], 51000, "hello, echo", 11);
	assert_int_equal(f->fio.tx[0]->flags, 0);
	assert_int_equal(f->st.ctr[MST_CTR_udp_rx], 1);
	assert_int_equal(f->st.ctr[MST_CTR_udp_echo_replies], 1);
}

static void test_udp_echo_all_lengths(void **state)
{
	struct net_fix *f = *state;
	uint8_t data[1472];

	for (unsigned i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i ^ 0x5c);
	for (uint16_t len = 0; len <= sizeof(data); len += (len < 40 ? 1 : 131)) {
		fix_input(f, mk_udp(f, 1234, 7, data, len, true));
		assert_int_equal(f->fio.n_tx, 1);
		assert_echo(f->fio.tx[0], 1234, data, len);
		fake_tx_clear(f);
	}
	assert_int_equal(drops_total(&f->st), 0);
}

static void test_udp_zero_cksum_accepted(void **state)
{
	struct net_fix *f = *state;

	fix_input(f, mk_udp(f, 1234, 7, "abc", 3, false));
	assert_int_equal(drops_total(&f->st), 0);
	assert_int_equal(f->fio.n_tx, 1);
	assert_echo(f->fio.tx[0], 1234, "abc", 3); /* the reply has a checksum */
}

static void test_udp_echo_with_udp_cksum_offload(void **state)
{
	struct net_fix *f = *state;
	const struct mst_pkt *r;
	uint16_t pseudo, field;
	uint8_t copy[64];
	const uint8_t *u;

	f->conf.tx_offloads = NET_OFL_UDP_CKSUM | NET_OFL_IPV4_CKSUM;
	net_fix_restart(f);
	fix_learn(f, PEER_IP, peer_mac);
	fix_input(f, mk_udp(f, 1234, 7, "offload", 7, true));
	assert_int_equal(f->fio.n_tx, 1);
	r = f->fio.tx[0];
	u = r->data + 34;
	assert_true(r->flags & MST_PKT_TX_UDP_CKSUM);
	assert_true(r->flags & MST_PKT_TX_IP_CKSUM);
	assert_int_equal(r->l2_len, 14);
	assert_int_equal(r->l3_len, 20);
	/* The field holds the folded pseudo-header sum, not inverted. */
	pseudo = (uint16_t)~net_cksum_fold(net_pseudo_sum(OUR_IP, PEER_IP, 17, 15));
	memcpy(&field, u + 6, 2);
	assert_int_equal(field, pseudo);
	/* What the NIC then computes over the datagram is a valid checksum. */
	memcpy(copy, r->data + 14, 20 + 15);
	field = net_cksum_fold(net_cksum_partial(copy + 20, 15, 0));
	memcpy(copy + 20 + 6, &field, 2);
	assert_true(l4_cksum_ok(copy));
}

static void test_udp_echo_with_ip_offload_only(void **state)
{
	struct net_fix *f = *state;
	const struct mst_pkt *r;

	f->conf.tx_offloads = NET_OFL_IPV4_CKSUM;
	net_fix_restart(f);
	fix_learn(f, PEER_IP, peer_mac);
	fix_input(f, mk_udp(f, 1234, 7, "x", 1, true));
	r = f->fio.tx[0];
	assert_int_equal(r->flags, MST_PKT_TX_IP_CKSUM);
	assert_true(l4_cksum_ok(r->data + 14));
}

static void test_udp_truncated(void **state)
{
	struct net_fix *f = *state;
	uint8_t udp[8] = { 0x12, 0x34, 0, 7, 0, 8, 0, 0 };

	for (uint16_t n = 0; n < 8; n++) {
		memset(&f->st, 0, sizeof(f->st));
		fix_input(f, mk_ip_frame(f, PEER_IP, OUR_IP, NET_IP_PROTO_UDP, udp, n));
		assert_dropped_silently(f, MST_DROP_udp_truncated);
	}
}

static void test_udp_length_field_bad(void **state)
{
	struct net_fix *f = *state;
	const uint16_t lens[] = { 0, 7, 12, 0xffff };

	for (unsigned i = 0; i < 4; i++) {
		struct mst_pkt *p = mk_udp(f, 1234, 7, "abc", 3, false); /* 11 bytes */

		wr16(p->data + 34 + 4, lens[i]);
		memset(&f->st, 0, sizeof(f->st));
		fix_input(f, p);
		assert_dropped_silently(f, MST_DROP_udp_bad_len);
	}
}

static void test_udp_ip_payload_longer_than_datagram_trimmed(void **state)
{
	struct net_fix *f = *state;
	uint8_t udp[32];
	uint16_t n = build_udp(udp, PEER_IP, OUR_IP, 1234, 7, "abcd", 4, true);

	memset(udp + n, 0x77, 6); /* 6 extra bytes inside the IP payload */
	fix_input(f, mk_ip_frame(f, PEER_IP, OUR_IP, NET_IP_PROTO_UDP, udp, (uint16_t)(n + 6)));
	assert_int_equal(drops_total(&f->st), 0);
	assert_int_equal(f->fio.n_tx, 1);
	assert_echo(f->fio.tx[0], 1234, "abcd", 4);
}

static void test_udp_bad_cksum(void **state)
{
	struct net_fix *f = *state;
	struct mst_pkt *p = mk_udp(f, 1234, 7, "abcd", 4, true);

	p->data[34 + 8] ^= 0x01;
	fix_input(f, p);
	assert_dropped_silently(f, MST_DROP_udp_bad_cksum);
	assert_int_equal(f->st.ctr[MST_CTR_udp_rx], 0);
}

static void test_udp_rx_flags(void **state)
{
	struct net_fix *f = *state;
	struct mst_pkt *p = mk_udp(f, 1234, 7, "abcd", 4, true);

	p->flags = MST_PKT_RX_L4_CKSUM_BAD;
	fix_input(f, p);
	assert_dropped_silently(f, MST_DROP_udp_bad_cksum);

	p = mk_udp(f, 1234, 7, "abcd", 4, true);
	p->data[34 + 8] ^= 0x01; /* the port vouched for it */
	p->flags = MST_PKT_RX_L4_CKSUM_GOOD;
	fix_input(f, p);
	assert_int_equal(f->st.ctr[MST_CTR_udp_echo_replies], 1);
}

static void test_udp_closed_port(void **state)
{
	struct net_fix *f = *state;

	fix_input(f, mk_udp(f, 1234, 8, "abcd", 4, true));
	assert_one_drop(f, MST_DROP_udp_no_port);
	assert_int_equal(f->fio.n_tx, 1);
	assert_int_equal(f->fio.tx[0]->data[34], 3);
	assert_int_equal(f->fio.tx[0]->data[35], 3);
}

static void test_udp_echo_disabled_is_closed(void **state)
{
	struct net_fix *f = *state;

	f->conf.services = 0;
	net_fix_restart(f);
	fix_learn(f, PEER_IP, peer_mac);
	fix_input(f, mk_udp(f, 1234, 7, "abcd", 4, true));
	assert_one_drop(f, MST_DROP_udp_no_port);
	assert_int_equal(f->st.ctr[MST_CTR_udp_echo_replies], 0);
	assert_int_equal(f->st.ctr[MST_CTR_icmp_unreach_sent], 1);
}

static void test_udp_echo_refuses_loop_source_ports(void **state)
{
	struct net_fix *f = *state;
	const uint16_t ports[] = { 0, 7, 13, 17, 19, 37 };

	for (unsigned i = 0; i < sizeof(ports) / sizeof(ports[0]); i++) {
		memset(&f->st, 0, sizeof(f->st));
		fix_input(f, mk_udp(f, ports[i], 7, "loop", 4, true));
		assert_dropped_silently(f, MST_DROP_udp_bad_src_port);
	}
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, udp_setup, net_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_udp_echo_reply_in_place),
		T(test_udp_echo_all_lengths),
		T(test_udp_zero_cksum_accepted),
		T(test_udp_echo_with_udp_cksum_offload),
		T(test_udp_echo_with_ip_offload_only),
		T(test_udp_truncated),
		T(test_udp_length_field_bad),
		T(test_udp_ip_payload_longer_than_datagram_trimmed),
		T(test_udp_bad_cksum),
		T(test_udp_rx_flags),
		T(test_udp_closed_port),
		T(test_udp_echo_disabled_is_closed),
		T(test_udp_echo_refuses_loop_source_ports),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
