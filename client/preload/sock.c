/* SPDX-License-Identifier: BSD-3-Clause */
/* The wrappers define libc's own names: no large-file renaming (LP64). */
#undef _FILE_OFFSET_BITS
/*
 * libmustang-preload: socket life cycle and descriptor calls.
 *
 * socket() -> a kernel socket, PL_PENDING for AF_INET TCP/UDP
 * bind()/listen()/connect() -> pl_promote(): PL_MST (or back to the
 *   kernel for an excluded address, or a bind to an address Mustang does
 *   not own) -> mst_bind/mst_listen/mst_connect
 * accept()/accept4() -> mst_accept4 + a new placeholder number
 * close()/close_range()/dup*()/fcntl()/ioctl()/sockopts/names
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <mustang/mustang.h>

#include "preload.h"

#define RET_ERR(e) do { errno = (e); return -1; } while (0)

/* ---- creation and promotion ---------------------------------------------- */

PL_API int socket(int domain, int type, int protocol)
{
	int base = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC), fd, r;
	struct pl_pending *p;

	PL_ENSURE();
	fd = real.socket(domain, type, protocol);
	if (fd < 0 || domain != AF_INET || (base != SOCK_STREAM && base != SOCK_DGRAM) ||
	    (protocol && protocol != IPPROTO_TCP && protocol != IPPROTO_UDP) || !pl_slot(fd))
		return fd;
	r = pl_attach();
	if (r == 0)
		return fd; /* MUSTANG_PRELOAD_FALLBACK=kernel */
	if (r < 0) {
		real.close(fd);
		RET_ERR(ENETDOWN);
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		real.close(fd);
		RET_ERR(ENOMEM);
	}
	p->type = base;
	pl_lock();
	pl_tab[fd].pend = p;
	pl_set(fd, PL_PENDING, -1, !!(type & SOCK_CLOEXEC), base == SOCK_DGRAM);
	pl_unlock();
	return fd;
}

static void replay_opts(int m, const struct pl_pending *p)
{
	char what[64];

	for (int i = 0; i < p->n_opts; i++) {
		const struct pl_opt *o = &p->opts[i];

		if (mst_setsockopt(m, o->level, o->name, o->val, o->len) == 0)
			continue;
		snprintf(what, sizeof(what), "setsockopt(level %d, option %d)", o->level, o->name);
		pl_warn_once(what, errno);
	}
}

/* PL_PENDING -> PL_MST (or PL_NONE if `to` is excluded). 0 or -1. */
int pl_promote(int fd, const struct sockaddr *to, socklen_t len)
{
	struct pl_fd *s = &pl_tab[fd];
	struct pl_pending *p;
	int m, fl;

	pl_lock();
	if (s->kind != PL_PENDING) { /* another thread got here first */
		pl_unlock();
		return 0;
	}
	p = s->pend;
	if (to && pl_excluded(to, len)) {
		m = -1;
		goto out_kernel;
	}
	m = mst_socket(AF_INET, p->type, 0);
	if (m < 0) {
		pl_unlock();
		return -1;
	}
	fl = real.fcntl(fd, F_GETFL);
	if (fl >= 0 && (fl & O_NONBLOCK))
		mst_fcntl(m, F_SETFL, O_NONBLOCK);
	replay_opts(m, p);
	/* The kernel socket now only holds the number: it never survives
	 * exec (the app's FD_CLOEXEC is kept in the slot). */
	fl = real.fcntl(fd, F_GETFD);
	real.fcntl(fd, F_SETFD, FD_CLOEXEC);
	pl_ref(m);
	s->pend = NULL;
	free(p);
	pl_set(fd, PL_MST, m, fl >= 0 && (fl & FD_CLOEXEC), s->dgram);
	pl_unlock();
	return 0;

out_kernel:
	s->pend = NULL;
	free(p);
	__atomic_store_n(&s->kind, PL_NONE, __ATOMIC_RELEASE);
	pl_unlock();
	return 0;
}

/* A bind Mustang refused as not its address: the socket goes back to the
 * kernel (its options and flags were applied there as they were set). */
static void demote(int fd)
{
	struct pl_fd *s = &pl_tab[fd];
	int m, cloexec;

	pl_lock();
	if (s->kind != PL_MST) {
		pl_unlock();
		return;
	}
	m = s->mst;
	cloexec = s->cloexec;
	__atomic_store_n(&s->kind, PL_NONE, __ATOMIC_RELEASE);
	pl_unlock();
	pl_unref(m);
	real.fcntl(fd, F_SETFD, cloexec ? FD_CLOEXEC : 0);
}

PL_API int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
	uint32_t k;
	bool dead;
	int m, r;

	PL_ENSURE();
	k = pl_kind(fd);
	if (k == PL_PENDING && pl_promote(fd, addr, len) < 0)
		return -1;
	if ((m = pl_mst(fd, &dead)) < 0)
		return dead ? pl_dead_err() : real.bind(fd, addr, len);
	r = mst_bind(m, addr, len);
	if (r < 0 && errno == EADDRNOTAVAIL && k == PL_PENDING) {
		demote(fd);
		return real.bind(fd, addr, len);
	}
	return r;
}

PL_API int listen(int fd, int backlog)
{
	bool dead;
	int m;

	PL_ENSURE();
	if (pl_kind(fd) == PL_PENDING && pl_promote(fd, NULL, 0) < 0)
		return -1;
	if ((m = pl_mst(fd, &dead)) < 0)
		return dead ? pl_dead_err() : real.listen(fd, backlog);
	return mst_listen(m, backlog);
}

PL_API int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	bool dead;
	int m;

	PL_ENSURE();
	if (pl_kind(fd) == PL_PENDING && pl_promote(fd, addr, len) < 0)
		return -1;
	if ((m = pl_mst(fd, &dead)) < 0)
		return dead ? pl_dead_err() : real.connect(fd, addr, len);
	return mst_connect(m, addr, len);
}

/* A new number for an accepted Mustang socket: an unconnected kernel
 * socket that is never used for I/O (fstat still says "socket"). */
static int placeholder_for(int m, int cloexec)
{
	int ph = real.socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (ph >= 0 && !pl_slot(ph)) {
		real.close(ph);
		ph = -1;
		errno = EMFILE;
	}
	if (ph < 0) {
		int e = errno;

		mst_close(m);
		RET_ERR(e);
	}
	pl_lock();
	pl_ref(m);
	pl_set(ph, PL_MST, m, cloexec, 0);
	pl_unlock();
	return ph;
}

static int do_accept(int fd, struct sockaddr *addr, socklen_t *len, int flags, bool four)
{
	bool dead;
	int m, c;

	PL_ENSURE();
	if ((m = pl_mst(fd, &dead)) < 0) {
		if (dead)
			return pl_dead_err();
		return four ? real.accept4(fd, addr, len, flags) : real.accept(fd, addr, len);
	}
	if (flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC))
		RET_ERR(EINVAL);
	c = mst_accept4(m, addr, len, flags & SOCK_NONBLOCK);
	if (c < 0)
		return -1;
	return placeholder_for(c, !!(flags & SOCK_CLOEXEC));
}

PL_API int accept(int fd, struct sockaddr *addr, socklen_t *len)
{
	return do_accept(fd, addr, len, 0, false);
}

PL_API int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
	return do_accept(fd, addr, len, flags, true);
}

/* ---- close and dup -------------------------------------------------------------- */

int pl_close_slot(int fd)
{
	struct pl_fd *s = pl_slot(fd);
	struct pl_ep *ep = NULL;
	int m = -1, r = 0;

	if (!s)
		return 0;
	pl_lock();
	switch (s->kind) {
	case PL_MST:
		m = s->mst;
		break;
	case PL_EPOLL:
		ep = s->ep;
		s->ep = NULL;
		break;
	case PL_PENDING:
		free(s->pend);
		s->pend = NULL;
		break;
	default:
		break;
	}
	__atomic_store_n(&s->kind, PL_NONE, __ATOMIC_RELEASE);
	/* The last reference closes the Mustang socket (under the lock: a
	 * dup on another thread must not revive it halfway). */
	if (m >= 0)
		r = pl_unref(m);
	pl_unlock();
	if (ep)
		pl_ep_free(ep);
	return r;
}

PL_API int close(int fd)
{
	int r, rk;

	PL_ENSURE();
	if (pl_kind(fd) == PL_NONE)
		return real.close(fd);
	/* Our slot first, then the number: until the kernel fd is closed
	 * nobody else can get this number. */
	r = pl_close_slot(fd);
	rk = real.close(fd);
	return r < 0 ? r : rk;
}

PL_API int close_range(unsigned first, unsigned last, int flags)
{
	int hi = pl_hiwater();

	PL_ENSURE();
	if (!(flags & CLOSE_RANGE_CLOEXEC))
		for (unsigned fd = first; fd <= last && (int)fd <= hi && fd < (unsigned)INT32_MAX; fd++)
			if (pl_kind((int)fd) != PL_NONE)
				pl_close_slot((int)fd);
	if (!real.close_range)
		RET_ERR(ENOSYS);
	return real.close_range(first, last, flags);
}

/* newfd (a fresh dup of fd's placeholder) becomes another name for fd's
 * Mustang socket. */
static int dup_slot(int fd, int newfd, int cloexec)
{
	struct pl_fd *s = &pl_tab[fd];

	if (!pl_slot(newfd)) {
		real.close(newfd);
		RET_ERR(EMFILE);
	}
	pl_lock();
	if (s->kind == PL_MST) {
		pl_ref(s->mst);
		pl_set(newfd, PL_MST, s->mst, cloexec, s->dgram);
	} else if (s->kind == PL_DEAD) {
		pl_set(newfd, PL_DEAD, -1, cloexec, 0);
	}
	pl_unlock();
	return newfd;
}

static bool mustang_like(int fd)
{
	uint32_t k = pl_kind(fd);

	return k == PL_MST || k == PL_DEAD;
}

static int dup_from(int fd, int min, int cloexec)
{
	int n = real.fcntl(fd, F_DUPFD_CLOEXEC, min);

	return n < 0 ? -1 : dup_slot(fd, n, cloexec);
}

PL_API int dup(int fd)
{
	PL_ENSURE();
	if (!mustang_like(fd))
		return real.dup(fd);
	return dup_from(fd, 0, 0);
}

static int do_dup3(int fd, int newfd, int flags, bool three)
{
	int n;

	if (!mustang_like(fd) && pl_kind(newfd) == PL_NONE)
		return three ? real.dup3(fd, newfd, flags) : real.dup2(fd, newfd);
	if (fd == newfd) /* dup2: a no-op on a valid fd; dup3: EINVAL */
		return three ? real.dup3(fd, newfd, flags) : real.dup2(fd, newfd);
	if (three && (flags & ~O_CLOEXEC))
		RET_ERR(EINVAL);
	if (fcntl(fd, F_GETFD) < 0) /* fd must be valid before newfd is touched */
		return -1;
	pl_close_slot(newfd);
	if (!mustang_like(fd))
		return three ? real.dup3(fd, newfd, flags) : real.dup2(fd, newfd);
	n = real.dup3(fd, newfd, O_CLOEXEC);
	return n < 0 ? -1 : dup_slot(fd, n, !!(flags & O_CLOEXEC));
}

PL_API int dup2(int fd, int newfd)
{
	PL_ENSURE();
	return do_dup3(fd, newfd, 0, false);
}

PL_API int dup3(int fd, int newfd, int flags)
{
	PL_ENSURE();
	return do_dup3(fd, newfd, flags, true);
}

/* ---- fcntl / ioctl -------------------------------------------------------------- */

static int mst_fcntl_call(int fd, int m, int cmd, long arg)
{
	struct pl_fd *s = &pl_tab[fd];

	switch (cmd) {
	case F_GETFL:
		return mst_fcntl(m, F_GETFL);
	case F_SETFL:
		if (arg & (O_ASYNC | O_DIRECT)) {
			pl_warn_once("fcntl(F_SETFL, O_ASYNC/O_DIRECT)", EOPNOTSUPP);
			RET_ERR(EOPNOTSUPP);
		}
		return mst_fcntl(m, F_SETFL, arg & O_NONBLOCK);
	case F_GETFD:
		return s->cloexec ? FD_CLOEXEC : 0;
	case F_SETFD:
		s->cloexec = !!(arg & FD_CLOEXEC);
		return 0;
	case F_DUPFD:
	case F_DUPFD_CLOEXEC:
		if (arg < 0)
			RET_ERR(EINVAL);
		return dup_from(fd, (int)arg, cmd == F_DUPFD_CLOEXEC);
	default: {
		char what[40];

		snprintf(what, sizeof(what), "fcntl(cmd %d)", cmd);
		pl_warn_once(what, EINVAL);
		RET_ERR(EINVAL);
	}
	}
}

static int do_fcntl(int fd, int cmd, void *arg, bool is64)
{
	bool dead;
	int m;

	PL_ENSURE();
	m = pl_mst(fd, &dead);
	if (m >= 0)
		return mst_fcntl_call(fd, m, cmd, (long)arg);
	if (dead && cmd != F_GETFD && cmd != F_SETFD)
		return pl_dead_err();
	(void)is64; /* on LP64 fcntl and fcntl64 are the same call */
	return real.fcntl(fd, cmd, arg);
}

PL_API int fcntl(int fd, int cmd, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, cmd);
	arg = va_arg(ap, void *);
	va_end(ap);
	return do_fcntl(fd, cmd, arg, false);
}

PL_API int fcntl64(int fd, int cmd, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, cmd);
	arg = va_arg(ap, void *);
	va_end(ap);
	return do_fcntl(fd, cmd, arg, true);
}

/* FIONREAD: bytes buffered (TCP) or the next datagram's size (UDP). */
static int fionread(int fd, int m, int *out)
{
	const void *p1, *p2;
	size_t n1, n2;
	ssize_t r;
	char c;

	if (!pl_tab[fd].dgram) {
		r = mst_rx_peek(m, &p1, &n1, &p2, &n2);
	} else {
		r = mst_recv(m, &c, 1, MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT);
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			r = 0;
	}
	if (r < 0)
		return -1;
	*out = r > INT32_MAX ? INT32_MAX : (int)r;
	return 0;
}

PL_API int ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	bool dead;
	void *arg;
	int m, v;

	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	PL_ENSURE();
	if ((m = pl_mst(fd, &dead)) < 0)
		return dead ? pl_dead_err() : real.ioctl(fd, req, arg);
	switch (req) {
	case FIONBIO:
		if (!arg)
			RET_ERR(EFAULT);
		memcpy(&v, arg, sizeof(v));
		return mst_fcntl(m, F_SETFL, v ? O_NONBLOCK : 0);
	case FIONREAD:
		if (!arg)
			RET_ERR(EFAULT);
		if (fionread(fd, m, &v) < 0)
			return -1;
		memcpy(arg, &v, sizeof(v));
		return 0;
	default: {
		char what[40];

		snprintf(what, sizeof(what), "ioctl(0x%lx)", req);
		pl_warn_once(what, ENOTTY);
		RET_ERR(ENOTTY);
	}
	}
}

/* ---- options and names -------------------------------------------------------- */

/* A pending socket's option: applied to the kernel socket now and kept to
 * be replayed on the Mustang socket. */
static void record_opt(int fd, int level, int name, const void *val, socklen_t len)
{
	struct pl_pending *p;
	struct pl_opt *o = NULL;

	pl_lock();
	p = pl_tab[fd].kind == PL_PENDING ? pl_tab[fd].pend : NULL;
	for (int i = 0; p && i < p->n_opts && !o; i++)
		if (p->opts[i].level == level && p->opts[i].name == name)
			o = &p->opts[i];
	if (p && !o && p->n_opts < PL_MAX_OPTS)
		o = &p->opts[p->n_opts++];
	if (o && len <= (socklen_t)sizeof(o->val)) {
		*o = (struct pl_opt){ .level = level, .name = name, .len = len };
		memcpy(o->val, val, len);
	} else if (p) {
		pl_warn_once("setsockopt before bind/connect (too many or too long to carry over)",
			     ENOBUFS);
	}
	pl_unlock();
}

static int opt_fail(const char *call, int level, int name)
{
	char what[64];
	int e = errno;

	if (e == ENOPROTOOPT || e == EOPNOTSUPP) {
		snprintf(what, sizeof(what), "%s(level %d, option %d)", call, level, name);
		pl_warn_once(what, e);
	}
	errno = e;
	return -1;
}

PL_API int setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	bool dead;
	int m, r;

	PL_ENSURE();
	if ((m = pl_mst(fd, &dead)) < 0) {
		if (dead)
			return pl_dead_err();
		r = real.setsockopt(fd, level, name, val, len);
		if (r == 0 && val && pl_kind(fd) == PL_PENDING)
			record_opt(fd, level, name, val, len);
		return r;
	}
	r = mst_setsockopt(m, level, name, val, len);
	return r < 0 ? opt_fail("setsockopt", level, name) : r;
}

PL_API int getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
	bool dead;
	int m, r;

	PL_ENSURE();
	if ((m = pl_mst(fd, &dead)) < 0)
		return dead ? pl_dead_err() : real.getsockopt(fd, level, name, val, len);
	r = mst_getsockopt(m, level, name, val, len);
	return r < 0 ? opt_fail("getsockopt", level, name) : r;
}

PL_API int getsockname(int fd, struct sockaddr *addr, socklen_t *len)
{
	bool dead;
	int m;

	PL_ENSURE();
	if ((m = pl_mst(fd, &dead)) < 0)
		return dead ? pl_dead_err() : real.getsockname(fd, addr, len);
	return mst_getsockname(m, addr, len);
}

PL_API int getpeername(int fd, struct sockaddr *addr, socklen_t *len)
{
	bool dead;
	int m;

	PL_ENSURE();
	if ((m = pl_mst(fd, &dead)) < 0)
		return dead ? pl_dead_err() : real.getpeername(fd, addr, len);
	return mst_getpeername(m, addr, len);
}

PL_API int shutdown(int fd, int how)
{
	bool dead;
	int m;

	PL_ENSURE();
	if ((m = pl_mst(fd, &dead)) < 0)
		return dead ? pl_dead_err() : real.shutdown(fd, how);
	return mst_shutdown(m, how);
}
