/*
 * config.c - fuzz target: the numeric, size, boolean and floating-point settings read from
 * the environment (core/config.c) and the Slurm port range (launcher/launch.c). The first
 * byte picks the type; what parses must mean what its text says.
 */
#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "launcher/launch_env.h"
#include "tests/fuzz/fuzz.h"

/* The digits and suffix a size may have: digits, then K, M, G or T, optionally B, i or iB. */
static int size_shift(const char *text, unsigned long long *digits_value, int *overflow)
{
    const char *p = text;
    unsigned long long v = 0;
    *overflow = 0;
    if (!isdigit((unsigned char)*p))
        return -1;
    for (; isdigit((unsigned char)*p); p++) {
        if (__builtin_mul_overflow(v, 10ULL, &v) ||
            __builtin_add_overflow(v, (unsigned long long)(*p - '0'), &v))
            *overflow = 1;
    }
    *digits_value = v;
    if (*p == '\0')
        return 0;
    const char *units = "KMGT", *u = strchr(units, toupper((unsigned char)*p));
    if (!u)
        return -1;
    int shift = 10 * (int)(u - units + 1);
    p++;
    if (strcasecmp(p, "") == 0 || strcasecmp(p, "B") == 0 || strcasecmp(p, "i") == 0 ||
        strcasecmp(p, "iB") == 0)
        return shift;
    return -1;
}

static void check_size(const char *text)
{
    union weft_config_value v;
    unsigned long long digits = 0;
    int overflow, shift = size_shift(text, &digits, &overflow);
    weft_result_t r = weft_config_parse(WEFT_CFG_SIZE, text, &v);

    if (r != WEFT_OK)
        return;
    /* Accepted: it has the shape of a size, and its value is exactly what it says. */
    FUZZ_ASSERT(shift >= 0 && !overflow);
    FUZZ_ASSERT(shift == 0 || digits <= (SIZE_MAX >> shift));
    FUZZ_ASSERT(v.size == (size_t)(digits << shift));
}

static void check_int(const char *text)
{
    union weft_config_value v;
    if (weft_config_parse(WEFT_CFG_INT, text, &v) != WEFT_OK)
        return;
    const char *p = text[0] == '-' ? text + 1 : text;
    FUZZ_ASSERT(isdigit((unsigned char)*p));
    for (; *p; p++)
        FUZZ_ASSERT(isdigit((unsigned char)*p));
    FUZZ_ASSERT((v.i < 0) == (text[0] == '-' && strspn(text + 1, "0") != strlen(text + 1)));
    FUZZ_ASSERT(v.i >= INT_MIN && v.i <= INT_MAX);
}

static void check_double(const char *text)
{
    union weft_config_value v;
    if (weft_config_parse(WEFT_CFG_DOUBLE, text, &v) == WEFT_OK)
        FUZZ_ASSERT(isfinite(v.d));
}

static void check_bool(const char *text)
{
    union weft_config_value v;
    if (weft_config_parse(WEFT_CFG_BOOL, text, &v) == WEFT_OK)
        FUZZ_ASSERT(v.i == 0 || v.i == 1);
}

static void check_port_range(const char *text, const uint8_t *data, size_t size)
{
    uint64_t job = 0, step = 0;
    int port = -1;
    for (size_t i = 0; i < size && i < 8; i++)
        job = job << 8 | data[i];
    for (size_t i = 8; i < size && i < 16; i++)
        step = step << 8 | data[i];
    if (weft_launch_slurm_port(text, job, step, &port) == WEFT_OK)
        FUZZ_ASSERT(port > 0 && port <= 65535);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 4096)
        return 0;
    char *text = malloc(size);
    if (!text)
        return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    switch (data[0] % 6) {
    case 0: check_size(text); break;
    case 1: check_int(text); break;
    case 2: check_double(text); break;
    case 3: check_bool(text); break;
    case 4: check_port_range(text, data + 1, size - 1); break;
    default:
        /* A value through the environment: the table keeps its default on a bad one, and
         * every getter answers. */
        setenv("WEFT_CHUNK_SIZE", text, 1);
        setenv("WEFT_SHM_SLOTS", text, 1);
        setenv("WEFT_TIMEOUT", text, 1);
        setenv("WEFT_SHM_CMA", text, 1);
        (void)weft_config_reload();
        (void)weft_config_size(WEFT_CFG_CHUNK_SIZE);
        (void)weft_config_int(WEFT_CFG_SHM_SLOTS);
        FUZZ_ASSERT(isfinite(weft_config_double(WEFT_CFG_TIMEOUT)));
        (void)weft_config_bool(WEFT_CFG_SHM_CMA);
        break;
    }
    free(text);
    return 0;
}
