/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The native non-blocking API: mst_watch/mst_ev_poll (readiness events
 * delivered to the calling thread), mst_event_fd (hand the thread's
 * eventfd to the app's own loop) and zero-copy FIFO access
 * (mst_rx_peek/consume, mst_tx_reserve/commit; orderings F1-F4 in fifo.h).
 * The zero-copy calls are for stream sockets: a datagram socket's FIFOs
 * hold records whose framing only mst_sendto/mst_recvfrom keep (EOPNOTSUPP).
 */
#include <errno.h>
#include <string.h>

#include "fifo.h"
#include "priv.h"

#define RET_ERR(e) do { errno = (e); return -1; } while (0)

MST_EXPORT int mst_watch(int fd)
{
	struct thr *t;
	uint32_t idx;
	int r;

	if (!sock_get(fd, &idx) || !(t = thr_get()))
		return -1;
	r = thr_own(t, idx, true);
	if (r < 0)
		RET_ERR(-r);
	return 0;
}

static bool map_nonempty(void *arg)
{
	struct thr *t = arg;

	for (size_t i = 0; i < sizeof(t->ready_map) / sizeof(t->ready_map[0]); i++)
		if (t->ready_map[i])
			return true;
	return false;
}

static int collect(struct thr *t, struct mst_event *evs, int max)
{
	struct mst_lib *L = &mst_lib;
	int n = 0;

	for (uint32_t w = 0; w < L->n_socks / 64 + 1 && n < max; w++) {
		while (w < MST_SHM_MAX_SOCKS / 64 && t->ready_map[w] && n < max) {
			uint32_t b = (uint32_t)__builtin_ctzll(t->ready_map[w]);
			uint32_t idx = w * 64 + b;

			t->ready_map[w] &= ~(1ull << b);
			if (idx >= L->n_socks || !__atomic_load_n(&L->ls[idx].open, __ATOMIC_ACQUIRE))
				continue;
			evs[n].fd = MST_FD_SOCK_BASE + (int)idx;
			evs[n].events = sock_readiness(idx);
			n++;
		}
	}
	return n;
}

MST_EXPORT int mst_ev_poll(struct mst_event *evs, int max, int timeout_ms)
{
	struct thr *t = thr_get();
	struct wait_spec w;
	int r;

	if (!t)
		return -1;
	if (max <= 0 || !evs)
		RET_ERR(EINVAL);
	w = (struct wait_spec){ .ready = map_nonempty, .arg = t };
	r = thr_wait(t, &w, timeout_ms);
	if (r < 0)
		RET_ERR(-r);
	return collect(t, evs, max);
}

MST_EXPORT int mst_event_fd(void)
{
	struct thr *t = thr_get();

	if (!t)
		return -1;
	/* From now on wake stays 1 for this qp (W1 in qp.c): the engine
	 * signals after each publication, so the fd works in a foreign loop. */
	mst_lib.lqp[t->qp].ext_armed = 1;
	__atomic_store_n(&t->q->wake, 1, __ATOMIC_SEQ_CST);
	return t->efd;
}

/* A stream socket's index, or NULL with errno (EBADF, EOPNOTSUPP). */
static struct lsock *stream_get(int fd, uint32_t *idx)
{
	struct lsock *ls = sock_get(fd, idx);

	if (ls && ls->dgram) {
		errno = EOPNOTSUPP;
		return NULL;
	}
	return ls;
}

MST_EXPORT ssize_t mst_rx_peek(int fd, const void **p1, size_t *n1, const void **p2, size_t *n2)
{
	struct mst_shm_sock *s;
	uint32_t idx, avail;
	void *q1, *q2;

	if (!stream_get(fd, &idx))
		return -1;
	if (!p1 || !n1 || !p2 || !n2)
		RET_ERR(EINVAL);
	s = &mst_lib.socks[idx];
	if (!sock_fifo_ok(idx)) {
		*p1 = *p2 = NULL;
		*n1 = *n2 = 0;
		return 0;
	}
	avail = ld_acq(&s->rx_tail) - s->rx_head; /* F1 */
	if (avail > s->rx_size)
		RET_ERR(EIO);
	fifo_regions(mst_lib.base + s->rx_off, s->rx_size, s->rx_head, avail, &q1, n1, &q2, n2);
	*p1 = q1;
	*p2 = q2;
	return (ssize_t)avail;
}

MST_EXPORT int mst_rx_consume(int fd, size_t n)
{
	struct mst_shm_sock *s;
	struct thr *t;
	uint32_t idx, avail;

	if (!stream_get(fd, &idx) || !(t = thr_get()))
		return -1;
	s = &mst_lib.socks[idx];
	if (!sock_fifo_ok(idx)) {
		if (n)
			RET_ERR(EINVAL);
		return 0;
	}
	avail = ld_acq(&s->rx_tail) - s->rx_head;
	if (avail > s->rx_size)
		RET_ERR(EIO);
	if (n > avail)
		RET_ERR(EINVAL);
	/* F2: the app's reads of the peeked bytes happen before this. */
	__atomic_store_n(&s->rx_head, s->rx_head + (uint32_t)n, __ATOMIC_RELEASE);
	sock_rx_doorbell(t, idx, s->rx_head, avail);
	return 0;
}

static int tx_space(uint32_t idx, uint32_t *fr)
{
	struct mst_shm_sock *s = &mst_lib.socks[idx];
	uint32_t state = ld_acq(&s->state), used;

	if (mst_lib.ls[idx].shut_wr || sock_error_pending(idx))
		return -EPIPE;
	if (state == MST_SOCK_SYN_SENT || state == MST_SOCK_SYN_RECEIVED) {
		*fr = 0;
		return 0;
	}
	if ((state != MST_SOCK_ESTABLISHED && state != MST_SOCK_CLOSE_WAIT) || !sock_fifo_ok(idx))
		return -EPIPE;
	used = s->tx_tail - ld_acq(&s->tx_head); /* F4 */
	if (used > s->tx_size)
		return -EIO;
	*fr = used >= sock_tx_limit(idx) ? 0 : sock_tx_limit(idx) - used;
	return 0;
}

MST_EXPORT ssize_t mst_tx_reserve(int fd, void **p1, size_t *n1, void **p2, size_t *n2)
{
	struct mst_shm_sock *s;
	uint32_t idx, fr;
	int r;

	if (!stream_get(fd, &idx))
		return -1;
	if (!p1 || !n1 || !p2 || !n2)
		RET_ERR(EINVAL);
	r = tx_space(idx, &fr);
	if (r < 0)
		RET_ERR(-r);
	s = &mst_lib.socks[idx];
	fifo_regions(mst_lib.base + s->tx_off, s->tx_size, s->tx_tail, fr, p1, n1, p2, n2);
	return (ssize_t)fr;
}

MST_EXPORT int mst_tx_commit(int fd, size_t n)
{
	struct mst_shm_msg m = { .op = MST_CMD_TX };
	struct mst_shm_sock *s;
	struct thr *t;
	uint32_t idx, fr;
	int r;

	if (!stream_get(fd, &idx) || !(t = thr_get()))
		return -1;
	r = tx_space(idx, &fr);
	if (r < 0)
		RET_ERR(-r);
	if (n > fr)
		RET_ERR(EINVAL);
	if (n == 0)
		return 0;
	s = &mst_lib.socks[idx];
	/* F3: the app's writes into the reserved bytes happen before this. */
	__atomic_store_n(&s->tx_tail, s->tx_tail + (uint32_t)n, __ATOMIC_RELEASE);
	m.sock = (int32_t)idx;
	r = cmd_post(t, &m);
	if (r < 0)
		RET_ERR(-r);
	return 0;
}
