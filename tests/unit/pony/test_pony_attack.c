/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests: Pony against hostile or unlucky peers (issue 13). Each test
 * builds the attack packet by packet through the harness and checks that
 * the victim keeps serving everyone else.
 */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pony_helper.h"
#include "transport/pony/pony_wire.h"

static struct pony_conf conf_small(void)
{
	struct pony_conf c;

	pony_conf_defaults(&c);
	c.max_flows = 16;
	c.max_msgs = 512;
	return c;
}

static struct world *mkworld(void)
{
	struct world *w = calloc(1, sizeof(*w));
	struct pony_conf c = conf_small();

	world_init(w, &c);
	return w;
}

static void rmworld(struct world *w)
{
	world_fini(w);
	free(w);
}

static bool a_done_1(struct world *w, void *arg)
{
	return w->a.n_tx >= 1;
}

/* ---- a late ACK (item 5) ---- */

#define LATE_PSN 600u /* A's data packet that is lost once */
static bool late_dropped;
static uint32_t late_a_epoch, late_b_epoch;

static bool drop_late_psn(struct world *w, const struct mst_pkt *p, uint32_t src, uint32_t dst)
{
	if (src != A_IP || pkt_type(p) != PONY_T_DATA || pkt_psn(p) != LATE_PSN || late_dropped)
		return false;
	late_dropped = true;
	late_a_epoch = pkt_src_epoch(p);
	late_b_epoch = pkt_dst_epoch(p);
	return true;
}

/* An ACK from B that was overtaken by a whole window of newer ones: its
 * selective-ack bit for psn LATE_PSN - win names a packet A retired long
 * ago, whose window slot LATE_PSN (lost, not yet retransmitted) now uses.
 * It must not retire LATE_PSN: the message would never complete (before
 * the fix A reported it sent while B never got it whole). */
static void test_pony_late_ack_keeps_newer_slot(void **state)
{
	struct world *w = mkworld();
	uint32_t len = 1000 * 1420, win = 512;
	uint8_t *buf = malloc(len);
	uint8_t d[sizeof(struct pony_hdr) + sizeof(struct pony_ack_ext)];
	struct pony_ack_ext a;

	fill_pattern(buf, len, 11);
	late_dropped = false;
	w->filter = drop_late_psn;
	assert_int_equal(node_send(&w->a, 1, 2, 0, buf, len, 1), 0);
	while (!late_dropped)
		world_run(w, 1, NULL, NULL);
	memset(&a, 0, sizeof(a));
	a.cum = htonl(LATE_PSN - win - 1);
	a.credits = htonl(win);
	a.sack[0] = 1; /* psn cum + 1 = LATE_PSN - win */
	put_pony_hdr(d, PONY_T_ACK, 0, late_b_epoch, late_a_epoch, 0);
	memcpy(d + sizeof(struct pony_hdr), &a, sizeof(a));
	pony_input(w->a.py, pkt_new(w, d, sizeof(d)), B_IP, w->now);
	assert_true(world_run(w, 5000 * MS, a_done_1, NULL));
	assert_int_equal(w->a.tx[0].status, 0);
	assert_int_equal(w->b.n_order, 1);
	assert_int_equal(fnv(w->b.rx[0].buf, len), fnv(buf, len));
	assert_true(w->a.st.drop[MST_DROP_pony_late_sack] >= 1);
	free(buf);
	rmworld(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pony_late_ack_keeps_newer_slot),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
