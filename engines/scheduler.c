/* SPDX-License-Identifier: BSD-3-Clause */
/* Scheduling decisions: idle back-off and the compacting state machine
 * (see sched.h for the rules). Pure functions of their inputs. */
#include "engines/scheduler.h"

void sched_backoff_init(struct sched_backoff *b, unsigned spin_polls, unsigned max_us)
{
	b->spin_polls = spin_polls;
	b->max_us = max_us ? max_us : 1;
	b->idle_polls = 0;
	b->sleep_us = 1;
}

unsigned sched_backoff_next(struct sched_backoff *b, int work)
{
	unsigned us;

	if (work > 0) {
		b->idle_polls = 0;
		b->sleep_us = 1;
		return 0;
	}
	if (b->idle_polls < b->spin_polls) {
		b->idle_polls++;
		return 0;
	}
	us = b->sleep_us;
	if (b->sleep_us < b->max_us)
		b->sleep_us = b->sleep_us * 2 > b->max_us ? b->max_us : b->sleep_us * 2;
	return us;
}

void sched_compact_init(struct sched_compact *s, unsigned max, uint64_t bound_ns)
{
	s->active = 1;
	s->max = max ? max : 1;
	s->bound_ns = bound_ns;
	s->over_ticks = 0;
	s->idle_ticks = 0;
}

enum sched_action sched_compact_tick(struct sched_compact *s, uint64_t max_delay_ns, double busy)
{
	if (max_delay_ns > s->bound_ns) {
		s->idle_ticks = 0;
		if (++s->over_ticks >= SCHED_GROW_TICKS && s->active < s->max) {
			s->over_ticks = 0;
			s->active++;
			return SCHED_GROW;
		}
		return SCHED_STAY;
	}
	s->over_ticks = 0;
	if (busy < SCHED_SHRINK_BUSY) {
		if (++s->idle_ticks >= SCHED_SHRINK_TICKS && s->active > 1) {
			s->idle_ticks = 0;
			s->active--;
			return SCHED_SHRINK;
		}
		return SCHED_STAY;
	}
	s->idle_ticks = 0;
	return SCHED_STAY;
}
