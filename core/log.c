/*
 * log.c - leveled logging to stderr or WEFT_DEBUG_FILE, filtered by subsystem. Settings are
 * read from the config on first use; every line names host, pid, thread and rank.
 */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <unistd.h>

#include "config.h"

static pthread_once_t log_once = PTHREAD_ONCE_INIT;
static enum weft_log_level log_level = WEFT_LOG_WARN;
static unsigned log_subsys = WEFT_SUBSYS_ALL;
static FILE *log_out;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char hostname[64];
static _Thread_local int log_rank_tls = -1;
static int log_rank_process = -1; /* threads the library starts inherit the process's rank */

static const struct {
    const char *name;
    unsigned bit;
} subsys_names[] = {
    {"INIT", WEFT_SUBSYS_INIT}, {"NET", WEFT_SUBSYS_NET},   {"COLL", WEFT_SUBSYS_COLL},
    {"GPU", WEFT_SUBSYS_GPU},   {"BOOT", WEFT_SUBSYS_BOOT}, {"ALL", WEFT_SUBSYS_ALL},
};

static unsigned parse_subsys(const char *spec)
{
    unsigned mask = 0;
    int exclude = spec[0] == '^';
    char copy[256];
    snprintf(copy, sizeof(copy), "%s", spec + exclude);
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
        for (size_t i = 0; i < sizeof(subsys_names) / sizeof(subsys_names[0]); i++)
            if (strcasecmp(tok, subsys_names[i].name) == 0)
                mask |= subsys_names[i].bit;
    return exclude ? (WEFT_SUBSYS_ALL & ~mask) : mask;
}

/* Expands %h (host) and %p (pid) in a WEFT_DEBUG_FILE pattern. */
static void expand_path(const char *pattern, char *out, size_t len)
{
    size_t o = 0;
    for (const char *p = pattern; *p && o + 1 < len; p++) {
        if (p[0] == '%' && (p[1] == 'h' || p[1] == 'p')) {
            int n = p[1] == 'h' ? snprintf(out + o, len - o, "%s", hostname)
                                : snprintf(out + o, len - o, "%d", (int)getpid());
            if (n < 0 || (size_t)n >= len - o)
                break;
            o += (size_t)n;
            p++;
        } else {
            out[o++] = *p;
        }
    }
    out[o] = '\0';
}

static void log_init(void)
{
    if (gethostname(hostname, sizeof(hostname)) != 0)
        snprintf(hostname, sizeof(hostname), "unknown");
    hostname[sizeof(hostname) - 1] = '\0';
    log_out = stderr;
    /* The getters load the table without raising (a malformed knob is reported to the
     * caller by weft_config_load); logging starts with whatever parsed. */
    const char *level = weft_config_str(WEFT_CFG_DEBUG);
    if (strcasecmp(level, "NONE") == 0)
        log_level = WEFT_LOG_NONE;
    else if (strcasecmp(level, "INFO") == 0)
        log_level = WEFT_LOG_INFO;
    else if (strcasecmp(level, "TRACE") == 0)
        log_level = WEFT_LOG_TRACE;
    else
        log_level = WEFT_LOG_WARN;
    log_subsys = parse_subsys(weft_config_str(WEFT_CFG_DEBUG_SUBSYS));
    const char *file = weft_config_str(WEFT_CFG_DEBUG_FILE);
    if (file[0]) {
        char path[512];
        expand_path(file, path, sizeof(path));
        FILE *f = fopen(path, "a");
        if (f) {
            setvbuf(f, NULL, _IOLBF, 0);
            log_out = f;
        } else {
            fprintf(stderr, "weft: cannot open WEFT_DEBUG_FILE %s: %m; logging to stderr\n",
                    path);
        }
    }
}

bool weft_log_enabled(enum weft_log_level level, enum weft_log_subsys subsys)
{
    pthread_once(&log_once, log_init);
    return level <= log_level && (subsys & log_subsys) != 0;
}

void weft_log_set_rank(int rank)
{
    log_rank_tls = rank;
    /* Communicators created in several threads of one process set it concurrently. */
    __atomic_store_n(&log_rank_process, rank, __ATOMIC_RELAXED);
}

int weft_log_rank(void)
{
    return log_rank_tls >= 0 ? log_rank_tls
                             : __atomic_load_n(&log_rank_process, __ATOMIC_RELAXED);
}

const char *weft_log_hostname(void)
{
    pthread_once(&log_once, log_init);
    return hostname;
}

static const char *level_name(enum weft_log_level level)
{
    switch (level) {
    case WEFT_LOG_WARN:
        return "WARN";
    case WEFT_LOG_INFO:
        return "INFO";
    case WEFT_LOG_TRACE:
        return "TRACE";
    default:
        return "";
    }
}

static const char *subsys_name(enum weft_log_subsys subsys)
{
    for (size_t i = 0; i < sizeof(subsys_names) / sizeof(subsys_names[0]); i++)
        if (subsys_names[i].bit == (unsigned)subsys)
            return subsys_names[i].name;
    return "ALL";
}

void weft_log(enum weft_log_level level, enum weft_log_subsys subsys, const char *file, int line,
              const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    const char *base = strrchr(file, '/');
    struct timeval tv;
    gettimeofday(&tv, NULL);
    char rank[16] = "?";
    if (weft_log_rank() >= 0)
        snprintf(rank, sizeof(rank), "%d", weft_log_rank());
    pthread_mutex_lock(&log_lock);
    fprintf(log_out, "%s:%d:%d [%s] %ld.%06ld WEFT %s %s %s:%d %s\n", hostname, (int)getpid(),
            (int)gettid(), rank, (long)tv.tv_sec, (long)tv.tv_usec, level_name(level),
            subsys_name(subsys), base ? base + 1 : file, line, msg);
    pthread_mutex_unlock(&log_lock);
}
