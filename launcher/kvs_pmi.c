/*
 * kvs_pmi.c - PMI-1 and PMI-2 clients on the socket a process manager hands down in PMI_FD
 * (MPICH hydra, srun --mpi=pmi2), written from the wire protocols; every read has a deadline.
 */
#include "launcher/kvs_pmi.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "launcher/boot_sock.h"

/* PMI-2 frames every message with its length in 6 decimal digits, space padded. */
#define PMI2_LEN_DIGITS 6
/* Limits of PMI-2 (the protocol fixes them; there is no get_maxes). */
#define PMI2_KEYLEN_MAX 64
#define PMI2_VALLEN_MAX 1024
/* Longest wait for the answer to finalize: the job is over for us by then. */
#define FINALIZE_WAIT_S 5.0
/* Longest server text quoted in an error message. */
#define QUOTE_MAX 200

static const char *proto(const struct weft_kvs *kvs)
{
    return kvs->kind == WEFT_KVS_PMI2 ? "PMI-2" : "PMI-1";
}

int weft_kvs_pmi_version(void)
{
    const char *mpi = getenv("SLURM_MPI_TYPE");

    if (getenv("PMI_JOBID") != NULL)
        return 2;
    if (mpi != NULL && strncmp(mpi, "pmi2", 4) == 0)
        return 2;
    return 1;
}

/* Copies at most QUOTE_MAX characters of `text` for an error message, newlines dropped. */
static const char *quote(const char *text, size_t len, char out[QUOTE_MAX + 4])
{
    size_t n = 0;

    for (size_t i = 0; i < len && n < QUOTE_MAX; i++)
        out[n++] = (text[i] == '\n' || text[i] == '\r') ? ' ' : text[i];
    if (len > QUOTE_MAX)
        out[n++] = '.', out[n++] = '.', out[n++] = '.';
    out[n] = '\0';
    return out;
}

static weft_result_t send_msg(struct weft_kvs *kvs, const char *msg, size_t len, double deadline,
                              const char *cmd)
{
    size_t sent = 0;

    while (sent < len) {
        struct pollfd pfd = { .fd = kvs->fd, .events = POLLOUT };
        int rc = poll(&pfd, 1, weft_boot_ms_left(deadline));
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0)
            return WEFT_ERROR_ERRNO(WEFT_ERR_SYSTEM, "poll", "%s: sending %s on PMI_FD=%d",
                                    proto(kvs), cmd, kvs->fd);
        if (rc == 0)
            return WEFT_ERROR(WEFT_ERR_TIMEOUT,
                              "%s: the process manager took no %s request on PMI_FD=%d within "
                              "WEFT_TIMEOUT=%g s",
                              proto(kvs), cmd, kvs->fd, weft_config_double(WEFT_CFG_TIMEOUT));
        ssize_t k = send(kvs->fd, msg + sent, len - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (k > 0) {
            sent += (size_t)k;
        } else if (errno == EPIPE || errno == ECONNRESET) {
            return WEFT_ERROR_ERRNO(WEFT_ERR_REMOTE, "send",
                                    "%s: the process manager closed PMI_FD=%d before the %s "
                                    "request",
                                    proto(kvs), kvs->fd, cmd);
        } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            return WEFT_ERROR_ERRNO(WEFT_ERR_SYSTEM, "send", "%s: sending %s on PMI_FD=%d",
                                    proto(kvs), cmd, kvs->fd);
        }
    }
    return WEFT_OK;
}

/* Receives more bytes into kvs->rbuf. */
static weft_result_t recv_more(struct weft_kvs *kvs, double deadline, const char *cmd)
{
    if (kvs->rlen >= sizeof(kvs->rbuf))
        return WEFT_ERROR(WEFT_ERR_REMOTE,
                          "%s: the answer to %s on PMI_FD=%d is longer than %zu bytes",
                          proto(kvs), cmd, kvs->fd, sizeof(kvs->rbuf));
    for (;;) {
        struct pollfd pfd = { .fd = kvs->fd, .events = POLLIN };
        int rc = poll(&pfd, 1, weft_boot_ms_left(deadline));
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0)
            return WEFT_ERROR_ERRNO(WEFT_ERR_SYSTEM, "poll", "%s: waiting for the answer to %s",
                                    proto(kvs), cmd);
        if (rc == 0)
            return WEFT_ERROR(WEFT_ERR_TIMEOUT,
                              "%s: no answer to %s from the process manager on PMI_FD=%d "
                              "within WEFT_TIMEOUT=%g s",
                              proto(kvs), cmd, kvs->fd, weft_config_double(WEFT_CFG_TIMEOUT));
        ssize_t k = recv(kvs->fd, kvs->rbuf + kvs->rlen, sizeof(kvs->rbuf) - kvs->rlen,
                         MSG_DONTWAIT);
        if (k > 0) {
            kvs->rlen += (size_t)k;
            return WEFT_OK;
        }
        if (k == 0)
            return WEFT_ERROR(WEFT_ERR_REMOTE,
                              "%s: the process manager closed PMI_FD=%d instead of answering %s",
                              proto(kvs), kvs->fd, cmd);
        if (errno == ECONNRESET)
            return WEFT_ERROR_ERRNO(WEFT_ERR_REMOTE, "recv",
                                    "%s: the process manager reset PMI_FD=%d instead of "
                                    "answering %s",
                                    proto(kvs), kvs->fd, cmd);
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return WEFT_ERROR_ERRNO(WEFT_ERR_SYSTEM, "recv", "%s: waiting for the answer to %s",
                                    proto(kvs), cmd);
    }
}

/* Takes `n` bytes off the front of kvs->rbuf into `out` (NUL-terminated, cap > n). */
static void take(struct weft_kvs *kvs, size_t skip, size_t n, size_t consumed, char *out)
{
    memcpy(out, kvs->rbuf + skip, n);
    out[n] = '\0';
    memmove(kvs->rbuf, kvs->rbuf + consumed, kvs->rlen - consumed);
    kvs->rlen -= consumed;
}

/* PMI-1 (and the init of both): one line, newline stripped. */
static weft_result_t recv_line(struct weft_kvs *kvs, char *out, size_t cap, double deadline,
                               const char *cmd)
{
    for (;;) {
        char *nl = memchr(kvs->rbuf, '\n', kvs->rlen);
        if (nl != NULL) {
            size_t n = (size_t)(nl - kvs->rbuf);
            if (n >= cap)
                return WEFT_ERROR(WEFT_ERR_REMOTE, "%s: answer to %s longer than %zu bytes",
                                  proto(kvs), cmd, cap - 1);
            take(kvs, 0, n, n + 1, out);
            return WEFT_OK;
        }
        WEFT_CHECK(recv_more(kvs, deadline, cmd));
    }
}

/* PMI-2: a 6-digit length, then that many bytes. */
static weft_result_t recv_frame(struct weft_kvs *kvs, char *out, size_t cap, double deadline,
                                const char *cmd)
{
    char q[QUOTE_MAX + 4];

    while (kvs->rlen < PMI2_LEN_DIGITS)
        WEFT_CHECK(recv_more(kvs, deadline, cmd));
    char digits[PMI2_LEN_DIGITS + 1];
    memcpy(digits, kvs->rbuf, PMI2_LEN_DIGITS);
    digits[PMI2_LEN_DIGITS] = '\0';
    char *end;
    long len = strtol(digits, &end, 10);
    while (*end == ' ')
        end++;
    if (end == digits || *end != '\0' || len < 0)
        return WEFT_ERROR(WEFT_ERR_REMOTE,
                          "%s: the answer to %s does not start with a 6-digit length: '%s' "
                          "(is the server speaking PMI-1?)",
                          proto(kvs), cmd, quote(kvs->rbuf, kvs->rlen, q));
    if ((size_t)len >= cap || (size_t)len > sizeof(kvs->rbuf) - PMI2_LEN_DIGITS)
        return WEFT_ERROR(WEFT_ERR_REMOTE, "%s: answer to %s of %ld bytes is too long",
                          proto(kvs), cmd, len);
    while (kvs->rlen < PMI2_LEN_DIGITS + (size_t)len)
        WEFT_CHECK(recv_more(kvs, deadline, cmd));
    take(kvs, PMI2_LEN_DIGITS, (size_t)len, PMI2_LEN_DIGITS + (size_t)len, out);
    return WEFT_OK;
}

/* Finds `key` in a PMI-1 line ("cmd=x a=b c=d"): the value runs to the next space, except
 * for msg, which servers write last and may contain spaces. */
static bool pmi1_field(const char *line, const char *key, char *out, size_t cap)
{
    size_t klen = strlen(key);
    const char *p = line;

    while (*p != '\0') {
        while (*p == ' ')
            p++;
        const char *tok = p;
        while (*p != '\0' && *p != ' ')
            p++;
        if ((size_t)(p - tok) > klen && strncmp(tok, key, klen) == 0 && tok[klen] == '=') {
            const char *v = tok + klen + 1;
            size_t n = strcmp(key, "msg") == 0 ? strlen(v) : (size_t)(p - v);
            if (n >= cap)
                return false;
            memcpy(out, v, n);
            out[n] = '\0';
            return true;
        }
    }
    return false;
}

/* Finds `key` in a PMI-2 message ("cmd=x;a=b;"); ";;" inside a value stands for ';'. */
static bool pmi2_field(const char *msg, const char *key, char *out, size_t cap)
{
    size_t klen = strlen(key);
    const char *p = msg;

    while (*p != '\0') {
        bool match = strncmp(p, key, klen) == 0 && p[klen] == '=';
        const char *v = strchr(p, '=');
        if (v == NULL)
            return false;
        v++;
        size_t n = 0;
        const char *q = v;
        for (; *q != '\0'; q++) {
            if (*q == ';' && q[1] == ';') {
                q++;
            } else if (*q == ';') {
                break;
            }
            if (match) {
                if (n + 1 >= cap)
                    return false;
                out[n++] = *q;
            }
        }
        if (match) {
            out[n] = '\0';
            return true;
        }
        p = *q == ';' ? q + 1 : q;
    }
    return false;
}

static bool field(const struct weft_kvs *kvs, const char *msg, const char *key, char *out,
                  size_t cap)
{
    return kvs->kind == WEFT_KVS_PMI2 ? pmi2_field(msg, key, out, cap)
                                      : pmi1_field(msg, key, out, cap);
}

/* Sends one request and reads its answer into `resp`; checks that the answer is `expect` and
 * that its rc, if any, is 0. `cmd` names the request in messages. */
static weft_result_t call_once(struct weft_kvs *kvs, const char *req, const char *cmd,
                               const char *expect, char *resp, size_t cap)
{
    double deadline = weft_boot_deadline();
    char q[QUOTE_MAX + 4], got[64], rc[32], msg[QUOTE_MAX];

    WEFT_TRACE(BOOT, "%s request: %s", proto(kvs), req);
    if (kvs->kind == WEFT_KVS_PMI2) {
        size_t len = strlen(req);
        char *frame = malloc(len + PMI2_LEN_DIGITS + 1);
        if (frame == NULL)
            return WEFT_ERROR(WEFT_ERR_NO_MEMORY, "%s: no memory for a %s request", proto(kvs),
                              cmd);
        snprintf(frame, len + PMI2_LEN_DIGITS + 1, "%-6zu%s", len, req);
        weft_result_t res = send_msg(kvs, frame, len + PMI2_LEN_DIGITS, deadline, cmd);
        free(frame);
        WEFT_CHECK(res);
        WEFT_CHECK(recv_frame(kvs, resp, cap, deadline, cmd));
    } else {
        WEFT_CHECK(send_msg(kvs, req, strlen(req), deadline, cmd));
        WEFT_CHECK(recv_line(kvs, resp, cap, deadline, cmd));
    }
    WEFT_TRACE(BOOT, "%s answer: %s", proto(kvs), resp);
    if (!field(kvs, resp, "cmd", got, sizeof(got)) || strcmp(got, expect) != 0)
        return WEFT_ERROR(WEFT_ERR_REMOTE,
                          "%s: the process manager answered '%s' to %s on PMI_FD=%d (expected "
                          "cmd=%s)",
                          proto(kvs), quote(resp, strlen(resp), q), cmd, kvs->fd, expect);
    if (field(kvs, resp, "rc", rc, sizeof(rc)) && strcmp(rc, "0") != 0) {
        if (!field(kvs, resp, kvs->kind == WEFT_KVS_PMI2 ? "errmsg" : "msg", msg, sizeof(msg)))
            snprintf(msg, sizeof(msg), "no message");
        return WEFT_ERROR(WEFT_ERR_REMOTE,
                          "%s: the process manager refused %s with rc=%s (%s); its answer: '%s'",
                          proto(kvs), cmd, rc, msg, quote(resp, strlen(resp), q));
    }
    return WEFT_OK;
}

/* As call_once; a failure leaves the connection in an unknown state, so remember it. */
static weft_result_t call(struct weft_kvs *kvs, const char *req, const char *cmd,
                          const char *expect, char *resp, size_t cap)
{
    weft_result_t res = call_once(kvs, req, cmd, expect, resp, cap);

    if (res != WEFT_OK)
        kvs->failed = true;
    return res;
}

/* A non-negative integer field of an answer, or an error naming it. */
static weft_result_t int_field(struct weft_kvs *kvs, const char *resp, const char *key,
                               const char *cmd, long *out)
{
    char text[32], q[QUOTE_MAX + 4], *end;

    if (!field(kvs, resp, key, text, sizeof(text)))
        return WEFT_ERROR(WEFT_ERR_REMOTE, "%s: the answer to %s has no %s: '%s'", proto(kvs),
                          cmd, key, quote(resp, strlen(resp), q));
    errno = 0;
    *out = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || *out < 0 || *out > INT_MAX)
        return WEFT_ERROR(WEFT_ERR_REMOTE, "%s: the answer to %s has %s=%s, not a count",
                          proto(kvs), cmd, key, text);
    return WEFT_OK;
}

static weft_result_t env_int(const char *name, long *out)
{
    const char *text = getenv(name);
    char *end;

    if (text == NULL)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG,
                          "PMI_FD is set but %s is not: the process manager should set both",
                          name);
    errno = 0;
    *out = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || *out < 0 || *out > INT_MAX)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "%s=%s is not a non-negative integer", name,
                          text);
    return WEFT_OK;
}

/* The version handshake both protocols start with, in PMI-1 syntax. */
static weft_result_t pmi_init(struct weft_kvs *kvs)
{
    int version = kvs->kind == WEFT_KVS_PMI2 ? 2 : 1;
    char req[80], resp[512], q[QUOTE_MAX + 4], got[32], rc[32];
    double deadline = weft_boot_deadline();
    enum weft_kvs_kind kind = kvs->kind;

    snprintf(req, sizeof(req), "cmd=init pmi_version=%d pmi_subversion=%d\n", version,
             version == 2 ? 0 : 1);
    /* The init line and its answer are PMI-1 syntax for both versions. */
    kvs->kind = WEFT_KVS_PMI1;
    weft_result_t res = send_msg(kvs, req, strlen(req), deadline, "init");
    if (res == WEFT_OK)
        res = recv_line(kvs, resp, sizeof(resp), deadline, "init");
    kvs->kind = kind;
    WEFT_CHECK(res);
    WEFT_TRACE(BOOT, "PMI-%d init answer: %s", version, resp);
    if (!pmi1_field(resp, "cmd", got, sizeof(got)) || strcmp(got, "response_to_init") != 0)
        return WEFT_ERROR(WEFT_ERR_REMOTE,
                          "PMI-%d: the process manager answered '%s' to init on PMI_FD=%d",
                          version, quote(resp, strlen(resp), q), kvs->fd);
    if (pmi1_field(resp, "rc", rc, sizeof(rc)) && strcmp(rc, "0") != 0)
        return WEFT_ERROR(WEFT_ERR_REMOTE,
                          "PMI-%d: the process manager refused init (PMI version %d) on "
                          "PMI_FD=%d with rc=%s; its answer: '%s'",
                          version, version, kvs->fd, rc, quote(resp, strlen(resp), q));
    if (pmi1_field(resp, "pmi_version", got, sizeof(got)) && atoi(got) != version)
        return WEFT_ERROR(WEFT_ERR_REMOTE,
                          "PMI-%d: the process manager on PMI_FD=%d offers PMI version %s, not "
                          "%d; its answer: '%s'%s",
                          version, kvs->fd, got, version, quote(resp, strlen(resp), q),
                          version == 2 ? " (PMI_JOBID or SLURM_MPI_TYPE=pmi2 asked for PMI-2)"
                                       : "");
    return WEFT_OK;
}

static weft_result_t pmi1_open(struct weft_kvs *kvs)
{
    char resp[1024];
    long rank, size, v;

    WEFT_CHECK(env_int("PMI_RANK", &rank));
    WEFT_CHECK(env_int("PMI_SIZE", &size));
    if (size < 1 || rank >= size)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "PMI_RANK=%ld is not below PMI_SIZE=%ld", rank,
                          size);
    kvs->rank = (int)rank;
    kvs->nranks = (int)size;
    WEFT_CHECK(call(kvs, "cmd=get_maxes\n", "get_maxes", "maxes", resp, sizeof(resp)));
    WEFT_CHECK(int_field(kvs, resp, "keylen_max", "get_maxes", &v));
    kvs->keylen_max = (size_t)v;
    WEFT_CHECK(int_field(kvs, resp, "vallen_max", "get_maxes", &v));
    kvs->vallen_max = (size_t)v;
    WEFT_CHECK(call(kvs, "cmd=get_my_kvsname\n", "get_my_kvsname", "my_kvsname", resp,
                    sizeof(resp)));
    if (!pmi1_field(resp, "kvsname", kvs->name, sizeof(kvs->name)) || kvs->name[0] == '\0')
        return WEFT_ERROR(WEFT_ERR_REMOTE, "PMI-1: the answer to get_my_kvsname has no kvsname");
    return WEFT_OK;
}

static weft_result_t pmi2_open(struct weft_kvs *kvs)
{
    char req[WEFT_KVS_NAME_MAX + 128], resp[2048];
    const char *jobid = getenv("PMI_JOBID"), *rank_env = getenv("PMI_RANK");
    long rank, size;
    int n;

    /* Slurm and hydra know the task by its socket; the ids are for their checks. */
    n = snprintf(req, sizeof(req), "cmd=fullinit;");
    if (jobid != NULL)
        n += snprintf(req + n, sizeof(req) - (size_t)n, "pmijobid=%.*s;",
                      WEFT_KVS_NAME_MAX - 1, jobid);
    if (rank_env != NULL)
        n += snprintf(req + n, sizeof(req) - (size_t)n, "pmirank=%.20s;", rank_env);
    snprintf(req + n, sizeof(req) - (size_t)n, "threaded=FALSE;");
    WEFT_CHECK(call(kvs, req, "fullinit", "fullinit-response", resp, sizeof(resp)));
    WEFT_CHECK(int_field(kvs, resp, "rank", "fullinit", &rank));
    WEFT_CHECK(int_field(kvs, resp, "size", "fullinit", &size));
    if (size < 1 || rank >= size)
        return WEFT_ERROR(WEFT_ERR_REMOTE, "PMI-2: fullinit gave rank %ld of size %ld", rank,
                          size);
    if (rank_env != NULL && atol(rank_env) != rank)
        return WEFT_ERROR(WEFT_ERR_REMOTE, "PMI-2: fullinit gave rank %ld but PMI_RANK=%s",
                          rank, rank_env);
    kvs->rank = (int)rank;
    kvs->nranks = (int)size;
    kvs->keylen_max = PMI2_KEYLEN_MAX;
    kvs->vallen_max = PMI2_VALLEN_MAX;
    snprintf(kvs->name, sizeof(kvs->name), "%s", jobid != NULL ? jobid : "");
    return WEFT_OK;
}

weft_result_t weft_kvs_pmi_open(struct weft_kvs *kvs)
{
    const char *text = getenv("PMI_FD");
    char *end;
    long fd;

    if (text == NULL)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "%s: PMI_FD is not set", proto(kvs));
    errno = 0;
    fd = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || fd < 0 || fd > INT_MAX)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "PMI_FD=%s is not a file descriptor number",
                          text);
    if (fcntl((int)fd, F_GETFD) < 0)
        return WEFT_ERROR_ERRNO(WEFT_ERR_INVALID_ARG, "fcntl",
                                "PMI_FD=%s is not an open file descriptor in this process", text);
    kvs->fd = (int)fd;
    kvs->rlen = 0;
    /* Programs this rank starts must not talk to our process manager in our name. */
    (void)fcntl(kvs->fd, F_SETFD, FD_CLOEXEC);
    weft_result_t res = pmi_init(kvs);
    if (res == WEFT_OK)
        res = kvs->kind == WEFT_KVS_PMI2 ? pmi2_open(kvs) : pmi1_open(kvs);
    if (res != WEFT_OK) {
        /* The caller closes the connection; the server is out of step, skip finalize. */
        kvs->failed = true;
        weft_error_trace(__FILE__, __LINE__, res);
        return res;
    }
    WEFT_INFO(BOOT, "%s on PMI_FD=%d: rank %d of %d, %s %s, keys up to %zu, values up to %zu",
              proto(kvs), kvs->fd, kvs->rank, kvs->nranks,
              kvs->kind == WEFT_KVS_PMI2 ? "jobid" : "kvsname", kvs->name, kvs->keylen_max,
              kvs->vallen_max);
    return WEFT_OK;
}

weft_result_t weft_kvs_pmi_put(struct weft_kvs *kvs, const char *key, const char *value)
{
    size_t len = strlen(key) + strlen(value) + WEFT_KVS_NAME_MAX + 64;
    char *req = malloc(len), resp[512];

    if (req == NULL)
        return WEFT_ERROR(WEFT_ERR_NO_MEMORY, "%s: no memory for put", proto(kvs));
    if (kvs->kind == WEFT_KVS_PMI2)
        snprintf(req, len, "cmd=kvs-put;key=%s;value=%s;", key, value);
    else
        snprintf(req, len, "cmd=put kvsname=%s key=%s value=%s\n", kvs->name, key, value);
    weft_result_t res = call(kvs, req, "put", kvs->kind == WEFT_KVS_PMI2 ? "kvs-put-response"
                                                                         : "put_result",
                             resp, sizeof(resp));
    free(req);
    return res;
}

weft_result_t weft_kvs_pmi_fence(struct weft_kvs *kvs)
{
    char resp[512];

    if (kvs->kind == WEFT_KVS_PMI2)
        return call(kvs, "cmd=kvs-fence;", "kvs-fence", "kvs-fence-response", resp,
                    sizeof(resp));
    return call(kvs, "cmd=barrier_in\n", "barrier_in", "barrier_out", resp, sizeof(resp));
}

weft_result_t weft_kvs_pmi_get(struct weft_kvs *kvs, int src, const char *key, char *value,
                               size_t cap)
{
    char req[WEFT_KVS_NAME_MAX + 192], resp[4096], found[16];

    if (kvs->kind == WEFT_KVS_PMI2)
        snprintf(req, sizeof(req), "cmd=kvs-get;srcid=%d;key=%.128s;", src, key);
    else
        snprintf(req, sizeof(req), "cmd=get kvsname=%s key=%.128s\n", kvs->name, key);
    WEFT_CHECK(call(kvs, req, "get", kvs->kind == WEFT_KVS_PMI2 ? "kvs-get-response"
                                                                : "get_result",
                    resp, sizeof(resp)));
    if (kvs->kind == WEFT_KVS_PMI2 && field(kvs, resp, "found", found, sizeof(found)) &&
        strcmp(found, "TRUE") != 0)
        return WEFT_ERROR(WEFT_ERR_REMOTE,
                          "PMI-2: key %s of rank %d is not in the key-value space (found=%s)",
                          key, src, found);
    if (!field(kvs, resp, "value", value, cap))
        return WEFT_ERROR(WEFT_ERR_REMOTE,
                          "%s: the answer to get of key %s (rank %d) has no value of at most "
                          "%zu characters",
                          proto(kvs), key, src, cap - 1);
    return WEFT_OK;
}

/* Finalize is a courtesy to the process manager: it never raises (that would overwrite the
 * error the caller is about to report), and after a failure it is skipped, since a server
 * that stopped answering would only add another wait. */
void weft_kvs_pmi_close(struct weft_kvs *kvs)
{
    /* PMI-2's frame: "cmd=finalize;" is 13 bytes. A wrong length would stall the server's
     * reader for every task it serves, not only ours. */
    const char *req = kvs->kind == WEFT_KVS_PMI2 ? "13    cmd=finalize;" : "cmd=finalize\n";
    double wait = weft_config_double(WEFT_CFG_TIMEOUT);
    double deadline = weft_boot_now() + (wait < FINALIZE_WAIT_S ? wait : FINALIZE_WAIT_S);
    size_t len = strlen(req);

    if (!kvs->failed && send(kvs->fd, req, len, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)len) {
        /* Wait for the acknowledgement, so the server has seen finalize before we hang up. */
        while (memmem(kvs->rbuf, kvs->rlen, "finalize", 8) == NULL &&
               kvs->rlen < sizeof(kvs->rbuf)) {
            struct pollfd pfd = { .fd = kvs->fd, .events = POLLIN };
            if (poll(&pfd, 1, weft_boot_ms_left(deadline)) <= 0)
                break;
            ssize_t k = recv(kvs->fd, kvs->rbuf + kvs->rlen, sizeof(kvs->rbuf) - kvs->rlen,
                             MSG_DONTWAIT);
            if (k <= 0 && !(k < 0 && (errno == EAGAIN || errno == EINTR)))
                break;
            if (k > 0)
                kvs->rlen += (size_t)k;
        }
        WEFT_TRACE(BOOT, "%s finalize %s", proto(kvs),
                   memmem(kvs->rbuf, kvs->rlen, "finalize", 8) ? "acknowledged"
                                                               : "not acknowledged (ignored)");
    }
    close(kvs->fd);
    kvs->fd = -1;
}
