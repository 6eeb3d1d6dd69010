/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tcp_load: the small load generator scripts/bench-tcp.sh builds with gcc
 * (plain POSIX sockets + epoll, so the same binary measures the Linux
 * kernel and Mustang from the same client).
 *
 *   tcp_load server PORT echo|discard    kernel-side service (the baseline)
 *   tcp_load bulk HOST PORT SECONDS      one connection, 64 KiB writes for
 *                                        SECONDS, half-close, wait for the
 *                                        server's EOF; prints goodput
 *   tcp_load rr HOST PORT SECONDS CONNS  CONNS connections, each ping-pongs
 *                                        64-byte messages; prints the rate
 *
 * Output: one line "key=value ..." for the script to parse.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MSG 64

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int dial(const char *host, int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	if (fd < 0 || inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("connect");
		close(fd);
		return -1;
	}
	return fd;
}

static int serve(int port, int echo)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int lfd = socket(AF_INET, SOCK_STREAM, 0), one = 1, ep = epoll_create1(0);
	struct epoll_event ev = { .events = EPOLLIN }, evs[64];
	static char buf[1 << 16];

	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 1024) < 0) {
		perror("bind/listen");
		return 1;
	}
	ev.data.fd = lfd;
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	for (;;) {
		int n = epoll_wait(ep, evs, 64, -1);

		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;

			if (fd == lfd) {
				int c = accept(lfd, NULL, NULL);

				if (c < 0)
					continue;
				setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
				ev.data.fd = c;
				epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
				continue;
			}
			ssize_t r = read(fd, buf, sizeof(buf));

			if (r <= 0) {
				close(fd);
				continue;
			}
			/* blocking write: fine for ping-pong and the bench's echo */
			for (ssize_t off = 0; echo && off < r;) {
				ssize_t w = write(fd, buf + off, (size_t)(r - off));

				if (w <= 0)
					break;
				off += w;
			}
		}
	}
}

static int bulk(const char *host, int port, double secs)
{
	static char buf[1 << 16];
	int fd = dial(host, port);
	double t0, t1;
	uint64_t sent = 0;

	if (fd < 0)
		return 1;
	memset(buf, 'm', sizeof(buf));
	t0 = now();
	while (now() - t0 < secs) {
		ssize_t w = write(fd, buf, sizeof(buf));

		if (w <= 0) {
			perror("write");
			return 1;
		}
		sent += (uint64_t)w;
	}
	shutdown(fd, SHUT_WR);
	while (read(fd, buf, sizeof(buf)) > 0) /* the server's EOF: all received */
		;
	t1 = now();
	printf("bytes=%llu seconds=%.3f gbps=%.3f\n", (unsigned long long)sent, t1 - t0,
	       (double)sent * 8 / (t1 - t0) / 1e9);
	return 0;
}

static int rr(const char *host, int port, double secs, int conns)
{
	int ep = epoll_create1(0);
	int *got = calloc((size_t)conns, sizeof(int));
	char msg[MSG], buf[MSG * 4];
	struct epoll_event ev = { .events = EPOLLIN }, evs[256];
	uint64_t done = 0;
	double t0;

	memset(msg, 'q', sizeof(msg));
	for (int i = 0; i < conns; i++) {
		int fd = dial(host, port);

		if (fd < 0)
			return 1;
		ev.data.u64 = ((uint64_t)i << 32) | (uint32_t)fd;
		epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
		if (write(fd, msg, MSG) != MSG)
			return 1;
	}
	t0 = now();
	while (now() - t0 < secs) {
		int n = epoll_wait(ep, evs, 256, 100);

		for (int k = 0; k < n; k++) {
			int fd = (int)(uint32_t)evs[k].data.u64, i = (int)(evs[k].data.u64 >> 32);
			ssize_t r = read(fd, buf, sizeof(buf));

			if (r <= 0) {
				fprintf(stderr, "rr: connection %d closed\n", i);
				return 1;
			}
			got[i] += (int)r;
			while (got[i] >= MSG) {
				got[i] -= MSG;
				done++;
				if (write(fd, msg, MSG) != MSG)
					return 1;
			}
		}
	}
	printf("transactions=%llu seconds=%.3f rate=%.0f conns=%d\n", (unsigned long long)done,
	       now() - t0, (double)done / (now() - t0), conns);
	return 0;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc == 4 && strcmp(argv[1], "server") == 0)
		return serve(atoi(argv[2]), strcmp(argv[3], "echo") == 0);
	if (argc == 5 && strcmp(argv[1], "bulk") == 0)
		return bulk(argv[2], atoi(argv[3]), atof(argv[4]));
	if (argc == 6 && strcmp(argv[1], "rr") == 0)
		return rr(argv[2], atoi(argv[3]), atof(argv[4]), atoi(argv[5]));
	fprintf(stderr, "usage: tcp_load server PORT echo|discard | bulk HOST PORT SECONDS |"
			" rr HOST PORT SECONDS CONNS\n");
	return 2;
}
