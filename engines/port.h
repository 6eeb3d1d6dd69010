/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Ports: the only code in Mustang that calls rte_eth_*.
 *
 * port_eal_args() -> rte_eal_init() -> port_open() (probe the vdev or PCI
 * device, one mempool per port, one RX/TX queue pair per engine, RSS when
 * the port has more than one queue) -> engines use mst_queue_* on their
 * queue -> port_close().
 *
 * Restarts: port_watch.c watches every port's link and restarts the ones
 * that need it (port_restartable()) while their queues are paused.
 *
 * Internal header: engines and the daemon only.
 */
#ifndef MST_ENGINES_PORT_H
#define MST_ENGINES_PORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mustang/engine.h>

#include "control/config.h"

#define PORT_MAX_QUEUES MST_MAX_ENGINES

struct mst_port;

/* One RX/TX queue pair; handed to exactly one engine. */
struct mst_queue {
	struct mst_port *port;
	uint16_t port_id;        /* DPDK port id */
	uint16_t qid;            /* queue index on the port */
	uint64_t rx_multiseg;    /* chained mbufs dropped on receive */
	bool paused;             /* no bursts: written only on the thread polling the
	                          * queue (or before engines run), see port.c */
};

struct port_info {
	char name[64];           /* DPDK device name, e.g. net_af_xdp0 */
	const char *driver;      /* our driver name */
	const char *spec;        /* as configured */
	uint8_t mac[6];
	bool link_up;
	uint32_t link_speed;     /* Mb/s */
	uint16_t n_queues;
	uint16_t mtu;
	uint32_t tx_offloads;    /* NET_OFL_* */
	uint32_t rx_offloads;
	bool rss;
	/* rte_eth_stats */
	uint64_t ipackets, opackets, ibytes, obytes, imissed, ierrors, oerrors, rx_nombuf;
	uint64_t rx_multiseg;
	bool started;            /* false: not started yet (memif client, no server) */
	uint64_t events[MST_PORT__COUNT]; /* link events, enum mst_port_event */
};

/*
 * Append the EAL arguments the configured ports need (--vdev ..., or -a BDF)
 * to argv (which has room for max entries). Returns the new argc or -ENOSPC.
 * Vdev names are net_<driver><index> so several ports of a kind coexist.
 * memif ports get none: port_start() creates their device (port.c).
 */
int port_eal_args(const struct mst_config *c, char **argv, int argc, int max,
		  char *store, size_t store_len);

/* Probe and start the index-th configured port with n_queues queue pairs.
 * NULL + one-line reason in err on failure. A restartable port that could
 * not start is returned anyway, not started, its queues paused, with the
 * reason in err (else err is ""). */
struct mst_port *port_open(const struct mst_config *c, unsigned index, unsigned n_queues,
			   char *err, size_t errlen);
/* port_open() in two halves, for a live upgrade: prepare (find the
 * device, create the mbuf pool: slow, and possible while another process
 * still runs the port) and start (configure, queues, start: the part the
 * blackout pays for). start frees p on failure. memif: the device itself
 * is created by start (its server socket is the old daemon's until then),
 * with mac (NULL: the PMD's random one). */
struct mst_port *port_prepare(const struct mst_config *c, unsigned index, unsigned n_queues,
			      const uint8_t *mac, char *err, size_t errlen);
struct mst_port *port_start(struct mst_port *p, const struct mst_config *c, char *err,
			    size_t errlen);
/* Create port index's virtual device again after port_close() (a live
 * upgrade's rollback). 0, or -errno (pci: -EINVAL). memif: nothing to do
 * (port_start() creates it). */
int port_reprobe(const struct mst_config *c, unsigned index);
struct mst_queue *port_queue(struct mst_port *p, unsigned qid);
void port_get_info(struct mst_port *p, struct port_info *out);
void port_close(struct mst_port *p);

/* For the watchdog (port_watch.c); thread-safe against port_get_info(). */
bool port_restartable(const struct mst_port *p); /* memif client */
bool port_started(struct mst_port *p);
bool port_link_up(struct mst_port *p);           /* started and link up */
/* memif client: -ENOENT when no server listens on its socket (else 0). */
int port_peer_listening(const struct mst_port *p);
/* memif client: 1 when the server holds a connection on our socket (a
 * handshake in progress, or a link), 0 when it holds none. */
int port_peer_connected(const struct mst_port *p);
/* memif client whose link reads up: 1 when the server listens but holds no
 * connection on our socket any more (its side is gone: the PMD missed it). */
int port_peer_half_open(const struct mst_port *p);
/* Stop (if started) and start again; every queue must be paused. 0/-errno. */
int port_restart(struct mst_port *p);
void port_count_event(struct mst_port *p, enum mst_port_event ev);
const char *port_name(const struct mst_port *p); /* the configured spec */
struct mst_port *port_of_queue(const struct mst_queue *q);

#endif /* MST_ENGINES_PORT_H */
