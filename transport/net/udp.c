/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * UDP (RFC 768, RFC 1122 §4.1) and the built-in echo service (RFC 862).
 *
 * Call order:
 *   ipv4_input() -> udp_input(): length field, checksum -> udp_sock_input()
 *       (no sockets yet: always "none") -> echo service on port 7
 *       -> udp_echo(): swap ports, checksum -> net_ip_output(), reusing the
 *       received buffer; or a closed port: udp_no_port + ICMP port
 *       unreachable.
 */
#include "transport/net/net_priv.h"

/* Hook for future UDP sockets: deliver p to the socket bound to (dst,
 * dport) and return true, or return false when there is none (the caller
 * keeps p). Sockets are not implemented yet, so every port without a
 * built-in service is closed. */
static bool udp_sock_input(struct net_stack *ns, struct mst_pkt *p,
			   const struct net_ip_rx *rx, uint16_t dport, uint64_t now_ns)
{
	(void)ns;
	(void)p;
	(void)rx;
	(void)dport;
	(void)now_ns;
	return false;
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
