/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Life cycle of a net_stack: net_create() (the only place that allocates),
 * net_timer(), net_destroy().
 *
 * Call order: net_create() -> [net_send_gratuitous_arp()] ->
 *   { net_input() | net_ip_output() | net_timer() }* -> net_destroy()
 */
#include <errno.h>
#include <stdlib.h>

#include "transport/net/net_priv.h"

#define NET_ARP_TIMEOUT_MS_DEFAULT 60000u
#define NET_ARP_RETRY_MS_DEFAULT 1000u
#define NET_ARP_RETRIES_DEFAULT 3u

static bool net_conf_ok(const struct net_conf *c)
{
	return c->prefix_len <= 32 && c->mtu >= 68 && c->mtu <= 9000 &&
	       !net_ip_is_special(c->ip) && !net_mac_is_mcast(c->mac) &&
	       !net_mac_is_zero(c->mac) && c->arp_retries <= 255;
}

struct net_stack *net_create(const struct net_conf *conf, const struct net_io *io,
			     struct mst_stats *stats)
{
	struct net_stack *ns;

	if (!conf || !io || !io->alloc || !io->xmit || !io->free || !stats ||
	    !net_conf_ok(conf)) {
		errno = EINVAL;
		return NULL;
	}
	ns = calloc(1, sizeof(*ns));
	if (!ns)
		goto out_enomem;
	ns->arp = calloc(ARP_TABLE_SIZE, sizeof(*ns->arp));
	if (!ns->arp)
		goto out_free_ns;
	ns->pend = calloc(ARP_PENDING_MAX, sizeof(*ns->pend));
	if (!ns->pend)
		goto out_free_arp;

	ns->conf = *conf;
	if (!ns->conf.arp_timeout_ms)
		ns->conf.arp_timeout_ms = NET_ARP_TIMEOUT_MS_DEFAULT;
	if (!ns->conf.arp_retry_ms)
		ns->conf.arp_retry_ms = NET_ARP_RETRY_MS_DEFAULT;
	if (!ns->conf.arp_retries)
		ns->conf.arp_retries = NET_ARP_RETRIES_DEFAULT;
	ns->io = *io;
	ns->st = stats;
	ns->netmask = conf->prefix_len ? htonl(~0u << (32 - conf->prefix_len)) : 0;
	ns->arp_timeout_ns = (uint64_t)ns->conf.arp_timeout_ms * 1000000u;
	ns->arp_retry_ns = (uint64_t)ns->conf.arp_retry_ms * 1000000u;
	ns->arp_next_ns = UINT64_MAX;
	ns->icmp_bucket_ns = ICMP_ERR_BURST * ICMP_ERR_COST_NS; /* start full */
	ns->tcp_input = NULL;
	return ns;

out_free_arp:
	free(ns->arp);
out_free_ns:
	free(ns);
out_enomem:
	errno = ENOMEM;
	return NULL;
}

void net_destroy(struct net_stack *ns)
{
	if (!ns)
		return;
	arp_flush_all(ns); /* queued frames go back to the io */
	free(ns->pend);
	free(ns->arp);
	free(ns);
}

void net_timer(struct net_stack *ns, uint64_t now_ns)
{
	arp_timer(ns, now_ns);
}

void net_set_tcp_hook(struct net_stack *ns, net_tcp_input_fn in, net_tcp_icmp_fn icmp, void *ctx)
{
	ns->tcp_hook = in;
	ns->tcp_icmp_hook = icmp;
	ns->tcp_ctx = ctx;
}

uint32_t net_ip(const struct net_stack *ns)
{
	return ns->conf.ip;
}

uint16_t net_mtu(const struct net_stack *ns)
{
	return ns->conf.mtu;
}

struct mst_pkt *net_alloc(struct net_stack *ns)
{
	struct mst_pkt *p = ns->io.alloc(ns->io.ctx);

	if (!p)
		MST_DROP(ns->st, no_buffer);
	return p;
}

void net_free(struct net_stack *ns, struct mst_pkt *p)
{
	ns->io.free(ns->io.ctx, p);
}

uint32_t net_tx_offloads(const struct net_stack *ns)
{
	return ns->conf.tx_offloads;
}

void net_set_udp_hook(struct net_stack *ns, net_udp_input_fn fn, void *ctx)
{
	ns->udp_hook = fn;
	ns->udp_ctx = ctx;
}
