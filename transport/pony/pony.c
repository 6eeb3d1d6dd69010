/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Pony core: instance, pools, flows, timers (docs/pony.md).
 *
 * Entry points: pony_create() sizes every pool once; pony_input()
 * (pony_in.c) and pony_send()/pony_read() (pony_out.c) do the per-packet
 * work; pony_poll() runs the timer scan (at most every PONY_SCAN_NS: RTO,
 * idle teardown, READ watchdog), pushes flows that could not transmit and
 * flushes delayed ACKs.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>

#include "transport/pony/pony_priv.h"

void pony_conf_defaults(struct pony_conf *c)
{
	memset(c, 0, sizeof(*c));
	c->udp_port = PONY_DEFAULT_PORT;
	c->mtu = 1500;
	c->max_msg = PONY_DEFAULT_MAX_MSG;
	c->max_flows = 256;
	c->max_msgs = 4096;
	c->max_streams = 1024;
	c->window_pkts = 512;
	c->rto_min_us = 1000;
	c->rto_max_us = 200000;
	c->max_retries = 12;
	c->idle_timeout_ms = 30000;
	c->rx_stall_ms = 10000;
	c->cc_target_us = 100;
	c->cc_ai_milli = 1000;
	c->cc_beta_milli = 800;
	c->cc_max_mdf_milli = 500;
	c->cc_init_cwnd = 64;
	c->cc_fs_range_us = 500;
	c->cc_fs_max_cwnd = 64;
}

static uint32_t pow2_at_least(uint32_t n)
{
	uint32_t p = 1;

	while (p < n)
		p <<= 1;
	return p;
}

static bool conf_ok(const struct pony_conf *c)
{
	return c->mtu >= 256 && c->mtu <= 9000 && c->max_msg > 0 && c->max_flows > 0 &&
	       c->max_flows <= (1u << 20) && c->max_msgs > 0 && c->max_msgs <= (1u << 24) &&
	       c->max_streams > 0 && c->window_pkts >= 1 && c->window_pkts <= (1u << 16) &&
	       c->rto_min_us > 0 && c->rto_max_us >= c->rto_min_us && c->rto_max_us <= 4000000 &&
	       c->cc_init_cwnd >= 1 && c->cc_max_mdf_milli < 1000 && c->idle_timeout_ms > 0 &&
	       c->cc_fs_max_cwnd >= 2 && c->cc_fs_max_cwnd <= (1u << 20) &&
	       c->cc_fs_range_us <= 10000000 && c->rx_stall_ms > 0 &&
	       c->local_reserve < c->max_msgs && c->peer_share <= c->max_msgs;
}

/* ---- keyed hash: SipHash-2-4 (Aumasson, Bernstein) of two words ---- */

static inline uint64_t rotl64(uint64_t x, int b) { return x << b | x >> (64 - b); }

#define SIPROUND(v0, v1, v2, v3)                                                  \
	do {                                                                      \
		v0 += v1; v1 = rotl64(v1, 13); v1 ^= v0; v0 = rotl64(v0, 32);     \
		v2 += v3; v3 = rotl64(v3, 16); v3 ^= v2;                          \
		v0 += v3; v3 = rotl64(v3, 21); v3 ^= v0;                          \
		v2 += v1; v1 = rotl64(v1, 17); v1 ^= v2; v2 = rotl64(v2, 32);     \
	} while (0)

static uint64_t siphash2(const uint64_t k[2], uint64_t m0, uint64_t m1)
{
	uint64_t v0 = k[0] ^ 0x736f6d6570736575ull, v1 = k[1] ^ 0x646f72616e646f6dull;
	uint64_t v2 = k[0] ^ 0x6c7967656e657261ull, v3 = k[1] ^ 0x7465646279746573ull;
	uint64_t m[3] = { m0, m1, 16ull << 56 };

	for (int i = 0; i < 3; i++) {
		v3 ^= m[i];
		SIPROUND(v0, v1, v2, v3);
		SIPROUND(v0, v1, v2, v3);
		v0 ^= m[i];
	}
	v2 ^= 0xff;
	for (int i = 0; i < 4; i++)
		SIPROUND(v0, v1, v2, v3);
	return v0 ^ v1 ^ v2 ^ v3;
}

/* Address validation (docs/pony.md, "Address validation"): a token says
 * "we sent this to peer, for its incarnation epoch, at this time". It is
 * the issue time in ticks of 2^24 ns (~16.8 ms; 24 bits, wrapping every
 * ~78 h) above a 40-bit MAC of (peer, epoch, tick) under our key: nobody
 * who did not receive it can make one but by trying ~2^40 of them. */
#define TOKEN_TICK_SHIFT 24
#define TOKEN_MAC_BITS 40
#define TOKEN_MAC_MASK ((1ull << TOKEN_MAC_BITS) - 1)

static uint64_t token_mac(const struct pony *py, uint32_t peer, uint32_t epoch, uint32_t tick)
{
	return siphash2(py->key, (uint64_t)peer << 32 | epoch, 0x746f6b656e000000ull | tick) &
	       TOKEN_MAC_MASK;
}

uint64_t pony_token(const struct pony *py, uint32_t peer, uint32_t epoch, uint64_t now)
{
	uint32_t tick = (uint32_t)(now >> TOKEN_TICK_SHIFT) & 0xffffff;

	return (uint64_t)tick << TOKEN_MAC_BITS | token_mac(py, peer, epoch, tick);
}

bool pony_token_ok(const struct pony *py, uint32_t peer, uint32_t epoch, uint64_t token,
		   uint64_t now)
{
	uint32_t tick = (uint32_t)(token >> TOKEN_MAC_BITS);
	uint32_t age = ((uint32_t)(now >> TOKEN_TICK_SHIFT) - tick) & 0xffffff; /* mod 2^24 */
	uint64_t d = token_mac(py, peer, epoch, tick) ^ (token & TOKEN_MAC_MASK);

	return age <= PONY_TOKEN_LIFE_MS * 1000000ull >> TOKEN_TICK_SHIFT && !d;
}

static bool ht_init(struct pony_ht *ht, uint32_t n)
{
	uint32_t nb = pow2_at_least(n * 2);

	ht->mask = nb - 1;
	ht->head = malloc(nb * sizeof(uint32_t));
	if (!ht->head)
		return false;
	memset(ht->head, 0xff, nb * sizeof(uint32_t));
	return true;
}

struct pony *pony_create(const struct pony_conf *conf, const struct pony_io *io,
			 struct mst_stats *stats)
{
	struct pony *py;
	uint32_t nf, nm, ns, words;

	if (!conf || !io || !stats || !io->alloc || !io->free || !io->output || !conf_ok(conf)) {
		errno = EINVAL;
		return NULL;
	}
	py = calloc(1, sizeof(*py));
	if (!py)
		goto out_nomem;
	py->conf = *conf;
	/* At create, not per packet: may wait once for the kernel's pool. */
	if (getrandom(py->key, sizeof(py->key), 0) != (ssize_t)sizeof(py->key)) {
		free(py);
		errno = EAGAIN;
		return NULL;
	}
	if (!py->conf.peer_share)
		py->conf.peer_share = conf->max_msgs / 8 ? conf->max_msgs / 8 : 1;
	if (!conf->local_reserve)
		py->conf.local_reserve = conf->max_msgs / 4;
	py->io = *io;
	py->st = stats;
	py->win = pow2_at_least(conf->window_pkts < 64 ? 64 : conf->window_pkts);
	py->win_mask = py->win - 1;
	py->seg = conf->mtu - PONY_IP_UDP_LEN - PONY_DATA_HLEN;
	py->fs_sqrt_max = isqrt64((uint64_t)conf->cc_fs_max_cwnd * 1000000);
	nf = conf->max_flows;
	nm = conf->max_msgs;
	ns = nm + 2 * nf;
	words = py->win / 64;
	py->flows = calloc(nf, sizeof(*py->flows));
	py->active = calloc(nf, sizeof(uint32_t));
	py->ready = calloc(nf, sizeof(uint32_t));
	py->acks = calloc(nf, sizeof(uint32_t));
	py->msgs = calloc(nm, sizeof(*py->msgs));
	py->streams = calloc(ns, sizeof(*py->streams));
	py->mem = calloc((size_t)nf, (size_t)py->win * sizeof(struct pony_slot) +
					   (size_t)words * sizeof(uint64_t));
	if (!py->flows || !py->active || !py->ready || !py->acks || !py->msgs || !py->streams ||
	    !py->mem || !ht_init(&py->flow_ht, nf) || !ht_init(&py->msg_ht, nm) ||
	    !ht_init(&py->stream_ht, nm))
		goto out_free;
	for (uint32_t i = 0; i < nf; i++) {
		uint8_t *base = (uint8_t *)py->mem +
				(size_t)i * ((size_t)py->win * sizeof(struct pony_slot) +
					     (size_t)words * sizeof(uint64_t));

		py->flows[i].slots = (struct pony_slot *)base;
		py->flows[i].rcv_map = (uint64_t *)(base + (size_t)py->win * sizeof(struct pony_slot));
		py->flows[i].hnext = i + 1 < nf ? i + 1 : PONY_NONE; /* free list */
		py->flows[i].pos = PONY_NONE;
	}
	py->flow_free = 0;
	for (uint32_t i = 0; i < nm; i++) {
		py->msgs[i].next = i + 1 < nm ? i + 1 : PONY_NONE;
		py->msgs[i].kind = MSG_FREE;
	}
	py->msg_free = 0;
	for (uint32_t i = 0; i < nm; i++)
		py->streams[i].hnext = i + 1 < nm ? i + 1 : PONY_NONE;
	py->stream_free = 0;
	py->lru_head = py->lru_tail = PONY_NONE;
	py->done_head = PONY_NONE;
	return py;

out_free:
	pony_destroy(py);
out_nomem:
	errno = ENOMEM;
	return NULL;
}

void pony_destroy(struct pony *py)
{
	if (!py)
		return;
	pony_import_free(py);
	free(py->flow_ht.head);
	free(py->msg_ht.head);
	free(py->stream_ht.head);
	free(py->mem);
	free(py->streams);
	free(py->msgs);
	free(py->acks);
	free(py->ready);
	free(py->active);
	free(py->flows);
	free(py);
}

/* ---- messages ---- */

/* A message from the pool, hashed and on f's list; NULL when the pool is empty. */
struct pony_msg *pony_msg_alloc(struct pony *py, struct pony_flow *f, uint8_t kind, uint32_t id,
				uint16_t src_svc, uint16_t dst_svc, uint32_t len)
{
	uint32_t mi = py->msg_free, fi = flow_idx(py, f), b;
	struct pony_msg *m;

	if (mi == PONY_NONE)
		return NULL;
	m = &py->msgs[mi];
	py->msg_free = m->next;
	memset(m, 0, sizeof(*m));
	m->kind = kind;
	m->flow = fi;
	m->id = id;
	m->src_svc = src_svc;
	m->dst_svc = dst_svc;
	m->len = len;
	m->next = m->stream = PONY_NONE;
	b = msg_hash(fi, id, kind == MSG_RX) & py->msg_ht.mask;
	m->hnext = py->msg_ht.head[b];
	py->msg_ht.head[b] = mi;
	/* flow's message list: cleanup on failure without scanning the pool */
	m->fprev = PONY_NONE;
	m->fnext = f->msgs;
	if (f->msgs != PONY_NONE)
		py->msgs[f->msgs].fprev = mi;
	f->msgs = mi;
	if (kind == MSG_RX)
		f->n_rx++;
	else
		f->n_tx++;
	if (kind == MSG_READ)
		f->n_reads++;
	if (kind == MSG_RX || kind == MSG_RESP)
		f->n_peer++;
	py->n_msgs++;
	return m;
}

struct pony_msg *pony_msg_find(struct pony *py, uint32_t flow, uint32_t id, bool rx)
{
	uint32_t mi = py->msg_ht.head[msg_hash(flow, id, rx) & py->msg_ht.mask];

	for (; mi != PONY_NONE; mi = py->msgs[mi].hnext) {
		struct pony_msg *m = &py->msgs[mi];

		if (m->flow == flow && m->id == id && (m->kind == MSG_RX) == rx)
			return m;
	}
	return NULL;
}

void pony_msg_free(struct pony *py, uint32_t mi)
{
	struct pony_msg *m = &py->msgs[mi];
	struct pony_flow *f = &py->flows[m->flow];
	uint32_t *pp = &py->msg_ht.head[msg_hash(m->flow, m->id, m->kind == MSG_RX) & py->msg_ht.mask];

	while (*pp != mi)
		pp = &py->msgs[*pp].hnext;
	*pp = m->hnext;
	if (m->fprev != PONY_NONE)
		py->msgs[m->fprev].fnext = m->fnext;
	else
		f->msgs = m->fnext;
	if (m->fnext != PONY_NONE)
		py->msgs[m->fnext].fprev = m->fprev;
	if (m->kind == MSG_RX)
		f->n_rx--;
	else
		f->n_tx--;
	if (m->kind == MSG_READ && !(m->flags & MF_RESP_DONE))
		f->n_reads--;
	if (m->kind == MSG_RX || m->kind == MSG_RESP)
		f->n_peer--;
	m->kind = MSG_FREE;
	m->next = py->msg_free;
	py->msg_free = mi;
	py->n_msgs--;
}

/* ---- streams ---- */

static void stream_init(struct pony_stream *s, uint32_t fi)
{
	memset(s, 0, sizeof(*s));
	s->flow = fi;
	s->head = s->tail = s->wait = s->rr_next = s->hnext = s->fnext = PONY_NONE;
}

struct pony_stream *pony_stream_get(struct pony *py, struct pony_flow *f, bool rx, uint16_t local,
				    uint16_t remote, uint32_t id, bool create)
{
	uint32_t fi = flow_idx(py, f);
	uint32_t b = stream_hash(fi, rx, local, remote, id) & py->stream_ht.mask;
	struct pony_stream *s;
	uint32_t si;

	for (si = py->stream_ht.head[b]; si != PONY_NONE; si = py->streams[si].hnext) {
		s = &py->streams[si];
		if (s->flow == fi && s->rx == rx && s->local_svc == local && s->remote_svc == remote &&
		    s->id == id)
			return s;
	}
	if (!create || py->stream_free == PONY_NONE)
		return NULL;
	si = py->stream_free;
	s = &py->streams[si];
	py->stream_free = s->hnext;
	stream_init(s, fi);
	s->rx = rx;
	s->local_svc = local;
	s->remote_svc = remote;
	s->id = id;
	s->hnext = py->stream_ht.head[b];
	py->stream_ht.head[b] = si;
	s->fnext = f->streams;
	f->streams = si;
	py->n_streams++;
	return s;
}

/* The flow's two built-in queues: our READ requests, READ responses we serve. */
struct pony_stream *pony_read_stream(struct pony *py, struct pony_flow *f, bool resp)
{
	return &py->streams[py->conf.max_msgs + 2 * flow_idx(py, f) + resp];
}

static void streams_free(struct pony *py, struct pony_flow *f)
{
	uint32_t si = f->streams;

	while (si != PONY_NONE) {
		struct pony_stream *s = &py->streams[si];
		uint32_t nx = s->fnext;
		uint32_t *pp = &py->stream_ht.head[stream_hash(s->flow, s->rx, s->local_svc,
							      s->remote_svc, s->id) &
						  py->stream_ht.mask];

		while (*pp != si)
			pp = &py->streams[*pp].hnext;
		*pp = s->hnext;
		s->hnext = py->stream_free;
		py->stream_free = si;
		py->n_streams--;
		si = nx;
	}
	f->streams = PONY_NONE;
}

/* ---- flows ---- */

static struct pony_flow *flow_find(struct pony *py, uint32_t peer)
{
	for (uint32_t fi = py->flow_ht.head[flow_bucket(py, peer)]; fi != PONY_NONE;
	     fi = py->flows[fi].hnext)
		if (py->flows[fi].peer == peer)
			return &py->flows[fi];
	return NULL;
}

static void lru_unlink(struct pony *py, struct pony_flow *f)
{
	if (f->lru_prev != PONY_NONE)
		py->flows[f->lru_prev].lru_next = f->lru_next;
	else
		py->lru_head = f->lru_next;
	if (f->lru_next != PONY_NONE)
		py->flows[f->lru_next].lru_prev = f->lru_prev;
	else
		py->lru_tail = f->lru_prev;
}

static void lru_push_front(struct pony *py, struct pony_flow *f)
{
	uint32_t fi = flow_idx(py, f);

	f->lru_prev = PONY_NONE;
	f->lru_next = py->lru_head;
	if (py->lru_head != PONY_NONE)
		py->flows[py->lru_head].lru_prev = fi;
	else
		py->lru_tail = fi;
	py->lru_head = fi;
}

void pony_flow_touch(struct pony *py, struct pony_flow *f, uint64_t now)
{
	f->last_active = now;
	if (py->lru_head != flow_idx(py, f)) {
		lru_unlink(py, f);
		lru_push_front(py, f);
	}
}

static bool flow_has_tx_work(const struct pony_flow *f)
{
	return f->n_tx || f->snd_una != f->snd_nxt || f->ctrl_head != f->ctrl_tail;
}

static bool flow_idle(const struct pony_flow *f)
{
	return !flow_has_tx_work(f) && !f->n_rx && !f->ack_pending;
}

/* Unpredictable (a keyed hash of a counter): an off-path host must guess
 * 32 bits to address a flow's packets, ACKs or RESET to it. */
static uint32_t new_epoch(struct pony *py)
{
	uint32_t e;

	do
		e = (uint32_t)siphash2(py->key, 0x65706f6368000000ull, py->epoch_ctr++);
	while (!e);
	return e;
}

static void list_remove(uint32_t *list, uint32_t *n, uint32_t v)
{
	for (uint32_t i = 0; i < *n; i++)
		if (list[i] == v) {
			list[i] = list[--*n];
			return;
		}
}

/* Free the flow, telling the io layer about every message it held: err for
 * our sends/READs (0 = idle teardown, nothing is outstanding), rx_abort for
 * partial arrivals. Unhashed first, so a callback that sends to the same
 * peer gets a fresh flow. */
static void flow_close(struct pony *py, struct pony_flow *f, int err)
{
	uint32_t fi = flow_idx(py, f);
	uint32_t *pp = &py->flow_ht.head[flow_bucket(py, f->peer)];
	struct pony_stream *rs;

	while (*pp != fi)
		pp = &py->flows[*pp].hnext;
	*pp = f->hnext;
	while (f->msgs != PONY_NONE) {
		uint32_t mi = f->msgs;
		struct pony_msg m = py->msgs[mi];

		pony_msg_free(py, mi);
		if (m.kind == MSG_SEND && !(m.flags & MF_NOTIFIED)) {
			PY_COUNT(py, pony_msgs_failed);
			if (py->io.tx_done)
				py->io.tx_done(py->io.ctx, m.src_svc, m.cookie, err ? err : -ETIMEDOUT);
		} else if (m.kind == MSG_READ && !(m.flags & MF_NOTIFIED)) {
			PY_COUNT(py, pony_msgs_failed);
			if (py->io.read_done)
				py->io.read_done(py->io.ctx, m.src_svc, m.cookie, err ? err : -ETIMEDOUT);
		} else if (m.kind == MSG_RX && (m.flags & MF_BEGUN) && !(m.flags & MF_DROP)) {
			if (py->io.rx_abort)
				py->io.rx_abort(py->io.ctx, m.cookie);
		}
	}
	streams_free(py, f);
	rs = pony_read_stream(py, f, false);
	stream_init(rs, fi);
	stream_init(rs + 1, fi);
	lru_unlink(py, f);
	if (f->on_ready)
		list_remove(py->ready, &py->n_ready, fi);
	if (f->ack_pending)
		list_remove(py->acks, &py->n_acks, fi);
	py->active[f->pos] = py->active[--py->n_active];
	py->flows[py->active[f->pos]].pos = f->pos;
	f->pos = PONY_NONE;
	f->peer = 0;
	f->hnext = py->flow_free;
	py->flow_free = fi;
	PY_COUNT(py, pony_flows_closed);
	if (err)
		PY_COUNT(py, pony_flows_failed);
}

void pony_flow_fail(struct pony *py, struct pony_flow *f, int err)
{
	flow_close(py, f, err);
}

static struct pony_flow *flow_new(struct pony *py, uint32_t peer, uint64_t now)
{
	uint32_t fi = py->flow_free;
	struct pony_flow *f;
	struct pony_slot *slots;
	uint64_t *map;

	if (fi == PONY_NONE && py->lru_tail != PONY_NONE) {
		/* Evict the least recently active flow if it owes nothing and its
		 * peer has been silent longer than any retransmission would take. */
		struct pony_flow *old = &py->flows[py->lru_tail];

		if (!flow_has_tx_work(old) && now - old->last_rx >= py->conf.rto_max_us * 1000ull) {
			PY_COUNT(py, pony_flows_evicted);
			flow_close(py, old, 0);
			fi = py->flow_free;
		}
	}
	if (fi == PONY_NONE)
		return NULL;
	f = &py->flows[fi];
	py->flow_free = f->hnext;
	slots = f->slots;
	map = f->rcv_map;
	memset(f, 0, sizeof(*f));
	f->slots = slots;
	f->rcv_map = map;
	memset(slots, 0, py->win * sizeof(*slots));
	memset(map, 0, py->win / 8);
	f->peer = peer;
	f->my_epoch = new_epoch(py);
	f->peer_credits = py->win;
	f->cwnd_milli = py->conf.cc_init_cwnd * 1000;
	if (f->cwnd_milli > py->win * 1000)
		f->cwnd_milli = py->win * 1000;
	f->rto_ns = py->conf.rto_min_us * 1000;
	f->rr_head = f->rr_tail = f->msgs = f->streams = PONY_NONE;
	f->last_rx = f->last_active = now;
	f->hnext = py->flow_ht.head[flow_bucket(py, peer)];
	py->flow_ht.head[flow_bucket(py, peer)] = fi;
	f->pos = py->n_active;
	py->active[py->n_active++] = fi;
	lru_push_front(py, f);
	stream_init(pony_read_stream(py, f, false), fi);
	stream_init(pony_read_stream(py, f, true), fi);
	PY_COUNT(py, pony_flows_created);
	return f;
}

/* The flow to peer, created if asked. A local send on a flow that has been
 * quiet for half the idle timeout starts a fresh incarnation instead: the
 * peer may already have torn its side down (docs/pony.md, "Flow lifecycle"). */
struct pony_flow *pony_flow_get(struct pony *py, uint32_t peer, uint64_t now, bool create)
{
	struct pony_flow *f = flow_find(py, peer);

	if (f && create && flow_idle(f) &&
	    now - f->last_rx >= py->conf.idle_timeout_ms * 500000ull) {
		flow_close(py, f, 0);
		f = NULL;
	}
	if (!f && create)
		f = flow_new(py, peer, now);
	return f;
}

void pony_mark_ready(struct pony *py, struct pony_flow *f)
{
	if (!f->on_ready) {
		f->on_ready = 1;
		py->ready[py->n_ready++] = flow_idx(py, f);
	}
}

/* An ACK is owed: pony_poll() sends it at due unless a reliable packet
 * carries it first (pony_out.c, ack_trailer()). */
void pony_mark_ack(struct pony *py, struct pony_flow *f, uint64_t due)
{
	if (!f->ack_pending) {
		f->ack_pending = 1;
		f->ack_due = due;
		py->acks[py->n_acks++] = flow_idx(py, f);
	} else if (due < f->ack_due) {
		f->ack_due = due;
	}
}

/* ---- timers ---- */

static void flow_rto(struct pony *py, struct pony_flow *f, uint64_t now)
{
	f->timeouts++;
	PY_COUNT(py, pony_timeouts);
	/* A busy receiver answers our probes: it is alive, keep probing. */
	if (!f->peer_busy && ++f->retries > py->conf.max_retries) {
		flow_close(py, f, -ETIMEDOUT);
		return;
	}
	f->rto_ns = f->rto_ns * 2 > py->conf.rto_max_us * 1000 ? py->conf.rto_max_us * 1000
								 : f->rto_ns * 2;
	/* Probe with the oldest packet only; the first ACK after it says
	 * whether the rest is lost or was merely slow (rto_resolve()). A
	 * peer starved of CPU for longer than an RTO costs one duplicate,
	 * not a window of them. */
	if (!f->rto_probe_at)
		f->rto_undo_cwnd = f->cwnd_milli;
	f->rto_probe_at = now;
	f->last_decrease = 0; /* a timeout always decreases */
	pony_cc_decrease(py, f, py->conf.cc_max_mdf_milli, now);
	f->rto_at = now + f->rto_ns;
	pony_rto_probe(py, f, now);
	pony_push(py, f, now);
}

/* Data the window, the credits and the queues allow to send, nothing in
 * flight and so no timer, and no push pending: nothing would ever send it.
 * Every path that opens the window pushes; this is the net under them. */
static bool flow_stalled(const struct pony *py, const struct pony_flow *f)
{
	return !f->rto_at && !f->on_ready && f->snd_una == f->snd_nxt &&
	       (f->ctrl_head != f->ctrl_tail ||
		(f->rr_head != PONY_NONE && seq_lt(f->snd_nxt, f->peer_cum + f->peer_credits)));
}

/* The peer's partial messages have gained no byte for rx_stall_ms, and
 * not because we refused them room: a live sender keeps every message it
 * started moving (round robin, retransmissions within rto_max), so this
 * one has gone or never meant to finish (issue 13: partial messages used
 * to hold the pool for good). */
static bool flow_rx_stalled(const struct pony *py, const struct pony_flow *f, uint64_t now)
{
	return f->n_rx && f->rx_busy != RXB_LOCAL &&
	       now - f->rx_progress_at >= py->conf.rx_stall_ms * 1000000ull;
}

static int timer_scan(struct pony *py, uint64_t now)
{
	uint64_t idle_ns = py->conf.idle_timeout_ms * 1000000ull;
	uint64_t read_ns = (uint64_t)py->conf.rto_max_us * 1000 * (py->conf.max_retries + 1);
	int done = 0;

	/* Downwards: flow_close() moves the last entry into the freed place. */
	for (uint32_t i = py->n_active; i-- > 0;) {
		struct pony_flow *f = &py->flows[py->active[i]];

		if (f->rto_at && now >= f->rto_at) {
			flow_rto(py, f, now);
			done++;
		} else if (flow_stalled(py, f)) {
			PY_COUNT(py, pony_stall_kicks);
			done += pony_push(py, f, now);
		} else if (flow_idle(f) && now - f->last_active >= idle_ns) {
			flow_close(py, f, 0);
			done++;
		} else if (flow_rx_stalled(py, f, now)) {
			/* the peer learns at once, if it is still there */
			PY_COUNT(py, pony_rx_stalled);
			pony_send_reset(py, f->peer, f->peer_epoch, now);
			flow_close(py, f, -ETIMEDOUT);
			done++;
		} else if (f->n_reads && f->snd_una == f->snd_nxt && now - f->last_rx >= read_ns) {
			/* READ requests acknowledged, responses never came */
			flow_close(py, f, -ETIMEDOUT);
			done++;
		}
	}
	return done;
}

int pony_poll(struct pony *py, uint64_t now_ns)
{
	int done = 0;

	if (now_ns >= py->next_scan) {
		py->next_scan = now_ns + PONY_SCAN_NS;
		done += timer_scan(py, now_ns);
	}
	for (uint32_t n = py->n_ready; n-- > 0 && py->n_ready;) {
		struct pony_flow *f = &py->flows[py->ready[--py->n_ready]];

		f->on_ready = 0;
		done += pony_push(py, f, now_ns);
	}
	if (py->n_acks) {
		uint32_t n = py->n_acks, keep = 0;

		for (uint32_t i = 0; i < n; i++) {
			struct pony_flow *f = &py->flows[py->acks[i]];

			if (f->rx_unacked && now_ns < f->ack_due) {
				py->acks[keep++] = py->acks[i]; /* still waiting for a ride */
				continue;
			}
			f->ack_pending = 0;
			if (!f->rx_unacked)
				continue; /* an ACK went out since it was marked */
			pony_send_ack(py, f, now_ns); /* no buffer: re-marked past n */
			done++;
		}
		memmove(&py->acks[keep], &py->acks[n], (py->n_acks - n) * sizeof(py->acks[0]));
		py->n_acks = keep + (py->n_acks - n);
	}
	return done;
}

bool pony_idle(const struct pony *py)
{
	return !py->n_ready && !py->n_acks;
}

void pony_cancel_svc(struct pony *py, uint16_t svc)
{
	for (uint32_t mi = 0; mi < py->conf.max_msgs; mi++) {
		struct pony_msg *m = &py->msgs[mi];

		switch (m->kind) {
		case MSG_SEND:
			if (m->src_svc == svc)
				m->flags |= MF_SKIP | MF_NOTIFIED;
			break;
		case MSG_READ:
			if (m->src_svc == svc && !(m->flags & MF_RESP_DONE)) {
				m->flags |= MF_NOTIFIED | MF_RESP_DONE;
				py->flows[m->flow].n_reads--;
				m->dst = NULL;
				pony_tx_msg_check(py, mi);
			}
			break;
		case MSG_RX:
			if (m->dst_svc == svc && !(m->flags & MF_DROP)) {
				if ((m->flags & MF_BEGUN) && py->io.rx_abort)
					py->io.rx_abort(py->io.ctx, m->cookie);
				m->flags |= MF_DROP;
			}
			break;
		case MSG_RESP: /* its region lookups now fail: the reader gets the error */
		case MSG_FREE:
			break;
		}
	}
	pony_done_drain(py);
}

/* ---- observability ---- */

unsigned pony_flow_count(const struct pony *py)
{
	return py->n_active;
}

int pony_flow_info(const struct pony *py, unsigned idx, struct pony_flow_info *out, uint64_t now_ns)
{
	const struct pony_flow *f;
	uint32_t n = 0;

	if (idx >= py->n_active)
		return -ENOENT;
	f = &py->flows[py->active[idx]];
	memset(out, 0, sizeof(*out));
	out->peer = f->peer;
	out->srtt_us = f->srtt_ns / 1000;
	out->rttvar_us = f->rttvar_ns / 1000;
	out->min_rtt_us = f->min_rtt_ns / 1000;
	out->rto_us = f->rto_ns / 1000;
	out->cwnd_milli = f->cwnd_milli;
	out->inflight_pkts = f->inflight;
	out->peer_credits = seq_lt(f->snd_nxt, f->peer_cum + f->peer_credits)
				    ? f->peer_cum + f->peer_credits - f->snd_nxt : 0;
	for (uint32_t si = f->streams; si != PONY_NONE; si = py->streams[si].fnext)
		n++;
	out->streams = n;
	out->tx_msgs_queued = f->n_tx;
	out->rx_msgs_partial = f->n_rx;
	out->tx_pkts = f->tx_pkts;
	out->rx_pkts = f->rx_pkts;
	out->tx_bytes = f->tx_bytes;
	out->rx_bytes = f->rx_bytes;
	out->retransmits = f->retransmits;
	out->timeouts = f->timeouts;
	out->msgs_sent = f->msgs_sent;
	out->msgs_delivered = f->msgs_delivered;
	if (f->srtt_ns)
		out->rate_bps = (uint64_t)f->cwnd_milli * py->seg * 8 * 1000000ull / f->srtt_ns;
	out->idle_ns = now_ns - f->last_rx;
	return 0;
}
