/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mustang-load's command line (lg_parse_args) and the open-loop schedule
 * (lg_sched_*): what is accepted, what each refusal says, the defaults.
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "../lg.h"

#define ARGV(...) ((const char *[]){ "mustang-load", __VA_ARGS__, NULL })
#define ARGC(...) ((int)(sizeof((const char *[]){ "mustang-load", __VA_ARGS__ }) / sizeof(char *)))
#define PARSE(a, err, ...) lg_parse_args(ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), (a), (err), sizeof(err))

static void refused(int rc, const char *err, const char *needle)
{
	assert_int_equal(rc, -1);
	if (strstr(err, needle) == NULL)
		fail_msg("error \"%s\" does not mention \"%s\"", err, needle);
	assert_null(strchr(err, '\n'));
}

static void test_args_run_defaults(void **state)
{
	struct lg_args a;
	char err[256];

	(void)state;
	assert_int_equal(PARSE(&a, err, "run", "--stack", "kernel", "--target", "10.0.0.1:7",
			       "--mode", "tcp_rr"), 0);
	assert_int_equal(a.cmd, LG_CMD_RUN);
	assert_string_equal(a.stack, "kernel");
	assert_int_equal(a.mode, LG_TCP_RR);
	assert_int_equal(ntohs(a.target.sin_port), 7);
	assert_int_equal(a.target.sin_addr.s_addr, inet_addr("10.0.0.1"));
	assert_int_equal(a.conns, 1);
	assert_int_equal(a.threads, 1);
	assert_int_equal(a.size, 64);
	assert_true(a.duration == 10);
	assert_int_equal(a.requests, 0);
	assert_true(a.rate == 0);
	assert_null(a.json);
}

static void test_args_run_everything(void **state)
{
	struct lg_args a;
	char err[256];

	(void)state;
	assert_int_equal(PARSE(&a, err, "run", "--stack", "mustang", "--ctl", "/tmp/x.sock",
			       "--target", "127.0.0.1:9000", "--mode", "tcp_crr", "--conns", "32",
			       "--threads", "2", "--size", "100", "--requests", "1000", "--rate",
			       "5000.5", "--warmup", "0.5", "--timeout", "1", "--json", "out.json",
			       "--quiet"), 0);
	assert_string_equal(a.ctl, "/tmp/x.sock");
	assert_int_equal(a.mode, LG_TCP_CRR);
	assert_int_equal(a.conns, 32);
	assert_int_equal(a.threads, 2);
	assert_int_equal(a.size, 100);
	assert_int_equal(a.requests, 1000);
	assert_true(a.duration == 0);
	assert_true(a.rate == 5000.5);
	assert_true(a.warmup == 0.5);
	assert_string_equal(a.json, "out.json");
	assert_true(a.quiet);
}

static void test_args_stream_default_size(void **state)
{
	struct lg_args a;
	char err[256];

	(void)state;
	assert_int_equal(PARSE(&a, err, "run", "--stack", "kernel", "--target", "1.2.3.4:5",
			       "--mode", "tcp_stream", "--duration", "2"), 0);
	assert_int_equal(a.size, 65536);
	assert_true(a.duration == 2);
}

static void test_args_serve(void **state)
{
	struct lg_args a;
	char err[256];

	(void)state;
	assert_int_equal(PARSE(&a, err, "serve", "--stack", "kernel", "--port", "7000",
			       "--threads", "4"), 0);
	assert_int_equal(a.cmd, LG_CMD_SERVE);
	assert_int_equal(a.port, 7000);
	assert_int_equal(a.threads, 4);
	refused(PARSE(&a, err, "serve", "--stack", "kernel"), err, "--port");
	refused(PARSE(&a, err, "serve", "--stack", "kernel", "--port", "7", "--mode", "tcp_rr"),
		err, "--mode");
	refused(PARSE(&a, err, "serve", "--stack", "kernel", "--port", "65535"), err, "--port");
}

static void test_args_refusals(void **state)
{
	struct lg_args a;
	char err[256];

	(void)state;
	refused(lg_parse_args(1, ARGV("x"), &a, err, sizeof(err)), err, "missing command");
	refused(PARSE(&a, err, "walk"), err, "unknown command");
	refused(PARSE(&a, err, "run", "--target", "1.2.3.4:5", "--mode", "tcp_rr"), err, "--stack");
	refused(PARSE(&a, err, "run", "--stack", "bsd"), err, "--stack");
	refused(PARSE(&a, err, "run", "--stack", "kernel", "--mode", "tcp_rr"), err, "--target");
	refused(PARSE(&a, err, "run", "--stack", "kernel", "--target", "1.2.3.4"), err, "--target");
	refused(PARSE(&a, err, "run", "--stack", "kernel", "--target", "host:80"), err, "--target");
	refused(PARSE(&a, err, "run", "--stack", "kernel", "--target", "1.2.3.4:0"), err, "--target");
	refused(PARSE(&a, err, "run", "--stack", "kernel", "--target", "1.2.3.4:5"), err, "--mode");
	refused(PARSE(&a, err, "run", "--stack", "kernel", "--target", "1.2.3.4:5", "--mode",
		      "tcp_ping"), err, "--mode");
	refused(PARSE(&a, err, "run", "--stack", "kernel", "--target", "1.2.3.4:5", "--mode",
		      "tcp_rr", "--conns", "0"), err, "--conns");
	refused(PARSE(&a, err, "run", "--stack", "kernel", "--target", "1.2.3.4:5", "--mode",
		      "tcp_rr", "--conns", "12x"), err, "--conns");
	refused(PARSE(&a, err, "run", "--stack", "kernel", "--target", "1.2.3.4:5", "--mode",
		      "tcp_rr", "--conns", "-1"), err, "--conns");
	refused(PARSE(&a, err, "run", "--stack", "kernel", "--target", "1.2.3.4:5", "--mode",
		      "tcp_rr", "--duration", "1", "--requests", "10"), err, "exclude");
	refused(PARSE(&a, err, "run", "--stack", "kernel", "--target", "1.2.3.4:5", "--mode",
		      "tcp_rr", "--threads", "4", "--conns", "2"), err, "--threads");
	refused(PARSE(&a, err, "run", "--stack", "kernel", "--target", "1.2.3.4:5", "--mode",
		      "tcp_rr", "--rate", "nan"), err, "--rate");
	refused(PARSE(&a, err, "run", "--stack", "kernel", "--target", "1.2.3.4:5", "--mode",
		      "tcp_rr", "--duration"), err, "missing value");
	refused(PARSE(&a, err, "run", "--stack", "kernel", "--target", "1.2.3.4:5", "--mode",
		      "tcp_rr", "--bogus", "1"), err, "unknown option");
	refused(PARSE(&a, err, "run", "--stack", "kernel", "--target", "1.2.3.4:5", "--mode",
		      "tcp_rr", "extra"), err, "unexpected");
	refused(PARSE(&a, err, "run", "--stack", "kernel", "--ctl", "/x", "--target", "1.2.3.4:5",
		      "--mode", "tcp_rr"), err, "--ctl");
	refused(PARSE(&a, err, "run", "--stack", "kernel", "--target", "1.2.3.4:5", "--mode",
		      "tcp_stream", "--rate", "10"), err, "--rate");
	refused(PARSE(&a, err, "run", "--stack", "kernel", "--target", "1.2.3.4:5", "--mode",
		      "udp_rr", "--size", "70000"), err, "--size");
	refused(PARSE(&a, err, "run", "--stack", "kernel", "--target", "1.2.3.4:5", "--mode",
		      "pony_rr"), err, "needs --stack mustang");
	refused(PARSE(&a, err, "run", "--stack", "mustang", "--target", "1.2.3.4:5", "--mode",
		      "pony_stream", "--conns", "4", "--threads", "2"), err, "one thread");
	refused(PARSE(&a, err, "run", "--stack", "mustang", "--target", "1.2.3.4:5", "--mode",
		      "pony_read", "--conns", "513"), err, "in flight");
}

static void test_pony_modes_parse(void **state)
{
	struct lg_args a;
	char err[256];
	const char *modes[] = { "pony_rr", "pony_stream", "pony_read" };

	(void)state;
	for (unsigned i = 0; i < 3; i++) {
		assert_int_equal(PARSE(&a, err, "run", "--stack", "mustang", "--target", "10.0.0.1:7100",
				       "--mode", modes[i], "--conns", "512", "--size", "16777216"), 0);
		assert_true(lg_mode_is_pony(a.mode));
		assert_string_equal(lg_mode_name(a.mode), modes[i]);
		assert_int_equal(a.conns, 512);
		assert_int_equal(a.size, 16u << 20);
	}
	assert_int_equal(PARSE(&a, err, "run", "--stack", "mustang", "--target", "10.0.0.1:7100",
			       "--mode", "udp_rr"), 0);
	assert_false(lg_mode_is_pony(a.mode));
	assert_int_equal(PARSE(&a, err, "serve", "--stack", "mustang", "--port", "7100", "--only",
			       "pony"), 0);
	assert_int_equal(a.serve_only, LG_SERVE_PONY);
	assert_int_equal(PARSE(&a, err, "serve", "--stack", "kernel", "--port", "7100", "--only",
			       "sockets"), 0);
	assert_int_equal(a.serve_only, LG_SERVE_SOCKETS);
	refused(PARSE(&a, err, "serve", "--stack", "kernel", "--port", "7100", "--only", "pony"), err,
		"needs --stack mustang");
	refused(PARSE(&a, err, "serve", "--stack", "mustang", "--port", "7100", "--only", "udp"), err,
		"sockets or pony");
}

static void test_sched_due_times_follow_the_rate(void **state)
{
	struct lg_sched s;
	uint64_t due, t = 1000;

	(void)state;
	lg_sched_init(&s, t, 1000.0);            /* one op per ms */
	assert_int_equal(lg_sched_take(&s, t, &due), 1);
	assert_int_equal(due, 1000);
	assert_int_equal(lg_sched_take(&s, t + 999999, &due), 0);   /* not yet */
	assert_int_equal(lg_sched_take(&s, t + 1000000, &due), 1);
	assert_int_equal(due, 1000 + 1000000);
}

static void test_sched_late_sender_keeps_intended_times(void **state)
{
	struct lg_sched s;
	uint64_t due, now;
	int n = 0;

	(void)state;
	lg_sched_init(&s, 0, 1e6);               /* one op per us */
	now = 10000;                             /* the sender stalled for 10 us */
	while (lg_sched_take(&s, now, &due)) {
		/* each op keeps its own due time: latency counts the stall */
		assert_int_equal(due, (uint64_t)n * 1000);
		n++;
	}
	assert_int_equal(n, 11);                 /* 0, 1, ..., 10 us all due */
}

static void test_sched_fractional_interval_has_no_drift(void **state)
{
	struct lg_sched s;
	uint64_t due = 0;

	(void)state;
	lg_sched_init(&s, 0, 3.0);               /* 333,333,333.3 ns */
	for (int i = 0; i < 3000; i++)
		assert_int_equal(lg_sched_take(&s, UINT64_MAX / 2, &due), 1);
	/* op 2999 is due at 2999/3 s, within a nanosecond */
	assert_true(due >= 999666666000ull && due <= 999666667000ull);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_args_run_defaults),
		cmocka_unit_test(test_args_run_everything),
		cmocka_unit_test(test_args_stream_default_size),
		cmocka_unit_test(test_args_serve),
		cmocka_unit_test(test_args_refusals),
		cmocka_unit_test(test_pony_modes_parse),
		cmocka_unit_test(test_sched_due_times_follow_the_rate),
		cmocka_unit_test(test_sched_late_sender_keeps_intended_times),
		cmocka_unit_test(test_sched_fractional_interval_has_no_drift),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
