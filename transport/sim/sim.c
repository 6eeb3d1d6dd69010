/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The in-process harness of <mustang/sim.h>: a net_stack + tcp_stack with
 * memory-backed buffers, an output queue and a virtual clock.
 *
 * mst_sim_input() -> buffer from the pool -> net_input() -> ... -> frames
 * the stack sends land in the output queue -> mst_sim_output() drains it.
 * mst_sim_advance() -> net_timer() + tcp_timer() at the new time.
 * Socket calls map onto the tcp_* API with a small descriptor table.
 */
#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <mustang/sim.h>

#include "transport/net/net.h"
#include "transport/tcp/tcp_priv.h"

/* Linux's IPPROTO_TCP option numbers (<netinet/tcp.h> clashes with our
 * state names, so they are spelled out; the values are ABI). */
#define SIM_TCP_NODELAY 1
#define SIM_TCP_MAXSEG 2
#define SIM_TCP_KEEPIDLE 4
#define SIM_TCP_KEEPINTVL 5
#define SIM_TCP_KEEPCNT 6
#define SIM_TCP_INFO 11
#define SIM_TCP_CONGESTION 13

#define SIM_BUFS 8192
#define SIM_BUF_SIZE 10240      /* room for a 9000-byte MTU frame */
#define SIM_HEADROOM 128
#define SIM_FDS 4096

struct sim_buf {
	struct mst_pkt pkt;
	struct sim_buf *next_free;
	uint8_t mem[SIM_BUF_SIZE];
};

struct sim_fd {
	bool used;
	bool listening;
	uint16_t port;              /* bound, host order */
	struct tcp_cb *c;
	int rcvbuf, sndbuf;         /* SO_RCVBUF/SO_SNDBUF set before connect/listen, 0 none */
	int maxseg;                 /* TCP_MAXSEG set before connect/listen, 0 none */
	int nodelay;                /* TCP_NODELAY set before connect/listen, -1 none */
	bool reuseaddr;             /* SO_REUSEADDR (kept for getsockopt; binds never conflict
				     * with TIME_WAIT here) */
};


struct mst_sim {
	struct mst_sim_conf conf;
	struct net_stack *ns;
	struct tcp_stack *ts;
	struct mst_stats stats;
	uint64_t now;
	struct sim_buf *bufs;
	struct sim_buf *free_bufs;
	struct mst_pkt **outq;          /* ring of n_bufs frames sent, oldest first */
	unsigned out_head, out_n, n_bufs;
	struct sim_fd fds[SIM_FDS];
};

static struct mst_pkt *sim_alloc(void *ctx)
{
	struct mst_sim *sim = ctx;
	struct sim_buf *b = sim->free_bufs;

	if (!b)
		return NULL;
	sim->free_bufs = b->next_free;
	b->next_free = NULL;
	b->pkt.data = b->mem + SIM_HEADROOM;
	b->pkt.len = 0;
	b->pkt.headroom = SIM_HEADROOM;
	b->pkt.tailroom = SIM_BUF_SIZE - SIM_HEADROOM;
	b->pkt.flags = 0;
	b->pkt.l2_len = b->pkt.l3_len = 0;
	b->pkt.owner = b;
	return &b->pkt;
}

static void sim_free(void *ctx, struct mst_pkt *p)
{
	struct mst_sim *sim = ctx;
	struct sim_buf *b = p->owner;

	b->next_free = sim->free_bufs;
	sim->free_bufs = b;
}

static void sim_xmit(void *ctx, struct mst_pkt *p)
{
	struct mst_sim *sim = ctx;

	if (sim->out_n == sim->n_bufs) {
		MST_DROP(&sim->stats, tx_full);
		sim_free(sim, p);
		return;
	}
	sim->outq[(sim->out_head + sim->out_n) % sim->n_bufs] = p;
	sim->out_n++;
	MST_COUNT(&sim->stats, tx_frames);
	MST_COUNT_N(&sim->stats, tx_bytes, p->len);
}

struct mst_sim *mst_sim_create(const struct mst_sim_conf *conf)
{
	struct mst_sim *sim;
	struct net_conf nc;
	struct tcp_conf tc;
	struct net_io io = { .alloc = sim_alloc, .xmit = sim_xmit, .free = sim_free };
	uint32_t tsvc = 0;
	int err = ENOMEM;

	if (!conf || conf->version < 1 || conf->version > MST_SIM_VERSION) {
		errno = EINVAL;
		return NULL;
	}
	sim = calloc(1, sizeof(*sim));
	if (!sim)
		goto out;
	/* A version-1 caller's struct ends at bufs: read no further. */
	memcpy(&sim->conf, conf,
	       conf->version == 1   ? offsetof(struct mst_sim_conf, eph_lo)
	       : conf->version == 2 ? offsetof(struct mst_sim_conf, rx_buf_max)
				    : sizeof(*conf));
	conf = &sim->conf;
	sim->now = conf->start_ns;
	sim->n_bufs = conf->bufs ? conf->bufs : SIM_BUFS;
	if (sim->n_bufs < 16 || sim->n_bufs > (1u << 20)) {
		err = EINVAL;
		goto out_sim;
	}
	sim->bufs = calloc(sim->n_bufs, sizeof(*sim->bufs));
	sim->outq = calloc(sim->n_bufs, sizeof(*sim->outq));
	if (!sim->bufs || !sim->outq)
		goto out_bufs;
	for (unsigned i = sim->n_bufs; i-- > 0;) {
		sim->bufs[i].next_free = sim->free_bufs;
		sim->free_bufs = &sim->bufs[i];
	}
	io.ctx = sim;
	memset(&nc, 0, sizeof(nc));
	memcpy(nc.mac, conf->mac, 6);
	nc.ip = conf->ip;
	nc.prefix_len = conf->prefix_len;
	nc.gw = conf->gw;
	nc.mtu = conf->mtu ? conf->mtu : 1500;
	nc.services = (conf->services & MST_SIM_SVC_UDP_ECHO) ? NET_SVC_ECHO : 0;
	sim->ns = net_create(&nc, &io, &sim->stats);
	if (!sim->ns) {
		err = errno;
		goto out_bufs;
	}
	tcp_conf_defaults(&tc);
	tc.max_conns = conf->max_conns ? conf->max_conns : 1024;
	tc.rx_buf = conf->rx_buf ? conf->rx_buf : 65536;
	tc.tx_buf = conf->tx_buf ? conf->tx_buf : 65536;
	tc.rx_buf_max = conf->rx_buf_max;
	if (conf->rto_min_ms)
		tc.rto_min_ms = conf->rto_min_ms;
	if (conf->rto_max_ms)
		tc.rto_max_ms = conf->rto_max_ms;
	if (conf->rto_initial_ms)
		tc.rto_initial_ms = conf->rto_initial_ms;
	if (conf->timewait_ms)
		tc.timewait_ms = conf->timewait_ms;
	if (conf->delack_ms)
		tc.delack_ms = conf->delack_ms;
	if (conf->cc)
		tc.cc = conf->cc;
	tc.sack = !conf->no_sack;
	tc.timestamps = !conf->no_timestamps;
	tc.wscale = !conf->no_wscale;
	tc.syncookies = !conf->no_syncookies;
	if (conf->eph_lo || conf->eph_hi) {
		tc.eph_lo = conf->eph_lo;
		tc.eph_hi = conf->eph_hi;
	}
	if (conf->tw_reuse_delay_ms)
		tc.tw_reuse_delay_ms = conf->tw_reuse_delay_ms;
	sim->ts = tcp_create(sim->ns, &tc, &sim->stats, sim->now);
	if (!sim->ts) {
		err = errno;
		goto out_net;
	}
	if (conf->services & MST_SIM_SVC_TCP_ECHO)
		tsvc |= TCP_SVC_ECHO;
	if (conf->services & MST_SIM_SVC_TCP_DISCARD)
		tsvc |= TCP_SVC_DISCARD;
	if (conf->services & MST_SIM_SVC_TCP_CHARGEN)
		tsvc |= TCP_SVC_CHARGEN;
	if (tsvc && tcp_services_start(sim->ts, tsvc) < 0) {
		err = EADDRINUSE;
		goto out_tcp;
	}
	return sim;

out_tcp:
	tcp_destroy(sim->ts);
out_net:
	net_destroy(sim->ns);
out_bufs:
	free(sim->outq);
	free(sim->bufs);
out_sim:
	free(sim);
out:
	errno = err;
	return NULL;
}

void mst_sim_destroy(struct mst_sim *sim)
{
	if (!sim)
		return;
	tcp_destroy(sim->ts);
	net_destroy(sim->ns);
	free(sim->outq);
	free(sim->bufs);
	free(sim);
}

int mst_sim_input(struct mst_sim *sim, const void *frame, size_t len)
{
	struct mst_pkt *p;

	if (!frame || len > SIM_BUF_SIZE - SIM_HEADROOM)
		return -EMSGSIZE;
	p = sim_alloc(sim);
	if (!p) {
		MST_DROP(&sim->stats, no_buffer);
		return -ENOBUFS;
	}
	memcpy(mst_pkt_append(p, (uint16_t)len), frame, len);
	MST_COUNT(&sim->stats, rx_frames);
	MST_COUNT_N(&sim->stats, rx_bytes, len);
	net_input(sim->ns, p, sim->now);
	tcp_flush_acks(sim->ts);
	return 0;
}

int mst_sim_input_ip(struct mst_sim *sim, const void *pkt, size_t len)
{
	uint8_t frame[SIM_BUF_SIZE];

	if (!pkt || len + 14 > SIM_BUF_SIZE - SIM_HEADROOM)
		return -EMSGSIZE;
	memcpy(frame, sim->conf.mac, 6);
	memcpy(frame + 6, sim->conf.peer_mac, 6);
	frame[12] = 0x08;
	frame[13] = 0x00;
	memcpy(frame + 14, pkt, len);
	return mst_sim_input(sim, frame, len + 14);
}

void mst_sim_set_time(struct mst_sim *sim, uint64_t now_ns)
{
	if (now_ns < sim->now)
		return; /* time never runs backwards */
	sim->now = now_ns;
	net_timer(sim->ns, now_ns);
	tcp_timer(sim->ts, now_ns);
}

void mst_sim_advance(struct mst_sim *sim, uint64_t ns)
{
	mst_sim_set_time(sim, sim->now + ns);
}

uint64_t mst_sim_now(const struct mst_sim *sim)
{
	return sim->now;
}

size_t mst_sim_pending(const struct mst_sim *sim)
{
	return sim->out_n;
}

ssize_t mst_sim_output(struct mst_sim *sim, void *buf, size_t cap)
{
	struct mst_pkt *p;
	size_t len;

	if (!sim->out_n)
		return 0;
	p = sim->outq[sim->out_head];
	if (p->len > cap)
		return -EMSGSIZE;
	len = p->len;
	memcpy(buf, p->data, len);
	sim->out_head = (sim->out_head + 1) % sim->n_bufs;
	sim->out_n--;
	sim_free(sim, p);
	return (ssize_t)len;
}

/* Answer an ARP request from the stack as the peer would. */
static void answer_arp(struct mst_sim *sim, const uint8_t *req)
{
	uint8_t rep[42];

	memcpy(rep, req + 6, 6);            /* to the asker */
	memcpy(rep + 6, sim->conf.peer_mac, 6);
	rep[12] = 0x08;
	rep[13] = 0x06;
	memcpy(rep + 14, req + 14, 6);      /* htype, ptype, hlen, plen */
	rep[20] = 0;
	rep[21] = 2;                        /* reply */
	memcpy(rep + 22, sim->conf.peer_mac, 6);
	memcpy(rep + 28, req + 38, 4);      /* sender ip = requested ip */
	memcpy(rep + 32, req + 22, 6);      /* target = asker */
	memcpy(rep + 38, req + 28, 4);
	(void)mst_sim_input(sim, rep, sizeof(rep));
}

ssize_t mst_sim_output_ip(struct mst_sim *sim, void *buf, size_t cap)
{
	uint8_t frame[SIM_BUF_SIZE];

	for (;;) {
		ssize_t n = mst_sim_output(sim, frame, sizeof(frame));

		if (n <= 0)
			return n;
		if (n >= 42 && frame[12] == 0x08 && frame[13] == 0x06) {
			if (frame[20] == 0 && frame[21] == 1)
				answer_arp(sim, frame);
			continue;
		}
		if (n < 14 || frame[12] != 0x08 || frame[13] != 0x00)
			continue;
		if ((size_t)n - 14 > cap)
			return -EMSGSIZE;
		memcpy(buf, frame + 14, (size_t)n - 14);
		return n - 14;
	}
}

/* ---- sockets ------------------------------------------------------------ */

static struct sim_fd *get_fd(struct mst_sim *sim, int fd)
{
	if (fd < 0 || fd >= SIM_FDS || !sim->fds[fd].used)
		return NULL;
	return &sim->fds[fd];
}

static int new_fd(struct mst_sim *sim)
{
	for (int i = 0; i < SIM_FDS; i++)
		if (!sim->fds[i].used) {
			memset(&sim->fds[i], 0, sizeof(sim->fds[i]));
			sim->fds[i].used = true;
			sim->fds[i].nodelay = -1;
			return i;
		}
	return -EMFILE;
}

int mst_sim_socket(struct mst_sim *sim, int type)
{
	if (type != 1)
		return -EPROTONOSUPPORT;
	return new_fd(sim);
}

int mst_sim_bind(struct mst_sim *sim, int fd, uint16_t port)
{
	struct sim_fd *f = get_fd(sim, fd);

	if (!f)
		return -EBADF;
	if (f->c || f->port)
		return -EINVAL;
	for (int i = 0; i < SIM_FDS; i++)
		if (sim->fds[i].used && sim->fds[i].port == port && port)
			return -EADDRINUSE;
	f->port = port;
	return 0;
}

/* Options set before the connection existed go to it (the stack
 * default is not touched). */
static void apply_pending_bufs(struct mst_sim *sim, struct sim_fd *f)
{
	if (f->nodelay >= 0)
		tcp_setopt(sim->ts, f->c, TCP_SO_NODELAY, f->nodelay);
	if (f->maxseg && f->listening)
		tcp_setopt(sim->ts, f->c, TCP_SO_MAXSEG, f->maxseg);
	if (f->rcvbuf)
		tcp_setopt(sim->ts, f->c, TCP_SO_RCVBUF, f->rcvbuf);
	if (f->sndbuf)
		tcp_setopt(sim->ts, f->c, TCP_SO_SNDBUF, f->sndbuf);
}

int mst_sim_listen(struct mst_sim *sim, int fd, int backlog)
{
	struct sim_fd *f = get_fd(sim, fd);
	int rc;

	if (!f)
		return -EBADF;
	if (f->c)
		return f->listening ? 0 : -EISCONN;
	if (!f->port)
		return -EDESTADDRREQ;
	rc = tcp_listen(sim->ts, f->port, backlog, NULL, NULL, NULL, &f->c);
	if (rc)
		return rc;
	f->listening = true;
	apply_pending_bufs(sim, f);
	return 0;
}

int mst_sim_accept(struct mst_sim *sim, int fd, uint32_t *peer_ip, uint16_t *peer_port)
{
	struct sim_fd *f = get_fd(sim, fd);
	struct tcp_cb *c;
	int nfd, rc;

	if (!f)
		return -EBADF;
	if (!f->listening)
		return -EINVAL;
	nfd = new_fd(sim);
	if (nfd < 0)
		return nfd;
	rc = tcp_accept(sim->ts, f->c, &c);
	if (rc) {
		sim->fds[nfd].used = false;
		return rc;
	}
	sim->fds[nfd].c = c;
	tcp_set_user(c, &sim->fds[nfd]);
	if (peer_ip)
		*peer_ip = c->raddr;
	if (peer_port)
		*peer_port = ntohs(c->rport);
	return nfd;
}

int mst_sim_connect(struct mst_sim *sim, int fd, uint32_t ip, uint16_t port)
{
	struct sim_fd *f = get_fd(sim, fd);
	int rc;

	if (!f)
		return -EBADF;
	if (f->listening)
		return -EINVAL;
	if (f->c)
		return f->c->state == TCP_SYN_SENT ? -EALREADY : -EISCONN;
	rc = tcp_connect_mss(sim->ts, ip, port, f->port, (uint16_t)f->maxseg, NULL, NULL, NULL,
			     &f->c);
	if (rc)
		return rc;
	tcp_set_user(f->c, f);
	apply_pending_bufs(sim, f); /* after the SYN: its window may be larger */
	return -EINPROGRESS;
}

ssize_t mst_sim_send(struct mst_sim *sim, int fd, const void *buf, size_t len)
{
	struct sim_fd *f = get_fd(sim, fd);

	if (!f)
		return -EBADF;
	if (!f->c || f->listening)
		return -ENOTCONN;
	if (!buf && len)
		return -EFAULT;
	return tcp_send(sim->ts, f->c, buf, len);
}

ssize_t mst_sim_recv(struct mst_sim *sim, int fd, void *buf, size_t len)
{
	struct sim_fd *f = get_fd(sim, fd);

	if (!f)
		return -EBADF;
	if (!f->c || f->listening)
		return -ENOTCONN;
	if (!buf && len)
		return -EFAULT;
	return tcp_recv(sim->ts, f->c, buf, len);
}

int mst_sim_shutdown(struct mst_sim *sim, int fd, int how)
{
	struct sim_fd *f = get_fd(sim, fd);

	if (!f)
		return -EBADF;
	if (!f->c || f->listening)
		return -ENOTCONN;
	return tcp_shutdown(sim->ts, f->c, how);
}

int mst_sim_close(struct mst_sim *sim, int fd)
{
	struct sim_fd *f = get_fd(sim, fd);

	if (!f)
		return -EBADF;
	if (f->c)
		tcp_close(sim->ts, f->c);
	memset(f, 0, sizeof(*f));
	return 0;
}

/* Linux (level, optname) -> the tcp_* option. */
static int opt_map(int level, int optname, enum tcp_sockopt *o)
{
	static const struct {
		int level, name;
		enum tcp_sockopt opt;
	} map[] = {
		{ SOL_SOCKET, SO_KEEPALIVE, TCP_SO_KEEPALIVE },
		{ SOL_SOCKET, SO_RCVBUF, TCP_SO_RCVBUF },
		{ SOL_SOCKET, SO_SNDBUF, TCP_SO_SNDBUF },
		{ IPPROTO_TCP, SIM_TCP_NODELAY, TCP_SO_NODELAY },
		{ IPPROTO_TCP, SIM_TCP_MAXSEG, TCP_SO_MAXSEG },
		{ IPPROTO_TCP, SIM_TCP_KEEPIDLE, TCP_SO_KEEPIDLE },
		{ IPPROTO_TCP, SIM_TCP_KEEPINTVL, TCP_SO_KEEPINTVL },
		{ IPPROTO_TCP, SIM_TCP_KEEPCNT, TCP_SO_KEEPCNT },
	};

	for (unsigned i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (map[i].level == level && map[i].name == optname) {
			*o = map[i].opt;
			return 0;
		}
	return -1;
}

static int opt_int(const void *val, size_t len, int *out)
{
	if (!val || len < sizeof(int))
		return -EINVAL;
	memcpy(out, val, sizeof(int));
	return 0;
}

/* Before connect or listen: buffer sizes, the MSS and Nagle wait for the
 * connection (as on Linux and in libmustang); other options need it. */
static int set_pending(struct sim_fd *f, enum tcp_sockopt o, int v)
{
	switch (o) {
	case TCP_SO_RCVBUF:
		f->rcvbuf = v ? v : 1; /* 0: the minimum */
		return 0;
	case TCP_SO_SNDBUF:
		f->sndbuf = v ? v : 1;
		return 0;
	case TCP_SO_MAXSEG:
		/* Linux's bounds for TCP_MAXSEG: 88 .. 65535 (0 = none). */
		if (v != 0 && (v < 88 || v > 65535))
			return -EINVAL;
		f->maxseg = v;
		return 0;
	case TCP_SO_NODELAY:
		f->nodelay = v != 0;
		return 0;
	default:
		return -ENOTCONN;
	}
}

int mst_sim_setsockopt(struct mst_sim *sim, int fd, int level, int optname, const void *val,
		       size_t len)
{
	struct sim_fd *f = get_fd(sim, fd);
	enum tcp_sockopt o;
	int v, rc;

	if (!f)
		return -EBADF;
	if (level == IPPROTO_TCP && optname == SIM_TCP_CONGESTION) {
		char name[16];

		if (!val || len == 0 || len >= sizeof(name))
			return -EINVAL;
		memcpy(name, val, len);
		name[len] = 0;
		if (!tcp_cc_lookup(name))
			return -ENOENT;
		if (!f->c) {
			sim->ts->cc_default = tcp_cc_lookup(name);
			return 0;
		}
		return tcp_set_cc(sim->ts, f->c, name);
	}
	if (level == SOL_SOCKET && optname == SO_LINGER) {
		struct linger lg;

		if (!val || len < sizeof(lg))
			return -EINVAL;
		memcpy(&lg, val, sizeof(lg));
		v = lg.l_onoff && lg.l_linger == 0;
		o = TCP_SO_LINGER0;
		goto apply;
	}
	rc = opt_int(val, len, &v);
	if (rc)
		return rc;
	if (level == SOL_SOCKET && optname == SO_REUSEADDR) {
		f->reuseaddr = v != 0;
		return 0;
	}
	if (opt_map(level, optname, &o) < 0)
		return -ENOPROTOOPT;
apply:
	if (!f->c)
		return set_pending(f, o, v);
	return tcp_setopt(sim->ts, f->c, o, v);
}

/* Before connect or listen: what set_pending() kept, else the default. */
static int get_pending(struct mst_sim *sim, const struct sim_fd *f, enum tcp_sockopt o,
		       void *val, size_t *len)
{
	uint32_t rx, tx;
	int v;

	tcp_buffer_sizes(sim->ts, &rx, &tx);
	switch (o) {
	case TCP_SO_RCVBUF:
		v = f->rcvbuf ? f->rcvbuf : (int)rx;
		break;
	case TCP_SO_SNDBUF:
		v = f->sndbuf ? f->sndbuf : (int)tx;
		break;
	case TCP_SO_MAXSEG:
		v = f->maxseg ? f->maxseg : 536; /* Linux before a connection: TCP_MSS_DEFAULT */
		break;
	case TCP_SO_NODELAY:
		v = f->nodelay > 0;
		break;
	default:
		return -ENOTCONN;
	}
	memcpy(val, &v, sizeof(v));
	*len = sizeof(v);
	return 0;
}

int mst_sim_getsockopt(struct mst_sim *sim, int fd, int level, int optname, void *val,
		       size_t *len)
{
	struct sim_fd *f = get_fd(sim, fd);
	enum tcp_sockopt o;
	int v, rc;

	if (!f)
		return -EBADF;
	if (!val || !len)
		return -EFAULT;
	if (level == IPPROTO_TCP && optname == SIM_TCP_CONGESTION) {
		const char *n = f->c ? tcp_get_cc(f->c) : sim->ts->cc_default->name;
		size_t l = strlen(n) + 1;

		if (*len < l)
			return -EINVAL;
		memcpy(val, n, l);
		*len = l;
		return 0;
	}
	if (level == IPPROTO_TCP && optname == SIM_TCP_INFO) {
		if (!f->c)
			return -ENOTCONN;
		*len = tcp_linux_info(f->c, sim->now, val, *len);
		return 0;
	}
	if (*len < sizeof(int))
		return -EINVAL;
	if (level == SOL_SOCKET && optname == SO_REUSEADDR) {
		v = f->reuseaddr;
		goto out;
	}
	if (level == SOL_SOCKET && optname == SO_ERROR) {
		v = f->c ? f->c->err : 0;
		if (f->c)
			f->c->err = 0;
		goto out;
	}
	if (opt_map(level, optname, &o) < 0)
		return -ENOPROTOOPT;
	if (!f->c)
		return get_pending(sim, f, o, val, len);
	rc = tcp_getopt(sim->ts, f->c, o, &v);
	if (rc)
		return rc;
out:
	memcpy(val, &v, sizeof(v));
	*len = sizeof(v);
	return 0;
}

int mst_sim_poll(struct mst_sim *sim, int fd, short events)
{
	struct sim_fd *f = get_fd(sim, fd);
	struct tcp_cb *c;
	int r = 0;

	if (!f)
		return POLLNVAL;
	c = f->c;
	if (!c)
		return (POLLOUT | POLLHUP) & (events | POLLHUP);
	if (f->listening) {
		struct tcp_listener_ext *lx = tcp_lext(sim->ts, c);

		return (lx && lx->aq_head) ? (POLLIN & events) : 0;
	}
	if (tcp_readable(c) || (c->flags & TCPF_FIN_RCVD) || c->err)
		r |= POLLIN;
	if (c->flags & TCPF_FIN_RCVD)
		r |= POLLRDHUP;
	if ((c->state == TCP_ESTABLISHED || c->state == TCP_CLOSE_WAIT) && tcp_writable(c))
		r |= POLLOUT;
	if (c->err)
		r |= POLLERR;
	if (c->state == TCP_CLOSED || ((c->flags & TCPF_FIN_RCVD) && (c->flags & TCPF_SHUT_WR)))
		r |= POLLHUP;
	return r & (events | POLLERR | POLLHUP);
}

int mst_sim_queued(struct mst_sim *sim, int fd, int *inq, int *outq)
{
	struct sim_fd *f = get_fd(sim, fd);

	if (!f)
		return -EBADF;
	if (!f->c || f->listening)
		return -EINVAL; /* Linux: SIOCINQ on a listener */
	if (inq)
		*inq = (int)tcp_readable(f->c);
	if (outq)
		*outq = (int)fifo_used(&f->c->tx);
	return 0;
}

int mst_sim_tcp_info(struct mst_sim *sim, int fd, struct mst_sim_tcp_info *out)
{
	struct sim_fd *f = get_fd(sim, fd);
	struct tcp_conn_info i;

	if (!f)
		return -EBADF;
	if (!f->c || !out)
		return -ENOTCONN;
	tcp_get_info(f->c, &i);
	memset(out, 0, sizeof(*out));
	out->state = (int)i.state;
	out->state_name = tcp_state_names[i.state];
	out->snd_una = i.snd_una;
	out->snd_nxt = i.snd_nxt;
	out->snd_wnd = i.snd_wnd;
	out->rcv_nxt = i.rcv_nxt;
	out->rcv_wnd = i.rcv_wnd;
	out->cwnd = i.cwnd;
	out->ssthresh = i.ssthresh;
	out->srtt_us = i.srtt_us;
	out->rto_ms = i.rto_ms;
	out->mss = i.mss;
	out->snd_wscale = i.snd_wscale;
	out->rcv_wscale = i.rcv_wscale;
	out->sack = i.sack;
	out->timestamps = i.timestamps;
	out->retransmits = i.retransmits;
	return 0;
}

int64_t mst_sim_counter(const struct mst_sim *sim, const char *name)
{
	for (unsigned i = 0; i < MST_CTR__COUNT; i++)
		if (strcmp(mst_counter_names[i], name) == 0)
			return (int64_t)sim->stats.ctr[i];
	for (unsigned i = 0; i < MST_DROP__COUNT; i++)
		if (strcmp(mst_drop_names[i], name) == 0)
			return (int64_t)sim->stats.drop[i];
	return -ENOENT;
}

unsigned mst_sim_conn_count(const struct mst_sim *sim)
{
	return tcp_conn_count(sim->ts);
}

size_t mst_sim_tcb_size(void)
{
	return tcp_cb_size();
}
