/*
 * test_layout.c - which buffers each call touches on each rank and their sizes (what argument
 * checks, stream staging and the device paths share), and how the pipelined staging of device
 * buffers cuts a call into chunks: the same count on every rank, whatever its role, every
 * chunk under WEFT_GPU_CHUNK_SIZE per buffer, none empty.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "collectives/collectives.h"
#include "collectives/device.h"
#include "core/config.h"

static struct weft_coll_op op_of(enum weft_coll_kind kind, size_t count, weft_dtype_t dtype,
                                 int root)
{
    static char send[1], recv[1];
    return (struct weft_coll_op){kind, send, recv, count, dtype, WEFT_SUM, root};
}

static void test_uses(void **state)
{
    (void)state;
    const struct weft_coll_op bc = op_of(WEFT_COLL_BROADCAST, 10, WEFT_FLOAT32, 2);
    assert_true(weft_coll_uses_send(&bc, 2));
    assert_false(weft_coll_uses_send(&bc, 0));
    assert_true(weft_coll_uses_recv(&bc, 0));
    assert_true(weft_coll_uses_recv(&bc, 2));
    const struct weft_coll_op red = op_of(WEFT_COLL_REDUCE, 10, WEFT_FLOAT32, 1);
    assert_true(weft_coll_uses_send(&red, 0));
    assert_false(weft_coll_uses_recv(&red, 0));
    assert_true(weft_coll_uses_recv(&red, 1));
    const struct weft_coll_op bar = op_of(WEFT_COLL_BARRIER, 0, WEFT_UINT8, 0);
    assert_false(weft_coll_uses_send(&bar, 0));
    assert_false(weft_coll_uses_recv(&bar, 0));
    const struct weft_coll_op snd = op_of(WEFT_COLL_SEND, 3, WEFT_INT32, 1);
    assert_true(weft_coll_uses_send(&snd, 0));
    assert_false(weft_coll_uses_recv(&snd, 0));
    const struct weft_coll_op rcv = op_of(WEFT_COLL_RECV, 3, WEFT_INT32, 1);
    assert_false(weft_coll_uses_send(&rcv, 0));
    assert_true(weft_coll_uses_recv(&rcv, 0));
}

static void test_sizes(void **state)
{
    (void)state;
    const int n = 4;
    struct weft_coll_op op = op_of(WEFT_COLL_ALLGATHER, 5, WEFT_FLOAT64, 0);
    assert_int_equal(weft_coll_send_bytes(&op, n), 40);
    assert_int_equal(weft_coll_recv_bytes(&op, n), 160);
    op.kind = WEFT_COLL_REDUCE_SCATTER;
    assert_int_equal(weft_coll_send_bytes(&op, n), 160);
    assert_int_equal(weft_coll_recv_bytes(&op, n), 40);
    op.kind = WEFT_COLL_ALLTOALL;
    assert_int_equal(weft_coll_send_bytes(&op, n), 160);
    assert_int_equal(weft_coll_recv_bytes(&op, n), 160);
    op.kind = WEFT_COLL_ALLREDUCE;
    op.dtype = WEFT_BFLOAT16;
    assert_int_equal(weft_coll_send_bytes(&op, n), 10);
    assert_int_equal(weft_coll_recv_bytes(&op, n), 10);
    assert_true(weft_coll_reduces(WEFT_COLL_REDUCE_SCATTER));
    assert_false(weft_coll_reduces(WEFT_COLL_ALLGATHER));
    assert_string_equal(weft_coll_call_name(WEFT_COLL_ALLTOALL), "weft_alltoall");
}

/* Chunks of `per_chunk` elements cover count exactly, as device_staged.c cuts them. */
static void check_cut(const struct weft_coll_op *op, int n, size_t limit)
{
    const size_t chunks = weft_dev_coll_chunks(op, n);
    const size_t es = weft_dtype_size(op->dtype);
    const size_t sb = weft_coll_send_blocks(op->kind, n), rb = weft_coll_recv_blocks(op->kind, n);
    const size_t row = es * (sb > rb ? sb : rb);
    assert_true(chunks >= 1);
    if (op->count == 0) {
        assert_int_equal(chunks, 1);
        return;
    }
    const size_t per_chunk = (op->count + chunks - 1) / chunks;
    /* every chunk but a lone oversized element fits the limit; none is empty */
    assert_true(per_chunk * row <= limit || per_chunk == 1);
    assert_true((chunks - 1) * per_chunk < op->count);
    assert_true(chunks * per_chunk >= op->count);
}

static void test_chunks(void **state)
{
    (void)state;
    setenv("WEFT_GPU_CHUNK_SIZE", "1K", 1);
    assert_int_equal(weft_config_reload(), WEFT_OK);
    /* 1000 floats of allreduce: 4000 bytes in 1 KiB chunks of 256 elements */
    struct weft_coll_op op = op_of(WEFT_COLL_ALLREDUCE, 1000, WEFT_FLOAT32, 0);
    assert_int_equal(weft_dev_coll_chunks(&op, 3), 4);
    /* allgather's recvbuf has 3 blocks: 1000 floats x 3 in chunks of 85 elements per block */
    op.kind = WEFT_COLL_ALLGATHER;
    assert_int_equal(weft_dev_coll_chunks(&op, 3), 12);
    /* the root and the others of a broadcast cut alike */
    op = op_of(WEFT_COLL_BROADCAST, 1000, WEFT_FLOAT32, 1);
    assert_int_equal(weft_dev_coll_chunks(&op, 2), 4);
    /* an element larger than a chunk's share: one element per chunk */
    op = op_of(WEFT_COLL_ALLTOALL, 10, WEFT_FLOAT64, 0);
    assert_int_equal(weft_dev_coll_chunks(&op, 200), 10);
    static const enum weft_coll_kind kinds[] = {
        WEFT_COLL_ALLREDUCE, WEFT_COLL_BROADCAST,      WEFT_COLL_REDUCE,
        WEFT_COLL_ALLGATHER, WEFT_COLL_REDUCE_SCATTER, WEFT_COLL_ALLTOALL};
    static const size_t counts[] = {0, 1, 7, 255, 256, 257, 1031, 100003};
    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
        for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++)
            for (int n = 1; n <= 5; n++) {
                op = op_of(kinds[k], counts[c], WEFT_FLOAT16, 0);
                check_cut(&op, n, 1024);
            }
    setenv("WEFT_GPU_CHUNK_SIZE", "4M", 1);
    assert_int_equal(weft_config_reload(), WEFT_OK);
    op = op_of(WEFT_COLL_ALLREDUCE, 1u << 20, WEFT_FLOAT32, 0); /* exactly 4 MiB: one chunk */
    assert_int_equal(weft_dev_coll_chunks(&op, 2), 1);
    op.count++;
    assert_int_equal(weft_dev_coll_chunks(&op, 2), 2);
    unsetenv("WEFT_GPU_CHUNK_SIZE");
}

/* op with buffers at byte offsets soff/roff of one arena (4 ranks, 4 float32 per block). */
static bool layout_at(enum weft_coll_kind kind, int rank, int root, ptrdiff_t soff, ptrdiff_t roff,
                      char *why, size_t why_len)
{
    static _Alignas(16) char arena[1024];
    const struct weft_coll_op op = {kind, arena + 256 + soff, arena + 256 + roff, 4,
                                    WEFT_FLOAT32, WEFT_SUM, root};
    return weft_coll_layout_ok(&op, rank, 4, why, why_len);
}

static void test_overlap(void **state)
{
    (void)state;
    char why[320] = "";
    const int block = 16; /* bytes of 4 float32 */
    /* disjoint buffers are always fine, touching ones too */
    assert_true(layout_at(WEFT_COLL_ALLTOALL, 1, 0, 0, 4 * block, NULL, 0));
    assert_true(layout_at(WEFT_COLL_ALLREDUCE, 1, 0, 0, block, NULL, 0));
    /* the supported in-place layouts */
    assert_true(layout_at(WEFT_COLL_ALLREDUCE, 1, 0, 0, 0, NULL, 0));
    assert_true(layout_at(WEFT_COLL_REDUCE, 2, 2, 0, 0, NULL, 0));
    assert_true(layout_at(WEFT_COLL_BROADCAST, 3, 3, 0, 0, NULL, 0));
    assert_true(layout_at(WEFT_COLL_ALLGATHER, 2, 0, 2 * block, 0, NULL, 0));
    assert_true(layout_at(WEFT_COLL_REDUCE_SCATTER, 3, 0, 0, 3 * block, NULL, 0));
    /* buffers a rank does not use cannot overlap: a broadcast non-root's sendbuf, a reduce
     * non-root's recvbuf */
    assert_true(layout_at(WEFT_COLL_BROADCAST, 1, 0, 4, 0, NULL, 0));
    assert_true(layout_at(WEFT_COLL_REDUCE, 1, 0, 0, 4, NULL, 0));
    /* everything else that overlaps is refused, with a reason */
    assert_false(layout_at(WEFT_COLL_ALLTOALL, 1, 0, 0, 0, why, sizeof(why)));
    assert_non_null(strstr(why, "weft_alltoall"));
    assert_non_null(strstr(why, "no in-place form"));
    assert_false(layout_at(WEFT_COLL_ALLTOALL, 1, 0, 0, block, NULL, 0));
    assert_false(layout_at(WEFT_COLL_ALLREDUCE, 1, 0, 0, 4, why, sizeof(why)));
    assert_non_null(strstr(why, "sendbuf == recvbuf"));
    assert_false(layout_at(WEFT_COLL_ALLREDUCE, 1, 0, 8, 0, NULL, 0));
    assert_false(layout_at(WEFT_COLL_REDUCE, 0, 0, 4, 0, NULL, 0));
    assert_false(layout_at(WEFT_COLL_BROADCAST, 0, 0, 0, 12, NULL, 0));
    /* allgather: another rank's block, a misaligned block, recvbuf inside sendbuf */
    assert_false(layout_at(WEFT_COLL_ALLGATHER, 2, 0, block, 0, why, sizeof(why)));
    assert_non_null(strstr(why, "weft_allgather"));
    assert_non_null(strstr(why, "recvbuf + rank * count"));
    assert_false(layout_at(WEFT_COLL_ALLGATHER, 2, 0, 2 * block + 4, 0, NULL, 0));
    assert_false(layout_at(WEFT_COLL_ALLGATHER, 0, 0, 4, 0, NULL, 0));
    /* reduce_scatter: the wrong block, a partial block, recvbuf straddling the end */
    assert_false(layout_at(WEFT_COLL_REDUCE_SCATTER, 3, 0, 0, 2 * block, why, sizeof(why)));
    assert_non_null(strstr(why, "sendbuf + rank * recvcount"));
    assert_false(layout_at(WEFT_COLL_REDUCE_SCATTER, 3, 0, 0, 3 * block + 8, NULL, 0));
    assert_false(layout_at(WEFT_COLL_REDUCE_SCATTER, 0, 0, 8, 0, NULL, 0));
}

static void test_group_overlap(void **state)
{
    (void)state;
    static char a[256];
    char why[512] = "";
    /* rank 1 of 4: send to 2 from a[0..16), receive from 0 */
    struct weft_coll_op ops[3] = {
        {WEFT_COLL_SEND, a, NULL, 4, WEFT_FLOAT32, WEFT_SUM, 2},
        {WEFT_COLL_RECV, NULL, a + 64, 4, WEFT_FLOAT32, WEFT_SUM, 0},
        {WEFT_COLL_ALLREDUCE, a + 128, a + 192, 4, WEFT_FLOAT32, WEFT_SUM, 0},
    };
    assert_true(weft_coll_group_layout_ok(ops, 3, 1, 4, NULL, 0));
    /* two sends from one buffer, and a collective reading a send's buffer: only reads */
    ops[1] = (struct weft_coll_op){WEFT_COLL_SEND, a, NULL, 4, WEFT_FLOAT32, WEFT_SUM, 3};
    ops[2].sendbuf = a;
    assert_true(weft_coll_group_layout_ok(ops, 3, 1, 4, NULL, 0));
    /* a receive into a send's buffer */
    ops[1] = (struct weft_coll_op){WEFT_COLL_RECV, NULL, a + 12, 4, WEFT_FLOAT32, WEFT_SUM, 0};
    ops[2].sendbuf = a + 128;
    assert_false(weft_coll_group_layout_ok(ops, 3, 1, 4, why, sizeof(why)));
    assert_non_null(strstr(why, "receive from rank 0"));
    assert_non_null(strstr(why, "weft_send"));
    /* two receives into overlapping buffers: allowed (a bandwidth test's window) */
    ops[0] = (struct weft_coll_op){WEFT_COLL_RECV, NULL, a, 4, WEFT_FLOAT32, WEFT_SUM, 2};
    assert_true(weft_coll_group_layout_ok(ops, 3, 1, 4, NULL, 0));
    /* ... but not a receive into a collective's input */
    ops[2].sendbuf = a + 4;
    assert_false(weft_coll_group_layout_ok(ops, 3, 1, 4, NULL, 0));
    ops[2].sendbuf = a + 128;
    /* a collective writing where a send reads, or reading where a receive writes */
    ops[0] = (struct weft_coll_op){WEFT_COLL_SEND, a, NULL, 4, WEFT_FLOAT32, WEFT_SUM, 2};
    ops[1] = (struct weft_coll_op){WEFT_COLL_RECV, NULL, a + 64, 4, WEFT_FLOAT32, WEFT_SUM, 0};
    ops[2].recvbuf = a + 8;
    assert_false(weft_coll_group_layout_ok(ops, 3, 1, 4, why, sizeof(why)));
    assert_non_null(strstr(why, "weft_allreduce"));
    ops[2].recvbuf = a + 192;
    ops[2].sendbuf = a + 60;
    assert_false(weft_coll_group_layout_ok(ops, 3, 1, 4, NULL, 0));
    /* a send to self and a receive from self may share bytes: they are copied with memmove */
    ops[0] = (struct weft_coll_op){WEFT_COLL_SEND, a, NULL, 4, WEFT_FLOAT32, WEFT_SUM, 1};
    ops[1] = (struct weft_coll_op){WEFT_COLL_RECV, NULL, a + 4, 4, WEFT_FLOAT32, WEFT_SUM, 1};
    assert_true(weft_coll_group_layout_ok(ops, 2, 1, 4, NULL, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uses),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_chunks),
        cmocka_unit_test(test_overlap),
        cmocka_unit_test(test_group_overlap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
