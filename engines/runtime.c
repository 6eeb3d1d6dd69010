/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Engine runtime: the threads and loops of the three scheduling modes
 * (see runtime.h for the call order, sched.h for the decisions).
 *
 * Loop of an engine thread (dedicated / spreading):
 *   now -> poll(engine, now) -> account load -> back-off sleep if idle
 * Loop of a compacting worker:
 *   for each engine mapped to me: take busy flag -> poll -> sample the
 *   queueing delay -> drop flag; back-off when none had work; park when
 *   my index is beyond the active set.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include <rte_errno.h>
#include <rte_branch_prediction.h>
#include <rte_lcore.h>

#include "engines/runtime.h"

#define RT_SPIN_POLLS 64              /* idle polls before the first sleep */
#define RT_TICK_NS (10 * 1000 * 1000) /* compacting supervisor period */
#define RT_PARK_US 2000               /* an unused compacting worker's nap */

uint64_t rt_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_us(unsigned us)
{
	struct timespec ts = { .tv_sec = us / 1000000, .tv_nsec = (long)(us % 1000000) * 1000 };

	nanosleep(&ts, NULL);
}

static void pin_self(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set))
		fprintf(stderr, "mustangd: warning: cannot pin engine thread to CPU %d\n", cpu);
}

/* Common thread start: name, 1 µs timer slack (our sleeps are short and
 * latency matters), a DPDK lcore id (mempool caches), pinning. */
static void thread_setup(const char *name, int cpu)
{
	prctl(PR_SET_NAME, name, 0, 0, 0);
	prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
	if (rte_thread_register() < 0)
		fprintf(stderr, "mustangd: warning: %s: no DPDK lcore id (%s); mempool caches off\n",
			name, rte_strerror(rte_errno));
	pin_self(cpu);
}

/* Mailbox: acquire pairs with the release in rt_engine_call() (the item's
 * fields are visible); the release on done pairs with the caller's acquire
 * (the engine's writes to arg are visible to it). */
static inline void run_mailbox(struct rt_engine *e)
{
	struct rt_work *w;

	if (likely(!atomic_load_explicit(&e->mailbox, memory_order_relaxed)))
		return;
	/* Take the item: once it is ours the caller can no longer withdraw
	 * it and will wait for `done`. */
	w = atomic_exchange_explicit(&e->mailbox, NULL, memory_order_acquire);
	if (!w)
		return;
	w->fn(e->eng, w->arg);
	atomic_store_explicit(&w->done, true, memory_order_release);
}

static inline int poll_once(struct rt_engine *e, uint64_t now)
{
	int work;

	run_mailbox(e);
	work = e->ops->poll(e->eng, now);

	/* Relaxed stores: the control plane reads these with relaxed loads;
	 * only this thread (or the worker holding `busy`) writes them. */
	__atomic_store_n(&e->load[MST_LOAD_polls], e->load[MST_LOAD_polls] + 1, __ATOMIC_RELAXED);
	if (work > 0) {
		uint64_t spent = rt_now_ns() - now;

		__atomic_store_n(&e->load[MST_LOAD_busy_polls], e->load[MST_LOAD_busy_polls] + 1,
				 __ATOMIC_RELAXED);
		__atomic_store_n(&e->load[MST_LOAD_busy_ns], e->load[MST_LOAD_busy_ns] + spent,
				 __ATOMIC_RELAXED);
		mst_hist_add(&e->poll_hist, spent >> 6);
	}
	return work;
}

static void count_sleep(struct rt_engine *e)
{
	__atomic_store_n(&e->load[MST_LOAD_idle_sleeps], e->load[MST_LOAD_idle_sleeps] + 1,
			 __ATOMIC_RELAXED);
}

/* Sleep up to us on the engine's doorbell, unless the engine (or the
 * mailbox) has work. The flags are announced before the last look, with a
 * full fence, so a waker either sees them or its work is seen here. */
static void engine_sleep(struct rt_engine *e, unsigned us)
{
	struct timespec ts = { .tv_sec = us / 1000000, .tv_nsec = (long)(us % 1000000) * 1000 };
	struct pollfd pfd = { .fd = e->doorbell, .events = POLLIN };
	uint64_t v;

	atomic_store_explicit(&e->sleeping, true, memory_order_relaxed);
	atomic_thread_fence(memory_order_seq_cst); /* pairs with rt_engine_call()'s fence */
	if (atomic_load_explicit(&e->mailbox, memory_order_relaxed) ||
	    (e->ops->may_sleep && !e->ops->may_sleep(e->eng))) {
		atomic_store_explicit(&e->sleeping, false, memory_order_relaxed);
		if (e->ops->woke)
			e->ops->woke(e->eng);
		return;
	}
	count_sleep(e);
	if (e->doorbell >= 0) {
		if (ppoll(&pfd, 1, &ts, NULL) > 0)
			(void)!read(e->doorbell, &v, sizeof(v));
	} else {
		nanosleep(&ts, NULL);
	}
	atomic_store_explicit(&e->sleeping, false, memory_order_relaxed);
	if (e->ops->woke)
		e->ops->woke(e->eng);
}

/* dedicated and spreading: one engine, one thread. */
static void *engine_thread(void *arg)
{
	struct rt_engine *e = arg;
	struct rt_group *g = e->group;
	struct sched_backoff bo;
	bool spin = g->mode == MST_MODE_DEDICATED;
	char name[16];

	snprintf(name, sizeof(name), "mst-eng%u", e->id);
	thread_setup(name, e->cpu);
	sched_backoff_init(&bo, RT_SPIN_POLLS, g->idle_max_us);
	while (!atomic_load_explicit(&g->stop, memory_order_relaxed)) {
		int work = poll_once(e, rt_now_ns());
		unsigned us;

		/* A dedicated engine that found nothing hands the core to
		 * whatever else is runnable on it (nothing, normally: then
		 * sched_yield returns at once). Engines pinned to one core on
		 * purpose, as the benchmark does on 2 cores, so alternate per
		 * poll instead of per scheduler tick (milliseconds). */
		if (spin) {
			if (work == 0)
				sched_yield();
			continue;
		}
		us = sched_backoff_next(&bo, work);
		if (us)
			engine_sleep(e, us);
	}
	rte_thread_unregister();
	return NULL;
}

/* compacting: a worker polls every engine mapped to it. */
static void *worker_thread(void *arg)
{
	struct rt_worker *w = arg;
	struct rt_group *g = w->group;
	struct sched_backoff bo;
	char name[16];

	snprintf(name, sizeof(name), "mst-work%u", w->idx);
	thread_setup(name, w->cpu);
	sched_backoff_init(&bo, RT_SPIN_POLLS, g->idle_max_us);
	while (!atomic_load_explicit(&g->stop, memory_order_relaxed)) {
		unsigned active = atomic_load_explicit(&g->active, memory_order_relaxed);
		int total = 0;
		unsigned us;

		if (w->idx >= active) {
			sleep_us(RT_PARK_US);
			w->last_sleep_ns = rt_now_ns();
			continue;
		}
		for (unsigned i = 0; i < g->n_engines; i++) {
			struct rt_engine *e = &g->engines[i];
			uint64_t now;
			int work;

			if (sched_compact_worker(i, active) != w->idx)
				continue;
			/* Acquire pairs with the release below on the worker that
			 * polled this engine last: its writes to engine state are
			 * visible before we touch it. */
			if (atomic_exchange_explicit(&e->busy, true, memory_order_acquire))
				continue; /* the previous owner is finishing a poll */
			now = rt_now_ns();
			work = poll_once(e, now);
			if (work > 0) {
				/* Queueing delay: how long this work could have waited
				 * since the last poll, unless we slept in between (that
				 * is idleness, not a lack of cores). */
				if (e->last_poll_ns && e->last_poll_ns > w->last_sleep_ns) {
					uint64_t d = now - e->last_poll_ns;

					if (d > atomic_load_explicit(&e->tick_delay_ns, memory_order_relaxed))
						atomic_store_explicit(&e->tick_delay_ns, d, memory_order_relaxed);
					if (d > e->load[MST_LOAD_max_delay_ns])
						__atomic_store_n(&e->load[MST_LOAD_max_delay_ns], d,
								 __ATOMIC_RELAXED);
				}
				atomic_fetch_add_explicit(&w->busy_ns, rt_now_ns() - now,
							  memory_order_relaxed);
			}
			e->last_poll_ns = now;
			/* Release pairs with the acquire above (next owner). */
			atomic_store_explicit(&e->busy, false, memory_order_release);
			total += work > 0 ? work : 0;
		}
		us = sched_backoff_next(&bo, total);
		if (us) {
			sleep_us(us);
			w->last_sleep_ns = rt_now_ns();
		}
	}
	rte_thread_unregister();
	return NULL;
}

/* compacting: grow/shrink the active workers from measured delay and load. */
static void *supervisor_thread(void *arg)
{
	struct rt_group *g = arg;
	uint64_t last_busy[MST_MAX_ENGINES] = { 0 };
	uint64_t last = rt_now_ns();

	prctl(PR_SET_NAME, "mst-compact", 0, 0, 0);
	while (!atomic_load_explicit(&g->stop, memory_order_relaxed)) {
		uint64_t now, max_delay = 0, busy_sum = 0, elapsed;
		unsigned active = atomic_load_explicit(&g->active, memory_order_relaxed);
		enum sched_action act;

		sleep_us(RT_TICK_NS / 1000);
		now = rt_now_ns();
		elapsed = now - last;
		last = now;
		for (unsigned i = 0; i < g->n_engines; i++) {
			uint64_t d = atomic_exchange_explicit(&g->engines[i].tick_delay_ns, 0,
							      memory_order_relaxed);
			if (d > max_delay)
				max_delay = d;
		}
		for (unsigned w = 0; w < g->n_workers; w++) {
			uint64_t b = atomic_load_explicit(&g->workers[w].busy_ns, memory_order_relaxed);

			if (w < active)
				busy_sum += b - last_busy[w];
			last_busy[w] = b;
		}
		act = sched_compact_tick(&g->compact, max_delay,
					 elapsed ? (double)busy_sum / ((double)elapsed * active) : 0.0);
		if (act == SCHED_GROW)
			g->grows++;
		else if (act == SCHED_SHRINK)
			g->shrinks++;
		if (act != SCHED_STAY)
			atomic_store_explicit(&g->active, g->compact.active, memory_order_relaxed);
	}
	return NULL;
}

void rt_group_init(struct rt_group *g, const struct mst_config *c)
{
	memset(g, 0, sizeof(*g));
	g->mode = c->mode;
	g->idle_max_us = c->idle_sleep_max_us;
	g->bound_ns = (uint64_t)c->compact_bound_us * 1000;
	atomic_init(&g->stop, false);
	atomic_init(&g->active, 1);
	pthread_mutex_init(&g->call_lock, NULL);
}

int rt_engine_call(struct rt_group *g, unsigned id, rt_work_fn fn, void *arg, int timeout_ms)
{
	struct rt_engine *e;
	struct rt_work w = { .fn = fn, .arg = arg };
	uint64_t deadline = rt_now_ns() + (uint64_t)timeout_ms * 1000000u;
	int rc = 0;

	if (id >= g->n_engines || !g->started)
		return -ENOENT;
	e = &g->engines[id];
	atomic_init(&w.done, false);
	pthread_mutex_lock(&g->call_lock);
	/* Release pairs with the engine's acquire in run_mailbox(). */
	atomic_store_explicit(&e->mailbox, &w, memory_order_release);
	atomic_thread_fence(memory_order_seq_cst); /* pairs with engine_sleep()'s fence */
	if (atomic_load_explicit(&e->sleeping, memory_order_relaxed) && e->doorbell >= 0) {
		uint64_t one = 1;

		(void)!write(e->doorbell, &one, sizeof(one));
	}
	while (!atomic_load_explicit(&w.done, memory_order_acquire)) {
		if (rt_now_ns() > deadline) {
			struct rt_work *expect = &w;

			/* Withdraw the item unless the engine already took it. */
			if (atomic_compare_exchange_strong(&e->mailbox, &expect, NULL)) {
				rc = -ETIMEDOUT;
				break;
			}
		}
		sleep_us(50);
	}
	pthread_mutex_unlock(&g->call_lock);
	return rc;
}

int rt_group_add(struct rt_group *g, const struct mst_engine_ops *ops, void *eng,
		 struct mst_queue *q)
{
	return rt_group_add_doorbell(g, ops, eng, q, -1);
}

int rt_group_add_doorbell(struct rt_group *g, const struct mst_engine_ops *ops, void *eng,
			  struct mst_queue *q, int doorbell)
{
	struct rt_engine *e;

	if (g->n_engines >= MST_MAX_ENGINES || g->started)
		return -ENOSPC;
	e = &g->engines[g->n_engines];
	e->id = g->n_engines++;
	e->ops = ops;
	e->eng = eng;
	e->queue = q;
	e->cpu = -1;
	e->group = g;
	atomic_init(&e->busy, false);
	atomic_init(&e->tick_delay_ns, 0);
	atomic_init(&e->mailbox, NULL);
	atomic_init(&e->sleeping, false);
	/* Apps hold dups of the doorbell: a live upgrade hands the same one
	 * to the new daemon's engine. -1: plain sleeps. */
	e->doorbell = doorbell >= 0 ? doorbell : eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	return 0;
}

static unsigned online_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n > 0 ? (unsigned)n : 1;
}

int rt_group_start(struct rt_group *g, const struct mst_config *c)
{
	int rc = 0;
	unsigned started = 0;

	atomic_store(&g->stop, false);
	if (g->mode == MST_MODE_COMPACTING) {
		unsigned max = c->n_cores ? c->n_cores : online_cpus();

		if (max > g->n_engines)
			max = g->n_engines;
		g->n_workers = max;
		sched_compact_init(&g->compact, max, g->bound_ns);
		atomic_store(&g->active, 1);
		for (unsigned w = 0; w < max; w++) {
			struct rt_worker *wk = &g->workers[w];

			wk->idx = w;
			wk->cpu = c->n_cores ? c->cores[w] : -1;
			wk->group = g;
			atomic_init(&wk->busy_ns, 0);
			rc = -pthread_create(&wk->thread, NULL, worker_thread, wk);
			if (rc)
				goto out_stop;
			started++;
		}
		rc = -pthread_create(&g->supervisor, NULL, supervisor_thread, g);
		if (rc)
			goto out_stop;
		g->started = true;
		return 0;
	}
	for (unsigned i = 0; i < g->n_engines; i++) {
		struct rt_engine *e = &g->engines[i];

		e->cpu = c->n_cores ? c->cores[i % c->n_cores] : -1;
		rc = -pthread_create(&e->thread, NULL, engine_thread, e);
		if (rc)
			goto out_stop;
		started++;
	}
	g->started = true;
	return 0;

out_stop:
	atomic_store(&g->stop, true);
	for (unsigned i = 0; i < started; i++)
		pthread_join(g->mode == MST_MODE_COMPACTING ? g->workers[i].thread
							    : g->engines[i].thread, NULL);
	return rc;
}

void rt_group_stop(struct rt_group *g)
{
	if (!g->started)
		return;
	atomic_store(&g->stop, true);
	if (g->mode == MST_MODE_COMPACTING) {
		for (unsigned w = 0; w < g->n_workers; w++)
			pthread_join(g->workers[w].thread, NULL);
		pthread_join(g->supervisor, NULL);
	} else {
		for (unsigned i = 0; i < g->n_engines; i++)
			pthread_join(g->engines[i].thread, NULL);
	}
	g->started = false;
}

void rt_engine_load(const struct rt_engine *e, uint64_t out[MST_LOAD__COUNT])
{
	for (unsigned i = 0; i < MST_LOAD__COUNT; i++)
		out[i] = __atomic_load_n(&e->load[i], __ATOMIC_RELAXED);
}

int rt_engine_doorbell(const struct rt_group *g, unsigned id)
{
	return id < g->n_engines ? g->engines[id].doorbell : -1;
}

unsigned rt_engine_worker(const struct rt_group *g, const struct rt_engine *e)
{
	if (g->mode == MST_MODE_COMPACTING)
		return sched_compact_worker(e->id, atomic_load_explicit(&g->active,
									 memory_order_relaxed));
	return e->id;
}
