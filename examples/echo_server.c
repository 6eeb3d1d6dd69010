/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * echo_server: sends every byte it receives back, on any number of
 * connections at once, from one thread and one level-triggered mst_epoll
 * loop.
 *
 *   echo_server [-p PORT] [--bind IP] [--ctl PATH] [-v]
 *
 * Call order: main() -> listen_on() -> serve(): the listener readable ->
 * accept_all(); a connection readable or writable -> pump(), which moves
 * bytes recv -> buffer -> send. A connection reads only while its buffer is
 * empty, so a peer that does not read its echo sees its own sends stall
 * (TCP's window carries the back-pressure) instead of this process growing.
 * A connection ends when the peer has closed its side and every byte has
 * been echoed, or on an error (a reset peer is not an error of ours).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mustang/mustang.h>

#include "ex_util.h"

#define BUF_SIZE (64 * 1024)
#define MAX_EVENTS 256
#define PUMP_ROUNDS 8 /* buffers per connection per wake-up: fairness */

struct conn {
	int fd;
	uint32_t interest;     /* EPOLLIN or EPOLLOUT, as registered */
	size_t off, len;       /* bytes not yet echoed: buf[off, len) */
	uint64_t bytes;        /* echoed so far */
	char buf[BUF_SIZE];
};

static volatile sig_atomic_t stop;
static bool verbose;
static uint64_t n_conns, n_bytes;

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: echo_server [-p PORT] [--bind IP] [--ctl PATH] [-v]\n"
		"Echo TCP on Mustang: every byte received is sent back.\n\n"
		"  -p, --port PORT   port to listen on (default 7007)\n"
		"  -b, --bind IP     local address (default any)\n"
		"  -c, --ctl PATH    mustangd control socket (default $MUSTANG_CTL,\n"
		"                    else the daemon's default path)\n"
		"  -v, --verbose     log every connection\n"
		"  -h, --help        this help\n");
}

static int listen_on(const struct sockaddr_in *sa)
{
	int one = 1, fd;

	fd = mst_socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		perror("echo_server: mst_socket");
		return -1;
	}
	if (mst_setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    mst_bind(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0 ||
	    mst_listen(fd, 1024) < 0) {
		fprintf(stderr, "echo_server: cannot listen on port %u: %s\n",
			ntohs(sa->sin_port), strerror(errno));
		mst_close(fd);
		return -1;
	}
	return fd;
}

static void conn_close(int ep, struct conn *c, const char *why)
{
	if (verbose)
		fprintf(stderr, "echo_server: connection %d closed (%s) after %llu bytes\n",
			c->fd, why, (unsigned long long)c->bytes);
	mst_epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	mst_close(c->fd);
	free(c);
}

/* Wait for want (EPOLLIN or EPOLLOUT) next. false (and *why) on error. */
static bool wait_for(int ep, struct conn *c, uint32_t want, const char **why)
{
	struct epoll_event ev = { .events = want | EPOLLRDHUP, .data.ptr = c };

	if (c->interest == want)
		return true;
	if (mst_epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0) {
		*why = "mst_epoll_ctl failed";
		return false;
	}
	c->interest = want;
	return true;
}

/* Move bytes recv -> send until the connection would block. Returns false
 * when the connection is finished (closed by the caller). */
static bool pump(int ep, struct conn *c, const char **why)
{
	for (int round = 0; round < PUMP_ROUNDS; round++) {
		ssize_t n;

		if (c->off == c->len) {
			n = mst_recv(c->fd, c->buf, sizeof(c->buf), 0);
			if (n == 0) {
				*why = "peer closed";
				return false;
			}
			if (n < 0) {
				if (errno == EAGAIN)
					return wait_for(ep, c, EPOLLIN, why);
				*why = strerror(errno);
				return false;
			}
			c->off = 0;
			c->len = (size_t)n;
		}
		n = mst_send(c->fd, c->buf + c->off, c->len - c->off, 0);
		if (n < 0) {
			if (errno == EAGAIN)
				return wait_for(ep, c, EPOLLOUT, why);
			*why = strerror(errno);
			return false;
		}
		c->off += (size_t)n;
		c->bytes += (uint64_t)n;
		n_bytes += (uint64_t)n;
	}
	/* Out of rounds: level-triggered epoll brings us back. */
	return wait_for(ep, c, c->off == c->len ? EPOLLIN : EPOLLOUT, why);
}

static void accept_all(int ep, int lfd)
{
	for (;;) {
		struct sockaddr_in peer;
		socklen_t plen = sizeof(peer);
		struct epoll_event ev;
		struct conn *c;
		int fd;

		fd = mst_accept4(lfd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				perror("echo_server: mst_accept4");
			return;
		}
		c = malloc(sizeof(*c));
		if (!c) {
			fprintf(stderr, "echo_server: out of memory, dropping a connection\n");
			mst_close(fd);
			continue;
		}
		c->fd = fd;
		c->interest = EPOLLIN;
		c->off = c->len = 0;
		c->bytes = 0;
		ev.events = EPOLLIN | EPOLLRDHUP;
		ev.data.ptr = c;
		if (mst_epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
			perror("echo_server: mst_epoll_ctl");
			mst_close(fd);
			free(c);
			continue;
		}
		n_conns++;
		if (verbose) {
			char ip[INET_ADDRSTRLEN];

			inet_ntop(AF_INET, &peer.sin_addr, ip, sizeof(ip));
			fprintf(stderr, "echo_server: connection %d from %s:%u\n", fd, ip,
				ntohs(peer.sin_port));
		}
	}
}

static int serve(int lfd)
{
	static struct epoll_event evs[MAX_EVENTS];
	struct epoll_event lev = { .events = EPOLLIN, .data.ptr = NULL };
	int ep;

	ep = mst_epoll_create1(0);
	if (ep < 0 || mst_epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) < 0) {
		perror("echo_server: mst_epoll");
		return -1;
	}
	while (!stop) {
		int n = mst_epoll_wait(ep, evs, MAX_EVENTS, 1000);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("echo_server: mst_epoll_wait");
			mst_close(ep);
			return -1;
		}
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			const char *why = "";

			if (!c)
				accept_all(ep, lfd);
			else if (!pump(ep, c, &why))
				conn_close(ep, c, why);
		}
	}
	mst_close(ep);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "bind", required_argument, NULL, 'b' },
		{ "ctl", required_argument, NULL, 'c' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(7007) };
	const char *ctl = NULL;
	uint16_t port;
	int o, lfd, rc;

	while ((o = getopt_long(argc, argv, "p:b:c:vh", opts, NULL)) != -1) {
		switch (o) {
		case 'p':
			if (ex_parse_port(optarg, &port) < 0) {
				fprintf(stderr, "echo_server: bad port \"%s\" (1-65535)\n", optarg);
				return 2;
			}
			sa.sin_port = htons(port);
			break;
		case 'b':
			if (inet_pton(AF_INET, optarg, &sa.sin_addr) != 1) {
				fprintf(stderr, "echo_server: bad IPv4 address \"%s\"\n", optarg);
				return 2;
			}
			break;
		case 'c': ctl = optarg; break;
		case 'v': verbose = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "echo_server: unexpected argument \"%s\"\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	ex_stop_on_signals(&stop);
	if (ex_attach("echo_server", ctl) < 0)
		return 1;
	lfd = listen_on(&sa);
	if (lfd < 0) {
		mst_fini();
		return 1;
	}
	printf("echo_server: listening on port %u\n", ntohs(sa.sin_port));
	fflush(stdout);
	rc = serve(lfd);
	printf("echo_server: %llu connections, %llu bytes echoed\n",
	       (unsigned long long)n_conns, (unsigned long long)n_bytes);
	mst_close(lfd);
	mst_fini();
	return rc < 0 ? 1 : 0;
}
