/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mustang-load's command line: lg_parse_args() fills struct lg_args or
 * explains, in one line, the first thing wrong. No exit() here, so the
 * unit tests can call it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "lg.h"

static const char *const mode_names[] = {
	[LG_TCP_RR] = "tcp_rr", [LG_TCP_CRR] = "tcp_crr",
	[LG_TCP_STREAM] = "tcp_stream", [LG_UDP_RR] = "udp_rr",
	[LG_PONY_RR] = "pony_rr", [LG_PONY_STREAM] = "pony_stream", [LG_PONY_READ] = "pony_read",
};

const char *lg_mode_name(enum lg_mode m)
{
	return mode_names[m];
}

void lg_usage(FILE *f)
{
	fprintf(f,
		"usage: mustang-load serve --stack kernel|mustang --port P [--threads N] [--ctl PATH]\n"
		"                    [--only sockets|pony]\n"
		"       mustang-load run --stack kernel|mustang --target IP:PORT\n"
		"                    --mode tcp_rr|tcp_crr|tcp_stream|udp_rr|pony_rr|pony_stream|pony_read\n"
		"                    [--conns N] [--threads N]\n"
		"                    [--size BYTES] [--duration SECS | --requests N] [--rate OPS]\n"
		"                    [--warmup SECS] [--timeout SECS] [--json FILE] [--quiet] [--ctl PATH]\n"
		"serve answers TCP echo (rr, crr) on P, TCP sink (stream) on P+1, UDP echo on P, and\n"
		"(mustang) Pony echo/sink/READ region on Pony service P; --only serves one kind (an\n"
		"idle server thread that busy-polls costs the other one cycles on a shared core).\n"
		"pony_*: --conns = operations in flight (pony_rr: one stream each), --stack mustang.\n"
		"run: closed loop unless --rate (open loop, latency from each request's due time).\n");
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

static int parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (s[0] == '\0' || s[0] == '-' || s[0] == '+')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

static int parse_double(const char *s, double lo, double hi, double *out)
{
	char *end;
	double v;

	if (s[0] == '\0')
		return -1;
	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || *end != '\0' || !isfinite(v) || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

/* "IP:PORT", IPv4 only (both stacks are IPv4 today). */
static int parse_target(const char *s, struct sockaddr_in *sa)
{
	char host[INET_ADDRSTRLEN];
	const char *colon = strrchr(s, ':');
	uint64_t port;

	if (colon == NULL || (size_t)(colon - s) >= sizeof(host) || colon == s)
		return -1;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	if (parse_u64(colon + 1, 1, 65535, &port) < 0)
		return -1;
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -1;
}

int lg_parse_args(int argc, const char *const *argv, struct lg_args *a, char *err, size_t errlen)
{
	bool have_target = false, have_port = false, have_mode = false;
	bool have_duration = false, have_size = false;
	uint64_t u;
	int i;

	memset(a, 0, sizeof(*a));
	a->conns = 1;
	a->threads = 1;
	a->duration = 10;
	a->timeout = 2;
	if (argc < 2)
		return fail(err, errlen, "missing command (serve or run)");
	if (strcmp(argv[1], "serve") == 0)
		a->cmd = LG_CMD_SERVE;
	else if (strcmp(argv[1], "run") == 0)
		a->cmd = LG_CMD_RUN;
	else
		return fail(err, errlen, "unknown command \"%s\" (serve or run)", argv[1]);

	for (i = 2; i < argc; i++) {
		const char *o = argv[i], *v;

		if (strcmp(o, "--quiet") == 0) {
			a->quiet = true;
			continue;
		}
		if (strncmp(o, "--", 2) != 0)
			return fail(err, errlen, "unexpected argument \"%s\"", o);
		if (i + 1 >= argc)
			return fail(err, errlen, "%s: missing value", o);
		v = argv[++i];
		if (strcmp(o, "--stack") == 0) {
			if (strcmp(v, "kernel") != 0 && strcmp(v, "mustang") != 0)
				return fail(err, errlen, "--stack: \"%s\" is not kernel or mustang", v);
			a->stack = v;
		} else if (strcmp(o, "--ctl") == 0) {
			if (v[0] == '\0')
				return fail(err, errlen, "--ctl: empty path");
			a->ctl = v;
		} else if (strcmp(o, "--port") == 0 && a->cmd == LG_CMD_SERVE) {
			if (parse_u64(v, 1, 65534, &u) < 0)
				return fail(err, errlen, "--port: \"%s\" is not 1..65534", v);
			a->port = (uint16_t)u;
			have_port = true;
		} else if (strcmp(o, "--only") == 0 && a->cmd == LG_CMD_SERVE) {
			if (strcmp(v, "sockets") == 0)
				a->serve_only = LG_SERVE_SOCKETS;
			else if (strcmp(v, "pony") == 0)
				a->serve_only = LG_SERVE_PONY;
			else
				return fail(err, errlen, "--only: \"%s\" is not sockets or pony", v);
		} else if (strcmp(o, "--threads") == 0) {
			if (parse_u64(v, 1, LG_MAX_THREADS, &u) < 0)
				return fail(err, errlen, "--threads: \"%s\" is not 1..%d", v,
					    LG_MAX_THREADS);
			a->threads = (unsigned)u;
		} else if (a->cmd == LG_CMD_SERVE) {
			return fail(err, errlen, "unknown option \"%s\" for serve", o);
		} else if (strcmp(o, "--target") == 0) {
			if (parse_target(v, &a->target) < 0)
				return fail(err, errlen, "--target: \"%s\" is not IPv4:PORT", v);
			have_target = true;
		} else if (strcmp(o, "--mode") == 0) {
			size_t m;

			for (m = 0; m < sizeof(mode_names) / sizeof(mode_names[0]); m++)
				if (strcmp(v, mode_names[m]) == 0)
					break;
			if (m == sizeof(mode_names) / sizeof(mode_names[0]))
				return fail(err, errlen,
					    "--mode: \"%s\" is not tcp_rr, tcp_crr, tcp_stream, udp_rr, pony_rr, pony_stream or pony_read",
					    v);
			a->mode = (enum lg_mode)m;
			have_mode = true;
		} else if (strcmp(o, "--conns") == 0) {
			if (parse_u64(v, 1, LG_MAX_CONNS, &u) < 0)
				return fail(err, errlen, "--conns: \"%s\" is not 1..%d", v, LG_MAX_CONNS);
			a->conns = (unsigned)u;
		} else if (strcmp(o, "--size") == 0) {
			if (parse_u64(v, 1, LG_MAX_SIZE, &u) < 0)
				return fail(err, errlen, "--size: \"%s\" is not 1..%u", v, LG_MAX_SIZE);
			a->size = (unsigned)u;
			have_size = true;
		} else if (strcmp(o, "--duration") == 0) {
			if (parse_double(v, 0.001, 86400, &a->duration) < 0)
				return fail(err, errlen, "--duration: \"%s\" is not 0.001..86400 seconds", v);
			have_duration = true;
		} else if (strcmp(o, "--requests") == 0) {
			if (parse_u64(v, 1, UINT64_C(1) << 40, &a->requests) < 0)
				return fail(err, errlen, "--requests: \"%s\" is not a positive count", v);
		} else if (strcmp(o, "--rate") == 0) {
			if (parse_double(v, 0.001, 1e9, &a->rate) < 0)
				return fail(err, errlen, "--rate: \"%s\" is not 0.001..1e9 ops/s", v);
		} else if (strcmp(o, "--warmup") == 0) {
			if (parse_double(v, 0, 3600, &a->warmup) < 0)
				return fail(err, errlen, "--warmup: \"%s\" is not 0..3600 seconds", v);
		} else if (strcmp(o, "--timeout") == 0) {
			if (parse_double(v, 0.001, 3600, &a->timeout) < 0)
				return fail(err, errlen, "--timeout: \"%s\" is not 0.001..3600 seconds", v);
		} else if (strcmp(o, "--json") == 0) {
			if (v[0] == '\0')
				return fail(err, errlen, "--json: empty path");
			a->json = v;
		} else {
			return fail(err, errlen, "unknown option \"%s\" for run", o);
		}
	}

	if (a->stack == NULL)
		return fail(err, errlen, "--stack is required (kernel or mustang)");
	if (a->ctl != NULL && strcmp(a->stack, "mustang") != 0)
		return fail(err, errlen, "--ctl is only for --stack mustang");
	if (a->cmd == LG_CMD_SERVE) {
		if (!have_port)
			return fail(err, errlen, "serve: --port is required");
		if (a->serve_only == LG_SERVE_PONY && strcmp(a->stack, "mustang") != 0)
			return fail(err, errlen, "--only pony: Pony needs --stack mustang");
		return 0;
	}
	if (!have_target)
		return fail(err, errlen, "run: --target IP:PORT is required");
	if (!have_mode)
		return fail(err, errlen, "run: --mode is required");
	if (have_duration && a->requests != 0)
		return fail(err, errlen, "--duration and --requests exclude each other");
	if (a->requests != 0)
		a->duration = 0;
	if (a->threads > a->conns)
		return fail(err, errlen, "--threads %u is more than --conns %u", a->threads, a->conns);
	if (a->mode == LG_TCP_STREAM && a->rate > 0)
		return fail(err, errlen, "--rate does not apply to tcp_stream (bulk, closed loop)");
	if (a->mode == LG_TCP_STREAM && a->requests != 0)
		return fail(err, errlen, "--requests does not apply to tcp_stream (use --duration)");
	if (lg_mode_is_pony(a->mode) && strcmp(a->stack, "mustang") != 0)
		return fail(err, errlen, "--mode %s: Pony needs --stack mustang", lg_mode_name(a->mode));
	if (lg_mode_is_pony(a->mode) && a->threads != 1)
		return fail(err, errlen, "--mode %s: one thread (--conns sets the operations in flight)",
			    lg_mode_name(a->mode));
	if (lg_mode_is_pony(a->mode) && a->conns > LG_PONY_MAX_INFLIGHT)
		return fail(err, errlen, "--mode %s: --conns %u is more than %u operations in flight",
			    lg_mode_name(a->mode), a->conns, LG_PONY_MAX_INFLIGHT);
	if (a->mode == LG_UDP_RR && have_size && a->size > 65507)
		return fail(err, errlen, "--size %u is more than a UDP datagram holds (65507)", a->size);
	if (a->requests != 0 && a->requests < a->conns)
		return fail(err, errlen, "--requests %llu is fewer than --conns %u",
			    (unsigned long long)a->requests, a->conns);
	if (!have_size)
		a->size = a->mode == LG_TCP_STREAM ? 65536 : 64;
	return 0;
}
