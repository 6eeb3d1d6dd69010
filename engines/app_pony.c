/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Pony for applications: the engine's struct pony (transport/pony) and the
 * Pony endpoints of attached apps (the ABI is in <mustang/shm_abi.h>).
 *
 * Engine side (net_engine.c):
 *   eng_pony_create() -> { eng_pony_now(); eng_pony_udp_input() per
 *   datagram for the Pony port; ...; eng_pony_poll() } -> eng_pony_destroy()
 * App side (app.c), per app: pony_app_attach() -> pony_ep_open() on
 *   SOCKET a=3 -> pony_ep_cmd() for every other command on it ->
 *   pony_app_flush() once per poll (deferred ops, READY events) ->
 *   pony_ep_close() on CLOSE -> pony_app_detach().
 *
 * The Pony arena of an app's segment belongs to the engine: it allocates
 * received messages and registered regions there (first fit over 64-byte
 * units) and keeps its own table of each piece. Everything an app names
 * (offsets, lengths, keys, buffer ids) is checked against that table; the
 * segment is only ever written (records, message bytes) and read (bytes
 * the app sends, rx_head), never trusted.
 *
 * Records: every op (SEND, READ) gets exactly one record; every message
 * delivered gets one. Half of the record ring is for ops, half for
 * messages (shm_abi.h), counted per kind in rec_kind[] so that the engine
 * knows what the app has consumed when it moves rx_head.
 *
 * Cookies handed to pony: svc << 48 | generation << 32 | table index, so
 * a completion for an endpoint that went away (cancelled) or an index
 * that was reused never lands in the wrong place.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <mustang/shm_abi.h>

#include "engines/app.h"
#include "transport/net/net.h"
#include "transport/pony/pony.h"

#include "engines/app_pony_priv.h"

static inline uint32_t load_acq(const uint32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static inline void store_rel(uint32_t *p, uint32_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

/* ---- arena: first fit over free extents ----------------------------------- */

static int arena_init(struct arena *ar, uint32_t units, uint32_t cap)
{
	ar->off = calloc(cap, sizeof(*ar->off));
	ar->len = calloc(cap, sizeof(*ar->len));
	if (!ar->off || !ar->len)
		return -ENOMEM;
	ar->cap = cap;
	ar->n = units ? 1 : 0;
	ar->off[0] = 0;
	ar->len[0] = units;
	return 0;
}

static void arena_fini(struct arena *ar)
{
	free(ar->off);
	free(ar->len);
}

static int arena_alloc(struct arena *ar, uint32_t units, uint32_t *off)
{
	for (uint32_t i = 0; i < ar->n; i++) {
		if (ar->len[i] < units)
			continue;
		*off = ar->off[i];
		ar->off[i] += units;
		ar->len[i] -= units;
		if (!ar->len[i]) {
			memmove(&ar->off[i], &ar->off[i + 1], (ar->n - i - 1) * sizeof(*ar->off));
			memmove(&ar->len[i], &ar->len[i + 1], (ar->n - i - 1) * sizeof(*ar->len));
			ar->n--;
		}
		return 0;
	}
	return -ENOBUFS;
}

/* Give [off, off + units) back, merging with its neighbours. The table
 * has room: extents <= allocations + 1 <= cap (pony_app_attach). */
static void arena_free(struct arena *ar, uint32_t off, uint32_t units)
{
	uint32_t i = 0, lo = 0, hi = ar->n;

	while (lo < hi) { /* first extent after off */
		uint32_t mid = (lo + hi) / 2;

		if (ar->off[mid] < off)
			lo = mid + 1;
		else
			hi = mid;
	}
	i = lo;
	if (i > 0 && ar->off[i - 1] + ar->len[i - 1] == off) {
		ar->len[i - 1] += units;
		if (i < ar->n && off + units == ar->off[i]) {
			ar->len[i - 1] += ar->len[i];
			memmove(&ar->off[i], &ar->off[i + 1], (ar->n - i - 1) * sizeof(*ar->off));
			memmove(&ar->len[i], &ar->len[i + 1], (ar->n - i - 1) * sizeof(*ar->len));
			ar->n--;
		}
		return;
	}
	if (i < ar->n && off + units == ar->off[i]) {
		ar->off[i] = off;
		ar->len[i] += units;
		return;
	}
	if (ar->n == ar->cap)
		return; /* cannot happen (see above); leak rather than overrun */
	memmove(&ar->off[i + 1], &ar->off[i], (ar->n - i) * sizeof(*ar->off));
	memmove(&ar->len[i + 1], &ar->len[i], (ar->n - i) * sizeof(*ar->len));
	ar->off[i] = off;
	ar->len[i] = units;
	ar->n++;
}

/* ---- records ------------------------------------------------------------- */

/* Adopt the app's rx_head if it is sane: whole records, not past tail.
 * Pairs with the app's store-release after reading the records. */
static void rec_refresh(struct pep *p)
{
	uint32_t v = load_acq(&p->sh->rx_head);

	if (v == p->head)
		return;
	if (v - p->head > p->tail - p->head || (v - p->head) % MST_PONY_REC_SIZE) {
		MST_DROP(p->pa->st, app_bad_fifo);
		return;
	}
	for (; p->head != v; p->head += MST_PONY_REC_SIZE) {
		uint32_t s = (p->head / MST_PONY_REC_SIZE) & (p->slots - 1);

		if (p->rec_kind[s])
			p->rx_rec--;
		else
			p->ops_rec--;
	}
}

/* Append a record (room was reserved: ops_out or rx_res). */
static void rec_put(struct pep *p, struct mst_shm_pony_rec *r, bool msg)
{
	uint32_t s = (p->tail / MST_PONY_REC_SIZE) & (p->slots - 1);

	memcpy(p->rec + (uint64_t)s * MST_PONY_REC_SIZE, r, sizeof(*r));
	p->rec_kind[s] = msg;
	p->tail += MST_PONY_REC_SIZE;
	/* Release: the app that sees the new tail (acquire) sees the record. */
	store_rel(&p->sh->rx_tail, p->tail);
	if (msg)
		p->rx_rec++;
	else
		p->ops_rec++;
	p->dirty = true;
}

/* Publish readiness and post READY when records arrived or it changed. */
static void ep_sync(struct pep *p)
{
	uint32_t ready = MST_READY_OUT;

	rec_refresh(p);
	if (p->tail != p->head)
		ready |= MST_READY_IN;
	store_rel(&p->sh->ready, ready);
	if (p->force || ready != p->last_ready || p->tail != p->seen_tail) {
		struct mst_shm_msg m = { .op = MST_EV_READY, .sock = (int32_t)p->sock, .a = ready };

		p->force = false;
		p->last_ready = ready;
		p->seen_tail = p->tail;
		eng_app_post(p->pa->a, p->qp, &m);
	}
	p->dirty = false;
}

/* ---- ops ----------------------------------------------------------------- */

static inline uint64_t op_cookie(const struct pep *p, uint32_t idx)
{
	return (uint64_t)p->svc << 48 | (uint64_t)p->ops[idx].gen << 32 | idx;
}

static void op_complete(struct pep *p, uint32_t idx, int status)
{
	struct pop *o = &p->ops[idx];
	struct mst_shm_pony_rec r = {
		.kind = o->kind, .src_svc = p->svc, .status = status, .peer = o->peer,
		.dst_svc = o->dst_svc, .stream = o->stream, .len = o->len, .off = o->off,
		.cookie = o->cookie,
	};

	if (o->reg < REG_MAX && p->reg[o->reg].refs)
		p->reg[o->reg].refs--;
	o->state = OP_FREE;
	o->gen++;
	p->op_free[p->n_op_free++] = idx;
	p->ops_out--;
	rec_put(p, &r, false);
}

/* Hand op idx to pony: 0 (submitted or failed: its record is written) or
 * -ENOBUFS (pony is full; the op stays as it is, to be retried). */
static int op_submit(struct pep *p, uint32_t idx)
{
	struct eng_pony *ep = p->pa->ep;
	struct pop *o = &p->ops[idx];
	uint8_t *data = p->pa->arena_base + o->off;
	int rc;

	o->state = OP_SUBMITTED;
	if (o->kind == MST_PONY_REC_SEND)
		rc = pony_send(ep->py, o->peer, p->svc, o->dst_svc, o->stream, data, o->len,
			       op_cookie(p, idx), ep->now);
	else
		rc = pony_read(ep->py, o->peer, p->svc, o->dst_svc, o->key, o->roff, o->len, data,
			       op_cookie(p, idx), ep->now);
	if (rc == -ENOBUFS) {
		o->state = OP_DEFERRED;
		return rc;
	}
	if (rc < 0 && o->state == OP_SUBMITTED)
		op_complete(p, idx, rc);
	return 0;
}

static bool ep_deferred(const struct pep *p)
{
	return p->def_head != p->def_tail;
}

static void defer_push(struct pep *p, uint32_t idx)
{
	if (!ep_deferred(p))
		p->pa->ep->n_busy++;
	p->ops[idx].state = OP_DEFERRED;
	p->defq[p->def_tail++ & (op_max(p) - 1)] = idx;
}

/* Retry deferred ops in order (one stream's messages keep their order). */
static void defer_run(struct pep *p)
{
	while (ep_deferred(p)) {
		uint32_t idx = p->defq[p->def_head & (op_max(p) - 1)];

		if (op_submit(p, idx) == -ENOBUFS)
			return;
		p->def_head++;
		if (!ep_deferred(p))
			p->pa->ep->n_busy--;
	}
}

/* The region of p holding [off, off + len) (bytes from pony_off), or REG_MAX. */
static uint8_t reg_covering(const struct pep *p, uint64_t off, uint64_t len)
{
	for (uint8_t i = 0; i < REG_MAX; i++) {
		const struct preg *r = &p->reg[i];
		uint64_t ro = (uint64_t)r->off * UNIT;

		if (r->used && off >= ro && len <= r->len && off - ro <= r->len - len)
			return i;
	}
	return REG_MAX;
}

/* PONY_SEND / PONY_READ: validate against our tables, then submit. */
static void cmd_op(struct pep *p, uint32_t q, const struct mst_shm_msg *m)
{
	struct pony_app *pa = p->pa;
	bool send = m->op == MST_CMD_PONY_SEND;
	uint32_t idx, len = (uint32_t)m->b;
	struct pop *o;
	int err = 0;

	rec_refresh(p);
	if (!p->svc || p->ops_out + p->ops_rec >= op_max(p) || !p->n_op_free) {
		/* Unbound, or over the app's half of the ring: no record. */
		MST_DROP(pa->st, app_bad_cmd);
		eng_app_post_error(pa->a, q, m, p->svc ? -ENOBUFS : -EDESTADDRREQ);
		return;
	}
	idx = p->op_free[--p->n_op_free];
	o = &p->ops[idx];
	o->kind = send ? MST_PONY_REC_SEND : MST_PONY_REC_READ;
	o->peer = (uint32_t)m->c;
	o->dst_svc = (uint16_t)(m->c >> 32);
	o->len = len;
	o->cookie = m->d;
	o->reg = REG_MAX;
	if (send) {
		o->off = m->a;
		o->stream = (uint32_t)(m->b >> 32);
		o->key = 0;
		o->roff = 0;
	} else {
		o->off = (uint32_t)m->a;
		o->roff = m->a >> 32;
		o->key = m->e;
		o->stream = 0;
	}
	p->ops_out++;
	if ((m->c >> 32) == 0 || (m->c >> 32) > 65535 || !o->peer)
		err = -EINVAL;
	else if (len == 0 || len > pa->ep->max_msg)
		err = len ? -EMSGSIZE : -EINVAL;
	else if ((o->reg = reg_covering(p, o->off, len)) == REG_MAX)
		err = -EFAULT; /* not inside one of its regions */
	if (err) {
		MST_DROP(pa->st, app_bad_cmd);
		op_complete(p, idx, err);
		return;
	}
	p->reg[o->reg].refs++;
	if (ep_deferred(p) || op_submit(p, idx) == -ENOBUFS)
		defer_push(p, idx);
}

/* ---- regions, received buffers ---------------------------------------------- */

/* Region keys are what a peer must know to READ a region (issue 13: they
 * were gen << 6 | idx, so any host reaching the port could guess them):
 * 58 bits from the kernel's CSPRNG, per registration, above the index.
 * The index only says which entry to compare with; the whole key must
 * match. getrandom() with GRND_NONBLOCK never blocks the engine (it fails
 * with EAGAIN only before the kernel's pool is first seeded). */
static int reg_new_key(struct preg *r, uint32_t idx)
{
	uint64_t k;

	if (getrandom(&k, sizeof(k), GRND_NONBLOCK) != (ssize_t)sizeof(k))
		return -EAGAIN;
	k &= ~(uint64_t)(REG_MAX - 1);
	if (!k)
		k = REG_MAX; /* never a key that is only the index */
	r->key = k | idx;
	return 0;
}

/* Equal without a data-dependent branch: how long a lookup takes says
 * nothing about how much of a guessed key was right. */
static inline bool key_eq(uint64_t a, uint64_t b)
{
	uint64_t d = a ^ b;

	return ((d | (0 - d)) >> 63) == 0;
}

static void cmd_reg(struct pep *p, uint32_t q, const struct mst_shm_msg *m)
{
	struct pony_app *pa = p->pa;
	uint32_t i, off;
	struct preg *r;

	if (m->a == 0 || m->a > pa->arena_bytes || (m->b & ~(uint64_t)MST_PONY_REG_REMOTE_READ)) {
		eng_app_post_done(pa->a, q, m, -EINVAL, 0, 0, 0);
		return;
	}
	for (i = 0; i < REG_MAX && p->reg[i].used; i++)
		;
	if (i == REG_MAX) {
		eng_app_post_done(pa->a, q, m, -ENOSPC, 0, 0, 0);
		return;
	}
	if (arena_alloc(&pa->ar, units_of(m->a), &off) < 0) {
		MST_DROP(pa->st, app_no_memory);
		eng_app_post_done(pa->a, q, m, -ENOMEM, 0, 0, 0);
		return;
	}
	r = &p->reg[i];
	if (reg_new_key(r, i) < 0) {
		arena_free(&pa->ar, off, units_of(m->a));
		eng_app_post_done(pa->a, q, m, -EAGAIN, 0, 0, 0);
		return;
	}
	r->used = true;
	r->off = off;
	r->units = units_of(m->a);
	r->len = m->a;
	r->flags = (uint32_t)m->b;
	r->refs = 0;
	eng_app_post_done(pa->a, q, m, 0, r->key, (uint64_t)off * UNIT, 0);
}

static struct preg *reg_by_key(struct pep *p, uint64_t key)
{
	struct preg *r = &p->reg[key & (REG_MAX - 1)];

	return r->used && key_eq(r->key, key) ? r : NULL;
}

static int reg_free(struct pep *p, uint64_t key)
{
	struct preg *r = reg_by_key(p, key);

	if (!r)
		return -ENOENT;
	if (r->refs)
		return -EBUSY;
	arena_free(&p->pa->ar, r->off, r->units);
	r->used = false;
	return 0;
}

static void rx_put(struct pep *p, uint32_t i)
{
	struct prx *x = &p->rx[i];

	arena_free(&p->pa->ar, x->off, x->units);
	x->state = RX_FREE;
	x->gen++;
	p->rx_free[p->n_rx_free++] = i;
}

static int cmd_release(struct pep *p, uint64_t id)
{
	uint32_t i = (uint32_t)id & 0xffff;

	if (id > UINT32_MAX || i >= RX_MAX || p->rx[i].state != RX_DELIVERED ||
	    p->rx[i].gen != (uint16_t)(id >> 16))
		return -EINVAL;
	rx_put(p, i);
	return 0;
}

/* ---- endpoints ------------------------------------------------------------- */

static struct pep *ep_of(struct pony_app *pa, uint32_t sock)
{
	for (unsigned i = 0; i < EP_MAX; i++)
		if (pa->eps[i] && pa->eps[i]->sock == sock)
			return pa->eps[i];
	return NULL;
}

struct pep *pony_ep_alloc(uint32_t slots)
{
	struct pep *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->slots = slots;
	p->ops = calloc(slots / 2, sizeof(*p->ops));
	p->op_free = calloc(slots / 2, sizeof(*p->op_free));
	p->defq = calloc(slots / 2, sizeof(*p->defq));
	p->rec_kind = calloc(slots, 1);
	if (!p->ops || !p->op_free || !p->defq || !p->rec_kind) {
		pony_ep_free(p);
		return NULL;
	}
	for (uint32_t k = slots / 2; k-- > 0;)
		p->op_free[p->n_op_free++] = k;
	for (uint32_t k = RX_MAX; k-- > 0;)
		p->rx_free[p->n_rx_free++] = k;
	return p;
}

void pony_ep_free(struct pep *p)
{
	free(p->ops);
	free(p->op_free);
	free(p->defq);
	free(p->rec_kind);
	free(p);
}

int pony_ep_open(struct pony_app *pa, uint32_t sock, uint32_t qp, uint8_t *rec, uint32_t rec_bytes,
		 struct mst_shm_sock *sh)
{
	uint32_t slots = rec_bytes / MST_PONY_REC_SIZE;
	unsigned i;
	struct pep *p;

	if (!pa)
		return -EPROTONOSUPPORT; /* Pony off */
	for (i = 0; i < EP_MAX && pa->eps[i]; i++)
		;
	if (i == EP_MAX || slots < 4 || (slots & (slots - 1)))
		return -EMFILE;
	p = pony_ep_alloc(slots);
	if (!p)
		return -ENOMEM;
	p->open = true;
	p->sock = sock;
	p->qp = qp;
	p->pa = pa;
	p->sh = sh;
	p->rec = rec;
	p->head = p->tail = 0;
	sh->rx_head = sh->rx_tail = 0;
	p->force = true;
	pa->eps[i] = p;
	ep_sync(p);
	return 0;
}

/* Everything the endpoint had goes: pony forgets its svc first (partial
 * messages come back through rx_abort while we can still find them). */
void pony_ep_close(struct pony_app *pa, uint32_t sock)
{
	struct pep *p = pa ? ep_of(pa, sock) : NULL;
	struct eng_pony *ep;

	if (!p)
		return;
	ep = pa->ep;
	if (p->svc) {
		pony_cancel_svc(ep->py, p->svc);
		ep->svc[p->svc] = NULL;
	}
	if (ep_deferred(p))
		ep->n_busy--;
	for (uint32_t i = 0; i < RX_MAX; i++)
		if (p->rx[i].state != RX_FREE)
			rx_put(p, i);
	for (uint32_t i = 0; i < REG_MAX; i++)
		if (p->reg[i].used)
			arena_free(&pa->ar, p->reg[i].off, p->reg[i].units);
	for (unsigned i = 0; i < EP_MAX; i++)
		if (pa->eps[i] == p)
			pa->eps[i] = NULL;
	pony_ep_free(p);
}

void pony_ep_cmd(struct pony_app *pa, uint32_t sock, uint32_t q, const struct mst_shm_msg *m)
{
	struct pep *p = pa ? ep_of(pa, sock) : NULL;
	int rc;

	if (!p) { /* cannot happen: app.c opened it */
		eng_app_post_error(pa ? pa->a : NULL, q, m, -EBADF);
		return;
	}
	switch (m->op) {
	case MST_CMD_BIND:
		if (p->svc)
			rc = -EINVAL;
		else if (m->a == 0 || m->a > 65535)
			rc = -EINVAL;
		else if (pa->ep->svc[m->a])
			rc = -EADDRINUSE;
		else {
			p->svc = (uint16_t)m->a;
			pa->ep->svc[p->svc] = p;
			p->sh->local_port = p->svc;
			rc = 0;
		}
		eng_app_post_done(pa->a, q, m, rc, 0, 0, 0);
		return;
	case MST_CMD_PONY_SEND:
	case MST_CMD_PONY_READ:
		cmd_op(p, q, m);
		return;
	case MST_CMD_PONY_RELEASE:
		rc = cmd_release(p, m->a);
		if (rc) {
			MST_DROP(pa->st, app_bad_cmd);
			eng_app_post_error(pa->a, q, m, rc);
		}
		return;
	case MST_CMD_PONY_REG:
		cmd_reg(p, q, m);
		return;
	case MST_CMD_PONY_UNREG:
		eng_app_post_done(pa->a, q, m, reg_free(p, m->a), 0, 0, 0);
		return;
	case MST_CMD_RX_DONE:
		ep_sync(p);
		return;
	case MST_CMD_NOTIFY:
		p->qp = q;
		p->force = true;
		ep_sync(p);
		return;
	case MST_CMD_GETOPT:
	case MST_CMD_SETOPT:
		if (m->a == MST_OPT_RCVBUF)
			eng_app_post_done(pa->a, q, m, 0, (uint64_t)p->slots * MST_PONY_REC_SIZE, 0, 0);
		else
			eng_app_post_done(pa->a, q, m, 0, 0, 0, 0);
		return;
	default:
		MST_DROP(pa->st, app_bad_cmd);
		eng_app_post_error(pa->a, q, m, -EOPNOTSUPP);
		return;
	}
}

void pony_app_flush(struct pony_app *pa)
{
	if (!pa)
		return;
	for (unsigned i = 0; i < EP_MAX; i++) {
		struct pep *p = pa->eps[i];

		if (!p)
			continue;
		if (ep_deferred(p))
			defer_run(p);
		if (p->dirty || p->force)
			ep_sync(p);
	}
}

struct pony_app *pony_app_attach(struct eng_pony *ep, struct eng_app *a, uint8_t *base,
				 uint64_t pony_off, uint64_t pony_size, struct mst_stats *st)
{
	struct pony_app *pa;
	uint64_t units = pony_size / UNIT;

	if (!ep || !pony_size)
		return NULL;
	if (units > UINT32_MAX)
		units = UINT32_MAX;
	pa = calloc(1, sizeof(*pa));
	if (!pa)
		return NULL;
	pa->ep = ep;
	pa->a = a;
	pa->st = st;
	pa->arena_base = base + pony_off;
	pa->arena_bytes = units * UNIT;
	/* Free extents <= live allocations + 1. */
	if (arena_init(&pa->ar, (uint32_t)units, EP_MAX * (RX_MAX + REG_MAX) + 1) < 0) {
		arena_fini(&pa->ar);
		free(pa);
		return NULL;
	}
	return pa;
}

void pony_app_detach(struct pony_app *pa)
{
	if (!pa)
		return;
	for (unsigned i = 0; i < EP_MAX; i++)
		if (pa->eps[i])
			pony_ep_close(pa, pa->eps[i]->sock);
	arena_fini(&pa->ar);
	free(pa);
}

/* ---- pony's io callbacks ------------------------------------------------- */

static struct pep *ep_by_cookie(struct eng_pony *ep, uint64_t cookie)
{
	return ep->svc[cookie >> 48];
}

static struct mst_pkt *io_alloc(void *ctx)
{
	struct eng_pony *ep = ctx;
	struct mst_pkt *p = net_alloc(ep->ns);

	if (p && p->headroom < PONY_HEADROOM) {
		uint16_t d = (uint16_t)(PONY_HEADROOM - p->headroom);

		if (p->tailroom < d + p->len) {
			net_free(ep->ns, p);
			return NULL;
		}
		p->data += d;
		p->headroom = (uint16_t)(p->headroom + d);
		p->tailroom = (uint16_t)(p->tailroom - d);
	}
	return p;
}

static void io_free(void *ctx, struct mst_pkt *p)
{
	struct eng_pony *ep = ctx;

	net_free(ep->ns, p);
}

static int io_output(void *ctx, struct mst_pkt *p, uint32_t peer, uint64_t now_ns)
{
	struct eng_pony *ep = ctx;

	return net_udp_output(ep->ns, p, peer, ep->port, ep->port, now_ns);
}

static int io_rx_begin(void *ctx, const struct pony_msg_info *mi, uint64_t *cookie)
{
	struct eng_pony *ep = ctx;
	struct pep *p = ep->svc[mi->dst_svc];
	uint32_t i, off, units = units_of(mi->len);
	struct prx *x;

	if (!p)
		return -ENOENT;
	rec_refresh(p);
	if (p->rx_res + p->rx_rec >= op_max(p) || !p->n_rx_free || !mi->len ||
	    arena_alloc(&p->pa->ar, units, &off) < 0)
		return -ENOBUFS;
	i = p->rx_free[--p->n_rx_free];
	x = &p->rx[i];
	x->state = RX_BEGUN;
	x->off = off;
	x->units = units;
	x->len = mi->len;
	p->rx_res++;
	*cookie = (uint64_t)mi->dst_svc << 48 | (uint64_t)x->gen << 16 | i;
	return 0;
}

static struct prx *rx_of(struct pep *p, uint64_t cookie, uint8_t state)
{
	uint32_t i = (uint32_t)cookie & 0xffff;

	if (!p || i >= RX_MAX || p->rx[i].state != state ||
	    p->rx[i].gen != (uint16_t)(cookie >> 16))
		return NULL;
	return &p->rx[i];
}

static void io_rx_write(void *ctx, uint64_t cookie, uint32_t off, const void *src, uint32_t n)
{
	struct pep *p = ep_by_cookie(ctx, cookie);
	struct prx *x = rx_of(p, cookie, RX_BEGUN);

	if (!x || off > x->len || n > x->len - off)
		return; /* the core's bug, not the app's memory */
	memcpy(p->pa->arena_base + (uint64_t)x->off * UNIT + off, src, n);
}

static void io_rx_deliver(void *ctx, const struct pony_msg_info *mi, uint64_t cookie)
{
	struct pep *p = ep_by_cookie(ctx, cookie);
	struct prx *x = rx_of(p, cookie, RX_BEGUN);
	struct mst_shm_pony_rec r;

	if (!x)
		return;
	x->state = RX_DELIVERED;
	p->rx_res--;
	memset(&r, 0, sizeof(r));
	r.kind = MST_PONY_REC_MSG;
	r.src_svc = mi->src_svc;
	r.peer = mi->peer;
	r.dst_svc = mi->dst_svc;
	r.stream = mi->stream;
	r.len = x->len;
	r.off = (uint64_t)x->off * UNIT;
	r.buf = (uint32_t)(cookie & 0xffffffffu);
	rec_put(p, &r, true);
}

static void io_rx_abort(void *ctx, uint64_t cookie)
{
	struct pep *p = ep_by_cookie(ctx, cookie);
	struct prx *x = rx_of(p, cookie, RX_BEGUN);

	if (!x)
		return;
	p->rx_res--;
	rx_put(p, (uint32_t)(x - p->rx));
}

static void op_done(struct eng_pony *ep, uint16_t svc, uint64_t cookie, int status)
{
	struct pep *p = ep->svc[svc];
	uint32_t idx = (uint32_t)cookie;

	if (!p || (cookie >> 48) != svc || idx >= op_max(p) ||
	    p->ops[idx].state != OP_SUBMITTED || p->ops[idx].gen != (uint16_t)(cookie >> 32))
		return; /* cancelled */
	op_complete(p, idx, status);
}

static void io_tx_done(void *ctx, uint16_t src_svc, uint64_t cookie, int status)
{
	op_done(ctx, src_svc, cookie, status);
}

static void io_read_done(void *ctx, uint16_t src_svc, uint64_t cookie, int status)
{
	op_done(ctx, src_svc, cookie, status);
}

/* A peer READs our app's region: checked against OUR copy of the region
 * table; the app is not involved (nor woken). */
static const void *io_region_lookup(void *ctx, uint16_t svc, uint64_t key, uint64_t off,
				    uint32_t len, int *err)
{
	struct eng_pony *ep = ctx;
	struct pep *p = ep->svc[svc];
	struct preg *r = p ? reg_by_key(p, key) : NULL;

	if (!r) {
		*err = -ENOENT;
		return NULL;
	}
	if (!(r->flags & MST_PONY_REG_REMOTE_READ)) {
		*err = -EACCES;
		return NULL;
	}
	if (off > r->len || len > r->len - off) {
		*err = -ERANGE;
		return NULL;
	}
	return p->pa->arena_base + (uint64_t)r->off * UNIT + off;
}

/* ---- the engine's pony ---------------------------------------------------------- */

struct eng_pony *eng_pony_create(const struct mst_engine_conf *c, struct net_stack *ns,
				 struct mst_stats *st, uint64_t now)
{
	struct eng_pony *ep;
	struct pony_conf pc;
	struct pony_io io = {
		.alloc = io_alloc, .free = io_free, .output = io_output,
		.rx_begin = io_rx_begin, .rx_write = io_rx_write, .rx_deliver = io_rx_deliver,
		.rx_abort = io_rx_abort, .tx_done = io_tx_done,
		.region_lookup = io_region_lookup, .read_done = io_read_done,
	};
	int err;

	ep = calloc(1, sizeof(*ep));
	if (!ep)
		return NULL;
	ep->svc = calloc(65536, sizeof(*ep->svc));
	if (!ep->svc)
		goto out_free;
	pony_conf_defaults(&pc);
	pc.udp_port = c->pony_port;
	pc.mtu = c->mtu ? c->mtu : 1500;
#define OVR(field, v) do { if (v) pc.field = (v); } while (0)
	OVR(max_msg, c->pony_max_msg);
	OVR(cc_target_us, c->pony_target_us);
	OVR(cc_ai_milli, c->pony_ai_milli);
	OVR(cc_beta_milli, c->pony_beta_milli);
	OVR(cc_max_mdf_milli, c->pony_max_mdf_milli);
	OVR(cc_init_cwnd, c->pony_init_cwnd);
	OVR(cc_fs_range_us, c->pony_fs_range_us);
	OVR(cc_fs_max_cwnd, c->pony_fs_max_cwnd);
	OVR(window_pkts, c->pony_window_pkts);
	OVR(rto_min_us, c->pony_rto_min_us);
	OVR(rto_max_us, c->pony_rto_max_us);
	OVR(peer_share, c->pony_peer_share);
	OVR(local_reserve, c->pony_local_reserve);
	OVR(rx_stall_ms, c->pony_rx_stall_ms);
#undef OVR
	ep->ns = ns;
	ep->st = st;
	ep->port = c->pony_port;
	ep->max_msg = pc.max_msg;
	ep->now = now;
	io.ctx = ep;
	ep->py = pony_create(&pc, &io, st);
	if (!ep->py)
		goto out_free;
	return ep;

out_free:
	err = errno ? errno : ENOMEM;
	free(ep->svc);
	free(ep);
	errno = err;
	return NULL;
}

void eng_pony_destroy(struct eng_pony *ep)
{
	if (!ep)
		return;
	pony_destroy(ep->py);
	free(ep->svc);
	free(ep);
}

void eng_pony_now(struct eng_pony *ep, uint64_t now)
{
	ep->now = now;
}

bool eng_pony_udp_input(struct eng_pony *ep, struct mst_pkt *p, uint32_t src, uint16_t dport,
			uint64_t now)
{
	if (dport != ep->port)
		return false;
	ep->now = now;
	/* p->data is at the UDP header: pony wants its own header. */
	(void)mst_pkt_adj(p, 8);
	pony_input(ep->py, p, src, now);
	return true;
}

int eng_pony_poll(struct eng_pony *ep, uint64_t now)
{
	ep->now = now;
	return pony_poll(ep->py, now);
}

bool eng_pony_idle(const struct eng_pony *ep)
{
	return !ep->n_busy && pony_idle(ep->py);
}

unsigned eng_pony_flows(const struct eng_pony *ep, struct pony_flow_info *out, unsigned max,
			uint64_t now)
{
	unsigned n = pony_flow_count(ep->py), k = 0;

	for (unsigned i = 0; i < n && k < max; i++)
		if (pony_flow_info(ep->py, i, &out[k], now) == 0)
			k++;
	return n;
}

uint16_t eng_pony_port(const struct eng_pony *ep)
{
	return ep->port;
}
