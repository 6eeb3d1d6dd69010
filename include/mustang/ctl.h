/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The mustangd control protocol (operators and, later, apps).
 *
 * A UNIX stream socket (default MST_CTL_DEFAULT_PATH). Each message, in both
 * directions, is a fixed 16-byte header followed by `len` payload bytes:
 *
 *   magic u32 | version u16 | type u16 | status i32 | len u32   (little endian)
 *
 * Requests carry a NUL-free text argument in the payload (may be empty).
 * Responses echo the request type, set status to 0 or a negative errno and
 * carry text (human form or JSON, as the request's flags asked).
 * attach (apps): the response's payload is "app_id N qps Q" and, in the
 * same sendmsg(), SCM_RIGHTS carries 2 + Q descriptors: the segment memfd
 * (see <mustang/shm_abi.h>), one eventfd per queue pair in qp order, then
 * the engine's doorbell eventfd (see mst_shm_hdr.engine_sleeping).
 * The connection then stays open without a deadline: it is the app's
 * lifeline; when it closes the daemon resets the app's connections and
 * reclaims its segment. An attached connection accepts no other request.
 * A peer that sends a bad magic, an unknown version or a payload over
 * MST_CTL_MAX_PAYLOAD gets an error response and is disconnected.
 */
#ifndef MUSTANG_CTL_H
#define MUSTANG_CTL_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MST_CTL_DEFAULT_PATH "/run/mustang/mustang.sock"
#define MST_CTL_MAGIC 0x4d53544eu /* "MSTN" */
#define MST_CTL_VERSION 1
#define MST_CTL_MAX_PAYLOAD (1u << 20)

/* X(name, value, help) — request types. */
#define MST_FOREACH_CTL_REQ(X)                                  \
	X(status, 1, "daemon summary")                          \
	X(ports, 2, "ports and their link and counters")        \
	X(engines, 3, "engines, their mode and load")           \
	X(stats, 4, "every counter, by port, engine and reason")    \
	X(conns, 5, "TCP connections: state, addresses, windows, RTT")   \
	X(attach, 6, "app attach: the response carries the segment memfd and eventfds") \
	X(pony, 7, "Pony flows: peer, RTT, cwnd, rate, in flight, retransmits, streams") \
	X(engine_restart, 8, "engine restart ID: hand engine ID over to a new engine with all its state (live upgrade in one process)") \
	X(upgrade, 9, "replace this mustangd by a new process that takes over every app, connection and port") \
	X(takeover, 10, "sent by a new mustangd (--takeover): this connection becomes the takeover channel") \
	X(flows, 11, "flow records: per connection, app, bytes, segments, RTT, close reason") \
	X(metrics, 12, "every counter, drop reason and histogram in the Prometheus text format")

enum mst_ctl_req {
#define MST_X_ENUM(name, val, help) MST_CTL_##name = val,
	MST_FOREACH_CTL_REQ(MST_X_ENUM)
#undef MST_X_ENUM
};

/* Request flags, carried in the high bits of `type`. */
#define MST_CTL_F_JSON 0x8000u
#define MST_CTL_TYPE_MASK 0x00ffu

struct mst_ctl_hdr {
	uint32_t magic;   /* MST_CTL_MAGIC */
	uint16_t version; /* MST_CTL_VERSION */
	uint16_t type;    /* enum mst_ctl_req | MST_CTL_F_* */
	int32_t status;   /* responses: 0 or -errno; requests: 0 */
	uint32_t len;     /* payload bytes that follow */
};

#ifdef __cplusplus
static_assert(sizeof(struct mst_ctl_hdr) == 16, "wire header is 16 bytes");
#else
_Static_assert(sizeof(struct mst_ctl_hdr) == 16, "wire header is 16 bytes");
#endif

#ifdef __cplusplus
}
#endif
#endif /* MUSTANG_CTL_H */
