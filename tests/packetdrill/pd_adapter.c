/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * packetdrill's shared-object interface over libmustang-sim: packetdrill
 * (built by tests/packetdrill/run.py, never linked into Mustang) dlopens
 * this module, calls packetdrill_interface_init() and then drives the sim
 * through the callbacks below. The header it implements is packetdrill's
 * own (packetdrill.h, found at build time in the snapshot).
 *
 * Time is the sim's virtual clock: usleep() and waits for an outbound
 * packet move it in 1 ms steps (the TCP timer tick), each frame the stack
 * sends is stamped with the virtual time it left at, and gettimeofday()
 * moves it by 1 us per call (packetdrill spins on it for the last 20 us
 * before an event). A script therefore runs in milliseconds and the same
 * way every time.
 *
 * Blocking calls behave as on Linux: a socket without O_NONBLOCK waits.
 * packetdrill makes calls scripted with a time range ("+0...0.2 read") in
 * its syscall thread; that thread sleeps on a condition variable which
 * every clock step and every packet broadcasts. A blocking call in the
 * main thread (nothing else could make progress) moves the clock itself.
 *
 * Code blocks (%{ ... }%) call the C library's getsockopt() on our
 * descriptors for TCP_INFO, TCP_CC_INFO and SO_MEMINFO; run.py preloads
 * this module so the getsockopt() below answers those from the sim.
 *
 * so_flags (comma separated): rmem_max=N,wmem=N,rmem=N,timestamps=0,sack=0,
 * wscale=0,cc=NAME,syncookies=0 — the sysctls a script sets, translated by
 * run.py.
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <linux/sockios.h>

#include <mustang/sim.h>

#include "packetdrill.h"

#define PD_FDS 256
#define PD_FD_BASE 3
#define PD_OUTQ 4096
#define PD_PKT_MAX 10240
#define PD_TICK_NS 1000000ull
#define PD_WAIT_MAX_NS (250ull * 1000000000ull) /* longest wait for a packet */
#define PD_EPOLL_MAX 64
#define PD_SOL_TCP 6
#define PD_TCP_INFO 11
#define PD_TCP_CC_INFO 26
#define PD_SO_MEMINFO 55
#define PD_MEMINFO_VARS 9

enum pd_kind { PD_FREE, PD_SOCK, PD_EPOLL };

struct pd_epitem {
	int fd;                       /* our descriptor, -1 = unused */
	struct epoll_event ev;
	uint32_t reported;            /* EPOLLET: readiness already reported */
	uint32_t rcv_nxt, snd_una;    /* EPOLLET: ...and the stream positions then */
	bool disarmed;                /* EPOLLONESHOT fired */
};

struct pd_fd {
	enum pd_kind kind;
	int sfd;                      /* the sim's descriptor */
	bool nonblock;
	struct pd_epitem ep[PD_EPOLL_MAX];
};

struct pd_out {
	uint16_t len;
	long long time_us;
	uint8_t data[PD_PKT_MAX];
};

struct pd {
	pthread_mutex_t mu;
	pthread_cond_t cv;            /* broadcast on every clock step and packet */
	pthread_t main;               /* packetdrill's main thread */
	/* Hand-off with packetdrill's syscall thread (see pd_wait): */
	uint64_t gen;                 /* bumped whenever the stack may have changed */
	uint64_t seen;                /* gen the blocked call last checked its condition at */
	bool sc_blocked;              /* a syscall-thread call is waiting */
	uint64_t sc_deadline;         /* ...until this virtual time (poll timeouts) */
	bool end_pending;             /* it returned; its end time is not read yet */
	struct mst_sim *sim;
	struct pd_out *outq;          /* frames the stack sent, oldest first */
	unsigned out_head, out_n;
	struct pd_fd fds[PD_FDS];
};

/* The instance code blocks' getsockopt() reaches (one per process). */
static struct pd *pd_current;

/* The C library's close(): ours below stands in for it when preloaded, and
 * RTLD_DEEPBIND makes this module's own calls find ours first. */
static int pd_real_close(int fd)
{
	static int (*real)(int);

	if (!real)
		real = (int (*)(int))dlsym(RTLD_NEXT, "close");
	return real ? real(fd) : -1;
}

static bool pd_is_main(struct pd *pd)
{
	return pthread_equal(pthread_self(), pd->main);
}

/* Every call leaves through here: a syscall-thread call that waited is now
 * done, and packetdrill reads its end time next (gettimeofday). */
static void pd_unlock(struct pd *pd)
{
	if (!pd_is_main(pd) && pd->sc_blocked) {
		pd->sc_blocked = false;
		pd->end_pending = true;
		pthread_cond_broadcast(&pd->cv);
	}
	pthread_mutex_unlock(&pd->mu);
}

static void pd_changed(struct pd *pd)
{
	pd->gen++;
	pthread_cond_broadcast(&pd->cv);
}

/* Before the main thread moves the clock: a blocked call must have looked
 * at the latest change, and one that finished must have read its end
 * time, or it would see a later time than Linux would give it. Bounded in
 * real time so a confused script cannot hang the run. */
static void pd_settle(struct pd *pd)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 2;
	while (pd->end_pending || (pd->sc_blocked && pd->seen != pd->gen))
		if (pthread_cond_timedwait(&pd->cv, &pd->mu, &until) == ETIMEDOUT)
			break;
}

static long long pd_now_us(struct pd *pd)
{
	return (long long)(mst_sim_now(pd->sim) / 1000);
}

/* Take every frame the stack sent, stamped with the current virtual time. */
static void pd_drain(struct pd *pd)
{
	uint8_t buf[PD_PKT_MAX];
	bool sent = false;
	ssize_t n;

	while ((n = mst_sim_output_ip(pd->sim, buf, sizeof(buf))) > 0) {
		struct pd_out *o;

		if (pd->out_n == PD_OUTQ) {
			fprintf(stderr, "mustang adapter: output queue full, frame dropped\n");
			continue;
		}
		o = &pd->outq[(pd->out_head + pd->out_n) % PD_OUTQ];
		o->len = (uint16_t)n;
		o->time_us = pd_now_us(pd);
		memcpy(o->data, buf, (size_t)n);
		pd->out_n++;
		sent = true;
	}
	if (sent)
		pd_changed(pd);
}

/* Move the clock to t_ns a tick at a time so timers fire at their own time. */
static void pd_clock_to(struct pd *pd, uint64_t t_ns)
{
	uint64_t now = mst_sim_now(pd->sim);

	while (now < t_ns) {
		uint64_t next = (now / PD_TICK_NS + 1) * PD_TICK_NS;
		unsigned conns = mst_sim_conn_count(pd->sim);

		if (next > t_ns)
			next = t_ns;
		if (pd_is_main(pd))
			pd_settle(pd);
		mst_sim_set_time(pd->sim, next);
		pd_drain(pd);
		if (mst_sim_conn_count(pd->sim) != conns ||
		    (pd->sc_blocked && next >= pd->sc_deadline))
			pd_changed(pd); /* a connection timed out, or a poll did */
		now = next;
	}
}

/* One wait of a blocking call: false when it has waited too long. The main
 * thread moves the clock itself; packetdrill's syscall thread sleeps until
 * the main thread changes something. */
static bool pd_wait(struct pd *pd, uint64_t deadline_ns)
{
	uint64_t now = mst_sim_now(pd->sim);

	if (now >= deadline_ns)
		return false;
	if (pd_is_main(pd)) {
		pd_clock_to(pd, now + PD_TICK_NS < deadline_ns ? now + PD_TICK_NS : deadline_ns);
		return true;
	}
	pd->sc_blocked = true;
	pd->sc_deadline = deadline_ns;
	pd->seen = pd->gen;
	pthread_cond_broadcast(&pd->cv); /* pd_settle() waits for this */
	while (pd->seen == pd->gen)
		pthread_cond_wait(&pd->cv, &pd->mu);
	return true;
}

static uint64_t pd_deadline(struct pd *pd, int timeout_ms)
{
	if (timeout_ms < 0)
		return UINT64_MAX;
	return mst_sim_now(pd->sim) + (uint64_t)timeout_ms * 1000000ull;
}

static int pd_err(int neg)
{
	errno = -neg;
	return -1;
}

static struct pd_fd *pd_get(struct pd *pd, int fd, enum pd_kind kind)
{
	if (fd < PD_FD_BASE || fd >= PD_FDS || pd->fds[fd].kind != kind)
		return NULL;
	return &pd->fds[fd];
}

/* Our descriptors are real ones held open on /dev/null, so their numbers
 * never collide with packetdrill's own files: its clean-up calls the C
 * library's close() on every socket, and code blocks its getsockopt(). */
static int pd_new_fd(struct pd *pd, enum pd_kind kind, int sfd)
{
	int i = open("/dev/null", O_RDONLY | O_CLOEXEC);

	if (i < 0)
		return -errno;
	if (i < PD_FD_BASE || i >= PD_FDS || pd->fds[i].kind != PD_FREE) {
		pd_real_close(i);
		return -EMFILE;
	}
	memset(&pd->fds[i], 0, sizeof(pd->fds[i]));
	pd->fds[i].kind = kind;
	pd->fds[i].sfd = sfd;
	for (int j = 0; j < PD_EPOLL_MAX; j++)
		pd->fds[i].ep[j].fd = -1;
	return i;
}

/* ---- the stack's link ---------------------------------------------------- */

static int pd_netdev_send(void *u, const void *buf, size_t count)
{
	struct pd *pd = u;
	int rc;

	pthread_mutex_lock(&pd->mu);
	rc = mst_sim_input_ip(pd->sim, buf, count);
	pd_drain(pd);
	pd_changed(pd);
	pd_unlock(pd);
	return rc < 0 ? pd_err(rc) : 0;
}

/* The next frame the stack sent; when none is queued the clock runs until
 * one is (a timer). Nothing within PD_WAIT_MAX_NS: *count = 0, which
 * packetdrill reports as a bad packet and so fails the script. */
static int pd_netdev_receive(void *u, void *buf, size_t *count, long long *time_us)
{
	struct pd *pd = u;
	uint64_t limit;
	struct pd_out *o;

	pthread_mutex_lock(&pd->mu);
	limit = mst_sim_now(pd->sim) + PD_WAIT_MAX_NS;
	while (!pd->out_n && mst_sim_now(pd->sim) < limit)
		pd_clock_to(pd, mst_sim_now(pd->sim) + PD_TICK_NS);
	if (!pd->out_n) {
		fprintf(stderr, "mustang adapter: the stack sent nothing for %llu s\n",
			PD_WAIT_MAX_NS / 1000000000ull);
		*count = 0;
		*time_us = pd_now_us(pd);
		pd_unlock(pd);
		return 0;
	}
	o = &pd->outq[pd->out_head];
	if (o->len < *count)
		*count = o->len;
	memcpy(buf, o->data, *count);
	*time_us = o->time_us;
	pd->out_head = (pd->out_head + 1) % PD_OUTQ;
	pd->out_n--;
	pd_unlock(pd);
	return 0;
}

static int pd_usleep(void *u, useconds_t us)
{
	struct pd *pd = u;

	pthread_mutex_lock(&pd->mu);
	pd_clock_to(pd, mst_sim_now(pd->sim) + (uint64_t)us * 1000);
	pd_unlock(pd);
	return 0;
}

static int pd_gettimeofday(void *u, struct timeval *tv, struct timezone *tz)
{
	struct pd *pd = u;
	uint64_t now;

	pthread_mutex_lock(&pd->mu);
	if (!pd_is_main(pd) && pd->end_pending) {
		/* The syscall thread reads the end time of its call: exact. */
		pd->end_pending = false;
		pthread_cond_broadcast(&pd->cv);
		now = mst_sim_now(pd->sim);
		pd_unlock(pd);
		goto out;
	}
	/* packetdrill spins on the clock before an event: it must move. */
	pd_clock_to(pd, mst_sim_now(pd->sim) + 1000);
	now = mst_sim_now(pd->sim);
	pd_unlock(pd);
out:
	tv->tv_sec = (time_t)(now / 1000000000ull);
	tv->tv_usec = (suseconds_t)(now % 1000000000ull / 1000);
	return 0;
}

/* ---- sockets ------------------------------------------------------------- */

static int pd_socket(void *u, int domain, int type, int protocol)
{
	struct pd *pd = u;
	int sfd, fd;

	if (domain != AF_INET)
		return pd_err(-EAFNOSUPPORT);
	if ((type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) != SOCK_STREAM ||
	    (protocol != 0 && protocol != IPPROTO_TCP))
		return pd_err(-EPROTONOSUPPORT);
	pthread_mutex_lock(&pd->mu);
	sfd = mst_sim_socket(pd->sim, 1);
	fd = sfd < 0 ? sfd : pd_new_fd(pd, PD_SOCK, sfd);
	if (sfd >= 0 && fd < 0)
		mst_sim_close(pd->sim, sfd);
	if (fd >= 0)
		pd->fds[fd].nonblock = type & SOCK_NONBLOCK;
	pd_unlock(pd);
	return fd < 0 ? pd_err(fd) : fd;
}

static int pd_sin(const struct sockaddr *a, socklen_t len, uint32_t *ip, uint16_t *port)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)a;

	if (!a || len < sizeof(*sin))
		return -EINVAL;
	if (sin->sin_family != AF_INET)
		return -EAFNOSUPPORT;
	*ip = sin->sin_addr.s_addr;
	*port = ntohs(sin->sin_port);
	return 0;
}

static void pd_fill_sin(struct sockaddr *a, socklen_t *len, uint32_t ip, uint16_t port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };

	if (!a || !len)
		return;
	sin.sin_addr.s_addr = ip;
	memcpy(a, &sin, *len < sizeof(sin) ? *len : sizeof(sin));
	*len = sizeof(sin);
}

/* The socket and the IPv4 address a bind or connect names (lock held). */
static int pd_sock_addr(struct pd *pd, int fd, const struct sockaddr *addr, socklen_t len,
			struct pd_fd **f, uint32_t *ip, uint16_t *port)
{
	*f = pd_get(pd, fd, PD_SOCK);
	return *f ? pd_sin(addr, len, ip, port) : -EBADF;
}

static int pd_bind(void *u, int fd, const struct sockaddr *addr, socklen_t len)
{
	struct pd *pd = u;
	struct pd_fd *f;
	uint32_t ip;
	uint16_t port;
	int rc;

	pthread_mutex_lock(&pd->mu);
	rc = pd_sock_addr(pd, fd, addr, len, &f, &ip, &port);
	if (!rc)
		rc = mst_sim_bind(pd->sim, f->sfd, port);
	pd_unlock(pd);
	return rc < 0 ? pd_err(rc) : 0;
}

/* A socket call of the form fn(sim, sfd, arg) that may send segments. */
static int pd_sock_call(void *u, int fd, int (*fn)(struct mst_sim *, int, int), int arg)
{
	struct pd *pd = u;
	struct pd_fd *f;
	int rc;

	pthread_mutex_lock(&pd->mu);
	f = pd_get(pd, fd, PD_SOCK);
	rc = f ? fn(pd->sim, f->sfd, arg) : -EBADF;
	pd_drain(pd);
	pd_unlock(pd);
	return rc < 0 ? pd_err(rc) : 0;
}

static int pd_listen(void *u, int fd, int backlog)
{
	return pd_sock_call(u, fd, mst_sim_listen, backlog);
}

static int pd_accept(void *u, int fd, struct sockaddr *addr, socklen_t *len)
{
	struct pd *pd = u;
	struct pd_fd *f;
	uint32_t ip = 0;
	uint16_t port = 0;
	int rc, nfd = -EBADF;

	pthread_mutex_lock(&pd->mu);
	f = pd_get(pd, fd, PD_SOCK);
	while (f) {
		rc = mst_sim_accept(pd->sim, f->sfd, &ip, &port);
		if (rc >= 0) {
			nfd = pd_new_fd(pd, PD_SOCK, rc);
			if (nfd < 0)
				mst_sim_close(pd->sim, rc);
			else
				pd_fill_sin(addr, len, ip, port);
			break;
		}
		nfd = rc;
		if (rc != -EAGAIN || f->nonblock || !pd_wait(pd, UINT64_MAX))
			break;
		f = pd_get(pd, fd, PD_SOCK); /* closed meanwhile? */
	}
	pd_drain(pd);
	pd_unlock(pd);
	return nfd < 0 ? pd_err(nfd) : nfd;
}

static int pd_sock_error(struct pd *pd, struct pd_fd *f)
{
	int v = 0;
	size_t l = sizeof(v);

	if (mst_sim_getsockopt(pd->sim, f->sfd, SOL_SOCKET, SO_ERROR, &v, &l) < 0)
		return 0;
	return v;
}

static int pd_connect(void *u, int fd, const struct sockaddr *addr, socklen_t len)
{
	struct pd *pd = u;
	struct pd_fd *f;
	uint32_t ip;
	uint16_t port;
	int rc;

	pthread_mutex_lock(&pd->mu);
	rc = pd_sock_addr(pd, fd, addr, len, &f, &ip, &port);
	if (!rc)
		rc = mst_sim_connect(pd->sim, f->sfd, ip, port);
	pd_drain(pd);
	/* A blocking connect waits for the handshake to finish or fail. */
	while (rc == -EINPROGRESS && !f->nonblock) {
		short r = (short)mst_sim_poll(pd->sim, f->sfd, POLLOUT);
		int err;

		if (r & (POLLOUT | POLLERR | POLLHUP)) {
			err = pd_sock_error(pd, f);
			rc = err ? -err : 0;
			break;
		}
		if (!pd_wait(pd, UINT64_MAX))
			break;
	}
	pd_unlock(pd);
	return rc < 0 ? pd_err(rc) : 0;
}

/* Flags a call may carry; anything else is refused so a script using a
 * feature the sim lacks fails visibly instead of passing by accident. */
#define PD_SEND_FLAGS (MSG_DONTWAIT | MSG_NOSIGNAL)
#define PD_RECV_FLAGS (MSG_DONTWAIT)

static ssize_t pd_recv_locked(struct pd *pd, int fd, void *buf, size_t len, int flags)
{
	struct pd_fd *f = pd_get(pd, fd, PD_SOCK);
	ssize_t rc;

	if (!f)
		return -EBADF;
	if (flags & ~PD_RECV_FLAGS)
		return -EOPNOTSUPP;
	for (;;) {
		rc = mst_sim_recv(pd->sim, f->sfd, buf, len);
		if (rc != -EAGAIN || f->nonblock || (flags & MSG_DONTWAIT) || !len)
			break;
		if (!pd_wait(pd, UINT64_MAX))
			break;
		if (!pd_get(pd, fd, PD_SOCK))
			return -EBADF;
	}
	pd_drain(pd); /* a read may open the window */
	return rc;
}

/* Linux's blocking send queues everything before it returns; a
 * non-blocking one queues what fits (EAGAIN when nothing does). */
static ssize_t pd_send_locked(struct pd *pd, int fd, const void *buf, size_t len, int flags)
{
	struct pd_fd *f = pd_get(pd, fd, PD_SOCK);
	size_t done = 0;
	ssize_t rc = 0;

	if (!f)
		return -EBADF;
	if (flags & ~PD_SEND_FLAGS)
		return -EOPNOTSUPP;
	for (;;) {
		rc = mst_sim_send(pd->sim, f->sfd, (const uint8_t *)buf + done, len - done);
		pd_drain(pd);
		if (rc > 0)
			done += (size_t)rc;
		if (done == len || (rc < 0 && rc != -EAGAIN))
			break;
		if (f->nonblock || (flags & MSG_DONTWAIT))
			break;
		if (!pd_wait(pd, UINT64_MAX))
			break;
		if (!pd_get(pd, fd, PD_SOCK))
			return done ? (ssize_t)done : -EBADF;
	}
	return done ? (ssize_t)done : rc;
}

static ssize_t pd_ret(ssize_t rc)
{
	return rc < 0 ? pd_err((int)rc) : rc;
}

static ssize_t pd_recv(void *u, int fd, void *buf, size_t len, int flags)
{
	struct pd *pd = u;
	ssize_t rc;

	pthread_mutex_lock(&pd->mu);
	rc = pd_recv_locked(pd, fd, buf, len, flags);
	pd_unlock(pd);
	return pd_ret(rc);
}

static ssize_t pd_read(void *u, int fd, void *buf, size_t len)
{
	return pd_recv(u, fd, buf, len, 0);
}

static ssize_t pd_recvfrom(void *u, int fd, void *buf, size_t len, int flags,
			   struct sockaddr *src, socklen_t *alen)
{
	if (alen)
		*alen = 0; /* a connected stream socket names no source */
	return pd_recv(u, fd, buf, len, flags);
}

static size_t pd_iov_len(const struct iovec *iov, int n)
{
	size_t t = 0;

	for (int i = 0; i < n; i++)
		t += iov[i].iov_len;
	return t;
}

static ssize_t pd_recvmsg(void *u, int fd, struct msghdr *m, int flags)
{
	size_t total = pd_iov_len(m->msg_iov, (int)m->msg_iovlen), off = 0;
	uint8_t *tmp = malloc(total ? total : 1);
	ssize_t rc;

	if (!tmp)
		return pd_err(-ENOMEM);
	rc = pd_recv(u, fd, tmp, total, flags);
	for (size_t i = 0; rc > 0 && i < m->msg_iovlen && off < (size_t)rc; i++) {
		size_t n = m->msg_iov[i].iov_len;

		if (n > (size_t)rc - off)
			n = (size_t)rc - off;
		memcpy(m->msg_iov[i].iov_base, tmp + off, n);
		off += n;
	}
	m->msg_controllen = 0;
	m->msg_flags = 0;
	free(tmp);
	return rc;
}

static ssize_t pd_readv(void *u, int fd, const struct iovec *iov, int n)
{
	struct msghdr m = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)n };

	return pd_recvmsg(u, fd, &m, 0);
}

static ssize_t pd_send(void *u, int fd, const void *buf, size_t len, int flags)
{
	struct pd *pd = u;
	ssize_t rc;

	pthread_mutex_lock(&pd->mu);
	rc = pd_send_locked(pd, fd, buf, len, flags);
	pd_unlock(pd);
	return pd_ret(rc);
}

static ssize_t pd_write(void *u, int fd, const void *buf, size_t len)
{
	return pd_send(u, fd, buf, len, 0);
}

static ssize_t pd_sendto(void *u, int fd, const void *buf, size_t len, int flags,
			 const struct sockaddr *dst, socklen_t alen)
{
	/* Linux's TCP ignores the address on a connected socket (no Fast
	 * Open here: MSG_FASTOPEN is refused with the other unknown flags). */
	return pd_send(u, fd, buf, len, flags);
}

static ssize_t pd_sendmsg(void *u, int fd, const struct msghdr *m, int flags)
{
	size_t total = pd_iov_len(m->msg_iov, (int)m->msg_iovlen), off = 0;
	uint8_t *tmp;
	ssize_t rc;

	if (m->msg_controllen)
		return pd_err(-EOPNOTSUPP);
	tmp = malloc(total ? total : 1);
	if (!tmp)
		return pd_err(-ENOMEM);
	for (size_t i = 0; i < m->msg_iovlen; i++) {
		memcpy(tmp + off, m->msg_iov[i].iov_base, m->msg_iov[i].iov_len);
		off += m->msg_iov[i].iov_len;
	}
	rc = pd_sendto(u, fd, tmp, total, flags, m->msg_name, m->msg_namelen);
	free(tmp);
	return rc;
}

static ssize_t pd_writev(void *u, int fd, const struct iovec *iov, int n)
{
	struct msghdr m = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)n };

	return pd_sendmsg(u, fd, &m, 0);
}

static int pd_fcntl(void *u, int fd, int cmd, ...)
{
	struct pd *pd = u;
	struct pd_fd *f;
	va_list ap;
	int rc = 0;
	long arg;

	va_start(ap, cmd);
	arg = va_arg(ap, long);
	va_end(ap);
	pthread_mutex_lock(&pd->mu);
	f = pd_get(pd, fd, PD_SOCK);
	if (!f)
		rc = -EBADF;
	else if (cmd == F_GETFL)
		rc = O_RDWR | (f->nonblock ? O_NONBLOCK : 0);
	else if (cmd == F_SETFL)
		f->nonblock = arg & O_NONBLOCK;
	else
		rc = -EINVAL;
	pd_unlock(pd);
	return rc < 0 ? pd_err(rc) : rc;
}

static int pd_ioctl(void *u, int fd, unsigned long req, ...)
{
	struct pd *pd = u;
	struct pd_fd *f;
	va_list ap;
	int *out, rc;

	va_start(ap, req);
	out = va_arg(ap, int *);
	va_end(ap);
	pthread_mutex_lock(&pd->mu);
	f = pd_get(pd, fd, PD_SOCK);
	if (!f)
		rc = -EBADF;
	else if (req == SIOCINQ)
		rc = mst_sim_queued(pd->sim, f->sfd, out, NULL);
	else if (req == SIOCOUTQ)
		rc = mst_sim_queued(pd->sim, f->sfd, NULL, out);
	else
		rc = -ENOTTY;
	pd_unlock(pd);
	return rc < 0 ? pd_err(rc) : 0;
}

static void pd_epoll_forget(struct pd *pd, int fd)
{
	for (int i = PD_FD_BASE; i < PD_FDS; i++)
		if (pd->fds[i].kind == PD_EPOLL)
			for (int j = 0; j < PD_EPOLL_MAX; j++)
				if (pd->fds[i].ep[j].fd == fd)
					pd->fds[i].ep[j].fd = -1;
}

static int pd_close(void *u, int fd)
{
	struct pd *pd = u;
	struct pd_fd *f;
	int rc = 0;

	pthread_mutex_lock(&pd->mu);
	f = pd_get(pd, fd, PD_SOCK);
	if (!f)
		f = pd_get(pd, fd, PD_EPOLL);
	if (!f) {
		rc = -EBADF;
	} else {
		if (f->kind == PD_SOCK)
			rc = mst_sim_close(pd->sim, f->sfd);
		f->kind = PD_FREE;
		pd_epoll_forget(pd, fd);
		pd_real_close(fd);
	}
	pd_drain(pd);
	pd_unlock(pd);
	return rc < 0 ? pd_err(rc) : 0;
}

static int pd_shutdown(void *u, int fd, int how)
{
	return pd_sock_call(u, fd, mst_sim_shutdown, how);
}

/* SO_MEMINFO as Linux lays it out (rmem_alloc, rcvbuf, wmem_alloc, sndbuf,
 * fwd_alloc, wmem_queued, optmem, backlog, drops): the parts the sim
 * knows, the rest 0 (Mustang has no per-socket memory accounting). */
static int pd_meminfo(struct pd *pd, struct pd_fd *f, void *val, socklen_t *len)
{
	uint32_t m[PD_MEMINFO_VARS] = { 0 };
	int v;
	size_t l = sizeof(v);

	int in = 0, out = 0;

	mst_sim_queued(pd->sim, f->sfd, &in, &out);
	m[0] = (uint32_t)in;
	m[2] = m[5] = (uint32_t)out;
	if (mst_sim_getsockopt(pd->sim, f->sfd, SOL_SOCKET, SO_RCVBUF, &v, &l) == 0)
		m[1] = (uint32_t)v;
	if (mst_sim_getsockopt(pd->sim, f->sfd, SOL_SOCKET, SO_SNDBUF, &v, &l) == 0)
		m[3] = (uint32_t)v;
	if (*len > sizeof(m))
		*len = sizeof(m);
	memcpy(val, m, *len);
	return 0;
}

static int pd_getsockopt_locked(struct pd *pd, int fd, int level, int name, void *val,
				socklen_t *len)
{
	struct pd_fd *f = pd_get(pd, fd, PD_SOCK);
	size_t l;
	int rc;

	if (!f)
		return -EBADF;
	if (!len)
		return -EFAULT;
	if (level == PD_SOL_TCP && name == PD_TCP_CC_INFO) {
		*len = 0; /* as Linux for a congestion control without info */
		return 0;
	}
	if (level == SOL_SOCKET && name == PD_SO_MEMINFO)
		return pd_meminfo(pd, f, val, len);
	l = *len;
	rc = mst_sim_getsockopt(pd->sim, f->sfd, level, name, val, &l);
	if (!rc)
		*len = (socklen_t)l;
	return rc;
}

static int pd_getsockopt(void *u, int fd, int level, int name, void *val, socklen_t *len)
{
	struct pd *pd = u;
	int rc;

	pthread_mutex_lock(&pd->mu);
	rc = pd_getsockopt_locked(pd, fd, level, name, val, len);
	pd_unlock(pd);
	return rc < 0 ? pd_err(rc) : 0;
}

static int pd_setsockopt(void *u, int fd, int level, int name, const void *val, socklen_t len)
{
	struct pd *pd = u;
	struct pd_fd *f;
	int rc;

	pthread_mutex_lock(&pd->mu);
	f = pd_get(pd, fd, PD_SOCK);
	rc = f ? mst_sim_setsockopt(pd->sim, f->sfd, level, name, val, len) : -EBADF;
	pd_drain(pd);
	pd_unlock(pd);
	return rc < 0 ? pd_err(rc) : 0;
}

/* ---- readiness ------------------------------------------------------------ */

static short pd_revents(struct pd *pd, int fd, short events)
{
	struct pd_fd *f = pd_get(pd, fd, PD_SOCK);

	if (!f)
		return POLLNVAL;
	return (short)mst_sim_poll(pd->sim, f->sfd, (short)(events | POLLERR | POLLHUP));
}

static int pd_poll(void *u, struct pollfd *fds, nfds_t n, int timeout)
{
	struct pd *pd = u;
	uint64_t deadline;
	int ready;

	pthread_mutex_lock(&pd->mu);
	deadline = pd_deadline(pd, timeout);
	for (;;) {
		ready = 0;
		for (nfds_t i = 0; i < n; i++) {
			fds[i].revents = fds[i].fd < 0 ? 0 : pd_revents(pd, fds[i].fd, fds[i].events);
			ready += fds[i].revents != 0;
		}
		if (ready || !pd_wait(pd, deadline))
			break;
	}
	pd_unlock(pd);
	return ready;
}

static int pd_epoll_create(void *u, int size)
{
	struct pd *pd = u;
	int fd;

	if (size <= 0)
		return pd_err(-EINVAL);
	pthread_mutex_lock(&pd->mu);
	fd = pd_new_fd(pd, PD_EPOLL, -1);
	pd_unlock(pd);
	return fd < 0 ? pd_err(fd) : fd;
}

static struct pd_epitem *pd_ep_find(struct pd_fd *e, int fd)
{
	for (int j = 0; j < PD_EPOLL_MAX; j++)
		if (e->ep[j].fd == fd)
			return &e->ep[j];
	return NULL;
}

static int pd_epoll_ctl_locked(struct pd *pd, int epfd, int op, int fd, struct epoll_event *ev)
{
	struct pd_fd *e = pd_get(pd, epfd, PD_EPOLL);
	struct pd_epitem *it;

	if (!e)
		return -EBADF;
	if (!pd_get(pd, fd, PD_SOCK))
		return -EBADF;
	it = pd_ep_find(e, fd);
	switch (op) {
	case EPOLL_CTL_ADD:
		if (it)
			return -EEXIST;
		it = pd_ep_find(e, -1);
		if (!it)
			return -ENOSPC;
		break;
	case EPOLL_CTL_MOD:
		if (!it)
			return -ENOENT;
		break;
	case EPOLL_CTL_DEL:
		if (!it)
			return -ENOENT;
		it->fd = -1;
		return 0;
	default:
		return -EINVAL;
	}
	if (!ev)
		return -EFAULT;
	it->fd = fd;
	it->ev = *ev;
	it->reported = 0;
	it->disarmed = false;
	return 0;
}

static int pd_epoll_ctl(void *u, int epfd, int op, int fd, struct epoll_event *ev)
{
	struct pd *pd = u;
	int rc;

	pthread_mutex_lock(&pd->mu);
	rc = pd_epoll_ctl_locked(pd, epfd, op, fd, ev);
	pd_unlock(pd);
	return rc < 0 ? pd_err(rc) : 0;
}

/* EPOLLET as Linux: every wake-up (new data in, data acknowledged, a
 * readiness bit newly set) reports the whole current mask once. */
static bool pd_et_fresh(struct pd *pd, struct pd_epitem *it, uint32_t r)
{
	struct mst_sim_tcp_info ti = { 0 };
	struct pd_fd *f = pd_get(pd, it->fd, PD_SOCK);
	bool fresh = (r & ~it->reported) != 0;

	if (f && mst_sim_tcp_info(pd->sim, f->sfd, &ti) == 0) {
		fresh |= (r & EPOLLIN) && ti.rcv_nxt != it->rcv_nxt;
		fresh |= (r & EPOLLOUT) && ti.snd_una != it->snd_una;
		it->rcv_nxt = ti.rcv_nxt;
		it->snd_una = ti.snd_una;
	}
	return fresh;
}

/* Level-triggered by default; EPOLLET see pd_et_fresh(); EPOLLONESHOT
 * disarms after one report. */
static int pd_epoll_collect(struct pd *pd, struct pd_fd *e, struct epoll_event *out, int max)
{
	int n = 0;

	for (int j = 0; j < PD_EPOLL_MAX && n < max; j++) {
		struct pd_epitem *it = &e->ep[j];
		uint32_t want = it->ev.events & (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI);
		uint32_t r;
		bool fresh;

		if (it->fd < 0 || it->disarmed)
			continue;
		r = (uint32_t)(unsigned short)pd_revents(pd, it->fd, (short)want);
		r &= want | EPOLLERR | EPOLLHUP;
		fresh = (it->ev.events & EPOLLET) ? pd_et_fresh(pd, it, r) : r != 0;
		it->reported &= r;
		if (!fresh || !r)
			continue;
		it->reported |= r;
		out[n].events = r;
		out[n].data = it->ev.data;
		n++;
		if (it->ev.events & EPOLLONESHOT)
			it->disarmed = true;
	}
	return n;
}

static int pd_epoll_wait(void *u, int epfd, struct epoll_event *events, int max, int timeout)
{
	struct pd *pd = u;
	struct pd_fd *e;
	uint64_t deadline;
	int n = -EBADF;

	if (max <= 0)
		return pd_err(-EINVAL);
	pthread_mutex_lock(&pd->mu);
	deadline = pd_deadline(pd, timeout);
	while ((e = pd_get(pd, epfd, PD_EPOLL)) != NULL) {
		n = pd_epoll_collect(pd, e, events, max);
		if (n || !pd_wait(pd, deadline))
			break;
	}
	pd_unlock(pd);
	return n < 0 ? pd_err(n) : n;
}

static int pd_pipe(void *u, int fds[2])
{
	return pd_err(-ENOSYS);
}

static int pd_splice(void *u, int in, loff_t *off_in, int out, loff_t *off_out, size_t len,
		     unsigned int flags)
{
	return pd_err(-ENOSYS);
}

/* ---- set-up ---------------------------------------------------------------- */

static void pd_free(void *u)
{
	struct pd *pd = u;

	if (pd_current == pd)
		pd_current = NULL;
	for (int i = PD_FD_BASE; i < PD_FDS; i++)
		if (pd->fds[i].kind != PD_FREE)
			pd_real_close(i);
	mst_sim_destroy(pd->sim);
	free(pd->outq);
	pthread_cond_destroy(&pd->cv);
	pthread_mutex_destroy(&pd->mu);
	free(pd);
}

static uint32_t pd_ip(const char *s)
{
	struct in_addr a;

	return inet_aton(s, &a) ? a.s_addr : 0;
}

/* so_flags: key=value pairs separated by commas (see the header). */
static void pd_parse_flags(const char *flags, struct mst_sim_conf *c, char *cc, size_t cc_len)
{
	char buf[512], *save = NULL, *kv;

	if (!flags)
		return;
	snprintf(buf, sizeof(buf), "%s", flags);
	for (kv = strtok_r(buf, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(kv, '=');
		unsigned long v;

		if (!eq) {
			fprintf(stderr, "mustang adapter: so_flags: '%s' has no value\n", kv);
			continue;
		}
		*eq++ = 0;
		v = strtoul(eq, NULL, 0);
		if (!strcmp(kv, "rmem"))
			c->rx_buf = (uint32_t)v;
		else if (!strcmp(kv, "rmem_max"))
			c->rx_buf_max = (uint32_t)v;
		else if (!strcmp(kv, "wmem"))
			c->tx_buf = (uint32_t)v;
		else if (!strcmp(kv, "timestamps"))
			c->no_timestamps = !v;
		else if (!strcmp(kv, "sack"))
			c->no_sack = !v;
		else if (!strcmp(kv, "wscale"))
			c->no_wscale = !v;
		else if (!strcmp(kv, "syncookies"))
			c->no_syncookies = !v;
		else if (!strcmp(kv, "cc"))
			snprintf(cc, cc_len, "%s", eq);
		else
			fprintf(stderr, "mustang adapter: so_flags: unknown '%s'\n", kv);
	}
}

void packetdrill_interface_init(const char *flags, struct packetdrill_interface *ifc);

void packetdrill_interface_init(const char *flags, struct packetdrill_interface *ifc)
{
	static char cc[32] = "cubic";
	struct mst_sim_conf c = {
		.version = MST_SIM_VERSION,
		.mac = { 0x02, 0, 0, 0, 0, 1 },
		.peer_mac = { 0x02, 0, 0, 0, 0, 2 },
		.prefix_len = 16,
		.tx_buf = 262144,   /* Linux's tcp_wmem default (defaults.sh) */
		.rx_buf = 524288,   /* FIFO size (power of 2) over tcp_rmem's 540000 default... */
		.rx_buf_max = 15 * 1024 * 1024, /* ...and its maximum */
		.start_ns = 1000ull * 1000000000ull,
	};
	struct pd *pd = calloc(1, sizeof(*pd));

	if (!pd) {
		fprintf(stderr, "mustang adapter: out of memory\n");
		abort();
	}
	c.ip = pd_ip("192.168.0.1");   /* run.py's --local_ip, --netmask_ip */
	c.gw = pd_ip("192.168.0.2");   /* the remote 192.0.2.1 is off-link */
	pd_parse_flags(flags, &c, cc, sizeof(cc));
	c.cc = cc;
	pthread_mutex_init(&pd->mu, NULL);
	pthread_cond_init(&pd->cv, NULL);
	pd->main = pthread_self();
	pd->outq = calloc(PD_OUTQ, sizeof(*pd->outq));
	pd->sim = mst_sim_create(&c);
	if (!pd->sim || !pd->outq) {
		fprintf(stderr, "mustang adapter: mst_sim_create: %s\n", strerror(errno));
		abort();
	}
	pd_current = pd;
	*ifc = (struct packetdrill_interface){
		.userdata = pd,
		.free = pd_free,
		.socket = pd_socket,
		.bind = pd_bind,
		.listen = pd_listen,
		.accept = pd_accept,
		.connect = pd_connect,
		.read = pd_read,
		.readv = pd_readv,
		.recv = pd_recv,
		.recvfrom = pd_recvfrom,
		.recvmsg = pd_recvmsg,
		.write = pd_write,
		.writev = pd_writev,
		.send = pd_send,
		.sendto = pd_sendto,
		.sendmsg = pd_sendmsg,
		.fcntl = pd_fcntl,
		.ioctl = pd_ioctl,
		.close = pd_close,
		.shutdown = pd_shutdown,
		.getsockopt = pd_getsockopt,
		.setsockopt = pd_setsockopt,
		.poll = pd_poll,
		.netdev_send = pd_netdev_send,
		.netdev_receive = pd_netdev_receive,
		.usleep = pd_usleep,
		.gettimeofday = pd_gettimeofday,
		.epoll_create = pd_epoll_create,
		.epoll_ctl = pd_epoll_ctl,
		.epoll_wait = pd_epoll_wait,
		.pipe = pd_pipe,
		.splice = pd_splice,
	};
}

/* Preloaded into packetdrill: code blocks read TCP_INFO, TCP_CC_INFO and
 * SO_MEMINFO with the C library's getsockopt() on our descriptors. */
int getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
	static int (*real)(int, int, int, void *, socklen_t *);
	struct pd *pd = pd_current;

	if (pd && fd >= PD_FD_BASE && fd < PD_FDS && pd->fds[fd].kind == PD_SOCK)
		return pd_getsockopt(pd, fd, level, name, val, len);
	if (!real)
		real = (int (*)(int, int, int, void *, socklen_t *))dlsym(RTLD_NEXT, "getsockopt");
	return real ? real(fd, level, name, val, len) : pd_err(-ENOSYS);
}

int close(int fd)
{
	struct pd *pd = pd_current;

	if (pd && fd >= PD_FD_BASE && fd < PD_FDS && pd->fds[fd].kind != PD_FREE)
		return pd_close(pd, fd);
	return pd_real_close(fd);
}
