/*
 * error.c - NCCL's results from Weft's: the mapping, the strings of ncclGetErrorString, and
 * the calling thread's last error message that ncclGetLastError returns.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

static _Thread_local char last_error[1024];

ncclResult_t weft_nccl_error(ncclResult_t code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof(last_error), fmt, ap);
    va_end(ap);
    return code;
}

/* collectives/check.c words a fingerprint mismatch so; nothing else says it. */
static bool is_mismatch(const char *msg)
{
    return strstr(msg, "WEFT_CHECK: the ranks called different") != NULL;
}

static ncclResult_t map(weft_result_t r, bool async)
{
    switch (r) {
    case WEFT_OK:
        return ncclSuccess;
    case WEFT_ERR_INVALID_ARG:
        return async || is_mismatch(weft_last_error()) ? ncclInvalidUsage : ncclInvalidArgument;
    case WEFT_ERR_SYSTEM:
        return ncclSystemError;
    case WEFT_ERR_REMOTE:
    case WEFT_ERR_TIMEOUT: /* a peer that does not answer: NCCL 2.21 has no ncclTimeout */
        return ncclRemoteError;
    case WEFT_ERR_UNSUPPORTED:
    case WEFT_ERR_ABORTED:
        return ncclInvalidUsage;
    case WEFT_ERR_NO_MEMORY:
    case WEFT_ERR_AUTH:
        return ncclSystemError;
    case WEFT_ERR_IN_PROGRESS:
        return ncclInProgress;
    case WEFT_ERR_INTERNAL:
    default:
        return ncclInternalError;
    }
}

ncclResult_t weft_nccl_from_weft(weft_result_t r)
{
    if (r != WEFT_OK)
        snprintf(last_error, sizeof(last_error), "%s", weft_last_error());
    return map(r, false);
}

ncclResult_t weft_nccl_async_result(weft_result_t r)
{
    return map(r, true);
}

const char *ncclGetErrorString(ncclResult_t result)
{
    switch (result) {
    case ncclSuccess:
        return "no error";
    case ncclUnhandledCudaError:
        return "a CUDA call failed (ncclGetLastError names it)";
    case ncclSystemError:
        return "a system call or allocation failed (ncclGetLastError names it)";
    case ncclInternalError:
        return "internal error in Weft (please report it with ncclGetLastError's message)";
    case ncclInvalidArgument:
        return "invalid argument (ncclGetLastError says which)";
    case ncclInvalidUsage:
        return "invalid or unsupported usage (ncclGetLastError says what)";
    case ncclRemoteError:
        return "a peer failed, exited or stopped answering (ncclGetLastError names it)";
    case ncclInProgress:
        return "operation in progress";
    default:
        return "unknown result code";
    }
}

const char *ncclGetLastError(ncclComm_t comm)
{
    (void)comm; /* NCCL too keeps one message, not one per communicator */
    return last_error;
}
