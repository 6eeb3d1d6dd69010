/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Pony core internals: do not use outside transport/pony/.
 *
 * Files: pony.c (create, pools, flows, timers, poll, cancel, info),
 * pony_out.c (pony_send/pony_read, scheduling, packet and ACK building),
 * pony_in.c (pony_input: parse, epochs, receive window, delivery, ACKs, CC),
 * pony_state.c (live upgrade: export and checked import of all of it).
 *
 * Everything is an index into a pool allocated by pony_create(); PONY_NONE
 * ends lists. Sequence numbers are free-running u32 compared with
 * seq_lt() (serial arithmetic), masked by win_mask to index per-flow arrays.
 */
#ifndef MST_TRANSPORT_PONY_PRIV_H
#define MST_TRANSPORT_PONY_PRIV_H

#include <arpa/inet.h>
#include <endian.h>
#include <string.h>

#include "transport/pony/pony.h"
#include "transport/pony/pony_wire.h"

#define PONY_NONE UINT32_MAX
#define PONY_DUPTHRESH 3u          /* lost when 3 later transmissions are delivered */
#define PONY_SCAN_NS 100000ull     /* timer scan of all flows at most every 100 us */
#define PONY_RTO_FLOOR_DECAY_NS 1000000000ull /* a learned RTO floor halves every second */
#define PONY_MIN_RTT_WIN_NS 10000000000ull /* min_rtt is the smallest sample of the last 10 s */
#define PONY_SMALL_EXTRA 16u       /* one-packet messages may exceed cwnd by this many packets */
#define PONY_ACK_HOLD_NS 50000ull /* a completed message's ACK waits this long for a reliable packet to ride on */
#define PONY_ACK_HOLD_PKTS 8u    /* ... unless this many packets are owed an ACK */
#define PONY_ACK_EVERY 32u       /* packets acknowledged at once; fewer wait for the end of the poll */
#define PONY_CTRL_RING 64u         /* queued NAK / READ_ERR per flow */
#define PONY_READ_STREAM UINT32_MAX /* pseudo stream id of READ traffic */
#define PONY_TOKEN_LIFE_MS 2000u   /* a CHALLENGE's token is good for this long */

/* floor(sqrt(x)), digit by digit */
static inline uint64_t isqrt64(uint64_t x)
{
	uint64_t r = 0;

	for (uint64_t b = 1ull << 62; b; b >>= 2) {
		if (x >= r + b) {
			x -= r + b;
			r = (r >> 1) + b;
		} else {
			r >>= 1;
		}
	}
	return r;
}

static inline bool seq_lt(uint32_t a, uint32_t b) { return (int32_t)(a - b) < 0; }
static inline bool seq_le(uint32_t a, uint32_t b) { return (int32_t)(a - b) <= 0; }

enum slot_state { SLOT_FREE, SLOT_INFLIGHT, SLOT_LOST, SLOT_DONE };

struct pony_slot {      /* one transmitted psn, at slots[psn & win_mask] */
	uint64_t sent_ns;   /* time of the last (re)transmission (its ts_ns) */
	uint32_t msg;       /* message index; NAK/READ_ERR: the peer's id */
	uint32_t off;       /* offset in the message; NAK/READ_ERR: errno */
	uint32_t order;     /* flow's transmission counter at the last (re)send */
	uint16_t len;       /* payload bytes this psn covers */
	uint8_t type;       /* PONY_T_* */
	uint8_t state;      /* enum slot_state */
	uint8_t rexmit;     /* sent more than once: no RTT sample from it (Karn) */
};

enum msg_kind {
	MSG_SEND,           /* our message to the peer */
	MSG_READ,           /* our READ: request out, response in */
	MSG_RESP,           /* a READ we serve for the peer */
	MSG_RX,             /* a message arriving from the peer */
	MSG_FREE = 0xff,    /* in the free list */
};

#define MF_SKIP (1u << 0)     /* tx: abandoned, segments go out without payload */
#define MF_NOTIFIED (1u << 1) /* tx: tx_done/read_done called (or must not be) */
#define MF_RESP_DONE (1u << 2) /* READ: response complete or failed */
#define MF_DROP (1u << 3)     /* rx: refused or aborted, swallow data, deliver nothing */
#define MF_BEGUN (1u << 4)    /* rx: rx_begin succeeded (cookie valid) */
#define MF_COMPLETE (1u << 5) /* rx: every byte in, waiting for its turn */
#define MF_SENT (1u << 6)     /* tx: every packet handed out at least once */

struct pony_msg {
	uint8_t kind;           /* enum msg_kind */
	uint8_t flags;          /* MF_* */
	uint16_t src_svc;       /* sender's service (MSG_RX: the peer's) */
	uint16_t dst_svc;
	uint32_t flow;          /* flow index */
	uint32_t id;            /* SEND/READ: ours; RX: the peer's; RESP: reader's req id */
	uint32_t stream;        /* stream entry index */
	uint32_t stream_id;
	uint32_t seq;           /* message number within its stream */
	uint32_t len;
	uint32_t done;          /* tx: bytes handed out to packets; rx/READ: bytes received */
	uint32_t unacked;       /* tx: packets sent and not yet acknowledged */
	int32_t status;         /* first error, 0 */
	uint32_t next;          /* stream FIFO / rx wait list / free list */
	uint32_t hnext;         /* message hash chain */
	uint32_t fprev, fnext;  /* flow's list of messages */
	uint64_t key;           /* READ/RESP: region key */
	uint64_t roff;          /* READ/RESP: region offset */
	uint64_t cookie;
	const uint8_t *data;    /* SEND: the app's bytes */
	uint8_t *dst;           /* READ: where the response goes */
};

struct pony_stream {
	uint32_t flow;
	uint16_t local_svc, remote_svc;
	uint32_t id;
	uint8_t rx;             /* 1: peer -> us, 0: us -> peer */
	uint8_t in_rr;          /* on the flow's round-robin list */
	uint32_t seq;           /* tx: next seq to assign; rx: next seq to deliver */
	uint32_t head, tail;    /* tx: messages with bytes not yet sent */
	uint32_t wait;          /* rx: complete messages waiting for their turn */
	uint32_t rr_next;       /* round-robin link */
	uint32_t hnext;         /* stream hash chain */
	uint32_t fnext;         /* flow's list of streams */
};

struct pony_ctrl { uint8_t type; uint32_t id, err; };

enum rx_busy {
	RXB_NO,      /* accepting */
	RXB_LOCAL,   /* no room here (app buffers, pool down to the local reserve) */
	RXB_SHARE,   /* the peer holds its whole peer_share */
};

struct pony_flow {
	/* hot: transmit */
	uint32_t snd_una, snd_nxt;  /* oldest unacked psn, next new psn */
	uint32_t inflight;          /* INFLIGHT slots */
	uint32_t lost, lost_cursor; /* LOST slots, lowest psn that may be LOST */
	uint32_t order;             /* transmissions so far (RACK-style loss order) */
	uint32_t peer_cum, peer_credits;
	uint32_t cwnd_milli;
	uint32_t rr_head, rr_tail;  /* streams with bytes to send */
	struct pony_slot *slots;    /* window_pkts, by psn */
	/* hot: receive */
	uint32_t rcv_nxt, rcv_max;  /* all < rcv_nxt in; highest seen + 1 */
	uint64_t *rcv_map;          /* window bits, by psn */
	uint32_t rx_unacked;        /* accepted since our last ACK */
	uint64_t ack_due;           /* a pending ACK goes alone at this time (PONY_ACK_HOLD_NS) */
	uint64_t echo_ts, echo_at;  /* ts_ns of the latest packet, when it came */
	/* identity */
	uint32_t peer;
	uint32_t my_epoch, peer_epoch;
	uint32_t next_msg_id;
	uint8_t peer_busy, ack_pending, on_ready;
	uint8_t rx_busy;            /* enum rx_busy: why we last refused the peer's packet */
	uint8_t lost_cursor_valid;
	/* control queue (NAK, READ_ERR) */
	struct pony_ctrl ctrl[PONY_CTRL_RING];
	uint32_t ctrl_head, ctrl_tail;
	/* RTT, RTO, CC */
	uint32_t srtt_ns, rttvar_ns, min_rtt_ns, last_rtt_ns, rto_ns;
	uint32_t retries;
	uint64_t min_rtt_at;        /* when min_rtt_ns was sampled (windowed minimum) */
	uint64_t rto_at;            /* 0 = not armed */
	uint64_t rto_probe_at;      /* last timeout, until an ACK tells whether it was real; 0 = none */
	uint32_t rto_probe_psn;     /* the psn that timeout retransmitted */
	uint32_t rto_undo_cwnd;     /* cwnd before that timeout */
	uint32_t rto_floor_ns;      /* learned from spurious timeouts, halves every PONY_RTO_FLOOR_DECAY_NS */
	uint64_t rto_floor_at;      /* when rto_floor_ns last changed */
	uint64_t last_decrease;
	/* lifecycle */
	uint64_t last_rx, last_active;
	uint32_t n_tx, n_rx, n_reads; /* live messages by role */
	uint32_t n_peer;            /* messages the peer made us hold (MSG_RX, MSG_RESP): <= peer_share */
	uint32_t n_rx_streams;      /* rx stream entries the peer made us create: <= peer_share */
	uint64_t rx_progress_at;    /* a DATA packet last began or added to a message of the peer */
	uint32_t streams;           /* list of stream entries */
	uint32_t msgs;              /* list of messages */
	uint32_t hnext, lru_prev, lru_next, pos;
	/* stats */
	uint64_t tx_pkts, rx_pkts, tx_bytes, rx_bytes, retransmits, timeouts;
	uint64_t msgs_sent, msgs_delivered;
};

struct pony_ht {            /* chained hash of pool indices */
	uint32_t mask;
	uint32_t *head;
};

struct pony {
	struct pony_conf conf;
	struct pony_io io;
	struct mst_stats *st;
	uint32_t win, win_mask;     /* window_pkts rounded up to a power of 2 */
	uint32_t seg;               /* payload bytes per DATA/RESP packet */
	uint64_t fs_sqrt_max;       /* sqrt(cc_fs_max_cwnd) x 1000, for fs_ns() */
	uint64_t key[2];            /* SipHash key from getrandom(): epochs, tokens */
	uint64_t epoch_ctr;         /* epochs are SipHash(key, counter) */
	uint64_t next_scan;
	/* flows */
	struct pony_flow *flows;
	uint32_t *active;           /* dense list of live flow indices */
	uint32_t n_active, flow_free;
	struct pony_ht flow_ht;
	uint32_t lru_head, lru_tail; /* most / least recently active */
	uint32_t *ready, n_ready;   /* flows to push in pony_poll */
	uint32_t *acks, n_acks;     /* flows owing a delayed ACK */
	/* messages */
	struct pony_msg *msgs;
	uint32_t msg_free, n_msgs;  /* free list; in use (every kind) */
	struct pony_ht msg_ht;
	uint32_t done_head;         /* tx messages to finish once the current packet is handled */
	/* streams: max_msgs pool entries, then 2 per flow (READ requests, READ responses) */
	struct pony_stream *streams;
	uint32_t n_streams, stream_free;
	struct pony_ht stream_ht;
	/* backing memory */
	void *mem;
	struct pony_import *imp;    /* live upgrade: import under way (pony_state.c) */
};

#define PY_COUNT(py, name) MST_COUNT((py)->st, name)
#define PY_DROP(py, name) MST_DROP((py)->st, name)

static inline uint32_t pony_hash32(uint32_t x)
{
	x ^= x >> 16;
	x *= 0x7feb352dU;
	x ^= x >> 15;
	x *= 0x846ca68bU;
	x ^= x >> 16;
	return x;
}

static inline uint32_t flow_idx(const struct pony *py, const struct pony_flow *f)
{
	return (uint32_t)(f - py->flows);
}

static inline struct pony_slot *slot_of(struct pony *py, struct pony_flow *f, uint32_t psn)
{
	return &f->slots[psn & py->win_mask];
}

static inline uint32_t msg_hash(uint32_t flow, uint32_t id, bool rx)
{
	return pony_hash32(flow * 0x9e3779b1u ^ id ^ (rx ? 0x80000000u : 0));
}

static inline uint32_t stream_hash(uint32_t flow, bool rx, uint16_t l, uint16_t r, uint32_t id)
{
	return pony_hash32(flow * 0x9e3779b1u ^ pony_hash32(id) ^ ((uint32_t)l << 16 | r) ^ rx);
}

static inline uint32_t flow_bucket(const struct pony *py, uint32_t peer)
{
	return pony_hash32(peer) & py->flow_ht.mask;
}

/* pony.c */
uint64_t pony_token(const struct pony *py, uint32_t peer, uint32_t epoch, uint64_t now);
bool pony_token_ok(const struct pony *py, uint32_t peer, uint32_t epoch, uint64_t token,
		   uint64_t now);
struct pony_flow *pony_flow_get(struct pony *py, uint32_t peer, uint64_t now, bool create);
void pony_flow_fail(struct pony *py, struct pony_flow *f, int err);
void pony_flow_touch(struct pony *py, struct pony_flow *f, uint64_t now);
struct pony_msg *pony_msg_alloc(struct pony *py, struct pony_flow *f, uint8_t kind, uint32_t id,
				uint16_t src_svc, uint16_t dst_svc, uint32_t len);
void pony_msg_free(struct pony *py, uint32_t mi);
struct pony_msg *pony_msg_find(struct pony *py, uint32_t flow, uint32_t id, bool rx);
struct pony_stream *pony_stream_get(struct pony *py, struct pony_flow *f, bool rx, uint16_t local,
				    uint16_t remote, uint32_t id, bool create);
struct pony_stream *pony_read_stream(struct pony *py, struct pony_flow *f, bool resp);
void pony_mark_ready(struct pony *py, struct pony_flow *f);
void pony_mark_ack(struct pony *py, struct pony_flow *f, uint64_t due);

/* pony_state.c: an unfinished import's bookkeeping (pony_destroy) */
void pony_import_free(struct pony *py);

/* pony_out.c */
int pony_push(struct pony *py, struct pony_flow *f, uint64_t now);
void pony_send_ack(struct pony *py, struct pony_flow *f, uint64_t now);
void pony_send_reset(struct pony *py, uint32_t peer, uint32_t epoch, uint64_t now);
void pony_send_token(struct pony *py, uint8_t type, uint32_t peer, uint32_t src_epoch,
		     uint32_t dst_epoch, uint64_t token, uint64_t ts_echo, uint64_t now);
void pony_stream_enqueue(struct pony *py, struct pony_flow *f, struct pony_stream *s, uint32_t mi);
bool pony_ctrl_queue(struct pony *py, struct pony_flow *f, uint8_t type, uint32_t id, uint32_t err);
void pony_tx_msg_check(struct pony *py, uint32_t mi);
void pony_done_drain(struct pony *py);
void pony_mark_lost(struct pony *py, struct pony_flow *f, uint32_t psn);
void pony_rto_probe(struct pony *py, struct pony_flow *f, uint64_t now);
void pony_cc_decrease(struct pony *py, struct pony_flow *f, uint32_t mdf_milli, uint64_t now);

#endif /* MST_TRANSPORT_PONY_PRIV_H */
