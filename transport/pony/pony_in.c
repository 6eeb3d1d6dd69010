/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Pony receive side: pony_input() -> parse_common() -> ack_input() |
 * reset_input() | reliable_input() -> (epoch check, window check) ->
 * data_input() / read_req_input() / read_resp_input() / err_input() ->
 * accept + ACK policy.
 *
 * A reliable packet is "accepted" (its psn marked received and later
 * acknowledged) once it is fully processed, including deliberately
 * discarded; it is left unaccepted (the sender retransmits) only when we
 * lack room: rx_begin -ENOBUFS, message or stream pool full.
 */
#include <errno.h>

#include "transport/pony/pony_priv.h"

enum verdict {
	V_ACCEPT,   /* processed: mark psn received */
	V_BUSY,     /* no room now: do not mark, tell the sender we are busy */
	V_OVER,     /* as V_BUSY, because the peer holds its whole share */
	V_DROP,     /* malformed for this flow: counted, not marked */
};

struct rx_pkt {
	struct pony_hdr h;
	union {
		struct pony_data_ext d;
		struct pony_read_ext r;
		struct pony_err_ext e;
		struct pony_ack_ext a;
		struct pony_token_ext t;
	} x;
	struct pony_ack_trailer t;  /* valid when piggy */
	const uint8_t *pay;
	uint32_t pay_len;
	bool piggy;
	uint32_t src;
	uint64_t now;
	bool ack_now;
};

static const uint8_t ext_len[PONY_T__MAX] = {
	[PONY_T_DATA] = sizeof(struct pony_data_ext),
	[PONY_T_ACK] = sizeof(struct pony_ack_ext),
	[PONY_T_READ_REQ] = sizeof(struct pony_read_ext),
	[PONY_T_READ_RESP] = sizeof(struct pony_data_ext),
	[PONY_T_NAK] = sizeof(struct pony_err_ext),
	[PONY_T_READ_ERR] = sizeof(struct pony_err_ext),
	[PONY_T_RESET] = 0,
	[PONY_T_CHALLENGE] = sizeof(struct pony_token_ext),
	[PONY_T_RESPONSE] = sizeof(struct pony_token_ext),
};

/* ---- acknowledgements in ---- */

static void rtt_sample(struct pony *py, struct pony_flow *f, uint32_t r, uint64_t now)
{
	uint32_t rto;

	if (!f->srtt_ns) {
		f->srtt_ns = r;
		f->rttvar_ns = r / 2;
	} else {
		uint32_t d = f->srtt_ns > r ? f->srtt_ns - r : r - f->srtt_ns;

		f->rttvar_ns = (3 * (uint64_t)f->rttvar_ns + d) / 4;
		f->srtt_ns = (7 * (uint64_t)f->srtt_ns + r) / 8;
	}
	/* Windowed minimum: the base delay may grow (a route, a scheduling
	 * mode); a minimum older than the window gives way to the present. */
	if (!f->min_rtt_ns || r <= f->min_rtt_ns || now - f->min_rtt_at > PONY_MIN_RTT_WIN_NS) {
		f->min_rtt_ns = r;
		f->min_rtt_at = now;
	}
	f->last_rtt_ns = r;
	if (f->rto_floor_ns && now - f->rto_floor_at > PONY_RTO_FLOOR_DECAY_NS) {
		f->rto_floor_ns /= 2;
		f->rto_floor_at = now;
	}
	rto = f->srtt_ns + 4 * f->rttvar_ns;
	if (rto < py->conf.rto_min_us * 1000)
		rto = py->conf.rto_min_us * 1000;
	if (rto < f->rto_floor_ns)
		rto = f->rto_floor_ns;
	if (rto > py->conf.rto_max_us * 1000)
		rto = py->conf.rto_max_us * 1000;
	f->rto_ns = rto;
}

/* Swift's flow scaling: the target grows by up to cc_fs_range_us as the
 * window shrinks, as 1/sqrt(cwnd) (cc_fs_range_us at cwnd 1, nothing from
 * cc_fs_max_cwnd up). A flow whose RTT moves for reasons no window
 * changes (engines that sleep on shared cores, a slow hop) keeps a few
 * packets in flight instead of collapsing to one; flows with big windows
 * still hold the queue to cc_target_us.
 *   fs = range x (sqrt(max) / sqrt(cwnd) - 1) / (sqrt(max) - 1)        */
static uint64_t fs_ns(const struct pony *py, uint32_t cwnd_milli)
{
	uint64_t range = py->conf.cc_fs_range_us * 1000ull, sm = py->fs_sqrt_max, sc;

	if (cwnd_milli <= 1000)
		return range;
	if (cwnd_milli >= py->conf.cc_fs_max_cwnd * 1000ull)
		return 0;
	sc = isqrt64((uint64_t)cwnd_milli * 1000); /* sqrt(cwnd) x 1000 */
	return range * (sm * 1000 / sc - 1000) / (sm - 1000);
}

/* Swift: additive increase below the target delay, multiplicative decrease
 * proportional to the excess above it (docs/pony.md). The target is the
 * flow's base delay (its smallest recent RTT: wire, both engines' poll
 * loops, which vary by host and scheduling mode) plus cc_target_us of
 * queueing, as Swift adds its endpoint and hop terms to a fixed base,
 * plus the flow-scaling term. */
static void cc_on_ack(struct pony *py, struct pony_flow *f, uint32_t acked, uint32_t rtt,
		      uint64_t now)
{
	uint64_t target = f->min_rtt_ns + py->conf.cc_target_us * 1000ull;

	if (rtt >= target) /* only then does the flow-scaling term matter */
		target += fs_ns(py, f->cwnd_milli);
	if (rtt < target) {
		uint64_t inc = (uint64_t)py->conf.cc_ai_milli * acked;

		if (f->cwnd_milli >= 1000)
			inc = inc * 1000 / f->cwnd_milli;
		inc += f->cwnd_milli;
		f->cwnd_milli = inc > py->win * 1000ull ? py->win * 1000 : (uint32_t)inc;
	} else {
		uint64_t mdf = (uint64_t)py->conf.cc_beta_milli * (rtt - target) / rtt;

		pony_cc_decrease(py, f, (uint32_t)mdf, now);
	}
}

/* What one ACK newly acknowledges. */
struct ack_scan {
	uint64_t ts_echo;     /* send time of the newest packet the receiver has */
	uint32_t newly;       /* packets retired by this ACK */
	uint32_t max_order;   /* highest order among transmissions known delivered */
	uint32_t rtt_order;   /* newest retired packet sent once (Karn), */
	uint64_t rtt_sent;    /* and its send time */
	bool have_order, have_rtt;
};

/* psn was received by the peer: retire its slot (if not retired already). */
static void retire(struct pony *py, struct pony_flow *f, uint32_t psn, struct ack_scan *as)
{
	struct pony_slot *sl = slot_of(py, f, psn);

	if (sl->state == SLOT_INFLIGHT)
		f->inflight--;
	else if (sl->state == SLOT_LOST)
		f->lost--;
	else
		return;
	sl->state = SLOT_DONE;
	as->newly++;
	/* Which transmission arrived? The last one, if it was sent no later
	 * than the newest packet the receiver holds; otherwise an earlier
	 * copy did, whose order we no longer know: using the last one's
	 * would declare everything sent in between lost. */
	if (!sl->rexmit || sl->sent_ns <= as->ts_echo) {
		if (!as->have_order || seq_lt(as->max_order, sl->order))
			as->max_order = sl->order;
		as->have_order = true;
	}
	if (!sl->rexmit && (!as->have_rtt || seq_lt(as->rtt_order, sl->order))) {
		as->rtt_order = sl->order;
		as->rtt_sent = sl->sent_ns;
		as->have_rtt = true;
	}
	if (sl->type == PONY_T_DATA || sl->type == PONY_T_READ_REQ ||
	    sl->type == PONY_T_READ_RESP) {
		struct pony_msg *m = &py->msgs[sl->msg];

		m->unacked--;
		pony_tx_msg_check(py, sl->msg);
	}
}

/* The first ACK with news after a timeout tells whether it was needed
 * (Eifel, RFC 3522, with our timestamps): if the newest packet the
 * receiver holds was sent before the timeout, the originals are getting
 * through (the peer or the path was only slow): undo the decrease and let
 * them be acknowledged. Otherwise the probe got through where they did
 * not: everything sent before the timeout and still unacknowledged is lost. */
static void rto_resolve(struct pony *py, struct pony_flow *f, uint64_t ts_echo, uint64_t now)
{
	if (ts_echo < f->rto_probe_at) {
		/* The peer stalls longer than our RTO (a host short of CPU
		 * deschedules its engine for milliseconds, which srtt and
		 * rttvar, updated per packet, forget within one RTT): remember
		 * a floor, doubled per spurious timeout, halved every second. */
		uint64_t fl = f->rto_floor_ns ? 2ull * f->rto_floor_ns : 2000ull * py->conf.rto_min_us;
		/* At most 8 x rto_min: a spurious timeout costs one probe, but a
		 * floor near rto_max makes every real loss at a small window
		 * (cwnd 1-2: no duplicate SACKs to detect it) wait that long. */
		uint64_t cap = 8000ull * py->conf.rto_min_us;

		if (cap > py->conf.rto_max_us * 1000ull)
			cap = py->conf.rto_max_us * 1000ull;
		f->rto_floor_ns = (uint32_t)(fl > cap ? cap : fl);
		f->rto_floor_at = now;
		if (f->cwnd_milli < f->rto_undo_cwnd)
			f->cwnd_milli = f->rto_undo_cwnd;
		PY_COUNT(py, pony_spurious_rtos);
	} else {
		for (uint32_t psn = f->snd_una; seq_lt(psn, f->snd_nxt); psn++) {
			struct pony_slot *sl = slot_of(py, f, psn);

			if (sl->state == SLOT_INFLIGHT && sl->sent_ns < f->rto_probe_at)
				pony_mark_lost(py, f, psn);
		}
	}
	f->rto_probe_at = 0;
}

/* What an ACK says, from a PONY_T_ACK or a reliable packet's trailer. */
struct ack_view {
	uint32_t cum, credits;
	uint64_t ts_echo;
	uint32_t ack_delay_ns;
	const uint8_t *sack;  /* PONY_SACK_BITS / 8 bytes, NULL = no hole reported */
	bool busy;
};

static void ack_apply(struct pony *py, struct pony_flow *f, const struct ack_view *a, uint64_t now);

static void ack_input(struct pony *py, struct pony_flow *f, struct rx_pkt *k)
{
	struct ack_view v = { .cum = k->x.a.cum, .credits = k->x.a.credits,
			      .ts_echo = k->x.a.ts_echo, .ack_delay_ns = k->x.a.ack_delay_ns,
			      .sack = k->x.a.sack, .busy = !!(k->h.flags & PONY_F_BUSY) };

	if (!f) {
		PY_DROP(py, pony_no_flow);
		return;
	}
	if (k->h.dst_epoch != f->my_epoch ||
	    (f->peer_epoch && k->h.src_epoch != f->peer_epoch)) {
		PY_DROP(py, pony_stale_epoch);
		return;
	}
	if (seq_lt(f->snd_nxt, v.cum)) {
		PY_DROP(py, pony_bad_ack);
		return;
	}
	if (!f->peer_epoch)
		f->peer_epoch = k->h.src_epoch;
	PY_COUNT(py, pony_acks_rx);
	f->last_rx = k->now;
	pony_flow_touch(py, f, k->now);
	ack_apply(py, f, &v, k->now);
	pony_done_drain(py);
	pony_push(py, f, k->now);
}

/* A reliable packet's ACK trailer, once its flow and epochs are checked;
 * completions it causes are handed out before the packet's own content. */
static void trailer_input(struct pony *py, struct pony_flow *f, const struct rx_pkt *k)
{
	struct ack_view v = { .cum = k->t.cum, .credits = k->t.credits, .ts_echo = k->t.ts_echo,
			      .ack_delay_ns = k->t.ack_delay_ns };

	if (k->h.dst_epoch != f->my_epoch)
		return; /* addressed to a flow we no longer have: its ACK means nothing */
	if (seq_lt(f->snd_nxt, v.cum)) {
		PY_DROP(py, pony_bad_ack);
		return;
	}
	ack_apply(py, f, &v, k->now);
	pony_done_drain(py);
}

static void ack_apply(struct pony *py, struct pony_flow *f, const struct ack_view *a, uint64_t now)
{
	struct ack_scan as = { .ts_echo = a->ts_echo };
	uint32_t cum = a->cum, high = 0;
	bool sacked = false, loss = false, late = false;

	for (; seq_lt(f->snd_una, cum); f->snd_una++) {
		retire(py, f, f->snd_una, &as);
		f->retries = 0;
	}
	if (seq_le(f->peer_cum, cum)) {
		f->peer_cum = cum;
		f->peer_credits = a->credits;
	}
	f->peer_busy = a->busy;
	/* A late ACK (cum < snd_una: overtaken by newer ones) may name psns
	 * below snd_una, whose slots a newer psn now uses (slot_of() masks):
	 * only [snd_una, snd_nxt) is ours to retire. */
	for (uint32_t w = 0; a->sack && w < PONY_SACK_BITS / 8; w++) {
		for (uint32_t b = a->sack[w]; b; b &= b - 1) {
			uint32_t psn = cum + 1 + w * 8 + (uint32_t)__builtin_ctz(b);

			if (!seq_lt(psn, f->snd_nxt))
				break;
			if (seq_lt(psn, f->snd_una)) {
				late = true;
				continue;
			}
			sacked = true;
			high = psn;
			retire(py, f, psn, &as);
		}
	}
	if (late)
		PY_DROP(py, pony_late_sack);
	if (f->rto_probe_at && as.newly)
		rto_resolve(py, f, a->ts_echo, now);
	/* Loss: a hole sent PONY_DUPTHRESH transmissions before one now delivered. */
	if (sacked && as.have_order) {
		for (uint32_t psn = f->snd_una; seq_lt(psn, high); psn++) {
			struct pony_slot *sl = slot_of(py, f, psn);

			if (sl->state == SLOT_INFLIGHT &&
			    seq_le(sl->order + PONY_DUPTHRESH, as.max_order)) {
				pony_mark_lost(py, f, psn);
				PY_COUNT(py, pony_sack_losses);
				loss = true;
			}
		}
	}
	/* RTT from the newest packet this ACK retires that was sent once
	 * (Karn); the receiver's holding time is known for the packet it
	 * echoes, which is that one unless ACKs crossed a retransmission. */
	if (as.have_rtt && now > as.rtt_sent) {
		uint64_t r = now - as.rtt_sent;

		if (as.rtt_sent == a->ts_echo && a->ack_delay_ns < r)
			r -= a->ack_delay_ns;
		if (r < UINT32_MAX) {
			rtt_sample(py, f, (uint32_t)r, now);
			cc_on_ack(py, f, as.newly, (uint32_t)r, now);
		}
	}
	if (loss)
		pony_cc_decrease(py, f, py->conf.cc_max_mdf_milli, now);
	if (f->snd_una == f->snd_nxt)
		f->rto_at = 0;
	else if (as.newly)
		f->rto_at = now + f->rto_ns;
}

/* A CHALLENGE for our flow that does not know the peer's epoch yet (the
 * peer has no flow for ours): echo the token, and resend at once what the
 * peer discarded (what we sent before the packet it challenged left). */
static void challenge_input(struct pony *py, struct pony_flow *f, struct rx_pkt *k)
{
	if (!f || k->h.dst_epoch != f->my_epoch || f->peer_epoch) {
		PY_DROP(py, pony_stale_epoch);
		return;
	}
	PY_COUNT(py, pony_challenges_rx);
	pony_send_token(py, PONY_T_RESPONSE, f->peer, f->my_epoch, 0, k->x.t.token, 0, k->now);
	for (uint32_t psn = f->snd_una; seq_lt(psn, f->snd_nxt); psn++) {
		struct pony_slot *sl = slot_of(py, f, psn);

		if (sl->state == SLOT_INFLIGHT && sl->sent_ns <= k->x.t.ts_echo)
			pony_mark_lost(py, f, psn);
	}
	pony_push(py, f, k->now);
}

/* The peer echoed our token: it is at that address, with that epoch. Its
 * flow is created, or replaces ours if ours knew another incarnation of
 * it (it restarted). No answer: the packets it resends right after are
 * accepted now, and our first ACK or packet tells it our epoch. */
static void response_input(struct pony *py, struct pony_flow *f, struct rx_pkt *k)
{
	uint32_t se = k->h.src_epoch;

	if (!se || k->h.dst_epoch || !pony_token_ok(py, k->src, se, k->x.t.token, k->now)) {
		PY_DROP(py, pony_bad_token);
		return;
	}
	if (f && f->peer_epoch && f->peer_epoch != se) {
		pony_flow_fail(py, f, -ECONNRESET);
		f = NULL;
	}
	if (!f) {
		f = pony_flow_get(py, k->src, k->now, true);
		if (!f) {
			PY_DROP(py, pony_no_flow_room);
			return;
		}
	}
	if (!f->peer_epoch)
		PY_COUNT(py, pony_peers_validated);
	f->peer_epoch = se;
	f->last_rx = k->now;
	pony_flow_touch(py, f, k->now);
}

static void reset_input(struct pony *py, struct pony_flow *f, struct rx_pkt *k)
{
	if (!f || k->h.dst_epoch != f->my_epoch) {
		PY_DROP(py, pony_stale_epoch);
		return;
	}
	pony_flow_fail(py, f, -ECONNRESET);
}

/* ---- reliable packets ---- */

static struct pony_msg_info msg_info(const struct pony_flow *f, const struct pony_msg *m)
{
	return (struct pony_msg_info){ .peer = f->peer, .src_svc = m->src_svc,
				       .dst_svc = m->dst_svc, .stream = m->stream_id,
				       .len = m->len };
}

static void deliver(struct pony *py, struct pony_flow *f, uint32_t mi)
{
	struct pony_msg m = py->msgs[mi];

	pony_msg_free(py, mi);
	if (m.flags & MF_DROP)
		return;
	struct pony_msg_info info = msg_info(f, &m);

	f->msgs_delivered++;
	PY_COUNT(py, pony_msgs_delivered);
	py->io.rx_deliver(py->io.ctx, &info, m.cookie);
}

/* Message mi is whole: deliver it and every successor it was holding back. */
static void stream_complete(struct pony *py, struct pony_flow *f, struct pony_stream *s, uint32_t mi)
{
	struct pony_msg *m = &py->msgs[mi];

	m->flags |= MF_COMPLETE;
	if (m->seq != s->seq) {
		m->next = s->wait;
		s->wait = mi;
		return;
	}
	for (;;) {
		uint32_t *pp;

		s->seq++;
		deliver(py, f, mi);
		for (pp = &s->wait; *pp != PONY_NONE; pp = &py->msgs[*pp].next)
			if (py->msgs[*pp].seq == s->seq)
				break;
		if (*pp == PONY_NONE)
			return;
		mi = *pp;
		*pp = py->msgs[mi].next;
	}
}

/* May the peer make us hold one more message (or rx stream entry, n =
 * the flow's count of those)? Not past its peer_share, and never into
 * the local reserve: our own sends and READs always find room
 * (docs/pony.md, "What a peer can do"). in_use: the pool's entries taken. */
static enum verdict peer_room(struct pony *py, uint32_t n, uint32_t in_use)
{
	if (n >= py->conf.peer_share) {
		PY_DROP(py, pony_peer_over_share);
		return V_OVER;
	}
	if (in_use + py->conf.local_reserve >= py->conf.max_msgs) {
		PY_DROP(py, pony_pool_reserved);
		return V_BUSY;
	}
	return V_ACCEPT;
}

/* The rx stream the peer's message goes to, created within its share. */
static enum verdict rx_stream(struct pony *py, struct pony_flow *f, const struct pony_data_ext *d,
			      struct pony_stream **sp)
{
	enum verdict v;

	*sp = pony_stream_get(py, f, true, d->dst_svc, d->src_svc, d->stream, false);
	if (*sp)
		return V_ACCEPT;
	v = peer_room(py, f->n_rx_streams, py->n_streams);
	if (v != V_ACCEPT)
		return v;
	*sp = pony_stream_get(py, f, true, d->dst_svc, d->src_svc, d->stream, true);
	if (!*sp) {
		PY_DROP(py, pony_no_msg_room);
		return V_BUSY;
	}
	f->n_rx_streams++;
	return V_ACCEPT;
}

static bool seg_ok(struct pony *py, const struct rx_pkt *k)
{
	const struct pony_data_ext *d = &k->x.d;
	bool skip = k->h.flags & PONY_F_SKIP;

	return d->msg_len && d->msg_len <= py->conf.max_msg && d->seg_len &&
	       (uint64_t)d->off + d->seg_len <= d->msg_len &&
	       k->pay_len == (skip ? 0 : d->seg_len);
}

static enum verdict data_input(struct pony *py, struct pony_flow *f, struct rx_pkt *k)
{
	const struct pony_data_ext *d = &k->x.d;
	struct pony_msg *m = pony_msg_find(py, flow_idx(py, f), d->msg_id, true);
	struct pony_stream *s;
	uint32_t mi;

	if (!m) {
		enum verdict v = rx_stream(py, f, d, &s);

		if (v != V_ACCEPT)
			return v;
		/* a message number already delivered, or absurdly far ahead */
		if (seq_lt(d->seq, s->seq) || d->seq - s->seq >= py->conf.max_msgs) {
			PY_DROP(py, pony_bad_field);
			return V_DROP;
		}
		v = peer_room(py, f->n_peer, py->n_msgs);
		if (v != V_ACCEPT)
			return v;
		m = pony_msg_alloc(py, f, MSG_RX, d->msg_id, d->src_svc, d->dst_svc, d->msg_len);
		if (!m) {
			PY_DROP(py, pony_no_msg_room);
			return V_BUSY;
		}
		mi = (uint32_t)(m - py->msgs);
		m->stream_id = d->stream;
		m->stream = (uint32_t)(s - py->streams);
		m->seq = d->seq;
		if (k->h.flags & PONY_F_SKIP) {
			m->flags |= MF_DROP;
		} else {
			struct pony_msg_info info = msg_info(f, m);
			int rc = py->io.rx_begin(py->io.ctx, &info, &m->cookie);

			if (rc == -ENOBUFS) {
				pony_msg_free(py, mi);
				return V_BUSY;
			}
			if (rc < 0) {
				if (!pony_ctrl_queue(py, f, PONY_T_NAK, d->msg_id, ECONNREFUSED)) {
					pony_msg_free(py, mi);
					PY_DROP(py, pony_no_msg_room);
					return V_BUSY;
				}
				PY_COUNT(py, pony_msgs_refused);
				m->flags |= MF_DROP;
			} else {
				m->flags |= MF_BEGUN;
			}
		}
		f->rx_busy = RXB_NO;
	} else if (m->len != d->msg_len || m->stream_id != d->stream || m->seq != d->seq ||
		   m->src_svc != d->src_svc || m->dst_svc != d->dst_svc ||
		   (m->flags & MF_COMPLETE)) {
		PY_DROP(py, pony_bad_field);
		return V_DROP;
	}
	mi = (uint32_t)(m - py->msgs);
	f->rx_progress_at = k->now;
	if ((k->h.flags & PONY_F_SKIP) && !(m->flags & MF_DROP)) {
		/* the sender abandoned it (its app went away) */
		if ((m->flags & MF_BEGUN) && py->io.rx_abort)
			py->io.rx_abort(py->io.ctx, m->cookie);
		m->flags |= MF_DROP;
	}
	if (m->flags & MF_DROP) {
		if (!(m->flags & MF_BEGUN) && !(k->h.flags & PONY_F_SKIP))
			PY_DROP(py, pony_no_service);
	} else {
		py->io.rx_write(py->io.ctx, m->cookie, d->off, k->pay, d->seg_len);
	}
	m->done += d->seg_len;
	if (m->done >= m->len) {
		k->ack_now = true;
		stream_complete(py, f, &py->streams[m->stream], mi);
	}
	return V_ACCEPT;
}

static enum verdict read_req_input(struct pony *py, struct pony_flow *f, struct rx_pkt *k)
{
	const struct pony_read_ext *r = &k->x.r;
	const void *ptr = NULL;
	int err = -ENOENT;
	struct pony_msg *m;
	enum verdict v;

	k->ack_now = true;
	if (r->len > py->conf.max_msg)
		err = -EMSGSIZE;
	else if (py->io.region_lookup)
		ptr = py->io.region_lookup(py->io.ctx, r->dst_svc, r->key, r->off, r->len, &err);
	if (!ptr) {
		if (!pony_ctrl_queue(py, f, PONY_T_READ_ERR, r->req_id, (uint32_t)(err < 0 ? -err : EIO)))
			return V_BUSY;
		PY_DROP(py, pony_bad_read);
		return V_ACCEPT;
	}
	v = peer_room(py, f->n_peer, py->n_msgs);
	if (v != V_ACCEPT)
		return v;
	m = pony_msg_alloc(py, f, MSG_RESP, r->req_id, r->dst_svc, r->src_svc, r->len);
	if (!m) {
		PY_DROP(py, pony_no_msg_room);
		return V_BUSY;
	}
	m->key = r->key;
	m->roff = r->off;
	pony_stream_enqueue(py, f, pony_read_stream(py, f, true), (uint32_t)(m - py->msgs));
	f->rx_busy = RXB_NO;
	return V_ACCEPT;
}

/* Our READ mi got its answer (status 0) or failed. */
static void read_finish(struct pony *py, struct pony_flow *f, struct pony_msg *m, int status)
{
	uint16_t svc = m->src_svc;
	uint64_t cookie = m->cookie;

	m->flags |= MF_RESP_DONE | MF_NOTIFIED;
	f->n_reads--;
	if (status)
		PY_COUNT(py, pony_msgs_failed);
	else
		PY_COUNT(py, pony_reads_done);
	pony_tx_msg_check(py, (uint32_t)(m - py->msgs));
	if (py->io.read_done)
		py->io.read_done(py->io.ctx, svc, cookie, status);
}

static struct pony_msg *live_read(struct pony *py, struct pony_flow *f, uint32_t id)
{
	struct pony_msg *m = pony_msg_find(py, flow_idx(py, f), id, false);

	if (!m || m->kind != MSG_READ || (m->flags & MF_RESP_DONE)) {
		PY_DROP(py, pony_stale);
		return NULL;
	}
	return m;
}

static enum verdict read_resp_input(struct pony *py, struct pony_flow *f, struct rx_pkt *k)
{
	const struct pony_data_ext *d = &k->x.d;
	struct pony_msg *m = live_read(py, f, d->msg_id);

	if (!m)
		return V_ACCEPT; /* cancelled or already failed: swallow */
	if (d->msg_len != m->len || (k->h.flags & PONY_F_SKIP)) {
		PY_DROP(py, pony_bad_len);
		return V_DROP;
	}
	memcpy(m->dst + d->off, k->pay, d->seg_len);
	m->done += d->seg_len;
	if (m->done >= m->len) {
		k->ack_now = true;
		read_finish(py, f, m, 0);
	}
	return V_ACCEPT;
}

static enum verdict err_input(struct pony *py, struct pony_flow *f, struct rx_pkt *k)
{
	int err = -(int)k->x.e.err;
	struct pony_msg *m;

	k->ack_now = true;
	if (k->h.type == PONY_T_READ_ERR) {
		m = live_read(py, f, k->x.e.id);
		if (m)
			read_finish(py, f, m, err);
		return V_ACCEPT;
	}
	m = pony_msg_find(py, flow_idx(py, f), k->x.e.id, false);
	if (!m || m->kind != MSG_SEND || (m->flags & MF_NOTIFIED)) {
		PY_DROP(py, pony_stale);
		return V_ACCEPT;
	}
	/* Refused: tell the app now; the rest of the message goes out without
	 * payload so the receiver's stream order moves past it. */
	m->status = err;
	m->flags |= MF_SKIP | MF_NOTIFIED;
	PY_COUNT(py, pony_msgs_failed);
	if (py->io.tx_done)
		py->io.tx_done(py->io.ctx, m->src_svc, m->cookie, err);
	return V_ACCEPT;
}

/* Field checks that need no flow: a packet failing them never creates one. */
static bool reliable_valid(struct pony *py, const struct rx_pkt *k)
{
	switch (k->h.type) {
	case PONY_T_DATA:
		if (k->x.d.stream >= py->conf.max_streams) {
			PY_DROP(py, pony_bad_field);
			return false;
		}
		/* fall through */
	case PONY_T_READ_RESP:
		if (!seg_ok(py, k)) {
			PY_DROP(py, pony_bad_len);
			return false;
		}
		return true;
	case PONY_T_READ_REQ:
		if (!k->x.r.len || k->pay_len) {
			PY_DROP(py, pony_bad_read);
			return false;
		}
		return true;
	case PONY_T_NAK:
	case PONY_T_READ_ERR:
		if (!k->x.e.err || k->x.e.err > 4095 || k->pay_len) {
			PY_DROP(py, pony_bad_field);
			return false;
		}
		return true;
	}
	return false;
}

static void rx_mark(struct pony *py, struct pony_flow *f, uint32_t psn)
{
	f->rcv_map[(psn & py->win_mask) / 64] |= 1ull << (psn & 63);
	if (seq_le(f->rcv_max, psn))
		f->rcv_max = psn + 1;
	while (f->rcv_map[(f->rcv_nxt & py->win_mask) / 64] >> (f->rcv_nxt & 63) & 1) {
		f->rcv_map[(f->rcv_nxt & py->win_mask) / 64] &= ~(1ull << (f->rcv_nxt & 63));
		f->rcv_nxt++;
	}
}

/* Which flow a reliable packet belongs to (docs/pony.md, "Flow lifecycle"
 * and "Address validation"). Ours when it carries the peer's epoch we
 * know, or our epoch (the peer heard from us: it is at that address).
 * A packet addressed to an incarnation of ours that is gone gets a RESET.
 * Anything else is a peer (or a spoofer) starting a conversation: it gets
 * a CHALLENGE and creates no state, and no flow is touched; its RESPONSE
 * creates or replaces the flow (response_input()). */
static struct pony_flow *reliable_flow(struct pony *py, struct pony_flow *f, struct rx_pkt *k)
{
	uint32_t se = k->h.src_epoch, de = k->h.dst_epoch;

	if (!se) {
		PY_DROP(py, pony_bad_field);
		return NULL;
	}
	if (f && se == f->peer_epoch) {
		if (de && de != f->my_epoch) {
			PY_DROP(py, pony_stale_epoch);
			pony_send_reset(py, k->src, se, k->now);
			return NULL;
		}
		return f;
	}
	if (de) {
		if (f && de == f->my_epoch && !f->peer_epoch) {
			f->peer_epoch = se; /* our flow's first word from the peer */
			return f;
		}
		if (f && de == f->my_epoch) {
			PY_DROP(py, pony_stale_epoch); /* knows us, claims another epoch */
			return NULL;
		}
		PY_DROP(py, pony_no_flow);
		pony_send_reset(py, k->src, se, k->now);
		return NULL;
	}
	PY_DROP(py, pony_unvalidated);
	pony_send_token(py, PONY_T_CHALLENGE, k->src, 0, se, pony_token(py, k->src, se, k->now),
			k->h.ts_ns, k->now);
	return NULL;
}

static void reliable_content(struct pony *py, struct pony_flow *f, struct rx_pkt *k);

static void reliable_input(struct pony *py, struct pony_flow *f, struct rx_pkt *k)
{
	if (!reliable_valid(py, k))
		return;
	f = reliable_flow(py, f, k);
	if (!f)
		return;
	pony_flow_touch(py, f, k->now);
	f->last_rx = k->now;
	if (k->piggy)
		trailer_input(py, f, k);
	reliable_content(py, f, k);
	/* Whatever became of the content, the trailer may have opened the
	 * window: with nothing left in flight no ACK and no timer would. */
	pony_done_drain(py);
	pony_push(py, f, k->now);
}

/* The packet's own content, once its flow and trailer are handled. */
static void reliable_content(struct pony *py, struct pony_flow *f, struct rx_pkt *k)
{
	uint32_t psn = k->h.psn;
	enum verdict v = V_DROP;

	if (seq_lt(psn, f->rcv_nxt) ||
	    (seq_lt(psn, f->rcv_nxt + py->win) &&
	     (f->rcv_map[(psn & py->win_mask) / 64] >> (psn & 63) & 1))) {
		/* ours already: the ACK was lost or the retransmission spurious */
		PY_DROP(py, pony_dup);
		f->echo_ts = k->h.ts_ns;
		f->echo_at = k->now;
		pony_send_ack(py, f, k->now);
		return;
	}
	if (!seq_lt(psn, f->rcv_nxt + py->win)) {
		PY_DROP(py, pony_out_of_window);
		return;
	}
	switch (k->h.type) {
	case PONY_T_DATA:
		v = data_input(py, f, k);
		break;
	case PONY_T_READ_REQ:
		v = read_req_input(py, f, k);
		break;
	case PONY_T_READ_RESP:
		v = read_resp_input(py, f, k);
		break;
	case PONY_T_NAK:
	case PONY_T_READ_ERR:
		v = err_input(py, f, k);
		break;
	}
	/* a callback may have failed the flow (pony_cancel_svc cannot, sends cannot) */
	switch (v) {
	case V_DROP:
		return;
	case V_BUSY:
	case V_OVER:
		PY_COUNT(py, pony_rx_busy);
		f->rx_busy = v == V_OVER ? RXB_SHARE : RXB_LOCAL;
		pony_send_ack(py, f, k->now);
		return;
	case V_ACCEPT:
		break;
	}
	rx_mark(py, f, psn);
	PY_COUNT(py, pony_rx_pkts);
	MST_COUNT_N(py->st, pony_rx_bytes, k->pay_len);
	f->rx_pkts++;
	f->rx_bytes += k->pay_len;
	f->echo_ts = k->h.ts_ns;
	f->echo_at = k->now;
	/* ACK at once when there is a hole to report or PONY_ACK_EVERY packets
	 * are owed one. A message that completes (the sender asks, ACK_NOW) owes
	 * its ACK for up to PONY_ACK_HOLD_NS: the reply that an RPC's server
	 * sends carries it (ack_trailer()), so the requester's completion
	 * arrives with the response and never waits on the hold; unanswered
	 * messages get a PONY_T_ACK from pony_poll() at the deadline, or at
	 * the end of this poll once PONY_ACK_HOLD_PKTS are owed. Anything else
	 * is acknowledged at the end of this poll: one ACK per burst. */
	++f->rx_unacked;
	if (f->rcv_max != f->rcv_nxt)
		pony_send_ack(py, f, k->now);
	else if (k->ack_now || (k->h.flags & PONY_F_ACK_NOW))
		pony_mark_ack(py, f, f->rx_unacked >= PONY_ACK_HOLD_PKTS ? k->now
									  : k->now + PONY_ACK_HOLD_NS);
	else if (f->rx_unacked >= PONY_ACK_EVERY)
		pony_send_ack(py, f, k->now);
	else
		pony_mark_ack(py, f, k->now);
}

static bool parse(struct pony *py, const struct mst_pkt *p, struct rx_pkt *k)
{
	const uint8_t *d = p->data;
	uint32_t hl;

	if (p->len < sizeof(struct pony_hdr)) {
		PY_DROP(py, pony_truncated);
		return false;
	}
	memcpy(&k->h, d, sizeof(k->h));
	if (k->h.ver != PONY_VERSION) {
		PY_DROP(py, pony_bad_version);
		return false;
	}
	if (k->h.type == 0 || k->h.type >= PONY_T__MAX) {
		PY_DROP(py, pony_bad_type);
		return false;
	}
	hl = sizeof(struct pony_hdr) + ext_len[k->h.type];
	if (p->len < hl) {
		PY_DROP(py, pony_truncated);
		return false;
	}
	k->h.flags = ntohs(k->h.flags);
	k->h.src_epoch = ntohl(k->h.src_epoch);
	k->h.dst_epoch = ntohl(k->h.dst_epoch);
	k->h.psn = ntohl(k->h.psn);
	k->h.ts_ns = be64toh(k->h.ts_ns);
	memcpy(&k->x, d + sizeof(struct pony_hdr), ext_len[k->h.type]);
	k->pay = d + hl;
	k->pay_len = p->len - hl;
	k->piggy = k->h.flags & PONY_F_PIGGY;
	if (k->piggy) {
		if (k->h.type == PONY_T_ACK || k->h.type == PONY_T_RESET ||
		    k->h.type == PONY_T_CHALLENGE || k->h.type == PONY_T_RESPONSE) {
			PY_DROP(py, pony_bad_field);
			return false;
		}
		if (k->pay_len < sizeof(k->t)) {
			PY_DROP(py, pony_truncated);
			return false;
		}
		k->pay_len -= sizeof(k->t);
		memcpy(&k->t, k->pay + k->pay_len, sizeof(k->t));
		k->t.cum = ntohl(k->t.cum);
		k->t.credits = ntohl(k->t.credits);
		k->t.ts_echo = be64toh(k->t.ts_echo);
		k->t.ack_delay_ns = ntohl(k->t.ack_delay_ns);
	}
	switch (k->h.type) {
	case PONY_T_DATA:
	case PONY_T_READ_RESP:
		k->x.d.msg_id = ntohl(k->x.d.msg_id);
		k->x.d.stream = ntohl(k->x.d.stream);
		k->x.d.seq = ntohl(k->x.d.seq);
		k->x.d.msg_len = ntohl(k->x.d.msg_len);
		k->x.d.off = ntohl(k->x.d.off);
		k->x.d.src_svc = ntohs(k->x.d.src_svc);
		k->x.d.dst_svc = ntohs(k->x.d.dst_svc);
		k->x.d.seg_len = ntohs(k->x.d.seg_len);
		break;
	case PONY_T_READ_REQ:
		k->x.r.req_id = ntohl(k->x.r.req_id);
		k->x.r.key = be64toh(k->x.r.key);
		k->x.r.off = be64toh(k->x.r.off);
		k->x.r.len = ntohl(k->x.r.len);
		k->x.r.src_svc = ntohs(k->x.r.src_svc);
		k->x.r.dst_svc = ntohs(k->x.r.dst_svc);
		break;
	case PONY_T_NAK:
	case PONY_T_READ_ERR:
		k->x.e.id = ntohl(k->x.e.id);
		k->x.e.err = ntohl(k->x.e.err);
		break;
	case PONY_T_CHALLENGE:
	case PONY_T_RESPONSE:
		k->x.t.token = be64toh(k->x.t.token);
		k->x.t.ts_echo = be64toh(k->x.t.ts_echo);
		if (k->pay_len) {
			PY_DROP(py, pony_bad_len);
			return false;
		}
		break;
	case PONY_T_ACK:
		k->x.a.cum = ntohl(k->x.a.cum);
		k->x.a.credits = ntohl(k->x.a.credits);
		k->x.a.ts_echo = be64toh(k->x.a.ts_echo);
		k->x.a.ack_delay_ns = ntohl(k->x.a.ack_delay_ns);
		if (k->pay_len) {
			PY_DROP(py, pony_bad_len);
			return false;
		}
		break;
	}
	return true;
}

void pony_input(struct pony *py, struct mst_pkt *p, uint32_t src, uint64_t now_ns)
{
	struct rx_pkt k;
	struct pony_flow *f;

	k.src = src;
	k.now = now_ns;
	k.ack_now = false;
	if (parse(py, p, &k)) {
		f = pony_flow_get(py, src, now_ns, false);
		switch (k.h.type) {
		case PONY_T_ACK:
			ack_input(py, f, &k);
			break;
		case PONY_T_RESET:
			reset_input(py, f, &k);
			break;
		case PONY_T_CHALLENGE:
			challenge_input(py, f, &k);
			break;
		case PONY_T_RESPONSE:
			response_input(py, f, &k);
			break;
		default:
			reliable_input(py, f, &k);
			break;
		}
	}
	py->io.free(py->io.ctx, p);
}
