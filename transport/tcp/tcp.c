/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * TCP stack object, connection table and the socket-shaped API.
 *
 * tcp_create() -> [tcp_listen | tcp_connect] -> tcp_input()/tcp_timer()
 * drive the protocol -> events are queued per connection and delivered by
 * tcp_flush_events() at the end of each entry point, so a callback never
 * runs in the middle of segment processing -> tcp_close()/tcp_abort().
 *
 * Control blocks come from a pool allocated at create time; lookup is a
 * keyed hash of the 4-tuple with chaining (O(1) expected, keyed so a peer
 * cannot aim many tuples at one bucket). Socket buffers (the FIFOs) are
 * allocated per connection when it is created, never per packet.
 *
 * Active opens: tcp_connect() -> pick_ephemeral() (RFC 6056 Algorithm 4
 * over conf.eph_lo..eph_hi) -> tuple_free() (free, or our TIME_WAIT that
 * tw_reusable() allows: RFC 6191 with timestamps) -> tcp_cb_new().
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <arpa/inet.h>

#include "transport/tcp/tcp_priv.h"

const char *const tcp_state_names[TCP_STATE__COUNT] = {
#define TCP_X_NAME(n) #n,
	TCP_FOREACH_STATE(TCP_X_NAME)
#undef TCP_X_NAME
};

void tcp_conf_defaults(struct tcp_conf *c)
{
	memset(c, 0, sizeof(*c));
	c->max_conns = 131072;
	c->rx_buf = 256 * 1024;
	c->tx_buf = 256 * 1024;
	c->rto_min_ms = 200;
	c->rto_max_ms = 60000;
	c->rto_initial_ms = 1000;
	c->timewait_ms = 60000;
	c->delack_ms = 40;
	c->syn_retries = 6;
	c->synack_retries = 5;
	c->keepidle_s = 7200;
	c->keepintvl_s = 75;
	c->keepcnt = 9;
	c->challenge_ack_per_s = 10;
	c->cc = "cubic";
	c->sack = true;
	c->timestamps = true;
	c->wscale = true;
	c->syncookies = true;
	c->eph_lo = 32768; /* Linux's ip_local_port_range */
	c->eph_hi = 60999;
	c->tw_reuse_delay_ms = 1000;
}

static uint32_t pow2_ceil(uint32_t v)
{
	uint32_t p = 1;

	while (p < v && p < (1u << 30))
		p <<= 1;
	return p;
}

static uint32_t clamp_buf(uint32_t v)
{
	if (v < 4096)
		v = 4096;
	if (v > (1u << 30))
		v = 1u << 30;
	return pow2_ceil(v);
}

struct tcp_stack *tcp_create(struct net_stack *ns, const struct tcp_conf *conf,
			     struct mst_stats *stats, uint64_t now_ns)
{
	struct tcp_stack *ts;
	uint32_t buckets;

	if (!ns || !conf || !stats || conf->max_conns == 0 || conf->max_conns > (1u << 24) ||
	    conf->rto_min_ms == 0 || conf->rto_max_ms < conf->rto_min_ms || conf->eph_lo == 0 ||
	    conf->eph_hi < conf->eph_lo) {
		errno = EINVAL;
		return NULL;
	}
	ts = calloc(1, sizeof(*ts));
	if (!ts)
		goto out_nomem;
	ts->ns = ns;
	ts->st = stats;
	ts->conf = *conf;
	ts->conf.rx_buf = clamp_buf(conf->rx_buf);
	ts->conf.tx_buf = clamp_buf(conf->tx_buf);
	ts->cc_default = tcp_cc_lookup(conf->cc ? conf->cc : "cubic");
	if (!ts->cc_default) {
		free(ts);
		errno = ENOENT;
		return NULL;
	}
	ts->now_ns = now_ns;
	ts->start_ns = now_ns;
	tcp_secret_init(&ts->secret);
	ts->hash_seed = (uint32_t)tcp_siphash(&ts->secret, "hash", 4);
	for (unsigned i = 0; i < TCP_EPH_TABLE; i++)
		ts->eph_table[i] = (uint32_t)tcp_siphash(&ts->secret, &i, sizeof(i));
	ts->wheel = calloc(1, sizeof(*ts->wheel));
	if (!ts->wheel)
		goto out_ts;
	tw_init(ts->wheel, now_ns, 1000000); /* 1 ms ticks */
	buckets = pow2_ceil(conf->max_conns);
	ts->hash = calloc(buckets, sizeof(*ts->hash));
	if (!ts->hash)
		goto out_wheel;
	ts->hash_mask = buckets - 1;
	/* calloc: pages of the pool are only touched as connections are made. */
	ts->pool = calloc(conf->max_conns, sizeof(*ts->pool));
	if (!ts->pool)
		goto out_hash;
	for (uint32_t i = conf->max_conns; i-- > 0;) {
		ts->pool[i].hnext = ts->free_list;
		ts->free_list = &ts->pool[i];
	}
	net_set_tcp_hook(ns, tcp_input, tcp_icmp_error, ts);
	return ts;

out_hash:
	free(ts->hash);
out_wheel:
	free(ts->wheel);
out_ts:
	free(ts);
out_nomem:
	errno = ENOMEM;
	return NULL;
}

void tcp_destroy(struct tcp_stack *ts)
{
	if (!ts)
		return;
	net_set_tcp_hook(ts->ns, NULL, NULL, NULL);
	tcp_import_free(ts);
	for (uint32_t i = 0; i < ts->conf.max_conns; i++) {
		struct tcp_cb *c = &ts->pool[i];

		if (c->state == TCP_LISTEN)
			continue; /* no FIFOs of its own: its fops are its children's */
		if (c->fops && c->fcookie)
			c->fops->free(c->fops->ctx, c, c->fcookie);
		else if (!c->fops)
			free(c->rx.data); /* rx and tx share one allocation */
	}
	free(ts->pool);
	free(ts->hash);
	free(ts->wheel);
	free(ts);
}

void tcp_set_port_filter(struct tcp_stack *ts,
			 bool (*ok)(void *ctx, uint32_t raddr, uint16_t rport, uint16_t lport), void *ctx)
{
	ts->port_ok = ok;
	ts->port_ok_ctx = ctx;
}

uint32_t tcp_max_conns(const struct tcp_stack *ts)
{
	return ts->conf.max_conns;
}

void tcp_buffer_sizes(const struct tcp_stack *ts, uint32_t *rx, uint32_t *tx)
{
	*rx = ts->conf.rx_buf;
	*tx = ts->conf.tx_buf;
}

void tcp_set_default_handler(struct tcp_stack *ts, tcp_event_fn fn, void *ctx)
{
	ts->default_fn = fn;
	ts->default_ctx = ctx;
}

/* ---- table ---------------------------------------------------------- */

static inline uint32_t tuple_hash(const struct tcp_stack *ts, uint32_t laddr, uint16_t lport,
				  uint32_t raddr, uint16_t rport)
{
	uint64_t h = ((uint64_t)raddr << 32 | ((uint32_t)rport << 16 | lport)) ^ laddr;

	h ^= ts->hash_seed;
	h *= 0x9e3779b97f4a7c15ull;
	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 32;
	return (uint32_t)h & ts->hash_mask;
}

struct tcp_cb *tcp_lookup(struct tcp_stack *ts, uint32_t laddr, uint16_t lport, uint32_t raddr,
			  uint16_t rport)
{
	struct tcp_cb *c = ts->hash[tuple_hash(ts, laddr, lport, raddr, rport)];

	for (; c; c = c->hnext)
		if (c->rport == rport && c->raddr == raddr && c->lport == lport &&
		    c->laddr == laddr)
			return c;
	return NULL;
}

static void hash_insert(struct tcp_stack *ts, struct tcp_cb *c)
{
	uint32_t b = tuple_hash(ts, c->laddr, c->lport, c->raddr, c->rport);

	c->hnext = ts->hash[b];
	ts->hash[b] = c;
	c->flags |= TCPF_HASHED;
}

void tcp_hash_insert(struct tcp_stack *ts, struct tcp_cb *c)
{
	hash_insert(ts, c);
}

static void hash_remove(struct tcp_stack *ts, struct tcp_cb *c)
{
	struct tcp_cb **pp;

	if (!(c->flags & TCPF_HASHED))
		return;
	pp = &ts->hash[tuple_hash(ts, c->laddr, c->lport, c->raddr, c->rport)];
	for (; *pp; pp = &(*pp)->hnext)
		if (*pp == c) {
			*pp = c->hnext;
			break;
		}
	c->hnext = NULL;
	c->flags &= ~TCPF_HASHED;
}

struct tcp_cb *tcp_listener_find(struct tcp_stack *ts, uint16_t lport)
{
	for (unsigned i = 0; i < ts->n_listeners; i++)
		if (ts->listeners[i]->lport == lport)
			return ts->listeners[i];
	return NULL;
}

struct tcp_listener_ext *tcp_lext(struct tcp_stack *ts, struct tcp_cb *l)
{
	for (unsigned i = 0; i < ts->n_listeners; i++)
		if (ts->listeners[i] == l)
			return &ts->lext[i];
	return NULL;
}

uint8_t tcp_pick_wscale(uint32_t bufsize)
{
	uint8_t ws = 0;

	while (ws < TCP_WSCALE_MAX && (bufsize >> ws) > 65535)
		ws++;
	return ws;
}

static void tw_unlink(struct tcp_stack *ts, struct tcp_cb *c)
{
	if (!c->tw_prev && ts->tw_head != c)
		return; /* not on the list */
	if (c->tw_prev)
		c->tw_prev->tw_next = c->tw_next;
	else
		ts->tw_head = c->tw_next;
	if (c->tw_next)
		c->tw_next->tw_prev = c->tw_prev;
	else
		ts->tw_tail = c->tw_prev;
	c->tw_next = c->tw_prev = NULL;
}

void tcp_tw_link(struct tcp_stack *ts, struct tcp_cb *c)
{
	tw_unlink(ts, c); /* a restarted TIME_WAIT moves to the tail */
	c->tw_prev = ts->tw_tail;
	c->tw_next = NULL;
	if (ts->tw_tail)
		ts->tw_tail->tw_next = c;
	else
		ts->tw_head = c;
	ts->tw_tail = c;
}

/* The pool is full: end the oldest TIME_WAIT early (as Linux does past
 * tcp_max_tw_buckets) rather than refuse a new connection. */
static bool tw_recycle_oldest(struct tcp_stack *ts)
{
	struct tcp_cb *c = ts->tw_head;

	/* One the app still holds (shut down, not closed) must stay valid. */
	while (c && !(c->flags & TCPF_APP_CLOSED))
		c = c->tw_next;
	if (!c)
		return false;
	MST_COUNT(ts->st, tcp_tw_pool_recycled);
	tcp_drop(ts, c, 0); /* app-closed: released now */
	return ts->free_list != NULL;
}

static struct tcp_cb *cb_alloc(struct tcp_stack *ts, uint32_t rxbuf, uint32_t txbuf,
			      const struct tcp_fifo_ops *fops)
{
	struct tcp_cb *c = ts->free_list;
	uint8_t *rx, *tx;
	void *cookie = NULL;

	if (!c && tw_recycle_oldest(ts))
		c = ts->free_list;
	if (!c)
		return NULL;
	if (fops) {
		cookie = fops->alloc(fops->ctx, c, &rx, &tx, rxbuf, txbuf);
		if (!cookie)
			return NULL;
	} else {
		rx = malloc((size_t)rxbuf + txbuf);
		if (!rx)
			return NULL;
		tx = rx + rxbuf;
	}
	ts->free_list = c->hnext;
	tcp_pool_taken(ts, c);
	memset(c, 0, sizeof(*c));
	c->rx.data = rx;
	c->rx.size = rxbuf;
	c->tx.data = tx;
	c->tx.size = txbuf;
	c->fops = fops;
	c->fcookie = cookie;
	ts->n_conns++;
	return c;
}

void tcp_release_fifos(struct tcp_cb *c)
{
	if (c->state != TCP_TIME_WAIT || !(c->flags & TCPF_APP_CLOSED) || fifo_used(&c->rx) ||
	    !c->rx.data)
		return;
	if (c->fops)
		c->fops->free(c->fops->ctx, c, c->fcookie);
	else
		free(c->rx.data);
	c->fops = NULL;
	c->fcookie = NULL;
	memset(&c->rx, 0, sizeof(c->rx));
	memset(&c->tx, 0, sizeof(c->tx));
}

static void cb_free(struct tcp_stack *ts, struct tcp_cb *c)
{
	if (c->fops)
		c->fops->free(c->fops->ctx, c, c->fcookie);
	else
		free(c->rx.data);
	memset(c, 0, sizeof(*c));
	c->hnext = ts->free_list;
	ts->free_list = c;
	ts->n_conns--;
	MST_COUNT(ts->st, tcp_closed);
}

struct tcp_cb *tcp_cb_new(struct tcp_stack *ts, uint32_t laddr, uint16_t lport, uint32_t raddr,
			  uint16_t rport, uint32_t rxbuf, uint32_t txbuf,
			  const struct tcp_fifo_ops *fops)
{
	struct tcp_cb *c = cb_alloc(ts, rxbuf, txbuf, fops);

	if (!c)
		return NULL;
	c->laddr = laddr;
	c->lport = lport;
	c->raddr = raddr;
	c->rport = rport;
	c->state = TCP_CLOSED;
	c->rto_ms = ts->conf.rto_initial_ms;
	c->adv_mss = (uint16_t)(ts->ns ? net_mtu(ts->ns) - 40 : 1460);
	c->mss = TCP_MSS_DEFAULT;
	c->rcv_wscale = ts->conf.wscale ? tcp_pick_wscale(rxbuf > ts->conf.rx_buf_max ? rxbuf : ts->conf.rx_buf_max) : 0;
	c->quickacks = TCP_QUICKACKS;
	c->challenge_tokens = (uint8_t)(ts->conf.challenge_ack_per_s > 255 ? 255 : ts->conf.challenge_ack_per_s);
	c->keepidle_s = ts->conf.keepidle_s;
	c->keepintvl_s = ts->conf.keepintvl_s;
	c->keepcnt = ts->conf.keepcnt;
	c->cc = ts->cc_default;
	{
		/* Per 4-tuple, not per incarnation (RFC 7323 §5.4): a reused
		 * tuple's timestamps keep growing, so the peer's PAWS accepts
		 * the new connection and rejects the old one's duplicates. */
		uint32_t tuple[3] = { laddr, raddr, (uint32_t)lport << 16 | rport };

		c->ts_offset = (uint32_t)tcp_siphash(&ts->secret, tuple, sizeof(tuple));
	}
	c->t_rtx.kind = TCP_T_RTX;
	c->t_delack.kind = TCP_T_DELACK;
	c->t_keep.kind = TCP_T_KEEP;
	c->last_rx_ns = ts->now_ns;
	if (ts->flow_fn) /* off: fl stays 0, nothing to export */
		c->fl.start_ns = ts->now_ns;
	hash_insert(ts, c);
	return c;
}

void tcp_set_state(struct tcp_stack *ts, struct tcp_cb *c, enum tcp_state st)
{
	if (st == TCP_ESTABLISHED && c->state != TCP_ESTABLISHED)
		MST_COUNT(ts->st, tcp_established);
	c->state = (uint8_t)st;
	if (st == TCP_TIME_WAIT) /* both FINs are through: the flow is over */
		tcp_flow_end(ts, c, TCP_CLOSE_fin);
}

uint32_t tcp_ts_now(const struct tcp_stack *ts, const struct tcp_cb *c)
{
	return (uint32_t)tcp_ms(ts->now_ns) + c->ts_offset;
}

void tcp_init_cc(struct tcp_stack *ts, struct tcp_cb *c)
{
	memset(&c->ccs, 0, sizeof(c->ccs));
	c->ccs.mss = c->mss;
	c->ccs.now_ns = ts->now_ns;
	c->cc->init(&c->ccs);
}

/* ---- events ---------------------------------------------------------- */

void tcp_event(struct tcp_stack *ts, struct tcp_cb *c, uint32_t ev)
{
	if (!c->events_pending) {
		c->dnext = ts->dirty;
		ts->dirty = c;
	}
	c->events_pending |= ev;
}

static void dirty_remove(struct tcp_stack *ts, struct tcp_cb *c)
{
	struct tcp_cb **pp;

	if (!c->events_pending)
		return;
	for (pp = &ts->dirty; *pp; pp = &(*pp)->dnext)
		if (*pp == c) {
			*pp = c->dnext;
			break;
		}
	c->events_pending = 0;
}

void tcp_flush_events(struct tcp_stack *ts)
{
	if (ts->flushing)
		return; /* a callback called back into us; the outer loop delivers */
	ts->flushing = true;
	while (ts->dirty) {
		struct tcp_cb *c = ts->dirty;
		uint32_t ev = c->events_pending;
		tcp_event_fn fn = c->ev_fn ? c->ev_fn : ts->default_fn;
		void *ctx = c->ev_fn ? c->ev_ctx : ts->default_ctx;

		ts->dirty = c->dnext;
		c->events_pending = 0;
		c->dnext = NULL;
		if (fn && !(c->flags & TCPF_APP_CLOSED))
			fn(ctx, c, ev);
	}
	ts->flushing = false;
}

/* ---- life cycle ------------------------------------------------------ */

static void accept_remove(struct tcp_stack *ts, struct tcp_cb *c)
{
	struct tcp_listener_ext *lx;
	struct tcp_cb **pp, *prev = NULL;

	if (!(c->flags & TCPF_IN_ACCEPTQ) || !c->listener)
		return;
	lx = tcp_lext(ts, c->listener);
	if (lx) {
		for (pp = &lx->aq_head; *pp; prev = *pp, pp = &(*pp)->aq_next)
			if (*pp == c) {
				*pp = c->aq_next;
				if (lx->aq_tail == c)
					lx->aq_tail = prev;
				lx->accept_len--;
				break;
			}
	}
	c->flags &= ~TCPF_IN_ACCEPTQ;
	c->aq_next = NULL;
}

static void release(struct tcp_stack *ts, struct tcp_cb *c)
{
	tw_unlink(ts, c);
	if (c->flags & TCPF_ACK_QUEUED) {
		struct tcp_cb **pp;

		for (pp = &ts->ack_list; *pp; pp = &(*pp)->anext)
			if (*pp == c) {
				*pp = c->anext;
				break;
			}
	}
	dirty_remove(ts, c);
	cb_free(ts, c);
}

void tcp_drop(struct tcp_stack *ts, struct tcp_cb *c, int err)
{
	tcp_flow_dropped(ts, c, err);
	if (c->state == TCP_SYN_RECEIVED && c->listener) {
		struct tcp_listener_ext *lx = tcp_lext(ts, c->listener);

		if (lx && lx->syn_queue)
			lx->syn_queue--;
	}
	tw_cancel(ts->wheel, &c->t_rtx);
	tw_cancel(ts->wheel, &c->t_delack);
	tw_cancel(ts->wheel, &c->t_keep);
	hash_remove(ts, c);
	c->state = TCP_CLOSED;
	if (err && !c->err)
		c->err = err;
	/* Not yet accepted: nobody holds it; out of the accept queue first. */
	if (c->flags & TCPF_IN_ACCEPTQ) {
		accept_remove(ts, c);
		release(ts, c);
		return;
	}
	/* Nobody will ever hold this handle: connections the app closed, and
	 * passive ones that were never accepted. */
	if ((c->flags & TCPF_APP_CLOSED) || ((c->flags & TCPF_PASSIVE) && !c->ev_fn && !c->user)) {
		release(ts, c);
		return;
	}
	tcp_event(ts, c, TCP_EV_CLOSED | TCP_EV_READABLE);
}

void tcp_accept_enqueue(struct tcp_stack *ts, struct tcp_cb *c)
{
	struct tcp_listener_ext *lx = tcp_lext(ts, c->listener);

	if (!lx)
		return;
	if (lx->syn_queue)
		lx->syn_queue--;
	c->aq_next = NULL;
	if (lx->aq_tail)
		lx->aq_tail->aq_next = c;
	else
		lx->aq_head = c;
	lx->aq_tail = c;
	lx->accept_len++;
	c->flags |= TCPF_IN_ACCEPTQ;
	tcp_event(ts, c->listener, TCP_EV_ACCEPT);
}

/* ---- API ------------------------------------------------------------- */

int tcp_listen(struct tcp_stack *ts, uint16_t port, int backlog, tcp_event_fn fn, void *ctx,
	       const struct tcp_fifo_ops *fops, struct tcp_cb **out)
{
	struct tcp_cb *l;
	uint16_t nport = htons(port);
	unsigned i;

	if (port == 0)
		return -EINVAL;
	if (tcp_listener_find(ts, nport))
		return -EADDRINUSE;
	if (ts->n_listeners == sizeof(ts->listeners) / sizeof(ts->listeners[0]))
		return -ENOSPC;
	l = ts->free_list;
	if (!l)
		return -ENOMEM;
	ts->free_list = l->hnext;
	tcp_pool_taken(ts, l);
	ts->n_conns++;
	memset(l, 0, sizeof(*l));
	l->state = TCP_LISTEN;
	l->lport = nport;
	l->laddr = net_ip(ts->ns);
	l->ev_fn = fn;
	l->ev_ctx = ctx;
	l->fops = fops; /* for its children; a listener has no FIFOs itself */
	l->t_rtx.kind = TCP_T_RTX;
	i = ts->n_listeners++;
	ts->listeners[i] = l;
	memset(&ts->lext[i], 0, sizeof(ts->lext[i]));
	if (backlog <= 0)
		backlog = 1;
	ts->lext[i].backlog = (uint16_t)(backlog > 65535 ? 65535 : backlog);
	*out = l;
	return 0;
}

int tcp_accept(struct tcp_stack *ts, struct tcp_cb *l, struct tcp_cb **out)
{
	struct tcp_listener_ext *lx;
	struct tcp_cb *c;

	if (!l || l->state != TCP_LISTEN)
		return -EINVAL;
	lx = tcp_lext(ts, l);
	if (!lx || !lx->aq_head)
		return -EAGAIN;
	c = lx->aq_head;
	lx->aq_head = c->aq_next;
	if (!lx->aq_head)
		lx->aq_tail = NULL;
	lx->accept_len--;
	c->aq_next = NULL;
	c->flags &= ~TCPF_IN_ACCEPTQ;
	c->ev_fn = l->ev_fn;
	c->ev_ctx = l->ev_ctx;
	c->listener = NULL;
	*out = c;
	/* Data may already be waiting. */
	if (fifo_used(&c->rx) || (c->flags & TCPF_FIN_RCVD))
		tcp_event(ts, c, TCP_EV_READABLE);
	tcp_event(ts, c, TCP_EV_WRITABLE);
	tcp_flush_events(ts);
	return 0;
}

/*
 * May an active open take over our TIME_WAIT connection on the same tuple?
 * RFC 6191 with timestamps, as Linux's tcp_tw_reuse: only if timestamps
 * were on (the peer's PAWS then rejects the old incarnation's duplicates,
 * ours reject the peer's) and the last segment is at least
 * tw_reuse_delay_ms (never under 1 ms) old, so the new connection's TSval
 * (same per-tuple offset, later clock) is beyond every old one. The ISS is
 * moved past the old snd_nxt by tcp_connect().
 */
static bool tw_reusable(const struct tcp_stack *ts, const struct tcp_cb *old)
{
	uint64_t last = old->last_rx_ns > old->ts_recent_ns ? old->last_rx_ns : old->ts_recent_ns;
	uint64_t delay = (uint64_t)(ts->conf.tw_reuse_delay_ms ? ts->conf.tw_reuse_delay_ms : 1) *
			 1000000u;

	/* ... and only one the app has closed: a handle it still holds must
	 * stay valid (shutdown() then TIME_WAIT before close()). */
	return old->state == TCP_TIME_WAIT && (old->flags & TCPF_TS) &&
	       (old->flags & TCPF_APP_CLOSED) && ts->now_ns >= last + delay;
}

/* Is the tuple free for an active open? A reusable TIME_WAIT is ended
 * here; its snd_nxt goes to *old_nxt (else *old_nxt is untouched). */
static bool tuple_free(struct tcp_stack *ts, uint32_t laddr, uint16_t lport, uint32_t raddr,
		       uint16_t rport, uint32_t *old_nxt, bool *reused)
{
	struct tcp_cb *old = tcp_lookup(ts, laddr, lport, raddr, rport);

	if (!old)
		return true;
	if (!tw_reusable(ts, old))
		return false;
	MST_COUNT(ts->st, tcp_tw_reused_connect);
	*old_nxt = old->snd_max;
	*reused = true;
	tcp_drop(ts, old, 0); /* app-closed: freed now */
	return true;
}

/*
 * RFC 6056 §3.3.4, Algorithm 4 ("double-hash"): the search starts at a
 * keyed hash of (laddr, raddr, rport) plus a counter of the table slot
 * that destination hashes to, so successive opens to one destination walk
 * the range in order (the port least recently used comes first: its
 * TIME_WAIT is the oldest) while the start is unpredictable to others and
 * different destinations do not share a cursor. A port is taken if it is
 * no listener's, the engine's steering filter accepts it (with several
 * engines, a port whose replies hash to this engine) and its tuple is free
 * or a reusable TIME_WAIT. 0 when no port in the range qualifies.
 */
static uint16_t pick_ephemeral(struct tcp_stack *ts, uint32_t laddr, uint32_t raddr,
			       uint16_t rport, uint32_t *old_nxt, bool *reused)
{
	uint32_t key[4] = { laddr, raddr, rport, 0x65706830 /* "eph0" */ };
	uint64_t h = tcp_siphash(&ts->secret, key, sizeof(key));
	uint32_t offset = (uint32_t)h;
	uint32_t *next = &ts->eph_table[(h >> 32) & (TCP_EPH_TABLE - 1)];
	uint32_t n = (uint32_t)ts->conf.eph_hi - ts->conf.eph_lo + 1;

	for (uint32_t count = n; count > 0; count--) {
		uint16_t p = htons((uint16_t)(ts->conf.eph_lo + (offset + (*next)++) % n));

		if (tcp_listener_find(ts, p) ||
		    (ts->port_ok && !ts->port_ok(ts->port_ok_ctx, raddr, rport, p)))
			continue;
		if (tuple_free(ts, laddr, p, raddr, rport, old_nxt, reused))
			return p;
	}
	return 0;
}

int tcp_connect(struct tcp_stack *ts, uint32_t dst, uint16_t dport, uint16_t lport,
		tcp_event_fn fn, void *ctx, const struct tcp_fifo_ops *fops, struct tcp_cb **out)
{
	return tcp_connect_mss(ts, dst, dport, lport, 0, fn, ctx, fops, out);
}

int tcp_connect_mss(struct tcp_stack *ts, uint32_t dst, uint16_t dport, uint16_t lport,
		    uint16_t user_mss, tcp_event_fn fn, void *ctx, const struct tcp_fifo_ops *fops,
		    struct tcp_cb **out)
{
	uint32_t laddr = net_ip(ts->ns);
	uint16_t ndport = htons(dport), nlport;
	uint32_t old_nxt = 0, isn;
	bool reused = false;
	struct tcp_cb *c;

	if (dport == 0 || dst == 0 || dst == 0xffffffffu || (ntohl(dst) >> 28) == 0xe)
		return -EINVAL;
	if (lport) {
		nlport = htons(lport);
		if (!tuple_free(ts, laddr, nlport, dst, ndport, &old_nxt, &reused))
			return -EADDRINUSE;
	} else {
		nlport = pick_ephemeral(ts, laddr, dst, ndport, &old_nxt, &reused);
		if (!nlport) {
			MST_COUNT(ts->st, tcp_connect_no_port);
			return -EADDRNOTAVAIL;
		}
	}
	c = tcp_cb_new(ts, laddr, nlport, dst, ndport, ts->conf.rx_buf, ts->conf.tx_buf, fops);
	if (!c)
		return -ENOMEM;
	c->ev_fn = fn;
	c->ev_ctx = ctx;
	if (user_mss && user_mss < c->adv_mss)
		c->adv_mss = user_mss; /* TCP_MAXSEG before connect: the SYN's MSS and ours */
	isn = tcp_isn(&ts->secret, laddr, nlport, dst, ndport, ts->now_ns);
	/* A reused tuple starts beyond the old sequence space and its last
	 * window (RFC 6191 §2; Linux: tw_snd_nxt + 65535 + 2). */
	if (reused && SEQ_LEQ(isn, old_nxt + 65537u))
		isn = old_nxt + 65537u;
	c->iss = isn;
	c->snd_una = c->iss;
	c->snd_nxt = c->iss;
	c->snd_max = c->iss;
	tcp_set_state(ts, c, TCP_SYN_SENT);
	MST_COUNT(ts->st, tcp_active_opens);
	tcp_send_syn(ts, c);
	*out = c;
	return 0;
}

static int conn_error(const struct tcp_cb *c)
{
	if (c->err)
		return -c->err;
	return c->state == TCP_CLOSED ? -ENOTCONN : 0;
}

size_t tcp_readable(const struct tcp_cb *c)
{
	return fifo_used(&c->rx);
}

size_t tcp_writable(const struct tcp_cb *c)
{
	if (c->flags & TCPF_SHUT_WR)
		return 0;
	return tcp_tx_room(c);
}

ssize_t tcp_send(struct tcp_stack *ts, struct tcp_cb *c, const void *buf, size_t len)
{
	uint32_t n;
	int err;

	if (c->state == TCP_LISTEN)
		return -EINVAL;
	if (c->flags & TCPF_SHUT_WR)
		return -EPIPE;
	err = conn_error(c);
	if (err)
		return err;
	switch ((enum tcp_state)c->state) {
	case TCP_ESTABLISHED:
	case TCP_CLOSE_WAIT:
		break;
	case TCP_SYN_SENT:
	case TCP_SYN_RECEIVED:
		return -ENOTCONN;
	default:
		return -EPIPE;
	}
	if (len == 0)
		return 0;
	n = tcp_tx_room(c); /* SO_SNDBUF: what may be queued, sent or not */
	n = fifo_write(&c->tx, buf, len > n ? n : (uint32_t)len);
	if (n == 0)
		return -EAGAIN;
	tcp_output(ts, c);
	tcp_flush_events(ts);
	return n;
}

/* Window update after the app consumed n bytes: tell the peer once the
 * window opened by 2 MSS or half the buffer from what it last saw (RFC 9293
 * §3.8.6.2.2, receiver SWS avoidance). */
static void window_update(struct tcp_stack *ts, struct tcp_cb *c, uint32_t n)
{
	uint32_t adv_left, now_wnd, half;

	if (!n || c->state < TCP_ESTABLISHED || c->state == TCP_TIME_WAIT ||
	    (c->flags & TCPF_FIN_RCVD))
		return;
	adv_left = c->rcv_adv - c->rcv_nxt;
	now_wnd = tcp_rcv_window(c);
	half = (c->rcvbuf && c->rcvbuf < c->rx.size ? c->rcvbuf : c->rx.size) / 2;
	if (now_wnd >= adv_left + 2u * c->adv_mss || now_wnd >= adv_left + half ||
	    (adv_left < c->adv_mss && now_wnd >= c->adv_mss))
		tcp_send_ack(ts, c);
}

ssize_t tcp_recv(struct tcp_stack *ts, struct tcp_cb *c, void *buf, size_t len)
{
	uint32_t n;

	if (c->state == TCP_LISTEN)
		return -EINVAL;
	if (fifo_used(&c->rx) == 0) {
		if (c->flags & (TCPF_FIN_RCVD | TCPF_SHUT_RD))
			return 0;
		if (c->err)
			return -c->err;
		if (c->state == TCP_CLOSED)
			return 0;
		return -EAGAIN;
	}
	n = fifo_read(&c->rx, buf, len > UINT32_MAX ? UINT32_MAX : (uint32_t)len);
	window_update(ts, c, n);
	tcp_flush_events(ts);
	return n;
}

int tcp_rx_consumed(struct tcp_stack *ts, struct tcp_cb *c, uint32_t n)
{
	if (c->state == TCP_LISTEN || n > fifo_used(&c->rx))
		return -EINVAL;
	c->rx.head += n;
	window_update(ts, c, n);
	tcp_flush_events(ts);
	return 0;
}

int tcp_tx_produced(struct tcp_stack *ts, struct tcp_cb *c, uint32_t n)
{
	int err;

	if (c->state == TCP_LISTEN || n > fifo_free(&c->tx))
		return -EINVAL;
	if (c->flags & TCPF_SHUT_WR)
		return -EPIPE;
	err = conn_error(c);
	if (err)
		return err;
	if (c->state != TCP_ESTABLISHED && c->state != TCP_CLOSE_WAIT)
		return c->state < TCP_ESTABLISHED ? -ENOTCONN : -EPIPE;
	c->tx.tail += n;
	tcp_output(ts, c);
	tcp_flush_events(ts);
	return 0;
}

void tcp_fifo_state(const struct tcp_cb *c, uint32_t *rx_head, uint32_t *rx_tail,
		    uint32_t *tx_head, uint32_t *tx_tail)
{
	*rx_head = c->rx.head;
	*rx_tail = c->rx.tail;
	*tx_head = c->tx.head;
	*tx_tail = c->tx.tail;
}

void *tcp_fifo_cookie(const struct tcp_cb *c)
{
	return c->fcookie;
}

bool tcp_eof(const struct tcp_cb *c)
{
	return (c->flags & TCPF_FIN_RCVD) != 0;
}

int tcp_error(const struct tcp_cb *c)
{
	return c->err;
}

unsigned tcp_accept_pending(struct tcp_stack *ts, struct tcp_cb *l)
{
	struct tcp_listener_ext *lx = tcp_lext(ts, l);

	return lx ? lx->accept_len : 0;
}

int tcp_shutdown(struct tcp_stack *ts, struct tcp_cb *c, int how)
{
	if (how < 0 || how > 2)
		return -EINVAL;
	if (c->state == TCP_LISTEN || c->state == TCP_CLOSED || c->state == TCP_SYN_SENT)
		return c->err ? -c->err : -ENOTCONN;
	if (how == SHUT_RD || how == SHUT_RDWR)
		c->flags |= TCPF_SHUT_RD;
	if ((how == SHUT_WR || how == SHUT_RDWR) && !(c->flags & TCPF_SHUT_WR)) {
		c->flags |= TCPF_SHUT_WR;
		/* In SYN_RECEIVED the FIN waits for the handshake (established()). */
		if (c->state == TCP_ESTABLISHED)
			tcp_set_state(ts, c, TCP_FIN_WAIT_1);
		else if (c->state == TCP_CLOSE_WAIT)
			tcp_set_state(ts, c, TCP_LAST_ACK);
		tcp_output(ts, c);
	}
	tcp_flush_events(ts);
	return 0;
}

static void listener_close(struct tcp_stack *ts, struct tcp_cb *l)
{
	unsigned i;

	/* Children not yet accepted die with their listener. */
	for (uint32_t k = 0; k < ts->conf.max_conns; k++) {
		struct tcp_cb *c = &ts->pool[k];

		if (c->listener == l && c->state != TCP_CLOSED && c->rx.data) {
			c->flags |= TCPF_APP_CLOSED;
			accept_remove(ts, c);
			tcp_send_reset(ts, c);
			tcp_drop(ts, c, ECONNABORTED);
		}
	}
	for (i = 0; i < ts->n_listeners; i++)
		if (ts->listeners[i] == l)
			break;
	if (i < ts->n_listeners) {
		ts->n_listeners--;
		ts->listeners[i] = ts->listeners[ts->n_listeners];
		ts->lext[i] = ts->lext[ts->n_listeners];
	}
	dirty_remove(ts, l);
	memset(l, 0, sizeof(*l));
	l->hnext = ts->free_list;
	ts->free_list = l;
	ts->n_conns--;
}

void tcp_abort(struct tcp_stack *ts, struct tcp_cb *c)
{
	if (c->state == TCP_LISTEN) {
		listener_close(ts, c);
		return;
	}
	c->flags |= TCPF_APP_CLOSED;
	tcp_set_close_reason(c, TCP_CLOSE_app_abort);
	if (c->state != TCP_CLOSED && c->state != TCP_LISTEN && c->state != TCP_SYN_SENT &&
	    c->state != TCP_TIME_WAIT)
		tcp_send_reset(ts, c);
	if (c->state == TCP_CLOSED && !(c->flags & TCPF_HASHED)) {
		release(ts, c);
		return;
	}
	tcp_drop(ts, c, 0);
	tcp_flush_events(ts);
}

void tcp_close(struct tcp_stack *ts, struct tcp_cb *c)
{
	if (c->state == TCP_LISTEN) {
		listener_close(ts, c);
		return;
	}
	if (c->state == TCP_CLOSED) {
		c->flags |= TCPF_APP_CLOSED;
		if (!(c->flags & TCPF_HASHED))
			release(ts, c);
		else
			tcp_drop(ts, c, 0);
		return;
	}
	/* Unread data or SO_LINGER{1,0}: reset (RFC 9293 §3.10.4, as Linux). */
	if ((c->flags & TCPF_LINGER0) || fifo_used(&c->rx) || c->state == TCP_SYN_SENT) {
		if (!(c->flags & TCPF_LINGER0) && fifo_used(&c->rx))
			tcp_set_close_reason(c, TCP_CLOSE_unread_data);
		tcp_abort(ts, c);
		return;
	}
	c->flags |= TCPF_APP_CLOSED | TCPF_SHUT_RD;
	tcp_release_fifos(c); /* closed in TIME_WAIT */
	if (!(c->flags & TCPF_SHUT_WR)) {
		c->flags |= TCPF_SHUT_WR;
		/* In SYN_RECEIVED the FIN waits for the handshake (established()). */
		if (c->state == TCP_ESTABLISHED)
			tcp_set_state(ts, c, TCP_FIN_WAIT_1);
		else if (c->state == TCP_CLOSE_WAIT)
			tcp_set_state(ts, c, TCP_LAST_ACK);
	}
	tcp_output(ts, c);
	/* An orphan must not wait forever for the peer's FIN (Linux's
	 * tcp_fin_timeout): the keep timer bounds FIN_WAIT_2 and friends. */
	if (c->state != TCP_CLOSED && c->state != TCP_TIME_WAIT)
		tcp_arm_keepalive(ts, c);
	tcp_flush_events(ts);
}

static void set_buf_limit(const struct tcp_stack *ts, const struct tcp_cb *c, uint32_t *lim,
			  uint32_t fifo_size, int val)
{
	uint32_t v = (uint32_t)val; /* negative: huge, clamped below */
	uint32_t max = fifo_size ? fifo_size : (lim == &c->rcvbuf ? ts->conf.rx_buf : ts->conf.tx_buf);

	if (v < TCP_BUF_MIN)
		v = TCP_BUF_MIN;
	if (v > max)
		v = max;
	*lim = v == fifo_size ? 0 : v;
}

void tcp_inherit_bufs(struct tcp_cb *c, const struct tcp_cb *l)
{
	c->rcvbuf = l->rcvbuf && l->rcvbuf < c->rx.size ? l->rcvbuf : 0;
	c->sndbuf = l->sndbuf && l->sndbuf < c->tx.size ? l->sndbuf : 0;
	/* TCP_MAXSEG on the listener: the SYN-ACK's MSS and ours (as Linux). */
	if (l->adv_mss && l->adv_mss < c->adv_mss)
		c->adv_mss = l->adv_mss;
}

int tcp_setopt(struct tcp_stack *ts, struct tcp_cb *c, enum tcp_sockopt opt, int val)
{
	switch (opt) {
	case TCP_SO_NODELAY:
		if (val)
			c->flags |= TCPF_NODELAY;
		else
			c->flags &= ~TCPF_NODELAY;
		if (val && c->state >= TCP_ESTABLISHED)
			tcp_output(ts, c);
		return 0;
	case TCP_SO_KEEPALIVE:
		if (val)
			c->flags |= TCPF_KEEPALIVE;
		else
			c->flags &= ~TCPF_KEEPALIVE;
		if (c->state == TCP_ESTABLISHED)
			tcp_arm_keepalive(ts, c);
		return 0;
	case TCP_SO_KEEPIDLE:
		if (val < 1 || val > 32767)
			return -EINVAL;
		c->keepidle_s = (uint32_t)val;
		/* As Linux: a new idle time applies to a running keepalive. */
		if (c->state == TCP_ESTABLISHED && (c->flags & TCPF_KEEPALIVE))
			tcp_arm_keepalive(ts, c);
		return 0;
	case TCP_SO_KEEPINTVL:
		if (val < 1 || val > 32767)
			return -EINVAL;
		c->keepintvl_s = (uint32_t)val;
		return 0;
	case TCP_SO_KEEPCNT:
		if (val < 1 || val > 127)
			return -EINVAL;
		c->keepcnt = (uint32_t)val;
		return 0;
	case TCP_SO_MAXSEG:
		if (val < TCP_MSS_MIN || val > 65495)
			return -EINVAL;
		if (c->state != TCP_CLOSED && c->state != TCP_LISTEN)
			return -EISCONN;
		c->adv_mss = (uint16_t)val;
		return 0;
	case TCP_SO_LINGER0:
		if (val)
			c->flags |= TCPF_LINGER0;
		else
			c->flags &= ~TCPF_LINGER0;
		return 0;
	case TCP_SO_RCVBUF:
	case TCP_SO_SNDBUF:
		/* Per connection, the stack default untouched. The FIFO was sized
		 * when the connection was made (for an app it is a slot of its
		 * segment), so the option sets how much of it is used: clamped
		 * to [TCP_BUF_MIN, FIFO size] as Linux clamps to its minimum
		 * and wmem_max/rmem_max (a negative int is "as large as
		 * possible", as Linux reads it unsigned). A listener's values go
		 * to the connections it makes. */
		set_buf_limit(ts, c, opt == TCP_SO_RCVBUF ? &c->rcvbuf : &c->sndbuf,
			      opt == TCP_SO_RCVBUF ? c->rx.size : c->tx.size, val);
		if (opt == TCP_SO_RCVBUF && c->state >= TCP_ESTABLISHED)
			window_update(ts, c, 1); /* a larger window: say so */
		if (opt == TCP_SO_SNDBUF && tcp_tx_room(c) && c->state >= TCP_ESTABLISHED)
			tcp_event(ts, c, TCP_EV_WRITABLE);
		tcp_flush_events(ts);
		return 0;
	case TCP_SO_CONGESTION:
	case TCP_SO_ERROR:
	case TCP_SO_STATE:
		return -ENOPROTOOPT;
	}
	return -ENOPROTOOPT;
}

/* The buffer in effect: the limit if any, else the FIFO (a listener has
 * none: what its connections get). */
static uint32_t buf_of(uint32_t lim, uint32_t fifo_size, uint32_t conf_size)
{
	uint32_t size = fifo_size ? fifo_size : conf_size;

	return lim && lim < size ? lim : size;
}

int tcp_getopt(struct tcp_stack *ts, struct tcp_cb *c, enum tcp_sockopt opt, int *val)
{
	switch (opt) {
	case TCP_SO_NODELAY:
		*val = !!(c->flags & TCPF_NODELAY);
		return 0;
	case TCP_SO_KEEPALIVE:
		*val = !!(c->flags & TCPF_KEEPALIVE);
		return 0;
	case TCP_SO_KEEPIDLE:
		*val = (int)c->keepidle_s;
		return 0;
	case TCP_SO_KEEPINTVL:
		*val = (int)c->keepintvl_s;
		return 0;
	case TCP_SO_KEEPCNT:
		*val = (int)c->keepcnt;
		return 0;
	case TCP_SO_MAXSEG:
		*val = c->state >= TCP_ESTABLISHED ? c->mss : c->adv_mss;
		return 0;
	case TCP_SO_RCVBUF:
		*val = (int)buf_of(c->rcvbuf, c->rx.size, ts->conf.rx_buf);
		return 0;
	case TCP_SO_SNDBUF:
		*val = (int)buf_of(c->sndbuf, c->tx.size, ts->conf.tx_buf);
		return 0;
	case TCP_SO_ERROR:
		*val = c->err;
		c->err = 0;
		return 0;
	case TCP_SO_STATE:
		*val = c->state;
		return 0;
	case TCP_SO_LINGER0:
		*val = !!(c->flags & TCPF_LINGER0);
		return 0;
	case TCP_SO_CONGESTION:
		return -ENOPROTOOPT;
	}
	return -ENOPROTOOPT;
}

int tcp_set_cc(struct tcp_stack *ts, struct tcp_cb *c, const char *name)
{
	const struct tcp_cc_ops *cc = tcp_cc_lookup(name);

	if (!cc)
		return -ENOENT;
	c->cc = cc;
	if (c->state >= TCP_ESTABLISHED)
		tcp_init_cc(ts, c);
	return 0;
}

const char *tcp_get_cc(const struct tcp_cb *c)
{
	return c->cc ? c->cc->name : "none";
}

void tcp_get_info(const struct tcp_cb *c, struct tcp_conn_info *o)
{
	memset(o, 0, sizeof(*o));
	o->state = (enum tcp_state)c->state;
	o->laddr = c->laddr;
	o->raddr = c->raddr;
	o->lport = ntohs(c->lport);
	o->rport = ntohs(c->rport);
	o->snd_una = c->snd_una;
	o->snd_nxt = c->snd_nxt;
	o->snd_wnd = c->snd_wnd;
	o->rcv_nxt = c->rcv_nxt;
	o->rcv_wnd = tcp_rcv_window(c);
	o->cwnd = c->ccs.cwnd;
	o->ssthresh = c->ccs.ssthresh;
	o->srtt_us = c->srtt_us;
	o->rttvar_us = c->rttvar_us;
	o->rto_ms = c->rto_ms;
	o->mss = c->mss;
	o->snd_wscale = c->snd_wscale;
	o->rcv_wscale = c->rcv_wscale;
	o->sack = !!(c->flags & TCPF_SACK);
	o->timestamps = !!(c->flags & TCPF_TS);
	o->retransmits = c->retransmits;
	o->bytes_acked = c->bytes_acked;
	o->bytes_received = c->bytes_received;
}

enum tcp_state tcp_state_of(const struct tcp_cb *c)
{
	return (enum tcp_state)c->state;
}

void *tcp_user(const struct tcp_cb *c)
{
	return c->user;
}

void tcp_set_user(struct tcp_cb *c, void *user)
{
	c->user = user;
}

unsigned tcp_conn_count(const struct tcp_stack *ts)
{
	return ts->n_conns - ts->n_listeners;
}

size_t tcp_cb_size(void)
{
	return sizeof(struct tcp_cb);
}

int tcp_foreach(struct tcp_stack *ts, int (*fn)(struct tcp_cb *c, void *arg), void *arg)
{
	for (uint32_t b = 0; b <= ts->hash_mask; b++)
		for (struct tcp_cb *c = ts->hash[b], *n; c; c = n) {
			int rc;

			n = c->hnext;
			rc = fn(c, arg);
			if (rc)
				return rc;
		}
	return 0;
}
