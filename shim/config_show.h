/* config_show.h: the one formatter of the `config` answer, shared by the
 * library (the stats socket's `config`) and the CLI (`reshim config`,
 * local and remote): each variable's effective value in its own units, as
 * one would write it in the environment, and where it came from. */
#ifndef RESHIM_CONFIG_SHOW_H
#define RESHIM_CONFIG_SHOW_H

#include <stddef.h>

#include "answerjson.h"
#include "config.h"
#include "snapshot.h"

/* The effective value of v: durations and sizes with the largest exact unit
 * ("200ms", "1h", "512K", "300M"), fractions as percentages ("20%",
 * "12.5%"), names and paths as they are ("" for none). given: the value as
 * given in the environment, or NULL (RESHIM_DEST shows its rules as given).
 * Returns buf, or a constant string. */
const char *config_show_value(const struct reshim_config *cfg, enum reshim_var v,
                              const char *given, char *buf, size_t n);

/* The `config` answer: each variable's value, source and (invalid) value
 * as given, in out (answerjson.h: snap_config_json writes it); given[v]:
 * as in the environment, or NULL. config_show_json_max: the bytes its JSON
 * may take. */
void config_show_fill(struct snap_config *out, const struct reshim_config *cfg,
                      const char *const given[V_COUNT]);
size_t config_show_json_max(const struct reshim_config *cfg, const char *const given[V_COUNT]);

#endif
