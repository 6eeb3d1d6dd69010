/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mustang-load internals: the parsed command line, the socket ops table
 * that hides which stack is underneath, and the result of a run.
 *
 * Call order (main.c):
 *   lg_parse_args() -> lg_stack_find() -> ops->init()
 *   serve: lg_serve() [server.c]
 *   run:   lg_run() [client.c] -> lg_report_text() / lg_report_json() [report.c]
 */
#ifndef LG_H
#define LG_H

#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

#include "hist.h"

/* ---- command line ------------------------------------------------------ */

enum lg_cmd { LG_CMD_NONE, LG_CMD_SERVE, LG_CMD_RUN };

enum lg_mode { LG_TCP_RR, LG_TCP_CRR, LG_TCP_STREAM, LG_UDP_RR, LG_PONY_RR, LG_PONY_STREAM,
	       LG_PONY_READ };

static inline bool lg_mode_is_pony(enum lg_mode m)
{
	return m >= LG_PONY_RR;
}

#define LG_MAX_THREADS 64
#define LG_MAX_CONNS 65536
#define LG_MAX_SIZE (16u << 20)
#define LG_PONY_MAX_INFLIGHT 512u   /* pony_*: --conns (one stream id each) */

struct lg_args {
	enum lg_cmd cmd;
	const char *stack;            /* "kernel" or "mustang" */
	const char *ctl;              /* mustang control socket, NULL = default */
	uint16_t port;                /* serve: echo on port, sink on port + 1 */
	struct sockaddr_in target;    /* run */
	enum lg_mode mode;
	unsigned conns;
	unsigned threads;
	unsigned size;                /* bytes per request (rr/crr) or per write (stream) */
	double duration;              /* seconds; 0 with --requests */
	uint64_t requests;            /* 0: run for --duration */
	double rate;                  /* ops/s, 0 = closed loop */
	double warmup;                /* seconds not measured */
	double timeout;               /* connect / response timeout, seconds */
	const char *json;             /* --json FILE */
	bool quiet;                   /* no progress line even on a terminal */
	enum { LG_SERVE_ALL, LG_SERVE_SOCKETS, LG_SERVE_PONY } serve_only; /* serve --only */
};

/* 0, or -1 with a one-line message in err (no newline). */
int lg_parse_args(int argc, const char *const *argv, struct lg_args *a, char *err, size_t errlen);
void lg_usage(FILE *f);
const char *lg_mode_name(enum lg_mode m);

/* ---- stack ops ---------------------------------------------------------- */

/* Everything above this table is the same program for both stacks. Return
 * conventions are those of the Linux calls (-1 + errno). */
struct lg_ops {
	const char *name;
	int (*init)(const char *ctl);
	void (*fini)(void);
	int (*socket)(int domain, int type, int protocol);
	int (*bind)(int fd, const struct sockaddr *a, socklen_t len);
	int (*listen)(int fd, int backlog);
	int (*accept)(int fd, struct sockaddr *a, socklen_t *len);
	int (*connect)(int fd, const struct sockaddr *a, socklen_t len);
	ssize_t (*send)(int fd, const void *buf, size_t len, int flags);
	ssize_t (*recv)(int fd, void *buf, size_t len, int flags);
	ssize_t (*sendto)(int fd, const void *buf, size_t len, int flags,
			  const struct sockaddr *a, socklen_t alen);
	ssize_t (*recvfrom)(int fd, void *buf, size_t len, int flags, struct sockaddr *a,
			    socklen_t *alen);
	int (*shutdown)(int fd, int how);
	int (*close)(int fd);
	int (*setsockopt)(int fd, int level, int name, const void *v, socklen_t len);
	int (*getsockopt)(int fd, int level, int name, void *v, socklen_t *len);
	int (*set_nonblock)(int fd);
	int (*poll)(struct pollfd *fds, nfds_t n, int timeout_ms);
	int (*epoll_create)(void);
	int (*epoll_ctl)(int epfd, int op, int fd, struct epoll_event *ev);
	int (*epoll_wait)(int epfd, struct epoll_event *evs, int max, int timeout_ms);
	bool udp;                     /* SOCK_DGRAM supported */
};

extern const struct lg_ops lg_kernel_ops;
extern const struct lg_ops lg_mustang_ops; /* stubs failing with ENOTSUP when
					    * built without libmustang */
extern const bool lg_have_mustang;

/* ---- errors, by kind --------------------------------------------------- */

#define LG_FOREACH_ERR(_) \
	_(REFUSED, "refused", "connection refused") \
	_(CONNECT_TIMEOUT, "connect_timeout", "connect timed out") \
	_(CONNECT, "connect", "connect failed (other)") \
	_(RESET, "reset", "connection reset by peer") \
	_(PEER_CLOSED, "peer_closed", "peer closed the connection") \
	_(RESPONSE_TIMEOUT, "response_timeout", "no response in time") \
	_(SEND, "send", "send failed") \
	_(RECV, "recv", "recv failed") \
	_(SOCKET, "socket", "socket() failed") \
	_(ADDR_NOT_AVAIL, "addr_not_avail", "no local port/address available") \
	_(BAD_RESPONSE, "bad_response", "response of the wrong size")

enum lg_err {
#define LG_ERR_ENUM(e, s, d) LG_ERR_##e,
	LG_FOREACH_ERR(LG_ERR_ENUM)
#undef LG_ERR_ENUM
	LG_ERR_N
};

extern const char *const lg_err_name[LG_ERR_N];
extern const char *const lg_err_desc[LG_ERR_N];

/* ---- results ------------------------------------------------------------ */

struct lg_cpu {
	double user_s, sys_s;         /* this process (getrusage) */
	double machine_busy_s;        /* all CPUs, /proc/stat: not idle/iowait */
	double machine_total_s;
	unsigned ncpu;
};

struct lg_result {
	struct lg_args args;
	double elapsed_s;             /* measured interval */
	uint64_t ops;                 /* completed in the interval */
	uint64_t bytes_tx, bytes_rx;  /* payload, in the interval */
	uint64_t errors[LG_ERR_N];
	int last_errno[LG_ERR_N];     /* errno of the last error of each kind */
	struct lg_cpu cpu;
	struct hist *lat;             /* merged, nanoseconds */
	uint64_t ops_late;            /* open loop: sent after their intended time */
	uint64_t max_stall_ns;        /* longest time without any completed op */
	uint64_t max_conn_stall_ns;   /* the same on one connection (pony: one slot) */
};

/* ---- helpers shared by client/server/report ----------------------------- */

static inline uint64_t lg_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Open-loop schedule: op k of a thread is due at start + k * interval.
 * Latency is measured from the due time, so a stalled server shows up in
 * the latency of every request that should have been sent meanwhile. */
struct lg_sched {
	uint64_t start_ns;
	double interval_ns;
	uint64_t k;                   /* next op */
};

static inline void lg_sched_init(struct lg_sched *s, uint64_t start_ns, double rate_per_s)
{
	s->start_ns = start_ns;
	s->interval_ns = 1e9 / rate_per_s;
	s->k = 0;
}

static inline uint64_t lg_sched_due(const struct lg_sched *s)
{
	return s->start_ns + (uint64_t)((double)s->k * s->interval_ns);
}

/* 1 and the due time of the next op if it is due at now, else 0. */
static inline int lg_sched_take(struct lg_sched *s, uint64_t now, uint64_t *due)
{
	uint64_t d = lg_sched_due(s);

	if (d > now)
		return 0;
	*due = d;
	s->k++;
	return 1;
}

/* Stalls: the longest time in the measured interval in which no op
 * completed. It is how a pause of the server (an engine restart, a GC, a
 * lost link) shows from the client side: latency percentiles hide it when
 * only a few ops were in flight. An op of tcp_stream is one write.
 * Marks are the completion times; the first mark of a run closes a gap
 * only if the tracker was started with a time (lg_stall_init). At the end
 * a stall still going counts up to the end of the measured interval, and a
 * run without any op stalled for all of it. */
struct lg_stall {
	uint64_t last_ns;             /* last completion, 0 = none yet */
	uint64_t max_ns;
};

static inline void lg_stall_init(struct lg_stall *s, uint64_t start_ns)
{
	s->last_ns = start_ns;
	s->max_ns = 0;
}

static inline void lg_stall_mark(struct lg_stall *s, uint64_t now)
{
	if (now <= s->last_ns)
		return;
	if (s->last_ns != 0 && now - s->last_ns > s->max_ns)
		s->max_ns = now - s->last_ns;
	s->last_ns = now;
}

/* The same on a last-completion time shared by threads: the gap this
 * completion closed, 0 when another thread completed something later
 * already. A thread's completion time is taken when its poll returned, so
 * a gap can read longer than it was by the time that thread took to get
 * to the op (two threads on one core: up to a time slice). */
static inline uint64_t lg_stall_mark_shared(uint64_t *last_ns, uint64_t now)
{
	uint64_t prev = __atomic_load_n(last_ns, __ATOMIC_RELAXED);

	while (now > prev) {
		if (__atomic_compare_exchange_n(last_ns, &prev, now, true, __ATOMIC_RELAXED,
						__ATOMIC_RELAXED))
			return prev != 0 ? now - prev : 0;
	}
	return 0;
}

/* The longest stall of a tracker once the measured interval [start, end]
 * is over. */
static inline uint64_t lg_stall_end(const struct lg_stall *s, uint64_t start_ns, uint64_t end_ns)
{
	uint64_t m = s->max_ns;

	if (s->last_ns == 0 || s->last_ns < start_ns)
		return end_ns > start_ns ? end_ns - start_ns : 0;
	if (end_ns > s->last_ns && end_ns - s->last_ns > m)
		m = end_ns - s->last_ns;
	return m;
}

void lg_cpu_snapshot(struct lg_cpu *c);
void lg_cpu_delta(struct lg_cpu *out, const struct lg_cpu *a, const struct lg_cpu *b);

int lg_run(const struct lg_ops *ops, const struct lg_args *a, struct lg_result *r);
int lg_serve(const struct lg_ops *ops, const struct lg_args *a);

/* pony.c (--stack mustang): the pony_* modes. lg_pony_run fills r (whose
 * lat the caller allocated); lg_pony_serve_start runs the Pony server
 * thread of `serve` until *stop. 0 or -errno (-EPROTONOSUPPORT: Pony is
 * off in the daemon). */
#include <pthread.h>
int lg_pony_run(const struct lg_args *a, struct lg_result *r, volatile int *stop);
int lg_pony_serve_start(const struct lg_args *a, volatile int *stop, pthread_t *tid);

void lg_report_text(FILE *f, const struct lg_result *r);
int lg_report_json(const char *path, const struct lg_result *r);

#endif /* LG_H */
