/* SPDX-License-Identifier: BSD-3-Clause */
/* Unit tests: Internet checksum helpers (transport/net/cksum.c). */
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include "net_helper.h"

/* Reference: RFC 1071 over big-endian 16-bit words, byte by byte. */
static uint16_t ref_cksum(const uint8_t *b, size_t len)
{
	uint64_t sum = 0;

	for (size_t i = 0; i < len; i += 2)
		sum += (uint32_t)b[i] << 8 | (i + 1 < len ? b[i + 1] : 0);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum; /* host order value of the field */
}

static uint16_t stored(uint16_t c) /* value read back as big-endian */
{
	uint8_t b[2];

	memcpy(b, &c, 2);
	return rd16(b);
}

static void test_cksum_rfc1071_example(void **state)
{
	/* RFC 1071 §3: words 0001 f203 f4f5 f6f7 sum to ddf2. */
	static const uint8_t b[] = { 0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7 };

	(void)state;
	assert_int_equal(stored(net_cksum_fold(net_cksum_partial(b, sizeof(b), 0))),
			 (uint16_t)~0xddf2);
}

static void test_cksum_known_ipv4_header_verifies(void **state)
{
	static const uint8_t h[] = { 0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
				     0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7 };
	uint8_t z[20];

	(void)state;
	assert_int_equal(net_cksum_fold(net_cksum_partial(h, sizeof(h), 0)), 0);
	memcpy(z, h, 20);
	z[10] = z[11] = 0;
	assert_int_equal(stored(net_cksum_fold(net_cksum_partial(z, 20, 0))), 0xb861);
}

static void test_cksum_matches_reference_all_lengths(void **state)
{
	uint8_t b[600];

	(void)state;
	srand(1);
	for (size_t len = 0; len <= sizeof(b); len++) {
		for (size_t i = 0; i < len; i++)
			b[i] = (uint8_t)rand();
		assert_int_equal(stored(net_cksum_fold(net_cksum_partial(b, len, 0))),
				 ref_cksum(b, len));
	}
}

static void test_cksum_odd_length_pads_with_zero(void **state)
{
	uint8_t b[4] = { 0x12, 0x34, 0x56, 0 };

	(void)state;
	assert_int_equal(net_cksum_fold(net_cksum_partial(b, 3, 0)),
			 net_cksum_fold(net_cksum_partial(b, 4, 0)));
}

static void test_cksum_chains_over_even_chunks(void **state)
{
	uint8_t b[101];

	(void)state;
	for (size_t i = 0; i < sizeof(b); i++)
		b[i] = (uint8_t)(i * 37 + 11);
	assert_int_equal(net_cksum_fold(net_cksum_partial(b + 40, 61,
							  net_cksum_partial(b, 40, 0))),
			 net_cksum_fold(net_cksum_partial(b, sizeof(b), 0)));
}

static void test_cksum_jumbo_all_ones_no_overflow(void **state)
{
	static uint8_t b[9000];

	(void)state;
	memset(b, 0xff, sizeof(b));
	assert_int_equal(stored(net_cksum_fold(net_cksum_partial(b, sizeof(b), 0xffffffffu))),
			 ref_cksum(b, sizeof(b)));
}

static void test_cksum_pseudo_header_matches_explicit_bytes(void **state)
{
	uint32_t src = ip4(192, 168, 1, 10), dst = ip4(10, 200, 3, 255);
	uint8_t ph[12];

	(void)state;
	memcpy(ph, &src, 4);
	memcpy(ph + 4, &dst, 4);
	ph[8] = 0;
	ph[9] = 17;
	wr16(ph + 10, 0x1234);
	assert_int_equal(net_cksum_fold(net_pseudo_sum(src, dst, 17, 0x1234)),
			 net_cksum_fold(net_cksum_partial(ph, sizeof(ph), 0)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cksum_rfc1071_example),
		cmocka_unit_test(test_cksum_known_ipv4_header_verifies),
		cmocka_unit_test(test_cksum_matches_reference_all_lengths),
		cmocka_unit_test(test_cksum_odd_length_pads_with_zero),
		cmocka_unit_test(test_cksum_chains_over_even_chunks),
		cmocka_unit_test(test_cksum_jumbo_all_ones_no_overflow),
		cmocka_unit_test(test_cksum_pseudo_header_matches_explicit_bytes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
