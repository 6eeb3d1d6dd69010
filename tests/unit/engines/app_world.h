/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A harness for the engine's app layer (engines/app.c) without DPDK: an
 * in-process net + TCP stack, the engine's UDP port table and up to
 * AW_MAX_APPS app segments laid out as mustangd lays them out, attached
 * with eng_app_attach(). The test plays the apps: it writes commands into
 * a queue pair's command ring and reads the events back, as the client
 * library does.
 *
 *   aw_segment() (or aw_init(), which makes one per app) -> aw_cmd() /
 *   aw_submit() + aw_poll() + aw_find() -> aw_fini()
 *
 * Must be included after <cmocka.h> (the helpers assert).
 */
#ifndef MST_TEST_APP_WORLD_H
#define MST_TEST_APP_WORLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mustang/counters.h>
#include <mustang/shm_abi.h>

#include "engines/app.h"

#define AW_MAX_APPS 4
#define AW_IP 0x0100000au /* 10.0.0.1, network order on little endian */

/* Layout of one segment. */
struct aw_geom {
	int32_t id;
	uint32_t n_qps, n_socks, n_slots, rx_size, tx_size;
};

struct aw_app {
	struct eng_app *a;
	void *seg;
	size_t len;
	struct mst_shm_qp *qps;
	struct mst_shm_sock *socks;
	uint32_t seq;                  /* last command id used */
	int efd[MST_SHM_MAX_QPS];      /* -1: nobody sleeps in a test */
};

struct app_world {
	struct mst_stats st;
	struct net_stack *ns;
	struct tcp_stack *ts;
	struct eng_udp_bind *udp;
	struct aw_app app[AW_MAX_APPS];
	unsigned n_apps;
	uint64_t now;
};

/* Frames go nowhere: a net_io's alloc, and its xmit and free. */
struct mst_pkt;
struct mst_pkt *aw_io_alloc(void *ctx);
void aw_io_free(void *ctx, struct mst_pkt *p);
/* A zeroed segment with a valid header for g; *len its size (munmap). */
void *aw_segment(const struct aw_geom *g, uint32_t local_ip, size_t *len);
/* Stacks and n_apps apps of 2 qps, 64 sockets, 16 FIFO slots of 4 KiB each way. */
void aw_init(struct app_world *w, unsigned n_apps);
void aw_fini(struct app_world *w);
/* Write one command into app k's queue pair q (seq filled in); returns its seq. */
uint32_t aw_submit(struct app_world *w, unsigned k, uint32_t q, struct mst_shm_msg m);
/* One engine poll of every app (commands taken). */
void aw_poll(struct app_world *w);
/* The DONE/ERROR for seq among q's unread events (copied to *out); false if none. */
bool aw_find(struct app_world *w, unsigned k, uint32_t q, uint32_t seq, struct mst_shm_msg *out);
/* Events posted on q and not read yet. */
uint32_t aw_pending(struct app_world *w, unsigned k, uint32_t q);
/* Mark every event of q read. */
void aw_consume(struct app_world *w, unsigned k, uint32_t q);
/* Submit on qp 0, poll, return the completion's result (DONE or ERROR),
 * every event read; *ev (may be NULL) gets the completion. */
int64_t aw_cmd(struct app_world *w, unsigned k, uint16_t op, int32_t sock, uint64_t a, uint64_t b,
	       struct mst_shm_msg *ev);

#endif
