/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * --stack mustang: the ops table over libmustang's POSIX-shaped calls.
 * Built with LG_HAVE_MUSTANG when libmustang is part of the build;
 * otherwise every entry point fails with ENOTSUP and main.c says so.
 */
#include <errno.h>
#include <fcntl.h>

#include "lg.h"

#ifdef LG_HAVE_MUSTANG
#include <mustang/mustang.h>

const bool lg_have_mustang = true;

static int m_init(const char *ctl)
{
	return mst_init(ctl);
}

static int m_set_nonblock(int fd)
{
	int fl = mst_fcntl(fd, F_GETFL);

	return fl < 0 ? -1 : mst_fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static int m_epoll_create(void)
{
	return mst_epoll_create1(0);
}

const struct lg_ops lg_mustang_ops = {
	.name = "mustang",
	.init = m_init,
	.fini = mst_fini,
	.socket = mst_socket,
	.bind = mst_bind,
	.listen = mst_listen,
	.accept = mst_accept,
	.connect = mst_connect,
	.send = mst_send,
	.recv = mst_recv,
	.sendto = mst_sendto,
	.recvfrom = mst_recvfrom,
	.shutdown = mst_shutdown,
	.close = mst_close,
	.setsockopt = mst_setsockopt,
	.getsockopt = mst_getsockopt,
	.set_nonblock = m_set_nonblock,
	.poll = mst_poll,
	.epoll_create = m_epoll_create,
	.epoll_ctl = mst_epoll_ctl,
	.epoll_wait = mst_epoll_wait,
	.udp = true,
};

#else /* !LG_HAVE_MUSTANG */

const bool lg_have_mustang = false;

static int m_init(const char *ctl)
{
	(void)ctl;
	errno = ENOTSUP;
	return -1;
}

static void m_fini(void)
{
}

const struct lg_ops lg_mustang_ops = {
	.name = "mustang",
	.init = m_init,
	.fini = m_fini,
	.udp = false,
};
#endif
