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

/* The peers follow a segment the stack sent (ts_recent, in-order ack). */
static void follow(struct sn_peer *p, const struct th_seg *s)
{
	for (int i = 0; i < NPEERS; i++) {
		if (p[i].pport != s->dport)
			continue;
		if (s->has_ts)
			p[i].ts_recent = s->tsval;
		if (s->seq == p[i].ack)
			p[i].ack += (uint32_t)s->len + !!(s->flags & TH_FIN) + !!(s->flags & TH_SYN);
	}
}

/* Drain what the stack sent. */
static int take(struct sn_node *n, struct sn_peer *p)
{
	struct th_seg s;
	int k = 0;

	while (sn_output(n, &s, NULL, NULL)) {
		k++;
		follow(p, &s);
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
	sn_send_at(w->n, p, TH_ACK | TH_FIN, p->seq + 3800, NULL, 0); /* FIN ahead of a hole */
	take(w->n, w->p);
	assert_int_equal(w->n->slot[1]->n_ooo, 2);
	assert_true(w->n->slot[1]->flags & TCPF_RCV_FIN_PENDING);
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

/* One SYN_RECEIVED, one SYN_SENT (before the clock moves: they retry). */
static void world_handshakes(struct world *w)
{
	struct tcp_cb *c;

	take(w->n, w->p);
	sn_passive(w->n, &w->p[P_E], 80, 1001 + P_E, 9000000, true);
	assert_int_equal(tcp_connect(w->n->ts, th_ip(TH_PEER_IP), 2000, 0, NULL, NULL, NULL, &c), 0);
	sn_own(w->n, 4, c);
	w->p[P_F].pport = 2000;
	w->p[P_F].sport = ntohs(c->lport);
	take(w->n, w->p);
}

/* Two established children not accepted yet, the first with data. */
static void world_queues(struct world *w)
{
	take(w->n, w->p);
	sn_passive(w->n, &w->p[P_D1], 80, 1001 + P_D1, 7000000, false);
	sn_send(w->n, &w->p[P_D1], TH_ACK, pattern, 100);
	take(w->n, w->p);
	sn_passive(w->n, &w->p[P_D2], 80, 1001 + P_D2, 8000000, false);
	take(w->n, w->p);
	assert_int_equal(tcp_accept_pending(w->n->ts, w->n->slot[0]), 2);
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
	/* K scales windows both ways: the peer's shift 7, ours from a 256 KiB
	 * RX FIFO */
	take(n, w->p);
	/* SO_RCVBUF only limits a socket within its FIFO (it never grows
	 * one), so the stack's default makes K's FIFO large enough. */
	n->ts->conf.rx_buf = 262144;
	sn_passive_ws(n, &w->p[P_K], 80, 1001 + P_K, 100000u * (P_K + 1), false, 7);
	n->ts->conf.rx_buf = 16384;
	c = accept_one(n, 15);
	take(n, w->p);
	assert_true(c->snd_wscale == 7 && c->rcv_wscale > 0);
	assert_int_equal(tcp_setopt(n->ts, c, TCP_SO_KEEPALIVE, 1), 0);
	assert_int_equal(tcp_setopt(n->ts, c, TCP_SO_KEEPIDLE, 1), 0);
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

/* After the clock moved: a delayed ACK armed (quick ACKs used up, then one
 * segment) and a challenge ACK's budget in use (RFC 5961 RST in window). */
static void world_late(struct world *w)
{
	struct sn_node *n = w->n;
	struct sn_peer *p = &w->p[P_FW2];

	for (int k = 0; k < 17; k++) {
		sn_send(n, p, TH_ACK | TH_PSH, pattern, 10);
		take(n, w->p);
	}
	assert_true(tw_armed(&n->slot[6]->t_delack));
	sn_send_at(n, &w->p[P_CW], TH_RST, w->p[P_CW].seq + 100, NULL, 0);
	take(n, w->p);
	assert_true(n->slot[8]->challenge_refill_ns != 0);
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
	world_closing(w);
	world_timewait(w);
	world_misc(w);
	world_handshakes(w);
	/* SYN / SYN-ACK retransmitted, a keepalive probe out */
	sn_advance(w->n, TH_MS(1100));
	take(w->n, w->p);
	assert_int_equal(w->n->slot[15]->keep_probes, 1);
	world_ooo(w);
	world_recovery(w);
	world_persist(w);
	world_services(w);
	world_late(w);
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

/* Index of a block of ts, or -1 for NULL. */
static long idx_of(const struct tcp_stack *ts, const struct tcp_cb *c)
{
	return c ? (long)(c - ts->pool) : -1;
}

/* c with every pointer replaced by what it means (index, slot, name,
 * deadline), so that two stacks' blocks compare with memcmp. */
static void normalize(const struct sn_node *n, const struct tcp_cb *c, struct tcp_cb *out,
		      uint64_t dl[3])
{
	const struct tcp_stack *ts = n->ts;

	memcpy(out, c, sizeof(*out));
	dl[0] = tw_armed(&c->t_rtx) ? tw_deadline_ns(ts->wheel, &c->t_rtx) : 0;
	dl[1] = tw_armed(&c->t_delack) ? tw_deadline_ns(ts->wheel, &c->t_delack) : 0;
	dl[2] = tw_armed(&c->t_keep) ? tw_deadline_ns(ts->wheel, &c->t_keep) : 0;
	memset(&out->t_rtx, 0, offsetof(struct tw_timer, kind));
	memset(&out->t_delack, 0, offsetof(struct tw_timer, kind));
	memset(&out->t_keep, 0, offsetof(struct tw_timer, kind));
	out->t_delack.kind = TCP_T_DELACK; /* a listener's unused timers have none */
	out->t_keep.kind = TCP_T_KEEP;
	out->hnext = NULL;
	/* PRR state is not exported: it restarts at the next ACK (tcp_priv.h). */
	out->prr_delivered = out->prr_out = out->recover_fs = 0;
	out->reordering = 0;
	out->rx.data = out->tx.data = NULL;
	out->cc = (const void *)(c->cc ? (uintptr_t)c->cc->name[0] : 0);
	out->ev_fn = (tcp_event_fn)(uintptr_t)(c->ev_fn == tcp_svc_event ? 1 : c->ev_fn ? 2 : 0);
	out->ev_ctx = (void *)(uintptr_t)(c->ev_ctx == n ? 1 :
		(const char *)c->ev_ctx - (const char *)ts->svc + 2);
	if (!c->ev_ctx)
		out->ev_ctx = NULL;
	if (c->ev_fn == tcp_svc_event)
		out->user = c->user; /* chargen's position: a number */
	else
		out->user = c->user ? (void *)(uintptr_t)((struct tcp_cb *const *)c->user - n->slot + 1)
				    : NULL;
	out->listener = (void *)idx_of(ts, c->listener);
	out->aq_next = (void *)idx_of(ts, c->aq_next);
	out->tw_next = (void *)idx_of(ts, c->tw_next);
	out->tw_prev = (void *)idx_of(ts, c->tw_prev);
}

/* Every block of b is a's block of the same index, field for field, with
 * the same FIFO bytes (what the export must carry). */
static void check_same_blocks(const struct sn_node *a, const struct sn_node *b)
{
	static struct tcp_cb na, nb;
	uint64_t da[3], db[3];

	assert_memory_equal(&a->ts->secret, &b->ts->secret, sizeof(a->ts->secret));
	assert_int_equal(a->ts->start_ns, b->ts->start_ns);
	assert_int_equal(a->ts->hash_seed, b->ts->hash_seed);
	assert_memory_equal(a->ts->eph_table, b->ts->eph_table, sizeof(a->ts->eph_table));
	assert_int_equal(a->ts->services, b->ts->services);
	assert_int_equal(a->ts->n_conns, b->ts->n_conns);
	assert_int_equal(a->ts->n_listeners, b->ts->n_listeners);
	for (unsigned i = 0; i < a->ts->n_listeners; i++) {
		const struct tcp_listener_ext *x = &a->ts->lext[i], *y = &b->ts->lext[i];

		assert_int_equal(idx_of(a->ts, a->ts->listeners[i]), idx_of(b->ts, b->ts->listeners[i]));
		assert_int_equal(x->backlog, y->backlog);
		assert_int_equal(x->syn_queue, y->syn_queue);
		assert_int_equal(x->accept_len, y->accept_len);
		assert_int_equal(idx_of(a->ts, x->aq_head), idx_of(b->ts, y->aq_head));
		assert_int_equal(idx_of(a->ts, x->aq_tail), idx_of(b->ts, y->aq_tail));
	}
	assert_int_equal(idx_of(a->ts, a->ts->tw_head), idx_of(b->ts, b->ts->tw_head));
	assert_int_equal(idx_of(a->ts, a->ts->tw_tail), idx_of(b->ts, b->ts->tw_tail));
	for (uint32_t i = 0; i < SN_MAX_CONNS; i++) {
		const struct tcp_cb *x = &a->ts->pool[i], *y = &b->ts->pool[i];

		normalize(a, x, &na, da);
		normalize(b, y, &nb, db);
		if (memcmp(&na, &nb, sizeof(na)) || memcmp(da, db, sizeof(da))) {
			size_t off = 0;

			while (off < sizeof(na) && ((uint8_t *)&na)[off] == ((uint8_t *)&nb)[off])
				off++;
			fail_msg("block %u (%s) differs after import at byte %zu of the block", i,
				 tcp_state_names[x->state], off);
		}
		if (x->rx.data) {
			uint32_t used = x->rx.tail - x->rx.head, ext = used;

			for (unsigned k = 0; k < x->n_ooo; k++)
				if (used + (x->ooo[k].end - x->rcv_nxt) > ext)
					ext = used + (x->ooo[k].end - x->rcv_nxt);
			for (uint32_t o = 0; o < ext; o++)
				assert_int_equal(x->rx.data[(x->rx.head + o) & (x->rx.size - 1)],
						 y->rx.data[(y->rx.head + o) & (y->rx.size - 1)]);
			for (uint32_t o = x->tx.head; o != x->tx.tail; o++)
				assert_int_equal(x->tx.data[o & (x->tx.size - 1)],
						 y->tx.data[o & (y->tx.size - 1)]);
		}
	}
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
	check_same_blocks(w.n, b);
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

/* ---- 2. differential ---------------------------------------------------- */

struct out {
	unsigned n;
	size_t len[256];
	uint8_t tcp[256][1600];
};

/* Drain n's segments into o (and let the peers follow them). */
static void collect(struct sn_node *n, struct sn_peer *p, struct out *o)
{
	struct th_seg s;

	o->n = 0;
	while (o->n < 256 && sn_output(n, &s, o->tcp[o->n], &o->len[o->n])) {
		follow(p, &s);
		o->n++;
	}
}

static int seg_cmp(const void *a, const void *b)
{
	return memcmp(a, b, 1600);
}

/* Same segments, up to the order of timers due in the same tick (the
 * wheel's slot order is the arming order, which an import does not keep). */
static void same_output(struct out *a, struct out *b, int step)
{
	if (a->n != b->n)
		fail_msg("step %d: %u segments from the original, %u from the import", step, a->n,
			 b->n);
	for (unsigned i = 0; i < a->n; i++) {
		memset(a->tcp[i] + a->len[i], 0, 1600 - a->len[i]);
		memset(b->tcp[i] + b->len[i], 0, 1600 - b->len[i]);
	}
	qsort(a->tcp, a->n, 1600, seg_cmp);
	qsort(b->tcp, b->n, 1600, seg_cmp);
	for (unsigned i = 0; i < a->n; i++)
		if (memcmp(a->tcp[i], b->tcp[i], 1600))
			fail_msg("step %d: segment %u differs", step, i);
}

static uint8_t rbuf[32768];

/* What the peers and the apps do, the same on both stacks. */
static void step(struct sn_node *n, struct sn_peer *p, int k)
{
	switch (k) {
	case 0: sn_advance(n, TH_MS(40)); break;                      /* delayed ACKs */
	case 1: sn_send(n, &p[P_A], TH_ACK, pattern + 1000, 2000); break; /* fills a hole */
	case 2: sn_send(n, &p[P_A], TH_ACK, pattern + 3000, 500); break; /* and the FIN's */
	case 3: (void)tcp_recv(n->ts, n->slot[1], rbuf, sizeof(rbuf)); break;
	case 4: case 5: case 6: case 7: case 8: sn_advance(n, TH_MS(150)); break; /* RTO, persist */
	case 9: p[P_B].ack = n->slot[2]->snd_max; sn_send(n, &p[P_B], TH_ACK, NULL, 0); break;
	case 10: p[P_C].win = 65535; sn_send(n, &p[P_C], TH_ACK, NULL, 0); break;
	case 11: p[P_ECHO].win = 65535; sn_send(n, &p[P_ECHO], TH_ACK, NULL, 0); break;
	case 12: sn_send(n, &p[P_ECHO], TH_ACK, NULL, 0); break;
	case 13: sn_send(n, &p[P_CHARGEN], TH_ACK, NULL, 0); break;
	case 14: sn_send(n, &p[P_FW1], TH_ACK | TH_FIN, NULL, 0); break;
	case 15: tcp_shutdown(n->ts, n->slot[8], SHUT_WR); break;
	case 16: accept_one(n, 16); accept_one(n, 17); break;
	case 17: (void)tcp_recv(n->ts, n->slot[16], rbuf, sizeof(rbuf)); break;
	case 18: sn_send(n, &p[P_CLOSING], TH_ACK, NULL, 0); break;
	case 19: sn_send(n, &p[P_D2], TH_ACK | TH_PSH, pattern, 300); break;
	default:
		sn_advance(n, k < 60 ? TH_MS(500) : TH_MS(20000));    /* keepalive, TIME_WAIT */
		break;
	}
}

#define N_STEPS 66

static void test_differential(void **state)
{
	static struct out oa, ob;
	struct world w;
	struct sn_peer pb[NPEERS];
	struct sn_node *b;
	uint8_t *s1, *s2;
	size_t l1, l2;

	(void)state;
	world_build(&w, SN_START_NS);
	l1 = sn_export(w.n, &s1);
	assert_int_equal(sn_import(s1, l1, w.n->now, &b), 0);
	free(s1);
	memcpy(pb, w.p, sizeof(pb));
	w.n->n_ev = 0;
	for (int k = 0; k < N_STEPS; k++) {
		step(w.n, w.p, k);
		collect(w.n, w.p, &oa);
		step(b, pb, k);
		collect(b, pb, &ob);
		same_output(&oa, &ob, k);
	}
	/* the same events reached the app, and both ended in the same state */
	assert_int_equal(w.n->n_ev, b->n_ev);
	assert_true(w.n->n_ev > 5);
	assert_memory_equal(w.n->ev_log, b->ev_log, sizeof(uint32_t) * w.n->n_ev);
	assert_int_equal(tcp_conn_count(w.n->ts), tcp_conn_count(b->ts));
	l1 = sn_export(w.n, &s1);
	l2 = sn_export(b, &s2);
	assert_int_equal(l1, l2);
	assert_memory_equal(s1, s2, l1);
	free(s1);
	free(s2);
	sn_destroy(b);
	sn_destroy(w.n);
}

/* ---- 3. refusals -------------------------------------------------------- */

enum { KEEP, DROP, TWICE };

static uint32_t syn_sent_index; /* pool index of the world's active open */

/* What a refusal case does to one record (payload writable, *len may
 * shrink); returns KEEP, DROP or TWICE. */
typedef int (*mutate_fn)(int id, unsigned type, uint8_t *p, uint32_t *len, void *st);

struct mut_state {
	bool done;            /* the case applied its change once */
	uint32_t tuple[3];    /* a hashed block's laddr/raddr/ports seen before */
	bool have_tuple;
	uint16_t lport;       /* a listener's port seen before */
};

/* The target of CB mutations: A (established, heap FIFOs, two ooo ranges). */
static bool is_conn_a(const struct tcp_state_cb *r)
{
	return r->state == TCP_ESTABLISHED && r->n_ooo == 2;
}

static int mutate_cb(int id, struct tcp_state_cb *r, uint32_t *len, struct mut_state *m)
{
	if (id == 30 && (r->flags & TCPF_HASHED)) { /* a duplicate 4-tuple */
		if (m->have_tuple) {
			memcpy(&r->laddr, m->tuple, 8);
			memcpy(&r->lport, &m->tuple[2], 4);
			return KEEP;
		}
		memcpy(m->tuple, &r->laddr, 8);
		memcpy(&m->tuple[2], &r->lport, 4);
		m->have_tuple = true;
	}
	if (id == 31 && r->state == TCP_LISTEN) { /* two listeners on one port */
		if (m->lport)
			r->lport = m->lport;
		m->lport = r->lport;
	}
	if (id == 32 && r->state == TCP_LISTEN && r->owner.kind == TCP_OWNER_EXT)
		return TWICE;
	if (id == 33 && r->state == TCP_SYN_RECEIVED)
		r->listener = 60; /* dangling: no block there */
	if (!is_conn_a(r))
		return KEEP;
	switch (id) {
	case 1: r->state = TCP_STATE__COUNT; break;
	case 2: r->index = SN_MAX_CONNS; break;
	case 3: r->listener = SN_MAX_CONNS + 5; break;
	case 4: r->snd_wscale = 15; break;
	case 5: r->n_ooo = 9; break;
	case 6: r->n_score = 9; break;
	case 7: r->rx_size = 5000; break;
	case 8: r->rx_tail = r->rx_head + r->rx_size + 1; break;
	case 9: r->snd_nxt = r->snd_una - 1; break;
	case 10: r->mss = 10; break;
	case 11: strcpy(r->cc_name, "nosuch"); break;
	case 12: memset(r->cc_name, 'x', sizeof(r->cc_name)); break;
	case 13: r->flags |= TCPF_ACK_QUEUED; break;
	case 14: r->flags |= 1u << 25; break;
	case 15: r->owner.kind = 7; break;
	case 16: r->svc = 9; break;
	case 17: r->err = -1; break;
	case 18: r->owner.app_id = 2; break;          /* the owner refuses it */
	case 19: r->ooo[1].end = r->rcv_nxt + r->rx_size + 1; break;
	case 20: *len = sizeof(*r) - 8; break;        /* another layout */
	case 21: r->rx_size = 1u << 30; r->tx_size = 1u << 30; break; /* heap too big */
	case 22: r->svc = TCP_STATE_SVC_DISCARD; r->owner.kind = TCP_OWNER_STACK; break;
	case 23: r->pad1 = 1; break;
	default: break;
	}
	return KEEP;
}

static int put_index(uint8_t *p, uint32_t *len, size_t hlen, uint32_t at, uint32_t v)
{
	if (*len < hlen + 4 * (at + 1))
		return KEEP;
	memcpy(p + hlen + 4 * at, &v, 4);
	return KEEP;
}

static uint32_t get_index(const uint8_t *p, size_t hlen, uint32_t at)
{
	uint32_t v;

	memcpy(&v, p + hlen + 4 * at, 4);
	return v;
}

static int mutate(int id, unsigned type, uint8_t *p, uint32_t *len, void *arg)
{
	struct mut_state *m = arg;
	struct tcp_state_stack *s = (void *)p;
	struct tcp_state_listener *l = (void *)p;
	struct tcp_state_fifo *f = (void *)p;

	switch (type) {
	case MST_STATE_REC_TCP_STACK:
		if (id == 40)
			s->n_cbs = SN_MAX_CONNS + 1;
		if (id == 41)
			s->eph_unused = 5;
		if (id == 42)
			s->services = 0x80;
		if (id == 43)
			s->n_cbs++; /* a block missing */
		return KEEP;
	case MST_STATE_REC_TCP_CB:
		return mutate_cb(id, (struct tcp_state_cb *)p, len, m);
	case MST_STATE_REC_TCP_FIFO_DATA:
		if (id == 50 && !m->done)
			return m->done = true, DROP;
		if (id == 51 && !m->done)
			m->done = true, f->rx_len++;
		return KEEP;
	case MST_STATE_REC_TCP_LISTENER:
		if (l->n_accept == 2 && id == 60)
			return put_index(p, len, sizeof(*l), 1, get_index(p, sizeof(*l), 0));
		if (l->n_accept == 2 && id == 61) /* the SYN_SENT block: not a child */
			return put_index(p, len, sizeof(*l), 1, syn_sent_index);
		if (l->n_accept == 2 && id == 62)
			return put_index(p, len, sizeof(*l), 0, SN_MAX_CONNS);
		if (l->n_accept == 2 && id == 63)
			l->syn_queue++;
		return KEEP;
	case MST_STATE_REC_TCP_TW_ORDER:
		if (id == 70)
			return put_index(p, len, sizeof(struct tcp_state_tw), 1,
					 get_index(p, sizeof(struct tcp_state_tw), 0));
		if (id == 71)
			return put_index(p, len, sizeof(struct tcp_state_tw), 0, 63);
		if (id == 72)
			return put_index(p, len, sizeof(struct tcp_state_tw), 0, SN_MAX_CONNS + 1);
		if (id == 73)
			return DROP;
		return KEEP;
	default:
		return KEEP;
	}
}

/* src with every record passed through f(id); an aligned malloc'ed copy. */
static size_t rewrite(const uint8_t *src, size_t len, mutate_fn f, int id, uint8_t **out)
{
	struct mst_state_reader rd;
	struct mst_state_writer w;
	struct mut_state m = { 0 };
	size_t cap = len + 65536;
	const void *pl;
	unsigned type;
	uint32_t plen;
	long n;

	*out = aligned_alloc(8, cap);
	assert_non_null(*out);
	assert_int_equal(mst_sr_init(&rd, src, len), 0);
	mst_sw_init(&w, *out, cap, 7);
	while (mst_sr_next(&rd, &type, &pl, &plen) == 1) {
		uint8_t *copy = malloc(plen + 16);
		uint32_t l = plen;
		int what;

		assert_non_null(copy);
		memcpy(copy, pl, plen);
		what = f(id, type, copy, &l, &m);
		for (int k = 0; what != DROP && k < (what == TWICE ? 2 : 1); k++) {
			uint8_t *d = mst_sw_rec(&w, type, l);

			assert_non_null(d);
			memcpy(d, copy, l);
		}
		free(copy);
	}
	n = mst_sw_finish(&w, NULL);
	assert_true(n > 0);
	return (size_t)n;
}

static const struct {
	int id;
	int want;
	const char *what;
} refusals[] = {
	{ 1, -EINVAL, "state out of range" }, { 2, -ERANGE, "index beyond max_conns" },
	{ 3, -ERANGE, "listener beyond max_conns" }, { 4, -EINVAL, "window scale 15" },
	{ 5, -EINVAL, "9 ooo ranges" }, { 6, -EINVAL, "9 SACK ranges" },
	{ 7, -EINVAL, "FIFO size not a power of 2" }, { 8, -EINVAL, "RX used > size" },
	{ 9, -EINVAL, "snd_nxt before snd_una" }, { 10, -EINVAL, "MSS 10" },
	{ 11, -ENOENT, "unknown congestion control" }, { 12, -EINVAL, "cc name unterminated" },
	{ 13, -EINVAL, "transient flag" }, { 14, -EINVAL, "unknown flag" },
	{ 15, -EINVAL, "owner kind" }, { 16, -EINVAL, "service kind" },
	{ 17, -EINVAL, "negative error" }, { 18, -ENOENT, "owner refuses (unknown app)" },
	{ 19, -EINVAL, "ooo data beyond the FIFO" }, { 20, -EBADMSG, "TCP_CB of another size" },
	{ 21, -EINVAL, "heap FIFO of 1 GiB" }, { 22, -EINVAL, "service not running" },
	{ 23, -EINVAL, "padding not zero" },
	{ 30, -EEXIST, "duplicate 4-tuple" }, { 31, -EEXIST, "two listeners on a port" },
	{ 32, -EEXIST, "duplicate index" }, { 33, -EINVAL, "dangling listener" },
	{ 40, -ERANGE, "more blocks than max_conns" }, { 41, -EINVAL, "ephemeral cursor" },
	{ 42, -EINVAL, "unknown service" }, { 43, -EINVAL, "a block missing" },
	{ 50, -EINVAL, "FIFO data missing" }, { 51, -EBADMSG, "FIFO data of another length" },
	{ 60, -EEXIST, "accept queue entry twice" }, { 61, -EINVAL, "accept queue: not a child" },
	{ 62, -ERANGE, "accept queue index out of range" },
	{ 63, -EINVAL, "SYN queue count not its children" }, { 70, -EEXIST, "TIME_WAIT twice" },
	{ 71, -EINVAL, "TIME_WAIT entry dangling" }, { 72, -ERANGE, "TIME_WAIT index out of range" },
	{ 73, -EINVAL, "TIME_WAIT list missing" },
};

static void test_refusals(void **state)
{
	struct world w;
	struct sn_node *b;
	uint8_t *s1, *bad;
	size_t l1, lb;

	(void)state;
	world_build(&w, SN_START_NS);
	syn_sent_index = (uint32_t)(w.n->slot[4] - w.n->ts->pool);
	l1 = sn_export(w.n, &s1);
	for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
		int rc;

		lb = rewrite(s1, l1, mutate, refusals[i].id, &bad);
		rc = sn_import(bad, lb, w.n->now, &b);
		if (rc != refusals[i].want)
			fail_msg("%s: %d, want %d", refusals[i].what, rc, refusals[i].want);
		free(bad);
	}
	/* the rewriter itself changes nothing */
	lb = rewrite(s1, l1, mutate, 0, &bad);
	assert_int_equal(lb, l1);
	assert_int_equal(sn_import(bad, lb, w.n->now, &b), 0);
	sn_destroy(b);
	free(bad);
	free(s1);
	sn_destroy(w.n);
}

/* Newer versions, truncation, garbage framing, foreign records, a busy stack. */
static void test_refusals_framing(void **state)
{
	struct world w;
	struct sn_node *b;
	uint8_t *s1, *cut;
	struct mst_state_hdr h;
	size_t l1;
	uint32_t arp = 0;

	(void)state;
	world_build(&w, SN_START_NS);
	l1 = sn_export(w.n, &s1);
	memcpy(&h, s1, sizeof(h));
	h.version = MST_STATE_VERSION + 1;
	memcpy(s1, &h, sizeof(h));
	assert_int_equal(sn_import(s1, l1, w.n->now, &b), -EPROTONOSUPPORT);
	h.version = MST_STATE_VERSION;
	memcpy(s1, &h, sizeof(h));
	cut = aligned_alloc(8, l1);
	assert_non_null(cut);
	for (size_t n = 0; n < l1; n += n < 2048 ? 8 : 1024) { /* truncated */
		memcpy(cut, s1, n);
		assert_int_equal(sn_import(cut, n, w.n->now, &b), -EINVAL);
	}
	/* a header that lies: fewer records than there are */
	memcpy(cut, s1, l1);
	h.n_records -= 3;
	memcpy(cut, &h, sizeof(h));
	assert_int_equal(sn_import(cut, l1, w.n->now, &b), -EINVAL);
	free(cut);
	/* a foreign record in the TCP stream, a record before TCP_STACK */
	b = sn_create(w.n->now);
	assert_int_equal(tcp_import_rec(b->ts, MST_STATE_REC_ARP, &arp, 4, &b->hooks), -EINVAL);
	assert_int_equal(tcp_import_finish(b->ts, &b->hooks), -EINVAL);
	sn_destroy(b);
	/* a stack that already has a connection */
	b = sn_create(w.n->now);
	{
		struct mst_state_reader rd;
		const void *pl;
		unsigned type;
		uint32_t plen;
		struct tcp_cb *l;

		assert_int_equal(tcp_listen(b->ts, 99, 1, NULL, NULL, NULL, &l), 0);
		assert_int_equal(mst_sr_init(&rd, s1, l1), 0);
		assert_int_equal(mst_sr_next(&rd, &type, &pl, &plen), 1);
		assert_int_equal(tcp_import_rec(b->ts, type, pl, plen, &b->hooks), -EBUSY);
	}
	sn_destroy(b);
	free(s1);
	sn_destroy(w.n);
}

/* ---- 4. the committed fixture (format version 1) -------------------------- */

#define FIXTURE MST_FIXTURE_DIR "/state-v1-tcp.bin"

/* The fixed, small scenario of the fixture: a listener with one child
 * waiting in its accept queue and one in SYN_RECEIVED, an established
 * connection with a hole and two out-of-order ranges, one in TIME_WAIT,
 * an echo connection with echoed bytes not yet acknowledged. */
static struct sn_node *fixture_world(void)
{
	struct world w;
	struct tcp_cb *l;

	memset(&w, 0, sizeof(w));
	for (size_t i = 0; i < sizeof(pattern); i++)
		pattern[i] = (uint8_t)(i * 7 + i / 251);
	w.n = sn_create(SN_START_NS);
	assert_int_equal(tcp_services_start(w.n->ts, TCP_SVC_ECHO), 0);
	assert_int_equal(tcp_listen(w.n->ts, 80, 8, NULL, NULL, NULL, &l), 0);
	sn_own(w.n, 0, l);
	world_ooo(&w);
	open_accepted(&w, P_TW1, 11);
	tcp_shutdown(w.n->ts, w.n->slot[11], SHUT_WR);
	take(w.n, w.p);
	sn_send(w.n, &w.p[P_TW1], TH_ACK | TH_FIN, NULL, 0);
	take(w.n, w.p);
	sn_passive(w.n, &w.p[P_ECHO], 7, 1001 + P_ECHO, 12000000, false);
	sn_send(w.n, &w.p[P_ECHO], TH_ACK | TH_PSH, "hello, upgrade\n", 15);
	take(w.n, w.p);
	sn_passive(w.n, &w.p[P_E], 80, 1001 + P_E, 9000000, true);
	take(w.n, w.p);
	sn_passive(w.n, &w.p[P_D1], 80, 1001 + P_D1, 7000000, false);
	take(w.n, w.p);
	return w.n;
}

static int write_fixture(const char *path)
{
	struct sn_node *n = fixture_world();
	uint8_t *buf;
	size_t len = sn_export(n, &buf);
	FILE *f = fopen(path, "wb");

	if (!f || fwrite(buf, 1, len, f) != len || fclose(f)) {
		perror(path);
		return 1;
	}
	printf("%s: %zu bytes\n", path, len);
	free(buf);
	sn_destroy(n);
	return 0;
}

static uint8_t *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	long n;

	if (!f)
		fail_msg("%s: cannot open (run from the source root)", path);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n > 0);
	rewind(f);
	buf = aligned_alloc(8, ((size_t)n + 7) & ~(size_t)7);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static struct tcp_cb *find_state(struct sn_node *n, enum tcp_state st, uint16_t lport)
{
	for (uint32_t i = 0; i < SN_MAX_CONNS; i++) {
		struct tcp_cb *c = &n->ts->pool[i];

		if (c->state == st && c->lport == htons(lport) && (c->rx.data || st != TCP_ESTABLISHED))
			return c;
	}
	return NULL;
}

static void test_fixture_v1(void **state)
{
	struct sn_node *b;
	struct sn_peer p;
	struct tcp_cb *a, *tw, *echo;
	struct th_seg s;
	uint8_t *buf, *again, got[1800];
	size_t len, len2;

	(void)state;
	buf = read_file(FIXTURE, &len);
	assert_int_equal(sn_import(buf, len, SN_START_NS + TH_MS(10), &b), 0);
	/* what it holds */
	assert_int_equal(b->ts->n_listeners, 2);
	assert_int_equal(tcp_accept_pending(b->ts, b->slot[0]), 1);
	assert_int_equal(b->ts->lext[1].syn_queue + b->ts->lext[0].syn_queue, 1);
	a = b->slot[1];
	assert_int_equal(tcp_state_of(a), TCP_ESTABLISHED);
	assert_int_equal(a->n_ooo, 2);
	assert_int_equal(tcp_readable(a), 1000);
	tw = find_state(b, TCP_TIME_WAIT, 80);
	assert_non_null(tw);
	assert_ptr_equal(b->ts->tw_head, tw);
	echo = find_state(b, TCP_ESTABLISHED, 7);
	assert_non_null(echo);
	assert_int_equal(tcp_flight(echo), 15);
	/* what it does: the hole filled, A's data reads back whole */
	memset(&p, 0, sizeof(p));
	p.sport = 80;
	p.pport = ntohs(a->rport);
	p.seq = a->rcv_nxt;
	p.ack = a->snd_nxt;
	p.tsval = a->ts_recent + 10;
	p.win = 65535;
	sn_send(b, &p, TH_ACK, pattern + 1000, 1000);
	assert_true(sn_output(b, &s, NULL, NULL));
	assert_int_equal(s.ack, a->rcv_nxt);
	assert_int_equal(tcp_recv(b->ts, a, got, sizeof(got)), 1800);
	assert_memory_equal(got, pattern, 1800);
	/* the echo data is retransmitted, TIME_WAIT ends */
	sn_advance(b, TH_MS(1500));
	assert_true(sn_output(b, &s, NULL, NULL));
	sn_drain(b);
	sn_advance(b, TH_MS(61000));
	assert_null(find_state(b, TCP_TIME_WAIT, 80));
	sn_destroy(b);
	/* this version still writes exactly the fixture */
	if (MST_STATE_VERSION == 1) {
		assert_int_equal(sn_import(buf, len, SN_START_NS + TH_MS(10), &b), 0);
		b->now = SN_START_NS + TH_MS(10);
		len2 = sn_export(b, &again);
		assert_int_equal(len2, len);
		/* created_ns (the export time) is the only difference */
		assert_memory_equal(again + 32, buf + 32, len - 32);
		free(again);
		sn_destroy(b);
	}
	free(buf);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_differential),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_refusals_framing),
		cmocka_unit_test(test_fixture_v1),
	};

	if (argc == 3 && strcmp(argv[1], "--write-fixture") == 0)
		return write_fixture(argv[2]);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
