/* SPDX-License-Identifier: BSD-3-Clause */
/* The wrappers define libc's own names: no large-file renaming (LP64). */
#undef _FILE_OFFSET_BITS
/*
 * libmustang-preload: waiting on Mustang and kernel descriptors together.
 *
 * poll/ppoll/select/pselect: a set with no Mustang socket goes to libc
 * untouched; otherwise it is rewritten to library descriptors and waited
 * on with mst_poll (which polls the kernel ones alongside).
 *
 * epoll: the app's epoll is a kernel epoll and stays one. The first
 * Mustang socket added to it creates a shadow mst epoll holding the
 * Mustang sockets (data: the app's fd, the app's own data kept in
 * udata[fd]) and the kernel epoll itself (data: PL_EP_KERNEL).
 * epoll_wait waits on the shadow; when it reports the kernel epoll, the
 * kernel's events are fetched without waiting and appended.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mustang/mustang.h>

#include "preload.h"

#define RET_ERR(e) do { errno = (e); return -1; } while (0)

extern void __chk_fail(void) __attribute__((noreturn));
int __poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen);

/* ---- poll ------------------------------------------------------------------ */

static bool any_mustang(const struct pollfd *fds, nfds_t n)
{
	for (nfds_t i = 0; i < n; i++) {
		uint32_t k = pl_kind(fds[i].fd);

		if (k == PL_MST || k == PL_DEAD)
			return true;
	}
	return false;
}

/* poll() over a set holding Mustang sockets. */
static int mixed_poll(struct pollfd *fds, nfds_t n, int timeout)
{
	struct pollfd small[64], *t = small;
	int r, dead = 0;

	if (n > 64 && !(t = malloc(n * sizeof(*t))))
		RET_ERR(ENOMEM);
	for (nfds_t i = 0; i < n; i++) {
		uint32_t k = pl_kind(fds[i].fd);

		t[i] = fds[i];
		if (k == PL_MST)
			t[i].fd = pl_tab[fds[i].fd].mst;
		else if (k == PL_DEAD)
			t[i].fd = -1;
	}
	r = mst_poll(t, n, timeout);
	for (nfds_t i = 0; r >= 0 && i < n; i++) {
		fds[i].revents = t[i].revents;
		if (pl_kind(fds[i].fd) == PL_DEAD) {
			fds[i].revents = POLLNVAL;
			dead++;
		}
	}
	if (t != small) {
		int e = errno;

		free(t);
		errno = e;
	}
	return r < 0 ? r : r + dead;
}

PL_API int poll(struct pollfd *fds, nfds_t n, int timeout)
{
	PL_ENSURE();
	if (!fds || !any_mustang(fds, n))
		return real.poll(fds, n, timeout);
	return mixed_poll(fds, n, timeout);
}

PL_API int __poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen)
{
	if (fdslen / sizeof(*fds) < n)
		__chk_fail();
	return poll(fds, n, timeout);
}

static int ts_ms(const struct timespec *ts)
{
	long long ms;

	if (!ts)
		return -1;
	if (ts->tv_sec < 0 || ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000L)
		return -2;
	ms = (long long)ts->tv_sec * 1000 + (ts->tv_nsec + 999999) / 1000000;
	return ms > INT_MAX ? INT_MAX : (int)ms;
}

/* The signal mask is swapped around the wait, not atomically with it (see
 * docs/preload.md): a signal unblocked here is handled before the wait. */
static int masked(const sigset_t *mask, sigset_t *old)
{
	return mask ? pthread_sigmask(SIG_SETMASK, mask, old) : 0;
}

static void unmask(const sigset_t *mask, const sigset_t *old)
{
	int e = errno;

	if (mask)
		pthread_sigmask(SIG_SETMASK, old, NULL);
	errno = e;
}

PL_API int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *ts, const sigset_t *mask)
{
	sigset_t old;
	int ms, r;

	PL_ENSURE();
	if (!fds || !any_mustang(fds, n))
		return real.ppoll(fds, n, ts, mask);
	if ((ms = ts_ms(ts)) == -2)
		RET_ERR(EINVAL);
	masked(mask, &old);
	r = mixed_poll(fds, n, ms);
	unmask(mask, &old);
	return r;
}

/* ---- select ------------------------------------------------------------------ */

static bool sets_mustang(int nfds, fd_set *r, fd_set *w, fd_set *e)
{
	for (int fd = 0; fd < nfds && fd <= pl_hiwater(); fd++) {
		uint32_t k = pl_kind(fd);

		if ((k == PL_MST || k == PL_DEAD) &&
		    ((r && FD_ISSET(fd, r)) || (w && FD_ISSET(fd, w)) || (e && FD_ISSET(fd, e))))
			return true;
	}
	return false;
}

static int mixed_select(int nfds, fd_set *r, fd_set *w, fd_set *e, int ms)
{
	struct pollfd p[FD_SETSIZE];
	nfds_t n = 0;
	int ret, count = 0;

	for (int fd = 0; fd < nfds; fd++) {
		short ev = (short)((r && FD_ISSET(fd, r) ? POLLIN : 0) |
				   (w && FD_ISSET(fd, w) ? POLLOUT : 0) |
				   (e && FD_ISSET(fd, e) ? POLLPRI : 0));

		if (ev)
			p[n++] = (struct pollfd){ .fd = fd, .events = ev };
	}
	ret = mixed_poll(p, n, ms);
	if (ret < 0)
		return -1;
	for (nfds_t i = 0; i < n; i++)
		if (p[i].revents & POLLNVAL)
			RET_ERR(EBADF);
	if (r)
		FD_ZERO(r);
	if (w)
		FD_ZERO(w);
	if (e)
		FD_ZERO(e);
	for (nfds_t i = 0; i < n; i++) {
		short rv = p[i].revents;

		if (r && (p[i].events & POLLIN) && (rv & (POLLIN | POLLHUP | POLLERR))) {
			FD_SET(p[i].fd, r);
			count++;
		}
		if (w && (p[i].events & POLLOUT) && (rv & (POLLOUT | POLLERR | POLLHUP))) {
			FD_SET(p[i].fd, w);
			count++;
		}
		if (e && (p[i].events & POLLPRI) && (rv & POLLPRI)) {
			FD_SET(p[i].fd, e);
			count++;
		}
	}
	return count;
}

PL_API int select(int nfds, fd_set *r, fd_set *w, fd_set *e, struct timeval *tv)
{
	long long ms = -1;

	PL_ENSURE();
	if (nfds < 0 || nfds > FD_SETSIZE || !sets_mustang(nfds, r, w, e))
		return real.select(nfds, r, w, e, tv);
	if (tv) {
		if (tv->tv_sec < 0 || tv->tv_usec < 0)
			RET_ERR(EINVAL);
		ms = (long long)tv->tv_sec * 1000 + (tv->tv_usec + 999) / 1000;
		if (ms > INT_MAX)
			ms = INT_MAX;
	}
	return mixed_select(nfds, r, w, e, (int)ms);
}

PL_API int pselect(int nfds, fd_set *r, fd_set *w, fd_set *e, const struct timespec *ts,
		   const sigset_t *mask)
{
	sigset_t old;
	int ms, ret;

	PL_ENSURE();
	if (nfds < 0 || nfds > FD_SETSIZE || !sets_mustang(nfds, r, w, e))
		return real.pselect(nfds, r, w, e, ts, mask);
	if ((ms = ts_ms(ts)) == -2)
		RET_ERR(EINVAL);
	masked(mask, &old);
	ret = mixed_select(nfds, r, w, e, ms);
	unmask(mask, &old);
	return ret;
}

/* ---- epoll ------------------------------------------------------------------- */

PL_API int epoll_create(int size)
{
	PL_ENSURE();
	return real.epoll_create(size);
}

PL_API int epoll_create1(int flags)
{
	PL_ENSURE();
	return real.epoll_create1(flags);
}

void pl_ep_free(struct pl_ep *ep)
{
	if (!ep)
		return;
	mst_close(ep->shadow); /* EBADF in a fork child: it went with the attachment */
	pthread_mutex_destroy(&ep->lock);
	free(ep->udata);
	free(ep);
}

static bool is_kernel_epoll(int epfd)
{
	char path[64], link[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", epfd);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return errno != EBADF && errno != ENOENT; /* no /proc: trust the app */
	link[n] = '\0';
	return strcmp(link, "anon_inode:[eventpoll]") == 0;
}

/* The shadow of epfd; created on the first Mustang socket added. */
static struct pl_ep *ep_get(int epfd, bool create)
{
	struct epoll_event kev = { .events = EPOLLIN, .data.u64 = PL_EP_KERNEL };
	struct pl_fd *s = pl_slot(epfd);
	struct pl_ep *ep;

	if (s && __atomic_load_n(&s->kind, __ATOMIC_ACQUIRE) == PL_EPOLL)
		return s->ep;
	if (!create) {
		errno = ENOENT;
		return NULL;
	}
	if (!s || s->kind != PL_NONE || !is_kernel_epoll(epfd)) {
		errno = s && s->kind == PL_NONE && fcntl(epfd, F_GETFD) < 0 ? EBADF : EINVAL;
		return NULL;
	}
	if (!(ep = calloc(1, sizeof(*ep))))
		return errno = ENOMEM, NULL;
	pthread_mutex_init(&ep->lock, NULL);
	ep->shadow = mst_epoll_create1(0);
	if (ep->shadow < 0 || mst_epoll_ctl(ep->shadow, EPOLL_CTL_ADD, epfd, &kev) < 0)
		goto out_free;
	pl_lock();
	if (s->kind == PL_NONE) {
		s->ep = ep;
		pl_set(epfd, PL_EPOLL, -1, 0, 0);
		ep = NULL;
	}
	pl_unlock();
	if (ep) /* another thread made one meanwhile */
		pl_ep_free(ep);
	return s->ep;

out_free: {
	int e = errno;

	if (ep->shadow >= 0)
		mst_close(ep->shadow);
	pthread_mutex_destroy(&ep->lock);
	free(ep);
	errno = e;
	return NULL;
	}
}

static int udata_put(struct pl_ep *ep, int fd, epoll_data_t d)
{
	pthread_mutex_lock(&ep->lock);
	if (fd >= ep->cap) {
		int cap = ep->cap ? ep->cap : 64;
		epoll_data_t *u;

		while (cap <= fd)
			cap *= 2;
		u = realloc(ep->udata, (size_t)cap * sizeof(*u));
		if (!u) {
			pthread_mutex_unlock(&ep->lock);
			RET_ERR(ENOMEM);
		}
		ep->udata = u;
		ep->cap = cap;
	}
	ep->udata[fd] = d;
	pthread_mutex_unlock(&ep->lock);
	return 0;
}

PL_API int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
	struct epoll_event sev;
	struct pl_ep *ep;
	bool dead;
	int m;

	PL_ENSURE();
	m = pl_mst(fd, &dead);
	if (dead)
		return pl_dead_err();
	if (m < 0)
		return real.epoll_ctl(epfd, op, fd, ev);
	if (op != EPOLL_CTL_ADD && op != EPOLL_CTL_MOD && op != EPOLL_CTL_DEL)
		RET_ERR(EINVAL);
	if (op != EPOLL_CTL_DEL && !ev)
		RET_ERR(EFAULT);
	if (!(ep = ep_get(epfd, op == EPOLL_CTL_ADD)))
		return -1;
	sev = (struct epoll_event){ .events = ev ? ev->events : 0, .data.u64 = (uint64_t)fd };
	if (op != EPOLL_CTL_DEL && udata_put(ep, fd, ev->data) < 0)
		return -1;
	return mst_epoll_ctl(ep->shadow, op, m, &sev);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Shadow events -> the app's: Mustang ones get their data back; the
 * kernel epoll's marker is replaced by its own events. */
static int ep_translate(int epfd, struct pl_ep *ep, struct epoll_event *evs, int n, int max)
{
	bool kernel = false;
	int out = 0, k;

	pthread_mutex_lock(&ep->lock);
	for (int i = 0; i < n; i++) {
		uint64_t fd = evs[i].data.u64;

		if (fd == PL_EP_KERNEL) {
			kernel = true;
			continue;
		}
		evs[out].events = evs[i].events;
		if (fd < (uint64_t)ep->cap)
			evs[out].data = ep->udata[fd];
		out++;
	}
	pthread_mutex_unlock(&ep->lock);
	if (kernel && out < max) {
		k = real.epoll_wait(epfd, evs + out, max - out, 0);
		if (k > 0)
			out += k;
	}
	return out;
}

static int ep_wait(int epfd, struct pl_ep *ep, struct epoll_event *evs, int max, int timeout)
{
	int64_t end = timeout > 0 ? now_ms() + timeout : 0;
	int n;

	if (max <= 0 || !evs)
		RET_ERR(EINVAL);
	for (;;) {
		n = mst_epoll_wait(ep->shadow, evs, max, timeout);
		if (n <= 0)
			return n;
		n = ep_translate(epfd, ep, evs, n, max);
		if (n || timeout == 0)
			return n;
		/* The kernel epoll was readable but its event went to another
		 * waiter: wait out the rest of the timeout. */
		if (timeout > 0 && (timeout = (int)(end - now_ms())) <= 0)
			return 0;
	}
}

PL_API int epoll_wait(int epfd, struct epoll_event *evs, int max, int timeout)
{
	struct pl_ep *ep;

	PL_ENSURE();
	if (pl_kind(epfd) != PL_EPOLL || !(ep = pl_tab[epfd].ep))
		return real.epoll_wait(epfd, evs, max, timeout);
	return ep_wait(epfd, ep, evs, max, timeout);
}

PL_API int epoll_pwait(int epfd, struct epoll_event *evs, int max, int timeout,
		       const sigset_t *mask)
{
	struct pl_ep *ep;
	sigset_t old;
	int r;

	PL_ENSURE();
	if (pl_kind(epfd) != PL_EPOLL || !(ep = pl_tab[epfd].ep))
		return real.epoll_pwait(epfd, evs, max, timeout, mask);
	masked(mask, &old);
	r = ep_wait(epfd, ep, evs, max, timeout);
	unmask(mask, &old);
	return r;
}
