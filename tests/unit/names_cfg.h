/* A hand-built struct cfg holding only CDN ids and region names, for unit tests of modules that
 * read nothing else (obs, beacon). Shared by tests/unit/test_obs.c and tests/unit/test_beacon.c
 * (header-only: every function is static inline). */
#ifndef STEERD_TEST_NAMES_CFG_H
#define STEERD_TEST_NAMES_CFG_H

#include <stdlib.h>

#include "steerd/cfg.h"
#include "steerd/util.h"

/* A new config naming ncdns CDNs and nregions regions; free it with free_cfg. */
static inline struct cfg *
mk_cfg(const char *const *cdns, size_t ncdns, const char *const *regions, size_t nregions)
{
    struct cfg *c = xcalloc(1, sizeof(*c));
    c->ncdns = ncdns;
    c->cdns = xcalloc(ncdns, sizeof(*c->cdns));
    for (size_t i = 0; i < ncdns; i++)
        c->cdns[i].id = xstrdup(cdns[i]);
    c->nregions = nregions;
    c->regions = xcalloc(nregions, sizeof(*c->regions));
    for (size_t r = 0; r < nregions; r++)
        c->regions[r].name = xstrdup(regions[r]);
    return c;
}

static inline void
free_cfg(struct cfg *c)
{
    for (size_t i = 0; i < c->ncdns; i++)
        free(c->cdns[i].id);
    for (size_t r = 0; r < c->nregions; r++)
        free(c->regions[r].name);
    free(c->cdns);
    free(c->regions);
    free(c);
}

#endif
