/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mustang-load: one load generator for two stacks. `--stack kernel` drives
 * Linux sockets, `--stack mustang` drives libmustang; everything above the
 * ops table (stack_*.c) is the same code, so a ratio compares stacks.
 *
 *   main() -> lg_parse_args() [args.c] -> ops->init()
 *          -> lg_serve() [server.c] | lg_run() [client.c] -> report.c
 *
 * Exit status: 0 done; 1 the run failed (target refused or vanished, no
 * op completed, errors); 2 bad arguments.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lg.h"

int main(int argc, char **argv)
{
	struct lg_args a;
	struct lg_result r;
	const struct lg_ops *ops;
	char err[256];
	uint64_t nerr = 0;
	int rc;

	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		lg_usage(stdout);
		return 0;
	}
	if (lg_parse_args(argc, (const char *const *)argv, &a, err, sizeof(err)) < 0) {
		fprintf(stderr, "mustang-load: %s\n", err);
		lg_usage(stderr);
		return 2;
	}
	ops = strcmp(a.stack, "mustang") == 0 ? &lg_mustang_ops : &lg_kernel_ops;
	if (ops == &lg_mustang_ops && !lg_have_mustang) {
		fprintf(stderr, "mustang-load: --stack mustang: this build has no libmustang\n");
		return 1;
	}
	if (ops->init(a.ctl) < 0) {
		fprintf(stderr, "mustang-load: cannot attach to mustangd%s%s: %s\n",
			a.ctl ? " at " : "", a.ctl ? a.ctl : "", strerror(errno));
		return 1;
	}
	if (a.cmd == LG_CMD_SERVE) {
		rc = lg_serve(ops, &a);
		ops->fini();
		return rc < 0 ? 1 : 0;
	}
	memset(&r, 0, sizeof(r));
	rc = lg_run(ops, &a, &r);
	ops->fini();
	if (rc < 0 && r.lat == NULL) {
		fprintf(stderr, "mustang-load: %s\n", strerror(-rc));
		return 1;
	}
	lg_report_text(stdout, &r);
	if (a.json != NULL && lg_report_json(a.json, &r) < 0) {
		fprintf(stderr, "mustang-load: cannot write %s: %s\n", a.json, strerror(errno));
		rc = -1;
	}
	for (int e = 0; e < LG_ERR_N; e++)
		nerr += r.errors[e];
	if (r.ops == 0) {
		fprintf(stderr, "mustang-load: no operation completed%s\n",
			r.errors[LG_ERR_REFUSED] ? ": the target refused the connection" :
			r.errors[LG_ERR_CONNECT_TIMEOUT] ? ": connecting to the target timed out" :
			nerr ? " (see errors)" : "");
		rc = -1;
	} else if (nerr) {
		fprintf(stderr, "mustang-load: %llu error(s) during the run (the target vanished or misbehaved?)\n",
			(unsigned long long)nerr);
		rc = -1;
	}
	free(r.lat);
	return rc < 0 ? 1 : 0;
}
