/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Flow logs, control-plane side (see flows.h; fields in
 * docs/observability.md).
 *
 * flows_start() -> flowlog_setup() (engine rings) -> thread flow_main():
 *   every FLOWS_TICK_MS: drain() -> per record: name its app (apps[] table,
 *   filled at attach) -> keep() in the recent ring -> write_line() to the
 *   file, rotate() past max_bytes
 * flows_query() (control thread) reads the recent ring under the lock.
 *
 * The engines never wait for this thread: their rings are bounded and a
 * full ring is a counted loss (flow_records_lost). This thread may block
 * on the file; only it writes the file.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "control/flows.h"
#include "engines/flowlog.h"
#include "transport/tcp/tcp.h"

#define FLOWS_TICK_MS 100
#define FLOWS_KEEP 4096          /* recent records kept for `mustangctl flows` */
#define FLOWS_BURST 256          /* records taken from a ring at a time */
#define FLOWS_APPS 64            /* = APPS_MAX: app ids are client slots */
#define FLOWS_QUERY_MAX 2048     /* records per answer (the client asks again) */
#define LINE_MAX_LEN 1536

struct app_info {
	int id;                  /* -1: unused */
	pid_t pid;
	char comm[17];
	char cgroup[256];
	char container[65];      /* "" when the cgroup path names none */
};

struct flow_entry {
	uint64_t seq;
	struct mst_flow_rec r;
	struct app_info app;     /* as it was when the record arrived */
};

struct flows {
	struct flows_conf conf;
	char path[4096];
	FILE *file;
	uint64_t file_bytes;
	pthread_t thread;
	atomic_bool stop;
	pthread_mutex_t lock;    /* apps[], ring[], next_seq, stats */
	struct app_info apps[FLOWS_APPS];
	struct flow_entry *ring; /* FLOWS_KEEP, entry seq % FLOWS_KEEP */
	uint64_t next_seq;       /* seq of the next record (first is 1) */
	struct flows_stats st;
};

/* ---- app names ---------------------------------------------------------- */

/* A 64-hex-digit run in a cgroup path (docker-<id>.scope, /docker/<id>,
 * cri-containerd-<id>.scope, libpod-<id>.scope ...): the container id. */
static void container_of(const char *cg, char out[65])
{
	size_t run = 0;

	out[0] = '\0';
	for (const char *p = cg;; p++) {
		if (*p && isxdigit((unsigned char)*p) && !isupper((unsigned char)*p)) {
			run++;
			continue;
		}
		if (run == 64) {
			memcpy(out, p - 64, 64);
			out[64] = '\0';
			return;
		}
		run = 0;
		if (!*p)
			return;
	}
}

static void read_line(const char *path, char *buf, size_t cap)
{
	FILE *f = fopen(path, "re");

	buf[0] = '\0';
	if (!f)
		return;
	if (!fgets(buf, (int)cap, f))
		buf[0] = '\0';
	fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
}

/* cgroup v2 ("0::/path"); on a v1 host the name=systemd line. */
static void read_cgroup(pid_t pid, char *out, size_t cap)
{
	char path[64], line[512];
	FILE *f;

	out[0] = '\0';
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *p = strchr(line, ':');

		line[strcspn(line, "\n")] = '\0';
		if (!p || !(p = strchr(p + 1, ':')))
			continue;
		if (!strncmp(line, "0::", 3) || strstr(line, "name=systemd:")) {
			snprintf(out, cap, "%s", p + 1);
			if (!strncmp(line, "0::", 3))
				break;
		}
	}
	fclose(f);
}

void flows_app(struct flows *f, int id, pid_t pid)
{
	struct app_info a = { .id = id, .pid = pid };
	char path[64];

	if (!f || id < 0 || id >= FLOWS_APPS)
		return;
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	read_line(path, a.comm, sizeof(a.comm));
	read_cgroup(pid, a.cgroup, sizeof(a.cgroup));
	container_of(a.cgroup, a.container);
	pthread_mutex_lock(&f->lock);
	f->apps[id] = a;
	pthread_mutex_unlock(&f->lock);
}

/* ---- rendering ---------------------------------------------------------- */

/* s as a JSON string body (quotes, backslashes, control characters escaped). */
static size_t json_esc(char *out, size_t cap, const char *s)
{
	size_t n = 0;

	for (; *s && n + 7 < cap; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\') {
			out[n++] = '\\';
			out[n++] = (char)ch;
		} else if (ch < 0x20) {
			n += (size_t)snprintf(out + n, cap - n, "\\u%04x", ch);
		} else {
			out[n++] = (char)ch;
		}
	}
	out[n] = '\0';
	return n;
}

static void wall_time(uint64_t mono_ns, char *buf, size_t cap)
{
	struct timespec rt, mt;
	int64_t off, wall;
	time_t sec;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &rt);
	clock_gettime(CLOCK_MONOTONIC, &mt);
	off = ((int64_t)rt.tv_sec - mt.tv_sec) * 1000000000ll + (rt.tv_nsec - mt.tv_nsec);
	wall = (int64_t)mono_ns + off;
	sec = (time_t)(wall / 1000000000ll);
	gmtime_r(&sec, &tm);
	snprintf(buf, cap, "%04u-%02u-%02uT%02u:%02u:%02u.%06uZ", (unsigned)(tm.tm_year + 1900) % 10000u,
		 (unsigned)(tm.tm_mon + 1) % 100u, (unsigned)tm.tm_mday % 100u,
		 (unsigned)tm.tm_hour % 100u, (unsigned)tm.tm_min % 100u, (unsigned)tm.tm_sec % 100u,
		 (unsigned)((wall % 1000000000ll) / 1000) % 1000000u);
}

static const char *ip_str(uint32_t ip, char *buf)
{
	return inet_ntop(AF_INET, &ip, buf, INET_ADDRSTRLEN);
}

static const char *state_name(uint8_t s)
{
	return s < TCP_STATE__COUNT ? tcp_state_names[s] : "?";
}

static const char *reason_name(uint8_t r)
{
	return r < TCP_CLOSE__COUNT ? tcp_close_reason_names[r] : "unknown";
}

static const char *reason_class(uint8_t r)
{
	return r < TCP_CLOSE__COUNT ? tcp_close_reason_class[r] : "other";
}

static size_t app_json(const struct app_info *a, char *out, size_t cap)
{
	char comm[64], cg[600];

	if (a->id < 0)
		return (size_t)snprintf(out, cap, "null");
	json_esc(comm, sizeof(comm), a->comm);
	json_esc(cg, sizeof(cg), a->cgroup);
	return (size_t)snprintf(out, cap,
				"{\"id\":%d,\"pid\":%d,\"comm\":\"%s\",\"cgroup\":\"%s\","
				"\"container_id\":%s%s%s}",
				a->id, (int)a->pid, comm, cg, a->container[0] ? "\"" : "",
				a->container[0] ? a->container : "null", a->container[0] ? "\"" : "");
}

/* One JSON object, no newline. */
static int fmt_json(const struct flow_entry *e, char *out, size_t cap)
{
	const struct mst_flow_rec *r = &e->r;
	char l[INET_ADDRSTRLEN], rm[INET_ADDRSTRLEN], t0[40], t1[40], app[1024];

	wall_time(r->start_ns, t0, sizeof(t0));
	wall_time(r->end_ns, t1, sizeof(t1));
	app_json(&e->app, app, sizeof(app));
	return snprintf(out, cap,
		"{\"seq\":%llu,\"type\":\"%s\",\"proto\":\"tcp\",\"engine\":%u,"
		"\"direction\":\"%s\",\"local_ip\":\"%s\",\"local_port\":%u,"
		"\"remote_ip\":\"%s\",\"remote_port\":%u,\"app\":%s,"
		"\"start\":\"%s\",\"end\":\"%s\",\"duration_ms\":%.3f,\"state\":\"%s\","
		"\"close_reason\":\"%s\",\"close_class\":\"%s\","
		"\"bytes_out\":%llu,\"bytes_in\":%llu,\"bytes_sent\":%llu,"
		"\"segs_out\":%llu,\"segs_in\":%llu,\"retransmits\":%u,\"rto_count\":%u,"
		"\"fast_recoveries\":%u,\"srtt_us\":%u,\"min_rtt_us\":%u,\"last_rtt_us\":%u,"
		"\"max_cwnd\":%u,\"mss\":%u}",
		(unsigned long long)e->seq, r->reason ? "end" : "interim", r->engine,
		r->passive ? "inbound" : "outbound", ip_str(r->laddr, l), r->lport,
		ip_str(r->raddr, rm), r->rport, app, t0, t1,
		(double)(r->end_ns - r->start_ns) / 1e6, state_name(r->state),
		reason_name(r->reason), reason_class(r->reason),
		(unsigned long long)r->bytes_acked, (unsigned long long)r->bytes_received,
		(unsigned long long)r->bytes_sent, (unsigned long long)r->segs_out,
		(unsigned long long)r->segs_in, r->retransmits, r->rto_count, r->recoveries,
		r->srtt_us, r->min_rtt_us, r->last_rtt_us, r->max_cwnd, r->mss);
}

/* One line for people. */
static int fmt_text(const struct flow_entry *e, char *out, size_t cap)
{
	const struct mst_flow_rec *r = &e->r;
	char l[INET_ADDRSTRLEN], rm[INET_ADDRSTRLEN], t1[40], who[48];

	wall_time(r->end_ns, t1, sizeof(t1));
	if (e->app.id >= 0)
		snprintf(who, sizeof(who), "%d/%s", (int)e->app.pid, e->app.comm);
	else
		snprintf(who, sizeof(who), "mustangd");
	return snprintf(out, cap,
		"%s e%u %-20s %s:%u %s %s:%u %-14s %.3fs out %lluB/%llu in %lluB/%llu "
		"rtx %u rto %u fr %u srtt %uus min %uus cwnd %u",
		t1, r->engine, who, ip_str(r->laddr, l), r->lport, r->passive ? "<-" : "->",
		ip_str(r->raddr, rm), r->rport, reason_name(r->reason),
		(double)(r->end_ns - r->start_ns) / 1e9, (unsigned long long)r->bytes_acked,
		(unsigned long long)r->segs_out, (unsigned long long)r->bytes_received,
		(unsigned long long)r->segs_in, r->retransmits, r->rto_count, r->recoveries,
		r->srtt_us, r->min_rtt_us, r->max_cwnd);
}

/* ---- the file ----------------------------------------------------------- */

static int file_open(struct flows *f)
{
	f->file = fopen(f->path, "ae");
	if (!f->file)
		return -errno;
	f->file_bytes = (uint64_t)(ftell(f->file) > 0 ? ftell(f->file) : 0);
	return 0;
}

/* PATH -> PATH.1 (one old file kept), a new PATH. */
static void rotate(struct flows *f)
{
	char old[4100];

	fclose(f->file);
	f->file = NULL;
	snprintf(old, sizeof(old), "%s.1", f->path);
	if (rename(f->path, old))
		f->st.write_errors++;
	f->st.rotations++;
	if (file_open(f))
		f->st.write_errors++;
}

static void write_line(struct flows *f, const char *line, size_t len)
{
	if (!f->file)
		return;
	if (f->file_bytes && f->file_bytes + len + 1 > f->conf.max_bytes) {
		rotate(f);
		if (!f->file)
			return;
	}
	if (fwrite(line, 1, len, f->file) != len || fputc('\n', f->file) == EOF) {
		f->st.write_errors++;
		return;
	}
	f->file_bytes += len + 1;
	f->st.written++;
}

/* ---- the thread --------------------------------------------------------- */

static void keep(struct flows *f, const struct mst_flow_rec *r, struct flow_entry *out)
{
	struct flow_entry *e;

	pthread_mutex_lock(&f->lock);
	e = &f->ring[f->next_seq % FLOWS_KEEP];
	e->seq = f->next_seq++;
	e->r = *r;
	if (r->app_id >= 0 && r->app_id < FLOWS_APPS && f->apps[r->app_id].id == r->app_id)
		e->app = f->apps[r->app_id];
	else
		e->app = (struct app_info){ .id = -1 };
	if (r->app_id >= 0 && e->app.id < 0) { /* an app we did not see attach */
		e->app.id = r->app_id;
		snprintf(e->app.comm, sizeof(e->app.comm), "?");
	}
	f->st.records++;
	*out = *e;
	pthread_mutex_unlock(&f->lock);
}

static unsigned drain(struct flows *f)
{
	static struct mst_flow_rec recs[FLOWS_BURST]; /* this thread only */
	char line[LINE_MAX_LEN];
	unsigned total = 0;

	for (unsigned id = 0; id < f->conf.n_engines; id++) {
		unsigned n;

		while ((n = flowlog_take(id, recs, FLOWS_BURST)) > 0) {
			for (unsigned k = 0; k < n; k++) {
				struct flow_entry e;
				int len;

				keep(f, &recs[k], &e);
				len = fmt_json(&e, line, sizeof(line));
				if (len > 0 && (size_t)len < sizeof(line))
					write_line(f, line, (size_t)len);
			}
			total += n;
		}
	}
	if (total && f->file)
		fflush(f->file);
	return total;
}

static void *flow_main(void *arg)
{
	struct flows *f = arg;
	const struct timespec tick = { 0, FLOWS_TICK_MS * 1000000L };

	while (!atomic_load(&f->stop)) {
		drain(f);
		nanosleep(&tick, NULL);
	}
	drain(f);
	return NULL;
}

struct flows *flows_start(const struct flows_conf *conf)
{
	struct flows *f = calloc(1, sizeof(*f));
	int rc;

	if (!f)
		return NULL;
	f->conf = *conf;
	f->next_seq = 1;
	for (unsigned i = 0; i < FLOWS_APPS; i++)
		f->apps[i].id = -1;
	pthread_mutex_init(&f->lock, NULL);
	f->ring = calloc(FLOWS_KEEP, sizeof(*f->ring));
	if (!f->ring) {
		rc = -ENOMEM;
		goto out_free;
	}
	rc = flowlog_setup(conf->n_engines, conf->ring_size,
			   (uint64_t)conf->interval_s * 1000000000ull);
	if (rc)
		goto out_free;
	if (conf->path) {
		snprintf(f->path, sizeof(f->path), "%s", conf->path);
		f->conf.path = f->path;
		rc = file_open(f);
		if (rc)
			goto out_free;
	}
	rc = -pthread_create(&f->thread, NULL, flow_main, f);
	if (rc)
		goto out_close;
	return f;

out_close:
	if (f->file)
		fclose(f->file);
out_free:
	free(f->ring);
	pthread_mutex_destroy(&f->lock);
	free(f);
	errno = -rc;
	return NULL;
}

void flows_stop(struct flows *f)
{
	if (!f)
		return;
	atomic_store(&f->stop, true);
	pthread_join(f->thread, NULL);
	if (f->file)
		fclose(f->file);
	free(f->ring);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

void flows_get_stats(struct flows *f, struct flows_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!f)
		return;
	pthread_mutex_lock(&f->lock);
	*out = f->st;
	out->file_bytes = f->file_bytes;
	pthread_mutex_unlock(&f->lock);
}

/* ---- queries ------------------------------------------------------------ */

struct query {
	uint64_t since;
	long pid;                /* -1: any */
	uint32_t peer_ip;        /* 0: any */
	long peer_port;          /* -1: any */
	bool json;
};

static int parse_peer(const char *v, struct query *q)
{
	char ip[INET_ADDRSTRLEN];
	const char *colon = strchr(v, ':');
	size_t n = colon ? (size_t)(colon - v) : strlen(v);

	if (n == 0 || n >= sizeof(ip))
		return -EINVAL;
	memcpy(ip, v, n);
	ip[n] = '\0';
	if (inet_pton(AF_INET, ip, &q->peer_ip) != 1)
		return -EINVAL;
	if (colon) {
		char *end;

		errno = 0;
		q->peer_port = strtol(colon + 1, &end, 10);
		if (!isdigit((unsigned char)colon[1]) || *end || errno || q->peer_port > 65535)
			return -EINVAL;
	}
	return 0;
}

static int parse_query(const char *arg, struct query *q)
{
	char buf[256], *save = NULL;

	*q = (struct query){ .pid = -1, .peer_port = -1 };
	if (!arg)
		return 0;
	if (strlen(arg) >= sizeof(buf))
		return -EINVAL;
	snprintf(buf, sizeof(buf), "%s", arg);
	for (char *t = strtok_r(buf, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
		char *end;

		errno = 0;
		if (!strcmp(t, "json")) {
			q->json = true;
		} else if (!strncmp(t, "since=", 6) && isdigit((unsigned char)t[6])) {
			q->since = strtoull(t + 6, &end, 10);
			if (*end || errno)
				return -EINVAL;
		} else if (!strncmp(t, "app=", 4) && isdigit((unsigned char)t[4])) {
			q->pid = strtol(t + 4, &end, 10);
			if (*end || errno || q->pid > 0x7fffffff)
				return -EINVAL;
		} else if (!strncmp(t, "peer=", 5)) {
			if (parse_peer(t + 5, q))
				return -EINVAL;
		} else {
			return -EINVAL;
		}
	}
	return 0;
}

static bool matches(const struct query *q, const struct flow_entry *e)
{
	if (q->pid >= 0 && (e->app.id < 0 || e->app.pid != q->pid))
		return false;
	if (q->peer_ip && e->r.raddr != q->peer_ip)
		return false;
	return q->peer_port < 0 || e->r.rport == q->peer_port;
}

static int append(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
	if (*len + n + 2 > *cap) {
		size_t nc = (*cap ? *cap * 2 : 65536) + n;
		char *nb = realloc(*buf, nc);

		if (!nb)
			return -ENOMEM;
		*buf = nb;
		*cap = nc;
	}
	memcpy(*buf + *len, s, n);
	*len += n;
	(*buf)[(*len)++] = '\n';
	(*buf)[*len] = '\0';
	return 0;
}

int flows_query(struct flows *f, const char *arg, char **out, size_t *len)
{
	struct query q;
	char line[LINE_MAX_LEN];
	size_t cap = 0;
	uint64_t first, seq, end;
	unsigned n = 0;
	int rc = 0;

	*out = NULL;
	*len = 0;
	if (parse_query(arg, &q)) {
		*out = strdup("flows wants [since=SEQ] [app=PID] [peer=IP[:PORT]] [json]");
		return *out ? -EINVAL : -ENOMEM;
	}
	if (!f) {
		*out = strdup("flow records are off (mustangd --flow-log PATH|on)");
		return *out ? -ENODATA : -ENOMEM;
	}
	pthread_mutex_lock(&f->lock);
	end = f->next_seq;
	first = end > FLOWS_KEEP ? end - FLOWS_KEEP : 1;
	seq = q.since + 1 > first ? q.since + 1 : first;
	/* The first line, "next SEQ", is written below once we know where
	 * we stopped: 32 blanks hold its place. */
	memset(line, ' ', 32);
	rc = append(out, len, &cap, line, 32);
	for (; !rc && seq < end && n < FLOWS_QUERY_MAX; seq++) {
		const struct flow_entry *e = &f->ring[seq % FLOWS_KEEP];
		int l;

		if (!matches(&q, e))
			continue;
		l = q.json ? fmt_json(e, line, sizeof(line)) : fmt_text(e, line, sizeof(line));
		if (l > 0 && (size_t)l < sizeof(line))
			rc = append(out, len, &cap, line, (size_t)l);
		n++;
	}
	pthread_mutex_unlock(&f->lock);
	if (rc) {
		free(*out);
		*out = NULL;
		*len = 0;
		return rc;
	}
	/* Fixed-width first line: "next N" padded with blanks to 32 bytes. */
	snprintf(line, sizeof(line), "next %-27llu", (unsigned long long)(seq - 1));
	memcpy(*out, line, 32);
	return 0;
}
