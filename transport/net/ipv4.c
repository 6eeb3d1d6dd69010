/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * IPv4 (RFC 791, host requirements RFC 1122 §3.2): input validation and
 * demultiplexing, output with routing.
 *
 * Call order:
 *   eth_input() -> ipv4_input(): the checks below, in this order, each with
 *       its drop reason -> icmp_input() | udp_input() | ns->tcp_input
 *       (NULL today) | ICMP protocol unreachable
 *   net_ip_output(): MTU -> route (on-link: dst, else gateway) -> IPv4
 *       header (software checksum or offload) -> Ethernet -> arp_output()
 *
 * Only unicast to our address is delivered. The limited broadcast
 * 255.255.255.255 is not accepted (ip_not_for_us): no built-in service needs
 * it and refusing it removes a broadcast-amplification path. Options are
 * accepted and skipped; fragments are dropped (no reassembly yet).
 */
#include <errno.h>

#include "transport/net/net_priv.h"

void ipv4_input(struct net_stack *ns, struct mst_pkt *p, bool l2_bcast, uint64_t now_ns)
{
	const struct net_ipv4_hdr *ih;
	struct net_ip_rx rx;
	uint16_t avail, ihl, tot, frag;

	/* 1. The fixed header is there. */
	avail = (uint16_t)(p->len - NET_ETH_HLEN);
	if (avail < NET_IP_HLEN) {
		NET_DROP(ns, p, ip_truncated);
		return;
	}
	ih = (const struct net_ipv4_hdr *)(p->data + NET_ETH_HLEN);

	/* 2. Version. */
	if ((ih->ver_ihl >> 4) != 4) {
		NET_DROP(ns, p, ip_bad_version);
		return;
	}
	/* 3. Header length: at least 20 bytes, within the frame. */
	ihl = (uint16_t)((ih->ver_ihl & 0x0f) * 4);
	if (ihl < NET_IP_HLEN || ihl > avail) {
		NET_DROP(ns, p, ip_bad_ihl);
		return;
	}
	/* 4. Total length covers the header and fits the frame; anything past
	 *    it is Ethernet padding. */
	tot = net_ld16(&ih->tot_len);
	if (tot < ihl || tot > avail) {
		NET_DROP(ns, p, ip_bad_total_len);
		return;
	}
	mst_pkt_trim(p, (uint16_t)(NET_ETH_HLEN + tot));

	/* 5. Header checksum, unless the port checked it. */
	if (p->flags & MST_PKT_RX_IP_CKSUM_BAD) {
		NET_DROP(ns, p, ip_bad_cksum);
		return;
	}
	if (!(p->flags & MST_PKT_RX_IP_CKSUM_GOOD) &&
	    net_cksum_fold(net_cksum_partial(ih, ihl, 0)) != 0) {
		NET_DROP(ns, p, ip_bad_cksum);
		return;
	}
	/* 6. TTL: zero never arrives legitimately; 1 to us is fine (we do not
	 *    forward). */
	if (ih->ttl == 0) {
		NET_DROP(ns, p, ip_ttl_expired);
		return;
	}
	rx.iph = (const uint8_t *)ih;
	rx.ihl = ihl;
	rx.src = net_ld32n(&ih->src);
	rx.dst = net_ld32n(&ih->dst);
	rx.l2_bcast = l2_bcast;

	/* 7. Source (RFC 1122 §3.2.1.3): not 0, broadcast, multicast, ours. */
	if (net_ip_is_special(rx.src) || rx.src == ns->conf.ip) {
		NET_DROP(ns, p, ip_bad_src);
		return;
	}
	/* 8. Destination. */
	if (rx.dst != ns->conf.ip) {
		NET_DROP(ns, p, ip_not_for_us);
		return;
	}
	/* 9. Fragments: MF set or a non-zero offset. */
	frag = net_ld16(&ih->frag_off);
	if (frag & (NET_IP_MF | NET_IP_OFFMASK)) {
		NET_DROP(ns, p, ip_fragment);
		return;
	}
	MST_COUNT(ns->st, ipv4_rx);

	/* Hand the payload up: data at the L4 header, len = IP payload. The
	 * headers stay in the buffer, so rx.iph remains readable. */
	mst_pkt_adj(p, (uint16_t)(NET_ETH_HLEN + ihl));
	switch (ih->proto) {
	case NET_IP_PROTO_ICMP:
		icmp_input(ns, p, &rx, now_ns);
		return;
	case NET_IP_PROTO_UDP:
		udp_input(ns, p, &rx, now_ns);
		return;
	case NET_IP_PROTO_TCP:
		if (ns->tcp_hook) {
			ns->tcp_hook(ns->tcp_ctx, p, rx.src, rx.dst, now_ns);
			return;
		}
		if (ns->tcp_input) {
			ns->tcp_input(ns, p, &rx, now_ns);
			return;
		}
		/* No TCP yet: silently, no RST and no ICMP error. */
		NET_DROP(ns, p, ip_unknown_proto);
		return;
	default:
		icmp_send_unreach(ns, p, &rx, NET_ICMP_UNREACH_PROTO, now_ns);
		NET_DROP(ns, p, ip_unknown_proto);
		return;
	}
}

/* Next hop for dst, or 0 when there is no route. */
static uint32_t ipv4_route(const struct net_stack *ns, uint32_t dst)
{
	if (dst == 0 || dst == ns->conf.ip) /* no loopback through the port */
		return 0;
	if (dst == 0xffffffffu) /* limited broadcast: on-link, no ARP */
		return dst;
	if (((dst ^ ns->conf.ip) & ns->netmask) == 0)
		return dst;
	return ns->conf.gw;
}

int net_ip_output(struct net_stack *ns, struct mst_pkt *p, uint32_t dst, uint8_t proto,
		  uint64_t now_ns)
{
	struct net_ipv4_hdr *ih;
	uint32_t nh;

	if (p->headroom < NET_IP_HLEN + NET_ETH_HLEN) {
		NET_DROP(ns, p, no_headroom);
		return -ENOBUFS;
	}
	if ((uint32_t)p->len + NET_IP_HLEN > ns->conf.mtu) {
		NET_DROP(ns, p, too_big);
		return -EMSGSIZE;
	}
	nh = ipv4_route(ns, dst);
	if (nh == 0) {
		NET_DROP(ns, p, ip_no_route);
		return -ENETUNREACH;
	}

	ih = (struct net_ipv4_hdr *)mst_pkt_prepend(p, NET_IP_HLEN);
	ih->ver_ihl = 0x45;
	ih->tos = 0;
	net_st16(&ih->tot_len, p->len);
	net_st16(&ih->id, ns->ip_id++);
	net_st16(&ih->frag_off, NET_IP_DF);
	ih->ttl = NET_IP_TTL;
	ih->proto = proto;
	ih->cksum = 0;
	net_st32n(&ih->src, ns->conf.ip);
	net_st32n(&ih->dst, dst);

	/* Keep the caller's L4 TX flags; receive flags of a reused buffer
	 * mean nothing on the way out. */
	p->flags &= MST_PKT_TX_UDP_CKSUM | MST_PKT_TX_TCP_CKSUM;
	p->l2_len = NET_ETH_HLEN;
	p->l3_len = NET_IP_HLEN;
	if (ns->conf.tx_offloads & NET_OFL_IPV4_CKSUM)
		p->flags |= MST_PKT_TX_IP_CKSUM;
	else
		net_st_cksum(&ih->cksum, net_cksum_fold(net_cksum_partial(ih, NET_IP_HLEN, 0)));

	eth_prepend(ns, p, NULL, NET_ETHERTYPE_IPV4); /* headroom checked above */
	if (dst == 0xffffffffu) {
		memcpy(p->data, net_eth_bcast, NET_ETH_ALEN);
		ns->io.xmit(ns->io.ctx, p);
		return 0;
	}
	return arp_output(ns, p, nh, now_ns);
}
