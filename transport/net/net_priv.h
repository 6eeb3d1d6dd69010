/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Private to transport/net: wire formats, byte-order helpers, the stack
 * state and the calls between the files of this directory. Do not include
 * from engines or applications (they use net.h).
 *
 * Files and the call order (see net.h for the public entry points):
 *   eth.c   net_input() -> eth_input() -> arp_input() | ipv4_input()
 *           eth_output(): prepend Ethernet, hand to io->xmit
 *   arp.c   arp_input(), arp_output() (resolve or queue), arp_timer(),
 *           net_send_gratuitous_arp(), the cache and the pending queue
 *   ipv4.c  ipv4_input() -> icmp_input() | udp_input() | ns->tcp_input
 *           net_ip_output() -> route -> arp_output()
 *   icmp.c  icmp_input() (echo), icmp_send_unreach() (rate limited)
 *   udp.c   udp_input() -> udp_sock_lookup() | echo service
 *   cksum.c RFC 1071 helpers
 *   net.c   net_create(), net_destroy(), net_timer()
 */
#ifndef MST_TRANSPORT_NET_PRIV_H
#define MST_TRANSPORT_NET_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <arpa/inet.h>

#include "transport/net/net.h"

/* ---- Wire formats (all multi-byte fields big-endian on the wire). ---- */

struct net_eth_hdr {
	uint8_t dst[NET_ETH_ALEN];
	uint8_t src[NET_ETH_ALEN];
	uint16_t type; /* EtherType */
} __attribute__((packed));

/* RFC 826, specialised to Ethernet / IPv4. */
struct net_arp_hdr {
	uint16_t htype; /* 1 = Ethernet */
	uint16_t ptype; /* 0x0800 = IPv4 */
	uint8_t hlen;   /* 6 */
	uint8_t plen;   /* 4 */
	uint16_t op;    /* 1 request, 2 reply */
	uint8_t sha[NET_ETH_ALEN];
	uint32_t spa;
	uint8_t tha[NET_ETH_ALEN];
	uint32_t tpa;
} __attribute__((packed));

struct net_ipv4_hdr {
	uint8_t ver_ihl;   /* version (4) << 4 | header length in words */
	uint8_t tos;
	uint16_t tot_len;  /* header + payload bytes */
	uint16_t id;
	uint16_t frag_off; /* flags (3 bits) | offset in 8-byte units */
	uint8_t ttl;
	uint8_t proto;
	uint16_t cksum;
	uint32_t src;
	uint32_t dst;
} __attribute__((packed));

struct net_icmp_hdr {
	uint8_t type;
	uint8_t code;
	uint16_t cksum;
	uint16_t id;  /* echo: identifier; errors: unused */
	uint16_t seq; /* echo: sequence; errors: unused / next-hop MTU */
} __attribute__((packed));

struct net_udp_hdr {
	uint16_t sport;
	uint16_t dport;
	uint16_t len; /* header + payload */
	uint16_t cksum;
} __attribute__((packed));

_Static_assert(sizeof(struct net_eth_hdr) == NET_ETH_HLEN, "eth header");
_Static_assert(sizeof(struct net_arp_hdr) == 28, "arp header");
_Static_assert(sizeof(struct net_ipv4_hdr) == 20, "ipv4 header");
_Static_assert(sizeof(struct net_icmp_hdr) == 8, "icmp header");
_Static_assert(sizeof(struct net_udp_hdr) == 8, "udp header");

#define NET_ARP_HTYPE_ETH 1
#define NET_ARP_OP_REQUEST 1
#define NET_ARP_OP_REPLY 2
#define NET_ARP_FRAME_LEN (NET_ETH_HLEN + (uint16_t)sizeof(struct net_arp_hdr))

#define NET_IP_HLEN 20
#define NET_IP_DF 0x4000
#define NET_IP_MF 0x2000
#define NET_IP_OFFMASK 0x1fff
#define NET_IP_TTL 64

#define NET_ICMP_ECHO_REPLY 0
#define NET_ICMP_DEST_UNREACH 3
#define NET_ICMP_ECHO_REQUEST 8
#define NET_ICMP_UNREACH_PROTO 2
#define NET_ICMP_UNREACH_PORT 3

#define NET_UDP_PORT_ECHO 7

/* ---- Unaligned loads/stores; the wire is big-endian. ---- */

static inline uint16_t net_ld16(const void *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return ntohs(v);
}

static inline void net_st16(void *p, uint16_t v)
{
	v = htons(v);
	memcpy(p, &v, sizeof(v));
}

/* 32-bit IPv4 addresses stay in network order: copy the bytes only. */
static inline uint32_t net_ld32n(const void *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static inline void net_st32n(void *p, uint32_t v)
{
	memcpy(p, &v, sizeof(v));
}

/* A checksum as computed by net_cksum_fold() is in memory order: store it
 * with a plain copy, not htons (RFC 1071 §2(B), byte-order independence). */
static inline void net_st_cksum(void *p, uint16_t c)
{
	memcpy(p, &c, sizeof(c));
}

static inline bool net_mac_is_mcast(const uint8_t *mac)
{
	return (mac[0] & 1) != 0; /* I/G bit; covers broadcast too */
}

static inline bool net_mac_is_zero(const uint8_t *mac)
{
	static const uint8_t zero[NET_ETH_ALEN];

	return memcmp(mac, zero, NET_ETH_ALEN) == 0;
}

/* 0.0.0.0, or 224.0.0.0 and up: multicast (224/4), reserved (240/4) and
 * the limited broadcast 255.255.255.255. */
static inline bool net_ip_is_special(uint32_t ip_n)
{
	uint32_t h = ntohl(ip_n);

	return h == 0 || h >= 0xe0000000u;
}

extern const uint8_t net_eth_bcast[NET_ETH_ALEN];

/* ---- Stack state. ---- */

/* What IPv4 input learned about a packet, for the layers above it. The
 * pointer stays valid until the packet is freed or reused. */
struct net_ip_rx {
	const uint8_t *iph; /* the received IPv4 header (for ICMP errors) */
	uint32_t src;       /* network order */
	uint32_t dst;       /* network order */
	uint16_t ihl;       /* header bytes */
	bool l2_bcast;      /* arrived as an Ethernet broadcast */
};

/* L4 input hook: p->data at the L4 header, len trimmed to the IP payload. */
typedef void (*net_l4_input_fn)(struct net_stack *ns, struct mst_pkt *p,
				const struct net_ip_rx *rx, uint64_t now_ns);

enum arp_state {
	ARP_FREE = 0,
	ARP_INCOMPLETE, /* request sent, frames may wait in the pending queue */
	ARP_VALID,
};

struct arp_entry {
	uint64_t deadline_ns;     /* VALID: expiry; INCOMPLETE: next retry */
	uint32_t ip;              /* network order */
	uint8_t mac[NET_ETH_ALEN];
	uint8_t state;            /* enum arp_state */
	uint8_t tries;            /* INCOMPLETE: requests sent so far */
};

struct arp_pending {
	struct mst_pkt *p; /* full frame, Ethernet dst still to fill in */
	uint32_t nh;       /* next hop it waits for (network order) */
};

#define ARP_TABLE_SIZE 1024u /* power of two */
#define ARP_WAYS 8u          /* probe window: a slot lives within 8 of its hash */
#define ARP_PENDING_MAX 64u

/* ICMP error token bucket: 100 errors/s, bursts of up to 100. */
#define ICMP_ERR_COST_NS 10000000ull
#define ICMP_ERR_BURST 100ull

struct net_stack {
	struct net_conf conf;      /* defaults filled in */
	struct net_io io;
	struct mst_stats *st;      /* the engine's counters */
	uint32_t netmask;          /* network order, from prefix_len */
	uint16_t ip_id;            /* next IPv4 identification */
	uint64_t arp_timeout_ns;
	uint64_t arp_retry_ns;

	struct arp_entry *arp;     /* ARP_TABLE_SIZE entries */
	unsigned arp_used;         /* entries not FREE */
	uint64_t arp_next_ns;      /* no ARP deadline before this */
	struct arp_pending *pend;  /* ARP_PENDING_MAX, oldest first */
	unsigned n_pend;

	uint64_t icmp_bucket_ns;   /* token bucket credit, in ns of sending */
	uint64_t icmp_last_ns;     /* last refill */

	/* Hook for TCP (a later issue): NULL today, so TCP segments are
	 * dropped as ip_unknown_proto without an ICMP error. */
	net_l4_input_fn tcp_input;
	net_tcp_input_fn tcp_hook;  /* set by net_set_tcp_hook() */
	net_tcp_icmp_fn tcp_icmp_hook;
	void *tcp_ctx;
	net_udp_input_fn udp_hook;  /* set by net_set_udp_hook() */
	void *udp_ctx;
};

/* eth.c */
void eth_input(struct net_stack *ns, struct mst_pkt *p, uint64_t now_ns);
int eth_prepend(struct net_stack *ns, struct mst_pkt *p, const uint8_t *dst,
		uint16_t type);

/* arp.c */
void arp_input(struct net_stack *ns, struct mst_pkt *p, uint64_t now_ns);
int arp_output(struct net_stack *ns, struct mst_pkt *p, uint32_t nh, uint64_t now_ns);
void arp_timer(struct net_stack *ns, uint64_t now_ns);
void arp_flush_all(struct net_stack *ns);

/* ipv4.c */
void ipv4_input(struct net_stack *ns, struct mst_pkt *p, bool l2_bcast, uint64_t now_ns);

/* icmp.c */
void icmp_input(struct net_stack *ns, struct mst_pkt *p, const struct net_ip_rx *rx,
		uint64_t now_ns);
void icmp_send_unreach(struct net_stack *ns, const struct mst_pkt *p,
		       const struct net_ip_rx *rx, uint8_t code, uint64_t now_ns);

/* udp.c */
void udp_input(struct net_stack *ns, struct mst_pkt *p, const struct net_ip_rx *rx,
	       uint64_t now_ns);

/* Drop helper: count the reason, give the buffer back. */
#define NET_DROP(ns, p, reason)                                                 \
	do {                                                                    \
		MST_DROP((ns)->st, reason);                                     \
		(ns)->io.free((ns)->io.ctx, (p));                               \
	} while (0)

#endif /* MST_TRANSPORT_NET_PRIV_H */
