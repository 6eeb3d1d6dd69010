/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ICMP (RFC 792, RFC 1122 §3.2.2): echo, and the destination-unreachable
 * errors the stack sends.
 *
 * Call order:
 *   ipv4_input() -> icmp_input(): length, checksum -> echo request: turn the
 *       buffer into the reply in place -> net_ip_output() (the next hop comes
 *       from the ARP cache like any other packet); other types are counted
 *       and dropped as icmp_unhandled_type.
 *   ipv4_input() | udp_input() -> icmp_send_unreach(): RFC 1122 §3.2.2 "MUST
 *       NOT send" checks -> token bucket -> new buffer quoting the IP header
 *       and 8 bytes of payload -> net_ip_output().
 *
 * icmp_rx counts messages that passed the length and checksum checks.
 */
#include "transport/net/net_priv.h"

void icmp_input(struct net_stack *ns, struct mst_pkt *p, const struct net_ip_rx *rx,
		uint64_t now_ns)
{
	struct net_icmp_hdr *h;

	if (p->len < sizeof(*h)) {
		NET_DROP(ns, p, icmp_truncated);
		return;
	}
	h = (struct net_icmp_hdr *)p->data;
	if (net_cksum_fold(net_cksum_partial(h, p->len, 0)) != 0) {
		NET_DROP(ns, p, icmp_bad_cksum);
		return;
	}
	MST_COUNT(ns->st, icmp_rx);

	/* Destination unreachable quoting one of our TCP segments: tell TCP
	 * (connection refused, fragmentation needed -> path MTU). The quote
	 * must hold the IP header and the first 8 bytes of TCP. */
	if (h->type == 3 && ns->tcp_icmp_hook && p->len >= sizeof(*h) + 20 + 8) {
		const uint8_t *q = p->data + sizeof(*h);
		unsigned qlen = p->len - (unsigned)sizeof(*h);
		unsigned qihl = (unsigned)(q[0] & 0x0f) * 4u;

		if ((q[0] >> 4) == 4 && qihl >= 20 && qlen >= qihl + 8 && q[9] == NET_IP_PROTO_TCP) {
			uint16_t mtu = (uint16_t)(p->data[6] << 8 | p->data[7]);

			ns->tcp_icmp_hook(ns->tcp_ctx, h->type, h->code, mtu, q, qlen, now_ns);
		}
	}

	if (h->type != NET_ICMP_ECHO_REQUEST || h->code != 0) {
		/* Echo replies, errors (no sockets to report them to yet), and
		 * everything else. */
		NET_DROP(ns, p, icmp_unhandled_type);
		return;
	}

	/* Echo reply (RFC 792): same id, sequence and data; new checksum. */
	h->type = NET_ICMP_ECHO_REPLY;
	h->cksum = 0;
	net_st_cksum(&h->cksum, net_cksum_fold(net_cksum_partial(h, p->len, 0)));
	p->flags = 0;
	if (net_ip_output(ns, p, rx->src, NET_IP_PROTO_ICMP, now_ns) == 0)
		MST_COUNT(ns->st, icmp_echo_replies);
}

/* RFC 1122 §3.2.2: no error about an ICMP error. */
static bool icmp_is_error(const struct mst_pkt *p, const struct net_ip_rx *rx)
{
	uint8_t type;

	if (rx->iph[9] != NET_IP_PROTO_ICMP)
		return false;
	if (p->len < 1)
		return true; /* cannot tell: assume the worst */
	type = p->data[0];
	return !(type == NET_ICMP_ECHO_REPLY || type == NET_ICMP_ECHO_REQUEST ||
		 (type >= 13 && type <= 18) /* timestamp, info, mask */);
}

/* Token bucket: refills at one error per ICMP_ERR_COST_NS, holds a burst. */
static bool icmp_rate_ok(struct net_stack *ns, uint64_t now_ns)
{
	const uint64_t cap = ICMP_ERR_BURST * ICMP_ERR_COST_NS;

	if (now_ns > ns->icmp_last_ns) {
		uint64_t add = now_ns - ns->icmp_last_ns;

		ns->icmp_bucket_ns = add >= cap - ns->icmp_bucket_ns ? cap : ns->icmp_bucket_ns + add;
		ns->icmp_last_ns = now_ns;
	}
	if (ns->icmp_bucket_ns < ICMP_ERR_COST_NS)
		return false;
	ns->icmp_bucket_ns -= ICMP_ERR_COST_NS;
	return true;
}

/*
 * Send destination unreachable (type 3, code) about the packet in p (data at
 * its L4 header, len = its IP payload), quoting its IP header and the first
 * 8 bytes of payload. p is only read; the caller still owns and drops it.
 */
void icmp_send_unreach(struct net_stack *ns, const struct mst_pkt *p,
		       const struct net_ip_rx *rx, uint8_t code, uint64_t now_ns)
{
	struct net_icmp_hdr *h;
	struct mst_pkt *q;
	uint16_t quote, payload;
	uint8_t *body;

	/* Not for link-layer broadcasts, ICMP errors (RFC 1122 §3.2.2);
	 * fragments and bad sources never get here (ipv4_input drops them). */
	if (rx->l2_bcast || icmp_is_error(p, rx))
		return;
	if (!icmp_rate_ok(ns, now_ns)) {
		MST_DROP(ns->st, icmp_rate_limited);
		return;
	}
	q = ns->io.alloc(ns->io.ctx);
	if (!q) {
		MST_DROP(ns->st, no_buffer);
		return;
	}

	payload = p->len < 8 ? p->len : 8;
	quote = (uint16_t)(rx->ihl + payload);
	if (quote > ns->conf.mtu - NET_IP_HLEN - sizeof(*h)) /* tiny MTUs */
		quote = (uint16_t)(ns->conf.mtu - NET_IP_HLEN - sizeof(*h));

	h = (struct net_icmp_hdr *)mst_pkt_append(q, (uint16_t)(sizeof(*h) + quote));
	if (!h) {
		NET_DROP(ns, q, no_buffer);
		return;
	}
	body = (uint8_t *)(h + 1);
	h->type = NET_ICMP_DEST_UNREACH;
	h->code = code;
	h->cksum = 0;
	h->id = 0;
	h->seq = 0;
	/* The IP header and the L4 bytes are contiguous in the received
	 * buffer: iph + ihl == p->data. */
	memcpy(body, rx->iph, quote);
	net_st_cksum(&h->cksum, net_cksum_fold(net_cksum_partial(h, q->len, 0)));
	q->flags = 0;
	if (net_ip_output(ns, q, rx->src, NET_IP_PROTO_ICMP, now_ns) == 0)
		MST_COUNT(ns->st, icmp_unreach_sent);
}
