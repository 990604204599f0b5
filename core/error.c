/*
 * error.c - the per-thread error message behind weft_last_error(): raised once where a
 * failure is detected, prefixed with host, pid and rank, and traced on the way up.
 */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

#define ERROR_MSG_MAX 1024

static _Thread_local char error_msg[ERROR_MSG_MAX];

static const char *const result_names[] = {
    [WEFT_OK] = "success",
    [WEFT_ERR_INVALID_ARG] = "invalid argument",
    [WEFT_ERR_SYSTEM] = "system error",
    [WEFT_ERR_REMOTE] = "remote peer failed",
    [WEFT_ERR_TIMEOUT] = "timed out",
    [WEFT_ERR_UNSUPPORTED] = "not supported",
    [WEFT_ERR_ABORTED] = "aborted",
    [WEFT_ERR_NO_MEMORY] = "out of memory",
    [WEFT_ERR_AUTH] = "authentication failed",
    [WEFT_ERR_INTERNAL] = "internal error",
    [WEFT_ERR_IN_PROGRESS] = "in progress",
};

const char *weft_strerror(weft_result_t result)
{
    if ((unsigned)result >= sizeof(result_names) / sizeof(result_names[0]))
        return "unknown result code";
    return result_names[result];
}

const char *weft_last_error(void)
{
    return error_msg;
}

const char *weft_error_message(void)
{
    return error_msg;
}

void weft_error_restore(const char *msg)
{
    snprintf(error_msg, sizeof(error_msg), "%s", msg);
}

void weft_error_clear(void)
{
    error_msg[0] = '\0';
}

static weft_result_t raise_v(weft_result_t code, const char *file, int line, const char *suffix,
                             const char *fmt, va_list ap)
{
    char rank[16] = "?";
    if (weft_log_rank() >= 0)
        snprintf(rank, sizeof(rank), "%d", weft_log_rank());
    int n = snprintf(error_msg, sizeof(error_msg), "%s:%d rank %s: ", weft_log_hostname(),
                     (int)getpid(), rank);
    if (n < 0 || (size_t)n >= sizeof(error_msg))
        n = 0;
    int m = vsnprintf(error_msg + n, sizeof(error_msg) - (size_t)n, fmt, ap);
    if (m > 0 && (size_t)(n + m) < sizeof(error_msg) && suffix)
        snprintf(error_msg + n + m, sizeof(error_msg) - (size_t)(n + m), "%s", suffix);
    WEFT_LOG_AT_(WEFT_LOG_INFO, WEFT_SUBSYS_ALL, "%s:%d: %s: %s", file, line,
                 weft_strerror(code), error_msg);
    return code;
}

weft_result_t weft_error_raise(weft_result_t code, const char *file, int line, const char *fmt,
                               ...)
{
    va_list ap;
    va_start(ap, fmt);
    raise_v(code, file, line, NULL, fmt, ap);
    va_end(ap);
    return code;
}

weft_result_t weft_error_raise_errno(weft_result_t code, int err, const char *call,
                                     const char *file, int line, const char *fmt, ...)
{
    char suffix[192];
    char buf[128];
    snprintf(suffix, sizeof(suffix), ": %s failed: %s (errno %d)", call,
             strerror_r(err, buf, sizeof(buf)), err);
    va_list ap;
    va_start(ap, fmt);
    raise_v(code, file, line, suffix, fmt, ap);
    va_end(ap);
    return code;
}

void weft_error_trace(const char *file, int line, weft_result_t code)
{
    WEFT_LOG_AT_(WEFT_LOG_TRACE, WEFT_SUBSYS_ALL, "%s:%d -> %s", file, line,
                 weft_strerror(code));
}
