/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mustang-load serve: TCP echo on --port (tcp_rr, tcp_crr), TCP sink on
 * --port + 1 (tcp_stream: read and drop, close on EOF), UDP echo on --port
 * (udp_rr; stacks with UDP sockets only).
 *
 *   lg_serve() -> listeners_open() -> srv_thread() per thread:
 *   epoll_wait -> accept_all() | echo_in()/echo_out() | sink_in()
 *
 * Each thread has its own epoll instance. With SO_REUSEPORT each thread
 * has its own listeners; a stack that refuses it gets one set of listeners
 * watched by every thread (an accept that loses the race gets EAGAIN).
 */
#include <errno.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lg.h"

enum lst_kind { L_ECHO, L_SINK, L_UDP, L_N };

struct srv_conn {
	int fd;
	bool sink;
	uint8_t *pend;             /* echo bytes the socket did not take yet */
	size_t pend_off, pend_len, pend_cap;
};

struct srv {
	const struct lg_ops *ops;
	const struct lg_args *a;
	int lfd[L_N];              /* -1: none */
	int ep;
	pthread_t tid;
	uint8_t *buf;
	size_t buflen;
};

#define SRV_BUF (256 * 1024)
#define TAG_LISTEN (UINT64_C(1) << 63)

static volatile sig_atomic_t s_stop;

static void on_signal(int sig)
{
	(void)sig;
	s_stop = 1;
}

static const char *l_failed;   /* the call that failed, for the message */

static int listener(const struct lg_ops *o, int type, uint16_t port, bool reuseport)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = o->socket(AF_INET, type, 0), one = 1;

	l_failed = "socket";
	if (fd < 0)
		return -1;
	o->setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	l_failed = "setsockopt(SO_REUSEPORT)";
	if (reuseport && o->setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
		goto out_close;
	l_failed = "bind";
	if (o->bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		goto out_close;
	l_failed = "listen";
	if (type == SOCK_STREAM && o->listen(fd, 4096) < 0)
		goto out_close;
	l_failed = "fcntl(O_NONBLOCK)";
	if (o->set_nonblock(fd) < 0)
		goto out_close;
	return fd;
out_close:
	{
		int e = errno;

		o->close(fd);
		errno = e;
	}
	return -1;
}

static int listeners_open(struct srv *s, bool reuseport)
{
	const struct lg_ops *o = s->ops;

	s->lfd[L_ECHO] = listener(o, SOCK_STREAM, s->a->port, reuseport);
	if (s->lfd[L_ECHO] < 0)
		return -1;
	s->lfd[L_SINK] = listener(o, SOCK_STREAM, (uint16_t)(s->a->port + 1), reuseport);
	if (s->lfd[L_SINK] < 0)
		return -1;
	s->lfd[L_UDP] = -1;
	if (o->udp) {
		s->lfd[L_UDP] = listener(o, SOCK_DGRAM, s->a->port, reuseport);
		if (s->lfd[L_UDP] < 0)
			return -1;
	}
	return 0;
}

static void listeners_close(struct srv *s)
{
	for (int k = 0; k < L_N; k++) {
		if (s->lfd[k] >= 0)
			s->ops->close(s->lfd[k]);
		s->lfd[k] = -1;
	}
}

static void conn_drop(struct srv *s, struct srv_conn *c)
{
	s->ops->close(c->fd);
	free(c->pend);
	free(c);
}

/* Send what is pending; 1 when all of it went, 0 when the socket is full,
 * -1 when the connection is gone. */
static int echo_flush(struct srv *s, struct srv_conn *c)
{
	while (c->pend_len > 0) {
		ssize_t n = s->ops->send(c->fd, c->pend + c->pend_off, c->pend_len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
		}
		c->pend_off += (size_t)n;
		c->pend_len -= (size_t)n;
	}
	c->pend_off = 0;
	return 1;
}

static void echo_in(struct srv *s, struct srv_conn *c, struct epoll_event *ev)
{
	for (;;) {
		ssize_t n = s->ops->recv(c->fd, s->buf, s->buflen, 0), m;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			conn_drop(s, c);
			return;
		}
		if (n == 0) {
			conn_drop(s, c);
			return;
		}
		if (c->sink)
			continue;
		m = 0;
		while (m < n) {
			ssize_t k = s->ops->send(c->fd, s->buf + m, (size_t)(n - m), MSG_NOSIGNAL);

			if (k < 0) {
				if (errno == EINTR)
					continue;
				if (errno != EAGAIN && errno != EWOULDBLOCK) {
					conn_drop(s, c);
					return;
				}
				break;
			}
			m += k;
		}
		if (m < n) {
			/* the peer is not reading: keep the rest, stop reading
			 * until it is sent (EPOLLOUT only) */
			size_t rest = (size_t)(n - m);

			if (c->pend_cap < rest) {
				uint8_t *p = realloc(c->pend, rest);

				if (p == NULL) {
					conn_drop(s, c);
					return;
				}
				c->pend = p;
				c->pend_cap = rest;
			}
			memcpy(c->pend, s->buf + m, rest);
			c->pend_off = 0;
			c->pend_len = rest;
			ev->events = EPOLLOUT;
			ev->data.ptr = c;
			if (s->ops->epoll_ctl(s->ep, EPOLL_CTL_MOD, c->fd, ev) < 0)
				conn_drop(s, c);
			return;
		}
	}
}

static void echo_out(struct srv *s, struct srv_conn *c, struct epoll_event *ev)
{
	int r = echo_flush(s, c);

	if (r < 0) {
		conn_drop(s, c);
	} else if (r > 0) {
		ev->events = EPOLLIN;
		ev->data.ptr = c;
		if (s->ops->epoll_ctl(s->ep, EPOLL_CTL_MOD, c->fd, ev) < 0)
			conn_drop(s, c);
		else
			echo_in(s, c, ev);
	}
}

static void accept_all(struct srv *s, int lfd, bool sink)
{
	for (;;) {
		int fd = s->ops->accept(lfd, NULL, NULL), one = 1;
		struct epoll_event ev = { .events = EPOLLIN };
		struct srv_conn *c;

		if (fd < 0)
			return;   /* EAGAIN, or a transient error: next event */
		c = calloc(1, sizeof(*c));
		if (c == NULL || s->ops->set_nonblock(fd) < 0) {
			free(c);
			s->ops->close(fd);
			continue;
		}
		c->fd = fd;
		c->sink = sink;
		if (!sink)
			s->ops->setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		ev.data.ptr = c;
		if (s->ops->epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev) < 0)
			conn_drop(s, c);
	}
}

static void udp_echo(struct srv *s, int fd)
{
	for (;;) {
		struct sockaddr_in from;
		socklen_t flen = sizeof(from);
		ssize_t n = s->ops->recvfrom(fd, s->buf, s->buflen, 0, (struct sockaddr *)&from, &flen);

		if (n < 0)
			return;
		s->ops->sendto(fd, s->buf, (size_t)n, 0, (struct sockaddr *)&from, flen);
	}
}

static void *srv_thread(void *arg)
{
	struct srv *s = arg;
	struct epoll_event evs[256];

	while (!s_stop) {
		int n = s->ops->epoll_wait(s->ep, evs, 256, 100);

		for (int i = 0; i < n; i++) {
			if (evs[i].data.u64 & TAG_LISTEN) {
				int k = (int)(evs[i].data.u64 & 0xff);

				if (k == L_UDP)
					udp_echo(s, s->lfd[k]);
				else
					accept_all(s, s->lfd[k], k == L_SINK);
				continue;
			}
			struct srv_conn *c = evs[i].data.ptr;

			if ((evs[i].events & EPOLLOUT) && c->pend_len > 0)
				echo_out(s, c, &evs[i]);
			else
				echo_in(s, c, &evs[i]);
		}
	}
	return NULL;
}

int lg_serve(const struct lg_ops *ops, const struct lg_args *a)
{
	struct srv *ss = calloc(a->threads, sizeof(*ss));
	struct sigaction sa = { .sa_handler = on_signal };
	bool reuseport = a->threads > 1, pony = false;
	pthread_t pony_tid;
	int rc = 0;

	if (ss == NULL)
		return -ENOMEM;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (a->serve_only == LG_SERVE_PONY) {
		free(ss);
		rc = lg_pony_serve_start(a, &s_stop, &pony_tid);
		if (rc < 0) {
			fprintf(stderr, "mustang-load: cannot serve Pony on service %u: %s\n", a->port,
				strerror(-rc));
			return rc;
		}
		printf("mustang-load: serving --stack mustang: pony echo/sink/read on service %u\n",
		       a->port);
		fflush(stdout);
		pthread_join(pony_tid, NULL);
		return 0;
	}
	for (unsigned i = 0; i < a->threads; i++) {
		struct srv *s = &ss[i];

		s->ops = ops;
		s->a = a;
		s->buflen = SRV_BUF;
		s->buf = malloc(SRV_BUF);
		s->ep = ops->epoll_create();
		if (s->buf == NULL || s->ep < 0) {
			rc = -errno;
			goto out;
		}
		for (int k = 0; k < L_N; k++)
			s->lfd[k] = -1;
		if (i == 0 || reuseport) {
			int r = listeners_open(s, reuseport);

			if (r < 0 && i == 0 && reuseport) {
				/* no SO_REUSEPORT on this stack: the threads share
				 * one set of listeners */
				listeners_close(s);
				reuseport = false;
				r = listeners_open(s, false);
			}
			if (r < 0) {
				rc = -errno;
				fprintf(stderr, "mustang-load: cannot listen on port %u or %u: %s: %s\n",
					a->port, a->port + 1, l_failed, strerror(errno));
				goto out;
			}
		}
		if (i > 0 && !reuseport)
			memcpy(s->lfd, ss[0].lfd, sizeof(s->lfd));
		for (int k = 0; k < L_N; k++) {
			struct epoll_event ev = { .events = EPOLLIN, .data.u64 = TAG_LISTEN | (uint64_t)k };

			if (s->lfd[k] >= 0 && ops->epoll_ctl(s->ep, EPOLL_CTL_ADD, s->lfd[k], &ev) < 0) {
				rc = -errno;
				fprintf(stderr, "mustang-load: epoll_ctl: %s\n", strerror(errno));
				goto out;
			}
		}
	}
	if (ops == &lg_mustang_ops && a->serve_only == LG_SERVE_ALL) {
		int prc = lg_pony_serve_start(a, &s_stop, &pony_tid);

		if (prc == 0)
			pony = true;
		else
			fprintf(stderr, "mustang-load: no Pony server on service %u: %s\n", a->port,
				strerror(-prc));
	}
	printf("mustang-load: serving --stack %s, %u thread(s): tcp echo on %u, tcp sink on %u%s%s\n",
	       ops->name, a->threads, a->port, a->port + 1, ops->udp ? ", udp echo on the first" : "",
	       pony ? ", pony echo/sink/read on the same service" : "");
	fflush(stdout);
	for (unsigned i = 1; i < a->threads; i++)
		if (pthread_create(&ss[i].tid, NULL, srv_thread, &ss[i]) != 0) {
			rc = -EAGAIN;
			s_stop = 1;
			for (unsigned k = 1; k < i; k++)
				pthread_join(ss[k].tid, NULL);
			goto out;
		}
	srv_thread(&ss[0]);
	for (unsigned i = 1; i < a->threads; i++)
		pthread_join(ss[i].tid, NULL);
	if (pony)
		pthread_join(pony_tid, NULL);
out:
	/* connections are released by the process exit (and, for mustang,
	 * by the detach in fini) */
	for (unsigned i = 0; i < a->threads; i++)
		free(ss[i].buf);
	free(ss);
	return rc;
}
