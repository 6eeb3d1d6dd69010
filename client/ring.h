/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * SPSC ring operations on struct mst_shm_ring (private to libmustang; the
 * engine has its own copy of the consumer/producer side it needs).
 *
 * prod and cons are free-running u32 counters. Because both only ever move
 * forward and the ring has a power-of-two number of slots dividing 2^32,
 * `prod - cons` computed mod 2^32 is the fill level even after either
 * counter wrapped, and `counter & (SLOTS-1)` is the slot (2^32 mod SLOTS
 * == 0, so masking stays continuous across the wrap).
 *
 * Producer: write the slot, then store-release prod   [pairs with A1]
 * Consumer: load-acquire prod                          [A1]
 *           read the slot, then store-release cons     [pairs with A2]
 * Producer: load-acquire cons before reusing a slot    [A2]
 *
 * The consumer never trusts prod: a fill level above SLOTS means the other
 * side is broken or hostile and is reported as -EBADMSG instead of reading
 * garbage slots.
 */
#ifndef MST_CLIENT_RING_H
#define MST_CLIENT_RING_H

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <mustang/shm_abi.h>

#define MST_RING_MASK (MST_SHM_RING_SLOTS - 1u)

/* Free slots from the producer's view (it owns prod, so a plain load). */
static inline uint32_t ring_free(const struct mst_shm_ring *r)
{
	uint32_t cons = __atomic_load_n(&r->cons, __ATOMIC_ACQUIRE); /* A2 */
	uint32_t used = r->prod - cons;

	return used > MST_SHM_RING_SLOTS ? 0 : MST_SHM_RING_SLOTS - used;
}

/* Enqueue one message; -ENOBUFS when full. */
static inline int ring_push(struct mst_shm_ring *r, const struct mst_shm_msg *m)
{
	uint32_t prod = r->prod;

	if (ring_free(r) == 0)
		return -ENOBUFS;
	r->slots[prod & MST_RING_MASK] = *m;
	/* Release: the slot contents above are visible before the new prod.
	 * Pairs with the consumer's acquire of prod (A1). */
	__atomic_store_n(&r->prod, prod + 1, __ATOMIC_RELEASE);
	return 0;
}

/* Messages ready for the consumer, 0 when empty, -EBADMSG when prod is
 * corrupt (fill level above the ring size). */
static inline int ring_avail(const struct mst_shm_ring *r)
{
	/* Acquire: pairs with the producer's release of prod; slots below
	 * prod are fully written once we see it (A1). */
	uint32_t prod = __atomic_load_n(&r->prod, __ATOMIC_ACQUIRE);
	uint32_t used = prod - r->cons;

	if (used > MST_SHM_RING_SLOTS)
		return -EBADMSG;
	return (int)used;
}

/* Dequeue one message: 1 when one was copied to *m, 0 when empty,
 * -EBADMSG when prod is corrupt. The slot is copied out before cons moves
 * so the producer cannot overwrite what we are reading. */
static inline int ring_pop(struct mst_shm_ring *r, struct mst_shm_msg *m)
{
	int n = ring_avail(r);
	uint32_t cons = r->cons;

	if (n <= 0)
		return n;
	*m = r->slots[cons & MST_RING_MASK];
	/* Release: our reads of the slot are done before the producer may see
	 * it free. Pairs with the producer's acquire of cons (A2). */
	__atomic_store_n(&r->cons, cons + 1, __ATOMIC_RELEASE);
	return 1;
}

/* Drop everything queued (a thread claiming a qp discards the previous
 * owner's stale events). Returns the count dropped or -EBADMSG. */
static inline int ring_drain(struct mst_shm_ring *r)
{
	int n = ring_avail(r);

	if (n > 0)
		__atomic_store_n(&r->cons, r->cons + (uint32_t)n, __ATOMIC_RELEASE); /* A2 */
	return n;
}

#endif /* MST_CLIENT_RING_H */
