/* SPDX-License-Identifier: BSD-3-Clause */
/* A bare net_stack + tcp_stack for the live-upgrade tests: see state_node.h. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/state.h"
#include "state_node.h"

#define SN_BUF 10240
#define SN_HEADROOM 128

static const uint8_t sn_mac[6] = { 2, 0, 0, 0, 0, 1 };
static const uint8_t sn_peer_mac[6] = { 2, 0, 0, 0, 0, 2 };

struct sn_buf {
	struct mst_pkt pkt;
	uint8_t mem[SN_BUF];
};

static struct mst_pkt *sn_alloc(void *ctx)
{
	struct sn_buf *b = malloc(sizeof(*b));

	(void)ctx;
	if (!b)
		return NULL;
	memset(&b->pkt, 0, sizeof(b->pkt));
	b->pkt.data = b->mem + SN_HEADROOM;
	b->pkt.headroom = SN_HEADROOM;
	b->pkt.tailroom = SN_BUF - SN_HEADROOM;
	b->pkt.owner = b;
	return &b->pkt;
}

static void sn_free(void *ctx, struct mst_pkt *p)
{
	(void)ctx;
	free(p->owner);
}

static void sn_xmit(void *ctx, struct mst_pkt *p)
{
	struct sn_node *n = ctx;

	assert_true(n->out_n < SN_OUTQ);
	assert_true(p->len <= sizeof(n->outq[0].data));
	struct sn_frame *f = &n->outq[(n->out_head + n->out_n++) % SN_OUTQ];

	f->len = p->len;
	memcpy(f->data, p->data, p->len);
	sn_free(ctx, p);
}

static void sn_event(void *ctx, struct tcp_cb *c, uint32_t ev)
{
	struct sn_node *n = ctx;
	struct tcp_cb **s = tcp_user(c);
	uint32_t k = s ? (uint32_t)(s - n->slot) : 0xff;

	if (n->n_ev < sizeof(n->ev_log) / sizeof(n->ev_log[0]))
		n->ev_log[n->n_ev++] = k << 8 | ev;
}

static void sn_owner(void *ctx, const struct tcp_cb *c, struct tcp_owner *o)
{
	struct sn_node *n = ctx;
	struct tcp_cb **s = tcp_user(c);

	o->kind = TCP_OWNER_EXT;
	o->app_id = 1;
	o->sock = s ? (uint32_t)(s - n->slot) : UINT32_MAX;
	o->cookie = 0;
}

static int sn_adopt(void *ctx, struct tcp_cb *c, const struct tcp_owner *o)
{
	struct sn_node *n = ctx;

	if (o->app_id != 1)
		return -ENOENT;
	if (o->sock != UINT32_MAX && o->sock >= SN_SLOTS)
		return -EINVAL;
	tcp_adopt(c, NULL, NULL, NULL, NULL, sn_event, n,
		  o->sock == UINT32_MAX ? NULL : &n->slot[o->sock]);
	if (o->sock != UINT32_MAX)
		n->slot[o->sock] = c;
	return 0;
}

struct sn_node *sn_create(uint64_t now)
{
	struct sn_node *n = calloc(1, sizeof(*n));
	struct net_io io = { .alloc = sn_alloc, .xmit = sn_xmit, .free = sn_free };
	struct net_conf nc;
	struct tcp_conf tc;

	assert_non_null(n);
	n->outq = calloc(SN_OUTQ, sizeof(*n->outq));
	assert_non_null(n->outq);
	n->now = now;
	io.ctx = n;
	memset(&nc, 0, sizeof(nc));
	memcpy(nc.mac, sn_mac, 6);
	nc.ip = th_ip(TH_STACK_IP);
	nc.prefix_len = 24;
	nc.mtu = 1500;
	nc.arp_timeout_ms = UINT32_MAX;
	n->ns = net_create(&nc, &io, &n->st);
	assert_non_null(n->ns);
	assert_int_equal(net_arp_learn(n->ns, th_ip(TH_PEER_IP), sn_peer_mac, now), 0);
	tcp_conf_defaults(&tc);
	tc.max_conns = SN_MAX_CONNS;
	tc.rx_buf = 16384;
	tc.tx_buf = 16384;
	n->ts = tcp_create(n->ns, &tc, &n->st, now);
	assert_non_null(n->ts);
	/* reproducible ISNs, timestamps offsets and ports */
	n->ts->secret.k0 = 0x0123456789abcdefull;
	n->ts->secret.k1 = 0xfedcba9876543210ull;
	n->ts->hash_seed = (uint32_t)tcp_siphash(&n->ts->secret, "hash", 4);
	for (uint32_t i = 0; i < TCP_EPH_TABLE; i++) /* as tcp_create(), from this secret */
		n->ts->eph_table[i] = (uint32_t)tcp_siphash(&n->ts->secret, &i, sizeof(i));
	n->hooks.owner = sn_owner;
	n->hooks.adopt = sn_adopt;
	n->hooks.ctx = n;
	return n;
}

void sn_destroy(struct sn_node *n)
{
	if (!n)
		return;
	tcp_destroy(n->ts);
	net_destroy(n->ns);
	free(n->outq);
	free(n);
}

void sn_own(struct sn_node *n, int k, struct tcp_cb *c)
{
	n->slot[k] = c;
	c->ev_fn = sn_event;
	c->ev_ctx = n;
	tcp_set_user(c, &n->slot[k]);
}

void sn_input(struct sn_node *n, const struct th_tx *t)
{
	struct mst_pkt *p = sn_alloc(n);
	uint8_t ip[SN_BUF];
	size_t len = th_build(ip, sizeof(ip), t);
	uint8_t *f;

	assert_non_null(p);
	f = mst_pkt_append(p, (uint16_t)(len + 14));
	memcpy(f, sn_mac, 6);
	memcpy(f + 6, sn_peer_mac, 6);
	f[12] = 0x08;
	f[13] = 0x00;
	memcpy(f + 14, ip, len);
	net_input(n->ns, p, n->now);
	tcp_flush_acks(n->ts);
}

void sn_advance(struct sn_node *n, uint64_t ns)
{
	n->now += ns;
	net_timer(n->ns, n->now);
	tcp_timer(n->ts, n->now);
}

bool sn_output(struct sn_node *n, struct th_seg *s, uint8_t *tcp, size_t *tcp_len)
{
	while (n->out_n) {
		struct sn_frame *f = &n->outq[n->out_head];
		bool ok;

		n->out_head = (n->out_head + 1) % SN_OUTQ;
		n->out_n--;
		if (f->len < 34 || f->data[12] != 0x08 || f->data[13] != 0x00)
			continue;
		ok = th_parse(f->data + 14, f->len - 14u, s);
		if (!ok)
			continue;
		if (tcp) { /* the TCP bytes: what must match between two stacks */
			size_t ihl = (size_t)(f->data[14] & 15) * 4;

			*tcp_len = f->len - 14u - ihl;
			memcpy(tcp, f->data + 14 + ihl, *tcp_len);
		}
		return true;
	}
	return false;
}

int sn_drain(struct sn_node *n)
{
	struct th_seg s;
	int k = 0;

	while (sn_output(n, &s, NULL, NULL))
		k++;
	return k;
}

size_t sn_export(struct sn_node *n, uint8_t **out)
{
	struct mst_state_writer w;
	size_t need = 0;
	long r;

	mst_sw_init(&w, NULL, 0, n->now);
	assert_int_equal(tcp_export(n->ts, &w, &n->hooks), 0);
	(void)mst_sw_finish(&w, &need);
	*out = aligned_alloc(8, (need + 7) & ~(size_t)7);
	assert_non_null(*out);
	mst_sw_init(&w, *out, need, n->now);
	assert_int_equal(tcp_export(n->ts, &w, &n->hooks), 0);
	r = mst_sw_finish(&w, NULL);
	assert_int_equal(r, (long)need);
	return need;
}

int sn_import(const void *buf, size_t len, uint64_t now, struct sn_node **out)
{
	struct sn_node *n = sn_create(now);
	struct mst_state_reader rd;
	const void *pl;
	unsigned type;
	uint32_t plen;
	int rc;

	*out = NULL;
	rc = mst_sr_init(&rd, buf, len);
	while (!rc && (rc = mst_sr_next(&rd, &type, &pl, &plen)) == 1)
		rc = tcp_import_rec(n->ts, type, pl, plen, &n->hooks);
	if (!rc)
		rc = tcp_import_finish(n->ts, &n->hooks);
	if (rc) {
		sn_destroy(n);
		return rc;
	}
	*out = n;
	return 0;
}

/* ---- the peer -------------------------------------------------------- */

static void tx_init(const struct sn_peer *p, struct th_tx *t, uint8_t flags, uint32_t seq)
{
	memset(t, 0, sizeof(*t));
	t->sport = p->pport;
	t->dport = p->sport;
	t->seq = seq;
	t->ack = (flags & TH_ACK) ? p->ack : 0;
	t->flags = flags;
	t->win = p->win;
	t->opts = TH_OPTS_NONE;
	t->opts.ts = true;
	t->opts.tsval = p->tsval;
	t->opts.tsecr = p->ts_recent;
}

void sn_send_at(struct sn_node *n, struct sn_peer *p, uint8_t flags, uint32_t seq, const void *d,
		size_t len)
{
	struct th_tx t;

	p->tsval++;
	tx_init(p, &t, flags, seq);
	t.data = d;
	t.len = len;
	sn_input(n, &t);
}

void sn_send(struct sn_node *n, struct sn_peer *p, uint8_t flags, const void *d, size_t len)
{
	sn_send_at(n, p, flags, p->seq, d, len);
	p->seq += (uint32_t)len + !!(flags & TH_SYN) + !!(flags & TH_FIN);
}

void sn_send_sack(struct sn_node *n, struct sn_peer *p, uint32_t ack, int nsack,
		  const uint32_t (*blocks)[2])
{
	struct th_tx t;

	p->tsval++;
	tx_init(p, &t, TH_ACK, p->seq);
	t.ack = ack;
	t.opts.nsack = nsack;
	memcpy(t.opts.sack, blocks, sizeof(uint32_t[2]) * (size_t)nsack);
	sn_input(n, &t);
}

void sn_expect(struct sn_node *n, struct sn_peer *p, uint8_t flags, struct th_seg *s)
{
	struct th_seg tmp;

	if (!s)
		s = &tmp;
	if (!sn_output(n, s, NULL, NULL))
		fail_msg("expected [%s] to port %u, got nothing", th_flags_str(flags), p->pport);
	if (s->flags != flags || s->dport != p->pport)
		fail_msg("expected [%s] to %u, got [%s] to %u seq %u len %zu", th_flags_str(flags),
			 p->pport, th_flags_str(s->flags), s->dport, s->seq, s->len);
	if (s->has_ts)
		p->ts_recent = s->tsval;
	if (s->seq == p->ack)
		p->ack += (uint32_t)s->len + !!(s->flags & TH_FIN) + !!(s->flags & TH_SYN);
}

void sn_passive(struct sn_node *n, struct sn_peer *p, uint16_t port, uint16_t pport,
		uint32_t iss, bool syn_only)
{
	sn_passive_ws(n, p, port, pport, iss, syn_only, 0);
}

void sn_passive_ws(struct sn_node *n, struct sn_peer *p, uint16_t port, uint16_t pport,
		   uint32_t iss, bool syn_only, int ws)
{
	struct th_tx t;
	struct th_seg s;

	memset(p, 0, sizeof(*p));
	p->sport = port;
	p->pport = pport;
	p->seq = iss;
	p->tsval = 1000;
	p->win = 65535;
	tx_init(p, &t, TH_SYN, iss);
	t.opts = th_syn_opts();
	t.opts.ws = ws;
	sn_input(n, &t);
	p->seq = iss + 1;
	if (!sn_output(n, &s, NULL, NULL) || s.flags != (TH_SYN | TH_ACK) || s.ack != iss + 1)
		fail_msg("no SYN-ACK for port %u", pport);
	p->ack = s.seq + 1;
	p->ts_recent = s.tsval;
	if (!syn_only)
		sn_send(n, p, TH_ACK, NULL, 0);
}
