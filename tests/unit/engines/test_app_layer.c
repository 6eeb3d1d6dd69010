/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The engine's app layer (engines/app.c) as mustangd runs it, driven
 * command by command through app_world.h: the rules the client library
 * relies on and the ones that keep apps from harming each other.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "app_world.h"

/* A thread blocked on a command must get its DONE even when one poll
 * floods the event ring with READYs (many busy sockets): READYs stop
 * short of the last slots (counted as app_evt_overflow, the app told to
 * rescan), the DONE takes one of them. */
static void test_flooded_event_ring_keeps_room_for_done(void **state)
{
	struct app_world *w = calloc(1, sizeof(*w));
	struct mst_shm_msg ready = { .op = MST_EV_READY, .sock = 0, .a = MST_READY_OUT }, done;
	uint32_t seq;

	(void)state;
	aw_init(w, 1);
	for (unsigned i = 0; i < 2 * MST_SHM_RING_SLOTS; i++)
		eng_app_post(w->app[0].a, 0, &ready);
	assert_true(aw_pending(w, 0, 0) < MST_SHM_RING_SLOTS);
	assert_true(w->st.drop[MST_DROP_app_evt_overflow] >= MST_SHM_RING_SLOTS);
	assert_int_equal(w->app[0].qps[0].evt_overflow, w->st.drop[MST_DROP_app_evt_overflow]);
	seq = aw_submit(w, 0, 0, (struct mst_shm_msg){ .op = MST_CMD_SOCKET, .sock = -1, .a = 1 });
	aw_poll(w);
	assert_true(aw_find(w, 0, 0, seq, &done));
	assert_int_equal(done.op, MST_EV_DONE);
	assert_true(done.result >= 0);
	aw_fini(w);
	free(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_flooded_event_ring_keeps_room_for_done),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
