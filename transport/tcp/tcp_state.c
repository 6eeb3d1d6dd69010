/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * TCP live upgrade: the stack's whole state as plain records (layouts in
 * tcp_state.h, framing in common/state.h) and back.
 *
 * Export (between polls): tcp_export() -> flush owed ACKs and events (the
 * dirty and ack lists must be empty) -> TCP_STACK -> per used pool block
 * TCP_CB [+ TCP_FIFO_DATA for heap FIFOs] -> TCP_LISTENER per listener
 * (accept queue order) -> TCP_TW_ORDER (TIME_WAIT list order).
 *
 * Import (into a fresh stack of the same max_conns): tcp_import_rec() per
 * record, which checks it as hostile input and places each block at its
 * pool index (owner's hook adopt() for app blocks) -> tcp_import_finish():
 * every reference resolved, then the free list, timers and the connection
 * count. Any refusal leaves a stack tcp_destroy() frees entirely: every
 * FIFO is either heap memory hung on its block or the owner's (fops).
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "common/state.h"
#include "transport/tcp/tcp_priv.h"
#include "transport/tcp/tcp_state.h"

_Static_assert(TCP_OOO_MAX == TCP_STATE_RANGES && TCP_SCORE_MAX == TCP_STATE_RANGES,
	       "TCP_CB v1 carries 8 ooo and 8 SACK ranges");
_Static_assert(sizeof(struct tcp_cc_state) == 96 && TCP_CC_PRIV_SIZE == 64,
	       "struct tcp_cc_state changed: TCP_CB needs a new version");
_Static_assert(TCP_STATE__COUNT == 11, "a new TCP state needs a new TCP_CB version");

#define TCPF_ALL 0xfffffu              /* every TCPF_* bit */
#define TCPF_TRANSIENT TCPF_ACK_QUEUED /* never between polls */
#define STATE_FIFO_MIN 4096u
#define STATE_FIFO_MAX (1u << 30)
#define STATE_HEAP_FIFO_MAX (1u << 24) /* unless the stack's own default is bigger */
#define N_LISTENERS (sizeof(((struct tcp_stack *)0)->listeners) / sizeof(struct tcp_cb *))

/* Per pool index, while importing. */
#define IMP_USED 0x01
#define IMP_LISTENER 0x02 /* its TCP_LISTENER record was read */
#define IMP_AQ 0x04       /* in an accept queue */
#define IMP_TW 0x08       /* on the TIME_WAIT list */

enum imp_phase { PH_START, PH_CBS, PH_LISTENERS, PH_DONE };

struct tcp_import {
	enum imp_phase phase;
	uint32_t n_cbs, n_listeners;   /* announced by TCP_STACK */
	uint32_t got_cbs, got_listeners;
	struct tcp_cb *fifo_for;       /* heap block whose TCP_FIFO_DATA is next */
	struct tcp_cb *last_cb;        /* the latest TCP_CB: a TCP_FLOW is its */
	uint8_t *mark;                 /* IMP_* per pool index */
	uint64_t (*deadline)[3];       /* per pool index: rtx, delack, keep (0: off) */
};

/* ---- helpers ------------------------------------------------------------ */

static uint32_t cb_index(const struct tcp_stack *ts, const struct tcp_cb *c)
{
	return c ? (uint32_t)(c - ts->pool) : TCP_STATE_NONE;
}

static bool is_pow2_size(uint32_t v, uint32_t max)
{
	return v >= STATE_FIFO_MIN && v <= max && (v & (v - 1)) == 0;
}

/* RX bytes worth keeping: the in-order ones and the out-of-order ones
 * ahead of the tail, up to the highest out-of-order end. */
static uint32_t rx_extent(const struct tcp_cb *c)
{
	uint32_t n = fifo_used(&c->rx);

	for (unsigned i = 0; i < c->n_ooo; i++) {
		uint32_t e = fifo_used(&c->rx) + (c->ooo[i].end - c->rcv_nxt);

		if (e > n)
			n = e;
	}
	return n;
}

/* 1 + the built-in service kind owning c, 0 when none. */
static uint8_t svc_of(const struct tcp_stack *ts, const struct tcp_cb *c)
{
	for (unsigned k = 0; k < 3; k++)
		if (c->ev_fn == tcp_svc_event && c->ev_ctx == &ts->svc[k])
			return (uint8_t)(k + 1);
	return TCP_STATE_SVC_NONE;
}

void tcp_adopt(struct tcp_cb *c, uint8_t *rx, uint8_t *tx, const struct tcp_fifo_ops *fops,
	       void *cookie, tcp_event_fn fn, void *ctx, void *user)
{
	if (fops) { /* NULL: the FIFOs stay on the heap, filled by the importer */
		if (!c->fops)
			free(c->rx.data); /* heap FIFOs replaced (the importer refuses that) */
		c->rx.data = rx;
		c->tx.data = tx;
		c->fops = fops;
		c->fcookie = cookie;
	}
	c->ev_fn = fn;
	c->ev_ctx = ctx;
	c->user = user;
}

void tcp_fifo_sizes(const struct tcp_cb *c, uint32_t *rx_size, uint32_t *tx_size)
{
	*rx_size = c->rx.size;
	*tx_size = c->tx.size;
}

bool tcp_is_listener(const struct tcp_cb *c)
{
	return c->state == TCP_LISTEN;
}

/* ---- export ------------------------------------------------------------- */

static uint64_t deadline_of(const struct tcp_stack *ts, const struct tw_timer *t)
{
	return tw_armed(t) ? tw_deadline_ns(ts->wheel, t) : 0;
}

static void put_ranges(struct tcp_state_range *dst, const struct tcp_range *src, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		dst[i].start = src[i].start;
		dst[i].end = src[i].end;
	}
}

static void cb_to_rec(const struct tcp_stack *ts, const struct tcp_cb *c, struct tcp_state_cb *r)
{
	r->index = cb_index(ts, c);
	r->listener = cb_index(ts, c->listener);
	r->laddr = c->laddr;
	r->raddr = c->raddr;
	r->lport = c->lport;
	r->rport = c->rport;
	r->state = c->state;
	r->dupacks = c->dupacks;
	r->snd_wscale = c->snd_wscale;
	r->rcv_wscale = c->rcv_wscale;
	r->flags = c->flags;
	r->snd_una = c->snd_una;
	r->snd_nxt = c->snd_nxt;
	r->snd_max = c->snd_max;
	r->snd_wnd = c->snd_wnd;
	r->snd_wl1 = c->snd_wl1;
	r->snd_wl2 = c->snd_wl2;
	r->iss = c->iss;
	r->max_sndwnd = c->max_sndwnd;
	r->rcv_nxt = c->rcv_nxt;
	r->rcv_adv = c->rcv_adv;
	r->irs = c->irs;
	r->rcv_fin_seq = c->rcv_fin_seq;
	r->mss = c->mss;
	r->adv_mss = c->adv_mss;
	r->quickacks = c->quickacks;
	r->unacked_segs = c->unacked_segs;
	r->rtx_shift = c->rtx_shift;
	r->keep_probes = c->keep_probes;
	r->ts_recent = c->ts_recent;
	r->ts_offset = c->ts_offset;
	r->ts_recent_ns = c->ts_recent_ns;
	r->srtt_us = c->srtt_us;
	r->rttvar_us = c->rttvar_us;
	r->rto_ms = c->rto_ms;
	r->rtt_seq = c->rtt_seq;
	r->rtt_start_ns = c->rtt_start_ns;
	r->recover = c->recover;
	r->high_rxt = c->high_rxt;
	r->n_score = c->n_score;
	r->n_ooo = c->n_ooo;
	r->challenge_tokens = c->challenge_tokens;
	r->syn_retries = c->syn_retries;
	r->ooo_last = c->ooo_last;
	r->challenge_refill_ns = c->challenge_refill_ns;
	r->last_rx_ns = c->last_rx_ns;
	put_ranges(r->score, c->score, TCP_SCORE_MAX);
	put_ranges(r->ooo, c->ooo, TCP_OOO_MAX);
}

static void cb_to_rec_rest(const struct tcp_stack *ts, const struct tcp_cb *c,
			   struct tcp_state_cb *r)
{
	if (c->cc)
		strncpy(r->cc_name, c->cc->name, sizeof(r->cc_name) - 1);
	r->cc_cwnd = c->ccs.cwnd;
	r->cc_ssthresh = c->ccs.ssthresh;
	r->cc_mss = c->ccs.mss;
	r->cc_flight = c->ccs.flight;
	r->cc_srtt_us = c->ccs.srtt_us;
	r->cc_min_rtt_us = c->ccs.min_rtt_us;
	r->cc_now_ns = c->ccs.now_ns;
	memcpy(r->cc_priv, c->ccs.priv, sizeof(r->cc_priv));
	r->rtx_deadline_ns = deadline_of(ts, &c->t_rtx);
	r->delack_deadline_ns = deadline_of(ts, &c->t_delack);
	r->keep_deadline_ns = deadline_of(ts, &c->t_keep);
	r->rx_size = c->rx.size;
	r->rx_head = c->rx.head;
	r->rx_tail = c->rx.tail;
	r->tx_size = c->tx.size;
	r->tx_head = c->tx.head;
	r->tx_tail = c->tx.tail;
	r->keepidle_s = c->keepidle_s;
	r->keepintvl_s = c->keepintvl_s;
	r->keepcnt = c->keepcnt;
	r->rcvbuf = c->rcvbuf;
	r->sndbuf = c->sndbuf;
	r->err = c->err;
	r->bytes_acked = c->bytes_acked;
	r->bytes_received = c->bytes_received;
	r->retransmits = c->retransmits;
	if (!c->fops && c->rx.data)
		r->cbs |= TCP_CBS_HEAP_FIFOS;
}

/* Who owns c: the stack (a built-in service or nobody in particular), or
 * someone the hook knows. */
static int cb_owner(const struct tcp_stack *ts, const struct tcp_cb *c,
		    const struct tcp_state_hooks *h, struct tcp_state_cb *r)
{
	r->svc = svc_of(ts, c);
	r->owner.kind = TCP_OWNER_STACK;
	r->owner.sock = UINT32_MAX;
	if (r->svc) {
		r->user = (uint64_t)(uintptr_t)c->user;
		return 0;
	}
	if (!c->fops && !c->ev_fn && !c->user)
		return 0;
	if (!h || !h->owner)
		return -ENOTSUP; /* not ours, and nobody to ask */
	h->owner(h->ctx, c, &r->owner);
	if (r->owner.kind == TCP_OWNER_EXT)
		return 0;
	/* Nobody claims it: an orphan whose owner let go (TIME_WAIT of an
	 * app that exited, its FIFOs given back). It goes on with the
	 * stack's own handler; one that still has an owner's FIFOs or a
	 * socket cannot be anybody's. */
	return !c->fops && !c->user && !c->rx.data ? 0 : -EINVAL;
}

static void export_fifo(struct mst_state_writer *w, const struct tcp_cb *c)
{
	struct tcp_state_fifo f = { .rx_len = rx_extent(c), .tx_len = fifo_used(&c->tx) };
	uint8_t *p = mst_sw_rec(w, MST_STATE_REC_TCP_FIFO_DATA,
				(uint32_t)sizeof(f) + f.rx_len + f.tx_len);

	if (!p)
		return;
	memcpy(p, &f, sizeof(f));
	fifo_copy_out(&c->rx, c->rx.head, p + sizeof(f), f.rx_len);
	fifo_copy_out(&c->tx, c->tx.head, p + sizeof(f) + f.rx_len, f.tx_len);
}

static int export_cb(struct tcp_stack *ts, struct mst_state_writer *w,
		     const struct tcp_state_hooks *h, const struct tcp_cb *c)
{
	struct tcp_state_cb r;
	void *p;
	int rc;

	memset(&r, 0, sizeof(r));
	cb_to_rec(ts, c, &r);
	cb_to_rec_rest(ts, c, &r);
	rc = cb_owner(ts, c, h, &r);
	if (rc)
		return rc;
	p = mst_sw_rec(w, MST_STATE_REC_TCP_CB, sizeof(r));
	if (p)
		memcpy(p, &r, sizeof(r));
	if (r.cbs & TCP_CBS_HEAP_FIFOS)
		export_fifo(w, c);
	tcp_flow_export(ts, w, c);
	return 0;
}

static const struct tcp_cb *list_next(const struct tcp_cb *c, size_t link_off)
{
	const struct tcp_cb *n;

	memcpy(&n, (const char *)c + link_off, sizeof(n));
	return n;
}

/* A record of hdr (hlen bytes, its count at *n) and the pool indices of
 * the list from head linked through the field at link_off. */
static void export_list(struct tcp_stack *ts, struct mst_state_writer *w, unsigned type,
			void *hdr, size_t hlen, uint32_t *n, const struct tcp_cb *head,
			size_t link_off)
{
	uint8_t *p;
	uint32_t *idx;

	*n = 0;
	for (const struct tcp_cb *c = head; c; c = list_next(c, link_off))
		(*n)++;
	p = mst_sw_rec(w, type, (uint32_t)hlen + 4 * *n);
	if (!p)
		return;
	memcpy(p, hdr, hlen);
	idx = (uint32_t *)(p + hlen); /* records are 8-aligned, hlen too */
	for (const struct tcp_cb *c = head; c; c = list_next(c, link_off))
		*idx++ = cb_index(ts, c);
}

static void export_listener(struct tcp_stack *ts, struct mst_state_writer *w, unsigned i)
{
	const struct tcp_listener_ext *lx = &ts->lext[i];
	struct tcp_state_listener l = {
		.index = cb_index(ts, ts->listeners[i]),
		.backlog = lx->backlog,
		.syn_queue = lx->syn_queue,
	};

	export_list(ts, w, MST_STATE_REC_TCP_LISTENER, &l, sizeof(l), &l.n_accept, lx->aq_head,
		    offsetof(struct tcp_cb, aq_next));
}

static void export_tw(struct tcp_stack *ts, struct mst_state_writer *w)
{
	struct tcp_state_tw t = { 0 };

	export_list(ts, w, MST_STATE_REC_TCP_TW_ORDER, &t, sizeof(t), &t.n, ts->tw_head,
		    offsetof(struct tcp_cb, tw_next));
}

/* Free pool blocks below the high-water mark get a 1 (blocks from hwm on
 * were never used: the free list ends with them, in pool order, and they
 * are neither walked nor exported, so the cost follows the connections,
 * not the pool size). */
static uint8_t *free_map(const struct tcp_stack *ts, uint32_t *n_used)
{
	const struct tcp_cb *fresh = ts->hwm < ts->conf.max_conns ? &ts->pool[ts->hwm] : NULL;
	uint8_t *map = calloc(ts->hwm ? ts->hwm : 1, 1);

	if (!map)
		return NULL;
	*n_used = ts->hwm;
	for (const struct tcp_cb *c = ts->free_list; c && c != fresh; c = c->hnext) {
		map[cb_index(ts, c)] = 1;
		(*n_used)--;
	}
	return map;
}

int tcp_export(struct tcp_stack *ts, struct mst_state_writer *w, const struct tcp_state_hooks *h)
{
	struct tcp_state_stack s = { 0 };
	uint8_t *map;
	void *p;
	int rc = 0;

	tcp_flush_acks(ts);
	tcp_flush_events(ts);
	if (ts->ack_list || ts->dirty || ts->imp)
		return -EBUSY;
	map = free_map(ts, &s.n_cbs);
	if (!map)
		return -ENOMEM;
	s.secret_k0 = ts->secret.k0;
	s.secret_k1 = ts->secret.k1;
	s.start_ns = ts->start_ns;
	s.max_conns = ts->conf.max_conns;
	s.n_listeners = ts->n_listeners;
	s.services = ts->services;
	p = mst_sw_rec(w, MST_STATE_REC_TCP_STACK, sizeof(s));
	if (p)
		memcpy(p, &s, sizeof(s));
	p = mst_sw_rec(w, MST_STATE_REC_TCP_EPH, sizeof(ts->eph_table));
	if (p)
		memcpy(p, ts->eph_table, sizeof(ts->eph_table));
	for (uint32_t i = 0; i < ts->hwm && !rc; i++)
		if (!map[i])
			rc = export_cb(ts, w, h, &ts->pool[i]);
	free(map);
	if (rc)
		return rc;
	for (unsigned i = 0; i < ts->n_listeners; i++)
		export_listener(ts, w, i);
	export_tw(ts, w);
	return 0;
}

/* ---- import: checks ----------------------------------------------------- */

static bool ranges_ok(const struct tcp_state_range *r, unsigned n, uint32_t lo, uint32_t hi)
{
	for (unsigned i = 0; i < n; i++)
		if (!SEQ_LT(r[i].start, r[i].end) || !SEQ_LEQ(lo, r[i].start) ||
		    !SEQ_LEQ(r[i].end, hi))
			return false;
	return true;
}

/* The FIFO counters and out-of-order ranges fit the FIFO sizes. */
static int check_fifos(const struct tcp_stack *ts, const struct tcp_state_cb *r)
{
	uint32_t heap_max = STATE_HEAP_FIFO_MAX, max;
	uint32_t rx_used = r->rx_tail - r->rx_head, tx_used = r->tx_tail - r->tx_head;

	if (r->rcvbuf > r->rx_size || r->sndbuf > r->tx_size)
		return -EINVAL; /* a limit beyond the FIFO it limits */

	if (ts->conf.rx_buf > heap_max)
		heap_max = ts->conf.rx_buf;
	if (ts->conf.tx_buf > heap_max)
		heap_max = ts->conf.tx_buf;
	max = (r->cbs & TCP_CBS_HEAP_FIFOS) ? heap_max : STATE_FIFO_MAX;
	if (r->rx_size == 0 && r->tx_size == 0) /* FIFOs released in TIME_WAIT (then dropped) */
		return (r->state != TCP_TIME_WAIT && r->state != TCP_CLOSED) ||
		       (r->cbs & TCP_CBS_HEAP_FIFOS) || rx_used || tx_used || r->n_ooo ? -EINVAL : 0;
	if (!is_pow2_size(r->rx_size, max) || !is_pow2_size(r->tx_size, max) ||
	    rx_used > r->rx_size || tx_used > r->tx_size)
		return -EINVAL;
	/* out-of-order data lies in the RX FIFO's free part */
	if (!ranges_ok(r->ooo, r->n_ooo, r->rcv_nxt, r->rcv_nxt + (r->rx_size - rx_used)))
		return -EINVAL;
	/* in flight: the TX bytes plus SYN and FIN */
	if (r->snd_max - r->snd_una > tx_used + 2u)
		return -EINVAL;
	return 0;
}

static int check_conn(const struct tcp_stack *ts, const struct tcp_state_cb *r)
{
	if (r->mss < TCP_MSS_MIN || r->adv_mss < TCP_MSS_MIN || r->rto_ms == 0 ||
	    !r->cc_name[0])
		return -EINVAL;
	if (!SEQ_LEQ(r->snd_una, r->snd_nxt) || !SEQ_LEQ(r->snd_nxt, r->snd_max) ||
	    !ranges_ok(r->score, r->n_score, r->snd_una, r->snd_max))
		return -EINVAL;
	if (r->state != TCP_CLOSED && !(r->flags & TCPF_HASHED))
		return -EINVAL;
	if (r->listener != TCP_STATE_NONE && !(r->flags & TCPF_PASSIVE))
		return -EINVAL;
	return check_fifos(ts, r);
}

static int check_cb(const struct tcp_stack *ts, const struct tcp_state_cb *r)
{
	if (r->index >= ts->conf.max_conns ||
	    (r->listener != TCP_STATE_NONE && r->listener >= ts->conf.max_conns))
		return -ERANGE;
	if (r->state >= TCP_STATE__COUNT || (r->flags & ~TCPF_ALL) || (r->flags & TCPF_TRANSIENT) ||
	    r->snd_wscale > TCP_WSCALE_MAX || r->rcv_wscale > TCP_WSCALE_MAX ||
	    r->n_ooo > TCP_OOO_MAX || r->n_score > TCP_SCORE_MAX || r->svc > TCP_STATE_SVC_CHARGEN ||
	    (r->cbs & ~TCP_CBS_HEAP_FIFOS) || r->pad0 || r->pad1 || r->err < 0 || r->err > 4095 ||
	    !memchr(r->cc_name, 0, sizeof(r->cc_name)))
		return -EINVAL;
	if (r->owner.kind > TCP_OWNER_EXT || (r->owner.kind == TCP_OWNER_EXT && r->svc) ||
	    (r->svc && !(ts->services & (1u << (r->svc - 1)))) ||
	    (r->svc != TCP_STATE_SVC_CHARGEN && r->user))
		return -EINVAL;
	if (r->state == TCP_LISTEN) /* no FIFOs, not hashed, no parent */
		return r->rx_size || r->tx_size || (r->cbs & TCP_CBS_HEAP_FIFOS) ||
		       (r->flags & (TCPF_HASHED | TCPF_PASSIVE | TCPF_IN_ACCEPTQ)) ||
		       r->listener != TCP_STATE_NONE || r->n_ooo || r->n_score || r->user ? -EINVAL : 0;
	return check_conn(ts, r);
}

/* ---- import: records ---------------------------------------------------- */

static void rec_to_cb(struct tcp_stack *ts, const struct tcp_state_cb *r, struct tcp_cb *c)
{
	c->listener = r->listener == TCP_STATE_NONE ? NULL : &ts->pool[r->listener];
	c->laddr = r->laddr;
	c->raddr = r->raddr;
	c->lport = r->lport;
	c->rport = r->rport;
	c->state = r->state;
	c->dupacks = r->dupacks;
	c->snd_wscale = r->snd_wscale;
	c->rcv_wscale = r->rcv_wscale;
	c->flags = r->flags & ~TCPF_HASHED; /* set again by tcp_hash_insert() */
	c->snd_una = r->snd_una;
	c->snd_nxt = r->snd_nxt;
	c->snd_max = r->snd_max;
	c->snd_wnd = r->snd_wnd;
	c->snd_wl1 = r->snd_wl1;
	c->snd_wl2 = r->snd_wl2;
	c->iss = r->iss;
	c->max_sndwnd = r->max_sndwnd;
	c->rcv_nxt = r->rcv_nxt;
	c->rcv_adv = r->rcv_adv;
	c->irs = r->irs;
	c->rcv_fin_seq = r->rcv_fin_seq;
	c->mss = r->mss;
	c->adv_mss = r->adv_mss;
	c->quickacks = r->quickacks;
	c->unacked_segs = r->unacked_segs;
	c->rtx_shift = r->rtx_shift;
	c->keep_probes = r->keep_probes;
	c->ts_recent = r->ts_recent;
	c->ts_offset = r->ts_offset;
	c->ts_recent_ns = r->ts_recent_ns;
	c->srtt_us = r->srtt_us;
	c->rttvar_us = r->rttvar_us;
	c->rto_ms = r->rto_ms;
	c->rtt_seq = r->rtt_seq;
	c->rtt_start_ns = r->rtt_start_ns;
	c->recover = r->recover;
	c->high_rxt = r->high_rxt;
	c->n_score = r->n_score;
	c->n_ooo = r->n_ooo;
	c->challenge_tokens = r->challenge_tokens;
	c->syn_retries = r->syn_retries;
	c->ooo_last = r->ooo_last;
	c->challenge_refill_ns = r->challenge_refill_ns;
	c->last_rx_ns = r->last_rx_ns;
	for (unsigned i = 0; i < TCP_STATE_RANGES; i++) {
		c->score[i].start = r->score[i].start;
		c->score[i].end = r->score[i].end;
		c->ooo[i].start = r->ooo[i].start;
		c->ooo[i].end = r->ooo[i].end;
	}
}

static void rec_to_cb_rest(const struct tcp_state_cb *r, struct tcp_cb *c)
{
	c->ccs.cwnd = r->cc_cwnd;
	c->ccs.ssthresh = r->cc_ssthresh;
	c->ccs.mss = r->cc_mss;
	c->ccs.flight = r->cc_flight;
	c->ccs.srtt_us = r->cc_srtt_us;
	c->ccs.min_rtt_us = r->cc_min_rtt_us;
	c->ccs.now_ns = r->cc_now_ns;
	memcpy(c->ccs.priv, r->cc_priv, sizeof(c->ccs.priv));
	c->t_rtx.kind = TCP_T_RTX;
	c->t_delack.kind = TCP_T_DELACK;
	c->t_keep.kind = TCP_T_KEEP;
	c->rx.size = r->rx_size;
	c->rx.head = r->rx_head;
	c->rx.tail = r->rx_tail;
	c->tx.size = r->tx_size;
	c->tx.head = r->tx_head;
	c->tx.tail = r->tx_tail;
	c->keepidle_s = r->keepidle_s;
	c->keepintvl_s = r->keepintvl_s;
	c->keepcnt = r->keepcnt;
	c->rcvbuf = r->rcvbuf;
	c->sndbuf = r->sndbuf;
	c->err = r->err;
	c->bytes_acked = r->bytes_acked;
	c->bytes_received = r->bytes_received;
	c->retransmits = r->retransmits;
}

/* Give c its FIFO memory and its owner's callbacks. */
static int cb_bind(struct tcp_stack *ts, const struct tcp_state_cb *r, struct tcp_cb *c,
		   const struct tcp_state_hooks *h)
{
	bool heap = r->cbs & TCP_CBS_HEAP_FIFOS;
	int rc;

	if (heap) {
		/* malloc, not calloc: only the bytes the state carries are read,
		 * and zeroing 512 KiB per connection was most of the import. */
		c->rx.data = malloc((size_t)r->rx_size + r->tx_size);
		if (!c->rx.data)
			return -ENOMEM;
		c->tx.data = c->rx.data + r->rx_size;
	}
	if (r->svc) {
		c->ev_fn = tcp_svc_event;
		c->ev_ctx = &ts->svc[r->svc - 1];
		c->user = (void *)(uintptr_t)r->user;
	} else if (r->owner.kind == TCP_OWNER_EXT) {
		if (!h || !h->adopt)
			return -ENOTSUP;
		rc = h->adopt(h->ctx, c, &r->owner);
		if (rc)
			return rc < 0 ? rc : -EINVAL;
	}
	/* Heap FIFOs stay ours; others must have come from the owner. */
	if (heap ? c->fops != NULL
		 : (r->rx_size && (!c->fops || !c->rx.data || !c->tx.data)))
		return -EINVAL;
	return 0;
}

static int import_cb(struct tcp_stack *ts, struct tcp_import *im, const void *payload,
		     uint32_t len, const struct tcp_state_hooks *h)
{
	struct tcp_state_cb r;
	struct tcp_cb *c;
	int rc;

	if (im->phase != PH_CBS || im->fifo_for || im->got_cbs == im->n_cbs)
		return -EINVAL;
	rc = mst_state_take(&r, sizeof(r), payload, len);
	if (!rc)
		rc = check_cb(ts, &r);
	if (rc)
		return rc;
	if (im->mark[r.index] & IMP_USED)
		return -EEXIST;
	if ((r.flags & TCPF_HASHED) && tcp_lookup(ts, r.laddr, r.lport, r.raddr, r.rport))
		return -EEXIST;
	c = &ts->pool[r.index];
	memset(c, 0, sizeof(*c));
	im->last_cb = c;
	im->mark[r.index] |= IMP_USED;
	im->got_cbs++;
	rec_to_cb(ts, &r, c);
	rec_to_cb_rest(&r, c);
	if (r.cc_name[0]) {
		c->cc = tcp_cc_lookup(r.cc_name);
		if (!c->cc)
			return -ENOENT;
	}
	rc = cb_bind(ts, &r, c, h);
	if (rc)
		return rc;
	if (r.flags & TCPF_HASHED)
		tcp_hash_insert(ts, c);
	im->deadline[r.index][0] = r.rtx_deadline_ns;
	im->deadline[r.index][1] = r.delack_deadline_ns;
	im->deadline[r.index][2] = r.keep_deadline_ns;
	if (r.cbs & TCP_CBS_HEAP_FIFOS)
		im->fifo_for = c;
	return 0;
}

static int import_fifo(struct tcp_import *im, const uint8_t *payload, uint32_t len)
{
	struct tcp_cb *c = im->fifo_for;
	struct tcp_state_fifo f;

	if (!c)
		return -EINVAL;
	if (len < sizeof(f))
		return -EBADMSG;
	memcpy(&f, payload, sizeof(f));
	/* exactly the bytes the counters say are worth keeping */
	if (f.rx_len != rx_extent(c) || f.tx_len != fifo_used(&c->tx) ||
	    (uint64_t)len != sizeof(f) + (uint64_t)f.rx_len + f.tx_len)
		return -EBADMSG;
	fifo_copy_in(&c->rx, c->rx.head, payload + sizeof(f), f.rx_len);
	fifo_copy_in(&c->tx, c->tx.head, payload + sizeof(f) + f.rx_len, f.tx_len);
	im->fifo_for = NULL;
	return 0;
}

/* Is c a block of this state (imported, in range)? */
static struct tcp_cb *imported(struct tcp_stack *ts, const struct tcp_import *im, uint32_t i,
			       int *rc)
{
	if (i >= ts->conf.max_conns) {
		*rc = -ERANGE;
		return NULL;
	}
	if (!(im->mark[i] & IMP_USED)) {
		*rc = -EINVAL; /* dangling */
		return NULL;
	}
	return &ts->pool[i];
}

/* The CBs are all there (before the first listener / the TW order). */
static int cbs_done(const struct tcp_import *im)
{
	return im->got_cbs == im->n_cbs && !im->fifo_for ? 0 : -EINVAL;
}

static int link_accept_queue(struct tcp_stack *ts, struct tcp_import *im, struct tcp_cb *l,
			     struct tcp_listener_ext *lx, const uint8_t *idx, uint32_t n)
{
	int rc = 0;

	for (uint32_t k = 0; k < n; k++) {
		uint32_t i;
		struct tcp_cb *c;

		memcpy(&i, idx + 4 * k, 4);
		c = imported(ts, im, i, &rc);
		if (!c)
			return rc;
		if (im->mark[i] & IMP_AQ)
			return -EEXIST;
		if (c->listener != l || !(c->flags & TCPF_PASSIVE) || !(c->flags & TCPF_IN_ACCEPTQ))
			return -EINVAL;
		im->mark[i] |= IMP_AQ;
		c->aq_next = NULL;
		if (lx->aq_tail)
			lx->aq_tail->aq_next = c;
		else
			lx->aq_head = c;
		lx->aq_tail = c;
		lx->accept_len++;
	}
	return 0;
}

static int import_listener(struct tcp_stack *ts, struct tcp_import *im, const uint8_t *payload,
			   uint32_t len)
{
	struct tcp_state_listener r;
	struct tcp_listener_ext *lx;
	struct tcp_cb *l;
	int rc = cbs_done(im);

	if (rc || (im->phase != PH_CBS && im->phase != PH_LISTENERS) ||
	    im->got_listeners == im->n_listeners)
		return -EINVAL;
	im->phase = PH_LISTENERS;
	if (len < sizeof(r))
		return -EBADMSG;
	memcpy(&r, payload, sizeof(r));
	if (r.pad || r.backlog == 0 || r.n_accept > ts->conf.max_conns)
		return -EINVAL;
	if ((uint64_t)len != sizeof(r) + 4ull * r.n_accept)
		return -EBADMSG;
	l = imported(ts, im, r.index, &rc);
	if (!l)
		return rc;
	if (l->state != TCP_LISTEN)
		return -EINVAL;
	if ((im->mark[r.index] & IMP_LISTENER) || tcp_listener_find(ts, l->lport))
		return -EEXIST;
	if (ts->n_listeners == N_LISTENERS)
		return -ENOSPC;
	im->mark[r.index] |= IMP_LISTENER;
	im->got_listeners++;
	lx = &ts->lext[ts->n_listeners];
	memset(lx, 0, sizeof(*lx));
	lx->backlog = r.backlog;
	lx->syn_queue = r.syn_queue;
	ts->listeners[ts->n_listeners++] = l;
	return link_accept_queue(ts, im, l, lx, payload + sizeof(r), r.n_accept);
}

static int import_tw(struct tcp_stack *ts, struct tcp_import *im, const uint8_t *payload,
		     uint32_t len)
{
	struct tcp_state_tw t;
	int rc = cbs_done(im);

	if (rc || (im->phase != PH_CBS && im->phase != PH_LISTENERS) ||
	    im->got_listeners != im->n_listeners)
		return -EINVAL;
	im->phase = PH_DONE;
	if (len < sizeof(t))
		return -EBADMSG;
	memcpy(&t, payload, sizeof(t));
	if (t.pad || t.n > ts->conf.max_conns)
		return -EINVAL;
	if ((uint64_t)len != sizeof(t) + 4ull * t.n)
		return -EBADMSG;
	for (uint32_t k = 0; k < t.n; k++) {
		uint32_t i;
		struct tcp_cb *c;

		memcpy(&i, payload + sizeof(t) + 4 * k, 4);
		c = imported(ts, im, i, &rc);
		if (!c)
			return rc;
		if (im->mark[i] & IMP_TW)
			return -EEXIST;
		/* a TIME_WAIT dropped while its app still holds it stays listed */
		if (c->state != TCP_TIME_WAIT && c->state != TCP_CLOSED)
			return -EINVAL;
		im->mark[i] |= IMP_TW;
		tcp_tw_link(ts, c);
	}
	return 0;
}

static int import_stack(struct tcp_stack *ts, struct tcp_import *im, const void *payload,
			uint32_t len)
{
	struct tcp_state_stack s;
	int rc;

	if (im->phase != PH_START)
		return -EINVAL;
	rc = mst_state_take(&s, sizeof(s), payload, len);
	if (rc)
		return rc;
	if (s.n_cbs > ts->conf.max_conns)
		return -ERANGE;
	if (s.n_listeners > N_LISTENERS || s.n_listeners > s.n_cbs ||
	    (s.services & ~(TCP_SVC_ECHO | TCP_SVC_DISCARD | TCP_SVC_CHARGEN)) ||
	    s.eph_unused || s.pad0 || s.pad1)
		return -EINVAL;
	ts->secret.k0 = s.secret_k0;
	ts->secret.k1 = s.secret_k1;
	ts->hash_seed = (uint32_t)tcp_siphash(&ts->secret, "hash", 4);
	ts->start_ns = s.start_ns;
	tcp_services_restore(ts, s.services);
	im->n_cbs = s.n_cbs;
	im->n_listeners = s.n_listeners;
	im->phase = PH_CBS;
	return 0;
}

void tcp_import_free(struct tcp_stack *ts)
{
	if (!ts->imp)
		return;
	free(ts->imp->mark);
	free(ts->imp->deadline);
	free(ts->imp);
	ts->imp = NULL;
}

static struct tcp_import *import_begin(struct tcp_stack *ts)
{
	struct tcp_import *im;

	/* A fresh stack: no connection, no listener, no service yet. */
	if (ts->n_conns || ts->n_listeners || ts->services || ts->tw_head)
		return NULL;
	im = calloc(1, sizeof(*im));
	if (!im)
		return NULL;
	im->mark = calloc(ts->conf.max_conns, 1);
	im->deadline = calloc(ts->conf.max_conns, sizeof(*im->deadline));
	ts->imp = im;
	if (!im->mark || !im->deadline) {
		tcp_import_free(ts);
		return NULL;
	}
	return im;
}

int tcp_import_rec(struct tcp_stack *ts, unsigned type, const void *payload, uint32_t len,
		   const struct tcp_state_hooks *h)
{
	struct tcp_import *im = ts->imp;
	int rc;

	if (!im) {
		if (type != MST_STATE_REC_TCP_STACK)
			return -EINVAL;
		im = import_begin(ts);
		if (!im)
			return ts->n_conns || ts->n_listeners || ts->services ? -EBUSY : -ENOMEM;
	}
	switch (type) {
	case MST_STATE_REC_TCP_STACK:
		return import_stack(ts, im, payload, len);
	case MST_STATE_REC_TCP_CB:
		return import_cb(ts, im, payload, len, h);
	case MST_STATE_REC_TCP_FIFO_DATA:
		return import_fifo(im, payload, len);
	case MST_STATE_REC_TCP_LISTENER:
		return import_listener(ts, im, payload, len);
	case MST_STATE_REC_TCP_TW_ORDER:
		return import_tw(ts, im, payload, len);
	case MST_STATE_REC_TCP_FLOW:
		/* after its TCP_CB (and that one's TCP_FIFO_DATA), once */
		if (im->phase != PH_CBS || !im->last_cb || im->fifo_for)
			return -EINVAL;
		rc = tcp_flow_import(im->last_cb, payload, len);
		im->last_cb = NULL;
		return rc;
	case MST_STATE_REC_TCP_EPH:
		/* right after TCP_STACK; any counter values are valid */
		if (im->phase != PH_CBS || im->got_cbs)
			return -EINVAL;
		if (len != sizeof(ts->eph_table))
			return -EBADMSG;
		memcpy(ts->eph_table, payload, len);
		return 0;
	default:
		return -EINVAL;
	}
}

/* ---- import: finish ----------------------------------------------------- */

/* Every reference of block i resolves to the right kind of block. */
static int check_refs(struct tcp_stack *ts, const struct tcp_import *im, uint32_t i)
{
	const struct tcp_cb *c = &ts->pool[i];
	uint8_t m = im->mark[i];

	if (c->state == TCP_LISTEN && !(m & IMP_LISTENER))
		return -EINVAL;
	if (c->listener && !(im->mark[cb_index(ts, c->listener)] & IMP_LISTENER))
		return -EINVAL;
	if (!!(c->flags & TCPF_IN_ACCEPTQ) != !!(m & IMP_AQ))
		return -EINVAL;
	if (c->state == TCP_TIME_WAIT && !(m & IMP_TW))
		return -EINVAL;
	return 0;
}

static void arm_timers(struct tcp_stack *ts, const struct tcp_import *im, uint32_t i)
{
	struct tcp_cb *c = &ts->pool[i];
	struct tw_timer *t[3] = { &c->t_rtx, &c->t_delack, &c->t_keep };

	for (unsigned k = 0; k < 3; k++)
		if (im->deadline[i][k])
			tw_arm(ts->wheel, t[k], im->deadline[i][k]);
}

/* Each listener's SYN queue count is its children in SYN_RECEIVED. */
static int check_syn_queues(struct tcp_stack *ts, const struct tcp_import *im)
{
	uint32_t n[N_LISTENERS] = { 0 };

	for (uint32_t i = 0; i < ts->conf.max_conns; i++) {
		const struct tcp_cb *c = &ts->pool[i];

		if ((im->mark[i] & IMP_USED) && c->state == TCP_SYN_RECEIVED && c->listener)
			n[tcp_lext(ts, c->listener) - ts->lext]++;
	}
	for (unsigned k = 0; k < ts->n_listeners; k++)
		if (ts->lext[k].syn_queue != n[k])
			return -EINVAL;
	return 0;
}

int tcp_import_finish(struct tcp_stack *ts, const struct tcp_state_hooks *h)
{
	struct tcp_import *im = ts->imp;
	uint32_t hwm = 0;
	int rc = 0;

	(void)h;
	if (!im || im->phase != PH_DONE)
		rc = -EINVAL; /* no state, or one cut short */
	for (uint32_t i = 0; !rc && i < ts->conf.max_conns; i++)
		if (im->mark[i] & IMP_USED) {
			rc = check_refs(ts, im, i);
			hwm = i + 1;
		}
	if (!rc)
		rc = check_syn_queues(ts, im); /* every listener resolved above */
	if (rc) {
		tcp_import_free(ts);
		return rc;
	}
	/* The fresh stack's free list is pool order; blocks from hwm on were
	 * not touched by the import and stay linked as they are. */
	ts->free_list = hwm < ts->conf.max_conns ? &ts->pool[hwm] : NULL;
	for (uint32_t i = hwm; i-- > 0;)
		if (!(im->mark[i] & IMP_USED)) {
			ts->pool[i].hnext = ts->free_list;
			ts->free_list = &ts->pool[i];
		}
	ts->hwm = hwm;
	for (uint32_t i = 0; i < hwm; i++)
		if (im->mark[i] & IMP_USED)
			arm_timers(ts, im, i);
	ts->n_conns = im->got_cbs;
	tcp_import_free(ts);
	return 0;
}
