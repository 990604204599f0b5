/*
 * config.c - the table of WEFT_* knobs (config_table.h), parsed from the environment once,
 * with typed getters and the listing weft-info prints.
 */
#include "config.h"

#include <ctype.h>
#include <limits.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "error.h"

struct config_entry {
    const char *name;
    enum weft_config_type type;
    const char *def;
    const char *help;
};

static const struct config_entry table[WEFT_CFG_COUNT] = {
#define X(id, type, def, help) [WEFT_CFG_##id] = {"WEFT_" #id, WEFT_CFG_##type, def, help},
#include "config_table.h"
#undef X
};

static union weft_config_value values[WEFT_CFG_COUNT];
static char *strings[WEFT_CFG_COUNT]; /* owned copies of STRING values */
static pthread_mutex_t config_lock = PTHREAD_MUTEX_INITIALIZER;
static int loaded;
static weft_result_t load_result;
static char load_error[256];

static const char *type_name(enum weft_config_type type)
{
    static const char *const names[] = {"int", "size", "bool", "double", "string"};
    return names[type];
}

weft_result_t weft_config_parse(enum weft_config_type type, const char *text,
                                union weft_config_value *out)
{
    char *end = NULL;
    errno = 0;
    switch (type) {
    case WEFT_CFG_INT: {
        /* Digits only, as for sizes: strtoll alone would take " 5" and "+5". */
        if (!isdigit((unsigned char)(text[0] == '-' ? text[1] : text[0])))
            return WEFT_ERR_INVALID_ARG;
        long long v = strtoll(text, &end, 10);
        /* Every INT knob is used as an int: a value past INT_MAX would wrap (WEFT_RANK=2^32
         * would be rank 0). */
        if (errno || end == text || *end || v < INT_MIN || v > INT_MAX)
            return WEFT_ERR_INVALID_ARG;
        out->i = v;
        return WEFT_OK;
    }
    case WEFT_CFG_SIZE: {
        /* A digit first: strtoull skips blanks and takes a sign, so " -1" would be
         * SIZE_MAX. */
        if (!isdigit((unsigned char)text[0]))
            return WEFT_ERR_INVALID_ARG;
        unsigned long long v = strtoull(text, &end, 10);
        if (errno || end == text)
            return WEFT_ERR_INVALID_ARG;
        unsigned shift = 0;
        switch (toupper((unsigned char)*end)) {
        case 'K': shift = 10; break;
        case 'M': shift = 20; break;
        case 'G': shift = 30; break;
        case 'T': shift = 40; break;
        case '\0': break;
        default: return WEFT_ERR_INVALID_ARG;
        }
        if (shift) {
            end++;
            if (toupper((unsigned char)*end) == 'B' || toupper((unsigned char)*end) == 'I')
                end += toupper((unsigned char)*end) == 'I' && toupper((unsigned char)end[1]) == 'B'
                           ? 2 : 1;
        }
        if (*end || (shift && v > (SIZE_MAX >> shift)))
            return WEFT_ERR_INVALID_ARG;
        out->size = (size_t)(v << shift);
        return WEFT_OK;
    }
    case WEFT_CFG_BOOL: {
        static const char *const yes[] = {"1", "yes", "true", "on", "y"};
        static const char *const no[] = {"0", "no", "false", "off", "n"};
        for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
            if (strcasecmp(text, yes[i]) == 0) {
                out->i = 1;
                return WEFT_OK;
            }
            if (strcasecmp(text, no[i]) == 0) {
                out->i = 0;
                return WEFT_OK;
            }
        }
        return WEFT_ERR_INVALID_ARG;
    }
    case WEFT_CFG_DOUBLE: {
        double v = strtod(text, &end);
        if (errno || end == text || *end || !isfinite(v))
            return WEFT_ERR_INVALID_ARG;
        out->d = v;
        return WEFT_OK;
    }
    case WEFT_CFG_STRING:
        out->s = text;
        return WEFT_OK;
    }
    return WEFT_ERR_INVALID_ARG;
}

/* Parses every variable; a malformed one keeps its default and the first is reported. */
static void load_locked(void)
{
    load_result = WEFT_OK;
    load_error[0] = '\0';
    for (int i = 0; i < WEFT_CFG_COUNT; i++) {
        const char *env = getenv(table[i].name);
        union weft_config_value v;
        if (weft_config_parse(table[i].type, table[i].def, &v) != WEFT_OK)
            v.i = 0; /* the table's defaults are checked by the unit test */
        if (env && weft_config_parse(table[i].type, env, &v) != WEFT_OK &&
            load_result == WEFT_OK) {
            load_result = WEFT_ERR_INVALID_ARG;
            snprintf(load_error, sizeof(load_error), "%s=\"%s\" is not a valid %s (default %s)",
                     table[i].name, env, type_name(table[i].type), table[i].def);
            weft_config_parse(table[i].type, table[i].def, &v);
        }
        if (table[i].type == WEFT_CFG_STRING) {
            free(strings[i]);
            strings[i] = strdup(v.s);
            v.s = strings[i] ? strings[i] : "";
        }
        values[i] = v;
    }
    __atomic_store_n(&loaded, 1, __ATOMIC_RELEASE);
}

/* Loads without raising: logging reads the config while it starts, and a raise would log. */
static weft_result_t ensure_loaded(void)
{
    pthread_mutex_lock(&config_lock);
    if (!loaded)
        load_locked();
    weft_result_t r = load_result;
    pthread_mutex_unlock(&config_lock);
    return r;
}

weft_result_t weft_config_load(void)
{
    weft_result_t r = ensure_loaded();
    if (r != WEFT_OK)
        return WEFT_ERROR(r, "%s", load_error);
    return WEFT_OK;
}

weft_result_t weft_config_reload(void)
{
    pthread_mutex_lock(&config_lock);
    loaded = 0;
    pthread_mutex_unlock(&config_lock);
    return weft_config_load();
}

static const union weft_config_value *get(enum weft_config_id id)
{
    if (!__atomic_load_n(&loaded, __ATOMIC_ACQUIRE))
        (void)ensure_loaded();
    return &values[id];
}

int64_t weft_config_int(enum weft_config_id id)
{
    return get(id)->i;
}

size_t weft_config_size(enum weft_config_id id)
{
    return get(id)->size;
}

bool weft_config_bool(enum weft_config_id id)
{
    return get(id)->i != 0;
}

double weft_config_double(enum weft_config_id id)
{
    return get(id)->d;
}

const char *weft_config_str(enum weft_config_id id)
{
    return get(id)->s;
}

bool weft_config_is_set(enum weft_config_id id)
{
    return getenv(table[id].name) != NULL;
}

size_t weft_config_rows(struct weft_config_row *rows, size_t max)
{
    size_t n = 0;
    for (int i = 0; i < WEFT_CFG_COUNT && n < max; i++, n++) {
        const char *env = getenv(table[i].name);
        rows[n] = (struct weft_config_row){
            .name = table[i].name,
            .type = type_name(table[i].type),
            .def = table[i].def,
            .value = env ? env : table[i].def,
            .help = table[i].help,
            .is_set = env != NULL,
        };
    }
    return n;
}

void weft_config_print(FILE *out)
{
    struct weft_config_row rows[WEFT_CFG_COUNT];
    size_t n = weft_config_rows(rows, WEFT_CFG_COUNT);
    fprintf(out, "%-22s %-6s %-10s %s\n", "VARIABLE", "TYPE", "VALUE", "DESCRIPTION");
    for (size_t i = 0; i < n; i++)
        fprintf(out, "%-22s %-6s %-10s %s (default: %s%s)\n", rows[i].name, rows[i].type,
                rows[i].value[0] ? rows[i].value : "\"\"", rows[i].help,
                rows[i].def[0] ? rows[i].def : "none", rows[i].is_set ? "; set" : "");
}
