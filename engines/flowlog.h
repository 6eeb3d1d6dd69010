/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Flow records from the engines to the control plane (docs/observability.md).
 *
 *   control: flowlog_setup() before the engines start (off: never called)
 *   engine:  net_engine_create() -> flowlog_ring(id) -> tcp_set_flow_hook()
 *            hook (engine thread) -> flowlog_put(): copy into the engine's
 *            bounded single-producer ring; full -> counted, dropped
 *   control: flowlog_take(id) from its own thread (single consumer)
 *
 * Nothing here allocates or blocks after setup. Internal header.
 */
#ifndef MST_ENGINES_FLOWLOG_H
#define MST_ENGINES_FLOWLOG_H

#include <stdbool.h>
#include <stdint.h>

#define FLOWLOG_MAX_ENGINES 64       /* = MST_MAX_ENGINES */
#define FLOWLOG_APP_NONE (-1)        /* the daemon's own (built-in services) */

/* One record, plain data. */
struct mst_flow_rec {
	uint8_t proto;               /* 6 TCP */
	uint8_t reason;              /* enum tcp_close_reason */
	uint8_t state;               /* enum tcp_state when recorded */
	uint8_t passive;             /* the peer opened it */
	uint16_t engine;
	uint16_t pad;
	int32_t app_id;              /* FLOWLOG_APP_NONE: the daemon's own */
	uint32_t laddr, raddr;       /* network order */
	uint16_t lport, rport;       /* host order */
	uint64_t start_ns, end_ns;   /* CLOCK_MONOTONIC */
	uint64_t bytes_acked, bytes_received, bytes_sent;
	uint64_t segs_out, segs_in;
	uint32_t retransmits, rto_count, recoveries;
	uint32_t srtt_us, min_rtt_us, last_rtt_us;
	uint32_t max_cwnd, mss;
};

/* Rings for engines 0..n-1 (ring_size records each, a power of 2) and the
 * periodic interval (0: records at close only). 0 or -errno. */
int flowlog_setup(unsigned n_engines, unsigned ring_size, uint64_t interval_ns);
/* NULL when flow records are off (or id has no ring). */
struct rte_ring *flowlog_ring(unsigned id);
uint64_t flowlog_interval_ns(void);
/* Engine thread: false when the ring is full (the caller counts it). */
bool flowlog_put(struct rte_ring *r, const struct mst_flow_rec *rec);
/* Control thread: up to max records of engine id. */
unsigned flowlog_take(unsigned id, struct mst_flow_rec *out, unsigned max);

#endif
