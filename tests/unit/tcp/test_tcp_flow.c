/* SPDX-License-Identifier: BSD-3-Clause */
/* Flow records (tcp_flow.c): one final record per connection with the
 * close reason, bytes and segments exactly as the peer saw them, periodic
 * records for open ones, the statistics carried across a live upgrade
 * (TCP_FLOW) and refused when malformed; nothing counted when off. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "common/state.h"
#include "state_node.h"
#include "transport/tcp/tcp_state.h"

#define LOG_MAX 16

struct flow_log {
	unsigned n;
	struct tcp_flow_info f[LOG_MAX];
};

static void hook(void *ctx, const struct tcp_flow_info *f)
{
	struct flow_log *l = ctx;

	if (l->n < LOG_MAX)
		l->f[l->n] = *f;
	l->n++;
}

/* The stack's segments, counted; the peer follows them. */
static unsigned take(struct sn_node *n, struct sn_peer *p)
{
	struct th_seg s;
	unsigned k = 0;

	while (sn_output(n, &s, NULL, NULL)) {
		k++;
		if (s.has_ts)
			p->ts_recent = s.tsval;
		if (s.seq == p->ack)
			p->ack += (uint32_t)s.len + !!(s.flags & TH_FIN) + !!(s.flags & TH_SYN);
	}
	return k;
}

struct fixture {
	struct sn_node *n;
	struct sn_peer p;
	struct flow_log log;
	struct tcp_cb *c;
	unsigned peer_segs, our_segs;   /* what the peer sent / received */
};

/* A listener, flow records on, one accepted connection. */
static void open_one(struct fixture *x, bool flows_on)
{
	struct tcp_cb *l;

	memset(x, 0, sizeof(*x));
	x->n = sn_create(SN_START_NS);
	if (flows_on)
		tcp_set_flow_hook(x->n->ts, hook, &x->log);
	assert_int_equal(tcp_listen(x->n->ts, 80, 8, NULL, NULL, NULL, &l), 0);
	sn_own(x->n, 0, l);
	sn_passive(x->n, &x->p, 80, 1001, 5000, false); /* SYN, SYN-ACK, ACK */
	x->peer_segs = 2;
	x->our_segs = 1 + take(x->n, &x->p);
	assert_int_equal(tcp_accept(x->n->ts, l, &x->c), 0);
	sn_own(x->n, 1, x->c);
}

static void peer_send(struct fixture *x, uint8_t flags, const void *d, size_t len)
{
	sn_send(x->n, &x->p, flags, d, len);
	x->peer_segs++;
	x->our_segs += take(x->n, &x->p);
}

static const uint8_t data[3000];

/* 100 bytes from the peer read, 2000 sent back and ACKed. */
static void exchange(struct fixture *x)
{
	uint8_t buf[200];

	peer_send(x, TH_ACK | TH_PSH, data, 100);
	assert_int_equal(tcp_recv(x->n->ts, x->c, buf, sizeof(buf)), 100);
	assert_int_equal(tcp_send(x->n->ts, x->c, data, 2000), 2000);
	x->our_segs += take(x->n, &x->p);
	peer_send(x, TH_ACK, NULL, 0);        /* Nagle held the tail until this */
	peer_send(x, TH_ACK, NULL, 0);
}

static void check_counts(const struct fixture *x, const struct tcp_flow_info *f)
{
	assert_int_equal(f->bytes_received, 100);
	assert_int_equal(f->bytes_acked, 2000);
	assert_int_equal(f->bytes_sent, 2000);
	assert_int_equal(f->segs_in, x->peer_segs);
	assert_int_equal(f->segs_out, x->our_segs);
	assert_int_equal(f->lport, 80);
	assert_int_equal(f->rport, 1001);
	assert_true(f->passive);
	assert_true(f->start_ns == SN_START_NS);
	assert_true(f->max_cwnd > 0);
}

static void test_flow_fin(void **state)
{
	struct fixture x;

	(void)state;
	open_one(&x, true);
	exchange(&x);
	peer_send(&x, TH_ACK | TH_FIN, NULL, 0);
	assert_int_equal(x.log.n, 0);
	tcp_close(x.n->ts, x.c);              /* our FIN: LAST_ACK */
	x.our_segs += take(x.n, &x.p);
	peer_send(&x, TH_ACK, NULL, 0);       /* acknowledges it: the end */
	assert_int_equal(x.log.n, 1);
	assert_int_equal(x.log.f[0].reason, TCP_CLOSE_fin);
	assert_string_equal(tcp_close_reason_class[x.log.f[0].reason], "fin");
	check_counts(&x, &x.log.f[0]);
	sn_destroy(x.n);
}

static void test_flow_reset_by_peer(void **state)
{
	struct fixture x;

	(void)state;
	open_one(&x, true);
	exchange(&x);
	peer_send(&x, TH_RST, NULL, 0);
	assert_int_equal(x.log.n, 1);
	assert_int_equal(x.log.f[0].reason, TCP_CLOSE_reset_by_peer);
	check_counts(&x, &x.log.f[0]);
	tcp_close(x.n->ts, x.c);              /* no second record */
	assert_int_equal(x.log.n, 1);
	sn_destroy(x.n);
}

static void test_flow_reset_by_us(void **state)
{
	struct fixture x;

	(void)state;
	open_one(&x, true);
	peer_send(&x, TH_ACK | TH_PSH, data, 10);
	tcp_close(x.n->ts, x.c);              /* 10 bytes unread: RST */
	assert_int_equal(x.log.n, 1);
	assert_int_equal(x.log.f[0].reason, TCP_CLOSE_unread_data);
	assert_string_equal(tcp_close_reason_class[x.log.f[0].reason], "reset_by_us");
	sn_destroy(x.n);

	open_one(&x, true);
	tcp_set_close_reason(x.c, TCP_CLOSE_app_died); /* the app layer's word wins */
	tcp_abort(x.n->ts, x.c);
	assert_int_equal(x.log.n, 1);
	assert_int_equal(x.log.f[0].reason, TCP_CLOSE_app_died);
	sn_destroy(x.n);
}

static void test_flow_rto_timeout(void **state)
{
	struct fixture x;

	(void)state;
	open_one(&x, true);
	assert_int_equal(tcp_send(x.n->ts, x.c, data, 100), 100);
	take(x.n, &x.p);                      /* lost: never ACKed */
	for (int i = 0; i < 3600 && !x.log.n; i++) {
		sn_advance(x.n, TH_MS(1000));
		take(x.n, &x.p);
	}
	assert_int_equal(x.log.n, 1);
	assert_int_equal(x.log.f[0].reason, TCP_CLOSE_rto_timeout);
	assert_true(x.log.f[0].rto_count >= 10);
	assert_int_equal(x.log.f[0].retransmits, x.log.f[0].rto_count);
	assert_int_equal(x.log.f[0].bytes_acked, 0);
	sn_destroy(x.n);
}

static void test_flow_periodic(void **state)
{
	struct fixture x;

	(void)state;
	open_one(&x, true);
	exchange(&x);
	tcp_flow_scan(x.n->ts, TH_MS(10000));
	assert_int_equal(x.log.n, 0);          /* not 10 s old yet */
	sn_advance(x.n, TH_MS(10000));
	tcp_flow_scan(x.n->ts, TH_MS(10000));
	assert_int_equal(x.log.n, 1);
	assert_int_equal(x.log.f[0].reason, TCP_CLOSE_open);
	check_counts(&x, &x.log.f[0]);
	tcp_flow_scan(x.n->ts, TH_MS(10000));  /* once per interval */
	assert_int_equal(x.log.n, 1);
	sn_destroy(x.n);
}

static void test_flow_off_counts_nothing(void **state)
{
	struct fixture x;

	(void)state;
	open_one(&x, false);
	exchange(&x);
	assert_int_equal(x.c->fl.segs_in, 0);
	assert_int_equal(x.c->fl.segs_out, 0);
	assert_true(x.c->fl.start_ns == 0); /* and no TCP_FLOW record to export */
	tcp_abort(x.n->ts, x.c);
	sn_destroy(x.n);
}

/* Find the one TCP_FLOW record; its payload and how many there are. */
static unsigned flow_recs(const uint8_t *buf, size_t len, struct tcp_state_flow *out)
{
	struct mst_state_reader rd;
	unsigned type, k = 0;
	const void *pl;
	uint32_t plen;

	assert_int_equal(mst_sr_init(&rd, buf, len), 0);
	while (mst_sr_next(&rd, &type, &pl, &plen) == 1)
		if (type == MST_STATE_REC_TCP_FLOW) {
			assert_int_equal(plen, sizeof(*out));
			memcpy(out, pl, sizeof(*out));
			k++;
		}
	return k;
}

static void test_flow_survives_upgrade(void **state)
{
	struct fixture x;
	struct tcp_state_flow r;
	struct sn_node *b;
	uint8_t *buf;
	size_t len;

	(void)state;
	open_one(&x, true);
	exchange(&x);
	len = sn_export(x.n, &buf);
	assert_int_equal(flow_recs(buf, len, &r), 1); /* the listener has none */
	assert_int_equal(r.segs_in, x.peer_segs);
	assert_int_equal(sn_import(buf, len, x.n->now, &b), 0);
	assert_memory_equal(&b->slot[1]->fl, &x.c->fl, sizeof(x.c->fl));
	sn_destroy(b);
	free(buf);
	sn_destroy(x.n);
}

/* Rewrite the TCP_FLOW record of a state: bad reason, wrong size, or its
 * type moved onto the TCP_STACK-following TCP_EPH slot (out of place). */
static int import_mutated(const uint8_t *buf, size_t len, int how)
{
	uint8_t *copy = malloc(len);
	struct mst_state_reader rd;
	unsigned type;
	const void *pl;
	uint32_t plen;
	struct sn_node *b;
	int rc;

	assert_non_null(copy);
	memcpy(copy, buf, len);
	assert_int_equal(mst_sr_init(&rd, copy, len), 0);
	while (mst_sr_next(&rd, &type, &pl, &plen) == 1) {
		struct mst_state_rec *h = (struct mst_state_rec *)((uint8_t *)pl - sizeof(*h));

		if (how == 2 && type == MST_STATE_REC_TCP_EPH)
			h->type = MST_STATE_REC_TCP_FLOW; /* before any TCP_CB */
		if (type != MST_STATE_REC_TCP_FLOW)
			continue;
		if (how == 0)
			((struct tcp_state_flow *)(uintptr_t)pl)->reason = 200;
		if (how == 1)
			h->len = plen - 8;
	}
	rc = sn_import(copy, len, SN_START_NS, &b);
	if (!rc)
		sn_destroy(b);
	free(copy);
	return rc;
}

static void test_flow_garbage_refused(void **state)
{
	struct fixture x;
	uint8_t *buf;
	size_t len;

	(void)state;
	open_one(&x, true);
	exchange(&x);
	len = sn_export(x.n, &buf);
	assert_int_equal(import_mutated(buf, len, 0), -EINVAL);
	assert_int_equal(import_mutated(buf, len, 1), -EBADMSG);
	assert_int_equal(import_mutated(buf, len, 2), -EINVAL);
	free(buf);
	sn_destroy(x.n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_flow_fin),
		cmocka_unit_test(test_flow_reset_by_peer),
		cmocka_unit_test(test_flow_reset_by_us),
		cmocka_unit_test(test_flow_rto_timeout),
		cmocka_unit_test(test_flow_periodic),
		cmocka_unit_test(test_flow_off_counts_nothing),
		cmocka_unit_test(test_flow_survives_upgrade),
		cmocka_unit_test(test_flow_garbage_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
