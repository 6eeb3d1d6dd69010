/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Ethernet: the receive entry point and the demultiplexer.
 *
 * Call order:
 *   net_input() -> eth_input(): runt, destination MAC, source MAC, EtherType
 *              -> arp_input() | ipv4_input()
 *   eth_prepend(): used on output by arp.c (requests, replies and every IPv4
 *                  frame once its next hop is known).
 *
 * Accepted destinations: our MAC and ff:ff:ff:ff:ff:ff. Multicast (including
 * IPv4 multicast 01:00:5e:..) is not joined, so it is "not for us". 802.1Q
 * tagged frames are not handled and count as eth_unknown_type.
 */
#include "transport/net/net_priv.h"

const uint8_t net_eth_bcast[NET_ETH_ALEN] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

void net_input(struct net_stack *ns, struct mst_pkt *p, uint64_t now_ns)
{
	eth_input(ns, p, now_ns);
}

void eth_input(struct net_stack *ns, struct mst_pkt *p, uint64_t now_ns)
{
	const struct net_eth_hdr *eh;
	bool bcast;

	if (p->len < NET_ETH_HLEN) {
		NET_DROP(ns, p, eth_runt);
		return;
	}
	eh = (const struct net_eth_hdr *)p->data;

	bcast = memcmp(eh->dst, net_eth_bcast, NET_ETH_ALEN) == 0;
	if (!bcast && memcmp(eh->dst, ns->conf.mac, NET_ETH_ALEN) != 0) {
		NET_DROP(ns, p, eth_not_for_us);
		return;
	}
	if (net_mac_is_mcast(eh->src)) {
		NET_DROP(ns, p, eth_bad_src);
		return;
	}

	switch (net_ld16(&eh->type)) {
	case NET_ETHERTYPE_ARP:
		arp_input(ns, p, now_ns);
		return;
	case NET_ETHERTYPE_IPV4:
		ipv4_input(ns, p, bcast, now_ns);
		return;
	default:
		NET_DROP(ns, p, eth_unknown_type);
		return;
	}
}

/* Prepend an Ethernet header from us to dst (NULL: zeros, filled in later
 * once ARP resolves). Returns 0, or -1 without headroom (the caller drops). */
int eth_prepend(struct net_stack *ns, struct mst_pkt *p, const uint8_t *dst, uint16_t type)
{
	struct net_eth_hdr *eh;

	eh = (struct net_eth_hdr *)mst_pkt_prepend(p, NET_ETH_HLEN);
	if (!eh)
		return -1;
	if (dst)
		memcpy(eh->dst, dst, NET_ETH_ALEN);
	else
		memset(eh->dst, 0, NET_ETH_ALEN);
	memcpy(eh->src, ns->conf.mac, NET_ETH_ALEN);
	net_st16(&eh->type, type);
	return 0;
}
