/* curlev's classification of failed transfers, for the ends that the probe and fetch tests
 * cannot provoke against a real server: curl's own failures, name lookups and every local
 * shortage errno. The event glue is exercised through test_probe and test_fetch. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>

#include "steerd/curlev.h"
#include "steerd/util.h"

struct end_case {
    CURLcode rc;
    int socket_errno;
    const char *errbuf;
    enum curlev_cause cause;
    const char *label;
    const char *detail; /* NULL: no detail expected */
};

static int
setup(void **state)
{
    struct curlev_xfer *x = xcalloc(1, sizeof(*x));
    x->easy = curl_easy_init(); /* never run: its OS errno reads 0 */
    if (x->easy == NULL)
        return -1;
    *state = x;
    return 0;
}

static int
teardown(void **state)
{
    struct curlev_xfer *x = *state;
    curl_easy_cleanup(x->easy);
    free(x);
    return 0;
}

static void
check(struct curlev_xfer *x, const struct end_case *c)
{
    struct curlev_failure why;
    x->socket_errno = c->socket_errno;
    snprintf(x->errbuf, sizeof(x->errbuf), "%s", c->errbuf);
    memset(&why, 0, sizeof(why));
    curlev_xfer_classify(x, c->rc, &why);
    assert_int_equal(why.cause, c->cause);
    assert_string_equal(why.label, c->label);
    if (c->detail == NULL)
        assert_null(why.detail);
    else
        assert_string_equal(why.detail, c->detail);
}

static void
test_curlev_classify_curl_failures_are_local(void **state)
{
    const struct end_case cases[] = {
        {CURLE_OUT_OF_MEMORY, 0, "", CURLEV_CAUSE_LOCAL, "local",
         curl_easy_strerror(CURLE_OUT_OF_MEMORY)},
        {CURLE_FAILED_INIT, 0, "", CURLEV_CAUSE_LOCAL, "local",
         curl_easy_strerror(CURLE_FAILED_INIT)},
    };
    for (size_t i = 0; i < UTIL_ARRAY_LEN(cases); i++)
        check(*state, &cases[i]);
}

static void
test_curlev_classify_socket_shortage_is_local(void **state)
{
    const int local[] = {EMFILE, ENFILE, ENOBUFS, ENOMEM, EADDRNOTAVAIL};
    for (size_t i = 0; i < UTIL_ARRAY_LEN(local); i++) {
        const struct end_case connect = {CURLE_COULDNT_CONNECT, local[i], "",
                                         CURLEV_CAUSE_LOCAL,    "socket", strerror(local[i])};
        const struct end_case lookup = {CURLE_COULDNT_RESOLVE_HOST, local[i], "",
                                        CURLEV_CAUSE_LOCAL,         "socket", strerror(local[i])};
        check(*state, &connect);
        check(*state, &lookup);
    }
}

static void
test_curlev_classify_remote_failures(void **state)
{
    const struct end_case cases[] = {
        /* A socket() error that is no shortage leaves the failure the remote's. */
        {CURLE_COULDNT_CONNECT, EACCES, "", CURLEV_CAUSE_REMOTE, "connect",
         curl_easy_strerror(CURLE_COULDNT_CONNECT)},
        {CURLE_COULDNT_RESOLVE_HOST, 0, "Could not resolve host: cdn.invalid", CURLEV_CAUSE_REMOTE,
         "dns", "Could not resolve host: cdn.invalid"},
        {CURLE_UNSUPPORTED_PROTOCOL, 0, "Protocol \"file\" not supported", CURLEV_CAUSE_REMOTE,
         "unsupported protocol", "Protocol \"file\" not supported"},
        {CURLE_RECV_ERROR, 0, "Connection reset", CURLEV_CAUSE_REMOTE,
         curl_easy_strerror(CURLE_RECV_ERROR), "Connection reset"},
        {CURLE_WRITE_ERROR, 0, "", CURLEV_CAUSE_REMOTE, curl_easy_strerror(CURLE_WRITE_ERROR), ""},
    };
    for (size_t i = 0; i < UTIL_ARRAY_LEN(cases); i++)
        check(*state, &cases[i]);
}

static void
test_curlev_classify_timeouts(void **state)
{
    const struct end_case cases[] = {
        {CURLE_OPERATION_TIMEDOUT, 0, "Operation too slow. Less than 1024 bytes/sec",
         CURLEV_CAUSE_TIMEOUT, "low speed", NULL},
        {CURLE_OPERATION_TIMEDOUT, 0, "Operation timed out after 300 milliseconds",
         CURLEV_CAUSE_TIMEOUT, "timeout", "Operation timed out after 300 milliseconds"},
    };
    for (size_t i = 0; i < UTIL_ARRAY_LEN(cases); i++)
        check(*state, &cases[i]);
}

/* In a child: take every descriptor away, then classify a failed lookup that had no socket()
 * error of its own. Exits 0 when it is reported as a local shortage. */
static void
child_lookup_without_fds(struct curlev_xfer *x)
{
    int fd = open("/dev/null", O_RDONLY);
    if (fd < 0)
        _exit(20);
    close(fd);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        _exit(21);
    rl.rlim_cur = (rlim_t)fd; /* fd was the lowest free one: 0..fd-1 are all taken */
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        _exit(22);
    struct curlev_failure why;
    curlev_xfer_classify(x, CURLE_COULDNT_RESOLVE_HOST, &why);
    if (why.cause != CURLEV_CAUSE_LOCAL)
        _exit(10);
    if (strcmp(why.label, "socket") != 0 || why.detail == NULL ||
        strcmp(why.detail, strerror(EMFILE)) != 0)
        _exit(11);
    _exit(0);
}

static void
test_curlev_classify_lookup_without_fds_is_local(void **state)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        child_lookup_without_fds(*state);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* A connect that failed because the wrapper refused an internal address says so, with the
 * address, whatever else the connect reported; a refusal does not explain a failed lookup. */
static void
test_curlev_classify_denied_address(void **state)
{
    struct curlev_xfer *x = *state;
    struct curlev_failure why;
    x->denied = true;
    snprintf(x->denied_addr, sizeof(x->denied_addr), "%s", "169.254.169.254");
    x->socket_errno = 0;
    snprintf(x->errbuf, sizeof(x->errbuf), "%s", "Failed to connect");
    curlev_xfer_classify(x, CURLE_COULDNT_CONNECT, &why);
    assert_int_equal(why.cause, CURLEV_CAUSE_REMOTE);
    assert_string_equal(why.label, "address denied");
    assert_string_equal(why.detail, "169.254.169.254");
    char reason[64];
    curlev_reason_format(reason, sizeof(reason), why.label, why.detail);
    assert_string_equal(reason, "address denied: 169.254.169.254");

    curlev_xfer_classify(x, CURLE_COULDNT_RESOLVE_HOST, &why);
    assert_string_equal(why.label, "dns");

    /* another address was allowed and tried: its failure is the reason, not the refusal */
    x->opened = true;
    curlev_xfer_classify(x, CURLE_COULDNT_CONNECT, &why);
    assert_string_equal(why.label, "connect");

    /* curlev_xfer_setup copies the allow list and clears the last transfer's refusal */
    struct netaddr_cidr allow[2];
    assert_int_equal(netaddr_parse_cidr("10.0.0.0/8", &allow[0]), 0);
    assert_int_equal(netaddr_parse_cidr("fd00::/8", &allow[1]), 0);
    struct curlev_options o = {.url = "http://cdn.example.com/",
                               .user_agent = "t",
                               .timeout_ms = 1000,
                               .connect_timeout_ms = 1000,
                               .allow = allow,
                               .nallow = 2};
    assert_int_equal(curlev_xfer_setup(x, &o, NULL), 0);
    assert_false(x->denied);
    assert_false(x->opened);
    assert_string_equal(x->denied_addr, "");
    assert_int_equal(x->nallow, 2);
    assert_memory_equal(x->allow, allow, sizeof(allow));
    o.nallow = CURLEV_MAX_ALLOW + 1;
    assert_int_equal(curlev_xfer_setup(x, &o, NULL), -1);
}

static void
test_curlev_reason_format(void **state)
{
    (void)state;
    char b[20];
    curlev_reason_format(b, sizeof(b), "dns", "no such host");
    assert_string_equal(b, "dns: no such host");
    curlev_reason_format(b, sizeof(b), "timeout", NULL);
    assert_string_equal(b, "timeout");
    curlev_reason_format(b, sizeof(b), "timeout", "");
    assert_string_equal(b, "timeout");
    curlev_reason_format(b, sizeof(b), "connect", "Connection refused");
    assert_string_equal(b, "connect: Connection"); /* cut at the buffer's end */
}

int
main(void)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_curlev_classify_curl_failures_are_local, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_curlev_classify_socket_shortage_is_local, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_curlev_classify_remote_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_curlev_classify_timeouts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_curlev_classify_lookup_without_fds_is_local, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_curlev_classify_denied_address, setup, teardown),
        cmocka_unit_test(test_curlev_reason_format),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
