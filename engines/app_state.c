/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Live upgrade of the app layer: what the engine knows about each attached
 * app, as state records (common/state.h), and the TCP owner hooks that tie
 * connections back to their apps' sockets and FIFO slots.
 *
 * Export: eng_app_export() per app (APP, then APP_SOCK per socket in use,
 * then PONY_EP per Pony endpoint: app_pony_state.c); the engine then
 * exports TCP, whose owner hook is eng_app_tcp_owner().
 * Import, into apps freshly attached to the new engine (same segments):
 * eng_app_import_app() / eng_app_import_sock() / eng_app_import_pony_ep()
 * per record -> TCP records,
 * whose adopt hook is eng_app_tcp_adopt() -> eng_app_import_finish()
 * rebuilds the free lists and checks that every socket found its
 * connection.
 *
 * The segment is untouched by all of this: the app's rings, sockets and
 * FIFO bytes stay where they are, and the engine's counters for them
 * (cmd_cons, evt_prod, UDP heads and tails) come back from the records,
 * checked against the segment's geometry.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/state.h"
#include "engines/app_priv.h"

struct app_rec {
	int32_t id;
	uint32_t n_qps, n_socks, n_slots;
	uint32_t rx_size, tx_size;
	uint32_t udp_next;
	uint32_t pad;
	uint32_t cmd_cons[MST_SHM_MAX_QPS];
	uint32_t evt_prod[MST_SHM_MAX_QPS];
};
_Static_assert(sizeof(struct app_rec) == 32 + 8 * MST_SHM_MAX_QPS, "APP record layout");

struct app_sock_rec {
	uint32_t idx;
	uint8_t kind;           /* enum esock_kind */
	uint8_t pad;
	uint16_t port;
	uint32_t notify_qp, last_ready, rx_seen, tx_seen;
	uint32_t slot;
	uint32_t rx_head, rx_tail, tx_head, tx_tail;
	uint32_t peer_ip;
	uint16_t peer_port;
	uint16_t pad2;
};
_Static_assert(sizeof(struct app_sock_rec) == 52, "APP_SOCK record layout");

int eng_app_export(struct eng_app *a, struct mst_state_writer *w)
{
	struct app_rec *r;

	if (a->draining)
		return -EBUSY; /* its closed connections still finish on its segment */
	r = mst_sw_rec(w, MST_STATE_REC_APP, sizeof(*r));
	if (r) {
		r->id = a->id;
		r->n_qps = a->n_qps;
		r->n_socks = a->n_socks;
		r->n_slots = a->n_slots;
		r->rx_size = a->rx_size;
		r->tx_size = a->tx_size;
		r->udp_next = a->udp_next;
		memcpy(r->cmd_cons, a->cmd_cons, sizeof(a->cmd_cons));
		memcpy(r->evt_prod, a->evt_prod, sizeof(a->evt_prod));
	}
	for (uint32_t i = 0; i < a->n_socks; i++) {
		const struct esock *es = &a->es[i];
		struct app_sock_rec *s;

		if (es->kind == ES_FREE)
			continue;
		s = mst_sw_rec(w, MST_STATE_REC_APP_SOCK, sizeof(*s));
		if (!s)
			continue;
		*s = (struct app_sock_rec){
			.idx = i, .kind = es->kind, .port = es->port, .notify_qp = es->notify_qp,
			.last_ready = es->last_ready, .rx_seen = es->rx_seen, .tx_seen = es->tx_seen,
			.slot = es->slot, .rx_head = es->rx_head, .rx_tail = es->rx_tail,
			.tx_head = es->tx_head, .tx_tail = es->tx_tail, .peer_ip = es->peer_ip,
			.peer_port = es->peer_port,
		};
	}
	return pony_app_export(a->pony, w); /* PONY_EP: after the sockets they sit on */
}

int eng_app_import_app(struct eng_app *a, const void *p, uint32_t len)
{
	struct app_rec r;
	int rc = mst_state_take(&r, sizeof(r), p, len);

	if (rc)
		return rc;
	/* The same segment, attached again: its geometry must be what the
	 * old engine saw, or every index below means something else. */
	if (r.id != a->id || r.n_qps != a->n_qps || r.n_socks != a->n_socks ||
	    r.n_slots != a->n_slots || r.rx_size != a->rx_size || r.tx_size != a->tx_size)
		return -EINVAL;
	a->udp_next = r.udp_next;
	memcpy(a->cmd_cons, r.cmd_cons, sizeof(a->cmd_cons));
	memcpy(a->evt_prod, r.evt_prod, sizeof(a->evt_prod));
	a->n_free_socks = 0; /* rebuilt by eng_app_import_finish() */
	a->n_free_slots = 0;
	return 0;
}

/* A UDP socket or a slot user: the slot must be real and not taken twice. */
static int claim_slot(struct eng_app *a, uint32_t slot, struct tcp_cb *c, bool *udp_slots)
{
	if (slot >= a->n_slots || a->slot_conn[slot] || udp_slots[slot])
		return -EINVAL;
	if (c)
		a->slot_conn[slot] = c;
	else
		udp_slots[slot] = true;
	return 0;
}

int eng_app_import_sock(struct eng_app *a, const void *p, uint32_t len)
{
	struct app_sock_rec r;
	struct esock *es;
	int rc = mst_state_take(&r, sizeof(r), p, len);

	if (rc)
		return rc;
	if (r.idx >= a->n_socks || a->es[r.idx].kind != ES_FREE || r.notify_qp >= a->n_qps)
		return -EINVAL;
	es = &a->es[r.idx];
	switch (r.kind) {
	case ES_NEW:
	case ES_LISTEN:
	case ES_CONN:
		break;
	case ES_PONY:
		if (!a->pony)
			return -EINVAL; /* no Pony arena in this segment */
		break;
	case ES_UDP:
		/* Counters within the FIFO: used bytes never beyond its size. */
		if (r.rx_tail - r.rx_head > a->rx_size || r.tx_tail - r.tx_head > a->tx_size ||
		    r.port == 0 || a->udp[r.port].app)
			return -EINVAL;
		break;
	default:
		return -EINVAL;
	}
	*es = (struct esock){
		.kind = r.kind, .port = r.port, .notify_qp = r.notify_qp,
		.last_ready = r.last_ready, .rx_seen = r.rx_seen, .tx_seen = r.tx_seen,
		.slot = r.slot, .rx_head = r.rx_head, .rx_tail = r.rx_tail, .tx_head = r.tx_head,
		.tx_tail = r.tx_tail, .peer_ip = r.peer_ip, .peer_port = r.peer_port,
	};
	if (r.kind == ES_UDP) {
		a->udp[r.port].app = a;
		a->udp[r.port].sock = r.idx;
	} else if (r.port && !a->udp[ENG_UDP_PORTS + r.port].app) {
		a->udp[ENG_UDP_PORTS + r.port].app = a; /* its TCP port, as cmd_bind() took it */
		a->udp[ENG_UDP_PORTS + r.port].sock = r.idx;
	}
	return 0;
}

/* PONY_EP: the endpoint of one of this app's Pony sockets; its record
 * ring is that socket's RX FIFO (app.c, cmd_pony_socket()). */
int eng_app_import_pony_ep(struct eng_app *a, const void *p, uint32_t len)
{
	int64_t sock = pony_ep_rec_sock(p, len);
	const struct esock *es;
	uint8_t *ring;

	if (sock < 0)
		return (int)sock;
	if ((uint64_t)sock >= a->n_socks)
		return -ERANGE;
	es = &a->es[sock];
	if (es->kind != ES_PONY || es->slot >= a->n_slots)
		return -EINVAL;
	ring = a->base + a->fifo_off + (uint64_t)es->slot * a->slot_size;
	return pony_app_import_ep(a->pony, p, len, ring, a->rx_size, &a->socks[sock], a->n_qps);
}

static struct eng_app *find_app(struct eng_app *const *apps, unsigned n, int id)
{
	for (unsigned i = 0; i < n; i++)
		if (apps[i]->id == id)
			return apps[i];
	return NULL;
}

void eng_app_tcp_owner(struct eng_app *const *apps, unsigned n, const struct tcp_cb *c,
		       struct tcp_owner *o)
{
	const struct esock *es = tcp_user(c);
	uintptr_t cookie = (uintptr_t)tcp_fifo_cookie(c);

	memset(o, 0, sizeof(*o));
	for (unsigned i = 0; i < n; i++) {
		struct eng_app *a = apps[i];

		if (es && es >= a->es && es < a->es + a->n_socks) {
			o->kind = TCP_OWNER_EXT;
			o->app_id = a->id;
			o->sock = (uint32_t)(es - a->es);
			o->cookie = cookie;
			return;
		}
		if (cookie && cookie - 1 < a->n_slots && a->slot_conn[cookie - 1] == c) {
			o->kind = TCP_OWNER_EXT;
			o->app_id = a->id;
			o->sock = UINT32_MAX; /* closed by the app, or not yet accepted */
			o->cookie = cookie;
			return;
		}
	}
	/* Nothing of an app's left (TIME_WAIT gave its FIFOs back): the
	 * stack's default handler will do. */
}

int eng_app_tcp_adopt(struct eng_app *const *apps, unsigned n, struct tcp_cb *c,
		      const struct tcp_owner *o)
{
	struct eng_app *a = find_app(apps, n, o->app_id);
	struct esock *es = NULL;
	uint8_t *rx = NULL, *tx = NULL;
	uint32_t rxs, txs;

	if (!a || o->kind != TCP_OWNER_EXT)
		return -ENOENT;
	if (o->sock != UINT32_MAX) {
		if (o->sock >= a->n_socks)
			return -EINVAL;
		es = &a->es[o->sock];
		if (es->c || (tcp_is_listener(c) ? es->kind != ES_LISTEN : es->kind != ES_CONN))
			return -EINVAL;
		es->c = c;
	}
	if (!tcp_is_listener(c) && o->cookie) {
		uint32_t slot = (uint32_t)(o->cookie - 1);

		tcp_fifo_sizes(c, &rxs, &txs);
		if (o->cookie > a->n_slots || a->slot_conn[slot] || rxs != a->rx_size ||
		    txs != a->tx_size || (es && es->slot != slot))
			return -EINVAL;
		a->slot_conn[slot] = c;
		rx = a->base + a->fifo_off + (uint64_t)slot * a->slot_size;
		tx = rx + a->rx_size;
	} else if (!tcp_is_listener(c) && es) {
		return -EINVAL; /* an app's socket always has its FIFOs */
	}
	tcp_adopt(c, rx, tx, &a->fops, o->cookie ? (void *)(uintptr_t)o->cookie : NULL,
		  eng_app_sock_event, a, es);
	return 0;
}

int eng_app_import_finish(struct eng_app *a)
{
	bool *udp_slots = calloc(a->n_slots ? a->n_slots : 1, sizeof(bool));
	int rc = 0;

	if (!udp_slots)
		return -ENOMEM;
	for (uint32_t i = 0; i < a->n_socks && !rc; i++) {
		struct esock *es = &a->es[i];

		if (es->kind == ES_UDP || es->kind == ES_PONY)
			rc = claim_slot(a, es->slot, NULL, udp_slots);
		if (!rc && es->kind == ES_PONY && !pony_app_has_ep(a->pony, i))
			rc = -EINVAL; /* a Pony socket without its endpoint */
		if ((es->kind == ES_CONN || es->kind == ES_LISTEN) && !es->c)
			rc = -EINVAL; /* the state named a socket no connection claimed */
	}
	a->n_free_socks = a->n_free_slots = 0;
	for (uint32_t i = a->n_socks; i-- > 0;)
		if (a->es[i].kind == ES_FREE)
			a->free_socks[a->n_free_socks++] = i;
	for (uint32_t s = a->n_slots; s-- > 0;)
		if (!a->slot_conn[s] && !udp_slots[s])
			a->free_slots[a->n_free_slots++] = s;
	free(udp_slots);
	return rc ? rc : pony_app_import_finish(a->pony);
}

void eng_app_forget(struct eng_app *a)
{
	/* After an export (the state lives on elsewhere) or a refused import:
	 * let go of everything without touching the wire or the segment. */
	for (unsigned i = 0; i < a->n_socks; i++) {
		struct esock *es = &a->es[i];

		if (es->kind == ES_UDP && es->port && a->udp[es->port].app == a)
			a->udp[es->port].app = NULL;
		else if ((es->kind == ES_NEW || es->kind == ES_LISTEN || es->kind == ES_CONN) &&
			 es->port && a->udp[ENG_UDP_PORTS + es->port].app == a)
			a->udp[ENG_UDP_PORTS + es->port].app = NULL;
		es->c = NULL;
	}
	pony_app_forget(a->pony); /* not detach: the core is not told */
	a->pony = NULL;
	eng_app_free(a);
}
