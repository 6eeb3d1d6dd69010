/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Initial sequence numbers (RFC 6528) and SYN cookies.
 *
 * ISN = M + F(localip, localport, remoteip, remoteport, secret), M a 4 µs
 * clock, F a keyed hash (SipHash-2-4 with a 128-bit secret from getrandom()
 * at start).
 *
 * SYN cookie (when the SYN queue is full): the ISN we send encodes, under a
 * keyed hash of the 4-tuple and a coarse time counter (64 s), an index into
 * a small MSS table, and whether the peer offered window scale (its value),
 * SACK. The cookie is valid for the current and previous time counter.
 */
#ifndef MST_TCP_ISN_H
#define MST_TCP_ISN_H

#include <stdbool.h>
#include <stdint.h>

struct tcp_secret {
	uint64_t k0, k1; /* SipHash key */
};

/* Fill from getrandom(); falls back to clock-derived bits only if that fails. */
void tcp_secret_init(struct tcp_secret *s);

uint64_t tcp_siphash(const struct tcp_secret *s, const void *data, unsigned len);

/* Addresses/ports in network byte order, as they are on the wire. */
uint32_t tcp_isn(const struct tcp_secret *s, uint32_t laddr, uint16_t lport, uint32_t raddr,
		 uint16_t rport, uint64_t now_ns);

struct tcp_cookie_opts {
	uint16_t mss;     /* decoded: one of the table values <= the offered MSS */
	bool sack_ok;
	bool has_wscale;
	uint8_t wscale;   /* peer's window scale (0..14) */
};

/* The ISN to send in a cookie SYN-ACK; the peer's ISN is `peer_isn`. */
uint32_t tcp_cookie_make(const struct tcp_secret *s, uint32_t laddr, uint16_t lport,
			 uint32_t raddr, uint16_t rport, uint32_t peer_isn,
			 const struct tcp_cookie_opts *o, uint64_t now_ns);
/* Validate the ACK of a cookie SYN-ACK: `cookie` = ack - 1, `peer_isn` = seq - 1.
 * Returns true and fills *o when valid. */
bool tcp_cookie_check(const struct tcp_secret *s, uint32_t laddr, uint16_t lport,
		      uint32_t raddr, uint16_t rport, uint32_t peer_isn, uint32_t cookie,
		      uint64_t now_ns, struct tcp_cookie_opts *o);

#endif
