#include "steerd/snap.h"

#include <stdlib.h>
#include <string.h>

#include "steerd/cfg.h"
#include "steerd/diag.h"
#include "steerd/geo.h"
#include "steerd/util.h"

struct snap_conf *
snap_conf_new(struct cfg **cfgp, uint64_t generation, struct diag *d)
{
    struct cfg *cfg = *cfgp;
    *cfgp = NULL;
    struct geo *geo = geo_new(cfg, d);
    if (geo == NULL) {
        cfg_free(cfg);
        return NULL;
    }
    struct snap_conf *c = xcalloc(1, sizeof(*c));
    atomic_init(&c->refs, 1);
    c->generation = generation;
    c->cfg = cfg;
    c->geo = geo;
    c->limits.max_request_line = cfg->http.max_request_line_bytes;
    c->limits.max_header_bytes = cfg->http.max_header_bytes;
    c->limits.max_headers = cfg->http.max_headers;

    struct buf b;
    buf_init(&b, 0);
    buf_printf(&b,
               "Access-Control-Allow-Origin: %s\r\n"
               "Access-Control-Expose-Headers: X-Steerd-CDN\r\n",
               cfg->http.cors_allow_origin);
    c->cors_block_len = b.len;
    c->cors_block = xstrndup(b.data, b.len);
    buf_printf(&b, "Cache-Control: %s\r\n", cfg->http.redirect_cache_control);
    c->redirect_block_len = b.len;
    c->redirect_block = b.data;
    return c;
}

struct snap_conf *
snap_conf_ref(struct snap_conf *c)
{
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
    return c;
}

void
snap_conf_unref(struct snap_conf *c)
{
    if (c == NULL)
        return;
    if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
        return;
    geo_free(c->geo);
    cfg_free(c->cfg);
    free(c->cors_block);
    free(c->redirect_block);
    free(c);
}

struct snap *
snap_new(struct snap_conf *conf, const uint8_t *up)
{
    size_t n = conf->cfg->ncdns;
    struct snap *s = xcalloc(1, sizeof(*s) + n);
    atomic_init(&s->refs, 1);
    s->conf = snap_conf_ref(conf);
    memcpy(s->up, up, n);
    s->all_down = true;
    for (size_t i = 0; i < n; i++) {
        if (up[i])
            s->all_down = false;
    }
    return s;
}

struct snap *
snap_ref(struct snap *s)
{
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
    return s;
}

void
snap_unref(struct snap *s)
{
    if (s == NULL)
        return;
    if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
        return;
    snap_conf_unref(s->conf);
    free(s);
}
