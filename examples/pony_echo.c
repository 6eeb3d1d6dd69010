/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * pony_echo: Pony messages between two Mustang hosts, server or client.
 *
 *   pony_echo [-s SVC] [--region BYTES] [--ctl PATH] [-v]          server
 *   pony_echo --client IP:SVC [--count N] [--max-size B] [--streams S]
 *             [--window W] [--zero-copy] [--blocking] [--timeout MS]
 *             [-s SVC]                                             client
 *   pony_echo --client IP:SVC --read KEY --region BYTES
 *             [--private-key K]                                    READ client
 *
 * Server: binds SVC (default 7), sends every message back to its sender on
 * the same stream, and registers two regions of --region bytes (default
 * 1 MiB) filled with pattern_byte(i): one remote-readable, one not. It
 * prints "pony_echo: svc S key K private-key P size N" once ready and, at
 * SIGINT/SIGTERM, "pony_echo: echoed M messages, B bytes, E events".
 *
 * Client: N messages (default 1000) of mixed sizes, message i on stream
 * i % S with bytes and size that follow from i alone (mostly small, some
 * up to 1 MiB, one in 1000 of --max-size, and message 0 too when N >=
 * 1000); at most W unechoed (default 64). It checks every echo: right
 * stream order (exactly once, in order), length and bytes; and that every
 * send completed with status 0. --zero-copy sends messages up to 64 KiB
 * from registered regions (mst_pony_send_reg). The endpoint is
 * non-blocking (sends that find no room wait for the next poll) unless
 * --blocking: then a send waits in libmustang for room, and a window
 * larger than the library's op budget makes it do so.
 *
 * READ client: reads the whole region and pieces of it and checks the
 * pattern; then an out-of-bounds READ (expects ERANGE), an unknown key
 * and the keys an old daemon gave its first regions (ENOENT) and, with
 * --private-key, a region that is not remote-readable (EACCES).
 *
 * Exit: 0 all good, 1 error or mismatch, 2 usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mustang/mustang.h>

#include "ex_util.h"

#define EVS 64
#define ZC_SLOT (64u << 10)

static volatile sig_atomic_t stop;

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: pony_echo [-s SVC] [--region BYTES] [--ctl PATH] [-v]\n"
		"       pony_echo --client IP:SVC [--count N] [--max-size B] [--streams S]\n"
		"                 [--window W] [--zero-copy] [--blocking] [--timeout MS] [-s SVC]\n"
		"       pony_echo --client IP:SVC --read KEY --region BYTES [--private-key K]\n"
		"Pony echo on Mustang: a server sending every message back on its stream\n"
		"(and serving READs of a region), or a client checking echoes or READs.\n\n"
		"  -s, --svc SVC        our Pony service (server default 7, client 1007)\n"
		"  -C, --client IP:SVC  client mode, against this server\n"
		"  -n, --count N        messages (default 1000)\n"
		"  -M, --max-size B     largest message, K/M suffixes (default 16M)\n"
		"  -S, --streams S      streams (default 8)\n"
		"  -w, --window W       unechoed messages at most (default 64)\n"
		"  -z, --zero-copy      messages up to 64 KiB from registered regions\n"
		"  -b, --blocking       blocking endpoint: sends wait for room in libmustang\n"
		"  -t, --timeout MS     give up after MS without progress (default 30000)\n"
		"  -r, --read KEY       READ client: the server's region key\n"
		"  -p, --private-key K  READ client: a key that must give EACCES\n"
		"  -R, --region BYTES   region size (default 1M)\n"
		"  -c, --ctl PATH       mustangd control socket\n"
		"  -v, --verbose        more output\n"
		"  -h, --help           this help\n");
}

static inline uint8_t pattern_byte(uint64_t i)
{
	return (uint8_t)(i * 7 + (i >> 8) + 3);
}

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	return x ^ (x >> 33);
}

/* Size of message i: weighted to small ones. */
static uint32_t msg_size(uint64_t i, uint32_t max, uint64_t count)
{
	uint64_t h = mix(i + 1), r = h % 1000, v = h >> 20;
	uint32_t s;

	if ((i == 0 && count >= 1000) || r == 999)
		return max;
	if (r < 900)
		s = (uint32_t)(1 + v % 2048);
	else if (r < 990)
		s = (uint32_t)(1 + v % 65536);
	else
		s = (uint32_t)(1 + v % (1u << 20));
	return s > max ? max : s;
}

/* Bytes of message i (8 at a time from a per-message sequence). */
static void msg_fill(uint8_t *p, uint64_t i, uint32_t len)
{
	uint64_t x = mix(i ^ 0x5eed);
	uint32_t k = 0;

	for (; k + 8 <= len; k += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(p + k, &x, 8);
	}
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	memcpy(p + k, &x, len - k);
}

/* ---- server ---------------------------------------------------------------- */

static int serve(uint16_t svc, uint64_t region, bool verbose)
{
	static struct mst_pony_event pend[8192];
	struct mst_pony_event evs[EVS];
	unsigned n_pend = 0;
	uint64_t echoed = 0, bytes = 0, events = 0;
	uint64_t key = 0, pkey = 0;
	uint8_t *r1, *r2;
	int ep = mst_pony_open(svc);

	if (ep < 0 || mst_fcntl(ep, F_SETFL, O_NONBLOCK) < 0) {
		fprintf(stderr, "pony_echo: svc %u: %s\n", svc, strerror(errno));
		return 1;
	}
	r1 = mst_pony_reg_alloc(ep, region, MST_PONY_REMOTE_READ, &key);
	r2 = mst_pony_reg_alloc(ep, region, 0, &pkey);
	if (!r1 || !r2) {
		fprintf(stderr, "pony_echo: regions of %llu bytes: %s\n", (unsigned long long)region,
			strerror(errno));
		return 1;
	}
	for (uint64_t i = 0; i < region; i++)
		r1[i] = r2[i] = pattern_byte(i);
	printf("pony_echo: svc %u key %llu private-key %llu size %llu\n", svc,
	       (unsigned long long)key, (unsigned long long)pkey, (unsigned long long)region);
	fflush(stdout);
	while (!stop) {
		int n = mst_pony_poll(ep, evs, EVS, n_pend ? 1 : 200);

		if (n < 0 && errno != EINTR) {
			fprintf(stderr, "pony_echo: poll: %s\n", strerror(errno));
			return 1;
		}
		for (int k = 0; k < n; k++) {
			events++;
			if (evs[k].kind == MST_PONY_MSG) {
				if (n_pend == sizeof(pend) / sizeof(pend[0])) {
					fprintf(stderr, "pony_echo: backlog overflow\n");
					return 1;
				}
				pend[n_pend++] = evs[k];
			} else if (evs[k].status && verbose) {
				fprintf(stderr, "pony_echo: completion %d: %s\n", evs[k].kind,
					strerror(-evs[k].status));
			}
		}
		/* Echo in arrival order (keeps each stream's order). */
		unsigned done = 0;

		for (; done < n_pend; done++) {
			const struct mst_pony_event *m = &pend[done];

			if (m->status == 0 &&
			    mst_pony_send(ep, m->peer, m->src_svc, m->stream, m->data, m->len, 0) < 0) {
				if (errno == EAGAIN)
					break;
				fprintf(stderr, "pony_echo: send %u bytes: %s\n", m->len, strerror(errno));
			}
			if (verbose)
				fprintf(stderr, "pony_echo: echo stream %u len %u\n", m->stream, m->len);
			echoed++;
			bytes += m->len;
			(void)mst_pony_release(ep, m);
		}
		memmove(pend, pend + done, (n_pend - done) * sizeof(pend[0]));
		n_pend -= done;
	}
	printf("pony_echo: echoed %llu messages, %llu bytes, %llu events\n",
	       (unsigned long long)echoed, (unsigned long long)bytes, (unsigned long long)events);
	mst_close(ep);
	return 0;
}

/* ---- client ---------------------------------------------------------------- */

struct client {
	int ep;
	uint32_t ip;
	uint16_t svc;
	uint64_t count, sent, echoed, done;
	uint32_t max, streams, window;
	uint64_t *next;     /* per stream: next index expected back */
	uint8_t *buf, *want;
	bool zc, blocking;
	uint64_t burst, max_burst; /* sends since the last poll, most of them */
	uint8_t *zc_base;   /* window slots of ZC_SLOT bytes */
	uint64_t *zc_owner; /* slot -> message index + 1 (0 free) */
	int timeout_ms;
	bool verbose;
	uint64_t bytes;
};

static int check_echo(struct client *c, const struct mst_pony_event *ev)
{
	uint64_t i;
	uint32_t len;

	if (ev->status) {
		fprintf(stderr, "pony_echo: received a message with status %d\n", ev->status);
		return -1;
	}
	if (ev->stream >= c->streams) {
		fprintf(stderr, "pony_echo: echo on unknown stream %u\n", ev->stream);
		return -1;
	}
	i = c->next[ev->stream];
	if (i >= c->count) {
		fprintf(stderr, "pony_echo: extra echo on stream %u (duplicate?)\n", ev->stream);
		return -1;
	}
	len = msg_size(i, c->max, c->count);
	if (ev->len != len) {
		fprintf(stderr, "pony_echo: message %llu on stream %u: %u bytes, want %u (order?)\n",
			(unsigned long long)i, ev->stream, ev->len, len);
		return -1;
	}
	msg_fill(c->want, i, len);
	if (memcmp(ev->data, c->want, len) != 0) {
		fprintf(stderr, "pony_echo: message %llu (%u bytes): content differs\n",
			(unsigned long long)i, len);
		return -1;
	}
	c->next[ev->stream] = i + c->streams;
	c->echoed++;
	c->bytes += len;
	return 0;
}

static int zc_slot_free(struct client *c)
{
	for (uint32_t s = 0; s < c->window; s++)
		if (!c->zc_owner[s])
			return (int)s;
	return -1;
}

/* Send message c->sent; 0, 1 = try later (EAGAIN), -1 error. */
static int send_next(struct client *c)
{
	uint64_t i = c->sent;
	uint32_t len = msg_size(i, c->max, c->count), stream = (uint32_t)(i % c->streams);
	int r, slot;

	if (c->zc && len <= ZC_SLOT && (slot = zc_slot_free(c)) >= 0) {
		uint8_t *p = c->zc_base + (uint64_t)slot * ZC_SLOT;

		msg_fill(p, i, len);
		r = mst_pony_send_reg(c->ep, c->ip, c->svc, stream, p, len, (uint64_t)slot << 48 | i);
		if (r == 0)
			c->zc_owner[slot] = i + 1;
	} else {
		msg_fill(c->buf, i, len);
		r = mst_pony_send(c->ep, c->ip, c->svc, stream, c->buf, len, UINT64_MAX);
	}
	if (r < 0 && errno == EAGAIN && !c->blocking)
		return 1;
	if (r < 0) {
		fprintf(stderr, "pony_echo: send %llu (%u bytes): %s\n", (unsigned long long)i, len,
			strerror(errno));
		return -1;
	}
	c->sent++;
	if (++c->burst > c->max_burst)
		c->max_burst = c->burst;
	return 0;
}

static int run_client(struct client *c)
{
	struct mst_pony_event evs[EVS];
	uint64_t t0 = ex_now_ns(), last = t0;

	while (c->echoed < c->count || c->done < c->sent) {
		int n, r = 0;

		while (c->sent < c->count && c->sent - c->echoed < c->window && (r = send_next(c)) == 0)
			;
		if (r < 0)
			return 1;
		c->burst = 0;
		n = mst_pony_poll(c->ep, evs, EVS, 100);
		if (n < 0) {
			if (errno == EINTR && !stop)
				continue;
			fprintf(stderr, "pony_echo: poll: %s\n", strerror(errno));
			return 1;
		}
		for (int k = 0; k < n; k++) {
			const struct mst_pony_event *ev = &evs[k];

			if (ev->kind == MST_PONY_MSG) {
				if (check_echo(c, ev) < 0)
					return 1;
				(void)mst_pony_release(c->ep, ev);
			} else if (ev->kind == MST_PONY_SEND_DONE) {
				c->done++;
				if (c->zc && ev->cookie != UINT64_MAX)
					c->zc_owner[(ev->cookie >> 48) % c->window] = 0;
				if (ev->status) {
					fprintf(stderr, "pony_echo: send completed with %s\n",
						strerror(-ev->status));
					return 1;
				}
			}
		}
		if (n > 0)
			last = ex_now_ns();
		else if ((ex_now_ns() - last) / 1000000 > (uint64_t)c->timeout_ms || stop) {
			fprintf(stderr, "pony_echo: no progress: sent %llu, echoed %llu, completed %llu\n",
				(unsigned long long)c->sent, (unsigned long long)c->echoed,
				(unsigned long long)c->done);
			return 1;
		}
	}
	/* Anything more would be a duplicate. */
	{
		int n = mst_pony_poll(c->ep, evs, EVS, 300);

		for (int k = 0; k < n; k++)
			if (evs[k].kind == MST_PONY_MSG && check_echo(c, &evs[k]) < 0)
				return 1;
	}
	{
		double s = (double)(ex_now_ns() - t0) / 1e9;

		printf("pony_echo: %llu messages echoed intact and in order, %llu bytes each way, %.2f s, %.1f MB/s\n",
		       (unsigned long long)c->echoed, (unsigned long long)c->bytes, s,
		       (double)c->bytes / 1e6 / s);
		if (c->blocking)
			printf("pony_echo: blocking sends: up to %llu between two polls\n",
			       (unsigned long long)c->max_burst);
	}
	return 0;
}

/* One READ; returns its completion status (or -EIO on a local failure). */
static int read_one(int ep, uint32_t ip, uint16_t svc, uint64_t key, uint64_t off, uint32_t len,
		    uint8_t *dst, int timeout_ms)
{
	struct mst_pony_event ev;
	uint64_t t0 = ex_now_ns();

	if (mst_pony_read(ep, ip, svc, key, off, len, dst, off) < 0) {
		fprintf(stderr, "pony_echo: read: %s\n", strerror(errno));
		return -EIO;
	}
	while ((ex_now_ns() - t0) / 1000000 < (uint64_t)timeout_ms) {
		int n = mst_pony_poll(ep, &ev, 1, 100);

		if (n == 1 && ev.kind == MST_PONY_READ_DONE)
			return ev.status;
	}
	fprintf(stderr, "pony_echo: read: no completion\n");
	return -EIO;
}

static int run_reads(int ep, uint32_t ip, uint16_t svc, uint64_t key, uint64_t pkey,
		     uint64_t size, int timeout_ms)
{
	uint64_t dkey;
	uint8_t *dst = mst_pony_reg_alloc(ep, size + 256, 0, &dkey);
	static const struct { int64_t off, len; } pieces[] = {
		{ 0, 1 }, { 1, 7 }, { 4095, 4097 }, { -100, 100 }, { -1, 1 },
	};
	int r, bad = 0;

	if (!dst) {
		fprintf(stderr, "pony_echo: read buffer: %s\n", strerror(errno));
		return 1;
	}
	r = read_one(ep, ip, svc, key, 0, (uint32_t)size, dst, timeout_ms);
	for (uint64_t i = 0; r == 0 && i < size; i++)
		if (dst[i] != pattern_byte(i)) {
			fprintf(stderr, "pony_echo: READ byte %llu differs\n", (unsigned long long)i);
			r = -EILSEQ;
			break;
		}
	printf("read whole region (%llu bytes): %s\n", (unsigned long long)size, r ? strerror(-r) : "ok");
	bad |= r != 0;
	for (size_t p = 0; p < sizeof(pieces) / sizeof(pieces[0]); p++) {
		uint64_t off = pieces[p].off < 0 ? size + (uint64_t)pieces[p].off : (uint64_t)pieces[p].off;
		uint32_t len = (uint32_t)pieces[p].len;

		if (off + len > size)
			continue;
		memset(dst, 0, len);
		r = read_one(ep, ip, svc, key, off, len, dst, timeout_ms);
		for (uint32_t i = 0; r == 0 && i < len; i++)
			if (dst[i] != pattern_byte(off + i))
				r = -EILSEQ;
		printf("read [%llu, +%u): %s\n", (unsigned long long)off, len, r ? strerror(-r) : "ok");
		bad |= r != 0;
	}
	r = read_one(ep, ip, svc, key, size - 10, 100, dst, timeout_ms);
	printf("read out of bounds: %s\n", r ? strerror(-r) : "ok");
	bad |= r != -ERANGE;
	r = read_one(ep, ip, svc, key ^ 0x5a5a40u, 0, 16, dst, timeout_ms);
	printf("read unknown key: %s\n", r ? strerror(-r) : "ok");
	bad |= r != -ENOENT;
	/* Keys used to be generation << 6 | index, generations counting from
	 * 1 per endpoint: a stranger's first guesses. None may work now. */
	for (uint64_t gen = 1; gen <= 4; gen++) {
		r = read_one(ep, ip, svc, gen << 6 | (key & 63), 0, 16, dst, timeout_ms);
		printf("read guessed key %llu: %s\n", (unsigned long long)(gen << 6 | (key & 63)),
		       r ? strerror(-r) : "ok");
		bad |= r != -ENOENT;
	}
	if (pkey) {
		r = read_one(ep, ip, svc, pkey, 0, 16, dst, timeout_ms);
		printf("read private region: %s\n", r ? strerror(-r) : "ok");
		bad |= r != -EACCES;
	}
	r = read_one(ep, ip, (uint16_t)(svc + 1), key, 0, 16, dst, timeout_ms);
	printf("read on a service nobody bound: %s\n", r ? strerror(-r) : "ok");
	bad |= r == 0;
	return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "svc", required_argument, NULL, 's' },
		{ "client", required_argument, NULL, 'C' },
		{ "count", required_argument, NULL, 'n' },
		{ "max-size", required_argument, NULL, 'M' },
		{ "streams", required_argument, NULL, 'S' },
		{ "window", required_argument, NULL, 'w' },
		{ "zero-copy", no_argument, NULL, 'z' },
		{ "blocking", no_argument, NULL, 'b' },
		{ "timeout", required_argument, NULL, 't' },
		{ "read", required_argument, NULL, 'r' },
		{ "private-key", required_argument, NULL, 'p' },
		{ "region", required_argument, NULL, 'R' },
		{ "ctl", required_argument, NULL, 'c' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct client c = { .count = 1000, .max = 16u << 20, .streams = 8, .window = 64,
			    .timeout_ms = 30000 };
	const char *ctl = NULL, *server = NULL;
	uint64_t v, region = 1u << 20, key = 0, pkey = 0;
	uint16_t svc = 0;
	bool reads = false, blocking = false;
	struct sockaddr_in sa;
	int opt, rc;

	while ((opt = getopt_long(argc, argv, "s:C:n:M:S:w:zbt:r:p:R:c:vh", lo, NULL)) != -1) {
		switch (opt) {
		case 's':
			if (ex_parse_port(optarg, &svc) < 0 || !svc)
				goto bad;
			break;
		case 'C':
			server = optarg;
			break;
		case 'n':
			if (ex_parse_num(optarg, 1, 100000000, &c.count) < 0)
				goto bad;
			break;
		case 'M':
			if (ex_parse_size(optarg, &v) < 0 || v == 0 || v > (1u << 30))
				goto bad;
			c.max = (uint32_t)v;
			break;
		case 'S':
			if (ex_parse_num(optarg, 1, 65536, &v) < 0)
				goto bad;
			c.streams = (uint32_t)v;
			break;
		case 'w':
			if (ex_parse_num(optarg, 1, 4096, &v) < 0)
				goto bad;
			c.window = (uint32_t)v;
			break;
		case 'z':
			c.zc = true;
			break;
		case 'b':
			blocking = true;
			break;
		case 't':
			if (ex_parse_num(optarg, 1, 3600000, &v) < 0)
				goto bad;
			c.timeout_ms = (int)v;
			break;
		case 'r':
			if (ex_parse_num(optarg, 0, UINT64_MAX, &key) < 0)
				goto bad;
			reads = true;
			break;
		case 'p':
			if (ex_parse_num(optarg, 1, UINT64_MAX, &pkey) < 0)
				goto bad;
			break;
		case 'R':
			if (ex_parse_size(optarg, &region) < 0 || region == 0 || region > (1u << 30))
				goto bad;
			break;
		case 'c':
			ctl = optarg;
			break;
		case 'v':
			c.verbose = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc)
		goto bad;
	if (ex_attach("pony_echo", ctl) < 0)
		return 1;
	ex_stop_on_signals(&stop);
	if (!server)
		return serve(svc ? svc : 7, region, c.verbose);

	if (ex_parse_ipport(server, &sa) < 0)
		goto bad;
	c.ip = sa.sin_addr.s_addr;
	c.svc = ntohs(sa.sin_port);
	c.ep = mst_pony_open(svc ? svc : 1007);
	c.blocking = blocking;
	if (c.ep >= 0 && !blocking && mst_fcntl(c.ep, F_SETFL, O_NONBLOCK) < 0)
		c.ep = -1;
	if (c.ep < 0) {
		fprintf(stderr, "pony_echo: open: %s\n", strerror(errno));
		return 1;
	}
	if (reads)
		return run_reads(c.ep, c.ip, c.svc, key, pkey, region, c.timeout_ms);
	c.next = calloc(c.streams, sizeof(*c.next));
	c.buf = malloc(c.max);
	c.want = malloc(c.max);
	if (!c.next || !c.buf || !c.want)
		return 1;
	for (uint32_t s = 0; s < c.streams; s++)
		c.next[s] = s;
	if (c.zc) {
		uint64_t k;

		c.zc_base = mst_pony_reg_alloc(c.ep, (uint64_t)c.window * ZC_SLOT, 0, &k);
		c.zc_owner = calloc(c.window, sizeof(*c.zc_owner));
		if (!c.zc_base || !c.zc_owner) {
			fprintf(stderr, "pony_echo: zero-copy region: %s\n", strerror(errno));
			return 1;
		}
	}
	rc = run_client(&c);
	mst_close(c.ep);
	return rc;

bad:
	usage(stderr);
	return 2;
}
