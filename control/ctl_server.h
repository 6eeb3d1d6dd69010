/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Control socket server: one control-plane thread that accepts operators on
 * a UNIX stream socket, checks SO_PEERCRED, reads length-prefixed requests
 * (<mustang/ctl.h>) and answers through the daemon's handler.
 *
 * ctl_server_start() -> [thread: poll(listen fd, clients) -> read request ->
 * authorize -> handler(emit) -> write response] -> ctl_server_stop()
 *
 * Clients are served one request at a time per connection, many connections
 * at once (poll), with a per-connection read deadline so a stalled or hostile
 * client can never block the others or the daemon.
 */
#ifndef MST_CONTROL_CTL_SERVER_H
#define MST_CONTROL_CTL_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <mustang/ctl.h>

#include "control/emit.h"

/* Answer one request into *e; return 0 or a negative errno (sent as status). */
typedef int (*ctl_handler_fn)(void *ctx, enum mst_ctl_req req, const char *arg, struct emit *e);

struct ctl_server;

/*
 * Apps (MST_CTL_attach). attach() runs on the control thread for an
 * authorized peer; it fills fds (at most max; the server sends them with
 * the response and then closes them) and a short payload, and returns 0 or
 * -errno (payload then says why). detach() runs when that connection
 * closes, for whatever reason (the app exited, crashed, or misbehaved).
 */
struct ctl_app_hooks {
	int (*attach)(void *ctx, unsigned client, pid_t pid, uid_t uid, int *fds, unsigned max,
		      unsigned *n_fds, char *payload, size_t payload_len);
	void (*detach)(void *ctx, unsigned client);
};

/*
 * Create the parent directory if needed (0755), refuse to start if another
 * daemon answers on `path` (-EADDRINUSE), replace a stale socket file, bind,
 * chmod 0660, listen, and start the thread. Returns NULL with a one-line
 * reason in err.
 */
struct ctl_server *ctl_server_start(const char *path, ctl_handler_fn fn, void *ctx,
				    char *err, size_t errlen);
/* Stop the thread, close every client, unlink the socket file. */
/* Same, also serving app attach requests through hooks (copied). */
struct ctl_server *ctl_server_start_apps(const char *path, ctl_handler_fn fn, void *ctx,
					 const struct ctl_app_hooks *apps, char *err,
					 size_t errlen);
void ctl_server_stop(struct ctl_server *s);

/*
 * Live upgrade. In the old daemon, from inside the handler (the control
 * thread): the listening socket and the clients a new daemon can take over
 * (apps' lifelines and idle operators; not the client being answered);
 * after handing them over, ctl_server_handed_over(): the thread finishes
 * the answer it is writing and stops, closing only its own descriptors
 * (no app detach), and ctl_server_stop() leaves the socket file alone. In
 * the new daemon, ctl_server_adopt() serves those descriptors, each client
 * at the slot it had (apps are known by slot).
 */
struct ctl_handover_client {
	unsigned idx;             /* client slot */
	int fd;
	bool app;                 /* an attached app's lifeline */
	bool operator_ok;
};
int ctl_server_listen_fd(const struct ctl_server *s);
/* The connection whose request the handler is answering (-1 outside). */
int ctl_server_serving_fd(const struct ctl_server *s);
unsigned ctl_server_handover_list(const struct ctl_server *s, struct ctl_handover_client *out,
				  unsigned max);
void ctl_server_handed_over(struct ctl_server *s);
struct ctl_server *ctl_server_adopt(const char *path, ctl_handler_fn fn, void *ctx,
				   const struct ctl_app_hooks *apps, int listen_fd,
				   const struct ctl_handover_client *cls, unsigned n, char *err,
				   size_t errlen);
#define CTL_SERVER_MAX_CLIENTS 64
/* Client slots attached apps can never take: operators (mustangctl) keep
 * them, so a flood of attaches cannot lock the operator out. */
#define CTL_SERVER_OPERATOR_SLOTS 8

/* The server's own refusals, by name (`mustangctl stats`, "control"). */
#define CTL_FOREACH_CTR(X)                                                        \
	X(ctl_not_operator, "requests refused at their header: the peer is not an operator") \
	X(ctl_clients_full, "connections refused: every client slot taken (EBUSY)") \
	X(ctl_apps_full, "app attaches refused: the apps' share of client slots is taken (EMFILE)")
enum ctl_counter {
#define CTL_X_ENUM(name, help) CTL_CTR_##name,
	CTL_FOREACH_CTR(CTL_X_ENUM)
#undef CTL_X_ENUM
	CTL_CTR__COUNT
};
extern const char *const ctl_counter_names[CTL_CTR__COUNT];
/* A snapshot of the counters (any thread). */
void ctl_server_counters(const struct ctl_server *s, uint64_t out[CTL_CTR__COUNT]);

/* Operator check: root, the daemon's own uid, or the socket file's group. */
bool ctl_peer_is_operator(uid_t uid, gid_t gid, uid_t daemon_uid, gid_t sock_gid);

/* Client side, shared by mustangctl and tests (control/ctl_client.c).
 * Connect with a timeout; -ENOENT/-ECONNREFUSED when no daemon listens. */
int ctl_client_connect(const char *path, int timeout_ms);
/* Send one request and read the response payload (malloc'd, NUL terminated)
 * into *out; returns the response status (0 / -errno) or a transport error. */
int ctl_client_call(int fd, uint16_t type, const char *arg, char **out, size_t *out_len,
		    int timeout_ms);

#endif /* MST_CONTROL_CTL_SERVER_H */
