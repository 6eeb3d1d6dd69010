/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * app_probe: a small libmustang app whose modes drive paths the examples
 * never reach, for app_rcvbuf.sh and app_daemon_kill.sh.
 *
 *   app_probe udpfill PORT SIZE GOFILE
 *       binds a UDP socket on PORT, prints "listening capacity=N" (how many
 *       SIZE-byte datagram records its receive FIFO holds: SO_RCVBUF /
 *       record size, <mustang/shm_abi.h>) and does not read until GOFILE
 *       exists; then drains the socket (MSG_DONTWAIT until EAGAIN) and
 *       checks each datagram: SIZE bytes, a 32-bit big-endian sequence
 *       number then bytes (seq * 7 + i) & 0xff. Prints
 *       "received N exact E first F last L in_order O".
 *   app_probe udpconn PORT IP:PEERPORT GOFILE
 *       binds a UDP socket on PORT and connects it to IP:PEERPORT, prints
 *       "listening", waits for GOFILE, drains the socket and prints
 *       "received N from_peer P": a connected socket hears only its peer.
 *   app_probe orphan IP:PORT
 *       connects a TCP socket to IP:PORT, opens a UDP socket, prints
 *       "attached", then blocks in mst_recv() on the TCP socket. When the
 *       daemon dies (the test SIGKILLs it) the blocked call and every
 *       later call must fail with ENETDOWN: prints one line per call,
 *       "recv: ENETDOWN" etc.
 *
 * Exit 0 when the mode's expectations hold, 1 otherwise, 2 usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mustang/mustang.h>
#include <mustang/shm_abi.h>

static uint8_t buf[65536];

static int udpfill(uint16_t port, uint32_t size, const char *gofile)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	uint32_t rec = ((uint32_t)sizeof(struct mst_shm_dgram) + size + MST_SHM_DGRAM_ALIGN - 1) &
		       ~(MST_SHM_DGRAM_ALIGN - 1);
	uint32_t n = 0, exact = 0, in_order = 0, first = UINT32_MAX, last = 0;
	socklen_t ol = sizeof(int);
	int fd, rcvbuf = 0;

	fd = mst_socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0 || mst_bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    mst_getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, &ol) < 0) {
		perror("app_probe: socket/bind/getsockopt");
		return 1;
	}
	printf("listening capacity=%u rcvbuf=%d\n", (uint32_t)rcvbuf / rec, rcvbuf);
	fflush(stdout);
	while (access(gofile, F_OK) != 0)
		usleep(10000);
	for (;;) {
		ssize_t r = mst_recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT, NULL, NULL);
		uint32_t seq;
		bool ok;

		if (r < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			perror("app_probe: recvfrom");
			return 1;
		}
		ok = (uint32_t)r == size && size >= 4;
		seq = ok ? (uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 |
				   (uint32_t)buf[2] << 8 | buf[3] : UINT32_MAX;
		for (uint32_t i = 4; ok && i < size; i++)
			ok = buf[i] == (uint8_t)(seq * 7 + i);
		if (ok) {
			exact++;
			in_order += seq == n;
			first = first < seq ? first : seq;
			last = seq;
		}
		n++;
	}
	printf("received %u exact %u first %u last %u in_order %u\n", n, exact,
	       first == UINT32_MAX ? 0 : first, last, in_order);
	mst_close(fd);
	return n == exact ? 0 : 1;
}

static int parse_ipport(const char *ipport, struct sockaddr_in *sa)
{
	char ip[32], *colon;

	snprintf(ip, sizeof(ip), "%s", ipport);
	colon = strchr(ip, ':');
	if (!colon)
		return -1;
	*colon = '\0';
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)atoi(colon + 1));
	return inet_pton(AF_INET, ip, &sa->sin_addr) == 1 ? 0 : -1;
}

static int udpconn(uint16_t port, const char *peer, const char *gofile)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) }, to, from;
	uint32_t n = 0, from_peer = 0;
	int fd;

	if (parse_ipport(peer, &to) < 0)
		return 2;
	fd = mst_socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0 || mst_bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    mst_connect(fd, (struct sockaddr *)&to, sizeof(to)) < 0) {
		perror("app_probe: socket/bind/connect");
		return 1;
	}
	printf("listening\n");
	fflush(stdout);
	while (access(gofile, F_OK) != 0)
		usleep(10000);
	for (;;) {
		socklen_t l = sizeof(from);
		ssize_t r = mst_recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from, &l);

		if (r < 0)
			break;
		n++;
		from_peer += from.sin_addr.s_addr == to.sin_addr.s_addr && from.sin_port == to.sin_port;
	}
	printf("received %u from_peer %u\n", n, from_peer);
	mst_close(fd);
	return 0;
}

/* One call after the daemon's death: must fail with ENETDOWN. */
static int expect_down(const char *what, long r)
{
	int ok = r < 0 && errno == ENETDOWN;

	printf("%s: %s\n", what, ok ? "ENETDOWN" : r < 0 ? strerror(errno) : "succeeded");
	fflush(stdout);
	return ok ? 0 : 1;
}

static int orphan(const char *ipport)
{
	struct sockaddr_in sa;
	int tfd, ufd, bad = 0;

	if (parse_ipport(ipport, &sa) < 0)
		return 2;
	tfd = mst_socket(AF_INET, SOCK_STREAM, 0);
	ufd = mst_socket(AF_INET, SOCK_DGRAM, 0);
	if (tfd < 0 || ufd < 0 || mst_connect(tfd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("app_probe: socket/connect");
		return 1;
	}
	printf("attached\n");
	fflush(stdout);
	/* Blocks until the daemon dies (the peer never sends). */
	bad |= expect_down("recv", (long)mst_recv(tfd, buf, sizeof(buf), 0));
	bad |= expect_down("send", (long)mst_send(tfd, "x", 1, 0));
	bad |= expect_down("sendto", (long)mst_sendto(ufd, "x", 1, 0, (struct sockaddr *)&sa,
						      sizeof(sa)));
	bad |= expect_down("socket", (long)mst_socket(AF_INET, SOCK_STREAM, 0));
	return bad;
}

int main(int argc, char **argv)
{
	int rc;

	if (argc < 3)
		goto usage;
	if (mst_init(NULL) < 0) {
		perror("app_probe: mst_init");
		return 1;
	}
	if (!strcmp(argv[1], "udpfill") && argc == 5)
		rc = udpfill((uint16_t)atoi(argv[2]), (uint32_t)atoi(argv[3]), argv[4]);
	else if (!strcmp(argv[1], "udpconn") && argc == 5)
		rc = udpconn((uint16_t)atoi(argv[2]), argv[3], argv[4]);
	else if (!strcmp(argv[1], "orphan") && argc == 3)
		rc = orphan(argv[2]);
	else
		goto usage;
	fflush(stdout);
	return rc;
usage:
	fprintf(stderr, "usage: app_probe udpfill PORT SIZE GOFILE | udpconn PORT IP:PORT GOFILE |\n"
			"                 orphan IP:PORT\n");
	return 2;
}
