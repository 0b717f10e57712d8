/* policy: which CDN serves a session, from the config's per-region rule and CDN health.
 * Pure and allocation-free: the same inputs always give the same answer.
 *  - weighted: weighted rendezvous hashing over the region's allowed CDNs that are up, keyed
 *    by the session hash (adding a CDN moves only its share; a session sticks to its CDN);
 *  - failover: when none of those is up, the region's failover list in order, first one up;
 *  - fail open: when nothing is up, the weighted choice over the allowed CDNs ignoring health
 *    (or the first failover entry when the region allows none by weight, or CDN 0 when the
 *    region has neither). */
#ifndef STEERD_POLICY_H
#define STEERD_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cfg;

enum policy_reason { POLICY_WEIGHTED = 0, POLICY_FAILOVER, POLICY_FAIL_OPEN };

struct policy_candidate {
    uint32_t cdn;       /* index into cfg->cdns */
    uint32_t weight;    /* the region's weight for it, 0 = not allowed by weight */
    bool up;            /* health as given */
    bool eligible;      /* allowed by weight and up */
    long failover_rank; /* position in the failover list, -1 when absent */
    double score;       /* rendezvous score in the branch that decided (weighted: the eligible
                           CDNs; fail open: every CDN allowed by weight), else 0 */
};

struct policy_decision {
    uint32_t cdn;
    enum policy_reason reason;
};

/* up[i] is CDN i's health (non-zero = up). region indexes cfg->regions (an index out of range
 * is treated as cfg->default_region). Cannot fail; no allocation. */
struct policy_decision policy_choose(const struct cfg *c, const uint8_t *up, uint32_t region,
                                     uint64_t session_hash);

/* As policy_choose (always the same decision), and fills out[0..ncdns-1] with every CDN's
 * terms (in cfg order). */
struct policy_decision policy_explain(const struct cfg *c, const uint8_t *up, uint32_t region,
                                      uint64_t session_hash, struct policy_candidate *out);

/* The session's candidate CDNs in rank order, for answers that list several (redundant HLS
 * streams, DASH BaseURLs, steering PATHWAY-PRIORITY): the decision of policy_choose first, then
 * the other CDNs its branch considered by score, then the failover entries that are up. No CDN
 * appears twice. out has room for cfg->ncdns entries; returns how many were written (>= 1). */
size_t policy_rank(const struct cfg *c, const uint8_t *up, uint32_t region, uint64_t session_hash,
                   uint32_t *out);

/* The same three with the scoring engine's weights for the region (weights: ncdns entries, e.g.
 * snap_weights(); NULL = the static ones) in place of the rule's. When none of the CDNs those
 * weigh is up, the static weights are tried before the failover list. No allocation. */
struct policy_decision policy_choose_w(const struct cfg *c, const uint32_t *weights,
                                       const uint8_t *up, uint32_t region, uint64_t session_hash);
struct policy_decision policy_explain_w(const struct cfg *c, const uint32_t *weights,
                                        const uint8_t *up, uint32_t region, uint64_t session_hash,
                                        struct policy_candidate *out);
size_t policy_rank_w(const struct cfg *c, const uint32_t *weights, const uint8_t *up,
                     uint32_t region, uint64_t session_hash, uint32_t *out);

/* "weighted", "failover" or "fail_open" (a static string). */
const char *policy_reason_str(enum policy_reason r);

#endif
