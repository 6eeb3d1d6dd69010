/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Live upgrade of the ARP cache: one ARP record per resolved neighbour,
 * with its expiry as an absolute deadline. Incomplete entries and the
 * frames waiting on them are not carried: the frames are dropped and
 * counted at export (arp_flush_all), and the protocols above retransmit,
 * which re-resolves the neighbour.
 */
#include <errno.h>
#include <string.h>

#include "common/state.h"
#include "transport/net/net_priv.h"

struct arp_rec {
	uint64_t deadline_ns;   /* expiry, CLOCK_MONOTONIC */
	uint32_t ip;            /* network order */
	uint8_t mac[NET_ETH_ALEN];
	uint16_t pad;
};
_Static_assert(sizeof(struct arp_rec) == 24, "ARP record layout");

void net_export_arp(struct net_stack *ns, struct mst_state_writer *w)
{
	for (unsigned i = 0; i < ARP_TABLE_SIZE; i++) {
		const struct arp_entry *e = &ns->arp[i];
		struct arp_rec *r;

		if (e->state != ARP_VALID)
			continue;
		r = mst_sw_rec(w, MST_STATE_REC_ARP, sizeof(*r));
		if (!r)
			continue;
		r->deadline_ns = e->deadline_ns;
		r->ip = e->ip;
		memcpy(r->mac, e->mac, NET_ETH_ALEN);
	}
}

int net_import_arp(struct net_stack *ns, const void *p, uint32_t len, uint64_t now_ns)
{
	struct arp_rec r;
	int rc = mst_state_take(&r, sizeof(r), p, len);

	if (rc)
		return rc;
	if (r.deadline_ns > now_ns + ns->arp_timeout_ns + 1000000000ull)
		return -EINVAL; /* an expiry no entry of ours could have */
	rc = net_arp_learn(ns, r.ip, r.mac, now_ns);
	if (rc)
		return rc == -ENOSPC ? 0 : rc; /* a full cache re-learns later */
	net_arp_set_deadline(ns, r.ip, r.deadline_ns);
	return 0;
}
