/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * App attach/detach on the control thread (control/apps.c) against an
 * engine that stalls: issue 13 item 8. A fake engine thread serves the
 * runtime's mailbox (rt_engine_call) the way an engine does between polls,
 * or stops serving it.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <mustang/shm_abi.h>

#include "control/apps.h"

static struct rt_group group;
static atomic_bool stalled, stop;
static const struct mst_shm_hdr *seen;    /* the segment the engine serves */
static int detaches;

static int fake_attach(void *eng, const struct mst_app *app)
{
	(void)eng;
	seen = app->base;
	return 0;
}

static int fake_detach(void *eng, int app_id)
{
	(void)eng, (void)app_id;
	detaches++;
	seen = NULL;
	return 0;
}

static const struct mst_engine_ops ops = { .attach_app = fake_attach, .detach_app = fake_detach };

/* The engine's side of the mailbox (runtime.c's run_mailbox()). */
static void *fake_engine(void *arg)
{
	struct rt_engine *e = arg;

	while (!atomic_load(&stop)) {
		struct rt_work *w = NULL;

		if (!atomic_load(&stalled))
			w = atomic_exchange_explicit(&e->mailbox, NULL, memory_order_acquire);
		if (w) {
			w->fn(e->eng, w->arg);
			atomic_store_explicit(&w->done, true, memory_order_release);
		}
		usleep(100);
	}
	return NULL;
}

static int attach(struct apps *a, unsigned client, char *msg, size_t len)
{
	int fds[2 + APPS_QPS];
	unsigned n = 0;
	int rc = apps_attach(a, client, 1234, 0, fds, 2 + APPS_QPS, &n, msg, len);

	for (unsigned i = 0; i < n; i++)
		close(fds[i]);
	return rc;
}

/* A detach the engine does not answer (stalled >= 5 s) leaves the slot's
 * segment and eventfds alone; a new app on that control slot gets EBUSY
 * with a reason (it used to unmap the segment and close the eventfds the
 * engine still used); once the engine answers, the slot is reused. */
static void test_slot_not_reused_after_detach_timeout(void **state)
{
	struct apps_conf conf = { .group = &group, .ops = &ops, .arena_mb = 1 };
	struct apps *a;
	pthread_t th;
	char msg[256];

	(void)state;
	memset(&group, 0, sizeof(group));
	group.n_engines = 1;
	group.started = true;
	group.engines[0].doorbell = -1;
	pthread_mutex_init(&group.call_lock, NULL);
	assert_int_equal(pthread_create(&th, NULL, fake_engine, &group.engines[0]), 0);
	a = apps_create(&conf);
	assert_non_null(a);
	assert_int_equal(attach(a, 3, msg, sizeof(msg)), 0);
	assert_non_null(seen);
	atomic_store(&stalled, true);
	apps_detach(a, 3); /* times out: 5 s */
	assert_int_equal(detaches, 0);
	assert_int_equal(attach(a, 3, msg, sizeof(msg)), -EBUSY);
	assert_non_null(strstr(msg, "detach timed out"));
	assert_int_equal(seen->magic, MST_SHM_MAGIC); /* still mapped for the engine */
	atomic_store(&stalled, false);
	assert_int_equal(attach(a, 3, msg, sizeof(msg)), 0);
	assert_int_equal(detaches, 1);
	assert_non_null(seen);
	assert_int_equal(seen->magic, MST_SHM_MAGIC);
	apps_destroy(a);
	assert_int_equal(detaches, 2);
	atomic_store(&stop, true);
	pthread_join(th, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_slot_not_reused_after_detach_timeout),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
