/* Tests for the manifest cache: lookups at injected times, coalescing behind one fetch,
 * conditional revalidation, remembered failures, LRU eviction by entries and bytes, and the
 * hand-back of waiters left at shutdown. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <string.h>

#include "steerd/mcache.h"
#include "steerd/util.h"

#define KEY_A "http://origin.example/vod/a/master.m3u8"
#define KEY_B "http://origin.example/vod/b/master.m3u8"
#define KEY_C "http://origin.example/vod/c/master.m3u8"
#define BODY "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv.m3u8\n"

static enum mcache_lookup_rc
look(struct mcache *mc, const char *key, uint64_t now, struct mcache_waiter *w,
     struct mcache_result *res)
{
    return mcache_lookup(mc, key, strlen(key), now, w, res);
}

static struct mcache_waiter *
store(struct mcache *mc, const char *key, const char *body, uint64_t now, uint64_t expires,
      struct mcache_result *self)
{
    struct mcache_blob *b = mcache_blob_new(MCACHE_HLS, body, strlen(body), "\"e1\"",
                                            "Mon, 01 Jan 2024 00:00:00 GMT", now);
    struct mcache_fill f = {.kind = MCACHE_FILL_STORE, .blob = b, .expires_ms = expires};
    struct mcache_waiter *list = mcache_complete(mc, key, strlen(key), &f, now, self);
    mcache_blob_unref(b);
    return list;
}

static struct mcache_waiter *
failed(struct mcache *mc, const char *key, int status, uint64_t now, uint64_t expires,
       struct mcache_result *self)
{
    struct mcache_fill f = {.kind = MCACHE_FILL_FAILED,
                            .status = status,
                            .reason = "origin timed out",
                            .expires_ms = expires};
    return mcache_complete(mc, key, strlen(key), &f, now, self);
}

static void
test_mcache_miss_then_hit_until_expiry(void **state)
{
    (void)state;
    struct mcache *mc = mcache_new(100, 1 << 20);
    struct mcache_waiter w = {0};
    struct mcache_result res, self;

    assert_int_equal(look(mc, KEY_A, 1000, &w, &res), MCACHE_FETCH);
    assert_null(res.blob); /* nothing stale to revalidate */
    assert_null(store(mc, KEY_A, BODY, 1100, 6100, &self));
    assert_non_null(self.blob);
    assert_int_equal(self.status, 0);
    assert_int_equal(self.expires_ms, 6100);
    assert_string_equal(self.blob->body, BODY);
    assert_int_equal(self.blob->len, strlen(BODY));
    assert_string_equal(self.blob->etag, "\"e1\"");

    assert_int_equal(look(mc, KEY_A, 6099, &w, &res), MCACHE_HIT);
    assert_ptr_equal(res.blob, self.blob); /* the same immutable blob, shared */
    assert_int_equal(res.expires_ms, 6100);
    mcache_result_clear(&res);
    assert_null(res.blob);

    /* expired: the caller becomes the fetcher and gets the stale blob for a conditional GET */
    assert_int_equal(look(mc, KEY_A, 6100, &w, &res), MCACHE_FETCH);
    assert_ptr_equal(res.blob, self.blob);
    assert_string_equal(res.blob->last_modified, "Mon, 01 Jan 2024 00:00:00 GMT");
    mcache_result_clear(&res);
    mcache_result_clear(&self);

    /* a second key is independent */
    assert_int_equal(look(mc, KEY_B, 6100, &w, &res), MCACHE_FETCH);
    size_t n = 0;
    mcache_usage(mc, &n, NULL);
    assert_int_equal(n, 2);
    mcache_free(mc, NULL, NULL);
}

static void
test_mcache_coalesces_waiters_behind_one_fetch(void **state)
{
    (void)state;
    struct mcache *mc = mcache_new(100, 1 << 20);
    struct mcache_waiter w[4];
    struct mcache_result res, self;

    memset(w, 0, sizeof(w));
    assert_int_equal(look(mc, KEY_A, 0, &w[0], &res), MCACHE_FETCH);
    for (int i = 1; i < 4; i++) {
        w[i].worker = (uint32_t)i;
        w[i].arg = &w[i];
        assert_int_equal(look(mc, KEY_A, (uint64_t)i, &w[i], &res), MCACHE_WAIT);
        assert_null(res.blob);
    }
    struct mcache_waiter *list = store(mc, KEY_A, BODY, 10, 5000, &self);
    /* handed back in arrival order, each with its own reference to the same blob */
    int k = 1;
    for (struct mcache_waiter *x = list; x != NULL; x = x->next, k++) {
        assert_ptr_equal(x, &w[k]);
        assert_int_equal(x->worker, (uint32_t)k);
        assert_ptr_equal(x->arg, &w[k]);
        assert_int_equal(x->res.status, 0);
        assert_ptr_equal(x->res.blob, self.blob);
        assert_int_equal(x->res.expires_ms, 5000);
    }
    assert_int_equal(k, 4);
    assert_int_equal(atomic_load(&self.blob->refs), 5); /* cache + self + 3 waiters */
    for (int i = 1; i < 4; i++)
        mcache_result_clear(&w[i].res);
    mcache_result_clear(&self);

    /* the next request is a plain hit, no waiter is left behind */
    assert_int_equal(look(mc, KEY_A, 20, &w[0], &res), MCACHE_HIT);
    mcache_result_clear(&res);
    mcache_free(mc, NULL, NULL);
}

static void
test_mcache_revalidated_keeps_blob_with_new_expiry(void **state)
{
    (void)state;
    struct mcache *mc = mcache_new(100, 1 << 20);
    struct mcache_waiter w = {0}, w2 = {.worker = 1};
    struct mcache_result res, self, stale;

    assert_int_equal(look(mc, KEY_A, 0, &w, &res), MCACHE_FETCH);
    assert_null(store(mc, KEY_A, BODY, 0, 100, &self));
    struct mcache_blob *first = self.blob;

    assert_int_equal(look(mc, KEY_A, 100, &w, &stale), MCACHE_FETCH);
    assert_ptr_equal(stale.blob, first);
    assert_int_equal(look(mc, KEY_A, 101, &w2, &res), MCACHE_WAIT);
    struct mcache_fill f = {.kind = MCACHE_FILL_REVALIDATED, .expires_ms = 900};
    struct mcache_result self2;
    struct mcache_waiter *list = mcache_complete(mc, KEY_A, strlen(KEY_A), &f, 150, &self2);
    assert_ptr_equal(self2.blob, first);
    assert_int_equal(self2.expires_ms, 900);
    assert_ptr_equal(list, &w2);
    assert_ptr_equal(w2.res.blob, first);
    assert_null(list->next);
    mcache_result_clear(&w2.res);
    mcache_result_clear(&self2);
    mcache_result_clear(&stale);

    assert_int_equal(look(mc, KEY_A, 899, &w, &res), MCACHE_HIT);
    assert_ptr_equal(res.blob, first);
    mcache_result_clear(&res);
    mcache_result_clear(&self);

    /* 304 for a key that never had a body: answered as a 502, nothing invented */
    assert_int_equal(look(mc, KEY_B, 0, &w, &res), MCACHE_FETCH);
    assert_null(mcache_complete(mc, KEY_B, strlen(KEY_B), &f, 0, &self));
    assert_null(self.blob);
    assert_int_equal(self.status, 502);
    mcache_free(mc, NULL, NULL);
}

static void
test_mcache_remembers_errors_until_error_expiry(void **state)
{
    (void)state;
    struct mcache *mc = mcache_new(100, 1 << 20);
    struct mcache_waiter w = {0}, w2 = {0};
    struct mcache_result res, self;

    assert_int_equal(look(mc, KEY_A, 0, &w, &res), MCACHE_FETCH);
    assert_int_equal(look(mc, KEY_A, 1, &w2, &res), MCACHE_WAIT);
    struct mcache_waiter *list = failed(mc, KEY_A, 504, 10, 1010, &self);
    assert_null(self.blob);
    assert_int_equal(self.status, 504);
    assert_string_equal(self.reason, "origin timed out");
    assert_ptr_equal(list, &w2);
    assert_int_equal(w2.res.status, 504);
    assert_string_equal(w2.res.reason, "origin timed out");
    assert_null(w2.res.blob);

    assert_int_equal(look(mc, KEY_A, 1009, &w, &res), MCACHE_ERROR);
    assert_int_equal(res.status, 504);
    assert_int_equal(res.expires_ms, 1010);
    assert_null(res.blob);
    assert_int_equal(look(mc, KEY_A, 1010, &w, &res), MCACHE_FETCH); /* asks the origin again */
    assert_null(res.blob);

    /* error_ttl 0: nothing remembered, the next request fetches */
    assert_null(failed(mc, KEY_A, 502, 2000, 2000, &self));
    assert_int_equal(look(mc, KEY_A, 2000, &w, &res), MCACHE_FETCH);

    /* a failure after a good body keeps the stale body for the next conditional request */
    assert_null(store(mc, KEY_A, BODY, 2000, 2100, &self));
    struct mcache_blob *good = self.blob;
    mcache_result_clear(&self);
    assert_int_equal(look(mc, KEY_A, 2100, &w, &res), MCACHE_FETCH);
    mcache_result_clear(&res);
    assert_null(failed(mc, KEY_A, 502, 2100, 2200, &self));
    assert_int_equal(look(mc, KEY_A, 2150, &w, &res), MCACHE_ERROR);
    assert_int_equal(look(mc, KEY_A, 2200, &w, &res), MCACHE_FETCH);
    assert_ptr_equal(res.blob, good);
    mcache_result_clear(&res);
    mcache_free(mc, NULL, NULL);
}

static void
test_mcache_evicts_lru_by_entries(void **state)
{
    (void)state;
    struct mcache *mc = mcache_new(2, 1 << 20);
    struct mcache_waiter w = {0};
    struct mcache_result res, self;

    assert_int_equal(look(mc, KEY_A, 0, &w, &res), MCACHE_FETCH);
    assert_null(store(mc, KEY_A, BODY, 0, 10000, &self));
    mcache_result_clear(&self);
    assert_int_equal(look(mc, KEY_B, 1, &w, &res), MCACHE_FETCH);
    assert_null(store(mc, KEY_B, BODY, 1, 10000, &self));
    mcache_result_clear(&self);
    /* A is used again, so B is the least recently used when C comes */
    assert_int_equal(look(mc, KEY_A, 2, &w, &res), MCACHE_HIT);
    mcache_result_clear(&res);
    assert_int_equal(look(mc, KEY_C, 3, &w, &res), MCACHE_FETCH);
    size_t n = 0;
    mcache_usage(mc, &n, NULL);
    assert_int_equal(n, 2);
    assert_int_equal(look(mc, KEY_A, 4, &w, &res), MCACHE_HIT);
    mcache_result_clear(&res);
    assert_int_equal(look(mc, KEY_B, 5, &w, &res), MCACHE_FETCH); /* B was evicted */
    mcache_free(mc, NULL, NULL);
}

static void
test_mcache_evicts_by_bytes_but_never_in_flight(void **state)
{
    (void)state;
    struct mcache *mc = mcache_new(100, 4096);
    struct mcache_waiter w = {0}, wb = {.worker = 7};
    struct mcache_result res, self;
    char big[3000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';

    /* B is in flight (and has a waiter); A's big body then pushes the cache over max_bytes */
    assert_int_equal(look(mc, KEY_B, 0, &w, &res), MCACHE_FETCH);
    assert_int_equal(look(mc, KEY_B, 0, &wb, &res), MCACHE_WAIT);
    assert_int_equal(look(mc, KEY_A, 1, &w, &res), MCACHE_FETCH);
    assert_null(store(mc, KEY_A, big, 1, 1000, &self));
    mcache_result_clear(&self);
    assert_int_equal(look(mc, KEY_C, 2, &w, &res), MCACHE_FETCH);
    assert_null(store(mc, KEY_C, big, 2, 1000, &self));
    mcache_result_clear(&self);
    size_t n = 0;
    uint64_t bytes = 0;
    mcache_usage(mc, &n, &bytes);
    assert_true(bytes <= 4096);
    assert_int_equal(n, 2); /* A went; B (in flight) and C stay */
    /* B's fetch still completes and hands back its waiter */
    struct mcache_waiter *list = store(mc, KEY_B, BODY, 3, 1000, &self);
    assert_ptr_equal(list, &wb);
    assert_non_null(wb.res.blob);
    mcache_result_clear(&wb.res);
    mcache_result_clear(&self);
    assert_int_equal(look(mc, KEY_A, 4, &w, &res), MCACHE_FETCH);

    /* a body larger than the whole cache is answered but not kept */
    char huge[5000];
    memset(huge, 'y', sizeof(huge) - 1);
    huge[sizeof(huge) - 1] = '\0';
    assert_null(store(mc, KEY_A, huge, 5, 1000, &self));
    assert_non_null(self.blob);
    assert_int_equal(self.blob->len, sizeof(huge) - 1);
    assert_int_equal(atomic_load(&self.blob->refs), 1); /* only ours */
    mcache_result_clear(&self);
    mcache_usage(mc, NULL, &bytes);
    assert_true(bytes <= 4096);
    mcache_free(mc, NULL, NULL);
}

static void
release_cb(struct mcache_waiter *w, void *ctx)
{
    int *count = ctx;
    assert_int_equal(w->res.status, 503);
    assert_null(w->res.blob);
    (*count)++;
}

static void
test_mcache_free_releases_leftover_waiters(void **state)
{
    (void)state;
    struct mcache *mc = mcache_new(100, 1 << 20);
    struct mcache_waiter w = {0}, w1 = {0}, w2 = {0}, w3 = {0};
    struct mcache_result res;
    int released = 0;

    assert_int_equal(look(mc, KEY_A, 0, &w, &res), MCACHE_FETCH);
    assert_int_equal(look(mc, KEY_A, 0, &w1, &res), MCACHE_WAIT);
    assert_int_equal(look(mc, KEY_A, 0, &w2, &res), MCACHE_WAIT);
    assert_int_equal(look(mc, KEY_B, 0, &w, &res), MCACHE_FETCH);
    assert_int_equal(look(mc, KEY_B, 0, &w3, &res), MCACHE_WAIT);
    mcache_free(mc, release_cb, &released);
    assert_int_equal(released, 3);
    mcache_free(NULL, NULL, NULL);
}

static void
test_mcache_complete_unknown_key_answers_only_caller(void **state)
{
    (void)state;
    struct mcache *mc = mcache_new(100, 1 << 20);
    struct mcache_result self, res;
    struct mcache_waiter w = {0};

    assert_null(store(mc, KEY_A, BODY, 0, 1000, &self));
    assert_non_null(self.blob);
    assert_int_equal(atomic_load(&self.blob->refs), 1);
    mcache_result_clear(&self);
    /* nothing was stored */
    assert_int_equal(look(mc, KEY_A, 1, &w, &res), MCACHE_FETCH);
    mcache_free(mc, NULL, NULL);
}

/* Many threads asking for one key: exactly one becomes the fetcher, everyone else waits or hits. */
struct race {
    struct mcache *mc;
    pthread_mutex_t mu;
    int fetchers, waiters, hits;
    struct mcache_waiter w[8];
};

static void *
race_thread(void *arg)
{
    struct race *r = arg;
    for (int i = 0; i < 8; i++) {
        struct mcache_result res;
        enum mcache_lookup_rc rc = look(r->mc, KEY_A, 0, &r->w[i], &res);
        pthread_mutex_lock(&r->mu);
        if (rc == MCACHE_FETCH)
            r->fetchers++;
        else if (rc == MCACHE_WAIT)
            r->waiters++;
        else
            r->hits++;
        pthread_mutex_unlock(&r->mu);
        mcache_result_clear(&res);
    }
    return NULL;
}

static void
test_mcache_one_fetcher_across_threads(void **state)
{
    (void)state;
    struct race r[4];
    struct mcache *mc = mcache_new(100, 1 << 20);
    pthread_t t[4];
    int fetchers = 0, waiters = 0;
    memset(r, 0, sizeof(r));
    for (int i = 0; i < 4; i++) {
        r[i].mc = mc;
        pthread_mutex_init(&r[i].mu, NULL);
        assert_int_equal(pthread_create(&t[i], NULL, race_thread, &r[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        fetchers += r[i].fetchers;
        waiters += r[i].waiters;
        pthread_mutex_destroy(&r[i].mu);
    }
    assert_int_equal(fetchers, 1);
    assert_int_equal(waiters, 31);
    struct mcache_result self;
    int n = 0;
    for (struct mcache_waiter *x = store(mc, KEY_A, BODY, 0, 100, &self); x; x = x->next) {
        n++;
        mcache_result_clear(&x->res);
    }
    assert_int_equal(n, 31);
    mcache_result_clear(&self);
    mcache_free(mc, NULL, NULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mcache_miss_then_hit_until_expiry),
        cmocka_unit_test(test_mcache_coalesces_waiters_behind_one_fetch),
        cmocka_unit_test(test_mcache_revalidated_keeps_blob_with_new_expiry),
        cmocka_unit_test(test_mcache_remembers_errors_until_error_expiry),
        cmocka_unit_test(test_mcache_evicts_lru_by_entries),
        cmocka_unit_test(test_mcache_evicts_by_bytes_but_never_in_flight),
        cmocka_unit_test(test_mcache_free_releases_leftover_waiters),
        cmocka_unit_test(test_mcache_complete_unknown_key_answers_only_caller),
        cmocka_unit_test(test_mcache_one_fetcher_across_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
