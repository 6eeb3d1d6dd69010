/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Live upgrade between two processes (DESIGN §5, docs/upgrade.md): a new
 * mustangd takes over from the running one.
 *
 * The old daemon (tko_upgrade(), inside the `upgrade` control request, on
 * the control thread) starts the new binary with one end of a
 * stream socketpair (--takeover-fd), then:
 *
 *   old                                   new (tko_adopt(), from main())
 *   spawn ------------------------------> EAL init
 *         <------------------------------ HELLO                 [hello]
 *   CONF (listen fd, doorbells) --------> APP x n (memfd, eventfds),
 *   CLIENT x n (connections) -----------> maps the segments, creates its
 *                                         engines (conf.importing) and
 *                                         attaches the apps        [handover]
 *         <------------------------------ READY                [brownout]
 *   blackout: each engine exports and
 *   freezes; STATE (memfds) ------------>                          [export]
 *                                         imports
 *         <------------------------------ IMPORTED               [import]
 *   engines stop, port closed
 *   PORT_FREE ------------------------->  opens the port, queues, engine
 *                                         threads (same doorbells), control
 *                                         server (same sockets)    [port]
 *         <------------------------------ DONE                    [start]
 *   answers the operator, exits 0
 *
 * Every wait has a deadline (the request's timeout). Rollback: before
 * PORT_FREE the old engines resume (their state never left them) and the
 * new daemon is told to go (ABORT) or killed; after it, the old daemon
 * waits for the new one to exit (its port closed), reopens the port and
 * resumes. Either way the operator gets one line naming the step.
 * MUSTANG_UPGRADE_FAIL_AT=STEP (tests only) makes the new daemon fail at
 * hello, handover, brownout, import, port or start.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "control/daemon.h"
#include "control/emit.h"
#include "control/takeover.h"
#include "control/upgrade.h"

#define TKO_MAGIC 0x4f4b5454u /* "TTKO" */
#define TKO_MAX_FDS (1 + APPS_QPS)
#define TKO_DEFAULT_TIMEOUT_MS 20000

const char *const tko_step_names[TKO_STEP__COUNT] = {
#define TKO_X_NAME(name, help) #name,
	TKO_FOREACH_STEP(TKO_X_NAME)
#undef TKO_X_NAME
};

enum tko_type {
	TKO_HELLO = 1, TKO_CONF, TKO_APP, TKO_CLIENT, TKO_READY, TKO_STATE, TKO_IMPORTED,
	TKO_PORT_FREE, TKO_DONE, TKO_FAIL, TKO_ABORT,
};

/* One message; the fields a type does not use are 0. */
struct tko_msg {
	uint32_t magic, type;
	int32_t rc;                   /* FAIL: -errno */
	uint32_t step;                /* FAIL: enum tko_step */
	uint32_t n_engines, n_apps, n_clients, n_fds;
	uint8_t mac[6];               /* CONF */
	uint16_t pad;
	uint32_t tx_offloads, rx_offloads;
	uint32_t idx, id, pid, flags; /* APP: client, id, pid; CLIENT: idx, flags */
	uint64_t size;                /* APP: segment bytes */
	uint64_t len[MST_MAX_ENGINES]; /* STATE: bytes per engine */
	uint64_t import_us, open_us, start_us; /* IMPORTED, DONE: the new side's times */
	uint64_t serving_ns;          /* DONE: CLOCK_MONOTONIC when its engines polled */
};
#define TKO_CLIENT_APP 1u
#define TKO_CLIENT_OPERATOR 2u

static uint64_t mono_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

/* Wait until fd is ready for ev, by the deadline (0, -ETIMEDOUT, -errno). */
static int wait_fd(int fd, short ev, uint64_t deadline_ms)
{
	struct pollfd p = { .fd = fd, .events = ev };

	for (;;) {
		uint64_t now = mono_ms();
		int rc;

		if (now >= deadline_ms)
			return -ETIMEDOUT;
		rc = poll(&p, 1, (int)(deadline_ms - now));
		if (rc > 0)
			return 0;
		if (rc < 0 && errno != EINTR)
			return -errno;
	}
}

/* One message and its descriptors. The channel is a stream: a socketpair
 * (mustangctl upgrade) or the connection a `mustangd --takeover` opened.
 * The descriptors ride with the first byte and the rest may take several
 * writes. (Not SOCK_SEQPACKET: port.c's memif_silence() takes every
 * SEQPACKET socket of the process for memif's, and closes them.) */
static int tko_send(int fd, struct tko_msg *m, const int *fds, unsigned n)
{
	char cbuf[CMSG_SPACE(sizeof(int) * TKO_MAX_FDS)] = { 0 };
	uint64_t deadline = mono_ms() + 10000;
	size_t off = 0;

	if (n > TKO_MAX_FDS)
		return -EINVAL;
	m->magic = TKO_MAGIC;
	m->n_fds = n;
	while (off < sizeof(*m)) {
		struct iovec iov = { .iov_base = (char *)m + off, .iov_len = sizeof(*m) - off };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
		ssize_t k;

		if (n && off == 0) {
			struct cmsghdr *c;

			mh.msg_control = cbuf;
			mh.msg_controllen = CMSG_SPACE(sizeof(int) * n);
			c = CMSG_FIRSTHDR(&mh);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int) * n);
			memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
		}
		k = sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (k > 0) {
			off += (size_t)k;
			continue;
		}
		if (k < 0 && errno != EAGAIN && errno != EINTR)
			return -EPIPE;
		if (wait_fd(fd, POLLOUT, deadline))
			return -ETIMEDOUT;
	}
	return 0;
}

/* The next message by the deadline: 0, -ETIMEDOUT, -EPIPE (the peer is
 * gone), -EPROTO (not one of ours, or descriptors missing: those that came
 * are closed). fds gets exactly m->n_fds descriptors. */
static int tko_recv(int fd, struct tko_msg *m, int *fds, uint64_t deadline_ms)
{
	char cbuf[CMSG_SPACE(sizeof(int) * TKO_MAX_FDS)];
	unsigned got = 0;
	bool trunc = false;
	size_t off = 0;

	while (off < sizeof(*m)) {
		struct iovec iov = { .iov_base = (char *)m + off, .iov_len = sizeof(*m) - off };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
				     .msg_controllen = sizeof(cbuf) };
		ssize_t n;
		int rc = wait_fd(fd, POLLIN, deadline_ms);

		if (rc)
			goto fail;
		n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0) {
			rc = -EPIPE;
			goto fail;
		}
		off += (size_t)n;
		trunc |= (mh.msg_flags & MSG_CTRUNC) != 0;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
				unsigned k = (unsigned)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));

				for (unsigned i = 0; i < k; i++) {
					int f;

					memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
					if (got < TKO_MAX_FDS)
						fds[got++] = f;
					else
						close(f);
				}
			}
		continue;
fail:
		for (unsigned i = 0; i < got; i++)
			close(fds[i]);
		return rc;
	}
	if (m->magic != TKO_MAGIC || m->n_fds != got || trunc) {
		for (unsigned i = 0; i < got; i++)
			close(fds[i]);
		return -EPROTO;
	}
	return 0;
}

/* Wait for `type`; a FAIL from the peer is its error (and its step). */
static int tko_expect(int fd, enum tko_type type, struct tko_msg *m, int *fds,
		      uint64_t deadline_ms, enum tko_step *failed)
{
	int rc = tko_recv(fd, m, fds, deadline_ms);

	if (rc)
		return rc;
	if (m->type == TKO_FAIL) {
		if (m->step < TKO_STEP__COUNT)
			*failed = (enum tko_step)m->step;
		return m->rc < 0 ? m->rc : -EIO;
	}
	if (m->type != type) {
		for (unsigned i = 0; i < m->n_fds; i++)
			close(fds[i]);
		return -EPROTO;
	}
	return 0;
}

/* ---- the old daemon ------------------------------------------------------ */

struct upgrade_args {
	const char *binary;
	int timeout_ms;
	const char *fail_at;
	char store[512];
};

/* "binary=PATH timeout=MS fail=STEP", any order, each optional. */
static int parse_upgrade_args(const char *arg, struct upgrade_args *a, struct emit *e)
{
	char *tok, *save = NULL;

	a->binary = NULL;
	a->timeout_ms = TKO_DEFAULT_TIMEOUT_MS;
	a->fail_at = NULL;
	snprintf(a->store, sizeof(a->store), "%s", arg ? arg : "");
	for (tok = strtok_r(a->store, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		if (!strncmp(tok, "binary=", 7) && tok[7]) {
			a->binary = tok + 7;
		} else if (!strncmp(tok, "timeout=", 8)) {
			char *end;
			long v = strtol(tok + 8, &end, 10);

			if (*end || v < 100 || v > 600000) {
				emit_strf(e, "error", "timeout wants 100..600000 ms, not \"%s\"", tok + 8);
				return -EINVAL;
			}
			a->timeout_ms = (int)v;
		} else if (!strncmp(tok, "fail=", 5) && tko_step_by_name(tok + 5) >= 0) {
			a->fail_at = tok + 5;
		} else {
			emit_strf(e, "error", "unexpected upgrade argument \"%s\"", tok);
			return -EINVAL;
		}
	}
	return 0;
}

int tko_step_by_name(const char *s)
{
	for (int i = 0; i < TKO_STEP__COUNT; i++)
		if (!strcmp(s, tko_step_names[i]))
			return i;
	return -1;
}

/* fork + exec binary with our own arguments and --takeover-fd. */
static pid_t spawn(struct daemon *d, const char *binary, int chan, const char *fail_at)
{
	char fdarg[16];
	char **argv = calloc((size_t)d->argc + 3, sizeof(char *));
	pid_t pid;
	int n = 0;

	if (!argv)
		return -1;
	argv[n++] = (char *)binary;
	for (int i = 1; i < d->argc; i++)
		argv[n++] = d->argv[i];
	snprintf(fdarg, sizeof(fdarg), "%d", 3); /* where the child puts chan */
	argv[n++] = (char *)"--takeover-fd";
	argv[n++] = fdarg;
	argv[n] = NULL;
	pid = fork();
	if (pid == 0) {
		sigset_t none;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		/* Only the channel crosses exec: an inherited AF_XDP or packet
		 * socket would keep our port's queues bound after we close
		 * them, and the new daemon could not open them. */
		if (dup2(chan, 3) < 0)
			_exit(127);
		close_range(4, ~0u, 0);
		fcntl(3, F_SETFD, 0);
		if (fail_at)
			setenv("MUSTANG_UPGRADE_FAIL_AT", fail_at, 1);
		else
			unsetenv("MUSTANG_UPGRADE_FAIL_AT");
		execv(binary, argv);
		_exit(127);
	}
	free(argv);
	return pid;
}

static int send_fds(struct daemon *d, int chan)
{
	struct apps_handover apps[APPS_MAX];
	struct ctl_handover_client cls[CTL_SERVER_MAX_CLIENTS];
	struct tko_msg m = { .type = TKO_CONF };
	struct port_info pi;
	int fds[TKO_MAX_FDS];
	unsigned na = d->apps ? apps_handover(d->apps, apps, APPS_MAX) : 0;
	unsigned nc = ctl_server_handover_list(d->ctl, cls, CTL_SERVER_MAX_CLIENTS);
	int rc;

	port_get_info(d->ports[0], &pi);
	m.n_engines = d->n_engines;
	m.n_apps = na;
	m.n_clients = nc;
	memcpy(m.mac, pi.mac, 6);
	m.tx_offloads = pi.tx_offloads;
	m.rx_offloads = pi.rx_offloads;
	fds[0] = ctl_server_listen_fd(d->ctl);
	for (unsigned i = 0; i < d->n_engines; i++)
		fds[1 + i] = rt_engine_doorbell(&d->group, i);
	rc = tko_send(chan, &m, fds, 1 + d->n_engines);
	for (unsigned i = 0; !rc && i < na; i++) {
		m = (struct tko_msg){ .type = TKO_APP, .idx = apps[i].client, .id = (uint32_t)apps[i].id,
				      .pid = (uint32_t)apps[i].pid, .size = apps[i].size };
		fds[0] = apps[i].memfd;
		memcpy(fds + 1, apps[i].efd, sizeof(apps[i].efd));
		rc = tko_send(chan, &m, fds, 1 + APPS_QPS);
	}
	for (unsigned i = 0; !rc && i < nc; i++) {
		m = (struct tko_msg){ .type = TKO_CLIENT, .idx = cls[i].idx,
				      .flags = (cls[i].app ? TKO_CLIENT_APP : 0) |
					       (cls[i].operator_ok ? TKO_CLIENT_OPERATOR : 0) };
		rc = tko_send(chan, &m, &cls[i].fd, 1);
	}
	return rc;
}

/* Each engine exports (and freezes) into a memfd; *n_frozen says how many
 * did, for the rollback. */
static int export_all(struct daemon *d, int *memfds, struct tko_msg *m, unsigned *n_frozen)
{
	for (unsigned i = 0; i < d->n_engines; i++) {
		uint8_t *buf;
		long len = upg_engine_export(&d->group, i, d->ops, &buf);
		int fd;

		if (len < 0)
			return (int)len;
		(*n_frozen)++;
		fd = memfd_create("mustang-state", MFD_CLOEXEC);
		if (fd < 0 || write(fd, buf, (size_t)len) != len) {
			int rc = fd < 0 ? -errno : -EIO;

			if (fd >= 0)
				close(fd);
			free(buf);
			return rc;
		}
		free(buf);
		memfds[i] = fd;
		m->len[i] = (uint64_t)len;
	}
	return 0;
}

/* The port is ours again (rollback after PORT_FREE), with the MAC the
 * engines have (memif's device is made anew). */
static int reopen_port(struct daemon *d)
{
	char err[256];
	struct mst_port *p;
	int rc = 0;

	rc = port_reprobe(&d->conf, 0);
	if (rc)
		daemon_log(MST_LOG_WARN, "rollback: cannot re-create the port's device: %s",
			   strerror(-rc));
	p = port_prepare(&d->conf, 0, d->conf.engines, d->econf[0].mac, err, sizeof(err));
	d->ports[0] = p ? port_start(p, &d->conf, err, sizeof(err)) : NULL;
	if (d->ports[0] && err[0])
		daemon_log(MST_LOG_WARN, "rollback: %s", err); /* memif client: not started yet */
	if (!d->ports[0]) {
		daemon_log(MST_LOG_ERR, "rollback: cannot reopen the port: %s", err);
		return -EIO;
	}
	/* The engines are frozen and their threads still run: attach_queue
	 * here races with nothing (a frozen poll does not read the queue),
	 * and resume() below happens on the engine threads. */
	for (unsigned i = 0; i < d->n_engines && !rc; i++) {
		d->equeue[i] = port_queue(d->ports[0], i);
		d->group.engines[i].queue = d->equeue[i];
		rc = d->ops->attach_queue(d->engines[i], d->equeue[i]);
	}
	return rc;
}

struct upgrade_run {
	struct daemon *d;
	int chan;
	pid_t child;
	uint64_t deadline;
	enum tko_step step;
	unsigned n_frozen;
	bool port_freed;
	bool own_child;                /* we started it (waitpid), or it came to us */
	uint64_t t_spawn, t_ready, t_black, t_done;
	uint64_t export_us, import_us, close_us, open_us, start_us;
	uint64_t state_bytes;
	uint64_t drain_wait_ms;        /* waited for exited apps' connections */
	unsigned n_apps;
};

static bool successor_gone(struct upgrade_run *u)
{
	int status;

	if (u->own_child)
		return waitpid(u->child, &status, WNOHANG) != 0;
	return kill(u->child, 0) < 0 && errno == ESRCH;
}

static void rollback(struct upgrade_run *u, int rc)
{
	struct daemon *d = u->d;
	struct tko_msg m = { .type = TKO_ABORT };
	int status;

	(void)tko_send(u->chan, &m, NULL, 0);
	/* The new daemon must be gone (and its port closed) before ours
	 * reopens: a clean exit after ABORT, else SIGKILL. */
	for (int i = 0; i < 100 && u->child > 0 && !successor_gone(u); i++)
		usleep(20000);
	if (u->child > 0 && !successor_gone(u)) {
		kill(u->child, SIGKILL);
		if (u->own_child)
			waitpid(u->child, &status, 0);
		else
			for (int i = 0; i < 100 && !successor_gone(u); i++)
				usleep(10000);
	}
	if (u->port_freed && reopen_port(d))
		daemon_log(MST_LOG_ERR, "rollback: the port did not come back");
	for (unsigned i = 0; i < u->n_frozen; i++)
		(void)upg_engine_resume(&d->group, i, d->ops);
	daemon_log(MST_LOG_WARN, "upgrade: %s failed: %s; rolled back", tko_step_names[u->step],
		   strerror(-rc));
}

/* Can two processes have the port open at once? */
static bool shared_port(const struct daemon *d)
{
	return d->conf.ports[0].driver == MST_PORT_AF_PACKET;
}

static int run_upgrade(struct upgrade_run *u)
{
	struct daemon *d = u->d;
	struct tko_msg m;
	int fds[TKO_MAX_FDS], memfds[MST_MAX_ENGINES], rc;

	u->step = TKO_STEP_hello;
	rc = tko_expect(u->chan, TKO_HELLO, &m, fds, u->deadline, &u->step);
	if (rc)
		return rc;
	u->step = TKO_STEP_handover;
	rc = send_fds(d, u->chan);
	if (rc)
		return rc;
	u->step = TKO_STEP_brownout;
	rc = tko_expect(u->chan, TKO_READY, &m, fds, u->deadline, &u->step);
	if (rc)
		return rc;
	u->t_ready = mono_ms();
	u->step = TKO_STEP_export;
	for (unsigned i = 0; i < MST_MAX_ENGINES; i++)
		memfds[i] = -1;
	/* Blackout (from the export that goes through: one refused because
	 * an exited app's connections are finishing froze nothing, and the
	 * old engines serve while we ask again, upgrade.h). */
	for (uint64_t w0 = mono_ms(), waited = 0;; waited |= rc == -EBUSY) {
		u->t_black = rt_now_ns() / 1000;
		m = (struct tko_msg){ .type = TKO_STATE, .n_engines = d->n_engines };
		rc = export_all(d, memfds, &m, &u->n_frozen);
		if (waited || rc == -EBUSY)
			u->drain_wait_ms = mono_ms() - w0;
		if (u->n_frozen || !upg_drain_retry(rc, w0, u->deadline))
			break;
	}
	for (unsigned i = 0; i < d->n_engines; i++)
		u->state_bytes += m.len[i];
	u->export_us = rt_now_ns() / 1000 - u->t_black;
	if (!rc)
		rc = tko_send(u->chan, &m, memfds, d->n_engines);
	for (unsigned i = 0; i < d->n_engines; i++)
		if (memfds[i] >= 0)
			close(memfds[i]);
	if (rc)
		return rc;
	u->step = TKO_STEP_import;
	rc = tko_expect(u->chan, TKO_IMPORTED, &m, fds, u->deadline, &u->step);
	if (rc)
		return rc;
	u->import_us = m.import_us;
	u->step = TKO_STEP_port;
	u->close_us = rt_now_ns() / 1000;
	/* The engine threads go on polling frozen engines, which touch
	 * nothing (no queue, no segment): joining them would only lengthen
	 * the blackout, and a rollback finds them running. */
	for (unsigned i = 0; i < d->n_engines; i++)
		(void)d->ops->detach_queue(d->engines[i], d->equeue[i]);
	if (shared_port(d)) {
		/* Packet sockets coexist: the new daemon opens its own while
		 * ours closes (our frozen engines read nothing meanwhile). */
		m = (struct tko_msg){ .type = TKO_PORT_FREE };
		rc = tko_send(u->chan, &m, NULL, 0);
	}
	port_close(d->ports[0]);
	d->ports[0] = NULL;
	u->port_freed = true;
	u->close_us = rt_now_ns() / 1000 - u->close_us;
	if (!shared_port(d)) {
		/* af_xdp binds a queue, memif owns a socket path: ours first. */
		m = (struct tko_msg){ .type = TKO_PORT_FREE };
		rc = tko_send(u->chan, &m, NULL, 0);
	}
	if (rc)
		return rc;
	rc = tko_expect(u->chan, TKO_DONE, &m, fds, u->deadline, &u->step);
	u->t_done = rt_now_ns() / 1000;
	u->open_us = m.open_us;
	u->start_us = m.start_us;
	/* The blackout ends when the new engines poll (the same clock in
	 * both processes), which may be before our port finished closing. */
	if (!rc && m.serving_ns / 1000 > u->t_black)
		u->t_done = m.serving_ns / 1000;
	return rc;
}

/* What a handover needs before it starts; -errno and the reason in e. */
static int upgrade_possible(struct daemon *d, struct emit *e)
{
	(void)e;
	/* The watchdog restarts ports: not while one changes hands. */
	port_watch_stop(d->watch);
	d->watch = NULL;
	return 0;
}

static int finish(struct upgrade_run *u, int rc, struct emit *e)
{
	struct daemon *d = u->d;

	if (rc) {
		uint64_t t = mono_ms();

		rollback(u, rc);
		if (daemon_watch_start(d))
			daemon_log(MST_LOG_WARN, "upgrade: the port watchdog did not restart");
		close(u->chan);
		emit_bool(e, "ok", false);
		emit_str(e, "failed_step", tko_step_names[u->step]);
		emit_u64(e, "rollback_ms", mono_ms() - t);
		emit_strf(e, "error", "upgrade: %s failed: %s%s (rolled back: the old daemon serves)",
			  tko_step_names[u->step], strerror(-rc),
			  u->step == TKO_STEP_export ? upg_export_hint(rc) : "");
		return rc;
	}
	close(u->chan);
	/* Committed: the new daemon serves our sockets, apps and port. */
	ctl_server_handed_over(d->ctl);
	d->handed_over = true;
	emit_bool(e, "ok", true);
	emit_i64(e, "new_pid", (int64_t)u->child);
	emit_u64(e, "brownout_ms", u->t_ready - u->t_spawn);
	emit_arr_begin(e, "blackout_us");
	for (unsigned i = 0; i < d->n_engines; i++)
		emit_u64(e, NULL, u->t_done - u->t_black); /* one port: all engines together */
	emit_arr_end(e);
	emit_obj_begin(e, "blackout_parts_us");
	emit_u64(e, "export", u->export_us);
	emit_u64(e, "import", u->import_us);
	emit_u64(e, "port_close", u->close_us);
	emit_u64(e, "port_open", u->open_us);
	emit_u64(e, "start", u->start_us);
	emit_obj_end(e);
	emit_u64(e, "total_ms", mono_ms() - u->t_spawn);
	emit_u64(e, "drain_wait_ms", u->drain_wait_ms);
	emit_u64(e, "state_bytes", u->state_bytes);
	emit_u64(e, "apps", d->apps ? apps_count(d->apps) : 0);
	daemon_log(MST_LOG_INFO, "upgrade: pid %d took over (blackout %llu us); exiting",
		   (int)u->child, (unsigned long long)(u->t_done - u->t_black));
	kill(getpid(), SIGTERM); /* main(): exit 0 once the answer is out */
	return 0;
}

int tko_upgrade(struct daemon *d, const char *arg, struct emit *e)
{
	struct upgrade_args a;
	struct upgrade_run u = { .d = d, .chan = -1 };
	int sv[2], rc;

	rc = parse_upgrade_args(arg, &a, e);
	if (rc)
		return rc;
	if (!a.binary)
		a.binary = d->exe; /* where the running binary was: a package upgrade put the new one there */
	if (!a.binary[0]) {
		emit_strf(e, "error", "spawn failed: the running binary's path is unknown (give --binary)");
		return -ENOENT;
	}
	if (access(a.binary, X_OK)) {
		emit_strf(e, "error", "spawn failed: %s: %s", a.binary, strerror(errno));
		return -errno;
	}
	rc = upgrade_possible(d, e);
	if (rc)
		return rc;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) {
		rc = -errno;
		emit_strf(e, "error", "spawn failed: socketpair: %s", strerror(-rc));
		(void)daemon_watch_start(d);
		return rc;
	}
	u.t_spawn = mono_ms();
	u.deadline = u.t_spawn + (uint64_t)a.timeout_ms;
	u.step = TKO_STEP_spawn;
	u.child = spawn(d, a.binary, sv[1], a.fail_at);
	close(sv[1]);
	u.chan = sv[0];
	if (u.child < 0) {
		rc = -errno;
		close(u.chan);
		emit_strf(e, "error", "spawn failed: %s", strerror(-rc));
		(void)daemon_watch_start(d);
		return rc;
	}
	u.own_child = true;
	return finish(&u, run_upgrade(&u), e);
}

/* A `mustangd --takeover CTL_PATH` (started by an init system) asked on
 * its control connection: that connection is the channel. */
int tko_takeover_request(struct daemon *d, struct emit *e)
{
	struct upgrade_run u = { .d = d };
	struct ucred cred = { 0 };
	socklen_t clen = sizeof(cred);
	int fd = ctl_server_serving_fd(d->ctl);

	if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0) {
		emit_strf(e, "error", "takeover: no peer");
		return -EINVAL;
	}
	if (upgrade_possible(d, e))
		return -EOPNOTSUPP;
	u.chan = dup(fd); /* the server closes its own when the answer is out */
	if (u.chan < 0) {
		emit_strf(e, "error", "takeover: %s", strerror(errno));
		return -errno;
	}
	u.child = cred.pid;
	u.t_spawn = mono_ms();
	u.deadline = u.t_spawn + TKO_DEFAULT_TIMEOUT_MS;
	daemon_log(MST_LOG_INFO, "takeover requested by pid %d", (int)cred.pid);
	return finish(&u, run_upgrade(&u), e);
}

/* ---- the new daemon ------------------------------------------------------ */

static enum tko_step fail_step(void)
{
	const char *s = getenv("MUSTANG_UPGRADE_FAIL_AT");
	int i = s ? tko_step_by_name(s) : -1;

	return i < 0 ? TKO_STEP__COUNT : (enum tko_step)i;
}

struct adopt {
	struct daemon *d;
	int chan;
	uint64_t deadline;
	enum tko_step step, fail;
	int listen_fd;
	int doorbell[MST_MAX_ENGINES];
	struct tko_msg conf;
	struct ctl_handover_client cls[CTL_SERVER_MAX_CLIENTS];
	unsigned n_cls;
	struct mst_port *prepared;     /* brownout: device found, mbuf pool made */
	uint64_t t_state;              /* the state arrived */
	uint64_t t_serving;            /* engine threads started */
};

static int adopt_fds(struct adopt *ad)
{
	struct daemon *d = ad->d;
	int fds[TKO_MAX_FDS], rc;
	struct tko_msg m;

	rc = tko_expect(ad->chan, TKO_CONF, &ad->conf, fds, ad->deadline, &ad->step);
	if (rc)
		return rc;
	if (ad->conf.n_engines != d->conf.engines || ad->conf.n_fds != 1 + ad->conf.n_engines ||
	    ad->conf.n_apps > APPS_MAX || ad->conf.n_clients > CTL_SERVER_MAX_CLIENTS)
		return -EINVAL; /* another configuration: not ours to take */
	ad->listen_fd = fds[0];
	for (unsigned i = 0; i < ad->conf.n_engines; i++)
		ad->doorbell[i] = fds[1 + i];
	rc = daemon_apps_create(d);
	for (unsigned i = 0; !rc && i < ad->conf.n_apps; i++) {
		struct apps_handover h;

		rc = tko_expect(ad->chan, TKO_APP, &m, fds, ad->deadline, &ad->step);
		if (rc)
			break;
		if (m.n_fds != 1 + APPS_QPS)
			return -EPROTO;
		h = (struct apps_handover){ .client = m.idx, .id = (int)m.id, .pid = (pid_t)m.pid,
					    .size = m.size, .memfd = fds[0] };
		memcpy(h.efd, fds + 1, sizeof(h.efd));
		rc = apps_adopt(d->apps, &h);
	}
	for (unsigned i = 0; !rc && i < ad->conf.n_clients; i++) {
		rc = tko_expect(ad->chan, TKO_CLIENT, &m, fds, ad->deadline, &ad->step);
		if (!rc && m.n_fds != 1)
			rc = -EPROTO;
		if (!rc)
			ad->cls[ad->n_cls++] = (struct ctl_handover_client){
				.idx = m.idx, .fd = fds[0], .app = m.flags & TKO_CLIENT_APP,
				.operator_ok = m.flags & TKO_CLIENT_OPERATOR };
	}
	return rc;
}

/* Brownout: engines made for importing, the apps attached (no threads
 * yet: the calls are ours to make). */
static int adopt_brownout(struct adopt *ad)
{
	struct daemon *d = ad->d;
	struct mst_app apps[APPS_MAX];
	unsigned na = apps_list(d->apps, apps, APPS_MAX);

	char err[512];

	d->ops = mst_engine_lookup("net");
	if (!d->ops)
		return -ENOENT;
	ad->prepared = port_prepare(&d->conf, 0, d->conf.engines, ad->conf.mac, err, sizeof(err));
	if (!ad->prepared) {
		daemon_log(MST_LOG_ERR, "%s", err);
		return -EIO;
	}
	rt_group_init(&d->group, &d->conf);
	for (unsigned i = 0; i < d->conf.engines; i++) {
		struct mst_engine_conf ec;
		void *eng;

		daemon_engine_conf(d, i, ad->conf.mac, ad->conf.tx_offloads, ad->conf.rx_offloads,
				   &ec);
		d->econf[i] = ec;
		ec.importing = true;
		eng = d->ops->create(&ec);
		if (!eng)
			return -errno;
		d->engines[d->n_engines++] = eng;
		/* Apps are served by engine 0; their doorbell is its. */
		for (unsigned k = 0; i == 0 && k < na; k++) {
			int rc;

			apps[k].doorbell = ad->doorbell[0];
			rc = d->ops->attach_app(eng, &apps[k]);
			if (rc)
				return rc;
		}
	}
	return 0;
}

static int adopt_state(struct adopt *ad)
{
	struct daemon *d = ad->d;
	int fds[TKO_MAX_FDS], rc;
	struct tko_msg m;

	rc = tko_expect(ad->chan, TKO_STATE, &m, fds, ad->deadline, &ad->step);
	if (rc)
		return rc;
	ad->t_state = rt_now_ns();
	if (m.n_fds != d->n_engines)
		rc = -EPROTO;
	for (unsigned i = 0; !rc && i < d->n_engines; i++) {
		struct stat st;
		void *p;

		/* A length beyond the memfd would fault (SIGBUS) when read. */
		if (fstat(fds[i], &st) < 0 || m.len[i] == 0 || m.len[i] > (uint64_t)st.st_size) {
			rc = -EPROTO;
			break;
		}
		p = mmap(NULL, m.len[i], PROT_READ, MAP_PRIVATE, fds[i], 0);
		if (p == MAP_FAILED) {
			rc = -errno;
			break;
		}
		rc = ad->fail == TKO_STEP_import ? -EIO : d->ops->import_state(d->engines[i], p,
									       m.len[i]);
		munmap(p, m.len[i]);
	}
	for (unsigned i = 0; i < m.n_fds; i++)
		close(fds[i]);
	return rc;
}

/* The port, the engine threads (same doorbells), the control server
 * (same sockets). */
static int adopt_port(struct adopt *ad)
{
	struct daemon *d = ad->d;
	struct port_info pi;
	char err[512];
	int rc = 0;

	/* af_xdp: the kernel releases the old daemon's AF_XDP socket (and
	 * with it the queue) a moment after its close; a first attempt that
	 * comes too early costs a whole re-open below. */
	if (d->conf.ports[0].driver == MST_PORT_AF_XDP)
		usleep(5000);
	d->ports[0] = port_start(ad->prepared, &d->conf, err, sizeof(err));
	ad->prepared = NULL;
	for (int i = 0; !d->ports[0] && i < 100 && mono_ms() < ad->deadline; i++) {
		struct mst_port *p;

		usleep(5000);
		(void)port_reprobe(&d->conf, 0); /* a failed start closed the device */
		p = port_prepare(&d->conf, 0, d->conf.engines, ad->conf.mac, err, sizeof(err));
		d->ports[0] = p ? port_start(p, &d->conf, err, sizeof(err)) : NULL;
		if (d->ports[0])
			daemon_log(MST_LOG_INFO, "takeover: port open after %d retries", i + 1);
	}
	if (!d->ports[0]) {
		daemon_log(MST_LOG_ERR, "%s", err);
		return -EIO;
	}
	d->n_ports = 1;
	port_get_info(d->ports[0], &pi);
	if (memcmp(pi.mac, ad->conf.mac, 6))
		return -EADDRNOTAVAIL; /* not the port the state was made on */
	for (unsigned i = 0; i < d->n_engines && !rc; i++) {
		d->equeue[i] = port_queue(d->ports[0], i);
		rc = d->ops->attach_queue(d->engines[i], d->equeue[i]);
		if (!rc)
			rc = rt_group_add_doorbell(&d->group, d->ops, d->engines[i], d->equeue[i],
						   ad->doorbell[i]);
	}
	return rc;
}

static int adopt_start(struct adopt *ad)
{
	struct daemon *d = ad->d;
	char err[512];
	int rc = ad->fail == TKO_STEP_start ? -EIO : rt_group_start(&d->group, &d->conf);

	if (rc)
		return rc;
	ad->t_serving = rt_now_ns();
	d->ctl = ctl_server_adopt(d->conf.ctl_path, daemon_ctl_handle, d, &daemon_app_hooks,
				  ad->listen_fd, ad->cls, ad->n_cls, err, sizeof(err));
	if (!d->ctl) {
		daemon_log(MST_LOG_ERR, "%s", err);
		return -errno ? -errno : -EIO;
	}
	ad->listen_fd = -1;
	ad->n_cls = 0;
	return 0;
}

static int adopt_run(struct adopt *ad)
{
	struct tko_msg m = { .type = TKO_HELLO, .pid = (uint32_t)getpid() };
	int fds[TKO_MAX_FDS], rc;
	uint64_t t, open_us;

	ad->step = TKO_STEP_hello;
	if (ad->fail == TKO_STEP_hello || tko_send(ad->chan, &m, NULL, 0))
		return -EIO;
	ad->step = TKO_STEP_handover;
	rc = ad->fail == TKO_STEP_handover ? -EIO : adopt_fds(ad);
	if (rc)
		return rc;
	ad->step = TKO_STEP_brownout;
	rc = ad->fail == TKO_STEP_brownout ? -EIO : adopt_brownout(ad);
	m = (struct tko_msg){ .type = TKO_READY };
	if (rc || (rc = tko_send(ad->chan, &m, NULL, 0)))
		return rc;
	ad->step = TKO_STEP_import;
	rc = adopt_state(ad);
	m = (struct tko_msg){ .type = TKO_IMPORTED, .import_us = (rt_now_ns() - ad->t_state) / 1000 };
	if (rc || (rc = tko_send(ad->chan, &m, NULL, 0)))
		return rc;
	ad->step = TKO_STEP_port;
	rc = tko_expect(ad->chan, TKO_PORT_FREE, &m, fds, ad->deadline, &ad->step);
	t = rt_now_ns();
	if (!rc)
		rc = ad->fail == TKO_STEP_port ? -EIO : adopt_port(ad);
	if (rc)
		return rc;
	open_us = (rt_now_ns() - t) / 1000;
	ad->step = TKO_STEP_start;
	t = rt_now_ns();
	rc = adopt_start(ad);
	m = (struct tko_msg){ .type = TKO_DONE, .open_us = open_us,
			      .start_us = (rt_now_ns() - t) / 1000, .serving_ns = ad->t_serving };
	return rc ? rc : tko_send(ad->chan, &m, NULL, 0);
}

int tko_adopt(struct daemon *d)
{
	struct adopt ad = { .d = d, .chan = d->takeover_fd, .listen_fd = -1, .fail = fail_step() };
	int rc;

	for (unsigned i = 0; i < MST_MAX_ENGINES; i++)
		ad.doorbell[i] = -1;
	ad.deadline = mono_ms() + TKO_DEFAULT_TIMEOUT_MS * 3;
	rc = adopt_run(&ad);
	if (rc) {
		struct tko_msg m = { .type = TKO_FAIL, .rc = rc, .step = ad.step };

		daemon_log(MST_LOG_ERR, "takeover: %s failed: %s", tko_step_names[ad.step],
			   strerror(-rc));
		(void)tko_send(ad.chan, &m, NULL, 0);
		/* What the old daemon still owns is not ours to close on its
		 * behalf, but these copies are ours. */
		if (ad.listen_fd >= 0)
			close(ad.listen_fd);
		for (unsigned i = 0; i < ad.n_cls; i++)
			close(ad.cls[i].fd);
	}
	close(ad.chan);
	d->takeover_fd = -1;
	return rc;
}

int tko_connect(const char *ctl_path)
{
	struct mst_ctl_hdr h = {
		.magic = htole32(MST_CTL_MAGIC), .version = htole16(MST_CTL_VERSION),
		.type = htole16(MST_CTL_takeover),
	};
	int fd = ctl_client_connect(ctl_path, 5000);

	if (fd < 0)
		return fd;
	if (send(fd, &h, sizeof(h), MSG_NOSIGNAL) != (ssize_t)sizeof(h)) {
		close(fd);
		return -EPIPE;
	}
	return fd;
}

void tko_abandon(struct daemon *d)
{
	rt_group_stop(&d->group);
	if (d->ports[0])
		port_close(d->ports[0]); /* af_xdp: its XDP program goes with it */
	d->ports[0] = NULL;
}
