/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Pony transmit side: pony_send() / pony_read() queue a message on its
 * stream and call pony_push(), which sends what the congestion window,
 * the peer's credits and the send window allow, in this order:
 * retransmissions (LOST slots, lowest psn first), control packets
 * (NAK, READ_ERR), then one new segment per stream in round robin.
 * Packets are rebuilt from the message at every (re)transmission, so no
 * packet buffer is held while waiting for an ACK.
 */
#include <errno.h>
#include <stddef.h>

#include "transport/pony/pony_priv.h"

static void put_hdr(uint8_t *d, uint8_t type, uint16_t flags, uint32_t src_epoch,
		    uint32_t dst_epoch, uint32_t psn, uint64_t ts)
{
	struct pony_hdr h = {
		.ver = PONY_VERSION,
		.type = type,
		.flags = htons(flags),
		.src_epoch = htonl(src_epoch),
		.dst_epoch = htonl(dst_epoch),
		.psn = htonl(psn),
		.ts_ns = htobe64(ts),
	};

	memcpy(d, &h, sizeof(h));
}

/* A packet buffer holding hdr_len + pay_len bytes; NULL (counted) if none. */
static struct mst_pkt *pkt_get(struct pony *py, uint32_t n)
{
	struct mst_pkt *p = py->io.alloc(py->io.ctx);

	if (!p) {
		MST_DROP(py->st, no_buffer);
		return NULL;
	}
	mst_pkt_trim(p, 0);
	if (!mst_pkt_append(p, (uint16_t)n)) {
		MST_DROP(py->st, no_buffer);
		py->io.free(py->io.ctx, p);
		return NULL;
	}
	return p;
}

static void pkt_out(struct pony *py, struct pony_flow *f, struct mst_pkt *p, uint32_t peer,
		    uint64_t now)
{
	PY_COUNT(py, pony_tx_pkts);
	if (f)
		f->tx_pkts++;
	py->io.output(py->io.ctx, p, peer, now);
}

void pony_send_reset(struct pony *py, uint32_t peer, uint32_t epoch, uint64_t now)
{
	struct mst_pkt *p = pkt_get(py, sizeof(struct pony_hdr));

	if (!p)
		return;
	put_hdr(p->data, PONY_T_RESET, 0, 0, epoch, 0, now);
	PY_COUNT(py, pony_resets_sent);
	pkt_out(py, NULL, p, peer, now);
}

/* CHALLENGE (we have no validated flow for peer's src_epoch: a token it
 * must echo) or RESPONSE (the echo). 40 bytes: never more than the
 * packet that caused it, whatever an address spoofer sends us. */
void pony_send_token(struct pony *py, uint8_t type, uint32_t peer, uint32_t src_epoch,
		     uint32_t dst_epoch, uint64_t token, uint64_t ts_echo, uint64_t now)
{
	struct mst_pkt *p = pkt_get(py, sizeof(struct pony_hdr) + sizeof(struct pony_token_ext));
	struct pony_token_ext x = { .token = htobe64(token), .ts_echo = htobe64(ts_echo) };

	if (!p)
		return;
	put_hdr(p->data, type, 0, src_epoch, dst_epoch, 0, now);
	memcpy(p->data + sizeof(struct pony_hdr), &x, sizeof(x));
	if (type == PONY_T_CHALLENGE)
		PY_COUNT(py, pony_challenges_sent);
	pkt_out(py, NULL, p, peer, now);
}

void pony_send_ack(struct pony *py, struct pony_flow *f, uint64_t now)
{
	struct mst_pkt *p = pkt_get(py, sizeof(struct pony_hdr) + sizeof(struct pony_ack_ext));
	struct pony_ack_ext a;
	uint32_t span;

	if (!p) {
		pony_mark_ack(py, f, now);
		return;
	}
	memset(&a, 0, sizeof(a));
	a.cum = htonl(f->rcv_nxt);
	a.credits = htonl(f->rx_busy ? 0 : py->win);
	a.ts_echo = htobe64(f->echo_ts);
	a.ack_delay_ns = htonl(f->echo_ts && now - f->echo_at < UINT32_MAX
				       ? (uint32_t)(now - f->echo_at) : 0);
	/* bit i = psn rcv_nxt + 1 + i; nothing to say without a hole */
	span = f->rcv_max - f->rcv_nxt;
	if (seq_lt(f->rcv_nxt, f->rcv_max) && span > 1) {
		if (span - 1 > PONY_SACK_BITS)
			span = PONY_SACK_BITS + 1;
		for (uint32_t i = 0; i + 1 < span; i++) {
			uint32_t psn = f->rcv_nxt + 1 + i;

			if (f->rcv_map[(psn & py->win_mask) / 64] >> (psn & 63) & 1)
				a.sack[i / 8] |= (uint8_t)(1u << (i % 8));
		}
	}
	put_hdr(p->data, PONY_T_ACK, f->rx_busy ? PONY_F_BUSY : 0, f->my_epoch, f->peer_epoch, 0,
		now);
	memcpy(p->data + sizeof(struct pony_hdr), &a, sizeof(a));
	f->rx_unacked = 0;
	PY_COUNT(py, pony_acks_sent);
	pkt_out(py, f, p, f->peer, now);
}

/* ---- message completion ---- */

/* A tx message whose every packet is out and acknowledged is finished; the
 * callbacks run from pony_done_drain(), after the caller stops walking the
 * window (a callback may send). */
void pony_tx_msg_check(struct pony *py, uint32_t mi)
{
	struct pony_msg *m = &py->msgs[mi];

	if (!(m->flags & MF_SENT) || m->unacked)
		return;
	if (m->kind == MSG_READ && !(m->flags & MF_RESP_DONE))
		return;
	if (m->flags & MF_COMPLETE)
		return; /* already on the done list */
	m->flags |= MF_COMPLETE;
	m->next = py->done_head;
	py->done_head = mi;
}

void pony_done_drain(struct pony *py)
{
	while (py->done_head != PONY_NONE) {
		uint32_t mi = py->done_head;
		struct pony_msg m = py->msgs[mi];
		struct pony_flow *f = &py->flows[m.flow];

		py->done_head = m.next;
		pony_msg_free(py, mi);
		if (m.kind == MSG_RESP) {
			if (!m.status)
				PY_COUNT(py, pony_reads_served);
		} else if (m.kind == MSG_SEND && !(m.flags & MF_NOTIFIED)) {
			PY_COUNT(py, pony_msgs_sent);
			f->msgs_sent++;
			if (py->io.tx_done)
				py->io.tx_done(py->io.ctx, m.src_svc, m.cookie, m.status);
		}
	}
}

/* ---- queueing ---- */

/* Stream si joins the back of the flow's round robin. */
static void rr_append(struct pony *py, struct pony_flow *f, uint32_t si)
{
	struct pony_stream *s = &py->streams[si];

	s->in_rr = 1;
	s->rr_next = PONY_NONE;
	if (f->rr_tail != PONY_NONE)
		py->streams[f->rr_tail].rr_next = si;
	else
		f->rr_head = si;
	f->rr_tail = si;
}

/* A message that fits one packet: it jumps the round robin and the
 * congestion window (up to PONY_SMALL_EXTRA packets past it), so an RPC
 * never queues behind a bulk transfer's window (Pony Express, Swift keep
 * small ops' queues short). */
static bool msg_small(const struct pony *py, const struct pony_msg *m)
{
	return !m->done && m->len <= py->seg;
}

void pony_stream_enqueue(struct pony *py, struct pony_flow *f, struct pony_stream *s, uint32_t mi)
{
	uint32_t si = (uint32_t)(s - py->streams);

	py->msgs[mi].next = PONY_NONE;
	py->msgs[mi].stream = si;
	if (s->tail != PONY_NONE)
		py->msgs[s->tail].next = mi;
	else
		s->head = mi;
	s->tail = mi;
	if (s->in_rr)
		return;
	if (s->head == mi && msg_small(py, &py->msgs[mi]) && f->rr_head != PONY_NONE) {
		s->in_rr = 1;
		s->rr_next = f->rr_head;
		f->rr_head = si;
		return;
	}
	rr_append(py, f, si);
}

bool pony_ctrl_queue(struct pony *py, struct pony_flow *f, uint8_t type, uint32_t id, uint32_t err)
{
	struct pony_ctrl *c;

	if (f->ctrl_tail - f->ctrl_head >= PONY_CTRL_RING)
		return false;
	c = &f->ctrl[f->ctrl_tail++ % PONY_CTRL_RING];
	c->type = type;
	c->id = id;
	c->err = err;
	return true;
}

static int check_args(struct pony *py, uint32_t peer, uint32_t len)
{
	if (!len)
		return -EINVAL;
	if (len > py->conf.max_msg)
		return -EMSGSIZE;
	if (!peer || peer == 0xffffffffu)
		return -ENETUNREACH;
	return 0;
}

/* A new message of ours on f (NULL: no flow or the pool is empty). */
static struct pony_msg *local_msg(struct pony *py, struct pony_flow *f, uint8_t kind,
				  uint16_t src_svc, uint16_t dst_svc, uint32_t len, uint64_t cookie)
{
	struct pony_msg *m = f ? pony_msg_alloc(py, f, kind, f->next_msg_id, src_svc, dst_svc, len)
			       : NULL;

	if (!m)
		return NULL;
	f->next_msg_id++;
	m->cookie = cookie;
	return m;
}

static int local_start(struct pony *py, struct pony_flow *f, struct pony_stream *s,
		       struct pony_msg *m, uint64_t now)
{
	pony_stream_enqueue(py, f, s, (uint32_t)(m - py->msgs));
	pony_flow_touch(py, f, now);
	pony_push(py, f, now);
	return 0;
}

int pony_send(struct pony *py, uint32_t peer, uint16_t src_svc, uint16_t dst_svc,
	      uint32_t stream, const void *data, uint32_t len, uint64_t cookie, uint64_t now_ns)
{
	struct pony_flow *f;
	struct pony_stream *s;
	struct pony_msg *m;
	int rc = check_args(py, peer, len);

	if (rc)
		return rc;
	if (stream >= py->conf.max_streams || !data)
		return -EINVAL;
	f = pony_flow_get(py, peer, now_ns, true);
	s = f ? pony_stream_get(py, f, false, src_svc, dst_svc, stream, true) : NULL;
	if (!s)
		return -ENOBUFS;
	m = local_msg(py, f, MSG_SEND, src_svc, dst_svc, len, cookie);
	if (!m)
		return -ENOBUFS;
	m->stream_id = stream;
	m->seq = s->seq++;
	m->data = data;
	return local_start(py, f, s, m, now_ns);
}

int pony_read(struct pony *py, uint32_t peer, uint16_t src_svc, uint16_t dst_svc, uint64_t key,
	      uint64_t off, uint32_t len, void *dst, uint64_t cookie, uint64_t now_ns)
{
	struct pony_flow *f;
	struct pony_msg *m;
	int rc = check_args(py, peer, len);

	if (rc)
		return rc;
	if (!dst)
		return -EINVAL;
	m = local_msg(py, pony_flow_get(py, peer, now_ns, true), MSG_READ, src_svc, dst_svc, len,
		      cookie);
	if (!m)
		return -ENOBUFS;
	f = &py->flows[m->flow];
	m->stream_id = PONY_READ_STREAM;
	m->key = key;
	m->roff = off;
	m->dst = dst;
	PY_COUNT(py, pony_reads_issued);
	return local_start(py, f, pony_read_stream(py, f, false), m, now_ns);
}

/* ---- building packets ---- */

static struct mst_pkt *build_data(struct pony *py, struct pony_flow *f, uint32_t psn,
				  const struct pony_slot *sl, struct pony_msg *m, uint64_t now)
{
	struct pony_data_ext x;
	const uint8_t *pay = NULL;
	uint16_t flags = 0;
	uint32_t n;
	struct mst_pkt *p;

	if (m->kind == MSG_RESP && !m->status) {
		int err = -ENOENT;

		/* The region may have gone since the last poll: look again. */
		pay = py->io.region_lookup ? py->io.region_lookup(py->io.ctx, m->src_svc, m->key,
								  m->roff + sl->off, sl->len, &err)
					   : NULL;
		if (!pay) {
			m->status = err < 0 ? err : -EIO;
			m->flags |= MF_SENT;
		}
	}
	if (m->kind == MSG_RESP && m->status) {
		struct pony_err_ext e = { .id = htonl(m->id), .err = htonl((uint32_t)-m->status) };

		p = pkt_get(py, sizeof(struct pony_hdr) + sizeof(e));
		if (!p)
			return NULL;
		put_hdr(p->data, PONY_T_READ_ERR, 0, f->my_epoch, f->peer_epoch, psn, now);
		memcpy(p->data + sizeof(struct pony_hdr), &e, sizeof(e));
		return p;
	}
	if (m->kind == MSG_SEND) {
		if (m->flags & MF_SKIP)
			flags |= PONY_F_SKIP;
		else
			pay = m->data + sl->off;
	}
	if (sl->off + sl->len == m->len)
		flags |= PONY_F_ACK_NOW;
	n = pay ? sl->len : 0;
	p = pkt_get(py, PONY_DATA_HLEN + n);
	if (!p)
		return NULL;
	x = (struct pony_data_ext){
		.msg_id = htonl(m->id),
		.stream = htonl(m->kind == MSG_SEND ? m->stream_id : 0),
		.seq = htonl(m->kind == MSG_SEND ? m->seq : 0),
		.msg_len = htonl(m->len),
		.off = htonl(sl->off),
		.src_svc = htons(m->src_svc),
		.dst_svc = htons(m->dst_svc),
		.seg_len = htons(sl->len),
	};
	put_hdr(p->data, m->kind == MSG_SEND ? PONY_T_DATA : PONY_T_READ_RESP, flags, f->my_epoch,
		f->peer_epoch, psn, now);
	memcpy(p->data + sizeof(struct pony_hdr), &x, sizeof(x));
	if (n)
		memcpy(p->data + PONY_DATA_HLEN, pay, n);
	f->tx_bytes += n;
	MST_COUNT_N(py->st, pony_tx_bytes, n);
	return p;
}

static struct mst_pkt *build(struct pony *py, struct pony_flow *f, uint32_t psn, uint64_t now)
{
	struct pony_slot *sl = slot_of(py, f, psn);
	struct mst_pkt *p;

	switch (sl->type) {
	case PONY_T_DATA:
	case PONY_T_READ_RESP:
		return build_data(py, f, psn, sl, &py->msgs[sl->msg], now);
	case PONY_T_READ_REQ: {
		struct pony_msg *m = &py->msgs[sl->msg];
		struct pony_read_ext r = {
			.req_id = htonl(m->id),
			.key = htobe64(m->key),
			.off = htobe64(m->roff),
			.len = htonl(m->len),
			.src_svc = htons(m->src_svc),
			.dst_svc = htons(m->dst_svc),
		};

		p = pkt_get(py, sizeof(struct pony_hdr) + sizeof(r));
		if (!p)
			return NULL;
		put_hdr(p->data, PONY_T_READ_REQ, PONY_F_ACK_NOW, f->my_epoch, f->peer_epoch, psn,
			now);
		memcpy(p->data + sizeof(struct pony_hdr), &r, sizeof(r));
		return p;
	}
	case PONY_T_NAK:
	case PONY_T_READ_ERR: {
		struct pony_err_ext e = { .id = htonl(sl->msg), .err = htonl(sl->off) };

		p = pkt_get(py, sizeof(struct pony_hdr) + sizeof(e));
		if (!p)
			return NULL;
		put_hdr(p->data, sl->type, PONY_F_ACK_NOW, f->my_epoch, f->peer_epoch, psn, now);
		memcpy(p->data + sizeof(struct pony_hdr), &e, sizeof(e));
		return p;
	}
	}
	return NULL;
}

/* The ACK we owe the peer rides on p when it can say everything a
 * PONY_T_ACK would (no hole, not BUSY) and fits in the MTU: a response
 * acknowledges its request, 2 packets per RPC instead of 4. */
static void ack_trailer(struct pony *py, struct pony_flow *f, struct mst_pkt *p, uint64_t now)
{
	struct pony_ack_trailer t;
	uint16_t flags;
	uint8_t *d;

	if (!f->rx_unacked || f->rcv_max != f->rcv_nxt || f->rx_busy || !f->peer_epoch ||
	    p->len + sizeof(t) > py->conf.mtu - PONY_IP_UDP_LEN)
		return;
	d = mst_pkt_append(p, sizeof(t));
	if (!d)
		return;
	t = (struct pony_ack_trailer){
		.cum = htonl(f->rcv_nxt),
		.credits = htonl(py->win),
		.ts_echo = htobe64(f->echo_ts),
		.ack_delay_ns = htonl(f->echo_ts && now - f->echo_at < UINT32_MAX
					      ? (uint32_t)(now - f->echo_at) : 0),
	};
	memcpy(d, &t, sizeof(t));
	memcpy(&flags, p->data + offsetof(struct pony_hdr, flags), sizeof(flags));
	flags |= htons(PONY_F_PIGGY);
	memcpy(p->data + offsetof(struct pony_hdr, flags), &flags, sizeof(flags));
	f->rx_unacked = 0;
	PY_COUNT(py, pony_acks_piggybacked);
}

/* (Re)transmit psn, whose slot is filled in. false: no buffer. */
static bool xmit(struct pony *py, struct pony_flow *f, uint32_t psn, bool again, uint64_t now)
{
	struct pony_slot *sl = slot_of(py, f, psn);
	struct mst_pkt *p = build(py, f, psn, now);

	if (!p)
		return false;
	sl->sent_ns = now;
	sl->rexmit = again;
	sl->order = ++f->order;
	sl->state = SLOT_INFLIGHT;
	f->inflight++;
	if (!f->rto_at)
		f->rto_at = now + f->rto_ns;
	ack_trailer(py, f, p, now);
	pkt_out(py, f, p, f->peer, now);
	return true;
}

void pony_mark_lost(struct pony *py, struct pony_flow *f, uint32_t psn)
{
	struct pony_slot *sl = slot_of(py, f, psn);

	sl->state = SLOT_LOST;
	f->inflight--;
	f->lost++;
	if (seq_lt(psn, f->lost_cursor) || !f->lost_cursor_valid) {
		f->lost_cursor = psn;
		f->lost_cursor_valid = 1;
	}
}

static bool retransmit_one(struct pony *py, struct pony_flow *f, uint64_t now)
{
	if (!f->lost_cursor_valid || seq_lt(f->lost_cursor, f->snd_una))
		f->lost_cursor = f->snd_una;
	for (; seq_lt(f->lost_cursor, f->snd_nxt); f->lost_cursor++) {
		uint32_t psn = f->lost_cursor;

		if (slot_of(py, f, psn)->state != SLOT_LOST)
			continue;
		f->lost--;
		if (!xmit(py, f, psn, true, now)) {
			f->lost++;
			return false;
		}
		f->retransmits++;
		PY_COUNT(py, pony_retransmits);
		return true;
	}
	f->lost = 0; /* cannot happen: the count and the slots disagree */
	return true;
}

/* Timeout: the oldest unacknowledged packet goes out now, whatever cwnd says. */
void pony_rto_probe(struct pony *py, struct pony_flow *f, uint64_t now)
{
	if (f->snd_una == f->snd_nxt)
		return;
	if (slot_of(py, f, f->snd_una)->state == SLOT_INFLIGHT)
		pony_mark_lost(py, f, f->snd_una);
	if (!retransmit_one(py, f, now))
		pony_mark_ready(py, f);
}

/* Hand the next segment of the stream at the head of the round robin to a new psn. */
static bool send_new(struct pony *py, struct pony_flow *f, uint64_t now)
{
	uint32_t si = f->rr_head, psn = f->snd_nxt;
	struct pony_stream *s = &py->streams[si];
	uint32_t mi = s->head;
	struct pony_msg *m = &py->msgs[mi];
	struct pony_slot *sl = slot_of(py, f, psn);
	uint32_t n;

	sl->msg = mi;
	sl->off = m->done;
	switch (m->kind) {
	case MSG_READ:
		sl->type = PONY_T_READ_REQ;
		n = 0;
		break;
	case MSG_RESP:
		sl->type = PONY_T_READ_RESP;
		n = m->len - m->done < py->seg ? m->len - m->done : py->seg;
		break;
	default:
		sl->type = PONY_T_DATA;
		/* an abandoned message's segments carry no payload: cover more */
		n = m->len - m->done;
		if (n > ((m->flags & MF_SKIP) ? 0xffffu : py->seg))
			n = (m->flags & MF_SKIP) ? 0xffffu : py->seg;
		break;
	}
	sl->len = (uint16_t)n;
	if (!xmit(py, f, psn, false, now))
		return false;
	f->snd_nxt++;
	m->unacked++;
	if (m->kind == MSG_READ)
		m->flags |= MF_SENT;
	else
		m->done += n;
	if (m->done >= m->len && m->kind != MSG_READ)
		m->flags |= MF_SENT;
	if (m->flags & MF_SENT) {
		s->head = m->next;
		if (s->head == PONY_NONE)
			s->tail = PONY_NONE;
		m->next = PONY_NONE;
	}
	/* round robin: this stream goes to the back (or leaves) */
	f->rr_head = s->rr_next;
	if (f->rr_head == PONY_NONE)
		f->rr_tail = PONY_NONE;
	s->in_rr = 0;
	if (s->head != PONY_NONE)
		rr_append(py, f, si);
	return true;
}

static bool send_ctrl(struct pony *py, struct pony_flow *f, uint64_t now)
{
	struct pony_ctrl *c = &f->ctrl[f->ctrl_head % PONY_CTRL_RING];
	struct pony_slot *sl = slot_of(py, f, f->snd_nxt);

	sl->type = c->type;
	sl->msg = c->id;
	sl->off = c->err;
	sl->len = 0;
	if (!xmit(py, f, f->snd_nxt, false, now))
		return false;
	f->snd_nxt++;
	f->ctrl_head++;
	return true;
}

/* The round robin's next packet is a one-packet message, and the window
 * it may exceed cwnd by is not used up. */
static bool small_ok(const struct pony *py, const struct pony_flow *f)
{
	const struct pony_stream *s = &py->streams[f->rr_head];

	return (uint64_t)f->inflight * 1000 < f->cwnd_milli + PONY_SMALL_EXTRA * 1000ull &&
	       msg_small(py, &py->msgs[s->head]);
}

int pony_push(struct pony *py, struct pony_flow *f, uint64_t now)
{
	int n = 0;

	for (;;) {
		bool cwnd_ok = (uint64_t)f->inflight * 1000 < f->cwnd_milli;
		bool room = f->snd_nxt - f->snd_una < py->win;
		bool ok;

		if (f->lost && cwnd_ok)
			ok = retransmit_one(py, f, now);
		else if (f->ctrl_head != f->ctrl_tail && room)
			ok = send_ctrl(py, f, now); /* tiny, and the peer waits on it */
		else if (f->rr_head != PONY_NONE && room &&
			 seq_lt(f->snd_nxt, f->peer_cum + f->peer_credits) &&
			 (cwnd_ok || small_ok(py, f)))
			ok = send_new(py, f, now);
		else
			break;
		if (!ok) {
			pony_mark_ready(py, f);
			break;
		}
		n++;
	}
	pony_done_drain(py);
	return n;
}

/* Swift: one multiplicative decrease per RTT (docs/pony.md, "Congestion control"). */
void pony_cc_decrease(struct pony *py, struct pony_flow *f, uint32_t mdf_milli, uint64_t now)
{
	uint64_t cw;

	if (f->last_decrease && now - f->last_decrease < f->srtt_ns)
		return;
	if (mdf_milli > py->conf.cc_max_mdf_milli)
		mdf_milli = py->conf.cc_max_mdf_milli;
	cw = (uint64_t)f->cwnd_milli * (1000 - mdf_milli) / 1000;
	f->cwnd_milli = cw < 1000 ? 1000 : (uint32_t)cw;
	f->last_decrease = now ? now : 1;
}
