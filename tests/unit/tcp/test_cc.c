/* SPDX-License-Identifier: BSD-3-Clause */
/* Unit tests: congestion control registry, NewReno and CUBIC
 * (transport/tcp/tcp_cc.c, tcp_newreno.c, tcp_cubic.c). */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "transport/tcp/tcp_cc.h"

#define MSS 1000u
#define MS 1000000ull
#define SEC (1000 * MS)

static struct tcp_cc_state fresh(const struct tcp_cc_ops *cc)
{
	struct tcp_cc_state s;

	memset(&s, 0x5a, sizeof(s)); /* init must not depend on what was there */
	s.mss = MSS;
	s.flight = 0;
	s.srtt_us = 0;
	s.min_rtt_us = 0;
	s.now_ns = 10 * SEC;
	cc->init(&s);
	return s;
}

/* One RTT of a sender that keeps cwnd full: cwnd/MSS ACKs of `per_ack`
 * segments each, spread evenly over the RTT. */
static void one_rtt(const struct tcp_cc_ops *cc, struct tcp_cc_state *s, uint32_t rtt_us,
		    unsigned per_ack)
{
	unsigned acks = s->cwnd / (MSS * per_ack);
	uint64_t step;

	if (acks == 0)
		acks = 1;
	step = (uint64_t)rtt_us * 1000 / acks;
	s->srtt_us = rtt_us;
	s->min_rtt_us = rtt_us;
	for (unsigned i = 0; i < acks; i++) {
		s->flight = s->cwnd;
		s->now_ns += step;
		cc->ack_received(s, per_ack * MSS);
	}
}

/* ------------------------------------------------------------ registry */

static void nop_hook(struct tcp_cc_state *s)
{
	(void)s;
}

static void nop_ack(struct tcp_cc_state *s, uint32_t acked)
{
	(void)s;
	(void)acked;
}

#define OPS(n)                                                                                 \
	{                                                                                      \
		.version = TCP_CC_OPS_VERSION, .name = (n), .init = nop_hook,                  \
		.ack_received = nop_ack, .congestion_event = nop_hook,                         \
		.recovery_exit = nop_hook, .rto_timeout = nop_hook,                            \
	}

static void test_cc_registry_lookup_builtins(void **state)
{
	assert_ptr_equal(tcp_cc_lookup("newreno"), &tcp_cc_newreno);
	assert_ptr_equal(tcp_cc_lookup("cubic"), &tcp_cc_cubic);
	assert_null(tcp_cc_lookup("bbr"));
	assert_null(tcp_cc_lookup(""));
	assert_null(tcp_cc_lookup(NULL));
	assert_null(tcp_cc_lookup("CUBIC"));
	assert_int_equal(tcp_cc_newreno.version, TCP_CC_OPS_VERSION);
	assert_int_equal(tcp_cc_cubic.version, TCP_CC_OPS_VERSION);
}

static void test_cc_registry_rejects_bad_ops(void **state)
{
	static struct tcp_cc_ops bad_version = OPS("v2"), no_name = OPS(NULL), empty = OPS(""),
				 no_hook = OPS("nohook");

	bad_version.version = TCP_CC_OPS_VERSION + 1;
	no_hook.rto_timeout = NULL;
	assert_int_equal(tcp_cc_register(NULL), -EINVAL);
	assert_int_equal(tcp_cc_register(&bad_version), -EINVAL);
	bad_version.version = 0;
	assert_int_equal(tcp_cc_register(&bad_version), -EINVAL);
	assert_int_equal(tcp_cc_register(&no_name), -EINVAL);
	assert_int_equal(tcp_cc_register(&empty), -EINVAL);
	assert_int_equal(tcp_cc_register(&no_hook), -EINVAL);
	assert_null(tcp_cc_lookup("v2"));
	assert_null(tcp_cc_lookup("nohook"));
}

static void test_cc_registry_add_duplicates_full(void **state)
{
	static struct tcp_cc_ops mine = OPS("mine"), dup_cubic = OPS("cubic"), dup_mine = OPS("mine");
	static struct tcp_cc_ops many[32];
	static char names[32][8];
	int rc = 0;
	unsigned added = 0;

	assert_int_equal(tcp_cc_register(&mine), 0);
	assert_ptr_equal(tcp_cc_lookup("mine"), &mine);
	assert_int_equal(tcp_cc_register(&mine), -EEXIST);
	assert_int_equal(tcp_cc_register(&dup_mine), -EEXIST); /* by name, not pointer */
	assert_int_equal(tcp_cc_register(&dup_cubic), -EEXIST);
	assert_ptr_equal(tcp_cc_lookup("cubic"), &tcp_cc_cubic);

	for (unsigned i = 0; i < 32; i++) {
		snprintf(names[i], sizeof(names[i]), "x%u", i);
		many[i] = (struct tcp_cc_ops)OPS(names[i]);
		rc = tcp_cc_register(&many[i]);
		if (rc)
			break;
		added++;
	}
	assert_int_equal(rc, -ENOSPC);
	assert_true(added >= 8); /* room for a few more than the built-ins */
	for (unsigned i = 0; i < added; i++)
		assert_ptr_equal(tcp_cc_lookup(names[i]), &many[i]);
	assert_null(tcp_cc_lookup(names[added]));
	assert_ptr_equal(tcp_cc_lookup("newreno"), &tcp_cc_newreno);
}

/* ------------------------------------------------------------ NewReno */

static void test_newreno_init(void **state)
{
	struct tcp_cc_state s = fresh(&tcp_cc_newreno);

	assert_int_equal(s.cwnd, 10 * MSS); /* IW10, RFC 6928 */
	assert_int_equal(s.ssthresh, UINT32_MAX / 2);
}

static void test_newreno_slow_start_abc(void **state)
{
	struct tcp_cc_state s = fresh(&tcp_cc_newreno);

	tcp_cc_newreno.ack_received(&s, MSS);
	assert_int_equal(s.cwnd, 11 * MSS);
	tcp_cc_newreno.ack_received(&s, 100); /* partial: byte counted */
	assert_int_equal(s.cwnd, 11 * MSS + 100);
	tcp_cc_newreno.ack_received(&s, 2 * MSS);
	assert_int_equal(s.cwnd, 13 * MSS + 100);
	tcp_cc_newreno.ack_received(&s, 5 * MSS); /* stretch ACK: L = 2 MSS */
	assert_int_equal(s.cwnd, 15 * MSS + 100);

	/* Doubling per RTT with an ACK per segment. */
	s = fresh(&tcp_cc_newreno);
	for (int r = 0; r < 5; r++) {
		uint32_t before = s.cwnd;

		one_rtt(&tcp_cc_newreno, &s, 10000, 1);
		assert_int_equal(s.cwnd, 2 * before);
	}
	/* and with delayed ACKs (one per two segments), too: that is what L = 2 is for */
	s = fresh(&tcp_cc_newreno);
	one_rtt(&tcp_cc_newreno, &s, 10000, 2);
	assert_int_equal(s.cwnd, 20 * MSS);
}

static void test_newreno_slow_start_stops_at_ssthresh(void **state)
{
	struct tcp_cc_state s = fresh(&tcp_cc_newreno);

	s.ssthresh = 10 * MSS + 500;
	tcp_cc_newreno.ack_received(&s, 2 * MSS);
	assert_int_equal(s.cwnd, s.ssthresh);
	/* The 1500 bytes past ssthresh were credited to avoidance: cwnd - 1500
	 * more bytes make one MSS. */
	tcp_cc_newreno.ack_received(&s, s.cwnd - 1500 - 1);
	assert_int_equal(s.cwnd, 10 * MSS + 500);
	tcp_cc_newreno.ack_received(&s, 1);
	assert_int_equal(s.cwnd, 11 * MSS + 500);
}

static void test_newreno_congestion_avoidance_one_mss_per_rtt(void **state)
{
	struct tcp_cc_state s = fresh(&tcp_cc_newreno);

	s.cwnd = s.ssthresh = 20 * MSS;
	for (unsigned r = 1; r <= 10; r++) {
		one_rtt(&tcp_cc_newreno, &s, 10000, 1);
		assert_int_equal(s.cwnd, (20 + r) * MSS);
	}
	/* Large windows: byte counting still grows (mss*mss/cwnd would be 0). */
	s.cwnd = s.ssthresh = 2000000 * MSS;
	for (unsigned i = 0; i < 2000000; i++)
		tcp_cc_newreno.ack_received(&s, MSS);
	assert_int_equal(s.cwnd, 2000001 * MSS);
}

static void test_newreno_fast_recovery(void **state)
{
	struct tcp_cc_state s = fresh(&tcp_cc_newreno);

	s.cwnd = 40 * MSS;
	s.flight = 30 * MSS;
	tcp_cc_newreno.congestion_event(&s);
	assert_int_equal(s.ssthresh, 15 * MSS);
	assert_int_equal(s.cwnd, 18 * MSS); /* + 3 MSS for the dupacks */
	tcp_cc_newreno.recovery_exit(&s);
	assert_int_equal(s.cwnd, 15 * MSS);
	/* then avoidance, +1 MSS per RTT */
	one_rtt(&tcp_cc_newreno, &s, 10000, 1);
	assert_int_equal(s.cwnd, 16 * MSS);

	/* tiny flight: ssthresh floor of 2 MSS */
	s.flight = MSS;
	tcp_cc_newreno.congestion_event(&s);
	assert_int_equal(s.ssthresh, 2 * MSS);
	assert_int_equal(s.cwnd, 5 * MSS);
}

static void test_newreno_rto(void **state)
{
	struct tcp_cc_state s = fresh(&tcp_cc_newreno);

	s.cwnd = 50 * MSS;
	s.flight = 40 * MSS;
	tcp_cc_newreno.rto_timeout(&s);
	assert_int_equal(s.ssthresh, 20 * MSS);
	assert_int_equal(s.cwnd, MSS); /* loss window */
	/* slow start back up to ssthresh, then linear */
	for (int i = 0; i < 5; i++)
		one_rtt(&tcp_cc_newreno, &s, 10000, 1);
	assert_int_equal(s.cwnd, 20 * MSS);
	s.flight = 0;
	tcp_cc_newreno.rto_timeout(&s);
	assert_int_equal(s.ssthresh, 2 * MSS);
	assert_int_equal(s.cwnd, MSS);
}

/* ------------------------------------------------------------ CUBIC */

#define C_CUBIC 0.4
#define BETA 0.7

static double segs(const struct tcp_cc_state *s)
{
	return s->cwnd / (double)MSS;
}

/* cwnd 100 segments, a loss, recovery, then `n` RTTs; trace[i] = cwnd in
 * segments after RTT i + 1, times[i] = seconds since recovery ended. */
static struct tcp_cc_state cubic_after_loss(double w, uint32_t rtt_us, unsigned n,
					    double *trace, double *times)
{
	struct tcp_cc_state s = fresh(&tcp_cc_cubic);
	uint64_t t0;

	s.cwnd = (uint32_t)(w * MSS);
	s.flight = s.cwnd;
	tcp_cc_cubic.congestion_event(&s);
	tcp_cc_cubic.recovery_exit(&s);
	t0 = s.now_ns;
	for (unsigned i = 0; i < n; i++) {
		one_rtt(&tcp_cc_cubic, &s, rtt_us, 1);
		trace[i] = segs(&s);
		times[i] = (double)(s.now_ns - t0) / 1e9;
	}
	return s;
}

static void test_cubic_init_and_loss_no_inflation(void **state)
{
	struct tcp_cc_state s = fresh(&tcp_cc_cubic);

	assert_int_equal(s.cwnd, 10 * MSS);
	assert_int_equal(s.ssthresh, UINT32_MAX / 2);
	s.cwnd = 100 * MSS;
	s.flight = 60 * MSS; /* CUBIC reduces from cwnd, not flight */
	tcp_cc_cubic.congestion_event(&s);
	assert_int_equal(s.ssthresh, 70 * MSS);
	assert_int_equal(s.cwnd, 70 * MSS); /* RFC 9438 §4.6: no +3 MSS */
	tcp_cc_cubic.recovery_exit(&s);
	assert_int_equal(s.cwnd, 70 * MSS);
	s.cwnd = 2 * MSS;
	tcp_cc_cubic.congestion_event(&s);
	assert_int_equal(s.ssthresh, 2 * MSS);
	/* slow start is NewReno's */
	s = fresh(&tcp_cc_cubic);
	tcp_cc_cubic.ack_received(&s, 5 * MSS);
	assert_int_equal(s.cwnd, 12 * MSS);
}

static void test_cubic_concave_then_convex_around_wmax(void **state)
{
	enum { N = 120 };
	const uint32_t rtt = 100000; /* 100 ms */
	double tr[N], tm[N];
	const double k = cbrt((100.0 - 70.0) / C_CUBIC); /* 4.217 s */

	cubic_after_loss(100.0, rtt, N, tr, tm);
	assert_true(fabs(k - 4.2172) < 1e-3);

	/*
	 * Follows W_cubic(t) (it aims at W_cubic(t + RTT) over each RTT), or
	 * W_est where that is higher: around the plateau, Reno's 0.53 and then
	 * 1 segment per RTT catches up (RFC 9438 §4.3).
	 */
	double est = 70.0;

	for (unsigned i = 0; i < N; i++) {
		double d = tm[i] - k;
		double w = C_CUBIC * d * d * d + 100.0;

		est += est < 100.0 ? 3.0 * (1 - BETA) / (1 + BETA) : 1.0;
		assert_true(tr[i] >= w - 1.0);
		assert_true(tr[i] <= (w > est ? w : est) + 1.5);
	}
	/* Increase per RTT: shrinking before K (concave), growing after (convex). */
	unsigned ik = (unsigned)(k / 0.1);

	assert_true(tr[0] - 70.0 > tr[ik / 2] - tr[ik / 2 - 1]);
	assert_true(tr[ik / 2] - tr[ik / 2 - 1] > tr[ik] - tr[ik - 1]);
	assert_true(tr[ik + 20] - tr[ik + 19] > tr[ik + 2] - tr[ik + 1]);
	assert_true(tr[N - 1] - tr[N - 2] > tr[ik + 20] - tr[ik + 19]);
	/* Plateau: within a segment of W_max around K, never far above it. */
	assert_true(fabs(tr[ik] - 100.0) < 1.5);
	for (unsigned i = 0; i < ik - 5; i++)
		assert_true(tr[i] < 100.0);
	assert_true(tr[N - 1] > 100.0 + 0.4 * pow(tm[N - 1] - k, 3) - 1.0);
}

static void test_cubic_fast_convergence(void **state)
{
	/* Windows large enough that the cubic curve, not W_est, leads. */
	double tr[10], tm[10];
	struct tcp_cc_state s = cubic_after_loss(1000.0, 100000, 10, tr, tm);

	/* A second loss below W_max = 1000: W_max = 800 * (1 + 0.7) / 2 = 680. */
	s.cwnd = 800 * MSS;
	tcp_cc_cubic.congestion_event(&s);
	assert_int_equal(s.cwnd, 560 * MSS);
	tcp_cc_cubic.recovery_exit(&s);
	uint64_t t0 = s.now_ns;
	double k = cbrt((680.0 - 560.0) / C_CUBIC); /* 6.7 s */

	while ((double)(s.now_ns - t0) / 1e9 < k)
		one_rtt(&tcp_cc_cubic, &s, 100000, 1);
	assert_true(fabs(segs(&s) - 680.0) < 2.0); /* plateau at 680, not 800 */
	for (int r = 0; r < 10; r++)
		one_rtt(&tcp_cc_cubic, &s, 100000, 1);
	assert_true(segs(&s) < 690.0);

	/* A loss at or above W_max: W_max = cwnd, no release. */
	s.cwnd = 900 * MSS;
	tcp_cc_cubic.congestion_event(&s);
	tcp_cc_cubic.recovery_exit(&s);
	t0 = s.now_ns;
	k = cbrt((900.0 - 630.0) / C_CUBIC);
	while ((double)(s.now_ns - t0) / 1e9 < k)
		one_rtt(&tcp_cc_cubic, &s, 100000, 1);
	assert_true(fabs(segs(&s) - 900.0) < 2.0);
}

static void test_cubic_reno_friendly_region(void **state)
{
	/* Short RTT, small window: Reno would out-grow the cubic curve, so
	 * CUBIC follows W_est (RFC 9438 §4.3). */
	enum { N = 200 };
	double tr[N], tm[N];

	cubic_after_loss(20.0, 1000, N, tr, tm); /* W_max 20, cwnd 14, 1 ms RTT */
	double k = cbrt((20.0 - 14.0) / C_CUBIC);

	for (unsigned i = 0; i < N; i++) {
		double d = tm[i] - k;

		assert_true(tr[i] >= C_CUBIC * d * d * d + 20.0 - 1.0); /* at least cubic */
	}
	/* alpha = 3 (1 - 0.7) / 1.7 ~ 0.53 seg/RTT until W_est reaches the
	 * pre-loss 20 segments (~11 RTTs), then 1 seg/RTT, like Reno. */
	assert_true(tr[5] - 14.0 > 5 * 0.45 && tr[5] - 14.0 < 6 * 0.6);
	double per_rtt = (tr[N - 1] - tr[N - 101]) / 100.0;

	assert_true(per_rtt > 0.9 && per_rtt < 1.1);
	/* the curve alone would still be below 20 segments now */
	assert_true(tm[N - 1] < k);
	assert_true(tr[N - 1] > 150.0);
}

static void test_cubic_rto(void **state)
{
	struct tcp_cc_state s = fresh(&tcp_cc_cubic);

	s.cwnd = 100 * MSS;
	s.flight = 100 * MSS;
	tcp_cc_cubic.rto_timeout(&s);
	assert_int_equal(s.ssthresh, 70 * MSS); /* flight * beta */
	assert_int_equal(s.cwnd, MSS);
	s.flight = MSS;
	tcp_cc_cubic.rto_timeout(&s);
	assert_int_equal(s.ssthresh, 2 * MSS);

	/* After an RTO, slow start to ssthresh, then K = 0: W_max is the cwnd
	 * where avoidance starts, and growth is convex from there (§4.8). */
	s = fresh(&tcp_cc_cubic);
	s.cwnd = 100 * MSS;
	s.flight = 100 * MSS;
	tcp_cc_cubic.rto_timeout(&s);
	while (s.cwnd < s.ssthresh)
		one_rtt(&tcp_cc_cubic, &s, 100000, 1);
	assert_true(s.cwnd >= 70 * MSS && s.cwnd < 71 * MSS); /* + what crossed */

	enum { N = 80 };
	double inc[N], prev = segs(&s), origin = segs(&s);
	uint64_t t0 = s.now_ns;

	for (int r = 0; r < N; r++) {
		one_rtt(&tcp_cc_cubic, &s, 100000, 1);
		inc[r] = segs(&s) - prev;
		prev = segs(&s);
		assert_true(inc[r] >= 0.0);
	}
	/* Early on W_est leads (~0.53 seg/RTT); then the convex curve. */
	assert_true(inc[5] > 0.4 && inc[5] < 0.7);
	assert_true(inc[79] > inc[60] && inc[60] > inc[45] && inc[45] > 1.0);
	double t = (double)(s.now_ns - t0) / 1e9;
	double w = origin + C_CUBIC * t * t * t;

	assert_true(fabs(segs(&s) - w) < 0.03 * w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cc_registry_lookup_builtins),
		cmocka_unit_test(test_cc_registry_rejects_bad_ops),
		cmocka_unit_test(test_cc_registry_add_duplicates_full),
		cmocka_unit_test(test_newreno_init),
		cmocka_unit_test(test_newreno_slow_start_abc),
		cmocka_unit_test(test_newreno_slow_start_stops_at_ssthresh),
		cmocka_unit_test(test_newreno_congestion_avoidance_one_mss_per_rtt),
		cmocka_unit_test(test_newreno_fast_recovery),
		cmocka_unit_test(test_newreno_rto),
		cmocka_unit_test(test_cubic_init_and_loss_no_inflation),
		cmocka_unit_test(test_cubic_concave_then_convex_around_wmax),
		cmocka_unit_test(test_cubic_fast_convergence),
		cmocka_unit_test(test_cubic_reno_friendly_region),
		cmocka_unit_test(test_cubic_rto),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
