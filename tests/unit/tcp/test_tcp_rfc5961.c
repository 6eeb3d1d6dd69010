/* SPDX-License-Identifier: BSD-3-Clause */
/* RFC 5961 (blind in-window attacks) and RFC 7323 PAWS. */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "tcp_helper.h"

#define PORT 5003

static void open_conn(struct th_conn *c)
{
	th_passive_open(c, th_sim_default(), PORT, 50000, NULL, NULL);
}

/* §3.2: RST with seq in window but != RCV.NXT -> challenge ACK, no reset. */
static void test_tcp_rst_in_window_not_exact_challenge_ack(void **state)
{
	(void)state;
	struct th_conn c;

	open_conn(&c);
	th_send_at(&c, TH_RST, c.snd_nxt + 1000, 0, NULL, 0);
	th_expect_ack(&c, c.snd_nxt);
	assert_int_equal(th_state(c.sim, c.fd), TH_ESTABLISHED);
	assert_int_equal(th_ctr(c.sim, "tcp_challenge_acks"), 1);
	assert_int_equal(th_ctr(c.sim, "tcp_rst_in_window"), 1);
	mst_sim_destroy(c.sim);
}

static void test_tcp_rst_exact_resets(void **state)
{
	(void)state;
	struct th_conn c;

	open_conn(&c);
	th_send(&c, TH_RST | TH_ACK, NULL, 0);
	th_expect_none(c.sim);
	assert_int_equal(th_state(c.sim, c.fd), TH_CLOSED);
	assert_int_equal(th_ctr(c.sim, "tcp_resets_rx"), 1);
	mst_sim_destroy(c.sim);
}

/* §3.2: RST outside the window is silently dropped. */
static void test_tcp_rst_out_of_window_ignored(void **state)
{
	(void)state;
	struct th_conn c;

	open_conn(&c);
	th_send_at(&c, TH_RST, c.snd_nxt + 0x40000000u, 0, NULL, 0);
	th_send_at(&c, TH_RST, c.snd_nxt - 1, 0, NULL, 0);
	th_expect_none(c.sim);
	assert_int_equal(th_state(c.sim, c.fd), TH_ESTABLISHED);
	assert_int_equal(th_ctr(c.sim, "tcp_rst_out_of_window"), 2);
	mst_sim_destroy(c.sim);
}

/* §4.2: any SYN in a synchronized state -> challenge ACK, connection kept. */
static void test_tcp_syn_on_established_challenge_ack(void **state)
{
	(void)state;
	struct th_conn c;
	struct th_tx t;

	open_conn(&c);
	th_tx_init(&c, &t, TH_SYN);
	t.seq = c.snd_nxt + 10; /* in window */
	th_input(c.sim, &t);
	th_expect_ack(&c, c.snd_nxt);
	t.seq = c.snd_nxt - 12345; /* out of window too */
	mst_sim_advance(c.sim, TH_MS(1000));
	th_input(c.sim, &t);
	th_expect_ack(&c, c.snd_nxt);
	assert_int_equal(th_state(c.sim, c.fd), TH_ESTABLISHED);
	assert_true(th_ctr(c.sim, "tcp_challenge_acks") >= 1);
	mst_sim_destroy(c.sim);
}

/* RFC 9293 §3.10.7.4: ACK of data never sent -> send ACK, drop the segment
 * (its data is not delivered). */
static void test_tcp_ack_beyond_snd_max_dropped(void **state)
{
	(void)state;
	struct th_conn c;
	char b[8];

	open_conn(&c);
	th_send_at(&c, TH_ACK | TH_PSH, c.snd_nxt, c.rcv_nxt + 5000, "evil", 4);
	th_expect_ack(&c, c.snd_nxt);
	assert_int_equal(mst_sim_recv(c.sim, c.fd, b, sizeof(b)), -EAGAIN);
	assert_int_equal(th_ctr(c.sim, "tcp_ack_too_new"), 1);
	assert_int_equal(th_state(c.sim, c.fd), TH_ESTABLISHED);
	mst_sim_destroy(c.sim);
}

/* RFC 5961 §5.2: ACK below SND.UNA - MAX.SND.WND -> challenge ACK, drop. */
static void test_tcp_ack_too_old_dropped(void **state)
{
	(void)state;
	struct th_conn c;
	char b[8];

	open_conn(&c);
	th_send_at(&c, TH_ACK | TH_PSH, c.snd_nxt, c.rcv_nxt - 0x40000000u, "evil", 4);
	th_expect_ack(&c, c.snd_nxt);
	assert_int_equal(mst_sim_recv(c.sim, c.fd, b, sizeof(b)), -EAGAIN);
	assert_int_equal(th_ctr(c.sim, "tcp_ack_too_old"), 1);
	mst_sim_destroy(c.sim);
}

/* Challenge ACKs are rate limited per connection (default 10/s). */
static void test_tcp_challenge_ack_rate_limited(void **state)
{
	(void)state;
	struct th_conn c;
	int acks = 0;

	open_conn(&c);
	for (int i = 0; i < 50; i++) {
		th_send_at(&c, TH_RST, c.snd_nxt + 100 + (uint32_t)i, 0, NULL, 0);
		acks += th_drain(c.sim);
	}
	printf("# %d challenge ACKs for 50 in-window RSTs\n", acks);
	assert_true(acks >= 1 && acks <= 10);
	assert_int_equal(th_ctr(c.sim, "tcp_challenge_limited"), 50 - acks);
	/* a second later the budget is back */
	mst_sim_advance(c.sim, TH_MS(1100));
	th_send_at(&c, TH_RST, c.snd_nxt + 100, 0, NULL, 0);
	th_expect_ack(&c, c.snd_nxt);
	mst_sim_destroy(c.sim);
}

/* RFC 7323 §5.3: a segment with TSval older than TS.Recent is dropped and
 * ACKed; its data is not delivered. */
static void test_tcp_paws_old_tsval_dropped(void **state)
{
	(void)state;
	struct th_conn c;
	struct th_tx t;
	char b[8];

	open_conn(&c);
	assert_true(c.ts);
	th_send(&c, TH_ACK | TH_PSH, "good", 4);
	th_drain(c.sim);
	assert_int_equal(mst_sim_recv(c.sim, c.fd, b, sizeof(b)), 4);
	th_tx_init(&c, &t, TH_ACK | TH_PSH);
	t.opts.tsval = c.tsval - 100; /* older */
	t.data = "old!";
	t.len = 4;
	th_input(c.sim, &t);
	th_expect_ack(&c, c.snd_nxt);
	assert_int_equal(mst_sim_recv(c.sim, c.fd, b, sizeof(b)), -EAGAIN);
	assert_int_equal(th_ctr(c.sim, "tcp_paws"), 1);
	/* a fresh timestamp is accepted again */
	th_send(&c, TH_ACK | TH_PSH, "new!", 4);
	assert_int_equal(mst_sim_recv(c.sim, c.fd, b, sizeof(b)), 4);
	assert_memory_equal(b, "new!", 4);
	mst_sim_destroy(c.sim);
}

/* TSval wraps around 2^32: newer by modular comparison is not "old". */
static void test_tcp_paws_tsval_wraparound(void **state)
{
	(void)state;
	struct th_conn c;
	struct th_opts o = th_syn_opts();
	char b[8];

	o.tsval = 0xfffffff0u;
	th_passive_open(&c, th_sim_default(), PORT, 1, &o, NULL);
	c.tsval = 0x10; /* wrapped, but newer */
	th_send(&c, TH_ACK | TH_PSH, "wrap", 4);
	assert_int_equal(mst_sim_recv(c.sim, c.fd, b, sizeof(b)), 4);
	assert_int_equal(th_ctr(c.sim, "tcp_paws"), 0);
	mst_sim_destroy(c.sim);
}

/* RFC 7323 §5.3 R1: a RST is not subject to PAWS. */
static void test_tcp_paws_not_applied_to_rst(void **state)
{
	(void)state;
	struct th_conn c;
	struct th_tx t;

	open_conn(&c);
	th_tx_init(&c, &t, TH_RST);
	t.opts.tsval = c.tsval - 1000;
	th_input(c.sim, &t);
	assert_int_equal(th_state(c.sim, c.fd), TH_CLOSED);
	mst_sim_destroy(c.sim);
}

/* RFC 7323 §4.3 / RFC 9293 §3.10.7.4 (packetdrill ts_recent/invalid_ack):
 * a FIN whose ACK is above SND.NXT is dropped and ACKed, and its TSval
 * must not become TS.Recent; else the next valid segment (a lower TSval)
 * fails PAWS and so does every one after it. */
static void test_tcp_ts_recent_not_updated_by_ack_above_snd_nxt(void **state)
{
	(void)state;
	struct th_conn c;
	struct th_tx t;
	struct th_seg s;
	uint32_t good_tsval;
	char b[1000];

	open_conn(&c);
	assert_true(c.ts);
	good_tsval = c.tsval;
	th_tx_init(&c, &t, TH_FIN | TH_ACK);
	t.ack = c.rcv_nxt + 9998;       /* far above SND.NXT */
	t.opts.tsval = good_tsval + 200000;
	th_input(c.sim, &t);
	th_cexpect(&c, TH_ACK, &s);      /* RFC 9293: ACK, drop */
	assert_int_equal(s.ack, c.snd_nxt); /* the FIN was not taken */
	assert_int_equal(th_ctr(c.sim, "tcp_ack_too_new"), 1);
	c.tsval = good_tsval;           /* the peer's real clock */
	memset(b, 'd', sizeof(b));
	th_send(&c, TH_ACK, b, sizeof(b));
	th_cexpect(&c, TH_ACK, &s);
	assert_int_equal(s.ack, c.snd_nxt);
	assert_int_equal(s.tsecr, good_tsval + 1); /* echoes the valid segment */
	assert_int_equal(th_ctr(c.sim, "tcp_paws"), 0);
	assert_int_equal(mst_sim_recv(c.sim, c.fd, b, sizeof(b)), (int)sizeof(b));
	mst_sim_destroy(c.sim);
}

/* Same for segments at RCV.NXT that step 4 or 5 answer with a challenge
 * ACK (RFC 5961 §4.2 SYN, §5.2 ACK below SND.UNA - MAX.SND.WND): not
 * acceptable, so their TSval is not remembered either. */
static void test_tcp_ts_recent_not_updated_by_challenged_segments(void **state)
{
	(void)state;
	struct th_conn c;
	struct th_tx t;
	struct th_seg s;
	uint32_t good_tsval;
	char b[8];

	open_conn(&c);
	good_tsval = c.tsval;
	th_tx_init(&c, &t, TH_SYN);
	t.opts.tsval = good_tsval + 600000;
	th_input(c.sim, &t);
	th_cexpect(&c, TH_ACK, &s);
	assert_int_equal(th_ctr(c.sim, "tcp_syn_in_sync"), 1);
	th_tx_init(&c, &t, TH_ACK | TH_PSH);
	t.ack = c.rcv_nxt - 0x40000000u;
	t.opts.tsval = good_tsval + 700000;
	t.data = "evil";
	t.len = 4;
	th_input(c.sim, &t);
	th_cexpect(&c, TH_ACK, &s);
	assert_int_equal(th_ctr(c.sim, "tcp_ack_too_old"), 1);
	c.tsval = good_tsval;
	th_send(&c, TH_ACK | TH_PSH, "data", 4);
	th_cexpect(&c, TH_ACK, &s);
	assert_int_equal(s.tsecr, good_tsval + 1);
	assert_int_equal(mst_sim_recv(c.sim, c.fd, b, sizeof(b)), 4);
	assert_memory_equal(b, "data", 4);
	assert_int_equal(th_ctr(c.sim, "tcp_paws"), 0);
	mst_sim_destroy(c.sim);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tcp_rst_in_window_not_exact_challenge_ack),
		cmocka_unit_test(test_tcp_rst_exact_resets),
		cmocka_unit_test(test_tcp_rst_out_of_window_ignored),
		cmocka_unit_test(test_tcp_syn_on_established_challenge_ack),
		cmocka_unit_test(test_tcp_ack_beyond_snd_max_dropped),
		cmocka_unit_test(test_tcp_ack_too_old_dropped),
		cmocka_unit_test(test_tcp_challenge_ack_rate_limited),
		cmocka_unit_test(test_tcp_paws_old_tsval_dropped),
		cmocka_unit_test(test_tcp_paws_tsval_wraparound),
		cmocka_unit_test(test_tcp_paws_not_applied_to_rst),
		cmocka_unit_test(test_tcp_ts_recent_not_updated_by_ack_above_snd_nxt),
		cmocka_unit_test(test_tcp_ts_recent_not_updated_by_challenged_segments),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
