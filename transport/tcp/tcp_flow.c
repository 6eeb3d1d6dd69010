/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * TCP flow records: what one connection did, for operators
 * (docs/observability.md). The stack keeps per-connection statistics in
 * c->fl only while an owner has set a hook (tcp_set_flow_hook): every
 * update is behind `if (ts->flow_fn)`, so flow records that are off cost
 * one predictable branch per segment.
 *
 *   tcp_set_state(TIME_WAIT) / tcp_drop()  -> tcp_flow_end*() -> hook (final)
 *   engine timer -> tcp_flow_scan()        -> hook (periodic, reason "open")
 *   tcp_export() -> tcp_flow_export()      (record TCP_FLOW after TCP_CB)
 *   tcp_import_rec(TCP_FLOW) -> tcp_flow_import()
 *
 * The hook runs on the engine thread inside segment or timer processing:
 * it copies the record and returns (the engine's ring to the control
 * thread; engines/flowlog.c).
 */
#include <errno.h>
#include <string.h>
#include <arpa/inet.h>

#include "common/state.h"
#include "transport/tcp/tcp_priv.h"
#include "transport/tcp/tcp_state.h"

const char *const tcp_close_reason_names[TCP_CLOSE__COUNT] = {
#define TCP_X_NAME(n, cls, help) #n,
	TCP_FOREACH_CLOSE_REASON(TCP_X_NAME)
#undef TCP_X_NAME
};

const char *const tcp_close_reason_class[TCP_CLOSE__COUNT] = {
#define TCP_X_CLASS(n, cls, help) cls,
	TCP_FOREACH_CLOSE_REASON(TCP_X_CLASS)
#undef TCP_X_CLASS
};

/* Connections scanned per tcp_flow_scan() call: the scan is spread over
 * many timer ticks so a large table never stalls one poll. */
#define FLOW_SCAN_BATCH 256

void tcp_set_flow_hook(struct tcp_stack *ts, tcp_flow_fn fn, void *ctx)
{
	ts->flow_ctx = ctx;
	ts->flow_fn = fn;
}

void tcp_set_close_reason(struct tcp_cb *c, enum tcp_close_reason r)
{
	if (!c->fl.reason && r < TCP_CLOSE__COUNT)
		c->fl.reason = (uint8_t)r;
}

void tcp_flow_get(const struct tcp_stack *ts, const struct tcp_cb *c, struct tcp_flow_info *f)
{
	memset(f, 0, sizeof(*f));
	f->laddr = c->laddr;
	f->raddr = c->raddr;
	f->lport = ntohs(c->lport);
	f->rport = ntohs(c->rport);
	f->state = c->state;
	f->reason = c->fl.reason;
	f->passive = (c->flags & TCPF_PASSIVE) != 0;
	f->owner = c->fops ? c->fops->ctx : NULL;
	f->start_ns = c->fl.start_ns;
	f->end_ns = ts->now_ns;
	f->bytes_acked = c->bytes_acked;
	f->bytes_received = c->bytes_received;
	f->bytes_sent = c->fl.bytes_sent;
	f->segs_out = c->fl.segs_out;
	f->segs_in = c->fl.segs_in;
	f->retransmits = c->retransmits;
	f->rto_count = c->fl.rto_count;
	f->recoveries = c->fl.recoveries;
	f->srtt_us = c->srtt_us;
	f->min_rtt_us = c->fl.min_rtt_us;
	f->last_rtt_us = c->fl.last_rtt_us;
	f->max_cwnd = c->fl.max_cwnd > c->ccs.cwnd ? c->fl.max_cwnd : c->ccs.cwnd;
	f->mss = c->mss;
}

void tcp_flow_end_slow(struct tcp_stack *ts, struct tcp_cb *c, enum tcp_close_reason r)
{
	struct tcp_flow_info f;

	if (c->fl.ended || c->state == TCP_LISTEN)
		return;
	tcp_set_close_reason(c, r);
	c->fl.ended = true;
	tcp_flow_get(ts, c, &f);
	ts->flow_fn(ts->flow_ctx, &f);
}

/* What tcp_drop(err) means in c's state (c->state is still the one it
 * ended in). */
static enum tcp_close_reason reason_of(const struct tcp_cb *c, int err)
{
	switch (err) {
	case ECONNRESET:
		return TCP_CLOSE_reset_by_peer;
	case ECONNREFUSED:
		return TCP_CLOSE_refused;
	case ECONNABORTED:
		return TCP_CLOSE_listener_closed;
	case ETIMEDOUT:
		if (c->state == TCP_SYN_SENT || c->state == TCP_SYN_RECEIVED)
			return TCP_CLOSE_syn_timeout;
		if (c->keepcnt && c->keep_probes >= c->keepcnt)
			return TCP_CLOSE_keepalive_timeout;
		return TCP_CLOSE_rto_timeout;
	case 0:
		break;
	default:
		return TCP_CLOSE_unknown;
	}
	switch ((enum tcp_state)c->state) {
	case TCP_LAST_ACK:
	case TCP_CLOSING:
		return TCP_CLOSE_fin;
	case TCP_FIN_WAIT_2:
		return TCP_CLOSE_fin_timeout;
	case TCP_SYN_RECEIVED: /* a passive child reset by the peer */
		return TCP_CLOSE_reset_by_peer;
	case TCP_TIME_WAIT:
		return TCP_CLOSE_tw_recycled;
	case TCP_CLOSED:
	case TCP_LISTEN:
	case TCP_SYN_SENT:
	case TCP_ESTABLISHED:
	case TCP_FIN_WAIT_1:
	case TCP_CLOSE_WAIT:
		break;
	}
	return TCP_CLOSE_unknown;
}

void tcp_flow_drop_slow(struct tcp_stack *ts, struct tcp_cb *c, int err)
{
	if (c->fl.ended)
		return;
	tcp_flow_end_slow(ts, c, reason_of(c, err));
}

void tcp_flow_scan(struct tcp_stack *ts, uint64_t interval_ns)
{
	uint32_t end = ts->hwm, i = ts->flow_cursor;

	if (!ts->flow_fn || !interval_ns)
		return;
	for (unsigned n = 0; n < FLOW_SCAN_BATCH && end; n++, i++) {
		struct tcp_cb *c;
		struct tcp_flow_info f;
		uint64_t last;

		if (i >= end)
			i = 0;
		c = &ts->pool[i];
		if (c->state == TCP_CLOSED || c->state == TCP_LISTEN || c->state == TCP_TIME_WAIT ||
		    c->fl.ended || !c->fl.start_ns)
			continue;
		last = c->fl.last_report_ns ? c->fl.last_report_ns : c->fl.start_ns;
		if (ts->now_ns - last < interval_ns)
			continue;
		c->fl.last_report_ns = ts->now_ns;
		tcp_flow_get(ts, c, &f);
		f.reason = TCP_CLOSE_open;
		ts->flow_fn(ts->flow_ctx, &f);
	}
	ts->flow_cursor = i;
}

/* ---- live upgrade --------------------------------------------------- */

void tcp_flow_export(const struct tcp_stack *ts, struct mst_state_writer *w,
		     const struct tcp_cb *c)
{
	struct tcp_state_flow r;
	void *p;

	/* Off: nothing was counted, and the state stays as small as before. */
	if (!ts->flow_fn || !c->fl.start_ns)
		return;
	memset(&r, 0, sizeof(r));
	r.start_ns = c->fl.start_ns;
	r.last_report_ns = c->fl.last_report_ns;
	r.bytes_sent = c->fl.bytes_sent;
	r.segs_out = c->fl.segs_out;
	r.segs_in = c->fl.segs_in;
	r.rto_count = c->fl.rto_count;
	r.recoveries = c->fl.recoveries;
	r.min_rtt_us = c->fl.min_rtt_us;
	r.last_rtt_us = c->fl.last_rtt_us;
	r.max_cwnd = c->fl.max_cwnd;
	r.reason = c->fl.reason;
	r.ended = c->fl.ended;
	p = mst_sw_rec(w, MST_STATE_REC_TCP_FLOW, sizeof(r));
	if (p)
		memcpy(p, &r, sizeof(r));
}

int tcp_flow_import(struct tcp_cb *c, const void *payload, uint32_t len)
{
	struct tcp_state_flow r;
	int rc = mst_state_take(&r, sizeof(r), payload, len);

	if (rc)
		return rc;
	if (r.reason >= TCP_CLOSE__COUNT || r.ended > 1)
		return -EINVAL;
	c->fl.start_ns = r.start_ns;
	c->fl.last_report_ns = r.last_report_ns;
	c->fl.bytes_sent = r.bytes_sent;
	c->fl.segs_out = r.segs_out;
	c->fl.segs_in = r.segs_in;
	c->fl.rto_count = r.rto_count;
	c->fl.recoveries = r.recoveries;
	c->fl.min_rtt_us = r.min_rtt_us;
	c->fl.last_rtt_us = r.last_rtt_us;
	c->fl.max_cwnd = r.max_cwnd;
	c->fl.reason = r.reason;
	c->fl.ended = r.ended != 0;
	return 0;
}
