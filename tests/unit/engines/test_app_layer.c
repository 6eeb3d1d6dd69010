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

static int32_t new_sock(struct app_world *w, unsigned k, uint64_t type)
{
	int64_t s = aw_cmd(w, k, MST_CMD_SOCKET, -1, type, 0, NULL);

	assert_true(s >= 0);
	return (int32_t)s;
}

/* Issue 13 item 9: a TCP port bound by one app is EADDRINUSE for every
 * other app (it used to check only the binding app's own sockets, so one
 * app could bind, listen on or connect from another's port), counted by
 * name; the owner keeps listening. Closing the socket or detaching the
 * app gives the port back. UDP ports were already owned across apps. */
static void test_tcp_port_owned_across_apps(void **state)
{
	struct app_world *w = calloc(1, sizeof(*w));
	int32_t l0, s1, s0b, u0, u1;

	(void)state;
	aw_init(w, 2);
	l0 = new_sock(w, 0, 1);
	assert_int_equal(aw_cmd(w, 0, MST_CMD_BIND, l0, 8080, 0, NULL), 0);
	s1 = new_sock(w, 1, 1);
	assert_int_equal(aw_cmd(w, 1, MST_CMD_BIND, s1, 8080, 0, NULL), -EADDRINUSE);
	assert_int_equal(w->st.drop[MST_DROP_app_port_in_use], 1);
	assert_int_equal(aw_cmd(w, 0, MST_CMD_LISTEN, l0, 16, 0, NULL), 0);
	assert_int_equal(aw_cmd(w, 1, MST_CMD_BIND, s1, 8080, AW_IP, NULL), -EADDRINUSE);
	assert_int_equal(aw_cmd(w, 1, MST_CMD_LISTEN, s1, 16, 0, NULL), -EDESTADDRREQ);
	assert_int_equal(w->st.drop[MST_DROP_app_port_in_use], 2);
	assert_int_equal(w->app[0].socks[l0].state, MST_SOCK_LISTEN);
	/* the owner's own second socket: its own rule, same answer */
	s0b = new_sock(w, 0, 1);
	assert_int_equal(aw_cmd(w, 0, MST_CMD_BIND, s0b, 8080, 0, NULL), -EADDRINUSE);
	/* another port is free; a closed socket gives its port back */
	assert_int_equal(aw_cmd(w, 1, MST_CMD_BIND, s1, 8081, 0, NULL), 0);
	assert_int_equal(aw_cmd(w, 0, MST_CMD_CLOSE, l0, 0, 0, NULL), 0);
	assert_int_equal(aw_cmd(w, 0, MST_CMD_BIND, s0b, 8081, 0, NULL), -EADDRINUSE);
	assert_int_equal(aw_cmd(w, 0, MST_CMD_BIND, s0b, 8080, 0, NULL), 0);
	/* UDP: the same across apps */
	u0 = new_sock(w, 0, 2);
	u1 = new_sock(w, 1, 2);
	assert_int_equal(aw_cmd(w, 0, MST_CMD_BIND, u0, 5353, 0, NULL), 0);
	assert_int_equal(aw_cmd(w, 1, MST_CMD_BIND, u1, 5353, 0, NULL), -EADDRINUSE);
	/* app 0 goes away: its TCP port (8080) is free at once */
	assert_int_equal(eng_app_detach(w->app[0].a), 0);
	w->app[0].a = NULL;
	s1 = new_sock(w, 1, 1);
	assert_int_equal(aw_cmd(w, 1, MST_CMD_BIND, s1, 8080, 0, NULL), 0);
	assert_int_equal(aw_cmd(w, 1, MST_CMD_LISTEN, s1, 16, 0, NULL), 0);
	aw_fini(w);
	free(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_flooded_event_ring_keeps_room_for_done),
		cmocka_unit_test(test_tcp_port_owned_across_apps),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
