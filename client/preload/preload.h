/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libmustang-preload internals: the descriptor table that tells a Mustang
 * socket from a kernel descriptor, and the libc functions the wrappers
 * fall through to. Private to client/preload/.
 *
 * Call order (see docs/preload.md):
 *   socket(AF_INET, TCP|UDP) [sock.c] -> pl_attach() [fdtab.c]: a kernel
 *     socket holds the number, the slot is PL_PENDING
 *   bind/connect/listen/sendto -> pl_promote(): excluded addresses stay on
 *     the kernel; others get an mst socket, the slot becomes PL_MST
 *   read/write/... [io.c], poll/select/epoll [wait.c]: PL_MST slots go to
 *     mst_*, everything else to libc (real_*)
 *   fork -> pl_atfork_child(): the parent's sockets become PL_DEAD
 */
#ifndef MST_PRELOAD_H
#define MST_PRELOAD_H

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#define PL_API __attribute__((visibility("default")))

enum pl_kind {
	PL_NONE = 0,  /* a kernel descriptor (or nothing) */
	PL_PENDING,   /* AF_INET socket not yet bound/connected: still kernel */
	PL_MST,       /* a Mustang socket; the kernel fd only holds the number */
	PL_DEAD,      /* fork child: the parent's Mustang socket (EBADF) */
	PL_EPOLL,     /* a kernel epoll that also watches Mustang sockets */
};

#define PL_MAX_OPTS 8

/* Options set on a pending socket, replayed on its Mustang socket. */
struct pl_opt {
	int level, name;
	socklen_t len;
	uint8_t val[16];
};

struct pl_pending {
	int type;                  /* SOCK_STREAM / SOCK_DGRAM */
	int n_opts;
	struct pl_opt opts[PL_MAX_OPTS];
};

struct pl_ep;

struct pl_fd {
	uint32_t kind;             /* atomic: enum pl_kind (acquire pairs with
				    * the release in pl_set) */
	int mst;                   /* PL_MST: the library descriptor */
	int cloexec;               /* FD_CLOEXEC as the app set it */
	int dgram;                 /* PL_MST: a UDP socket */
	struct pl_pending *pend;   /* PL_PENDING */
	struct pl_ep *ep;          /* PL_EPOLL */
};

/* Marker in a shadow epoll's data for "the kernel epoll is readable". */
#define PL_EP_KERNEL UINT64_MAX

/* A kernel epoll with Mustang sockets in it: they live in `shadow` (an
 * mst epoll whose entries carry the app's fd) beside the kernel epoll
 * itself (registered in the shadow as a kernel descriptor). */
struct pl_ep {
	int shadow;                /* mst_epoll_create1 descriptor */
	pthread_mutex_t lock;      /* udata */
	epoll_data_t *udata;       /* [fd]: the app's data for Mustang fds */
	int cap;
};

/* Every wrapper starts here: a call may come before our constructor ran
 * (another library's constructor). */
#define PL_ENSURE() do { if (__builtin_expect(!real.socket, 0)) pl_init(); } while (0)

/* fdtab.c */
extern struct pl_fd *pl_tab;
extern int pl_tab_size;

static inline struct pl_fd *pl_slot(int fd)
{
	if (fd < 0 || fd >= pl_tab_size || !pl_tab)
		return NULL;
	return &pl_tab[fd];
}

static inline uint32_t pl_kind(int fd)
{
	struct pl_fd *s = pl_slot(fd);

	return s ? __atomic_load_n(&s->kind, __ATOMIC_ACQUIRE) : PL_NONE;
}

/* The Mustang descriptor behind fd, or -1 (kernel fd). *dead: a fork
 * child's inherited socket (the caller fails with EBADF). */
static inline int pl_mst(int fd, bool *dead)
{
	uint32_t k = pl_kind(fd);

	*dead = k == PL_DEAD;
	return k == PL_MST ? pl_tab[fd].mst : -1;
}

int pl_init(void);                            /* table + real symbols; 0 or -1 */
int pl_attach(void);                          /* 1 Mustang, 0 kernel fallback, -errno */
void pl_set(int fd, uint32_t kind, int mst, int cloexec, int dgram);
void pl_ref(int mst);
int pl_unref(int mst);                        /* mst_close when the last goes */
bool pl_excluded(const struct sockaddr *a, socklen_t len);
void pl_warn_once(const char *what, int err);
int pl_dead_err(void);                        /* warn; -1 with EBADF */
void pl_lock(void);
void pl_unlock(void);
int pl_hiwater(void);

/* sock.c */
int pl_promote(int fd, const struct sockaddr *to, socklen_t len);  /* 0 or -1 */
int pl_close_slot(int fd);                    /* our part of close(); 0 or -1 */

/* wait.c */
void pl_ep_free(struct pl_ep *ep);

/* The libc functions behind the wrappers. */
struct pl_real {
	int (*socket)(int, int, int);
	int (*bind)(int, const struct sockaddr *, socklen_t);
	int (*listen)(int, int);
	int (*accept)(int, struct sockaddr *, socklen_t *);
	int (*accept4)(int, struct sockaddr *, socklen_t *, int);
	int (*connect)(int, const struct sockaddr *, socklen_t);
	ssize_t (*read)(int, void *, size_t);
	ssize_t (*write)(int, const void *, size_t);
	ssize_t (*readv)(int, const struct iovec *, int);
	ssize_t (*writev)(int, const struct iovec *, int);
	ssize_t (*send)(int, const void *, size_t, int);
	ssize_t (*recv)(int, void *, size_t, int);
	ssize_t (*sendto)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
	ssize_t (*recvfrom)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
	ssize_t (*sendmsg)(int, const struct msghdr *, int);
	ssize_t (*recvmsg)(int, struct msghdr *, int);
	ssize_t (*sendfile)(int, int, off_t *, size_t);
	int (*close)(int);
	int (*close_range)(unsigned, unsigned, int);
	int (*shutdown)(int, int);
	int (*fcntl)(int, int, ...);
	int (*ioctl)(int, unsigned long, ...);
	int (*getsockopt)(int, int, int, void *, socklen_t *);
	int (*setsockopt)(int, int, int, const void *, socklen_t);
	int (*getsockname)(int, struct sockaddr *, socklen_t *);
	int (*getpeername)(int, struct sockaddr *, socklen_t *);
	int (*dup)(int);
	int (*dup2)(int, int);
	int (*dup3)(int, int, int);
	int (*poll)(struct pollfd *, nfds_t, int);
	int (*ppoll)(struct pollfd *, nfds_t, const struct timespec *, const sigset_t *);
	int (*select)(int, fd_set *, fd_set *, fd_set *, struct timeval *);
	int (*pselect)(int, fd_set *, fd_set *, fd_set *, const struct timespec *,
		       const sigset_t *);
	int (*epoll_create)(int);
	int (*epoll_create1)(int);
	int (*epoll_ctl)(int, int, int, struct epoll_event *);
	int (*epoll_wait)(int, struct epoll_event *, int, int);
	int (*epoll_pwait)(int, struct epoll_event *, int, int, const sigset_t *);
};
extern struct pl_real real;

#endif /* MST_PRELOAD_H */
