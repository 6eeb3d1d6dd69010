/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Structured output, rendered as JSON or as indented text (see emit.h).
 *
 * emit_init() -> emit_obj_begin/emit_arr_begin/emit_<scalar>/..._end -> emit_result()
 *
 * Both renderings stream into one growing buffer. The state per nesting
 * level is two bits: is the container an array (in_array[d]), and has it
 * had a member yet (first[d]). Depth 0 is the implicit top-level object.
 *
 * Text layout, members of the container at depth d indented 2*d spaces:
 *
 *   version: 0.1.0
 *   ports:
 *     eth0:                  <- array element whose first member is name=eth0
 *       driver: af_xdp
 *     - driver: ring         <- array element without a name: "- " heading
 *       rx_frames: 0
 *   cores:
 *     - 0                    <- scalar array elements
 *   engines: (none)          <- an empty container
 *
 * An array's object element cannot know whether it has a name until its
 * first member arrives, so its heading is written lazily by the first member
 * (text_member()) or, for an empty element, by emit_obj_end().
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/emit.h"

#define EMIT_INITIAL_CAP 256

void emit_init(struct emit *e, bool json)
{
	memset(e, 0, sizeof(*e));
	e->json = json;
	e->first[0] = true;
	if (json) {
		/* The implicit top-level object opens here; emit_result() closes it. */
		e->buf = malloc(EMIT_INITIAL_CAP);
		if (e->buf == NULL) {
			e->failed = true;
			return;
		}
		e->cap = EMIT_INITIAL_CAP;
		e->buf[e->len++] = '{';
		e->buf[e->len] = '\0';
	}
}

void emit_free(struct emit *e)
{
	free(e->buf);
	e->buf = NULL;
	e->len = e->cap = 0;
}

/* Room for `extra` more bytes plus the NUL; false (and failed) if none. */
static bool reserve(struct emit *e, size_t extra)
{
	size_t need, cap;
	char *nb;

	if (e->failed)
		return false;
	need = e->len + extra + 1;
	if (need <= e->cap)
		return true;
	cap = e->cap != 0 ? e->cap : EMIT_INITIAL_CAP;
	while (cap < need)
		cap *= 2;
	nb = realloc(e->buf, cap);
	if (nb == NULL) {
		e->failed = true;
		return false;
	}
	e->buf = nb;
	e->cap = cap;
	return true;
}

static void put(struct emit *e, const char *s, size_t n)
{
	if (!reserve(e, n))
		return;
	memcpy(e->buf + e->len, s, n);
	e->len += n;
	e->buf[e->len] = '\0';
}

static void puts_(struct emit *e, const char *s)
{
	put(e, s, strlen(s));
}

static void __attribute__((format(printf, 2, 0))) vputf(struct emit *e, const char *fmt, va_list ap)
{
	va_list ap2;
	int n;

	if (e->failed)
		return;
	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0) {
		e->failed = true;
		return;
	}
	if (!reserve(e, (size_t)n))
		return;
	vsnprintf(e->buf + e->len, (size_t)n + 1, fmt, ap);
	e->len += (size_t)n;
}

static void __attribute__((format(printf, 2, 3))) putf(struct emit *e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vputf(e, fmt, ap);
	va_end(ap);
}

static void indent(struct emit *e, unsigned level)
{
	for (unsigned i = 0; i < level; i++)
		put(e, "  ", 2);
}

/* JSON string: quotes, backslash and control characters escaped (RFC 8259
 * section 7); other bytes, UTF-8 included, pass through. */
static void json_string(struct emit *e, const char *s)
{
	static const char hex[] = "0123456789abcdef";

	put(e, "\"", 1);
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		char esc[7];

		switch (*p) {
		case '"': put(e, "\\\"", 2); break;
		case '\\': put(e, "\\\\", 2); break;
		case '\n': put(e, "\\n", 2); break;
		case '\r': put(e, "\\r", 2); break;
		case '\t': put(e, "\\t", 2); break;
		case '\b': put(e, "\\b", 2); break;
		case '\f': put(e, "\\f", 2); break;
		default:
			if (*p < 0x20 || *p == 0x7f) {
				memcpy(esc, "\\u00", 4);
				esc[4] = hex[*p >> 4];
				esc[5] = hex[*p & 0xf];
				put(e, esc, 6);
			} else {
				put(e, (const char *)p, 1);
			}
			break;
		}
	}
	put(e, "\"", 1);
}

/* Text values are for terminals: control characters become '?' so that a
 * hostile interface name cannot move the cursor. */
static void text_string(struct emit *e, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p < 0x20 || *p == 0x7f)
			put(e, "?", 1);
		else
			put(e, (const char *)p, 1);
	}
}

/* Programming errors (missing key in an object, too deep, unbalanced) put
 * the emitter in the failed state rather than produce malformed output. */
static bool member_ok(struct emit *e, const char *key)
{
	if (e->failed)
		return false;
	if (!e->in_array[e->depth] && key == NULL) {
		e->failed = true;
		return false;
	}
	return true;
}

/* True when the container at depth d is an object element of an array
 * whose heading has not been written yet. */
static bool heading_pending(const struct emit *e, unsigned d)
{
	return d > 0 && e->in_array[d - 1] && !e->in_array[d] && e->first[d];
}

/*
 * Text: start the line of one member of the current container. Writes the
 * lazy "- " heading of an unnamed array element; returns false when the
 * member was a leading "name" that became the heading instead.
 */
static bool text_member(struct emit *e, const char *key, const char *name_value)
{
	unsigned d = e->depth;

	if (heading_pending(e, d)) {
		e->first[d] = false;
		indent(e, d - 1);
		if (name_value != NULL && strcmp(key, "name") == 0) {
			text_string(e, name_value);
			put(e, ":\n", 2);
			return false;
		}
		put(e, "- ", 2);
	} else {
		e->first[d] = false;
		indent(e, d);
		if (e->in_array[d])
			put(e, "- ", 2);
	}
	if (!e->in_array[d]) {
		text_string(e, key);
		put(e, ": ", 2);
	}
	return true;
}

static void json_member(struct emit *e, const char *key)
{
	unsigned d = e->depth;

	if (!e->first[d])
		put(e, ",", 1);
	e->first[d] = false;
	if (!e->in_array[d]) {
		json_string(e, key);
		put(e, ":", 1);
	}
}

/* Start a scalar member; false when nothing more should be written. */
static bool scalar_begin(struct emit *e, const char *key)
{
	if (!member_ok(e, key))
		return false;
	if (e->json)
		json_member(e, key);
	else
		text_member(e, key, NULL);
	return true;
}

static void scalar_end(struct emit *e)
{
	if (!e->json)
		put(e, "\n", 1);
}

static void container_begin(struct emit *e, const char *key, bool array)
{
	if (!member_ok(e, key))
		return;
	if (e->depth + 1 >= EMIT_MAX_DEPTH) {
		e->failed = true;
		return;
	}
	if (e->json) {
		json_member(e, key);
		put(e, array ? "[" : "{", 1);
	} else if (e->in_array[e->depth] && !array) {
		/* An object element: its heading waits for its first member. */
		e->first[e->depth] = false;
	} else {
		text_member(e, key, NULL);
		/* "key: " -> "key:"; "- " -> "-" */
		if (e->len > 0 && e->buf[e->len - 1] == ' ')
			e->buf[--e->len] = '\0';
		put(e, "\n", 1);
	}
	e->depth++;
	e->first[e->depth] = true;
	e->in_array[e->depth] = array;
}

static void container_end(struct emit *e, bool array)
{
	unsigned d = e->depth;

	if (e->failed)
		return;
	if (d == 0 || e->in_array[d] != array) {
		e->failed = true;
		return;
	}
	if (e->json) {
		put(e, array ? "]" : "}", 1);
	} else if (heading_pending(e, d)) {
		indent(e, d - 1);
		put(e, "- (empty)\n", 10);
	} else if (e->first[d] && e->len > 0 && e->buf[e->len - 1] == '\n') {
		/* Nothing inside: turn the "key:" heading into "key: (none)". */
		e->len--;
		put(e, " (none)\n", 8);
	}
	e->depth--;
}

void emit_obj_begin(struct emit *e, const char *key)
{
	container_begin(e, key, false);
}

void emit_obj_end(struct emit *e)
{
	container_end(e, false);
}

void emit_arr_begin(struct emit *e, const char *key)
{
	container_begin(e, key, true);
}

void emit_arr_end(struct emit *e)
{
	container_end(e, true);
}

void emit_u64(struct emit *e, const char *key, uint64_t v)
{
	if (!scalar_begin(e, key))
		return;
	putf(e, "%llu", (unsigned long long)v);
	scalar_end(e);
}

void emit_i64(struct emit *e, const char *key, int64_t v)
{
	if (!scalar_begin(e, key))
		return;
	putf(e, "%lld", (long long)v);
	scalar_end(e);
}

void emit_double(struct emit *e, const char *key, double v)
{
	if (!scalar_begin(e, key))
		return;
	if (e->json && !isfinite(v))
		puts_(e, "null"); /* JSON has no NaN or infinity */
	else
		putf(e, "%.6g", v);
	scalar_end(e);
}

void emit_bool(struct emit *e, const char *key, bool v)
{
	if (!scalar_begin(e, key))
		return;
	puts_(e, v ? "true" : "false");
	scalar_end(e);
}

void emit_str(struct emit *e, const char *key, const char *s)
{
	if (s == NULL)
		s = "";
	if (!member_ok(e, key))
		return;
	if (e->json) {
		json_member(e, key);
		json_string(e, s);
		return;
	}
	if (!text_member(e, key, s))
		return; /* became the element's heading */
	text_string(e, s);
	put(e, "\n", 1);
}

void emit_strf(struct emit *e, const char *key, const char *fmt, ...)
{
	char small[256];
	char *s = small;
	va_list ap;
	int n;

	if (e->failed)
		return;
	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0) {
		e->failed = true;
		return;
	}
	if ((size_t)n >= sizeof(small)) {
		s = malloc((size_t)n + 1);
		if (s == NULL) {
			e->failed = true;
			return;
		}
		va_start(ap, fmt);
		vsnprintf(s, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	emit_str(e, key, s);
	if (s != small)
		free(s);
}

const char *emit_result(struct emit *e, size_t *len)
{
	size_t n;

	if (e->failed || e->depth != 0)
		return NULL;
	if (!reserve(e, 1))
		return NULL;
	n = e->len;
	if (e->json) {
		/* Close the implicit top-level object past e->len, so that
		 * emit_result() may be called again (or emission continue). */
		e->buf[n++] = '}';
		e->buf[n] = '\0';
	} else {
		e->buf[n] = '\0'; /* reserve() may just have allocated it */
	}
	if (len != NULL)
		*len = n;
	return e->buf;
}

void emit_raw(struct emit *e, const char *s, size_t n)
{
	if (e->json || e->depth) {
		e->failed = true;
		return;
	}
	put(e, s, n);
}
