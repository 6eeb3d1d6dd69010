/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Internet checksum (RFC 1071) for IPv4, ICMP, UDP (and later TCP).
 *
 * Call order: sum = net_pseudo_sum(...) (L4 only) -> sum = net_cksum_partial()
 * over each chunk -> net_cksum_fold(sum) gives the value to store.
 *
 * Sums are kept in memory order: 16-bit words are loaded natively and the
 * result is stored back with a plain copy (net_st_cksum), which is correct
 * on either endianness (RFC 1071 §2(B)). Verification: fold the sum over the
 * whole covered data, checksum field included; a correct packet folds to 0.
 * Only the last chunk handed to net_cksum_partial() may have an odd length.
 */
#include "transport/net/net_priv.h"

uint32_t net_cksum_partial(const void *buf, size_t len, uint32_t sum)
{
	const uint8_t *b = buf;
	uint64_t acc = sum; /* 64-bit: no carry lost on jumbo frames */
	uint16_t w;

	while (len >= 8) {
		uint32_t a, c;

		memcpy(&a, b, 4);
		memcpy(&c, b + 4, 4);
		acc += (uint64_t)a + c;
		b += 8;
		len -= 8;
	}
	while (len >= 2) {
		memcpy(&w, b, 2);
		acc += w;
		b += 2;
		len -= 2;
	}
	if (len) {
		/* Pad with a zero byte at the higher address (RFC 1071). */
		w = 0;
		memcpy(&w, b, 1);
		acc += w;
	}
	/* Fold 64 -> 32 with end-around carry. */
	acc = (acc & 0xffffffffu) + (acc >> 32);
	acc = (acc & 0xffffffffu) + (acc >> 32);
	return (uint32_t)acc;
}

uint16_t net_cksum_fold(uint32_t sum)
{
	/* 32-bit words summed above as two 16-bit halves: fold them too. */
	sum = (sum & 0xffffu) + (sum >> 16);
	sum = (sum & 0xffffu) + (sum >> 16);
	return (uint16_t)~sum;
}

uint32_t net_pseudo_sum(uint32_t src, uint32_t dst, uint8_t proto, uint16_t l4_len)
{
	uint64_t acc = 0;

	/* src and dst are already in network order: sum their bytes as laid
	 * out; proto and length are converted to network order first. */
	acc += (src & 0xffffu) + (src >> 16);
	acc += (dst & 0xffffu) + (dst >> 16);
	acc += htons((uint16_t)proto);
	acc += htons(l4_len);
	acc = (acc & 0xffffffffu) + (acc >> 32);
	return (uint32_t)acc;
}
