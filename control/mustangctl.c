/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mustangctl: the operator CLI. One request to mustangd's control socket,
 * its answer on stdout.
 *
 * main() -> parse_args() -> ctl_client_connect() -> ctl_client_call() -> print
 * top: ctl_top.c (rates from two `metrics` answers a second apart).
 * flows --follow: the same request again every FOLLOW_MS from where the
 * last answer stopped (its first line, "next SEQ"), until interrupted.
 *
 * Exit status: 0 answered, 1 the daemon is unreachable or answered with an
 * error, 2 usage error.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mustang/ctl.h>

#include "control/ctl_server.h"
#include "control/ctl_top.h"

#define CTL_DEFAULT_TIMEOUT_MS 5000
#define FOLLOW_MS 500
#define NEXT_LINE 33 /* the flows answer's first line: "next SEQ", blank-padded, '\n' */

struct cmd {
	const char *name;
	enum mst_ctl_req req;
	const char *help;
};

static const struct cmd cmds[] = {
#define MST_X_CMD(name, val, help) { #name, MST_CTL_##name, help },
	MST_FOREACH_CTL_REQ(MST_X_CMD)
#undef MST_X_CMD
};

#define N_CMDS (sizeof(cmds) / sizeof(cmds[0]))

struct args {
	const char *ctl;
	bool json;
	int timeout_ms;
	const struct cmd *cmd;
	const char *target;        /* engine restart: the engine id */
	const char *fail_at;       /* test only: the step to fail */
	const char *binary;        /* upgrade: the new mustangd (default: the running one's) */
	long upgrade_ms;           /* upgrade: the daemon's deadline, 0 = its default */
	bool follow;               /* flows: keep printing new records */
	const char *app;           /* flows: only this pid's */
	const char *peer;          /* flows: only this peer IP[:PORT] */
	bool top;                  /* top (not a daemon request: built on metrics) */
	long iterations;           /* top: blocks to print, 0 = until q on a tty */
	char arg[128];             /* the request's argument */
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: mustangctl [--ctl PATH] [--json] [--timeout MS] COMMAND\n"
		   "Ask a running mustangd.\n\nCommands:\n");
	for (size_t i = 0; i < N_CMDS; i++)
		if (cmds[i].req != MST_CTL_engine_restart && cmds[i].req != MST_CTL_attach &&
		    cmds[i].req != MST_CTL_upgrade && cmds[i].req != MST_CTL_takeover &&
		    cmds[i].req != MST_CTL_flows)
			fprintf(f, "  %-10s %s\n", cmds[i].name, cmds[i].help);
	fprintf(f, "  upgrade [--binary PATH] [--timeout-ms N] [--fail-at STEP]\n"
		   "             a new mustangd (default: the same binary) takes over every app,\n"
		   "             connection and port; the old one exits\n");
	fprintf(f, "  engine restart ID [--fail-at STEP]\n"
		   "             hand engine ID over to a new engine with all its state\n"
		   "             (--fail-at, for tests: make STEP fail and roll back)\n");
	fprintf(f, "  top [--iterations N]\n"
		   "             per-engine load, packets/s, Mbit/s, connections, drops/s each second\n"
		   "             (q or Ctrl-C quits; not a tty or --iterations: N plain blocks)\n");
	fprintf(f, "  flows [--follow] [--app PID] [--peer IP[:PORT]]\n"
		   "             flow records (--json: JSON lines; --follow: keep printing)\n");
	fprintf(f,
		"\nOptions (before or after the command):\n"
		"  --ctl PATH      control socket (default %s)\n"
		"  --json          answer in JSON\n"
		"  --timeout MS    give up after MS milliseconds (default %d)\n"
		"  --help          print this help\n",
		MST_CTL_DEFAULT_PATH, CTL_DEFAULT_TIMEOUT_MS);
}

static int usage_error(const char *what, const char *arg)
{
	fprintf(stderr, "mustangctl: %s \"%s\"\n", what, arg);
	usage(stderr);
	return 2;
}

/* "--name VALUE" or "--name=VALUE" at argv[*i]; NULL if argv[*i] is not
 * --name. Sets *missing when the value is absent. */
static const char *opt_value(int argc, char **argv, int *i, const char *name, bool *missing)
{
	size_t n = strlen(name);
	const char *a = argv[*i];

	if (strncmp(a, name, n) != 0)
		return NULL;
	if (a[n] == '=')
		return a + n + 1;
	if (a[n] != '\0')
		return NULL;
	if (*i + 1 >= argc) {
		*missing = true;
		return NULL;
	}
	return argv[++*i];
}

/* 0 ok, 1 --help printed, 2 usage error printed. */
static int parse_args(int argc, char **argv, struct args *a)
{
	a->ctl = MST_CTL_DEFAULT_PATH;
	a->json = false;
	a->timeout_ms = CTL_DEFAULT_TIMEOUT_MS;
	a->cmd = NULL;
	a->target = a->fail_at = a->binary = NULL;
	a->upgrade_ms = 0;
	a->follow = false;
	a->app = a->peer = NULL;
	a->top = false;
	a->iterations = 0;
	a->arg[0] = '\0';

	for (int i = 1; i < argc; i++) {
		const char *s = argv[i], *v;
		bool missing = false;

		if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
			usage(stdout);
			return 1;
		}
		if (strcmp(s, "--json") == 0) {
			a->json = true;
			continue;
		}
		if (strcmp(s, "--follow") == 0) {
			a->follow = true;
			continue;
		}
		if ((v = opt_value(argc, argv, &i, "--app", &missing)) != NULL) {
			if (v[0] < '0' || v[0] > '9' || strspn(v, "0123456789") != strlen(v) ||
			    strlen(v) > 10)
				return usage_error("--app wants a process id, not", v);
			a->app = v;
			continue;
		}
		if ((v = opt_value(argc, argv, &i, "--iterations", &missing)) != NULL) {
			char *end;

			errno = 0;
			a->iterations = strtol(v, &end, 10);
			if (v[0] < '0' || v[0] > '9' || *end || errno || a->iterations < 1 ||
			    a->iterations > 1000000)
				return usage_error("--iterations wants 1..1000000, not", v);
			continue;
		}
		if ((v = opt_value(argc, argv, &i, "--peer", &missing)) != NULL) {
			if (!v[0] || strlen(v) > 21 || strspn(v, "0123456789.:") != strlen(v))
				return usage_error("--peer wants IP or IP:PORT, not", v);
			a->peer = v;
			continue;
		}
		if ((v = opt_value(argc, argv, &i, "--ctl", &missing)) != NULL) {
			if (v[0] == '\0')
				return usage_error("empty socket path for", "--ctl");
			a->ctl = v;
			continue;
		}
		if ((v = opt_value(argc, argv, &i, "--timeout", &missing)) != NULL) {
			char *end;
			long ms;

			errno = 0;
			ms = strtol(v, &end, 10);
			if (v[0] < '0' || v[0] > '9' || *end != '\0' || errno != 0 || ms < 1 ||
			    ms > 3600000)
				return usage_error("--timeout wants 1..3600000 milliseconds, not", v);
			a->timeout_ms = (int)ms;
			continue;
		}
		if ((v = opt_value(argc, argv, &i, "--fail-at", &missing)) != NULL) {
			a->fail_at = v;
			continue;
		}
		if ((v = opt_value(argc, argv, &i, "--binary", &missing)) != NULL) {
			if (v[0] != '/')
				return usage_error("--binary wants an absolute path, not", v);
			a->binary = v;
			continue;
		}
		if ((v = opt_value(argc, argv, &i, "--timeout-ms", &missing)) != NULL) {
			char *end;

			errno = 0;
			a->upgrade_ms = strtol(v, &end, 10);
			if (v[0] < '0' || v[0] > '9' || *end || errno || a->upgrade_ms < 100 ||
			    a->upgrade_ms > 600000)
				return usage_error("--timeout-ms wants 100..600000 milliseconds, not", v);
			continue;
		}
		if (missing)
			return usage_error("missing value for", s);
		if (s[0] == '-')
			return usage_error("unknown option", s);
		if (a->cmd != NULL && a->cmd->req == MST_CTL_engine_restart && !a->target) {
			a->target = s;
			continue;
		}
		if (a->cmd != NULL || a->top)
			return usage_error("unexpected argument", s);
		if (strcmp(s, "top") == 0) {
			a->top = true;
			continue;
		}
		if (strcmp(s, "engine") == 0) {
			if (i + 1 >= argc || strcmp(argv[i + 1], "restart") != 0)
				return usage_error("engine wants a subcommand (restart), after", s);
			i++;
			s = "engine_restart";
		}
		for (size_t c = 0; c < N_CMDS; c++)
			if (strcmp(s, cmds[c].name) == 0)
				a->cmd = &cmds[c];
		if (a->cmd == NULL)
			return usage_error("unknown command", s);
	}
	if (a->top) {
		if (a->json || a->follow || a->app || a->peer)
			return usage_error("top takes only", "--iterations");
		return 0;
	}
	if (a->iterations)
		return usage_error("--iterations goes with", "top");
	if (a->cmd == NULL) {
		fprintf(stderr, "mustangctl: no command given\n");
		usage(stderr);
		return 2;
	}
	if (a->cmd->req == MST_CTL_engine_restart) {
		if (!a->target)
			return usage_error("engine restart wants an engine id", "");
		snprintf(a->arg, sizeof(a->arg), "%s%s%s", a->target, a->fail_at ? " fail=" : "",
			 a->fail_at ? a->fail_at : "");
		/* The daemon answers after the handover (its own deadline is
		 * 10 s for the blackout, plus the new engine's creation). */
		if (a->timeout_ms == CTL_DEFAULT_TIMEOUT_MS)
			a->timeout_ms = 30000;
	} else if (a->cmd->req == MST_CTL_upgrade) {
		int n = 0;

		if (a->binary)
			n += snprintf(a->arg + n, sizeof(a->arg) - (size_t)n, "binary=%s ", a->binary);
		if (a->upgrade_ms && n < (int)sizeof(a->arg))
			n += snprintf(a->arg + n, sizeof(a->arg) - (size_t)n, "timeout=%ld ",
				      a->upgrade_ms);
		if (a->fail_at && n < (int)sizeof(a->arg))
			n += snprintf(a->arg + n, sizeof(a->arg) - (size_t)n, "fail=%s", a->fail_at);
		if (n >= (int)sizeof(a->arg))
			return usage_error("upgrade arguments too long", a->binary ? a->binary : "");
		/* The daemon answers when the upgrade is done: wait longer. */
		a->timeout_ms = (int)(a->upgrade_ms ? a->upgrade_ms : 20000) + 5000;
	} else if (a->fail_at || a->binary || a->upgrade_ms) {
		return usage_error("--fail-at, --binary, --timeout-ms go with", "engine restart / upgrade");
	}
	if (a->cmd->req != MST_CTL_flows && (a->follow || a->app || a->peer))
		return usage_error("--follow, --app, --peer go with", "flows");
	if (a->cmd->req == MST_CTL_metrics && a->json)
		return usage_error("metrics are Prometheus text; no", "--json");
	return 0;
}

/* flows: the argument for records after `since`. */
static void flows_arg(const struct args *a, unsigned long long since, char *out, size_t cap)
{
	snprintf(out, cap, "since=%llu%s%s%s%s%s", since, a->app ? " app=" : "",
		 a->app ? a->app : "", a->peer ? " peer=" : "", a->peer ? a->peer : "",
		 a->json ? " json" : "");
}

/* One flows request: print the records, *since = where they stopped.
 * 0, or the exit status. */
static int flows_once(const struct args *a, unsigned long long *since)
{
	char arg[128], *out = NULL, *end;
	size_t len = 0;
	int fd, rc;

	flows_arg(a, *since, arg, sizeof(arg));
	fd = ctl_client_connect(a->ctl, a->timeout_ms);
	if (fd < 0) {
		fprintf(stderr, "mustangctl: cannot connect to %s: %s\n", a->ctl, strerror(-fd));
		return 1;
	}
	rc = ctl_client_call(fd, MST_CTL_flows, arg, &out, &len, a->timeout_ms);
	close(fd);
	if (!out || rc) {
		fprintf(stderr, "mustangctl: flows: %s\n", out && len ? out : strerror(-rc));
		free(out);
		return 1;
	}
	if (len < NEXT_LINE || strncmp(out, "next ", 5) != 0) {
		fprintf(stderr, "mustangctl: flows: unexpected answer\n");
		free(out);
		return 1;
	}
	*since = strtoull(out + 5, &end, 10);
	if (fwrite(out + NEXT_LINE, 1, len - NEXT_LINE, stdout) != len - NEXT_LINE ||
	    fflush(stdout) != 0) {
		free(out);
		return 1; /* the reader went away (a pipe closed): done */
	}
	free(out);
	return 0;
}

static int flows_main(const struct args *a)
{
	unsigned long long since = 0;
	const struct timespec pause = { 0, FOLLOW_MS * 1000000L };
	int rc;

	while ((rc = flows_once(a, &since)) == 0 && a->follow)
		nanosleep(&pause, NULL);
	return rc;
}

int main(int argc, char **argv)
{
	struct args a;
	size_t len = 0;
	char *out = NULL;
	int fd, rc;

	rc = parse_args(argc, argv, &a);
	if (rc == 1)
		return 0;
	if (rc != 0)
		return rc;
	if (a.top) {
		rc = ctl_top(a.ctl, a.timeout_ms, a.iterations);
		if (rc)
			fprintf(stderr, "mustangctl: top: %s\n", strerror(-rc));
		return rc ? 1 : 0;
	}
	if (a.cmd->req == MST_CTL_flows) {
		signal(SIGPIPE, SIG_IGN); /* a closed pipe is a write error: exit 1 */
		return flows_main(&a);
	}

	fd = ctl_client_connect(a.ctl, a.timeout_ms);
	if (fd == -ENOENT || fd == -ECONNREFUSED) {
		fprintf(stderr, "mustangctl: mustangd is not running at %s\n", a.ctl);
		return 1;
	}
	if (fd == -EACCES || fd == -EPERM) {
		fprintf(stderr,
			"mustangctl: permission denied on %s (run as root or as a member of "
			"the socket's group)\n",
			a.ctl);
		return 1;
	}
	if (fd < 0) {
		fprintf(stderr, "mustangctl: cannot connect to %s: %s\n", a.ctl, strerror(-fd));
		return 1;
	}

	rc = ctl_client_call(fd, (uint16_t)(a.cmd->req | (a.json ? MST_CTL_F_JSON : 0)), a.arg,
			     &out, &len, a.timeout_ms);
	close(fd);
	if (out == NULL) { /* transport error: no answer at all */
		if (rc == -ETIMEDOUT)
			fprintf(stderr, "mustangctl: no answer from %s within %d ms\n", a.ctl,
				a.timeout_ms);
		else
			fprintf(stderr, "mustangctl: %s: %s\n", a.ctl, strerror(-rc));
		return 1;
	}
	if (rc != 0) {
		if (rc == -EACCES)
			fprintf(stderr,
				"mustangctl: permission denied: operators are root, mustangd's "
				"user or members of the group of %s\n",
				a.ctl);
		else {
			while (len > 0 && out[len - 1] == '\n')
				out[--len] = '\0';
			fprintf(stderr, "mustangctl: %s: %s\n", a.cmd->name,
				len > 0 ? out : strerror(-rc));
		}
		free(out);
		return 1;
	}
	if (len > 0 && (fwrite(out, 1, len, stdout) != len ||
			(out[len - 1] != '\n' && putchar('\n') == EOF))) {
		free(out);
		return 1;
	}
	free(out);
	if (fflush(stdout) != 0) {
		fprintf(stderr, "mustangctl: write error: %s\n", strerror(errno));
		return 1;
	}
	return 0;
}
