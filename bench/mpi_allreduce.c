/*
 * mpi_allreduce.c - the Open MPI side of bench/allreduce_vs_mpi.sh: sweeps MPI_Allreduce
 * (MPI_FLOAT, MPI_SUM, out-of-place) and prints weft-perf's CSV columns for the join.
 */
#include <errno.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct options {
    size_t minbytes, maxbytes, factor;
    int iters, warmup;
};

static int parse_bytes(const char *text, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno != 0 || end == text)
        return -1;
    switch (*end) {
    case 'K': case 'k': v <<= 10; end++; break;
    case 'M': case 'm': v <<= 20; end++; break;
    case 'G': case 'g': v <<= 30; end++; break;
    default: break;
    }
    if (*end != '\0' || v == 0)
        return -1;
    *out = (size_t)v;
    return 0;
}

static int parse_options(int argc, char **argv, struct options *o)
{
    int c;
    long v;
    *o = (struct options){.minbytes = 8, .maxbytes = 256u << 20, .factor = 2, .iters = 20,
                          .warmup = 5};
    while ((c = getopt(argc, argv, "b:e:f:n:w:")) != -1) {
        switch (c) {
        case 'b':
            if (parse_bytes(optarg, &o->minbytes) != 0)
                return -1;
            break;
        case 'e':
            if (parse_bytes(optarg, &o->maxbytes) != 0)
                return -1;
            break;
        case 'f':
        case 'n':
        case 'w':
            v = strtol(optarg, NULL, 10);
            if (v < (c == 'w' ? 0 : c == 'f' ? 2 : 1))
                return -1;
            if (c == 'f')
                o->factor = (size_t)v;
            else if (c == 'n')
                o->iters = (int)v;
            else
                o->warmup = (int)v;
            break;
        default:
            return -1;
        }
    }
    return optind == argc && o->minbytes <= o->maxbytes ? 0 : -1;
}

/* Mean seconds per call on this rank, and whether the sum came out right. */
static double time_size(float *send, float *recv, int count, const struct options *o, int nranks,
                        int *wrong)
{
    for (int i = 0; i < o->warmup; i++)
        MPI_Allreduce(send, recv, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    for (int i = 0; i < o->iters; i++)
        MPI_Allreduce(send, recv, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    double t = (MPI_Wtime() - t0) / o->iters;
    *wrong = recv[0] != (float)nranks || recv[count - 1] != (float)nranks;
    return t;
}

int main(int argc, char **argv)
{
    struct options o;
    int rank, nranks;
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    if (parse_options(argc, argv, &o) != 0) {
        if (rank == 0)
            fprintf(stderr, "usage: mpi_allreduce [-b MIN] [-e MAX] [-f FACTOR] [-n ITERS] "
                            "[-w WARMUP]\n");
        MPI_Finalize();
        return 2;
    }
    size_t maxcount = o.maxbytes / sizeof(float);
    float *send = malloc((maxcount > 0 ? maxcount : 1) * sizeof(float));
    float *recv = malloc((maxcount > 0 ? maxcount : 1) * sizeof(float));
    if (send == NULL || recv == NULL) {
        fprintf(stderr, "mpi_allreduce: rank %d: out of memory\n", rank);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    for (size_t i = 0; i < maxcount; i++)
        send[i] = 1.0f;
    memset(recv, 0, (maxcount > 0 ? maxcount : 1) * sizeof(float));

    double busfactor = 2.0 * (nranks - 1) / nranks;
    int failed = 0;
    if (rank == 0)
        printf("size,count,type,time_us,algbw,busbw\n");
    for (size_t bytes = o.minbytes;; bytes *= o.factor) {
        size_t count = bytes / sizeof(float);
        if (count > 0) {
            int wrong, any_wrong;
            double mine = time_size(send, recv, (int)count, &o, nranks, &wrong), t;
            MPI_Allreduce(&mine, &t, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
            MPI_Allreduce(&wrong, &any_wrong, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
            failed |= any_wrong;
            double us = t * 1e6, algbw = (double)(count * sizeof(float)) / us / 1e3;
            if (rank == 0) {
                printf("%zu,%zu,float32,%.3f,%.6f,%.6f\n", count * sizeof(float), count, us,
                       algbw, algbw * busfactor);
                fflush(stdout);
            }
        }
        if (bytes > o.maxbytes / o.factor)
            break;
    }
    if (failed && rank == 0)
        fprintf(stderr, "mpi_allreduce: wrong sums: the comparison is void\n");
    free(recv);
    free(send);
    MPI_Finalize();
    return failed ? 1 : 0;
}
