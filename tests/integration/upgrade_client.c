/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * upgrade_client: a libmustang client app for the live-upgrade tests
 * (upgrade_memif.sh, upgrade_drain.sh).
 *
 *   upgrade_client stream IP:PORT CONNS RATE STATUS [--ctl PATH]
 *       CONNS connections to an echo server, one thread each, asleep in
 *       blocking mst_recv() between records: every 1/RATE s a 64-byte
 *       record (connection id, sequence number, bytes derived from both)
 *       goes out and must come back intact and in order. STATUS is
 *       rewritten every 100 ms as one JSON line: open, records, errors,
 *       max_gap_ms (longest wait for an echo). On SIGTERM each thread
 *       finishes its record and closes; prints the final JSON. Exit 0 when
 *       every connection stayed open and every byte matched.
 *   upgrade_client flood IP:PORT BYTES [--ctl PATH]
 *       one connection: BYTES of pattern (byte i = i * 7 mod 251) with
 *       blocking sends, close, exit 0 at once: whatever the peer has not
 *       read yet is left to the daemon (an exited app's closed connection
 *       "draining").
 *
 * Exit 1 on any failed call, 2 usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mustang/mustang.h>

#define REC 64
#define MAX_CONNS 64

/* The counters are written by the connection's thread and read by the
 * status writer (relaxed atomics: a status is a snapshot); error is
 * written once, before `failed` is set (release; the reader acquires). */
struct conn {
	pthread_t t;
	unsigned id;
	int fd;
	uint64_t records;          /* echoed and checked */
	uint64_t max_gap_ns;       /* longest send -> echo */
	bool open;
	bool failed;
	char error[128];           /* the error, once failed */
};

static void set_error(struct conn *c, const char *what, uint64_t seq, int err)
{
	snprintf(c->error, sizeof(c->error), "conn %u record %llu: %s: %s", c->id,
		 (unsigned long long)seq, what, err ? strerror(err) : "echoed bytes differ");
	__atomic_store_n(&c->open, false, __ATOMIC_RELAXED);
	__atomic_store_n(&c->failed, true, __ATOMIC_RELEASE);
}

static struct sockaddr_in dst;
static double rate;
static atomic_bool stop;
static struct conn conns[MAX_CONNS];
static unsigned n_conns;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void fill(uint8_t *r, unsigned id, uint64_t seq)
{
	memcpy(r, &id, sizeof(id));
	memcpy(r + 4, &seq, sizeof(seq));
	for (unsigned i = 12; i < REC; i++)
		r[i] = (uint8_t)(seq * 31 + id * 17 + i);
}

static int recv_all(int fd, uint8_t *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t k = mst_recv(fd, buf + got, n - got, 0);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return k < 0 ? -errno : -EPIPE;
		got += (size_t)k;
	}
	return 0;
}

static int send_all(int fd, const uint8_t *buf, size_t n)
{
	size_t off = 0;

	while (off < n) {
		ssize_t k = mst_send(fd, buf + off, n - off, 0);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		off += (size_t)k;
	}
	return 0;
}

static void *stream_one(void *arg)
{
	struct conn *c = arg;
	uint64_t period = (uint64_t)(1e9 / rate), next = now_ns();
	uint8_t out[REC], in[REC];
	int rc;

	c->fd = mst_socket(AF_INET, SOCK_STREAM, 0);
	if (c->fd < 0 || mst_connect(c->fd, (struct sockaddr *)&dst, sizeof(dst)) < 0) {
		set_error(c, "connect", 0, errno);
		return NULL;
	}
	__atomic_store_n(&c->open, true, __ATOMIC_RELAXED);
	for (uint64_t seq = 0; !atomic_load(&stop); seq++) {
		uint64_t t0 = now_ns();

		if (t0 < next) {
			struct timespec ts = { .tv_sec = 0, .tv_nsec = (long)(next - t0) };

			nanosleep(&ts, NULL);
		}
		next += period;
		fill(out, c->id, seq);
		t0 = now_ns();
		rc = send_all(c->fd, out, REC);
		if (!rc)
			rc = recv_all(c->fd, in, REC);
		if (rc || memcmp(in, out, REC)) {
			set_error(c, rc ? "send/recv" : "check", seq, -rc);
			return NULL;
		}
		t0 = now_ns() - t0;
		if (t0 > c->max_gap_ns)
			__atomic_store_n(&c->max_gap_ns, t0, __ATOMIC_RELAXED);
		__atomic_store_n(&c->records, c->records + 1, __ATOMIC_RELAXED);
	}
	mst_close(c->fd);
	return NULL;
}

static void status(FILE *f)
{
	uint64_t records = 0, gap = 0;
	unsigned open = 0, errors = 0;
	const char *first = "";

	for (unsigned i = 0; i < n_conns; i++) {
		const struct conn *c = &conns[i];
		uint64_t g = __atomic_load_n(&c->max_gap_ns, __ATOMIC_RELAXED);

		records += __atomic_load_n(&c->records, __ATOMIC_RELAXED);
		open += __atomic_load_n(&c->open, __ATOMIC_RELAXED);
		if (g > gap)
			gap = g;
		if (__atomic_load_n(&c->failed, __ATOMIC_ACQUIRE)) {
			if (!errors)
				first = c->error;
			errors++;
		}
	}
	fprintf(f, "{\"conns\":%u,\"open\":%u,\"records\":%llu,\"errors\":%u,\"max_gap_ms\":%.1f,"
		   "\"first_error\":\"%s\"}\n",
		n_conns, open, (unsigned long long)records, errors, (double)gap / 1e6, first);
}

static void write_status(const char *path)
{
	char tmp[4096];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f)
		return;
	status(f);
	fclose(f);
	rename(tmp, path);
}

static void on_term(int sig)
{
	(void)sig;
	atomic_store(&stop, true);
}

static int stream(const char *status_path)
{
	unsigned bad = 0;

	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	for (unsigned i = 0; i < n_conns; i++) {
		conns[i].id = i;
		if (pthread_create(&conns[i].t, NULL, stream_one, &conns[i])) {
			fprintf(stderr, "upgrade_client: pthread_create failed\n");
			return 1;
		}
	}
	while (!atomic_load(&stop)) {
		write_status(status_path);
		usleep(100000);
	}
	for (unsigned i = 0; i < n_conns; i++)
		pthread_join(conns[i].t, NULL);
	write_status(status_path);
	status(stdout);
	for (unsigned i = 0; i < n_conns; i++)
		bad += conns[i].failed;
	return bad ? 1 : 0;
}

static int flood(uint64_t bytes)
{
	static uint8_t buf[65536];
	int fd = mst_socket(AF_INET, SOCK_STREAM, 0), rc = 0;
	uint64_t off = 0;

	if (fd < 0 || mst_connect(fd, (struct sockaddr *)&dst, sizeof(dst)) < 0) {
		printf("connect: %s\n", strerror(errno));
		return 1;
	}
	while (!rc && off < bytes) {
		size_t n = bytes - off < sizeof(buf) ? (size_t)(bytes - off) : sizeof(buf);

		for (size_t i = 0; i < n; i++)
			buf[i] = (uint8_t)((off + i) * 7 % 251);
		rc = send_all(fd, buf, n);
		off += n;
	}
	if (rc) {
		printf("send: %s\n", strerror(-rc));
		return 1;
	}
	mst_close(fd);
	printf("sent %llu bytes, closed\n", (unsigned long long)bytes);
	return 0; /* exits now: the daemon finishes the connection */
}

static int parse_dst(const char *s)
{
	char ip[64];
	const char *colon = strrchr(s, ':');
	int port = colon ? atoi(colon + 1) : 0;

	if (!colon || (size_t)(colon - s) >= sizeof(ip) || port <= 0 || port > 65535)
		return -1;
	memcpy(ip, s, (size_t)(colon - s));
	ip[colon - s] = '\0';
	dst.sin_family = AF_INET;
	dst.sin_port = htons((uint16_t)port);
	return inet_pton(AF_INET, ip, &dst.sin_addr) == 1 ? 0 : -1;
}

static int usage(void)
{
	fprintf(stderr, "usage: upgrade_client stream IP:PORT CONNS RATE STATUS [--ctl PATH]\n"
			"       upgrade_client flood IP:PORT BYTES [--ctl PATH]\n");
	return 2;
}

int main(int argc, char **argv)
{
	const char *ctl = NULL;
	bool is_stream;
	int nargs;

	if (argc < 2)
		return usage();
	is_stream = !strcmp(argv[1], "stream");
	if (!is_stream && strcmp(argv[1], "flood"))
		return usage();
	nargs = is_stream ? 6 : 4;
	if (argc == nargs + 2 && !strcmp(argv[nargs], "--ctl"))
		ctl = argv[nargs + 1];
	else if (argc != nargs)
		return usage();
	if (parse_dst(argv[2]))
		return usage();
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (mst_init(ctl) < 0) {
		printf("mst_init: %s\n", strerror(errno));
		return 1;
	}
	if (!is_stream)
		return flood(strtoull(argv[3], NULL, 10));
	n_conns = (unsigned)atoi(argv[3]);
	rate = atof(argv[4]);
	if (n_conns < 1 || n_conns > MAX_CONNS || rate <= 0 || rate > 1000)
		return usage();
	return stream(argv[5]);
}
