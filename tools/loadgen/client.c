/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mustang-load run: worker threads driving connections through the ops
 * table, and the main thread that times the run, samples CPU and prints
 * progress.
 *
 *   lg_run() -> worker() per thread: conns_open() -> loop { dispatch (open
 *   loop), epoll_wait, on_event() -> op_start()/op_done()/conn_fail(),
 *   scan_timeouts() } -> stream_drain()
 *
 * Each worker owns its connections, its epoll instance and its histogram;
 * nothing is shared on the data path except the stop flag. A connection
 * has at most one request outstanding (rr, crr, udp_rr); tcp_stream keeps
 * every connection's send buffer full.
 */
#include <errno.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lg.h"

enum conn_state {
	C_CLOSED,      /* no socket: crr between ops, or waiting to reconnect */
	C_CONNECTING,  /* connect() in progress */
	C_IDLE,        /* connected, no request (open loop waits for a due time) */
	C_SENDING,     /* request partly sent, waiting for EPOLLOUT */
	C_WAITING,     /* request sent, reading the response */
	C_STREAM,      /* tcp_stream: sending for ever */
	C_DRAIN,       /* tcp_stream end: SHUT_WR sent, waiting for the server's EOF */
	C_DEAD,        /* gave up after repeated failures */
};

#define MAX_FAILS 3               /* consecutive failures before a conn gives up */
#define RETRY_NS 100000000ull     /* reconnect back-off: 100 ms */
#define SCAN_NS 10000000ull       /* timeout scan period: 10 ms */
#define STREAM_BURST 16           /* sends per writable event */

struct conn {
	int fd;
	uint32_t gen;              /* bumped per socket: stale epoll events */
	enum conn_state st;
	uint32_t events;           /* registered epoll mask */
	uint32_t sent, rcvd;       /* bytes of the current request/response */
	uint64_t t_start;          /* op start (due time in open loop), ns */
	uint64_t deadline;         /* connect/response timeout, or retry time */
	uint64_t seq;              /* udp_rr: sequence in the payload */
	unsigned fails;            /* consecutive */
	bool want_op;              /* open loop: an op is waiting for the connect */
	struct lg_stall stall;     /* this connection's completions */
};

struct worker {
	pthread_t tid;
	unsigned idx;
	const struct lg_ops *ops;
	const struct lg_args *a;
	struct conn *c;
	unsigned n, alive;
	int ep;
	uint64_t quota;            /* measured ops to do, 0 = until the end time */
	uint64_t started;          /* ops started (open loop quota) */
	struct lg_sched sched;
	uint8_t *req, *buf;
	size_t buflen;
	struct hist *h;
	/* counted in the measured interval; relaxed atomics (progress line) */
	uint64_t nops, bytes_tx, bytes_rx, late;
	uint64_t max_stall_ns;     /* longest gap (across all threads) this thread closed */
	uint64_t errors[LG_ERR_N];
	int last_errno[LG_ERR_N];  /* errno at the last error of each kind */
	int rc;
};

static volatile sig_atomic_t g_stop;
static uint64_t g_measure_ns;     /* measurement starts */
static uint64_t g_end_ns;         /* 0: until the quota is done */
static uint64_t g_last_done_ns;   /* last completed op of any thread (stalls) */

#define ADD(p, n) __atomic_store_n((p), __atomic_load_n((p), __ATOMIC_RELAXED) + (n), \
				   __ATOMIC_RELAXED)
#define LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)

static inline bool measuring(uint64_t now)
{
	return now >= g_measure_ns && (g_end_ns == 0 || now < g_end_ns);
}

/* An op completed on c at now (in the measured interval): the stalls. */
static void stall_mark(struct worker *w, struct conn *c, uint64_t now)
{
	uint64_t gap = lg_stall_mark_shared(&g_last_done_ns, now);

	if (gap > w->max_stall_ns)
		w->max_stall_ns = gap;
	lg_stall_mark(&c->stall, now);
}

static void count_err(struct worker *w, enum lg_err e)
{
	ADD(&w->errors[e], 1);
	w->last_errno[e] = errno;   /* for the report: what "connect" etc. were */
}

static enum lg_err connect_err(int e)
{
	switch (e) {
	case ECONNREFUSED:
		return LG_ERR_REFUSED;
	case ETIMEDOUT:
		return LG_ERR_CONNECT_TIMEOUT;
	case EADDRNOTAVAIL:
	case EADDRINUSE:
		return LG_ERR_ADDR_NOT_AVAIL;
	case ECONNRESET:
		return LG_ERR_RESET;
	default:
		return LG_ERR_CONNECT;
	}
}

static int ep_set(struct worker *w, struct conn *c, uint32_t events)
{
	struct epoll_event ev = {
		.events = events,
		.data.u64 = (uint64_t)(c - w->c) | ((uint64_t)c->gen << 32),
	};
	int op = c->events == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;

	if (events == c->events)
		return 0;
	if (events == 0) {
		op = EPOLL_CTL_DEL;
	}
	if (w->ops->epoll_ctl(w->ep, op, c->fd, &ev) < 0)
		return -1;
	c->events = events;
	return 0;
}

static void conn_close(struct worker *w, struct conn *c)
{
	if (c->fd >= 0) {
		/* close() removes the socket from the interest list */
		w->ops->close(c->fd);
		c->fd = -1;
	}
	c->events = 0;
	c->gen++;
	c->st = C_CLOSED;
	c->deadline = 0;
}

/* A failure on c: count it, drop the socket, retry later or give up. */
static void conn_fail(struct worker *w, struct conn *c, enum lg_err e, uint64_t now)
{
	count_err(w, e);
	conn_close(w, c);
	if (++c->fails >= MAX_FAILS) {
		c->st = C_DEAD;
		w->alive--;
		return;
	}
	c->deadline = now + RETRY_NS;
	/* an interrupted op is retried (closed loop) or re-queued (open loop) */
	c->want_op = w->a->rate > 0 && c->t_start != 0;
}

static int sock_open(struct worker *w, struct conn *c, uint64_t now)
{
	const struct lg_ops *o = w->ops;
	bool udp = w->a->mode == LG_UDP_RR;
	struct sockaddr_in sa = w->a->target;
	int one = 1;

	if (w->a->mode == LG_TCP_STREAM)
		sa.sin_port = htons((uint16_t)(ntohs(sa.sin_port) + 1));
	c->fd = o->socket(AF_INET, udp ? SOCK_DGRAM : SOCK_STREAM, 0);
	if (c->fd < 0) {
		conn_fail(w, c, errno == EADDRNOTAVAIL ? LG_ERR_ADDR_NOT_AVAIL : LG_ERR_SOCKET, now);
		return -1;
	}
	c->gen++;
	c->events = 0;
	if (o->set_nonblock(c->fd) < 0) {
		conn_fail(w, c, LG_ERR_SOCKET, now);
		return -1;
	}
	if (!udp && w->a->mode != LG_TCP_STREAM)
		o->setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->deadline = now + (uint64_t)(w->a->timeout * 1e9);
	if (o->connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		c->st = C_IDLE;
		return 1;
	}
	if (errno != EINPROGRESS && errno != EAGAIN) {
		conn_fail(w, c, connect_err(errno), now);
		return -1;
	}
	c->st = C_CONNECTING;
	if (ep_set(w, c, EPOLLOUT) < 0) {
		conn_fail(w, c, LG_ERR_SOCKET, now);
		return -1;
	}
	return 0;
}

static void op_send(struct worker *w, struct conn *c, uint64_t now);

/* Begin an op on c at t_start (now in closed loop, the due time in open). */
static void op_start(struct worker *w, struct conn *c, uint64_t t_start, uint64_t now)
{
	c->t_start = t_start;
	c->sent = c->rcvd = 0;
	c->want_op = false;
	if (w->a->mode == LG_TCP_CRR && c->st == C_CLOSED) {
		c->want_op = true;   /* the connect is part of the op */
		int r = sock_open(w, c, now);

		if (r <= 0)
			return;
		c->want_op = false;
	}
	c->deadline = now + (uint64_t)(w->a->timeout * 1e9);
	op_send(w, c, now);
}

static void op_send(struct worker *w, struct conn *c, uint64_t now)
{
	const struct lg_args *a = w->a;

	if (a->mode == LG_UDP_RR && a->size >= sizeof(uint64_t)) {
		c->seq++;
		memcpy(w->req, &c->seq, sizeof(c->seq));
	}
	while (c->sent < a->size) {
		ssize_t n = w->ops->send(c->fd, w->req + c->sent, a->size - c->sent, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				c->st = C_SENDING;
				if (ep_set(w, c, EPOLLOUT) < 0)
					conn_fail(w, c, LG_ERR_SOCKET, now);
				return;
			}
			if (errno == EINTR)
				continue;
			conn_fail(w, c, errno == ECONNRESET || errno == EPIPE ? LG_ERR_RESET : LG_ERR_SEND,
				  now);
			return;
		}
		c->sent += (uint32_t)n;
		if (measuring(now))
			ADD(&w->bytes_tx, (uint64_t)n);
	}
	c->st = C_WAITING;
	if (ep_set(w, c, EPOLLIN) < 0)
		conn_fail(w, c, LG_ERR_SOCKET, now);
}

static bool quota_done(const struct worker *w)
{
	return w->quota != 0 && LOAD(&w->nops) >= w->quota;
}

/* The response is complete. */
static void op_done(struct worker *w, struct conn *c, uint64_t now)
{
	c->fails = 0;
	if (measuring(now)) {
		hist_record(w->h, now - c->t_start);
		ADD(&w->nops, 1);
		stall_mark(w, c, now);
	}
	if (w->a->mode == LG_TCP_CRR)
		conn_close(w, c);
	else
		c->st = C_IDLE;
	c->t_start = 0;
	if (w->a->rate > 0 || quota_done(w) || g_stop || (g_end_ns && now >= g_end_ns))
		return;
	op_start(w, c, now, now);   /* closed loop: the next op at once */
}

static void on_connected(struct worker *w, struct conn *c, uint64_t now)
{
	if (w->a->mode == LG_TCP_STREAM) {
		c->st = C_STREAM;
		if (ep_set(w, c, EPOLLOUT) < 0)
			conn_fail(w, c, LG_ERR_SOCKET, now);
		return;
	}
	if (w->a->mode == LG_TCP_CRR) {
		/* the op began before connect(): keep its start time */
		c->deadline = now + (uint64_t)(w->a->timeout * 1e9);
		op_send(w, c, now);
		return;
	}
	c->st = C_IDLE;
	if (ep_set(w, c, EPOLLIN) < 0) {   /* notice a peer close while idle */
		conn_fail(w, c, LG_ERR_SOCKET, now);
		return;
	}
	if (c->want_op)
		op_start(w, c, c->t_start, now);
	else if (w->a->rate == 0 && !quota_done(w))
		op_start(w, c, now, now);
}

static void on_readable(struct worker *w, struct conn *c, uint64_t now)
{
	const struct lg_args *a = w->a;

	for (;;) {
		size_t want = c->st == C_WAITING ? a->size - c->rcvd : w->buflen;
		ssize_t n;

		if (want > w->buflen)
			want = w->buflen;
		n = w->ops->recv(c->fd, w->buf, want, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			conn_fail(w, c, errno == ECONNRESET ? LG_ERR_RESET :
				  errno == ECONNREFUSED ? LG_ERR_REFUSED : LG_ERR_RECV, now);
			return;
		}
		if (n == 0) {
			if (c->st == C_DRAIN) {
				conn_close(w, c);
				c->st = C_DEAD;
				w->alive--;
				return;
			}
			errno = 0;
			conn_fail(w, c, LG_ERR_PEER_CLOSED, now);
			return;
		}
		if (c->st != C_WAITING) {
			/* bytes nobody asked for (idle conn, stream) */
			if (c->st != C_DRAIN)
				count_err(w, LG_ERR_BAD_RESPONSE);
			continue;
		}
		if (a->mode == LG_UDP_RR) {
			uint64_t seq;

			if ((size_t)n != a->size) {
				count_err(w, LG_ERR_BAD_RESPONSE);
				continue;
			}
			if (a->size >= sizeof(seq)) {
				memcpy(&seq, w->buf, sizeof(seq));
				if (seq != c->seq)
					continue;   /* a late answer to a timed-out request */
			}
		}
		c->rcvd += (uint32_t)n;
		if (measuring(now))
			ADD(&w->bytes_rx, (uint64_t)n);
		if (c->rcvd >= a->size) {
			op_done(w, c, now);
			return;
		}
	}
}

static void on_stream_writable(struct worker *w, struct conn *c, uint64_t now)
{
	for (int i = 0; i < STREAM_BURST; i++) {
		ssize_t n = w->ops->send(c->fd, w->req, w->a->size, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				return;
			conn_fail(w, c, errno == ECONNRESET || errno == EPIPE ? LG_ERR_RESET : LG_ERR_SEND,
				  now);
			return;
		}
		c->fails = 0;
		if (measuring(now)) {
			ADD(&w->bytes_tx, (uint64_t)n);
			stall_mark(w, c, now);
		}
	}
}

static void on_event(struct worker *w, struct conn *c, uint32_t ev, uint64_t now)
{
	switch (c->st) {
	case C_CONNECTING: {
		int err = 0;
		socklen_t len = sizeof(err);

		if (w->ops->getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err == 0 && (ev & (EPOLLERR | EPOLLHUP)))
			err = ECONNREFUSED;
		if (err != 0) {
			errno = err;
			conn_fail(w, c, connect_err(err), now);
			return;
		}
		on_connected(w, c, now);
		return;
	}
	case C_SENDING:
		if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			op_send(w, c, now);
		return;
	case C_WAITING:
	case C_IDLE:
	case C_DRAIN:
		on_readable(w, c, now);
		return;
	case C_STREAM:
		if (ev & (EPOLLERR | EPOLLHUP)) {
			on_readable(w, c, now);
			if (c->st != C_STREAM)
				return;
		}
		on_stream_writable(w, c, now);
		return;
	case C_CLOSED:
	case C_DEAD:
		return;
	}
}

/* Timeouts and reconnects; every SCAN_NS. */
static void scan(struct worker *w, uint64_t now)
{
	for (unsigned i = 0; i < w->n; i++) {
		struct conn *c = &w->c[i];

		errno = ETIMEDOUT;   /* what the timeouts below record */
		switch (c->st) {
		case C_CONNECTING:
			if (now >= c->deadline)
				conn_fail(w, c, LG_ERR_CONNECT_TIMEOUT, now);
			break;
		case C_SENDING:
		case C_WAITING:
			if (now >= c->deadline) {
				if (w->a->mode == LG_UDP_RR) {
					/* a lost datagram: count it, try the next */
					count_err(w, LG_ERR_RESPONSE_TIMEOUT);
					c->st = C_IDLE;
					c->t_start = 0;
					if (w->a->rate == 0)
						op_start(w, c, now, now);
				} else {
					conn_fail(w, c, LG_ERR_RESPONSE_TIMEOUT, now);
				}
			}
			break;
		case C_CLOSED:
			/* crr between ops has no socket and no deadline to wait */
			if (now < c->deadline || g_stop)
				break;
			if (w->a->mode == LG_TCP_CRR) {
				if (w->a->rate == 0 && !quota_done(w))
					op_start(w, c, now, now);
				else if (c->want_op)
					op_start(w, c, c->t_start, now);
			} else if (sock_open(w, c, now) > 0) {
				on_connected(w, c, now);
			}
			break;
		case C_IDLE:
		case C_STREAM:
		case C_DRAIN:
		case C_DEAD:
			break;
		}
	}
}

/* Open loop: start every op that is due on a free connection. Ops due
 * while every connection is busy wait (their latency still counts from
 * the due time): that is the point of measuring from the schedule. */
static void dispatch(struct worker *w, uint64_t now)
{
	uint64_t due;

	for (unsigned i = 0; i < w->n; i++) {
		struct conn *c = &w->c[i];
		bool free_conn = (c->st == C_IDLE) ||
				 (w->a->mode == LG_TCP_CRR && c->st == C_CLOSED && !c->want_op &&
				  now >= c->deadline);

		if (!free_conn)
			continue;
		if (w->quota != 0 && w->started >= w->quota)
			return;
		if (!lg_sched_take(&w->sched, now, &due))
			return;
		w->started++;
		if (now - due > 1000000 && measuring(now))
			ADD(&w->late, 1);
		op_start(w, c, due, now);
	}
}

static void stream_drain(struct worker *w)
{
	uint64_t end = lg_now_ns() + (uint64_t)(w->a->timeout * 1e9);
	struct epoll_event evs[64];

	w->alive = 0;
	for (unsigned i = 0; i < w->n; i++) {
		struct conn *c = &w->c[i];

		if (c->st != C_STREAM)
			continue;
		if (w->ops->shutdown(c->fd, SHUT_WR) < 0 || ep_set(w, c, EPOLLIN) < 0) {
			conn_close(w, c);
			continue;
		}
		c->st = C_DRAIN;
		w->alive++;
	}
	while (w->alive > 0 && lg_now_ns() < end) {
		int n = w->ops->epoll_wait(w->ep, evs, 64, 10);

		for (int i = 0; i < n; i++) {
			struct conn *c = &w->c[(uint32_t)evs[i].data.u64];

			if ((uint32_t)(evs[i].data.u64 >> 32) == c->gen && c->st == C_DRAIN)
				on_readable(w, c, lg_now_ns());
		}
	}
	if (w->alive > 0)
		count_err(w, LG_ERR_RESPONSE_TIMEOUT);  /* the sink never closed */
}

static void *worker(void *arg)
{
	struct worker *w = arg;
	const struct lg_args *a = w->a;
	struct epoll_event evs[256];
	uint64_t now = lg_now_ns(), next_scan = now + SCAN_NS;

	w->ep = w->ops->epoll_create();
	if (w->ep < 0) {
		w->rc = -errno;
		return NULL;
	}
	if (a->rate > 0)
		lg_sched_init(&w->sched, now, a->rate / a->threads);
	w->alive = w->n;
	for (unsigned i = 0; i < w->n; i++) {
		struct conn *c = &w->c[i];

		if (a->mode == LG_TCP_CRR) {
			if (a->rate == 0)
				op_start(w, c, now, now);
			continue;
		}
		if (sock_open(w, c, now) > 0)
			on_connected(w, c, now);
	}
	while (!g_stop && w->alive > 0) {
		int timeout = 10, n;

		now = lg_now_ns();
		if ((g_end_ns && now >= g_end_ns) || quota_done(w))
			break;
		if (a->rate > 0) {
			uint64_t due;

			dispatch(w, now);
			due = lg_sched_due(&w->sched);
			timeout = due <= now + 1000000 ? 0 : (int)((due - now) / 1000000);
			if (timeout > 10)
				timeout = 10;
		}
		n = w->ops->epoll_wait(w->ep, evs, 256, timeout);
		if (n < 0 && errno != EINTR) {
			w->rc = -errno;
			break;
		}
		now = lg_now_ns();
		for (int i = 0; i < n; i++) {
			uint32_t idx = (uint32_t)evs[i].data.u64;
			struct conn *c = &w->c[idx];

			if (idx >= w->n || (uint32_t)(evs[i].data.u64 >> 32) != c->gen)
				continue;   /* the socket this event was for is gone */
			on_event(w, c, evs[i].events, now);
		}
		if (now >= next_scan) {
			scan(w, now);
			next_scan = now + SCAN_NS;
		}
	}
	if (a->mode == LG_TCP_STREAM)
		stream_drain(w);
	for (unsigned i = 0; i < w->n; i++)
		if (w->c[i].fd >= 0)
			conn_close(w, &w->c[i]);
	w->ops->close(w->ep);
	return NULL;
}

static void on_signal(int sig)
{
	(void)sig;
	g_stop = 1;
}

static void sleep_until(uint64_t t)
{
	uint64_t now;

	while (!g_stop && (now = lg_now_ns()) < t) {
		uint64_t d = t - now;
		struct timespec ts = { .tv_sec = (time_t)(d / 1000000000u),
				       .tv_nsec = (long)(d % 1000000000u) };

		nanosleep(&ts, NULL);
	}
}

static bool workers_running(struct worker *ws, unsigned n)
{
	bool running = false;

	for (unsigned i = 0; i < n; i++) {
		if (ws[i].tid == 0)
			continue;
		if (pthread_tryjoin_np(ws[i].tid, NULL) == EBUSY)
			running = true;
		else
			ws[i].tid = 0;
	}
	return running;
}

static void progress(struct worker *ws, unsigned n, struct hist *tmp, uint64_t *last_ops,
		     uint64_t now, uint64_t t_prev)
{
	uint64_t ops = 0, bytes = 0, errs = 0;

	hist_init(tmp);
	for (unsigned i = 0; i < n; i++) {
		ops += LOAD(&ws[i].nops);
		bytes += LOAD(&ws[i].bytes_tx) + LOAD(&ws[i].bytes_rx);
		for (int e = 0; e < LG_ERR_N; e++)
			errs += LOAD(&ws[i].errors[e]);
		hist_merge(tmp, ws[i].h);
	}
	double dt = (double)(now - t_prev) / 1e9;
	if (ws[0].a->mode == LG_TCP_STREAM)
		fprintf(stderr, "\r%8.1f s  %10.3f Gbit/s  errors %llu   ",
			(double)(now - g_measure_ns) / 1e9,
			(double)bytes * 8 / 1e9 / ((double)(now - g_measure_ns) / 1e9),
			(unsigned long long)errs);
	else
		fprintf(stderr, "\r%8.1f s  %10.0f ops/s  p99 %8.1f us  errors %llu   ",
			(double)(now - g_measure_ns) / 1e9, (double)(ops - *last_ops) / dt,
			(double)hist_percentile(tmp, 99) / 1e3, (unsigned long long)errs);
	*last_ops = ops;
}

int lg_run(const struct lg_ops *ops, const struct lg_args *a, struct lg_result *r)
{
	struct worker *ws = calloc(a->threads, sizeof(*ws));
	struct hist *tmp = malloc(sizeof(*tmp));
	struct lg_cpu c0, c1;
	struct sigaction sa = { .sa_handler = on_signal };
	bool tty = !a->quiet && isatty(STDERR_FILENO);
	uint64_t start, last_ops = 0, t_prev, measured_end;
	int rc = 0;

	if (ws == NULL || tmp == NULL) {
		free(ws);
		free(tmp);
		return -ENOMEM;
	}
	memset(r, 0, sizeof(*r));
	r->args = *a;
	r->lat = malloc(sizeof(*r->lat));
	if (r->lat == NULL) {
		free(ws);
		free(tmp);
		return -ENOMEM;
	}
	hist_init(r->lat);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (lg_mode_is_pony(a->mode)) {
		free(ws);
		free(tmp);
		return lg_pony_run(a, r, &g_stop);
	}

	start = lg_now_ns();
	g_measure_ns = start + (uint64_t)(a->warmup * 1e9);
	g_end_ns = a->requests ? 0 : g_measure_ns + (uint64_t)(a->duration * 1e9);
	/* after a warm-up the connections are up: a stall at the start counts */
	g_last_done_ns = a->warmup > 0 ? g_measure_ns : 0;
	/* Everything a worker needs is allocated here, before it runs. */
	for (unsigned i = 0; i < a->threads; i++) {
		struct worker *w = &ws[i];
		unsigned n = a->conns / a->threads + (i < a->conns % a->threads);

		w->idx = i;
		w->ops = ops;
		w->a = a;
		w->n = n;
		w->c = calloc(n, sizeof(*w->c));
		w->buflen = a->size > 65536 ? a->size : 65536;
		w->req = malloc(a->size);
		w->buf = malloc(w->buflen);
		w->h = malloc(sizeof(*w->h));
		if (a->requests)
			w->quota = a->requests / a->threads + (i < a->requests % a->threads);
		if (w->c == NULL || w->req == NULL || w->buf == NULL || w->h == NULL) {
			rc = -ENOMEM;
			goto out_free;
		}
		for (unsigned k = 0; k < n; k++) {
			w->c[k].fd = -1;
			lg_stall_init(&w->c[k].stall, a->warmup > 0 ? g_measure_ns : 0);
		}
		memset(w->req, 'm', a->size);
		hist_init(w->h);
	}
	if (a->warmup == 0)
		lg_cpu_snapshot(&c0);
	for (unsigned i = 0; i < a->threads; i++) {
		if (pthread_create(&ws[i].tid, NULL, worker, &ws[i]) != 0) {
			g_stop = 1;
			for (unsigned k = 0; k < i; k++)
				pthread_join(ws[k].tid, NULL);
			rc = -EAGAIN;
			goto out_free;
		}
	}
	if (a->warmup > 0) {
		sleep_until(g_measure_ns);
		lg_cpu_snapshot(&c0);
	}
	t_prev = g_measure_ns;
	for (;;) {
		uint64_t tick = lg_now_ns() + 100000000u;   /* look every 100 ms */

		if (g_end_ns && tick > g_end_ns)
			tick = g_end_ns;
		sleep_until(tick);
		uint64_t now = lg_now_ns();

		if (!workers_running(ws, a->threads) || g_stop || (g_end_ns && now >= g_end_ns))
			break;
		if (tty && now >= t_prev + 1000000000u && now > g_measure_ns) {
			progress(ws, a->threads, tmp, &last_ops, now, t_prev);
			t_prev = now;
		}
	}
	measured_end = lg_now_ns();
	if (g_end_ns && measured_end > g_end_ns)
		measured_end = g_end_ns;
	lg_cpu_snapshot(&c1);
	for (unsigned i = 0; i < a->threads; i++)
		if (ws[i].tid != 0)
			pthread_join(ws[i].tid, NULL);
	if (tty)
		fputc('\n', stderr);
	lg_cpu_delta(&r->cpu, &c0, &c1);
	r->elapsed_s = (double)(measured_end - g_measure_ns) / 1e9;
	for (unsigned i = 0; i < a->threads; i++) {
		struct worker *w = &ws[i];

		r->ops += w->nops;
		r->bytes_tx += w->bytes_tx;
		r->bytes_rx += w->bytes_rx;
		r->ops_late += w->late;
		for (int e = 0; e < LG_ERR_N; e++) {
			r->errors[e] += w->errors[e];
			if (w->errors[e])
				r->last_errno[e] = w->last_errno[e];
		}
		hist_merge(r->lat, w->h);
		if (w->rc < 0 && rc == 0)
			rc = w->rc;
		if (w->max_stall_ns > r->max_stall_ns)
			r->max_stall_ns = w->max_stall_ns;
		for (unsigned k = 0; k < w->n; k++) {
			/* a --requests run ends when the ops are done: a connection
			 * whose thread finished first is not stalled */
			uint64_t s = lg_stall_end(&w->c[k].stall, g_measure_ns,
						  g_end_ns || !w->c[k].stall.last_ns ? measured_end :
						  w->c[k].stall.last_ns);

			if (s > r->max_conn_stall_ns)
				r->max_conn_stall_ns = s;
		}
	}
	{
		struct lg_stall all = { g_last_done_ns, r->max_stall_ns };

		r->max_stall_ns = lg_stall_end(&all, g_measure_ns,
					       g_end_ns || !g_last_done_ns ? measured_end : g_last_done_ns);
	}
	if (a->mode == LG_TCP_STREAM)
		r->ops = r->bytes_tx / a->size;
out_free:
	for (unsigned i = 0; i < a->threads; i++) {
		free(ws[i].c);
		free(ws[i].req);
		free(ws[i].buf);
		free(ws[i].h);
	}
	free(ws);
	free(tmp);
	return rc;
}
