/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * An engine's whole state as records (live upgrade, common/state.h):
 * ENGINE, ARP..., per app APP + APP_SOCK... + PONY_EP..., the TCP records,
 * the Pony records, COUNTERS.
 * DPDK-free: the net engine calls it, and so do the unit tests and the
 * fuzz target on in-process stacks. Internal header.
 */
#ifndef MST_ENGINES_ENGINE_STATE_H
#define MST_ENGINES_ENGINE_STATE_H

#include <stddef.h>
#include <stdint.h>

#include <mustang/counters.h>

struct net_stack;
struct tcp_stack;
struct eng_app;
struct eng_pony;

/* What makes a state this engine's (checked on import). */
struct eng_state_id {
	uint32_t id, n_engines;
	uint32_t ip;                       /* network order */
	uint8_t mac[6];
	uint8_t prefix_len;
	uint32_t max_conns, rx_buf, tx_buf;
	uint16_t mtu, pony_port;
};

struct eng_state {
	struct net_stack *ns;
	struct tcp_stack *ts;
	struct eng_app **apps;             /* attached apps */
	struct eng_pony *pony;             /* NULL: Pony off (or not this engine's) */
	unsigned n_apps;
	struct mst_stats *stats;
	struct eng_state_id id;
};

/* Bytes written, or -errno: -ENOSPC (need a bigger buffer), -EBUSY (an app
 * is draining). */
long eng_state_export(const struct eng_state *s, void *buf, size_t len, uint64_t now_ns);
/* Into fresh stacks (no connection, no service) with the state's apps
 * attached again. 0 or -errno; on failure the stacks hold a partial state
 * that only their destroy functions may touch. */
int eng_state_import(const struct eng_state *s, const void *buf, size_t len, uint64_t now_ns);

#endif
