/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Pony live upgrade (transport/pony/pony_state.c) on the two-node harness:
 * state of each kind is built by real traffic, exported, imported into a
 * fresh instance, exported again (the same bytes), and the fresh instance
 * takes over; then the traffic must finish exactly as it would have:
 *   - mid-message: a 2 MiB message partly sent, partly reassembled, small
 *     messages on other streams, traffic both ways
 *   - mid-READ: a 4 MiB one-sided READ partly answered (the reader's
 *     outstanding READ, the server's response in flight)
 *   - retransmissions pending: packets declared lost or a timeout armed
 *   - the same states corrupted byte by byte: refused or accepted, never
 *     a crash; the committed fixture tests/fixtures/state-v1-pony.bin
 *     (a mid-message and mid-READ state) still imports and exports the
 *     same bytes.
 * The peer must see no reset: no RESET sent, no flow failed, no packet
 * refused for an unknown epoch after the upgrade.
 *
 * Regenerate the fixture (after a deliberate format change, with a
 * version bump and a migration step):
 *   build/tests/unit/pony/test_pony_state --write-fixture tests/fixtures/state-v1-pony.bin
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/state.h"
#include "pony_helper.h"
#include "transport/pony/pony_priv.h"
#include "transport/pony/pony_state.h"

#ifndef MST_FIXTURE_DIR
#define MST_FIXTURE_DIR "tests/fixtures"
#endif
#define STATE_MAX (8u << 20)

/* Every byte a test sends from or READs into lives here: the hooks name
 * it by offset, as the engine names app memory by arena offset. */
static uint8_t arena[24u << 20];
static size_t arena_used;
static bool lenient_rx; /* the fixture's receive buffers belong to another process */

static uint8_t *arena_get(size_t n)
{
	uint8_t *p = arena + arena_used;

	assert_true(arena_used + n <= sizeof(arena));
	arena_used += (n + 63) & ~(size_t)63;
	return p;
}

static uint64_t t_buf_ref(void *ctx, uint16_t svc, const void *p)
{
	(void)ctx;
	(void)svc;
	return (uint64_t)((const uint8_t *)p - arena);
}

static void *t_buf_ptr(void *ctx, uint16_t svc, uint64_t cookie, uint64_t ref, uint32_t len,
		       bool write)
{
	(void)ctx;
	(void)svc;
	(void)cookie;
	(void)write;
	return ref <= sizeof(arena) && len <= sizeof(arena) - ref ? arena + ref : NULL;
}

static int t_rx_adopt(void *ctx, uint16_t svc, uint64_t cookie, uint32_t len)
{
	struct node *n = ctx;

	(void)svc;
	if (lenient_rx)
		return 0;
	if (cookie >= n->n_rx || n->rx[cookie].delivered || n->rx[cookie].aborted ||
	    n->rx[cookie].mi.len != len)
		return -EINVAL;
	return 0;
}

static struct pony_state_hooks hooks_for(struct node *n)
{
	return (struct pony_state_hooks){ .buf_ref = t_buf_ref, .buf_ptr = t_buf_ptr,
					  .rx_adopt = t_rx_adopt, .ctx = n };
}

static _Alignas(8) uint8_t st_a[STATE_MAX];
static _Alignas(8) uint8_t st_b[STATE_MAX];

static long export_to(struct pony *py, uint8_t *buf, uint64_t now, struct pony_state_hooks *h)
{
	struct mst_state_writer wr;

	mst_sw_init(&wr, buf, STATE_MAX, now);
	assert_int_equal(pony_export(py, &wr, h), 0);
	return mst_sw_finish(&wr, NULL);
}

static int import_all(struct pony *py, const uint8_t *buf, size_t len, struct pony_state_hooks *h)
{
	struct mst_state_reader rd;
	const void *p;
	unsigned type;
	uint32_t plen;
	int rc = mst_sr_init(&rd, buf, len);

	while (!rc && (rc = mst_sr_next(&rd, &type, &p, &plen)) == 1)
		rc = pony_import_rec(py, type, p, plen, h);
	return rc ? rc : pony_import_finish(py);
}

/* Export n, import into a fresh instance, export that: the same bytes.
 * The fresh one then replaces n's (the old is freed, memory only). */
static long upgrade(struct world *w, struct node *n)
{
	struct pony_state_hooks h = hooks_for(n);
	struct pony *neu;
	long len = export_to(n->py, st_a, w->now, &h), len2;

	assert_true(len > 0);
	neu = node_create(n);
	assert_non_null(neu);
	assert_int_equal(import_all(neu, st_a, (size_t)len, &h), 0);
	len2 = export_to(neu, st_b, w->now, &h);
	assert_int_equal(len2, len);
	assert_memory_equal(st_a, st_b, (size_t)len);
	pony_destroy(n->py);
	n->py = neu;
	return len;
}

/* The peer never noticed: no reset either way, no flow failed, no packet
 * taken for another incarnation since `base` (copies of the counters). */
static void no_reset(const struct world *w, const struct mst_stats *base_a,
		     const struct mst_stats *base_b)
{
	const struct mst_stats *st[2] = { &w->a.st, &w->b.st }, *b0[2] = { base_a, base_b };

	for (int i = 0; i < 2; i++) {
		assert_int_equal(st[i]->ctr[MST_CTR_pony_resets_sent], b0[i]->ctr[MST_CTR_pony_resets_sent]);
		assert_int_equal(st[i]->ctr[MST_CTR_pony_flows_failed], 0);
		assert_int_equal(st[i]->ctr[MST_CTR_pony_flows_closed], b0[i]->ctr[MST_CTR_pony_flows_closed]);
		assert_int_equal(st[i]->drop[MST_DROP_pony_stale_epoch], b0[i]->drop[MST_DROP_pony_stale_epoch]);
		assert_int_equal(st[i]->drop[MST_DROP_pony_no_flow], b0[i]->drop[MST_DROP_pony_no_flow]);
		assert_int_equal(st[i]->drop[MST_DROP_pony_unvalidated], b0[i]->drop[MST_DROP_pony_unvalidated]);
	}
}

static const struct pony_flow *flow_of(const struct node *n)
{
	assert_int_equal(n->py->n_active, 1);
	return &n->py->flows[n->py->active[0]];
}

/* ---- mid-message ------------------------------------------------------------- */

#define BIG (2u << 20)
#define N_SMALL 24

struct msgs {
	uint8_t *big, *small[N_SMALL], *back;
};

static void send_mix(struct world *w, struct msgs *m)
{
	m->big = arena_get(BIG);
	fill_pattern(m->big, BIG, 77);
	assert_int_equal(node_send(&w->a, 10, 20, 1, m->big, BIG, 1000), 0);
	for (unsigned i = 0; i < N_SMALL; i++) {
		m->small[i] = arena_get(3000);
		fill_pattern(m->small[i], 3000, i + 1);
		assert_int_equal(node_send(&w->a, 10, 20, 2 + i % 3, m->small[i], 3000, i), 0);
	}
	m->back = arena_get(100000);
	fill_pattern(m->back, 100000, 5);
	assert_int_equal(node_send(&w->b, 20, 10, 9, m->back, 100000, 7), 0);
}

static bool big_half_way(struct world *w, void *arg)
{
	(void)arg;
	for (unsigned i = 0; i < w->b.n_rx; i++)
		if (w->b.rx[i].mi.len == BIG && w->b.rx[i].written > BIG / 3)
			return !w->b.rx[i].delivered;
	return false;
}

static bool all_done(struct world *w, void *arg)
{
	(void)arg;
	return w->a.n_tx == N_SMALL + 1 && w->b.n_tx == 1;
}

static unsigned delivered_matching(const struct node *n, const uint8_t *buf, uint32_t len)
{
	unsigned k = 0;

	for (unsigned i = 0; i < n->n_rx; i++)
		if (n->rx[i].delivered && n->rx[i].mi.len == len &&
		    fnv(n->rx[i].buf, len) == fnv(buf, len))
			k++;
	return k;
}

static void check_mix(struct world *w, const struct msgs *m)
{
	assert_true(world_run(w, 5000 * MS, all_done, NULL));
	for (unsigned i = 0; i < w->a.n_tx; i++)
		assert_int_equal(w->a.tx[i].status, 0);
	assert_int_equal(w->b.tx[0].status, 0);
	assert_int_equal(delivered_matching(&w->b, m->big, BIG), 1);
	for (unsigned i = 0; i < N_SMALL; i++)
		assert_true(delivered_matching(&w->b, m->small[i], 3000) >= 1);
	assert_int_equal(w->b.n_order, N_SMALL + 1); /* each once */
	assert_int_equal(delivered_matching(&w->a, m->back, 100000), 1);
	for (unsigned i = 0; i < w->b.n_rx; i++)
		assert_false(w->b.rx[i].aborted);
}

/* Build the mid-message state in w (both sides have work in flight). */
static void mid_message(struct world *w, struct msgs *m)
{
	arena_used = 0;
	w->loss = 5;
	send_mix(w, m);
	assert_true(world_run(w, 2000 * MS, big_half_way, NULL));
	assert_true(flow_of(&w->a)->snd_nxt != flow_of(&w->a)->snd_una); /* in flight */
	assert_true(flow_of(&w->b)->n_rx > 0);                           /* reassembling */
}

static void test_pony_state_mid_message(void **state)
{
	struct world *w = mkworld();
	struct mst_stats a0, b0;
	uint32_t epoch_a, epoch_b;
	struct msgs m;

	(void)state;
	mid_message(w, &m);
	epoch_a = flow_of(&w->a)->my_epoch;
	epoch_b = flow_of(&w->b)->my_epoch;
	a0 = w->a.st;
	b0 = w->b.st;
	print_message("mid-message state: A %ld bytes, B %ld bytes\n", upgrade(w, &w->a),
		      upgrade(w, &w->b));
	assert_int_equal(flow_of(&w->a)->my_epoch, epoch_a); /* the same incarnations */
	assert_int_equal(flow_of(&w->b)->my_epoch, epoch_b);
	check_mix(w, &m);
	no_reset(w, &a0, &b0);
	rmworld(w);
}

/* ---- mid-READ ------------------------------------------------------------------ */

#define READ_LEN (4u << 20)

static bool read_half_way(struct world *w, void *arg)
{
	(void)arg;
	return w->a.n_rd == 0 && flow_of(&w->a)->rx_bytes > READ_LEN / 4;
}

static bool read_done(struct world *w, void *arg)
{
	(void)arg;
	return w->a.n_rd == 1;
}

static void test_pony_state_mid_read(void **state)
{
	struct world *w = mkworld();
	uint8_t *region = malloc(READ_LEN), *dst;
	struct mst_stats a0, b0;
	const struct pony_flow *fb;

	(void)state;
	arena_used = 0;
	dst = arena_get(READ_LEN);
	fill_pattern(region, READ_LEN, 3);
	w->b.regions[0] = (struct region){ .svc = 30, .key = 0xabcdef, .buf = region, .len = READ_LEN };
	w->b.n_regions = 1;
	w->loss = 5;
	assert_int_equal(pony_read(w->a.py, B_IP, 1, 30, 0xabcdef, 0, READ_LEN, dst, 42, w->now), 0);
	assert_true(world_run(w, 2000 * MS, read_half_way, NULL));
	fb = flow_of(&w->b);
	assert_int_equal(flow_of(&w->a)->n_reads, 1); /* outstanding at the reader */
	assert_true(fb->n_peer == 1 && fb->snd_nxt != fb->snd_una); /* response going out */
	a0 = w->a.st;
	b0 = w->b.st;
	upgrade(w, &w->a);
	upgrade(w, &w->b);
	assert_true(world_run(w, 5000 * MS, read_done, NULL));
	assert_int_equal(w->a.rd[0].status, 0);
	assert_int_equal(w->a.rd[0].cookie, 42);
	assert_memory_equal(dst, region, READ_LEN);
	no_reset(w, &a0, &b0);
	free(region);
	rmworld(w);
}

/* ---- retransmissions pending ---------------------------------------------------- */

static bool losing(struct world *w, void *arg)
{
	const struct pony_flow *f = flow_of(&w->a);

	(void)arg;
	return f->lost > 0 || (f->rto_probe_at && f->snd_una != f->snd_nxt);
}

static void test_pony_state_retransmits(void **state)
{
	struct world *w = mkworld();
	struct mst_stats a0, b0;
	struct msgs m;

	(void)state;
	arena_used = 0;
	send_mix(w, &m);
	w->burst_every = 40;
	w->burst_len = 12; /* a burst of losses: SACK marks them, or the RTO fires */
	assert_true(world_run(w, 2000 * MS, losing, NULL));
	a0 = w->a.st;
	b0 = w->b.st;
	upgrade(w, &w->a);
	assert_true(flow_of(&w->a)->lost > 0 || flow_of(&w->a)->rto_at); /* still pending */
	upgrade(w, &w->b);
	w->burst_every = 0;
	check_mix(w, &m);
	assert_true(w->a.st.ctr[MST_CTR_pony_retransmits] > a0.ctr[MST_CTR_pony_retransmits]);
	no_reset(w, &a0, &b0);
	rmworld(w);
}

/* ---- hostile states --------------------------------------------------------------- */

/* An accepted state must work: polled for a while, exported again. */
static void exercise(struct node *n, struct pony *py, uint64_t now)
{
	struct pony_state_hooks h = hooks_for(n);
	struct mst_state_writer wr;

	for (int k = 1; k <= 6; k++)
		pony_poll(py, now + (uint64_t)k * k * 100 * MS);
	mst_sw_init(&wr, st_b, STATE_MAX, now);
	(void)pony_export(py, &wr, &h);
}

/* Every 7th byte of a mid-message state flipped, one at a time (all of
 * them with MST_STATE_STRIDE=1): refused or accepted, never a crash. The
 * libFuzzer target (tests/fuzz/fuzz_state.c) goes further under ASan. */
static void test_pony_state_corrupted(void **state)
{
	struct world *w = mkworld();
	struct pony_state_hooks h = hooks_for(&w->b);
	const char *e = getenv("MST_STATE_STRIDE");
	size_t stride = e && atoi(e) > 0 ? (size_t)atoi(e) : 7;
	unsigned refused = 0, accepted = 0;
	static _Alignas(8) uint8_t bad[STATE_MAX];
	struct msgs m;
	long len;

	(void)state;
	mid_message(w, &m);
	len = export_to(w->b.py, st_a, w->now, &h);
	for (size_t i = sizeof(struct mst_state_hdr); i < (size_t)len; i += stride) {
		struct pony *py = node_create(&w->b);
		int rc;

		memcpy(bad, st_a, (size_t)len);
		bad[i] ^= (uint8_t)(0x5a + i);
		rc = import_all(py, bad, (size_t)len, &h);
		if (rc) {
			refused++;
		} else {
			accepted++;
			exercise(&w->b, py, w->now);
		}
		pony_destroy(py);
	}
	print_message("corrupted Pony states: %u refused, %u accepted\n", refused, accepted);
	assert_true(refused > 0 && accepted > 0);
	rmworld(w);
}

/* Refusals with a clear errno: other pool sizes, a duplicate, a second
 * import, a flow cut short. */
static void test_pony_state_refusals(void **state)
{
	struct world *w = mkworld();
	struct pony_state_hooks h = hooks_for(&w->b);
	struct pony_conf c = conf_small();
	struct msgs m;
	struct pony *py;
	long len;

	(void)state;
	mid_message(w, &m);
	len = export_to(w->b.py, st_a, w->now, &h);
	/* another pool size: indices would mean other entries */
	c.max_msgs = 1024;
	py = pony_create(&c, &w->b.py->io, &w->b.st);
	assert_non_null(py);
	assert_int_equal(import_all(py, st_a, (size_t)len, &h), -EINVAL);
	pony_destroy(py);
	/* into an instance that is not fresh */
	assert_int_equal(import_all(w->a.py, st_a, (size_t)len, &h), -EBUSY);
	/* the state twice into one instance: the second PONY_STACK */
	py = node_create(&w->b);
	assert_int_equal(import_all(py, st_a, (size_t)len, &h), 0);
	assert_int_equal(import_all(py, st_a, (size_t)len, &h), -EBUSY);
	pony_destroy(py);
	/* a SEND whose bytes are outside the owner's memory */
	{
		struct mst_state_reader rd;
		const void *p;
		unsigned type;
		uint32_t plen;
		bool found = false;

		struct pony_state_hooks ha = hooks_for(&w->a);

		len = export_to(w->a.py, st_b, w->now, &ha); /* A's: its 2 MiB send */
		assert_int_equal(mst_sr_init(&rd, st_b, (size_t)len), 0);
		while (!found && mst_sr_next(&rd, &type, &p, &plen) == 1) {
			struct pony_state_msg r;

			if (type != MST_STATE_REC_PONY_MSG)
				continue;
			memcpy(&r, p, sizeof(r));
			if (r.kind != MSG_SEND || r.buf == PONY_STATE_NO_BUF)
				continue;
			r.buf = sizeof(arena) - 1;
			memcpy((void *)p, &r, sizeof(r));
			found = true;
		}
		assert_true(found);
		py = node_create(&w->a);
		assert_int_equal(import_all(py, st_b, (size_t)len, &ha), -EINVAL);
		pony_destroy(py);
	}
	rmworld(w);
}

/* ---- the committed fixture -------------------------------------------------------- */

static uint8_t *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *b;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	b = aligned_alloc(8, ((size_t)n + 7) & ~(size_t)7);
	if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
		free(b);
		b = NULL;
	}
	fclose(f);
	*len = (size_t)n;
	return b;
}

/* A mid-message state with a READ outstanding, from node B (which holds
 * a partial message, its own send and a READ response it serves). */
static int write_fixture(const char *path)
{
	struct world *w = mkworld();
	static uint8_t region[1 << 20];
	struct pony_state_hooks h = hooks_for(&w->b);
	struct msgs m;
	FILE *f;
	long len;

	w->b.regions[0] = (struct region){ .svc = 20, .key = 99, .buf = region, .len = sizeof(region) };
	w->b.n_regions = 1;
	(void)pony_read(w->a.py, B_IP, 10, 20, 99, 0, sizeof(region), arena_get(sizeof(region)), 5,
			w->now);
	mid_message(w, &m);
	len = export_to(w->b.py, st_a, w->now, &h);
	f = fopen(path, "wb");
	if (!f || fwrite(st_a, 1, (size_t)len, f) != (size_t)len) {
		perror(path);
		return 1;
	}
	fclose(f);
	printf("wrote %s: %ld bytes\n", path, len);
	rmworld(w);
	return 0;
}

static void test_pony_state_fixture_v1(void **state)
{
	struct world *w = mkworld();
	struct pony_state_hooks h = hooks_for(&w->b);
	size_t len;
	uint8_t *fx = read_file(MST_FIXTURE_DIR "/state-v1-pony.bin", &len);
	struct mst_state_hdr hdr;
	struct pony *py;

	(void)state;
	assert_non_null(fx);
	memcpy(&hdr, fx, sizeof(hdr));
	lenient_rx = true;
	py = node_create(&w->b);
	assert_int_equal(import_all(py, fx, len, &h), 0);
	assert_true(py->n_active == 1 && py->n_msgs > 0);
	assert_int_equal(export_to(py, st_b, hdr.created_ns, &h), (long)len);
	assert_memory_equal(st_b, fx, len);
	lenient_rx = false;
	pony_destroy(py);
	free(fx);
	rmworld(w);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pony_state_mid_message),
		cmocka_unit_test(test_pony_state_mid_read),
		cmocka_unit_test(test_pony_state_retransmits),
		cmocka_unit_test(test_pony_state_corrupted),
		cmocka_unit_test(test_pony_state_refusals),
		cmocka_unit_test(test_pony_state_fixture_v1),
	};

	if (argc == 3 && strcmp(argv[1], "--write-fixture") == 0)
		return write_fixture(argv[2]);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
