/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * L2/L3 of the Mustang stack: Ethernet, ARP, IPv4, ICMP, UDP.
 * Internal header (engines and tests only; not for applications).
 *
 * One struct net_stack per engine; it is single-threaded and never blocks.
 * Call order, per frame:
 *   net_input() -> eth_input() -> arp_input()
 *                              -> ipv4_input() -> icmp_input() | udp_input()
 * and for locally generated IPv4:
 *   net_ip_output() -> route -> arp_resolve() -> (send | queue pending)
 * Periodically: net_timer() expires ARP entries, retries and times out
 * frames that wait for ARP.
 *
 * Buffers come and go through struct net_io (the engine backs it with mbufs,
 * tests with plain memory). net_input() always takes ownership of the frame:
 * it transmits it (often reused in place for a reply), queues it, or frees it
 * after counting the drop reason.
 *
 * Addresses in this API are in network byte order (uint32_t as on the wire)
 * unless the name says _h.
 */
#ifndef MST_TRANSPORT_NET_H
#define MST_TRANSPORT_NET_H

#include <stdbool.h>
#include <stdint.h>

#include <mustang/counters.h>
#include <mustang/pkt.h>

#define NET_ETH_ALEN 6
#define NET_ETH_HLEN 14
#define NET_ETHERTYPE_IPV4 0x0800
#define NET_ETHERTYPE_ARP 0x0806
#define NET_IP_PROTO_ICMP 1
#define NET_IP_PROTO_TCP 6
#define NET_IP_PROTO_UDP 17

/* Built-in services (net_conf.services bit mask). */
#define NET_SVC_ECHO (1u << 0) /* UDP echo, RFC 862, port 7 */

/* Offloads the port offers (net_conf.tx_offloads / rx_offloads). */
#define NET_OFL_IPV4_CKSUM (1u << 0)
#define NET_OFL_UDP_CKSUM (1u << 1)
#define NET_OFL_TCP_CKSUM (1u << 2)

struct net_io {
	/* A fresh buffer with headroom >= 128 and tailroom for an MTU-sized
	 * frame, data == first byte, len == 0; NULL when out of buffers. */
	struct mst_pkt *(*alloc)(void *ctx);
	/* Queue a complete frame for transmit; takes ownership. */
	void (*xmit)(void *ctx, struct mst_pkt *p);
	/* Give a buffer back. */
	void (*free)(void *ctx, struct mst_pkt *p);
	/* Optional: an ARP frame taught us ip -> mac (to share with other
	 * engines, which feed it to net_arp_learn()). */
	void (*arp_learned)(void *ctx, uint32_t ip, const uint8_t mac[NET_ETH_ALEN]);
	void *ctx;
};

struct net_conf {
	uint8_t mac[NET_ETH_ALEN]; /* our MAC */
	uint32_t ip;               /* our IPv4 address (network order) */
	uint8_t prefix_len;        /* 0..32 */
	uint32_t gw;               /* default gateway, 0 = none (network order) */
	uint16_t mtu;              /* IP MTU, 68..9000 */
	uint32_t services;         /* NET_SVC_* */
	uint32_t tx_offloads;      /* NET_OFL_* the port computes on transmit */
	uint32_t rx_offloads;      /* NET_OFL_* the port verifies on receive */
	uint32_t arp_timeout_ms;   /* cache entry lifetime; 0 = default 60000 */
	uint32_t arp_retry_ms;     /* request retransmit interval; 0 = default 1000 */
	uint32_t arp_retries;      /* requests before giving up; 0 = default 3 */
};

struct net_stack;

/* Create / destroy. Allocation happens only here (never per packet).
 * Returns NULL and sets errno (EINVAL for a bad conf, ENOMEM). */
struct net_stack *net_create(const struct net_conf *conf, const struct net_io *io,
			     struct mst_stats *stats);
void net_destroy(struct net_stack *ns);

/* Process one received frame; always takes ownership of p. */
void net_input(struct net_stack *ns, struct mst_pkt *p, uint64_t now_ns);

/* Run timers: ARP expiry, request retries, pending timeouts. Cheap when idle. */
void net_timer(struct net_stack *ns, uint64_t now_ns);

/* Broadcast a gratuitous ARP for our address (at start, after a change). */
int net_send_gratuitous_arp(struct net_stack *ns, uint64_t now_ns);

/*
 * Send an IPv4 packet. p->data points at the IP payload (L4 header) with
 * >= 34 bytes of headroom; this prepends the IPv4 and Ethernet headers,
 * routes (on-link or via gw), resolves the next hop and sends or queues it.
 * Takes ownership of p. Returns 0, or a negative errno after counting a drop
 * (-ENETUNREACH no route, -ENOBUFS pending queue full, -EMSGSIZE > MTU).
 */
int net_ip_output(struct net_stack *ns, struct mst_pkt *p, uint32_t dst, uint8_t proto,
		  uint64_t now_ns);

/* ARP cache access (control plane / tests): look up a MAC; true if found & valid. */
bool net_arp_lookup(struct net_stack *ns, uint32_t ip, uint8_t mac_out[NET_ETH_ALEN],
		    uint64_t now_ns);
/* Install ip -> mac as if an ARP frame had said so (from another engine);
 * sends frames waiting for it. Does not call io.arp_learned. 0 / -EINVAL /
 * -ENOSPC. */
int net_arp_learn(struct net_stack *ns, uint32_t ip, const uint8_t mac[NET_ETH_ALEN],
		  uint64_t now_ns);
/* Number of valid entries and of frames waiting for resolution. */
unsigned net_arp_count(const struct net_stack *ns);
/* A valid entry's expiry, as it was (live upgrade). */
void net_arp_set_deadline(struct net_stack *ns, uint32_t ip, uint64_t deadline_ns);
/* Live upgrade (arp_state.c): ARP records of the resolved neighbours;
 * import one record (0, -EBADMSG, -EINVAL). */
struct mst_state_writer;
void net_export_arp(struct net_stack *ns, struct mst_state_writer *w);
int net_import_arp(struct net_stack *ns, const void *p, uint32_t len, uint64_t now_ns);
unsigned net_arp_pending_count(const struct net_stack *ns);

/*
 * The TCP hooks: segments for our address (p->data at the TCP header, len
 * = IP payload; the callee owns p), and ICMP destination-unreachable errors
 * quoting a TCP segment of ours (quoted = the original IP header onwards).
 * Pass NULLs to unhook.
 */
typedef void (*net_tcp_input_fn)(void *ctx, struct mst_pkt *p, uint32_t src, uint32_t dst,
				 uint64_t now_ns);
typedef void (*net_tcp_icmp_fn)(void *ctx, uint8_t type, uint8_t code, uint16_t next_mtu,
				const uint8_t *quoted, unsigned quoted_len, uint64_t now_ns);
void net_set_tcp_hook(struct net_stack *ns, net_tcp_input_fn in, net_tcp_icmp_fn icmp, void *ctx);

/*
 * UDP sockets: the hook gets each datagram that passed the checks (p->data
 * at the UDP header, len = the datagram; src/dst network order, dport host
 * order) and returns true when it took p, false when no socket is bound
 * (then the built-in echo or port unreachable happens).
 */
typedef bool (*net_udp_input_fn)(void *ctx, struct mst_pkt *p, uint32_t src, uint32_t dst,
				 uint16_t dport, uint64_t now_ns);
void net_set_udp_hook(struct net_stack *ns, net_udp_input_fn fn, void *ctx);
/* Send p (data = the UDP payload, >= 42 bytes of headroom) from our
 * address; ports host order. Takes ownership; -EMSGSIZE above the MTU (no
 * fragmentation). */
int net_udp_output(struct net_stack *ns, struct mst_pkt *p, uint32_t dst, uint16_t sport,
		   uint16_t dport, uint64_t now_ns);

/* Our address (network order) and IP MTU. */
uint32_t net_ip(const struct net_stack *ns);
uint16_t net_mtu(const struct net_stack *ns);
/* NET_OFL_* the port computes on transmit. */
uint32_t net_tx_offloads(const struct net_stack *ns);
/* Allocate a buffer through the stack's io (NULL + counted no_buffer drop). */
struct mst_pkt *net_alloc(struct net_stack *ns);
void net_free(struct net_stack *ns, struct mst_pkt *p);

/* Internet checksum helpers (RFC 1071), usable by all protocol code. */
uint32_t net_cksum_partial(const void *buf, size_t len, uint32_t sum);
uint16_t net_cksum_fold(uint32_t sum);
/* Pseudo-header sum for UDP/TCP (not folded, not inverted). */
uint32_t net_pseudo_sum(uint32_t src, uint32_t dst, uint8_t proto, uint16_t l4_len);

#endif /* MST_TRANSPORT_NET_H */
