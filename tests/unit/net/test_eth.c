/* SPDX-License-Identifier: BSD-3-Clause */
/* Unit tests: Ethernet input and demux (transport/net/eth.c). */
#include <string.h>

#include "net_helper.h"

static void test_eth_runt_frames_dropped(void **state)
{
	struct net_fix *f = *state;
	uint8_t junk[13] = { 0 };

	for (uint16_t len = 0; len < 14; len++) {
		struct mst_pkt *p = fake_alloc(f);

		memcpy(p->data, junk, len);
		p->len = len;
		p->tailroom = (uint16_t)(p->tailroom - len);
		fix_input(f, p);
	}
	assert_int_equal(f->st.drop[MST_DROP_eth_runt], 14);
	assert_int_equal(drops_total(&f->st), 14);
	assert_int_equal(f->fio.n_tx, 0);
	fake_assert_no_leak(f);
}

static void test_eth_other_unicast_mac_not_for_us(void **state)
{
	struct net_fix *f = *state;
	const uint8_t other[6] = { 0x02, 0, 0, 0, 0, 0x77 };

	fix_input(f, mk_arp(f, other, 1, peer_mac, PEER_IP, other, OUR_IP));
	assert_dropped_silently(f, MST_DROP_eth_not_for_us);
}

static void test_eth_ipv4_multicast_mac_not_for_us(void **state)
{
	struct net_fix *f = *state;
	const uint8_t mc[6] = { 0x01, 0x00, 0x5e, 0x00, 0x00, 0x01 };
	uint8_t b[64];
	uint16_t n = build_ipv4(b, PEER_IP, ip4(224, 0, 0, 1), 17, NULL, 0);

	fix_input(f, mk_frame(f, mc, peer_mac, NET_ETHERTYPE_IPV4, b, n));
	assert_dropped_silently(f, MST_DROP_eth_not_for_us);
}

static void test_eth_multicast_source_dropped(void **state)
{
	struct net_fix *f = *state;
	const uint8_t mc[6] = { 0x01, 0x00, 0x5e, 0x00, 0x00, 0x01 };
	uint8_t b[64];
	uint16_t n = build_ipv4(b, PEER_IP, OUR_IP, 17, NULL, 0);

	fix_input(f, mk_frame(f, our_mac, mc, NET_ETHERTYPE_IPV4, b, n));
	assert_dropped_silently(f, MST_DROP_eth_bad_src);
}

static void test_eth_broadcast_source_dropped(void **state)
{
	struct net_fix *f = *state;

	fix_input(f, mk_frame(f, bcast_mac, bcast_mac, NET_ETHERTYPE_ARP, NULL, 0));
	assert_dropped_silently(f, MST_DROP_eth_bad_src);
}

static void test_eth_unknown_ethertypes_dropped(void **state)
{
	struct net_fix *f = *state;
	const uint16_t types[] = { 0x86dd, 0x8100, 0x88a8, 0x0000, 0xffff, 0x0801 };
	uint8_t pad[46] = { 0 };

	for (unsigned i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		fix_input(f, mk_frame(f, our_mac, peer_mac, types[i], pad, sizeof(pad)));
	assert_int_equal(f->st.drop[MST_DROP_eth_unknown_type], 6);
	assert_int_equal(drops_total(&f->st), 6);
	assert_int_equal(f->fio.n_tx, 0);
	fake_assert_no_leak(f);
}

static void test_eth_header_only_ipv4_reaches_ip_layer(void **state)
{
	struct net_fix *f = *state;

	fix_input(f, mk_frame(f, our_mac, peer_mac, NET_ETHERTYPE_IPV4, NULL, 0));
	assert_dropped_silently(f, MST_DROP_ip_truncated);
}

static void test_eth_header_only_arp_reaches_arp_layer(void **state)
{
	struct net_fix *f = *state;

	fix_input(f, mk_frame(f, bcast_mac, peer_mac, NET_ETHERTYPE_ARP, NULL, 0));
	assert_dropped_silently(f, MST_DROP_arp_truncated);
}

static void test_eth_broadcast_destination_accepted(void **state)
{
	struct net_fix *f = *state;

	fix_input(f, mk_arp(f, bcast_mac, 1, peer_mac, PEER_IP, bcast_mac, OUR_IP));
	assert_int_equal(drops_total(&f->st), 0);
	assert_int_equal(f->fio.n_tx, 1);
	assert_int_equal(f->st.ctr[MST_CTR_arp_replies_sent], 1);
}

static void test_eth_engine_counters_untouched(void **state)
{
	struct net_fix *f = *state;

	fix_input(f, mk_arp(f, bcast_mac, 1, peer_mac, PEER_IP, bcast_mac, OUR_IP));
	assert_int_equal(f->st.ctr[MST_CTR_rx_frames], 0);
	assert_int_equal(f->st.ctr[MST_CTR_rx_bytes], 0);
	assert_int_equal(f->st.ctr[MST_CTR_tx_frames], 0);
	assert_int_equal(f->st.ctr[MST_CTR_tx_bytes], 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, net_setup, net_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_eth_runt_frames_dropped),
		T(test_eth_other_unicast_mac_not_for_us),
		T(test_eth_ipv4_multicast_mac_not_for_us),
		T(test_eth_multicast_source_dropped),
		T(test_eth_broadcast_source_dropped),
		T(test_eth_unknown_ethertypes_dropped),
		T(test_eth_header_only_ipv4_reaches_ip_layer),
		T(test_eth_header_only_arp_reaches_arp_layer),
		T(test_eth_broadcast_destination_accepted),
		T(test_eth_engine_counters_untouched),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
