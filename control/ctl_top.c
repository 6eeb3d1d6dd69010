/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mustangctl top: a per-engine view refreshed every second, built from two
 * `metrics` answers (Prometheus text) one interval apart.
 *
 * ctl_top() -> [tty: raw stdin, SIGINT flag] -> loop: sample() (metrics
 * request, parse the engine-labelled lines we show) -> show() the rates
 * since the previous sample -> wait up to a second for 'q' -> restore the
 * terminal. Not a tty, or --iterations N: N plain blocks, no escapes.
 */
#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <mustang/ctl.h>

#include "control/ctl_server.h"
#include "control/ctl_top.h"

#define TOP_ENGINES 64
#define TOP_DROPS 16          /* drop reasons shown per engine */

struct eng_sample {
	bool seen;
	double rx_frames, tx_frames, rx_bytes, tx_bytes, busy_s, established, closed;
	double drops_total;
	char drop_name[TOP_DROPS][48];
	double drop_val[TOP_DROPS];
	unsigned n_drops;
};

struct sample {
	double t;                 /* CLOCK_MONOTONIC seconds */
	double apps;
	struct eng_sample e[TOP_ENGINES];
};

static volatile sig_atomic_t stop;

static void on_sigint(int sig)
{
	(void)sig;
	stop = 1;
}

static double mono_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* One "name{engine="N"...} value" line into s. */
static void take_line(struct sample *s, const char *line)
{
	static const struct {
		const char *name;
		size_t off;
	} f[] = {
		{ "mustang_rx_frames_total", offsetof(struct eng_sample, rx_frames) },
		{ "mustang_tx_frames_total", offsetof(struct eng_sample, tx_frames) },
		{ "mustang_rx_bytes_total", offsetof(struct eng_sample, rx_bytes) },
		{ "mustang_tx_bytes_total", offsetof(struct eng_sample, tx_bytes) },
		{ "mustang_engine_busy_seconds_total", offsetof(struct eng_sample, busy_s) },
		{ "mustang_tcp_established_total", offsetof(struct eng_sample, established) },
		{ "mustang_tcp_closed_total", offsetof(struct eng_sample, closed) },
	};
	const char *brace = strchr(line, '{'), *val = strrchr(line, ' ');
	unsigned id;
	struct eng_sample *e;

	if (!strncmp(line, "mustang_apps ", 13)) {
		s->apps = strtod(line + 13, NULL);
		return;
	}
	if (!brace || !val || sscanf(brace, "{engine=\"%u\"", &id) != 1 || id >= TOP_ENGINES)
		return;
	e = &s->e[id];
	e->seen = true;
	for (size_t k = 0; k < sizeof(f) / sizeof(f[0]); k++)
		if ((size_t)(brace - line) == strlen(f[k].name) && !strncmp(line, f[k].name, strlen(f[k].name)))
			*(double *)(void *)((char *)e + f[k].off) = strtod(val + 1, NULL);
	if (!strncmp(line, "mustang_drops_total{", 20)) {
		const char *r = strstr(brace, "reason=\"");
		double v = strtod(val + 1, NULL);

		e->drops_total += v;
		if (r && v > 0 && e->n_drops < TOP_DROPS) {
			size_t n = strcspn(r + 8, "\"");

			snprintf(e->drop_name[e->n_drops], sizeof(e->drop_name[0]), "%.*s",
				 (int)(n < 47 ? n : 47), r + 8);
			e->drop_val[e->n_drops++] = v;
		}
	}
}

static int sample(const char *ctl, int timeout_ms, struct sample *s)
{
	char *out = NULL, *save = NULL;
	size_t len = 0;
	int fd = ctl_client_connect(ctl, timeout_ms), rc;

	if (fd < 0)
		return fd;
	rc = ctl_client_call(fd, MST_CTL_metrics, "", &out, &len, timeout_ms);
	close(fd);
	if (!out)
		return rc;
	if (rc) {
		free(out);
		return rc;
	}
	memset(s, 0, sizeof(*s));
	s->t = mono_s();
	for (char *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
		if (l[0] != '#')
			take_line(s, l);
	free(out);
	return 0;
}

static double prev_drop(const struct eng_sample *p, const char *name)
{
	for (unsigned k = 0; k < p->n_drops; k++)
		if (!strcmp(p->drop_name[k], name))
			return p->drop_val[k];
	return 0;
}

static void show(const struct sample *a, const struct sample *b, bool tty)
{
	double dt = b->t - a->t > 1e-3 ? b->t - a->t : 1e-3;

	if (tty)
		fputs("\033[H\033[2J", stdout);
	printf("mustang top: %.0f app(s), interval %.2f s%s\n", b->apps, dt,
	       tty ? " (q or Ctrl-C quits)" : "");
	printf("%-6s %6s %10s %10s %10s %10s %8s %8s %8s %10s\n", "engine", "load%", "rx pkt/s",
	       "tx pkt/s", "rx Mbit/s", "tx Mbit/s", "conns", "open/s", "close/s", "drops/s");
	for (unsigned i = 0; i < TOP_ENGINES; i++) {
		const struct eng_sample *p = &a->e[i], *c = &b->e[i];

		if (!c->seen)
			continue;
		printf("%-6u %6.1f %10.0f %10.0f %10.2f %10.2f %8.0f %8.1f %8.1f %10.1f\n", i,
		       100.0 * (c->busy_s - p->busy_s) / dt, (c->rx_frames - p->rx_frames) / dt,
		       (c->tx_frames - p->tx_frames) / dt, 8e-6 * (c->rx_bytes - p->rx_bytes) / dt,
		       8e-6 * (c->tx_bytes - p->tx_bytes) / dt,
		       c->established > c->closed ? c->established - c->closed : 0.0,
		       (c->established - p->established) / dt, (c->closed - p->closed) / dt,
		       (c->drops_total - p->drops_total) / dt);
		for (unsigned k = 0; k < c->n_drops; k++) {
			double d = c->drop_val[k] - prev_drop(p, c->drop_name[k]);

			if (d > 0)
				printf("       drop %-32s %10.1f/s\n", c->drop_name[k], d / dt);
		}
	}
	fflush(stdout);
}

/* Wait up to ms for 'q' on a raw tty stdin; true when asked to stop. */
static bool wait_key(int ms, bool tty)
{
	struct pollfd p = { .fd = STDIN_FILENO, .events = POLLIN };
	char ch;

	if (!tty) {
		struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };

		nanosleep(&t, NULL);
		return stop;
	}
	if (poll(&p, 1, ms) > 0 && read(STDIN_FILENO, &ch, 1) == 1 && (ch == 'q' || ch == 'Q'))
		return true;
	return stop;
}

int ctl_top(const char *ctl, int timeout_ms, long iterations)
{
	bool tty = iterations == 0 && isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
	struct sample *s = calloc(2, sizeof(*s));
	struct termios old, raw;
	struct sigaction sa = { .sa_handler = on_sigint };
	int rc, cur = 0;

	if (!s)
		return -ENOMEM;
	if (!tty && iterations == 0)
		iterations = 1;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (tty && tcgetattr(STDIN_FILENO, &old) == 0) {
		raw = old;
		raw.c_lflag &= (tcflag_t) ~(ICANON | ECHO);
		tcsetattr(STDIN_FILENO, TCSANOW, &raw);
	}
	rc = sample(ctl, timeout_ms, &s[0]);
	for (long n = 0; !rc && !stop && (tty || n < iterations); n++) {
		if (wait_key(1000, tty))
			break;
		rc = sample(ctl, timeout_ms, &s[!cur]);
		if (rc)
			break;
		show(&s[cur], &s[!cur], tty);
		cur = !cur;
	}
	if (tty)
		tcsetattr(STDIN_FILENO, TCSANOW, &old);
	free(s);
	return rc;
}
