/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * echo_client: request/response against an echo server. Each connection
 * sends a message of --size bytes, waits until the whole message has come
 * back, checks every byte, then sends the next; --count messages per
 * connection (or as many as fit in --duration seconds). Prints throughput
 * and the per-message round-trip latency (first byte sent -> last byte back).
 *
 *   echo_client [--size BYTES] [--count N | --duration SEC] [--conns N]
 *               [--blocking] [--ctl PATH] IP:PORT
 *
 * Call order: main() -> run_epoll(): every connection non-blocking in one
 * mst_epoll loop, connect -> progress() (send what fits, check what came
 * back, next message); or, with --blocking, run_blocking(): one connection
 * with blocking mst_send/mst_recv, so the thread sleeps in the library on
 * every round trip (what the wake-up benchmark measures).
 *
 * Message m of connection c is pattern[(c * 7 + m) % PATTERN_SHIFTS ...],
 * a window into pseudo-random bytes, so a byte echoed twice, dropped or
 * taken from another connection does not compare equal.
 *
 * Exit: 0 every byte verified, 1 error or mismatch, 2 usage.
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

#define PATTERN_SHIFTS 251
#define RBUF_SIZE (64 * 1024)
#define MAX_EVENTS 256

struct conn {
	int fd;
	uint32_t id;
	bool connected;
	uint32_t interest;     /* registered epoll events */
	uint64_t msgs;         /* messages completed */
	size_t sent, rcvd;     /* of the current message */
	uint64_t t0;           /* current message: first send */
};

struct cfg {
	struct sockaddr_in dst;
	uint64_t size, count, conns;
	uint64_t duration_s;   /* 0: stop after count messages */
	uint64_t deadline_ns;
	const char *ctl;
	bool blocking;
};

static struct cfg cfg = { .size = 64, .count = 1000, .conns = 1 };
static volatile sig_atomic_t stop;
static uint8_t *pattern;               /* size + PATTERN_SHIFTS bytes */
static uint8_t rbuf[RBUF_SIZE];
static uint64_t *lat_ns;               /* one sample per message */
static size_t n_lat, cap_lat;
static uint64_t total_msgs;

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: echo_client [options] IP:PORT\n"
		"Send messages to an echo server over Mustang, check every byte of\n"
		"the echo, print throughput and round-trip latency.\n\n"
		"  -s, --size BYTES    message size, K/M/G suffixes (default 64)\n"
		"  -n, --count N       messages per connection (default 1000)\n"
		"  -d, --duration SEC  send for SEC seconds instead of --count\n"
		"  -C, --conns N       concurrent connections (default 1)\n"
		"  -B, --blocking      blocking calls, one connection (no epoll)\n"
		"  -c, --ctl PATH      mustangd control socket (default $MUSTANG_CTL,\n"
		"                      else the daemon's default path)\n"
		"  -h, --help          this help\n");
}

static const uint8_t *msg_bytes(const struct conn *c)
{
	return pattern + (c->id * 7 + c->msgs) % PATTERN_SHIFTS;
}

static int record_latency(uint64_t ns)
{
	if (n_lat == cap_lat) {
		size_t cap = cap_lat ? cap_lat * 2 : 4096;
		uint64_t *p = realloc(lat_ns, cap * sizeof(*p));

		if (!p)
			return -1;
		lat_ns = p;
		cap_lat = cap;
	}
	lat_ns[n_lat++] = ns;
	return 0;
}

static bool want_more(const struct conn *c)
{
	if (stop)
		return false;
	if (cfg.deadline_ns)
		return ex_now_ns() < cfg.deadline_ns;
	return c->msgs < cfg.count;
}

/* Compare n received bytes with what was sent at offset c->rcvd. */
static int verify(const struct conn *c, const uint8_t *got, size_t n)
{
	const uint8_t *want = msg_bytes(c) + c->rcvd;

	if (memcmp(got, want, n) == 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (got[i] != want[i]) {
			fprintf(stderr,
				"echo_client: connection %u message %llu byte %zu: got 0x%02x, sent 0x%02x\n",
				c->id, (unsigned long long)c->msgs, c->rcvd + i, got[i], want[i]);
			break;
		}
	}
	return -1;
}

/* A whole message came back: account for it, start the next one. */
static int message_done(struct conn *c)
{
	if (record_latency(ex_now_ns() - c->t0) < 0) {
		fprintf(stderr, "echo_client: out of memory for latency samples\n");
		return -1;
	}
	c->msgs++;
	total_msgs++;
	c->sent = c->rcvd = 0;
	c->t0 = ex_now_ns();
	return 0;
}

/* Receive part of the current message's echo and check it. 1: progress,
 * 0: nothing yet (EAGAIN, or EINTR without a stop request), -1: failed
 * (reported). */
static int recv_part(struct conn *c)
{
	size_t want = cfg.size - c->rcvd;
	ssize_t n = mst_recv(c->fd, rbuf, want < sizeof(rbuf) ? want : sizeof(rbuf), 0);

	if (n < 0 && (errno == EAGAIN || (errno == EINTR && !stop)))
		return 0;
	if (n < 0) {
		if (!stop)
			fprintf(stderr, "echo_client: connection %u: recv: %s\n", c->id,
				strerror(errno));
		return -1;
	}
	if (n == 0) {
		fprintf(stderr, "echo_client: connection %u: server closed after %llu messages\n",
			c->id, (unsigned long long)c->msgs);
		return -1;
	}
	if (verify(c, rbuf, (size_t)n) < 0)
		return -1;
	c->rcvd += (size_t)n;
	return 1;
}

/* ---- one blocking connection -------------------------------------------- */

static int run_blocking(void)
{
	struct conn c = { .id = 0 };

	c.fd = mst_socket(AF_INET, SOCK_STREAM, 0);
	if (c.fd < 0) {
		perror("echo_client: mst_socket");
		return -1;
	}
	if (mst_connect(c.fd, (struct sockaddr *)&cfg.dst, sizeof(cfg.dst)) < 0) {
		perror("echo_client: mst_connect");
		goto out_close;
	}
	c.t0 = ex_now_ns();
	while (want_more(&c)) {
		/* The echo of a large message starts before it is all sent;
		 * the server buffers 64 KiB, so send and receive alternate. */
		while (c.rcvd < cfg.size) {
			if (c.sent < cfg.size) {
				size_t chunk = cfg.size - c.sent < RBUF_SIZE ? cfg.size - c.sent : RBUF_SIZE;
				ssize_t n = mst_send(c.fd, msg_bytes(&c) + c.sent, chunk, 0);

				if (n < 0) {
					perror("echo_client: mst_send");
					goto out_close;
				}
				c.sent += (size_t)n;
			}
			while (c.rcvd < c.sent)
				if (recv_part(&c) < 0)
					goto out_close;
		}
		if (message_done(&c) < 0)
			goto out_close;
	}
	mst_close(c.fd);
	return 0;

out_close:
	mst_close(c.fd);
	return -1;
}

/* ---- many connections, one epoll loop ------------------------------------ */

static int update_interest(int ep, struct conn *c)
{
	uint32_t want = c->connected && c->sent == cfg.size ? EPOLLIN : EPOLLIN | EPOLLOUT;
	struct epoll_event ev = { .events = want, .data.ptr = c };

	if (want == c->interest)
		return 0;
	c->interest = want;
	return mst_epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Send and receive until the connection would block. 1: this connection is
 * finished, 0: more to do later, -1: error (reported). */
static int progress(struct conn *c, uint32_t events)
{
	if (!c->connected) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return 0;
		if (mst_getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
			fprintf(stderr, "echo_client: connection %u: connect: %s\n", c->id,
				strerror(err ? err : errno));
			return -1;
		}
		c->connected = true;
		c->t0 = ex_now_ns();
	}
	for (;;) {
		bool tx_blocked = false;

		if (c->sent < cfg.size) {
			ssize_t n = mst_send(c->fd, msg_bytes(c) + c->sent, cfg.size - c->sent, 0);

			if (n >= 0) {
				c->sent += (size_t)n;
			} else if (errno == EAGAIN) {
				tx_blocked = true;
			} else {
				fprintf(stderr, "echo_client: connection %u: send: %s\n", c->id,
					strerror(errno));
				return -1;
			}
		}
		if (c->rcvd < c->sent) {
			int r = recv_part(c);

			if (r < 0)
				return -1;
			if (r == 0 && (tx_blocked || c->sent == cfg.size))
				return 0; /* blocked both ways: wait for epoll */
		}
		if (c->rcvd == cfg.size) {
			if (message_done(c) < 0)
				return -1;
			if (!want_more(c))
				return 1;
		}
	}
}

static int run_epoll(void)
{
	static struct epoll_event evs[MAX_EVENTS];
	struct conn *conns = calloc(cfg.conns, sizeof(*conns));
	uint64_t open = 0;
	int ep, rc = -1;

	ep = mst_epoll_create1(0);
	if (!conns || ep < 0) {
		perror("echo_client: setup");
		goto out;
	}
	for (uint32_t i = 0; i < cfg.conns; i++) {
		struct conn *c = &conns[i];
		struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.ptr = c };

		c->id = i;
		c->interest = ev.events;
		c->fd = mst_socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		if (c->fd < 0) {
			perror("echo_client: mst_socket");
			goto out;
		}
		open++;
		if (mst_connect(c->fd, (struct sockaddr *)&cfg.dst, sizeof(cfg.dst)) < 0 &&
		    errno != EINPROGRESS) {
			perror("echo_client: mst_connect");
			goto out;
		}
		if (mst_epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
			perror("echo_client: mst_epoll_ctl");
			goto out;
		}
	}
	while (open) {
		int n = mst_epoll_wait(ep, evs, MAX_EVENTS, 1000);

		if (n < 0 && errno == EINTR && !stop)
			continue;
		if (n < 0) {
			if (!stop)
				perror("echo_client: mst_epoll_wait");
			goto out;
		}
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			int r = progress(c, evs[i].events);

			if (r < 0)
				goto out;
			if (r == 1) {
				mst_epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
				mst_close(c->fd);
				c->fd = -1;
				open--;
			} else if (update_interest(ep, c) < 0) {
				perror("echo_client: mst_epoll_ctl");
				goto out;
			}
		}
	}
	rc = 0;
out:
	for (uint64_t i = 0; conns && i < cfg.conns; i++)
		if (conns[i].fd > 0)
			mst_close(conns[i].fd);
	if (ep >= 0)
		mst_close(ep);
	free(conns);
	return rc;
}

/* ---- report ---------------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void report(uint64_t elapsed_ns)
{
	double secs = (double)elapsed_ns / 1e9, sum = 0;
	double bytes = (double)total_msgs * (double)cfg.size;

	qsort(lat_ns, n_lat, sizeof(*lat_ns), cmp_u64);
	for (size_t i = 0; i < n_lat; i++)
		sum += (double)lat_ns[i];
	printf("echo_client: conns=%llu size=%llu msgs=%llu secs=%.3f msgs_per_s=%.0f "
	       "mbit_per_s=%.1f",
	       (unsigned long long)cfg.conns, (unsigned long long)cfg.size,
	       (unsigned long long)total_msgs, secs, total_msgs / secs, bytes * 8 / secs / 1e6);
	if (n_lat)
		printf(" lat_avg_us=%.1f lat_p50_us=%.1f lat_p99_us=%.1f lat_max_us=%.1f",
		       sum / (double)n_lat / 1e3, (double)lat_ns[n_lat / 2] / 1e3,
		       (double)lat_ns[n_lat * 99 / 100] / 1e3, (double)lat_ns[n_lat - 1] / 1e3);
	printf("\n");
}

static int parse_args(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "size", required_argument, NULL, 's' },
		{ "count", required_argument, NULL, 'n' },
		{ "duration", required_argument, NULL, 'd' },
		{ "conns", required_argument, NULL, 'C' },
		{ "blocking", no_argument, NULL, 'B' },
		{ "ctl", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int o;

	while ((o = getopt_long(argc, argv, "s:n:d:C:Bc:h", opts, NULL)) != -1) {
		switch (o) {
		case 's':
			if (ex_parse_size(optarg, &cfg.size) < 0 || cfg.size == 0 ||
			    cfg.size > (1u << 30)) {
				fprintf(stderr, "echo_client: bad --size \"%s\" (1 to 1G)\n", optarg);
				return -1;
			}
			break;
		case 'n':
			if (ex_parse_num(optarg, 1, UINT32_MAX, &cfg.count) < 0) {
				fprintf(stderr, "echo_client: bad --count \"%s\"\n", optarg);
				return -1;
			}
			break;
		case 'd':
			if (ex_parse_num(optarg, 1, 3600, &cfg.duration_s) < 0) {
				fprintf(stderr, "echo_client: bad --duration \"%s\" (1-3600 s)\n", optarg);
				return -1;
			}
			break;
		case 'C':
			if (ex_parse_num(optarg, 1, 4000, &cfg.conns) < 0) {
				fprintf(stderr, "echo_client: bad --conns \"%s\" (1-4000)\n", optarg);
				return -1;
			}
			break;
		case 'B': cfg.blocking = true; break;
		case 'c': cfg.ctl = optarg; break;
		case 'h': usage(stdout); exit(0);
		default: return -1;
		}
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "echo_client: expected one IP:PORT argument\n");
		return -1;
	}
	if (ex_parse_ipport(argv[optind], &cfg.dst) < 0) {
		fprintf(stderr, "echo_client: bad destination \"%s\" (want A.B.C.D:PORT)\n",
			argv[optind]);
		return -1;
	}
	if (cfg.blocking && cfg.conns != 1) {
		fprintf(stderr, "echo_client: --blocking drives a single connection\n");
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t t0;
	int rc;

	if (parse_args(argc, argv) < 0) {
		usage(stderr);
		return 2;
	}
	pattern = malloc(cfg.size + PATTERN_SHIFTS);
	if (!pattern) {
		fprintf(stderr, "echo_client: cannot allocate %llu bytes\n",
			(unsigned long long)cfg.size);
		return 1;
	}
	srandom(42);
	for (uint64_t i = 0; i < cfg.size + PATTERN_SHIFTS; i++)
		pattern[i] = (uint8_t)(random() >> 7);
	ex_stop_on_signals(&stop);
	if (ex_attach("echo_client", cfg.ctl) < 0)
		return 1;
	t0 = ex_now_ns();
	if (cfg.duration_s)
		cfg.deadline_ns = t0 + cfg.duration_s * 1000000000ull;
	rc = cfg.blocking ? run_blocking() : run_epoll();
	report(ex_now_ns() - t0);
	mst_fini();
	free(pattern);
	free(lat_ns);
	return rc < 0 ? 1 : 0;
}
