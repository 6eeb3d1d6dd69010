/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * TCP options: tcp_opts_parse() for what arrives, tcp_opts_build() for what
 * we send. See tcp_opts.h for the contract.
 *
 * Wire layouts we build (every piece a multiple of 4 bytes, as Linux does):
 *   SYN:     MSS(4) | SACK_PERM TS (12) | NOP WS(4)       = 20 bytes max
 *            (without SACK-permitted the TS gets NOP NOP in front, without
 *            TS the SACK-permitted does)
 *   non-SYN: NOP NOP TS (12) | NOP NOP SACK 2+8n          <= 40 bytes
 */
#include "transport/tcp/tcp_opts.h"

#include <errno.h>
#include <string.h>

#include "transport/tcp/tcp_seq.h"

#define TCP_OLEN_MSS 4
#define TCP_OLEN_WSCALE 3
#define TCP_OLEN_SACK_PERM 2
#define TCP_OLEN_TS 10
#define TCP_OLEN_SACK_BASE 2
#define TCP_OLEN_SACK_BLOCK 8

static inline uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void wr32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* One SACK option (RFC 2018 §3): 1..4 blocks; blocks that are empty or
 * inverted in sequence space carry nothing and are dropped, not fatal. */
static int parse_sack(const uint8_t *p, unsigned olen, struct tcp_opts *out)
{
	unsigned body = olen - TCP_OLEN_SACK_BASE;

	if (body == 0 || body % TCP_OLEN_SACK_BLOCK ||
	    body / TCP_OLEN_SACK_BLOCK > TCP_MAX_SACK_BLOCKS)
		return -EINVAL;
	for (const uint8_t *b = p + TCP_OLEN_SACK_BASE; b < p + olen; b += TCP_OLEN_SACK_BLOCK) {
		uint32_t start = rd32(b), end = rd32(b + 4);

		if (!SEQ_LT(start, end) || out->n_sack == TCP_MAX_SACK_BLOCKS)
			continue;
		out->sack[out->n_sack].start = start;
		out->sack[out->n_sack].end = end;
		out->n_sack++;
	}
	return 0;
}

int tcp_opts_parse(const uint8_t *p, unsigned len, bool syn, struct tcp_opts *out)
{
	unsigned i = 0;

	memset(out, 0, sizeof(*out));
	while (i < len) {
		uint8_t kind = p[i];

		if (kind == TCP_OPT_EOL)
			return 0; /* the rest is padding */
		if (kind == TCP_OPT_NOP) {
			i++;
			continue;
		}
		if (len - i < 2)
			return -EINVAL; /* the length byte is missing */
		unsigned olen = p[i + 1];

		if (olen < 2 || olen > len - i)
			return -EINVAL; /* zero/one (would loop or overlap), or truncated */
		const uint8_t *o = p + i;

		switch (kind) {
		case TCP_OPT_MSS:
			if (olen != TCP_OLEN_MSS)
				return -EINVAL;
			if (syn) {
				uint16_t mss = rd16(o + 2);

				out->has_mss = 1;
				out->mss = mss < TCP_MSS_MIN ? TCP_MSS_MIN : mss;
			}
			break;
		case TCP_OPT_WSCALE:
			if (olen != TCP_OLEN_WSCALE)
				return -EINVAL;
			if (syn) {
				/* RFC 7323 §2.3: log it and use 14. */
				out->has_wscale = 1;
				out->wscale = o[2] > TCP_WSCALE_MAX ? TCP_WSCALE_MAX : o[2];
			}
			break;
		case TCP_OPT_SACK_PERM:
			if (olen != TCP_OLEN_SACK_PERM)
				return -EINVAL;
			if (syn)
				out->sack_ok = 1;
			break;
		case TCP_OPT_SACK:
			if (parse_sack(o, olen, out))
				return -EINVAL;
			break;
		case TCP_OPT_TS:
			if (olen != TCP_OLEN_TS)
				return -EINVAL;
			out->has_ts = 1;
			out->ts_val = rd32(o + 2);
			out->ts_ecr = rd32(o + 6);
			break;
		default:
			break; /* unknown: skipped by its length */
		}
		i += olen;
	}
	return 0;
}

static uint8_t *put_ts(uint8_t *b, const struct tcp_opts *o)
{
	b[0] = TCP_OPT_TS;
	b[1] = TCP_OLEN_TS;
	wr32(b + 2, o->ts_val);
	wr32(b + 6, o->ts_ecr);
	return b + TCP_OLEN_TS;
}

static unsigned build_syn(uint8_t *buf, const struct tcp_opts *o)
{
	uint8_t *b = buf;

	if (o->has_mss) {
		b[0] = TCP_OPT_MSS;
		b[1] = TCP_OLEN_MSS;
		wr16(b + 2, o->mss);
		b += 4;
	}
	if (o->sack_ok && o->has_ts) {
		b[0] = TCP_OPT_SACK_PERM;
		b[1] = TCP_OLEN_SACK_PERM;
		b = put_ts(b + 2, o);
	} else if (o->has_ts) {
		b[0] = b[1] = TCP_OPT_NOP;
		b = put_ts(b + 2, o);
	} else if (o->sack_ok) {
		b[0] = b[1] = TCP_OPT_NOP;
		b[2] = TCP_OPT_SACK_PERM;
		b[3] = TCP_OLEN_SACK_PERM;
		b += 4;
	}
	if (o->has_wscale) {
		b[0] = TCP_OPT_NOP;
		b[1] = TCP_OPT_WSCALE;
		b[2] = TCP_OLEN_WSCALE;
		b[3] = o->wscale > TCP_WSCALE_MAX ? TCP_WSCALE_MAX : o->wscale;
		b += 4;
	}
	return (unsigned)(b - buf);
}

static unsigned build_data(uint8_t *buf, const struct tcp_opts *o)
{
	uint8_t *b = buf;

	if (o->has_ts) {
		b[0] = b[1] = TCP_OPT_NOP;
		b = put_ts(b + 2, o);
	}
	unsigned room = TCP_OPTS_MAX_LEN - (unsigned)(b - buf) - 4; /* NOP NOP kind len */
	unsigned n = o->n_sack;

	if (n > room / TCP_OLEN_SACK_BLOCK)
		n = room / TCP_OLEN_SACK_BLOCK; /* 3 with TS, 4 without */
	if (n) {
		b[0] = b[1] = TCP_OPT_NOP;
		b[2] = TCP_OPT_SACK;
		b[3] = (uint8_t)(TCP_OLEN_SACK_BASE + n * TCP_OLEN_SACK_BLOCK);
		b += 4;
		for (unsigned i = 0; i < n; i++, b += TCP_OLEN_SACK_BLOCK) {
			wr32(b, o->sack[i].start);
			wr32(b + 4, o->sack[i].end);
		}
	}
	return (unsigned)(b - buf);
}

unsigned tcp_opts_build(uint8_t *buf, const struct tcp_opts *o, bool syn)
{
	return syn ? build_syn(buf, o) : build_data(buf, o);
}
