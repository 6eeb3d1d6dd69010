/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * --stack kernel: the ops table over Linux system calls.
 */
#include <fcntl.h>
#include <unistd.h>

#include "lg.h"

static int k_init(const char *ctl)
{
	(void)ctl;
	return 0;
}

static void k_fini(void)
{
}

static int k_set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static int k_epoll_create(void)
{
	return epoll_create1(EPOLL_CLOEXEC);
}

const struct lg_ops lg_kernel_ops = {
	.name = "kernel",
	.init = k_init,
	.fini = k_fini,
	.socket = socket,
	.bind = bind,
	.listen = listen,
	.accept = accept,
	.connect = connect,
	.send = send,
	.recv = recv,
	.sendto = sendto,
	.recvfrom = recvfrom,
	.shutdown = shutdown,
	.close = close,
	.setsockopt = setsockopt,
	.getsockopt = getsockopt,
	.set_nonblock = k_set_nonblock,
	.poll = poll,
	.epoll_create = k_epoll_create,
	.epoll_ctl = epoll_ctl,
	.epoll_wait = epoll_wait,
	.udp = true,
};
