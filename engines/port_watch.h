/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Port watchdog: a control-plane thread that keeps ports up.
 *
 * port_watch_start() (after the engines run) -> every PORT_WATCH_TICK_MS:
 * read each port's link -> count and log transitions -> on each up, call
 * conf.link_up (mustangd: engine 0 announces itself with a gratuitous ARP)
 * -> a restartable port (memif client) that is down or not started is
 * restarted with back-off: pause its queues on their engines, stop + start,
 * resume -> port_watch_stop() (before the engines stop).
 *
 * Internal header: the daemon only.
 */
#ifndef MST_ENGINES_PORT_WATCH_H
#define MST_ENGINES_PORT_WATCH_H

#include "engines/port.h"
#include "engines/runtime.h"

#define PORT_WATCH_TICK_MS 10
#define PORT_WATCH_BACKOFF_MIN_MS 50    /* first retry after a failed start */
#define PORT_WATCH_BACKOFF_MAX_MS 500   /* retries at least twice a second */
#define PORT_WATCH_CONNECT_MS 2000      /* a handshake in progress gets this long */
#define PORT_WATCH_HALF_OPEN_MS 200     /* server side gone this long while we read up */
#define PORT_WATCH_FAST_MS 2000         /* after a link-down: look for the server every tick */

struct port_watch;

struct port_watch_conf {
	struct mst_port *const *ports;
	unsigned n_ports;
	struct rt_group *group;            /* engines whose queues are on these ports */
	void (*link_up)(void *ctx, unsigned port);    /* on the watchdog thread */
	void (*log)(void *ctx, int level, const char *msg); /* MST_LOG_* level */
	void *ctx;
};

/* NULL with errno set if the thread cannot be started. */
struct port_watch *port_watch_start(const struct port_watch_conf *conf);
/* Joins the thread; leaves every queue unpaused if its port is started. */
void port_watch_stop(struct port_watch *w);

#endif /* MST_ENGINES_PORT_WATCH_H */
