/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * upgrade_app: a libmustang app whose threads sit in blocking calls, for
 * upgrade.sh: an engine restart must not disturb a thread asleep in
 * mst_accept() or mst_recv().
 *
 *   upgrade_app -p PORT [--ctl PATH]
 *
 * The main thread blocks in mst_accept() on PORT, for ever; each accepted
 * connection gets a thread that echoes it with blocking mst_recv() /
 * mst_send() until EOF. Prints "listening" once the listener is up,
 * "accepted N" per connection and "closed N BYTES" when one ends (stdout,
 * line-buffered). Exits 0 on SIGTERM, 1 when a call fails.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mustang/mustang.h>

static void *echo(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[16384];
	uint64_t total = 0;
	ssize_t n;

	while ((n = mst_recv(fd, buf, sizeof(buf), 0)) > 0) {
		for (ssize_t off = 0; off < n;) {
			ssize_t w = mst_send(fd, buf + off, (size_t)(n - off), 0);

			if (w < 0) {
				printf("send failed on fd %d: %s\n", fd, strerror(errno));
				exit(1);
			}
			off += w;
		}
		total += (uint64_t)n;
	}
	if (n < 0) {
		printf("recv failed on fd %d: %s\n", fd, strerror(errno));
		exit(1);
	}
	mst_close(fd);
	printf("closed %d %llu\n", fd, (unsigned long long)total);
	return NULL;
}

static void on_term(int sig)
{
	(void)sig;
	_exit(0);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "ctl", required_argument, NULL, 'c' },
		{ NULL, 0, NULL, 0 },
	};
	struct sockaddr_in sa = { .sin_family = AF_INET };
	const char *ctl = NULL;
	int port = 0, one = 1, lfd, c;
	unsigned n = 0;

	while ((c = getopt_long(argc, argv, "p:c:", opts, NULL)) != -1) {
		if (c == 'p')
			port = atoi(optarg);
		else if (c == 'c')
			ctl = optarg;
		else
			return 2;
	}
	if (port <= 0 || port > 65535) {
		fprintf(stderr, "usage: upgrade_app -p PORT [--ctl PATH]\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGTERM, on_term);
	if (mst_init(ctl) < 0) {
		printf("mst_init: %s\n", strerror(errno));
		return 1;
	}
	sa.sin_port = htons((uint16_t)port);
	lfd = mst_socket(AF_INET, SOCK_STREAM, 0);
	if (lfd < 0 || mst_setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    mst_bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || mst_listen(lfd, 64) < 0) {
		printf("listen on %d: %s\n", port, strerror(errno));
		return 1;
	}
	printf("listening on port %d\n", port);
	for (;;) {
		int fd = mst_accept(lfd, NULL, NULL);
		pthread_t t;

		if (fd < 0) {
			printf("accept failed: %s\n", strerror(errno));
			return 1;
		}
		printf("accepted %u\n", ++n);
		if (pthread_create(&t, NULL, echo, (void *)(intptr_t)fd) != 0) {
			printf("pthread_create failed\n");
			return 1;
		}
		pthread_detach(t);
	}
}
