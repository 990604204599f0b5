/*
 * test_gpu_nodev.c - the GPU layer where there is no GPU to use (CUDA_VISIBLE_DEVICES=-1 hides
 * any the host has): it answers "no GPU" and dma-buf export says why. And the page arithmetic
 * of the dma-buf range, which needs no GPU.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/error.h"
#include "gpu/gpu.h"

#define PAGE 4096u
#define BASE ((uintptr_t)0x7f0000000000ull) /* 2 MiB-aligned, as large cudaMallocs are */

static void test_no_gpu(void **state)
{
    (void)state;
    assert_false(weft_gpu_available());
    assert_true(strncmp(weft_gpu_describe(), "none", 4) == 0);
    int local = 0;
    char *heap = malloc(100);
    assert_non_null(heap);
    assert_int_equal(weft_gpu_pointer_kind(&local), WEFT_GPU_MEM_HOST);
    assert_int_equal(weft_gpu_pointer_kind(heap), WEFT_GPU_MEM_HOST);
    assert_int_equal(weft_gpu_pointer_kind(NULL), WEFT_GPU_MEM_HOST);

    int fd = -7;
    uint64_t offset = 99;
    weft_error_clear();
    assert_int_equal(weft_gpu_dmabuf_export(heap, 100, &fd, &offset), WEFT_ERR_UNSUPPORTED);
    assert_int_equal(fd, -7); /* outputs only on success */
    assert_int_equal(offset, 99);
    const char *msg = weft_last_error();
    assert_non_null(strstr(msg, "dma-buf export"));
    assert_true(strstr(msg, "no GPU") || strstr(msg, "not built with CUDA"));
    free(heap);
}

/* Asserts a successful span of [ptr, ptr+len) in [base, base+size) at `page`. */
static void span_ok(uintptr_t base, size_t size, uintptr_t ptr, size_t len, size_t page,
                    uintptr_t start, size_t span_len, uint64_t offset)
{
    struct weft_gpu_dmabuf_span s;
    assert_int_equal(weft_gpu_dmabuf_align(base, size, ptr, len, page, &s), WEFT_OK);
    assert_int_equal(s.start, start);
    assert_int_equal(s.len, span_len);
    assert_int_equal(s.offset, offset);
    assert_int_equal(s.start % page, 0);
    assert_int_equal(s.len % page, 0);
    assert_int_equal(s.start + s.offset, ptr);
}

static void span_fails(uintptr_t base, size_t size, uintptr_t ptr, size_t len, size_t page,
                       weft_result_t want, const char *text)
{
    struct weft_gpu_dmabuf_span s = {1, 2, 3};
    assert_int_equal(weft_gpu_dmabuf_align(base, size, ptr, len, page, &s), want);
    assert_non_null(strstr(weft_last_error(), text));
    assert_int_equal(s.start, 1); /* untouched */
    assert_int_equal(s.len, 2);
    assert_int_equal(s.offset, 3);
}

static void test_span_aligned(void **state)
{
    (void)state;
    const size_t size = 4u << 20;
    /* an unaligned range in the middle: widened both ways */
    span_ok(BASE, size, BASE + 3 * PAGE + 100, 10000, PAGE, BASE + 3 * PAGE, 3 * PAGE, 100);
    /* the whole allocation, and its first and last byte */
    span_ok(BASE, size, BASE, size, PAGE, BASE, size, 0);
    span_ok(BASE, size, BASE, 1, PAGE, BASE, PAGE, 0);
    span_ok(BASE, size, BASE + size - 1, 1, PAGE, BASE + size - PAGE, PAGE, PAGE - 1);
    /* exactly one page, and one byte over into the next */
    span_ok(BASE, size, BASE + PAGE, PAGE, PAGE, BASE + PAGE, PAGE, 0);
    span_ok(BASE, size, BASE + PAGE, PAGE + 1, PAGE, BASE + PAGE, 2 * PAGE, 0);
    /* length 0 counts as one byte */
    span_ok(BASE, size, BASE + 5000, 0, PAGE, BASE + PAGE, PAGE, 5000 - PAGE);
    /* 64 KiB pages (arm64, ppc64le) */
    span_ok(BASE, size, BASE + 70000, 1, 65536, BASE + 65536, 65536, 70000 - 65536);
    /* an allocation whose size is not a page multiple, used inside its whole pages */
    span_ok(BASE, 5000, BASE + 10, 100, PAGE, BASE, PAGE, 10);
    /* an allocation that starts mid-page, used inside its whole pages */
    span_ok(BASE + PAGE + 8, 3 * PAGE, BASE + 2 * PAGE, PAGE, PAGE, BASE + 2 * PAGE, PAGE, 0);
    /* at the top of the address space the end wraps to 0: still one page */
    const uintptr_t top = UINTPTR_MAX - 2 * (uintptr_t)PAGE + 1;
    span_ok(top, 2 * PAGE, top + 8000, 2 * PAGE - 8000, PAGE, top + PAGE, PAGE, 8000 - PAGE);
}

static void test_span_refused(void **state)
{
    (void)state;
    const size_t size = 1u << 20;
    /* not inside the allocation: the caller's mistake */
    span_fails(BASE, size, BASE - 1, 10, PAGE, WEFT_ERR_INVALID_ARG, "not inside");
    span_fails(BASE, size, BASE + size - 10, 11, PAGE, WEFT_ERR_INVALID_ARG, "not inside");
    span_fails(BASE, size, BASE + size, 1, PAGE, WEFT_ERR_INVALID_ARG, "not inside");
    span_fails(BASE, size, BASE + 10, SIZE_MAX, PAGE, WEFT_ERR_INVALID_ARG, "not inside");
    span_fails(BASE, size, BASE, 10, 3000, WEFT_ERR_INVALID_ARG, "power of 2");
    span_fails(BASE, size, BASE, 10, 0, WEFT_ERR_INVALID_ARG, "power of 2");
    /* pages that reach outside the allocation: small cudaMallocs share pages */
    span_fails(BASE + 512, 1000, BASE + 512, 10, PAGE, WEFT_ERR_UNSUPPORTED,
               "leaves its allocation");
    span_fails(BASE, 5000, BASE + 4500, 100, PAGE, WEFT_ERR_UNSUPPORTED, "leaves its allocation");
    span_fails(BASE + PAGE + 8, 3 * PAGE, BASE + 2 * PAGE - 1, 2, PAGE, WEFT_ERR_UNSUPPORTED,
               "leaves its allocation");
}

int main(void)
{
    /* Before the first CUDA call: the driver then shows no device even on a GPU host. */
    setenv("CUDA_VISIBLE_DEVICES", "-1", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_gpu),
        cmocka_unit_test(test_span_aligned),
        cmocka_unit_test(test_span_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
