/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ARP (RFC 826) for Ethernet/IPv4: the cache, resolution with a bounded
 * pending queue, replies and gratuitous announcements.
 *
 * Call order:
 *   eth_input() -> arp_input(): validate -> merge (update a known sender)
 *               -> target is us? learn, and answer a request in place
 *   net_ip_output() -> arp_output(): cache hit -> eth dst, io->xmit
 *                                   miss -> queue frame, arp_request()
 *   net_timer() -> arp_timer(): expire entries, retry requests, give up
 *                               (queued frames dropped as arp_unresolved)
 *
 * Cache: ARP_TABLE_SIZE slots allocated at create; an address lives in one
 * of the ARP_WAYS slots following its hash (bounded probing, no tombstones:
 * lookups always look at all ARP_WAYS slots). When the window is full the
 * VALID entry closest to expiry is evicted; INCOMPLETE entries are never
 * evicted (their frames are in the pending queue).
 *
 * Pending queue: ARP_PENDING_MAX frames for all next hops together, kept
 * oldest first, so frames to one next hop leave in the order they came.
 */
#include <errno.h>

#include "transport/net/net_priv.h"

/* ---- cache ---- */

static unsigned arp_hash(uint32_t ip)
{
	return (ntohl(ip) * 2654435761u) >> 22; /* Fibonacci hash, 10 bits */
}

_Static_assert(ARP_TABLE_SIZE == 1u << 10, "arp_hash yields 10 bits");

static struct arp_entry *arp_find(struct net_stack *ns, uint32_t ip)
{
	unsigned h = arp_hash(ip);

	for (unsigned i = 0; i < ARP_WAYS; i++) {
		struct arp_entry *e = &ns->arp[(h + i) & (ARP_TABLE_SIZE - 1)];

		if (e->state != ARP_FREE && e->ip == ip)
			return e;
	}
	return NULL;
}

/* A slot for a new address: a free one, else evict the VALID entry closest
 * to expiry; NULL if the window holds only INCOMPLETE entries. */
static struct arp_entry *arp_slot(struct net_stack *ns, uint32_t ip)
{
	struct arp_entry *victim = NULL;
	unsigned h = arp_hash(ip);

	for (unsigned i = 0; i < ARP_WAYS; i++) {
		struct arp_entry *e = &ns->arp[(h + i) & (ARP_TABLE_SIZE - 1)];

		if (e->state == ARP_FREE) {
			ns->arp_used++;
			return e;
		}
		if (e->state == ARP_VALID && (!victim || e->deadline_ns < victim->deadline_ns))
			victim = e;
	}
	return victim;
}

static void arp_free_entry(struct net_stack *ns, struct arp_entry *e)
{
	e->state = ARP_FREE;
	ns->arp_used--;
}

static void arp_arm(struct net_stack *ns, struct arp_entry *e, uint64_t deadline_ns)
{
	e->deadline_ns = deadline_ns;
	if (deadline_ns < ns->arp_next_ns)
		ns->arp_next_ns = deadline_ns;
}

/* ---- pending queue ---- */

/* Send (mac != NULL) or drop as arp_unresolved every frame waiting for nh,
 * oldest first; the others keep their order. */
static void arp_pending_release(struct net_stack *ns, uint32_t nh, const uint8_t *mac)
{
	unsigned keep = 0;

	for (unsigned i = 0; i < ns->n_pend; i++) {
		struct arp_pending *q = &ns->pend[i];

		if (q->nh != nh) {
			ns->pend[keep++] = *q;
			continue;
		}
		if (mac) {
			memcpy(((struct net_eth_hdr *)q->p->data)->dst, mac, NET_ETH_ALEN);
			MST_COUNT(ns->st, arp_pending_sent);
			ns->io.xmit(ns->io.ctx, q->p);
		} else {
			NET_DROP(ns, q->p, arp_unresolved);
		}
	}
	ns->n_pend = keep;
}

/* Every queued frame, e.g. at destroy: they will never be sent. */
void arp_flush_all(struct net_stack *ns)
{
	for (unsigned i = 0; i < ns->n_pend; i++)
		NET_DROP(ns, ns->pend[i].p, arp_unresolved);
	ns->n_pend = 0;
}

unsigned net_arp_pending_count(const struct net_stack *ns)
{
	return ns->n_pend;
}

/* ---- output of ARP frames ---- */

static int arp_send(struct net_stack *ns, uint16_t op, const uint8_t *eth_dst,
		    const uint8_t *tha, uint32_t tpa)
{
	struct net_arp_hdr *ah;
	struct mst_pkt *p;

	p = ns->io.alloc(ns->io.ctx);
	if (!p) {
		MST_DROP(ns->st, no_buffer);
		return -ENOBUFS;
	}
	ah = (struct net_arp_hdr *)mst_pkt_append(p, sizeof(*ah));
	if (!ah || eth_prepend(ns, p, eth_dst, NET_ETHERTYPE_ARP) < 0) {
		NET_DROP(ns, p, no_headroom);
		return -ENOBUFS;
	}
	net_st16(&ah->htype, NET_ARP_HTYPE_ETH);
	net_st16(&ah->ptype, NET_ETHERTYPE_IPV4);
	ah->hlen = NET_ETH_ALEN;
	ah->plen = 4;
	net_st16(&ah->op, op);
	memcpy(ah->sha, ns->conf.mac, NET_ETH_ALEN);
	net_st32n(&ah->spa, ns->conf.ip);
	memcpy(ah->tha, tha, NET_ETH_ALEN);
	net_st32n(&ah->tpa, tpa);
	p->flags = 0;
	ns->io.xmit(ns->io.ctx, p);
	return 0;
}

static void arp_request(struct net_stack *ns, struct arp_entry *e, uint64_t now_ns)
{
	static const uint8_t unknown[NET_ETH_ALEN];

	e->tries++;
	arp_arm(ns, e, now_ns + ns->arp_retry_ns);
	if (arp_send(ns, NET_ARP_OP_REQUEST, net_eth_bcast, unknown, e->ip) == 0)
		MST_COUNT(ns->st, arp_requests_sent);
}

/* Gratuitous ARP: a broadcast request with sender = target = our address
 * (RFC 5227 §3 "ARP Announcement"; target hardware address zero). */
int net_send_gratuitous_arp(struct net_stack *ns, uint64_t now_ns)
{
	static const uint8_t zero[NET_ETH_ALEN];
	int rc;

	(void)now_ns;
	rc = arp_send(ns, NET_ARP_OP_REQUEST, net_eth_bcast, zero, ns->conf.ip);
	if (rc == 0)
		MST_COUNT(ns->st, arp_gratuitous_sent);
	return rc;
}

/* p is a complete frame (Ethernet header in place, dst unknown). */
int arp_output(struct net_stack *ns, struct mst_pkt *p, uint32_t nh, uint64_t now_ns)
{
	struct arp_entry *e = arp_find(ns, nh);

	if (e && e->state == ARP_VALID) {
		if (now_ns < e->deadline_ns) {
			memcpy(((struct net_eth_hdr *)p->data)->dst, e->mac, NET_ETH_ALEN);
			ns->io.xmit(ns->io.ctx, p);
			return 0;
		}
		/* Expired and the timer has not run yet: resolve again. */
		MST_COUNT(ns->st, arp_cache_expired);
		e->state = ARP_INCOMPLETE;
		e->tries = 0;
	}

	if (ns->n_pend == ARP_PENDING_MAX) {
		NET_DROP(ns, p, arp_pending_full);
		return -ENOBUFS;
	}
	if (!e) {
		e = arp_slot(ns, nh);
		if (!e) { /* window full of unresolved next hops */
			NET_DROP(ns, p, arp_pending_full);
			return -ENOBUFS;
		}
		e->ip = nh;
		e->state = ARP_INCOMPLETE;
		e->tries = 0;
		memset(e->mac, 0, NET_ETH_ALEN);
	}
	ns->pend[ns->n_pend].p = p;
	ns->pend[ns->n_pend].nh = nh;
	ns->n_pend++;
	if (e->tries == 0)
		arp_request(ns, e, now_ns);
	return 0;
}

/* ---- input ---- */

/* Install sender -> mac; send whatever was waiting for it. */
static void arp_update(struct net_stack *ns, struct arp_entry *e, const uint8_t *mac,
		       uint64_t now_ns)
{
	bool was_incomplete = e->state == ARP_INCOMPLETE;

	memcpy(e->mac, mac, NET_ETH_ALEN);
	e->state = ARP_VALID;
	e->tries = 0;
	arp_arm(ns, e, now_ns + ns->arp_timeout_ns);
	MST_COUNT(ns->st, arp_cache_learned);
	if (was_incomplete)
		arp_pending_release(ns, e->ip, e->mac);
}

void arp_input(struct net_stack *ns, struct mst_pkt *p, uint64_t now_ns)
{
	struct net_eth_hdr *eh;
	struct net_arp_hdr *ah;
	struct arp_entry *e;
	uint32_t spa, tpa;
	uint16_t op;
	bool merged = false;

	if (p->len < NET_ARP_FRAME_LEN) {
		NET_DROP(ns, p, arp_truncated);
		return;
	}
	eh = (struct net_eth_hdr *)p->data;
	ah = (struct net_arp_hdr *)(p->data + NET_ETH_HLEN);

	if (net_ld16(&ah->htype) != NET_ARP_HTYPE_ETH ||
	    net_ld16(&ah->ptype) != NET_ETHERTYPE_IPV4 || ah->hlen != NET_ETH_ALEN ||
	    ah->plen != 4) {
		NET_DROP(ns, p, arp_bad_format);
		return;
	}
	op = net_ld16(&ah->op);
	if (op != NET_ARP_OP_REQUEST && op != NET_ARP_OP_REPLY) {
		NET_DROP(ns, p, arp_bad_op);
		return;
	}
	spa = net_ld32n(&ah->spa);
	tpa = net_ld32n(&ah->tpa);
	/* A sender of 0 is an RFC 5227 probe; we do not defend, just drop. A
	 * sender claiming our address is a conflict: never learn it. */
	if (net_ip_is_special(spa) || spa == ns->conf.ip || net_mac_is_mcast(ah->sha) ||
	    net_mac_is_zero(ah->sha)) {
		NET_DROP(ns, p, arp_bad_sender);
		return;
	}
	MST_COUNT(ns->st, arp_rx);

	/* RFC 826 "merge_flag": refresh a sender we already know, whoever
	 * the packet is for. */
	e = arp_find(ns, spa);
	if (e) {
		arp_update(ns, e, ah->sha, now_ns);
		merged = true;
	}
	if (tpa != ns->conf.ip) {
		NET_DROP(ns, p, arp_not_for_us);
		return;
	}
	if (!merged) {
		e = arp_slot(ns, spa);
		if (e) {
			e->ip = spa;
			e->state = ARP_FREE; /* not incomplete: nothing to release */
			arp_update(ns, e, ah->sha, now_ns);
		}
	}
	/* Other engines may need this neighbour too (their queues do not see
	 * the ARP frames RSS steers here). */
	if (ns->io.arp_learned)
		ns->io.arp_learned(ns->io.ctx, spa, ah->sha);
	if (op != NET_ARP_OP_REQUEST) {
		ns->io.free(ns->io.ctx, p); /* a reply: consumed, not dropped */
		return;
	}

	/* Turn the request into the reply in place (RFC 826 "swap"). */
	memcpy(ah->tha, ah->sha, NET_ETH_ALEN);
	net_st32n(&ah->tpa, spa);
	memcpy(ah->sha, ns->conf.mac, NET_ETH_ALEN);
	net_st32n(&ah->spa, ns->conf.ip);
	net_st16(&ah->op, NET_ARP_OP_REPLY);
	memcpy(eh->dst, ah->tha, NET_ETH_ALEN);
	memcpy(eh->src, ns->conf.mac, NET_ETH_ALEN);
	mst_pkt_trim(p, NET_ARP_FRAME_LEN); /* drop the sender's padding */
	p->flags = 0;
	MST_COUNT(ns->st, arp_replies_sent);
	ns->io.xmit(ns->io.ctx, p);
}

/* ---- lookups and timers ---- */

bool net_arp_lookup(struct net_stack *ns, uint32_t ip, uint8_t mac_out[NET_ETH_ALEN],
		    uint64_t now_ns)
{
	const struct arp_entry *e = arp_find(ns, ip);

	if (!e || e->state != ARP_VALID || now_ns >= e->deadline_ns)
		return false;
	memcpy(mac_out, e->mac, NET_ETH_ALEN);
	return true;
}

unsigned net_arp_count(const struct net_stack *ns)
{
	unsigned n = 0;

	for (unsigned i = 0; i < ARP_TABLE_SIZE; i++)
		n += ns->arp[i].state == ARP_VALID;
	return n;
}

/* Cheap when idle: nothing happens before the earliest deadline
 * (arp_next_ns is a lower bound; refreshing an entry only moves its
 * deadline later, so an early wake-up is the worst case). */
void arp_timer(struct net_stack *ns, uint64_t now_ns)
{
	uint64_t next = UINT64_MAX;

	if (ns->arp_used == 0 || now_ns < ns->arp_next_ns)
		return;

	for (unsigned i = 0; i < ARP_TABLE_SIZE; i++) {
		struct arp_entry *e = &ns->arp[i];

		if (e->state == ARP_FREE)
			continue;
		if (now_ns >= e->deadline_ns) {
			if (e->state == ARP_VALID) {
				MST_COUNT(ns->st, arp_cache_expired);
				arp_free_entry(ns, e);
				continue;
			}
			if (e->tries >= ns->conf.arp_retries) {
				arp_pending_release(ns, e->ip, NULL);
				arp_free_entry(ns, e);
				continue;
			}
			arp_request(ns, e, now_ns);
		}
		if (e->deadline_ns < next)
			next = e->deadline_ns;
	}
	ns->arp_next_ns = next;
}

void net_arp_set_deadline(struct net_stack *ns, uint32_t ip, uint64_t deadline_ns)
{
	struct arp_entry *e = arp_find(ns, ip);

	if (e && e->state == ARP_VALID)
		arp_arm(ns, e, deadline_ns);
}

int net_arp_learn(struct net_stack *ns, uint32_t ip, const uint8_t mac[NET_ETH_ALEN],
		  uint64_t now_ns)
{
	struct arp_entry *e;

	if (net_ip_is_special(ip) || ip == ns->conf.ip || net_mac_is_mcast(mac) ||
	    net_mac_is_zero(mac))
		return -EINVAL;
	e = arp_find(ns, ip);
	if (!e) {
		e = arp_slot(ns, ip);
		if (!e)
			return -ENOSPC;
		e->ip = ip;
		e->state = ARP_FREE;
	}
	arp_update(ns, e, mac, now_ns);
	return 0;
}
