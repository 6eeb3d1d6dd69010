/* SPDX-License-Identifier: BSD-3-Clause */
/* Unit tests: SipHash, ISNs and SYN cookies (transport/tcp/tcp_isn.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "transport/tcp/tcp_isn.h"

/* The key of the SipHash paper, appendix A: bytes 00..0f, little-endian. */
static const struct tcp_secret paper_key = {.k0 = 0x0706050403020100ull,
					    .k1 = 0x0f0e0d0c0b0a0908ull};
static const struct tcp_secret test_key = {.k0 = 0x243f6a8885a308d3ull,
					   .k1 = 0x13198a2e03707344ull};

#define LADDR 0x0a000001u /* any 32-bit values: the functions take wire order */
#define RADDR 0x0a000002u
#define LPORT 0x5000u
#define RPORT 0xd2c3u
#define PISN 0x12345678u
#define COUNT_NS (1ull << 36) /* one cookie counter step */
#define NOW (1000 * COUNT_NS + 12345)

static void test_siphash_reference_vectors(void **state)
{
	/* Paper appendix A (15 bytes) and the reference implementation's
	 * vectors.h for lengths around the 8-byte block boundary. */
	static const struct {
		unsigned len;
		uint64_t h;
	} v[] = {
		{0, 0x726fdb47dd0e0e31ull}, {1, 0x74f839c593dc67fdull},
		{2, 0x0d6c8009d9a94f5aull}, {3, 0x85676696d7fb7e2dull},
		{8, 0x93f5f5799a932462ull}, {15, 0xa129ca6149be45e5ull},
	};
	uint8_t msg[16];

	for (unsigned i = 0; i < sizeof(msg); i++)
		msg[i] = (uint8_t)i;
	for (unsigned i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		assert_int_equal(tcp_siphash(&paper_key, msg, v[i].len), v[i].h);
}

static void test_secret_init_random(void **state)
{
	struct tcp_secret a, b;

	tcp_secret_init(&a);
	tcp_secret_init(&b);
	assert_false(a.k0 == b.k0 && a.k1 == b.k1);
	assert_false(a.k0 == 0 && a.k1 == 0);
}

static void test_isn_advances_with_4us_clock(void **state)
{
	const uint64_t now = NOW - NOW % 4000; /* on a clock edge */
	uint32_t base = tcp_isn(&test_key, LADDR, LPORT, RADDR, RPORT, now);

	/* Same tuple: M ticks every 4 µs, F is constant. */
	assert_int_equal(tcp_isn(&test_key, LADDR, LPORT, RADDR, RPORT, now + 3999), base);
	assert_int_equal(tcp_isn(&test_key, LADDR, LPORT, RADDR, RPORT, now + 4000), base + 1);
	assert_int_equal(tcp_isn(&test_key, LADDR, LPORT, RADDR, RPORT, now + 4000000),
			 base + 1000);
	/* ~4.77 h wraps M: still the RFC 6528 clock, modulo 2^32 */
	assert_int_equal(tcp_isn(&test_key, LADDR, LPORT, RADDR, RPORT, now + (4000ull << 32)),
			 base);
}

static void test_isn_differs_by_tuple_and_secret(void **state)
{
	uint32_t base = tcp_isn(&test_key, LADDR, LPORT, RADDR, RPORT, NOW);
	struct tcp_secret other = test_key;

	assert_int_not_equal(tcp_isn(&test_key, LADDR + 1, LPORT, RADDR, RPORT, NOW), base);
	assert_int_not_equal(tcp_isn(&test_key, LADDR, LPORT + 1, RADDR, RPORT, NOW), base);
	assert_int_not_equal(tcp_isn(&test_key, LADDR, LPORT, RADDR + 1, RPORT, NOW), base);
	assert_int_not_equal(tcp_isn(&test_key, LADDR, LPORT, RADDR, RPORT + 1, NOW), base);
	/* swapping ends is another connection */
	assert_int_not_equal(tcp_isn(&test_key, RADDR, RPORT, LADDR, LPORT, NOW), base);
	other.k1 ^= 1;
	assert_int_not_equal(tcp_isn(&other, LADDR, LPORT, RADDR, RPORT, NOW), base);

	/* 4096 source ports: the ISNs are spread, not a sequence */
	static uint32_t seen[4096];
	unsigned dup = 0, low_bits_hist[16] = {0};

	for (unsigned p = 0; p < 4096; p++)
		seen[p] = tcp_isn(&test_key, LADDR, LPORT, RADDR, (uint16_t)(p + 1024), NOW);
	for (unsigned p = 0; p < 4096; p++) {
		low_bits_hist[seen[p] & 15]++;
		for (unsigned q = p + 1; q < 4096; q++)
			dup += seen[p] == seen[q];
	}
	assert_true(dup <= 1); /* birthday bound: 4096^2 / 2^33 ~ 0.002 */
	for (unsigned i = 0; i < 16; i++)
		assert_true(low_bits_hist[i] > 150 && low_bits_hist[i] < 370);
}

static uint32_t mk(const struct tcp_cookie_opts *o, uint64_t now)
{
	return tcp_cookie_make(&test_key, LADDR, LPORT, RADDR, RPORT, PISN, o, now);
}

static bool ck(uint32_t cookie, uint64_t now, struct tcp_cookie_opts *o)
{
	return tcp_cookie_check(&test_key, LADDR, LPORT, RADDR, RPORT, PISN, cookie, now, o);
}

static void test_cookie_round_trip_all_options(void **state)
{
	static const uint16_t tab[] = {88, 536, 1220, 1300, 1380, 1440, 1460, 8940};
	unsigned n = 0;

	for (unsigned m = 0; m < 8; m++) {
		for (unsigned ws = 0; ws <= 15; ws++) {
			for (unsigned sack = 0; sack < 2; sack++) {
				struct tcp_cookie_opts in = {
					.mss = tab[m], .sack_ok = sack, .has_wscale = ws != 15,
					.wscale = ws == 15 ? 0 : (uint8_t)ws};
				struct tcp_cookie_opts out;
				uint32_t c = mk(&in, NOW + n * 977);

				memset(&out, 0xa5, sizeof(out));
				assert_true(ck(c, NOW + n * 977 + 1000000, &out));
				assert_int_equal(out.mss, tab[m]);
				assert_int_equal(out.sack_ok, in.sack_ok);
				assert_int_equal(out.has_wscale, in.has_wscale);
				assert_int_equal(out.wscale, in.wscale);
				n++;
			}
		}
	}
}

/* The decoded MSS is the biggest table entry not above what was offered. */
static void test_cookie_mss_rounds_down(void **state)
{
	static const struct {
		uint16_t offered, got;
	} v[] = {
		{88, 88},     {100, 88},    {535, 88},    {536, 536},   {1219, 536},
		{1220, 1220}, {1299, 1220}, {1400, 1380}, {1452, 1440}, {1459, 1440},
		{1460, 1460}, {1500, 1460}, {8939, 1460}, {8940, 8940}, {65535, 8940},
		{0, 536}, /* no MSS option: RFC 9293 default */
	};

	for (unsigned i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		struct tcp_cookie_opts in = {.mss = v[i].offered}, out;

		assert_true(ck(mk(&in, NOW), NOW, &out));
		assert_int_equal(out.mss, v[i].got);
	}
	/* a wscale above 14 is recorded as 14 */
	struct tcp_cookie_opts in = {.mss = 1460, .has_wscale = true, .wscale = 200}, out;

	assert_true(ck(mk(&in, NOW), NOW, &out));
	assert_int_equal(out.wscale, 14);
}

static void test_cookie_valid_for_current_and_previous_counter(void **state)
{
	struct tcp_cookie_opts in = {.mss = 1460, .sack_ok = true}, out;
	uint64_t t0 = 77 * COUNT_NS + COUNT_NS - 1; /* last ns of counter 77 */
	uint32_t c = mk(&in, t0);

	assert_true(ck(c, t0, &out));
	assert_true(ck(c, t0 + 1, &out));                /* counter 78 */
	assert_true(ck(c, 79 * COUNT_NS - 1, &out));     /* last ns of 78 */
	assert_false(ck(c, 79 * COUNT_NS, &out));        /* 79: too old */
	assert_false(ck(c, 79 * COUNT_NS + 64 * COUNT_NS, &out)); /* 6-bit wrap */
	assert_false(ck(c, 77 * COUNT_NS - 1, &out));    /* from the future */
	assert_false(ck(c, 77 * COUNT_NS + 64 * COUNT_NS, &out)); /* same 6 bits, 64 later */
	/* counter 64 has the low bits of 0, but the MAC covers the full counter */
	c = mk(&in, 5);
	assert_true(ck(c, 6, &out));
	assert_false(ck(c, 64 * COUNT_NS, &out));
}

static void test_cookie_rejects_other_connections(void **state)
{
	struct tcp_cookie_opts in = {.mss = 1460, .has_wscale = true, .wscale = 7}, out;
	uint32_t c = mk(&in, NOW);
	struct tcp_secret other = test_key;

	other.k0 ^= 1u << 20;
	assert_true(ck(c, NOW, &out));
	assert_false(tcp_cookie_check(&test_key, LADDR ^ 1, LPORT, RADDR, RPORT, PISN, c, NOW, &out));
	assert_false(tcp_cookie_check(&test_key, LADDR, LPORT ^ 1, RADDR, RPORT, PISN, c, NOW, &out));
	assert_false(tcp_cookie_check(&test_key, LADDR, LPORT, RADDR ^ 1, RPORT, PISN, c, NOW, &out));
	assert_false(tcp_cookie_check(&test_key, LADDR, LPORT, RADDR, RPORT ^ 1, PISN, c, NOW, &out));
	/* a replay of the handshake for another SYN (another peer ISN) */
	assert_false(tcp_cookie_check(&test_key, LADDR, LPORT, RADDR, RPORT, PISN + 1, c, NOW, &out));
	assert_false(tcp_cookie_check(&other, LADDR, LPORT, RADDR, RPORT, PISN, c, NOW, &out));
	/* no single bit of the cookie can be edited (e.g. to raise the MSS) */
	for (unsigned b = 0; b < 32; b++)
		assert_false(ck(c ^ (1u << b), NOW, &out));
	assert_false(ck(c + 1, NOW, &out));
	assert_false(ck(c - 1, NOW, &out));
}

static void test_cookie_random_values_rejected(void **state)
{
	uint64_t x = 0x9e3779b97f4a7c15ull;
	unsigned accepted = 0;
	struct tcp_cookie_opts out;

	/* Expected 10^6 * 2^-23 = 0.12 acceptances. */
	for (unsigned i = 0; i < 1000000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		accepted += ck((uint32_t)(x >> 17), NOW, &out);
	}
	assert_true(accepted <= 2);
}

static void test_cookies_differ_per_connection(void **state)
{
	struct tcp_cookie_opts in = {.mss = 1460};
	uint32_t a = mk(&in, NOW);

	assert_int_not_equal(a, tcp_cookie_make(&test_key, LADDR, LPORT, RADDR, RPORT, PISN + 1,
						&in, NOW));
	assert_int_not_equal(a, tcp_cookie_make(&test_key, LADDR, LPORT, RADDR, RPORT + 1, PISN,
						&in, NOW));
	/* and the options are not visible in the clear */
	struct tcp_cookie_opts in2 = {.mss = 536};
	uint32_t b = mk(&in2, NOW);

	assert_int_not_equal((a ^ b) & ~0xffu, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_siphash_reference_vectors),
		cmocka_unit_test(test_secret_init_random),
		cmocka_unit_test(test_isn_advances_with_4us_clock),
		cmocka_unit_test(test_isn_differs_by_tuple_and_secret),
		cmocka_unit_test(test_cookie_round_trip_all_options),
		cmocka_unit_test(test_cookie_mss_rounds_down),
		cmocka_unit_test(test_cookie_valid_for_current_and_previous_counter),
		cmocka_unit_test(test_cookie_rejects_other_connections),
		cmocka_unit_test(test_cookie_random_values_rejected),
		cmocka_unit_test(test_cookies_differ_per_connection),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
