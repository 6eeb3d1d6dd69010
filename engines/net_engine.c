/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The "net" engine kind: one queue pair, one net_stack (transport/net).
 *
 * poll(): RX burst -> net_input() per frame (it replies in place or queues
 * frames through net_io.xmit into our TX batch) -> net_timer() once per
 * millisecond -> app commands -> pony_poll() (engine 0: Pony, see app_pony.c)
 * -> one TX burst for the batch. Bounded: at most RX_BURST frames
 * per poll, so a flood cannot starve the timers or other engines.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_branch_prediction.h>
#include <rte_common.h>
#include <rte_prefetch.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>
#include <stdio.h>

#include <mustang/engine.h>

#include "common/state.h"
#include "engines/app.h"
#include "engines/engine_state.h"
#include "engines/flowlog.h"
#include "engines/builtin.h"
#include "transport/net/net.h"
#include "transport/pony/pony.h"
#include "transport/tcp/tcp.h"

#define RX_BURST 32
#define TX_BATCH 64
#define MAX_APPS 64
#define APP_DRAIN_NS (60ull * 1000000000ull) /* closed connections of a gone app: at most this long */
/* ... and at most this long more once an upgrade waits for them (the
 * control plane retries the export for UPG_DRAIN_WAIT_MS, control/upgrade.h) */
#define APP_DRAIN_UPGRADE_NS (5ull * 1000000000ull)
#define MST_MAX_ENGINES_NET 64 /* = MST_MAX_ENGINES */
#define TIMER_PERIOD_NS (1000 * 1000) /* = the TCP timer wheel's tick */

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

struct net_engine {
	struct mst_queue *q;               /* our queue pair (attach_queue) */
	struct net_stack *ns;
	struct tcp_stack *ts;
	struct rte_ring *arp_ring;         /* neighbours other engines learned */
	struct rte_ring *steer_ring;       /* segments other engines received for us */
	struct eng_udp_bind *udp;          /* UDP port -> app socket */
	struct eng_pony *pony;             /* engine 0 only; NULL: Pony off */
	struct rte_ring *flow_ring;        /* flow records to the control plane, NULL: off */
	struct eng_app *detaching;         /* in eng_app_detach(): its resets' flow records */
	struct eng_app *apps[MAX_APPS];    /* attached applications */
	unsigned n_apps;
	struct eng_app *draining[MAX_APPS]; /* gone, their closed connections finishing */
	unsigned n_draining;
	uint64_t now;                      /* time of the current poll */
	uint32_t rx_buf, tx_buf;           /* TCP FIFO sizes (apps' slots) */
	uint16_t n_tx;                     /* frames waiting in tx[] */
	bool garp_pending;                 /* announce ourselves on the first poll */
	bool frozen;                       /* state exported (or an import refused):
					    * no poll, and destroy() only frees memory */
	uint64_t next_timer_ns;
	struct mst_pkt *tx[TX_BATCH];
	struct mst_stats stats;            /* ours and net_stack's counters */
	struct mst_engine_conf conf;
};

static void flush_tx(struct net_engine *e)
{
	uint32_t bytes[TX_BATCH];
	uint16_t sent, n = e->n_tx;

	if (!n)
		return;
	/* Lengths first: the port may free a frame as soon as it takes it. */
	for (uint16_t i = 0; i < n; i++)
		bytes[i] = e->tx[i]->len;
	sent = mst_queue_tx(e->q, e->tx, n);
	for (uint16_t i = 0; i < sent; i++)
		MST_COUNT_N(&e->stats, tx_bytes, bytes[i]);
	MST_COUNT_N(&e->stats, tx_frames, sent);
	for (uint16_t i = sent; i < n; i++) {
		MST_DROP(&e->stats, tx_full);
		mst_queue_free(e->q, e->tx[i]);
	}
	e->n_tx = 0;
}

static struct mst_pkt *io_alloc(void *ctx)
{
	struct net_engine *e = ctx;

	return e->q ? mst_queue_alloc(e->q) : NULL;
}

static void io_xmit(void *ctx, struct mst_pkt *p)
{
	struct net_engine *e = ctx;

	if (e->n_tx == TX_BATCH)
		flush_tx(e);
	e->tx[e->n_tx++] = p;
}

static void io_free(void *ctx, struct mst_pkt *p)
{
	struct net_engine *e = ctx;

	mst_queue_free(e->q, p);
}

/*
 * ARP sharing between engines. RSS steers an ARP frame to one queue, so
 * only one engine sees it; that engine posts what it learned to every other
 * engine's ring (multi-producer, single consumer: the owner drains it in
 * poll()). Rings are indexed by engine id and live for the process.
 */
struct arp_note {
	uint32_t ip;
	uint8_t mac[6];
	uint16_t pad;
};

#define ARP_RING_SIZE 1024
static struct rte_ring *arp_rings[MST_MAX_ENGINES_NET];
static unsigned arp_ring_count;

static void io_arp_learned(void *ctx, uint32_t ip, const uint8_t mac[6])
{
	struct net_engine *e = ctx;
	struct arp_note n = { .ip = ip };

	memcpy(n.mac, mac, 6);
	for (unsigned i = 0; i < arp_ring_count; i++)
		if (i != e->conf.id && arp_rings[i])
			(void)rte_ring_mp_enqueue_elem(arp_rings[i], &n, sizeof(n)); /* full: they ARP themselves */
}

static void drain_arp_ring(struct net_engine *e, uint64_t now)
{
	struct arp_note n;

	while (rte_ring_sc_dequeue_elem(e->arp_ring, &n, sizeof(n)) == 0)
		(void)net_arp_learn(e->ns, n.ip, n.mac, now);
}

/*
 * Software steering. A TCP connection's state lives in one engine, so all
 * its segments must reach that engine. Port RSS cannot promise it on
 * virtual ports (af_packet fanout follows the sender's skb hash, which
 * Linux re-draws after a timeout), so every engine computes the owner of a
 * segment itself from a hash of (peer address, peer port, our port) and
 * hands segments that are not its own to the owner's ring. Active opens
 * pick ephemeral ports whose owner is the opening engine.
 */
#define STEER_RING_SIZE 4096
static struct rte_ring *steer_rings[MST_MAX_ENGINES_NET];
static unsigned steer_count;
static uint16_t steer_pony_port; /* UDP to this port goes to engine 0 (Pony); 0 = none */

static inline unsigned steer_owner_of(uint32_t raddr, uint16_t rport, uint16_t lport)
{
	uint64_t h = ((uint64_t)raddr << 32) | ((uint32_t)rport << 16) | lport;

	h *= 0x9e3779b97f4a7c15ull;
	h ^= h >> 31;
	return (unsigned)(((h >> 32) * steer_count) >> 32);
}

/* Owner engine of a received frame (TCP over IPv4 by hash; Pony's UDP
 * port to engine 0, where Pony lives). */
static inline unsigned steer_owner(const struct mst_pkt *p, unsigned self)
{
	const uint8_t *d = p->data;
	unsigned ihl;
	uint32_t src;

	if (steer_count < 2 || p->len < 14 + 20 + 4 || d[12] != 0x08 || d[13] != 0x00)
		return self;
	ihl = (unsigned)(d[14] & 0x0f) * 4u;
	if (ihl < 20 || p->len < 14 + ihl + 4)
		return self; /* malformed: let the stack count it */
	if (d[14 + 9] == NET_IP_PROTO_UDP)
		return steer_pony_port &&
		       (uint16_t)(d[14 + ihl + 2] << 8 | d[14 + ihl + 3]) == steer_pony_port ? 0 : self;
	if (d[14 + 9] != NET_IP_PROTO_TCP)
		return self;
	memcpy(&src, d + 14 + 12, 4);
	return steer_owner_of(src, (uint16_t)(d[14 + ihl] | d[14 + ihl + 1] << 8),
			      (uint16_t)(d[14 + ihl + 2] | d[14 + ihl + 3] << 8));
}

static bool steer_port_ok(void *ctx, uint32_t raddr, uint16_t rport, uint16_t lport)
{
	const struct net_engine *e = ctx;

	return steer_count < 2 || steer_owner_of(raddr, rport, lport) == e->conf.id;
}

/* The net stack's UDP hook: Pony's port first, then app sockets. */
static bool engine_udp_input(void *ctx, struct mst_pkt *p, uint32_t src, uint32_t dst,
			     uint16_t dport, uint64_t now_ns)
{
	struct net_engine *e = ctx;

	if (e->pony && eng_pony_udp_input(e->pony, p, src, dport, now_ns))
		return true;
	return eng_app_udp_input(e->udp, p, src, dst, dport, now_ns);
}

/* Which attached (or draining) app owns a connection's FIFOs. */
static int owner_app_id(const struct net_engine *e, const void *owner)
{
	for (unsigned i = 0; owner && i < e->n_apps; i++)
		if ((const void *)e->apps[i] == owner)
			return eng_app_id(e->apps[i]);
	for (unsigned i = 0; owner && i < e->n_draining; i++)
		if ((const void *)e->draining[i] == owner)
			return eng_app_id(e->draining[i]);
	if (owner && (const void *)e->detaching == owner)
		return eng_app_id(e->detaching);
	return FLOWLOG_APP_NONE;
}

/* TCP's flow hook (engine thread): copy, hand over, never wait. */
static void flow_hook(void *ctx, const struct tcp_flow_info *f)
{
	struct net_engine *e = ctx;
	struct mst_flow_rec r = {
		.proto = 6, .reason = f->reason, .state = f->state, .passive = f->passive,
		.engine = (uint16_t)e->conf.id, .app_id = owner_app_id(e, f->owner),
		.laddr = f->laddr, .raddr = f->raddr, .lport = f->lport, .rport = f->rport,
		.start_ns = f->start_ns, .end_ns = f->end_ns,
		.bytes_acked = f->bytes_acked, .bytes_received = f->bytes_received,
		.bytes_sent = f->bytes_sent, .segs_out = f->segs_out, .segs_in = f->segs_in,
		.retransmits = f->retransmits, .rto_count = f->rto_count,
		.recoveries = f->recoveries, .srtt_us = f->srtt_us, .min_rtt_us = f->min_rtt_us,
		.last_rtt_us = f->last_rtt_us, .max_cwnd = f->max_cwnd, .mss = f->mss,
	};

	if (flowlog_put(e->flow_ring, &r))
		MST_COUNT(&e->stats, flow_records);
	else
		MST_COUNT(&e->stats, flow_records_lost);
}

static void *net_engine_create(const struct mst_engine_conf *conf)
{
	struct net_engine *e = calloc(1, sizeof(*e));
	struct net_io io = { .alloc = io_alloc, .xmit = io_xmit, .free = io_free,
			     .arp_learned = io_arp_learned };
	char rname[RTE_RING_NAMESIZE];
	struct net_conf nc;
	struct tcp_conf tc;
	int err;

	if (!e)
		return NULL;
	if (conf->id >= MST_MAX_ENGINES_NET) {
		free(e);
		errno = EINVAL;
		return NULL;
	}
	e->conf = *conf;
	snprintf(rname, sizeof(rname), "mst_arp%u", conf->id);
	e->arp_ring = rte_ring_lookup(rname);
	if (!e->arp_ring)
		e->arp_ring = rte_ring_create_elem(rname, sizeof(struct arp_note), ARP_RING_SIZE,
						   SOCKET_ID_ANY, RING_F_SC_DEQ);
	if (!e->arp_ring) {
		free(e);
		errno = ENOMEM;
		return NULL;
	}
	arp_rings[conf->id] = e->arp_ring;
	if (conf->id + 1 > arp_ring_count)
		arp_ring_count = conf->id + 1;
	snprintf(rname, sizeof(rname), "mst_steer%u", conf->id);
	e->steer_ring = rte_ring_lookup(rname);
	if (!e->steer_ring)
		e->steer_ring = rte_ring_create(rname, STEER_RING_SIZE, SOCKET_ID_ANY, RING_F_SC_DEQ);
	if (!e->steer_ring) {
		free(e);
		errno = ENOMEM;
		return NULL;
	}
	steer_rings[conf->id] = e->steer_ring;
	steer_count = conf->n_engines ? conf->n_engines : 1;
	io.ctx = e;
	memset(&nc, 0, sizeof(nc));
	memcpy(nc.mac, conf->mac, sizeof(nc.mac));
	nc.ip = conf->ip;
	nc.prefix_len = conf->prefix_len;
	nc.gw = conf->gw;
	nc.mtu = conf->mtu;
	nc.services = conf->services & NET_SVC_ECHO;
	nc.tx_offloads = conf->tx_offloads;
	nc.rx_offloads = conf->rx_offloads;
	nc.arp_timeout_ms = conf->arp_timeout_ms;
	e->ns = net_create(&nc, &io, &e->stats);
	if (!e->ns)
		goto out_free;
	tcp_conf_defaults(&tc);
	if (conf->tcp_cc)
		tc.cc = conf->tcp_cc;
	if (conf->tcp_rcvbuf)
		tc.rx_buf = conf->tcp_rcvbuf;
	if (conf->tcp_sndbuf)
		tc.tx_buf = conf->tcp_sndbuf;
	if (conf->tcp_max_conns)
		tc.max_conns = conf->tcp_max_conns;
	tc.timewait_ms = conf->tcp_timewait_ms;
	if (conf->tcp_rto_min_ms)
		tc.rto_min_ms = conf->tcp_rto_min_ms;
	if (conf->tcp_rto_max_ms)
		tc.rto_max_ms = conf->tcp_rto_max_ms;
	tc.syncookies = conf->tcp_syncookies != 0;
	if (conf->tcp_eph_lo && conf->tcp_eph_hi >= conf->tcp_eph_lo) {
		tc.eph_lo = conf->tcp_eph_lo;
		tc.eph_hi = conf->tcp_eph_hi;
	}
	if (conf->tcp_tw_reuse_delay_ms)
		tc.tw_reuse_delay_ms = conf->tcp_tw_reuse_delay_ms;
	e->ts = tcp_create(e->ns, &tc, &e->stats, now_ns());
	if (e->ts)
		tcp_buffer_sizes(e->ts, &e->rx_buf, &e->tx_buf);
	if (!e->ts)
		goto out_net;
	/* config's MST_SVC_* bits are TCP_SVC_* bits (echo, discard, chargen) */
	if (conf->services && !conf->importing && tcp_services_start(e->ts, conf->services) < 0) {
		errno = EADDRINUSE;
		goto out_tcp;
	}
	e->udp = calloc(ENG_PORT_TABLE, sizeof(*e->udp));
	if (!e->udp) {
		errno = ENOMEM;
		goto out_tcp;
	}
	/* Pony lives on engine 0, with the apps (steer_owner sends its port there). */
	if (conf->pony_port && conf->id == 0) {
		e->pony = eng_pony_create(conf, e->ns, &e->stats, now_ns());
		if (!e->pony)
			goto out_udp;
	}
	steer_pony_port = conf->pony_port;
	net_set_udp_hook(e->ns, engine_udp_input, e);
	tcp_set_port_filter(e->ts, steer_port_ok, e);
	e->flow_ring = flowlog_ring(conf->id);
	if (e->flow_ring)
		tcp_set_flow_hook(e->ts, flow_hook, e);
	e->garp_pending = conf->id == 0;
	return e;

out_udp:
	err = errno;
	free(e->udp);
	errno = err;
out_tcp:
	err = errno;
	tcp_destroy(e->ts);
	errno = err;
out_net:
	err = errno;
	net_destroy(e->ns);
	errno = err;
out_free:
	err = errno;
	free(e);
	errno = err;
	return NULL;
}

static int net_engine_poll(void *eng, uint64_t now)
{
	struct net_engine *e = eng;
	struct mst_pkt *pkts[RX_BURST];
	uint16_t n;
	int work;

	if (unlikely(e->frozen || !e->q))
		return 0;
	n = mst_queue_rx(e->q, pkts, RX_BURST);
	work = n;
	for (uint16_t i = 0; i < n; i++) {
		unsigned owner;

		MST_COUNT(&e->stats, rx_frames);
		MST_COUNT_N(&e->stats, rx_bytes, pkts[i]->len);
		if (i + 1 < n)
			rte_prefetch0(pkts[i + 1]->data);
		owner = steer_owner(pkts[i], e->conf.id);
		if (unlikely(owner != e->conf.id)) {
			if (rte_ring_mp_enqueue(steer_rings[owner], pkts[i]) == 0) {
				MST_COUNT(&e->stats, steered_out);
			} else {
				MST_DROP(&e->stats, steer_full);
				mst_queue_free(e->q, pkts[i]);
			}
			continue;
		}
		net_input(e->ns, pkts[i], now);
	}
	if (unlikely(steer_count > 1)) {
		void *in[RX_BURST];
		unsigned k = rte_ring_sc_dequeue_burst(e->steer_ring, in, RX_BURST, NULL);

		for (unsigned i = 0; i < k; i++) {
			MST_COUNT(&e->stats, steered_in);
			net_input(e->ns, in[i], now);
		}
		n += (uint16_t)k;
		work += (int)k;
	}
	if (n)
		tcp_flush_acks(e->ts); /* one ACK per connection per burst */
	if (unlikely(!rte_ring_empty(e->arp_ring)))
		drain_arp_ring(e, now);
	if (unlikely(e->garp_pending)) {
		e->garp_pending = false;
		(void)net_send_gratuitous_arp(e->ns, now);
	}
	if (now >= e->next_timer_ns) {
		net_timer(e->ns, now);
		work += (int)tcp_timer(e->ts, now);
		if (e->flow_ring)
			tcp_flow_scan(e->ts, flowlog_interval_ns());
		e->next_timer_ns = now + TIMER_PERIOD_NS;
	}
	e->now = now;
	if (e->pony)
		eng_pony_now(e->pony, now);
	for (unsigned i = 0; i < e->n_apps; i++)
		work += eng_app_poll(e->apps[i], now);
	if (e->pony)
		work += eng_pony_poll(e->pony, now);
	for (unsigned i = 0; i < e->n_draining;)
		if (eng_app_reap(e->draining[i], now))
			e->draining[i] = e->draining[--e->n_draining];
		else
			i++;
	for (unsigned i = 0; i < e->n_apps; i++)
		eng_app_kick(e->apps[i]);
	work += e->n_tx;
	flush_tx(e);
	return work;
}

static int net_engine_attach_queue(void *eng, struct mst_queue *q)
{
	struct net_engine *e = eng;

	if (e->q)
		return -EBUSY;
	e->q = q;
	return 0;
}

static int net_engine_detach_queue(void *eng, struct mst_queue *q)
{
	struct net_engine *e = eng;

	if (e->q != q)
		return -ENOENT;
	flush_tx(e);
	e->q = NULL;
	return 0;
}

static int net_engine_attach_app(void *eng, const struct mst_app *app)
{
	struct net_engine *e = eng;
	struct eng_app *a;

	if (e->n_apps == MAX_APPS)
		return -ENOSPC;
	a = eng_app_attach(e->ts, e->ns, e->udp, e->pony, &e->stats, app, e->rx_buf, e->tx_buf);
	if (!a)
		return -errno;
	e->apps[e->n_apps++] = a;
	return 0;
}

static int net_engine_detach_app(void *eng, int app_id)
{
	struct net_engine *e = eng;

	if (e->frozen) {
		/* Its connections live on in the engine that took the state:
		 * forget the app here, send nothing, write nothing. */
		for (unsigned i = 0; i < e->n_apps; i++)
			if (eng_app_id(e->apps[i]) == app_id) {
				eng_app_forget(e->apps[i]);
				e->apps[i] = e->apps[--e->n_apps];
				return 0;
			}
		return -ENOENT;
	}

	for (unsigned i = 0; i < e->n_apps; i++) {
		struct eng_app *a = e->apps[i];
		int rc;

		if (eng_app_id(a) != app_id)
			continue;
		e->apps[i] = e->apps[--e->n_apps];
		e->detaching = a;
		rc = eng_app_detach(a);
		e->detaching = NULL;
		if (rc == 1) {
			if (e->n_draining == MAX_APPS) { /* cannot happen: apps <= MAX_APPS */
				eng_app_drain(a, e->now, 0);
			} else {
				eng_app_drain(a, e->now, APP_DRAIN_NS);
				e->draining[e->n_draining++] = a;
			}
		}
		flush_tx(e); /* the RSTs */
		return rc;
	}
	return -ENOENT;
}

/* ---- live upgrade (engine_state.c, common/state.h) ---------------------- */

static void state_of(struct net_engine *e, struct eng_state *s)
{
	*s = (struct eng_state){
		.ns = e->ns, .ts = e->ts, .apps = e->apps, .n_apps = e->n_apps, .pony = e->pony,
		.stats = &e->stats,
		.id = { .id = e->conf.id, .n_engines = e->conf.n_engines, .ip = e->conf.ip,
			.prefix_len = e->conf.prefix_len, .max_conns = tcp_max_conns(e->ts),
			.rx_buf = e->rx_buf, .tx_buf = e->tx_buf, .mtu = e->conf.mtu,
			.pony_port = e->conf.pony_port },
	};
	memcpy(s->id.mac, e->conf.mac, 6);
}

/*
 * Everything the engine holds, as records (engine_state.c). Pending ACKs
 * and TX frames go out first. On success the engine is frozen: it no
 * longer polls, and destroy() frees memory only (the state lives on in the
 * new engine); resume() undoes the freeze (rollback).
 */
static long net_engine_export(void *eng, void *buf, size_t len)
{
	struct net_engine *e = eng;
	struct eng_state s;
	long n;

	if (e->frozen)
		return -EALREADY;
	if (e->n_draining) {
		/* An app that went away still has connections finishing on
		 * its segment. The upgrade waits for them (it asks again), but
		 * not for the 60 s a quiet peer could take: they get 5 s more,
		 * then what is left is reset (app_drain_resets) and the export
		 * goes through (docs/upgrade.md). */
		for (unsigned i = 0; i < e->n_draining; i++)
			eng_app_drain_within(e->draining[i], e->now + APP_DRAIN_UPGRADE_NS);
		return -EBUSY;
	}
	tcp_flush_acks(e->ts);
	flush_tx(e);
	state_of(e, &s);
	n = eng_state_export(&s, buf, len, now_ns());
	if (n >= 0)
		e->frozen = true;
	return n;
}

/*
 * Into an engine created with conf->importing (no TCP services of its
 * own), its queue attached and the apps of the state attached again
 * (same ids, same segments). A refused state freezes the engine: destroy()
 * then frees it without a packet or a write to any segment.
 */
static int net_engine_import(void *eng, const void *buf, size_t len)
{
	struct net_engine *e = eng;
	struct eng_state s;
	int rc;

	state_of(e, &s);
	rc = eng_state_import(&s, buf, len, now_ns());
	if (rc) {
		e->frozen = true;
		return rc;
	}
	e->next_timer_ns = 0; /* run the timers on the first poll */
	return 0;
}

/* Rollback: the export's engine carries on from where it stopped. */
static int net_engine_resume(void *eng)
{
	struct net_engine *e = eng;

	if (!e->frozen)
		return -EINVAL;
	e->frozen = false;
	e->next_timer_ns = 0;
	return 0;
}

struct conns_walk {
	struct tcp_conn_info *out;
	unsigned max, n;
};

static int conns_one(struct tcp_cb *c, void *arg)
{
	struct conns_walk *w = arg;

	if (w->n < w->max)
		tcp_get_info(c, &w->out[w->n]);
	w->n++;
	return 0;
}

unsigned net_engine_conns(void *eng, struct tcp_conn_info *out, unsigned max)
{
	struct net_engine *e = eng;
	struct conns_walk w = { .out = out, .max = max };

	tcp_foreach(e->ts, conns_one, &w);
	return w.n;
}

unsigned net_engine_pony_flows(void *eng, struct pony_flow_info *out, unsigned max, int *port)
{
	struct net_engine *e = eng;

	*port = e->pony ? eng_pony_port(e->pony) : 0;
	return e->pony ? eng_pony_flows(e->pony, out, max, now_ns()) : 0;
}

void net_engine_announce(void *eng)
{
	struct net_engine *e = eng;

	e->garp_pending = true;
}

static bool net_engine_may_sleep(void *eng)
{
	struct net_engine *e = eng;
	bool ok = true;

	if (e->frozen)
		return true; /* its apps' segments may be gone (a live upgrade's old daemon) */
	for (unsigned i = 0; i < e->n_apps; i++)
		ok &= eng_app_may_sleep(e->apps[i]);
	if (e->pony)
		ok &= eng_pony_idle(e->pony);
	return ok;
}

static void net_engine_woke(void *eng)
{
	struct net_engine *e = eng;

	if (e->frozen)
		return;
	for (unsigned i = 0; i < e->n_apps; i++)
		eng_app_woke(e->apps[i]);
}

static const struct mst_stats *net_engine_stats(void *eng)
{
	struct net_engine *e = eng;

	return &e->stats;
}

static void net_engine_destroy(void *eng)
{
	struct net_engine *e = eng;

	if (!e)
		return;
	if (e->frozen) {
		/* Its state lives on elsewhere (or was refused): free memory
		 * only. TCP first, since its blocks give FIFO slots back to
		 * the apps. */
		for (uint16_t i = 0; i < e->n_tx; i++)
			mst_queue_free(e->q, e->tx[i]);
		tcp_destroy(e->ts);
		while (e->n_apps)
			eng_app_forget(e->apps[--e->n_apps]);
		eng_pony_destroy(e->pony);
		free(e->udp);
		net_destroy(e->ns);
		free(e);
		return;
	}
	if (e->q)
		flush_tx(e);
	while (e->n_apps) {
		struct eng_app *a = e->apps[--e->n_apps];

		if (eng_app_detach(a) == 1) {
			eng_app_drain(a, 0, 0);
			(void)eng_app_reap(a, UINT64_MAX); /* shutting down: reset the rest */
		}
	}
	while (e->n_draining)
		(void)eng_app_reap(e->draining[--e->n_draining], UINT64_MAX);
	eng_pony_destroy(e->pony); /* after the apps: they cancelled their services */
	free(e->udp);
	tcp_destroy(e->ts);
	net_destroy(e->ns);
	free(e);
}

const struct mst_engine_ops net_engine_ops = {
	.version = MST_ENGINE_OPS_VERSION,
	.kind = "net",
	.create = net_engine_create,
	.poll = net_engine_poll,
	.attach_queue = net_engine_attach_queue,
	.detach_queue = net_engine_detach_queue,
	.attach_app = net_engine_attach_app,
	.detach_app = net_engine_detach_app,
	.export_state = net_engine_export,
	.import_state = net_engine_import,
	.resume = net_engine_resume,
	.may_sleep = net_engine_may_sleep,
	.woke = net_engine_woke,
	.stats = net_engine_stats,
	.destroy = net_engine_destroy,
};
