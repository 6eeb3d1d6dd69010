/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Flow logs, control-plane side (flows.c; fields in docs/observability.md).
 *
 *   flows_start()      after EAL, before the engines: rings (engines/flowlog.c)
 *                      and the flow thread
 *   flows_app()        an app attached: remember pid, command, cgroup
 *   [flow thread]      every FLOWS_TICK_MS: take each engine's records,
 *                      name their app, append JSON lines to the file
 *                      (size-based rotation) and to the recent-records
 *                      ring that `mustangctl flows` reads
 *   flows_query()      control thread: records after a sequence number,
 *                      filtered by app pid and peer
 *   flows_stop()       after the engines stopped: last drain, close
 * Internal header.
 */
#ifndef MST_CONTROL_FLOWS_H
#define MST_CONTROL_FLOWS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct flows;

struct flows_conf {
	const char *path;           /* JSON lines file, NULL: only the control socket */
	uint64_t max_bytes;         /* rotate the file past this (to PATH.1) */
	uint32_t interval_s;        /* periodic records of open flows, 0: at close only */
	unsigned n_engines;
	unsigned ring_size;         /* records per engine ring (power of 2) */
};

/* NULL + errno. */
struct flows *flows_start(const struct flows_conf *conf);
void flows_stop(struct flows *f);
/* App `id` is process pid (its /proc entry is read now, while it lives). */
void flows_app(struct flows *f, int id, pid_t pid);

/*
 * `flows` request argument: "[since=SEQ] [app=PID] [peer=IP[:PORT]] [json]".
 * Writes "next SEQ" and then one line per matching record (JSON with
 * `json`, a one-line summary without) into a malloc'd buffer. 0, -EINVAL
 * (bad argument, *out says why), -ENOMEM.
 */
int flows_query(struct flows *f, const char *arg, char **out, size_t *len);

/* Counters for `mustangctl metrics`. */
struct flows_stats {
	uint64_t records, written, write_errors, rotations, file_bytes;
};
void flows_get_stats(struct flows *f, struct flows_stats *out);

#endif
