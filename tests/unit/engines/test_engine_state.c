/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The engine's live-upgrade state as a whole (engines/engine_state.c), on
 * in-process stacks with app segments made the way mustangd makes them.
 *
 * The fixture tests/fixtures/state-v1-engine.bin is a state a real
 * mustangd exported on `mustangctl engine restart 0` (MUSTANG_STATE_DUMP):
 * built-in echo/discard/chargen with echo connections carrying data, an
 * app (echo_server) with a listener and three connections, a second app
 * (udp_echo) with a bound UDP socket, one ARP entry and the counters.
 * Later versions must still import it.
 *
 *   setup: read the fixture -> stacks as its ENGINE record says (the pool
 *   made small: only the blocks in use are carried) -> one segment per APP
 *   record, attached -> eng_state_import()
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <cmocka.h>

#include <mustang/shm_abi.h>

#include "common/state.h"
#include "app_world.h"
#include "engines/app.h"
#include "engines/engine_state.h"
#include "transport/net/net.h"
#include "transport/tcp/tcp.h"

#ifndef MST_FIXTURE_DIR
#error "MST_FIXTURE_DIR must point at tests/fixtures"
#endif

#define POOL 256           /* instead of the daemon's 131072: indices are small */
#define ENGINE_MAX_CONNS_OFF (32 + 8 + 20) /* ENGINE payload: id, n, ip, mac, prefix, pad */
#define MAX_APPS 4

struct world {
	struct mst_stats st;
	struct net_stack *ns;
	struct tcp_stack *ts;
	struct eng_udp_bind *udp;
	struct eng_app *apps[MAX_APPS];
	int efd[MAX_APPS][MST_SHM_MAX_QPS];
	unsigned n_apps;
	struct eng_state s;
};

static uint8_t *fixture;
static size_t fixture_len;
/* Made once: the engine only reads a segment during an import. */
static void *segs[MAX_APPS];
static size_t seg_lens[MAX_APPS];
static struct eng_udp_bind *udp_table;

/* ---- the fixture and its records ------------------------------------------ */

static const void *find_rec(const uint8_t *buf, size_t len, unsigned type, unsigned k,
			    uint32_t *plen);

static void load_fixture(void)
{
	FILE *f = fopen(MST_FIXTURE_DIR "/state-v1-engine.bin", "rb");
	long n;

	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	rewind(f);
	fixture = aligned_alloc(8, ((size_t)n + 7) & ~(size_t)7);
	assert_non_null(fixture);
	assert_int_equal(fread(fixture, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	fixture_len = (size_t)n;
	/* A small pool: the state carries only the blocks in use. The
	 * TCP_STACK record repeats the size for information. */
	uint32_t pool = POOL, plen;
	const uint8_t *ts_rec;

	memcpy(fixture + ENGINE_MAX_CONNS_OFF, &pool, 4);
	ts_rec = find_rec(fixture, fixture_len, MST_STATE_REC_TCP_STACK, 0, &plen);
	assert_non_null(ts_rec);
	memcpy(fixture + (ts_rec - fixture) + 24, &pool, 4);
	udp_table = calloc(ENG_PORT_TABLE, sizeof(*udp_table));
	assert_non_null(udp_table);
}

/* The fixture's record of type `type` number k (payload, or NULL). */
static const void *find_rec(const uint8_t *buf, size_t len, unsigned type, unsigned k,
			    uint32_t *plen)
{
	struct mst_state_reader r;
	const void *p;
	unsigned t;

	if (mst_sr_init(&r, buf, len))
		return NULL;
	while (mst_sr_next(&r, &t, &p, plen) == 1)
		if (t == type && k-- == 0)
			return p;
	return NULL;
}

/* APP record fields (app_state.c) lay out a matching segment: struct
 * aw_geom has their order. */

/* ---- a world the state fits ---------------------------------------------- */

static void world_init(struct world *w, const uint8_t *state, size_t len)
{
	struct net_io io = { .alloc = aw_io_alloc, .xmit = aw_io_free, .free = aw_io_free };
	struct eng_state_id id;
	struct net_conf nc;
	struct tcp_conf tc;
	const void *p;
	uint32_t plen;

	memset(w, 0, sizeof(*w));
	/* Identity and sizes from the pristine fixture (not from `state`,
	 * which a test may have corrupted). */
	p = find_rec(fixture, fixture_len, MST_STATE_REC_ENGINE, 0, &plen);
	assert_non_null(p);
	memset(&id, 0, sizeof(id));
	memcpy(&id.id, p, 4);
	memcpy(&id.n_engines, (const uint8_t *)p + 4, 4);
	memcpy(&id.ip, (const uint8_t *)p + 8, 4);
	memcpy(id.mac, (const uint8_t *)p + 12, 6);
	id.prefix_len = ((const uint8_t *)p)[18];
	memcpy(&id.max_conns, (const uint8_t *)p + 20, 4);
	memcpy(&id.rx_buf, (const uint8_t *)p + 24, 4);
	memcpy(&id.tx_buf, (const uint8_t *)p + 28, 4);
	memcpy(&id.mtu, (const uint8_t *)p + 32, 2);
	memcpy(&id.pony_port, (const uint8_t *)p + 34, 2);
	memset(&nc, 0, sizeof(nc));
	memcpy(nc.mac, id.mac, 6);
	nc.ip = id.ip;
	nc.prefix_len = id.prefix_len;
	nc.mtu = id.mtu;
	w->ns = net_create(&nc, &io, &w->st);
	assert_non_null(w->ns);
	tcp_conf_defaults(&tc);
	tc.max_conns = id.max_conns;
	tc.rx_buf = id.rx_buf;
	tc.tx_buf = id.tx_buf;
	w->ts = tcp_create(w->ns, &tc, &w->st, 0);
	assert_non_null(w->ts);
	w->udp = udp_table;
	memset(w->udp, 0, ENG_PORT_TABLE * sizeof(*w->udp));
	for (unsigned k = 0; k < MAX_APPS; k++) {
		struct aw_geom g;
		struct mst_app app;

		p = find_rec(fixture, fixture_len, MST_STATE_REC_APP, k, &plen);
		if (!p)
			break;
		memcpy(&g, p, sizeof(g));
		if (!segs[k])
			segs[k] = aw_segment(&g, id.ip, &seg_lens[k]);
		for (unsigned q = 0; q < MST_SHM_MAX_QPS; q++)
			w->efd[k][q] = -1; /* nobody sleeps in a test */
		app = (struct mst_app){ .id = g.id, .base = segs[k], .len = seg_lens[k],
					.eventfds = w->efd[k], .n_eventfds = g.n_qps, .doorbell = -1 };
		w->apps[k] = eng_app_attach(w->ts, w->ns, w->udp, NULL, &w->st, &app, g.rx_size,
					    g.tx_size);
		assert_non_null(w->apps[k]);
		w->n_apps++;
	}
	w->s = (struct eng_state){ .ns = w->ns, .ts = w->ts, .apps = w->apps,
				   .n_apps = w->n_apps, .stats = &w->st, .id = id };
	(void)state;
	(void)len;
}

/* Memory only, whatever state the import left: TCP first (its blocks
 * give FIFO slots back to the apps), then the apps, then the rest. */
static void world_fini(struct world *w)
{
	tcp_destroy(w->ts);
	for (unsigned k = 0; k < w->n_apps; k++)
		eng_app_forget(w->apps[k]);
	net_destroy(w->ns);
}

static uint64_t created_ns(const uint8_t *state)
{
	struct mst_state_hdr h;

	memcpy(&h, state, sizeof(h));
	return h.created_ns;
}

/* ---- tests ------------------------------------------------------------------ */

/* The fixture imports; exported again at the same instant it is the same
 * bytes (every record, every field, in the same order). */
static void test_fixture_round_trip(void **unused)
{
	static uint8_t out[1 << 20];
	struct world w;
	long n;

	(void)unused;
	world_init(&w, fixture, fixture_len);
	assert_int_equal(eng_state_import(&w.s, fixture, fixture_len, created_ns(fixture)), 0);
	assert_int_equal(tcp_conn_count(w.ts), 6); /* and 4 listeners */
	assert_true(net_arp_count(w.ns) == 1);
	n = eng_state_export(&w.s, out, sizeof(out), created_ns(fixture));
	assert_int_equal(n, (long)fixture_len);
	assert_memory_equal(out, fixture, fixture_len);
	world_fini(&w);
}

/* The UDP socket's port is bound again: a second app cannot take it. */
static void test_fixture_udp_binding(void **unused)
{
	struct world w;
	unsigned bound = 0;

	(void)unused;
	world_init(&w, fixture, fixture_len);
	assert_int_equal(eng_state_import(&w.s, fixture, fixture_len, created_ns(fixture)), 0);
	for (unsigned p = 0; p < ENG_UDP_PORTS; p++)
		bound += w.udp[p].app != NULL;
	assert_int_equal(bound, 1);
	assert_non_null(w.udp[7008].app);
	world_fini(&w);
}

/* A state for other apps, another engine or a newer format is refused. */
static void test_refusals(void **unused)
{
	uint8_t *bad = aligned_alloc(8, fixture_len);
	struct world w;
	uint32_t v;

	(void)unused;
	assert_non_null(bad);
	/* newer format */
	memcpy(bad, fixture, fixture_len);
	v = MST_STATE_VERSION + 1;
	memcpy(bad + 4, &v, 4);
	world_init(&w, bad, fixture_len);
	assert_int_equal(eng_state_import(&w.s, bad, fixture_len, created_ns(fixture)),
			 -EPROTONOSUPPORT);
	world_fini(&w);
	/* another engine id */
	memcpy(bad, fixture, fixture_len);
	v = 3;
	memcpy(bad + 40, &v, 4);
	world_init(&w, bad, fixture_len);
	assert_int_equal(eng_state_import(&w.s, bad, fixture_len, created_ns(fixture)), -EINVAL);
	world_fini(&w);
	/* truncated: no END */
	world_init(&w, fixture, fixture_len);
	assert_true(eng_state_import(&w.s, fixture, fixture_len - 8, created_ns(fixture)) < 0);
	world_fini(&w);
	free(bad);
}

/* Every 5th byte of the state changed, one at a time (all of them with
 * MST_STATE_STRIDE=1): refused or accepted, never a crash. The libFuzzer
 * target (tests/fuzz/fuzz_state.c) goes further under ASan/UBSan. */
static void test_every_byte_corrupted(void **unused)
{
	uint8_t *bad = aligned_alloc(8, fixture_len);
	unsigned refused = 0, accepted = 0;
	const char *e = getenv("MST_STATE_STRIDE");
	size_t stride = e && atoi(e) > 0 ? (size_t)atoi(e) : 5;

	(void)unused;
	assert_non_null(bad);
	for (size_t i = 0; i < fixture_len; i += stride) {
		struct world w;
		int rc;

		memcpy(bad, fixture, fixture_len);
		bad[i] ^= (uint8_t)(0x5a + i);
		world_init(&w, bad, fixture_len);
		rc = eng_state_import(&w.s, bad, fixture_len, created_ns(fixture));
		if (rc)
			refused++;
		else
			accepted++;
		world_fini(&w);
	}
	print_message("corrupted states: %u refused, %u accepted\n", refused, accepted);
	/* A changed byte of data, a counter, a sequence number or a deadline
	 * is a different but valid state; structure and ranges are checked. */
	assert_true(refused > 0 && accepted > 0);
	free(bad);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fixture_round_trip),
		cmocka_unit_test(test_fixture_udp_binding),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_every_byte_corrupted),
	};

	load_fixture();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
