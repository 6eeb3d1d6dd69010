/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The engine state format: writer and checked reader (see state.h).
 * Everything a reader takes from a buffer is bounds-checked before use:
 * a state segment is input like a packet (the fuzz target feeds it garbage).
 */
#include <errno.h>
#include <string.h>

#include "common/state.h"

static const char *const rec_names[] = {
#define MST_X_NAME(name, val, help) [val] = #name,
	MST_FOREACH_STATE_REC(MST_X_NAME)
#undef MST_X_NAME
};

const char *mst_state_rec_name(unsigned type)
{
	if (type < sizeof(rec_names) / sizeof(rec_names[0]) && rec_names[type])
		return rec_names[type];
	return "?";
}

static inline size_t pad8(size_t n)
{
	return (n + MST_STATE_ALIGN - 1) & ~(size_t)(MST_STATE_ALIGN - 1);
}

void mst_sw_init(struct mst_state_writer *w, void *buf, size_t cap, uint64_t now_ns)
{
	w->buf = buf;
	w->cap = cap;
	w->pos = sizeof(struct mst_state_hdr);
	w->n_records = 0;
	if (cap >= sizeof(struct mst_state_hdr)) {
		struct mst_state_hdr h = {
			.magic = MST_STATE_MAGIC, .version = MST_STATE_VERSION,
			.hdr_len = sizeof(h), .created_ns = now_ns,
		};

		memcpy(buf, &h, sizeof(h));
	}
}

void *mst_sw_rec(struct mst_state_writer *w, unsigned type, uint32_t len)
{
	size_t at = w->pos, end = at + sizeof(struct mst_state_rec) + pad8(len);
	struct mst_state_rec r = { .type = (uint16_t)type, .len = len };
	uint8_t *p;

	w->pos = end;
	w->n_records++;
	if (end > w->cap)
		return NULL;
	p = w->buf + at;
	memcpy(p, &r, sizeof(r));
	memset(p + sizeof(r), 0, pad8(len));
	return p + sizeof(r);
}

long mst_sw_finish(struct mst_state_writer *w, size_t *need)
{
	struct mst_state_hdr h;

	(void)mst_sw_rec(w, MST_STATE_REC_END, 0);
	if (need)
		*need = w->pos;
	if (w->pos > w->cap || w->pos > (size_t)INT32_MAX)
		return -ENOSPC;
	memcpy(&h, w->buf, sizeof(h));
	h.total_len = w->pos;
	h.n_records = w->n_records;
	memcpy(w->buf, &h, sizeof(h));
	return (long)w->pos;
}

int mst_sr_init(struct mst_state_reader *r, const void *buf, size_t len)
{
	struct mst_state_hdr h;

	memset(r, 0, sizeof(*r));
	if (!buf || len < sizeof(h) || ((uintptr_t)buf & (MST_STATE_ALIGN - 1)))
		return -EINVAL;
	memcpy(&h, buf, sizeof(h));
	if (h.magic != MST_STATE_MAGIC || h.hdr_len != sizeof(h))
		return -EINVAL;
	if (h.version > MST_STATE_VERSION)
		return -EPROTONOSUPPORT;
	if (h.version == 0 || h.total_len < sizeof(h) + sizeof(struct mst_state_rec) ||
	    h.total_len > len || h.n_records == 0 || (h.total_len & (MST_STATE_ALIGN - 1)))
		return -EINVAL;
	r->buf = buf;
	r->len = (size_t)h.total_len;
	r->pos = sizeof(h);
	r->version = h.version;
	r->left = h.n_records;
	return 0;
}

int mst_sr_next(struct mst_state_reader *r, unsigned *type, const void **payload, uint32_t *len)
{
	struct mst_state_rec rec;

	if (r->ended)
		return 0;
	if (r->left == 0 || r->len - r->pos < sizeof(rec))
		return -EINVAL; /* no END before the records ran out */
	memcpy(&rec, r->buf + r->pos, sizeof(rec));
	if (rec.reserved || rec.len > r->len - r->pos - sizeof(rec) ||
	    pad8(rec.len) > r->len - r->pos - sizeof(rec))
		return -EINVAL;
	r->left--;
	*type = rec.type;
	*len = rec.len;
	*payload = r->buf + r->pos + sizeof(rec);
	r->pos += sizeof(rec) + pad8(rec.len);
	if (rec.type == MST_STATE_REC_END) {
		/* END is last, and the header counted exactly what is there. */
		if (rec.len || r->left || r->pos != r->len)
			return -EINVAL;
		r->ended = true;
		return 0;
	}
	return 1;
}

int mst_state_take(void *dst, size_t size, const void *payload, uint32_t len)
{
	if (len != size)
		return -EBADMSG;
	memcpy(dst, payload, size);
	return 0;
}
