/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libmustang against a fake engine: the test lays out a segment per
 * <mustang/shm_abi.h> in a memfd, attaches the library to it through
 * lib_attach_fds() (client/priv.h), and runs a thread that plays the
 * engine: it consumes commands, answers DONE, echoes TX bytes back into RX
 * after a random delay, posts READY to the NOTIFY qp and signals eventfds
 * per the wake protocol. Datagram sockets (SOCKET a = 2) echo records: a
 * datagram sent to A:P comes back from A:P (the connected peer for 0/0),
 * one record at a time, only while it fits in RX (no drops: tests stay
 * deterministic); E.paused stops the pump.
 *
 * Pony endpoints (SOCKET a = 3) play the engine of <mustang/shm_abi.h>:
 * PONY_REG is a bump allocator in the low half of the Pony arena;
 * PONY_SEND / PONY_READ are queued (no DONE) and the pump completes them
 * in order, only while their records fit in the RX ring: a SEND gives a
 * SEND record (the command's cookie) and a MSG "echo" from (peer, dst
 * svc) whose bytes the engine copied into the high half of the arena
 * (its receive buffers: a ring, and no test has 8 MiB of echoes pending)
 * before it published the SEND record, as a real engine does: from then
 * on the library may reuse its copy buffer. The engine checks the op
 * budget (ops queued + SEND/READ records the library has not consumed
 * <= records / 2) and counts violations (ERROR -ENOBUFS, no record).
 *
 * The rules follow the real engine (engines/app.c run_cmd(), app_pony.c
 * pony_ep_cmd()/cmd_op(), issue 20), so the library is tested against
 * what mustangd answers:
 *  - a full event ring drops the event and bumps evt_overflow (no wait);
 *    READYs leave the last EVT_RESERVE slots to DONE/ERROR;
 *  - SOCKET with no free index: -EMFILE; a bad socket index: ERROR -EBADF
 *    before anything else; an unknown command: ERROR -EOPNOTSUPP;
 *  - TCP BIND: no port 0 (EINVAL), EADDRNOTAVAIL for an address not ours,
 *    EADDRINUSE, EINVAL when bound; LISTEN needs a port (EDESTADDRREQ);
 *    ACCEPT: EINVAL unless listening, EAGAIN with nothing queued, else a
 *    new ESTABLISHED socket (tests queue one with E.incoming[]; the
 *    listener's accept_queue and READY IN move as sock_sync() does);
 *  - TCP CONNECT: DONE 0 at once in SYN_SENT, the handshake ends later in
 *    the pump (port 1: refused); EALREADY / EISCONN / EINVAL as mustangd;
 *  - TCP SETOPT before a connection: ENOTCONN (the library keeps the
 *    option and applies it after CONNECT); GETOPT before: 0; unknown
 *    option: ENOPROTOOPT; SHUTDOWN when not connected: ENOTCONN;
 *  - UDP: BIND/CONNECT rules of run_cmd(), LISTEN/ACCEPT/SHUTDOWN DONE
 *    -EOPNOTSUPP;
 *  - Pony: BIND (service 0 EINVAL, in use EADDRINUSE, bound EINVAL),
 *    SEND/READ unbound: ERROR -EDESTADDRREQ; an op's record carries
 *    EINVAL (peer/service/len 0), EMSGSIZE or EFAULT (not inside ONE of
 *    the endpoint's registered regions); REG: EINVAL, ENOSPC past 64
 *    regions, ENOMEM; UNREG of another endpoint's key: ENOENT.
 * Left as it was: datagrams echo only while they fit in RX (mustangd drops
 * and counts udp_rcvbuf_full: tests/integration/app_limits.sh).
 */

#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "fifo.h"
#include "priv.h"
#include "ring.h"

#define N_QPS 4u
#define N_SOCKS 32u
#define FIFO_SZ 4096u
#define PONY_SZ (16u << 20)        /* arena: regions below PONY_REG_SZ, echoes above */
#define PONY_REG_SZ (8u << 20)
#define PONY_MAX_MSG (256u << 10)  /* copy buffer: 2 x this = 512 KiB */
#define PREC ((uint32_t)sizeof(struct mst_shm_pony_rec))
#define PONY_BUDGET (FIFO_SZ / PREC / 2) /* 32 ops per endpoint */
#define PQ_CAP 256u
#define PEER 0x0200000au           /* 10.0.0.2, network order */

/* Engine side of one Pony endpoint. */
struct eng_pony {
	int on;
	uint16_t svc;
	struct mst_shm_msg q[PQ_CAP]; /* SEND/READ commands not completed yet */
	uint32_t qh, qt;
	uint32_t rec_at[PQ_CAP];      /* rx_tail of each SEND/READ record not consumed */
	uint32_t rh, rt;
	struct {                      /* regions, as app_pony.c's reg[] */
		uint64_t off, len;    /* bytes from pony_off */
		uint32_t key;
		int used;
	} reg[64];
};

static struct {
	uint8_t *base;
	size_t size;
	struct mst_shm_hdr *hdr;
	struct mst_shm_qp *qps;
	struct mst_shm_sock *socks;
	int efd[N_QPS];
	int ctl[2];
	pthread_t th;
	volatile int stop;
	int owner[N_SOCKS];        /* qp that gets READY */
	int used[N_SOCKS];
	int64_t due[N_SOCKS];      /* echo not before (ns) */
	int max_delay_us;
	unsigned seed;
	uint64_t signals, notifies;
	int dgram[N_SOCKS];
	volatile int paused;       /* pump stopped (commands still served) */
	volatile int hold_cmds;    /* commands left in their rings */
	uint64_t dgrams, bad_recs;
	volatile uint64_t loops;   /* engine loop iterations (pause handshake) */
	struct eng_pony pony[N_SOCKS];
	uint64_t pony_reg_next, pony_rx_pos;
	uint32_t pony_key, pony_buf;
	volatile uint64_t pony_last_key;
	volatile uint64_t pony_read_key; /* e of the last PONY_READ */
	volatile uint64_t pony_done, pony_msgs, pony_releases, pony_unregs;
	volatile uint64_t pony_overbudget, pony_bad_cmds;
	volatile int pony_reg_lie;  /* PONY_REG answers an offset past the arena */
	volatile uint64_t setopt_a, setopt_b, setopts; /* the last SETOPT seen, how many */
	/* TCP rules of engines/app.c */
	int conn[N_SOCKS];         /* 0 none, 1 SYN_SENT (pump completes it), 2 up */
	int listening[N_SOCKS];
	uint64_t opt_val[N_SOCKS][16]; /* last SETOPT per option (on a connection) */
	uint32_t opt_sets[N_SOCKS];    /* SETOPTs the engine accepted */
	volatile uint32_t incoming[N_SOCKS]; /* listener: connections to offer (tests set) */
	volatile uint64_t evt_drops;   /* events dropped on a full ring, as mustangd */
} E;

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Engine side of the wake protocol: publish (release in ring_push), full
 * fence, read wake, signal. A full ring drops the event and bumps
 * evt_overflow, as mustangd's post() does (the library rescans); READYs
 * leave the last EVT_RESERVE slots to DONE/ERROR, as there. */
#define EVT_RESERVE 32u /* engines/app.c APP_EVT_RESERVE: slots only DONE/ERROR use */

static void eng_push(int qp, const struct mst_shm_msg *m)
{
	const struct mst_shm_ring *r = &E.qps[qp].evt;
	bool reserved = m->op != MST_EV_DONE && m->op != MST_EV_ERROR &&
			r->prod - __atomic_load_n(&r->cons, __ATOMIC_ACQUIRE) >=
				MST_SHM_RING_SLOTS - EVT_RESERVE;

	if (reserved || ring_push(&E.qps[qp].evt, m) < 0) {
		__atomic_fetch_add(&E.qps[qp].evt_overflow, 1, __ATOMIC_RELEASE);
		E.evt_drops++;
	}
}

static void eng_post(int qp, struct mst_shm_msg *m)
{
	eng_push(qp, m);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (__atomic_load_n(&E.qps[qp].wake, __ATOMIC_RELAXED)) {
		uint64_t one = 1;

		E.signals++;
		if (write(E.efd[qp], &one, sizeof(one)) < 0)
			abort();
	}
}

static void eng_error(int qp, const struct mst_shm_msg *c, int32_t err)
{
	struct mst_shm_msg r = { .op = MST_EV_ERROR, .sock = c->sock, .seq = c->seq,
				 .result = err, .a = c->op };

	eng_post(qp, &r);
}

static void eng_ready(int s)
{
	struct mst_shm_msg m = { .op = MST_EV_READY, .sock = s };

	m.a = __atomic_load_n(&E.socks[s].ready, __ATOMIC_RELAXED);
	eng_post(E.owner[s], &m);
}

static uint32_t rec_size(uint32_t len)
{
	return (uint32_t)(sizeof(struct mst_shm_dgram) + len + 7) & ~7u;
}

/* Datagram socket: move whole records from TX to RX while they fit. */
static void eng_echo_dgram(int s)
{
	struct mst_shm_sock *k = &E.socks[s];
	uint32_t tail = __atomic_load_n(&k->tx_tail, __ATOMIC_ACQUIRE); /* F3 */
	uint32_t rxh = __atomic_load_n(&k->rx_head, __ATOMIC_ACQUIRE);  /* F2 */
	uint8_t buf[FIFO_SZ];
	int moved = 0;

	if (now_ns() < E.due[s])
		return;
	while (tail != k->tx_head) {
		struct mst_shm_dgram h;
		uint32_t pend = tail - k->tx_head, room = FIFO_SZ - (k->rx_tail - rxh), need;

		if (pend < sizeof(h) || pend > FIFO_SZ) {
			E.bad_recs++;
			break;
		}
		fifo_copy_out(E.base + k->tx_off, FIFO_SZ, k->tx_head, &h, sizeof(h));
		need = rec_size(h.len);
		if (h.len > MST_SHM_DGRAM_MAX || need > pend) {
			E.bad_recs++;
			break;
		}
		if (need > room)
			break; /* wait for the reader */
		fifo_copy_out(E.base + k->tx_off, FIFO_SZ, k->tx_head, buf, need);
		if (!h.addr && !h.port) {
			h.addr = k->remote_ip;
			h.port = k->remote_port;
		}
		memcpy(buf, &h, sizeof(h));
		fifo_copy_in(E.base + k->rx_off, FIFO_SZ, k->rx_tail, buf, need);
		__atomic_store_n(&k->tx_head, k->tx_head + need, __ATOMIC_RELEASE); /* F4 */
		__atomic_store_n(&k->rx_tail, k->rx_tail + need, __ATOMIC_RELEASE); /* F1 */
		E.dgrams++;
		moved = 1;
		if (E.max_delay_us)
			break; /* one per delay */
	}
	if (!moved)
		return;
	__atomic_store_n(&k->ready, MST_READY_IN | MST_READY_OUT, __ATOMIC_RELEASE);
	eng_ready(s);
	E.due[s] = now_ns() + (E.max_delay_us ? (rand_r(&E.seed) % E.max_delay_us) * 1000 : 0);
}

/* Move TX bytes into RX (loopback echo) as far as RX space allows. */
static void eng_echo(int s)
{
	struct mst_shm_sock *k = &E.socks[s];
	uint32_t tail = __atomic_load_n(&k->tx_tail, __ATOMIC_ACQUIRE); /* F3 */
	uint32_t rxh = __atomic_load_n(&k->rx_head, __ATOMIC_ACQUIRE);  /* F2 */
	uint32_t pend = tail - k->tx_head, room = FIFO_SZ - (k->rx_tail - rxh), n;
	uint8_t buf[FIFO_SZ];

	n = pend < room ? pend : room;
	if (!n || now_ns() < E.due[s])
		return;
	fifo_copy_out(E.base + k->tx_off, FIFO_SZ, k->tx_head, buf, n);
	fifo_copy_in(E.base + k->rx_off, FIFO_SZ, k->rx_tail, buf, n);
	__atomic_store_n(&k->tx_head, k->tx_head + n, __ATOMIC_RELEASE); /* F4 */
	__atomic_store_n(&k->rx_tail, k->rx_tail + n, __ATOMIC_RELEASE); /* F1 */
	__atomic_store_n(&k->ready, MST_READY_IN | MST_READY_OUT, __ATOMIC_RELEASE);
	eng_ready(s);
	E.due[s] = now_ns() + (E.max_delay_us ? (rand_r(&E.seed) % E.max_delay_us) * 1000 : 0);
}

/* ---- Pony ---------------------------------------------------------------- */

/* Ops the library has outstanding on s: queued here, or completed by a
 * record it has not consumed (rx_head not past it). */
static uint32_t pony_outstanding(int s)
{
	struct eng_pony *P = &E.pony[s];
	struct mst_shm_sock *k = &E.socks[s];
	uint32_t head = __atomic_load_n(&k->rx_head, __ATOMIC_ACQUIRE), tail = k->rx_tail;

	while (P->rh != P->rt && P->rec_at[P->rh % PQ_CAP] - head >= tail - head)
		P->rh++;
	return (P->qt - P->qh) + (P->rt - P->rh);
}

static void pony_put(struct mst_shm_sock *k, const struct mst_shm_pony_rec *r)
{
	memcpy(E.base + k->rx_off + (k->rx_tail & (FIFO_SZ - 1)), r, PREC);
	__atomic_store_n(&k->rx_tail, k->rx_tail + PREC, __ATOMIC_RELEASE);
}

/* An op's arguments, in app_pony.c cmd_op()'s order: peer and service,
 * length, then [off, off + len) inside ONE of the endpoint's regions. */
static int32_t pony_op_check(const struct eng_pony *P, const struct mst_shm_msg *c, uint64_t off,
			     uint32_t len)
{
	if ((c->c >> 32) == 0 || (c->c >> 32) > 65535 || !(uint32_t)c->c)
		return -EINVAL;
	if (len == 0 || len > PONY_MAX_MSG)
		return len ? -EMSGSIZE : -EINVAL;
	for (unsigned i = 0; i < 64; i++)
		if (P->reg[i].used && off >= P->reg[i].off && len <= P->reg[i].len &&
		    off - P->reg[i].off <= P->reg[i].len - len)
			return 0;
	return -EFAULT;
}

/* Complete queued ops in order while their records fit. */
static void eng_pony_pump(int s)
{
	struct eng_pony *P = &E.pony[s];
	struct mst_shm_sock *k = &E.socks[s];
	int wrote = 0;

	while (P->qh != P->qt) {
		const struct mst_shm_msg *c = &P->q[P->qh % PQ_CAP];
		uint32_t used = k->rx_tail - __atomic_load_n(&k->rx_head, __ATOMIC_ACQUIRE);
		bool send = c->op == MST_CMD_PONY_SEND;
		uint64_t off = send ? c->a : (uint32_t)c->a;
		uint32_t len = (uint32_t)c->b;
		int32_t err = pony_op_check(P, c, off, len);
		bool ok = err == 0;
		struct mst_shm_pony_rec r = {
			.kind = send ? MST_PONY_REC_SEND : MST_PONY_REC_READ, .src_svc = P->svc,
			.status = err, .peer = (uint32_t)c->c,
			.dst_svc = (uint16_t)(c->c >> 32), .stream = send ? (uint32_t)(c->b >> 32) : 0,
			.len = len, .cookie = c->d,
		};
		uint64_t at = 0;

		if (used > FIFO_SZ || FIFO_SZ - used < (send && ok ? 2 : 1) * PREC)
			break; /* wait for the library to consume */
		if (send && ok) {
			/* The echo's bytes, copied BEFORE the SEND record is
			 * published: from then on the library may reuse them. */
			if (E.pony_rx_pos + len > PONY_SZ - PONY_REG_SZ)
				E.pony_rx_pos = 0;
			at = PONY_REG_SZ + E.pony_rx_pos;
			E.pony_rx_pos += (len + 63) & ~63u;
			memcpy(E.base + E.hdr->pony_off + at, E.base + E.hdr->pony_off + off, len);
		}
		P->rec_at[P->rt++ % PQ_CAP] = k->rx_tail;
		pony_put(k, &r);
		if (send && ok) { /* the echo comes back from (peer, dst svc) */
			r = (struct mst_shm_pony_rec){
				.kind = MST_PONY_REC_MSG, .src_svc = (uint16_t)(c->c >> 32),
				.peer = (uint32_t)c->c, .dst_svc = P->svc,
				.stream = (uint32_t)(c->b >> 32), .len = len, .off = at,
				.buf = ++E.pony_buf,
			};
			pony_put(k, &r);
			E.pony_msgs++;
		}
		P->qh++;
		E.pony_done++;
		wrote = 1;
	}
	if (!wrote)
		return;
	__atomic_store_n(&k->ready, MST_READY_IN | MST_READY_OUT, __ATOMIC_RELEASE);
	eng_ready(s);
}

/* Pony endpoint commands as app_pony.c's pony_ep_cmd(); true when r is
 * to be posted. */
static bool eng_pony_cmd(int qp, int s, const struct mst_shm_msg *c, struct mst_shm_msg *r)
{
	struct eng_pony *P = &E.pony[s];
	unsigned i;

	switch (c->op) {
	case MST_CMD_BIND:
		if (P->svc || c->a == 0 || c->a > 65535) {
			r->result = -EINVAL;
			return true;
		}
		for (unsigned o = 0; o < N_SOCKS; o++)
			if (o != (unsigned)s && E.used[o] && E.pony[o].on && E.pony[o].svc == c->a)
				r->result = -EADDRINUSE;
		if (!r->result) {
			P->svc = (uint16_t)c->a;
			E.socks[s].local_port = P->svc;
		}
		return true;
	case MST_CMD_PONY_SEND:
	case MST_CMD_PONY_READ:
		if (!P->svc || pony_outstanding(s) >= PONY_BUDGET || P->qt - P->qh >= PQ_CAP) {
			/* Unbound, or over the app's half of the ring: no record. */
			E.pony_overbudget += P->svc != 0;
			eng_error(qp, c, P->svc ? -ENOBUFS : -EDESTADDRREQ);
			return false;
		}
		if (c->op == MST_CMD_PONY_READ)
			E.pony_read_key = c->e;
		P->q[P->qt++ % PQ_CAP] = *c;
		return false; /* the pump answers with records */
	case MST_CMD_PONY_RELEASE:
		E.pony_releases++;
		return false;
	case MST_CMD_PONY_REG:
		if (!c->a || c->a > PONY_SZ || (c->b & ~(uint64_t)MST_PONY_REG_REMOTE_READ)) {
			r->result = -EINVAL;
			return true;
		}
		for (i = 0; i < 64 && P->reg[i].used; i++)
			;
		if (i == 64) {
			r->result = -ENOSPC;
			return true;
		}
		if (c->a > PONY_REG_SZ - E.pony_reg_next) {
			r->result = -ENOMEM;
			return true;
		}
		r->a = ++E.pony_key | 0xa5a5a5a5ull << 32; /* keys use all 64 bits */
		r->b = E.pony_reg_lie ? PONY_SZ - c->a / 2 : E.pony_reg_next;
		if (!E.pony_reg_lie)
			P->reg[i] = (typeof(P->reg[i])){ .off = r->b, .len = c->a,
							 .key = (uint32_t)r->a, .used = 1 };
		E.pony_reg_next += (c->a + 63) & ~(uint64_t)63;
		E.pony_last_key = r->a;
		return true;
	case MST_CMD_PONY_UNREG:
		/* Keys are 64 bits (engine: random above the index); the
		 * fake's carry a fixed high half. */
		r->result = -ENOENT;
		for (i = 0; c->a >> 32 == 0xa5a5a5a5u && i < 64; i++)
			if (P->reg[i].used && P->reg[i].key == (uint32_t)c->a) {
				P->reg[i].used = 0;
				r->result = 0;
			}
		E.pony_unregs++;
		return true;
	case MST_CMD_SETOPT:
	case MST_CMD_GETOPT:
		if (c->a == MST_OPT_RCVBUF)
			r->a = FIFO_SZ;
		return true;
	case MST_CMD_RX_DONE:
		return false;
	}
	E.pony_bad_cmds++;
	eng_error(qp, c, -EOPNOTSUPP);
	return false;
}

/* SOCKET a = 1 (TCP), 2 (UDP), 3 (Pony) in free index s. */
static int32_t eng_socket(int qp, int s, const struct mst_shm_msg *c)
{
	struct mst_shm_sock *k = &E.socks[s];
	uint32_t g = k->gen + 1;

	E.used[s] = 1;
	E.dgram[s] = c->a == 2;
	E.conn[s] = E.listening[s] = 0;
	E.incoming[s] = 0;
	E.opt_sets[s] = 0;
	memset(E.opt_val[s], 0, sizeof(E.opt_val[s]));
	memset(&E.pony[s], 0, sizeof(E.pony[s]));
	E.pony[s].on = c->a == MST_PONY_SOCK_TYPE;
	E.owner[s] = qp;
	E.due[s] = 0;
	memset(k, 0, sizeof(*k));
	k->gen = g;
	k->state = MST_SOCK_NEW;
	k->rx_off = E.hdr->fifo_off + (uint64_t)s * 2 * FIFO_SZ;
	k->tx_off = k->rx_off + FIFO_SZ;
	k->rx_size = k->tx_size = FIFO_SZ;
	/* Start counters near 2^32 so the library's wrap is used. */
	k->rx_head = k->rx_tail = k->tx_head = k->tx_tail = UINT32_MAX - 1000;
	if (E.pony[s].on) { /* whole records, 20 before the wrap */
		k->rx_head = k->rx_tail = 0u - 20 * PREC;
		k->state = MST_SOCK_ESTABLISHED; /* as mustangd */
	}
	return s;
}

/* A port another socket of the same kind holds (mustangd: TCP ports per
 * app, UDP ports per engine). */
static bool port_taken(int s, uint64_t port)
{
	for (unsigned o = 0; o < N_SOCKS; o++)
		if (o != (unsigned)s && E.used[o] && E.dgram[o] == E.dgram[s] && !E.pony[o].on &&
		    E.socks[o].local_port == port)
			return true;
	return false;
}

/* BIND as cmd_bind() / the UDP case of run_cmd() in engines/app.c. */
static int32_t eng_bind(int s, const struct mst_shm_msg *c)
{
	uint32_t ip = (uint32_t)c->b;

	if (E.socks[s].local_port || E.listening[s] || E.conn[s])
		return -EINVAL;
	if (!E.dgram[s] && (c->a == 0 || c->a > 65535))
		return -EINVAL; /* TCP: no ephemeral bind */
	if (ip != 0 && ip != E.hdr->local_ip)
		return -EADDRNOTAVAIL;
	if (c->a > 65535)
		return -EINVAL;
	if (c->a && port_taken(s, c->a))
		return -EADDRINUSE;
	/* UDP port 0: an ephemeral one, published before the DONE. */
	E.socks[s].local_port = c->a ? (uint16_t)c->a : (uint16_t)(50000 + s);
	E.socks[s].local_ip = ip;
	return 0;
}

/* TCP CONNECT as cmd_connect(): DONE 0 at once in SYN_SENT; the pump
 * finishes the handshake later (eng_handshake), like a real peer. */
static int32_t eng_connect_tcp(int qp, int s, const struct mst_shm_msg *c)
{
	if (E.conn[s])
		return E.conn[s] == 1 ? -EALREADY : -EISCONN;
	if (E.listening[s])
		return -EINVAL;
	if (c->b == 0 || c->b > 65535)
		return -EINVAL;
	E.socks[s].remote_ip = (uint32_t)c->a;
	E.socks[s].remote_port = (uint16_t)c->b;
	if (!E.socks[s].local_port)
		E.socks[s].local_port = 40000;
	E.owner[s] = qp;
	E.conn[s] = 1;
	__atomic_store_n(&E.socks[s].state, MST_SOCK_SYN_SENT, __ATOMIC_RELEASE);
	E.due[s] = now_ns() + (E.max_delay_us ? (rand_r(&E.seed) % E.max_delay_us) * 1000 : 0);
	return 0;
}

static void eng_handshake(int s)
{
	struct mst_shm_sock *k = &E.socks[s];

	if (now_ns() < E.due[s])
		return;
	if (k->remote_port == 1) { /* port 1: refused */
		E.conn[s] = 0;
		__atomic_store_n(&k->error, ECONNREFUSED, __ATOMIC_RELEASE);
		__atomic_store_n(&k->state, MST_SOCK_CLOSED, __ATOMIC_RELEASE);
		__atomic_store_n(&k->ready, MST_READY_ERR | MST_READY_HUP, __ATOMIC_RELEASE);
	} else {
		E.conn[s] = 2;
		__atomic_store_n(&k->state, MST_SOCK_ESTABLISHED, __ATOMIC_RELEASE);
		__atomic_store_n(&k->ready, MST_READY_OUT, __ATOMIC_RELEASE);
	}
	eng_ready(s);
}

/* A listener's queue as sock_sync() publishes it: accept_queue, then
 * READY IN while it is not empty. */
static void eng_listener(int s)
{
	struct mst_shm_sock *k = &E.socks[s];
	uint32_t n = E.incoming[s];

	if (__atomic_load_n(&k->accept_queue, __ATOMIC_RELAXED) == n)
		return;
	__atomic_store_n(&k->accept_queue, n, __ATOMIC_RELAXED);
	__atomic_store_n(&k->ready, n ? MST_READY_IN : 0, __ATOMIC_RELEASE);
	eng_ready(s);
}

/* ACCEPT as cmd_accept(): -EAGAIN when nothing is pending (another
 * thread took it), else a new ESTABLISHED socket and the peer in b, c. */
static void eng_accept(int qp, int s, struct mst_shm_msg *r)
{
	static const struct mst_shm_msg tcp = { .op = MST_CMD_SOCKET, .a = 1 };
	int ns;

	if (!E.listening[s]) {
		r->result = -EINVAL;
		return;
	}
	if (!E.incoming[s]) {
		r->result = -EAGAIN;
		return;
	}
	for (ns = 0; ns < (int)N_SOCKS && E.used[ns]; ns++)
		;
	if (ns == N_SOCKS) {
		r->result = -EMFILE;
		return;
	}
	E.incoming[s]--;
	eng_socket(qp, ns, &tcp);
	E.conn[ns] = 2;
	E.socks[ns].local_port = E.socks[s].local_port;
	E.socks[ns].remote_ip = PEER;
	E.socks[ns].remote_port = (uint16_t)(33000 + ns);
	__atomic_store_n(&E.socks[ns].state, MST_SOCK_ESTABLISHED, __ATOMIC_RELEASE);
	__atomic_store_n(&E.socks[ns].ready, MST_READY_OUT, __ATOMIC_RELEASE);
	eng_listener(s); /* the listener's queue got shorter */
	r->result = ns;
	r->b = PEER;
	r->c = E.socks[ns].remote_port;
}

/* Options of engines/app.c's map_opt(). */
static bool tcp_opt_known(uint64_t o)
{
	switch (o) {
	case MST_OPT_NODELAY: case MST_OPT_KEEPALIVE: case MST_OPT_KEEPIDLE:
	case MST_OPT_KEEPINTVL: case MST_OPT_KEEPCNT: case MST_OPT_LINGER0:
	case MST_OPT_MAXSEG: case MST_OPT_ERROR:
		return true;
	}
	return false;
}

/* TCP SETOPT / GETOPT as run_cmd(): options live on the connection. */
static int32_t eng_opt_tcp(int s, const struct mst_shm_msg *c, struct mst_shm_msg *r)
{
	bool has_conn = E.conn[s] || E.listening[s];

	if (c->a == MST_OPT_RCVBUF || c->a == MST_OPT_SNDBUF) {
		if (c->op == MST_CMD_GETOPT)
			r->a = FIFO_SZ;
		return 0;
	}
	if (c->a == MST_OPT_REUSEADDR) {
		if (c->op == MST_CMD_GETOPT)
			r->a = 1;
		return 0;
	}
	if (!tcp_opt_known(c->a))
		return -ENOPROTOOPT;
	if (c->op == MST_CMD_SETOPT) {
		if (!has_conn)
			return -ENOTCONN;
		E.opt_val[s][c->a] = c->b;
		E.opt_sets[s]++;
		return 0;
	}
	if (c->a == MST_OPT_ERROR)
		r->a = (uint64_t)__atomic_exchange_n(&E.socks[s].error, 0, __ATOMIC_ACQ_REL);
	else
		r->a = has_conn ? E.opt_val[s][c->a] : 0; /* defaults before connect */
	return 0;
}

static bool eng_cmd_tcp(int qp, int s, const struct mst_shm_msg *c, struct mst_shm_msg *r)
{
	switch (c->op) {
	case MST_CMD_BIND:
		r->result = eng_bind(s, c);
		return true;
	case MST_CMD_LISTEN:
		if (E.listening[s])
			r->result = 0;
		else if (E.conn[s])
			r->result = -EINVAL;
		else if (!E.socks[s].local_port)
			r->result = -EDESTADDRREQ;
		else {
			E.listening[s] = 1;
			__atomic_store_n(&E.socks[s].state, MST_SOCK_LISTEN, __ATOMIC_RELEASE);
		}
		return true;
	case MST_CMD_ACCEPT:
		eng_accept(qp, s, r);
		return true;
	case MST_CMD_CONNECT:
		r->result = eng_connect_tcp(qp, s, c);
		return true;
	case MST_CMD_SHUTDOWN:
		r->result = E.conn[s] != 2 ? -ENOTCONN : c->a > SHUT_RDWR ? -EINVAL : 0;
		return true;
	case MST_CMD_SETOPT:
	case MST_CMD_GETOPT:
		r->result = eng_opt_tcp(s, c, r);
		return true;
	}
	eng_error(qp, c, -EOPNOTSUPP);
	return false;
}

static bool eng_cmd_udp(int s, const struct mst_shm_msg *c, struct mst_shm_msg *r)
{
	switch (c->op) {
	case MST_CMD_BIND:
		r->result = eng_bind(s, c);
		return true;
	case MST_CMD_CONNECT:
		if (!c->a && !c->b) { /* AF_UNSPEC: dissolve */
			E.socks[s].remote_ip = 0;
			E.socks[s].remote_port = 0;
			return true;
		}
		if (!c->a || !c->b || c->b > 65535) {
			r->result = -EINVAL;
			return true;
		}
		if (!E.socks[s].local_port) /* no handshake: auto-bind, DONE 0 */
			E.socks[s].local_port = (uint16_t)(50000 + s);
		E.socks[s].remote_ip = (uint32_t)c->a;
		E.socks[s].remote_port = (uint16_t)c->b;
		return true;
	case MST_CMD_SETOPT:
	case MST_CMD_GETOPT:
		if (c->a == MST_OPT_RCVBUF || c->a == MST_OPT_SNDBUF)
			r->a = FIFO_SZ;
		return true; /* accepted, no effect */
	}
	r->result = -EOPNOTSUPP; /* LISTEN, ACCEPT, SHUTDOWN: a DONE, as mustangd */
	return true;
}

/* Commands by socket kind, in engines/app.c's run_cmd() order: SOCKET,
 * then the socket index (ERROR -EBADF), then the kind's rules. */
static void eng_cmd(int qp, const struct mst_shm_msg *c)
{
	struct mst_shm_msg r = { .op = MST_EV_DONE, .sock = c->sock, .seq = c->seq };
	int s = c->sock;
	bool valid = s >= 0 && s < (int)N_SOCKS && E.used[s];

	if (c->op == MST_CMD_SETOPT) { /* the last one seen, whatever its fate */
		E.setopt_a = c->a;
		E.setopt_b = c->b;
		E.setopts++;
	}

	if (c->op == MST_CMD_SOCKET) {
		for (s = 0; s < (int)N_SOCKS && E.used[s]; s++)
			;
		if (c->a != 1 && c->a != 2 && c->a != MST_PONY_SOCK_TYPE)
			r.result = -EINVAL;
		else if (s == N_SOCKS)
			r.result = -EMFILE;
		else
			r.result = eng_socket(qp, s, c);
		eng_post(qp, &r);
		return;
	}
	if (!valid) {
		eng_error(qp, c, -EBADF);
		return;
	}
	switch (c->op) {
	case MST_CMD_TX:
	case MST_CMD_RX_DONE:
		return; /* doorbells: the pump does the work */
	case MST_CMD_NOTIFY:
		/* As mustangd: no DONE, a READY to the new receiver. */
		E.owner[s] = qp;
		E.notifies++;
		eng_ready(s);
		return;
	case MST_CMD_CLOSE:
		E.used[s] = 0;
		E.pony[s].on = 0; /* its queued ops are dropped */
		E.conn[s] = E.listening[s] = 0;
		E.socks[s].state = MST_SOCK_FREE;
		E.socks[s].local_port = 0;
		break;
	default:
		if (E.pony[s].on) {
			if (!eng_pony_cmd(qp, s, c, &r))
				return;
		} else if (E.dgram[s]) {
			if (!eng_cmd_udp(s, c, &r))
				return;
		} else if (!eng_cmd_tcp(qp, s, c, &r)) {
			return;
		}
		break;
	}
	eng_post(qp, &r);
}

static void *engine(void *arg)
{
	while (!E.stop) {
		struct mst_shm_msg c;
		int busy = 0;

		for (unsigned q = 0; q < N_QPS && !E.hold_cmds; q++)
			while (ring_pop(&E.qps[q].cmd, &c) == 1) {
				eng_cmd((int)q, &c);
				busy = 1;
			}
		for (unsigned s = 0; s < N_SOCKS && !E.paused; s++)
			if (E.used[s] && E.pony[s].on)
				eng_pony_pump((int)s);
			else if (E.used[s] && E.dgram[s])
				eng_echo_dgram((int)s);
			else if (E.used[s] && E.conn[s] == 1)
				eng_handshake((int)s);
			else if (E.used[s] && E.listening[s])
				eng_listener((int)s);
			else if (E.used[s])
				eng_echo((int)s);
		E.loops++;
		if (!busy)
			sched_yield();
	}
	return NULL;
}

static int setup(void **state)
{
	/* The header is more than one cache line (local_ip at 64): qps after. */
	size_t qp_off = 2 * MST_SHM_CACHELINE, sock_off, fifo_off, pony_off, size;
	int memfd;

	memset(&E, 0, sizeof(E));
	sock_off = qp_off + N_QPS * sizeof(struct mst_shm_qp);
	fifo_off = (sock_off + N_SOCKS * sizeof(struct mst_shm_sock) + 4095) & ~(size_t)4095;
	pony_off = fifo_off + N_SOCKS * 2 * FIFO_SZ;
	size = pony_off + PONY_SZ;
	memfd = memfd_create("mst-test", MFD_CLOEXEC);
	assert_true(memfd >= 0);
	assert_int_equal(ftruncate(memfd, (off_t)size), 0);
	E.base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	assert_true(E.base != MAP_FAILED);
	E.size = size;
	E.hdr = (struct mst_shm_hdr *)E.base;
	*E.hdr = (struct mst_shm_hdr){
		.magic = MST_SHM_MAGIC, .version = MST_SHM_VERSION, .size = size,
		.n_qps = N_QPS, .n_socks = N_SOCKS, .qp_off = qp_off, .sock_off = sock_off,
		.fifo_off = fifo_off, .fifo_size = N_SOCKS * 2 * FIFO_SZ, .app_id = 1,
		.local_ip = htonl(0x0a000001),
		.pony_max_msg = PONY_MAX_MSG, .pony_off = pony_off, .pony_size = PONY_SZ,
	};
	E.qps = (struct mst_shm_qp *)(E.base + qp_off);
	E.socks = (struct mst_shm_sock *)(E.base + sock_off);
	for (unsigned i = 0; i < N_QPS; i++) {
		/* Free-running indices start near 2^32. */
		E.qps[i].cmd.prod = E.qps[i].cmd.cons = UINT32_MAX - 50;
		E.qps[i].evt.prod = E.qps[i].evt.cons = UINT32_MAX - 70;
		E.efd[i] = eventfd(0, EFD_CLOEXEC);
	}
	for (unsigned i = 0; i < N_SOCKS; i++)
		E.socks[i].state = MST_SOCK_FREE;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, E.ctl), 0);
	E.seed = 12345;
	E.max_delay_us = 0;
	assert_int_equal(lib_attach_fds(E.ctl[0], memfd, E.efd, N_QPS), 0);
	mst_lib.spin_ns = 0; /* every wait sleeps: exercises the wake protocol */
	pthread_create(&E.th, NULL, engine, NULL);
	return 0;
}

static int teardown(void **state)
{
	E.stop = 1;
	pthread_join(E.th, NULL);
	mst_fini();
	close(E.ctl[1]);
	munmap(E.base, E.size);
	return 0;
}

static int connected_socket(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(7),
				  .sin_addr.s_addr = htonl(0x0a000002) };
	int fd = mst_socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= MST_FD_BASE);
	assert_int_equal(mst_connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static void test_qp_claim_is_per_thread_and_released_at_exit(void **state)
{
	struct thr *t = thr_get();
	uint64_t used;

	assert_non_null(t);
	assert_int_equal(t->qp, 0);
	assert_ptr_equal(thr_get(), t);
	used = __atomic_load_n(&mst_lib.qp_used, __ATOMIC_RELAXED);
	assert_int_equal(used, 1);
}

static void *claim_and_exit(void *arg)
{
	struct thr *t = thr_get();

	*(int *)arg = t ? t->qp : -1;
	return NULL;
}

static void test_qp_of_exited_thread_is_reused(void **state)
{
	pthread_t th;
	int qp1 = -1, qp2 = -1;

	thr_get();
	pthread_create(&th, NULL, claim_and_exit, &qp1);
	pthread_join(th, NULL);
	pthread_create(&th, NULL, claim_and_exit, &qp2);
	pthread_join(th, NULL);
	assert_int_equal(qp1, 1);
	assert_int_equal(qp2, 1);
	assert_int_equal(__atomic_load_n(&mst_lib.qp_used, __ATOMIC_RELAXED), 1);
}

static void test_submit_and_wait_by_seq(void **state)
{
	struct thr *t = thr_get();

	for (int i = 0; i < 2000; i++) {
		struct mst_shm_msg m = { .op = MST_CMD_SOCKET, .sock = -1, .a = 1 };
		int r = cmd_call(t, &m);

		assert_true(r >= 0 && r < (int)N_SOCKS);
		m = (struct mst_shm_msg){ .op = MST_CMD_CLOSE, .sock = r };
		assert_int_equal(cmd_call(t, &m), 0);
	}
	/* As mustangd: a bad socket index is EBADF before anything else, an
	 * unknown command on a real socket EOPNOTSUPP, both with their seq. */
	struct mst_shm_msg bad = { .op = 99, .sock = -1 };
	assert_int_equal(cmd_call(t, &bad), -EBADF);
	struct mst_shm_msg sk = { .op = MST_CMD_SOCKET, .sock = -1, .a = 1 };
	int r = cmd_call(t, &sk);
	assert_true(r >= 0);
	bad = (struct mst_shm_msg){ .op = 99, .sock = r };
	assert_int_equal(cmd_call(t, &bad), -EOPNOTSUPP);
	sk = (struct mst_shm_msg){ .op = MST_CMD_CLOSE, .sock = r };
	assert_int_equal(cmd_call(t, &sk), 0);
}

static void test_socket_errno_like_linux(void **state)
{
	int fd = mst_socket(AF_INET, SOCK_STREAM, 0);
	char b[4];

	assert_int_equal(mst_socket(AF_INET, SOCK_DGRAM, IPPROTO_TCP), -1);
	assert_int_equal(errno, EPROTONOSUPPORT);
	assert_int_equal(mst_socket(AF_INET, SOCK_STREAM, IPPROTO_UDP), -1);
	assert_int_equal(errno, EPROTONOSUPPORT);
	assert_int_equal(mst_socket(AF_INET6, SOCK_STREAM, 0), -1);
	assert_int_equal(errno, EAFNOSUPPORT);
	assert_int_equal(mst_send(fd, "x", 1, 0), -1);
	assert_int_equal(errno, EPIPE);
	assert_int_equal(mst_recv(fd, b, 1, MSG_DONTWAIT), -1);
	assert_int_equal(errno, ENOTCONN);
	assert_int_equal(mst_shutdown(fd, SHUT_WR), -1);
	assert_int_equal(errno, ENOTCONN);
	assert_int_equal(mst_close(fd), 0);
	assert_int_equal(mst_close(fd), -1);
	assert_int_equal(errno, EBADF);
	assert_int_equal(mst_send(12345, "x", 1, 0), -1);
	assert_int_equal(errno, EBADF);
}

static void test_connect_refused(void **state)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(1) };
	int fd = mst_socket(AF_INET, SOCK_STREAM, 0), err = -1;
	socklen_t l = sizeof(err);

	assert_int_equal(mst_connect(fd, (struct sockaddr *)&sa, sizeof(sa)), -1);
	assert_int_equal(errno, ECONNREFUSED);
	assert_int_equal(mst_getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l), 0);
	assert_int_equal(err, 0);
	mst_close(fd);
	fd = mst_socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	assert_int_equal(mst_connect(fd, (struct sockaddr *)&sa, sizeof(sa)), -1);
	assert_int_equal(errno, EINPROGRESS);
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	assert_int_equal(mst_poll(&p, 1, 1000), 1);
	assert_true(p.revents & POLLERR);
	assert_int_equal(mst_getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l), 0);
	assert_int_equal(err, ECONNREFUSED);
	mst_close(fd);
}

/* ---- TCP rules of engines/app.c (the fake follows them) ------------------ */

static struct sockaddr_in sin_any(uint16_t port)
{
	return (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons(port) };
}

struct acc_arg {
	int fd, r, err;
	struct sockaddr_in peer;
};

static void *acceptor(void *arg)
{
	struct acc_arg *a = arg;
	socklen_t l = sizeof(a->peer);

	a->r = mst_accept(a->fd, (struct sockaddr *)&a->peer, &l);
	a->err = errno;
	return NULL;
}

/* mustangd's BIND/LISTEN/ACCEPT rules, as the library passes them on:
 * no ephemeral TCP bind (EINVAL), LISTEN needs a bound port
 * (EDESTADDRREQ), a port in use is EADDRINUSE, an address not ours
 * EADDRNOTAVAIL; ACCEPT blocks until the listener's queue moves and
 * returns an ESTABLISHED socket with the peer's address. */
static void test_tcp_bind_listen_accept_like_mustangd(void **state)
{
	int fd = mst_socket(AF_INET, SOCK_STREAM, 0), fd2 = mst_socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = sin_any(0), got;
	struct acc_arg acc = { .fd = fd, .r = -2 };
	uint32_t idx = (uint32_t)(fd - MST_FD_BASE);
	socklen_t l = sizeof(got);
	pthread_t th;
	char b[8];

	assert_int_equal(mst_listen(fd, 8), -1);
	assert_int_equal(errno, EDESTADDRREQ);
	assert_int_equal(mst_bind(fd, (struct sockaddr *)&a, sizeof(a)), -1);
	assert_int_equal(errno, EINVAL);
	a = sin_any(8080);
	a.sin_addr.s_addr = htonl(0x0a090909);
	assert_int_equal(mst_bind(fd, (struct sockaddr *)&a, sizeof(a)), -1);
	assert_int_equal(errno, EADDRNOTAVAIL);
	a.sin_addr.s_addr = E.hdr->local_ip;
	assert_int_equal(mst_bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(mst_bind(fd, (struct sockaddr *)&a, sizeof(a)), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(mst_bind(fd2, (struct sockaddr *)&a, sizeof(a)), -1);
	assert_int_equal(errno, EADDRINUSE);
	assert_int_equal(mst_listen(fd, 8), 0);
	assert_int_equal(mst_listen(fd, 8), 0);
	assert_int_equal(mst_shutdown(fd, SHUT_RDWR), -1);
	assert_int_equal(errno, ENOTCONN);
	/* Non-blocking: nothing queued, no round trip. */
	assert_int_equal(mst_fcntl(fd, F_SETFL, O_NONBLOCK), 0);
	assert_int_equal(mst_accept(fd, NULL, NULL), -1);
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(mst_fcntl(fd, F_SETFL, 0), 0);
	/* Blocking: woken when a connection arrives. */
	pthread_create(&th, NULL, acceptor, &acc);
	usleep(20000);
	assert_int_equal(acc.r, -2);
	E.incoming[idx] = 1;
	pthread_join(th, NULL);
	assert_true(acc.r >= MST_FD_BASE);
	assert_int_equal(acc.peer.sin_addr.s_addr, PEER);
	assert_int_equal(mst_getpeername(acc.r, (struct sockaddr *)&got, &l), 0);
	assert_int_equal(got.sin_addr.s_addr, PEER);
	assert_int_equal(mst_send(acc.r, "abc", 3, 0), 3);
	assert_int_equal(mst_recv(acc.r, b, sizeof(b), 0), 3);
	assert_memory_equal(b, "abc", 3);
	assert_int_equal(E.socks[idx].accept_queue, 0);
	mst_close(acc.r);
	mst_close(fd2);
	mst_close(fd);
}

/* mustangd keeps options on the connection and answers ENOTCONN before
 * one exists: the library keeps them and applies them right after
 * CONNECT. Probe: sock_apply_pending_opts() not called. */
static void test_tcp_options_before_connect_reach_the_engine(void **state)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(7),
				  .sin_addr.s_addr = htonl(0x0a000002) };
	int fd = mst_socket(AF_INET, SOCK_STREAM, 0), v = 1, idle = 30;
	uint32_t idx = (uint32_t)(fd - MST_FD_BASE);
	socklen_t l = sizeof(v);

	assert_int_equal(mst_setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, sizeof(v)), 0);
	assert_int_equal(mst_setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle)), 0);
	assert_int_equal(E.opt_sets[idx], 0);
	v = 0;
	assert_int_equal(mst_getsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &v, &l), 0);
	assert_int_equal(v, 30);
	assert_int_equal(mst_connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	/* NODELAY is posted without waiting: give the engine a moment. */
	for (int i = 0; i < 1000 && E.opt_sets[idx] < 2; i++)
		usleep(1000);
	assert_int_equal(E.opt_sets[idx], 2);
	assert_int_equal(E.opt_val[idx][MST_OPT_NODELAY], 1);
	assert_int_equal(E.opt_val[idx][MST_OPT_KEEPIDLE], 30);
	v = 5;
	assert_int_equal(mst_setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &v, sizeof(v)), 0);
	assert_int_equal(E.opt_val[idx][MST_OPT_KEEPCNT], 5);
	mst_close(fd);
}

/* Linux's bounds for the keepalive options (tcp_sock_set_keep*):
 * TCP_KEEPCNT 1..127, TCP_KEEPIDLE and TCP_KEEPINTVL 1..32767; a value
 * outside is EINVAL and leaves the option as it was. */
static void test_tcp_keepalive_option_bounds(void **state)
{
	int fd = mst_socket(AF_INET, SOCK_STREAM, 0), v;
	socklen_t l = sizeof(v);
	const struct { int name, max; } o[] = {
		{ TCP_KEEPCNT, 127 }, { TCP_KEEPIDLE, 32767 }, { TCP_KEEPINTVL, 32767 },
	};

	for (unsigned i = 0; i < sizeof(o) / sizeof(o[0]); i++) {
		v = o[i].max;
		assert_int_equal(mst_setsockopt(fd, IPPROTO_TCP, o[i].name, &v, sizeof(v)), 0);
		for (int bad = 0; bad < 3; bad++) {
			v = bad == 0 ? o[i].max + 1 : bad == 1 ? 0 : -1;
			assert_int_equal(mst_setsockopt(fd, IPPROTO_TCP, o[i].name, &v, sizeof(v)), -1);
			assert_int_equal(errno, EINVAL);
		}
		v = 0;
		assert_int_equal(mst_getsockopt(fd, IPPROTO_TCP, o[i].name, &v, &l), 0);
		assert_int_equal(v, o[i].max);
	}
	mst_close(fd);
}

/* mustangd answers CONNECT at once (SYN_SENT) and the handshake ends
 * later: a blocking connect returns only once ESTABLISHED; a
 * non-blocking one says EINPROGRESS, then EALREADY, then POLLOUT. */
static void test_tcp_connect_done_before_handshake(void **state)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(7),
				  .sin_addr.s_addr = htonl(0x0a000002) };
	int fd = mst_socket(AF_INET, SOCK_STREAM, 0), err = -1;
	uint32_t idx = (uint32_t)(fd - MST_FD_BASE);
	socklen_t l = sizeof(err);

	E.max_delay_us = 20000; /* handshakes take up to 20 ms */
	assert_int_equal(mst_connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(E.socks[idx].state, MST_SOCK_ESTABLISHED);
	assert_int_equal(mst_connect(fd, (struct sockaddr *)&sa, sizeof(sa)), -1);
	assert_int_equal(errno, EISCONN);
	mst_close(fd);
	fd = mst_socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	idx = (uint32_t)(fd - MST_FD_BASE);
	E.max_delay_us = 0;
	E.paused = 1; /* the handshake cannot finish meanwhile */
	assert_int_equal(mst_connect(fd, (struct sockaddr *)&sa, sizeof(sa)), -1);
	assert_int_equal(errno, EINPROGRESS);
	assert_int_equal(E.socks[idx].state, MST_SOCK_SYN_SENT);
	assert_int_equal(mst_connect(fd, (struct sockaddr *)&sa, sizeof(sa)), -1);
	assert_int_equal(errno, EALREADY);
	E.paused = 0;
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	assert_int_equal(mst_poll(&p, 1, 1000), 1);
	assert_true(p.revents & POLLOUT);
	assert_int_equal(mst_getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l), 0);
	assert_int_equal(err, 0);
	mst_close(fd);
}

/* Ping-pong of random sizes through the echoing engine; every recv
 * blocks and must be woken (spin_ns = 0). */
static void echo_rounds(int fd, int rounds, unsigned seed)
{
	static __thread uint8_t out[3 * FIFO_SZ], in[3 * FIFO_SZ];

	for (int i = 0; i < rounds; i++) {
		size_t n = 1 + (size_t)rand_r(&seed) % (sizeof(out) - 1), got = 0;

		for (size_t k = 0; k < n; k++)
			out[k] = (uint8_t)rand_r(&seed);
		if (n <= FIFO_SZ) {
			assert_int_equal(mst_send(fd, out, n, 0), (ssize_t)n);
			while (got < n) {
				ssize_t r = mst_recv(fd, in + got, n - got, 0);

				assert_true(r > 0);
				got += (size_t)r;
			}
		} else { /* bigger than the FIFO: send and receive interleaved */
			size_t sent = 0;

			while (got < n) {
				if (sent < n) {
					ssize_t r = mst_send(fd, out + sent, n - sent, MSG_DONTWAIT);

					if (r > 0)
						sent += (size_t)r;
				}
				ssize_t r = mst_recv(fd, in + got, n - got, sent < n ? MSG_DONTWAIT : 0);

				if (r > 0)
					got += (size_t)r;
			}
		}
		assert_memory_equal(out, in, n);
	}
}

static void test_blocking_recv_woken_by_engine_no_lost_wakeups(void **state)
{
	int fd = connected_socket();

	E.max_delay_us = 30;
	echo_rounds(fd, 20000, 1);
	E.max_delay_us = 0;
	echo_rounds(fd, 20000, 2);
	assert_true(E.signals > 0);
	mst_close(fd);
}

struct thr_arg {
	int fd;
	unsigned seed;
};

static void *echo_thread(void *arg)
{
	struct thr_arg *a = arg;

	echo_rounds(a->fd, 3000, a->seed);
	return NULL;
}

/* Sockets created by the main thread, used by others: readiness must
 * follow the blocked thread (NOTIFY / forwarding). */
static void test_threads_use_sockets_created_elsewhere(void **state)
{
	struct thr_arg a[3];
	pthread_t th[3];

	E.max_delay_us = 20;
	for (int i = 0; i < 3; i++) {
		a[i] = (struct thr_arg){ .fd = connected_socket(), .seed = 10u + (unsigned)i };
		pthread_create(&th[i], NULL, echo_thread, &a[i]);
	}
	for (int i = 0; i < 3; i++) {
		pthread_join(th[i], NULL);
		mst_close(a[i].fd);
	}
	assert_true(E.notifies >= 3);
}

static void test_nonblocking_recv_and_fcntl(void **state)
{
	int fd = connected_socket();
	char b[8];

	assert_int_equal(mst_fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
	assert_int_equal(mst_fcntl(fd, F_SETFL, O_NONBLOCK), 0);
	assert_int_equal(mst_recv(fd, b, sizeof(b), 0), -1);
	assert_int_equal(errno, EAGAIN);
	mst_close(fd);
}

static void test_poll_mixes_kernel_and_library_fds(void **state)
{
	int fd = connected_socket(), p[2];
	struct pollfd pf[2];
	char c;

	assert_int_equal(pipe(p), 0);
	pf[0] = (struct pollfd){ .fd = fd, .events = POLLIN };
	pf[1] = (struct pollfd){ .fd = p[0], .events = POLLIN };
	assert_int_equal(mst_poll(pf, 2, 50), 0);
	assert_int_equal(write(p[1], "x", 1), 1);
	assert_int_equal(mst_poll(pf, 2, 1000), 1);
	assert_int_equal(pf[1].revents, POLLIN);
	assert_int_equal(pf[0].revents, 0);
	assert_int_equal(read(p[0], &c, 1), 1);
	assert_int_equal(mst_send(fd, "hi", 2, 0), 2);
	assert_int_equal(mst_poll(pf, 2, 1000), 1);
	assert_int_equal(pf[0].revents, POLLIN);
	close(p[0]);
	close(p[1]);
	mst_close(fd);
}

static void test_epoll_level_and_edge(void **state)
{
	int fd = connected_socket(), ep = mst_epoll_create1(0), p[2];
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = 7 }, out[4];
	char b[4];

	assert_true(ep >= MST_FD_BASE);
	assert_int_equal(pipe(p), 0);
	assert_int_equal(mst_epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev), 0);
	assert_int_equal(mst_epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev), -1);
	assert_int_equal(errno, EEXIST);
	ev.data.u32 = 9;
	assert_int_equal(mst_epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev), 0);
	assert_int_equal(mst_epoll_wait(ep, out, 4, 20), 0);
	assert_int_equal(mst_send(fd, "abcd", 4, 0), 4);
	assert_int_equal(mst_epoll_wait(ep, out, 4, 1000), 1);
	assert_int_equal(out[0].data.u32, 7);
	/* Level: still readable. */
	assert_int_equal(mst_epoll_wait(ep, out, 4, 0), 1);
	ev = (struct epoll_event){ .events = EPOLLIN | EPOLLET, .data.u32 = 7 };
	assert_int_equal(mst_epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev), 0);
	assert_int_equal(mst_epoll_wait(ep, out, 4, 0), 1);
	assert_int_equal(mst_epoll_wait(ep, out, 4, 0), 0); /* edge: reported once */
	assert_int_equal(mst_recv(fd, b, 4, 0), 4);
	assert_int_equal(write(p[1], "x", 1), 1);
	assert_int_equal(mst_epoll_wait(ep, out, 4, 1000), 1);
	assert_int_equal(out[0].data.u32, 9);
	/* A closed socket leaves the set. */
	mst_close(fd);
	assert_int_equal(read(p[0], b, 1), 1);
	assert_int_equal(mst_epoll_wait(ep, out, 4, 0), 0);
	close(p[0]);
	close(p[1]);
	assert_int_equal(mst_close(ep), 0);
}

static void test_zero_copy_fifo_access(void **state)
{
	int fd = connected_socket();
	void *w1, *w2;
	const void *r1, *r2;
	size_t n1, n2;
	ssize_t fr;

	fr = mst_tx_reserve(fd, &w1, &n1, &w2, &n2);
	assert_int_equal(fr, FIFO_SZ);
	memcpy(w1, "zero-copy", 9);
	assert_int_equal(mst_tx_commit(fd, 9), 0);
	assert_int_equal(mst_tx_commit(fd, FIFO_SZ + 1), -1);
	assert_int_equal(errno, EINVAL);
	struct pollfd p = { .fd = fd, .events = POLLIN };
	assert_int_equal(mst_poll(&p, 1, 1000), 1);
	assert_int_equal(mst_rx_peek(fd, &r1, &n1, &r2, &n2), 9);
	assert_int_equal(n1 + n2, 9);
	assert_memory_equal(r1, "zero-copy", n1);
	assert_int_equal(mst_rx_consume(fd, 9), 0);
	assert_int_equal(mst_rx_peek(fd, &r1, &n1, &r2, &n2), 0);
	mst_close(fd);
}

/* SO_RCVBUF/SO_SNDBUF on a connected stream socket: clamped (never
 * EINVAL) to [4096, FIFO], sent to the engine for that socket (it limits
 * the window it offers), read back as set. Datagram sockets: unchanged. */
static void test_sockbuf_per_socket_clamped_and_sent(void **state)
{
	int fd = connected_socket(), v = 100;
	socklen_t vl = sizeof(v);
	uint64_t n = E.setopts;

	assert_int_equal(mst_setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v)), 0);
	assert_int_equal(E.setopts, n + 1);
	assert_int_equal(E.setopt_a, MST_OPT_SNDBUF);
	assert_int_equal(E.setopt_b, 4096);
	v = 1 << 20;
	assert_int_equal(mst_setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v)), 0);
	assert_int_equal(E.setopt_a, MST_OPT_RCVBUF);
	assert_int_equal(E.setopt_b, FIFO_SZ); /* the FIFO bounds it */
	assert_int_equal(mst_getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, &vl), 0);
	assert_int_equal(v, FIFO_SZ);
	v = -1; /* read unsigned, as Linux: as large as possible */
	assert_int_equal(mst_setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v)), 0);
	assert_int_equal(E.setopt_b, FIFO_SZ);
	assert_int_equal(mst_getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, &vl), 0);
	assert_int_equal(v, FIFO_SZ);
	mst_close(fd);
}

static void test_native_event_poll(void **state)
{
	int fd = connected_socket();
	struct mst_event ev[4];

	assert_int_equal(mst_watch(fd), 0);
	while (mst_ev_poll(ev, 4, 0) > 0)
		;
	assert_int_equal(mst_send(fd, "e", 1, 0), 1);
	/* The connect's READY(OUT) may still be on its way: wait for IN. */
	for (int tries = 0;; tries++) {
		assert_true(tries < 10);
		assert_int_equal(mst_ev_poll(ev, 4, 1000), 1);
		assert_int_equal(ev[0].fd, fd);
		if (ev[0].events & POLLIN)
			break;
	}
	int efd = mst_event_fd();
	assert_true(efd >= 0);
	assert_int_equal(mst_send(fd, "f", 1, 0), 1);
	struct pollfd p = { .fd = efd, .events = POLLIN };
	assert_int_equal(poll(&p, 1, 1000), 1);
	mst_close(fd);
}

/* ---- UDP sockets ------------------------------------------------------- */

static struct sockaddr_in sin_of(uint32_t ip_host, uint16_t port)
{
	return (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons(port),
				     .sin_addr.s_addr = htonl(ip_host) };
}

static void fill_pattern(uint8_t *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(seed * 131u + i * 7u + (i >> 8));
}

static void test_udp_socket_bind_and_options(void **state)
{
	int fd = mst_socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0), v = 0;
	int fd2 = mst_socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP);
	struct sockaddr_in a = sin_of(0, 0), got;
	socklen_t l = sizeof(got), vl = sizeof(v);
	uint32_t idx = (uint32_t)(fd - MST_FD_BASE);
	char b[4];

	assert_true(fd >= MST_FD_BASE);
	assert_true(fd2 >= MST_FD_BASE);
	/* FIFOs from the start: writable, nothing to read. */
	struct pollfd p = { .fd = fd, .events = POLLIN | POLLOUT };
	assert_int_equal(mst_poll(&p, 1, 0), 1);
	assert_int_equal(p.revents, POLLOUT);
	assert_int_equal(mst_recv(fd, b, sizeof(b), 0), -1);
	assert_int_equal(errno, EAGAIN);
	/* Port 0: the engine's ephemeral port, read back for getsockname. */
	assert_int_equal(mst_bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(mst_getsockname(fd, (struct sockaddr *)&got, &l), 0);
	assert_int_equal(ntohs(got.sin_port), 50000 + idx);
	a = sin_of(0, 5353);
	assert_int_equal(mst_bind(fd2, (struct sockaddr *)&a, sizeof(a)), 0);
	l = sizeof(got);
	assert_int_equal(mst_getsockname(fd2, (struct sockaddr *)&got, &l), 0);
	assert_int_equal(ntohs(got.sin_port), 5353);
	assert_int_equal(mst_getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &vl), 0);
	assert_int_equal(v, SOCK_DGRAM);
	assert_int_equal(mst_getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &v, &vl), 0);
	assert_int_equal(v, IPPROTO_UDP);
	assert_int_equal(mst_getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, &vl), 0);
	assert_int_equal(v, FIFO_SZ);
	v = 1;
	assert_int_equal(mst_setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &v, sizeof(v)), 0);
	v = 0;
	assert_int_equal(mst_getsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &v, &vl), 0);
	assert_int_equal(v, 1);
	assert_int_equal(mst_setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, sizeof(v)), -1);
	assert_int_equal(errno, ENOPROTOOPT);
	assert_int_equal(mst_listen(fd, 1), -1);
	assert_int_equal(errno, EOPNOTSUPP);
	assert_int_equal(mst_accept(fd, NULL, NULL), -1);
	assert_int_equal(errno, EOPNOTSUPP);
	assert_int_equal(mst_getpeername(fd, (struct sockaddr *)&got, &l), -1);
	assert_int_equal(errno, ENOTCONN);
	assert_int_equal(mst_shutdown(fd, SHUT_RDWR), -1);
	assert_int_equal(errno, ENOTCONN);
	void *w1, *w2;
	size_t n1, n2;
	assert_int_equal(mst_tx_reserve(fd, &w1, &n1, &w2, &n2), -1);
	assert_int_equal(errno, EOPNOTSUPP);
	assert_int_equal(mst_close(fd), 0);
	assert_int_equal(mst_close(fd2), 0);
}

static void test_udp_destination_rules(void **state)
{
	int fd = mst_socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in peer = sin_of(0x0a000002, 9999), to = sin_of(0x0a000003, 53), from;
	socklen_t l = sizeof(from);
	char b[16];

	assert_int_equal(mst_send(fd, "x", 1, 0), -1);
	assert_int_equal(errno, EDESTADDRREQ);
	assert_int_equal(mst_write(fd, "x", 1), -1);
	assert_int_equal(errno, EDESTADDRREQ);
	assert_int_equal(mst_sendto(fd, "x", 1, 0, NULL, 0), -1);
	assert_int_equal(errno, EDESTADDRREQ);
	to.sin_port = 0;
	assert_int_equal(mst_sendto(fd, "x", 1, 0, (struct sockaddr *)&to, sizeof(to)), -1);
	assert_int_equal(errno, EINVAL);
	to.sin_port = htons(53);
	assert_int_equal(mst_sendto(fd, "x", 1, 0, (struct sockaddr *)&to, 8), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(mst_sendto(fd, "x", 1, MSG_MORE, (struct sockaddr *)&to, sizeof(to)), -1);
	assert_int_equal(errno, EOPNOTSUPP);
	/* connect: default peer, no handshake. */
	assert_int_equal(mst_connect(fd, (struct sockaddr *)&peer, sizeof(peer)), 0);
	assert_int_equal(mst_getpeername(fd, (struct sockaddr *)&from, &l), 0);
	assert_int_equal(from.sin_port, peer.sin_port);
	assert_int_equal(from.sin_addr.s_addr, peer.sin_addr.s_addr);
	l = sizeof(from);
	assert_int_equal(mst_getsockname(fd, (struct sockaddr *)&from, &l), 0);
	assert_true(from.sin_port != 0);
	assert_int_equal(from.sin_addr.s_addr, htonl(0x0a000001));
	assert_int_equal(mst_send(fd, "hello", 5, 0), 5);
	memset(&from, 0, sizeof(from));
	l = sizeof(from);
	assert_int_equal(mst_recvfrom(fd, b, sizeof(b), 0, (struct sockaddr *)&from, &l), 5);
	assert_memory_equal(b, "hello", 5);
	assert_int_equal(l, sizeof(from));
	assert_int_equal(from.sin_family, AF_INET);
	assert_int_equal(from.sin_port, peer.sin_port);
	assert_int_equal(from.sin_addr.s_addr, peer.sin_addr.s_addr);
	/* An explicit address still wins on a connected socket. */
	assert_int_equal(mst_sendto(fd, "dns", 3, 0, (struct sockaddr *)&to, sizeof(to)), 3);
	l = sizeof(from);
	assert_int_equal(mst_recvfrom(fd, b, sizeof(b), 0, (struct sockaddr *)&from, &l), 3);
	assert_int_equal(from.sin_port, to.sin_port);
	assert_int_equal(from.sin_addr.s_addr, to.sin_addr.s_addr);
	/* Zero-length datagrams exist. */
	assert_int_equal(mst_send(fd, "", 0, 0), 0);
	assert_int_equal(mst_read(fd, b, sizeof(b)), 0);
	assert_int_equal(mst_recv(fd, b, sizeof(b), MSG_DONTWAIT), -1);
	assert_int_equal(errno, EAGAIN);
	/* SHUT_WR: EPIPE; SHUT_RD: recv returns 0. */
	assert_int_equal(mst_shutdown(fd, SHUT_RDWR), 0);
	assert_int_equal(mst_send(fd, "x", 1, 0), -1);
	assert_int_equal(errno, EPIPE);
	assert_int_equal(mst_recv(fd, b, sizeof(b), 0), 0);
	struct pollfd p = { .fd = fd, .events = POLLIN | POLLOUT };
	assert_int_equal(mst_poll(&p, 1, 0), 1);
	assert_true(p.revents & POLLHUP);
	mst_close(fd);
	/* AF_UNSPEC dissolves the association. */
	fd = mst_socket(AF_INET, SOCK_DGRAM, 0);
	assert_int_equal(mst_connect(fd, (struct sockaddr *)&peer, sizeof(peer)), 0);
	struct sockaddr un = { .sa_family = AF_UNSPEC };
	assert_int_equal(mst_connect(fd, &un, sizeof(un)), 0);
	assert_int_equal(mst_send(fd, "x", 1, 0), -1);
	assert_int_equal(errno, EDESTADDRREQ);
	mst_close(fd);
}

static void test_udp_truncation_peek_and_sizes(void **state)
{
	static uint8_t out[FIFO_SZ], in[FIFO_SZ];
	struct sockaddr_in to = sin_of(0x0a000002, 7);
	int fd = mst_socket(AF_INET, SOCK_DGRAM, 0);

	fill_pattern(out, sizeof(out), 1);
	/* Truncation: the rest of the datagram is gone. */
	assert_int_equal(mst_sendto(fd, out, 100, 0, (struct sockaddr *)&to, sizeof(to)), 100);
	assert_int_equal(mst_sendto(fd, out + 1, 5, 0, (struct sockaddr *)&to, sizeof(to)), 5);
	assert_int_equal(mst_recv(fd, in, 10, 0), 10);
	assert_memory_equal(in, out, 10);
	assert_int_equal(mst_recv(fd, in, sizeof(in), 0), 5);
	assert_memory_equal(in, out + 1, 5);
	/* MSG_TRUNC: the real length; MSG_PEEK: still there. */
	assert_int_equal(mst_sendto(fd, out, 300, 0, (struct sockaddr *)&to, sizeof(to)), 300);
	assert_int_equal(mst_recv(fd, NULL, 0, MSG_PEEK | MSG_TRUNC), 300);
	assert_int_equal(mst_recv(fd, in, 20, MSG_PEEK), 20);
	assert_int_equal(mst_recv(fd, in, 20, MSG_TRUNC), 300);
	assert_memory_equal(in, out, 20);
	assert_int_equal(mst_recv(fd, in, 1, MSG_DONTWAIT), -1);
	assert_int_equal(errno, EAGAIN);
	/* recv(len 0) consumes a datagram, as Linux. */
	assert_int_equal(mst_sendto(fd, out, 9, 0, (struct sockaddr *)&to, sizeof(to)), 9);
	assert_int_equal(mst_recv(fd, in, 0, 0), 0);
	assert_int_equal(mst_recv(fd, in, 1, MSG_DONTWAIT), -1);
	assert_int_equal(errno, EAGAIN);
	/* EMSGSIZE: over the UDP maximum, or a record the FIFO cannot hold. */
	assert_int_equal(mst_sendto(fd, out, MST_SHM_DGRAM_MAX + 1, 0, (struct sockaddr *)&to,
				    sizeof(to)), -1);
	assert_int_equal(errno, EMSGSIZE);
	assert_int_equal(mst_sendto(fd, out, FIFO_SZ - 16 + 1, 0, (struct sockaddr *)&to,
				    sizeof(to)), -1);
	assert_int_equal(errno, EMSGSIZE);
	/* The largest record that fits: the whole FIFO. */
	assert_int_equal(mst_sendto(fd, out, FIFO_SZ - 16, 0, (struct sockaddr *)&to,
				    sizeof(to)), FIFO_SZ - 16);
	assert_int_equal(mst_recv(fd, in, sizeof(in), 0), FIFO_SZ - 16);
	assert_memory_equal(in, out, FIFO_SZ - 16);
	mst_close(fd);
}

/* Random sizes through FIFOs whose counters start near 2^32 and at an
 * offset that is not a multiple of 8: headers and payloads straddle the
 * FIFO end and the counter wrap. Every recv blocks (spin_ns 0). */
static void udp_rounds(int fd, int rounds, unsigned seed)
{
	static __thread uint8_t out[4][1600], in[1600];

	for (int i = 0; i < rounds; i++) {
		int burst = 1 + rand_r(&seed) % 3;
		size_t n[4];
		uint16_t port[4];

		for (int k = 0; k < burst; k++) {
			struct sockaddr_in to;

			n[k] = (size_t)rand_r(&seed) % 1501;
			port[k] = (uint16_t)(1 + rand_r(&seed) % 65535);
			to = sin_of(0x0a000000u + (uint32_t)k, port[k]);
			fill_pattern(out[k], n[k], (unsigned)rand_r(&seed));
			assert_int_equal(mst_sendto(fd, out[k], n[k], 0, (struct sockaddr *)&to,
						    sizeof(to)), (ssize_t)n[k]);
		}
		for (int k = 0; k < burst; k++) {
			struct sockaddr_in from;
			socklen_t l = sizeof(from);
			size_t want = n[k], buflen = sizeof(in);
			ssize_t r;

			if (rand_r(&seed) % 4 == 0 && n[k]) /* truncated read */
				buflen = want = (size_t)rand_r(&seed) % n[k];
			r = mst_recvfrom(fd, in, buflen, 0, (struct sockaddr *)&from, &l);
			assert_int_equal(r, (ssize_t)want);
			assert_memory_equal(in, out[k], want);
			assert_int_equal(ntohs(from.sin_port), port[k]);
			assert_int_equal(ntohl(from.sin_addr.s_addr), 0x0a000000u + (uint32_t)k);
		}
	}
}

static void test_udp_records_wrap_and_blocking_recv(void **state)
{
	int fd = mst_socket(AF_INET, SOCK_DGRAM, 0);

	E.max_delay_us = 30;
	udp_rounds(fd, 5000, 3);
	E.max_delay_us = 0;
	udp_rounds(fd, 5000, 4);
	assert_true(E.signals > 0);
	assert_int_equal(E.bad_recs, 0);
	/* The counters really wrapped. */
	assert_true(E.socks[fd - MST_FD_BASE].rx_head < 0x80000000u);
	mst_close(fd);
}

struct udp_thr {
	int fd;
	size_t len;
	ssize_t r;
	int err;
	volatile int done;
};

static void *udp_blocking_send(void *arg)
{
	struct udp_thr *a = arg;
	static uint8_t b[1200];

	a->r = mst_send(a->fd, b, a->len, 0);
	a->err = errno;
	a->done = 1;
	return NULL;
}

static void *udp_blocking_recv(void *arg)
{
	struct udp_thr *a = arg;
	uint8_t b[64];

	a->r = mst_recv(a->fd, b, sizeof(b), 0);
	a->err = errno;
	a->done = 1;
	return NULL;
}

static void test_udp_full_fifo_eagain_pollout_and_blocking_send(void **state)
{
	struct sockaddr_in peer = sin_of(0x0a000002, 7);
	int fd = mst_socket(AF_INET, SOCK_DGRAM, 0), i;
	static uint8_t b[1200];
	struct udp_thr a = { .fd = fd, .len = 1200 };
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	pthread_t th;

	assert_int_equal(mst_connect(fd, (struct sockaddr *)&peer, sizeof(peer)), 0);
	E.paused = 1;
	for (i = 0; i < 3; i++) /* 3 x 1216 */
		assert_int_equal(mst_send(fd, b, 1200, 0), 1200);
	assert_int_equal(mst_send(fd, b, 1200, MSG_DONTWAIT), -1);
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(mst_poll(&p, 1, 0), 1); /* a small one still fits */
	for (i = 0; i < 5; i++) /* 5 x 80 */
		assert_int_equal(mst_send(fd, b, 64, MSG_DONTWAIT), 64);
	assert_int_equal(mst_send(fd, b, 64, MSG_DONTWAIT), -1);
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(mst_send(fd, b, 1, MSG_DONTWAIT), 1); /* 24 <= 48 free */
	assert_int_equal(mst_poll(&p, 1, 20), 0);
	/* A blocking send waits for room for its own record. */
	pthread_create(&th, NULL, udp_blocking_send, &a);
	usleep(50000);
	assert_false(a.done);
	E.paused = 0;
	pthread_join(th, NULL);
	assert_int_equal(a.r, 1200);
	size_t want[] = { 1200, 1200, 1200, 64, 64, 64, 64, 64, 1, 1200 };
	for (i = 0; i < 10; i++)
		assert_int_equal(mst_recv(fd, b, sizeof(b), 0), (ssize_t)want[i]);
	assert_int_equal(mst_poll(&p, 1, 1000), 1);
	mst_close(fd);
}

static void test_udp_blocking_recv_woken_poll_and_epoll(void **state)
{
	struct sockaddr_in to = sin_of(0x0a000002, 7);
	int fd = mst_socket(AF_INET, SOCK_DGRAM, 0), ep = mst_epoll_create1(0);
	struct epoll_event ev = { .events = EPOLLIN | EPOLLET, .data.u32 = 5 }, out[2];
	struct udp_thr a = { .fd = fd };
	pthread_t th;
	char b[8];

	/* Another thread sleeps in recv; our send's echo must wake it. */
	E.max_delay_us = 2000;
	pthread_create(&th, NULL, udp_blocking_recv, &a);
	usleep(20000);
	assert_false(a.done);
	assert_int_equal(mst_sendto(fd, "wake", 4, 0, (struct sockaddr *)&to, sizeof(to)), 4);
	pthread_join(th, NULL);
	assert_int_equal(a.r, 4);
	E.max_delay_us = 0;
	/* epoll, edge-triggered: one event per datagram arrival. */
	assert_int_equal(mst_epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev), 0);
	assert_int_equal(mst_epoll_wait(ep, out, 2, 20), 0);
	assert_int_equal(mst_sendto(fd, "a", 1, 0, (struct sockaddr *)&to, sizeof(to)), 1);
	assert_int_equal(mst_epoll_wait(ep, out, 2, 1000), 1);
	assert_int_equal(out[0].data.u32, 5);
	assert_int_equal(out[0].events, EPOLLIN);
	assert_int_equal(mst_epoll_wait(ep, out, 2, 0), 0);
	assert_int_equal(mst_sendto(fd, "b", 1, 0, (struct sockaddr *)&to, sizeof(to)), 1);
	assert_int_equal(mst_epoll_wait(ep, out, 2, 1000), 1);
	assert_int_equal(mst_recv(fd, b, sizeof(b), 0), 1);
	assert_int_equal(mst_recv(fd, b, sizeof(b), 0), 1);
	struct pollfd p = { .fd = fd, .events = POLLIN };
	assert_int_equal(mst_poll(&p, 1, 0), 0);
	assert_int_equal(mst_sendto(fd, "c", 1, 0, (struct sockaddr *)&to, sizeof(to)), 1);
	assert_int_equal(mst_poll(&p, 1, 1000), 1);
	assert_int_equal(p.revents, POLLIN);
	mst_close(ep);
	mst_close(fd);
}

/* Engine-written headers that lie: EIO, never a read past rx_tail. */
static void test_udp_impossible_rx_records_are_eio(void **state)
{
	int fd = mst_socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	struct mst_shm_sock *k = &E.socks[fd - MST_FD_BASE];
	struct mst_shm_dgram h = { .addr = htonl(0x0a000002), .port = 7 };
	uint8_t b[FIFO_SZ];
	uint32_t head;
	struct pollfd p = { .fd = fd, .events = POLLIN };

	E.paused = 1;
	head = k->rx_head;
	struct { uint32_t len, publish; } cases[] = {
		{ 500, 16 + 100 },          /* claims more than published */
		{ 0xffffffffu, 64 },        /* absurd length */
		{ MST_SHM_DGRAM_MAX + 1, 2048 },
		{ 0, 8 },                   /* not even a header */
		{ 16, FIFO_SZ + 8 },        /* level above the FIFO size */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		h.len = cases[i].len;
		fifo_copy_in(E.base + k->rx_off, FIFO_SZ, head, &h, sizeof(h));
		__atomic_store_n(&k->rx_tail, head + cases[i].publish, __ATOMIC_RELEASE);
		assert_int_equal(mst_poll(&p, 1, 0), 1);
		assert_true(p.revents & POLLIN);
		assert_int_equal(mst_recv(fd, b, sizeof(b), 0), -1);
		assert_int_equal(errno, EIO);
		assert_int_equal(k->rx_head, head); /* nothing consumed */
	}
	/* The engine repairs (test only): a good record reads fine. */
	h.len = 3;
	fifo_copy_in(E.base + k->rx_off, FIFO_SZ, head, &h, sizeof(h));
	fifo_copy_in(E.base + k->rx_off, FIFO_SZ, head + 16, "abc", 3);
	__atomic_store_n(&k->rx_tail, head + 24, __ATOMIC_RELEASE);
	assert_int_equal(mst_recv(fd, b, sizeof(b), 0), 3);
	assert_memory_equal(b, "abc", 3);
	assert_int_equal(k->rx_head, head + 24);
	E.paused = 0;
	mst_close(fd);
}

/* ---- Pony endpoints ----------------------------------------------------- */

/* Stop the pump and wait until no pump pass is under way: the test may
 * then write the record ring itself. */
static void pause_engine(void)
{
	uint64_t l;

	E.paused = 1;
	l = E.loops;
	while (E.loops < l + 2)
		sched_yield();
}

/* A thread that waits for a DONE while the engine floods its event ring
 * with READYs (a server thread owning many busy sockets) must still get
 * that DONE: mustangd posts a poll's events before it wakes anyone, so
 * READYs may fill the ring before the command is served. READYs are
 * droppable (evt_overflow makes the library rescan); a dropped DONE
 * would block the command forever, so the last slots are kept for
 * DONE/ERROR (APP_EVT_RESERVE in engines/app.c; the fake's eng_push). */
struct flood_arg {
	volatile int qp, go, done;
	int r;
};

static void *flooded_caller(void *arg)
{
	struct flood_arg *a = arg;
	struct thr *t = thr_get();

	a->qp = t ? t->qp : -1;
	while (!a->go)
		usleep(1000);
	a->r = mst_socket(AF_INET, SOCK_STREAM, 0);
	a->done = 1;
	return NULL;
}

static void test_flooded_event_ring_still_delivers_done(void **state)
{
	struct flood_arg a = { .qp = -2 };
	int fd = connected_socket();
	pthread_t th;

	pthread_create(&th, NULL, flooded_caller, &a);
	while (a.qp == -2)
		usleep(1000);
	assert_true(a.qp > 0);
	pause_engine();
	E.hold_cmds = 1;
	a.go = 1;
	/* The caller posted SOCKET and sleeps (wake set) for its DONE. */
	for (int i = 0; i < 5000 && !__atomic_load_n(&E.qps[a.qp].wake, __ATOMIC_ACQUIRE); i++)
		usleep(1000);
	assert_int_equal(__atomic_load_n(&E.qps[a.qp].wake, __ATOMIC_ACQUIRE), 1);
	/* One engine poll: READYs first, no wake-up yet, then the command. */
	for (unsigned i = 0; i < 2 * MST_SHM_RING_SLOTS; i++) {
		struct mst_shm_msg m = { .op = MST_EV_READY, .sock = fd - MST_FD_BASE,
					 .a = MST_READY_OUT };

		eng_push(a.qp, &m);
	}
	assert_true(E.evt_drops >= MST_SHM_RING_SLOTS);
	assert_true(E.qps[a.qp].evt_overflow == E.evt_drops);
	E.hold_cmds = 0;
	E.paused = 0;
	for (int i = 0; i < 5000 && !a.done; i++)
		usleep(1000);
	if (!a.done) {
		/* Its DONE was dropped: it would block for good. Answer the
		 * command with an ERROR so the test can end, and fail. */
		const struct mst_shm_ring *cr = &E.qps[a.qp].cmd;
		struct mst_shm_msg m = { .op = MST_EV_ERROR, .result = -EIO,
					 .seq = cr->slots[(cr->prod - 1) & (MST_SHM_RING_SLOTS - 1)].seq };

		eng_post(a.qp, &m);
		pthread_join(th, NULL);
		fail_msg("the DONE of a command was dropped on a ring full of READYs");
	}
	pthread_join(th, NULL);
	assert_true(a.r >= MST_FD_BASE);
	mst_close(a.r);
	mst_close(fd);
}

static int pony_ep(uint16_t svc, int nonblock)
{
	int fd = mst_pony_open(svc);

	assert_true(fd >= MST_FD_BASE);
	assert_true(E.pony[fd - MST_FD_BASE].on);
	assert_int_equal(E.pony[fd - MST_FD_BASE].svc, svc);
	if (nonblock)
		assert_int_equal(mst_fcntl(fd, F_SETFL, O_NONBLOCK), 0);
	return fd;
}

static struct mst_shm_sock *pony_sock(int fd)
{
	return &E.socks[fd - MST_FD_BASE];
}

static uint32_t ring_level(int fd)
{
	struct mst_shm_sock *k = pony_sock(fd);

	return __atomic_load_n(&k->rx_tail, __ATOMIC_ACQUIRE) - __atomic_load_n(&k->rx_head, __ATOMIC_ACQUIRE);
}

/* Wait (bounded) until the engine has published `bytes` of records. */
static void wait_ring_level(int fd, uint32_t bytes)
{
	int64_t end = now_ns() + 2000000000;

	while (ring_level(fd) != bytes) {
		assert_true(now_ns() < end);
		sched_yield();
	}
}

/* Wait (bounded) until the paused engine holds n ops of fd. */
static void wait_queued(int fd, uint32_t n)
{
	const struct eng_pony *P = &E.pony[fd - MST_FD_BASE];
	int64_t end = now_ns() + 2000000000;

	while (__atomic_load_n(&P->qt, __ATOMIC_ACQUIRE) - P->qh != n) {
		assert_true(now_ns() < end);
		sched_yield();
	}
}

/* Test-only engine: a record at rx_tail (engine paused). */
static void inject(int fd, const struct mst_shm_pony_rec *r)
{
	pony_put(pony_sock(fd), r);
}

/* Collect exactly `want` events (or fail after ~5 s). */
static void poll_n(int fd, struct mst_pony_event *evs, int want)
{
	int64_t end = now_ns() + 5000000000;
	int got = 0;

	while (got < want) {
		int r = mst_pony_poll(fd, evs + got, want - got, 1000);

		assert_true(r >= 0);
		got += r;
		assert_true(now_ns() < end);
	}
}

static const uint8_t *pony_arena_lib(void)
{
	return mst_lib.base + mst_lib.hdr->pony_off;
}

/* Message i of a run: its length and bytes. */
static size_t msg_len(uint64_t i)
{
	return 1 + (size_t)(i * 97 % 1500);
}

static void msg_bytes(uint8_t *p, uint64_t i)
{
	fill_pattern(p, msg_len(i), (unsigned)i + 17u);
}

/* evs[0..2n): SEND_DONE(first + j), MSG(first + j) pairs, in order, as
 * sent from svc to (PEER, dst) on stream (first + j) % 3. */
static void check_pairs(const struct mst_pony_event *evs, int n, uint64_t first, uint16_t svc,
			uint16_t dst)
{
	uint8_t want[1600];

	for (int j = 0; j < n; j++) {
		const struct mst_pony_event *d = &evs[2 * j], *m = &evs[2 * j + 1];
		uint64_t i = first + (uint64_t)j;

		assert_int_equal(d->kind, MST_PONY_SEND_DONE);
		assert_int_equal(d->cookie, 1000 + i);
		assert_int_equal(d->status, 0);
		assert_int_equal(d->len, msg_len(i));
		assert_int_equal(d->stream, i % 3);
		assert_int_equal(d->peer, PEER);
		assert_int_equal(d->src_svc, svc);
		assert_int_equal(d->dst_svc, dst);
		assert_int_equal(m->kind, MST_PONY_MSG);
		assert_int_equal(m->status, 0);
		assert_int_equal(m->len, msg_len(i));
		assert_int_equal(m->stream, i % 3);
		assert_int_equal(m->peer, PEER);
		assert_int_equal(m->src_svc, dst);
		assert_int_equal(m->dst_svc, svc);
		assert_non_null(m->data);
		assert_true((const uint8_t *)m->data >= pony_arena_lib() + PONY_REG_SZ);
		msg_bytes(want, i);
		assert_memory_equal(m->data, want, msg_len(i));
	}
}

static int send_i(int fd, uint64_t i)
{
	uint8_t b[1600];

	msg_bytes(b, i);
	return mst_pony_send(fd, PEER, 7, (uint32_t)(i % 3), b, msg_len(i), 1000 + i);
}

static void wait_count(volatile uint64_t *c, uint64_t want)
{
	int64_t end = now_ns() + 2000000000;

	while (*c < want) {
		assert_true(now_ns() < end);
		sched_yield();
	}
}

/* 1. O_NONBLOCK: the op budget (records / 2 = 32), then EAGAIN; the
 * completions come back in order with the app's cookies and bytes. */
static void test_pony_nonblocking_budget_and_completions(void **state)
{
	static uint8_t big[3][200 << 10];
	struct mst_pony_event evs[80];
	int fd = pony_ep(100, 1), i;

	assert_true(mst_fcntl(fd, F_GETFL) & O_NONBLOCK);
	pause_engine();
	for (i = 0; i < (int)PONY_BUDGET; i++)
		assert_int_equal(send_i(fd, (uint64_t)i), 0);
	assert_int_equal(send_i(fd, 99), -1);
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(mst_pony_send(fd, PEER, 7, 0, "x", 1, 5), -1);
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(mst_pony_poll(fd, evs, 80, 0), 0);
	wait_queued(fd, PONY_BUDGET); /* the engine has them all, no more */
	E.paused = 0;
	poll_n(fd, evs, 2 * PONY_BUDGET);
	check_pairs(evs, PONY_BUDGET, 0, 100, 7);
	for (i = 0; i < (int)PONY_BUDGET; i++) {
		assert_int_not_equal(evs[2 * i + 1].buf, 0);
		if (i)
			assert_int_not_equal(evs[2 * i + 1].buf, evs[2 * i - 1].buf);
		assert_int_equal(mst_pony_release(fd, &evs[2 * i + 1]), 0);
	}
	assert_int_equal(mst_pony_release(fd, &evs[0]), -1); /* a SEND_DONE */
	assert_int_equal(errno, EINVAL);
	wait_count(&E.pony_releases, PONY_BUDGET);
	assert_int_equal(mst_pony_poll(fd, evs, 80, 0), 0);
	/* Room again. */
	assert_int_equal(send_i(fd, PONY_BUDGET), 0);
	poll_n(fd, evs, 2);
	check_pairs(evs, 1, PONY_BUDGET, 100, 7);
	/* The copy buffer (512 KiB) limits too: two 200 KiB messages fit,
	 * a third does not (EAGAIN with op slots free), a small one does. */
	pause_engine();
	for (i = 0; i < 3; i++)
		fill_pattern(big[i], sizeof(big[i]), 50u + (unsigned)i);
	assert_int_equal(mst_pony_send(fd, PEER, 7, 1, big[0], sizeof(big[0]), 1), 0);
	assert_int_equal(mst_pony_send(fd, PEER, 7, 1, big[1], sizeof(big[1]), 2), 0);
	assert_int_equal(mst_pony_send(fd, PEER, 7, 1, big[2], sizeof(big[2]), 3), -1);
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(mst_pony_send(fd, PEER, 7, 1, big[2], 100, 4), 0);
	E.paused = 0;
	poll_n(fd, evs, 6);
	for (i = 0; i < 3; i++) {
		size_t n = i < 2 ? sizeof(big[i]) : 100;

		assert_int_equal(evs[2 * i].kind, MST_PONY_SEND_DONE);
		assert_int_equal(evs[2 * i].cookie, i < 2 ? (uint64_t)i + 1 : 4);
		assert_int_equal(evs[2 * i + 1].kind, MST_PONY_MSG);
		assert_int_equal(evs[2 * i + 1].len, n);
		assert_memory_equal(evs[2 * i + 1].data, big[i], n);
	}
	assert_int_equal(mst_pony_send(fd, PEER, 7, 1, big[2], sizeof(big[2]), 3), 0);
	poll_n(fd, evs, 2);
	assert_int_equal(evs[0].cookie, 3);
	assert_memory_equal(evs[1].data, big[2], sizeof(big[2]));
	assert_int_equal(E.pony_overbudget, 0);
	assert_int_equal(E.pony_bad_cmds, 0);
	assert_int_equal(mst_close(fd), 0);
}

/* Argument checks, regions (send_reg, READ), the copy buffer's key. */
static void test_pony_regions_and_argument_errors(void **state)
{
	struct mst_pony_event evs[4];
	int fd = pony_ep(110, 0), tcp = mst_socket(AF_INET, SOCK_STREAM, 0);
	uint64_t key = 0, txkey;
	uint8_t *reg, b[64] = { 1 };

	assert_int_equal(mst_pony_open(0), -1);
	assert_int_equal(errno, EINVAL);
	/* A service in use: EADDRINUSE, and the engine socket is closed. */
	assert_int_equal(mst_pony_open(110), -1);
	assert_int_equal(errno, EADDRINUSE);
	for (unsigned i = 0; i < N_SOCKS; i++)
		assert_true(E.used[i] == (i == (unsigned)(fd - MST_FD_BASE) || i == (unsigned)(tcp - MST_FD_BASE)));
	/* Pony off in the daemon. */
	E.hdr->pony_max_msg = 0;
	assert_int_equal(mst_pony_open(111), -1);
	assert_int_equal(errno, EPROTONOSUPPORT);
	E.hdr->pony_max_msg = PONY_MAX_MSG;
	/* A region the engine places outside the arena: EIO, never used. */
	E.pony_reg_lie = 1;
	assert_int_equal(mst_pony_send(fd, PEER, 7, 2, "hello", 5, 42), -1);
	assert_int_equal(errno, EIO);
	assert_null(mst_pony_reg_alloc(fd, 4096, 0, &key));
	assert_int_equal(errno, EIO);
	E.pony_reg_lie = 0;
	E.pony_key = 0;
	E.pony_reg_next = 0;
	assert_int_equal(mst_pony_send(fd, 0, 7, 0, b, 1, 0), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(mst_pony_send(fd, PEER, 0, 0, b, 1, 0), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(mst_pony_send(fd, PEER, 7, 0, b, 0, 0), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(mst_pony_send(fd, PEER, 7, 0, b, PONY_MAX_MSG + 1, 0), -1);
	assert_int_equal(errno, EMSGSIZE);
	assert_int_equal(mst_pony_send(fd, PEER, 7, 0, NULL, 1, 0), -1);
	assert_int_equal(errno, EFAULT);
	assert_int_equal(mst_pony_send(tcp, PEER, 7, 0, b, 1, 0), -1);
	assert_int_equal(errno, ENOTSOCK);
	assert_int_equal(mst_pony_poll(tcp, evs, 4, 0), -1);
	assert_int_equal(errno, ENOTSOCK);
	assert_int_equal(mst_pony_send(12345, PEER, 7, 0, b, 1, 0), -1);
	assert_int_equal(errno, EBADF);
	assert_int_equal(mst_pony_poll(fd, NULL, 4, 0), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(mst_pony_poll(fd, evs, 0, 0), -1);
	assert_int_equal(errno, EINVAL);
	/* The first copying send registers the copy buffer: 2 x max msg. */
	assert_int_equal(E.pony_key, 0);
	assert_int_equal(mst_pony_send(fd, PEER, 7, 2, "hello", 5, 42), 0);
	assert_int_equal(E.pony_key, 1);
	assert_int_equal(E.pony_reg_next, 2 * PONY_MAX_MSG);
	txkey = E.pony_last_key;
	poll_n(fd, evs, 2);
	assert_int_equal(evs[0].cookie, 42);
	assert_memory_equal(evs[1].data, "hello", 5);
	assert_int_equal(mst_pony_reg_free(fd, txkey), -1);
	assert_int_equal(errno, EBUSY);
	/* A region: send from it in place, READ into it. */
	reg = mst_pony_reg_alloc(fd, 4096, MST_PONY_REMOTE_READ, &key);
	assert_non_null(reg);
	assert_int_equal(key, E.pony_last_key);
	assert_ptr_equal(reg, pony_arena_lib() + 2 * PONY_MAX_MSG);
	assert_null(mst_pony_reg_alloc(fd, 4096, 0x80, &key));
	assert_int_equal(errno, EINVAL);
	memcpy(reg, "in place", 8);
	assert_int_equal(mst_pony_send_reg(fd, PEER, 9, 1, reg, 8, 43), 0);
	assert_int_equal(mst_pony_send_reg(fd, PEER, 9, 1, b, 8, 44), -1); /* not in the arena */
	assert_int_equal(errno, EFAULT);
	assert_int_equal(mst_pony_read(fd, PEER, 9, 0x8877665544332211ull, 128, 64, reg + 64, 45), 0);
	assert_int_equal(mst_pony_read(fd, PEER, 9, 77, 0, 64, b, 46), -1);
	assert_int_equal(errno, EFAULT);
	poll_n(fd, evs, 3);
	assert_int_equal(evs[0].kind, MST_PONY_SEND_DONE);
	assert_int_equal(evs[0].cookie, 43);
	assert_int_equal(evs[0].dst_svc, 9);
	assert_int_equal(evs[1].kind, MST_PONY_MSG);
	assert_memory_equal(evs[1].data, "in place", 8);
	assert_int_equal(evs[2].kind, MST_PONY_READ_DONE);
	assert_int_equal(evs[2].cookie, 45);
	assert_int_equal(evs[2].len, 64);
	assert_true(E.pony_read_key == 0x8877665544332211ull); /* all 64 bits reached the engine */
	assert_int_equal(mst_pony_reg_free(fd, key), 0);
	assert_int_equal(mst_pony_reg_free(fd, 999), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(E.pony_unregs, 2);
	assert_int_equal(E.pony_overbudget, 0);
	mst_close(tcp);
	assert_int_equal(mst_close(fd), 0);
	assert_int_equal(mst_pony_poll(fd, evs, 4, 0), -1);
	assert_int_equal(errno, EBADF);
}

struct pony_thr {
	int fd;
	uint64_t i;
	int r, err;
	volatile int done;
};

/* Sends 0 .. a->i - 1; a->r = -1 at the first failure. */
static void *pony_send_loop(void *arg)
{
	struct pony_thr *a = arg;

	for (uint64_t i = 0; i < a->i && a->r == 0; i++)
		if (send_i(a->fd, i) != 0) {
			a->r = -1;
			a->err = errno;
		}
	a->done = 1;
	return NULL;
}

/* 2. Blocking (the default): 200 sends without a poll all return 0
 * (room comes from the records the library stashes); then every event,
 * in order, none lost or duplicated. */
static void test_pony_blocking_sends_stash_in_order(void **state)
{
	static struct mst_pony_event evs[400];
	int fd = pony_ep(101, 0);
	struct pony_thr a = { .fd = fd, .i = 200 };
	struct timespec ts;
	pthread_t th;

	/* In a thread, so that a send that never gets room fails the test
	 * instead of hanging it. */
	pthread_create(&th, NULL, pony_send_loop, &a);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 5;
	if (pthread_timedjoin_np(th, NULL, &ts) != 0)
		fail_msg("200 blocking sends without a poll did not complete");
	assert_int_equal(a.r, 0);
	poll_n(fd, evs, 400);
	check_pairs(evs, 200, 0, 101, 7);
	assert_int_equal(mst_pony_poll(fd, evs, 400, 0), 0);
	assert_int_equal(E.pony_done, 200);
	assert_int_equal(E.pony_msgs, 200);
	assert_int_equal(E.pony_overbudget, 0);
	assert_int_equal(mst_close(fd), 0);
}

static void *pony_blocking_send(void *arg)
{
	struct pony_thr *a = arg;

	a->r = send_i(a->fd, a->i);
	a->err = errno;
	a->done = 1;
	return NULL;
}

/* 2b. With the budget used up and the engine paused, a blocking send
 * sleeps until completions come; closing the endpoint ends it (EBADF). */
static void test_pony_blocking_send_waits_for_engine(void **state)
{
	struct mst_pony_event evs[2 * PONY_BUDGET + 2];
	int fd = pony_ep(102, 0);
	struct pony_thr a = { .fd = fd, .i = PONY_BUDGET };
	pthread_t th;

	pause_engine();
	for (uint64_t i = 0; i < PONY_BUDGET; i++)
		assert_int_equal(send_i(fd, i), 0);
	pthread_create(&th, NULL, pony_blocking_send, &a);
	usleep(50000);
	assert_false(a.done);
	E.paused = 0;
	pthread_join(th, NULL);
	assert_int_equal(a.r, 0);
	poll_n(fd, evs, 2 * PONY_BUDGET + 2);
	check_pairs(evs, PONY_BUDGET + 1, 0, 102, 7);
	assert_int_equal(mst_pony_poll(fd, evs, 4, 0), 0);
	/* Closed while blocked: EBADF. */
	pause_engine();
	for (uint64_t i = 0; i < PONY_BUDGET; i++)
		assert_int_equal(send_i(fd, i), 0);
	a = (struct pony_thr){ .fd = fd, .i = PONY_BUDGET };
	pthread_create(&th, NULL, pony_blocking_send, &a);
	usleep(20000);
	assert_false(a.done);
	assert_int_equal(mst_close(fd), 0);
	pthread_join(th, NULL);
	assert_int_equal(a.r, -1);
	assert_int_equal(a.err, EBADF);
	E.paused = 0;
	assert_int_equal(E.pony_overbudget, 0);
}

static void *unpause_later(void *arg)
{
	usleep(20000);
	E.paused = 0;
	return NULL;
}

/* 3. mst_pony_poll's timeout: 0 only once it has passed; at once when
 * something is pending; woken when something arrives. */
static void test_pony_poll_timeout(void **state)
{
	struct mst_pony_event evs[4];
	int fd = pony_ep(103, 0);
	int64_t t0, el;
	pthread_t th;

	assert_int_equal(mst_pony_poll(fd, evs, 4, 0), 0);
	t0 = now_ns();
	assert_int_equal(mst_pony_poll(fd, evs, 4, 100), 0);
	el = now_ns() - t0;
	assert_true(el >= 90 * 1000000);
	/* Pending: returns at once (nowhere near its 10 s). */
	assert_int_equal(send_i(fd, 0), 0);
	wait_ring_level(fd, 2 * PREC);
	t0 = now_ns();
	assert_int_equal(mst_pony_poll(fd, evs, 4, 10000), 2);
	assert_true(now_ns() - t0 < 5000000000);
	check_pairs(evs, 1, 0, 103, 7);
	/* Arriving while the poll sleeps: woken. */
	pause_engine();
	assert_int_equal(send_i(fd, 1), 0);
	pthread_create(&th, NULL, unpause_later, NULL);
	t0 = now_ns();
	assert_true(mst_pony_poll(fd, evs, 1, 10000) == 1);
	assert_true(now_ns() - t0 < 5000000000);
	pthread_join(th, NULL);
	assert_int_equal(evs[0].kind, MST_PONY_SEND_DONE);
	assert_int_equal(evs[0].cookie, 1001);
	poll_n(fd, evs, 1);
	assert_int_equal(evs[0].kind, MST_PONY_MSG);
	assert_int_equal(mst_close(fd), 0);
}

/* 4a. An impossible rx_tail: EIO from poll (any timeout) and from a
 * blocking send that needs room, never a hang or a wild read. */
static void test_pony_impossible_rx_tail_is_eio(void **state)
{
	struct mst_pony_event evs[4];
	int fd = pony_ep(104, 0);
	struct mst_shm_sock *k = pony_sock(fd);
	struct pollfd p = { .fd = fd, .events = POLLIN };
	uint32_t head = k->rx_head;
	uint32_t bad[] = { head + 32, head + FIFO_SZ + PREC, head - PREC, head + 1 };
	struct pony_thr a = { .fd = fd, .i = PONY_BUDGET };
	struct timespec ts;
	pthread_t th;

	pause_engine();
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		__atomic_store_n(&k->rx_tail, bad[i], __ATOMIC_RELEASE);
		assert_int_equal(mst_pony_poll(fd, evs, 4, 0), -1);
		assert_int_equal(errno, EIO);
		assert_int_equal(mst_pony_poll(fd, evs, 4, 50), -1);
		assert_int_equal(errno, EIO);
		assert_int_equal(mst_pony_poll(fd, evs, 4, -1), -1);
		assert_int_equal(errno, EIO);
		assert_int_equal(mst_poll(&p, 1, 0), 1); /* the reader comes and gets EIO */
		assert_int_equal(k->rx_head, head);
	}
	/* Repaired (test only): usable again. */
	__atomic_store_n(&k->rx_tail, head, __ATOMIC_RELEASE);
	assert_int_equal(mst_pony_poll(fd, evs, 4, 0), 0);
	for (uint64_t i = 0; i < PONY_BUDGET; i++)
		assert_int_equal(send_i(fd, i), 0);
	__atomic_store_n(&k->rx_tail, head + 32, __ATOMIC_RELEASE);
	pthread_create(&th, NULL, pony_blocking_send, &a);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 3;
	if (pthread_timedjoin_np(th, NULL, &ts) != 0)
		fail_msg("blocking mst_pony_send hangs on an impossible rx_tail");
	assert_int_equal(a.r, -1);
	assert_int_equal(a.err, EIO);
	__atomic_store_n(&k->rx_tail, head, __ATOMIC_RELEASE);
	E.paused = 0;
	poll_n(fd, evs, 2); /* the engine goes on with the queued ones */
	check_pairs(evs, 1, 0, 104, 7);
	assert_int_equal(mst_close(fd), 0);
}

/* 4b, 4c. Records that name no live op are skipped; a MSG outside the
 * arena is an EIO event without data. */
static void test_pony_bad_records_skipped_or_eio(void **state)
{
	struct mst_pony_event evs[16];
	int fd = pony_ep(105, 1);
	struct eng_pony *P = &E.pony[fd - MST_FD_BASE];
	uint64_t lc;

	pause_engine();
	assert_int_equal(send_i(fd, 0), 0);
	wait_queued(fd, 1);
	lc = P->q[P->qh % PQ_CAP].d; /* the library's cookie of the live op */
	uint64_t junk[] = {
		lc + (1ull << 32),                  /* live slot, other generation */
		(lc & 0xffffffffu) ^ 1,             /* a free slot */
		PONY_BUDGET, 0xffffffffu, ~0ull,    /* no such slot */
	};
	for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
		inject(fd, &(struct mst_shm_pony_rec){ .kind = MST_PONY_REC_SEND, .cookie = junk[i] });
		inject(fd, &(struct mst_shm_pony_rec){ .kind = MST_PONY_REC_READ, .cookie = junk[i] });
	}
	inject(fd, &(struct mst_shm_pony_rec){ .kind = 0, .cookie = lc });
	inject(fd, &(struct mst_shm_pony_rec){ .kind = 77, .cookie = lc });
	assert_int_equal(mst_pony_poll(fd, evs, 16, 0), 0);
	assert_int_equal(ring_level(fd), 0); /* consumed, not stuck */
	/* A good record after junk still comes out. */
	inject(fd, &(struct mst_shm_pony_rec){ .kind = MST_PONY_REC_SEND, .cookie = junk[0] });
	inject(fd, &(struct mst_shm_pony_rec){ .kind = MST_PONY_REC_MSG, .len = 3,
					       .off = PONY_REG_SZ, .buf = 9 });
	assert_int_equal(mst_pony_poll(fd, evs, 16, 0), 1);
	assert_int_equal(evs[0].kind, MST_PONY_MSG);
	assert_int_equal(evs[0].buf, 9);
	assert_int_equal(evs[0].status, 0);
	assert_ptr_equal(evs[0].data, pony_arena_lib() + PONY_REG_SZ);
	/* The live op completes once, with the app's cookie. */
	E.paused = 0;
	poll_n(fd, evs, 2);
	check_pairs(evs, 1, 0, 105, 7);
	pause_engine();
	inject(fd, &(struct mst_shm_pony_rec){ .kind = MST_PONY_REC_SEND, .cookie = lc }); /* again */
	assert_int_equal(mst_pony_poll(fd, evs, 16, 0), 0);
	/* Nothing was freed twice or leaked: exactly the budget again. */
	for (uint64_t i = 0; i < PONY_BUDGET; i++)
		assert_int_equal(send_i(fd, i), 0);
	assert_int_equal(send_i(fd, PONY_BUDGET), -1);
	assert_int_equal(errno, EAGAIN);
	/* 4c: MSG records outside the arena. */
	struct { uint64_t off; uint32_t len; int ok; } m[] = {
		{ PONY_SZ, 1, 0 }, { PONY_SZ - 10, 20, 0 }, { 0, 0xffffffffu, 0 },
		{ ~0ull, 0, 0 }, { PONY_SZ + 1, 0, 0 }, { ~0ull - 3, 8, 0 },
		{ PONY_SZ - 16, 16, 1 }, { 0, PONY_SZ, 1 },
	};
	const int nm = (int)(sizeof(m) / sizeof(m[0]));

	for (int i = 0; i < nm; i++)
		inject(fd, &(struct mst_shm_pony_rec){ .kind = MST_PONY_REC_MSG, .off = m[i].off,
						       .len = m[i].len, .buf = 100u + (uint32_t)i,
						       .peer = PEER, .stream = 5 });
	assert_int_equal(mst_pony_poll(fd, evs, 16, 0), nm);
	for (int i = 0; i < nm; i++) {
		assert_int_equal(evs[i].kind, MST_PONY_MSG);
		assert_int_equal(evs[i].buf, 100 + i);
		assert_int_equal(evs[i].peer, PEER);
		if (m[i].ok) {
			assert_int_equal(evs[i].status, 0);
			assert_int_equal(evs[i].len, m[i].len);
			assert_ptr_equal(evs[i].data, pony_arena_lib() + m[i].off);
		} else {
			assert_int_equal(evs[i].status, -EIO);
			assert_null(evs[i].data);
			assert_int_equal(evs[i].len, 0);
		}
		assert_int_equal(mst_pony_release(fd, &evs[i]), 0); /* still releasable */
	}
	E.paused = 0;
	poll_n(fd, evs, 2); /* the first of the 32 queued */
	check_pairs(evs, 1, 0, 105, 7);
	assert_int_equal(E.pony_overbudget, 0);
	assert_int_equal(mst_close(fd), 0);
}

/* 5. Events stashed by a blocking send are readable for poll/epoll
 * while the ring itself is empty. */
static void test_pony_stash_counts_for_poll_and_epoll(void **state)
{
	struct mst_pony_event evs[2 * PONY_BUDGET + 2];
	int fd = pony_ep(106, 0), ep = mst_epoll_create1(0);
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = 42 }, out[2];
	struct pollfd p = { .fd = fd, .events = POLLIN };

	assert_int_equal(mst_epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev), 0);
	assert_int_equal(mst_poll(&p, 1, 0), 0);
	assert_int_equal(mst_epoll_wait(ep, out, 2, 0), 0);
	pause_engine();
	for (uint64_t i = 0; i < PONY_BUDGET; i++)
		assert_int_equal(send_i(fd, i), 0);
	E.paused = 0;
	wait_ring_level(fd, FIFO_SZ); /* 32 SEND + 32 MSG: the ring is full */
	pause_engine();
	assert_int_equal(send_i(fd, PONY_BUDGET), 0); /* takes them all */
	assert_int_equal(ring_level(fd), 0);
	assert_int_equal(mst_poll(&p, 1, 0), 1);
	assert_int_equal(p.revents, POLLIN);
	assert_int_equal(mst_poll(&p, 1, 1000), 1);
	assert_int_equal(mst_epoll_wait(ep, out, 2, 0), 1);
	assert_int_equal(out[0].events, EPOLLIN);
	assert_int_equal(out[0].data.u32, 42);
	poll_n(fd, evs, 2 * PONY_BUDGET);
	check_pairs(evs, PONY_BUDGET, 0, 106, 7);
	/* Stash and ring empty (the last send is still queued). */
	assert_int_equal(mst_poll(&p, 1, 0), 0);
	assert_int_equal(mst_epoll_wait(ep, out, 2, 0), 0);
	E.paused = 0;
	assert_int_equal(mst_poll(&p, 1, 2000), 1);
	assert_int_equal(p.revents, POLLIN);
	poll_n(fd, evs, 2);
	check_pairs(evs, 1, PONY_BUDGET, 106, 7);
	assert_int_equal(mst_close(ep), 0);
	assert_int_equal(mst_close(fd), 0);
}

/* Messages larger than half the copy buffer, blocking: the copy ring
 * wraps and waits for SEND_DONEs; every echo has the right bytes. */
static void test_pony_blocking_large_messages(void **state)
{
	static uint8_t buf[PONY_MAX_MSG];
	static struct mst_pony_event evs[48];
	static const size_t sz[] = { 200 << 10, 150 << 10, PONY_MAX_MSG, 1, 100 << 10,
				     PONY_MAX_MSG, 3000, 255 << 10 };
	int fd = pony_ep(107, 0), n = 24;

	for (int i = 0; i < n; i++) {
		fill_pattern(buf, sz[i % 8], 300u + (unsigned)i);
		assert_int_equal(mst_pony_send(fd, PEER, 7, 0, buf, sz[i % 8], (uint64_t)i), 0);
	}
	poll_n(fd, evs, 2 * n);
	for (int i = 0; i < n; i++) {
		assert_int_equal(evs[2 * i].kind, MST_PONY_SEND_DONE);
		assert_int_equal(evs[2 * i].cookie, i);
		assert_int_equal(evs[2 * i + 1].kind, MST_PONY_MSG);
		assert_int_equal(evs[2 * i + 1].len, sz[i % 8]);
		fill_pattern(buf, sz[i % 8], 300u + (unsigned)i);
		assert_memory_equal(evs[2 * i + 1].data, buf, sz[i % 8]);
	}
	assert_int_equal(E.pony_overbudget, 0);
	assert_int_equal(mst_close(fd), 0);
}

struct pony_sender {
	int fd, id, n, r;
};

static void *pony_sender(void *arg)
{
	struct pony_sender *a = arg;
	uint8_t b[600];

	for (int i = 0; i < a->n && a->r == 0; i++) {
		uint64_t c = (uint64_t)a->id << 32 | (uint64_t)i;
		size_t len = 8 + (size_t)(i * 13 % 500);

		memcpy(b, &c, 8);
		fill_pattern(b + 8, len - 8, (unsigned)c);
		a->r = mst_pony_send(a->fd, PEER, 7, (uint32_t)a->id, b, len, c);
	}
	return NULL;
}

/* Two blocking senders and a poller on one endpoint: every SEND_DONE
 * and every MSG exactly once, each sender's in its order. */
static void test_pony_two_senders_one_poller(void **state)
{
	enum { N = 300 };
	struct pony_sender s[2] = { { .id = 1, .n = N }, { .id = 2, .n = N } };
	int fd = pony_ep(108, 0), done[3] = { 0 }, msgs[3] = { 0 };
	struct mst_pony_event evs[64];
	int64_t end = now_ns() + 5000000000;
	pthread_t th[2];
	uint8_t want[600];

	for (int i = 0; i < 2; i++) {
		s[i].fd = fd;
		pthread_create(&th[i], NULL, pony_sender, &s[i]);
	}
	while (done[1] + done[2] + msgs[1] + msgs[2] < 4 * N) {
		int r = mst_pony_poll(fd, evs, 64, 1000);

		assert_true(r >= 0);
		assert_true(now_ns() < end);
		for (int j = 0; j < r; j++) {
			const struct mst_pony_event *e = &evs[j];
			uint64_t c;
			int id;

			if (e->kind == MST_PONY_SEND_DONE) {
				c = e->cookie;
				id = (int)(c >> 32);
				assert_true(id == 1 || id == 2);
				assert_int_equal(e->stream, id);
				assert_int_equal(c & 0xffffffffu, done[id]); /* in order, once */
				done[id]++;
				continue;
			}
			assert_int_equal(e->kind, MST_PONY_MSG);
			assert_true(e->len >= 8);
			memcpy(&c, e->data, 8);
			id = (int)(c >> 32);
			assert_true(id == 1 || id == 2);
			assert_int_equal(e->stream, id);
			assert_int_equal(c & 0xffffffffu, msgs[id]);
			assert_int_equal(e->len, 8 + (c & 0xffffffffu) * 13 % 500);
			fill_pattern(want, e->len - 8, (unsigned)c);
			assert_memory_equal((const uint8_t *)e->data + 8, want, e->len - 8);
			msgs[id]++;
		}
	}
	for (int i = 0; i < 2; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(s[i].r, 0);
	}
	assert_int_equal(mst_pony_poll(fd, evs, 64, 0), 0);
	assert_int_equal(E.pony_overbudget, 0);
	assert_int_equal(mst_close(fd), 0);
}


/*
 * A Pony endpoint's library state does not outlive mst_fini(): after a new
 * attach (whose socket generations start over), a TCP socket on an index
 * that once held a Pony endpoint is not taken for it (ENOTSOCK from
 * mst_pony_*, no POLLIN from the old endpoint's stash).
 */
static void test_pony_closed_endpoint_gone_after_reattach(void **state)
{
	struct mst_pony_event evs[4];
	int fd = pony_ep(109, 0), tcp;

	assert_int_equal(mst_close(fd), 0);
	teardown(state);
	setup(state);
	tcp = mst_socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(tcp, fd); /* same index, same descriptor number */
	assert_int_equal(mst_pony_poll(tcp, evs, 4, 0), -1);
	assert_int_equal(errno, ENOTSOCK);
	mst_close(tcp);
}

static void test_pony_stash_gone_after_reattach(void **state)
{
	struct mst_pony_event evs[4];
	struct pollfd p;
	int fd = pony_ep(109, 0), tcp;

	pause_engine();
	for (uint64_t i = 0; i < PONY_BUDGET; i++)
		assert_int_equal(send_i(fd, i), 0);
	E.paused = 0;
	wait_ring_level(fd, FIFO_SZ);
	assert_int_equal(send_i(fd, PONY_BUDGET), 0); /* 64 events stashed */
	/* No mst_close: the app just detaches. */
	teardown(state);
	setup(state);
	tcp = mst_socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(tcp, fd);
	p = (struct pollfd){ .fd = tcp, .events = POLLIN };
	assert_int_equal(mst_poll(&p, 1, 0), 1); /* a fresh socket: POLLHUP */
	assert_int_equal(p.revents & POLLIN, 0); /* not the old endpoint's stash */
	assert_int_equal(mst_pony_poll(tcp, evs, 4, 0), -1); /* not the old events */
	assert_int_equal(errno, ENOTSOCK);
	mst_close(tcp);
}

struct pony_poller {
	int fd, r, err;
	volatile int done;
};

static void *pony_poll_thread(void *arg)
{
	struct pony_poller *a = arg;
	struct mst_pony_event ev;

	a->r = mst_pony_poll(a->fd, &ev, 1, 300);
	a->err = errno;
	a->done = 1;
	return NULL;
}

/* A thread asleep in a blocking send or poll while another closes the
 * endpoint and opens a new one (which gets the same index): the sleeper
 * ends with EBADF (or, for the poll, its timeout) and the new endpoint
 * works. The index's library state is kept (reinitialised) rather than
 * freed, so the sleepers never touch freed memory (run it under
 * -Db_sanitize=address to see). */
static void test_pony_close_and_reopen_while_others_wait(void **state)
{
	struct mst_pony_event evs[4];
	int fd = pony_ep(111, 0), fd2;
	struct pony_thr a = { .fd = fd, .i = PONY_BUDGET };
	struct pony_poller b = { .fd = fd };
	struct timespec ts;
	pthread_t th, th2;

	pause_engine();
	for (uint64_t i = 0; i < PONY_BUDGET; i++)
		assert_int_equal(send_i(fd, i), 0);
	pthread_create(&th, NULL, pony_blocking_send, &a);
	pthread_create(&th2, NULL, pony_poll_thread, &b);
	usleep(20000);
	assert_false(a.done);
	assert_false(b.done);
	assert_int_equal(mst_close(fd), 0);
	fd2 = pony_ep(112, 0);
	assert_int_equal(fd2, fd); /* the index is reused */
	E.paused = 0;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 3;
	if (pthread_timedjoin_np(th, NULL, &ts) != 0 || pthread_timedjoin_np(th2, NULL, &ts) != 0)
		fail_msg("a thread that slept on the closed endpoint never returned");
	assert_int_equal(a.r, -1);
	assert_int_equal(a.err, EBADF);
	assert_true(b.r == 0 || (b.r == -1 && b.err == EBADF));
	assert_int_equal(send_i(fd2, 0), 0);
	poll_n(fd2, evs, 2);
	check_pairs(evs, 1, 0, 112, 7);
	assert_int_equal(mst_close(fd2), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_qp_claim_is_per_thread_and_released_at_exit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_qp_of_exited_thread_is_reused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_submit_and_wait_by_seq, setup, teardown),
		cmocka_unit_test_setup_teardown(test_socket_errno_like_linux, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connect_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tcp_bind_listen_accept_like_mustangd, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tcp_options_before_connect_reach_the_engine, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tcp_keepalive_option_bounds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tcp_connect_done_before_handshake, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flooded_event_ring_still_delivers_done, setup, teardown),
		cmocka_unit_test_setup_teardown(test_blocking_recv_woken_by_engine_no_lost_wakeups, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threads_use_sockets_created_elsewhere, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nonblocking_recv_and_fcntl, setup, teardown),
		cmocka_unit_test_setup_teardown(test_poll_mixes_kernel_and_library_fds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_epoll_level_and_edge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_zero_copy_fifo_access, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sockbuf_per_socket_clamped_and_sent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_native_event_poll, setup, teardown),
		cmocka_unit_test_setup_teardown(test_udp_socket_bind_and_options, setup, teardown),
		cmocka_unit_test_setup_teardown(test_udp_destination_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_udp_truncation_peek_and_sizes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_udp_records_wrap_and_blocking_recv, setup, teardown),
		cmocka_unit_test_setup_teardown(test_udp_full_fifo_eagain_pollout_and_blocking_send, setup, teardown),
		cmocka_unit_test_setup_teardown(test_udp_blocking_recv_woken_poll_and_epoll, setup, teardown),
		cmocka_unit_test_setup_teardown(test_udp_impossible_rx_records_are_eio, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pony_nonblocking_budget_and_completions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pony_regions_and_argument_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pony_blocking_sends_stash_in_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pony_blocking_send_waits_for_engine, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pony_poll_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pony_impossible_rx_tail_is_eio, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pony_bad_records_skipped_or_eio, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pony_stash_counts_for_poll_and_epoll, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pony_blocking_large_messages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pony_two_senders_one_poller, setup, teardown),
		/* state across close/reopen and mst_fini() */
		cmocka_unit_test_setup_teardown(test_pony_closed_endpoint_gone_after_reattach, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pony_stash_gone_after_reattach, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pony_close_and_reopen_while_others_wait, setup, teardown),
	};

	/* MST_TEST_FILTER=test_tcp_* runs only those (the whole binary is slow) */
	if (getenv("MST_TEST_FILTER"))
		cmocka_set_test_filter(getenv("MST_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
