/* SPDX-License-Identifier: BSD-3-Clause */
/* Connection teardown: active/passive/simultaneous close, half-close,
 * RST on close with unread data, RSTs received per state, TIME_WAIT. */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "tcp_helper.h"

#define PORT 5002

static struct mst_sim *sim_tw(uint32_t tw_ms)
{
	struct mst_sim_conf conf;

	th_conf(&conf);
	conf.timewait_ms = tw_ms;
	return th_sim_create(&conf);
}

static void step_ms(struct mst_sim *sim, unsigned ms)
{
	for (unsigned i = 0; i < ms; i++)
		mst_sim_advance(sim, TH_MS(1));
}

static void test_tcp_active_close_fin_wait_to_time_wait(void **state)
{
	(void)state;
	struct th_conn c;
	struct th_seg s;

	th_passive_open(&c, sim_tw(500), PORT, 1, NULL, NULL);
	assert_int_equal(mst_sim_shutdown(c.sim, c.fd, SHUT_WR), 0);
	th_cexpect(&c, TH_FIN | TH_ACK, &s);
	assert_int_equal(s.seq, c.rcv_nxt);
	c.rcv_nxt++;
	assert_int_equal(th_state(c.sim, c.fd), TH_FIN_WAIT_1);
	th_send(&c, TH_ACK, NULL, 0);
	assert_int_equal(th_state(c.sim, c.fd), TH_FIN_WAIT_2);
	th_expect_none(c.sim);
	th_send(&c, TH_FIN | TH_ACK, NULL, 0);
	th_expect_ack(&c, c.snd_nxt);
	assert_int_equal(th_state(c.sim, c.fd), TH_TIME_WAIT);
	assert_int_equal(mst_sim_close(c.sim, c.fd), 0);
	assert_int_equal(mst_sim_conn_count(c.sim), 1);
	/* a retransmitted FIN in TIME_WAIT is re-ACKed (RFC 9293 §3.10.7.4) */
	th_send_at(&c, TH_FIN | TH_ACK, c.snd_nxt - 1, c.rcv_nxt, NULL, 0);
	th_expect_ack(&c, c.snd_nxt);
	step_ms(c.sim, 490);
	assert_int_equal(mst_sim_conn_count(c.sim), 1);
	step_ms(c.sim, 20);
	assert_int_equal(mst_sim_conn_count(c.sim), 0);
	th_expect_none(c.sim);
	mst_sim_destroy(c.sim);
}

/* After close() the window stays open, so a peer that (like Linux) never
 * sends a FIN into a zero window can finish; the FIN is accepted. */
static void test_tcp_close_keeps_window_open_for_peer_fin(void **state)
{
	(void)state;
	struct th_conn c;
	struct th_seg s;

	th_passive_open(&c, sim_tw(500), PORT, 1, NULL, NULL);
	assert_int_equal(mst_sim_close(c.sim, c.fd), 0);
	th_cexpect(&c, TH_FIN | TH_ACK, &s);
	assert_true(s.win > 0);
	c.rcv_nxt++;
	th_send(&c, TH_ACK, NULL, 0);
	assert_int_equal(mst_sim_conn_count(c.sim), 1);
	th_send(&c, TH_FIN | TH_ACK, NULL, 0);
	th_cexpect(&c, TH_ACK, &s);
	assert_int_equal(s.ack, c.snd_nxt);
	assert_true(s.win > 0);
	mst_sim_destroy(c.sim);
}

static void test_tcp_passive_close_close_wait_last_ack(void **state)
{
	(void)state;
	struct th_conn c;
	struct th_seg s;
	char b[8];

	th_passive_open(&c, th_sim_default(), PORT, 1, NULL, NULL);
	th_send(&c, TH_FIN | TH_ACK, NULL, 0);
	th_expect_ack(&c, c.snd_nxt);
	assert_int_equal(th_state(c.sim, c.fd), TH_CLOSE_WAIT);
	assert_true(mst_sim_poll(c.sim, c.fd, POLLIN | POLLRDHUP) & POLLIN);
	assert_int_equal(mst_sim_recv(c.sim, c.fd, b, sizeof(b)), 0);
	/* still can send in CLOSE_WAIT */
	assert_int_equal(mst_sim_send(c.sim, c.fd, "bye", 3), 3);
	th_expect_data(&c, "bye", 3);
	assert_int_equal(mst_sim_close(c.sim, c.fd), 0);
	th_cexpect(&c, TH_FIN | TH_ACK, &s);
	assert_int_equal(s.seq, c.rcv_nxt);
	c.rcv_nxt++;
	assert_int_equal(mst_sim_conn_count(c.sim), 1);
	th_send(&c, TH_ACK, NULL, 0);
	assert_int_equal(mst_sim_conn_count(c.sim), 0);
	th_expect_none(c.sim);
	mst_sim_destroy(c.sim);
}

static void test_tcp_last_ack_fin_retransmitted(void **state)
{
	(void)state;
	struct th_conn c;
	struct th_seg s;

	th_passive_open(&c, th_sim_default(), PORT, 1, NULL, NULL);
	th_send(&c, TH_FIN | TH_ACK, NULL, 0);
	th_expect_ack(&c, c.snd_nxt);
	mst_sim_close(c.sim, c.fd);
	th_cexpect(&c, TH_FIN | TH_ACK, &s);
	step_ms(c.sim, 1100);
	th_cexpect(&c, TH_FIN | TH_ACK, &s); /* RTO */
	assert_int_equal(s.seq, c.rcv_nxt);
	mst_sim_destroy(c.sim);
}

/* RFC 9293 §3.6: both FINs cross -> CLOSING -> TIME_WAIT. */
static void test_tcp_simultaneous_close_closing(void **state)
{
	(void)state;
	struct th_conn c;
	struct th_seg s;

	th_passive_open(&c, sim_tw(300), PORT, 1, NULL, NULL);
	mst_sim_shutdown(c.sim, c.fd, SHUT_WR);
	th_cexpect(&c, TH_FIN | TH_ACK, &s);
	/* peer's FIN does not ack ours */
	th_send(&c, TH_FIN | TH_ACK, NULL, 0);
	assert_int_equal(th_state(c.sim, c.fd), TH_CLOSING);
	th_cexpect(&c, TH_ACK, &s);
	assert_int_equal(s.ack, c.snd_nxt);
	c.rcv_nxt++;
	th_send(&c, TH_ACK, NULL, 0);
	assert_int_equal(th_state(c.sim, c.fd), TH_TIME_WAIT);
	mst_sim_close(c.sim, c.fd);
	step_ms(c.sim, 320);
	assert_int_equal(mst_sim_conn_count(c.sim), 0);
	mst_sim_destroy(c.sim);
}

static void test_tcp_half_close_still_receives(void **state)
{
	(void)state;
	struct th_conn c;
	char b[16];

	th_passive_open(&c, th_sim_default(), PORT, 1, NULL, NULL);
	mst_sim_shutdown(c.sim, c.fd, SHUT_WR);
	th_cexpect(&c, TH_FIN | TH_ACK, NULL);
	c.rcv_nxt++;
	th_send(&c, TH_ACK, NULL, 0);
	assert_int_equal(th_state(c.sim, c.fd), TH_FIN_WAIT_2);
	assert_int_equal(mst_sim_send(c.sim, c.fd, "x", 1), -EPIPE);
	th_send(&c, TH_ACK | TH_PSH, "still here", 10);
	assert_int_equal(mst_sim_recv(c.sim, c.fd, b, sizeof(b)), 10);
	assert_memory_equal(b, "still here", 10);
	mst_sim_advance(c.sim, TH_MS(50));
	th_expect_ack(&c, c.snd_nxt);
	mst_sim_destroy(c.sim);
}

/* RFC 9293 §3.10.4 / RFC 2525 2.17: close with unread data -> RST. */
static void test_tcp_close_with_unread_data_sends_rst(void **state)
{
	(void)state;
	struct th_conn c;
	struct th_seg s;

	th_passive_open(&c, th_sim_default(), PORT, 1, NULL, NULL);
	th_send(&c, TH_ACK | TH_PSH, "unread", 6);
	th_drain(c.sim);
	mst_sim_close(c.sim, c.fd);
	th_cexpect(&c, TH_RST | TH_ACK, &s);
	assert_int_equal(s.seq, c.rcv_nxt);
	assert_int_equal(mst_sim_conn_count(c.sim), 0);
	th_expect_none(c.sim);
	/* later segments for it: RST as for no connection */
	th_send(&c, TH_ACK, "more", 4);
	th_cexpect(&c, TH_RST, &s);
	assert_int_equal(s.seq, c.rcv_nxt);
	mst_sim_destroy(c.sim);
}

static void test_tcp_linger0_close_sends_rst(void **state)
{
	(void)state;
	struct th_conn c;
	struct linger l = { .l_onoff = 1, .l_linger = 0 };

	th_passive_open(&c, th_sim_default(), PORT, 1, NULL, NULL);
	assert_int_equal(mst_sim_setsockopt(c.sim, c.fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l)), 0);
	mst_sim_close(c.sim, c.fd);
	th_cexpect(&c, TH_RST | TH_ACK, NULL);
	assert_int_equal(mst_sim_conn_count(c.sim), 0);
	mst_sim_destroy(c.sim);
}

/* RFC 7323 §3.2: on a connection that negotiated timestamps the RST
 * carries the option too (TSval from our clock, TSecr TS.Recent); without
 * them it carries none. */
static void test_tcp_rst_carries_timestamps_when_negotiated(void **state)
{
	(void)state;
	struct th_conn c;
	struct th_opts o = th_syn_opts();
	struct th_seg s;
	uint32_t last_tsval;
	struct linger l = { .l_onoff = 1, .l_linger = 0 };

	th_passive_open(&c, th_sim_default(), PORT, 1, NULL, NULL);
	assert_true(c.ts);
	th_send(&c, TH_ACK | TH_PSH, "x", 1);
	th_cexpect(&c, TH_ACK, &s);
	last_tsval = s.tsval;
	mst_sim_advance(c.sim, TH_MS(5));
	assert_int_equal(mst_sim_setsockopt(c.sim, c.fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l)), 0);
	mst_sim_close(c.sim, c.fd);
	th_cexpect(&c, TH_RST | TH_ACK, &s);
	assert_true(s.has_ts);
	assert_int_equal(s.tsecr, c.tsval);
	assert_true((int32_t)(s.tsval - last_tsval) >= 5);
	mst_sim_destroy(c.sim);

	o.ts = false;
	th_passive_open(&c, th_sim_default(), PORT, 1, &o, NULL);
	assert_false(c.ts);
	assert_int_equal(mst_sim_setsockopt(c.sim, c.fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l)), 0);
	mst_sim_close(c.sim, c.fd);
	th_cexpect(&c, TH_RST | TH_ACK, &s);
	assert_false(s.has_ts);
	mst_sim_destroy(c.sim);
}

/* SYN_RECEIVED, an ACK that does not acknowledge our SYN: <SEQ=SEG.ACK>
 * <CTL=RST> (RFC 9293 §3.10.7.4), with the timestamps the SYN negotiated
 * and TSecr 0 (no ACK bit, RFC 7323 §3.2). */
static void test_tcp_syn_received_bad_ack_rst_has_timestamps(void **state)
{
	(void)state;
	struct mst_sim *sim = th_sim_default();
	int lfd = mst_sim_socket(sim, 1);
	struct th_seg sa, rst;
	struct th_tx t;

	assert_int_equal(mst_sim_bind(sim, lfd, PORT), 0);
	assert_int_equal(mst_sim_listen(sim, lfd, 4), 0);
	memset(&t, 0, sizeof(t));
	t.sport = TH_PEER_PORT;
	t.dport = PORT;
	t.seq = 100;
	t.flags = TH_SYN;
	t.win = 65535;
	t.opts = th_syn_opts();
	t.opts.tsval = 1000;
	th_input(sim, &t);
	th_expect(sim, TH_SYN | TH_ACK, &sa);
	assert_true(sa.has_ts);
	t.flags = TH_ACK;
	t.seq = 101;
	t.ack = sa.seq; /* our ISS: not an ACK of the SYN */
	t.opts = TH_OPTS_NONE;
	t.opts.ts = true;
	t.opts.tsval = 1001;
	t.opts.tsecr = sa.tsval;
	th_input(sim, &t);
	th_expect(sim, TH_RST, &rst);
	assert_int_equal(rst.seq, sa.seq);
	assert_true(rst.has_ts);
	assert_int_equal(rst.tsecr, 0);
	assert_true((int32_t)(rst.tsval - sa.tsval) >= 0);
	assert_int_equal(th_ctr(sim, "tcp_ack_too_new"), 1);
	mst_sim_destroy(sim);
}

/* An exact RST in each synchronized state the app can still observe. */
static void test_tcp_rst_received_in_each_state(void **state)
{
	(void)state;
	for (int st = 0; st < 4; st++) {
		struct th_conn c;
		char b[4];
		int want_err = ECONNRESET;

		th_passive_open(&c, th_sim_default(), PORT, 1, NULL, NULL);
		switch (st) {
		case 0: /* ESTABLISHED */
			break;
		case 1: /* CLOSE_WAIT */
			th_send(&c, TH_FIN | TH_ACK, NULL, 0);
			th_drain(c.sim);
			assert_int_equal(th_state(c.sim, c.fd), TH_CLOSE_WAIT);
			break;
		case 2: /* FIN_WAIT_1 */
			mst_sim_shutdown(c.sim, c.fd, SHUT_WR);
			th_drain(c.sim);
			assert_int_equal(th_state(c.sim, c.fd), TH_FIN_WAIT_1);
			break;
		case 3: /* FIN_WAIT_2 */
			mst_sim_shutdown(c.sim, c.fd, SHUT_WR);
			th_drain(c.sim);
			c.rcv_nxt++;
			th_send(&c, TH_ACK, NULL, 0);
			assert_int_equal(th_state(c.sim, c.fd), TH_FIN_WAIT_2);
			break;
		}
		th_send(&c, TH_RST, NULL, 0);
		th_expect_none(c.sim);
		assert_int_equal(th_state(c.sim, c.fd), TH_CLOSED);
		assert_true(mst_sim_poll(c.sim, c.fd, POLLIN) & (POLLERR | POLLHUP));
		ssize_t r = mst_sim_recv(c.sim, c.fd, b, sizeof(b));
		/* CLOSE_WAIT: the peer's FIN came first; Linux reports EOF (0) then */
		if (!(r == -want_err || (st == 1 && r == 0)))
			fail_msg("RST in state case %d: recv %zd, want %d", st, r, -want_err);
		mst_sim_close(c.sim, c.fd);
		assert_int_equal(mst_sim_conn_count(c.sim), 0);
		mst_sim_destroy(c.sim);
	}
}

/* RST in SYN_SENT acceptable only if it ACKs our SYN (RFC 9293 §3.10.7.3). */
static void test_tcp_rst_in_syn_sent(void **state)
{
	(void)state;
	struct mst_sim *sim = th_sim_default();
	struct th_seg syn;
	struct th_tx t;
	int fd = mst_sim_socket(sim, 1), err = 0;
	size_t len = sizeof(err);

	mst_sim_connect(sim, fd, th_ip(TH_PEER_IP), 80);
	th_expect(sim, TH_SYN, &syn);
	memset(&t, 0, sizeof(t));
	t.opts = TH_OPTS_NONE;
	t.sport = 80;
	t.dport = syn.sport;
	t.flags = TH_RST | TH_ACK;
	t.ack = syn.seq + 5; /* wrong ACK: ignored (§3.10.7.3: if RST, drop) */
	th_input(sim, &t);
	th_expect_none(sim);
	assert_int_equal(th_state(sim, fd), TH_SYN_SENT);
	t.ack = syn.seq + 1;
	th_input(sim, &t);
	assert_true(mst_sim_poll(sim, fd, POLLOUT) & POLLERR);
	mst_sim_getsockopt(sim, fd, SOL_SOCKET, SO_ERROR, &err, &len);
	assert_int_equal(err, ECONNREFUSED);
	mst_sim_destroy(sim);
}

/* A new SYN with a higher ISN (and newer timestamp) reuses a TIME_WAIT
 * connection (RFC 6191 / RFC 9293 §3.10.7.4 note). */
static void test_tcp_time_wait_reused_by_newer_syn(void **state)
{
	(void)state;
	struct th_conn c;
	struct th_seg s;
	struct th_tx t;

	th_passive_open(&c, th_sim_default(), PORT, 1000, NULL, NULL);
	/* our side closes first -> we hold TIME_WAIT */
	mst_sim_shutdown(c.sim, c.fd, SHUT_WR);
	th_cexpect(&c, TH_FIN | TH_ACK, NULL);
	c.rcv_nxt++;
	th_send(&c, TH_FIN | TH_ACK, NULL, 0);
	th_expect_ack(&c, c.snd_nxt);
	assert_int_equal(th_state(c.sim, c.fd), TH_TIME_WAIT);
	mst_sim_close(c.sim, c.fd);
	mst_sim_advance(c.sim, TH_MS(1000));
	th_tx_init(&c, &t, TH_SYN);
	t.seq = c.snd_nxt + 100000;
	t.opts.mss = 1460;
	t.opts.sack_perm = true;
	t.opts.ws = 7;
	t.opts.tsval = c.tsval + 1000;
	t.opts.tsecr = 0;
	th_input(c.sim, &t);
	th_cexpect(&c, TH_SYN | TH_ACK, &s);
	assert_int_equal(s.ack, t.seq + 1);
	assert_int_equal(th_ctr(c.sim, "tcp_tw_reused_syn"), 1);
	assert_int_equal(th_ctr(c.sim, "tcp_tw_reused_connect"), 0);
	assert_int_equal(th_ctr(c.sim, "tcp_tw_pool_recycled"), 0);
	mst_sim_destroy(c.sim);
}

/* An active open that takes over our own TIME_WAIT on the same tuple (the
 * range holds one port) starts beyond the old incarnation: ISS past the
 * old snd_nxt and its last window (RFC 6191 §2, Linux's tw_snd_nxt +
 * 65535 + 2) and a TSval past every old one, so the peer's PAWS tells the
 * two apart. The ISN clock alone moves only 250 per ms. */
static void test_tcp_connect_reused_tuple_iss_and_tsval_beyond_old(void **state)
{
	struct mst_sim_conf conf;
	struct th_conn c, c2;
	struct th_seg syn, s;
	uint32_t old_end, old_tsval;

	(void)state;
	th_conf(&conf);
	conf.eph_lo = conf.eph_hi = 45000;
	conf.tw_reuse_delay_ms = 5;
	th_active_open(&c, th_sim_create(&conf), PORT, 1000, NULL, &syn);
	assert_int_equal(c.port, 45000);
	mst_sim_close(c.sim, c.fd);
	th_cexpect(&c, TH_FIN | TH_ACK, &s);
	old_end = s.seq + 1;
	c.rcv_nxt = old_end;
	th_send(&c, TH_FIN | TH_ACK, NULL, 0);
	th_cexpect(&c, TH_ACK, &s);
	old_tsval = s.tsval;
	assert_int_equal(mst_sim_conn_count(c.sim), 1); /* TIME_WAIT */
	step_ms(c.sim, 4); /* under the delay: the only port is taken */
	c2.fd = mst_sim_socket(c.sim, 1);
	assert_int_equal(mst_sim_connect(c.sim, c2.fd, th_ip(TH_PEER_IP), PORT), -EADDRNOTAVAIL);
	step_ms(c.sim, 2);
	assert_int_equal(mst_sim_connect(c.sim, c2.fd, th_ip(TH_PEER_IP), PORT), -EINPROGRESS);
	th_expect(c.sim, TH_SYN, &syn);
	assert_int_equal(syn.sport, 45000);
	assert_int_equal(syn.seq, old_end + 65537u);
	assert_true(syn.has_ts && (int32_t)(syn.tsval - old_tsval) > 0);
	assert_int_equal(th_ctr(c.sim, "tcp_tw_reused_connect"), 1);
	assert_int_equal(th_ctr(c.sim, "tcp_tw_reused_syn"), 0);
	assert_int_equal(th_ctr(c.sim, "tcp_tw_pool_recycled"), 0);
	mst_sim_destroy(c.sim);
}

/* A TIME_WAIT the app still holds (shutdown(), FIN exchange, no close())
 * is never taken over by an active open, however old: its handle stays
 * valid. Once closed, the tuple may be reused. */
static void test_tcp_connect_never_reuses_timewait_app_still_holds(void **state)
{
	struct mst_sim_conf conf;
	struct th_conn c;
	struct th_seg s;
	int fd2, fd3;

	(void)state;
	th_conf(&conf);
	conf.eph_lo = conf.eph_hi = 45001;
	conf.tw_reuse_delay_ms = 5;
	th_active_open(&c, th_sim_create(&conf), PORT, 1000, NULL, NULL);
	assert_int_equal(mst_sim_shutdown(c.sim, c.fd, SHUT_WR), 0);
	th_cexpect(&c, TH_FIN | TH_ACK, &s);
	c.rcv_nxt = s.seq + 1;
	th_send(&c, TH_FIN | TH_ACK, NULL, 0);
	th_cexpect(&c, TH_ACK, NULL);
	assert_int_equal(th_state(c.sim, c.fd), TH_TIME_WAIT);
	step_ms(c.sim, 1000);
	fd2 = mst_sim_socket(c.sim, 1);
	assert_int_equal(mst_sim_connect(c.sim, fd2, th_ip(TH_PEER_IP), PORT), -EADDRNOTAVAIL);
	assert_int_equal(th_state(c.sim, c.fd), TH_TIME_WAIT); /* still ours */
	assert_int_equal(th_ctr(c.sim, "tcp_tw_reused_connect"), 0);
	assert_int_equal(mst_sim_close(c.sim, c.fd), 0);
	fd3 = mst_sim_socket(c.sim, 1);
	assert_int_equal(mst_sim_connect(c.sim, fd3, th_ip(TH_PEER_IP), PORT), -EINPROGRESS);
	th_expect(c.sim, TH_SYN, &s);
	assert_int_equal(s.sport, 45001);
	assert_int_equal(th_ctr(c.sim, "tcp_tw_reused_connect"), 1);
	mst_sim_destroy(c.sim);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tcp_active_close_fin_wait_to_time_wait),
		cmocka_unit_test(test_tcp_connect_reused_tuple_iss_and_tsval_beyond_old),
		cmocka_unit_test(test_tcp_connect_never_reuses_timewait_app_still_holds),
		cmocka_unit_test(test_tcp_close_keeps_window_open_for_peer_fin),
		cmocka_unit_test(test_tcp_passive_close_close_wait_last_ack),
		cmocka_unit_test(test_tcp_last_ack_fin_retransmitted),
		cmocka_unit_test(test_tcp_simultaneous_close_closing),
		cmocka_unit_test(test_tcp_half_close_still_receives),
		cmocka_unit_test(test_tcp_close_with_unread_data_sends_rst),
		cmocka_unit_test(test_tcp_linger0_close_sends_rst),
		cmocka_unit_test(test_tcp_rst_carries_timestamps_when_negotiated),
		cmocka_unit_test(test_tcp_syn_received_bad_ack_rst_has_timestamps),
		cmocka_unit_test(test_tcp_rst_received_in_each_state),
		cmocka_unit_test(test_tcp_rst_in_syn_sent),
		cmocka_unit_test(test_tcp_time_wait_reused_by_newer_syn),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
