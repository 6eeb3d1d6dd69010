/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Prometheus metrics (see metrics.h; names in docs/observability.md).
 *
 * metrics_render(): lock d->engines_lock (an engine restart swaps engines
 * under it) -> daemon, ports, per engine: counters, drops, load, the poll
 * and TCP RTT histograms -> flow log -> unlock. Every value is a relaxed
 * load of what its single writer stores; nothing here touches an engine.
 *
 * metrics_http_start() -> thread http_main(): poll(listen, stop eventfd)
 *   -> accept -> read the request head (deadline HTTP_DEADLINE_MS, at most
 *   HTTP_HEAD_MAX bytes) -> "GET /metrics" 200 with the text, else 404/405
 *   -> close. One client at a time: a scraper is one client, and a stalled
 *   one costs at most the deadline.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <mustang/counters.h>

#include "control/daemon.h"
#include "control/emit.h"
#include "control/flows.h"
#include "control/metrics.h"

#define HTTP_DEADLINE_MS 2000
#define HTTP_HEAD_MAX 8192

/* ---- the text --------------------------------------------------------- */

struct out {
	char *buf;
	size_t len, cap;
	int err;
};

static void __attribute__((format(printf, 2, 3))) outf(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->err)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			o->err = -EINVAL;
			return;
		}
		if ((size_t)n < o->cap - o->len) {
			o->len += (size_t)n;
			return;
		}
		{
			size_t nc = o->cap * 2 + (size_t)n;
			char *nb = realloc(o->buf, nc);

			if (!nb) {
				o->err = -ENOMEM;
				return;
			}
			o->buf = nb;
			o->cap = nc;
		}
	}
}

/* HELP text: backslash and newline escaped (exposition format). */
static void family(struct out *o, const char *name, const char *type, const char *help)
{
	outf(o, "# HELP %s ", name);
	for (const char *p = help; *p; p++) {
		if (*p == '\\')
			outf(o, "\\\\");
		else if (*p == '\n')
			outf(o, "\\n");
		else
			outf(o, "%c", *p);
	}
	outf(o, "\n# TYPE %s %s\n", name, type);
}

/* A label value: backslash, quote and newline escaped. */
static void label_value(const char *v, char *buf, size_t cap)
{
	size_t n = 0;

	for (; *v && n + 3 < cap; v++) {
		if (*v == '\\' || *v == '"') {
			buf[n++] = '\\';
			buf[n++] = *v;
		} else if (*v == '\n') {
			buf[n++] = '\\';
			buf[n++] = 'n';
		} else {
			buf[n++] = *v;
		}
	}
	buf[n] = '\0';
}

static void hist(struct out *o, const char *name, const char *labels, const struct mst_hist *h,
		 double unit)
{
	uint64_t cum = 0;

	for (unsigned k = 0; k < MST_HIST_BUCKETS; k++) {
		cum += __atomic_load_n(&h->bucket[k], __ATOMIC_RELAXED);
		if (k + 1 < MST_HIST_BUCKETS)
			outf(o, "%s_bucket{%s,le=\"%.9g\"} %llu\n", name, labels,
			     unit * (double)(1ull << k), (unsigned long long)cum);
	}
	outf(o, "%s_bucket{%s,le=\"+Inf\"} %llu\n", name, labels, (unsigned long long)cum);
	outf(o, "%s_sum{%s} %.9g\n", name, labels,
	     unit * (double)__atomic_load_n(&h->sum, __ATOMIC_RELAXED));
	/* _count is the buckets' total, so that a scrape never sees them disagree. */
	outf(o, "%s_count{%s} %llu\n", name, labels, (unsigned long long)cum);
}

static void render_ports(struct daemon *d, struct out *o)
{
	static const struct {
		const char *name, *help;
		size_t off;
	} pc[] = {
#define PC(f, h) { #f, h, offsetof(struct port_info, f) }
		PC(ipackets, "frames received by the port (rte_eth_stats)"),
		PC(opackets, "frames sent by the port"),
		PC(ibytes, "bytes received by the port"),
		PC(obytes, "bytes sent by the port"),
		PC(imissed, "frames the port dropped: RX queues full"),
		PC(ierrors, "erroneous frames received"),
		PC(oerrors, "frames the port failed to send"),
		PC(rx_nombuf, "RX mbuf allocation failures"),
		PC(rx_multiseg, "multi-segment frames dropped (jumbo without scatter)"),
#undef PC
	};
	struct port_info pi[MST_MAX_PORTS];
	char lv[MST_MAX_PORTS][160];
	char name[128];

	for (unsigned i = 0; i < d->n_ports; i++) {
		port_get_info(d->ports[i], &pi[i]);
		label_value(pi[i].name, lv[i], sizeof(lv[i]));
	}
	family(o, "mustang_port_link_up", "gauge", "1 when the port's link is up");
	for (unsigned i = 0; i < d->n_ports; i++)
		outf(o, "mustang_port_link_up{port=\"%s\"} %d\n", lv[i], pi[i].link_up);
	for (size_t k = 0; k < sizeof(pc) / sizeof(pc[0]); k++) {
		snprintf(name, sizeof(name), "mustang_port_%s_total", pc[k].name);
		family(o, name, "counter", pc[k].help);
		for (unsigned i = 0; i < d->n_ports; i++) {
			uint64_t v;

			memcpy(&v, (const char *)&pi[i] + pc[k].off, sizeof(v));
			outf(o, "%s{port=\"%s\"} %llu\n", name, lv[i], (unsigned long long)v);
		}
	}
	for (unsigned k = 0; k < MST_PORT__COUNT; k++) {
		snprintf(name, sizeof(name), "mustang_port_%s_total", mst_port_event_names[k]);
		family(o, name, "counter", mst_port_event_help[k]);
		for (unsigned i = 0; i < d->n_ports; i++)
			outf(o, "%s{port=\"%s\"} %llu\n", name, lv[i],
			     (unsigned long long)pi[i].events[k]);
	}
}

static void render_counters(struct daemon *d, struct out *o)
{
	char name[128];

	for (unsigned k = 0; k < MST_CTR__COUNT; k++) {
		snprintf(name, sizeof(name), "mustang_%s_total", mst_counter_names[k]);
		family(o, name, "counter", mst_counter_help[k]);
		for (unsigned i = 0; i < d->n_engines; i++) {
			const struct mst_stats *st = d->ops->stats(d->engines[i]);

			outf(o, "%s{engine=\"%u\"} %llu\n", name, i,
			     (unsigned long long)__atomic_load_n(&st->ctr[k], __ATOMIC_RELAXED));
		}
	}
	family(o, "mustang_drops_total", "counter",
	       "frames dropped, by engine and reason (reasons: mustangctl stats, include/mustang/counters.h)");
	for (unsigned i = 0; i < d->n_engines; i++) {
		const struct mst_stats *st = d->ops->stats(d->engines[i]);

		for (unsigned k = 0; k < MST_DROP__COUNT; k++)
			outf(o, "mustang_drops_total{engine=\"%u\",reason=\"%s\"} %llu\n", i,
			     mst_drop_names[k],
			     (unsigned long long)__atomic_load_n(&st->drop[k], __ATOMIC_RELAXED));
	}
}

static void render_engines(struct daemon *d, struct out *o)
{
	static const char *const load_type[MST_LOAD__COUNT] = {
		[MST_LOAD_polls] = "counter", [MST_LOAD_busy_polls] = "counter",
		[MST_LOAD_idle_sleeps] = "counter", [MST_LOAD_busy_ns] = "counter",
		[MST_LOAD_max_delay_ns] = "gauge",
	};
	char name[128], lab[32];

	for (unsigned k = 0; k < MST_LOAD__COUNT; k++) {
		bool ns = k == MST_LOAD_busy_ns || k == MST_LOAD_max_delay_ns;

		/* busy_ns -> busy_seconds: Prometheus names carry base units */
		snprintf(name, sizeof(name), "mustang_engine_%.*s%s%s",
			 (int)strlen(mst_load_names[k]) - (ns ? 3 : 0), mst_load_names[k],
			 ns ? "_seconds" : "", load_type[k][0] == 'c' ? "_total" : "");
		family(o, name, load_type[k], mst_load_help[k]);
		for (unsigned i = 0; i < d->n_engines; i++) {
			uint64_t load[MST_LOAD__COUNT];

			rt_engine_load(&d->group.engines[i], load);
			if (ns)
				outf(o, "%s{engine=\"%u\"} %.9f\n", name, i, (double)load[k] / 1e9);
			else
				outf(o, "%s{engine=\"%u\"} %llu\n", name, i, (unsigned long long)load[k]);
		}
	}
	family(o, "mustang_engine_poll_seconds", "histogram",
	       "duration of engine polls that did work");
	for (unsigned i = 0; i < d->n_engines; i++) {
		snprintf(lab, sizeof(lab), "engine=\"%u\"", i);
		hist(o, "mustang_engine_poll_seconds", lab, &d->group.engines[i].poll_hist, 64e-9);
	}
	family(o, "mustang_tcp_rtt_seconds", "histogram",
	       "TCP round-trip time samples (RFC 6298 measurements), all connections");
	for (unsigned i = 0; i < d->n_engines; i++) {
		snprintf(lab, sizeof(lab), "engine=\"%u\"", i);
		hist(o, "mustang_tcp_rtt_seconds", lab, &d->ops->stats(d->engines[i])->tcp_rtt_us,
		     1e-6);
	}
}

static void render_flows(struct daemon *d, struct out *o)
{
	struct flows_stats fs;

	flows_get_stats(d->flows, &fs);
	family(o, "mustang_flow_log_enabled", "gauge", "1 when flow records are on (--flow-log)");
	outf(o, "mustang_flow_log_enabled %d\n", d->flows != NULL);
	family(o, "mustang_flow_log_records_total", "counter",
	       "flow records the control plane took from the engines");
	outf(o, "mustang_flow_log_records_total %llu\n", (unsigned long long)fs.records);
	family(o, "mustang_flow_log_written_total", "counter", "flow records written to the file");
	outf(o, "mustang_flow_log_written_total %llu\n", (unsigned long long)fs.written);
	family(o, "mustang_flow_log_write_errors_total", "counter",
	       "flow log file writes or rotations that failed");
	outf(o, "mustang_flow_log_write_errors_total %llu\n", (unsigned long long)fs.write_errors);
	family(o, "mustang_flow_log_rotations_total", "counter", "flow log file rotations");
	outf(o, "mustang_flow_log_rotations_total %llu\n", (unsigned long long)fs.rotations);
}

int metrics_render(struct daemon *d, char **out, size_t *len)
{
	struct out o = { .cap = 65536 };

	o.buf = malloc(o.cap);
	if (!o.buf)
		return -ENOMEM;
	o.buf[0] = '\0';
	pthread_mutex_lock(&d->engines_lock);
	family(&o, "mustang_up", "gauge", "1: mustangd answers");
	outf(&o, "mustang_up 1\n");
	family(&o, "mustang_uptime_seconds", "gauge", "seconds since this mustangd started");
	outf(&o, "mustang_uptime_seconds %.3f\n", (double)(rt_now_ns() - d->start_ns) / 1e9);
	family(&o, "mustang_engines", "gauge", "engines serving the port");
	outf(&o, "mustang_engines %u\n", d->n_engines);
	family(&o, "mustang_apps", "gauge", "attached applications");
	outf(&o, "mustang_apps %u\n", d->apps ? apps_count(d->apps) : 0);
	render_ports(d, &o);
	render_counters(d, &o);
	render_engines(d, &o);
	render_flows(d, &o);
	pthread_mutex_unlock(&d->engines_lock);
	if (o.err) {
		free(o.buf);
		return o.err;
	}
	*out = o.buf;
	*len = o.len;
	return 0;
}

int metrics_answer(struct daemon *d, struct emit *e)
{
	char *text;
	size_t len;
	int rc;

	if (e->json) {
		emit_str(e, "error", "metrics are in the Prometheus text format only (no --json)");
		return -EINVAL;
	}
	rc = metrics_render(d, &text, &len);
	if (rc)
		return rc;
	emit_raw(e, text, len);
	free(text);
	return 0;
}

/* ---- the HTTP listener -------------------------------------------------- */

struct metrics_http {
	struct daemon *d;
	int fd;
	int stop_fd;             /* eventfd: metrics_http_stop() -> poll() */
	pthread_t thread;
};

static uint64_t mono_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

static void send_all(int fd, const char *p, size_t n, uint64_t deadline)
{
	while (n) {
		struct pollfd pf = { .fd = fd, .events = POLLOUT };
		uint64_t now = mono_ms();
		ssize_t w;

		if (now >= deadline || poll(&pf, 1, (int)(deadline - now)) <= 0)
			return;
		w = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0 && errno != EAGAIN && errno != EINTR)
			return;
		if (w > 0) {
			p += w;
			n -= (size_t)w;
		}
	}
}

static void reply(int fd, const char *status, const char *type, const char *body, size_t len,
		  uint64_t deadline)
{
	char head[256];
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
			 "Connection: close\r\n\r\n", status, type, len);

	send_all(fd, head, (size_t)n, deadline);
	send_all(fd, body, len, deadline);
}

/* Read the request head; 1 complete, 0 not (deadline, size, EOF). */
static int read_head(int fd, char *buf, size_t cap, uint64_t deadline)
{
	size_t got = 0;

	while (got + 1 < cap) {
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		uint64_t now = mono_ms();
		ssize_t r;

		if (now >= deadline || poll(&pf, 1, (int)(deadline - now)) <= 0)
			return 0;
		r = recv(fd, buf + got, cap - 1 - got, MSG_DONTWAIT);
		if (r == 0)
			return 0;
		if (r < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			return 0;
		}
		got += (size_t)r;
		buf[got] = '\0';
		if (strstr(buf, "\r\n\r\n") || strstr(buf, "\n\n"))
			return 1;
	}
	return 0;
}

static void serve_one(struct metrics_http *m, int fd)
{
	static char head[HTTP_HEAD_MAX]; /* this thread only */
	uint64_t deadline = mono_ms() + HTTP_DEADLINE_MS;
	const char *msg;
	char *text;
	size_t len;

	if (!read_head(fd, head, sizeof(head), deadline))
		return;
	if (strncmp(head, "GET ", 4) != 0) {
		msg = "only GET\n";
		reply(fd, "405 Method Not Allowed", "text/plain", msg, strlen(msg), deadline);
		return;
	}
	if (strncmp(head + 4, "/metrics ", 9) != 0 && strncmp(head + 4, "/metrics?", 9) != 0 &&
	    strncmp(head + 4, "/ ", 2) != 0) {
		msg = "see /metrics\n";
		reply(fd, "404 Not Found", "text/plain", msg, strlen(msg), deadline);
		return;
	}
	if (metrics_render(m->d, &text, &len)) {
		msg = "out of memory\n";
		reply(fd, "500 Internal Server Error", "text/plain", msg, strlen(msg), deadline);
		return;
	}
	reply(fd, "200 OK", "text/plain; version=0.0.4; charset=utf-8", text, len, deadline);
	free(text);
}

static void *http_main(void *arg)
{
	struct metrics_http *m = arg;

	for (;;) {
		struct pollfd pf[2] = { { .fd = m->fd, .events = POLLIN },
					{ .fd = m->stop_fd, .events = POLLIN } };
		int c;

		if (poll(pf, 2, -1) < 0 && errno != EINTR)
			break;
		if (pf[1].revents)
			break;
		if (!(pf[0].revents & POLLIN))
			continue;
		c = accept4(m->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (c < 0)
			continue;
		serve_one(m, c);
		close(c);
	}
	return NULL;
}

static int listen_on(const char *addr, char *err, size_t errlen)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	char ip[INET_ADDRSTRLEN];
	const char *colon = strrchr(addr, ':');
	int fd, one = 1;

	if (!colon || (size_t)(colon - addr) >= sizeof(ip)) {
		snprintf(err, errlen, "\"%s\" is not ADDR:PORT", addr);
		return -EINVAL;
	}
	memcpy(ip, addr, (size_t)(colon - addr));
	ip[colon - addr] = '\0';
	if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1) {
		snprintf(err, errlen, "\"%s\" is not an IPv4 address", ip);
		return -EINVAL;
	}
	sa.sin_port = htons((uint16_t)atoi(colon + 1));
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -errno;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 16)) {
		int e = errno;

		snprintf(err, errlen, "%s: %s", addr, strerror(e));
		close(fd);
		return -e;
	}
	return fd;
}

struct metrics_http *metrics_http_start(struct daemon *d, const char *addr, char *err,
					size_t errlen)
{
	struct metrics_http *m = calloc(1, sizeof(*m));
	int rc;

	if (!m) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	m->d = d;
	m->fd = listen_on(addr, err, errlen);
	if (m->fd < 0)
		goto out_free;
	m->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (m->stop_fd < 0) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		goto out_close;
	}
	rc = pthread_create(&m->thread, NULL, http_main, m);
	if (rc) {
		snprintf(err, errlen, "thread: %s", strerror(rc));
		goto out_stopfd;
	}
	return m;

out_stopfd:
	close(m->stop_fd);
out_close:
	close(m->fd);
out_free:
	free(m);
	return NULL;
}

void metrics_http_stop(struct metrics_http *m)
{
	uint64_t one = 1;

	if (!m)
		return;
	if (write(m->stop_fd, &one, sizeof(one)) != sizeof(one))
		pthread_cancel(m->thread);
	pthread_join(m->thread, NULL);
	close(m->stop_fd);
	close(m->fd);
	free(m);
}
