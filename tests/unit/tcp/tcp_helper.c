/* SPDX-License-Identifier: BSD-3-Clause */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "tcp_helper.h"

uint32_t th_ip(const char *dotted)
{
	uint32_t a = 0;

	inet_pton(AF_INET, dotted, &a);
	return a;
}

void th_conf(struct mst_sim_conf *conf)
{
	memset(conf, 0, sizeof(*conf));
	conf->version = MST_SIM_VERSION;
	memcpy(conf->mac, (uint8_t[6]){ 2, 0, 0, 0, 0, 1 }, 6);
	memcpy(conf->peer_mac, (uint8_t[6]){ 2, 0, 0, 0, 0, 2 }, 6);
	conf->ip = th_ip(TH_STACK_IP);
	conf->prefix_len = 24;
	conf->start_ns = TH_MS(1000);
}

struct mst_sim *th_sim_create(const struct mst_sim_conf *conf)
{
	struct mst_sim *sim = mst_sim_create(conf);

	assert_non_null(sim);
	return sim;
}

struct mst_sim *th_sim_default(void)
{
	struct mst_sim_conf conf;

	th_conf(&conf);
	return th_sim_create(&conf);
}

static uint32_t sum16(const uint8_t *p, size_t n, uint32_t acc)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		acc += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (n & 1)
		acc += (uint32_t)(p[n - 1] << 8);
	return acc;
}

static uint16_t fold(uint32_t acc)
{
	while (acc >> 16)
		acc = (acc & 0xffff) + (acc >> 16);
	return (uint16_t)~acc;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static size_t encode_opts(uint8_t *o, const struct th_opts *x)
{
	size_t n = 0;

	if (x->raw) {
		memcpy(o, x->raw, x->raw_len);
		n = x->raw_len;
	} else {
		if (x->mss >= 0) {
			o[n++] = 2;
			o[n++] = 4;
			put16(o + n, (uint16_t)x->mss);
			n += 2;
		}
		if (x->sack_perm) {
			o[n++] = 1;
			o[n++] = 1;
			o[n++] = 4;
			o[n++] = 2;
		}
		if (x->ts) {
			o[n++] = 1;
			o[n++] = 1;
			o[n++] = 8;
			o[n++] = 10;
			put32(o + n, x->tsval);
			put32(o + n + 4, x->tsecr);
			n += 8;
		}
		if (x->ws >= 0) {
			o[n++] = 1;
			o[n++] = 3;
			o[n++] = 3;
			o[n++] = (uint8_t)x->ws;
		}
		if (x->nsack > 0) {
			o[n++] = 1;
			o[n++] = 1;
			o[n++] = 5;
			o[n++] = (uint8_t)(2 + 8 * x->nsack);
			for (int i = 0; i < x->nsack; i++) {
				put32(o + n, x->sack[i][0]);
				put32(o + n + 4, x->sack[i][1]);
				n += 8;
			}
		}
	}
	while (n & 3)
		o[n++] = 0;
	return n;
}

size_t th_build(uint8_t *buf, size_t cap, const struct th_tx *t)
{
	uint8_t opts[64];
	size_t olen = encode_opts(opts, &t->opts);
	size_t thl = 20 + olen;
	size_t tlen = thl + t->len;
	uint8_t *ip = buf, *tcp = buf + 20;
	uint32_t src = t->src ? t->src : th_ip(TH_PEER_IP);
	uint32_t dst = t->dst ? t->dst : th_ip(TH_STACK_IP);
	uint32_t acc;

	assert_true(olen <= 40);
	assert_true(20 + tlen <= cap);
	memset(buf, 0, 20 + thl);
	/* TCP */
	put16(tcp, t->sport ? t->sport : TH_PEER_PORT);
	put16(tcp + 2, t->dport);
	put32(tcp + 4, t->seq);
	put32(tcp + 8, t->ack);
	tcp[12] = (uint8_t)((t->doff ? t->doff : (int)(thl / 4)) << 4);
	tcp[13] = t->flags;
	put16(tcp + 14, t->win);
	memcpy(tcp + 20, opts, olen);
	if (t->len)
		memcpy(tcp + thl, t->data, t->len);
	if (t->truncate && t->truncate < tlen)
		tlen = t->truncate;
	/* pseudo header */
	acc = sum16((const uint8_t *)&src, 4, 0);
	acc = sum16((const uint8_t *)&dst, 4, acc);
	acc += 6;
	acc += (uint32_t)tlen;
	acc = sum16(tcp, tlen, acc);
	{
		uint16_t ck = fold(acc);
		if (t->bad_tcp_cksum)
			ck ^= 0x5a5a;
		if (tlen >= 18)
			put16(tcp + 16, ck);
	}
	/* IP */
	ip[0] = 0x45;
	put16(ip + 2, (uint16_t)(20 + tlen));
	put16(ip + 4, 0x1234);
	put16(ip + 6, 0x4000); /* DF */
	ip[8] = 64;
	ip[9] = 6;
	memcpy(ip + 12, &src, 4);
	memcpy(ip + 16, &dst, 4);
	put16(ip + 10, fold(sum16(ip, 20, 0)));
	return 20 + tlen;
}

void th_input(struct mst_sim *sim, const struct th_tx *t)
{
	uint8_t buf[10240];
	size_t n = th_build(buf, sizeof(buf), t);

	(void)mst_sim_input_ip(sim, buf, n);
}

bool th_parse(const uint8_t *pkt, size_t len, struct th_seg *s)
{
	size_t ihl, tot, tl;
	const uint8_t *tcp;
	uint32_t acc;

	memset(s, 0, offsetof(struct th_seg, payload));
	if (len < 20 || (pkt[0] >> 4) != 4 || pkt[9] != 6)
		return false;
	ihl = (size_t)(pkt[0] & 15) * 4;
	tot = get16(pkt + 2);
	if (tot > len || tot < ihl + 20)
		return false;
	tcp = pkt + ihl;
	tl = tot - ihl;
	memcpy(&s->src, pkt + 12, 4);
	memcpy(&s->dst, pkt + 16, 4);
	s->sport = get16(tcp);
	s->dport = get16(tcp + 2);
	s->seq = get32(tcp + 4);
	s->ack = get32(tcp + 8);
	s->doff = tcp[12] >> 4;
	s->flags = tcp[13];
	s->win = get16(tcp + 14);
	acc = sum16(pkt + 12, 8, 0) + 6 + (uint32_t)tl;
	acc = sum16(tcp, tl, acc);
	s->cksum_ok = fold(acc) == 0;
	if ((size_t)s->doff * 4 > tl || s->doff < 5)
		return true;
	for (size_t i = 20; i < (size_t)s->doff * 4;) {
		uint8_t k = tcp[i];
		uint8_t l;

		if (k == 0)
			break;
		if (k == 1) {
			i++;
			continue;
		}
		if (i + 1 >= (size_t)s->doff * 4)
			break;
		l = tcp[i + 1];
		if (l < 2 || i + l > (size_t)s->doff * 4)
			break;
		if (k == 2 && l == 4) {
			s->has_mss = true;
			s->mss = get16(tcp + i + 2);
		} else if (k == 3 && l == 3) {
			s->has_ws = true;
			s->ws = tcp[i + 2];
		} else if (k == 4 && l == 2) {
			s->sack_perm = true;
		} else if (k == 8 && l == 10) {
			s->has_ts = true;
			s->tsval = get32(tcp + i + 2);
			s->tsecr = get32(tcp + i + 6);
		} else if (k == 5 && l >= 10) {
			for (int b = 0; b < (l - 2) / 8 && b < 4; b++) {
				s->sack[b][0] = get32(tcp + i + 2 + 8 * b);
				s->sack[b][1] = get32(tcp + i + 6 + 8 * b);
				s->nsack++;
			}
		}
		i += l;
	}
	s->len = tl - (size_t)s->doff * 4;
	if (s->len > sizeof(s->payload))
		s->len = sizeof(s->payload);
	memcpy(s->payload, tcp + s->doff * 4, s->len);
	return true;
}

bool th_output(struct mst_sim *sim, struct th_seg *s)
{
	uint8_t buf[10240];
	ssize_t n;

	while ((n = mst_sim_output_ip(sim, buf, sizeof(buf))) > 0) {
		if (th_parse(buf, (size_t)n, s))
			return true;
	}
	return false;
}

const char *th_flags_str(uint8_t f)
{
	static char b[8][16];
	static int k;
	char *p = b[k++ & 7];
	const char *names = "FSRPAU";

	p[0] = 0;
	for (int i = 0; i < 6; i++)
		if (f & (1 << i)) {
			size_t l = strlen(p);
			p[l] = names[i];
			p[l + 1] = 0;
		}
	if (!p[0])
		strcpy(p, ".");
	return p;
}

void th_expect(struct mst_sim *sim, uint8_t flags, struct th_seg *s)
{
	struct th_seg tmp;

	if (!s)
		s = &tmp;
	if (!th_output(sim, s))
		fail_msg("expected a segment [%s], got none", th_flags_str(flags));
	if (s->flags != flags)
		fail_msg("expected [%s], got [%s] seq %u ack %u len %zu", th_flags_str(flags),
			 th_flags_str(s->flags), s->seq, s->ack, s->len);
	assert_true(s->cksum_ok);
}

void th_expect_none(struct mst_sim *sim)
{
	struct th_seg s;

	if (th_output(sim, &s))
		fail_msg("expected no segment, got [%s] seq %u ack %u len %zu", th_flags_str(s.flags),
			 s.seq, s.ack, s.len);
}

int th_drain(struct mst_sim *sim)
{
	struct th_seg s;
	int n = 0;

	while (th_output(sim, &s))
		n++;
	return n;
}

void th_tx_init(struct th_conn *c, struct th_tx *t, uint8_t flags)
{
	memset(t, 0, sizeof(*t));
	t->sport = c->pport;
	t->dport = c->port;
	t->seq = c->snd_nxt;
	t->ack = (flags & TH_ACK) ? c->rcv_nxt : 0;
	t->flags = flags;
	t->win = c->win;
	t->opts = TH_OPTS_NONE;
	if (c->ts) {
		t->opts.ts = true;
		t->opts.tsval = ++c->tsval;
		t->opts.tsecr = c->ts_recent;
	}
}

void th_send_at(struct th_conn *c, uint8_t flags, uint32_t seq, uint32_t ack, const void *data,
		size_t len)
{
	struct th_tx t;

	th_tx_init(c, &t, flags);
	t.seq = seq;
	t.ack = ack;
	t.data = data;
	t.len = len;
	th_input(c->sim, &t);
}

void th_send(struct th_conn *c, uint8_t flags, const void *data, size_t len)
{
	th_send_at(c, flags, c->snd_nxt, (flags & TH_ACK) ? c->rcv_nxt : 0, data, len);
	c->snd_nxt += (uint32_t)len + ((flags & TH_SYN) ? 1 : 0) + ((flags & TH_FIN) ? 1 : 0);
}

void th_cexpect(struct th_conn *c, uint8_t flags, struct th_seg *s)
{
	struct th_seg tmp;

	if (!s)
		s = &tmp;
	th_expect(c->sim, flags, s);
	assert_int_equal(s->sport, c->port);
	assert_int_equal(s->dport, c->pport);
	if (s->has_ts)
		c->ts_recent = s->tsval;
}

void th_expect_ack(struct th_conn *c, uint32_t ack)
{
	struct th_seg s;

	th_cexpect(c, TH_ACK, &s);
	assert_int_equal(s.len, 0);
	assert_int_equal(s.ack, ack);
}

void th_expect_data(struct th_conn *c, const void *data, size_t len)
{
	struct th_seg s;

	if (!th_output(c->sim, &s))
		fail_msg("expected %zu bytes of data, got no segment", len);
	if (s.has_ts)
		c->ts_recent = s.tsval;
	assert_true(s.flags & TH_ACK);
	assert_int_equal(s.seq, c->rcv_nxt);
	assert_int_equal(s.len, len);
	assert_memory_equal(s.payload, data, len);
	c->rcv_nxt += (uint32_t)len;
}

struct th_opts th_syn_opts(void)
{
	struct th_opts o = TH_OPTS_NONE;

	o.mss = 1460;
	o.sack_perm = true;
	o.ts = true;
	o.tsval = 1000;
	o.ws = 7;
	return o;
}

static void conn_init(struct th_conn *c, struct mst_sim *sim, uint32_t peer_iss,
		      const struct th_opts *o)
{
	memset(c, 0, sizeof(*c));
	c->sim = sim;
	c->fd = c->lfd = -1;
	c->pport = TH_PEER_PORT;
	c->peer_iss = peer_iss;
	c->snd_nxt = peer_iss;
	c->win = 65535;
	c->peer_ws = o ? o->ws : -1;
	c->tsval = o && o->ts ? o->tsval : 1000;
}

void th_passive_open(struct th_conn *c, struct mst_sim *sim, uint16_t port, uint32_t peer_iss,
		     const struct th_opts *syn_opts, struct th_seg *synack)
{
	struct th_opts o = syn_opts ? *syn_opts : th_syn_opts();
	struct th_seg tmp;
	struct th_tx t;
	int fd;

	if (!synack)
		synack = &tmp;
	conn_init(c, sim, peer_iss, &o);
	c->port = port;
	fd = mst_sim_socket(sim, 1);
	assert_true(fd >= 0);
	assert_int_equal(mst_sim_bind(sim, fd, port), 0);
	assert_int_equal(mst_sim_listen(sim, fd, 16), 0);
	c->lfd = fd;
	memset(&t, 0, sizeof(t));
	t.sport = c->pport;
	t.dport = port;
	t.seq = peer_iss;
	t.flags = TH_SYN;
	t.win = 65535;
	t.opts = o;
	th_input(sim, &t);
	c->snd_nxt = peer_iss + 1;
	th_cexpect(c, TH_SYN | TH_ACK, synack);
	assert_int_equal(synack->ack, peer_iss + 1);
	c->stack_iss = synack->seq;
	c->rcv_nxt = synack->seq + 1;
	c->ts = o.ts && synack->has_ts;
	c->sack = o.sack_perm && synack->sack_perm;
	if (!(o.ws >= 0 && synack->has_ws))
		c->peer_ws = -1;
	th_send(c, TH_ACK, NULL, 0);
	c->fd = mst_sim_accept(sim, fd, NULL, NULL);
	assert_true(c->fd >= 0);
	assert_int_equal(th_state(sim, c->fd), TH_ESTABLISHED);
}

void th_active_open(struct th_conn *c, struct mst_sim *sim, uint16_t pport, uint32_t peer_iss,
		    const struct th_opts *synack_opts, struct th_seg *syn)
{
	struct th_opts o = synack_opts ? *synack_opts : th_syn_opts();
	struct th_seg tmp, ack;
	struct th_tx t;
	int fd;

	if (!syn)
		syn = &tmp;
	conn_init(c, sim, peer_iss, &o);
	c->pport = pport;
	fd = mst_sim_socket(sim, 1);
	assert_true(fd >= 0);
	c->fd = fd;
	assert_int_equal(mst_sim_connect(sim, fd, th_ip(TH_PEER_IP), pport), -EINPROGRESS);
	if (!th_output(sim, syn))
		fail_msg("no SYN after connect()");
	assert_int_equal(syn->flags, TH_SYN);
	assert_int_equal(syn->dport, pport);
	c->port = syn->sport;
	c->stack_iss = syn->seq;
	c->rcv_nxt = syn->seq + 1;
	c->ts = o.ts && syn->has_ts;
	c->sack = o.sack_perm && syn->sack_perm;
	if (syn->has_ts)
		c->ts_recent = syn->tsval;
	if (!(o.ws >= 0 && syn->has_ws))
		c->peer_ws = -1;
	memset(&t, 0, sizeof(t));
	t.sport = pport;
	t.dport = c->port;
	t.seq = peer_iss;
	t.ack = c->rcv_nxt;
	t.flags = TH_SYN | TH_ACK;
	t.win = 65535;
	t.opts = o;
	if (o.ts) {
		t.opts.tsecr = syn->has_ts ? syn->tsval : 0;
		/* RFC 7323: TS in the SYN-ACK only if the SYN had it. */
		if (!syn->has_ts)
			t.opts.ts = false;
	}
	if (!syn->has_ws)
		t.opts.ws = -1;
	if (!syn->sack_perm)
		t.opts.sack_perm = false;
	th_input(sim, &t);
	c->snd_nxt = peer_iss + 1;
	th_cexpect(c, TH_ACK, &ack);
	assert_int_equal(ack.ack, peer_iss + 1);
	assert_int_equal(ack.seq, c->rcv_nxt);
	assert_int_equal(th_state(sim, fd), TH_ESTABLISHED);
}

int64_t th_ctr(struct mst_sim *sim, const char *name)
{
	int64_t v = mst_sim_counter(sim, name);

	if (v < 0)
		fail_msg("unknown counter %s", name);
	return v;
}

int th_state(struct mst_sim *sim, int fd)
{
	struct mst_sim_tcp_info ti;

	if (mst_sim_tcp_info(sim, fd, &ti) < 0)
		return -1;
	return ti.state;
}

const char *th_state_name(struct mst_sim *sim, int fd)
{
	struct mst_sim_tcp_info ti;

	if (mst_sim_tcp_info(sim, fd, &ti) < 0)
		return "(none)";
	return ti.state_name;
}

ssize_t th_recv_all(struct mst_sim *sim, int fd, void *buf, size_t cap)
{
	size_t got = 0;

	for (;;) {
		ssize_t r = mst_sim_recv(sim, fd, (uint8_t *)buf + got, cap - got);

		if (r <= 0)
			return got ? (ssize_t)got : r;
		got += (size_t)r;
		if (got == cap)
			return (ssize_t)got;
	}
}

/* Move every frame between two stacks until both are quiet. */
void th_pump(struct mst_sim *a, struct mst_sim *b)
{
	uint8_t buf[10240];
	ssize_t n;
	int moved = 1;

	while (moved) {
		moved = 0;
		while ((n = mst_sim_output(a, buf, sizeof(buf))) > 0) {
			mst_sim_input(b, buf, (size_t)n);
			moved = 1;
		}
		while ((n = mst_sim_output(b, buf, sizeof(buf))) > 0) {
			mst_sim_input(a, buf, (size_t)n);
			moved = 1;
		}
	}
}
