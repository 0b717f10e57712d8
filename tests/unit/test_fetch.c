/* fetch against a real HTTP server in this process: the server runs on its own thread and
 * event_base (evhttp for well-behaved answers, a raw listener for hangs, slow drips, oversized
 * or malformed answers); the client runs on the test's own base. Deadlines are safety nets,
 * not timing assertions. */
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

#include "steerd/fetch.h"
#include "steerd/netaddr.h"
#include "steerd/util.h"

/* The test servers are on loopback, which a transfer must allow explicitly. */
static const struct netaddr_cidr loopback_allow[] = {
    {{{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 0}}, 104},
};

#define DEADLINE_MS 5000
#define MIB (1024u * 1024u)
#define BIG_BODY_BYTES (8u * MIB) /* what the raw server offers without a Content-Length */
#define RAW_CHUNK 16384u
#define OK_BODY "#EXTM3U\n#EXT-X-VERSION:3\n"
#define OK_ETAG "\"v1\""
#define OK_LAST_MODIFIED "Wed, 21 Oct 2015 07:28:00 GMT"
#define OK_TYPE "application/vnd.apple.mpegurl"
#define MAX_PEERS 128
#define DELAY_MS 100
#define MAX_DELAYED 128

/* ---- the test server ---- */

enum raw_mode {
    RAW_HANG,   /* reads the request, never answers */
    RAW_CANNED, /* answers srv->canned, then keeps the connection open (or closes it) */
    RAW_BIG,    /* a 200 head without Content-Length, then BIG_BODY_BYTES as fast as it can */
    RAW_DRIP,   /* a 200 head, then one body byte every 200 ms */
};

struct server;

struct delayed {
    struct evhttp_request *req;
    uint64_t due_ms;
};

struct conn {
    struct server *srv;
    evutil_socket_t fd;
    enum raw_mode mode;
    bool answered;
    size_t body_sent;
    char tail[4]; /* last bytes read, to find the end of the request head */
    struct event *rd;
    struct event *wr; /* RAW_BIG: writable; RAW_DRIP: the drip timer */
    struct conn *prev, *next;
};

struct server {
    struct event_base *base;
    pthread_t thread;
    struct evhttp *http;       /* well-behaved paths */
    struct evhttp *http_count; /* the redirect target: counts every request */
    struct evconnlistener *raw_l;
    uint16_t port, port_count, port_raw;
    atomic_int hits_count;
    atomic_int raw_accepted;
    atomic_size_t raw_body_sent; /* body bytes the raw server got into the kernel */
    pthread_mutex_t mu;          /* guards everything below */
    enum raw_mode raw_mode;
    char *canned;
    size_t canned_len;
    bool canned_close;
    char user_agent[128]; /* of the last request on http */
    char if_none_match[128];
    char if_modified_since[64];
    bool accept_encoding;      /* the last request had one */
    bool proxy_form;           /* the last request line was absolute-form (a proxy request) */
    uint16_t peers[MAX_PEERS]; /* distinct client ports seen on http */
    size_t npeers;
    uint16_t last_peer;
    int delay_inflight; /* /delay requests read and not yet answered */
    int delay_max_inflight;
    struct conn *conns;                  /* server thread only, until joined */
    struct delayed delayed[MAX_DELAYED]; /* server thread only */
    size_t ndelayed;
    struct event *delay_tick;
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
    if (c->wr != NULL)
        event_free(c->wr);
    evutil_closesocket(c->fd);
    free(c);
}

static void
on_big_writable(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct conn *c = arg;
    struct server *s = c->srv;
    if (c->body_sent >= BIG_BODY_BYTES) {
        conn_free(c);
        return;
    }
    size_t n = BIG_BODY_BYTES - c->body_sent;
    if (n > RAW_CHUNK)
        n = RAW_CHUNK;
    ssize_t w = send(fd, s->big + c->body_sent, n, MSG_NOSIGNAL);
    if (w < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (w <= 0) {
        conn_free(c); /* the client went away */
        return;
    }
    c->body_sent += (size_t)w;
    atomic_fetch_add(&s->raw_body_sent, (size_t)w);
}

static void
on_drip_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct conn *c = arg;
    if (send(fd, "x", 1, MSG_NOSIGNAL) != 1)
        conn_free(c);
}

/* The request head has been read: answer as c->mode says. */
static void
raw_answer(struct conn *c)
{
    struct server *s = c->srv;
    static const char big_head[] = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n";
    static const char drip_head[] = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n";
    c->answered = true;
    switch (c->mode) {
    case RAW_HANG:
        return;
    case RAW_CANNED: {
        pthread_mutex_lock(&s->mu);
        bool close_after = s->canned_close;
        ssize_t w = s->canned_len > 0 ? send(c->fd, s->canned, s->canned_len, MSG_NOSIGNAL) : 0;
        pthread_mutex_unlock(&s->mu);
        if (w < 0 || close_after)
            conn_free(c);
        return;
    }
    case RAW_BIG: {
        int small = 16384;
        setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
        if (send(c->fd, big_head, sizeof(big_head) - 1, MSG_NOSIGNAL) < 0) {
            conn_free(c);
            return;
        }
        c->wr = event_new(s->base, c->fd, EV_WRITE | EV_PERSIST, on_big_writable, c);
        event_add(c->wr, NULL);
        return;
    }
    case RAW_DRIP: {
        if (send(c->fd, drip_head, sizeof(drip_head) - 1, MSG_NOSIGNAL) < 0) {
            conn_free(c);
            return;
        }
        struct timeval every = {0, 200 * 1000};
        c->wr = event_new(s->base, c->fd, EV_PERSIST, on_drip_tick, c);
        event_add(c->wr, &every);
        return;
    }
    }
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
    if (n < 0 || c->answered)
        return;
    for (ssize_t i = 0; i < n; i++) {
        memmove(c->tail, c->tail + 1, 3);
        c->tail[3] = b[i];
        if (memcmp(c->tail, "\r\n\r\n", 4) == 0) {
            raw_answer(c); /* may free c */
            return;
        }
    }
}

static void
on_raw_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len, void *arg)
{
    (void)l;
    (void)sa;
    (void)len;
    struct server *s = arg;
    struct conn *c = xcalloc(1, sizeof(*c));
    c->srv = s;
    c->fd = fd;
    pthread_mutex_lock(&s->mu);
    c->mode = s->raw_mode;
    pthread_mutex_unlock(&s->mu);
    evutil_make_socket_nonblocking(fd);
    c->rd = event_new(s->base, fd, EV_READ | EV_PERSIST, on_conn_read, c);
    event_add(c->rd, NULL);
    c->next = s->conns;
    if (s->conns != NULL)
        s->conns->prev = c;
    s->conns = c;
    atomic_fetch_add(&s->raw_accepted, 1);
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
note_request(struct server *s, struct evhttp_request *req)
{
    struct evkeyvalq *h = evhttp_request_get_input_headers(req);
    const char *ua = evhttp_find_header(h, "User-Agent");
    const char *inm = evhttp_find_header(h, "If-None-Match");
    const char *ims = evhttp_find_header(h, "If-Modified-Since");
    char *peer = NULL;
    ev_uint16_t port = 0;
    evhttp_connection_get_peer(evhttp_request_get_connection(req), &peer, &port);
    pthread_mutex_lock(&s->mu);
    snprintf(s->user_agent, sizeof(s->user_agent), "%s", ua ? ua : "");
    snprintf(s->if_none_match, sizeof(s->if_none_match), "%s", inm ? inm : "");
    snprintf(s->if_modified_since, sizeof(s->if_modified_since), "%s", ims ? ims : "");
    s->accept_encoding = evhttp_find_header(h, "Accept-Encoding") != NULL;
    s->proxy_form = strncmp(evhttp_request_get_uri(req), "http:", 5) == 0;
    s->last_peer = port;
    bool seen = false;
    for (size_t i = 0; i < s->npeers && !seen; i++)
        seen = s->peers[i] == port;
    if (!seen && s->npeers < MAX_PEERS)
        s->peers[s->npeers++] = port;
    pthread_mutex_unlock(&s->mu);
}

/* Answers the /delay requests that have waited DELAY_MS (a 10 ms tick on the server base). */
static void
on_delay_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct server *s = arg;
    uint64_t now = util_now_ms();
    size_t k = 0;
    for (size_t i = 0; i < s->ndelayed; i++) {
        struct delayed *d = &s->delayed[i];
        if (d->due_ms > now) {
            s->delayed[k++] = *d;
            continue;
        }
        const char *q = strchr(evhttp_request_get_uri(d->req), '=');
        const char *body = q != NULL ? q + 1 : "";
        pthread_mutex_lock(&s->mu);
        s->delay_inflight--;
        pthread_mutex_unlock(&s->mu);
        reply(d->req, 200, "OK", body, strlen(body));
    }
    s->ndelayed = k;
}

static void
delay_request(struct server *s, struct evhttp_request *req)
{
    if (s->ndelayed == MAX_DELAYED) {
        reply(req, 503, "Busy", "", 0);
        return;
    }
    s->delayed[s->ndelayed++] = (struct delayed){.req = req, .due_ms = util_now_ms() + DELAY_MS};
    pthread_mutex_lock(&s->mu);
    s->delay_inflight++;
    if (s->delay_inflight > s->delay_max_inflight)
        s->delay_max_inflight = s->delay_inflight;
    pthread_mutex_unlock(&s->mu);
}

/* "/exact?n=123" -> 123 */
static size_t
query_n(struct evhttp_request *req)
{
    const char *q = strstr(evhttp_request_get_uri(req), "n=");
    uint64_t n = 0;
    if (q == NULL || util_parse_u64(q + 2, strlen(q + 2), 0, BIG_BODY_BYTES, &n) != 0)
        return 0;
    return (size_t)n;
}

static void
on_request(struct evhttp_request *req, void *arg)
{
    struct server *s = arg;
    const char *uri = evhttp_request_get_uri(req);
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    note_request(s, req);
    if (strcmp(uri, "/ok") == 0) {
        evhttp_add_header(out, "ETag", OK_ETAG);
        evhttp_add_header(out, "Last-Modified", OK_LAST_MODIFIED);
        evhttp_add_header(out, "Content-Type", OK_TYPE);
        evhttp_add_header(out, "Cache-Control", "max-age=2");
        evhttp_add_header(out, "Cache-Control", "public");
        reply(req, 200, "OK", OK_BODY, strlen(OK_BODY));
    } else if (strcmp(uri, "/cond") == 0) {
        const char *inm =
            evhttp_find_header(evhttp_request_get_input_headers(req), "If-None-Match");
        evhttp_add_header(out, "ETag", OK_ETAG);
        evhttp_add_header(out, "Cache-Control", "max-age=4");
        if (inm != NULL && strcmp(inm, OK_ETAG) == 0)
            reply(req, 304, "Not Modified", "", 0);
        else
            reply(req, 200, "OK", OK_BODY, strlen(OK_BODY));
    } else if (strcmp(uri, "/304") == 0) {
        reply(req, 304, "Not Modified", "", 0);
    } else if (strcmp(uri, "/500") == 0) {
        reply(req, 500, "Internal Server Error", "oops", 4);
    } else if (strncmp(uri, "/big500", 7) == 0) {
        reply(req, 500, "Internal Server Error", s->big, query_n(req));
    } else if (strncmp(uri, "/exact", 6) == 0) {
        reply(req, 200, "OK", s->big, query_n(req));
    } else if (strcmp(uri, "/redirect") == 0) {
        char loc[64];
        snprintf(loc, sizeof(loc), "http://127.0.0.1:%u/landing", (unsigned)s->port_count);
        evhttp_add_header(out, "Location", loc);
        reply(req, 302, "Found", "", 0);
    } else if (strncmp(uri, "/delay", 6) == 0) {
        delay_request(s, req);
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

static struct server *
server_start(void)
{
    struct server *s = xcalloc(1, sizeof(*s));
    pthread_mutex_init(&s->mu, NULL);
    s->big = xmalloc(BIG_BODY_BYTES);
    memset(s->big, 'b', BIG_BODY_BYTES);
    s->base = event_base_new();
    assert_non_null(s->base);
    s->http = http_on_ephemeral(s, on_request, &s->port);
    s->http_count = http_on_ephemeral(s, on_count_request, &s->port_count);
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->raw_l = evconnlistener_new_bind(s->base, on_raw_accept, s,
                                       LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 16,
                                       (struct sockaddr *)&sin, sizeof(sin));
    assert_non_null(s->raw_l);
    s->port_raw = fd_port(evconnlistener_get_fd(s->raw_l));
    assert_int_not_equal(s->port_raw, 0);
    s->delay_tick = event_new(s->base, -1, EV_PERSIST, on_delay_tick, s);
    struct timeval every = {0, 10 * 1000};
    event_add(s->delay_tick, &every);
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
    evconnlistener_free(s->raw_l);
    event_free(s->delay_tick);
    evhttp_free(s->http); /* frees the /delay requests still waiting */
    evhttp_free(s->http_count);
    event_base_free(s->base);
    pthread_mutex_destroy(&s->mu);
    free(s->canned);
    free(s->big);
    free(s);
}

static void
server_raw(struct server *s, enum raw_mode mode)
{
    pthread_mutex_lock(&s->mu);
    s->raw_mode = mode;
    pthread_mutex_unlock(&s->mu);
}

/* Makes the raw listener answer with text (then close the connection when close_after). */
static void
server_canned(struct server *s, const char *text, size_t len, bool close_after)
{
    pthread_mutex_lock(&s->mu);
    s->raw_mode = RAW_CANNED;
    free(s->canned);
    s->canned = xmalloc(len + 1);
    memcpy(s->canned, text, len);
    s->canned_len = len;
    s->canned_close = close_after;
    pthread_mutex_unlock(&s->mu);
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

/* ---- the client side ---- */

/* A copy of one fetch_result (its pointers are only valid during the callback). */
struct got {
    int calls;
    enum fetch_status status;
    long http_status;
    bool has_body;
    char *body;
    size_t len;
    char etag[300];
    char last_modified[80];
    char content_type[300];
    char cache_control[600];
    bool has_etag, has_last_modified, has_content_type, has_cache_control;
    double total_ms;
    char error[200];
};

static void
copy_opt(char *dst, size_t n, bool *has, const char *src)
{
    *has = src != NULL;
    snprintf(dst, n, "%s", src != NULL ? src : "");
}

static void
got_set(struct got *g, const struct fetch_result *r)
{
    g->calls++;
    g->status = r->status;
    g->http_status = r->http_status;
    g->has_body = r->body != NULL;
    free(g->body);
    g->body = NULL;
    g->len = r->len;
    if (r->body != NULL) {
        g->body = xmalloc(r->len + 1);
        memcpy(g->body, r->body, r->len + 1); /* the terminator is promised too */
    }
    copy_opt(g->etag, sizeof(g->etag), &g->has_etag, r->etag);
    copy_opt(g->last_modified, sizeof(g->last_modified), &g->has_last_modified, r->last_modified);
    copy_opt(g->content_type, sizeof(g->content_type), &g->has_content_type, r->content_type);
    copy_opt(g->cache_control, sizeof(g->cache_control), &g->has_cache_control, r->cache_control);
    g->total_ms = r->total_ms;
    snprintf(g->error, sizeof(g->error), "%s", r->error != NULL ? r->error : "");
}

struct run;
typedef bool (*cond_fn)(const struct run *r);

struct run {
    struct event_base *base;
    struct server *srv;
    struct fetch *f;
    int results;
    struct got last;
    cond_fn until;
    int target;
    bool timed_out;
    /* for the callbacks that act on the client */
    uint64_t cancel_on_done; /* fetch_cancel this id from the callback */
    bool start_on_done;      /* fetch_start /ok from the callback */
    uint64_t started_in_cb;
    char url_in_cb[128];
};

static void
maybe_break(struct run *r)
{
    if (r->until != NULL && r->until(r))
        event_base_loopbreak(r->base);
}

static void
on_done(void *arg, const struct fetch_result *res)
{
    struct run *r = arg;
    r->results++;
    got_set(&r->last, res);
    if (r->cancel_on_done != 0) {
        fetch_cancel(r->f, r->cancel_on_done);
        r->cancel_on_done = 0;
    }
    if (r->start_on_done) {
        r->start_on_done = false;
        struct fetch_request rq = {.url = r->url_in_cb,
                                   .timeout_ms = 2000,
                                   .max_bytes = 4096,
                                   .allow = loopback_allow,
                                   .nallow = UTIL_ARRAY_LEN(loopback_allow)};
        r->started_in_cb = fetch_start(r->f, &rq, on_done, r);
    }
    maybe_break(r);
}

static void
on_poll(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    maybe_break(arg);
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

/* Runs the test's base until until(r) holds or ms pass (then r->timed_out is set). */
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
raw_accepted(const struct run *r)
{
    return atomic_load(&r->srv->raw_accepted) >= r->target;
}

static int
setup(void **state)
{
    struct run *r = xcalloc(1, sizeof(*r));
    r->base = event_base_new();
    assert_non_null(r->base);
    r->srv = server_start();
    r->f = fetch_new(r->base);
    assert_non_null(r->f);
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
    fetch_free(r->f);
    if (r->srv != NULL)
        server_stop(r->srv);
    event_base_free(r->base);
    free(r->last.body);
    free(r);
    return 0;
}

static struct fetch_request
default_request(const char *url)
{
    struct fetch_request rq = {
        .url = url,
        .timeout_ms = 3000,
        .max_bytes = 64 * 1024,
        .allow = loopback_allow,
        .nallow = UTIL_ARRAY_LEN(loopback_allow),
    };
    return rq;
}

static void
url_main(const struct run *r, const char *path, char *out, size_t n)
{
    snprintf(out, n, "http://127.0.0.1:%u%s", (unsigned)r->srv->port, path);
}

static void
url_raw(const struct run *r, char *out, size_t n)
{
    snprintf(out, n, "http://127.0.0.1:%u/raw", (unsigned)r->srv->port_raw);
}

/* Starts rq and waits for its one result in r->last. */
static void
fetch_once(struct run *r, const struct fetch_request *rq)
{
    int before = r->results;
    uint64_t id = fetch_start(r->f, rq, on_done, r);
    assert_true(id > 0);
    assert_int_equal(r->results, before); /* never called back from inside fetch_start */
    assert_int_equal(fetch_active(r->f), 1);
    run_until(r, has_results, before + 1, DEADLINE_MS);
    assert_false(r->timed_out);
    assert_int_equal(r->results, before + 1);
    assert_int_equal(fetch_active(r->f), 0);
}

/* ---- well-behaved origin ---- */

static void
test_fetch_200_body_and_headers(void **state)
{
    struct run *r = *state;
    char url[128];
    url_main(r, "/ok", url, sizeof(url));
    struct fetch_request rq = default_request(url);
    fetch_once(r, &rq);
    assert_int_equal(r->last.status, FETCH_OK);
    assert_int_equal(r->last.http_status, 200);
    assert_true(r->last.has_body);
    assert_int_equal(r->last.len, strlen(OK_BODY));
    assert_string_equal(r->last.body, OK_BODY);
    assert_string_equal(r->last.etag, OK_ETAG);
    assert_string_equal(r->last.last_modified, OK_LAST_MODIFIED);
    assert_string_equal(r->last.content_type, OK_TYPE);
    assert_string_equal(r->last.cache_control, "max-age=2, public");
    assert_string_equal(r->last.error, "");
    assert_true(r->last.total_ms > 0);

    pthread_mutex_lock(&r->srv->mu);
    assert_string_equal(r->srv->user_agent, "steerd/" STEERD_VERSION);
    assert_false(r->srv->accept_encoding);
    assert_string_equal(r->srv->if_none_match, "");
    assert_string_equal(r->srv->if_modified_since, "");
    pthread_mutex_unlock(&r->srv->mu);
}

static void
test_fetch_conditional_not_modified(void **state)
{
    struct run *r = *state;
    char url[128];
    url_main(r, "/cond", url, sizeof(url));
    struct fetch_request rq = default_request(url);
    rq.if_none_match = OK_ETAG;
    rq.if_modified_since = OK_LAST_MODIFIED;
    fetch_once(r, &rq);
    assert_int_equal(r->last.status, FETCH_NOT_MODIFIED);
    assert_int_equal(r->last.http_status, 304);
    assert_false(r->last.has_body);
    assert_string_equal(r->last.etag, OK_ETAG);
    assert_string_equal(r->last.cache_control, "max-age=4");
    assert_string_equal(r->last.error, "");
    pthread_mutex_lock(&r->srv->mu);
    assert_string_equal(r->srv->if_none_match, OK_ETAG);
    assert_string_equal(r->srv->if_modified_since, OK_LAST_MODIFIED);
    pthread_mutex_unlock(&r->srv->mu);

    /* A stale validator gets the full answer. */
    rq.if_none_match = "\"v0\"";
    rq.if_modified_since = NULL;
    fetch_once(r, &rq);
    assert_int_equal(r->last.status, FETCH_OK);
    assert_string_equal(r->last.body, OK_BODY);
}

static void
test_fetch_unconditional_304_is_http_error(void **state)
{
    struct run *r = *state;
    char url[128];
    url_main(r, "/304", url, sizeof(url));
    struct fetch_request rq = default_request(url);
    fetch_once(r, &rq);
    assert_int_equal(r->last.status, FETCH_HTTP_ERROR);
    assert_int_equal(r->last.http_status, 304);
}

static void
test_fetch_404_and_500_are_http_errors(void **state)
{
    struct run *r = *state;
    char url[128];
    url_main(r, "/missing", url, sizeof(url));
    struct fetch_request rq = default_request(url);
    fetch_once(r, &rq);
    assert_int_equal(r->last.status, FETCH_HTTP_ERROR);
    assert_int_equal(r->last.http_status, 404);
    assert_false(r->last.has_body);
    assert_string_equal(r->last.error, "http 404");

    url_main(r, "/500", url, sizeof(url));
    rq = default_request(url);
    fetch_once(r, &rq);
    assert_int_equal(r->last.status, FETCH_HTTP_ERROR);
    assert_int_equal(r->last.http_status, 500);
    assert_false(r->last.has_body);
}

static void
test_fetch_error_body_over_cap_is_http_error(void **state)
{
    struct run *r = *state;
    char url[128];
    url_main(r, "/big500?n=50000", url, sizeof(url));
    struct fetch_request rq = default_request(url);
    rq.max_bytes = 1000;
    fetch_once(r, &rq);
    assert_int_equal(r->last.status, FETCH_HTTP_ERROR);
    assert_int_equal(r->last.http_status, 500);
    assert_false(r->last.has_body);
}

static void
test_fetch_redirect_not_followed(void **state)
{
    struct run *r = *state;
    char url[128];
    url_main(r, "/redirect", url, sizeof(url));
    struct fetch_request rq = default_request(url);
    fetch_once(r, &rq);
    assert_int_equal(r->last.status, FETCH_HTTP_ERROR);
    assert_int_equal(r->last.http_status, 302);
    assert_string_equal(r->last.error, "http 302");
    assert_int_equal(atomic_load(&r->srv->hits_count), 0);

    /* The counting server does count: fetching it directly is one hit. */
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/landing", (unsigned)r->srv->port_count);
    rq = default_request(url);
    fetch_once(r, &rq);
    assert_int_equal(r->last.status, FETCH_OK);
    assert_int_equal(atomic_load(&r->srv->hits_count), 1);
}

static void
test_fetch_body_at_cap_ok_and_over_cap_by_length(void **state)
{
    struct run *r = *state;
    char url[128];
    url_main(r, "/exact?n=1000", url, sizeof(url));
    struct fetch_request rq = default_request(url);
    rq.max_bytes = 1000;
    fetch_once(r, &rq);
    assert_int_equal(r->last.status, FETCH_OK);
    assert_int_equal(r->last.len, 1000);
    assert_int_equal(strlen(r->last.body), 1000); /* NUL-terminated */

    url_main(r, "/exact?n=1001", url, sizeof(url));
    rq.url = url;
    fetch_once(r, &rq);
    assert_int_equal(r->last.status, FETCH_TOO_LARGE);
    assert_string_equal(r->last.error, "content-length over cap");
    assert_false(r->last.has_body);
    assert_int_equal(r->last.len, 0);

    /* An empty 200 is a body of length 0, not an absent one. */
    url_main(r, "/exact?n=0", url, sizeof(url));
    rq.url = url;
    fetch_once(r, &rq);
    assert_int_equal(r->last.status, FETCH_OK);
    assert_true(r->last.has_body);
    assert_int_equal(r->last.len, 0);
    assert_int_equal(r->last.body[0], '\0');
}

static void
test_fetch_reuses_connection(void **state)
{
    struct run *r = *state;
    char url[128];
    url_main(r, "/ok", url, sizeof(url));
    struct fetch_request rq = default_request(url);
    fetch_once(r, &rq);
    pthread_mutex_lock(&r->srv->mu);
    uint16_t first = r->srv->last_peer;
    pthread_mutex_unlock(&r->srv->mu);
    fetch_once(r, &rq);
    assert_int_equal(r->last.status, FETCH_OK);
    pthread_mutex_lock(&r->srv->mu);
    assert_int_equal(r->srv->last_peer, first);
    assert_int_equal(r->srv->npeers, 1);
    pthread_mutex_unlock(&r->srv->mu);
}

static void
test_fetch_ignores_proxy_environment(void **state)
{
    struct run *r = *state;
    char url[128], proxy[64];
    url_main(r, "/ok", url, sizeof(url));
    snprintf(proxy, sizeof(proxy), "http://127.0.0.1:%u", (unsigned)r->srv->port_count);
    setenv("http_proxy", proxy, 1);
    setenv("HTTP_PROXY", proxy, 1);
    setenv("ALL_PROXY", proxy, 1);
    struct fetch_request rq = default_request(url);
    fetch_once(r, &rq);
    unsetenv("http_proxy");
    unsetenv("HTTP_PROXY");
    unsetenv("ALL_PROXY");
    assert_int_equal(r->last.status, FETCH_OK);
    assert_string_equal(r->last.body, OK_BODY);
    assert_int_equal(atomic_load(&r->srv->hits_count), 0);
    pthread_mutex_lock(&r->srv->mu);
    assert_false(r->srv->proxy_form);
    pthread_mutex_unlock(&r->srv->mu);
}

/* ---- misbehaving origin ---- */

static void
test_fetch_hang_times_out(void **state)
{
    struct run *r = *state;
    char url[128];
    url_raw(r, url, sizeof(url));
    server_raw(r->srv, RAW_HANG);
    struct fetch_request rq = default_request(url);
    rq.timeout_ms = 300;
    fetch_once(r, &rq);
    assert_int_equal(r->last.status, FETCH_TIMEOUT);
    assert_non_null(strstr(r->last.error, "timeout"));
    assert_int_equal(r->last.http_status, 0);
    assert_false(r->last.has_body);
    assert_int_equal(atomic_load(&r->srv->raw_accepted), 1);
    assert_true(r->last.total_ms >= 250);
}

static void
test_fetch_slow_drip_times_out_low_speed(void **state)
{
    struct run *r = *state;
    char url[128];
    url_raw(r, url, sizeof(url));
    server_raw(r->srv, RAW_DRIP);
    struct fetch_request rq = default_request(url);
    rq.timeout_ms = 4500; /* the low-speed limit must end it first */
    rq.low_speed_bytes_per_s = 1024;
    rq.low_speed_time_ms = 1000;
    fetch_once(r, &rq);
    assert_int_equal(r->last.status, FETCH_TIMEOUT);
    assert_string_equal(r->last.error, "low speed");
    assert_int_equal(r->last.http_status, 200);
    assert_false(r->last.has_body);
}

static void
test_fetch_body_over_cap_aborted_early(void **state)
{
    struct run *r = *state;
    char url[128];
    url_raw(r, url, sizeof(url));
    server_raw(r->srv, RAW_BIG);
    struct fetch_request rq = default_request(url);
    rq.max_bytes = 1 * MIB;
    fetch_once(r, &rq);
    assert_int_equal(r->last.status, FETCH_TOO_LARGE);
    assert_string_equal(r->last.error, "body over cap");
    assert_int_equal(r->last.http_status, 200);
    assert_false(r->last.has_body);
    assert_int_equal(r->last.len, 0);
    /* Let the server see the close, then check it could not push much past the cap: what it
     * wrote is what the client read (<= cap) plus what sat in the socket buffers. */
    run_until(r, never, 0, 200);
    size_t sent = atomic_load(&r->srv->raw_body_sent);
    print_message("raw server wrote %zu body bytes for a cap of %u\n", sent, MIB);
    assert_true(sent > MIB);
    assert_true(sent < BIG_BODY_BYTES / 2);
}

static void
test_fetch_content_length_over_cap_aborts_before_body(void **state)
{
    struct run *r = *state;
    char url[128];
    url_raw(r, url, sizeof(url));
    /* The head announces 5 MB and then nothing comes: only an abort at the head can end the
     * transfer before its timeout. */
    static const char head[] = "HTTP/1.1 200 OK\r\nContent-Length: 5000000\r\n"
                               "ETag: \"big\"\r\n\r\n";
    server_canned(r->srv, head, sizeof(head) - 1, false);
    struct fetch_request rq = default_request(url);
    rq.max_bytes = 1 * MIB;
    rq.timeout_ms = 4000;
    fetch_once(r, &rq);
    assert_int_equal(r->last.status, FETCH_TOO_LARGE);
    assert_string_equal(r->last.error, "content-length over cap");
    assert_int_equal(r->last.http_status, 200);
    assert_false(r->last.has_body);
    assert_true(r->last.total_ms < 3000);
}

static void
test_fetch_long_header_line_fails(void **state)
{
    struct run *r = *state;
    char url[128];
    url_raw(r, url, sizeof(url));
    struct buf b;
    buf_init(&b, 0);
    buf_puts(&b, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Long: ");
    for (int i = 0; i < FETCH_MAX_HEADER_LINE; i++)
        buf_puts(&b, "a");
    buf_puts(&b, "\r\n\r\nok");
    server_canned(r->srv, b.data, b.len, true);
    buf_free(&b);
    struct fetch_request rq = default_request(url);
    fetch_once(r, &rq);
    assert_int_equal(r->last.status, FETCH_FAILED);
    assert_string_equal(r->last.error, "response header line too long");
    assert_false(r->last.has_body);
}

static void
canned_with_headers(struct run *r, int nheaders)
{
    struct buf b;
    buf_init(&b, 0);
    buf_puts(&b, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"); /* one header */
    for (int i = 1; i < nheaders; i++)
        buf_printf(&b, "X-H%d: v\r\n", i);
    buf_puts(&b, "\r\nok");
    server_canned(r->srv, b.data, b.len, true);
    buf_free(&b);
}

static void
test_fetch_header_count_limit(void **state)
{
    struct run *r = *state;
    char url[128];
    url_raw(r, url, sizeof(url));
    struct fetch_request rq = default_request(url);

    canned_with_headers(r, FETCH_MAX_HEADERS);
    fetch_once(r, &rq);
    assert_int_equal(r->last.status, FETCH_OK);
    assert_string_equal(r->last.body, "ok");

    canned_with_headers(r, FETCH_MAX_HEADERS + 1);
    fetch_once(r, &rq);
    assert_int_equal(r->last.status, FETCH_FAILED);
    assert_string_equal(r->last.error, "too many response headers");
}

static void
test_fetch_unusable_header_values_reported_absent(void **state)
{
    struct run *r = *state;
    char url[128];
    url_raw(r, url, sizeof(url));
    struct buf b;
    buf_init(&b, 0);
    buf_puts(&b, "HTTP/1.1 100 Continue\r\nETag: \"interim\"\r\n\r\n");
    buf_puts(&b, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nETag: \"");
    for (int i = 0; i < 300; i++)
        buf_puts(&b, "e");
    buf_puts(&b, "\"\r\nContent-Type: \t text/plain \t\r\nCache-Control: max-age=1\r\n"
                 "Cache-Control: x\x01y\r\nLast-Modified:\r\n\r\nok");
    server_canned(r->srv, b.data, b.len, true);
    buf_free(&b);
    struct fetch_request rq = default_request(url);
    fetch_once(r, &rq);
    assert_int_equal(r->last.status, FETCH_OK);
    assert_string_equal(r->last.body, "ok");
    assert_false(r->last.has_etag);          /* too long (and the interim one is forgotten) */
    assert_false(r->last.has_cache_control); /* one line holds a control byte */
    assert_false(r->last.has_last_modified); /* empty */
    assert_true(r->last.has_content_type);
    assert_string_equal(r->last.content_type, "text/plain");
}

static void
test_fetch_garbage_and_empty_answers_fail(void **state)
{
    struct run *r = *state;
    char url[128];
    url_raw(r, url, sizeof(url));
    struct fetch_request rq = default_request(url);

    static const char garbage[] = "SSH-2.0-OpenSSH_9.2\r\n\r\n";
    server_canned(r->srv, garbage, sizeof(garbage) - 1, true);
    fetch_once(r, &rq);
    assert_int_equal(r->last.status, FETCH_FAILED);
    assert_int_equal(r->last.http_status, 0);

    server_canned(r->srv, "", 0, true);
    fetch_once(r, &rq);
    assert_int_equal(r->last.status, FETCH_FAILED);
    assert_int_equal(r->last.http_status, 0);
}

static void
test_fetch_closed_port_fails(void **state)
{
    struct run *r = *state;
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/", (unsigned)closed_port());
    struct fetch_request rq = default_request(url);
    fetch_once(r, &rq);
    assert_int_equal(r->last.status, FETCH_FAILED);
    assert_non_null(strstr(r->last.error, "refused"));
    assert_int_equal(r->last.http_status, 0);
    assert_false(r->last.has_body);

    /* "localhost" also resolves to ::1, which is not allowed: the reason is still the refused
     * connect to the allowed 127.0.0.1, not the refusal of ::1 */
    snprintf(url, sizeof(url), "http://localhost:%u/", (unsigned)closed_port());
    rq = default_request(url);
    fetch_once(r, &rq);
    assert_int_equal(r->last.status, FETCH_FAILED);
    if (strstr(r->last.error, "refused") == NULL)
        fail_msg("%s", r->last.error);
}

static void
test_fetch_file_url_never_read(void **state)
{
    struct run *r = *state;
    struct fetch_request rq = default_request("file:///etc/passwd");
    fetch_once(r, &rq);
    assert_int_equal(r->last.status, FETCH_FAILED);
    assert_non_null(strstr(r->last.error, "unsupported protocol"));
    assert_false(r->last.has_body);
    assert_int_equal(r->last.http_status, 0);

    char url[128];
    snprintf(url, sizeof(url), "ftp://127.0.0.1:%u/x", (unsigned)r->srv->port_count);
    rq = default_request(url);
    fetch_once(r, &rq);
    assert_int_equal(r->last.status, FETCH_FAILED);
    assert_int_equal(atomic_load(&r->srv->hits_count), 0);
}

/* Loopback is internal: without an allow list neither its literal nor a name resolving to it is
 * connected to, and the origin server sees nothing. */
static void
test_fetch_internal_address_denied(void **state)
{
    struct run *r = *state;
    static const char *const hosts[] = {"127.0.0.1", "localhost", "[::1]", "[::ffff:127.0.0.1]"};
    char url[128];
    for (size_t i = 0; i < UTIL_ARRAY_LEN(hosts); i++) {
        snprintf(url, sizeof(url), "http://%s:%u/counted", hosts[i], (unsigned)r->srv->port_count);
        struct fetch_request rq = default_request(url);
        rq.allow = NULL;
        rq.nallow = 0;
        fetch_once(r, &rq);
        assert_int_equal(r->last.status, FETCH_FAILED);
        if (strstr(r->last.error, "address denied: ") == NULL)
            fail_msg("%s: %s", hosts[i], r->last.error);
        assert_int_equal(r->last.http_status, 0);
        assert_false(r->last.has_body);
    }
    assert_int_equal(atomic_load(&r->srv->hits_count), 0);

    /* an allow list for another range does not help */
    static const struct netaddr_cidr ten[] = {
        {{{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 0}}, 104},
    };
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/counted", (unsigned)r->srv->port_count);
    struct fetch_request rq = default_request(url);
    rq.allow = ten;
    rq.nallow = 1;
    fetch_once(r, &rq);
    assert_int_equal(r->last.status, FETCH_FAILED);
    assert_non_null(strstr(r->last.error, "address denied: 127.0.0.1"));
    assert_int_equal(atomic_load(&r->srv->hits_count), 0);

    /* allowed, the same name reaches the server */
    snprintf(url, sizeof(url), "http://localhost:%u/counted", (unsigned)r->srv->port_count);
    rq = default_request(url);
    fetch_once(r, &rq);
    assert_int_equal(r->last.status, FETCH_OK);
    assert_int_equal(atomic_load(&r->srv->hits_count), 1);
}

static void
test_fetch_start_rejects_invalid_requests(void **state)
{
    struct run *r = *state;
    char url[128];
    url_main(r, "/ok", url, sizeof(url));
    struct fetch_request rq = default_request(NULL);
    assert_int_equal(fetch_start(r->f, &rq, on_done, r), 0);
    rq = default_request(url);
    rq.timeout_ms = 0;
    assert_int_equal(fetch_start(r->f, &rq, on_done, r), 0);
    rq = default_request(url);
    rq.max_bytes = 0;
    assert_int_equal(fetch_start(r->f, &rq, on_done, r), 0);
    rq = default_request(url);
    rq.if_none_match = "\"v1\"\r\nX-Injected: 1";
    assert_int_equal(fetch_start(r->f, &rq, on_done, r), 0);
    rq = default_request(url);
    rq.if_modified_since = "";
    assert_int_equal(fetch_start(r->f, &rq, on_done, r), 0);
    rq = default_request(url);
    rq.nallow = FETCH_MAX_ALLOW + 1;
    assert_int_equal(fetch_start(r->f, &rq, on_done, r), 0);
    rq = default_request(url);
    rq.allow = NULL;
    assert_int_equal(fetch_start(r->f, &rq, on_done, r), 0);
    assert_int_equal(fetch_start(r->f, NULL, on_done, r), 0);
    assert_int_equal(fetch_start(r->f, &rq, NULL, r), 0);
    assert_int_equal(fetch_active(r->f), 0);

    /* None of them calls back: the next good transfer's result is the only one. */
    rq = default_request(url);
    fetch_once(r, &rq);
    assert_int_equal(r->results, 1);
    assert_int_equal(r->last.status, FETCH_OK);
}

/* ---- many transfers, cancel, free ---- */

struct many {
    struct run *r;
    int i;
    int calls;
    enum fetch_status status;
    bool body_ok;
    double total_ms;
};

static void
on_many_done(void *arg, const struct fetch_result *res)
{
    struct many *m = arg;
    char want[16];
    snprintf(want, sizeof(want), "%d", m->i);
    m->calls++;
    m->status = res->status;
    m->total_ms = res->total_ms;
    m->body_ok = res->body != NULL && res->len == strlen(want) && strcmp(res->body, want) == 0;
    m->r->results++;
    maybe_break(m->r);
}

static void
test_fetch_50_concurrent_transfers(void **state)
{
    struct run *r = *state;
    enum { N = 50 };
    struct many m[N];
    uint64_t ids[N];
    for (int i = 0; i < N; i++) {
        char url[128], path[32];
        snprintf(path, sizeof(path), "/delay?i=%d", i);
        url_main(r, path, url, sizeof(url));
        m[i] = (struct many){.r = r, .i = i};
        struct fetch_request rq = default_request(url);
        ids[i] = fetch_start(r->f, &rq, on_many_done, &m[i]);
        assert_true(ids[i] > 0);
        for (int j = 0; j < i; j++)
            assert_true(ids[j] != ids[i]);
    }
    assert_int_equal(fetch_active(r->f), N);
    run_until(r, has_results, N, DEADLINE_MS);
    assert_false(r->timed_out);
    assert_int_equal(fetch_active(r->f), 0);
    for (int i = 0; i < N; i++) {
        assert_int_equal(m[i].calls, 1);
        assert_int_equal(m[i].status, FETCH_OK);
        assert_true(m[i].body_ok);
    }
    /* Every answer waits DELAY_MS: the server held as many requests at once as there were
     * connections, and the host cap bounds them (the rest waited for a free connection). */
    pthread_mutex_lock(&r->srv->mu);
    int most = r->srv->delay_max_inflight;
    pthread_mutex_unlock(&r->srv->mu);
    print_message("%d transfers, at most %d at once on the origin\n", N, most);
    assert_true(most >= 2);
    assert_true(most <= FETCH_MAX_HOST_CONNECTIONS);
}

static void
test_fetch_queued_transfers_time_out(void **state)
{
    struct run *r = *state;
    enum { N = FETCH_MAX_HOST_CONNECTIONS + 8 };
    struct many m[N];
    char url[128];
    url_raw(r, url, sizeof(url));
    server_raw(r->srv, RAW_HANG);
    for (int i = 0; i < N; i++) {
        m[i] = (struct many){.r = r, .i = i};
        struct fetch_request rq = default_request(url);
        rq.timeout_ms = 500;
        assert_true(fetch_start(r->f, &rq, on_many_done, &m[i]) > 0);
    }
    run_until(r, has_results, N, DEADLINE_MS);
    assert_false(r->timed_out);
    /* The ones that waited for a connection time out too: the timeout counts from the start,
     * not from the connect, so a burst against a hanging origin ends within the timeout. */
    for (int i = 0; i < N; i++) {
        assert_int_equal(m[i].calls, 1);
        assert_int_equal(m[i].status, FETCH_TIMEOUT);
        assert_true(m[i].total_ms < 500 + 1500);
    }
}

static void
test_fetch_cancel_in_flight(void **state)
{
    struct run *r = *state;
    char url[128];
    url_raw(r, url, sizeof(url));
    server_raw(r->srv, RAW_HANG);
    struct fetch_request rq = default_request(url);
    rq.timeout_ms = 300;
    uint64_t id = fetch_start(r->f, &rq, on_done, r);
    assert_true(id > 0);
    run_until(r, raw_accepted, 1, DEADLINE_MS);
    assert_false(r->timed_out);
    fetch_cancel(r->f, id);
    assert_int_equal(fetch_active(r->f), 0);
    fetch_cancel(r->f, id);     /* twice: ignored */
    fetch_cancel(r->f, 999999); /* unknown: ignored */
    fetch_cancel(r->f, 0);
    /* Past the transfer's timeout: nothing reports. */
    run_until(r, never, 0, 600);
    assert_int_equal(r->results, 0);

    /* The client still works. */
    char ok[128];
    url_main(r, "/ok", ok, sizeof(ok));
    rq = default_request(ok);
    fetch_once(r, &rq);
    assert_int_equal(r->results, 1);
    assert_int_equal(r->last.status, FETCH_OK);
}

static void
test_fetch_callback_may_cancel_and_start(void **state)
{
    struct run *r = *state;
    char ok[128], hang[128];
    url_main(r, "/ok", ok, sizeof(ok));
    url_raw(r, hang, sizeof(hang));
    server_raw(r->srv, RAW_HANG);

    struct fetch_request rq = default_request(hang);
    rq.timeout_ms = 400;
    uint64_t slow = fetch_start(r->f, &rq, on_done, r);
    assert_true(slow > 0);
    run_until(r, raw_accepted, 1, DEADLINE_MS);
    assert_false(r->timed_out);

    /* The quick transfer's callback cancels the hanging one and starts another. */
    r->cancel_on_done = slow;
    r->start_on_done = true;
    snprintf(r->url_in_cb, sizeof(r->url_in_cb), "%s", ok);
    rq = default_request(ok);
    assert_true(fetch_start(r->f, &rq, on_done, r) > 0);
    run_until(r, has_results, 2, DEADLINE_MS);
    assert_false(r->timed_out);
    assert_true(r->started_in_cb > 0);
    assert_int_equal(r->last.status, FETCH_OK);
    /* Past the cancelled one's timeout: no third result. */
    run_until(r, never, 0, 600);
    assert_int_equal(r->results, 2);
    assert_int_equal(fetch_active(r->f), 0);
}

static void
test_fetch_free_with_transfers_in_flight(void **state)
{
    struct run *r = *state;
    char hang[128], ok[128];
    url_raw(r, hang, sizeof(hang));
    url_main(r, "/delay?i=1", ok, sizeof(ok));
    server_raw(r->srv, RAW_HANG);
    struct fetch_request rq = default_request(hang);
    assert_true(fetch_start(r->f, &rq, on_done, r) > 0);
    rq = default_request(ok);
    assert_true(fetch_start(r->f, &rq, on_done, r) > 0);
    run_until(r, raw_accepted, 1, DEADLINE_MS);
    assert_false(r->timed_out);
    assert_int_equal(fetch_active(r->f), 2);
    fetch_free(r->f); /* leak detection at exit covers the rest */
    r->f = NULL;
    run_until(r, never, 0, 3 * DELAY_MS);
    assert_int_equal(r->results, 0);
    fetch_free(NULL);
    assert_int_equal(fetch_active(NULL), 0);
}

/* ---- two workers ---- */

struct worker {
    uint16_t port;
    int done;
    int ok;
    int started;
    bool timed_out;
    struct event_base *base;
};

struct worker_xfer {
    struct worker *w;
    int i;
};

static void
on_worker_done(void *arg, const struct fetch_result *res)
{
    struct worker_xfer *x = arg;
    char want[16];
    snprintf(want, sizeof(want), "%d", x->i);
    x->w->done++;
    if (res->status == FETCH_OK && res->body != NULL && strcmp(res->body, want) == 0)
        x->w->ok++;
    if (x->w->done == x->w->started)
        event_base_loopbreak(x->w->base);
}

static void
on_worker_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct worker *w = arg;
    w->timed_out = true;
    event_base_loopbreak(w->base);
}

/* A worker thread: its own base and client, 20 transfers; no cmocka calls off the main
 * thread, the main thread checks the counts. */
static void *
worker_main(void *arg)
{
    enum { N = 20 };
    struct worker *w = arg;
    struct worker_xfer xs[N];
    w->base = event_base_new();
    if (w->base == NULL)
        return NULL;
    struct fetch *f = fetch_new(w->base);
    if (f != NULL) {
        for (int i = 0; i < N; i++) {
            char url[128];
            snprintf(url, sizeof(url), "http://127.0.0.1:%u/delay?i=%d", (unsigned)w->port, i);
            xs[i] = (struct worker_xfer){.w = w, .i = i};
            struct fetch_request rq = default_request(url);
            if (fetch_start(f, &rq, on_worker_done, &xs[i]) > 0)
                w->started++;
        }
        struct event *deadline = evtimer_new(w->base, on_worker_deadline, w);
        struct timeval tv = {DEADLINE_MS / 1000, 0};
        evtimer_add(deadline, &tv);
        if (w->started > 0)
            event_base_dispatch(w->base);
        event_free(deadline);
        fetch_free(f);
    }
    event_base_free(w->base);
    return NULL;
}

static void
test_fetch_two_workers_at_once(void **state)
{
    struct run *r = *state;
    struct worker w[2];
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
        memset(&w[i], 0, sizeof(w[i]));
        w[i].port = r->srv->port;
        assert_int_equal(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    for (int i = 0; i < 2; i++) {
        assert_false(w[i].timed_out);
        assert_int_equal(w[i].started, 20);
        assert_int_equal(w[i].done, 20);
        assert_int_equal(w[i].ok, 20);
    }
}

/* ---- local resource errors ---- */

/* In a child: lower RLIMIT_NOFILE so no descriptor can be opened, fetch once, exit with the
 * outcome (0 local error, 10 other status, 12 no result, 13 not started, 2x setup problems). */
static void
child_fetch_without_fds(const char *url)
{
    struct run r;
    memset(&r, 0, sizeof(r));
    r.base = event_base_new();
    if (r.base == NULL)
        _exit(20);
    r.f = fetch_new(r.base);
    if (r.f == NULL)
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

    struct fetch_request rq = default_request(url);
    if (fetch_start(r.f, &rq, on_done, &r) == 0)
        _exit(13);
    r.until = has_results;
    r.target = 1;
    struct event *deadline = evtimer_new(r.base, on_deadline, &r);
    struct timeval tv = {DEADLINE_MS / 1000, 0};
    evtimer_add(deadline, &tv);
    event_base_dispatch(r.base);
    if (r.results != 1)
        _exit(12);
    _exit(r.last.status == FETCH_LOCAL_ERROR ? 0 : 10);
}

static void
test_fetch_fd_exhaustion_is_local_error(void **state)
{
    (void)state;
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/", (unsigned)closed_port());
    /* No server thread in this test: the process is single-threaded when it forks. */
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        child_fetch_without_fds(url);
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
        cmocka_unit_test_setup_teardown(test_fetch_200_body_and_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fetch_conditional_not_modified, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fetch_unconditional_304_is_http_error, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_fetch_404_and_500_are_http_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fetch_error_body_over_cap_is_http_error, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_fetch_redirect_not_followed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fetch_body_at_cap_ok_and_over_cap_by_length, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_fetch_reuses_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fetch_ignores_proxy_environment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fetch_hang_times_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fetch_slow_drip_times_out_low_speed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fetch_body_over_cap_aborted_early, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fetch_content_length_over_cap_aborts_before_body,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_fetch_long_header_line_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fetch_header_count_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fetch_unusable_header_values_reported_absent, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_fetch_garbage_and_empty_answers_fail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fetch_closed_port_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fetch_file_url_never_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fetch_internal_address_denied, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fetch_start_rejects_invalid_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fetch_50_concurrent_transfers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fetch_queued_transfers_time_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fetch_cancel_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fetch_callback_may_cancel_and_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fetch_free_with_transfers_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fetch_two_workers_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fetch_fd_exhaustion_is_local_error, setup_no_server,
                                        teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    libevent_global_shutdown();
    return rc;
}
