/* beacon: player reports (decoded CMCD samples) on their way from the workers to the control
 * thread's struct obs. State layer: no I/O, no logging, no clock reads (now_ms is an argument).
 *
 * Each worker owns one struct beacon_worker: a per-source rate limiter (obs_limiter) and a
 * single-producer/single-consumer ring of fixed-size samples. A worker pushes without a lock
 * and without allocating (one release store per sample); the control thread drains every ring
 * on its tick into a struct obs. When a ring is full the sample is dropped and counted. Memory
 * is fixed at creation: nworkers x (queue_per_worker samples + max_sources limiter slots),
 * nothing per session.
 *
 * Samples carry the configuration generation their CDN and region indexes belong to; the
 * control thread tells the hub which generation its obs is reconciled with, and samples of any
 * other generation are dropped at drain (counted as dropped). */
#ifndef STEERD_BEACON_H
#define STEERD_BEACON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "steerd/obs.h"

struct buf;
struct cfg;
struct cmcd_report;

struct beacon_hub;
struct beacon_worker;

/* What each beacon came to. */
enum beacon_result {
    BEACON_ACCEPTED = 0, /* a good sample, queued for the control thread */
    BEACON_BAD,          /* CMCD that failed strict parsing: counted, never recorded */
    BEACON_RATE_LIMITED, /* a request refused by the per-source limit (its samples unread) */
    BEACON_DROPPED,      /* queue full, or queued under a configuration since replaced */
    BEACON_RESULT_N
};

struct beacon_params {
    uint32_t nworkers;
    uint32_t queue_per_worker; /* ring slots per worker (rounded up to a power of two) */
    uint32_t max_sources;      /* limiter sources per worker */
    double rate_per_s;         /* limiter refill per source */
    double burst;              /* limiter bucket size */
};

/* Counters as of a moment (summed over workers, plus the drops seen at drain). */
struct beacon_totals {
    uint64_t result[BEACON_RESULT_N];
    uint64_t drained; /* samples recorded into an obs */
};

/* A hub with p->nworkers worker slots. Never NULL (aborts on OOM). */
struct beacon_hub *beacon_hub_new(const struct beacon_params *p);
void beacon_hub_free(struct beacon_hub *h);

/* Worker i's slot (borrowed, lives as long as the hub); NULL when i is out of range. Only
 * worker i's thread may use it. */
struct beacon_worker *beacon_hub_worker(struct beacon_hub *h, uint32_t i);

/* ---- worker side (one thread per beacon_worker) ------------------------------------------ */

/* Takes one token for source (a hash of the client address). Returns true when allowed; else
 * counts one rate-limited request and sets *retry_after_ms (may be NULL). */
bool beacon_worker_admit(struct beacon_worker *w, uint64_t source, uint64_t now_ms,
                         uint32_t *retry_after_ms);

/* Queues one sample about cdn from region, with the indexes of configuration generation.
 * Returns true (counted accepted) or false when the ring is full (counted dropped). */
bool beacon_worker_push(struct beacon_worker *w, uint64_t generation, uint32_t cdn, uint32_t region,
                        const struct obs_beacon *b);

/* Counts n reports that failed CMCD parsing. */
void beacon_worker_count_bad(struct beacon_worker *w, uint32_t n);

/* The CDN a report is about: the CMCD cdn key when it names a configured CDN (by id), else
 * chosen (the CDN steerd chose for the session). Pure. */
uint32_t beacon_attribute(const struct cfg *c, const struct cmcd_report *r, uint32_t chosen);

/* ---- control side (one thread) ----------------------------------------------------------- */

/* The configuration the drained obs is reconciled with: samples of another generation are
 * dropped from now on. cfg is borrowed until the next call (its CDN ids label the per-CDN
 * counts; counts of CDNs that stay, by id, are kept). */
void beacon_hub_set_conf(struct beacon_hub *h, const struct cfg *cfg, uint64_t generation);

/* Moves every queued sample into o (obs_record_beacon at now_ms). Returns how many were
 * recorded. Call from one thread only (the control thread's tick). */
size_t beacon_drain(struct beacon_hub *h, struct obs *o, uint64_t now_ms);

/* Reads the counters; safe from the control thread while workers run. */
void beacon_hub_totals(const struct beacon_hub *h, struct beacon_totals *out);

/* Samples recorded per CDN of the current configuration (index as in the cfg given to
 * beacon_hub_set_conf); 0 when out of range. Control thread. */
uint64_t beacon_hub_cdn_samples(const struct beacon_hub *h, uint32_t cdn);

/* Appends steerd_beacons_total{result}, steerd_beacon_samples_total{cdn} (configured CDNs
 * only) and steerd_beacon_limiter_evictions_total. Control thread. */
void beacon_hub_write_prometheus(const struct beacon_hub *h, struct buf *out);

/* "accepted", "bad", "rate_limited" or "dropped" (a static string). */
const char *beacon_result_str(enum beacon_result r);

#endif
