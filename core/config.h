/*
 * config.h - typed access to the WEFT_* knobs of config_table.h. Values are read from the
 * environment once (weft_config_load); a malformed value is an error naming the variable.
 */
#ifndef WEFT_CORE_CONFIG_H
#define WEFT_CORE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "weft.h"

enum weft_config_type { WEFT_CFG_INT, WEFT_CFG_SIZE, WEFT_CFG_BOOL, WEFT_CFG_DOUBLE,
                        WEFT_CFG_STRING };

enum weft_config_id {
#define X(id, type, def, help) WEFT_CFG_##id,
#include "config_table.h"
#undef X
    WEFT_CFG_COUNT
};

union weft_config_value {
    int64_t i;   /* INT, BOOL (0/1) */
    size_t size; /* SIZE */
    double d;    /* DOUBLE */
    const char *s; /* STRING (owned by the table) */
};

/* Reads every variable from the environment (once per process; later calls return the first
 * result). Fails with WEFT_ERR_INVALID_ARG naming the first malformed variable. */
weft_result_t weft_config_load(void);
/* Rereads the environment (tests and tools that change it). */
weft_result_t weft_config_reload(void);

int64_t weft_config_int(enum weft_config_id id);
size_t weft_config_size(enum weft_config_id id);
bool weft_config_bool(enum weft_config_id id);
double weft_config_double(enum weft_config_id id);
const char *weft_config_str(enum weft_config_id id);
/* Whether the variable is set in the environment (rather than taking its default). */
bool weft_config_is_set(enum weft_config_id id);

/* Parses `text` as `type`: INT decimal, SIZE with optional K/M/G/T suffix (powers of 1024),
 * BOOL 1/0/yes/no/true/false/on/off, DOUBLE, STRING as is. */
weft_result_t weft_config_parse(enum weft_config_type type, const char *text,
                                union weft_config_value *out);

/* Table rows for weft-info: name ("WEFT_..."), type name, default, current text, help. */
struct weft_config_row {
    const char *name, *type, *def, *value, *help;
    bool is_set; /* set in the environment */
};
size_t weft_config_rows(struct weft_config_row *rows, size_t max);
/* Prints the table (name, value, default, help) to `out`. */
void weft_config_print(FILE *out);

#endif /* WEFT_CORE_CONFIG_H */
