/*
 * plot.h - weft-perf's pictures: lines against message size, and a pair heatmap, rendered by
 * gnuplot into FILE.svg or FILE.png (the extension picks the terminal).
 */
#ifndef WEFT_PERFTEST_PLOT_H
#define WEFT_PERFTEST_PLOT_H

#include <stdbool.h>
#include <stddef.h>

struct perf_plot_series {
    const char *title;
    const double *x, *y; /* n points; a y that is NaN is left out */
    size_t n;
};

struct perf_plot_axes {
    const char *title, *xlabel, *ylabel;
    bool logx, logy;
    bool x_bytes; /* x is a message size: tick labels in B/KiB/MiB */
};

/* One panel of lines. False with a reason in `why` (no gnuplot, bad extension, ...). */
bool perf_plot_lines(const char *file, const struct perf_plot_axes *axes,
                     const struct perf_plot_series *series, size_t nseries, char *why,
                     size_t why_len);
/* Two panels side by side (bandwidth and latency of a sweep); either may have no series. */
bool perf_plot_two(const char *file, const struct perf_plot_axes *left,
                   const struct perf_plot_series *ls, size_t nls,
                   const struct perf_plot_axes *right, const struct perf_plot_series *rs,
                   size_t nrs, char *why, size_t why_len);
/* An n x n matrix (row i, column j; NaN: no value) with names on both axes. */
bool perf_plot_heatmap(const char *file, const char *title, const char *zlabel,
                       const char *const *names, const double *m, int n, char *why,
                       size_t why_len);

/* True for a name ending .svg or .png. */
bool perf_plot_name_ok(const char *file);

#endif /* WEFT_PERFTEST_PLOT_H */
