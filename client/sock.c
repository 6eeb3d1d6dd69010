/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The POSIX-shaped socket calls: mst_socket ... mst_close, send/recv on
 * the shared-memory FIFOs (fifo.h), getsockname/getpeername, fcntl.
 *
 * Socket state is read straight from the segment (struct mst_shm_sock), so
 * any thread sees any socket's readiness without a round trip; commands
 * (SOCKET, BIND, ..., CLOSE) go on the calling thread's qp. Per-socket
 * locks: tx_lock serializes senders (tx_tail has one writer), rx_lock
 * serializes receivers (rx_head has one writer); both are uncontended in a
 * one-thread-per-socket app.
 *
 * UDP sockets (SOCK_DGRAM, lsock.dgram) share the descriptors, locks, wait
 * and readiness machinery; their FIFOs carry one record per datagram
 * (struct mst_shm_dgram + payload, padded to MST_SHM_DGRAM_ALIGN), so the
 * data path is separate: dgram_send() writes a whole record or nothing,
 * dgram_recv() consumes a whole record (MSG_TRUNC semantics) and checks
 * every engine-written header against the bytes actually published.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <string.h>

#include "fifo.h"
#include "priv.h"

#define RET_ERR(e) do { errno = (e); return -1; } while (0)

static inline struct mst_shm_sock *ssock(uint32_t idx)
{
	return &mst_lib.socks[idx];
}

struct lsock *sock_get(int fd, uint32_t *idx)
{
	struct mst_lib *L = &mst_lib;
	uint32_t i = (uint32_t)(fd - MST_FD_SOCK_BASE);

	if (!__atomic_load_n(&L->attached, __ATOMIC_ACQUIRE) || fd < MST_FD_SOCK_BASE ||
	    i >= L->n_socks || !__atomic_load_n(&L->ls[i].open, __ATOMIC_ACQUIRE)) {
		errno = EBADF;
		return NULL;
	}
	*idx = i;
	return &L->ls[i];
}

static bool pow2(uint32_t v)
{
	return v && !(v & (v - 1));
}

/* The FIFO geometry is engine-written when the socket gets a connection
 * (connect or accept; a new or listening socket has none: sizes 0). The
 * data path checks it on every use: a power-of-two size, inside the
 * segment. */
bool sock_fifo_ok(uint32_t idx)
{
	const struct mst_shm_sock *s = ssock(idx);
	uint64_t size = mst_lib.size;

	return pow2(s->rx_size) && pow2(s->tx_size) &&
	       s->rx_off <= size && s->rx_size <= size - s->rx_off &&
	       s->tx_off <= size && s->tx_size <= size - s->tx_off;
}

/* Adopt an engine socket index returned by SOCKET or ACCEPT. */
int sock_open(struct thr *t, int32_t idx, int nonblock, int dgram)
{
	struct mst_lib *L = &mst_lib;
	struct mst_shm_sock *s;
	struct lsock *ls;

	if (idx < 0 || (uint32_t)idx >= L->n_socks)
		return -EIO;
	s = ssock((uint32_t)idx);
	ls = &L->ls[idx];
	ls->gen++;
	ls->nonblock = (uint32_t)nonblock;
	ls->listening = ls->connecting = ls->shut_rd = ls->shut_wr = 0;
	ls->dgram = (uint32_t)dgram;
	ls->dg_peer = 0;
	ls->rx_doorbell = s->rx_head;
	ls->linger_on = ls->linger_s = 0;
	ls->peer_ip = ls->bound_ip = 0;
	ls->peer_port = ls->bound_port = 0;
	ls->err_ack = 0;
	ls->pend_mask = 0;
	ls->rcvbuf = ls->sndbuf = 0;
	__atomic_store_n(&ls->waiters, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&ls->notify_qp, t->qp, __ATOMIC_RELAXED); /* creator gets READY */
	__atomic_store_n(&ls->open, 1, __ATOMIC_RELEASE);
	return MST_FD_SOCK_BASE + idx;
}

/* Readable bytes, reading eof BEFORE rx_tail: the engine stores eof after
 * the final rx_tail (both release), so eof seen => every byte before the
 * FIN is below the rx_tail we load next (acquire, F1 in fifo.h). */
static uint32_t rx_level(uint32_t idx, uint32_t *eof, bool *bad)
{
	struct mst_shm_sock *s = ssock(idx);
	uint32_t e = ld_acq(&s->eof);
	uint32_t n = ld_acq(&s->rx_tail) - s->rx_head;

	if (!sock_fifo_ok(idx)) { /* no connection (yet) */
		*bad = false;
		if (eof)
			*eof = e;
		return 0;
	}
	*bad = n > s->rx_size;
	if (eof)
		*eof = e;
	return *bad ? 0 : n;
}

static uint32_t tx_free(uint32_t idx, bool *bad)
{
	struct mst_shm_sock *s = ssock(idx);
	uint32_t used = s->tx_tail - ld_acq(&s->tx_head); /* F4 */
	uint32_t lim = sock_tx_limit(idx);

	if (!sock_fifo_ok(idx)) {
		*bad = false;
		return 0;
	}
	*bad = used > s->tx_size;
	return *bad || used >= lim ? 0 : lim - used;
}

uint32_t sock_tx_limit(uint32_t idx)
{
	uint32_t lim = mst_lib.ls[idx].sndbuf, size = ssock(idx)->tx_size;

	return lim && lim < size ? lim : size; /* SO_SNDBUF: the app's own cap */
}

/* Datagram socket: readable while a record is published (an impossible
 * level is POLLIN|POLLERR so the reader comes and gets EIO), writable
 * while a small record fits. No connection states: Linux's UDP poll. */
static uint32_t dgram_readiness(uint32_t idx, uint32_t mask)
{
	struct lsock *ls = &mst_lib.ls[idx];
	uint32_t fr;
	bool bad, bad2;

	if (!sock_fifo_ok(idx))
		return mask | POLLERR;
	if (rx_level(idx, NULL, &bad) || bad || ls->shut_rd)
		mask |= POLLIN;
	if (ls->shut_rd)
		mask |= POLLRDHUP;
	fr = tx_free(idx, &bad2);
	if (bad || bad2)
		mask |= POLLERR;
	if (ls->shut_wr || fr >= dgram_rec_size(DGRAM_POLLOUT_MIN))
		mask |= POLLOUT;
	if (ls->shut_rd && ls->shut_wr)
		mask |= POLLHUP;
	return mask;
}

uint32_t sock_readiness(uint32_t idx)
{
	struct mst_shm_sock *s = ssock(idx);
	struct lsock *ls = &mst_lib.ls[idx];
	uint32_t state = ld_acq(&s->state), eof, mask = 0, used, fr;
	bool bad, bad2;

	if (sock_error_pending(idx))
		mask |= POLLERR;
	if (ls->dgram)
		return dgram_readiness(idx, mask);
	if (state == MST_SOCK_LISTEN || ls->listening) {
		if (ld_acq(&s->accept_queue))
			mask |= POLLIN;
		return mask;
	}
	if (rx_level(idx, &eof, &bad) || eof || ls->shut_rd || pony_stashed(idx))
		mask |= POLLIN;
	if (eof)
		mask |= POLLRDHUP;
	fr = tx_free(idx, &bad2);
	used = s->tx_tail - ld_acq(&s->tx_head); /* F4 */
	if (bad || bad2)
		mask |= POLLERR;
	switch (state) {
	case MST_SOCK_NEW:
		mask |= POLLOUT | POLLHUP; /* as Linux for a fresh socket */
		break;
	case MST_SOCK_SYN_SENT:
	case MST_SOCK_SYN_RECEIVED:
		break;
	case MST_SOCK_ESTABLISHED:
	case MST_SOCK_CLOSE_WAIT:
		/* Linux's sk_stream_is_writeable: free >= half of what is queued. */
		if (ls->shut_wr || (fr && fr >= used / 2))
			mask |= POLLOUT;
		break;
	case MST_SOCK_CLOSED:
		mask |= POLLIN | POLLOUT | POLLHUP;
		break;
	default: /* FIN sent: writes fail at once */
		mask |= POLLOUT;
		break;
	}
	if (ls->shut_rd && ls->shut_wr)
		mask |= POLLHUP;
	mask |= ld_acq(&s->ready) & (POLLHUP | POLLRDHUP);
	return mask;
}

int sock_error_pending(uint32_t idx)
{
	struct lsock *ls = &mst_lib.ls[idx];
	int32_t e = (int32_t)ld_acq((const uint32_t *)&ssock(idx)->error);

	if (e <= 0)
		return 0;
	return e == __atomic_load_n(&ls->err_ack, __ATOMIC_RELAXED) ? 0 : e;
}

/* The pending error (positive errno) and clear it, as SO_ERROR does. */
static int sock_take_error(struct thr *t, uint32_t idx)
{
	struct mst_shm_msg m = { .op = MST_CMD_GETOPT, .sock = (int32_t)idx,
				 .a = MST_OPT_ERROR };
	int32_t seen = (int32_t)ld_acq((const uint32_t *)&ssock(idx)->error);
	int r;

	if (!sock_error_pending(idx))
		return 0;
	r = cmd_call(t, &m);
	if (r < 0)
		return -r;
	/* GETOPT cleared the engine's error; the shm copy may lag until the
	 * engine next publishes the socket: do not report it twice. */
	__atomic_store_n(&mst_lib.ls[idx].err_ack, seen, __ATOMIC_RELAXED);
	return (int)m.a;
}

/* RX_DONE batching: tell the engine once we consumed >= 1/4 of the FIFO
 * or the FIFO was over half full (so the TCP window reopens promptly). */
void sock_rx_doorbell(struct thr *t, uint32_t idx, uint32_t head, uint32_t before)
{
	struct lsock *ls = &mst_lib.ls[idx];
	uint32_t size = ssock(idx)->rx_size;

	if (head == ls->rx_doorbell)
		return;
	if (head - ls->rx_doorbell >= size / 4 || before > size / 2 || before == (uint32_t)~0u) {
		struct mst_shm_msg m = { .op = MST_CMD_RX_DONE, .sock = (int32_t)idx };

		ls->rx_doorbell = head;
		cmd_post(t, &m);
	}
}

/* Before SHUTDOWN or CLOSE on this thread's qp: ring both doorbells here
 * too. Commands on different qps are not ordered, so the TX doorbell of
 * another thread's last send might otherwise run after our FIN (its bytes
 * lost); the engine reads the counters from shm, so any qp's doorbell
 * covers every byte produced so far. */
static void sock_flush_doorbells(struct thr *t, uint32_t idx)
{
	struct mst_shm_msg m = { .op = MST_CMD_TX, .sock = (int32_t)idx };

	if (!sock_fifo_ok(idx))
		return;
	cmd_post(t, &m);
	sock_rx_doorbell(t, idx, ssock(idx)->rx_head, (uint32_t)~0u);
}

struct sock_cond {
	uint32_t idx;
	uint32_t what; /* POLL* bits that end the wait */
};

static bool sock_cond_ready(void *arg)
{
	struct sock_cond *c = arg;

	return sock_readiness(c->idx) & (c->what | POLLERR | POLLHUP);
}

/* Block until the socket shows one of `what`, or timeout/EINTR. */
static int sock_wait(struct thr *t, uint32_t idx, uint32_t what)
{
	struct sock_cond c = { .idx = idx, .what = what };
	struct wait_spec w = { .ready = sock_cond_ready, .arg = &c, .socks = &idx, .n_socks = 1 };
	int r = thr_wait(t, &w, -1);

	return r < 0 ? r : 0;
}

MST_EXPORT int mst_socket(int domain, int type, int protocol)
{
	struct mst_shm_msg m = { .op = MST_CMD_SOCKET, .sock = -1, .a = 1 };
	int base = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC), dgram = base == SOCK_DGRAM;
	struct thr *t;
	int r;

	if (!__atomic_load_n(&mst_lib.attached, __ATOMIC_ACQUIRE))
		RET_ERR(ENOTCONN);
	if (domain != AF_INET)
		RET_ERR(EAFNOSUPPORT);
	if (base != SOCK_STREAM && !dgram)
		RET_ERR(ESOCKTNOSUPPORT);
	if (protocol != 0 && protocol != (dgram ? IPPROTO_UDP : IPPROTO_TCP))
		RET_ERR(EPROTONOSUPPORT);
	t = thr_get();
	if (!t)
		return -1;
	m.a = dgram ? 2 : 1;
	r = cmd_call(t, &m);
	if (r < 0)
		RET_ERR(-r);
	/* A datagram socket has its FIFOs from the start (published before
	 * the DONE we just acquired): refuse one whose geometry is insane. */
	if (dgram && r < (int)mst_lib.n_socks && !sock_fifo_ok((uint32_t)r)) {
		struct mst_shm_msg c = { .op = MST_CMD_CLOSE, .sock = r };

		cmd_call(t, &c);
		RET_ERR(EIO);
	}
	r = sock_open(t, r, !!(type & SOCK_NONBLOCK), base == SOCK_DGRAM);
	if (r < 0)
		RET_ERR(-r);
	return r;
}

static int check_sin(const struct sockaddr *addr, socklen_t len, const struct sockaddr_in **sin)
{
	if (!addr || len < (socklen_t)sizeof(struct sockaddr_in))
		return -EINVAL;
	if (addr->sa_family != AF_INET)
		return -EAFNOSUPPORT;
	*sin = (const struct sockaddr_in *)addr;
	return 0;
}

MST_EXPORT int mst_bind(int fd, const struct sockaddr *addr, socklen_t len)
{
	const struct sockaddr_in *sin;
	struct mst_shm_msg m = { .op = MST_CMD_BIND };
	struct thr *t;
	struct lsock *ls;
	uint32_t idx;
	int r;

	if (!(ls = sock_get(fd, &idx)) || !(t = thr_get()))
		return -1;
	r = check_sin(addr, len, &sin);
	if (r < 0)
		RET_ERR(-r);
	m.sock = (int32_t)idx;
	m.a = ntohs(sin->sin_port);
	m.b = sin->sin_addr.s_addr;
	r = cmd_call(t, &m);
	if (r < 0)
		RET_ERR(-r);
	ls->bound_ip = sin->sin_addr.s_addr;
	ls->bound_port = ntohs(sin->sin_port);
	/* Port 0: the engine picked one and published it before the DONE. */
	if (!ls->bound_port)
		ls->bound_port = ssock(idx)->local_port;
	return 0;
}

MST_EXPORT int mst_listen(int fd, int backlog)
{
	struct mst_shm_msg m = { .op = MST_CMD_LISTEN };
	struct thr *t;
	struct lsock *ls;
	uint32_t idx;
	int r;

	if (!(ls = sock_get(fd, &idx)) || !(t = thr_get()))
		return -1;
	if (ls->dgram)
		RET_ERR(EOPNOTSUPP);
	m.sock = (int32_t)idx;
	m.a = backlog < 0 ? 0 : (uint64_t)backlog;
	r = cmd_call(t, &m);
	if (r < 0)
		RET_ERR(-r);
	ls->listening = 1;
	/* Buffer sizes set before listen() go to the listener, which hands
	 * them to its connections; the engine keeps no other option there. */
	ls->pend_mask &= (1u << MST_OPT_RCVBUF) | (1u << MST_OPT_SNDBUF);
	sock_apply_pending_opts(t, idx);
	return 0;
}

static void fill_sin(struct sockaddr *addr, socklen_t *len, uint32_t ip, uint16_t port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port),
				   .sin_addr.s_addr = ip };

	if (!addr || !len)
		return;
	memcpy(addr, &sin, *len < sizeof(sin) ? *len : sizeof(sin));
	*len = sizeof(sin);
}

MST_EXPORT int mst_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
	struct mst_shm_msg m;
	struct thr *t;
	struct lsock *ls, *nls;
	uint32_t idx;
	int r;

	if (!(ls = sock_get(fd, &idx)) || !(t = thr_get()))
		return -1;
	if (ls->dgram)
		RET_ERR(EOPNOTSUPP);
	if (flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC))
		RET_ERR(EINVAL);
	if (addr && (!len || (int)*len < 0))
		RET_ERR(EINVAL);
	for (;;) {
		if (ld_acq(&ssock(idx)->state) != MST_SOCK_LISTEN && !ls->listening)
			RET_ERR(EINVAL);
		/* Nothing queued: no round trip for a non-blocking accept. */
		if (!ld_acq(&ssock(idx)->accept_queue)) {
			r = sock_take_error(t, idx);
			if (r)
				RET_ERR(r);
			if (ls->nonblock)
				RET_ERR(EAGAIN);
			r = sock_wait(t, idx, POLLIN);
			if (r < 0)
				RET_ERR(-r);
			if (!__atomic_load_n(&ls->open, __ATOMIC_ACQUIRE))
				RET_ERR(EBADF);
			continue;
		}
		m = (struct mst_shm_msg){ .op = MST_CMD_ACCEPT, .sock = (int32_t)idx };
		r = cmd_call(t, &m);
		if (r == -EAGAIN) /* another thread took it */
			continue;
		if (r < 0)
			RET_ERR(-r);
		break;
	}
	r = sock_open(t, r, !!(flags & SOCK_NONBLOCK), 0);
	if (r < 0)
		RET_ERR(-r);
	nls = &mst_lib.ls[r - MST_FD_SOCK_BASE];
	nls->rcvbuf = ls->rcvbuf; /* the engine gave the connection the listener's */
	nls->sndbuf = ls->sndbuf;
	nls->peer_ip = (uint32_t)m.b;
	nls->peer_port = (uint16_t)m.c;
	fill_sin(addr, len, nls->peer_ip, nls->peer_port);
	return r;
}

MST_EXPORT int mst_accept(int fd, struct sockaddr *addr, socklen_t *len)
{
	return mst_accept4(fd, addr, len, 0);
}

static bool connected(uint32_t state)
{
	return state >= MST_SOCK_ESTABLISHED && state <= MST_SOCK_TIME_WAIT;
}

/* Outcome of a connect in progress: 0 connected, -errno failed,
 * -EINPROGRESS still going. */
static int connect_outcome(struct thr *t, uint32_t idx)
{
	struct lsock *ls = &mst_lib.ls[idx];
	uint32_t state = ld_acq(&ssock(idx)->state);
	int e;

	if (connected(state)) {
		ls->connecting = 0;
		return 0;
	}
	e = sock_take_error(t, idx);
	if (e) {
		ls->connecting = 0;
		return -e;
	}
	if (state == MST_SOCK_CLOSED) {
		ls->connecting = 0;
		return -ECONNREFUSED;
	}
	return -EINPROGRESS;
}

/* connect() on a datagram socket: the default destination (and, in the
 * engine, the only accepted source); no handshake, DONE says 0. AF_UNSPEC
 * dissolves the association (CONNECT 0/0), as on Linux. */
static int dgram_connect(struct thr *t, struct lsock *ls, uint32_t idx,
			 const struct sockaddr *addr, socklen_t len)
{
	struct mst_shm_msg m = { .op = MST_CMD_CONNECT, .sock = (int32_t)idx };
	const struct sockaddr_in *sin = NULL;
	int r;

	if (addr && len >= (socklen_t)sizeof(sa_family_t) && addr->sa_family == AF_UNSPEC) {
		if (!ls->dg_peer)
			return 0;
	} else {
		r = check_sin(addr, len, &sin);
		if (r < 0)
			RET_ERR(-r);
		if (!sin->sin_port)
			RET_ERR(EINVAL); /* 0/0 means "no peer" in the ABI */
		m.a = sin->sin_addr.s_addr;
		m.b = ntohs(sin->sin_port);
	}
	r = cmd_call(t, &m);
	if (r < 0)
		RET_ERR(-r);
	ls->peer_ip = sin ? sin->sin_addr.s_addr : 0;
	ls->peer_port = sin ? ntohs(sin->sin_port) : 0;
	__atomic_store_n(&ls->dg_peer, sin != NULL, __ATOMIC_RELEASE);
	return 0;
}

MST_EXPORT int mst_connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	const struct sockaddr_in *sin;
	struct mst_shm_msg m = { .op = MST_CMD_CONNECT };
	struct thr *t;
	struct lsock *ls;
	uint32_t idx, state;
	int r;

	if (!(ls = sock_get(fd, &idx)) || !(t = thr_get()))
		return -1;
	if (ls->dgram)
		return dgram_connect(t, ls, idx, addr, len);
	r = check_sin(addr, len, &sin);
	if (r < 0)
		RET_ERR(-r);
	state = ld_acq(&ssock(idx)->state);
	if (ls->connecting) {
		r = connect_outcome(t, idx);
		if (r == 0)
			RET_ERR(EISCONN);
		if (r != -EINPROGRESS)
			RET_ERR(-r);
		if (ls->nonblock)
			RET_ERR(EALREADY);
		goto wait;
	}
	if (ls->listening || connected(state))
		RET_ERR(EISCONN);
	m.sock = (int32_t)idx;
	m.a = sin->sin_addr.s_addr;
	m.b = ntohs(sin->sin_port);
	r = cmd_call(t, &m);
	if (r < 0)
		RET_ERR(-r);
	ls->connecting = 1;
	sock_apply_pending_opts(t, idx);
	ls->peer_ip = sin->sin_addr.s_addr;
	ls->peer_port = ntohs(sin->sin_port);
	if (ls->nonblock)
		RET_ERR(EINPROGRESS);
wait:
	for (;;) {
		r = connect_outcome(t, idx);
		if (r != -EINPROGRESS)
			break;
		r = sock_wait(t, idx, POLLOUT);
		if (r < 0)
			break;
	}
	if (r < 0)
		RET_ERR(-r);
	return 0;
}

/* May we send now? 0 yes, -EAGAIN not yet (connecting), else -errno. */
static int send_state(struct thr *t, uint32_t idx)
{
	struct lsock *ls = &mst_lib.ls[idx];
	uint32_t state = ld_acq(&ssock(idx)->state);
	int e;

	/* Once the daemon is known dead, bytes put in the FIFO go nowhere. */
	if (mst_lib.dead)
		return -ENETDOWN;
	if (ls->shut_wr)
		return -EPIPE;
	e = sock_take_error(t, idx);
	if (e)
		return -e;
	switch (state) {
	case MST_SOCK_ESTABLISHED:
	case MST_SOCK_CLOSE_WAIT:
		return 0;
	case MST_SOCK_SYN_SENT:
	case MST_SOCK_SYN_RECEIVED:
		return -EAGAIN;
	default:
		return -EPIPE; /* unconnected, listening, closed, FIN sent */
	}
}

static ssize_t dgram_send(struct thr *t, struct lsock *ls, uint32_t idx, const void *buf,
			  size_t len, int flags, const struct sockaddr_in *dst);
static ssize_t dgram_recv(struct thr *t, struct lsock *ls, uint32_t idx, void *buf,
			  size_t len, int flags, struct sockaddr *from, socklen_t *fromlen);

MST_EXPORT ssize_t mst_send(int fd, const void *buf, size_t len, int flags)
{
	struct thr *t;
	struct lsock *ls;
	struct mst_shm_sock *s;
	uint32_t idx;
	size_t sent = 0;
	int r = 0, nb;

	if (!(ls = sock_get(fd, &idx)) || !(t = thr_get()))
		return -1;
	if (ls->dgram) {
		ssize_t d = dgram_send(t, ls, idx, buf, len, flags, NULL);

		if (d < 0)
			RET_ERR((int)-d);
		return d;
	}
	if (flags & ~(MSG_DONTWAIT | MSG_NOSIGNAL | MSG_MORE | MSG_WAITALL | MSG_EOR))
		RET_ERR(EOPNOTSUPP);
	nb = ls->nonblock || (flags & MSG_DONTWAIT);
	s = ssock(idx);
	pthread_mutex_lock(&ls->tx_lock);
	for (;;) {
		uint32_t fr, n;
		bool bad;

		r = send_state(t, idx);
		if (r == 0) {
			fr = tx_free(idx, &bad);
			if (bad) {
				r = -EIO;
				break;
			}
			if (sent == len)
				break;
			if (fr) {
				struct mst_shm_msg m = { .op = MST_CMD_TX, .sock = (int32_t)idx };

				n = len - sent < fr ? (uint32_t)(len - sent) : fr;
				fifo_copy_in(mst_lib.base + s->tx_off, s->tx_size, s->tx_tail,
					     (const uint8_t *)buf + sent, n);
				/* F3: the bytes above before the new tx_tail. */
				__atomic_store_n(&s->tx_tail, s->tx_tail + n, __ATOMIC_RELEASE);
				cmd_post(t, &m);
				sent += n;
				continue;
			}
			r = -EAGAIN;
		}
		if (r != -EAGAIN || nb || len == 0)
			break;
		r = sock_wait(t, idx, POLLOUT);
		if (r < 0)
			break;
	}
	pthread_mutex_unlock(&ls->tx_lock);
	if (sent)
		return (ssize_t)sent;
	if (r < 0)
		RET_ERR(-r);
	return 0;
}

MST_EXPORT ssize_t mst_recv(int fd, void *buf, size_t len, int flags)
{
	struct thr *t;
	struct lsock *ls;
	struct mst_shm_sock *s;
	uint32_t idx, state;
	size_t got = 0;
	int r = 0, nb;

	if (!(ls = sock_get(fd, &idx)) || !(t = thr_get()))
		return -1;
	if (ls->dgram) {
		ssize_t d = dgram_recv(t, ls, idx, buf, len, flags, NULL, NULL);

		if (d < 0)
			RET_ERR((int)-d);
		return d;
	}
	if (flags & MSG_OOB)
		RET_ERR(EINVAL);
	nb = ls->nonblock || (flags & MSG_DONTWAIT);
	s = ssock(idx);
	state = ld_acq(&s->state);
	if (ls->listening || state == MST_SOCK_LISTEN || state == MST_SOCK_NEW)
		RET_ERR(ENOTCONN);
	if (len == 0)
		return 0;
	pthread_mutex_lock(&ls->rx_lock);
	for (;;) {
		uint32_t eof, avail, n;
		bool bad;

		avail = rx_level(idx, &eof, &bad);
		if (bad) {
			r = -EIO;
			break;
		}
		if (avail) {
			n = len - got < avail ? (uint32_t)(len - got) : avail;
			fifo_copy_out(mst_lib.base + s->rx_off, s->rx_size, s->rx_head,
				      (uint8_t *)buf + got, n);
			got += n;
			if (flags & MSG_PEEK)
				break;
			/* F2: our copy is done before the engine may reuse it. */
			__atomic_store_n(&s->rx_head, s->rx_head + n, __ATOMIC_RELEASE);
			sock_rx_doorbell(t, idx, s->rx_head, avail);
			if (got == len || !(flags & MSG_WAITALL) || nb)
				break;
			continue;
		}
		if (got)
			break;
		r = -(int)sock_take_error(t, idx);
		if (r)
			break;
		state = ld_acq(&s->state);
		if (eof || ls->shut_rd || state == MST_SOCK_CLOSED) {
			sock_rx_doorbell(t, idx, s->rx_head, (uint32_t)~0u);
			break; /* EOF */
		}
		if (nb) {
			r = -EAGAIN;
			break;
		}
		/* Let the engine reopen the window before we sleep on it. */
		sock_rx_doorbell(t, idx, s->rx_head, (uint32_t)~0u);
		r = sock_wait(t, idx, POLLIN);
		if (r < 0)
			break;
	}
	pthread_mutex_unlock(&ls->rx_lock);
	if (got)
		return (ssize_t)got;
	if (r < 0)
		RET_ERR(-r);
	return 0;
}

/* ---- datagrams ---------------------------------------------------------- */

struct dgram_cond {
	uint32_t idx;
	uint32_t need;             /* TX bytes the record takes */
};

/* A blocked sender wakes when its whole record fits (POLLOUT alone only
 * promises a small one), or on an error/shutdown that ends the send. */
static bool dgram_tx_ready(void *arg)
{
	struct dgram_cond *c = arg;
	bool bad;
	uint32_t fr = tx_free(c->idx, &bad);

	return bad || fr >= c->need || !sock_fifo_ok(c->idx) ||
	       sock_error_pending(c->idx) || mst_lib.ls[c->idx].shut_wr ||
	       !__atomic_load_n(&mst_lib.ls[c->idx].open, __ATOMIC_ACQUIRE);
}

/* One datagram: a record at tx_tail or nothing. dst NULL: the connected
 * peer (addr/port 0/0 in the record). */
static ssize_t dgram_send(struct thr *t, struct lsock *ls, uint32_t idx, const void *buf,
			  size_t len, int flags, const struct sockaddr_in *dst)
{
	struct mst_shm_sock *s = ssock(idx);
	struct mst_shm_dgram h = { .len = (uint32_t)len };
	struct dgram_cond c = { .idx = idx };
	struct wait_spec w = { .ready = dgram_tx_ready, .arg = &c, .socks = &idx, .n_socks = 1 };
	int r, nb = ls->nonblock || (flags & MSG_DONTWAIT);

	if (flags & ~(MSG_DONTWAIT | MSG_NOSIGNAL | MSG_EOR | MSG_CONFIRM))
		return -EOPNOTSUPP; /* MSG_MORE (corking) and MSG_OOB: no */
	if (dst) {
		if (!dst->sin_port)
			return -EINVAL; /* as Linux; 0/0 would mean "connected peer" */
		h.addr = dst->sin_addr.s_addr;
		h.port = ntohs(dst->sin_port);
	} else if (!__atomic_load_n(&ls->dg_peer, __ATOMIC_ACQUIRE)) {
		return -EDESTADDRREQ;
	}
	if (len > MST_SHM_DGRAM_MAX)
		return -EMSGSIZE;
	if (!sock_fifo_ok(idx))
		return -EIO;
	c.need = dgram_rec_size((uint32_t)len);
	if (c.need > s->tx_size)
		return -EMSGSIZE; /* could never fit */
	pthread_mutex_lock(&ls->tx_lock);
	for (;;) {
		uint32_t fr;
		bool bad;

		if (mst_lib.dead) { /* a datagram put in the FIFO would go nowhere */
			r = -ENETDOWN;
			break;
		}
		if (ls->shut_wr) {
			r = -EPIPE;
			break;
		}
		/* A pending error (ICMP unreachable...) fails this send once,
		 * as Linux's sock_alloc_send_skb does. */
		r = -sock_take_error(t, idx);
		if (r)
			break;
		fr = tx_free(idx, &bad);
		if (bad) {
			r = -EIO;
			break;
		}
		if (fr >= c.need) {
			struct mst_shm_msg m = { .op = MST_CMD_TX, .sock = (int32_t)idx };
			uint8_t *base = mst_lib.base + s->tx_off;
			uint32_t tail = s->tx_tail;

			fifo_copy_in(base, s->tx_size, tail, &h, DGRAM_HDR);
			fifo_copy_in(base, s->tx_size, tail + DGRAM_HDR, buf, (uint32_t)len);
			/* F3: header and payload before the new tx_tail. */
			__atomic_store_n(&s->tx_tail, tail + c.need, __ATOMIC_RELEASE);
			r = cmd_post(t, &m);
			break;
		}
		if (nb) {
			r = -EAGAIN;
			break;
		}
		r = thr_wait(t, &w, -1);
		if (r < 0)
			break;
	}
	pthread_mutex_unlock(&ls->tx_lock);
	return r < 0 ? r : (ssize_t)len;
}

/* One datagram from rx_head: copy min(len, its size), fill the source,
 * consume the whole record (unless MSG_PEEK). The header is engine-written:
 * a record that claims more than was published is an I/O error, never a
 * read past rx_tail. */
static ssize_t dgram_recv(struct thr *t, struct lsock *ls, uint32_t idx, void *buf,
			  size_t len, int flags, struct sockaddr *from, socklen_t *fromlen)
{
	struct mst_shm_sock *s = ssock(idx);
	struct mst_shm_dgram h;
	ssize_t ret = 0;
	int r = 0, nb = ls->nonblock || (flags & MSG_DONTWAIT);

	if (flags & ~(MSG_DONTWAIT | MSG_PEEK | MSG_TRUNC | MSG_WAITALL | MSG_NOSIGNAL |
		      MSG_CMSG_CLOEXEC))
		return -EOPNOTSUPP;
	pthread_mutex_lock(&ls->rx_lock);
	for (;;) {
		uint32_t avail, need, n, head;
		bool bad;

		if (!sock_fifo_ok(idx)) {
			r = -EIO;
			break;
		}
		avail = rx_level(idx, NULL, &bad);
		if (bad) {
			r = -EIO;
			break;
		}
		if (avail) {
			head = s->rx_head;
			if (avail < DGRAM_HDR) {
				r = -EIO;
				break;
			}
			fifo_copy_out(mst_lib.base + s->rx_off, s->rx_size, head, &h, DGRAM_HDR);
			need = h.len <= MST_SHM_DGRAM_MAX ? dgram_rec_size(h.len) : 0;
			if (!need || need > avail) {
				r = -EIO;
				break;
			}
			n = len < h.len ? (uint32_t)len : h.len;
			if (n)
				fifo_copy_out(mst_lib.base + s->rx_off, s->rx_size,
					      head + DGRAM_HDR, buf, n);
			ret = (flags & MSG_TRUNC) ? (ssize_t)h.len : (ssize_t)n;
			if (from)
				fill_sin(from, fromlen, h.addr, h.port);
			if (!(flags & MSG_PEEK)) {
				/* F2: our copy is done before the engine may reuse it. */
				__atomic_store_n(&s->rx_head, head + need, __ATOMIC_RELEASE);
				sock_rx_doorbell(t, idx, head + need, avail);
			}
			break;
		}
		r = -sock_take_error(t, idx);
		if (r)
			break;
		if (ls->shut_rd)
			break; /* 0, as Linux after SHUT_RD */
		/* Drained: the engine drops datagrams that do not fit its view
		 * of the FIFO, so give it all our space back (also when we
		 * return EAGAIN to an event loop, which may not call again for
		 * a while). No command if nothing was consumed since. */
		sock_rx_doorbell(t, idx, s->rx_head, (uint32_t)~0u);
		if (nb) {
			r = -EAGAIN;
			break;
		}
		r = sock_wait(t, idx, POLLIN);
		if (r < 0)
			break;
		if (!__atomic_load_n(&ls->open, __ATOMIC_ACQUIRE)) {
			r = -EBADF;
			break;
		}
	}
	pthread_mutex_unlock(&ls->rx_lock);
	return r < 0 ? r : ret;
}

MST_EXPORT ssize_t mst_sendto(int fd, const void *buf, size_t len, int flags,
			      const struct sockaddr *to, socklen_t tolen)
{
	const struct sockaddr_in *sin = NULL;
	struct thr *t;
	struct lsock *ls;
	uint32_t idx;
	ssize_t r;

	if (!(ls = sock_get(fd, &idx)))
		return -1;
	if (!ls->dgram) /* a stream socket ignores the address, as Linux's TCP */
		return mst_send(fd, buf, len, flags);
	if (!(t = thr_get()))
		return -1;
	if (to) {
		r = check_sin(to, tolen, &sin);
		if (r < 0)
			RET_ERR((int)-r);
	}
	if (!buf && len)
		RET_ERR(EFAULT);
	r = dgram_send(t, ls, idx, buf, len, flags, sin);
	if (r < 0)
		RET_ERR((int)-r);
	return r;
}

MST_EXPORT ssize_t mst_recvfrom(int fd, void *buf, size_t len, int flags,
				struct sockaddr *from, socklen_t *fromlen)
{
	struct thr *t;
	struct lsock *ls;
	uint32_t idx;
	ssize_t r;

	if (!(ls = sock_get(fd, &idx)))
		return -1;
	if (from && !fromlen)
		RET_ERR(EFAULT);
	if (from && (int)*fromlen < 0)
		RET_ERR(EINVAL);
	if (!ls->dgram) {
		/* A stream socket reports no source address (Linux: 0). */
		r = mst_recv(fd, buf, len, flags);
		if (r >= 0 && from)
			*fromlen = 0;
		return r;
	}
	if (!(t = thr_get()))
		return -1;
	if (!buf && len)
		RET_ERR(EFAULT);
	r = dgram_recv(t, ls, idx, buf, len, flags, from, fromlen);
	if (r < 0)
		RET_ERR((int)-r);
	return r;
}

MST_EXPORT ssize_t mst_write(int fd, const void *buf, size_t len)
{
	return mst_send(fd, buf, len, 0);
}

MST_EXPORT ssize_t mst_read(int fd, void *buf, size_t len)
{
	return mst_recv(fd, buf, len, 0);
}

MST_EXPORT int mst_shutdown(int fd, int how)
{
	struct mst_shm_msg m = { .op = MST_CMD_SHUTDOWN };
	struct thr *t;
	struct lsock *ls;
	uint32_t idx, state;
	int r;

	if (!(ls = sock_get(fd, &idx)) || !(t = thr_get()))
		return -1;
	if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR)
		RET_ERR(EINVAL);
	if (ls->dgram) {
		/* Library-local, as Linux's UDP: a connected socket stops
		 * sending (EPIPE) and/or receiving (recv returns 0). */
		if (!__atomic_load_n(&ls->dg_peer, __ATOMIC_ACQUIRE))
			RET_ERR(ENOTCONN);
		sock_flush_doorbells(t, idx);
		if (how != SHUT_WR)
			ls->shut_rd = 1;
		if (how != SHUT_RD)
			ls->shut_wr = 1;
		return 0;
	}
	state = ld_acq(&ssock(idx)->state);
	if (!ls->listening && state != MST_SOCK_LISTEN && !connected(state) &&
	    state != MST_SOCK_SYN_SENT && state != MST_SOCK_SYN_RECEIVED)
		RET_ERR(ENOTCONN);
	sock_flush_doorbells(t, idx);
	m.sock = (int32_t)idx;
	m.a = (uint64_t)how;
	r = cmd_call(t, &m);
	if (r < 0)
		RET_ERR(-r);
	if (how != SHUT_WR)
		ls->shut_rd = 1;
	if (how != SHUT_RD)
		ls->shut_wr = 1;
	return 0;
}

MST_EXPORT int mst_close(int fd)
{
	struct mst_shm_msg m = { .op = MST_CMD_CLOSE };
	struct thr *t;
	struct lsock *ls;
	uint32_t idx;
	int r;

	if (fd >= MST_FD_EPOLL_BASE)
		return epoll_close(fd);
	if (!(ls = sock_get(fd, &idx)) || !(t = thr_get()))
		return -1;
	/* Other threads get EBADF from now on; the engine may hand the index
	 * out again only after our CLOSE completed. */
	if (!__atomic_exchange_n(&ls->open, 0, __ATOMIC_ACQ_REL))
		RET_ERR(EBADF);
	ls->gen++;
	/* Report every byte sent and consumed first: the engine resets a
	 * connection closed with unread data (as Linux does). */
	sock_flush_doorbells(t, idx);
	m.sock = (int32_t)idx;
	r = cmd_call(t, &m);
	__atomic_store_n(&ls->notify_qp, -1, __ATOMIC_RELAXED);
	__atomic_store_n(&ls->waiters, 0, __ATOMIC_RELAXED);
	if (r < 0 && r != -EBADF)
		RET_ERR(-r);
	return 0;
}

MST_EXPORT int mst_fcntl(int fd, int cmd, ...)
{
	struct lsock *ls;
	uint32_t idx;
	va_list ap;
	long arg;

	va_start(ap, cmd);
	arg = va_arg(ap, long);
	va_end(ap);
	if (!(ls = sock_get(fd, &idx)))
		return -1;
	switch (cmd) {
	case F_GETFL:
		return O_RDWR | (ls->nonblock ? O_NONBLOCK : 0);
	case F_SETFL:
		ls->nonblock = !!(arg & O_NONBLOCK);
		return 0;
	case F_GETFD:
		return 0;
	case F_SETFD:
		return 0;
	default:
		RET_ERR(EINVAL);
	}
}

MST_EXPORT int mst_getsockname(int fd, struct sockaddr *addr, socklen_t *len)
{
	struct mst_shm_sock *s;
	struct lsock *ls;
	uint32_t idx, ip;
	uint16_t port;

	if (!(ls = sock_get(fd, &idx)))
		return -1;
	if (!addr || !len || (int)*len < 0)
		RET_ERR(EFAULT);
	s = ssock(idx);
	ip = s->local_ip ? s->local_ip : ls->bound_ip;
	port = s->local_port ? s->local_port : ls->bound_port;
	if (!ip && (ls->dgram ? __atomic_load_n(&ls->dg_peer, __ATOMIC_ACQUIRE) :
			       connected(ld_acq(&s->state))))
		ip = mst_lib.hdr->local_ip;
	fill_sin(addr, len, ip, port);
	return 0;
}

MST_EXPORT int mst_getpeername(int fd, struct sockaddr *addr, socklen_t *len)
{
	struct mst_shm_sock *s;
	struct lsock *ls;
	uint32_t idx, state;

	if (!(ls = sock_get(fd, &idx)))
		return -1;
	s = ssock(idx);
	if (ls->dgram) {
		if (!__atomic_load_n(&ls->dg_peer, __ATOMIC_ACQUIRE))
			RET_ERR(ENOTCONN);
		if (!addr || !len || (int)*len < 0)
			RET_ERR(EFAULT);
		fill_sin(addr, len, ls->peer_ip, ls->peer_port);
		return 0;
	}
	state = ld_acq(&s->state);
	if (!connected(state) || ls->listening)
		RET_ERR(ENOTCONN);
	if (!addr || !len || (int)*len < 0)
		RET_ERR(EFAULT);
	fill_sin(addr, len, s->remote_ip ? s->remote_ip : ls->peer_ip,
		 s->remote_port ? s->remote_port : ls->peer_port);
	return 0;
}
