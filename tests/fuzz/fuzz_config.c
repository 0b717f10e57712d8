/* libFuzzer harness for cfg: loads arbitrary bytes with cfg_load_string and aborts when a loaded
 * configuration breaks an invariant the rest of steerd relies on (valid ids and names, every
 * array sized and present, indexes in range, values inside their documented ranges, URLs of the
 * allowed shape), when success and diagnostics disagree, or when a diagnostic line holds a
 * control byte. Leaks are LeakSanitizer's (cfg_free must release everything). The input is also
 * given to cfg_split_hostport. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "steerd/cfg.h"
#include "steerd/diag.h"
#include "steerd/netaddr.h"

#define NAME "fuzz.json"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fail(const char *what)
{
    fprintf(stderr, "fuzz_config: invariant violated: %s\n", what);
    abort();
}

static int
in_range(uint64_t v, uint64_t lo, uint64_t hi)
{
    return v >= lo && v <= hi;
}

static void
check_printable(const char *s, const char *what)
{
    if (s == NULL)
        fail(what);
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;

        if (c < 0x20 || c > 0x7e)
            fail(what);
    }
}

static void
check_cdn_id(const char *s)
{
    size_t n;

    if (s == NULL)
        fail("cdn id NULL");
    n = strlen(s);
    if (n == 0 || n > CFG_ID_MAX)
        fail("cdn id length");
    for (size_t i = 0; i < n; i++) {
        char c = s[i];

        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            fail("cdn id byte");
    }
}

static void
check_region_name(const char *s)
{
    size_t n;

    if (s == NULL)
        fail("region name NULL");
    n = strlen(s);
    if (n == 0 || n > 64)
        fail("region name length");
    for (size_t i = 0; i < n; i++) {
        char c = s[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            fail("region name byte");
    }
}

/* An absolute http(s) URL of visible ASCII, no userinfo, no fragment; a base URL also has no
 * query and no trailing '/'. Returns its length. */
static size_t
check_url(const char *s, int base)
{
    size_t n, sl, ae;

    if (s == NULL)
        fail("url NULL");
    n = strlen(s);
    if (n == 0 || n > CFG_URL_MAX)
        fail("url length");
    if (strncmp(s, "http://", 7) == 0)
        sl = 7;
    else if (strncmp(s, "https://", 8) == 0)
        sl = 8;
    else
        fail("url scheme");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c < 0x21 || c > 0x7e || c == '#' || c == '\\' || c == '"')
            fail("url byte");
    }
    ae = sl + strcspn(s + sl, "/?#");
    if (ae == sl)
        fail("url without host");
    if (memchr(s + sl, '@', ae - sl) != NULL)
        fail("url userinfo");
    if (base) {
        if (strchr(s, '?') != NULL)
            fail("base url with a query");
        if (n > ae && s[n - 1] == '/')
            fail("base url with a trailing '/'");
    }
    return n;
}

static void
check_hostport(const char *s, int allow_zero)
{
    char host[NETADDR_STRLEN + 1];
    uint16_t port = 1;
    struct netaddr a;

    if (s == NULL)
        fail("host:port NULL");
    if (cfg_split_hostport(s, host, sizeof(host), &port) != 0)
        fail("host:port does not split");
    if (netaddr_parse(host, strlen(host), &a) != 0)
        fail("host:port host is not an address");
    if (!allow_zero && port == 0)
        fail("host:port port 0");
}

static void
check_probe(const struct cfg_probe *p)
{
    if (p->url == NULL)
        return;
    check_url(p->url, 0);
    if (!in_range(p->interval_ms, 100, 3600000) || !in_range(p->timeout_ms, 50, 60000) ||
        !in_range(p->rise, 1, 100) || !in_range(p->fall, 1, 100) ||
        !in_range(p->max_body_bytes, 1, 67108864) ||
        !in_range(p->low_speed_bytes_per_s, 0, 1000000000) ||
        !in_range(p->low_speed_time_ms, 1000, 600000))
        fail("probe value out of range");
}

static void
check_cfg(const struct cfg *c)
{
    if (c->path == NULL || strcmp(c->path, NAME) != 0)
        fail("path");

    if (c->nlisten < 1 || c->nlisten > CFG_MAX_LISTEN || c->listen == NULL)
        fail("listen count");
    for (size_t i = 0; i < c->nlisten; i++)
        check_hostport(c->listen[i], 1);
    if (c->workers > 64)
        fail("workers");
    check_hostport(c->admin.listen, 1);
    if (c->admin.token != NULL) {
        size_t n = strlen(c->admin.token);

        if (n < 16 || n > 256 || strchr(c->admin.token, ' ') != NULL)
            fail("admin token");
        check_printable(c->admin.token, "admin token byte");
    }
    if (c->ntrusted_proxies > 0 && c->trusted_proxies == NULL)
        fail("trusted_proxies NULL");
    for (size_t i = 0; i < c->ntrusted_proxies; i++) {
        if (c->trusted_proxies[i].prefix > 128)
            fail("trusted proxy prefix");
    }

    if (c->origin_base_url != NULL)
        check_url(c->origin_base_url, 1);
    if (!in_range(c->origin.timeout_ms, 100, 60000) ||
        !in_range(c->origin.connect_timeout_ms, 100, 60000) ||
        !in_range(c->origin.max_manifest_bytes, 1024, 67108864))
        fail("origin value out of range");
    if (!in_range(c->manifest.vod_ttl_s, 0, 86400) ||
        !in_range(c->manifest.live_ttl_min_ms, 100, 60000) ||
        !in_range(c->manifest.error_ttl_ms, 0, 60000) ||
        !in_range(c->manifest.cache_max_entries, 1, 1000000) ||
        !in_range(c->manifest.cache_max_bytes, 1048576, 4294967296ULL))
        fail("manifest value out of range");
    if (c->manifest.public_base_url != NULL)
        check_url(c->manifest.public_base_url, 1);
    if (c->geoip_country_db != NULL && c->geoip_country_db[0] == '\0')
        fail("empty country_db");
    if (c->geoip_asn_db != NULL && c->geoip_asn_db[0] == '\0')
        fail("empty asn_db");

    /* Regions: at least the default one; names valid and unique; only the last is implicit. */
    if (c->nregions < 1 || c->nregions > CFG_MAX_REGIONS + 1 || c->regions == NULL)
        fail("region count");
    if (c->default_region >= c->nregions)
        fail("default_region index");
    for (size_t i = 0; i < c->nregions; i++) {
        const struct cfg_region *r = &c->regions[i];

        check_region_name(r->name);
        if (cfg_region_index(c, r->name) != (long)i)
            fail("region name not unique");
        if (r->implicit && (i != c->nregions - 1 || i != c->default_region))
            fail("implicit region is not the last, default one");
        if (r->implicit && (r->ncountries || r->nasns || r->ncidrs))
            fail("implicit region with matchers");
        if ((r->ncountries && r->countries == NULL) || (r->nasns && r->asns == NULL) ||
            (r->ncidrs && r->cidrs == NULL))
            fail("region array NULL");
        for (size_t k = 0; k < r->ncountries; k++) {
            const char *cc = r->countries[k];

            if (cc[0] < 'A' || cc[0] > 'Z' || cc[1] < 'A' || cc[1] > 'Z' || cc[2] != '\0')
                fail("country code");
        }
        for (size_t k = 0; k < r->nasns; k++) {
            if (r->asns[k] == 0)
                fail("asn 0");
        }
        for (size_t k = 0; k < r->ncidrs; k++) {
            if (r->cidrs[k].prefix > 128)
                fail("cidr prefix");
        }
    }

    /* CDNs: 1..64, ids valid and unique, base URLs of the allowed shape. */
    if (c->ncdns < 1 || c->ncdns > CFG_MAX_CDNS || c->cdns == NULL)
        fail("cdn count");
    for (size_t i = 0; i < c->ncdns; i++) {
        const struct cfg_cdn *cdn = &c->cdns[i];

        check_cdn_id(cdn->id);
        if (cfg_cdn_index(c, cdn->id) != (long)i)
            fail("cdn id not unique");
        if (check_url(cdn->base_url, 1) != cdn->base_url_len)
            fail("base_url_len");
        check_probe(&cdn->probe);
    }
    if (cfg_cdn_index(c, "") != -1 || cfg_region_index(c, "") != -1)
        fail("empty id found");

    /* Rules: one per region, weights sized, failover indexes valid and unique, each allows a
     * CDN. */
    if (c->rules == NULL)
        fail("rules NULL");
    for (size_t r = 0; r < c->nregions; r++) {
        const struct cfg_rule *rule = &c->rules[r];
        int allows = rule->nfailover > 0;

        if (rule->weights == NULL)
            fail("rule weights NULL");
        for (size_t i = 0; i < c->ncdns; i++) {
            if (rule->weights[i] > 1000)
                fail("weight above 1000");
            allows = allows || rule->weights[i] > 0;
        }
        if (!allows)
            fail("rule allows no CDN");
        if (rule->nfailover > c->ncdns || (rule->nfailover > 0 && rule->failover == NULL))
            fail("failover size");
        for (size_t i = 0; i < rule->nfailover; i++) {
            if (rule->failover[i] >= c->ncdns)
                fail("failover index");
            for (size_t k = 0; k < i; k++) {
                if (rule->failover[k] == rule->failover[i])
                    fail("failover duplicate");
            }
        }
    }
    if (c->manifest_mode != CFG_MANIFEST_REWRITE && c->manifest_mode != CFG_MANIFEST_STEERING &&
        c->manifest_mode != CFG_MANIFEST_REDIRECT)
        fail("manifest_mode");

    /* http and log. */
    check_printable(c->http.cors_allow_origin, "cors_allow_origin");
    check_printable(c->http.redirect_cache_control, "redirect_cache_control");
    if (c->http.cors_allow_origin[0] == '\0' || c->http.redirect_cache_control[0] == '\0')
        fail("empty header value");
    if (!in_range(c->http.max_request_line_bytes, 256, 65536) ||
        !in_range(c->http.max_header_bytes, 1024, 262144) ||
        !in_range(c->http.max_headers, 8, 100) ||
        !in_range(c->http.header_timeout_ms, 100, 600000) ||
        !in_range(c->http.keepalive_timeout_ms, 0, 3600000) ||
        !in_range(c->http.write_timeout_ms, 100, 600000) ||
        !in_range(c->http.max_connections, 1, 1000000) ||
        !in_range(c->http.shutdown_grace_ms, 0, 600000))
        fail("http value out of range");
    if (c->log_level == NULL ||
        (strcmp(c->log_level, "err") != 0 && strcmp(c->log_level, "warn") != 0 &&
         strcmp(c->log_level, "notice") != 0 && strcmp(c->log_level, "info") != 0 &&
         strcmp(c->log_level, "debug") != 0))
        fail("log level");
    if (c->log_file != NULL && c->log_file[0] == '\0')
        fail("empty log file");
}

static void
check_diag(const struct diag *d, int loaded)
{
    if (loaded && (d->count != 0 || d->dropped != 0))
        fail("a loaded configuration with diagnostics");
    if (!loaded && d->count == 0)
        fail("a refused configuration without a diagnostic");
    if (d->count > DIAG_MAX_LINES)
        fail("diag count");
    for (size_t i = 0; i < d->count; i++) {
        if (d->lines[i] == NULL || d->lines[i][0] == '\0')
            fail("empty diagnostic");
        if (strlen(d->lines[i]) > 8192)
            fail("diagnostic too long");
        for (const char *p = d->lines[i]; *p != '\0'; p++) {
            unsigned char c = (unsigned char)*p;

            if (c < 0x20 || c == 0x7f)
                fail("control byte in a diagnostic");
        }
    }
}

static void
fuzz_hostport(const uint8_t *data, size_t size)
{
    char in[128], host[NETADDR_STRLEN + 1];
    uint16_t port = 0;
    size_t n = size < sizeof(in) - 1 ? size : sizeof(in) - 1;

    memcpy(in, data, n);
    in[n] = '\0';
    memset(host, 'x', sizeof(host));
    if (cfg_split_hostport(in, host, sizeof(host), &port) == 0) {
        struct netaddr a;

        if (memchr(host, '\0', sizeof(host)) == NULL)
            fail("split host not terminated");
        if (netaddr_parse(host, strlen(host), &a) != 0)
            fail("split host is not an address");
        if (cfg_split_hostport(in, NULL, 0, NULL) != 0)
            fail("split_hostport depends on its outputs");
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct diag d;
    struct cfg *c;

    diag_init(&d);
    c = cfg_load_string((const char *)data, size, NAME, &d);
    check_diag(&d, c != NULL);
    if (c != NULL)
        check_cfg(c);
    cfg_free(c);
    diag_free(&d);

    fuzz_hostport(data, size);
    return 0;
}
