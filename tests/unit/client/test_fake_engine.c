/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libmustang against a fake engine: the test lays out a segment per
 * <mustang/shm_abi.h> in a memfd, attaches the library to it through
 * lib_attach_fds() (client/priv.h), and runs a thread that plays the
 * engine: it consumes commands, answers DONE, echoes TX bytes back into RX
 * after a random delay, posts READY to the NOTIFY qp and signals eventfds
 * per the wake protocol.
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
		E.used[s] = 1;
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
		for (unsigned s = 0; s < N_SOCKS; s++)
			if (E.used[s])
				eng_echo((int)s);
		if (!busy)
			sched_yield();
	}
	return NULL;
}

static int setup(void **state)
{
	size_t qp_off = 64, sock_off, fifo_off, size;
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

	assert_int_equal(mst_socket(AF_INET, SOCK_DGRAM, 0), -1);
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
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
