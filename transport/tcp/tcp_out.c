/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * TCP output: everything that puts a segment on the wire.
 *
 * tcp_output() -> for each segment the windows allow: xmit() (header,
 * options, payload copied from the TX FIFO, checksum) -> net_ip_output().
 * tcp_retransmit() resends one segment at a given sequence number (RTO,
 * fast retransmit, SACK holes). ACKs, probes, SYN/SYN-ACK and RSTs go
 * through the same xmit().
 *
 * The TX FIFO holds every unacknowledged byte: the byte with sequence
 * number s sits (s - snd_una) bytes past the FIFO head.
 */
#include <errno.h>
#include <string.h>
#include <arpa/inet.h>

#include "transport/tcp/tcp_priv.h"

struct seg {
	uint32_t laddr, raddr;
	uint16_t lport, rport;
	uint32_t seq, ack;
	uint8_t flags;
	uint16_t win;            /* already scaled */
	const struct tcp_opts *opts;
	bool syn_opts;           /* build SYN-style options */
	const struct tcp_fifo *src;
	uint32_t src_off, len;   /* payload: len bytes from src at src_off past head */
	struct tcp_flow_stats *fl; /* the connection's flow statistics, NULL: none */
};

static int xmit(struct tcp_stack *ts, const struct seg *s)
{
	struct mst_pkt *p = net_alloc(ts->ns);
	struct tcp_hdr *th;
	uint8_t optbuf[TCP_OPTS_MAX_LEN];
	unsigned olen = 0, hlen;
	uint32_t sum;
	uint16_t ck;

	if (!p)
		return -ENOBUFS;
	if (s->opts)
		olen = tcp_opts_build(optbuf, s->opts, s->syn_opts);
	hlen = TCP_HLEN + olen;
	if (hlen + s->len > (unsigned)p->tailroom + p->len) {
		MST_DROP(ts->st, too_big);
		net_free(ts->ns, p);
		return -EMSGSIZE;
	}
	th = (struct tcp_hdr *)mst_pkt_append(p, (uint16_t)(hlen + s->len));
	th->sport = s->lport;
	th->dport = s->rport;
	th->seq = htonl(s->seq);
	th->ack = htonl(s->ack);
	th->doff_rsvd = (uint8_t)((hlen / 4) << 4);
	th->flags = s->flags;
	th->win = htons(s->win);
	th->cksum = 0;
	th->urp = 0;
	if (olen)
		memcpy(th + 1, optbuf, olen);
	if (s->len)
		fifo_peek_at(s->src, s->src_off, (uint8_t *)th + hlen, s->len);
	sum = net_pseudo_sum(s->laddr, s->raddr, 6, (uint16_t)(hlen + s->len));
	if (net_tx_offloads(ts->ns) & NET_OFL_TCP_CKSUM) {
		/* The port finishes it from the folded, non-inverted pseudo-header sum. */
		ck = (uint16_t)~net_cksum_fold(sum);
		p->flags |= MST_PKT_TX_TCP_CKSUM;
	} else {
		ck = net_cksum_fold(net_cksum_partial(th, hlen + s->len, sum));
	}
	memcpy(&th->cksum, &ck, sizeof(ck)); /* fold() returns memory order */
	MST_COUNT(ts->st, tcp_tx_segs);
	MST_COUNT_N(ts->st, tcp_tx_bytes, s->len);
	if (ts->flow_fn && s->fl) {
		s->fl->segs_out++;
		s->fl->bytes_sent += s->len;
	}
	return net_ip_output(ts->ns, p, s->raddr, 6, ts->now_ns);
}

uint32_t tcp_rcv_window(const struct tcp_cb *c)
{
	uint32_t free = tcp_rx_room(c); /* SO_RCVBUF may hold back part of the FIFO */
	uint32_t max = (uint32_t)65535 << c->rcv_wscale;

	/* Closed by the app: data that still arrives is answered with a RST
	 * (tcp_in), but the peer must be able to send its FIN. A zero window
	 * would stop Linux, which does not send a FIN into a closed window and
	 * probes forever instead: keep offering what was already advertised
	 * (at least one unit of the window scale). */
	if (c->flags & TCPF_SHUT_RD && c->flags & TCPF_APP_CLOSED) {
		uint32_t left = SEQ_GT(c->rcv_adv, c->rcv_nxt) ? c->rcv_adv - c->rcv_nxt : 0;
		uint32_t unit = (uint32_t)1 << c->rcv_wscale;

		return left > unit ? left : unit;
	}
	/* A smaller SO_RCVBUF set on a live connection does not shrink what
	 * was offered (RFC 9293 §3.8.6.2.2): it takes hold as that is used. */
	if (c->rcvbuf && SEQ_GT(c->rcv_adv, c->rcv_nxt) && c->rcv_adv - c->rcv_nxt > free) {
		uint32_t left = c->rcv_adv - c->rcv_nxt, phys = fifo_free(&c->rx);

		free = left < phys ? left : phys;
	}
	return free > max ? max : free;
}

/* Window field for a non-SYN segment, and remember the right edge. */
static uint16_t adv_window(struct tcp_cb *c)
{
	uint32_t w = tcp_rcv_window(c);
	uint32_t field = w >> c->rcv_wscale;

	if (field > 65535)
		field = 65535;
	/* Never move the advertised right edge back (RFC 9293 §3.8.6.2.2). */
	if (SEQ_GT(c->rcv_nxt + (field << c->rcv_wscale), c->rcv_adv))
		c->rcv_adv = c->rcv_nxt + (field << c->rcv_wscale);
	return (uint16_t)field;
}

static void fill_opts(struct tcp_stack *ts, struct tcp_cb *c, struct tcp_opts *o, bool sack,
		      uint32_t recent)
{
	memset(o, 0, sizeof(*o));
	if (c->flags & TCPF_TS) {
		o->has_ts = 1;
		o->ts_val = tcp_ts_now(ts, c);
		o->ts_ecr = c->ts_recent;
	}
	if (sack && (c->flags & TCPF_SACK) && c->n_ooo)
		o->n_sack = (uint8_t)tcp_sack_blocks(c, recent, o->sack,
						     (c->flags & TCPF_TS) ? 3 : 4);
}

static void seg_init(struct seg *s, struct tcp_cb *c)
{
	memset(s, 0, sizeof(*s));
	s->fl = &c->fl;
	s->laddr = c->laddr;
	s->raddr = c->raddr;
	s->lport = c->lport;
	s->rport = c->rport;
}

/* Bytes of data (not SYN/FIN) from snd_una to the end of the TX FIFO. */
static inline uint32_t data_end(const struct tcp_cb *c)
{
	return c->snd_una + fifo_used(&c->tx);
}

static bool may_send_data(const struct tcp_cb *c)
{
	switch ((enum tcp_state)c->state) {
	case TCP_ESTABLISHED:
	case TCP_CLOSE_WAIT:
	case TCP_FIN_WAIT_1:
	case TCP_CLOSING:
	case TCP_LAST_ACK:
		return true;
	case TCP_CLOSED:
	case TCP_LISTEN:
	case TCP_SYN_SENT:
	case TCP_SYN_RECEIVED:
	case TCP_FIN_WAIT_2:
	case TCP_TIME_WAIT:
		return false;
	}
	return false;
}

/* Send one segment at `seq` of up to `len` data bytes (+FIN if it ends the
 * stream and we are closing). Returns the sequence space used. */
static uint32_t send_at(struct tcp_stack *ts, struct tcp_cb *c, uint32_t seq, uint32_t len,
			bool fin)
{
	struct tcp_opts o;
	struct seg s;

	seg_init(&s, c);
	/* SACK blocks (up to 28 bytes) ride only where they fit in the MSS. */
	fill_opts(ts, c, &o, len + 28 <= c->mss, c->ooo_last);
	s.seq = seq;
	s.ack = c->rcv_nxt;
	s.flags = TCP_ACK | (fin ? TCP_FIN : 0);
	if (len && seq + len == data_end(c))
		s.flags |= TCP_PSH;
	s.win = adv_window(c);
	s.opts = &o;
	s.src = &c->tx;
	s.src_off = seq - c->snd_una;
	s.len = len;
	/* A segment we could not send (no buffer) is treated as lost on the
	 * wire: the sequence space is used and the RTO recovers it. */
	(void)xmit(ts, &s);
	if (c->flags & TCPF_IN_RECOVERY)
		c->prr_out += len + (fin ? 1 : 0); /* RFC 6937 prr_out */
	/* Any segment carries our ACK: the delayed ACK is no longer due. */
	c->flags &= ~TCPF_ACK_NOW;
	c->unacked_segs = 0;
	tw_cancel(ts->wheel, &c->t_delack);
	return len + (fin ? 1 : 0);
}

int tcp_output(struct tcp_stack *ts, struct tcp_cb *c)
{
	int sent = 0;

	if (!may_send_data(c))
		return 0;
	for (;;) {
		uint32_t end = data_end(c);
		uint32_t avail = SEQ_LT(c->snd_nxt, end) ? end - c->snd_nxt : 0;
		uint32_t wnd = c->snd_wnd < c->ccs.cwnd ? c->snd_wnd : c->ccs.cwnd;
		uint32_t inflight = (c->flags & TCPF_IN_RECOVERY) ? tcp_pipe(c) : c->snd_nxt - c->snd_una;
		uint32_t usable = wnd > inflight ? wnd - inflight : 0;
		uint32_t len = avail < c->mss ? avail : c->mss;
		bool fin_pending = (c->flags & TCPF_SHUT_WR) && SEQ_LEQ(c->snd_nxt, end);
		bool fin;
		uint32_t used;

		/* The peer's window bounds new data regardless of cwnd. */
		if (len > usable)
			len = usable;
		fin = fin_pending && c->snd_nxt + len == end;
		if (len == 0 && !fin)
			break;
		if (fin && len == 0 && avail > 0)
			break; /* data first */
		/* Sender SWS avoidance (RFC 9293 §3.8.6.2.1): a segment that does
		 * not empty the queue goes out only if full-sized or at least
		 * half the largest window the peer ever offered. */
		if (len < avail && len < c->mss &&
		    (len == 0 || (len < c->max_sndwnd / 2 && c->snd_nxt != c->snd_una)))
			break; /* (with nothing in flight a small window is used at once, or we would wait forever) */
		if (len > 0 && len < c->mss && !fin && !(c->flags & TCPF_NODELAY) &&
		    c->snd_nxt != c->snd_una)
			break; /* Nagle: one small segment in flight at a time */
		if (SEQ_LT(c->snd_nxt, c->snd_max)) {
			c->retransmits++;
			MST_COUNT(ts->st, tcp_retransmits);
			c->flags &= ~TCPF_RTT_TIMING; /* Karn */
		} else if (!(c->flags & TCPF_RTT_TIMING) && len) {
			c->flags |= TCPF_RTT_TIMING;
			c->rtt_seq = c->snd_nxt;
			c->rtt_start_ns = ts->now_ns;
		}
		used = send_at(ts, c, c->snd_nxt, len, fin);
		if (!used)
			break;
		c->snd_nxt += used;
		if (fin)
			c->flags |= TCPF_FIN_SENT;
		if (SEQ_GT(c->snd_nxt, c->snd_max))
			c->snd_max = c->snd_nxt;
		sent++;
		if (!tw_armed(&c->t_rtx) || (c->flags & TCPF_PERSIST)) {
			c->flags &= ~TCPF_PERSIST;
			tcp_arm_rtx(ts, c);
		}
	}
	/* Data waits on a zero window with nothing in flight: probe it. */
	if (!sent && c->snd_wnd == 0 && SEQ_LT(c->snd_nxt, data_end(c)) &&
	    c->snd_una == c->snd_max && !tw_armed(&c->t_rtx))
		tcp_arm_persist(ts, c);
	return sent;
}

int tcp_retransmit(struct tcp_stack *ts, struct tcp_cb *c, uint32_t seq, uint32_t max_len)
{
	uint32_t end = data_end(c);
	uint32_t len = SEQ_LT(seq, end) ? end - seq : 0;
	bool fin;

	if (len > c->mss)
		len = c->mss;
	if (len > max_len)
		len = max_len;
	fin = (c->flags & TCPF_FIN_SENT) && seq + len == end;
	if (!len && !fin)
		return 0;
	c->retransmits++;
	MST_COUNT(ts->st, tcp_retransmits);
	c->flags &= ~TCPF_RTT_TIMING;
	return (int)send_at(ts, c, seq, len, fin);
}

void tcp_send_ack(struct tcp_stack *ts, struct tcp_cb *c)
{
	struct tcp_opts o;
	struct seg s;

	seg_init(&s, c);
	fill_opts(ts, c, &o, true, c->ooo_last);
	s.seq = c->snd_nxt;
	s.ack = c->rcv_nxt;
	s.flags = TCP_ACK;
	s.win = adv_window(c);
	s.opts = &o;
	(void)xmit(ts, &s);
	c->unacked_segs = 0;
	c->flags &= ~TCPF_ACK_NOW;
	tw_cancel(ts->wheel, &c->t_delack);
}

void tcp_send_probe(struct tcp_stack *ts, struct tcp_cb *c)
{
	struct tcp_opts o;
	struct seg s;

	seg_init(&s, c);
	fill_opts(ts, c, &o, false, 0);
	s.seq = c->snd_una - 1; /* old sequence: forces an ACK with the window */
	s.ack = c->rcv_nxt;
	s.flags = TCP_ACK;
	s.win = adv_window(c);
	s.opts = &o;
	(void)xmit(ts, &s);
}

void tcp_send_syn(struct tcp_stack *ts, struct tcp_cb *c)
{
	struct tcp_opts o;
	struct seg s;
	uint32_t w;

	memset(&o, 0, sizeof(o));
	o.has_mss = 1;
	o.mss = c->adv_mss;
	if (c->state == TCP_SYN_SENT) {
		o.has_wscale = ts->conf.wscale;
		o.sack_ok = ts->conf.sack;
		o.has_ts = ts->conf.timestamps;
	} else { /* SYN-ACK: only what the peer offered */
		o.has_wscale = !!(c->flags & TCPF_WS);
		o.sack_ok = !!(c->flags & TCPF_SACK);
		o.has_ts = !!(c->flags & TCPF_TS);
	}
	o.wscale = c->rcv_wscale;
	o.ts_val = tcp_ts_now(ts, c);
	o.ts_ecr = c->state == TCP_SYN_SENT ? 0 : c->ts_recent;
	seg_init(&s, c);
	s.seq = c->iss;
	s.ack = c->state == TCP_SYN_SENT ? 0 : c->rcv_nxt;
	s.flags = TCP_SYN | (c->state == TCP_SYN_SENT ? 0 : TCP_ACK);
	w = tcp_rx_room(c);
	s.win = (uint16_t)(w > 65535 ? 65535 : w); /* never scaled on SYNs (RFC 7323 §2.2) */
	s.opts = &o;
	s.syn_opts = true;
	(void)xmit(ts, &s);
	c->snd_nxt = c->iss + 1;
	if (SEQ_GT(c->snd_nxt, c->snd_max))
		c->snd_max = c->snd_nxt;
	c->rcv_adv = c->rcv_nxt + s.win;
	if (!tw_armed(&c->t_rtx))
		tcp_arm_rtx(ts, c);
}

/* RST on a connection. With timestamps negotiated it carries the option
 * (RFC 7323 §3.2: SHOULD), so a peer applying PAWS-like checks to RSTs
 * (Linux checks TSecr against what it sent) does not discard it; TSecr is
 * 0 when the ACK bit is off (§3.2). */
static void reset_on_conn(struct tcp_stack *ts, struct tcp_cb *c, uint32_t seq, uint8_t flags)
{
	struct tcp_opts o;
	struct seg s;

	seg_init(&s, c);
	s.seq = seq;
	s.ack = (flags & TCP_ACK) ? c->rcv_nxt : 0;
	s.flags = flags;
	if (c->flags & TCPF_TS) {
		fill_opts(ts, c, &o, false, 0);
		if (!(flags & TCP_ACK))
			o.ts_ecr = 0;
		s.opts = &o;
	}
	(void)xmit(ts, &s);
	MST_COUNT(ts->st, tcp_resets_sent);
}

void tcp_send_reset(struct tcp_stack *ts, struct tcp_cb *c)
{
	reset_on_conn(ts, c, c->snd_nxt, TCP_RST | (c->state == TCP_SYN_SENT ? 0 : TCP_ACK));
}

void tcp_send_reset_seq(struct tcp_stack *ts, struct tcp_cb *c, uint32_t seg_ack)
{
	reset_on_conn(ts, c, seg_ack, TCP_RST);
}

void tcp_reply_reset(struct tcp_stack *ts, uint32_t laddr, uint16_t lport, uint32_t raddr,
		     uint16_t rport, uint32_t seg_seq, uint32_t seg_ack, uint8_t seg_flags,
		     uint32_t seg_len)
{
	struct seg s;

	if (seg_flags & TCP_RST)
		return; /* never answer a RST */
	memset(&s, 0, sizeof(s));
	s.laddr = laddr;
	s.raddr = raddr;
	s.lport = lport;
	s.rport = rport;
	if (seg_flags & TCP_ACK) {
		s.seq = seg_ack;
		s.flags = TCP_RST;
	} else {
		s.seq = 0;
		s.ack = seg_seq + seg_len + ((seg_flags & TCP_SYN) ? 1 : 0) +
			((seg_flags & TCP_FIN) ? 1 : 0);
		s.flags = TCP_RST | TCP_ACK;
	}
	(void)xmit(ts, &s);
	MST_COUNT(ts->st, tcp_resets_sent);
}

void tcp_send_cookie_synack(struct tcp_stack *ts, uint32_t laddr, uint16_t lport,
			    uint32_t raddr, uint16_t rport, uint32_t isn, uint32_t peer_isn,
			    const struct tcp_opts *peer, uint16_t adv_mss, uint8_t rcv_wscale,
			    uint32_t rcv_wnd)
{
	struct tcp_opts o;
	struct seg s;

	memset(&o, 0, sizeof(o));
	o.has_mss = 1;
	o.mss = adv_mss;
	o.has_wscale = peer->has_wscale && ts->conf.wscale;
	o.wscale = rcv_wscale;
	o.sack_ok = peer->sack_ok && ts->conf.sack;
	/* Timestamps are not encoded in our cookies: do not offer them, so
	 * both sides agree on their absence (as Linux without TS cookies). */
	memset(&s, 0, sizeof(s));
	s.laddr = laddr;
	s.raddr = raddr;
	s.lport = lport;
	s.rport = rport;
	s.seq = isn;
	s.ack = peer_isn + 1;
	s.flags = TCP_SYN | TCP_ACK;
	s.win = (uint16_t)(rcv_wnd > 65535 ? 65535 : rcv_wnd);
	s.opts = &o;
	s.syn_opts = true;
	(void)xmit(ts, &s);
	MST_COUNT(ts->st, tcp_syncookies_sent);
}
