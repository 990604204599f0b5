/*
 * mpi_coll.c - the MPI side of bench/coll_vs_mpi.sh: times MPI_Allreduce, MPI_Allgather,
 * MPI_Reduce_scatter_block or MPI_Bcast (MPI_FLOAT, MPI_SUM, out of place) at the sizes given,
 * sized as weft-perf sizes them (allgather: the whole output; reduce_scatter: the whole input),
 * and prints "size,time_us,busbw" rows. Builds with Open MPI's and MPICH's mpicc alike.
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum coll { ALLREDUCE, ALLGATHER, REDUCE_SCATTER, BROADCAST };

static void call(enum coll c, float *send, float *recv, int count, int nranks)
{
    switch (c) {
    case ALLREDUCE: MPI_Allreduce(send, recv, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD); break;
    case ALLGATHER:
        MPI_Allgather(send, count / nranks, MPI_FLOAT, recv, count / nranks, MPI_FLOAT,
                      MPI_COMM_WORLD);
        break;
    case REDUCE_SCATTER:
        MPI_Reduce_scatter_block(send, recv, count / nranks, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        break;
    case BROADCAST: MPI_Bcast(send, count, MPI_FLOAT, 0, MPI_COMM_WORLD); break;
    }
}

int main(int argc, char **argv)
{
    int rank, nranks;
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    if (argc < 4) {
        if (rank == 0)
            fprintf(stderr, "usage: mpi_coll allreduce|allgather|reduce_scatter|broadcast "
                            "ITERS SIZE...\n");
        MPI_Finalize();
        return 2;
    }
    static const char *const names[] = {"allreduce", "allgather", "reduce_scatter", "broadcast"};
    enum coll c = ALLREDUCE;
    for (int i = 0; i < 4; i++)
        if (!strcmp(argv[1], names[i]))
            c = (enum coll)i;
    const int iters_base = atoi(argv[2]);
    size_t maxbytes = 0;
    for (int a = 3; a < argc; a++)
        if ((size_t)strtoull(argv[a], NULL, 10) > maxbytes)
            maxbytes = (size_t)strtoull(argv[a], NULL, 10);
    float *send = malloc(maxbytes + 64), *recv = malloc(maxbytes + 64);
    if (!send || !recv)
        MPI_Abort(MPI_COMM_WORLD, 1);
    for (size_t i = 0; i < maxbytes / sizeof(float); i++)
        send[i] = 1.0f;
    memset(recv, 0, maxbytes);
    const double n = nranks;
    const double factor = c == ALLREDUCE ? 2 * (n - 1) / n : c == BROADCAST ? 1 : (n - 1) / n;
    for (int a = 3; a < argc; a++) {
        const size_t bytes = (size_t)strtoull(argv[a], NULL, 10);
        const int count = (int)(bytes / sizeof(float));
        /* the same iteration budget as weft-perf gets: fewer for big sizes */
        int iters = iters_base;
        while (iters > 3 && (double)bytes * iters > 4e9)
            iters /= 2;
        for (int i = 0; i < iters / 5 + 1; i++)
            call(c, send, recv, count, nranks);
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        for (int i = 0; i < iters; i++)
            call(c, send, recv, count, nranks);
        double mine = (MPI_Wtime() - t0) / iters, t;
        MPI_Allreduce(&mine, &t, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        if (rank == 0) {
            printf("%zu,%.3f,%.6f\n", bytes, t * 1e6, (double)bytes / (t * 1e9) * factor);
            fflush(stdout);
        }
    }
    free(send);
    free(recv);
    MPI_Finalize();
    return 0;
}
