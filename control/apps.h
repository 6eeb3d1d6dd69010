/* SPDX-License-Identifier: BSD-3-Clause */
/* Attached applications, daemon side (see apps.c). Internal header. */
#ifndef MST_CONTROL_APPS_H
#define MST_CONTROL_APPS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <mustang/engine.h>

#include "engines/runtime.h"

#define APPS_MAX 64 /* = the control server's client slots */

struct apps_conf {
	struct rt_group *group;                /* engines (apps are served by engine 0) */
	const struct mst_engine_ops *ops;      /* their kind */
	uint32_t local_ip;                     /* network order */
	unsigned arena_mb;                     /* FIFO arena per app (sparse) */
	unsigned pony_mb;                      /* Pony arena per app (sparse), 0 = Pony off */
	uint32_t pony_max_msg;                 /* published in the segment header */
	void (*log)(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
};

struct apps;

struct apps *apps_create(const struct apps_conf *conf);
void apps_destroy(struct apps *a);
/* The control server's ctl_app_hooks. */
int apps_attach(void *ctx, unsigned client, pid_t pid, uid_t uid, int *fds, unsigned max,
		unsigned *n_fds, char *payload, size_t payload_len);
void apps_detach(void *ctx, unsigned client);
unsigned apps_count(const struct apps *a);
/* The attached apps as their engine knows them (what attach_app() got):
 * up to max into out; returns how many. Control thread. */
unsigned apps_list(const struct apps *a, struct mst_app *out, unsigned max);

/*
 * Live upgrade: what a new daemon needs to serve an app (its descriptors
 * are the old daemon's; they go over SCM_RIGHTS). apps_handover() lists
 * the attached apps; apps_adopt() (new daemon) maps one at the same client
 * slot with the same id, without touching the segment; apps_forget() (old
 * daemon, after a handover) lets go of its copies without detaching.
 */
#define APPS_QPS 32u
struct apps_handover {
	unsigned client;                       /* control-server slot */
	int id;
	pid_t pid;
	uint64_t size;                         /* segment bytes */
	int memfd;
	int efd[APPS_QPS];
};
unsigned apps_handover(const struct apps *a, struct apps_handover *out, unsigned max);
int apps_adopt(struct apps *a, const struct apps_handover *h);
void apps_forget(struct apps *a);

#endif
