/*
 * device_fake.c - --fake-gpu: host memory plays the device so that --gpu's bookkeeping (the
 * separate buffers, the copies in and out, which pointer each call gets) runs and is checked
 * on hosts without a GPU. The calls get stream NULL, so they block as host calls do.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "weft_tools.h"
#include "perftest/device.h"
#include "perftest/perf.h"

struct fake_dev {
    struct perf_dev base;
    double t0;
};

static weft_result_t fake_alloc(struct perf_dev *d, size_t bytes, void **out)
{
    (void)d;
    void *p = NULL;
    const int err = posix_memalign(&p, 4096, bytes > 0 ? bytes : 1);
    if (err != 0)
        return weft_set_error(WEFT_ERR_NO_MEMORY,
                              "--fake-gpu: cannot allocate %zu bytes of 'device' memory: "
                              "posix_memalign: %s", bytes, strerror(err));
    /* Garbage, as cudaMalloc gives: anything not uploaded must not pass the check. */
    memset(p, 0xa5, bytes);
    *out = p;
    return WEFT_OK;
}

static void fake_free(struct perf_dev *d, void *ptr)
{
    (void)d;
    free(ptr);
}

static weft_result_t fake_copy(struct perf_dev *d, void *dst, const void *src, size_t bytes)
{
    (void)d;
    memcpy(dst, src, bytes);
    return WEFT_OK;
}

static weft_result_t fake_sync(struct perf_dev *d)
{
    (void)d;
    return WEFT_OK;
}

static weft_result_t fake_timer_start(struct perf_dev *d)
{
    ((struct fake_dev *)d)->t0 = perf_now();
    return WEFT_OK;
}

static weft_result_t fake_timer_stop(struct perf_dev *d, double *seconds)
{
    *seconds = perf_now() - ((struct fake_dev *)d)->t0;
    return WEFT_OK;
}

static void fake_close(struct perf_dev *d)
{
    free(d);
}

static const struct perf_dev_ops fake_ops = {
    .alloc = fake_alloc,
    .free = fake_free,
    .upload = fake_copy,
    .download = fake_copy,
    .sync = fake_sync,
    .timer_start = fake_timer_start,
    .timer_stop = fake_timer_stop,
    .close = fake_close,
};

weft_result_t perf_dev_open_fake(struct perf_dev **out)
{
    struct fake_dev *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return weft_set_error(WEFT_ERR_NO_MEMORY, "--fake-gpu: cannot allocate: calloc: %s",
                              strerror(errno));
    f->base = (struct perf_dev){
        .ops = &fake_ops,
        .what = "host memory posing as device memory (--fake-gpu, a test aid): separate "
                "buffers, copies in and out, blocking calls (stream NULL), host clock",
        .device = -1,
        .stream = NULL,
    };
    *out = &f->base;
    return WEFT_OK;
}
