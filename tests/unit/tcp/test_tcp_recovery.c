/* SPDX-License-Identifier: BSD-3-Clause */
/* Loss recovery: fast retransmit (NewReno), SACK-based recovery, RTO after
 * a lost retransmission. */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "tcp_helper.h"

#define PORT 5005
#define MSS 1000

static uint8_t pat[100000];

static int setup(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(pat); i++)
		pat[i] = (uint8_t)(i * 7 + 3);
	return 0;
}

/* Open with MSS 1000 (no TS, so payload == MSS), send nseg segments and
 * collect their seqs. */
static void open_and_send(struct th_conn *c, bool sack, int nseg, uint32_t *seqs)
{
	struct mst_sim_conf conf;
	struct th_opts o = th_syn_opts();
	struct th_seg s;
	int n = 0;

	th_conf(&conf);
	conf.cc = "newreno";
	o.mss = MSS;
	o.ts = false;
	o.sack_perm = sack;
	th_passive_open(c, th_sim_create(&conf), PORT, 1, &o, NULL);
	assert_int_equal(mst_sim_send(c->sim, c->fd, pat, (size_t)nseg * MSS), nseg * MSS);
	while (th_output(c->sim, &s)) {
		assert_int_equal(s.len, MSS);
		assert_int_equal(s.seq, c->rcv_nxt + (uint32_t)n * MSS);
		seqs[n++] = s.seq;
	}
	assert_int_equal(n, nseg);
}

static void dupack(struct th_conn *c, uint32_t ack, int nsack, const uint32_t (*blk)[2])
{
	struct th_tx t;

	th_tx_init(c, &t, TH_ACK);
	t.ack = ack;
	t.opts.nsack = nsack;
	for (int i = 0; i < nsack; i++) {
		t.opts.sack[i][0] = blk[i][0];
		t.opts.sack[i][1] = blk[i][1];
	}
	th_input(c->sim, &t);
}

/* RFC 5681 §3.2 / RFC 6582: third duplicate ACK -> retransmit the first
 * unacknowledged segment at once; partial ACK -> next hole. */
static void test_tcp_fast_rexmit_newreno(void **state)
{
	(void)state;
	struct th_conn c;
	struct th_seg s;
	uint32_t seq[10];

	open_and_send(&c, false, 10, seq);
	/* segments 1 and 4 lost; peer ACKs seg 0, then dupacks */
	dupack(&c, seq[1], 0, NULL);
	th_drain(c.sim); /* cwnd growth may release new data */
	dupack(&c, seq[1], 0, NULL);
	dupack(&c, seq[1], 0, NULL);
	th_expect_none(c.sim);
	dupack(&c, seq[1], 0, NULL);
	th_cexpect(&c, TH_ACK, &s);
	assert_int_equal(s.seq, seq[1]);
	assert_int_equal(s.len, MSS);
	assert_memory_equal(s.payload, pat + MSS, MSS);
	assert_int_equal(th_ctr(c.sim, "tcp_fast_retransmits"), 1);
	th_drain(c.sim);
	/* partial ACK up to seg 4: NewReno retransmits seg 4 at once */
	dupack(&c, seq[4], 0, NULL);
	bool found = false;
	while (th_output(c.sim, &s))
		if (s.seq == seq[4] && s.len == MSS)
			found = true;
	assert_true(found);
	assert_int_equal(th_ctr(c.sim, "tcp_rto_timeouts"), 0);
	mst_sim_destroy(c.sim);
}

/* RFC 6675: with SACK, only the holes are retransmitted (no go-back-N). */
static void test_tcp_sack_recovery_retransmits_only_holes(void **state)
{
	(void)state;
	struct th_conn c;
	struct th_seg s;
	uint32_t seq[10];
	uint32_t blk[2][2];
	int retx[10] = { 0 };

	open_and_send(&c, true, 10, seq);
	/* lost: 1 and 4. Received: 0, 2-3, 5-9 */
	uint32_t end = seq[9] + MSS;
	blk[0][0] = seq[2];
	blk[0][1] = seq[4];
	dupack(&c, seq[1], 1, blk);
	blk[0][0] = seq[5];
	blk[0][1] = seq[7];
	blk[1][0] = seq[2];
	blk[1][1] = seq[4];
	dupack(&c, seq[1], 2, blk);
	blk[0][1] = end;
	dupack(&c, seq[1], 2, blk);
	for (int k = 0; k < 5; k++) {
		while (th_output(c.sim, &s)) {
			if (!s.len)
				continue;
			for (int i = 0; i < 10; i++)
				if (s.seq == seq[i])
					retx[i]++;
		}
		mst_sim_advance(c.sim, TH_MS(1));
	}
	printf("# retransmitted:");
	for (int i = 0; i < 10; i++)
		if (retx[i])
			printf(" seg%d", i);
	printf("\n");
	assert_int_equal(retx[1], 1);
	assert_int_equal(retx[4], 1);
	for (int i = 0; i < 10; i++)
		if (i != 1 && i != 4)
			assert_int_equal(retx[i], 0);
	/* everything ACKed: recovery ends, no RTO */
	dupack(&c, end, 0, NULL);
	assert_int_equal(th_ctr(c.sim, "tcp_rto_timeouts"), 0);
	mst_sim_destroy(c.sim);
}

/* RFC 6675 IsLost (issue 14.3, packetdrill prr-ss-ack-below-snd_una):
 * segments 0, 4 and 7 lost; SACKs 1-2 and 8. Segment 0 has 3 MSS SACKed
 * above it (lost), 3-7 only 1 MSS (not lost yet): the third SACK
 * retransmits segment 0 alone. Then PRR (RFC 6937): the ACK of 0-3 with
 * nothing new delivered beyond 1 MSS releases at most 2 MSS more. */
static void test_tcp_sack_third_dupack_only_lost_hole(void **state)
{
	(void)state;
	struct th_conn c;
	struct th_seg s;
	uint32_t seq[10];
	uint32_t blk[2][2];
	int n = 0;

	open_and_send(&c, true, 10, seq);
	blk[0][0] = seq[1];
	blk[0][1] = seq[2];
	dupack(&c, seq[0], 1, blk);
	blk[0][1] = seq[3];
	dupack(&c, seq[0], 1, blk);
	blk[1][0] = seq[8];
	blk[1][1] = seq[9];
	dupack(&c, seq[0], 2, blk);
	while (th_output(c.sim, &s)) {
		if (!s.len)
			continue;
		assert_int_equal(s.seq, seq[0]); /* not 3..7: not lost by IsLost */
		n++;
	}
	assert_int_equal(n, 1);
	/* ACK up to seg 3 with SACK 8: DeliveredData 1 MSS; pipe 5 MSS below
	 * ssthresh (newreno: 5 MSS): PRR-SSRB allows nothing beyond ssthresh. */
	blk[0][0] = seq[8];
	blk[0][1] = seq[9];
	dupack(&c, seq[3], 1, blk);
	n = 0;
	while (th_output(c.sim, &s))
		if (s.len)
			n++;
	assert_true(n <= 2);
	mst_sim_destroy(c.sim);
}

/* RFC 3708 / RFC 6675 §1: a D-SACK for a segment we fast-retransmitted
 * (the original was only late) raises DupThresh, so the same reordering
 * (3 segments SACKed above a hole) no longer starts a fast retransmit. */
static void test_tcp_dsack_raises_dupthresh(void **state)
{
	(void)state;
	struct th_conn c;
	struct th_seg s;
	uint32_t seq[10], blk[2][2];
	int n = 0;

	open_and_send(&c, true, 10, seq);
	/* seg 0 late: 1..7 SACKed, fast retransmit of seg 0 */
	blk[0][0] = seq[1];
	for (int k = 2; k <= 4; k++) {
		blk[0][1] = seq[k];
		dupack(&c, seq[0], 1, blk);
	}
	blk[0][1] = seq[8];
	dupack(&c, seq[0], 1, blk);
	assert_int_equal(th_ctr(c.sim, "tcp_fast_retransmits"), 1);
	th_drain(c.sim);
	/* the original arrives: everything ACKed, the retransmission D-SACKed */
	blk[0][0] = seq[0];
	blk[0][1] = seq[1];
	dupack(&c, seq[9] + MSS, 1, blk);
	assert_int_equal(th_ctr(c.sim, "tcp_dsack_spurious"), 1);
	th_drain(c.sim);
	/* the same reordering again: no fast retransmit this time */
	assert_int_equal(mst_sim_send(c.sim, c.fd, pat, 10 * MSS), 10 * MSS);
	while (th_output(c.sim, &s))
		if (s.len)
			seq[n++ % 10] = s.seq;
	assert_true(n >= 5);
	blk[0][0] = seq[1];
	blk[0][1] = seq[4];
	dupack(&c, seq[0], 1, blk);
	assert_int_equal(th_ctr(c.sim, "tcp_fast_retransmits"), 1);
	mst_sim_destroy(c.sim);
}

/* The fast retransmission is lost too: the RTO fires and resends the
 * first unacknowledged segment (RFC 6298 §5.4). */
static void test_tcp_rto_after_lost_retransmit(void **state)
{
	(void)state;
	struct th_conn c;
	struct th_seg s;
	uint32_t seq[6];

	open_and_send(&c, false, 6, seq);
	dupack(&c, seq[1], 0, NULL);
	for (int i = 0; i < 3; i++)
		dupack(&c, seq[1], 0, NULL);
	th_cexpect(&c, TH_ACK, &s);
	assert_int_equal(s.seq, seq[1]);
	th_drain(c.sim);
	int64_t r0 = th_ctr(c.sim, "tcp_rto_timeouts");
	bool seen = false;
	for (int ms = 0; ms < 3000 && !seen; ms++) {
		mst_sim_advance(c.sim, TH_MS(1));
		while (th_output(c.sim, &s))
			if (s.seq == seq[1] && s.len)
				seen = true;
	}
	assert_true(seen);
	assert_int_equal(th_ctr(c.sim, "tcp_rto_timeouts"), r0 + 1);
	/* cwnd collapsed to 1 segment (RFC 5681 §3.1) */
	struct mst_sim_tcp_info ti;
	mst_sim_tcp_info(c.sim, c.fd, &ti);
	assert_int_equal(ti.cwnd, MSS);
	mst_sim_destroy(c.sim);
}

/* Fewer than 3 dupacks: no retransmission (limited transmit may send new data). */
static void test_tcp_two_dupacks_no_rexmit(void **state)
{
	(void)state;
	struct th_conn c;
	struct th_seg s;
	uint32_t seq[4];

	open_and_send(&c, false, 4, seq);
	dupack(&c, seq[1], 0, NULL);
	dupack(&c, seq[1], 0, NULL);
	dupack(&c, seq[1], 0, NULL);
	while (th_output(c.sim, &s))
		assert_int_not_equal(s.seq, seq[1]);
	assert_int_equal(th_ctr(c.sim, "tcp_retransmits"), 0);
	mst_sim_destroy(c.sim);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tcp_fast_rexmit_newreno),
		cmocka_unit_test(test_tcp_sack_recovery_retransmits_only_holes),
		cmocka_unit_test(test_tcp_sack_third_dupack_only_lost_hole),
		cmocka_unit_test(test_tcp_dsack_raises_dupthresh),
		cmocka_unit_test(test_tcp_rto_after_lost_retransmit),
		cmocka_unit_test(test_tcp_two_dupacks_no_rexmit),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
