/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The daemon's state, shared by mustangd.c (start-up, control requests,
 * shutdown) and takeover.c (live upgrade between two processes). Internal.
 */
#ifndef MST_CONTROL_DAEMON_H
#define MST_CONTROL_DAEMON_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <mustang/engine.h>

#include "control/apps.h"
#include "control/config.h"
#include "control/ctl_server.h"
#include "engines/port.h"
#include "engines/port_watch.h"
#include "engines/runtime.h"

struct daemon {
	struct mst_config conf;
	struct mst_port *ports[MST_MAX_PORTS];
	unsigned n_ports;
	void *engines[MST_MAX_ENGINES];
	struct mst_engine_conf econf[MST_MAX_ENGINES]; /* what each was created with */
	struct mst_queue *equeue[MST_MAX_ENGINES];
	uint64_t restarts[MST_MAX_ENGINES];            /* handovers that committed */
	uint64_t last_blackout_ns[MST_MAX_ENGINES];
	const struct mst_engine_ops *ops;
	unsigned n_engines;
	struct rt_group group;
	struct ctl_server *ctl;
	struct port_watch *watch;                      /* link watchdog (port_watch.c) */
	struct apps *apps;
	uint64_t start_ns;
	bool eal_up;
	int argc;                                      /* as started: an upgrade */
	char **argv;                                   /*   starts its successor so */
	char exe[4096];                                /* our binary's path at start-up */
	bool handed_over;                              /* a successor serves everything now */
	int takeover_fd;                               /* successor: channel to the old daemon, -1 */
	struct flows *flows;                           /* flow records (flows.c), NULL: off */
	struct metrics_http *metrics_http;             /* --metrics-listen (metrics.c), NULL: off */
	pthread_mutex_t engines_lock;                  /* engines[] swapped (restart) vs metrics readers */
};

/* mustangd.c, for takeover.c */
void daemon_engine_conf(const struct daemon *d, unsigned i, const uint8_t mac[6], uint32_t tx_ofl,
			uint32_t rx_ofl, struct mst_engine_conf *out);
int daemon_apps_create(struct daemon *d);
/* The port watchdog (link events, memif reconnects); stopped while an
 * upgrade moves the port. */
int daemon_watch_start(struct daemon *d);
int daemon_ctl_handle(void *ctx, enum mst_ctl_req req, const char *arg, struct emit *e);
extern const struct ctl_app_hooks daemon_app_hooks;
void daemon_log(enum mst_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
