/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mustangd: the Mustang daemon (a DPDK primary process).
 *
 * main(): parse config (defaults < file < command line) -> refuse if another
 * daemon owns the control socket -> block SIGTERM/SIGINT (every thread
 * inherits the mask; only main waits for them) -> rte_eal_init() -> open
 * ports (a memif client without a server opens not started) -> create the
 * engines and attach one queue pair each -> start the engine group -> start
 * the port watchdog (port_watch.c: link events, memif reconnects) -> start
 * the control server -> sigwait() -> tear down in reverse order -> exit 0.
 *
 * The control handler (daemon_ctl_handle) runs on the control thread and only
 * reads engine counters with relaxed loads; it never touches engine state.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_version.h>

#include <mustang/ctl.h>
#include <mustang/engine.h>

#include "control/apps.h"
#include "control/config.h"
#include "control/daemon.h"
#include "control/ctl_server.h"
#include "control/emit.h"
#include "control/flows.h"
#include "control/metrics.h"
#include "control/takeover.h"
#include "control/upgrade.h"
#include "engines/builtin.h"
#include "engines/port.h"
#include "engines/port_watch.h"
#include "transport/pony/pony.h"
#include "engines/runtime.h"
#include "transport/net/net.h"
#include "transport/tcp/tcp.h"

#define EAL_ARGV_MAX 64



static enum mst_log_level log_level = MST_LOG_INFO;

void daemon_log(enum mst_log_level lvl, const char *fmt, ...)
{
	static const char *const tag[] = { "error", "warning", "info", "debug" };
	va_list ap;

	if (lvl > log_level)
		return;
	fprintf(stderr, "mustangd: %s: ", tag[lvl]);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---- control requests -------------------------------------------------- */

static void emit_mac(struct emit *e, const char *key, const uint8_t m[6])
{
	emit_strf(e, key, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
}

static void emit_ip(struct emit *e, const char *key, uint32_t ip)
{
	char buf[INET_ADDRSTRLEN];

	emit_str(e, key, inet_ntop(AF_INET, &ip, buf, sizeof(buf)));
}

static void emit_offloads(struct emit *e, const char *key, uint32_t ofl)
{
	emit_strf(e, key, "%s%s%s%s", ofl & NET_OFL_IPV4_CKSUM ? "ipv4-cksum " : "",
		  ofl & NET_OFL_UDP_CKSUM ? "udp-cksum " : "", ofl & NET_OFL_TCP_CKSUM ? "tcp-cksum" : "",
		  ofl ? "" : "none (software)");
}

static void emit_status(struct daemon *d, struct emit *e)
{
	const struct mst_config *c = &d->conf;

	emit_str(e, "version", "0.1.0");
	emit_str(e, "dpdk", rte_version());
	emit_i64(e, "pid", (int64_t)getpid());
	emit_u64(e, "uptime_s", (rt_now_ns() - d->start_ns) / 1000000000ull);
	emit_strf(e, "address", "%u.%u.%u.%u/%u", ((uint8_t *)&c->ip)[0], ((uint8_t *)&c->ip)[1],
		  ((uint8_t *)&c->ip)[2], ((uint8_t *)&c->ip)[3], c->prefix_len);
	if (c->gw)
		emit_ip(e, "gateway", c->gw);
	emit_u64(e, "mtu", c->mtu);
	emit_str(e, "mode", mst_sched_mode_name(c->mode));
	emit_u64(e, "engines", d->n_engines);
	emit_u64(e, "ports", d->n_ports);
	emit_strf(e, "services", "%s%s%s%s", c->services & MST_SVC_ECHO ? "echo " : "",
		  c->services & MST_SVC_DISCARD ? "discard " : "",
		  c->services & MST_SVC_CHARGEN ? "chargen" : "", c->services ? "" : "none");
	emit_str(e, "tcp_cc", c->tcp_cc);
	emit_u64(e, "apps", d->apps ? apps_count(d->apps) : 0);
	emit_bool(e, "hugepages", c->hugepages);
	emit_str(e, "control_socket", c->ctl_path);
}

static void emit_ports(struct daemon *d, struct emit *e)
{
	emit_arr_begin(e, "ports");
	for (unsigned i = 0; i < d->n_ports; i++) {
		struct port_info pi;

		port_get_info(d->ports[i], &pi);
		emit_obj_begin(e, NULL);
		emit_str(e, "name", pi.name);
		emit_str(e, "driver", pi.driver);
		emit_str(e, "spec", pi.spec);
		emit_mac(e, "mac", pi.mac);
		emit_str(e, "link", pi.link_up ? "up" : "down");
		emit_bool(e, "started", pi.started);
		emit_u64(e, "speed_mbps", pi.link_speed);
		emit_u64(e, "mtu", pi.mtu);
		emit_u64(e, "queues", pi.n_queues);
		emit_bool(e, "rss", pi.rss);
		emit_offloads(e, "tx_offloads", pi.tx_offloads);
		emit_offloads(e, "rx_offloads", pi.rx_offloads);
		emit_obj_begin(e, "counters");
		emit_u64(e, "rx_packets", pi.ipackets);
		emit_u64(e, "rx_bytes", pi.ibytes);
		emit_u64(e, "tx_packets", pi.opackets);
		emit_u64(e, "tx_bytes", pi.obytes);
		emit_u64(e, "rx_missed", pi.imissed);
		emit_u64(e, "rx_errors", pi.ierrors);
		emit_u64(e, "tx_errors", pi.oerrors);
		emit_u64(e, "rx_nombuf", pi.rx_nombuf);
		emit_u64(e, "rx_multiseg_dropped", pi.rx_multiseg);
		for (unsigned k = 0; k < MST_PORT__COUNT; k++)
			emit_u64(e, mst_port_event_names[k], pi.events[k]);
		emit_obj_end(e);
		emit_obj_end(e);
	}
	emit_arr_end(e);
}

static void emit_load(struct emit *e, const uint64_t load[MST_LOAD__COUNT])
{
	emit_obj_begin(e, "load");
	for (unsigned k = 0; k < MST_LOAD__COUNT; k++)
		emit_u64(e, mst_load_names[k], load[k]);
	emit_obj_end(e);
}

static void emit_engines(struct daemon *d, struct emit *e)
{
	struct rt_group *g = &d->group;

	emit_str(e, "mode", mst_sched_mode_name(g->mode));
	if (g->mode == MST_MODE_COMPACTING) {
		emit_u64(e, "workers", g->n_workers);
		emit_u64(e, "active_workers", atomic_load(&g->active));
		emit_u64(e, "grows", g->grows);
		emit_u64(e, "shrinks", g->shrinks);
	}
	emit_arr_begin(e, "engines");
	for (unsigned i = 0; i < g->n_engines; i++) {
		const struct rt_engine *re = &g->engines[i];
		uint64_t load[MST_LOAD__COUNT];
		uint64_t polls;

		rt_engine_load(re, load);
		polls = load[MST_LOAD_polls];
		emit_obj_begin(e, NULL);
		emit_u64(e, "id", re->id);
		emit_str(e, "kind", re->ops->kind);
		emit_u64(e, "queue", i);
		if (re->cpu >= 0)
			emit_i64(e, "cpu", re->cpu);
		else
			emit_str(e, "cpu", "any");
		emit_u64(e, "thread", rt_engine_worker(g, re));
		emit_u64(e, "restarts", d->restarts[i]);
		emit_u64(e, "last_blackout_us", d->last_blackout_ns[i] / 1000);
		emit_double(e, "busy_poll_pct", polls ? 100.0 * (double)load[MST_LOAD_busy_polls] / (double)polls : 0.0);
		emit_load(e, load);
		emit_obj_end(e);
	}
	emit_arr_end(e);
}

static void emit_counter_set(struct emit *e, const uint64_t *ctr, const uint64_t *drop)
{
	emit_obj_begin(e, "counters");
	for (unsigned k = 0; k < MST_CTR__COUNT; k++)
		emit_u64(e, mst_counter_names[k], ctr[k]);
	emit_obj_end(e);
	emit_obj_begin(e, "drops");
	for (unsigned k = 0; k < MST_DROP__COUNT; k++)
		emit_u64(e, mst_drop_names[k], drop[k]);
	emit_obj_end(e);
}

static void emit_stats(struct daemon *d, struct emit *e)
{
	uint64_t tot_ctr[MST_CTR__COUNT] = { 0 }, tot_drop[MST_DROP__COUNT] = { 0 };
	uint64_t load[MST_LOAD__COUNT];

	emit_ports(d, e);
	emit_arr_begin(e, "engines");
	for (unsigned i = 0; i < d->n_engines; i++) {
		const struct mst_stats *st = d->ops->stats(d->engines[i]);
		uint64_t ctr[MST_CTR__COUNT], drop[MST_DROP__COUNT];

		for (unsigned k = 0; k < MST_CTR__COUNT; k++)
			tot_ctr[k] += ctr[k] = __atomic_load_n(&st->ctr[k], __ATOMIC_RELAXED);
		for (unsigned k = 0; k < MST_DROP__COUNT; k++)
			tot_drop[k] += drop[k] = __atomic_load_n(&st->drop[k], __ATOMIC_RELAXED);
		emit_obj_begin(e, NULL);
		emit_u64(e, "id", i);
		emit_counter_set(e, ctr, drop);
		rt_engine_load(&d->group.engines[i], load);
		emit_load(e, load);
		emit_obj_end(e);
	}
	emit_arr_end(e);
	emit_obj_begin(e, "totals");
	emit_counter_set(e, tot_ctr, tot_drop);
	emit_obj_end(e);
	if (d->ctl) {
		uint64_t c[CTL_CTR__COUNT];

		ctl_server_counters(d->ctl, c);
		emit_obj_begin(e, "control");
		for (unsigned k = 0; k < CTL_CTR__COUNT; k++)
			emit_u64(e, ctl_counter_names[k], c[k]);
		emit_obj_end(e);
	}
}

#define CONNS_MAX 65536 /* per engine, per request */

struct conns_req {
	struct tcp_conn_info *out;
	unsigned max, total;
};

static void conns_work(void *eng, void *arg)
{
	struct conns_req *r = arg;

	r->total = net_engine_conns(eng, r->out, r->max);
}

static void emit_addr(struct emit *e, const char *key, uint32_t ip, uint16_t port)
{
	const uint8_t *b = (const uint8_t *)&ip;

	emit_strf(e, key, "%u.%u.%u.%u:%u", b[0], b[1], b[2], b[3], port);
}

static int emit_conns(struct daemon *d, struct emit *e)
{
	struct conns_req r = { .max = CONNS_MAX };
	uint64_t total = 0;

	r.out = malloc(sizeof(*r.out) * CONNS_MAX);
	if (!r.out)
		return -ENOMEM;
	emit_arr_begin(e, "connections");
	for (unsigned i = 0; i < d->n_engines; i++) {
		int rc = rt_engine_call(&d->group, i, conns_work, &r, 2000);

		if (rc) {
			emit_arr_end(e);
			emit_strf(e, "error", "engine %u did not answer: %s", i, strerror(-rc));
			free(r.out);
			return 0;
		}
		total += r.total;
		for (unsigned k = 0; k < r.total && k < r.max; k++) {
			const struct tcp_conn_info *c = &r.out[k];

			emit_obj_begin(e, NULL);
			emit_u64(e, "engine", i);
			emit_str(e, "state", tcp_state_names[c->state]);
			emit_addr(e, "local", c->laddr, c->lport);
			emit_addr(e, "remote", c->raddr, c->rport);
			emit_u64(e, "mss", c->mss);
			emit_u64(e, "cwnd", c->cwnd);
			emit_u64(e, "ssthresh", c->ssthresh);
			emit_u64(e, "snd_wnd", c->snd_wnd);
			emit_u64(e, "rcv_wnd", c->rcv_wnd);
			emit_u64(e, "srtt_us", c->srtt_us);
			emit_u64(e, "rto_ms", c->rto_ms);
			emit_u64(e, "retransmits", c->retransmits);
			emit_u64(e, "bytes_acked", c->bytes_acked);
			emit_u64(e, "bytes_received", c->bytes_received);
			emit_strf(e, "options", "%s%s ws %u/%u", c->sack ? "sack " : "",
				  c->timestamps ? "ts" : "", c->snd_wscale, c->rcv_wscale);
			emit_obj_end(e);
		}
	}
	emit_arr_end(e);
	emit_u64(e, "total", total);
	free(r.out);
	return 0;
}

#define PONY_FLOWS_MAX 4096 /* per engine, per request */

struct pony_req {
	struct pony_flow_info *out;
	unsigned max, total;
	int port;
};

static void pony_work(void *eng, void *arg)
{
	struct pony_req *r = arg;

	r->total = net_engine_pony_flows(eng, r->out, r->max, &r->port);
}

/* Pony lives on engine 0 (app_pony.c): ask it for its flows. */
static int emit_pony(struct daemon *d, struct emit *e)
{
	struct pony_req r = { .max = PONY_FLOWS_MAX };
	int rc;

	r.out = malloc(sizeof(*r.out) * PONY_FLOWS_MAX);
	if (!r.out)
		return -ENOMEM;
	rc = d->n_engines ? rt_engine_call(&d->group, 0, pony_work, &r, 2000) : -ENODEV;
	if (rc) {
		emit_strf(e, "error", "engine 0 did not answer: %s", strerror(-rc));
		free(r.out);
		return 0;
	}
	emit_u64(e, "port", (uint64_t)r.port);
	emit_str(e, "enabled", r.port ? "yes" : "no");
	emit_arr_begin(e, "flows");
	for (unsigned k = 0; k < r.total && k < r.max; k++) {
		const struct pony_flow_info *f = &r.out[k];

		emit_obj_begin(e, NULL);
		emit_addr(e, "peer", f->peer, (uint16_t)r.port);
		emit_u64(e, "srtt_us", f->srtt_us);
		emit_u64(e, "rttvar_us", f->rttvar_us);
		emit_u64(e, "min_rtt_us", f->min_rtt_us);
		emit_strf(e, "cwnd", "%u.%03u", f->cwnd_milli / 1000, f->cwnd_milli % 1000);
		emit_u64(e, "rate_bps", f->rate_bps);
		emit_u64(e, "inflight_pkts", f->inflight_pkts);
		emit_u64(e, "peer_credits", f->peer_credits);
		emit_u64(e, "streams", f->streams);
		emit_u64(e, "tx_msgs_queued", f->tx_msgs_queued);
		emit_u64(e, "rx_msgs_partial", f->rx_msgs_partial);
		emit_u64(e, "tx_pkts", f->tx_pkts);
		emit_u64(e, "rx_pkts", f->rx_pkts);
		emit_u64(e, "tx_bytes", f->tx_bytes);
		emit_u64(e, "rx_bytes", f->rx_bytes);
		emit_u64(e, "retransmits", f->retransmits);
		emit_u64(e, "timeouts", f->timeouts);
		emit_u64(e, "msgs_sent", f->msgs_sent);
		emit_u64(e, "msgs_delivered", f->msgs_delivered);
		emit_u64(e, "idle_ms", f->idle_ns / 1000000);
		emit_obj_end(e);
	}
	emit_arr_end(e);
	emit_u64(e, "total", r.total);
	free(r.out);
	return 0;
}

/* "ID [fail=STEP]" (fail=: test only, makes that step fail). */
static int parse_restart_arg(struct daemon *d, const char *arg, struct upg_restart *r,
			     struct emit *e)
{
	char *end;
	unsigned long id;

	errno = 0;
	id = strtoul(arg ? arg : "", &end, 10);
	if (!arg || arg[0] < '0' || arg[0] > '9' || errno || id >= d->n_engines ||
	    (*end && *end != ' ')) {
		emit_strf(e, "error", "engine restart wants an engine id 0..%u, not \"%s\"",
			  d->n_engines ? d->n_engines - 1 : 0, arg ? arg : "");
		return -EINVAL;
	}
	r->id = (unsigned)id;
	r->fail_at = -1;
	while (*end == ' ')
		end++;
	if (!strncmp(end, "fail=", 5)) {
		r->fail_at = upg_step_by_name(end + 5);
		if (r->fail_at < 0) {
			emit_strf(e, "error", "unknown step \"%s\"", end + 5);
			return -EINVAL;
		}
	} else if (*end) {
		emit_strf(e, "error", "unexpected argument \"%s\"", end);
		return -EINVAL;
	}
	return 0;
}

static int engine_restart(struct daemon *d, const char *arg, struct emit *e)
{
	struct mst_app apps[APPS_MAX];
	struct upg_restart r = { 0 };
	int rc = parse_restart_arg(d, arg, &r, e);

	if (rc)
		return rc;
	r.ops = d->ops;
	r.conf = d->econf[r.id];
	r.queue = d->equeue[r.id];
	/* Apps are served by engine 0. */
	r.apps = apps;
	r.n_apps = r.id == 0 && d->apps ? apps_list(d->apps, apps, APPS_MAX) : 0;
	pthread_mutex_lock(&d->engines_lock); /* metrics.c reads d->engines[] */
	rc = upg_engine_restart(&d->group, &r);
	if (!rc)
		d->engines[r.id] = d->group.engines[r.id].eng;
	pthread_mutex_unlock(&d->engines_lock);
	if (rc) {
		emit_bool(e, "ok", false);
		emit_str(e, "failed_step", upg_step_names[r.failed]);
		emit_strf(e, "error", "engine %u: %s failed: %s%s%s", r.id, upg_step_names[r.failed],
			  strerror(-rc), r.failed == UPG_STEP_export ? upg_export_hint(rc) : "",
			  r.rolled_back ? " (rolled back: the old engine resumed)" : "");
		daemon_log(MST_LOG_WARN, "engine %u restart: %s failed: %s%s", r.id,
		       upg_step_names[r.failed], strerror(-rc), r.rolled_back ? ", rolled back" : "");
		return rc;
	}
	d->restarts[r.id]++;
	d->last_blackout_ns[r.id] = r.blackout_ns;
	emit_bool(e, "ok", true);
	emit_u64(e, "engine", r.id);
	emit_u64(e, "blackout_us", r.blackout_ns / 1000);
	emit_u64(e, "export_us", r.export_ns / 1000);
	emit_u64(e, "import_us", r.import_ns / 1000);
	emit_u64(e, "brownout_ms", r.create_ns / 1000000);
	emit_u64(e, "state_bytes", r.state_bytes);
	emit_u64(e, "drain_wait_ms", r.drain_wait_ms);
	emit_u64(e, "apps", r.n_apps);
	daemon_log(MST_LOG_INFO, "engine %u restarted: blackout %llu us, state %zu bytes", r.id,
	       (unsigned long long)(r.blackout_ns / 1000), r.state_bytes);
	return 0;
}

/* Pre-formatted lines (flows.c): the text rendering only. */
static int flows_answer(struct daemon *d, const char *arg, struct emit *e)
{
	char *out;
	size_t len;
	int rc;

	if (e->json) {
		emit_str(e, "error", "flows: ask without the JSON flag and with \"json\" in the argument");
		return -EINVAL;
	}
	rc = flows_query(d->flows, arg, &out, &len);
	if (out)
		emit_raw(e, out, len);
	free(out);
	return rc;
}

int daemon_ctl_handle(void *ctx, enum mst_ctl_req req, const char *arg, struct emit *e)
{
	struct daemon *d = ctx;

	switch (req) {
	case MST_CTL_status:
		emit_status(d, e);
		return 0;
	case MST_CTL_ports:
		emit_ports(d, e);
		return 0;
	case MST_CTL_engines:
		emit_engines(d, e);
		return 0;
	case MST_CTL_stats:
		emit_stats(d, e);
		return 0;
	case MST_CTL_conns:
		return emit_conns(d, e);
	case MST_CTL_pony:
		return emit_pony(d, e);
	case MST_CTL_engine_restart:
		return engine_restart(d, arg, e);
	case MST_CTL_upgrade:
		return tko_upgrade(d, arg, e);
	case MST_CTL_takeover:
		return tko_takeover_request(d, e);
	case MST_CTL_attach:
		return -EINVAL; /* the server routes attach to the app hooks */
	case MST_CTL_flows:
		return flows_answer(d, arg, e);
	case MST_CTL_metrics:
		return metrics_answer(d, e);
	}
	return -EOPNOTSUPP;
}

/* ---- apps --------------------------------------------------------------- */

static void app_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void app_log(const char *fmt, ...)
{
	char buf[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	daemon_log(MST_LOG_INFO, "%s", buf);
}

static int hook_attach(void *ctx, unsigned client, pid_t pid, uid_t uid, int *fds, unsigned max,
		       unsigned *n_fds, char *payload, size_t payload_len)
{
	struct daemon *d = ctx;
	int rc = apps_attach(d->apps, client, pid, uid, fds, max, n_fds, payload, payload_len);
	int id;

	if (rc == 0 && d->flows && sscanf(payload, "app_id %d", &id) == 1)
		flows_app(d->flows, id, pid);
	return rc;
}

static void hook_detach(void *ctx, unsigned client)
{
	struct daemon *d = ctx;

	apps_detach(d->apps, client);
}

const struct ctl_app_hooks daemon_app_hooks = { .attach = hook_attach, .detach = hook_detach };

int daemon_apps_create(struct daemon *d)
{
	struct apps_conf ac = {
		.group = &d->group,
		.ops = mst_engine_lookup("net"),
		.local_ip = d->conf.ip,
		.arena_mb = d->conf.app_arena_mb,
		.pony_mb = d->conf.pony_port ? d->conf.pony_buf_mb : 0,
		.pony_max_msg = d->conf.pony_port ? d->conf.pony_max_msg : 0,
		.log = app_log,
	};

	d->apps = apps_create(&ac);
	return d->apps ? 0 : -ENOMEM;
}

/* ---- port watchdog ------------------------------------------------------ */

static void announce_work(void *eng, void *arg)
{
	(void)arg;
	net_engine_announce(eng);
}

/* The link came (back) up: engine 0 announces us (the one GARP at start
 * may have gone out before the link was up, and a restarted memif peer has
 * a new MAC: its own announcement updates our cache). */
static void watch_link_up(void *ctx, unsigned port)
{
	struct daemon *d = ctx;

	(void)port;
	if (rt_engine_call(&d->group, 0, announce_work, NULL, 2000))
		daemon_log(MST_LOG_WARN, "engine 0 did not take the link-up announcement");
}

static void watch_log(void *ctx, int level, const char *msg)
{
	(void)ctx;
	daemon_log((enum mst_log_level)level, "%s", msg);
}

int daemon_watch_start(struct daemon *d)
{
	struct port_watch_conf wc = {
		.ports = d->ports,
		.n_ports = d->n_ports,
		.group = &d->group,
		.link_up = watch_link_up,
		.log = watch_log,
		.ctx = d,
	};

	d->watch = port_watch_start(&wc);
	if (!d->watch) {
		daemon_log(MST_LOG_ERR, "cannot start the port watchdog: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

/* ---- start-up and shutdown --------------------------------------------- */

/* Fail early, before EAL, when another daemon answers on the socket. */
static int ctl_path_in_use(const char *path)
{
	int fd = ctl_client_connect(path, 500);

	if (fd >= 0) {
		close(fd);
		return 1;
	}
	return 0;
}

static int eal_start(struct daemon *d)
{
	static char store[4096], mem[16], prefix[32], loglvl[32];
	char *argv[EAL_ARGV_MAX];
	int argc = 0, rc;
	cpu_set_t saved;
	static const char *const dpdk_level[] = { "4", "5", "5", "8" };

	argv[argc++] = (char *)"mustangd";
	/* A private file prefix so that several daemons coexist. Without
	 * hugepages EAL runs in legacy memory mode, which --in-memory refuses;
	 * --no-shconf keeps it from writing a shared config, and teardown()
	 * removes the (then empty) runtime directory. */
	snprintf(prefix, sizeof(prefix), "--file-prefix=mst%d", (int)getpid());
	argv[argc++] = prefix;
	argv[argc++] = (char *)"--no-telemetry";
	if (d->conf.hugepages) {
		argv[argc++] = (char *)"--in-memory";
	} else {
		argv[argc++] = (char *)"--no-huge";
		argv[argc++] = (char *)"--no-shconf";
	}
	snprintf(mem, sizeof(mem), "%u", d->conf.mem_mb);
	argv[argc++] = (char *)"-m";
	argv[argc++] = mem;
	argv[argc++] = (char *)"-l";
	argv[argc++] = (char *)"0";
	snprintf(loglvl, sizeof(loglvl), "--log-level=%s", dpdk_level[d->conf.log_level]);
	argv[argc++] = loglvl;
	/* Debugging a PMD: e.g. MST_DPDK_LOG=--log-level=pmd.net.memif:debug
	 * (with --log-level debug, else the global level hides it). */
	if (getenv("MST_DPDK_LOG"))
		argv[argc++] = getenv("MST_DPDK_LOG");
	rc = port_eal_args(&d->conf, argv, argc, EAL_ARGV_MAX - 1, store, sizeof(store));
	if (rc < 0) {
		daemon_log(MST_LOG_ERR, "too many port arguments");
		return rc;
	}
	argc = rc;
	argv[argc] = NULL;
	if (log_level >= MST_LOG_DEBUG)
		for (int i = 0; i < argc; i++)
			daemon_log(MST_LOG_DEBUG, "eal arg %d: %s", i, argv[i]);
	/* EAL pins the calling thread to lcore 0; engines choose their own CPUs,
	 * so give the control thread its original affinity back. */
	pthread_getaffinity_np(pthread_self(), sizeof(saved), &saved);
	rc = rte_eal_init(argc, argv);
	if (rc < 0) {
		daemon_log(MST_LOG_ERR, "DPDK EAL init failed: %s", rte_strerror(rte_errno));
		return -rte_errno;
	}
	pthread_setaffinity_np(pthread_self(), sizeof(saved), &saved);
	d->eal_up = true;
	return 0;
}

void daemon_engine_conf(const struct daemon *d, unsigned i, const uint8_t mac[6], uint32_t tx_ofl,
		uint32_t rx_ofl, struct mst_engine_conf *out)
{
	const struct mst_config *c = &d->conf;
	struct mst_engine_conf ec = {
		.id = i,
		.n_engines = c->engines,
		.ip = c->ip,
		.prefix_len = c->prefix_len,
		.gw = c->gw,
		.mtu = c->mtu,
		.services = c->services,
		.tx_offloads = tx_ofl,
		.rx_offloads = rx_ofl,
		.arp_timeout_ms = c->arp_timeout_ms,
		.tcp_cc = c->tcp_cc,
		.tcp_rcvbuf = c->tcp_rcvbuf,
		.tcp_sndbuf = c->tcp_sndbuf,
		.tcp_max_conns = c->tcp_max_conns,
		.tcp_timewait_ms = c->tcp_timewait_ms,
		.tcp_rto_min_ms = c->tcp_rto_min_ms,
		.tcp_rto_max_ms = c->tcp_rto_max_ms,
		.tcp_syncookies = c->tcp_syncookies,
		.tcp_eph_lo = c->tcp_eph_lo,
		.tcp_eph_hi = c->tcp_eph_hi,
		.tcp_tw_reuse_delay_ms = c->tcp_tw_reuse_delay_ms,
		.pony_port = c->pony_port,
		.pony_max_msg = c->pony_max_msg,
		.pony_target_us = c->pony_target_us,
		.pony_ai_milli = c->pony_ai_milli,
		.pony_beta_milli = c->pony_beta_milli,
		.pony_max_mdf_milli = c->pony_max_mdf_milli,
		.pony_init_cwnd = c->pony_init_cwnd,
		.pony_window_pkts = c->pony_window_pkts,
		.pony_rto_min_us = c->pony_rto_min_us,
		.pony_rto_max_us = c->pony_rto_max_us,
		.pony_fs_range_us = c->pony_fs_range_us,
		.pony_fs_max_cwnd = c->pony_fs_max_cwnd,
		.pony_peer_share = c->pony_peer_share,
		.pony_local_reserve = c->pony_local_reserve,
		.pony_rx_stall_ms = c->pony_rx_stall_ms,
	};
	memcpy(ec.mac, mac, sizeof(ec.mac));
	*out = ec;
}

/* Flow records and the metrics listener: before the engines (they find
 * their flow rings at creation). */
static int observe_start(struct daemon *d)
{
	const struct mst_config *c = &d->conf;

	if (c->flow_log[0]) {
		struct flows_conf fc = {
			.path = strcmp(c->flow_log, "on") ? c->flow_log : NULL,
			.max_bytes = (uint64_t)c->flow_log_max_mb << 20,
			.interval_s = c->flow_interval_s,
			.n_engines = c->engines,
			.ring_size = c->flow_ring,
		};

		d->flows = flows_start(&fc);
		if (!d->flows) {
			daemon_log(MST_LOG_ERR, "flow log %s: %s", c->flow_log, strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* After the engines exist (it reads them). A listener that cannot start
 * is reported, not fatal: the daemon serves traffic without it. */
static void metrics_listen(struct daemon *d)
{
	char err[256];

	if (!d->conf.metrics_listen[0])
		return;
	d->metrics_http = metrics_http_start(d, d->conf.metrics_listen, err, sizeof(err));
	if (!d->metrics_http)
		daemon_log(MST_LOG_ERR, "metrics listener: %s", err);
	else
		daemon_log(MST_LOG_INFO, "metrics on http://%s/metrics", d->conf.metrics_listen);
}

static int engines_start(struct daemon *d)
{
	struct mst_config *c = &d->conf;
	struct port_info pi;
	int rc;

	d->ops = mst_engine_lookup("net");
	if (!d->ops)
		return -ENOENT;
	port_get_info(d->ports[0], &pi);
	rt_group_init(&d->group, c);
	for (unsigned i = 0; i < c->engines; i++) {
		struct mst_engine_conf ec;

		struct mst_queue *q = port_queue(d->ports[0], i);
		void *eng;

		daemon_engine_conf(d, i, pi.mac, pi.tx_offloads, pi.rx_offloads, &ec);
		d->econf[i] = ec;
		d->equeue[i] = q;
		eng = d->ops->create(&ec);
		if (!eng) {
			daemon_log(MST_LOG_ERR, "engine %u: create failed: %s", i, strerror(errno));
			return -errno;
		}
		d->engines[d->n_engines++] = eng;
		rc = d->ops->attach_queue(eng, q);
		if (rc == 0)
			rc = rt_group_add(&d->group, d->ops, eng, q);
		if (rc) {
			daemon_log(MST_LOG_ERR, "engine %u: attach failed: %s", i, strerror(-rc));
			return rc;
		}
	}
	rc = rt_group_start(&d->group, c);
	if (rc)
		daemon_log(MST_LOG_ERR, "cannot start engine threads: %s", strerror(-rc));
	return rc;
}

static void teardown(struct daemon *d)
{
	port_watch_stop(d->watch); /* no restart may run under what follows */
	d->watch = NULL;
	if (d->ctl)
		ctl_server_stop(d->ctl); /* closes app connections: they detach */
	if (d->handed_over) {
		/* The successor serves the apps: our engine threads (polling
		 * frozen engines) stop before our copies of the segments go. */
		rt_group_stop(&d->group);
		apps_forget(d->apps);
	} else {
		apps_destroy(d->apps);
	}
	rt_group_stop(&d->group);
	metrics_http_stop(d->metrics_http);
	d->metrics_http = NULL;
	flows_stop(d->flows); /* after the engines: their last records are in */
	d->flows = NULL;
	for (unsigned i = 0; i < d->n_engines; i++) {
		if (d->ports[0])
			(void)d->ops->detach_queue(d->engines[i], port_queue(d->ports[0], i));
		d->ops->destroy(d->engines[i]); /* after a handover: frozen, memory only */
	}
	for (unsigned i = 0; i < d->n_ports; i++)
		port_close(d->ports[i]);
	if (d->eal_up) {
		char dir[PATH_MAX];

		snprintf(dir, sizeof(dir), "%s", rte_eal_get_runtime_dir());
		rte_eal_cleanup();
		if (dir[0] && rmdir(dir) && errno != ENOENT)
			daemon_log(MST_LOG_WARN, "cannot remove %s: %s", dir, strerror(errno));
	}
}

int main(int argc, char **argv)
{
	static struct daemon dm;
	struct daemon *d = &dm;
	char err[512];
	sigset_t sigs;
	const char *takeover_path = NULL;
	int rc, sig;

	d->argc = argc;
	d->argv = argv;
	{
		ssize_t n = readlink("/proc/self/exe", d->exe, sizeof(d->exe) - 1);

		d->exe[n > 0 ? n : 0] = '\0';
	}
	d->takeover_fd = -1;
	pthread_mutex_init(&d->engines_lock, NULL);
	/* --takeover-fd N (last, added by the running daemon's upgrade): this
	 * process takes over from it (control/takeover.c). */
	/* --takeover CTL_PATH (an init system starts the successor: it asks
	 * the running daemon on its control socket, after EAL below) or
	 * --takeover-fd N (added by the running daemon's `upgrade`): taken
	 * out before the configuration parser sees the arguments. */
	for (int i = 1; i + 1 < argc;) {
		if (!strcmp(argv[i], "--takeover")) {
			takeover_path = argv[i + 1];
		} else if (!strcmp(argv[i], "--takeover-fd")) {
			char *end;
			long fd = strtol(argv[i + 1], &end, 10);

			if (*end || fd < 3 || fd > 65535) {
				fprintf(stderr, "mustangd: --takeover-fd wants a descriptor\n");
				return 2;
			}
			d->takeover_fd = (int)fd;
		} else {
			i++;
			continue;
		}
		memmove(&argv[i], &argv[i + 2], sizeof(char *) * (size_t)(argc - i - 1));
		argc -= 2;
	}
	d->argc = argc; /* what a later upgrade passes on */
	mst_config_defaults(&d->conf);
	rc = mst_config_from_args(&d->conf, argc, argv, err, sizeof(err));
	if (rc == 1)
		return 0; /* --help / --version */
	if (rc == 0)
		rc = mst_config_validate(&d->conf, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "mustangd: %s\n", err);
		return 2;
	}
	log_level = d->conf.log_level;
	if (d->conf.n_ports > 1) {
		fprintf(stderr, "mustangd: only one port is supported today (%u given)\n", d->conf.n_ports);
		return 2;
	}
	if (d->takeover_fd < 0 && !takeover_path && ctl_path_in_use(d->conf.ctl_path)) {
		fprintf(stderr, "mustangd: another mustangd is running at %s\n", d->conf.ctl_path);
		return 1;
	}
	if (d->conf.mode == MST_MODE_DEDICATED)
		daemon_log(MST_LOG_WARN, "dedicated mode: %u engine thread(s) will spin at 100%% CPU",
		       d->conf.engines);

	/* Before any thread exists, so that every thread inherits the mask and
	 * only sigwait() below sees SIGTERM/SIGINT. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	d->start_ns = rt_now_ns();
	rc = engines_register_builtin();
	if (rc) {
		fprintf(stderr, "mustangd: cannot register engines: %s\n", strerror(-rc));
		return 1;
	}
	if (eal_start(d) || observe_start(d))
		goto out_fail;
	if (takeover_path) {
		d->takeover_fd = tko_connect(takeover_path);
		if (d->takeover_fd < 0) {
			daemon_log(MST_LOG_ERR, "takeover: cannot reach the running daemon at %s: %s",
				   takeover_path, strerror(-d->takeover_fd));
			tko_abandon(d);
			_exit(1);
		}
	}
	if (d->takeover_fd >= 0) {
		if (tko_adopt(d)) {
			tko_abandon(d);
			_exit(1); /* nothing else of ours may touch the old daemon's apps */
		}
		daemon_log(MST_LOG_INFO, "took over: %u engine(s), %u app(s), control %s",
			   d->n_engines, apps_count(d->apps), d->conf.ctl_path);
		if (daemon_watch_start(d))
			daemon_log(MST_LOG_WARN, "took over without a port watchdog");
		goto serve;
	}
	for (unsigned i = 0; i < d->conf.n_ports; i++) {
		d->ports[i] = port_open(&d->conf, i, d->conf.engines, err, sizeof(err));
		if (!d->ports[i]) {
			daemon_log(MST_LOG_ERR, "%s", err);
			goto out_fail;
		}
		if (err[0])
			daemon_log(MST_LOG_WARN, "%s", err);
		d->n_ports++;
	}
	if (engines_start(d) || daemon_watch_start(d))
		goto out_fail;
	if (daemon_apps_create(d)) {
		daemon_log(MST_LOG_ERR, "out of memory");
		goto out_fail;
	}
	d->ctl = ctl_server_start_apps(d->conf.ctl_path, daemon_ctl_handle, d, &daemon_app_hooks,
				       err, sizeof(err));
	if (!d->ctl) {
		daemon_log(MST_LOG_ERR, "%s", err);
		goto out_fail;
	}
	{
		struct port_info pi;
		char ip[INET_ADDRSTRLEN];

		port_get_info(d->ports[0], &pi);
		daemon_log(MST_LOG_INFO,
		       "ready: %s %s mac %02x:%02x:%02x:%02x:%02x:%02x ip %s/%u, %u engine(s) %s, control %s",
		       pi.driver, pi.spec, pi.mac[0], pi.mac[1], pi.mac[2], pi.mac[3], pi.mac[4], pi.mac[5],
		       inet_ntop(AF_INET, &d->conf.ip, ip, sizeof(ip)), d->conf.prefix_len,
		       d->conf.engines, mst_sched_mode_name(d->conf.mode), d->conf.ctl_path);
	}

serve:
	metrics_listen(d);
	do {
		rc = sigwait(&sigs, &sig);
	} while (rc == EINTR);
	daemon_log(MST_LOG_INFO, "%s: stopping", strsignal(sig));
	teardown(d);
	daemon_log(MST_LOG_INFO, "stopped");
	return 0;

out_fail:
	teardown(d);
	return 1;
}
