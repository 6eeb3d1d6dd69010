/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Pony record payloads of the engine state (live upgrade, DESIGN §5;
 * framing in common/state.h) and the core's export/import. These layouts
 * are part of the format: change one and MST_STATE_VERSION must be
 * bumped, with a migration step for the old layout. Explicit-width
 * fields, host order (addresses stay network order, as in the core),
 * references are pool indices (PONY_STATE_NONE: none), times absolute
 * CLOCK_MONOTONIC ns (0: not armed). Internal header: engines and tests.
 *
 * Record order written by pony_export() and required by the importer:
 *   PONY_STACK                       once, first
 *   per flow, in the active-list order:
 *     PONY_FLOW                      the flow, its slots, rx map, control queue
 *     PONY_STREAM*                   its stream entries (list order), then its
 *                                    two READ queues (requests, responses)
 *     PONY_MSG*                      its messages (list order)
 *
 * Pointers the core holds for the app (a SEND's bytes, a READ's
 * destination) travel as references the owner's hooks make and check
 * (app segments are not copied: the new engine maps the same memfds).
 */
#ifndef MST_PONY_STATE_H
#define MST_PONY_STATE_H

#include <stdbool.h>
#include <stdint.h>

#define PONY_STATE_NONE UINT32_MAX
#define PONY_STATE_NO_BUF UINT64_MAX

/* PONY_STACK */
struct pony_state_stack {
	uint64_t key[2];                /* SipHash key: epochs, address tokens */
	uint64_t epoch_ctr;             /* epochs made so far */
	uint64_t next_scan;             /* timer scan deadline */
	uint32_t max_flows, max_msgs;   /* pool sizes: the importer's must be the same */
	uint32_t max_streams, win;      /* stream ids, window (power of 2): the same */
	uint32_t seg;                   /* payload bytes per packet (the MTU): the same */
	uint32_t n_flows;               /* PONY_FLOW records that follow */
	uint32_t n_ready, n_acks;       /* flows to push, flows owing an ACK */
};
_Static_assert(sizeof(struct pony_state_stack) == 64, "PONY_STACK layout");

/* PONY_FLOW: fixed part, then uint64_t rcv_map[win / 64], struct
 * pony_state_slot slots[snd_nxt - snd_una] (psn snd_una up), struct
 * pony_state_ctrl ctrl[ctrl_tail - ctrl_head] (oldest first). */
struct pony_state_flow {
	uint32_t index;                 /* pool index: the flow's identity */
	uint32_t peer;                  /* network order */
	uint32_t my_epoch, peer_epoch;  /* kept: the peer sees the same incarnation */
	uint32_t snd_una, snd_nxt, inflight, lost;
	uint32_t lost_cursor, order, peer_cum, peer_credits;
	uint32_t cwnd_milli, rr_head, rr_tail, next_msg_id;
	uint32_t rcv_nxt, rcv_max, rx_unacked, ctrl_head;
	uint32_t ctrl_tail, srtt_ns, rttvar_ns, min_rtt_ns;
	uint32_t last_rtt_ns, rto_ns, retries, rto_probe_psn;
	uint32_t rto_undo_cwnd, rto_floor_ns, n_tx, n_rx;
	uint32_t n_reads, n_peer, n_rx_streams, n_streams; /* n_streams: PONY_STREAM records */
	uint32_t n_msgs;                /* PONY_MSG records */
	uint32_t lru_rank;              /* 0 = most recently active */
	uint32_t ready_rank, ack_rank;  /* place on the ready / ACK list, NONE: not on it */
	uint8_t peer_busy, lost_cursor_valid, rx_busy, pad0;
	uint32_t pad1;
	uint64_t ack_due, echo_ts, echo_at, min_rtt_at;
	uint64_t rto_at, rto_probe_at, rto_floor_at, last_decrease;
	uint64_t last_rx, last_active, rx_progress_at;
	uint64_t tx_pkts, rx_pkts, tx_bytes, rx_bytes;
	uint64_t retransmits, timeouts, msgs_sent, msgs_delivered;
};
_Static_assert(sizeof(struct pony_state_flow) == 320, "PONY_FLOW layout");

struct pony_state_slot {
	uint64_t sent_ns;
	uint32_t msg, off, order;       /* msg: message index (NAK/READ_ERR: the peer's id) */
	uint16_t len;
	uint8_t type, state, rexmit, pad[7];
};
_Static_assert(sizeof(struct pony_state_slot) == 32, "PONY_FLOW slot layout");

struct pony_state_ctrl {
	uint32_t type, id, err;
};
_Static_assert(sizeof(struct pony_state_ctrl) == 12, "PONY_FLOW ctrl layout");

/* PONY_STREAM */
struct pony_state_stream {
	uint32_t index, flow;
	uint16_t local_svc, remote_svc;
	uint32_t id;
	uint8_t rx, in_rr, pad[2];
	uint32_t seq, head, tail, wait;
	uint32_t rr_next;
};
_Static_assert(sizeof(struct pony_state_stream) == 40, "PONY_STREAM layout");

/* PONY_MSG */
struct pony_state_msg {
	uint32_t index, flow;
	uint8_t kind, flags;
	uint16_t src_svc, dst_svc, pad0;
	uint32_t id, stream, stream_id, seq;
	uint32_t len, done, unacked;
	int32_t status;
	uint32_t next, pad1;
	uint64_t key, roff, cookie;
	uint64_t buf;                   /* SEND's bytes / READ's destination: the hook's
					 * reference, PONY_STATE_NO_BUF: none */
};
_Static_assert(sizeof(struct pony_state_msg) == 88, "PONY_MSG layout");

struct pony;
struct mst_state_writer;

/* The owner of the app memory behind messages (the engine's app layer). */
struct pony_state_hooks {
	/* Export: the reference of p, a buffer of the endpoint bound to svc. */
	uint64_t (*buf_ref)(void *ctx, uint16_t svc, const void *p);
	/* Import: the buffer of len bytes behind ref for the message cookie of
	 * svc (write: a READ's destination), or NULL: refused. */
	void *(*buf_ptr)(void *ctx, uint16_t svc, uint64_t cookie, uint64_t ref, uint32_t len,
			 bool write);
	/* Import: a message begun for svc (rx_begin gave it cookie) is the
	 * owner's; 0 or -errno. */
	int (*rx_adopt)(void *ctx, uint16_t svc, uint64_t cookie, uint32_t len);
	void *ctx;
};

/* Between polls: every record, or -EBUSY (completions not handed out). */
int pony_export(const struct pony *py, struct mst_state_writer *w, const struct pony_state_hooks *h);
/* Into an instance fresh from pony_create() with the same pool sizes,
 * window and MTU: every PONY_STACK/FLOW/STREAM/MSG record in order, then
 * pony_import_finish(). 0 or -errno (-EINVAL / -EBADMSG malformed, -ERANGE
 * an index beyond a pool, -EEXIST a duplicate, -EBUSY not fresh). A
 * refused state leaves an instance only pony_destroy() may touch. */
int pony_import_rec(struct pony *py, unsigned type, const void *payload, uint32_t len,
		    const struct pony_state_hooks *h);
/* Check every reference and count, rebuild the hashes, lists and free
 * lists. No state imported: 0 (the instance stays fresh). */
int pony_import_finish(struct pony *py);

#endif /* MST_PONY_STATE_H */
