/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * preload_edge: a plain libc program (no libmustang) run under
 * LD_PRELOAD=libmustang-preload.so by preload_edge.sh against a Linux echo
 * server. It checks the preload's edges: descriptor numbers, dup, mixed
 * poll/select/epoll, O_NONBLOCK/FIONREAD, EINTR, the fork rule, exec and
 * close-on-exec, garbage arguments (errno, never a crash), and UDP
 * (sendto/recvfrom, FIONREAD, sendmsg, recvmsg with MSG_TRUNC) against a
 * socat echo on PORT+1.
 *
 *   preload_edge IP PORT          prints "ok"/"FAIL" lines, exits 0 or 1
 *   preload_edge --closed FD      (after exec) exits 0 if FD is not open
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

static int fails;
/* Hidden from the compiler, which would refuse the garbage at build time. */
static void *volatile null_p;
static volatile int minus_one = -1;
static struct sockaddr_in peer;

#define CHECK(desc, cond) do { \
	if (cond) printf("ok   %s\n", desc); \
	else { printf("FAIL %s (errno %d %s)\n", desc, errno, strerror(errno)); fails++; } \
} while (0)
/* A call that must fail with errno e. */
#define FAILS_WITH(desc, call, e) do { errno = 0; long r_ = (long)(call); \
	CHECK(desc, r_ == -1 && errno == (e)); } while (0)

static int conn(void)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);

	if (s < 0 || connect(s, (struct sockaddr *)&peer, sizeof(peer)) < 0)
		return -1;
	return s;
}

static int echo(int s, const char *msg)
{
	char buf[256];
	size_t n = strlen(msg), got = 0;

	if (write(s, msg, n) != (ssize_t)n)
		return -1;
	while (got < n) {
		ssize_t r = read(s, buf + got, sizeof(buf) - got);

		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return got == n && !memcmp(buf, msg, n) ? 0 : -1;
}

static void on_alarm(int sig) { (void)sig; }

static void numbers_and_dup(int s)
{
	int nul = open("/dev/null", O_RDONLY), d;

	CHECK("a Mustang socket has a small real number", s >= 0 && s < 1024);
	CHECK("the kernel never hands out that number", nul >= 0 && nul != s);
	CHECK("F_GETFD works on it", fcntl(s, F_GETFD) >= 0);
	CHECK("echo over write/read", echo(s, "hello") == 0);
	d = dup(s);
	CHECK("dup gives another number", d >= 0 && d != s && d != nul);
	CHECK("echo over the dup", echo(d, "dup") == 0);
	d = dup2(d, nul); /* over a kernel fd */
	CHECK("dup2 onto a kernel fd's number", d == nul && echo(nul, "dup2") == 0);
	close(nul);
	CHECK("after closing the dup the original still works", echo(s, "orig") == 0);
}

static void vectors(int s)
{
	char a[3], b[4], out[8] = "abcdefg";
	struct iovec w[2] = { { out, 3 }, { out + 3, 4 } }, r[2] = { { a, 3 }, { b, 4 } };
	struct msghdr mh = { .msg_iov = w, .msg_iovlen = 2 };
	ssize_t got = 0, n;

	CHECK("writev 7 bytes", writev(s, w, 2) == 7);
	while (got < 7 && (n = readv(s, r, 2)) > 0) /* TCP may split */
		got += n, r[0].iov_len = got >= 3 ? 0 : 3 - (size_t)got;
	CHECK("readv reads them back in order", got == 7 && !memcmp(a, "abc", 3) && !memcmp(b, "defg", 4));
	CHECK("sendmsg 7 bytes", sendmsg(s, &mh, 0) == 7);
	char back[7];
	got = 0;
	while (got < 7 && (n = recv(s, back + got, 7 - (size_t)got, 0)) > 0)
		got += n;
	CHECK("recv reads them back", got == 7 && !memcmp(back, "abcdefg", 7));
}

static void waits(int s)
{
	int p[2], ep = epoll_create1(EPOLL_CLOEXEC), n, seen = 0, avail = -1;
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 0x5151 }, out[4];
	struct pollfd pf[2];
	fd_set rs;
	struct timeval tv = { 2, 0 };
	char c[16];

	if (pipe(p) < 0)
		return;
	CHECK("epoll_ctl ADD a Mustang socket", epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev) == 0);
	ev.data.u64 = 0x7070;
	CHECK("epoll_ctl ADD a pipe to the same epoll", epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev) == 0);
	CHECK("epoll_wait times out on nothing", epoll_wait(ep, out, 4, 50) == 0);
	write(p[1], "x", 1);
	n = epoll_wait(ep, out, 4, 1000);
	CHECK("epoll_wait: the pipe's event with its data", n == 1 && out[0].data.u64 == 0x7070);
	read(p[0], c, 1);
	write(s, "y", 1);
	n = epoll_wait(ep, out, 4, 2000);
	for (int i = 0; i < n; i++)
		seen |= out[i].data.u64 == 0x5151;
	CHECK("epoll_wait: the socket's event with its data", n == 1 && seen);
	usleep(100000);
	CHECK("FIONREAD says 1 byte", ioctl(s, FIONREAD, &avail) == 0 && avail == 1);
	pf[0] = (struct pollfd){ .fd = p[0], .events = POLLIN };
	pf[1] = (struct pollfd){ .fd = s, .events = POLLIN };
	CHECK("poll over pipe + socket: only the socket", poll(pf, 2, 1000) == 1 &&
	      pf[1].revents == POLLIN && pf[0].revents == 0);
	FD_ZERO(&rs);
	FD_SET(p[0], &rs);
	FD_SET(s, &rs);
	CHECK("select over pipe + socket: only the socket",
	      select((s > p[0] ? s : p[0]) + 1, &rs, NULL, NULL, &tv) == 1 && FD_ISSET(s, &rs));
	read(s, c, 1);
	CHECK("epoll_ctl DEL", epoll_ctl(ep, EPOLL_CTL_DEL, s, NULL) == 0);
	FAILS_WITH("epoll_ctl DEL again: ENOENT", epoll_ctl(ep, EPOLL_CTL_DEL, s, NULL), ENOENT);
	FAILS_WITH("epoll_wait max 0: EINVAL", epoll_wait(ep, out, 0, 0), EINVAL);
	close(ep);
	close(p[0]);
	close(p[1]);
}

static void nonblock_and_eintr(int s)
{
	struct sigaction sa = { .sa_handler = on_alarm }; /* no SA_RESTART */
	char c;
	int fl = fcntl(s, F_GETFL);

	CHECK("F_SETFL O_NONBLOCK", fcntl(s, F_SETFL, fl | O_NONBLOCK) == 0 &&
	      (fcntl(s, F_GETFL) & O_NONBLOCK));
	FAILS_WITH("non-blocking read of nothing: EAGAIN", read(s, &c, 1), EAGAIN);
	CHECK("back to blocking with FIONBIO 0", ioctl(s, FIONBIO, &(int){ 0 }) == 0 &&
	      !(fcntl(s, F_GETFL) & O_NONBLOCK));
	sigaction(SIGALRM, &sa, NULL);
	alarm(1);
	FAILS_WITH("a blocking read interrupted by a signal: EINTR", read(s, &c, 1), EINTR);
}

static void fork_rule(int s)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = s }, out[2];
	int ep = epoll_create1(0), st = -1;
	pid_t pid;

	epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev); /* the child inherits a shadowed epoll */
	pid = fork();
	if (pid == 0) {
		char c;
		int t, bad = 0;

		errno = 0;
		bad |= epoll_wait(ep, out, 2, 10) != 0; /* its Mustang member is gone */
		bad |= close(ep) != 0;
		bad |= !(read(s, &c, 1) == -1 && errno == EBADF);
		bad |= !(write(s, "z", 1) == -1 && errno == EBADF);
		t = conn(); /* the child attaches as an app of its own */
		bad |= t < 0 || echo(t, "child") != 0;
		bad |= close(s) != 0;
		_exit(bad);
	}
	waitpid(pid, &st, 0);
	CHECK("fork child: parent's socket EBADF, inherited epoll quiet, its own socket works",
	      WIFEXITED(st) && WEXITSTATUS(st) == 0);
	close(ep);
	CHECK("the parent's socket still works after the fork", echo(s, "parent") == 0);
}

static void exec_rule(const char *self, int s)
{
	pid_t pid = fork();
	char fdstr[16];
	int st = -1;

	snprintf(fdstr, sizeof(fdstr), "%d", s);
	if (pid == 0) {
		execl(self, self, "--closed", fdstr, (char *)NULL);
		_exit(2);
	}
	waitpid(pid, &st, 0);
	CHECK("exec: a Mustang socket (no FD_CLOEXEC asked) is closed in the new image",
	      WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK("FD_CLOEXEC set is reported back", fcntl(s, F_SETFD, FD_CLOEXEC) == 0 &&
	      fcntl(s, F_GETFD) == FD_CLOEXEC);
}

static void garbage(int s)
{
	struct sockaddr_in a;
	socklen_t l = sizeof(a);
	struct epoll_event ev = { 0 };
	int ep = epoll_create1(0), v = 1, big = 1 << 30;

	FAILS_WITH("read(-1): EBADF", read(-1, &v, 1), EBADF);
	FAILS_WITH("read(NULL buffer): EFAULT", read(s, null_p, 10), EFAULT);
	FAILS_WITH("send(NULL buffer): EFAULT", send(s, null_p, 10, 0), EFAULT);
	FAILS_WITH("writev(iovcnt -1): EINVAL", writev(s, null_p, minus_one), EINVAL);
	FAILS_WITH("writev(NULL iov): EFAULT", writev(s, null_p, 2), EFAULT);
	FAILS_WITH("sendmsg(NULL msg): EFAULT", sendmsg(s, null_p, 0), EFAULT);
	FAILS_WITH("setsockopt(len 0): EINVAL", setsockopt(s, SOL_SOCKET, SO_KEEPALIVE, &v, 0), EINVAL);
	FAILS_WITH("setsockopt(unknown level): ENOPROTOOPT", setsockopt(s, 9999, 1, &v, sizeof(v)),
		   ENOPROTOOPT);
	FAILS_WITH("getsockname(NULL): EFAULT", getsockname(s, NULL, &l), EFAULT);
	FAILS_WITH("bind(len 3): EINVAL", bind(s, (struct sockaddr *)&a, 3), EINVAL);
	FAILS_WITH("accept on a connected socket: EINVAL", accept(s, NULL, NULL), EINVAL);
	FAILS_WITH("fcntl(F_SETOWN): EINVAL, one warning", fcntl(s, F_SETOWN, getpid()), EINVAL);
	FAILS_WITH("ioctl(SIOCATMARK): ENOTTY, one warning", ioctl(s, SIOCATMARK, &v), ENOTTY);
	FAILS_WITH("epoll_ctl(bad op): EINVAL", epoll_ctl(ep, 77, s, &ev), EINVAL);
	FAILS_WITH("epoll_ctl(ADD, NULL event): EFAULT", epoll_ctl(ep, EPOLL_CTL_ADD, s, NULL), EFAULT);
	FAILS_WITH("epoll_ctl on a non-epoll fd: EINVAL", epoll_ctl(s, EPOLL_CTL_ADD, s, &ev), EINVAL);
	FAILS_WITH("dup3(fd, fd): EINVAL", dup3(s, s, 0), EINVAL);
	FAILS_WITH("recv of 1 GiB non-blocking: EAGAIN (no crash)",
		   recv(s, malloc(1), (size_t)big, MSG_DONTWAIT), EAGAIN);
	CHECK("after all that the socket still echoes", echo(s, "still") == 0);
	close(ep);
}

/* UDP against a Linux echo (socat) on port+1: sendto/recvfrom, FIONREAD,
 * sendmsg of 2 iovecs = one datagram, recvmsg truncation. */
static void udp(void)
{
	struct sockaddr_in up = peer, from;
	socklen_t fl = sizeof(from);
	char buf[64], small[4], out[] = "datagram-one";
	struct iovec w[2] = { { out, 8 }, { out + 8, 4 } }, r = { small, sizeof(small) };
	struct msghdr mh = { .msg_iov = w, .msg_iovlen = 2 };
	struct pollfd pf;
	int u = socket(AF_INET, SOCK_DGRAM, 0), avail = -1;
	ssize_t n;

	up.sin_port = htons((uint16_t)(ntohs(peer.sin_port) + 1));
	CHECK("UDP socket has a small number", u >= 0 && u < 1024);
	CHECK("UDP sendto the Linux echo", sendto(u, "ping", 4, 0, (struct sockaddr *)&up, sizeof(up)) == 4);
	pf = (struct pollfd){ .fd = u, .events = POLLIN };
	CHECK("poll: the echo arrives", poll(&pf, 1, 3000) == 1);
	CHECK("FIONREAD on UDP: the datagram's size", ioctl(u, FIONREAD, &avail) == 0 && avail == 4);
	n = recvfrom(u, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
	CHECK("UDP recvfrom: same bytes, from the peer", n == 4 && !memcmp(buf, "ping", 4) &&
	      from.sin_addr.s_addr == up.sin_addr.s_addr && from.sin_port == up.sin_port);
	CHECK("UDP connect + sendmsg of 2 iovecs",
	      connect(u, (struct sockaddr *)&up, sizeof(up)) == 0 && sendmsg(u, &mh, 0) == 12);
	mh = (struct msghdr){ .msg_iov = &r, .msg_iovlen = 1 };
	poll(&pf, 1, 3000);
	n = recvmsg(u, &mh, 0);
	CHECK("one 12-byte datagram, truncated to 4 with MSG_TRUNC",
	      n == 4 && !memcmp(small, "data", 4) && (mh.msg_flags & MSG_TRUNC));
	CHECK("UDP close", close(u) == 0);
}

int main(int argc, char **argv)
{
	int s;

	if (argc == 3 && !strcmp(argv[1], "--closed"))
		return fcntl(atoi(argv[2]), F_GETFD) == -1 && errno == EBADF ? 0 : 1;
	if (argc != 3)
		return 2;
	setvbuf(stdout, NULL, _IOLBF, 0);
	peer.sin_family = AF_INET;
	peer.sin_port = htons((uint16_t)atoi(argv[2]));
	inet_pton(AF_INET, argv[1], &peer.sin_addr);
	s = conn();
	CHECK("socket + connect to the Linux echo server", s >= 0);
	if (s < 0)
		return 1;
	numbers_and_dup(s);
	vectors(s);
	waits(s);
	nonblock_and_eintr(s);
	fork_rule(s);
	exec_rule(argv[0], s);
	garbage(s);
	udp();
	CHECK("close", close(s) == 0);
	FAILS_WITH("close again: EBADF", close(s), EBADF);
	return fails ? 1 : 0;
}
