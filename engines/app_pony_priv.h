/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The engine's Pony tables for apps, shared by app_pony.c (commands,
 * records, pony's io callbacks) and app_pony_state.c (live upgrade).
 * Internal to engines/app_pony*.c.
 */
#ifndef MST_ENGINES_APP_PONY_PRIV_H
#define MST_ENGINES_APP_PONY_PRIV_H

#include <stdbool.h>
#include <stdint.h>

#include <mustang/counters.h>
#include <mustang/shm_abi.h>

struct eng_app;
struct net_stack;
struct pony;

#define UNIT 64u              /* arena allocation granule, bytes */
#define EP_MAX 16u            /* Pony endpoints per app */
#define REG_MAX 64u           /* registered regions per endpoint (key: 58 random bits << 6 | idx) */
#define RX_MAX 1024u          /* received messages an endpoint holds (begun or unreleased) */
#define PONY_HEADROOM 64u     /* UDP + IPv4 + Ethernet in front of the Pony header */

enum op_state { OP_FREE, OP_DEFERRED, OP_SUBMITTED };
enum rx_state { RX_FREE, RX_BEGUN, RX_DELIVERED };

struct pop {                  /* an op (SEND or READ) the app submitted */
	uint8_t state;        /* enum op_state */
	uint8_t kind;         /* MST_PONY_REC_SEND / _READ */
	uint8_t reg;          /* region it uses (held: UNREG says EBUSY) */
	uint16_t gen;
	uint16_t dst_svc;
	uint32_t peer;
	uint32_t stream;      /* SEND */
	uint64_t key;         /* READ: the peer's region */
	uint32_t len;
	uint64_t off;         /* local bytes, from pony_off */
	uint64_t roff;        /* READ: offset in the peer's region */
	uint64_t cookie;      /* the app's */
	bool claimed;         /* import: the core's message for it was found */
};

struct prx {                  /* a received message's buffer */
	uint8_t state;        /* enum rx_state */
	uint16_t gen;
	uint32_t off, units;  /* arena units */
	uint32_t len;
	bool claimed;         /* import: the core's message for it was found */
};

struct preg {                 /* a registered region */
	bool used;
	uint64_t key;         /* random << 6 | its index in reg[] */
	uint32_t off, units;  /* arena units */
	uint64_t len;         /* bytes the app asked for */
	uint32_t flags;       /* MST_PONY_REG_* */
	uint32_t refs;        /* ops using it */
};

struct pep {                  /* one endpoint (a Pony socket) */
	bool open;
	uint16_t svc;         /* 0 = not bound */
	uint32_t sock;        /* the app's socket index */
	uint32_t qp;          /* READY events go here */
	struct pony_app *pa;
	struct mst_shm_sock *sh;
	uint8_t *rec;         /* record ring in the segment */
	uint32_t slots;       /* records it holds (power of two) */
	uint32_t tail, head;  /* bytes, free-running (ours: the truth) */
	uint32_t seen_tail, last_ready;
	bool dirty, force;
	uint8_t *rec_kind;    /* [slots]: 1 = MSG record */
	uint32_t ops_out;     /* ops accepted, record not yet written */
	uint32_t ops_rec;     /* op records the app has not consumed */
	uint32_t rx_res;      /* messages begun, not yet delivered */
	uint32_t rx_rec;      /* MSG records the app has not consumed */
	struct pop *ops;      /* [slots / 2] */
	uint32_t *op_free, n_op_free;
	uint32_t *defq;       /* deferred ops, FIFO (ring of slots / 2) */
	uint32_t def_head, def_tail;
	struct prx rx[RX_MAX];
	uint32_t rx_free[RX_MAX], n_rx_free;
	struct preg reg[REG_MAX];
};

struct arena {
	uint32_t *off, *len;  /* free extents (units), sorted by off */
	uint32_t n, cap;
};

struct pony_app {
	struct eng_pony *ep;
	struct eng_app *a;
	uint8_t *arena_base;  /* segment + pony_off */
	uint64_t arena_bytes;
	struct arena ar;
	struct mst_stats *st;
	struct pep *eps[EP_MAX];
};

struct eng_pony {
	struct pony *py;
	struct net_stack *ns;
	struct mst_stats *st;
	uint16_t port;
	uint32_t max_msg;
	uint64_t now;
	struct pep **svc;     /* [65536]: endpoint bound to each service */
	unsigned n_busy;      /* endpoints with deferred ops */
};

static inline uint32_t units_of(uint64_t bytes)
{
	return (uint32_t)((bytes + UNIT - 1) / UNIT);
}

static inline uint32_t op_max(const struct pep *p)
{
	return p->slots / 2;
}

/* An endpoint's tables for a record ring of slots records, every op and
 * received buffer free (NULL: no memory); and their release. */
struct pep *pony_ep_alloc(uint32_t slots);
void pony_ep_free(struct pep *p);

#endif
