/* mcache: the manifest cache every worker shares, keyed by origin URL. State layer: no I/O, no
 * clock reads (now_ms is an argument), one mutex taken only by manifest requests.
 *
 * An entry holds the origin's last good answer as an immutable, reference-counted blob (the
 * body as the origin sent it; each request rewrites it for its own session), or a remembered
 * origin failure, each valid until its expiry. Fetches are coalesced: the first request for a
 * missing or expired entry becomes its fetcher (it starts the origin fetch and ends it with
 * mcache_complete); requests arriving while that fetch is in flight queue behind it as waiters
 * and are handed back, with the result filled in, by mcache_complete. Least recently used
 * entries are evicted past max_entries or max_bytes; an entry with a fetch in flight never is. */
#ifndef STEERD_MCACHE_H
#define STEERD_MCACHE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MCACHE_REASON_MAX 96

struct mcache;

enum mcache_kind { MCACHE_HLS = 0, MCACHE_DASH };

/* One origin answer; immutable once made, freed with its last reference. */
struct mcache_blob {
    _Atomic uint32_t refs;
    enum mcache_kind kind;
    bool live;             /* live media playlist or dynamic MPD: cached for live_hint_ms */
    uint32_t live_hint_ms; /* half the target duration / minimumUpdatePeriod (0: unknown) */
    uint64_t fetched_ms;
    char *etag;          /* the origin's ETag, NULL when absent */
    char *last_modified; /* the origin's Last-Modified, NULL when absent */
    size_t len;
    char *body; /* NUL-terminated (not counted in len) */
};

/* What a request gets: a blob (status 0) or an error to answer with. */
struct mcache_result {
    struct mcache_blob *blob; /* a reference the receiver releases; NULL with an error */
    int status;               /* 0 with a blob, else the HTTP status (404, 502, 504...) */
    char reason[MCACHE_REASON_MAX];
    uint64_t expires_ms; /* when the answer stops being fresh */
};

/* A request queued behind a fetch in flight. Allocated and owned by the caller; the cache links
 * it (next) from mcache_lookup until mcache_complete or mcache_free hands it back. */
struct mcache_waiter {
    uint32_t worker; /* where the caller wants the result delivered */
    void *arg;
    struct mcache_result res; /* filled when handed back */
    struct mcache_waiter *next;
};

enum mcache_lookup_rc {
    MCACHE_HIT,   /* res holds a fresh blob */
    MCACHE_ERROR, /* res holds a remembered origin failure */
    MCACHE_FETCH, /* the caller is the fetcher: it starts the fetch and calls mcache_complete;
                     res.blob is the stale blob (for If-None-Match / If-Modified-Since) or NULL */
    MCACHE_WAIT,  /* w was queued; mcache_complete hands it back */
};

enum mcache_fill_kind {
    MCACHE_FILL_STORE,       /* a new blob from the origin */
    MCACHE_FILL_REVALIDATED, /* 304: the entry keeps its blob with a new expiry */
    MCACHE_FILL_FAILED,      /* the fetch failed: status + reason are remembered */
};

/* How a fetch ended; every pointer is borrowed for the call. */
struct mcache_fill {
    enum mcache_fill_kind kind;
    struct mcache_blob *blob; /* STORE: the cache takes its own reference */
    uint64_t expires_ms;      /* the new expiry (FAILED: <= now_ms remembers nothing) */
    int status;               /* FAILED: the HTTP status to answer with */
    const char *reason;       /* FAILED: a short reason (truncated to MCACHE_REASON_MAX - 1) */
};

/* A new cache (at least one entry and one byte allowed); the caller frees it. */
struct mcache *mcache_new(size_t max_entries, uint64_t max_bytes);

/* Frees the cache and every blob reference it holds. Waiters still queued (their fetch never
 * completed) are handed to release(w, ctx) one by one, with res.status 503 and no blob.
 * Accepts NULL. */
void mcache_free(struct mcache *mc, void (*release)(struct mcache_waiter *w, void *ctx), void *ctx);

/* Looks key[0..keylen) up at now_ms and fills res (see enum mcache_lookup_rc); with
 * MCACHE_WAIT, w is queued (w->worker and w->arg set by the caller). Thread-safe. */
enum mcache_lookup_rc mcache_lookup(struct mcache *mc, const char *key, size_t keylen,
                                    uint64_t now_ms, struct mcache_waiter *w,
                                    struct mcache_result *res);

/* Ends the fetch mcache_lookup handed out for key (MCACHE_FETCH): stores fill, fills self with
 * the fetcher's own answer (as a waiter's), and returns the waiters queued behind the fetch in
 * arrival order (linked by next, each with res filled), or NULL. A REVALIDATED fill for an
 * entry without a blob is answered as a 502. Thread-safe. */
struct mcache_waiter *mcache_complete(struct mcache *mc, const char *key, size_t keylen,
                                      const struct mcache_fill *fill, uint64_t now_ms,
                                      struct mcache_result *self);

/* Current number of entries and the bytes they account for (keys, bodies, headers). */
void mcache_usage(struct mcache *mc, size_t *entries, uint64_t *bytes);

/* A blob holding copies of body[0..len), etag and last_modified (either may be NULL), with one
 * reference for the caller; kind, live and live_hint_ms may be set before it is shared. */
struct mcache_blob *mcache_blob_new(enum mcache_kind kind, const char *body, size_t len,
                                    const char *etag, const char *last_modified,
                                    uint64_t fetched_ms);
/* Takes another reference to b (any thread); returns b. */
struct mcache_blob *mcache_blob_ref(struct mcache_blob *b);
/* Releases a reference; frees at zero. Accepts NULL. */
void mcache_blob_unref(struct mcache_blob *b);

/* Releases the blob reference of res (if any) and clears it. */
void mcache_result_clear(struct mcache_result *res);

#endif
