/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Pluggable congestion control: a versioned vtable registered by name
 * (VPP's tcp_cc_algorithm, FreeBSD's cc_algo). The connection owns a small
 * opaque area (TCP_CC_PRIV_SIZE bytes) for the algorithm's state, so that
 * state moves with the control block on live upgrade.
 *
 * Hooks are called by tcp_in.c / tcp_timer.c:
 *   init (connection established)
 *   ack_received (cumulative ACK advanced snd_una by `acked` bytes, not in recovery)
 *   congestion_event (entering fast recovery: 3 dupacks / SACK loss)
 *   recovery_exit (full ACK leaves fast recovery)
 *   rto_timeout (retransmission timeout)
 * All hooks read/modify `struct tcp_cc_state` (cwnd, ssthresh, in bytes).
 */
#ifndef MST_TCP_CC_H
#define MST_TCP_CC_H

#include <stdint.h>

#define TCP_CC_OPS_VERSION 1
#define TCP_CC_PRIV_SIZE 64

struct tcp_cc_state {
	uint32_t cwnd;          /* bytes */
	uint32_t ssthresh;      /* bytes */
	uint32_t mss;           /* sender MSS (payload bytes per segment) */
	uint32_t flight;        /* bytes in flight when the hook is called */
	uint32_t srtt_us;       /* smoothed RTT, 0 if not yet measured */
	uint32_t min_rtt_us;    /* lowest RTT seen, 0 if none */
	uint64_t now_ns;        /* the connection's clock */
	uint64_t priv[TCP_CC_PRIV_SIZE / 8]; /* algorithm state, plain data */
};

struct tcp_cc_ops {
	uint32_t version;       /* TCP_CC_OPS_VERSION */
	const char *name;       /* "newreno", "cubic" */
	void (*init)(struct tcp_cc_state *s);
	void (*ack_received)(struct tcp_cc_state *s, uint32_t acked);
	void (*congestion_event)(struct tcp_cc_state *s);
	void (*recovery_exit)(struct tcp_cc_state *s);
	void (*rto_timeout)(struct tcp_cc_state *s);
};

extern const struct tcp_cc_ops tcp_cc_newreno;
extern const struct tcp_cc_ops tcp_cc_cubic;

/* Slow start shared by the algorithms: RFC 5681 with RFC 3465 appropriate
 * byte counting (at most TCP_CC_ABC_L_SEGS * mss per ACK), stopping at
 * ssthresh. Returns the acked bytes left over for congestion avoidance. */
#define TCP_CC_ABC_L_SEGS 2
uint32_t tcp_cc_slow_start(struct tcp_cc_state *s, uint32_t acked, uint32_t mss);

/* By name; NULL if unknown. */
const struct tcp_cc_ops *tcp_cc_lookup(const char *name);
/* Registration of more algorithms (version checked). 0 / -EINVAL / -EEXIST / -ENOSPC. */
int tcp_cc_register(const struct tcp_cc_ops *ops);

#endif
