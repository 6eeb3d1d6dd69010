/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * app_hostile: a misbehaving application for app_hostile.sh. It attaches to
 * mustangd the way libmustang does, but raw (the control protocol of
 * <mustang/ctl.h> and the segment of <mustang/shm_abi.h>, no library),
 * opens one real connection so that the engine has a live socket whose
 * FIFO counters it can corrupt, then for --seconds writes garbage into its
 * segment, in turns:
 *   bytes     every byte after the header: all queue pairs, the whole
 *             socket table and the first FIFO_GARBAGE bytes of the FIFO
 *             arena (where its live socket's FIFOs are), random
 *   commands  each command ring gets a plausible fill level (prod = cons +
 *             1..64) of random commands: ops 0..15, socket indices around
 *             the live one, random arguments
 *   fifo      the live socket's tx_tail / rx_head set to random values,
 *             then TX and RX_DONE doorbells naming it
 * The first FIFO_FIRST rounds are fifo rounds only: later, random commands
 * soon close the live socket (CLOSE is one of the ops they try), after
 * which its doorbells are rejected as bad sockets, not bad FIFO counters.
 * The header is left alone (the daemon wrote it before handing the
 * segment over and keeps its own copy anyway).
 *
 *   app_hostile --ctl PATH --connect IP:PORT [--seconds S]
 *
 * Call order: main() -> attach() -> open_connection() (raw SOCKET +
 * CONNECT, wait until writable) -> the garbage loop -> exit (the daemon
 * sees the control socket close and reclaims everything).
 * Exit 0 when it attached and ran, 1 otherwise, 2 on usage errors.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <mustang/ctl.h>
#include <mustang/shm_abi.h>

#include "hostile_util.h"

#define FIFO_GARBAGE (4u << 20)
#define FIFO_FIRST 20

struct seg {
	int ctl;                   /* lifeline: open as long as we run */
	uint8_t *base;
	size_t size;
	const struct mst_shm_hdr *h;
	struct mst_shm_qp *qps;
	struct mst_shm_sock *socks;
};


/* ---- attach (raw) ---------------------------------------------------------- */

static int attach(const char *path, struct seg *s)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct mst_ctl_hdr req = {
		.magic = MST_CTL_MAGIC, .version = MST_CTL_VERSION, .type = MST_CTL_attach,
	};
	struct mst_ctl_hdr rsp;
	union {
		char buf[CMSG_SPACE(sizeof(int) * (1 + MST_SHM_MAX_QPS))];
		struct cmsghdr align;
	} cm;
	struct iovec iov = { .iov_base = &rsp, .iov_len = sizeof(rsp) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = cm.buf, .msg_controllen = sizeof(cm.buf) };
	struct cmsghdr *c;
	struct stat st;
	int memfd = -1;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	s->ctl = socket(AF_UNIX, SOCK_STREAM, 0);
	if (s->ctl < 0 || connect(s->ctl, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    send(s->ctl, &req, sizeof(req), 0) != (ssize_t)sizeof(req) ||
	    recvmsg(s->ctl, &mh, 0) < (ssize_t)sizeof(rsp))
		return errno ? -errno : -EPROTO;
	if (rsp.magic != MST_CTL_MAGIC || rsp.status < 0)
		return rsp.status < 0 ? rsp.status : -EPROTO;
	/* The first descriptor is the segment; eventfds are not needed. */
	for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && memfd < 0)
			memcpy(&memfd, CMSG_DATA(c), sizeof(int));
	if (memfd < 0 || fstat(memfd, &st) < 0)
		return -EPROTO;
	s->size = (size_t)st.st_size;
	s->base = mmap(NULL, s->size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	close(memfd);
	if (s->base == MAP_FAILED)
		return -errno;
	s->h = (const struct mst_shm_hdr *)s->base;
	if (s->h->magic != MST_SHM_MAGIC || s->h->qp_off < sizeof(*s->h) ||
	    s->h->sock_off + (uint64_t)s->h->n_socks * sizeof(struct mst_shm_sock) > s->size ||
	    s->h->qp_off + (uint64_t)s->h->n_qps * sizeof(struct mst_shm_qp) > s->size ||
	    s->h->fifo_off > s->size)
		return -EPROTO;
	s->qps = (struct mst_shm_qp *)(s->base + s->h->qp_off);
	s->socks = (struct mst_shm_sock *)(s->base + s->h->sock_off);
	return 0;
}

/* ---- raw commands on queue pair 0 (before the garbage starts) -------------- */

static uint32_t next_seq = 1;

static int push(struct mst_shm_qp *q, struct mst_shm_msg *m)
{
	uint32_t prod = q->cmd.prod;

	if (prod - __atomic_load_n(&q->cmd.cons, __ATOMIC_ACQUIRE) >= MST_SHM_RING_SLOTS)
		return -ENOBUFS;
	m->seq = next_seq++;
	q->cmd.slots[prod & (MST_SHM_RING_SLOTS - 1)] = *m;
	/* Pairs with the engine's load-acquire of prod. */
	__atomic_store_n(&q->cmd.prod, prod + 1, __ATOMIC_RELEASE);
	return 0;
}

/* Send m, wait (polling) for its DONE or ERROR; the result, -ETIMEDOUT. */
static int call(struct mst_shm_qp *q, struct mst_shm_msg *m)
{
	uint64_t deadline = now_ns() + 2000000000ull;
	int r = push(q, m);

	if (r < 0)
		return r;
	while (now_ns() < deadline) {
		uint32_t cons = q->evt.cons;

		/* Pairs with the engine's store-release of evt.prod. */
		while (cons != __atomic_load_n(&q->evt.prod, __ATOMIC_ACQUIRE)) {
			struct mst_shm_msg e = q->evt.slots[cons & (MST_SHM_RING_SLOTS - 1)];

			__atomic_store_n(&q->evt.cons, ++cons, __ATOMIC_RELEASE);
			if ((e.op == MST_EV_DONE || e.op == MST_EV_ERROR) && e.seq == m->seq) {
				*m = e;
				return e.result;
			}
		}
		usleep(100);
	}
	return -ETIMEDOUT;
}

static int open_connection(struct seg *s, const struct sockaddr_in *dst)
{
	struct mst_shm_qp *q = &s->qps[0];
	struct mst_shm_msg m = { .op = MST_CMD_SOCKET, .sock = -1, .a = 1 };
	uint64_t deadline;
	int idx, r;

	idx = call(q, &m);
	if (idx < 0 || (uint32_t)idx >= s->h->n_socks)
		return idx < 0 ? idx : -EPROTO;
	m = (struct mst_shm_msg){ .op = MST_CMD_CONNECT, .sock = idx,
				  .a = dst->sin_addr.s_addr, .b = ntohs(dst->sin_port) };
	r = call(q, &m);
	if (r < 0)
		return r;
	for (deadline = now_ns() + 5000000000ull; now_ns() < deadline; usleep(1000)) {
		uint32_t ready = __atomic_load_n(&s->socks[idx].ready, __ATOMIC_ACQUIRE);

		if (ready & MST_READY_OUT)
			return idx;
		if (ready & MST_READY_ERR)
			return -ECONNREFUSED;
	}
	return -ETIMEDOUT;
}

/* ---- garbage ------------------------------------------------------------------- */

static void garbage_bytes(struct seg *s)
{
	uint64_t end = s->h->fifo_off + FIFO_GARBAGE < s->size ? s->h->fifo_off + FIFO_GARBAGE
								  : s->size;
	uint64_t start = s->h->qp_off < s->h->sock_off ? s->h->qp_off : s->h->sock_off;
	uint64_t *p = (uint64_t *)(s->base + (start & ~7ull));
	uint64_t *e = (uint64_t *)(s->base + (end & ~7ull));

	/* Everything from the first table after the header to end: queue
	 * pairs, socket table, the start of the FIFO arena. */
	while (p < e)
		*p++ = rnd();
}

static void garbage_commands(struct seg *s, int live)
{
	for (uint32_t q = 0; q < s->h->n_qps; q++) {
		struct mst_shm_ring *r = &s->qps[q].cmd;
		uint32_t cons = __atomic_load_n(&r->cons, __ATOMIC_ACQUIRE);
		uint32_t k = 1 + (uint32_t)(rnd() % 64);

		for (uint32_t i = 0; i < k; i++) {
			struct mst_shm_msg *m = &r->slots[(cons + i) & (MST_SHM_RING_SLOTS - 1)];
			uint64_t x = rnd();

			m->op = (uint16_t)(x % 16);
			m->flags = (uint16_t)(x >> 16);
			m->sock = (x >> 32) % 4 ? live + (int32_t)((x >> 40) % 9) - 4
						: (int32_t)(uint32_t)rnd();
			m->seq = (uint32_t)rnd();
			m->a = rnd() % 4 ? rnd() % 16 : rnd();
			m->b = rnd();
			m->c = rnd();
			m->d = rnd();
		}
		__atomic_store_n(&r->prod, cons + k, __ATOMIC_RELEASE);
	}
}

static void garbage_fifo(struct seg *s, int live)
{
	struct mst_shm_ring *r = &s->qps[0].cmd;
	uint32_t cons = __atomic_load_n(&r->cons, __ATOMIC_ACQUIRE);
	struct mst_shm_sock *sk = &s->socks[live];

	__atomic_store_n(&sk->tx_tail, (uint32_t)rnd(), __ATOMIC_RELEASE);
	__atomic_store_n(&sk->rx_head, (uint32_t)rnd(), __ATOMIC_RELEASE);
	for (uint32_t i = 0; i < 2; i++) {
		struct mst_shm_msg *m = &r->slots[(cons + i) & (MST_SHM_RING_SLOTS - 1)];

		memset(m, 0, sizeof(*m));
		m->op = i ? MST_CMD_RX_DONE : MST_CMD_TX;
		m->sock = live;
	}
	__atomic_store_n(&r->prod, cons + 2, __ATOMIC_RELEASE);
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: app_hostile --ctl PATH --connect IP:PORT [--seconds S] [--seed N]\n"
		   "Attach to mustangd raw and write garbage into the segment (a test).\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ctl", required_argument, NULL, 'c' },
		{ "connect", required_argument, NULL, 'C' },
		{ "seconds", required_argument, NULL, 's' },
		{ "seed", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct sockaddr_in dst = { .sin_family = AF_INET };
	const char *ctl = NULL, *to = NULL;
	double seconds = 3;
	uint64_t rounds[3] = { 0 }, deadline;
	struct seg s = { .ctl = -1 };
	char ip[32], *colon;
	int o, live, r;

	while ((o = getopt_long(argc, argv, "c:C:s:r:h", opts, NULL)) != -1) {
		switch (o) {
		case 'c': ctl = optarg; break;
		case 'C': to = optarg; break;
		case 's': seconds = atof(optarg); break;
		case 'r': rng = strtoull(optarg, NULL, 0) | 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!ctl || !to || seconds <= 0 || strlen(to) >= sizeof(ip) ||
	    !(colon = strchr(strcpy(ip, to), ':'))) {
		usage(stderr);
		return 2;
	}
	*colon = '\0';
	dst.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, ip, &dst.sin_addr) != 1 || !dst.sin_port) {
		usage(stderr);
		return 2;
	}
	r = attach(ctl, &s);
	if (r < 0) {
		fprintf(stderr, "app_hostile: attach: %s\n", strerror(-r));
		return 1;
	}
	live = open_connection(&s, &dst);
	if (live < 0) {
		fprintf(stderr, "app_hostile: connection to %s: %s\n", to, strerror(-live));
		return 1;
	}
	printf("app_hostile: attached (%zu MiB segment, %u qps, %u sockets), live socket %d\n",
	       s.size >> 20, s.h->n_qps, s.h->n_socks, live);
	fflush(stdout);
	deadline = now_ns() + (uint64_t)(seconds * 1e9);
	for (uint64_t i = 0; now_ns() < deadline; i++) {
		unsigned kind = i < FIFO_FIRST ? 2 : i % 3;

		switch (kind) {
		case 0: garbage_bytes(&s); break;
		case 1: garbage_commands(&s, live); break;
		case 2: garbage_fifo(&s, live); break;
		}
		rounds[kind]++;
		usleep(500); /* let the engine read it (2 cores are shared) */
	}
	printf("app_hostile: %llu byte rounds, %llu command rounds, %llu fifo rounds\n",
	       (unsigned long long)rounds[0], (unsigned long long)rounds[1],
	       (unsigned long long)rounds[2]);
	return 0;
}
