/* SPDX-License-Identifier: BSD-3-Clause */
/* TIME_WAIT under connect/close load: two stacks back to back through the
 * harness. The active closer's TIME_WAIT entries must not exhaust its
 * control-block pool (the oldest is recycled) nor its ephemeral ports
 * toward one peer port (a TIME_WAIT tuple over 1 s old is reused). */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <cmocka.h>

#include <mustang/sim.h>

#include "tcp_helper.h"

static void pair(struct mst_sim **a, struct mst_sim **b, uint32_t max_conns)
{
	struct mst_sim_conf ca = { .version = MST_SIM_VERSION, .mac = { 2, 0, 0, 0, 0, 1 },
				   .peer_mac = { 2, 0, 0, 0, 0, 2 }, .prefix_len = 24,
				   .max_conns = max_conns, .bufs = 512 };
	struct mst_sim_conf cb = ca;

	memcpy(cb.mac, ca.peer_mac, 6);
	memcpy(cb.peer_mac, ca.mac, 6);
	cb.max_conns = 1024;
	cb.services = MST_SIM_SVC_TCP_ECHO;
	inet_pton(AF_INET, "10.0.0.1", &ca.ip);
	inet_pton(AF_INET, "10.0.0.2", &cb.ip);
	*a = mst_sim_create(&ca);
	*b = mst_sim_create(&cb);
	assert_non_null(*a);
	assert_non_null(*b);
}

/* connect, exchange a byte, close first (-> TIME_WAIT on a). */
static void one_conn(struct mst_sim *a, struct mst_sim *b, uint16_t lport)
{
	uint32_t dst;
	char c = 'x';
	int fd = mst_sim_socket(a, 1);

	inet_pton(AF_INET, "10.0.0.2", &dst);
	assert_true(fd >= 0);
	if (lport)
		assert_int_equal(mst_sim_bind(a, fd, lport), 0);
	assert_int_equal(mst_sim_connect(a, fd, dst, 7), -EINPROGRESS);
	th_pump(a, b);
	assert_true(mst_sim_poll(a, fd, POLLOUT) & POLLOUT);
	assert_int_equal(mst_sim_send(a, fd, &c, 1), 1);
	th_pump(a, b);
	assert_int_equal(mst_sim_recv(a, fd, &c, 1), 1);
	assert_int_equal(mst_sim_close(a, fd), 0);
	th_pump(a, b);
}

static void test_tcp_timewait_full_pool_recycles_oldest(void **state)
{
	struct mst_sim *a, *b;

	(void)state;
	pair(&a, &b, 8);
	for (int i = 0; i < 40; i++) {
		one_conn(a, b, 0);
		mst_sim_advance(a, 1000000);
		mst_sim_advance(b, 1000000);
	}
	assert_true(mst_sim_conn_count(a) <= 8);
	assert_true(mst_sim_counter(a, "tcp_timewait_recycled") >= 32);
	assert_int_equal(mst_sim_counter(a, "tcp_resets_sent"), 0);
	mst_sim_destroy(a);
	mst_sim_destroy(b);
}

static void test_tcp_timewait_explicit_tuple_refused_ephemeral_fine(void **state)
{
	struct mst_sim *a, *b;

	(void)state;
	pair(&a, &b, 64);
	one_conn(a, b, 40000);
	assert_int_equal(mst_sim_conn_count(a), 1); /* TIME_WAIT */
	/* Under a second: the tuple is still taken. */
	{
		int fd = mst_sim_socket(a, 1);
		uint32_t dst;

		inet_pton(AF_INET, "10.0.0.2", &dst);
		assert_int_equal(mst_sim_bind(a, fd, 40000), 0);
		assert_int_equal(mst_sim_connect(a, fd, dst, 7), -EADDRINUSE);
		mst_sim_close(a, fd);
	}
	mst_sim_advance(a, 1500000000ull);
	mst_sim_advance(b, 1500000000ull);
	/* Ephemeral opens keep working (free ports, or TIME_WAIT tuples over 1 s old). */
	for (int i = 0; i < 100; i++)
		one_conn(a, b, 0);
	assert_int_equal(mst_sim_counter(a, "tcp_resets_sent"), 0);
	mst_sim_destroy(a);
	mst_sim_destroy(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tcp_timewait_full_pool_recycles_oldest),
		cmocka_unit_test(test_tcp_timewait_explicit_tuple_refused_ephemeral_fine),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
