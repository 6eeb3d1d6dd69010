/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Flow-record rings, engines -> control plane (see flowlog.h). One DPDK
 * ring of fixed-size elements per engine: single producer (the engine
 * thread), single consumer (the control plane's flow thread). The rings
 * live for the process; an engine restarted in place (live upgrade) finds
 * its id's ring again, and the old engine is frozen before the new one
 * polls, so there is never a second producer.
 */
#include <errno.h>
#include <stdio.h>

#include <rte_ring.h>
#include <rte_ring_elem.h>

#include "engines/flowlog.h"

static struct rte_ring *rings[FLOWLOG_MAX_ENGINES];
static uint64_t interval;

int flowlog_setup(unsigned n_engines, unsigned ring_size, uint64_t interval_ns)
{
	if (n_engines > FLOWLOG_MAX_ENGINES || !ring_size || (ring_size & (ring_size - 1)))
		return -EINVAL;
	for (unsigned i = 0; i < n_engines; i++) {
		char name[RTE_RING_NAMESIZE];

		if (rings[i])
			continue;
		snprintf(name, sizeof(name), "mst_flow%u", i);
		rings[i] = rte_ring_create_elem(name, sizeof(struct mst_flow_rec), ring_size,
						SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
		if (!rings[i])
			return -ENOMEM;
	}
	interval = interval_ns;
	return 0;
}

struct rte_ring *flowlog_ring(unsigned id)
{
	return id < FLOWLOG_MAX_ENGINES ? rings[id] : NULL;
}

uint64_t flowlog_interval_ns(void)
{
	return interval;
}

bool flowlog_put(struct rte_ring *r, const struct mst_flow_rec *rec)
{
	return rte_ring_sp_enqueue_elem(r, (void *)(uintptr_t)rec, sizeof(*rec)) == 0;
}

unsigned flowlog_take(unsigned id, struct mst_flow_rec *out, unsigned max)
{
	if (id >= FLOWLOG_MAX_ENGINES || !rings[id])
		return 0;
	return rte_ring_sc_dequeue_burst_elem(rings[id], out, sizeof(*out), max, NULL);
}
