/* SPDX-License-Identifier: BSD-3-Clause */
/* TIME_WAIT under connect/close load: two stacks back to back through the
 * harness. The active closer's TIME_WAIT entries must not exhaust its
 * control-block pool (the oldest is recycled: tcp_tw_pool_recycled) nor its
 * ephemeral ports toward one peer port (a TIME_WAIT tuple of ours whose
 * last segment is tw_reuse_delay_ms old, timestamps on, is reused by an
 * active open: tcp_tw_reused_connect, RFC 6191); connect() fails with
 * EADDRNOTAVAIL only when no port of the range may be used. */
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

/* a (10.0.0.1, the active opener) and b (10.0.0.2, echo on port 7). */
static void pair_conf(struct mst_sim **a, struct mst_sim **b, const struct mst_sim_conf *aconf)
{
	struct mst_sim_conf ca = *aconf;
	struct mst_sim_conf cb = { .version = MST_SIM_VERSION, .prefix_len = 24, .bufs = 512 };

	ca.version = MST_SIM_VERSION;
	memcpy(ca.mac, (uint8_t[6]){ 2, 0, 0, 0, 0, 1 }, 6);
	memcpy(ca.peer_mac, (uint8_t[6]){ 2, 0, 0, 0, 0, 2 }, 6);
	ca.prefix_len = 24;
	if (!ca.bufs)
		ca.bufs = 512;
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

static void pair(struct mst_sim **a, struct mst_sim **b, uint32_t max_conns)
{
	struct mst_sim_conf ca = { .max_conns = max_conns };

	pair_conf(a, b, &ca);
}

/* th_pump(), noting the source port of a SYN from a in *sport. */
static void pump_syn(struct mst_sim *a, struct mst_sim *b, uint16_t *sport)
{
	uint8_t buf[10240];
	struct th_seg s;
	bool moved = true;
	ssize_t n;

	while (moved) {
		moved = false;
		while ((n = mst_sim_output(a, buf, sizeof(buf))) > 0) {
			if (n > 14 && buf[12] == 0x08 && buf[13] == 0x00 &&
			    th_parse(buf + 14, (size_t)n - 14, &s) && s.flags == TH_SYN)
				*sport = s.sport;
			mst_sim_input(b, buf, (size_t)n);
			moved = true;
		}
		while ((n = mst_sim_output(b, buf, sizeof(buf))) > 0) {
			mst_sim_input(a, buf, (size_t)n);
			moved = true;
		}
	}
}

static int64_t ctr(struct mst_sim *s, const char *name)
{
	return th_ctr(s, name);
}

/* connect, exchange a byte, close first (-> TIME_WAIT on a); the local port. */
static uint16_t one_conn(struct mst_sim *a, struct mst_sim *b, uint16_t lport)
{
	uint16_t sport = 0;
	uint32_t dst;
	char c = 'x';
	int fd = mst_sim_socket(a, 1);

	inet_pton(AF_INET, "10.0.0.2", &dst);
	assert_true(fd >= 0);
	if (lport)
		assert_int_equal(mst_sim_bind(a, fd, lport), 0);
	assert_int_equal(mst_sim_connect(a, fd, dst, 7), -EINPROGRESS);
	pump_syn(a, b, &sport);
	assert_true(mst_sim_poll(a, fd, POLLOUT) & POLLOUT);
	assert_int_equal(mst_sim_send(a, fd, &c, 1), 1);
	th_pump(a, b);
	assert_int_equal(mst_sim_recv(a, fd, &c, 1), 1);
	assert_int_equal(mst_sim_close(a, fd), 0);
	th_pump(a, b);
	return sport;
}

/* connect() to b's echo port from a fresh socket: its result; the socket
 * stays open (in *fd) when the connect went out. */
static int try_connect(struct mst_sim *a, int *fd)
{
	uint32_t dst;
	int rc;

	inet_pton(AF_INET, "10.0.0.2", &dst);
	*fd = mst_sim_socket(a, 1);
	assert_true(*fd >= 0);
	rc = mst_sim_connect(a, *fd, dst, 7);
	if (rc != -EINPROGRESS) {
		mst_sim_close(a, *fd);
		*fd = -1;
	}
	return rc;
}

static void advance2(struct mst_sim *a, struct mst_sim *b, uint64_t ns)
{
	mst_sim_advance(a, ns);
	mst_sim_advance(b, ns);
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
	assert_true(ctr(a, "tcp_tw_pool_recycled") >= 32);
	/* 1 ms apart: the full pool, not tuple reuse, made room */
	assert_int_equal(ctr(a, "tcp_tw_reused_connect"), 0);
	assert_int_equal(ctr(a, "tcp_tw_reused_syn"), 0);
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

/* Far more active opens than the range has ports, every one with TIME_WAIT
 * on our side: each port comes back once its TIME_WAIT is older than the
 * reuse delay, every port of the range is used and no other, and the pool
 * was never the reason. */
static void test_tcp_connect_reuses_timewait_beyond_small_range(void **state)
{
	struct mst_sim_conf conf = { .max_conns = 64, .eph_lo = 40000, .eph_hi = 40007,
				     .tw_reuse_delay_ms = 100 };
	struct mst_sim *a, *b;
	unsigned seen[8] = { 0 };

	(void)state;
	pair_conf(&a, &b, &conf);
	for (int i = 0; i < 200; i++) {
		uint16_t p = one_conn(a, b, 0);

		assert_true(p >= 40000 && p <= 40007);
		seen[p - 40000]++;
		advance2(a, b, TH_MS(20)); /* a port comes round after 160 ms */
	}
	for (unsigned i = 0; i < 8; i++)
		assert_int_equal(seen[i], 25); /* RFC 6056 Alg. 4: the range in turn */
	assert_int_equal(ctr(a, "tcp_tw_reused_connect"), 200 - 8);
	assert_int_equal(ctr(a, "tcp_tw_pool_recycled"), 0);
	assert_int_equal(ctr(a, "tcp_tw_reused_syn"), 0);
	assert_int_equal(ctr(a, "tcp_connect_no_port"), 0);
	assert_int_equal(ctr(a, "tcp_resets_sent") + ctr(b, "tcp_resets_sent"), 0);
	assert_true(mst_sim_conn_count(a) <= 8);
	mst_sim_destroy(a);
	mst_sim_destroy(b);
}

/* EADDRNOTAVAIL only when every port to the destination is in a state that
 * forbids reuse: TIME_WAIT younger than the delay, or a live connection. */
static void test_tcp_connect_eaddrnotavail_only_when_nothing_reusable(void **state)
{
	struct mst_sim_conf conf = { .max_conns = 64, .eph_lo = 50000, .eph_hi = 50003 };
	struct mst_sim *a, *b;
	int fd, live[4];

	(void)state;
	pair_conf(&a, &b, &conf);
	for (int i = 0; i < 4; i++)
		one_conn(a, b, 0);
	assert_int_equal(mst_sim_conn_count(a), 4); /* all TIME_WAIT */
	assert_int_equal(try_connect(a, &fd), -EADDRNOTAVAIL);
	assert_int_equal(ctr(a, "tcp_connect_no_port"), 1);
	advance2(a, b, TH_MS(990)); /* default delay 1000 ms: not yet */
	assert_int_equal(try_connect(a, &fd), -EADDRNOTAVAIL);
	advance2(a, b, TH_MS(20));
	/* Now each TIME_WAIT may go: four live connections take the range. */
	for (int i = 0; i < 4; i++) {
		assert_int_equal(try_connect(a, &live[i]), -EINPROGRESS);
		th_pump(a, b);
		assert_true(mst_sim_poll(a, live[i], POLLOUT) & POLLOUT);
	}
	assert_int_equal(ctr(a, "tcp_tw_reused_connect"), 4);
	/* Live connections are never taken over, however old. */
	advance2(a, b, TH_MS(5000));
	assert_int_equal(try_connect(a, &fd), -EADDRNOTAVAIL);
	assert_int_equal(ctr(a, "tcp_connect_no_port"), 3);
	for (int i = 0; i < 4; i++)
		assert_int_equal(th_state(a, live[i]), TH_ESTABLISHED);
	assert_int_equal(ctr(a, "tcp_resets_sent") + ctr(b, "tcp_resets_sent"), 0);
	mst_sim_destroy(a);
	mst_sim_destroy(b);
}

/* Without timestamps nothing protects a reused tuple from the old one's
 * duplicates: TIME_WAIT runs its full course. */
static void test_tcp_connect_no_timewait_reuse_without_timestamps(void **state)
{
	struct mst_sim_conf conf = { .max_conns = 64, .eph_lo = 50000, .eph_hi = 50001,
				     .no_timestamps = 1, .timewait_ms = 30000 };
	struct mst_sim *a, *b;
	int fd;

	(void)state;
	pair_conf(&a, &b, &conf);
	one_conn(a, b, 0);
	one_conn(a, b, 0);
	advance2(a, b, TH_MS(10000));
	assert_int_equal(try_connect(a, &fd), -EADDRNOTAVAIL);
	assert_int_equal(ctr(a, "tcp_tw_reused_connect"), 0);
	advance2(a, b, TH_MS(21000)); /* TIME_WAIT over: the ports are free */
	assert_int_equal(mst_sim_conn_count(a), 0);
	one_conn(a, b, 0);
	assert_int_equal(ctr(a, "tcp_tw_reused_connect"), 0);
	mst_sim_destroy(a);
	mst_sim_destroy(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tcp_timewait_full_pool_recycles_oldest),
		cmocka_unit_test(test_tcp_timewait_explicit_tuple_refused_ephemeral_fine),
		cmocka_unit_test(test_tcp_connect_reuses_timewait_beyond_small_range),
		cmocka_unit_test(test_tcp_connect_eaddrnotavail_only_when_nothing_reusable),
		cmocka_unit_test(test_tcp_connect_no_timewait_reuse_without_timestamps),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
