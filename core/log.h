/*
 * log.h - leveled, per-subsystem logging. WEFT_DEBUG picks the level, WEFT_DEBUG_SUBSYS the
 * subsystems, WEFT_DEBUG_FILE the destination (%h host, %p pid). Lines carry host, pid, rank.
 */
#ifndef WEFT_CORE_LOG_H
#define WEFT_CORE_LOG_H

#include <stdbool.h>

enum weft_log_level { WEFT_LOG_NONE = 0, WEFT_LOG_WARN, WEFT_LOG_INFO, WEFT_LOG_TRACE };

enum weft_log_subsys {
    WEFT_SUBSYS_INIT = 1 << 0,
    WEFT_SUBSYS_NET = 1 << 1,
    WEFT_SUBSYS_COLL = 1 << 2,
    WEFT_SUBSYS_GPU = 1 << 3,
    WEFT_SUBSYS_BOOT = 1 << 4,
    WEFT_SUBSYS_ALL = (1 << 5) - 1
};

bool weft_log_enabled(enum weft_log_level level, enum weft_log_subsys subsys);
void weft_log(enum weft_log_level level, enum weft_log_subsys subsys, const char *file, int line,
              const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* The rank printed on this thread's log lines and error messages (-1: not known yet). */
void weft_log_set_rank(int rank);
int weft_log_rank(void);
/* This host's name, as printed in logs and errors. */
const char *weft_log_hostname(void);

#define WEFT_LOG_AT_(level, subsys, ...)                                   \
    do {                                                                   \
        if (weft_log_enabled((level), (subsys)))                           \
            weft_log((level), (subsys), __FILE__, __LINE__, __VA_ARGS__);  \
    } while (0)
#define WEFT_WARN(subsys, ...) WEFT_LOG_AT_(WEFT_LOG_WARN, WEFT_SUBSYS_##subsys, __VA_ARGS__)
#define WEFT_INFO(subsys, ...) WEFT_LOG_AT_(WEFT_LOG_INFO, WEFT_SUBSYS_##subsys, __VA_ARGS__)
#define WEFT_TRACE(subsys, ...) WEFT_LOG_AT_(WEFT_LOG_TRACE, WEFT_SUBSYS_##subsys, __VA_ARGS__)

#endif /* WEFT_CORE_LOG_H */
