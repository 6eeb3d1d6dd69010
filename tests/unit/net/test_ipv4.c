/* SPDX-License-Identifier: BSD-3-Clause */
/* Unit tests: IPv4 input validation and net_ip_output (transport/net/ipv4.c). */
#include <errno.h>
#include <string.h>

#include "net_helper.h"

/* The fixture with PEER_IP already in the ARP cache, so anything that
 * wrongly passes validation would answer at once and be seen. */
static int ipv4_setup(void **state)
{
	if (net_setup(state))
		return -1;
	fix_learn(*state, PEER_IP, peer_mac);
	return 0;
}

/* A valid echo request from PEER_IP to us with an 8-byte payload. */
static struct mst_pkt *mk_ping(struct net_fix *f)
{
	uint8_t icmp[16];
	uint16_t n = build_icmp_echo(icmp, 8, 0x1234, 1, "abcdefgh", 8);

	return mk_ip_frame(f, PEER_IP, OUR_IP, NET_IP_PROTO_ICMP, icmp, n);
}

static uint8_t *iph(struct mst_pkt *p)
{
	return p->data + 14;
}

static void test_ipv4_valid_ping_answered(void **state)
{
	struct net_fix *f = *state;

	fix_input(f, mk_ping(f));
	assert_int_equal(drops_total(&f->st), 0);
	assert_int_equal(f->fio.n_tx, 1);
	assert_int_equal(f->st.ctr[MST_CTR_ipv4_rx], 1);
}

static void test_ipv4_truncated_at_every_length(void **state)
{
	struct net_fix *f = *state;

	for (uint16_t l3 = 0; l3 < 20; l3++) {
		struct mst_pkt *p = mk_ping(f);

		mst_pkt_trim(p, (uint16_t)(14 + l3));
		memset(&f->st, 0, sizeof(f->st));
		fix_input(f, p);
		assert_dropped_silently(f, MST_DROP_ip_truncated);
	}
}

static void test_ipv4_bad_version(void **state)
{
	struct net_fix *f = *state;
	const uint8_t vers[] = { 0x65, 0x05, 0x55, 0xf5 };

	for (unsigned i = 0; i < sizeof(vers); i++) {
		struct mst_pkt *p = mk_ping(f);

		iph(p)[0] = vers[i];
		fix_ip_cksum(p);
		memset(&f->st, 0, sizeof(f->st));
		fix_input(f, p);
		assert_dropped_silently(f, MST_DROP_ip_bad_version);
	}
}

static void test_ipv4_ihl_below_five(void **state)
{
	struct net_fix *f = *state;

	for (uint8_t ihl = 0; ihl < 5; ihl++) {
		struct mst_pkt *p = mk_ping(f);

		iph(p)[0] = (uint8_t)(0x40 | ihl);
		memset(&f->st, 0, sizeof(f->st));
		fix_input(f, p);
		assert_dropped_silently(f, MST_DROP_ip_bad_ihl);
	}
}

static void test_ipv4_ihl_past_frame(void **state)
{
	struct net_fix *f = *state;
	struct mst_pkt *p = mk_ping(f); /* 36 bytes of IP */

	iph(p)[0] = 0x4a; /* 40-byte header */
	fix_input(f, p);
	assert_dropped_silently(f, MST_DROP_ip_bad_ihl);
}

static void test_ipv4_total_len_past_frame(void **state)
{
	struct net_fix *f = *state;
	struct mst_pkt *p = mk_ping(f);

	wr16(iph(p) + 2, 37);
	fix_ip_cksum(p);
	fix_input(f, p);
	assert_dropped_silently(f, MST_DROP_ip_bad_total_len);
}

static void test_ipv4_total_len_below_header(void **state)
{
	struct net_fix *f = *state;
	const uint16_t lens[] = { 0, 1, 19 };

	for (unsigned i = 0; i < 3; i++) {
		struct mst_pkt *p = mk_ping(f);

		wr16(iph(p) + 2, lens[i]);
		fix_ip_cksum(p);
		memset(&f->st, 0, sizeof(f->st));
		fix_input(f, p);
		assert_dropped_silently(f, MST_DROP_ip_bad_total_len);
	}
}

static void test_ipv4_total_len_below_ihl_with_options(void **state)
{
	struct net_fix *f = *state;
	uint8_t b[64] = { 0 };
	struct mst_pkt *p;

	/* 24-byte header, total length 22. */
	build_ipv4(b, PEER_IP, OUR_IP, NET_IP_PROTO_UDP, NULL, 0);
	b[0] = 0x46;
	p = mk_frame(f, our_mac, peer_mac, NET_ETHERTYPE_IPV4, b, 40);
	wr16(iph(p) + 2, 22);
	fix_ip_cksum(p);
	fix_input(f, p);
	assert_dropped_silently(f, MST_DROP_ip_bad_total_len);
}

static void test_ipv4_bad_header_cksum(void **state)
{
	struct net_fix *f = *state;
	struct mst_pkt *p = mk_ping(f);

	iph(p)[10] ^= 0x01;
	fix_input(f, p);
	assert_dropped_silently(f, MST_DROP_ip_bad_cksum);
}

static void test_ipv4_rx_cksum_bad_flag_drops(void **state)
{
	struct net_fix *f = *state;
	struct mst_pkt *p = mk_ping(f);

	p->flags = MST_PKT_RX_IP_CKSUM_BAD;
	fix_input(f, p);
	assert_dropped_silently(f, MST_DROP_ip_bad_cksum);
}

static void test_ipv4_rx_cksum_good_flag_skips_check(void **state)
{
	struct net_fix *f = *state;
	struct mst_pkt *p = mk_ping(f);

	iph(p)[10] ^= 0x55; /* the port said it was fine */
	p->flags = MST_PKT_RX_IP_CKSUM_GOOD;
	fix_input(f, p);
	assert_int_equal(drops_total(&f->st), 0);
	assert_int_equal(f->st.ctr[MST_CTR_icmp_echo_replies], 1);
	/* The reply does not inherit receive flags. */
	assert_int_equal(f->fio.tx[0]->flags & 0xff, 0);
}

static void test_ipv4_ttl_zero_dropped_ttl_one_accepted(void **state)
{
	struct net_fix *f = *state;
	struct mst_pkt *p = mk_ping(f);

	iph(p)[8] = 0;
	fix_ip_cksum(p);
	fix_input(f, p);
	assert_dropped_silently(f, MST_DROP_ip_ttl_expired);

	p = mk_ping(f);
	iph(p)[8] = 1;
	fix_ip_cksum(p);
	fix_input(f, p);
	assert_int_equal(f->st.ctr[MST_CTR_icmp_echo_replies], 1);
}

static void test_ipv4_bad_sources(void **state)
{
	struct net_fix *f = *state;
	const uint32_t srcs[] = { 0, 0xffffffffu, ip4(224, 0, 0, 1), ip4(239, 255, 255, 250),
				  ip4(240, 0, 0, 1), OUR_IP };

	for (unsigned i = 0; i < sizeof(srcs) / sizeof(srcs[0]); i++) {
		struct mst_pkt *p = mk_ping(f);

		memcpy(iph(p) + 12, &srcs[i], 4);
		fix_ip_cksum(p);
		memset(&f->st, 0, sizeof(f->st));
		fix_input(f, p);
		assert_dropped_silently(f, MST_DROP_ip_bad_src);
	}
}

static void test_ipv4_not_for_us(void **state)
{
	struct net_fix *f = *state;
	const uint32_t dsts[] = { ip4(10, 0, 0, 9), 0xffffffffu, ip4(10, 0, 0, 255),
				  ip4(224, 0, 0, 1), 0 };

	for (unsigned i = 0; i < sizeof(dsts) / sizeof(dsts[0]); i++) {
		struct mst_pkt *p = mk_ping(f);

		memcpy(iph(p) + 16, &dsts[i], 4);
		fix_ip_cksum(p);
		memset(&f->st, 0, sizeof(f->st));
		fix_input(f, p);
		assert_dropped_silently(f, MST_DROP_ip_not_for_us);
	}
}

static void test_ipv4_fragments_dropped(void **state)
{
	struct net_fix *f = *state;
	const uint16_t frags[] = { 0x2000, 0x0001, 0x2001, 0x1fff, 0x6000, 0x4001 };

	for (unsigned i = 0; i < sizeof(frags) / sizeof(frags[0]); i++) {
		struct mst_pkt *p = mk_ping(f);

		wr16(iph(p) + 6, frags[i]);
		fix_ip_cksum(p);
		memset(&f->st, 0, sizeof(f->st));
		fix_input(f, p);
		assert_dropped_silently(f, MST_DROP_ip_fragment);
	}
}

static void test_ipv4_df_flag_accepted(void **state)
{
	struct net_fix *f = *state;
	struct mst_pkt *p = mk_ping(f);

	wr16(iph(p) + 6, 0x4000);
	fix_ip_cksum(p);
	fix_input(f, p);
	assert_int_equal(f->st.ctr[MST_CTR_icmp_echo_replies], 1);
}

static void test_ipv4_options_skipped(void **state)
{
	struct net_fix *f = *state;
	uint8_t b[128], icmp[32];
	uint16_t n = build_icmp_echo(icmp, 8, 7, 9, "xyz", 3);
	struct mst_pkt *p, *r;

	/* 28-byte header: two NOPs, EOL and padding, then the ICMP message. */
	build_ipv4(b, PEER_IP, OUR_IP, NET_IP_PROTO_ICMP, NULL, 0);
	b[0] = 0x47;
	memset(b + 20, 0, 8);
	b[20] = 1;
	b[21] = 1;
	memcpy(b + 28, icmp, n);
	wr16(b + 2, (uint16_t)(28 + n));
	p = mk_frame(f, our_mac, peer_mac, NET_ETHERTYPE_IPV4, b, (uint16_t)(28 + n));
	fix_ip_cksum(p);
	fix_input(f, p);
	assert_int_equal(drops_total(&f->st), 0);
	assert_int_equal(f->fio.n_tx, 1);
	r = f->fio.tx[0];
	assert_ip_frame_ok(r, OUR_IP, PEER_IP, NET_IP_PROTO_ICMP);
	assert_int_equal(r->len, 14 + 20 + n); /* the reply carries no options */
	assert_memory_equal(r->data + 34 + 8, "xyz", 3);
}

static void test_ipv4_ethernet_padding_trimmed(void **state)
{
	struct net_fix *f = *state;
	struct mst_pkt *p = mk_ping(f); /* 14 + 36 = 50 bytes */
	uint8_t *pad = must_append(p, 10);

	memset(pad, 0xee, 10);
	fix_input(f, p);
	assert_int_equal(f->fio.n_tx, 1);
	assert_int_equal(f->fio.tx[0]->len, 50);
	assert_ip_frame_ok(f->fio.tx[0], OUR_IP, PEER_IP, NET_IP_PROTO_ICMP);
}

static void test_ipv4_tcp_dropped_silently(void **state)
{
	struct net_fix *f = *state;
	uint8_t tcp[20] = { 0x30, 0x39, 0x00, 0x50 };

	fix_input(f, mk_ip_frame(f, PEER_IP, OUR_IP, NET_IP_PROTO_TCP, tcp, sizeof(tcp)));
	assert_dropped_silently(f, MST_DROP_ip_unknown_proto);
}

static void test_ipv4_unknown_proto_gets_protocol_unreachable(void **state)
{
	struct net_fix *f = *state;
	uint8_t gre[12] = { 0, 0, 0x08, 0x00, 1, 2, 3, 4, 5, 6, 7, 8 };
	const uint8_t *r;

	fix_input(f, mk_ip_frame(f, PEER_IP, OUR_IP, 47, gre, sizeof(gre)));
	assert_one_drop(f, MST_DROP_ip_unknown_proto);
	assert_int_equal(f->fio.n_tx, 1);
	assert_int_equal(f->st.ctr[MST_CTR_icmp_unreach_sent], 1);
	assert_ip_frame_ok(f->fio.tx[0], OUR_IP, PEER_IP, NET_IP_PROTO_ICMP);
	r = f->fio.tx[0]->data + 34;
	assert_int_equal(r[0], 3);
	assert_int_equal(r[1], 2);
	assert_int_equal(f->fio.tx[0]->len, 14 + 20 + 8 + 20 + 8);
	assert_int_equal(r[8 + 9], 47); /* quoted header */
	assert_memory_equal(r + 28, gre, 8);
}

/* ---- output ---- */

static struct mst_pkt *payload(struct net_fix *f, uint16_t len)
{
	struct mst_pkt *p = fake_alloc(f);

	memset(must_append(p, len), 0x5a, len);
	return p;
}

static void test_ipv4_output_header(void **state)
{
	struct net_fix *f = *state;
	uint16_t id0, id1;

	assert_int_equal(net_ip_output(f->ns, payload(f, 11), PEER_IP, 99, f->now), 0);
	assert_int_equal(net_ip_output(f->ns, payload(f, 11), PEER_IP, 99, f->now), 0);
	assert_int_equal(f->fio.n_tx, 2);
	for (unsigned i = 0; i < 2; i++) {
		const struct mst_pkt *p = f->fio.tx[i];

		assert_int_equal(p->len, 14 + 20 + 11);
		assert_memory_equal(p->data, peer_mac, 6);
		assert_memory_equal(p->data + 6, our_mac, 6);
		assert_int_equal(rd16(p->data + 14 + 6), 0x4000);
		assert_int_equal(p->data[14 + 8], 64);
		assert_int_equal(p->data[14 + 9], 99);
		assert_int_equal(net_cksum_fold(net_cksum_partial(p->data + 14, 20, 0)), 0);
		assert_int_equal(p->flags & MST_PKT_TX_IP_CKSUM, 0);
	}
	id0 = rd16(f->fio.tx[0]->data + 18);
	id1 = rd16(f->fio.tx[1]->data + 18);
	assert_int_equal((uint16_t)(id0 + 1), id1);
}

static void test_ipv4_output_cksum_offload(void **state)
{
	struct net_fix *f = *state;
	const struct mst_pkt *p;

	f->conf.tx_offloads = NET_OFL_IPV4_CKSUM;
	net_fix_restart(f);
	fix_learn(f, PEER_IP, peer_mac);
	assert_int_equal(net_ip_output(f->ns, payload(f, 8), PEER_IP, 17, f->now), 0);
	p = f->fio.tx[0];
	assert_true(p->flags & MST_PKT_TX_IP_CKSUM);
	assert_int_equal(p->l2_len, 14);
	assert_int_equal(p->l3_len, 20);
	assert_int_equal(rd16(p->data + 14 + 10), 0);
}

static void test_ipv4_output_off_link_via_gateway(void **state)
{
	struct net_fix *f = *state;
	uint32_t far = ip4(8, 8, 8, 8);

	fix_learn(f, GW_IP, gw_mac);
	assert_int_equal(net_ip_output(f->ns, payload(f, 8), far, 17, f->now), 0);
	assert_int_equal(f->fio.n_tx, 1);
	assert_memory_equal(f->fio.tx[0]->data, gw_mac, 6);
	assert_int_equal(rd32n(f->fio.tx[0]->data + 14 + 16), far);
}

static void test_ipv4_output_no_route(void **state)
{
	struct net_fix *f = *state;

	f->conf.gw = 0;
	net_fix_restart(f);
	assert_int_equal(net_ip_output(f->ns, payload(f, 8), ip4(8, 8, 8, 8), 17, f->now),
			 -ENETUNREACH);
	assert_dropped_silently(f, MST_DROP_ip_no_route);
}

static void test_ipv4_output_too_big(void **state)
{
	struct net_fix *f = *state;

	assert_int_equal(net_ip_output(f->ns, payload(f, 1481), PEER_IP, 17, f->now), -EMSGSIZE);
	assert_dropped_silently(f, MST_DROP_too_big);
	assert_int_equal(net_ip_output(f->ns, payload(f, 1480), PEER_IP, 17, f->now), 0);
	assert_int_equal(f->fio.tx[0]->len, 1514);
}

static void test_ipv4_output_prefix_zero_all_on_link(void **state)
{
	struct net_fix *f = *state;

	f->conf.prefix_len = 0;
	f->conf.gw = 0;
	net_fix_restart(f);
	assert_int_equal(net_ip_output(f->ns, payload(f, 8), ip4(8, 8, 8, 8), 17, f->now), 0);
	assert_int_equal(f->fio.n_tx, 1); /* ARP request for 8.8.8.8 itself */
	assert_int_equal(rd32n(f->fio.tx[0]->data + 14 + 24), ip4(8, 8, 8, 8));
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, ipv4_setup, net_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_ipv4_valid_ping_answered),
		T(test_ipv4_truncated_at_every_length),
		T(test_ipv4_bad_version),
		T(test_ipv4_ihl_below_five),
		T(test_ipv4_ihl_past_frame),
		T(test_ipv4_total_len_past_frame),
		T(test_ipv4_total_len_below_header),
		T(test_ipv4_total_len_below_ihl_with_options),
		T(test_ipv4_bad_header_cksum),
		T(test_ipv4_rx_cksum_bad_flag_drops),
		T(test_ipv4_rx_cksum_good_flag_skips_check),
		T(test_ipv4_ttl_zero_dropped_ttl_one_accepted),
		T(test_ipv4_bad_sources),
		T(test_ipv4_not_for_us),
		T(test_ipv4_fragments_dropped),
		T(test_ipv4_df_flag_accepted),
		T(test_ipv4_options_skipped),
		T(test_ipv4_ethernet_padding_trimmed),
		T(test_ipv4_tcp_dropped_silently),
		T(test_ipv4_unknown_proto_gets_protocol_unreachable),
		T(test_ipv4_output_header),
		T(test_ipv4_output_cksum_offload),
		T(test_ipv4_output_off_link_via_gateway),
		T(test_ipv4_output_no_route),
		T(test_ipv4_output_too_big),
		T(test_ipv4_output_prefix_zero_all_on_link),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
