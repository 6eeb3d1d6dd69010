/* SPDX-License-Identifier: BSD-3-Clause */
/* Unit tests: the hashed timer wheel (transport/tcp/tcp_timer_wheel.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "transport/tcp/tcp_timer_wheel.h"

/* Slots visited by tw_advance(); this binary builds the wheel with
 * -DTW_COUNT_SCANS so that long-idle cost is measured, not timed. */
extern uint64_t tw_slot_scans;

#define MS 1000000ull
#define SEC (1000ull * MS)
#define T0 (5 * SEC) /* arbitrary non-zero start */

#define container_of(p, type, member) ((type *)(void *)((char *)(p) - offsetof(type, member)))

struct owner {
	struct tw_timer t;
	int id;
};

#define REC_MAX 64
struct rec {
	unsigned n;
	int id[REC_MAX];
	uint64_t now[REC_MAX]; /* the now_ns of the advance that fired it */
	uint64_t now_ns;
};

static void record(struct tw_timer *t, void *ctx)
{
	struct rec *r = ctx;

	assert_false(tw_armed(t)); /* disarmed before fire() */
	assert_true(r->n < REC_MAX);
	r->id[r->n] = container_of(t, struct owner, t)->id;
	r->now[r->n] = r->now_ns;
	r->n++;
}

static unsigned adv(struct tw_wheel *w, struct rec *r, uint64_t now, unsigned budget)
{
	r->now_ns = now;
	return tw_advance(w, now, record, r, budget);
}

static struct tw_wheel *new_wheel(uint64_t now, uint64_t tick)
{
	struct tw_wheel *w = malloc(sizeof(*w));

	assert_non_null(w);
	tw_init(w, now, tick);
	return w;
}

static void test_tw_fires_at_exact_tick_never_early(void **state)
{
	struct tw_wheel *w = new_wheel(T0, MS);
	struct owner a = {.id = 1}, b = {.id = 2};
	struct rec r = {0};

	tw_arm(w, &a.t, T0 + 1500000);   /* 1.5 ms: rounds up to 2 ms */
	tw_arm(w, &b.t, T0 + 3 * MS);    /* exactly on a tick */
	assert_true(tw_armed(&a.t));
	assert_int_equal(w->armed, 2);
	assert_int_equal(tw_deadline_ns(w, &a.t), T0 + 2 * MS);
	assert_int_equal(tw_deadline_ns(w, &b.t), T0 + 3 * MS);

	assert_int_equal(adv(w, &r, T0 + 1500000, 100), 0); /* deadline, not the tick */
	assert_int_equal(adv(w, &r, T0 + 2 * MS - 1, 100), 0);
	assert_int_equal(adv(w, &r, T0 + 2 * MS, 100), 1);
	assert_int_equal(r.id[0], 1);
	assert_int_equal(adv(w, &r, T0 + 2 * MS, 100), 0); /* not twice */
	assert_int_equal(adv(w, &r, T0 + 3 * MS - 1, 100), 0);
	assert_int_equal(adv(w, &r, T0 + 3 * MS, 100), 1);
	assert_int_equal(r.id[1], 2);
	assert_int_equal(w->armed, 0);
	assert_false(tw_armed(&a.t));
	free(w);
}

static void test_tw_fire_order_by_deadline_then_arm_order(void **state)
{
	struct tw_wheel *w = new_wheel(T0, MS);
	struct owner o[6] = {0};
	/* deadlines in ms after T0, armed in this order */
	const uint64_t ms[6] = {7, 3, 5, 3, 1, 7};
	const int want[6] = {4, 1, 3, 2, 0, 5};
	struct rec r = {0};

	for (int i = 0; i < 6; i++) {
		o[i].id = i;
		tw_arm(w, &o[i].t, T0 + ms[i] * MS);
	}
	assert_int_equal(adv(w, &r, T0 + 100 * MS, 100), 6);
	for (int i = 0; i < 6; i++)
		assert_int_equal(r.id[i], want[i]);
	free(w);
}

static void test_tw_past_deadline_fires_on_next_advance(void **state)
{
	struct tw_wheel *w = new_wheel(T0, MS);
	struct owner a = {.id = 1}, b = {.id = 2};
	struct rec r = {0};

	assert_int_equal(adv(w, &r, T0 + 10 * MS + 5, 100), 0);
	tw_arm(w, &a.t, T0);      /* well in the past */
	tw_arm(w, &b.t, 0);
	assert_int_equal(adv(w, &r, T0 + 10 * MS + 5, 100), 2); /* same now */
	assert_int_equal(r.id[0], 1);
	assert_int_equal(r.id[1], 2);
	free(w);
}

static void test_tw_cancel_disarmed_is_noop_and_rearm_moves(void **state)
{
	struct tw_wheel *w = new_wheel(T0, MS);
	struct owner a = {.id = 1};
	struct rec r = {0};

	memset(&a.t, 0, sizeof(a.t));
	tw_cancel(w, &a.t);
	assert_int_equal(w->armed, 0);
	tw_arm(w, &a.t, T0 + 5 * MS);
	tw_arm(w, &a.t, T0 + 9 * MS); /* re-arm while armed */
	assert_int_equal(w->armed, 1);
	assert_int_equal(adv(w, &r, T0 + 8 * MS, 100), 0);
	assert_int_equal(adv(w, &r, T0 + 9 * MS, 100), 1);
	tw_cancel(w, &a.t);
	tw_cancel(w, &a.t);
	assert_int_equal(w->armed, 0);
	tw_arm(w, &a.t, T0 + 20 * MS);
	tw_cancel(w, &a.t);
	assert_false(tw_armed(&a.t));
	assert_int_equal(w->armed, 0);
	assert_int_equal(adv(w, &r, T0 + 30 * MS, 100), 0);
	free(w);
}

/* ---- callbacks that change the wheel ---- */

struct cb_ctx {
	struct tw_wheel *w;
	struct owner *o;   /* an array of owners */
	struct owner **heap; /* owners on the heap, by id, for the free test */
	unsigned fires[16];
	uint64_t now;
	int order[64];
	unsigned n;
};

static void cb_mutate(struct tw_timer *t, void *vctx)
{
	struct cb_ctx *c = vctx;
	struct owner *o = container_of(t, struct owner, t);

	c->fires[o->id]++;
	c->order[c->n++] = o->id;
	switch (o->id) {
	case 0: /* periodic: re-arm itself every 5 ms */
		tw_arm(c->w, t, tw_deadline_ns(c->w, t) + 5 * MS);
		break;
	case 1: /* cancels 2 (due in the same tick, after it) and arms 3 */
		tw_cancel(c->w, &c->o[2].t);
		tw_arm(c->w, &c->o[3].t, c->now + 2 * MS);
		break;
	case 4: /* re-arms itself in the past at the last tick: waits for the next advance */
		if (c->fires[4] < 3)
			tw_arm(c->w, t, 0);
		break;
	default:
		break;
	}
}

static void test_tw_rearm_cancel_arm_inside_callbacks(void **state)
{
	struct tw_wheel *w = new_wheel(T0, MS);
	struct owner o[5];
	struct cb_ctx c = {.w = w, .o = o};

	for (int i = 0; i < 5; i++)
		o[i] = (struct owner){.id = i};
	tw_arm(w, &o[0].t, T0 + 5 * MS);
	tw_arm(w, &o[1].t, T0 + 10 * MS);
	tw_arm(w, &o[2].t, T0 + 10 * MS);
	tw_arm(w, &o[4].t, T0 + 10 * MS);

	c.now = T0 + 10 * MS;
	tw_advance(w, c.now, cb_mutate, &c, 100);
	/* 0 at 5 and 10 ms; 1 and 4 at 10 ms (4's past re-arm waits) */
	assert_int_equal(c.fires[4], 1);
	assert_int_equal(c.fires[0], 2);
	assert_int_equal(c.fires[1], 1);
	assert_int_equal(c.fires[2], 0); /* cancelled by 1 */
	assert_false(tw_armed(&o[2].t));
	assert_true(tw_armed(&o[3].t));
	assert_true(tw_armed(&o[4].t));

	tw_advance(w, c.now, cb_mutate, &c, 100); /* same time: only 4 again */
	assert_int_equal(c.fires[4], 2);
	assert_int_equal(c.fires[0], 2);
	tw_advance(w, c.now, cb_mutate, &c, 100);
	assert_int_equal(c.fires[4], 3);
	assert_false(tw_armed(&o[4].t)); /* it stopped re-arming */

	c.now = T0 + 12 * MS;
	tw_advance(w, c.now, cb_mutate, &c, 100);
	assert_int_equal(c.fires[3], 1);
	c.now = T0 + 100 * MS;
	tw_advance(w, c.now, cb_mutate, &c, 100);
	assert_int_equal(c.fires[0], 2 + 18); /* 15, 20, ..., 100 ms */
	assert_int_equal(w->armed, 1);
	tw_cancel(w, &o[0].t);
	free(w);
}

static void cb_free_owner(struct tw_timer *t, void *vctx)
{
	struct cb_ctx *c = vctx;
	struct owner *o = container_of(t, struct owner, t);
	int id = o->id;

	c->order[c->n++] = id;
	/* Owner 0 also tears down owner 1 (same tick, not yet fired): the
	 * rule is cancel, then free. Then every owner frees itself. */
	if (id == 0 && c->heap[1]) {
		tw_cancel(c->w, &c->heap[1]->t);
		free(c->heap[1]);
		c->heap[1] = NULL;
	}
	free(o);
	c->heap[id] = NULL;
}

static void test_tw_callback_frees_owner(void **state)
{
	struct tw_wheel *w = new_wheel(T0, MS);
	struct owner *heap[4];
	struct cb_ctx c = {.w = w, .heap = heap};

	for (int i = 0; i < 4; i++) {
		heap[i] = calloc(1, sizeof(struct owner));
		assert_non_null(heap[i]);
		heap[i]->id = i;
		tw_arm(w, &heap[i]->t, T0 + 3 * MS); /* all in one slot */
	}
	assert_int_equal(tw_advance(w, T0 + 3 * MS, cb_free_owner, &c, 100), 3);
	assert_int_equal(c.n, 3);
	assert_int_equal(c.order[0], 0);
	assert_int_equal(c.order[1], 2);
	assert_int_equal(c.order[2], 3);
	assert_int_equal(w->armed, 0);
	for (int i = 0; i < 4; i++)
		assert_null(heap[i]);
	free(w);
}

static void test_tw_far_timers_wait_their_lap(void **state)
{
	struct tw_wheel *w = new_wheel(T0, MS);
	struct owner hour = {.id = 1}, near = {.id = 2}, lap1 = {.id = 3};
	const uint64_t h = 3600 * SEC;
	struct rec r = {0};

	tw_arm(w, &hour.t, T0 + h);
	/* Same slot as `hour`, hundreds of laps earlier. */
	tw_arm(w, &near.t, T0 + h - 870ull * TW_SLOTS * MS);
	tw_arm(w, &lap1.t, T0 + TW_SLOTS * MS + 7 * MS); /* one lap + 7 ticks */
	assert_true(870ull * TW_SLOTS * MS < h);

	/* Walk time in 0.25 s steps, as an engine that polls would; every fire
	 * must land in the first step at or after its deadline. */
	for (uint64_t now = T0; now <= T0 + h + SEC; now += SEC / 4)
		adv(w, &r, now, 100);
	assert_int_equal(r.n, 3);
	assert_int_equal(r.id[0], 3);
	assert_int_equal(r.id[1], 2);
	assert_int_equal(r.id[2], 1);
	const uint64_t dl[3] = {T0 + TW_SLOTS * MS + 7 * MS, T0 + h - 870ull * TW_SLOTS * MS, T0 + h};

	assert_true(dl[0] < dl[1]);

	for (int i = 0; i < 3; i++) {
		assert_true(r.now[i] >= dl[i]);
		assert_true(r.now[i] < dl[i] + SEC / 4);
	}
	free(w);
}

static void test_tw_far_timer_exact_tick(void **state)
{
	struct tw_wheel *w = new_wheel(T0, MS);
	struct owner hour = {.id = 1};
	const uint64_t h = 3600 * SEC;
	struct rec r = {0};

	tw_arm(w, &hour.t, T0 + h);
	assert_int_equal(adv(w, &r, T0 + h - 1, 100), 0);
	assert_int_equal(adv(w, &r, T0 + h, 100), 1);
	free(w);
}

static void test_tw_long_idle_jump_is_cheap(void **state)
{
	struct tw_wheel *w = new_wheel(T0, MS);
	struct owner a = {.id = 1}, b = {.id = 2}, c = {.id = 3};
	struct rec r = {0};
	uint64_t now = T0;

	/* Nothing armed: no slot is even looked at. */
	tw_slot_scans = 0;
	now += 1000000000000ull; /* 10^12 ns = 10^6 ticks */
	assert_int_equal(adv(w, &r, now, 100), 0);
	assert_int_equal(tw_slot_scans, 0);
	assert_int_equal(w->now_tick, now / MS);

	/* One timer 2 h away, then 10^12 ns of idle: one revolution, a jump. */
	tw_arm(w, &a.t, now + 7200 * SEC);
	tw_slot_scans = 0;
	now += 1000000000000ull;
	assert_int_equal(adv(w, &r, now, 100), 0);
	assert_true(tw_slot_scans <= TW_SLOTS + 2);
	assert_true(tw_armed(&a.t));

	/* Sparse timers each ~3 h apart, one huge advance: each costs at most
	 * a revolution, and they fire in order. */
	tw_arm(w, &b.t, now + 3 * 3600 * SEC);
	tw_arm(w, &c.t, now + 6 * 3600 * SEC + 3);
	tw_slot_scans = 0;
	now += 7 * 3600 * SEC;
	assert_int_equal(adv(w, &r, now, 100), 3);
	assert_true(tw_slot_scans <= 4 * (TW_SLOTS + 2));
	assert_int_equal(r.id[0], 1);
	assert_int_equal(r.id[1], 2);
	assert_int_equal(r.id[2], 3);
	assert_int_equal(w->armed, 0);
	free(w);
}

/* An engine polls far more often than the tick: polls within an already
 * processed tick must not walk any list. */
static void test_tw_poll_within_a_tick_scans_nothing(void **state)
{
	struct tw_wheel *w = new_wheel(T0, MS);
	struct owner far = {.id = 1}, past = {.id = 2};
	struct rec r = {0};

	tw_arm(w, &far.t, T0 + 2 * MS + 100ull * TW_SLOTS * MS); /* in the polled slot */
	assert_int_equal(adv(w, &r, T0 + 2 * MS, 100), 0);
	tw_slot_scans = 0;
	for (uint64_t ns = 0; ns < MS; ns += 1000)
		assert_int_equal(adv(w, &r, T0 + 2 * MS + ns, 100), 0);
	assert_int_equal(tw_slot_scans, 0);
	/* but a timer armed in the past meanwhile is found at once */
	tw_arm(w, &past.t, T0);
	assert_int_equal(adv(w, &r, T0 + 2 * MS + 5000, 100), 1);
	assert_int_equal(r.id[0], 2);
	assert_int_equal(tw_slot_scans, 1);
	assert_int_equal(adv(w, &r, T0 + 2 * MS + 6000, 100), 0);
	assert_int_equal(tw_slot_scans, 1);
	tw_cancel(w, &far.t);
	free(w);
}

static unsigned self_rearms;

static void cb_rearm_past(struct tw_timer *t, void *ctx)
{
	struct tw_wheel *w = ctx;

	if (++self_rearms < 3)
		tw_arm(w, t, 0);
}

/* Re-armed in the past from fire() while older ticks are being caught up:
 * due at the next tick of the same call; at the last tick, the next call.
 * Either way each tick fires it at most once, so this cannot spin. */
static void test_tw_rearm_in_past_during_catch_up(void **state)
{
	struct tw_wheel *w = new_wheel(T0, MS);
	struct tw_timer t = {0};

	tw_arm(w, &t, T0 + MS);
	assert_int_equal(tw_advance(w, T0 + 10 * MS, cb_rearm_past, w, 100), 3);
	assert_false(tw_armed(&t));
	self_rearms = 0;
	tw_arm(w, &t, T0 + 10 * MS);
	assert_int_equal(tw_advance(w, T0 + 10 * MS, cb_rearm_past, w, 100), 1);
	assert_int_equal(tw_advance(w, T0 + 10 * MS, cb_rearm_past, w, 100), 1);
	assert_int_equal(tw_advance(w, T0 + 10 * MS, cb_rearm_past, w, 100), 1);
	assert_int_equal(tw_advance(w, T0 + 10 * MS, cb_rearm_past, w, 100), 0);
	free(w);
}

static void test_tw_budget_leaves_rest_for_next_call(void **state)
{
	struct tw_wheel *w = new_wheel(T0, MS);
	struct owner o[10] = {0};
	struct rec r = {0};

	for (int i = 0; i < 10; i++) {
		o[i].id = i;
		tw_arm(w, &o[i].t, T0 + (uint64_t)(1 + i / 4) * MS); /* 4 at 1 ms, 4 at 2, 2 at 3 */
	}
	assert_int_equal(adv(w, &r, T0 + 3 * MS, 3), 3);
	assert_int_equal(adv(w, &r, T0 + 3 * MS, 3), 3);
	assert_int_equal(adv(w, &r, T0 + 3 * MS, 0), 0);
	assert_int_equal(adv(w, &r, T0 + 3 * MS, 3), 3);
	assert_int_equal(adv(w, &r, T0 + 3 * MS, 3), 1);
	assert_int_equal(adv(w, &r, T0 + 3 * MS, 3), 0);
	for (int i = 0; i < 10; i++)
		assert_int_equal(r.id[i], i);
	assert_int_equal(w->armed, 0);
	free(w);
}

/* ---- 100k timers against a reference model ---- */

#define NT 100000
struct model_ctx {
	struct owner *o;
	uint64_t *deadline; /* model: ns, meaningful when armed[i] */
	uint8_t *armed;
	uint64_t now;
	uint64_t last_tick; /* deadline tick of the previous fire in this call */
	uint64_t tick_ns;
	unsigned fired;
};

static uint64_t rng_state = 0x243f6a8885a308d3ull;

static uint64_t rng(void)
{
	uint64_t x = rng_state; /* xorshift64* */

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return x * 0x2545f4914f6cdd1dull;
}

static void model_fire(struct tw_timer *t, void *vctx)
{
	struct model_ctx *m = vctx;
	int i = container_of(t, struct owner, t)->id;
	uint64_t dtick = m->deadline[i] / m->tick_ns + (m->deadline[i] % m->tick_ns != 0);

	assert_true(m->armed[i]);
	assert_true(m->deadline[i] <= m->now); /* never early */
	/* In deadline-tick order; a timer armed in the past was clamped up
	 * to the wheel's tick at the time, never down. */
	assert_true(t->deadline_tick >= dtick);
	assert_true(t->deadline_tick >= m->last_tick);
	m->last_tick = t->deadline_tick;
	m->armed[i] = 0;
	m->fired++;
}

static void test_tw_100k_random_vs_model(void **state)
{
	const uint64_t tick = 100000; /* 100 µs */
	struct tw_wheel *w = new_wheel(T0, tick);
	struct model_ctx m = {.tick_ns = tick};
	uint64_t now = T0, total = 0;

	m.o = calloc(NT, sizeof(*m.o));
	m.deadline = calloc(NT, sizeof(*m.deadline));
	m.armed = calloc(NT, 1);
	assert_non_null(m.o);
	assert_non_null(m.deadline);
	assert_non_null(m.armed);
	for (int i = 0; i < NT; i++) { /* all 100k armed to start with */
		m.o[i].id = i;
		m.deadline[i] = now + rng() % (20 * TW_SLOTS * tick);
		m.armed[i] = 1;
		tw_arm(w, &m.o[i].t, m.deadline[i]);
	}
	assert_int_equal(w->armed, NT);

	for (int round = 0; round < 400; round++) {
		for (int k = 0; k < 1000; k++) {
			int i = (int)(rng() % NT);
			uint64_t x = rng();

			if (x % 4 == 0) {
				tw_cancel(w, &m.o[i].t);
				m.armed[i] = 0;
			} else {
				/* mostly within a revolution, some far, some past */
				uint64_t span = x % 8 == 1 ? 50 * TW_SLOTS * tick : 2 * TW_SLOTS * tick;
				uint64_t d = now + (x >> 8) % span;

				if (x % 16 == 3)
					d = now - (x >> 8) % (10 * tick);
				tw_arm(w, &m.o[i].t, d);
				m.deadline[i] = d;
				m.armed[i] = 1;
			}
		}
		now += rng() % (3 * TW_SLOTS * tick);
		m.now = now;
		m.fired = 0;
		m.last_tick = 0;
		unsigned n = tw_advance(w, now, model_fire, &m, UINT32_MAX);

		assert_int_equal(n, m.fired);
		total += m.fired;

		/* Everything due by the tick rule has fired, the rest is armed. */
		unsigned armed = 0;

		for (int i = 0; i < NT; i++) {
			if (!m.armed[i])
				continue;
			armed++;
			uint64_t dtick = m.deadline[i] / tick + (m.deadline[i] % tick != 0);

			assert_true(dtick > now / tick);
			assert_true(tw_armed(&m.o[i].t));
			assert_int_equal(tw_deadline_ns(w, &m.o[i].t), dtick * tick);
		}
		assert_int_equal(armed, w->armed);
	}
	assert_true(total > 100000); /* the model did exercise expiry */
	free(m.o);
	free(m.deadline);
	free(m.armed);
	free(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tw_fires_at_exact_tick_never_early),
		cmocka_unit_test(test_tw_fire_order_by_deadline_then_arm_order),
		cmocka_unit_test(test_tw_past_deadline_fires_on_next_advance),
		cmocka_unit_test(test_tw_cancel_disarmed_is_noop_and_rearm_moves),
		cmocka_unit_test(test_tw_rearm_cancel_arm_inside_callbacks),
		cmocka_unit_test(test_tw_callback_frees_owner),
		cmocka_unit_test(test_tw_far_timers_wait_their_lap),
		cmocka_unit_test(test_tw_far_timer_exact_tick),
		cmocka_unit_test(test_tw_long_idle_jump_is_cheap),
		cmocka_unit_test(test_tw_poll_within_a_tick_scans_nothing),
		cmocka_unit_test(test_tw_rearm_in_past_during_catch_up),
		cmocka_unit_test(test_tw_budget_leaves_rest_for_next_call),
		cmocka_unit_test(test_tw_100k_random_vs_model),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
