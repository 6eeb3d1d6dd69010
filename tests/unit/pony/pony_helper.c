/* SPDX-License-Identifier: BSD-3-Clause */
/* Pony test harness: see pony_helper.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <endian.h>

#include "pony_helper.h"
#include "transport/pony/pony_wire.h"

#define HEADROOM 128
#define BUFSZ 2048

uint64_t rnd(struct world *w)
{
	w->rng ^= w->rng << 13;
	w->rng ^= w->rng >> 7;
	w->rng ^= w->rng << 17;
	return w->rng;
}

void fill_pattern(uint8_t *b, size_t n, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;

	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		b[i] = (uint8_t)x;
	}
}

uint64_t fnv(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 1099511628211ull;
	return h;
}

static struct mst_pkt *buf_alloc(struct world *w)
{
	struct mst_pkt *p = calloc(1, sizeof(*p) + HEADROOM + BUFSZ);

	assert_non_null(p);
	p->data = (uint8_t *)(p + 1) + HEADROOM;
	p->headroom = HEADROOM;
	p->tailroom = BUFSZ;
	w->bufs_live++;
	return p;
}

static void buf_free(struct world *w, struct mst_pkt *p)
{
	w->bufs_live--;
	free(p);
}

struct mst_pkt *pkt_new(struct world *w, const void *data, uint16_t len)
{
	struct mst_pkt *p = buf_alloc(w);

	memcpy(mst_pkt_append(p, len), data, len);
	return p;
}

static struct mst_pkt *io_alloc(void *ctx)
{
	return buf_alloc(((struct node *)ctx)->w);
}

static void io_free(void *ctx, struct mst_pkt *p)
{
	buf_free(((struct node *)ctx)->w, p);
}

static void enqueue(struct world *w, struct mst_pkt *p, uint32_t src, uint32_t dst, uint64_t at)
{
	if (w->nq == w->capq) {
		w->capq = w->capq ? w->capq * 2 : 1024;
		w->q = realloc(w->q, w->capq * sizeof(*w->q));
		assert_non_null(w->q);
	}
	w->q[w->nq++] = (struct qpkt){ .p = p, .src = src, .dst = dst, .at = at, .n = w->seqno++ };
}

static int io_output(void *ctx, struct mst_pkt *p, uint32_t peer, uint64_t now)
{
	struct node *n = ctx;
	struct world *w = n->w;
	uint64_t at = now + w->delay_ns;
	uint8_t type = p->len > 1 ? p->data[1] : 0;

	assert_true(p->len <= n->conf.mtu - 28);
	w->sent++;
	if ((w->drop_type_mask >> type) & 1 || w->sent == w->drop_nth)
		goto drop;
	if (w->filter && w->filter(w, p, n->ip, peer))
		goto drop;
	if (w->burst_every && w->sent % w->burst_every == 0)
		w->burst_left = w->burst_len;
	if (w->burst_left) {
		w->burst_left--;
		goto drop;
	}
	if (w->loss && rnd(w) % 1000 < w->loss)
		goto drop;
	if (w->corrupt && rnd(w) % 1000 < w->corrupt)
		p->data[rnd(w) % p->len] ^= (uint8_t)(1u << (rnd(w) % 8));
	if (w->truncate && rnd(w) % 1000 < w->truncate)
		mst_pkt_trim(p, (uint16_t)(rnd(w) % p->len));
	if (w->reorder && rnd(w) % 1000 < w->reorder)
		at += 1 + rnd(w) % (w->reorder_ns ? w->reorder_ns : 20 * US);
	if (w->dup && rnd(w) % 1000 < w->dup)
		enqueue(w, pkt_new(w, p->data, p->len), n->ip, peer, at + rnd(w) % (10 * US));
	enqueue(w, p, n->ip, peer, at);
	return 0;
drop:
	w->dropped++;
	buf_free(w, p);
	return 0;
}

static int io_rx_begin(void *ctx, const struct pony_msg_info *mi, uint64_t *cookie)
{
	struct node *n = ctx;
	struct rx_rec *r;

	if (mi->dst_svc < n->bound_lo || mi->dst_svc > n->bound_hi)
		return -ENOENT;
	if (n->w->now < n->enobufs_until) {
		n->enobufs_calls++;
		return -ENOBUFS;
	}
	if (n->n_rx == n->cap_rx) {
		n->cap_rx = n->cap_rx ? n->cap_rx * 2 : 256;
		n->rx = realloc(n->rx, n->cap_rx * sizeof(*n->rx));
		n->order = realloc(n->order, n->cap_rx * sizeof(*n->order));
		assert_non_null(n->rx);
	}
	r = &n->rx[n->n_rx];
	memset(r, 0, sizeof(*r));
	r->mi = *mi;
	r->buf = malloc(mi->len);
	assert_non_null(r->buf);
	*cookie = n->n_rx++;
	return 0;
}

static void io_rx_write(void *ctx, uint64_t cookie, uint32_t off, const void *src, uint32_t len)
{
	struct node *n = ctx;
	struct rx_rec *r = &n->rx[cookie];

	assert_true(cookie < n->n_rx);
	assert_false(r->delivered);
	assert_true((uint64_t)off + len <= r->mi.len);
	memcpy(r->buf + off, src, len);
	r->written += len;
}

static void io_rx_deliver(void *ctx, const struct pony_msg_info *mi, uint64_t cookie)
{
	struct node *n = ctx;
	struct rx_rec *r = &n->rx[cookie];

	assert_false(r->delivered);
	assert_false(r->aborted);
	assert_int_equal(r->written, r->mi.len);
	assert_int_equal(mi->len, r->mi.len);
	r->delivered = 1;
	r->at = n->w->now;
	n->order[n->n_order++] = (unsigned)cookie;
	/* from inside pony_input(), as an engine's app glue may */
	if (n->echo && pony_send(n->py, mi->peer, mi->dst_svc, mi->src_svc, mi->stream, r->buf,
				 mi->len, cookie, n->w->now))
		n->echo_errs++;
}

static void io_rx_abort(void *ctx, uint64_t cookie)
{
	struct node *n = ctx;

	assert_false(n->rx[cookie].delivered);
	n->rx[cookie].aborted = 1;
}

static void rec(struct done_rec **v, unsigned *nv, unsigned *cap, uint16_t svc, uint64_t cookie,
		int status, uint64_t at)
{
	if (*nv == *cap) {
		*cap = *cap ? *cap * 2 : 256;
		*v = realloc(*v, *cap * sizeof(**v));
		assert_non_null(*v);
	}
	(*v)[(*nv)++] = (struct done_rec){ svc, cookie, status, at };
}

static void io_tx_done(void *ctx, uint16_t svc, uint64_t cookie, int status)
{
	struct node *n = ctx;

	assert_null(find_done(n->tx, n->n_tx, cookie)); /* exactly once */
	rec(&n->tx, &n->n_tx, &n->cap_tx, svc, cookie, status, n->w->now);
}

static void io_read_done(void *ctx, uint16_t svc, uint64_t cookie, int status)
{
	struct node *n = ctx;

	assert_null(find_done(n->rd, n->n_rd, cookie));
	rec(&n->rd, &n->n_rd, &n->cap_rd, svc, cookie, status, n->w->now);
}

static const void *io_region_lookup(void *ctx, uint16_t svc, uint64_t key, uint64_t off,
				    uint32_t len, int *err)
{
	struct node *n = ctx;

	for (unsigned i = 0; i < n->n_regions; i++) {
		const struct region *r = &n->regions[i];

		if (r->key != key || r->svc != svc)
			continue;
		if (r->perm_err) {
			*err = r->perm_err;
			return NULL;
		}
		if (off > r->len || len > r->len - off) {
			*err = -ERANGE;
			return NULL;
		}
		return r->buf + off;
	}
	*err = -ENOENT;
	return NULL;
}

const struct done_rec *find_done(const struct done_rec *r, unsigned n, uint64_t cookie)
{
	for (unsigned i = 0; i < n; i++)
		if (r[i].cookie == cookie)
			return &r[i];
	return NULL;
}

struct pony *node_create(struct node *n)
{
	struct pony_io io = {
		.alloc = io_alloc, .free = io_free, .output = io_output,
		.rx_begin = io_rx_begin, .rx_write = io_rx_write, .rx_deliver = io_rx_deliver,
		.rx_abort = io_rx_abort, .tx_done = io_tx_done,
		.region_lookup = io_region_lookup, .read_done = io_read_done, .ctx = n,
	};

	return pony_create(&n->conf, &io, &n->st);
}

void node_restart(struct world *w, struct node *n)
{
	pony_destroy(n->py);
	n->py = node_create(n);
	assert_non_null(n->py);
}

static void node_init(struct world *w, struct node *n, uint32_t ip, const struct pony_conf *conf)
{
	memset(n, 0, sizeof(*n));
	n->w = w;
	n->ip = ip;
	n->conf = *conf;
	n->bound_lo = 1;
	n->bound_hi = 999;
	n->py = node_create(n);
	assert_non_null(n->py);
}

void world_init(struct world *w, const struct pony_conf *conf)
{
	memset(w, 0, sizeof(*w));
	w->rng = 88172645463325252ull;
	w->now = 1000 * MS;
	w->delay_ns = 5 * US;
	node_init(w, &w->a, A_IP, conf);
	node_init(w, &w->b, B_IP, conf);
}

static void node_fini(struct node *n)
{
	pony_destroy(n->py);
	for (unsigned i = 0; i < n->n_rx; i++)
		free(n->rx[i].buf);
	free(n->rx);
	free(n->order);
	free(n->tx);
	free(n->rd);
}

void world_fini(struct world *w)
{
	for (unsigned i = 0; i < w->nq; i++)
		buf_free(w, w->q[i].p);
	node_fini(&w->a);
	node_fini(&w->b);
	free(w->q);
	assert_int_equal(w->bufs_live, 0); /* the core leaks no packet buffer */
}

struct node *peer_of(struct world *w, struct node *n)
{
	return n == &w->a ? &w->b : &w->a;
}

bool world_step(struct world *w)
{
	bool did = false;

	for (;;) {
		unsigned best = UINT32_MAX;

		for (unsigned i = 0; i < w->nq; i++)
			if (w->q[i].at <= w->now &&
			    (best == UINT32_MAX || w->q[i].at < w->q[best].at ||
			     (w->q[i].at == w->q[best].at && w->q[i].n < w->q[best].n)))
				best = i;
		if (best == UINT32_MAX)
			break;
		struct qpkt q = w->q[best];

		w->q[best] = w->q[--w->nq];
		if (q.dst != A_IP && q.dst != B_IP) {
			w->to_others++;
			w->to_others_bytes += q.p->len;
			buf_free(w, q.p);
			continue;
		}
		pony_input(q.dst == A_IP ? w->a.py : w->b.py, q.p, q.src, w->now);
		did = true;
	}
	if (pony_poll(w->a.py, w->now))
		did = true;
	if (pony_poll(w->b.py, w->now))
		did = true;
	return did;
}

bool world_run(struct world *w, uint64_t for_ns, bool (*cond)(struct world *w, void *arg), void *arg)
{
	uint64_t end = w->now + for_ns;

	while (w->now < end) {
		uint64_t next = w->now + 50 * US;

		world_step(w);
		if (cond && cond(w, arg))
			return true;
		for (unsigned i = 0; i < w->nq; i++)
			if (w->q[i].at < next)
				next = w->q[i].at > w->now ? w->q[i].at : w->now + 1;
		w->now = next;
	}
	return cond ? cond(w, arg) : true;
}

bool all_tx_done(struct world *w, void *arg)
{
	return w->a.n_tx >= *(unsigned *)arg;
}

int node_send(struct node *n, uint16_t src, uint16_t dst, uint32_t stream, const void *data,
	      uint32_t len, uint64_t cookie)
{
	return pony_send(n->py, peer_of(n->w, n)->ip, src, dst, stream, data, len, cookie, n->w->now);
}

unsigned total_drops(const struct mst_stats *st)
{
	uint64_t t = 0;

	for (unsigned i = 0; i < MST_DROP__COUNT; i++)
		t += st->drop[i];
	return (unsigned)t;
}

void put_pony_hdr(uint8_t *d, uint8_t type, uint16_t flags, uint32_t src_epoch,
		  uint32_t dst_epoch, uint32_t psn)
{
	struct pony_hdr h = {
		.ver = PONY_VERSION, .type = type, .flags = htons(flags),
		.src_epoch = htonl(src_epoch), .dst_epoch = htonl(dst_epoch), .psn = htonl(psn),
	};

	memcpy(d, &h, sizeof(h));
}

static struct pony_hdr hdr_of(const struct mst_pkt *p)
{
	struct pony_hdr h;

	assert_true(p->len >= sizeof(h));
	memcpy(&h, p->data, sizeof(h));
	return h;
}

uint8_t pkt_type(const struct mst_pkt *p) { return hdr_of(p).type; }
uint32_t pkt_src_epoch(const struct mst_pkt *p) { return ntohl(hdr_of(p).src_epoch); }
uint32_t pkt_dst_epoch(const struct mst_pkt *p) { return ntohl(hdr_of(p).dst_epoch); }
uint32_t pkt_psn(const struct mst_pkt *p) { return ntohl(hdr_of(p).psn); }

struct pony_conf conf_small(void)
{
	struct pony_conf c;

	pony_conf_defaults(&c);
	c.max_flows = 16;
	c.max_msgs = 512;
	return c;
}

struct world *mkworld(void)
{
	struct world *w = calloc(1, sizeof(*w));
	struct pony_conf c = conf_small();

	world_init(w, &c);
	return w;
}

void rmworld(struct world *w)
{
	world_fini(w);
	free(w);
}


void flow_warm_up(struct world *w)
{
	uint8_t b = 1;
	unsigned want = 1;

	assert_int_equal(node_send(&w->a, 1, 2, 0, &b, 1, 0), 0);
	assert_true(world_run(w, 100 * MS, all_tx_done, &want));
	assert_int_equal(w->a.tx[0].status, 0);
	world_run(w, 1 * MS, NULL, NULL); /* the last ACKs land */
	for (unsigned i = 0; i < w->b.n_rx; i++)
		free(w->b.rx[i].buf);
	w->a.n_tx = w->b.n_rx = w->b.n_order = 0;
	memset(&w->a.st, 0, sizeof(w->a.st));
	memset(&w->b.st, 0, sizeof(w->b.st));
	w->sent = w->dropped = 0;
}

void world_purge_others(struct world *w)
{
	unsigned keep = 0;

	for (unsigned i = 0; i < w->nq; i++) {
		if (w->q[i].dst == A_IP || w->q[i].dst == B_IP) {
			w->q[keep++] = w->q[i];
			continue;
		}
		w->to_others++;
		w->to_others_bytes += w->q[i].p->len;
		buf_free(w, w->q[i].p);
	}
	w->nq = keep;
}
