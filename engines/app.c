/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Engine side of attached applications: queue pairs, sockets, FIFOs in the
 * app's segment (see <mustang/shm_abi.h> for the protocol and app.h for
 * the call order).
 *
 * eng_app_poll(): for each queue pair: fill level of the command ring
 * (validated) -> copy each command out of shared memory -> run_cmd() ->
 * DONE/ERROR event -> release the ring slots. TCP events for the app's
 * connections arrive through sock_event() at any time during the engine's
 * poll; sock_sync() mirrors the connection's FIFO counters and readiness
 * into the shared socket and posts READY to the socket's notify queue pair.
 * eng_app_kick() then wakes the queue pairs that got events and sleep.
 *
 * Memory ordering (partners named in shm_abi.h):
 *  - cmd.prod load-acquire  <-> app's store-release after writing the slot
 *  - cmd.cons store-release <-> app's load-acquire before reusing slots
 *  - evt.prod store-release <-> app's load-acquire before reading the slot
 *  - tx_tail / rx_head load-acquire <-> app's store-release after its FIFO
 *    writes / reads
 *  - rx_tail / tx_head / ready store-release <-> app's load-acquire
 *  - seq_cst fence before reading qp->wake <-> app's fence after setting it
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include <mustang/shm_abi.h>

#include "engines/app.h"
#include "engines/app_priv.h"
#include "transport/net/net.h"
#include "transport/tcp/tcp.h"
#include "transport/tcp/tcp_fifo.h"

#define APP_CMD_BUDGET 256 /* commands per app per poll */
/* Event-ring slots only DONE/ERROR may use: a thread blocked on a
 * command's DONE whose ring READYs filled (many busy sockets, one poll)
 * would otherwise lose it and block for good; a dropped READY only makes
 * the library rescan (evt_overflow). One command waits per qp at a time. */
#define APP_EVT_RESERVE 32u

/* ---- events ------------------------------------------------------------ */

static void post(struct eng_app *a, uint32_t q, const struct mst_shm_msg *m)
{
	struct mst_shm_ring *r = &a->qps[q].evt;
	uint32_t prod = a->evt_prod[q];
	uint32_t cons;

	if (a->draining)
		return; /* nobody listens any more */
	cons = load_acq(&r->cons); /* app-written: only trusted if sane */
	/* prod - cons > SLOTS cannot happen in a ring the app keeps: it broke
	 * its own ring, write on (slots are always in bounds). */
	if (prod - cons == MST_SHM_RING_SLOTS ||
	    (m->op != MST_EV_DONE && m->op != MST_EV_ERROR &&
	     prod - cons >= MST_SHM_RING_SLOTS - APP_EVT_RESERVE)) {
		/* Full, or a cons the app broke: drop, tell it to rescan (a
		 * counter, so that every overflow is visible). */
		__atomic_fetch_add(&a->qps[q].evt_overflow, 1, __ATOMIC_RELEASE);
		MST_DROP(a->st, app_evt_overflow);
		a->kick[q] = 1;
		return;
	}
	memcpy(&r->slots[prod & (MST_SHM_RING_SLOTS - 1)], m, sizeof(*m));
	a->evt_prod[q] = prod + 1;
	store_rel(&r->prod, prod + 1);
	a->kick[q] = 1;
	MST_COUNT(a->st, app_events);
}

static void post_done(struct eng_app *a, uint32_t q, const struct mst_shm_msg *cmd, int32_t result,
		      uint64_t va, uint64_t vb, uint64_t vc)
{
	struct mst_shm_msg m = {
		.op = MST_EV_DONE, .sock = cmd->sock, .seq = cmd->seq, .result = result,
		.a = va, .b = vb, .c = vc,
	};

	post(a, q, &m);
}

static void post_error(struct eng_app *a, uint32_t q, const struct mst_shm_msg *cmd, int32_t err)
{
	struct mst_shm_msg m = {
		.op = MST_EV_ERROR, .sock = cmd ? cmd->sock : -1, .seq = cmd ? cmd->seq : 0,
		.result = err, .a = cmd ? cmd->op : 0,
	};

	post(a, q, &m);
}

void eng_app_post(struct eng_app *a, uint32_t q, const struct mst_shm_msg *m)
{
	post(a, q, m);
}

void eng_app_post_done(struct eng_app *a, uint32_t q, const struct mst_shm_msg *cmd,
		       int32_t result, uint64_t va, uint64_t vb, uint64_t vc)
{
	post_done(a, q, cmd, result, va, vb, vc);
}

void eng_app_post_error(struct eng_app *a, uint32_t q, const struct mst_shm_msg *cmd, int32_t err)
{
	if (a)
		post_error(a, q, cmd, err);
}

void eng_app_kick(struct eng_app *a)
{
	bool any = false, woke = false;

	if (a->draining)
		return;
	pony_app_flush(a->pony); /* deferred Pony ops, READY for new records */
	for (unsigned q = 0; q < a->n_qps; q++)
		any |= a->kick[q];
	if (!any)
		return;
	/* Pairs with the app's fence between "wake = 1" and its re-check. */
	atomic_thread_fence(memory_order_seq_cst);
	for (unsigned q = 0; q < a->n_qps; q++) {
		if (!a->kick[q])
			continue;
		a->kick[q] = 0;
		if (__atomic_load_n(&a->qps[q].wake, __ATOMIC_RELAXED)) {
			uint64_t one = 1;

			(void)!write(a->efd[q], &one, sizeof(one));
			MST_COUNT(a->st, app_wakeups);
			woke = true;
		}
	}
	/* A woken app that shares our core would otherwise wait for this
	 * busy-polling thread to use up its scheduler slice (milliseconds
	 * under EEVDF's run-to-parity): an RPC's latency. Costs one syscall
	 * per wakeup, and apps that spin are never woken. */
	if (woke)
		sched_yield();
}

/* ---- sockets --------------------------------------------------------- */

static inline uint32_t sock_index(const struct eng_app *a, const struct esock *es)
{
	return (uint32_t)(es - a->es);
}

/* Mirror a socket's state into shared memory; post READY when it changed. */
static void sock_sync(struct eng_app *a, struct esock *es, bool force)
{
	uint32_t idx = sock_index(a, es);
	struct mst_shm_sock *sh = &a->socks[idx];
	uint32_t ready = 0, rx_head, rx_tail, tx_head, tx_tail;
	enum tcp_state st;
	int err;

	if (!es->c)
		return;
	st = tcp_state_of(es->c);
	err = tcp_error(es->c);
	if (es->kind == ES_LISTEN) {
		uint32_t n = tcp_accept_pending(a->ts, es->c);

		__atomic_store_n(&sh->accept_queue, n, __ATOMIC_RELAXED);
		ready = n ? MST_READY_IN : 0;
		rx_tail = tx_head = 0;
	} else {
		bool eof = tcp_eof(es->c);

		tcp_fifo_state(es->c, &rx_head, &rx_tail, &tx_head, &tx_tail);
		store_rel(&sh->rx_tail, rx_tail);
		store_rel(&sh->tx_head, tx_head);
		/* Release: whoever sees eof (acquire) sees the final rx_tail. */
		store_rel(&sh->eof, eof ? 1u : 0u);
		if (rx_tail != rx_head || eof || err || st == TCP_CLOSED)
			ready |= MST_READY_IN;
		if ((st == TCP_ESTABLISHED || st == TCP_CLOSE_WAIT) &&
		    tx_tail - tx_head < a->tx_size)
			ready |= MST_READY_OUT;
		if (eof)
			ready |= MST_READY_RDHUP;
		if (st == TCP_CLOSED || (eof && st >= TCP_CLOSING))
			ready |= MST_READY_HUP;
	}
	if (err)
		ready |= MST_READY_ERR;
	store_rel((uint32_t *)&sh->error, (uint32_t)err);
	store_rel(&sh->state, (uint32_t)st);
	store_rel(&sh->ready, ready);
	if (force || ready != es->last_ready || rx_tail != es->rx_seen || tx_head != es->tx_seen) {
		struct mst_shm_msg m = { .op = MST_EV_READY, .sock = (int32_t)idx, .a = ready };

		es->last_ready = ready;
		es->rx_seen = rx_tail;
		es->tx_seen = tx_head;
		post(a, es->notify_qp, &m);
	}
}

void eng_app_sock_event(void *ctx, struct tcp_cb *c, uint32_t ev)
{
	struct eng_app *a = ctx;
	struct esock *es = tcp_user(c);

	(void)ev;
	if (es)
		sock_sync(a, es, false);
}

static struct esock *sock_new(struct eng_app *a, uint8_t kind, uint32_t qp)
{
	struct esock *es;
	struct mst_shm_sock *sh;
	uint32_t idx;

	if (!a->n_free_socks) {
		MST_DROP(a->st, app_no_memory);
		return NULL;
	}
	idx = a->free_socks[--a->n_free_socks];
	es = &a->es[idx];
	memset(es, 0, sizeof(*es));
	es->kind = kind;
	es->notify_qp = qp;
	sh = &a->socks[idx];
	sh->gen++;
	sh->rx_tail = sh->tx_head = sh->rx_head = sh->tx_tail = 0;
	sh->error = 0;
	sh->ready = 0;
	sh->eof = 0;
	sh->accept_queue = 0;
	sh->rx_off = sh->tx_off = 0;
	sh->rx_size = sh->tx_size = 0;
	sh->local_ip = sh->remote_ip = 0;
	sh->local_port = sh->remote_port = 0;
	store_rel(&sh->state, MST_SOCK_NEW);
	return es;
}

/* The TCP half of the engine's port table (app.h). */
static inline struct eng_udp_bind *tcp_owner(const struct eng_app *a, uint16_t port)
{
	return &a->udp[ENG_UDP_PORTS + port];
}

static void tcp_port_release(struct eng_app *a, struct esock *es)
{
	struct eng_udp_bind *o;

	if ((es->kind != ES_NEW && es->kind != ES_LISTEN && es->kind != ES_CONN) || !es->port)
		return;
	o = tcp_owner(a, es->port);
	if (o->app == a && o->sock == sock_index(a, es))
		o->app = NULL;
}

/* Every TCP port the app holds goes back (it is detaching or forgotten). */
static void tcp_ports_release_all(struct eng_app *a)
{
	for (unsigned i = 0; i < a->n_socks; i++)
		if (a->es[i].kind != ES_FREE)
			tcp_port_release(a, &a->es[i]);
}

static void sock_free(struct eng_app *a, struct esock *es)
{
	uint32_t idx = sock_index(a, es);

	tcp_port_release(a, es);

	es->kind = ES_FREE;
	es->c = NULL;
	store_rel(&a->socks[idx].state, MST_SOCK_FREE);
	a->free_socks[a->n_free_socks++] = idx;
}

/* A connection now owned by socket es: publish where its FIFOs are. */
static void sock_bind_conn(struct eng_app *a, struct esock *es, struct tcp_cb *c)
{
	struct mst_shm_sock *sh = &a->socks[sock_index(a, es)];
	struct tcp_conn_info ci;
	uint32_t rh, rt, th, tt;

	es->c = c;
	es->kind = ES_CONN;
	es->slot = (uint32_t)((uintptr_t)tcp_fifo_cookie(c) - 1);
	tcp_set_user(c, es);
	tcp_get_info(c, &ci);
	tcp_fifo_state(c, &rh, &rt, &th, &tt);
	sh->rx_off = a->fifo_off + (uint64_t)es->slot * a->slot_size;
	sh->tx_off = sh->rx_off + a->rx_size;
	sh->rx_size = a->rx_size;
	sh->tx_size = a->tx_size;
	sh->local_ip = ci.laddr;
	sh->remote_ip = ci.raddr;
	sh->local_port = ci.lport;
	sh->remote_port = ci.rport;
	/* The app's counters start where the connection's are. */
	sh->rx_head = rh;
	sh->tx_tail = tt;
	es->rx_seen = rt;
	es->tx_seen = th;
	sock_sync(a, es, true);
}

/* FIFO slots in the arena, handed to TCP as its fifo_ops. */
static void *slot_alloc(void *ctx, struct tcp_cb *c, uint8_t **rx, uint8_t **tx, uint32_t rx_size,
			uint32_t tx_size)
{
	struct eng_app *a = ctx;
	uint32_t slot;

	if (rx_size != a->rx_size || tx_size != a->tx_size || !a->n_free_slots) {
		MST_DROP(a->st, app_no_memory);
		return NULL;
	}
	slot = a->free_slots[--a->n_free_slots];
	*rx = a->base + a->fifo_off + (uint64_t)slot * a->slot_size;
	*tx = *rx + rx_size;
	a->slot_conn[slot] = c;
	return (void *)(uintptr_t)(slot + 1);
}

static void slot_free(void *ctx, struct tcp_cb *c, void *cookie)
{
	struct eng_app *a = ctx;
	uint32_t slot = (uint32_t)((uintptr_t)cookie - 1);

	(void)c;
	if (slot >= a->n_slots)
		return; /* no FIFOs (a listener): nothing of ours */
	a->slot_conn[slot] = NULL;
	a->free_slots[a->n_free_slots++] = slot;
}

/* ---- UDP sockets (datagram records in the FIFOs, see shm_abi.h) ------------ */

#define DGRAM_HDR ((uint32_t)sizeof(struct mst_shm_dgram))

static inline uint32_t dgram_rec(uint32_t len)
{
	return (DGRAM_HDR + len + MST_SHM_DGRAM_ALIGN - 1) & ~(MST_SHM_DGRAM_ALIGN - 1);
}

/* Copy n bytes to/from FIFO position pos (wrapping): the TCP FIFO's copy. */
static void ring_in(uint8_t *fifo, uint32_t size, uint32_t pos, const void *src, uint32_t n)
{
	struct tcp_fifo f = { .data = fifo, .size = size };

	fifo_copy_in(&f, pos, src, n);
}

static void ring_out(const uint8_t *fifo, uint32_t size, uint32_t pos, void *dst, uint32_t n)
{
	struct tcp_fifo f = { .data = (uint8_t *)fifo, .size = size };

	fifo_copy_out(&f, pos, dst, n);
}

static uint8_t *udp_rx_fifo(struct eng_app *a, const struct esock *es)
{
	return a->base + a->fifo_off + (uint64_t)es->slot * a->slot_size;
}

static uint8_t *udp_tx_fifo(struct eng_app *a, const struct esock *es)
{
	return udp_rx_fifo(a, es) + a->rx_size;
}

static void udp_sync(struct eng_app *a, struct esock *es)
{
	struct mst_shm_sock *sh = &a->socks[sock_index(a, es)];
	uint32_t ready = 0;

	store_rel(&sh->rx_tail, es->rx_tail);
	store_rel(&sh->tx_head, es->tx_head);
	if (es->rx_tail != es->rx_head)
		ready |= MST_READY_IN;
	if (a->tx_size - (es->tx_tail - es->tx_head) >= dgram_rec(1))
		ready |= MST_READY_OUT;
	store_rel(&sh->ready, ready);
	if (ready != es->last_ready || es->rx_tail != es->rx_seen || es->tx_head != es->tx_seen) {
		struct mst_shm_msg m = { .op = MST_EV_READY, .sock = (int32_t)sock_index(a, es),
					 .a = ready };

		es->last_ready = ready;
		es->rx_seen = es->rx_tail;
		es->tx_seen = es->tx_head;
		post(a, es->notify_qp, &m);
	}
}

static int udp_bind_port(struct eng_app *a, struct esock *es, uint32_t port)
{
	if (port == 0) {
		/* Ephemeral: the next free port after the last one handed out. */
		for (uint32_t i = 0; i < 16384 && !port; i++) {
			uint32_t p = 49152 + (a->udp_next++ % 16384);

			if (!a->udp[p].app)
				port = p;
		}
		if (!port)
			return -EADDRINUSE;
	} else if (port > 65535) {
		return -EINVAL;
	} else if (a->udp[port].app) {
		return -EADDRINUSE;
	}
	a->udp[port].app = a;
	a->udp[port].sock = sock_index(a, es);
	es->port = (uint16_t)port;
	a->socks[sock_index(a, es)].local_port = es->port;
	a->socks[sock_index(a, es)].local_ip = a->local_ip;
	return 0;
}

static void udp_release(struct eng_app *a, struct esock *es)
{
	if (es->port && a->udp[es->port].app == a && a->udp[es->port].sock == sock_index(a, es))
		a->udp[es->port].app = NULL;
	es->port = 0;
	a->free_slots[a->n_free_slots++] = es->slot;
}

/* A socket that owns a FIFO slot from the start (UDP, Pony); NULL after
 * answering the command with the error. */
static struct esock *sock_new_slotted(struct eng_app *a, uint8_t kind, uint32_t q,
				      const struct mst_shm_msg *m)
{
	struct esock *es = sock_new(a, kind, q);
	struct mst_shm_sock *sh;

	if (!es) {
		post_done(a, q, m, -EMFILE, 0, 0, 0);
		return NULL;
	}
	if (!a->n_free_slots) {
		MST_DROP(a->st, app_no_memory);
		sock_free(a, es);
		post_done(a, q, m, -ENOBUFS, 0, 0, 0);
		return NULL;
	}
	es->slot = a->free_slots[--a->n_free_slots];
	sh = &a->socks[sock_index(a, es)];
	sh->rx_off = a->fifo_off + (uint64_t)es->slot * a->slot_size;
	sh->tx_off = sh->rx_off + a->rx_size;
	sh->rx_size = a->rx_size;
	sh->tx_size = a->tx_size;
	sh->local_ip = a->local_ip;
	return es;
}

static void cmd_udp_socket(struct eng_app *a, uint32_t q, const struct mst_shm_msg *m)
{
	struct esock *es = sock_new_slotted(a, ES_UDP, q, m);

	if (!es)
		return;
	udp_sync(a, es);
	post_done(a, q, m, (int32_t)sock_index(a, es), 0, 0, 0);
}

/* Pony endpoint: its RX FIFO is the record ring (shm_abi.h). The shared
 * state says ESTABLISHED so that the library's poll sees records as
 * readable bytes. */
static void cmd_pony_socket(struct eng_app *a, uint32_t q, const struct mst_shm_msg *m)
{
	struct esock *es = sock_new_slotted(a, ES_PONY, q, m);
	uint32_t idx;
	int rc;

	if (!es)
		return;
	idx = sock_index(a, es);
	rc = pony_ep_open(a->pony, idx, q, udp_rx_fifo(a, es), a->rx_size, &a->socks[idx]);
	if (rc < 0) {
		a->free_slots[a->n_free_slots++] = es->slot;
		sock_free(a, es);
		post_done(a, q, m, rc, 0, 0, 0);
		return;
	}
	store_rel(&a->socks[idx].state, MST_SOCK_ESTABLISHED);
	post_done(a, q, m, (int32_t)idx, 0, 0, 0);
}

static void pony_sock_close(struct eng_app *a, struct esock *es)
{
	pony_ep_close(a->pony, sock_index(a, es));
	a->free_slots[a->n_free_slots++] = es->slot;
	sock_free(a, es);
}

static int udp_rx_done(struct eng_app *a, struct esock *es)
{
	uint32_t v = load_acq(&a->socks[sock_index(a, es)].rx_head);

	if (v - es->rx_head > es->rx_tail - es->rx_head) {
		MST_DROP(a->st, app_bad_fifo);
		return -EINVAL;
	}
	es->rx_head = v;
	return 0;
}

/* Send every complete record between our tx_head and the app's tx_tail. */
static int udp_tx(struct eng_app *a, uint32_t q, struct esock *es, const struct mst_shm_msg *m)
{
	uint32_t v = load_acq(&a->socks[sock_index(a, es)].tx_tail);
	const uint8_t *fifo = udp_tx_fifo(a, es);
	int rc = 0;

	if (v - es->tx_head > a->tx_size) {
		MST_DROP(a->st, app_bad_fifo);
		return -EINVAL;
	}
	es->tx_tail = v;
	while (es->tx_head != es->tx_tail) {
		uint32_t have = es->tx_tail - es->tx_head, rec;
		struct mst_shm_dgram d;
		struct mst_pkt *p;
		uint32_t dst;
		uint16_t dport;

		if (have < DGRAM_HDR)
			break; /* a partial header: wait for the rest */
		ring_out(fifo, a->tx_size, es->tx_head, &d, DGRAM_HDR);
		if (d.len > MST_SHM_DGRAM_MAX) {
			/* Garbage: we cannot find the next record; drop the lot. */
			MST_DROP(a->st, app_bad_fifo);
			es->tx_head = es->tx_tail;
			rc = -EINVAL;
			break;
		}
		rec = dgram_rec(d.len);
		if (rec > have)
			break; /* not all written yet */
		dst = d.addr ? d.addr : es->peer_ip;
		dport = d.addr ? d.port : es->peer_port;
		if (!dst || !dport) {
			post_error(a, q, m, -EDESTADDRREQ);
		} else if (!es->port && udp_bind_port(a, es, 0) < 0) {
			post_error(a, q, m, -EADDRINUSE);
		} else if (d.len + 28 > net_mtu(a->ns)) {
			/* No fragmentation: as a DF send, the app sees EMSGSIZE
			 * (SO_ERROR / its next call), not a silent loss. */
			store_rel((uint32_t *)&a->socks[sock_index(a, es)].error, EMSGSIZE);
			post_error(a, q, m, -EMSGSIZE);
		} else if ((p = net_alloc(a->ns)) != NULL) {
			uint8_t *dst_buf;

			mst_pkt_adj(p, 0);
			/* leave room for Ethernet + IP + UDP in front */
			p->data += 64;
			p->headroom = (uint16_t)(p->headroom + 64);
			p->tailroom = (uint16_t)(p->tailroom - 64);
			dst_buf = mst_pkt_append(p, (uint16_t)d.len);
			if (!dst_buf) {
				net_free(a->ns, p);
				post_error(a, q, m, -EMSGSIZE);
			} else {
				ring_out(fifo, a->tx_size, es->tx_head + DGRAM_HDR, dst_buf, d.len);
				(void)net_udp_output(a->ns, p, dst, es->port, dport, 0);
			}
		}
		es->tx_head += rec;
	}
	udp_sync(a, es);
	return rc;
}

bool eng_app_udp_input(void *table, struct mst_pkt *p, uint32_t src, uint32_t dst,
		       uint16_t dport, uint64_t now_ns)
{
	struct eng_udp_bind *b = &((struct eng_udp_bind *)table)[dport];
	struct eng_app *a = b->app;
	struct mst_shm_dgram d;
	struct esock *es;
	uint32_t len, rec;
	uint16_t sport;

	(void)dst;
	(void)now_ns;
	if (!a)
		return false;
	es = &a->es[b->sock];
	if (es->kind != ES_UDP || a->draining)
		return false;
	sport = (uint16_t)(p->data[0] << 8 | p->data[1]);
	/* A connected socket hears only its peer (as Linux). */
	if (es->peer_ip && (src != es->peer_ip || sport != es->peer_port))
		return false;
	len = p->len - 8u;
	rec = dgram_rec(len);
	if (rec > a->rx_size - (es->rx_tail - es->rx_head)) {
		MST_DROP(a->st, udp_rcvbuf_full);
		net_free(a->ns, p);
		return true;
	}
	memset(&d, 0, sizeof(d));
	d.len = len;
	d.addr = src;
	d.port = sport;
	ring_in(udp_rx_fifo(a, es), a->rx_size, es->rx_tail, &d, DGRAM_HDR);
	ring_in(udp_rx_fifo(a, es), a->rx_size, es->rx_tail + DGRAM_HDR, p->data + 8, len);
	es->rx_tail += rec;
	net_free(a->ns, p);
	udp_sync(a, es);
	return true;
}

/* ---- commands ------------------------------------------------------------ */

static int map_opt(uint64_t o, enum tcp_sockopt *out)
{
	switch (o) {
	case MST_OPT_NODELAY: *out = TCP_SO_NODELAY; return 0;
	case MST_OPT_KEEPALIVE: *out = TCP_SO_KEEPALIVE; return 0;
	case MST_OPT_KEEPIDLE: *out = TCP_SO_KEEPIDLE; return 0;
	case MST_OPT_KEEPINTVL: *out = TCP_SO_KEEPINTVL; return 0;
	case MST_OPT_KEEPCNT: *out = TCP_SO_KEEPCNT; return 0;
	case MST_OPT_LINGER0: *out = TCP_SO_LINGER0; return 0;
	case MST_OPT_MAXSEG: *out = TCP_SO_MAXSEG; return 0;
	case MST_OPT_ERROR: *out = TCP_SO_ERROR; return 0;
	case MST_OPT_RCVBUF: *out = TCP_SO_RCVBUF; return 0;
	case MST_OPT_SNDBUF: *out = TCP_SO_SNDBUF; return 0;
	}
	return -ENOPROTOOPT;
}

static void cmd_socket(struct eng_app *a, uint32_t q, const struct mst_shm_msg *m)
{
	struct esock *es;

	if (m->a == 2) {
		cmd_udp_socket(a, q, m);
		return;
	}
	if (m->a == MST_PONY_SOCK_TYPE) {
		cmd_pony_socket(a, q, m);
		return;
	}
	if (m->a != 1) {
		MST_DROP(a->st, app_bad_cmd);
		post_done(a, q, m, -EINVAL, 0, 0, 0);
		return;
	}
	es = sock_new(a, ES_NEW, q);
	post_done(a, q, m, es ? (int32_t)sock_index(a, es) : -EMFILE, 0, 0, 0);
}

static int cmd_bind(struct eng_app *a, struct esock *es, const struct mst_shm_msg *m)
{
	uint32_t ip = (uint32_t)m->b;

	if (es->kind != ES_NEW || es->port)
		return -EINVAL;
	if (m->a == 0 || m->a > 65535)
		return -EINVAL; /* no ephemeral bind yet */
	if (ip != 0 && ip != a->local_ip)
		return -EADDRNOTAVAIL;
	for (unsigned i = 0; i < a->n_socks; i++)
		if (a->es[i].kind != ES_FREE && a->es[i].port == m->a && &a->es[i] != es)
			return -EADDRINUSE;
	if (tcp_owner(a, (uint16_t)m->a)->app) {
		/* Another app's port (its own were checked above). */
		MST_DROP(a->st, app_port_in_use);
		return -EADDRINUSE;
	}
	tcp_owner(a, (uint16_t)m->a)->app = a;
	tcp_owner(a, (uint16_t)m->a)->sock = sock_index(a, es);
	es->port = (uint16_t)m->a;
	a->socks[sock_index(a, es)].local_port = es->port;
	return 0;
}

static int cmd_listen(struct eng_app *a, struct esock *es, const struct mst_shm_msg *m)
{
	int backlog = m->a > 65535 ? 65535 : (int)m->a;
	struct tcp_cb *l;
	int rc;

	if (es->kind == ES_LISTEN)
		return 0;
	if (es->kind != ES_NEW)
		return -EINVAL;
	if (!es->port)
		return -EDESTADDRREQ;
	rc = tcp_listen(a->ts, es->port, backlog, eng_app_sock_event, a, &a->fops, &l);
	if (rc)
		return rc;
	es->c = l;
	es->kind = ES_LISTEN;
	tcp_set_user(l, es);
	store_rel(&a->socks[sock_index(a, es)].state, MST_SOCK_LISTEN);
	return 0;
}

static void cmd_accept(struct eng_app *a, uint32_t q, struct esock *es, const struct mst_shm_msg *m)
{
	struct tcp_conn_info ci;
	struct esock *ns;
	struct tcp_cb *c;
	int rc;

	if (es->kind != ES_LISTEN) {
		post_done(a, q, m, -EINVAL, 0, 0, 0);
		return;
	}
	if (!tcp_accept_pending(a->ts, es->c)) {
		post_done(a, q, m, -EAGAIN, 0, 0, 0);
		return;
	}
	ns = sock_new(a, ES_CONN, q);
	if (!ns) {
		post_done(a, q, m, -EMFILE, 0, 0, 0);
		return;
	}
	rc = tcp_accept(a->ts, es->c, &c);
	if (rc) {
		sock_free(a, ns);
		post_done(a, q, m, rc, 0, 0, 0);
		return;
	}
	sock_bind_conn(a, ns, c);
	sock_sync(a, es, false); /* the listener's queue got shorter */
	tcp_get_info(c, &ci);
	post_done(a, q, m, (int32_t)sock_index(a, ns), 0, ci.raddr, ci.rport);
}

static int cmd_connect(struct eng_app *a, uint32_t q, struct esock *es, const struct mst_shm_msg *m)
{
	struct tcp_cb *c;
	int rc;

	if (es->kind == ES_CONN)
		return tcp_state_of(es->c) == TCP_SYN_SENT ? -EALREADY : -EISCONN;
	if (es->kind != ES_NEW)
		return -EINVAL;
	if (m->b == 0 || m->b > 65535)
		return -EINVAL;
	es->notify_qp = q;
	rc = tcp_connect(a->ts, (uint32_t)m->a, (uint16_t)m->b, es->port, eng_app_sock_event, a, &a->fops,
			 &c);
	if (rc)
		return rc;
	sock_bind_conn(a, es, c);
	return 0;
}

static int cmd_fifo(struct eng_app *a, struct esock *es, bool tx)
{
	struct mst_shm_sock *sh = &a->socks[sock_index(a, es)];
	uint32_t rh, rt, th, tt, v;
	int rc;

	if (es->kind != ES_CONN)
		return -ENOTCONN;
	tcp_fifo_state(es->c, &rh, &rt, &th, &tt);
	if (tx) {
		v = load_acq(&sh->tx_tail);
		if (v == tt)
			return 0;
		rc = tcp_tx_produced(a->ts, es->c, v - tt);
	} else {
		v = load_acq(&sh->rx_head);
		if (v == rh)
			return 0;
		rc = tcp_rx_consumed(a->ts, es->c, v - rh);
	}
	if (rc == -EINVAL)
		MST_DROP(a->st, app_bad_fifo);
	return rc;
}

static void run_cmd(struct eng_app *a, uint32_t q, const struct mst_shm_msg *m)
{
	struct esock *es;
	enum tcp_sockopt opt = TCP_SO_NODELAY;
	int rc, v;

	MST_COUNT(a->st, app_cmds);
	if (m->op == MST_CMD_SOCKET) {
		cmd_socket(a, q, m);
		return;
	}
	if (m->sock < 0 || (uint32_t)m->sock >= a->n_socks || a->es[m->sock].kind == ES_FREE) {
		MST_DROP(a->st, app_bad_sock);
		post_error(a, q, m, -EBADF);
		return;
	}
	es = &a->es[m->sock];
	if (es->kind == ES_PONY) {
		if (m->op == MST_CMD_CLOSE) {
			pony_sock_close(a, es);
			post_done(a, q, m, 0, 0, 0, 0);
		} else {
			pony_ep_cmd(a->pony, (uint32_t)m->sock, q, m);
		}
		return;
	}
	if (es->kind == ES_UDP) {
		switch (m->op) {
		case MST_CMD_BIND:
			if (es->port) {
				post_done(a, q, m, -EINVAL, 0, 0, 0);
				return;
			}
			if (m->b != 0 && (uint32_t)m->b != a->local_ip) {
				post_done(a, q, m, -EADDRNOTAVAIL, 0, 0, 0);
				return;
			}
			post_done(a, q, m, udp_bind_port(a, es, (uint32_t)(m->a > 65535 ? 70000 : m->a)), 0, 0, 0);
			return;
		case MST_CMD_CONNECT:
			if (!m->a && !m->b) { /* AF_UNSPEC: dissolve the association */
				es->peer_ip = 0;
				es->peer_port = 0;
				a->socks[m->sock].remote_ip = 0;
				a->socks[m->sock].remote_port = 0;
				post_done(a, q, m, 0, 0, 0, 0);
				return;
			}
			if (!m->a || !m->b || m->b > 65535) {
				post_done(a, q, m, -EINVAL, 0, 0, 0);
				return;
			}
			if (!es->port && (rc = udp_bind_port(a, es, 0)) < 0) {
				post_done(a, q, m, rc, 0, 0, 0);
				return;
			}
			es->peer_ip = (uint32_t)m->a;
			es->peer_port = (uint16_t)m->b;
			a->socks[m->sock].remote_ip = es->peer_ip;
			a->socks[m->sock].remote_port = es->peer_port;
			post_done(a, q, m, 0, 0, 0, 0);
			return;
		case MST_CMD_TX:
			rc = udp_tx(a, q, es, m);
			if (rc)
				post_error(a, q, m, rc);
			return;
		case MST_CMD_RX_DONE:
			rc = udp_rx_done(a, es);
			if (rc)
				post_error(a, q, m, rc);
			udp_sync(a, es);
			return;
		case MST_CMD_CLOSE:
			udp_release(a, es);
			sock_free(a, es);
			post_done(a, q, m, 0, 0, 0, 0);
			return;
		case MST_CMD_NOTIFY:
			es->notify_qp = q;
			es->last_ready = ~0u; /* force a READY */
			udp_sync(a, es);
			return;
		case MST_CMD_SETOPT:
		case MST_CMD_GETOPT:
			if (m->a == MST_OPT_RCVBUF || m->a == MST_OPT_SNDBUF)
				post_done(a, q, m, 0, m->a == MST_OPT_RCVBUF ? a->rx_size : a->tx_size, 0, 0);
			else
				post_done(a, q, m, m->op == MST_CMD_GETOPT ? 0 : 0, 0, 0, 0); /* accepted, no effect */
			return;
		default:
			post_done(a, q, m, -EOPNOTSUPP, 0, 0, 0);
			return;
		}
	}
	switch (m->op) {
	case MST_CMD_BIND:
		post_done(a, q, m, cmd_bind(a, es, m), 0, 0, 0);
		return;
	case MST_CMD_LISTEN:
		post_done(a, q, m, cmd_listen(a, es, m), 0, 0, 0);
		return;
	case MST_CMD_ACCEPT:
		cmd_accept(a, q, es, m);
		return;
	case MST_CMD_CONNECT:
		post_done(a, q, m, cmd_connect(a, q, es, m), 0, 0, 0);
		return;
	case MST_CMD_TX:
	case MST_CMD_RX_DONE:
		rc = cmd_fifo(a, es, m->op == MST_CMD_TX);
		if (rc)
			post_error(a, q, m, rc);
		if (es->c)
			sock_sync(a, es, false);
		return;
	case MST_CMD_SHUTDOWN:
		if (es->kind != ES_CONN)
			rc = -ENOTCONN;
		else if (m->a > SHUT_RDWR)
			rc = -EINVAL;
		else
			rc = tcp_shutdown(a->ts, es->c, (int)m->a);
		if (es->c)
			sock_sync(a, es, false);
		post_done(a, q, m, rc, 0, 0, 0);
		return;
	case MST_CMD_CLOSE:
		if (es->c) {
			struct tcp_cb *c = es->c;

			tcp_set_user(c, NULL);
			es->c = NULL;
			tcp_close(a->ts, c); /* the connection finishes on its own */
		}
		sock_free(a, es);
		post_done(a, q, m, 0, 0, 0, 0);
		return;
	case MST_CMD_SETOPT:
		if (m->a == MST_OPT_REUSEADDR) {
			post_done(a, q, m, 0, 0, 0, 0);
			return;
		}
		rc = map_opt(m->a, &opt);
		if (rc == 0 && !es->c)
			rc = -ENOTCONN; /* options live on the connection */
		if (rc == 0)
			rc = tcp_setopt(a->ts, es->c, opt, (int)m->b);
		post_done(a, q, m, rc, 0, 0, 0);
		return;
	case MST_CMD_GETOPT:
		v = 0;
		if ((m->a == MST_OPT_RCVBUF || m->a == MST_OPT_SNDBUF) && !es->c) {
			post_done(a, q, m, 0, m->a == MST_OPT_RCVBUF ? a->rx_size : a->tx_size, 0, 0);
			return;
		}
		if (m->a == MST_OPT_REUSEADDR) {
			post_done(a, q, m, 0, 1, 0, 0);
			return;
		}
		rc = map_opt(m->a, &opt);
		if (rc == 0 && !es->c) {
			post_done(a, q, m, 0, 0, 0, 0); /* defaults before connect */
			return;
		}
		if (rc == 0)
			rc = tcp_getopt(a->ts, es->c, opt, &v);
		if (opt == TCP_SO_ERROR)
			sock_sync(a, es, false); /* the shared copy of the error too */
		post_done(a, q, m, rc, (uint64_t)(int64_t)v, 0, 0);
		return;
	case MST_CMD_NOTIFY:
		es->notify_qp = q;
		sock_sync(a, es, true);
		return;
	}
	MST_DROP(a->st, app_bad_cmd);
	post_error(a, q, m, -EOPNOTSUPP);
}

int eng_app_poll(struct eng_app *a, uint64_t now_ns)
{
	int done = 0;

	(void)now_ns;
	if (a->draining)
		return 0;
	for (uint32_t q = 0; q < a->n_qps && done < APP_CMD_BUDGET; q++) {
		struct mst_shm_ring *r = &a->qps[q].cmd;
		uint32_t cons = a->cmd_cons[q];
		uint32_t prod = load_acq(&r->prod);
		uint32_t avail = prod - cons;

		if (!avail)
			continue;
		if (avail > MST_SHM_RING_SLOTS) {
			/* Impossible fill level: the app wrote garbage. Skip it. */
			MST_DROP(a->st, app_bad_ring);
			a->cmd_cons[q] = prod;
			store_rel(&r->cons, prod);
			post_error(a, q, NULL, -EPROTO);
			continue;
		}
		while (avail && done < APP_CMD_BUDGET) {
			struct mst_shm_msg m;

			/* A command's completion must fit in the event ring: if
			 * the app does not drain it, stop taking its commands
			 * (backpressure) rather than drop a completion. */
			uint32_t fill = a->evt_prod[q] - load_acq(&a->qps[q].evt.cons);

			if (fill <= MST_SHM_RING_SLOTS && fill + 8 > MST_SHM_RING_SLOTS)
				break;
			avail--;

			/* One copy: the app may rewrite the slot meanwhile. */
			memcpy(&m, &r->slots[cons & (MST_SHM_RING_SLOTS - 1)], sizeof(m));
			cons++;
			run_cmd(a, q, &m);
			done++;
		}
		a->cmd_cons[q] = cons;
		store_rel(&r->cons, cons);
	}
	return done;
}

/* ---- attach / detach ------------------------------------------------------ */


struct eng_app *eng_app_attach(struct tcp_stack *ts, struct net_stack *ns,
			       struct eng_udp_bind *udp, struct eng_pony *py, struct mst_stats *st,
			       const struct mst_app *app, uint32_t rx_size, uint32_t tx_size)
{
	const struct mst_shm_hdr *h = app->base;
	struct eng_app *a;
	uint64_t qp_end, sock_end;

	/* The daemon wrote this header before the app got the segment; still
	 * check it describes a layout that fits. */
	if (app->len < sizeof(*h) || h->magic != MST_SHM_MAGIC || h->version != MST_SHM_VERSION ||
	    h->n_qps == 0 || h->n_qps > MST_SHM_MAX_QPS || h->n_qps != app->n_eventfds ||
	    h->n_socks == 0 || h->n_socks > MST_SHM_MAX_SOCKS) {
		errno = EINVAL;
		return NULL;
	}
	qp_end = h->qp_off + (uint64_t)h->n_qps * sizeof(struct mst_shm_qp);
	sock_end = h->sock_off + (uint64_t)h->n_socks * sizeof(struct mst_shm_sock);
	if (qp_end > app->len || sock_end > app->len || h->fifo_off + h->fifo_size > app->len ||
	    h->pony_off > app->len || h->pony_size > app->len - h->pony_off ||
	    h->qp_off % MST_SHM_CACHELINE || h->sock_off % MST_SHM_CACHELINE) {
		errno = EINVAL;
		return NULL;
	}
	a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	a->id = app->id;
	a->ts = ts;
	a->ns = ns;
	a->udp = udp;
	a->st = st;
	a->base = app->base;
	a->len = app->len;
	a->n_qps = h->n_qps;
	a->n_socks = h->n_socks;
	a->qps = (struct mst_shm_qp *)(a->base + h->qp_off);
	a->socks = (struct mst_shm_sock *)(a->base + h->sock_off);
	a->fifo_off = h->fifo_off;
	a->fifo_size = h->fifo_size;
	a->local_ip = h->local_ip;
	a->rx_size = rx_size;
	a->tx_size = tx_size;
	a->slot_size = rx_size + tx_size;
	a->n_slots = (uint32_t)(a->fifo_size / a->slot_size);
	memcpy(a->efd, app->eventfds, sizeof(int) * a->n_qps);
	for (unsigned q = 0; q < a->n_qps; q++) {
		/* Start from what is in the rings now (zero for a new segment). */
		a->cmd_cons[q] = __atomic_load_n(&a->qps[q].cmd.cons, __ATOMIC_RELAXED);
		a->evt_prod[q] = __atomic_load_n(&a->qps[q].evt.prod, __ATOMIC_RELAXED);
	}
	a->fops.alloc = slot_alloc;
	a->fops.free = slot_free;
	a->fops.ctx = a;
	a->es = calloc(a->n_socks, sizeof(*a->es));
	a->free_socks = calloc(a->n_socks, sizeof(*a->free_socks));
	a->free_slots = calloc(a->n_slots ? a->n_slots : 1, sizeof(*a->free_slots));
	a->slot_conn = calloc(a->n_slots ? a->n_slots : 1, sizeof(*a->slot_conn));
	a->pony = pony_app_attach(py, a, a->base, h->pony_off, h->pony_size, st);
	if (!a->es || !a->free_socks || !a->free_slots || !a->slot_conn ||
	    (py && h->pony_size && !a->pony)) {
		eng_app_free(a);
		errno = ENOMEM;
		return NULL;
	}
	for (uint32_t i = a->n_socks; i-- > 0;)
		a->free_socks[a->n_free_socks++] = i;
	for (uint32_t i = a->n_slots; i-- > 0;)
		a->free_slots[a->n_free_slots++] = i;
	MST_COUNT(st, app_attaches);
	return a;
}

void eng_app_free(struct eng_app *a)
{
	pony_app_detach(a->pony);
	a->pony = NULL;
	if (a->own_mapping)
		munmap(a->base, a->len);
	free(a->es);
	free(a->free_socks);
	free(a->free_slots);
	free(a->slot_conn);
	free(a);
}

static bool slots_all_free(const struct eng_app *a)
{
	return a->n_free_slots == a->n_slots;
}

int eng_app_detach(struct eng_app *a)
{
	if (!a)
		return 0;
	MST_COUNT(a->st, app_detaches);
	if (!a->es || !a->slot_conn) { /* failed attach */
		eng_app_free(a);
		return 0;
	}
	a->draining = true;
	tcp_ports_release_all(a); /* free for the next app now, not after the drain */
	/* Listeners first: closing one resets its unaccepted children. */
	for (unsigned i = 0; i < a->n_socks; i++) {
		struct esock *es = &a->es[i];

		if (es->kind == ES_LISTEN && es->c) {
			tcp_set_user(es->c, NULL);
			tcp_close(a->ts, es->c);
			es->c = NULL;
		}
	}
	/* Connections the app still held: it is gone, the peer gets RST. */
	for (unsigned i = 0; i < a->n_socks; i++) {
		struct esock *es = &a->es[i];

		if (es->kind == ES_UDP) {
			udp_release(a, es);
			es->kind = ES_FREE;
			continue;
		}
		if (es->kind == ES_PONY) {
			pony_sock_close(a, es);
			continue;
		}

		if (es->kind == ES_CONN && es->c) {
			tcp_set_user(es->c, NULL);
			tcp_set_close_reason(es->c, TCP_CLOSE_app_died);
			tcp_abort(a->ts, es->c);
			es->c = NULL;
		}
	}
	/* Connections it had closed keep sending what it wrote (as a Linux
	 * process that exits after close()); only TIME_WAIT, which has
	 * nothing left to do, goes now. */
	for (uint32_t s = 0; s < a->n_slots; s++)
		if (a->slot_conn[s] && tcp_state_of(a->slot_conn[s]) == TCP_TIME_WAIT)
			tcp_abort(a->ts, a->slot_conn[s]);
	if (slots_all_free(a)) {
		eng_app_free(a);
		return 0;
	}
	return 1; /* draining: eng_app_reap() finishes it */
}

void eng_app_drain(struct eng_app *a, uint64_t now_ns, uint64_t deadline_ns)
{
	a->own_mapping = true;
	a->drain_deadline_ns = now_ns + deadline_ns;
}

void eng_app_drain_within(struct eng_app *a, uint64_t deadline_ns)
{
	if (deadline_ns < a->drain_deadline_ns)
		a->drain_deadline_ns = deadline_ns;
}

bool eng_app_reap(struct eng_app *a, uint64_t now_ns)
{
	if (!slots_all_free(a) && now_ns >= a->drain_deadline_ns) {
		/* The peer would not let them finish: reset what is left. */
		for (uint32_t s = 0; s < a->n_slots; s++)
			if (a->slot_conn[s]) {
				MST_COUNT(a->st, app_drain_resets);
				tcp_abort(a->ts, a->slot_conn[s]);
			}
	}
	if (!slots_all_free(a))
		return false;
	eng_app_free(a);
	return true;
}

bool eng_app_may_sleep(struct eng_app *a)
{
	struct mst_shm_hdr *h = (struct mst_shm_hdr *)a->base;

	if (a->draining)
		return true;
	__atomic_store_n(&h->engine_sleeping, 1, __ATOMIC_RELAXED);
	/* Pairs with the app's fence between publishing a command and
	 * reading engine_sleeping: it rings, or we see its command here. */
	atomic_thread_fence(memory_order_seq_cst);
	for (unsigned q = 0; q < a->n_qps; q++)
		if (__atomic_load_n(&a->qps[q].cmd.prod, __ATOMIC_RELAXED) != a->cmd_cons[q])
			return false;
	return true;
}

void eng_app_woke(struct eng_app *a)
{
	if (!a->draining)
		__atomic_store_n(&((struct mst_shm_hdr *)a->base)->engine_sleeping, 0,
				 __ATOMIC_RELAXED);
}

int eng_app_id(const struct eng_app *a)
{
	return a->id;
}
