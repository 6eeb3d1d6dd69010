/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * pony_hostile: a misbehaving Pony app for pony_hostile.sh. It attaches
 * through libmustang's internals (client/priv.h) so that it can post raw
 * commands, opens Pony endpoints, then for --seconds, in turns:
 *   commands  random Pony commands (SOCKET a=3, BIND, PONY_SEND/READ/
 *             RELEASE/REG/UNREG, CLOSE, RX_DONE) on socket indices around
 *             its endpoints, with random arguments: offsets past the
 *             arena, huge lengths, unknown keys and buffer ids, services
 *             0 and 65535, sends to --peer on random services
 *   records   its record rings' rx_head set to random values (and
 *             sometimes to rx_tail, so that the engine has room again)
 *   arena     random bytes over its whole Pony arena (message buffers
 *             and regions the engine may be sending from)
 * It drains its event ring now and then (ignoring what it finds) and, with
 * --crash, ends with abort() instead of a clean exit.
 *
 *   pony_hostile --ctl PATH --peer IP [--seconds S] [--seed N] [--crash]
 *
 * Exit 0 when it attached and ran, 1 otherwise, 2 on usage errors.
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "priv.h"

#include "hostile_util.h"


/* Something plausible-but-wrong for a 64-bit argument. */
static uint64_t garbage(void)
{
	const struct mst_shm_hdr *h = mst_lib.hdr;

	switch (rnd() % 8) {
	case 0: return 0;
	case 1: return rnd();
	case 2: return h->pony_size - rnd() % 128;
	case 3: return h->pony_size + rnd() % 4096;
	case 4: return rnd() % 65536;
	case 5: return UINT64_MAX - rnd() % 16;
	case 6: return (uint64_t)h->pony_max_msg + rnd() % 2;
	default: return rnd() % (1u << 20);
	}
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "ctl", required_argument, NULL, 'c' },
		{ "peer", required_argument, NULL, 'p' },
		{ "seconds", required_argument, NULL, 's' },
		{ "seed", required_argument, NULL, 'r' },
		{ "crash", no_argument, NULL, 'k' },
		{ NULL, 0, NULL, 0 },
	};
	static const uint16_t ops[] = { MST_CMD_SOCKET, MST_CMD_BIND, MST_CMD_PONY_SEND,
					MST_CMD_PONY_READ, MST_CMD_PONY_RELEASE, MST_CMD_PONY_REG,
					MST_CMD_PONY_UNREG, MST_CMD_CLOSE, MST_CMD_RX_DONE,
					MST_CMD_TX, MST_CMD_NOTIFY, MST_CMD_PONY_SEND,
					MST_CMD_PONY_READ };
	const char *ctl = NULL;
	uint32_t peer = 0;
	double seconds = 3;
	bool crash = false;
	int eps[8], n_eps = 0, opt;
	uint64_t end, rounds = 0, cmds = 0;
	struct thr *t;

	while ((opt = getopt_long(argc, argv, "c:p:s:r:k", lo, NULL)) != -1) {
		switch (opt) {
		case 'c': ctl = optarg; break;
		case 'p':
			if (inet_pton(AF_INET, optarg, &peer) != 1)
				return 2;
			break;
		case 's': seconds = atof(optarg); break;
		case 'r': rng ^= strtoull(optarg, NULL, 0) * 0x9e3779b97f4a7c15ull; break;
		case 'k': crash = true; break;
		default: return 2;
		}
	}
	if (!ctl || !peer) {
		fprintf(stderr, "usage: pony_hostile --ctl PATH --peer IP [--seconds S] [--seed N] [--crash]\n");
		return 2;
	}
	if (mst_init(ctl) < 0) {
		perror("pony_hostile: mst_init");
		return 1;
	}
	for (int i = 0; i < 4; i++) {
		int fd = mst_pony_open((uint16_t)(2000 + i));
		uint64_t key;

		if (fd < 0) {
			perror("pony_hostile: mst_pony_open");
			return 1;
		}
		eps[n_eps++] = fd;
		(void)mst_pony_reg_alloc(fd, 4096, MST_PONY_REMOTE_READ, &key);
		(void)mst_pony_send(fd, peer, 7, 0, "hello", 5, 1); /* a real flow */
	}
	t = thr_get();
	if (!t)
		return 1;
	printf("pony_hostile: attached, %d endpoints, pony arena %llu bytes\n", n_eps,
	       (unsigned long long)mst_lib.hdr->pony_size);
	fflush(stdout);
	end = now_ns() + (uint64_t)(seconds * 1e9);
	while (now_ns() < end) {
		uint32_t base = (uint32_t)(eps[rnd() % n_eps] - MST_FD_SOCK_BASE);

		switch (rounds++ % 3) {
		case 0:
			for (int k = 0; k < 64; k++) {
				struct mst_shm_msg m = {
					.op = ops[rnd() % (sizeof(ops) / sizeof(ops[0]))],
					.sock = (int32_t)(base + rnd() % 5) - 2,
					.a = garbage(), .b = garbage(), .c = garbage(), .d = rnd(),
					.e = garbage(),
				};

				if (m.op == MST_CMD_SOCKET)
					m.a = rnd() % 2 ? MST_PONY_SOCK_TYPE : rnd() % 5;
				if ((m.op == MST_CMD_PONY_SEND || m.op == MST_CMD_PONY_READ) && rnd() % 2)
					m.c = peer | (rnd() % 65536) << 32;
				if (m.op == MST_CMD_CLOSE && rnd() % 8)
					m.op = MST_CMD_PONY_SEND; /* keep some endpoints alive */
				if (cmd_post(t, &m) < 0)
					break;
				cmds++;
			}
			break;
		case 1:
			for (uint32_t i = 0; i < mst_lib.n_socks && i < base + 8; i++) {
				struct mst_shm_sock *s = &mst_lib.socks[i];

				__atomic_store_n(&s->rx_head,
						 rnd() % 4 ? (uint32_t)rnd() : __atomic_load_n(&s->rx_tail, __ATOMIC_ACQUIRE),
						 __ATOMIC_RELEASE);
			}
			break;
		default: {
			uint64_t *p = (uint64_t *)(mst_lib.base + mst_lib.hdr->pony_off);
			uint64_t n = mst_lib.hdr->pony_size / 8, span = n < 65536 ? n : 65536;
			uint64_t at = n > span ? rnd() % (n - span) : 0;

			for (uint64_t i = 0; i < span; i++)
				p[at + i] = rnd();
			break;
		}
		}
		(void)thr_dispatch(t); /* keep the event ring moving; ignore it */
	}
	printf("pony_hostile: %llu rounds, %llu raw commands\n", (unsigned long long)rounds,
	       (unsigned long long)cmds);
	fflush(stdout);
	if (crash)
		abort();
	mst_fini();
	return 0;
}
