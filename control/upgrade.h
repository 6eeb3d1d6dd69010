/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Live upgrade, control-plane side (upgrade.c; docs/upgrade.md).
 * Internal header.
 */
#ifndef MST_CONTROL_UPGRADE_H
#define MST_CONTROL_UPGRADE_H

#include <stddef.h>
#include <stdint.h>

#include <mustang/engine.h>

#include "engines/runtime.h"

/* X(name, help) — the steps of an engine handover, in order. A failure
 * names its step; a test can make any step fail (fail_at). */
#define UPG_FOREACH_STEP(X)                                                      \
	X(create, "brownout: create the new engine (control thread)")              \
	X(export, "blackout: the old engine writes its state and freezes")          \
	X(queue, "blackout: the port's queue moves to the new engine")              \
	X(attach, "blackout: the apps are attached to the new engine")              \
	X(import, "blackout: the new engine reads the state")                       \
	X(commit, "the new engine polls; the old one is freed")

enum upg_step {
#define UPG_X_ENUM(name, help) UPG_STEP_##name,
	UPG_FOREACH_STEP(UPG_X_ENUM)
#undef UPG_X_ENUM
	UPG_STEP__COUNT
};
extern const char *const upg_step_names[UPG_STEP__COUNT];
/* The step named s, or -1. */
int upg_step_by_name(const char *s);

struct upg_restart {
	/* in */
	unsigned id;
	const struct mst_engine_ops *ops;
	struct mst_engine_conf conf;       /* the engine's; importing is set here */
	struct mst_queue *queue;
	const struct mst_app *apps;        /* attached to this engine */
	unsigned n_apps;
	int fail_at;                       /* test only: enum upg_step to fail, -1 none */
	/* out */
	int rc;                            /* 0 or -errno */
	enum upg_step failed;              /* when rc < 0 */
	bool rolled_back;                  /* the old engine resumed */
	size_t state_bytes;
	uint64_t blackout_ns;              /* old engine's last poll -> new engine polls */
	uint64_t export_ns, import_ns, create_ns;
	uint64_t drain_wait_ms;            /* waited for exited apps' connections */
};

/* An export refused with -EBUSY (an exited app's closed connections are
 * still finishing) is asked again every UPG_DRAIN_POLL_MS, for up to
 * UPG_DRAIN_WAIT_MS: the engine gives them 5 s more from the first
 * refusal and then resets what is left (engines/net_engine.c), so the
 * export goes through within the wait. */
#define UPG_DRAIN_WAIT_MS 6000
#define UPG_DRAIN_POLL_MS 20
/* After an export failed with rc: true (having slept UPG_DRAIN_POLL_MS)
 * when it is worth asking again, for a wait that started at start_ms
 * (CLOCK_MONOTONIC) and must end by deadline_ms. */
bool upg_drain_retry(int rc, uint64_t start_ms, uint64_t deadline_ms);

/* Why an export refused, for the operator ("" when -rc says it all). */
const char *upg_export_hint(int rc);

/* Replace engine r->id of group g by a new engine of the same kind
 * carrying its whole state (export -> create -> import, the same code
 * path a process upgrade takes, in one process). On any failure before
 * the new engine polls, the old one resumes where it stopped. */
int upg_engine_restart(struct rt_group *g, struct upg_restart *r);

/* Process handover (takeover.c): the engine exports on its own thread and
 * freezes; *buf (malloc'd) holds the state. Bytes, or -errno (nothing
 * changed). */
long upg_engine_export(struct rt_group *g, unsigned id, const struct mst_engine_ops *ops,
		       uint8_t **buf);
/* Rollback: a frozen engine carries on. */
int upg_engine_resume(struct rt_group *g, unsigned id, const struct mst_engine_ops *ops);

#endif
