/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A bare net_stack + tcp_stack pair for the live-upgrade tests (the sim
 * hides its stack): deterministic secret, virtual clock, the peer's MAC
 * known, frames the stack sends kept in a queue. The test plays the peer
 * with the segment builder/parser of tcp_helper.c, and owns its
 * connections through slots, exported as owner kind EXT (app 1, socket =
 * slot) by sn_hooks: the path an app's connections take.
 *
 *   sn_create() -> tcp_* calls, sn_input()/sn_advance(), sn_output()
 *   -> sn_export() -> sn_import() into a fresh node -> sn_destroy()
 *
 * Must be included after <cmocka.h>.
 */
#ifndef MST_TEST_STATE_NODE_H
#define MST_TEST_STATE_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "transport/tcp/tcp_priv.h"
#include "tcp_helper.h"

#define SN_SLOTS 64
#define SN_OUTQ 512
#define SN_MAX_CONNS 64
#define SN_START_NS TH_MS(5000)

struct sn_frame {
	uint16_t len;
	uint8_t data[2048];
};

struct sn_node {
	struct net_stack *ns;
	struct tcp_stack *ts;
	struct mst_stats st;
	uint64_t now;
	struct sn_frame *outq;          /* SN_OUTQ frames, oldest at out_head */
	unsigned out_head, out_n;
	struct tcp_cb *slot[SN_SLOTS];  /* the test's handles; user = &slot[k] */
	uint32_t ev_log[256];           /* slot << 8 | events, in delivery order */
	unsigned n_ev;
	struct tcp_state_hooks hooks;   /* owner/adopt for this node */
};

/* A node at `now` with a fixed secret (ISNs, timestamps reproducible). */
struct sn_node *sn_create(uint64_t now);
void sn_destroy(struct sn_node *n);
/* Feed an IPv4 packet built from t, then flush ACKs (as a poll does). */
void sn_input(struct sn_node *n, const struct th_tx *t);
void sn_advance(struct sn_node *n, uint64_t ns);
/* Next TCP segment sent: true, *s parsed, tcp[0..*tcp_len) its raw bytes. */
bool sn_output(struct sn_node *n, struct th_seg *s, uint8_t *tcp, size_t *tcp_len);
int sn_drain(struct sn_node *n);
/* Give c to slot k (events to the node's log). */
void sn_own(struct sn_node *n, int k, struct tcp_cb *c);

/* State of the whole node: bytes written (buffer from malloc), or fails the test. */
size_t sn_export(struct sn_node *n, uint8_t **out);
/* Import into a fresh node at `now`: 0 and *out, or -errno (node freed). */
int sn_import(const void *buf, size_t len, uint64_t now, struct sn_node **out);

/* The peer's side of one connection. */
struct sn_peer {
	uint16_t sport;                 /* stack's port (host order) */
	uint16_t pport;                 /* peer's port */
	uint32_t seq;                   /* next seq the peer sends */
	uint32_t ack;                   /* next seq the peer expects */
	uint32_t tsval, ts_recent;
	uint16_t win;                   /* raw window field */
};

void sn_send(struct sn_node *n, struct sn_peer *p, uint8_t flags, const void *d, size_t len);
void sn_send_at(struct sn_node *n, struct sn_peer *p, uint8_t flags, uint32_t seq, const void *d,
		size_t len);
void sn_send_sack(struct sn_node *n, struct sn_peer *p, uint32_t ack, int nsack,
		  const uint32_t (*blocks)[2]);
/* Passive open on a listener at port: SYN (+ ACK unless syn_only); the
 * SYN-ACK is checked. */
void sn_passive(struct sn_node *n, struct sn_peer *p, uint16_t port, uint16_t pport,
		uint32_t iss, bool syn_only);
/* Same, the peer announcing window scale ws. */
void sn_passive_ws(struct sn_node *n, struct sn_peer *p, uint16_t port, uint16_t pport,
		   uint32_t iss, bool syn_only, int ws);
/* Expect a segment to p with these flags; tracks ts_recent; data/FIN move p->ack. */
void sn_expect(struct sn_node *n, struct sn_peer *p, uint8_t flags, struct th_seg *s);

#endif
