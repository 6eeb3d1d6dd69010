/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mst_poll and mst_epoll_*: readiness over library sockets (computed from
 * the segment by sock_readiness) and kernel descriptors (a real poll/epoll
 * polled alongside the thread's eventfd by thr_wait).
 *
 * An mst epoll instance keeps its interest list of library sockets in an
 * array (scanned on every wait) and a kernel epoll fd for kernel
 * descriptors. Entries remember the socket's generation, so a socket that
 * was closed (or whose index was reused) silently leaves the list, as a
 * closed fd leaves a Linux epoll set.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "priv.h"

#define RET_ERR(e) do { errno = (e); return -1; } while (0)

static bool is_sock_fd(int fd)
{
	return fd >= MST_FD_SOCK_BASE && fd < MST_FD_EPOLL_BASE;
}

/* ---- poll ------------------------------------------------------------- */

struct poll_ctx {
	struct pollfd *fds;
	nfds_t n;
};

static short sock_revents(int fd, short events)
{
	struct lsock *ls;
	uint32_t idx;

	if (!(ls = sock_get(fd, &idx)))
		return POLLNVAL;
	return (short)(sock_readiness(idx) & ((uint32_t)(uint16_t)events | POLLERR | POLLHUP));
}

/* Fill revents of the library sockets; returns how many are ready. */
static int poll_scan(struct poll_ctx *c)
{
	int ready = 0;

	for (nfds_t i = 0; i < c->n; i++) {
		if (c->fds[i].fd < MST_FD_BASE)
			continue;
		c->fds[i].revents = sock_revents(c->fds[i].fd, c->fds[i].events);
		if (c->fds[i].revents)
			ready++;
	}
	return ready;
}

static bool poll_ready(void *arg)
{
	struct poll_ctx *c = arg;

	for (nfds_t i = 0; i < c->n; i++)
		if (c->fds[i].fd >= MST_FD_BASE && sock_revents(c->fds[i].fd, c->fds[i].events))
			return true;
	return false;
}

MST_EXPORT int mst_poll(struct pollfd *fds, nfds_t n, int timeout_ms)
{
	struct poll_ctx c = { .fds = fds, .n = n };
	struct pollfd *kfds = NULL;
	uint32_t *socks = NULL;
	nfds_t nk = 0, ns = 0, i, k;
	struct thr *t;
	int ready, r = 0;

	for (i = 0; i < n; i++) {
		fds[i].revents = 0;
		if (fds[i].fd >= MST_FD_BASE)
			ns++;
		else if (fds[i].fd >= 0)
			nk++;
	}
	if (ns == 0)
		return poll(fds, n, timeout_ms);
	kfds = nk ? calloc(nk, sizeof(*kfds)) : NULL;
	socks = calloc(ns, sizeof(*socks));
	if ((nk && !kfds) || !socks) {
		r = -ENOMEM;
		goto out;
	}
	for (i = 0, k = 0, ns = 0; i < n; i++) {
		uint32_t idx;

		if (fds[i].fd >= MST_FD_BASE) {
			if (is_sock_fd(fds[i].fd) && sock_get(fds[i].fd, &idx))
				socks[ns++] = idx;
		} else if (fds[i].fd >= 0) {
			kfds[k++] = fds[i];
		}
	}
	for (;;) {
		struct wait_spec w = { .ready = poll_ready, .arg = &c, .socks = socks,
				       .n_socks = (uint32_t)ns, .kfds = kfds, .n_kfds = nk };

		ready = poll_scan(&c);
		if (nk) {
			int kr = poll(kfds, nk, 0);

			if (kr < 0) {
				r = -errno;
				goto out;
			}
			ready += kr;
		}
		if (ready || timeout_ms == 0)
			break;
		t = thr_get();
		if (!t) {
			r = -errno;
			goto out;
		}
		r = thr_wait(t, &w, timeout_ms);
		if (r < 0)
			goto out;
		if (r == 0)
			timeout_ms = 0; /* one last scan, then report 0 */
	}
	for (i = 0, k = 0; i < n; i++)
		if (fds[i].fd >= 0 && fds[i].fd < MST_FD_BASE)
			fds[i].revents = kfds[k++].revents;
	r = ready;
out:
	free(kfds);
	free(socks);
	if (r < 0)
		RET_ERR(-r);
	return r;
}

/* ---- epoll ------------------------------------------------------------ */

struct epi {
	int fd;
	uint32_t idx, gen;
	uint32_t events;           /* EPOLL* asked for */
	epoll_data_t data;
	uint32_t last;             /* EPOLLET: mask last reported */
	uint32_t last_rx, last_tx, last_acc; /* EPOLLET: counters last reported */
	int disabled;              /* EPOLLONESHOT fired */
};

struct ep {
	int used;
	int kep;                   /* kernel epoll for kernel fds */
	pthread_mutex_t lock;      /* items (not held while sleeping) */
	struct epi *items;
	size_t n, cap;
};

static struct ep eps[MST_MAX_EPOLL];
static pthread_mutex_t eps_lock = PTHREAD_MUTEX_INITIALIZER;

static struct ep *ep_get(int epfd)
{
	int i = epfd - MST_FD_EPOLL_BASE;

	if (i < 0 || i >= MST_MAX_EPOLL || !__atomic_load_n(&eps[i].used, __ATOMIC_ACQUIRE)) {
		errno = EBADF;
		return NULL;
	}
	return &eps[i];
}

MST_EXPORT int mst_epoll_create1(int flags)
{
	int i, kep;

	if (!__atomic_load_n(&mst_lib.attached, __ATOMIC_ACQUIRE))
		RET_ERR(ENOTCONN);
	if (flags & ~EPOLL_CLOEXEC)
		RET_ERR(EINVAL);
	kep = epoll_create1(EPOLL_CLOEXEC);
	if (kep < 0)
		return -1;
	pthread_mutex_lock(&eps_lock);
	for (i = 0; i < MST_MAX_EPOLL && eps[i].used; i++)
		;
	if (i == MST_MAX_EPOLL) {
		pthread_mutex_unlock(&eps_lock);
		close(kep);
		RET_ERR(EMFILE);
	}
	memset(&eps[i], 0, sizeof(eps[i]));
	pthread_mutex_init(&eps[i].lock, NULL);
	eps[i].kep = kep;
	__atomic_store_n(&eps[i].used, 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&eps_lock);
	return MST_FD_EPOLL_BASE + i;
}

int epoll_close(int epfd)
{
	struct ep *ep = ep_get(epfd);

	if (!ep)
		return -1;
	pthread_mutex_lock(&eps_lock);
	__atomic_store_n(&ep->used, 0, __ATOMIC_RELEASE);
	pthread_mutex_lock(&ep->lock);
	close(ep->kep);
	free(ep->items);
	ep->items = NULL;
	ep->n = ep->cap = 0;
	pthread_mutex_unlock(&ep->lock);
	pthread_mutex_unlock(&eps_lock);
	return 0;
}

void epoll_forget_all(void)
{
	for (int i = 0; i < MST_MAX_EPOLL; i++)
		if (eps[i].used)
			epoll_close(MST_FD_EPOLL_BASE + i);
}

static struct epi *ep_find(struct ep *ep, int fd)
{
	for (size_t i = 0; i < ep->n; i++)
		if (ep->items[i].fd == fd)
			return &ep->items[i];
	return NULL;
}

static bool epi_stale(const struct epi *e)
{
	const struct lsock *ls = &mst_lib.ls[e->idx];

	return !__atomic_load_n(&ls->open, __ATOMIC_ACQUIRE) || ls->gen != e->gen;
}

MST_EXPORT int mst_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
	struct ep *ep = ep_get(epfd);
	struct lsock *ls;
	struct epi *e;
	uint32_t idx;
	int r = 0;

	if (!ep)
		return -1;
	if (fd == epfd)
		RET_ERR(EINVAL);
	if (op != EPOLL_CTL_ADD && op != EPOLL_CTL_MOD && op != EPOLL_CTL_DEL)
		RET_ERR(EINVAL);
	if (op != EPOLL_CTL_DEL && !ev)
		RET_ERR(EFAULT);
	if (fd >= 0 && fd < MST_FD_BASE)
		return epoll_ctl(ep->kep, op, fd, ev);
	if (!is_sock_fd(fd)) /* nested mst epoll instances are not supported */
		RET_ERR(fd >= MST_FD_EPOLL_BASE && ep_get(fd) ? EINVAL : EBADF);
	if (!(ls = sock_get(fd, &idx)))
		return -1;
	pthread_mutex_lock(&ep->lock);
	e = ep_find(ep, fd);
	if (e && epi_stale(e)) { /* closed and reopened under the same number */
		*e = ep->items[--ep->n];
		e = NULL;
	}
	switch (op) {
	case EPOLL_CTL_ADD:
		if (e) {
			r = -EEXIST;
			break;
		}
		if (ep->n == ep->cap) {
			size_t cap = ep->cap ? ep->cap * 2 : 16;
			struct epi *it = realloc(ep->items, cap * sizeof(*it));

			if (!it) {
				r = -ENOMEM;
				break;
			}
			ep->items = it;
			ep->cap = cap;
		}
		e = &ep->items[ep->n++];
		*e = (struct epi){ .fd = fd, .idx = idx, .gen = ls->gen };
		/* fallthrough */
	case EPOLL_CTL_MOD:
		if (!e) {
			r = -ENOENT;
			break;
		}
		e->events = ev->events;
		e->data = ev->data;
		e->disabled = 0;
		e->last = 0;
		e->last_rx = e->last_tx = e->last_acc = ~0u;
		break;
	case EPOLL_CTL_DEL:
		if (!e) {
			r = -ENOENT;
			break;
		}
		*e = ep->items[--ep->n];
		break;
	}
	pthread_mutex_unlock(&ep->lock);
	if (r < 0)
		RET_ERR(-r);
	return 0;
}

/* Events to report for e now (0: none); updates ET/ONESHOT state if
 * `commit`. */
static uint32_t epi_check(struct epi *e, bool commit)
{
	const struct mst_shm_sock *s = &mst_lib.socks[e->idx];
	uint32_t want = (e->events & (EPOLLIN | EPOLLOUT | EPOLLRDHUP)) | EPOLLERR | EPOLLHUP;
	uint32_t m, rx, tx, acc;

	if (e->disabled)
		return 0;
	m = sock_readiness(e->idx) & want;
	if (!m)
		return 0;
	if (e->events & EPOLLET) {
		/* Edge: new bits, or more data/space/connections since the
		 * last report. */
		rx = ld_acq(&s->rx_tail);
		tx = ld_acq(&s->tx_head);
		acc = ld_acq(&s->accept_queue);
		if (!(m & ~e->last) &&
		    !((m & EPOLLIN) && (rx != e->last_rx || acc > e->last_acc)) &&
		    !((m & EPOLLOUT) && tx != e->last_tx))
			return 0;
		if (commit) {
			e->last_rx = rx;
			e->last_tx = tx;
			e->last_acc = acc;
		}
	}
	if (commit) {
		e->last = m;
		if (e->events & EPOLLONESHOT)
			e->disabled = 1;
	}
	return m;
}

struct ep_wait {
	struct ep *ep;
};

static bool ep_ready(void *arg)
{
	struct ep *ep = ((struct ep_wait *)arg)->ep;
	bool any = false;

	/* Blocking is fine: the list lock is never held across a sleep. */
	pthread_mutex_lock(&ep->lock);
	for (size_t i = 0; i < ep->n && !any; i++)
		if (!epi_stale(&ep->items[i]) && epi_check(&ep->items[i], false))
			any = true;
	pthread_mutex_unlock(&ep->lock);
	return any;
}

static int ep_scan(struct ep *ep, struct epoll_event *evs, int max)
{
	int n = 0;

	pthread_mutex_lock(&ep->lock);
	for (size_t i = 0; i < ep->n && n < max;) {
		struct epi *e = &ep->items[i];
		uint32_t m;

		if (epi_stale(e)) {
			*e = ep->items[--ep->n];
			continue;
		}
		m = epi_check(e, true);
		if (m) {
			evs[n].events = m;
			evs[n].data = e->data;
			n++;
		}
		i++;
	}
	pthread_mutex_unlock(&ep->lock);
	return n;
}

MST_EXPORT int mst_epoll_wait(int epfd, struct epoll_event *evs, int max, int timeout_ms)
{
	struct ep *ep = ep_get(epfd);
	struct ep_wait ew = { .ep = ep };
	struct pollfd kfd;
	uint32_t *socks = NULL;
	struct thr *t;
	int n, r, kn;

	if (!ep)
		return -1;
	if (max <= 0 || !evs)
		RET_ERR(EINVAL);
	for (;;) {
		struct wait_spec w = { .ready = ep_ready, .arg = &ew, .kfds = &kfd, .n_kfds = 1 };
		size_t ns = 0;

		n = ep_scan(ep, evs, max);
		if (n < max) {
			kn = epoll_wait(ep->kep, evs + n, max - n, 0);
			if (kn > 0)
				n += kn;
		}
		if (n || timeout_ms == 0)
			break;
		t = thr_get();
		if (!t) {
			free(socks);
			return -1;
		}
		pthread_mutex_lock(&ep->lock);
		free(socks);
		socks = malloc((ep->n + 1) * sizeof(*socks));
		for (size_t i = 0; socks && i < ep->n; i++)
			if (!ep->items[i].disabled)
				socks[ns++] = ep->items[i].idx;
		pthread_mutex_unlock(&ep->lock);
		if (!socks)
			RET_ERR(ENOMEM);
		w.socks = socks;
		w.n_socks = (uint32_t)ns;
		kfd = (struct pollfd){ .fd = ep->kep, .events = POLLIN };
		r = thr_wait(t, &w, timeout_ms);
		if (r < 0) {
			free(socks);
			RET_ERR(-r);
		}
		if (r == 0)
			timeout_ms = 0;
	}
	free(socks);
	return n;
}
