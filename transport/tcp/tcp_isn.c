/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Initial sequence numbers (RFC 6528) and SYN cookies, both keyed with
 * SipHash-2-4 (Aumasson & Bernstein, "SipHash: a fast short-input PRF",
 * 2012). See tcp_isn.h.
 *
 * tcp_secret_init() once -> tcp_isn() per active/passive open, or under SYN
 * flood tcp_cookie_make() for the SYN-ACK and tcp_cookie_check() on the ACK.
 *
 * Every hashed message starts with a one-byte domain tag so that an ISN, a
 * cookie pad and a cookie MAC for the same tuple are unrelated values.
 *
 * Cookie layout (32 bits, the ISN of our SYN-ACK):
 *
 *    31      26 25                            8 7                  0
 *   +----------+-------------------------------+--------------------+
 *   | count(6) |            mac (18)           |      data (8)      |
 *   +----------+-------------------------------+--------------------+
 *              \_________ XOR pad(26) = siphash(tuple, peer_isn, count) _/
 *
 *   count = (now_ns >> 36) mod 64, a ~68.7 s period, sent in clear so the
 *           check needs one counter guess, not two; accepted: current, previous.
 *   data  = mss index (bits 0-2) | sack_ok (bit 3) | wscale (bits 4-7; 15 = none)
 *   mac   = siphash(tuple, peer_isn, full counter, data), 18 bits. It binds
 *           the options to the connection, so they cannot be edited.
 *
 * The pad hides the options and makes all 26 low bits unpredictable. A
 * random 32-bit value is accepted with probability 2/64 * 2^-18 = 2^-23.
 * The peer's ISN is hashed in, so a cookie is good only for the SYN it
 * answered (no replay for another connection from the same tuple).
 */
#include "transport/tcp/tcp_isn.h"

#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "transport/tcp/tcp_opts.h"

/* ---------------------------------------------------------------- SipHash */

static inline uint64_t rotl64(uint64_t x, unsigned b)
{
	return (x << b) | (x >> (64 - b));
}

static inline uint64_t load_le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

#define SIPROUND(v0, v1, v2, v3)                                                              \
	do {                                                                                  \
		v0 += v1;                                                                     \
		v1 = rotl64(v1, 13);                                                          \
		v1 ^= v0;                                                                     \
		v0 = rotl64(v0, 32);                                                          \
		v2 += v3;                                                                     \
		v3 = rotl64(v3, 16);                                                          \
		v3 ^= v2;                                                                     \
		v0 += v3;                                                                     \
		v3 = rotl64(v3, 21);                                                          \
		v3 ^= v0;                                                                     \
		v2 += v1;                                                                     \
		v1 = rotl64(v1, 17);                                                          \
		v1 ^= v2;                                                                     \
		v2 = rotl64(v2, 32);                                                          \
	} while (0)

uint64_t tcp_siphash(const struct tcp_secret *s, const void *data, unsigned len)
{
	const uint8_t *p = data;
	uint64_t v0 = s->k0 ^ 0x736f6d6570736575ull; /* "somepseudorandomlygeneratedbytes" */
	uint64_t v1 = s->k1 ^ 0x646f72616e646f6dull;
	uint64_t v2 = s->k0 ^ 0x6c7967656e657261ull;
	uint64_t v3 = s->k1 ^ 0x7465646279746573ull;
	unsigned left = len & 7;
	const uint8_t *end = p + (len - left);

	for (; p != end; p += 8) {
		uint64_t m = load_le64(p);

		v3 ^= m;
		SIPROUND(v0, v1, v2, v3); /* c = 2 compression rounds */
		SIPROUND(v0, v1, v2, v3);
		v0 ^= m;
	}
	/* Last block: the remaining bytes, little-endian, length mod 256 on top. */
	uint64_t b = (uint64_t)(len & 0xff) << 56;

	for (unsigned i = 0; i < left; i++)
		b |= (uint64_t)p[i] << (8 * i);
	v3 ^= b;
	SIPROUND(v0, v1, v2, v3);
	SIPROUND(v0, v1, v2, v3);
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND(v0, v1, v2, v3); /* d = 4 finalization rounds */
	SIPROUND(v0, v1, v2, v3);
	SIPROUND(v0, v1, v2, v3);
	SIPROUND(v0, v1, v2, v3);
	return v0 ^ v1 ^ v2 ^ v3;
}

/* ---------------------------------------------------------------- secret */

void tcp_secret_init(struct tcp_secret *s)
{
	uint8_t k[16];
	size_t got = 0;

	while (got < sizeof(k)) {
		ssize_t n = getrandom(k + got, sizeof(k) - got, 0);

		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (got == sizeof(k)) {
		s->k0 = load_le64(k);
		s->k1 = load_le64(k + 8);
		return;
	}
	/* No entropy source: the best we have is clock bits, mixed. */
	struct timespec a, b;
	struct tcp_secret mix = {.k0 = 0x9e3779b97f4a7c15ull, .k1 = (uint64_t)(uintptr_t)s};

	clock_gettime(CLOCK_REALTIME, &a);
	clock_gettime(CLOCK_MONOTONIC, &b);
	s->k0 = tcp_siphash(&mix, &a, sizeof(a));
	mix.k0 = s->k0;
	s->k1 = tcp_siphash(&mix, &b, sizeof(b));
}

/* ---------------------------------------------------------------- ISN */

enum { TAG_ISN = 'I', TAG_COOKIE_PAD = 'P', TAG_COOKIE_MAC = 'M' };

/* tag(1) laddr(4) lport(2) raddr(4) rport(2) peer_isn(4) counter(8) data(1) */
struct hmsg {
	uint8_t b[26];
	unsigned len;
};

static void hmsg_put(struct hmsg *m, const void *v, unsigned n)
{
	memcpy(m->b + m->len, v, n);
	m->len += n;
}

static void hmsg_tuple(struct hmsg *m, uint8_t tag, uint32_t laddr, uint16_t lport,
		       uint32_t raddr, uint16_t rport)
{
	m->len = 0;
	hmsg_put(m, &tag, 1);
	hmsg_put(m, &laddr, 4);
	hmsg_put(m, &lport, 2);
	hmsg_put(m, &raddr, 4);
	hmsg_put(m, &rport, 2);
}

uint32_t tcp_isn(const struct tcp_secret *s, uint32_t laddr, uint16_t lport, uint32_t raddr,
		 uint16_t rport, uint64_t now_ns)
{
	struct hmsg m;

	/* RFC 6528 §3: ISN = M + F(4-tuple, secret), M ticking every 4 µs. */
	hmsg_tuple(&m, TAG_ISN, laddr, lport, raddr, rport);
	return (uint32_t)(now_ns / 4000) + (uint32_t)tcp_siphash(s, m.b, m.len);
}

/* ---------------------------------------------------------------- cookies */

#define COOKIE_COUNT_SHIFT 36 /* 2^36 ns = 68.7 s per counter step */
#define COOKIE_COUNT_BITS 6
#define COOKIE_MAC_BITS 18
#define COOKIE_DATA_BITS 8
#define COOKIE_LOW_BITS (COOKIE_MAC_BITS + COOKIE_DATA_BITS) /* 26, under the pad */
#define COOKIE_LOW_MASK ((1u << COOKIE_LOW_BITS) - 1)
#define COOKIE_COUNT_MASK ((1u << COOKIE_COUNT_BITS) - 1)
#define COOKIE_WS_NONE 15

/*
 * MSS values worth preserving: 88 (the floor we clamp to, so the entry we
 * pick is never above what the peer offered), 536 (RFC 9293 default), 1220
 * (IPv6 minimum MTU minus headers), 1300/1380 (tunnels, VPNs), 1440 (PPPoE
 * and friends), 1460 (Ethernet), 8940 (9000-byte jumbo frames).
 */
static const uint16_t cookie_mss_tab[8] = {88, 536, 1220, 1300, 1380, 1440, 1460, 8940};

_Static_assert(sizeof(cookie_mss_tab) / sizeof(cookie_mss_tab[0]) == 1u << 3,
	       "the MSS index has 3 bits");
_Static_assert(COOKIE_COUNT_BITS + COOKIE_LOW_BITS == 32, "cookie is 32 bits");

static uint32_t cookie_pad(const struct tcp_secret *s, const struct hmsg *tuple,
			   uint32_t peer_isn, uint64_t count)
{
	struct hmsg m = *tuple;

	m.b[0] = TAG_COOKIE_PAD;
	hmsg_put(&m, &peer_isn, 4);
	hmsg_put(&m, &count, 8);
	return (uint32_t)tcp_siphash(s, m.b, m.len) & COOKIE_LOW_MASK;
}

static uint32_t cookie_mac(const struct tcp_secret *s, const struct hmsg *tuple,
			   uint32_t peer_isn, uint64_t count, uint8_t data)
{
	struct hmsg m = *tuple;

	m.b[0] = TAG_COOKIE_MAC;
	hmsg_put(&m, &peer_isn, 4);
	hmsg_put(&m, &count, 8);
	hmsg_put(&m, &data, 1);
	return (uint32_t)(tcp_siphash(s, m.b, m.len) >> (64 - COOKIE_MAC_BITS));
}

static uint8_t cookie_encode(const struct tcp_cookie_opts *o)
{
	uint16_t mss = o->mss ? o->mss : TCP_MSS_DEFAULT;
	unsigned idx = 7;

	while (idx > 0 && cookie_mss_tab[idx] > mss)
		idx--;
	unsigned ws = o->has_wscale ? (o->wscale > TCP_WSCALE_MAX ? TCP_WSCALE_MAX : o->wscale)
				    : COOKIE_WS_NONE;

	return (uint8_t)(idx | (o->sack_ok ? 1u << 3 : 0) | ws << 4);
}

static void cookie_decode(uint8_t data, struct tcp_cookie_opts *o)
{
	unsigned ws = data >> 4;

	o->mss = cookie_mss_tab[data & 7];
	o->sack_ok = (data >> 3) & 1;
	o->has_wscale = ws != COOKIE_WS_NONE;
	o->wscale = o->has_wscale ? (uint8_t)ws : 0;
}

uint32_t tcp_cookie_make(const struct tcp_secret *s, uint32_t laddr, uint16_t lport,
			 uint32_t raddr, uint16_t rport, uint32_t peer_isn,
			 const struct tcp_cookie_opts *o, uint64_t now_ns)
{
	uint64_t count = now_ns >> COOKIE_COUNT_SHIFT;
	uint8_t data = cookie_encode(o);
	struct hmsg t;

	hmsg_tuple(&t, 0, laddr, lport, raddr, rport);
	uint32_t low = cookie_mac(s, &t, peer_isn, count, data) << COOKIE_DATA_BITS | data;

	return (uint32_t)(count & COOKIE_COUNT_MASK) << COOKIE_LOW_BITS |
	       (low ^ cookie_pad(s, &t, peer_isn, count));
}

bool tcp_cookie_check(const struct tcp_secret *s, uint32_t laddr, uint16_t lport,
		      uint32_t raddr, uint16_t rport, uint32_t peer_isn, uint32_t cookie,
		      uint64_t now_ns, struct tcp_cookie_opts *o)
{
	uint64_t now = now_ns >> COOKIE_COUNT_SHIFT, count;
	uint32_t c6 = cookie >> COOKIE_LOW_BITS;
	struct hmsg t;

	/* Rebuild the full counter from its low 6 bits: now or now - 1 only. */
	if (c6 == (now & COOKIE_COUNT_MASK))
		count = now;
	else if (now > 0 && c6 == ((now - 1) & COOKIE_COUNT_MASK))
		count = now - 1;
	else
		return false;
	hmsg_tuple(&t, 0, laddr, lport, raddr, rport);
	uint32_t low = (cookie & COOKIE_LOW_MASK) ^ cookie_pad(s, &t, peer_isn, count);
	uint8_t data = (uint8_t)low;

	if (low >> COOKIE_DATA_BITS != cookie_mac(s, &t, peer_isn, count, data))
		return false;
	cookie_decode(data, o);
	return true;
}
