/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Queue pairs: one per thread, claimed lazily (thr_get) from an atomic
 * bitmap and released by a pthread key destructor when the thread exits.
 *
 *   cmd_call(): push a command, wait for the DONE/ERROR with its seq.
 *   thr_dispatch(): drain the event ring; completions go to the waiting
 *     cmd_call, READY events mark the thread's ready map and are forwarded
 *     to other threads sleeping on that socket.
 *   thr_wait(): dispatch, check a condition, spin briefly, then sleep on
 *     the eventfd per the wake protocol of <mustang/shm_abi.h>.
 *
 * Who gets a socket's READY events: the engine sends them to the qp that
 * last sent NOTIFY for it (initially the creating/accepting qp), recorded
 * in lsock.notify_qp. A thread about to sleep on a socket makes itself the
 * receiver (thr_own) unless the receiver is itself inside thr_wait, in
 * which case it relies on forwarding: it sets its bit in the socket's
 * `waiters` and in the receiver's `share`. A receiver leaving thr_wait
 * kicks every qp in its `share`, so they re-check and take over NOTIFY.
 *
 * Orderings (S = seq_cst fence), each a store-then-load pair that needs
 * "at least one side sees the other":
 *   W1 sleeper: wake=1, S, re-check ring + shm   <-> engine: publish, S, read wake
 *   W2 sleeper: waiters|=me, wake=1, S, re-check shm <-> forwarder: got READY
 *       (acquire, after the engine's shm writes), S, read waiters + wake
 *   W3 sleeper: share[owner]|=me, wake=1, S, read in_wait[owner]
 *       <-> owner leaving: in_wait=0, S, read share, read wake
 */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "priv.h"
#include "ring.h"

static __thread struct thr *tls_thr;

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield");
#endif
}

int64_t lib_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Claim a free qp for this thread; -ENOBUFS when all are taken. */
static int qp_claim(struct thr *t)
{
	struct mst_lib *L = &mst_lib;
	uint64_t used = __atomic_load_n(&L->qp_used, __ATOMIC_RELAXED);
	uint64_t all = L->n_qps == 64 ? ~0ull : (1ull << L->n_qps) - 1;
	int i;

	do {
		uint64_t free_ = ~used & all;

		if (!free_)
			return -ENOBUFS;
		i = __builtin_ctzll(free_);
	} while (!__atomic_compare_exchange_n(&L->qp_used, &used, used | (1ull << i), false,
					      __ATOMIC_ACQ_REL, __ATOMIC_RELAXED));
	t->qp = i;
	t->q = &L->qps[i];
	t->efd = L->efd[i];
	t->epoch = L->epoch;
	t->broken = 0;
	memset(t->ready_map, 0, sizeof(t->ready_map));
	/* The previous owner's leftovers are stale: readiness lives in shm. */
	if (ring_drain(&t->q->evt) < 0)
		t->broken = 1;
	L->lqp[i].ovf_seen = __atomic_load_n(&t->q->evt_overflow, __ATOMIC_ACQUIRE);
	L->lqp[i].ext_armed = 0;
	__atomic_store_n(&L->lqp[i].share, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&t->q->wake, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&t->q->in_use, 1, __ATOMIC_RELAXED);
	return 0;
}

struct thr *thr_get(void)
{
	struct mst_lib *L = &mst_lib;
	struct thr *t = tls_thr;
	int err;

	if (!__atomic_load_n(&L->attached, __ATOMIC_ACQUIRE)) {
		errno = ENOTCONN;
		return NULL;
	}
	if (t && t->qp >= 0 && t->epoch == L->epoch)
		return t;
	if (!t) {
		t = calloc(1, sizeof(*t));
		if (!t) {
			errno = ENOMEM;
			return NULL;
		}
		t->qp = -1;
		tls_thr = t;
		pthread_setspecific(L->key, t);
	}
	err = qp_claim(t);
	if (err < 0) {
		t->qp = -1;
		errno = -err;
		return NULL;
	}
	return t;
}

/* Write qp's eventfd if its owner is (about to be) asleep. The caller has
 * issued the seq_cst fence of W2/W3 before reading wake here. */
static void kick(int qp)
{
	struct mst_lib *L = &mst_lib;
	uint64_t one = 1;

	if (__atomic_load_n(&L->qps[qp].wake, __ATOMIC_RELAXED) &&
	    write(L->efd[qp], &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is saturated, the owner wakes anyway. */
	}
}

static void kick_mask(uint64_t mask)
{
	while (mask) {
		int i = __builtin_ctzll(mask);

		mask &= mask - 1;
		if ((unsigned)i < mst_lib.n_qps)
			kick(i);
	}
}

/* Runs on the exiting thread (key destructor) or in mst_fini(). */
void thr_release(struct thr *t)
{
	struct mst_lib *L = &mst_lib;
	uint64_t bit, others = 0;
	unsigned i;

	if (!t)
		return;
	if (t->qp >= 0 && t->epoch == L->epoch && L->attached) {
		bit = 1ull << t->qp;
		/* Sockets whose READY events come here: nobody will dispatch
		 * them now, so their sleepers must take over (W3). */
		for (i = 0; i < L->n_socks; i++) {
			struct lsock *ls = &L->ls[i];

			if (__atomic_load_n(&ls->notify_qp, __ATOMIC_RELAXED) == t->qp) {
				__atomic_store_n(&ls->notify_qp, -1, __ATOMIC_SEQ_CST);
				others |= __atomic_load_n(&ls->waiters, __ATOMIC_RELAXED);
			}
			if (__atomic_load_n(&ls->waiters, __ATOMIC_RELAXED) & bit)
				__atomic_fetch_and(&ls->waiters, ~bit, __ATOMIC_RELAXED);
		}
		__atomic_store_n(&L->lqp[t->qp].in_wait, 0, __ATOMIC_SEQ_CST);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		others |= __atomic_exchange_n(&L->lqp[t->qp].share, 0, __ATOMIC_SEQ_CST);
		kick_mask(others & ~bit);
		__atomic_store_n(&t->q->wake, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&t->q->in_use, 0, __ATOMIC_RELAXED);
		L->lqp[t->qp].ext_armed = 0;
		__atomic_fetch_and(&L->qp_used, ~bit, __ATOMIC_RELEASE);
	}
	if (tls_thr == t)
		tls_thr = NULL;
	free(t);
}

/* Push a command; when the ring is full, keep draining our events (the
 * engine may be waiting for room to post them) until it has room. */
extern int mst_engine_doorbell; /* attach.c */

/* Wake a sleeping engine (shm_abi.h, engine_sleeping): the fence pairs
 * with the engine's fence between announcing its sleep and re-checking
 * the command rings, so either it sees our command or we see its flag. */
static void ring_engine(void)
{
	const struct mst_shm_hdr *h = mst_lib.hdr;

	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (mst_engine_doorbell >= 0 && __atomic_load_n(&h->engine_sleeping, __ATOMIC_RELAXED)) {
		uint64_t one = 1;

		(void)!write(mst_engine_doorbell, &one, sizeof(one));
	}
}

int cmd_post(struct thr *t, struct mst_shm_msg *m)
{
	while (ring_push(&t->q->cmd, m) < 0) {
		if (mst_lib.dead)
			return -ENETDOWN;
		if (thr_dispatch(t) < 0)
			return -EIO;
		sched_yield();
	}
	ring_engine();
	return 0;
}

static bool got_reply(void *arg)
{
	return ((struct thr *)arg)->got;
}

int cmd_call(struct thr *t, struct mst_shm_msg *m)
{
	struct wait_spec w = { .ready = got_reply, .arg = t };
	uint32_t seq = ++mst_lib.lqp[t->qp].seq;
	int r;

	/* seq 0 is never waited for: doorbells carry it and the engine may
	 * answer a bad doorbell with an ERROR echoing it. */
	if (seq == 0)
		seq = ++mst_lib.lqp[t->qp].seq;
	m->seq = seq;
	t->want_seq = seq;
	t->got = 0;
	r = cmd_post(t, m);
	if (r < 0)
		return r;
	/* No sockets in w: a command wait leaves in_wait as the caller set
	 * it. A signal does not abandon the command (its DONE would be lost). */
	do
		r = thr_wait(t, &w, -1);
	while (r == -EINTR || r == 0);
	if (r < 0)
		return r;
	*m = t->reply;
	return t->reply.result;
}

int thr_dispatch(struct thr *t)
{
	struct mst_lib *L = &mst_lib;
	struct lqp *lq = &L->lqp[t->qp];
	uint64_t me = 1ull << t->qp, fwd = 0;
	struct mst_shm_msg m;
	uint32_t ovf;
	int n, r;

	if (t->broken)
		return -EIO;
	for (n = 0;; n++) {
		r = ring_pop(&t->q->evt, &m);
		if (r == 0)
			break;
		if (r < 0) {
			t->broken = 1;
			return -EIO;
		}
		switch (m.op) {
		case MST_EV_DONE:
		case MST_EV_ERROR:
			if (m.seq == t->want_seq && !t->got) {
				t->reply = m;
				if (m.op == MST_EV_ERROR && m.result >= 0)
					t->reply.result = -EINVAL;
				t->got = 1;
			}
			break;
		case MST_EV_READY:
			if (m.sock >= 0 && (uint32_t)m.sock < L->n_socks) {
				t->ready_map[m.sock / 64] |= 1ull << (m.sock % 64);
				fwd |= __atomic_load_n(&L->ls[m.sock].waiters, __ATOMIC_RELAXED);
			}
			break;
		default:
			break;
		}
	}
	/* The engine dropped events: any socket may have changed, so every
	 * thread that waits on something re-checks. */
	ovf = __atomic_load_n(&t->q->evt_overflow, __ATOMIC_ACQUIRE);
	if (ovf != lq->ovf_seen) {
		lq->ovf_seen = ovf;
		memset(t->ready_map, 0xff, sizeof(t->ready_map));
		fwd = ~0ull;
	}
	if (fwd & ~me) {
		/* W2: the READY events were read with acquire after the engine's
		 * shm updates; the fence orders those before our reads of the
		 * sleepers' waiters bits and wake flags. */
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		kick_mask(fwd & ~me);
	}
	return n;
}

/* Make the calling thread the receiver of sock's READY events, unless the
 * receiver is in thr_wait (and so forwards them) and !force. */
int thr_own(struct thr *t, uint32_t sock, bool force)
{
	struct mst_lib *L = &mst_lib;
	struct lsock *ls = &L->ls[sock];
	struct mst_shm_msg m = { .op = MST_CMD_NOTIFY, .sock = (int32_t)sock };
	struct mst_shm_msg fence = { .op = MST_CMD_GETOPT, .sock = (int32_t)sock,
				     .a = MST_OPT_REUSEADDR };
	int o = __atomic_load_n(&ls->notify_qp, __ATOMIC_ACQUIRE);
	int r = 0;

	if (o == t->qp)
		return 0;
	if (!force && o >= 0 && __atomic_load_n(&L->lqp[o].in_wait, __ATOMIC_SEQ_CST))
		return 0;
	/* own_lock makes the order of our notify_qp updates the order in
	 * which the engine saw the NOTIFYs. */
	pthread_mutex_lock(&ls->own_lock);
	o = __atomic_load_n(&ls->notify_qp, __ATOMIC_ACQUIRE);
	if (o != t->qp && (force || o < 0 || !__atomic_load_n(&L->lqp[o].in_wait, __ATOMIC_SEQ_CST))) {
		/* mustangd answers NOTIFY with a READY, not a DONE, so a
		 * GETOPT behind it on the same qp tells us when it took
		 * effect (commands of a qp run in order). A DONE for the
		 * NOTIFY itself, should the engine send one, is ignored. */
		r = cmd_post(t, &m);
		if (r == 0)
			r = cmd_call(t, &fence);
		if (r >= 0) {
			__atomic_store_n(&ls->notify_qp, t->qp, __ATOMIC_SEQ_CST);
			r = 0;
		}
	}
	pthread_mutex_unlock(&ls->own_lock);
	return r;
}

/* Register as a sleeper on w's sockets; false when some socket's receiver
 * is neither us nor in thr_wait (we must take it over first). */
static bool sleepers_set(struct thr *t, const struct wait_spec *w)
{
	struct mst_lib *L = &mst_lib;
	uint64_t me = 1ull << t->qp;
	bool ok = true;

	for (uint32_t i = 0; i < w->n_socks; i++) {
		struct lsock *ls = &L->ls[w->socks[i]];
		int o;

		if (!(__atomic_load_n(&ls->waiters, __ATOMIC_RELAXED) & me))
			__atomic_fetch_or(&ls->waiters, me, __ATOMIC_SEQ_CST);
		o = __atomic_load_n(&ls->notify_qp, __ATOMIC_SEQ_CST);
		if (o == t->qp)
			continue;
		if (o < 0) {
			ok = false;
			continue;
		}
		if (!(__atomic_load_n(&L->lqp[o].share, __ATOMIC_RELAXED) & me))
			__atomic_fetch_or(&L->lqp[o].share, me, __ATOMIC_SEQ_CST);
	}
	return ok;
}

/* After wake=1 and the fence: is every receiver still us or waiting (W3)? */
static bool owners_ok(struct thr *t, const struct wait_spec *w)
{
	struct mst_lib *L = &mst_lib;

	for (uint32_t i = 0; i < w->n_socks; i++) {
		int o = __atomic_load_n(&L->ls[w->socks[i]].notify_qp, __ATOMIC_RELAXED);

		if (o != t->qp && (o < 0 || !__atomic_load_n(&L->lqp[o].in_wait, __ATOMIC_RELAXED)))
			return false;
	}
	return true;
}

static int ctl_check_dead(void)
{
	char c;
	ssize_t r = recv(mst_lib.ctl_fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);

	if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
		mst_lib.dead = 1;
		return -ENETDOWN;
	}
	return 0;
}

static int thr_sleep(struct thr *t, const struct wait_spec *w, int ms)
{
	struct pollfd small[8], *p = small;
	nfds_t n = 2 + w->n_kfds, i;
	uint64_t v;
	int r;

	if (n > sizeof(small) / sizeof(small[0])) {
		p = malloc(n * sizeof(*p));
		if (!p)
			return -ENOMEM;
	}
	p[0] = (struct pollfd){ .fd = t->efd, .events = POLLIN };
	p[1] = (struct pollfd){ .fd = mst_lib.ctl_fd, .events = POLLIN };
	for (i = 0; i < w->n_kfds; i++)
		p[2 + i] = (struct pollfd){ .fd = w->kfds[i].fd, .events = w->kfds[i].events };
	r = poll(p, n, ms);
	if (r < 0)
		r = -errno;
	if (r > 0 && p[0].revents && read(t->efd, &v, sizeof(v)) < 0) {
		/* EAGAIN: another reader (none) or a spurious wake-up. */
	}
	if (r > 0 && p[1].revents)
		r = ctl_check_dead() < 0 ? -ENETDOWN : r;
	if (r > 0) {
		r = 0;
		for (i = 0; i < w->n_kfds; i++) {
			w->kfds[i].revents = p[2 + i].revents;
			if (p[2 + i].revents)
				r = 2;
		}
	}
	if (p != small)
		free(p);
	return r;
}

int thr_wait(struct thr *t, const struct wait_spec *w, int timeout_ms)
{
	struct mst_lib *L = &mst_lib;
	struct lqp *lq = &L->lqp[t->qp];
	int64_t start = lib_now_ns(), deadline = timeout_ms < 0 ? INT64_MAX :
		start + (int64_t)timeout_ms * 1000000;
	int64_t spin_until = start + L->spin_ns, now;
	int r;

	if (w->n_socks)
		__atomic_store_n(&lq->in_wait, 1, __ATOMIC_SEQ_CST);
	for (;;) {
		r = thr_dispatch(t);
		if (r < 0)
			goto out;
		if (w->ready && w->ready(w->arg)) {
			r = 1;
			goto out;
		}
		if (L->dead) {
			r = -ENETDOWN;
			goto out;
		}
		now = lib_now_ns();
		if (now >= deadline) {
			r = 0;
			if (w->n_kfds && timeout_ms == 0 && poll(w->kfds, w->n_kfds, 0) > 0)
				r = 2;
			goto out;
		}
		if (now < spin_until) {
			if (L->spin_yield)
				sched_yield();
			else
				cpu_relax();
			continue;
		}
		for (uint32_t i = 0; i < w->n_socks; i++) {
			r = thr_own(t, w->socks[i], false);
			if (r < 0 && r != -EBADF && r != -EINVAL)
				goto out;
		}
		if (!sleepers_set(t, w))
			continue;
		/* W1/W2/W3: announce the sleep, then re-check everything a
		 * waker could have published before seeing wake == 1. */
		__atomic_store_n(&t->q->wake, 1, __ATOMIC_RELAXED);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		if (ring_avail(&t->q->evt) != 0 || (w->ready && w->ready(w->arg)) ||
		    !owners_ok(t, w)) {
			if (!lq->ext_armed)
				__atomic_store_n(&t->q->wake, 0, __ATOMIC_RELAXED);
			continue;
		}
		r = thr_sleep(t, w, deadline == INT64_MAX ? -1 :
			      (int)((deadline - now + 999999) / 1000000));
		if (!lq->ext_armed)
			__atomic_store_n(&t->q->wake, 0, __ATOMIC_RELAXED);
		if (r < 0 || r == 2)
			goto out;
		spin_until = 0;
	}
out:
	if (w->n_socks) {
		/* W3: stop advertising that we forward, then let those who
		 * relied on it take over their sockets. */
		__atomic_store_n(&lq->in_wait, 0, __ATOMIC_SEQ_CST);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		kick_mask(__atomic_exchange_n(&lq->share, 0, __ATOMIC_SEQ_CST) & ~(1ull << t->qp));
	}
	return r;
}
