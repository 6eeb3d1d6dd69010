/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Prometheus metrics (metrics.c; names in docs/observability.md).
 *
 *   metrics_render()      the text exposition format (version 0.0.4) of
 *                         every counter, drop reason, engine load and
 *                         histogram, per engine and per port
 *   metrics_answer()      `mustangctl metrics` (control thread)
 *   metrics_http_start()  --metrics-listen ADDR:PORT: a thread of its own
 *                         answering GET /metrics, one client at a time,
 *                         each with a deadline; never an engine thread
 *   metrics_http_stop()
 * Internal header.
 */
#ifndef MST_CONTROL_METRICS_H
#define MST_CONTROL_METRICS_H

#include <stddef.h>

struct daemon;
struct emit;
struct metrics_http;

/* malloc'd text into *out; 0 or -ENOMEM. Takes d->engines_lock. */
int metrics_render(struct daemon *d, char **out, size_t *len);
int metrics_answer(struct daemon *d, struct emit *e);

/* NULL with a one-line reason in err. */
struct metrics_http *metrics_http_start(struct daemon *d, const char *addr, char *err,
					size_t errlen);
void metrics_http_stop(struct metrics_http *m);

#endif
