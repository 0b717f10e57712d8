/* rcache: one worker's cache of rendered manifest answers. A rewritten manifest depends only on
 * the origin copy it was made from, the configuration generation and the ranked CDN list when it
 * is rendered with a placeholder session whose places are recorded (slots): such answers are
 * kept here and handed to the next request with the same ranking, which writes its own session
 * into the slots, so most manifest requests cost a lookup and a copy instead of a parse and a
 * rewrite.
 *
 * Two-way set-associative: a fixed number of slots, each entry bounded in size, the total bounded
 * in bytes; a full set drops its least recently used entry, and byte pressure the cache's. Entries
 * hold a reference to their origin copy (mcache_blob), so a copy's identity cannot be reused while
 * an entry names it; the copy's freshness is the manifest cache's business (a request only finds
 * entries for the copy it just got from there). State layer: no I/O, no locks: one worker's thread
 * only. */
#ifndef STEERD_RCACHE_H
#define STEERD_RCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mcache_blob;

#define RCACHE_MAX_RANK 64 /* CFG_MAX_CDNS */

/* What an answer was rendered for. */
struct rcache_key {
    struct mcache_blob *blob; /* the origin copy (not owned; rcache_put takes a reference) */
    uint64_t conf_gen;        /* the configuration generation */
    uint32_t variant;         /* what else the rendering depends on (the answer mode) */
    const uint32_t *rank;     /* the ranked CDN indexes, best first */
    size_t nrank;             /* <= RCACHE_MAX_RANK */
};

/* A cached answer: valid until the next rcache_put, rcache_clear or rcache_free on the same
 * cache. slots: offsets in body of the fields each request fills in with its own value (the
 * session: see h_manifest.c). */
struct rcache_hit {
    const char *body;
    size_t len;
    const uint32_t *slots;
    size_t nslots;
};

struct rcache_stats {
    uint64_t entries, bytes; /* now */
    uint64_t evictions;      /* entries dropped for room */
};

/* slots: rounded up to a power of two, at least 2; max_bytes: the bodies' total; max_entry: the
 * largest body kept. Never NULL (aborts when out of memory). */
struct rcache *rcache_new(size_t slots, size_t max_bytes, size_t max_entry);
void rcache_free(struct rcache *rc);

/* true and *hit filled when an answer for exactly k is cached. */
bool rcache_get(struct rcache *rc, const struct rcache_key *k, struct rcache_hit *hit);

/* Keeps a copy of body and its nslots slot offsets for k (replacing an entry for the same key),
 * dropping the least recently used entries it needs room from. A body over max_entry (slots
 * counted at 4 bytes each) is not kept: returns false. */
bool rcache_put(struct rcache *rc, const struct rcache_key *k, const char *body, size_t len,
                const uint32_t *slots, size_t nslots);

/* Drops every entry (their renderings can never be asked for again, e.g. after a reload). */
void rcache_clear(struct rcache *rc);

void rcache_get_stats(const struct rcache *rc, struct rcache_stats *s);

#endif
