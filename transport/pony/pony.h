/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Pony: reliable messaging between Mustang hosts (the wire protocol is in
 * docs/pony.md). Internal header: engines and tests only.
 *
 * One struct pony per engine. Single-threaded, never blocks, never
 * allocates after pony_create() (flows, messages and streams come from
 * pools sized by struct pony_conf; a peer cannot make it allocate).
 *
 * Model
 *   flow     one per peer host (IPv4 address), created on first use (a send,
 *            a read, or a valid packet from the peer), torn down after
 *            idle_timeout_ms without traffic or outstanding work.
 *   service  a 16-bit number, the Pony "port" an endpoint binds; a message
 *            goes from (host, src_svc) to (peer, dst_svc).
 *   stream   (flow, src_svc, dst_svc, stream id): messages on one stream are
 *            delivered in the order they were sent; different streams are
 *            independent (a large or lossy message never holds another
 *            stream back: the sender interleaves streams packet by packet and
 *            the receiver delivers each stream on its own).
 *   message  1 .. conf.max_msg bytes, segmented to the MTU, reassembled
 *            straight into the buffer the io layer hands out (rx_begin), and
 *            delivered once, whole (rx_deliver); or the sender's tx_done
 *            reports an error.
 *   READ     one-sided: pony_read() asks the peer's engine for bytes of a
 *            region its app registered (key); the peer's io layer checks
 *            bounds and permission (region_lookup) and the peer engine
 *            answers without the peer app; the reader gets read_done.
 *
 * Memory the core reads or writes on the app's behalf is always reached
 * through the io callbacks or the pointers given to pony_send/pony_read
 * (which stay valid until the matching completion, or pony_cancel_svc()).
 *
 * Addresses are network order; services, streams, lengths host order.
 * Times are nanoseconds of a monotonic clock passed in by the caller (the
 * tests pass a virtual clock).
 */
#ifndef MST_TRANSPORT_PONY_H
#define MST_TRANSPORT_PONY_H

#include <stdbool.h>
#include <stdint.h>

#include <mustang/counters.h>
#include <mustang/pkt.h>

#define PONY_DEFAULT_PORT 7400u
#define PONY_DEFAULT_MAX_MSG (16u << 20)

struct pony_conf {
	uint16_t udp_port;         /* our and every peer's Pony UDP port; default 7400 */
	uint16_t mtu;              /* IP MTU; payload per packet = mtu - 28 - header */
	uint32_t max_msg;          /* largest message / READ, bytes; default 16 MiB */
	uint32_t max_flows;        /* flow pool; default 256 */
	uint32_t max_msgs;         /* in-flight messages + READs (tx and rx), all flows; default 4096 */
	uint32_t max_streams;      /* stream ids per (flow, svc pair) are < this; default 1024 */
	uint32_t window_pkts;      /* cap on packets in flight per flow; default 512 */
	uint32_t rto_min_us;       /* default 1000 */
	uint32_t rto_max_us;       /* default 200000 */
	uint32_t max_retries;      /* consecutive timeouts before the flow fails; default 12 */
	uint32_t idle_timeout_ms;  /* default 30000 */
	/* Shares of the message pool (docs/pony.md, "What a peer can do"). */
	uint32_t peer_share;       /* messages (and rx stream entries) one peer may hold: ones it
				    * sends us and READs we serve it; 0 = max_msgs / 8 */
	uint32_t local_reserve;    /* pool entries only our own sends and READs may take;
				    * 0 = max_msgs / 4 */
	uint32_t rx_stall_ms;      /* a flow whose partial messages from the peer gain no byte for
				    * this long is reset; default 10000 */
	/* Delay-based congestion control (Swift-style, docs/pony.md) */
	uint32_t cc_target_us;     /* target RTT; default 100 */
	uint32_t cc_ai_milli;      /* additive increase, packets per RTT x1000; default 1000 */
	uint32_t cc_beta_milli;    /* decrease scale per unit of relative excess delay x1000; default 800 */
	uint32_t cc_max_mdf_milli; /* largest single decrease, x1000; default 500 */
	uint32_t cc_init_cwnd;     /* packets; default 64 */
	uint32_t cc_fs_range_us;   /* flow scaling: extra target at cwnd 1; default 500 */
	uint32_t cc_fs_max_cwnd;   /* ... falling to 0 at this cwnd (packets, >= 2); default 64 */
};

/* Fill every field with its default (then override what you need). */
void pony_conf_defaults(struct pony_conf *c);

/* What the receiver learns about a message (rx_begin / rx_deliver). */
struct pony_msg_info {
	uint32_t peer;     /* sender host, network order */
	uint16_t src_svc;  /* sender's service */
	uint16_t dst_svc;  /* our service */
	uint32_t stream;
	uint32_t len;      /* whole message */
};

struct pony_io {
	/* Packet buffers (as struct net_io): a fresh buffer with >= 64 bytes of
	 * headroom for UDP/IP/Ethernet and room for an MTU frame; NULL when out. */
	struct mst_pkt *(*alloc)(void *ctx);
	void (*free)(void *ctx, struct mst_pkt *p);
	/* Send p (data = the Pony header, len = header + payload) to peer's
	 * Pony port; takes ownership. < 0 = not sent (counted by the caller). */
	int (*output)(void *ctx, struct mst_pkt *p, uint32_t peer, uint64_t now_ns);

	/* Receive side. rx_begin: the first packet of a message arrived; reserve
	 * room for mi->len bytes for service mi->dst_svc. Return >= 0 and set
	 * *cookie, or -ENOENT (no endpoint bound to dst_svc: the sender gets
	 * -ECONNREFUSED) or -ENOBUFS (no room now: the packet is not
	 * acknowledged, the sender retries later and is slowed by credits).
	 * rx_write copies n payload bytes to offset off of that message. */
	int (*rx_begin)(void *ctx, const struct pony_msg_info *mi, uint64_t *cookie);
	void (*rx_write)(void *ctx, uint64_t cookie, uint32_t off, const void *src, uint32_t n);
	/* The whole message is in; stream order respected. */
	void (*rx_deliver)(void *ctx, const struct pony_msg_info *mi, uint64_t cookie);
	/* A message that had begun will never complete (flow failed). */
	void (*rx_abort)(void *ctx, uint64_t cookie);

	/* Sender side: every byte of the message sent with this cookie is
	 * acknowledged (status 0) or it failed: -ETIMEDOUT (peer silent),
	 * -ECONNREFUSED (no such service), -EMSGSIZE, -ECANCELED. */
	void (*tx_done)(void *ctx, uint16_t src_svc, uint64_t cookie, int status);

	/* READ served for a peer: bounds/permission check of [off, off+len)
	 * in region key of service svc. Returns a pointer to those bytes (valid
	 * until the engine's next poll) or NULL with *err = -EACCES / -ERANGE /
	 * -ENOENT; the reader's read_done gets that error. */
	const void *(*region_lookup)(void *ctx, uint16_t svc, uint64_t key, uint64_t off, uint32_t len,
				     int *err);
	/* READ issued here completed: 0 (dst filled) or -errno. */
	void (*read_done)(void *ctx, uint16_t src_svc, uint64_t cookie, int status);
	void *ctx;
};

struct pony;

/* NULL + errno (EINVAL bad conf, ENOMEM). stats: the engine's counters
 * (pony_* counters and drops of include/mustang/counters.h). */
struct pony *pony_create(const struct pony_conf *conf, const struct pony_io *io,
			 struct mst_stats *stats);
void pony_destroy(struct pony *py);

/* One received datagram for our Pony port: p->data at the Pony header,
 * p->len = UDP payload length. Always takes ownership of p. Malformed or
 * unexpected packets are dropped and counted by reason. */
void pony_input(struct pony *py, struct mst_pkt *p, uint32_t src, uint64_t now_ns);

/* Queue a message. data stays valid and unchanged until tx_done(cookie).
 * 0, or -EINVAL (len 0, stream >= max_streams), -EMSGSIZE (> max_msg),
 * -ENOBUFS (message pool or flow pool full: try again after a completion;
 * peers cannot take the pool's local_reserve),
 * -ENETUNREACH. Sending does not wait for pony_poll(): it may transmit at
 * once. */
int pony_send(struct pony *py, uint32_t peer, uint16_t src_svc, uint16_t dst_svc,
	      uint32_t stream, const void *data, uint32_t len, uint64_t cookie, uint64_t now_ns);

/* One-sided READ of len bytes at off of the peer's region key (owned by
 * the peer's service dst_svc) into dst (len bytes, valid until read_done).
 * Same errors as pony_send. */
int pony_read(struct pony *py, uint32_t peer, uint16_t src_svc, uint16_t dst_svc, uint64_t key,
	      uint64_t off, uint32_t len, void *dst, uint64_t cookie, uint64_t now_ns);

/* Timers (retransmission, delayed acknowledgements, idle flows) and
 * transmission of whatever the windows and credits now allow. Returns the
 * number of things done (0 = idle). Cheap when idle. */
int pony_poll(struct pony *py, uint64_t now_ns);

/* True when pony_poll() has nothing to do before now_ns + the returned
 * sleep is harmless (no queued transmit); for the engine's sleep check. */
bool pony_idle(const struct pony *py);

/* The endpoint bound to svc went away: drop its queued sends and READs
 * without calling tx_done/read_done for them (their memory is gone), and
 * abort (rx_abort) its partially received messages. */
void pony_cancel_svc(struct pony *py, uint16_t svc);

/* Observability (mustangctl pony). */
struct pony_flow_info {
	uint32_t peer;            /* network order */
	uint32_t srtt_us, rttvar_us, min_rtt_us;
	uint32_t rto_us;          /* retransmission timeout now */
	uint32_t cwnd_milli;      /* congestion window, packets x1000 */
	uint32_t inflight_pkts;   /* sent, not acknowledged */
	uint32_t peer_credits;    /* packets the peer lets us send now */
	uint32_t streams;         /* streams with a message in flight either way */
	uint32_t tx_msgs_queued, rx_msgs_partial;
	uint64_t tx_pkts, rx_pkts, tx_bytes, rx_bytes, retransmits, timeouts;
	uint64_t msgs_sent, msgs_delivered;
	uint64_t rate_bps;        /* recent delivery rate, bits per second */
	uint64_t idle_ns;         /* since the last packet from the peer */
};
/* Flow number idx (0 .. count-1 in an arbitrary, stable-between-polls
 * order); 0 on success, -ENOENT past the end. */
unsigned pony_flow_count(const struct pony *py);
int pony_flow_info(const struct pony *py, unsigned idx, struct pony_flow_info *out, uint64_t now_ns);

#endif /* MST_TRANSPORT_PONY_H */
