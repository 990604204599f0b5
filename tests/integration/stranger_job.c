/*
 * stranger_job.c - the job that strangers attack (stranger_check.sh): ITERS allreduces with
 * every result checked. STRANGER_STOP_AT_LISTEN=K makes the last rank stop itself (SIGSTOP)
 * right after its K-th listen() (1: the bootstrap ring's, 2: the tcp transport's), so that
 * the other ranks wait with their listeners open until the driver sends SIGCONT.
 *   stranger_job DIR [ITERS]   (rank R writes DIR/R.pid once its communicator is up)
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "weft.h"

/* Replaces libc's listen() for the statically linked library in this program only. */
int listen(int fd, int backlog)
{
    static int calls;
    const char *stop = getenv("STRANGER_STOP_AT_LISTEN");
    const char *rank = getenv("WEFT_RANK"), *nranks = getenv("WEFT_NRANKS");
    int r = (int)syscall(SYS_listen, fd, backlog);
    if (r == 0 && stop && rank && nranks && atoi(rank) == atoi(nranks) - 1 &&
        ++calls == atoi(stop))
        raise(SIGSTOP);
    return r;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: stranger_job DIR [ITERS]\n");
        return 2;
    }
    const int iters = argc > 2 ? atoi(argv[2]) : 200;
    const size_t count = 1 << 16;
    weft_comm_t comm;
    int rank, nranks, bad = 0;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (weft_comm_init_env(&comm) != WEFT_OK) {
        fprintf(stderr, "stranger_job: init: %s\n", weft_last_error());
        return 1;
    }
    weft_comm_rank(comm, &rank);
    weft_comm_size(comm, &nranks);
    char path[4096], tmp[4200];
    snprintf(path, sizeof(path), "%s/%d.pid", argv[1], rank);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (f) {
        fprintf(f, "%d\n", (int)getpid());
        fclose(f);
        rename(tmp, path);
    }
    int32_t *buf = malloc(count * sizeof(*buf));
    if (!buf)
        return 1;
    for (int it = 0; it < iters && !bad; it++) {
        for (size_t i = 0; i < count; i++)
            buf[i] = (int32_t)(rank + 1) * (int32_t)(i % 1000 + it);
        weft_result_t r = weft_allreduce(buf, buf, count, WEFT_INT32, WEFT_SUM, comm, NULL);
        if (r != WEFT_OK) {
            printf("not ok - rank %d: allreduce %d: %s\n", rank, it, weft_last_error());
            bad = 1;
            break;
        }
        const int32_t ranksum = nranks * (nranks + 1) / 2;
        for (size_t i = 0; i < count; i++) {
            if (buf[i] != ranksum * (int32_t)(i % 1000 + it)) {
                printf("not ok - rank %d: allreduce %d: element %zu is %d, want %d\n", rank, it,
                       i, buf[i], ranksum * (int32_t)(i % 1000 + it));
                bad = 1;
                break;
            }
        }
        usleep(20 * 1000); /* a job that lasts while the driver measures it */
    }
    if (!bad)
        printf("ok - rank %d: %d allreduces of %zu int32, every result right\n", rank, iters,
               count);
    weft_comm_destroy(comm);
    free(buf);
    return bad;
}
