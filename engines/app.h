/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Engine side of attached applications (the "net" engine's app layer).
 * Internal header.
 *
 *   eng_app_attach()  on the engine thread (mailbox), from attach_app()
 *   eng_app_poll()    every engine poll: take commands from each queue
 *                     pair, run them against the TCP stack, post events
 *   eng_app_kick()    after the poll's other work: wake sleeping threads
 *   eng_app_detach()  reset every connection, give back every FIFO slot
 *
 * Everything read from the segment is copied, then checked against the
 * engine's own state (socket ownership, FIFO counters, ring fill levels);
 * nothing in the segment is ever used as a pointer or an unchecked index.
 */
#ifndef MST_ENGINES_APP_H
#define MST_ENGINES_APP_H

#include <stdbool.h>
#include <stdint.h>

#include <mustang/counters.h>
#include <mustang/engine.h>

struct tcp_stack;
struct net_stack;
struct eng_app;
struct mst_pkt;

/* UDP port bindings of one engine, shared by its apps: who owns a port. */
struct eng_udp_bind {
	struct eng_app *app;    /* NULL: free */
	uint32_t sock;          /* socket index in that app */
};
#define ENG_UDP_PORTS 65536

/* The net stack's UDP hook (ctx = the engine's eng_udp_bind table). */
bool eng_app_udp_input(void *table, struct mst_pkt *p, uint32_t src, uint32_t dst,
		       uint16_t dport, uint64_t now_ns);

/* NULL + errno (EINVAL: the segment's layout is not one we made). */
struct eng_app *eng_app_attach(struct tcp_stack *ts, struct net_stack *ns,
			       struct eng_udp_bind *udp, struct mst_stats *st,
			       const struct mst_app *app, uint32_t rx_size, uint32_t tx_size);
/* The app is gone. Its open connections are reset; connections it had
 * closed go on until they finish. Returns 0 when everything is released,
 * 1 when some are still finishing: then call eng_app_drain() (the engine
 * takes over the segment mapping) and eng_app_reap() from poll until it
 * returns true. */
int eng_app_detach(struct eng_app *a);
void eng_app_drain(struct eng_app *a, uint64_t now_ns, uint64_t deadline_ns);
bool eng_app_reap(struct eng_app *a, uint64_t now_ns);
int eng_app_id(const struct eng_app *a);
/* Announce that the engine is going to sleep (shm_abi.h doorbell); false
 * when a command is already waiting. eng_app_woke() withdraws it. */
bool eng_app_may_sleep(struct eng_app *a);
void eng_app_woke(struct eng_app *a);
/* Commands taken (bounded per call). */
int eng_app_poll(struct eng_app *a, uint64_t now_ns);
/* Signal the eventfd of every queue pair that got events and sleeps. */
void eng_app_kick(struct eng_app *a);

#endif
