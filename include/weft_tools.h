/*
 * weft_tools.h - the public extras that tools built on Weft need (weft-perf uses nothing else
 * besides weft.h): two ranks started by hand as server and client, which launcher started
 * this process, which transport reaches a peer, and the WEFT_* knobs as text.
 * Applications do not need them; they keep to weft.h.
 */
#ifndef WEFT_TOOLS_H
#define WEFT_TOOLS_H

#include <stddef.h>

#include "weft.h"

#ifdef __cplusplus
extern "C" {
#endif

/* perftest's way of starting two processes, without a launcher. The server (host == NULL)
 * listens on `port` on every interface and waits up to WEFT_TIMEOUT for one client; the
 * client (host: a name or address of the server) connects to host:port. The server is rank 0,
 * the client rank 1. `secret` both sides share: 64 hex digits are the 32-byte secret itself,
 * any other text is hashed into one (BLAKE2b), and NULL makes an unauthenticated pair (a
 * fixed public secret: any process that reaches the port can join). */
WEFT_API weft_result_t weft_comm_init_pair(weft_comm_t *comm, const char *host, int port,
                                           const char *secret);

/* The launcher that started this process ("weft-run", "Slurm", "PMIx", "Open MPI", "MPICH",
 * "torchrun"), and the job's rank count (-1 where only the process manager knows); *source
 * is NULL and *nranks 0 when no launcher environment is found. Connects to nothing. */
WEFT_API weft_result_t weft_launcher(const char **source, int *nranks);

/* What carries messages between this rank and `peer`: "self", "shm", "tcp", "verbs", "ucx". */
WEFT_API weft_result_t weft_comm_peer_transport(weft_comm_t comm, int peer, const char **name);

/* The value a WEFT_* knob has in this process (its default when unset) as text, e.g.
 * weft_config_get("WEFT_IB_HCA", buf, sizeof buf). WEFT_ERR_INVALID_ARG for an unknown name. */
WEFT_API weft_result_t weft_config_get(const char *name, char *value, size_t len);
/* Reads the WEFT_* environment again: after setenv, before the communicator is made. */
WEFT_API weft_result_t weft_config_refresh(void);

/* What this build has, e.g. "cuda=yes verbs=yes ucx=no hwloc=yes pmix=yes". */
WEFT_API const char *weft_features(void);
/* Whether a usable GPU is present; *why (may be NULL) says which, or why there is none. */
WEFT_API int weft_gpu_present(const char **why);

/* One element of a buffer of `dtype` as a double, and back (float16 and bfloat16 included):
 * for tools that fill and check buffers of every datatype. */
WEFT_API double weft_dtype_get(weft_dtype_t dtype, const void *buf, size_t i);
WEFT_API void weft_dtype_set(weft_dtype_t dtype, void *buf, size_t i, double v);

/* Raises a tool's own failure the way Weft raises its: weft_last_error() then returns the
 * message (with this process's host and pid); returns `code` for `return weft_set_error(...)`. */
WEFT_API weft_result_t weft_set_error(weft_result_t code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* weft_comm_get_async_error with the message of a failed stream operation in `msg` ("" when
 * there is none). */
WEFT_API weft_result_t weft_comm_failure_message(weft_comm_t comm, weft_result_t *failure,
                                                 char *msg, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_TOOLS_H */
