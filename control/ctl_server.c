/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Control socket server (see ctl_server.h and <mustang/ctl.h>).
 *
 * ctl_server_start() -> socket_open() -> pthread: server_main()
 *   server_main(): poll(wake, listen, clients)
 *     -> client_accept()                      SO_PEERCRED, deadline armed
 *     -> client_read()  -> request_check()    header; error -> reply and close
 *                       -> request_serve()    payload complete: authorize,
 *                                             handler, queue the response
 *     -> client_write()                       nonblocking; done -> next request
 *     -> expire()                             past its deadline -> dropped
 * ctl_server_stop() -> eventfd wakes poll -> join -> close -> unlink
 *
 * One thread, every fd nonblocking: a client can only ever cost the thread a
 * bounded read or write, never a wait. Each connection has one deadline
 * (CTL_IO_DEADLINE_MS): set when it connects, reset when a response has been
 * written, and it covers both reading the next request and writing its
 * response, so an idle, slow or stalled peer is dropped rather than kept.
 */
#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "control/ctl_server.h"

#define CTL_MAX_CLIENTS 64
#define CTL_IO_DEADLINE_MS 2000
#define CTL_MAX_PEER_GROUPS 64
#define CTL_MAX_PASS_FDS 65       /* segment memfd + one eventfd per queue pair */

enum client_state {
	CL_FREE,    /* slot unused */
	CL_HEADER,  /* reading the 16-byte header */
	CL_PAYLOAD, /* reading hdr.len payload bytes */
	CL_WRITE,   /* writing out[out_off..out_len) */
};

struct client {
	enum client_state state;
	int fd;
	bool operator_ok;         /* SO_PEERCRED passed ctl_peer_is_operator() */
	bool close_after;         /* protocol error: close once the reply is out */
	uint64_t deadline_ms;     /* CLOCK_MONOTONIC; dropped when passed */
	struct mst_ctl_hdr hdr;   /* request header, host order once complete */
	uint8_t hdr_raw[sizeof(struct mst_ctl_hdr)];
	size_t got;               /* bytes of header or payload read so far */
	char *payload;            /* hdr.len + 1 bytes, NUL terminated */
	char *out;                /* response: header + payload, wire order */
	size_t out_len, out_off;
	unsigned idx;             /* slot number, the app's client id */
	struct ctl_server *srv;
	bool attaching;           /* attach response queued: attached once it is out */
	bool attached;            /* an app's lifeline: no deadline, no more requests */
	unsigned n_pass;          /* descriptors to send with the response */
	int pass[CTL_MAX_PASS_FDS];
};

struct ctl_server {
	int listen_fd;
	int wake_fd;              /* eventfd: ctl_server_stop() -> poll() */
	pthread_t thread;
	ctl_handler_fn fn;
	void *ctx;
	struct ctl_app_hooks apps;    /* attach/detach NULL: apps refused */
	uid_t daemon_uid;
	gid_t sock_gid;           /* group of the socket file */
	dev_t sock_dev;           /* identity of our socket file, so that stop */
	ino_t sock_ino;           /*   never unlinks a successor's socket */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct client *serving;   /* the client whose request the handler answers */
	bool handed_over;         /* live upgrade: another daemon serves our fds now */
	uint64_t ctr[CTL_CTR__COUNT]; /* written by the thread, read by anyone (relaxed) */
	struct client clients[CTL_MAX_CLIENTS];
};

const char *const ctl_counter_names[CTL_CTR__COUNT] = {
#define CTL_X_NAME(name, help) #name,
	CTL_FOREACH_CTR(CTL_X_NAME)
#undef CTL_X_NAME
};

static void count(struct ctl_server *s, enum ctl_counter c)
{
	__atomic_fetch_add(&s->ctr[c], 1, __ATOMIC_RELAXED);
}

void ctl_server_counters(const struct ctl_server *s, uint64_t out[CTL_CTR__COUNT])
{
	for (unsigned i = 0; i < CTL_CTR__COUNT; i++)
		out[i] = __atomic_load_n(&s->ctr[i], __ATOMIC_RELAXED);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void __attribute__((format(printf, 3, 4)))
set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

bool ctl_peer_is_operator(uid_t uid, gid_t gid, uid_t daemon_uid, gid_t sock_gid)
{
	return uid == 0 || uid == daemon_uid || gid == sock_gid;
}

/* ---- per-client I/O ---------------------------------------------------- */

static void client_reply(struct client *cl, uint16_t type, int32_t status, const char *payload,
			 size_t len);

static void close_pass_fds(struct client *cl)
{
	for (unsigned i = 0; i < cl->n_pass; i++)
		close(cl->pass[i]);
	cl->n_pass = 0;
}

static void client_close(struct client *cl)
{
	struct ctl_server *s = cl->srv;
	unsigned idx = cl->idx;
	bool was_app = cl->attached || cl->attaching;

	if (cl->state == CL_FREE)
		return;
	close(cl->fd);
	close_pass_fds(cl);
	free(cl->payload);
	free(cl->out);
	memset(cl, 0, sizeof(*cl));
	cl->fd = -1;
	cl->state = CL_FREE;
	cl->srv = s;
	cl->idx = idx;
	/* The app's lifeline is gone: reclaim everything it had (unless a
	 * new daemon holds it now: then only our descriptor went). */
	if (was_app && s && s->apps.detach && !s->handed_over)
		s->apps.detach(s->ctx, idx);
}

static unsigned apps_attached(const struct ctl_server *s)
{
	unsigned n = 0;

	for (unsigned i = 0; i < CTL_MAX_CLIENTS; i++)
		n += s->clients[i].attached || s->clients[i].attaching;
	return n;
}

/* An app asks to attach: the hook makes its segment; the descriptors go
 * out with the response (client_write). */
static void serve_attach(struct ctl_server *s, struct client *cl, uint16_t type)
{
	char msg[256] = "";
	struct ucred cred = { 0 };
	socklen_t clen = sizeof(cred);
	unsigned n = 0;
	int rc;

	if (!s->apps.attach) {
		static const char no[] = "this daemon does not accept apps";

		cl->close_after = true;
		client_reply(cl, type, -EOPNOTSUPP, no, sizeof(no) - 1);
		return;
	}
	if (apps_attached(s) >= CTL_MAX_CLIENTS - CTL_SERVER_OPERATOR_SLOTS) {
		count(s, CTL_CTR_ctl_apps_full);
		snprintf(msg, sizeof(msg), "too many applications attached (%u): the other %u "
			 "connections are kept for operators", CTL_MAX_CLIENTS - CTL_SERVER_OPERATOR_SLOTS,
			 CTL_SERVER_OPERATOR_SLOTS);
		cl->close_after = true;
		client_reply(cl, type, -EMFILE, msg, strlen(msg));
		return;
	}
	(void)getsockopt(cl->fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen);
	rc = s->apps.attach(s->ctx, cl->idx, cred.pid, cred.uid, cl->pass, CTL_MAX_PASS_FDS, &n,
			    msg, sizeof(msg));
	if (rc < 0 || n > CTL_MAX_PASS_FDS) {
		cl->close_after = true;
		client_reply(cl, type, rc < 0 ? rc : -EIO, msg, strlen(msg));
		return;
	}
	cl->n_pass = n;
	cl->attaching = true;
	client_reply(cl, type, 0, msg, strlen(msg));
}

/* Queue a response (header in wire order, then payload) and switch to
 * writing. On allocation failure the client is simply dropped. */
static void client_reply(struct client *cl, uint16_t type, int32_t status, const char *payload,
			 size_t len)
{
	struct mst_ctl_hdr h = {
		.magic = htole32(MST_CTL_MAGIC),
		.version = htole16(MST_CTL_VERSION),
		.type = htole16(type),
		.status = (int32_t)htole32((uint32_t)status),
		.len = htole32((uint32_t)len),
	};

	free(cl->out);
	cl->out = malloc(sizeof(h) + len);
	if (cl->out == NULL) {
		client_close(cl);
		return;
	}
	memcpy(cl->out, &h, sizeof(h));
	if (len > 0)
		memcpy(cl->out + sizeof(h), payload, len);
	cl->out_len = sizeof(h) + len;
	cl->out_off = 0;
	cl->state = CL_WRITE;
	/* The writing deadline starts now: a handler may have taken long
	 * (an upgrade). An app's lifeline keeps no deadline. */
	if (cl->deadline_ms != UINT64_MAX)
		cl->deadline_ms = now_ms() + CTL_IO_DEADLINE_MS;
}

static bool req_type_known(uint16_t type)
{
	if (type & ~(MST_CTL_TYPE_MASK | MST_CTL_F_JSON))
		return false;
	switch (type & MST_CTL_TYPE_MASK) {
#define MST_X_CASE(name, val, help) case val:
		MST_FOREACH_CTL_REQ(MST_X_CASE)
#undef MST_X_CASE
		return true;
	default:
		return false;
	}
}

/* A complete header: accept it or answer with the reason and hang up. */
static void request_check(struct client *cl)
{
	struct mst_ctl_hdr *h = &cl->hdr;
	int32_t status = 0;
	const char *why = NULL;

	memcpy(h, cl->hdr_raw, sizeof(*h));
	h->magic = le32toh(h->magic);
	h->version = le16toh(h->version);
	h->type = le16toh(h->type);
	h->status = (int32_t)le32toh((uint32_t)h->status);
	h->len = le32toh(h->len);

	if (h->magic != MST_CTL_MAGIC) {
		status = -EPROTO;
		why = "bad magic";
	} else if (h->version != MST_CTL_VERSION) {
		status = -EPROTONOSUPPORT;
		why = "unsupported protocol version";
	} else if (h->len > MST_CTL_MAX_PAYLOAD) {
		status = -EMSGSIZE;
		why = "request payload too large";
	} else if (!req_type_known(h->type)) {
		status = -EOPNOTSUPP;
		why = "unknown request type";
	} else if (!cl->operator_ok) {
		/* Before any payload is allocated or read: a peer that may
		 * not ask anything costs no memory (up to 1 MiB otherwise). */
		count(cl->srv, CTL_CTR_ctl_not_operator);
		status = -EACCES;
		why = "permission denied: operators are root, the daemon's user or members of "
		      "the control socket's group";
	}
	if (status != 0) {
		cl->close_after = true;
		client_reply(cl, h->type, status, why, strlen(why));
		return;
	}
	cl->payload = malloc((size_t)h->len + 1);
	if (cl->payload == NULL) {
		client_close(cl);
		return;
	}
	cl->payload[h->len] = '\0';
	cl->got = 0;
	cl->state = CL_PAYLOAD;
}

/* A complete request: authorize, run the handler, queue its answer. */
static void request_serve(struct ctl_server *s, struct client *cl)
{
	uint16_t type = cl->hdr.type;
	const char *out;
	struct emit e;
	size_t len = 0;
	int rc;

	if (!cl->operator_ok) { /* refused at the header (request_check): a guard */
		client_close(cl);
		return;
	}
	if (memchr(cl->payload, '\0', cl->hdr.len) != NULL) {
		static const char msg[] = "request argument contains a NUL byte";

		cl->close_after = true;
		client_reply(cl, type, -EINVAL, msg, sizeof(msg) - 1);
		return;
	}

	if ((type & MST_CTL_TYPE_MASK) == MST_CTL_attach) {
		serve_attach(s, cl, type);
		free(cl->payload);
		cl->payload = NULL;
		return;
	}
	emit_init(&e, (type & MST_CTL_F_JSON) != 0);
	s->serving = cl;
	rc = s->fn(s->ctx, (enum mst_ctl_req)(type & MST_CTL_TYPE_MASK), cl->payload, &e);
	s->serving = NULL;
	out = emit_result(&e, &len);
	if (out == NULL) {
		static const char msg[] = "out of memory building the response";

		client_reply(cl, type, -ENOMEM, msg, sizeof(msg) - 1);
	} else if (len > MST_CTL_MAX_PAYLOAD) {
		static const char msg[] = "response too large";

		client_reply(cl, type, -EMSGSIZE, msg, sizeof(msg) - 1);
	} else {
		client_reply(cl, type, rc > 0 ? 0 : rc, out, len);
	}
	emit_free(&e);
	free(cl->payload);
	cl->payload = NULL;
}

static void client_read(struct ctl_server *s, struct client *cl)
{
	if (cl->attached) {
		/* Nothing may follow an attach: EOF (the app is gone) or any
		 * byte ends the attachment. */
		client_close(cl);
		return;
	}
	for (;;) {
		uint8_t *dst;
		size_t want;
		ssize_t n;

		if (cl->state == CL_HEADER) {
			dst = cl->hdr_raw + cl->got;
			want = sizeof(cl->hdr_raw) - cl->got;
		} else if (cl->state == CL_PAYLOAD) {
			dst = (uint8_t *)cl->payload + cl->got;
			want = cl->hdr.len - cl->got;
		} else {
			return;
		}
		if (want > 0) {
			n = recv(cl->fd, dst, want, MSG_DONTWAIT);
			if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
				client_close(cl); /* peer gone, maybe mid-request */
				return;
			}
			if (n < 0)
				return; /* EAGAIN: wait for more */
			cl->got += (size_t)n;
			if ((size_t)n < want)
				continue;
		}
		cl->got = 0;
		if (cl->state == CL_HEADER)
			request_check(cl);
		else
			request_serve(s, cl);
		/* Now CL_PAYLOAD (loop to read it), CL_WRITE or CL_FREE. */
	}
}

static void client_write(struct client *cl)
{
	while (cl->out_off < cl->out_len) {
		ssize_t n;

		if (cl->n_pass) {
			/* The descriptors ride with the first bytes of the response. */
			char cbuf[CMSG_SPACE(sizeof(int) * CTL_MAX_PASS_FDS)];
			struct iovec iov = { .iov_base = cl->out + cl->out_off,
					     .iov_len = cl->out_len - cl->out_off };
			struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
					     .msg_controllen = CMSG_SPACE(sizeof(int) * cl->n_pass) };
			struct cmsghdr *cm;

			memset(cbuf, 0, sizeof(cbuf));
			cm = CMSG_FIRSTHDR(&mh);
			cm->cmsg_level = SOL_SOCKET;
			cm->cmsg_type = SCM_RIGHTS;
			cm->cmsg_len = CMSG_LEN(sizeof(int) * cl->n_pass);
			memcpy(CMSG_DATA(cm), cl->pass, sizeof(int) * cl->n_pass);
			n = sendmsg(cl->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
			if (n > 0)
				close_pass_fds(cl); /* the peer has its copies */
		} else {
			n = send(cl->fd, cl->out + cl->out_off, cl->out_len - cl->out_off,
				 MSG_DONTWAIT | MSG_NOSIGNAL);
		}

		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return; /* poll for POLLOUT, within the deadline */
			client_close(cl);
			return;
		}
		cl->out_off += (size_t)n;
	}
	if (cl->close_after) {
		client_close(cl);
		return;
	}
	free(cl->out);
	cl->out = NULL;
	cl->out_len = cl->out_off = 0;
	cl->got = 0;
	cl->state = CL_HEADER;
	cl->deadline_ms = now_ms() + CTL_IO_DEADLINE_MS;
	if (cl->attaching) {
		cl->attaching = false;
		cl->attached = true;
		cl->deadline_ms = UINT64_MAX; /* lives as long as the app */
	}
}

/* Root, the daemon's user, or the socket's group as primary or
 * supplementary group (SO_PEERGROUPS, Linux 4.13+). */
static bool peer_authorized(const struct ctl_server *s, int fd)
{
	gid_t groups[CTL_MAX_PEER_GROUPS];
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || len != sizeof(cred))
		return false;
	if (ctl_peer_is_operator(cred.uid, cred.gid, s->daemon_uid, s->sock_gid))
		return true;
	len = sizeof(groups);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0)
		return false;
	for (size_t i = 0; i < len / sizeof(gid_t); i++)
		if (ctl_peer_is_operator(cred.uid, groups[i], s->daemon_uid, s->sock_gid))
			return true;
	return false;
}

static void client_accept(struct ctl_server *s)
{
	for (;;) {
		struct client *cl = NULL;
		int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
			return; /* EAGAIN, or a transient error: poll again */
		for (unsigned i = 0; i < CTL_MAX_CLIENTS; i++) {
			if (s->clients[i].state == CL_FREE) {
				cl = &s->clients[i];
				break;
			}
		}
		if (cl == NULL) {
			/* Full: tell the peer why rather than leave it in the backlog.
			 * A 16-byte write to a fresh socket cannot block. */
			struct mst_ctl_hdr h = {
				.magic = htole32(MST_CTL_MAGIC),
				.version = htole16(MST_CTL_VERSION),
				.status = (int32_t)htole32((uint32_t)-EBUSY),
			};

			count(s, CTL_CTR_ctl_clients_full);
			(void)!send(fd, &h, sizeof(h), MSG_DONTWAIT | MSG_NOSIGNAL);
			close(fd);
			continue;
		}
		{
			unsigned idx = (unsigned)(cl - s->clients);

			memset(cl, 0, sizeof(*cl));
			cl->idx = idx;
			cl->srv = s;
		}
		cl->fd = fd;
		cl->state = CL_HEADER;
		cl->operator_ok = peer_authorized(s, fd);
		cl->deadline_ms = now_ms() + CTL_IO_DEADLINE_MS;
	}
}

/* ---- the thread ------------------------------------------------------- */

/* After a handover: the clients the new daemon took are closed here (our
 * copies only; no detach), and true while a reply is still going out. */
static bool handover_reply_pending(struct ctl_server *s)
{
	bool pending = false;

	for (unsigned i = 0; i < CTL_MAX_CLIENTS; i++) {
		struct client *cl = &s->clients[i];

		if (cl->state == CL_WRITE)
			pending = true;
		else if (cl->state != CL_FREE)
			client_close(cl);
	}
	return pending;
}

static void *server_main(void *arg)
{
	struct ctl_server *s = arg;
	struct pollfd pfd[2 + CTL_MAX_CLIENTS];
	struct client *owner[2 + CTL_MAX_CLIENTS];

	for (;;) {
		uint64_t now = now_ms(), next = UINT64_MAX;
		unsigned n = 0;
		int timeout, rc;

		pfd[n++] = (struct pollfd){ .fd = s->wake_fd, .events = POLLIN };
		pfd[n++] = (struct pollfd){ .fd = s->handed_over ? -1 : s->listen_fd, .events = POLLIN };
		for (unsigned i = 0; i < CTL_MAX_CLIENTS; i++) {
			struct client *cl = &s->clients[i];

			if (cl->state == CL_FREE)
				continue;
			if (now >= cl->deadline_ms) {
				client_close(cl); /* idle, slow or stalled: drop */
				continue;
			}
			if (cl->deadline_ms < next)
				next = cl->deadline_ms;
			owner[n] = cl;
			pfd[n++] = (struct pollfd){
				.fd = cl->fd,
				.events = cl->state == CL_WRITE ? POLLOUT : POLLIN,
			};
		}
		timeout = next == UINT64_MAX ? -1 : (int)(next - now);

		rc = poll(pfd, n, timeout);
		if (rc < 0 && errno != EINTR)
			break; /* cannot happen with valid fds; do not spin */
		if (rc <= 0)
			continue;
		if (pfd[0].revents)
			break; /* ctl_server_stop() */
		for (unsigned i = 2; i < n; i++) {
			struct client *cl = owner[i];

			if (pfd[i].revents == 0)
				continue;
			if (cl->state == CL_WRITE)
				client_write(cl);
			else
				client_read(s, cl);
			/* A reply queued by the read: try it now, the socket
			 * buffer is almost always free. */
			if (cl->state == CL_WRITE)
				client_write(cl);
		}
		if (s->handed_over) {
			/* Only the upgrade's requester is still ours: finish its
			 * answer (bounded by its deadline), touch nothing else. */
			if (handover_reply_pending(s))
				continue;
			break;
		}
		if (pfd[1].revents)
			client_accept(s);
	}
	for (unsigned i = 0; i < CTL_MAX_CLIENTS; i++)
		client_close(&s->clients[i]);
	return NULL;
}

/* ---- start and stop ---------------------------------------------------- */

/* mkdir -p of the directory part of `path` (mode 0755 for what it creates). */
static int mkdir_parents(const char *path)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash == NULL || slash == dir)
		return 0;
	*slash = '\0';
	for (char *p = dir + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* Is a daemon answering on `addr`? 1 yes, 0 no (nothing there, or a stale
 * socket file that was removed), <0 with err set. */
static int probe_existing(const struct sockaddr_un *addr, char *err, size_t errlen)
{
	struct stat st;
	int fd, rc;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		set_err(err, errlen, "socket: %s", strerror(errno));
		return rc;
	}
	rc = connect(fd, (const struct sockaddr *)addr, sizeof(*addr));
	rc = rc == 0 ? 0 : errno;
	close(fd);
	if (rc == 0 || rc == EAGAIN) /* EAGAIN: its backlog is full, it is alive */
		return 1;
	if (rc == ENOENT)
		return 0;
	if (rc != ECONNREFUSED) {
		set_err(err, errlen, "cannot probe %s: %s", addr->sun_path, strerror(rc));
		return -rc;
	}
	/* Refused: a socket nobody listens on (a daemon that died), or not a
	 * socket at all, which is not ours to delete. */
	if (lstat(addr->sun_path, &st) < 0)
		return 0;
	if (!S_ISSOCK(st.st_mode)) {
		set_err(err, errlen, "%s exists and is not a socket", addr->sun_path);
		return -EEXIST;
	}
	if (unlink(addr->sun_path) < 0 && errno != ENOENT) {
		rc = -errno;
		set_err(err, errlen, "cannot remove stale socket %s: %s", addr->sun_path,
			strerror(errno));
		return rc;
	}
	return 0;
}

static int socket_open(struct ctl_server *s, char *err, size_t errlen)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, rc;

	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", s->path);
	rc = mkdir_parents(s->path);
	if (rc < 0) {
		set_err(err, errlen, "cannot create the directory of %s: %s", s->path,
			strerror(-rc));
		return rc;
	}
	rc = probe_existing(&addr, err, errlen);
	if (rc > 0) {
		set_err(err, errlen, "another mustangd is running at %s", s->path);
		return -EADDRINUSE;
	}
	if (rc < 0)
		return rc;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		set_err(err, errlen, "socket: %s", strerror(errno));
		return rc;
	}
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		rc = -errno;
		set_err(err, errlen, "cannot bind %s: %s", s->path, strerror(errno));
		goto out_close;
	}
	if (chmod(s->path, 0660) < 0 || stat(s->path, &st) < 0) {
		rc = -errno;
		set_err(err, errlen, "cannot set up %s: %s", s->path, strerror(errno));
		goto out_unlink;
	}
	if (listen(fd, CTL_MAX_CLIENTS) < 0) {
		rc = -errno;
		set_err(err, errlen, "cannot listen on %s: %s", s->path, strerror(errno));
		goto out_unlink;
	}
	s->sock_gid = st.st_gid;
	s->sock_dev = st.st_dev;
	s->sock_ino = st.st_ino;
	s->listen_fd = fd;
	return 0;

out_unlink:
	unlink(s->path);
out_close:
	close(fd);
	return rc;
}

/* Remove the socket file only if it is still the one we bound. */
static void socket_unlink(const struct ctl_server *s)
{
	struct stat st;

	if (lstat(s->path, &st) == 0 && st.st_dev == s->sock_dev && st.st_ino == s->sock_ino)
		unlink(s->path);
}

/* A server with every client slot free (no socket, no thread yet). */
static struct ctl_server *server_new(const char *path, ctl_handler_fn fn, void *ctx,
				     const struct ctl_app_hooks *apps, char *err, size_t errlen)
{
	struct ctl_server *s = calloc(1, sizeof(*s));

	if (s == NULL) {
		set_err(err, errlen, "out of memory");
		errno = ENOMEM;
		return NULL;
	}
	snprintf(s->path, sizeof(s->path), "%s", path);
	s->fn = fn;
	s->ctx = ctx;
	if (apps)
		s->apps = *apps;
	s->daemon_uid = geteuid();
	for (unsigned i = 0; i < CTL_MAX_CLIENTS; i++) {
		s->clients[i].fd = -1;
		s->clients[i].idx = i;
		s->clients[i].srv = s;
	}
	return s;
}

struct ctl_server *ctl_server_start(const char *path, ctl_handler_fn fn, void *ctx, char *err,
				    size_t errlen)
{
	return ctl_server_start_apps(path, fn, ctx, NULL, err, errlen);
}

struct ctl_server *ctl_server_start_apps(const char *path, ctl_handler_fn fn, void *ctx,
					 const struct ctl_app_hooks *apps, char *err,
					 size_t errlen)
{
	struct ctl_server *s;
	sigset_t all, old;
	int rc;

	if (path == NULL || path[0] == '\0' || fn == NULL) {
		set_err(err, errlen, "control socket: no path or handler");
		errno = EINVAL;
		return NULL;
	}
	if (strlen(path) >= sizeof(s->path)) {
		set_err(err, errlen, "control socket path longer than %zu bytes: %s",
			sizeof(s->path) - 1, path);
		errno = ENAMETOOLONG;
		return NULL;
	}
	s = server_new(path, fn, ctx, apps, err, errlen);
	if (s == NULL)
		return NULL;

	rc = socket_open(s, err, errlen);
	if (rc < 0)
		goto out_free;
	s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->wake_fd < 0) {
		rc = -errno;
		set_err(err, errlen, "eventfd: %s", strerror(errno));
		goto out_socket;
	}
	/* Signals belong to the daemon's main thread, not to this one. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = -pthread_create(&s->thread, NULL, server_main, s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc < 0) {
		set_err(err, errlen, "cannot start the control thread: %s", strerror(-rc));
		goto out_wake;
	}
	return s;

out_wake:
	close(s->wake_fd);
out_socket:
	close(s->listen_fd);
	socket_unlink(s);
out_free:
	free(s);
	errno = -rc;
	return NULL;
}

void ctl_server_stop(struct ctl_server *s)
{
	uint64_t one = 1;

	if (s == NULL)
		return;
	/* After a handover the thread stops by itself once the upgrade's
	 * answer is out (bounded by the client's deadline). */
	if (!s->handed_over)
		(void)!write(s->wake_fd, &one, sizeof(one));
	pthread_join(s->thread, NULL);
	close(s->wake_fd);
	close(s->listen_fd);
	if (!s->handed_over)
		socket_unlink(s); /* after a handover the file is the new daemon's */
	free(s);
}

/* ---- live upgrade ---------------------------------------------------------- */

int ctl_server_serving_fd(const struct ctl_server *s)
{
	return s->serving ? s->serving->fd : -1;
}

int ctl_server_listen_fd(const struct ctl_server *s)
{
	return s->listen_fd;
}

unsigned ctl_server_handover_list(const struct ctl_server *s, struct ctl_handover_client *out,
				  unsigned max)
{
	unsigned n = 0;

	for (unsigned i = 0; i < CTL_MAX_CLIENTS && n < max; i++) {
		const struct client *cl = &s->clients[i];

		/* Idle between requests, or an app's lifeline: a client in
		 * the middle of a request stays here (and sees EOF when we
		 * exit); the one being answered is ours to answer. */
		if (cl == s->serving || cl->state != CL_HEADER || cl->got != 0 || cl->attaching)
			continue;
		out[n++] = (struct ctl_handover_client){ .idx = cl->idx, .fd = cl->fd,
							 .app = cl->attached,
							 .operator_ok = cl->operator_ok };
	}
	return n;
}

void ctl_server_handed_over(struct ctl_server *s)
{
	s->handed_over = true;
}

struct ctl_server *ctl_server_adopt(const char *path, ctl_handler_fn fn, void *ctx,
				   const struct ctl_app_hooks *apps, int listen_fd,
				   const struct ctl_handover_client *cls, unsigned n, char *err,
				   size_t errlen)
{
	struct ctl_server *s;
	struct stat st;
	sigset_t all, old;
	int rc;

	if (!path || strlen(path) >= sizeof(s->path) || !fn || listen_fd < 0 ||
	    stat(path, &st) < 0 || !S_ISSOCK(st.st_mode)) {
		set_err(err, errlen, "control socket %s: cannot adopt it", path ? path : "?");
		errno = EINVAL;
		return NULL;
	}
	s = server_new(path, fn, ctx, apps, err, errlen);
	if (!s)
		return NULL;
	s->sock_gid = st.st_gid;
	s->sock_dev = st.st_dev;
	s->sock_ino = st.st_ino;
	s->listen_fd = listen_fd;
	for (unsigned i = 0; i < n; i++) {
		struct client *cl;

		if (cls[i].idx >= CTL_MAX_CLIENTS || s->clients[cls[i].idx].state != CL_FREE) {
			set_err(err, errlen, "handed-over client %u: bad or duplicate slot", cls[i].idx);
			free(s);
			errno = EINVAL;
			return NULL;
		}
		cl = &s->clients[cls[i].idx];
		cl->fd = cls[i].fd;
		cl->state = CL_HEADER;
		cl->operator_ok = cls[i].operator_ok;
		cl->attached = cls[i].app;
		cl->deadline_ms = cls[i].app ? UINT64_MAX : now_ms() + CTL_IO_DEADLINE_MS;
	}
	s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->wake_fd < 0) {
		set_err(err, errlen, "eventfd: %s", strerror(errno));
		free(s);
		return NULL;
	}
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = -pthread_create(&s->thread, NULL, server_main, s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc < 0) {
		set_err(err, errlen, "cannot start the control thread: %s", strerror(-rc));
		close(s->wake_fd);
		free(s);
		errno = -rc;
		return NULL;
	}
	return s;
}
