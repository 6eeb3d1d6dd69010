/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Byte FIFO: the socket buffers (DESIGN §4). The RX FIFO holds in-order
 * data the app has not read, plus out-of-order data written ahead of the
 * tail at its sequence offset; the TX FIFO holds everything the app wrote
 * until the peer ACKs it (there is no second send buffer).
 *
 * head and tail are free-running u32 byte counters; used = tail - head is
 * correct modulo 2^32 as long as size <= 2^31, and a byte's place is
 * counter & (size - 1). (Single-threaded today; the shared-memory version
 * adds the acquire/release pairs.)
 */
#ifndef MST_TCP_FIFO_H
#define MST_TCP_FIFO_H

#include <stdint.h>
#include <string.h>

struct tcp_fifo {
	uint8_t *data;  /* size bytes */
	uint32_t size;  /* power of two */
	uint32_t head;  /* next byte to consume */
	uint32_t tail;  /* next byte to produce */
};

static inline uint32_t fifo_used(const struct tcp_fifo *f)
{
	return f->tail - f->head;
}

static inline uint32_t fifo_free(const struct tcp_fifo *f)
{
	return f->size - fifo_used(f);
}

/* Copy n bytes to/from ring position pos (wrapping). */
static inline void fifo_copy_in(struct tcp_fifo *f, uint32_t pos, const void *src, uint32_t n)
{
	uint32_t at = pos & (f->size - 1), first = f->size - at;

	if (first > n)
		first = n;
	memcpy(f->data + at, src, first);
	memcpy(f->data, (const uint8_t *)src + first, n - first);
}

static inline void fifo_copy_out(const struct tcp_fifo *f, uint32_t pos, void *dst, uint32_t n)
{
	uint32_t at = pos & (f->size - 1), first = f->size - at;

	if (first > n)
		first = n;
	memcpy(dst, f->data + at, first);
	memcpy((uint8_t *)dst + first, f->data, n - first);
}

/* Append up to n bytes; returns bytes written. */
static inline uint32_t fifo_write(struct tcp_fifo *f, const void *src, uint32_t n)
{
	uint32_t room = fifo_free(f);

	if (n > room)
		n = room;
	fifo_copy_in(f, f->tail, src, n);
	f->tail += n;
	return n;
}

/* Write n bytes at `off` bytes past the tail (out-of-order data); the
 * caller guarantees off + n <= fifo_free(). */
static inline void fifo_write_at(struct tcp_fifo *f, uint32_t off, const void *src, uint32_t n)
{
	fifo_copy_in(f, f->tail + off, src, n);
}

/* Read (and consume) up to n bytes; returns bytes read. */
static inline uint32_t fifo_read(struct tcp_fifo *f, void *dst, uint32_t n)
{
	uint32_t have = fifo_used(f);

	if (n > have)
		n = have;
	fifo_copy_out(f, f->head, dst, n);
	f->head += n;
	return n;
}

/* Copy n bytes starting `off` bytes past the head, without consuming. */
static inline void fifo_peek_at(const struct tcp_fifo *f, uint32_t off, void *dst, uint32_t n)
{
	fifo_copy_out(f, f->head + off, dst, n);
}

#endif
