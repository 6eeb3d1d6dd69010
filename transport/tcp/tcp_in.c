/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * TCP input: segment arrival, RFC 9293 §3.10.7.
 *
 * tcp_input(): header, checksum, options -> lookup
 *   -> no connection: listen_input() (SYN, cookie ACK) or RST (§3.10.7.1)
 *   -> SYN_SENT: syn_sent_input() (§3.10.7.3)
 *   -> otherwise sync_input(), in the RFC's order:
 *        0. PAWS (RFC 7323 §5)
 *        1. sequence number acceptable? trim to the window
 *        2. RST (RFC 5961 §3: exact match resets, in-window challenges)
 *        4. SYN (RFC 5961 §4: challenge ACK; TIME_WAIT reuse, RFC 6191)
 *        5. ACK: handshake completion, RFC 5961 §5 range check, snd_una
 *           advance, RTT, SACK scoreboard, loss detection and recovery
 *           (RFC 5681/6582/6675), window update, FIN acknowledged
 *        7. data: in order into the RX FIFO, out of order into the FIFO
 *           at its offset plus a SACK range
 *        8. FIN
 *      then output (data, or an ACK now, or the delayed ACK).
 * Every drop counts one named reason.
 */
#include <errno.h>
#include <string.h>
#include <arpa/inet.h>

#include "transport/tcp/tcp_priv.h"

struct tcp_seg {
	uint32_t seq, ack;
	uint32_t len;          /* payload bytes */
	uint32_t wnd;          /* raw window field */
	uint8_t flags;
	const uint8_t *data;
	struct tcp_opts opts;
	uint32_t src, dst;     /* network order */
	uint16_t sport, dport; /* network order */
};

#define DROP(ts, p, reason)                                    \
	do {                                                   \
		MST_DROP((ts)->st, reason);                    \
		net_free((ts)->ns, (p));                       \
	} while (0)

static void challenge_ack(struct tcp_stack *ts, struct tcp_cb *c)
{
	if (ts->now_ns - c->challenge_refill_ns >= 1000000000ull) {
		c->challenge_refill_ns = ts->now_ns;
		c->challenge_tokens = (uint8_t)(ts->conf.challenge_ack_per_s > 255 ? 255 : ts->conf.challenge_ack_per_s);
	}
	if (!c->challenge_tokens) {
		MST_DROP(ts->st, tcp_challenge_limited);
		return;
	}
	c->challenge_tokens--;
	MST_COUNT(ts->st, tcp_challenge_acks);
	tcp_send_ack(ts, c);
}

/* Negotiate options from the peer's SYN into c. */
static void syn_options(struct tcp_stack *ts, struct tcp_cb *c, const struct tcp_seg *s)
{
	uint16_t mtu_mss = (uint16_t)(net_mtu(ts->ns) - 40);

	c->mss = s->opts.has_mss ? s->opts.mss : TCP_MSS_DEFAULT;
	if (c->mss > mtu_mss)
		c->mss = mtu_mss;
	if (c->mss > c->adv_mss)
		c->mss = c->adv_mss;
	if (s->opts.has_wscale && ts->conf.wscale) {
		c->flags |= TCPF_WS;
		c->snd_wscale = s->opts.wscale;
	} else {
		c->snd_wscale = 0;
		c->rcv_wscale = 0;
	}
	if (s->opts.sack_ok && ts->conf.sack)
		c->flags |= TCPF_SACK;
	if (s->opts.has_ts && ts->conf.timestamps) {
		c->flags |= TCPF_TS;
		c->ts_recent = s->opts.ts_val;
		c->ts_recent_ns = ts->now_ns;
		/* c->mss is payload per segment: every segment carries the
		 * 12-byte timestamp option (as Linux: 1460 -> 1448). */
		c->mss = (uint16_t)(c->mss - 12);
	}
}

static void established(struct tcp_stack *ts, struct tcp_cb *c, const struct tcp_seg *s)
{
	/* The app may have shut down writing during the handshake. */
	tcp_set_state(ts, c, TCP_ESTABLISHED);
	if (c->flags & TCPF_SHUT_WR)
		tcp_set_state(ts, c, TCP_FIN_WAIT_1);
	c->snd_wnd = s->wnd << c->snd_wscale;
	c->max_sndwnd = c->snd_wnd;
	c->snd_wl1 = s->seq;
	c->snd_wl2 = s->ack;
	c->rtx_shift = 0;
	c->recover = c->snd_una;
	c->high_rxt = c->snd_una;
	tw_cancel(ts->wheel, &c->t_rtx);
	tcp_init_cc(ts, c);
	c->last_rx_ns = ts->now_ns;
	tcp_arm_keepalive(ts, c);
}

/* ---- LISTEN (§3.10.7.2) -------------------------------------------- */

static struct tcp_cb *listen_input(struct tcp_stack *ts, struct tcp_cb *l, struct tcp_seg *s,
				   struct mst_pkt *p)
{
	struct tcp_listener_ext *lx = tcp_lext(ts, l);
	struct tcp_cb *c;

	if (s->flags & TCP_RST) {
		DROP(ts, p, tcp_listen_bad);
		return NULL;
	}
	if (s->flags & TCP_ACK) {
		struct tcp_cookie_opts co;

		/* Only a valid SYN cookie makes a connection out of a bare ACK. */
		if (!(s->flags & TCP_SYN) && ts->conf.syncookies &&
		    tcp_cookie_check(&ts->secret, s->dst, s->dport, s->src, s->sport, s->seq - 1,
				     s->ack - 1, ts->now_ns, &co)) {
			if (lx->accept_len >= lx->backlog) {
				DROP(ts, p, tcp_listen_overflow);
				return NULL;
			}
			c = tcp_cb_new(ts, s->dst, s->dport, s->src, s->sport, ts->conf.rx_buf,
				       ts->conf.tx_buf, l->fops);
			if (!c) {
				DROP(ts, p, tcp_no_tcb);
				return NULL;
			}
			c->flags |= TCPF_PASSIVE;
			c->listener = l;
			tcp_inherit_bufs(c, l);
			c->iss = s->ack - 1;
			c->irs = s->seq - 1;
			c->rcv_nxt = s->seq;
			c->rcv_adv = s->seq;
			c->snd_una = c->snd_nxt = c->snd_max = s->ack;
			c->mss = co.mss;
			if (co.has_wscale && ts->conf.wscale) {
				c->flags |= TCPF_WS;
				c->snd_wscale = co.wscale;
			} else {
				c->rcv_wscale = 0;
			}
			if (co.sack_ok && ts->conf.sack)
				c->flags |= TCPF_SACK;
			MST_COUNT(ts->st, tcp_syncookies_ok);
			MST_COUNT(ts->st, tcp_passive_opens);
			established(ts, c, s);
			lx->syn_queue++; /* tcp_accept_enqueue() takes it back */
			tcp_accept_enqueue(ts, c);
			return c; /* the ACK may carry data: continue as synchronized */
		}
		if (ts->conf.syncookies && !(s->flags & TCP_SYN))
			MST_DROP(ts->st, tcp_bad_cookie);
		else
			MST_DROP(ts->st, tcp_listen_bad);
		tcp_reply_reset(ts, s->dst, s->dport, s->src, s->sport, s->seq, s->ack, s->flags, s->len);
		net_free(ts->ns, p);
		return NULL;
	}
	if (!(s->flags & TCP_SYN)) {
		DROP(ts, p, tcp_listen_bad);
		return NULL;
	}
	if (lx->accept_len >= lx->backlog) {
		DROP(ts, p, tcp_listen_overflow);
		return NULL;
	}
	c = NULL;
	if (lx->syn_queue < lx->backlog)
		c = tcp_cb_new(ts, s->dst, s->dport, s->src, s->sport, ts->conf.rx_buf, ts->conf.tx_buf,
			       l->fops);
	if (!c) {
		/* SYN queue full (or no memory): answer statelessly. */
		if (ts->conf.syncookies) {
			struct tcp_cookie_opts co = {
				.mss = s->opts.has_mss ? s->opts.mss : TCP_MSS_DEFAULT,
				.sack_ok = s->opts.sack_ok && ts->conf.sack,
				.has_wscale = s->opts.has_wscale && ts->conf.wscale,
				.wscale = s->opts.wscale,
			};
			uint16_t mtu_mss = (uint16_t)(net_mtu(ts->ns) - 40);
			uint32_t isn;
			uint8_t ws = co.has_wscale ? tcp_pick_wscale(ts->conf.rx_buf > ts->conf.rx_buf_max
								? ts->conf.rx_buf : ts->conf.rx_buf_max) : 0;

			if (co.mss > mtu_mss)
				co.mss = mtu_mss;
			isn = tcp_cookie_make(&ts->secret, s->dst, s->dport, s->src, s->sport, s->seq,
					      &co, ts->now_ns);
			tcp_send_cookie_synack(ts, s->dst, s->dport, s->src, s->sport, isn, s->seq,
					       &s->opts, mtu_mss, ws, ts->conf.rx_buf >> ws);
			net_free(ts->ns, p);
		} else {
			DROP(ts, p, tcp_no_tcb);
		}
		return NULL;
	}
	c->flags |= TCPF_PASSIVE;
	c->listener = l;
	if (ts->flow_fn)
		c->fl.segs_in = 1; /* the SYN */
	tcp_inherit_bufs(c, l);
	c->irs = s->seq;
	c->rcv_nxt = s->seq + 1;
	syn_options(ts, c, s);
	c->iss = tcp_isn(&ts->secret, s->dst, s->dport, s->src, s->sport, ts->now_ns);
	c->snd_una = c->snd_nxt = c->snd_max = c->iss;
	c->snd_wnd = s->wnd; /* never scaled in a SYN */
	tcp_set_state(ts, c, TCP_SYN_RECEIVED);
	lx->syn_queue++;
	MST_COUNT(ts->st, tcp_passive_opens);
	tcp_send_syn(ts, c); /* SYN-ACK; data on the SYN is not queued: the peer resends it */
	net_free(ts->ns, p);
	return NULL;
}

/* ---- SYN_SENT (§3.10.7.3) -------------------------------------------- */

static void syn_sent_input(struct tcp_stack *ts, struct tcp_cb *c, struct tcp_seg *s,
			   struct mst_pkt *p)
{
	bool ack_ok = false;

	if (s->flags & TCP_ACK) {
		if (SEQ_LEQ(s->ack, c->iss) || SEQ_GT(s->ack, c->snd_max)) {
			if (!(s->flags & TCP_RST))
				tcp_reply_reset(ts, s->dst, s->dport, s->src, s->sport, s->seq, s->ack,
						s->flags, s->len);
			DROP(ts, p, tcp_syn_sent_bad);
			return;
		}
		ack_ok = true;
	}
	if (s->flags & TCP_RST) {
		if (ack_ok) {
			MST_COUNT(ts->st, tcp_resets_rx);
			net_free(ts->ns, p);
			tcp_drop(ts, c, ECONNREFUSED);
			return;
		}
		DROP(ts, p, tcp_syn_sent_bad);
		return;
	}
	if (!(s->flags & TCP_SYN)) {
		DROP(ts, p, tcp_syn_sent_bad);
		return;
	}
	c->irs = s->seq;
	c->rcv_nxt = s->seq + 1;
	syn_options(ts, c, s);
	if (ack_ok) {
		c->snd_una = s->ack;
		if (c->syn_retries == 0) /* Karn: only an unretransmitted SYN times */
			tcp_rtt_sample(ts, c, (uint32_t)((ts->now_ns - c->last_rx_ns) / 1000));
		established(ts, c, s);
		tcp_event(ts, c, TCP_EV_CONNECTED | TCP_EV_WRITABLE);
		tcp_send_ack(ts, c);
		tcp_output(ts, c);
	} else {
		/* Simultaneous open: SYN-ACK with our original ISS. */
		tcp_set_state(ts, c, TCP_SYN_RECEIVED);
		c->snd_wnd = s->wnd;
		tcp_send_syn(ts, c);
	}
	net_free(ts->ns, p);
}

/* ---- ACK processing (§3.10.7.4 fifth) --------------------------------- */

static void enter_recovery(struct tcp_stack *ts, struct tcp_cb *c)
{
	int used;

	c->flags |= TCPF_IN_RECOVERY;
	if (ts->flow_fn)
		c->fl.recoveries++;
	c->recover = c->snd_max;
	c->ccs.flight = tcp_flight(c);
	c->ccs.now_ns = ts->now_ns;
	c->cc->congestion_event(&c->ccs);
	MST_COUNT(ts->st, tcp_fast_retransmits);
	c->recover_fs = tcp_flight(c); /* RFC 6937: RecoverFS = snd.nxt - snd.una */
	c->prr_delivered = 0;
	c->prr_out = 0;
	/* RFC 6675 §5 (4.3): the first unacknowledged segment goes at once. */
	used = tcp_retransmit(ts, c, c->snd_una, c->mss);
	c->high_rxt = c->snd_una + (uint32_t)(used > 0 ? used : 0);
	tcp_arm_rtx(ts, c);
}

/* RFC 6675 §5 NextSeg rules 1 and 3 (rule 2, new data, is tcp_output's):
 * retransmit lost holes, then — when there is no new data to send —
 * holes not yet deemed lost, while the pipe is below cwnd. */
static void sack_recovery_send(struct tcp_stack *ts, struct tcp_cb *c)
{
	uint32_t hs, he;

	for (int rule = 1; rule <= 3; rule += 2) {
		if (rule == 3 && SEQ_LT(c->snd_max, c->snd_una + fifo_used(&c->tx)))
			return; /* new data first (rule 2) */
		while (tcp_pipe(c) + c->mss <= c->ccs.cwnd &&
		       tcp_score_next_seg(c, SEQ_MAX(c->high_rxt, c->snd_una), rule == 1, &hs, &he)) {
			int used = tcp_retransmit(ts, c, hs, he - hs);

			if (used <= 0)
				return;
			c->high_rxt = hs + (uint32_t)used;
		}
	}
}

/* RFC 6937 PRR on an ACK in SACK recovery: how much may go out now, as a
 * cwnd of pipe + sndcnt that the senders above and tcp_output() use up. */
static void prr_ack(struct tcp_cb *c, uint32_t delivered)
{
	uint32_t pipe = tcp_pipe(c), ss = c->ccs.ssthresh, sndcnt;

	if (!c->recover_fs)
		c->recover_fs = tcp_flight(c) ? tcp_flight(c) : 1; /* imported mid-recovery */
	c->prr_delivered += delivered;
	if (pipe > ss) {
		uint64_t due = ((uint64_t)c->prr_delivered * ss + c->recover_fs - 1) / c->recover_fs;

		sndcnt = due > c->prr_out ? (uint32_t)(due - c->prr_out) : 0;
	} else {
		/* PRR-SSRB: catch up to ssthresh at most one MSS faster than
		 * the peer delivers. */
		uint32_t owed = c->prr_delivered > c->prr_out ? c->prr_delivered - c->prr_out : 0;
		uint32_t limit = (owed > delivered ? owed : delivered) + c->mss;

		sndcnt = ss - pipe < limit ? ss - pipe : limit;
	}
	c->ccs.cwnd = pipe + sndcnt;
}

/* RFC 6937 DeliveredData: what this ACK told us reached the peer. */
static uint32_t delivered_data(const struct tcp_cb *c, uint32_t old_una, uint32_t old_sacked)
{
	int64_t d = (int64_t)(c->snd_una - old_una) + (int64_t)tcp_score_sacked(c) - old_sacked;

	return d > 0 ? (uint32_t)d : 0;
}

/* Is the segment at snd_una lost? RFC 6675 IsLost(): DupThresh segments'
 * worth of data SACKed above it. */
static bool sack_says_lost(const struct tcp_cb *c)
{
	return (c->flags & TCPF_SACK) && c->n_score && tcp_score_hole_lost(c, 0);
}

/* RFC 3708 / RFC 6675 §1: a D-SACK for data we retransmitted means the
 * original was only late. Raise DupThresh to how far the receiver had got
 * beyond it (in segments), so reordering that deep stops triggering fast
 * retransmits; real losses are still found, a little later. */
static void dsack_reordering(struct tcp_stack *ts, struct tcp_cb *c, uint32_t start)
{
	uint32_t high = tcp_score_high(c), dist;

	if (!SEQ_LT(start, c->high_rxt) || !SEQ_GT(high, start) || !c->mss)
		return; /* not something we retransmitted, or no distance */
	MST_COUNT(ts->st, tcp_dsack_spurious);
	dist = (high - start) / c->mss + 1;
	if (dist > TCP_REORDER_MAX)
		dist = TCP_REORDER_MAX;
	if (dist > tcp_dupthresh(c))
		c->reordering = (uint8_t)dist;
}

enum ack_verdict {
	ACK_OK,      /* go on with the segment's data and FIN */
	ACK_DROP,    /* the segment is dropped (an ACK may have been sent) */
	ACK_FREED,   /* the connection is gone (LAST_ACK completed) */
};

static enum ack_verdict ack_input(struct tcp_stack *ts, struct tcp_cb *c, const struct tcp_seg *s)
{
	uint32_t old_wnd = c->snd_wnd;
	uint32_t old_una = c->snd_una, old_sacked = tcp_score_sacked(c);
	bool fin_acked = false;

	if ((c->flags & TCPF_SACK) && c->retransmits && tcp_sack_is_dsack(s->opts.sack, s->opts.n_sack, s->ack))
		dsack_reordering(ts, c, s->opts.sack[0].start);

	if (SEQ_GT(s->ack, c->snd_max)) {
		/* RFC 9293 §3.10.7.4: ACK for data never sent: ACK, drop, return. */
		MST_DROP(ts->st, tcp_ack_too_new);
		tcp_send_ack(ts, c);
		return ACK_DROP;
	}
	if (SEQ_GT(s->ack, c->snd_una)) {
		uint32_t acked = s->ack - c->snd_una;
		uint32_t in_fifo = fifo_used(&c->tx);
		uint32_t data_acked = acked < in_fifo ? acked : in_fifo;

		c->tx.head += data_acked;
		fin_acked = (c->flags & TCPF_FIN_SENT) && acked > data_acked;
		c->snd_una = s->ack;
		if (SEQ_LT(c->snd_nxt, c->snd_una))
			c->snd_nxt = c->snd_una;
		c->bytes_acked += data_acked;
		/* RTT: a timed segment (Karn), else the echoed timestamp. */
		if ((c->flags & TCPF_RTT_TIMING) && SEQ_GT(s->ack, c->rtt_seq)) {
			c->flags &= ~TCPF_RTT_TIMING;
			tcp_rtt_sample(ts, c, (uint32_t)((ts->now_ns - c->rtt_start_ns) / 1000));
		} else if ((c->flags & TCPF_TS) && s->opts.has_ts && s->opts.ts_ecr && c->rtx_shift == 0) {
			uint32_t ms = tcp_ts_now(ts, c) - s->opts.ts_ecr;

			if (ms < 60000)
				tcp_rtt_sample(ts, c, ms * 1000 + 500);
		}
		c->rtx_shift = 0;
		c->dupacks = 0;
		tcp_score_ack(c);
		if ((c->flags & TCPF_SACK) && s->opts.n_sack)
			tcp_score_update(c, s->opts.sack, s->opts.n_sack);
		c->ccs.flight = tcp_flight(c);
		c->ccs.now_ns = ts->now_ns;
		if (c->flags & TCPF_IN_RECOVERY) {
			if (SEQ_GEQ(s->ack, c->recover)) {
				c->flags &= ~TCPF_IN_RECOVERY;
				c->cc->recovery_exit(&c->ccs);
			} else if (c->flags & TCPF_SACK) {
				prr_ack(c, delivered_data(c, old_una, old_sacked));
				sack_recovery_send(ts, c);
			} else {
				/* NewReno partial ACK (RFC 6582 §3.2 step 4). */
				(void)tcp_retransmit(ts, c, c->snd_una, c->mss);
			}
		} else {
			c->cc->ack_received(&c->ccs, acked);
		}
		if (c->snd_una == c->snd_max) {
			if (!(c->flags & TCPF_PERSIST))
				tw_cancel(ts->wheel, &c->t_rtx);
		} else if (!(c->flags & TCPF_PERSIST)) {
			tcp_arm_rtx(ts, c);
		}
		if (data_acked)
			tcp_event(ts, c, TCP_EV_WRITABLE);
	} else if (SEQ_LT(s->ack, c->snd_una - c->max_sndwnd) && c->max_sndwnd) {
		MST_DROP(ts->st, tcp_ack_too_old); /* RFC 5961 §5.2: discard, ACK */
		challenge_ack(ts, c);
		return ACK_DROP;
	} else if (s->ack == c->snd_una) {
		if ((c->flags & TCPF_SACK) && s->opts.n_sack) {
			MST_COUNT_N(ts->st, tcp_sack_blocks_rx, s->opts.n_sack);
			tcp_score_update(c, s->opts.sack, s->opts.n_sack);
		}
		/* RFC 5681 §2 duplicate ACK: no data, no SYN/FIN, same window,
		 * something outstanding. */
		if (s->len == 0 && !(s->flags & (TCP_SYN | TCP_FIN)) && c->snd_una != c->snd_max &&
		    (s->wnd << c->snd_wscale) == old_wnd) {
			if (c->dupacks < 255)
				c->dupacks++;
			MST_COUNT(ts->st, tcp_dup_acks);
			if (c->flags & TCPF_IN_RECOVERY) {
				if (c->flags & TCPF_SACK) {
					prr_ack(c, delivered_data(c, old_una, old_sacked));
					sack_recovery_send(ts, c);
				} else {
					c->ccs.cwnd += c->mss; /* RFC 6582 §3.2 step 3 */
				}
			}
		}
	}
	/* Loss detection: 3 duplicate ACKs or SACK evidence, once per window
	 * (RFC 6582 §3.2 step 2: only beyond `recover`). */
	if (!(c->flags & TCPF_IN_RECOVERY) && c->snd_una != c->snd_max &&
	    (c->dupacks >= tcp_dupthresh(c) || sack_says_lost(c)) &&
	    (SEQ_GT(c->snd_una, c->recover) || c->recover == c->snd_una)) {
		enter_recovery(ts, c);
		if (c->flags & TCPF_SACK) {
			prr_ack(c, delivered_data(c, old_una, old_sacked));
			sack_recovery_send(ts, c);
		}
	}

	/* Window update (§3.10.7.4: SND.WL1/WL2 guard against old segments). */
	if (SEQ_LT(c->snd_wl1, s->seq) || (c->snd_wl1 == s->seq && SEQ_LEQ(c->snd_wl2, s->ack))) {
		c->snd_wnd = s->wnd << c->snd_wscale;
		c->snd_wl1 = s->seq;
		c->snd_wl2 = s->ack;
		if (c->snd_wnd > c->max_sndwnd)
			c->max_sndwnd = c->snd_wnd;
		if (old_wnd == 0 && c->snd_wnd && (c->flags & TCPF_PERSIST)) {
			tw_cancel(ts->wheel, &c->t_rtx);
			c->flags &= ~TCPF_PERSIST;
			c->rtx_shift = 0;
		}
	}

	if (!fin_acked)
		return ACK_OK;
	switch ((enum tcp_state)c->state) {
	case TCP_FIN_WAIT_1:
		tcp_set_state(ts, c, TCP_FIN_WAIT_2);
		tw_cancel(ts->wheel, &c->t_rtx);
		tcp_arm_keepalive(ts, c); /* orphan: bounded FIN_WAIT_2 */
		return ACK_OK;
	case TCP_CLOSING:
		tcp_enter_timewait(ts, c);
		return ACK_OK;
	case TCP_LAST_ACK:
		tcp_drop(ts, c, 0);
		return ACK_FREED;
	case TCP_CLOSED:
	case TCP_LISTEN:
	case TCP_SYN_SENT:
	case TCP_SYN_RECEIVED:
	case TCP_ESTABLISHED:
	case TCP_FIN_WAIT_2:
	case TCP_CLOSE_WAIT:
	case TCP_TIME_WAIT:
		return ACK_OK;
	}
	return ACK_OK;
}

/* ---- FIN (§3.10.7.4 eighth) ------------------------------------------- */

static void fin_input(struct tcp_stack *ts, struct tcp_cb *c)
{
	c->flags &= ~TCPF_RCV_FIN_PENDING;
	c->flags |= TCPF_FIN_RCVD | TCPF_ACK_NOW;
	c->rcv_nxt++;
	tcp_event(ts, c, TCP_EV_READABLE);
	switch ((enum tcp_state)c->state) {
	case TCP_SYN_RECEIVED:
	case TCP_ESTABLISHED:
		tcp_set_state(ts, c, TCP_CLOSE_WAIT);
		return;
	case TCP_FIN_WAIT_1:
		/* Our FIN not yet ACKed (else we would be in FIN_WAIT_2). */
		tcp_set_state(ts, c, TCP_CLOSING);
		return;
	case TCP_FIN_WAIT_2:
		tcp_enter_timewait(ts, c);
		return;
	case TCP_TIME_WAIT:
		tcp_enter_timewait(ts, c); /* restart the 2 MSL wait */
		return;
	case TCP_CLOSED:
	case TCP_LISTEN:
	case TCP_SYN_SENT:
	case TCP_CLOSE_WAIT:
	case TCP_CLOSING:
	case TCP_LAST_ACK:
		return;
	}
}

/* ---- data (§3.10.7.4 seventh) ------------------------------------------ */

static bool takes_data(const struct tcp_cb *c)
{
	return c->state == TCP_ESTABLISHED || c->state == TCP_FIN_WAIT_1 ||
	       c->state == TCP_FIN_WAIT_2;
}

static void data_input(struct tcp_stack *ts, struct tcp_cb *c, const struct tcp_seg *s)
{
	uint32_t more;

	if (s->seq == c->rcv_nxt) {
		uint32_t had_ooo = c->n_ooo;

		(void)fifo_write(&c->rx, s->data, s->len); /* fits: window-trimmed */
		c->rcv_nxt += s->len;
		more = tcp_ooo_take(c);
		c->rx.tail += more;
		c->rcv_nxt += more;
		c->bytes_received += s->len + more;
		MST_COUNT_N(ts->st, tcp_rx_bytes, s->len + more);
		tcp_event(ts, c, TCP_EV_READABLE);
		if (had_ooo)
			c->flags |= TCPF_ACK_NOW; /* a hole filled: tell the sender at once */
		else
			tcp_delack_schedule(ts, c);
		return;
	}
	/* Out of order: place it, remember the range, ACK at once (RFC 5681 §4.2). */
	if (!tcp_ooo_add(c, s->seq, s->seq + s->len)) {
		MST_DROP(ts->st, tcp_ooo_full);
	} else {
		fifo_write_at(&c->rx, s->seq - c->rcv_nxt, s->data, s->len);
		MST_COUNT(ts->st, tcp_ooo_segs);
	}
	c->flags |= TCPF_ACK_NOW;
}

/* ---- synchronized states ----------------------------------------------- */

static void sync_input(struct tcp_stack *ts, struct tcp_cb *c, struct tcp_seg *s,
		       struct mst_pkt *p)
{
	uint32_t wnd = fifo_free(&c->rx);
	bool acceptable, ts_update;
	bool fin = s->flags & TCP_FIN;

	c->last_rx_ns = ts->now_ns;

	/* Simultaneous open (RFC 9293 Figure 8): in SYN_RECEIVED the peer's
	 * SYN-ACK repeats its SYN; take it as the ACK of ours. */
	if (c->state == TCP_SYN_RECEIVED && !(c->flags & TCPF_PASSIVE) &&
	    (s->flags & (TCP_SYN | TCP_ACK | TCP_RST)) == (TCP_SYN | TCP_ACK) && s->seq == c->irs) {
		s->flags &= (uint8_t)~TCP_SYN;
		s->seq++;
	}

	/* 0. PAWS (RFC 7323 §5.3): an old timestamp marks an old duplicate.
	 * As Linux: one tick of tolerance (TCP_PAWS_WINDOW), and pure ACKs are
	 * exempt — a reordered ACK is harmless (RFC 5961 and the SND.WL
	 * checks below still apply) and its SACK blocks help recovery. */
	if ((c->flags & TCPF_TS) && s->opts.has_ts && !(s->flags & TCP_RST) &&
	    (s->len || (s->flags & (TCP_SYN | TCP_FIN))) &&
	    (int32_t)(c->ts_recent - s->opts.ts_val) > 1 &&
	    ts->now_ns - c->ts_recent_ns < 24ull * 86400 * 1000000000ull) {
		tcp_send_ack(ts, c);
		DROP(ts, p, tcp_paws);
		return;
	}

	/* 1. Sequence number check (the window decides in every state). */
	{
		uint32_t seglen = s->len + ((s->flags & TCP_SYN) ? 1 : 0) + (fin ? 1 : 0);

		if (seglen == 0)
			acceptable = wnd ? SEQ_IN(s->seq, c->rcv_nxt, c->rcv_nxt + wnd)
					 : s->seq == c->rcv_nxt;
		else if (wnd == 0)
			acceptable = s->seq == c->rcv_nxt; /* ACK/RST/FIN still count; data trimmed below */
		else
			acceptable = SEQ_IN(s->seq, c->rcv_nxt, c->rcv_nxt + wnd) ||
				     SEQ_IN(s->seq + seglen - 1, c->rcv_nxt, c->rcv_nxt + wnd);
	}
	if (!acceptable) {
		if (s->flags & TCP_RST) {
			DROP(ts, p, tcp_rst_out_of_window);
			return;
		}
		tcp_send_ack(ts, c);
		DROP(ts, p, tcp_out_of_window);
		return;
	}
	/* Trim to the window: old bytes in front, bytes beyond it at the end. */
	if (SEQ_LT(s->seq, c->rcv_nxt)) {
		uint32_t dup = c->rcv_nxt - s->seq;

		if (s->flags & TCP_SYN) {
			s->flags &= (uint8_t)~TCP_SYN;
			s->seq++;
			dup--;
		}
		if (dup >= s->len) {
			if (dup > s->len)
				fin = false; /* the FIN is old too */
			dup = s->len;
		}
		s->data += dup;
		s->len -= dup;
		s->seq += dup;
		c->flags |= TCPF_ACK_NOW; /* duplicate data: ACK at once */
	}
	if (SEQ_GT(s->seq + s->len, c->rcv_nxt + wnd)) {
		s->len = c->rcv_nxt + wnd - s->seq;
		fin = false;
		c->flags |= TCPF_ACK_NOW;
	}
	/* RFC 7323 §4.3: the timestamp to echo is taken from a segment that
	 * is acceptable and covers Last.ACK.sent (rcv_nxt, before this
	 * segment's data moves it) — but only once its ACK has passed step 5
	 * (RFC 9293 §3.10.7.4): a segment acknowledging data never sent, or a
	 * RST or SYN answered by a challenge, must not raise TS.Recent, else
	 * every later valid segment fails PAWS. */
	ts_update = (c->flags & TCPF_TS) && s->opts.has_ts && SEQ_LEQ(s->seq, c->rcv_nxt) &&
		    SEQ_GEQ(s->opts.ts_val, c->ts_recent);

	/* 2. RST (RFC 5961 §3.2). */
	if (s->flags & TCP_RST) {
		if (s->seq != c->rcv_nxt) {
			DROP(ts, p, tcp_rst_in_window);
			challenge_ack(ts, c);
			return;
		}
		MST_COUNT(ts->st, tcp_resets_rx);
		net_free(ts->ns, p);
		switch ((enum tcp_state)c->state) {
		case TCP_SYN_RECEIVED:
			tcp_drop(ts, c, (c->flags & TCPF_PASSIVE) ? 0 : ECONNREFUSED);
			return;
		case TCP_ESTABLISHED:
		case TCP_FIN_WAIT_1:
		case TCP_FIN_WAIT_2:
		case TCP_CLOSE_WAIT:
			tcp_drop(ts, c, ECONNRESET);
			return;
		case TCP_CLOSING:
		case TCP_LAST_ACK:
		case TCP_TIME_WAIT:
		case TCP_CLOSED:
		case TCP_LISTEN:
		case TCP_SYN_SENT:
			tcp_drop(ts, c, 0);
			return;
		}
		return;
	}

	/* 4. SYN in a synchronized state (RFC 5961 §4.2). */
	if (s->flags & TCP_SYN) {
		DROP(ts, p, tcp_syn_in_sync);
		challenge_ack(ts, c);
		return;
	}

	/* 5. ACK. */
	if (!(s->flags & TCP_ACK)) {
		DROP(ts, p, tcp_no_ack);
		return;
	}
	if (c->state == TCP_SYN_RECEIVED) {
		if (!SEQ_GT(s->ack, c->snd_una) || SEQ_GT(s->ack, c->snd_max)) {
			tcp_send_reset_seq(ts, c, s->ack); /* the segment has ACK: §3.10.7.4 */
			DROP(ts, p, tcp_ack_too_new);
			return;
		}
		c->snd_una = s->ack; /* our SYN is acknowledged */
		if (c->syn_retries == 0 && (c->flags & TCPF_TS) && s->opts.has_ts && s->opts.ts_ecr)
			tcp_rtt_sample(ts, c, (tcp_ts_now(ts, c) - s->opts.ts_ecr) * 1000 + 500);
		established(ts, c, s);
		if (c->flags & TCPF_PASSIVE) {
			struct tcp_listener_ext *lx = c->listener ? tcp_lext(ts, c->listener) : NULL;

			if (!lx || lx->accept_len >= lx->backlog) {
				tcp_set_close_reason(c, TCP_CLOSE_accept_queue_full);
				tcp_send_reset(ts, c);
				DROP(ts, p, tcp_listen_overflow);
				tcp_drop(ts, c, ECONNABORTED);
				return;
			}
			tcp_accept_enqueue(ts, c);
		} else {
			tcp_event(ts, c, TCP_EV_CONNECTED | TCP_EV_WRITABLE);
		}
	} else {
		switch (ack_input(ts, c, s)) {
		case ACK_OK:
			break;
		case ACK_DROP:
			net_free(ts->ns, p);
			return; /* counted in ack_input() */
		case ACK_FREED:
			net_free(ts->ns, p);
			return;
		}
	}
	if (ts_update) {
		c->ts_recent = s->opts.ts_val;
		c->ts_recent_ns = ts->now_ns;
	}
	if (c->state == TCP_TIME_WAIT) {
		/* Only a retransmitted FIN is expected: ACK it, restart 2 MSL. */
		if (fin) {
			tcp_enter_timewait(ts, c);
			tcp_send_ack(ts, c);
		}
		net_free(ts->ns, p);
		return;
	}

	/* 7. Data. */
	if (s->len) {
		if (!takes_data(c)) {
			MST_DROP(ts->st, tcp_data_ignored);
		} else if ((c->flags & TCPF_APP_CLOSED) && (c->flags & TCPF_SHUT_RD)) {
			/* Nobody will read it: reset (RFC 9293 §3.10.7.4 / Linux). */
			net_free(ts->ns, p);
			MST_DROP(ts->st, tcp_after_close);
			tcp_set_close_reason(c, TCP_CLOSE_data_after_close);
			tcp_send_reset(ts, c);
			tcp_drop(ts, c, 0);
			return;
		} else {
			data_input(ts, c, s);
		}
	}

	/* 8. FIN. */
	if (fin && takes_data(c)) {
		uint32_t fin_seq = s->seq + s->len;

		if (fin_seq == c->rcv_nxt) {
			fin_input(ts, c);
		} else if (SEQ_GT(fin_seq, c->rcv_nxt)) {
			c->flags |= TCPF_RCV_FIN_PENDING;
			c->rcv_fin_seq = fin_seq;
		}
	} else if (fin && !takes_data(c) && (c->state == TCP_CLOSE_WAIT || c->state == TCP_CLOSING ||
					     c->state == TCP_LAST_ACK)) {
		c->flags |= TCPF_ACK_NOW; /* retransmitted FIN: our ACK was lost */
	}
	if ((c->flags & TCPF_RCV_FIN_PENDING) && c->rcv_nxt == c->rcv_fin_seq && takes_data(c))
		fin_input(ts, c);

	net_free(ts->ns, p);
	if (c->state == TCP_CLOSED)
		return;
	tcp_output(ts, c);
	if ((c->flags & (TCPF_ACK_NOW | TCPF_ACK_QUEUED)) == TCPF_ACK_NOW) {
		c->flags |= TCPF_ACK_QUEUED;
		c->anext = ts->ack_list;
		ts->ack_list = c;
	}
}

void tcp_flush_acks(struct tcp_stack *ts)
{
	while (ts->ack_list) {
		struct tcp_cb *c = ts->ack_list;

		ts->ack_list = c->anext;
		c->anext = NULL;
		c->flags &= ~TCPF_ACK_QUEUED;
		/* A data segment sent meanwhile carried the ACK already. */
		if ((c->flags & TCPF_ACK_NOW) && c->state != TCP_CLOSED && c->state != TCP_LISTEN)
			tcp_send_ack(ts, c);
	}
}

/* ---- entry -------------------------------------------------------------- */

void tcp_input(void *stack, struct mst_pkt *p, uint32_t src, uint32_t dst, uint64_t now_ns)
{
	struct tcp_stack *ts = stack;
	const struct tcp_hdr *th;
	struct tcp_seg s;
	struct tcp_cb *c;
	unsigned doff;

	ts->now_ns = now_ns;
	if (p->len < TCP_HLEN) {
		DROP(ts, p, tcp_truncated);
		return;
	}
	th = (const struct tcp_hdr *)p->data;
	doff = (unsigned)(th->doff_rsvd >> 4) * 4u;
	if (doff < TCP_HLEN || doff > p->len) {
		DROP(ts, p, tcp_bad_doff);
		return;
	}
	if (!(p->flags & MST_PKT_RX_L4_CKSUM_GOOD)) {
		uint32_t sum = net_pseudo_sum(src, dst, NET_IP_PROTO_TCP, p->len);

		if ((p->flags & MST_PKT_RX_L4_CKSUM_BAD) ||
		    net_cksum_fold(net_cksum_partial(p->data, p->len, sum)) != 0) {
			DROP(ts, p, tcp_bad_cksum);
			return;
		}
	}
	memset(&s, 0, sizeof(s));
	s.flags = th->flags & 0x3f;
	if ((s.flags & TCP_SYN) && (s.flags & (TCP_RST | TCP_FIN))) {
		DROP(ts, p, tcp_bad_flags);
		return;
	}
	if (tcp_opts_parse(p->data + TCP_HLEN, doff - TCP_HLEN, s.flags & TCP_SYN, &s.opts) < 0) {
		DROP(ts, p, tcp_bad_opts);
		return;
	}
	s.seq = ntohl(th->seq);
	s.ack = ntohl(th->ack);
	s.wnd = ntohs(th->win);
	s.data = p->data + doff;
	s.len = p->len - doff;
	s.src = src;
	s.dst = dst;
	s.sport = th->sport;
	s.dport = th->dport;
	if (th->sport == 0 || th->dport == 0) {
		DROP(ts, p, tcp_bad_addr);
		return;
	}
	MST_COUNT(ts->st, tcp_rx_segs);

	c = tcp_lookup(ts, dst, s.dport, src, s.sport);
	/* RFC 6191: a new SYN may reuse a TIME_WAIT tuple if it is clearly newer. */
	if (c && c->state == TCP_TIME_WAIT && (s.flags & TCP_SYN) && !(s.flags & TCP_ACK) &&
	    tcp_listener_find(ts, s.dport) &&
	    (((c->flags & TCPF_TS) && s.opts.has_ts) ? SEQ_GT(s.opts.ts_val, c->ts_recent)
						      : SEQ_GT(s.seq, c->rcv_nxt))) {
		MST_COUNT(ts->st, tcp_tw_reused_syn);
		tcp_drop(ts, c, 0);
		c = NULL;
	}
	if (!c) {
		struct tcp_cb *l = tcp_listener_find(ts, s.dport);

		if (!l) {
			tcp_reply_reset(ts, dst, s.dport, src, s.sport, s.seq, s.ack, s.flags, s.len);
			DROP(ts, p, tcp_no_socket);
			tcp_flush_events(ts);
			return;
		}
		c = listen_input(ts, l, &s, p);
		if (!c) {
			tcp_flush_events(ts);
			return;
		}
		/* A connection made from a SYN cookie: its ACK continues below. */
	}
	if (ts->flow_fn)
		c->fl.segs_in++;
	if (c->state == TCP_SYN_SENT)
		syn_sent_input(ts, c, &s, p);
	else
		sync_input(ts, c, &s, p);
	tcp_flush_events(ts);
}

void tcp_icmp_error(void *stack, uint8_t type, uint8_t code, uint16_t next_mtu,
		    const uint8_t *q, unsigned qlen, uint64_t now_ns)
{
	struct tcp_stack *ts = stack;
	unsigned ihl = (unsigned)(q[0] & 0x0f) * 4u;
	const struct tcp_hdr *th = (const struct tcp_hdr *)(q + ihl);
	uint32_t qsrc, qdst, seq;
	struct tcp_cb *c;

	if (type != 3 || qlen < ihl + 8)
		return;
	ts->now_ns = now_ns;
	memcpy(&qsrc, q + 12, 4);
	memcpy(&qdst, q + 16, 4);
	if (qsrc != net_ip(ts->ns))
		return;
	c = tcp_lookup(ts, qsrc, th->sport, qdst, th->dport);
	if (!c)
		return;
	seq = ntohl(th->seq);
	/* RFC 5927: only believe errors about data we have in flight. */
	if (!SEQ_IN(seq, c->snd_una, c->snd_max + 1))
		return;
	if (code == 4) { /* fragmentation needed: RFC 1191 */
		uint32_t mss;

		if (next_mtu < 576 || next_mtu >= net_mtu(ts->ns))
			return;
		mss = (uint32_t)next_mtu - 40;
		if (mss < c->mss) {
			c->mss = (uint16_t)mss;
			c->ccs.mss = mss;
			MST_COUNT(ts->st, tcp_pmtu_updates);
			/* Resend what did not fit, now. */
			c->snd_nxt = c->snd_una;
			tcp_output(ts, c);
		}
		return;
	}
	/* Hard errors only abort a connection still being set up (RFC 1122
	 * §4.2.3.9: soft for established ones). */
	if (c->state == TCP_SYN_SENT && (code == 2 || code == 3)) {
		tcp_drop(ts, c, ECONNREFUSED);
		tcp_flush_events(ts);
	}
}
