/* SPDX-License-Identifier: BSD-3-Clause */
/* Live upgrade between two mustangd processes (takeover.c). Internal. */
#ifndef MST_CONTROL_TAKEOVER_H
#define MST_CONTROL_TAKEOVER_H

struct daemon;
struct emit;

/* X(name, help) — the steps of a process upgrade, in order; a failure
 * names its step. */
#define TKO_FOREACH_STEP(X)                                                          \
	X(spawn, "start the new binary with the takeover channel")                   \
	X(hello, "the new daemon initialised DPDK and answered")                     \
	X(handover, "control socket, app connections, segments, eventfds, doorbells passed") \
	X(brownout, "the new daemon mapped the segments, created engines, attached apps") \
	X(export, "blackout: each old engine wrote its state and froze")             \
	X(import, "the new engines read the state")                                  \
	X(port, "the old daemon closed the port, the new one opened it")             \
	X(start, "the new engines poll and its control server serves")

enum tko_step {
#define TKO_X_ENUM(name, help) TKO_STEP_##name,
	TKO_FOREACH_STEP(TKO_X_ENUM)
#undef TKO_X_ENUM
	TKO_STEP__COUNT
};
extern const char *const tko_step_names[TKO_STEP__COUNT];
int tko_step_by_name(const char *s);

/* Old daemon, control thread (the `upgrade` request; arg "binary=PATH
 * timeout=MS fail=STEP", each optional). 0: committed, the daemon exits
 * once the answer is out; -errno: rolled back, e says which step. */
int tko_upgrade(struct daemon *d, const char *arg, struct emit *e);
/* Old daemon: the same, for a `takeover` request from a new daemon an
 * init system started (mustangd --takeover CTL_PATH). */
int tko_takeover_request(struct daemon *d, struct emit *e);
/* New daemon started with --takeover CTL_PATH: connect and ask; the
 * connection is the channel (fd), or -errno. */
int tko_connect(const char *ctl_path);
/* New daemon, from main() after EAL (d->takeover_fd): 0 serving, -errno
 * (the old daemon was told; call tko_abandon() and exit 1). */
int tko_adopt(struct daemon *d);
/* After a failed adopt: release the port and stop, without a packet or
 * a write to any app segment (the old daemon carries on with them). */
void tko_abandon(struct daemon *d);

#endif
