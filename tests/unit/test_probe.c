/* probe against a real HTTP server in this process: the server runs on its own thread and
 * event_base (evhttp for well-behaved answers, raw listeners for hangs and slow drips); the
 * prober runs on the test's own base. Deadlines are safety nets, not timing assertions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/thread.h>

#include "steerd/cfg.h"
#include "steerd/health.h"
#include "steerd/probe.h"
#include "steerd/util.h"

#define BIG_BODY_BYTES (200u * 1024)
#define DEADLINE_MS 5000

/* ---- the test server ---- */

struct server;

struct conn {
    struct server *srv;
    evutil_socket_t fd;
    bool drip;
    bool answered;
    char tail[4]; /* last bytes read, to find the end of the request head */
    struct event *rd;
    struct event *tick;
    struct conn *prev, *next;
};

struct server {
    struct event_base *base;
    pthread_t thread;
    struct evhttp *http_main;  /* /ok /503 /redirect /big */
    struct evhttp *http_count; /* counts every request it receives */
    struct evconnlistener *hang_l, *drip_l;
    uint16_t port_main, port_count, port_hang, port_drip;
    atomic_int hits_count;
    atomic_int hang_accepted;
    atomic_int drip_accepted;
    pthread_mutex_t mu;
    char user_agent[128]; /* of the last /ok request, under mu */
    struct conn *conns;   /* server thread only, until joined */
    char *big;
};

static uint16_t
fd_port(evutil_socket_t fd)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);
    if (getsockname(fd, (struct sockaddr *)&sin, &len) != 0)
        return 0;
    return ntohs(sin.sin_port);
}

static void
conn_free(struct conn *c)
{
    struct server *s = c->srv;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    if (c->rd != NULL)
        event_free(c->rd);
    if (c->tick != NULL)
        event_free(c->tick);
    evutil_closesocket(c->fd);
    free(c);
}

static void
on_drip_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct conn *c = arg;
    if (send(fd, "x", 1, MSG_NOSIGNAL) != 1)
        conn_free(c);
}

static void
on_conn_read(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct conn *c = arg;
    char b[4096];
    ssize_t n = recv(fd, b, sizeof(b), 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        conn_free(c);
        return;
    }
    if (n < 0 || !c->drip || c->answered)
        return; /* a hanging connection reads and never answers */
    for (ssize_t i = 0; i < n; i++) {
        memmove(c->tail, c->tail + 1, 3);
        c->tail[3] = b[i];
        if (memcmp(c->tail, "\r\n\r\n", 4) == 0) {
            static const char head[] = "HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n";
            c->answered = true;
            if (send(fd, head, sizeof(head) - 1, MSG_NOSIGNAL) < 0) {
                conn_free(c);
                return;
            }
            struct timeval half = {0, 500 * 1000};
            c->tick = event_new(c->srv->base, fd, EV_PERSIST, on_drip_tick, c);
            event_add(c->tick, &half);
            return;
        }
    }
}

static void
accept_conn(struct server *s, evutil_socket_t fd, bool drip)
{
    struct conn *c = xcalloc(1, sizeof(*c));
    c->srv = s;
    c->fd = fd;
    c->drip = drip;
    evutil_make_socket_nonblocking(fd);
    c->rd = event_new(s->base, fd, EV_READ | EV_PERSIST, on_conn_read, c);
    event_add(c->rd, NULL);
    c->next = s->conns;
    if (s->conns != NULL)
        s->conns->prev = c;
    s->conns = c;
}

static void
on_hang_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
               void *arg)
{
    (void)l;
    (void)sa;
    (void)len;
    struct server *s = arg;
    accept_conn(s, fd, false);
    atomic_fetch_add(&s->hang_accepted, 1);
}

static void
on_drip_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
               void *arg)
{
    (void)l;
    (void)sa;
    (void)len;
    struct server *s = arg;
    accept_conn(s, fd, true);
    atomic_fetch_add(&s->drip_accepted, 1);
}

static void
reply(struct evhttp_request *req, int code, const char *reason, const void *body, size_t len)
{
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, body, len);
    evhttp_send_reply(req, code, reason, b);
    evbuffer_free(b);
}

static void
on_main_request(struct evhttp_request *req, void *arg)
{
    struct server *s = arg;
    const char *path = evhttp_request_get_uri(req);
    if (strcmp(path, "/ok") == 0) {
        const char *ua = evhttp_find_header(evhttp_request_get_input_headers(req), "User-Agent");
        pthread_mutex_lock(&s->mu);
        snprintf(s->user_agent, sizeof(s->user_agent), "%s", ua ? ua : "");
        pthread_mutex_unlock(&s->mu);
        reply(req, 200, "OK", "hello", 5);
    } else if (strcmp(path, "/503") == 0) {
        reply(req, 503, "Service Unavailable", "busy", 4);
    } else if (strcmp(path, "/redirect") == 0) {
        char loc[64];
        snprintf(loc, sizeof(loc), "http://127.0.0.1:%u/landing", (unsigned)s->port_count);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Location", loc);
        reply(req, 302, "Found", "", 0);
    } else if (strcmp(path, "/big") == 0) {
        reply(req, 200, "OK", s->big, BIG_BODY_BYTES);
    } else {
        reply(req, 404, "Not Found", "", 0);
    }
}

static void
on_count_request(struct evhttp_request *req, void *arg)
{
    struct server *s = arg;
    atomic_fetch_add(&s->hits_count, 1);
    reply(req, 200, "OK", "counted", 7);
}

static void *
server_main(void *arg)
{
    struct server *s = arg;
    event_base_dispatch(s->base);
    return NULL;
}

static struct evhttp *
http_on_ephemeral(struct server *s, void (*cb)(struct evhttp_request *, void *), uint16_t *port)
{
    struct evhttp *h = evhttp_new(s->base);
    assert_non_null(h);
    evhttp_set_gencb(h, cb, s);
    struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(h, "127.0.0.1", 0);
    assert_non_null(bs);
    *port = fd_port(evhttp_bound_socket_get_fd(bs));
    assert_int_not_equal(*port, 0);
    return h;
}

static struct evconnlistener *
raw_on_ephemeral(struct server *s, evconnlistener_cb cb, uint16_t *port)
{
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct evconnlistener *l =
        evconnlistener_new_bind(s->base, cb, s, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 16,
                                (struct sockaddr *)&sin, sizeof(sin));
    assert_non_null(l);
    *port = fd_port(evconnlistener_get_fd(l));
    assert_int_not_equal(*port, 0);
    return l;
}

static struct server *
server_start(void)
{
    struct server *s = xcalloc(1, sizeof(*s));
    pthread_mutex_init(&s->mu, NULL);
    s->big = xmalloc(BIG_BODY_BYTES);
    memset(s->big, 'b', BIG_BODY_BYTES);
    s->base = event_base_new();
    assert_non_null(s->base);
    s->http_main = http_on_ephemeral(s, on_main_request, &s->port_main);
    s->http_count = http_on_ephemeral(s, on_count_request, &s->port_count);
    s->hang_l = raw_on_ephemeral(s, on_hang_accept, &s->port_hang);
    s->drip_l = raw_on_ephemeral(s, on_drip_accept, &s->port_drip);
    assert_int_equal(pthread_create(&s->thread, NULL, server_main, s), 0);
    return s;
}

static void
server_stop(struct server *s)
{
    event_base_loopexit(s->base, NULL);
    pthread_join(s->thread, NULL);
    while (s->conns != NULL)
        conn_free(s->conns);
    evconnlistener_free(s->hang_l);
    evconnlistener_free(s->drip_l);
    evhttp_free(s->http_main);
    evhttp_free(s->http_count);
    event_base_free(s->base);
    pthread_mutex_destroy(&s->mu);
    free(s->big);
    free(s);
}

/* A port nothing listens on: bind, read the port, close. */
static uint16_t
closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    uint16_t port = fd_port(fd);
    close(fd);
    assert_int_not_equal(port, 0);
    return port;
}

/* ---- the prober side ---- */

struct fake_cfg {
    struct cfg cfg;
    struct netaddr_cidr allow[1];
    struct cfg_cdn cdns[4];
    char ids[4][CFG_ID_MAX + 1];
    char urls[4][256];
};

static struct cfg_probe
default_probe(void)
{
    struct cfg_probe p = {
        .interval_ms = 10000, /* one probe per test unless a test asks for more */
        .timeout_ms = 2000,
        .rise = 2,
        .fall = 2,
        .max_body_bytes = 64 * 1024,
        .low_speed_bytes_per_s = 0,
        .low_speed_time_ms = 1000,
    };
    return p;
}

static void
fake_init(struct fake_cfg *f)
{
    memset(f, 0, sizeof(*f));
    f->cfg.cdns = f->cdns;
    /* The test servers are on loopback, which a configuration must allow explicitly. */
    assert_int_equal(netaddr_parse_cidr("127.0.0.0/8", &f->allow[0]), 0);
    f->cfg.allow_targets = f->allow;
    f->cfg.nallow_targets = 1;
}

static void
fake_add(struct fake_cfg *f, const char *id, const char *url, struct cfg_probe pr)
{
    size_t i = f->cfg.ncdns++;
    assert_true(i < 4);
    snprintf(f->ids[i], sizeof(f->ids[i]), "%s", id);
    f->cdns[i].id = f->ids[i];
    if (url != NULL) {
        snprintf(f->urls[i], sizeof(f->urls[i]), "%s", url);
        pr.url = f->urls[i];
    } else {
        pr.url = NULL;
    }
    f->cdns[i].probe = pr;
}

struct run;
typedef bool (*cond_fn)(const struct run *r);

struct run {
    struct event_base *base;
    struct server *srv;
    struct probe *p;
    int results;
    int per_id[2]; /* "a", "b" */
    int unexpected_ids;
    struct health_sample last;
    char last_id[CFG_ID_MAX + 1];
    char last_error[160];
    cond_fn until;
    int target;
    bool timed_out;
};

static void
on_result(void *arg, const char *id, const struct health_sample *s)
{
    struct run *r = arg;
    r->results++;
    if (strcmp(id, "a") == 0)
        r->per_id[0]++;
    else if (strcmp(id, "b") == 0)
        r->per_id[1]++;
    else
        r->unexpected_ids++;
    r->last = *s;
    snprintf(r->last_id, sizeof(r->last_id), "%s", id);
    snprintf(r->last_error, sizeof(r->last_error), "%s", s->error ? s->error : "");
    r->last.error = s->error ? r->last_error : NULL;
    if (r->until != NULL && r->until(r))
        event_base_loopbreak(r->base);
}

static void
on_poll(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct run *r = arg;
    if (r->until != NULL && r->until(r))
        event_base_loopbreak(r->base);
}

static void
on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct run *r = arg;
    r->timed_out = true;
    event_base_loopbreak(r->base);
}

/* Runs the test's base until r->until holds or ms pass (then r->timed_out is set). */
static void
run_until(struct run *r, cond_fn until, int target, int ms)
{
    r->until = until;
    r->target = target;
    r->timed_out = false;
    if (until(r))
        return;
    struct event *poll = event_new(r->base, -1, EV_PERSIST, on_poll, r);
    struct event *deadline = evtimer_new(r->base, on_deadline, r);
    struct timeval every = {0, 10 * 1000};
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_add(poll, &every);
    evtimer_add(deadline, &tv);
    event_base_dispatch(r->base);
    event_free(poll);
    event_free(deadline);
    r->until = NULL;
}

static bool
has_results(const struct run *r)
{
    return r->results >= r->target;
}

static bool
never(const struct run *r)
{
    (void)r;
    return false;
}

static bool
hang_accepted(const struct run *r)
{
    return atomic_load(&r->srv->hang_accepted) >= r->target;
}

static int
setup(void **state)
{
    struct run *r = xcalloc(1, sizeof(*r));
    r->base = event_base_new();
    assert_non_null(r->base);
    r->srv = server_start();
    *state = r;
    return 0;
}

static int
setup_no_server(void **state)
{
    struct run *r = xcalloc(1, sizeof(*r));
    r->base = event_base_new();
    assert_non_null(r->base);
    *state = r;
    return 0;
}

static int
teardown(void **state)
{
    struct run *r = *state;
    probe_free(r->p);
    if (r->srv != NULL)
        server_stop(r->srv);
    event_base_free(r->base);
    free(r);
    return 0;
}

/* Probes url once with pr and waits for the result. */
static void
probe_once(struct run *r, const char *url, struct cfg_probe pr)
{
    struct fake_cfg f;
    fake_init(&f);
    fake_add(&f, "a", url, pr);
    r->p = probe_new(r->base, on_result, r);
    assert_non_null(r->p);
    assert_int_equal(probe_set_targets(r->p, &f.cfg), 0);
    run_until(r, has_results, 1, DEADLINE_MS);
    assert_false(r->timed_out);
    assert_int_equal(r->results, 1);
    assert_string_equal(r->last_id, "a");
}

static void
url_main(const struct run *r, const char *path, char *out, size_t n)
{
    snprintf(out, n, "http://127.0.0.1:%u%s", (unsigned)r->srv->port_main, path);
}

/* ---- tests ---- */

static void
test_probe_200_is_ok(void **state)
{
    struct run *r = *state;
    char url[128];
    url_main(r, "/ok", url, sizeof(url));
    probe_once(r, url, default_probe());
    assert_int_equal(r->last.outcome, HEALTH_OK);
    assert_int_equal(r->last.http_status, 200);
    assert_int_equal(r->last.body_bytes, 5);
    assert_null(r->last.error);
    assert_true(r->last.connect_ms > 0);
    assert_true(r->last.ttfb_ms >= r->last.connect_ms);
    assert_true(r->last.total_ms >= r->last.ttfb_ms);
    pthread_mutex_lock(&r->srv->mu);
    assert_string_equal(r->srv->user_agent, "steerd-probe/" STEERD_VERSION);
    pthread_mutex_unlock(&r->srv->mu);
}

static void
test_probe_body_at_cap_is_ok(void **state)
{
    struct run *r = *state;
    char url[128];
    url_main(r, "/ok", url, sizeof(url));
    struct cfg_probe pr = default_probe();
    pr.max_body_bytes = 5;
    probe_once(r, url, pr);
    assert_int_equal(r->last.outcome, HEALTH_OK);
}

static void
test_probe_body_over_cap_fails(void **state)
{
    struct run *r = *state;
    char url[128];
    url_main(r, "/ok", url, sizeof(url));
    struct cfg_probe pr = default_probe();
    pr.max_body_bytes = 4;
    probe_once(r, url, pr);
    assert_int_equal(r->last.outcome, HEALTH_FAIL);
    assert_string_equal(r->last_error, "body too large");
}

static void
test_probe_large_body_aborted_at_cap(void **state)
{
    struct run *r = *state;
    char url[128];
    url_main(r, "/big", url, sizeof(url));
    struct cfg_probe pr = default_probe();
    pr.max_body_bytes = 64 * 1024;
    probe_once(r, url, pr);
    assert_int_equal(r->last.outcome, HEALTH_FAIL);
    assert_string_equal(r->last_error, "body too large");
    assert_true(r->last.body_bytes <= 64 * 1024);
    assert_int_equal(r->last.http_status, 200);
}

static void
test_probe_503_fails(void **state)
{
    struct run *r = *state;
    char url[128];
    url_main(r, "/503", url, sizeof(url));
    probe_once(r, url, default_probe());
    assert_int_equal(r->last.outcome, HEALTH_FAIL);
    assert_int_equal(r->last.http_status, 503);
    assert_string_equal(r->last_error, "http 503");
}

static void
test_probe_redirect_not_followed(void **state)
{
    struct run *r = *state;
    char url[128];
    url_main(r, "/redirect", url, sizeof(url));
    probe_once(r, url, default_probe());
    assert_int_equal(r->last.outcome, HEALTH_FAIL);
    assert_int_equal(r->last.http_status, 302);
    assert_string_equal(r->last_error, "http 302");
    assert_int_equal(atomic_load(&r->srv->hits_count), 0);

    /* The counting server does count: probing it directly is one hit. */
    probe_free(r->p);
    r->p = NULL;
    r->results = 0;
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/landing", (unsigned)r->srv->port_count);
    probe_once(r, url, default_probe());
    assert_int_equal(r->last.outcome, HEALTH_OK);
    assert_int_equal(atomic_load(&r->srv->hits_count), 1);
}

static void
test_probe_hang_times_out(void **state)
{
    struct run *r = *state;
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/", (unsigned)r->srv->port_hang);
    struct cfg_probe pr = default_probe();
    pr.timeout_ms = 300;
    probe_once(r, url, pr);
    assert_int_equal(r->last.outcome, HEALTH_FAIL);
    assert_string_equal(r->last_error, "timeout");
    assert_int_equal(r->last.http_status, 0);
    assert_int_equal(atomic_load(&r->srv->hang_accepted), 1);
}

static void
test_probe_slow_drip_fails_low_speed(void **state)
{
    struct run *r = *state;
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/", (unsigned)r->srv->port_drip);
    struct cfg_probe pr = default_probe();
    pr.timeout_ms = 4500; /* the low-speed limit must end it first */
    pr.low_speed_bytes_per_s = 1024;
    pr.low_speed_time_ms = 1000;
    probe_once(r, url, pr);
    assert_int_equal(r->last.outcome, HEALTH_FAIL);
    assert_string_equal(r->last_error, "low speed");
    assert_int_equal(r->last.http_status, 200);
    assert_int_equal(atomic_load(&r->srv->drip_accepted), 1);
}

static void
test_probe_closed_port_refused(void **state)
{
    struct run *r = *state;
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/", (unsigned)closed_port());
    probe_once(r, url, default_probe());
    assert_int_equal(r->last.outcome, HEALTH_FAIL);
    assert_non_null(strstr(r->last_error, "refused"));
    assert_true(r->last.connect_ms < 0);
    assert_true(r->last.ttfb_ms < 0);
}

static void
test_probe_file_url_never_fetched(void **state)
{
    struct run *r = *state;
    probe_once(r, "file:///etc/passwd", default_probe());
    assert_int_equal(r->last.outcome, HEALTH_FAIL);
    assert_non_null(strstr(r->last_error, "unsupported protocol"));
    assert_int_equal(r->last.body_bytes, 0);
    assert_int_equal(r->last.http_status, 0);
}

static void
test_probe_gopher_url_never_fetched(void **state)
{
    struct run *r = *state;
    char url[128];
    snprintf(url, sizeof(url), "gopher://127.0.0.1:%u/1", (unsigned)r->srv->port_count);
    probe_once(r, url, default_probe());
    assert_int_equal(r->last.outcome, HEALTH_FAIL);
    assert_non_null(strstr(r->last_error, "unsupported protocol"));
    assert_int_equal(r->last.body_bytes, 0);
    assert_int_equal(atomic_load(&r->srv->hits_count), 0);
}

/* Loopback is internal: without allow_targets neither its literal nor a name resolving to it is
 * connected to; the probe fails with the address as its reason and the server sees nothing. */
static void
test_probe_internal_address_denied(void **state)
{
    struct run *r = *state;
    static const char *const hosts[] = {"localhost", "127.0.0.1", "[::1]"};
    char url[128];
    for (size_t i = 0; i < UTIL_ARRAY_LEN(hosts); i++) {
        snprintf(url, sizeof(url), "http://%s:%u/landing", hosts[i], (unsigned)r->srv->port_count);
        struct fake_cfg f;
        fake_init(&f);
        f.cfg.nallow_targets = 0;
        fake_add(&f, "a", url, default_probe());
        r->results = 0;
        r->p = probe_new(r->base, on_result, r);
        assert_non_null(r->p);
        assert_int_equal(probe_set_targets(r->p, &f.cfg), 0);
        run_until(r, has_results, 1, DEADLINE_MS);
        assert_false(r->timed_out);
        assert_int_equal(r->last.outcome, HEALTH_FAIL);
        if (strncmp(r->last_error, "address denied: ", 16) != 0)
            fail_msg("%s: %s", hosts[i], r->last_error);
        assert_int_equal(r->last.http_status, 0);
        probe_free(r->p);
        r->p = NULL;
    }
    assert_int_equal(atomic_load(&r->srv->hits_count), 0);

    /* with allow_targets the same name is probed */
    snprintf(url, sizeof(url), "http://localhost:%u/landing", (unsigned)r->srv->port_count);
    r->results = 0;
    probe_once(r, url, default_probe());
    assert_int_equal(r->last.outcome, HEALTH_OK);
    assert_int_equal(atomic_load(&r->srv->hits_count), 1);
}

static bool
last_denied(const struct run *r)
{
    return r->last.outcome == HEALTH_FAIL && strncmp(r->last_error, "address denied", 14) == 0;
}

/* A reload that only drops allow_targets restarts the target under the new list. */
static void
test_probe_allow_targets_change_restarts(void **state)
{
    struct run *r = *state;
    char url[128];
    url_main(r, "/ok", url, sizeof(url));
    struct cfg_probe pr = default_probe();
    pr.interval_ms = 100;
    struct fake_cfg f;
    fake_init(&f);
    fake_add(&f, "a", url, pr);
    r->p = probe_new(r->base, on_result, r);
    assert_non_null(r->p);
    assert_int_equal(probe_set_targets(r->p, &f.cfg), 0);
    run_until(r, has_results, 2, DEADLINE_MS);
    assert_false(r->timed_out);
    assert_int_equal(r->last.outcome, HEALTH_OK);

    f.cfg.nallow_targets = 0;
    assert_int_equal(probe_set_targets(r->p, &f.cfg), 0);
    run_until(r, last_denied, 0, DEADLINE_MS);
    assert_false(r->timed_out);
    assert_non_null(strstr(r->last_error, "127.0.0.1"));
}

static bool
both_twice(const struct run *r)
{
    return r->per_id[0] >= 2 && r->per_id[1] >= 2;
}

static bool
b_reached(const struct run *r)
{
    return r->per_id[1] >= r->target;
}

static bool
b_failed(const struct run *r)
{
    return strcmp(r->last_id, "b") == 0 && r->last.outcome == HEALTH_FAIL;
}

static void
test_probe_set_targets_reconcile(void **state)
{
    struct run *r = *state;
    char ok[128], bad[128];
    url_main(r, "/ok", ok, sizeof(ok));
    url_main(r, "/503", bad, sizeof(bad));
    struct cfg_probe pr = default_probe();
    pr.interval_ms = 100;
    pr.timeout_ms = 1000;

    struct fake_cfg f;
    fake_init(&f);
    fake_add(&f, "a", ok, pr);
    fake_add(&f, "nop", NULL, pr); /* no probe URL: never probed */
    fake_add(&f, "b", ok, pr);
    r->p = probe_new(r->base, on_result, r);
    assert_non_null(r->p);
    assert_int_equal(probe_set_targets(r->p, &f.cfg), 0);
    run_until(r, both_twice, 0, DEADLINE_MS);
    assert_false(r->timed_out);

    /* Remove a: only b keeps reporting. */
    fake_init(&f);
    fake_add(&f, "b", ok, pr);
    assert_int_equal(probe_set_targets(r->p, &f.cfg), 0);
    int a_before = r->per_id[0];
    run_until(r, b_reached, r->per_id[1] + 3, DEADLINE_MS);
    assert_false(r->timed_out);
    assert_int_equal(r->per_id[0], a_before);
    assert_int_equal(r->last.outcome, HEALTH_OK);

    /* Change b's URL: it restarts against the new one. */
    fake_init(&f);
    fake_add(&f, "b", bad, pr);
    assert_int_equal(probe_set_targets(r->p, &f.cfg), 0);
    run_until(r, b_failed, 0, DEADLINE_MS);
    assert_false(r->timed_out);
    assert_int_equal(r->last.http_status, 503);
    assert_int_equal(r->per_id[0], a_before);
    assert_int_equal(r->unexpected_ids, 0);
}

static void
test_probe_skips_round_while_running(void **state)
{
    struct run *r = *state;
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/", (unsigned)r->srv->port_hang);
    struct fake_cfg f;
    fake_init(&f);
    struct cfg_probe pr = default_probe();
    pr.interval_ms = 100;
    pr.timeout_ms = 5000;
    fake_add(&f, "a", url, pr);
    r->p = probe_new(r->base, on_result, r);
    assert_non_null(r->p);
    assert_int_equal(probe_set_targets(r->p, &f.cfg), 0);
    run_until(r, hang_accepted, 1, DEADLINE_MS);
    assert_false(r->timed_out);
    /* Several intervals pass while the first transfer hangs: no second connection. */
    run_until(r, never, 0, 450);
    assert_int_equal(atomic_load(&r->srv->hang_accepted), 1);
    assert_int_equal(r->results, 0);
}

static void
test_probe_stop_with_transfer_in_flight(void **state)
{
    struct run *r = *state;
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/", (unsigned)r->srv->port_hang);
    struct fake_cfg f;
    fake_init(&f);
    struct cfg_probe pr = default_probe();
    pr.interval_ms = 100;
    pr.timeout_ms = 300;
    fake_add(&f, "a", url, pr);
    r->p = probe_new(r->base, on_result, r);
    assert_non_null(r->p);
    assert_int_equal(probe_set_targets(r->p, &f.cfg), 0);
    run_until(r, hang_accepted, 1, DEADLINE_MS);
    assert_false(r->timed_out);

    probe_stop(r->p);
    /* Past the transfer's timeout and several intervals: nothing reports, nothing connects. */
    run_until(r, never, 0, 600);
    assert_int_equal(r->results, 0);
    assert_int_equal(atomic_load(&r->srv->hang_accepted), 1);

    /* A stopped prober can be given targets again. */
    char ok[128];
    url_main(r, "/ok", ok, sizeof(ok));
    fake_init(&f);
    fake_add(&f, "b", ok, default_probe());
    assert_int_equal(probe_set_targets(r->p, &f.cfg), 0);
    run_until(r, has_results, 1, DEADLINE_MS);
    assert_false(r->timed_out);
    assert_string_equal(r->last_id, "b");
    assert_int_equal(r->last.outcome, HEALTH_OK);
}

static void
test_probe_free_with_transfer_in_flight(void **state)
{
    struct run *r = *state;
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/", (unsigned)r->srv->port_hang);
    struct fake_cfg f;
    fake_init(&f);
    fake_add(&f, "a", url, default_probe());
    r->p = probe_new(r->base, on_result, r);
    assert_non_null(r->p);
    assert_int_equal(probe_set_targets(r->p, &f.cfg), 0);
    run_until(r, hang_accepted, 1, DEADLINE_MS);
    assert_false(r->timed_out);
    probe_free(r->p); /* leak detection at exit covers the rest */
    r->p = NULL;
    assert_int_equal(r->results, 0);
    probe_free(NULL);
}

/* In a child: lower RLIMIT_NOFILE so no descriptor can be opened, probe once, exit with the
 * outcome (0 inconclusive, 10 ok, 11 fail, 12 no result, 2x setup problems). */
static void
child_probe_without_fds(const char *url)
{
    struct run r;
    memset(&r, 0, sizeof(r));
    r.base = event_base_new();
    if (r.base == NULL)
        _exit(20);
    r.p = probe_new(r.base, on_result, &r);
    if (r.p == NULL)
        _exit(21);
    int fd = open("/dev/null", O_RDONLY);
    if (fd < 0)
        _exit(22);
    close(fd);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        _exit(23);
    rl.rlim_cur = (rlim_t)fd; /* fd was the lowest free one: 0..fd-1 are all taken */
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        _exit(24);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s >= 0 || errno != EMFILE)
        _exit(25);

    struct fake_cfg f;
    fake_init(&f);
    fake_add(&f, "a", url, default_probe());
    if (probe_set_targets(r.p, &f.cfg) != 0)
        _exit(26);
    r.until = has_results;
    r.target = 1;
    struct event *deadline = evtimer_new(r.base, on_deadline, &r);
    struct timeval tv = {DEADLINE_MS / 1000, 0};
    evtimer_add(deadline, &tv);
    event_base_dispatch(r.base);
    if (r.results != 1)
        _exit(12);
    if (r.last.outcome == HEALTH_INCONCLUSIVE && strstr(r.last_error, "socket") != NULL)
        _exit(0);
    _exit(r.last.outcome == HEALTH_OK ? 10 : 11);
}

static void
test_probe_fd_exhaustion_is_inconclusive(void **state)
{
    (void)state;
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/", (unsigned)closed_port());
    /* No server thread in this test: the process is single-threaded when it forks. */
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        child_probe_without_fds(url);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

int
main(void)
{
    signal(SIGPIPE, SIG_IGN);
    if (evthread_use_pthreads() != 0)
        return 1;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_probe_200_is_ok, setup, teardown),
        cmocka_unit_test_setup_teardown(test_probe_body_at_cap_is_ok, setup, teardown),
        cmocka_unit_test_setup_teardown(test_probe_body_over_cap_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_probe_large_body_aborted_at_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_probe_503_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_probe_redirect_not_followed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_probe_hang_times_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_probe_slow_drip_fails_low_speed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_probe_closed_port_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_probe_file_url_never_fetched, setup, teardown),
        cmocka_unit_test_setup_teardown(test_probe_gopher_url_never_fetched, setup, teardown),
        cmocka_unit_test_setup_teardown(test_probe_set_targets_reconcile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_probe_internal_address_denied, setup, teardown),
        cmocka_unit_test_setup_teardown(test_probe_allow_targets_change_restarts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_probe_skips_round_while_running, setup, teardown),
        cmocka_unit_test_setup_teardown(test_probe_stop_with_transfer_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_probe_free_with_transfer_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_probe_fd_exhaustion_is_inconclusive, setup_no_server,
                                        teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    libevent_global_shutdown();
    return rc;
}
