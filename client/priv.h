/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libmustang internals. Private: do not use in application code. Tests
 * include this to drive the library against a fake engine.
 *
 * Call order:
 *   mst_init() -> ctl_attach() [attach.c] -> lib_attach_fds()
 *   any mst_* call -> thr_get() [qp.c]: claim a qp for this thread
 *   -> cmd_call()/cmd_post(): commands on the thread's qp
 *   -> thr_wait(): dispatch events, sleep per the wake protocol
 *   sock.c (POSIX calls), sockopt.c, poll.c (poll/epoll), native.c,
 *   pony.c (Pony endpoints).
 */
#ifndef MST_CLIENT_PRIV_H
#define MST_CLIENT_PRIV_H

#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <mustang/mustang.h>
#include <mustang/shm_abi.h>

#define MST_EXPORT __attribute__((visibility("default")))

/* Library descriptor space: sockets, then epoll instances. */
#define MST_FD_SOCK_BASE MST_FD_BASE
#define MST_FD_EPOLL_BASE (MST_FD_BASE + (int)MST_SHM_MAX_SOCKS)
#define MST_MAX_EPOLL 256

/* Library-side view of one engine socket index. Shared by all threads.
 * Fields written by one call at a time unless marked atomic. */
struct lsock {
	pthread_mutex_t tx_lock;   /* serializes senders (tx_tail is ours) */
	pthread_mutex_t rx_lock;   /* serializes receivers (rx_head is ours) */
	pthread_mutex_t own_lock;  /* NOTIFY: engine order == our notify_qp order */
	uint32_t open;             /* atomic: 1 while the index is ours */
	uint32_t gen;              /* bumped at each open (epoll entries check it) */
	uint32_t nonblock;         /* O_NONBLOCK */
	uint32_t listening;
	uint32_t dgram;            /* SOCK_DGRAM: FIFOs carry mst_shm_dgram records */
	uint32_t dg_peer;          /* dgram: connect() set a default peer */
	uint32_t connecting;       /* CONNECT sent, outcome not yet reported */
	uint32_t shut_rd, shut_wr; /* our own shutdown() calls */
	int32_t notify_qp;         /* atomic: qp the engine sends READY to, -1 none */
	uint64_t waiters;          /* atomic: qps that (may) sleep on this socket */
	uint32_t rx_doorbell;      /* rx_head at the last RX_DONE */
	int linger_on, linger_s;   /* SO_LINGER as set */
	uint32_t peer_ip;          /* network order, from ACCEPT/connect() */
	uint16_t peer_port;        /* host order */
	uint32_t bound_ip;         /* network order, from bind() */
	uint16_t bound_port;
	int32_t err_ack;           /* shm error value already taken by SO_ERROR
				    * (the engine may republish it late) */
	uint32_t rcvbuf, sndbuf;   /* SO_RCVBUF/SO_SNDBUF as set (clamped), 0 = the FIFO */
	uint32_t pend_mask;        /* options set before the connection existed */
	uint32_t pend_val[16];     /* ... their values, by MST_OPT_* */
};

/* Per-qp library state that outlives the thread owning the qp. */
struct lqp {
	uint32_t seq;              /* next command seq (never reset: stale DONEs
				    * of a previous owner cannot match) */
	uint32_t ovf_seen;         /* last evt_overflow value handled */
	uint32_t in_wait;          /* atomic: owner is in thr_wait (forwards READY) */
	uint32_t ext_armed;        /* mst_event_fd() called: wake stays 1 */
	uint64_t share;            /* atomic: qps relying on us to forward READY;
				    * kicked when we leave thr_wait */
};

struct mst_lib {
	int attached;
	int ctl_fd;                /* lifeline to mustangd */
	uint8_t *base;             /* mapped segment */
	size_t size;
	struct mst_shm_hdr *hdr;
	struct mst_shm_qp *qps;
	struct mst_shm_sock *socks;
	uint32_t n_qps, n_socks;
	int efd[MST_SHM_MAX_QPS];  /* one eventfd per qp (non-blocking) */
	uint64_t qp_used;          /* atomic bitmap of claimed qps */
	struct lqp lqp[MST_SHM_MAX_QPS];
	struct lsock *ls;          /* [n_socks] */
	pthread_key_t key;         /* destructor releases the thread's qp */
	long spin_ns;              /* busy-poll this long before sleeping */
	bool spin_yield;           /* sched_yield() instead of pause while busy-polling */
	uint32_t epoch;            /* bumped per attach: stale thread state */
	int dead;                  /* the daemon closed the lifeline */
};

extern struct mst_lib mst_lib;

/* One per thread that has used the library. */
struct thr {
	int qp;                    /* index, -1 before claim */
	struct mst_shm_qp *q;
	int efd;
	uint32_t want_seq;         /* seq cmd_call waits for */
	int got;                   /* its DONE/ERROR arrived */
	struct mst_shm_msg reply;
	uint64_t ready_map[MST_SHM_MAX_SOCKS / 64]; /* READY seen (mst_ev_poll) */
	uint32_t epoch;            /* mst_lib.epoch when the qp was claimed */
	int broken;                /* the event ring is corrupt: -EIO */
};

/* attach.c */
int lib_attach_fds(int ctl_fd, int memfd, const int *efds, unsigned n_efds);
void lib_detach(void);

/* qp.c */
struct thr *thr_get(void);                   /* NULL + errno */
void thr_release(struct thr *t);
int cmd_post(struct thr *t, struct mst_shm_msg *m);  /* no completion */
int cmd_call(struct thr *t, struct mst_shm_msg *m);  /* result, m = reply */
int thr_dispatch(struct thr *t);

struct wait_spec {
	bool (*ready)(void *arg);  /* true: stop waiting */
	void *arg;
	const uint32_t *socks;     /* sockets whose readiness we wait on */
	uint32_t n_socks;
	struct pollfd *kfds;       /* kernel fds polled too (may be NULL) */
	nfds_t n_kfds;
};
/* 1: ready() true, 2: a kernel fd is ready, 0: timeout, -errno. */
int thr_wait(struct thr *t, const struct wait_spec *w, int timeout_ms);
/* CLOCK_MONOTONIC in nanoseconds. */
int64_t lib_now_ns(void);
int thr_own(struct thr *t, uint32_t sock, bool force);

/* pony.c: events a blocking submission took from a Pony endpoint's ring
 * wait in the library (readable, as for poll/epoll). */
bool pony_stashed(uint32_t idx);
/* lib_detach(): every endpoint's library state goes. */
void pony_lib_reset(void);

/* sock.c */
struct lsock *sock_get(int fd, uint32_t *idx);  /* NULL + errno EBADF */
/* Adopt an engine socket index (SOCKET, ACCEPT): its fd, or -EIO. */
int sock_open(struct thr *t, int32_t idx, int nonblock, int dgram);
uint32_t sock_readiness(uint32_t idx);          /* POLL* bits now */
int sock_error_pending(uint32_t idx);          /* positive errno or 0 */
bool sock_fifo_ok(uint32_t idx);                /* FIFO geometry sane */
uint32_t sock_tx_limit(uint32_t idx);           /* TX bytes the app may queue (SO_SNDBUF) */
void sock_apply_pending_opts(struct thr *t, uint32_t idx);
void sock_rx_doorbell(struct thr *t, uint32_t idx, uint32_t head, uint32_t before);
int sock_tx_state(uint32_t idx);                /* 0 or -errno for send */

/* sock.c, UDP (SOCK_DGRAM) sockets: one mst_shm_dgram record per datagram
 * in each FIFO, padded to MST_SHM_DGRAM_ALIGN (see <mustang/shm_abi.h>). */
#define DGRAM_HDR ((uint32_t)sizeof(struct mst_shm_dgram))
/* Bytes a record of len payload bytes takes in a FIFO. */
static inline uint32_t dgram_rec_size(uint32_t len)
{
	return (DGRAM_HDR + len + MST_SHM_DGRAM_ALIGN - 1) & ~(MST_SHM_DGRAM_ALIGN - 1);
}
/* POLLOUT for a datagram socket: room for a record of this many payload
 * bytes (a "small" datagram; bigger ones may still have to wait). */
#define DGRAM_POLLOUT_MIN 64u

/* poll.c */
void epoll_forget_all(void);
int epoll_close(int epfd);

static inline uint32_t ld_acq(const uint32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

#endif /* MST_CLIENT_PRIV_H */
