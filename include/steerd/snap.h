/* snap: the immutable snapshots workers read. A snap_conf is one loaded configuration with
 * everything built from it (GeoIP handles, CIDR trie, precomputed header blocks) and its
 * generation; a snap pairs a snap_conf with CDN health at one moment. Both are reference
 * counted with atomics: the control thread publishes, workers hold the snap they adopted and
 * release it when they adopt the next one, so the last holder frees it, on whatever thread.
 * State layer: no I/O beyond what geo_new does when a snap_conf is built. */
#ifndef STEERD_SNAP_H
#define STEERD_SNAP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "steerd/httpparse.h"

struct cfg;
struct diag;
struct geo;

struct snap_conf {
    _Atomic uint32_t refs;
    uint64_t generation;
    struct cfg *cfg; /* owned */
    struct geo *geo; /* owned */
    struct httpp_limits limits;
    bool need_session_path; /* reserved for policy options; false today */
    /* "Access-Control-Allow-Origin: X\r\nAccess-Control-Expose-Headers: X-Steerd-CDN\r\n" */
    char *cors_block;
    size_t cors_block_len;
    /* cors_block + "Cache-Control: X\r\n" for 302 answers */
    char *redirect_block;
    size_t redirect_block_len;
};

struct snap {
    _Atomic uint32_t refs;
    struct snap_conf *conf; /* one reference held */
    bool all_down;          /* no CDN is up */
    /* The scoring engine's rendezvous weights, [nregions][ncdns] in the same allocation, or
     * NULL: every region uses its static weights (read them through snap_weights). */
    const uint32_t *weights;
    uint8_t up[]; /* [conf->cfg->ncdns] */
};

/* Builds a snap_conf from *cfgp, taking ownership of the cfg (even on failure: *cfgp is set to
 * NULL). Opens the GeoIP databases. Returns NULL with problems in d. refs starts at 1. */
struct snap_conf *snap_conf_new(struct cfg **cfgp, uint64_t generation, struct diag *d);
struct snap_conf *snap_conf_ref(struct snap_conf *c);
void snap_conf_unref(struct snap_conf *c);

/* A snap of conf (a new reference is taken) with up[] copied (conf->cfg->ncdns bytes).
 * refs starts at 1. */
struct snap *snap_new(struct snap_conf *conf, const uint8_t *up);
/* As snap_new, with the engine's weights copied (conf->cfg->nregions x ncdns entries, row per
 * region; NULL = the static weights). */
struct snap *snap_new_weighted(struct snap_conf *conf, const uint8_t *up, const uint32_t *weights);
/* The weights the hot path uses for region (out of range: the default region): a borrowed row
 * of ncdns entries, or NULL when the static weights apply. No allocation. */
const uint32_t *snap_weights(const struct snap *s, uint32_t region);
struct snap *snap_ref(struct snap *s);
void snap_unref(struct snap *s);

#endif
