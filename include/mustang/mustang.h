/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libmustang: the application API of the Mustang TCP/IP stack.
 *
 * An application links libmustang (pkg-config: mustang) and calls
 * mst_init() once; the library attaches to mustangd over its control
 * socket and maps a shared-memory segment. From then on the data path is
 * shared memory only: no system call per operation while the app is busy
 * (a thread that must block sleeps on its eventfd).
 *
 * Three layers:
 *   1. POSIX-shaped calls (mst_socket ... mst_epoll_wait): the same
 *      arguments, return values and errno values as Linux, on descriptors
 *      private to the library (>= MST_FD_BASE, never kernel fds: pass them
 *      only to mst_* calls). mst_poll and mst_epoll_* also accept kernel
 *      descriptors, so one loop can wait on both.
 *   2. A native non-blocking API: mst_watch() + mst_ev_poll() deliver
 *      readiness of sockets to the calling thread; mst_event_fd() lets an
 *      app put "mustang has events for this thread" into its own epoll.
 *   3. Zero-copy FIFO access: mst_rx_peek/mst_rx_consume and
 *      mst_tx_reserve/mst_tx_commit hand out pointers into the socket's
 *      RX/TX byte FIFOs in the shared segment.
 * And Pony (mst_pony_*): reliable messages between Mustang hosts, with
 * one-sided READ of registered memory (see the Pony section below).
 *
 * Threads: any thread may use any socket. Each thread gets its own queue
 * pair to the engine on first use (at most MST_SHM_MAX_QPS threads use the
 * library at once; a thread's queue pair is released when it exits).
 * Concurrent sends (or concurrent receives) on one socket are serialized by
 * a per-socket lock; a send and a receive on the same socket proceed in
 * parallel. The zero-copy calls take no lock: use them from one thread per
 * direction and socket at a time.
 *
 * Differences from Linux, on purpose:
 *   - SIGPIPE is never raised; writing to a shut-down or reset connection
 *     fails with EPIPE whether or not MSG_NOSIGNAL is given.
 *   - Only AF_INET: SOCK_STREAM (TCP) and SOCK_DGRAM (UDP).
 *   - UDP: one datagram per mst_send/mst_sendto/mst_write (at most
 *     MST_SHM_DGRAM_MAX bytes and what fits in the socket's TX FIFO, else
 *     EMSGSIZE; a datagram larger than the path MTU is rejected by the
 *     engine after the call returned, as no fragmentation is done). One
 *     datagram per mst_recv/mst_recvfrom/mst_read: the part beyond the
 *     buffer is discarded (MSG_TRUNC returns the full length). A datagram
 *     arriving while the RX FIFO is full is dropped, as with a full Linux
 *     receive buffer. POLLOUT means a small datagram fits; a blocking send
 *     waits until its own fits. shutdown() is local to the library.
 *     MSG_MORE (corking) is not supported (EOPNOTSUPP), nor are the
 *     zero-copy calls (EOPNOTSUPP) on datagram sockets.
 *   - Before mst_init() (or after mst_fini()), calls that create a
 *     descriptor (mst_socket, mst_epoll_create1) fail with ENOTCONN;
 *     calls on a descriptor fail with EBADF.
 *   - SO_RCVBUF/SO_SNDBUF can be read (the FIFO sizes); setting them is
 *     accepted and ignored. SO_LINGER {1, 0} makes close send RST; other
 *     linger values are stored and reported but close never blocks.
 *   - SOCK_CLOEXEC / FD_CLOEXEC are accepted and meaningless (library
 *     descriptors do not survive exec anyway).
 */
#ifndef MUSTANG_MUSTANG_H
#define MUSTANG_MUSTANG_H

#include <stddef.h>
#include <stdint.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Library descriptors start here, far above any kernel fd in practice. */
#define MST_FD_BASE (1 << 20)

/* ---- Setup ---------------------------------------------------------- */

/* Attach to mustangd. ctl_path: the control socket; NULL means
 * $MUSTANG_CTL, else MST_CTL_DEFAULT_PATH. Returns 0, or -1 with errno
 * (ENOENT/ECONNREFUSED: no daemon; EACCES: refused by the daemon;
 * EPROTO: bad response or segment; EISCONN: already attached). */
int mst_init(const char *ctl_path);

/* Detach: closes the control connection (the daemon resets every
 * connection still open) and unmaps the segment. Threads must have stopped
 * using the library. */
void mst_fini(void);

/* In the child of a fork(): forget the parent's attachment without
 * touching the shared segment (the parent still uses it) and without
 * detaching the parent: the child's copies of the control socket and
 * eventfds are closed, its mapping is undone, its library descriptors
 * are gone. The child may then mst_init() as a new app. Call it first
 * thing in the child (e.g. from a pthread_atfork child handler). */
void mst_fork_child(void);

/* ---- POSIX-shaped API (returns and errno as Linux) ------------------ */

int mst_socket(int domain, int type, int protocol);
int mst_bind(int fd, const struct sockaddr *addr, socklen_t len);
int mst_listen(int fd, int backlog);
int mst_accept(int fd, struct sockaddr *addr, socklen_t *len);
int mst_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);
int mst_connect(int fd, const struct sockaddr *addr, socklen_t len);
ssize_t mst_send(int fd, const void *buf, size_t len, int flags);
ssize_t mst_recv(int fd, void *buf, size_t len, int flags);
/* As POSIX. UDP: to NULL sends to the connect()ed peer (else
 * EDESTADDRREQ); from receives the datagram's source. Stream sockets
 * ignore to and report *fromlen 0, as Linux's TCP. */
ssize_t mst_sendto(int fd, const void *buf, size_t len, int flags,
		   const struct sockaddr *to, socklen_t tolen);
ssize_t mst_recvfrom(int fd, void *buf, size_t len, int flags,
		     struct sockaddr *from, socklen_t *fromlen);
ssize_t mst_write(int fd, const void *buf, size_t len);
ssize_t mst_read(int fd, void *buf, size_t len);
int mst_shutdown(int fd, int how);
int mst_close(int fd);
int mst_setsockopt(int fd, int level, int name, const void *val, socklen_t len);
int mst_getsockopt(int fd, int level, int name, void *val, socklen_t *len);
/* F_GETFL / F_SETFL (O_NONBLOCK), F_GETFD / F_SETFD. */
int mst_fcntl(int fd, int cmd, ...);
int mst_getsockname(int fd, struct sockaddr *addr, socklen_t *len);
int mst_getpeername(int fd, struct sockaddr *addr, socklen_t *len);

/* poll(2) over library and kernel descriptors mixed. */
int mst_poll(struct pollfd *fds, nfds_t n, int timeout_ms);

/* epoll over library and kernel descriptors mixed. Level-triggered by
 * default; EPOLLET and EPOLLONESHOT are supported. Events: EPOLLIN,
 * EPOLLOUT, EPOLLRDHUP, EPOLLERR, EPOLLHUP (the last two always). A closed
 * library socket leaves every interest list. Each wait scans the interest
 * list (O(registered sockets)). */
int mst_epoll_create1(int flags);
int mst_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev);
int mst_epoll_wait(int epfd, struct epoll_event *evs, int max, int timeout_ms);

/* ---- Native non-blocking API ----------------------------------------- */

struct mst_event {
	int fd;          /* library socket */
	uint32_t events; /* POLLIN/POLLOUT/POLLERR/POLLHUP/POLLRDHUP now */
};

/* Route fd's readiness notifications to the calling thread (one engine
 * round trip the first time, none while this thread stays the receiver).
 * 0 or -1 with errno. */
int mst_watch(int fd);

/* Report watched sockets whose readiness changed since the last call,
 * with their readiness now (level). Waits up to timeout_ms (-1 forever,
 * 0 never). Returns the count (0 on timeout) or -1 with errno (EINTR). */
int mst_ev_poll(struct mst_event *evs, int max, int timeout_ms);

/* The calling thread's eventfd. After this call the engine signals it
 * whenever it posts events for this thread, so an app can add it to its
 * own epoll (EPOLLIN) and then call mst_ev_poll(..., 0) or
 * mst_epoll_wait(..., 0). Readiness stays in the shared segment: treat a
 * wake-up as a hint and drain it with read(2) (the fd is non-blocking).
 * -1 with errno if the library is not attached. */
int mst_event_fd(void);

/* ---- Zero-copy FIFO access ------------------------------------------- */

/* Stream (TCP) sockets only: EOPNOTSUPP on a datagram socket. */

/* Readable bytes of fd's RX FIFO, as up to two regions (*p2 may be NULL).
 * Returns the total (n1 + n2), 0 when nothing is buffered (check
 * mst_recv for EOF/errors), or -1 with errno. Never blocks. */
ssize_t mst_rx_peek(int fd, const void **p1, size_t *n1, const void **p2, size_t *n2);
/* Release the first n peeked bytes (the TCP window reopens). */
int mst_rx_consume(int fd, size_t n);

/* Free space of fd's TX FIFO, as up to two writable regions. Returns the
 * total, 0 when full or while the connection is still being established
 * (wait for POLLOUT), or -1 with errno (EPIPE when not connected, after
 * shutdown or an error). Never blocks. */
ssize_t mst_tx_reserve(int fd, void **p1, size_t *n1, void **p2, size_t *n2);
/* Publish the first n reserved bytes and ring the engine's doorbell. */
int mst_tx_commit(int fd, size_t n);

/* ---- Pony: messages between Mustang hosts -------------------------------- */

/*
 * A Pony endpoint is a library descriptor bound to a service number (the
 * Pony "port", 1..65535) on this host. Messages (1 byte .. the daemon's
 * --pony-max-msg, 16 MiB by default) go from (host, service) to (peer,
 * service) on a numbered stream: one stream's messages arrive in the
 * order sent, whole and exactly once; streams are independent. Every
 * operation completes asynchronously with an event from mst_pony_poll():
 *   MST_PONY_MSG        a message arrived; data points at it in the shared
 *                       segment; give it back with mst_pony_release()
 *   MST_PONY_SEND_DONE  the peer has all of a message (status 0) or it
 *                       failed: -ETIMEDOUT, -ECONNREFUSED (no such
 *                       service), -ECONNRESET (the peer restarted or
 *                       forgot the flow; the next send opens a new one),
 *                       -EMSGSIZE, -EFAULT (buffer not in a region)
 *   MST_PONY_READ_DONE  a one-sided READ filled its buffer (0) or failed:
 *                       -ENOENT (no such region), -EACCES (not remote-
 *                       readable), -ERANGE (outside it), -ETIMEDOUT...
 * Blocking as for sockets: a new endpoint is blocking; a submission that
 * finds too many operations awaiting their completion event, or the copy
 * buffer full, waits until completions free room (the events that arrive
 * meanwhile are kept, in order, for mst_pony_poll()); it fails with
 * ENETDOWN if the daemon goes, EBADF if the endpoint is closed meanwhile,
 * EINTR on a signal.
 * After mst_fcntl(ep, F_SETFL, O_NONBLOCK) it returns -1/EAGAIN instead.
 * Completions are waited for with mst_pony_poll()'s timeout.
 * The descriptor works with mst_poll/mst_epoll (POLLIN: events pending)
 * and closes with mst_close() (pending operations are dropped without
 * events; peers get -ECONNREFUSED for new messages).
 * Pony is served by engine 0 (as apps); the daemon's --pony-port (7400)
 * must be the same on every host.
 */
#define MST_PONY_MSG 1
#define MST_PONY_SEND_DONE 2
#define MST_PONY_READ_DONE 3
#define MST_PONY_REMOTE_READ 0x1u /* mst_pony_reg_alloc: peers may READ it */

struct mst_pony_event {
	int kind;             /* MST_PONY_* */
	int status;           /* 0 or -errno */
	uint32_t peer;        /* IPv4, network order */
	uint16_t src_svc;     /* MSG: the sender's service; DONE: ours */
	uint16_t dst_svc;     /* MSG: ours; DONE: the peer's */
	uint32_t stream;      /* MSG, SEND_DONE */
	uint32_t len;         /* bytes */
	const void *data;     /* MSG: the message (valid until mst_pony_release) */
	uint64_t cookie;      /* SEND_DONE, READ_DONE: as submitted */
	uint32_t buf;         /* MSG: for mst_pony_release */
};

/* A new endpoint bound to svc: a descriptor, or -1 with errno
 * (EADDRINUSE, EPROTONOSUPPORT: Pony off in the daemon, EMFILE). */
int mst_pony_open(uint16_t svc);
/* Send len bytes of buf (copied at once into the segment: buf may be
 * reused on return) to (peer, dst_svc) on stream. 0 or -1 with errno. */
int mst_pony_send(int ep, uint32_t peer, uint16_t dst_svc, uint32_t stream, const void *buf,
		  size_t len, uint64_t cookie);
/* Zero-copy: buf .. buf+len lies in a region of this endpoint
 * (mst_pony_reg_alloc) and must stay unchanged until SEND_DONE. */
int mst_pony_send_reg(int ep, uint32_t peer, uint16_t dst_svc, uint32_t stream, const void *buf,
		      size_t len, uint64_t cookie);
/* A region of size bytes in the shared segment, owned by ep: a pointer
 * (64-byte aligned) and *key, or NULL with errno (ENOMEM, ENOSPC: 64
 * regions per endpoint, EAGAIN: no randomness yet). flags:
 * MST_PONY_REMOTE_READ. The key is random (58 bits from the kernel's
 * CSPRNG): a peer can READ a region only if told its key. */
void *mst_pony_reg_alloc(int ep, size_t size, unsigned flags, uint64_t *key);
/* 0, or -1 with errno (ENOENT, EBUSY: a send or READ still uses it). */
int mst_pony_reg_free(int ep, uint64_t key);
/* One-sided READ of len bytes at off of the peer's region key (owned by
 * its service dst_svc) into dst, which lies in a region of ep. */
int mst_pony_read(int ep, uint32_t peer, uint16_t dst_svc, uint64_t key, uint64_t off,
		  size_t len, void *dst, uint64_t cookie);
/* Up to max events, waiting up to timeout_ms (-1 forever, 0 never) for
 * the first: the count, 0 only once the timeout has passed, or -1 with
 * errno (EINTR: a signal, EIO, ENETDOWN). */
int mst_pony_poll(int ep, struct mst_pony_event *evs, int max, int timeout_ms);
/* Give a received message's bytes back (ev: its MSG event). */
int mst_pony_release(int ep, const struct mst_pony_event *ev);

#ifdef __cplusplus
}
#endif
#endif /* MUSTANG_MUSTANG_H */
