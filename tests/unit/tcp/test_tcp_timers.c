/* SPDX-License-Identifier: BSD-3-Clause */
/* RTO back-off and bounds, Karn's rule, keepalive. Virtual time only. */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "tcp_helper.h"

#define PORT 5004
#define SOL_TCP_ 6

static struct mst_sim *sim_rto(uint32_t min_ms, uint32_t max_ms)
{
	struct mst_sim_conf conf;

	th_conf(&conf);
	conf.rto_min_ms = min_ms;
	conf.rto_max_ms = max_ms;
	return th_sim_create(&conf);
}

/* RFC 6298 §5.5: each expiry doubles the RTO, capped at the maximum; the
 * first expiry is not earlier than the minimum RTO. */
static void test_tcp_rto_exponential_backoff_capped(void **state)
{
	(void)state;
	struct th_conn c;
	struct th_seg s;
	uint64_t t[16];
	int n = 0;

	th_passive_open(&c, sim_rto(300, 4000), PORT, 1, NULL, NULL);
	mst_sim_send(c.sim, c.fd, "data", 4);
	th_expect_data(&c, "data", 4);
	uint64_t t0 = mst_sim_now(c.sim);
	for (int ms = 0; ms < 20000; ms++) {
		mst_sim_advance(c.sim, TH_MS(1));
		while (th_output(c.sim, &s)) {
			assert_int_equal(s.seq, c.rcv_nxt - 4);
			assert_int_equal(s.len, 4);
			if (n < 16)
				t[n] = (mst_sim_now(c.sim) - t0) / 1000000;
			n++;
		}
	}
	printf("# retransmissions at (ms):");
	for (int i = 0; i < n && i < 16; i++)
		printf(" %llu", (unsigned long long)t[i]);
	printf("\n");
	assert_true(n >= 5);
	/* handshake RTT ~0 -> RTO = min 300 ms */
	assert_true(t[0] >= 300 && t[0] <= 330);
	for (int i = 1; i < n && i < 16; i++) {
		uint64_t gap = t[i] - t[i - 1], prev = i > 1 ? t[i - 1] - t[i - 2] : t[0];
		uint64_t want = prev * 2 > 4000 ? 4000 : prev * 2;
		if (gap + 20 < want || gap > want + 20)
			fail_msg("retransmission %d: gap %llu ms, want %llu", i, (unsigned long long)gap,
				 (unsigned long long)want);
	}
	assert_int_equal(th_ctr(c.sim, "tcp_rto_timeouts"), n);
	mst_sim_destroy(c.sim);
}

/* Karn: an ACK for retransmitted data gives no RTT sample (no timestamps). */
static void test_tcp_karn_no_sample_from_retransmission(void **state)
{
	(void)state;
	struct th_conn c;
	struct th_opts o = th_syn_opts();
	struct mst_sim_tcp_info ti;

	o.ts = false;
	th_passive_open(&c, sim_rto(200, 60000), PORT, 1, &o, NULL);
	mst_sim_tcp_info(c.sim, c.fd, &ti);
	uint32_t srtt0 = ti.srtt_us;
	mst_sim_send(c.sim, c.fd, "data", 4);
	th_expect_data(&c, "data", 4);
	mst_sim_tcp_info(c.sim, c.fd, &ti);
	for (uint32_t ms = 0; ms < ti.rto_ms * 3 + 10; ms++)
		mst_sim_advance(c.sim, TH_MS(1));
	assert_true(th_drain(c.sim) >= 2); /* at RTO and 3 RTO */
	th_send(&c, TH_ACK, NULL, 0);
	mst_sim_tcp_info(c.sim, c.fd, &ti);
	printf("# srtt before %u us, after ACK of a retransmission %u us\n", srtt0, ti.srtt_us);
	assert_int_equal(ti.srtt_us, srtt0);
	/* the next fresh segment is timed again */
	mst_sim_send(c.sim, c.fd, "more", 4);
	th_expect_data(&c, "more", 4);
	mst_sim_advance(c.sim, TH_MS(50));
	th_send(&c, TH_ACK, NULL, 0);
	mst_sim_tcp_info(c.sim, c.fd, &ti);
	assert_true(ti.srtt_us != srtt0);
	mst_sim_destroy(c.sim);
}

/* An RTT sample resets the backed-off RTO (RFC 6298 §5.7 keeps it until a
 * new sample): after recovery the next loss times out near the new RTO. */
static void test_tcp_rto_min_respected_with_tiny_rtt(void **state)
{
	(void)state;
	struct th_conn c;
	struct mst_sim_tcp_info ti;

	th_passive_open(&c, sim_rto(250, 60000), PORT, 1, NULL, NULL);
	for (int i = 0; i < 5; i++) {
		mst_sim_send(c.sim, c.fd, "x", 1);
		th_expect_data(&c, "x", 1);
		mst_sim_advance(c.sim, TH_US(100));
		th_send(&c, TH_ACK, NULL, 0);
	}
	mst_sim_tcp_info(c.sim, c.fd, &ti);
	assert_int_equal(ti.rto_ms, 250);
	mst_sim_destroy(c.sim);
}

static void set_keepalive_order(struct th_conn *c, int idle, int intvl, int cnt, bool on_first)
{
	int one = 1;

	if (on_first)
		assert_int_equal(mst_sim_setsockopt(c->sim, c->fd, SOL_SOCKET, SO_KEEPALIVE, &one, 4),
				 0);
	assert_int_equal(mst_sim_setsockopt(c->sim, c->fd, SOL_TCP_, 4, &idle, 4), 0);
	assert_int_equal(mst_sim_setsockopt(c->sim, c->fd, SOL_TCP_, 5, &intvl, 4), 0);
	assert_int_equal(mst_sim_setsockopt(c->sim, c->fd, SOL_TCP_, 6, &cnt, 4), 0);
	if (!on_first)
		assert_int_equal(mst_sim_setsockopt(c->sim, c->fd, SOL_SOCKET, SO_KEEPALIVE, &one, 4),
				 0);
}

static void set_keepalive(struct th_conn *c, int idle, int intvl, int cnt)
{
	set_keepalive_order(c, idle, intvl, cnt, false);
}

/* Linux (tcp_sock_set_keepidle_locked) re-arms the timer when TCP_KEEPIDLE
 * changes on a socket with SO_KEEPALIVE already on: the usual order. */
static void test_tcp_keepidle_after_so_keepalive_takes_effect(void **state)
{
	(void)state;
	struct th_conn c;
	int n = 0;

	th_passive_open(&c, th_sim_default(), PORT, 1, NULL, NULL);
	set_keepalive_order(&c, 10, 2, 3, true);
	for (int ms = 0; ms < 11000; ms++) {
		mst_sim_advance(c.sim, TH_MS(1));
		n += th_drain(c.sim);
	}
	assert_int_equal(n, 1);
	mst_sim_destroy(c.sim);
}

/* RFC 1122 4.2.3.6: probes after idle, seq = SND.NXT - 1; drop after cnt. */
static void test_tcp_keepalive_probes_then_drop(void **state)
{
	(void)state;
	struct th_conn c;
	struct th_seg s;
	uint64_t t[8];
	int n = 0;

	th_passive_open(&c, th_sim_default(), PORT, 1, NULL, NULL);
	set_keepalive(&c, 10, 2, 3);
	uint64_t t0 = mst_sim_now(c.sim);
	for (int ms = 0; ms < 30000 && th_state(c.sim, c.fd) != TH_CLOSED; ms++) {
		mst_sim_advance(c.sim, TH_MS(1));
		while (th_output(c.sim, &s)) {
			if (s.flags & TH_RST)
				continue;
			assert_int_equal(s.flags, TH_ACK);
			assert_int_equal(s.seq, c.rcv_nxt - 1);
			if (n < 8)
				t[n] = (mst_sim_now(c.sim) - t0) / 1000000;
			n++;
		}
	}
	printf("# keepalive probes at (ms):");
	for (int i = 0; i < n && i < 8; i++)
		printf(" %llu", (unsigned long long)t[i]);
	printf("\n");
	assert_int_equal(n, 3);
	assert_true(t[0] >= 10000 && t[0] <= 10050);
	assert_true(t[1] - t[0] >= 1990 && t[1] - t[0] <= 2050);
	assert_int_equal(th_state(c.sim, c.fd), TH_CLOSED);
	int err = 0;
	size_t len = sizeof(err);
	mst_sim_getsockopt(c.sim, c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
	assert_int_equal(err, ETIMEDOUT);
	assert_int_equal(th_ctr(c.sim, "tcp_keepalive_drops"), 1);
	assert_int_equal(th_ctr(c.sim, "tcp_keepalive_probes"), 3);
	mst_sim_destroy(c.sim);
}

static void test_tcp_keepalive_answered_keeps_connection(void **state)
{
	(void)state;
	struct th_conn c;
	struct th_seg s;
	int n = 0;

	th_passive_open(&c, th_sim_default(), PORT, 1, NULL, NULL);
	set_keepalive(&c, 5, 1, 2);
	for (int ms = 0; ms < 30000; ms++) {
		mst_sim_advance(c.sim, TH_MS(1));
		while (th_output(c.sim, &s)) {
			n++;
			th_send(&c, TH_ACK, NULL, 0);
		}
	}
	assert_true(n >= 4);
	assert_int_equal(th_state(c.sim, c.fd), TH_ESTABLISHED);
	mst_sim_destroy(c.sim);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tcp_rto_exponential_backoff_capped),
		cmocka_unit_test(test_tcp_karn_no_sample_from_retransmission),
		cmocka_unit_test(test_tcp_rto_min_respected_with_tiny_rtt),
		cmocka_unit_test(test_tcp_keepalive_probes_then_drop),
		cmocka_unit_test(test_tcp_keepalive_answered_keeps_connection),
		cmocka_unit_test(test_tcp_keepidle_after_so_keepalive_takes_effect),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
