/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Test helpers for transport/net (in the spirit of lwIP's tcp_helper.h):
 * a fake net_io backed by a fixed array of buffers that records what the
 * stack transmits and catches leaks and double frees, a fixture holding a
 * stack with a known configuration, and builders that fabricate frames.
 *
 * Every test ends with net_teardown(): destroy the stack, free the recorded
 * transmissions, assert that every buffer is back.
 */
#ifndef MST_TEST_NET_HELPER_H
#define MST_TEST_NET_HELPER_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "transport/net/net.h"

#define FAKE_NBUF 256
#define FAKE_HEADROOM 128
#define FAKE_MEM 2048
#define FAKE_NTX 256

struct fake_buf {
	struct mst_pkt pkt;
	bool used;
	uint8_t mem[FAKE_MEM];
};

struct fake_io {
	struct fake_buf bufs[FAKE_NBUF];
	unsigned in_use;          /* buffers handed out and not back */
	unsigned alloc_fail;      /* the next N allocations fail */
	struct mst_pkt *tx[FAKE_NTX]; /* transmitted, oldest first; owned here */
	unsigned n_tx;
};

struct net_fix {
	struct fake_io fio;
	struct net_io io;
	struct mst_stats st;
	struct net_conf conf;
	struct net_stack *ns;
	uint64_t now;             /* virtual clock, ns */
};

/* Addresses of the fixture (network order via helpers below). */
extern const uint8_t our_mac[6];
extern const uint8_t peer_mac[6];
extern const uint8_t gw_mac[6];
extern const uint8_t bcast_mac[6];
uint32_t ip4(uint8_t a, uint8_t b, uint8_t c, uint8_t d); /* network order */
#define OUR_IP ip4(10, 0, 0, 1)
#define PEER_IP ip4(10, 0, 0, 2)
#define GW_IP ip4(10, 0, 0, 254)

/* Fixture. net_setup uses net_default_conf(); a test that needs another
 * configuration edits f->conf and calls net_fix_restart(). */
void net_default_conf(struct net_conf *c);
int net_setup(void **state);
int net_teardown(void **state);
void net_fix_restart(struct net_fix *f); /* re-create the stack with f->conf */

/* Fake io. */
struct mst_pkt *fake_alloc(struct net_fix *f);
void fake_tx_clear(struct net_fix *f);
void fake_assert_no_leak(struct net_fix *f);

/* Feed a frame to the stack at the fixture clock. */
void fix_input(struct net_fix *f, struct mst_pkt *p);
/* Teach the stack peer_mac for PEER_IP (an ARP reply to us), clear stats. */
void fix_learn(struct net_fix *f, uint32_t ip, const uint8_t *mac);

/* Counters: sum of all drop reasons; assert exactly one drop of `reason`. */
uint64_t drops_total(const struct mst_stats *st);
void assert_one_drop(const struct net_fix *f, enum mst_drop reason);
/* assert_one_drop, nothing sent, every buffer back. */
void assert_dropped_silently(struct net_fix *f, enum mst_drop reason);

/* Frame builders. Each returns a fresh buffer holding the frame. */
struct mst_pkt *mk_frame(struct net_fix *f, const uint8_t *dst, const uint8_t *src,
			 uint16_t type, const void *payload, uint16_t len);
struct mst_pkt *mk_arp(struct net_fix *f, const uint8_t *eth_dst, uint16_t op,
		       const uint8_t *sha, uint32_t spa, const uint8_t *tha, uint32_t tpa);
/* IPv4 packet bytes: 20-byte header + l4, valid checksum. Returns length. */
uint16_t build_ipv4(uint8_t *buf, uint32_t src, uint32_t dst, uint8_t proto,
		    const void *l4, uint16_t l4len);
/* UDP datagram with a valid checksum (or 0 if !cksum). Returns length. */
uint16_t build_udp(uint8_t *buf, uint32_t src, uint32_t dst, uint16_t sport,
		   uint16_t dport, const void *payload, uint16_t plen, bool cksum);
/* ICMP echo (type 8 or 0) with a valid checksum. Returns length. */
uint16_t build_icmp_echo(uint8_t *buf, uint8_t type, uint16_t id, uint16_t seq,
			 const void *payload, uint16_t plen);
/* A whole Ethernet+IPv4 frame from peer to us. */
struct mst_pkt *mk_ip_frame(struct net_fix *f, uint32_t src, uint32_t dst, uint8_t proto,
			    const void *l4, uint16_t l4len);

/* mst_pkt_append() that fails the test instead of returning NULL. */
uint8_t *must_append(struct mst_pkt *p, uint16_t n);

/* Parsing what the stack sent. */
uint16_t rd16(const uint8_t *p); /* big-endian load */
uint32_t rd32n(const uint8_t *p); /* network-order address */
void wr16(uint8_t *p, uint16_t v);
/* Fix the IPv4 header checksum of the frame in p after a test edit. */
void fix_ip_cksum(struct mst_pkt *p);
/* Checksums of a transmitted frame (Ethernet + IPv4 + L4) are valid. */
void assert_ip_frame_ok(const struct mst_pkt *p, uint32_t src, uint32_t dst, uint8_t proto);
bool l4_cksum_ok(const uint8_t *iph);

#endif /* MST_TEST_NET_HELPER_H */
