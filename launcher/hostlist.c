/*
 * hostlist.c - expands Slurm's compressed host lists and tasks-per-node lists, so that the
 * Slurm launcher mode can find the step's first node without calling scontrol.
 */
#include "launcher/hostlist.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

#define MAX_BRACKETS 16
#define HOST_MAX 256
/* Bounds larger than this are typos, not node numbers; it also keeps the sums below exact. */
#define NUM_MAX 1000000000000ULL

struct range {
    unsigned long long lo, hi;
    int width; /* digits of the lower bound as written: keeps "0180" padded */
};

struct bracket {
    struct range *ranges;
    size_t nranges;
    unsigned long long count;
};

/* One comma-separated item: literal pieces around up to MAX_BRACKETS brackets. */
struct item {
    const char *lit[MAX_BRACKETS + 1];
    size_t lit_len[MAX_BRACKETS + 1];
    struct bracket br[MAX_BRACKETS];
    int nbr;
};

static const char *name_of(const char *what)
{
    return what ? what : "hostlist";
}

static weft_result_t bad(const char *what, const char *expr, size_t pos, const char *why)
{
    return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "%s=\"%s\" is not a Slurm host list: %s at position "
                      "%zu (expected forms: n1, n[1-3], dgx[0180-0189,0200], n[1-3]-ib, a[1-2],b3)",
                      name_of(what), expr, why, pos);
}

static void item_free(struct item *it)
{
    for (int i = 0; i < it->nbr; i++)
        free(it->br[i].ranges);
    it->nbr = 0;
}

static weft_result_t parse_number(const char *what, const char *expr, size_t *pos,
                                  unsigned long long *value, int *width)
{
    size_t p = *pos;
    unsigned long long v = 0;

    if (!isdigit((unsigned char)expr[p]))
        return bad(what, expr, p, expr[p] ? "expected a number" : "unterminated \"[\"");
    while (isdigit((unsigned char)expr[p])) {
        v = v * 10 + (unsigned long long)(expr[p] - '0');
        if (v > NUM_MAX)
            return bad(what, expr, *pos, "number too large");
        p++;
    }
    *width = (int)(p - *pos);
    *value = v;
    *pos = p;
    return WEFT_OK;
}

/* Parses "[a-b,c,...]" starting at the "[" at *pos. */
static weft_result_t parse_bracket(const char *what, const char *expr, size_t *pos,
                                   struct bracket *br)
{
    size_t p = *pos + 1, cap = 0;

    memset(br, 0, sizeof(*br));
    for (;;) {
        struct range r;
        size_t start = p;
        int hi_width;
        WEFT_CHECK(parse_number(what, expr, &p, &r.lo, &r.width));
        r.hi = r.lo;
        if (expr[p] == '-') {
            p++;
            WEFT_CHECK(parse_number(what, expr, &p, &r.hi, &hi_width));
            if (r.hi < r.lo)
                return bad(what, expr, start, "descending range");
        }
        if (br->nranges == cap) {
            cap = cap ? 2 * cap : 4;
            struct range *n = realloc(br->ranges, cap * sizeof(*n));
            if (!n)
                return WEFT_ERROR(WEFT_ERR_NO_MEMORY, "expanding %s", name_of(what));
            br->ranges = n;
        }
        br->ranges[br->nranges++] = r;
        br->count += r.hi - r.lo + 1;
        if (br->count > WEFT_HOSTLIST_MAX)
            return bad(what, expr, start, "more than 1048576 hosts");
        if (expr[p] == ',') {
            p++;
            continue;
        }
        if (expr[p] == ']') {
            *pos = p + 1;
            return WEFT_OK;
        }
        return bad(what, expr, p, expr[p] ? "expected \",\", \"-\" or \"]\""
                                          : "unterminated \"[\"");
    }
}

/* Parses one item up to a top-level comma or the end; *pos ends on that comma or NUL. */
static weft_result_t parse_item(const char *what, const char *expr, size_t *pos,
                                struct item *it)
{
    size_t p = *pos;
    weft_result_t res;

    memset(it, 0, sizeof(*it));
    it->lit[0] = expr + p;
    while (expr[p] && expr[p] != ',') {
        char c = expr[p];
        if (c == '[') {
            if (it->nbr == MAX_BRACKETS)
                return bad(what, expr, p, "too many brackets in one name");
            res = parse_bracket(what, expr, &p, &it->br[it->nbr]);
            if (res != WEFT_OK) {
                free(it->br[it->nbr].ranges);
                return res;
            }
            it->nbr++;
            it->lit[it->nbr] = expr + p;
            continue;
        }
        if (c == ']')
            return bad(what, expr, p, "\"]\" without \"[\"");
        if (isspace((unsigned char)c) || !isprint((unsigned char)c))
            return bad(what, expr, p, "unexpected character in a host name");
        it->lit_len[it->nbr]++;
        p++;
    }
    *pos = p;
    return WEFT_OK;
}

static unsigned long long bracket_value(const struct bracket *br, unsigned long long j,
                                        int *width)
{
    for (size_t i = 0; i < br->nranges; i++) {
        unsigned long long n = br->ranges[i].hi - br->ranges[i].lo + 1;
        if (j < n) {
            *width = br->ranges[i].width;
            return br->ranges[i].lo + j;
        }
        j -= n;
    }
    *width = 1;
    return 0; /* not reached: j < count */
}

static weft_result_t push(struct weft_hostlist *out, size_t *cap, const char *host)
{
    if (out->n == *cap) {
        size_t ncap = *cap ? 2 * *cap : 8;
        char **n = realloc(out->hosts, ncap * sizeof(*n));
        if (!n)
            return WEFT_ERROR(WEFT_ERR_NO_MEMORY, "expanding a host list");
        out->hosts = n;
        *cap = ncap;
    }
    out->hosts[out->n] = strdup(host);
    if (!out->hosts[out->n])
        return WEFT_ERROR(WEFT_ERR_NO_MEMORY, "expanding a host list");
    out->n++;
    return WEFT_OK;
}

/* Appends every name of `it`, the first bracket varying slowest (Slurm's order). */
static weft_result_t emit(const char *what, const char *expr, const struct item *it,
                          struct weft_hostlist *out, size_t *cap)
{
    unsigned long long idx[MAX_BRACKETS] = { 0 };
    char host[HOST_MAX];

    if (out->n + 1 > WEFT_HOSTLIST_MAX)
        return bad(what, expr, 0, "more than 1048576 hosts");
    for (;;) {
        size_t len = 0;
        int n;
        for (int k = 0; k <= it->nbr; k++) {
            n = snprintf(host + len, sizeof(host) - len, "%.*s", (int)it->lit_len[k],
                         it->lit[k]);
            len += n > 0 ? (size_t)n : 0;
            if (len >= sizeof(host))
                return bad(what, expr, 0, "host name longer than 255 characters");
            if (k == it->nbr)
                break;
            int width;
            unsigned long long v = bracket_value(&it->br[k], idx[k], &width);
            n = snprintf(host + len, sizeof(host) - len, "%0*llu", width, v);
            len += n > 0 ? (size_t)n : 0;
            if (len >= sizeof(host))
                return bad(what, expr, 0, "host name longer than 255 characters");
        }
        if (out->n >= WEFT_HOSTLIST_MAX)
            return bad(what, expr, 0, "more than 1048576 hosts");
        WEFT_CHECK(push(out, cap, host));
        int k = it->nbr - 1;
        while (k >= 0 && ++idx[k] == it->br[k].count)
            idx[k--] = 0;
        if (k < 0)
            return WEFT_OK;
    }
}

weft_result_t weft_hostlist_expand(const char *expr, const char *what, struct weft_hostlist *out)
{
    size_t pos = 0, cap = 0;
    weft_result_t res = WEFT_OK;

    if (!out)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "weft_hostlist_expand: out is NULL");
    out->hosts = NULL;
    out->n = 0;
    if (!expr || !expr[0])
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "%s is empty: no host to expand",
                          name_of(what));
    for (;;) {
        struct item it;
        /* Empty items ("a,,b", "a,") are skipped, as Slurm does. */
        if (expr[pos] != ',' && expr[pos] != '\0') {
            res = parse_item(what, expr, &pos, &it);
            if (res == WEFT_OK)
                res = emit(what, expr, &it, out, &cap);
            item_free(&it);
            if (res != WEFT_OK)
                goto fail;
        }
        if (expr[pos] == '\0')
            break;
        pos++; /* the comma */
    }
    if (out->n == 0) {
        res = bad(what, expr, 0, "no host name");
        goto fail;
    }
    return WEFT_OK;
fail:
    weft_hostlist_free(out);
    return res;
}

void weft_hostlist_free(struct weft_hostlist *hl)
{
    if (!hl)
        return;
    for (size_t i = 0; i < hl->n; i++)
        free(hl->hosts[i]);
    free(hl->hosts);
    hl->hosts = NULL;
    hl->n = 0;
}

static weft_result_t bad_tasks(const char *what, const char *expr, size_t pos, const char *why)
{
    return WEFT_ERROR(WEFT_ERR_INVALID_ARG,
                      "%s=\"%s\" is not a tasks-per-node list: %s at position %zu (expected "
                      "forms: 2, 2(x3), 2(x2),1)",
                      what ? what : "tasks-per-node list", expr, why, pos);
}

static int read_count(const char *expr, size_t *p, long *v)
{
    long n = 0;
    size_t start = *p;

    while (isdigit((unsigned char)expr[*p])) {
        n = n * 10 + (expr[*p] - '0');
        if (n > 1000000000L)
            return -1;
        (*p)++;
    }
    *v = n;
    return *p > start ? 0 : -1;
}

weft_result_t weft_tasks_per_node(const char *expr, const char *what, int node, int *tasks,
                                  int *nnodes)
{
    size_t p = 0;
    long seen = 0;
    int found = -1;

    if (!expr || !expr[0])
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "%s is empty",
                          what ? what : "tasks-per-node list");
    for (;;) {
        long count, repeat = 1;
        size_t start = p;
        if (read_count(expr, &p, &count) != 0)
            return bad_tasks(what, expr, start, "expected a task count");
        if (expr[p] == '(') {
            if (expr[p + 1] != 'x')
                return bad_tasks(what, expr, p + 1, "expected \"x\" after \"(\"");
            p += 2;
            size_t rstart = p;
            if (read_count(expr, &p, &repeat) != 0 || repeat < 1)
                return bad_tasks(what, expr, rstart, "expected a repeat count");
            if (expr[p] != ')')
                return bad_tasks(what, expr, p, "expected \")\"");
            p++;
        }
        if (found < 0 && node >= seen && node < seen + repeat)
            found = (int)count;
        seen += repeat;
        if (seen > 100000000L)
            return bad_tasks(what, expr, start, "too many nodes");
        if (expr[p] == '\0')
            break;
        if (expr[p] != ',')
            return bad_tasks(what, expr, p, "expected \",\"");
        p++;
    }
    if (nnodes)
        *nnodes = (int)seen;
    if (tasks) {
        if (node < 0 || found < 0)
            return WEFT_ERROR(WEFT_ERR_INVALID_ARG,
                              "%s=\"%s\" describes %ld node(s); it has no entry for node %d",
                              what ? what : "tasks-per-node list", expr, seen, node);
        *tasks = found;
    }
    return WEFT_OK;
}
