#include "steerd/policy.h"

#include <math.h>
#include <string.h>

#include "steerd/cfg.h"
#include "steerd/util.h"

/* Weighted rendezvous hashing: CDN i scores w_i / -ln(u_i), u_i uniform in (0,1) from the hash
 * of its id keyed by the session, and the highest score wins (a tie goes to the lower index).
 * That gives P(i) = w_i / sum(w), and adding, removing or reweighting a CDN moves only the
 * sessions whose winner it is or becomes. */

/* CDNs are compared in batches of this many (cfg allows at most CFG_MAX_CDNS, one batch). */
#define BATCH CFG_MAX_CDNS

/* Largest double below 1: keeps -ln(u) strictly positive. */
#define U_MAX 0x1.fffffffffffffp-1

static double
session_u(const char *id, uint64_t session_hash)
{
    uint64_t h = util_hash64(id, strlen(id), session_hash);
    double u = ((double)(h >> 11) + 0.5) * 0x1p-53;
    /* (2^53 - 1) + 0.5 rounds up to 2^53, which would give u == 1 and a division by -0. */
    return u > U_MAX ? U_MAX : u;
}

static double
score_of(uint32_t weight, double u)
{
    return (double)weight / -log(u);
}

/* A cheap lower bound of -ln(u): x + x^2/2 with x = 1 - u (the series has no negative term). */
static double
neg_log_floor(double u)
{
    double x = 1.0 - u;
    return x * (1.0 + 0.5 * x);
}

/* True when score_of(weight, u) is certainly below best, so the logarithm can be skipped.
 * The 1e-12 margin dwarfs every rounding error involved, so skipping never changes the
 * decision. */
static bool
cannot_beat(uint32_t weight, double u, double best)
{
    return neg_log_floor(u) * best >= (double)weight * (1.0 + 1e-12);
}

static bool
considered(const struct cfg_rule *rule, const uint8_t *up, bool ignore_health, size_t i)
{
    return rule->weights[i] > 0 && (ignore_health || up[i] != 0);
}

/* The highest-scoring CDN allowed by weight (and up, unless ignore_health), or -1.
 * Hashes a batch first, scores its most likely winner, then takes the logarithm only for
 * the few CDNs that could still beat it. */
static long
pick_weighted(const struct cfg *c, const struct cfg_rule *rule, const uint8_t *up,
              bool ignore_health, uint64_t session_hash)
{
    long best = -1;
    double best_score = -1.0;
    double us[BATCH];
    uint32_t idx[BATCH];

    for (size_t first = 0; first < c->ncdns; first += BATCH) {
        size_t last = c->ncdns - first < BATCH ? c->ncdns : first + BATCH;
        size_t n = 0, guess = 0;
        double guess_floor = 1.0, guess_w = 0.0; /* anything beats this */

        for (size_t i = first; i < last; i++) {
            if (!considered(rule, up, ignore_health, i))
                continue;
            double u = session_u(c->cdns[i].id, session_hash);
            double w = (double)rule->weights[i];
            double f = neg_log_floor(u);
            /* w / f > guess_w / guess_floor, without dividing */
            bool better = w * guess_floor > guess_w * f;
            guess = better ? n : guess;
            guess_floor = better ? f : guess_floor;
            guess_w = better ? w : guess_w;
            us[n] = u;
            idx[n] = (uint32_t)i;
            n++;
        }
        if (n == 0)
            continue;

        double s = score_of(rule->weights[idx[guess]], us[guess]);
        if (s > best_score) { /* an earlier batch has lower indexes: it keeps ties */
            best_score = s;
            best = idx[guess];
        }
        for (size_t k = 0; k < n; k++) {
            uint32_t w = rule->weights[idx[k]];
            if (k == guess || cannot_beat(w, us[k], best_score))
                continue;
            s = score_of(w, us[k]);
            if (s > best_score || (s == best_score && idx[k] < best)) {
                best_score = s;
                best = idx[k];
            }
        }
    }
    return best;
}

static void
explain_terms(const struct cfg *c, const struct cfg_rule *rule, const uint8_t *up,
              uint64_t session_hash, struct policy_decision d, struct policy_candidate *out)
{
    for (size_t i = 0; i < c->ncdns; i++) {
        out[i].cdn = (uint32_t)i;
        out[i].weight = rule->weights[i];
        out[i].up = up[i] != 0;
        out[i].eligible = considered(rule, up, false, i);
        out[i].failover_rank = -1;
        out[i].score = 0.0;
        /* Scores of the CDNs the deciding branch compared. */
        bool scored = (d.reason == POLICY_WEIGHTED && out[i].eligible) ||
                      (d.reason == POLICY_FAIL_OPEN && rule->weights[i] > 0);
        if (scored)
            out[i].score = score_of(rule->weights[i], session_u(c->cdns[i].id, session_hash));
    }
    for (size_t k = 0; k < rule->nfailover; k++) {
        uint32_t f = rule->failover[k];
        if (f < c->ncdns && out[f].failover_rank < 0)
            out[f].failover_rank = (long)k;
    }
}

/* The one decision procedure behind policy_choose and policy_explain. rule may carry the
 * engine's weights; stat is the region's static rule (the same as rule without the engine). */
static struct policy_decision
decide(const struct cfg *c, const uint8_t *up, const struct cfg_rule *rule,
       const struct cfg_rule *stat, uint64_t session_hash)
{
    struct policy_decision d = {0, POLICY_WEIGHTED};

    long best = pick_weighted(c, rule, up, false, session_hash);
    if (best < 0 && rule != stat) /* none the engine weighs is up: the static weights */
        best = pick_weighted(c, stat, up, false, session_hash);
    if (best >= 0) {
        d.cdn = (uint32_t)best;
        return d;
    }

    d.reason = POLICY_FAILOVER;
    for (size_t k = 0; k < rule->nfailover; k++) {
        uint32_t f = rule->failover[k];
        if (f < c->ncdns && up[f] != 0) {
            d.cdn = f;
            return d;
        }
    }

    /* Nothing usable is up: answer anyway, a player never gets an error from health. */
    d.reason = POLICY_FAIL_OPEN;
    best = pick_weighted(c, rule, up, true, session_hash);
    if (best >= 0)
        d.cdn = (uint32_t)best;
    else if (rule->nfailover > 0 && rule->failover[0] < c->ncdns)
        d.cdn = rule->failover[0];
    return d;
}

static const struct cfg_rule *
rule_for(const struct cfg *c, uint32_t region)
{
    return &c->rules[region < c->nregions ? region : c->default_region];
}

/* The region's rule with the engine's weights in place of the static ones (in *tmp), or the
 * static rule itself when weights is NULL. */
static const struct cfg_rule *
rule_with(const struct cfg *c, uint32_t region, const uint32_t *weights, struct cfg_rule *tmp)
{
    const struct cfg_rule *stat = rule_for(c, region);
    if (weights == NULL)
        return stat;
    *tmp = *stat;
    tmp->weights = (uint32_t *)(uintptr_t)weights; /* only read */
    return tmp;
}

struct policy_decision
policy_choose(const struct cfg *c, const uint8_t *up, uint32_t region, uint64_t session_hash)
{
    return policy_choose_w(c, NULL, up, region, session_hash);
}

struct policy_decision
policy_choose_w(const struct cfg *c, const uint32_t *weights, const uint8_t *up, uint32_t region,
                uint64_t session_hash)
{
    struct cfg_rule tmp;
    const struct cfg_rule *rule = rule_with(c, region, weights, &tmp);
    return decide(c, up, rule, rule_for(c, region), session_hash);
}

struct policy_decision
policy_explain(const struct cfg *c, const uint8_t *up, uint32_t region, uint64_t session_hash,
               struct policy_candidate *out)
{
    return policy_explain_w(c, NULL, up, region, session_hash, out);
}

struct policy_decision
policy_explain_w(const struct cfg *c, const uint32_t *weights, const uint8_t *up, uint32_t region,
                 uint64_t session_hash, struct policy_candidate *out)
{
    struct cfg_rule tmp;
    const struct cfg_rule *rule = rule_with(c, region, weights, &tmp);
    const struct cfg_rule *stat = rule_for(c, region);
    struct policy_decision d = decide(c, up, rule, stat, session_hash);
    /* A weighted answer from the static fallback is explained with the static weights. */
    if (rule != stat && d.reason == POLICY_WEIGHTED && !considered(rule, up, false, d.cdn))
        rule = stat;
    explain_terms(c, rule, up, session_hash, d, out);
    return d;
}

size_t
policy_rank(const struct cfg *c, const uint8_t *up, uint32_t region, uint64_t session_hash,
            uint32_t *out)
{
    return policy_rank_w(c, NULL, up, region, session_hash, out);
}

size_t
policy_rank_w(const struct cfg *c, const uint32_t *weights, const uint8_t *up, uint32_t region,
              uint64_t session_hash, uint32_t *out)
{
    struct cfg_rule tmp;
    const struct cfg_rule *rule = rule_with(c, region, weights, &tmp);
    const struct cfg_rule *stat = rule_for(c, region);
    struct policy_decision d = decide(c, up, rule, stat, session_hash);
    if (rule != stat && d.reason == POLICY_WEIGHTED && !considered(rule, up, false, d.cdn))
        rule = stat;
    bool ignore_health = d.reason == POLICY_FAIL_OPEN;
    uint32_t idx[CFG_MAX_CDNS];
    double score[CFG_MAX_CDNS];
    bool listed[CFG_MAX_CDNS] = {false};
    size_t n = 0, m = 0;

    out[n++] = d.cdn;
    listed[d.cdn] = true;
    /* The other CDNs the weighted branch would consider, best score first (insertion sort:
     * at most CFG_MAX_CDNS entries; ties keep the lower index first). */
    for (size_t i = 0; i < c->ncdns; i++) {
        if (listed[i] || !considered(rule, up, ignore_health, i))
            continue;
        double s = score_of(rule->weights[i], session_u(c->cdns[i].id, session_hash));
        size_t k = m++;
        while (k > 0 && score[k - 1] < s) {
            idx[k] = idx[k - 1];
            score[k] = score[k - 1];
            k--;
        }
        idx[k] = (uint32_t)i;
        score[k] = s;
    }
    for (size_t k = 0; k < m; k++) {
        out[n++] = idx[k];
        listed[idx[k]] = true;
    }
    for (size_t k = 0; k < rule->nfailover; k++) {
        uint32_t f = rule->failover[k];
        if (f < c->ncdns && !listed[f] && (ignore_health || up[f] != 0)) {
            out[n++] = f;
            listed[f] = true;
        }
    }
    return n;
}

const char *
policy_reason_str(enum policy_reason r)
{
    switch (r) {
    case POLICY_WEIGHTED:
        return "weighted";
    case POLICY_FAILOVER:
        return "failover";
    case POLICY_FAIL_OPEN:
        return "fail_open";
    }
    return "unknown";
}
