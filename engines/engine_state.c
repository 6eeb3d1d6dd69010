/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * An engine's whole state as records (see engine_state.h).
 *
 * eng_state_export(): ENGINE -> ARP (transport/net/arp_state.c) -> per app
 * APP, APP_SOCK, PONY_EP (app_state.c, app_pony_state.c) -> TCP_*
 * (transport/tcp/tcp_state.c, with the app layer's owner hook) -> PONY_*
 * (transport/pony/pony_state.c, app memory named by app_pony_state.c) ->
 * COUNTERS -> END.
 * eng_state_import(): ENGINE first (identity), then each record to its
 * owner, then tcp_import_finish() (the adopt hook ties connections to app
 * sockets), each app's eng_app_import_finish() and eng_pony_import_finish()
 * (every Pony op and buffer an app waits on has its message).
 */
#include <errno.h>
#include <string.h>

#include "common/state.h"
#include "engines/app.h"
#include "engines/engine_state.h"
#include "transport/net/net.h"
#include "transport/tcp/tcp.h"

#define MAX_IMPORT_APPS 64

struct engine_rec {
	uint32_t id, n_engines;
	uint32_t ip;                       /* network order */
	uint8_t mac[6];
	uint8_t prefix_len, pad;
	uint32_t max_conns, rx_buf, tx_buf;
	uint16_t mtu, pony_port;
	uint32_t pad2;
};
_Static_assert(sizeof(struct engine_rec) == 40, "ENGINE record layout");

struct counter_rec {
	char name[48];                     /* counter or drop reason, NUL-padded */
	uint64_t value;
};
_Static_assert(sizeof(struct counter_rec) == 56, "COUNTERS entry layout");

static void tcp_owner_hook(void *ctx, const struct tcp_cb *c, struct tcp_owner *o)
{
	const struct eng_state *s = ctx;

	eng_app_tcp_owner(s->apps, s->n_apps, c, o);
}

static int tcp_adopt_hook(void *ctx, struct tcp_cb *c, const struct tcp_owner *o)
{
	const struct eng_state *s = ctx;

	return eng_app_tcp_adopt(s->apps, s->n_apps, c, o);
}

/* ---- export --------------------------------------------------------------- */

static void put_counter(struct counter_rec *r, const char *name, uint64_t v)
{
	strncpy(r->name, name, sizeof(r->name) - 1);
	r->value = v;
}

static void export_counters(const struct eng_state *s, struct mst_state_writer *w)
{
	const struct mst_stats *st = s->stats;
	unsigned n = 0, k = 0;
	struct counter_rec *r;

	for (unsigned i = 0; i < MST_CTR__COUNT; i++)
		n += st->ctr[i] != 0;
	for (unsigned i = 0; i < MST_DROP__COUNT; i++)
		n += st->drop[i] != 0;
	r = mst_sw_rec(w, MST_STATE_REC_COUNTERS, n * (uint32_t)sizeof(*r));
	if (!r)
		return;
	for (unsigned i = 0; i < MST_CTR__COUNT; i++)
		if (st->ctr[i])
			put_counter(&r[k++], mst_counter_names[i], st->ctr[i]);
	for (unsigned i = 0; i < MST_DROP__COUNT; i++)
		if (st->drop[i])
			put_counter(&r[k++], mst_drop_names[i], st->drop[i]);
}

static void export_engine_rec(const struct eng_state *s, struct mst_state_writer *w)
{
	struct engine_rec *r = mst_sw_rec(w, MST_STATE_REC_ENGINE, sizeof(*r));

	if (!r)
		return;
	*r = (struct engine_rec){
		.id = s->id.id, .n_engines = s->id.n_engines, .ip = s->id.ip,
		.prefix_len = s->id.prefix_len, .max_conns = s->id.max_conns,
		.rx_buf = s->id.rx_buf, .tx_buf = s->id.tx_buf, .mtu = s->id.mtu,
		.pony_port = s->id.pony_port,
	};
	memcpy(r->mac, s->id.mac, 6);
}

long eng_state_export(const struct eng_state *s, void *buf, size_t len, uint64_t now_ns)
{
	struct tcp_state_hooks h = { .owner = tcp_owner_hook, .ctx = (void *)s };
	struct mst_state_writer w;
	int rc = 0;

	mst_sw_init(&w, buf, len, now_ns);
	export_engine_rec(s, &w);
	net_export_arp(s->ns, &w);
	for (unsigned i = 0; i < s->n_apps && !rc; i++)
		rc = eng_app_export(s->apps[i], &w);
	if (!rc)
		rc = tcp_export(s->ts, &w, &h);
	if (!rc && s->pony)
		rc = eng_pony_export(s->pony, &w);
	if (rc)
		return rc;
	export_counters(s, &w);
	return mst_sw_finish(&w, NULL);
}

/* ---- import --------------------------------------------------------------- */

/* Counters by name: one this version no longer has is ignored. */
static int import_counters(const struct eng_state *s, const void *p, uint32_t len)
{
	struct counter_rec r;

	if (len % sizeof(r))
		return -EBADMSG;
	for (uint32_t off = 0; off < len; off += sizeof(r)) {
		memcpy(&r, (const uint8_t *)p + off, sizeof(r));
		if (memchr(r.name, 0, sizeof(r.name)) == NULL)
			return -EINVAL;
		for (unsigned i = 0; i < MST_CTR__COUNT; i++)
			if (!strcmp(r.name, mst_counter_names[i]))
				s->stats->ctr[i] = r.value;
		for (unsigned i = 0; i < MST_DROP__COUNT; i++)
			if (!strcmp(r.name, mst_drop_names[i]))
				s->stats->drop[i] = r.value;
	}
	return 0;
}

static int import_engine_rec(const struct eng_state *s, const void *p, uint32_t len)
{
	struct engine_rec r;
	int rc = mst_state_take(&r, sizeof(r), p, len);

	if (rc)
		return rc;
	/* The same engine of the same port: anything else is another host's
	 * state (or a configuration change an upgrade cannot make). */
	if (r.id != s->id.id || r.n_engines != s->id.n_engines || r.ip != s->id.ip ||
	    memcmp(r.mac, s->id.mac, 6) || r.max_conns != s->id.max_conns ||
	    r.rx_buf != s->id.rx_buf || r.tx_buf != s->id.tx_buf || r.pony_port != s->id.pony_port)
		return -EINVAL;
	return 0;
}

struct import_walk {
	struct eng_app *cur;               /* the app APP_SOCK records belong to */
	bool imported[MAX_IMPORT_APPS];    /* by index in s->apps */
};

static int import_app(const struct eng_state *s, struct import_walk *iw, const void *p,
		      uint32_t len)
{
	int32_t id;

	if (len < sizeof(id))
		return -EBADMSG;
	memcpy(&id, p, sizeof(id));
	iw->cur = NULL;
	for (unsigned i = 0; i < s->n_apps && i < MAX_IMPORT_APPS; i++)
		if (eng_app_id(s->apps[i]) == id) {
			if (iw->imported[i])
				return -EEXIST;
			iw->imported[i] = true;
			iw->cur = s->apps[i];
		}
	if (!iw->cur)
		return -ENOENT; /* an app in the state that is not attached */
	return eng_app_import_app(iw->cur, p, len);
}

static int import_rec(const struct eng_state *s, struct import_walk *iw, unsigned type,
		      const void *p, uint32_t len, const struct tcp_state_hooks *h, uint64_t now)
{
	switch (type) {
	case MST_STATE_REC_ARP:
		return net_import_arp(s->ns, p, len, now);
	case MST_STATE_REC_APP:
		return import_app(s, iw, p, len);
	case MST_STATE_REC_APP_SOCK:
		return iw->cur ? eng_app_import_sock(iw->cur, p, len) : -EINVAL;
	case MST_STATE_REC_PONY_EP:
		return iw->cur ? eng_app_import_pony_ep(iw->cur, p, len) : -EINVAL;
	case MST_STATE_REC_PONY_STACK:
	case MST_STATE_REC_PONY_FLOW:
	case MST_STATE_REC_PONY_STREAM:
	case MST_STATE_REC_PONY_MSG:
		return s->pony ? eng_pony_import_rec(s->pony, type, p, len) : -EINVAL;
	case MST_STATE_REC_COUNTERS:
		return import_counters(s, p, len);
	case MST_STATE_REC_TCP_STACK:
	case MST_STATE_REC_TCP_CB:
	case MST_STATE_REC_TCP_FIFO_DATA:
	case MST_STATE_REC_TCP_LISTENER:
	case MST_STATE_REC_TCP_TW_ORDER:
	case MST_STATE_REC_TCP_EPH:
	case MST_STATE_REC_TCP_FLOW:
		return tcp_import_rec(s->ts, type, p, len, h);
	default:
		return -EINVAL; /* ENGINE twice, or a type this version does not know */
	}
}

int eng_state_import(const struct eng_state *s, const void *buf, size_t len, uint64_t now_ns)
{
	struct tcp_state_hooks h = { .adopt = tcp_adopt_hook, .ctx = (void *)s };
	struct import_walk iw = { .cur = NULL };
	struct mst_state_reader r;
	const void *p;
	unsigned type;
	uint32_t plen;
	int rc;

	if (s->n_apps > MAX_IMPORT_APPS)
		return -E2BIG;
	rc = mst_sr_init(&r, buf, len);
	if (rc)
		return rc;
	rc = mst_sr_next(&r, &type, &p, &plen);
	if (rc == 1 && type == MST_STATE_REC_ENGINE)
		rc = import_engine_rec(s, p, plen);
	else
		return -EINVAL; /* ENGINE comes first */
	while (!rc && (rc = mst_sr_next(&r, &type, &p, &plen)) == 1)
		rc = import_rec(s, &iw, type, p, plen, &h, now_ns);
	if (rc)
		return rc;
	rc = tcp_import_finish(s->ts, &h);
	for (unsigned i = 0; i < s->n_apps && !rc; i++)
		if (iw.imported[i])
			rc = eng_app_import_finish(s->apps[i]);
	if (!rc && s->pony)
		rc = eng_pony_import_finish(s->pony);
	return rc;
}
