#include "steerd/fetch.h"

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "steerd/util.h"

#define FETCH_ERR_MAX 160
#define ETAG_MAX 256
#define LAST_MODIFIED_MAX 64
#define CONTENT_TYPE_MAX 256
#define CACHE_CONTROL_MAX 512
#define BODY_FIRST_ALLOC 16384u

/* Why a callback of ours stopped the transfer (curl then reports CURLE_WRITE_ERROR). */
enum stop_reason {
    STOP_NONE = 0,
    STOP_BODY_CAP,     /* the body passed max_bytes */
    STOP_LENGTH_CAP,   /* Content-Length above max_bytes, before any body byte */
    STOP_ERROR_BODY,   /* a non-2xx answer's (discarded) body passed max_bytes */
    STOP_HEADER_LINE,  /* a response header line longer than FETCH_MAX_HEADER_LINE */
    STOP_HEADER_COUNT, /* more than FETCH_MAX_HEADERS header lines */
};

/* One transfer, from fetch_start until its callback returns or it is cancelled. */
struct xfer {
    uint64_t id;
    CURL *easy;
    struct curl_slist *req_headers;
    fetch_done_fn cb;
    void *arg;
    struct xfer *prev, *next;
    size_t max_bytes;
    bool conditional;

    /* the response head being read: the last one (after any 1xx) is the final one */
    long head_status;       /* status line of the head being read */
    long status;            /* of the final head once it ended; 0 before */
    bool head_done;         /* the final head ended: later lines are trailers */
    unsigned nheaders;      /* header lines seen, all heads and trailers together */
    int64_t content_length; /* -1 when absent */
    bool cache_control_bad; /* one Cache-Control line was unusable: report none */
    char etag[ETAG_MAX + 1];
    char last_modified[LAST_MODIFIED_MAX + 1];
    char content_type[CONTENT_TYPE_MAX + 1];
    char cache_control[CACHE_CONTROL_MAX + 1];

    /* the body of a 2xx answer: at most max_bytes + 1 bytes allocated */
    char *body;
    size_t len;
    size_t cap;
    size_t discarded; /* body bytes of a non-2xx answer, counted and dropped */

    enum stop_reason stop;
    int socket_errno; /* errno of a failed socket() in open_socket, 0 if none */
    char errbuf[CURL_ERROR_SIZE];
    char error[FETCH_ERR_MAX];
};

/* One socket curl asked us to watch (curl_multi_assign'ed to it). */
struct sock {
    struct fetch *f;
    curl_socket_t fd;
    struct event *ev;
    struct sock *prev, *next;
};

struct fetch {
    struct event_base *base;
    CURLM *multi;
    struct event *multi_timer;
    struct xfer *xfers; /* every transfer started and not yet ended */
    size_t nactive;
    uint64_t next_id;
    struct sock *socks; /* every struct sock alive, so none can outlive fetch_free */
    bool in_cb;         /* a done callback is running */
};

static void check_done(struct fetch *f);

/* ---- libcurl <-> libevent glue (curl's docs/examples/multi-event.c) ---- */

static void
on_multi_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct fetch *f = arg;
    int running = 0;
    curl_multi_socket_action(f->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(f);
}

static int
multi_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    struct fetch *f = userp;
    if (timeout_ms < 0) {
        evtimer_del(f->multi_timer);
        return 0;
    }
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    return evtimer_add(f->multi_timer, &tv) == 0 ? 0 : -1;
}

static void
on_socket(evutil_socket_t fd, short what, void *arg)
{
    struct sock *s = arg;
    struct fetch *f = s->f; /* s may be freed by curl_multi_socket_action */
    int flags =
        ((what & EV_READ) ? CURL_CSELECT_IN : 0) | ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);
    int running = 0;
    curl_multi_socket_action(f->multi, fd, flags, &running);
    check_done(f);
}

static void
sock_free(struct fetch *f, struct sock *s)
{
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        f->socks = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    if (s->ev != NULL)
        event_free(s->ev);
    free(s);
}

static int
multi_socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    struct fetch *f = userp;
    struct sock *s = socketp;

    if (what == CURL_POLL_REMOVE) {
        if (s != NULL) {
            curl_multi_assign(f->multi, fd, NULL);
            sock_free(f, s);
        }
        return 0;
    }
    if (s == NULL) {
        s = xcalloc(1, sizeof(*s));
        s->f = f;
        s->fd = fd;
        s->next = f->socks;
        if (f->socks != NULL)
            f->socks->prev = s;
        f->socks = s;
        curl_multi_assign(f->multi, fd, s);
    }
    short kind = (short)(((what & CURL_POLL_IN) ? EV_READ : 0) |
                         ((what & CURL_POLL_OUT) ? EV_WRITE : 0) | EV_PERSIST);
    if (s->ev == NULL) {
        s->ev = event_new(f->base, fd, kind, on_socket, s);
        if (s->ev == NULL)
            return -1;
    } else {
        event_del(s->ev);
        event_assign(s->ev, f->base, fd, kind, on_socket, s);
    }
    return event_add(s->ev, NULL) == 0 ? 0 : -1;
}

/* ---- response head ---- */

static bool
is_2xx(long status)
{
    return status >= 200 && status <= 299;
}

static bool
name_is(const char *name, size_t len, const char *want)
{
    return strlen(want) == len && strncasecmp(name, want, len) == 0;
}

/* True when v[0..len) holds no control byte (HTAB allowed) and no DEL. */
static bool
clean_value(const char *v, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return false;
    }
    return true;
}

/* Stores v[0..len) in dst (dstsz bytes). A value that does not fit or is not clean is stored
 * as absent: a cut ETag or Cache-Control would be wrong, not merely short. */
static void
capture(char *dst, size_t dstsz, const char *v, size_t len)
{
    if (len >= dstsz || !clean_value(v, len)) {
        dst[0] = '\0';
        return;
    }
    memcpy(dst, v, len);
    dst[len] = '\0';
}

/* Joins one more Cache-Control line to the ones seen; any unusable line spoils them all. */
static void
capture_cache_control(struct xfer *x, const char *v, size_t len)
{
    size_t have = strlen(x->cache_control);
    size_t sep = have > 0 ? 2 : 0;
    if (x->cache_control_bad || len == 0)
        return;
    if (!clean_value(v, len) || have + sep + len > CACHE_CONTROL_MAX) {
        x->cache_control_bad = true;
        x->cache_control[0] = '\0';
        return;
    }
    if (sep > 0)
        memcpy(x->cache_control + have, ", ", sep);
    memcpy(x->cache_control + have + sep, v, len);
    x->cache_control[have + sep + len] = '\0';
}

/* A new response head starts (after a 1xx, the final one follows): forget the previous one. */
static void
head_reset(struct xfer *x, const char *line, size_t len)
{
    x->head_status = 0;
    x->content_length = -1;
    x->cache_control_bad = false;
    x->etag[0] = x->last_modified[0] = x->content_type[0] = x->cache_control[0] = '\0';
    /* "HTTP/1.1 200 OK", "HTTP/2 200" */
    const char *sp = memchr(line, ' ', len);
    if (sp == NULL)
        return;
    size_t off = (size_t)(sp - line) + 1;
    uint64_t code = 0;
    if (len - off >= 3 && util_parse_u64(line + off, 3, 100, 999, &code) == 0)
        x->head_status = (long)code;
}

/* The final head ended: decide from its status and Content-Length whether to read the body. */
static bool
head_end(struct xfer *x)
{
    long status = x->head_status;
    if (status == 0)
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    x->status = status;
    x->head_done = true;
    if (!is_2xx(status) || x->content_length < 0)
        return true;
    if ((uint64_t)x->content_length > (uint64_t)x->max_bytes) {
        x->stop = STOP_LENGTH_CAP;
        return false;
    }
    /* The announced size is within the cap: allocate it once (a lying origin still cannot
     * pass the cap, which write_cb enforces). */
    size_t want = (size_t)x->content_length + 1;
    if (want > x->cap) {
        x->body = xrealloc(x->body, want);
        x->cap = want;
        x->body[x->len] = '\0';
    }
    return true;
}

static size_t
header_cb(char *data, size_t size, size_t nitems, void *userp)
{
    struct xfer *x = userp;
    size_t n = size * nitems;
    if (n > FETCH_MAX_HEADER_LINE) {
        x->stop = STOP_HEADER_LINE;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    size_t len = n;
    while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r'))
        len--;
    if (len == 0) {
        if (x->head_done)
            return n; /* the end of the trailers */
        /* The end of a head; a 1xx (100 Continue) is followed by the real one. */
        if (x->head_status >= 100 && x->head_status <= 199)
            return n;
        return head_end(x) ? n : 0;
    }
    if (!x->head_done && len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        head_reset(x, data, len);
        return n;
    }
    if (++x->nheaders > FETCH_MAX_HEADERS) {
        x->stop = STOP_HEADER_COUNT;
        return 0;
    }
    if (x->head_done)
        return n; /* a trailer: counted, never captured */

    const char *colon = memchr(data, ':', len);
    if (colon == NULL)
        return n;
    size_t nlen = (size_t)(colon - data);
    const char *v = colon + 1;
    size_t vlen = len - nlen - 1;
    while (vlen > 0 && (v[0] == ' ' || v[0] == '\t')) {
        v++;
        vlen--;
    }
    while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
        vlen--;

    if (name_is(data, nlen, "etag")) {
        capture(x->etag, sizeof(x->etag), v, vlen);
    } else if (name_is(data, nlen, "last-modified")) {
        capture(x->last_modified, sizeof(x->last_modified), v, vlen);
    } else if (name_is(data, nlen, "content-type")) {
        capture(x->content_type, sizeof(x->content_type), v, vlen);
    } else if (name_is(data, nlen, "cache-control")) {
        capture_cache_control(x, v, vlen);
    } else if (name_is(data, nlen, "content-length")) {
        uint64_t cl = 0;
        /* A malformed value is curl's to reject; only a well-formed one is checked here. */
        if (util_parse_u64(v, vlen, 0, INT64_MAX, &cl) == 0)
            x->content_length = (int64_t)cl;
    }
    return n;
}

/* ---- body ---- */

static size_t
write_cb(char *data, size_t size, size_t nmemb, void *userp)
{
    struct xfer *x = userp;
    size_t n = size * nmemb;

    if (!is_2xx(x->status)) {
        /* Only a 2xx body is kept; another one is read (to keep the connection) up to the cap. */
        if (n > x->max_bytes - x->discarded) {
            x->stop = STOP_ERROR_BODY;
            return 0;
        }
        x->discarded += n;
        return n;
    }
    if (n > x->max_bytes - x->len) {
        x->stop = STOP_BODY_CAP;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR; nothing past the cap is kept */
    }
    size_t need = x->len + n + 1; /* <= max_bytes + 1 */
    if (need > x->cap) {
        size_t cap = x->cap > 0 ? x->cap : BODY_FIRST_ALLOC;
        while (cap < need)
            cap *= 2;
        if (cap > x->max_bytes + 1)
            cap = x->max_bytes + 1;
        x->body = xrealloc(x->body, cap);
        x->cap = cap;
    }
    memcpy(x->body + x->len, data, n);
    x->len += n;
    x->body[x->len] = '\0';
    return n;
}

/* Wraps socket() so a local shortage of descriptors or buffers is told apart from an origin
 * that cannot be reached. */
static curl_socket_t
open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *addr)
{
    (void)purpose;
    struct xfer *x = clientp;
    curl_socket_t fd = socket(addr->family, addr->socktype, addr->protocol);
    if (fd == CURL_SOCKET_BAD)
        x->socket_errno = errno;
    return fd;
}

/* ---- results ---- */

static bool
local_errno(int err)
{
    return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM ||
           err == EADDRNOTAVAIL; /* no free local port */
}

/* When a name lookup or connect fails without a socket() error of our own, checks whether the
 * process is out of descriptors right now (the resolver needs them too). Returns the errno of
 * a local shortage, or 0. */
static int
local_shortage(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
        close(fd);
        return 0;
    }
    return local_errno(errno) ? errno : 0;
}

static void
set_error(struct xfer *x, struct fetch_result *r, enum fetch_status st, const char *label,
          const char *detail)
{
    int n;
    r->status = st;
    if (detail != NULL && detail[0] != '\0')
        n = snprintf(x->error, sizeof(x->error), "%s: %s", label, detail);
    else
        n = snprintf(x->error, sizeof(x->error), "%s", label);
    if (n < 0)
        x->error[0] = '\0';
    /* A longer reason is cut at the buffer's end: it is meant to be short. */
    r->error = x->error;
}

static void
set_http_error(struct xfer *x, struct fetch_result *r, long status)
{
    char label[32];
    snprintf(label, sizeof(label), "http %ld", status);
    set_error(x, r, FETCH_HTTP_ERROR, label, NULL);
}

static void
classify_connect(struct xfer *x, CURLcode rc, long os_errno, struct fetch_result *r)
{
    int shortage;
    if (x->socket_errno != 0 && local_errno(x->socket_errno)) {
        set_error(x, r, FETCH_LOCAL_ERROR, "socket", strerror(x->socket_errno));
        return;
    }
    if (os_errno != 0 && local_errno((int)os_errno)) {
        set_error(x, r, FETCH_LOCAL_ERROR, "connect", strerror((int)os_errno));
        return;
    }
    if ((shortage = local_shortage()) != 0) {
        set_error(x, r, FETCH_LOCAL_ERROR, "socket", strerror(shortage));
        return;
    }
    if (rc == CURLE_COULDNT_RESOLVE_HOST)
        set_error(x, r, FETCH_FAILED, "dns", x->errbuf);
    else
        set_error(x, r, FETCH_FAILED, "connect",
                  os_errno != 0 ? strerror((int)os_errno) : curl_easy_strerror(rc));
}

static void
classify_stop(struct xfer *x, struct fetch_result *r)
{
    switch (x->stop) {
    case STOP_BODY_CAP:
        set_error(x, r, FETCH_TOO_LARGE, "body over cap", NULL);
        return;
    case STOP_LENGTH_CAP:
        set_error(x, r, FETCH_TOO_LARGE, "content-length over cap", NULL);
        return;
    case STOP_ERROR_BODY:
        set_http_error(x, r, x->status);
        return;
    case STOP_HEADER_LINE:
        set_error(x, r, FETCH_FAILED, "response header line too long", NULL);
        return;
    case STOP_HEADER_COUNT:
        set_error(x, r, FETCH_FAILED, "too many response headers", NULL);
        return;
    case STOP_NONE:
        break;
    }
    set_error(x, r, FETCH_FAILED, curl_easy_strerror(CURLE_WRITE_ERROR), x->errbuf);
}

/* Fills r from x's end; every pointer in r points into x. */
static void
classify(struct xfer *x, CURLcode rc, struct fetch_result *r)
{
    CURL *e = x->easy;
    long status = 0;
    long os_errno = 0;
    curl_off_t us = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(e, CURLINFO_OS_ERRNO, &os_errno);
    if (curl_easy_getinfo(e, CURLINFO_TOTAL_TIME_T, &us) == CURLE_OK && us > 0)
        r->total_ms = (double)us / 1000.0;
    r->http_status = status;
    if (x->head_done) {
        r->etag = x->etag[0] != '\0' ? x->etag : NULL;
        r->last_modified = x->last_modified[0] != '\0' ? x->last_modified : NULL;
        r->content_type = x->content_type[0] != '\0' ? x->content_type : NULL;
        r->cache_control = x->cache_control[0] != '\0' ? x->cache_control : NULL;
    }

    switch (rc) {
    case CURLE_OK:
        if (is_2xx(status)) {
            r->status = FETCH_OK;
            r->body = x->body != NULL ? x->body : "";
            r->len = x->len;
            return;
        }
        if (status == 304 && x->conditional) {
            r->status = FETCH_NOT_MODIFIED;
            return;
        }
        set_http_error(x, r, status);
        return;
    case CURLE_WRITE_ERROR:
        classify_stop(x, r);
        return;
    case CURLE_OUT_OF_MEMORY:
    case CURLE_FAILED_INIT:
        set_error(x, r, FETCH_LOCAL_ERROR, "local", curl_easy_strerror(rc));
        return;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
        classify_connect(x, rc, os_errno, r);
        return;
    case CURLE_OPERATION_TIMEDOUT:
        /* The low-speed abort shares this code; curl says "Operation too slow" for it. */
        if (strstr(x->errbuf, "too slow") != NULL)
            set_error(x, r, FETCH_TIMEOUT, "low speed", NULL);
        else
            set_error(x, r, FETCH_TIMEOUT, "timeout", x->errbuf);
        return;
    case CURLE_UNSUPPORTED_PROTOCOL:
        set_error(x, r, FETCH_FAILED, "unsupported protocol", x->errbuf);
        return;
    default:
        break;
    }
    set_error(x, r, FETCH_FAILED, curl_easy_strerror(rc), x->errbuf);
}

/* ---- transfers ---- */

static void
xfer_unlink(struct fetch *f, struct xfer *x)
{
    if (x->prev != NULL)
        x->prev->next = x->next;
    else
        f->xfers = x->next;
    if (x->next != NULL)
        x->next->prev = x->prev;
    x->prev = x->next = NULL;
    f->nactive--;
}

/* Releases what x holds; it must already be out of the multi handle and the list. */
static void
xfer_free(struct xfer *x)
{
    if (x->easy != NULL)
        curl_easy_cleanup(x->easy);
    curl_slist_free_all(x->req_headers);
    free(x->body);
    free(x);
}

static void
check_done(struct fetch *f)
{
    CURLMsg *m;
    int left = 0;
    /* A callback may start or cancel transfers; a cancelled one takes its pending message
     * with it (curl_multi_remove_handle), so the loop stays valid. */
    while ((m = curl_multi_info_read(f->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        CURLcode rc = m->data.result;
        char *priv = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
        struct xfer *x = (struct xfer *)priv;
        struct fetch_result r;
        memset(&r, 0, sizeof(r));
        classify(x, rc, &r);
        /* Out of the multi handle and the list first, so the callback sees it ended (a
         * fetch_cancel of its own id is a no-op); the body lives until the callback returns. */
        curl_multi_remove_handle(f->multi, x->easy);
        xfer_unlink(f, x);
        f->in_cb = true;
        x->cb(x->arg, &r);
        f->in_cb = false;
        xfer_free(x);
    }
}

/* A header value we send must not be able to start another header line. */
static bool
valid_request_value(const char *v)
{
    return v[0] != '\0' && strlen(v) <= FETCH_MAX_HEADER_LINE && clean_value(v, strlen(v));
}

static int
add_request_header(struct xfer *x, const char *name, const char *value)
{
    struct buf line;
    buf_init(&line, 0);
    buf_printf(&line, "%s: %s", name, value);
    struct curl_slist *l = curl_slist_append(x->req_headers, line.data);
    buf_free(&line);
    if (l == NULL)
        return -1;
    x->req_headers = l;
    return 0;
}

static int
setup_easy(struct xfer *x, const struct fetch_request *rq)
{
    CURL *e = x->easy;
    uint32_t connect_ms = rq->connect_timeout_ms;
    if (connect_ms == 0)
        connect_ms =
            rq->timeout_ms < FETCH_CONNECT_TIMEOUT_MS ? rq->timeout_ms : FETCH_CONNECT_TIMEOUT_MS;
    uint32_t slow_bytes = rq->low_speed_bytes_per_s;
    uint32_t slow_ms = rq->low_speed_time_ms;
    if (slow_bytes == 0 || slow_ms == 0) {
        slow_bytes = FETCH_LOW_SPEED_BYTES_PER_S;
        slow_ms = FETCH_LOW_SPEED_TIME_MS;
    }
    long slow_s = (long)(((uint64_t)slow_ms + 999u) / 1000u);
    int bad = 0;

    if (rq->if_none_match != NULL)
        bad |= add_request_header(x, "If-None-Match", rq->if_none_match) != 0;
    if (rq->if_modified_since != NULL)
        bad |= add_request_header(x, "If-Modified-Since", rq->if_modified_since) != 0;

    bad |= curl_easy_setopt(e, CURLOPT_URL, rq->url) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)x) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
    /* Only http(s), never a redirect: an origin URL must not reach anything else (SSRF). */
    bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK;
    /* Straight to the origin, whatever *_proxy says in the environment. */
    bad |= curl_easy_setopt(e, CURLOPT_PROXY, "") != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_HTTPGET, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_USERAGENT, "steerd/" STEERD_VERSION) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)rq->timeout_ms) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)connect_ms) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, (long)slow_bytes) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, slow_s) != CURLE_OK;
    /* Accept-Encoding is left unset: the origin answers in identity, which the rewriters
     * read and the cap measures. Connections are reused: the origin is ours, and keep-alive
     * saves a handshake per manifest. */
    if (x->req_headers != NULL)
        bad |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->req_headers) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_HEADERDATA, x) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_WRITEDATA, x) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, x) != CURLE_OK;
    return bad ? -1 : 0;
}

static bool
valid_request(const struct fetch_request *rq)
{
    if (rq == NULL || rq->url == NULL || rq->timeout_ms == 0 || rq->max_bytes == 0 ||
        rq->max_bytes >= SIZE_MAX / 2)
        return false;
    if (rq->if_none_match != NULL && !valid_request_value(rq->if_none_match))
        return false;
    if (rq->if_modified_since != NULL && !valid_request_value(rq->if_modified_since))
        return false;
    return true;
}

uint64_t
fetch_start(struct fetch *f, const struct fetch_request *rq, fetch_done_fn cb, void *arg)
{
    if (f == NULL || cb == NULL || !valid_request(rq))
        return 0;
    struct xfer *x = xcalloc(1, sizeof(*x));
    x->cb = cb;
    x->arg = arg;
    x->max_bytes = rq->max_bytes;
    x->conditional = rq->if_none_match != NULL || rq->if_modified_since != NULL;
    x->content_length = -1;
    x->easy = curl_easy_init();
    if (x->easy == NULL || setup_easy(x, rq) != 0)
        goto fail;
    /* Adding only arms the multi timer: the transfer (and any early failure, such as a
     * refused scheme) runs from the loop, so cb never runs in here. */
    if (curl_multi_add_handle(f->multi, x->easy) != CURLM_OK)
        goto fail;
    x->id = ++f->next_id;
    x->next = f->xfers;
    if (f->xfers != NULL)
        f->xfers->prev = x;
    f->xfers = x;
    f->nactive++;
    return x->id;

fail:
    xfer_free(x);
    return 0;
}

void
fetch_cancel(struct fetch *f, uint64_t id)
{
    if (f == NULL || id == 0)
        return;
    for (struct xfer *x = f->xfers; x != NULL; x = x->next) {
        if (x->id == id) {
            curl_multi_remove_handle(f->multi, x->easy);
            xfer_unlink(f, x);
            xfer_free(x);
            return;
        }
    }
}

size_t
fetch_active(const struct fetch *f)
{
    return f != NULL ? f->nactive : 0;
}

struct fetch *
fetch_new(struct event_base *base)
{
    struct fetch *f = xcalloc(1, sizeof(*f));
    f->base = base;
    f->multi_timer = evtimer_new(base, on_multi_timer, f);
    f->multi = curl_multi_init();
    if (f->multi_timer == NULL || f->multi == NULL)
        goto fail;
    if (curl_multi_setopt(f->multi, CURLMOPT_SOCKETFUNCTION, multi_socket_cb) != CURLM_OK ||
        curl_multi_setopt(f->multi, CURLMOPT_SOCKETDATA, f) != CURLM_OK ||
        curl_multi_setopt(f->multi, CURLMOPT_TIMERFUNCTION, multi_timer_cb) != CURLM_OK ||
        curl_multi_setopt(f->multi, CURLMOPT_TIMERDATA, f) != CURLM_OK ||
        curl_multi_setopt(f->multi, CURLMOPT_MAXCONNECTS, (long)FETCH_MAX_IDLE_CONNECTIONS) !=
            CURLM_OK ||
        curl_multi_setopt(f->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
                          (long)FETCH_MAX_HOST_CONNECTIONS) != CURLM_OK)
        goto fail;
    return f;

fail:
    fetch_free(f);
    return NULL;
}

void
fetch_free(struct fetch *f)
{
    if (f == NULL)
        return;
    assert(!f->in_cb); /* the loop in check_done still uses f */
    while (f->xfers != NULL) {
        struct xfer *x = f->xfers;
        curl_multi_remove_handle(f->multi, x->easy);
        xfer_unlink(f, x);
        xfer_free(x);
    }
    if (f->multi != NULL)
        curl_multi_cleanup(f->multi); /* closes kept connections; may call our callbacks */
    while (f->socks != NULL)
        sock_free(f, f->socks);
    if (f->multi_timer != NULL)
        event_free(f->multi_timer);
    free(f);
}
