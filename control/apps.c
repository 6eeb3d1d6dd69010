/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Application attach and detach, on the control thread.
 *
 * apps_attach() (ctl_server's attach hook): memfd_create() -> size it ->
 * map it -> write the header and empty rings/sockets (<mustang/shm_abi.h>)
 * -> one eventfd per queue pair -> the engine adopts the app on its own
 * thread (rt_engine_call -> attach_app) -> the fds go to the app.
 * apps_detach() (the app's control connection closed): the engine resets
 * the app's connections and forgets it (detach_app) -> unmap -> close.
 *
 * The segment's FIFO and Pony arenas are sparse: memory is only used as sockets touch
 * their FIFOs, so a large arena costs nothing until it is used.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mustang/shm_abi.h>

#include "control/apps.h"

#define APP_QPS APPS_QPS
#define APP_SOCKS MST_SHM_MAX_SOCKS
#define ALIGN_UP(x, a) (((x) + (a)-1) / (a) * (a))

struct app_slot {
	bool used;
	int id;
	int memfd;
	void *base;
	size_t size;
	int efd[APP_QPS];
	pid_t pid;
	bool stuck;             /* the engine never answered its detach: it may still use it all */
};

struct apps {
	const struct apps_conf conf;
	struct app_slot slot[APPS_MAX];
	int next_id;
};

struct apps *apps_create(const struct apps_conf *conf)
{
	struct apps *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	memcpy((void *)&a->conf, conf, sizeof(*conf));
	a->next_id = 1;
	return a;
}

static struct mst_app slot_app(const struct apps *a, const struct app_slot *s)
{
	return (struct mst_app){ .id = s->id, .base = s->base, .len = s->size,
				 .eventfds = s->efd, .n_eventfds = APP_QPS, .pid = (int)s->pid,
				 .doorbell = rt_engine_doorbell(a->conf.group, 0) };
}

unsigned apps_list(const struct apps *a, struct mst_app *out, unsigned max)
{
	unsigned n = 0;

	for (unsigned i = 0; i < APPS_MAX && n < max; i++)
		if (a->slot[i].used)
			out[n++] = slot_app(a, &a->slot[i]);
	return n;
}

static void slot_release(struct app_slot *s)
{
	for (unsigned q = 0; q < APP_QPS; q++)
		if (s->efd[q] >= 0)
			close(s->efd[q]);
	if (s->base && s->base != MAP_FAILED)
		munmap(s->base, s->size);
	if (s->memfd >= 0)
		close(s->memfd);
	memset(s, 0, sizeof(*s));
}

struct engine_attach {
	const struct apps_conf *conf;
	struct mst_app app;
	int rc;
};

static void attach_work(void *eng, void *arg)
{
	struct engine_attach *w = arg;

	w->rc = w->conf->ops->attach_app(eng, &w->app);
}

struct engine_detach {
	const struct apps_conf *conf;
	int id;
	int rc;
};

static void detach_work(void *eng, void *arg)
{
	struct engine_detach *w = arg;

	w->rc = w->conf->ops->detach_app(eng, w->id);
}

/* Lay out a fresh segment: header, queue pairs, sockets, FIFO arena. */
static void segment_init(struct apps *a, struct app_slot *s, uint64_t qp_off, uint64_t sock_off,
			 uint64_t fifo_off, uint64_t pony_off)
{
	struct mst_shm_hdr *h = s->base;
	struct mst_shm_sock *socks = (struct mst_shm_sock *)((uint8_t *)s->base + sock_off);

	/* ftruncate() gave us zeroes: rings empty, counters 0. */
	for (unsigned i = 0; i < APP_SOCKS; i++)
		socks[i].state = MST_SOCK_FREE;
	h->magic = MST_SHM_MAGIC;
	h->version = MST_SHM_VERSION;
	h->size = s->size;
	h->n_qps = APP_QPS;
	h->n_socks = APP_SOCKS;
	h->qp_off = qp_off;
	h->sock_off = sock_off;
	h->fifo_off = fifo_off;
	h->fifo_size = pony_off - fifo_off;
	h->pony_off = pony_off;
	h->pony_size = s->size - pony_off;
	h->pony_max_msg = a->conf.pony_mb ? a->conf.pony_max_msg : 0;
	h->app_id = (uint32_t)s->id;
	h->engine = 0;
	h->local_ip = a->conf.local_ip;
}

int apps_attach(void *ctx, unsigned client, pid_t pid, uid_t uid, int *fds, unsigned max,
		unsigned *n_fds, char *payload, size_t payload_len)
{
	struct apps *a = ctx;
	struct app_slot *s;
	struct engine_attach w;
	uint64_t qp_off, sock_off, fifo_off, pony_off;
	char name[64];
	int rc;

	(void)uid;
	if (client >= APPS_MAX || max < 2 + APP_QPS) {
		snprintf(payload, payload_len, "too many applications");
		return -EMFILE;
	}
	s = &a->slot[client];
	if (s->stuck)
		apps_detach(a, client); /* the engine may answer now */
	if (s->stuck) {
		/* Its segment and eventfds may still be in the engine's hands:
		 * never unmapped or reused while it has not let go. */
		snprintf(payload, payload_len, "the engine has not released this connection "
			 "slot's previous app (detach timed out); try again later");
		return -EBUSY;
	}
	if (s->used)
		slot_release(s); /* cannot happen: detach frees the slot */
	memset(s, 0, sizeof(*s));
	s->memfd = -1;
	for (unsigned q = 0; q < APP_QPS; q++)
		s->efd[q] = -1;
	s->id = a->next_id++;
	s->pid = pid;

	qp_off = ALIGN_UP(sizeof(struct mst_shm_hdr), 4096);
	sock_off = ALIGN_UP(qp_off + (uint64_t)APP_QPS * sizeof(struct mst_shm_qp), 4096);
	fifo_off = ALIGN_UP(sock_off + (uint64_t)APP_SOCKS * sizeof(struct mst_shm_sock), 4096);
	pony_off = fifo_off + (uint64_t)a->conf.arena_mb * 1024 * 1024;
	s->size = pony_off + (uint64_t)a->conf.pony_mb * 1024 * 1024;

	snprintf(name, sizeof(name), "mustang-app-%d", (int)pid);
	s->memfd = memfd_create(name, MFD_CLOEXEC);
	if (s->memfd < 0 || ftruncate(s->memfd, (off_t)s->size) < 0) {
		rc = -errno;
		snprintf(payload, payload_len, "cannot create the segment: %s", strerror(errno));
		goto out;
	}
	s->base = mmap(NULL, s->size, PROT_READ | PROT_WRITE, MAP_SHARED, s->memfd, 0);
	if (s->base == MAP_FAILED) {
		rc = -errno;
		snprintf(payload, payload_len, "cannot map the segment: %s", strerror(errno));
		goto out;
	}
	for (unsigned q = 0; q < APP_QPS; q++) {
		s->efd[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (s->efd[q] < 0) {
			rc = -errno;
			snprintf(payload, payload_len, "eventfd: %s", strerror(errno));
			goto out;
		}
	}
	segment_init(a, s, qp_off, sock_off, fifo_off, pony_off);

	w.conf = &a->conf;
	w.app = slot_app(a, s);
	w.rc = -EIO;
	rc = rt_engine_call(a->conf.group, 0, attach_work, &w, 2000);
	if (rc == 0)
		rc = w.rc;
	if (rc < 0) {
		snprintf(payload, payload_len, "the engine refused the app: %s", strerror(-rc));
		goto out;
	}
	/* The app gets its own copies; ours stay with the slot. */
	fds[0] = dup(s->memfd);
	for (unsigned q = 0; q < APP_QPS; q++)
		fds[1 + q] = dup(s->efd[q]);
	fds[1 + APP_QPS] = w.app.doorbell >= 0 ? dup(w.app.doorbell) : eventfd(0, EFD_CLOEXEC);
	*n_fds = 2 + APP_QPS;
	for (unsigned i = 0; i < *n_fds; i++)
		if (fds[i] < 0) {
			rc = -EMFILE;
			for (unsigned k = 0; k < *n_fds; k++)
				if (fds[k] >= 0)
					close(fds[k]);
			*n_fds = 0;
			snprintf(payload, payload_len, "out of descriptors");
			apps_detach(a, client);
			return rc;
		}
	s->used = true;
	snprintf(payload, payload_len, "app_id %d qps %u", s->id, APP_QPS);
	if (a->conf.log)
		a->conf.log("app %d attached (pid %d, %u queue pairs, %zu MiB segment)", s->id,
			    (int)pid, APP_QPS, s->size >> 20);
	return 0;

out:
	slot_release(s);
	return rc;
}

void apps_detach(void *ctx, unsigned client)
{
	struct apps *a = ctx;
	struct app_slot *s;
	struct engine_detach w;

	if (client >= APPS_MAX)
		return;
	s = &a->slot[client];
	if (!s->base)
		return;
	w.conf = &a->conf;
	w.id = s->id;
	w.rc = 0;
	/* The engine must let go of the segment before we unmap it; if it
	 * does not answer, leak the mapping rather than pull it from under
	 * a running engine. */
	if (rt_engine_call(a->conf.group, 0, detach_work, &w, s->stuck ? 100 : 5000) != 0) {
		if (a->conf.log && !s->stuck)
			a->conf.log("app %d: engine did not answer the detach; segment kept", s->id);
		s->stuck = true; /* apps_attach() retries before reusing the slot */
		return;
	}
	if (w.rc == 1) {
		/* The engine keeps the mapping until the connections the app
		 * closed have finished, and unmaps it itself. */
		s->base = NULL;
	}
	if (a->conf.log)
		a->conf.log("app %d detached (pid %d)%s", s->id, (int)s->pid,
			    w.rc == 1 ? "; its closed connections finish first" : "");
	slot_release(s);
}

unsigned apps_count(const struct apps *a)
{
	unsigned n = 0;

	for (unsigned i = 0; i < APPS_MAX; i++)
		n += a->slot[i].used;
	return n;
}

unsigned apps_handover(const struct apps *a, struct apps_handover *out, unsigned max)
{
	unsigned n = 0;

	for (unsigned i = 0; i < APPS_MAX && n < max; i++) {
		const struct app_slot *s = &a->slot[i];

		if (!s->used)
			continue;
		out[n] = (struct apps_handover){ .client = i, .id = s->id, .pid = s->pid,
						 .size = s->size, .memfd = s->memfd };
		memcpy(out[n].efd, s->efd, sizeof(s->efd));
		n++;
	}
	return n;
}

int apps_adopt(struct apps *a, const struct apps_handover *h)
{
	struct app_slot *s;
	struct stat st;

	if (h->client >= APPS_MAX || a->slot[h->client].used || h->id <= 0 ||
	    fstat(h->memfd, &st) < 0 || (uint64_t)st.st_size != h->size)
		return -EINVAL;
	s = &a->slot[h->client];
	memset(s, 0, sizeof(*s));
	s->base = mmap(NULL, h->size, PROT_READ | PROT_WRITE, MAP_SHARED, h->memfd, 0);
	if (s->base == MAP_FAILED) {
		s->base = NULL;
		return -errno;
	}
	s->used = true;
	s->id = h->id;
	s->pid = h->pid;
	s->size = h->size;
	s->memfd = h->memfd;
	memcpy(s->efd, h->efd, sizeof(s->efd));
	if (h->id >= a->next_id)
		a->next_id = h->id + 1;
	return 0;
}

void apps_forget(struct apps *a)
{
	if (!a)
		return;
	for (unsigned i = 0; i < APPS_MAX; i++)
		if (a->slot[i].used || a->slot[i].base)
			slot_release(&a->slot[i]);
	free(a);
}

void apps_destroy(struct apps *a)
{
	if (!a)
		return;
	for (unsigned i = 0; i < APPS_MAX; i++)
		if (a->slot[i].base)
			apps_detach(a, i);
	free(a);
}
