#include "steerd/cfg.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "steerd/diag.h"
#include "steerd/netaddr.h"
#include "steerd/steering.h"
#include "steerd/util.h"

#define JPATH_MAX 512
#define MSG_MAX 512
#define DEFAULT_LISTEN "127.0.0.1:8080"
#define DEFAULT_REGION "world"
#define REGION_NAME_MAX 64
#define TOKEN_MIN 16
#define TOKEN_MAX 256
#define HEADER_VALUE_MAX 256
#define FILE_PATH_MAX 4096
#define WEIGHT_MAX 1000
#define DNS_NAME_MAX 253
#define DNS_LABEL_MAX 63
#define HOSTPORT_MSG "must be \"IP:port\" or \"[IPv6]:port\" with an IP literal and a port 0..65535"

/* One load: where problems go and how many there were (d may already hold other lines). */
struct ctx {
    struct diag *d;
    size_t nerr;
};

/* Field descriptors (Redis style): the table drives unknown-key checks, defaults and the
 * scalar fields. FT_OTHER names a key handled by dedicated code. */
enum ftype { FT_U32, FT_U64, FT_BOOL, FT_STR, FT_STR_NULL, FT_DBL, FT_OTHER };

/* Returns NULL when s is acceptable, or a short reason. */
typedef const char *(*check_fn)(const char *s);

struct field {
    const char *name;
    enum ftype type;
    size_t off;
    uint64_t min, max, def;  /* FT_BOOL: def only (0 or 1) */
    double dmin, dmax, ddef; /* FT_DBL: any JSON number in [dmin, dmax] */
    const char *sdef;        /* FT_STR default, NULL = none */
    check_fn check;
    bool required;
};

#define F_U32(nm, st, mb, lo, hi, dflt)                                                            \
    {                                                                                              \
        .name = nm, .type = FT_U32, .off = offsetof(st, mb), .min = lo, .max = hi, .def = dflt     \
    }
#define F_U64(nm, st, mb, lo, hi, dflt)                                                            \
    {                                                                                              \
        .name = nm, .type = FT_U64, .off = offsetof(st, mb), .min = lo, .max = hi, .def = dflt     \
    }
#define F_BOOL(nm, st, mb, dflt)                                                                   \
    {                                                                                              \
        .name = nm, .type = FT_BOOL, .off = offsetof(st, mb), .def = dflt                          \
    }
#define F_STR(nm, st, mb, dflt, fn, req)                                                           \
    {                                                                                              \
        .name = nm, .type = FT_STR, .off = offsetof(st, mb), .sdef = dflt, .check = fn,            \
        .required = req                                                                            \
    }
#define F_STR_NULL(nm, st, mb, fn)                                                                 \
    {                                                                                              \
        .name = nm, .type = FT_STR_NULL, .off = offsetof(st, mb), .check = fn                      \
    }
#define F_DBL(nm, st, mb, lo, hi, dflt)                                                            \
    {                                                                                              \
        .name = nm, .type = FT_DBL, .off = offsetof(st, mb), .dmin = lo, .dmax = hi, .ddef = dflt  \
    }
#define F_OTHER(nm, req)                                                                           \
    {                                                                                              \
        .name = nm, .type = FT_OTHER, .required = req                                              \
    }

static const char *check_hostport(const char *s);
static const char *check_token(const char *s);
static const char *check_base_url(const char *s);
static const char *check_probe_url(const char *s);
static const char *check_path(const char *s);
static const char *check_level(const char *s);
static const char *check_cors(const char *s);
static const char *check_cache_control(const char *s);
static const char *check_cdn_id(const char *s);
static const char *check_region_name(const char *s);

static const struct field top_fields[] = {
    F_OTHER("listen", false),   F_U32("workers", struct cfg, workers, 0, 64, 0),
    F_OTHER("admin", false),    F_OTHER("trusted_proxies", false),
    F_OTHER("origin", false),   F_OTHER("geoip", false),
    F_OTHER("regions", false),  F_OTHER("default_region", false),
    F_OTHER("cdns", true),      F_OTHER("policy", false),
    F_OTHER("http", false),     F_OTHER("log", false),
    F_OTHER("manifest", false), F_OTHER("steering", false),
    F_OTHER("beacon", false),   F_OTHER("allow_targets", false),
};

static const struct field admin_fields[] = {
    F_STR("listen", struct cfg_admin, listen, "127.0.0.1:8081", check_hostport, false),
    F_STR_NULL("token", struct cfg_admin, token, check_token),
};

static const struct field origin_fields[] = {
    F_STR("base_url", struct cfg, origin_base_url, NULL, check_base_url, true),
    F_U32("timeout_ms", struct cfg, origin.timeout_ms, 100, 60000, 5000),
    F_U32("connect_timeout_ms", struct cfg, origin.connect_timeout_ms, 100, 60000, 2000),
    F_U32("max_manifest_bytes", struct cfg, origin.max_manifest_bytes, 1024, 67108864, 8388608),
};

static const struct field manifest_fields[] = {
    F_U32("vod_ttl_s", struct cfg_manifest, vod_ttl_s, 0, 86400, 300),
    F_U32("live_ttl_min_ms", struct cfg_manifest, live_ttl_min_ms, 100, 60000, 1000),
    F_U32("error_ttl_ms", struct cfg_manifest, error_ttl_ms, 0, 60000, 1000),
    F_U32("cache_max_entries", struct cfg_manifest, cache_max_entries, 1, 1000000, 10000),
    F_U64("cache_max_bytes", struct cfg_manifest, cache_max_bytes, 1048576, 4294967296ULL,
          268435456),
    F_BOOL("redundant_streams", struct cfg_manifest, redundant_streams, 1),
    F_STR_NULL("public_base_url", struct cfg_manifest, public_base_url, check_base_url),
};

static const struct field steering_fields[] = {
    F_U32("ttl_s", struct cfg_steering, ttl_s, 1, 86400, 30),
    F_U32("ttl_min_s", struct cfg_steering, ttl_min_s, 1, 86400, 5),
    F_U32("ttl_max_s", struct cfg_steering, ttl_max_s, 1, 86400, 300),
    F_U32("state_ttl_s", struct cfg_steering, state_ttl_s, 60, 604800, 86400),
    F_U32("clock_skew_s", struct cfg_steering, clock_skew_s, 0, 3600, 30),
    F_BOOL("query_before_start", struct cfg_steering, query_before_start, 0),
    F_OTHER("existing_tag", false),
    F_STR_NULL("key_file", struct cfg_steering, key_file, check_path),
    F_OTHER("clones", false),
};

static const struct field clone_fields[] = {
    F_STR("id", struct cfg_steering_clone, id, NULL, check_cdn_id, true),
    F_STR("base_id", struct cfg_steering_clone, base_id, NULL, check_cdn_id, true),
    F_STR_NULL("host", struct cfg_steering_clone, host, NULL),
    F_OTHER("params", false),
};

static const struct field geoip_fields[] = {
    F_STR_NULL("country_db", struct cfg, geoip_country_db, check_path),
    F_STR_NULL("asn_db", struct cfg, geoip_asn_db, check_path),
};

static const struct field log_fields[] = {
    F_STR("level", struct cfg, log_level, "info", check_level, false),
    F_STR_NULL("file", struct cfg, log_file, check_path),
};

static const struct field http_fields[] = {
    F_STR("cors_allow_origin", struct cfg_http, cors_allow_origin, "*", check_cors, false),
    F_STR("redirect_cache_control", struct cfg_http, redirect_cache_control, "no-store",
          check_cache_control, false),
    F_U32("max_request_line_bytes", struct cfg_http, max_request_line_bytes, 256, 65536, 8192),
    F_U32("max_header_bytes", struct cfg_http, max_header_bytes, 1024, 262144, 16384),
    F_U32("max_headers", struct cfg_http, max_headers, 8, 100, 64),
    F_U32("max_header_line", struct cfg_http, max_header_line, 256, 262144, 8192),
    F_U32("header_timeout_ms", struct cfg_http, header_timeout_ms, 100, 600000, 10000),
    F_U32("keepalive_timeout_ms", struct cfg_http, keepalive_timeout_ms, 0, 3600000, 60000),
    F_U32("write_timeout_ms", struct cfg_http, write_timeout_ms, 100, 600000, 30000),
    F_U32("max_connections", struct cfg_http, max_connections, 1, 1000000, 10000),
    F_U32("shutdown_grace_ms", struct cfg_http, shutdown_grace_ms, 0, 600000, 5000),
    F_U32("max_body_bytes", struct cfg_http, max_body_bytes, 0, 1048576, 65536),
    F_U32("body_timeout_ms", struct cfg_http, body_timeout_ms, 100, 600000, 10000),
    F_U32("overload_lag_ms", struct cfg_http, overload_lag_ms, 1, 60000, 50),
    F_U32("overload_conn_percent", struct cfg_http, overload_conn_percent, 1, 100, 80),
    F_U32("overload_recover_ms", struct cfg_http, overload_recover_ms, 0, 600000, 2000),
};

static const struct field beacon_fields[] = {
    F_U32("rate_per_s", struct cfg_beacon, rate_per_s, 1, 1000000, 50),
    F_U32("burst", struct cfg_beacon, burst, 1, 1000000, 100),
    F_U32("max_sources", struct cfg_beacon, max_sources, 8, 10000000, 65536),
    F_U32("queue_per_worker", struct cfg_beacon, queue_per_worker, 64, 1048576, 65536),
};

static const struct field probe_fields[] = {
    F_STR("url", struct cfg_probe, url, NULL, check_probe_url, true),
    F_U32("interval_ms", struct cfg_probe, interval_ms, 100, 3600000, 2000),
    F_U32("timeout_ms", struct cfg_probe, timeout_ms, 50, 60000, 1000),
    F_U32("rise", struct cfg_probe, rise, 1, 100, 2),
    F_U32("fall", struct cfg_probe, fall, 1, 100, 2),
    F_U32("max_body_bytes", struct cfg_probe, max_body_bytes, 1, 67108864, 1048576),
    F_U32("low_speed_bytes_per_s", struct cfg_probe, low_speed_bytes_per_s, 0, 1000000000, 1024),
    F_U32("low_speed_time_ms", struct cfg_probe, low_speed_time_ms, 1000, 600000, 2000),
    F_OTHER("regions", false),
};

static const struct field cdn_fields[] = {
    F_STR("id", struct cfg_cdn, id, NULL, check_cdn_id, true),
    F_STR("base_url", struct cfg_cdn, base_url, NULL, check_base_url, true),
    F_OTHER("probe", false),
    F_OTHER("cost", false),
};

static const struct field region_fields[] = {
    F_STR("name", struct cfg_region, name, NULL, check_region_name, true),
    F_OTHER("countries", false),
    F_OTHER("asns", false),
    F_OTHER("cidrs", false),
};

static const struct field policy_fields[] = {
    F_OTHER("default", false),
    F_OTHER("regions", false),
    F_OTHER("manifest_mode", false),
    F_OTHER("paths", false),
    F_OTHER("score", false),
    F_OTHER("observe", false),
    F_OTHER("traffic", false),
    F_DBL("decision_log_sample", struct cfg, decision_log_sample, 0, 1, 0),
};

static const struct field score_fields[] = {
    F_DBL("w_throughput", struct cfg_score, w_throughput, 0, 100, 1),
    F_DBL("w_rebuffer", struct cfg_score, w_rebuffer, 0, 100, 2),
    F_DBL("w_latency", struct cfg_score, w_latency, 0, 100, 1),
    F_DBL("w_availability", struct cfg_score, w_availability, 0, 100, 2),
    F_DBL("cost_weight", struct cfg_score, cost_weight, 0, 1, 0.5),
    F_DBL("quality_bar", struct cfg_score, quality_bar, 0, 1, 0.9),
    F_DBL("hysteresis", struct cfg_score, hysteresis, 0, 1, 0.05),
    F_DBL("max_shift", struct cfg_score, max_shift, 0.001, 1, 0.2),
    F_DBL("exploration", struct cfg_score, exploration, 0, 0.5, 0.02),
    F_U32("interval_ms", struct cfg_score, interval_ms, 100, 3600000, 60000),
    F_DBL("latency_good_ms", struct cfg_score, latency_good_ms, 0, 60000, 50),
    F_DBL("latency_bad_ms", struct cfg_score, latency_bad_ms, 1, 60000, 1000),
    F_DBL("spill_at", struct cfg_score, spill_at, 0.01, 1, 0.9),
    F_U32("flap_half_life_ms", struct cfg_score, flap_half_life_ms, 0, 86400000, 900000),
    F_DBL("flap_suppress", struct cfg_score, flap_suppress, 0.1, 100, 1.5),
    F_DBL("flap_reuse", struct cfg_score, flap_reuse, 0.001, 100, 0.75),
    F_DBL("probe_tp_target_bps", struct cfg_score, probe_tp_target_bps, 0, 1e12, 0),
};

static const struct field observe_fields[] = {
    F_U32("probe_half_life_ms", struct cfg_observe, probe_half_life_ms, 100, 86400000, 60000),
    F_U32("beacon_half_life_ms", struct cfg_observe, beacon_half_life_ms, 100, 86400000, 300000),
    F_U32("beacon_window_ms", struct cfg_observe, beacon_window_ms, 0, 86400000, 60000),
    F_DBL("beacon_max_step", struct cfg_observe, beacon_max_step, 0, 1, 0.2),
    F_DBL("tp_target_bps", struct cfg_observe, tp_target_bps, 1, 1e12, 5e6),
    F_DBL("starvation_bad", struct cfg_observe, starvation_bad, 0.001, 1, 0.1),
    F_DBL("error_bad", struct cfg_observe, error_bad, 0.001, 1, 0.1),
};

static const struct field traffic_fields[] = {
    F_DBL("bitrate_bps", struct cfg_traffic, bitrate_bps, 1000, 1e10, 3e6),
    F_U32("session_s", struct cfg_traffic, session_s, 1, 86400, 300),
};

static const struct field cost_fields[] = {
    F_OTHER("tiers", false),
    F_OTHER("commit", false),
    F_DBL("capacity_gbps", struct cfg_cost, capacity_gbps, 0, 1e6, 0),
    F_DBL("month_used_gb", struct cfg_cost, month_used_gb, 0, 1e12, -1),
};

static const struct field commit_fields[] = {
    F_OTHER("type", true),
    F_DBL("amount", struct cfg_cost, commit_amount, 1e-9, 1e12, 0),
    F_DBL("fee", struct cfg_cost, commit_fee, 0, 1e12, 0),
    F_DBL("burst_price", struct cfg_cost, burst_price, -1, 1e6, -1),
};

/* Tiers are loaded into scratch slots first (one tier at a time). */
struct tier {
    double up_to_gb, price_per_gb;
};

static const struct field tier_fields[] = {
    F_DBL("up_to_gb", struct tier, up_to_gb, 0, 1e12, -1),
    F_DBL("price_per_gb", struct tier, price_per_gb, 0, 1e6, 0),
};

static const struct field rule_fields[] = {
    F_OTHER("cdns", false),
    F_OTHER("failover", false),
    F_OTHER("manifest_mode", false),
};

static const struct field path_rule_fields[] = {
    F_OTHER("prefix", true),
    F_OTHER("manifest_mode", true),
};

static const char *const log_levels[] = {"err", "warn", "notice", "info", "debug"};
static const char *const manifest_modes[] = {"rewrite", "steering", "redirect"};

/* ---- problems and JSON paths ---- */

static void fail(struct ctx *x, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
fail(struct ctx *x, const char *path, const char *fmt, ...)
{
    char msg[MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    diag_add(x->d, "%s: %s", path, msg);
    x->nerr++;
}

/* Appends s to the JSON path in out (JPATH_MAX bytes), truncating when it is too long. */
static void
jcat(char *out, const char *s)
{
    size_t have = strlen(out), add = strlen(s);
    if (add > JPATH_MAX - 1 - have)
        add = JPATH_MAX - 1 - have;
    memcpy(out + have, s, add);
    out[have + add] = '\0';
}

/* out = base.key (or key at the top level); returns out. */
static const char *
jkey(char *out, const char *base, const char *key)
{
    out[0] = '\0';
    jcat(out, base);
    if (base[0] != '\0')
        jcat(out, ".");
    jcat(out, key);
    return out;
}

/* out = base[i]; returns out. */
static const char *
jidx(char *out, const char *base, size_t i)
{
    char num[32];
    size_t n = sizeof(num) - 1;
    num[n] = '\0';
    num[--n] = ']';
    do {
        num[--n] = (char)('0' + i % 10);
        i /= 10;
    } while (i > 0);
    num[--n] = '[';
    out[0] = '\0';
    jcat(out, base);
    jcat(out, num + n);
    return out;
}

/* ---- string rules ---- */

static bool
is_alnum(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool
is_hex(int c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int
hex_val(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return c - 'A' + 10;
}

static const char *
check_hostport(const char *s)
{
    if (cfg_split_hostport(s, NULL, 0, NULL) != 0)
        return HOSTPORT_MSG;
    return NULL;
}

static const char *
check_token(const char *s)
{
    size_t n = strlen(s);
    if (n < TOKEN_MIN || n > TOKEN_MAX)
        return "must be 16..256 printable ASCII characters without spaces";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x21 || c > 0x7e)
            return "must be 16..256 printable ASCII characters without spaces";
    }
    return NULL;
}

static const char *
check_path(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > FILE_PATH_MAX)
        return "must be a non-empty path of at most 4096 bytes";
    return NULL;
}

static const char *
check_level(const char *s)
{
    for (size_t i = 0; i < UTIL_ARRAY_LEN(log_levels); i++) {
        if (strcmp(s, log_levels[i]) == 0)
            return NULL;
    }
    return "must be one of err, warn, notice, info, debug";
}

static const char *
check_cors(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > CFG_URL_MAX)
        return "must be \"*\" or an origin of 1..1024 printable ASCII characters";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x21 || c > 0x7e || c == '"' || c == '\'')
            return "must be \"*\" or an origin of printable ASCII without spaces or quotes";
    }
    return NULL;
}

static const char *
check_cache_control(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > HEADER_VALUE_MAX)
        return "must be 1..256 printable ASCII characters";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c > 0x7e)
            return "must be printable ASCII (no control characters)";
    }
    return NULL;
}

static const char *
check_cdn_id(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > CFG_ID_MAX)
        return "must match [a-z0-9-]{1,32}";
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return "must match [a-z0-9-]{1,32}";
    }
    return NULL;
}

static const char *
check_region_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > REGION_NAME_MAX)
        return "must match [A-Za-z0-9_.-]{1,64}";
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!(is_alnum(c) || c == '_' || c == '.' || c == '-'))
            return "must match [A-Za-z0-9_.-]{1,64}";
    }
    return NULL;
}

/* ---- URLs ---- */

/* RFC 3986 pchar without the quote sub-delim; '%' is checked by the caller. */
static bool
is_pchar(int c)
{
    return is_alnum(c) || strchr("-._~!$&()*+,;=:@", c) != NULL;
}

/* Checks the path or query bytes [s, s+n): safe characters and %xx escapes that do not encode
 * control bytes. extra lists the characters allowed beyond pchar. */
static const char *
chars_problem(const char *s, size_t n, const char *extra)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= n || !is_hex(s[i + 1]) || !is_hex(s[i + 2]))
                return "has a bad %-escape";
            int v = hex_val(s[i + 1]) * 16 + hex_val(s[i + 2]);
            if (v < 0x20 || v == 0x7f)
                return "must not encode control bytes";
            i += 2;
        } else if (c == 0 || !(is_pchar(c) || strchr(extra, c) != NULL)) {
            return "has a character not allowed in a URL path or query";
        }
    }
    return NULL;
}

static bool
is_dot_segment(const char *s, size_t n)
{
    static const char *const dots[] = {".", "..", "%2e", ".%2e", "%2e.", "%2e%2e"};
    for (size_t i = 0; i < UTIL_ARRAY_LEN(dots); i++) {
        if (strlen(dots[i]) == n && strncasecmp(s, dots[i], n) == 0)
            return true;
    }
    return false;
}

static const char *
path_problem(const char *s, size_t n)
{
    const char *why = chars_problem(s, n, "/");
    if (why != NULL)
        return why;
    size_t i = 0;
    while (i < n) {
        size_t j = i + 1; /* s[i] is '/' */
        while (j < n && s[j] != '/')
            j++;
        if (is_dot_segment(s + i + 1, j - i - 1))
            return "path must not contain . or .. segments";
        i = j;
    }
    return NULL;
}

/* A DNS name of [A-Za-z0-9-] labels, or a dotted-quad IPv4 address when it looks numeric
 * (so "127.1", "2130706433" and "0x7f.0.0.1" are not taken for names). */
static const char *
host_problem(const char *h, size_t n)
{
    if (n > DNS_NAME_MAX)
        return "host name is too long";
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && h[i] != '.') {
            if (!is_alnum(h[i]) && h[i] != '-')
                return "host must be an IP literal or a DNS name";
            continue;
        }
        size_t len = i - start;
        if (len == 0 || len > DNS_LABEL_MAX || h[start] == '-' || h[i - 1] == '-')
            return "host must be an IP literal or a DNS name";
        start = i + 1;
    }
    /* The last label decides whether the host is meant as an IPv4 address (WHATWG URL rule). */
    const char *last = h;
    for (size_t i = 0; i < n; i++) {
        if (h[i] == '.')
            last = h + i + 1;
    }
    size_t llen = (size_t)(h + n - last);
    bool numeric = true;
    for (size_t i = 0; i < llen; i++) {
        if (last[i] < '0' || last[i] > '9')
            numeric = false;
    }
    if (llen >= 2 && last[0] == '0' && (last[1] == 'x' || last[1] == 'X'))
        numeric = true;
    struct netaddr a;
    if (numeric && (netaddr_parse(h, n, &a) != 0 || !netaddr_is_v4(&a)))
        return "host is not a valid dotted-quad IPv4 address";
    return NULL;
}

/* Length of the scheme and "://" of an http(s) URL, or 0. */
static size_t
scheme_len(const char *s)
{
    if (strncmp(s, "http://", 7) == 0)
        return 7;
    if (strncmp(s, "https://", 8) == 0)
        return 8;
    return 0;
}

static const char *
url_problem(const char *s, bool allow_query)
{
    size_t len = strlen(s);
    if (len == 0)
        return "must not be empty";
    if (len > CFG_URL_MAX)
        return "must be at most 1024 bytes";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x21 || c > 0x7e)
            return "must not contain spaces, control or non-ASCII bytes";
    }
    size_t sl = scheme_len(s);
    if (sl == 0)
        return "scheme must be http or https (lower case)";
    const char *p = s + sl;
    const char *ae = p + strcspn(p, "/?#");
    if (memchr(p, '@', (size_t)(ae - p)) != NULL)
        return "userinfo is not allowed";
    if (p == ae)
        return "host is missing";
    struct netaddr a;
    if (*p == '[') {
        const char *rb = memchr(p, ']', (size_t)(ae - p));
        size_t hl = rb ? (size_t)(rb - p - 1) : 0;
        if (rb == NULL || hl == 0 || memchr(p + 1, ':', hl) == NULL ||
            netaddr_parse(p + 1, hl, &a) != 0)
            return "host has a bad IPv6 literal";
        p = rb + 1;
    } else {
        const char *he = p + strcspn(p, ":/?#");
        if (he == p)
            return "host is missing";
        const char *why = host_problem(p, (size_t)(he - p));
        if (why != NULL)
            return why;
        p = he;
    }
    if (p < ae) {
        uint64_t port;
        size_t pl = (size_t)(ae - p - 1);
        if (*p != ':')
            return "host must be an IP literal or a DNS name";
        if (pl == 0 || pl > 5 || p[1] == '0' || util_parse_u64(p + 1, pl, 1, 65535, &port) != 0)
            return "port must be 1..65535";
        p = ae;
    }
    if (*p == '/') {
        const char *pe = p + strcspn(p, "?#");
        const char *why = path_problem(p, (size_t)(pe - p));
        if (why != NULL)
            return why;
        p = pe;
    }
    if (*p == '?') {
        if (!allow_query)
            return "query is not allowed";
        const char *qe = p + 1 + strcspn(p + 1, "#");
        const char *why = chars_problem(p + 1, (size_t)(qe - p - 1), "/?");
        if (why != NULL)
            return why;
        p = qe;
    }
    if (*p == '#')
        return "fragment is not allowed";
    return NULL;
}

static const char *
check_base_url(const char *s)
{
    return url_problem(s, false);
}

static const char *
check_probe_url(const char *s)
{
    return url_problem(s, true);
}

/* Strips the trailing '/' of a valid base URL's path; returns the new length. */
static size_t
strip_base_url(char *s)
{
    size_t len = strlen(s);
    const char *path = strchr(s + scheme_len(s), '/');
    size_t start = path ? (size_t)(path - s) : len;
    while (len > start && s[len - 1] == '/')
        s[--len] = '\0';
    return len;
}

int
cfg_split_hostport(const char *s, char *host, size_t hostsz, uint16_t *port)
{
    const char *h, *he, *p;
    struct netaddr a;
    uint64_t pv;

    if (s == NULL)
        return -1;
    if (s[0] == '[') {
        h = s + 1;
        he = strchr(h, ']');
        if (he == NULL || he[1] != ':' || memchr(h, ':', (size_t)(he - h)) == NULL)
            return -1;
        p = he + 2;
    } else {
        h = s;
        he = strchr(s, ':');
        if (he == NULL || strchr(he + 1, ':') != NULL)
            return -1;
        p = he + 1;
    }
    size_t hl = (size_t)(he - h);
    if (hl == 0 || netaddr_parse(h, hl, &a) != 0)
        return -1;
    size_t pl = strlen(p);
    if (pl == 0 || pl > 5 || (pl > 1 && p[0] == '0') || util_parse_u64(p, pl, 0, 65535, &pv) != 0)
        return -1;
    if (host != NULL) {
        if (hl >= hostsz)
            return -1;
        memcpy(host, h, hl);
        host[hl] = '\0';
    }
    if (port != NULL)
        *port = (uint16_t)pv;
    return 0;
}

/* ---- descriptor-driven fields ---- */

static void
apply_defaults(const struct field *t, size_t n, void *base)
{
    for (size_t i = 0; i < n; i++) {
        char *slot = (char *)base + t[i].off;
        if (t[i].type == FT_U32) {
            *(uint32_t *)(void *)slot = (uint32_t)t[i].def;
        } else if (t[i].type == FT_U64) {
            *(uint64_t *)(void *)slot = t[i].def;
        } else if (t[i].type == FT_BOOL) {
            *(bool *)(void *)slot = t[i].def != 0;
        } else if (t[i].type == FT_DBL) {
            *(double *)(void *)slot = t[i].ddef;
        } else if (t[i].type == FT_STR || t[i].type == FT_STR_NULL) {
            char **sp = (char **)(void *)slot;
            free(*sp);
            *sp = t[i].sdef ? xstrdup(t[i].sdef) : NULL;
        }
    }
}

static int
get_uint(struct ctx *x, json_t *v, const char *path, uint64_t min, uint64_t max, uint64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t)json_integer_value(v) < min ||
        (uint64_t)json_integer_value(v) > max) {
        fail(x, path, "must be an integer in %" PRIu64 "..%" PRIu64, min, max);
        return -1;
    }
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

static void
load_field(struct ctx *x, json_t *v, const struct field *f, void *base, const char *path)
{
    char *slot = (char *)base + f->off;
    uint64_t u;

    switch (f->type) {
    case FT_U32:
        if (get_uint(x, v, path, f->min, f->max, &u) == 0)
            *(uint32_t *)(void *)slot = (uint32_t)u;
        break;
    case FT_U64:
        if (get_uint(x, v, path, f->min, f->max, &u) == 0)
            *(uint64_t *)(void *)slot = u;
        break;
    case FT_BOOL:
        if (!json_is_boolean(v))
            fail(x, path, "must be true or false");
        else
            *(bool *)(void *)slot = json_is_true(v);
        break;
    case FT_STR_NULL:
        if (json_is_null(v)) {
            free(*(char **)(void *)slot);
            *(char **)(void *)slot = NULL;
            break;
        }
        /* fall through */
    case FT_STR: {
        if (!json_is_string(v)) {
            fail(x, path, "must be a string%s", f->type == FT_STR_NULL ? " or null" : "");
            break;
        }
        const char *s = json_string_value(v);
        const char *why = f->check ? f->check(s) : NULL;
        if (why != NULL) {
            fail(x, path, "%s", why);
            break;
        }
        free(*(char **)(void *)slot);
        *(char **)(void *)slot = xstrdup(s);
        break;
    }
    case FT_DBL:
        if (!json_is_number(v) || !isfinite(json_number_value(v)) ||
            json_number_value(v) < f->dmin || json_number_value(v) > f->dmax)
            fail(x, path, "must be a number in %g..%g", f->dmin, f->dmax);
        else
            *(double *)(void *)slot = json_number_value(v);
        break;
    case FT_OTHER:
        break;
    }
}

/* Rejects unknown keys of obj, reports missing required ones and loads the scalar fields. */
static void
load_fields(struct ctx *x, json_t *obj, const struct field *t, size_t n, void *base,
            const char *path)
{
    char p[JPATH_MAX];
    const char *key;
    json_t *v;

    json_object_foreach(obj, key, v)
    {
        size_t i = 0;
        while (i < n && strcmp(t[i].name, key) != 0)
            i++;
        if (i == n)
            fail(x, jkey(p, path, key), "unknown key");
    }
    for (size_t i = 0; i < n; i++) {
        v = json_object_get(obj, t[i].name);
        if (v == NULL) {
            if (t[i].required)
                fail(x, jkey(p, path, t[i].name), "required");
            continue;
        }
        if (t[i].type != FT_OTHER)
            load_field(x, v, &t[i], base, jkey(p, path, t[i].name));
    }
}

/* As load_fields for a value that must be an object; returns false when it is not. */
static bool
load_object(struct ctx *x, json_t *v, const struct field *t, size_t n, void *base, const char *path)
{
    if (!json_is_object(v)) {
        fail(x, path, "must be an object");
        return false;
    }
    load_fields(x, v, t, n, base, path);
    return true;
}

#define LOAD_OBJECT(x, v, tab, base, path) load_object(x, v, tab, UTIL_ARRAY_LEN(tab), base, path)

/* ---- sections with their own rules ---- */

static void
load_listen(struct ctx *x, struct cfg *c, json_t *v)
{
    if (!json_is_array(v)) {
        fail(x, "listen", "must be an array of \"host:port\" strings");
        return;
    }
    size_t n = json_array_size(v);
    if (n < 1 || n > CFG_MAX_LISTEN) {
        fail(x, "listen", "must have 1..%d entries", CFG_MAX_LISTEN);
        return;
    }
    for (size_t i = 0; i < c->nlisten; i++)
        free(c->listen[i]);
    free(c->listen);
    c->listen = xcalloc(n, sizeof(*c->listen));
    c->nlisten = n;

    struct netaddr addrs[CFG_MAX_LISTEN];
    uint16_t ports[CFG_MAX_LISTEN];
    bool ok[CFG_MAX_LISTEN];
    char p[JPATH_MAX];
    char host[NETADDR_STRLEN + 1];
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(v, i);
        ok[i] = false;
        jidx(p, "listen", i);
        if (!json_is_string(e)) {
            fail(x, p, "must be a string");
            continue;
        }
        const char *s = json_string_value(e);
        if (cfg_split_hostport(s, host, sizeof(host), &ports[i]) != 0 ||
            netaddr_parse(host, strlen(host), &addrs[i]) != 0) {
            fail(x, p, HOSTPORT_MSG);
            continue;
        }
        c->listen[i] = xstrdup(s);
        ok[i] = true;
        for (size_t j = 0; j < i; j++) {
            if (ok[j] && ports[j] == ports[i] &&
                memcmp(&addrs[j], &addrs[i], sizeof(addrs[i])) == 0) {
                fail(x, p, "duplicate of listen[%zu]", j);
                break;
            }
        }
    }
}

/* admin.listen must not be one of the player-facing addresses (port 0 excepted). */
static void
check_admin_listen(struct ctx *x, const struct cfg *c)
{
    char host[NETADDR_STRLEN + 1];
    struct netaddr a, b;
    uint16_t port, p2;

    if (c->admin.listen == NULL ||
        cfg_split_hostport(c->admin.listen, host, sizeof(host), &port) != 0 || port == 0 ||
        netaddr_parse(host, strlen(host), &a) != 0)
        return;
    for (size_t i = 0; i < c->nlisten; i++) {
        if (c->listen[i] == NULL ||
            cfg_split_hostport(c->listen[i], host, sizeof(host), &p2) != 0 ||
            netaddr_parse(host, strlen(host), &b) != 0)
            continue;
        if (p2 == port && memcmp(&a, &b, sizeof(a)) == 0) {
            fail(x, "admin.listen", "same address as listen[%zu]", i);
            return;
        }
    }
}

/* ---- targets: what steerd connects to or sends players to ---- */

/* Host (brackets removed, cut to hostsz) and port (the scheme's default when absent) of a URL
 * that url_problem accepted. */
static void
url_authority(const char *s, char *host, size_t hostsz, uint16_t *port)
{
    size_t sl = scheme_len(s);
    const char *h = s + sl, *he, *p;
    uint64_t pv;

    if (*h == '[') {
        h++;
        he = h + strcspn(h, "]");
        p = *he == ']' ? he + 1 : he;
    } else {
        he = h + strcspn(h, ":/?#");
        p = he;
    }
    size_t hl = (size_t)(he - h);
    if (hl >= hostsz)
        hl = hostsz - 1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = sl == 8 ? 443 : 80;
    if (*p == ':') {
        size_t pl = strcspn(p + 1, "/?#");
        if (util_parse_u64(p + 1, pl, 1, 65535, &pv) == 0)
            *port = (uint16_t)pv;
    }
}

static bool
is_localhost_name(const char *h)
{
    size_t n = strlen(h);
    while (n > 0 && h[n - 1] == '.')
        n--;
    return (n == 9 && strncasecmp(h, "localhost", 9) == 0) ||
           (n > 10 && strncasecmp(h + n - 10, ".localhost", 10) == 0);
}

/* True when a URL to host:port reaches the admin listener admin.listen. */
static bool
hits_admin(const struct cfg *c, const char *host, const struct netaddr *a, bool literal,
           uint16_t port)
{
    char ahost[NETADDR_STRLEN + 1];
    uint16_t aport;
    struct netaddr b;
    static const struct netaddr any6 = {{0}};
    static const struct netaddr any4 = {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0}};

    if (c->admin.listen == NULL ||
        cfg_split_hostport(c->admin.listen, ahost, sizeof(ahost), &aport) != 0 || aport == 0 ||
        aport != port || netaddr_parse(ahost, strlen(ahost), &b) != 0)
        return false;
    bool any = memcmp(&b, &any6, sizeof(b)) == 0 || memcmp(&b, &any4, sizeof(b)) == 0;
    if (!literal)
        return is_localhost_name(host) && (any || netaddr_is_internal(&b));
    if (memcmp(a, &b, sizeof(b)) == 0)
        return true;
    /* A wildcard admin listener answers on every local address; loopback ones at least. */
    return any && netaddr_is_internal(a);
}

static bool
allowed_target(const struct cfg *c, const struct netaddr *a)
{
    for (size_t i = 0; i < c->nallow_targets; i++)
        if (netaddr_in_cidr(a, &c->allow_targets[i]))
            return true;
    return false;
}

/* One URL at path: an internal IP literal host must be in allow_targets, and nothing may point
 * at the admin listener. */
static void
check_target(struct ctx *x, const struct cfg *c, const char *path, const char *url)
{
    char host[DNS_NAME_MAX + 1];
    uint16_t port;
    struct netaddr a;

    if (url == NULL)
        return;
    url_authority(url, host, sizeof(host), &port);
    bool literal = netaddr_parse(host, strlen(host), &a) == 0;
    if (hits_admin(c, host, &a, literal, port)) {
        fail(x, path,
             "points at the admin listener (admin.listen %s); steerd never fetches from "
             "or redirects to itself",
             c->admin.listen);
        return;
    }
    if (!literal || !netaddr_is_internal(&a) || allowed_target(c, &a))
        return;
    char text[NETADDR_STRLEN];
    netaddr_format(&a, text);
    fail(x, path,
         "host %s is an internal address (loopback, link-local, private or reserved); list it "
         "in allow_targets (e.g. \"%s/%d\") to let steerd use it",
         text, text, netaddr_is_v4(&a) ? 32 : 128);
}

static void
check_targets(struct ctx *x, const struct cfg *c)
{
    char p[JPATH_MAX], q[JPATH_MAX];
    check_target(x, c, "origin.base_url", c->origin_base_url);
    for (size_t i = 0; i < c->ncdns; i++) {
        jidx(p, "cdns", i);
        check_target(x, c, jkey(q, p, "base_url"), c->cdns[i].base_url);
        jidx(p, "cdns", i);
        check_target(x, c, jkey(q, p, "probe.url"), c->cdns[i].probe.url);
        for (size_t k = 0; k < c->cdns[i].probe.nregional; k++) {
            const struct cfg_probe_region *r = &c->cdns[i].probe.regional[k];
            jidx(p, "cdns", i);
            jkey(q, p, "probe.regions");
            check_target(x, c, jkey(p, q, c->regions[r->region].name), r->url);
        }
    }
}

/* Parses an array of CIDR strings into a new array; returns its length in *n. */
static struct netaddr_cidr *
load_cidrs(struct ctx *x, json_t *v, const char *path, size_t *n)
{
    char p[JPATH_MAX];
    *n = 0;
    if (!json_is_array(v)) {
        fail(x, path, "must be an array of CIDR strings");
        return NULL;
    }
    size_t len = json_array_size(v);
    struct netaddr_cidr *out = xcalloc(len, sizeof(*out));
    for (size_t i = 0; i < len; i++) {
        json_t *e = json_array_get(v, i);
        jidx(p, path, i);
        if (!json_is_string(e))
            fail(x, p, "must be a string");
        else if (netaddr_parse_cidr(json_string_value(e), &out[i]) != 0)
            fail(x, p, "must be an IPv4 or IPv6 CIDR (\"addr/len\", no host bits set)");
    }
    *n = len;
    return out;
}

static void
load_countries(struct ctx *x, struct cfg_region *r, json_t *v, const char *path)
{
    char p[JPATH_MAX];
    if (!json_is_array(v)) {
        fail(x, path, "must be an array of country codes");
        return;
    }
    size_t n = json_array_size(v);
    r->countries = xcalloc(n, sizeof(*r->countries));
    r->ncountries = n;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(v, i);
        const char *s = json_is_string(e) ? json_string_value(e) : NULL;
        if (s == NULL || strlen(s) != 2 ||
            !((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z')) ||
            !((s[1] >= 'A' && s[1] <= 'Z') || (s[1] >= 'a' && s[1] <= 'z'))) {
            fail(x, jidx(p, path, i), "must be a two-letter ISO 3166-1 country code");
            continue;
        }
        for (size_t k = 0; k < 2; k++)
            r->countries[i][k] = (char)(s[k] >= 'a' ? s[k] - 'a' + 'A' : s[k]);
        r->countries[i][2] = '\0';
    }
}

static void
load_asns(struct ctx *x, struct cfg_region *r, json_t *v, const char *path)
{
    char p[JPATH_MAX];
    uint64_t u;
    if (!json_is_array(v)) {
        fail(x, path, "must be an array of AS numbers");
        return;
    }
    size_t n = json_array_size(v);
    r->asns = xcalloc(n, sizeof(*r->asns));
    r->nasns = n;
    for (size_t i = 0; i < n; i++) {
        if (get_uint(x, json_array_get(v, i), jidx(p, path, i), 1, UINT32_MAX, &u) == 0)
            r->asns[i] = (uint32_t)u;
    }
}

static void
load_regions(struct ctx *x, struct cfg *c, json_t *v)
{
    char p[JPATH_MAX], q[JPATH_MAX];
    if (!json_is_array(v)) {
        fail(x, "regions", "must be an array of region objects");
        return;
    }
    size_t n = json_array_size(v);
    if (n > CFG_MAX_REGIONS) {
        fail(x, "regions", "must have at most %d entries", CFG_MAX_REGIONS);
        return;
    }
    c->regions = xcalloc(n, sizeof(*c->regions));
    c->nregions = n;
    for (size_t i = 0; i < n; i++) {
        struct cfg_region *r = &c->regions[i];
        json_t *e = json_array_get(v, i), *f;
        jidx(p, "regions", i);
        if (!LOAD_OBJECT(x, e, region_fields, r, p))
            continue;
        if ((f = json_object_get(e, "countries")) != NULL)
            load_countries(x, r, f, jkey(q, p, "countries"));
        if ((f = json_object_get(e, "asns")) != NULL)
            load_asns(x, r, f, jkey(q, p, "asns"));
        if ((f = json_object_get(e, "cidrs")) != NULL)
            r->cidrs = load_cidrs(x, f, jkey(q, p, "cidrs"), &r->ncidrs);
        for (size_t j = 0; r->name != NULL && j < i; j++) {
            if (c->regions[j].name != NULL && strcmp(c->regions[j].name, r->name) == 0) {
                fail(x, jkey(q, p, "name"), "duplicate region name \"%s\" (see regions[%zu])",
                     r->name, j);
                break;
            }
        }
    }
}

/* Resolves default_region to an index, appending the implicit region when it is not listed. */
static void
resolve_default_region(struct ctx *x, struct cfg *c, json_t *v)
{
    const char *name = DEFAULT_REGION;
    if (v != NULL) {
        const char *why = NULL;
        if (!json_is_string(v))
            why = "must be a string";
        else if ((why = check_region_name(json_string_value(v))) == NULL)
            name = json_string_value(v);
        if (why != NULL)
            fail(x, "default_region", "%s", why);
    }
    long idx = cfg_region_index(c, name);
    if (idx >= 0) {
        c->default_region = (uint32_t)idx;
        return;
    }
    if (c->nregions >= CFG_MAX_REGIONS)
        fail(x, "default_region", "not a listed region and regions is full (%d)", CFG_MAX_REGIONS);
    c->regions = xrealloc(c->regions, (c->nregions + 1) * sizeof(*c->regions));
    struct cfg_region *r = &c->regions[c->nregions];
    memset(r, 0, sizeof(*r));
    r->name = xstrdup(name);
    r->implicit = true;
    c->default_region = (uint32_t)c->nregions;
    c->nregions++;
}

/* "cdns[].probe.regions": region name -> probe URL measuring the CDN from there. */
static void
load_probe_regions(struct ctx *x, const struct cfg *c, json_t *v, const char *path,
                   struct cfg_probe *pr)
{
    char q[JPATH_MAX];
    const char *key;
    json_t *e;

    if (!json_is_object(v)) {
        fail(x, path, "must be an object of region name to probe URL");
        return;
    }
    if (json_object_size(v) > CFG_MAX_REGIONS + 1) {
        fail(x, path, "must have at most %d entries", CFG_MAX_REGIONS + 1);
        return;
    }
    pr->regional = xcalloc(json_object_size(v) ? json_object_size(v) : 1, sizeof(*pr->regional));
    json_object_foreach(v, key, e)
    {
        long idx = cfg_region_index(c, key);
        jkey(q, path, key);
        if (idx < 0) {
            fail(x, q, "unknown region");
            continue;
        }
        const char *why = json_is_string(e) ? check_probe_url(json_string_value(e)) : NULL;
        if (!json_is_string(e) || why != NULL) {
            fail(x, q, "%s", why ? why : "must be a probe URL string");
            continue;
        }
        pr->regional[pr->nregional].region = (uint32_t)idx;
        pr->regional[pr->nregional].url = xstrdup(json_string_value(e));
        pr->nregional++;
    }
}

static void
load_tiers(struct ctx *x, json_t *v, const char *path, struct cfg_cost *cost)
{
    char q[JPATH_MAX];
    size_t n = json_is_array(v) ? json_array_size(v) : 0;
    if (!json_is_array(v) || n < 1 || n > CFG_MAX_COST_TIERS) {
        fail(x, path, "must be an array of 1..%d tier objects", CFG_MAX_COST_TIERS);
        return;
    }
    for (size_t t = 0; t < n; t++) {
        struct tier tier;
        apply_defaults(tier_fields, UTIL_ARRAY_LEN(tier_fields), &tier);
        jidx(q, path, t);
        if (!LOAD_OBJECT(x, json_array_get(v, t), tier_fields, &tier, q))
            continue;
        char r[JPATH_MAX];
        if (json_object_get(json_array_get(v, t), "price_per_gb") == NULL)
            fail(x, jkey(r, q, "price_per_gb"), "required");
        if (tier.up_to_gb < 0) {
            /* only the last tier may leave its bound open: it applies beyond it anyway */
            if (t + 1 < n)
                fail(x, jkey(r, q, "up_to_gb"), "required except in the last tier");
            tier.up_to_gb = t > 0 ? cost->tier_up_to_gb[t - 1] : 0;
        } else if (t > 0 && tier.up_to_gb <= cost->tier_up_to_gb[t - 1]) {
            fail(x, jkey(r, q, "up_to_gb"), "must be above the previous tier's");
        }
        cost->tier_up_to_gb[t] = tier.up_to_gb;
        cost->tier_price_per_gb[t] = tier.price_per_gb;
    }
    cost->ntiers = n;
}

static void
load_commit(struct ctx *x, json_t *v, const char *path, struct cfg_cost *cost)
{
    char q[JPATH_MAX];
    if (!LOAD_OBJECT(x, v, commit_fields, cost, path))
        return;
    json_t *t = json_object_get(v, "type");
    if (t != NULL && json_is_string(t) && strcmp(json_string_value(t), "p95_gbps") == 0)
        cost->commit = CFG_COMMIT_P95_GBPS;
    else if (t != NULL && json_is_string(t) && strcmp(json_string_value(t), "gb_month") == 0)
        cost->commit = CFG_COMMIT_GB;
    else if (t != NULL)
        fail(x, jkey(q, path, "type"), "must be \"p95_gbps\" or \"gb_month\"");
    if (json_object_get(v, "amount") == NULL)
        fail(x, jkey(q, path, "amount"), "required");
    if (cost->commit == CFG_COMMIT_P95_GBPS && cost->burst_price < 0)
        fail(x, jkey(q, path, "burst_price"),
             "required (>= 0, per Gbps of 95th percentile above the commit) with p95_gbps");
}

/* "cdns[].cost": tiers, commit, capacity and the month's usage so far. */
static void
load_cost(struct ctx *x, json_t *v, const char *path, struct cfg_cost *cost)
{
    char q[JPATH_MAX];
    json_t *e;
    if (!LOAD_OBJECT(x, v, cost_fields, cost, path))
        return;
    cost->priced = true;
    if ((e = json_object_get(v, "tiers")) != NULL)
        load_tiers(x, e, jkey(q, path, "tiers"), cost);
    if ((e = json_object_get(v, "commit")) != NULL && !json_is_null(e))
        load_commit(x, e, jkey(q, path, "commit"), cost);
}

static void
load_cdns(struct ctx *x, struct cfg *c, json_t *v)
{
    char p[JPATH_MAX], q[JPATH_MAX];
    if (v == NULL)
        return; /* reported as required */
    if (!json_is_array(v)) {
        fail(x, "cdns", "must be an array of CDN objects");
        return;
    }
    size_t n = json_array_size(v);
    if (n < 1 || n > CFG_MAX_CDNS) {
        fail(x, "cdns", "must have 1..%d entries", CFG_MAX_CDNS);
        return;
    }
    c->cdns = xcalloc(n, sizeof(*c->cdns));
    c->ncdns = n;
    for (size_t i = 0; i < n; i++) {
        struct cfg_cdn *cdn = &c->cdns[i];
        json_t *e = json_array_get(v, i), *pr;
        apply_defaults(probe_fields, UTIL_ARRAY_LEN(probe_fields), &cdn->probe);
        apply_defaults(cost_fields, UTIL_ARRAY_LEN(cost_fields), &cdn->cost);
        apply_defaults(commit_fields, UTIL_ARRAY_LEN(commit_fields), &cdn->cost);
        jidx(p, "cdns", i);
        if (!LOAD_OBJECT(x, e, cdn_fields, cdn, p))
            continue;
        if (cdn->base_url != NULL)
            cdn->base_url_len = strip_base_url(cdn->base_url);
        pr = json_object_get(e, "probe");
        if (pr != NULL && !json_is_null(pr)) {
            if (!json_is_object(pr))
                fail(x, jkey(q, p, "probe"), "must be an object or null");
            else
                load_fields(x, pr, probe_fields, UTIL_ARRAY_LEN(probe_fields), &cdn->probe,
                            jkey(q, p, "probe"));
            json_t *rg = json_is_object(pr) ? json_object_get(pr, "regions") : NULL;
            if (rg != NULL) {
                char r[JPATH_MAX];
                load_probe_regions(x, c, rg, jkey(r, jkey(q, p, "probe"), "regions"), &cdn->probe);
            }
        }
        json_t *co = json_object_get(e, "cost");
        if (co != NULL && !json_is_null(co))
            load_cost(x, co, jkey(q, p, "cost"), &cdn->cost);
        for (size_t j = 0; cdn->id != NULL && j < i; j++) {
            if (c->cdns[j].id != NULL && strcmp(c->cdns[j].id, cdn->id) == 0) {
                fail(x, jkey(q, p, "id"), "duplicate CDN id \"%s\" (see cdns[%zu])", cdn->id, j);
                break;
            }
        }
    }
}

static void
rule_copy(struct cfg_rule *dst, const struct cfg_rule *src, size_t ncdns)
{
    dst->weights = xcalloc(ncdns, sizeof(*dst->weights));
    if (ncdns > 0)
        memcpy(dst->weights, src->weights, ncdns * sizeof(*dst->weights));
    dst->nfailover = src->nfailover;
    dst->failover = xcalloc(src->nfailover, sizeof(*dst->failover));
    if (src->nfailover > 0)
        memcpy(dst->failover, src->failover, src->nfailover * sizeof(*dst->failover));
    dst->manifest_mode = src->manifest_mode;
}

/* v names a manifest mode: 0 and *out set, or -1 with the problem at path. */
static int
load_manifest_mode(struct ctx *x, json_t *v, const char *path, enum cfg_manifest_mode *out)
{
    size_t i = 0;
    while (json_is_string(v) && i < UTIL_ARRAY_LEN(manifest_modes) &&
           strcmp(json_string_value(v), manifest_modes[i]) != 0)
        i++;
    if (!json_is_string(v) || i == UTIL_ARRAY_LEN(manifest_modes)) {
        fail(x, path, "must be \"rewrite\", \"steering\" or \"redirect\"");
        return -1;
    }
    *out = (enum cfg_manifest_mode)i;
    return 0;
}

/* A path prefix as the router sees paths: '/' first, then printable ASCII without '?', '#',
 * '%', '\\', "//" or a "." / ".." segment (canonical paths never hold them). */
static bool
valid_path_prefix(const char *s, size_t n)
{
    if (n == 0 || n > 1024 || s[0] != '/')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch <= 0x20 || ch >= 0x7f || ch == '?' || ch == '#' || ch == '%' || ch == '\\')
            return false;
        if (ch == '/' && i + 1 < n && s[i + 1] == '/')
            return false;
        if (ch == '/' && i + 1 < n && s[i + 1] == '.') {
            size_t k = i + 2;
            if (k < n && s[k] == '.')
                k++;
            if (k == n || s[k] == '/')
                return false;
        }
    }
    return true;
}

static void
load_path_rules(struct ctx *x, struct cfg *c, json_t *v)
{
    char p[JPATH_MAX], q[JPATH_MAX];
    if (!json_is_array(v)) {
        fail(x, "policy.paths", "must be an array of {\"prefix\", \"manifest_mode\"}");
        return;
    }
    if (json_array_size(v) > CFG_MAX_PATH_RULES) {
        fail(x, "policy.paths", "must have at most %d entries", CFG_MAX_PATH_RULES);
        return;
    }
    c->path_rules = xcalloc(json_array_size(v) + 1, sizeof(*c->path_rules));
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e)
    {
        snprintf(p, sizeof(p), "policy.paths[%zu]", i);
        if (!LOAD_OBJECT(x, e, path_rule_fields, NULL, p))
            continue;
        json_t *pre = json_object_get(e, "prefix");
        jkey(q, p, "prefix");
        if (!json_is_string(pre) ||
            !valid_path_prefix(json_string_value(pre), json_string_length(pre))) {
            fail(x, q,
                 "must be a path prefix starting with '/' (canonical: no '//', '.' or "
                 "'..' segments, '%%', '?', '#', spaces or controls)");
            continue;
        }
        struct cfg_path_rule *r = &c->path_rules[c->npath_rules];
        jkey(q, p, "manifest_mode");
        if (load_manifest_mode(x, json_object_get(e, "manifest_mode"), q, &r->manifest_mode) != 0)
            continue;
        r->prefix = xstrdup(json_string_value(pre));
        r->prefix_len = json_string_length(pre);
        c->npath_rules++;
    }
}

enum cfg_manifest_mode
cfg_manifest_mode_for(const struct cfg *c, const char *path, size_t len, uint32_t region)
{
    for (size_t i = 0; i < c->npath_rules; i++) {
        const struct cfg_path_rule *r = &c->path_rules[i];
        if (len >= r->prefix_len && memcmp(path, r->prefix, r->prefix_len) == 0)
            return r->manifest_mode;
    }
    if (region < c->nregions && c->rules != NULL && c->rules[region].manifest_mode >= 0)
        return (enum cfg_manifest_mode)c->rules[region].manifest_mode;
    return c->manifest_mode;
}

static void
rule_free(struct cfg_rule *r)
{
    free(r->weights);
    free(r->failover);
    memset(r, 0, sizeof(*r));
}

/* Overrides the fields of rule that obj names: "cdns" replaces every weight (unnamed CDNs get
 * 0), "failover" replaces the failover list. */
static void
load_rule(struct ctx *x, const struct cfg *c, json_t *obj, const char *path, struct cfg_rule *rule)
{
    char p[JPATH_MAX], q[JPATH_MAX];
    const char *key;
    json_t *v, *e;
    uint64_t w;

    if (!LOAD_OBJECT(x, obj, rule_fields, NULL, path))
        return;
    if ((v = json_object_get(obj, "cdns")) != NULL) {
        jkey(p, path, "cdns");
        if (!json_is_object(v)) {
            fail(x, p, "must be an object of CDN id to weight");
        } else {
            memset(rule->weights, 0, c->ncdns * sizeof(*rule->weights));
            json_object_foreach(v, key, e)
            {
                long idx = cfg_cdn_index(c, key);
                jkey(q, p, key);
                if (idx < 0)
                    fail(x, q, "unknown CDN id");
                else if (get_uint(x, e, q, 0, WEIGHT_MAX, &w) == 0)
                    rule->weights[idx] = (uint32_t)w;
            }
        }
    }
    if ((v = json_object_get(obj, "manifest_mode")) != NULL) {
        enum cfg_manifest_mode m;
        jkey(p, path, "manifest_mode");
        if (load_manifest_mode(x, v, p, &m) == 0)
            rule->manifest_mode = (int)m;
    }
    if ((v = json_object_get(obj, "failover")) != NULL) {
        jkey(p, path, "failover");
        size_t n = json_is_array(v) ? json_array_size(v) : 0;
        if (!json_is_array(v)) {
            fail(x, p, "must be an array of CDN ids");
            return;
        }
        if (n > CFG_MAX_CDNS) {
            fail(x, p, "must have at most %d entries", CFG_MAX_CDNS);
            return;
        }
        free(rule->failover);
        rule->failover = xcalloc(n, sizeof(*rule->failover));
        rule->nfailover = 0;
        for (size_t i = 0; i < n; i++) {
            e = json_array_get(v, i);
            jidx(q, p, i);
            long idx = json_is_string(e) ? cfg_cdn_index(c, json_string_value(e)) : -1;
            if (!json_is_string(e)) {
                fail(x, q, "must be a CDN id string");
                continue;
            }
            if (idx < 0) {
                fail(x, q, "unknown CDN id \"%s\"", json_string_value(e));
                continue;
            }
            bool dup = false;
            for (size_t k = 0; k < rule->nfailover; k++)
                dup = dup || rule->failover[k] == (uint32_t)idx;
            if (dup) {
                fail(x, q, "duplicate CDN id \"%s\"", json_string_value(e));
                continue;
            }
            rule->failover[rule->nfailover++] = (uint32_t)idx;
        }
    }
}

static void
check_rule_allows(struct ctx *x, const struct cfg *c, const struct cfg_rule *r, const char *path)
{
    if (c->ncdns == 0 || r->nfailover > 0)
        return;
    for (size_t i = 0; i < c->ncdns; i++) {
        if (r->weights[i] > 0)
            return;
    }
    fail(x, path, "allows no CDN (every weight is 0 and failover is empty)");
}

/* "policy.score", "policy.observe", "policy.traffic": the scoring engine's parameters. */
static void
load_engine(struct ctx *x, struct cfg *c, json_t *pol)
{
    json_t *v;
    if (pol == NULL)
        return;
    if ((v = json_object_get(pol, "score")) != NULL && !json_is_null(v) &&
        LOAD_OBJECT(x, v, score_fields, &c->score, "policy.score")) {
        const struct cfg_score *s = &c->score;
        c->score.enabled = true;
        if (s->w_throughput + s->w_rebuffer + s->w_latency + s->w_availability <= 0)
            fail(x, "policy.score",
                 "w_throughput, w_rebuffer, w_latency and w_availability "
                 "must not all be 0");
        if (s->latency_bad_ms <= s->latency_good_ms)
            fail(x, "policy.score.latency_bad_ms", "must be above latency_good_ms");
        if (s->flap_suppress <= s->flap_reuse)
            fail(x, "policy.score.flap_suppress", "must be above flap_reuse");
    }
    if ((v = json_object_get(pol, "observe")) != NULL)
        LOAD_OBJECT(x, v, observe_fields, &c->observe, "policy.observe");
    if ((v = json_object_get(pol, "traffic")) != NULL)
        LOAD_OBJECT(x, v, traffic_fields, &c->traffic, "policy.traffic");
}

static void
load_policy(struct ctx *x, struct cfg *c, json_t *pol)
{
    char p[JPATH_MAX];
    struct cfg_rule def = {0};
    json_t *v;

    def.weights = xcalloc(c->ncdns, sizeof(*def.weights));
    for (size_t i = 0; i < c->ncdns; i++)
        def.weights[i] = 1;
    def.failover = xcalloc(0, sizeof(*def.failover));

    if (pol != NULL && !LOAD_OBJECT(x, pol, policy_fields, c, "policy"))
        pol = NULL;
    load_engine(x, c, pol);
    def.manifest_mode = -1;
    if (pol != NULL && (v = json_object_get(pol, "manifest_mode")) != NULL)
        load_manifest_mode(x, v, "policy.manifest_mode", &c->manifest_mode);
    if (pol != NULL && (v = json_object_get(pol, "paths")) != NULL)
        load_path_rules(x, c, v);
    if (pol != NULL && (v = json_object_get(pol, "default")) != NULL) {
        load_rule(x, c, v, "policy.default", &def);
        check_rule_allows(x, c, &def, "policy.default");
    }

    c->rules = xcalloc(c->nregions, sizeof(*c->rules));
    for (size_t r = 0; r < c->nregions; r++)
        rule_copy(&c->rules[r], &def, c->ncdns);
    rule_free(&def);

    v = pol != NULL ? json_object_get(pol, "regions") : NULL;
    if (v == NULL)
        return;
    if (!json_is_object(v)) {
        fail(x, "policy.regions", "must be an object of region name to rule");
        return;
    }
    if (json_object_size(v) > CFG_MAX_REGIONS + 1) {
        fail(x, "policy.regions", "must have at most %d entries", CFG_MAX_REGIONS + 1);
        return;
    }
    const char *key;
    json_t *e;
    json_object_foreach(v, key, e)
    {
        long idx = cfg_region_index(c, key);
        jkey(p, "policy.regions", key);
        if (idx < 0) {
            fail(x, p, "unknown region");
            continue;
        }
        load_rule(x, c, e, p, &c->rules[idx]);
        check_rule_allows(x, c, &c->rules[idx], p);
    }
}

/* ---- steering ---- */

#define KEY_FILE_MAX 65536

static int
hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Reads path (regular, not group/world-readable, at most KEY_FILE_MAX bytes) into b. */
static int
read_key_file(const char *path, struct buf *b, struct diag *d)
{
    struct stat st;
    char chunk[4096];
    int rc = -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        diag_add(d, "steering.key_file: %s: cannot read: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        diag_add(d, "steering.key_file: %s: not a regular file", path);
        goto out;
    }
    if ((st.st_mode & 077) != 0) {
        diag_add(d, "steering.key_file: %s: must not be readable by group or others (mode %03o)",
                 path, (unsigned)(st.st_mode & 0777));
        goto out;
    }
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            diag_add(d, "steering.key_file: %s: cannot read: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        if (buf_append(b, chunk, (size_t)n) != 0) {
            diag_add(d, "steering.key_file: %s: larger than %d bytes", path, KEY_FILE_MAX);
            goto out;
        }
    }
    rc = 0;
out:
    memset(chunk, 0, sizeof(chunk));
    close(fd);
    return rc;
}

/* Adds keys[i] to r; returns 0 or -1 with the problem in d (never the key itself). */
static int
add_key(struct steering_keyring *r, json_t *e, size_t i, const char *path, struct diag *d)
{
    uint8_t key[STEERING_KEY_MAX];
    json_t *kid = json_object_get(e, "kid");
    json_t *hex = json_object_get(e, "key_hex");
    int rc = -1;

    if (!json_is_object(e) || json_object_size(e) != 2 || !json_is_integer(kid) ||
        !json_is_string(hex)) {
        diag_add(d, "%s: keys[%zu]: must be {\"kid\": 1..255, \"key_hex\": \"...\"}", path, i);
        return -1;
    }
    json_int_t k = json_integer_value(kid);
    const char *h = json_string_value(hex);
    size_t n = strlen(h);
    if (k < 1 || k > 255) {
        diag_add(d, "%s: keys[%zu].kid: must be an integer in 1..255", path, i);
        return -1;
    }
    if (n % 2 != 0 || n / 2 < STEERING_KEY_MIN || n / 2 > STEERING_KEY_MAX) {
        diag_add(d, "%s: keys[%zu].key_hex: must be %d..%d hex digits (an even number)", path, i,
                 2 * STEERING_KEY_MIN, 2 * STEERING_KEY_MAX);
        return -1;
    }
    for (size_t j = 0; j < n / 2; j++) {
        int hi = hex_digit((unsigned char)h[2 * j]), lo = hex_digit((unsigned char)h[2 * j + 1]);
        if (hi < 0 || lo < 0) {
            diag_add(d, "%s: keys[%zu].key_hex: must be hex digits", path, i);
            goto out;
        }
        key[j] = (uint8_t)(hi << 4 | lo);
    }
    if (steering_keyring_add(r, (uint8_t)k, key, n / 2) != 0) {
        diag_add(d, "%s: keys[%zu].kid: duplicate key id %d", path, i, (int)k);
        goto out;
    }
    rc = 0;
out:
    memset(key, 0, sizeof(key));
    return rc;
}

struct steering_keyring *
cfg_parse_steering_keys(const char *text, size_t len, const char *name, struct diag *d)
{
    struct steering_keyring *r = NULL;
    json_error_t jerr;
    size_t before = d->count;

    json_t *root = json_loadb(text != NULL ? text : "", len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        /* jerr.text may quote the input: report the position only */
        diag_add(d, "%s:%d:%d: not valid JSON", name, jerr.line, jerr.column);
        goto out;
    }
    json_t *keys = json_object_get(root, "keys");
    json_t *cur = json_object_get(root, "current_kid");
    if (!json_is_object(root) || json_object_size(root) != 2 || !json_is_array(keys) ||
        !json_is_integer(cur)) {
        diag_add(d, "%s: must be {\"current_kid\": N, \"keys\": [...]}", name);
        goto out;
    }
    size_t n = json_array_size(keys);
    if (n < 1 || n > STEERING_KEYRING_MAX) {
        diag_add(d, "%s: keys: must have 1..%d entries", name, STEERING_KEYRING_MAX);
        goto out;
    }
    r = steering_keyring_new();
    for (size_t i = 0; i < n; i++)
        (void)add_key(r, json_array_get(keys, i), i, name, d);
    json_int_t ck = json_integer_value(cur);
    if (d->count == before &&
        (ck < 1 || ck > 255 || steering_keyring_set_current(r, (uint8_t)ck) != 0))
        diag_add(d, "%s: current_kid: must be the kid of one of the keys", name);
out:
    if (root != NULL) {
        /* scrub the parsed key strings before jansson frees them */
        json_t *keys2 = json_is_object(root) ? json_object_get(root, "keys") : NULL;
        for (size_t i = 0; json_is_array(keys2) && i < json_array_size(keys2); i++) {
            json_t *h = json_object_get(json_array_get(keys2, i), "key_hex");
            if (json_is_string(h))
                memset((char *)json_string_value(h), 0, json_string_length(h));
        }
        json_decref(root);
    }
    if (d->count != before) {
        steering_keyring_free(r);
        return NULL;
    }
    return r;
}

struct steering_keyring *
cfg_load_steering_keys(const char *path, struct diag *d)
{
    struct buf b;
    struct steering_keyring *r = NULL;

    buf_init(&b, KEY_FILE_MAX);
    if (read_key_file(path, &b, d) == 0)
        r = cfg_parse_steering_keys(b.data, b.len, path, d);
    if (b.data != NULL)
        memset(b.data, 0, b.cap);
    buf_free(&b);
    return r;
}

static void
load_clone_params(struct ctx *x, struct cfg_steering_clone *cl, json_t *v, const char *path)
{
    if (!json_is_object(v) || json_object_size(v) > CFG_STEERING_MAX_CLONE_PARAMS) {
        fail(x, path, "must be an object of at most %d name -> string value",
             CFG_STEERING_MAX_CLONE_PARAMS);
        return;
    }
    size_t n = json_object_size(v);
    cl->param_names = xcalloc(n ? n : 1, sizeof(char *));
    cl->param_values = xcalloc(n ? n : 1, sizeof(char *));
    const char *key;
    json_t *e;
    char p[JPATH_MAX];
    json_object_foreach(v, key, e)
    {
        if (!json_is_string(e)) {
            fail(x, jkey(p, path, key), "must be a string");
            continue;
        }
        cl->param_names[cl->nparams] = xstrdup(key);
        cl->param_values[cl->nparams] = xstrdup(json_string_value(e));
        cl->nparams++;
    }
}

/* Every clone checked with the steering writer itself, so what loads is what it will write. */
static void
check_clone(struct ctx *x, const struct cfg *c, size_t i, const char *path)
{
    const struct cfg_steering_clone *cl = &c->steering.clones[i];
    struct steering_pair params[CFG_STEERING_MAX_CLONE_PARAMS];
    for (size_t k = 0; k < cl->nparams; k++)
        params[k] = (struct steering_pair){cl->param_names[k], cl->param_values[k]};
    struct steering_clone sc = {.base_id = cl->base_id,
                                .id = cl->id,
                                .host = cl->host,
                                .params = params,
                                .nparams = cl->nparams};
    const char *prio[1] = {cl->id};
    struct steering_manifest m = {.kind = STEERING_HLS,
                                  .ttl_s = 1,
                                  .ttl_min_s = 1,
                                  .ttl_max_s = 1,
                                  .priority = prio,
                                  .npriority = 1,
                                  .clones = &sc,
                                  .nclones = 1};
    struct buf b;
    buf_init(&b, 65536);
    enum steering_status st = steering_write_manifest(&b, &m);
    buf_free(&b);
    if (st != STEERING_OK)
        fail(x, path,
             "invalid clone (host must be a hostname without port; params names and values "
             "only A-Z a-z 0-9 - . _ ~)");
    if (cfg_cdn_index(c, cl->id) >= 0)
        fail(x, path, "id \"%s\" is already a CDN id", cl->id);
    bool base_ok = cfg_cdn_index(c, cl->base_id) >= 0;
    for (size_t k = 0; k < i; k++) {
        if (strcmp(c->steering.clones[k].id, cl->id) == 0)
            fail(x, path, "duplicate clone id \"%s\"", cl->id);
        base_ok |= strcmp(c->steering.clones[k].id, cl->base_id) == 0;
    }
    if (!base_ok)
        fail(x, path, "base_id \"%s\" is neither a CDN id nor an earlier clone", cl->base_id);
}

static void
load_steering(struct ctx *x, struct cfg *c, json_t *v)
{
    char p[JPATH_MAX], q[JPATH_MAX];
    struct cfg_steering *s = &c->steering;
    if (!LOAD_OBJECT(x, v, steering_fields, s, "steering"))
        return;
    if (s->ttl_min_s > s->ttl_max_s)
        fail(x, "steering.ttl_min_s", "must not be greater than steering.ttl_max_s");
    json_t *e = json_object_get(v, "existing_tag");
    if (e != NULL) {
        if (json_is_string(e) && strcmp(json_string_value(e), "replace") == 0)
            s->existing_tag = CFG_STEERING_REPLACE;
        else if (json_is_string(e) && strcmp(json_string_value(e), "keep") == 0)
            s->existing_tag = CFG_STEERING_KEEP;
        else
            fail(x, "steering.existing_tag", "must be \"replace\" or \"keep\"");
    }
    json_t *cl = json_object_get(v, "clones");
    if (cl != NULL) {
        if (!json_is_array(cl) || json_array_size(cl) > CFG_STEERING_MAX_CLONES) {
            fail(x, "steering.clones", "must be an array of at most %d clones",
                 CFG_STEERING_MAX_CLONES);
        } else {
            size_t n = json_array_size(cl);
            s->clones = xcalloc(n ? n : 1, sizeof(*s->clones));
            for (size_t i = 0; i < n; i++) {
                struct cfg_steering_clone *k = &s->clones[s->nclones];
                jidx(p, "steering.clones", i);
                json_t *o = json_array_get(cl, i);
                s->nclones++;
                if (!LOAD_OBJECT(x, o, clone_fields, k, p))
                    continue;
                json_t *pv = json_object_get(o, "params");
                if (pv != NULL)
                    load_clone_params(x, k, pv, jkey(q, p, "params"));
                if (k->id != NULL && k->base_id != NULL)
                    check_clone(x, c, i, p);
            }
        }
    }
    if (s->key_file != NULL) {
        size_t before = x->d->count;
        s->keyring = cfg_load_steering_keys(s->key_file, x->d);
        x->nerr += x->d->count - before;
    }
}

static void
steering_free(struct cfg_steering *s)
{
    free(s->key_file);
    steering_keyring_free(s->keyring);
    for (size_t i = 0; i < s->nclones; i++) {
        struct cfg_steering_clone *k = &s->clones[i];
        free(k->id);
        free(k->base_id);
        free(k->host);
        for (size_t j = 0; j < k->nparams; j++) {
            free(k->param_names[j]);
            free(k->param_values[j]);
        }
        free(k->param_names);
        free(k->param_values);
    }
    free(s->clones);
}

static void
set_defaults(struct cfg *c)
{
    apply_defaults(top_fields, UTIL_ARRAY_LEN(top_fields), c);
    apply_defaults(admin_fields, UTIL_ARRAY_LEN(admin_fields), &c->admin);
    apply_defaults(origin_fields, UTIL_ARRAY_LEN(origin_fields), c);
    apply_defaults(geoip_fields, UTIL_ARRAY_LEN(geoip_fields), c);
    apply_defaults(http_fields, UTIL_ARRAY_LEN(http_fields), &c->http);
    apply_defaults(log_fields, UTIL_ARRAY_LEN(log_fields), c);
    apply_defaults(manifest_fields, UTIL_ARRAY_LEN(manifest_fields), &c->manifest);
    apply_defaults(steering_fields, UTIL_ARRAY_LEN(steering_fields), &c->steering);
    apply_defaults(beacon_fields, UTIL_ARRAY_LEN(beacon_fields), &c->beacon);
    c->listen = xcalloc(1, sizeof(*c->listen));
    c->listen[0] = xstrdup(DEFAULT_LISTEN);
    c->nlisten = 1;
    c->manifest_mode = CFG_MANIFEST_REWRITE;
    apply_defaults(score_fields, UTIL_ARRAY_LEN(score_fields), &c->score);
    apply_defaults(observe_fields, UTIL_ARRAY_LEN(observe_fields), &c->observe);
    apply_defaults(traffic_fields, UTIL_ARRAY_LEN(traffic_fields), &c->traffic);
    c->score.enabled = false;
    c->decision_log_sample = 0;
}

static struct cfg *
from_json(json_t *root, const char *name, struct diag *d)
{
    struct ctx x = {.d = d, .nerr = 0};
    json_t *v;

    if (!json_is_object(root)) {
        diag_add(d, "%s: the top level must be a JSON object", name);
        return NULL;
    }
    struct cfg *c = xcalloc(1, sizeof(*c));
    c->path = xstrdup(name);
    set_defaults(c);

    load_fields(&x, root, top_fields, UTIL_ARRAY_LEN(top_fields), c, "");
    if ((v = json_object_get(root, "listen")) != NULL)
        load_listen(&x, c, v);
    if ((v = json_object_get(root, "admin")) != NULL)
        LOAD_OBJECT(&x, v, admin_fields, &c->admin, "admin");
    check_admin_listen(&x, c);
    if ((v = json_object_get(root, "trusted_proxies")) != NULL)
        c->trusted_proxies = load_cidrs(&x, v, "trusted_proxies", &c->ntrusted_proxies);
    if ((v = json_object_get(root, "allow_targets")) != NULL) {
        if (json_is_array(v) && json_array_size(v) > CFG_MAX_ALLOW_TARGETS)
            fail(&x, "allow_targets", "must have at most %d entries", CFG_MAX_ALLOW_TARGETS);
        else
            c->allow_targets = load_cidrs(&x, v, "allow_targets", &c->nallow_targets);
    }
    if ((v = json_object_get(root, "origin")) != NULL &&
        LOAD_OBJECT(&x, v, origin_fields, c, "origin") && c->origin_base_url != NULL)
        strip_base_url(c->origin_base_url);
    if ((v = json_object_get(root, "geoip")) != NULL)
        LOAD_OBJECT(&x, v, geoip_fields, c, "geoip");
    if ((v = json_object_get(root, "regions")) != NULL)
        load_regions(&x, c, v);
    resolve_default_region(&x, c, json_object_get(root, "default_region"));
    load_cdns(&x, c, json_object_get(root, "cdns"));
    load_policy(&x, c, json_object_get(root, "policy"));
    for (size_t r = 0; c->rules != NULL && r < c->nregions; r++)
        c->region_modes = c->region_modes || c->rules[r].manifest_mode >= 0;
    if ((v = json_object_get(root, "http")) != NULL)
        LOAD_OBJECT(&x, v, http_fields, &c->http, "http");
    if ((v = json_object_get(root, "log")) != NULL)
        LOAD_OBJECT(&x, v, log_fields, c, "log");
    if ((v = json_object_get(root, "manifest")) != NULL &&
        LOAD_OBJECT(&x, v, manifest_fields, &c->manifest, "manifest") &&
        c->manifest.public_base_url != NULL)
        strip_base_url(c->manifest.public_base_url);
    if ((v = json_object_get(root, "steering")) != NULL)
        load_steering(&x, c, v);
    if ((v = json_object_get(root, "beacon")) != NULL)
        LOAD_OBJECT(&x, v, beacon_fields, &c->beacon, "beacon");
    check_targets(&x, c);

    if (x.nerr > 0) {
        cfg_free(c);
        return NULL;
    }
    return c;
}

/* ---- public API ---- */

struct cfg *
cfg_load_string(const char *text, size_t len, const char *name, struct diag *d)
{
    json_error_t jerr;

    if (name == NULL)
        name = "<string>";
    if (text == NULL) {
        text = "";
        len = 0;
    }
    if (len > CFG_MAX_FILE_BYTES) {
        diag_add(d, "%s: larger than %u bytes", name, CFG_MAX_FILE_BYTES);
        return NULL;
    }
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        diag_add(d, "%s:%d:%d: %s", name, jerr.line, jerr.column, jerr.text);
        return NULL;
    }
    struct cfg *c = from_json(root, name, d);
    json_decref(root);
    return c;
}

struct cfg *
cfg_load(const char *path, struct diag *d)
{
    struct stat st;
    struct buf b;
    struct cfg *c = NULL;
    char chunk[16384];

    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        diag_add(d, "%s: cannot read: %s", path, strerror(errno));
        return NULL;
    }
    buf_init(&b, CFG_MAX_FILE_BYTES);
    if (fstat(fd, &st) != 0) {
        diag_add(d, "%s: cannot read: %s", path, strerror(errno));
        goto out;
    }
    if (S_ISREG(st.st_mode) && st.st_size > (off_t)CFG_MAX_FILE_BYTES) {
        diag_add(d, "%s: too large: %jd bytes (at most %u)", path, (intmax_t)st.st_size,
                 CFG_MAX_FILE_BYTES);
        goto out;
    }
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            diag_add(d, "%s: cannot read: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        if (buf_append(&b, chunk, (size_t)n) != 0) {
            diag_add(d, "%s: too large (at most %u bytes)", path, CFG_MAX_FILE_BYTES);
            goto out;
        }
    }
    c = cfg_load_string(b.data ? b.data : "", b.len, path, d);
out:
    close(fd);
    buf_free(&b);
    return c;
}

void
cfg_free(struct cfg *c)
{
    if (c == NULL)
        return;
    free(c->path);
    for (size_t i = 0; i < c->nlisten; i++)
        free(c->listen[i]);
    free(c->listen);
    free(c->admin.listen);
    free(c->admin.token);
    free(c->trusted_proxies);
    free(c->allow_targets);
    free(c->origin_base_url);
    free(c->geoip_country_db);
    free(c->geoip_asn_db);
    for (size_t i = 0; i < c->nregions; i++) {
        free(c->regions[i].name);
        free(c->regions[i].countries);
        free(c->regions[i].asns);
        free(c->regions[i].cidrs);
    }
    free(c->regions);
    for (size_t i = 0; i < c->ncdns; i++) {
        free(c->cdns[i].id);
        free(c->cdns[i].base_url);
        free(c->cdns[i].probe.url);
        for (size_t k = 0; k < c->cdns[i].probe.nregional; k++)
            free(c->cdns[i].probe.regional[k].url);
        free(c->cdns[i].probe.regional);
    }
    free(c->cdns);
    if (c->rules != NULL) {
        for (size_t i = 0; i < c->nregions; i++)
            rule_free(&c->rules[i]);
    }
    free(c->rules);
    for (size_t i = 0; i < c->npath_rules; i++)
        free(c->path_rules[i].prefix);
    free(c->path_rules);
    free(c->http.cors_allow_origin);
    free(c->http.redirect_cache_control);
    free(c->log_level);
    free(c->log_file);
    free(c->manifest.public_base_url);
    steering_free(&c->steering);
    free(c);
}

long
cfg_cdn_index(const struct cfg *c, const char *id)
{
    if (c == NULL || id == NULL)
        return -1;
    for (size_t i = 0; i < c->ncdns; i++) {
        if (c->cdns[i].id != NULL && strcmp(c->cdns[i].id, id) == 0)
            return (long)i;
    }
    return -1;
}

long
cfg_region_index(const struct cfg *c, const char *name)
{
    if (c == NULL || name == NULL)
        return -1;
    for (size_t i = 0; i < c->nregions; i++) {
        if (c->regions[i].name != NULL && strcmp(c->regions[i].name, name) == 0)
            return (long)i;
    }
    return -1;
}
