/*
 * weft_run.c - the weft-run launcher: starts the bootstrap root, forks N ranks with the
 * WEFT_* environment, forwards signals, tears the job down on the first failure, and
 * cleans up the shared-memory segments of ranks that died before unlinking them.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "launcher/bootstrap.h"
#include "transport/transport.h"
#include "weft.h"

#define GRACE_S 3.0
#define MAX_RANKS 4096

struct rank_proc {
    pid_t pid;
    bool alive;
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: weft-run -n N [--transport T] [--timeout SECONDS]\n"
            "                [-x NAME=VALUE]... [--] program [args...]\n"
            "Starts N ranks of `program` on this host, connected through Weft's bootstrap.\n"
            "  -n, --np N             number of ranks (1..%d)\n"
            "  --transport T          force the transport: auto, shm, verbs, ucx or tcp\n"
            "                         (WEFT_TRANSPORT; verbs and ucx when built)\n"
            "  --timeout SECONDS      bound on every wait (WEFT_TIMEOUT)\n"
            "  -x NAME=VALUE          set an environment variable in every rank\n"
            "  --local                start local ranks even inside a Slurm allocation\n"
            "  -h, --help             show this help\n"
            "  --version              show the version\n"
            "Each rank gets WEFT_RANK, WEFT_NRANKS, WEFT_LOCAL_RANK, WEFT_ROOT, WEFT_SECRET.\n"
            "Inside a Slurm allocation (SLURM_JOB_ID set, not in a job step) it runs\n"
            "`srun -n N --mpi=none program args` instead, with a fresh WEFT_SECRET; the ranks\n"
            "then find each other through Slurm's variables.\n"
            "Exit status: 0 if every rank succeeded, else the first failing rank's status\n"
            "(128+signal if it was killed); 127 if the program cannot be found.\n",
            MAX_RANKS);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Whether `prog` can be executed, searching PATH as execvp will. */
static bool program_found(const char *prog)
{
    if (strchr(prog, '/'))
        return access(prog, X_OK) == 0;
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin";
    while (*path) {
        const char *colon = strchr(path, ':');
        size_t n = colon ? (size_t)(colon - path) : strlen(path);
        char full[PATH_MAX];
        struct stat st;
        snprintf(full, sizeof(full), "%.*s/%s", (int)n, n ? path : ".", prog);
        if (stat(full, &st) == 0 && S_ISREG(st.st_mode) && access(full, X_OK) == 0)
            return true;
        path += n + (colon ? 1 : 0);
        if (!colon)
            break;
    }
    return false;
}

static const char *signame(int sig, char *buf, size_t len)
{
    const char *abbrev = sigabbrev_np(sig);
    if (abbrev)
        snprintf(buf, len, "SIG%s", abbrev);
    else
        snprintf(buf, len, "%d", sig);
    return buf;
}

/* Removes /dev/shm/weft-<pid>-* for every rank pid: segments of ranks that died early. */
static void clean_shm(const struct rank_proc *ranks, int n)
{
    DIR *d = opendir("/dev/shm");
    struct dirent *e;

    if (!d)
        return;
    while ((e = readdir(d)) != NULL) {
        for (int i = 0; i < n; i++) {
            char prefix[32];
            int len = snprintf(prefix, sizeof(prefix), "weft-%d-", (int)ranks[i].pid);
            if (strncmp(e->d_name, prefix, (size_t)len) == 0) {
                char path[PATH_MAX];
                snprintf(path, sizeof(path), "/dev/shm/%s", e->d_name);
                if (unlink(path) == 0)
                    fprintf(stderr, "weft-run: removed stale shared memory %s\n", path);
                break;
            }
        }
    }
    closedir(d);
}

static void child_exec(int rank, int nranks, pid_t pgid, pid_t parent, const sigset_t *oldmask,
                       char **argv)
{
    char num[32];

    /* Die with weft-run, even if it is SIGKILLed; if it already died, do not start. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(1);
    setpgid(0, pgid);
    snprintf(num, sizeof(num), "%d", rank);
    setenv("WEFT_RANK", num, 1);
    setenv("WEFT_LOCAL_RANK", num, 1);
    snprintf(num, sizeof(num), "%d", nranks);
    setenv("WEFT_NRANKS", num, 1);
    signal(SIGPIPE, SIG_DFL);
    sigprocmask(SIG_SETMASK, oldmask, NULL);
    execvp(argv[0], argv);
    fprintf(stderr, "weft-run: rank %d: cannot execute %s: %s\n", rank, argv[0], strerror(errno));
    _exit(127);
}

/* Whether to hand the ranks to srun: inside an allocation but not already inside a step
 * (a weft-run that srun started must start its ranks itself). */
static bool in_allocation(void)
{
    const char *job = getenv("SLURM_JOB_ID"), *step = getenv("SLURM_STEP_ID");
    return job && job[0] && !(step && step[0]);
}

/* Runs `srun -n N --mpi=none prog args` and returns its status: srun places the ranks on the
 * allocation's nodes and they rendezvous through Slurm's variables (launcher/launch.c).
 * A fresh WEFT_SECRET goes along in the environment (srun exports it), so the job does not
 * fall back to the secret derived from public job ids. */
static int run_srun(int nranks, char **prog)
{
    char num[16], hex[2 * WEFT_BOOT_SECRET_BYTES + 1], sig_name[32];
    uint8_t secret[WEFT_BOOT_SECRET_BYTES];
    sigset_t set, oldmask;
    int argc = 0, st;

    for (char **a = prog; *a; a++)
        argc++;
    char **argv = calloc((size_t)argc + 5, sizeof(*argv));
    if (!argv) {
        fprintf(stderr, "weft-run: out of memory\n");
        return 1;
    }
    if (!program_found("srun")) {
        fprintf(stderr, "weft-run: inside Slurm allocation %s but srun is not in PATH: add it, "
                        "or use --local to start the ranks on this host\n",
                getenv("SLURM_JOB_ID"));
        free(argv);
        return 127;
    }
    snprintf(num, sizeof(num), "%d", nranks);
    argv[0] = "srun";
    argv[1] = "-n";
    argv[2] = num;
    argv[3] = "--mpi=none";
    memcpy(argv + 4, prog, (size_t)argc * sizeof(*argv));
    if (sodium_init() < 0) {
        fprintf(stderr, "weft-run: libsodium failed to initialize\n");
        free(argv);
        return 1;
    }
    if (!getenv("WEFT_SECRET") || !getenv("WEFT_SECRET")[0]) {
        randombytes_buf(secret, sizeof(secret));
        sodium_bin2hex(hex, sizeof(hex), secret, sizeof(secret));
        sodium_memzero(secret, sizeof(secret));
        setenv("WEFT_SECRET", hex, 1);
        sodium_memzero(hex, sizeof(hex));
    }
    WEFT_INFO(INIT, "weft-run: inside Slurm allocation %s: running srun -n %d --mpi=none %s",
              getenv("SLURM_JOB_ID"), nranks, prog[0]);

    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGCHLD);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    sigprocmask(SIG_BLOCK, &set, &oldmask);
    fflush(stdout);
    fflush(stderr);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "weft-run: fork for srun failed: %s\n", strerror(errno));
        free(argv);
        return 1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(1);
        signal(SIGPIPE, SIG_DFL);
        sigprocmask(SIG_SETMASK, &oldmask, NULL);
        execvp(argv[0], argv);
        fprintf(stderr, "weft-run: cannot execute srun: %s\n", strerror(errno));
        _exit(127);
    }
    free(argv);
    /* srun tears the step down itself when a task fails and on SIGINT/SIGTERM; pass them on
     * and wait for it. */
    for (;;) {
        int sig = sigwaitinfo(&set, NULL);
        if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP) {
            kill(pid, sig);
            continue;
        }
        pid_t got = waitpid(pid, &st, WNOHANG);
        if (got == pid)
            break;
        if (got < 0 && errno != EINTR) {
            fprintf(stderr, "weft-run: waitpid for srun failed: %s\n", strerror(errno));
            return 1;
        }
    }
    if (WIFSIGNALED(st)) {
        fprintf(stderr, "weft-run: srun (pid %d) was killed by signal %s\n", (int)pid,
                signame(WTERMSIG(st), sig_name, sizeof(sig_name)));
        return 128 + WTERMSIG(st);
    }
    return WEXITSTATUS(st);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "np", required_argument, NULL, 'n' },  { "transport", required_argument, NULL, 't' },
        { "timeout", required_argument, NULL, 'T' }, { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },   { "local", no_argument, NULL, 'L' },
        { NULL, 0, NULL, 0 }
    };
    char root[128], secret[2 * WEFT_BOOT_SECRET_BYTES + 1];
    weft_unique_id_t id;
    int nranks = 0, c;
    bool local = false;

    while ((c = getopt_long(argc, argv, "+n:x:h", opts, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'n': {
            long v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > MAX_RANKS) {
                fprintf(stderr, "weft-run: -n wants a number of ranks in 1..%d, not \"%s\"\n",
                        MAX_RANKS, optarg);
                return 2;
            }
            nranks = (int)v;
            break;
        }
        case 't':
            if (strcmp(optarg, "auto") && !weft_transport_find(optarg)) {
                fprintf(stderr, "weft-run: --transport wants auto or a transport of this "
                                "build (weft-info --transports), not \"%s\"\n",
                        optarg);
                return 2;
            }
            setenv("WEFT_TRANSPORT", optarg, 1);
            break;
        case 'T': {
            double v = strtod(optarg, &end);
            if (*end || !(v > 0)) {
                fprintf(stderr, "weft-run: --timeout wants a positive number of seconds, not "
                                "\"%s\"\n",
                        optarg);
                return 2;
            }
            setenv("WEFT_TIMEOUT", optarg, 1);
            break;
        }
        case 'x': {
            char *eq = strchr(optarg, '=');
            if (!eq || eq == optarg) {
                fprintf(stderr, "weft-run: -x wants NAME=VALUE, not \"%s\"\n", optarg);
                return 2;
            }
            *eq = '\0';
            setenv(optarg, eq + 1, 1);
            *eq = '=';
            break;
        }
        case 'L':
            local = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("weft-run (Weft) %d.%d.%d\n", WEFT_VERSION_MAJOR, WEFT_VERSION_MINOR,
                   WEFT_VERSION_PATCH);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (nranks == 0 || optind >= argc) {
        fprintf(stderr, "weft-run: %s\n",
                nranks == 0 ? "the number of ranks (-n N) is required" : "no program given");
        usage(stderr);
        return 2;
    }
    char **prog = argv + optind;
    if (!program_found(prog[0])) {
        fprintf(stderr, "weft-run: program \"%s\" not found or not executable\n", prog[0]);
        return 127;
    }

    if (weft_config_reload() != WEFT_OK) {
        fprintf(stderr, "weft-run: %s\n", weft_error_message());
        return 1;
    }
    if (!local && in_allocation())
        return run_srun(nranks, prog);
    WEFT_INFO(INIT, "weft-run: starting %d local ranks%s", nranks,
              in_allocation() ? " (--local inside a Slurm allocation)" : "");
    if (weft_boot_root_start("127.0.0.1", &id) != WEFT_OK ||
        weft_boot_id_to_env(&id, root, sizeof(root), secret, sizeof(secret)) != WEFT_OK) {
        fprintf(stderr, "weft-run: %s\n", weft_error_message());
        return 1;
    }
    setenv("WEFT_ROOT", root, 1);
    setenv("WEFT_SECRET", secret, 1);

    /* Signals are taken synchronously with sigtimedwait: block them before the first fork so
     * none is lost; children restore the old mask before exec. */
    sigset_t set, oldmask;
    struct sigaction hup;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    /* A shell starts background jobs with SIGINT ignored, which would discard it even while
     * blocked; weft-run must still see it to forward it. SIGHUP stays ignored under nohup. */
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    if (sigaction(SIGHUP, NULL, &hup) == 0 && hup.sa_handler != SIG_IGN)
        sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, &oldmask);

    struct rank_proc *ranks = calloc((size_t)nranks, sizeof(*ranks));
    if (!ranks) {
        fprintf(stderr, "weft-run: out of memory\n");
        return 1;
    }
    pid_t self = getpid(), pgid = 0;
    int alive = 0, status_out = 0;
    bool tearing_down = false;
    double kill_at = 0;

    fflush(stdout);
    fflush(stderr);
    for (int r = 0; r < nranks; r++) {
        pid_t pid = fork();
        if (pid < 0) {
            fprintf(stderr, "weft-run: fork for rank %d failed: %s\n", r, strerror(errno));
            status_out = 1;
            tearing_down = true;
            break;
        }
        if (pid == 0)
            child_exec(r, nranks, pgid, self, &oldmask, prog);
        if (pgid == 0)
            pgid = pid;
        setpgid(pid, pgid); /* also here: whichever of parent and child runs first wins */
        ranks[r].pid = pid;
        ranks[r].alive = true;
        alive++;
    }
    if (tearing_down && pgid) {
        killpg(pgid, SIGTERM);
        kill_at = now() + GRACE_S;
    }

    while (alive > 0) {
        struct timespec wait = { 0, 200 * 1000 * 1000 };
        int sig = sigtimedwait(&set, NULL, &wait);
        if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP) {
            killpg(pgid, sig);
            continue;
        }
        int st;
        pid_t pid;
        while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
            int r = 0;
            while (r < nranks && ranks[r].pid != pid)
                r++;
            if (r == nranks || !ranks[r].alive)
                continue;
            ranks[r].alive = false;
            alive--;
            bool bad = !WIFEXITED(st) || WEXITSTATUS(st) != 0;
            if (!bad || tearing_down)
                continue;
            char name[32];
            if (WIFSIGNALED(st)) {
                fprintf(stderr, "weft-run: rank %d (pid %d) was killed by signal %s\n", r,
                        (int)pid, signame(WTERMSIG(st), name, sizeof(name)));
                status_out = 128 + WTERMSIG(st);
            } else {
                fprintf(stderr, "weft-run: rank %d (pid %d) exited with status %d\n", r,
                        (int)pid, WEXITSTATUS(st));
                status_out = WEXITSTATUS(st);
            }
            tearing_down = true;
            killpg(pgid, SIGTERM);
            kill_at = now() + GRACE_S;
        }
        if (tearing_down && alive > 0 && now() >= kill_at) {
            killpg(pgid, SIGKILL);
            kill_at = now() + GRACE_S;
        }
    }
    /* Leftover grandchildren (a rank's background processes) must not outlive the job. */
    if (pgid)
        killpg(pgid, SIGKILL);
    clean_shm(ranks, nranks);
    free(ranks);
    return status_out;
}
