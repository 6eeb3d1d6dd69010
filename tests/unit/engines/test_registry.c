/* SPDX-License-Identifier: BSD-3-Clause */
/* Engine kind registry: versioning and validation of the vtable. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <mustang/engine.h>

#include "engines/builtin.h"

static void *fake_create(const struct mst_engine_conf *c)
{
	(void)c;
	return NULL;
}
static int fake_poll(void *e, uint64_t now)
{
	(void)e;
	(void)now;
	return 0;
}
static void fake_destroy(void *e)
{
	(void)e;
}

static void test_builtin_net_registers_and_is_idempotent(void **state)
{
	(void)state;
	assert_int_equal(engines_register_builtin(), 0);
	assert_int_equal(engines_register_builtin(), 0);
	assert_ptr_equal(mst_engine_lookup("net"), &net_engine_ops);
	assert_null(mst_engine_lookup("nosuch"));
}

static void test_register_rejects_bad_ops(void **state)
{
	static const struct mst_engine_ops no_poll = {
		.version = MST_ENGINE_OPS_VERSION, .kind = "x", .create = fake_create,
		.destroy = fake_destroy,
	};
	static const struct mst_engine_ops future = {
		.version = MST_ENGINE_OPS_VERSION + 1, .kind = "future", .create = fake_create,
		.poll = fake_poll, .destroy = fake_destroy,
	};
	static const struct mst_engine_ops zero = {
		.version = 0, .kind = "zero", .create = fake_create, .poll = fake_poll,
		.destroy = fake_destroy,
	};
	static const struct mst_engine_ops ok = {
		.version = MST_ENGINE_OPS_VERSION, .kind = "fake", .create = fake_create,
		.poll = fake_poll, .destroy = fake_destroy,
	};

	(void)state;
	assert_int_equal(mst_engine_register(NULL), -EINVAL);
	assert_int_equal(mst_engine_register(&no_poll), -EINVAL);
	assert_int_equal(mst_engine_register(&future), -EPROTONOSUPPORT);
	assert_int_equal(mst_engine_register(&zero), -EPROTONOSUPPORT);
	assert_int_equal(mst_engine_register(&ok), 0);
	assert_int_equal(mst_engine_register(&ok), -EEXIST);
	assert_ptr_equal(mst_engine_lookup("fake"), &ok);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_builtin_net_registers_and_is_idempotent),
		cmocka_unit_test(test_register_rejects_bad_ops),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
