/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Randomized robustness test for transport/net: random and mutated frames,
 * random receive flags, a moving clock and timers. Asserts no crash, no
 * leak, no double free, every transmitted frame well-formed in size, and
 * that every frame the stack did not answer was counted somewhere.
 * Seed with NET_FUZZ_SEED, size with NET_FUZZ_ITERS.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net_helper.h"

static uint64_t rng_state;

static uint32_t rnd(void)
{
	/* xorshift64* */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 2685821657736338717ull) >> 32);
}

static uint64_t env_u64(const char *name, uint64_t dflt)
{
	const char *s = getenv(name);

	return s ? strtoull(s, NULL, 0) : dflt;
}

/* A valid frame of a random kind, for mutation. */
static uint16_t seed_frame(uint8_t *b)
{
	uint8_t l4[600], data[300];
	uint16_t n, plen = (uint16_t)(rnd() % 300);
	uint8_t proto = NET_IP_PROTO_UDP;
	uint32_t src = rnd() % 4 ? PEER_IP : ip4(10, 0, 0, (uint8_t)(rnd() % 8 + 2));

	for (unsigned i = 0; i < plen; i++)
		data[i] = (uint8_t)rnd();
	memcpy(b, rnd() % 8 ? our_mac : bcast_mac, 6);
	memcpy(b + 6, peer_mac, 6);
	switch (rnd() % 5) {
	case 0: /* ARP */
		wr16(b + 12, NET_ETHERTYPE_ARP);
		wr16(b + 14, 1);
		wr16(b + 16, 0x0800);
		b[18] = 6;
		b[19] = 4;
		wr16(b + 20, (uint16_t)(rnd() % 2 + 1));
		memcpy(b + 22, peer_mac, 6);
		b[27] = (uint8_t)rnd();
		memcpy(b + 28, &src, 4);
		memset(b + 32, 0, 6);
		{
			uint32_t t = OUR_IP;

			memcpy(b + 38, &t, 4);
		}
		return 42;
	case 1: /* echo request */
		n = build_icmp_echo(l4, 8, (uint16_t)rnd(), (uint16_t)rnd(), data, plen);
		proto = NET_IP_PROTO_ICMP;
		break;
	case 2: /* UDP echo */
		n = build_udp(l4, src, OUR_IP, (uint16_t)(rnd() % 2000 + 1), 7, data, plen,
			      rnd() % 2);
		break;
	case 3: /* UDP closed port */
		n = build_udp(l4, src, OUR_IP, 5000, (uint16_t)rnd(), data, plen, true);
		break;
	default: /* other protocol */
		memcpy(l4, data, plen);
		n = plen;
		wr16(b + 12, NET_ETHERTYPE_IPV4);
		return (uint16_t)(14 + build_ipv4(b + 14, src, OUR_IP, (uint8_t)rnd(), l4, n));
	}
	wr16(b + 12, NET_ETHERTYPE_IPV4);
	return (uint16_t)(14 + build_ipv4(b + 14, src, OUR_IP, proto, l4, n));
}

static void test_net_fuzz_random_and_mutated_frames(void **state)
{
	struct net_fix *f = *state;
	uint64_t iters = env_u64("NET_FUZZ_ITERS", 100000);
	uint64_t answered = 0, frames = 0;
	uint8_t b[1600] = { 0 };

	rng_state = env_u64("NET_FUZZ_SEED", 0x9e3779b97f4a7c15ull) | 1;
	for (uint64_t it = 0; it < iters; it++) {
		uint64_t before = drops_total(&f->st);
		struct mst_pkt *p;
		uint16_t len;

		if (rnd() % 4 == 0) {
			/* Pure garbage, sometimes addressed to us. */
			len = (uint16_t)(rnd() % 200);
			for (unsigned i = 0; i < len; i++)
				b[i] = (uint8_t)rnd();
			if (len >= 14 && rnd() % 2) {
				memcpy(b, our_mac, 6);
				wr16(b + 12, rnd() % 2 ? NET_ETHERTYPE_IPV4 : NET_ETHERTYPE_ARP);
			}
		} else {
			unsigned flips;

			len = seed_frame(b);
			flips = rnd() % 4;
			for (unsigned i = 0; i < flips; i++) {
				unsigned at = 12 + rnd() % (unsigned)(len - 12);

				b[at] ^= (uint8_t)(1u << (rnd() % 8));
			}
			if (rnd() % 3 == 0)
				len = (uint16_t)(rnd() % (len + 1u));
			else if (rnd() % 5 == 0)
				len = (uint16_t)(len + rnd() % 30); /* trailing bytes */
			if (len >= 34 && rnd() % 2 && (b[14] >> 4) == 4 &&
			    (b[14] & 15) * 4 + 14 <= len) {
				/* Repair the IP checksum so mutations reach L4. */
				struct mst_pkt tmp = { .data = b, .len = len };

				fix_ip_cksum(&tmp);
			}
		}
		p = fake_alloc(f);
		memcpy(p->data, b, len);
		p->len = len;
		p->tailroom = (uint16_t)(p->tailroom - len);
		p->flags = rnd() % 8 ? 0 : rnd() & 0xf;
		net_input(f->ns, p, f->now);
		frames++;

		f->now += rnd() % 20000000u; /* up to 20 ms */
		if (rnd() % 16 == 0)
			net_timer(f->ns, f->now);

		for (unsigned i = 0; i < f->fio.n_tx; i++) {
			const struct mst_pkt *t = f->fio.tx[i];

			assert_true(t->len >= 42);
			assert_true(t->len <= 14 + f->conf.mtu);
		}
		if (f->fio.n_tx || net_arp_pending_count(f->ns))
			answered++;
		else if (drops_total(&f->st) == before &&
			 f->st.ctr[MST_CTR_arp_rx] == 0)
			fail_msg("frame %llu neither answered nor counted",
				 (unsigned long long)it);
		fake_tx_clear(f);
		f->st.ctr[MST_CTR_arp_rx] = 0;

		/* Buffers in use: only frames waiting for ARP. */
		if (f->fio.in_use != net_arp_pending_count(f->ns))
			fail_msg("frame %llu: %u buffers in use, %u pending", (unsigned long long)it,
				 f->fio.in_use, net_arp_pending_count(f->ns));
	}
	print_message("fuzz: %llu frames, %llu answered, %llu drops\n",
		      (unsigned long long)frames, (unsigned long long)answered,
		      (unsigned long long)drops_total(&f->st));
}

static int fuzz_setup(void **state)
{
	if (net_setup(state))
		return -1;
	fix_learn(*state, PEER_IP, peer_mac);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_net_fuzz_random_and_mutated_frames,
						fuzz_setup, net_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
