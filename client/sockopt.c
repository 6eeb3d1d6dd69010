/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mst_setsockopt / mst_getsockopt: map SOL_SOCKET and IPPROTO_TCP options
 * onto SETOPT/GETOPT commands (MST_OPT_*), with Linux's argument checks.
 * SO_RCVBUF/SO_SNDBUF/SO_TYPE/... are answered from the segment and the
 * library without a round trip. SO_RCVBUF/SO_SNDBUF on a stream socket
 * are per socket and cap how much of its FIFO is used (the FIFOs are
 * fixed slots of the segment: docs/decisions.md): the engine limits the
 * window it offers, the library what it queues. Datagram sockets have no
 * TCP options (ENOPROTOOPT, as Linux's UDP); their SO_REUSEADDR and
 * SO_KEEPALIVE are kept by the library (no effect on UDP in mustangd
 * either).
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>

#include "priv.h"

#define RET_ERR(e) do { errno = (e); return -1; } while (0)

/* Which engine option carries (level, name); 0 if none. */
static int opt_of(int level, int name)
{
	if (level == SOL_SOCKET) {
		switch (name) {
		case SO_REUSEADDR: return MST_OPT_REUSEADDR;
		case SO_KEEPALIVE: return MST_OPT_KEEPALIVE;
		default: return 0;
		}
	}
	if (level == IPPROTO_TCP) {
		switch (name) {
		case TCP_NODELAY: return MST_OPT_NODELAY;
		case TCP_KEEPIDLE: return MST_OPT_KEEPIDLE;
		case TCP_KEEPINTVL: return MST_OPT_KEEPINTVL;
		case TCP_KEEPCNT: return MST_OPT_KEEPCNT;
		case TCP_MAXSEG: return MST_OPT_MAXSEG;
		default: return 0;
		}
	}
	return 0;
}

/* Options set on a socket before its connection exists: mustangd keeps
 * options on the connection and answers ENOTCONN, so remember them and
 * apply them right after CONNECT (sock_apply_pending_opts). */
static int setopt(uint32_t idx, int opt, uint64_t v);

void sock_apply_pending_opts(struct thr *t, uint32_t idx)
{
	struct lsock *ls = &mst_lib.ls[idx];
	uint32_t mask = ls->pend_mask;

	ls->pend_mask = 0;
	while (mask) {
		int opt = __builtin_ctz(mask);

		mask &= mask - 1;
		setopt(idx, opt, ls->pend_val[opt]);
	}
}

static int setopt(uint32_t idx, int opt, uint64_t v)
{
	struct mst_shm_msg m = { .op = MST_CMD_SETOPT, .sock = (int32_t)idx,
				 .a = (uint64_t)opt, .b = v };
	struct thr *t = thr_get();
	int r;

	if (!t)
		return -errno;
	/* No connection yet (a new socket before connect/listen): the engine
	 * would answer ENOTCONN; remember it without the round trip. */
	if (opt < 16 && (mst_lib.ls[idx].dgram ||
			 (!mst_lib.ls[idx].connecting && !mst_lib.ls[idx].listening &&
			  __atomic_load_n(&mst_lib.socks[idx].state, __ATOMIC_ACQUIRE) == MST_SOCK_NEW))) {
		mst_lib.ls[idx].pend_mask |= 1u << opt;
		mst_lib.ls[idx].pend_val[opt] = (uint32_t)v;
		return 0;
	}
	/* TCP_NODELAY (0 or 1) cannot fail on a connection: post it without
	 * waiting for the answer (seq 0 is never waited for), one engine
	 * round trip less per accepted or connected socket. */
	if (opt == MST_OPT_NODELAY && v <= 1)
		return cmd_post(t, &m);
	r = cmd_call(t, &m);
	if (r == -ENOTCONN && opt < 16 &&
	    __atomic_load_n(&mst_lib.socks[idx].state, __ATOMIC_ACQUIRE) == MST_SOCK_NEW) {
		mst_lib.ls[idx].pend_mask |= 1u << opt;
		mst_lib.ls[idx].pend_val[opt] = (uint32_t)v;
		return 0;
	}
	return r < 0 ? r : 0;
}

static int getopt_(uint32_t idx, int opt, uint64_t *v)
{
	struct mst_shm_msg m = { .op = MST_CMD_GETOPT, .sock = (int32_t)idx, .a = (uint64_t)opt };
	struct thr *t = thr_get();
	int r;

	if (!t)
		return -errno;
	if (mst_lib.ls[idx].dgram && opt != MST_OPT_ERROR) {
		*v = opt < 16 && (mst_lib.ls[idx].pend_mask & (1u << opt)) ?
		     mst_lib.ls[idx].pend_val[opt] : 0;
		return 0;
	}
	r = cmd_call(t, &m);
	if (r < 0)
		return r;
	*v = m.a;
	if (opt < 16 && (mst_lib.ls[idx].pend_mask & (1u << opt)))
		*v = mst_lib.ls[idx].pend_val[opt];
	return 0;
}

/* Clamped as Linux clamps (never EINVAL): to [MST_BUF_MIN, FIFO size], a
 * negative value read unsigned (as large as possible). Before the
 * connection exists the FIFO size is not known: the engine clamps then,
 * and getsockopt() reports min(value, FIFO) once it is. */
#define MST_BUF_MIN 4096u /* = TCP_BUF_MIN */

static uint32_t buf_clamp(uint32_t v, uint32_t fifo)
{
	if (v < MST_BUF_MIN)
		v = MST_BUF_MIN;
	return fifo && v > fifo ? fifo : v;
}

static int set_bufsize(uint32_t idx, struct lsock *ls, bool rcv, int v)
{
	struct mst_shm_sock *s = &mst_lib.socks[idx];
	uint32_t c;
	int r;

	if (ls->dgram)
		return 0; /* datagram FIFOs: fixed, as before */
	c = buf_clamp((uint32_t)v, rcv ? s->rx_size : s->tx_size);
	r = setopt(idx, rcv ? MST_OPT_RCVBUF : MST_OPT_SNDBUF, c);
	if (r < 0)
		RET_ERR(-r);
	*(rcv ? &ls->rcvbuf : &ls->sndbuf) = c;
	return 0;
}

MST_EXPORT int mst_setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	struct lsock *ls;
	uint32_t idx;
	int v, opt, r;

	if (!(ls = sock_get(fd, &idx)))
		return -1;
	if (level != SOL_SOCKET && level != IPPROTO_TCP)
		RET_ERR(ENOPROTOOPT);
	if (ls->dgram && level == IPPROTO_TCP)
		RET_ERR(ENOPROTOOPT);
	if (level == SOL_SOCKET && name == SO_LINGER) {
		struct linger l;

		if (!val || len < (socklen_t)sizeof(l))
			RET_ERR(EINVAL);
		memcpy(&l, val, sizeof(l));
		r = setopt(idx, MST_OPT_LINGER0, l.l_onoff && l.l_linger == 0);
		if (r < 0)
			RET_ERR(-r);
		ls->linger_on = l.l_onoff;
		ls->linger_s = l.l_linger;
		return 0;
	}
	if (!val || len < (socklen_t)sizeof(int))
		RET_ERR(EINVAL);
	memcpy(&v, val, sizeof(v));
	if (level == SOL_SOCKET && (name == SO_RCVBUF || name == SO_SNDBUF))
		return set_bufsize(idx, ls, name == SO_RCVBUF, v);
	opt = opt_of(level, name);
	if (!opt)
		RET_ERR(ENOPROTOOPT);
	switch (opt) {
	case MST_OPT_KEEPIDLE:
	case MST_OPT_KEEPINTVL:
		if (v < 1 || v > 32767)
			RET_ERR(EINVAL);
		break;
	case MST_OPT_KEEPCNT:
		if (v < 1 || v > 127)
			RET_ERR(EINVAL);
		break;
	case MST_OPT_MAXSEG:
		if (v < 0 || v > 65535)
			RET_ERR(EINVAL);
		break;
	default:
		v = !!v;
		break;
	}
	r = setopt(idx, opt, (uint64_t)v);
	if (r < 0)
		RET_ERR(-r);
	return 0;
}

static int put_int(void *val, socklen_t *len, int v)
{
	socklen_t n;

	if (!val || !len || (int)*len < 0)
		return -EINVAL;
	n = *len < sizeof(int) ? *len : (socklen_t)sizeof(int);
	memcpy(val, &v, n);
	*len = n;
	return 0;
}

MST_EXPORT int mst_getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
	struct mst_shm_sock *s;
	struct lsock *ls;
	uint32_t idx;
	uint64_t v = 0;
	int opt, r, iv;

	if (!(ls = sock_get(fd, &idx)))
		return -1;
	s = &mst_lib.socks[idx];
	if (level == SOL_SOCKET) {
		switch (name) {
		case SO_LINGER: {
			struct linger l = { .l_onoff = ls->linger_on, .l_linger = ls->linger_s };

			if (!val || !len || (int)*len < 0)
				RET_ERR(EINVAL);
			memcpy(val, &l, *len < sizeof(l) ? *len : sizeof(l));
			*len = *len < sizeof(l) ? *len : (socklen_t)sizeof(l);
			return 0;
		}
		case SO_RCVBUF:
			iv = (int)(ls->rcvbuf ? buf_clamp(ls->rcvbuf, s->rx_size) : s->rx_size);
			goto out_int;
		case SO_SNDBUF:
			iv = (int)(ls->sndbuf ? buf_clamp(ls->sndbuf, s->tx_size) : s->tx_size);
			goto out_int;
		case SO_TYPE: iv = ls->dgram ? SOCK_DGRAM : SOCK_STREAM; goto out_int;
		case SO_DOMAIN: iv = AF_INET; goto out_int;
		case SO_PROTOCOL: iv = ls->dgram ? IPPROTO_UDP : IPPROTO_TCP; goto out_int;
		case SO_ACCEPTCONN: iv = !!ls->listening; goto out_int;
		case SO_ERROR:
			/* No round trip when nothing is pending. */
			if (!sock_error_pending(idx)) {
				iv = 0;
				goto out_int;
			}
			opt = MST_OPT_ERROR;
			goto engine;
		default:
			break;
		}
	} else if (level != IPPROTO_TCP || ls->dgram) {
		RET_ERR(ENOPROTOOPT);
	}
	opt = opt_of(level, name);
	if (!opt)
		RET_ERR(ENOPROTOOPT);
engine:
	r = getopt_(idx, opt, &v);
	if (r < 0)
		RET_ERR(-r);
	iv = (int)v;
out_int:
	r = put_int(val, len, iv);
	if (r < 0)
		RET_ERR(-r);
	return 0;
}
