/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libmustang against a fake engine: the test lays out a segment per
 * <mustang/shm_abi.h> in a memfd, attaches the library to it through
 * lib_attach_fds() (client/priv.h), and runs a thread that plays the
 * engine: it consumes commands, answers DONE, echoes TX bytes back into RX
 * after a random delay, posts READY to the NOTIFY qp and signals eventfds
 * per the wake protocol. Datagram sockets (SOCKET a = 2) echo records: a
 * datagram sent to A:P comes back from A:P (the connected peer for 0/0),
 * one record at a time, only while it fits in RX (no drops: tests stay
 * deterministic); E.paused stops the pump.
 */

#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "fifo.h"
#include "priv.h"
#include "ring.h"

#define N_QPS 4u
#define N_SOCKS 32u
#define FIFO_SZ 4096u

static struct {
	uint8_t *base;
	size_t size;
	struct mst_shm_hdr *hdr;
	struct mst_shm_qp *qps;
	struct mst_shm_sock *socks;
	int efd[N_QPS];
	int ctl[2];
	pthread_t th;
	volatile int stop;
	int owner[N_SOCKS];        /* qp that gets READY */
	int used[N_SOCKS];
	int64_t due[N_SOCKS];      /* echo not before (ns) */
	int max_delay_us;
	unsigned seed;
	uint64_t signals, notifies;
	int dgram[N_SOCKS];
	volatile int paused;       /* pump stopped (commands still served) */
	uint64_t dgrams, bad_recs;
} E;

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Engine side of the wake protocol: publish (release in ring_push), full
 * fence, read wake, signal. */
static void eng_post(int qp, struct mst_shm_msg *m)
{
	while (ring_push(&E.qps[qp].evt, m) < 0)
		sched_yield();
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (__atomic_load_n(&E.qps[qp].wake, __ATOMIC_RELAXED)) {
		uint64_t one = 1;

		E.signals++;
		if (write(E.efd[qp], &one, sizeof(one)) < 0)
			abort();
	}
}

static void eng_ready(int s)
{
	struct mst_shm_msg m = { .op = MST_EV_READY, .sock = s };

	m.a = __atomic_load_n(&E.socks[s].ready, __ATOMIC_RELAXED);
	eng_post(E.owner[s], &m);
}

static uint32_t rec_size(uint32_t len)
{
	return (uint32_t)(sizeof(struct mst_shm_dgram) + len + 7) & ~7u;
}

/* Datagram socket: move whole records from TX to RX while they fit. */
static void eng_echo_dgram(int s)
{
	struct mst_shm_sock *k = &E.socks[s];
	uint32_t tail = __atomic_load_n(&k->tx_tail, __ATOMIC_ACQUIRE); /* F3 */
	uint32_t rxh = __atomic_load_n(&k->rx_head, __ATOMIC_ACQUIRE);  /* F2 */
	uint8_t buf[FIFO_SZ];
	int moved = 0;

	if (now_ns() < E.due[s])
		return;
	while (tail != k->tx_head) {
		struct mst_shm_dgram h;
		uint32_t pend = tail - k->tx_head, room = FIFO_SZ - (k->rx_tail - rxh), need;

		if (pend < sizeof(h) || pend > FIFO_SZ) {
			E.bad_recs++;
			break;
		}
		fifo_copy_out(E.base + k->tx_off, FIFO_SZ, k->tx_head, &h, sizeof(h));
		need = rec_size(h.len);
		if (h.len > MST_SHM_DGRAM_MAX || need > pend) {
			E.bad_recs++;
			break;
		}
		if (need > room)
			break; /* wait for the reader */
		fifo_copy_out(E.base + k->tx_off, FIFO_SZ, k->tx_head, buf, need);
		if (!h.addr && !h.port) {
			h.addr = k->remote_ip;
			h.port = k->remote_port;
		}
		memcpy(buf, &h, sizeof(h));
		fifo_copy_in(E.base + k->rx_off, FIFO_SZ, k->rx_tail, buf, need);
		__atomic_store_n(&k->tx_head, k->tx_head + need, __ATOMIC_RELEASE); /* F4 */
		__atomic_store_n(&k->rx_tail, k->rx_tail + need, __ATOMIC_RELEASE); /* F1 */
		E.dgrams++;
		moved = 1;
		if (E.max_delay_us)
			break; /* one per delay */
	}
	if (!moved)
		return;
	__atomic_store_n(&k->ready, MST_READY_IN | MST_READY_OUT, __ATOMIC_RELEASE);
	eng_ready(s);
	E.due[s] = now_ns() + (E.max_delay_us ? (rand_r(&E.seed) % E.max_delay_us) * 1000 : 0);
}

/* Move TX bytes into RX (loopback echo) as far as RX space allows. */
static void eng_echo(int s)
{
	struct mst_shm_sock *k = &E.socks[s];
	uint32_t tail = __atomic_load_n(&k->tx_tail, __ATOMIC_ACQUIRE); /* F3 */
	uint32_t rxh = __atomic_load_n(&k->rx_head, __ATOMIC_ACQUIRE);  /* F2 */
	uint32_t pend = tail - k->tx_head, room = FIFO_SZ - (k->rx_tail - rxh), n;
	uint8_t buf[FIFO_SZ];

	n = pend < room ? pend : room;
	if (!n || now_ns() < E.due[s])
		return;
	fifo_copy_out(E.base + k->tx_off, FIFO_SZ, k->tx_head, buf, n);
	fifo_copy_in(E.base + k->rx_off, FIFO_SZ, k->rx_tail, buf, n);
	__atomic_store_n(&k->tx_head, k->tx_head + n, __ATOMIC_RELEASE); /* F4 */
	__atomic_store_n(&k->rx_tail, k->rx_tail + n, __ATOMIC_RELEASE); /* F1 */
	__atomic_store_n(&k->ready, MST_READY_IN | MST_READY_OUT, __ATOMIC_RELEASE);
	eng_ready(s);
	E.due[s] = now_ns() + (E.max_delay_us ? (rand_r(&E.seed) % E.max_delay_us) * 1000 : 0);
}

static void eng_cmd(int qp, const struct mst_shm_msg *c)
{
	struct mst_shm_msg r = { .op = MST_EV_DONE, .sock = c->sock, .seq = c->seq };
	int s = c->sock;
	bool valid = s >= 0 && s < (int)N_SOCKS && E.used[s];

	switch (c->op) {
	case MST_CMD_SOCKET:
		for (s = 0; s < (int)N_SOCKS && E.used[s]; s++)
			;
		if (s == N_SOCKS) {
			r.result = -ENFILE;
			break;
		}
		if (c->a != 1 && c->a != 2) {
			r.result = -EINVAL;
			break;
		}
		E.used[s] = 1;
		E.dgram[s] = c->a == 2;
		E.owner[s] = qp;
		E.due[s] = 0;
		{
			struct mst_shm_sock *k = &E.socks[s];
			uint32_t g = k->gen + 1;

			memset(k, 0, sizeof(*k));
			k->gen = g;
			k->state = MST_SOCK_NEW;
			k->rx_off = E.hdr->fifo_off + (uint64_t)s * 2 * FIFO_SZ;
			k->tx_off = k->rx_off + FIFO_SZ;
			k->rx_size = k->tx_size = FIFO_SZ;
			/* Start counters near 2^32 so the library's wrap is used. */
			k->rx_head = k->rx_tail = k->tx_head = k->tx_tail = UINT32_MAX - 1000;
		}
		r.result = s;
		break;
	case MST_CMD_CONNECT:
		if (!valid) {
			r.result = -EBADF;
			break;
		}
		E.socks[s].remote_ip = (uint32_t)c->a;
		E.socks[s].remote_port = (uint16_t)c->b;
		if (E.dgram[s]) { /* no handshake: DONE 0 */
			if (!E.socks[s].local_port)
				E.socks[s].local_port = (uint16_t)(50000 + s);
			break;
		}
		E.socks[s].local_port = 40000;
		if (c->b == 1) { /* port 1: refused */
			__atomic_store_n(&E.socks[s].error, ECONNREFUSED, __ATOMIC_RELEASE);
			__atomic_store_n(&E.socks[s].state, MST_SOCK_CLOSED, __ATOMIC_RELEASE);
			__atomic_store_n(&E.socks[s].ready, MST_READY_ERR | MST_READY_HUP, __ATOMIC_RELEASE);
		} else {
			__atomic_store_n(&E.socks[s].state, MST_SOCK_ESTABLISHED, __ATOMIC_RELEASE);
			__atomic_store_n(&E.socks[s].ready, MST_READY_OUT, __ATOMIC_RELEASE);
		}
		eng_post(qp, &r);
		eng_ready(s);
		return;
	case MST_CMD_TX:
	case MST_CMD_RX_DONE:
		return; /* doorbells: the pump does the work */
	case MST_CMD_NOTIFY:
		/* As mustangd: no DONE, a READY to the new receiver. */
		if (valid) {
			E.owner[s] = qp;
			E.notifies++;
			eng_ready(s);
		}
		return;
	case MST_CMD_GETOPT:
		r.result = valid ? 0 : -EBADF;
		if (valid && c->a == MST_OPT_ERROR) {
			r.a = (uint64_t)__atomic_exchange_n(&E.socks[s].error, 0, __ATOMIC_ACQ_REL);
		}
		break;
	case MST_CMD_BIND:
		if (!valid || E.socks[s].local_port) {
			r.result = valid ? -EINVAL : -EBADF;
			break;
		}
		/* Port 0: an ephemeral one, published before the DONE. */
		E.socks[s].local_port = c->a ? (uint16_t)c->a : (uint16_t)(50000 + s);
		E.socks[s].local_ip = (uint32_t)c->b;
		break;
	case MST_CMD_SETOPT:
	case MST_CMD_SHUTDOWN:
		r.result = valid ? 0 : -EBADF;
		break;
	case MST_CMD_CLOSE:
		r.result = valid ? 0 : -EBADF;
		if (valid) {
			E.used[s] = 0;
			E.socks[s].state = MST_SOCK_FREE;
		}
		break;
	default:
		r.op = MST_EV_ERROR;
		r.result = -EINVAL;
		break;
	}
	eng_post(qp, &r);
}

static void *engine(void *arg)
{
	while (!E.stop) {
		struct mst_shm_msg c;
		int busy = 0;

		for (unsigned q = 0; q < N_QPS; q++)
			while (ring_pop(&E.qps[q].cmd, &c) == 1) {
				eng_cmd((int)q, &c);
				busy = 1;
			}
		for (unsigned s = 0; s < N_SOCKS && !E.paused; s++)
			if (E.used[s] && E.dgram[s])
				eng_echo_dgram((int)s);
			else if (E.used[s])
				eng_echo((int)s);
		if (!busy)
			sched_yield();
	}
	return NULL;
}

static int setup(void **state)
{
	/* The header is more than one cache line (local_ip at 64): qps after. */
	size_t qp_off = 2 * MST_SHM_CACHELINE, sock_off, fifo_off, size;
	int memfd;

	memset(&E, 0, sizeof(E));
	sock_off = qp_off + N_QPS * sizeof(struct mst_shm_qp);
	fifo_off = (sock_off + N_SOCKS * sizeof(struct mst_shm_sock) + 4095) & ~(size_t)4095;
	size = fifo_off + N_SOCKS * 2 * FIFO_SZ;
	memfd = memfd_create("mst-test", MFD_CLOEXEC);
	assert_true(memfd >= 0);
	assert_int_equal(ftruncate(memfd, (off_t)size), 0);
	E.base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	assert_true(E.base != MAP_FAILED);
	E.size = size;
	E.hdr = (struct mst_shm_hdr *)E.base;
	*E.hdr = (struct mst_shm_hdr){
		.magic = MST_SHM_MAGIC, .version = MST_SHM_VERSION, .size = size,
		.n_qps = N_QPS, .n_socks = N_SOCKS, .qp_off = qp_off, .sock_off = sock_off,
		.fifo_off = fifo_off, .fifo_size = N_SOCKS * 2 * FIFO_SZ, .app_id = 1,
		.local_ip = htonl(0x0a000001),
	};
	E.qps = (struct mst_shm_qp *)(E.base + qp_off);
	E.socks = (struct mst_shm_sock *)(E.base + sock_off);
	for (unsigned i = 0; i < N_QPS; i++) {
		/* Free-running indices start near 2^32. */
		E.qps[i].cmd.prod = E.qps[i].cmd.cons = UINT32_MAX - 50;
		E.qps[i].evt.prod = E.qps[i].evt.cons = UINT32_MAX - 70;
		E.efd[i] = eventfd(0, EFD_CLOEXEC);
	}
	for (unsigned i = 0; i < N_SOCKS; i++)
		E.socks[i].state = MST_SOCK_FREE;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, E.ctl), 0);
	E.seed = 12345;
	E.max_delay_us = 0;
	assert_int_equal(lib_attach_fds(E.ctl[0], memfd, E.efd, N_QPS), 0);
	mst_lib.spin_ns = 0; /* every wait sleeps: exercises the wake protocol */
	pthread_create(&E.th, NULL, engine, NULL);
	return 0;
}

static int teardown(void **state)
{
	E.stop = 1;
	pthread_join(E.th, NULL);
	mst_fini();
	close(E.ctl[1]);
	munmap(E.base, E.size);
	return 0;
}

static int connected_socket(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(7),
				  .sin_addr.s_addr = htonl(0x0a000002) };
	int fd = mst_socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= MST_FD_BASE);
	assert_int_equal(mst_connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static void test_qp_claim_is_per_thread_and_released_at_exit(void **state)
{
	struct thr *t = thr_get();
	uint64_t used;

	assert_non_null(t);
	assert_int_equal(t->qp, 0);
	assert_ptr_equal(thr_get(), t);
	used = __atomic_load_n(&mst_lib.qp_used, __ATOMIC_RELAXED);
	assert_int_equal(used, 1);
}

static void *claim_and_exit(void *arg)
{
	struct thr *t = thr_get();

	*(int *)arg = t ? t->qp : -1;
	return NULL;
}

static void test_qp_of_exited_thread_is_reused(void **state)
{
	pthread_t th;
	int qp1 = -1, qp2 = -1;

	thr_get();
	pthread_create(&th, NULL, claim_and_exit, &qp1);
	pthread_join(th, NULL);
	pthread_create(&th, NULL, claim_and_exit, &qp2);
	pthread_join(th, NULL);
	assert_int_equal(qp1, 1);
	assert_int_equal(qp2, 1);
	assert_int_equal(__atomic_load_n(&mst_lib.qp_used, __ATOMIC_RELAXED), 1);
}

static void test_submit_and_wait_by_seq(void **state)
{
	struct thr *t = thr_get();

	for (int i = 0; i < 2000; i++) {
		struct mst_shm_msg m = { .op = MST_CMD_SOCKET, .sock = -1, .a = 1 };
		int r = cmd_call(t, &m);

		assert_true(r >= 0 && r < (int)N_SOCKS);
		m = (struct mst_shm_msg){ .op = MST_CMD_CLOSE, .sock = r };
		assert_int_equal(cmd_call(t, &m), 0);
	}
	/* An unknown command is rejected with its seq. */
	struct mst_shm_msg bad = { .op = 99, .sock = -1 };
	assert_int_equal(cmd_call(t, &bad), -EINVAL);
}

static void test_socket_errno_like_linux(void **state)
{
	int fd = mst_socket(AF_INET, SOCK_STREAM, 0);
	char b[4];

	assert_int_equal(mst_socket(AF_INET, SOCK_DGRAM, IPPROTO_TCP), -1);
	assert_int_equal(errno, EPROTONOSUPPORT);
	assert_int_equal(mst_socket(AF_INET, SOCK_STREAM, IPPROTO_UDP), -1);
	assert_int_equal(errno, EPROTONOSUPPORT);
	assert_int_equal(mst_socket(AF_INET6, SOCK_STREAM, 0), -1);
	assert_int_equal(errno, EAFNOSUPPORT);
	assert_int_equal(mst_send(fd, "x", 1, 0), -1);
	assert_int_equal(errno, EPIPE);
	assert_int_equal(mst_recv(fd, b, 1, MSG_DONTWAIT), -1);
	assert_int_equal(errno, ENOTCONN);
	assert_int_equal(mst_shutdown(fd, SHUT_WR), -1);
	assert_int_equal(errno, ENOTCONN);
	assert_int_equal(mst_close(fd), 0);
	assert_int_equal(mst_close(fd), -1);
	assert_int_equal(errno, EBADF);
	assert_int_equal(mst_send(12345, "x", 1, 0), -1);
	assert_int_equal(errno, EBADF);
}

static void test_connect_refused(void **state)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(1) };
	int fd = mst_socket(AF_INET, SOCK_STREAM, 0), err = -1;
	socklen_t l = sizeof(err);

	assert_int_equal(mst_connect(fd, (struct sockaddr *)&sa, sizeof(sa)), -1);
	assert_int_equal(errno, ECONNREFUSED);
	assert_int_equal(mst_getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l), 0);
	assert_int_equal(err, 0);
	mst_close(fd);
	fd = mst_socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	assert_int_equal(mst_connect(fd, (struct sockaddr *)&sa, sizeof(sa)), -1);
	assert_int_equal(errno, EINPROGRESS);
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	assert_int_equal(mst_poll(&p, 1, 1000), 1);
	assert_true(p.revents & POLLERR);
	assert_int_equal(mst_getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l), 0);
	assert_int_equal(err, ECONNREFUSED);
	mst_close(fd);
}

/* Ping-pong of random sizes through the echoing engine; every recv
 * blocks and must be woken (spin_ns = 0). */
static void echo_rounds(int fd, int rounds, unsigned seed)
{
	static __thread uint8_t out[3 * FIFO_SZ], in[3 * FIFO_SZ];

	for (int i = 0; i < rounds; i++) {
		size_t n = 1 + (size_t)rand_r(&seed) % (sizeof(out) - 1), got = 0;

		for (size_t k = 0; k < n; k++)
			out[k] = (uint8_t)rand_r(&seed);
		if (n <= FIFO_SZ) {
			assert_int_equal(mst_send(fd, out, n, 0), (ssize_t)n);
			while (got < n) {
				ssize_t r = mst_recv(fd, in + got, n - got, 0);

				assert_true(r > 0);
				got += (size_t)r;
			}
		} else { /* bigger than the FIFO: send and receive interleaved */
			size_t sent = 0;

			while (got < n) {
				if (sent < n) {
					ssize_t r = mst_send(fd, out + sent, n - sent, MSG_DONTWAIT);

					if (r > 0)
						sent += (size_t)r;
				}
				ssize_t r = mst_recv(fd, in + got, n - got, sent < n ? MSG_DONTWAIT : 0);

				if (r > 0)
					got += (size_t)r;
			}
		}
		assert_memory_equal(out, in, n);
	}
}

static void test_blocking_recv_woken_by_engine_no_lost_wakeups(void **state)
{
	int fd = connected_socket();

	E.max_delay_us = 30;
	echo_rounds(fd, 20000, 1);
	E.max_delay_us = 0;
	echo_rounds(fd, 20000, 2);
	assert_true(E.signals > 0);
	mst_close(fd);
}

struct thr_arg {
	int fd;
	unsigned seed;
};

static void *echo_thread(void *arg)
{
	struct thr_arg *a = arg;

	echo_rounds(a->fd, 3000, a->seed);
	return NULL;
}

/* Sockets created by the main thread, used by others: readiness must
 * follow the blocked thread (NOTIFY / forwarding). */
static void test_threads_use_sockets_created_elsewhere(void **state)
{
	struct thr_arg a[3];
	pthread_t th[3];

	E.max_delay_us = 20;
	for (int i = 0; i < 3; i++) {
		a[i] = (struct thr_arg){ .fd = connected_socket(), .seed = 10u + (unsigned)i };
		pthread_create(&th[i], NULL, echo_thread, &a[i]);
	}
	for (int i = 0; i < 3; i++) {
		pthread_join(th[i], NULL);
		mst_close(a[i].fd);
	}
	assert_true(E.notifies >= 3);
}

static void test_nonblocking_recv_and_fcntl(void **state)
{
	int fd = connected_socket();
	char b[8];

	assert_int_equal(mst_fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
	assert_int_equal(mst_fcntl(fd, F_SETFL, O_NONBLOCK), 0);
	assert_int_equal(mst_recv(fd, b, sizeof(b), 0), -1);
	assert_int_equal(errno, EAGAIN);
	mst_close(fd);
}

static void test_poll_mixes_kernel_and_library_fds(void **state)
{
	int fd = connected_socket(), p[2];
	struct pollfd pf[2];
	char c;

	assert_int_equal(pipe(p), 0);
	pf[0] = (struct pollfd){ .fd = fd, .events = POLLIN };
	pf[1] = (struct pollfd){ .fd = p[0], .events = POLLIN };
	assert_int_equal(mst_poll(pf, 2, 50), 0);
	assert_int_equal(write(p[1], "x", 1), 1);
	assert_int_equal(mst_poll(pf, 2, 1000), 1);
	assert_int_equal(pf[1].revents, POLLIN);
	assert_int_equal(pf[0].revents, 0);
	assert_int_equal(read(p[0], &c, 1), 1);
	assert_int_equal(mst_send(fd, "hi", 2, 0), 2);
	assert_int_equal(mst_poll(pf, 2, 1000), 1);
	assert_int_equal(pf[0].revents, POLLIN);
	close(p[0]);
	close(p[1]);
	mst_close(fd);
}

static void test_epoll_level_and_edge(void **state)
{
	int fd = connected_socket(), ep = mst_epoll_create1(0), p[2];
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = 7 }, out[4];
	char b[4];

	assert_true(ep >= MST_FD_BASE);
	assert_int_equal(pipe(p), 0);
	assert_int_equal(mst_epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev), 0);
	assert_int_equal(mst_epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev), -1);
	assert_int_equal(errno, EEXIST);
	ev.data.u32 = 9;
	assert_int_equal(mst_epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev), 0);
	assert_int_equal(mst_epoll_wait(ep, out, 4, 20), 0);
	assert_int_equal(mst_send(fd, "abcd", 4, 0), 4);
	assert_int_equal(mst_epoll_wait(ep, out, 4, 1000), 1);
	assert_int_equal(out[0].data.u32, 7);
	/* Level: still readable. */
	assert_int_equal(mst_epoll_wait(ep, out, 4, 0), 1);
	ev = (struct epoll_event){ .events = EPOLLIN | EPOLLET, .data.u32 = 7 };
	assert_int_equal(mst_epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev), 0);
	assert_int_equal(mst_epoll_wait(ep, out, 4, 0), 1);
	assert_int_equal(mst_epoll_wait(ep, out, 4, 0), 0); /* edge: reported once */
	assert_int_equal(mst_recv(fd, b, 4, 0), 4);
	assert_int_equal(write(p[1], "x", 1), 1);
	assert_int_equal(mst_epoll_wait(ep, out, 4, 1000), 1);
	assert_int_equal(out[0].data.u32, 9);
	/* A closed socket leaves the set. */
	mst_close(fd);
	assert_int_equal(read(p[0], b, 1), 1);
	assert_int_equal(mst_epoll_wait(ep, out, 4, 0), 0);
	close(p[0]);
	close(p[1]);
	assert_int_equal(mst_close(ep), 0);
}

static void test_zero_copy_fifo_access(void **state)
{
	int fd = connected_socket();
	void *w1, *w2;
	const void *r1, *r2;
	size_t n1, n2;
	ssize_t fr;

	fr = mst_tx_reserve(fd, &w1, &n1, &w2, &n2);
	assert_int_equal(fr, FIFO_SZ);
	memcpy(w1, "zero-copy", 9);
	assert_int_equal(mst_tx_commit(fd, 9), 0);
	assert_int_equal(mst_tx_commit(fd, FIFO_SZ + 1), -1);
	assert_int_equal(errno, EINVAL);
	struct pollfd p = { .fd = fd, .events = POLLIN };
	assert_int_equal(mst_poll(&p, 1, 1000), 1);
	assert_int_equal(mst_rx_peek(fd, &r1, &n1, &r2, &n2), 9);
	assert_int_equal(n1 + n2, 9);
	assert_memory_equal(r1, "zero-copy", n1);
	assert_int_equal(mst_rx_consume(fd, 9), 0);
	assert_int_equal(mst_rx_peek(fd, &r1, &n1, &r2, &n2), 0);
	mst_close(fd);
}

static void test_native_event_poll(void **state)
{
	int fd = connected_socket();
	struct mst_event ev[4];

	assert_int_equal(mst_watch(fd), 0);
	while (mst_ev_poll(ev, 4, 0) > 0)
		;
	assert_int_equal(mst_send(fd, "e", 1, 0), 1);
	/* The connect's READY(OUT) may still be on its way: wait for IN. */
	for (int tries = 0;; tries++) {
		assert_true(tries < 10);
		assert_int_equal(mst_ev_poll(ev, 4, 1000), 1);
		assert_int_equal(ev[0].fd, fd);
		if (ev[0].events & POLLIN)
			break;
	}
	int efd = mst_event_fd();
	assert_true(efd >= 0);
	assert_int_equal(mst_send(fd, "f", 1, 0), 1);
	struct pollfd p = { .fd = efd, .events = POLLIN };
	assert_int_equal(poll(&p, 1, 1000), 1);
	mst_close(fd);
}

/* ---- UDP sockets ------------------------------------------------------- */

static struct sockaddr_in sin_of(uint32_t ip_host, uint16_t port)
{
	return (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons(port),
				     .sin_addr.s_addr = htonl(ip_host) };
}

static void fill_pattern(uint8_t *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(seed * 131u + i * 7u + (i >> 8));
}

static void test_udp_socket_bind_and_options(void **state)
{
	int fd = mst_socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0), v = 0;
	int fd2 = mst_socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP);
	struct sockaddr_in a = sin_of(0, 0), got;
	socklen_t l = sizeof(got), vl = sizeof(v);
	uint32_t idx = (uint32_t)(fd - MST_FD_BASE);
	char b[4];

	assert_true(fd >= MST_FD_BASE);
	assert_true(fd2 >= MST_FD_BASE);
	/* FIFOs from the start: writable, nothing to read. */
	struct pollfd p = { .fd = fd, .events = POLLIN | POLLOUT };
	assert_int_equal(mst_poll(&p, 1, 0), 1);
	assert_int_equal(p.revents, POLLOUT);
	assert_int_equal(mst_recv(fd, b, sizeof(b), 0), -1);
	assert_int_equal(errno, EAGAIN);
	/* Port 0: the engine's ephemeral port, read back for getsockname. */
	assert_int_equal(mst_bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(mst_getsockname(fd, (struct sockaddr *)&got, &l), 0);
	assert_int_equal(ntohs(got.sin_port), 50000 + idx);
	a = sin_of(0, 5353);
	assert_int_equal(mst_bind(fd2, (struct sockaddr *)&a, sizeof(a)), 0);
	l = sizeof(got);
	assert_int_equal(mst_getsockname(fd2, (struct sockaddr *)&got, &l), 0);
	assert_int_equal(ntohs(got.sin_port), 5353);
	assert_int_equal(mst_getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &vl), 0);
	assert_int_equal(v, SOCK_DGRAM);
	assert_int_equal(mst_getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &v, &vl), 0);
	assert_int_equal(v, IPPROTO_UDP);
	assert_int_equal(mst_getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, &vl), 0);
	assert_int_equal(v, FIFO_SZ);
	v = 1;
	assert_int_equal(mst_setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &v, sizeof(v)), 0);
	v = 0;
	assert_int_equal(mst_getsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &v, &vl), 0);
	assert_int_equal(v, 1);
	assert_int_equal(mst_setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, sizeof(v)), -1);
	assert_int_equal(errno, ENOPROTOOPT);
	assert_int_equal(mst_listen(fd, 1), -1);
	assert_int_equal(errno, EOPNOTSUPP);
	assert_int_equal(mst_accept(fd, NULL, NULL), -1);
	assert_int_equal(errno, EOPNOTSUPP);
	assert_int_equal(mst_getpeername(fd, (struct sockaddr *)&got, &l), -1);
	assert_int_equal(errno, ENOTCONN);
	assert_int_equal(mst_shutdown(fd, SHUT_RDWR), -1);
	assert_int_equal(errno, ENOTCONN);
	void *w1, *w2;
	size_t n1, n2;
	assert_int_equal(mst_tx_reserve(fd, &w1, &n1, &w2, &n2), -1);
	assert_int_equal(errno, EOPNOTSUPP);
	assert_int_equal(mst_close(fd), 0);
	assert_int_equal(mst_close(fd2), 0);
}

static void test_udp_destination_rules(void **state)
{
	int fd = mst_socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in peer = sin_of(0x0a000002, 9999), to = sin_of(0x0a000003, 53), from;
	socklen_t l = sizeof(from);
	char b[16];

	assert_int_equal(mst_send(fd, "x", 1, 0), -1);
	assert_int_equal(errno, EDESTADDRREQ);
	assert_int_equal(mst_write(fd, "x", 1), -1);
	assert_int_equal(errno, EDESTADDRREQ);
	assert_int_equal(mst_sendto(fd, "x", 1, 0, NULL, 0), -1);
	assert_int_equal(errno, EDESTADDRREQ);
	to.sin_port = 0;
	assert_int_equal(mst_sendto(fd, "x", 1, 0, (struct sockaddr *)&to, sizeof(to)), -1);
	assert_int_equal(errno, EINVAL);
	to.sin_port = htons(53);
	assert_int_equal(mst_sendto(fd, "x", 1, 0, (struct sockaddr *)&to, 8), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(mst_sendto(fd, "x", 1, MSG_MORE, (struct sockaddr *)&to, sizeof(to)), -1);
	assert_int_equal(errno, EOPNOTSUPP);
	/* connect: default peer, no handshake. */
	assert_int_equal(mst_connect(fd, (struct sockaddr *)&peer, sizeof(peer)), 0);
	assert_int_equal(mst_getpeername(fd, (struct sockaddr *)&from, &l), 0);
	assert_int_equal(from.sin_port, peer.sin_port);
	assert_int_equal(from.sin_addr.s_addr, peer.sin_addr.s_addr);
	l = sizeof(from);
	assert_int_equal(mst_getsockname(fd, (struct sockaddr *)&from, &l), 0);
	assert_true(from.sin_port != 0);
	assert_int_equal(from.sin_addr.s_addr, htonl(0x0a000001));
	assert_int_equal(mst_send(fd, "hello", 5, 0), 5);
	memset(&from, 0, sizeof(from));
	l = sizeof(from);
	assert_int_equal(mst_recvfrom(fd, b, sizeof(b), 0, (struct sockaddr *)&from, &l), 5);
	assert_memory_equal(b, "hello", 5);
	assert_int_equal(l, sizeof(from));
	assert_int_equal(from.sin_family, AF_INET);
	assert_int_equal(from.sin_port, peer.sin_port);
	assert_int_equal(from.sin_addr.s_addr, peer.sin_addr.s_addr);
	/* An explicit address still wins on a connected socket. */
	assert_int_equal(mst_sendto(fd, "dns", 3, 0, (struct sockaddr *)&to, sizeof(to)), 3);
	l = sizeof(from);
	assert_int_equal(mst_recvfrom(fd, b, sizeof(b), 0, (struct sockaddr *)&from, &l), 3);
	assert_int_equal(from.sin_port, to.sin_port);
	assert_int_equal(from.sin_addr.s_addr, to.sin_addr.s_addr);
	/* Zero-length datagrams exist. */
	assert_int_equal(mst_send(fd, "", 0, 0), 0);
	assert_int_equal(mst_read(fd, b, sizeof(b)), 0);
	assert_int_equal(mst_recv(fd, b, sizeof(b), MSG_DONTWAIT), -1);
	assert_int_equal(errno, EAGAIN);
	/* SHUT_WR: EPIPE; SHUT_RD: recv returns 0. */
	assert_int_equal(mst_shutdown(fd, SHUT_RDWR), 0);
	assert_int_equal(mst_send(fd, "x", 1, 0), -1);
	assert_int_equal(errno, EPIPE);
	assert_int_equal(mst_recv(fd, b, sizeof(b), 0), 0);
	struct pollfd p = { .fd = fd, .events = POLLIN | POLLOUT };
	assert_int_equal(mst_poll(&p, 1, 0), 1);
	assert_true(p.revents & POLLHUP);
	mst_close(fd);
	/* AF_UNSPEC dissolves the association. */
	fd = mst_socket(AF_INET, SOCK_DGRAM, 0);
	assert_int_equal(mst_connect(fd, (struct sockaddr *)&peer, sizeof(peer)), 0);
	struct sockaddr un = { .sa_family = AF_UNSPEC };
	assert_int_equal(mst_connect(fd, &un, sizeof(un)), 0);
	assert_int_equal(mst_send(fd, "x", 1, 0), -1);
	assert_int_equal(errno, EDESTADDRREQ);
	mst_close(fd);
}

static void test_udp_truncation_peek_and_sizes(void **state)
{
	static uint8_t out[FIFO_SZ], in[FIFO_SZ];
	struct sockaddr_in to = sin_of(0x0a000002, 7);
	int fd = mst_socket(AF_INET, SOCK_DGRAM, 0);

	fill_pattern(out, sizeof(out), 1);
	/* Truncation: the rest of the datagram is gone. */
	assert_int_equal(mst_sendto(fd, out, 100, 0, (struct sockaddr *)&to, sizeof(to)), 100);
	assert_int_equal(mst_sendto(fd, out + 1, 5, 0, (struct sockaddr *)&to, sizeof(to)), 5);
	assert_int_equal(mst_recv(fd, in, 10, 0), 10);
	assert_memory_equal(in, out, 10);
	assert_int_equal(mst_recv(fd, in, sizeof(in), 0), 5);
	assert_memory_equal(in, out + 1, 5);
	/* MSG_TRUNC: the real length; MSG_PEEK: still there. */
	assert_int_equal(mst_sendto(fd, out, 300, 0, (struct sockaddr *)&to, sizeof(to)), 300);
	assert_int_equal(mst_recv(fd, NULL, 0, MSG_PEEK | MSG_TRUNC), 300);
	assert_int_equal(mst_recv(fd, in, 20, MSG_PEEK), 20);
	assert_int_equal(mst_recv(fd, in, 20, MSG_TRUNC), 300);
	assert_memory_equal(in, out, 20);
	assert_int_equal(mst_recv(fd, in, 1, MSG_DONTWAIT), -1);
	assert_int_equal(errno, EAGAIN);
	/* recv(len 0) consumes a datagram, as Linux. */
	assert_int_equal(mst_sendto(fd, out, 9, 0, (struct sockaddr *)&to, sizeof(to)), 9);
	assert_int_equal(mst_recv(fd, in, 0, 0), 0);
	assert_int_equal(mst_recv(fd, in, 1, MSG_DONTWAIT), -1);
	assert_int_equal(errno, EAGAIN);
	/* EMSGSIZE: over the UDP maximum, or a record the FIFO cannot hold. */
	assert_int_equal(mst_sendto(fd, out, MST_SHM_DGRAM_MAX + 1, 0, (struct sockaddr *)&to,
				    sizeof(to)), -1);
	assert_int_equal(errno, EMSGSIZE);
	assert_int_equal(mst_sendto(fd, out, FIFO_SZ - 16 + 1, 0, (struct sockaddr *)&to,
				    sizeof(to)), -1);
	assert_int_equal(errno, EMSGSIZE);
	/* The largest record that fits: the whole FIFO. */
	assert_int_equal(mst_sendto(fd, out, FIFO_SZ - 16, 0, (struct sockaddr *)&to,
				    sizeof(to)), FIFO_SZ - 16);
	assert_int_equal(mst_recv(fd, in, sizeof(in), 0), FIFO_SZ - 16);
	assert_memory_equal(in, out, FIFO_SZ - 16);
	mst_close(fd);
}

/* Random sizes through FIFOs whose counters start near 2^32 and at an
 * offset that is not a multiple of 8: headers and payloads straddle the
 * FIFO end and the counter wrap. Every recv blocks (spin_ns 0). */
static void udp_rounds(int fd, int rounds, unsigned seed)
{
	static __thread uint8_t out[4][1600], in[1600];

	for (int i = 0; i < rounds; i++) {
		int burst = 1 + rand_r(&seed) % 3;
		size_t n[4];
		uint16_t port[4];

		for (int k = 0; k < burst; k++) {
			struct sockaddr_in to;

			n[k] = (size_t)rand_r(&seed) % 1501;
			port[k] = (uint16_t)(1 + rand_r(&seed) % 65535);
			to = sin_of(0x0a000000u + (uint32_t)k, port[k]);
			fill_pattern(out[k], n[k], (unsigned)rand_r(&seed));
			assert_int_equal(mst_sendto(fd, out[k], n[k], 0, (struct sockaddr *)&to,
						    sizeof(to)), (ssize_t)n[k]);
		}
		for (int k = 0; k < burst; k++) {
			struct sockaddr_in from;
			socklen_t l = sizeof(from);
			size_t want = n[k], buflen = sizeof(in);
			ssize_t r;

			if (rand_r(&seed) % 4 == 0 && n[k]) /* truncated read */
				buflen = want = (size_t)rand_r(&seed) % n[k];
			r = mst_recvfrom(fd, in, buflen, 0, (struct sockaddr *)&from, &l);
			assert_int_equal(r, (ssize_t)want);
			assert_memory_equal(in, out[k], want);
			assert_int_equal(ntohs(from.sin_port), port[k]);
			assert_int_equal(ntohl(from.sin_addr.s_addr), 0x0a000000u + (uint32_t)k);
		}
	}
}

static void test_udp_records_wrap_and_blocking_recv(void **state)
{
	int fd = mst_socket(AF_INET, SOCK_DGRAM, 0);

	E.max_delay_us = 30;
	udp_rounds(fd, 5000, 3);
	E.max_delay_us = 0;
	udp_rounds(fd, 5000, 4);
	assert_true(E.signals > 0);
	assert_int_equal(E.bad_recs, 0);
	/* The counters really wrapped. */
	assert_true(E.socks[fd - MST_FD_BASE].rx_head < 0x80000000u);
	mst_close(fd);
}

struct udp_thr {
	int fd;
	size_t len;
	ssize_t r;
	int err;
	volatile int done;
};

static void *udp_blocking_send(void *arg)
{
	struct udp_thr *a = arg;
	static uint8_t b[1200];

	a->r = mst_send(a->fd, b, a->len, 0);
	a->err = errno;
	a->done = 1;
	return NULL;
}

static void *udp_blocking_recv(void *arg)
{
	struct udp_thr *a = arg;
	uint8_t b[64];

	a->r = mst_recv(a->fd, b, sizeof(b), 0);
	a->err = errno;
	a->done = 1;
	return NULL;
}

static void test_udp_full_fifo_eagain_pollout_and_blocking_send(void **state)
{
	struct sockaddr_in peer = sin_of(0x0a000002, 7);
	int fd = mst_socket(AF_INET, SOCK_DGRAM, 0), i;
	static uint8_t b[1200];
	struct udp_thr a = { .fd = fd, .len = 1200 };
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	pthread_t th;

	assert_int_equal(mst_connect(fd, (struct sockaddr *)&peer, sizeof(peer)), 0);
	E.paused = 1;
	for (i = 0; i < 3; i++) /* 3 x 1216 */
		assert_int_equal(mst_send(fd, b, 1200, 0), 1200);
	assert_int_equal(mst_send(fd, b, 1200, MSG_DONTWAIT), -1);
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(mst_poll(&p, 1, 0), 1); /* a small one still fits */
	for (i = 0; i < 5; i++) /* 5 x 80 */
		assert_int_equal(mst_send(fd, b, 64, MSG_DONTWAIT), 64);
	assert_int_equal(mst_send(fd, b, 64, MSG_DONTWAIT), -1);
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(mst_send(fd, b, 1, MSG_DONTWAIT), 1); /* 24 <= 48 free */
	assert_int_equal(mst_poll(&p, 1, 20), 0);
	/* A blocking send waits for room for its own record. */
	pthread_create(&th, NULL, udp_blocking_send, &a);
	usleep(50000);
	assert_false(a.done);
	E.paused = 0;
	pthread_join(th, NULL);
	assert_int_equal(a.r, 1200);
	size_t want[] = { 1200, 1200, 1200, 64, 64, 64, 64, 64, 1, 1200 };
	for (i = 0; i < 10; i++)
		assert_int_equal(mst_recv(fd, b, sizeof(b), 0), (ssize_t)want[i]);
	assert_int_equal(mst_poll(&p, 1, 1000), 1);
	mst_close(fd);
}

static void test_udp_blocking_recv_woken_poll_and_epoll(void **state)
{
	struct sockaddr_in to = sin_of(0x0a000002, 7);
	int fd = mst_socket(AF_INET, SOCK_DGRAM, 0), ep = mst_epoll_create1(0);
	struct epoll_event ev = { .events = EPOLLIN | EPOLLET, .data.u32 = 5 }, out[2];
	struct udp_thr a = { .fd = fd };
	pthread_t th;
	char b[8];

	/* Another thread sleeps in recv; our send's echo must wake it. */
	E.max_delay_us = 2000;
	pthread_create(&th, NULL, udp_blocking_recv, &a);
	usleep(20000);
	assert_false(a.done);
	assert_int_equal(mst_sendto(fd, "wake", 4, 0, (struct sockaddr *)&to, sizeof(to)), 4);
	pthread_join(th, NULL);
	assert_int_equal(a.r, 4);
	E.max_delay_us = 0;
	/* epoll, edge-triggered: one event per datagram arrival. */
	assert_int_equal(mst_epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev), 0);
	assert_int_equal(mst_epoll_wait(ep, out, 2, 20), 0);
	assert_int_equal(mst_sendto(fd, "a", 1, 0, (struct sockaddr *)&to, sizeof(to)), 1);
	assert_int_equal(mst_epoll_wait(ep, out, 2, 1000), 1);
	assert_int_equal(out[0].data.u32, 5);
	assert_int_equal(out[0].events, EPOLLIN);
	assert_int_equal(mst_epoll_wait(ep, out, 2, 0), 0);
	assert_int_equal(mst_sendto(fd, "b", 1, 0, (struct sockaddr *)&to, sizeof(to)), 1);
	assert_int_equal(mst_epoll_wait(ep, out, 2, 1000), 1);
	assert_int_equal(mst_recv(fd, b, sizeof(b), 0), 1);
	assert_int_equal(mst_recv(fd, b, sizeof(b), 0), 1);
	struct pollfd p = { .fd = fd, .events = POLLIN };
	assert_int_equal(mst_poll(&p, 1, 0), 0);
	assert_int_equal(mst_sendto(fd, "c", 1, 0, (struct sockaddr *)&to, sizeof(to)), 1);
	assert_int_equal(mst_poll(&p, 1, 1000), 1);
	assert_int_equal(p.revents, POLLIN);
	mst_close(ep);
	mst_close(fd);
}

/* Engine-written headers that lie: EIO, never a read past rx_tail. */
static void test_udp_impossible_rx_records_are_eio(void **state)
{
	int fd = mst_socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	struct mst_shm_sock *k = &E.socks[fd - MST_FD_BASE];
	struct mst_shm_dgram h = { .addr = htonl(0x0a000002), .port = 7 };
	uint8_t b[FIFO_SZ];
	uint32_t head;
	struct pollfd p = { .fd = fd, .events = POLLIN };

	E.paused = 1;
	head = k->rx_head;
	struct { uint32_t len, publish; } cases[] = {
		{ 500, 16 + 100 },          /* claims more than published */
		{ 0xffffffffu, 64 },        /* absurd length */
		{ MST_SHM_DGRAM_MAX + 1, 2048 },
		{ 0, 8 },                   /* not even a header */
		{ 16, FIFO_SZ + 8 },        /* level above the FIFO size */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		h.len = cases[i].len;
		fifo_copy_in(E.base + k->rx_off, FIFO_SZ, head, &h, sizeof(h));
		__atomic_store_n(&k->rx_tail, head + cases[i].publish, __ATOMIC_RELEASE);
		assert_int_equal(mst_poll(&p, 1, 0), 1);
		assert_true(p.revents & POLLIN);
		assert_int_equal(mst_recv(fd, b, sizeof(b), 0), -1);
		assert_int_equal(errno, EIO);
		assert_int_equal(k->rx_head, head); /* nothing consumed */
	}
	/* The engine repairs (test only): a good record reads fine. */
	h.len = 3;
	fifo_copy_in(E.base + k->rx_off, FIFO_SZ, head, &h, sizeof(h));
	fifo_copy_in(E.base + k->rx_off, FIFO_SZ, head + 16, "abc", 3);
	__atomic_store_n(&k->rx_tail, head + 24, __ATOMIC_RELEASE);
	assert_int_equal(mst_recv(fd, b, sizeof(b), 0), 3);
	assert_memory_equal(b, "abc", 3);
	assert_int_equal(k->rx_head, head + 24);
	E.paused = 0;
	mst_close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_qp_claim_is_per_thread_and_released_at_exit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_qp_of_exited_thread_is_reused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_submit_and_wait_by_seq, setup, teardown),
		cmocka_unit_test_setup_teardown(test_socket_errno_like_linux, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connect_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_blocking_recv_woken_by_engine_no_lost_wakeups, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threads_use_sockets_created_elsewhere, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nonblocking_recv_and_fcntl, setup, teardown),
		cmocka_unit_test_setup_teardown(test_poll_mixes_kernel_and_library_fds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_epoll_level_and_edge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_zero_copy_fifo_access, setup, teardown),
		cmocka_unit_test_setup_teardown(test_native_event_poll, setup, teardown),
		cmocka_unit_test_setup_teardown(test_udp_socket_bind_and_options, setup, teardown),
		cmocka_unit_test_setup_teardown(test_udp_destination_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_udp_truncation_peek_and_sizes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_udp_records_wrap_and_blocking_recv, setup, teardown),
		cmocka_unit_test_setup_teardown(test_udp_full_fifo_eagain_pollout_and_blocking_send, setup, teardown),
		cmocka_unit_test_setup_teardown(test_udp_blocking_recv_woken_poll_and_epoll, setup, teardown),
		cmocka_unit_test_setup_teardown(test_udp_impossible_rx_records_are_eio, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
