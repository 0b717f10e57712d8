#include "steerd/probe.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "steerd/cfg.h"
#include "steerd/util.h"

#define PROBE_ERR_MAX 128
/* A connect that takes longer than this is a fault whatever the whole-transfer timeout is. */
#define PROBE_CONNECT_TIMEOUT_MAX_MS 10000u

struct target;

/* One running transfer; owned by its target (target->xfer) and freed when it ends. */
struct xfer {
    struct target *t;
    CURL *easy;
    uint64_t body_bytes;
    uint64_t max_body_bytes;
    bool too_large;
    int socket_errno; /* errno of a failed socket() in open_socket, 0 if none */
    char errbuf[CURL_ERROR_SIZE];
};

struct target {
    struct probe *p;
    char id[CFG_ID_MAX + 1];
    char *url;
    struct cfg_probe cfg; /* cfg.url points to url */
    struct event *timer;  /* fires every interval_ms and starts one transfer */
    struct xfer *xfer;    /* NULL when idle */
};

/* One socket curl asked us to watch (curl_multi_assign'ed to it). */
struct sock {
    struct probe *p;
    curl_socket_t fd;
    struct event *ev;
    struct sock *prev, *next;
};

struct probe {
    struct event_base *base;
    CURLM *multi;
    struct event *multi_timer;
    probe_result_fn cb;
    void *arg;
    struct target **targets;
    size_t ntargets;
    struct sock *socks; /* every struct sock alive, so none can outlive probe_free */
};

/* What a finished probe reports; built before the transfer is freed. */
struct report {
    char id[CFG_ID_MAX + 1];
    struct health_sample s;
    char error[PROBE_ERR_MAX];
};

static void check_done(struct probe *p);

/* ---- libcurl <-> libevent glue (curl's docs/examples/multi-event.c) ---- */

static void
on_multi_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct probe *p = arg;
    int running = 0;
    curl_multi_socket_action(p->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(p);
}

static int
multi_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    struct probe *p = userp;
    if (timeout_ms < 0) {
        evtimer_del(p->multi_timer);
        return 0;
    }
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    return evtimer_add(p->multi_timer, &tv) == 0 ? 0 : -1;
}

static void
on_socket(evutil_socket_t fd, short what, void *arg)
{
    struct sock *s = arg;
    struct probe *p = s->p; /* s may be freed by curl_multi_socket_action */
    int flags =
        ((what & EV_READ) ? CURL_CSELECT_IN : 0) | ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);
    int running = 0;
    curl_multi_socket_action(p->multi, fd, flags, &running);
    check_done(p);
}

static void
sock_free(struct probe *p, struct sock *s)
{
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        p->socks = s->next;
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
    struct probe *p = userp;
    struct sock *s = socketp;

    if (what == CURL_POLL_REMOVE) {
        if (s != NULL) {
            curl_multi_assign(p->multi, fd, NULL);
            sock_free(p, s);
        }
        return 0;
    }
    if (s == NULL) {
        s = xcalloc(1, sizeof(*s));
        s->p = p;
        s->fd = fd;
        s->next = p->socks;
        if (p->socks != NULL)
            p->socks->prev = s;
        p->socks = s;
        curl_multi_assign(p->multi, fd, s);
    }
    short kind = (short)(((what & CURL_POLL_IN) ? EV_READ : 0) |
                         ((what & CURL_POLL_OUT) ? EV_WRITE : 0) | EV_PERSIST);
    if (s->ev == NULL) {
        s->ev = event_new(p->base, fd, kind, on_socket, s);
        if (s->ev == NULL)
            return -1;
    } else {
        event_del(s->ev);
        event_assign(s->ev, p->base, fd, kind, on_socket, s);
    }
    return event_add(s->ev, NULL) == 0 ? 0 : -1;
}

/* ---- per-transfer callbacks ---- */

static size_t
write_cb(char *data, size_t size, size_t nmemb, void *userp)
{
    (void)data;
    struct xfer *x = userp;
    size_t n = size * nmemb;
    if (x->body_bytes + n > x->max_body_bytes) {
        x->too_large = true;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    x->body_bytes += n;
    return n;
}

/* Wraps socket() so a local shortage of descriptors or buffers is told apart from a CDN that
 * cannot be reached. */
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

static double
info_ms(CURL *easy, CURLINFO what)
{
    curl_off_t us = 0;
    if (curl_easy_getinfo(easy, what, &us) != CURLE_OK || us <= 0)
        return -1;
    return (double)us / 1000.0;
}

static void
report_init(struct report *r, const struct target *t)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->id, sizeof(r->id), "%s", t->id);
    r->s.connect_ms = -1;
    r->s.ttfb_ms = -1;
    r->s.error = NULL;
}

static void
report_error(struct report *r, enum health_outcome o, const char *label, const char *detail)
{
    int n;
    r->s.outcome = o;
    if (detail != NULL && detail[0] != '\0')
        n = snprintf(r->error, sizeof(r->error), "%s: %s", label, detail);
    else
        n = snprintf(r->error, sizeof(r->error), "%s", label);
    if (n < 0)
        r->error[0] = '\0';
    /* A longer reason is cut at the buffer's end: it is meant to be short. */
    r->s.error = r->error;
}

static void
classify(const struct xfer *x, CURLcode rc, struct report *r)
{
    CURL *e = x->easy;
    long status = 0;
    long os_errno = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(e, CURLINFO_OS_ERRNO, &os_errno);
    r->s.http_status = status;
    r->s.connect_ms = info_ms(e, CURLINFO_CONNECT_TIME_T);
    r->s.ttfb_ms = info_ms(e, CURLINFO_STARTTRANSFER_TIME_T);
    r->s.total_ms = info_ms(e, CURLINFO_TOTAL_TIME_T);
    if (r->s.total_ms < 0)
        r->s.total_ms = 0;
    r->s.body_bytes = x->body_bytes;

    char label[64];
    int shortage;
    switch (rc) {
    case CURLE_OK:
        if (status >= 200 && status <= 299) {
            r->s.outcome = HEALTH_OK;
            return;
        }
        snprintf(label, sizeof(label), "http %ld", status);
        report_error(r, HEALTH_FAIL, label, NULL);
        return;
    case CURLE_WRITE_ERROR:
        if (x->too_large) {
            report_error(r, HEALTH_FAIL, "body too large", NULL);
            return;
        }
        break;
    case CURLE_OUT_OF_MEMORY:
    case CURLE_FAILED_INIT:
        report_error(r, HEALTH_INCONCLUSIVE, "local", curl_easy_strerror(rc));
        return;
    case CURLE_COULDNT_CONNECT:
        if (x->socket_errno != 0 && local_errno(x->socket_errno)) {
            report_error(r, HEALTH_INCONCLUSIVE, "socket", strerror(x->socket_errno));
            return;
        }
        if (os_errno != 0 && local_errno((int)os_errno)) {
            report_error(r, HEALTH_INCONCLUSIVE, "connect", strerror((int)os_errno));
            return;
        }
        if ((shortage = local_shortage()) != 0) {
            report_error(r, HEALTH_INCONCLUSIVE, "socket", strerror(shortage));
            return;
        }
        report_error(r, HEALTH_FAIL, "connect",
                     os_errno != 0 ? strerror((int)os_errno) : curl_easy_strerror(rc));
        return;
    case CURLE_COULDNT_RESOLVE_HOST:
        if ((shortage = local_shortage()) != 0) {
            report_error(r, HEALTH_INCONCLUSIVE, "socket", strerror(shortage));
            return;
        }
        report_error(r, HEALTH_FAIL, "dns", x->errbuf);
        return;
    case CURLE_OPERATION_TIMEDOUT:
        /* The low-speed abort shares this code; curl says "Operation too slow" for it. */
        if (strstr(x->errbuf, "too slow") != NULL)
            report_error(r, HEALTH_FAIL, "low speed", NULL);
        else
            report_error(r, HEALTH_FAIL, "timeout", NULL);
        return;
    case CURLE_UNSUPPORTED_PROTOCOL:
        report_error(r, HEALTH_FAIL, "unsupported protocol", x->errbuf);
        return;
    default:
        break;
    }
    report_error(r, HEALTH_FAIL, curl_easy_strerror(rc), x->errbuf);
}

/* Ends t's transfer without reporting it. */
static void
xfer_cancel(struct target *t)
{
    struct xfer *x = t->xfer;
    if (x == NULL)
        return;
    curl_multi_remove_handle(t->p->multi, x->easy);
    curl_easy_cleanup(x->easy);
    free(x);
    t->xfer = NULL;
}

static void
check_done(struct probe *p)
{
    CURLMsg *m;
    int left = 0;
    /* The callback may reconcile or stop (not free) the prober; every transfer it cancels
     * takes its pending message with it, so the loop stays valid. */
    while ((m = curl_multi_info_read(p->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct xfer *x = NULL;
        CURLcode rc = m->data.result;
        char *priv = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
        x = (struct xfer *)priv;
        struct target *t = x->t;
        struct report r;
        report_init(&r, t);
        classify(x, rc, &r);
        xfer_cancel(t);
        p->cb(p->arg, r.id, &r.s);
    }
}

/* ---- targets ---- */

static int
setup_easy(struct xfer *x, const struct target *t)
{
    CURL *e = x->easy;
    const struct cfg_probe *c = &t->cfg;
    long connect_ms =
        (long)(c->timeout_ms < PROBE_CONNECT_TIMEOUT_MAX_MS ? c->timeout_ms
                                                            : PROBE_CONNECT_TIMEOUT_MAX_MS);
    int bad = 0;

    bad |= curl_easy_setopt(e, CURLOPT_URL, t->url) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)x) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
    /* Only http(s), never a redirect: a probe URL must not reach anything else (SSRF). */
    bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK;
    /* Probes go straight to the CDN, whatever *_proxy says in the environment. */
    bad |= curl_easy_setopt(e, CURLOPT_PROXY, "") != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_HTTPGET, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_USERAGENT, "steerd-probe/" STEERD_VERSION) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)c->timeout_ms) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, connect_ms) != CURLE_OK;
    if (c->low_speed_bytes_per_s > 0) {
        long secs = (long)((c->low_speed_time_ms + 999u) / 1000u);
        bad |= curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, (long)c->low_speed_bytes_per_s) !=
               CURLE_OK;
        bad |= curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, secs > 0 ? secs : 1L) != CURLE_OK;
    }
    /* A fresh connection per probe: a reused one would hide a CDN that accepts no new
     * connections, and would skip the connect time we measure. */
    bad |= curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_WRITEDATA, x) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, x) != CURLE_OK;
    return bad ? -1 : 0;
}

/* Reports an outcome that never reached curl. Must be the caller's last use of t: the callback
 * may reconcile t away. */
static void
report_local(struct target *t, const char *what)
{
    struct probe *p = t->p;
    struct report r;
    report_init(&r, t);
    report_error(&r, HEALTH_INCONCLUSIVE, "local", what);
    p->cb(p->arg, r.id, &r.s);
}

static void
on_target_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct target *t = arg;
    struct timeval tv = {.tv_sec = t->cfg.interval_ms / 1000,
                         .tv_usec = (t->cfg.interval_ms % 1000) * 1000};
    evtimer_add(t->timer, &tv);

    /* The previous probe is still running (timeout >= interval): skip this round rather than
     * stack transfers against a slow CDN. */
    if (t->xfer != NULL)
        return;

    struct xfer *x = xcalloc(1, sizeof(*x));
    x->t = t;
    x->max_body_bytes = t->cfg.max_body_bytes;
    x->easy = curl_easy_init();
    if (x->easy == NULL) {
        free(x);
        report_local(t, "curl_easy_init failed");
        return;
    }
    if (setup_easy(x, t) != 0) {
        curl_easy_cleanup(x->easy);
        free(x);
        report_local(t, "curl_easy_setopt failed");
        return;
    }
    CURLMcode mc = curl_multi_add_handle(t->p->multi, x->easy);
    if (mc != CURLM_OK) {
        curl_easy_cleanup(x->easy);
        free(x);
        report_local(t, curl_multi_strerror(mc));
        return;
    }
    t->xfer = x;
}

static void
target_free(struct target *t)
{
    if (t == NULL)
        return;
    xfer_cancel(t);
    if (t->timer != NULL)
        event_free(t->timer);
    free(t->url);
    free(t);
}

static bool
same_probe(const struct cfg_probe *a, const struct cfg_probe *b)
{
    return strcmp(a->url, b->url) == 0 && a->interval_ms == b->interval_ms &&
           a->timeout_ms == b->timeout_ms && a->rise == b->rise && a->fall == b->fall &&
           a->max_body_bytes == b->max_body_bytes &&
           a->low_speed_bytes_per_s == b->low_speed_bytes_per_s &&
           a->low_speed_time_ms == b->low_speed_time_ms;
}

static struct target *
find_target(const struct probe *p, const char *id)
{
    for (size_t i = 0; i < p->ntargets; i++)
        if (p->targets[i] != NULL && strcmp(p->targets[i]->id, id) == 0)
            return p->targets[i];
    return NULL;
}

static struct target *
target_new(struct probe *p, const struct cfg_cdn *cdn)
{
    struct target *t = xcalloc(1, sizeof(*t));
    t->p = p;
    snprintf(t->id, sizeof(t->id), "%s", cdn->id);
    t->url = xstrdup(cdn->probe.url);
    t->cfg = cdn->probe;
    t->cfg.url = t->url;
    t->timer = evtimer_new(p->base, on_target_timer, t);
    if (t->timer == NULL) {
        target_free(t);
        return NULL;
    }
    return t;
}

int
probe_set_targets(struct probe *p, const struct cfg *c)
{
    size_t n = 0;
    for (size_t i = 0; i < c->ncdns; i++)
        if (c->cdns[i].probe.url != NULL)
            n++;

    /* Build the new set first, so a failure leaves the running one untouched. */
    struct target **next = xcalloc(n ? n : 1, sizeof(*next));
    bool *fresh = xcalloc(n ? n : 1, sizeof(*fresh));
    size_t k = 0;
    for (size_t i = 0; i < c->ncdns; i++) {
        const struct cfg_cdn *cdn = &c->cdns[i];
        if (cdn->probe.url == NULL)
            continue;
        struct target *old = find_target(p, cdn->id);
        if (old != NULL && same_probe(&old->cfg, &cdn->probe)) {
            next[k++] = old;
            continue;
        }
        next[k] = target_new(p, cdn);
        if (next[k] == NULL)
            goto fail;
        fresh[k++] = true;
    }

    /* Cancel what is gone or changed, then start the new ones at once. */
    for (size_t i = 0; i < p->ntargets; i++) {
        bool kept = false;
        for (size_t j = 0; j < n && !kept; j++)
            kept = !fresh[j] && next[j] == p->targets[i];
        if (!kept)
            target_free(p->targets[i]);
    }
    free(p->targets);
    p->targets = next;
    p->ntargets = n;
    for (size_t j = 0; j < n; j++) {
        if (fresh[j]) {
            struct timeval now = {0, 0};
            evtimer_add(next[j]->timer, &now);
        }
    }
    free(fresh);
    return 0;

fail:
    for (size_t j = 0; j < k; j++)
        if (fresh[j])
            target_free(next[j]);
    free(next);
    free(fresh);
    return -1;
}

struct probe *
probe_new(struct event_base *base, probe_result_fn cb, void *arg)
{
    struct probe *p = xcalloc(1, sizeof(*p));
    p->base = base;
    p->cb = cb;
    p->arg = arg;
    p->multi_timer = evtimer_new(base, on_multi_timer, p);
    p->multi = curl_multi_init();
    if (p->multi_timer == NULL || p->multi == NULL)
        goto fail;
    if (curl_multi_setopt(p->multi, CURLMOPT_SOCKETFUNCTION, multi_socket_cb) != CURLM_OK ||
        curl_multi_setopt(p->multi, CURLMOPT_SOCKETDATA, p) != CURLM_OK ||
        curl_multi_setopt(p->multi, CURLMOPT_TIMERFUNCTION, multi_timer_cb) != CURLM_OK ||
        curl_multi_setopt(p->multi, CURLMOPT_TIMERDATA, p) != CURLM_OK)
        goto fail;
    return p;

fail:
    probe_free(p);
    return NULL;
}

void
probe_stop(struct probe *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->ntargets; i++)
        target_free(p->targets[i]);
    free(p->targets);
    p->targets = NULL;
    p->ntargets = 0;
}

void
probe_free(struct probe *p)
{
    if (p == NULL)
        return;
    probe_stop(p);
    if (p->multi != NULL)
        curl_multi_cleanup(p->multi); /* may still call multi_socket_cb / multi_timer_cb */
    while (p->socks != NULL)
        sock_free(p, p->socks);
    if (p->multi_timer != NULL)
        event_free(p->multi_timer);
    free(p);
}
