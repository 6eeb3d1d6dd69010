/* SPDX-License-Identifier: BSD-3-Clause */
/* Unit tests: TCP option parsing and building (transport/tcp/tcp_opts.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "transport/tcp/tcp_opts.h"

#define PARSE(syn, ...)                                                                        \
	({                                                                                     \
		const uint8_t b_[] = {__VA_ARGS__};                                            \
		tcp_opts_parse(b_, sizeof(b_), (syn), &o);                                     \
	})

static void test_opts_parse_linux_syn(void **state)
{
	/* What Linux sends in a SYN: MSS, SACK_PERM, TS, NOP, WS. */
	const uint8_t syn[20] = {2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0x11, 0x22, 0x33, 0x44,
				 0, 0, 0, 0, 1, 3, 3, 7};
	struct tcp_opts o;

	assert_int_equal(tcp_opts_parse(syn, sizeof(syn), true, &o), 0);
	assert_true(o.has_mss);
	assert_int_equal(o.mss, 1460);
	assert_true(o.sack_ok);
	assert_true(o.has_ts);
	assert_int_equal(o.ts_val, 0x11223344);
	assert_int_equal(o.ts_ecr, 0);
	assert_true(o.has_wscale);
	assert_int_equal(o.wscale, 7);
	assert_int_equal(o.n_sack, 0);
}

static void test_opts_syn_only_options_ignored_after_syn(void **state)
{
	const uint8_t syn[20] = {2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 9,
				 0, 0, 0, 5, 1, 3, 3, 7};
	struct tcp_opts o;

	assert_int_equal(tcp_opts_parse(syn, sizeof(syn), false, &o), 0);
	assert_false(o.has_mss);
	assert_false(o.sack_ok);
	assert_false(o.has_wscale);
	assert_true(o.has_ts); /* TS is valid on every segment */
	assert_int_equal(o.ts_val, 9);
	assert_int_equal(o.ts_ecr, 5);
}

static void test_opts_empty_nops_eol(void **state)
{
	struct tcp_opts o;

	assert_int_equal(tcp_opts_parse(NULL, 0, true, &o), 0);
	assert_false(o.has_mss || o.has_ts || o.sack_ok || o.has_wscale);
	assert_int_equal(PARSE(true, 1, 1, 1, 1), 0);
	/* EOL ends parsing: what follows (even garbage) is padding */
	assert_int_equal(PARSE(true, 2, 4, 1, 0, 0, 2, 0, 0xff), 0);
	assert_true(o.has_mss);
	assert_int_equal(o.mss, 256);
	assert_int_equal(PARSE(true, 0), 0);
	assert_int_equal(PARSE(true, 1, 0, 8), 0);
}

static void test_opts_unknown_skipped_by_length(void **state)
{
	struct tcp_opts o;

	/* MPTCP-ish kind 30 length 6, experimental 254 length 2, then MSS */
	assert_int_equal(PARSE(true, 30, 6, 1, 2, 3, 4, 254, 2, 2, 4, 0x23, 0x28), 0);
	assert_true(o.has_mss);
	assert_int_equal(o.mss, 9000);
	/* an unknown option's body that looks like options is not parsed */
	assert_int_equal(PARSE(true, 99, 6, 2, 4, 0x05, 0xb4), 0);
	assert_false(o.has_mss);
}

static void test_opts_malformed_lengths(void **state)
{
	struct tcp_opts o;

	assert_int_equal(PARSE(true, 2, 0, 5, 0xb4), -EINVAL);       /* zero length */
	assert_int_equal(PARSE(true, 99, 0), -EINVAL);               /* unknown, zero */
	assert_int_equal(PARSE(true, 99, 1, 1, 1), -EINVAL);         /* unknown, one */
	assert_int_equal(PARSE(true, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0), -EINVAL); /* overlong */
	assert_int_equal(PARSE(true, 99, 5, 1, 1), -EINVAL);         /* past the end */
	assert_int_equal(PARSE(true, 2, 4, 5), -EINVAL);             /* truncated */
	assert_int_equal(PARSE(true, 1, 1, 2), -EINVAL);             /* no length byte */
	assert_int_equal(PARSE(false, 8), -EINVAL);
	assert_int_equal(PARSE(false, 99), -EINVAL);
	assert_int_equal(PARSE(true, 2, 255, 0, 0), -EINVAL);
}

static void test_opts_wrong_fixed_lengths(void **state)
{
	struct tcp_opts o;

	for (int syn = 0; syn < 2; syn++) {
		assert_int_equal(PARSE(syn, 2, 3, 5, 1, 1, 1), -EINVAL);    /* MSS 3 */
		assert_int_equal(PARSE(syn, 2, 5, 5, 0xb4, 0, 1), -EINVAL); /* MSS 5 */
		assert_int_equal(PARSE(syn, 3, 2, 1, 1), -EINVAL);          /* WS 2 */
		assert_int_equal(PARSE(syn, 3, 4, 7, 0), -EINVAL);          /* WS 4 */
		assert_int_equal(PARSE(syn, 4, 3, 0, 1), -EINVAL);          /* SACK_PERM 3 */
		assert_int_equal(PARSE(syn, 8, 8, 0, 0, 0, 0, 0, 0), -EINVAL); /* TS 8 */
		assert_int_equal(PARSE(syn, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), -EINVAL);
	}
}

static void test_opts_sack_bad_counts(void **state)
{
	struct tcp_opts o;
	uint8_t b[44] = {5, 42};

	assert_int_equal(PARSE(false, 5, 2, 1, 1), -EINVAL); /* no block */
	assert_int_equal(PARSE(false, 5, 6, 0, 0, 0, 1), -EINVAL);
	assert_int_equal(PARSE(false, 5, 9, 0, 0, 0, 1, 0, 0, 0), -EINVAL);
	assert_int_equal(PARSE(false, 5, 14, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3), -EINVAL);
	/* five blocks: a valid length pattern, one block too many */
	for (unsigned i = 2; i < 42; i += 4)
		b[i + 3] = (uint8_t)i;
	assert_int_equal(tcp_opts_parse(b, 42, false, &o), -EINVAL);
	b[1] = 34; /* four blocks is the most */
	assert_int_equal(tcp_opts_parse(b, 34, false, &o), 0);
	assert_int_equal(o.n_sack, 4);
}

static void test_opts_sack_blocks_filtered_in_seq_space(void **state)
{
	struct tcp_opts o;

	assert_int_equal(PARSE(false, 1, 1, 5, 34,
			       0, 0, 0, 10, 0, 0, 0, 20,               /* ok */
			       0, 0, 0, 30, 0, 0, 0, 30,               /* empty */
			       0, 0, 0, 50, 0, 0, 0, 40,               /* inverted */
			       0xff, 0xff, 0xff, 0xf0, 0, 0, 0, 0x10), /* wraps 2^32: ok */
			 0);
	assert_int_equal(o.n_sack, 2);
	assert_int_equal(o.sack[0].start, 10);
	assert_int_equal(o.sack[0].end, 20);
	assert_int_equal(o.sack[1].start, 0xfffffff0u);
	assert_int_equal(o.sack[1].end, 0x10);
	/* more than half the space apart: "end" is before "start" */
	assert_int_equal(PARSE(false, 5, 10, 0, 0, 0, 0, 0x80, 0, 0, 1), 0);
	assert_int_equal(o.n_sack, 0);
}

static void test_opts_clamps(void **state)
{
	struct tcp_opts o;

	assert_int_equal(PARSE(true, 2, 4, 0, 0), 0);
	assert_int_equal(o.mss, TCP_MSS_MIN);
	assert_int_equal(PARSE(true, 2, 4, 0, 50), 0);
	assert_int_equal(o.mss, TCP_MSS_MIN);
	assert_int_equal(PARSE(true, 2, 4, 0, TCP_MSS_MIN), 0);
	assert_int_equal(o.mss, TCP_MSS_MIN);
	assert_int_equal(PARSE(true, 2, 4, 0, TCP_MSS_MIN + 1), 0);
	assert_int_equal(o.mss, TCP_MSS_MIN + 1);
	assert_int_equal(PARSE(true, 2, 4, 0xff, 0xff), 0);
	assert_int_equal(o.mss, 65535);
	assert_int_equal(PARSE(true, 3, 3, 14), 0);
	assert_int_equal(o.wscale, 14);
	assert_int_equal(PARSE(true, 3, 3, 15), 0);
	assert_int_equal(o.wscale, 14);
	assert_int_equal(PARSE(true, 3, 3, 255), 0);
	assert_int_equal(o.wscale, 14);
	assert_int_equal(PARSE(true, 3, 3, 0), 0);
	assert_true(o.has_wscale);
	assert_int_equal(o.wscale, 0);
}

static void test_opts_build_syn_linux_layout(void **state)
{
	struct tcp_opts o = {.has_mss = 1, .mss = 1460, .sack_ok = 1, .has_ts = 1,
			     .ts_val = 0x01020304, .ts_ecr = 0, .has_wscale = 1, .wscale = 9};
	const uint8_t want[20] = {2, 4, 0x05, 0xb4, 4, 2, 8, 10, 1, 2, 3, 4,
				  0, 0, 0, 0, 1, 3, 3, 9};
	uint8_t buf[TCP_OPTS_MAX_LEN];

	assert_int_equal(tcp_opts_build(buf, &o, true), 20);
	assert_memory_equal(buf, want, 20);
}

static void test_opts_build_parse_round_trip_syn(void **state)
{
	for (unsigned m = 0; m < 16; m++) {
		struct tcp_opts in = {.has_mss = m & 1, .sack_ok = (m >> 1) & 1,
				      .has_ts = (m >> 2) & 1, .has_wscale = (m >> 3) & 1,
				      .mss = 1220, .wscale = 3, .ts_val = 77, .ts_ecr = 88};
		struct tcp_opts out;
		uint8_t buf[TCP_OPTS_MAX_LEN];
		unsigned n = tcp_opts_build(buf, &in, true);

		assert_int_equal(n % 4, 0);
		assert_true(n <= 20);
		assert_int_equal(tcp_opts_parse(buf, n, true, &out), 0);
		assert_int_equal(out.has_mss, in.has_mss);
		assert_int_equal(out.sack_ok, in.sack_ok);
		assert_int_equal(out.has_ts, in.has_ts);
		assert_int_equal(out.has_wscale, in.has_wscale);
		if (in.has_mss)
			assert_int_equal(out.mss, 1220);
		if (in.has_wscale)
			assert_int_equal(out.wscale, 3);
		if (in.has_ts) {
			assert_int_equal(out.ts_val, 77);
			assert_int_equal(out.ts_ecr, 88);
		}
	}
}

static void test_opts_build_parse_round_trip_sack(void **state)
{
	for (int ts = 0; ts < 2; ts++) {
		for (unsigned n = 0; n <= TCP_MAX_SACK_BLOCKS; n++) {
			struct tcp_opts in = {.has_ts = (uint8_t)ts, .ts_val = 5, .ts_ecr = 6,
					      .n_sack = (uint8_t)n};
			struct tcp_opts out;
			uint8_t buf[TCP_OPTS_MAX_LEN + 8];
			unsigned fit = ts ? 3 : 4, want_n = n < fit ? n : fit;

			for (unsigned i = 0; i < n; i++) {
				in.sack[i].start = 0xfffff000u + i * 3000u;
				in.sack[i].end = in.sack[i].start + 1000;
			}
			memset(buf, 0xee, sizeof(buf));
			unsigned len = tcp_opts_build(buf, &in, false);

			assert_int_equal(len, (ts ? 12 : 0) + (want_n ? 4 + 8 * want_n : 0));
			assert_true(len <= TCP_OPTS_MAX_LEN);
			assert_int_equal(buf[TCP_OPTS_MAX_LEN], 0xee); /* no overrun */
			assert_int_equal(tcp_opts_parse(buf, len, false, &out), 0);
			assert_int_equal(out.has_ts, ts);
			assert_int_equal(out.n_sack, want_n);
			for (unsigned i = 0; i < want_n; i++) {
				assert_int_equal(out.sack[i].start, in.sack[i].start);
				assert_int_equal(out.sack[i].end, in.sack[i].end);
			}
		}
	}
}

static void test_opts_build_ignores_syn_fields_on_data(void **state)
{
	struct tcp_opts in = {.has_mss = 1, .mss = 1460, .sack_ok = 1, .has_wscale = 1};
	uint8_t buf[TCP_OPTS_MAX_LEN];

	assert_int_equal(tcp_opts_build(buf, &in, false), 0);
	in.n_sack = 1; /* and SACK blocks are not put in a SYN */
	assert_int_equal(tcp_opts_build(buf, &in, true), 4 + 4 + 4);
}

/* Random bytes never crash the parser, and what it accepts is in range. */
static void test_opts_random_bytes_fuzz(void **state)
{
	uint64_t x = 88172645463325252ull;

	for (int iter = 0; iter < 200000; iter++) {
		uint8_t buf[TCP_OPTS_MAX_LEN];
		unsigned len = (unsigned)(iter % (TCP_OPTS_MAX_LEN + 1));
		struct tcp_opts o;

		for (unsigned i = 0; i < len; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			/* bias toward small kinds and lengths so real options appear */
			buf[i] = (x >> 60) < 12 ? (uint8_t)(x % 11) : (uint8_t)x;
		}
		int rc = tcp_opts_parse(buf, len, iter & 1, &o);

		assert_true(rc == 0 || rc == -EINVAL);
		if (rc)
			continue;
		assert_true(o.n_sack <= TCP_MAX_SACK_BLOCKS);
		if (o.has_mss)
			assert_true(o.mss >= TCP_MSS_MIN);
		if (o.has_wscale)
			assert_true(o.wscale <= TCP_WSCALE_MAX);
		for (unsigned i = 0; i < o.n_sack; i++)
			assert_true((int32_t)(o.sack[i].end - o.sack[i].start) > 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_opts_parse_linux_syn),
		cmocka_unit_test(test_opts_syn_only_options_ignored_after_syn),
		cmocka_unit_test(test_opts_empty_nops_eol),
		cmocka_unit_test(test_opts_unknown_skipped_by_length),
		cmocka_unit_test(test_opts_malformed_lengths),
		cmocka_unit_test(test_opts_wrong_fixed_lengths),
		cmocka_unit_test(test_opts_sack_bad_counts),
		cmocka_unit_test(test_opts_sack_blocks_filtered_in_seq_space),
		cmocka_unit_test(test_opts_clamps),
		cmocka_unit_test(test_opts_build_syn_linux_layout),
		cmocka_unit_test(test_opts_build_parse_round_trip_syn),
		cmocka_unit_test(test_opts_build_parse_round_trip_sack),
		cmocka_unit_test(test_opts_build_ignores_syn_fields_on_data),
		cmocka_unit_test(test_opts_random_bytes_fuzz),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
