/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Congestion-control registry: algorithms by name (VPP's tcp_cc_algo
 * registration, FreeBSD's cc_register_algo). newreno and cubic are built
 * in; tcp_cc_register() adds more at start-up.
 *
 * Registration is meant for initialisation, before engines start; the
 * table is not locked. Lookups after that are read-only and thread-safe.
 */
#include "transport/tcp/tcp_cc.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

#define TCP_CC_MAX 16

static const struct tcp_cc_ops *cc_table[TCP_CC_MAX] = {&tcp_cc_newreno, &tcp_cc_cubic};
static unsigned cc_count = 2;

const struct tcp_cc_ops *tcp_cc_lookup(const char *name)
{
	if (!name)
		return NULL;
	for (unsigned i = 0; i < cc_count; i++)
		if (strcmp(cc_table[i]->name, name) == 0)
			return cc_table[i];
	return NULL;
}

int tcp_cc_register(const struct tcp_cc_ops *ops)
{
	/* A vtable of another version has another layout: refuse, don't guess. */
	if (!ops || ops->version != TCP_CC_OPS_VERSION || !ops->name || !ops->name[0] ||
	    !ops->init || !ops->ack_received || !ops->congestion_event || !ops->recovery_exit ||
	    !ops->rto_timeout)
		return -EINVAL;
	if (tcp_cc_lookup(ops->name))
		return -EEXIST;
	if (cc_count == TCP_CC_MAX)
		return -ENOSPC;
	cc_table[cc_count++] = ops;
	return 0;
}

uint32_t tcp_cc_slow_start(struct tcp_cc_state *s, uint32_t acked, uint32_t mss)
{
	uint32_t inc, room;

	if (s->cwnd >= s->ssthresh)
		return acked;
	inc = acked < TCP_CC_ABC_L_SEGS * mss ? acked : TCP_CC_ABC_L_SEGS * mss;
	room = s->ssthresh - s->cwnd;
	if (inc <= room) {
		s->cwnd += inc;
		return 0;
	}
	s->cwnd = s->ssthresh;
	return inc - room; /* the rest counts toward avoidance */
}
