/* SPDX-License-Identifier: BSD-3-Clause */
/* Engine kinds built into mustangd. Internal header. */
#ifndef MST_ENGINES_BUILTIN_H
#define MST_ENGINES_BUILTIN_H

#include <mustang/engine.h>

/* "net": L2/L3 (ARP, IPv4, ICMP, UDP + built-in services) on one queue pair. */
extern const struct mst_engine_ops net_engine_ops;

struct tcp_conn_info;
/* "net" engine only, on its own thread (rt_engine_call): copy up to max
 * connections' info; returns how many exist (may exceed max). */
unsigned net_engine_conns(void *eng, struct tcp_conn_info *out, unsigned max);

struct pony_flow_info;
/* Same for Pony flows (engine 0; others have none); *port = the Pony UDP
 * port, 0 when Pony is off. */
unsigned net_engine_pony_flows(void *eng, struct pony_flow_info *out, unsigned max, int *port);

/* "net" engine, on its own thread: announce our address again (gratuitous
 * ARP on the next poll), e.g. after the link came back: a peer that
 * restarted, or a memif peer that got a new MAC, learns us at once. */
void net_engine_announce(void *eng);

/* Register every built-in kind; 0 or -errno. Idempotent. */
int engines_register_builtin(void);

#endif
