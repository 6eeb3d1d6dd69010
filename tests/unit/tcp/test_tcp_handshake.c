/* SPDX-License-Identifier: BSD-3-Clause */
/* Handshakes, option negotiation, resets for closed ports, SYN/SYN-ACK
 * retransmission, simultaneous open, listen backlog — driven packet by
 * packet through libmustang-sim. */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "tcp_helper.h"

#define PORT 5000

static void test_tcp_passive_open_negotiates_all_options(void **state)
{
	(void)state;
	struct mst_sim *sim = th_sim_default();
	struct th_conn c;
	struct th_seg sa;
	struct mst_sim_tcp_info ti;

	th_passive_open(&c, sim, PORT, 1000, NULL, &sa);
	assert_true(sa.has_mss);
	assert_int_equal(sa.mss, 1460);
	assert_true(sa.sack_perm);
	assert_true(sa.has_ts);
	assert_int_equal(sa.tsecr, 1000);
	assert_true(sa.has_ws);
	assert_true(sa.ws <= 14);
	assert_int_equal(mst_sim_tcp_info(sim, c.fd, &ti), 0);
	assert_int_equal(ti.mss, 1460 - 12); /* effective: minus the TS option */
	assert_int_equal(ti.sack, 1);
	assert_int_equal(ti.timestamps, 1);
	assert_int_equal(ti.snd_wscale, 7);
	assert_int_equal(ti.rcv_wscale, sa.ws);
	assert_int_equal(th_ctr(sim, "tcp_passive_opens"), 1);
	assert_int_equal(th_ctr(sim, "tcp_established"), 1);
	printf("# tcb size: %zu bytes\n", mst_sim_tcb_size());
	th_expect_none(sim);
	mst_sim_destroy(sim);
}

static void test_tcp_active_open_sends_syn_options(void **state)
{
	(void)state;
	struct mst_sim *sim = th_sim_default();
	struct th_conn c;
	struct th_seg syn;

	th_active_open(&c, sim, 80, 0x12345678, NULL, &syn);
	assert_true(syn.has_mss);
	assert_int_equal(syn.mss, 1460);
	assert_true(syn.sack_perm);
	assert_true(syn.has_ts);
	assert_int_equal(syn.tsecr, 0);
	assert_true(syn.has_ws);
	assert_int_equal(syn.ack, 0);
	assert_int_equal(syn.len, 0);
	assert_true(mst_sim_poll(sim, c.fd, POLLOUT) & POLLOUT);
	assert_int_equal(th_ctr(sim, "tcp_active_opens"), 1);
	mst_sim_destroy(sim);
}

static void send_data_and_collect(struct th_conn *c, size_t total, size_t *maxseg, int *nsegs)
{
	static uint8_t buf[8000];

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)i;
	assert_int_equal(mst_sim_send(c->sim, c->fd, buf, total), (ssize_t)total);
	*maxseg = 0;
	*nsegs = 0;
	size_t got = 0;
	struct th_seg s;
	for (int round = 0; round < 5000 && got < total; round++) {
		while (th_output(c->sim, &s)) {
			if (!s.len)
				continue;
			assert_int_equal(s.seq, c->rcv_nxt);
			assert_memory_equal(s.payload, buf + got, s.len);
			got += s.len;
			c->rcv_nxt += (uint32_t)s.len;
			if (s.len > *maxseg)
				*maxseg = s.len;
			(*nsegs)++;
			th_send(c, TH_ACK, NULL, 0);
		}
		mst_sim_advance(c->sim, TH_MS(1));
	}
	assert_int_equal(got, total);
}

static void test_tcp_mss_clamped_to_peer_and_mtu(void **state)
{
	(void)state;
	int mss[] = { 536, 9000, 65535 };
	size_t want[] = { 536, 1460, 1460 };

	for (int i = 0; i < 3; i++) {
		struct mst_sim *sim = th_sim_default();
		struct th_conn c;
		struct th_opts o = th_syn_opts();
		struct mst_sim_tcp_info ti;
		size_t maxseg;
		int n;

		o.mss = mss[i];
		o.ts = false; /* so payload == MSS */
		th_passive_open(&c, sim, PORT, 77, &o, NULL);
		mst_sim_tcp_info(sim, c.fd, &ti);
		assert_int_equal(ti.mss, want[i]);
		send_data_and_collect(&c, 4000, &maxseg, &n);
		assert_int_equal(maxseg, want[i]);
		mst_sim_destroy(sim);
	}
}

/* MSS 0 and 1 are absurd: the stack must still move data in non-empty
 * segments and not loop or send a flood of tiny segments. */
static void test_tcp_mss_absurd_small_values(void **state)
{
	(void)state;
	int mss[] = { 0, 1 };

	for (int i = 0; i < 2; i++) {
		struct mst_sim *sim = th_sim_default();
		struct th_conn c;
		struct th_opts o = th_syn_opts();
		size_t maxseg;
		int n;

		o.mss = mss[i];
		o.ts = false;
		th_passive_open(&c, sim, PORT, 77, &o, NULL);
		send_data_and_collect(&c, 2000, &maxseg, &n);
		assert_true(maxseg >= 1);
		printf("# peer MSS %d: %d segments, largest %zu\n", mss[i], n, maxseg);
		/* Linux clamps to 48 bytes of payload at least; anything sane is
		 * well under 2000 segments for 2000 bytes. */
		assert_true(n <= 2000 / 8);
		mst_sim_destroy(sim);
	}
}

static void test_tcp_wscale_14_used_and_over_14_clamped(void **state)
{
	(void)state;
	int ws[] = { 0, 14, 15, 255 };
	int want[] = { 0, 14, 14, 14 };

	for (int i = 0; i < 4; i++) {
		struct mst_sim *sim = th_sim_default();
		struct th_conn c;
		struct th_opts o = th_syn_opts();
		struct mst_sim_tcp_info ti;

		o.ws = ws[i];
		th_passive_open(&c, sim, PORT, 5, &o, NULL);
		mst_sim_tcp_info(sim, c.fd, &ti);
		/* RFC 7323 §2.3: a shift > 14 MUST be used as 14. */
		assert_int_equal(ti.snd_wscale, want[i]);
		/* window 1 << 14 scaled = 2^28 >> 14 ... our ACK's window field 1 */
		th_send(&c, TH_ACK, NULL, 0);
		mst_sim_tcp_info(sim, c.fd, &ti);
		assert_int_equal(ti.snd_wnd, (uint32_t)65535 << want[i]);
		mst_sim_destroy(sim);
	}
}

static void test_tcp_no_wscale_from_peer_means_none_either_way(void **state)
{
	(void)state;
	struct mst_sim *sim = th_sim_default();
	struct th_conn c;
	struct th_opts o = th_syn_opts();
	struct th_seg sa;
	struct mst_sim_tcp_info ti;

	o.ws = -1;
	th_passive_open(&c, sim, PORT, 5, &o, &sa);
	/* RFC 7323 §2.2: WS in a SYN-ACK only if the SYN had it. */
	assert_false(sa.has_ws);
	mst_sim_tcp_info(sim, c.fd, &ti);
	assert_int_equal(ti.snd_wscale, 0);
	assert_int_equal(ti.rcv_wscale, 0);
	/* Our advertised windows are unscaled: never above 65535, and the
	 * SYN-ACK's window equals what info reports. */
	assert_true(ti.rcv_wnd <= 65535);
	mst_sim_destroy(sim);
}

static void test_tcp_sack_perm_only_if_peer_offers(void **state)
{
	(void)state;
	struct mst_sim *sim = th_sim_default();
	struct th_conn c;
	struct th_opts o = th_syn_opts();
	struct th_seg sa;
	struct mst_sim_tcp_info ti;

	o.sack_perm = false;
	th_passive_open(&c, sim, PORT, 5, &o, &sa);
	assert_false(sa.sack_perm);
	mst_sim_tcp_info(sim, c.fd, &ti);
	assert_int_equal(ti.sack, 0);
	mst_sim_destroy(sim);
}

static void test_tcp_timestamps_none_when_peer_lacks(void **state)
{
	(void)state;
	struct mst_sim *sim = th_sim_default();
	struct th_conn c;
	struct th_opts o = th_syn_opts();
	struct th_seg sa, s;
	struct mst_sim_tcp_info ti;

	o.ts = false;
	th_passive_open(&c, sim, PORT, 5, &o, &sa);
	assert_false(sa.has_ts);
	mst_sim_tcp_info(sim, c.fd, &ti);
	assert_int_equal(ti.timestamps, 0);
	assert_int_equal(mst_sim_send(sim, c.fd, "hello", 5), 5);
	th_cexpect(&c, TH_ACK | TH_PSH, &s);
	assert_false(s.has_ts);
	assert_int_equal(s.len, 5);
	mst_sim_destroy(sim);
}

static void test_tcp_timestamps_off_locally(void **state)
{
	(void)state;
	struct mst_sim_conf conf;
	struct mst_sim *sim;
	struct th_conn c;
	struct th_seg sa;
	struct mst_sim_tcp_info ti;

	th_conf(&conf);
	conf.no_timestamps = 1;
	conf.no_sack = 1;
	conf.no_wscale = 1;
	sim = th_sim_create(&conf);
	th_passive_open(&c, sim, PORT, 5, NULL, &sa);
	assert_false(sa.has_ts);
	assert_false(sa.sack_perm);
	assert_false(sa.has_ws);
	mst_sim_tcp_info(sim, c.fd, &ti);
	assert_int_equal(ti.timestamps, 0);
	assert_int_equal(ti.sack, 0);
	assert_int_equal(ti.snd_wscale, 0);
	mst_sim_destroy(sim);
}

/* RFC 9293 §3.10.7.1: CLOSED. If ACK is off: <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>
 * (SYN and FIN count in SEG.LEN); if ACK is on: <SEQ=SEG.ACK><CTL=RST>. */
static void test_tcp_closed_port_rst_rules(void **state)
{
	(void)state;
	struct mst_sim *sim = th_sim_default();
	struct th_tx t;
	struct th_seg s;

	memset(&t, 0, sizeof(t));
	t.opts = TH_OPTS_NONE;
	t.dport = 999;
	t.seq = 0xfffffff0;
	t.flags = TH_SYN;
	t.win = 1000;
	th_input(sim, &t);
	th_expect(sim, TH_RST | TH_ACK, &s);
	assert_int_equal(s.seq, 0);
	assert_int_equal(s.ack, 0xfffffff1);
	assert_int_equal(s.sport, 999);
	assert_int_equal(s.dport, TH_PEER_PORT);
	assert_int_equal(s.len, 0);

	/* no ACK, data + FIN: ack covers both (wrapping past 2^32) */
	t.flags = TH_FIN;
	t.data = "0123456789abcdefXYZ";
	t.len = 19;
	th_input(sim, &t);
	th_expect(sim, TH_RST | TH_ACK, &s);
	assert_int_equal(s.seq, 0);
	assert_int_equal(s.ack, 0xfffffff0u + 20);

	/* ACK on: RST seq = SEG.ACK, no ACK bit */
	t.flags = TH_ACK | TH_PSH;
	t.ack = 0xdeadbeef;
	t.len = 3;
	th_input(sim, &t);
	th_expect(sim, TH_RST, &s);
	assert_int_equal(s.seq, 0xdeadbeef);

	/* RST to a closed port: never answered */
	t.flags = TH_RST;
	t.len = 0;
	th_input(sim, &t);
	t.flags = TH_RST | TH_ACK;
	th_input(sim, &t);
	th_expect_none(sim);
	assert_int_equal(th_ctr(sim, "tcp_no_socket"), 5);
	assert_int_equal(th_ctr(sim, "tcp_resets_sent"), 3);
	mst_sim_destroy(sim);
}

/* Record the virtual times (ms since start) at which segments with `flags` appear. */
static int record_times(struct mst_sim *sim, uint8_t flags, uint64_t horizon_ms, uint64_t *out,
			int max)
{
	uint64_t t0 = mst_sim_now(sim);
	int n = 0;
	struct th_seg s;

	for (uint64_t ms = 0; ms <= horizon_ms; ms++) {
		while (th_output(sim, &s)) {
			assert_int_equal(s.flags, flags);
			if (n < max)
				out[n] = (mst_sim_now(sim) - t0) / 1000000;
			n++;
		}
		mst_sim_advance(sim, TH_MS(1));
	}
	return n;
}

static void assert_near(uint64_t got, uint64_t want, const char *what)
{
	uint64_t tol = want / 50 + 10; /* timer-wheel granularity */

	if (got + tol < want || got > want + tol)
		fail_msg("%s: %llu ms, want %llu ms", what, (unsigned long long)got,
			 (unsigned long long)want);
}

static void test_tcp_synack_retransmit_backoff_and_give_up(void **state)
{
	(void)state;
	struct mst_sim *sim = th_sim_default();
	struct th_tx t;
	uint64_t times[16];
	int fd = mst_sim_socket(sim, 1), n;

	mst_sim_bind(sim, fd, PORT);
	mst_sim_listen(sim, fd, 8);
	memset(&t, 0, sizeof(t));
	t.opts = TH_OPTS_NONE;
	t.dport = PORT;
	t.seq = 100;
	t.flags = TH_SYN;
	t.win = 1000;
	th_input(sim, &t);
	n = record_times(sim, TH_SYN | TH_ACK, 70000, times, 16);
	/* 1 original + synack_retries (5), at 0, 1, 3, 7, 15, 31 s (RFC 6298 1 s initial, doubling) */
	assert_int_equal(n, 6);
	uint64_t want[] = { 0, 1000, 3000, 7000, 15000, 31000 };
	for (int i = 0; i < 6; i++)
		assert_near(times[i], want[i], "SYN-ACK time");
	assert_int_equal(th_ctr(sim, "tcp_synack_retransmits"), 5);
	/* given up: the embryonic connection is gone, a late ACK gets a RST */
	assert_int_equal(mst_sim_conn_count(sim), 0);
	assert_int_equal(mst_sim_accept(sim, fd, NULL, NULL), -EAGAIN);
	mst_sim_destroy(sim);
}

/* RFC 9293 §3.10.7.3, SYN_SENT: an ACK is acceptable only if
 * ISS < SEG.ACK <= SND.NXT. A SYN-ACK acknowledging our ISS itself (not
 * the SYN) or beyond SND.NXT gets <SEQ=SEG.ACK><CTL=RST> and is dropped;
 * the connection stays in SYN_SENT and completes with a proper SYN-ACK. */
static void test_tcp_syn_sent_synack_with_bad_ack_gets_rst(void **state)
{
	(void)state;
	struct mst_sim *sim = th_sim_default();
	const uint32_t bad[] = { 0, 2, (uint32_t)-1 }; /* offsets from ISS */
	int fd = mst_sim_socket(sim, 1);
	struct th_seg syn, rst, ack;
	struct th_tx t;

	assert_int_equal(mst_sim_connect(sim, fd, th_ip(TH_PEER_IP), 80), -EINPROGRESS);
	th_expect(sim, TH_SYN, &syn);
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&t, 0, sizeof(t));
		t.sport = 80;
		t.dport = syn.sport;
		t.seq = 7000;
		t.ack = syn.seq + bad[i];
		t.flags = TH_SYN | TH_ACK;
		t.win = 65535;
		t.opts = th_syn_opts();
		t.opts.tsecr = syn.tsval;
		th_input(sim, &t);
		th_expect(sim, TH_RST, &rst);
		assert_int_equal(rst.seq, t.ack);
		assert_int_equal(th_state(sim, fd), TH_SYN_SENT);
		assert_int_equal(th_ctr(sim, "tcp_syn_sent_bad"), i + 1);
	}
	t.ack = syn.seq + 1;
	th_input(sim, &t);
	th_expect(sim, TH_ACK, &ack);
	assert_int_equal(ack.seq, syn.seq + 1);
	assert_int_equal(ack.ack, 7001);
	assert_int_equal(th_state(sim, fd), TH_ESTABLISHED);
	mst_sim_destroy(sim);
}

/* RFC 9293 §3.10.7.4, SYN_RECEIVED: the ACK must satisfy
 * SND.UNA < SEG.ACK <= SND.NXT. An ACK equal to our ISS (it does not cover
 * the SYN) or beyond SND.NXT gets <SEQ=SEG.ACK><CTL=RST> and completes
 * nothing; the proper ACK afterwards still does. */
static void test_tcp_syn_received_ack_of_iss_gets_rst(void **state)
{
	(void)state;
	struct mst_sim *sim = th_sim_default();
	const uint32_t bad[] = { 0, 2 }; /* offsets from our ISS */
	int lfd = mst_sim_socket(sim, 1);
	struct th_seg sa, rst;
	struct th_tx t;

	mst_sim_bind(sim, lfd, PORT);
	assert_int_equal(mst_sim_listen(sim, lfd, 4), 0);
	memset(&t, 0, sizeof(t));
	t.opts = TH_OPTS_NONE;
	t.sport = 41000;
	t.dport = PORT;
	t.seq = 500;
	t.flags = TH_SYN;
	t.win = 8000;
	th_input(sim, &t);
	th_expect(sim, TH_SYN | TH_ACK, &sa);
	t.flags = TH_ACK;
	t.seq = 501;
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		t.ack = sa.seq + bad[i];
		th_input(sim, &t);
		th_expect(sim, TH_RST, &rst);
		assert_int_equal(rst.seq, t.ack);
		assert_int_equal(th_ctr(sim, "tcp_ack_too_new"), i + 1);
		assert_int_equal(th_ctr(sim, "tcp_established"), 0);
		assert_int_equal(mst_sim_accept(sim, lfd, NULL, NULL), -EAGAIN);
	}
	t.ack = sa.seq + 1;
	th_input(sim, &t);
	th_expect_none(sim);
	assert_int_equal(th_ctr(sim, "tcp_established"), 1);
	assert_true(mst_sim_accept(sim, lfd, NULL, NULL) >= 0);
	mst_sim_destroy(sim);
}

static void test_tcp_syn_retransmit_then_etimedout(void **state)
{
	(void)state;
	struct mst_sim *sim = th_sim_default();
	uint64_t times[16];
	int fd = mst_sim_socket(sim, 1), n, err = 0;
	size_t len = sizeof(err);

	assert_int_equal(mst_sim_connect(sim, fd, th_ip(TH_PEER_IP), 80), -EINPROGRESS);
	n = record_times(sim, TH_SYN, 200000, times, 16);
	/* syn_retries 6: 0,1,3,7,15,31,63 s; error at 127 s */
	assert_int_equal(n, 7);
	uint64_t want[] = { 0, 1000, 3000, 7000, 15000, 31000, 63000 };
	for (int i = 0; i < 7; i++)
		assert_near(times[i], want[i], "SYN time");
	assert_true(mst_sim_poll(sim, fd, POLLOUT | POLLIN) & POLLERR);
	assert_int_equal(mst_sim_getsockopt(sim, fd, SOL_SOCKET, SO_ERROR, &err, &len), 0);
	assert_int_equal(err, ETIMEDOUT);
	mst_sim_close(sim, fd);
	assert_int_equal(mst_sim_conn_count(sim), 0);
	mst_sim_destroy(sim);
}

/* The error must come when the last retransmission's RTO expires (63 s +
 * min(64 s, rto_max 60 s) = 123 s), not earlier. */
static void test_tcp_syn_timeout_not_before_last_rto(void **state)
{
	(void)state;
	struct mst_sim *sim = th_sim_default();
	int fd = mst_sim_socket(sim, 1);

	mst_sim_connect(sim, fd, th_ip(TH_PEER_IP), 80);
	th_drain(sim);
	for (int ms = 0; ms < 122000; ms++)
		mst_sim_advance(sim, TH_MS(1));
	th_drain(sim);
	assert_int_equal(th_state(sim, fd), TH_SYN_SENT);
	assert_false(mst_sim_poll(sim, fd, POLLOUT) & POLLERR);
	for (int ms = 0; ms < 2000; ms++)
		mst_sim_advance(sim, TH_MS(1));
	assert_true(mst_sim_poll(sim, fd, POLLOUT) & POLLERR);
	mst_sim_destroy(sim);
}

/* RFC 9293 Figure 8: SYNs cross; both go SYN-RECEIVED, then ESTABLISHED. */
static void test_tcp_simultaneous_open(void **state)
{
	(void)state;
	struct mst_sim *sim = th_sim_default();
	struct th_seg syn, s;
	struct th_tx t;
	int fd = mst_sim_socket(sim, 1);

	assert_int_equal(mst_sim_bind(sim, fd, 6000), 0);
	assert_int_equal(mst_sim_connect(sim, fd, th_ip(TH_PEER_IP), 7000), -EINPROGRESS);
	th_expect(sim, TH_SYN, &syn);
	assert_int_equal(syn.sport, 6000);
	memset(&t, 0, sizeof(t));
	t.opts = TH_OPTS_NONE;
	t.opts.mss = 1000;
	t.sport = 7000;
	t.dport = 6000;
	t.seq = 300;
	t.flags = TH_SYN;
	t.win = 5000;
	th_input(sim, &t);
	assert_int_equal(th_state(sim, fd), TH_SYN_RECEIVED);
	th_expect(sim, TH_SYN | TH_ACK, &s);
	assert_int_equal(s.seq, syn.seq);
	assert_int_equal(s.ack, 301);
	/* the peer's own SYN-ACK */
	t.flags = TH_SYN | TH_ACK;
	t.ack = syn.seq + 1;
	th_input(sim, &t);
	if (th_output(sim, &s))
		printf("# stack answered the SYN-ACK with [%s] seq %u ack %u\n", th_flags_str(s.flags),
		       s.seq, s.ack);
	assert_int_equal(th_state(sim, fd), TH_ESTABLISHED);
	assert_true(mst_sim_poll(sim, fd, POLLOUT) & POLLOUT);
	th_drain(sim);
	/* data flows */
	t.opts = TH_OPTS_NONE;
	t.flags = TH_ACK | TH_PSH;
	t.seq = 301;
	t.data = "hi";
	t.len = 2;
	th_input(sim, &t);
	char b[4];
	assert_int_equal(mst_sim_recv(sim, fd, b, 4), 2);
	mst_sim_destroy(sim);
}

static void handshake_from(struct mst_sim *sim, uint16_t pport, uint32_t iss, bool expect_synack)
{
	struct th_tx t;
	struct th_seg s;

	memset(&t, 0, sizeof(t));
	t.opts = TH_OPTS_NONE;
	t.sport = pport;
	t.dport = PORT;
	t.seq = iss;
	t.flags = TH_SYN;
	t.win = 8000;
	th_input(sim, &t);
	if (!expect_synack) {
		th_expect_none(sim);
		return;
	}
	th_expect(sim, TH_SYN | TH_ACK, &s);
	t.flags = TH_ACK;
	t.seq = iss + 1;
	t.ack = s.seq + 1;
	th_input(sim, &t);
}

static void test_tcp_listen_backlog_full_drops_syn(void **state)
{
	(void)state;
	struct mst_sim *sim = th_sim_default();
	int lfd = mst_sim_socket(sim, 1);

	mst_sim_bind(sim, lfd, PORT);
	assert_int_equal(mst_sim_listen(sim, lfd, 2), 0);
	assert_int_equal(mst_sim_accept(sim, lfd, NULL, NULL), -EAGAIN);
	assert_false(mst_sim_poll(sim, lfd, POLLIN) & POLLIN);
	handshake_from(sim, 41000, 10, true);
	handshake_from(sim, 41001, 20, true);
	assert_true(mst_sim_poll(sim, lfd, POLLIN) & POLLIN);
	th_expect_none(sim);
	/* accept queue full: the SYN is dropped silently (the peer retries) */
	handshake_from(sim, 41002, 30, false);
	assert_int_equal(th_ctr(sim, "tcp_listen_overflow"), 1);
	uint32_t ip;
	uint16_t port;
	int a = mst_sim_accept(sim, lfd, &ip, &port);
	assert_true(a >= 0);
	assert_int_equal(ip, th_ip(TH_PEER_IP));
	assert_int_equal(port, 41000);
	handshake_from(sim, 41002, 30, true);
	assert_true(mst_sim_accept(sim, lfd, NULL, NULL) >= 0);
	assert_true(mst_sim_accept(sim, lfd, NULL, NULL) >= 0);
	assert_int_equal(mst_sim_accept(sim, lfd, NULL, NULL), -EAGAIN);
	mst_sim_destroy(sim);
}

/* Data on the SYN is not queued (the stack says so): the peer's
 * retransmission of it must be accepted after the handshake. */
static void test_tcp_syn_with_data_not_acked(void **state)
{
	(void)state;
	struct mst_sim *sim = th_sim_default();
	struct th_tx t;
	struct th_seg s;
	int lfd = mst_sim_socket(sim, 1);

	mst_sim_bind(sim, lfd, PORT);
	mst_sim_listen(sim, lfd, 4);
	memset(&t, 0, sizeof(t));
	t.opts = TH_OPTS_NONE;
	t.dport = PORT;
	t.seq = 500;
	t.flags = TH_SYN;
	t.win = 8000;
	t.data = "early";
	t.len = 5;
	th_input(sim, &t);
	th_expect(sim, TH_SYN | TH_ACK, &s);
	assert_int_equal(s.ack, 501); /* only the SYN acknowledged */
	t.flags = TH_ACK | TH_PSH;
	t.seq = 501;
	t.ack = s.seq + 1;
	th_input(sim, &t);
	int fd = mst_sim_accept(sim, lfd, NULL, NULL);
	assert_true(fd >= 0);
	char b[8];
	assert_int_equal(mst_sim_recv(sim, fd, b, 8), 5);
	assert_memory_equal(b, "early", 5);
	mst_sim_destroy(sim);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tcp_passive_open_negotiates_all_options),
		cmocka_unit_test(test_tcp_active_open_sends_syn_options),
		cmocka_unit_test(test_tcp_mss_clamped_to_peer_and_mtu),
		cmocka_unit_test(test_tcp_mss_absurd_small_values),
		cmocka_unit_test(test_tcp_wscale_14_used_and_over_14_clamped),
		cmocka_unit_test(test_tcp_no_wscale_from_peer_means_none_either_way),
		cmocka_unit_test(test_tcp_sack_perm_only_if_peer_offers),
		cmocka_unit_test(test_tcp_timestamps_none_when_peer_lacks),
		cmocka_unit_test(test_tcp_timestamps_off_locally),
		cmocka_unit_test(test_tcp_closed_port_rst_rules),
		cmocka_unit_test(test_tcp_synack_retransmit_backoff_and_give_up),
		cmocka_unit_test(test_tcp_syn_sent_synack_with_bad_ack_gets_rst),
		cmocka_unit_test(test_tcp_syn_received_ack_of_iss_gets_rst),
		cmocka_unit_test(test_tcp_syn_retransmit_then_etimedout),
		cmocka_unit_test(test_tcp_syn_timeout_not_before_last_rto),
		cmocka_unit_test(test_tcp_simultaneous_open),
		cmocka_unit_test(test_tcp_listen_backlog_full_drops_syn),
		cmocka_unit_test(test_tcp_syn_with_data_not_acked),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
