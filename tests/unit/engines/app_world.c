/* SPDX-License-Identifier: BSD-3-Clause */
/* The app-layer harness (app_world.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <cmocka.h>

#include "app_world.h"
#include "transport/net/net.h"
#include "transport/tcp/tcp.h"

/* ---- frames go nowhere ---------------------------------------------------- */

struct aw_buf {
	struct mst_pkt pkt;
	uint8_t mem[10240];
};

struct mst_pkt *aw_io_alloc(void *ctx)
{
	struct aw_buf *b = calloc(1, sizeof(*b));

	(void)ctx;
	if (!b)
		return NULL;
	b->pkt.data = b->mem + 128;
	b->pkt.headroom = 128;
	b->pkt.tailroom = (uint16_t)(sizeof(b->mem) - 128);
	return &b->pkt;
}

void aw_io_free(void *ctx, struct mst_pkt *p)
{
	(void)ctx;
	free(p);
}

/* ---- segments ------------------------------------------------------------- */

void *aw_segment(const struct aw_geom *g, uint32_t local_ip, size_t *len)
{
	uint64_t qp_off = 4096, sock_off, fifo_off, fifo_size;
	struct mst_shm_hdr *h;
	struct mst_shm_sock *socks;
	void *base;

	sock_off = (qp_off + (uint64_t)g->n_qps * sizeof(struct mst_shm_qp) + 4095) & ~4095ull;
	fifo_off = (sock_off + (uint64_t)g->n_socks * sizeof(struct mst_shm_sock) + 4095) & ~4095ull;
	fifo_size = (uint64_t)g->n_slots * (g->rx_size + g->tx_size);
	*len = fifo_off + fifo_size;
	base = mmap(NULL, *len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		    -1, 0);
	assert_true(base != MAP_FAILED);
	h = base;
	h->magic = MST_SHM_MAGIC;
	h->version = MST_SHM_VERSION;
	h->size = *len;
	h->n_qps = g->n_qps;
	h->n_socks = g->n_socks;
	h->qp_off = qp_off;
	h->sock_off = sock_off;
	h->fifo_off = fifo_off;
	h->fifo_size = fifo_size;
	h->pony_off = *len;
	h->pony_size = 0;
	h->app_id = (uint32_t)g->id;
	h->local_ip = local_ip;
	socks = (struct mst_shm_sock *)((uint8_t *)base + sock_off);
	for (uint32_t i = 0; i < g->n_socks; i++)
		socks[i].state = MST_SOCK_FREE;
	return base;
}

/* ---- the world ------------------------------------------------------------ */

void aw_init(struct app_world *w, unsigned n_apps)
{
	struct net_io io = { .alloc = aw_io_alloc, .xmit = aw_io_free, .free = aw_io_free };
	struct net_conf nc = { .mac = { 2, 0, 0, 0, 0, 1 }, .ip = AW_IP, .prefix_len = 24,
			       .mtu = 1500 };
	struct tcp_conf tc;

	assert_true(n_apps <= AW_MAX_APPS);
	memset(w, 0, sizeof(*w));
	w->ns = net_create(&nc, &io, &w->st);
	assert_non_null(w->ns);
	tcp_conf_defaults(&tc);
	tc.max_conns = 256;
	w->ts = tcp_create(w->ns, &tc, &w->st, 0);
	assert_non_null(w->ts);
	w->udp = calloc(ENG_PORT_TABLE, sizeof(*w->udp));
	assert_non_null(w->udp);
	for (unsigned k = 0; k < n_apps; k++) {
		struct aw_geom g = { .id = (int32_t)k + 1, .n_qps = 2, .n_socks = 64, .n_slots = 16,
				     .rx_size = 4096, .tx_size = 4096 };
		struct aw_app *p = &w->app[k];
		const struct mst_shm_hdr *h;
		struct mst_app app;

		p->seg = aw_segment(&g, AW_IP, &p->len);
		h = p->seg;
		p->qps = (struct mst_shm_qp *)((uint8_t *)p->seg + h->qp_off);
		p->socks = (struct mst_shm_sock *)((uint8_t *)p->seg + h->sock_off);
		for (unsigned q = 0; q < MST_SHM_MAX_QPS; q++)
			p->efd[q] = -1;
		app = (struct mst_app){ .id = g.id, .base = p->seg, .len = p->len,
					.eventfds = p->efd, .n_eventfds = g.n_qps, .doorbell = -1 };
		p->a = eng_app_attach(w->ts, w->ns, w->udp, NULL, &w->st, &app, g.rx_size, g.tx_size);
		assert_non_null(p->a);
		w->n_apps++;
	}
}

void aw_fini(struct app_world *w)
{
	/* Detach resets what the app held; what is still finishing is reset
	 * by the first reap (no drain deadline was set). */
	for (unsigned k = 0; k < w->n_apps; k++)
		if (w->app[k].a && eng_app_detach(w->app[k].a) == 1)
			assert_true(eng_app_reap(w->app[k].a, w->now));
	tcp_destroy(w->ts);
	for (unsigned k = 0; k < w->n_apps; k++)
		munmap(w->app[k].seg, w->app[k].len);
	net_destroy(w->ns);
	free(w->udp);
}

/* ---- commands and events -------------------------------------------------- */

uint32_t aw_submit(struct app_world *w, unsigned k, uint32_t q, struct mst_shm_msg m)
{
	struct mst_shm_ring *r = &w->app[k].qps[q].cmd;
	uint32_t prod = r->prod;

	m.seq = ++w->app[k].seq;
	r->slots[prod & (MST_SHM_RING_SLOTS - 1)] = m;
	__atomic_store_n(&r->prod, prod + 1, __ATOMIC_RELEASE);
	return m.seq;
}

void aw_poll(struct app_world *w)
{
	for (unsigned k = 0; k < w->n_apps; k++)
		if (w->app[k].a)
			eng_app_poll(w->app[k].a, w->now);
}

uint32_t aw_pending(struct app_world *w, unsigned k, uint32_t q)
{
	const struct mst_shm_ring *r = &w->app[k].qps[q].evt;

	return __atomic_load_n(&r->prod, __ATOMIC_ACQUIRE) - r->cons;
}

bool aw_find(struct app_world *w, unsigned k, uint32_t q, uint32_t seq, struct mst_shm_msg *out)
{
	const struct mst_shm_ring *r = &w->app[k].qps[q].evt;
	uint32_t prod = __atomic_load_n(&r->prod, __ATOMIC_ACQUIRE);

	for (uint32_t i = r->cons; i != prod; i++) {
		const struct mst_shm_msg *m = &r->slots[i & (MST_SHM_RING_SLOTS - 1)];

		if ((m->op == MST_EV_DONE || m->op == MST_EV_ERROR) && m->seq == seq) {
			*out = *m;
			return true;
		}
	}
	return false;
}

void aw_consume(struct app_world *w, unsigned k, uint32_t q)
{
	struct mst_shm_ring *r = &w->app[k].qps[q].evt;

	__atomic_store_n(&r->cons, __atomic_load_n(&r->prod, __ATOMIC_ACQUIRE), __ATOMIC_RELEASE);
}

int64_t aw_cmd(struct app_world *w, unsigned k, uint16_t op, int32_t sock, uint64_t a, uint64_t b,
	       struct mst_shm_msg *ev)
{
	struct mst_shm_msg m = { .op = op, .sock = sock, .a = a, .b = b }, done;
	uint32_t seq = aw_submit(w, k, 0, m);

	aw_poll(w);
	assert_true(aw_find(w, k, 0, seq, &done));
	aw_consume(w, k, 0);
	if (ev)
		*ev = done;
	return done.result;
}
