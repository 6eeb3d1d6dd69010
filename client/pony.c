/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Pony endpoints in libmustang (the ABI is in <mustang/shm_abi.h>).
 *
 *   mst_pony_open():  SOCKET a=3 -> BIND svc -> a descriptor (poll/epoll
 *                     see its record ring as readable bytes)
 *   mst_pony_send():  copy into the endpoint's copy buffer (a region the
 *                     library registers on first use, used as a ring)
 *                     -> PONY_SEND (no reply: the record comes later)
 *   mst_pony_send_reg() / mst_pony_read(): PONY_SEND / PONY_READ naming
 *                     bytes of a region mst_pony_reg_alloc() made
 *   mst_pony_poll():  records -> events; SEND/READ records give their op
 *                     slot (and copy-buffer space) back
 *
 * Blocking (the default, as for sockets; mst_fcntl O_NONBLOCK turns it
 * off): a submission with no op slot or copy-buffer room takes the
 * records the engine has written into a stash (mst_pony_poll hands those
 * events out first, in order) until a completion frees room, and sleeps
 * for more. Non-blocking: -1/EAGAIN.
 *
 * The command's cookie is ours (generation << 32 | op slot); the app's
 * cookie stays here. Ops in flight are bounded by half the record ring
 * (the engine's budget), so every op's record has room. Everything the
 * engine writes (records) is checked before use: an offset outside the
 * Pony arena is an EIO event, never a wild pointer.
 *
 * Locking: one mutex per endpoint around its state and its records; a
 * thread that waits (mst_pony_poll(), a blocking submission) drops it
 * while it sleeps. The state of a socket index (struct lpony) is made on
 * the first Pony endpoint there and kept, reinitialised by each new one,
 * until the library detaches: a sleeper never wakes on freed memory, and
 * tells by the generation it went to sleep with that its endpoint was
 * closed (EBADF).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "priv.h"

#define RET_ERR(e) do { errno = (e); return -1; } while (0)
#define REC ((uint32_t)sizeof(struct mst_shm_pony_rec))
#define TXBUF_MIN (64u << 10)
#define POLL_SLICE_MS 200         /* sleepers look at their endpoint this often */
#define ROOM_SLICE_MS 10          /* ... and blocked submitters this often */

struct lop {                     /* one op in flight */
	uint16_t gen;
	uint8_t used;
	uint8_t copied;          /* holds copy-buffer space: txq entry */
	uint32_t txq;            /* its entry in txq */
	uint64_t cookie;         /* the app's */
};

struct ltx {                     /* copy-buffer space, in submission order */
	uint64_t end;            /* ring counter after it */
	uint8_t done;
};

struct lpony {
	pthread_mutex_t lock;
	uint32_t idx;            /* socket index */
	uint32_t gen;            /* lsock gen at open (stale after close) */
	uint32_t max_ops;        /* = records / 2 */
	uint32_t inflight;
	struct lop *ops;         /* [max_ops] */
	uint32_t *op_free, n_op_free;
	/* copy buffer: bytes [tx_head, tx_tail) of a ring of tx_size bytes */
	uint64_t tx_key;
	uint8_t *tx_base;        /* NULL until the first mst_pony_send */
	uint64_t tx_size, tx_head, tx_tail;
	struct ltx *txq;         /* ring of max_ops entries */
	uint32_t txq_head, txq_tail;
	uint8_t nonblock;        /* the descriptor's O_NONBLOCK (read by ep_get) */
	/* events a blocking submission took from the ring: [st_head, +st_n) */
	struct mst_pony_event *stash;
	uint32_t st_head, st_n, st_cap;
};

static struct lpony *lp[MST_SHM_MAX_SOCKS];
static pthread_mutex_t open_lock = PTHREAD_MUTEX_INITIALIZER;

static uint8_t *arena(void)
{
	return mst_lib.base + mst_lib.hdr->pony_off;
}

static bool arena_ok(void)
{
	const struct mst_shm_hdr *h = mst_lib.hdr;

	return h->pony_size && h->pony_off <= mst_lib.size && h->pony_size <= mst_lib.size - h->pony_off;
}

/* Bytes at p .. p+len inside the arena: their offset, else -1. */
static int64_t arena_off(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint64_t size = mst_lib.hdr->pony_size;

	if (!arena_ok() || b < arena() || (uint64_t)(b - arena()) > size || len > size - (uint64_t)(b - arena()))
		return -1;
	return b - arena();
}

static void lp_free(struct lpony *l)
{
	if (!l)
		return;
	pthread_mutex_destroy(&l->lock);
	free(l->ops);
	free(l->op_free);
	free(l->txq);
	free(l->stash);
	free(l);
}

/* lib_detach(): no thread is inside the library any more. */
void pony_lib_reset(void)
{
	for (uint32_t i = 0; i < MST_SHM_MAX_SOCKS; i++) {
		lp_free(lp[i]);
		lp[i] = NULL;
	}
}

/* Socket index idx's state, made on first use (never freed before
 * pony_lib_reset()); NULL when out of memory. */
static struct lpony *lp_slot(uint32_t idx)
{
	struct lpony *l;

	pthread_mutex_lock(&open_lock);
	l = lp[idx];
	if (!l && (l = calloc(1, sizeof(*l))) != NULL) {
		pthread_mutex_init(&l->lock, NULL);
		l->idx = idx;
		__atomic_store_n(&lp[idx], l, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&open_lock);
	return l;
}

/* A new endpoint on l (locked): op table for max_ops, empty copy buffer
 * and stash, generation gen. 0 or -ENOMEM (l unchanged). */
static int lp_reinit(struct lpony *l, uint32_t max_ops, uint32_t gen)
{
	struct lop *ops = calloc(max_ops, sizeof(*ops));
	uint32_t *op_free = calloc(max_ops, sizeof(*op_free));
	struct ltx *txq = calloc(max_ops, sizeof(*txq));

	if (!ops || !op_free || !txq) {
		free(ops);
		free(op_free);
		free(txq);
		return -ENOMEM;
	}
	free(l->ops);
	free(l->op_free);
	free(l->txq);
	l->ops = ops;
	l->op_free = op_free;
	l->txq = txq;
	l->max_ops = max_ops;
	l->inflight = 0;
	l->n_op_free = 0;
	for (uint32_t i = max_ops; i-- > 0;)
		l->op_free[l->n_op_free++] = i;
	l->tx_key = 0;
	l->tx_base = NULL;
	l->tx_size = l->tx_head = l->tx_tail = 0;
	l->txq_head = l->txq_tail = 0;
	l->st_head = l->st_n = 0;
	__atomic_store_n(&l->gen, gen, __ATOMIC_RELEASE);
	return 0;
}

/* The endpoint behind fd, locked; NULL + errno (EBADF, ENOTSOCK: not Pony). */
static struct lpony *ep_get(int fd, struct thr **t)
{
	struct lsock *ls;
	struct lpony *l;
	uint32_t idx;

	if (!(ls = sock_get(fd, &idx)))
		return NULL;
	l = __atomic_load_n(&lp[idx], __ATOMIC_ACQUIRE);
	if (!l || __atomic_load_n(&l->gen, __ATOMIC_ACQUIRE) != ls->gen) {
		errno = ENOTSOCK;
		return NULL;
	}
	if (!(*t = thr_get()))
		return NULL;
	pthread_mutex_lock(&l->lock);
	if (l->gen != ls->gen || !l->ops) { /* reopened meanwhile: not ours */
		pthread_mutex_unlock(&l->lock);
		errno = ENOTSOCK;
		return NULL;
	}
	l->nonblock = !!ls->nonblock;
	return l;
}

MST_EXPORT int mst_pony_open(uint16_t svc)
{
	struct mst_shm_msg m = { .op = MST_CMD_SOCKET, .sock = -1, .a = MST_PONY_SOCK_TYPE };
	struct lpony *l;
	struct thr *t;
	int r, fd = -ENOMEM;
	uint32_t recs;

	if (!__atomic_load_n(&mst_lib.attached, __ATOMIC_ACQUIRE))
		RET_ERR(ENOTCONN);
	if (svc == 0)
		RET_ERR(EINVAL);
	if (!mst_lib.hdr->pony_max_msg || !arena_ok())
		RET_ERR(EPROTONOSUPPORT);
	if (!(t = thr_get()))
		return -1;
	r = cmd_call(t, &m);
	if (r < 0)
		RET_ERR(-r);
	if ((uint32_t)r >= mst_lib.n_socks || !sock_fifo_ok((uint32_t)r) ||
	    (recs = mst_lib.socks[r].rx_size / REC) < 4) {
		m = (struct mst_shm_msg){ .op = MST_CMD_CLOSE, .sock = r };
		(void)cmd_call(t, &m);
		RET_ERR(EIO);
	}
	l = lp_slot((uint32_t)r);
	m = (struct mst_shm_msg){ .op = MST_CMD_BIND, .sock = r, .a = svc };
	if (!l || (fd = cmd_call(t, &m)) < 0) {
		int err = -fd;

		m = (struct mst_shm_msg){ .op = MST_CMD_CLOSE, .sock = r };
		(void)cmd_call(t, &m);
		RET_ERR(err);
	}
	fd = sock_open(t, r, 0, 0);
	if (fd < 0)
		RET_ERR(-fd);
	/* The index's previous endpoint was closed (the engine reused it):
	 * its sleepers see the new generation and give up. */
	pthread_mutex_lock(&l->lock);
	r = lp_reinit(l, recs / 2, mst_lib.ls[l->idx].gen);
	pthread_mutex_unlock(&l->lock);
	if (r < 0) {
		(void)mst_close(fd);
		RET_ERR(-r);
	}
	return fd;
}

/* ---- ops ----------------------------------------------------------------- */

static int wait_room(struct thr *t, struct lpony *l, size_t len, bool copy);

static int op_take(struct lpony *l, uint64_t cookie, uint64_t *lib_cookie)
{
	uint32_t i;

	if (!l->n_op_free || l->inflight >= l->max_ops)
		return -EAGAIN;
	i = l->op_free[--l->n_op_free];
	l->ops[i].used = 1;
	l->ops[i].copied = 0;
	l->ops[i].cookie = cookie;
	l->inflight++;
	*lib_cookie = (uint64_t)l->ops[i].gen << 32 | i;
	return (int)i;
}

static void op_put(struct lpony *l, uint32_t i)
{
	l->ops[i].used = 0;
	l->ops[i].gen++;
	l->op_free[l->n_op_free++] = i;
	l->inflight--;
}

/* Post an op command; on failure the op slot goes back. */
static int op_post(struct thr *t, struct lpony *l, uint32_t i, struct mst_shm_msg *m)
{
	int r;

	m->sock = (int32_t)l->idx;
	r = cmd_post(t, m);
	if (r < 0)
		op_put(l, i);
	return r;
}

static int check_dst(uint32_t peer, uint16_t dst_svc, size_t len)
{
	if (!peer || !dst_svc || !len)
		return -EINVAL;
	if (len > mst_lib.hdr->pony_max_msg)
		return -EMSGSIZE;
	return 0;
}

static int send_at(struct thr *t, struct lpony *l, uint32_t peer, uint16_t dst_svc,
		   uint32_t stream, uint64_t off, size_t len, uint64_t cookie, int copy_q)
{
	struct mst_shm_msg m = { .op = MST_CMD_PONY_SEND, .a = off,
				 .b = (uint32_t)len | (uint64_t)stream << 32,
				 .c = peer | (uint64_t)dst_svc << 32 };
	int i = op_take(l, cookie, &m.d);

	if (i < 0)
		return i;
	if (copy_q >= 0) {
		l->ops[i].copied = 1;
		l->ops[i].txq = (uint32_t)copy_q;
	}
	return op_post(t, l, (uint32_t)i, &m);
}

MST_EXPORT int mst_pony_send_reg(int fd, uint32_t peer, uint16_t dst_svc, uint32_t stream,
				 const void *buf, size_t len, uint64_t cookie)
{
	struct lpony *l;
	struct thr *t;
	int64_t off;
	int r;

	if ((r = check_dst(peer, dst_svc, len)) < 0)
		RET_ERR(-r);
	if ((off = arena_off(buf, len)) < 0)
		RET_ERR(EFAULT);
	if (!(l = ep_get(fd, &t)))
		return -1;
	r = wait_room(t, l, 0, false);
	if (r == 0)
		r = send_at(t, l, peer, dst_svc, stream, (uint64_t)off, len, cookie, -1);
	pthread_mutex_unlock(&l->lock);
	if (r < 0)
		RET_ERR(-r);
	return 0;
}

/* Register the copy buffer (first copying send): 2 messages of the
 * largest size, at most a quarter of the arena. */
static int txbuf_init(struct thr *t, struct lpony *l)
{
	uint64_t size = 2ull * mst_lib.hdr->pony_max_msg;
	struct mst_shm_msg m = { .op = MST_CMD_PONY_REG, .sock = (int32_t)l->idx };
	int r;

	if (size > mst_lib.hdr->pony_size / 4)
		size = mst_lib.hdr->pony_size / 4;
	if (size < TXBUF_MIN)
		size = TXBUF_MIN;
	m.a = size;
	r = cmd_call(t, &m);
	if (r < 0)
		return r;
	if (m.b > mst_lib.hdr->pony_size || size > mst_lib.hdr->pony_size - m.b)
		return -EIO;
	l->tx_key = m.a;
	l->tx_base = arena() + m.b;
	l->tx_size = size;
	l->tx_head = l->tx_tail = 0;
	return 0;
}

/* Bytes to skip at the end of the copy ring before len contiguous bytes
 * fit; an empty ring starts over at 0, so a message of the ring's whole
 * size fits whenever nothing else is queued. */
static uint64_t txbuf_pad(struct lpony *l, size_t len)
{
	uint64_t pos;

	if (l->txq_head == l->txq_tail)
		l->tx_head = l->tx_tail = 0;
	pos = l->tx_tail % l->tx_size;
	return pos + len > l->tx_size ? l->tx_size - pos : 0;
}

static bool txbuf_fits(struct lpony *l, size_t len)
{
	return len <= l->tx_size &&
	       txbuf_pad(l, len) + len <= l->tx_size - (l->tx_tail - l->tx_head) &&
	       l->txq_tail - l->txq_head < l->max_ops;
}

/* Room for len contiguous bytes in the copy ring: its offset in the ring,
 * and a txq entry; -EAGAIN when full (space comes back with SEND_DONE). */
static int64_t txbuf_alloc(struct lpony *l, size_t len, uint32_t *q)
{
	uint64_t pad, pos;

	if (len > l->tx_size)
		return -EMSGSIZE;
	if (!txbuf_fits(l, len))
		return -EAGAIN;
	pad = txbuf_pad(l, len);
	pos = l->tx_tail % l->tx_size;
	l->tx_tail += pad + len;
	*q = l->txq_tail++;
	l->txq[*q % l->max_ops] = (struct ltx){ .end = l->tx_tail };
	return pad ? 0 : (int64_t)pos;
}

/* SEND_DONE of a copied send: its space (and every completed space
 * before it) goes back. */
static void txbuf_done(struct lpony *l, uint32_t q)
{
	if (q - l->txq_head >= l->txq_tail - l->txq_head)
		return;
	l->txq[q % l->max_ops].done = 1;
	while (l->txq_head != l->txq_tail && l->txq[l->txq_head % l->max_ops].done) {
		l->tx_head = l->txq[l->txq_head % l->max_ops].end;
		l->txq_head++;
	}
}

/* Undo the last txbuf_alloc (its send could not be posted). */
static void txbuf_unalloc(struct lpony *l, uint32_t q)
{
	if (q + 1 != l->txq_tail)
		return;
	l->txq_tail--;
	l->tx_tail = l->txq_head == l->txq_tail ? l->tx_head : l->txq[(q - 1) % l->max_ops].end;
}

MST_EXPORT int mst_pony_send(int fd, uint32_t peer, uint16_t dst_svc, uint32_t stream,
			     const void *buf, size_t len, uint64_t cookie)
{
	struct lpony *l;
	struct thr *t;
	int64_t pos;
	uint32_t q;
	int r;

	if ((r = check_dst(peer, dst_svc, len)) < 0)
		RET_ERR(-r);
	if (!buf)
		RET_ERR(EFAULT);
	if (!(l = ep_get(fd, &t)))
		return -1;
	r = 0;
	if (!l->tx_base)
		r = txbuf_init(t, l);
	if (r == 0 && len > l->tx_size)
		r = -EMSGSIZE; /* would never fit the copy buffer */
	if (r == 0)
		r = wait_room(t, l, len, true);
	if (r == 0 && (pos = txbuf_alloc(l, len, &q)) < 0)
		r = (int)pos;
	if (r == 0) {
		memcpy(l->tx_base + pos, buf, len);
		r = send_at(t, l, peer, dst_svc, stream,
			    (uint64_t)(l->tx_base - arena()) + (uint64_t)pos, len, cookie, (int)q);
		if (r < 0)
			txbuf_unalloc(l, q);
	}
	pthread_mutex_unlock(&l->lock);
	if (r < 0)
		RET_ERR(-r);
	return 0;
}

MST_EXPORT int mst_pony_read(int fd, uint32_t peer, uint16_t dst_svc, uint64_t key, uint64_t off,
			     size_t len, void *dst, uint64_t cookie)
{
	struct mst_shm_msg m = { .op = MST_CMD_PONY_READ };
	struct lpony *l;
	struct thr *t;
	int64_t loff;
	int r, i;

	if ((r = check_dst(peer, dst_svc, len)) < 0)
		RET_ERR(-r);
	if ((loff = arena_off(dst, len)) < 0)
		RET_ERR(EFAULT);
	if (off > UINT32_MAX || (uint64_t)loff > UINT32_MAX)
		RET_ERR(EINVAL); /* the arena is < 4 GiB: offsets fit 32 bits */
	if (!(l = ep_get(fd, &t)))
		return -1;
	m.a = (uint64_t)loff | off << 32;
	m.b = (uint32_t)len;
	m.e = key;
	m.c = peer | (uint64_t)dst_svc << 32;
	r = wait_room(t, l, 0, false);
	i = r < 0 ? r : op_take(l, cookie, &m.d);
	r = i < 0 ? i : op_post(t, l, (uint32_t)i, &m);
	pthread_mutex_unlock(&l->lock);
	if (r < 0)
		RET_ERR(-r);
	return 0;
}

/* ---- regions ------------------------------------------------------------- */

MST_EXPORT void *mst_pony_reg_alloc(int fd, size_t size, unsigned flags, uint64_t *key)
{
	struct mst_shm_msg m = { .op = MST_CMD_PONY_REG, .a = size, .b = flags };
	struct lpony *l;
	struct thr *t;
	int r;

	if (!size || (flags & ~MST_PONY_REMOTE_READ)) {
		errno = EINVAL;
		return NULL;
	}
	if (!(l = ep_get(fd, &t)))
		return NULL;
	m.sock = (int32_t)l->idx;
	r = cmd_call(t, &m);
	pthread_mutex_unlock(&l->lock);
	if (r == 0 && (m.b > mst_lib.hdr->pony_size || size > mst_lib.hdr->pony_size - m.b))
		r = -EIO;
	if (r < 0) {
		errno = -r;
		return NULL;
	}
	if (key)
		*key = m.a;
	return arena() + m.b;
}

MST_EXPORT int mst_pony_reg_free(int fd, uint64_t key)
{
	struct mst_shm_msg m = { .op = MST_CMD_PONY_UNREG, .a = key };
	struct lpony *l;
	struct thr *t;
	int r;

	if (!(l = ep_get(fd, &t)))
		return -1;
	if (l->tx_base && key == l->tx_key) {
		pthread_mutex_unlock(&l->lock);
		RET_ERR(EBUSY); /* the library's own copy buffer */
	}
	m.sock = (int32_t)l->idx;
	r = cmd_call(t, &m);
	pthread_mutex_unlock(&l->lock);
	if (r < 0)
		RET_ERR(-r);
	return 0;
}

MST_EXPORT int mst_pony_release(int fd, const struct mst_pony_event *ev)
{
	struct mst_shm_msg m = { .op = MST_CMD_PONY_RELEASE };
	struct lpony *l;
	struct thr *t;
	int r;

	if (!ev || ev->kind != MST_PONY_MSG)
		RET_ERR(EINVAL);
	if (!(l = ep_get(fd, &t)))
		return -1;
	m.sock = (int32_t)l->idx;
	m.a = ev->buf;
	r = cmd_post(t, &m);
	pthread_mutex_unlock(&l->lock);
	if (r < 0)
		RET_ERR(-r);
	return 0;
}

/* ---- completions ---------------------------------------------------------- */

/* One record -> one event; false for a record to skip (a completion we
 * know nothing about: the engine broke the protocol). */
static bool rec_event(struct lpony *l, const struct mst_shm_pony_rec *r, struct mst_pony_event *ev)
{
	memset(ev, 0, sizeof(*ev));
	ev->status = r->status;
	ev->peer = r->peer;
	ev->src_svc = r->src_svc;
	ev->dst_svc = r->dst_svc;
	ev->stream = r->stream;
	ev->len = r->len;
	if (r->kind == MST_PONY_REC_MSG) {
		ev->kind = MST_PONY_MSG;
		ev->buf = r->buf;
		if (r->off > mst_lib.hdr->pony_size || r->len > mst_lib.hdr->pony_size - r->off) {
			ev->status = -EIO;
			ev->len = 0;
		} else {
			ev->data = arena() + r->off;
		}
		return true;
	}
	if (r->kind == MST_PONY_REC_SEND || r->kind == MST_PONY_REC_READ) {
		uint32_t i = (uint32_t)r->cookie;
		struct lop *o = i < l->max_ops ? &l->ops[i] : NULL;

		if (!o || !o->used || o->gen != (uint16_t)(r->cookie >> 32))
			return false;
		ev->kind = r->kind == MST_PONY_REC_SEND ? MST_PONY_SEND_DONE : MST_PONY_READ_DONE;
		ev->cookie = o->cookie;
		if (o->copied)
			txbuf_done(l, o->txq);
		op_put(l, i);
		return true;
	}
	return false;
}

#define RECS_BAD UINT32_MAX

/* Records pending per the engine's rx_tail (acquire, pairs with its
 * store-release after writing the record); RECS_BAD if that cannot be. */
static uint32_t recs_avail(const struct lpony *l)
{
	const struct mst_shm_sock *s = &mst_lib.socks[l->idx];
	uint32_t n = ld_acq(&s->rx_tail) - s->rx_head;

	return n > s->rx_size || n % REC ? RECS_BAD : n / REC;
}

/* Up to max events from the record ring; -EIO if the ring is insane. */
static int ring_take(struct lpony *l, struct mst_pony_event *evs, uint32_t max)
{
	struct mst_shm_sock *s = &mst_lib.socks[l->idx];
	const uint8_t *ring = mst_lib.base + s->rx_off;
	uint32_t head = s->rx_head, n = recs_avail(l);
	uint32_t k = 0;

	/* a head off the 64-byte grid would read records across the ring's end */
	if (!sock_fifo_ok(l->idx) || n == RECS_BAD || head % REC)
		return -EIO;
	while (n && k < max) {
		struct mst_shm_pony_rec r;

		memcpy(&r, ring + (head & (s->rx_size - 1)), sizeof(r)); /* one copy */
		head += REC;
		n--;
		if (rec_event(l, &r, &evs[k]))
			k++;
	}
	/* Release: the engine reuses the slots only after seeing this. */
	__atomic_store_n(&s->rx_head, head, __ATOMIC_RELEASE);
	return (int)k;
}

/* The stash's events first (they are older), then the ring's. */
static int drain(struct lpony *l, struct mst_pony_event *evs, int max)
{
	int k = 0, r;

	while (l->st_n && k < max) {
		evs[k++] = l->stash[l->st_head++];
		l->st_n--;
	}
	if (!l->st_n)
		l->st_head = 0;
	if (k == max)
		return k;
	r = ring_take(l, evs + k, (uint32_t)(max - k));
	return r < 0 ? (k ? k : r) : k + r;
}

/* Every record now in the ring, into the stash (which grows: it holds
 * at most what the engine may have outstanding for this endpoint). The
 * events taken, or -errno. */
static int stash_fill(struct lpony *l)
{
	uint32_t n = recs_avail(l);
	int r;

	if (n == RECS_BAD)
		return -EIO;
	if (!n)
		return 0;
	if (l->st_head + l->st_n + n > l->st_cap) {
		if (l->st_n)
			memmove(l->stash, l->stash + l->st_head, l->st_n * sizeof(*l->stash));
		l->st_head = 0;
	}
	if (l->st_n + n > l->st_cap) {
		uint32_t cap = l->st_cap ? 2 * l->st_cap : 64;
		struct mst_pony_event *ns;

		while (cap < l->st_n + n)
			cap *= 2;
		ns = realloc(l->stash, cap * sizeof(*ns));
		if (!ns)
			return -ENOMEM;
		l->stash = ns;
		l->st_cap = cap;
	}
	r = ring_take(l, l->stash + l->st_head + l->st_n, n);
	if (r > 0)
		l->st_n += (uint32_t)r;
	return r;
}

struct pony_cond {
	struct lpony *l;
};

static bool pony_ready(void *arg)
{
	return recs_avail(((struct pony_cond *)arg)->l) != 0;
}

bool pony_stashed(uint32_t idx)
{
	const struct lpony *l = idx < MST_SHM_MAX_SOCKS ? __atomic_load_n(&lp[idx], __ATOMIC_ACQUIRE)
						       : NULL;

	return l && __atomic_load_n(&l->gen, __ATOMIC_ACQUIRE) == mst_lib.ls[idx].gen &&
	       __atomic_load_n(&l->st_n, __ATOMIC_RELAXED);
}

static bool has_room(struct lpony *l, size_t len, bool copy)
{
	return l->n_op_free && l->inflight < l->max_ops && (!copy || txbuf_fits(l, len));
}

/* Room for one more op (and len bytes of copy buffer when copy): 0,
 * -EAGAIN on a non-blocking endpoint, or -errno. A blocking endpoint
 * moves records into the stash (completions among them free room) and
 * sleeps for more, in slices: another thread's mst_pony_poll() may free
 * room without a record arriving for us. */
static int wait_room(struct thr *t, struct lpony *l, size_t len, bool copy)
{
	uint32_t gen = l->gen;

	for (;;) {
		struct pony_cond c = { .l = l };
		struct wait_spec w = { .ready = pony_ready, .arg = &c, .socks = &l->idx, .n_socks = 1 };
		int r;

		if (has_room(l, len, copy))
			return 0;
		if (l->nonblock)
			return -EAGAIN;
		r = stash_fill(l);
		if (r < 0)
			return r;
		if (r > 0)
			continue;
		pthread_mutex_unlock(&l->lock);
		r = thr_wait(t, &w, ROOM_SLICE_MS);
		pthread_mutex_lock(&l->lock);
		if (l->gen != gen || mst_lib.ls[l->idx].gen != gen)
			return -EBADF; /* closed (and maybe reopened) while we slept */
		if (r < 0)
			return r;
	}
}

MST_EXPORT int mst_pony_poll(int fd, struct mst_pony_event *evs, int max, int timeout_ms)
{
	struct lpony *l;
	struct thr *t;
	int64_t end;
	uint32_t gen;
	int k;

	if (!evs || max <= 0)
		RET_ERR(EINVAL);
	if (!(l = ep_get(fd, &t)))
		return -1;
	gen = l->gen;
	end = timeout_ms < 0 ? INT64_MAX : lib_now_ns() + (int64_t)timeout_ms * 1000000;
	for (;;) {
		struct pony_cond c = { .l = l };
		struct wait_spec w = { .ready = pony_ready, .arg = &c, .socks = &l->idx, .n_socks = 1 };
		int64_t now, left;
		int r;

		k = drain(l, evs, max);
		if (k != 0 || timeout_ms == 0)
			break;
		now = lib_now_ns();
		if (now >= end)
			break;
		/* A wake-up can find nothing (another thread took the records,
		 * or they were skipped): wait on for the rest of the timeout. */
		/* Slices of at most POLL_SLICE_MS: a close by another thread
		 * wakes nobody, the generation check below notices it. */
		left = (end - now + 999999) / 1000000;
		pthread_mutex_unlock(&l->lock);
		r = thr_wait(t, &w, left > POLL_SLICE_MS ? POLL_SLICE_MS : (int)left);
		pthread_mutex_lock(&l->lock);
		if (l->gen != gen || mst_lib.ls[l->idx].gen != gen) {
			k = -EBADF;
			break;
		}
		if (r < 0) {
			k = r;
			break;
		}
	}
	pthread_mutex_unlock(&l->lock);
	if (k < 0)
		RET_ERR(-k);
	return k;
}
