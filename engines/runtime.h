/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The engine runtime: threads that call engines' poll(), in one of the three
 * scheduling modes of DESIGN §2.
 *
 *   rt_group_init() -> rt_group_add() per engine -> rt_group_start()
 *     dedicated:  one thread per engine, pinned, spins (never sleeps)
 *     spreading:  one thread per engine, sleeps with back-off when idle
 *     compacting: engines packed on the fewest worker threads; a supervisor
 *                 thread grows/shrinks the active set every 10 ms (sched.h)
 *   -> rt_group_stop() (threads joined; engines are not destroyed)
 *
 * In compacting mode an engine can move between workers; its `busy` flag is
 * held for the whole poll (acquire on take, release on drop), so two workers
 * never poll the same engine and each sees the other's writes.
 */
#ifndef MST_ENGINES_RUNTIME_H
#define MST_ENGINES_RUNTIME_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <mustang/engine.h>

#include "control/config.h"
#include "engines/scheduler.h"

/* A short work item the engine thread runs between two polls (the
 * control plane's mailbox to an engine; one slot, callers serialized). */
typedef void (*rt_work_fn)(void *eng, void *arg);
struct rt_work {
	rt_work_fn fn;
	void *arg;
	atomic_bool done;                  /* set (release) by the engine thread */
};

struct rt_engine {
	unsigned id;
	const struct mst_engine_ops *ops;
	void *eng;
	struct mst_queue *queue;
	int cpu;                           /* pinned CPU, -1 = none */
	atomic_bool busy;                  /* compacting: a worker is polling it */
	uint64_t load[MST_LOAD__COUNT];    /* written by the polling thread only */
	struct mst_hist poll_hist;         /* busy polls' duration, units of 64 ns (same writer) */
	uint64_t last_poll_ns;             /* compacting: for queueing delay */
	_Atomic uint64_t tick_delay_ns;    /* max delay this tick; supervisor resets */
	pthread_t thread;                  /* dedicated/spreading */
	struct rt_group *group;
	_Atomic(struct rt_work *) mailbox; /* pending work item, NULL if none */
	int doorbell;                      /* eventfd: apps and the mailbox wake a sleeping engine */
	atomic_bool sleeping;              /* on the doorbell now (mailbox side) */
};

struct rt_worker {
	unsigned idx;
	int cpu;
	pthread_t thread;
	_Atomic uint64_t busy_ns;          /* total time in polls that did work */
	uint64_t last_sleep_ns;            /* delay samples across a sleep are ignored */
	struct rt_group *group;
};

struct rt_group {
	enum mst_sched_mode mode;
	unsigned n_engines;
	struct rt_engine engines[MST_MAX_ENGINES];
	unsigned n_workers;                /* compacting */
	struct rt_worker workers[MST_MAX_ENGINES];
	pthread_t supervisor;
	struct sched_compact compact;      /* supervisor thread only */
	_Atomic unsigned active;           /* compacting: workers in use */
	atomic_bool stop;
	bool started;
	unsigned idle_max_us;
	uint64_t bound_ns;
	uint64_t grows, shrinks;           /* compacting decisions taken */
	pthread_mutex_t call_lock;         /* one rt_engine_call() at a time */
};

void rt_group_init(struct rt_group *g, const struct mst_config *c);
/* Register an engine (created and with its queue attached). */
int rt_group_add(struct rt_group *g, const struct mst_engine_ops *ops, void *eng,
		 struct mst_queue *q);
/* The same with an existing doorbell eventfd (live upgrade: the apps hold
 * dups of the old daemon's; the group owns it from now on). */
int rt_group_add_doorbell(struct rt_group *g, const struct mst_engine_ops *ops, void *eng,
			  struct mst_queue *q, int doorbell);
/* Start the threads; -errno with nothing left running on failure. */
int rt_group_start(struct rt_group *g, const struct mst_config *c);
void rt_group_stop(struct rt_group *g);

/* A consistent-enough copy of an engine's load counters (relaxed reads). */
void rt_engine_load(const struct rt_engine *e, uint64_t out[MST_LOAD__COUNT]);
/* Worker currently polling engine e (compacting), else its own thread index. */
unsigned rt_engine_worker(const struct rt_group *g, const struct rt_engine *e);

/* Run fn(engine, arg) on the engine's own thread and wait for it (control
 * plane only). After timeout_ms the item is withdrawn (-ETIMEDOUT) unless
 * the engine already took it, in which case this waits for it to finish. */
int rt_engine_call(struct rt_group *g, unsigned id, rt_work_fn fn, void *arg, int timeout_ms);

/* The engine's doorbell eventfd (apps get a dup at attach). */
int rt_engine_doorbell(const struct rt_group *g, unsigned id);

uint64_t rt_now_ns(void);

#endif /* MST_ENGINES_RUNTIME_H */
