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

struct cfg_probe {
    char *url;                      /* NULL: no probe, the CDN is always considered up */
    uint32_t interval_ms;           /* 100..3600000, default 2000 */
    uint32_t timeout_ms;            /* 50..60000, default 1000 */
    uint32_t rise;                  /* 1..100, default 2: successes to come back up */
    uint32_t fall;                  /* 1..100, default 2: failures to go down */
    uint32_t max_body_bytes;        /* 1..67108864, default 1048576: larger body = failure */
    uint32_t low_speed_bytes_per_s; /* 0..1e9, default 1024 (0 = off) */
    uint32_t low_speed_time_ms;     /* 1000..600000, default 2000 */
};

struct cfg_cdn {
    char *id;       /* [a-z0-9-]{1,32} */
    char *base_url; /* scheme://host[:port][/prefix], no trailing '/', no query or fragment */
    size_t base_url_len;
    struct cfg_probe probe;
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
};

struct cfg_http {
    char *cors_allow_origin;         /* default "*" */
    char *redirect_cache_control;    /* default "no-store" */
    uint32_t max_request_line_bytes; /* 256..65536, default 8192 (414 past it) */
    uint32_t max_header_bytes;       /* 1024..262144, default 16384 (431 past it) */
    uint32_t max_headers;            /* 8..100, default 64 (431 past it) */
    uint32_t header_timeout_ms;      /* 100..600000, default 10000 (408) */
    uint32_t keepalive_timeout_ms;   /* 0..3600000, default 60000 */
    uint32_t write_timeout_ms;       /* 100..600000, default 30000 */
    uint32_t max_connections;        /* per worker, 1..1000000, default 10000 */
    uint32_t shutdown_grace_ms;      /* 0..600000, default 5000 */
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

    struct cfg_http http;
    struct cfg_steering steering;

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

/* Index of the CDN / region with that id / name, or -1. */
long cfg_cdn_index(const struct cfg *c, const char *id);
long cfg_region_index(const struct cfg *c, const char *name);

/* Splits "host:port" or "[v6]:port" into host (brackets removed) and port (0..65535); the host
 * must be an IP literal (brackets for IPv6 only). host and port may be NULL to only validate.
 * Returns 0, or -1 when s is malformed or host does not fit in hostsz. */
int cfg_split_hostport(const char *s, char *host, size_t hostsz, uint16_t *port);

#endif
