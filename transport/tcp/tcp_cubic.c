/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * CUBIC congestion control (RFC 9438), hooks of tcp_cc.h.
 *
 * Window in segments (doubles; the curve needs a cube root anyway), time
 * from s->now_ns, state in s->priv (see struct cubic_priv).
 *
 * - Slow start as NewReno: IW10, cwnd += min(acked, 2*MSS) (RFC 3465 L=2).
 * - Congestion avoidance, per ACK (§4.2-4.5): t = now - epoch start,
 *     W_cubic(t) = C (t - K)^3 + W_max,  K = cbrt((W_max - cwnd_epoch) / C)
 *   target = W_cubic(t + RTT) clamped to [cwnd, 1.5 cwnd], and
 *   cwnd += (target - cwnd) / cwnd per segment acked. The epoch starts on
 *   the first ACK in congestion avoidance after a reduction.
 * - Reno-friendly region (§4.3): W_est starts at cwnd_epoch and grows by
 *   alpha * segs_acked / cwnd, alpha = 3 (1 - beta) / (1 + beta), and 1 once
 *   W_est >= cwnd_prior. Whenever W_cubic(t) < W_est, cwnd = W_est.
 * - Congestion event (§4.6, §4.7): fast convergence (a loss below the last
 *   W_max means a new flow is taking its share: W_max = cwnd (1 + beta) / 2,
 *   else W_max = cwnd), ssthresh = max(cwnd * beta, 2 MSS), cwnd = ssthresh.
 *   There is no +3 MSS inflation as in Reno: RFC 9438 §4.6 sets cwnd to
 *   ssthresh on entering recovery; the recovery machinery (SACK pipe or
 *   NewReno dupack accounting) decides what is sent during it.
 * - Recovery exit: cwnd = ssthresh.
 * - RTO (§4.8): ssthresh = max(flight * beta, 2 MSS), cwnd = 1 MSS, and
 *   the next congestion-avoidance epoch starts with K = 0 and W_max = the
 *   cwnd at that time.
 */
#include <math.h>
#include <string.h>

#include "transport/tcp/tcp_cc.h"
#include "transport/tcp/tcp_opts.h"

#define CUBIC_C 0.4
#define CUBIC_BETA 0.7
#define CUBIC_ALPHA (3.0 * (1.0 - CUBIC_BETA) / (1.0 + CUBIC_BETA)) /* ~0.53 */
#define CUBIC_SSTHRESH_INIT (UINT32_MAX / 2)
#define CUBIC_CWND_MAX (UINT32_MAX / 2)
#define CUBIC_IW_SEGS 10

struct cubic_priv {
	double w_max;      /* segments: window before the last reduction (fast-converged) */
	double k;          /* s: time for the curve to climb back to origin */
	double origin;     /* segments: plateau of this epoch's curve */
	double w_est;      /* segments: Reno-friendly estimate */
	double cwnd_prior; /* segments: cwnd when ssthresh was last set */
	double frac;       /* bytes of growth computed but not yet in cwnd (< 1) */
	uint64_t epoch_ns; /* start of this epoch; meaningful if in_epoch */
	uint32_t in_epoch; /* an epoch has started since the last reduction */
};

_Static_assert(sizeof(struct cubic_priv) <= TCP_CC_PRIV_SIZE, "cubic state too big");

static inline uint32_t cu_mss(const struct tcp_cc_state *s)
{
	return s->mss ? s->mss : TCP_MSS_DEFAULT;
}

static inline uint32_t cu_max(uint32_t a, uint32_t b)
{
	return a > b ? a : b;
}

static void cu_load(const struct tcp_cc_state *s, struct cubic_priv *p)
{
	memcpy(p, s->priv, sizeof(*p));
}

static void cu_store(struct tcp_cc_state *s, const struct cubic_priv *p)
{
	memcpy(s->priv, p, sizeof(*p));
}

static void cubic_init(struct tcp_cc_state *s)
{
	struct cubic_priv p = {0};

	s->cwnd = CUBIC_IW_SEGS * cu_mss(s);
	s->ssthresh = CUBIC_SSTHRESH_INIT;
	memset(s->priv, 0, sizeof(s->priv));
	cu_store(s, &p);
}

static void cubic_epoch_start(struct tcp_cc_state *s, struct cubic_priv *p, double cwnd)
{
	p->in_epoch = 1;
	p->epoch_ns = s->now_ns;
	p->w_est = cwnd;
	p->frac = 0;
	if (p->w_max > cwnd) {
		p->k = cbrt((p->w_max - cwnd) / CUBIC_C);
		p->origin = p->w_max;
	} else {
		/* No reduction to recover from (first epoch, after an RTO, or
		 * grown past W_max in slow start): convex from here. */
		p->k = 0;
		p->origin = cwnd;
		p->w_max = cwnd;
	}
}

static double cubic_w(const struct cubic_priv *p, double t)
{
	double d = t - p->k;

	return CUBIC_C * d * d * d + p->origin;
}

/* Congestion avoidance for `acked` bytes. */
static void cubic_avoid(struct tcp_cc_state *s, struct cubic_priv *p, uint32_t acked)
{
	double mss = cu_mss(s), cwnd = s->cwnd / mss, segs = acked / mss;

	if (!p->in_epoch)
		cubic_epoch_start(s, p, cwnd);
	double t = s->now_ns > p->epoch_ns ? (double)(s->now_ns - p->epoch_ns) * 1e-9 : 0.0;
	uint32_t rtt_us = s->srtt_us ? s->srtt_us : s->min_rtt_us;
	double target = cubic_w(p, t + rtt_us * 1e-6);

	if (target < cwnd)
		target = cwnd;
	else if (target > 1.5 * cwnd)
		target = 1.5 * cwnd;

	double alpha = p->w_est >= p->cwnd_prior ? 1.0 : CUBIC_ALPHA;
	double next;

	p->w_est += alpha * segs / cwnd;
	if (cubic_w(p, t) < p->w_est)
		next = p->w_est > cwnd ? p->w_est : cwnd; /* Reno-friendly region */
	else
		next = cwnd + (target - cwnd) * segs / cwnd;

	double grow = (next - cwnd) * mss + p->frac;
	double whole = floor(grow);

	p->frac = grow - whole;
	if (whole >= (double)(CUBIC_CWND_MAX - s->cwnd))
		s->cwnd = CUBIC_CWND_MAX;
	else
		s->cwnd += (uint32_t)whole;
}

static void cubic_ack_received(struct tcp_cc_state *s, uint32_t acked)
{
	uint32_t mss = cu_mss(s);
	struct cubic_priv p;

	cu_load(s, &p);
	acked = tcp_cc_slow_start(s, acked, mss);
	if (acked && s->cwnd >= s->ssthresh)
		cubic_avoid(s, &p, acked);
	cu_store(s, &p);
}

static void cubic_congestion_event(struct tcp_cc_state *s)
{
	uint32_t mss = cu_mss(s);
	double cwnd = s->cwnd / (double)mss;
	struct cubic_priv p;

	cu_load(s, &p);
	p.cwnd_prior = cwnd;
	/* §4.7 fast convergence: release bandwidth to a newcomer. */
	p.w_max = cwnd < p.w_max ? cwnd * (1.0 + CUBIC_BETA) / 2.0 : cwnd;
	s->ssthresh = cu_max((uint32_t)(s->cwnd * CUBIC_BETA), 2 * mss);
	s->cwnd = s->ssthresh;
	p.in_epoch = 0;
	p.frac = 0;
	cu_store(s, &p);
}

static void cubic_recovery_exit(struct tcp_cc_state *s)
{
	struct cubic_priv p;

	cu_load(s, &p);
	s->cwnd = s->ssthresh;
	p.in_epoch = 0; /* the epoch starts with the next ACK, from this cwnd */
	p.frac = 0;
	cu_store(s, &p);
}

static void cubic_rto_timeout(struct tcp_cc_state *s)
{
	uint32_t mss = cu_mss(s);
	struct cubic_priv p;

	cu_load(s, &p);
	p.cwnd_prior = s->cwnd / (double)mss;
	s->ssthresh = cu_max((uint32_t)(s->flight * CUBIC_BETA), 2 * mss);
	s->cwnd = mss;
	p.w_max = 0; /* §4.8: next epoch has K = 0, W_max = cwnd at its start */
	p.in_epoch = 0;
	p.frac = 0;
	cu_store(s, &p);
}

const struct tcp_cc_ops tcp_cc_cubic = {
	.version = TCP_CC_OPS_VERSION,
	.name = "cubic",
	.init = cubic_init,
	.ack_received = cubic_ack_received,
	.congestion_event = cubic_congestion_event,
	.recovery_exit = cubic_recovery_exit,
	.rto_timeout = cubic_rto_timeout,
};
