/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target: arbitrary frame sequences into one in-process Mustang
 * stack (<mustang/sim.h>), with ASan + UBSan. Built and run by run.sh.
 *
 * One sim per input (created, driven, destroyed: the leak check covers the
 * whole stack). Input layout:
 *
 *   [config u8] then records [op u8][arg u16 LE][payload]...
 *
 * config bits: 0 raw drain (no automatic ARP answers), 1 no SACK,
 *   2 no timestamps, 3 no window scale, 4 no SYN cookies, 5 NewReno,
 *   6 small socket buffers (2 KiB), 7 small stack (max_conns 4, MTU 576).
 *
 * op % 8 (for ops 0, 1, 2, 6, 7 arg is the payload length, clipped to what
 * is left; ops 3, 4, 5 take no payload, arg is their argument):
 *   0 Ethernet frame as-is                       mst_sim_input
 *   1 IPv4 packet as-is                          mst_sim_input_ip
 *   2 TCP segment on a valid IPv4 header, see build_tcp()
 *   3 advance the clock arg ms
 *   4 app action, see app_action()
 *   5 advance the clock arg s
 *   6 ICMP error quoting one of the stack's TCP flows, see build_icmp_err()
 *   7 IPv4 packet with fix-ups: version/IHL sane, total length, addresses,
 *     IP checksum and (TCP/UDP/ICMP) L4 checksum recomputed
 * After each record every frame the stack sent is drained (in the default
 * mode with mst_sim_output_ip(), which answers the stack's ARP requests).
 *
 * The only thing read from drained frames is the sequence state of the
 * stack's TCP segments (ports, seq, ack, TSval): ISNs are hashed from a
 * secret, so without it the fuzzer could never ACK a SYN-ACK; op 2 can
 * give seq/ack relative to that state. getrandom() is replaced at build
 * time (-Dgetrandom=mst_fuzz_getrandom) so runs are reproducible.
 */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <netinet/in.h>

#include <mustang/sim.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);
ssize_t mst_fuzz_getrandom(void *buf, size_t len, unsigned int flags);

/*
 * The stack's sources are compiled with calloc()/free() renamed to these
 * (run.sh): mst_fuzz_calloc_pool() in transport/sim/sim.c, mst_fuzz_calloc()
 * elsewhere. mst_sim_create() callocs a packet pool of SIM_BUFS x ~10 KiB
 * (80 MiB) and threads a free list through every buffer, and tcp_create()
 * a 128 KiB timer wheel: fresh from the kernel that is ~20k page faults,
 * 100-250 ms per sim, ~3 inputs/s. So blocks >= 64 KiB are kept for the next
 * sim instead of being unmapped, and handed out zeroed again as calloc()
 * promises -- except the sim's packet pool (>= 1 MiB from sim.c): the sim
 * initialises every field it reads in a buffer (sim_alloc(), the free list),
 * so re-zeroing 80 MiB per input would buy nothing; packet bytes of the
 * previous input stay in it. Kept blocks are not poisoned between inputs
 * (20 MiB of shadow writes per input). Smaller blocks go to the real
 * calloc()/free() and are leak-checked as usual; a kept block that is never
 * given back is reported by the harness itself (see LLVMFuzzerTestOneInput).
 */
void *mst_fuzz_calloc(size_t n, size_t size);
void *mst_fuzz_calloc_pool(size_t n, size_t size);
void mst_fuzz_free(void *p);

#define KEEP_MIN (64u << 10)
#define KEEP_NOZERO (1u << 20)
#define NKEPT 8

static struct kept {
	void *p;
	size_t size;
	bool busy;
} kept[NKEPT];

static void *keep_calloc(size_t n, size_t size, bool pool)
{
	struct kept *k = NULL;
	size_t t;

	if (__builtin_mul_overflow(n, size, &t) || t < KEEP_MIN)
		return calloc(n, size);
	for (unsigned i = 0; i < NKEPT; i++)
		if (kept[i].p && !kept[i].busy && kept[i].size == t) {
			k = &kept[i];
			if (!pool || t < KEEP_NOZERO)
				memset(k->p, 0, t);
			k->busy = true;
			return k->p;
		}
	for (unsigned i = 0; i < NKEPT && !k; i++)
		if (!kept[i].p)
			k = &kept[i];
	if (!k)
		return calloc(n, size);
	k->p = calloc(n, size);
	if (!k->p)
		return NULL;
	k->size = t;
	k->busy = true;
	return k->p;
}

void *mst_fuzz_calloc(size_t n, size_t size)
{
	return keep_calloc(n, size, false);
}

void *mst_fuzz_calloc_pool(size_t n, size_t size)
{
	return keep_calloc(n, size, true);
}

void mst_fuzz_free(void *p)
{
	for (unsigned i = 0; p && i < NKEPT; i++)
		if (kept[i].p == p) {
			kept[i].busy = false;
			return;
		}
	free(p);
}

static void check_kept_released(void)
{
	for (unsigned i = 0; i < NKEPT; i++)
		if (kept[i].busy) {
			fprintf(stderr, "LEAK: a %zu-byte block calloc'd by the stack was not freed by "
					"mst_sim_destroy()\n", kept[i].size);
			abort();
		}
}

/* Deterministic "entropy" for the stack's secret (see run.sh). */
ssize_t mst_fuzz_getrandom(void *buf, size_t len, unsigned int flags)
{
	uint8_t *b = buf;

	(void)flags;
	for (size_t i = 0; i < len; i++)
		b[i] = (uint8_t)(0xa5 ^ (i * 29));
	return (ssize_t)len;
}

/* An IPv4 address in network order, usable in static initializers. */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define IP4(a, b, c, d) ((uint32_t)(a) | (uint32_t)(b) << 8 | (uint32_t)(c) << 16 | (uint32_t)(d) << 24)
#else
#define IP4(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (uint32_t)(d))
#endif

static const uint8_t stack_mac[6] = { 0x02, 0, 0, 0, 0, 0x01 };
static const uint8_t peer_mac[6] = { 0x02, 0, 0, 0, 0, 0x02 };
#define STACK_IP IP4(10, 0, 0, 1)
#define LISTEN_PORT 5000
#define NFLOWS 16
#define NSLOTS 8
#define MAX_FRAME 10240

static bool debug;

struct flow {
	bool used;
	uint32_t rip;          /* peer, network order */
	uint16_t lport, rport; /* host order */
	uint32_t nxt;          /* highest seq end the stack sent */
	uint32_t una_hint;     /* lowest seq the stack sent (last retransmit) */
	uint32_t ack;          /* the stack's last ACK: what it expects */
	uint32_t tsval;        /* the stack's last TSval */
};

struct fz {
	struct mst_sim *sim;
	bool raw_drain;
	int listener;
	int slot[NSLOTS];
	struct flow flows[NFLOWS];
	unsigned last_flow, next_victim;
	uint16_t ip_id;
	uint32_t ts_clock;
};

static const uint32_t peers[4] = {
	IP4(10, 0, 0, 2), IP4(10, 0, 0, 3), IP4(192, 0, 2, 9), IP4(10, 0, 0, 2),
};

static uint8_t pattern[65536];
static uint8_t rxbuf[65536];

/* ---- checksums (independent of the stack's own cksum.c) ------------------ */

static uint32_t sum16(uint32_t s, const uint8_t *p, size_t n)
{
	for (; n > 1; n -= 2, p += 2)
		s += (uint32_t)p[0] << 8 | p[1];
	if (n)
		s += (uint32_t)p[0] << 8;
	return s;
}

static uint16_t fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
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

static uint16_t le16(const uint8_t *p, size_t n, size_t off)
{
	uint16_t v = 0;

	if (off < n)
		v = p[off];
	if (off + 1 < n)
		v |= (uint16_t)(p[off + 1] << 8);
	return v;
}

static uint32_t le32(const uint8_t *p, size_t n, size_t off)
{
	return le16(p, n, off) | (uint32_t)le16(p, n, off + 2) << 16;
}

static uint8_t byte_at(const uint8_t *p, size_t n, size_t off)
{
	return off < n ? p[off] : 0;
}

/* Pseudo-header + L4 checksum over pkt+ihl .. pkt+tot (ip addresses from pkt). */
static uint16_t l4_cksum(const uint8_t *ip, size_t ihl, size_t tot, uint8_t proto)
{
	uint32_t s = 0;

	s = sum16(s, ip + 12, 8);
	s += proto;
	s += (uint32_t)(tot - ihl);
	s = sum16(s, ip + ihl, tot - ihl);
	return fold(s);
}

static void ip_header(struct fz *z, uint8_t *ip, size_t tot, uint8_t proto, uint32_t src,
		      uint32_t dst, bool df)
{
	ip[0] = 0x45;
	ip[1] = 0;
	put16(ip + 2, (uint16_t)tot);
	put16(ip + 4, z->ip_id++);
	put16(ip + 6, df ? 0x4000 : 0);
	ip[8] = 64;
	ip[9] = proto;
	put16(ip + 10, 0);
	memcpy(ip + 12, &src, 4);
	memcpy(ip + 16, &dst, 4);
	put16(ip + 10, fold(sum16(0, ip, 20)));
}

/* ---- output: drain, learn the stack's TCP sequence state ---------------- */

static struct flow *flow_find(struct fz *z, uint32_t rip, uint16_t lport, uint16_t rport)
{
	for (unsigned i = 0; i < NFLOWS; i++) {
		struct flow *f = &z->flows[i];

		if (f->used && f->rip == rip && f->lport == lport && f->rport == rport)
			return f;
	}
	return NULL;
}

static void learn_ip(struct fz *z, const uint8_t *ip, size_t n)
{
	size_t ihl, tot, doff, plen;
	uint32_t src, dst, seq, end;
	uint16_t sport, dport;
	uint8_t fl;
	struct flow *f;

	if (n < 20 || (ip[0] >> 4) != 4 || ip[9] != 6)
		return;
	ihl = (size_t)(ip[0] & 15) * 4;
	tot = get16(ip + 2);
	if (ihl < 20 || tot > n || tot < ihl + 20)
		return;
	memcpy(&src, ip + 12, 4);
	memcpy(&dst, ip + 16, 4);
	if (src != STACK_IP)
		return;
	const uint8_t *t = ip + ihl;
	doff = (size_t)(t[12] >> 4) * 4;
	if (doff < 20 || ihl + doff > tot)
		return;
	plen = tot - ihl - doff;
	sport = get16(t);
	dport = get16(t + 2);
	seq = get32(t + 4);
	fl = t[13];
	end = seq + (uint32_t)plen + ((fl & 0x02) ? 1 : 0) + ((fl & 0x01) ? 1 : 0);
	f = flow_find(z, dst, sport, dport);
	if (!f) {
		f = &z->flows[z->next_victim];
		z->next_victim = (z->next_victim + 1) % NFLOWS;
		memset(f, 0, sizeof(*f));
		f->used = true;
		f->rip = dst;
		f->lport = sport;
		f->rport = dport;
		f->nxt = end;
	} else if ((int32_t)(end - f->nxt) > 0 || (fl & 0x02)) {
		f->nxt = end;
	}
	f->una_hint = seq;
	if (fl & 0x10)
		f->ack = get32(t + 8);
	for (size_t o = 20; o < doff;) {
		uint8_t k = t[o];

		if (k == 0)
			break;
		if (k == 1) {
			o++;
			continue;
		}
		if (o + 1 >= doff || t[o + 1] < 2 || o + t[o + 1] > doff)
			break;
		if (k == 8 && t[o + 1] == 10)
			f->tsval = get32(t + o + 2);
		o += t[o + 1];
	}
	z->last_flow = (unsigned)(f - z->flows);
	if (debug)
		fprintf(stderr, "  out tcp %u->%u seq=%u ack=%u flags=%02x len=%zu win=%u\n",
			sport, dport, seq, get32(t + 8), fl, plen, get16(t + 14));
}

static void drain(struct fz *z)
{
	static uint8_t buf[MAX_FRAME];

	for (;;) {
		ssize_t n;

		if (z->raw_drain) {
			n = mst_sim_output(z->sim, buf, sizeof(buf));
			if (n <= 0)
				break;
			if (n >= 14 && buf[12] == 0x08 && buf[13] == 0x00)
				learn_ip(z, buf + 14, (size_t)n - 14);
			else if (debug)
				fprintf(stderr, "  out frame type %02x%02x len %zd\n", buf[12], buf[13], n);
		} else {
			n = mst_sim_output_ip(z->sim, buf, sizeof(buf));
			if (n <= 0)
				break;
			learn_ip(z, buf, (size_t)n);
			if (debug && buf[9] != 6)
				fprintf(stderr, "  out ip proto %u len %zd\n", buf[9], n);
		}
	}
	if (debug)
		fprintf(stderr, "  [t=%llu ms conns=%u]\n",
			(unsigned long long)(mst_sim_now(z->sim) / 1000000), mst_sim_conn_count(z->sim));
}

/* ---- op 2: a TCP segment toward the stack --------------------------------
 *
 *  b0  ctl: 1 correct TCP checksum (else b15-16 verbatim), 2 seq relative to
 *      the stack's last ACK, 4 ack relative to the stack's highest seq end,
 *      8 no DF, 16 append SACK blocks described by the first payload bytes
 *      (LE u16 start, u16 len, relative to the stack's last seq), 32 append
 *      a timestamp option (TSecr = the stack's last TSval), 64 raw options
 *      (length b17) precede the payload, 128 ack relative to the stack's last
 *      segment seq instead (acks part of the flight)
 *  b1  TCP flags; b2 low 3 bits: 0 the last flow the stack sent on,
 *      5 flow number (b2>>3)&15 mod NFLOWS; 1..4,6,7: dport 7, 9, 19,
 *      LISTEN_PORT, 80 (closed), LISTEN_PORT with sport 40000+((b2>>3)&7)
 *      and peer peers[b2>>6]
 *  b3-6 seq, b7-10 ack (LE; deltas when relative), b11-12 window,
 *  b13-14 urgent pointer, b15-16 checksum, b17 raw option length, b18.. data
 */
#define TCP_HDR_ARGS 18

static void build_tcp(struct fz *z, const uint8_t *in, size_t n)
{
	static uint8_t pkt[MAX_FRAME];
	uint8_t ctl = byte_at(in, n, 0), fl = byte_at(in, n, 1), sel = byte_at(in, n, 2);
	uint32_t seq = le32(in, n, 3), ack = le32(in, n, 7);
	uint32_t rip;
	uint16_t sport, dport;
	uint8_t opts[40];
	size_t olen = 0, rawlen, plen, tot, thl;
	const uint8_t *payload;
	struct flow *f = NULL;

	switch (sel & 7) {
	case 0:
		f = z->flows[z->last_flow].used ? &z->flows[z->last_flow] : NULL;
		break;
	case 5:
		f = &z->flows[((sel >> 3) & 15) % NFLOWS];
		if (!f->used)
			f = NULL;
		break;
	default:
		break;
	}
	if (f) {
		rip = f->rip;
		sport = f->rport;
		dport = f->lport;
	} else {
		static const uint16_t dports[8] = { 7, 7, 9, 19, LISTEN_PORT, 7, 80, LISTEN_PORT };

		rip = peers[sel >> 6];
		sport = (uint16_t)(40000 + ((sel >> 3) & 7));
		dport = dports[sel & 7];
		f = flow_find(z, rip, dport, sport);
	}
	if (f && (ctl & 2))
		seq += f->ack;
	if (f && (ctl & 4))
		ack += (ctl & 128) ? f->una_hint : f->nxt;
	else if (f && (ctl & 128))
		ack += f->una_hint;

	payload = n > TCP_HDR_ARGS ? in + TCP_HDR_ARGS : in + n;
	plen = n > TCP_HDR_ARGS ? n - TCP_HDR_ARGS : 0;
	if (ctl & 64) {
		rawlen = byte_at(in, n, 17);
		if (rawlen > 40)
			rawlen = 40;
		if (rawlen > plen)
			rawlen = plen;
		memcpy(opts, payload, rawlen);
		olen = rawlen;
		payload += rawlen;
		plen -= rawlen;
	}
	if ((ctl & 32) && olen + 12 <= 40) {
		opts[olen++] = 1;
		opts[olen++] = 1;
		opts[olen++] = 8;
		opts[olen++] = 10;
		z->ts_clock += 1 + (fl & 7);
		put32(opts + olen, z->ts_clock);
		put32(opts + olen + 4, f ? f->tsval : 0);
		olen += 8;
	}
	if ((ctl & 16) && olen + 12 <= 40) {
		/* SACK blocks described by the next payload bytes, 4 per block:
		 * LE u16 start offset from the stack's last segment seq, u16 length. */
		size_t nb = (40 - olen - 4) / 8, dl;
		uint32_t base = f ? f->una_hint : 0;

		if (nb > 4)
			nb = 4;
		if (nb > plen / 4 && plen / 4 >= 1)
			nb = plen / 4;
		dl = nb * 4 < plen ? nb * 4 : plen;
		opts[olen++] = 1;
		opts[olen++] = 1;
		opts[olen++] = 5;
		opts[olen++] = (uint8_t)(2 + nb * 8);
		for (size_t i = 0; i < nb; i++) {
			uint32_t st = base + le16(payload, dl, i * 4);
			uint32_t e = st + le16(payload, dl, i * 4 + 2);

			put32(opts + olen + i * 8, st);
			put32(opts + olen + i * 8 + 4, e);
		}
		olen += nb * 8;
		payload += dl;
		plen -= dl;
	}
	while (olen % 4)
		opts[olen++] = 0;
	thl = 20 + olen;
	if (plen > sizeof(pkt) - 20 - thl)
		plen = sizeof(pkt) - 20 - thl;
	tot = 20 + thl + plen;

	uint8_t *t = pkt + 20;
	put16(t, sport);
	put16(t + 2, dport);
	put32(t + 4, seq);
	put32(t + 8, ack);
	t[12] = (uint8_t)((thl / 4) << 4);
	t[13] = fl;
	put16(t + 14, le16(in, n, 11));
	put16(t + 16, 0);
	put16(t + 18, le16(in, n, 13));
	memcpy(t + 20, opts, olen);
	memcpy(t + thl, payload, plen);
	ip_header(z, pkt, tot, 6, rip, STACK_IP, !(ctl & 8));
	if (ctl & 1)
		put16(t + 16, l4_cksum(pkt, 20, tot, 6));
	else
		put16(t + 16, le16(in, n, 15));
	if (debug)
		fprintf(stderr, "  in  tcp %u->%u seq=%u ack=%u flags=%02x len=%zu\n", sport, dport,
			seq, ack, fl, plen);
	(void)mst_sim_input_ip(z->sim, pkt, tot);
}

/* ---- op 6: ICMP error quoting a flow -------------------------------------
 *  b0 type, b1 code, b2-3 next-hop MTU (BE, type 3 code 4), b4 flow number,
 *  b5-8 seq delta from the flow's last seq (LE), b9 quoted bytes (8..28)
 */
static void build_icmp_err(struct fz *z, const uint8_t *in, size_t n)
{
	uint8_t pkt[20 + 8 + 20 + 28];
	struct flow *f = &z->flows[byte_at(in, n, 4) % NFLOWS];
	uint32_t rip = f->used ? f->rip : peers[0];
	size_t q = byte_at(in, n, 9) % 21 + 8, tot = 20 + 8 + 20 + q;
	uint8_t *ic = pkt + 20, *inner = pkt + 28, *t = pkt + 48;

	memset(pkt, 0, sizeof(pkt));
	ic[0] = byte_at(in, n, 0);
	ic[1] = byte_at(in, n, 1);
	ic[6] = byte_at(in, n, 2);
	ic[7] = byte_at(in, n, 3);
	ip_header(z, inner, 20 + 20, 6, STACK_IP, rip, true);
	put16(t, f->used ? f->lport : 7);
	put16(t + 2, f->used ? f->rport : 40000);
	put32(t + 4, (f->used ? f->una_hint : 0) + le32(in, n, 5));
	put32(t + 8, f->used ? f->ack : 0);
	t[12] = 0x50;
	t[13] = 0x10;
	ip_header(z, pkt, tot, 1, rip, STACK_IP, false);
	put16(ic + 2, fold(sum16(0, ic, tot - 20)));
	(void)mst_sim_input_ip(z->sim, pkt, tot);
}

/* ---- op 7: IPv4 packet with fix-ups --------------------------------------
 *  The payload is a whole IPv4 packet; IHL is clamped to what fits, total
 *  length set, src = peers[b12 & 3] unless it is the stack's IP, dst = the
 *  stack (unless b16 has bit 0 set: broadcast), checksums recomputed for
 *  unfragmented TCP/UDP/ICMP.
 */
static void fixup_ip(struct fz *z, const uint8_t *in, size_t n)
{
	static uint8_t pkt[MAX_FRAME];
	size_t ihl, l4off;
	uint32_t src, dst;

	if (n < 20 || n > sizeof(pkt) - 128)
		return;
	memcpy(pkt, in, n);
	ihl = (size_t)(pkt[0] & 15) * 4;
	if (ihl < 20 || ihl > n)
		ihl = 20;
	pkt[0] = (uint8_t)(0x40 | ihl / 4);
	put16(pkt + 2, (uint16_t)n);
	src = peers[pkt[12] & 3];
	dst = (pkt[16] & 1) ? 0xffffffffu : STACK_IP;
	memcpy(pkt + 12, &src, 4);
	memcpy(pkt + 16, &dst, 4);
	put16(pkt + 10, 0);
	put16(pkt + 10, fold(sum16(0, pkt, ihl)));
	l4off = ihl;
	if ((get16(pkt + 6) & 0x3fff) == 0) {
		if (pkt[9] == 6 && n >= l4off + 20) {
			put16(pkt + l4off + 16, 0);
			put16(pkt + l4off + 16, l4_cksum(pkt, ihl, n, 6));
		} else if (pkt[9] == 17 && n >= l4off + 8) {
			uint16_t c;

			put16(pkt + l4off + 4, (uint16_t)(n - ihl));
			put16(pkt + l4off + 6, 0);
			c = l4_cksum(pkt, ihl, n, 17);
			put16(pkt + l4off + 6, c ? c : 0xffff);
		} else if (pkt[9] == 1 && n >= l4off + 4) {
			put16(pkt + l4off + 2, 0);
			put16(pkt + l4off + 2, fold(sum16(0, pkt + l4off, n - ihl)));
		}
	}
	(void)mst_sim_input_ip(z->sim, pkt, n);
}

/* ---- op 4: application calls ---------------------------------------------
 *  arg bits 0-2 action, 3-5 socket slot, 6-15 parameter p (0..1023):
 *   0 connect: new socket (bound to 6000+slot if p & 1) to peers[(p>>1)&3]
 *     port {80, 7, LISTEN_PORT, 40000}[(p>>3)&3]; on a used slot connect again
 *   1 send p*64 bytes   2 recv p*64+1 bytes   3 shutdown(p % 3)   4 close
 *   5 accept from the listener into the slot (when free)
 *   6 setsockopt: option p & 15, value p >> 4
 *   7 introspect: poll, SO_ERROR, getsockopt, tcp_info, counters
 */
static void app_action(struct fz *z, uint16_t arg)
{
	static const uint16_t rports[4] = { 80, 7, LISTEN_PORT, 40000 };
	unsigned act = arg & 7, s = (arg >> 3) & 7, p = arg >> 6;
	int *fd = &z->slot[s];
	struct mst_sim *sim = z->sim;

	switch (act) {
	case 0:
		if (*fd < 0) {
			*fd = mst_sim_socket(sim, 1);
			if (*fd < 0)
				return;
			if (p & 1)
				(void)mst_sim_bind(sim, *fd, (uint16_t)(6000 + s));
		}
		(void)mst_sim_connect(sim, *fd, peers[(p >> 1) & 3], rports[(p >> 3) & 3]);
		break;
	case 1:
		(void)mst_sim_send(sim, *fd, pattern, (size_t)p * 64);
		break;
	case 2:
		(void)mst_sim_recv(sim, *fd, rxbuf, (size_t)p * 64 + 1);
		break;
	case 3:
		(void)mst_sim_shutdown(sim, *fd, (int)(p % 3));
		break;
	case 4:
		if (*fd >= 0)
			(void)mst_sim_close(sim, *fd);
		*fd = -1;
		break;
	case 5:
		if (*fd < 0) {
			int r = mst_sim_accept(sim, z->listener, NULL, NULL);

			if (r >= 0)
				*fd = r;
		}
		break;
	case 6: {
		int v = (int)(p >> 4);
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };

		switch (p & 15) {
		case 0: (void)mst_sim_setsockopt(sim, *fd, IPPROTO_TCP, 1, &v, sizeof(v)); break;
		case 1: v *= 32; (void)mst_sim_setsockopt(sim, *fd, IPPROTO_TCP, 2, &v, sizeof(v)); break;
		case 2: (void)mst_sim_setsockopt(sim, *fd, SOL_SOCKET, SO_KEEPALIVE, &v, sizeof(v)); break;
		case 3: (void)mst_sim_setsockopt(sim, *fd, IPPROTO_TCP, 4, &v, sizeof(v)); break;
		case 4: (void)mst_sim_setsockopt(sim, *fd, IPPROTO_TCP, 5, &v, sizeof(v)); break;
		case 5: (void)mst_sim_setsockopt(sim, *fd, IPPROTO_TCP, 6, &v, sizeof(v)); break;
		case 6: v *= 1024; (void)mst_sim_setsockopt(sim, *fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v)); break;
		case 7: v *= 1024; (void)mst_sim_setsockopt(sim, *fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v)); break;
		case 8: (void)mst_sim_setsockopt(sim, *fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)); break;
		case 9: (void)mst_sim_setsockopt(sim, *fd, IPPROTO_TCP, 13, (v & 1) ? "newreno" : "cubic",
						 (v & 1) ? 7 : 5); break;
		default: break;
		}
		break;
	}
	case 7: {
		struct mst_sim_tcp_info ti;
		int v;
		size_t l = sizeof(v);
		char cc[16];
		size_t ccl = sizeof(cc);

		(void)mst_sim_poll(sim, *fd, POLLIN | POLLOUT | POLLRDHUP);
		(void)mst_sim_getsockopt(sim, *fd, SOL_SOCKET, SO_ERROR, &v, &l);
		l = sizeof(v);
		(void)mst_sim_getsockopt(sim, *fd, IPPROTO_TCP, (int)(p % 7), &v, &l);
		(void)mst_sim_getsockopt(sim, *fd, IPPROTO_TCP, 13, cc, &ccl);
		(void)mst_sim_tcp_info(sim, *fd, &ti);
		(void)mst_sim_poll(sim, z->listener, POLLIN);
		(void)mst_sim_counter(sim, "rx_frames");
		(void)mst_sim_conn_count(sim);
		break;
	}
	}
	if (debug)
		fprintf(stderr, "  app act=%u slot=%u p=%u fd=%d\n", act, s, p, *fd);
}

/* ---- driver --------------------------------------------------------------- */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	debug = getenv("MST_FUZZ_DEBUG") != NULL;
	for (size_t i = 0; i < sizeof(pattern); i++)
		pattern[i] = (uint8_t)(' ' + i % 95);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fz z;
	struct mst_sim_conf conf;
	uint8_t cfg;
	size_t off;

	if (size < 1)
		return 0;
	cfg = data[0];
	memset(&conf, 0, sizeof(conf));
	conf.version = MST_SIM_VERSION;
	memcpy(conf.mac, stack_mac, 6);
	memcpy(conf.peer_mac, peer_mac, 6);
	conf.ip = STACK_IP;
	conf.prefix_len = 24;
	conf.gw = IP4(10, 0, 0, 254);
	conf.services = MST_SIM_SVC_UDP_ECHO | MST_SIM_SVC_TCP_ECHO | MST_SIM_SVC_TCP_DISCARD |
			MST_SIM_SVC_TCP_CHARGEN;
	conf.max_conns = 64;
	conf.no_sack = !!(cfg & 2);
	conf.no_timestamps = !!(cfg & 4);
	conf.no_wscale = !!(cfg & 8);
	conf.no_syncookies = !!(cfg & 16);
	conf.cc = (cfg & 32) ? "newreno" : "cubic";
	if (cfg & 64)
		conf.rx_buf = conf.tx_buf = 2048;
	if (cfg & 128) {
		conf.max_conns = 4;
		conf.mtu = 576;
	}
	conf.start_ns = 1000000000ull;
	conf.bufs = 512; /* a small pool: creating the sim per input stays cheap */

	memset(&z, 0, sizeof(z));
	z.raw_drain = cfg & 1;
	z.ts_clock = 1000;
	for (unsigned i = 0; i < NSLOTS; i++)
		z.slot[i] = -1;
	z.sim = mst_sim_create(&conf);
	if (!z.sim) {
		/* Creating the harness must not fail: a broken build, not an input. */
		fprintf(stderr, "mst_sim_create: %s\n", strerror(errno));
		abort();
	}
	z.listener = mst_sim_socket(z.sim, 1);
	if (z.listener < 0 || mst_sim_bind(z.sim, z.listener, LISTEN_PORT) < 0 ||
	    mst_sim_listen(z.sim, z.listener, 4) < 0) {
		fprintf(stderr, "listener setup failed\n");
		abort();
	}

	for (off = 1; off + 3 <= size;) {
		uint8_t op = data[off] & 7;
		uint16_t arg = (uint16_t)(data[off + 1] | data[off + 2] << 8);
		const uint8_t *pl = data + off + 3;
		size_t left = size - off - 3, plen = arg < left ? arg : left;

		off += 3;
		if (debug)
			fprintf(stderr, "op %u arg %u\n", op, arg);
		switch (op) {
		case 0:
			(void)mst_sim_input(z.sim, pl, plen);
			off += plen;
			break;
		case 1:
			(void)mst_sim_input_ip(z.sim, pl, plen);
			off += plen;
			break;
		case 2:
			build_tcp(&z, pl, plen);
			off += plen;
			break;
		case 3:
			mst_sim_advance(z.sim, (uint64_t)arg * 1000000u);
			break;
		case 4:
			app_action(&z, arg);
			break;
		case 5:
			mst_sim_advance(z.sim, (uint64_t)arg * 1000000000u);
			break;
		case 6:
			build_icmp_err(&z, pl, plen);
			off += plen;
			break;
		case 7:
			fixup_ip(&z, pl, plen);
			off += plen;
			break;
		}
		drain(&z);
	}

	mst_sim_destroy(z.sim);
	z.sim = NULL;
	check_kept_released();
	return 0;
}
