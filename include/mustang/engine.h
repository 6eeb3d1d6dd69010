/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The engine ABI: how mustangd drives an engine, and how engine kinds are
 * added (built in, or loaded later as shared objects).
 *
 * An engine is a single-threaded, never-blocking state machine. The runtime
 * (engines/runtime.c) calls, in order:
 *   create() -> attach_queue() ... -> { poll() }* -> detach_queue() -> destroy()
 * poll() does a bounded amount of work and returns how much (0 = idle); the
 * scheduling mode decides what the thread does with an idle engine.
 * export_state()/import_state() are the live-upgrade hooks (DESIGN §5): all
 * state must be reachable from the engine and exportable as plain data.
 *
 * The vtable is versioned (first field), as PipeWire's spa_node_methods: a
 * runtime accepts any ops whose version it knows, and new hooks are only ever
 * appended.
 */
#ifndef MUSTANG_ENGINE_H
#define MUSTANG_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mustang/counters.h>
#include <mustang/pkt.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MST_ENGINE_OPS_VERSION 2 /* 2: resume(), conf.importing */

struct mst_queue; /* one RX/TX queue pair of a port; owned by the runtime */

/* What an engine is created with. */
struct mst_engine_conf {
	unsigned id;            /* engine index in the daemon, 0.. */
	unsigned n_engines;     /* engines serving the same port */
	uint8_t mac[6];         /* MAC of the port it serves */
	uint32_t ip;            /* our IPv4 address, network order */
	uint8_t prefix_len;
	uint32_t gw;            /* network order, 0 = none */
	uint16_t mtu;
	uint32_t services;      /* built-in services bit mask */
	uint32_t tx_offloads;   /* checksum offloads the port has */
	uint32_t rx_offloads;
	uint32_t arp_timeout_ms;
	/* TCP (0 / NULL = the stack's default) */
	const char *tcp_cc;
	uint32_t tcp_rcvbuf, tcp_sndbuf, tcp_max_conns;
	uint32_t tcp_timewait_ms, tcp_rto_min_ms, tcp_rto_max_ms;
	int tcp_syncookies;     /* 1 yes, 0 no */
	uint16_t tcp_eph_lo, tcp_eph_hi; /* ephemeral port range, host order */
	uint32_t tcp_tw_reuse_delay_ms;
	/* Pony (transport/pony): pony_port 0 = off; other 0s = its defaults */
	uint16_t pony_port;     /* UDP port, ours and every peer's */
	uint32_t pony_max_msg;  /* bytes */
	uint32_t pony_target_us, pony_ai_milli, pony_beta_milli, pony_max_mdf_milli;
	uint32_t pony_init_cwnd, pony_window_pkts, pony_rto_min_us, pony_rto_max_us;
	uint32_t pony_fs_range_us, pony_fs_max_cwnd;
	uint32_t pony_peer_share, pony_local_reserve, pony_rx_stall_ms; /* attack limits */
	/* Live upgrade: state will be imported into this engine, so it
	 * starts nothing of its own that the state carries (services). */
	bool importing;
};

/* An attached application: its shared segment (<mustang/shm_abi.h>), as
 * mapped in the daemon, and the eventfds of its queue pairs. */
struct mst_app {
	int id;
	void *base;             /* segment start */
	size_t len;             /* segment bytes */
	const int *eventfds;    /* one per queue pair, in qp order */
	unsigned n_eventfds;
	int doorbell;           /* the engine's doorbell eventfd (apps ring it) */
	int pid;                /* for logs */
};

struct mst_engine_ops {
	uint32_t version; /* MST_ENGINE_OPS_VERSION */
	const char *kind; /* registry name, e.g. "net" */

	/* NULL + errno on failure. May allocate; nothing else may. */
	void *(*create)(const struct mst_engine_conf *conf);
	/* Bounded work; returns units of work done, 0 when idle. now: CLOCK_MONOTONIC ns. */
	int (*poll)(void *eng, uint64_t now_ns);
	int (*attach_queue)(void *eng, struct mst_queue *q);
	int (*detach_queue)(void *eng, struct mst_queue *q);
	/* Apps (client library): called on the engine's own thread (mailbox).
	 * The engine serves the app's queue pairs until detach_app(). */
	int (*attach_app)(void *eng, const struct mst_app *app);
	/* 0: the engine no longer touches the segment; 1: connections the app
	 * had closed are still finishing, and the engine took over the
	 * mapping (it unmaps it itself); -errno. */
	int (*detach_app)(void *eng, int app_id);
	/* Upgrade hooks (engine thread, between polls). export_state: bytes
	 * written or -errno (-ENOSPC: need a bigger buf); on success the
	 * engine is frozen (no poll work; destroy() frees memory only, no
	 * packet, no app-segment write). import_state: into an engine made
	 * with conf.importing, its queue and the state's apps attached; 0 or
	 * -errno (then the engine is frozen and only good for destroy()). */
	long (*export_state)(void *eng, void *buf, size_t len);
	int (*import_state)(void *eng, const void *buf, size_t len);
	/* Optional, spreading mode: the thread is about to sleep (up to the
	 * back-off time) on the engine's doorbell eventfd. Return false if
	 * work arrived meanwhile (after announcing the sleep: see the wake
	 * protocol in <mustang/shm_abi.h>); woke() follows every sleep. */
	bool (*may_sleep)(void *eng);
	void (*woke)(void *eng);
	/* Counters; the pointer stays valid until destroy(). */
	const struct mst_stats *(*stats)(void *eng);
	void (*destroy)(void *eng);
	/* Version 2. Rollback: a frozen engine carries on (0, -EINVAL when
	 * it was not frozen). */
	int (*resume)(void *eng);
};

/* Registry of engine kinds. */
int mst_engine_register(const struct mst_engine_ops *ops);
const struct mst_engine_ops *mst_engine_lookup(const char *kind);

/* Queue access for engines (implemented by the port layer).
 * rx: up to n received frames; tx: returns how many were taken, the caller
 * keeps (and must free or retry) the rest. */
uint16_t mst_queue_rx(struct mst_queue *q, struct mst_pkt **pkts, uint16_t n);
uint16_t mst_queue_tx(struct mst_queue *q, struct mst_pkt **pkts, uint16_t n);
struct mst_pkt *mst_queue_alloc(struct mst_queue *q);
void mst_queue_free(struct mst_queue *q, struct mst_pkt *p);
uint32_t mst_queue_tx_offloads(const struct mst_queue *q);
uint32_t mst_queue_rx_offloads(const struct mst_queue *q);

#ifdef __cplusplus
}
#endif
#endif /* MUSTANG_ENGINE_H */
