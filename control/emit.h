/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Structured output with two renderings: JSON for tools, aligned text for
 * people. The control plane describes its answer once through these calls
 * and the request's flag picks the rendering, so `mustangctl stats` and
 * `mustangctl stats --json` can never disagree.
 *
 * Text form: nested objects become indented "key:" headings, scalars
 * "key: value" lines; arrays print their elements one after the other, each
 * object element headed by "- " (or by its "name" field when emitted first).
 * JSON form: standard JSON, strings escaped (control characters as \u00XX).
 *
 * The buffer grows with realloc; on allocation failure the emitter goes into
 * an error state and emit_result() returns NULL.
 */
#ifndef MST_CONTROL_EMIT_H
#define MST_CONTROL_EMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EMIT_MAX_DEPTH 16

struct emit {
	char *buf;                         /* output so far, NUL terminated */
	size_t len, cap;
	bool json;                         /* rendering */
	bool failed;                       /* allocation failed or nesting too deep */
	unsigned depth;
	bool first[EMIT_MAX_DEPTH];        /* JSON: no comma before the next member */
	bool in_array[EMIT_MAX_DEPTH];     /* container at this depth is an array */
};

void emit_init(struct emit *e, bool json);
void emit_free(struct emit *e);
/* The rendered output (NUL terminated) and its length, or NULL on failure. */
const char *emit_result(struct emit *e, size_t *len);

/* key is ignored (may be NULL) inside arrays; required inside objects. The
 * top level is an implicit object. */
void emit_obj_begin(struct emit *e, const char *key);
void emit_obj_end(struct emit *e);
void emit_arr_begin(struct emit *e, const char *key);
void emit_arr_end(struct emit *e);
void emit_u64(struct emit *e, const char *key, uint64_t v);
void emit_i64(struct emit *e, const char *key, int64_t v);
void emit_double(struct emit *e, const char *key, double v);
void emit_bool(struct emit *e, const char *key, bool v);
void emit_str(struct emit *e, const char *key, const char *s);
void emit_strf(struct emit *e, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Text rendering, top level only: n bytes as they are (an answer that is
 * pre-formatted lines: flow records, Prometheus metrics). Anywhere else
 * it fails the emitter. */
void emit_raw(struct emit *e, const char *s, size_t n);

#endif /* MST_CONTROL_EMIT_H */
