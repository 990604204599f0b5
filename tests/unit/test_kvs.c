/*
 * test_kvs.c - unit tests of the key-value exchange: which protocol the environment offers,
 * and the PMI-1/PMI-2 clients against a scripted one-rank server thread on a socketpair.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/config.h"
#include "core/clock.h"
#include "core/error.h"
#include "launcher/kvs.h"
#include "launcher/kvs_pmi.h"

/* One step of a script: the request must contain `expect`; the server then sends `reply`
 * verbatim (PMI-2 frames included), or hangs up (CLOSE), or stays silent (NULL). */
#define CLOSE ((const char *)1)
struct step {
    const char *expect;
    const char *reply;
};

struct server {
    int fd;
    const struct step *steps;
    int nsteps;
    int done;       /* steps matched */
    char bad[256];  /* the first request that did not match, if any */
    pthread_t thread;
};

static void *serve(void *arg)
{
    struct server *s = arg;
    char buf[4096];
    size_t len = 0;

    for (int i = 0; i < s->nsteps; i++) {
        /* Read until the expected text shows up (requests may arrive in pieces). */
        while (memmem(buf, len, s->steps[i].expect, strlen(s->steps[i].expect)) == NULL) {
            ssize_t k = recv(s->fd, buf + len, sizeof(buf) - len - 1, 0);
            if (k <= 0) {
                buf[len] = '\0';
                snprintf(s->bad, sizeof(s->bad), "step %d: wanted %.60s, got %.120s", i,
                         s->steps[i].expect, buf);
                return NULL;
            }
            len += (size_t)k;
        }
        len = 0;
        s->done++;
        if (s->steps[i].reply == CLOSE) {
            close(s->fd);
            s->fd = -1;
            return NULL;
        }
        if (s->steps[i].reply == NULL)
            return NULL; /* silent: the fd stays open until the test ends */
        if (send(s->fd, s->steps[i].reply, strlen(s->steps[i].reply), MSG_NOSIGNAL) < 0)
            return NULL;
    }
    return NULL;
}

/* Starts a scripted server and points PMI_FD at the client's end. */
static int start(struct server *s, const struct step *steps, int n, int version)
{
    int sv[2];
    char text[16];

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    *s = (struct server){ .fd = sv[0], .steps = steps, .nsteps = n };
    snprintf(text, sizeof(text), "%d", sv[1]);
    setenv("PMI_FD", text, 1);
    setenv("PMI_RANK", "0", 1);
    setenv("PMI_SIZE", "1", 1);
    unsetenv("PMIX_RANK");
    unsetenv("SLURM_MPI_TYPE");
    if (version == 2)
        setenv("PMI_JOBID", "7.0", 1);
    else
        unsetenv("PMI_JOBID");
    assert_int_equal(pthread_create(&s->thread, NULL, serve, s), 0);
    return sv[1];
}

static void finish(struct server *s)
{
    pthread_join(s->thread, NULL);
    if (s->fd >= 0)
        close(s->fd);
    if (s->bad[0] != '\0')
        fail_msg("%s", s->bad);
}

static void clear_env(void)
{
    unsetenv("PMI_FD");
    unsetenv("PMI_RANK");
    unsetenv("PMI_SIZE");
    unsetenv("PMI_JOBID");
    unsetenv("PMIX_RANK");
    unsetenv("SLURM_MPI_TYPE");
}

/* The PMI-1 opening every PMI-1 script starts with (a macro: clang wants constants). */
#define PMI1_INIT                                                                            \
    { "cmd=init pmi_version=1 pmi_subversion=1\n",                                           \
      "cmd=response_to_init pmi_version=1 pmi_subversion=1 rc=0\n" },                        \
    { "cmd=get_maxes\n", "cmd=maxes kvsname_max=256 keylen_max=64 vallen_max=9\n" },         \
    { "cmd=get_my_kvsname\n", "cmd=my_kvsname kvsname=kvs_42_0\n" }

/* ---- which protocol -------------------------------------------------------------------- */

/* Serves `script` as PMI-`version`, then checks a put/fence/get round trip of one value by a
 * 1-rank job and that the client went through every step. */
static void round_trip(const struct step *script, int nsteps, int version, const char *protocol,
                       const char *key, const uint8_t *value, size_t len)
{
    uint8_t got[64] = { 0 };
    struct server s;
    struct weft_kvs *kvs;
    int rank = -1, n = -1;

    start(&s, script, nsteps, version);
    assert_int_equal(weft_kvs_open(&kvs, &rank, &n), WEFT_OK);
    assert_string_equal(weft_kvs_protocol(kvs), protocol);
    assert_int_equal(rank, 0);
    assert_int_equal(n, 1);
    assert_int_equal(weft_kvs_put(kvs, key, value, len), WEFT_OK);
    assert_int_equal(weft_kvs_fence(kvs), WEFT_OK);
    assert_int_equal(weft_kvs_get(kvs, 0, key, got, len), WEFT_OK);
    assert_memory_equal(got, value, len);
    weft_kvs_close(kvs);
    finish(&s);
    assert_int_equal(s.done, nsteps);
    clear_env();
}

static void test_available(void **state)
{
    (void)state;
    clear_env();
    assert_null(weft_kvs_available());
    setenv("PMI_FD", "5", 1);
    assert_string_equal(weft_kvs_available(), "PMI-1");
    setenv("SLURM_MPI_TYPE", "pmi2", 1);
    assert_string_equal(weft_kvs_available(), "PMI-2");
    unsetenv("SLURM_MPI_TYPE");
    setenv("PMI_JOBID", "3.0", 1);
    assert_string_equal(weft_kvs_available(), "PMI-2");
    setenv("PMIX_RANK", "0", 1);
    /* PMIx wins where it was built; without libpmix, PMI_FD still serves. */
    assert_string_equal(weft_kvs_available(), weft_kvs_pmix_built() ? "PMIx" : "PMI-2");
    unsetenv("PMI_FD");
    unsetenv("PMI_JOBID");
    if (weft_kvs_pmix_built())
        assert_string_equal(weft_kvs_available(), "PMIx");
    else
        assert_null(weft_kvs_available());
    clear_env();
}

static void test_no_service_is_clear(void **state)
{
    struct weft_kvs *kvs = (void *)1;
    int rank, n;

    (void)state;
    clear_env();
    assert_int_equal(weft_kvs_open(&kvs, &rank, &n), WEFT_ERR_INVALID_ARG);
    assert_null(kvs);
    assert_non_null(strstr(weft_error_message(), "PMI_FD"));
    setenv("PMI_FD", "987", 1);
    setenv("PMI_RANK", "0", 1);
    setenv("PMI_SIZE", "1", 1);
    assert_int_equal(weft_kvs_open(&kvs, &rank, &n), WEFT_ERR_INVALID_ARG);
    assert_non_null(strstr(weft_error_message(), "PMI_FD=987"));
    clear_env();
}

/* ---- PMI-1 ----------------------------------------------------------------------------- */

/* A 6-byte value is 12 hex digits; with vallen_max=9 that is parts of 8 and 4. */
static void test_pmi1_split_values(void **state)
{
    static const struct step script[] = {
        PMI1_INIT,
        { "cmd=put kvsname=kvs_42_0 key=weft-id-0-0 value=0102a0b0\n",
          "cmd=put_result rc=0 msg=success\n" },
        { "cmd=put kvsname=kvs_42_0 key=weft-id-0-1 value=c0d0\n",
          "cmd=put_result rc=0 msg=success\n" },
        { "cmd=barrier_in\n", "cmd=barrier_out\n" },
        { "cmd=get kvsname=kvs_42_0 key=weft-id-0-0\n",
          "cmd=get_result rc=0 msg=success value=0102a0b0\n" },
        { "cmd=get kvsname=kvs_42_0 key=weft-id-0-1\n",
          "cmd=get_result rc=0 msg=success value=c0d0\n" },
        { "cmd=finalize\n", "cmd=finalize_ack\n" },
    };
    const uint8_t value[6] = { 0x01, 0x02, 0xa0, 0xb0, 0xc0, 0xd0 };

    (void)state;
    round_trip(script, (int)(sizeof(script) / sizeof(script[0])), 1, "PMI-1", "id", value,
               sizeof(value));
}

static void test_pmi1_refusal_is_remote(void **state)
{
    static const struct step script[] = {
        PMI1_INIT,
        { "cmd=put ", "cmd=put_result rc=-1 msg=duplicate_key\n" },
    };
    const uint8_t value[2] = { 1, 2 };
    struct server s;
    struct weft_kvs *kvs;
    int rank, n;

    (void)state;
    start(&s, script, 4, 1);
    assert_int_equal(weft_kvs_open(&kvs, &rank, &n), WEFT_OK);
    assert_int_equal(weft_kvs_put(kvs, "id", value, sizeof(value)), WEFT_ERR_REMOTE);
    assert_non_null(strstr(weft_error_message(), "rc=-1"));
    assert_non_null(strstr(weft_error_message(), "duplicate_key"));
    weft_kvs_close(kvs); /* skips finalize: the script has none, and close must not wait */
    finish(&s);
    clear_env();
}

static void test_pmi1_hangup_is_remote(void **state)
{
    static const struct step script[] = {
        PMI1_INIT,
        { "cmd=barrier_in\n", CLOSE },
    };
    struct server s;
    struct weft_kvs *kvs;
    int rank, n;

    (void)state;
    start(&s, script, 4, 1);
    assert_int_equal(weft_kvs_open(&kvs, &rank, &n), WEFT_OK);
    assert_int_equal(weft_kvs_fence(kvs), WEFT_ERR_REMOTE);
    assert_non_null(strstr(weft_error_message(), "closed PMI_FD"));
    assert_non_null(strstr(weft_error_message(), "barrier_in"));
    weft_kvs_close(kvs);
    finish(&s);
    clear_env();
}


static void test_silent_server_times_out(void **state)
{
    static const struct step script[] = {
        PMI1_INIT,
        { "cmd=barrier_in\n", NULL },
    };
    struct server s;
    struct weft_kvs *kvs;
    int rank, n;

    (void)state;
    setenv("WEFT_TIMEOUT", "1", 1);
    assert_int_equal(weft_config_reload(), WEFT_OK);
    start(&s, script, 4, 1);
    assert_int_equal(weft_kvs_open(&kvs, &rank, &n), WEFT_OK);
    double t0 = weft_now_s();
    assert_int_equal(weft_kvs_fence(kvs), WEFT_ERR_TIMEOUT);
    double took = weft_now_s() - t0, t1 = weft_now_s();
    assert_true(took > 0.9 && took < 3.0);
    assert_non_null(strstr(weft_error_message(), "WEFT_TIMEOUT=1"));
    weft_kvs_close(kvs);
    assert_true(weft_now_s() - t1 < 0.5); /* no second wait for finalize */
    finish(&s);
    unsetenv("WEFT_TIMEOUT");
    assert_int_equal(weft_config_reload(), WEFT_OK);
    clear_env();
}

/* A server that speaks only PMI-1 and is asked for PMI-2: the error says both. */
static void test_version_mismatch(void **state)
{
    static const struct step script[] = {
        { "cmd=init pmi_version=2 pmi_subversion=0\n",
          "cmd=response_to_init pmi_version=1 pmi_subversion=1 rc=0\n" },
    };
    struct server s;
    struct weft_kvs *kvs;
    int rank, n;

    (void)state;
    start(&s, script, 1, 2);
    assert_int_equal(weft_kvs_open(&kvs, &rank, &n), WEFT_ERR_REMOTE);
    assert_non_null(strstr(weft_error_message(), "PMI-2"));
    assert_non_null(strstr(weft_error_message(), "offers PMI version 1"));
    finish(&s);
    clear_env();
}

/* ---- PMI-2 ----------------------------------------------------------------------------- */

static void test_pmi2_framing(void **state)
{
    static const struct step script[] = {
        { "cmd=init pmi_version=2 pmi_subversion=0\n",
          "cmd=response_to_init rc=0 pmi_version=2 pmi_subversion=0\n" },
        { "51    cmd=fullinit;pmijobid=7.0;pmirank=0;threaded=FALSE;",
          "97    cmd=fullinit-response;rc=0;pmi-version=2;pmi-subversion=0;rank=0;size=1;"
          "appnum=-1;debugged=FALSE;" },
        { "41    cmd=kvs-put;key=weft-ab-0-0;value=00ff7f;", "26    cmd=kvs-put-response;rc=0;" },
        { "14    cmd=kvs-fence;", "28    cmd=kvs-fence-response;rc=0;" },
        { "36    cmd=kvs-get;srcid=0;key=weft-ab-0-0;",
          "50    cmd=kvs-get-response;rc=0;found=TRUE;value=00ff7f;" },
        { "13    cmd=finalize;", "27    cmd=finalize-response;rc=0;" },
    };
    const uint8_t value[3] = { 0x00, 0xff, 0x7f };

    (void)state;
    round_trip(script, 6, 2, "PMI-2", "ab", value, sizeof(value));
}

static void test_pmi2_refusal_quotes_errmsg(void **state)
{
    static const struct step script[] = {
        { "cmd=init pmi_version=2", "cmd=response_to_init rc=0 pmi_version=2 pmi_subversion=0\n" },
        { "cmd=fullinit;", "42    cmd=fullinit-response;rc=7;errmsg=no;;way;" },
    };
    struct server s;
    struct weft_kvs *kvs;
    int rank, n;

    (void)state;
    start(&s, script, 2, 2);
    assert_int_equal(weft_kvs_open(&kvs, &rank, &n), WEFT_ERR_REMOTE);
    /* ";;" is an escaped ';' inside a PMI-2 value. */
    assert_non_null(strstr(weft_error_message(), "rc=7 (no;way)"));
    finish(&s);
    clear_env();
}

static void test_bad_keys_and_sizes(void **state)
{
    static const struct step script[] = { PMI1_INIT };
    uint8_t big[WEFT_KVS_VALUE_MAX + 1] = { 0 };
    struct server s;
    struct weft_kvs *kvs;
    int rank, n;

    (void)state;
    start(&s, script, 3, 1);
    assert_int_equal(weft_kvs_open(&kvs, &rank, &n), WEFT_OK);
    assert_int_equal(weft_kvs_put(kvs, "has space", big, 1), WEFT_ERR_INVALID_ARG);
    assert_int_equal(weft_kvs_put(kvs, "a-b", big, 1), WEFT_ERR_INVALID_ARG);
    assert_int_equal(weft_kvs_put(kvs, "", big, 1), WEFT_ERR_INVALID_ARG);
    assert_int_equal(weft_kvs_put(kvs, "id", big, sizeof(big)), WEFT_ERR_INVALID_ARG);
    assert_int_equal(weft_kvs_get(kvs, 1, "id", big, 1), WEFT_ERR_INVALID_ARG);
    finish(&s); /* the server is done: close's finalize finds it gone and does not wait */
    weft_kvs_close(kvs);
    clear_env();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_available),
        cmocka_unit_test(test_no_service_is_clear),
        cmocka_unit_test(test_pmi1_split_values),
        cmocka_unit_test(test_pmi1_refusal_is_remote),
        cmocka_unit_test(test_pmi1_hangup_is_remote),
        cmocka_unit_test(test_silent_server_times_out),
        cmocka_unit_test(test_version_mismatch),
        cmocka_unit_test(test_pmi2_framing),
        cmocka_unit_test(test_pmi2_refusal_quotes_errmsg),
        cmocka_unit_test(test_bad_keys_and_sizes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
