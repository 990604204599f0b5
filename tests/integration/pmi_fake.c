/*
 * pmi_fake.c - a tiny process manager for tests: forks N ranks of a program, each with a
 * socketpair in PMI_FD, and serves PMI-1 (as hydra) or PMI-2 (as srun --mpi=pmi2) to them.
 *   pmi_fake [--pmi1|--pmi2] [--vallen N] [--fault CMD:MODE] [--timeout S] -n N -- prog args...
 * --fault makes the server misbehave on each rank's first request whose command is CMD (put,
 * get, fence, init, ...): MODE "rc" answers rc=-1 with a message, "close" hangs up, "silent" never
 * answers, "garble" answers nonsense. Exits with the first failing rank's status.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_RANKS 64
#define MAX_KEYS 4096
#define VAL_MAX 1024
#define KEY_MAX 64
#define BUF_MAX 8192

struct rank_conn {
    int fd;
    pid_t pid;
    bool inited;  /* the version handshake is done */
    bool fencing; /* waiting in barrier_in / kvs-fence */
    bool silent;  /* a "silent" fault hit: never answer again */
    bool faulted; /* the --fault has hit this rank */
    char buf[BUF_MAX];
    size_t len;
};

struct kv {
    char key[KEY_MAX];
    char val[VAL_MAX];
};

static int version = 1, nranks = 0;
static size_t vallen_max = VAL_MAX;
static const char *fault_cmd, *fault_mode;
static struct rank_conn ranks[MAX_RANKS];
static struct kv kvs[MAX_KEYS];
static int nkeys;

static void die(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fprintf(stderr, "pmi_fake: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    for (int r = 0; r < nranks; r++)
        if (ranks[r].pid > 0)
            kill(ranks[r].pid, SIGKILL);
    exit(3);
}

static void send_raw(struct rank_conn *c, const char *msg)
{
    size_t len = strlen(msg), off = 0;

    while (off < len) {
        ssize_t k = send(c->fd, msg + off, len - off, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return; /* the rank went away; waitpid will tell */
        off += (size_t)k;
    }
}

/* Sends an answer in the connection's syntax: a line for PMI-1 and the init, a frame for
 * PMI-2 after the init. */
static void reply(struct rank_conn *c, const char *fmt, ...)
{
    char body[BUF_MAX], frame[BUF_MAX + 8];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(body, sizeof(body), fmt, ap);
    va_end(ap);
    if (c->silent)
        return;
    if (version == 2 && c->inited) {
        snprintf(frame, sizeof(frame), "%-6zu%s", strlen(body), body);
        send_raw(c, frame);
    } else {
        snprintf(frame, sizeof(frame), "%s\n", body);
        send_raw(c, frame);
    }
}

/* A field of a request: "key=value" up to a space (PMI-1) or ';' (PMI-2). */
static bool field(const char *msg, const char *key, char *out, size_t cap, char sep)
{
    size_t klen = strlen(key);

    for (const char *p = msg; *p != '\0';) {
        if (strncmp(p, key, klen) == 0 && p[klen] == '=') {
            const char *v = p + klen + 1, *e = strchr(v, sep);
            size_t n = e != NULL ? (size_t)(e - v) : strlen(v);
            if (n >= cap)
                return false;
            memcpy(out, v, n);
            out[n] = '\0';
            return true;
        }
        const char *e = strchr(p, sep);
        if (e == NULL)
            break;
        p = e + 1;
    }
    return false;
}

static struct kv *find(const char *key)
{
    for (int i = 0; i < nkeys; i++)
        if (strcmp(kvs[i].key, key) == 0)
            return &kvs[i];
    return NULL;
}

/* Applies a --fault to this request; true when the request is consumed. */
static bool fault(struct rank_conn *c, const char *cmd, const char *resp_cmd)
{
    if (fault_cmd == NULL || c->faulted || strcmp(cmd, fault_cmd) != 0)
        return false;
    c->faulted = true;
    if (strcmp(fault_mode, "rc") == 0) {
        if (version == 2 && c->inited)
            reply(c, "cmd=%s;rc=-1;errmsg=fake server refuses %s;", resp_cmd, cmd);
        else
            reply(c, "cmd=%s rc=-1 msg=fake_server_refuses_%s", resp_cmd, cmd);
    } else if (strcmp(fault_mode, "close") == 0) {
        close(c->fd);
        c->fd = -1;
    } else if (strcmp(fault_mode, "silent") == 0) {
        c->silent = true;
    } else {
        send_raw(c, "this is not PMI\n");
    }
    return true;
}

static void fence_maybe_done(void)
{
    for (int r = 0; r < nranks; r++)
        if (ranks[r].fd >= 0 && !ranks[r].fencing)
            return;
    for (int r = 0; r < nranks; r++) {
        if (ranks[r].fd < 0)
            continue;
        ranks[r].fencing = false;
        if (version == 2)
            reply(&ranks[r], "cmd=kvs-fence-response;rc=0;");
        else
            reply(&ranks[r], "cmd=barrier_out rc=0");
    }
}

static void put(const char *key, const char *val)
{
    struct kv *kv = find(key);

    if (kv == NULL) {
        if (nkeys == MAX_KEYS)
            die("too many keys");
        kv = &kvs[nkeys++];
        snprintf(kv->key, sizeof(kv->key), "%s", key);
    }
    snprintf(kv->val, sizeof(kv->val), "%s", val);
}

static void handle_init(struct rank_conn *c, const char *line)
{
    char v[16];

    if (fault(c, "init", "response_to_init"))
        return;
    if (!field(line, "pmi_version", v, sizeof(v), ' ') || atoi(v) != version) {
        reply(c, "cmd=response_to_init pmi_version=%d pmi_subversion=0 rc=-1", version);
        return;
    }
    reply(c, "cmd=response_to_init pmi_version=%d pmi_subversion=%d rc=0", version,
          version == 1 ? 1 : 0);
    c->inited = true;
}

static void handle_pmi1(struct rank_conn *c, const char *line)
{
    char cmd[64] = "", key[256], val[VAL_MAX + 16];

    field(line, "cmd", cmd, sizeof(cmd), ' ');
    if (strcmp(cmd, "get_maxes") == 0) {
        if (!fault(c, "get_maxes", "maxes"))
            reply(c, "cmd=maxes rc=0 kvsname_max=256 keylen_max=%d vallen_max=%zu", KEY_MAX,
                  vallen_max);
    } else if (strcmp(cmd, "get_my_kvsname") == 0) {
        if (!fault(c, "get_my_kvsname", "my_kvsname"))
            reply(c, "cmd=my_kvsname rc=0 kvsname=fake_kvs_0");
    } else if (strcmp(cmd, "put") == 0) {
        if (fault(c, "put", "put_result"))
            return;
        if (!field(line, "key", key, sizeof(key), ' ') || strlen(key) >= KEY_MAX ||
            !field(line, "value", val, sizeof(val), ' ') || strlen(val) >= vallen_max)
            reply(c, "cmd=put_result rc=-1 msg=key_or_value_too_long");
        else
            put(key, val), reply(c, "cmd=put_result rc=0 msg=success");
    } else if (strcmp(cmd, "barrier_in") == 0) {
        if (fault(c, "fence", "barrier_out"))
            return;
        c->fencing = true;
        fence_maybe_done();
    } else if (strcmp(cmd, "get") == 0) {
        if (fault(c, "get", "get_result"))
            return;
        struct kv *kv = field(line, "key", key, sizeof(key), ' ') ? find(key) : NULL;
        if (kv == NULL)
            reply(c, "cmd=get_result rc=-1 msg=key_%s_not_found", key);
        else
            reply(c, "cmd=get_result rc=0 msg=success value=%s", kv->val);
    } else if (strcmp(cmd, "finalize") == 0) {
        reply(c, "cmd=finalize_ack");
    } else {
        reply(c, "cmd=%s rc=-1 msg=unknown_command", cmd);
    }
}

static void handle_pmi2(struct rank_conn *c, int rank, const char *msg)
{
    char cmd[64] = "", key[256], val[VAL_MAX + 16];

    field(msg, "cmd", cmd, sizeof(cmd), ';');
    if (strcmp(cmd, "fullinit") == 0) {
        if (!fault(c, "fullinit", "fullinit-response"))
            reply(c,
                  "cmd=fullinit-response;pmi-version=2;pmi-subversion=0;rank=%d;size=%d;"
                  "appnum=0;debugged=FALSE;pmiverbose=FALSE;rc=0;",
                  rank, nranks);
    } else if (strcmp(cmd, "kvs-put") == 0) {
        if (fault(c, "put", "kvs-put-response"))
            return;
        if (!field(msg, "key", key, sizeof(key), ';') || strlen(key) >= KEY_MAX ||
            !field(msg, "value", val, sizeof(val), ';') || strlen(val) >= vallen_max)
            reply(c, "cmd=kvs-put-response;rc=-1;errmsg=key or value too long;");
        else
            put(key, val), reply(c, "cmd=kvs-put-response;rc=0;");
    } else if (strcmp(cmd, "kvs-fence") == 0) {
        if (fault(c, "fence", "kvs-fence-response"))
            return;
        c->fencing = true;
        fence_maybe_done();
    } else if (strcmp(cmd, "kvs-get") == 0) {
        if (fault(c, "get", "kvs-get-response"))
            return;
        struct kv *kv = field(msg, "key", key, sizeof(key), ';') ? find(key) : NULL;
        if (kv == NULL)
            reply(c, "cmd=kvs-get-response;rc=0;found=FALSE;");
        else
            reply(c, "cmd=kvs-get-response;rc=0;found=TRUE;value=%s;", kv->val);
    } else if (strcmp(cmd, "finalize") == 0) {
        reply(c, "cmd=finalize-response;rc=0;");
    } else {
        reply(c, "cmd=%s-response;rc=-1;errmsg=unknown command;", cmd);
    }
}

/* Handles every complete message in the rank's buffer. */
static void serve(int rank)
{
    struct rank_conn *c = &ranks[rank];

    for (;;) {
        char msg[BUF_MAX];
        size_t used;
        if (version == 1 || !c->inited) {
            char *nl = memchr(c->buf, '\n', c->len);
            if (nl == NULL)
                return;
            used = (size_t)(nl - c->buf) + 1;
            memcpy(msg, c->buf, used - 1);
            msg[used - 1] = '\0';
        } else {
            if (c->len < 6)
                return;
            char digits[7];
            memcpy(digits, c->buf, 6);
            digits[6] = '\0';
            size_t n = (size_t)atol(digits);
            if (n >= sizeof(msg))
                die("rank %d sent a frame of %zu bytes", rank, n);
            if (c->len < 6 + n)
                return;
            memcpy(msg, c->buf + 6, n);
            msg[n] = '\0';
            used = 6 + n;
        }
        memmove(c->buf, c->buf + used, c->len - used);
        c->len -= used;
        if (!c->inited)
            handle_init(c, msg);
        else if (version == 1)
            handle_pmi1(c, msg);
        else
            handle_pmi2(c, rank, msg);
        if (c->fd < 0)
            return;
    }
}

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    double limit = 60;
    int i;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--pmi1") == 0)
            version = 1;
        else if (strcmp(argv[i], "--pmi2") == 0)
            version = 2;
        else if (strcmp(argv[i], "--vallen") == 0 && i + 1 < argc)
            vallen_max = (size_t)atol(argv[++i]);
        else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc)
            limit = atof(argv[++i]);
        else if (strcmp(argv[i], "-n") == 0 && i + 1 < argc)
            nranks = atoi(argv[++i]);
        else if (strcmp(argv[i], "--fault") == 0 && i + 1 < argc) {
            static char spec[64];
            snprintf(spec, sizeof(spec), "%s", argv[++i]);
            char *colon = strchr(spec, ':');
            if (colon == NULL)
                die("--fault wants CMD:MODE");
            *colon = '\0';
            fault_cmd = spec;
            fault_mode = colon + 1;
        } else if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        } else {
            break;
        }
    }
    if (i >= argc || nranks < 1 || nranks > MAX_RANKS || vallen_max > VAL_MAX) {
        fprintf(stderr, "usage: pmi_fake [--pmi1|--pmi2] [--vallen N<=%d] [--fault CMD:MODE] "
                        "[--timeout S] -n N -- prog args...\n", VAL_MAX);
        return 2;
    }
    for (int r = 0; r < nranks; r++) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
            die("socketpair: %s", strerror(errno));
        pid_t pid = fork();
        if (pid < 0)
            die("fork: %s", strerror(errno));
        if (pid == 0) {
            char text[32];
            int fd = dup(sv[1]); /* without close-on-exec: the rank inherits it */
            snprintf(text, sizeof(text), "%d", fd);
            setenv("PMI_FD", text, 1);
            snprintf(text, sizeof(text), "%d", r);
            setenv("PMI_RANK", text, 1);
            snprintf(text, sizeof(text), "%d", nranks);
            setenv("PMI_SIZE", text, 1);
            if (version == 2)
                setenv("PMI_JOBID", "fake.0", 1);
            else
                unsetenv("PMI_JOBID");
            unsetenv("PMIX_RANK");
            unsetenv("SLURM_MPI_TYPE");
            execvp(argv[i], argv + i);
            fprintf(stderr, "pmi_fake: cannot run %s: %s\n", argv[i], strerror(errno));
            _exit(127);
        }
        close(sv[1]);
        ranks[r] = (struct rank_conn){ .fd = sv[0], .pid = pid };
    }
    int status = 0, left = nranks;
    double end = now() + limit;
    while (left > 0) {
        struct pollfd pfd[MAX_RANKS];
        int map[MAX_RANKS], n = 0;
        for (int r = 0; r < nranks; r++) {
            if (ranks[r].fd >= 0) {
                pfd[n] = (struct pollfd){ .fd = ranks[r].fd, .events = POLLIN };
                map[n++] = r;
            }
        }
        if (now() > end)
            die("ranks still running after %g s", limit);
        int rc = poll(pfd, (nfds_t)n, 100);
        if (rc < 0 && errno != EINTR)
            die("poll: %s", strerror(errno));
        for (int k = 0; rc > 0 && k < n; k++) {
            struct rank_conn *c = &ranks[map[k]];
            if (pfd[k].revents == 0)
                continue;
            ssize_t got = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
            if (got <= 0) {
                close(c->fd);
                c->fd = -1;
                fence_maybe_done();
                continue;
            }
            c->len += (size_t)got;
            serve(map[k]);
        }
        for (int r = 0; r < nranks; r++) {
            int st;
            if (ranks[r].pid > 0 && waitpid(ranks[r].pid, &st, WNOHANG) == ranks[r].pid) {
                ranks[r].pid = 0;
                left--;
                if (status == 0 && !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
                    status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
                    fprintf(stderr, "pmi_fake: rank %d failed (status %d)\n", r, status);
                }
            }
        }
    }
    return status;
}
