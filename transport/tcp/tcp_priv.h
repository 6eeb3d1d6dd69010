/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * TCP internals: the control block, the stack, wire format and the
 * functions the tcp_*.c files share. Do not use outside transport/tcp.
 *
 *   tcp.c        stack, connection table, socket-shaped API
 *   tcp_in.c     tcp_input(): segment arrival, RFC 9293 §3.10.7
 *   tcp_out.c    tcp_output(), segment building, RST/ACK/SYN-ACK
 *   tcp_sack.c   receiver out-of-order ranges, sender SACK scoreboard
 *   tcp_timer.c  RTO, persist, delayed ACK, keepalive, TIME_WAIT
 *   tcp_services.c  echo / discard / chargen
 */
#ifndef MST_TCP_PRIV_H
#define MST_TCP_PRIV_H

#include <stdbool.h>
#include <stdint.h>

#include "transport/tcp/tcp.h"
#include "transport/tcp/tcp_cc.h"
#include "transport/tcp/tcp_fifo.h"
#include "transport/tcp/tcp_isn.h"
#include "transport/tcp/tcp_opts.h"
#include "transport/tcp/tcp_seq.h"
#include "transport/tcp/tcp_timer_wheel.h"

#define TCP_HLEN 20
#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_PSH 0x08
#define TCP_ACK 0x10
#define TCP_URG 0x20

struct tcp_hdr {
	uint16_t sport, dport;
	uint32_t seq, ack;
	uint8_t doff_rsvd; /* data offset in the high nibble */
	uint8_t flags;
	uint16_t win;
	uint16_t cksum;
	uint16_t urp;
} __attribute__((packed));
_Static_assert(sizeof(struct tcp_hdr) == TCP_HLEN, "TCP header is 20 bytes");

#define TCP_OOO_MAX 8        /* receiver: out-of-order ranges kept */
#define TCP_SCORE_MAX 8      /* sender: SACKed ranges kept */
#define TCP_DUPTHRESH 3
#define TCP_REORDER_MAX 64  /* largest DupThresh D-SACKs may set */
#define TCP_QUICKACKS 16     /* ACK every segment at start */
#define TCP_BUF_MIN 4096     /* smallest SO_RCVBUF / SO_SNDBUF */
#define TCP_EPH_TABLE 1024   /* RFC 6056 Algorithm 4 table (power of 2) */

/* Timer kinds (tw_timer.kind). */
enum { TCP_T_RTX, TCP_T_DELACK, TCP_T_KEEP };

/* Connection flags. */
#define TCPF_SACK 0x0001        /* both sides agreed on SACK */
#define TCPF_TS 0x0002          /* both sides agreed on timestamps */
#define TCPF_WS 0x0004          /* both sides agreed on window scaling */
#define TCPF_NODELAY 0x0008
#define TCPF_KEEPALIVE 0x0010
#define TCPF_APP_CLOSED 0x0020  /* the app released its handle */
#define TCPF_SHUT_WR 0x0040     /* app will send no more: FIN after the data */
#define TCPF_SHUT_RD 0x0080
#define TCPF_FIN_SENT 0x0100    /* our FIN has a sequence number (snd_max covers it) */
#define TCPF_FIN_RCVD 0x0200    /* peer's FIN consumed (EOF for the app) */
#define TCPF_RCV_FIN_PENDING 0x0400 /* peer's FIN seen out of order at rcv_fin_seq */
#define TCPF_IN_RECOVERY 0x0800
#define TCPF_ACK_NOW 0x1000     /* send an ACK at the end of this input */
#define TCPF_RTT_TIMING 0x2000  /* rtt_seq is being timed (no timestamps) */
#define TCPF_LINGER0 0x4000
#define TCPF_IN_ACCEPTQ 0x8000
#define TCPF_PASSIVE 0x10000    /* created by a listener */
#define TCPF_PERSIST 0x20000    /* RTX timer is the persist timer */
#define TCPF_HASHED 0x40000
#define TCPF_ACK_QUEUED 0x80000 /* on the stack's ack list (sent at the end of the burst) */

struct tcp_range {
	uint32_t start, end; /* [start, end) */
};

/* A connection's statistics for its flow record (tcp_flow.c). */
struct tcp_flow_stats {
	uint64_t start_ns;             /* control block created */
	uint64_t last_report_ns;       /* last periodic record (0: none yet) */
	uint64_t bytes_sent;           /* data bytes sent, retransmissions too */
	uint64_t segs_out, segs_in;
	uint32_t rto_count, recoveries;
	uint32_t min_rtt_us, last_rtt_us;
	uint32_t max_cwnd;
	uint8_t reason;                /* enum tcp_close_reason set before the end, 0: none */
	bool ended;                    /* the final record went out */
	uint8_t pad[2];
};

/*
 * The control block. Hot fields first (lookup, then input/output).
 * Plain data except the hash/list links, which the upgrade path rebuilds.
 */
struct tcp_cb {
	struct tcp_cb *hnext;          /* connection hash chain */
	uint32_t laddr, raddr;         /* network order */
	uint16_t lport, rport;         /* network order */
	uint8_t state;                 /* enum tcp_state */
	uint8_t dupacks;               /* consecutive duplicate ACKs */
	uint8_t snd_wscale, rcv_wscale;
	uint32_t flags;                /* TCPF_* */

	uint32_t snd_una;              /* oldest unacknowledged */
	uint32_t snd_nxt;              /* next to send */
	uint32_t snd_max;              /* highest sent + 1 */
	uint32_t snd_wnd;              /* peer's window, bytes (scaled) */
	uint32_t snd_wl1, snd_wl2;     /* seq/ack of the last window update */
	uint32_t iss;
	uint32_t max_sndwnd;           /* largest window the peer offered */
	uint32_t rcv_nxt;              /* next expected */
	uint32_t rcv_adv;              /* right edge we advertised */
	uint32_t irs;
	uint32_t rcv_fin_seq;          /* seq of the peer's FIN if seen out of order */
	uint16_t mss;                  /* send MSS (payload per segment) */
	uint16_t adv_mss;              /* MSS we announce */
	uint8_t quickacks;             /* segments left to ACK immediately */
	uint8_t unacked_segs;          /* received segments not yet ACKed */
	uint8_t rtx_shift;             /* RTO back-off exponent */
	uint8_t keep_probes;           /* unanswered keepalive probes */

	uint32_t ts_recent;            /* RFC 7323: latest TSval to echo */
	uint32_t ts_offset;            /* our TSval = ms clock + offset */
	uint64_t ts_recent_ns;         /* when ts_recent was set (24-day PAWS rule) */
	uint32_t srtt_us, rttvar_us, rto_ms;
	uint32_t rtt_seq;              /* Karn timing without timestamps */
	uint64_t rtt_start_ns;
	uint32_t recover;              /* RFC 6582: snd_max at loss detection */
	uint32_t high_rxt;             /* RFC 6675 HighRxt */
	uint8_t n_score, n_ooo;
	uint32_t ooo_last;             /* start of the latest out-of-order segment (first SACK block) */
	uint8_t challenge_tokens;      /* RFC 5961 per-connection budget */
	uint8_t syn_retries;
	uint64_t challenge_refill_ns;
	uint64_t last_rx_ns;           /* keepalive idle */
	struct tcp_range score[TCP_SCORE_MAX]; /* SACKed above snd_una, sorted */
	struct tcp_range ooo[TCP_OOO_MAX];     /* received above rcv_nxt, sorted */

	const struct tcp_cc_ops *cc;
	struct tcp_cc_state ccs;

	struct tw_timer t_rtx;         /* RTO / persist / SYN(-ACK) retransmit */
	struct tw_timer t_delack;
	struct tw_timer t_keep;        /* keepalive, TIME_WAIT, FIN_WAIT_2 */

	struct tcp_fifo rx, tx;
	const struct tcp_fifo_ops *fops; /* where rx/tx memory came from (NULL: heap) */
	void *fcookie;
	uint32_t keepidle_s, keepintvl_s, keepcnt;
	uint32_t rcvbuf, sndbuf;       /* SO_RCVBUF/SO_SNDBUF: bytes of rx/tx usable, 0 = all */
	int err;                       /* pending error for the app (positive errno) */

	/* app side */
	tcp_event_fn ev_fn;
	void *ev_ctx;
	void *user;
	uint32_t events_pending;       /* not yet delivered (batched per input) */
	struct tcp_cb *dnext;          /* stack's list of connections with events */
	struct tcp_cb *anext;          /* stack's list of connections owing an ACK */
	struct tcp_cb *listener;       /* passive: the listener that made us */
	struct tcp_cb *aq_next;        /* listener accept queue link */
	struct tcp_cb *tw_next, *tw_prev; /* stack's TIME_WAIT list, oldest first */
	uint64_t bytes_acked, bytes_received;
	uint32_t retransmits;

	/* Proportional Rate Reduction (RFC 6937), used in SACK recovery only.
	 * Not exported for a live upgrade: an imported connection in recovery
	 * starts the proportion again at its next ACK (recover_fs 0). */
	uint32_t prr_delivered;        /* bytes the peer got since recovery began */
	uint32_t prr_out;              /* bytes we sent since recovery began */
	uint32_t recover_fs;           /* flight when recovery began */
	uint8_t reordering;            /* DupThresh in segments raised by D-SACKs, 0 = 3
					* (not exported either: back to 3 after an upgrade) */
	struct tcp_flow_stats fl;      /* flow record (tcp_flow.c); exported as TCP_FLOW */
};

struct tcp_listener_ext {
	uint16_t backlog;
	uint16_t syn_queue;            /* connections in SYN_RECEIVED */
	uint16_t accept_len;
	struct tcp_cb *aq_head, *aq_tail;
};

/* A built-in service instance (tcp_services.c). */
struct tcp_svc {
	struct tcp_stack *ts;
	int kind;
};

struct tcp_stack {
	struct net_stack *ns;
	struct mst_stats *st;
	struct tcp_conf conf;
	const struct tcp_cc_ops *cc_default;
	struct tcp_secret secret;
	uint64_t now_ns;
	uint64_t start_ns;
	struct tw_wheel *wheel;
	struct tcp_cb **hash;          /* connection table */
	uint32_t hash_mask;
	uint32_t hash_seed;
	struct tcp_cb *pool;           /* max_conns control blocks */
	struct tcp_cb *free_list;      /* via hnext: blocks given back (any order),
					* then pool[hwm..max) in pool order */
	uint32_t hwm;                  /* blocks [hwm, max) were never used */
	uint32_t n_conns;
	struct tcp_cb *listeners[64];  /* few listeners: linear scan */
	struct tcp_listener_ext lext[64];
	unsigned n_listeners;
	uint32_t eph_table[TCP_EPH_TABLE]; /* RFC 6056 Alg. 4 per-destination-hash counters */
	uint32_t services;
	struct tcp_svc svc[3];         /* echo, discard, chargen */
	tcp_event_fn default_fn;
	void *default_ctx;
	struct tcp_cb *dirty;          /* connections with events to deliver (via dnext) */
	bool flushing;                 /* tcp_flush_events() is running */
	struct tcp_cb *ack_list;       /* ACKs owed, sent by tcp_flush_acks() */
	struct tcp_cb *tw_head, *tw_tail; /* TIME_WAIT connections, oldest first */
	bool (*port_ok)(void *ctx, uint32_t raddr, uint16_t rport, uint16_t lport);
	void *port_ok_ctx;             /* ephemeral port filter (engine steering) */
	struct tcp_import *imp;        /* live upgrade: import in progress (tcp_state.c) */
	tcp_flow_fn flow_fn;           /* flow records (tcp_flow.c), NULL: off */
	void *flow_ctx;
	uint32_t flow_cursor;          /* tcp_flow_scan(): next pool index */
};

/* tcp.c */
struct tcp_cb *tcp_lookup(struct tcp_stack *ts, uint32_t laddr, uint16_t lport, uint32_t raddr,
			  uint16_t rport);
struct tcp_cb *tcp_listener_find(struct tcp_stack *ts, uint16_t lport);
struct tcp_listener_ext *tcp_lext(struct tcp_stack *ts, struct tcp_cb *l);
struct tcp_cb *tcp_cb_new(struct tcp_stack *ts, uint32_t laddr, uint16_t lport, uint32_t raddr,
			  uint16_t rport, uint32_t rxbuf, uint32_t txbuf,
			  const struct tcp_fifo_ops *fops);
void tcp_set_state(struct tcp_stack *ts, struct tcp_cb *c, enum tcp_state st);
/* TIME_WAIT carries no data: once the app has closed and read everything,
 * give the socket buffers back (a busy server would otherwise hold
 * 2 MSL worth of them). No-op otherwise. */
void tcp_release_fifos(struct tcp_cb *c);
/* The stack's TIME_WAIT list (a full pool recycles its oldest entry). */
void tcp_tw_link(struct tcp_stack *ts, struct tcp_cb *c);
/* The protocol is done with c: error to the app, timers off, unhash;
 * freed now if the app already closed it, else when it does. */
void tcp_drop(struct tcp_stack *ts, struct tcp_cb *c, int err);
void tcp_event(struct tcp_stack *ts, struct tcp_cb *c, uint32_t ev);
void tcp_flush_events(struct tcp_stack *ts);
void tcp_accept_enqueue(struct tcp_stack *ts, struct tcp_cb *c);
void tcp_init_cc(struct tcp_stack *ts, struct tcp_cb *c);
/* Put c in the connection hash (the importer: c has its 4-tuple). */
void tcp_hash_insert(struct tcp_stack *ts, struct tcp_cb *c);
uint32_t tcp_ts_now(const struct tcp_stack *ts, const struct tcp_cb *c);
uint8_t tcp_pick_wscale(uint32_t bufsize);
/* A passive connection takes its listener's SO_RCVBUF/SO_SNDBUF. */
void tcp_inherit_bufs(struct tcp_cb *c, const struct tcp_cb *l);
/* Room in the RX FIFO within SO_RCVBUF / in the TX FIFO within SO_SNDBUF. */
static inline uint32_t tcp_rx_room(const struct tcp_cb *c)
{
	uint32_t used = fifo_used(&c->rx);

	if (!c->rcvbuf || c->rcvbuf >= c->rx.size)
		return c->rx.size - used;
	return used >= c->rcvbuf ? 0 : c->rcvbuf - used;
}

static inline uint32_t tcp_tx_room(const struct tcp_cb *c)
{
	uint32_t used = fifo_used(&c->tx);

	if (!c->sndbuf || c->sndbuf >= c->tx.size)
		return c->tx.size - used;
	return used >= c->sndbuf ? 0 : c->sndbuf - used;
}

/* tcp_out.c */
int tcp_output(struct tcp_stack *ts, struct tcp_cb *c);
void tcp_send_ack(struct tcp_stack *ts, struct tcp_cb *c);
void tcp_send_syn(struct tcp_stack *ts, struct tcp_cb *c);      /* SYN or SYN-ACK by state */
void tcp_send_probe(struct tcp_stack *ts, struct tcp_cb *c);    /* seq snd_una-1, no data */
int tcp_retransmit(struct tcp_stack *ts, struct tcp_cb *c, uint32_t seq, uint32_t max_len);
void tcp_send_reset(struct tcp_stack *ts, struct tcp_cb *c);
/* <SEQ=SEG.ACK><CTL=RST> for an unacceptable ACK on connection c (with
 * c's timestamp option when negotiated). */
void tcp_send_reset_seq(struct tcp_stack *ts, struct tcp_cb *c, uint32_t seg_ack);
/* RST in reply to a segment with no connection (RFC 9293 §3.10.7.1). */
void tcp_reply_reset(struct tcp_stack *ts, uint32_t laddr, uint16_t lport, uint32_t raddr,
		     uint16_t rport, uint32_t seg_seq, uint32_t seg_ack, uint8_t seg_flags,
		     uint32_t seg_len);
/* Stateless SYN-ACK carrying a cookie ISN. */
void tcp_send_cookie_synack(struct tcp_stack *ts, uint32_t laddr, uint16_t lport,
			    uint32_t raddr, uint16_t rport, uint32_t isn, uint32_t peer_isn,
			    const struct tcp_opts *peer, uint16_t adv_mss, uint8_t rcv_wscale,
			    uint32_t rcv_wnd);
uint32_t tcp_rcv_window(const struct tcp_cb *c);

/* tcp_timer.c */
void tcp_timer_fire(struct tw_timer *t, void *ctx);
void tcp_arm_rtx(struct tcp_stack *ts, struct tcp_cb *c);
void tcp_arm_persist(struct tcp_stack *ts, struct tcp_cb *c);
void tcp_arm_keepalive(struct tcp_stack *ts, struct tcp_cb *c);
void tcp_enter_timewait(struct tcp_stack *ts, struct tcp_cb *c);
void tcp_rtt_sample(struct tcp_stack *ts, struct tcp_cb *c, uint32_t rtt_us);
void tcp_delack_schedule(struct tcp_stack *ts, struct tcp_cb *c);

/* tcp_services.c */
/* The built-in services' event callback (ctx: &ts->svc[kind]). */
void tcp_svc_event(void *ctx, struct tcp_cb *c, uint32_t ev);
/* Import: the services' instances without their listeners (which the
 * state brings). */
void tcp_services_restore(struct tcp_stack *ts, uint32_t services);

/* tcp_state.c */
/* Drop an unfinished import's bookkeeping (tcp_destroy). */
void tcp_import_free(struct tcp_stack *ts);

/* tcp_flow.c */
/* c ends now: the final flow record with reason r unless an earlier one
 * was set or it already went out. Cheap when flow records are off. */
void tcp_flow_end_slow(struct tcp_stack *ts, struct tcp_cb *c, enum tcp_close_reason r);
static inline void tcp_flow_end(struct tcp_stack *ts, struct tcp_cb *c, enum tcp_close_reason r)
{
	if (ts->flow_fn)
		tcp_flow_end_slow(ts, c, r);
}
/* tcp_drop(err): the reason err means in c's state, unless one was set. */
void tcp_flow_drop_slow(struct tcp_stack *ts, struct tcp_cb *c, int err);
static inline void tcp_flow_dropped(struct tcp_stack *ts, struct tcp_cb *c, int err)
{
	if (ts->flow_fn)
		tcp_flow_drop_slow(ts, c, err);
}
struct mst_state_writer;
/* TCP_FLOW after c's TCP_CB, only while flow records are on. */
void tcp_flow_export(const struct tcp_stack *ts, struct mst_state_writer *w, const struct tcp_cb *c);
int tcp_flow_import(struct tcp_cb *c, const void *payload, uint32_t len);

/* tcp_sack.c */
/* Record [start,end) received out of order; false when ranges are full. */
bool tcp_ooo_add(struct tcp_cb *c, uint32_t start, uint32_t end);
/* After rcv_nxt advanced: bytes now contiguous beyond rcv_nxt (and drop them). */
uint32_t tcp_ooo_take(struct tcp_cb *c);
/* SACK blocks to send (most recent first per RFC 2018: the block holding
 * `recent` first). */
unsigned tcp_sack_blocks(const struct tcp_cb *c, uint32_t recent, struct tcp_sack_block *out,
			 unsigned max);
void tcp_score_update(struct tcp_cb *c, const struct tcp_sack_block *b, unsigned n);
void tcp_score_ack(struct tcp_cb *c);   /* drop what snd_una covers */
uint32_t tcp_score_sacked(const struct tcp_cb *c);
uint32_t tcp_score_high(const struct tcp_cb *c); /* highest SACKed end, or snd_una */
/* RFC 6675 pipe estimate (bytes in flight). */
uint32_t tcp_pipe(const struct tcp_cb *c);
/* RFC 2883 §4: the first block reports a duplicate (below the cumulative
 * ACK, or inside the second block). */
bool tcp_sack_is_dsack(const struct tcp_sack_block *b, unsigned n, uint32_t ack);
/* DupThresh for c: TCP_DUPTHRESH, or more after spurious retransmissions. */
static inline unsigned tcp_dupthresh(const struct tcp_cb *c)
{
	return c->reordering > TCP_DUPTHRESH ? c->reordering : TCP_DUPTHRESH;
}
/* RFC 6675 IsLost() for the hole before score[i] (i == n_score: none):
 * DupThresh SACKed ranges or more than (DupThresh-1)*MSS SACKed above it. */
bool tcp_score_hole_lost(const struct tcp_cb *c, unsigned i);
/* RFC 6675 NextSeg: rule 1 (lost == true: a lost hole) or rule 3 (lost ==
 * false: any hole below the highest SACK) at/after `from`. */
bool tcp_score_next_seg(const struct tcp_cb *c, uint32_t from, bool lost, uint32_t *start,
			uint32_t *end);

/* tcp_info.c: Linux's struct tcp_info for c (at most len bytes); bytes written. */
size_t tcp_linux_info(const struct tcp_cb *c, uint64_t now_ns, void *buf, size_t len);

/* A block left the free list: the never-used suffix starts after it. */
static inline void tcp_pool_taken(struct tcp_stack *ts, const struct tcp_cb *c)
{
	uint32_t i = (uint32_t)(c - ts->pool);

	if (i >= ts->hwm)
		ts->hwm = i + 1;
}

static inline uint32_t tcp_flight(const struct tcp_cb *c)
{
	return c->snd_max - c->snd_una;
}

static inline uint64_t tcp_ms(uint64_t ns)
{
	return ns / 1000000u;
}

#endif /* MST_TCP_PRIV_H */
