/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * TCP options: parse what a peer sent, build what we send (RFC 9293 §3.2,
 * RFC 7323 window scale and timestamps, RFC 2018 SACK).
 *
 * Parsing is defensive: a zero or overlong option length, an option
 * truncated by the header end, or a wrong fixed length stops parsing and
 * returns -EINVAL (the caller drops the segment with a named reason);
 * unknown options are skipped by their length. Values are clamped:
 * MSS below TCP_MSS_MIN is raised to it, window scale above 14 is 14.
 */
#ifndef MST_TCP_OPTS_H
#define MST_TCP_OPTS_H

#include <stdbool.h>
#include <stdint.h>

#define TCP_OPT_EOL 0
#define TCP_OPT_NOP 1
#define TCP_OPT_MSS 2
#define TCP_OPT_WSCALE 3
#define TCP_OPT_SACK_PERM 4
#define TCP_OPT_SACK 5
#define TCP_OPT_TS 8

#define TCP_MSS_MIN 88       /* RFC 9293 says 536 default; clamp absurd tiny values (Linux: 88) */
#define TCP_MSS_DEFAULT 536  /* when the SYN has no MSS option */
#define TCP_WSCALE_MAX 14
#define TCP_MAX_SACK_BLOCKS 4
#define TCP_OPTS_MAX_LEN 40

struct tcp_sack_block {
	uint32_t start, end; /* [start, end) in sequence space */
};

struct tcp_opts {
	uint8_t has_mss : 1, has_wscale : 1, sack_ok : 1, has_ts : 1;
	uint16_t mss;
	uint8_t wscale;
	uint8_t n_sack;                             /* SACK blocks present */
	uint32_t ts_val, ts_ecr;
	struct tcp_sack_block sack[TCP_MAX_SACK_BLOCKS];
};

/* Parse `len` bytes of options (the bytes after the 20-byte header).
 * `syn`: MSS/WS/SACK-permitted are only honoured on SYN segments. */
int tcp_opts_parse(const uint8_t *p, unsigned len, bool syn, struct tcp_opts *out);

/* Build options into buf (room for TCP_OPTS_MAX_LEN); returns the length,
 * a multiple of 4 (NOP padded). Only fields whose has_* / sack_ok / n_sack
 * are set are written; SYN segments get MSS, WS, SACK-permitted, TS; others
 * TS and up to as many SACK blocks as fit (3 with TS, 4 without). */
unsigned tcp_opts_build(uint8_t *buf, const struct tcp_opts *o, bool syn);

#endif
