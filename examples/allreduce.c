/*
 * allreduce.c - the smallest complete Weft program: every rank contributes its rank number,
 * and every rank checks the sum. Run it with: weft-run -n 4 ./allreduce
 */
#include <stdio.h>
#include <weft.h>

#define CHECK(call)                                                                  \
    do {                                                                             \
        weft_result_t r_ = (call);                                                   \
        if (r_ != WEFT_OK) {                                                         \
            fprintf(stderr, "%s failed: %s: %s\n", #call, weft_strerror(r_),         \
                    weft_last_error());                                              \
            return 1;                                                                \
        }                                                                            \
    } while (0)

int main(void)
{
    weft_comm_t comm;
    int rank, nranks;
    CHECK(weft_comm_init_env(&comm)); /* rank, size and rendezvous from weft-run */
    CHECK(weft_comm_rank(comm, &rank));
    CHECK(weft_comm_size(comm, &nranks));

    float data[1024];
    for (int i = 0; i < 1024; i++)
        data[i] = (float)rank;
    /* In place; a NULL stream means host buffers and a blocking call. */
    CHECK(weft_allreduce(data, data, 1024, WEFT_FLOAT32, WEFT_SUM, comm, NULL));

    const float want = (float)(nranks * (nranks - 1) / 2);
    int ok = data[0] == want && data[1023] == want;
    printf("rank %d of %d: sum %g (%s)\n", rank, nranks, data[0], ok ? "ok" : "WRONG");
    CHECK(weft_comm_destroy(comm));
    return ok ? 0 : 1;
}
