/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target: the TCP and Pony parts of a live-upgrade state
 * segment are input like a packet (DESIGN §5). Each input is taken as a
 * whole state buffer:
 *
 *   mst_sr_init() -> mst_sr_next()* -> tcp_import_rec()* / pony_import_rec()*
 *   -> tcp_import_finish(), pony_import_finish() on a fresh stack and a
 *   fresh Pony instance -> if accepted: timers run for a while, the state
 *   is exported again -> tcp_destroy(), pony_destroy()
 *
 * Refused is fine; a crash, a sanitizer report or a leak is a bug. The
 * owner hooks stand for an app engine: app 1 owns sockets 0..63 and gives
 * FIFO memory through fifo_ops for blocks whose FIFOs are not on the heap
 * (up to 1 MiB each, as an app's slots would be). Seeded with the
 * committed fixtures (tests/fuzz/corpus_state/ holds copies of
 * tests/fixtures/state-v1-tcp.bin and state-v1-pony.bin; Pony's app
 * memory is a 4 MiB buffer here, named by offset), mutated mostly inside record payloads
 * (LLVMFuzzerCustomMutator) so that the framing holds and the importer's
 * checks see the input; built and run by run.sh with
 * MST_FUZZ_TARGET=fuzz_state.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "common/state.h"
#include "transport/net/net.h"
#include "transport/pony/pony.h"
#include "transport/pony/pony_state.h"
#include "transport/tcp/tcp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed);
ssize_t mst_fuzz_getrandom(void *buf, size_t len, unsigned int flags);
void *mst_fuzz_calloc(size_t n, size_t size);
void *mst_fuzz_calloc_pool(size_t n, size_t size);
void mst_fuzz_free(void *p);

#define MAX_CONNS 64       /* as the tests' nodes, so the fixture imports */
#define SLOT_MAX (1u << 20)

/* run.sh renames the stack's calloc()/free() (a block cache in
 * fuzz_frames.c); here they are the real ones. */
void *mst_fuzz_calloc(size_t n, size_t size)
{
	return calloc(n, size);
}

void *mst_fuzz_calloc_pool(size_t n, size_t size)
{
	return calloc(n, size);
}

void mst_fuzz_free(void *p)
{
	free(p);
}

ssize_t mst_fuzz_getrandom(void *buf, size_t len, unsigned int flags)
{
	uint8_t *b = buf;

	(void)flags;
	for (size_t i = 0; i < len; i++)
		b[i] = (uint8_t)(0x5a ^ (i * 31));
	return (ssize_t)len;
}

/* ---- a net stack that sends nowhere ------------------------------------ */

struct fz_buf {
	struct mst_pkt pkt;
	uint8_t mem[10240];
};

static struct mst_pkt *fz_alloc(void *ctx)
{
	struct fz_buf *b = malloc(sizeof(*b));

	(void)ctx;
	if (!b)
		return NULL;
	memset(&b->pkt, 0, sizeof(b->pkt));
	b->pkt.data = b->mem + 128;
	b->pkt.headroom = 128;
	b->pkt.tailroom = sizeof(b->mem) - 128;
	b->pkt.owner = b;
	return &b->pkt;
}

static void fz_free(void *ctx, struct mst_pkt *p)
{
	(void)ctx;
	free(p->owner);
}

/* ---- the owner: app 1 --------------------------------------------------- */

static void *slot_alloc(void *ctx, struct tcp_cb *c, uint8_t **rx, uint8_t **tx, uint32_t rx_size,
			uint32_t tx_size)
{
	uint8_t *m = malloc((size_t)rx_size + tx_size);

	(void)ctx;
	(void)c;
	if (!m)
		return NULL;
	*rx = m;
	*tx = m + rx_size;
	return m;
}

static void slot_free(void *ctx, struct tcp_cb *c, void *cookie)
{
	(void)ctx;
	(void)c;
	free(cookie);
}

static const struct tcp_fifo_ops slot_ops = { .alloc = slot_alloc, .free = slot_free };

static void fz_event(void *ctx, struct tcp_cb *c, uint32_t ev)
{
	(void)ctx;
	(void)c;
	(void)ev;
}

static void fz_owner(void *ctx, const struct tcp_cb *c, struct tcp_owner *o)
{
	(void)ctx;
	(void)c;
	o->kind = TCP_OWNER_EXT;
	o->app_id = 1;
	o->sock = UINT32_MAX;
}

static int fz_adopt(void *ctx, struct tcp_cb *c, const struct tcp_owner *o)
{
	uint32_t rx, tx;
	uint8_t *m = NULL;

	(void)ctx;
	if (o->app_id != 1)
		return -ENOENT;
	if (o->sock != UINT32_MAX && o->sock >= MAX_CONNS)
		return -EINVAL;
	tcp_fifo_sizes(c, &rx, &tx);
	/* FIFOs the stack does not hold (heap ones are filled already) */
	if (!tcp_is_listener(c) && rx && !tcp_fifo_cookie(c) && o->cookie) {
		if (rx > SLOT_MAX || tx > SLOT_MAX)
			return -EINVAL;
		m = calloc(1, (size_t)rx + tx);
		if (!m)
			return -ENOMEM;
		tcp_adopt(c, m, m + rx, &slot_ops, m, fz_event, NULL, NULL);
		return 0;
	}
	tcp_adopt(c, NULL, NULL, o->cookie ? &slot_ops : NULL, NULL, fz_event, NULL, NULL);
	return 0;
}

static const struct tcp_state_hooks hooks = { .owner = fz_owner, .adopt = fz_adopt };

/* ---- Pony: app memory is one buffer, named by offset --------------------- */

static uint8_t pony_mem[4u << 20];

static uint64_t pz_buf_ref(void *ctx, uint16_t svc, const void *p)
{
	(void)ctx;
	(void)svc;
	return (uint64_t)((const uint8_t *)p - pony_mem);
}

static void *pz_buf_ptr(void *ctx, uint16_t svc, uint64_t cookie, uint64_t ref, uint32_t len,
			bool write)
{
	(void)ctx;
	(void)svc;
	(void)cookie;
	(void)write;
	return ref <= sizeof(pony_mem) && len <= sizeof(pony_mem) - ref ? pony_mem + ref : NULL;
}

static int pz_rx_adopt(void *ctx, uint16_t svc, uint64_t cookie, uint32_t len)
{
	(void)ctx;
	(void)svc;
	(void)cookie;
	(void)len;
	return 0;
}

static const struct pony_state_hooks pony_hooks = {
	.buf_ref = pz_buf_ref, .buf_ptr = pz_buf_ptr, .rx_adopt = pz_rx_adopt,
};

static struct mst_pkt *pz_alloc(void *ctx)
{
	return fz_alloc(ctx);
}

static int pz_output(void *ctx, struct mst_pkt *p, uint32_t peer, uint64_t now)
{
	(void)peer;
	(void)now;
	fz_free(ctx, p);
	return 0;
}

static void pz_rx_write(void *ctx, uint64_t cookie, uint32_t off, const void *src, uint32_t n)
{
	(void)ctx;
	(void)cookie;
	(void)off;
	(void)src;
	(void)n;
}

static int pz_rx_begin(void *ctx, const struct pony_msg_info *mi, uint64_t *cookie)
{
	(void)ctx;
	(void)mi;
	*cookie = 0;
	return -ENOENT;
}

static void pz_rx_deliver(void *ctx, const struct pony_msg_info *mi, uint64_t cookie)
{
	(void)ctx;
	(void)mi;
	(void)cookie;
}

static struct pony *pony_new(struct mst_stats *st)
{
	struct pony_conf c;
	struct pony_io io = { .alloc = pz_alloc, .free = fz_free, .output = pz_output,
			      .rx_begin = pz_rx_begin, .rx_write = pz_rx_write,
			      .rx_deliver = pz_rx_deliver };

	/* the sizes of the Pony unit tests' nodes, so the fixture imports */
	pony_conf_defaults(&c);
	c.max_flows = 16;
	c.max_msgs = 512;
	return pony_create(&c, &io, st);
}

static bool is_pony(unsigned type)
{
	return type == MST_STATE_REC_PONY_STACK || type == MST_STATE_REC_PONY_FLOW ||
	       type == MST_STATE_REC_PONY_STREAM || type == MST_STATE_REC_PONY_MSG;
}

/* ---- structure-aware mutation ------------------------------------------- */

/*
 * Most byte flips break the framing (lengths, record count) and stop at
 * the reader. Three times in four, mutate inside one record's payload
 * instead, keeping its length, so the importer's own checks get the input.
 */
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
	struct mst_state_hdr h;
	size_t pos = sizeof(h), pick, n = 0;
	uint8_t tmp[65536];

	if (seed % 4 == 0 || size < sizeof(h))
		return LLVMFuzzerMutate(data, size, max_size);
	memcpy(&h, data, sizeof(h));
	if (h.total_len != size || h.n_records == 0)
		return LLVMFuzzerMutate(data, size, max_size);
	pick = (seed / 4) % h.n_records;
	while (pos + sizeof(struct mst_state_rec) <= size) {
		struct mst_state_rec r;

		memcpy(&r, data + pos, sizeof(r));
		pos += sizeof(r);
		if (r.len > size - pos)
			break;
		if (n++ == pick && r.len && r.len <= sizeof(tmp)) {
			size_t got;

			memcpy(tmp, data + pos, r.len);
			got = LLVMFuzzerMutate(tmp, r.len, r.len);
			memset(tmp + got, 0, r.len - got);
			memcpy(data + pos, tmp, r.len);
			return size;
		}
		pos += (r.len + 7u) & ~7u;
	}
	return LLVMFuzzerMutate(data, size, max_size);
}

/* ---- driver ------------------------------------------------------------- */

static int import(struct tcp_stack *ts, struct pony *py, const uint8_t *buf, size_t len)
{
	struct mst_state_reader rd;
	const void *pl;
	unsigned type;
	uint32_t plen;
	bool tcp = false;
	int rc = mst_sr_init(&rd, buf, len);

	while (!rc && (rc = mst_sr_next(&rd, &type, &pl, &plen)) == 1) {
		if (is_pony(type)) {
			rc = pony_import_rec(py, type, pl, plen, &pony_hooks);
		} else {
			rc = tcp_import_rec(ts, type, pl, plen, &hooks);
			tcp = true;
		}
	}
	if (!rc && tcp)
		rc = tcp_import_finish(ts, &hooks);
	return rc ? rc : pony_import_finish(py);
}

/* An accepted state must work: timers fire, and it exports again. */
static void exercise(struct tcp_stack *ts, struct pony *py, uint64_t now)
{
	struct mst_state_writer w;
	static _Alignas(8) uint8_t out[1 << 20];

	for (int k = 1; k <= 8; k++) {
		tcp_timer(ts, now + (uint64_t)k * k * 1000000000ull);
		pony_poll(py, now + (uint64_t)k * k * 100000000ull);
	}
	mst_sw_init(&w, out, sizeof(out), now);
	if (tcp_export(ts, &w, &hooks) == 0 && pony_export(py, &w, &pony_hooks) == 0)
		(void)mst_sw_finish(&w, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t mac[6] = { 2, 0, 0, 0, 0, 1 }, peer[6] = { 2, 0, 0, 0, 0, 2 };
	const uint64_t now = 6000000000ull;
	struct net_io io = { .alloc = fz_alloc, .xmit = fz_free, .free = fz_free };
	struct mst_stats st;
	struct net_conf nc;
	struct tcp_conf tc;
	struct net_stack *ns;
	struct tcp_stack *ts;
	struct pony *py;
	uint8_t *buf;
	int rc;

	buf = aligned_alloc(8, (size + 8) & ~(size_t)7); /* the reader wants 8-alignment */
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	memset(&st, 0, sizeof(st));
	memset(&nc, 0, sizeof(nc));
	memcpy(nc.mac, mac, 6);
	nc.ip = 0x0100000a; /* 10.0.0.1 */
	nc.prefix_len = 24;
	nc.mtu = 1500;
	ns = net_create(&nc, &io, &st);
	tcp_conf_defaults(&tc);
	tc.max_conns = MAX_CONNS;
	tc.rx_buf = tc.tx_buf = 16384;
	ts = ns ? tcp_create(ns, &tc, &st, now) : NULL;
	if (!ts) {
		fprintf(stderr, "fuzz_state: cannot create a stack\n");
		abort();
	}
	(void)net_arp_learn(ns, 0x0200000a, peer, now);
	py = pony_new(&st);
	if (!py) {
		fprintf(stderr, "fuzz_state: cannot create a Pony instance\n");
		abort();
	}
	rc = import(ts, py, buf, size);
	if (getenv("MST_FUZZ_DEBUG"))
		fprintf(stderr, "fuzz_state: import %d\n", rc);
	if (rc == 0)
		exercise(ts, py, now);
	pony_destroy(py);
	tcp_destroy(ts);
	net_destroy(ns);
	free(buf);
	return 0;
}
