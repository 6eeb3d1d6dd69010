/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Mustang TCP: the API the engine, the built-in services and the in-process
 * harness (sim) use. Internal header.
 *
 * One struct tcp_stack per engine, bound to that engine's net_stack:
 *   tcp_create() registers tcp_input() as the net stack's TCP hook
 *   engine poll: net_input() -> ... -> tcp_input() (segment arrival)
 *                tcp_timer(now) (timer wheel: RTO, delayed ACK, persist,
 *                keepalive, TIME_WAIT, SYN-ACK retransmit)
 *   app side:    tcp_listen/accept/connect/send/recv/shutdown/close
 *                (never block: -EAGAIN / -EINPROGRESS), events by callback
 *
 * Connections are struct tcp_cb handles; a handle stays valid until the app
 * calls tcp_close() or tcp_abort() on it, even after the connection is reset
 * (then calls report the error).
 */
#ifndef MST_TCP_H
#define MST_TCP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <mustang/counters.h>

#include "transport/net/net.h"

struct tcp_stack;
struct tcp_cb;

/* X(name) — connection states, RFC 9293 §3.3.2 */
#define TCP_FOREACH_STATE(X) \
	X(CLOSED) X(LISTEN) X(SYN_SENT) X(SYN_RECEIVED) X(ESTABLISHED) X(FIN_WAIT_1) \
	X(FIN_WAIT_2) X(CLOSE_WAIT) X(CLOSING) X(LAST_ACK) X(TIME_WAIT)

enum tcp_state {
#define TCP_X_ENUM(n) TCP_##n,
	TCP_FOREACH_STATE(TCP_X_ENUM)
#undef TCP_X_ENUM
};
#define TCP_STATE__COUNT (TCP_TIME_WAIT + 1)
extern const char *const tcp_state_names[TCP_STATE__COUNT];

/* Events delivered to the owner of a connection. */
#define TCP_EV_READABLE (1u << 0) /* data or EOF to read */
#define TCP_EV_WRITABLE (1u << 1) /* TX space became available */
#define TCP_EV_ACCEPT (1u << 2)   /* listener: a connection is ready to accept */
#define TCP_EV_CONNECTED (1u << 3)
#define TCP_EV_CLOSED (1u << 4)   /* reset, timed out or fully closed */

typedef void (*tcp_event_fn)(void *ctx, struct tcp_cb *c, uint32_t events);

struct tcp_conf {
	uint32_t max_conns;        /* control blocks per stack (default 131072) */
	uint32_t rx_buf;           /* default RX FIFO bytes (power of 2, default 256 KiB) */
	uint32_t tx_buf;           /* default TX FIFO bytes (power of 2, default 256 KiB) */
	uint32_t rx_buf_max;       /* largest receive window a connection may grow to; the
				    * window scale is picked for it (0 = rx_buf) */
	uint32_t rto_min_ms;       /* default 200 */
	uint32_t rto_max_ms;       /* default 60000 */
	uint32_t rto_initial_ms;   /* default 1000 (RFC 6298) */
	uint32_t timewait_ms;      /* 2*MSL, default 60000 */
	uint32_t delack_ms;        /* default 40 */
	uint32_t syn_retries;      /* default 6 */
	uint32_t synack_retries;   /* default 5 */
	uint32_t keepidle_s;       /* default 7200 */
	uint32_t keepintvl_s;      /* default 75 */
	uint32_t keepcnt;          /* default 9 */
	uint32_t challenge_ack_per_s; /* per connection, default 10 */
	const char *cc;            /* congestion control by name, default "cubic" */
	bool sack;                 /* offer SACK, default true */
	bool timestamps;           /* offer timestamps, default true */
	bool wscale;               /* offer window scaling, default true */
	bool syncookies;           /* use SYN cookies when the SYN queue is full, default true */
	uint16_t eph_lo, eph_hi;   /* ephemeral ports, host order, inclusive (default 32768..60999) */
	uint32_t tw_reuse_delay_ms; /* an active open may reuse our TIME_WAIT tuple (timestamps on)
				     * this long after its last segment, default 1000 (as Linux) */
};

void tcp_conf_defaults(struct tcp_conf *c);

/* NULL + errno (EINVAL, ENOMEM, ENOENT for an unknown cc). */
struct tcp_stack *tcp_create(struct net_stack *ns, const struct tcp_conf *conf,
			     struct mst_stats *stats, uint64_t now_ns);
void tcp_destroy(struct tcp_stack *ts);
/* Active opens pick only ephemeral ports ok() accepts (addresses/ports in
 * network order): with several engines, ports whose replies come back to
 * this engine. */
void tcp_set_port_filter(struct tcp_stack *ts,
			 bool (*ok)(void *ctx, uint32_t raddr, uint16_t rport, uint16_t lport), void *ctx);
/* The FIFO sizes new connections get (after rounding). */
void tcp_buffer_sizes(const struct tcp_stack *ts, uint32_t *rx, uint32_t *tx);
/* Run due timers and pending output; returns units of work done. */
unsigned tcp_timer(struct tcp_stack *ts, uint64_t now_ns);
/* Send the ACKs segment processing left owed. Call after each RX burst:
 * all segments of a connection in one burst get one ACK (like GRO). */
void tcp_flush_acks(struct tcp_stack *ts);
/* Stack-wide event sink for connections without their own. */
void tcp_set_default_handler(struct tcp_stack *ts, tcp_event_fn fn, void *ctx);

/* Segment arrival (the net stack calls this; p->data at the TCP header). */
void tcp_input(void *stack, struct mst_pkt *p, uint32_t src, uint32_t dst, uint64_t now_ns);
/* ICMP destination-unreachable / fragmentation-needed quoting one of ours. */
void tcp_icmp_error(void *stack, uint8_t type, uint8_t code, uint16_t next_mtu,
		    const uint8_t *quoted, unsigned quoted_len, uint64_t now_ns);

/*
 * Where a connection's socket buffers (FIFOs) live. NULL ops = the heap.
 * An app's connections use FIFOs inside its shared segment: the provider
 * hands out memory for c and gets it back when the control block is freed
 * (which may be long after the app closed it: FIN_WAIT, TIME_WAIT).
 */
struct tcp_fifo_ops {
	/* Fill *rx / *tx (rx_size / tx_size bytes); return a cookie, NULL = no memory. */
	void *(*alloc)(void *ctx, struct tcp_cb *c, uint8_t **rx, uint8_t **tx, uint32_t rx_size,
		       uint32_t tx_size);
	void (*free)(void *ctx, struct tcp_cb *c, void *cookie);
	void *ctx;
};

/* ---- the socket-shaped API (negative errno on failure) ---------------- */
/* Children of the listener get their FIFOs from fops (NULL = heap). */
int tcp_listen(struct tcp_stack *ts, uint16_t port, int backlog, tcp_event_fn fn, void *ctx,
	       const struct tcp_fifo_ops *fops, struct tcp_cb **out);
/* -EAGAIN when nothing is ready. The new connection inherits fn/ctx. */
int tcp_accept(struct tcp_stack *ts, struct tcp_cb *listener, struct tcp_cb **out);
/* Active open; lport 0 = ephemeral (RFC 6056 Algorithm 4). Returns 0
 * (connection in SYN_SENT); -EADDRNOTAVAIL when every ephemeral port to
 * dst:dport is taken by a connection that may not be reused, -EADDRINUSE
 * when lport's tuple is. A TIME_WAIT of ours on the tuple is reused when
 * timestamps make that safe (RFC 6191, Linux's tcp_tw_reuse). */
int tcp_connect(struct tcp_stack *ts, uint32_t dst, uint16_t dport, uint16_t lport,
		tcp_event_fn fn, void *ctx, const struct tcp_fifo_ops *fops, struct tcp_cb **out);
/* Same, with TCP_MAXSEG set before connect (0 = none): the SYN announces
 * at most user_mss and segments we send are no larger. */
int tcp_connect_mss(struct tcp_stack *ts, uint32_t dst, uint16_t dport, uint16_t lport,
		    uint16_t user_mss, tcp_event_fn fn, void *ctx, const struct tcp_fifo_ops *fops,
		    struct tcp_cb **out);
/* Bytes queued (maybe short), -EAGAIN when full, -EPIPE after shutdown,
 * -ENOTCONN before the handshake, -ECONNRESET etc. after an error. */
ssize_t tcp_send(struct tcp_stack *ts, struct tcp_cb *c, const void *buf, size_t len);
/* Bytes read, 0 at EOF, -EAGAIN when empty, -error after a reset. */
ssize_t tcp_recv(struct tcp_stack *ts, struct tcp_cb *c, void *buf, size_t len);
/* Zero-copy FIFO access (apps in shared memory): the owner produced n bytes
 * at the TX FIFO's tail / consumed n bytes at the RX FIFO's head. -EINVAL
 * if n is more than the FIFO allows; sends data / a window update. */
int tcp_tx_produced(struct tcp_stack *ts, struct tcp_cb *c, uint32_t n);
int tcp_rx_consumed(struct tcp_stack *ts, struct tcp_cb *c, uint32_t n);
/* FIFO counters (free-running) for mirroring into shared memory. */
void tcp_fifo_state(const struct tcp_cb *c, uint32_t *rx_head, uint32_t *rx_tail,
		    uint32_t *tx_head, uint32_t *tx_tail);
/* The cookie the connection's fifo_ops->alloc() returned. */
void *tcp_fifo_cookie(const struct tcp_cb *c);
/* Peer's FIN consumed (EOF after the readable bytes); pending error. */
bool tcp_eof(const struct tcp_cb *c);
int tcp_error(const struct tcp_cb *c);
/* Listener: connections waiting in the accept queue. */
unsigned tcp_accept_pending(struct tcp_stack *ts, struct tcp_cb *listener);
/* Bytes readable now / TX space now. */
size_t tcp_readable(const struct tcp_cb *c);
size_t tcp_writable(const struct tcp_cb *c);
/* SHUT_RD=0, SHUT_WR=1, SHUT_RDWR=2 */
int tcp_shutdown(struct tcp_stack *ts, struct tcp_cb *c, int how);
/* Graceful close (FIN after queued data; RST if unread data remains, as
 * RFC 9293 §3.10.4 / Linux). The handle is invalid afterwards. */
void tcp_close(struct tcp_stack *ts, struct tcp_cb *c);
/* Send RST and release. The handle is invalid afterwards. */
void tcp_abort(struct tcp_stack *ts, struct tcp_cb *c);

enum tcp_sockopt {
	TCP_SO_NODELAY,    /* bool */
	TCP_SO_KEEPALIVE,  /* bool */
	TCP_SO_KEEPIDLE,   /* seconds */
	TCP_SO_KEEPINTVL,  /* seconds */
	TCP_SO_KEEPCNT,
	TCP_SO_MAXSEG,     /* before connect: MSS we announce */
	TCP_SO_RCVBUF,     /* before connect/listen: bytes (rounded to a power of 2) */
	TCP_SO_SNDBUF,
	TCP_SO_CONGESTION, /* by index into the cc registry: use tcp_set_cc() */
	TCP_SO_ERROR,      /* read only: pending error (positive errno), cleared */
	TCP_SO_STATE,      /* read only: enum tcp_state */
	TCP_SO_LINGER0,    /* bool: close() sends RST */
};
int tcp_setopt(struct tcp_stack *ts, struct tcp_cb *c, enum tcp_sockopt opt, int val);
int tcp_getopt(struct tcp_stack *ts, struct tcp_cb *c, enum tcp_sockopt opt, int *val);
int tcp_set_cc(struct tcp_stack *ts, struct tcp_cb *c, const char *name);
const char *tcp_get_cc(const struct tcp_cb *c);

/* Introspection. */
struct tcp_conn_info {
	enum tcp_state state;
	uint32_t laddr, raddr;  /* network order */
	uint16_t lport, rport;  /* host order */
	uint32_t snd_una, snd_nxt, snd_wnd, rcv_nxt, rcv_wnd;
	uint32_t cwnd, ssthresh, srtt_us, rttvar_us, rto_ms, mss;
	uint8_t snd_wscale, rcv_wscale;
	bool sack, timestamps;
	uint32_t retransmits;
	uint64_t bytes_acked, bytes_received;
};
void tcp_get_info(const struct tcp_cb *c, struct tcp_conn_info *out);
enum tcp_state tcp_state_of(const struct tcp_cb *c);
void *tcp_user(const struct tcp_cb *c);
void tcp_set_user(struct tcp_cb *c, void *user);
unsigned tcp_conn_count(const struct tcp_stack *ts);
uint32_t tcp_max_conns(const struct tcp_stack *ts);
size_t tcp_cb_size(void);
/* Iterate every connection (not listeners); stops when fn returns non-zero. */
int tcp_foreach(struct tcp_stack *ts, int (*fn)(struct tcp_cb *c, void *arg), void *arg);

/* Built-in services: echo (7), discard (9), chargen (19) — RFC 862/863/864. */
#define TCP_SVC_ECHO (1u << 0)
#define TCP_SVC_DISCARD (1u << 1)
#define TCP_SVC_CHARGEN (1u << 2)
int tcp_services_start(struct tcp_stack *ts, uint32_t services);

/*
 * Live upgrade (tcp_state.c; format in common/state.h). Every control
 * block, listener, accept queue, the TIME_WAIT list and the stack's secrets
 * are written as plain records: references are pool indices, timers
 * absolute deadlines, the congestion control its registry name plus its
 * plain state. Heap FIFOs (built-in services) go by content; FIFOs an
 * owner provided (apps: slots in their segments) stay where they are and
 * the owner says how to find them again.
 */
struct mst_state_writer;

/* Who owns a connection's FIFOs and events (filled by the owner's hook). */
enum tcp_owner_kind {
	TCP_OWNER_STACK = 0, /* heap FIFOs, the stack's default handler or a
			      * built-in service (tcp_state.c handles these) */
	TCP_OWNER_EXT = 1,   /* an owner outside TCP (an app): ids below */
};
struct tcp_owner {
	uint32_t kind;       /* enum tcp_owner_kind */
	int32_t app_id;      /* EXT: which app */
	uint32_t sock;       /* EXT: socket index in that app, UINT32_MAX: none
			      * (the app closed it; the connection finishes) */
	uint32_t pad;
	uint64_t cookie;     /* EXT: the fifo_ops cookie (e.g. FIFO slot + 1) */
};

struct tcp_state_hooks {
	/* Export: fill o for c (a connection or a listener); kind must be EXT.
	 * Called for every control block that has fifo_ops, an event callback
	 * or a user pointer and is not a built-in service's: also an app
	 * listener's children not accepted yet (fifo_ops set, no callback, no
	 * user: sock UINT32_MAX) and connections the app closed that finish. */
	void (*owner)(void *ctx, const struct tcp_cb *c, struct tcp_owner *o);
	/* Import: give c (already in its state, FIFO counters set) its FIFO
	 * memory, fifo_ops, event callback and user pointer for owner o, e.g.
	 * with tcp_adopt(). The FIFO data pointers are NULL, except for FIFOs
	 * that were on the heap (fifo_ops NULL at export): those travel by
	 * content, are already allocated and filled, and must stay (adopt
	 * with fops NULL). -errno refuses the state (unknown app, slot
	 * taken...). */
	int (*adopt)(void *ctx, struct tcp_cb *c, const struct tcp_owner *o);
	void *ctx;
};

/* For adopt hooks: bind c to its owner's memory and callbacks. rx/tx must
 * be rx_size/tx_size bytes as exported (tcp_fifo_sizes()). fops NULL: the
 * FIFOs stay on the heap and rx/tx/cookie are ignored (only fn, ctx, user
 * are set). */
void tcp_adopt(struct tcp_cb *c, uint8_t *rx, uint8_t *tx, const struct tcp_fifo_ops *fops,
	       void *cookie, tcp_event_fn fn, void *ctx, void *user);
void tcp_fifo_sizes(const struct tcp_cb *c, uint32_t *rx_size, uint32_t *tx_size);
bool tcp_is_listener(const struct tcp_cb *c);

/* Write the stack's whole state (TCP_STACK, then TCP_CB [+ TCP_FIFO_DATA]
 * per block in pool order, TCP_LISTENER per listener, TCP_TW_ORDER; the
 * layouts are in tcp_state.h). Call between polls: pending ACKs are sent
 * and pending events delivered first (callbacks run). 0 or -errno:
 * -ENOTSUP a block needs its owner and h has no owner hook, -EBUSY an
 * import is in progress, -ENOMEM (a writer overflow is not an error: the
 * caller sees -ENOSPC from mst_sw_finish()). */
int tcp_export(struct tcp_stack *ts, struct mst_state_writer *w, const struct tcp_state_hooks *h);
/* Import into a stack just created with the same max_conns and holding no
 * connection (built-in services not started: the state restarts the ones
 * that ran, with their listeners and connections): feed every TCP_*
 * record in order, then tcp_import_finish(). A refused state leaves the
 * stack to be destroyed (tcp_destroy() frees all of it). 0 or -errno:
 * -EINVAL / -EBADMSG malformed, -ENOENT unknown congestion control,
 * -EEXIST a duplicate index, 4-tuple or listening port, -ERANGE an index
 * beyond max_conns, -EBUSY the stack is not fresh, -ENOTSUP an app block
 * and no adopt hook, -ENOMEM, or what the adopt hook returned. Heap FIFOs
 * may be up to max(16 MiB, the stack's rx_buf/tx_buf) each. */
int tcp_import_rec(struct tcp_stack *ts, unsigned type, const void *payload, uint32_t len,
		   const struct tcp_state_hooks *h);
/* Rebuild the hash, free list, listener table, accept queues and the
 * TIME_WAIT list, re-arm every timer from its deadline; check that every
 * reference resolved. 0 or -errno. */
int tcp_import_finish(struct tcp_stack *ts, const struct tcp_state_hooks *h);

/*
 * Flow records (tcp_flow.c; docs/observability.md). Off unless an owner
 * sets a hook: then the stack calls it once when a connection ends (its
 * close reason set) and, through tcp_flow_scan(), for long-lived ones
 * every interval. The hook runs on the engine thread and must not block.
 */
/* X(name, class, help) — why a connection ended; class groups them
 * ("fin", "reset_by_peer", "reset_by_us", "timeout", "app_died", "other"). */
#define TCP_FOREACH_CLOSE_REASON(X)                                                    \
	X(open, "open", "still open (a periodic record)")                             \
	X(fin, "fin", "orderly close: both FINs sent and acknowledged")              \
	X(reset_by_peer, "reset_by_peer", "the peer sent an acceptable RST")         \
	X(refused, "reset_by_peer", "our SYN was answered with RST (connection refused)") \
	X(app_abort, "reset_by_us", "the app aborted it (SO_LINGER 0, or close before connecting)") \
	X(unread_data, "reset_by_us", "the app closed with unread received data (RFC 9293 3.10.4)") \
	X(listener_closed, "reset_by_us", "its listener closed before it was accepted") \
	X(data_after_close, "reset_by_us", "data arrived after the app closed: nobody can read it") \
	X(accept_queue_full, "reset_by_us", "handshake done but the listener's accept queue was full") \
	X(app_died, "app_died", "the owning app exited or crashed: reset by us")     \
	X(rto_timeout, "timeout", "retransmissions exhausted (RFC 9293 R2)")         \
	X(syn_timeout, "timeout", "SYN or SYN-ACK retransmissions exhausted")        \
	X(keepalive_timeout, "timeout", "keepalive probes unanswered")              \
	X(fin_timeout, "timeout", "FIN_WAIT_2 orphan timed out")                     \
	X(tw_recycled, "other", "TIME_WAIT ended early (pool full or tuple reused)") \
	X(unknown, "other", "ended for a reason this list does not name (a bug)")

enum tcp_close_reason {
#define TCP_X_ENUM(n, cls, help) TCP_CLOSE_##n,
	TCP_FOREACH_CLOSE_REASON(TCP_X_ENUM)
#undef TCP_X_ENUM
	TCP_CLOSE__COUNT
};
extern const char *const tcp_close_reason_names[TCP_CLOSE__COUNT];
extern const char *const tcp_close_reason_class[TCP_CLOSE__COUNT];

/* One connection's life so far. Times CLOCK_MONOTONIC ns. */
struct tcp_flow_info {
	uint32_t laddr, raddr;        /* network order */
	uint16_t lport, rport;        /* host order */
	uint8_t state;                /* enum tcp_state */
	uint8_t reason;               /* enum tcp_close_reason (open: periodic) */
	bool passive;                 /* accepted (the peer opened it) */
	const void *owner;            /* the fifo_ops ctx (an app), NULL: the stack's */
	uint64_t start_ns, end_ns;    /* end: now for an open flow */
	uint64_t bytes_acked;         /* our data the peer acknowledged */
	uint64_t bytes_received;      /* the peer's data we took in order */
	uint64_t bytes_sent;          /* data bytes put on the wire, retransmissions too */
	uint64_t segs_out, segs_in;   /* every segment, pure ACKs and SYN/FIN too */
	uint32_t retransmits;         /* segments sent again (RTO, fast, SACK recovery) */
	uint32_t rto_count;           /* retransmission timeouts */
	uint32_t recoveries;          /* fast-recovery episodes (3 dupACKs / SACK) */
	uint32_t srtt_us, min_rtt_us, last_rtt_us;
	uint32_t max_cwnd;            /* bytes */
	uint32_t mss;
};

typedef void (*tcp_flow_fn)(void *ctx, const struct tcp_flow_info *f);
/* fn NULL: off. */
void tcp_set_flow_hook(struct tcp_stack *ts, tcp_flow_fn fn, void *ctx);
/* Why c is about to end, when the stack cannot tell (the app layer: its
 * owner died). The first reason set wins. */
void tcp_set_close_reason(struct tcp_cb *c, enum tcp_close_reason r);
void tcp_flow_get(const struct tcp_stack *ts, const struct tcp_cb *c, struct tcp_flow_info *out);
/* Periodic records: every open connection whose last record (or start) is
 * interval_ns old gets one. Call from the engine's timer (cheap when off). */
void tcp_flow_scan(struct tcp_stack *ts, uint64_t interval_ns);

#endif /* MST_TCP_H */
