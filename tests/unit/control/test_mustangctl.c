/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The mustangctl binary (argv[1]) run as an operator would: against a test
 * server, against no daemon, with bad usage. Checks exit codes and the exact
 * text on stdout and stderr.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "control/ctl_server.h"

static const char *mustangctl;
static char dir[64];
static char sock_path[96];

struct run {
	int status;     /* exit code, or -1 if it did not exit */
	char out[4096]; /* stdout */
	char err[4096]; /* stderr */
};

static void slurp(int fd, char *buf, size_t cap)
{
	size_t got = 0;
	ssize_t n;

	while (got + 1 < cap && (n = read(fd, buf + got, cap - 1 - got)) > 0)
		got += (size_t)n;
	buf[got] = '\0';
}

/* Run mustangctl with a NULL-terminated argument list. Output is small, so
 * reading stdout to EOF and then stderr cannot deadlock. */
static void run(struct run *r, ...)
{
	char *argv[16];
	int out[2], err[2], argc = 0, status;
	va_list ap;
	pid_t pid;

	argv[argc++] = (char *)mustangctl;
	va_start(ap, r);
	for (char *a; (a = va_arg(ap, char *)) != NULL;)
		argv[argc++] = a;
	va_end(ap);
	argv[argc] = NULL;

	assert_int_equal(pipe(out), 0);
	assert_int_equal(pipe(err), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(out[1], 1);
		dup2(err[1], 2);
		close(out[0]);
		close(err[0]);
		execv(mustangctl, argv);
		_exit(127);
	}
	close(out[1]);
	close(err[1]);
	slurp(out[0], r->out, sizeof(r->out));
	slurp(err[0], r->err, sizeof(r->err));
	close(out[0]);
	close(err[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	r->status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int handler(void *ctx, enum mst_ctl_req req, const char *arg, struct emit *e)
{
	(void)ctx;
	(void)arg;
	switch (req) {
	case MST_CTL_status:
		emit_str(e, "version", "0.1.0");
		emit_u64(e, "engines", 1);
		return 0;
	case MST_CTL_ports:
		emit_arr_begin(e, "ports");
		emit_obj_begin(e, NULL);
		emit_str(e, "name", "port0");
		emit_str(e, "driver", "ring");
		emit_obj_end(e);
		emit_arr_end(e);
		return 0;
	case MST_CTL_engines:
		return -ENODEV; /* no explanation: mustangctl falls back to strerror */
	case MST_CTL_conns:
	case MST_CTL_stats:
		emit_str(e, "error", "stats are resting");
		return -EAGAIN;
	default: /* requests these tests do not make */
		break;
	}
	return -EOPNOTSUPP;
}

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/mst_ctlcli_XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(sock_path, sizeof(sock_path), "%s/mustang.sock", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(sock_path);
	rmdir(dir);
	return 0;
}

static void test_mustangctl_against_server(void **state)
{
	struct ctl_server *s;
	struct run r;
	char err[256];

	(void)state;
	s = ctl_server_start(sock_path, handler, NULL, err, sizeof(err));
	if (s == NULL)
		fail_msg("ctl_server_start: %s", err);

	run(&r, "--ctl", sock_path, "status", NULL);
	assert_int_equal(r.status, 0);
	assert_string_equal(r.out, "version: 0.1.0\nengines: 1\n");
	assert_string_equal(r.err, "");

	/* --json before or after the command; a newline is added. */
	run(&r, "--ctl", sock_path, "status", "--json", NULL);
	assert_int_equal(r.status, 0);
	assert_string_equal(r.out, "{\"version\":\"0.1.0\",\"engines\":1}\n");
	run(&r, "--json", "--timeout=1000", "--ctl=", NULL);
	assert_int_equal(r.status, 2);
	run(&r, "--json", "--timeout", "1000", "ports", "--ctl", sock_path, NULL);
	assert_int_equal(r.status, 0);
	assert_string_equal(r.out, "{\"ports\":[{\"name\":\"port0\",\"driver\":\"ring\"}]}\n");
	run(&r, "ports", "--ctl", sock_path, NULL);
	assert_string_equal(r.out, "ports:\n  port0:\n    driver: ring\n");

	/* Errors from the daemon: its text, or the errno's, on stderr. */
	run(&r, "--ctl", sock_path, "engines", NULL);
	assert_int_equal(r.status, 1);
	assert_string_equal(r.out, "");
	assert_string_equal(r.err, "mustangctl: engines: No such device\n");
	run(&r, "--ctl", sock_path, "stats", NULL);
	assert_int_equal(r.status, 1);
	assert_string_equal(r.err, "mustangctl: stats: error: stats are resting\n");

	ctl_server_stop(s);
}

static void test_mustangctl_no_daemon(void **state)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	char want[256];
	struct run r;
	int fd;

	(void)state;
	snprintf(want, sizeof(want), "mustangctl: mustangd is not running at %s\n", sock_path);
	/* No socket file at all (ENOENT). */
	run(&r, "--ctl", sock_path, "status", NULL);
	assert_int_equal(r.status, 1);
	assert_string_equal(r.err, want);
	assert_string_equal(r.out, "");
	/* A socket file left by a dead daemon (ECONNREFUSED). */
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", sock_path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	close(fd);
	run(&r, "stats", "--ctl", sock_path, "--json", NULL);
	assert_int_equal(r.status, 1);
	assert_string_equal(r.err, want);
	unlink(sock_path);
}

static void test_mustangctl_usage(void **state)
{
	struct run r;

	(void)state;
	run(&r, "--help", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "Usage: mustangctl"));
	assert_non_null(strstr(r.out, "  stats "));
	run(&r, "frobnicate", NULL);
	assert_int_equal(r.status, 2);
	assert_non_null(strstr(r.err, "mustangctl: unknown command \"frobnicate\"\n"));
	assert_non_null(strstr(r.err, "Usage: mustangctl"));
	run(&r, NULL);
	assert_int_equal(r.status, 2);
	run(&r, "status", "ports", NULL);
	assert_int_equal(r.status, 2);
	run(&r, "--bogus", "status", NULL);
	assert_int_equal(r.status, 2);
	run(&r, "status", "--timeout", NULL);
	assert_int_equal(r.status, 2);
	run(&r, "status", "--timeout", "0", NULL);
	assert_int_equal(r.status, 2);
	run(&r, "status", "--timeout", "10ms", NULL);
	assert_int_equal(r.status, 2);
}

/* A socket the caller may not open: permission denied, said plainly. */
static void test_mustangctl_permission_denied(void **state)
{
	struct ctl_server *s;
	char err[256];
	pid_t pid;
	int status;

	(void)state;
	if (geteuid() != 0)
		skip();
	s = ctl_server_start(sock_path, handler, NULL, err, sizeof(err));
	assert_non_null(s);
	assert_int_equal(chmod(dir, 0755), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct run r;

		if (setgid(65534) != 0 || setuid(65534) != 0)
			_exit(10);
		run(&r, "--ctl", sock_path, "status", NULL);
		_exit(r.status == 1 && strstr(r.err, "permission denied") != NULL &&
				      strchr(r.err, '\n') == r.err + strlen(r.err) - 1
			      ? 0
			      : 11);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	ctl_server_stop(s);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_mustangctl_against_server, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mustangctl_no_daemon, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mustangctl_usage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mustangctl_permission_denied, setup,
						teardown),
	};

	if (argc < 2) {
		fprintf(stderr, "usage: %s PATH-TO-MUSTANGCTL\n", argv[0]);
		return 77;
	}
	mustangctl = argv[1];
	return cmocka_run_group_tests(tests, NULL, NULL);
}
