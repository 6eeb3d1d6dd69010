/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Live upgrade, control-plane side: an engine handed over to a new engine
 * with all its state (DESIGN §5, docs/upgrade.md).
 *
 * upg_engine_restart():
 *   brownout (control thread, the old engine still serves):
 *     create the new engine (conf.importing), allocate the state buffer
 *   blackout (one mailbox item on the engine's own thread, between polls):
 *     export_state(old) -> detach_queue(old) -> attach_queue(new) ->
 *     attach_app(new) per app -> import_state(new) -> the runtime polls new
 *   commit (control thread): destroy(old), which frees memory only.
 *   A failure anywhere in the blackout: destroy(new) (memory only), the
 *   queue goes back, resume(old): the old engine carries on where it
 *   stopped, and nothing was lost (its state never left it).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "control/upgrade.h"

const char *const upg_step_names[UPG_STEP__COUNT] = {
#define UPG_X_NAME(name, help) #name,
	UPG_FOREACH_STEP(UPG_X_NAME)
#undef UPG_X_NAME
};

int upg_step_by_name(const char *s)
{
	for (int i = 0; i < UPG_STEP__COUNT; i++)
		if (!strcmp(s, upg_step_names[i]))
			return i;
	return -1;
}

#define STATE_BUF_MIN (1u << 20)

const char *upg_export_hint(int rc)
{
	switch (rc) {
	case -EBUSY:
		return " (an app that exited still had closed connections finishing after the wait)";
	default:
		return "";
	}
}

static uint64_t upg_mono_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

bool upg_drain_retry(int rc, uint64_t start_ms, uint64_t deadline_ms)
{
	uint64_t now = upg_mono_ms();

	if (rc != -EBUSY || now - start_ms >= UPG_DRAIN_WAIT_MS || now + UPG_DRAIN_POLL_MS >= deadline_ms)
		return false;
	usleep(UPG_DRAIN_POLL_MS * 1000);
	return true;
}

struct handover {
	struct upg_restart *r;
	struct rt_engine *re;
	void *neu;                         /* the new engine */
	uint8_t *buf;
	size_t cap;
	long len;
	void *old_out;                     /* the old engine, to destroy after commit */
};

static bool fail_here(const struct upg_restart *r, enum upg_step s)
{
	return r->fail_at == (int)s;
}

/* Export into h->buf, growing it (on the engine thread: the blackout
 * pays for an allocation only when the state outgrew the estimate). */
static long export_grow(struct handover *h, void *old)
{
	long n;

	for (;;) {
		n = h->r->ops->export_state(old, h->buf, h->cap);
		if (n != -ENOSPC)
			return n;
		uint8_t *nb = realloc(h->buf, h->cap * 2);

		if (!nb)
			return -ENOMEM;
		h->buf = nb;
		h->cap *= 2;
	}
}

/* The blackout, on the engine's thread. */
static void handover_work(void *old, void *arg)
{
	struct handover *h = arg;
	struct upg_restart *r = h->r;
	const struct mst_engine_ops *ops = r->ops;
	uint64_t t0 = rt_now_ns(), t1;
	int rc;

	r->failed = UPG_STEP_export;
	h->len = fail_here(r, UPG_STEP_export) ? -EIO : export_grow(h, old);
	if (h->len < 0) {
		r->rc = (int)h->len;
		return; /* nothing changed: the old engine was never frozen */
	}
	t1 = rt_now_ns();
	r->export_ns = t1 - t0;
	r->state_bytes = (size_t)h->len;
	r->failed = UPG_STEP_queue;
	rc = ops->detach_queue(old, r->queue);
	if (!rc)
		rc = fail_here(r, UPG_STEP_queue) ? -EIO : ops->attach_queue(h->neu, r->queue);
	if (!rc)
		r->failed = UPG_STEP_attach;
	for (unsigned i = 0; !rc && i < r->n_apps; i++)
		rc = ops->attach_app(h->neu, &r->apps[i]);
	if (!rc && fail_here(r, UPG_STEP_attach))
		rc = -EIO;
	if (!rc) {
		r->failed = UPG_STEP_import;
		rc = fail_here(r, UPG_STEP_import) ? -EIO : ops->import_state(h->neu, h->buf,
									  (size_t)h->len);
	}
	r->import_ns = rt_now_ns() - t1;
	if (rc) {
		/* Rollback: the new engine lets go of everything without a
		 * packet; the queue and the apps are the old engine's again. */
		r->rc = rc;
		(void)ops->detach_queue(h->neu, r->queue);
		ops->destroy(h->neu);
		h->neu = NULL;
		(void)ops->attach_queue(old, r->queue);
		(void)ops->resume(old);
		r->rolled_back = true;
		r->blackout_ns = rt_now_ns() - t0;
		return;
	}
	h->re->eng = h->neu; /* the runtime polls the new engine from now on */
	h->old_out = old;
	r->failed = UPG_STEP_commit;
	r->rc = 0;
	r->blackout_ns = rt_now_ns() - t0;
}

/* ---- export / resume of one engine, for the process handover ---------- */

struct export_req {
	const struct mst_engine_ops *ops;
	uint8_t *buf;
	size_t cap;
	long len;
};

static void export_work(void *eng, void *arg)
{
	struct export_req *x = arg;

	for (;;) {
		x->len = x->ops->export_state(eng, x->buf, x->cap);
		if (x->len != -ENOSPC)
			return;
		uint8_t *nb = realloc(x->buf, x->cap * 2);

		if (!nb) {
			x->len = -ENOMEM;
			return;
		}
		x->buf = nb;
		x->cap *= 2;
	}
}

long upg_engine_export(struct rt_group *g, unsigned id, const struct mst_engine_ops *ops,
		       uint8_t **buf)
{
	struct export_req x = { .ops = ops, .cap = STATE_BUF_MIN };
	int rc;

	*buf = NULL;
	x.buf = malloc(x.cap);
	if (!x.buf)
		return -ENOMEM;
	rc = rt_engine_call(g, id, export_work, &x, 10000);
	if (rc || x.len < 0) {
		free(x.buf);
		return rc ? rc : x.len;
	}
	*buf = x.buf;
	return x.len;
}

struct resume_req {
	const struct mst_engine_ops *ops;
	int rc;
};

static void resume_work(void *eng, void *arg)
{
	struct resume_req *x = arg;

	x->rc = x->ops->resume(eng);
}

int upg_engine_resume(struct rt_group *g, unsigned id, const struct mst_engine_ops *ops)
{
	struct resume_req x = { .ops = ops, .rc = -EIO };
	int crc = rt_engine_call(g, id, resume_work, &x, 10000);

	return crc ? crc : x.rc;
}

/* MUSTANG_STATE_DUMP=FILE: the state an engine restart carried, for
 * fixtures and for looking at (tests/unit/engines, tests/fuzz). */
static void dump_state(const struct handover *h)
{
	const char *path = getenv("MUSTANG_STATE_DUMP");
	FILE *f;

	if (!path || !*path || h->len <= 0)
		return;
	f = fopen(path, "we");
	if (!f)
		return;
	(void)!fwrite(h->buf, 1, (size_t)h->len, f);
	fclose(f);
}

int upg_engine_restart(struct rt_group *g, struct upg_restart *r)
{
	struct handover h = { .r = r, .cap = STATE_BUF_MIN };
	uint64_t t0 = rt_now_ns(), w0;
	int rc;

	r->rc = 0;
	r->rolled_back = false;
	r->failed = UPG_STEP_create;
	if (r->id >= g->n_engines || !r->ops->resume || !r->ops->export_state ||
	    !r->ops->import_state)
		return r->rc = -EINVAL;
	h.re = &g->engines[r->id];
	r->conf.importing = true;
	h.buf = malloc(h.cap);
	h.neu = fail_here(r, UPG_STEP_create) ? NULL : r->ops->create(&r->conf);
	r->create_ns = rt_now_ns() - t0;
	if (!h.buf || !h.neu) {
		rc = h.buf ? (fail_here(r, UPG_STEP_create) ? -EIO : -errno) : -ENOMEM;
		if (h.neu)
			r->ops->destroy(h.neu);
		free(h.buf);
		return r->rc = rc;
	}
	/* An exited app's closed connections still finishing: the old
	 * engine serves them meanwhile (nothing was frozen), and the new
	 * one waits. */
	w0 = upg_mono_ms();
	for (unsigned tries = 0;; tries++) {
		rc = rt_engine_call(g, r->id, handover_work, &h, 10000);
		if (rc || !upg_drain_retry(r->rc, w0, UINT64_MAX)) {
			r->drain_wait_ms = tries || r->rc == -EBUSY ? upg_mono_ms() - w0 : 0;
			break;
		}
	}
	if (rc) {
		/* Withdrawn before the engine took it: nothing happened. */
		r->ops->destroy(h.neu);
		free(h.buf);
		r->failed = UPG_STEP_export;
		return r->rc = rc;
	}
	dump_state(&h);
	if (h.old_out)
		r->ops->destroy(h.old_out);
	else if (h.neu)
		r->ops->destroy(h.neu);
	free(h.buf);
	return r->rc;
}
