#include "steerd/mcache.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "steerd/util.h"

#define HASH_SEED 0x6d63616368653031ULL
#define BUCKETS_MIN 64

struct entry {
    struct entry *hnext;       /* hash chain */
    struct entry *prev, *next; /* LRU list, most recent first */
    uint64_t hash;
    char *key;
    size_t keylen;
    struct mcache_blob *blob; /* the last good answer (fresh or stale), or NULL */
    int err_status;           /* != 0: the current answer is this remembered failure */
    char err_reason[MCACHE_REASON_MAX];
    uint64_t expires_ms;
    bool fetching;
    struct mcache_waiter *wait_head, *wait_tail;
    uint64_t bytes; /* what this entry accounts for */
};

struct mcache {
    pthread_mutex_t mu;
    struct entry **buckets;
    size_t nbuckets; /* power of two */
    struct entry *lru_head, *lru_tail;
    size_t count;
    uint64_t bytes;
    size_t max_entries;
    uint64_t max_bytes;
};

/* ---- blobs ---------------------------------------------------------------------------- */

static uint64_t
blob_bytes(const struct mcache_blob *b)
{
    if (b == NULL)
        return 0;
    return sizeof(*b) + b->len + 1 + (b->etag ? strlen(b->etag) + 1 : 0) +
           (b->last_modified ? strlen(b->last_modified) + 1 : 0);
}

struct mcache_blob *
mcache_blob_new(enum mcache_kind kind, const char *body, size_t len, const char *etag,
                const char *last_modified, uint64_t fetched_ms)
{
    struct mcache_blob *b = xcalloc(1, sizeof(*b));
    atomic_init(&b->refs, 1);
    b->kind = kind;
    b->fetched_ms = fetched_ms;
    b->etag = etag ? xstrdup(etag) : NULL;
    b->last_modified = last_modified ? xstrdup(last_modified) : NULL;
    b->len = len;
    b->body = xmalloc(len + 1);
    if (len > 0)
        memcpy(b->body, body, len);
    b->body[len] = '\0';
    return b;
}

struct mcache_blob *
mcache_blob_ref(struct mcache_blob *b)
{
    atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
    return b;
}

void
mcache_blob_unref(struct mcache_blob *b)
{
    if (b == NULL)
        return;
    if (atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) != 1)
        return;
    free(b->body);
    free(b->etag);
    free(b->last_modified);
    free(b);
}

void
mcache_result_clear(struct mcache_result *res)
{
    mcache_blob_unref(res->blob);
    memset(res, 0, sizeof(*res));
}

/* ---- the table and the LRU list (under mu) ----------------------------------------------- */

static uint64_t
entry_bytes(const struct entry *e)
{
    return sizeof(*e) + e->keylen + 1 + blob_bytes(e->blob);
}

static void
account(struct mcache *mc, struct entry *e)
{
    mc->bytes -= e->bytes;
    e->bytes = entry_bytes(e);
    mc->bytes += e->bytes;
}

static struct entry *
find(struct mcache *mc, const char *key, size_t keylen, uint64_t h)
{
    for (struct entry *e = mc->buckets[h & (mc->nbuckets - 1)]; e != NULL; e = e->hnext) {
        if (e->hash == h && e->keylen == keylen && memcmp(e->key, key, keylen) == 0)
            return e;
    }
    return NULL;
}

static void
lru_unlink(struct mcache *mc, struct entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        mc->lru_head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        mc->lru_tail = e->prev;
    e->prev = e->next = NULL;
}

static void
lru_push_front(struct mcache *mc, struct entry *e)
{
    e->prev = NULL;
    e->next = mc->lru_head;
    if (mc->lru_head)
        mc->lru_head->prev = e;
    mc->lru_head = e;
    if (mc->lru_tail == NULL)
        mc->lru_tail = e;
}

static void
touch(struct mcache *mc, struct entry *e)
{
    if (mc->lru_head == e)
        return;
    lru_unlink(mc, e);
    lru_push_front(mc, e);
}

static void
grow(struct mcache *mc)
{
    size_t n = mc->nbuckets * 2;
    struct entry **b = xcalloc(n, sizeof(*b));
    for (size_t i = 0; i < mc->nbuckets; i++) {
        struct entry *e = mc->buckets[i];
        while (e != NULL) {
            struct entry *next = e->hnext;
            e->hnext = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(mc->buckets);
    mc->buckets = b;
    mc->nbuckets = n;
}

static struct entry *
insert(struct mcache *mc, const char *key, size_t keylen, uint64_t h)
{
    if (mc->count + 1 > mc->nbuckets)
        grow(mc);
    struct entry *e = xcalloc(1, sizeof(*e));
    e->hash = h;
    e->key = xstrndup(key, keylen);
    e->keylen = keylen;
    size_t i = h & (mc->nbuckets - 1);
    e->hnext = mc->buckets[i];
    mc->buckets[i] = e;
    lru_push_front(mc, e);
    mc->count++;
    account(mc, e);
    return e;
}

static void
entry_free(struct entry *e)
{
    mcache_blob_unref(e->blob);
    free(e->key);
    free(e);
}

static void
remove_entry(struct mcache *mc, struct entry *e)
{
    struct entry **pp = &mc->buckets[e->hash & (mc->nbuckets - 1)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    lru_unlink(mc, e);
    mc->count--;
    mc->bytes -= e->bytes;
    entry_free(e);
}

/* Evicts least recently used entries without a fetch in flight until both limits hold (or
 * only such entries are left). */
static void
evict(struct mcache *mc)
{
    struct entry *e = mc->lru_tail;
    while (e != NULL && (mc->count > mc->max_entries || mc->bytes > mc->max_bytes)) {
        struct entry *prev = e->prev;
        if (!e->fetching)
            remove_entry(mc, e);
        e = prev;
    }
}

/* The entry's current answer into res (a new blob reference). */
static void
answer_of(const struct entry *e, struct mcache_result *res)
{
    memset(res, 0, sizeof(*res));
    res->expires_ms = e->expires_ms;
    if (e->err_status != 0 || e->blob == NULL) {
        res->status = e->err_status != 0 ? e->err_status : 502;
        snprintf(res->reason, sizeof(res->reason), "%s",
                 e->err_status != 0 ? e->err_reason : "origin answer unavailable");
        return;
    }
    res->blob = mcache_blob_ref(e->blob);
}

/* ---- public API ---------------------------------------------------------------------- */

struct mcache *
mcache_new(size_t max_entries, uint64_t max_bytes)
{
    struct mcache *mc = xcalloc(1, sizeof(*mc));
    pthread_mutex_init(&mc->mu, NULL);
    mc->nbuckets = BUCKETS_MIN;
    mc->buckets = xcalloc(mc->nbuckets, sizeof(*mc->buckets));
    mc->max_entries = max_entries > 0 ? max_entries : 1;
    mc->max_bytes = max_bytes > 0 ? max_bytes : 1;
    return mc;
}

void
mcache_free(struct mcache *mc, void (*release)(struct mcache_waiter *w, void *ctx), void *ctx)
{
    if (mc == NULL)
        return;
    struct entry *e = mc->lru_head;
    while (e != NULL) {
        struct entry *next = e->next;
        struct mcache_waiter *w = e->wait_head;
        while (w != NULL) {
            struct mcache_waiter *wn = w->next;
            w->next = NULL;
            memset(&w->res, 0, sizeof(w->res));
            w->res.status = 503;
            snprintf(w->res.reason, sizeof(w->res.reason), "shutting down");
            if (release != NULL)
                release(w, ctx);
            w = wn;
        }
        entry_free(e);
        e = next;
    }
    free(mc->buckets);
    pthread_mutex_destroy(&mc->mu);
    free(mc);
}

enum mcache_lookup_rc
mcache_lookup(struct mcache *mc, const char *key, size_t keylen, uint64_t now_ms,
              struct mcache_waiter *w, struct mcache_result *res)
{
    uint64_t h = util_hash64(key, keylen, HASH_SEED);
    enum mcache_lookup_rc rc;

    memset(res, 0, sizeof(*res));
    pthread_mutex_lock(&mc->mu);
    struct entry *e = find(mc, key, keylen, h);
    if (e == NULL) {
        e = insert(mc, key, keylen, h);
        e->fetching = true;
        evict(mc);
        rc = MCACHE_FETCH;
    } else if (e->fetching) {
        w->next = NULL;
        if (e->wait_tail)
            e->wait_tail->next = w;
        else
            e->wait_head = w;
        e->wait_tail = w;
        rc = MCACHE_WAIT;
    } else if (now_ms < e->expires_ms) {
        touch(mc, e);
        answer_of(e, res);
        rc = res->blob != NULL ? MCACHE_HIT : MCACHE_ERROR;
    } else {
        touch(mc, e);
        e->fetching = true;
        if (e->blob != NULL)
            res->blob = mcache_blob_ref(e->blob);
        rc = MCACHE_FETCH;
    }
    pthread_mutex_unlock(&mc->mu);
    return rc;
}

struct mcache_waiter *
mcache_complete(struct mcache *mc, const char *key, size_t keylen, const struct mcache_fill *fill,
                uint64_t now_ms, struct mcache_result *self)
{
    uint64_t h = util_hash64(key, keylen, HASH_SEED);
    struct entry tmp;
    struct mcache_waiter *list = NULL;

    (void)now_ms;
    pthread_mutex_lock(&mc->mu);
    struct entry *e = find(mc, key, keylen, h);
    if (e == NULL || !e->fetching) {
        /* Not handed out by mcache_lookup: answer the caller alone, store nothing. */
        memset(&tmp, 0, sizeof(tmp));
        e = &tmp;
    }
    switch (fill->kind) {
    case MCACHE_FILL_STORE:
        if (fill->blob != NULL) {
            mcache_blob_unref(e->blob);
            e->blob = mcache_blob_ref(fill->blob);
            e->err_status = 0;
            e->expires_ms = fill->expires_ms;
            break;
        }
        e->err_status = 502;
        snprintf(e->err_reason, sizeof(e->err_reason), "origin answer unavailable");
        e->expires_ms = fill->expires_ms;
        break;
    case MCACHE_FILL_REVALIDATED:
        if (e->blob != NULL) {
            e->err_status = 0;
            e->expires_ms = fill->expires_ms;
            break;
        }
        e->err_status = 502;
        snprintf(e->err_reason, sizeof(e->err_reason), "origin answered 304 unasked");
        e->expires_ms = fill->expires_ms;
        break;
    case MCACHE_FILL_FAILED:
        e->err_status = fill->status > 0 ? fill->status : 502;
        snprintf(e->err_reason, sizeof(e->err_reason), "%s",
                 fill->reason ? fill->reason : "origin failed");
        e->expires_ms = fill->expires_ms;
        break;
    }
    if (self != NULL)
        answer_of(e, self);
    if (e == &tmp) {
        mcache_blob_unref(tmp.blob);
        pthread_mutex_unlock(&mc->mu);
        return NULL;
    }
    e->fetching = false;
    list = e->wait_head;
    e->wait_head = e->wait_tail = NULL;
    for (struct mcache_waiter *w = list; w != NULL; w = w->next)
        answer_of(e, &w->res);
    account(mc, e);
    evict(mc);
    pthread_mutex_unlock(&mc->mu);
    return list;
}

void
mcache_usage(struct mcache *mc, size_t *entries, uint64_t *bytes)
{
    pthread_mutex_lock(&mc->mu);
    if (entries)
        *entries = mc->count;
    if (bytes)
        *bytes = mc->bytes;
    pthread_mutex_unlock(&mc->mu);
}
