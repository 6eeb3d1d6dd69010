/* SPDX-License-Identifier: BSD-3-Clause */
/* Data transfer: reassembly, SACK generation, duplicates, window edges,
 * zero window and persist, Nagle, delayed ACK, sequence wraparound. */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "tcp_helper.h"

#define PORT 5001
#define SOL_TCP_ 6
#define TCP_NODELAY_ 1

static uint8_t pat[300000];

static int setup(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(pat); i++)
		pat[i] = (uint8_t)(i * 131 + (i >> 8));
	return 0;
}

static void open_passive(struct th_conn *c, uint32_t iss, bool ts)
{
	struct th_opts o = th_syn_opts();

	o.ts = ts;
	th_passive_open(c, th_sim_default(), PORT, iss, &o, NULL);
}

/* Send data at offset off (relative to the peer's ISN + 1) without moving snd_nxt. */
static void send_off(struct th_conn *c, uint32_t off, size_t len)
{
	th_send_at(c, TH_ACK, c->peer_iss + 1 + off, c->rcv_nxt, pat + off, len);
}

static void test_tcp_rx_in_order_byte_exact(void **state)
{
	(void)state;
	struct th_conn c;
	uint8_t buf[5000];

	open_passive(&c, 1, true);
	th_send(&c, TH_ACK | TH_PSH, pat, 1000);
	th_expect_ack(&c, c.snd_nxt); /* quick ACK at the start */
	th_send(&c, TH_ACK, pat + 1000, 1000);
	th_send(&c, TH_ACK | TH_PSH, pat + 2000, 448);
	assert_true(mst_sim_poll(c.sim, c.fd, POLLIN) & POLLIN);
	assert_int_equal(th_recv_all(c.sim, c.fd, buf, sizeof(buf)), 2448);
	assert_memory_equal(buf, pat, 2448);
	assert_int_equal(th_ctr(c.sim, "tcp_rx_bytes"), 2448);
	mst_sim_destroy(c.sim);
}

static void test_tcp_rx_out_of_order_sack_and_overlap(void **state)
{
	(void)state;
	struct th_conn c;
	struct th_seg s;
	uint8_t buf[6000];

	open_passive(&c, 7, true);
	uint32_t base = c.peer_iss + 1;
	/* hole [0,1000), then [1000,2000) */
	send_off(&c, 1000, 1000);
	th_cexpect(&c, TH_ACK, &s);
	assert_int_equal(s.ack, base);
	assert_int_equal(s.nsack, 1);
	assert_int_equal(s.sack[0][0], base + 1000);
	assert_int_equal(s.sack[0][1], base + 2000);
	/* second island [3000,3500): most recent block first (RFC 2018 §4) */
	send_off(&c, 3000, 500);
	th_cexpect(&c, TH_ACK, &s);
	assert_int_equal(s.ack, base);
	assert_int_equal(s.nsack, 2);
	assert_int_equal(s.sack[0][0], base + 3000);
	assert_int_equal(s.sack[0][1], base + 3500);
	assert_int_equal(s.sack[1][0], base + 1000);
	assert_int_equal(s.sack[1][1], base + 2000);
	assert_int_equal(mst_sim_recv(c.sim, c.fd, buf, sizeof(buf)), -EAGAIN);
	/* overlapping fill: [500,1500) overlaps the island */
	send_off(&c, 500, 1000);
	send_off(&c, 0, 600); /* overlaps [500,600) */
	th_cexpect(&c, TH_ACK, &s);
	th_cexpect(&c, TH_ACK, &s);
	assert_int_equal(s.ack, base + 2000);
	assert_int_equal(s.nsack, 1);
	assert_int_equal(s.sack[0][0], base + 3000);
	/* [1900,3200) covers the rest of the hole and overlaps both sides */
	send_off(&c, 1900, 1300);
	th_cexpect(&c, TH_ACK, &s);
	assert_int_equal(s.ack, base + 3500);
	assert_int_equal(s.nsack, 0);
	assert_int_equal(th_recv_all(c.sim, c.fd, buf, sizeof(buf)), 3500);
	assert_memory_equal(buf, pat, 3500);
	assert_true(th_ctr(c.sim, "tcp_ooo_segs") >= 2);
	mst_sim_destroy(c.sim);
}

/* RFC 9293 §3.10.7.4 / RFC 5681 §4.2: an old duplicate gets an immediate
 * ACK (and RFC 2883 D-SACK when SACK is on). */
static void test_tcp_rx_duplicate_reacked(void **state)
{
	(void)state;
	struct th_conn c;
	struct th_seg s;
	uint8_t buf[2000];

	open_passive(&c, 100, true);
	uint32_t base = c.peer_iss + 1;
	th_send(&c, TH_ACK, pat, 1000);
	th_expect_ack(&c, base + 1000);
	send_off(&c, 0, 1000);
	th_cexpect(&c, TH_ACK, &s);
	assert_int_equal(s.ack, base + 1000);
	if (s.nsack) { /* D-SACK: first block is the duplicate */
		assert_int_equal(s.sack[0][0], base);
		assert_int_equal(s.sack[0][1], base + 1000);
	}
	assert_int_equal(th_recv_all(c.sim, c.fd, buf, sizeof(buf)), 1000);
	th_expect_none(c.sim);
	mst_sim_destroy(c.sim);
}

static void test_tcp_rx_out_of_window_acked_and_dropped(void **state)
{
	(void)state;
	struct th_conn c;
	struct mst_sim_tcp_info ti;
	uint8_t buf[100];

	open_passive(&c, 100, true);
	mst_sim_tcp_info(c.sim, c.fd, &ti);
	int64_t oow = th_ctr(c.sim, "tcp_out_of_window");
	th_send_at(&c, TH_ACK, ti.rcv_nxt + ti.rcv_wnd + 10, c.rcv_nxt, pat, 50);
	th_expect_ack(&c, ti.rcv_nxt);
	/* far in the past too */
	th_send_at(&c, TH_ACK, ti.rcv_nxt - 100000, c.rcv_nxt, pat, 50);
	th_expect_ack(&c, ti.rcv_nxt);
	assert_int_equal(th_ctr(c.sim, "tcp_out_of_window"), oow + 2);
	assert_int_equal(mst_sim_recv(c.sim, c.fd, buf, sizeof(buf)), -EAGAIN);
	mst_sim_destroy(c.sim);
}

/* Receive window full: bytes beyond it are trimmed, the stack advertises
 * 0, and a window update follows when the app reads. */
static void test_tcp_rx_window_full_then_update(void **state)
{
	(void)state;
	struct mst_sim_conf conf;
	struct th_conn c;
	struct th_opts o = th_syn_opts();
	struct th_seg s;
	static uint8_t buf[10000];

	th_conf(&conf);
	conf.rx_buf = 4096;
	o.ts = false;
	th_passive_open(&c, th_sim_create(&conf), PORT, 9, &o, NULL);
	uint32_t base = c.peer_iss + 1;
	for (int i = 0; i < 4; i++) {
		th_send(&c, TH_ACK, pat + 1024 * i, 1024);
		th_cexpect(&c, TH_ACK, &s);
	}
	assert_int_equal(s.ack, base + 4096);
	assert_int_equal(s.win, 0);
	/* one more byte: out of window, ACK with window 0 */
	th_send_at(&c, TH_ACK, base + 4096, c.rcv_nxt, pat + 4096, 100);
	th_cexpect(&c, TH_ACK, &s);
	assert_int_equal(s.ack, base + 4096);
	assert_int_equal(s.win, 0);
	/* zero-window probe with 1 byte likewise */
	assert_int_equal(th_recv_all(c.sim, c.fd, buf, sizeof(buf)), 4096);
	assert_memory_equal(buf, pat, 4096);
	th_cexpect(&c, TH_ACK, &s); /* window update */
	assert_true(((uint32_t)s.win << (c.peer_ws >= 0 ? 0 : 0)) > 0);
	mst_sim_destroy(c.sim);
}

/* Peer window 0: the stack must probe with back-off (RFC 9293 §3.8.6.1,
 * RFC 1122 4.2.2.17) and send the data once the window opens. */
static void test_tcp_tx_zero_window_persist_backoff(void **state)
{
	(void)state;
	struct th_conn c;
	struct th_seg s;
	uint64_t t[12];
	int n = 0;

	open_passive(&c, 100, false);
	c.win = 0;
	th_send(&c, TH_ACK, NULL, 0); /* window update to 0 */
	assert_int_equal(mst_sim_send(c.sim, c.fd, pat, 3000), 3000);
	uint64_t t0 = mst_sim_now(c.sim);
	for (int ms = 0; ms < 60000; ms++) {
		while (th_output(c.sim, &s)) {
			assert_true(s.len <= 1);
			if (n < 12)
				t[n] = (mst_sim_now(c.sim) - t0) / 1000000;
			n++;
			/* each probe gets an ACK that keeps the window at 0 */
			th_send(&c, TH_ACK, NULL, 0);
		}
		mst_sim_advance(c.sim, TH_MS(1));
	}
	printf("# %d zero-window probes in 60 s:", n);
	for (int i = 0; i < n && i < 12; i++)
		printf(" %llu", (unsigned long long)t[i]);
	printf("\n");
	assert_true(n >= 3);
	assert_true(n <= 12);
	for (int i = 2; i < n && i < 12; i++)
		assert_true(t[i] - t[i - 1] >= t[i - 1] - t[i - 2]); /* non-decreasing gaps */
	assert_true(t[2] - t[1] > t[1] - t[0]);                     /* real back-off */
	assert_int_equal(th_ctr(c.sim, "tcp_zero_window_probes"), n);
	/* window opens: all 3000 bytes arrive */
	c.win = 65535;
	th_send(&c, TH_ACK, NULL, 0);
	size_t got = 0;
	for (int i = 0; i < 100 && got < 3000; i++) {
		while (th_output(c.sim, &s)) {
			if (!s.len)
				continue;
			/* the probe byte may already be in: accept from rcv_nxt */
			assert_true(s.seq == c.rcv_nxt || s.seq == c.rcv_nxt - 1);
			uint32_t skip = c.rcv_nxt - s.seq;
			assert_memory_equal(s.payload, pat + got - skip, s.len);
			got += s.len - skip;
			c.rcv_nxt += (uint32_t)(s.len - skip);
			th_send(&c, TH_ACK, NULL, 0);
		}
		mst_sim_advance(c.sim, TH_MS(10));
	}
	assert_int_equal(got, 3000);
	mst_sim_destroy(c.sim);
}

/* Nagle (RFC 896 / RFC 1122 4.2.3.4): a small segment waits while
 * unacknowledged data is outstanding; TCP_NODELAY sends it at once. */
static void test_tcp_nagle_vs_nodelay(void **state)
{
	(void)state;
	struct th_conn c;
	struct th_seg s;

	open_passive(&c, 100, false);
	mst_sim_send(c.sim, c.fd, "aaaaaaaaaa", 10);
	th_expect_data(&c, "aaaaaaaaaa", 10);
	mst_sim_send(c.sim, c.fd, "bbbbbbbbbb", 10);
	th_expect_none(c.sim); /* held by Nagle */
	th_send(&c, TH_ACK, NULL, 0);
	th_expect_data(&c, "bbbbbbbbbb", 10);
	int one = 1;
	assert_int_equal(mst_sim_setsockopt(c.sim, c.fd, SOL_TCP_, TCP_NODELAY_, &one, sizeof(one)),
			 0);
	mst_sim_send(c.sim, c.fd, "cccccccccc", 10);
	th_expect_data(&c, "cccccccccc", 10);
	(void)s;
	mst_sim_destroy(c.sim);
}

/* Quick ACKs at the start; later a lone in-order segment is ACKed by the
 * delayed-ACK timer (40 ms), two full segments at once (RFC 5681 §4.2),
 * and an out-of-order one at once. */
static void test_tcp_delayed_ack_and_quickack(void **state)
{
	(void)state;
	struct th_conn c;
	struct th_seg s;
	uint8_t buf[70000];
	uint32_t off = 0;

	open_passive(&c, 100, false);
	/* first segment: quick ACK */
	th_send(&c, TH_ACK, pat, 1460);
	off += 1460;
	th_expect_ack(&c, c.snd_nxt);
	/* leave the quick-ACK phase */
	for (int i = 0; i < 20; i++) {
		th_send(&c, TH_ACK, pat + off, 1460);
		off += 1460;
		th_drain(c.sim);
		th_recv_all(c.sim, c.fd, buf, sizeof(buf));
	}
	th_drain(c.sim);
	mst_sim_advance(c.sim, TH_MS(200));
	th_drain(c.sim);
	int64_t d0 = th_ctr(c.sim, "tcp_delayed_acks");
	th_send(&c, TH_ACK | TH_PSH, pat + off, 100);
	off += 100;
	th_expect_none(c.sim);
	mst_sim_advance(c.sim, TH_MS(39));
	th_expect_none(c.sim);
	mst_sim_advance(c.sim, TH_MS(2));
	th_expect_ack(&c, c.snd_nxt);
	assert_int_equal(th_ctr(c.sim, "tcp_delayed_acks"), d0 + 1);
	/* two full-sized segments: ACK after the second, no timer */
	th_send(&c, TH_ACK, pat + off, 1460);
	off += 1460;
	th_send(&c, TH_ACK, pat + off, 1460);
	off += 1460;
	th_cexpect(&c, TH_ACK, &s);
	assert_int_equal(s.ack, c.snd_nxt);
	th_expect_none(c.sim);
	/* out of order: immediate dup ACK */
	send_off(&c, off + 1460, 100);
	th_cexpect(&c, TH_ACK, &s);
	assert_int_equal(s.ack, c.snd_nxt);
	mst_sim_destroy(c.sim);
}

/* Receive side across 2^32: peer ISN just below the wrap, in-order and
 * out-of-order data crossing it. */
static void test_tcp_rx_seq_wraparound(void **state)
{
	(void)state;
	struct th_conn c;
	struct th_seg s;
	static uint8_t buf[40000];

	open_passive(&c, 0xffffffffu - 5000, true);
	uint32_t base = c.peer_iss + 1;
	send_off(&c, 0, 1400);
	th_cexpect(&c, TH_ACK, &s);
	/* [4200,5600) crosses 2^32 at offset 4999.. arrives before [1400,4200) */
	send_off(&c, 4200, 1400);
	th_cexpect(&c, TH_ACK, &s);
	assert_int_equal(s.ack, base + 1400);
	assert_int_equal(s.nsack, 1);
	assert_int_equal(s.sack[0][0], base + 4200);
	assert_int_equal(s.sack[0][1], base + 5600);
	send_off(&c, 2800, 1400);
	send_off(&c, 1400, 1400);
	th_drain(c.sim);
	for (uint32_t off = 5600; off < 21000; off += 1400)
		send_off(&c, off, 1400);
	mst_sim_advance(c.sim, TH_MS(100));
	struct th_seg last;
	int any = 0;
	while (th_output(c.sim, &s)) {
		last = s;
		any = 1;
	}
	assert_true(any);
	assert_int_equal(last.ack, base + 21000);
	assert_int_equal(th_recv_all(c.sim, c.fd, buf, sizeof(buf)), 21000);
	assert_memory_equal(buf, pat, 21000);
	mst_sim_destroy(c.sim);
}

/* Send side: a large transfer (sequence space well beyond the buffers),
 * ACKed by the peer every other segment; byte exact. */
static void test_tcp_tx_bulk_byte_exact(void **state)
{
	(void)state;
	struct th_conn c;
	struct th_seg s;
	size_t sent = 0, got = 0, total = sizeof(pat);
	int k = 0;

	open_passive(&c, 100, true);
	for (int round = 0; round < 20000 && got < total; round++) {
		if (sent < total) {
			ssize_t r = mst_sim_send(c.sim, c.fd, pat + sent, total - sent);
			if (r > 0)
				sent += (size_t)r;
		}
		while (th_output(c.sim, &s)) {
			if (!s.len)
				continue;
			assert_int_equal(s.seq, c.rcv_nxt);
			assert_memory_equal(s.payload, pat + got, s.len);
			got += s.len;
			c.rcv_nxt += (uint32_t)s.len;
			if (++k % 2 == 0)
				th_send(&c, TH_ACK, NULL, 0);
		}
		th_send(&c, TH_ACK, NULL, 0);
		mst_sim_advance(c.sim, TH_MS(1));
	}
	assert_int_equal(got, total);
	assert_int_equal(th_ctr(c.sim, "tcp_retransmits"), 0);
	mst_sim_destroy(c.sim);
}

/* The peer's window limits what is in flight: never beyond snd_una + wnd. */
static void test_tcp_tx_respects_peer_window(void **state)
{
	(void)state;
	struct th_conn c;
	struct th_seg s;
	struct th_opts o = th_syn_opts();

	o.ws = 2;
	o.ts = false;
	th_passive_open(&c, th_sim_default(), PORT, 100, &o, NULL);
	c.win = 1000; /* << 2 = 4000 bytes */
	th_send(&c, TH_ACK, NULL, 0);
	mst_sim_send(c.sim, c.fd, pat, 20000);
	size_t inflight = 0;
	/* sender SWS avoidance (RFC 1122 4.2.3.4) may hold the 1080-byte tail */
	for (int ms = 0; ms < 900; ms++) { /* below the 1 s initial RTO */
		while (th_output(c.sim, &s)) {
			if (s.len)
				assert_int_equal(s.seq, c.rcv_nxt + inflight);
			inflight += s.len;
		}
		mst_sim_advance(c.sim, TH_MS(1));
		if (inflight > 4000)
			break;
	}
	printf("# in flight against a 4000-byte window: %zu\n", inflight);
	assert_true(inflight >= 2920 && inflight <= 4000);
	mst_sim_destroy(c.sim);
}

/* RFC 9293 §3.10.7.4: the send window is taken from a segment only if it
 * is newer than the one that last set it (SND.WL1 < SEG.SEQ, or equal and
 * SND.WL2 =< SEG.ACK). A reordered segment filling a hole carries an older
 * window than the out-of-order one after it: it must not shrink the window. */
static void test_tcp_window_update_ignores_older_segment(void **state)
{
	(void)state;
	struct th_conn c;
	struct mst_sim_tcp_info ti;
	uint8_t buf[3000];

	open_passive(&c, 100, false);
	c.win = 8000;
	send_off(&c, 1000, 1000); /* out of order: SND.WL1 = base + 1000 */
	th_drain(c.sim);
	assert_int_equal(mst_sim_tcp_info(c.sim, c.fd, &ti), 0);
	assert_int_equal(ti.snd_wnd, 8000u << ti.snd_wscale);
	c.win = 100;
	send_off(&c, 0, 1000); /* older segment, smaller window: ignored */
	th_drain(c.sim);
	assert_int_equal(mst_sim_tcp_info(c.sim, c.fd, &ti), 0);
	assert_int_equal(ti.rcv_nxt, c.peer_iss + 1 + 2000);
	assert_int_equal(ti.snd_wnd, 8000u << ti.snd_wscale);
	assert_int_equal(th_recv_all(c.sim, c.fd, buf, sizeof(buf)), 2000);
	assert_memory_equal(buf, pat, 2000);
	c.win = 200; /* a newer segment does move it */
	send_off(&c, 2000, 100);
	th_drain(c.sim);
	assert_int_equal(mst_sim_tcp_info(c.sim, c.fd, &ti), 0);
	assert_int_equal(ti.snd_wnd, 200u << ti.snd_wscale);
	mst_sim_destroy(c.sim);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tcp_rx_in_order_byte_exact),
		cmocka_unit_test(test_tcp_rx_out_of_order_sack_and_overlap),
		cmocka_unit_test(test_tcp_rx_duplicate_reacked),
		cmocka_unit_test(test_tcp_rx_out_of_window_acked_and_dropped),
		cmocka_unit_test(test_tcp_rx_window_full_then_update),
		cmocka_unit_test(test_tcp_tx_zero_window_persist_backoff),
		cmocka_unit_test(test_tcp_nagle_vs_nodelay),
		cmocka_unit_test(test_tcp_delayed_ack_and_quickack),
		cmocka_unit_test(test_tcp_rx_seq_wraparound),
		cmocka_unit_test(test_tcp_tx_bulk_byte_exact),
		cmocka_unit_test(test_tcp_tx_respects_peer_window),
		cmocka_unit_test(test_tcp_window_update_ignores_older_segment),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
