/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * app_threads: a multi-threaded libmustang app for app_threads.sh. Sockets
 * are created by one thread and used by others, concurrently:
 *   accept  --threads acceptor threads block in mst_accept() on ONE
 *           listener (made by the main thread); each accepts --accepts
 *           connections and echoes each until EOF (blocking calls)
 *   send    the main thread connects to --sink; --threads writer threads
 *           mst_send() 64-byte records on that ONE socket (writer id, seq,
 *           56 derived bytes: app_peer.py's record_bytes); the library's
 *           per-socket lock must keep every record whole; then the main
 *           thread half-closes and reads the sink's verdict ("OK n")
 * Both run at the same time. Prints "listening" once the listener is up,
 * per-thread counts at the end.
 *
 *   app_threads -p PORT --sink IP:PORT [--threads T] [--accepts K]
 *               [--records N] [--ctl PATH]
 *
 * Exit 0 when every thread did its share and the sink said OK.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mustang/mustang.h>

#define RECORD 64
#define MAX_THREADS 32

static int lfd, sfd;
static int n_threads = 4, accepts = 4, records = 2000;

struct worker {
	pthread_t tid;
	int id;
	int done;              /* connections served / records sent */
	uint64_t bytes;
	int failed;
};

static void *acceptor(void *arg)
{
	struct worker *w = arg;
	char buf[16384];

	while (w->done < accepts) {
		int fd = mst_accept(lfd, NULL, NULL);
		ssize_t n;

		if (fd < 0) {
			fprintf(stderr, "app_threads: acceptor %d: mst_accept: %s\n", w->id,
				strerror(errno));
			w->failed = 1;
			return NULL;
		}
		while ((n = mst_recv(fd, buf, sizeof(buf), 0)) > 0) {
			if (mst_send(fd, buf, (size_t)n, 0) != n) {
				n = -1;
				break;
			}
			w->bytes += (uint64_t)n;
		}
		if (n < 0) {
			fprintf(stderr, "app_threads: acceptor %d: %s\n", w->id, strerror(errno));
			w->failed = 1;
		}
		mst_close(fd);
		w->done++;
	}
	return NULL;
}

static void *writer(void *arg)
{
	struct worker *w = arg;
	uint8_t rec[RECORD];

	for (uint32_t seq = 0; seq < (uint32_t)records; seq++) {
		uint32_t id = (uint32_t)w->id;

		memcpy(rec, &id, 4); /* little endian, as the sink unpacks */
		memcpy(rec + 4, &seq, 4);
		for (int i = 8; i < RECORD; i++)
			rec[i] = (uint8_t)(id * 31 + seq * 7 + (uint32_t)i);
		if (mst_send(sfd, rec, sizeof(rec), 0) != (ssize_t)sizeof(rec)) {
			fprintf(stderr, "app_threads: writer %d: record %u: %s\n", w->id, seq,
				strerror(errno));
			w->failed = 1;
			return NULL;
		}
		w->done++;
	}
	return NULL;
}

static int parse_ipport(const char *s, struct sockaddr_in *sa)
{
	char ip[32];
	const char *colon = strchr(s, ':');

	if (!colon || (size_t)(colon - s) >= sizeof(ip))
		return -1;
	memcpy(ip, s, (size_t)(colon - s));
	ip[colon - s] = '\0';
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)atoi(colon + 1));
	return inet_pton(AF_INET, ip, &sa->sin_addr) == 1 && sa->sin_port ? 0 : -1;
}

static int start(struct worker *ws, void *(*fn)(void *))
{
	for (int i = 0; i < n_threads; i++) {
		ws[i].id = i;
		if (pthread_create(&ws[i].tid, NULL, fn, &ws[i]) != 0) {
			fprintf(stderr, "app_threads: pthread_create failed\n");
			return -1;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "sink", required_argument, NULL, 's' },
		{ "threads", required_argument, NULL, 't' },
		{ "accepts", required_argument, NULL, 'a' },
		{ "records", required_argument, NULL, 'n' },
		{ "ctl", required_argument, NULL, 'c' },
		{ NULL, 0, NULL, 0 },
	};
	struct sockaddr_in la = { .sin_family = AF_INET }, sink = { 0 };
	struct worker acc[MAX_THREADS] = { 0 }, wr[MAX_THREADS] = { 0 };
	const char *ctl = NULL;
	char verdict[128] = "";
	int o, rc = 0, port = 0;
	ssize_t n;
	size_t got = 0;

	while ((o = getopt_long(argc, argv, "p:s:t:a:n:c:", opts, NULL)) != -1) {
		switch (o) {
		case 'p': port = atoi(optarg); break;
		case 's':
			if (parse_ipport(optarg, &sink) < 0)
				port = -1;
			break;
		case 't': n_threads = atoi(optarg); break;
		case 'a': accepts = atoi(optarg); break;
		case 'n': records = atoi(optarg); break;
		case 'c': ctl = optarg; break;
		default: port = -1; break;
		}
	}
	if (port <= 0 || port > 65535 || !sink.sin_port || n_threads < 1 ||
	    n_threads > MAX_THREADS || accepts < 1 || records < 1) {
		fprintf(stderr, "Usage: app_threads -p PORT --sink IP:PORT [--threads T] "
				"[--accepts K] [--records N] [--ctl PATH]\n");
		return 2;
	}
	if (mst_init(ctl) < 0) {
		perror("app_threads: mst_init");
		return 1;
	}
	la.sin_port = htons((uint16_t)port);
	lfd = mst_socket(AF_INET, SOCK_STREAM, 0);
	if (lfd < 0 || mst_bind(lfd, (struct sockaddr *)&la, sizeof(la)) < 0 ||
	    mst_listen(lfd, 128) < 0) {
		perror("app_threads: listener");
		return 1;
	}
	if (start(acc, acceptor) < 0)
		return 1;
	printf("app_threads: listening on port %d, %d acceptor threads\n", port, n_threads);
	fflush(stdout);

	sfd = mst_socket(AF_INET, SOCK_STREAM, 0);
	if (sfd < 0 || mst_connect(sfd, (struct sockaddr *)&sink, sizeof(sink)) < 0) {
		perror("app_threads: connect to the sink");
		return 1;
	}
	if (start(wr, writer) < 0)
		return 1;
	for (int i = 0; i < n_threads; i++)
		pthread_join(wr[i].tid, NULL);
	if (mst_shutdown(sfd, SHUT_WR) < 0)
		perror("app_threads: mst_shutdown");
	while (got < sizeof(verdict) - 1 &&
	       (n = mst_recv(sfd, verdict + got, sizeof(verdict) - 1 - got, 0)) > 0)
		got += (size_t)n;
	mst_close(sfd);
	printf("app_threads: sink says: %s", got ? verdict : "(nothing)\n");
	if (strncmp(verdict, "OK ", 3) != 0)
		rc = 1;

	for (int i = 0; i < n_threads; i++) {
		pthread_join(acc[i].tid, NULL);
		printf("app_threads: acceptor %d served %d connections (%llu bytes), "
		       "writer %d sent %d records\n", i, acc[i].done,
		       (unsigned long long)acc[i].bytes, i, wr[i].done);
		if (acc[i].failed || wr[i].failed || acc[i].done != accepts ||
		    wr[i].done != records)
			rc = 1;
	}
	mst_close(lfd);
	mst_fini();
	printf("app_threads: %s\n", rc ? "FAILED" : "all threads did their share");
	return rc;
}
