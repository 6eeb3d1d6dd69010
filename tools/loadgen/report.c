/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What a run measured: CPU accounting (getrusage for this process,
 * /proc/stat for the whole machine), the summary table and the JSON file.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "lg.h"

#define LG_ERR_STR(e, s, d) [LG_ERR_##e] = s,
const char *const lg_err_name[LG_ERR_N] = { LG_FOREACH_ERR(LG_ERR_STR) };
#undef LG_ERR_STR
#define LG_ERR_STR(e, s, d) [LG_ERR_##e] = d,
const char *const lg_err_desc[LG_ERR_N] = { LG_FOREACH_ERR(LG_ERR_STR) };
#undef LG_ERR_STR

static const double pcts[] = { 50, 90, 99, 99.9 };
static const char *const pct_names[] = { "p50", "p90", "p99", "p99.9" };

void lg_cpu_snapshot(struct lg_cpu *c)
{
	struct rusage ru;
	unsigned long long v[10] = { 0 };
	long hz = sysconf(_SC_CLK_TCK);
	FILE *f;

	memset(c, 0, sizeof(*c));
	if (getrusage(RUSAGE_SELF, &ru) == 0) {
		c->user_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
		c->sys_s = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
	}
	c->ncpu = (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
	f = fopen("/proc/stat", "re");
	if (f == NULL)
		return;
	/* cpu  user nice system idle iowait irq softirq steal guest guest_nice */
	if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
		   &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]) >= 8) {
		/* guest time is already inside user: not added again */
		double busy = (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]);

		c->machine_busy_s = busy / (double)hz;
		c->machine_total_s = (busy + (double)(v[3] + v[4])) / (double)hz;
	}
	fclose(f);
}

void lg_cpu_delta(struct lg_cpu *out, const struct lg_cpu *a, const struct lg_cpu *b)
{
	out->user_s = b->user_s - a->user_s;
	out->sys_s = b->sys_s - a->sys_s;
	out->machine_busy_s = b->machine_busy_s - a->machine_busy_s;
	out->machine_total_s = b->machine_total_s - a->machine_total_s;
	out->ncpu = b->ncpu;
}

static double per_mop(double cpu_s, uint64_t ops)
{
	return ops ? cpu_s / (double)ops * 1e6 : 0;
}

static uint64_t total_errors(const struct lg_result *r)
{
	uint64_t n = 0;

	for (int e = 0; e < LG_ERR_N; e++)
		n += r->errors[e];
	return n;
}

void lg_report_text(FILE *f, const struct lg_result *r)
{
	const struct lg_args *a = &r->args;
	double el = r->elapsed_s > 0 ? r->elapsed_s : 1e-9;
	double gbps = (double)(r->bytes_tx + r->bytes_rx) * 8 / el / 1e9;

	fprintf(f, "mustang-load %s --stack %s, %u conn(s), %u thread(s), %u B, %s loop%s\n",
		lg_mode_name(a->mode), a->stack, a->conns, a->threads, a->size,
		a->rate > 0 ? "open" : "closed", a->rate > 0 ? "" : "");
	fprintf(f, "  %-22s %.3f s\n", "measured", r->elapsed_s);
	fprintf(f, "  %-22s %llu\n", "ops", (unsigned long long)r->ops);
	fprintf(f, "  %-22s %.0f ops/s\n", "throughput", (double)r->ops / el);
	fprintf(f, "  %-22s %.3f Gbit/s (payload, both directions)\n", "", gbps);
	if (a->mode != LG_TCP_STREAM && r->lat->count) {
		fprintf(f, "  %-22s", "latency (us)");
		for (size_t i = 0; i < sizeof(pcts) / sizeof(pcts[0]); i++)
			fprintf(f, " %s %.1f ", pct_names[i], (double)hist_percentile(r->lat, pcts[i]) / 1e3);
		fprintf(f, " max %.1f  mean %.1f\n", (double)r->lat->max / 1e3, hist_mean(r->lat) / 1e3);
	}
	fprintf(f, "  %-22s max %.1f us without a completed op (one %s: %.1f us)\n", "stall",
		(double)r->max_stall_ns / 1e3, lg_mode_is_pony(a->mode) ? "slot" : "conn",
		(double)r->max_conn_stall_ns / 1e3);
	if (a->rate > 0)
		fprintf(f, "  %-22s %.0f ops/s asked, %llu sent > 1 ms late\n", "open loop", a->rate,
			(unsigned long long)r->ops_late);
	fprintf(f, "  %-22s user %.3f s  sys %.3f s  (%.1f%% of a core)\n", "loadgen CPU",
		r->cpu.user_s, r->cpu.sys_s, (r->cpu.user_s + r->cpu.sys_s) / el * 100);
	fprintf(f, "  %-22s %.3f s busy of %.3f s on %u CPUs; %.3f CPU-s per million ops\n",
		"machine CPU", r->cpu.machine_busy_s, r->cpu.machine_total_s, r->cpu.ncpu,
		per_mop(r->cpu.machine_busy_s, r->ops));
	fprintf(f, "  %-22s %llu", "errors", (unsigned long long)total_errors(r));
	for (int e = 0; e < LG_ERR_N; e++)
		if (r->errors[e])
			fprintf(f, "  %s %llu (last: %s)", lg_err_name[e], (unsigned long long)r->errors[e],
				r->last_errno[e] ? strerror(r->last_errno[e]) : "-");
	fputc('\n', f);
}

int lg_report_json(const char *path, const struct lg_result *r)
{
	const struct lg_args *a = &r->args;
	double el = r->elapsed_s > 0 ? r->elapsed_s : 1e-9;
	char target[INET_ADDRSTRLEN] = "";
	bool first = true;
	FILE *f = strcmp(path, "-") == 0 ? stdout : fopen(path, "we");

	if (f == NULL)
		return -errno;
	inet_ntop(AF_INET, &a->target.sin_addr, target, sizeof(target));
	fprintf(f, "{\n  \"tool\": \"mustang-load\",\n  \"version\": 1,\n");
	fprintf(f, "  \"args\": {\"stack\": \"%s\", \"mode\": \"%s\", \"target\": \"%s:%u\", "
		   "\"conns\": %u, \"threads\": %u, \"size\": %u, \"duration_s\": %g, "
		   "\"requests\": %llu, \"rate\": %g, \"warmup_s\": %g, \"timeout_s\": %g},\n",
		a->stack, lg_mode_name(a->mode), target, ntohs(a->target.sin_port), a->conns,
		a->threads, a->size, a->duration, (unsigned long long)a->requests, a->rate,
		a->warmup, a->timeout);
	fprintf(f, "  \"elapsed_s\": %.6f,\n  \"ops\": %llu,\n  \"ops_per_s\": %.3f,\n", r->elapsed_s,
		(unsigned long long)r->ops, (double)r->ops / el);
	fprintf(f, "  \"bytes_tx\": %llu,\n  \"bytes_rx\": %llu,\n  \"gbit_per_s\": %.6f,\n",
		(unsigned long long)r->bytes_tx, (unsigned long long)r->bytes_rx,
		(double)(r->bytes_tx + r->bytes_rx) * 8 / el / 1e9);
	fprintf(f, "  \"ops_late\": %llu,\n", (unsigned long long)r->ops_late);
	fprintf(f, "  \"max_stall_us\": %.3f,\n  \"max_conn_stall_us\": %.3f,\n",
		(double)r->max_stall_ns / 1e3, (double)r->max_conn_stall_ns / 1e3);
	fprintf(f, "  \"latency_ns\": {\"count\": %llu, \"min\": %llu, \"mean\": %.1f",
		(unsigned long long)r->lat->count,
		(unsigned long long)(r->lat->count ? r->lat->min : 0), hist_mean(r->lat));
	for (size_t i = 0; i < sizeof(pcts) / sizeof(pcts[0]); i++)
		fprintf(f, ", \"%s\": %llu", pct_names[i],
			(unsigned long long)hist_percentile(r->lat, pcts[i]));
	fprintf(f, ", \"max\": %llu,\n    \"histogram\": [", (unsigned long long)r->lat->max);
	/* non-empty buckets only: [low, high, count] */
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		if (r->lat->counts[i] == 0)
			continue;
		fprintf(f, "%s[%llu, %llu, %llu]", first ? "" : ", ",
			(unsigned long long)hist_bucket_low(i), (unsigned long long)hist_bucket_high(i),
			(unsigned long long)r->lat->counts[i]);
		first = false;
	}
	fprintf(f, "]},\n");
	fprintf(f, "  \"errors\": {\"total\": %llu", (unsigned long long)total_errors(r));
	for (int e = 0; e < LG_ERR_N; e++)
		fprintf(f, ", \"%s\": %llu", lg_err_name[e], (unsigned long long)r->errors[e]);
	fprintf(f, "},\n  \"errors_last_errno\": {");
	first = true;
	for (int e = 0; e < LG_ERR_N; e++) {
		if (!r->errors[e])
			continue;
		fprintf(f, "%s\"%s\": \"%s\"", first ? "" : ", ", lg_err_name[e],
			r->last_errno[e] ? strerror(r->last_errno[e]) : "");
		first = false;
	}
	fprintf(f, "},\n");
	fprintf(f, "  \"cpu\": {\"loadgen_user_s\": %.6f, \"loadgen_sys_s\": %.6f, "
		   "\"machine_busy_s\": %.6f, \"machine_total_s\": %.6f, \"ncpu\": %u, "
		   "\"machine_cpu_s_per_mop\": %.6f, \"loadgen_cpu_s_per_mop\": %.6f}\n}\n",
		r->cpu.user_s, r->cpu.sys_s, r->cpu.machine_busy_s, r->cpu.machine_total_s,
		r->cpu.ncpu, per_mop(r->cpu.machine_busy_s, r->ops),
		per_mop(r->cpu.user_s + r->cpu.sys_s, r->ops));
	if (f != stdout)
		return fclose(f) == 0 ? 0 : -errno;
	fflush(f);
	return 0;
}
