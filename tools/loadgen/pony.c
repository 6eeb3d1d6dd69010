/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The pony_* modes: mustang-load over libmustang's Pony endpoints
 * (include/mustang/mustang.h). --stack mustang only; one thread.
 *
 *   pony_rr      --conns requests in flight, request i on stream i; the
 *                server echoes each message on its stream; an op = one
 *                echoed message (latency: send -> echo received).
 *   pony_stream  --conns messages of --size in flight to the server's
 *                sink streams (LG_PONY_SINK_BASE..: not echoed); an op
 *                = one message acknowledged (SEND_DONE).
 *   pony_read    --conns one-sided READs of --size in flight from the
 *                server's remote-readable region; an op = one READ_DONE.
 *                The region key comes from the server first: a KEY?
 *                message on stream LG_PONY_KEY_STREAM.
 *
 * Server side (lg_pony_serve, a thread of `mustang-load serve --stack
 * mustang`): an endpoint on service --port that echoes, sinks, and owns
 * a remote-readable region of up to LG_MAX_SIZE bytes.
 *
 * Closed loop by default; with --rate, ops start on the open-loop schedule
 * (lg_sched) when a slot is free and latency counts from the due time.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lg.h"

#ifdef LG_HAVE_MUSTANG
#include <mustang/mustang.h>

/* Stream ids stay below the daemon's default --pony-max-streams (1024):
 * 0..LG_PONY_MAX_INFLIGHT-1 are echoed (pony_rr, one per slot), the
 * LG_PONY_SINK_BASE.. range is sunk (pony_stream), one id asks for the
 * READ region's key. */
#define LG_PONY_SINK_BASE 768u
#define LG_PONY_SINK_N 255u
#define LG_PONY_KEY_STREAM 1023u
#define LG_PONY_BATCH 64

static const char key_req[4] = { 'K', 'E', 'Y', '?' };

struct key_reply {
	uint32_t key;
	uint32_t pad;
	uint64_t size;
};

/* ---- server --------------------------------------------------------------- */

struct psrv {
	int ep;
	uint32_t key;
	uint64_t region;
	volatile int *stop;
};

static void *psrv_thread(void *arg)
{
	struct psrv *s = arg;
	struct mst_pony_event evs[LG_PONY_BATCH];

	while (!*s->stop) {
		int n = mst_pony_poll(s->ep, evs, LG_PONY_BATCH, 100);

		for (int i = 0; i < n; i++) {
			struct mst_pony_event *e = &evs[i];

			if (e->kind != MST_PONY_MSG)
				continue;
			if (e->stream == LG_PONY_KEY_STREAM && e->len == sizeof(key_req) &&
			    memcmp(e->data, key_req, sizeof(key_req)) == 0) {
				struct key_reply kr = { .key = s->key, .size = s->region };

				(void)mst_pony_send(s->ep, e->peer, e->src_svc, e->stream, &kr,
						    sizeof(kr), 0);
			} else if (e->stream < LG_PONY_SINK_BASE) {
				(void)mst_pony_send(s->ep, e->peer, e->src_svc, e->stream, e->data,
						    e->len, 0);
			}
			mst_pony_release(s->ep, e);
		}
	}
	return NULL;
}

int lg_pony_serve_start(const struct lg_args *a, volatile int *stop, pthread_t *tid)
{
	struct psrv *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return -ENOMEM;
	s->stop = stop;
	/* Blocking: a reply that finds no room waits in libmustang for
	 * completions (keeping the requests that arrive meanwhile for the
	 * next poll); a peer that went away completes our sends with errors. */
	s->ep = mst_pony_open(a->port);
	if (s->ep < 0) {
		int e = errno;

		free(s);
		return -e;
	}
	/* The largest region the segment gives us, for pony_read. */
	for (uint64_t sz = LG_MAX_SIZE; sz >= 4096; sz /= 2) {
		void *p = mst_pony_reg_alloc(s->ep, sz, MST_PONY_REMOTE_READ, &s->key);

		if (p != NULL) {
			memset(p, 'r', sz);
			s->region = sz;
			break;
		}
	}
	if (pthread_create(tid, NULL, psrv_thread, s) != 0) {
		mst_close(s->ep);
		free(s);
		return -EAGAIN;
	}
	return 0;
}

/* ---- client --------------------------------------------------------------- */

struct pslot {
	uint64_t t_start;   /* 0 = free */
	uint64_t cookie;    /* slot index + generation << 32 */
	struct lg_stall stall;
};

struct pcli {
	const struct lg_args *a;
	struct lg_result *r;
	int ep;
	uint32_t peer;
	uint16_t svc;
	struct pslot *slot;
	uint8_t *req;       /* pony_rr/stream payload (pony_read: the local region) */
	uint32_t key;       /* pony_read: the server's region */
	uint64_t region;
	struct lg_sched sched;
	uint64_t measure_ns, end_ns, started, done;
	uint64_t last_progress_ns;
	struct lg_stall stall;   /* completions of every slot */
};

static bool measuring(const struct pcli *c, uint64_t now)
{
	return now >= c->measure_ns;
}

static void count_err(struct pcli *c, int status)
{
	enum lg_err k = status == -ETIMEDOUT ? LG_ERR_RESPONSE_TIMEOUT :
			status == -ECONNREFUSED ? LG_ERR_REFUSED :
			status == -ECONNRESET ? LG_ERR_RESET :
			c->a->mode == LG_PONY_READ ? LG_ERR_RECV : LG_ERR_SEND;

	c->r->errors[k]++;
	c->r->last_errno[k] = -status;
}

/* Submit op on slot i; 1 submitted, 0 no room now (EAGAIN), < 0 error. */
static int op_submit(struct pcli *c, unsigned i, uint64_t t_start)
{
	const struct lg_args *a = c->a;
	struct pslot *s = &c->slot[i];
	uint64_t cookie = (uint64_t)i | ((s->cookie >> 32) + 1) << 32;
	uint16_t dst = ntohs(a->target.sin_port);
	int rc;

	switch (a->mode) {
	case LG_PONY_RR:
		rc = mst_pony_send(c->ep, c->peer, dst, i, c->req, a->size, cookie);
		break;
	case LG_PONY_STREAM:
		rc = mst_pony_send(c->ep, c->peer, dst, LG_PONY_SINK_BASE + i % LG_PONY_SINK_N, c->req,
				   a->size, cookie);
		break;
	default: {
		uint64_t span = c->region - a->size + 1;
		uint64_t off = ((c->started * 4096u) % span) & ~(uint64_t)63;

		rc = mst_pony_read(c->ep, c->peer, dst, c->key, off, a->size,
				   c->req + (size_t)i * a->size, cookie);
		break;
	}
	}
	if (rc < 0)
		return errno == EAGAIN ? 0 : -errno;
	s->cookie = cookie;
	s->t_start = t_start;
	c->started++;
	return 1;
}

static void op_done(struct pcli *c, unsigned i, uint64_t now, int status)
{
	struct pslot *s = &c->slot[i];

	if (s->t_start == 0)
		return;
	if (status < 0) {
		count_err(c, status);
	} else if (measuring(c, now) && (c->end_ns == 0 || now <= c->end_ns)) {
		c->r->ops++;
		hist_record(c->r->lat, now - s->t_start);
		if (c->a->mode == LG_PONY_READ)
			c->r->bytes_rx += c->a->size;
		else
			c->r->bytes_tx += c->a->size;
		if (c->a->mode == LG_PONY_RR)
			c->r->bytes_rx += c->a->size;
		lg_stall_mark(&c->stall, now);
		lg_stall_mark(&s->stall, now);
	}
	s->t_start = 0;
	c->done++;
}

/* Which slot an event completes, or -1 (stale or foreign). */
static int event_slot(const struct pcli *c, const struct mst_pony_event *e)
{
	unsigned i;

	switch (e->kind) {
	case MST_PONY_MSG:
		if (c->a->mode != LG_PONY_RR || e->stream >= c->a->conns)
			return -1;
		i = e->stream;
		return c->slot[i].t_start ? (int)i : -1;
	case MST_PONY_SEND_DONE:
		if (c->a->mode == LG_PONY_RR && e->status == 0)
			return -1;   /* the echo completes an rr op, not the ack */
		/* fall through */
	case MST_PONY_READ_DONE:
		i = (unsigned)(e->cookie & 0xffffffffu);
		if (i >= c->a->conns || c->slot[i].cookie != e->cookie)
			return -1;
		return (int)i;
	}
	return -1;
}

/* pony_read: ask the server for its region key (stream LG_PONY_KEY_STREAM). */
static int fetch_key(struct pcli *c)
{
	struct mst_pony_event evs[LG_PONY_BATCH];
	uint64_t deadline = lg_now_ns() + (uint64_t)(c->a->timeout * 1e9);

	if (mst_pony_send(c->ep, c->peer, ntohs(c->a->target.sin_port), LG_PONY_KEY_STREAM, key_req,
			  sizeof(key_req), 0) < 0)
		return -errno;
	while (lg_now_ns() < deadline) {
		int n = mst_pony_poll(c->ep, evs, LG_PONY_BATCH, 10);

		for (int k = 0; k < n; k++) {
			struct mst_pony_event *e = &evs[k];

			if (e->kind == MST_PONY_SEND_DONE && e->status < 0)
				return e->status;
			if (e->kind == MST_PONY_MSG && e->stream == LG_PONY_KEY_STREAM &&
			    e->len == sizeof(struct key_reply)) {
				struct key_reply kr;

				memcpy(&kr, e->data, sizeof(kr));
				mst_pony_release(c->ep, e);
				if (kr.size < c->a->size)
					return -ERANGE;
				c->key = kr.key;
				c->region = kr.size;
				return 0;
			}
			if (e->kind == MST_PONY_MSG)
				mst_pony_release(c->ep, e);
		}
	}
	return -ETIMEDOUT;
}

static int open_ep(struct pcli *c)
{
	/* An ephemeral service number above the ones servers use. */
	for (unsigned k = 0; k < 64; k++) {
		uint16_t svc = (uint16_t)(40000u + (((unsigned)getpid() + k * 7919u) % 25000u));

		c->ep = mst_pony_open(svc);
		if (c->ep >= 0 && mst_fcntl(c->ep, F_SETFL, O_NONBLOCK) < 0) {
			int e = errno;

			mst_close(c->ep);
			return -e;
		}
		if (c->ep >= 0) {
			c->svc = svc;
			return 0;
		}
		if (errno != EADDRINUSE)
			return -errno;
	}
	return -EADDRINUSE;
}

static void progress(struct pcli *c, uint64_t now, uint64_t *last_ops)
{
	double t = (double)(now - c->measure_ns) / 1e9;

	if (c->a->mode == LG_PONY_RR)
		fprintf(stderr, "\r%8.1f s  %10.0f ops/s  p99 %8.1f us   ", t,
			(double)(c->r->ops - *last_ops) / ((double)(now - c->last_progress_ns) / 1e9),
			(double)hist_percentile(c->r->lat, 99) / 1e3);
	else
		fprintf(stderr, "\r%8.1f s  %10.3f Gbit/s   ", t,
			(double)(c->r->bytes_tx + c->r->bytes_rx) * 8 / 1e9 / (t > 0 ? t : 1));
	*last_ops = c->r->ops;
	c->last_progress_ns = now;
}

int lg_pony_run(const struct lg_args *a, struct lg_result *r, volatile int *stop)
{
	struct pcli c = { .a = a, .r = r, .peer = a->target.sin_addr.s_addr };
	struct mst_pony_event evs[LG_PONY_BATCH];
	struct lg_cpu c0, c1;
	bool tty = !a->quiet && isatty(STDERR_FILENO), cpu0 = false;
	uint64_t start, last_ops = 0, last_event, end;
	size_t buf = a->mode == LG_PONY_READ ? (size_t)a->conns * a->size : a->size;
	int rc;

	rc = open_ep(&c);
	if (rc < 0)
		return rc;
	c.slot = calloc(a->conns, sizeof(*c.slot));
	/* READ destinations must lie in a region of ours; sends copy. */
	if (a->mode == LG_PONY_READ) {
		uint32_t key;

		c.req = mst_pony_reg_alloc(c.ep, buf, 0, &key);
	} else {
		c.req = malloc(buf);
		if (c.req)
			memset(c.req, 'p', buf);
	}
	if (c.slot == NULL || c.req == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	if (a->mode == LG_PONY_READ && (rc = fetch_key(&c)) < 0) {
		fprintf(stderr, "mustang-load: pony_read: no region key from the server: %s\n",
			strerror(-rc));
		goto out;
	}

	start = lg_now_ns();
	c.measure_ns = start + (uint64_t)(a->warmup * 1e9);
	c.end_ns = a->requests ? 0 : c.measure_ns + (uint64_t)(a->duration * 1e9);
	c.last_progress_ns = c.measure_ns;
	/* after a warm-up a stall at the start counts (see lg_stall) */
	lg_stall_init(&c.stall, a->warmup > 0 ? c.measure_ns : 0);
	for (unsigned i = 0; i < a->conns; i++)
		lg_stall_init(&c.slot[i].stall, a->warmup > 0 ? c.measure_ns : 0);
	if (a->rate > 0)
		lg_sched_init(&c.sched, start, a->rate);
	if (a->warmup == 0) {
		lg_cpu_snapshot(&c0);
		cpu0 = true;
	}
	last_event = start;
	while (!*stop) {
		uint64_t now = lg_now_ns();
		bool more = a->requests == 0 || c.started < a->requests;
		int n;

		if (!cpu0 && now >= c.measure_ns) {
			lg_cpu_snapshot(&c0);
			cpu0 = true;
		}
		if (c.end_ns && now >= c.end_ns)
			break;
		if (!more && c.done >= c.started)
			break;
		/* start what the window (and the schedule) allows */
		for (unsigned i = 0; more && i < a->conns; i++) {
			uint64_t due = now;

			if (c.slot[i].t_start)
				continue;
			if (a->rate > 0 && !lg_sched_take(&c.sched, now, &due))
				break;
			rc = op_submit(&c, i, due);
			if (rc < 0) {
				count_err(&c, rc);
				goto finish;
			}
			if (rc == 0) {
				if (a->rate > 0)
					c.sched.k--;  /* not taken after all */
				break;
			}
			more = a->requests == 0 || c.started < a->requests;
		}
		n = mst_pony_poll(c.ep, evs, LG_PONY_BATCH, a->rate > 0 ? 0 : 1);
		if (n < 0) {
			rc = -errno;
			goto finish;
		}
		now = lg_now_ns();
		if (n > 0)
			last_event = now;
		for (int k = 0; k < n; k++) {
			int i = event_slot(&c, &evs[k]);

			if (i >= 0)
				op_done(&c, (unsigned)i, now, evs[k].kind == MST_PONY_MSG ? 0 : evs[k].status);
			if (evs[k].kind == MST_PONY_MSG)
				mst_pony_release(c.ep, &evs[k]);
		}
		/* Pony is reliable: silence this long means the peer is gone. */
		if (c.done < c.started && now - last_event > (uint64_t)(a->timeout * 1e9)) {
			count_err(&c, -ETIMEDOUT);
			break;
		}
		if (tty && now > c.measure_ns && now >= c.last_progress_ns + 1000000000u)
			progress(&c, now, &last_ops);
	}
finish:
	end = lg_now_ns();
	if (c.end_ns && end > c.end_ns)
		end = c.end_ns;
	lg_cpu_snapshot(&c1);
	if (!cpu0)
		c0 = c1;
	if (tty)
		fputc('\n', stderr);
	lg_cpu_delta(&r->cpu, &c0, &c1);
	r->elapsed_s = end > c.measure_ns ? (double)(end - c.measure_ns) / 1e9 : 0;
	/* a --requests run ends with its last op: no stall after it */
	r->max_stall_ns = lg_stall_end(&c.stall, c.measure_ns,
				       c.end_ns || !c.stall.last_ns ? end : c.stall.last_ns);
	for (unsigned i = 0; i < a->conns; i++) {
		const struct lg_stall *st = &c.slot[i].stall;
		uint64_t m = lg_stall_end(st, c.measure_ns, c.end_ns || !st->last_ns ? end : st->last_ns);

		if (m > r->max_conn_stall_ns)
			r->max_conn_stall_ns = m;
	}
	rc = 0;
out:
	if (a->mode != LG_PONY_READ)
		free(c.req);
	free(c.slot);
	mst_close(c.ep);
	return rc;
}

#else /* !LG_HAVE_MUSTANG */

int lg_pony_serve_start(const struct lg_args *a, volatile int *stop, pthread_t *tid)
{
	(void)a; (void)stop; (void)tid;
	return -ENOTSUP;
}

int lg_pony_run(const struct lg_args *a, struct lg_result *r, volatile int *stop)
{
	(void)a; (void)r; (void)stop;
	return -ENOTSUP;
}
#endif
