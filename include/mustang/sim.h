/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The in-process harness: one Mustang stack (Ethernet, ARP, IPv4, ICMP,
 * UDP, TCP) with a virtual clock, no DPDK, no threads. Built as the shared
 * library libmustang-sim.so; our unit tests, the fuzzer and external
 * conformance tools drive TCP through it packet by packet:
 *
 *   sim = mst_sim_create(&conf)
 *   mst_sim_input(sim, frame, len)        feed an Ethernet frame
 *   mst_sim_input_ip(sim, pkt, len)       ...or an IPv4 packet (framed for you)
 *   mst_sim_advance(sim, ns)              move the clock; timers fire
 *   mst_sim_output(sim, buf, cap)         drain frames the stack sends
 *   mst_sim_socket/bind/listen/accept/connect/send/recv/shutdown/close/
 *   setsockopt/getsockopt/poll            POSIX-shaped, never blocking
 *   mst_sim_destroy(sim)
 *
 * Conventions: every call returns >= 0 on success and a negative errno on
 * failure (-EAGAIN, -EINPROGRESS, -ECONNRESET, ...), never sets errno.
 * Addresses are IPv4 in network byte order, ports in host byte order.
 * Socket descriptors are small integers private to the sim instance.
 * The peer's MAC for mst_sim_input_ip() is conf.peer_mac; the stack learns
 * it through ARP like on a wire (mst_sim_input_ip() also answers ARP
 * requests the stack sends, so IP-level tools need not speak ARP).
 */
#ifndef MUSTANG_SIM_H
#define MUSTANG_SIM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MST_SIM_VERSION 3 /* 1 and 2 are still accepted: the fields up to bufs / tw_reuse_delay_ms */

struct mst_sim;

struct mst_sim_conf {
	uint32_t version;          /* MST_SIM_VERSION */
	uint8_t mac[6];            /* the stack's MAC */
	uint8_t peer_mac[6];       /* MAC used for mst_sim_input_ip() frames */
	uint32_t ip;               /* network order */
	uint8_t prefix_len;
	uint32_t gw;               /* network order, 0 = none */
	uint16_t mtu;              /* 0 = 1500 */
	uint32_t services;         /* MST_SIM_SVC_* */
	/* TCP; 0 / NULL = default */
	uint32_t max_conns;        /* default 1024 */
	uint32_t rx_buf, tx_buf;   /* socket buffer bytes, default 65536 */
	uint32_t rto_min_ms, rto_max_ms, rto_initial_ms;
	uint32_t timewait_ms;      /* default 60000 */
	uint32_t delack_ms;        /* default 40 */
	const char *cc;            /* "cubic" (default), "newreno" */
	int no_sack, no_timestamps, no_wscale, no_syncookies; /* turn an option off */
	uint64_t start_ns;         /* initial virtual time */
	uint32_t bufs;             /* packet buffers (10 KiB each), default 8192; fuzzers want few */
	/* version 2 */
	uint16_t eph_lo, eph_hi;   /* TCP ephemeral ports, host order, 0 = 32768..60999 */
	uint32_t tw_reuse_delay_ms; /* TIME_WAIT reuse by active opens, 0 = 1000 */
	/* version 3 */
	uint32_t rx_buf_max;       /* largest receive window (wscale is picked for it), 0 = rx_buf */
};

#define MST_SIM_SVC_UDP_ECHO (1u << 0)
#define MST_SIM_SVC_TCP_ECHO (1u << 1)
#define MST_SIM_SVC_TCP_DISCARD (1u << 2)
#define MST_SIM_SVC_TCP_CHARGEN (1u << 3)

/* NULL + errno on failure. */
struct mst_sim *mst_sim_create(const struct mst_sim_conf *conf);
void mst_sim_destroy(struct mst_sim *sim);

int mst_sim_input(struct mst_sim *sim, const void *frame, size_t len);
int mst_sim_input_ip(struct mst_sim *sim, const void *pkt, size_t len);
/* Advance the clock by ns (timers fire); mst_sim_set_time() jumps to an absolute time. */
void mst_sim_advance(struct mst_sim *sim, uint64_t ns);
void mst_sim_set_time(struct mst_sim *sim, uint64_t now_ns);
uint64_t mst_sim_now(const struct mst_sim *sim);
/* Next frame the stack sent (oldest first): its length, 0 when none,
 * -EMSGSIZE if cap is too small (the frame stays queued). */
ssize_t mst_sim_output(struct mst_sim *sim, void *buf, size_t cap);
/* Same, but the IPv4 packet without the Ethernet header (ARP skipped). */
ssize_t mst_sim_output_ip(struct mst_sim *sim, void *buf, size_t cap);
size_t mst_sim_pending(const struct mst_sim *sim);

/* Sockets. type: 1 = stream (TCP). */
int mst_sim_socket(struct mst_sim *sim, int type);
int mst_sim_bind(struct mst_sim *sim, int fd, uint16_t port);
int mst_sim_listen(struct mst_sim *sim, int fd, int backlog);
/* Returns the new fd; fills the peer if the pointers are non-NULL. */
int mst_sim_accept(struct mst_sim *sim, int fd, uint32_t *peer_ip, uint16_t *peer_port);
/* -EINPROGRESS; completion shows as POLLOUT (or an error in SO_ERROR). */
int mst_sim_connect(struct mst_sim *sim, int fd, uint32_t ip, uint16_t port);
ssize_t mst_sim_send(struct mst_sim *sim, int fd, const void *buf, size_t len);
ssize_t mst_sim_recv(struct mst_sim *sim, int fd, void *buf, size_t len);
int mst_sim_shutdown(struct mst_sim *sim, int fd, int how);
int mst_sim_close(struct mst_sim *sim, int fd);
/* level/optname as Linux: SOL_SOCKET (SO_ERROR, SO_KEEPALIVE, SO_RCVBUF,
 * SO_SNDBUF, SO_REUSEADDR, SO_LINGER with struct linger) and IPPROTO_TCP
 * (TCP_NODELAY, TCP_MAXSEG, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT,
 * TCP_CONGESTION as a string, TCP_INFO as Linux's struct tcp_info: get
 * only, the fields Mustang tracks). */
int mst_sim_setsockopt(struct mst_sim *sim, int fd, int level, int optname, const void *val,
		       size_t len);
int mst_sim_getsockopt(struct mst_sim *sim, int fd, int level, int optname, void *val,
		       size_t *len);
/* Readiness as poll(2): POLLIN, POLLOUT, POLLERR, POLLHUP, POLLRDHUP. */
int mst_sim_poll(struct mst_sim *sim, int fd, short events);

/* Bytes waiting to be read (SIOCINQ) and sent but not acknowledged plus
 * not yet sent (SIOCOUTQ); either pointer may be NULL. Since version 3. */
int mst_sim_queued(struct mst_sim *sim, int fd, int *inq, int *outq);

/* Introspection for tests. */
struct mst_sim_tcp_info {
	int state;                 /* 0 CLOSED .. 10 TIME_WAIT (RFC 9293 order) */
	const char *state_name;
	uint32_t snd_una, snd_nxt, snd_wnd, rcv_nxt, rcv_wnd;
	uint32_t cwnd, ssthresh, srtt_us, rto_ms, mss;
	uint8_t snd_wscale, rcv_wscale, sack, timestamps;
	uint32_t retransmits;
};
int mst_sim_tcp_info(struct mst_sim *sim, int fd, struct mst_sim_tcp_info *out);
/* A counter or drop reason by its name in <mustang/counters.h>; -ENOENT if unknown. */
int64_t mst_sim_counter(const struct mst_sim *sim, const char *name);
/* Connections the stack holds (not listeners). */
unsigned mst_sim_conn_count(const struct mst_sim *sim);
/* Bytes of one control block, excluding socket buffers. */
size_t mst_sim_tcb_size(void);

#ifdef __cplusplus
}
#endif
#endif /* MUSTANG_SIM_H */
