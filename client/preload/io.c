/* SPDX-License-Identifier: BSD-3-Clause */
/* The wrappers define libc's own names: no large-file renaming (LP64). */
#undef _FILE_OFFSET_BITS
/*
 * libmustang-preload: the data calls. On a Mustang socket each goes to
 * mst_send/mst_recv (and their sendto and recvfrom forms); the vector forms
 * (readv/writev/sendmsg/recvmsg) gather into or scatter from a per-thread
 * bounce buffer so that one call is one FIFO operation (one doorbell, one
 * datagram). sendfile() reads the file and sends. The glibc _FORTIFY_SOURCE
 * entry points (__read_chk...) check their bound and come here too.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <unistd.h>

#include <mustang/mustang.h>
#include <mustang/shm_abi.h>

#include "preload.h"

#define RET_ERR(e) do { errno = (e); return -1; } while (0)
#define CHUNK (64u * 1024u)

extern void __chk_fail(void) __attribute__((noreturn));
ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen);
ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags);
ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags,
		       struct sockaddr *from, socklen_t *fromlen);
ssize_t sendfile64(int out, int in, off_t *off, size_t count);

static __thread char *bounce; /* CHUNK bytes, per thread, freed never */

static char *bounce_buf(void)
{
	if (!bounce)
		bounce = malloc(CHUNK > MST_SHM_DGRAM_MAX ? CHUNK : MST_SHM_DGRAM_MAX);
	return bounce;
}

/* The Mustang socket behind fd; -2 after failing a fork child's inherited
 * socket (errno EBADF), -1 for a kernel descriptor. */
static inline int route(int fd)
{
	bool dead;
	int m;

	PL_ENSURE();
	m = pl_mst(fd, &dead);
	if (__builtin_expect(dead, 0)) {
		pl_dead_err();
		return -2;
	}
	return m;
}

/* Linux answers EFAULT when it copies; the FIFO copy would fault the app,
 * so a NULL buffer is refused up front (before any wait). */
static inline int buf_route(int fd, const void *buf, size_t n)
{
	int m = route(fd);

	if (m >= 0 && !buf && n) {
		errno = EFAULT;
		return -2;
	}
	return m;
}

PL_API ssize_t read(int fd, void *buf, size_t n)
{
	int m = buf_route(fd, buf, n);

	return m >= 0 ? mst_read(m, buf, n) : m == -1 ? real.read(fd, buf, n) : -1;
}

PL_API ssize_t write(int fd, const void *buf, size_t n)
{
	int m = buf_route(fd, buf, n);

	return m >= 0 ? mst_write(m, buf, n) : m == -1 ? real.write(fd, buf, n) : -1;
}

PL_API ssize_t send(int fd, const void *buf, size_t n, int flags)
{
	int m = buf_route(fd, buf, n);

	return m >= 0 ? mst_send(m, buf, n, flags) : m == -1 ? real.send(fd, buf, n, flags) : -1;
}

PL_API ssize_t recv(int fd, void *buf, size_t n, int flags)
{
	int m = buf_route(fd, buf, n);

	return m >= 0 ? mst_recv(m, buf, n, flags) : m == -1 ? real.recv(fd, buf, n, flags) : -1;
}

PL_API ssize_t sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *to,
		      socklen_t tolen)
{
	int m;

	PL_ENSURE();
	/* An unbound UDP socket's first sendto decides where it lives. */
	if (to && pl_kind(fd) == PL_PENDING && pl_promote(fd, to, tolen) < 0)
		return -1;
	m = buf_route(fd, buf, n);
	if (m == -1)
		return real.sendto(fd, buf, n, flags, to, tolen);
	return m >= 0 ? mst_sendto(m, buf, n, flags, to, tolen) : -1;
}

PL_API ssize_t recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *from,
			socklen_t *fromlen)
{
	int m = buf_route(fd, buf, n);

	if (m == -1)
		return real.recvfrom(fd, buf, n, flags, from, fromlen);
	return m >= 0 ? mst_recvfrom(m, buf, n, flags, from, fromlen) : -1;
}

PL_API ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{
	if (n > buflen)
		__chk_fail();
	return read(fd, buf, n);
}

PL_API ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags)
{
	if (n > buflen)
		__chk_fail();
	return recv(fd, buf, n, flags);
}

PL_API ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags,
			      struct sockaddr *from, socklen_t *fromlen)
{
	if (n > buflen)
		__chk_fail();
	return recvfrom(fd, buf, n, flags, from, fromlen);
}

/* ---- vectors ------------------------------------------------------------------ */

/* Linux's checks on an iovec array: total bytes or -1 with errno. */
static ssize_t iov_total(const struct iovec *iov, int cnt)
{
	size_t total = 0;

	if (cnt < 0 || cnt > IOV_MAX)
		RET_ERR(EINVAL);
	if (cnt > 0 && !iov)
		RET_ERR(EFAULT);
	for (int i = 0; i < cnt; i++) {
		if (iov[i].iov_len > (size_t)SSIZE_MAX - total)
			RET_ERR(EINVAL);
		if (iov[i].iov_len && !iov[i].iov_base)
			RET_ERR(EFAULT);
		total += iov[i].iov_len;
	}
	return (ssize_t)total;
}

/* Copy up to cap bytes of the iovec, starting skip bytes in, to dst. */
static size_t gather(char *dst, size_t cap, const struct iovec *iov, int cnt, size_t skip)
{
	size_t n = 0;

	for (int i = 0; i < cnt && n < cap; i++) {
		size_t l = iov[i].iov_len, c;

		if (skip >= l) {
			skip -= l;
			continue;
		}
		c = l - skip < cap - n ? l - skip : cap - n;
		memcpy(dst + n, (const char *)iov[i].iov_base + skip, c);
		n += c;
		skip = 0;
	}
	return n;
}

static void scatter(const struct iovec *iov, int cnt, const char *src, size_t len)
{
	for (int i = 0; i < cnt && len; i++) {
		size_t c = iov[i].iov_len < len ? iov[i].iov_len : len;

		memcpy(iov[i].iov_base, src, c);
		src += c;
		len -= c;
	}
}

/* One datagram, or a byte stream in CHUNK pieces (stopping at the first
 * short send: the caller sees a partial write, as from the kernel). */
static ssize_t send_vec(int fd, int m, const struct iovec *iov, int cnt, int flags,
			const struct sockaddr *to, socklen_t tolen)
{
	ssize_t total = iov_total(iov, cnt), done = 0, r;
	char *b;

	if (total < 0)
		return -1;
	if (cnt == 1 || total == 0)
		return mst_sendto(m, cnt ? iov[0].iov_base : NULL, (size_t)total, flags, to, tolen);
	if (!(b = bounce_buf()))
		RET_ERR(ENOMEM);
	if (pl_tab[fd].dgram) {
		if (total > (ssize_t)MST_SHM_DGRAM_MAX)
			RET_ERR(EMSGSIZE);
		gather(b, (size_t)total, iov, cnt, 0);
		return mst_sendto(m, b, (size_t)total, flags, to, tolen);
	}
	while (done < total) {
		size_t n = gather(b, CHUNK, iov, cnt, (size_t)done);

		r = mst_send(m, b, n, done ? flags | MSG_DONTWAIT : flags);
		if (r < 0)
			return done ? done : -1;
		done += r;
		if ((size_t)r < n)
			break;
	}
	return done;
}

/* Stream: fill the iovecs in order, waiting (if blocking) only for the
 * first bytes. Datagram: one datagram scattered, *mflags gets MSG_TRUNC. */
static ssize_t recv_vec(int fd, int m, const struct iovec *iov, int cnt, int flags,
			struct sockaddr *from, socklen_t *fromlen, int *mflags)
{
	ssize_t total = iov_total(iov, cnt), done = 0, r;
	char *b;

	if (total < 0)
		return -1;
	if (pl_tab[fd].dgram) {
		if (!(b = bounce_buf()))
			RET_ERR(ENOMEM);
		r = mst_recvfrom(m, b, MST_SHM_DGRAM_MAX, flags & ~MSG_TRUNC, from, fromlen);
		if (r < 0)
			return -1;
		scatter(iov, cnt, b, r < total ? (size_t)r : (size_t)total);
		if (r > total && mflags)
			*mflags |= MSG_TRUNC;
		return (flags & MSG_TRUNC) || r <= total ? r : total;
	}
	if (fromlen)
		*fromlen = 0;
	for (int i = 0; i < cnt; i++) {
		if (!iov[i].iov_len)
			continue;
		r = mst_recv(m, iov[i].iov_base, iov[i].iov_len, done ? flags | MSG_DONTWAIT : flags);
		if (r < 0)
			return done ? done : -1;
		done += r;
		if ((size_t)r < iov[i].iov_len)
			break;
	}
	if (cnt > 0 && total == 0)
		return mst_recv(m, NULL, 0, flags);
	return done;
}

PL_API ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
	int m = route(fd);

	if (m == -1)
		return real.writev(fd, iov, cnt);
	return m >= 0 ? send_vec(fd, m, iov, cnt, 0, NULL, 0) : -1;
}

PL_API ssize_t readv(int fd, const struct iovec *iov, int cnt)
{
	int m = route(fd);

	if (m == -1)
		return real.readv(fd, iov, cnt);
	return m >= 0 ? recv_vec(fd, m, iov, cnt, 0, NULL, NULL, NULL) : -1;
}

PL_API ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	int m;

	PL_ENSURE();
	if (msg && msg->msg_name && pl_kind(fd) == PL_PENDING &&
	    pl_promote(fd, msg->msg_name, msg->msg_namelen) < 0)
		return -1;
	m = route(fd);
	if (m == -1)
		return real.sendmsg(fd, msg, flags);
	if (m < 0)
		return -1;
	if (!msg)
		RET_ERR(EFAULT);
	if (msg->msg_controllen) {
		pl_warn_once("sendmsg() with control messages", EOPNOTSUPP);
		RET_ERR(EOPNOTSUPP);
	}
	return send_vec(fd, m, msg->msg_iov, (int)msg->msg_iovlen, flags, msg->msg_name,
			msg->msg_namelen);
}

PL_API ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	socklen_t *fromlen;
	ssize_t r;
	int m = route(fd);

	if (m == -1)
		return real.recvmsg(fd, msg, flags);
	if (m < 0)
		return -1;
	if (!msg)
		RET_ERR(EFAULT);
	msg->msg_flags = 0;
	fromlen = msg->msg_name ? &msg->msg_namelen : NULL;
	r = recv_vec(fd, m, msg->msg_iov, (int)msg->msg_iovlen, flags, msg->msg_name, fromlen,
		     &msg->msg_flags);
	if (r >= 0) {
		if (!msg->msg_name)
			msg->msg_namelen = 0;
		msg->msg_controllen = 0; /* no ancillary data from Mustang */
	}
	return r;
}

/* ---- sendfile ------------------------------------------------------------------ */

/* One chunk per call: a partial count is a valid sendfile() answer. */
static ssize_t sendfile_mst(int m, int in, off_t *off, size_t count)
{
	size_t n = count < CHUNK ? count : CHUNK;
	ssize_t got, sent;
	char *b = bounce_buf();

	if (!b)
		RET_ERR(ENOMEM);
	if (n == 0)
		return 0;
	got = off ? pread(in, b, n, *off) : real.read(in, b, n);
	if (got <= 0)
		return got;
	sent = mst_send(m, b, (size_t)got, 0);
	if (sent < got) {
		int e = errno;

		/* Unsent bytes go back to the file position. */
		if (!off)
			lseek(in, -(got - (sent > 0 ? sent : 0)), SEEK_CUR);
		errno = e;
	}
	if (sent > 0 && off)
		*off += sent;
	return sent;
}

PL_API ssize_t sendfile(int out, int in, off_t *off, size_t count)
{
	int m = route(out);

	if (m == -1)
		return real.sendfile(out, in, off, count);
	return m >= 0 ? sendfile_mst(m, in, off, count) : -1;
}

PL_API ssize_t sendfile64(int out, int in, off_t *off, size_t count)
{
	return sendfile(out, in, off, count);
}
