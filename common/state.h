/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The engine state format (live upgrade, DESIGN §5): what export_state()
 * writes and import_state() reads. Internal header; DPDK-free.
 *
 *   header  struct mst_state_hdr (magic, format version, total length,
 *           record count)
 *   records struct mst_state_rec (type, length) + payload, each padded to
 *           8 bytes, in the order the writer put them
 *
 * Payloads are plain data: fixed-layout structs of explicit-width fields
 * in host byte order (a state segment never leaves the machine), with
 * every reference an index (connection pool index, app id, socket index),
 * never a pointer, and every time an absolute CLOCK_MONOTONIC deadline in
 * ns (the clock is system-wide, so it means the same in the new process).
 *
 * Versions: MST_STATE_VERSION is bumped whenever a payload changes. A
 * reader accepts its own version and every older one it has a migration
 * step for (mst_state_migrate table in the importer), and refuses a newer
 * one with -EPROTONOSUPPORT; anything malformed is -EINVAL (-EBADMSG for a
 * record whose payload does not fit its type), never a crash.
 *
 *   mst_sw_init() -> mst_sw_rec()* -> mst_sw_finish()      (writer)
 *   mst_sr_init() -> mst_sr_next()* until 0                (reader)
 */
#ifndef MST_COMMON_STATE_H
#define MST_COMMON_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MST_STATE_MAGIC 0x5354534du /* "MSTS" */
#define MST_STATE_VERSION 1u
#define MST_STATE_ALIGN 8u

/* X(name, value, help) — record types. Values are part of the format:
 * never reuse or renumber one. */
#define MST_FOREACH_STATE_REC(X)                                               \
	X(ENGINE, 1, "engine identity: id, address, MAC (checked on import)")    \
	X(ARP, 2, "one ARP cache entry (resolved neighbours only)")             \
	X(TCP_STACK, 3, "TCP stack: ISN/cookie secret, clock base, port cursor") \
	X(TCP_CB, 4, "one TCP control block, any state, timers as deadlines")   \
	X(TCP_FIFO_DATA, 5, "bytes of a heap FIFO (built-in services) of the previous TCP_CB") \
	X(TCP_LISTENER, 6, "a listening socket: pool index, backlog, accept queue order") \
	X(TCP_TW_ORDER, 7, "the TIME_WAIT list, oldest first (pool indices)")   \
	X(APP, 8, "an attached app: id, ring positions")                        \
	X(APP_SOCK, 9, "one socket of the previous APP")                        \
	X(COUNTERS, 10, "the engine's counters, by name")                       \
	X(END, 11, "end of the state (nothing may follow)")                   \
	X(TCP_EPH, 12, "TCP: the RFC 6056 per-destination port counters")         \
	X(PONY_STACK, 13, "Pony: keys, epoch counter, pool sizes, scan deadline") \
	X(PONY_FLOW, 14, "one Pony flow: epochs, windows, CC, slots, rx map, control queue") \
	X(PONY_STREAM, 15, "one stream entry of the previous PONY_FLOW")        \
	X(PONY_MSG, 16, "one message or READ of the previous PONY_FLOW")         \
	X(PONY_EP, 17, "one Pony endpoint of the previous APP: ring, ops, buffers, regions") \
	X(TCP_FLOW, 25, "TCP: flow-record statistics of the previous TCP_CB")

enum mst_state_rec_type {
#define MST_X_ENUM(name, val, help) MST_STATE_REC_##name = val,
	MST_FOREACH_STATE_REC(MST_X_ENUM)
#undef MST_X_ENUM
};

struct mst_state_hdr {
	uint32_t magic;      /* MST_STATE_MAGIC */
	uint32_t version;    /* MST_STATE_VERSION of the writer */
	uint64_t total_len;  /* header + records, bytes */
	uint32_t n_records;
	uint32_t hdr_len;    /* sizeof(struct mst_state_hdr) */
	uint64_t created_ns; /* CLOCK_MONOTONIC at export */
};
_Static_assert(sizeof(struct mst_state_hdr) == 32, "state header layout");

struct mst_state_rec {
	uint16_t type;       /* enum mst_state_rec_type */
	uint16_t reserved;   /* 0 */
	uint32_t len;        /* payload bytes (the padding to 8 not included) */
};
_Static_assert(sizeof(struct mst_state_rec) == 8, "state record layout");

/* Name of a record type ("?" when unknown). */
const char *mst_state_rec_name(unsigned type);

struct mst_state_writer {
	uint8_t *buf;
	size_t cap;
	size_t pos;          /* bytes the state needs so far (may exceed cap) */
	uint32_t n_records;
};

void mst_sw_init(struct mst_state_writer *w, void *buf, size_t cap, uint64_t now_ns);
/* Room for a record of len payload bytes, zeroed; NULL when it does not fit
 * (the writer keeps counting, so mst_sw_finish() can say how much is
 * needed). */
void *mst_sw_rec(struct mst_state_writer *w, unsigned type, uint32_t len);
/* Append an END record and fill in the header. Bytes written, or -ENOSPC
 * with *need (if not NULL) set to the size the state needs. */
long mst_sw_finish(struct mst_state_writer *w, size_t *need);

struct mst_state_reader {
	const uint8_t *buf;
	size_t len;          /* total_len from the header, checked <= buffer */
	size_t pos;
	uint32_t version;    /* the writer's format version */
	uint32_t left;       /* records not yet read */
	bool ended;          /* END seen */
};

/* 0, -EINVAL (not a state / truncated / inconsistent header),
 * -EPROTONOSUPPORT (written by a newer version than this reader). */
int mst_sr_init(struct mst_state_reader *r, const void *buf, size_t len);
/* 1 and the next record, 0 after END (only END may end a state: a state
 * without one is -EINVAL), -EINVAL when a record does not fit. The payload
 * pointer is 8-byte aligned relative to the buffer start. */
int mst_sr_next(struct mst_state_reader *r, unsigned *type, const void **payload, uint32_t *len);

/* A record's payload copied into a fixed struct: 0, or -EBADMSG unless the
 * payload is exactly `size` bytes (a payload of another size is another
 * version of the record, which the importer must have migrated). */
int mst_state_take(void *dst, size_t size, const void *payload, uint32_t len);

#endif /* MST_COMMON_STATE_H */
