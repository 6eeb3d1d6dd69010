/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Port watchdog (see port_watch.h for the call order).
 *
 * Why a restart and not the PMD: DPDK 22.11's net_memif client connects its
 * control socket only in dev_start, fails the start at once when no server
 * listens, and after a disconnect (server gone, or the server refusing us
 * with "ID not found" because its port was not started yet when we came)
 * stays down for good. A server needs nothing: its listener outlives the
 * client and accepts the next one. So for a memif client that is down this
 * thread does what an operator would: stop and start the port, with
 * back-off (PORT_WATCH_BACKOFF_MIN_MS doubling to _MAX_MS) while the peer
 * is absent, every attempt counted (link_retries, link_retry_failed,
 * link_retry_timeouts in `mustangctl ports`). Other ports (af_xdp,
 * af_packet) come back by themselves when their interface does; for them
 * this thread only counts and logs.
 *
 * A restart must not race an engine inside a burst (port.c header): the
 * queues are paused first, each by the engine that polls it, through the
 * runtime's mailbox (rt_engine_call runs the change between two polls and
 * returns when it is done, its release/acquire pairing ordering everything
 * the engine did before against the stop, and the start against the
 * engine's next burst).
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "control/config.h"
#include "engines/port_watch.h"

#define MS 1000000ull
#define PAUSE_CALL_MS 2000 /* an engine that does not answer: try again later */

struct watch_port {
	struct mst_port *p;
	bool up;                 /* as last seen */
	bool paused;             /* its queues are (or may be, after a failed call) paused */
	uint64_t since_ns;       /* last transition */
	uint64_t next_try_ns;    /* restartable and down: next attempt */
	uint64_t backoff_ns;     /* wait after the next failed start */
	unsigned attempts;       /* since the link went down */
	bool awaiting;           /* the last attempt started the port */
	uint64_t started_ns;     /* when it did */
	uint64_t half_open_ns;   /* up, but the server holds no connection since (0: not) */
	bool no_listener;        /* the last attempt found no server listening */
};

struct port_watch {
	struct port_watch_conf conf;
	struct watch_port ports[MST_MAX_PORTS];
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;               /* under lock */
};

static void wlog(struct port_watch *w, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void wlog(struct port_watch *w, int level, const char *fmt, ...)
{
	char buf[256];
	va_list ap;

	if (!w->conf.log)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	w->conf.log(w->conf.ctx, level, buf);
}

struct pause_req {
	struct mst_queue *q;
	bool paused;
};

/* On the engine's thread, between two polls. */
static void set_paused(void *eng, void *arg)
{
	struct pause_req *r = arg;

	(void)eng;
	r->q->paused = r->paused;
}

/* Pause or resume every queue of p; 0 when every engine did it. On a failed
 * pause the queues already paused stay paused (wp->paused tells). */
static int pause_port(struct port_watch *w, struct watch_port *wp, bool paused)
{
	struct rt_group *g = w->conf.group;
	int rc = 0;

	for (unsigned i = 0; i < g->n_engines; i++) {
		struct pause_req r = { .q = g->engines[i].queue, .paused = paused };
		int err;

		if (!r.q || port_of_queue(r.q) != wp->p)
			continue;
		err = rt_engine_call(g, i, set_paused, &r, PAUSE_CALL_MS);
		if (err && !rc)
			rc = err;
	}
	return rc;
}

static uint64_t next_backoff(uint64_t b)
{
	b *= 2;
	return b > PORT_WATCH_BACKOFF_MAX_MS * MS ? PORT_WATCH_BACKOFF_MAX_MS * MS : b;
}

static void attempt_failed(struct port_watch *w, struct watch_port *wp, uint64_t now, int rc)
{
	port_count_event(wp->p, MST_PORT_link_retry_failed);
	wlog(w, wp->attempts == 1 ? MST_LOG_WARN : MST_LOG_DEBUG,
	     "port %s: %s, attempt %u, next in %llu ms", port_name(wp->p),
	     rc == -ENOENT ? "no memif server listens" : strerror(-rc), wp->attempts,
	     (unsigned long long)(wp->backoff_ns / MS));
	wp->next_try_ns = now + wp->backoff_ns;
	wp->backoff_ns = next_backoff(wp->backoff_ns);
}

/* One restart attempt of a restartable port that is down. */
static void attempt(struct port_watch *w, struct watch_port *wp, uint64_t now)
{
	int rc;

	if (wp->awaiting)
		port_count_event(wp->p, MST_PORT_link_retry_timeouts);
	wp->awaiting = false;
	wp->attempts++;
	port_count_event(wp->p, MST_PORT_link_retries);
	rc = port_peer_listening(wp->p);
	wp->no_listener = rc == -ENOENT;
	if (rc) {
		attempt_failed(w, wp, now, rc); /* nobody to connect to: leave the port be */
		return;
	}
	if (!wp->paused) {
		rc = pause_port(w, wp, true);
		wp->paused = true; /* some may be, even on failure */
		if (rc) {
			port_count_event(wp->p, MST_PORT_link_pause_failed);
			wlog(w, MST_LOG_WARN, "port %s: an engine did not pause its queue (%s); retrying later",
			     port_name(wp->p), strerror(-rc));
			if (pause_port(w, wp, false) == 0)
				wp->paused = false;
			wp->next_try_ns = now + wp->backoff_ns;
			wp->backoff_ns = next_backoff(wp->backoff_ns);
			return;
		}
	}
	rc = port_restart(wp->p);
	if (rc) {
		attempt_failed(w, wp, now, rc); /* stopped, paused until the next try */
		return;
	}
	if (pause_port(w, wp, false) == 0)
		wp->paused = false; /* else resumed on a later tick */
	/* Started: the handshake takes a few ms, far longer on a loaded
	 * machine. Look again after the back-off: if the server still holds
	 * our connection it is in progress (let it be, up to
	 * PORT_WATCH_CONNECT_MS); if not, it was refused ("ID not found": we
	 * came before the server's port was started) and we try again. */
	wp->awaiting = true;
	wp->started_ns = now;
	wp->next_try_ns = now + wp->backoff_ns;
	wp->backoff_ns = next_backoff(wp->backoff_ns);
}

static void watch_one(struct port_watch *w, unsigned idx, uint64_t now)
{
	struct watch_port *wp = &w->ports[idx];
	bool up = port_link_up(wp->p);

	if (up != wp->up) {
		uint64_t gap_ms = (now - wp->since_ns) / MS;

		wp->up = up;
		wp->since_ns = now;
		if (up) {
			port_count_event(wp->p, MST_PORT_link_ups);
			if (wp->attempts)
				wlog(w, MST_LOG_INFO, "port %s: link up after %u restart(s), %llu ms down",
				     port_name(wp->p), wp->attempts, (unsigned long long)gap_ms);
			else
				wlog(w, MST_LOG_INFO, "port %s: link up, %llu ms down", port_name(wp->p),
				     (unsigned long long)gap_ms);
			wp->attempts = 0;
			wp->awaiting = false;
			wp->backoff_ns = PORT_WATCH_BACKOFF_MIN_MS * MS;
			if (w->conf.link_up)
				w->conf.link_up(w->conf.ctx, idx);
		} else {
			port_count_event(wp->p, MST_PORT_link_downs);
			wlog(w, MST_LOG_WARN, "port %s: link down after %llu ms%s", port_name(wp->p),
			     (unsigned long long)gap_ms,
			     port_restartable(wp->p) ? "; reconnecting" : "");
			/* The PMD may still be disconnecting: not at once. */
			wp->next_try_ns = now + PORT_WATCH_BACKOFF_MIN_MS * MS;
			wp->no_listener = false;
		}
	}
	if (wp->paused && port_started(wp->p) && pause_port(w, wp, false) == 0)
		wp->paused = false; /* a resume that failed before */
	if (up && port_restartable(wp->p) && port_peer_half_open(wp->p)) {
		/* The server closed its end and the PMD did not notice (seen
		 * after simultaneous starts): it would read up for good. */
		if (!wp->half_open_ns) {
			wp->half_open_ns = now;
		} else if (now - wp->half_open_ns >= PORT_WATCH_HALF_OPEN_MS * MS) {
			wp->half_open_ns = 0;
			port_count_event(wp->p, MST_PORT_link_half_open);
			wlog(w, MST_LOG_WARN, "port %s: link reads up but the server holds no connection "
			     "for us; reconnecting", port_name(wp->p));
			attempt(w, wp, now);
		}
	} else {
		wp->half_open_ns = 0;
	}
	if (!up && wp->no_listener && now < wp->next_try_ns &&
	    now - wp->since_ns < PORT_WATCH_FAST_MS * MS && port_peer_listening(wp->p) == 0) {
		/* A server that restarts (a live upgrade's new daemon) is
		 * back within tens of ms: try as soon as it listens rather than
		 * after the back-off. Only /proc is read each tick, and only
		 * for PORT_WATCH_FAST_MS after the link went down. */
		wp->next_try_ns = now;
		wp->no_listener = false;
	}
	if (!up && port_restartable(wp->p) && now >= wp->next_try_ns) {
		if (wp->awaiting && now - wp->started_ns < PORT_WATCH_CONNECT_MS * MS &&
		    port_peer_connected(wp->p)) {
			wp->next_try_ns = now + PORT_WATCH_BACKOFF_MIN_MS * MS; /* in progress */
			return;
		}
		attempt(w, wp, now);
	}
}

static bool sleep_tick(struct port_watch *w)
{
	struct timespec ts;
	bool stop;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_nsec += PORT_WATCH_TICK_MS * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&w->lock);
	while (!w->stop && pthread_cond_timedwait(&w->cond, &w->lock, &ts) == 0)
		;
	stop = w->stop;
	pthread_mutex_unlock(&w->lock);
	return !stop;
}

static void *watch_thread(void *arg)
{
	struct port_watch *w = arg;

	pthread_setname_np(pthread_self(), "mst-portwatch");
	do {
		uint64_t now = rt_now_ns();

		for (unsigned i = 0; i < w->conf.n_ports; i++)
			watch_one(w, i, now);
	} while (sleep_tick(w));
	return NULL;
}

struct port_watch *port_watch_start(const struct port_watch_conf *conf)
{
	struct port_watch *w;
	pthread_condattr_t ca;
	uint64_t now = rt_now_ns();
	int rc;

	if (conf->n_ports > MST_MAX_PORTS) {
		errno = EINVAL;
		return NULL;
	}
	w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->conf = *conf;
	for (unsigned i = 0; i < conf->n_ports; i++) {
		struct watch_port *wp = &w->ports[i];

		wp->p = conf->ports[i];
		wp->since_ns = now;
		wp->backoff_ns = PORT_WATCH_BACKOFF_MIN_MS * MS;
		/* port_open() left a port it could not start paused. */
		wp->paused = !port_started(wp->p);
		wp->awaiting = port_started(wp->p);
		wp->started_ns = now;
		wp->next_try_ns = now + PORT_WATCH_BACKOFF_MIN_MS * MS;
		if (wp->paused)
			wp->attempts = 1; /* port_open's start */
	}
	pthread_mutex_init(&w->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cond, &ca);
	pthread_condattr_destroy(&ca);
	rc = pthread_create(&w->thread, NULL, watch_thread, w);
	if (rc) {
		pthread_cond_destroy(&w->cond);
		pthread_mutex_destroy(&w->lock);
		free(w);
		errno = rc;
		return NULL;
	}
	return w;
}

void port_watch_stop(struct port_watch *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	free(w);
}
