/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Pony wire format (docs/pony.md, "Wire format"). Internal header.
 *
 * Every packet = common header + one fixed extension chosen by type
 * (+ payload for DATA / READ_RESP). All fields big-endian. Packets are read
 * and written through memcpy into these structs (the UDP payload is not
 * aligned), so the structs are host-order views with no padding.
 */
#ifndef MST_TRANSPORT_PONY_WIRE_H
#define MST_TRANSPORT_PONY_WIRE_H

#include <stdint.h>

/* 2: ACK trailer on reliable packets (PONY_F_PIGGY); 3: 64-bit region keys;
 * 4: address validation (CHALLENGE / RESPONSE), random epochs */
#define PONY_VERSION 4u

enum pony_type {
	PONY_T_DATA = 1,      /* reliable: a segment of a message */
	PONY_T_ACK = 2,       /* unreliable: cumulative + selective ack, credits, echo */
	PONY_T_READ_REQ = 3,  /* reliable: one-sided READ request */
	PONY_T_READ_RESP = 4, /* reliable: a segment of READ response bytes */
	PONY_T_NAK = 5,       /* reliable: message refused (err), e.g. no service */
	PONY_T_READ_ERR = 6,  /* reliable: READ failed (err) */
	PONY_T_RESET = 7,     /* unreliable: "I have no flow of that incarnation" */
	PONY_T_CHALLENGE = 8, /* unreliable: "prove you are at this address": a token to echo */
	PONY_T_RESPONSE = 9,  /* unreliable: the token back; the receiver may now create a flow */
	PONY_T__MAX
};

/* Common header flags. */
#define PONY_F_ACK_NOW (1u << 0) /* DATA/RESP: last segment, acknowledge at once */
#define PONY_F_SKIP (1u << 1)    /* DATA/RESP: sender abandoned the message, no payload */
#define PONY_F_BUSY (1u << 2)    /* ACK: receiver refused a packet for lack of buffers */
#define PONY_F_PIGGY (1u << 3)   /* reliable: a struct pony_ack_trailer ends the packet */

struct pony_hdr {          /* 24 bytes, every packet */
	uint8_t ver;           /* PONY_VERSION */
	uint8_t type;          /* enum pony_type */
	uint16_t flags;        /* PONY_F_* */
	uint32_t src_epoch;    /* sender's incarnation of this flow (never 0) */
	uint32_t dst_epoch;    /* receiver's incarnation as the sender knows it, 0 = unknown */
	uint32_t psn;          /* packet sequence number (reliable types), else 0 */
	uint64_t ts_ns;        /* sender's clock at this transmission (echoed in ACKs) */
};
_Static_assert(sizeof(struct pony_hdr) == 24, "pony_hdr is 24 bytes on the wire");

struct pony_data_ext {     /* 28 bytes: DATA and READ_RESP */
	uint32_t msg_id;       /* DATA: sender's message id; RESP: the reader's request id */
	uint32_t stream;       /* stream id (RESP: 0) */
	uint32_t seq;          /* message number within the stream (RESP: 0) */
	uint32_t msg_len;      /* whole message / READ length */
	uint32_t off;          /* offset of this segment */
	uint16_t src_svc;      /* sender's service (RESP: served service) */
	uint16_t dst_svc;      /* receiver's service (RESP: the reader's service) */
	uint16_t seg_len;      /* bytes this segment covers (payload unless SKIP) */
	uint16_t rsvd;         /* 0 */
};
_Static_assert(sizeof(struct pony_data_ext) == 28, "pony_data_ext is 28 bytes");

struct pony_read_ext {     /* 32 bytes: READ_REQ */
	uint32_t req_id;       /* reader's id, echoed in RESP / READ_ERR */
	uint32_t len;          /* bytes wanted, 1 .. max_msg */
	uint64_t key;          /* region key (unguessable: docs/pony.md, "Regions") */
	uint64_t off;          /* offset in the region */
	uint16_t src_svc;      /* reader's service */
	uint16_t dst_svc;      /* service owning the region */
	uint32_t rsvd;         /* 0 */
};
_Static_assert(sizeof(struct pony_read_ext) == 32, "pony_read_ext is 32 bytes");

struct pony_err_ext {      /* 8 bytes: NAK and READ_ERR */
	uint32_t id;           /* NAK: refused msg_id; READ_ERR: req_id */
	uint32_t err;          /* positive errno */
};
_Static_assert(sizeof(struct pony_err_ext) == 8, "pony_err_ext is 8 bytes");

struct pony_token_ext {    /* 16 bytes: CHALLENGE and RESPONSE */
	uint64_t token;        /* issued by the challenger for (address, src_epoch) */
	uint64_t ts_echo;      /* CHALLENGE: ts_ns of the packet challenged; RESPONSE: 0 */
};
_Static_assert(sizeof(struct pony_token_ext) == 16, "pony_token_ext is 16 bytes");

#define PONY_SACK_BITS 512u
struct pony_ack_ext {      /* 88 bytes: ACK */
	uint32_t cum;          /* every psn < cum received */
	uint32_t credits;      /* sender may use psns < cum + credits */
	uint64_t ts_echo;      /* ts_ns of the latest packet received */
	uint32_t ack_delay_ns; /* how long the receiver held that packet before this ACK */
	uint32_t rsvd;         /* 0 */
	uint8_t sack[PONY_SACK_BITS / 8]; /* bit i (LSB first) = psn cum + 1 + i received */
};
_Static_assert(sizeof(struct pony_ack_ext) == 88, "pony_ack_ext is 88 bytes");

/* A cumulative ACK riding on a reliable packet (its last 20 bytes, after
 * any payload): a response acknowledges its request. Sent only when the
 * receiver has no hole to report and no BUSY to say (then a PONY_T_ACK goes). */
struct pony_ack_trailer {  /* 20 bytes */
	uint32_t cum;          /* as pony_ack_ext */
	uint32_t credits;
	uint64_t ts_echo;
	uint32_t ack_delay_ns;
} __attribute__((packed));
_Static_assert(sizeof(struct pony_ack_trailer) == 20, "pony_ack_trailer is 20 bytes");

#define PONY_DATA_HLEN (sizeof(struct pony_hdr) + sizeof(struct pony_data_ext)) /* 52 */
#define PONY_IP_UDP_LEN 28u /* IPv4 + UDP headers in front of ours */

#endif /* MST_TRANSPORT_PONY_WIRE_H */
