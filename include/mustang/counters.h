/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Mustang counters and drop reasons: the one list.
 *
 * Every counter an engine keeps and every reason it drops a frame is named
 * here exactly once. The enums, the name tables printed by `mustangctl stats`
 * and the JSON keys are all generated from these X-macro lists, so adding a
 * drop reason is a one-line change and it shows up everywhere by name.
 *
 * Writers: only the owning engine thread (plain increments).
 * Readers: the control plane, with relaxed 64-bit loads (torn reads are
 * impossible for aligned u64 on the platforms DPDK supports).
 */
#ifndef MUSTANG_COUNTERS_H
#define MUSTANG_COUNTERS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* X(name, help) — events that are not drops. */
#define MST_FOREACH_COUNTER(X)                                              \
	X(rx_frames, "frames received from the port")                       \
	X(rx_bytes, "bytes received from the port")                         \
	X(tx_frames, "frames handed to the port")                           \
	X(tx_bytes, "bytes handed to the port")                             \
	X(arp_rx, "ARP frames received")                                    \
	X(arp_replies_sent, "ARP replies sent")                             \
	X(arp_requests_sent, "ARP requests sent")                           \
	X(arp_gratuitous_sent, "gratuitous ARP announcements sent")         \
	X(arp_cache_learned, "ARP cache entries learned or refreshed")      \
	X(arp_cache_expired, "ARP cache entries expired")                   \
	X(arp_pending_sent, "queued frames sent after ARP resolved")        \
	X(ipv4_rx, "IPv4 packets accepted for local delivery")              \
	X(icmp_rx, "ICMP messages received")                                \
	X(icmp_echo_replies, "ICMP echo replies sent")                      \
	X(icmp_unreach_sent, "ICMP destination unreachable sent")           \
	X(udp_rx, "UDP datagrams received")                                 \
	X(udp_echo_replies, "UDP echo service replies sent")                \
	X(tcp_rx_segs, "TCP segments received and checked")                 \
	X(tcp_tx_segs, "TCP segments sent")                                 \
	X(tcp_tx_bytes, "TCP payload bytes sent (incl. retransmits)")       \
	X(tcp_rx_bytes, "TCP payload bytes delivered in order")             \
	X(tcp_active_opens, "connections opened by us (SYN sent)")          \
	X(tcp_passive_opens, "connections accepted (SYN received)")         \
	X(tcp_established, "connections that reached ESTABLISHED")          \
	X(tcp_closed, "connections freed")                                  \
	X(tcp_resets_sent, "RST segments sent")                             \
	X(tcp_resets_rx, "connections reset by the peer")                   \
	X(tcp_retransmits, "segments retransmitted")                        \
	X(tcp_fast_retransmits, "fast retransmits / recovery episodes")     \
	X(tcp_rto_timeouts, "retransmission timeouts")                      \
	X(tcp_synack_retransmits, "SYN or SYN-ACK retransmissions")         \
	X(tcp_dup_acks, "duplicate ACKs received")                          \
	X(tcp_ooo_segs, "segments queued out of order")                     \
	X(tcp_sack_blocks_rx, "SACK blocks received")                       \
	X(tcp_dsack_spurious, "D-SACKs showing a retransmission was spurious (RFC 3708)") \
	X(tcp_challenge_acks, "RFC 5961 challenge ACKs sent")               \
	X(tcp_syncookies_sent, "SYN cookies sent (SYN queue full)")         \
	X(tcp_syncookies_ok, "connections created from a valid SYN cookie") \
	X(tcp_zero_window_probes, "zero-window probes sent")                \
	X(tcp_keepalive_probes, "keepalive probes sent")                    \
	X(tcp_keepalive_drops, "connections dropped by keepalive")          \
	X(tcp_tw_pool_recycled, "TIME_WAIT connections ended early: the control-block pool was full") \
	X(tcp_delayed_acks, "ACKs sent by the delayed-ACK timer")           \
	X(tcp_pmtu_updates, "path MTU lowered by ICMP fragmentation-needed") \
	X(steered_out, "TCP segments handed to the engine that owns their connection") \
	X(steered_in, "TCP segments received from another engine")          \
	X(app_attaches, "applications attached")                            \
	X(app_detaches, "applications detached (exit, crash or misbehaviour)") \
	X(app_cmds, "commands taken from applications")                     \
	X(app_events, "events posted to applications")                      \
	X(app_wakeups, "eventfd wake-ups of sleeping application threads") \
	X(app_drain_resets, "closed connections of an exited app reset unfinished (60 s; 5 s when an upgrade waits)") \
	X(pony_tx_pkts, "Pony packets sent (incl. retransmits and ACKs)")  \
	X(pony_rx_pkts, "Pony packets received and accepted for processing") \
	X(pony_tx_bytes, "Pony payload bytes sent (incl. retransmits)")    \
	X(pony_rx_bytes, "Pony payload bytes accepted")                     \
	X(pony_acks_sent, "Pony ACK packets sent")                          \
	X(pony_acks_rx, "Pony ACK packets received")                        \
	X(pony_acks_piggybacked, "Pony ACKs sent on a reliable packet")      \
	X(pony_retransmits, "Pony packets retransmitted")                   \
	X(pony_sack_losses, "Pony packets declared lost from SACK information") \
	X(pony_timeouts, "Pony retransmission timeouts")                    \
	X(pony_spurious_rtos, "Pony timeouts undone: the ACK showed the originals arrived") \
	X(pony_msgs_sent, "Pony messages acknowledged whole (tx_done 0)")  \
	X(pony_msgs_delivered, "Pony messages delivered to the io layer")   \
	X(pony_msgs_failed, "Pony messages or READs that completed with an error") \
	X(pony_msgs_refused, "Pony messages refused: no endpoint on the service (NAK sent)") \
	X(pony_reads_issued, "Pony READs issued")                           \
	X(pony_reads_done, "Pony READs completed successfully")             \
	X(pony_reads_served, "Pony READs served for a peer")               \
	X(pony_rx_busy, "Pony packets not accepted: no receive buffer or message slot (sender retries)") \
	X(pony_flows_created, "Pony flows created")                         \
	X(pony_flows_closed, "Pony flows torn down (idle, evicted or failed)") \
	X(pony_flows_failed, "Pony flows failed (retries exhausted, reset by the peer)") \
	X(pony_flows_evicted, "Pony idle flows evicted to make room")       \
	X(pony_resets_sent, "Pony RESETs sent to a peer talking to a past flow") \
	X(pony_stall_kicks, "Pony flows found with data to send, nothing in flight and no timer: pushed by the timer scan (a bug if not 0)") \
	X(pony_rx_stalled, "Pony flows reset: the peer's partial messages gained no byte for rx_stall_ms") \
	X(pony_challenges_sent, "Pony CHALLENGEs sent: a packet from an address or epoch not validated yet") \
	X(pony_challenges_rx, "Pony CHALLENGEs answered (our flow's first packets reached a peer without one)") \
	X(pony_peers_validated, "Pony peers that echoed our token: flow created (or replaced, after a restart)") \
	X(tcp_tw_reused_connect, "TIME_WAIT tuples of ours taken over by an active open (RFC 6191, timestamps)") \
	X(tcp_tw_reused_syn, "TIME_WAIT connections taken over by a newer SYN from the peer (RFC 6191)") \
	X(tcp_connect_no_port, "active opens refused (EADDRNOTAVAIL): no ephemeral port to that destination is free or reusable") \
	X(flow_records, "flow records handed to the control plane (docs/observability.md)") \
	X(flow_records_lost, "flow records lost: the engine's flow ring was full")

/* X(name, help) — every reason a frame is dropped. */
#define MST_FOREACH_DROP(X)                                                 \
	X(eth_runt, "frame shorter than an Ethernet header")                \
	X(eth_not_for_us, "destination MAC is neither ours nor broadcast")  \
	X(eth_unknown_type, "EtherType not handled (not IPv4/ARP)")         \
	X(eth_bad_src, "source MAC is multicast/broadcast")                  \
	X(arp_truncated, "ARP frame shorter than an Ethernet/IPv4 ARP")     \
	X(arp_bad_format, "ARP hardware/protocol type or length not Ethernet/IPv4") \
	X(arp_bad_op, "ARP opcode neither request nor reply")               \
	X(arp_not_for_us, "ARP target is not our address")                  \
	X(arp_bad_sender, "ARP sender address is invalid (0, broadcast, multicast, ours)") \
	X(arp_pending_full, "no room to queue a frame awaiting ARP")        \
	X(arp_unresolved, "queued frame dropped: ARP got no answer")        \
	X(ip_truncated, "IPv4 packet shorter than its header")              \
	X(ip_bad_version, "IP version is not 4")                            \
	X(ip_bad_ihl, "IPv4 header length < 20 bytes or past the frame")    \
	X(ip_bad_total_len, "IPv4 total length < header or > frame")        \
	X(ip_bad_cksum, "IPv4 header checksum wrong")                       \
	X(ip_ttl_expired, "IPv4 TTL is zero")                               \
	X(ip_fragment, "IPv4 fragment (no reassembly yet)")                 \
	X(ip_not_for_us, "IPv4 destination is not our address")             \
	X(ip_bad_src, "IPv4 source is ours, broadcast, multicast or zero")  \
	X(ip_unknown_proto, "IPv4 protocol not handled")                    \
	X(ip_no_route, "no route to the destination")                       \
	X(icmp_truncated, "ICMP message shorter than its header")           \
	X(icmp_bad_cksum, "ICMP checksum wrong")                            \
	X(icmp_unhandled_type, "ICMP type not handled")                     \
	X(udp_truncated, "UDP datagram shorter than its header")            \
	X(udp_bad_len, "UDP length field disagrees with the IP payload")    \
	X(udp_bad_cksum, "UDP checksum wrong")                              \
	X(udp_no_port, "no listener on the UDP port")                       \
	X(no_buffer, "no packet buffer available")                          \
	X(tx_full, "port transmit queue full")                              \
	X(multi_segment, "multi-segment frame (not supported)")             \
	X(too_big, "frame larger than the MTU")                             \
	X(tcp_truncated, "TCP segment shorter than its header")             \
	X(tcp_bad_doff, "TCP data offset < 5 or past the segment")          \
	X(tcp_bad_cksum, "TCP checksum wrong")                              \
	X(tcp_bad_opts, "TCP options malformed")                            \
	X(tcp_bad_flags, "TCP flag combination invalid (e.g. SYN+RST, SYN+FIN)") \
	X(tcp_bad_addr, "TCP to/from a broadcast or multicast address")     \
	X(tcp_no_socket, "TCP segment for no connection or listener (RST sent)") \
	X(tcp_out_of_window, "TCP segment outside the receive window (ACK sent)") \
	X(tcp_paws, "TCP segment rejected by PAWS (old timestamp)")         \
	X(tcp_ack_too_new, "TCP ACK for data never sent")                   \
	X(tcp_ack_too_old, "TCP ACK too far below SND.UNA (RFC 5961)")       \
	X(tcp_rst_in_window, "TCP RST in window but not exact (challenge ACK)") \
	X(tcp_rst_out_of_window, "TCP RST outside the window")              \
	X(tcp_syn_in_sync, "TCP SYN on a synchronized connection (challenge ACK)") \
	X(tcp_no_ack, "TCP segment without ACK in a synchronized state")    \
	X(tcp_listen_overflow, "TCP handshake completed but accept queue full") \
	X(tcp_bad_cookie, "TCP ACK to a listener with an invalid SYN cookie") \
	X(tcp_no_tcb, "no free TCP control block or buffer memory")         \
	X(tcp_ooo_full, "out-of-order segment dropped: reassembly ranges full") \
	X(tcp_after_close, "TCP data after the app closed (RST sent)")      \
	X(tcp_challenge_limited, "challenge ACK suppressed by the per-connection limit") \
	X(tcp_syn_sent_bad, "segment not acceptable in SYN-SENT")          \
	X(tcp_listen_bad, "segment to a listener that is not a SYN or a valid cookie ACK") \
	X(app_bad_ring, "app command ring with an impossible fill level (resynced)") \
	X(app_bad_cmd, "app command with an unknown op or bad argument")    \
	X(app_bad_sock, "app command naming a socket it does not own")      \
	X(app_bad_fifo, "app moved a FIFO counter past what the FIFO allows") \
	X(app_evt_overflow, "event for an app dropped: its event ring was full") \
	X(app_no_memory, "app socket or FIFO slots exhausted")              \
	X(app_port_in_use, "app bind refused: another app owns the TCP port") \
	X(udp_rcvbuf_full, "UDP datagram dropped: the socket's receive FIFO is full") \
	X(steer_full, "TCP segment for another engine dropped: its steering ring was full") \
	X(tcp_data_ignored, "TCP data after the peer's FIN or in a state that takes none")                             \
	X(icmp_rate_limited, "ICMP error not sent: rate limit reached")     \
	X(udp_bad_src_port, "UDP echo request from port 0 or a service port (loop guard)") \
	X(no_headroom, "buffer lacks headroom for the lower-layer headers") \
	X(pony_truncated, "Pony packet shorter than its header")            \
	X(pony_bad_version, "Pony header version not supported")            \
	X(pony_bad_type, "Pony packet type unknown")                        \
	X(pony_bad_len, "Pony length/offset fields disagree with the packet or limits") \
	X(pony_bad_field, "Pony stream, service or sequence field invalid")  \
	X(pony_dup, "Pony packet already received (re-acknowledged)")       \
	X(pony_out_of_window, "Pony packet sequence number beyond the receive window") \
	X(pony_stale_epoch, "Pony packet from or for another incarnation of the flow") \
	X(pony_bad_ack, "Pony ACK for packets never sent")                  \
	X(pony_no_flow_room, "Pony packet from a new peer: flow pool full") \
	X(pony_no_msg_room, "Pony packet not accepted: message pool full (sender retries)") \
	X(pony_no_service, "Pony message data for a service nobody bound (NAK)") \
	X(pony_bad_read, "Pony READ request invalid (bad length)")           \
	X(pony_stale, "Pony data for a message or READ that no longer exists") \
	X(pony_no_flow, "Pony packet that needs a flow but none exists (RESET sent)") \
	X(pony_late_sack, "Pony ACK naming packets below the send window (late): those bits ignored") \
	X(pony_peer_over_share, "Pony packet not accepted: the peer holds its whole share of the message or stream pool") \
	X(pony_pool_reserved, "Pony packet not accepted: only the local reserve of the message or stream pool is left") \
	X(pony_unvalidated, "Pony packet from an address or epoch not validated yet: CHALLENGE sent, no state kept") \
	X(pony_bad_token, "Pony RESPONSE with a wrong or expired token")

/* X(name, help) — kept by the engine runtime, not by the engine itself. */
#define MST_FOREACH_LOAD(X)                                                 \
	X(polls, "poll calls")                                              \
	X(busy_polls, "polls that did work")                                \
	X(idle_sleeps, "sleeps because the engine was idle")                \
	X(busy_ns, "nanoseconds spent in polls that did work")              \
	X(max_delay_ns, "largest gap between two polls that found work (since start)")

/* X(name, help) — link events of a port, kept by the port watchdog
 * (engines/port_watch.c; one writer, the watchdog thread) and printed by
 * `mustangctl ports` in each port's "counters". */
#define MST_FOREACH_PORT_EVENT(X)                                           \
	X(link_downs, "times the link was seen going down")                 \
	X(link_ups, "times the link came up (first time and after a gap)")  \
	X(link_retries, "reconnect attempts (port stopped and started again)") \
	X(link_retry_failed, "reconnect attempts whose start failed (peer absent)") \
	X(link_retry_timeouts, "reconnect attempts that started but saw no link in time") \
	X(link_pause_failed, "reconnects put off: an engine did not pause its queue in time") \
	X(link_half_open, "memif client up but the server had no connection for us: reconnected")

enum mst_counter {
#define MST_X_ENUM(name, help) MST_CTR_##name,
	MST_FOREACH_COUNTER(MST_X_ENUM)
#undef MST_X_ENUM
	MST_CTR__COUNT
};

enum mst_drop {
#define MST_X_ENUM(name, help) MST_DROP_##name,
	MST_FOREACH_DROP(MST_X_ENUM)
#undef MST_X_ENUM
	MST_DROP__COUNT
};

enum mst_load {
#define MST_X_ENUM(name, help) MST_LOAD_##name,
	MST_FOREACH_LOAD(MST_X_ENUM)
#undef MST_X_ENUM
	MST_LOAD__COUNT
};

enum mst_port_event {
#define MST_X_ENUM(name, help) MST_PORT_##name,
	MST_FOREACH_PORT_EVENT(MST_X_ENUM)
#undef MST_X_ENUM
	MST_PORT__COUNT
};

/*
 * A log2 histogram (Prometheus exports it with cumulative buckets):
 * bucket k counts values v <= 2^k units, the last one everything above.
 * One writer (the engine thread), relaxed stores; readers may see a
 * count one sample ahead of a bucket, never a torn value.
 */
#define MST_HIST_BUCKETS 24
struct mst_hist {
	uint64_t bucket[MST_HIST_BUCKETS];
	uint64_t sum;                  /* of the values, in units */
	uint64_t count;
};

static inline void mst_hist_add(struct mst_hist *h, uint64_t v)
{
	unsigned k = v <= 1 ? 0 : 64u - (unsigned)__builtin_clzll(v - 1);

	if (k >= MST_HIST_BUCKETS)
		k = MST_HIST_BUCKETS - 1;
	__atomic_store_n(&h->bucket[k], h->bucket[k] + 1, __ATOMIC_RELAXED);
	__atomic_store_n(&h->sum, h->sum + v, __ATOMIC_RELAXED);
	__atomic_store_n(&h->count, h->count + 1, __ATOMIC_RELAXED);
}

/* Counters of one engine. Cache-line aligned so that engines never share. */
struct mst_stats {
	uint64_t ctr[MST_CTR__COUNT];  /* indexed by enum mst_counter */
	uint64_t drop[MST_DROP__COUNT]; /* indexed by enum mst_drop */
	struct mst_hist tcp_rtt_us;    /* every TCP RTT sample, microseconds */
} __attribute__((aligned(64)));

/* Name tables generated from the lists (counters.c). */
extern const char *const mst_counter_names[MST_CTR__COUNT];
extern const char *const mst_counter_help[MST_CTR__COUNT];
extern const char *const mst_drop_names[MST_DROP__COUNT];
extern const char *const mst_drop_help[MST_DROP__COUNT];
extern const char *const mst_load_names[MST_LOAD__COUNT];
extern const char *const mst_load_help[MST_LOAD__COUNT];
extern const char *const mst_port_event_names[MST_PORT__COUNT];
extern const char *const mst_port_event_help[MST_PORT__COUNT];

#define MST_COUNT(st, name) ((st)->ctr[MST_CTR_##name]++)
#define MST_COUNT_N(st, name, n) ((st)->ctr[MST_CTR_##name] += (n))
#define MST_DROP(st, name) ((st)->drop[MST_DROP_##name]++)

#ifdef __cplusplus
}
#endif
#endif /* MUSTANG_COUNTERS_H */
