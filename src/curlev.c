#include "steerd/curlev.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "steerd/util.h"

/* One socket curl asked us to watch (curl_multi_assign'ed to it). */
struct sock {
    struct curlev *ev;
    curl_socket_t fd;
    struct event *event;
    struct sock *prev, *next;
};

struct curlev {
    struct event_base *base;
    CURLM *multi;
    struct event *multi_timer;
    curlev_done_fn done;
    void *arg;
    struct sock *socks; /* every struct sock alive, so none can outlive curlev_free */
};

/* ---- libcurl <-> libevent glue (curl's docs/examples/multi-event.c) ---- */

static void
check_done(struct curlev *ev)
{
    CURLMsg *m;
    int left = 0;
    /* The callback takes its transfer out of the multi and may remove others; each removed
     * transfer takes its pending message with it, so the loop stays valid. */
    while ((m = curl_multi_info_read(ev->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        CURLcode rc = m->data.result;
        char *priv = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
        ev->done(ev->arg, priv, rc);
    }
}

static void
on_multi_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct curlev *ev = arg;
    int running = 0;
    curl_multi_socket_action(ev->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(ev);
}

static int
multi_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    struct curlev *ev = userp;
    if (timeout_ms < 0) {
        evtimer_del(ev->multi_timer);
        return 0;
    }
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    return evtimer_add(ev->multi_timer, &tv) == 0 ? 0 : -1;
}

static void
on_socket(evutil_socket_t fd, short what, void *arg)
{
    struct sock *s = arg;
    struct curlev *ev = s->ev; /* s may be freed by curl_multi_socket_action */
    int flags =
        ((what & EV_READ) ? CURL_CSELECT_IN : 0) | ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);
    int running = 0;
    curl_multi_socket_action(ev->multi, fd, flags, &running);
    check_done(ev);
}

static void
sock_free(struct curlev *ev, struct sock *s)
{
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        ev->socks = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    if (s->event != NULL)
        event_free(s->event);
    free(s);
}

static int
multi_socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    struct curlev *ev = userp;
    struct sock *s = socketp;

    if (what == CURL_POLL_REMOVE) {
        if (s != NULL) {
            curl_multi_assign(ev->multi, fd, NULL);
            sock_free(ev, s);
        }
        return 0;
    }
    if (s == NULL) {
        s = xcalloc(1, sizeof(*s));
        s->ev = ev;
        s->fd = fd;
        s->next = ev->socks;
        if (ev->socks != NULL)
            ev->socks->prev = s;
        ev->socks = s;
        curl_multi_assign(ev->multi, fd, s);
    }
    short kind = (short)(((what & CURL_POLL_IN) ? EV_READ : 0) |
                         ((what & CURL_POLL_OUT) ? EV_WRITE : 0) | EV_PERSIST);
    if (s->event == NULL) {
        s->event = event_new(ev->base, fd, kind, on_socket, s);
        if (s->event == NULL)
            return -1;
    } else {
        event_del(s->event);
        event_assign(s->event, ev->base, fd, kind, on_socket, s);
    }
    return event_add(s->event, NULL) == 0 ? 0 : -1;
}

struct curlev *
curlev_new(struct event_base *base, curlev_done_fn done, void *arg)
{
    struct curlev *ev = xcalloc(1, sizeof(*ev));
    ev->base = base;
    ev->done = done;
    ev->arg = arg;
    ev->multi_timer = evtimer_new(base, on_multi_timer, ev);
    ev->multi = curl_multi_init();
    if (ev->multi_timer == NULL || ev->multi == NULL)
        goto fail;
    if (curl_multi_setopt(ev->multi, CURLMOPT_SOCKETFUNCTION, multi_socket_cb) != CURLM_OK ||
        curl_multi_setopt(ev->multi, CURLMOPT_SOCKETDATA, ev) != CURLM_OK ||
        curl_multi_setopt(ev->multi, CURLMOPT_TIMERFUNCTION, multi_timer_cb) != CURLM_OK ||
        curl_multi_setopt(ev->multi, CURLMOPT_TIMERDATA, ev) != CURLM_OK)
        goto fail;
    return ev;

fail:
    curlev_free(ev);
    return NULL;
}

CURLM *
curlev_multi(struct curlev *ev)
{
    return ev->multi;
}

void
curlev_free(struct curlev *ev)
{
    if (ev == NULL)
        return;
    if (ev->multi != NULL)
        curl_multi_cleanup(ev->multi); /* closes kept connections; may call our callbacks */
    while (ev->socks != NULL)
        sock_free(ev, ev->socks);
    if (ev->multi_timer != NULL)
        event_free(ev->multi_timer);
    free(ev);
}

/* ---- one transfer ---- */

static bool
allowed(const struct curlev_xfer *x, const struct netaddr *a)
{
    for (size_t i = 0; i < x->nallow; i++)
        if (netaddr_in_cidr(a, &x->allow[i]))
            return true;
    return false;
}

/* Wraps socket(): refuses an address the transfer may not reach (after DNS, so a name cannot
 * smuggle an internal address past the configuration check; curl then tries the next address
 * or fails the connect), and keeps socket()'s errno so a local shortage of descriptors or
 * buffers is told apart from a remote that cannot be reached. */
static curl_socket_t
open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *addr)
{
    (void)purpose;
    struct curlev_xfer *x = clientp;
    struct netaddr a;
    if (netaddr_from_sockaddr(&addr->addr, &a) != 0) {
        x->denied = true; /* not IPv4 or IPv6: nothing steerd connects to */
        snprintf(x->denied_addr, sizeof(x->denied_addr), "family %d", addr->family);
        return CURL_SOCKET_BAD;
    }
    if (netaddr_is_internal(&a) && !allowed(x, &a)) {
        x->denied = true;
        netaddr_format(&a, x->denied_addr);
        return CURL_SOCKET_BAD;
    }
    x->opened = true;
    curl_socket_t fd = socket(addr->family, addr->socktype, addr->protocol);
    if (fd == CURL_SOCKET_BAD)
        x->socket_errno = errno;
    return fd;
}

int
curlev_xfer_setup(struct curlev_xfer *x, const struct curlev_options *o, void *priv)
{
    CURL *e = x->easy;
    int bad = 0;

    if (o->nallow > CURLEV_MAX_ALLOW || (o->nallow > 0 && o->allow == NULL))
        return -1;
    if (o->nallow > 0)
        memcpy(x->allow, o->allow, o->nallow * sizeof(*o->allow));
    x->nallow = o->nallow;
    x->denied = false;
    x->opened = false;
    x->denied_addr[0] = '\0';

    bad |= curl_easy_setopt(e, CURLOPT_URL, o->url) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)priv) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
    /* Only http(s), never a redirect: a configured URL must not reach anything else (SSRF). */
    bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK;
    /* Straight to the CDN or origin, whatever *_proxy says in the environment. */
    bad |= curl_easy_setopt(e, CURLOPT_PROXY, "") != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_HTTPGET, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_USERAGENT, o->user_agent) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)o->timeout_ms) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)o->connect_timeout_ms) != CURLE_OK;
    if (o->low_speed_bytes_per_s > 0) {
        long secs = (long)(((uint64_t)o->low_speed_time_ms + 999u) / 1000u);
        bad |= curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, (long)o->low_speed_bytes_per_s) !=
               CURLE_OK;
        bad |= curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, secs > 0 ? secs : 1L) != CURLE_OK;
    }
    bad |= curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, x) != CURLE_OK;
    return bad ? -1 : 0;
}

/* ---- classification ---- */

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

void
curlev_reason_format(char *dst, size_t dstsz, const char *label, const char *detail)
{
    int n;
    if (detail != NULL && detail[0] != '\0')
        n = snprintf(dst, dstsz, "%s: %s", label, detail);
    else
        n = snprintf(dst, dstsz, "%s", label);
    if (n < 0)
        dst[0] = '\0';
}

static void
set_failure(struct curlev_failure *out, enum curlev_cause cause, const char *label,
            const char *detail)
{
    out->cause = cause;
    out->label = label;
    out->detail = detail;
}

static void
classify_connect(const struct curlev_xfer *x, CURLcode rc, struct curlev_failure *out)
{
    long os_errno = 0;
    int shortage;
    curl_easy_getinfo(x->easy, CURLINFO_OS_ERRNO, &os_errno);
    if (x->denied && !x->opened && rc == CURLE_COULDNT_CONNECT)
        set_failure(out, CURLEV_CAUSE_REMOTE, "address denied", x->denied_addr);
    else if (x->socket_errno != 0 && local_errno(x->socket_errno))
        set_failure(out, CURLEV_CAUSE_LOCAL, "socket", strerror(x->socket_errno));
    else if (os_errno != 0 && local_errno((int)os_errno))
        set_failure(out, CURLEV_CAUSE_LOCAL, "connect", strerror((int)os_errno));
    else if ((shortage = local_shortage()) != 0)
        set_failure(out, CURLEV_CAUSE_LOCAL, "socket", strerror(shortage));
    else if (rc == CURLE_COULDNT_RESOLVE_HOST)
        set_failure(out, CURLEV_CAUSE_REMOTE, "dns", x->errbuf);
    else
        set_failure(out, CURLEV_CAUSE_REMOTE, "connect",
                    os_errno != 0 ? strerror((int)os_errno) : curl_easy_strerror(rc));
}

void
curlev_xfer_classify(const struct curlev_xfer *x, CURLcode rc, struct curlev_failure *out)
{
    switch (rc) {
    case CURLE_OUT_OF_MEMORY:
    case CURLE_FAILED_INIT:
        set_failure(out, CURLEV_CAUSE_LOCAL, "local", curl_easy_strerror(rc));
        return;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
        classify_connect(x, rc, out);
        return;
    case CURLE_OPERATION_TIMEDOUT:
        /* The low-speed abort shares this code; curl says "Operation too slow" for it. */
        if (strstr(x->errbuf, "too slow") != NULL)
            set_failure(out, CURLEV_CAUSE_TIMEOUT, "low speed", NULL);
        else
            set_failure(out, CURLEV_CAUSE_TIMEOUT, "timeout", x->errbuf);
        return;
    case CURLE_UNSUPPORTED_PROTOCOL:
        set_failure(out, CURLEV_CAUSE_REMOTE, "unsupported protocol", x->errbuf);
        return;
    default:
        break;
    }
    set_failure(out, CURLEV_CAUSE_REMOTE, curl_easy_strerror(rc), x->errbuf);
}
