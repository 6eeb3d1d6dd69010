/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Built-in TCP services, run inside the engine: echo (RFC 862, port 7),
 * discard (RFC 863, port 9), chargen (RFC 864, port 19). They are ordinary
 * users of the socket-shaped API, driven by connection events:
 *   listener ACCEPT -> tcp_accept() loop
 *   READABLE/WRITABLE -> move bytes (echo: RX FIFO to TX FIFO, only as much
 *   as fits, so a slow reader throttles the writer through TCP's window)
 *   EOF -> close once everything is sent; CLOSED -> release the handle.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "transport/tcp/tcp_priv.h"

enum svc_kind { SVC_ECHO, SVC_DISCARD, SVC_CHARGEN };


#define CHARGEN_LINE 74 /* 72 printable characters + CR LF */
#define CHARGEN_PERIOD (95 * CHARGEN_LINE)

static uint8_t chargen_pattern[CHARGEN_PERIOD];

static void chargen_init(void)
{
	for (unsigned line = 0; line < 95; line++) {
		uint8_t *l = chargen_pattern + line * CHARGEN_LINE;

		for (unsigned i = 0; i < 72; i++)
			l[i] = (uint8_t)(32 + (line + i) % 95);
		l[72] = '\r';
		l[73] = '\n';
	}
}

static void svc_conn(struct tcp_svc *sv, struct tcp_cb *c, uint32_t ev)
{
	struct tcp_stack *ts = sv->ts;
	uint8_t buf[16384];
	ssize_t n;

	if (ev & TCP_EV_CLOSED) {
		tcp_close(ts, c);
		return;
	}
	switch ((enum svc_kind)sv->kind) {
	case SVC_ECHO:
		for (;;) {
			size_t want = tcp_writable(c);

			if (want > sizeof(buf))
				want = sizeof(buf);
			if (want == 0 && tcp_readable(c))
				return; /* wait for WRITABLE */
			n = tcp_recv(ts, c, buf, want ? want : 1);
			if (n == -EAGAIN)
				return;
			if (n <= 0) { /* EOF or error: FIN after what is queued */
				tcp_close(ts, c);
				return;
			}
			if (tcp_send(ts, c, buf, (size_t)n) != n) {
				tcp_abort(ts, c); /* cannot happen: we sized by writable */
				return;
			}
		}
	case SVC_DISCARD:
		for (;;) {
			n = tcp_recv(ts, c, buf, sizeof(buf));
			if (n == -EAGAIN)
				return;
			if (n <= 0) {
				tcp_close(ts, c);
				return;
			}
		}
	case SVC_CHARGEN: {
		uintptr_t pos = (uintptr_t)tcp_user(c);

		/* Input is discarded; EOF from the client ends the stream. */
		for (;;) {
			n = tcp_recv(ts, c, buf, sizeof(buf));
			if (n == -EAGAIN)
				break;
			if (n <= 0) {
				tcp_close(ts, c);
				return;
			}
		}
		for (;;) {
			size_t room = tcp_writable(c), chunk = CHARGEN_PERIOD - pos;

			if (room == 0)
				break;
			if (chunk > room)
				chunk = room;
			n = tcp_send(ts, c, chargen_pattern + pos, chunk);
			if (n <= 0)
				break;
			pos = (pos + (size_t)n) % CHARGEN_PERIOD;
		}
		tcp_set_user(c, (void *)pos);
		return;
	}
	}
}

void tcp_svc_event(void *ctx, struct tcp_cb *c, uint32_t ev)
{
	struct tcp_svc *sv = ctx;

	if (tcp_state_of(c) == TCP_LISTEN) {
		struct tcp_cb *nc;

		while (tcp_accept(sv->ts, c, &nc) == 0)
			svc_conn(sv, nc, TCP_EV_WRITABLE | TCP_EV_READABLE);
		return;
	}
	svc_conn(sv, c, ev);
}

void tcp_services_restore(struct tcp_stack *ts, uint32_t services)
{
	static const uint32_t bits[] = { [SVC_ECHO] = TCP_SVC_ECHO, [SVC_DISCARD] = TCP_SVC_DISCARD,
					 [SVC_CHARGEN] = TCP_SVC_CHARGEN };

	chargen_init();
	for (int k = SVC_ECHO; k <= SVC_CHARGEN; k++)
		if (services & bits[k]) {
			ts->svc[k].ts = ts;
			ts->svc[k].kind = k;
		}
	ts->services |= services;
}

int tcp_services_start(struct tcp_stack *ts, uint32_t services)
{
	static const struct {
		uint32_t bit;
		enum svc_kind kind;
		uint16_t port;
	} table[] = {
		{ TCP_SVC_ECHO, SVC_ECHO, 7 },
		{ TCP_SVC_DISCARD, SVC_DISCARD, 9 },
		{ TCP_SVC_CHARGEN, SVC_CHARGEN, 19 },
	};

	chargen_init();
	for (unsigned i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		struct tcp_cb *l;
		struct tcp_svc *sv;
		int rc;

		if (!(services & table[i].bit))
			continue;
		sv = &ts->svc[table[i].kind];
		sv->ts = ts;
		sv->kind = table[i].kind;
		rc = tcp_listen(ts, table[i].port, 1024, tcp_svc_event, sv, NULL, &l);
		if (rc)
			return rc;
	}
	ts->services |= services;
	return 0;
}
