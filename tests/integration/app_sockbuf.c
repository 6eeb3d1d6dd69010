/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * app_sockbuf: SO_RCVBUF / SO_SNDBUF through libmustang (app_sockbuf.sh).
 *
 *   app_sockbuf CTL serve PORT GO_FILE   listener with SO_RCVBUF 8192 set
 *       before listen(); accepts one connection, prints its SO_RCVBUF, reads
 *       nothing until GO_FILE exists (at most 60 s), then reads 100000 bytes
 *   app_sockbuf CTL send IP PORT         connects, SO_SNDBUF 100 (clamped to
 *       4096), prints it, one non-blocking send of 100000 bytes (what it
 *       queued), then sends the rest blocking
 *
 * Prints "key value" lines; exits 0 when every call did what it should.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <mustang/mustang.h>

#define TOTAL 100000

static char buf[TOTAL];

static int serve(int port, const char *go)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = mst_socket(AF_INET, SOCK_STREAM, 0), c, v = 8192;
	socklen_t vl = sizeof(v);
	long tot = 0;
	ssize_t n;

	if (fd < 0 || mst_setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v)) < 0 ||
	    mst_bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || mst_listen(fd, 4) < 0) {
		perror("app_sockbuf: listener");
		return 1;
	}
	printf("listening\n");
	fflush(stdout);
	c = mst_accept(fd, NULL, NULL);
	if (c < 0 || mst_getsockopt(c, SOL_SOCKET, SO_RCVBUF, &v, &vl) < 0) {
		perror("app_sockbuf: accept");
		return 1;
	}
	printf("accepted_rcvbuf %d\n", v);
	fflush(stdout);
	for (int i = 0; i < 600 && access(go, F_OK) != 0; i++)
		usleep(100000);
	while (tot < TOTAL && (n = mst_recv(c, buf, sizeof(buf), 0)) > 0)
		tot += n;
	printf("read %ld\n", tot);
	mst_close(c);
	mst_close(fd);
	return tot == TOTAL ? 0 : 1;
}

static int send_all(const char *ip, int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = mst_socket(AF_INET, SOCK_STREAM, 0), v = 100;
	socklen_t vl = sizeof(v);
	long tot = 0;
	ssize_t n;

	if (fd < 0 || inet_pton(AF_INET, ip, &sa.sin_addr) != 1 ||
	    mst_connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    mst_setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v)) < 0 ||
	    mst_getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, &vl) < 0) {
		perror("app_sockbuf: connect/SO_SNDBUF");
		return 1;
	}
	printf("sndbuf %d\n", v);
	mst_fcntl(fd, F_SETFL, O_NONBLOCK);
	n = mst_send(fd, buf, TOTAL, 0);
	printf("nonblocking_send %zd\n", n);
	fflush(stdout);
	tot = n > 0 ? n : 0;
	mst_fcntl(fd, F_SETFL, 0);
	while (tot < TOTAL && (n = mst_send(fd, buf, (size_t)(TOTAL - tot), 0)) > 0)
		tot += n;
	printf("sent %ld\n", tot);
	mst_close(fd);
	return tot == TOTAL ? 0 : 1;
}

int main(int argc, char **argv)
{
	int rc;

	if (argc < 5 || mst_init(argv[1]) < 0) {
		fprintf(stderr, "usage: app_sockbuf CTL serve PORT GO_FILE | CTL send IP PORT\n");
		return 2;
	}
	if (strcmp(argv[2], "serve") == 0)
		rc = serve(atoi(argv[3]), argv[4]);
	else
		rc = send_all(argv[3], atoi(argv[4]));
	mst_fini();
	return rc;
}
