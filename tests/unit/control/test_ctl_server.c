/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Control socket server against well-behaved and hostile peers
 * (control/ctl_server.h): every protocol violation gets its error status and
 * a hang-up, stalled peers are dropped after the deadline, and through all
 * of it a normal request is still answered.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
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
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "control/ctl_server.h"

#define BIG_RESPONSE_LEN (900u * 1024u) /* far more than a socket buffer */

struct fixture {
	char dir[64];
	char path[128];
	struct ctl_server *srv;
};

/* status: "up" + the argument; ports: an error with an explanation;
 * engines: a response too big to be written at once. */
static int handler(void *ctx, enum mst_ctl_req req, const char *arg, struct emit *e)
{
	(void)ctx;
	switch (req) {
	case MST_CTL_status:
		emit_str(e, "state", "up");
		emit_str(e, "arg", arg);
		return 0;
	case MST_CTL_ports:
		emit_str(e, "error", "no ports yet");
		return -ENODEV;
	case MST_CTL_engines: {
		char *big = malloc(BIG_RESPONSE_LEN + 1);

		if (big == NULL)
			return -ENOMEM;
		memset(big, 'e', BIG_RESPONSE_LEN);
		big[BIG_RESPONSE_LEN] = '\0';
		emit_str(e, "big", big);
		free(big);
		return 0;
	}
	case MST_CTL_conns:
	case MST_CTL_stats:
		return 0;
	default: /* requests these tests do not make */
		break;
	}
	return -EOPNOTSUPP;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[256];

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/mst_ctl_XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	/* A directory that does not exist yet: start must create it. */
	snprintf(f->path, sizeof(f->path), "%s/run/ctl.sock", f->dir);
	f->srv = ctl_server_start(f->path, handler, NULL, err, sizeof(err));
	if (f->srv == NULL)
		fail_msg("ctl_server_start: %s", err);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char sub[160];

	ctl_server_stop(f->srv);
	snprintf(sub, sizeof(sub), "%s/run", f->dir);
	rmdir(sub);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* A blocking raw connection with a 5 s receive timeout (a test that hangs
 * fails instead). */
static int raw_connect(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 5 };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	return fd;
}

static void raw_send_hdr(int fd, uint32_t magic, uint16_t version, uint16_t type, uint32_t len)
{
	struct mst_ctl_hdr h = {
		.magic = htole32(magic),
		.version = htole16(version),
		.type = htole16(type),
		.len = htole32(len),
	};

	assert_int_equal(send(fd, &h, sizeof(h), MSG_NOSIGNAL), (ssize_t)sizeof(h));
}

/* Read one response; returns its status, payload (if any) in buf. */
static int raw_read_response(int fd, char *buf, size_t buflen)
{
	struct mst_ctl_hdr h;
	size_t got = 0;

	while (got < sizeof(h)) {
		ssize_t n = recv(fd, (char *)&h + got, sizeof(h) - got, 0);

		if (n <= 0)
			fail_msg("response header: got %zu bytes, recv %zd (%s)", got, n,
				 strerror(errno));
		got += (size_t)n;
	}
	assert_int_equal(le32toh(h.magic), MST_CTL_MAGIC);
	assert_int_equal(le16toh(h.version), MST_CTL_VERSION);
	assert_true(le32toh(h.len) < buflen);
	got = 0;
	while (got < le32toh(h.len)) {
		ssize_t n = recv(fd, buf + got, le32toh(h.len) - got, 0);

		assert_true(n > 0);
		got += (size_t)n;
	}
	buf[got] = '\0';
	return (int32_t)le32toh((uint32_t)h.status);
}

/* The server hung up: EOF (or a reset, if it closed with our bytes unread). */
static void assert_closed(int fd)
{
	char c;
	ssize_t n = recv(fd, &c, 1, 0);

	if (!(n == 0 || (n < 0 && errno == ECONNRESET)))
		fail_msg("expected the server to hang up, recv gave %zd (%s)", n, strerror(errno));
}

/* The server still answers a normal request, in text and in JSON. */
static void assert_serves(const struct fixture *f)
{
	char *out = NULL;
	size_t len = 0;
	int fd = ctl_client_connect(f->path, 2000);

	assert_true(fd >= 0);
	assert_int_equal(ctl_client_call(fd, MST_CTL_status, "hello", &out, &len, 2000), 0);
	assert_string_equal(out, "state: up\narg: hello\n");
	assert_int_equal(len, strlen(out));
	free(out);
	/* Several requests on one connection. */
	assert_int_equal(ctl_client_call(fd, MST_CTL_status | MST_CTL_F_JSON, NULL, &out, &len,
					 2000),
			 0);
	assert_string_equal(out, "{\"state\":\"up\",\"arg\":\"\"}");
	free(out);
	close(fd);
}

static void expect_rejected(const struct fixture *f, uint32_t magic, uint16_t version,
			    uint16_t type, uint32_t len, int want)
{
	char buf[256];
	int fd = raw_connect(f->path);

	raw_send_hdr(fd, magic, version, type, len);
	assert_int_equal(raw_read_response(fd, buf, sizeof(buf)), want);
	assert_true(strlen(buf) > 0); /* says why */
	assert_closed(fd);
	close(fd);
	assert_serves(f);
}

static void test_ctl_normal_requests(void **state)
{
	struct fixture *f = *state;
	char *out = NULL;
	size_t len;
	int fd;

	assert_serves(f);
	fd = ctl_client_connect(f->path, 2000);
	assert_true(fd >= 0);
	/* A handler error travels as the status, with the handler's text. */
	assert_int_equal(ctl_client_call(fd, MST_CTL_ports, "", &out, &len, 2000), -ENODEV);
	assert_string_equal(out, "error: no ports yet\n");
	free(out);
	/* An empty answer. */
	assert_int_equal(ctl_client_call(fd, MST_CTL_stats, "", &out, &len, 2000), 0);
	assert_int_equal(len, 0);
	assert_string_equal(out, "");
	free(out);
	/* A response much larger than the socket buffer arrives whole. */
	assert_int_equal(ctl_client_call(fd, MST_CTL_engines, "", &out, &len, 5000), 0);
	assert_int_equal(len, strlen("big: ") + BIG_RESPONSE_LEN + 1);
	free(out);
	close(fd);
}

static void test_ctl_bad_magic(void **state)
{
	expect_rejected(*state, 0xdeadbeef, MST_CTL_VERSION, MST_CTL_status, 0, -EPROTO);
}

static void test_ctl_bad_version(void **state)
{
	expect_rejected(*state, MST_CTL_MAGIC, 2, MST_CTL_status, 0, -EPROTONOSUPPORT);
	expect_rejected(*state, MST_CTL_MAGIC, 0, MST_CTL_status, 0, -EPROTONOSUPPORT);
}

static void test_ctl_huge_length(void **state)
{
	expect_rejected(*state, MST_CTL_MAGIC, MST_CTL_VERSION, MST_CTL_status,
			MST_CTL_MAX_PAYLOAD + 1, -EMSGSIZE);
	expect_rejected(*state, MST_CTL_MAGIC, MST_CTL_VERSION, MST_CTL_status, UINT32_MAX,
			-EMSGSIZE);
}

static void test_ctl_unknown_type(void **state)
{
	expect_rejected(*state, MST_CTL_MAGIC, MST_CTL_VERSION, 0, 0, -EOPNOTSUPP);
	expect_rejected(*state, MST_CTL_MAGIC, MST_CTL_VERSION, 99, 0, -EOPNOTSUPP);
	expect_rejected(*state, MST_CTL_MAGIC, MST_CTL_VERSION, MST_CTL_status | 0x0100, 0,
			-EOPNOTSUPP); /* unknown flag bit */
}

static void test_ctl_nul_in_argument(void **state)
{
	struct fixture *f = *state;
	char buf[256];
	int fd = raw_connect(f->path);

	raw_send_hdr(fd, MST_CTL_MAGIC, MST_CTL_VERSION, MST_CTL_status, 3);
	assert_int_equal(send(fd, "a\0b", 3, MSG_NOSIGNAL), 3);
	assert_int_equal(raw_read_response(fd, buf, sizeof(buf)), -EINVAL);
	assert_closed(fd);
	close(fd);
	assert_serves(f);
}

static void test_ctl_truncated_header_then_close(void **state)
{
	struct fixture *f = *state;
	int fd = raw_connect(f->path);
	struct mst_ctl_hdr h = { .magic = htole32(MST_CTL_MAGIC) };

	assert_int_equal(send(fd, &h, 7, MSG_NOSIGNAL), 7);
	close(fd);
	/* Same with a complete header and half the payload. */
	fd = raw_connect(f->path);
	raw_send_hdr(fd, MST_CTL_MAGIC, MST_CTL_VERSION, MST_CTL_status, 100);
	assert_int_equal(send(fd, "0123456789", 10, MSG_NOSIGNAL), 10);
	close(fd);
	assert_serves(f);
}

static void test_ctl_request_trickled_byte_by_byte(void **state)
{
	struct fixture *f = *state;
	struct mst_ctl_hdr h = {
		.magic = htole32(MST_CTL_MAGIC),
		.version = htole16(MST_CTL_VERSION),
		.type = htole16(MST_CTL_status),
		.len = htole32(2),
	};
	char msg[sizeof(h) + 2], buf[256];
	int fd = raw_connect(f->path);

	memcpy(msg, &h, sizeof(h));
	memcpy(msg + sizeof(h), "hi", 2);
	for (size_t i = 0; i < sizeof(msg); i++) {
		assert_int_equal(send(fd, msg + i, 1, MSG_NOSIGNAL), 1);
		nanosleep(&(struct timespec){ .tv_nsec = 5000000 }, NULL);
	}
	assert_int_equal(raw_read_response(fd, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "state: up\narg: hi\n");
	close(fd);
}

static double elapsed_s(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

static void test_ctl_silent_client_is_dropped_others_served(void **state)
{
	struct fixture *f = *state;
	struct timespec t0;
	int silent, half;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	silent = raw_connect(f->path);
	half = raw_connect(f->path);
	raw_send_hdr(half, MST_CTL_MAGIC, MST_CTL_VERSION, MST_CTL_status, 10); /* no payload */
	assert_serves(f);
	assert_serves(f);
	assert_true(elapsed_s(&t0) < 1.0); /* nobody waited for the silent ones */
	assert_closed(silent);               /* after the 2 s deadline */
	assert_closed(half);
	assert_true(elapsed_s(&t0) >= 1.9);
	assert_true(elapsed_s(&t0) < 4.0);
	close(silent);
	close(half);
	assert_serves(f);
}

static void test_ctl_stalled_reader_does_not_block_the_server(void **state)
{
	struct fixture *f = *state;
	struct timespec t0;
	int stalled = raw_connect(f->path);
	char c;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* Ask for ~900 KiB and never read it: the server's writes fill the
	 * socket buffer and would block a blocking server forever. */
	raw_send_hdr(stalled, MST_CTL_MAGIC, MST_CTL_VERSION, MST_CTL_engines, 0);
	nanosleep(&(struct timespec){ .tv_nsec = 100000000 }, NULL);
	assert_serves(f);
	assert_true(elapsed_s(&t0) < 1.0);
	/* After the deadline the server gives up on it: draining what was
	 * sent ends in EOF before the whole response. */
	sleep(3);
	for (size_t total = 0;;) {
		ssize_t n = recv(stalled, &c, 1, MSG_DONTWAIT);

		if (n == 0 || (n < 0 && errno == ECONNRESET))
			break;
		if (n < 0)
			fail_msg("stalled reader was not dropped: %s after %zu bytes",
				 strerror(errno), total);
		total += (size_t)n;
		assert_true(total < BIG_RESPONSE_LEN);
	}
	close(stalled);
	assert_serves(f);
}

static void test_ctl_many_clients(void **state)
{
	struct fixture *f = *state;
	enum { N = 64 };
	int fds[N], extra;
	char *out;
	size_t len;

	/* 64 connections at once, every one answered. */
	for (int i = 0; i < N; i++) {
		fds[i] = ctl_client_connect(f->path, 2000);
		assert_true(fds[i] >= 0);
	}
	for (int i = 0; i < N; i++) {
		char arg[16];

		snprintf(arg, sizeof(arg), "c%d", i);
		assert_int_equal(ctl_client_call(fds[i], MST_CTL_status | MST_CTL_F_JSON, arg,
						 &out, &len, 2000),
				 0);
		assert_non_null(strstr(out, arg));
		free(out);
	}
	/* The 65th is told the server is busy, not left hanging. */
	extra = ctl_client_connect(f->path, 2000);
	assert_true(extra >= 0);
	assert_int_equal(ctl_client_call(extra, MST_CTL_status, "", &out, &len, 2000), -EBUSY);
	free(out);
	close(extra);
	for (int i = 0; i < N; i++)
		close(fds[i]);
	/* Slots free again once the server sees the hang-ups. */
	nanosleep(&(struct timespec){ .tv_nsec = 100000000 }, NULL);
	assert_serves(f);
}

static void test_ctl_client_timeout(void **state)
{
	struct fixture *f = *state;
	struct timespec t0;
	char *out = (char *)"unchanged";
	int fd;
	int listener = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un a = { .sun_family = AF_UNIX };

	/* A listener that accepts nothing and answers nothing. */
	snprintf(a.sun_path, sizeof(a.sun_path), "%s/mute.sock", f->dir);
	assert_int_equal(bind(listener, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(listener, 4), 0);
	fd = ctl_client_connect(a.sun_path, 1000);
	assert_true(fd >= 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(ctl_client_call(fd, MST_CTL_status, "", &out, NULL, 300), -ETIMEDOUT);
	assert_null(out); /* a transport error, not an answer */
	assert_true(elapsed_s(&t0) >= 0.29 && elapsed_s(&t0) < 2.0);
	close(fd);
	close(listener);
	unlink(a.sun_path);

	assert_int_equal(ctl_client_connect(a.sun_path, 100), -ENOENT);
	assert_int_equal(ctl_client_connect("", 100), -EINVAL);
}

static void test_ctl_second_server_refused_stale_replaced(void **state)
{
	struct fixture *f = *state;
	struct ctl_server *s2;
	char err[256], path[160];
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd;

	/* A live daemon on the path: refuse. */
	s2 = ctl_server_start(f->path, handler, NULL, err, sizeof(err));
	assert_null(s2);
	assert_int_equal(errno, EADDRINUSE);
	snprintf(path, sizeof(path), "another mustangd is running at %s", f->path);
	assert_string_equal(err, path);
	assert_serves(f);

	/* A stale socket (bound, nobody listening): replaced. */
	snprintf(a.sun_path, sizeof(a.sun_path), "%s/stale.sock", f->dir);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	close(fd);
	assert_int_equal(ctl_client_connect(a.sun_path, 100), -ECONNREFUSED);
	s2 = ctl_server_start(a.sun_path, handler, NULL, err, sizeof(err));
	if (s2 == NULL)
		fail_msg("stale socket not replaced: %s", err);
	fd = ctl_client_connect(a.sun_path, 1000);
	assert_true(fd >= 0);
	close(fd);
	ctl_server_stop(s2);
	assert_int_equal(access(a.sun_path, F_OK), -1); /* stop unlinks */

	/* A regular file on the path is not ours to delete. */
	fd = creat(a.sun_path, 0600);
	assert_true(fd >= 0);
	close(fd);
	s2 = ctl_server_start(a.sun_path, handler, NULL, err, sizeof(err));
	assert_null(s2);
	assert_non_null(strstr(err, "is not a socket"));
	assert_int_equal(access(a.sun_path, F_OK), 0);
	unlink(a.sun_path);
}

static void test_ctl_socket_mode_and_operator_check(void **state)
{
	struct fixture *f = *state;
	struct stat st;

	assert_int_equal(stat(f->path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0660);

	assert_true(ctl_peer_is_operator(0, 0, 1000, 50));     /* root */
	assert_true(ctl_peer_is_operator(1000, 1000, 1000, 50)); /* daemon's user */
	assert_true(ctl_peer_is_operator(1001, 50, 1000, 50));  /* socket's group */
	assert_false(ctl_peer_is_operator(1001, 1001, 1000, 50));
}

/* A peer that passes the file permission check but is not an operator gets
 * -EACCES from the server. Needs root to become someone else. */
static void test_ctl_non_operator_gets_eacces(void **state)
{
	struct fixture *f = *state;
	pid_t pid;
	int status;

	if (geteuid() != 0)
		skip();
	assert_int_equal(chmod(f->dir, 0711), 0); /* mkdtemp made it 0700 */
	assert_int_equal(chmod(f->path, 0666), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char *out = NULL;
		int fd, rc;

		if (setgid(65534) != 0 || setuid(65534) != 0)
			_exit(10);
		fd = ctl_client_connect(f->path, 2000);
		if (fd < 0)
			_exit(11);
		rc = ctl_client_call(fd, MST_CTL_status, "", &out, NULL, 2000);
		_exit(rc == -EACCES && out != NULL && strstr(out, "permission denied") ? 0 : 12);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(chmod(f->path, 0660), 0);
	assert_serves(f);
}

/* A non-operator's request is refused at its header, before the server
 * allocates or reads its payload: a header announcing 1 MiB gets EACCES at
 * once (it used to get a 1 MiB buffer and a wait for the bytes). Needs
 * root to become someone else. */
static void test_ctl_non_operator_refused_before_payload(void **state)
{
	struct fixture *f = *state;
	uint64_t c[CTL_CTR__COUNT];
	pid_t pid;
	int status;

	if (geteuid() != 0)
		skip();
	assert_int_equal(chmod(f->dir, 0711), 0);
	assert_int_equal(chmod(f->path, 0666), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct sockaddr_un a = { .sun_family = AF_UNIX };
		struct timeval tv = { .tv_sec = 1 }; /* the server's deadline is 2 s */
		struct mst_ctl_hdr h = { .magic = htole32(MST_CTL_MAGIC),
					 .version = htole16(MST_CTL_VERSION),
					 .type = htole16(MST_CTL_status),
					 .len = htole32(MST_CTL_MAX_PAYLOAD) };
		int fd;

		if (setgid(65534) != 0 || setuid(65534) != 0)
			_exit(10);
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		memcpy(a.sun_path, f->path, strlen(f->path) + 1); /* 128 > 108: short in practice */
		if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
		    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0)
			_exit(11);
		if (send(fd, &h, sizeof(h), MSG_NOSIGNAL) != (ssize_t)sizeof(h))
			_exit(12);
		memset(&h, 0, sizeof(h));
		if (recv(fd, &h, sizeof(h), MSG_WAITALL) != (ssize_t)sizeof(h))
			_exit(13); /* no answer before the payload */
		_exit((int32_t)le32toh((uint32_t)h.status) == -EACCES ? 0 : 14);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	ctl_server_counters(f->srv, c);
	assert_int_equal(c[CTL_CTR_ctl_not_operator], 1);
	assert_int_equal(chmod(f->path, 0660), 0);
	assert_serves(f);
}

static unsigned fake_detaches;

static int fake_attach(void *ctx, unsigned client, pid_t pid, uid_t uid, int *fds, unsigned max,
		       unsigned *n_fds, char *payload, size_t payload_len)
{
	(void)ctx, (void)pid, (void)uid, (void)fds, (void)max;
	*n_fds = 0;
	snprintf(payload, payload_len, "app_id %u", client + 1);
	return 0;
}

static void fake_detach(void *ctx, unsigned client)
{
	(void)ctx, (void)client;
	fake_detaches++;
}

/* A flood of attaches takes at most the apps' share of the client slots:
 * the one beyond gets EMFILE and a reason (counted), operators are still
 * served, and a slot an app gives back can be attached again. */
static void test_ctl_attach_flood_leaves_operator_slots(void **state)
{
	const struct ctl_app_hooks hooks = { .attach = fake_attach, .detach = fake_detach };
	const unsigned share = CTL_SERVER_MAX_CLIENTS - CTL_SERVER_OPERATOR_SLOTS;
	struct fixture *f = *state;
	int fds[CTL_SERVER_MAX_CLIENTS], extra;
	uint64_t c[CTL_CTR__COUNT];
	char buf[256], err[256];

	ctl_server_stop(f->srv);
	f->srv = ctl_server_start_apps(f->path, handler, NULL, &hooks, err, sizeof(err));
	if (f->srv == NULL)
		fail_msg("ctl_server_start_apps: %s", err);
	fake_detaches = 0;
	for (unsigned i = 0; i < share; i++) {
		fds[i] = raw_connect(f->path);
		raw_send_hdr(fds[i], MST_CTL_MAGIC, MST_CTL_VERSION, MST_CTL_attach, 0);
		assert_int_equal(raw_read_response(fds[i], buf, sizeof(buf)), 0);
	}
	extra = raw_connect(f->path);
	raw_send_hdr(extra, MST_CTL_MAGIC, MST_CTL_VERSION, MST_CTL_attach, 0);
	assert_int_equal(raw_read_response(extra, buf, sizeof(buf)), -EMFILE);
	assert_non_null(strstr(buf, "too many applications"));
	assert_closed(extra);
	close(extra);
	ctl_server_counters(f->srv, c);
	assert_int_equal(c[CTL_CTR_ctl_apps_full], 1);
	assert_serves(f);
	/* An app leaves: its slot is free for the next one. */
	close(fds[0]);
	for (int i = 0; i < 200 && fake_detaches == 0; i++)
		usleep(10000);
	assert_int_equal(fake_detaches, 1);
	fds[0] = raw_connect(f->path);
	raw_send_hdr(fds[0], MST_CTL_MAGIC, MST_CTL_VERSION, MST_CTL_attach, 0);
	assert_int_equal(raw_read_response(fds[0], buf, sizeof(buf)), 0);
	for (unsigned i = 0; i < share; i++)
		close(fds[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_ctl_normal_requests),
		T(test_ctl_bad_magic),
		T(test_ctl_bad_version),
		T(test_ctl_huge_length),
		T(test_ctl_unknown_type),
		T(test_ctl_nul_in_argument),
		T(test_ctl_truncated_header_then_close),
		T(test_ctl_request_trickled_byte_by_byte),
		T(test_ctl_silent_client_is_dropped_others_served),
		T(test_ctl_stalled_reader_does_not_block_the_server),
		T(test_ctl_many_clients),
		T(test_ctl_client_timeout),
		T(test_ctl_second_server_refused_stale_replaced),
		T(test_ctl_socket_mode_and_operator_check),
		T(test_ctl_non_operator_gets_eacces),
		T(test_ctl_non_operator_refused_before_payload),
		T(test_ctl_attach_flood_leaves_operator_slots),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
