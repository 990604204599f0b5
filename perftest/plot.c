/*
 * plot.c - writes the data and a gnuplot script into a private temporary directory, runs
 * gnuplot on it, and removes the directory: weft-perf draws nothing itself.
 */
#include "perftest/plot.h"

#include <errno.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

struct plot_dir {
    char path[64];
    char script[96];
    int nfiles;
};

bool perf_plot_name_ok(const char *file)
{
    size_t n = strlen(file);
    return n > 4 && (strcmp(file + n - 4, ".svg") == 0 || strcmp(file + n - 4, ".png") == 0);
}

static bool fail(char *why, size_t len, const char *fmt, const char *a, const char *b)
{
    snprintf(why, len, fmt, a, b);
    return false;
}

static bool dir_open(struct plot_dir *d, char *why, size_t len)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(d->path, sizeof(d->path), "%s/weft-plot-XXXXXX",
             tmp != NULL && tmp[0] != '\0' && strlen(tmp) < 40 ? tmp : "/tmp");
    if (mkdtemp(d->path) == NULL)
        return fail(why, len, "cannot create a temporary directory in %s: %s", d->path,
                    strerror(errno));
    snprintf(d->script, sizeof(d->script), "%s/plot.gp", d->path);
    d->nfiles = 0;
    return true;
}

static void dir_close(struct plot_dir *d)
{
    char path[128];
    for (int i = 0; i < d->nfiles; i++) {
        snprintf(path, sizeof(path), "%s/%d.dat", d->path, i);
        unlink(path);
    }
    unlink(d->script);
    rmdir(d->path);
}

/* gnuplot strings are single-quoted: a quote inside is doubled. */
static void put_quoted(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; s != NULL && *s; s++) {
        if (*s == '\'')
            fputc('\'', f);
        fputc(*s, f);
    }
    fputc('\'', f);
}

static void put_terminal(FILE *f, const char *file, int width, int height)
{
    size_t n = strlen(file);
    if (strcmp(file + n - 4, ".svg") == 0)
        fprintf(f, "set terminal svg size %d,%d dynamic noenhanced font 'sans,12' background "
                   "'#ffffff'\n", width, height);
    else
        fprintf(f, "set terminal pngcairo size %d,%d noenhanced font 'sans,11'\n", width, height);
    fprintf(f, "set output ");
    put_quoted(f, file);
    fprintf(f, "\n");
}

/* Writes one series as "x y" lines into the directory; returns its data file's number. */
static int put_series(struct plot_dir *d, const struct perf_plot_series *s)
{
    char path[128];
    int id = d->nfiles++;
    snprintf(path, sizeof(path), "%s/%d.dat", d->path, id);
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    for (size_t i = 0; i < s->n; i++) {
        if (!isnan(s->y[i]))
            fprintf(f, "%.9g %.9g\n", s->x[i], s->y[i]);
    }
    fclose(f);
    return id;
}

/* Message sizes read best as 2, 8, 32, 128, 512, 2K, ...: ticks at powers of 4 over the data. */
static void put_size_tics(FILE *f, const struct perf_plot_series *s, size_t ns)
{
    double lo = INFINITY, hi = 0.0;
    for (size_t i = 0; i < ns; i++) {
        for (size_t k = 0; k < s[i].n; k++) {
            lo = s[i].x[k] < lo ? s[i].x[k] : lo;
            hi = s[i].x[k] > hi ? s[i].x[k] : hi;
        }
    }
    if (!(lo > 0.0) || hi < lo)
        return;
    double step = hi / lo > 4096.0 ? 4.0 : 2.0;
    fprintf(f, "set xtics (");
    int first = 1;
    for (double x = lo; x <= hi * 1.0001; x *= step) {
        const char *unit = "";
        double v = x;
        if (v >= 1048576.0) {
            v /= 1048576.0;
            unit = "M";
        } else if (v >= 1024.0) {
            v /= 1024.0;
            unit = "K";
        }
        fprintf(f, "%s'%g%s' %.0f", first ? "" : ", ", v, unit, x);
        first = 0;
    }
    fprintf(f, ")\nset xrange [%.9g:%.9g]\n", lo / 1.3, hi * 1.3);
}

static bool put_panel(FILE *f, struct plot_dir *d, const struct perf_plot_axes *a,
                      const struct perf_plot_series *s, size_t ns)
{
    fprintf(f, "unset logscale\nset grid\nset key top left\nset title ");
    put_quoted(f, a->title);
    fprintf(f, "\nset xlabel ");
    put_quoted(f, a->xlabel);
    fprintf(f, "\nset ylabel ");
    put_quoted(f, a->ylabel);
    fprintf(f, "\n");
    if (a->logx)
        fprintf(f, "set logscale x 2\n");
    if (a->logy)
        fprintf(f, "set logscale y 10\n");
    if (a->x_bytes)
        put_size_tics(f, s, ns);
    else
        fprintf(f, "set format x '%%g'\n");
    if (ns == 0) {
        fprintf(f, "unset key\nset label 1 'no data' at graph 0.5, graph 0.5 center\n"
                   "plot [0:1] [0:1] NaN notitle\nunset label 1\n");
        return true;
    }
    fprintf(f, "plot ");
    for (size_t i = 0; i < ns; i++) {
        int id = put_series(d, &s[i]);
        if (id < 0)
            return false;
        fprintf(f, "%s'%s/%d.dat' using 1:2 with linespoints lw 2 pt 7 ps 0.6 title ", i ? ", " : "",
                d->path, id);
        put_quoted(f, s[i].title);
    }
    fprintf(f, "\n");
    return true;
}

static bool run_gnuplot(struct plot_dir *d, const char *file, char *why, size_t len)
{
    char *argv[] = {"gnuplot", d->script, NULL};
    pid_t pid;
    int err = posix_spawnp(&pid, "gnuplot", NULL, NULL, argv, environ);
    if (err != 0)
        return fail(why, len, "cannot run gnuplot for %s: %s (install gnuplot-nox)", file,
                    strerror(err));
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return fail(why, len, "gnuplot failed to draw %s%s", file,
                    " (its message is above)");
    return true;
}

static bool begin(struct plot_dir *d, FILE **f, const char *file, char *why, size_t len)
{
    if (!perf_plot_name_ok(file))
        return fail(why, len, "--plot %s: the name must end in .svg or .png%s", file, "");
    if (!dir_open(d, why, len))
        return false;
    *f = fopen(d->script, "w");
    if (*f == NULL) {
        dir_close(d);
        return fail(why, len, "cannot write %s: %s", d->script, strerror(errno));
    }
    return true;
}

static bool finish(struct plot_dir *d, FILE *f, bool ok, const char *file, char *why, size_t len)
{
    if (fclose(f) != 0 && ok)
        ok = fail(why, len, "cannot write %s: %s", d->script, strerror(errno));
    else if (!ok)
        snprintf(why, len, "cannot write the plot's data under %s", d->path);
    if (ok)
        ok = run_gnuplot(d, file, why, len);
    dir_close(d);
    return ok;
}

bool perf_plot_lines(const char *file, const struct perf_plot_axes *axes,
                     const struct perf_plot_series *series, size_t nseries, char *why,
                     size_t why_len)
{
    struct plot_dir d;
    FILE *f;
    if (!begin(&d, &f, file, why, why_len))
        return false;
    put_terminal(f, file, 900, 600);
    bool ok = put_panel(f, &d, axes, series, nseries);
    return finish(&d, f, ok, file, why, why_len);
}

bool perf_plot_two(const char *file, const struct perf_plot_axes *left,
                   const struct perf_plot_series *ls, size_t nls,
                   const struct perf_plot_axes *right, const struct perf_plot_series *rs,
                   size_t nrs, char *why, size_t why_len)
{
    struct plot_dir d;
    FILE *f;
    if (!begin(&d, &f, file, why, why_len))
        return false;
    put_terminal(f, file, 1400, 600);
    fprintf(f, "set multiplot layout 1,2\n");
    bool ok = put_panel(f, &d, left, ls, nls) && put_panel(f, &d, right, rs, nrs);
    fprintf(f, "unset multiplot\n");
    return finish(&d, f, ok, file, why, why_len);
}

bool perf_plot_heatmap(const char *file, const char *title, const char *zlabel,
                       const char *const *names, const double *m, int n, char *why,
                       size_t why_len)
{
    struct plot_dir d;
    FILE *f;
    if (!begin(&d, &f, file, why, why_len))
        return false;
    int side = 160 + 60 * n;
    side = side < 600 ? 600 : side > 1600 ? 1600 : side;
    put_terminal(f, file, side + 160, side);
    char path[128];
    snprintf(path, sizeof(path), "%s/0.dat", d.path);
    d.nfiles = 1;
    FILE *data = fopen(path, "w");
    bool ok = data != NULL;
    if (ok) {
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                fprintf(data, "%d %d %.6g\n", j, i, m[i * n + j]);
        ok = fclose(data) == 0;
    }
    fprintf(f, "set title ");
    put_quoted(f, title);
    fprintf(f, "\nset cblabel ");
    put_quoted(f, zlabel);
    fprintf(f, "\nset datafile missing 'nan'\nset size ratio -1\n"
               "set xrange [-0.5:%d.5]\nset yrange [%d.5:-0.5]\nset grid front\n"
               "set palette defined (0 '#b2182b', 0.5 '#fddbc7', 1 '#2166ac')\n"
               "set xlabel 'receiver'\nset ylabel 'sender'\nset xtics rotate by -45 (",
            n - 1, n - 1);
    for (int i = 0; i < n; i++) {
        fprintf(f, "%s", i ? ", " : "");
        put_quoted(f, names[i]);
        fprintf(f, " %d", i);
    }
    fprintf(f, ")\nset ytics (");
    for (int i = 0; i < n; i++) {
        fprintf(f, "%s", i ? ", " : "");
        put_quoted(f, names[i]);
        fprintf(f, " %d", i);
    }
    /* Boxes, not an image: the diagonal has no value, and an image needs every cell. */
    fprintf(f, ")\nset cbrange [0:*]\nset style fill solid 1.0 noborder\nunset key\n"
               "plot '%s' using 1:2:(0.5):(0.5):3 with boxxyerror fillcolor palette, '%s' using "
               "1:2:(sprintf('%%.3g', $3)) with labels\n", path, path);
    return finish(&d, f, ok, file, why, why_len);
}
