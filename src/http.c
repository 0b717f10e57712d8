#include "steerd/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "steerd/beacon.h"
#include "steerd/cfg.h"
#include "steerd/diag.h"
#include "steerd/httpparse.h"
#include "steerd/log.h"
#include "steerd/netaddr.h"
#include "steerd/overload.h"
#include "steerd/router.h"
#include "steerd/snap.h"
#include "steerd/stats.h"
#include "steerd/util.h"

#define IN_INITIAL 4096
#define IN_KEEP_CAP (32 * 1024) /* an idle connection's input buffer shrinks back past this */
#define OUT_HIGH_WATER (64 * 1024)
#define OUT_KEEP_CAP (16 * 1024)
#define LINGER_MS 2000
#define TICK_MS 250
#define ACCEPT_PAUSE_MS 100
#define LAG_TICK_MS 100 /* the overload level's sampling period */
#define LISTEN_BACKLOG 4096
#define WAIT_MAX_MS 120000 /* safety net for a request waiting on an asynchronous answer */

enum conn_state {
    CONN_HEAD,   /* waiting for (the rest of) a request head; header deadline runs */
    CONN_IDLE,   /* keep-alive, nothing buffered; idle deadline runs */
    CONN_LINGER, /* answer sent, write side shut; discarding input until EOF or deadline */
    CONN_WAIT,   /* a handler answers asynchronously; input is neither read nor parsed */
    CONN_BODY    /* a head was parsed; waiting for the rest of its body; body deadline runs */
};

struct worker;

struct conn {
    struct conn *prev, *next;
    struct worker *w;
    int fd;
    struct event *rev, *wev;
    struct netaddr peer;
    char *in;
    size_t in_len, in_cap;
    struct buf out;
    size_t out_off;
    uint64_t deadline_ms;
    uint64_t write_deadline_ms;
    enum conn_state state;
    bool closing;             /* linger-close once out is flushed */
    bool blocked;             /* waiting for the socket to become writable */
    bool continue_sent;       /* "100 Continue" answered for the body being read */
    size_t body_need;         /* in CONN_BODY: bytes of head + body the pending request needs */
    struct http_async *async; /* the pending asynchronous answer in CONN_WAIT */
};

struct http_async {
    struct worker *w;
    struct conn *conn; /* NULL once the connection is gone */
    struct http_reqctx ctx;
    struct netaddr peer;
    struct buf out;
};

struct task {
    void (*fn)(void *);
    void *arg;
    struct task *next;
};

struct worker {
    struct http_server *srv;
    size_t index;
    pthread_t thread;
    bool started;
    struct event_base *base;
    struct evconnlistener **listeners; /* [srv->nlisten]; NULL once closed */
    bool accepting;
    struct event *tick, *wake, *resume;
    _Atomic(struct snap *) inbox;
    struct snap *snap;
    struct stats_worker *stats;
    struct conn *conns;
    size_t nconns;
    uint64_t now_ms;
    char date_line[64];
    size_t date_len;
    time_t date_sec;
    _Atomic bool drain_req;
    _Atomic uint32_t drain_grace_ms;
    bool draining;
    uint64_t drain_deadline_ms;
    uint64_t last_accept_log_ms;
    struct event *lag;        /* the overload sampling timer */
    uint64_t lag_due_ms;      /* when it should run next */
    struct overload_state ov; /* env.overload is ov.level */
    struct http_env env;
    pthread_mutex_t task_mu; /* guards tasks and tasks_closed: posted from any thread */
    struct task *tasks, *tasks_tail;
    bool tasks_closed;
};

struct http_server {
    struct worker *workers;
    uint32_t nworkers;
    size_t nlisten;
    int *fds; /* [nworkers * nlisten], -1 once handed to a listener */
    char **bound;
    struct stats *stats;
    _Atomic uint32_t running; /* worker threads not yet finished */
    struct http_hooks hooks;
    struct beacon_hub *beacons; /* borrowed; NULL: no beacon ingestion */
};

/* ---- sockets ---------------------------------------------------------------------------- */

static int
make_sockaddr(const char *host, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        *len = sizeof(*sin);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        *len = sizeof(*sin6);
        return 0;
    }
    return -1;
}

static int
bind_socket(const struct sockaddr_storage *ss, socklen_t len, struct diag *d, const char *what)
{
    int one = 1;
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        diag_add(d, "%s: socket: %s", what, strerror(errno));
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
        diag_add(d, "%s: SO_REUSEPORT: %s", what, strerror(errno));
        close(fd);
        return -1;
    }
    if (ss->ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, (const struct sockaddr *)ss, len) != 0) {
        diag_add(d, "%s: bind: %s", what, strerror(errno));
        close(fd);
        return -1;
    }
    if (listen(fd, LISTEN_BACKLOG) != 0) {
        diag_add(d, "%s: listen: %s", what, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

struct http_server *
http_server_new(const struct cfg *cfg, uint32_t workers, struct stats *stats, struct diag *d)
{
    struct http_server *s = xcalloc(1, sizeof(*s));
    s->nworkers = workers;
    s->nlisten = cfg->nlisten;
    s->stats = stats;
    s->fds = xcalloc(workers * cfg->nlisten, sizeof(int));
    s->bound = xcalloc(cfg->nlisten, sizeof(char *));
    for (size_t i = 0; i < workers * cfg->nlisten; i++)
        s->fds[i] = -1;
    s->workers = xcalloc(workers, sizeof(*s->workers));
    for (uint32_t k = 0; k < workers; k++)
        pthread_mutex_init(&s->workers[k].task_mu, NULL);

    for (size_t i = 0; i < cfg->nlisten; i++) {
        char host[NETADDR_STRLEN];
        uint16_t port = 0;
        struct sockaddr_storage ss;
        socklen_t len = 0;
        if (cfg_split_hostport(cfg->listen[i], host, sizeof(host), &port) != 0 ||
            make_sockaddr(host, port, &ss, &len) != 0) {
            diag_add(d, "listen[%zu]: bad address %s", i, cfg->listen[i]);
            goto fail;
        }
        for (uint32_t k = 0; k < workers; k++) {
            int fd = bind_socket(&ss, len, d, cfg->listen[i]);
            if (fd < 0)
                goto fail;
            s->fds[k * s->nlisten + i] = fd;
            if (k == 0 && port == 0) {
                /* An ephemeral port: every other worker binds the same one. */
                struct sockaddr_storage got;
                socklen_t glen = sizeof(got);
                getsockname(fd, (struct sockaddr *)&got, &glen);
                port = ntohs(got.ss_family == AF_INET ? ((struct sockaddr_in *)&got)->sin_port
                                                      : ((struct sockaddr_in6 *)&got)->sin6_port);
                make_sockaddr(host, port, &ss, &len);
            }
        }
        char out[NETADDR_STRLEN + 16];
        snprintf(out, sizeof(out), strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, (unsigned)port);
        s->bound[i] = xstrdup(out);
    }
    return s;
fail:
    http_server_free(s);
    return NULL;
}

size_t
http_server_listen_count(const struct http_server *s)
{
    return s->nlisten;
}

int
http_server_bound_addr(const struct http_server *s, size_t i, char *out, size_t outsz)
{
    if (i >= s->nlisten || s->bound[i] == NULL || strlen(s->bound[i]) >= outsz)
        return -1;
    memcpy(out, s->bound[i], strlen(s->bound[i]) + 1);
    return 0;
}

/* ---- workers: snapshots, clock, listeners ---------------------------------------------- */

static void
worker_adopt(struct worker *w)
{
    struct snap *s = atomic_exchange_explicit(&w->inbox, NULL, memory_order_acq_rel);
    if (s == NULL)
        return;
    if (w->snap == NULL || w->snap->conf != s->conf)
        stats_worker_adopt(w->srv->stats, w->index, s->conf);
    struct snap *old = w->snap;
    w->snap = s;
    snap_unref(old);
}

static void
worker_clock(struct worker *w)
{
    w->now_ms = util_now_ms();
    time_t now = time(NULL);
    if (now != w->date_sec) {
        struct tm tm;
        gmtime_r(&now, &tm);
        w->date_len = strftime(w->date_line, sizeof(w->date_line),
                               "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
        w->date_sec = now;
    }
}

static void
listeners_set(struct worker *w, bool on)
{
    if (w->accepting == on)
        return;
    for (size_t i = 0; i < w->srv->nlisten; i++) {
        if (w->listeners[i] == NULL)
            continue;
        if (on)
            evconnlistener_enable(w->listeners[i]);
        else
            evconnlistener_disable(w->listeners[i]);
    }
    w->accepting = on;
}

static void
listeners_close(struct worker *w)
{
    for (size_t i = 0; i < w->srv->nlisten; i++) {
        if (w->listeners[i] != NULL)
            evconnlistener_free(w->listeners[i]);
        w->listeners[i] = NULL;
    }
    w->accepting = false;
}

/* Accepting resumes when below the cap, not draining, not paused after an accept error, and
 * below overload level 3. */
static void
listeners_maybe_resume(struct worker *w)
{
    if (w->draining || w->accepting || evtimer_pending(w->resume, NULL) ||
        w->env.overload >= OVERLOAD_LEVEL_MAX)
        return;
    if (w->nconns < w->snap->conf->cfg->http.max_connections)
        listeners_set(w, true);
}

/* ---- connections ------------------------------------------------------------------------ */

static void
conn_close(struct conn *c)
{
    struct worker *w = c->w;
    if (c->async != NULL)
        c->async->conn = NULL;
    event_free(c->rev);
    event_free(c->wev);
    close(c->fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    free(c->in);
    buf_free(&c->out);
    free(c);
    w->nconns--;
    atomic_store_explicit(&w->stats->conns_active, w->nconns, memory_order_relaxed);
    if (w->draining) {
        if (w->nconns == 0)
            event_base_loopexit(w->base, NULL);
        return;
    }
    listeners_maybe_resume(w);
}

/* The answer is out: shut the write side and discard input until the peer closes, so a
 * close with unread input does not reset the connection before the peer has read it. */
static void
conn_linger(struct conn *c)
{
    shutdown(c->fd, SHUT_WR);
    c->state = CONN_LINGER;
    c->deadline_ms = c->w->now_ms + LINGER_MS;
    c->in_len = 0;
}

/* Writes what is buffered. Returns 0 when the connection lives on, -1 when it was closed. */
static int
conn_flush(struct conn *c)
{
    while (c->out_off < c->out.len) {
        ssize_t n = write(c->fd, c->out.data + c->out_off, c->out.len - c->out_off);
        if (n > 0) {
            c->out_off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!c->blocked) {
                c->blocked = true;
                c->write_deadline_ms = c->w->now_ms + c->w->snap->conf->cfg->http.write_timeout_ms;
                event_del(c->rev);
                event_add(c->wev, NULL);
            }
            return 0;
        }
        conn_close(c);
        return -1;
    }
    c->out_off = 0;
    if (c->out.cap > OUT_KEEP_CAP)
        buf_free(&c->out);
    else
        buf_reset(&c->out);
    if (c->blocked) {
        c->blocked = false;
        event_del(c->wev);
        if (c->state != CONN_WAIT)
            event_add(c->rev, NULL);
    }
    if (c->closing && c->state != CONN_LINGER)
        conn_linger(c);
    return 0;
}

static enum stats_reject
reject_reason(enum httpp_status st)
{
    switch (st) {
    case HTTPP_URI_TOO_LONG:
        return STATS_REJECT_URI_TOO_LONG;
    case HTTPP_HEADERS_TOO_LARGE:
        return STATS_REJECT_HEADERS_TOO_LARGE;
    case HTTPP_VERSION_UNSUPPORTED:
        return STATS_REJECT_VERSION;
    case HTTPP_NOT_IMPLEMENTED:
        return STATS_REJECT_NOT_IMPLEMENTED;
    default:
        return STATS_REJECT_BAD_REQUEST;
    }
}

static const char *
reject_text(enum httpp_status st)
{
    switch (st) {
    case HTTPP_URI_TOO_LONG:
        return "request line too long";
    case HTTPP_HEADERS_TOO_LARGE:
        return "request header fields too large";
    case HTTPP_VERSION_UNSUPPORTED:
        return "http version not supported";
    case HTTPP_NOT_IMPLEMENTED:
        return "transfer coding not implemented";
    default:
        return "malformed request";
    }
}

/* The head of a request whose route takes a body is complete at in[0..). Decides whether its
 * body is acceptable and all there. Returns 0 when the whole request (head_len + body) is
 * buffered; 1 when more bytes are needed (state CONN_BODY, body deadline set on entry); or an
 * error status code (411, 413) to answer, closing the connection. */
static int
body_ready(struct conn *c, const struct httpp_request *req, size_t avail)
{
    const struct cfg_http *h = &c->w->snap->conf->cfg->http;

    /* Chunked bodies are not taken: beacon bodies are small and players send Content-Length. */
    if (req->chunked || req->content_length < 0)
        return 411;
    if ((uint64_t)req->content_length > h->max_body_bytes)
        return 413;
    size_t need = req->head_len + (size_t)req->content_length;
    if (avail >= need) {
        c->body_need = 0;
        c->continue_sent = false;
        if (c->state == CONN_BODY)
            c->state = CONN_HEAD; /* set properly once the request is consumed */
        return 0;
    }
    if (c->state != CONN_BODY) {
        c->state = CONN_BODY;
        c->deadline_ms = c->w->now_ms + h->body_timeout_ms;
    }
    c->body_need = need;
    if (req->expect_continue && !c->continue_sent) {
        buf_puts(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
        c->continue_sent = true;
    }
    return 1;
}

/* Answers every complete request head in the input buffer (pipelining), then writes. */
static void
conn_process(struct conn *c)
{
    struct worker *w = c->w;

    if (atomic_load_explicit(&w->inbox, memory_order_relaxed) != NULL)
        worker_adopt(w);

    for (;;) {
        struct snap *snap = w->snap;
        size_t off = 0;
        bool incomplete = false;

        while (!c->closing && c->state != CONN_WAIT && off < c->in_len &&
               c->out.len - c->out_off < OUT_HIGH_WATER) {
            struct httpp_request req;
            enum httpp_status st =
                httpp_parse(c->in + off, c->in_len - off, &snap->conf->limits, &req);
            if (st == HTTPP_INCOMPLETE) {
                incomplete = true;
                break;
            }
            struct http_reqctx ctx = {
                .snap = snap,
                .peer = &c->peer,
                .req = NULL,
                .stats = w->stats,
                .env = &w->env,
                .conn = c,
                .date_line = w->date_line,
                .date_len = w->date_len,
                .close = true,
            };
            if (st != HTTPP_COMPLETE) {
                stats_add(&w->stats->rejected[reject_reason(st)], 1);
                router_write_error(&ctx, httpp_status_code(st), reject_text(st), &c->out);
                c->closing = true;
                break;
            }
            ctx.req = &req;
            ctx.head = req.method_id == HTTPP_HEAD;
            ctx.close = !req.keep_alive || w->draining;
            if (!ctx.close && w->env.overload >= 2) {
                /* overload level 2: answer, then let the client go */
                ctx.close = true;
                stats_add(&w->stats->shed[STATS_SHED_KEEPALIVE], 1);
            }
            size_t used = req.head_len;
            if (router_wants_body(&req)) {
                int b = body_ready(c, &req, c->in_len - off);
                if (b == 1) {
                    incomplete = true;
                    break;
                }
                if (b != 0) {
                    stats_add(&w->stats->rejected[STATS_REJECT_BODY], 1);
                    ctx.close = true;
                    router_write_error(&ctx, b,
                                       b == 413 ? "request body too large"
                                                : "Content-Length required (no chunked bodies)",
                                       &c->out);
                    c->closing = true;
                    break;
                }
                ctx.body = c->in + off + req.head_len;
                ctx.body_len = (size_t)req.content_length;
                used += ctx.body_len;
            }
            int code = router_handle(&ctx, &c->out);
            off += used;
            if (code == ROUTER_ASYNC) {
                /* http_async_begin put the connection in CONN_WAIT; the token keeps close. */
                continue;
            }
            if (ctx.close)
                c->closing = true;
        }
        if (c->state == CONN_WAIT) {
            memmove(c->in, c->in + off, c->in_len - off);
            c->in_len -= off;
            conn_flush(c); /* earlier pipelined answers; a closed conn detaches the token */
            return;
        }
        if (off > 0) {
            memmove(c->in, c->in + off, c->in_len - off);
            c->in_len -= off;
            if (c->state == CONN_BODY) {
                /* the body deadline set in body_ready stands */
            } else if (c->in_len == 0) {
                c->state = CONN_IDLE;
                c->deadline_ms = w->now_ms + snap->conf->cfg->http.keepalive_timeout_ms;
            } else {
                c->state = CONN_HEAD;
                c->deadline_ms = w->now_ms + snap->conf->cfg->http.header_timeout_ms;
            }
        }
        if (c->in_len == 0 && c->in_cap > IN_KEEP_CAP) {
            /* A large body is gone: idle keep-alive connections keep a small buffer. */
            free(c->in);
            c->in = xmalloc(IN_INITIAL);
            c->in_cap = IN_INITIAL;
        }
        if (conn_flush(c) != 0)
            return;
        /* Stop when waiting for input, for the socket, or closing; otherwise answer the rest
         * of a pipelined burst that stopped at the output high-water mark. */
        if (incomplete || c->blocked || c->closing || c->in_len == 0)
            return;
    }
}

static void
on_read(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    struct worker *w = c->w;
    (void)what;

    if (c->state == CONN_LINGER) {
        char sink[4096];
        ssize_t n = read(fd, sink, sizeof(sink));
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            conn_close(c);
        return;
    }
    if (c->in_len == c->in_cap) {
        size_t max = (size_t)w->snap->conf->cfg->http.max_header_bytes + 1;
        if (c->state == CONN_BODY && c->body_need > max)
            max = c->body_need; /* head + body, capped by http.max_body_bytes in body_ready */
        if (c->in_cap >= max) {
            conn_close(c); /* cannot happen: the parser answers 431 first */
            return;
        }
        size_t cap = c->in_cap * 2 < max ? c->in_cap * 2 : max;
        c->in = xrealloc(c->in, cap);
        c->in_cap = cap;
    }
    ssize_t n = read(fd, c->in + c->in_len, c->in_cap - c->in_len);
    if (n == 0) {
        conn_close(c);
        return;
    }
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            conn_close(c);
        return;
    }
    if (c->state == CONN_IDLE) {
        c->state = CONN_HEAD;
        c->deadline_ms = w->now_ms + w->snap->conf->cfg->http.header_timeout_ms;
    }
    c->in_len += (size_t)n;
    conn_process(c);
}

static void
on_write(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    (void)fd;
    (void)what;
    if (conn_flush(c) != 0)
        return;
    if (!c->blocked && c->state != CONN_LINGER && c->in_len > 0)
        conn_process(c);
}

static void
on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
    struct worker *w = arg;
    int one = 1;
    (void)l;
    (void)salen;

    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct conn *c = xcalloc(1, sizeof(*c));
    c->w = w;
    c->fd = fd;
    if (netaddr_from_sockaddr(sa, &c->peer) != 0)
        memset(&c->peer, 0, sizeof(c->peer));
    c->in = xmalloc(IN_INITIAL);
    c->in_cap = IN_INITIAL;
    buf_init(&c->out, 0);
    c->rev = event_new(w->base, fd, EV_READ | EV_PERSIST, on_read, c);
    c->wev = event_new(w->base, fd, EV_WRITE | EV_PERSIST, on_write, c);
    c->state = CONN_HEAD;
    c->deadline_ms = w->now_ms + w->snap->conf->cfg->http.header_timeout_ms;
    event_add(c->rev, NULL);

    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    w->nconns++;
    atomic_store_explicit(&w->stats->conns_active, w->nconns, memory_order_relaxed);
    stats_add(&w->stats->conns_total, 1);
    if (w->nconns >= w->snap->conf->cfg->http.max_connections) {
        stats_add(&w->stats->shed[STATS_SHED_ACCEPT], 1);
        listeners_set(w, false);
    }
}

/* accept() failed: with EMFILE/ENFILE the listening socket stays readable and libevent would
 * call us in a busy loop, so pause accepting for a while and log at most once a second. */
static void
on_accept_error(struct evconnlistener *l, void *arg)
{
    struct worker *w = arg;
    int err = EVUTIL_SOCKET_ERROR();
    (void)l;

    stats_add(&w->stats->accept_errors, 1);
    worker_clock(w);
    if (w->now_ms - w->last_accept_log_ms >= 1000) {
        log_errno(LOG_WARN, err, "http", "accept failed; pausing accepts for %d ms",
                  ACCEPT_PAUSE_MS);
        w->last_accept_log_ms = w->now_ms;
    }
    listeners_set(w, false);
    struct timeval tv = {0, ACCEPT_PAUSE_MS * 1000};
    evtimer_add(w->resume, &tv);
}

static void
on_resume(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    (void)fd;
    (void)what;
    listeners_maybe_resume(w);
}

static void
timeout_conn(struct worker *w, struct conn *c)
{
    bool body = c->state == CONN_BODY;

    if (c->in_len == 0) {
        conn_close(c);
        return;
    }
    /* A request head (slowloris) or body (slow POST) that did not complete in time: 408, then
     * close. */
    struct http_reqctx ctx = {
        .snap = w->snap,
        .peer = &c->peer,
        .stats = w->stats,
        .env = &w->env,
        .date_line = w->date_line,
        .date_len = w->date_len,
        .close = true,
    };
    stats_add(&w->stats->rejected[body ? STATS_REJECT_BODY_TIMEOUT : STATS_REJECT_HEADER_TIMEOUT],
              1);
    router_write_error(&ctx, 408, body ? "request body timeout" : "request header timeout",
                       &c->out);
    c->closing = true;
    c->in_len = 0;
    conn_flush(c);
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    (void)fd;
    (void)what;

    worker_clock(w);
    worker_adopt(w);
    if (w->draining && w->now_ms >= w->drain_deadline_ms) {
        while (w->conns)
            conn_close(w->conns);
        event_base_loopexit(w->base, NULL);
        return;
    }
    struct conn *next = NULL;
    for (struct conn *c = w->conns; c != NULL; c = next) {
        next = c->next;
        if (c->blocked) {
            if (w->now_ms >= c->write_deadline_ms)
                conn_close(c);
            continue;
        }
        if (w->now_ms < c->deadline_ms)
            continue;
        if ((c->state == CONN_HEAD || c->state == CONN_BODY) && !c->closing)
            timeout_conn(w, c);
        else
            conn_close(c);
    }
}

/* Every LAG_TICK_MS: how late this timer runs is the event loop's lag; with the connection
 * count it moves the worker's overload level. Level 3 pauses accepting until it falls. */
static void
on_lag(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    struct overload_params p;
    (void)fd;
    (void)what;

    worker_clock(w);
    uint64_t late = w->now_ms > w->lag_due_ms ? w->now_ms - w->lag_due_ms : 0;
    uint32_t lag = late > UINT32_MAX ? UINT32_MAX : (uint32_t)late;
    overload_params_from_cfg(&w->snap->conf->cfg->http, &p);
    uint32_t old = w->env.overload;
    uint32_t level = overload_update(&w->ov, &p, w->now_ms, lag, w->nconns);
    w->env.overload = level;
    atomic_store_explicit(&w->stats->overload_level, level, memory_order_relaxed);
    atomic_store_explicit(&w->stats->loop_lag_ms, lag, memory_order_relaxed);
    if (level != old) {
        log_msg(level > old ? LOG_WARN : LOG_INFO, "http",
                "worker %zu: overload level %u -> %u (loop lag %u ms, %zu connections)", w->index,
                old, level, lag, w->nconns);
        if (level >= OVERLOAD_LEVEL_MAX && w->accepting && !w->draining) {
            stats_add(&w->stats->shed[STATS_SHED_ACCEPT], 1);
            listeners_set(w, false);
        } else if (old >= OVERLOAD_LEVEL_MAX) {
            listeners_maybe_resume(w);
        }
    }
    w->lag_due_ms = w->now_ms + LAG_TICK_MS;
    struct timeval tv = {0, LAG_TICK_MS * 1000};
    evtimer_add(w->lag, &tv);
}

/* Runs the tasks posted to w; with close set, no task can be posted afterwards. */
static void
run_tasks(struct worker *w, bool close)
{
    for (;;) {
        pthread_mutex_lock(&w->task_mu);
        struct task *t = w->tasks;
        w->tasks = w->tasks_tail = NULL;
        if (t == NULL && close)
            w->tasks_closed = true;
        pthread_mutex_unlock(&w->task_mu);
        if (t == NULL)
            return;
        while (t != NULL) {
            struct task *next = t->next;
            t->fn(t->arg);
            free(t);
            t = next;
        }
    }
}

static void
on_wake(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    (void)fd;
    (void)what;

    worker_clock(w);
    worker_adopt(w);
    run_tasks(w, false);
    if (atomic_load(&w->drain_req) && !w->draining) {
        w->draining = true;
        w->drain_deadline_ms = w->now_ms + atomic_load(&w->drain_grace_ms);
        listeners_close(w);
        struct conn *next = NULL;
        for (struct conn *c = w->conns; c != NULL; c = next) {
            next = c->next;
            bool idle = c->state == CONN_IDLE || (c->state == CONN_HEAD && c->in_len == 0);
            if (idle && !c->blocked && c->out.len == c->out_off)
                conn_close(c);
        }
        if (w->nconns == 0)
            event_base_loopexit(w->base, NULL);
    }
}

static void *
worker_main(void *arg)
{
    struct worker *w = arg;
    if (w->srv->hooks.worker_start != NULL)
        w->env.local = w->srv->hooks.worker_start(&w->env);
    event_base_dispatch(w->base);
    w->draining = true; /* nothing may re-enable accepting from here on */
    while (w->conns)
        conn_close(w->conns);
    listeners_close(w);
    if (w->srv->hooks.worker_stop != NULL)
        w->srv->hooks.worker_stop(&w->env);
    run_tasks(w, true);
    atomic_fetch_sub(&w->srv->running, 1);
    return NULL;
}

int
http_server_start(struct http_server *s, struct snap *initial, struct diag *d)
{
    for (uint32_t k = 0; k < s->nworkers; k++) {
        struct worker *w = &s->workers[k];
        w->srv = s;
        w->index = k;
        w->stats = stats_worker(s->stats, k);
        w->base = event_base_new();
        if (w->base == NULL) {
            diag_add(d, "worker %u: event_base_new failed", k);
            return -1;
        }
        w->env =
            (struct http_env){.worker = k, .base = w->base, .server = s, .shared = s->hooks.shared};
        if (s->beacons != NULL)
            w->env.beacon = beacon_hub_worker(s->beacons, k);
        atomic_init(&w->inbox, snap_ref(initial));
        worker_adopt(w);
        worker_clock(w);
        w->listeners = xcalloc(s->nlisten, sizeof(*w->listeners));
        for (size_t i = 0; i < s->nlisten; i++) {
            int fd = s->fds[k * s->nlisten + i];
            w->listeners[i] =
                evconnlistener_new(w->base, on_accept, w, LEV_OPT_CLOSE_ON_FREE, 0, fd);
            if (w->listeners[i] == NULL) {
                diag_add(d, "worker %u: cannot listen on %s", k, s->bound[i]);
                return -1;
            }
            s->fds[k * s->nlisten + i] = -1;
            evconnlistener_set_error_cb(w->listeners[i], on_accept_error);
        }
        w->accepting = true;
        w->tick = event_new(w->base, -1, EV_PERSIST, on_tick, w);
        w->wake = event_new(w->base, -1, 0, on_wake, w);
        w->resume = evtimer_new(w->base, on_resume, w);
        struct timeval tv = {0, TICK_MS * 1000};
        event_add(w->tick, &tv);
        w->lag = evtimer_new(w->base, on_lag, w);
        w->lag_due_ms = w->now_ms + LAG_TICK_MS;
        struct timeval lag_tv = {0, LAG_TICK_MS * 1000};
        evtimer_add(w->lag, &lag_tv);
    }
    for (uint32_t k = 0; k < s->nworkers; k++) {
        struct worker *w = &s->workers[k];
        atomic_fetch_add(&s->running, 1);
        int rc = pthread_create(&w->thread, NULL, worker_main, w);
        if (rc != 0) {
            atomic_fetch_sub(&s->running, 1);
            diag_add(d, "worker %u: pthread_create: %s", k, strerror(rc));
            return -1;
        }
        w->started = true;
    }
    return 0;
}

void
http_server_publish(struct http_server *s, struct snap *snap)
{
    for (uint32_t k = 0; k < s->nworkers; k++) {
        struct worker *w = &s->workers[k];
        struct snap *old =
            atomic_exchange_explicit(&w->inbox, snap_ref(snap), memory_order_acq_rel);
        snap_unref(old);
        if (w->wake)
            event_active(w->wake, 0, 0);
    }
}

void
http_server_drain(struct http_server *s, uint32_t grace_ms)
{
    for (uint32_t k = 0; k < s->nworkers; k++) {
        struct worker *w = &s->workers[k];
        atomic_store(&w->drain_grace_ms, grace_ms);
        atomic_store(&w->drain_req, true);
        if (w->wake)
            event_active(w->wake, 0, 0);
    }
}

void
http_server_join(struct http_server *s)
{
    for (uint32_t k = 0; k < s->nworkers; k++) {
        struct worker *w = &s->workers[k];
        if (w->started)
            pthread_join(w->thread, NULL);
        w->started = false;
    }
}

void
http_server_free(struct http_server *s)
{
    if (s == NULL)
        return;
    for (uint32_t k = 0; k < s->nworkers; k++) {
        struct worker *w = &s->workers[k];
        w->draining = true;
        if (w->listeners) {
            while (w->conns)
                conn_close(w->conns);
            listeners_close(w);
            free(w->listeners);
        }
        if (w->tick)
            event_free(w->tick);
        if (w->wake)
            event_free(w->wake);
        if (w->resume)
            event_free(w->resume);
        if (w->lag)
            event_free(w->lag);
        if (w->base)
            event_base_free(w->base);
        snap_unref(atomic_exchange(&w->inbox, NULL));
        snap_unref(w->snap);
        run_tasks(w, true); /* a worker that never started: its tasks still run, once */
        pthread_mutex_destroy(&w->task_mu);
    }
    for (size_t i = 0; i < s->nworkers * s->nlisten; i++) {
        if (s->fds[i] >= 0)
            close(s->fds[i]);
    }
    for (size_t i = 0; i < s->nlisten; i++)
        free(s->bound[i]);
    free(s->bound);
    free(s->fds);
    free(s->workers);
    free(s);
}

uint32_t
http_server_running(const struct http_server *s)
{
    return atomic_load(&((struct http_server *)s)->running);
}

void
http_server_set_hooks(struct http_server *s, const struct http_hooks *hooks)
{
    s->hooks = *hooks;
}

void
http_server_set_beacons(struct http_server *s, struct beacon_hub *hub)
{
    s->beacons = hub;
}

int
http_server_post(struct http_server *s, uint32_t worker, void (*fn)(void *), void *arg)
{
    if (worker >= s->nworkers)
        return -1;
    struct worker *w = &s->workers[worker];
    struct task *t = xmalloc(sizeof(*t));
    t->fn = fn;
    t->arg = arg;
    t->next = NULL;
    pthread_mutex_lock(&w->task_mu);
    if (w->tasks_closed) {
        pthread_mutex_unlock(&w->task_mu);
        free(t);
        return -1;
    }
    if (w->tasks_tail)
        w->tasks_tail->next = t;
    else
        w->tasks = t;
    w->tasks_tail = t;
    pthread_mutex_unlock(&w->task_mu);
    if (w->wake)
        event_active(w->wake, 0, 0);
    return 0;
}

/* ---- asynchronous answers ------------------------------------------------------------- */

struct http_async *
http_async_begin(struct http_reqctx *ctx)
{
    struct conn *c = ctx->conn;
    struct worker *w = c->w;
    struct http_async *a = xcalloc(1, sizeof(*a));

    a->w = w;
    a->conn = c;
    a->peer = c->peer;
    a->ctx = *ctx;
    a->ctx.req = NULL;
    a->ctx.conn = NULL;
    a->ctx.peer = &a->peer;
    a->ctx.snap = snap_ref(ctx->snap);
    buf_init(&a->out, 0);

    c->async = a;
    c->state = CONN_WAIT;
    c->deadline_ms = w->now_ms + WAIT_MAX_MS;
    event_del(c->rev);
    return a;
}

struct http_reqctx *
http_async_ctx(struct http_async *a)
{
    a->ctx.date_line = a->w->date_line;
    a->ctx.date_len = a->w->date_len;
    return &a->ctx;
}

struct buf *
http_async_out(struct http_async *a)
{
    return &a->out;
}

uint32_t
http_async_worker(const struct http_async *a)
{
    return (uint32_t)a->w->index;
}

bool
http_async_alive(const struct http_async *a)
{
    return a->conn != NULL;
}

void
http_async_abandon(struct http_async *a)
{
    if (a == NULL)
        return;
    if (a->conn != NULL)
        a->conn->async = NULL;
    snap_unref(a->ctx.snap);
    buf_free(&a->out);
    free(a);
}

void
http_async_finish(struct http_async *a)
{
    struct conn *c = a->conn;

    if (c != NULL) {
        struct worker *w = c->w;
        c->async = NULL;
        buf_append(&c->out, a->out.data ? a->out.data : "", a->out.len);
        if (a->ctx.close || w->draining)
            c->closing = true;
        if (c->in_len == 0) {
            c->state = CONN_IDLE;
            c->deadline_ms = w->now_ms + w->snap->conf->cfg->http.keepalive_timeout_ms;
        } else {
            c->state = CONN_HEAD;
            c->deadline_ms = w->now_ms + w->snap->conf->cfg->http.header_timeout_ms;
        }
        if (!c->blocked)
            event_add(c->rev, NULL);
    }
    a->conn = NULL;
    http_async_abandon(a);
    if (c != NULL)
        conn_process(c);
}
