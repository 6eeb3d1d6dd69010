/* SPDX-License-Identifier: BSD-3-Clause */
/* Robustness against malformed segments, SYN cookies, built-in services. */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "tcp_helper.h"

#define PORT 5006

static void syn_to(struct mst_sim *sim, uint16_t sport, uint16_t dport, uint32_t seq,
		   struct th_tx *t)
{
	memset(t, 0, sizeof(*t));
	t->opts = TH_OPTS_NONE;
	t->sport = sport;
	t->dport = dport;
	t->seq = seq;
	t->flags = TH_SYN;
	t->win = 8000;
	(void)sim;
}

static struct mst_sim *listening(int backlog)
{
	struct mst_sim *sim = th_sim_default();
	int fd = mst_sim_socket(sim, 1);

	assert_int_equal(mst_sim_bind(sim, fd, PORT), 0);
	assert_int_equal(mst_sim_listen(sim, fd, backlog), 0);
	return sim;
}

static void expect_drop(struct mst_sim *sim, const struct th_tx *t, const char *ctr)
{
	int64_t before = th_ctr(sim, ctr);

	th_input(sim, t);
	th_expect_none(sim);
	if (th_ctr(sim, ctr) != before + 1)
		fail_msg("%s: %lld -> %lld", ctr, (long long)before, (long long)th_ctr(sim, ctr));
	assert_int_equal(mst_sim_conn_count(sim), 0);
}

static void test_tcp_malformed_options_dropped(void **state)
{
	(void)state;
	struct mst_sim *sim = listening(8);
	struct th_tx t;
	static const uint8_t zero_len[] = { 2, 0, 0, 0 };           /* MSS, length 0 */
	static const uint8_t overlong[] = { 2, 4, 5, 0xb4, 8, 40, 0, 0 }; /* TS len past end */
	static const uint8_t truncated[] = { 1, 1, 1, 2 };           /* kind 2 without length */
	static const uint8_t one_len[] = { 3, 1, 0, 0 };             /* length 1 */

	syn_to(sim, 41000, PORT, 1, &t);
	t.opts.raw = zero_len;
	t.opts.raw_len = sizeof(zero_len);
	expect_drop(sim, &t, "tcp_bad_opts");
	t.opts.raw = overlong;
	t.opts.raw_len = sizeof(overlong);
	expect_drop(sim, &t, "tcp_bad_opts");
	t.opts.raw = truncated;
	t.opts.raw_len = sizeof(truncated);
	expect_drop(sim, &t, "tcp_bad_opts");
	t.opts.raw = one_len;
	t.opts.raw_len = sizeof(one_len);
	expect_drop(sim, &t, "tcp_bad_opts");
	mst_sim_destroy(sim);
}

static void test_tcp_bad_doff_dropped(void **state)
{
	(void)state;
	struct mst_sim *sim = listening(8);
	struct th_tx t;

	for (int d = 0; d < 5; d++) {
		syn_to(sim, 41000, PORT, 1, &t);
		t.doff = d ? d : 16; /* 0 would mean "computed": use 16 -> wraps to 0 in 4 bits */
		if (!d)
			continue;
		expect_drop(sim, &t, "tcp_bad_doff");
	}
	syn_to(sim, 41000, PORT, 1, &t);
	t.doff = 15; /* 60 bytes, segment has 20 */
	expect_drop(sim, &t, "tcp_bad_doff");
	t.doff = 6; /* 24 > 20 + 3 bytes of data? no: 3 data bytes, header 24 */
	t.data = "abc";
	t.len = 3;
	expect_drop(sim, &t, "tcp_bad_doff");
	mst_sim_destroy(sim);
}

static void test_tcp_truncated_header_dropped(void **state)
{
	(void)state;
	struct mst_sim *sim = listening(8);
	struct th_tx t;

	syn_to(sim, 41000, PORT, 1, &t);
	t.truncate = 12;
	expect_drop(sim, &t, "tcp_truncated");
	mst_sim_destroy(sim);
}

static void test_tcp_bad_checksum_dropped(void **state)
{
	(void)state;
	struct mst_sim *sim = listening(8);
	struct th_tx t;

	syn_to(sim, 41000, PORT, 1, &t);
	t.bad_tcp_cksum = true;
	expect_drop(sim, &t, "tcp_bad_cksum");
	/* also on a closed port: no RST for a corrupt segment */
	t.dport = 999;
	expect_drop(sim, &t, "tcp_bad_cksum");
	mst_sim_destroy(sim);
}

static void test_tcp_bad_flag_combinations_dropped(void **state)
{
	(void)state;
	struct mst_sim *sim = listening(8);
	struct th_tx t;

	syn_to(sim, 41000, PORT, 1, &t);
	t.flags = TH_SYN | TH_FIN;
	expect_drop(sim, &t, "tcp_bad_flags");
	t.flags = TH_SYN | TH_RST;
	expect_drop(sim, &t, "tcp_bad_flags");
	t.flags = TH_SYN | TH_FIN | TH_RST | TH_PSH | TH_URG | TH_ACK; /* christmas tree */
	expect_drop(sim, &t, "tcp_bad_flags");
	/* on an established connection too */
	struct th_conn c;
	mst_sim_destroy(sim);
	th_passive_open(&c, th_sim_default(), PORT, 1, NULL, NULL);
	th_send_at(&c, TH_SYN | TH_FIN | TH_ACK, c.snd_nxt, c.rcv_nxt, NULL, 0);
	th_expect_none(c.sim);
	assert_int_equal(th_state(c.sim, c.fd), TH_ESTABLISHED);
	mst_sim_destroy(c.sim);
}

/* Garbage to an established connection: no crash, connection intact. */
static void test_tcp_garbage_options_on_established(void **state)
{
	(void)state;
	struct th_conn c;
	struct th_tx t;
	static const uint8_t sack_odd[] = { 1, 1, 5, 7, 0, 0, 0, 1, 0, 0, 0, 0 }; /* SACK len 7 */
	static const uint8_t sack_huge[] = { 5, 34, 0, 0 };

	th_passive_open(&c, th_sim_default(), PORT, 1, NULL, NULL);
	th_tx_init(&c, &t, TH_ACK);
	t.opts.raw = sack_odd;
	t.opts.raw_len = sizeof(sack_odd);
	th_input(c.sim, &t);
	t.opts.raw = sack_huge;
	t.opts.raw_len = sizeof(sack_huge);
	th_input(c.sim, &t);
	th_expect_none(c.sim);
	assert_int_equal(th_state(c.sim, c.fd), TH_ESTABLISHED);
	th_send(&c, TH_ACK | TH_PSH, "ok", 2);
	char b[4];
	assert_int_equal(mst_sim_recv(c.sim, c.fd, b, 4), 2);
	mst_sim_destroy(c.sim);
}

/* SYN queue full -> SYN cookies; a valid cookie ACK makes a connection,
 * a forged one is answered with RST. */
static void test_tcp_syncookies_under_flood(void **state)
{
	(void)state;
	struct mst_sim *sim = th_sim_default();
	int lfd = mst_sim_socket(sim, 1);
	struct th_tx t;
	struct th_seg s;

	mst_sim_bind(sim, lfd, PORT);
	mst_sim_listen(sim, lfd, 2);
	for (int i = 0; i < 2; i++) {
		syn_to(sim, (uint16_t)(42000 + i), PORT, 1000u * (uint32_t)i, &t);
		th_input(sim, &t);
		th_expect(sim, TH_SYN | TH_ACK, &s);
	}
	assert_int_equal(th_ctr(sim, "tcp_syncookies_sent"), 0);
	/* flood */
	for (int i = 0; i < 50; i++) {
		syn_to(sim, (uint16_t)(43000 + i), PORT, 77777u * (uint32_t)i, &t);
		t.opts.mss = 1400;
		th_input(sim, &t);
		th_expect(sim, TH_SYN | TH_ACK, &s);
		assert_int_equal(s.ack, t.seq + 1);
	}
	assert_int_equal(th_ctr(sim, "tcp_syncookies_sent"), 50);
	unsigned held = mst_sim_conn_count(sim);
	assert_int_equal(held, 2);
	/* complete one cookie handshake */
	syn_to(sim, 44000, PORT, 5000, &t);
	t.opts.mss = 1400;
	th_input(sim, &t);
	th_expect(sim, TH_SYN | TH_ACK, &s);
	memset(&t, 0, sizeof(t));
	t.opts = TH_OPTS_NONE;
	t.sport = 44000;
	t.dport = PORT;
	t.seq = 5001;
	t.ack = s.seq + 1;
	t.flags = TH_ACK;
	t.win = 8000;
	th_input(sim, &t);
	assert_int_equal(th_ctr(sim, "tcp_syncookies_ok"), 1);
	assert_int_equal(mst_sim_conn_count(sim), held + 1);
	int fd = mst_sim_accept(sim, lfd, NULL, NULL);
	assert_true(fd >= 0);
	struct mst_sim_tcp_info ti;
	mst_sim_tcp_info(sim, fd, &ti);
	assert_int_equal(ti.state, TH_ESTABLISHED);
	assert_true(ti.mss <= 1400 && ti.mss >= 536); /* from the cookie's MSS table */
	/* data flows on it */
	assert_int_equal(mst_sim_send(sim, fd, "cookie", 6), 6);
	th_expect(sim, TH_ACK | TH_PSH, &s);
	assert_int_equal(s.seq, t.ack);
	/* forged cookie ACK */
	t.sport = 44001;
	t.ack = 0x12345678;
	th_input(sim, &t);
	th_expect(sim, TH_RST, &s);
	assert_int_equal(s.seq, 0x12345678);
	assert_int_equal(th_ctr(sim, "tcp_bad_cookie"), 1);
	mst_sim_destroy(sim);
}

static void two_sims(struct mst_sim **a, struct mst_sim **b)
{
	struct mst_sim_conf ca, cb;

	th_conf(&ca);
	th_conf(&cb);
	memcpy(cb.mac, ca.peer_mac, 6);
	memcpy(cb.peer_mac, ca.mac, 6);
	ca.ip = th_ip("10.0.0.1");
	cb.ip = th_ip("10.0.0.2");
	cb.services = MST_SIM_SVC_TCP_ECHO | MST_SIM_SVC_TCP_DISCARD | MST_SIM_SVC_TCP_CHARGEN;
	*a = th_sim_create(&ca);
	*b = th_sim_create(&cb);
}

static void test_tcp_services_echo_discard_chargen(void **state)
{
	(void)state;
	struct mst_sim *a, *b;
	static uint8_t out[100000], in[100000];
	size_t sent = 0, got = 0;

	two_sims(&a, &b);
	for (size_t i = 0; i < sizeof(out); i++)
		out[i] = (uint8_t)(i * 13 + 5);
	/* echo */
	int fd = mst_sim_socket(a, 1);
	mst_sim_connect(a, fd, th_ip("10.0.0.2"), 7);
	th_pump(a, b);
	assert_int_equal(th_state(a, fd), TH_ESTABLISHED);
	for (int r = 0; r < 5000 && got < sizeof(out); r++) {
		if (sent < sizeof(out)) {
			ssize_t k = mst_sim_send(a, fd, out + sent, sizeof(out) - sent);
			if (k > 0)
				sent += (size_t)k;
		}
		th_pump(a, b);
		ssize_t k = th_recv_all(a, fd, in + got, sizeof(in) - got);
		if (k > 0)
			got += (size_t)k;
		mst_sim_advance(a, TH_MS(1));
		mst_sim_advance(b, TH_MS(1));
	}
	assert_int_equal(got, sizeof(out));
	assert_memory_equal(in, out, sizeof(out));
	mst_sim_shutdown(a, fd, SHUT_WR);
	th_pump(a, b);
	assert_int_equal(mst_sim_recv(a, fd, in, 10), 0); /* echo closes after our FIN */
	mst_sim_close(a, fd);
	/* discard */
	fd = mst_sim_socket(a, 1);
	mst_sim_connect(a, fd, th_ip("10.0.0.2"), 9);
	th_pump(a, b);
	assert_int_equal(mst_sim_send(a, fd, out, 5000), 5000);
	for (int r = 0; r < 100; r++) {
		th_pump(a, b);
		mst_sim_advance(a, TH_MS(1));
		mst_sim_advance(b, TH_MS(1));
	}
	assert_int_equal(mst_sim_recv(a, fd, in, 10), -EAGAIN);
	struct mst_sim_tcp_info ti;
	mst_sim_tcp_info(a, fd, &ti);
	assert_int_equal(ti.snd_una, ti.snd_nxt); /* all acknowledged */
	mst_sim_close(a, fd);
	/* chargen: RFC 864 72-char lines of rotating printable ASCII */
	fd = mst_sim_socket(a, 1);
	mst_sim_connect(a, fd, th_ip("10.0.0.2"), 19);
	got = 0;
	for (int r = 0; r < 50 && got < 1000; r++) {
		th_pump(a, b);
		ssize_t k = th_recv_all(a, fd, in + got, sizeof(in) - got);
		if (k > 0)
			got += (size_t)k;
		mst_sim_advance(a, TH_MS(1));
		mst_sim_advance(b, TH_MS(1));
	}
	assert_true(got >= 148);
	assert_int_equal(in[72], '\r');
	assert_int_equal(in[73], '\n');
	assert_int_equal(in[74], in[1]); /* next line starts one character later */
	for (int i = 0; i < 72; i++)
		assert_true(in[i] >= 32 && in[i] < 127);
	mst_sim_close(a, fd);
	th_pump(a, b);
	mst_sim_destroy(a);
	mst_sim_destroy(b);
}

static void test_tcp_report_tcb_size(void **state)
{
	(void)state;
	size_t n = mst_sim_tcb_size();

	printf("# TCP control block: %zu bytes (excluding socket buffers)\n", n);
	assert_true(n > 0 && n <= 1024);
}

static int getint(struct mst_sim *sim, int fd, int name)
{
	int v = -1;
	size_t len = sizeof(v);

	assert_int_equal(mst_sim_getsockopt(sim, fd, SOL_SOCKET, name, &v, &len), 0);
	return v;
}

static int setint(struct mst_sim *sim, int fd, int name, int v)
{
	return mst_sim_setsockopt(sim, fd, SOL_SOCKET, name, &v, sizeof(v));
}

/* SO_RCVBUF on a connected socket: that connection's window, nobody
 * else's. Lowered from 16 KiB (inherited from the listener, offered in the
 * SYN-ACK) to 8 KiB: the window already offered is honoured (never
 * shrunk), then the receiver offers 8 KiB at most; getsockopt says 8 KiB
 * at once, and a later connection still gets the default. */
static void test_tcp_so_rcvbuf_per_connection_limits_window(void **state)
{
	(void)state;
	struct th_conn c, c2;
	struct th_seg s;
	char b[16384];
	int lfd;

	th_passive_open(&c, th_sim_default(), PORT, 1, NULL, NULL);
	lfd = c.lfd;
	assert_int_equal(setint(c.sim, lfd, SO_RCVBUF, 16384), 0);
	th_passive_open(&c2, c.sim, PORT + 1, 1, NULL, NULL); /* another listener */
	c.pport++; /* a second connection through the first listener */
	{
		struct th_tx t;
		struct th_seg sa;

		syn_to(c.sim, c.pport, PORT, 1, &t);
		th_input(c.sim, &t);
		th_expect(c.sim, TH_SYN | TH_ACK, &sa);
		assert_int_equal(sa.win, 16384);
		c.snd_nxt = 2;
		c.rcv_nxt = sa.seq + 1;
		c.ts = false;
		c.sack = false;
		c.peer_ws = -1;
		th_send(&c, TH_ACK, NULL, 0);
		c.fd = mst_sim_accept(c.sim, lfd, NULL, NULL);
		assert_true(c.fd >= 0);
	}
	assert_int_equal(getint(c.sim, c.fd, SO_RCVBUF), 16384);
	assert_int_equal(setint(c.sim, c.fd, SO_RCVBUF, 8192), 0);
	assert_int_equal(getint(c.sim, c.fd, SO_RCVBUF), 8192);
	memset(b, 'r', sizeof(b));
	for (int i = 0; i < 16; i++) {
		th_send(&c, TH_ACK, b, 1024);
		th_cexpect(&c, TH_ACK, &s);
		assert_int_equal(s.win, 16384 - 1024 * (i + 1)); /* the offer stands */
	}
	assert_int_equal(mst_sim_recv(c.sim, c.fd, b, sizeof(b)), 16384);
	th_cexpect(&c, TH_ACK, &s); /* window update: 8 KiB now */
	assert_int_equal(s.win, 8192);
	for (int i = 0; i < 8; i++) /* quick ACKs used up: every 2nd is ACKed */
		th_send(&c, TH_ACK, b, 1024);
	for (int n = 0; th_output(c.sim, &s); n++)
		assert_true(n < 8);
	assert_int_equal(s.ack, c.snd_nxt);
	assert_int_equal(s.win, 0);
	/* the stack default is untouched */
	assert_int_equal(getint(c.sim, c2.fd, SO_RCVBUF), 65536);
	assert_int_equal(getint(c.sim, c2.lfd, SO_RCVBUF), 65536);
	mst_sim_destroy(c.sim);
}

/* SO_SNDBUF per connection, clamped as Linux clamps (no EINVAL): below the
 * minimum gives the minimum, above the FIFO gives the FIFO; send() queues
 * no more than that. */
static void test_tcp_so_sndbuf_per_connection_clamped(void **state)
{
	(void)state;
	struct th_conn c, c2;
	static char b[10000];

	th_passive_open(&c, th_sim_default(), PORT, 1, NULL, NULL);
	c.win = 0; /* the peer's window is closed: nothing leaves */
	th_send(&c, TH_ACK, NULL, 0);
	th_drain(c.sim);
	assert_int_equal(setint(c.sim, c.fd, SO_SNDBUF, 100), 0);
	assert_int_equal(getint(c.sim, c.fd, SO_SNDBUF), 4096);
	assert_int_equal(mst_sim_send(c.sim, c.fd, b, sizeof(b)), 4096);
	assert_int_equal(mst_sim_send(c.sim, c.fd, b, sizeof(b)), -EAGAIN);
	assert_false(mst_sim_poll(c.sim, c.fd, POLLOUT) & POLLOUT);
	assert_int_equal(setint(c.sim, c.fd, SO_SNDBUF, 6000), 0);
	assert_int_equal(getint(c.sim, c.fd, SO_SNDBUF), 6000);
	assert_true(mst_sim_poll(c.sim, c.fd, POLLOUT) & POLLOUT);
	assert_int_equal(mst_sim_send(c.sim, c.fd, b, sizeof(b)), 6000 - 4096);
	assert_int_equal(setint(c.sim, c.fd, SO_SNDBUF, 1 << 30), 0);
	assert_int_equal(getint(c.sim, c.fd, SO_SNDBUF), 65536); /* the FIFO */
	assert_int_equal(setint(c.sim, c.fd, SO_SNDBUF, -1), 0);
	assert_int_equal(getint(c.sim, c.fd, SO_SNDBUF), 65536);
	th_passive_open(&c2, c.sim, PORT + 1, 1, NULL, NULL);
	assert_int_equal(getint(c.sim, c2.fd, SO_SNDBUF), 65536);
	assert_int_equal(getint(c.sim, c2.fd, SO_RCVBUF), 65536);
	mst_sim_destroy(c.sim);
}

/* A listener's SO_RCVBUF goes to the connections it makes, from their
 * SYN-ACK's window on (as Linux's accepted sockets inherit it). */
static void test_tcp_so_rcvbuf_inherited_from_listener(void **state)
{
	(void)state;
	struct th_conn c;
	struct th_seg sa;
	struct th_tx t;
	int fd;

	th_passive_open(&c, th_sim_default(), PORT, 1, NULL, NULL);
	assert_int_equal(setint(c.sim, c.lfd, SO_RCVBUF, 16384), 0);
	assert_int_equal(getint(c.sim, c.lfd, SO_RCVBUF), 16384);
	syn_to(c.sim, TH_PEER_PORT + 1, PORT, 500, &t);
	th_input(c.sim, &t);
	th_expect(c.sim, TH_SYN | TH_ACK, &sa);
	assert_int_equal(sa.win, 16384);
	t.flags = TH_ACK;
	t.seq = 501;
	t.ack = sa.seq + 1;
	th_input(c.sim, &t);
	fd = mst_sim_accept(c.sim, c.lfd, NULL, NULL);
	assert_true(fd >= 0);
	assert_int_equal(getint(c.sim, fd, SO_RCVBUF), 16384);
	assert_int_equal(getint(c.sim, c.fd, SO_RCVBUF), 65536); /* made before */
	mst_sim_destroy(c.sim);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tcp_so_rcvbuf_per_connection_limits_window),
		cmocka_unit_test(test_tcp_so_sndbuf_per_connection_clamped),
		cmocka_unit_test(test_tcp_so_rcvbuf_inherited_from_listener),
		cmocka_unit_test(test_tcp_malformed_options_dropped),
		cmocka_unit_test(test_tcp_bad_doff_dropped),
		cmocka_unit_test(test_tcp_truncated_header_dropped),
		cmocka_unit_test(test_tcp_bad_checksum_dropped),
		cmocka_unit_test(test_tcp_bad_flag_combinations_dropped),
		cmocka_unit_test(test_tcp_garbage_options_on_established),
		cmocka_unit_test(test_tcp_syncookies_under_flood),
		cmocka_unit_test(test_tcp_services_echo_discard_chargen),
		cmocka_unit_test(test_tcp_report_tcb_size),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
