/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Hashed timer wheel (Varghese & Lauck, scheme 6). See tcp_timer_wheel.h.
 *
 * tw_init() -> tw_arm() / tw_cancel() -> tw_advance() -> tw_fire_slot()
 *
 * Ticks. Tick k covers [k * tick_ns, (k + 1) * tick_ns). A deadline is
 * rounded *up* to a tick (deadline_tick = ceil(deadline_ns / tick_ns)) and
 * tick k is processed only once now_ns >= k * tick_ns, so a timer never
 * fires before its deadline.
 *
 * now_tick. Every tick < now_tick is fully processed; tick now_tick itself
 * was processed by the previous tw_advance() but may have gained due
 * timers since: ones armed in the past (clamped to now_tick) or left over
 * when the budget ran out. Those mark their slot (the sentinel's `kind`,
 * unused otherwise) and the next tw_advance() scans a marked slot again,
 * so they fire on the very next call while an unchanged slot costs nothing.
 * Invariant, outside tw_advance(): every armed timer has
 * deadline_tick >= now_tick, and sits in slot deadline_tick % TW_SLOTS; the
 * ones more than a revolution away are "on a later lap" and skipped.
 *
 * Safe iteration. A due slot is spliced onto a list head on the stack and
 * drained one timer at a time from that head, so fire() may cancel any
 * timer (the doubly linked list unlinks from wherever it is), re-arm its own
 * timer (it goes to the real slot, not the detached list, so it cannot fire
 * twice in one pass), or free its owner (we never touch a timer after fire()).
 *
 * Long idle. With nothing armed, tw_advance() jumps straight to the target.
 * With timers armed it scans at most one revolution of consecutive ticks in
 * which nothing fires; such a revolution has visited every armed timer, so
 * the smallest deadline seen is the next one due and we skip to it.
 */
#include "transport/tcp/tcp_timer_wheel.h"

#include <stddef.h>

#define TW_MASK (TW_SLOTS - 1u)
#define TW_SLOT_RESCAN 1 /* slot head kind: may hold due timers, scan it again */

_Static_assert((TW_SLOTS & TW_MASK) == 0, "TW_SLOTS must be a power of two");

#ifdef TW_COUNT_SCANS
/* Test hook (built only into the unit test): slots visited by tw_advance(). */
uint64_t tw_slot_scans;
#define TW_COUNT_SCAN() (tw_slot_scans++)
#else
#define TW_COUNT_SCAN() ((void)0)
#endif

static inline void list_init(struct tw_timer *head)
{
	head->next = head;
	head->prev = head;
}

static inline bool list_empty(const struct tw_timer *head)
{
	return head->next == head;
}

static inline void list_add_tail(struct tw_timer *head, struct tw_timer *t)
{
	t->prev = head->prev;
	t->next = head;
	head->prev->next = t;
	head->prev = t;
}

static inline void list_del(struct tw_timer *t)
{
	t->prev->next = t->next;
	t->next->prev = t->prev;
	t->next = NULL; /* tw_armed() == false */
	t->prev = NULL;
}

/* Move all of src (possibly empty) to the front of dst; src becomes empty. */
static void list_splice_head(struct tw_timer *dst, struct tw_timer *src)
{
	if (list_empty(src))
		return;
	struct tw_timer *first = src->next, *last = src->prev;

	last->next = dst->next;
	dst->next->prev = last;
	dst->next = first;
	first->prev = dst;
	list_init(src);
}

void tw_init(struct tw_wheel *w, uint64_t now_ns, uint64_t tick_ns)
{
	w->tick_ns = tick_ns ? tick_ns : 1;
	w->now_tick = now_ns / w->tick_ns;
	w->armed = 0;
	for (unsigned i = 0; i < TW_SLOTS; i++) {
		list_init(&w->slots[i]);
		w->slots[i].deadline_tick = 0;
		w->slots[i].kind = 0;
	}
}

void tw_arm(struct tw_wheel *w, struct tw_timer *t, uint64_t deadline_ns)
{
	/* ceil() without the overflow of (d + tick - 1) near UINT64_MAX */
	uint64_t tick = deadline_ns / w->tick_ns + (deadline_ns % w->tick_ns != 0);

	if (tw_armed(t))
		list_del(t);
	else
		w->armed++;
	if (tick <= w->now_tick) {
		tick = w->now_tick; /* in the past: due at the next scan */
		w->slots[tick & TW_MASK].kind = TW_SLOT_RESCAN;
	}
	t->deadline_tick = tick;
	list_add_tail(&w->slots[tick & TW_MASK], t);
}

void tw_cancel(struct tw_wheel *w, struct tw_timer *t)
{
	if (!tw_armed(t))
		return;
	list_del(t);
	w->armed--;
}

uint64_t tw_deadline_ns(const struct tw_wheel *w, const struct tw_timer *t)
{
	return t->deadline_tick * w->tick_ns;
}

/*
 * Fire the timers of slot `tick` whose deadline has come, at most `budget`.
 * Timers on a later lap go back to the slot and lower *next_due. Returns
 * how many fired; fewer than budget means the slot's due timers are done.
 */
static unsigned tw_fire_slot(struct tw_wheel *w, uint64_t tick, tw_fire_fn fire, void *ctx,
			     unsigned budget, uint64_t *next_due)
{
	struct tw_timer *slot = &w->slots[tick & TW_MASK];
	struct tw_timer pending, later;
	unsigned fired = 0;

	TW_COUNT_SCAN();
	slot->kind = 0; /* fire() may mark it again */
	/* Read-only first: most visits find only later laps, and relinking
	 * them would dirty their owners' cache lines for nothing. */
	for (struct tw_timer *t = slot->next;; t = t->next) {
		if (t == slot)
			return 0;
		if (t->deadline_tick <= tick)
			break;
		if (t->deadline_tick < *next_due)
			*next_due = t->deadline_tick;
	}
	list_init(&pending);
	list_init(&later);
	list_splice_head(&pending, slot);
	while (!list_empty(&pending)) {
		struct tw_timer *t = pending.next;

		if (t->deadline_tick > tick) {
			/* A later lap: keep its place among the waiting ones. */
			if (t->deadline_tick < *next_due)
				*next_due = t->deadline_tick;
			list_del(t);
			list_add_tail(&later, t);
			continue;
		}
		if (fired == budget)
			break;
		list_del(t);
		w->armed--;
		fired++;
		fire(t, ctx); /* may re-arm t, cancel others, free t's owner */
	}
	/*
	 * Put back, in order, what was not fired: the unfired due timers and
	 * the lapped ones ahead of anything fire() armed into this slot.
	 */
	list_splice_head(slot, &pending);
	list_splice_head(slot, &later);
	return fired;
}

unsigned tw_advance(struct tw_wheel *w, uint64_t now_ns, tw_fire_fn fire, void *ctx,
		    unsigned budget)
{
	uint64_t target = now_ns / w->tick_ns; /* last tick we may process */
	uint64_t k = w->now_tick;
	uint64_t quiet = 0;                     /* consecutive ticks with no fire */
	uint64_t next_due = UINT64_MAX;         /* min lapped deadline over them */
	unsigned fired = 0;

	if (target < k || budget == 0)
		return 0; /* clock went backwards, or nothing may fire */
	if (w->slots[k & TW_MASK].kind != TW_SLOT_RESCAN) {
		/* Tick k was processed last time and nothing due was added. */
		if (k == target)
			return 0;
		k++;
	}
	while (fired < budget) {
		if (w->armed == 0) {
			k = target;
			break;
		}
		if (quiet >= TW_SLOTS) {
			/*
			 * A full revolution without a fire (so without callbacks
			 * arming anything): every armed timer was seen, and the
			 * earliest of them is next_due. Nothing is due before.
			 */
			k = next_due < target ? next_due : target;
			quiet = 0;
			next_due = UINT64_MAX;
		}
		/*
		 * While processing k < target, timers armed by fire() with a
		 * past deadline are clamped to k + 1, which this call still
		 * processes; at k == target they wait for the next call.
		 */
		w->now_tick = k < target ? k + 1 : k;
		unsigned n = tw_fire_slot(w, k, fire, ctx, budget - fired, &next_due);

		fired += n;
		if (n) {
			quiet = 0;
			next_due = UINT64_MAX;
		} else {
			quiet++;
		}
		if (fired == budget || k == target)
			break;
		k++;
	}
	/* Tick k may still hold due timers (budget): rescan it next time. */
	if (fired == budget)
		w->slots[k & TW_MASK].kind = TW_SLOT_RESCAN;
	w->now_tick = k;
	return fired;
}
