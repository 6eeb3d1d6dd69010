/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * udp_echo: UDP echo on Mustang, server or client.
 *
 *   udp_echo [-p PORT] [--ctl PATH] [-v]               server
 *   udp_echo --client IP:PORT [--min N] [--max N] [--step N]
 *            [--connect] [--timeout MS] [--retries N] [--ctl PATH]   client
 *
 * Server: one blocking loop, mst_recvfrom -> mst_sendto back to the source,
 * until SIGINT/SIGTERM; prints "listening on port P" once bound and the
 * totals at exit.
 *
 * Client: one datagram of each size min, min+step, ... max (default
 * 1..1472, the largest that fits a 1500-byte MTU unfragmented), each
 * filled with bytes that depend on its size; waits up to --timeout ms for
 * the echo (mst_poll), retries a lost one --retries times (default 2; the
 * tests pass 0: a veth loses nothing, so a retry would hide a bug), and
 * checks the echo is
 * byte-exact and came from IP:PORT. --connect uses connect + send/recv
 * instead of sendto/recvfrom.
 *
 * Exit: 0 all good, 1 error or mismatch, 2 usage.
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

#define BUF_SIZE 65536

static volatile sig_atomic_t stop;
static uint8_t buf[BUF_SIZE], want[BUF_SIZE];

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: udp_echo [-p PORT] [--ctl PATH] [-v]\n"
		"       udp_echo --client IP:PORT [--min N] [--max N] [--step N]\n"
		"                [--connect] [--timeout MS] [--retries N] [--ctl PATH]\n"
		"UDP echo on Mustang: a server sending every datagram back to its\n"
		"source, or a client checking the echo of datagrams of many sizes.\n\n"
		"  -p, --port PORT     server: port to bind (default 7007)\n"
		"  -C, --client IP:PORT  client mode, against this echo server\n"
		"  -m, --min N         client: smallest datagram (default 1)\n"
		"  -M, --max N         client: largest datagram (default 1472)\n"
		"  -s, --step N        client: size increment (default 1)\n"
		"  -k, --connect       client: connect + send/recv\n"
		"  -t, --timeout MS    client: wait per echo (default 1000)\n"
		"  -r, --retries N     client: resend a lost datagram N times (default 2)\n"
		"  -c, --ctl PATH      mustangd control socket (default $MUSTANG_CTL,\n"
		"                      else the daemon's default path)\n"
		"  -v, --verbose       server: log every datagram\n"
		"  -h, --help          this help\n");
}

static int serve(uint16_t port, bool verbose)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	uint64_t n = 0, bytes = 0;
	socklen_t l = sizeof(sa);
	int fd = mst_socket(AF_INET, SOCK_DGRAM, 0);

	if (fd < 0 || mst_bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    mst_getsockname(fd, (struct sockaddr *)&sa, &l) < 0) {
		perror("udp_echo: socket/bind");
		return 1;
	}
	printf("udp_echo: listening on port %u\n", ntohs(sa.sin_port));
	fflush(stdout);
	while (!stop) {
		struct sockaddr_in from;
		ssize_t r;

		l = sizeof(from);
		r = mst_recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &l);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			perror("udp_echo: recvfrom");
			return 1;
		}
		if (verbose)
			printf("udp_echo: %zd bytes from %s:%u\n", r, inet_ntoa(from.sin_addr),
			       ntohs(from.sin_port));
		if (mst_sendto(fd, buf, (size_t)r, 0, (struct sockaddr *)&from, l) != r) {
			if (errno == EINTR)
				continue;
			perror("udp_echo: sendto");
			return 1;
		}
		n++;
		bytes += (uint64_t)r;
	}
	printf("udp_echo: %llu datagrams, %llu bytes echoed\n", (unsigned long long)n,
	       (unsigned long long)bytes);
	mst_close(fd);
	return 0;
}

static void pattern(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(n * 31 + i * 7 + (i >> 8));
}

/* One datagram of n bytes out, its echo back: 0 ok, -1 failed. */
static int one(int fd, const struct sockaddr_in *dst, bool conn, size_t n, int timeout_ms,
	       int retries)
{
	for (int attempt = 0; attempt <= retries && !stop; attempt++) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		struct sockaddr_in from;
		socklen_t l = sizeof(from);
		ssize_t r;

		r = conn ? mst_send(fd, want, n, 0) :
			   mst_sendto(fd, want, n, 0, (const struct sockaddr *)dst, sizeof(*dst));
		if (r != (ssize_t)n) {
			fprintf(stderr, "udp_echo: send %zu bytes: %s\n", n, strerror(errno));
			return -1;
		}
		r = mst_poll(&p, 1, timeout_ms);
		if (r < 0) {
			perror("udp_echo: poll");
			return -1;
		}
		if (r == 0) {
			fprintf(stderr, "udp_echo: %zu bytes: no echo within %d ms (attempt %d)\n", n,
				timeout_ms, attempt + 1);
			continue;
		}
		r = conn ? mst_recv(fd, buf, sizeof(buf), 0) :
			   mst_recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &l);
		if (r < 0) {
			fprintf(stderr, "udp_echo: recv: %s\n", strerror(errno));
			return -1;
		}
		if (!conn && (from.sin_addr.s_addr != dst->sin_addr.s_addr ||
			      from.sin_port != dst->sin_port)) {
			fprintf(stderr, "udp_echo: %zu bytes: echo from %s:%u\n", n,
				inet_ntoa(from.sin_addr), ntohs(from.sin_port));
			return -1;
		}
		if ((size_t)r != n || memcmp(buf, want, n)) {
			size_t d = 0;

			while (d < n && d < (size_t)r && buf[d] == want[d])
				d++;
			fprintf(stderr, "udp_echo: sent %zu bytes, got %zd back, first difference "
				"at %zu\n", n, r, d);
			return -1;
		}
		return 0;
	}
	return -1;
}

static int client(const struct sockaddr_in *dst, uint64_t min, uint64_t max, uint64_t step,
		  bool conn, int timeout_ms, int retries)
{
	struct sockaddr_in me;
	socklen_t l = sizeof(me);
	uint64_t ok = 0, bad = 0;
	int fd = mst_socket(AF_INET, SOCK_DGRAM, 0);

	if (fd < 0) {
		perror("udp_echo: socket");
		return 1;
	}
	if (conn && mst_connect(fd, (const struct sockaddr *)dst, sizeof(*dst)) < 0) {
		perror("udp_echo: connect");
		return 1;
	}
	for (uint64_t n = min; n <= max && !stop; n += step) {
		pattern(want, (size_t)n);
		if (one(fd, dst, conn, (size_t)n, timeout_ms, retries) == 0)
			ok++;
		else
			bad++;
	}
	if (mst_getsockname(fd, (struct sockaddr *)&me, &l) == 0)
		printf("udp_echo: from port %u: ", ntohs(me.sin_port));
	printf("%llu datagrams echoed exactly, %llu failed\n", (unsigned long long)ok,
	       (unsigned long long)bad);
	mst_close(fd);
	return bad || stop ? 1 : 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "client", required_argument, NULL, 'C' },
		{ "min", required_argument, NULL, 'm' },
		{ "max", required_argument, NULL, 'M' },
		{ "step", required_argument, NULL, 's' },
		{ "connect", no_argument, NULL, 'k' },
		{ "timeout", required_argument, NULL, 't' },
		{ "retries", required_argument, NULL, 'r' },
		{ "ctl", required_argument, NULL, 'c' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct sockaddr_in dst;
	uint64_t min = 1, max = 1472, step = 1, tmo = 1000, retries = 2;
	const char *ctl = NULL;
	uint16_t port = 7007;
	bool is_client = false, conn = false, verbose = false;
	int c, rc;

	while ((c = getopt_long(argc, argv, "p:C:m:M:s:kt:r:c:vh", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (ex_parse_port(optarg, &port) < 0)
				goto bad;
			break;
		case 'C':
			if (ex_parse_ipport(optarg, &dst) < 0)
				goto bad;
			is_client = true;
			break;
		case 'm':
			if (ex_parse_num(optarg, 0, 65507, &min) < 0)
				goto bad;
			break;
		case 'M':
			if (ex_parse_num(optarg, 0, 65507, &max) < 0)
				goto bad;
			break;
		case 's':
			if (ex_parse_num(optarg, 1, 65507, &step) < 0)
				goto bad;
			break;
		case 'k':
			conn = true;
			break;
		case 't':
			if (ex_parse_num(optarg, 1, 600000, &tmo) < 0)
				goto bad;
			break;
		case 'r':
			if (ex_parse_num(optarg, 0, 100, &retries) < 0)
				goto bad;
			break;
		case 'c':
			ctl = optarg;
			break;
		case 'v':
			verbose = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			goto bad;
		}
	}
	if (optind != argc || min > max)
		goto bad;
	if (ex_attach("udp_echo", ctl) < 0)
		return 1;
	ex_stop_on_signals(&stop);
	rc = is_client ? client(&dst, min, max, step, conn, (int)tmo, (int)retries) : serve(port, verbose);
	mst_fini();
	return rc;
bad:
	usage(stderr);
	return 2;
}
