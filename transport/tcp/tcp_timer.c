/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * TCP timers on the stack's timer wheel (1 ms ticks).
 *
 * tcp_timer(now) -> tw_advance() -> tcp_timer_fire() -> by kind:
 *   RTX     SYN / SYN-ACK retransmit, RTO (RFC 6298 back-off, RFC 5681 loss
 *           window), or — with TCPF_PERSIST — the zero-window probe
 *   DELACK  the delayed ACK (RFC 1122 §4.2.3.2, RFC 9293 §3.8.6.3)
 *   KEEP    keepalive probes, TIME_WAIT end, orphaned FIN_WAIT_2 end
 * Each control block embeds its three timers: no allocation.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "transport/tcp/tcp_priv.h"

#define TCP_RETRIES_MAX 15          /* RTOs before giving up (Linux tcp_retries2) */
#define TCP_FIN_TIMEOUT_MS 60000    /* orphaned FIN_WAIT_2 */

unsigned tcp_timer(struct tcp_stack *ts, uint64_t now_ns)
{
	unsigned n;

	ts->now_ns = now_ns;
	n = tw_advance(ts->wheel, now_ns, tcp_timer_fire, ts, 1024);
	tcp_flush_events(ts);
	return n;
}

static uint64_t rto_ns(const struct tcp_stack *ts, const struct tcp_cb *c)
{
	uint64_t ms = (uint64_t)c->rto_ms << (c->rtx_shift > 16 ? 16 : c->rtx_shift);

	if (ms > ts->conf.rto_max_ms)
		ms = ts->conf.rto_max_ms;
	return ms * 1000000u;
}

void tcp_arm_rtx(struct tcp_stack *ts, struct tcp_cb *c)
{
	c->flags &= ~TCPF_PERSIST;
	tw_arm(ts->wheel, &c->t_rtx, ts->now_ns + rto_ns(ts, c));
}

void tcp_arm_persist(struct tcp_stack *ts, struct tcp_cb *c)
{
	c->flags |= TCPF_PERSIST;
	tw_arm(ts->wheel, &c->t_rtx, ts->now_ns + rto_ns(ts, c));
}

void tcp_arm_keepalive(struct tcp_stack *ts, struct tcp_cb *c)
{
	if (c->state == TCP_FIN_WAIT_2 && (c->flags & TCPF_APP_CLOSED)) {
		tw_arm(ts->wheel, &c->t_keep, ts->now_ns + (uint64_t)TCP_FIN_TIMEOUT_MS * 1000000u);
		return;
	}
	if (c->state == TCP_ESTABLISHED && (c->flags & TCPF_KEEPALIVE)) {
		c->keep_probes = 0;
		tw_arm(ts->wheel, &c->t_keep, c->last_rx_ns + (uint64_t)c->keepidle_s * 1000000000u);
		return;
	}
	if (c->state != TCP_TIME_WAIT)
		tw_cancel(ts->wheel, &c->t_keep);
}

void tcp_enter_timewait(struct tcp_stack *ts, struct tcp_cb *c)
{
	tcp_set_state(ts, c, TCP_TIME_WAIT);
	tw_cancel(ts->wheel, &c->t_rtx);
	tw_cancel(ts->wheel, &c->t_delack);
	tw_arm(ts->wheel, &c->t_keep, ts->now_ns + (uint64_t)ts->conf.timewait_ms * 1000000u);
	tcp_release_fifos(c);
	tcp_tw_link(ts, c);
	tcp_event(ts, c, TCP_EV_READABLE);
}

void tcp_rtt_sample(struct tcp_stack *ts, struct tcp_cb *c, uint32_t r)
{
	uint32_t rto_us;

	if (r == 0)
		r = 1;
	mst_hist_add(&ts->st->tcp_rtt_us, r);
	if (c->srtt_us == 0) { /* RFC 6298 §2.2 */
		c->srtt_us = r;
		c->rttvar_us = r / 2;
	} else { /* §2.3, alpha 1/8, beta 1/4 */
		uint32_t d = c->srtt_us > r ? c->srtt_us - r : r - c->srtt_us;

		c->rttvar_us = (3 * c->rttvar_us + d) / 4;
		c->srtt_us = (7 * c->srtt_us + r) / 8;
	}
	rto_us = c->srtt_us + (4 * c->rttvar_us > 1000 ? 4 * c->rttvar_us : 1000);
	c->rto_ms = rto_us / 1000;
	if (c->rto_ms < ts->conf.rto_min_ms)
		c->rto_ms = ts->conf.rto_min_ms;
	if (c->rto_ms > ts->conf.rto_max_ms)
		c->rto_ms = ts->conf.rto_max_ms;
	c->ccs.srtt_us = c->srtt_us;
	if (ts->flow_fn) {
		c->fl.last_rtt_us = r;
		if (!c->fl.min_rtt_us || r < c->fl.min_rtt_us)
			c->fl.min_rtt_us = r;
		if (c->ccs.cwnd > c->fl.max_cwnd)
			c->fl.max_cwnd = c->ccs.cwnd;
	}
	if (c->ccs.min_rtt_us == 0 || r < c->ccs.min_rtt_us)
		c->ccs.min_rtt_us = r;
}

void tcp_delack_schedule(struct tcp_stack *ts, struct tcp_cb *c)
{
	c->unacked_segs++;
	if (c->quickacks) {
		c->quickacks--;
		c->flags |= TCPF_ACK_NOW;
		return;
	}
	/* ACK at least every second full-sized segment (RFC 5681 §4.2). */
	if (c->unacked_segs >= 2) {
		c->flags |= TCPF_ACK_NOW;
		return;
	}
	if (!tw_armed(&c->t_delack))
		tw_arm(ts->wheel, &c->t_delack, ts->now_ns + (uint64_t)ts->conf.delack_ms * 1000000u);
}

static void rtx_fire(struct tcp_stack *ts, struct tcp_cb *c)
{
	if (c->flags & TCPF_PERSIST) {
		/* Zero-window probe (RFC 9293 §3.8.6.1): keep asking until the
		 * window opens; backing off, never giving up while answered. */
		if (c->snd_wnd == 0 && SEQ_LT(c->snd_nxt, c->snd_una + fifo_used(&c->tx))) {
			tcp_send_probe(ts, c);
			MST_COUNT(ts->st, tcp_zero_window_probes);
			if (c->rtx_shift < 12)
				c->rtx_shift++;
			tcp_arm_persist(ts, c);
		} else {
			c->flags &= ~TCPF_PERSIST;
			tcp_output(ts, c);
		}
		return;
	}
	switch ((enum tcp_state)c->state) {
	case TCP_SYN_SENT:
	case TCP_SYN_RECEIVED: {
		uint32_t max = c->state == TCP_SYN_SENT ? ts->conf.syn_retries : ts->conf.synack_retries;

		if (++c->syn_retries > max) {
			tcp_drop(ts, c, ETIMEDOUT);
			return;
		}
		c->rtx_shift++;
		MST_COUNT(ts->st, tcp_synack_retransmits);
		tcp_send_syn(ts, c);
		tcp_arm_rtx(ts, c);
		return;
	}
	case TCP_ESTABLISHED:
	case TCP_CLOSE_WAIT:
	case TCP_FIN_WAIT_1:
	case TCP_CLOSING:
	case TCP_LAST_ACK:
		break;
	case TCP_CLOSED:
	case TCP_LISTEN:
	case TCP_FIN_WAIT_2:
	case TCP_TIME_WAIT:
		return;
	}
	if (c->snd_una == c->snd_max)
		return; /* everything was ACKed meanwhile */
	if (++c->rtx_shift > TCP_RETRIES_MAX) {
		tcp_send_reset(ts, c);
		tcp_drop(ts, c, ETIMEDOUT);
		return;
	}
	MST_COUNT(ts->st, tcp_rto_timeouts);
	if (ts->flow_fn)
		c->fl.rto_count++;
	/* RFC 5681 §3.1 / RFC 6582: loss window, and recovery starts over. */
	c->ccs.flight = tcp_flight(c);
	c->ccs.now_ns = ts->now_ns;
	c->cc->rto_timeout(&c->ccs);
	c->flags &= ~TCPF_IN_RECOVERY;
	c->recover = c->snd_max;
	c->dupacks = 0;
	c->n_score = 0;          /* the receiver may renege (RFC 2018 §8) */
	c->high_rxt = c->snd_una;
	c->flags &= ~TCPF_RTT_TIMING;
	/* Go back: resend from snd_una as the window reopens. */
	c->snd_nxt = c->snd_una;
	if (!tcp_output(ts, c))
		(void)tcp_retransmit(ts, c, c->snd_una, c->mss);
	tcp_arm_rtx(ts, c);
}

static void keep_fire(struct tcp_stack *ts, struct tcp_cb *c)
{
	uint64_t idle_end;

	switch ((enum tcp_state)c->state) {
	case TCP_TIME_WAIT:
	case TCP_FIN_WAIT_2:
		tcp_drop(ts, c, 0);
		return;
	case TCP_ESTABLISHED:
		break;
	case TCP_CLOSED:
	case TCP_LISTEN:
	case TCP_SYN_SENT:
	case TCP_SYN_RECEIVED:
	case TCP_FIN_WAIT_1:
	case TCP_CLOSE_WAIT:
	case TCP_CLOSING:
	case TCP_LAST_ACK:
		return;
	}
	if (!(c->flags & TCPF_KEEPALIVE))
		return;
	idle_end = c->last_rx_ns + (uint64_t)c->keepidle_s * 1000000000u;
	if (ts->now_ns < idle_end) {
		c->keep_probes = 0; /* the peer spoke meanwhile */
		tw_arm(ts->wheel, &c->t_keep, idle_end);
		return;
	}
	if (c->keep_probes >= c->keepcnt) {
		MST_COUNT(ts->st, tcp_keepalive_drops);
		tcp_send_reset(ts, c);
		tcp_drop(ts, c, ETIMEDOUT);
		return;
	}
	c->keep_probes++;
	MST_COUNT(ts->st, tcp_keepalive_probes);
	tcp_send_probe(ts, c);
	tw_arm(ts->wheel, &c->t_keep, ts->now_ns + (uint64_t)c->keepintvl_s * 1000000000u);
}

void tcp_timer_fire(struct tw_timer *t, void *ctx)
{
	struct tcp_stack *ts = ctx;
	struct tcp_cb *c;

	switch (t->kind) {
	case TCP_T_RTX:
		c = (struct tcp_cb *)((char *)t - offsetof(struct tcp_cb, t_rtx));
		rtx_fire(ts, c);
		return;
	case TCP_T_DELACK:
		c = (struct tcp_cb *)((char *)t - offsetof(struct tcp_cb, t_delack));
		if (c->state >= TCP_ESTABLISHED && c->state != TCP_TIME_WAIT) {
			MST_COUNT(ts->st, tcp_delayed_acks);
			tcp_send_ack(ts, c);
		}
		return;
	case TCP_T_KEEP:
		c = (struct tcp_cb *)((char *)t - offsetof(struct tcp_cb, t_keep));
		keep_fire(ts, c);
		return;
	}
}
