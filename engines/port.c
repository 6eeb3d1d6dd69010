/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Ports: probe, configure, start and stop DPDK ethdevs; the queue access
 * functions of <mustang/engine.h>. The only file that calls rte_eth_*.
 *
 * port_eal_args() runs before rte_eal_init() and turns the configured ports
 * into --vdev / -a arguments (memif's device is made later, by port_start():
 * see memif_deferred()); port_open() then finds the device by name,
 * creates its mempool (struct mst_pkt lives in each mbuf's private area),
 * configures one queue pair per engine with RSS where the device has more
 * than one queue, enables the checksum offloads the device offers, and
 * starts it. The hot path is mst_queue_rx()/mst_queue_tx(): they translate
 * between rte_mbuf and struct mst_pkt without copying.
 *
 * Restarts (port_watch.c): a memif client whose server is absent cannot
 * start (the PMD connects its socket in dev_start and gives up at once), and
 * one whose server went away stays down until it is started again. Such a
 * port opens "not started" and the watchdog calls port_restart() later.
 * rte_eth_dev_stop() swaps the device's burst functions for stubs while
 * another thread may be inside a burst, so a restart happens only while
 * every queue of the port is paused: each engine sets its queue's `paused`
 * on its own thread between two polls (rt_engine_call), and the bursts
 * below return 0 without touching the device until it is cleared again.
 */
#include <dirent.h>
#include <pthread.h>
#include <net/if.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_dev.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_prefetch.h>

#include "engines/port.h"
#include "transport/net/net.h"

#define PORT_RX_DESC 1024
#define PORT_TX_DESC 1024
#define PORT_MEMPOOL_CACHE 256

struct mst_port {
	uint16_t port_id;
	unsigned index;                         /* position in the config */
	const struct mst_port_conf *conf;
	struct rte_mempool *pool;
	uint16_t n_queues;
	bool rss;
	uint32_t tx_ofl, rx_ofl;                /* NET_OFL_* in use */
	uint64_t tx_ol_mask;                    /* RTE_MBUF_F_TX_* we may set */
	bool started;                           /* dev_start succeeded, not stopped since */
	bool deferred;                          /* memif: device created by port_start() */
	bool keep_mac;                          /* memif: create it with mac below */
	uint8_t mac[6];
	pthread_mutex_t lock;                   /* restart vs. control-plane queries */
	uint64_t events[MST_PORT__COUNT];       /* port_watch.c writes, control reads (relaxed) */
	struct mst_queue queues[PORT_MAX_QUEUES];
};

/* The mst_pkt view lives in the mbuf's private area, right after the mbuf. */
#define PORT_PRIV_SIZE RTE_ALIGN(sizeof(struct mst_pkt), RTE_MBUF_PRIV_ALIGN)

static inline struct mst_pkt *mbuf_pkt(struct rte_mbuf *m)
{
	return (struct mst_pkt *)rte_mbuf_to_priv(m);
}

static void vdev_name(const struct mst_port_conf *pc, unsigned index, char *buf, size_t len)
{
	switch (pc->driver) {
	case MST_PORT_AF_XDP:
		snprintf(buf, len, "net_af_xdp%u", index);
		break;
	case MST_PORT_AF_PACKET:
		snprintf(buf, len, "net_af_packet%u", index);
		break;
	case MST_PORT_MEMIF:
		snprintf(buf, len, "net_memif%u", index);
		break;
	case MST_PORT_RING:
		snprintf(buf, len, "net_ring_mst%u", index);
		break;
	case MST_PORT_NULL:
		snprintf(buf, len, "net_null%u", index);
		break;
	case MST_PORT_PCI:
		snprintf(buf, len, "%s", pc->pci);
		break;
	}
}

static uint16_t find_port(const char *name);
static void memif_silence(const struct mst_port *p);

/* af_packet frames per queue. DPDK's PMD joins its sockets to a
 * PACKET_FANOUT_HASH group with PACKET_FANOUT_FLAG_ROLLOVER: when one
 * queue's ring is full the kernel rolls the frame over to another queue, so
 * a flow's segments reach two engines and arrive reordered (PAWS drops, and
 * a late segment after close meets the listener and draws a RST). The
 * default 512 frames (about 6 ms of a 1 Gbit/s stream) fill while a
 * sleeping engine wakes; 4096 (8 MiB a queue) covers the wake-up. */
#define AF_PACKET_FRAMES 4096

/* The vdev arguments of port index (after EAL: re-create a closed one);
 * memif gets mac= when given (its PMD picks a random MAC otherwise). */
static int vdev_args(const struct mst_config *c, unsigned index, const uint8_t *mac, char *buf,
		     size_t len)
{
	const struct mst_port_conf *pc = &c->ports[index];

	switch (pc->driver) {
	case MST_PORT_AF_XDP:
		return snprintf(buf, len, "iface=%s,start_queue=0,queue_count=%u", pc->iface,
				c->engines);
	case MST_PORT_AF_PACKET:
		return snprintf(buf, len, "iface=%s,qpairs=%u,framecnt=%u", pc->iface, c->engines,
				AF_PACKET_FRAMES);
	case MST_PORT_MEMIF:
		if (mac)
			return snprintf(buf, len, "socket=%s,role=%s,mac=%02x:%02x:%02x:%02x:%02x:%02x",
					pc->socket, pc->memif_server ? "server" : "client", mac[0],
					mac[1], mac[2], mac[3], mac[4], mac[5]);
		return snprintf(buf, len, "socket=%s,role=%s", pc->socket,
				pc->memif_server ? "server" : "client");
	case MST_PORT_RING:
	case MST_PORT_NULL:
		return snprintf(buf, len, "%s", "");
	default:
		return -EINVAL;
	}
}

/*
 * memif: the device is created by port_start(), not at EAL init nor in
 * port_prepare(). A memif server binds its listening socket (abstract:
 * "@" + socket=, per network namespace) when its device is created, and
 * in a live upgrade the old daemon holds that name until it closes its
 * port in the blackout; so the new daemon prepares (brownout) without the
 * device and creates it once the old one let go. The MAC given to
 * port_prepare() goes to the PMD as mac=: memif picks a random MAC for
 * each device otherwise, and the imported engines, the peer's ARP cache
 * and a rollback's reopened port must keep the one they had.
 */
static bool memif_deferred(const struct mst_port_conf *pc)
{
	return pc->driver == MST_PORT_MEMIF;
}

static int reprobe(const struct mst_config *c, unsigned index, const uint8_t *mac)
{
	char name[64], args[512];
	int n = vdev_args(c, index, mac, args, sizeof(args));

	if (n < 0 || (size_t)n >= sizeof(args))
		return -EINVAL; /* pci: not a vdev */
	vdev_name(&c->ports[index], index, name, sizeof(name));
	if (find_port(name) != RTE_MAX_ETHPORTS)
		return 0; /* still there */
	/* The closed port's device is still on the bus: unplug, plug. */
	(void)rte_eal_hotplug_remove("vdev", name);
	return rte_eal_hotplug_add("vdev", name, args);
}

int port_reprobe(const struct mst_config *c, unsigned index)
{
	if (memif_deferred(&c->ports[index]))
		return 0; /* port_start() makes it, with the MAC it had */
	return reprobe(c, index, NULL);
}

int port_eal_args(const struct mst_config *c, char **argv, int argc, int max,
		  char *store, size_t store_len)
{
	size_t used = 0;
	unsigned nq = c->engines;
	bool any_pci = false;

	for (unsigned i = 0; i < c->n_ports; i++) {
		const struct mst_port_conf *pc = &c->ports[i];
		char name[64];
		char *arg = store + used;
		int n;

		if (argc + 2 >= max)
			return -ENOSPC;
		vdev_name(pc, i, name, sizeof(name));
		switch (pc->driver) {
		case MST_PORT_AF_XDP:
			n = snprintf(arg, store_len - used, "%s,iface=%s,start_queue=0,queue_count=%u",
				     name, pc->iface, nq);
			break;
		case MST_PORT_AF_PACKET:
			n = snprintf(arg, store_len - used, "%s,iface=%s,qpairs=%u,framecnt=%u", name, pc->iface,
				     nq, AF_PACKET_FRAMES);
			break;
		case MST_PORT_MEMIF:
			continue; /* created by port_start(): see memif_deferred() */
		case MST_PORT_RING:
		case MST_PORT_NULL:
			n = snprintf(arg, store_len - used, "%s", name);
			break;
		case MST_PORT_PCI:
			n = snprintf(arg, store_len - used, "%s", pc->pci);
			any_pci = true;
			break;
		default:
			return -EINVAL;
		}
		if (n < 0 || (size_t)n + 1 > store_len - used)
			return -ENOSPC;
		used += (size_t)n + 1;
		argv[argc++] = (char *)(pc->driver == MST_PORT_PCI ? "-a" : "--vdev");
		argv[argc++] = arg;
	}
	if (!any_pci) {
		if (argc + 1 >= max)
			return -ENOSPC;
		argv[argc++] = (char *)"--no-pci";
	}
	return argc;
}

/* dev_start, and what has to follow each start. */
static int dev_start(struct mst_port *p)
{
	int rc = rte_eth_dev_start(p->port_id);

	if (rc)
		return rc;
	p->started = true;
	/* Accept frames for our MAC and broadcast; ARP needs broadcast. */
	(void)rte_eth_allmulticast_disable(p->port_id);
	return 0;
}

bool port_restartable(const struct mst_port *p)
{
	return p->conf->driver == MST_PORT_MEMIF && !p->conf->memif_server;
}

/*
 * memif client: the server's sockets on our path, from /proc/net/unix.
 * DPDK 22.11 binds memif sockets in the abstract namespace ("@" + socket=,
 * per network namespace, so client and server always share one view),
 * SOCK_SEQPACKET (type 5); the listener has flag __SO_ACCEPTCON (0x10000),
 * each accepted connection has state SS_CONNECTED (3) and the same path, a
 * connection still in the listener's backlog (not accepted yet) reads
 * SS_CONNECTING (2). -errno when /proc cannot be read.
 */
static int peer_sockets(const struct mst_port *p, unsigned *listening, unsigned *accepted,
			unsigned *pending)
{
	char line[512], want[PATH_MAX + 2];
	FILE *f;

	*listening = *accepted = *pending = 0;
	f = fopen("/proc/net/unix", "re");
	if (!f)
		return -errno;
	snprintf(want, sizeof(want), "@%s", p->conf->socket);
	while (fgets(line, sizeof(line), f)) {
		unsigned long flags;
		unsigned type, st;
		char path[PATH_MAX + 2];

		if (sscanf(line, "%*s %*s %*s %lx %x %x %*s %4097s", &flags, &type, &st, path) != 4)
			continue;
		if (type != 5 || strcmp(path, want) != 0)
			continue;
		if (flags & 0x10000)
			(*listening)++;
		else if (st == 3)
			(*accepted)++;
		else if (st == 2)
			(*pending)++;
	}
	fclose(f);
	return 0;
}

/* Asking /proc instead of connecting leaves the server alone and spares a
 * failed dev_start (and its error line in the DPDK log) per retry. */
int port_peer_listening(const struct mst_port *p)
{
	unsigned l, a, pend;

	if (!port_restartable(p) || peer_sockets(p, &l, &a, &pend))
		return 0; /* cannot tell: try */
	return l ? 0 : -ENOENT;
}

int port_peer_connected(const struct mst_port *p)
{
	unsigned l, a, pend;

	if (!port_restartable(p) || peer_sockets(p, &l, &a, &pend))
		return 1; /* cannot tell: assume it is */
	return a + pend > 0; /* in the backlog: the server has yet to accept it */
}

int port_peer_half_open(const struct mst_port *p)
{
	unsigned l, a, pend;

	if (!port_restartable(p) || peer_sockets(p, &l, &a, &pend))
		return 0;
	return l && !a && !pend;
}

/*
 * memif client, before its control channel closes: let the server accept
 * it first. DPDK 22.11's server sends its hello from the accept handler and,
 * when that send fails (we closed before it accepted: EPIPE), closes the
 * socket without unregistering its interrupt callback; its interrupt thread
 * then panics on the closed descriptor (epoll_ctl EBADF) and takes the
 * server daemon down. A busy server accepts within milliseconds, so the
 * wait is short; a stalled one gets MEMIF_ACCEPT_WAIT_MS, then we close
 * anyway (the crash is then the server's PMD's, newer DPDK fixed it).
 */
#define MEMIF_ACCEPT_WAIT_MS 1000

static void memif_await_accept(const struct mst_port *p)
{
	unsigned l, a, pend;

	for (unsigned waited = 0; port_restartable(p) && waited < MEMIF_ACCEPT_WAIT_MS; waited += 5) {
		if (peer_sockets(p, &l, &a, &pend) || !pend || !l)
			return;
		usleep(5000);
	}
}

static uint16_t find_port(const char *name)
{
	uint16_t pid;

	if (rte_eth_dev_get_port_by_name(name, &pid) == 0)
		return pid;
	return RTE_MAX_ETHPORTS;
}

/* Port index's device, checked for n_queues queue pairs; RTE_MAX_ETHPORTS
 * and a reason in err when it is not there or too small. */
static uint16_t find_device(const struct mst_port_conf *pc, unsigned index, unsigned n_queues,
			    char *err, size_t errlen)
{
	struct rte_eth_dev_info info;
	char name[64];
	uint16_t pid;
	int rc;

	vdev_name(pc, index, name, sizeof(name));
	pid = find_port(name);
	if (pid == RTE_MAX_ETHPORTS) {
		snprintf(err, errlen, "port %s: device %s was not created (see the DPDK log above)%s",
			 pc->spec, name,
			 pc->driver == MST_PORT_AF_XDP && n_queues > 1
				 ? "; af_xdp with several engines needs that many combined channels "
				   "on the interface (ethtool -L IFACE combined N; veth has none: use "
				   "af_packet or one engine)"
				 : "");
		return RTE_MAX_ETHPORTS;
	}
	rc = rte_eth_dev_info_get(pid, &info);
	if (rc) {
		snprintf(err, errlen, "port %s: cannot query device: %s", pc->spec, strerror(-rc));
		return RTE_MAX_ETHPORTS;
	}
	if (n_queues > info.max_rx_queues || n_queues > info.max_tx_queues) {
		snprintf(err, errlen, "port %s: %u engines need %u queue pairs, the device has %u",
			 pc->spec, n_queues, n_queues, RTE_MIN(info.max_rx_queues, info.max_tx_queues));
		return RTE_MAX_ETHPORTS;
	}
	return pid;
}

struct mst_port *port_prepare(const struct mst_config *c, unsigned index, unsigned n_queues,
			      const uint8_t *mac, char *err, size_t errlen)
{
	const struct mst_port_conf *pc = &c->ports[index];
	struct mst_port *p;
	char pool_name[RTE_MEMPOOL_NAMESIZE];
	uint16_t pid = RTE_MAX_ETHPORTS;
	int socket = SOCKET_ID_ANY;

	if (errlen)
		err[0] = '\0';
	if (!memif_deferred(pc)) {
		pid = find_device(pc, index, n_queues, err, errlen);
		if (pid == RTE_MAX_ETHPORTS)
			return NULL;
		if (rte_eth_dev_socket_id(pid) >= 0)
			socket = rte_eth_dev_socket_id(pid);
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		snprintf(err, errlen, "port %s: out of memory", pc->spec);
		return NULL;
	}
	p->port_id = pid;
	p->deferred = pid == RTE_MAX_ETHPORTS;
	p->index = index;
	p->conf = pc;
	p->n_queues = (uint16_t)n_queues;
	if (mac) {
		p->keep_mac = true;
		memcpy(p->mac, mac, sizeof(p->mac));
	}
	pthread_mutex_init(&p->lock, NULL);

	snprintf(pool_name, sizeof(pool_name), "mst_pool%u", index);
	p->pool = rte_pktmbuf_pool_create(pool_name, c->mbufs, PORT_MEMPOOL_CACHE,
					  PORT_PRIV_SIZE, RTE_MBUF_DEFAULT_BUF_SIZE, socket);
	if (!p->pool) {
		snprintf(err, errlen, "port %s: cannot create a pool of %u mbufs: %s (try --mbufs or --mem-mb)",
			 pc->spec, c->mbufs, rte_strerror(rte_errno));
		pthread_mutex_destroy(&p->lock);
		free(p);
		return NULL;
	}
	return p;
}

/* A deferred (memif) port's device, now: 0 or -errno with err set. */
static int create_deferred(struct mst_port *p, const struct mst_config *c, char *err,
			   size_t errlen)
{
	int rc = reprobe(c, p->index, p->keep_mac ? p->mac : NULL);

	if (rc) {
		snprintf(err, errlen, "port %s: cannot create the memif device: %s%s", p->conf->spec,
			 strerror(-rc), rc == -EADDRINUSE || rc == -EEXIST
						? " (another process holds the socket?)" : "");
		return rc;
	}
	p->port_id = find_device(p->conf, p->index, p->n_queues, err, errlen);
	if (p->port_id == RTE_MAX_ETHPORTS)
		return -ENODEV;
	p->deferred = false;
	return 0;
}

struct mst_port *port_start(struct mst_port *p, const struct mst_config *c, char *err,
			    size_t errlen)
{
	const struct mst_port_conf *pc = p->conf;
	unsigned n_queues = p->n_queues;
	struct rte_eth_dev_info info;
	struct rte_eth_conf econf;
	uint16_t pid;
	int rc;

	if (p->deferred && create_deferred(p, c, err, errlen))
		goto out_pool;
	pid = p->port_id;
	rc = rte_eth_dev_info_get(pid, &info);
	if (rc) {
		snprintf(err, errlen, "port %s: cannot query device: %s", pc->spec, strerror(-rc));
		goto out_pool;
	}
	memset(&econf, 0, sizeof(econf));
	if (n_queues > 1 && info.flow_type_rss_offloads) {
		econf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
		econf.rx_adv_conf.rss_conf.rss_hf =
			info.flow_type_rss_offloads & (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP);
		p->rss = true;
	}
	/* Checksum offloads: use what the device has, software does the rest. */
	if (info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_IPV4_CKSUM) {
		econf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_IPV4_CKSUM;
		p->rx_ofl |= NET_OFL_IPV4_CKSUM;
	}
	if (info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_UDP_CKSUM) {
		econf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_UDP_CKSUM;
		p->rx_ofl |= NET_OFL_UDP_CKSUM;
	}
	if (info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_TCP_CKSUM) {
		econf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_TCP_CKSUM;
		p->rx_ofl |= NET_OFL_TCP_CKSUM;
	}
	if (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_IPV4_CKSUM) {
		econf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_IPV4_CKSUM;
		p->tx_ofl |= NET_OFL_IPV4_CKSUM;
		p->tx_ol_mask |= RTE_MBUF_F_TX_IP_CKSUM | RTE_MBUF_F_TX_IPV4;
	}
	if (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_UDP_CKSUM) {
		econf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_UDP_CKSUM;
		p->tx_ofl |= NET_OFL_UDP_CKSUM;
		p->tx_ol_mask |= RTE_MBUF_F_TX_UDP_CKSUM | RTE_MBUF_F_TX_IPV4;
	}
	if (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_TCP_CKSUM) {
		econf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_TCP_CKSUM;
		p->tx_ofl |= NET_OFL_TCP_CKSUM;
		p->tx_ol_mask |= RTE_MBUF_F_TX_TCP_CKSUM | RTE_MBUF_F_TX_IPV4;
	}
	if (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE)
		econf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE;

	rc = rte_eth_dev_configure(pid, (uint16_t)n_queues, (uint16_t)n_queues, &econf);
	if (rc) {
		snprintf(err, errlen, "port %s: configure failed: %s", pc->spec, strerror(-rc));
		goto out_pool;
	}
	/* Best effort: a virtual port may not support setting the MTU. */
	(void)rte_eth_dev_set_mtu(pid, c->mtu);

	for (uint16_t q = 0; q < n_queues; q++) {
		uint16_t nrx = PORT_RX_DESC, ntx = PORT_TX_DESC;

		(void)rte_eth_dev_adjust_nb_rx_tx_desc(pid, &nrx, &ntx);
		rc = rte_eth_rx_queue_setup(pid, q, nrx, rte_eth_dev_socket_id(pid), NULL, p->pool);

		if (rc) {
			snprintf(err, errlen, "port %s: RX queue %u setup failed: %s", pc->spec, q,
				 strerror(-rc));
			goto out_close;
		}
		rc = rte_eth_tx_queue_setup(pid, q, ntx, rte_eth_dev_socket_id(pid), NULL);
		if (rc) {
			snprintf(err, errlen, "port %s: TX queue %u setup failed: %s", pc->spec, q,
				 strerror(-rc));
			goto out_close;
		}
		p->queues[q].port = p;
		p->queues[q].port_id = pid;
		p->queues[q].qid = q;
	}
	rc = dev_start(p);
	if (rc && port_restartable(p)) {
		/* No server yet: open it stopped, with its queues paused until
		 * the watchdog has started it (port_watch.c). */
		snprintf(err, errlen, "port %s: not started yet (%s: no memif server on that socket?); "
			 "retrying", pc->spec, strerror(-rc));
		for (uint16_t q = 0; q < n_queues; q++)
			p->queues[q].paused = true;
		return p;
	}
	if (rc) {
		snprintf(err, errlen, "port %s: start failed: %s", pc->spec, strerror(-rc));
		goto out_close;
	}
	return p;

out_close:
	memif_silence(p);
	rte_eth_dev_close(pid);
out_pool:
	rte_mempool_free(p->pool);
	pthread_mutex_destroy(&p->lock);
	free(p);
	return NULL;
}

struct mst_port *port_open(const struct mst_config *c, unsigned index, unsigned n_queues,
			   char *err, size_t errlen)
{
	struct mst_port *p = port_prepare(c, index, n_queues, NULL, err, errlen);

	return p ? port_start(p, c, err, errlen) : NULL;
}

struct mst_queue *port_queue(struct mst_port *p, unsigned qid)
{
	return qid < p->n_queues ? &p->queues[qid] : NULL;
}

/* af_packet and af_xdp report the link they had at start; the kernel
 * interface under them knows better (IFF_UP and IFF_RUNNING). 1 up, 0 down,
 * -errno when it cannot tell. */
static int iface_running(const struct mst_port *p)
{
	struct ifreq ifr;
	int fd, rc;

	if (p->conf->driver != MST_PORT_AF_PACKET && p->conf->driver != MST_PORT_AF_XDP)
		return -ENOTSUP;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, p->conf->iface, strnlen(p->conf->iface, sizeof(ifr.ifr_name) - 1));
	rc = ioctl(fd, SIOCGIFFLAGS, &ifr) ? -errno
					   : (ifr.ifr_flags & (IFF_UP | IFF_RUNNING)) == (IFF_UP | IFF_RUNNING);
	close(fd);
	return rc;
}

void port_get_info(struct mst_port *p, struct port_info *out)
{
	struct rte_ether_addr mac;
	struct rte_eth_link link;
	struct rte_eth_stats st;
	uint16_t mtu = 0;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&p->lock);
	out->started = p->started;
	for (unsigned k = 0; k < MST_PORT__COUNT; k++)
		out->events[k] = __atomic_load_n(&p->events[k], __ATOMIC_RELAXED);
	(void)rte_eth_dev_get_name_by_port(p->port_id, out->name);
	out->driver = mst_port_driver_name(p->conf->driver);
	out->spec = p->conf->spec;
	if (rte_eth_macaddr_get(p->port_id, &mac) == 0)
		memcpy(out->mac, mac.addr_bytes, 6);
	if (p->started && rte_eth_link_get_nowait(p->port_id, &link) == 0) {
		out->link_up = link.link_status == RTE_ETH_LINK_UP && iface_running(p) != 0;
		out->link_speed = link.link_speed;
	}
	(void)rte_eth_dev_get_mtu(p->port_id, &mtu);
	out->mtu = mtu;
	out->n_queues = p->n_queues;
	out->tx_offloads = p->tx_ofl;
	out->rx_offloads = p->rx_ofl;
	out->rss = p->rss;
	if (rte_eth_stats_get(p->port_id, &st) == 0) {
		out->ipackets = st.ipackets;
		out->opackets = st.opackets;
		out->ibytes = st.ibytes;
		out->obytes = st.obytes;
		out->imissed = st.imissed;
		out->ierrors = st.ierrors;
		out->oerrors = st.oerrors;
		out->rx_nombuf = st.rx_nombuf;
	}
	pthread_mutex_unlock(&p->lock);
	for (unsigned q = 0; q < p->n_queues; q++)
		out->rx_multiseg += __atomic_load_n(&p->queues[q].rx_multiseg, __ATOMIC_RELAXED);
}

/*
 * DPDK 22.11's af_xdp PMD (with libxdp) deletes its XDP program and map
 * entries on close but leaves the AF_XDP socket open (strace: no close of
 * it), so the interface queue stays bound to this process and nobody (a
 * live upgrade's new daemon, or this one reopening) can bind it again
 * until we exit (EBUSY). Mustang runs one port, so after closing an
 * af_xdp port no AF_XDP socket of ours is in use: close what is left.
 */
static void close_stray_xsks(void)
{
	DIR *dir = opendir("/proc/self/fd");
	struct dirent *de;

	if (!dir)
		return;
	while ((de = readdir(dir)) != NULL) {
		int fd = atoi(de->d_name), dom = 0;
		socklen_t len = sizeof(dom);

		if (fd > 2 && fd != dirfd(dir) &&
		    getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &dom, &len) == 0 && dom == AF_XDP)
			close(fd);
	}
	closedir(dir);
}

bool port_link_up(struct mst_port *p)
{
	struct rte_eth_link link;
	bool up = false;

	pthread_mutex_lock(&p->lock);
	if (p->started && rte_eth_link_get_nowait(p->port_id, &link) == 0)
		up = link.link_status == RTE_ETH_LINK_UP;
	pthread_mutex_unlock(&p->lock);
	if (up && iface_running(p) == 0)
		up = false;
	return up;
}

bool port_started(struct mst_port *p)
{
	bool started;

	pthread_mutex_lock(&p->lock);
	started = p->started;
	pthread_mutex_unlock(&p->lock);
	return started;
}

/* Caller: every queue of p is paused (see the file header). */
int port_restart(struct mst_port *p)
{
	int rc;

	pthread_mutex_lock(&p->lock);
	if (p->started) {
		/* memif: dev_stop disconnects (frees the regions) if it was not
		 * already; the next dev_start connects the socket again. */
		memif_await_accept(p);
		(void)rte_eth_dev_stop(p->port_id);
		p->started = false;
	}
	rc = dev_start(p);
	pthread_mutex_unlock(&p->lock);
	return rc;
}

void port_count_event(struct mst_port *p, enum mst_port_event ev)
{
	__atomic_store_n(&p->events[ev], p->events[ev] + 1, __ATOMIC_RELAXED);
}

const char *port_name(const struct mst_port *p)
{
	return p->conf->spec;
}

struct mst_port *port_of_queue(const struct mst_queue *q)
{
	return q->port;
}

/*
 * memif, before dev_stop/dev_close: silence every memif socket of ours.
 * DPDK 22.11's memif_socket_remove_device() frees the listener's state
 * without unregistering its interrupt callback or closing its socket, so a
 * client connecting after that (a client retrying, as ours does) made the
 * interrupt thread call the listener handler on freed memory: the segfault
 * seen at SIGTERM. Control channels that close under a teardown race the
 * same way. memif's sockets are our only SOCK_SEQPACKET (type 5) unix
 * sockets (the control socket and a live upgrade's channel to the other
 * daemon are streams, control/takeover.c): put a never-ready eventfd in
 * place of each. The socket closes (a peer sees it go, a client is refused
 * from now on), the interrupt thread stops watching it, and the descriptor
 * number stays valid, so the PMD's own close later cannot hit anything
 * else. The short sleep lets a callback already dispatched finish first.
 */
static void memif_silence(const struct mst_port *p)
{
	char line[512], link[300], target[64];
	unsigned long inodes[64];
	unsigned n_ino = 0, done = 0;
	struct dirent *de;
	DIR *dir;
	FILE *f;

	if (p->conf->driver != MST_PORT_MEMIF)
		return;
	memif_await_accept(p);
	f = fopen("/proc/net/unix", "re");
	if (!f)
		return;
	while (n_ino < RTE_DIM(inodes) && fgets(line, sizeof(line), f)) {
		unsigned long ino;
		unsigned type;

		if (sscanf(line, "%*s %*s %*s %*s %x %*s %lu", &type, &ino) == 2 && type == 5)
			inodes[n_ino++] = ino;
	}
	fclose(f);
	dir = n_ino ? opendir("/proc/self/fd") : NULL;
	if (!dir)
		return;
	while ((de = readdir(dir))) {
		unsigned long ino;
		ssize_t len;
		int efd;

		snprintf(link, sizeof(link), "/proc/self/fd/%s", de->d_name);
		len = readlink(link, target, sizeof(target) - 1);
		if (len <= 0)
			continue;
		target[len] = '\0';
		if (sscanf(target, "socket:[%lu]", &ino) != 1)
			continue;
		for (unsigned i = 0; i < n_ino; i++) {
			if (inodes[i] != ino)
				continue;
			efd = eventfd(0, EFD_CLOEXEC);
			if (efd >= 0) {
				(void)dup2(efd, atoi(de->d_name));
				close(efd);
				done++;
			}
			break;
		}
	}
	closedir(dir);
	if (done)
		usleep(10000);
}

void port_close(struct mst_port *p)
{
	bool xdp;

	if (!p)
		return;
	xdp = p->conf->driver == MST_PORT_AF_XDP;
	memif_silence(p);
	if (p->started)
		(void)rte_eth_dev_stop(p->port_id);
	if (!p->deferred)
		(void)rte_eth_dev_close(p->port_id);
	rte_mempool_free(p->pool);
	pthread_mutex_destroy(&p->lock);
	free(p);
	if (xdp)
		close_stray_xsks();
}

/* ---- queue access: the data path ------------------------------------- */

static inline void pkt_from_mbuf(struct rte_mbuf *m, struct mst_pkt *pk)
{
	uint64_t ol = m->ol_flags;

	pk->data = rte_pktmbuf_mtod(m, uint8_t *);
	pk->len = m->data_len;
	pk->headroom = rte_pktmbuf_headroom(m);
	pk->tailroom = rte_pktmbuf_tailroom(m);
	pk->l2_len = 0;
	pk->l3_len = 0;
	pk->flags = 0;
	if ((ol & RTE_MBUF_F_RX_IP_CKSUM_MASK) == RTE_MBUF_F_RX_IP_CKSUM_GOOD)
		pk->flags |= MST_PKT_RX_IP_CKSUM_GOOD;
	else if ((ol & RTE_MBUF_F_RX_IP_CKSUM_MASK) == RTE_MBUF_F_RX_IP_CKSUM_BAD)
		pk->flags |= MST_PKT_RX_IP_CKSUM_BAD;
	if ((ol & RTE_MBUF_F_RX_L4_CKSUM_MASK) == RTE_MBUF_F_RX_L4_CKSUM_GOOD)
		pk->flags |= MST_PKT_RX_L4_CKSUM_GOOD;
	else if ((ol & RTE_MBUF_F_RX_L4_CKSUM_MASK) == RTE_MBUF_F_RX_L4_CKSUM_BAD)
		pk->flags |= MST_PKT_RX_L4_CKSUM_BAD;
	pk->owner = m;
}

uint16_t mst_queue_rx(struct mst_queue *q, struct mst_pkt **pkts, uint16_t n)
{
	struct rte_mbuf *mb[64];
	uint16_t got, out = 0;

	if (unlikely(q->paused))
		return 0;
	if (n > RTE_DIM(mb))
		n = RTE_DIM(mb);
	got = rte_eth_rx_burst(q->port_id, q->qid, mb, n);
	for (uint16_t i = 0; i < got; i++) {
		struct rte_mbuf *m = mb[i];

		if (i + 1 < got)
			rte_prefetch0(rte_pktmbuf_mtod(mb[i + 1], void *));
		if (unlikely(m->nb_segs != 1)) {
			q->rx_multiseg++;
			rte_pktmbuf_free(m);
			continue;
		}
		pkts[out] = mbuf_pkt(m);
		pkt_from_mbuf(m, pkts[out]);
		out++;
	}
	return out;
}

static inline void mbuf_from_pkt(struct mst_port *port, struct rte_mbuf *m, const struct mst_pkt *pk)
{
	uint64_t ol = 0;

	m->data_off = (uint16_t)(pk->data - (uint8_t *)m->buf_addr);
	m->data_len = pk->len;
	m->pkt_len = pk->len;
	if (pk->flags & MST_PKT_TX_IP_CKSUM)
		ol |= RTE_MBUF_F_TX_IP_CKSUM | RTE_MBUF_F_TX_IPV4;
	if (pk->flags & MST_PKT_TX_UDP_CKSUM)
		ol |= RTE_MBUF_F_TX_UDP_CKSUM | RTE_MBUF_F_TX_IPV4;
	if (pk->flags & MST_PKT_TX_TCP_CKSUM)
		ol |= RTE_MBUF_F_TX_TCP_CKSUM | RTE_MBUF_F_TX_IPV4;
	ol &= port->tx_ol_mask;
	m->ol_flags = ol;
	if (ol) {
		m->l2_len = pk->l2_len;
		m->l3_len = pk->l3_len;
	}
}

uint16_t mst_queue_tx(struct mst_queue *q, struct mst_pkt **pkts, uint16_t n)
{
	struct rte_mbuf *mb[64];

	if (unlikely(q->paused))
		return 0; /* the caller frees what was not sent */
	if (n > RTE_DIM(mb))
		n = RTE_DIM(mb);
	for (uint16_t i = 0; i < n; i++) {
		mb[i] = pkts[i]->owner;
		mbuf_from_pkt(q->port, mb[i], pkts[i]);
	}
	return rte_eth_tx_burst(q->port_id, q->qid, mb, n);
}

struct mst_pkt *mst_queue_alloc(struct mst_queue *q)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(q->port->pool);
	struct mst_pkt *pk;

	if (unlikely(!m))
		return NULL;
	pk = mbuf_pkt(m);
	pkt_from_mbuf(m, pk);
	return pk;
}

void mst_queue_free(struct mst_queue *q, struct mst_pkt *p)
{
	(void)q;
	rte_pktmbuf_free((struct rte_mbuf *)p->owner);
}

uint32_t mst_queue_tx_offloads(const struct mst_queue *q)
{
	return q->port->tx_ofl;
}

uint32_t mst_queue_rx_offloads(const struct mst_queue *q)
{
	return q->port->rx_ofl;
}
