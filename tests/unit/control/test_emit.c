/* SPDX-License-Identifier: BSD-3-Clause */
/* Structured output: exact JSON and text renderings, escaping, error state
 * (control/emit.h). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "control/emit.h"

/* The document every rendering test describes: scalars, a nested object,
 * an array of named and unnamed objects, a scalar array, empty containers. */
static void describe(struct emit *e)
{
	emit_str(e, "version", "0.1.0");
	emit_u64(e, "uptime_s", 42);
	emit_i64(e, "delta", -7);
	emit_double(e, "load", 0.125);
	emit_bool(e, "hugepages", false);
	emit_obj_begin(e, "config");
	emit_str(e, "mode", "spreading");
	emit_u64(e, "mtu", 1500);
	emit_obj_end(e);
	emit_arr_begin(e, "ports");
	emit_obj_begin(e, NULL);
	emit_str(e, "name", "port0");
	emit_str(e, "driver", "af_xdp");
	emit_obj_begin(e, "counters");
	emit_u64(e, "rx_frames", 10);
	emit_obj_end(e);
	emit_obj_end(e);
	emit_obj_begin(e, NULL);
	emit_str(e, "driver", "ring");
	emit_u64(e, "rx_frames", 0);
	emit_obj_end(e);
	emit_arr_end(e);
	emit_arr_begin(e, "cores");
	emit_u64(e, NULL, 0);
	emit_u64(e, NULL, 3);
	emit_arr_end(e);
	emit_arr_begin(e, "engines");
	emit_arr_end(e);
	emit_obj_begin(e, "empty");
	emit_obj_end(e);
}

static void test_emit_json_document(void **state)
{
	struct emit e;
	size_t len = 0;
	const char *out;

	(void)state;
	emit_init(&e, true);
	describe(&e);
	out = emit_result(&e, &len);
	assert_non_null(out);
	assert_string_equal(out,
			    "{\"version\":\"0.1.0\",\"uptime_s\":42,\"delta\":-7,\"load\":0.125,"
			    "\"hugepages\":false,\"config\":{\"mode\":\"spreading\",\"mtu\":1500},"
			    "\"ports\":[{\"name\":\"port0\",\"driver\":\"af_xdp\",\"counters\":"
			    "{\"rx_frames\":10}},{\"driver\":\"ring\",\"rx_frames\":0}],"
			    "\"cores\":[0,3],\"engines\":[],\"empty\":{}}");
	assert_int_equal(len, strlen(out));
	/* Calling it twice gives the same document. */
	assert_string_equal(emit_result(&e, NULL), out);
	emit_free(&e);
}

static void test_emit_text_document(void **state)
{
	struct emit e;
	size_t len = 0;
	const char *out;

	(void)state;
	emit_init(&e, false);
	describe(&e);
	out = emit_result(&e, &len);
	assert_non_null(out);
	assert_string_equal(out, "version: 0.1.0\n"
				 "uptime_s: 42\n"
				 "delta: -7\n"
				 "load: 0.125\n"
				 "hugepages: false\n"
				 "config:\n"
				 "  mode: spreading\n"
				 "  mtu: 1500\n"
				 "ports:\n"
				 "  port0:\n"
				 "    driver: af_xdp\n"
				 "    counters:\n"
				 "      rx_frames: 10\n"
				 "  - driver: ring\n"
				 "    rx_frames: 0\n"
				 "cores:\n"
				 "  - 0\n"
				 "  - 3\n"
				 "engines: (none)\n"
				 "empty: (none)\n");
	assert_int_equal(len, strlen(out));
	emit_free(&e);
}

static void test_emit_text_nesting_in_arrays(void **state)
{
	struct emit e;

	(void)state;
	emit_init(&e, false);
	emit_arr_begin(&e, "a");
	emit_obj_begin(&e, NULL); /* empty unnamed element */
	emit_obj_end(&e);
	emit_obj_begin(&e, NULL); /* container as first member */
	emit_obj_begin(&e, "inner");
	emit_u64(&e, "x", 1);
	emit_obj_end(&e);
	emit_u64(&e, "y", 2);
	emit_obj_end(&e);
	emit_arr_begin(&e, NULL); /* array of arrays */
	emit_str(&e, NULL, "s");
	emit_arr_end(&e);
	emit_arr_begin(&e, NULL);
	emit_arr_end(&e);
	emit_arr_end(&e);
	assert_string_equal(emit_result(&e, NULL), "a:\n"
						   "  - (empty)\n"
						   "  - inner:\n"
						   "      x: 1\n"
						   "    y: 2\n"
						   "  -\n"
						   "    - s\n"
						   "  - (none)\n");
	emit_free(&e);
}

static void test_emit_json_escaping(void **state)
{
	struct emit e;

	(void)state;
	emit_init(&e, true);
	emit_str(&e, "q\"k", "a\"b\\c/d\n\r\t\b\f\x01\x1f\x7f é");
	emit_strf(&e, "f", "%s-%d", "x", 5);
	emit_str(&e, "null", NULL);
	assert_string_equal(emit_result(&e, NULL),
			    "{\"q\\\"k\":\"a\\\"b\\\\c/d\\n\\r\\t\\b\\f\\u0001\\u001f\\u007f "
			    "é\",\"f\":\"x-5\",\"null\":\"\"}");
	emit_free(&e);

	/* Text form never passes control characters to a terminal. */
	emit_init(&e, false);
	emit_str(&e, "iface", "ev\x1b[2Jil\n");
	assert_string_equal(emit_result(&e, NULL), "iface: ev?[2Jil?\n");
	emit_free(&e);
}

static void test_emit_numbers(void **state)
{
	struct emit e;

	(void)state;
	emit_init(&e, true);
	emit_u64(&e, "max", UINT64_MAX);
	emit_i64(&e, "min", INT64_MIN);
	emit_double(&e, "third", 1.0 / 3.0);
	emit_double(&e, "big", 1e300);
	emit_double(&e, "nan", NAN);
	emit_double(&e, "inf", INFINITY);
	assert_string_equal(emit_result(&e, NULL),
			    "{\"max\":18446744073709551615,\"min\":-9223372036854775808,"
			    "\"third\":0.333333,\"big\":1e+300,\"nan\":null,\"inf\":null}");
	emit_free(&e);
}

static void test_emit_long_strings_grow_the_buffer(void **state)
{
	struct emit e;
	char *big = malloc(100001);
	const char *out;
	size_t len;

	(void)state;
	assert_non_null(big);
	memset(big, 'x', 100000);
	big[100000] = '\0';
	emit_init(&e, true);
	emit_strf(&e, "big", "%s", big);
	emit_arr_begin(&e, "many");
	for (int i = 0; i < 10000; i++)
		emit_u64(&e, NULL, (uint64_t)i);
	emit_arr_end(&e);
	out = emit_result(&e, &len);
	assert_non_null(out);
	assert_int_equal(strncmp(out, "{\"big\":\"xxxx", 12), 0);
	assert_string_equal(out + len - 11, "9998,9999]}");
	emit_free(&e);
	free(big);
}

static void test_emit_misuse_fails_cleanly(void **state)
{
	struct emit e;

	(void)state;
	emit_init(&e, true); /* key missing inside an object */
	emit_u64(&e, NULL, 1);
	assert_null(emit_result(&e, NULL));
	emit_free(&e);

	emit_init(&e, false); /* unbalanced */
	emit_obj_begin(&e, "a");
	assert_null(emit_result(&e, NULL));
	emit_free(&e);

	emit_init(&e, true); /* wrong closer */
	emit_arr_begin(&e, "a");
	emit_obj_end(&e);
	assert_null(emit_result(&e, NULL));
	emit_free(&e);

	emit_init(&e, true); /* end below the top level */
	emit_obj_end(&e);
	assert_null(emit_result(&e, NULL));
	emit_free(&e);

	emit_init(&e, true); /* too deep */
	for (int i = 0; i < EMIT_MAX_DEPTH + 2; i++)
		emit_obj_begin(&e, "d");
	for (int i = 0; i < EMIT_MAX_DEPTH + 2; i++)
		emit_obj_end(&e);
	assert_null(emit_result(&e, NULL));
	emit_free(&e);

	emit_init(&e, false); /* nothing emitted is an empty document */
	assert_string_equal(emit_result(&e, NULL), "");
	emit_free(&e);
	emit_init(&e, true);
	assert_string_equal(emit_result(&e, NULL), "{}");
	emit_free(&e);
}

/* An independent parser agrees that the output is JSON: Python's. */
static void test_emit_json_parses_with_python(void **state)
{
	char path[] = "/tmp/mst_emit_XXXXXX";
	char cmd[256];
	struct emit e;
	const char *out;
	size_t len;
	int fd, rc;

	(void)state;
	if (system("python3 -c 'import json' >/dev/null 2>&1") != 0)
		skip();
	emit_init(&e, true);
	describe(&e);
	emit_str(&e, "nasty", "\"\\\x01\x1f\t\n\x7fé{}[],:");
	emit_double(&e, "nan", NAN);
	out = emit_result(&e, &len);
	assert_non_null(out);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, out, len), (ssize_t)len);
	close(fd);
	snprintf(cmd, sizeof(cmd),
		 "python3 -c 'import json,sys; d=json.load(open(sys.argv[1], encoding=\"utf-8\")); "
		 "assert d[\"nasty\"]==\"\\\"\\\\\\x01\\x1f\\t\\n\\x7f\\u00e9{}[],:\"; "
		 "assert d[\"ports\"][0][\"counters\"][\"rx_frames\"]==10' %s",
		 path);
	rc = system(cmd);
	unlink(path);
	emit_free(&e);
	assert_int_equal(rc, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_emit_json_document),
		cmocka_unit_test(test_emit_text_document),
		cmocka_unit_test(test_emit_text_nesting_in_arrays),
		cmocka_unit_test(test_emit_json_escaping),
		cmocka_unit_test(test_emit_numbers),
		cmocka_unit_test(test_emit_long_strings_grow_the_buffer),
		cmocka_unit_test(test_emit_misuse_fails_cleanly),
		cmocka_unit_test(test_emit_json_parses_with_python),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
