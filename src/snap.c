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
    c->limits.max_field_line = cfg->http.max_header_line;

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
    return snap_new_weighted(conf, up, NULL);
}

struct snap *
snap_new_weighted(struct snap_conf *conf, const uint8_t *up, const uint32_t *weights)
{
    size_t n = conf->cfg->ncdns;
    size_t nw = weights ? conf->cfg->nregions * n : 0;
    /* the weights start at the first uint32_t boundary past up[] */
    size_t woff = (sizeof(struct snap) + n + sizeof(uint32_t) - 1) & ~(sizeof(uint32_t) - 1);
    struct snap *s = xcalloc(1, woff + nw * sizeof(uint32_t));
    atomic_init(&s->refs, 1);
    s->conf = snap_conf_ref(conf);
    memcpy(s->up, up, n);
    if (weights != NULL) {
        uint32_t *w = (uint32_t *)(void *)((char *)s + woff);
        memcpy(w, weights, nw * sizeof(uint32_t));
        s->weights = w;
    }
    s->all_down = true;
    for (size_t i = 0; i < n; i++) {
        if (up[i])
            s->all_down = false;
    }
    return s;
}

const uint32_t *
snap_weights(const struct snap *s, uint32_t region)
{
    if (s->weights == NULL)
        return NULL;
    const struct cfg *c = s->conf->cfg;
    uint32_t r = region < c->nregions ? region : c->default_region;
    return &s->weights[(size_t)r * c->ncdns];
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
