/*
 * weft.h - the public C API of Weft, a collective communication runtime for GPU and RDMA
 * clusters. Everything a program may call is declared here; nothing else is exported.
 *
 * Conventions
 *   - Every call returns weft_result_t. On failure, weft_last_error() returns a message for
 *     the calling thread naming the rank, the peer and host where relevant, and the failing
 *     system call with errno.
 *   - Every collective takes a `stream`: NULL means host buffers and a blocking call; a
 *     cudaStream_t means device buffers with enqueue semantics (builds with CUDA only).
 *   - Buffers may alias (sendbuf == recvbuf) for in-place operation wherever it makes sense:
 *     allreduce, broadcast, reduce; allgather when sendbuf == recvbuf + rank * count;
 *     reduce_scatter when recvbuf == sendbuf + rank * recvcount.
 */
#ifndef WEFT_H
#define WEFT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define WEFT_API __attribute__((visibility("default")))
#else
#define WEFT_API
#endif

#define WEFT_VERSION_MAJOR 0
#define WEFT_VERSION_MINOR 1
#define WEFT_VERSION_PATCH 0
#define WEFT_VERSION_CODE \
    (WEFT_VERSION_MAJOR * 10000 + WEFT_VERSION_MINOR * 100 + WEFT_VERSION_PATCH)

typedef enum {
    WEFT_OK = 0,
    WEFT_ERR_INVALID_ARG = 1, /* a bad argument or environment value */
    WEFT_ERR_SYSTEM = 2,      /* a system call failed (see weft_last_error for errno) */
    WEFT_ERR_REMOTE = 3,      /* a peer failed, disconnected or sent something unexpected */
    WEFT_ERR_TIMEOUT = 4,     /* a wait exceeded WEFT_TIMEOUT */
    WEFT_ERR_UNSUPPORTED = 5, /* not built in, or not possible on this host */
    WEFT_ERR_ABORTED = 6,     /* the communicator was aborted */
    WEFT_ERR_NO_MEMORY = 7,   /* an allocation failed */
    WEFT_ERR_AUTH = 8,        /* a bootstrap peer failed the job-secret check */
    WEFT_ERR_INTERNAL = 9,    /* a bug in Weft: please report it with the message */
    WEFT_ERR_IN_PROGRESS = 10 /* not yet: call again (internal non-blocking calls) */
} weft_result_t;

typedef enum {
    WEFT_INT8 = 0,
    WEFT_UINT8,
    WEFT_INT32,
    WEFT_UINT32,
    WEFT_INT64,
    WEFT_UINT64,
    WEFT_FLOAT16,  /* IEEE 754 binary16 */
    WEFT_BFLOAT16, /* bfloat16: the top half of a binary32 */
    WEFT_FLOAT32,
    WEFT_FLOAT64,
    WEFT_NUM_DTYPES
} weft_dtype_t;

typedef enum {
    WEFT_SUM = 0,
    WEFT_PROD,
    WEFT_MIN,
    WEFT_MAX,
    WEFT_AVG, /* sum divided by the number of ranks; integers truncate toward zero */
    WEFT_NUM_OPS
} weft_op_t;

#define WEFT_UNIQUE_ID_BYTES 128
/* Opaque: the root's address and the job secret. Create on one rank, pass to all others. */
typedef struct {
    char internal[WEFT_UNIQUE_ID_BYTES];
} weft_unique_id_t;

typedef struct weft_comm *weft_comm_t;
/* A cudaStream_t for device buffers, or NULL for host buffers. */
typedef void *weft_stream_t;

/* Passed as `color` to weft_comm_split by ranks that want no new communicator. */
#define WEFT_SPLIT_NOCOLOR (-1)

/* ---- errors and version ---------------------------------------------------------------- */
WEFT_API const char *weft_strerror(weft_result_t result);
/* The detailed message of the calling thread's last failure ("" when none). */
WEFT_API const char *weft_last_error(void);
WEFT_API weft_result_t weft_get_version(int *version);

/* ---- communicators --------------------------------------------------------------------- */
/* Creates an id (and, in this process, the rendezvous service the ranks connect to). */
WEFT_API weft_result_t weft_get_unique_id(weft_unique_id_t *id);
/* Collective over `nranks` processes that share `id`; each passes its own `rank`. */
WEFT_API weft_result_t weft_comm_init_rank(weft_comm_t *comm, int nranks, weft_unique_id_t id,
                                           int rank);
/* Rank, size and rendezvous from the launcher's environment (weft-run: WEFT_RANK,
 * WEFT_NRANKS, WEFT_ROOT, WEFT_SECRET). */
WEFT_API weft_result_t weft_comm_init_env(weft_comm_t *comm);
/* Collective over `comm`: ranks with the same color form a new communicator, ordered by key
 * then by old rank. WEFT_SPLIT_NOCOLOR yields *newcomm == NULL. */
WEFT_API weft_result_t weft_comm_split(weft_comm_t comm, int color, int key, weft_comm_t *newcomm);
/* Collective: waits for outstanding work, then frees everything. */
WEFT_API weft_result_t weft_comm_destroy(weft_comm_t comm);
/* Local: stops outstanding work (peers see WEFT_ERR_REMOTE) and frees everything. Safe from
 * another thread while a call on `comm` is in flight: that call returns WEFT_ERR_ABORTED
 * first (make no new calls on `comm` once the abort has begun). */
WEFT_API weft_result_t weft_comm_abort(weft_comm_t comm);
/* The first error that ended an operation of this communicator, or WEFT_OK. */
WEFT_API weft_result_t weft_comm_get_async_error(weft_comm_t comm, weft_result_t *async_error);
WEFT_API weft_result_t weft_comm_rank(weft_comm_t comm, int *rank);
WEFT_API weft_result_t weft_comm_size(weft_comm_t comm, int *size);
/* The CUDA device of the communicator, or -1 for a host-only communicator. */
WEFT_API weft_result_t weft_comm_device(weft_comm_t comm, int *device);

/* ---- collectives ----------------------------------------------------------------------- */
WEFT_API weft_result_t weft_allreduce(const void *sendbuf, void *recvbuf, size_t count,
                                      weft_dtype_t dtype, weft_op_t op, weft_comm_t comm,
                                      weft_stream_t stream);
/* sendbuf is read on root only; every rank receives count elements in recvbuf. */
WEFT_API weft_result_t weft_broadcast(const void *sendbuf, void *recvbuf, size_t count,
                                      weft_dtype_t dtype, int root, weft_comm_t comm,
                                      weft_stream_t stream);
/* recvbuf is written on root only. */
WEFT_API weft_result_t weft_reduce(const void *sendbuf, void *recvbuf, size_t count,
                                   weft_dtype_t dtype, weft_op_t op, int root, weft_comm_t comm,
                                   weft_stream_t stream);
/* recvbuf holds nranks * sendcount elements, rank r's contribution at r * sendcount. */
WEFT_API weft_result_t weft_allgather(const void *sendbuf, void *recvbuf, size_t sendcount,
                                      weft_dtype_t dtype, weft_comm_t comm, weft_stream_t stream);
/* sendbuf holds nranks * recvcount elements; rank r receives the reduction of block r. */
WEFT_API weft_result_t weft_reduce_scatter(const void *sendbuf, void *recvbuf, size_t recvcount,
                                           weft_dtype_t dtype, weft_op_t op, weft_comm_t comm,
                                           weft_stream_t stream);
/* Block p (count elements) of sendbuf goes to rank p; block p of recvbuf comes from rank p. */
WEFT_API weft_result_t weft_alltoall(const void *sendbuf, void *recvbuf, size_t count,
                                     weft_dtype_t dtype, weft_comm_t comm, weft_stream_t stream);
/* Point-to-point: a send matches the receive of the same count posted by `peer`; several
 * between one pair match in order. Pair them inside weft_group_start/end to avoid waits. */
WEFT_API weft_result_t weft_send(const void *sendbuf, size_t count, weft_dtype_t dtype, int peer,
                                 weft_comm_t comm, weft_stream_t stream);
WEFT_API weft_result_t weft_recv(void *recvbuf, size_t count, weft_dtype_t dtype, int peer,
                                 weft_comm_t comm, weft_stream_t stream);
WEFT_API weft_result_t weft_barrier(weft_comm_t comm, weft_stream_t stream);

/* Calls between start and end (on this thread) are queued and run together at end:
 * point-to-point operations are posted at once, so a send/recv exchange cannot deadlock.
 * Groups nest; the outermost end runs them. */
WEFT_API weft_result_t weft_group_start(void);
WEFT_API weft_result_t weft_group_end(void);

/* ---- plans -------------------------------------------------------------------------------- */
/* What a host collective of `count` elements of `dtype` would run on this communicator
 * (count as the call takes it: per rank for allgather and reduce_scatter): the algorithm's
 * WEFT_ALGO name, its pipeline chunk and the cost model's predicted time. Nothing is sent. */
typedef struct {
    char algorithm[32];  /* e.g. "ring", "tree", "rabenseifner"; "local copy" on one rank */
    size_t chunk_size;   /* bytes per pipeline chunk; 0 when the algorithm is not pipelined */
    double predicted_us; /* the model's time for the call (docs/algorithms.md) */
} weft_plan_t;
/* `collective`: "allreduce", "broadcast", "reduce", "allgather", "reduce_scatter",
 * "alltoall" or "barrier". */
WEFT_API weft_result_t weft_coll_plan(weft_comm_t comm, const char *collective, size_t count,
                                      weft_dtype_t dtype, weft_plan_t *plan);

/* ---- memory registration ---------------------------------------------------------------- */
/* Registers a user buffer for zero-copy transfers on transports that need it: over verbs the
 * buffer is pinned and registered once, so that large messages in it skip per-message
 * registration. Deregister it before freeing the memory. */
WEFT_API weft_result_t weft_mem_register(weft_comm_t comm, void *buf, size_t size, void **handle);
WEFT_API weft_result_t weft_mem_deregister(weft_comm_t comm, void *handle);

/* ---- datatypes ---------------------------------------------------------------------------- */
/* Bytes per element, or 0 for an invalid dtype. */
WEFT_API size_t weft_dtype_size(weft_dtype_t dtype);
WEFT_API const char *weft_dtype_name(weft_dtype_t dtype);
WEFT_API const char *weft_op_name(weft_op_t op);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_H */
