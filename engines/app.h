/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Engine side of attached applications (the "net" engine's app layer).
 * Internal header.
 *
 *   eng_app_attach()  on the engine thread (mailbox), from attach_app()
 *   eng_app_poll()    every engine poll: take commands from each queue
 *                     pair, run them against the TCP stack, post events
 *   eng_app_kick()    after the poll's other work: wake sleeping threads
 *   eng_app_detach()  reset every connection, give back every FIFO slot
 *
 * Everything read from the segment is copied, then checked against the
 * engine's own state (socket ownership, FIFO counters, ring fill levels);
 * nothing in the segment is ever used as a pointer or an unchecked index.
 */
#ifndef MST_ENGINES_APP_H
#define MST_ENGINES_APP_H

#include <stdint.h>

#include <mustang/counters.h>
#include <mustang/engine.h>

struct tcp_stack;
struct eng_app;

/* NULL + errno (EINVAL: the segment's layout is not one we made). */
struct eng_app *eng_app_attach(struct tcp_stack *ts, struct mst_stats *st,
			       const struct mst_app *app, uint32_t rx_size, uint32_t tx_size);
void eng_app_detach(struct eng_app *a);
int eng_app_id(const struct eng_app *a);
/* Commands taken (bounded per call). */
int eng_app_poll(struct eng_app *a, uint64_t now_ns);
/* Signal the eventfd of every queue pair that got events and sleeps. */
void eng_app_kick(struct eng_app *a);

#endif
