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
struct tcp_cb;
struct net_stack;
struct eng_app;
struct mst_pkt;
struct mst_shm_msg;
struct mst_shm_sock;
struct eng_pony;
struct pony_app;
struct pony_flow_info;

/* Port bindings of one engine, shared by its apps: who owns a port.
 * ENG_PORT_TABLE entries: UDP ports first, then TCP ports (a TCP port
 * bound by one app is EADDRINUSE for the others). */
struct eng_udp_bind {
	struct eng_app *app;    /* NULL: free */
	uint32_t sock;          /* socket index in that app */
};
#define ENG_UDP_PORTS 65536
#define ENG_PORT_TABLE (2 * ENG_UDP_PORTS)

/* The net stack's UDP hook (ctx = the engine's eng_udp_bind table). */
bool eng_app_udp_input(void *table, struct mst_pkt *p, uint32_t src, uint32_t dst,
		       uint16_t dport, uint64_t now_ns);

/* NULL + errno (EINVAL: the segment's layout is not one we made). */
struct eng_app *eng_app_attach(struct tcp_stack *ts, struct net_stack *ns,
			       struct eng_udp_bind *udp, struct eng_pony *py, struct mst_stats *st,
			       const struct mst_app *app, uint32_t rx_size, uint32_t tx_size);
/* The app is gone. Its open connections are reset; connections it had
 * closed go on until they finish. Returns 0 when everything is released,
 * 1 when some are still finishing: then call eng_app_drain() (the engine
 * takes over the segment mapping) and eng_app_reap() from poll until it
 * returns true. */
int eng_app_detach(struct eng_app *a);
void eng_app_drain(struct eng_app *a, uint64_t now_ns, uint64_t deadline_ns);
/* Bring the drain's end forward to deadline_ns (CLOCK_MONOTONIC), if later. */
void eng_app_drain_within(struct eng_app *a, uint64_t deadline_ns);
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
/* Events to the app (for app_pony.c): any event, a command's DONE, its ERROR. */
void eng_app_post(struct eng_app *a, uint32_t q, const struct mst_shm_msg *m);
void eng_app_post_done(struct eng_app *a, uint32_t q, const struct mst_shm_msg *cmd,
		       int32_t result, uint64_t va, uint64_t vb, uint64_t vc);
void eng_app_post_error(struct eng_app *a, uint32_t q, const struct mst_shm_msg *cmd, int32_t err);

/*
 * Live upgrade (app_state.c, format in common/state.h). Export an app's
 * records (APP, APP_SOCK, its Pony endpoints), or -EBUSY (draining). Import
 * into an app just attached to a fresh engine: its records, then TCP's (with
 * the owner/adopt hooks below), then eng_app_import_finish(). eng_app_forget()
 * frees the engine's view without touching the wire or the segment (after
 * an export, or when an import is refused).
 */
struct mst_state_writer;
struct tcp_owner;
int eng_app_export(struct eng_app *a, struct mst_state_writer *w);
int eng_app_import_app(struct eng_app *a, const void *p, uint32_t len);
int eng_app_import_sock(struct eng_app *a, const void *p, uint32_t len);
int eng_app_import_pony_ep(struct eng_app *a, const void *p, uint32_t len);
int eng_app_import_finish(struct eng_app *a);
void eng_app_forget(struct eng_app *a);
void eng_app_tcp_owner(struct eng_app *const *apps, unsigned n, const struct tcp_cb *c,
		       struct tcp_owner *o);
int eng_app_tcp_adopt(struct eng_app *const *apps, unsigned n, struct tcp_cb *c,
		      const struct tcp_owner *o);

/*
 * Pony (app_pony.c). The engine's side: one struct eng_pony per engine
 * (NULL + errno on failure), fed the datagrams of its UDP port.
 */
struct eng_pony *eng_pony_create(const struct mst_engine_conf *c, struct net_stack *ns,
				 struct mst_stats *st, uint64_t now);
void eng_pony_destroy(struct eng_pony *ep);
/* The time of the current engine poll (ops the apps submit use it). */
void eng_pony_now(struct eng_pony *ep, uint64_t now);
/* True (p taken) when dport is the Pony port; p->data at the UDP header. */
bool eng_pony_udp_input(struct eng_pony *ep, struct mst_pkt *p, uint32_t src, uint16_t dport,
			uint64_t now);
int eng_pony_poll(struct eng_pony *ep, uint64_t now);
bool eng_pony_idle(const struct eng_pony *ep);
uint16_t eng_pony_port(const struct eng_pony *ep);
/* Up to max flows into out; returns how many exist. */
unsigned eng_pony_flows(const struct eng_pony *ep, struct pony_flow_info *out, unsigned max,
			uint64_t now);

/* The app's side, called by app.c: its Pony arena (NULL when Pony is off
 * or the segment has none) and its endpoints (Pony sockets). */
struct pony_app *pony_app_attach(struct eng_pony *ep, struct eng_app *a, uint8_t *base,
				 uint64_t pony_off, uint64_t pony_size, struct mst_stats *st);
void pony_app_detach(struct pony_app *pa);
/* SOCKET a=3: rec = the socket's RX FIFO (the record ring). -errno. */
int pony_ep_open(struct pony_app *pa, uint32_t sock, uint32_t qp, uint8_t *rec, uint32_t rec_bytes,
		 struct mst_shm_sock *sh);
/* Every command on a Pony socket but SOCKET and CLOSE. */
void pony_ep_cmd(struct pony_app *pa, uint32_t sock, uint32_t q, const struct mst_shm_msg *m);
/* CLOSE or detach: pony_cancel_svc, everything it held goes back. */
void pony_ep_close(struct pony_app *pa, uint32_t sock);
/* Once per poll: retry deferred ops, publish new records (READY). */
void pony_app_flush(struct pony_app *pa);

/*
 * Live upgrade of Pony (app_pony_state.c; records in common/state.h).
 * Export: eng_pony_export() (the core's records, app memory named by
 * arena offset) and, per app, pony_app_export() (PONY_EP per endpoint).
 * Import into a fresh engine's apps: pony_app_import_ep() per PONY_EP
 * (ring = the socket's record ring, checked by the caller), the core's
 * records through eng_pony_import_rec(), then pony_app_import_finish()
 * per app (arena, free lists) and eng_pony_import_finish() (every op and
 * buffer the apps wait on has its message in the core, and only one).
 * pony_app_forget(): memory only, nothing told to the core.
 */
int eng_pony_export(struct eng_pony *ep, struct mst_state_writer *w);
int eng_pony_import_rec(struct eng_pony *ep, unsigned type, const void *p, uint32_t len);
int eng_pony_import_finish(struct eng_pony *ep);
int pony_app_export(struct pony_app *pa, struct mst_state_writer *w);
/* The socket index a PONY_EP payload names (-EBADMSG: too short). */
int64_t pony_ep_rec_sock(const void *p, uint32_t len);
int pony_app_import_ep(struct pony_app *pa, const void *p, uint32_t len, uint8_t *ring,
		       uint32_t ring_bytes, struct mst_shm_sock *sh, uint32_t n_qps);
int pony_app_import_finish(struct pony_app *pa);
bool pony_app_has_ep(const struct pony_app *pa, uint32_t sock);
void pony_app_forget(struct pony_app *pa);

#endif
