/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The shared-memory ABI between an application (libmustang) and mustangd.
 *
 * One segment per app process: a memfd the daemon creates at attach and
 * passes over the control socket, mapped by the app and the daemon only.
 * Everything is addressed by offsets from the segment start, never by
 * pointers. Layout (offsets in the header):
 *
 *   struct mst_shm_hdr            at 0
 *   struct mst_shm_qp  [n_qps]    at qp_off     one per app thread
 *   struct mst_shm_sock[n_socks]  at sock_off   one per socket
 *   FIFO arena                    at fifo_off   RX/TX byte FIFOs of sockets
 *   Pony arena                    at pony_off   Pony message buffers and
 *                                               registered regions
 *
 * Trust: the daemon treats every byte of the segment as hostile. It keeps
 * its own copy of everything that matters (FIFO offsets, sizes, head/tail,
 * socket ownership) and only *reads* app-written fields, bounds-checking
 * each against its copy. A bad value fails that operation (an error event
 * and a counter); it never crashes the daemon or touches another app.
 *
 * Rings (commands app->engine, events engine->app) are single-producer /
 * single-consumer. prod and cons are free-running u32 counters on their own
 * cache lines; an entry lives at slots[counter & (MST_SHM_RING_SLOTS-1)];
 * prod - cons (mod 2^32) is the fill level, which a consumer must check is
 * <= MST_SHM_RING_SLOTS before trusting it. Producer: write the slot, then
 * store-release prod. Consumer: load-acquire prod, read the slot, then
 * store-release cons (so the producer may reuse the slot).
 *
 * Byte FIFOs: the app writes TX data at tx_tail and consumes RX data at
 * rx_head; the engine writes RX data at rx_tail and frees TX space at
 * tx_head. All four are free-running u32 byte counters; a byte's place is
 * counter & (size - 1). After moving one of its own counters the app sends
 * a doorbell command (MST_CMD_TX / MST_CMD_RX_DONE); the engine then reads
 * the counter with acquire, validates it against its own view and adopts it.
 *
 * Sleeping (the io_uring-style protocol): a thread that finds nothing to do
 *   1. stores qp->wake = 1, then a full fence (seq_cst),
 *   2. re-checks its event ring and the readiness it waits for,
 *   3. only then blocks on its eventfd (read or poll), and clears wake.
 * The engine, after publishing events (release), issues a full fence and
 * reads qp->wake; if it is 1 it writes the qp's eventfd. The two fences
 * order "publish, then read wake" against "set wake, then read published":
 * at least one side sees the other, so no wake-up is lost.
 */
#ifndef MUSTANG_SHM_ABI_H
#define MUSTANG_SHM_ABI_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#define MST_ALIGNAS(n) alignas(n)
#else
#define MST_ALIGNAS(n) _Alignas(n)
#endif

#define MST_SHM_MAGIC 0x4853534du   /* "MSSH" */
#define MST_SHM_VERSION 3           /* 2: Pony endpoints, pony_off/pony_size; 3: 64-bit Pony keys (e) */
#define MST_SHM_CACHELINE 64
#define MST_SHM_RING_SLOTS 1024u    /* power of two */
#define MST_SHM_MAX_QPS 64u         /* threads per app */
#define MST_SHM_MAX_SOCKS 4096u     /* sockets per app */

/* X(name, value, help) — commands (app -> engine). Arguments in a..d. */
#define MST_FOREACH_CMD(X)                                                       \
	X(SOCKET, 1, "a: type (1 stream, 2 dgram, 3 pony) -> result: socket index (dgram, pony: FIFOs published at once)") \
	X(BIND, 2, "sock; a: port (host order), b: ip (network order, 0 = any)") \
	X(LISTEN, 3, "sock; a: backlog")                                         \
	X(ACCEPT, 4, "sock (listener) -> result: new socket index, b: peer ip, c: peer port") \
	X(CONNECT, 5, "sock; a: ip (network order), b: port -> result 0, completion by readiness") \
	X(TX, 6, "sock: tx_tail moved (doorbell, no completion)")                \
	X(RX_DONE, 7, "sock: rx_head moved (doorbell, no completion)")          \
	X(SHUTDOWN, 8, "sock; a: how (SHUT_RD/WR/RDWR)")                         \
	X(CLOSE, 9, "sock: release the socket index")                            \
	X(SETOPT, 10, "sock; a: MST_OPT_*, b: value")                            \
	X(GETOPT, 11, "sock; a: MST_OPT_* -> result 0, a: value")                \
	X(NOTIFY, 12, "sock: send readiness events to this command's qp from now on (answered by a READY event, no DONE)") \
	X(PONY_SEND, 13, "pony sock; a: data offset in the Pony arena, b: len | stream << 32, c: peer ip | dst svc << 32, d: cookie -> a SEND record") \
	X(PONY_READ, 14, "pony sock; a: local offset | remote offset << 32, b: len, c: peer ip | dst svc << 32, d: cookie, e: the peer's region key -> a READ record") \
	X(PONY_RELEASE, 15, "pony sock; a: buffer id of a MSG record: its bytes go back (no completion)") \
	X(PONY_REG, 16, "pony sock; a: bytes, b: MST_PONY_REG_* -> result 0, a: key, b: offset in the Pony arena") \
	X(PONY_UNREG, 17, "pony sock; a: key -> result 0 or -EBUSY (a send or READ still uses it)")

enum mst_cmd {
#define MST_X_ENUM(name, val, help) MST_CMD_##name = val,
	MST_FOREACH_CMD(MST_X_ENUM)
#undef MST_X_ENUM
};

/*
 * UDP sockets (SOCKET a = 2). The RX and TX FIFOs carry datagrams as
 * records: a struct mst_shm_dgram header followed by len payload bytes,
 * the whole record padded to a multiple of 8 bytes; a record may wrap
 * around the end of the FIFO like any bytes. The counters (rx_tail,
 * rx_head, tx_tail, tx_head) move by whole records. TX: the app writes a
 * record (addr/port = destination; 0/0 = the connected peer) at tx_tail,
 * moves tx_tail and rings MST_CMD_TX; the engine sends every complete
 * record, rejecting (EV_ERROR, counter) one whose len exceeds
 * MST_SHM_DGRAM_MAX or the path MTU, and frees the space (tx_head). RX:
 * the engine appends a record per datagram (addr/port = source); a
 * datagram that does not fit is dropped and counted (as Linux with a full
 * receive buffer). BIND port 0 / an unbound first send picks an
 * ephemeral port. CONNECT sets the default destination (no handshake).
 */
struct mst_shm_dgram {
	uint32_t len;      /* payload bytes */
	uint32_t addr;     /* IPv4, network order */
	uint16_t port;     /* host order */
	uint16_t flags;    /* 0 */
	uint32_t pad;
};
#define MST_SHM_DGRAM_MAX 65507u
#define MST_SHM_DGRAM_ALIGN 8u

/*
 * Pony endpoints (SOCKET a = 3; transport/pony, docs/pony.md). BIND a =
 * the Pony service number (1..65535). The socket's RX FIFO carries
 * completion records, struct mst_shm_pony_rec, one per 64 bytes, in the
 * order things completed (a message completed on one stream is never
 * held behind another stream's); rx_tail/rx_head move by whole records
 * and the app returns records by moving rx_head (no doorbell needed: the
 * engine reads it when it needs room). The TX FIFO is unused.
 *
 * Message bytes live in the segment's Pony arena (pony_off, pony_size),
 * all of it allocated by the engine, which keeps its own table of every
 * piece: received messages (a MSG record's off/len/buf; the app reads
 * them in place and gives them back with PONY_RELEASE buf) and regions
 * the app registers (PONY_REG: any bytes it sends from or READs into
 * must lie inside one of its regions; MST_PONY_REG_REMOTE_READ lets
 * peers READ it). Every op (PONY_SEND, PONY_READ) gets exactly one
 * record with the command's cookie. Budget: at most rec_slots / 2 ops
 * whose record the app has not consumed (rec_slots = rx_size / 64); the
 * engine keeps the other half for received messages, so neither side can
 * fill the ring for the other. An app that exceeds its half gets an
 * ERROR event (-ENOBUFS) for the op instead of a record.
 */
enum mst_pony_rec_kind {
	MST_PONY_REC_MSG = 1,  /* a message arrived: peer, svcs, stream, len, off, buf */
	MST_PONY_REC_SEND = 2, /* a send completed: status, cookie */
	MST_PONY_REC_READ = 3, /* a READ completed: status, cookie (len bytes at the local offset) */
};

#define MST_PONY_REG_REMOTE_READ 0x1u /* peers may READ the region */
#define MST_PONY_SOCK_TYPE 3u
#define MST_PONY_REC_SIZE 64u

struct mst_shm_pony_rec {
	uint16_t kind;      /* enum mst_pony_rec_kind */
	uint16_t src_svc;   /* MSG: the sender's service; SEND/READ: ours */
	int32_t status;     /* 0 or -errno */
	uint32_t peer;      /* IPv4, network order */
	uint16_t dst_svc;   /* MSG: ours; SEND/READ: the peer's */
	uint16_t pad0;
	uint32_t stream;    /* MSG, SEND */
	uint32_t len;       /* bytes */
	uint64_t off;       /* MSG: data, from pony_off */
	uint64_t cookie;    /* SEND/READ: the command's d */
	uint32_t buf;       /* MSG: buffer id for PONY_RELEASE */
	uint32_t pad1[5];
};

/* Events (engine -> app). */
enum mst_ev {
	MST_EV_DONE = 1,  /* completion of the command with this seq; result, a..c */
	MST_EV_READY = 2, /* sock's readiness changed; a: MST_READY_* bits now */
	MST_EV_ERROR = 3, /* a command was rejected (bad sock, bad value); result: -errno */
};

/* Readiness bits (same values as poll(2)'s POLL* on Linux). */
#define MST_READY_IN 0x001
#define MST_READY_OUT 0x004
#define MST_READY_ERR 0x008
#define MST_READY_HUP 0x010
#define MST_READY_RDHUP 0x2000

/* Socket options for SETOPT/GETOPT. */
enum mst_opt {
	MST_OPT_NODELAY = 1,
	MST_OPT_KEEPALIVE = 2,
	MST_OPT_KEEPIDLE = 3,
	MST_OPT_KEEPINTVL = 4,
	MST_OPT_KEEPCNT = 5,
	MST_OPT_LINGER0 = 6,   /* SO_LINGER {1, 0}: close sends RST */
	MST_OPT_REUSEADDR = 7, /* accepted, no effect (no TIME_WAIT bind conflicts) */
	MST_OPT_RCVBUF = 8,    /* bytes of the RX FIFO used (window), clamped; GETOPT: in effect */
	MST_OPT_SNDBUF = 9,    /* bytes of the TX FIFO the app queues; GETOPT: in effect */
	MST_OPT_ERROR = 10,    /* GETOPT: pending error (positive errno), cleared */
	MST_OPT_MAXSEG = 11,
};

/* One ring entry: a command or an event. */
struct mst_shm_msg {
	uint16_t op;      /* enum mst_cmd / enum mst_ev */
	uint16_t flags;
	int32_t sock;     /* socket index, -1 when none */
	uint32_t seq;     /* command: app's request id; DONE/ERROR echo it */
	int32_t result;   /* events: >= 0 or -errno */
	uint64_t a, b, c, d;
	uint64_t e;       /* PONY_READ: region key */
	uint8_t pad[8];
};

struct mst_shm_ring {
	MST_ALIGNAS(MST_SHM_CACHELINE) uint32_t prod; /* written by the producer only */
	MST_ALIGNAS(MST_SHM_CACHELINE) uint32_t cons; /* written by the consumer only */
	MST_ALIGNAS(MST_SHM_CACHELINE) struct mst_shm_msg slots[MST_SHM_RING_SLOTS];
};

/* A queue pair: one per app thread (claimed lazily by the library). */
struct mst_shm_qp {
	struct mst_shm_ring cmd;   /* app -> engine */
	struct mst_shm_ring evt;   /* engine -> app */
	MST_ALIGNAS(MST_SHM_CACHELINE) uint32_t wake; /* app: 1 = about to sleep, signal my eventfd */
	uint32_t in_use;           /* app: 1 once a thread owns this qp (informational) */
	uint32_t evt_overflow;     /* engine: count of events dropped (ring full): rescan sockets when it moves */
};

/* Socket states as the app sees them (TCP states in RFC 9293 order, then ours). */
enum mst_sock_state {
	MST_SOCK_CLOSED = 0, MST_SOCK_LISTEN, MST_SOCK_SYN_SENT, MST_SOCK_SYN_RECEIVED,
	MST_SOCK_ESTABLISHED, MST_SOCK_FIN_WAIT_1, MST_SOCK_FIN_WAIT_2, MST_SOCK_CLOSE_WAIT,
	MST_SOCK_CLOSING, MST_SOCK_LAST_ACK, MST_SOCK_TIME_WAIT,
	MST_SOCK_FREE = 100,       /* index not in use */
	MST_SOCK_NEW,              /* created, not bound/connected */
};

struct mst_shm_sock {
	/* engine-written, app-read */
	MST_ALIGNAS(MST_SHM_CACHELINE) uint32_t rx_tail; /* RX bytes produced (release) */
	uint32_t tx_head;          /* TX bytes acknowledged, space freed (release) */
	uint32_t state;            /* enum mst_sock_state */
	int32_t error;             /* pending error, positive errno, 0 = none */
	uint32_t ready;            /* MST_READY_* now */
	uint32_t accept_queue;     /* listener: connections ready to accept */
	uint32_t eof;              /* peer's FIN consumed: after rx_tail, EOF */
	uint32_t gen;              /* bumped each time the index is reused */
	/* app-written, engine-read (validated) */
	MST_ALIGNAS(MST_SHM_CACHELINE) uint32_t rx_head; /* RX bytes consumed */
	uint32_t tx_tail;          /* TX bytes produced */
	/* engine-written at creation; the engine keeps its own copy */
	MST_ALIGNAS(MST_SHM_CACHELINE) uint64_t rx_off; /* RX FIFO data, from segment start */
	uint64_t tx_off;
	uint32_t rx_size, tx_size; /* powers of two */
	uint32_t local_ip, remote_ip; /* network order */
	uint16_t local_port, remote_port; /* host order */
};

struct mst_shm_hdr {
	uint32_t magic;            /* MST_SHM_MAGIC */
	uint32_t version;          /* MST_SHM_VERSION */
	uint64_t size;             /* segment bytes */
	uint32_t n_qps, n_socks;
	uint64_t qp_off, sock_off, fifo_off, fifo_size;
	uint32_t app_id;
	uint32_t engine;           /* engine serving this app */
	uint32_t local_ip;         /* the stack's address, network order */
	uint32_t pony_max_msg;     /* largest Pony message / READ, bytes; 0 = Pony off */
	uint64_t pony_off, pony_size; /* Pony arena (engine-allocated, see above) */
	/* Engine doorbell (same protocol as qp->wake, roles swapped): the
	 * engine stores 1 before it sleeps, fences, re-checks the command
	 * rings. An app that posted a command fences and, if it reads 1,
	 * writes the doorbell eventfd (the last descriptor of the attach). */
	MST_ALIGNAS(MST_SHM_CACHELINE) uint32_t engine_sleeping;
};

#ifdef __cplusplus
static_assert(sizeof(struct mst_shm_msg) == 64, "one cache line per message");
static_assert(sizeof(struct mst_shm_pony_rec) == MST_PONY_REC_SIZE, "Pony record");
static_assert(sizeof(struct mst_shm_sock) % MST_SHM_CACHELINE == 0, "sockets stay line aligned");
#else
_Static_assert(sizeof(struct mst_shm_msg) == 64, "one cache line per message");
_Static_assert(sizeof(struct mst_shm_dgram) == 16, "datagram record header");
_Static_assert(sizeof(struct mst_shm_pony_rec) == MST_PONY_REC_SIZE, "Pony record");
_Static_assert(sizeof(struct mst_shm_sock) % MST_SHM_CACHELINE == 0, "sockets stay line aligned");
_Static_assert(sizeof(struct mst_shm_hdr) <= 4 * MST_SHM_CACHELINE, "header stays small");
#endif

#ifdef __cplusplus
}
#endif
#endif /* MUSTANG_SHM_ABI_H */
