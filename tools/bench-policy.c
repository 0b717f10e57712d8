/* bench-policy: the cost of one steering decision on the hot path, on one core.
 *
 *   bench-policy [--cdns N] [--regions N] [--runs N] [--decisions N] [--cpu N]
 *
 *   --cdns N        CDNs in the configuration (default 20, at most 64)
 *   --regions N     regions, the default one included (default 200)
 *   --runs N        timed runs; the figure is their median (default 9)
 *   --decisions N   decisions per timed run (default 2000000)
 *   --cpu N         pin the process to CPU N first (sched_setaffinity)
 *
 * A configuration of N CDNs (every one allowed everywhere, weight 1) and N regions is loaded
 * with cfg_load_string. The scoring engine (obs, cost, score) is fed one round of varied probe
 * measurements and prices and computes every region's shares once, as the control thread does;
 * the weights it publishes (score_weights) are what the workers read. A timed run then makes
 * --decisions decisions with policy_choose_w over those weights: each one for a different
 * session hash (splitmix64) in a region taken in turn, with every CDN up. The figure is elapsed
 * time / decisions (CLOCK_MONOTONIC), median over the runs; the static weights
 * (policy_choose) are measured the same way for comparison, and so is one score_update of the
 * whole configuration (control thread, once per interval). The goal, 1 us per decision with 20
 * CDNs x 200 regions, is printed next to it. Single-threaded: run it on an otherwise idle CPU.
 *
 * Exit status: 0 when the run completed (whether the goal was met is information), 2 on a usage
 * error or a configuration that did not load. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "steerd/cfg.h"
#include "steerd/cost.h"
#include "steerd/diag.h"
#include "steerd/obs.h"
#include "steerd/policy.h"
#include "steerd/score.h"
#include "steerd/util.h"

#define GOAL_NS 1000.0
#define MAX_RUNS 101

static uint64_t
splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static struct cfg *
make_cfg(size_t ncdns, size_t nregions)
{
    struct buf b;
    struct diag d;
    buf_init(&b, 0);
    diag_init(&d);
    buf_puts(&b, "{\"regions\": [");
    /* the default region is the last one (implicit): nregions - 1 are listed */
    for (size_t r = 0; r + 1 < nregions; r++)
        buf_printf(&b, "%s{\"name\": \"r%zu\", \"cidrs\": [\"10.%zu.%zu.0/24\"]}", r ? "," : "", r,
                   r / 256, r % 256);
    buf_puts(&b, "], \"default_region\": \"rest\", \"cdns\": [");
    for (size_t i = 0; i < ncdns; i++)
        buf_printf(&b, "%s{\"id\": \"cdn-%zu\", \"base_url\": \"https://cdn%zu.example\"}",
                   i ? "," : "", i, i);
    buf_puts(&b, "], \"policy\": {\"score\": {}}}");
    struct cfg *c = cfg_load_string(b.data, b.len, "<bench>", &d);
    if (c == NULL) {
        char *msg = diag_join(&d);
        fprintf(stderr, "bench-policy: configuration: %s\n", msg);
        free(msg);
    }
    buf_free(&b);
    diag_free(&d);
    return c;
}

/* Median ns per decision over runs; weights NULL = the static weights. */
static double
time_decisions(const struct cfg *c, const uint32_t *weights, const uint8_t *up, size_t runs,
               size_t n, uint64_t *sink)
{
    double per[MAX_RUNS];
    uint64_t seed = 42;
    for (size_t k = 0; k <= runs; k++) { /* run 0 warms up */
        uint32_t region = 0;
        double t0 = now_ns();
        for (size_t i = 0; i < n; i++) {
            uint64_t h = splitmix64(&seed);
            const uint32_t *w = weights ? &weights[(size_t)region * c->ncdns] : NULL;
            struct policy_decision d = policy_choose_w(c, w, up, region, h);
            *sink += d.cdn;
            region = region + 1 < c->nregions ? region + 1 : 0;
        }
        if (k > 0)
            per[k - 1] = (now_ns() - t0) / (double)n;
    }
    qsort(per, runs, sizeof(per[0]), cmp_double);
    return per[runs / 2];
}

static int
usage(void)
{
    fprintf(stderr, "usage: bench-policy [--cdns N] [--regions N] [--runs N] [--decisions N] "
                    "[--cpu N]\n");
    return 2;
}

int
main(int argc, char **argv)
{
    uint64_t ncdns = 20, nregions = 200, runs = 9, n = 2000000, cpu = UINT64_MAX;
    for (int i = 1; i < argc; i++) {
        uint64_t *dst = NULL, lo = 1, hi = 0;
        if (strcmp(argv[i], "--cdns") == 0)
            dst = &ncdns, hi = CFG_MAX_CDNS;
        else if (strcmp(argv[i], "--regions") == 0)
            dst = &nregions, hi = CFG_MAX_REGIONS;
        else if (strcmp(argv[i], "--runs") == 0)
            dst = &runs, hi = MAX_RUNS;
        else if (strcmp(argv[i], "--decisions") == 0)
            dst = &n, hi = 1000000000;
        else if (strcmp(argv[i], "--cpu") == 0)
            dst = &cpu, lo = 0, hi = 4095;
        else
            return usage();
        if (i + 1 >= argc || util_parse_u64(argv[i + 1], strlen(argv[i + 1]), lo, hi, dst) != 0)
            return usage();
        i++;
    }
    if (cpu != UINT64_MAX) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET((int)cpu, &set);
        if (sched_setaffinity(0, sizeof(set), &set) != 0)
            perror("bench-policy: sched_setaffinity");
    }
    struct cfg *c = make_cfg((size_t)ncdns, (size_t)nregions);
    if (c == NULL)
        return 2;

    /* One round of measurements and prices, as the control thread would have them. */
    struct obs_params op;
    struct score_params sp;
    obs_params_default(&op);
    score_params_default(&sp);
    struct obs *o = obs_new(&op);
    struct cost *cost = cost_new();
    struct score *s = score_new(&sp);
    obs_reconcile(o, c);
    cost_reconcile(cost, c);
    score_reconcile(s, c);
    uint64_t seed = 7, t = 1000000;
    for (uint32_t i = 0; i < c->ncdns; i++) {
        struct cost_cdn_params p = {0};
        struct diag d;
        diag_init(&d);
        p.ntiers = 1;
        p.tiers[0].price_per_gb = 0.01 + 0.001 * i;
        p.burst_price = -1;
        cost_configure(cost, i, &p, &d);
        diag_free(&d);
        for (uint32_t r = 0; r < c->nregions; r++) {
            struct obs_probe pr = {true, 5, 20 + (double)(splitmix64(&seed) % 200), 50e6};
            obs_record_probe(o, i, r, &pr, t);
        }
    }
    uint8_t *up = xcalloc(c->ncdns, 1);
    memset(up, 1, c->ncdns);
    double *demand = xcalloc(c->nregions, sizeof(*demand));
    struct score_inputs in = {c, up, o, cost, demand};
    double u0 = now_ns();
    score_update(s, &in, t);
    double update_ms = (now_ns() - u0) / 1e6;
    uint32_t *weights = xcalloc(c->nregions * c->ncdns, sizeof(*weights));
    for (uint32_t r = 0; r < c->nregions; r++)
        score_weights(s, c, r, &weights[(size_t)r * c->ncdns]);

    uint64_t sink = 0;
    double engine_ns = time_decisions(c, weights, up, (size_t)runs, (size_t)n, &sink);
    double static_ns = time_decisions(c, NULL, up, (size_t)runs, (size_t)n, &sink);
    printf("bench-policy: %zu CDNs x %zu regions, %llu decisions x %llu runs\n", c->ncdns,
           c->nregions, (unsigned long long)n, (unsigned long long)runs);
    printf("  decision, engine weights : %8.1f ns median (goal <= %.0f ns: %s)\n", engine_ns,
           GOAL_NS, engine_ns <= GOAL_NS ? "met" : "NOT met");
    printf("  decision, static weights : %8.1f ns median\n", static_ns);
    printf("  score_update, all regions: %8.2f ms (control thread, once per interval)\n",
           update_ms);
    printf("  (checksum %llu)\n", (unsigned long long)sink);

    free(weights);
    free(demand);
    free(up);
    score_free(s);
    cost_free(cost);
    obs_free(o);
    cfg_free(c);
    return 0;
}
