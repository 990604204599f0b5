/*
 * p2p_out.c - what a point-to-point run leaves behind besides its table: the JSON record of
 * --json FILE (read back by `weft-perf links --compare`) and the picture of --plot FILE.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "perftest/p2p.h"
#include "perftest/plot.h"

bool perf_p2p_rows_alloc(struct perf_p2p_rows *r, size_t cap)
{
    double **cols[] = {&r->bytes, &r->peak, &r->avg, &r->eff,
                       &r->lat_typical, &r->lat_avg, &r->lat_p99};
    memset(r, 0, sizeof(*r));
    r->cap = cap;
    for (size_t c = 0; c < sizeof(cols) / sizeof(cols[0]); c++) {
        *cols[c] = malloc(cap * sizeof(double));
        if (*cols[c] == NULL) {
            perf_p2p_rows_free(r);
            return false;
        }
        for (size_t i = 0; i < cap; i++)
            (*cols[c])[i] = NAN;
    }
    return true;
}

void perf_p2p_rows_free(struct perf_p2p_rows *r)
{
    free(r->bytes);
    free(r->peak);
    free(r->avg);
    free(r->eff);
    free(r->lat_typical);
    free(r->lat_avg);
    free(r->lat_p99);
    memset(r, 0, sizeof(*r));
}

static void put_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s != NULL && *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', f);
        if ((unsigned char)*s >= 0x20)
            fputc(*s, f);
    }
    fputc('"', f);
}

static void put_num(FILE *f, const char *name, double v)
{
    if (isnan(v))
        fprintf(f, ", \"%s\": null", name);
    else
        fprintf(f, ", \"%s\": %.6g", name, v);
}

bool perf_p2p_save_record(const char *file, const struct perf_p2p_record *rec,
                          const struct perf_p2p_rows *rows, char *why, size_t why_len)
{
    FILE *f = fopen(file, "w");
    if (f == NULL) {
        snprintf(why, why_len, "--json %s: %s", file, strerror(errno));
        return false;
    }
    fprintf(f, "{\"weft_perf_record\": 1, \"test\": ");
    put_str(f, rec->test);
    fprintf(f, ", \"role\": ");
    put_str(f, rec->role);
    fprintf(f, ", \"host\": ");
    put_str(f, rec->host);
    fprintf(f, ", \"peer\": ");
    put_str(f, rec->peer);
    fprintf(f, ", \"transport\": ");
    put_str(f, rec->transport);
    fprintf(f, ", \"bidirectional\": %s,\n \"link\": ", rec->bidir ? "true" : "false");
    const struct perf_link *l = rec->link;
    if (l != NULL) {
        fprintf(f, "{\"device\": ");
        put_str(f, l->dev);
        fprintf(f, ", \"port\": %d, \"link_layer\": ", l->port);
        put_str(f, l->link_layer);
        fprintf(f, ", \"generation\": ");
        if (l->gen != NULL)
            put_str(f, l->gen->name);
        else
            fprintf(f, "null");
        fprintf(f, ", \"speed_code\": %u, \"width_code\": %u, \"lanes\": %d", l->speed,
                l->width, l->lanes);
        if (l->gen != NULL) {
            fprintf(f, ", \"lane_gbaud\": %.6g, \"lane_gbits\": %.6g, \"modulation\": ",
                    l->gen->gbaud, l->gen->signal_gbits);
            put_str(f, l->gen->modulation);
            fprintf(f, ", \"line_code\": ");
            put_str(f, l->gen->line_code);
            fprintf(f, ", \"fec\": ");
            put_str(f, l->gen->fec);
        }
        fprintf(f, ", \"rate\": ");
        put_str(f, l->rate);
        fprintf(f, ", \"netdev\": ");
        put_str(f, l->netdev);
        fprintf(f, ", \"data_gbits\": %.6g}", l->data_gbits);
    } else {
        fprintf(f, "null");
    }
    fprintf(f, ",\n \"line_rate_gbits\": ");
    if (rec->line_gbits > 0.0)
        fprintf(f, "%.6g", rec->line_gbits);
    else
        fprintf(f, "null");
    fprintf(f, ", \"line_rate_from\": ");
    put_str(f, rec->line_desc);
    fprintf(f, ",\n \"rows\": [");
    for (size_t i = 0; i < rows->n; i++) {
        fprintf(f, "%s\n  {\"bytes\": %.0f", i ? "," : "", rows->bytes[i]);
        if (rec->lat) {
            put_num(f, "t_typical_us", rows->lat_typical[i]);
            put_num(f, "t_avg_us", rows->lat_avg[i]);
            put_num(f, "p99_us", rows->lat_p99[i]);
        } else {
            put_num(f, "bw_peak_gbits", rows->peak[i]);
            put_num(f, "bw_avg_gbits", rows->avg[i]);
            put_num(f, "efficiency_pct", rows->eff[i]);
        }
        fprintf(f, "}");
    }
    fprintf(f, "\n]}\n");
    if (fclose(f) != 0) {
        snprintf(why, why_len, "--json %s: %s", file, strerror(errno));
        return false;
    }
    return true;
}

bool perf_p2p_plot(const char *file, const char *title, bool lat, bool bidir,
                   const struct perf_p2p_rows *rows, char *why, size_t why_len)
{
    if (lat) {
        struct perf_plot_series s[] = {
            {"typical (median)", rows->bytes, rows->lat_typical, rows->n},
            {"average", rows->bytes, rows->lat_avg, rows->n},
            {"99th percentile", rows->bytes, rows->lat_p99, rows->n},
        };
        struct perf_plot_axes a = {title, "message size", "one-way latency [usec]", true, true,
                                   true};
        return perf_plot_lines(file, &a, s, 3, why, why_len);
    }
    struct perf_plot_series s[] = {
        {"average", rows->bytes, rows->avg, rows->n},
        {"peak", rows->bytes, rows->peak, rows->n},
    };
    struct perf_plot_axes a = {title, "message size",
                               bidir ? "bandwidth, both directions [Gb/s]" : "bandwidth [Gb/s]",
                               true, false, true};
    bool any_eff = false;
    for (size_t i = 0; i < rows->n; i++)
        any_eff = any_eff || !isnan(rows->eff[i]);
    if (!any_eff)
        return perf_plot_lines(file, &a, s, 2, why, why_len);
    struct perf_plot_series e = {"average / line rate", rows->bytes, rows->eff, rows->n};
    struct perf_plot_axes b = {"Efficiency", "message size", "% of the line's data rate", true,
                               false, true};
    return perf_plot_two(file, &a, s, 2, &b, &e, 1, why, why_len);
}
