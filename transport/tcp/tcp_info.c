/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * TCP_INFO: a connection described in Linux's struct tcp_info layout
 * (<linux/tcp.h>, a stable ABI every monitoring tool reads), so
 * getsockopt(IPPROTO_TCP, TCP_INFO) answers apps (through the engine) and
 * the sim's users alike.
 *
 *   tcp_linux_info(c, now, buf, len) -> bytes written
 *
 * Only what Mustang tracks is filled; the rest stays 0 (pacing, delivery
 * rate, busy/limited times, ECN, Fast Open). Packet counts are derived
 * from bytes and the MSS, since Mustang's scoreboard is kept in bytes.
 */
#include <string.h>

#include "transport/tcp/tcp_priv.h"

#undef TCP_MSS_DEFAULT /* <linux/tcp.h> has it too, with the same value (536) */
#include <linux/tcp.h>

/* Linux's state numbers (include/net/tcp_states.h), by our state. */
static const uint8_t linux_state[TCP_STATE__COUNT] = {
	[TCP_CLOSED] = 7, [TCP_LISTEN] = 10, [TCP_SYN_SENT] = 2, [TCP_SYN_RECEIVED] = 3,
	[TCP_ESTABLISHED] = 1, [TCP_FIN_WAIT_1] = 4, [TCP_FIN_WAIT_2] = 5,
	[TCP_CLOSE_WAIT] = 8, [TCP_CLOSING] = 11, [TCP_LAST_ACK] = 9, [TCP_TIME_WAIT] = 6,
};

#define TCP_INFO_MAX 512

static uint32_t segs(uint32_t bytes, uint32_t mss)
{
	return mss ? (bytes + mss - 1) / mss : 0;
}

static uint32_t ms_since(uint64_t now_ns, uint64_t then_ns)
{
	return then_ns && now_ns > then_ns ? (uint32_t)tcp_ms(now_ns - then_ns) : 0;
}

size_t tcp_linux_info(const struct tcp_cb *c, uint64_t now_ns, void *buf, size_t len)
{
	struct tcp_info i;
	uint32_t mss = c->mss ? c->mss : TCP_MSS_DEFAULT;

	memset(&i, 0, sizeof(i));
	i.tcpi_state = linux_state[c->state];
	i.tcpi_ca_state = (c->flags & TCPF_IN_RECOVERY) ? 3 /* TCP_CA_Recovery */
			 : c->rtx_shift ? 4 /* TCP_CA_Loss */ : 0;
	i.tcpi_retransmits = c->rtx_shift;
	i.tcpi_probes = (c->flags & TCPF_PERSIST) ? c->rtx_shift : c->keep_probes;
	i.tcpi_backoff = c->rtx_shift;
	i.tcpi_options = ((c->flags & TCPF_TS) ? TCPI_OPT_TIMESTAMPS : 0) |
			 ((c->flags & TCPF_SACK) ? TCPI_OPT_SACK : 0) |
			 ((c->flags & TCPF_WS) ? TCPI_OPT_WSCALE : 0);
	if (c->flags & TCPF_WS) {
		i.tcpi_snd_wscale = c->snd_wscale & 0xf;
		i.tcpi_rcv_wscale = c->rcv_wscale & 0xf;
	}
	i.tcpi_rto = c->rto_ms * 1000u;
	i.tcpi_snd_mss = mss;
	i.tcpi_rcv_mss = c->adv_mss;
	i.tcpi_unacked = segs(tcp_flight(c), mss);
	i.tcpi_sacked = segs(tcp_score_sacked(c), mss);
	i.tcpi_last_data_recv = ms_since(now_ns, c->last_rx_ns);
	i.tcpi_last_ack_recv = i.tcpi_last_data_recv;
	i.tcpi_pmtu = (uint32_t)c->adv_mss + 40;
	i.tcpi_rcv_ssthresh = tcp_rcv_window(c);
	i.tcpi_rtt = c->srtt_us;
	i.tcpi_rttvar = c->rttvar_us;
	i.tcpi_snd_ssthresh = c->ccs.ssthresh >= 0x7fffffffu ? 0x7fffffffu : segs(c->ccs.ssthresh, mss);
	i.tcpi_snd_cwnd = c->ccs.cwnd / mss;
	i.tcpi_advmss = c->adv_mss;
	i.tcpi_reordering = TCP_DUPTHRESH;
	i.tcpi_rcv_space = c->rx.size;
	i.tcpi_total_retrans = c->retransmits;
	i.tcpi_bytes_acked = c->bytes_acked;
	i.tcpi_bytes_received = c->bytes_received;
	i.tcpi_notsent_bytes = fifo_used(&c->tx) > tcp_flight(c)
				       ? (uint32_t)fifo_used(&c->tx) - tcp_flight(c) : 0;
	i.tcpi_snd_wnd = c->snd_wnd;
	/* Newer kernels' struct is longer (tcpi_rcv_wnd follows tcpi_snd_wnd,
	 * then fields Mustang does not keep): callers asking for more get it
	 * zero-filled, up to TCP_INFO_MAX. */
	if (len > TCP_INFO_MAX)
		len = TCP_INFO_MAX;
	memset(buf, 0, len);
	memcpy(buf, &i, len < sizeof(i) ? len : sizeof(i));
	if (len >= sizeof(i) + sizeof(uint32_t)) {
		uint32_t rcv_wnd = tcp_rcv_window(c);

		memcpy((uint8_t *)buf + sizeof(i), &rcv_wnd, sizeof(rcv_wnd));
	}
	return len;
}
