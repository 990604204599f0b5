/*
 * error.h - one result type, raised once at the origin with a message, propagated with
 * WEFT_CHECK. The message is per thread and is what weft_last_error() returns.
 */
#ifndef WEFT_CORE_ERROR_H
#define WEFT_CORE_ERROR_H

#include <errno.h>

#include "weft.h"

/* Records `code` with a message for this thread, prefixed with host, pid and rank, logs it at
 * INFO, and returns `code`. The function that detects a failure calls it once. */
weft_result_t weft_error_raise(weft_result_t code, const char *file, int line, const char *fmt,
                               ...) __attribute__((format(printf, 4, 5)));
/* As weft_error_raise, and appends "<call>: <strerror(err)> (errno <err>)". */
weft_result_t weft_error_raise_errno(weft_result_t code, int err, const char *call,
                                     const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
/* Logs the breadcrumb "file:line -> code" at TRACE on the way up. */
void weft_error_trace(const char *file, int line, weft_result_t code);
/* Clears this thread's message (start of a public call). */
void weft_error_clear(void);
/* This thread's message ("" when none). */
const char *weft_error_message(void);
/* Sets this thread's message back to `msg`, a copy of weft_error_message() taken before
 * cleanup work that may raise its own (the failure being reported keeps its message). */
void weft_error_restore(const char *msg);

#define WEFT_ERROR(code, ...) weft_error_raise((code), __FILE__, __LINE__, __VA_ARGS__)
/* errno must still hold the failing call's value: capture it before anything else runs. */
#define WEFT_ERROR_ERRNO(code, call, ...) \
    weft_error_raise_errno((code), errno, (call), __FILE__, __LINE__, __VA_ARGS__)
#define WEFT_ERROR_ERR(code, err, call, ...) \
    weft_error_raise_errno((code), (err), (call), __FILE__, __LINE__, __VA_ARGS__)

#define WEFT_CHECK(expr)                                   \
    do {                                                   \
        weft_result_t weft_check_r_ = (expr);              \
        if (weft_check_r_ != WEFT_OK) {                    \
            weft_error_trace(__FILE__, __LINE__, weft_check_r_); \
            return weft_check_r_;                          \
        }                                                  \
    } while (0)

/* Stores the result in `res` and jumps to `label` on failure. */
#define WEFT_CHECK_GOTO(expr, res, label)                  \
    do {                                                   \
        (res) = (expr);                                    \
        if ((res) != WEFT_OK) {                            \
            weft_error_trace(__FILE__, __LINE__, (res));   \
            goto label;                                    \
        }                                                  \
    } while (0)

#endif /* WEFT_CORE_ERROR_H */
