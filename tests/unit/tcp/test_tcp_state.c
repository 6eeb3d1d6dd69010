/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Live upgrade, TCP part (transport/tcp/tcp_state.c): a stack holding
 * every kind of TCP state is exported, imported into a fresh stack and
 *   - re-exported byte for byte (round trip),
 *   - driven side by side with the original through the same segments and
 *     clock (RTO, delayed ACK, persist, keepalive, TIME_WAIT expiry): both
 *     send the same segments and end in the same state (differential),
 *   - refused, with the specific -errno and nothing leaked, when the state
 *     is newer, truncated, out of range, duplicated or dangling,
 *   - and the committed fixture tests/fixtures/state-v1-tcp.bin (format
 *     version 1) still imports and carries on.
 *
 * Regenerate the fixture (after a deliberate format change, with a version
 * bump and a migration for the old one):
 *   build/tests/unit/tcp/test_tcp_state --write-fixture tests/fixtures/state-v1-tcp.bin
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <arpa/inet.h>

#include <cmocka.h>

#include "common/state.h"
#include "transport/tcp/tcp_state.h"
#include "state_node.h"

#ifndef MST_FIXTURE_DIR
#define MST_FIXTURE_DIR "tests/fixtures"
#endif

/* peers of the world */
enum { P_A, P_B, P_C, P_D1, P_D2, P_E, P_FW1, P_FW2, P_FW2O, P_CW, P_CLOSING, P_LACK, P_TW1,
       P_TW2, P_TW3, P_RST, P_K, P_ECHO, P_CHARGEN, P_F, NPEERS };

struct world {
	struct sn_node *n;
	struct sn_peer p[NPEERS];
};

static uint8_t pattern[32768];

/* Drain what the stack sent; peers follow (ts_recent, in-order ack). */
static int take(struct sn_node *n, struct sn_peer *p)
{
	struct th_seg s;
	int k = 0;

	while (sn_output(n, &s, NULL, NULL)) {
		k++;
		for (int i = 0; i < NPEERS; i++) {
			if (p[i].pport != s.dport)
				continue;
			if (s.has_ts)
				p[i].ts_recent = s.tsval;
			if (s.seq == p[i].ack)
				p[i].ack += (uint32_t)s.len + !!(s.flags & TH_FIN) + !!(s.flags & TH_SYN);
		}
	}
	return k;
}

static struct tcp_cb *accept_one(struct sn_node *n, int slot)
{
	struct tcp_cb *c;

	assert_int_equal(tcp_accept(n->ts, n->slot[0], &c), 0);
	sn_own(n, slot, c);
	return c;
}

static void open_accepted(struct world *w, int pi, int slot)
{
	take(w->n, w->p);
	sn_passive(w->n, &w->p[pi], 80, (uint16_t)(1001 + pi), 100000u * (unsigned)(pi + 1), false);
	accept_one(w->n, slot);
	take(w->n, w->p);
}

/* A: in-order data unread, two out-of-order ranges (a SACKing receiver). */
static void world_ooo(struct world *w)
{
	struct sn_peer *p = &w->p[P_A];

	open_accepted(w, P_A, 1);
	sn_send(w->n, p, TH_ACK | TH_PSH, pattern, 1000);
	sn_send_at(w->n, p, TH_ACK, p->seq + 2000, pattern + 2000, 500);
	sn_send_at(w->n, p, TH_ACK, p->seq + 3500, pattern + 3500, 300);
	take(w->n, w->p);
	assert_int_equal(w->n->slot[1]->n_ooo, 2);
}

/* B: five segments out, the first lost, three SACKs: fast recovery. */
static void world_recovery(struct world *w)
{
	struct sn_peer *p = &w->p[P_B];
	struct tcp_cb *c;
	uint32_t una, b[1][2];

	open_accepted(w, P_B, 2);
	c = w->n->slot[2];
	una = c->snd_una;
	assert_int_equal(tcp_send(w->n->ts, c, pattern, 7300), 7300);
	take(w->n, w->p);
	for (int k = 2; k <= 4; k++) {
		b[0][0] = una + 1460;
		b[0][1] = una + 1460u * (unsigned)k;
		sn_send_sack(w->n, p, una, 1, b);
	}
	take(w->n, w->p);
	p->ack = una; /* the peer still waits for the first segment */
	assert_true(c->flags & TCPF_IN_RECOVERY);
	assert_true(c->n_score > 0);
}

/* C: the peer's window closed with data queued: the persist timer. */
static void world_persist(struct world *w)
{
	struct sn_peer *p = &w->p[P_C];
	struct tcp_cb *c;

	open_accepted(w, P_C, 3);
	c = w->n->slot[3];
	assert_int_equal(tcp_send(w->n->ts, c, pattern, 1000), 1000);
	take(w->n, w->p);
	p->win = 0;
	sn_send(w->n, p, TH_ACK, NULL, 0);
	assert_int_equal(tcp_send(w->n->ts, c, pattern, 1000), 1000);
	take(w->n, w->p);
	assert_true(c->flags & TCPF_PERSIST);
}

/* Two accepted-pending (with data), one SYN_RECEIVED, one SYN_SENT. */
static void world_queues(struct world *w)
{
	struct tcp_cb *c;

	sn_passive(w->n, &w->p[P_D1], 80, 1001 + P_D1, 7000000, false);
	sn_send(w->n, &w->p[P_D1], TH_ACK, pattern, 100);
	take(w->n, w->p);
	take(w->n, w->p);
	sn_passive(w->n, &w->p[P_D2], 80, 1001 + P_D2, 8000000, false);
	take(w->n, w->p);
	sn_passive(w->n, &w->p[P_E], 80, 1001 + P_E, 9000000, true);
	assert_int_equal(tcp_accept_pending(w->n->ts, w->n->slot[0]), 2);
	assert_int_equal(tcp_connect(w->n->ts, th_ip(TH_PEER_IP), 2000, 0, NULL, NULL, NULL, &c), 0);
	sn_own(w->n, 4, c);
	w->p[P_F].pport = 2000;
	w->p[P_F].sport = ntohs(c->lport);
	take(w->n, w->p);
}

static void world_closing(struct world *w)
{
	struct sn_node *n = w->n;
	uint32_t ack;

	open_accepted(w, P_FW1, 5);
	tcp_shutdown(n->ts, n->slot[5], SHUT_WR);
	open_accepted(w, P_FW2, 6);
	tcp_shutdown(n->ts, n->slot[6], SHUT_WR);
	take(n, w->p);
	sn_send(n, &w->p[P_FW2], TH_ACK, NULL, 0);
	open_accepted(w, P_FW2O, 7);
	tcp_set_user(n->slot[7], NULL); /* the app lets go */
	tcp_close(n->ts, n->slot[7]);
	n->slot[7] = NULL;
	take(n, w->p);
	sn_send(n, &w->p[P_FW2O], TH_ACK, NULL, 0);
	open_accepted(w, P_CW, 8);
	sn_send(n, &w->p[P_CW], TH_ACK | TH_FIN, NULL, 0);
	open_accepted(w, P_CLOSING, 9);
	ack = w->p[P_CLOSING].ack;
	tcp_shutdown(n->ts, n->slot[9], SHUT_WR);
	take(n, w->p);
	w->p[P_CLOSING].ack = ack; /* the FIN crosses ours */
	sn_send(n, &w->p[P_CLOSING], TH_ACK | TH_FIN, NULL, 0);
	open_accepted(w, P_LACK, 10);
	sn_send(n, &w->p[P_LACK], TH_ACK | TH_FIN, NULL, 0);
	take(n, w->p);
	tcp_shutdown(n->ts, n->slot[10], SHUT_WR);
	take(n, w->p);
}

static void world_timewait(struct world *w)
{
	struct sn_node *n = w->n;

	for (int k = 0; k < 3; k++) {
		int pi = P_TW1 + k, slot = 11 + k;

		open_accepted(w, pi, slot);
		tcp_shutdown(n->ts, n->slot[slot], SHUT_WR);
		take(n, w->p);
		sn_send(n, &w->p[pi], TH_ACK | TH_FIN, NULL, 0);
		take(n, w->p);
		assert_int_equal(tcp_state_of(n->slot[slot]), TCP_TIME_WAIT);
		if (k == 1) { /* closed by the app: FIFOs released */
			tcp_set_user(n->slot[slot], NULL);
			tcp_close(n->ts, n->slot[slot]);
			n->slot[slot] = NULL;
		}
		sn_advance(n, TH_MS(5));
	}
}

static void world_misc(struct world *w)
{
	struct sn_node *n = w->n;
	struct tcp_cb *c;

	open_accepted(w, P_RST, 14);
	sn_send(n, &w->p[P_RST], TH_RST | TH_ACK, NULL, 0);
	assert_int_equal(tcp_state_of(n->slot[14]), TCP_CLOSED);
	open_accepted(w, P_K, 15);
	c = n->slot[15];
	assert_int_equal(tcp_setopt(n->ts, c, TCP_SO_KEEPALIVE, 1), 0);
	assert_int_equal(tcp_setopt(n->ts, c, TCP_SO_KEEPIDLE, 5), 0);
	assert_int_equal(tcp_setopt(n->ts, c, TCP_SO_KEEPINTVL, 2), 0);
	assert_int_equal(tcp_setopt(n->ts, c, TCP_SO_KEEPCNT, 3), 0);
	assert_int_equal(tcp_setopt(n->ts, c, TCP_SO_NODELAY, 1), 0);
	assert_int_equal(tcp_set_cc(n->ts, c, "newreno"), 0);
}

/* Echo with a closed window: its TX full, unread bytes in its RX. */
static void world_services(struct world *w)
{
	struct sn_node *n = w->n;
	struct sn_peer *p = &w->p[P_ECHO];

	take(n, w->p);
	sn_passive(n, p, 7, 1001 + P_ECHO, 12000000, false);
	p->win = 0;
	sn_send(n, p, TH_ACK, NULL, 0);
	for (int k = 0; k < 14; k++)
		sn_send(n, p, TH_ACK, pattern + 1400 * k, 1400);
	take(n, w->p);
	sn_passive(n, &w->p[P_CHARGEN], 19, 1001 + P_CHARGEN, 13000000, false);
	take(n, w->p);
}

static void world_build(struct world *w, uint64_t now)
{
	struct tcp_cb *l;

	memset(w, 0, sizeof(*w));
	for (size_t i = 0; i < sizeof(pattern); i++)
		pattern[i] = (uint8_t)(i * 7 + i / 251);
	w->n = sn_create(now);
	assert_int_equal(tcp_services_start(w->n->ts, TCP_SVC_ECHO | TCP_SVC_CHARGEN), 0);
	assert_int_equal(tcp_listen(w->n->ts, 80, 8, NULL, NULL, NULL, &l), 0);
	sn_own(w->n, 0, l);
	world_ooo(w);
	world_recovery(w);
	world_persist(w);
	world_closing(w);
	world_timewait(w);
	world_misc(w);
	world_services(w);
	world_queues(w); /* last: its children stay in the accept queue */
	take(w->n, w->p);
}

static const enum tcp_state want_state[] = {
	[P_FW1] = TCP_FIN_WAIT_1, [P_FW2] = TCP_FIN_WAIT_2, [P_CW] = TCP_CLOSE_WAIT,
	[P_CLOSING] = TCP_CLOSING, [P_LACK] = TCP_LAST_ACK,
};

static void check_world_states(struct sn_node *n)
{
	static const int slot_of[] = { [P_FW1] = 5, [P_FW2] = 6, [P_CW] = 8, [P_CLOSING] = 9,
				       [P_LACK] = 10 };

	for (int pi = P_FW1; pi <= P_LACK; pi++)
		if (slot_of[pi])
			assert_int_equal(tcp_state_of(n->slot[slot_of[pi]]), want_state[pi]);
	assert_int_equal(tcp_state_of(n->slot[4]), TCP_SYN_SENT);
	assert_int_equal(tcp_state_of(n->slot[14]), TCP_CLOSED);
	assert_int_equal(tcp_error(n->slot[14]), ECONNRESET);
}

/* ---- 1. round trip ------------------------------------------------------ */

/* The state holds what the world promised: every TCP state, heap FIFOs
 * with out-of-order data, both owner kinds, a TIME_WAIT list of 3. */
static void check_coverage(const uint8_t *buf, size_t len)
{
	struct mst_state_reader rd;
	unsigned type, states = 0, n_fifo = 0, ext = 0, svc = 0, tw = 0;
	const void *pl;
	uint32_t plen;
	bool ooo = false, unread_echo = false;

	assert_int_equal(mst_sr_init(&rd, buf, len), 0);
	while (mst_sr_next(&rd, &type, &pl, &plen) == 1) {
		const struct tcp_state_cb *r = pl;

		if (type == MST_STATE_REC_TCP_FIFO_DATA)
			n_fifo++;
		if (type == MST_STATE_REC_TCP_TW_ORDER)
			tw = ((const struct tcp_state_tw *)pl)->n;
		if (type != MST_STATE_REC_TCP_CB)
			continue;
		states |= 1u << r->state;
		ext += r->owner.kind == TCP_OWNER_EXT;
		svc += r->svc != 0;
		ooo |= r->n_ooo == 2;
		unread_echo |= r->svc == TCP_STATE_SVC_ECHO && r->rx_tail != r->rx_head &&
			       r->tx_tail - r->tx_head == r->tx_size;
	}
	assert_int_equal(states, (1u << TCP_STATE__COUNT) - 1);
	assert_true(n_fifo > 10 && ext > 10 && svc >= 4 && ooo && unread_echo);
	assert_int_equal(tw, 3);
}

static void test_round_trip(void **state)
{
	struct world w;
	struct sn_node *b;
	uint8_t *s1, *s2;
	size_t l1, l2;

	(void)state;
	world_build(&w, SN_START_NS);
	check_world_states(w.n);
	l1 = sn_export(w.n, &s1);
	check_coverage(s1, l1);
	assert_int_equal(sn_import(s1, l1, w.n->now, &b), 0);
	check_world_states(b);
	assert_int_equal(tcp_conn_count(b->ts), tcp_conn_count(w.n->ts));
	assert_int_equal(tcp_accept_pending(b->ts, b->slot[0]), 2);
	assert_int_equal(b->ts->n_listeners, 3);
	l2 = sn_export(b, &s2);
	assert_int_equal(l1, l2);
	assert_memory_equal(s1, s2, l1);
	free(s1);
	free(s2);
	sn_destroy(b);
	sn_destroy(w.n);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
	};

	(void)argc;
	(void)argv;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
