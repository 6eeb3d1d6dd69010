/* SPDX-License-Identifier: BSD-3-Clause */
/* Fake io, fixture and frame builders for the transport/net unit tests. */
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include "net_helper.h"

const uint8_t our_mac[6] = { 0x02, 0, 0, 0, 0, 0x01 };
const uint8_t peer_mac[6] = { 0x02, 0, 0, 0, 0, 0x02 };
const uint8_t gw_mac[6] = { 0x02, 0, 0, 0, 0, 0xfe };
const uint8_t bcast_mac[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

uint32_t ip4(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
	return htonl((uint32_t)a << 24 | (uint32_t)b << 16 | (uint32_t)c << 8 | d);
}

uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

uint32_t rd32n(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

void wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* ---- fake io ---- */

static struct fake_buf *fake_buf_of(struct net_fix *f, struct mst_pkt *p)
{
	for (unsigned i = 0; i < FAKE_NBUF; i++)
		if (&f->fio.bufs[i].pkt == p)
			return &f->fio.bufs[i];
	fail_msg("buffer %p does not belong to the fake io", (void *)p);
	return NULL;
}

static struct mst_pkt *fake_io_alloc(void *ctx)
{
	struct net_fix *f = ctx;

	if (f->fio.alloc_fail) {
		f->fio.alloc_fail--;
		return NULL;
	}
	for (unsigned i = 0; i < FAKE_NBUF; i++) {
		struct fake_buf *b = &f->fio.bufs[i];

		if (b->used)
			continue;
		b->used = true;
		f->fio.in_use++;
		/* Poison, so a test notices reads of bytes nobody wrote. */
		memset(b->mem, 0xa5, sizeof(b->mem));
		memset(&b->pkt, 0, sizeof(b->pkt));
		b->pkt.data = b->mem + FAKE_HEADROOM;
		b->pkt.headroom = FAKE_HEADROOM;
		b->pkt.tailroom = FAKE_MEM - FAKE_HEADROOM;
		b->pkt.owner = b;
		return &b->pkt;
	}
	return NULL;
}

static void fake_check_view(struct fake_buf *b)
{
	/* The pkt invariant: headroom + len + tailroom == the whole buffer. */
	assert_true(b->pkt.data == b->mem + b->pkt.headroom);
	assert_int_equal(b->pkt.headroom + b->pkt.len + b->pkt.tailroom, FAKE_MEM);
}

static void fake_io_free(void *ctx, struct mst_pkt *p)
{
	struct net_fix *f = ctx;
	struct fake_buf *b = fake_buf_of(f, p);

	if (!b->used)
		fail_msg("double free of buffer %p", (void *)p);
	fake_check_view(b);
	b->used = false;
	f->fio.in_use--;
}

static void fake_io_xmit(void *ctx, struct mst_pkt *p)
{
	struct net_fix *f = ctx;
	struct fake_buf *b = fake_buf_of(f, p);

	if (!b->used)
		fail_msg("transmit of free buffer %p", (void *)p);
	fake_check_view(b);
	for (unsigned i = 0; i < f->fio.n_tx; i++)
		if (f->fio.tx[i] == p)
			fail_msg("buffer %p transmitted twice", (void *)p);
	if (f->fio.n_tx == FAKE_NTX)
		fail_msg("fake tx record full");
	f->fio.tx[f->fio.n_tx++] = p;
}

struct mst_pkt *fake_alloc(struct net_fix *f)
{
	struct mst_pkt *p = fake_io_alloc(f);

	assert_non_null(p);
	return p;
}

void fake_tx_clear(struct net_fix *f)
{
	for (unsigned i = 0; i < f->fio.n_tx; i++)
		fake_io_free(f, f->fio.tx[i]);
	f->fio.n_tx = 0;
}

void fake_assert_no_leak(struct net_fix *f)
{
	assert_int_equal(f->fio.in_use, 0);
}

/* ---- fixture ---- */

void net_default_conf(struct net_conf *c)
{
	memset(c, 0, sizeof(*c));
	memcpy(c->mac, our_mac, 6);
	c->ip = OUR_IP;
	c->prefix_len = 24;
	c->gw = GW_IP;
	c->mtu = 1500;
	c->services = NET_SVC_ECHO;
}

int net_setup(void **state)
{
	struct net_fix *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	f->io.alloc = fake_io_alloc;
	f->io.xmit = fake_io_xmit;
	f->io.free = fake_io_free;
	f->io.ctx = f;
	f->now = 1000000000ull; /* t = 1 s */
	net_default_conf(&f->conf);
	f->ns = net_create(&f->conf, &f->io, &f->st);
	if (!f->ns) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

void net_fix_restart(struct net_fix *f)
{
	net_destroy(f->ns);
	fake_tx_clear(f);
	memset(&f->st, 0, sizeof(f->st));
	f->ns = net_create(&f->conf, &f->io, &f->st);
	assert_non_null(f->ns);
}

int net_teardown(void **state)
{
	struct net_fix *f = *state;

	net_destroy(f->ns);
	fake_tx_clear(f);
	fake_assert_no_leak(f);
	free(f);
	return 0;
}

void fix_input(struct net_fix *f, struct mst_pkt *p)
{
	net_input(f->ns, p, f->now);
}

void fix_learn(struct net_fix *f, uint32_t ip, const uint8_t *mac)
{
	uint8_t got[6];

	fix_input(f, mk_arp(f, our_mac, 2, mac, ip, our_mac, OUR_IP));
	assert_true(net_arp_lookup(f->ns, ip, got, f->now));
	assert_memory_equal(got, mac, 6);
	fake_tx_clear(f);
	memset(&f->st, 0, sizeof(f->st));
}

/* ---- counters ---- */

uint64_t drops_total(const struct mst_stats *st)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < MST_DROP__COUNT; i++)
		n += st->drop[i];
	return n;
}

void assert_one_drop(const struct net_fix *f, enum mst_drop reason)
{
	for (unsigned i = 0; i < MST_DROP__COUNT; i++)
		if (f->st.drop[i] != (i == (unsigned)reason))
			fail_msg("drop %s = %llu, expected %s = 1 only", mst_drop_names[i],
				 (unsigned long long)f->st.drop[i], mst_drop_names[reason]);
}

void assert_dropped_silently(struct net_fix *f, enum mst_drop reason)
{
	assert_one_drop(f, reason);
	assert_int_equal(f->fio.n_tx, 0);
	fake_assert_no_leak(f);
}

/* ---- builders ---- */

struct mst_pkt *mk_frame(struct net_fix *f, const uint8_t *dst, const uint8_t *src,
			 uint16_t type, const void *payload, uint16_t len)
{
	struct mst_pkt *p = fake_alloc(f);
	uint8_t *d = p->data;

	assert_true(len + 14 <= p->tailroom);
	memcpy(d, dst, 6);
	memcpy(d + 6, src, 6);
	wr16(d + 12, type);
	if (len)
		memcpy(d + 14, payload, len);
	p->len = (uint16_t)(14 + len);
	p->tailroom = (uint16_t)(p->tailroom - p->len);
	return p;
}

struct mst_pkt *mk_arp(struct net_fix *f, const uint8_t *eth_dst, uint16_t op,
		       const uint8_t *sha, uint32_t spa, const uint8_t *tha, uint32_t tpa)
{
	uint8_t a[28];

	wr16(a, 1);
	wr16(a + 2, 0x0800);
	a[4] = 6;
	a[5] = 4;
	wr16(a + 6, op);
	memcpy(a + 8, sha, 6);
	memcpy(a + 14, &spa, 4);
	memcpy(a + 18, tha, 6);
	memcpy(a + 24, &tpa, 4);
	return mk_frame(f, eth_dst, sha, NET_ETHERTYPE_ARP, a, sizeof(a));
}

uint16_t build_ipv4(uint8_t *buf, uint32_t src, uint32_t dst, uint8_t proto,
		    const void *l4, uint16_t l4len)
{
	uint16_t tot = (uint16_t)(20 + l4len);

	memset(buf, 0, 20);
	buf[0] = 0x45;
	wr16(buf + 2, tot);
	wr16(buf + 4, 0x1234);
	buf[8] = 64;
	buf[9] = proto;
	memcpy(buf + 12, &src, 4);
	memcpy(buf + 16, &dst, 4);
	if (l4len)
		memmove(buf + 20, l4, l4len);
	uint16_t c = net_cksum_fold(net_cksum_partial(buf, 20, 0));
	memcpy(buf + 10, &c, 2);
	return tot;
}

uint16_t build_udp(uint8_t *buf, uint32_t src, uint32_t dst, uint16_t sport,
		   uint16_t dport, const void *payload, uint16_t plen, bool cksum)
{
	uint16_t len = (uint16_t)(8 + plen);

	wr16(buf, sport);
	wr16(buf + 2, dport);
	wr16(buf + 4, len);
	wr16(buf + 6, 0);
	if (plen)
		memcpy(buf + 8, payload, plen);
	if (cksum) {
		uint16_t c = net_cksum_fold(
			net_cksum_partial(buf, len, net_pseudo_sum(src, dst, 17, len)));

		if (c == 0)
			c = 0xffff;
		memcpy(buf + 6, &c, 2);
	}
	return len;
}

uint16_t build_icmp_echo(uint8_t *buf, uint8_t type, uint16_t id, uint16_t seq,
			 const void *payload, uint16_t plen)
{
	uint16_t len = (uint16_t)(8 + plen);
	uint16_t c;

	buf[0] = type;
	buf[1] = 0;
	wr16(buf + 2, 0);
	wr16(buf + 4, id);
	wr16(buf + 6, seq);
	if (plen)
		memcpy(buf + 8, payload, plen);
	c = net_cksum_fold(net_cksum_partial(buf, len, 0));
	memcpy(buf + 2, &c, 2);
	return len;
}

struct mst_pkt *mk_ip_frame(struct net_fix *f, uint32_t src, uint32_t dst, uint8_t proto,
			    const void *l4, uint16_t l4len)
{
	uint8_t buf[FAKE_MEM];
	uint16_t n = build_ipv4(buf, src, dst, proto, l4, l4len);

	return mk_frame(f, our_mac, peer_mac, NET_ETHERTYPE_IPV4, buf, n);
}

void fix_ip_cksum(struct mst_pkt *p)
{
	uint8_t *ih = p->data + 14;
	unsigned ihl = (ih[0] & 15u) * 4;
	uint16_t c;

	ih[10] = ih[11] = 0;
	c = net_cksum_fold(net_cksum_partial(ih, ihl, 0));
	memcpy(ih + 10, &c, 2);
}

bool l4_cksum_ok(const uint8_t *iph)
{
	unsigned ihl = (iph[0] & 15u) * 4;
	uint16_t l4len = (uint16_t)(rd16(iph + 2) - ihl);
	uint32_t sum = 0;

	if (iph[9] != NET_IP_PROTO_ICMP && iph[9] != NET_IP_PROTO_UDP && iph[9] != NET_IP_PROTO_TCP)
		return true; /* no L4 checksum we know of */
	if (iph[9] != NET_IP_PROTO_ICMP)
		sum = net_pseudo_sum(rd32n(iph + 12), rd32n(iph + 16), iph[9], l4len);
	return net_cksum_fold(net_cksum_partial(iph + ihl, l4len, sum)) == 0;
}

void assert_ip_frame_ok(const struct mst_pkt *p, uint32_t src, uint32_t dst, uint8_t proto)
{
	const uint8_t *ih = p->data + 14;

	assert_true(p->len >= 34);
	assert_int_equal(rd16(p->data + 12), NET_ETHERTYPE_IPV4);
	assert_memory_equal(p->data + 6, our_mac, 6);
	assert_int_equal(ih[0], 0x45);
	assert_int_equal(rd16(ih + 2), p->len - 14);
	assert_int_equal(rd16(ih + 6), 0x4000); /* DF */
	assert_int_equal(ih[8], 64);
	assert_int_equal(ih[9], proto);
	assert_int_equal(rd32n(ih + 12), src);
	assert_int_equal(rd32n(ih + 16), dst);
	assert_int_equal(net_cksum_fold(net_cksum_partial(ih, 20, 0)), 0);
	assert_true(l4_cksum_ok(ih));
}

uint8_t *must_append(struct mst_pkt *p, uint16_t n)
{
	uint8_t *d = mst_pkt_append(p, n);

	assert_non_null(d);
	return d;
}
