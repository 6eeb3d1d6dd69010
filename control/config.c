/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mustangd configuration: one option table, three sources.
 *
 * mst_config_from_args() -> mst_config_defaults()
 *                        -> mst_config_load_file()  (--config, wherever it is)
 *                        -> mst_config_set()        (every other option, in order)
 * then the daemon calls mst_config_validate() for the cross-field checks.
 *
 * Every option lives once in `opts[]`: its file key (the long option without
 * "--"), its argument's name, its help line and its setter. The file parser,
 * the command-line parser and --help all walk that table, so an option can
 * never exist in one place and not in another. Users' documentation:
 * docs/config.md (keep it in step with the table).
 *
 * Errors are one line naming where the bad value came from: "--mtu" on the
 * command line, "FILE:LINE: mtu" in a file.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mustang/ctl.h>

#include "control/config.h"

#define CONFIG_LINE_MAX 1024 /* longest accepted line in a file, newline excluded */
#define CONFIG_CTX_MAX 320   /* "FILE:LINE: key" prefix of an error message */
#define HELP_COL 22          /* width of the option column of --help */

static int __attribute__((format(printf, 3, 4)))
fail(char *err, size_t errlen, const char *fmt, ...)
{
	if (err != NULL && errlen > 0) {
		va_list ap;

		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/*
 * Strict unsigned decimal: digits only (no sign, no blanks, no base prefix),
 * the whole string, no overflow, within [min, max].
 */
static int parse_uint(const char *ctx, const char *s, unsigned long min, unsigned long max,
		      unsigned long *out, char *err, size_t errlen)
{
	unsigned long v;
	char *end;

	if (!isdigit((unsigned char)s[0]))
		return fail(err, errlen, "%s: \"%s\" is not a number", ctx, s);
	errno = 0;
	v = strtoul(s, &end, 10);
	if (*end != '\0')
		return fail(err, errlen, "%s: \"%s\" is not a number", ctx, s);
	if (errno == ERANGE || v < min || v > max)
		return fail(err, errlen, "%s: %s is out of range (%lu..%lu)", ctx, s, min, max);
	*out = v;
	return 0;
}

/* ---- ports ------------------------------------------------------------ */

static const char *const driver_names[] = {
	[MST_PORT_AF_XDP] = "af_xdp", [MST_PORT_AF_PACKET] = "af_packet",
	[MST_PORT_MEMIF] = "memif",   [MST_PORT_RING] = "ring",
	[MST_PORT_NULL] = "null",     [MST_PORT_PCI] = "pci",
};

const char *mst_port_driver_name(enum mst_port_driver d)
{
	if ((unsigned)d >= sizeof(driver_names) / sizeof(driver_names[0]))
		return "?";
	return driver_names[d];
}

/* Linux accepts almost any byte in an interface name; we accept the ones a
 * shell and DPDK's devargs parser (which splits on ',' and '=') survive. */
static bool iface_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= IFNAMSIZ || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (!isalnum(ch) && ch != '-' && ch != '_' && ch != '.')
			return false;
	}
	return true;
}

static bool hex_run(const char *s, size_t n, unsigned *out)
{
	unsigned v = 0;

	for (size_t i = 0; i < n; i++) {
		if (!isxdigit((unsigned char)s[i]))
			return false;
		v = v * 16 + (unsigned)(isdigit((unsigned char)s[i]) ? s[i] - '0'
								 : tolower((unsigned char)s[i]) - 'a' + 10);
	}
	*out = v;
	return true;
}

/* "dddd:bb:dd.f" or "bb:dd.f" (hex; device 0..1f, function 0..7), stored in
 * the full lowercase form so two spellings of one device compare equal. */
static bool pci_bdf_parse(const char *s, char *out, size_t outlen)
{
	unsigned dom = 0, bus, dev, fn;
	size_t n = strlen(s);

	if (n == 12) {
		if (!hex_run(s, 4, &dom) || s[4] != ':')
			return false;
		s += 5;
	} else if (n != 7) {
		return false;
	}
	if (!hex_run(s, 2, &bus) || s[2] != ':' || !hex_run(s + 3, 2, &dev) || s[5] != '.' ||
	    !hex_run(s + 6, 1, &fn) || dev > 0x1f || fn > 7)
		return false;
	snprintf(out, outlen, "%04x:%02x:%02x.%x", dom, bus, dev, fn);
	return true;
}

enum { SEEN_IFACE = 1, SEEN_SOCKET = 2, SEEN_ROLE = 4 }; /* driver keys given so far */

/* One "k=v" of a driver's argument list; `seen` catches repeats. */
static int port_kv(struct mst_port_conf *p, const char *ctx, const char *drv, char *kv,
		   unsigned *seen, char *err, size_t errlen)
{
	char *eq = strchr(kv, '=');
	const char *k, *v;
	unsigned bit;

	if (eq == NULL || eq == kv || eq[1] == '\0')
		return fail(err, errlen, "%s %s: \"%s\" is not key=value", ctx, drv, kv);
	*eq = '\0';
	k = kv;
	v = eq + 1;

	if (strcmp(k, "iface") == 0 && p->driver != MST_PORT_MEMIF)
		bit = SEEN_IFACE;
	else if (strcmp(k, "socket") == 0 && p->driver == MST_PORT_MEMIF)
		bit = SEEN_SOCKET;
	else if (strcmp(k, "role") == 0 && p->driver == MST_PORT_MEMIF)
		bit = SEEN_ROLE;
	else
		return fail(err, errlen, "%s %s: unknown key \"%s\"", ctx, drv, k);
	if (*seen & bit)
		return fail(err, errlen, "%s %s: %s= given twice", ctx, drv, k);
	*seen |= bit;

	switch (bit) {
	case SEEN_IFACE:
		if (!iface_name_ok(v))
			return fail(err, errlen,
				    "%s %s: bad interface name \"%s\" (1..%d characters of "
				    "A-Z a-z 0-9 . _ -)",
				    ctx, drv, v, IFNAMSIZ - 1);
		snprintf(p->iface, sizeof(p->iface), "%s", v);
		break;
	case SEEN_SOCKET:
		if (strlen(v) >= sizeof(p->socket))
			return fail(err, errlen, "%s %s: socket path longer than %zu bytes", ctx,
				    drv, sizeof(p->socket) - 1);
		snprintf(p->socket, sizeof(p->socket), "%s", v);
		break;
	default: /* SEEN_ROLE */
		if (strcmp(v, "server") == 0)
			p->memif_server = true;
		else if (strcmp(v, "client") == 0)
			p->memif_server = false;
		else
			return fail(err, errlen, "%s %s: role must be server or client, not \"%s\"",
				    ctx, drv, v);
		break;
	}
	return 0;
}

/* Two ports may not drive the same interface, memif socket or PCI device. */
static int port_conflict(const struct mst_config *c, const struct mst_port_conf *p,
			 const char *ctx, char *err, size_t errlen)
{
	for (unsigned i = 0; i < c->n_ports; i++) {
		const struct mst_port_conf *q = &c->ports[i];
		bool same = false;

		if ((p->driver == MST_PORT_AF_XDP || p->driver == MST_PORT_AF_PACKET) &&
		    (q->driver == MST_PORT_AF_XDP || q->driver == MST_PORT_AF_PACKET))
			same = strcmp(p->iface, q->iface) == 0;
		else if (p->driver == MST_PORT_MEMIF && q->driver == MST_PORT_MEMIF)
			same = strcmp(p->socket, q->socket) == 0;
		else if (p->driver == MST_PORT_PCI && q->driver == MST_PORT_PCI)
			same = strcmp(p->pci, q->pci) == 0;
		if (same)
			return fail(err, errlen, "%s: \"%s\" uses the same device as port \"%s\"",
				    ctx, p->spec, q->spec);
	}
	return 0;
}

static int set_port(struct mst_config *c, const char *v, const char *ctx, char *err,
		    size_t errlen)
{
	struct mst_port_conf p;
	char buf[MST_PORT_ARGS_MAX];
	const char *drv;
	char *args;
	unsigned seen = 0;
	size_t i;
	int rc;

	if (c->n_ports >= MST_MAX_PORTS)
		return fail(err, errlen, "%s: too many ports (at most %d)", ctx, MST_MAX_PORTS);
	if (strlen(v) >= sizeof(buf))
		return fail(err, errlen, "%s: port spec longer than %zu bytes", ctx,
			    sizeof(buf) - 1);
	memset(&p, 0, sizeof(p));
	snprintf(p.spec, sizeof(p.spec), "%s", v);
	snprintf(buf, sizeof(buf), "%s", v);
	args = strchr(buf, ':');
	if (args != NULL)
		*args++ = '\0';
	drv = buf;

	for (i = 0; i < sizeof(driver_names) / sizeof(driver_names[0]); i++)
		if (strcmp(drv, driver_names[i]) == 0)
			break;
	if (i == sizeof(driver_names) / sizeof(driver_names[0]))
		return fail(err, errlen,
			    "%s: unknown driver \"%s\" (af_xdp, af_packet, memif, ring, null, pci)",
			    ctx, drv);
	p.driver = (enum mst_port_driver)i;

	switch (p.driver) {
	case MST_PORT_RING:
	case MST_PORT_NULL:
		if (args != NULL)
			return fail(err, errlen, "%s %s: takes no arguments", ctx, drv);
		break;
	case MST_PORT_PCI:
		if (args == NULL || !pci_bdf_parse(args, p.pci, sizeof(p.pci)))
			return fail(err, errlen,
				    "%s pci: \"%s\" is not a PCI address (dddd:bb:dd.f or bb:dd.f)",
				    ctx, args != NULL ? args : "");
		break;
	case MST_PORT_AF_XDP:
	case MST_PORT_AF_PACKET:
	case MST_PORT_MEMIF:
		for (char *save = NULL, *kv = args != NULL ? strtok_r(args, ",", &save) : NULL;
		     kv != NULL; kv = strtok_r(NULL, ",", &save)) {
			rc = port_kv(&p, ctx, drv, kv, &seen, err, errlen);
			if (rc < 0)
				return rc;
		}
		if (p.driver != MST_PORT_MEMIF && p.iface[0] == '\0')
			return fail(err, errlen, "%s %s: missing iface=", ctx, drv);
		if (p.driver == MST_PORT_MEMIF && p.socket[0] == '\0')
			return fail(err, errlen, "%s memif: missing socket=", ctx);
		if (p.driver == MST_PORT_MEMIF && !(seen & SEEN_ROLE))
			return fail(err, errlen, "%s memif: missing role= (server or client)", ctx);
		break;
	}
	rc = port_conflict(c, &p, ctx, err, errlen);
	if (rc < 0)
		return rc;
	c->ports[c->n_ports++] = p;
	return 0;
}

/* ---- addresses ------------------------------------------------------ */

static uint32_t prefix_mask(unsigned prefix_len)
{
	return prefix_len == 0 ? 0 : htonl(0xffffffffu << (32 - prefix_len));
}

/* Addresses a host may not take: 0/8, loopback, multicast, class E and the
 * limited broadcast. `a` is in host order. */
static bool ip_host_ok(uint32_t a)
{
	unsigned top = a >> 24;

	return top != 0 && top != 127 && top < 224;
}

static int set_ip(struct mst_config *c, const char *v, const char *ctx, char *err, size_t errlen)
{
	char addr[INET_ADDRSTRLEN];
	const char *slash = strchr(v, '/');
	struct in_addr in;
	unsigned long plen;
	uint32_t h, mask;
	int rc;

	if (slash == NULL)
		return fail(err, errlen, "%s: \"%s\" needs a prefix length, e.g. 10.0.0.1/24",
			    ctx, v);
	if ((size_t)(slash - v) >= sizeof(addr))
		return fail(err, errlen, "%s: \"%s\" is not an IPv4 address/prefix", ctx, v);
	memcpy(addr, v, (size_t)(slash - v));
	addr[slash - v] = '\0';
	if (inet_pton(AF_INET, addr, &in) != 1)
		return fail(err, errlen, "%s: \"%s\" is not an IPv4 address/prefix", ctx, v);
	rc = parse_uint(ctx, slash + 1, 1, 32, &plen, err, errlen);
	if (rc < 0)
		return rc;
	h = ntohl(in.s_addr);
	if (!ip_host_ok(h))
		return fail(err, errlen, "%s: %s is not a usable host address", ctx, addr);
	/* Below /31 (RFC 3021) the all-zeros and all-ones hosts are the subnet
	 * and its broadcast. */
	mask = ntohl(prefix_mask((unsigned)plen));
	if (plen < 31 && ((h & ~mask) == 0 || (h & ~mask) == ~mask))
		return fail(err, errlen, "%s: %s is the network or broadcast address of /%lu",
			    ctx, addr, plen);
	c->ip = in.s_addr;
	c->prefix_len = (uint8_t)plen;
	return 0;
}

static int set_gw(struct mst_config *c, const char *v, const char *ctx, char *err, size_t errlen)
{
	struct in_addr in;

	if (strcmp(v, "none") == 0) {
		c->gw = 0;
		return 0;
	}
	if (inet_pton(AF_INET, v, &in) != 1)
		return fail(err, errlen, "%s: \"%s\" is not an IPv4 address", ctx, v);
	if (!ip_host_ok(ntohl(in.s_addr)))
		return fail(err, errlen, "%s: %s is not a usable gateway address", ctx, v);
	c->gw = in.s_addr;
	return 0;
}

/* ---- lists ------------------------------------------------------------ */

/* Digits at *s, value capped so that overflow cannot happen; advances *s. */
static bool cpu_num(const char **s, unsigned long *out)
{
	unsigned long v = 0;

	if (!isdigit((unsigned char)**s))
		return false;
	for (; isdigit((unsigned char)**s); (*s)++)
		v = v > 1000000 ? v : v * 10 + (unsigned long)(**s - '0');
	*out = v;
	return true;
}

/* "0-3,6": items N or N-M (N <= M), comma separated, nothing else; CPUs are
 * de-duplicated and kept in ascending order. */
static int set_cores(struct mst_config *c, const char *v, const char *ctx, char *err,
		     size_t errlen)
{
	unsigned char bits[MST_MAX_CORES / 8] = { 0 };
	const char *s = v;
	unsigned n = 0;

	for (;;) {
		unsigned long lo, hi;

		if (!cpu_num(&s, &lo))
			goto bad;
		hi = lo;
		if (*s == '-') {
			s++;
			if (!cpu_num(&s, &hi))
				goto bad;
		}
		if (hi >= MST_MAX_CORES)
			return fail(err, errlen, "%s: CPU %lu is out of range (0..%d)", ctx, hi,
				    MST_MAX_CORES - 1);
		if (lo > hi)
			return fail(err, errlen, "%s: range %lu-%lu is reversed", ctx, lo, hi);
		for (unsigned long cpu = lo; cpu <= hi; cpu++)
			bits[cpu / 8] |= (unsigned char)(1u << (cpu % 8));
		if (*s == '\0')
			break;
		if (*s++ != ',')
			goto bad;
	}
	for (unsigned cpu = 0; cpu < MST_MAX_CORES; cpu++)
		if (bits[cpu / 8] & (1u << (cpu % 8)))
			c->cores[n++] = (uint16_t)cpu;
	c->n_cores = n;
	return 0;
bad:
	return fail(err, errlen, "%s: \"%s\" is not a CPU list (e.g. 0-3,6)", ctx, v);
}

static int set_services(struct mst_config *c, const char *v, const char *ctx, char *err,
			size_t errlen)
{
	uint32_t mask = 0;
	const char *s = v;

	if (strcmp(v, "none") == 0) {
		c->services = 0;
		return 0;
	}
	for (;;) {
		size_t n = strcspn(s, ",");

		if (n == 4 && strncmp(s, "echo", 4) == 0)
			mask |= MST_SVC_ECHO;
		else if (n == 7 && strncmp(s, "discard", 7) == 0)
			mask |= MST_SVC_DISCARD;
		else if (n == 7 && strncmp(s, "chargen", 7) == 0)
			mask |= MST_SVC_CHARGEN;
		else
			return fail(err, errlen,
				    "%s: unknown service \"%.*s\" (echo, discard, chargen, or none alone)",
				    ctx, (int)n, s);
		if (s[n] == '\0')
			break;
		s += n + 1;
	}
	c->services = mask;
	return 0;
}

/* ---- words and numbers ------------------------------------------------ */

static const char *const mode_names[] = {
	[MST_MODE_DEDICATED] = "dedicated",
	[MST_MODE_SPREADING] = "spreading",
	[MST_MODE_COMPACTING] = "compacting",
};

const char *mst_sched_mode_name(enum mst_sched_mode m)
{
	if ((unsigned)m >= sizeof(mode_names) / sizeof(mode_names[0]))
		return "?";
	return mode_names[m];
}

static const char *const log_names[] = {
	[MST_LOG_ERR] = "err", [MST_LOG_WARN] = "warn",
	[MST_LOG_INFO] = "info", [MST_LOG_DEBUG] = "debug",
};

static int pick(const char *const *names, size_t n, const char *v, const char *ctx,
		const char *choices, unsigned *out, char *err, size_t errlen)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(v, names[i]) == 0) {
			*out = (unsigned)i;
			return 0;
		}
	}
	return fail(err, errlen, "%s: \"%s\" is not one of %s", ctx, v, choices);
}

static int set_mode(struct mst_config *c, const char *v, const char *ctx, char *err,
		    size_t errlen)
{
	unsigned m = 0;
	int rc = pick(mode_names, 3, v, ctx, "dedicated, spreading, compacting", &m, err, errlen);

	if (rc == 0)
		c->mode = (enum mst_sched_mode)m;
	return rc;
}

static int set_log_level(struct mst_config *c, const char *v, const char *ctx, char *err,
			 size_t errlen)
{
	unsigned l = 0;
	int rc = pick(log_names, 4, v, ctx, "err, warn, info, debug", &l, err, errlen);

	if (rc == 0)
		c->log_level = (enum mst_log_level)l;
	return rc;
}

static int set_hugepages(struct mst_config *c, const char *v, const char *ctx, char *err,
			 size_t errlen)
{
	static const char *const yn[] = { "no", "yes" };
	unsigned b = 0;
	int rc = pick(yn, 2, v, ctx, "yes, no", &b, err, errlen);

	if (rc == 0)
		c->hugepages = b != 0;
	return rc;
}

static int set_ctl(struct mst_config *c, const char *v, const char *ctx, char *err, size_t errlen)
{
	if (strlen(v) >= sizeof(c->ctl_path))
		return fail(err, errlen, "%s: socket path longer than %zu bytes", ctx,
			    sizeof(c->ctl_path) - 1);
	snprintf(c->ctl_path, sizeof(c->ctl_path), "%s", v);
	return 0;
}

/* The numeric options differ only in field, width and range: generate them. */
#define NUM_SETTER(fn, field, type, lo, hi)                                                \
	static int fn(struct mst_config *c, const char *v, const char *ctx, char *err,     \
		      size_t errlen)                                                       \
	{                                                                                  \
		unsigned long x = 0;                                                         \
		int rc = parse_uint(ctx, v, lo, hi, &x, err, errlen);                      \
		if (rc == 0)                                                               \
			c->field = (type)x;                                                \
		return rc;                                                                 \
	}
NUM_SETTER(set_mtu, mtu, uint16_t, 68, 9000)
NUM_SETTER(set_engines, engines, unsigned, 1, MST_MAX_ENGINES)
NUM_SETTER(set_mem_mb, mem_mb, unsigned, 64, 65536)
NUM_SETTER(set_mbufs, mbufs, unsigned, 1024, 1048576)
NUM_SETTER(set_idle, idle_sleep_max_us, unsigned, 1, 1000000)
NUM_SETTER(set_compact, compact_bound_us, unsigned, 1, 1000000)
NUM_SETTER(set_arp, arp_timeout_ms, uint32_t, 1000, 3600000)
NUM_SETTER(set_tcp_rcvbuf, tcp_rcvbuf, uint32_t, 4096, 1u << 30)
NUM_SETTER(set_tcp_sndbuf, tcp_sndbuf, uint32_t, 4096, 1u << 30)
NUM_SETTER(set_tcp_max_conns, tcp_max_conns, uint32_t, 16, 1u << 24)
NUM_SETTER(set_tcp_timewait, tcp_timewait_ms, uint32_t, 0, 600000)
NUM_SETTER(set_tcp_rto_min, tcp_rto_min_ms, uint32_t, 1, 60000)
NUM_SETTER(set_tcp_rto_max, tcp_rto_max_ms, uint32_t, 100, 600000)
NUM_SETTER(set_tcp_tw_reuse, tcp_tw_reuse_delay_ms, uint32_t, 1, 600000)
NUM_SETTER(set_app_arena, app_arena_mb, unsigned, 16, 65536)
NUM_SETTER(set_pony_port, pony_port, uint16_t, 0, 65535)
NUM_SETTER(set_pony_max_msg, pony_max_msg, uint32_t, 1, 1u << 30)
NUM_SETTER(set_pony_buf, pony_buf_mb, unsigned, 1, 4095)
NUM_SETTER(set_pony_target, pony_target_us, uint32_t, 1, 1000000)
NUM_SETTER(set_pony_ai, pony_ai_milli, uint32_t, 1, 1000000)
NUM_SETTER(set_pony_beta, pony_beta_milli, uint32_t, 1, 100000)
NUM_SETTER(set_pony_mdf, pony_max_mdf_milli, uint32_t, 1, 999)
NUM_SETTER(set_pony_fs_range, pony_fs_range_us, uint32_t, 1, 10000000)
NUM_SETTER(set_pony_fs_max, pony_fs_max_cwnd, uint32_t, 2, 1u << 20)
NUM_SETTER(set_pony_cwnd, pony_init_cwnd, uint32_t, 1, 65536)
NUM_SETTER(set_pony_window, pony_window_pkts, uint32_t, 1, 65536)
NUM_SETTER(set_pony_rto_min, pony_rto_min_us, uint32_t, 10, 10000000)
NUM_SETTER(set_pony_rto_max, pony_rto_max_us, uint32_t, 100, 60000000)
/* The engine's Pony pool holds 4096 messages (pony_conf_defaults). */
NUM_SETTER(set_pony_peer_share, pony_peer_share, uint32_t, 1, 4096)
NUM_SETTER(set_pony_local_reserve, pony_local_reserve, uint32_t, 1, 4095)
NUM_SETTER(set_pony_rx_stall, pony_rx_stall_ms, uint32_t, 1, 3600000)
NUM_SETTER(set_flow_max_mb, flow_log_max_mb, uint32_t, 1, 1u << 20)
NUM_SETTER(set_flow_interval, flow_interval_s, uint32_t, 0, 86400)
#undef NUM_SETTER

static int set_flow_log(struct mst_config *c, const char *v, const char *ctx, char *err,
			size_t errlen)
{
	if (!strcmp(v, "off")) {
		c->flow_log[0] = '\0';
		return 0;
	}
	if (strcmp(v, "on") != 0 && v[0] != '/')
		return fail(err, errlen, "%s: wants off, on or an absolute file path, not \"%s\"", ctx, v);
	if (strlen(v) >= sizeof(c->flow_log))
		return fail(err, errlen, "%s: path longer than %zu bytes", ctx, sizeof(c->flow_log) - 1);
	snprintf(c->flow_log, sizeof(c->flow_log), "%s", v);
	return 0;
}

static int set_flow_ring(struct mst_config *c, const char *v, const char *ctx, char *err,
			 size_t errlen)
{
	unsigned long x = 0;
	int rc = parse_uint(ctx, v, 64, 1u << 20, &x, err, errlen);

	if (rc)
		return rc;
	if (x & (x - 1))
		return fail(err, errlen, "%s: wants a power of 2, not %lu", ctx, x);
	c->flow_ring = (uint32_t)x;
	return 0;
}

/* "ADDR:PORT", IPv4 dotted quad, port 1..65535. */
static int set_metrics_listen(struct mst_config *c, const char *v, const char *ctx, char *err,
			      size_t errlen)
{
	char ip[INET_ADDRSTRLEN];
	const char *colon = strrchr(v, ':');
	struct in_addr a;
	unsigned long port = 0;

	if (!strcmp(v, "off")) {
		c->metrics_listen[0] = '\0';
		return 0;
	}
	if (!colon || colon == v || (size_t)(colon - v) >= sizeof(ip))
		return fail(err, errlen, "%s: wants ADDR:PORT, not \"%s\"", ctx, v);
	memcpy(ip, v, (size_t)(colon - v));
	ip[colon - v] = '\0';
	if (inet_pton(AF_INET, ip, &a) != 1)
		return fail(err, errlen, "%s: \"%s\" is not an IPv4 address", ctx, ip);
	if (parse_uint(ctx, colon + 1, 1, 65535, &port, err, errlen))
		return -EINVAL;
	snprintf(c->metrics_listen, sizeof(c->metrics_listen), "%s", v);
	return 0;
}

static int set_tcp_cc(struct mst_config *c, const char *v, const char *ctx, char *err,
		      size_t errlen)
{
	if (strcmp(v, "cubic") != 0 && strcmp(v, "newreno") != 0)
		return fail(err, errlen, "%s: unknown congestion control \"%s\" (cubic, newreno)",
			    ctx, v);
	snprintf(c->tcp_cc, sizeof(c->tcp_cc), "%s", v);
	return 0;
}

static int set_tcp_syncookies(struct mst_config *c, const char *v, const char *ctx, char *err,
			      size_t errlen)
{
	if (strcmp(v, "yes") == 0)
		c->tcp_syncookies = true;
	else if (strcmp(v, "no") == 0)
		c->tcp_syncookies = false;
	else
		return fail(err, errlen, "%s: expected yes or no, got \"%s\"", ctx, v);
	return 0;
}

/* LO-HI, inclusive, as Linux's ip_local_port_range. */
static int set_tcp_eph(struct mst_config *c, const char *v, const char *ctx, char *err,
		       size_t errlen)
{
	const char *dash = strchr(v, '-');
	unsigned long lo, hi;
	char buf[8];
	int rc;

	if (!dash || (size_t)(dash - v) >= sizeof(buf))
		return fail(err, errlen, "%s: expected LO-HI, e.g. 32768-60999, got \"%s\"", ctx, v);
	memcpy(buf, v, (size_t)(dash - v));
	buf[dash - v] = '\0';
	rc = parse_uint(ctx, buf, 1, 65535, &lo, err, errlen);
	if (rc == 0)
		rc = parse_uint(ctx, dash + 1, 1, 65535, &hi, err, errlen);
	if (rc)
		return rc;
	if (hi < lo)
		return fail(err, errlen, "%s: %lu-%lu is an empty range", ctx, lo, hi);
	c->tcp_eph_lo = (uint16_t)lo;
	c->tcp_eph_hi = (uint16_t)hi;
	return 0;
}

/* ---- the table -------------------------------------------------------- */

typedef int (*opt_set_fn)(struct mst_config *c, const char *v, const char *ctx, char *err,
			  size_t errlen);

struct opt {
	const char *name; /* file key; "--name" on the command line */
	const char *arg;  /* argument, for --help */
	const char *help; /* one line, for --help */
	opt_set_fn set;   /* NULL: handled by the caller (config) */
};

static const struct opt opts[] = {
	{ "config", "FILE", "read options from FILE (key = value lines) first", NULL },
	{ "port", "DRIVER[:ARGS]",
	  "add a port, repeatable: af_xdp:iface=IF, af_packet:iface=IF,\n"
	  "memif:socket=PATH,role=server|client, ring, null, pci:BDF",
	  set_port },
	{ "ip", "ADDR/PREFIX", "our IPv4 address and prefix length, e.g. 10.0.0.1/24 (required)",
	  set_ip },
	{ "gw", "ADDR", "default gateway, on-link with --ip (default none)", set_gw },
	{ "mtu", "N", "IP MTU, 68..9000 (default 1500)", set_mtu },
	{ "engines", "N", "number of engines, 1..64 (default 1)", set_engines },
	{ "mode", "MODE", "dedicated, spreading or compacting (default spreading)",
	  set_mode },
	{ "cores", "LIST", "CPUs for engines, e.g. 0-3,6 (default any)", set_cores },
	{ "ctl", "PATH", "control socket (default " MST_CTL_DEFAULT_PATH ")", set_ctl },
	{ "log-level", "LEVEL", "err, warn, info, debug (default info)", set_log_level },
	{ "services", "LIST", "built-in services: echo, or none (default none)", set_services },
	{ "hugepages", "yes|no", "back DPDK memory with hugepages (default no)", set_hugepages },
	{ "mem-mb", "N", "DPDK memory in MiB, 64..65536 (default 512)", set_mem_mb },
	{ "mbufs", "N", "packet buffers per port, 1024..1048576 (default 8192)", set_mbufs },
	{ "idle-sleep-max-us", "N", "longest idle sleep of an engine, 1..1000000 (default 200)",
	  set_idle },
	{ "compact-bound-us", "N",
	  "compacting: delay bound that adds a core, 1..1000000 (default 100)", set_compact },
	{ "arp-timeout-ms", "N", "ARP cache entry lifetime, 1000..3600000 (default 60000)",
	  set_arp },
	{ "tcp-cc", "NAME", "TCP congestion control: cubic or newreno (default cubic)", set_tcp_cc },
	{ "tcp-rcvbuf", "BYTES", "TCP receive buffer per connection, rounded up to a power of 2 (default 262144)",
	  set_tcp_rcvbuf },
	{ "tcp-sndbuf", "BYTES", "TCP send buffer per connection, rounded up to a power of 2 (default 262144)",
	  set_tcp_sndbuf },
	{ "tcp-max-conns", "N", "TCP connections per engine, 16..16777216 (default 131072)",
	  set_tcp_max_conns },
	{ "tcp-timewait-ms", "N", "TIME_WAIT duration (2 MSL), 0..600000 (default 60000)",
	  set_tcp_timewait },
	{ "tcp-rto-min-ms", "N", "minimum retransmission timeout, 1..60000 (default 200)",
	  set_tcp_rto_min },
	{ "tcp-rto-max-ms", "N", "maximum retransmission timeout, 100..600000 (default 60000)",
	  set_tcp_rto_max },
	{ "tcp-syncookies", "yes|no", "answer with SYN cookies when the SYN queue is full (default yes)",
	  set_tcp_syncookies },
	{ "tcp-ephemeral-ports", "LO-HI", "local ports of active opens, 1..65535 (default 32768-60999)",
	  set_tcp_eph },
	{ "tcp-tw-reuse-delay-ms", "N",
	  "an active open may reuse our TIME_WAIT tuple this long after its last segment (timestamps on), 1..600000 (default 1000)",
	  set_tcp_tw_reuse },
	{ "app-arena-mb", "N",
	  "socket buffer arena per attached app, MiB, 16..65536 (default 1024; memory is used only as touched)",
	  set_app_arena },
	{ "pony-port", "N", "Pony UDP port, 0..65535 (default 7400; 0 = Pony off)", set_pony_port },
	{ "pony-max-msg", "BYTES", "largest Pony message or READ, 1..2^30 (default 16777216)",
	  set_pony_max_msg },
	{ "pony-buf-mb", "N",
	  "Pony buffer arena per attached app, MiB, 1..4095 (default 128; >= 3 x pony-max-msg; used only as touched)",
	  set_pony_buf },
	{ "pony-target-us", "N", "Pony congestion control: target RTT, 1..1000000 (default 100)",
	  set_pony_target },
	{ "pony-ai-milli", "N",
	  "Pony congestion control: additive increase, packets per RTT x1000 (default 1000)",
	  set_pony_ai },
	{ "pony-beta-milli", "N",
	  "Pony congestion control: decrease per unit of excess delay x1000 (default 800)",
	  set_pony_beta },
	{ "pony-max-mdf-milli", "N",
	  "Pony congestion control: largest single decrease x1000, 1..999 (default 500)", set_pony_mdf },
	{ "pony-fs-range-us", "N",
	  "Pony congestion control: flow scaling, extra target delay at cwnd 1, 1..10000000 (default 500)",
	  set_pony_fs_range },
	{ "pony-fs-max-cwnd", "N",
	  "Pony congestion control: flow scaling falls to 0 at this cwnd, 2..2^20 (default 64)",
	  set_pony_fs_max },
	{ "pony-init-cwnd", "N", "Pony initial congestion window, packets (default 64)",
	  set_pony_cwnd },
	{ "pony-window-pkts", "N", "Pony cap on packets in flight per flow (default 512)",
	  set_pony_window },
	{ "pony-rto-min-us", "N", "Pony minimum retransmission timeout (default 1000)",
	  set_pony_rto_min },
	{ "pony-rto-max-us", "N", "Pony maximum retransmission timeout (default 200000)",
	  set_pony_rto_max },
	{ "pony-peer-share", "N",
	  "Pony messages one peer may hold (sent to us, READs served), 1..4096 (default 512)",
	  set_pony_peer_share },
	{ "pony-local-reserve", "N",
	  "Pony messages only local sends and READs may take, 1..4095 (default 1024)",
	  set_pony_local_reserve },
	{ "pony-rx-stall-ms", "N",
	  "Pony: a peer's partial messages with no progress this long reset its flow (default 10000)",
	  set_pony_rx_stall },
	{ "flow-log", "off|on|PATH",
	  "flow records: on (control socket), or also as JSON lines to PATH (default off)",
	  set_flow_log },
	{ "flow-log-max-mb", "N", "rotate the flow log file to PATH.1 past N MiB (default 64)",
	  set_flow_max_mb },
	{ "flow-interval-s", "N", "a record of each open flow every N s, 0 = at close only (default 60)",
	  set_flow_interval },
	{ "flow-ring", "N", "flow records queued per engine, a power of 2 (default 4096)",
	  set_flow_ring },
	{ "metrics-listen", "ADDR:PORT", "serve Prometheus metrics over HTTP here (default off)",
	  set_metrics_listen },
};

#define N_OPTS (sizeof(opts) / sizeof(opts[0]))

static const struct opt *opt_find(const char *name, size_t len)
{
	for (size_t i = 0; i < N_OPTS; i++)
		if (strlen(opts[i].name) == len && strncmp(opts[i].name, name, len) == 0)
			return &opts[i];
	return NULL;
}

void mst_config_defaults(struct mst_config *c)
{
	memset(c, 0, sizeof(*c));
	c->mtu = 1500;
	c->engines = 1;
	c->mode = MST_MODE_SPREADING;
	snprintf(c->ctl_path, sizeof(c->ctl_path), "%s", MST_CTL_DEFAULT_PATH);
	c->log_level = MST_LOG_INFO;
	c->services = 0;
	c->hugepages = false;
	c->mem_mb = 512;
	c->mbufs = 8192;
	c->idle_sleep_max_us = 200;
	c->compact_bound_us = 100;
	c->arp_timeout_ms = 60000;
	snprintf(c->tcp_cc, sizeof(c->tcp_cc), "cubic");
	c->tcp_rcvbuf = 262144;
	c->tcp_sndbuf = 262144;
	c->tcp_max_conns = 131072;
	c->tcp_timewait_ms = 60000;
	c->tcp_rto_min_ms = 200;
	c->tcp_rto_max_ms = 60000;
	c->tcp_syncookies = true;
	c->tcp_eph_lo = 32768;
	c->tcp_eph_hi = 60999;
	c->tcp_tw_reuse_delay_ms = 1000;
	c->app_arena_mb = 1024;
	c->flow_log_max_mb = 64;
	c->flow_interval_s = 60;
	c->flow_ring = 4096;
	c->pony_port = 7400;            /* = PONY_DEFAULT_PORT */
	c->pony_max_msg = 16u << 20;    /* = PONY_DEFAULT_MAX_MSG */
	c->pony_buf_mb = 128;
}

int mst_config_set(struct mst_config *c, const char *key, const char *value, const char *where,
		   char *err, size_t errlen)
{
	const struct opt *o = opt_find(key, strlen(key));
	char ctx[CONFIG_CTX_MAX];

	if (where == NULL)
		where = "config";
	if (o == NULL)
		return fail(err, errlen, "%s: unknown option \"%s\"", where, key);
	/* "--mtu" already names the option; "FILE:LINE" does not. */
	if (where[0] == '-')
		snprintf(ctx, sizeof(ctx), "%s", where);
	else
		snprintf(ctx, sizeof(ctx), "%s: %s", where, key);
	if (o->set == NULL)
		return fail(err, errlen, "%s: only valid on the command line", ctx);
	if (value == NULL || value[0] == '\0')
		return fail(err, errlen, "%s: missing value", ctx);
	return o->set(c, value, ctx, err, errlen);
}

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

int mst_config_load_file(struct mst_config *c, const char *path, char *err, size_t errlen)
{
	char where[CONFIG_CTX_MAX];
	unsigned lineno = 0;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int rc = 0;
	FILE *f;

	f = fopen(path, "re");
	if (f == NULL) {
		rc = -errno;
		fail(err, errlen, "cannot open %s: %s", path, strerror(-rc));
		return rc;
	}
	while ((n = getline(&line, &cap, f)) >= 0) {
		char *s, *eq, *key, *value;

		lineno++;
		snprintf(where, sizeof(where), "%s:%u", path, lineno);
		if (n > 0 && line[n - 1] == '\n')
			line[--n] = '\0';
		if (n > CONFIG_LINE_MAX) {
			rc = fail(err, errlen, "%s: line longer than %d characters", where,
				  CONFIG_LINE_MAX);
			goto out_free;
		}
		if (memchr(line, '\0', (size_t)n) != NULL) {
			rc = fail(err, errlen, "%s: NUL byte in line", where);
			goto out_free;
		}
		s = trim(line);
		if (*s == '\0' || *s == '#')
			continue;
		eq = strchr(s, '=');
		if (eq == NULL) {
			rc = fail(err, errlen, "%s: expected \"key = value\", got \"%s\"", where, s);
			goto out_free;
		}
		*eq = '\0';
		key = trim(s);
		value = trim(eq + 1);
		if (*key == '\0') {
			rc = fail(err, errlen, "%s: missing option name before '='", where);
			goto out_free;
		}
		rc = mst_config_set(c, key, value, where, err, errlen);
		if (rc < 0)
			goto out_free;
	}
	if (ferror(f)) {
		rc = -EIO;
		fail(err, errlen, "cannot read %s: %s", path, strerror(EIO));
	}
out_free:
	free(line);
	fclose(f);
	return rc;
}

/* ---- command line ----------------------------------------------------- */

static void print_usage(void)
{
	printf("Usage: mustangd [OPTION]...\n"
	       "Mustang kernel-bypass networking daemon.\n"
	       "Every option can also be set in the --config file as \"key = value\"\n"
	       "(key = the option without \"--\"); the command line wins over the file.\n"
	       "Options take their value as --key VALUE or --key=VALUE.\n\n");
	for (size_t i = 0; i < N_OPTS; i++) {
		char lhs[64];

		snprintf(lhs, sizeof(lhs), "--%s %s", opts[i].name, opts[i].arg);
		printf("  %-*s  ", HELP_COL, lhs);
		/* A help text's '\n' continues it under itself. */
		for (const char *h = opts[i].help; *h != '\0'; h++) {
			if (*h == '\n')
				printf("\n  %-*s  ", HELP_COL, "");
			else
				putchar(*h);
		}
		putchar('\n');
	}
	printf("  %-*s  %s\n", HELP_COL, "--help", "print this help and exit");
	printf("  %-*s  %s\n", HELP_COL, "--version", "print the version and exit");
	printf("\nSee docs/config.md for the details of every option.\n");
}

/* One command-line option: argv[*i] and maybe argv[*i + 1]. */
struct arg {
	const struct opt *o; /* NULL for --help / --version */
	const char *value;
	bool help, version;
};

static int next_arg(int argc, char **argv, int *i, struct arg *a, char *err, size_t errlen)
{
	const char *s = argv[*i];
	const char *eq;
	size_t len;

	memset(a, 0, sizeof(*a));
	if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
		a->help = true;
		return 0;
	}
	if (strcmp(s, "--version") == 0) {
		a->version = true;
		return 0;
	}
	if (strncmp(s, "--", 2) != 0 || s[2] == '\0')
		return fail(err, errlen, "unexpected argument \"%s\" (see --help)", s);
	s += 2;
	eq = strchr(s, '=');
	len = eq != NULL ? (size_t)(eq - s) : strlen(s);
	a->o = opt_find(s, len);
	if (a->o == NULL)
		return fail(err, errlen, "unknown option \"--%.*s\" (see --help)", (int)len, s);
	if (eq != NULL) {
		a->value = eq + 1;
	} else if (*i + 1 < argc) {
		a->value = argv[++*i];
	} else {
		return fail(err, errlen, "--%s: missing value", a->o->name);
	}
	return 0;
}

int mst_config_from_args(struct mst_config *c, int argc, char **argv, char *err, size_t errlen)
{
	const char *config = NULL;
	bool ports_reset = false;
	char where[CONFIG_CTX_MAX];
	struct arg a;
	int rc = 0, i;

	mst_config_defaults(c);

	/* Pass 1: syntax, --help/--version (which win over any error) and
	 * --config, which is applied before everything else. */
	for (i = 1; i < argc; i++) {
		int r = next_arg(argc, argv, &i, &a, rc == 0 ? err : NULL, rc == 0 ? errlen : 0);

		if (r < 0) {
			rc = rc < 0 ? rc : r;
			continue;
		}
		if (a.help) {
			print_usage();
			return 1;
		}
		if (a.version) {
			printf("mustangd 0.1.0\n");
			return 1;
		}
		if (rc == 0 && a.o->set == NULL) {
			if (config != NULL)
				rc = fail(err, errlen, "--config: given twice");
			config = a.value;
		}
	}
	if (rc < 0)
		return rc;
	if (config != NULL) {
		if (config[0] == '\0')
			return fail(err, errlen, "--config: missing value");
		rc = mst_config_load_file(c, config, err, errlen);
		if (rc < 0)
			return rc;
	}

	/* Pass 2: everything else, in order. --port on the command line
	 * replaces the file's ports rather than adding to them. */
	for (i = 1; i < argc; i++) {
		next_arg(argc, argv, &i, &a, NULL, 0);
		if (a.o->set == NULL)
			continue;
		if (a.o->set == set_port && !ports_reset) {
			c->n_ports = 0;
			ports_reset = true;
		}
		snprintf(where, sizeof(where), "--%s", a.o->name);
		rc = mst_config_set(c, a.o->name, a.value, where, err, errlen);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int mst_config_validate(const struct mst_config *c, char *err, size_t errlen)
{
	if (c->n_ports == 0)
		return fail(err, errlen, "no port configured (add --port, e.g. --port "
					 "af_packet:iface=veth0)");
	if (c->ip == 0)
		return fail(err, errlen, "no address configured (add --ip ADDR/PREFIX)");
	if (c->gw != 0) {
		uint32_t mask = prefix_mask(c->prefix_len);
		char gw[INET_ADDRSTRLEN], ip[INET_ADDRSTRLEN];
		struct in_addr a;

		a.s_addr = c->gw;
		inet_ntop(AF_INET, &a, gw, sizeof(gw));
		a.s_addr = c->ip;
		inet_ntop(AF_INET, &a, ip, sizeof(ip));
		if ((c->gw & mask) != (c->ip & mask))
			return fail(err, errlen, "--gw: %s is not on-link with --ip %s/%u", gw, ip,
				    c->prefix_len);
		if (c->gw == c->ip)
			return fail(err, errlen, "--gw: %s is our own address", gw);
	}
	if (c->mode == MST_MODE_DEDICATED && c->n_cores < c->engines)
		return fail(err, errlen,
			    "--mode dedicated pins one engine per core: %u engines need --cores "
			    "with at least %u CPUs (have %u)",
			    c->engines, c->engines, c->n_cores);
	if (c->tcp_rto_max_ms < c->tcp_rto_min_ms)
		return fail(err, errlen, "--tcp-rto-max-ms %u is below --tcp-rto-min-ms %u",
			    c->tcp_rto_max_ms, c->tcp_rto_min_ms);
	if (c->pony_rto_min_us && c->pony_rto_max_us && c->pony_rto_max_us < c->pony_rto_min_us)
		return fail(err, errlen, "--pony-rto-max-us %u is below --pony-rto-min-us %u",
			    c->pony_rto_max_us, c->pony_rto_min_us);
	/* An app's arena holds a received message, one being sent and the
	 * library's copy buffer: 3 messages of the largest size. */
	if (c->pony_port && (uint64_t)c->pony_buf_mb << 20 < 3ull * c->pony_max_msg)
		return fail(err, errlen,
			    "--pony-buf-mb %u is too small for --pony-max-msg %u (need at least %llu MiB)",
			    c->pony_buf_mb, c->pony_max_msg,
			    (unsigned long long)((3ull * c->pony_max_msg + (1u << 20) - 1) >> 20));
	return 0;
}
