#include "steerd/probe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "steerd/cfg.h"
#include "steerd/curlev.h"
#include "steerd/util.h"

#define PROBE_ERR_MAX 128
#define PROBE_REGION_MAX 65
/* A connect that takes longer than this is a fault whatever the whole-transfer timeout is. */
#define PROBE_CONNECT_TIMEOUT_MAX_MS 10000u

_Static_assert(CFG_MAX_ALLOW_TARGETS <= CURLEV_MAX_ALLOW, "allow_targets must fit a transfer");

struct target;

/* One running transfer; owned by its target (target->xfer) and freed when it ends. */
struct xfer {
    struct target *t;
    struct curlev_xfer cx;
    uint64_t body_bytes;
    uint64_t max_body_bytes;
    bool too_large;
};

struct target {
    struct probe *p;
    char id[CFG_ID_MAX + 1];
    char *region; /* NULL: the CDN's own probe; else a regional URL's region name */
    char *url;
    struct cfg_probe cfg; /* cfg.url points to url; cfg.regional is not kept */
    struct netaddr_cidr allow[CFG_MAX_ALLOW_TARGETS]; /* the config's allow_targets, copied */
    size_t nallow;
    struct event *timer; /* fires every interval_ms and starts one transfer */
    struct xfer *xfer;   /* NULL when idle */
    bool missed;         /* the timer fired while xfer ran: start again as soon as it ends */
};

struct probe {
    struct event_base *base;
    struct curlev *ev;
    probe_result_fn cb;
    void *arg;
    struct target **targets;
    size_t ntargets;
};

/* What a finished probe reports; built before the transfer is freed. */
struct report {
    char id[CFG_ID_MAX + 1];
    char region[PROBE_REGION_MAX];
    struct health_sample s;
    char error[PROBE_ERR_MAX];
};

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

/* ---- results ---- */

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
    snprintf(r->region, sizeof(r->region), "%s", t->region ? t->region : "");
    r->s.connect_ms = -1;
    r->s.ttfb_ms = -1;
    r->s.tp_bps = -1;
    r->s.error = NULL;
    r->s.region = t->region ? r->region : NULL;
}

static void
report_error(struct report *r, enum health_outcome o, const char *label, const char *detail)
{
    r->s.outcome = o;
    curlev_reason_format(r->error, sizeof(r->error), label, detail);
    r->s.error = r->error;
}

static void
classify(const struct xfer *x, CURLcode rc, struct report *r)
{
    CURL *e = x->cx.easy;
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    r->s.http_status = status;
    r->s.connect_ms = info_ms(e, CURLINFO_CONNECT_TIME_T);
    r->s.ttfb_ms = info_ms(e, CURLINFO_STARTTRANSFER_TIME_T);
    r->s.total_ms = info_ms(e, CURLINFO_TOTAL_TIME_T);
    if (r->s.total_ms < 0)
        r->s.total_ms = 0;
    r->s.body_bytes = x->body_bytes;
    curl_off_t speed = 0; /* bytes per second over the whole transfer */
    if (rc == CURLE_OK && x->body_bytes > 0 &&
        curl_easy_getinfo(e, CURLINFO_SPEED_DOWNLOAD_T, &speed) == CURLE_OK && speed > 0)
        r->s.tp_bps = (double)speed * 8.0;

    if (rc == CURLE_OK) {
        if (status >= 200 && status <= 299) {
            r->s.outcome = HEALTH_OK;
            return;
        }
        char label[64];
        snprintf(label, sizeof(label), "http %ld", status);
        report_error(r, HEALTH_FAIL, label, NULL);
        return;
    }
    if (rc == CURLE_WRITE_ERROR && x->too_large) {
        report_error(r, HEALTH_FAIL, "body too large", NULL);
        return;
    }
    /* A local shortage says nothing about the CDN: inconclusive, never a failure. A timeout
     * is reported without curl's text. */
    struct curlev_failure why;
    curlev_xfer_classify(&x->cx, rc, &why);
    report_error(r, why.cause == CURLEV_CAUSE_LOCAL ? HEALTH_INCONCLUSIVE : HEALTH_FAIL, why.label,
                 why.cause == CURLEV_CAUSE_TIMEOUT ? NULL : why.detail);
}

/* Ends t's transfer without reporting it. */
static void
xfer_cancel(struct target *t)
{
    struct xfer *x = t->xfer;
    if (x == NULL)
        return;
    curl_multi_remove_handle(curlev_multi(t->p->ev), x->cx.easy);
    curl_easy_cleanup(x->cx.easy);
    free(x);
    t->xfer = NULL;
}

/* A transfer ended (curlev_done_fn). The callback may reconcile or stop (not free) the
 * prober. */
static void
on_done(void *arg, void *priv, CURLcode rc)
{
    struct probe *p = arg;
    struct xfer *x = priv;
    struct target *t = x->t;
    struct report r;
    report_init(&r, t);
    classify(x, rc, &r);
    xfer_cancel(t);
    if (t->missed) {
        /* A round fell due while this transfer ran (timeout >= interval): start it now, so a
         * slow CDN is probed back to back rather than every other interval. */
        struct timeval now = {0, 0};
        t->missed = false;
        evtimer_add(t->timer, &now);
    }
    p->cb(p->arg, r.id, &r.s);
}

/* ---- targets ---- */

static int
setup_easy(struct xfer *x, const struct target *t)
{
    CURL *e = x->cx.easy;
    const struct cfg_probe *c = &t->cfg;
    const struct curlev_options o = {
        .url = t->url,
        .user_agent = "steerd-probe/" STEERD_VERSION,
        .timeout_ms = c->timeout_ms,
        .connect_timeout_ms = c->timeout_ms < PROBE_CONNECT_TIMEOUT_MAX_MS
                                  ? c->timeout_ms
                                  : PROBE_CONNECT_TIMEOUT_MAX_MS,
        .low_speed_bytes_per_s = c->low_speed_bytes_per_s,
        .low_speed_time_ms = c->low_speed_time_ms,
        .allow = t->allow,
        .nallow = t->nallow,
    };
    int bad = curlev_xfer_setup(&x->cx, &o, x) != 0;
    /* A fresh connection per probe: a reused one would hide a CDN that accepts no new
     * connections, and would skip the connect time we measure. */
    bad |= curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_WRITEDATA, x) != CURLE_OK;
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

    /* The previous probe is still running (timeout >= interval): never stack transfers against
     * a slow CDN; the round starts as soon as the running one ends (on_done). */
    if (t->xfer != NULL) {
        t->missed = true;
        return;
    }

    struct xfer *x = xcalloc(1, sizeof(*x));
    x->t = t;
    x->max_body_bytes = t->cfg.max_body_bytes;
    x->cx.easy = curl_easy_init();
    if (x->cx.easy == NULL) {
        free(x);
        report_local(t, "curl_easy_init failed");
        return;
    }
    if (setup_easy(x, t) != 0) {
        curl_easy_cleanup(x->cx.easy);
        free(x);
        report_local(t, "curl_easy_setopt failed");
        return;
    }
    CURLMcode mc = curl_multi_add_handle(curlev_multi(t->p->ev), x->cx.easy);
    if (mc != CURLM_OK) {
        curl_easy_cleanup(x->cx.easy);
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
    free(t->region);
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

static bool
same_region(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strcmp(a, b) == 0;
}

static bool
same_allow(const struct target *t, const struct cfg *c)
{
    return t->nallow == c->nallow_targets &&
           (t->nallow == 0 ||
            memcmp(t->allow, c->allow_targets, t->nallow * sizeof(*t->allow)) == 0);
}

static struct target *
find_target(const struct probe *p, const char *id, const char *region)
{
    for (size_t i = 0; i < p->ntargets; i++)
        if (p->targets[i] != NULL && strcmp(p->targets[i]->id, id) == 0 &&
            same_region(p->targets[i]->region, region))
            return p->targets[i];
    return NULL;
}

/* The probe of cdn from region (NULL: its own URL) with the given URL, cdn's timings and c's
 * allow_targets. */
static struct target *
target_new(struct probe *p, const struct cfg *c, const struct cfg_cdn *cdn, const char *region,
           const char *url)
{
    struct target *t = xcalloc(1, sizeof(*t));
    t->p = p;
    t->nallow =
        c->nallow_targets < CFG_MAX_ALLOW_TARGETS ? c->nallow_targets : CFG_MAX_ALLOW_TARGETS;
    if (t->nallow > 0)
        memcpy(t->allow, c->allow_targets, t->nallow * sizeof(*t->allow));
    snprintf(t->id, sizeof(t->id), "%s", cdn->id);
    t->region = region ? xstrdup(region) : NULL;
    t->url = xstrdup(url);
    t->cfg = cdn->probe;
    t->cfg.url = t->url;
    t->cfg.regional = NULL;
    t->cfg.nregional = 0;
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
            n += 1 + c->cdns[i].probe.nregional;

    /* Build the new set first, so a failure leaves the running one untouched. */
    struct target **next = xcalloc(n ? n : 1, sizeof(*next));
    bool *fresh = xcalloc(n ? n : 1, sizeof(*fresh));
    size_t k = 0;
    for (size_t i = 0; i < c->ncdns; i++) {
        const struct cfg_cdn *cdn = &c->cdns[i];
        if (cdn->probe.url == NULL)
            continue;
        /* j == 0: the CDN's own URL; then its regional ones */
        for (size_t j = 0; j <= cdn->probe.nregional; j++) {
            const char *region = j ? c->regions[cdn->probe.regional[j - 1].region].name : NULL;
            struct cfg_probe want = cdn->probe;
            if (j)
                want.url = cdn->probe.regional[j - 1].url;
            struct target *old = find_target(p, cdn->id, region);
            if (old != NULL && same_probe(&old->cfg, &want) && same_allow(old, c)) {
                next[k++] = old;
                continue;
            }
            next[k] = target_new(p, c, cdn, region, want.url);
            if (next[k] == NULL)
                goto fail;
            fresh[k++] = true;
        }
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
    p->ev = curlev_new(base, on_done, p);
    if (p->ev == NULL) {
        free(p);
        return NULL;
    }
    return p;
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
    probe_stop(p); /* every transfer is out of the multi before curlev_free */
    curlev_free(p->ev);
    free(p);
}
