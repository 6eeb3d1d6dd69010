/* SPDX-License-Identifier: BSD-3-Clause */
/* mustangctl top (ctl_top.c). Internal header. */
#ifndef MST_CONTROL_CTL_TOP_H
#define MST_CONTROL_CTL_TOP_H

/* Per-engine rates every second from the daemon at ctl. iterations 0: on
 * a tty until q or Ctrl-C (one block otherwise); N: N plain blocks. 0 or
 * -errno (the daemon unreachable or answering with an error). */
int ctl_top(const char *ctl, int timeout_ms, long iterations);

#endif
