#include "steerd/rcache.h"

#include <stdlib.h>
#include <string.h>

#include "steerd/mcache.h"
#include "steerd/util.h"

#define WAYS 2

struct entry {
    struct mcache_blob *blob; /* NULL: empty */
    uint64_t conf_gen;
    uint32_t variant;
    uint64_t hash;
    uint64_t used; /* the cache's clock at the last get or put */
    uint32_t nrank;
    uint32_t rank[RCACHE_MAX_RANK];
    char *body;
    size_t len;
    uint32_t *slots;
    size_t nslots;
    size_t cost; /* bytes counted against max_bytes */
};

struct rcache {
    struct entry *e;
    size_t nsets; /* power of two; the cache has nsets x WAYS entries */
    size_t max_bytes, max_entry;
    size_t bytes, entries;
    uint64_t clock, evictions;
};

static uint64_t
key_hash(const struct rcache_key *k)
{
    struct {
        uintptr_t blob;
        uint64_t gen;
        uint64_t nrank;
        uint64_t variant;
    } h = {(uintptr_t)k->blob, k->conf_gen, k->nrank, k->variant};
    return util_hash64(k->rank, k->nrank * sizeof(*k->rank), util_hash64(&h, sizeof(h), 0));
}

static bool
matches(const struct entry *e, const struct rcache_key *k, uint64_t hash)
{
    return e->blob != NULL && e->hash == hash && e->blob == k->blob && e->conf_gen == k->conf_gen &&
           e->nrank == k->nrank && memcmp(e->rank, k->rank, k->nrank * sizeof(*k->rank)) == 0;
}

static void
drop(struct rcache *rc, struct entry *e)
{
    if (e->blob == NULL)
        return;
    mcache_blob_unref(e->blob);
    free(e->body);
    free(e->slots);
    rc->bytes -= e->cost;
    rc->entries--;
    memset(e, 0, sizeof(*e));
}

struct rcache *
rcache_new(size_t slots, size_t max_bytes, size_t max_entry)
{
    struct rcache *rc = xcalloc(1, sizeof(*rc));
    size_t nsets = 1;
    while (nsets * WAYS < slots && nsets < ((size_t)1 << 24))
        nsets <<= 1;
    rc->nsets = nsets;
    rc->e = xcalloc(nsets * WAYS, sizeof(*rc->e));
    rc->max_bytes = max_bytes;
    rc->max_entry = max_entry < max_bytes ? max_entry : max_bytes;
    return rc;
}

void
rcache_free(struct rcache *rc)
{
    if (rc == NULL)
        return;
    rcache_clear(rc);
    free(rc->e);
    free(rc);
}

static struct entry *
set_of(struct rcache *rc, uint64_t hash)
{
    return &rc->e[(hash & (rc->nsets - 1)) * WAYS];
}

bool
rcache_get(struct rcache *rc, const struct rcache_key *k, struct rcache_hit *hit)
{
    if (k->blob == NULL || k->nrank > RCACHE_MAX_RANK)
        return false;
    uint64_t hash = key_hash(k);
    struct entry *set = set_of(rc, hash);
    for (size_t w = 0; w < WAYS; w++) {
        if (matches(&set[w], k, hash)) {
            set[w].used = ++rc->clock;
            hit->body = set[w].body;
            hit->len = set[w].len;
            hit->slots = set[w].slots;
            hit->nslots = set[w].nslots;
            return true;
        }
    }
    return false;
}

/* The set's free way, else its least recently used entry, dropped. Then, while len more bytes
 * would not fit, the least recently used entries of the whole cache go (a scan of every slot: only
 * under byte pressure, and cheaper than the rewrite that produced the body). */
static struct entry *
make_room(struct rcache *rc, struct entry *set, size_t len)
{
    struct entry *victim = &set[0];
    for (size_t w = 0; w < WAYS; w++) {
        if (set[w].blob == NULL) {
            victim = &set[w];
            break;
        }
        if (set[w].used < victim->used)
            victim = &set[w];
    }
    if (victim->blob != NULL) {
        drop(rc, victim);
        rc->evictions++;
    }
    while (rc->bytes + len > rc->max_bytes) {
        struct entry *old = NULL;
        for (size_t i = 0; i < rc->nsets * WAYS; i++) {
            if (rc->e[i].blob != NULL && (old == NULL || rc->e[i].used < old->used))
                old = &rc->e[i];
        }
        if (old == NULL)
            break;
        drop(rc, old);
        rc->evictions++;
    }
    return victim;
}

bool
rcache_put(struct rcache *rc, const struct rcache_key *k, const char *body, size_t len,
           const uint32_t *slots, size_t nslots)
{
    if (k->blob == NULL || k->nrank > RCACHE_MAX_RANK || nslots > rc->max_entry / 4 ||
        len > rc->max_entry - nslots * 4)
        return false;
    size_t cost = len + nslots * 4;
    uint64_t hash = key_hash(k);
    struct entry *set = set_of(rc, hash);
    for (size_t w = 0; w < WAYS; w++) {
        if (matches(&set[w], k, hash))
            drop(rc, &set[w]);
    }
    struct entry *e = make_room(rc, set, cost);
    e->blob = mcache_blob_ref(k->blob);
    e->conf_gen = k->conf_gen;
    e->variant = k->variant;
    e->hash = hash;
    e->used = ++rc->clock;
    e->nrank = (uint32_t)k->nrank;
    memcpy(e->rank, k->rank, k->nrank * sizeof(*k->rank));
    e->body = xmalloc(len + 1);
    memcpy(e->body, body, len);
    e->body[len] = '\0';
    e->len = len;
    e->slots = nslots > 0 ? xmalloc(nslots * sizeof(*slots)) : NULL;
    if (nslots > 0)
        memcpy(e->slots, slots, nslots * sizeof(*slots));
    e->nslots = nslots;
    e->cost = cost;
    rc->bytes += cost;
    rc->entries++;
    return true;
}

void
rcache_clear(struct rcache *rc)
{
    for (size_t i = 0; i < rc->nsets * WAYS; i++)
        drop(rc, &rc->e[i]);
}

void
rcache_get_stats(const struct rcache *rc, struct rcache_stats *s)
{
    s->entries = rc->entries;
    s->bytes = rc->bytes;
    s->evictions = rc->evictions;
}
