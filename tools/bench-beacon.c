/* bench-beacon: beacon ingestion on one core, the work a worker and the control thread do per
 * sample without the sockets: CMCD parsing, attribution, the per-worker ring and the drain into
 * an obs.
 *
 *   bench-beacon [--samples N] [--body-lines L] [--cpu N]
 *
 *   --samples N     distinct session ids sent through the path (default 1000000)
 *   --body-lines L  reports per POST body (default 32)
 *   --cpu N         pin the process to CPU N first (sched_setaffinity)
 *
 * Two passes of N samples each, every sample with its own sid ("sess-<i>", so N distinct
 * sessions), from 1024 client addresses in rotation and 4 regions:
 *  - body: POST bodies of L application/cmcd lines (`bl,br,mtp,ot,sf,sid` and a `bs` on every
 *    8th line): one rate-limiter token per body, cmcd_parse_body, then per report the session
 *    hash of its sid, the policy's choice for that session (no cdn key) and the push;
 *  - query: one percent-encoded CMCD query argument per sample (what a 302 carries): a token,
 *    cmcd_parse_query, attribution to the CDN the answer used, the push.
 * The control thread's part runs inline: the ring (16384 slots) is drained into an obs every
 * 4096 samples, as its 100 ms tick would. Generating each payload (snprintf) is inside the timed
 * loop, so the figures are a little low. samples/s = samples / elapsed, samples/CPU-s from the
 * thread's CPU time; the goal is >= 200000 samples/s per core. RSS is read from /proc/self/status
 * before the first pass and after the last (VmHWM: the peak): nothing is kept per session, so it
 * must not depend on N (goal <= 64 MB).
 *
 * Exit status: 0 when every sample was accepted and drained (goals are information), 1
 * otherwise, 2 on a usage error. */
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "steerd/beacon.h"
#include "steerd/cfg.h"
#include "steerd/cmcd.h"
#include "steerd/diag.h"
#include "steerd/h_redirect.h"
#include "steerd/obs.h"
#include "steerd/policy.h"
#include "steerd/util.h"

#define QUEUE 16384
#define DRAIN_EVERY 4096
#define SOURCES 1024
#define GOAL_PER_S 200000.0
#define GOAL_RSS_MB 64.0

static const char CFG_JSON[] =
    "{\"cdns\": [{\"id\": \"alpha\", \"base_url\": \"http://a.example\"},"
    "            {\"id\": \"beta\", \"base_url\": \"http://b.example\"},"
    "            {\"id\": \"gamma\", \"base_url\": \"http://c.example\"}],"
    " \"regions\": [{\"name\": \"eu\", \"countries\": [\"SE\"]},"
    "               {\"name\": \"us\", \"countries\": [\"US\"]},"
    "               {\"name\": \"ap\", \"countries\": [\"JP\"]}],"
    " \"default_region\": \"world\","
    " \"policy\": {\"default\": {\"cdns\": {\"alpha\": 2, \"beta\": 1, \"gamma\": 1}}}}";

struct run {
    const struct cfg *cfg;
    uint8_t up[CFG_MAX_CDNS];
    struct beacon_hub *hub;
    struct beacon_worker *w;
    struct obs *obs;
    uint64_t now_ms;
    uint64_t since_drain;
    uint32_t region;
};

static double
mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double
cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long
status_kib(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t n = strlen(field);
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, field, n) == 0 && line[n] == ':') {
            v = strtol(line + n + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return v;
}

static void
maybe_drain(struct run *r)
{
    if (++r->since_drain >= DRAIN_EVERY) {
        beacon_drain(r->hub, r->obs, r->now_ms);
        r->since_drain = 0;
        r->now_ms += 10;
    }
}

/* One report of a body: as h_beacon's ingest_report with no cdn key. */
static void
on_report(const struct cmcd_report *rep, void *arg)
{
    struct run *r = arg;
    struct obs_beacon b;
    uint32_t cdn = beacon_attribute(r->cfg, rep, UINT32_MAX);
    if (cdn == UINT32_MAX) {
        uint64_t h = util_hash64(rep->sid, strlen(rep->sid), 0x5f3759df2b9c4e1dULL);
        cdn = policy_choose(r->cfg, r->up, r->region, h).cdn;
    }
    obs_beacon_from_cmcd(rep, &b);
    beacon_worker_push(r->w, 1, cdn, r->region, &b);
    maybe_drain(r);
}

static void
pass_body(struct run *r, uint64_t n, uint32_t lines, uint64_t *bad)
{
    char *body = xmalloc((size_t)lines * 128 + 1);
    uint64_t i = 0;
    while (i < n) {
        size_t len = 0;
        uint32_t k;
        for (k = 0; k < lines && i < n; k++, i++)
            len += (size_t)snprintf(body + len, 128,
                                    "bl=%u,br=3200,mtp=%u,ot=v,sf=d,sid=\"sess-%llu\"%s\n",
                                    (unsigned)(i % 30000), (unsigned)(1000 + i % 50000),
                                    (unsigned long long)i, i % 8 == 0 ? ",bs" : "");
        r->region = (uint32_t)(i % 4);
        beacon_worker_admit(r->w, util_hash64(&i, sizeof(i), 0) % SOURCES, r->now_ms, NULL);
        struct cmcd_body_result res = {0};
        cmcd_parse_body(body, len, on_report, r, &res);
        *bad += res.bad;
    }
    free(body);
}

static void
pass_query(struct run *r, uint64_t n, uint64_t *bad)
{
    char q[256];
    for (uint64_t i = 0; i < n; i++) {
        int len =
            snprintf(q, sizeof(q),
                     "x=1&CMCD=bl%%3D%u%%2Cbr%%3D3200%%2Cmtp%%3D%u%%2Cot%%3Dv%%2C"
                     "sid%%3D%%22q-%llu%%22",
                     (unsigned)(i % 30000), (unsigned)(1000 + i % 50000), (unsigned long long)i);
        struct cmcd_report rep;
        struct obs_beacon b;
        r->region = (uint32_t)(i % 4);
        beacon_worker_admit(r->w, i % SOURCES, r->now_ms, NULL);
        if (cmcd_parse_query(q, (size_t)len, &rep) != CMCD_OK) {
            (*bad)++;
            continue;
        }
        /* the 302's own decision, as h_redirect makes it */
        uint32_t chosen = policy_choose(r->cfg, r->up, r->region, i * 0x9e3779b97f4a7c15ULL).cdn;
        obs_beacon_from_cmcd(&rep, &b);
        beacon_worker_push(r->w, 1, beacon_attribute(r->cfg, &rep, chosen), r->region, &b);
        maybe_drain(r);
    }
}

int
main(int argc, char **argv)
{
    uint64_t n = 1000000;
    uint32_t lines = 32;
    int cpu = -1;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--samples") == 0 && i + 1 < argc)
            n = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--body-lines") == 0 && i + 1 < argc)
            lines = (uint32_t)strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--cpu") == 0 && i + 1 < argc)
            cpu = (int)strtol(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "usage: bench-beacon [--samples N] [--body-lines L] [--cpu N]\n");
            return 2;
        }
    }
    if (n == 0 || lines == 0 || lines > CMCD_BODY_MAX_REPORTS) {
        fprintf(stderr, "bench-beacon: --samples must be > 0, --body-lines 1..%d\n",
                CMCD_BODY_MAX_REPORTS);
        return 2;
    }
    if (cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        if (sched_setaffinity(0, sizeof(set), &set) != 0)
            fprintf(stderr, "bench-beacon: cannot pin to CPU %d\n", cpu);
    }

    struct diag d;
    diag_init(&d);
    struct cfg *cfg = cfg_load_string(CFG_JSON, sizeof(CFG_JSON) - 1, "bench", &d);
    if (cfg == NULL) {
        fprintf(stderr, "bench-beacon: bad built-in config\n");
        return 2;
    }
    diag_free(&d);
    struct obs_params op;
    obs_params_default(&op);
    struct beacon_params bp = {.nworkers = 1,
                               .queue_per_worker = QUEUE,
                               .max_sources = 65536,
                               .rate_per_s = 1e9,
                               .burst = 1e9};
    struct run r = {.cfg = cfg, .now_ms = 1000};
    memset(r.up, 1, sizeof(r.up));
    r.hub = beacon_hub_new(&bp);
    r.w = beacon_hub_worker(r.hub, 0);
    r.obs = obs_new(&op);
    obs_reconcile(r.obs, cfg);
    beacon_hub_set_conf(r.hub, cfg, 1);

    long rss0 = status_kib("VmRSS");
    const char *names[] = {"body", "query"};
    uint64_t bad = 0;
    int rc = 0;
    printf("bench-beacon: %llu distinct sids per pass, %u reports per body, 1 core\n",
           (unsigned long long)n, lines);
    for (int p = 0; p < 2; p++) {
        struct beacon_totals t0, t1;
        beacon_hub_totals(r.hub, &t0);
        double w0 = mono_s(), c0 = cpu_s();
        if (p == 0)
            pass_body(&r, n, lines, &bad);
        else
            pass_query(&r, n, &bad);
        beacon_drain(r.hub, r.obs, r.now_ms);
        double el = mono_s() - w0, cp = cpu_s() - c0;
        beacon_hub_totals(r.hub, &t1);
        uint64_t acc = t1.result[BEACON_ACCEPTED] - t0.result[BEACON_ACCEPTED];
        uint64_t drained = t1.drained - t0.drained;
        printf("  %-5s  %9.0f samples/s  %9.0f samples/CPU-s  (%llu accepted, %llu drained, "
               "%.2f s)  goal >= %.0f: %s\n",
               names[p], (double)acc / el, (double)acc / cp, (unsigned long long)acc,
               (unsigned long long)drained, el, GOAL_PER_S,
               (double)acc / cp >= GOAL_PER_S ? "met" : "NOT met");
        if (acc != n || drained != n)
            rc = 1;
    }
    long rss1 = status_kib("VmRSS"), hwm = status_kib("VmHWM");
    printf("  rss    before %.1f MB, after %.1f MB, peak %.1f MB  goal <= %.0f MB: %s\n",
           rss0 / 1024.0, rss1 / 1024.0, hwm / 1024.0, GOAL_RSS_MB,
           hwm >= 0 && hwm / 1024.0 <= GOAL_RSS_MB ? "met" : "NOT met");
    if (bad != 0) {
        fprintf(stderr, "bench-beacon: %llu reports failed to parse\n", (unsigned long long)bad);
        rc = 1;
    }
    obs_free(r.obs);
    beacon_hub_free(r.hub);
    cfg_free(cfg);
    return rc;
}
