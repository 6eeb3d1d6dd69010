/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * struct mst_pkt: the packet buffer protocol code sees.
 *
 * Protocol code (transport/) never touches an rte_mbuf: it works on this small
 * view of one contiguous frame, so it runs in unit tests without DPDK's EAL.
 * In the daemon an mst_pkt lives in the private area of its rte_mbuf (so a
 * pointer to it stays valid while the packet is queued, e.g. awaiting ARP) and
 * `owner` points back to the mbuf. Tests back it with plain memory.
 *
 * Invariant: data - headroom .. data + len + tailroom is owned memory.
 */
#ifndef MUSTANG_PKT_H
#define MUSTANG_PKT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Flags set by the port on receive. */
#define MST_PKT_RX_IP_CKSUM_GOOD (1u << 0) /* hardware verified the IPv4 header checksum */
#define MST_PKT_RX_IP_CKSUM_BAD (1u << 1)
#define MST_PKT_RX_L4_CKSUM_GOOD (1u << 2) /* hardware verified the UDP/TCP checksum */
#define MST_PKT_RX_L4_CKSUM_BAD (1u << 3)
/* Flags set by protocol code for transmit offloads (only when the port has them). */
#define MST_PKT_TX_IP_CKSUM (1u << 8)   /* port computes the IPv4 header checksum */
#define MST_PKT_TX_UDP_CKSUM (1u << 9)  /* port computes the UDP checksum (pseudo-header sum is in place) */
#define MST_PKT_TX_TCP_CKSUM (1u << 10) /* port computes the TCP checksum (pseudo-header sum is in place) */

struct mst_pkt {
	uint8_t *data;     /* first byte of the frame (Ethernet header) */
	uint16_t len;      /* valid bytes from data */
	uint16_t headroom; /* bytes before data that may be prepended */
	uint16_t tailroom; /* bytes after data + len that may be appended */
	uint8_t l2_len;    /* TX offload: Ethernet header length */
	uint8_t l3_len;    /* TX offload: IP header length */
	uint32_t flags;    /* MST_PKT_RX_* / MST_PKT_TX_* */
	void *owner;       /* the backing buffer (rte_mbuf); not for protocol code */
};

/* Grow the frame at the front; returns the new start or NULL without room. */
static inline uint8_t *mst_pkt_prepend(struct mst_pkt *p, uint16_t n)
{
	if (n > p->headroom)
		return NULL;
	p->data -= n;
	p->headroom -= n;
	p->len += n;
	return p->data;
}

/* Drop n bytes from the front; returns the new start or NULL if too short. */
static inline uint8_t *mst_pkt_adj(struct mst_pkt *p, uint16_t n)
{
	if (n > p->len)
		return NULL;
	p->data += n;
	p->headroom += n;
	p->len -= n;
	return p->data;
}

/* Grow the frame at the end; returns a pointer to the new bytes or NULL. */
static inline uint8_t *mst_pkt_append(struct mst_pkt *p, uint16_t n)
{
	uint8_t *tail;

	if (n > p->tailroom)
		return NULL;
	tail = p->data + p->len;
	p->tailroom -= n;
	p->len += n;
	return tail;
}

/* Cut the frame to n bytes (no-op if already shorter). */
static inline void mst_pkt_trim(struct mst_pkt *p, uint16_t n)
{
	if (n < p->len) {
		p->tailroom += p->len - n;
		p->len = n;
	}
}

#ifdef __cplusplus
}
#endif
#endif /* MUSTANG_PKT_H */
