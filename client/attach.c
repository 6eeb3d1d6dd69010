/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Attach to mustangd: mst_init() -> ctl_attach() connects to the control
 * socket, sends an MST_CTL_attach request and receives the response with
 * the segment memfd and one eventfd per queue pair (SCM_RIGHTS), then
 * lib_attach_fds() maps and validates the segment. The control connection
 * stays open: it is the app's lifeline (closing it detaches).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <mustang/ctl.h>

#include "priv.h"

struct mst_lib mst_lib = { .ctl_fd = -1 };

static pthread_once_t key_once = PTHREAD_ONCE_INIT;

static void thr_destructor(void *p)
{
	thr_release(p);
}

static void key_init(void)
{
	pthread_key_create(&mst_lib.key, thr_destructor);
}

static bool range_ok(uint64_t off, uint64_t len, uint64_t size)
{
	return off <= size && len <= size - off;
}

/* The engine's doorbell eventfd (-1 before attach). Here rather than in
 * struct mst_lib to keep the attach ABI change in two files. */
int mst_engine_doorbell = -1;

/* Map the segment and adopt the descriptors. Takes ownership of every fd
 * on success (memfd is closed after mmap); on failure closes nothing. */
int lib_attach_fds(int ctl_fd, int memfd, const int *efds, unsigned n_efds)
{
	struct mst_lib *L = &mst_lib;
	const struct mst_shm_hdr *h;
	struct stat st;
	void *base;
	unsigned i;

	if (L->attached)
		return -EISCONN;
	if (fstat(memfd, &st) < 0)
		return -errno;
	if ((uint64_t)st.st_size < sizeof(*h))
		return -EPROTO;
	base = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	if (base == MAP_FAILED)
		return -errno;
	h = base;
	if (h->magic != MST_SHM_MAGIC || h->version != MST_SHM_VERSION ||
	    h->size > (uint64_t)st.st_size || h->n_qps == 0 ||
	    h->n_qps > MST_SHM_MAX_QPS || h->n_qps != n_efds ||
	    h->n_socks == 0 || h->n_socks > MST_SHM_MAX_SOCKS ||
	    h->qp_off % MST_SHM_CACHELINE || h->sock_off % MST_SHM_CACHELINE ||
	    !range_ok(h->qp_off, (uint64_t)h->n_qps * sizeof(struct mst_shm_qp), h->size) ||
	    !range_ok(h->sock_off, (uint64_t)h->n_socks * sizeof(struct mst_shm_sock), h->size) ||
	    !range_ok(h->fifo_off, h->fifo_size, h->size))
		goto out_unmap;

	L->ls = calloc(h->n_socks, sizeof(*L->ls));
	if (!L->ls) {
		munmap(base, (size_t)st.st_size);
		return -ENOMEM;
	}
	for (i = 0; i < h->n_socks; i++) {
		pthread_mutex_init(&L->ls[i].tx_lock, NULL);
		pthread_mutex_init(&L->ls[i].rx_lock, NULL);
		pthread_mutex_init(&L->ls[i].own_lock, NULL);
		L->ls[i].notify_qp = -1;
	}
	pthread_once(&key_once, key_init);
	for (i = 0; i < n_efds; i++) {
		int fl = fcntl(efds[i], F_GETFL);

		/* The eventfd's file description is shared with the daemon;
		 * O_NONBLOCK only changes how reads behave (it never blocks
		 * the daemon's writes). */
		if (fl >= 0)
			fcntl(efds[i], F_SETFL, fl | O_NONBLOCK);
		L->efd[i] = efds[i];
	}
	L->base = base;
	L->size = (size_t)h->size;
	L->hdr = base;
	L->qps = (struct mst_shm_qp *)(L->base + h->qp_off);
	L->socks = (struct mst_shm_sock *)(L->base + h->sock_off);
	L->n_qps = h->n_qps;
	L->n_socks = h->n_socks;
	L->ctl_fd = ctl_fd;
	L->epoch++;
	L->dead = 0;
	memset(L->lqp, 0, sizeof(L->lqp));
	__atomic_store_n(&L->qp_used, 0, __ATOMIC_RELAXED);
	{
		/* Busy-poll before sleeping: MUSTANG_SPIN_US (default 20,
		 * garbage or negative = default); MUSTANG_SPIN_YIELD=1 gives
		 * the core away (sched_yield) on every empty look, so that a
		 * client and a server pinned to one core hand it to each other
		 * at once instead of at the scheduler's tick. */
		const char *s = getenv("MUSTANG_SPIN_US"), *y = getenv("MUSTANG_SPIN_YIELD");
		char *end;
		long us = s ? strtol(s, &end, 10) : -1;

		L->spin_ns = (s && *s && !*end && us >= 0 && us <= 10000000) ? us * 1000 : 20000;
		L->spin_yield = y && y[0] == '1' && !y[1];
	}
	close(memfd);
	__atomic_store_n(&L->attached, 1, __ATOMIC_RELEASE);
	return 0;

out_unmap:
	munmap(base, (size_t)st.st_size);
	return -EPROTO;
}

void lib_detach(void)
{
	struct mst_lib *L = &mst_lib;
	unsigned i;

	if (!L->attached)
		return;
	__atomic_store_n(&L->attached, 0, __ATOMIC_RELEASE);
	epoll_forget_all();
	pony_lib_reset();
	for (i = 0; i < L->n_qps; i++)
		close(L->efd[i]);
	for (i = 0; i < L->n_socks; i++) {
		pthread_mutex_destroy(&L->ls[i].tx_lock);
		pthread_mutex_destroy(&L->ls[i].rx_lock);
		pthread_mutex_destroy(&L->ls[i].own_lock);
	}
	free(L->ls);
	L->ls = NULL;
	munmap(L->base, L->size);
	L->base = NULL;
	if (L->ctl_fd >= 0)
		close(L->ctl_fd);
	L->ctl_fd = -1;
}

static int ctl_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	return fd;
}

static int read_full(int fd, void *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = recv(fd, (char *)buf + got, n - got, 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EPROTO;
		got += (size_t)r;
	}
	return 0;
}

static void close_fds(const int *fds, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		close(fds[i]);
}

/* Send the attach request and take the response apart. */
static int ctl_attach(int fd)
{
	struct mst_ctl_hdr req = {
		.magic = MST_CTL_MAGIC, .version = MST_CTL_VERSION,
		.type = MST_CTL_attach, .status = 0, .len = 0,
	};
	struct mst_ctl_hdr rsp;
	char text[128] = "";
	union {
		char buf[CMSG_SPACE(sizeof(int) * (2 + MST_SHM_MAX_QPS))];
		struct cmsghdr align;
	} cm;
	struct iovec iov = { .iov_base = &rsp, .iov_len = sizeof(rsp) };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cm.buf, .msg_controllen = sizeof(cm.buf),
	};
	int fds[2 + MST_SHM_MAX_QPS];
	unsigned n_fds = 0, qps = 0, app_id = 0;
	struct cmsghdr *c;
	ssize_t r;
	int err;

	if (send(fd, &req, sizeof(req), MSG_NOSIGNAL) != (ssize_t)sizeof(req))
		return -errno ? -errno : -EPROTO;
	do
		r = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
			unsigned k = (unsigned)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));

			if (n_fds + k > 2 + MST_SHM_MAX_QPS)
				k = 2 + MST_SHM_MAX_QPS - n_fds;
			memcpy(fds + n_fds, CMSG_DATA(c), k * sizeof(int));
			n_fds += k;
		}
	}
	err = -EPROTO;
	if (mh.msg_flags & MSG_CTRUNC)
		goto out_fds;
	if (r < (ssize_t)sizeof(rsp) &&
	    (r == 0 || read_full(fd, (char *)&rsp + r, sizeof(rsp) - (size_t)r) < 0))
		goto out_fds;
	if (rsp.magic != MST_CTL_MAGIC || rsp.version != MST_CTL_VERSION ||
	    (rsp.type & MST_CTL_TYPE_MASK) != MST_CTL_attach)
		goto out_fds;
	if (rsp.status < 0) {
		err = rsp.status;
		goto out_fds;
	}
	if (rsp.len >= sizeof(text) || read_full(fd, text, rsp.len) < 0)
		goto out_fds;
	text[rsp.len] = '\0';
	if (sscanf(text, "app_id %u qps %u", &app_id, &qps) != 2 || qps == 0 ||
	    qps > MST_SHM_MAX_QPS || n_fds != 2 + qps)
		goto out_fds;
	err = lib_attach_fds(fd, fds[0], fds + 1, qps);
	if (err == 0) {
		/* The last descriptor: the engine's doorbell (shm_abi.h). */
		mst_engine_doorbell = fds[1 + qps];
		return 0;
	}
out_fds:
	close_fds(fds, n_fds);
	return err;
}

MST_EXPORT int mst_init(const char *ctl_path)
{
	int fd, err;

	if (__atomic_load_n(&mst_lib.attached, __ATOMIC_ACQUIRE)) {
		errno = EISCONN;
		return -1;
	}
	if (!ctl_path)
		ctl_path = getenv("MUSTANG_CTL");
	if (!ctl_path || !*ctl_path)
		ctl_path = MST_CTL_DEFAULT_PATH;
	fd = ctl_connect(ctl_path);
	if (fd < 0) {
		errno = -fd;
		return -1;
	}
	err = ctl_attach(fd);
	if (err < 0) {
		close(fd);
		errno = -err;
		return -1;
	}
	return 0;
}

MST_EXPORT void mst_fini(void)
{
	struct thr *t;

	if (!mst_lib.attached)
		return;
	t = pthread_getspecific(mst_lib.key);
	if (t) {
		pthread_setspecific(mst_lib.key, NULL);
		thr_release(t);
	}
	lib_detach();
}

MST_EXPORT void mst_fork_child(void)
{
	if (!mst_lib.attached)
		return;
	/* Not thr_release(): the queue pair's flags live in the segment the
	 * parent still drives; the child's copy of its thread state is
	 * dropped (a small leak, once per fork). */
	pthread_setspecific(mst_lib.key, NULL);
	lib_detach();
}
