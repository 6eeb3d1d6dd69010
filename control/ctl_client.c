/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Control socket client, for mustangctl and the tests (see ctl_server.h).
 *
 * ctl_client_connect() -> ctl_client_call() [-> ctl_client_call() ...] -> close()
 *
 * The fd is nonblocking and every wait is a poll() against one deadline per
 * call, so a daemon that stops answering costs the caller timeout_ms, never
 * a hang. A negative timeout_ms waits forever.
 *
 * ctl_client_call() returns the daemon's status with *out set (its payload,
 * possibly an explanation of the error), or a transport error with *out
 * NULL: that is how a caller tells "the daemon said -EACCES" from "the
 * socket said -EACCES".
 */
#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "control/ctl_server.h"

#define CLIENT_RETRY_MS 10 /* connect() retry while the listen backlog is full */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t deadline_of(int timeout_ms)
{
	return timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
}

/* poll() timeout left before `deadline` (-1: none); -ETIMEDOUT once past. */
static int time_left(int64_t deadline)
{
	int64_t left;

	if (deadline < 0)
		return -1;
	left = deadline - now_ms();
	if (left <= 0)
		return -ETIMEDOUT;
	return left > 60000 ? 60000 : (int)left;
}

static int wait_fd(int fd, short events, int64_t deadline)
{
	for (;;) {
		struct pollfd p = { .fd = fd, .events = events };
		int left = time_left(deadline);
		int rc;

		if (left == -ETIMEDOUT)
			return -ETIMEDOUT;
		rc = poll(&p, 1, left);
		if (rc > 0)
			return 0; /* ready, or an error the next I/O call reports */
		if (rc < 0 && errno != EINTR)
			return -errno;
	}
}

int ctl_client_connect(const char *path, int timeout_ms)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int64_t deadline = deadline_of(timeout_ms);
	int fd, rc;

	if (path == NULL || path[0] == '\0')
		return -EINVAL;
	if (strlen(path) >= sizeof(addr.sun_path))
		return -ENAMETOOLONG;
	memcpy(addr.sun_path, path, strlen(path) + 1);

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	for (;;) {
		if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0)
			return fd;
		rc = -errno;
		if (rc == -EINTR)
			continue;
		if (rc == -EINPROGRESS) {
			socklen_t len = sizeof(int);
			int soerr = 0;

			rc = wait_fd(fd, POLLOUT, deadline);
			if (rc == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
				rc = -errno;
			else if (rc == 0)
				rc = -soerr;
			if (rc == 0)
				return fd;
			break;
		}
		/* A nonblocking UNIX connect() fails with EAGAIN while the
		 * listener's backlog is full: the daemon is alive, retry. */
		if (rc != -EAGAIN)
			break;
		if (time_left(deadline) == -ETIMEDOUT) {
			rc = -ETIMEDOUT;
			break;
		}
		nanosleep(&(struct timespec){ .tv_nsec = CLIENT_RETRY_MS * 1000000L }, NULL);
	}
	close(fd);
	return rc;
}

static int send_all(int fd, const void *buf, size_t len, int64_t deadline)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		int rc;

		if (n >= 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
		rc = wait_fd(fd, POLLOUT, deadline);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int recv_all(int fd, void *buf, size_t len, int64_t deadline)
{
	char *p = buf;

	while (len > 0) {
		ssize_t n = recv(fd, p, len, MSG_DONTWAIT);
		int rc;

		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n == 0)
			return -ECONNRESET; /* the daemon hung up mid-response */
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
		rc = wait_fd(fd, POLLIN, deadline);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int ctl_client_call(int fd, uint16_t type, const char *arg, char **out, size_t *out_len,
		    int timeout_ms)
{
	int64_t deadline = deadline_of(timeout_ms);
	size_t arg_len = arg != NULL ? strlen(arg) : 0;
	struct mst_ctl_hdr h;
	char *payload;
	int rc;

	if (out != NULL)
		*out = NULL;
	if (out_len != NULL)
		*out_len = 0;
	if (arg_len > MST_CTL_MAX_PAYLOAD)
		return -EMSGSIZE;

	h = (struct mst_ctl_hdr){
		.magic = htole32(MST_CTL_MAGIC),
		.version = htole16(MST_CTL_VERSION),
		.type = htole16(type),
		.status = 0,
		.len = htole32((uint32_t)arg_len),
	};
	rc = send_all(fd, &h, sizeof(h), deadline);
	if (rc == 0 && arg_len > 0)
		rc = send_all(fd, arg, arg_len, deadline);
	/* A daemon that rejects us may hang up before reading everything we
	 * sent; its answer can still be waiting for us, so read it. */
	if (rc < 0 && rc != -EPIPE && rc != -ECONNRESET)
		return rc;

	rc = recv_all(fd, &h, sizeof(h), deadline);
	if (rc < 0)
		return rc;
	h.magic = le32toh(h.magic);
	h.version = le16toh(h.version);
	h.status = (int32_t)le32toh((uint32_t)h.status);
	h.len = le32toh(h.len);
	if (h.magic != MST_CTL_MAGIC || h.version != MST_CTL_VERSION ||
	    h.len > MST_CTL_MAX_PAYLOAD || h.status > 0)
		return -EPROTO;

	payload = malloc((size_t)h.len + 1);
	if (payload == NULL)
		return -ENOMEM;
	rc = recv_all(fd, payload, h.len, deadline);
	if (rc < 0) {
		free(payload);
		return rc;
	}
	payload[h.len] = '\0';
	if (out != NULL)
		*out = payload;
	else
		free(payload);
	if (out_len != NULL)
		*out_len = h.len;
	return h.status;
}
