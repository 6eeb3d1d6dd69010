/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * TCP record payloads of the engine state (live upgrade, DESIGN §5;
 * framing in common/state.h). These layouts ARE format version 1 of the
 * TCP records: change one and MST_STATE_VERSION must be bumped, with a
 * migration step for the old layout. Explicit-width fields, host order
 * (addresses and ports stay in network order, as in the control block),
 * references are pool indices (TCP_STATE_NONE: none), times absolute ns
 * (0: timer not armed). Internal to transport/tcp (tcp_state.c, tests).
 *
 * Record order written by tcp_export() and required by the importer:
 *   TCP_STACK                              once, first
 *   TCP_CB [TCP_FIFO_DATA]                 per control block, pool order;
 *                                          FIFO_DATA iff the FIFOs are on the
 *                                          heap (TCP_CBS_HEAP_FIFOS)
 *   TCP_LISTENER                           per listener, listeners[] order
 *   TCP_TW_ORDER                           once, last
 */
#ifndef MST_TCP_STATE_H
#define MST_TCP_STATE_H

#include <stdint.h>

#include "transport/tcp/tcp.h"
#include "transport/tcp/tcp_cc.h"

#define TCP_STATE_NONE UINT32_MAX
#define TCP_STATE_CC_NAME 16          /* NUL-padded registry name */
#define TCP_STATE_RANGES 8            /* = TCP_OOO_MAX = TCP_SCORE_MAX */

/* TCP_STACK */
struct tcp_state_stack {
	uint64_t secret_k0, secret_k1;  /* ISN / SYN-cookie / hash key */
	uint64_t start_ns;              /* the stack's clock base */
	uint32_t max_conns;             /* of the exporting stack (information) */
	uint32_t n_cbs;                 /* TCP_CB records that follow */
	uint32_t n_listeners;           /* TCP_LISTENER records that follow */
	uint32_t services;              /* TCP_SVC_* started */
	uint16_t eph_unused;            /* 0 (was a port cursor; RFC 6056 table: TCP_EPH) */
	uint16_t pad0;
	uint32_t pad1;
};
_Static_assert(sizeof(struct tcp_state_stack) == 48, "TCP_STACK v1 layout");

/* tcp_state_cb.svc: built-in service owning a TCP_OWNER_STACK block */
enum { TCP_STATE_SVC_NONE = 0, TCP_STATE_SVC_ECHO, TCP_STATE_SVC_DISCARD,
       TCP_STATE_SVC_CHARGEN };

/* tcp_state_cb.cbs */
#define TCP_CBS_HEAP_FIFOS 0x01       /* FIFOs on the heap: TCP_FIFO_DATA follows */

struct tcp_state_range {
	uint32_t start, end;
};

/* TCP_CB: one control block in any state. */
struct tcp_state_cb {
	uint32_t index;                 /* pool index: the block's identity */
	uint32_t listener;              /* passive, not accepted: its listener */
	uint32_t laddr, raddr;          /* network order */
	uint16_t lport, rport;          /* network order */
	uint8_t state;                  /* enum tcp_state */
	uint8_t dupacks;
	uint8_t snd_wscale, rcv_wscale;
	uint32_t flags;                 /* TCPF_* (no transient bit) */

	uint32_t snd_una, snd_nxt, snd_max, snd_wnd;
	uint32_t snd_wl1, snd_wl2, iss, max_sndwnd;
	uint32_t rcv_nxt, rcv_adv, irs, rcv_fin_seq;
	uint16_t mss, adv_mss;
	uint8_t quickacks, unacked_segs, rtx_shift, keep_probes;
	uint32_t pad1;

	uint32_t ts_recent, ts_offset;
	uint64_t ts_recent_ns;
	uint32_t srtt_us, rttvar_us, rto_ms, rtt_seq;
	uint64_t rtt_start_ns;
	uint32_t recover, high_rxt;
	uint8_t n_score, n_ooo, challenge_tokens, syn_retries;
	uint32_t ooo_last;
	uint64_t challenge_refill_ns;
	uint64_t last_rx_ns;
	struct tcp_state_range score[TCP_STATE_RANGES];
	struct tcp_state_range ooo[TCP_STATE_RANGES];

	char cc_name[TCP_STATE_CC_NAME]; /* "" only for a listener */
	uint32_t cc_cwnd, cc_ssthresh, cc_mss, cc_flight, cc_srtt_us, cc_min_rtt_us;
	uint64_t cc_now_ns;
	uint64_t cc_priv[TCP_CC_PRIV_SIZE / 8];

	uint64_t rtx_deadline_ns;       /* RTO / persist / SYN retransmit */
	uint64_t delack_deadline_ns;
	uint64_t keep_deadline_ns;      /* keepalive, TIME_WAIT, FIN_WAIT_2 */

	uint32_t rx_size, rx_head, rx_tail;
	uint32_t tx_size, tx_head, tx_tail;
	uint32_t keepidle_s, keepintvl_s, keepcnt;
	int32_t err;                    /* pending error, positive errno */

	uint64_t bytes_acked, bytes_received;
	uint32_t retransmits;
	uint8_t svc;                    /* TCP_STATE_SVC_* (owner kind STACK) */
	uint8_t cbs;                    /* TCP_CBS_* */
	uint16_t pad0;
	uint64_t user;                  /* built-in service's user value (chargen position) */
	uint32_t rcvbuf, sndbuf;        /* SO_RCVBUF / SO_SNDBUF in effect, 0 = the FIFO */
	struct tcp_owner owner;         /* kind EXT: what the owner's hook said */
};
_Static_assert(sizeof(struct tcp_owner) == 24, "struct tcp_owner is part of TCP_CB v1");
_Static_assert(sizeof(struct tcp_state_cb) == 528, "TCP_CB v1 layout");

/* TCP_FIFO_DATA: the heap FIFOs' used bytes of the TCP_CB just before.
 * rx: from rx_head, the in-order bytes and the out-of-order ones ahead of
 * the tail up to the highest ooo end; tx: from tx_head to tx_tail. */
struct tcp_state_fifo {
	uint32_t rx_len, tx_len;
	/* uint8_t rx[rx_len], tx[tx_len] */
};
_Static_assert(sizeof(struct tcp_state_fifo) == 8, "TCP_FIFO_DATA v1 layout");

/* TCP_LISTENER */
struct tcp_state_listener {
	uint32_t index;                 /* the listener's TCP_CB */
	uint16_t backlog;
	uint16_t syn_queue;             /* children in SYN_RECEIVED */
	uint32_t n_accept;              /* accept queue, oldest first: */
	uint32_t pad;
	/* uint32_t accept[n_accept] (pool indices) */
};
_Static_assert(sizeof(struct tcp_state_listener) == 16, "TCP_LISTENER v1 layout");

/* TCP_TW_ORDER */
struct tcp_state_tw {
	uint32_t n;
	uint32_t pad;
	/* uint32_t index[n], oldest first */
};
_Static_assert(sizeof(struct tcp_state_tw) == 8, "TCP_TW_ORDER v1 layout");

/* TCP_FLOW: the flow-record statistics of the TCP_CB (and TCP_FIFO_DATA)
 * just before; absent when flow records were off (they start at 0). A
 * record of its own so TCP_CB v1 and its fixtures stay as they are. */
struct tcp_state_flow {
	uint64_t start_ns, last_report_ns;
	uint64_t bytes_sent, segs_out, segs_in;
	uint32_t rto_count, recoveries;
	uint32_t min_rtt_us, last_rtt_us;
	uint32_t max_cwnd;
	uint8_t reason;                 /* enum tcp_close_reason */
	uint8_t ended;                  /* 0 / 1 */
	uint16_t pad;
};
_Static_assert(sizeof(struct tcp_state_flow) == 64, "TCP_FLOW v1 layout");

#endif /* MST_TCP_STATE_H */
