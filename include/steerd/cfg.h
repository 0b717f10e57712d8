/* cfg: the configuration file loaded with jansson into plain structs, validated whole.
 * Pure: no logging, no clock. Every problem is added to the caller's diag as
 * "FILE:LINE:COL: msg" (JSON syntax, duplicate keys) or "json.path: msg" (semantics).
 * A struct cfg is immutable once returned and owned by the caller (cfg_free). */
#ifndef STEERD_CFG_H
#define STEERD_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "steerd/netaddr.h"

struct diag;
struct steering_keyring;

#define CFG_MAX_FILE_BYTES (16u * 1024 * 1024)
#define CFG_MAX_CDNS 64
#define CFG_MAX_REGIONS 1024
#define CFG_MAX_LISTEN 16
#define CFG_ID_MAX 32
#define CFG_URL_MAX 1024
#define CFG_MAX_ALLOW_TARGETS 64

enum cfg_manifest_mode { CFG_MANIFEST_REWRITE = 0, CFG_MANIFEST_STEERING, CFG_MANIFEST_REDIRECT };

#define CFG_MAX_COST_TIERS 8

/* A probe URL measuring a CDN from one region ("cdns[].probe.regions": region name -> URL). Its
 * results feed that region's live quality only; health (up/down) comes from the main URL. */
struct cfg_probe_region {
    uint32_t region; /* index into cfg.regions */
    char *url;
};

struct cfg_probe {
    char *url;                         /* NULL: no probe, the CDN is always considered up */
    uint32_t interval_ms;              /* 100..3600000, default 2000 */
    uint32_t timeout_ms;               /* 50..60000, default 1000 */
    uint32_t rise;                     /* 1..100, default 2: successes to come back up */
    uint32_t fall;                     /* 1..100, default 2: failures to go down */
    uint32_t max_body_bytes;           /* 1..67108864, default 1048576: larger body = failure */
    uint32_t low_speed_bytes_per_s;    /* 0..1e9, default 1024 (0 = off) */
    uint32_t low_speed_time_ms;        /* 1000..600000, default 2000 */
    struct cfg_probe_region *regional; /* "regions": at most one per region */
    size_t nregional;
};

enum cfg_commit { CFG_COMMIT_NONE = 0, CFG_COMMIT_P95_GBPS, CFG_COMMIT_GB };

/* A CDN's pricing ("cdns[].cost"); without the object the CDN is unpriced (free, unlimited). */
struct cfg_cost {
    bool priced;                              /* the object was given */
    double tier_up_to_gb[CFG_MAX_COST_TIERS]; /* ascending */
    double tier_price_per_gb[CFG_MAX_COST_TIERS];
    size_t ntiers;
    enum cfg_commit commit; /* "commit.type": "p95_gbps" | "gb_month" */
    double commit_amount;   /* Gbps or GB, > 0 with a commit */
    double commit_fee;      /* per month, >= 0 */
    double burst_price;     /* above the commit; -1: the tiers (GB commit only) */
    double capacity_gbps;   /* 0 = unlimited */
    double month_used_gb;   /* volume already used this month (a usage report); -1 = unknown */
};

struct cfg_cdn {
    char *id;       /* [a-z0-9-]{1,32} */
    char *base_url; /* scheme://host[:port][/prefix], no trailing '/', no query or fragment */
    size_t base_url_len;
    struct cfg_probe probe;
    struct cfg_cost cost;
};

struct cfg_region {
    char *name;
    char (*countries)[3]; /* ISO 3166-1 alpha-2, upper case */
    size_t ncountries;
    uint32_t *asns;
    size_t nasns;
    struct netaddr_cidr *cidrs;
    size_t ncidrs;
    bool implicit; /* the default_region when it is not listed in "regions" */
};

/* What a region may use. weights[i] belongs to cdns[i]; 0 means not allowed there.
 * "policy.default" gives every CDN weight 1 and no failover unless it says otherwise; an entry in
 * "policy.regions" starts from that default and replaces only the keys it names ("cdns": every
 * weight, unnamed CDNs 0; "failover": the list). A rule with no weight > 0 and no failover is an
 * error. */
struct cfg_rule {
    uint32_t *weights;  /* [ncdns] */
    uint32_t *failover; /* cdn indexes tried in order when no weighted CDN is up */
    size_t nfailover;
    int manifest_mode; /* an enum cfg_manifest_mode, or -1: policy.manifest_mode */
};

/* "policy.paths[]": the answer mode for manifests under a path prefix. */
struct cfg_path_rule {
    char *prefix; /* starts with '/', canonical */
    size_t prefix_len;
    enum cfg_manifest_mode manifest_mode;
};
#define CFG_MAX_PATH_RULES 64

/* The scoring engine ("policy.score"; see score.h for the formula). Without the object the engine
 * is off and the static weights decide, as before. Ranges in cfg.c. */
struct cfg_score {
    bool enabled;
    double w_throughput, w_rebuffer, w_latency, w_availability; /* 0..100, sum > 0; 1 2 1 2 */
    double cost_weight;                                         /* 0..1, default 0.5 */
    double quality_bar;                                         /* 0..1, default 0.9 */
    double hysteresis;                                          /* 0..1, default 0.05 */
    double max_shift;                                           /* 0.001..1, default 0.2 */
    double exploration;                                         /* 0..0.5, default 0.02 */
    uint32_t interval_ms;                                       /* 100..3600000, default 60000 */
    double latency_good_ms;                                     /* 0..60000, default 50 */
    double latency_bad_ms;      /* 1..60000 and > latency_good_ms, default 1000 */
    double spill_at;            /* 0.01..1, default 0.9 */
    uint32_t flap_half_life_ms; /* 0..86400000, default 900000 */
    double flap_suppress;       /* 0.1..100 and > flap_reuse, default 1.5 */
    double flap_reuse;          /* 0.001..100, default 0.75 */
    double probe_tp_target_bps; /* 0..1e12, default 0 (off): a probe throughput at or above it
                                   counts as fully good in the throughput term */
};

/* Live measurements ("policy.observe"; see obs.h). */
struct cfg_observe {
    uint32_t probe_half_life_ms;  /* 100..86400000, default 60000 */
    uint32_t beacon_half_life_ms; /* 100..86400000, default 300000 */
    uint32_t beacon_window_ms;    /* 0..86400000, default 60000 (0: no beacon cap) */
    double beacon_max_step;       /* 0..1, default 0.2 */
    double tp_target_bps;         /* 1..1e12, default 5e6 */
    double starvation_bad;        /* 0.001..1, default 0.1 */
    double error_bad;             /* 0.001..1, default 0.1 */
};

/* How decisions turn into a traffic estimate ("policy.traffic"): each decision stands for one
 * session of session_s seconds at bitrate_bps. */
struct cfg_traffic {
    double bitrate_bps; /* 1000..1e10, default 3e6 */
    uint32_t session_s; /* 1..86400, default 300 */
};

struct cfg_http {
    char *cors_allow_origin;         /* default "*" */
    char *redirect_cache_control;    /* default "no-store" */
    uint32_t max_request_line_bytes; /* 256..65536, default 8192 (414 past it) */
    uint32_t max_header_bytes;       /* 1024..262144, default 16384 (431 past it) */
    uint32_t max_headers;            /* 8..100, default 64 (431 past it) */
    uint32_t max_header_line;        /* 256..262144, default 8192: one field line (431 past it) */
    uint32_t header_timeout_ms;      /* 100..600000, default 10000 (408) */
    uint32_t keepalive_timeout_ms;   /* 0..3600000, default 60000 */
    uint32_t write_timeout_ms;       /* 100..600000, default 30000 */
    uint32_t max_connections;        /* per worker, 1..1000000, default 10000 */
    uint32_t shutdown_grace_ms;      /* 0..600000, default 5000 */
    uint32_t max_body_bytes;         /* 0..1048576, default 65536: larger request bodies get 413
                                        (only routes that take a body: POST /beacon) */
    uint32_t body_timeout_ms;        /* 100..600000, default 10000: whole body after the head
                                        (408) */
    /* Overload shedding (see overload.h). */
    uint32_t overload_lag_ms;       /* 1..60000, default 50: event-loop lag of level 1 (2x: 2,
                                       4x: 3) */
    uint32_t overload_conn_percent; /* 1..100, default 80: share of max_connections of level 2
                                       (3/4 of it: level 1) */
    uint32_t overload_recover_ms;   /* 0..600000, default 2000: calm time before the level drops
                                       one step */
};

/* Player beacon ingestion ("beacon" object). Read once at start-up: a reload does not change
 * them. */
struct cfg_beacon {
    uint32_t rate_per_s;       /* 1..1000000, default 50: beacons per second per source
                                  address and worker (POST /beacon requests, and requests
                                  carrying CMCD) */
    uint32_t burst;            /* 1..1000000, default 100 */
    uint32_t max_sources;      /* 8..10000000, default 65536: sources tracked per worker */
    uint32_t queue_per_worker; /* 64..1048576, default 65536: samples waiting for the control
                                  thread per worker; more are dropped (counted) */
};

/* The origin that manifests are fetched from ("origin" object; base_url is kept in
 * cfg.origin_base_url). */
struct cfg_origin {
    uint32_t timeout_ms;         /* 100..60000, default 5000: whole origin fetch */
    uint32_t connect_timeout_ms; /* 100..60000, default 2000 */
    uint32_t max_manifest_bytes; /* 1024..67108864, default 8388608: larger bodies give 502 */
};

/* Manifest rewriting and its cache ("manifest" object). The cache limits are read once at
 * start-up; a reload changes the rest. */
struct cfg_manifest {
    uint32_t vod_ttl_s;         /* 0..86400, default 300: HLS with EXT-X-ENDLIST, multivariant
                                   playlists, static MPDs */
    uint32_t live_ttl_min_ms;   /* 100..60000, default 1000: live media playlists are cached
                                   max(this, target duration / 2), dynamic MPDs
                                   max(this, minimumUpdatePeriod / 2) */
    uint32_t error_ttl_ms;      /* 0..60000, default 1000: how long an origin failure is
                                   remembered (and answered without asking the origin again) */
    uint32_t cache_max_entries; /* 1..1000000, default 10000 */
    uint64_t cache_max_bytes;   /* 1048576..4294967296, default 268435456 */
    bool redundant_streams;     /* default true: list every variant once per candidate CDN */
    char *public_base_url;      /* steerd as players see it (absolute http(s), no trailing '/'),
                                   for nested playlist and MPD reload URLs; NULL: path-absolute
                                   references ("/path") */
};

/* Content Steering ("steering" object): GET /steer/hls, GET /steer/dash and what steering-mode
 * manifests carry. */
enum cfg_steering_existing { CFG_STEERING_REPLACE = 0, CFG_STEERING_KEEP };

#define CFG_STEERING_MAX_CLONES 16
#define CFG_STEERING_MAX_CLONE_PARAMS 8

/* A PATHWAY-CLONES entry: pathway id cloned from base_id (a CDN id or an earlier clone) with
 * URI-REPLACEMENT HOST (may be NULL) and PARAMS. Listed in PATHWAY-PRIORITY right after its
 * base. */
struct cfg_steering_clone {
    char *id;      /* [a-z0-9-]{1,32}, not a CDN id, unique */
    char *base_id; /* a CDN id or the id of an earlier clone */
    char *host;    /* NULL: no HOST replacement */
    char **param_names;
    char **param_values;
    size_t nparams;
};

struct cfg_steering {
    uint32_t ttl_s;        /* 1..86400, default 30: TTL answered */
    uint32_t ttl_min_s;    /* 1..86400, default 5: TTL clamp */
    uint32_t ttl_max_s;    /* 1..86400, default 300, >= ttl_min_s */
    uint32_t state_ttl_s;  /* 60..604800, default 86400: validity of the signed RELOAD-URI state */
    uint32_t clock_skew_s; /* 0..3600, default 30 */
    bool query_before_start;                 /* DASH @queryBeforeStart, default false */
    enum cfg_steering_existing existing_tag; /* origin manifest already steered: default replace */
    char *key_file; /* NULL: no signed state (RELOAD-URI carries the session hash only) */
    struct steering_keyring *keyring; /* owned; built from key_file, NULL without one */
    struct cfg_steering_clone *clones;
    size_t nclones;
};

struct cfg_admin {
    char *listen; /* "host:port", default "127.0.0.1:8081" */
    char *token;  /* NULL: no auth */
};

struct cfg {
    char *path; /* the file it was loaded from ("<string>" for cfg_load_string) */

    char **listen; /* "host:port" / "[v6]:port", validated, as written; default "127.0.0.1:8080" */
    size_t nlisten;
    uint32_t workers; /* 1..64; 0 in the file means one per online CPU (resolved by main) */
    struct cfg_admin admin;

    struct netaddr_cidr *trusted_proxies;
    size_t ntrusted_proxies;

    /* Internal ranges (netaddr_is_internal) steerd may still use: every URL it connects to or
     * sends players to (origin.base_url, cdns[].base_url, cdns[].probe.url) whose host is an
     * internal IP literal must be covered, and probes and origin fetches refuse a resolved
     * internal address outside them. At most CFG_MAX_ALLOW_TARGETS; default none. */
    struct netaddr_cidr *allow_targets;
    size_t nallow_targets;

    char *origin_base_url; /* NULL when absent (manifest requests then get 502) */
    struct cfg_origin origin;
    struct cfg_manifest manifest;

    char *geoip_country_db; /* NULL when absent; not opened here (geo does) */
    char *geoip_asn_db;     /* NULL when absent */

    struct cfg_region *regions; /* the listed regions in order, then the implicit default if any */
    size_t nregions;
    uint32_t default_region; /* index into regions */

    struct cfg_cdn *cdns;
    size_t ncdns;

    struct cfg_rule *rules; /* [nregions]: each region's rule, resolved (a copy of default) */
    enum cfg_manifest_mode manifest_mode;
    struct cfg_path_rule *path_rules; /* first match wins */
    size_t npath_rules;
    bool region_modes; /* some region has its own manifest_mode */
    struct cfg_score score;
    struct cfg_observe observe;
    struct cfg_traffic traffic;
    double decision_log_sample; /* "policy.decision_log_sample" 0..1, default 0: the share of
                                   decisions logged as one line with the reason */

    struct cfg_http http;
    struct cfg_steering steering;
    struct cfg_beacon beacon;

    char *log_level; /* "err|warn|notice|info|debug", default "info" */
    char *log_file;  /* NULL: stderr */
};

/* Loads and validates path (at most CFG_MAX_FILE_BYTES; JSON duplicate keys are errors).
 * Returns a new cfg the caller frees, or NULL with every problem added to d. */
struct cfg *cfg_load(const char *path, struct diag *d);
/* The same from memory; name is used in syntax error lines. */
struct cfg *cfg_load_string(const char *text, size_t len, const char *name, struct diag *d);
void cfg_free(struct cfg *c);

/* Reads a steering key file: {"current_kid": N, "keys": [{"kid": 1..255, "key_hex": "<32..128
 * hex digits>"}, ...]} (up to 8 keys). The file must not be group- or world-readable. Returns a
 * new keyring the caller frees (steering_keyring_free), or NULL with the problems in d (they
 * never quote key material). */
struct steering_keyring *cfg_load_steering_keys(const char *path, struct diag *d);
/* The same from len bytes of text (name labels the problems). text is not modified; the caller
 * scrubs its own copy. */
struct steering_keyring *cfg_parse_steering_keys(const char *text, size_t len, const char *name,
                                                 struct diag *d);

/* Index of the CDN / region with that id / name, or -1. */
long cfg_cdn_index(const struct cfg *c, const char *id);
long cfg_region_index(const struct cfg *c, const char *name);

/* How a manifest at the canonical path (len bytes) is answered for a viewer in region (an index,
 * or UINT32_MAX when unknown: region rules are then skipped): the first policy.paths[] prefix
 * that matches, else the region's manifest_mode, else policy.manifest_mode. */
enum cfg_manifest_mode cfg_manifest_mode_for(const struct cfg *c, const char *path, size_t len,
                                             uint32_t region);

/* Splits "host:port" or "[v6]:port" into host (brackets removed) and port (0..65535); the host
 * must be an IP literal (brackets for IPv6 only). host and port may be NULL to only validate.
 * Returns 0, or -1 when s is malformed or host does not fit in hostsz. */
int cfg_split_hostport(const char *s, char *host, size_t hostsz, uint16_t *port);

#endif
