/* SPDX-License-Identifier: BSD-3-Clause */
/* Name tables for the counter and drop lists in <mustang/counters.h>. */
#include <mustang/counters.h>

#define MST_X_NAME(name, help) #name,
#define MST_X_HELP(name, help) help,
const char *const mst_counter_names[MST_CTR__COUNT] = { MST_FOREACH_COUNTER(MST_X_NAME) };
const char *const mst_counter_help[MST_CTR__COUNT] = { MST_FOREACH_COUNTER(MST_X_HELP) };
const char *const mst_drop_names[MST_DROP__COUNT] = { MST_FOREACH_DROP(MST_X_NAME) };
const char *const mst_drop_help[MST_DROP__COUNT] = { MST_FOREACH_DROP(MST_X_HELP) };
const char *const mst_load_names[MST_LOAD__COUNT] = { MST_FOREACH_LOAD(MST_X_NAME) };
const char *const mst_load_help[MST_LOAD__COUNT] = { MST_FOREACH_LOAD(MST_X_HELP) };
const char *const mst_port_event_names[MST_PORT__COUNT] = { MST_FOREACH_PORT_EVENT(MST_X_NAME) };
const char *const mst_port_event_help[MST_PORT__COUNT] = { MST_FOREACH_PORT_EVENT(MST_X_HELP) };
