/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Pony test harness: two pony instances (A, B) joined by an in-memory link
 * with a virtual clock and configurable loss, burst loss, reordering,
 * duplication, corruption, truncation and delay. Packet buffers are
 * malloc'd; every io callback is recorded so tests can assert on it.
 */
#ifndef PONY_HELPER_H
#define PONY_HELPER_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "transport/pony/pony.h"

#define A_IP 0x0100000au /* 10.0.0.1, network order on little endian */
#define B_IP 0x0200000au /* 10.0.0.2 */
#define US 1000ull
#define MS 1000000ull

struct rx_rec {           /* one rx_begin */
	struct pony_msg_info mi;
	uint8_t *buf;
	uint32_t written;
	int delivered, aborted;
	uint64_t at;          /* virtual time of delivery */
};

struct done_rec { uint16_t svc; uint64_t cookie; int status; uint64_t at; };

struct region { uint16_t svc; uint64_t key; const uint8_t *buf; uint64_t len; int perm_err; };

struct node {
	struct pony *py;
	struct mst_stats st;
	struct pony_conf conf;
	uint32_t ip;
	struct world *w;
	uint32_t bound_lo, bound_hi;  /* services [lo, hi] have an endpoint */
	uint64_t enobufs_until;       /* rx_begin returns -ENOBUFS before this time */
	bool echo;                    /* send every delivered message back, same stream */
	unsigned echo_errs;           /* pony_send failures while echoing */
	unsigned enobufs_calls;
	struct rx_rec *rx;
	unsigned n_rx, cap_rx;
	unsigned *order;              /* rx indices in delivery order */
	unsigned n_order;
	struct done_rec *tx, *rd;     /* tx_done / read_done, in call order */
	unsigned n_tx, n_rd, cap_tx, cap_rd;
	struct region regions[8];
	unsigned n_regions;
};

struct qpkt { struct mst_pkt *p; uint32_t src, dst; uint64_t at; uint64_t n; };

struct world {
	uint64_t now;
	struct node a, b;
	struct qpkt *q;
	unsigned nq, capq;
	uint64_t seqno;
	uint64_t rng;
	/* impairments, per-mille unless noted */
	unsigned loss, dup, reorder, corrupt, truncate;
	unsigned burst_every, burst_len, burst_left; /* drop burst_len packets every burst_every */
	uint64_t delay_ns, reorder_ns;
	uint64_t drop_nth;        /* drop the packet with this number (1 = first sent) */
	uint32_t drop_type_mask;  /* drop packets of these Pony types (1 << type) */
	/* true = drop this packet (after the impairments above say keep) */
	bool (*filter)(struct world *w, const struct mst_pkt *p, uint32_t src, uint32_t dst);
	uint64_t to_others;       /* packets for hosts other than A and B (discarded) */
	uint64_t to_others_bytes; /* ... their Pony bytes */
	uint64_t sent, dropped;
	long bufs_live;
};

uint64_t rnd(struct world *w);
void world_init(struct world *w, const struct pony_conf *conf);
void world_fini(struct world *w);
void node_restart(struct world *w, struct node *n);
/* A fresh instance with n's configuration and io (n->py untouched). */
struct pony *node_create(struct node *n);
struct node *peer_of(struct world *w, struct node *n);
/* Deliver every queued packet due by now, then poll both; false when nothing happened. */
bool world_step(struct world *w);
/* Run until cond(w) or virtual time limit; returns cond's final value. */
bool world_run(struct world *w, uint64_t for_ns, bool (*cond)(struct world *w, void *arg), void *arg);
bool all_tx_done(struct world *w, void *arg); /* arg: unsigned *expected (node a) */
struct mst_pkt *pkt_new(struct world *w, const void *data, uint16_t len);
void fill_pattern(uint8_t *b, size_t n, uint64_t seed);
uint64_t fnv(const void *p, size_t n);
int node_send(struct node *n, uint16_t src, uint16_t dst, uint32_t stream, const void *data,
	      uint32_t len, uint64_t cookie);
const struct done_rec *find_done(const struct done_rec *r, unsigned n, uint64_t cookie);
unsigned total_drops(const struct mst_stats *st);
/* A's flow to B through address validation (one 1-byte message), then
 * every record and counter of both nodes cleared: for tests about the
 * steady state. */
void flow_warm_up(struct world *w);
/* Discard the queued packets for hosts other than A and B now (counted
 * in to_others, to_others_bytes): world_step() is slow with many queued. */
void world_purge_others(struct world *w);
/* The defaults with 16 flows and 512 messages; a heap world with them. */
struct pony_conf conf_small(void);
struct world *mkworld(void);
void rmworld(struct world *w);
/* A Pony header (host order in, network order out) at d; 24 bytes. */
void put_pony_hdr(uint8_t *d, uint8_t type, uint16_t flags, uint32_t src_epoch,
		  uint32_t dst_epoch, uint32_t psn);
/* Fields of a packet's Pony header, host order. */
uint8_t pkt_type(const struct mst_pkt *p);
uint32_t pkt_src_epoch(const struct mst_pkt *p);
uint32_t pkt_dst_epoch(const struct mst_pkt *p);
uint32_t pkt_psn(const struct mst_pkt *p);

#endif
