/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Selective acknowledgment bookkeeping (RFC 2018, RFC 6675).
 *
 * Receiver: c->ooo[] lists the sequence ranges held in the RX FIFO beyond
 * rcv_nxt (sorted, disjoint, at most TCP_OOO_MAX: the bounded reassembly
 * queue — the bytes themselves are already in place in the FIFO).
 * tcp_in.c calls tcp_ooo_add() for each out-of-order segment and
 * tcp_ooo_take() after rcv_nxt advances; tcp_out.c asks tcp_sack_blocks().
 *
 * Sender: c->score[] is the scoreboard of SACKed ranges above snd_una.
 * tcp_in.c feeds it with tcp_score_update()/tcp_score_ack(); loss recovery
 * walks the holes below the highest SACKed byte with tcp_score_next_seg().
 */
#include <string.h>

#include "transport/tcp/tcp_priv.h"

/* Insert [s,e) into a sorted disjoint range array, merging neighbours.
 * Returns false (array unchanged) when a new slot is needed and none is free. */
static bool ranges_add(struct tcp_range *r, uint8_t *n, unsigned max, uint32_t s, uint32_t e)
{
	unsigned i = 0, j;

	if (!SEQ_LT(s, e))
		return true;
	while (i < *n && SEQ_LT(r[i].end, s))
		i++; /* r[i] is the first range that ends at/after s */
	if (i < *n && SEQ_LEQ(r[i].start, e)) {
		/* overlaps or touches r[i]: merge, then swallow followers */
		r[i].start = SEQ_MIN(r[i].start, s);
		r[i].end = SEQ_MAX(r[i].end, e);
		j = i + 1;
		while (j < *n && SEQ_LEQ(r[j].start, r[i].end)) {
			r[i].end = SEQ_MAX(r[i].end, r[j].end);
			j++;
		}
		if (j > i + 1) {
			memmove(&r[i + 1], &r[j], (*n - j) * sizeof(*r));
			*n = (uint8_t)(*n - (j - i - 1));
		}
		return true;
	}
	if (*n == max)
		return false;
	memmove(&r[i + 1], &r[i], (*n - i) * sizeof(*r));
	r[i].start = s;
	r[i].end = e;
	(*n)++;
	return true;
}

/* Drop everything below `edge`. */
static void ranges_trim(struct tcp_range *r, uint8_t *n, uint32_t edge)
{
	unsigned i = 0;

	while (i < *n && SEQ_LEQ(r[i].end, edge))
		i++;
	if (i) {
		memmove(r, &r[i], (*n - i) * sizeof(*r));
		*n = (uint8_t)(*n - i);
	}
	if (*n && SEQ_LT(r[0].start, edge))
		r[0].start = edge;
}

bool tcp_ooo_add(struct tcp_cb *c, uint32_t start, uint32_t end)
{
	c->ooo_last = start;
	return ranges_add(c->ooo, &c->n_ooo, TCP_OOO_MAX, start, end);
}

uint32_t tcp_ooo_take(struct tcp_cb *c)
{
	uint32_t more = 0;

	if (c->n_ooo && SEQ_LEQ(c->ooo[0].start, c->rcv_nxt) && SEQ_GT(c->ooo[0].end, c->rcv_nxt))
		more = c->ooo[0].end - c->rcv_nxt;
	ranges_trim(c->ooo, &c->n_ooo, c->rcv_nxt + more);
	return more;
}

unsigned tcp_sack_blocks(const struct tcp_cb *c, uint32_t recent, struct tcp_sack_block *out,
			 unsigned max)
{
	unsigned n = 0, first = c->n_ooo;

	for (unsigned i = 0; i < c->n_ooo; i++)
		if (SEQ_IN(recent, c->ooo[i].start, c->ooo[i].end)) {
			first = i;
			break;
		}
	if (first < c->n_ooo && n < max) {
		out[n].start = c->ooo[first].start;
		out[n].end = c->ooo[first].end;
		n++;
	}
	/* Then the highest ranges: they carry the most news for the sender. */
	for (unsigned i = c->n_ooo; i-- > 0 && n < max;) {
		if (i == first)
			continue;
		out[n].start = c->ooo[i].start;
		out[n].end = c->ooo[i].end;
		n++;
	}
	return n;
}

void tcp_score_update(struct tcp_cb *c, const struct tcp_sack_block *b, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		uint32_t s = b[i].start, e = b[i].end;

		/* Only blocks inside what is outstanding (D-SACKs and lies ignored). */
		if (!SEQ_LT(s, e) || SEQ_LEQ(e, c->snd_una) || SEQ_GT(e, c->snd_max))
			continue;
		if (SEQ_LT(s, c->snd_una))
			s = c->snd_una;
		if (!ranges_add(c->score, &c->n_score, TCP_SCORE_MAX, s, e)) {
			/* Full: forget the highest range, keep the ones that
			 * define the holes nearest snd_una. */
			c->n_score--;
			(void)ranges_add(c->score, &c->n_score, TCP_SCORE_MAX, s, e);
		}
	}
}

void tcp_score_ack(struct tcp_cb *c)
{
	ranges_trim(c->score, &c->n_score, c->snd_una);
}

uint32_t tcp_score_sacked(const struct tcp_cb *c)
{
	uint32_t sum = 0;

	for (unsigned i = 0; i < c->n_score; i++)
		sum += c->score[i].end - c->score[i].start;
	return sum;
}

uint32_t tcp_score_high(const struct tcp_cb *c)
{
	return c->n_score ? c->score[c->n_score - 1].end : c->snd_una;
}

bool tcp_sack_is_dsack(const struct tcp_sack_block *b, unsigned n, uint32_t ack)
{
	if (!n || !SEQ_LT(b[0].start, b[0].end))
		return false;
	if (SEQ_LEQ(b[0].end, ack))
		return true;
	return n > 1 && SEQ_GEQ(b[0].start, b[1].start) && SEQ_LEQ(b[0].end, b[1].end);
}

bool tcp_score_hole_lost(const struct tcp_cb *c, unsigned i)
{
	unsigned dupthresh = tcp_dupthresh(c);
	uint32_t above = 0;

	if (c->n_score - i >= dupthresh)
		return true;
	for (unsigned j = i; j < c->n_score; j++)
		above += c->score[j].end - c->score[j].start;
	return above > (uint32_t)(dupthresh - 1) * c->mss;
}

bool tcp_score_next_seg(const struct tcp_cb *c, uint32_t from, bool lost, uint32_t *start,
			uint32_t *end)
{
	uint32_t gap = c->snd_una;

	for (unsigned i = 0; i < c->n_score; i++) {
		uint32_t gs = gap, ge = c->score[i].start;

		gap = c->score[i].end;
		if (!SEQ_LT(gs, ge) || !SEQ_GT(ge, from))
			continue;
		if (lost && !tcp_score_hole_lost(c, i))
			return false; /* holes above are less lost still */
		*start = SEQ_MAX(gs, from);
		*end = ge;
		return true;
	}
	return false;
}

uint32_t tcp_pipe(const struct tcp_cb *c)
{
	uint32_t flight = c->snd_max - c->snd_una;
	uint32_t sacked = tcp_score_sacked(c);
	uint32_t lost = 0, rexmit = 0, gap = c->snd_una;

	/* RFC 6675 SetPipe(): every unSACKed octet counts once unless
	 * IsLost(), and once more if retransmitted. IsLost() only grows
	 * toward snd_una, so it is judged per hole. */
	for (unsigned i = 0; i < c->n_score; i++) {
		uint32_t gs = gap, ge = c->score[i].start;

		if (SEQ_LT(gs, ge)) {
			if (tcp_score_hole_lost(c, i))
				lost += ge - gs;
			if (SEQ_GT(c->high_rxt, gs))
				rexmit += SEQ_MIN(c->high_rxt, ge) - gs;
		}
		gap = c->score[i].end;
	}
	if (sacked + lost > flight)
		return rexmit;
	return flight - sacked - lost + rexmit;
}
