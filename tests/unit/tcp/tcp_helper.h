/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Segment-level helpers for the TCP tests that drive the stack through the
 * in-process harness (<mustang/sim.h>), in the spirit of lwIP's
 * test/unit/tcp/tcp_helper.h: the test plays the peer, builds every IPv4+TCP
 * segment it sends (any flags, seq, ack, window, options, payload; correct
 * or deliberately broken checksums) and parses every segment the stack sends.
 *
 * Must be included after <cmocka.h> (the expect helpers assert).
 */
#ifndef MST_TEST_TCP_HELPER_H
#define MST_TEST_TCP_HELPER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mustang/sim.h>

#define TH_FIN 0x01
#define TH_SYN 0x02
#define TH_RST 0x04
#define TH_PSH 0x08
#define TH_ACK 0x10
#define TH_URG 0x20

#define TH_MS(x) ((uint64_t)(x) * 1000000ull)
#define TH_US(x) ((uint64_t)(x) * 1000ull)

#define TH_STACK_IP "10.0.0.1"
#define TH_PEER_IP "10.0.0.2"
#define TH_PEER_PORT 40000

/* Options for a segment we send. -1 = absent for mss/ws. */
struct th_opts {
	int mss;
	int ws;
	bool sack_perm;
	bool ts;
	uint32_t tsval, tsecr;
	int nsack;
	uint32_t sack[4][2];
	/* raw: used verbatim instead of the fields above (padded with EOL to 4). */
	const uint8_t *raw;
	size_t raw_len;
};
#define TH_OPTS_NONE ((struct th_opts){ .mss = -1, .ws = -1 })

/* A segment we send. */
struct th_tx {
	uint32_t src, dst;      /* 0 = peer ip / stack ip */
	uint16_t sport, dport;
	uint32_t seq, ack;
	uint8_t flags;
	uint16_t win;
	struct th_opts opts;
	const void *data;
	size_t len;
	bool bad_tcp_cksum;     /* flip the TCP checksum */
	int doff;               /* 0 = computed; else the 4-bit data offset written as is */
	size_t truncate;        /* if non-zero: cut the IP packet to this many TCP bytes */
};

/* A segment the stack sent. */
struct th_seg {
	uint32_t src, dst;
	uint16_t sport, dport;
	uint32_t seq, ack;
	uint8_t flags;
	uint16_t win;
	uint8_t doff;
	bool cksum_ok;
	bool has_mss, has_ws, sack_perm, has_ts;
	uint16_t mss;
	uint8_t ws;
	uint32_t tsval, tsecr;
	int nsack;
	uint32_t sack[4][2];
	size_t len;
	uint8_t payload[10000];
};

/* The peer's view of one connection. */
struct th_conn {
	struct mst_sim *sim;
	int fd;                 /* the stack's socket for it */
	int lfd;                /* listener (passive open), -1 otherwise */
	uint16_t port;          /* stack's port */
	uint16_t pport;         /* peer's port */
	uint32_t peer_iss, stack_iss;
	uint32_t snd_nxt;       /* next seq the peer sends */
	uint32_t rcv_nxt;       /* next seq the peer expects from the stack */
	uint16_t win;           /* window the peer advertises (raw field) */
	bool ts, sack;
	int peer_ws;            /* shift the peer announced, -1 none */
	uint32_t tsval;         /* peer's clock */
	uint32_t ts_recent;     /* last TSval from the stack */
};

/* conf with the test addresses; tweak, then th_sim_create(). */
void th_conf(struct mst_sim_conf *conf);
struct mst_sim *th_sim_create(const struct mst_sim_conf *conf);
struct mst_sim *th_sim_default(void);
uint32_t th_ip(const char *dotted);

/* Build an IPv4 packet; returns its length. */
size_t th_build(uint8_t *buf, size_t cap, const struct th_tx *t);
/* Build and feed it to the stack. */
void th_input(struct mst_sim *sim, const struct th_tx *t);
/* Next TCP segment the stack sent: true and *s filled, false if none. */
bool th_output(struct mst_sim *sim, struct th_seg *s);
/* Parse one IPv4 packet; false if not TCP. */
bool th_parse(const uint8_t *pkt, size_t len, struct th_seg *s);
/* Assert a segment is there with exactly these flags. */
void th_expect(struct mst_sim *sim, uint8_t flags, struct th_seg *s);
/* Assert the stack sent nothing (TCP). */
void th_expect_none(struct mst_sim *sim);
/* Drain and count TCP segments. */
int th_drain(struct mst_sim *sim);
const char *th_flags_str(uint8_t f);

/* Connection-relative sending: seq = snd_nxt, ack = rcv_nxt, win, TS if
 * negotiated; advances snd_nxt by len (+1 for SYN/FIN). */
void th_send(struct th_conn *c, uint8_t flags, const void *data, size_t len);
/* Same with explicit seq and ack (snd_nxt untouched). */
void th_send_at(struct th_conn *c, uint8_t flags, uint32_t seq, uint32_t ack, const void *data,
		size_t len);
/* Fill a th_tx for this connection (addresses, ports, seq/ack/win, TS). */
void th_tx_init(struct th_conn *c, struct th_tx *t, uint8_t flags);
/* Expect a segment of this connection; tracks ts_recent. Does not move rcv_nxt. */
void th_cexpect(struct th_conn *c, uint8_t flags, struct th_seg *s);
/* Expect a pure ACK acknowledging `ack`. */
void th_expect_ack(struct th_conn *c, uint32_t ack);
/* Expect data at rcv_nxt with this payload; advances rcv_nxt. */
void th_expect_data(struct th_conn *c, const void *data, size_t len);

/* Passive open: listen on port (backlog 16), SYN with syn_opts from peer_iss,
 * checks the SYN-ACK, sends the ACK, accepts. Returns the SYN-ACK via *synack. */
void th_passive_open(struct th_conn *c, struct mst_sim *sim, uint16_t port, uint32_t peer_iss,
		     const struct th_opts *syn_opts, struct th_seg *synack);
/* Active open: connect to the peer, check the SYN, answer a SYN-ACK with
 * synack_opts from peer_iss; the stack's ACK is consumed. */
void th_active_open(struct th_conn *c, struct mst_sim *sim, uint16_t pport, uint32_t peer_iss,
		    const struct th_opts *synack_opts, struct th_seg *syn);
/* Usual SYN options: MSS 1460, SACK-perm, TS, WS 7. */
struct th_opts th_syn_opts(void);

int64_t th_ctr(struct mst_sim *sim, const char *name);
int th_state(struct mst_sim *sim, int fd);
const char *th_state_name(struct mst_sim *sim, int fd);
/* Read everything readable into buf; returns bytes (or the negative error if first). */
ssize_t th_recv_all(struct mst_sim *sim, int fd, void *buf, size_t cap);

enum { TH_CLOSED, TH_LISTEN, TH_SYN_SENT, TH_SYN_RECEIVED, TH_ESTABLISHED, TH_FIN_WAIT_1,
       TH_FIN_WAIT_2, TH_CLOSE_WAIT, TH_CLOSING, TH_LAST_ACK, TH_TIME_WAIT };

/* Move every frame between two stacks until both are quiet. */
void th_pump(struct mst_sim *a, struct mst_sim *b);

#endif
