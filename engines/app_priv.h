/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The engine's private view of an attached app, shared by app.c (commands,
 * events, FIFOs) and app_state.c (live-upgrade export/import). Internal
 * to engines/app*.c.
 */
#ifndef MST_ENGINES_APP_PRIV_H
#define MST_ENGINES_APP_PRIV_H

#include <stdbool.h>
#include <stdint.h>

#include <mustang/shm_abi.h>

#include "engines/app.h"
#include "transport/tcp/tcp.h"


enum esock_kind { ES_FREE, ES_NEW, ES_LISTEN, ES_CONN, ES_UDP, ES_PONY };

/* The engine's private view of one app socket. */
struct esock {
	uint8_t kind;           /* enum esock_kind */
	uint16_t port;          /* bound port, host order (0 = none) */
	uint32_t notify_qp;     /* queue pair that gets READY events */
	uint32_t last_ready;    /* last READY bits posted */
	uint32_t rx_seen;       /* rx_tail last posted */
	uint32_t tx_seen;       /* tx_head last posted */
	struct tcp_cb *c;
	uint32_t slot;          /* FIFO slot (connections, UDP) */
	/* UDP: our view of the FIFO counters (the truth), and the peer */
	uint32_t rx_head, rx_tail, tx_head, tx_tail;
	uint32_t peer_ip;       /* network order, 0 = not connected */
	uint16_t peer_port;     /* host order */
};

struct eng_app {
	int id;
	struct tcp_stack *ts;
	struct net_stack *ns;
	struct eng_udp_bind *udp;           /* the engine's UDP port table */
	uint32_t udp_next;                  /* ephemeral UDP port cursor */
	struct mst_stats *st;
	uint8_t *base;
	size_t len;
	unsigned n_qps, n_socks;
	struct mst_shm_qp *qps;
	struct mst_shm_sock *socks;
	uint64_t fifo_off, fifo_size;
	uint32_t local_ip;                  /* the stack's address (network order) */
	uint32_t rx_size, tx_size, slot_size, n_slots;
	int efd[MST_SHM_MAX_QPS];
	uint32_t cmd_cons[MST_SHM_MAX_QPS]; /* our consumer counters (the truth) */
	uint32_t evt_prod[MST_SHM_MAX_QPS]; /* our producer counters (the truth) */
	uint8_t kick[MST_SHM_MAX_QPS];      /* events posted since the last kick */
	struct tcp_fifo_ops fops;
	struct esock *es;                   /* n_socks */
	uint32_t *free_socks, n_free_socks; /* stack of free socket indices */
	uint32_t *free_slots, n_free_slots; /* stack of free FIFO slots */
	struct tcp_cb **slot_conn;          /* n_slots: connection using each slot */
	bool draining;                      /* the app is gone; closed connections finish */
	uint64_t drain_deadline_ns;         /* then whatever is left is reset */
	bool own_mapping;                   /* unmap base when freed (draining) */
	struct pony_app *pony;              /* Pony arena and endpoints (app_pony.c), NULL: off */
};

static inline uint32_t load_acq(const uint32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static inline void store_rel(uint32_t *p, uint32_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}


/* TCP's event callback for app connections (ctx = the app). */
void eng_app_sock_event(void *ctx, struct tcp_cb *c, uint32_t ev);

/* Release the engine's memory for a (no wire, no segment writes). */
void eng_app_free(struct eng_app *a);

#endif
