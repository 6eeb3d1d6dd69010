/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Byte FIFO access for one socket (private to libmustang).
 *
 * Each socket has an RX and a TX FIFO in the segment: `size` bytes (a power
 * of two) at `off` from the segment start, with free-running u32 counters.
 *   RX: engine produces at rx_tail (store-release), app consumes at rx_head.
 *   TX: app produces at tx_tail (store-release), engine frees at tx_head.
 * readable = rx_tail - rx_head and used = tx_tail - tx_head (mod 2^32) stay
 * correct across counter wrap because size divides 2^32; a byte's place is
 * counter & (size - 1). A level above `size` means the engine-written
 * counter is corrupt; callers treat it as an I/O error.
 *
 * Acquire/release pairs:
 *   F1: app load-acquire rx_tail  <-> engine store-release rx_tail after
 *       writing RX bytes: the bytes below rx_tail are visible to our copy.
 *   F2: app store-release rx_head <-> engine load-acquire rx_head: our copy
 *       out finished before the engine may overwrite the space.
 *   F3: app store-release tx_tail <-> engine load-acquire tx_tail: the TX
 *       bytes we wrote are visible before the engine reads them.
 *   F4: app load-acquire tx_head  <-> engine store-release tx_head after it
 *       is done reading (sending/retransmitting) those bytes.
 */
#ifndef MST_CLIENT_FIFO_H
#define MST_CLIENT_FIFO_H

#include <stdint.h>
#include <string.h>

/* Copy n bytes out of a FIFO starting at counter pos (wrapping). */
static inline void fifo_copy_out(const uint8_t *base, uint32_t size, uint32_t pos,
				 void *dst, uint32_t n)
{
	uint32_t at = pos & (size - 1);
	uint32_t first = size - at < n ? size - at : n;

	memcpy(dst, base + at, first);
	memcpy((uint8_t *)dst + first, base, n - first);
}

/* Copy n bytes into a FIFO starting at counter pos (wrapping). */
static inline void fifo_copy_in(uint8_t *base, uint32_t size, uint32_t pos,
				const void *src, uint32_t n)
{
	uint32_t at = pos & (size - 1);
	uint32_t first = size - at < n ? size - at : n;

	memcpy(base + at, src, first);
	memcpy(base, (const uint8_t *)src + first, n - first);
}

/* The (up to) two contiguous regions covering n bytes from pos. */
static inline void fifo_regions(uint8_t *base, uint32_t size, uint32_t pos, uint32_t n,
				void **p1, size_t *n1, void **p2, size_t *n2)
{
	uint32_t at = pos & (size - 1);
	uint32_t first = size - at < n ? size - at : n;

	*p1 = base + at;
	*n1 = first;
	*p2 = n - first ? base : NULL;
	*n2 = n - first;
}

#endif /* MST_CLIENT_FIFO_H */
