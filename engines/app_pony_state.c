/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Live upgrade of Pony for apps: the engine's endpoint tables as PONY_EP
 * records (one per endpoint, after its app's APP_SOCKs), and the hooks
 * that name app memory for the core's records (transport/pony/
 * pony_state.c): a SEND's bytes and a READ's destination are offsets in
 * the app's Pony arena, checked against the op that owns them.
 *
 * Export: pony_app_export() per app, eng_pony_export() once.
 * Import, into apps freshly attached to the new engine (same segments):
 * pony_app_import_ep() per PONY_EP -> eng_pony_import_rec() per core
 * record (hooks buf_ptr / rx_adopt claim the op or buffer each message
 * names) -> pony_app_import_finish() per app (no two allocations overlap;
 * the arena's free extents and the free stacks are rebuilt) ->
 * eng_pony_import_finish() (the core's checks; every op and buffer the
 * app waits on claimed by exactly one message).
 *
 * Only engine memory is written; the segment (rings, records, message
 * bytes, regions) stays where it is and is not read.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/state.h"
#include "engines/app.h"
#include "engines/app_pony_priv.h"
#include "transport/pony/pony_state.h"

struct ep_rec {
	uint32_t sock, qp, slots, tail;
	uint32_t head, seen_tail, last_ready, ops_out;
	uint32_t ops_rec, rx_res, rx_rec, def_head;
	uint32_t def_tail, n_ops, n_rx, n_regs;
	uint16_t svc;
	uint8_t dirty, force;
	uint32_t pad;
	/* struct reg_rec regs[n_regs]; struct op_rec ops[n_ops]; struct rx_rec
	 * rx[n_rx]; uint32_t defq[def_tail - def_head]; uint16_t op_gen[slots / 2],
	 * rx_gen[RX_MAX]; uint8_t rec_kind[(tail - head) / MST_PONY_REC_SIZE] */
};
_Static_assert(sizeof(struct ep_rec) == 72, "PONY_EP layout");

struct reg_rec {
	uint32_t idx, off, units, flags;
	uint64_t key, len;
	uint32_t refs, pad;
};
_Static_assert(sizeof(struct reg_rec) == 40, "PONY_EP region layout");

struct op_rec {
	uint32_t idx;
	uint8_t state, kind, reg, pad0;
	uint16_t dst_svc, pad1;
	uint32_t peer, stream, len;
	uint64_t key, off, roff, cookie;
};
_Static_assert(sizeof(struct op_rec) == 56, "PONY_EP op layout");

struct rx_rec {
	uint32_t idx;
	uint8_t state, pad[3];
	uint32_t off, units, len, pad2;
};
_Static_assert(sizeof(struct rx_rec) == 24, "PONY_EP buffer layout");

/* ---- export --------------------------------------------------------------- */

static void put(uint8_t **p, const void *v, size_t n)
{
	memcpy(*p, v, n);
	*p += n;
}

static uint32_t ep_count(const struct pep *p, uint32_t *n_ops, uint32_t *n_rx)
{
	uint32_t n_regs = 0;

	*n_ops = *n_rx = 0;
	for (uint32_t i = 0; i < op_max(p); i++)
		*n_ops += p->ops[i].state != OP_FREE;
	for (uint32_t i = 0; i < RX_MAX; i++)
		*n_rx += p->rx[i].state != RX_FREE;
	for (uint32_t i = 0; i < REG_MAX; i++)
		n_regs += p->reg[i].used;
	return n_regs;
}

static size_t ep_len(const struct ep_rec *r)
{
	return sizeof(*r) + sizeof(struct reg_rec) * (size_t)r->n_regs +
	       sizeof(struct op_rec) * (size_t)r->n_ops + sizeof(struct rx_rec) * (size_t)r->n_rx +
	       4ull * (r->def_tail - r->def_head) + 2ull * (r->slots / 2) + 2ull * RX_MAX +
	       (r->tail - r->head) / MST_PONY_REC_SIZE;
}

static void put_tables(const struct pep *p, uint8_t **d)
{
	for (uint32_t i = 0; i < REG_MAX; i++) {
		const struct preg *g = &p->reg[i];
		struct reg_rec r = { .idx = i, .off = g->off, .units = g->units, .flags = g->flags,
				     .key = g->key, .len = g->len, .refs = g->refs };

		if (g->used)
			put(d, &r, sizeof(r));
	}
	for (uint32_t i = 0; i < op_max(p); i++) {
		const struct pop *o = &p->ops[i];
		struct op_rec r = { .idx = i, .state = o->state, .kind = o->kind, .reg = o->reg,
				    .dst_svc = o->dst_svc, .peer = o->peer, .stream = o->stream,
				    .len = o->len, .key = o->key, .off = o->off, .roff = o->roff,
				    .cookie = o->cookie };

		if (o->state != OP_FREE)
			put(d, &r, sizeof(r));
	}
	for (uint32_t i = 0; i < RX_MAX; i++) {
		const struct prx *x = &p->rx[i];
		struct rx_rec r = { .idx = i, .state = x->state, .off = x->off, .units = x->units,
				    .len = x->len };

		if (x->state != RX_FREE)
			put(d, &r, sizeof(r));
	}
}

static void put_rings(const struct pep *p, uint8_t **d)
{
	for (uint32_t k = p->def_head; k != p->def_tail; k++)
		put(d, &p->defq[k & (op_max(p) - 1)], 4);
	for (uint32_t i = 0; i < op_max(p); i++)
		put(d, &p->ops[i].gen, 2);
	for (uint32_t i = 0; i < RX_MAX; i++)
		put(d, &p->rx[i].gen, 2);
	for (uint32_t t = p->head; t != p->tail; t += MST_PONY_REC_SIZE)
		put(d, &p->rec_kind[(t / MST_PONY_REC_SIZE) & (p->slots - 1)], 1);
}

static void export_ep(const struct pep *p, struct mst_state_writer *w)
{
	struct ep_rec r = {
		.sock = p->sock, .qp = p->qp, .slots = p->slots, .tail = p->tail, .head = p->head,
		.seen_tail = p->seen_tail, .last_ready = p->last_ready, .ops_out = p->ops_out,
		.ops_rec = p->ops_rec, .rx_res = p->rx_res, .rx_rec = p->rx_rec,
		.def_head = p->def_head, .def_tail = p->def_tail, .svc = p->svc,
		.dirty = p->dirty, .force = p->force,
	};
	uint8_t *d;

	r.n_regs = ep_count(p, &r.n_ops, &r.n_rx);
	d = mst_sw_rec(w, MST_STATE_REC_PONY_EP, (uint32_t)ep_len(&r));
	if (!d)
		return;
	put(&d, &r, sizeof(r));
	put_tables(p, &d);
	put_rings(p, &d);
}

int pony_app_export(struct pony_app *pa, struct mst_state_writer *w)
{
	for (unsigned i = 0; pa && i < EP_MAX; i++)
		if (pa->eps[i])
			export_ep(pa->eps[i], w);
	return 0;
}

/* ---- the core's hooks ----------------------------------------------------- */

static uint64_t hook_buf_ref(void *ctx, uint16_t svc, const void *ptr)
{
	struct eng_pony *ep = ctx;
	const struct pep *p = ep->svc[svc];

	return p ? (uint64_t)((const uint8_t *)ptr - p->pa->arena_base) : PONY_STATE_NO_BUF;
}

/* The op behind a message's cookie (svc << 48 | gen << 32 | index, see
 * op_cookie()) must be waiting in pony with exactly these bytes. */
static void *hook_buf_ptr(void *ctx, uint16_t svc, uint64_t cookie, uint64_t ref, uint32_t len,
			  bool write)
{
	struct eng_pony *ep = ctx;
	struct pep *p = ep->svc[svc];
	uint32_t idx = (uint32_t)cookie;
	struct pop *o;

	if (!p || cookie >> 48 != svc || idx >= op_max(p))
		return NULL;
	o = &p->ops[idx];
	if (o->state != OP_SUBMITTED || o->gen != (uint16_t)(cookie >> 32) || o->claimed ||
	    o->kind != (write ? MST_PONY_REC_READ : MST_PONY_REC_SEND) || o->off != ref ||
	    o->len != len)
		return NULL;
	o->claimed = true;
	return p->pa->arena_base + ref;
}

/* A begun message's buffer (cookie: svc << 48 | gen << 16 | index). */
static int hook_rx_adopt(void *ctx, uint16_t svc, uint64_t cookie, uint32_t len)
{
	struct eng_pony *ep = ctx;
	struct pep *p = ep->svc[svc];
	uint32_t i = (uint32_t)cookie & 0xffff;
	struct prx *x;

	if (!p || cookie >> 48 != svc || (uint16_t)(cookie >> 32) || i >= RX_MAX)
		return -EINVAL;
	x = &p->rx[i];
	if (x->state != RX_BEGUN || x->gen != (uint16_t)(cookie >> 16) || x->len != len ||
	    x->claimed)
		return -EINVAL;
	x->claimed = true;
	return 0;
}

static struct pony_state_hooks hooks_of(struct eng_pony *ep)
{
	return (struct pony_state_hooks){ .buf_ref = hook_buf_ref, .buf_ptr = hook_buf_ptr,
					  .rx_adopt = hook_rx_adopt, .ctx = ep };
}

int eng_pony_export(struct eng_pony *ep, struct mst_state_writer *w)
{
	struct pony_state_hooks h = hooks_of(ep);

	return pony_export(ep->py, w, &h);
}

int eng_pony_import_rec(struct eng_pony *ep, unsigned type, const void *p, uint32_t len)
{
	struct pony_state_hooks h = hooks_of(ep);

	return pony_import_rec(ep->py, type, p, len, &h);
}

/* Every op waiting in pony and every buffer being filled was claimed. */
static int claims_ok(const struct pep *p)
{
	for (uint32_t i = 0; i < op_max(p); i++)
		if ((p->ops[i].state == OP_SUBMITTED) != p->ops[i].claimed)
			return -EINVAL;
	for (uint32_t i = 0; i < RX_MAX; i++)
		if ((p->rx[i].state == RX_BEGUN) != p->rx[i].claimed)
			return -EINVAL;
	return 0;
}

int eng_pony_import_finish(struct eng_pony *ep)
{
	int rc = pony_import_finish(ep->py);

	for (uint32_t s = 1; !rc && s < 65536; s++)
		if (ep->svc[s])
			rc = claims_ok(ep->svc[s]);
	return rc;
}

/* ---- import: one endpoint --------------------------------------------------- */

int64_t pony_ep_rec_sock(const void *p, uint32_t len)
{
	uint32_t sock;

	if (len < sizeof(struct ep_rec))
		return -EBADMSG;
	memcpy(&sock, p, sizeof(sock));
	return sock;
}

static int check_ep(const struct pony_app *pa, const struct ep_rec *r, uint32_t slots,
		    uint32_t n_qps)
{
	uint32_t recs = (r->tail - r->head) / MST_PONY_REC_SIZE, ops = slots / 2;

	if (r->slots != slots || slots < 4 || (slots & (slots - 1)) || r->qp >= n_qps ||
	    r->dirty > 1 || r->force > 1 || r->pad)
		return -EINVAL;
	/* the record ring: whole records, each counted once, never more than
	 * the ring (each kind's half reserved before it is written) */
	if ((r->tail - r->head) % MST_PONY_REC_SIZE || recs > slots ||
	    recs != r->ops_rec + r->rx_rec || r->ops_out > ops || r->ops_rec > ops - r->ops_out ||
	    r->rx_res > ops || r->rx_rec > ops - r->rx_res)
		return -EINVAL;
	if (r->n_ops != r->ops_out || r->n_rx > RX_MAX || r->n_regs > REG_MAX ||
	    r->def_tail - r->def_head > r->n_ops)
		return -EINVAL;
	/* unbound: it can have sent nothing and received nothing */
	if (!r->svc && (r->n_ops || r->n_rx))
		return -EINVAL;
	if (r->svc && pa->ep->svc[r->svc])
		return -EEXIST;
	return 0;
}

static int take_reg(struct pony_app *pa, struct pep *p, const struct reg_rec *r)
{
	uint64_t units = pa->arena_bytes / UNIT;
	struct preg *g;

	if (r->idx >= REG_MAX || (r->key & (REG_MAX - 1)) != r->idx || r->key < REG_MAX ||
	    !r->len || r->len > pa->arena_bytes || r->units != units_of(r->len) ||
	    (uint64_t)r->off + r->units > units || (r->flags & ~MST_PONY_REG_REMOTE_READ) || r->pad)
		return -EINVAL;
	g = &p->reg[r->idx];
	if (g->used)
		return -EEXIST;
	*g = (struct preg){ .used = true, .key = r->key, .off = r->off, .units = r->units,
			    .len = r->len, .flags = r->flags, .refs = r->refs };
	return 0;
}

/* An op inside one of the endpoint's regions, as cmd_op() accepted it. */
static int take_op(struct eng_pony *ep, struct pep *p, const struct op_rec *r)
{
	const struct preg *g;
	uint64_t ro;
	struct pop *o;

	if (r->idx >= op_max(p) || (r->state != OP_DEFERRED && r->state != OP_SUBMITTED) ||
	    (r->kind != MST_PONY_REC_SEND && r->kind != MST_PONY_REC_READ) || r->reg >= REG_MAX ||
	    !r->dst_svc || !r->peer || !r->len || r->len > ep->max_msg || r->pad0 || r->pad1 ||
	    (r->kind == MST_PONY_REC_READ && (r->stream || r->off > UINT32_MAX)) ||
	    (r->kind == MST_PONY_REC_SEND && (r->key || r->roff)))
		return -EINVAL;
	g = &p->reg[r->reg];
	ro = (uint64_t)g->off * UNIT;
	if (!g->used || r->off < ro || r->len > g->len || r->off - ro > g->len - r->len)
		return -EINVAL;
	o = &p->ops[r->idx];
	if (o->state != OP_FREE)
		return -EEXIST;
	*o = (struct pop){ .state = r->state, .kind = r->kind, .reg = r->reg, .gen = o->gen,
			   .dst_svc = r->dst_svc, .peer = r->peer, .stream = r->stream,
			   .key = r->key, .len = r->len, .off = r->off, .roff = r->roff,
			   .cookie = r->cookie };
	return 0;
}

static int take_rx(struct pony_app *pa, struct pep *p, const struct rx_rec *r)
{
	uint64_t units = pa->arena_bytes / UNIT;

	if (r->idx >= RX_MAX || (r->state != RX_BEGUN && r->state != RX_DELIVERED) || !r->len ||
	    r->units != units_of(r->len) || (uint64_t)r->off + r->units > units || r->pad[0] ||
	    r->pad[1] || r->pad[2] || r->pad2)
		return -EINVAL;
	if (p->rx[r->idx].state != RX_FREE)
		return -EEXIST;
	p->rx[r->idx] = (struct prx){ .state = r->state, .gen = p->rx[r->idx].gen, .off = r->off,
				      .units = r->units, .len = r->len };
	return 0;
}

static int take_tables(struct pony_app *pa, struct pep *p, const struct ep_rec *r,
		       const uint8_t **d)
{
	int rc = 0;

	for (uint32_t i = 0; !rc && i < r->n_regs; i++, *d += sizeof(struct reg_rec)) {
		struct reg_rec g;

		memcpy(&g, *d, sizeof(g));
		rc = take_reg(pa, p, &g);
	}
	for (uint32_t i = 0; !rc && i < r->n_ops; i++, *d += sizeof(struct op_rec)) {
		struct op_rec o;

		memcpy(&o, *d, sizeof(o));
		rc = take_op(pa->ep, p, &o);
	}
	for (uint32_t i = 0; !rc && i < r->n_rx; i++, *d += sizeof(struct rx_rec)) {
		struct rx_rec x;

		memcpy(&x, *d, sizeof(x));
		rc = take_rx(pa, p, &x);
	}
	return rc;
}

/* Deferred queue (each deferred op once, in order), generations, and the
 * kind of each record the app has not consumed. */
static int take_rings(struct pep *p, const struct ep_rec *r, const uint8_t *d)
{
	uint32_t n_def = 0, n_msg = 0;

	for (uint32_t k = r->def_head; k != r->def_tail; k++, d += 4) {
		uint32_t idx;

		memcpy(&idx, d, 4);
		if (idx >= op_max(p) || p->ops[idx].state != OP_DEFERRED || p->ops[idx].claimed)
			return -EINVAL;
		p->ops[idx].claimed = true; /* listed; cleared below */
		p->defq[k & (op_max(p) - 1)] = idx;
	}
	for (uint32_t i = 0; i < op_max(p); i++, d += 2) {
		memcpy(&p->ops[i].gen, d, 2);
		n_def += p->ops[i].state == OP_DEFERRED;
		if (p->ops[i].state == OP_DEFERRED && !p->ops[i].claimed)
			return -EINVAL;
		p->ops[i].claimed = false;
	}
	if (n_def != r->def_tail - r->def_head)
		return -EINVAL;
	for (uint32_t i = 0; i < RX_MAX; i++, d += 2)
		memcpy(&p->rx[i].gen, d, 2);
	for (uint32_t t = r->head; t != r->tail; t += MST_PONY_REC_SIZE, d++) {
		if (*d > 1)
			return -EINVAL;
		p->rec_kind[(t / MST_PONY_REC_SIZE) & (p->slots - 1)] = *d;
		n_msg += *d;
	}
	return n_msg == r->rx_rec ? 0 : -EINVAL;
}

/* Counts the tables must add up to: live ops per region, begun buffers. */
static int check_counts(const struct pep *p, const struct ep_rec *r)
{
	uint32_t refs[REG_MAX] = { 0 }, begun = 0;

	for (uint32_t i = 0; i < op_max(p); i++)
		if (p->ops[i].state != OP_FREE)
			refs[p->ops[i].reg]++;
	for (uint32_t i = 0; i < REG_MAX; i++)
		if (p->reg[i].used && p->reg[i].refs != refs[i])
			return -EINVAL;
	for (uint32_t i = 0; i < RX_MAX; i++)
		begun += p->rx[i].state == RX_BEGUN;
	return begun == r->rx_res ? 0 : -EINVAL;
}

static void ep_fill(struct pep *p, const struct ep_rec *r)
{
	p->svc = r->svc;
	p->qp = r->qp;
	p->tail = r->tail;
	p->head = r->head;
	p->seen_tail = r->seen_tail;
	p->last_ready = r->last_ready;
	p->dirty = r->dirty;
	p->force = r->force;
	p->ops_out = r->ops_out;
	p->ops_rec = r->ops_rec;
	p->rx_res = r->rx_res;
	p->rx_rec = r->rx_rec;
	p->def_head = r->def_head;
	p->def_tail = r->def_tail;
	/* free stacks as pony_ep_alloc() orders them: lowest index on top */
	p->n_op_free = p->n_rx_free = 0;
	for (uint32_t k = op_max(p); k-- > 0;)
		if (p->ops[k].state == OP_FREE)
			p->op_free[p->n_op_free++] = k;
	for (uint32_t k = RX_MAX; k-- > 0;)
		if (p->rx[k].state == RX_FREE)
			p->rx_free[p->n_rx_free++] = k;
}

int pony_app_import_ep(struct pony_app *pa, const void *payload, uint32_t len, uint8_t *ring,
		       uint32_t ring_bytes, struct mst_shm_sock *sh, uint32_t n_qps)
{
	const uint8_t *d = payload;
	struct ep_rec r;
	struct pep *p;
	unsigned slot;
	int rc;

	if (!pa)
		return -EINVAL; /* Pony off here, or the segment has no arena */
	if (len < sizeof(r))
		return -EBADMSG;
	memcpy(&r, d, sizeof(r));
	rc = check_ep(pa, &r, ring_bytes / MST_PONY_REC_SIZE, n_qps);
	if (rc)
		return rc;
	if (len != ep_len(&r))
		return -EBADMSG;
	for (slot = 0; slot < EP_MAX && pa->eps[slot]; slot++)
		if (pa->eps[slot]->sock == r.sock)
			return -EEXIST;
	if (slot == EP_MAX)
		return -EMFILE;
	p = pony_ep_alloc(r.slots);
	if (!p)
		return -ENOMEM;
	p->open = true;
	p->sock = r.sock;
	p->pa = pa;
	p->sh = sh;
	p->rec = ring;
	pa->eps[slot] = p; /* from here pony_app_forget() frees it */
	d += sizeof(r);
	rc = take_tables(pa, p, &r, &d);
	if (!rc)
		rc = take_rings(p, &r, d);
	if (!rc)
		rc = check_counts(p, &r);
	if (rc)
		return rc;
	ep_fill(p, &r);
	if (p->svc)
		pa->ep->svc[p->svc] = p;
	if (p->def_head != p->def_tail)
		pa->ep->n_busy++;
	return 0;
}

/* ---- import: the app's arena ------------------------------------------------- */

struct piece {
	uint32_t off, units;
};

static int piece_cmp(const void *a, const void *b)
{
	const struct piece *x = a, *y = b;

	return x->off < y->off ? -1 : x->off > y->off;
}

static uint32_t pieces_of(const struct pony_app *pa, struct piece *v)
{
	uint32_t n = 0;

	for (unsigned e = 0; e < EP_MAX; e++) {
		const struct pep *p = pa->eps[e];

		for (uint32_t i = 0; p && i < REG_MAX; i++)
			if (p->reg[i].used)
				v[n++] = (struct piece){ p->reg[i].off, p->reg[i].units };
		for (uint32_t i = 0; p && i < RX_MAX; i++)
			if (p->rx[i].state != RX_FREE)
				v[n++] = (struct piece){ p->rx[i].off, p->rx[i].units };
	}
	return n;
}

/* No two allocations overlap; the free extents are what lies between
 * them (the allocator keeps them merged, so this is its exact list). */
int pony_app_import_finish(struct pony_app *pa)
{
	uint32_t units = (uint32_t)(pa ? pa->arena_bytes / UNIT : 0), at = 0, n;
	struct piece *v;

	if (!pa)
		return 0;
	v = malloc(sizeof(*v) * EP_MAX * (REG_MAX + RX_MAX));
	if (!v)
		return -ENOMEM;
	n = pieces_of(pa, v);
	qsort(v, n, sizeof(*v), piece_cmp);
	pa->ar.n = 0;
	for (uint32_t i = 0; i <= n; i++) {
		uint32_t end = i < n ? v[i].off : units;

		if (end < at) {
			free(v);
			return -EINVAL; /* overlaps the previous allocation */
		}
		if (end > at) {
			pa->ar.off[pa->ar.n] = at;
			pa->ar.len[pa->ar.n++] = end - at;
		}
		if (i < n)
			at = v[i].off + v[i].units;
	}
	free(v);
	return 0;
}

bool pony_app_has_ep(const struct pony_app *pa, uint32_t sock)
{
	for (unsigned i = 0; pa && i < EP_MAX; i++)
		if (pa->eps[i] && pa->eps[i]->sock == sock)
			return true;
	return false;
}

void pony_app_forget(struct pony_app *pa)
{
	if (!pa)
		return;
	for (unsigned i = 0; i < EP_MAX; i++) {
		struct pep *p = pa->eps[i];

		if (!p)
			continue;
		if (p->svc && pa->ep->svc[p->svc] == p)
			pa->ep->svc[p->svc] = NULL;
		pony_ep_free(p);
		pa->eps[i] = NULL;
	}
	free(pa->ar.off);
	free(pa->ar.len);
	free(pa);
}
