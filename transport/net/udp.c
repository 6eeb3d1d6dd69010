/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * UDP (RFC 768, RFC 1122 §4.1) and the built-in echo service (RFC 862).
 *
 * Call order:
 *   ipv4_input() -> udp_input(): length field, checksum -> udp_sock_input()
 *       (the socket layer's hook) -> echo service on port 7
 *       -> udp_echo(): swap ports, checksum -> net_ip_output(), reusing the
 *       received buffer; or a closed port: udp_no_port + ICMP port
 *       unreachable.
 */
#include <errno.h>

#include "transport/net/net_priv.h"

/* UDP sockets (net_set_udp_hook): the hook gets the datagram (p->data at
 * the UDP header, len = the datagram) and returns true when a socket took
 * it (and p with it), false when none is bound to dport (we keep p). */
static bool udp_sock_input(struct net_stack *ns, struct mst_pkt *p,
			   const struct net_ip_rx *rx, uint16_t dport, uint64_t now_ns)
{
	if (!ns->udp_hook)
		return false;
	return ns->udp_hook(ns->udp_ctx, p, rx->src, rx->dst, dport, now_ns);
}

int net_udp_output(struct net_stack *ns, struct mst_pkt *p, uint32_t dst, uint16_t sport,
		   uint16_t dport, uint64_t now_ns)
{
	struct net_udp_hdr *uh;
	uint16_t ulen;
	uint32_t sum;

	if (p->len > 65507 || p->len + ((uint16_t)sizeof(struct net_udp_hdr)) + NET_IP_HLEN > ns->conf.mtu) {
		NET_DROP(ns, p, too_big);
		return -EMSGSIZE;
	}
	uh = (struct net_udp_hdr *)mst_pkt_prepend(p, ((uint16_t)sizeof(struct net_udp_hdr)));
	if (!uh) {
		NET_DROP(ns, p, no_headroom);
		return -ENOBUFS;
	}
	ulen = p->len;
	net_st16(&uh->sport, sport);
	net_st16(&uh->dport, dport);
	net_st16(&uh->len, ulen);
	uh->cksum = 0;
	p->flags = 0;
	sum = net_pseudo_sum(ns->conf.ip, dst, NET_IP_PROTO_UDP, ulen);
	if (ns->conf.tx_offloads & NET_OFL_UDP_CKSUM) {
		net_st_cksum(&uh->cksum, (uint16_t)~net_cksum_fold(sum));
		p->flags |= MST_PKT_TX_UDP_CKSUM;
	} else {
		uint16_t c = net_cksum_fold(net_cksum_partial(uh, ulen, sum));

		net_st_cksum(&uh->cksum, c ? c : 0xffff);
	}
	return net_ip_output(ns, p, dst, NET_IP_PROTO_UDP, now_ns);
}

/* Source ports an echo must never answer: 0 cannot be replied to, and the
 * small services that answer anything would ping-pong with us forever
 * (echo 7, daytime 13, qotd 17, chargen 19, time 37). */
static bool udp_echo_src_ok(uint16_t sport)
{
	switch (sport) {
	case 0:
	case 7:
	case 13:
	case 17:
	case 19:
	case 37:
		return false;
	default:
		return true;
	}
}

static void udp_echo(struct net_stack *ns, struct mst_pkt *p, const struct net_ip_rx *rx,
		     uint64_t now_ns)
{
	struct net_udp_hdr *uh = (struct net_udp_hdr *)p->data;
	uint16_t sport = net_ld16(&uh->sport);
	uint32_t sum;

	if (!udp_echo_src_ok(sport)) {
		NET_DROP(ns, p, udp_bad_src_port);
		return;
	}
	net_st16(&uh->sport, NET_UDP_PORT_ECHO);
	net_st16(&uh->dport, sport);
	uh->cksum = 0;
	p->flags = 0;

	/* Our reply goes from rx->dst (us) to rx->src. */
	sum = net_pseudo_sum(ns->conf.ip, rx->src, NET_IP_PROTO_UDP, p->len);
	if (ns->conf.tx_offloads & NET_OFL_UDP_CKSUM) {
		/* The port wants the folded, non-inverted pseudo-header sum. */
		net_st_cksum(&uh->cksum, (uint16_t)~net_cksum_fold(sum));
		p->flags |= MST_PKT_TX_UDP_CKSUM;
	} else {
		uint16_t c = net_cksum_fold(net_cksum_partial(uh, p->len, sum));

		/* RFC 768: a computed 0 is sent as all ones (0 means "none"). */
		net_st_cksum(&uh->cksum, c ? c : 0xffff);
	}
	if (net_ip_output(ns, p, rx->src, NET_IP_PROTO_UDP, now_ns) == 0)
		MST_COUNT(ns->st, udp_echo_replies);
}

void udp_input(struct net_stack *ns, struct mst_pkt *p, const struct net_ip_rx *rx,
	       uint64_t now_ns)
{
	const struct net_udp_hdr *uh;
	uint16_t ulen, dport;

	if (p->len < sizeof(*uh)) {
		NET_DROP(ns, p, udp_truncated);
		return;
	}
	uh = (const struct net_udp_hdr *)p->data;
	ulen = net_ld16(&uh->len);
	if (ulen < sizeof(*uh) || ulen > p->len) {
		NET_DROP(ns, p, udp_bad_len);
		return;
	}
	mst_pkt_trim(p, ulen); /* an IP payload longer than the datagram */

	/* Checksum 0: the sender computed none (RFC 768). */
	if (uh->cksum != 0) {
		if (p->flags & MST_PKT_RX_L4_CKSUM_BAD) {
			NET_DROP(ns, p, udp_bad_cksum);
			return;
		}
		if (!(p->flags & MST_PKT_RX_L4_CKSUM_GOOD) &&
		    net_cksum_fold(net_cksum_partial(
			    uh, ulen, net_pseudo_sum(rx->src, rx->dst, NET_IP_PROTO_UDP, ulen))) != 0) {
			NET_DROP(ns, p, udp_bad_cksum);
			return;
		}
	}
	MST_COUNT(ns->st, udp_rx);

	dport = net_ld16(&uh->dport);
	if (udp_sock_input(ns, p, rx, dport, now_ns))
		return;
	if (dport == NET_UDP_PORT_ECHO && (ns->conf.services & NET_SVC_ECHO)) {
		udp_echo(ns, p, rx, now_ns);
		return;
	}
	icmp_send_unreach(ns, p, rx, NET_ICMP_UNREACH_PORT, now_ns);
	NET_DROP(ns, p, udp_no_port);
}
