/* SPDX-License-Identifier: BSD-3-Clause */
/* Pony core: skeleton, the protocol follows. */
#include <errno.h>
#include <string.h>

#include "transport/pony/pony.h"

void pony_conf_defaults(struct pony_conf *c)
{
	memset(c, 0, sizeof(*c));
	c->udp_port = PONY_DEFAULT_PORT;
	c->mtu = 1500;
	c->max_msg = PONY_DEFAULT_MAX_MSG;
	c->max_flows = 256;
	c->max_msgs = 4096;
	c->max_streams = 1024;
	c->window_pkts = 512;
	c->rto_min_us = 1000;
	c->rto_max_us = 200000;
	c->max_retries = 12;
	c->idle_timeout_ms = 30000;
	c->cc_target_us = 100;
	c->cc_ai_milli = 1000;
	c->cc_beta_milli = 800;
	c->cc_max_mdf_milli = 500;
	c->cc_init_cwnd = 64;
}

struct pony *pony_create(const struct pony_conf *conf, const struct pony_io *io,
			 struct mst_stats *stats)
{
	errno = ENOSYS;
	return NULL;
}

void pony_destroy(struct pony *py) {}
void pony_input(struct pony *py, struct mst_pkt *p, uint32_t src, uint64_t now_ns) {}
int pony_send(struct pony *py, uint32_t peer, uint16_t src_svc, uint16_t dst_svc,
	      uint32_t stream, const void *data, uint32_t len, uint64_t cookie, uint64_t now_ns)
{
	return -ENOSYS;
}
int pony_read(struct pony *py, uint32_t peer, uint16_t src_svc, uint16_t dst_svc, uint32_t key,
	      uint64_t off, uint32_t len, void *dst, uint64_t cookie, uint64_t now_ns)
{
	return -ENOSYS;
}
int pony_poll(struct pony *py, uint64_t now_ns) { return 0; }
bool pony_idle(const struct pony *py) { return true; }
void pony_cancel_svc(struct pony *py, uint16_t svc) {}
unsigned pony_flow_count(const struct pony *py) { return 0; }
int pony_flow_info(const struct pony *py, unsigned idx, struct pony_flow_info *out, uint64_t now_ns)
{
	return -ENOENT;
}
