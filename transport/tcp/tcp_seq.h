/* SPDX-License-Identifier: BSD-3-Clause */
/* Sequence-number arithmetic modulo 2^32 (RFC 9293 §3.4). Internal. */
#ifndef MST_TCP_SEQ_H
#define MST_TCP_SEQ_H

#include <stdint.h>

#define SEQ_LT(a, b) ((int32_t)((uint32_t)(a) - (uint32_t)(b)) < 0)
#define SEQ_LEQ(a, b) ((int32_t)((uint32_t)(a) - (uint32_t)(b)) <= 0)
#define SEQ_GT(a, b) ((int32_t)((uint32_t)(a) - (uint32_t)(b)) > 0)
#define SEQ_GEQ(a, b) ((int32_t)((uint32_t)(a) - (uint32_t)(b)) >= 0)
#define SEQ_MAX(a, b) (SEQ_GT(a, b) ? (a) : (b))
#define SEQ_MIN(a, b) (SEQ_LT(a, b) ? (a) : (b))
/* a <= x < b, modulo 2^32 */
#define SEQ_IN(x, a, b) (SEQ_GEQ(x, a) && SEQ_LT(x, b))

#endif
