/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Helpers shared by the example programs: argument parsing, clocks,
 * attaching to mustangd and stopping on SIGINT/SIGTERM. Not part of
 * libmustang: examples only.
 */
#ifndef MST_EX_UTIL_H
#define MST_EX_UTIL_H

#include <signal.h>
#include <stdint.h>
#include <netinet/in.h>

/* "123", "64K", "16M", "1G" (powers of 1024). 0, or -1 if malformed. */
int ex_parse_size(const char *s, uint64_t *out);
/* A decimal number in [min, max]. 0, or -1. */
int ex_parse_num(const char *s, uint64_t min, uint64_t max, uint64_t *out);
/* A TCP port, 1..65535. 0, or -1. */
int ex_parse_port(const char *s, uint16_t *out);
/* "A.B.C.D:PORT" into *sa. 0, or -1. */
int ex_parse_ipport(const char *s, struct sockaddr_in *sa);

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t ex_now_ns(void);

/* mst_init(ctl) with a message on stderr naming the path on failure.
 * ctl NULL: $MUSTANG_CTL, then the default path. 0, or -1. */
int ex_attach(const char *prog, const char *ctl);

/* Set *flag on SIGINT/SIGTERM; no SA_RESTART, so blocking mst_* calls
 * return EINTR and the caller looks at the flag. SIGPIPE is ignored. */
void ex_stop_on_signals(volatile sig_atomic_t *flag);

#endif
