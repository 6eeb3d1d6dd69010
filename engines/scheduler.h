/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Scheduling decisions, as pure functions of measurements (no threads, no
 * clocks) so that unit tests can drive every state change.
 *
 * Back-off (spreading and compacting modes): an engine thread that found no
 * work spins for `spin_polls` polls, then sleeps 1 µs, doubling on every
 * further idle poll up to `max_us`; any work resets it. The worst-case
 * wake-up latency is therefore max_us plus the kernel's timer slack.
 *
 * Compacting: every tick (10 ms) the runtime reports the largest queueing
 * delay any engine saw (time between two polls of an engine that had work)
 * and how busy the active workers were. The state machine grows the set of
 * active workers when the delay stays above the bound for GROW_TICKS ticks,
 * and shrinks it when the workers stay mostly idle for SHRINK_TICKS ticks:
 *
 *   STEADY --delay > bound (x GROW_TICKS)--> grow (active+1, up to max)
 *   STEADY --busy < SHRINK_BUSY (x SHRINK_TICKS)--> shrink (active-1, >= 1)
 */
#ifndef MST_ENGINES_SCHED_H
#define MST_ENGINES_SCHED_H

#include <stdint.h>

struct sched_backoff {
	unsigned spin_polls;   /* idle polls before the first sleep */
	unsigned max_us;       /* sleep cap */
	unsigned idle_polls;   /* consecutive idle polls so far */
	unsigned sleep_us;     /* next sleep */
};

void sched_backoff_init(struct sched_backoff *b, unsigned spin_polls, unsigned max_us);
/* After a poll that did `work` units: microseconds to sleep now (0 = poll again). */
unsigned sched_backoff_next(struct sched_backoff *b, int work);

#define SCHED_GROW_TICKS 3
#define SCHED_SHRINK_TICKS 100
#define SCHED_SHRINK_BUSY 0.25 /* busy fraction per active worker */

enum sched_action { SCHED_STAY, SCHED_GROW, SCHED_SHRINK };

struct sched_compact {
	unsigned active;        /* workers running engines, 1..max */
	unsigned max;           /* workers available (cores) */
	uint64_t bound_ns;      /* queueing-delay bound */
	unsigned over_ticks;    /* consecutive ticks above the bound */
	unsigned idle_ticks;    /* consecutive ticks below SHRINK_BUSY */
};

void sched_compact_init(struct sched_compact *s, unsigned max, uint64_t bound_ns);
/* One tick: max queueing delay seen (ns) and busy fraction (0..1, averaged
 * over the active workers). Applies and returns the decision. */
enum sched_action sched_compact_tick(struct sched_compact *s, uint64_t max_delay_ns, double busy);

/* Which worker runs engine `e` when `active` workers are in use. */
static inline unsigned sched_compact_worker(unsigned e, unsigned active)
{
	return active ? e % active : 0;
}

#endif /* MST_ENGINES_SCHED_H */
