/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A hashed timer wheel (Varghese & Lauck, scheme 6): O(1) arm, cancel and
 * per-tick expiry, timers embedded in their owners (no allocation).
 *
 * tw_init() -> tw_arm()/tw_cancel() any time -> tw_advance(now) from the
 * engine loop fires every timer whose deadline <= now, in deadline order
 * within a tick, at most `budget` per call (the rest fire on the next call).
 *
 * Timers further away than one revolution (TW_SLOTS ticks) sit in their
 * slot with a lap count and are skipped until their lap comes. Deadlines
 * are absolute, in ns; resolution is the tick (rounded up: a timer never
 * fires early).
 */
#ifndef MST_TCP_TIMER_WHEEL_H
#define MST_TCP_TIMER_WHEEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TW_SLOTS 4096u /* power of two */

struct tw_timer {
	struct tw_timer *next, *prev; /* slot list; next == NULL when not armed */
	uint64_t deadline_tick;       /* absolute tick it fires at */
	uint8_t kind;                 /* owner's tag: which of its timers this is */
};

struct tw_wheel {
	uint64_t tick_ns;             /* tick length */
	uint64_t now_tick;            /* every tick < now_tick has been processed */
	uint32_t armed;               /* timers currently armed */
	struct tw_timer slots[TW_SLOTS]; /* list heads (sentinels) */
};

typedef void (*tw_fire_fn)(struct tw_timer *t, void *ctx);

void tw_init(struct tw_wheel *w, uint64_t now_ns, uint64_t tick_ns);
/* (Re)arm t to fire at deadline_ns (past deadlines fire on the next advance). */
void tw_arm(struct tw_wheel *w, struct tw_timer *t, uint64_t deadline_ns);
void tw_cancel(struct tw_wheel *w, struct tw_timer *t);
static inline bool tw_armed(const struct tw_timer *t)
{
	return t->next != NULL;
}
/* Deadline in ns of an armed timer. */
uint64_t tw_deadline_ns(const struct tw_wheel *w, const struct tw_timer *t);
/* Fire due timers (t is disarmed before fire() is called, which may re-arm
 * it or free its owner). Returns how many fired. */
unsigned tw_advance(struct tw_wheel *w, uint64_t now_ns, tw_fire_fn fire, void *ctx,
		    unsigned budget);

#endif
