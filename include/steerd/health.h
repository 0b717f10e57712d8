/* health: per-CDN up/down state from probe outcomes with rise/fall hysteresis, plus the
 * counters and last measurements /metrics and /state show. State layer: no I/O, no clock reads
 * (now is an argument). Used only from the control thread. */
#ifndef STEERD_HEALTH_H
#define STEERD_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cfg;
struct buf;

enum health_outcome { HEALTH_OK = 0, HEALTH_FAIL, HEALTH_INCONCLUSIVE };
enum health_state { HEALTH_UNKNOWN = 0, HEALTH_UP, HEALTH_DOWN };

struct health_sample {
    enum health_outcome outcome;
    long http_status;  /* 0 when none */
    double connect_ms; /* -1 when not measured */
    double ttfb_ms;    /* -1 when not measured */
    double total_ms;
    uint64_t body_bytes;
    const char *error;  /* short reason on FAIL / INCONCLUSIVE, borrowed; NULL on OK */
    double tp_bps;      /* download throughput (body bits / total time), -1 when not measured */
    const char *region; /* NULL: the CDN's own probe; else the region name of a regional probe
                           URL (borrowed), whose result says nothing about up/down */
};

struct health_cdn {
    char id[33];
    bool probed; /* has a probe URL */
    enum health_state state;
    uint32_t consecutive_ok, consecutive_fail;
    uint64_t ok_total, fail_total, inconclusive_total, transitions_total;
    uint64_t last_change_ms, last_probe_ms;
    long last_status;
    double last_connect_ms, last_ttfb_ms, last_total_ms;
    char last_error[96];
};

struct health;

struct health *health_new(void);
void health_free(struct health *h);

/* Makes the tracked set match c's CDNs (by id): history is kept for ids that remain, new ids
 * start UNKNOWN, removed ids are dropped; rise/fall thresholds are read from c. */
void health_reconcile(struct health *h, const struct cfg *c);

/* Records one probe outcome for id (unknown ids are ignored). The first conclusive outcome of a
 * CDN sets its state at once; afterwards rise consecutive OKs bring it up and fall consecutive
 * FAILs take it down. INCONCLUSIVE leaves the state and the streaks alone: it updates only its
 * counter, last_probe_ms and last_error. Returns true when the state changed (including the
 * first UNKNOWN -> UP/DOWN); each change counts in transitions_total. */
bool health_record(struct health *h, const char *id, const struct health_sample *s,
                   uint64_t now_ms);

/* up[i] for c's CDN order: UP and UNKNOWN count as up, DOWN as down; CDNs without a probe are
 * always up. up has c->ncdns bytes. */
void health_fill_up(const struct health *h, const struct cfg *c, uint8_t *up);

/* True once every probed CDN has had a conclusive outcome. */
bool health_all_known(const struct health *h);

size_t health_count(const struct health *h);
/* Borrowed, valid until the next reconcile; NULL past the end. */
const struct health_cdn *health_at(const struct health *h, size_t i);
const char *health_state_str(enum health_state s);

#endif
