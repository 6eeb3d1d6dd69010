/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Pony live upgrade: the instance's whole state as plain records (layouts
 * in pony_state.h, framing in common/state.h) and back.
 *
 * Export (between polls, the done list drained): pony_export() ->
 * PONY_STACK -> per active flow PONY_FLOW (slots of the send window, the
 * receive map, the control queue), its PONY_STREAMs, its PONY_MSGs.
 * Flows keep their epochs and sequence spaces, so the peer sees the same
 * incarnation carry on; every time is an absolute deadline already.
 *
 * Import (into a fresh instance of the same sizes): pony_import_rec() per
 * record places each flow, stream and message at its pool index, checks
 * its fields and hashes it -> pony_import_finish() walks every list and
 * window (a state is hostile input: every index in range, no list with a
 * cycle or a stranger, every count what the entries add up to) and only
 * then rebuilds the LRU, ready and ACK lists and the free lists.
 * Derived structures (hash chains, free lists, a flow's message and
 * stream lists) are not carried: they are rebuilt in a canonical order.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/state.h"
#include "transport/pony/pony_priv.h"
#include "transport/pony/pony_state.h"

#define MF_ALL 0x7fu
#define MARK_USED 0x01
#define MARK_LISTED 0x02    /* msg: on a queue or wait list; stream: on the round robin */

struct pony_import {
	uint32_t n_flows, got_flows;
	uint32_t n_ready, n_acks;
	uint32_t cur;               /* flow of the STREAM and MSG records that follow */
	uint32_t cur_streams, cur_msgs; /* of cur, still to come */
	uint32_t stream_tail, msg_tail; /* of cur's lists */
	uint32_t *lru, *ready, *acks;   /* flow index by rank */
	uint32_t *unacked;          /* per message: slots in flight naming it */
	uint8_t *flow_mark, *msg_mark, *stream_mark;
};

static uint32_t n_stream_slots(const struct pony *py)
{
	return py->conf.max_msgs + 2 * py->conf.max_flows;
}

/* ---- export ------------------------------------------------------------- */

static uint32_t list_len(const struct pony *py, uint32_t head, bool streams)
{
	uint32_t n = 0;

	for (uint32_t i = head; i != PONY_NONE; n++)
		i = streams ? py->streams[i].fnext : py->msgs[i].fnext;
	return n;
}

static void flow_to_rec(const struct pony *py, const struct pony_flow *f, struct pony_state_flow *r)
{
	*r = (struct pony_state_flow){
		.index = flow_idx(py, f), .peer = f->peer, .my_epoch = f->my_epoch,
		.peer_epoch = f->peer_epoch, .snd_una = f->snd_una, .snd_nxt = f->snd_nxt,
		.inflight = f->inflight, .lost = f->lost, .lost_cursor = f->lost_cursor,
		.order = f->order, .peer_cum = f->peer_cum, .peer_credits = f->peer_credits,
		.cwnd_milli = f->cwnd_milli, .rr_head = f->rr_head, .rr_tail = f->rr_tail,
		.next_msg_id = f->next_msg_id, .rcv_nxt = f->rcv_nxt, .rcv_max = f->rcv_max,
		.rx_unacked = f->rx_unacked, .ctrl_head = f->ctrl_head, .ctrl_tail = f->ctrl_tail,
		.srtt_ns = f->srtt_ns, .rttvar_ns = f->rttvar_ns, .min_rtt_ns = f->min_rtt_ns,
		.last_rtt_ns = f->last_rtt_ns, .rto_ns = f->rto_ns, .retries = f->retries,
		.rto_probe_psn = f->rto_probe_psn, .rto_undo_cwnd = f->rto_undo_cwnd,
		.rto_floor_ns = f->rto_floor_ns, .n_tx = f->n_tx, .n_rx = f->n_rx,
		.n_reads = f->n_reads, .n_peer = f->n_peer, .n_rx_streams = f->n_rx_streams,
		.n_streams = list_len(py, f->streams, true) + 2,
		.n_msgs = list_len(py, f->msgs, false),
		.peer_busy = f->peer_busy, .lost_cursor_valid = f->lost_cursor_valid,
		.rx_busy = f->rx_busy, .ack_due = f->ack_due, .echo_ts = f->echo_ts,
		.echo_at = f->echo_at, .min_rtt_at = f->min_rtt_at, .rto_at = f->rto_at,
		.rto_probe_at = f->rto_probe_at, .rto_floor_at = f->rto_floor_at,
		.last_decrease = f->last_decrease, .last_rx = f->last_rx,
		.last_active = f->last_active, .rx_progress_at = f->rx_progress_at,
		.tx_pkts = f->tx_pkts, .rx_pkts = f->rx_pkts, .tx_bytes = f->tx_bytes,
		.rx_bytes = f->rx_bytes, .retransmits = f->retransmits, .timeouts = f->timeouts,
		.msgs_sent = f->msgs_sent, .msgs_delivered = f->msgs_delivered,
	};
}

/* Place of v in list[0..n), PONY_STATE_NONE when absent. */
static uint32_t rank_in(const uint32_t *list, uint32_t n, uint32_t v)
{
	for (uint32_t i = 0; i < n; i++)
		if (list[i] == v)
			return i;
	return PONY_STATE_NONE;
}

static uint32_t lru_rank(const struct pony *py, uint32_t fi)
{
	uint32_t r = 0;

	for (uint32_t i = py->lru_head; i != PONY_NONE && i != fi; i = py->flows[i].lru_next)
		r++;
	return r;
}

static void export_flow(const struct pony *py, struct mst_state_writer *w, const struct pony_flow *f)
{
	uint32_t words = py->win / 64, n_slots = f->snd_nxt - f->snd_una;
	uint32_t n_ctrl = f->ctrl_tail - f->ctrl_head, fi = flow_idx(py, f);
	size_t len = sizeof(struct pony_state_flow) + 8ull * words +
		     sizeof(struct pony_state_slot) * n_slots + sizeof(struct pony_state_ctrl) * n_ctrl;
	struct pony_state_flow r;
	uint8_t *p = mst_sw_rec(w, MST_STATE_REC_PONY_FLOW, (uint32_t)len);

	if (!p)
		return;
	flow_to_rec(py, f, &r);
	r.lru_rank = lru_rank(py, fi);
	r.ready_rank = rank_in(py->ready, py->n_ready, fi);
	r.ack_rank = rank_in(py->acks, py->n_acks, fi);
	memcpy(p, &r, sizeof(r));
	p += sizeof(r);
	memcpy(p, f->rcv_map, 8ull * words);
	p += 8ull * words;
	for (uint32_t k = 0; k < n_slots; k++, p += sizeof(struct pony_state_slot)) {
		const struct pony_slot *sl = &f->slots[(f->snd_una + k) & py->win_mask];
		struct pony_state_slot s = {
			.sent_ns = sl->sent_ns, .msg = sl->msg, .off = sl->off, .order = sl->order,
			.len = sl->len, .type = sl->type, .state = sl->state, .rexmit = sl->rexmit,
		};

		memcpy(p, &s, sizeof(s));
	}
	for (uint32_t k = 0; k < n_ctrl; k++, p += sizeof(struct pony_state_ctrl)) {
		const struct pony_ctrl *c = &f->ctrl[(f->ctrl_head + k) % PONY_CTRL_RING];
		struct pony_state_ctrl s = { .type = c->type, .id = c->id, .err = c->err };

		memcpy(p, &s, sizeof(s));
	}
}

static void export_stream(const struct pony *py, struct mst_state_writer *w, uint32_t si)
{
	const struct pony_stream *s = &py->streams[si];
	struct pony_state_stream *r = mst_sw_rec(w, MST_STATE_REC_PONY_STREAM, sizeof(*r));

	if (!r)
		return;
	*r = (struct pony_state_stream){
		.index = si, .flow = s->flow, .local_svc = s->local_svc, .remote_svc = s->remote_svc,
		.id = s->id, .rx = s->rx, .in_rr = s->in_rr, .seq = s->seq, .head = s->head,
		.tail = s->tail, .wait = s->wait, .rr_next = s->rr_next,
	};
}

/* The app memory a message points into, as the owner's reference. */
static uint64_t msg_buf(const struct pony_msg *m, const struct pony_state_hooks *h)
{
	if (m->kind == MSG_SEND && !(m->flags & MF_SKIP))
		return h->buf_ref(h->ctx, m->src_svc, m->data);
	if (m->kind == MSG_READ && !(m->flags & MF_RESP_DONE))
		return h->buf_ref(h->ctx, m->src_svc, m->dst);
	return PONY_STATE_NO_BUF;
}

static void export_msg(const struct pony *py, struct mst_state_writer *w, uint32_t mi,
		       const struct pony_state_hooks *h)
{
	const struct pony_msg *m = &py->msgs[mi];
	struct pony_state_msg *r = mst_sw_rec(w, MST_STATE_REC_PONY_MSG, sizeof(*r));

	if (!r)
		return;
	*r = (struct pony_state_msg){
		.index = mi, .flow = m->flow, .kind = m->kind, .flags = m->flags,
		.src_svc = m->src_svc, .dst_svc = m->dst_svc, .id = m->id, .stream = m->stream,
		.stream_id = m->stream_id, .seq = m->seq, .len = m->len, .done = m->done,
		.unacked = m->unacked, .status = m->status, .next = m->next, .key = m->key,
		.roff = m->roff, .cookie = m->cookie, .buf = msg_buf(m, h),
	};
}

static bool needs_buf(const struct pony *py)
{
	for (uint32_t mi = 0; mi < py->conf.max_msgs; mi++) {
		const struct pony_msg *m = &py->msgs[mi];

		if ((m->kind == MSG_SEND && !(m->flags & MF_SKIP)) ||
		    (m->kind == MSG_READ && !(m->flags & MF_RESP_DONE)))
			return true;
	}
	return false;
}

int pony_export(const struct pony *py, struct mst_state_writer *w, const struct pony_state_hooks *h)
{
	struct pony_state_stack *s;

	if (py->done_head != PONY_NONE || py->imp)
		return -EBUSY; /* completions not handed out yet: not between polls */
	if ((!h || !h->buf_ref) && needs_buf(py))
		return -ENOTSUP; /* app memory, and nobody to name it */
	s = mst_sw_rec(w, MST_STATE_REC_PONY_STACK, sizeof(*s));
	if (s)
		*s = (struct pony_state_stack){
			.key = { py->key[0], py->key[1] }, .epoch_ctr = py->epoch_ctr,
			.next_scan = py->next_scan, .max_flows = py->conf.max_flows,
			.max_msgs = py->conf.max_msgs, .max_streams = py->conf.max_streams,
			.win = py->win, .seg = py->seg, .n_flows = py->n_active,
			.n_ready = py->n_ready, .n_acks = py->n_acks,
		};
	for (uint32_t k = 0; k < py->n_active; k++) {
		const struct pony_flow *f = &py->flows[py->active[k]];
		uint32_t rs = py->conf.max_msgs + 2 * py->active[k];

		export_flow(py, w, f);
		for (uint32_t si = f->streams; si != PONY_NONE; si = py->streams[si].fnext)
			export_stream(py, w, si);
		export_stream(py, w, rs);
		export_stream(py, w, rs + 1);
		for (uint32_t mi = f->msgs; mi != PONY_NONE; mi = py->msgs[mi].fnext)
			export_msg(py, w, mi, h);
	}
	return 0;
}

/* ---- import: records ---------------------------------------------------- */

void pony_import_free(struct pony *py)
{
	struct pony_import *im = py->imp;

	if (!im)
		return;
	free(im->lru);
	free(im->ready);
	free(im->acks);
	free(im->unacked);
	free(im->flow_mark);
	free(im->msg_mark);
	free(im->stream_mark);
	free(im);
	py->imp = NULL;
}

static uint32_t *nones(uint32_t n)
{
	uint32_t *v = malloc((n ? n : 1) * sizeof(*v));

	if (v)
		memset(v, 0xff, (n ? n : 1) * sizeof(*v));
	return v;
}

static int import_begin(struct pony *py)
{
	uint32_t nf = py->conf.max_flows, nm = py->conf.max_msgs;
	struct pony_import *im;

	/* A fresh instance: no flow, message or stream yet. */
	if (py->n_active || py->n_msgs || py->n_streams)
		return -EBUSY;
	im = calloc(1, sizeof(*im));
	if (!im)
		return -ENOMEM;
	py->imp = im;
	im->cur = PONY_NONE;
	im->lru = nones(nf);
	im->ready = nones(nf);
	im->acks = nones(nf);
	im->unacked = calloc(nm, sizeof(*im->unacked));
	im->flow_mark = calloc(nf, 1);
	im->msg_mark = calloc(nm, 1);
	im->stream_mark = calloc(n_stream_slots(py), 1);
	if (!im->lru || !im->ready || !im->acks || !im->unacked || !im->flow_mark ||
	    !im->msg_mark || !im->stream_mark) {
		pony_import_free(py);
		return -ENOMEM;
	}
	return 0;
}

static int import_stack(struct pony *py, const void *p, uint32_t len)
{
	struct pony_state_stack s;
	int rc;

	if (py->imp)
		return -EINVAL; /* twice */
	rc = mst_state_take(&s, sizeof(s), p, len);
	if (rc)
		return rc;
	/* Indices keep their meaning only in pools of the same sizes; the
	 * window and the segment size are the peer's sequence space. */
	if (s.max_flows != py->conf.max_flows || s.max_msgs != py->conf.max_msgs ||
	    s.max_streams != py->conf.max_streams || s.win != py->win || s.seg != py->seg)
		return -EINVAL;
	if (s.n_flows > py->conf.max_flows || s.n_ready > s.n_flows || s.n_acks > s.n_flows)
		return -ERANGE;
	rc = import_begin(py);
	if (rc)
		return rc;
	py->key[0] = s.key[0];
	py->key[1] = s.key[1];
	py->epoch_ctr = s.epoch_ctr;
	py->next_scan = s.next_scan;
	py->imp->n_flows = s.n_flows;
	py->imp->n_ready = s.n_ready;
	py->imp->n_acks = s.n_acks;
	return 0;
}

/* A rank on one of the flow lists: NONE (allowed when optional), or a
 * place below n nobody took. */
static int take_rank(uint32_t *by_rank, uint32_t n, uint32_t rank, uint32_t fi, bool optional)
{
	if (rank == PONY_STATE_NONE)
		return optional ? 0 : -EINVAL;
	if (rank >= n)
		return -ERANGE;
	if (by_rank[rank] != PONY_NONE)
		return -EEXIST;
	by_rank[rank] = fi;
	return 0;
}

static int check_flow(const struct pony *py, const struct pony_state_flow *r)
{
	if (r->index >= py->conf.max_flows)
		return -ERANGE;
	if (!r->peer || !r->my_epoch || r->snd_nxt - r->snd_una > py->win ||
	    r->ctrl_tail - r->ctrl_head > PONY_CTRL_RING || !seq_le(r->rcv_nxt, r->rcv_max) ||
	    r->rcv_max - r->rcv_nxt > py->win || r->cwnd_milli < 1000 ||
	    r->cwnd_milli > py->win * 1000 || !r->rto_ns || r->peer_busy > 1 ||
	    r->lost_cursor_valid > 1 || r->rx_busy > RXB_SHARE || r->pad0 || r->pad1 ||
	    r->n_streams < 2 || r->n_streams - 2 > py->conf.max_msgs ||
	    r->n_msgs > py->conf.max_msgs)
		return -EINVAL;
	return 0;
}

static void rec_to_flow(const struct pony_state_flow *r, struct pony_flow *f)
{
	struct pony_slot *slots = f->slots;
	uint64_t *map = f->rcv_map;

	memset(f, 0, sizeof(*f));
	f->slots = slots;
	f->rcv_map = map;
	f->snd_una = r->snd_una;
	f->snd_nxt = r->snd_nxt;
	f->inflight = r->inflight;
	f->lost = r->lost;
	f->lost_cursor = r->lost_cursor;
	f->order = r->order;
	f->peer_cum = r->peer_cum;
	f->peer_credits = r->peer_credits;
	f->cwnd_milli = r->cwnd_milli;
	f->rr_head = r->rr_head;
	f->rr_tail = r->rr_tail;
	f->rcv_nxt = r->rcv_nxt;
	f->rcv_max = r->rcv_max;
	f->rx_unacked = r->rx_unacked;
	f->ack_due = r->ack_due;
	f->echo_ts = r->echo_ts;
	f->echo_at = r->echo_at;
	f->peer = r->peer;
	f->my_epoch = r->my_epoch;
	f->peer_epoch = r->peer_epoch;
	f->next_msg_id = r->next_msg_id;
	f->peer_busy = r->peer_busy;
	f->ack_pending = r->ack_rank != PONY_STATE_NONE;
	f->on_ready = r->ready_rank != PONY_STATE_NONE;
	f->rx_busy = r->rx_busy;
	f->lost_cursor_valid = r->lost_cursor_valid;
	f->ctrl_head = r->ctrl_head;
	f->ctrl_tail = r->ctrl_tail;
	f->srtt_ns = r->srtt_ns;
	f->rttvar_ns = r->rttvar_ns;
	f->min_rtt_ns = r->min_rtt_ns;
	f->last_rtt_ns = r->last_rtt_ns;
	f->rto_ns = r->rto_ns;
	f->retries = r->retries;
	f->min_rtt_at = r->min_rtt_at;
	f->rto_at = r->rto_at;
	f->rto_probe_at = r->rto_probe_at;
	f->rto_probe_psn = r->rto_probe_psn;
	f->rto_undo_cwnd = r->rto_undo_cwnd;
	f->rto_floor_ns = r->rto_floor_ns;
	f->rto_floor_at = r->rto_floor_at;
	f->last_decrease = r->last_decrease;
	f->last_rx = r->last_rx;
	f->last_active = r->last_active;
	f->n_tx = r->n_tx;
	f->n_rx = r->n_rx;
	f->n_reads = r->n_reads;
	f->n_peer = r->n_peer;
	f->n_rx_streams = r->n_rx_streams;
	f->rx_progress_at = r->rx_progress_at;
	f->streams = f->msgs = PONY_NONE;
	f->lru_prev = f->lru_next = PONY_NONE;
	f->tx_pkts = r->tx_pkts;
	f->rx_pkts = r->rx_pkts;
	f->tx_bytes = r->tx_bytes;
	f->rx_bytes = r->rx_bytes;
	f->retransmits = r->retransmits;
	f->timeouts = r->timeouts;
	f->msgs_sent = r->msgs_sent;
	f->msgs_delivered = r->msgs_delivered;
}

/* The receive map holds only psns between rcv_nxt (exclusive: it would
 * have advanced) and rcv_max. */
static int check_rcv_map(const struct pony *py, const struct pony_flow *f)
{
	for (uint32_t k = 0; k < py->win; k++) {
		uint32_t psn = f->rcv_nxt + k;
		bool set = f->rcv_map[(psn & py->win_mask) / 64] >> (psn & 63) & 1;

		if (set && (k == 0 || !seq_lt(psn, f->rcv_max)))
			return -EINVAL;
	}
	return 0;
}

/* Slots and control queue entries from the record's tail. */
static int flow_arrays(const struct pony *py, struct pony_flow *f, const uint8_t *p)
{
	uint32_t words = py->win / 64;

	memcpy(f->rcv_map, p, 8ull * words);
	p += 8ull * words;
	memset(f->slots, 0, py->win * sizeof(*f->slots));
	for (uint32_t psn = f->snd_una; psn != f->snd_nxt; psn++, p += sizeof(struct pony_state_slot)) {
		struct pony_state_slot s;
		struct pony_slot *sl = &f->slots[psn & py->win_mask];

		memcpy(&s, p, sizeof(s));
		if (s.state > SLOT_DONE || s.rexmit > 1 || s.pad[0] || memcmp(s.pad, s.pad + 1, 6))
			return -EINVAL;
		*sl = (struct pony_slot){ .sent_ns = s.sent_ns, .msg = s.msg, .off = s.off,
					  .order = s.order, .len = s.len, .type = s.type,
					  .state = s.state, .rexmit = s.rexmit };
	}
	for (uint32_t k = f->ctrl_head; k != f->ctrl_tail; k++, p += sizeof(struct pony_state_ctrl)) {
		struct pony_state_ctrl c;

		memcpy(&c, p, sizeof(c));
		if ((c.type != PONY_T_NAK && c.type != PONY_T_READ_ERR) || !c.err || c.err > 4095)
			return -EINVAL;
		f->ctrl[k % PONY_CTRL_RING] = (struct pony_ctrl){ .type = (uint8_t)c.type,
								  .id = c.id, .err = c.err };
	}
	return check_rcv_map(py, f);
}

static int import_flow(struct pony *py, const void *p, uint32_t len)
{
	struct pony_import *im = py->imp;
	struct pony_state_flow r;
	struct pony_flow *f;
	uint64_t want;
	uint32_t b;
	int rc;

	if (!im || im->cur_streams || im->cur_msgs || im->got_flows == im->n_flows)
		return -EINVAL;
	if (len < sizeof(r))
		return -EBADMSG;
	memcpy(&r, p, sizeof(r));
	rc = check_flow(py, &r);
	if (rc)
		return rc;
	want = sizeof(r) + 8ull * (py->win / 64) +
	       sizeof(struct pony_state_slot) * (uint64_t)(r.snd_nxt - r.snd_una) +
	       sizeof(struct pony_state_ctrl) * (uint64_t)(r.ctrl_tail - r.ctrl_head);
	if (len != want)
		return -EBADMSG;
	if (im->flow_mark[r.index])
		return -EEXIST;
	b = flow_bucket(py, r.peer);
	for (uint32_t fi = py->flow_ht.head[b]; fi != PONY_NONE; fi = py->flows[fi].hnext)
		if (py->flows[fi].peer == r.peer)
			return -EEXIST; /* one flow per peer */
	rc = take_rank(im->lru, im->n_flows, r.lru_rank, r.index, false);
	if (!rc)
		rc = take_rank(im->ready, im->n_ready, r.ready_rank, r.index, true);
	if (!rc)
		rc = take_rank(im->acks, im->n_acks, r.ack_rank, r.index, true);
	if (rc)
		return rc;
	f = &py->flows[r.index];
	im->flow_mark[r.index] = MARK_USED;
	rec_to_flow(&r, f);
	f->hnext = py->flow_ht.head[b];
	py->flow_ht.head[b] = r.index;
	f->pos = py->n_active;
	py->active[py->n_active++] = r.index;
	im->got_flows++;
	im->cur = r.index;
	im->cur_streams = r.n_streams;
	im->cur_msgs = r.n_msgs;
	im->stream_tail = im->msg_tail = PONY_NONE;
	return flow_arrays(py, f, (const uint8_t *)p + sizeof(r));
}

/* The stream record's index: a pool entry, or (the last two of the
 * flow) its READ request and response queues. */
static int check_stream(const struct pony *py, const struct pony_import *im,
			const struct pony_state_stream *r)
{
	uint32_t rs = py->conf.max_msgs + 2 * im->cur;

	if (r->flow != im->cur || r->pad[0] || r->pad[1] || r->rx > 1 || r->in_rr > 1)
		return -EINVAL;
	if (im->cur_streams > 2)
		return r->index >= py->conf.max_msgs ? -ERANGE
		       : r->id >= py->conf.max_streams || (!r->rx && r->wait != PONY_NONE) ? -EINVAL
		       : im->stream_mark[r->index] ? -EEXIST : 0;
	if (r->index != rs + (2 - im->cur_streams))
		return -EINVAL;
	return r->rx || r->id || r->local_svc || r->remote_svc || r->seq ||
	       r->wait != PONY_NONE ? -EINVAL : 0;
}

static int import_stream(struct pony *py, const void *p, uint32_t len)
{
	struct pony_import *im = py->imp;
	struct pony_state_stream r;
	struct pony_stream *s;
	int rc;

	if (!im || !im->cur_streams)
		return -EINVAL;
	rc = mst_state_take(&r, sizeof(r), p, len);
	if (!rc)
		rc = check_stream(py, im, &r);
	if (rc)
		return rc;
	im->cur_streams--;
	im->stream_mark[r.index] = MARK_USED;
	s = &py->streams[r.index];
	*s = (struct pony_stream){ .flow = r.flow, .local_svc = r.local_svc,
				   .remote_svc = r.remote_svc, .id = r.id, .rx = r.rx,
				   .in_rr = r.in_rr, .seq = r.seq, .head = r.head, .tail = r.tail,
				   .wait = r.wait, .rr_next = r.rr_next, .hnext = PONY_NONE,
				   .fnext = PONY_NONE };
	if (r.index >= py->conf.max_msgs)
		return 0; /* a READ queue: not hashed, not on the flow's list */
	if (pony_stream_get(py, &py->flows[im->cur], r.rx, r.local_svc, r.remote_svc, r.id, false))
		return -EEXIST;
	{
		uint32_t b = stream_hash(r.flow, r.rx, r.local_svc, r.remote_svc, r.id) &
			     py->stream_ht.mask;

		s->hnext = py->stream_ht.head[b];
		py->stream_ht.head[b] = r.index;
	}
	if (im->stream_tail == PONY_NONE)
		py->flows[im->cur].streams = r.index;
	else
		py->streams[im->stream_tail].fnext = r.index;
	im->stream_tail = r.index;
	py->n_streams++;
	return 0;
}

/* The message's stream is of the flow, of the right kind, and names it. */
static int check_msg_stream(const struct pony *py, const struct pony_import *im,
			    const struct pony_state_msg *r)
{
	uint32_t rs = py->conf.max_msgs + 2 * im->cur;
	const struct pony_stream *s;

	if (r->stream >= n_stream_slots(py) || !(im->stream_mark[r->stream] & MARK_USED) ||
	    py->streams[r->stream].flow != im->cur)
		return -EINVAL;
	s = &py->streams[r->stream];
	switch (r->kind) {
	case MSG_SEND:
	case MSG_RX:
		return r->stream >= py->conf.max_msgs || s->rx != (r->kind == MSG_RX) ||
		       s->id != r->stream_id ||
		       s->local_svc != (r->kind == MSG_RX ? r->dst_svc : r->src_svc) ||
		       s->remote_svc != (r->kind == MSG_RX ? r->src_svc : r->dst_svc) ? -EINVAL : 0;
	case MSG_READ:
		return r->stream == rs && r->stream_id == PONY_READ_STREAM ? 0 : -EINVAL;
	case MSG_RESP:
		return r->stream == rs + 1 ? 0 : -EINVAL;
	}
	return -EINVAL;
}

static int check_msg(const struct pony *py, const struct pony_import *im,
		     const struct pony_state_msg *r)
{
	if (r->index >= py->conf.max_msgs)
		return -ERANGE;
	if (r->flow != im->cur || (r->flags & ~MF_ALL) || r->pad0 || r->pad1 || !r->len ||
	    r->len > py->conf.max_msg || r->status > 0 || r->status < -4095)
		return -EINVAL;
	/* tx kinds: the done list is empty between polls; a send hands out
	 * no byte past its end (a READ's response or an arrival may overlap) */
	if ((r->kind != MSG_RX && (r->flags & MF_COMPLETE)) ||
	    ((r->kind == MSG_SEND || r->kind == MSG_RESP) && r->done > r->len))
		return -EINVAL;
	if (im->msg_mark[r->index])
		return -EEXIST;
	return check_msg_stream(py, im, r);
}

/* The app memory behind the message, from the owner's reference. */
static int msg_bind(struct pony_msg *m, const struct pony_state_msg *r,
		    const struct pony_state_hooks *h)
{
	bool send = m->kind == MSG_SEND && !(m->flags & MF_SKIP);
	bool read = m->kind == MSG_READ && !(m->flags & MF_RESP_DONE);
	void *b;

	if (m->kind == MSG_RX && (m->flags & MF_BEGUN) && !(m->flags & MF_DROP))
		return h && h->rx_adopt ? h->rx_adopt(h->ctx, m->dst_svc, m->cookie, m->len)
					: -ENOTSUP;
	if (!send && !read)
		return r->buf == PONY_STATE_NO_BUF ? 0 : -EINVAL;
	/* a live one has not been completed: its owner still waits */
	if ((m->flags & MF_NOTIFIED) || r->buf == PONY_STATE_NO_BUF)
		return -EINVAL;
	if (!h || !h->buf_ptr)
		return -ENOTSUP;
	b = h->buf_ptr(h->ctx, m->src_svc, m->cookie, r->buf, m->len, read);
	if (!b)
		return -EINVAL;
	if (send)
		m->data = b;
	else
		m->dst = b;
	return 0;
}

static int import_msg(struct pony *py, const void *p, uint32_t len,
		      const struct pony_state_hooks *h)
{
	struct pony_import *im = py->imp;
	struct pony_state_msg r;
	struct pony_msg *m;
	uint32_t b;
	int rc;

	if (!im || im->cur_streams || !im->cur_msgs)
		return -EINVAL;
	rc = mst_state_take(&r, sizeof(r), p, len);
	if (!rc)
		rc = check_msg(py, im, &r);
	if (rc)
		return rc;
	if (pony_msg_find(py, im->cur, r.id, r.kind == MSG_RX))
		return -EEXIST;
	im->cur_msgs--;
	im->msg_mark[r.index] = MARK_USED;
	m = &py->msgs[r.index];
	*m = (struct pony_msg){ .kind = r.kind, .flags = r.flags, .src_svc = r.src_svc,
				.dst_svc = r.dst_svc, .flow = r.flow, .id = r.id, .stream = r.stream,
				.stream_id = r.stream_id, .seq = r.seq, .len = r.len, .done = r.done,
				.unacked = r.unacked, .status = r.status, .next = r.next,
				.fprev = im->msg_tail, .fnext = PONY_NONE, .key = r.key,
				.roff = r.roff, .cookie = r.cookie };
	b = msg_hash(r.flow, r.id, r.kind == MSG_RX) & py->msg_ht.mask;
	m->hnext = py->msg_ht.head[b];
	py->msg_ht.head[b] = r.index;
	if (im->msg_tail == PONY_NONE)
		py->flows[im->cur].msgs = r.index;
	else
		py->msgs[im->msg_tail].fnext = r.index;
	im->msg_tail = r.index;
	py->n_msgs++;
	return msg_bind(m, &r, h);
}

int pony_import_rec(struct pony *py, unsigned type, const void *payload, uint32_t len,
		    const struct pony_state_hooks *h)
{
	switch (type) {
	case MST_STATE_REC_PONY_STACK:
		return import_stack(py, payload, len);
	case MST_STATE_REC_PONY_FLOW:
		return import_flow(py, payload, len);
	case MST_STATE_REC_PONY_STREAM:
		return import_stream(py, payload, len);
	case MST_STATE_REC_PONY_MSG:
		return import_msg(py, payload, len, h);
	default:
		return -EINVAL;
	}
}

/* ---- import: finish ----------------------------------------------------- */

/* The slot's message is the flow's, of the kind its type sends, and the
 * bytes it covers are the message's. */
static int check_slot(const struct pony *py, uint32_t fi, const struct pony_slot *sl)
{
	const struct pony_msg *m;
	uint8_t kind;

	switch (sl->type) {
	case PONY_T_NAK:
	case PONY_T_READ_ERR:
		return sl->off && sl->off <= 4095 ? 0 : -EINVAL; /* the errno it carries */
	case PONY_T_DATA:
		kind = MSG_SEND;
		break;
	case PONY_T_READ_REQ:
		kind = MSG_READ;
		break;
	case PONY_T_READ_RESP:
		kind = MSG_RESP;
		break;
	default:
		return -EINVAL;
	}
	if (sl->msg >= py->conf.max_msgs || !(py->imp->msg_mark[sl->msg] & MARK_USED))
		return -EINVAL;
	m = &py->msgs[sl->msg];
	if (m->flow != fi || m->kind != kind || (uint64_t)sl->off + sl->len > m->len ||
	    (m->kind == MSG_SEND && !(m->flags & MF_SKIP) && sl->len > py->seg))
		return -EINVAL;
	return 0;
}

/* The send window: counts of INFLIGHT and LOST slots, and each message's
 * packets in flight. */
static int check_window(const struct pony *py, uint32_t fi)
{
	const struct pony_flow *f = &py->flows[fi];
	uint32_t inflight = 0, lost = 0;

	for (uint32_t psn = f->snd_una; psn != f->snd_nxt; psn++) {
		const struct pony_slot *sl = &f->slots[psn & py->win_mask];
		int rc;

		if (sl->state == SLOT_DONE)
			continue; /* acknowledged: never looked at again */
		if (sl->state == SLOT_FREE)
			return -EINVAL;
		rc = check_slot(py, fi, sl);
		if (rc)
			return rc;
		inflight += sl->state == SLOT_INFLIGHT;
		lost += sl->state == SLOT_LOST;
		if (sl->type != PONY_T_NAK && sl->type != PONY_T_READ_ERR)
			py->imp->unacked[sl->msg]++;
	}
	return inflight == f->inflight && lost == f->lost ? 0 : -EINVAL;
}

/* A stream's queue: its messages (head .. tail by next), each unsent,
 * of this stream, on no other list. rx: the wait list instead. */
static int check_queue(const struct pony *py, uint32_t si)
{
	const struct pony_stream *s = &py->streams[si];
	uint32_t last = PONY_NONE, mi = s->rx ? s->wait : s->head;

	if (s->rx ? s->head != PONY_NONE || s->tail != PONY_NONE
		  : (s->head == PONY_NONE) != (s->tail == PONY_NONE))
		return -EINVAL;
	for (; mi != PONY_NONE; mi = py->msgs[mi].next) {
		const struct pony_msg *m;

		if (mi >= py->conf.max_msgs || py->imp->msg_mark[mi] != MARK_USED)
			return -EINVAL; /* not a message, or listed twice (a cycle) */
		m = &py->msgs[mi];
		if (m->stream != si ||
		    (s->rx ? !(m->flags & MF_COMPLETE) || m->seq == s->seq : (m->flags & MF_SENT)))
			return -EINVAL;
		py->imp->msg_mark[mi] |= MARK_LISTED;
		last = mi;
	}
	return s->rx || last == s->tail ? 0 : -EINVAL;
}

/* The round robin: the flow's streams with something to send, each once. */
static int check_rr(const struct pony *py, uint32_t fi)
{
	const struct pony_flow *f = &py->flows[fi];
	uint32_t last = PONY_NONE;

	for (uint32_t si = f->rr_head; si != PONY_NONE; si = py->streams[si].rr_next) {
		const struct pony_stream *s;

		if (si >= n_stream_slots(py) || py->imp->stream_mark[si] != MARK_USED)
			return -EINVAL;
		s = &py->streams[si];
		if (s->flow != fi || !s->in_rr || s->head == PONY_NONE)
			return -EINVAL;
		py->imp->stream_mark[si] |= MARK_LISTED;
		last = si;
	}
	return last == f->rr_tail ? 0 : -EINVAL;
}

static int check_streams(const struct pony *py, uint32_t fi)
{
	uint32_t rs = py->conf.max_msgs + 2 * fi, n_rx = 0;
	int rc = check_rr(py, fi);

	for (uint32_t si = py->flows[fi].streams; !rc && si != PONY_NONE; si = py->streams[si].fnext) {
		n_rx += py->streams[si].rx;
		rc = check_queue(py, si);
	}
	for (uint32_t si = rs; !rc && si < rs + 2; si++)
		rc = check_queue(py, si);
	if (rc)
		return rc;
	/* on the round robin exactly when something waits to be sent */
	for (uint32_t si = py->flows[fi].streams; si != PONY_NONE; si = py->streams[si].fnext)
		if (!py->streams[si].in_rr != !(py->imp->stream_mark[si] & MARK_LISTED) ||
		    (py->streams[si].head != PONY_NONE) != py->streams[si].in_rr)
			return -EINVAL;
	for (uint32_t si = rs; si < rs + 2; si++)
		if (!py->streams[si].in_rr != !(py->imp->stream_mark[si] & MARK_LISTED) ||
		    (py->streams[si].head != PONY_NONE) != py->streams[si].in_rr)
			return -EINVAL;
	return n_rx == py->flows[fi].n_rx_streams ? 0 : -EINVAL;
}

/* Each message: listed where its state says, its packets in flight
 * counted, and the flow's counts what its messages add up to. */
static int check_msgs(const struct pony *py, uint32_t fi)
{
	const struct pony_flow *f = &py->flows[fi];
	uint32_t n_tx = 0, n_rx = 0, n_reads = 0, n_peer = 0;

	for (uint32_t mi = f->msgs; mi != PONY_NONE; mi = py->msgs[mi].fnext) {
		const struct pony_msg *m = &py->msgs[mi];
		bool listed = py->imp->msg_mark[mi] & MARK_LISTED;

		if (m->unacked != py->imp->unacked[mi])
			return -EINVAL;
		if (m->kind == MSG_RX ? listed != !!(m->flags & MF_COMPLETE) ||
					(!listed && m->done >= m->len)
				      : listed == !!(m->flags & MF_SENT))
			return -EINVAL;
		n_rx += m->kind == MSG_RX;
		n_tx += m->kind != MSG_RX;
		n_reads += m->kind == MSG_READ && !(m->flags & MF_RESP_DONE);
		n_peer += m->kind == MSG_RX || m->kind == MSG_RESP;
	}
	return n_tx == f->n_tx && n_rx == f->n_rx && n_reads == f->n_reads && n_peer == f->n_peer
		       ? 0 : -EINVAL;
}

static int check_all(struct pony *py)
{
	struct pony_import *im = py->imp;
	int rc = 0;

	if (im->got_flows != im->n_flows || im->cur_streams || im->cur_msgs)
		return -EINVAL; /* cut short */
	for (uint32_t k = 0; k < im->n_flows; k++)
		if (im->lru[k] == PONY_NONE)
			return -EINVAL;
	for (uint32_t k = 0; k < im->n_ready || k < im->n_acks; k++)
		if ((k < im->n_ready && im->ready[k] == PONY_NONE) ||
		    (k < im->n_acks && im->acks[k] == PONY_NONE))
			return -EINVAL;
	for (uint32_t k = 0; !rc && k < py->n_active; k++)
		rc = check_window(py, py->active[k]);
	for (uint32_t k = 0; !rc && k < py->n_active; k++)
		rc = check_streams(py, py->active[k]);
	for (uint32_t k = 0; !rc && k < py->n_active; k++)
		rc = check_msgs(py, py->active[k]);
	return rc;
}

/* LRU, ready and ACK lists by rank; the pools' free lists in index order. */
static void rebuild(struct pony *py)
{
	struct pony_import *im = py->imp;

	py->lru_head = py->lru_tail = PONY_NONE;
	for (uint32_t k = 0; k < im->n_flows; k++) {
		struct pony_flow *f = &py->flows[im->lru[k]];

		f->lru_prev = py->lru_tail;
		f->lru_next = PONY_NONE;
		if (py->lru_tail != PONY_NONE)
			py->flows[py->lru_tail].lru_next = im->lru[k];
		else
			py->lru_head = im->lru[k];
		py->lru_tail = im->lru[k];
	}
	memcpy(py->ready, im->ready, im->n_ready * sizeof(*py->ready));
	py->n_ready = im->n_ready;
	memcpy(py->acks, im->acks, im->n_acks * sizeof(*py->acks));
	py->n_acks = im->n_acks;
	py->flow_free = py->msg_free = py->stream_free = PONY_NONE;
	for (uint32_t i = py->conf.max_flows; i-- > 0;)
		if (!im->flow_mark[i]) {
			py->flows[i].hnext = py->flow_free;
			py->flows[i].pos = PONY_NONE;
			py->flow_free = i;
		}
	for (uint32_t i = py->conf.max_msgs; i-- > 0;) {
		if (!im->msg_mark[i]) {
			py->msgs[i].kind = MSG_FREE;
			py->msgs[i].next = py->msg_free;
			py->msg_free = i;
		}
		if (!im->stream_mark[i]) {
			py->streams[i].hnext = py->stream_free;
			py->stream_free = i;
		}
	}
	py->done_head = PONY_NONE;
}

int pony_import_finish(struct pony *py)
{
	int rc;

	if (!py->imp)
		return 0; /* no Pony in the state: the instance stays fresh */
	rc = check_all(py);
	if (!rc)
		rebuild(py);
	pony_import_free(py);
	return rc;
}
