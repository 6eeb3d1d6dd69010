/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Registry of engine kinds, by name. Built-in kinds register at daemon start
 * (engines_register_builtin()); later, shared objects will register theirs
 * the same way. Registration happens before any engine thread runs, so the
 * table needs no lock.
 */
#include <errno.h>
#include <string.h>

#include <mustang/engine.h>

#include "engines/builtin.h"

#define REGISTRY_MAX 16

static const struct mst_engine_ops *registry[REGISTRY_MAX];
static unsigned n_registered;

int mst_engine_register(const struct mst_engine_ops *ops)
{
	if (!ops || !ops->kind || !ops->create || !ops->poll || !ops->destroy)
		return -EINVAL;
	/* Any version up to ours is understood: hooks are only ever appended. */
	if (ops->version == 0 || ops->version > MST_ENGINE_OPS_VERSION)
		return -EPROTONOSUPPORT;
	if (mst_engine_lookup(ops->kind))
		return -EEXIST;
	if (n_registered == REGISTRY_MAX)
		return -ENOSPC;
	registry[n_registered++] = ops;
	return 0;
}

const struct mst_engine_ops *mst_engine_lookup(const char *kind)
{
	for (unsigned i = 0; i < n_registered; i++)
		if (strcmp(registry[i]->kind, kind) == 0)
			return registry[i];
	return NULL;
}

int engines_register_builtin(void)
{
	int rc = mst_engine_register(&net_engine_ops);

	return rc == -EEXIST ? 0 : rc;
}
