/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mustangd configuration: defaults, then the config file, then the command
 * line (each command-line option overrides the same key from the file).
 * Documented for users in docs/config.md. Pure C, no DPDK: unit tested.
 *
 * Every failure is one line in `err` naming the offending option, file:line
 * or value, and a negative errno; nothing is started before parsing succeeds.
 */
#ifndef MST_CONTROL_CONFIG_H
#define MST_CONTROL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MST_MAX_PORTS 8
#define MST_MAX_ENGINES 64
#define MST_MAX_CORES 256
#define MST_PORT_ARGS_MAX 256

/* Built-in services (mst_config.services bits). Equal to transport/net's
 * NET_SVC_* bits, so the daemon passes the mask through unchanged. */
#define MST_SVC_ECHO (1u << 0) /* == NET_SVC_ECHO / TCP_SVC_ECHO: echo, RFC 862 (UDP and TCP 7) */
#define MST_SVC_DISCARD (1u << 1) /* == TCP_SVC_DISCARD: TCP 9, RFC 863 */
#define MST_SVC_CHARGEN (1u << 2) /* == TCP_SVC_CHARGEN: TCP 19, RFC 864 */

enum mst_port_driver {
	MST_PORT_AF_XDP,    /* af_xdp:iface=NAME[,queues=N] */
	MST_PORT_AF_PACKET, /* af_packet:iface=NAME */
	MST_PORT_MEMIF,     /* memif:socket=PATH,role=server|client */
	MST_PORT_RING,      /* ring (loopback, tests) */
	MST_PORT_NULL,      /* null (sink, tests) */
	MST_PORT_PCI,       /* pci:BDF e.g. pci:0000:03:00.0 */
};

struct mst_port_conf {
	enum mst_port_driver driver;
	char spec[MST_PORT_ARGS_MAX];  /* as the user wrote it, for messages */
	char iface[64];                /* af_xdp, af_packet */
	char socket[108];              /* memif */
	bool memif_server;             /* memif role */
	char pci[32];                  /* pci BDF */
};

enum mst_sched_mode {
	MST_MODE_DEDICATED,  /* one pinned thread per engine, spins */
	MST_MODE_SPREADING,  /* one thread per engine, sleeps when idle */
	MST_MODE_COMPACTING, /* engines packed on few threads, grows/shrinks */
};

enum mst_log_level { MST_LOG_ERR, MST_LOG_WARN, MST_LOG_INFO, MST_LOG_DEBUG };

struct mst_config {
	struct mst_port_conf ports[MST_MAX_PORTS];
	unsigned n_ports;
	uint32_t ip;                   /* network order; 0 = unset (error at validate) */
	uint8_t prefix_len;
	uint32_t gw;                   /* network order; 0 = none */
	uint16_t mtu;                  /* default 1500 */
	unsigned engines;              /* default 1 */
	enum mst_sched_mode mode;      /* default spreading */
	uint16_t cores[MST_MAX_CORES]; /* CPU list for engines; empty = any */
	unsigned n_cores;
	char ctl_path[108];            /* default MST_CTL_DEFAULT_PATH */
	enum mst_log_level log_level;  /* default info */
	uint32_t services;             /* MST_SVC_* (== NET_SVC_*) bits */
	bool hugepages;                /* default false: --no-huge */
	unsigned mem_mb;               /* EAL memory, default 512 */
	unsigned mbufs;                /* mbufs per port, default 8192 */
	unsigned idle_sleep_max_us;    /* spreading/compacting back-off cap, default 200 */
	unsigned compact_bound_us;     /* compacting: queueing-delay bound, default 100 */
	uint32_t arp_timeout_ms;       /* default 60000 */
	/* TCP */
	char tcp_cc[16];               /* congestion control, default "cubic" */
	uint32_t tcp_rcvbuf;           /* RX FIFO bytes per connection, default 262144 */
	uint32_t tcp_sndbuf;           /* TX FIFO bytes per connection, default 262144 */
	uint32_t tcp_max_conns;        /* control blocks per engine, default 131072 */
	uint32_t tcp_timewait_ms;      /* 2*MSL, default 60000 */
	uint32_t tcp_rto_min_ms;       /* default 200 */
	uint32_t tcp_rto_max_ms;       /* default 60000 */
	bool tcp_syncookies;           /* default yes */
	uint16_t tcp_eph_lo, tcp_eph_hi; /* ephemeral ports, inclusive, default 32768-60999 */
	uint32_t tcp_tw_reuse_delay_ms; /* active opens reuse our TIME_WAIT after this, default 1000 */
	unsigned app_arena_mb;         /* FIFO arena per attached app, MiB (sparse), default 1024 */
	/* Pony (transport/pony; 0 in a CC/timer field = the transport's default) */
	uint16_t pony_port;            /* UDP port, default 7400; 0 = Pony off */
	uint32_t pony_max_msg;         /* largest message / READ, bytes, default 16 MiB */
	unsigned pony_buf_mb;          /* Pony arena per attached app, MiB (sparse), default 128 */
	uint32_t pony_target_us;       /* CC target delay */
	uint32_t pony_ai_milli;        /* CC additive increase, packets per RTT x1000 */
	uint32_t pony_beta_milli;      /* CC decrease scale x1000 */
	uint32_t pony_max_mdf_milli;   /* CC largest single decrease x1000 */
	uint32_t pony_init_cwnd;       /* packets */
	uint32_t pony_window_pkts;     /* packets in flight per flow, cap */
	uint32_t pony_rto_min_us, pony_rto_max_us;
	uint32_t pony_fs_range_us;     /* CC flow scaling: extra target at cwnd 1 */
	uint32_t pony_fs_max_cwnd;     /* CC flow scaling: none from this cwnd up */
	uint32_t pony_peer_share;      /* messages one peer may hold, of 4096 */
	uint32_t pony_local_reserve;   /* messages only our own sends and READs may take */
	uint32_t pony_rx_stall_ms;     /* partial messages with no progress: flow reset */
	/* Observability (docs/observability.md) */
	char flow_log[256];            /* "" off (default), "on" control socket only, or a file */
	uint32_t flow_log_max_mb;      /* rotate the file past this, default 64 */
	uint32_t flow_interval_s;      /* records of open flows every N s, 0 = at close only; default 60 */
	uint32_t flow_ring;            /* records per engine ring, power of 2, default 4096 */
	char metrics_listen[64];       /* "ADDR:PORT" of the Prometheus HTTP listener, "" = none */
};

/* Fill *c with the defaults. */
void mst_config_defaults(struct mst_config *c);

/* Parse one "key = value" (file keys are the long option names without "--").
 * `where` prefixes messages (e.g. "mustang.conf:12" or "--mtu"). */
int mst_config_set(struct mst_config *c, const char *key, const char *value,
		   const char *where, char *err, size_t errlen);

/* Load a config file: "key = value" lines, '#' comments, blank lines. */
int mst_config_load_file(struct mst_config *c, const char *path, char *err, size_t errlen);

/* Full command line: defaults, --config FILE (if given, wherever it is),
 * then every other option in order. --help / --version return 1 after
 * printing to stdout. */
int mst_config_from_args(struct mst_config *c, int argc, char **argv, char *err, size_t errlen);

/* Cross-field checks (ip set, engines vs cores, at least one port, ...). */
int mst_config_validate(const struct mst_config *c, char *err, size_t errlen);

const char *mst_sched_mode_name(enum mst_sched_mode m);
const char *mst_port_driver_name(enum mst_port_driver d);

#endif /* MST_CONTROL_CONFIG_H */
