#include "steerd/fetch.h"

#include <assert.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "steerd/curlev.h"
#include "steerd/util.h"

#define FETCH_ERR_MAX 160
#define ETAG_MAX 256
#define LAST_MODIFIED_MAX 64
#define CONTENT_TYPE_MAX 256
#define CACHE_CONTROL_MAX 512
#define BODY_FIRST_ALLOC 16384u

_Static_assert(FETCH_MAX_ALLOW == CURLEV_MAX_ALLOW, "fetch and curlev agree on the allow list");

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
    struct curlev_xfer cx;
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
    char error[FETCH_ERR_MAX];
};

struct fetch {
    struct curlev *ev;
    struct xfer *xfers; /* every transfer started and not yet ended */
    size_t nactive;
    uint64_t next_id;
    bool in_cb; /* a done callback is running */
};

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
        curl_easy_getinfo(x->cx.easy, CURLINFO_RESPONSE_CODE, &status);
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

/* ---- results ---- */

static void
set_error(struct xfer *x, struct fetch_result *r, enum fetch_status st, const char *label,
          const char *detail)
{
    r->status = st;
    curlev_reason_format(x->error, sizeof(x->error), label, detail);
    r->error = x->error;
}

static void
set_http_error(struct xfer *x, struct fetch_result *r, long status)
{
    char label[32];
    snprintf(label, sizeof(label), "http %ld", status);
    set_error(x, r, FETCH_HTTP_ERROR, label, NULL);
}

/* Reports why one of our callbacks stopped the transfer; false when none did. */
static bool
classify_stop(struct xfer *x, struct fetch_result *r)
{
    switch (x->stop) {
    case STOP_BODY_CAP:
        set_error(x, r, FETCH_TOO_LARGE, "body over cap", NULL);
        return true;
    case STOP_LENGTH_CAP:
        set_error(x, r, FETCH_TOO_LARGE, "content-length over cap", NULL);
        return true;
    case STOP_ERROR_BODY:
        set_http_error(x, r, x->status);
        return true;
    case STOP_HEADER_LINE:
        set_error(x, r, FETCH_FAILED, "response header line too long", NULL);
        return true;
    case STOP_HEADER_COUNT:
        set_error(x, r, FETCH_FAILED, "too many response headers", NULL);
        return true;
    case STOP_NONE:
        break;
    }
    return false;
}

/* Fills r from x's end; every pointer in r points into x. */
static void
classify(struct xfer *x, CURLcode rc, struct fetch_result *r)
{
    CURL *e = x->cx.easy;
    long status = 0;
    curl_off_t us = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    if (curl_easy_getinfo(e, CURLINFO_TOTAL_TIME_T, &us) == CURLE_OK && us > 0)
        r->total_ms = (double)us / 1000.0;
    r->http_status = status;
    if (x->head_done) {
        r->etag = x->etag[0] != '\0' ? x->etag : NULL;
        r->last_modified = x->last_modified[0] != '\0' ? x->last_modified : NULL;
        r->content_type = x->content_type[0] != '\0' ? x->content_type : NULL;
        r->cache_control = x->cache_control[0] != '\0' ? x->cache_control : NULL;
    }

    if (rc == CURLE_OK) {
        if (is_2xx(status)) {
            r->status = FETCH_OK;
            r->body = x->body != NULL ? x->body : "";
            r->len = x->len;
        } else if (status == 304 && x->conditional) {
            r->status = FETCH_NOT_MODIFIED;
        } else {
            set_http_error(x, r, status);
        }
        return;
    }
    if (rc == CURLE_WRITE_ERROR && classify_stop(x, r))
        return;
    struct curlev_failure why;
    curlev_xfer_classify(&x->cx, rc, &why);
    enum fetch_status st = FETCH_FAILED;
    if (why.cause == CURLEV_CAUSE_LOCAL)
        st = FETCH_LOCAL_ERROR;
    else if (why.cause == CURLEV_CAUSE_TIMEOUT)
        st = FETCH_TIMEOUT;
    set_error(x, r, st, why.label, why.detail);
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
    if (x->cx.easy != NULL)
        curl_easy_cleanup(x->cx.easy);
    curl_slist_free_all(x->req_headers);
    free(x->body);
    free(x);
}

/* A transfer ended (curlev_done_fn). The caller's callback may start or cancel transfers. */
static void
on_done(void *arg, void *priv, CURLcode rc)
{
    struct fetch *f = arg;
    struct xfer *x = priv;
    struct fetch_result r;
    memset(&r, 0, sizeof(r));
    classify(x, rc, &r);
    /* Out of the multi handle and the list first, so the callback sees it ended (a
     * fetch_cancel of its own id is a no-op); the body lives until the callback returns. */
    curl_multi_remove_handle(curlev_multi(f->ev), x->cx.easy);
    xfer_unlink(f, x);
    f->in_cb = true;
    x->cb(x->arg, &r);
    f->in_cb = false;
    xfer_free(x);
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
    CURL *e = x->cx.easy;
    struct curlev_options o = {
        .url = rq->url,
        .user_agent = "steerd/" STEERD_VERSION,
        .timeout_ms = rq->timeout_ms,
        .connect_timeout_ms = rq->connect_timeout_ms,
        .low_speed_bytes_per_s = rq->low_speed_bytes_per_s,
        .low_speed_time_ms = rq->low_speed_time_ms,
        .allow = rq->allow,
        .nallow = rq->nallow,
    };
    if (o.connect_timeout_ms == 0)
        o.connect_timeout_ms =
            rq->timeout_ms < FETCH_CONNECT_TIMEOUT_MS ? rq->timeout_ms : FETCH_CONNECT_TIMEOUT_MS;
    if (o.low_speed_bytes_per_s == 0 || o.low_speed_time_ms == 0) {
        o.low_speed_bytes_per_s = FETCH_LOW_SPEED_BYTES_PER_S;
        o.low_speed_time_ms = FETCH_LOW_SPEED_TIME_MS;
    }
    int bad = 0;

    if (rq->if_none_match != NULL)
        bad |= add_request_header(x, "If-None-Match", rq->if_none_match) != 0;
    if (rq->if_modified_since != NULL)
        bad |= add_request_header(x, "If-Modified-Since", rq->if_modified_since) != 0;

    bad |= curlev_xfer_setup(&x->cx, &o, x) != 0;
    /* Accept-Encoding is left unset: the origin answers in identity, which the rewriters
     * read and the cap measures. Connections are reused: the origin is ours, and keep-alive
     * saves a handshake per manifest. */
    if (x->req_headers != NULL)
        bad |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->req_headers) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_HEADERDATA, x) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_WRITEDATA, x) != CURLE_OK;
    return bad ? -1 : 0;
}

static bool
valid_request(const struct fetch_request *rq)
{
    if (rq == NULL || rq->url == NULL || rq->timeout_ms == 0 || rq->max_bytes == 0 ||
        rq->max_bytes >= SIZE_MAX / 2)
        return false;
    if (rq->nallow > FETCH_MAX_ALLOW || (rq->nallow > 0 && rq->allow == NULL))
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
    x->cx.easy = curl_easy_init();
    if (x->cx.easy == NULL || setup_easy(x, rq) != 0)
        goto fail;
    /* Adding only arms the multi timer: the transfer (and any early failure, such as a
     * refused scheme) runs from the loop, so cb never runs in here. */
    if (curl_multi_add_handle(curlev_multi(f->ev), x->cx.easy) != CURLM_OK)
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
            curl_multi_remove_handle(curlev_multi(f->ev), x->cx.easy);
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
    f->ev = curlev_new(base, on_done, f);
    if (f->ev == NULL)
        goto fail;
    CURLM *multi = curlev_multi(f->ev);
    if (curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, (long)FETCH_MAX_IDLE_CONNECTIONS) !=
            CURLM_OK ||
        curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)FETCH_MAX_HOST_CONNECTIONS) !=
            CURLM_OK)
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
    assert(!f->in_cb); /* curlev's loop over ended transfers still uses f */
    while (f->xfers != NULL) {
        struct xfer *x = f->xfers;
        curl_multi_remove_handle(curlev_multi(f->ev), x->cx.easy);
        xfer_unlink(f, x);
        xfer_free(x);
    }
    curlev_free(f->ev); /* closes the kept connections */
    free(f);
}
