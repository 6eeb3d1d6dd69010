/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * NewReno congestion control (RFC 5681, RFC 6582), hooks of tcp_cc.h.
 *
 * - Initial window: IW10 = 10 * MSS (RFC 6928); ssthresh "arbitrarily
 *   high" (UINT32_MAX / 2, so cwnd + increments never wrap).
 * - Slow start: cwnd += min(acked, L) per ACK with Appropriate Byte Counting
 *   limit L = 2 * MSS (RFC 3465 §2.2): it makes up for delayed ACKs covering
 *   two segments without the burstiness of unlimited counting. cwnd stops at
 *   ssthresh; bytes past it are credited to congestion avoidance.
 * - Congestion avoidance: byte counting (RFC 5681 §3.1, RFC 3465 §2.1):
 *   one MSS per cwnd bytes acknowledged, i.e. +1 MSS per RTT, exact even
 *   where mss*mss/cwnd would round to 0.
 * - Fast retransmit/recovery (RFC 5681 §3.2, RFC 6582 §3.2):
 *   ssthresh = max(flight/2, 2*MSS), cwnd = ssthresh + 3*MSS; a full ACK
 *   sets cwnd = ssthresh.
 * - RTO (RFC 5681 §3.1 eq. 4 and §3.1 "loss window"):
 *   ssthresh = max(flight/2, 2*MSS), cwnd = 1 MSS.
 */
#include <string.h>

#include "transport/tcp/tcp_cc.h"
#include "transport/tcp/tcp_opts.h"

#define NR_SSTHRESH_INIT (UINT32_MAX / 2)
#define NR_CWND_MAX (UINT32_MAX / 2)
#define NR_IW_SEGS 10

struct newreno_priv {
	uint32_t ca_acked; /* bytes acked in congestion avoidance, < cwnd */
};

_Static_assert(sizeof(struct newreno_priv) <= TCP_CC_PRIV_SIZE, "newreno state too big");

static inline uint32_t nr_mss(const struct tcp_cc_state *s)
{
	return s->mss ? s->mss : TCP_MSS_DEFAULT;
}

static inline uint32_t nr_max(uint32_t a, uint32_t b)
{
	return a > b ? a : b;
}

static inline uint32_t nr_min(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}

static void nr_load(const struct tcp_cc_state *s, struct newreno_priv *p)
{
	memcpy(p, s->priv, sizeof(*p));
}

static void nr_store(struct tcp_cc_state *s, const struct newreno_priv *p)
{
	memcpy(s->priv, p, sizeof(*p));
}

static void newreno_init(struct tcp_cc_state *s)
{
	struct newreno_priv p = {0};

	s->cwnd = NR_IW_SEGS * nr_mss(s);
	s->ssthresh = NR_SSTHRESH_INIT;
	memset(s->priv, 0, sizeof(s->priv));
	nr_store(s, &p);
}

static void newreno_ack_received(struct tcp_cc_state *s, uint32_t acked)
{
	uint32_t mss = nr_mss(s);
	struct newreno_priv p;

	nr_load(s, &p);
	acked = tcp_cc_slow_start(s, acked, mss);
	if (acked && s->cwnd >= s->ssthresh) {
		uint64_t sum = (uint64_t)p.ca_acked + acked;

		if (sum >= s->cwnd) {
			sum -= s->cwnd;
			s->cwnd = nr_min(s->cwnd + mss, NR_CWND_MAX);
			/* at most one MSS per ACK, however big the ACK */
			if (sum >= s->cwnd)
				sum = 0;
		}
		p.ca_acked = (uint32_t)sum;
	}
	nr_store(s, &p);
}

static void newreno_loss(struct tcp_cc_state *s)
{
	struct newreno_priv p = {0};

	s->ssthresh = nr_max(s->flight / 2, 2 * nr_mss(s));
	nr_store(s, &p);
}

static void newreno_congestion_event(struct tcp_cc_state *s)
{
	newreno_loss(s);
	s->cwnd = s->ssthresh + 3 * nr_mss(s); /* the three dupacks left the network */
}

static void newreno_recovery_exit(struct tcp_cc_state *s)
{
	struct newreno_priv p = {0};

	s->cwnd = s->ssthresh; /* deflate (RFC 6582 §3.2 step 3, option 2) */
	nr_store(s, &p);
}

static void newreno_rto_timeout(struct tcp_cc_state *s)
{
	newreno_loss(s);
	s->cwnd = nr_mss(s);
}

const struct tcp_cc_ops tcp_cc_newreno = {
	.version = TCP_CC_OPS_VERSION,
	.name = "newreno",
	.init = newreno_init,
	.ack_received = newreno_ack_received,
	.congestion_event = newreno_congestion_event,
	.recovery_exit = newreno_recovery_exit,
	.rto_timeout = newreno_rto_timeout,
};
