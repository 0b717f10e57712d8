#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "steerd/cfg.h"
#include "steerd/diag.h"
#include "steerd/netaddr.h"
#include "steerd/steering.h"
#include "steerd/util.h"

#ifndef FIXTURE_DIR
#define FIXTURE_DIR "tests/fixtures"
#endif

#define CDN(id, url) "{\"id\":\"" id "\",\"base_url\":\"" url "\"}"
/* The test CDNs are on loopback, which a configuration must allow explicitly. */
#define ALLOW_LOOPBACK "\"allow_targets\":[\"127.0.0.0/8\",\"::1/128\"],"
#define CDNS2                                                                                      \
    ALLOW_LOOPBACK "\"cdns\":[" CDN("alpha", "http://127.0.0.1:9001") "," CDN(                     \
        "beta", "http://127.0.0.1:9002") "]"
/* One public CDN, no allow_targets (for tests that set it). */
#define CDN_NOALLOW "\"cdns\":[" CDN("alpha", "https://cdn.example.com") "]"
#define CDNS1_URL(url) ALLOW_LOOPBACK "\"cdns\":[" CDN("alpha", url) "]"

/* ---- helpers ---- */

static struct cfg *
load_str(const char *s, struct diag *d)
{
    return cfg_load_string(s, strlen(s), "<test>", d);
}

static bool
diag_has(const struct diag *d, const char *needle)
{
    for (size_t i = 0; i < d->count; i++) {
        if (strstr(d->lines[i], needle) != NULL)
            return true;
    }
    return false;
}

static void
print_diag(const char *what, const struct diag *d)
{
    char *all = diag_join(d);
    print_message("%s:\n%s\n", what, all);
    free(all);
}

/* A scratch directory per test run; files are removed by the test that makes them. */
struct tmp {
    char dir[64];
    char path[128];
};

static int
tmp_setup(void **state)
{
    struct tmp *t = xcalloc(1, sizeof(*t));
    snprintf(t->dir, sizeof(t->dir), "/tmp/steerd-test-cfg-XXXXXX");
    if (mkdtemp(t->dir) == NULL) {
        free(t);
        return -1;
    }
    snprintf(t->path, sizeof(t->path), "%s/steerd.json", t->dir);
    *state = t;
    return 0;
}

static int
tmp_teardown(void **state)
{
    struct tmp *t = *state;
    chmod(t->path, 0600);
    unlink(t->path);
    rmdir(t->dir);
    free(t);
    return 0;
}

static void
write_file(const char *path, const char *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    assert_int_equal(close(fd), 0);
}

static char *
read_fixture(const char *rel, size_t *len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", FIXTURE_DIR, rel);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    struct buf b;
    buf_init(&b, 0);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        buf_append(&b, chunk, n);
    fclose(f);
    *len = b.len;
    return b.data;
}

/* ---- good configs ---- */

static void
test_cfg_load_full_fixture(void **state)
{
    (void)state;
    struct diag d;
    diag_init(&d);
    struct cfg *c = cfg_load(FIXTURE_DIR "/cfg/full.json", &d);
    if (c == NULL)
        print_diag("full.json", &d);
    assert_non_null(c);
    assert_int_equal(d.count, 0);
    assert_string_equal(c->path, FIXTURE_DIR "/cfg/full.json");

    assert_int_equal(c->nlisten, 2);
    assert_string_equal(c->listen[0], "127.0.0.1:8080");
    assert_string_equal(c->listen[1], "[::1]:0");
    assert_int_equal(c->workers, 2);
    assert_string_equal(c->admin.listen, "127.0.0.1:8081");
    assert_string_equal(c->admin.token, "0123456789abcdef-token");

    assert_int_equal(c->ntrusted_proxies, 3);
    struct netaddr a;
    assert_int_equal(netaddr_parse("10.1.2.3", 8, &a), 0);
    assert_false(netaddr_in_cidr(&a, &c->trusted_proxies[0]));
    assert_true(netaddr_in_cidr(&a, &c->trusted_proxies[1]));
    assert_int_equal(netaddr_parse("fd12::1", 7, &a), 0);
    assert_true(netaddr_in_cidr(&a, &c->trusted_proxies[2]));
    assert_int_equal(c->nallow_targets, 2);
    assert_false(netaddr_in_cidr(&a, &c->allow_targets[0]));

    assert_string_equal(c->origin_base_url, "http://127.0.0.1:9000/vod");
    assert_int_equal(c->origin.timeout_ms, 4000);
    assert_int_equal(c->origin.connect_timeout_ms, 1500);
    assert_int_equal(c->origin.max_manifest_bytes, 1048576);
    assert_int_equal(c->manifest.vod_ttl_s, 60);
    assert_int_equal(c->manifest.live_ttl_min_ms, 500);
    assert_int_equal(c->manifest.error_ttl_ms, 2000);
    assert_int_equal(c->manifest.cache_max_entries, 5000);
    assert_true(c->manifest.cache_max_bytes == 67108864);
    assert_false(c->manifest.redundant_streams);
    assert_string_equal(c->manifest.public_base_url, "https://steer.example.com");
    assert_string_equal(c->geoip_country_db, "tests/fixtures/geoip/GeoIP2-Country-Test.mmdb");
    assert_string_equal(c->geoip_asn_db, "tests/fixtures/geoip/GeoLite2-ASN-Test.mmdb");

    /* regions: the two listed, then the implicit default */
    assert_int_equal(c->nregions, 3);
    assert_string_equal(c->regions[0].name, "nordics");
    assert_false(c->regions[0].implicit);
    assert_int_equal(c->regions[0].ncountries, 5);
    assert_string_equal(c->regions[0].countries[0], "SE");
    assert_string_equal(c->regions[0].countries[1], "NO"); /* upper-cased */
    assert_string_equal(c->regions[0].countries[4], "IS");
    assert_int_equal(c->regions[0].nasns, 0);
    assert_int_equal(c->regions[0].ncidrs, 0);
    assert_string_equal(c->regions[1].name, "isp-x");
    assert_int_equal(c->regions[1].nasns, 2);
    assert_int_equal(c->regions[1].asns[0], 3301);
    assert_int_equal(c->regions[1].asns[1], UINT32_MAX);
    assert_int_equal(c->regions[1].ncidrs, 2);
    assert_int_equal(netaddr_parse("192.0.2.77", 10, &a), 0);
    assert_true(netaddr_in_cidr(&a, &c->regions[1].cidrs[0]));
    assert_false(netaddr_in_cidr(&a, &c->regions[1].cidrs[1]));
    assert_string_equal(c->regions[2].name, "world");
    assert_true(c->regions[2].implicit);
    assert_int_equal(c->default_region, 2);

    /* cdns */
    assert_int_equal(c->ncdns, 3);
    assert_string_equal(c->cdns[0].id, "alpha");
    assert_string_equal(c->cdns[0].base_url, "http://127.0.0.1:9001");
    assert_int_equal(c->cdns[0].base_url_len, strlen("http://127.0.0.1:9001"));
    assert_string_equal(c->cdns[0].probe.url, "http://127.0.0.1:9001/probe.bin?x=1");
    assert_int_equal(c->cdns[0].probe.interval_ms, 1000);
    assert_int_equal(c->cdns[0].probe.timeout_ms, 800);
    assert_int_equal(c->cdns[0].probe.rise, 3);
    assert_int_equal(c->cdns[0].probe.fall, 4);
    assert_int_equal(c->cdns[0].probe.max_body_bytes, 65536);
    assert_int_equal(c->cdns[0].probe.low_speed_bytes_per_s, 2048);
    assert_int_equal(c->cdns[0].probe.low_speed_time_ms, 3000);
    assert_string_equal(c->cdns[1].id, "beta");
    assert_string_equal(c->cdns[1].base_url, "https://cdn-b.example.com:8443/live/v1");
    assert_int_equal(c->cdns[1].base_url_len, strlen(c->cdns[1].base_url));
    assert_null(c->cdns[1].probe.url);
    assert_string_equal(c->cdns[2].id, "gamma-3");
    assert_string_equal(c->cdns[2].base_url, "http://[::1]:9003");
    assert_null(c->cdns[2].probe.url);
    assert_int_equal(c->cdns[2].probe.interval_ms, 2000); /* defaults even without a probe */

    /* rules: nordics explicit, isp-x a copy of default, world overrides only failover */
    assert_non_null(c->rules);
    assert_int_equal(c->rules[0].weights[0], 3);
    assert_int_equal(c->rules[0].weights[1], 1);
    assert_int_equal(c->rules[0].weights[2], 0);
    assert_int_equal(c->rules[0].nfailover, 2);
    assert_int_equal(c->rules[0].failover[0], 0);
    assert_int_equal(c->rules[0].failover[1], 1);
    assert_int_equal(c->rules[1].weights[0], 1);
    assert_int_equal(c->rules[1].weights[1], 2);
    assert_int_equal(c->rules[1].weights[2], 0);
    assert_int_equal(c->rules[1].nfailover, 1);
    assert_int_equal(c->rules[1].failover[0], 1);
    assert_int_equal(c->rules[2].weights[0], 1);
    assert_int_equal(c->rules[2].weights[1], 2);
    assert_int_equal(c->rules[2].weights[2], 0);
    assert_int_equal(c->rules[2].nfailover, 1);
    assert_int_equal(c->rules[2].failover[0], 2);
    /* deep copies, not shared arrays */
    assert_ptr_not_equal(c->rules[1].weights, c->rules[2].weights);
    assert_int_equal(c->manifest_mode, CFG_MANIFEST_STEERING);

    assert_string_equal(c->http.cors_allow_origin, "https://player.example.com");
    assert_string_equal(c->http.redirect_cache_control, "private, max-age=5");
    assert_int_equal(c->http.max_request_line_bytes, 4096);
    assert_int_equal(c->http.max_header_bytes, 8192);
    assert_int_equal(c->http.max_headers, 32);
    assert_int_equal(c->http.header_timeout_ms, 5000);
    assert_int_equal(c->http.keepalive_timeout_ms, 30000);
    assert_int_equal(c->http.write_timeout_ms, 20000);
    assert_int_equal(c->http.max_connections, 2000);
    assert_int_equal(c->http.shutdown_grace_ms, 3000);
    assert_int_equal(c->http.max_body_bytes, 16384);
    assert_int_equal(c->http.body_timeout_ms, 4000);
    assert_int_equal(c->beacon.rate_per_s, 20);
    assert_int_equal(c->beacon.burst, 40);
    assert_int_equal(c->beacon.max_sources, 1024);
    assert_int_equal(c->beacon.queue_per_worker, 4096);
    assert_string_equal(c->log_level, "debug");
    assert_string_equal(c->log_file, "/var/log/steerd.log");

    assert_int_equal(cfg_cdn_index(c, "alpha"), 0);
    assert_int_equal(cfg_cdn_index(c, "gamma-3"), 2);
    assert_int_equal(cfg_cdn_index(c, "delta"), -1);
    assert_int_equal(cfg_region_index(c, "isp-x"), 1);
    assert_int_equal(cfg_region_index(c, "world"), 2);
    assert_int_equal(cfg_region_index(c, "mars"), -1);

    cfg_free(c);
    diag_free(&d);
}

static void
test_cfg_load_string_matches_file(void **state)
{
    (void)state;
    size_t len;
    char *text = read_fixture("cfg/full.json", &len);
    struct diag d;
    diag_init(&d);
    struct cfg *c = cfg_load_string(text, len, NULL, &d);
    assert_non_null(c);
    assert_string_equal(c->path, "<string>");
    assert_int_equal(c->ncdns, 3);
    cfg_free(c);
    free(text);
    diag_free(&d);
}

static void
test_cfg_empty_policy_defaults(void **state)
{
    (void)state;
    struct diag d;
    diag_init(&d);
    struct cfg *c = load_str("{" CDNS2 ", \"policy\": {}}", &d);
    assert_non_null(c);
    assert_int_equal(d.count, 0);

    assert_int_equal(c->nlisten, 1);
    assert_string_equal(c->listen[0], "127.0.0.1:8080");
    assert_int_equal(c->workers, 0);
    assert_string_equal(c->admin.listen, "127.0.0.1:8081");
    assert_null(c->admin.token);
    assert_int_equal(c->ntrusted_proxies, 0);
    assert_null(c->origin_base_url);
    assert_null(c->geoip_country_db);
    assert_null(c->geoip_asn_db);
    assert_int_equal(c->nregions, 1);
    assert_string_equal(c->regions[0].name, "world");
    assert_true(c->regions[0].implicit);
    assert_int_equal(c->default_region, 0);
    assert_int_equal(c->ncdns, 2);
    assert_null(c->cdns[0].probe.url);
    assert_int_equal(c->rules[0].weights[0], 1);
    assert_int_equal(c->rules[0].weights[1], 1);
    assert_int_equal(c->rules[0].nfailover, 0);
    assert_int_equal(c->manifest_mode, CFG_MANIFEST_REWRITE);
    assert_string_equal(c->http.cors_allow_origin, "*");
    assert_string_equal(c->http.redirect_cache_control, "no-store");
    assert_int_equal(c->http.max_request_line_bytes, 8192);
    assert_int_equal(c->http.max_header_bytes, 16384);
    assert_int_equal(c->http.max_headers, 64);
    assert_int_equal(c->http.header_timeout_ms, 10000);
    assert_int_equal(c->http.keepalive_timeout_ms, 60000);
    assert_int_equal(c->http.write_timeout_ms, 30000);
    assert_int_equal(c->http.max_connections, 10000);
    assert_int_equal(c->http.shutdown_grace_ms, 5000);
    assert_int_equal(c->http.max_body_bytes, 65536);
    assert_int_equal(c->http.body_timeout_ms, 10000);
    assert_int_equal(c->http.overload_lag_ms, 50);
    assert_int_equal(c->http.overload_conn_percent, 80);
    assert_int_equal(c->http.overload_recover_ms, 2000);
    assert_int_equal(c->beacon.rate_per_s, 50);
    assert_int_equal(c->beacon.burst, 100);
    assert_int_equal(c->beacon.max_sources, 65536);
    assert_int_equal(c->beacon.queue_per_worker, 65536);
    assert_string_equal(c->log_level, "info");
    assert_null(c->log_file);
    assert_int_equal(c->origin.timeout_ms, 5000);
    assert_int_equal(c->origin.connect_timeout_ms, 2000);
    assert_int_equal(c->origin.max_manifest_bytes, 8388608);
    assert_int_equal(c->manifest.vod_ttl_s, 300);
    assert_int_equal(c->manifest.live_ttl_min_ms, 1000);
    assert_int_equal(c->manifest.error_ttl_ms, 1000);
    assert_int_equal(c->manifest.cache_max_entries, 10000);
    assert_true(c->manifest.cache_max_bytes == 268435456ULL);
    assert_true(c->manifest.redundant_streams);
    assert_null(c->manifest.public_base_url);
    cfg_free(c);

    /* no policy key at all, and a default without "cdns", give the same rule */
    c = load_str("{" CDNS2 "}", &d);
    assert_non_null(c);
    assert_int_equal(c->rules[0].weights[0], 1);
    assert_int_equal(c->rules[0].weights[1], 1);
    cfg_free(c);
    c = load_str("{" CDNS2 ", \"policy\": {\"default\": {\"failover\": [\"beta\"]}}}", &d);
    assert_non_null(c);
    assert_int_equal(c->rules[0].weights[0], 1);
    assert_int_equal(c->rules[0].weights[1], 1);
    assert_int_equal(c->rules[0].nfailover, 1);
    assert_int_equal(c->rules[0].failover[0], 1);
    cfg_free(c);
    assert_int_equal(d.count, 0);
    diag_free(&d);
}

static void
test_cfg_probe_defaults(void **state)
{
    (void)state;
    struct diag d;
    diag_init(&d);
    struct cfg *c = load_str("{" ALLOW_LOOPBACK
                             "\"cdns\": [{\"id\": \"a\", \"base_url\": \"http://127.0.0.1:1\","
                             " \"probe\": {\"url\": \"http://127.0.0.1:1/p\"}}]}",
                             &d);
    assert_non_null(c);
    const struct cfg_probe *p = &c->cdns[0].probe;
    assert_string_equal(p->url, "http://127.0.0.1:1/p");
    assert_int_equal(p->interval_ms, 2000);
    assert_int_equal(p->timeout_ms, 1000);
    assert_int_equal(p->rise, 2);
    assert_int_equal(p->fall, 2);
    assert_int_equal(p->max_body_bytes, 1048576);
    assert_int_equal(p->low_speed_bytes_per_s, 1024);
    assert_int_equal(p->low_speed_time_ms, 2000);
    cfg_free(c);
    diag_free(&d);
}

static void
test_cfg_default_region_implicit_or_listed(void **state)
{
    (void)state;
    struct diag d;
    diag_init(&d);
    /* listed: no implicit region, default points at it */
    struct cfg *c = load_str("{" CDNS2 ", \"regions\": [{\"name\": \"eu\"}, {\"name\": \"us\"}],"
                             " \"default_region\": \"eu\"}",
                             &d);
    assert_non_null(c);
    assert_int_equal(c->nregions, 2);
    assert_int_equal(c->default_region, 0);
    assert_false(c->regions[0].implicit);
    assert_false(c->regions[1].implicit);
    cfg_free(c);

    /* not listed: appended at the end, and policy.regions may name it */
    c = load_str("{" CDNS2 ", \"regions\": [{\"name\": \"eu\"}], \"default_region\": \"rest\","
                 " \"policy\": {\"regions\": {\"rest\": {\"cdns\": {\"beta\": 5}}}}}",
                 &d);
    assert_non_null(c);
    assert_int_equal(c->nregions, 2);
    assert_string_equal(c->regions[1].name, "rest");
    assert_true(c->regions[1].implicit);
    assert_int_equal(c->default_region, 1);
    assert_int_equal(c->rules[1].weights[0], 0);
    assert_int_equal(c->rules[1].weights[1], 5);
    assert_int_equal(c->rules[0].weights[0], 1);
    assert_int_equal(c->rules[0].weights[1], 1);
    cfg_free(c);
    assert_int_equal(d.count, 0);
    diag_free(&d);
}

static void
test_cfg_rule_with_failover_only_is_allowed(void **state)
{
    (void)state;
    struct diag d;
    diag_init(&d);
    struct cfg *c = load_str(
        "{" CDNS2
        ", \"policy\": {\"default\": {\"cdns\": {}, \"failover\": [\"beta\", \"alpha\"]}}}",
        &d);
    assert_non_null(c);
    assert_int_equal(c->rules[0].weights[0], 0);
    assert_int_equal(c->rules[0].weights[1], 0);
    assert_int_equal(c->rules[0].nfailover, 2);
    assert_int_equal(c->rules[0].failover[0], 1);
    assert_int_equal(c->rules[0].failover[1], 0);
    cfg_free(c);
    diag_free(&d);
}

static void
test_cfg_base_url_trailing_slash_stripped(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"http://127.0.0.1:9001/", "http://127.0.0.1:9001"},
        {"http://127.0.0.1:9001", "http://127.0.0.1:9001"},
        {"https://cdn.example.com/a/b/", "https://cdn.example.com/a/b"},
        {"https://cdn.example.com/a///", "https://cdn.example.com/a"},
        {"http://[2001:db8::1]:8080/p/", "http://[2001:db8::1]:8080/p"},
    };
    for (size_t i = 0; i < UTIL_ARRAY_LEN(cases); i++) {
        char json[512];
        snprintf(json, sizeof(json),
                 "{" ALLOW_LOOPBACK "\"cdns\": [{\"id\": \"a\", \"base_url\": \"%s\"}]}",
                 cases[i].in);
        struct diag d;
        diag_init(&d);
        struct cfg *c = load_str(json, &d);
        assert_non_null(c);
        assert_string_equal(c->cdns[0].base_url, cases[i].out);
        assert_int_equal(c->cdns[0].base_url_len, strlen(cases[i].out));
        cfg_free(c);
        diag_free(&d);
    }
}

static void
test_cfg_accepts_good_urls(void **state)
{
    (void)state;
    static const char *const base_urls[] = {
        "https://cdn.example.com",
        "http://localhost",
        "http://127.0.0.1:65535",
        "http://[::1]",
        "http://[2001:db8::1]:8080/p",
        "http://a-b.c0.example/x/%2Fy/~z;v=1/a:b@c/!$&()*+,=",
        "http://cdn.example.com/v1.0/..x/.hidden",
        "http://1cdn.example.com/",
    };
    static const char *const probe_urls[] = {
        "http://127.0.0.1:9001/probe.bin?x=1&y=/a?b",
        "https://cdn.example.com/p",
        "http://cdn.example.com",
    };
    for (size_t i = 0; i < UTIL_ARRAY_LEN(base_urls); i++) {
        char json[512];
        snprintf(json, sizeof(json),
                 "{" ALLOW_LOOPBACK "\"cdns\": [{\"id\": \"a\", \"base_url\": \"%s\"}]}",
                 base_urls[i]);
        struct diag d;
        diag_init(&d);
        struct cfg *c = load_str(json, &d);
        if (c == NULL)
            print_diag(base_urls[i], &d);
        assert_non_null(c);
        cfg_free(c);
        diag_free(&d);
    }
    for (size_t i = 0; i < UTIL_ARRAY_LEN(probe_urls); i++) {
        char json[512];
        snprintf(json, sizeof(json),
                 "{" ALLOW_LOOPBACK
                 "\"cdns\": [{\"id\": \"a\", \"base_url\": \"http://127.0.0.1:1\","
                 " \"probe\": {\"url\": \"%s\"}}]}",
                 probe_urls[i]);
        struct diag d;
        diag_init(&d);
        struct cfg *c = load_str(json, &d);
        if (c == NULL)
            print_diag(probe_urls[i], &d);
        assert_non_null(c);
        assert_string_equal(c->cdns[0].probe.url, probe_urls[i]);
        cfg_free(c);
        diag_free(&d);
    }
}

/* ---- bad configs: one per error path ---- */

struct bad_case {
    const char *name;
    const char *json;
    const char *expect; /* a substring of one diag line */
};

static const struct bad_case bad_cases[] = {
    /* structure */
    {"root array", "[1]", "the top level must be a JSON object"},
    {"unknown top key", "{" CDNS2 ", \"bogus\": 1}", "bogus: unknown key"},
    {"unknown nested key", "{" CDNS2 ", \"http\": {\"max_hedaers\": 5}}",
     "http.max_hedaers: unknown key"},
    {"unknown probe key",
     "{\"cdns\": [{\"id\": \"a\", \"base_url\": \"http://h\", \"probe\": {\"url\": \"http://h/p\","
     " \"urll\": 1}}]}",
     "cdns[0].probe.urll: unknown key"},
    {"cdns missing", "{}", "cdns: required"},
    {"cdns empty", "{\"cdns\": []}", "cdns: must have 1..64 entries"},
    {"cdns not array", "{\"cdns\": {}}", "cdns: must be an array"},
    {"cdn not object", "{\"cdns\": [5]}", "cdns[0]: must be an object"},
    /* cdn ids */
    {"cdn id upper", "{\"cdns\": [" CDN("Alpha", "http://h") "]}",
     "cdns[0].id: must match [a-z0-9-]{1,32}"},
    {"cdn id underscore", "{\"cdns\": [" CDN("a_b", "http://h") "]}", "cdns[0].id: must match"},
    {"cdn id too long", "{\"cdns\": [" CDN("abcdefghijabcdefghijabcdefghijabc", "http://h") "]}",
     "cdns[0].id: must match"},
    {"cdn id empty", "{\"cdns\": [" CDN("", "http://h") "]}", "cdns[0].id: must match"},
    {"cdn id missing", "{\"cdns\": [{\"base_url\": \"http://h\"}]}", "cdns[0].id: required"},
    {"cdn id not string", "{\"cdns\": [{\"id\": 7, \"base_url\": \"http://h\"}]}",
     "cdns[0].id: must be a string"},
    {"cdn id duplicate", "{\"cdns\": [" CDN("a", "http://h") "," CDN("a", "http://i") "]}",
     "cdns[1].id: duplicate CDN id \"a\""},
    /* base URLs */
    {"base_url missing", "{\"cdns\": [{\"id\": \"a\"}]}", "cdns[0].base_url: required"},
    {"base_url file", "{" CDNS1_URL("file:///etc/passwd") "}",
     "cdns[0].base_url: scheme must be http or https"},
    {"base_url gopher", "{" CDNS1_URL("gopher://127.0.0.1:70/") "}",
     "cdns[0].base_url: scheme must be http or https"},
    {"base_url upper scheme", "{" CDNS1_URL("HTTP://127.0.0.1") "}", "cdns[0].base_url: scheme"},
    {"base_url no scheme", "{" CDNS1_URL("//127.0.0.1/x") "}", "cdns[0].base_url: scheme"},
    {"base_url userinfo", "{" CDNS1_URL("http://user:pw@127.0.0.1/") "}",
     "cdns[0].base_url: userinfo is not allowed"},
    {"base_url userinfo no pw", "{" CDNS1_URL("http://evil.com@127.0.0.1/") "}",
     "cdns[0].base_url: userinfo"},
    {"base_url query", "{" CDNS1_URL("http://127.0.0.1/p?x=1") "}",
     "cdns[0].base_url: query is not allowed"},
    {"base_url fragment", "{" CDNS1_URL("http://127.0.0.1/p#f") "}",
     "cdns[0].base_url: fragment is not allowed"},
    {"base_url space", "{" CDNS1_URL("http://127.0.0.1/a b") "}", "cdns[0].base_url: must not"},
    {"base_url CRLF", "{" CDNS1_URL("http://127.0.0.1/a\\r\\nX: y") "}",
     "cdns[0].base_url: must not"},
    {"base_url non-ascii", "{" CDNS1_URL("http://b\\u00fccher.example/") "}",
     "cdns[0].base_url: must not"},
    {"base_url no host", "{" CDNS1_URL("http:///x") "}", "cdns[0].base_url: host is missing"},
    {"base_url empty", "{" CDNS1_URL("") "}", "cdns[0].base_url: must not be empty"},
    {"base_url port 0", "{" CDNS1_URL("http://127.0.0.1:0/") "}",
     "cdns[0].base_url: port must be 1..65535"},
    {"base_url port big", "{" CDNS1_URL("http://127.0.0.1:65536/") "}",
     "cdns[0].base_url: port must be 1..65535"},
    {"base_url port empty", "{" CDNS1_URL("http://127.0.0.1:/") "}", "cdns[0].base_url: port"},
    {"base_url decimal ip", "{" CDNS1_URL("http://2130706433/") "}",
     "cdns[0].base_url: host is not a valid dotted-quad IPv4 address"},
    {"base_url short ip", "{" CDNS1_URL("http://127.1/") "}", "cdns[0].base_url: host is not"},
    {"base_url hex ip", "{" CDNS1_URL("http://0x7f.0.0.1/") "}", "cdns[0].base_url: host is not"},
    {"base_url bad host char", "{" CDNS1_URL("http://a_b.example/") "}",
     "cdns[0].base_url: host must be"},
    {"base_url empty label", "{" CDNS1_URL("http://a..example/") "}",
     "cdns[0].base_url: host must be"},
    {"base_url bad v6", "{" CDNS1_URL("http://[1.2.3.4]/") "}", "cdns[0].base_url: host has"},
    {"base_url v6 zone", "{" CDNS1_URL("http://[fe80::1%25eth0]/") "}",
     "cdns[0].base_url: host has"},
    {"base_url bad escape", "{" CDNS1_URL("http://127.0.0.1/a%zz") "}",
     "cdns[0].base_url: has a bad %-escape"},
    {"base_url short escape", "{" CDNS1_URL("http://127.0.0.1/a%2") "}",
     "cdns[0].base_url: has a bad %-escape"},
    {"base_url encoded CR", "{" CDNS1_URL("http://127.0.0.1/a%0d") "}",
     "cdns[0].base_url: must not encode control bytes"},
    {"base_url quote", "{" CDNS1_URL("http://127.0.0.1/a'b") "}",
     "cdns[0].base_url: has a character not allowed"},
    {"base_url backslash", "{" CDNS1_URL("http://127.0.0.1/a\\\\b") "}",
     "cdns[0].base_url: has a character not allowed"},
    {"base_url dotdot", "{" CDNS1_URL("http://127.0.0.1/a/../b") "}",
     "cdns[0].base_url: path must not contain . or .. segments"},
    {"base_url encoded dotdot", "{" CDNS1_URL("http://127.0.0.1/a/%2E%2e") "}",
     "cdns[0].base_url: path must not contain"},
    {"base_url not string", "{\"cdns\": [{\"id\": \"a\", \"base_url\": 1}]}",
     "cdns[0].base_url: must be a string"},
    /* probes */
    {"probe not object", "{\"cdns\": [{\"id\": \"a\", \"base_url\": \"http://h\", \"probe\": 5}]}",
     "cdns[0].probe: must be an object or null"},
    {"probe url missing",
     "{\"cdns\": [{\"id\": \"a\", \"base_url\": \"http://h\", \"probe\": {\"rise\": 1}}]}",
     "cdns[0].probe.url: required"},
    {"probe url gopher",
     "{\"cdns\": [{\"id\": \"a\", \"base_url\": \"http://h\", \"probe\": {\"url\": "
     "\"gopher://h/\"}}]}",
     "cdns[0].probe.url: scheme must be http or https"},
    {"probe url fragment",
     "{\"cdns\": [{\"id\": \"a\", \"base_url\": \"http://h\", \"probe\": {\"url\": "
     "\"http://h/p?a#b\"}}]}",
     "cdns[0].probe.url: fragment is not allowed"},
    {"probe interval low",
     "{\"cdns\": [{\"id\": \"a\", \"base_url\": \"http://h\", \"probe\": {\"url\": \"http://h/\","
     " \"interval_ms\": 50}}]}",
     "cdns[0].probe.interval_ms: must be an integer in 100..3600000"},
    {"probe timeout real",
     "{\"cdns\": [{\"id\": \"a\", \"base_url\": \"http://h\", \"probe\": {\"url\": \"http://h/\","
     " \"timeout_ms\": 1.5}}]}",
     "cdns[0].probe.timeout_ms: must be an integer in 50..60000"},
    {"probe rise negative",
     "{\"cdns\": [{\"id\": \"a\", \"base_url\": \"http://h\", \"probe\": {\"url\": \"http://h/\","
     " \"rise\": -1}}]}",
     "cdns[0].probe.rise: must be an integer in 1..100"},
    {"probe fall string",
     "{\"cdns\": [{\"id\": \"a\", \"base_url\": \"http://h\", \"probe\": {\"url\": \"http://h/\","
     " \"fall\": \"2\"}}]}",
     "cdns[0].probe.fall: must be an integer"},
    {"probe max body zero",
     "{\"cdns\": [{\"id\": \"a\", \"base_url\": \"http://h\", \"probe\": {\"url\": \"http://h/\","
     " \"max_body_bytes\": 0}}]}",
     "cdns[0].probe.max_body_bytes: must be an integer in 1..67108864"},
    {"probe low speed time",
     "{\"cdns\": [{\"id\": \"a\", \"base_url\": \"http://h\", \"probe\": {\"url\": \"http://h/\","
     " \"low_speed_time_ms\": 999}}]}",
     "cdns[0].probe.low_speed_time_ms: must be an integer in 1000..600000"},
    /* workers, listen, admin */
    {"workers too many", "{" CDNS2 ", \"workers\": 65}", "workers: must be an integer in 0..64"},
    {"workers string", "{" CDNS2 ", \"workers\": \"2\"}", "workers: must be an integer"},
    {"workers bool", "{" CDNS2 ", \"workers\": true}", "workers: must be an integer"},
    {"listen not array", "{" CDNS2 ", \"listen\": \"127.0.0.1:80\"}", "listen: must be an array"},
    {"listen empty", "{" CDNS2 ", \"listen\": []}", "listen: must have 1..16 entries"},
    {"listen too many",
     "{" CDNS2 ", \"listen\": [\"127.0.0.1:1\",\"127.0.0.1:2\",\"127.0.0.1:3\",\"127.0.0.1:4\","
     "\"127.0.0.1:5\",\"127.0.0.1:6\",\"127.0.0.1:7\",\"127.0.0.1:8\",\"127.0.0.1:9\","
     "\"127.0.0.1:10\",\"127.0.0.1:11\",\"127.0.0.1:12\",\"127.0.0.1:13\",\"127.0.0.1:14\","
     "\"127.0.0.1:15\",\"127.0.0.1:16\",\"127.0.0.1:17\"]}",
     "listen: must have 1..16 entries"},
    {"listen hostname", "{" CDNS2 ", \"listen\": [\"localhost:8080\"]}", "listen[0]: must be"},
    {"listen bare v6", "{" CDNS2 ", \"listen\": [\"::1:8080\"]}", "listen[0]: must be"},
    {"listen port big", "{" CDNS2 ", \"listen\": [\"127.0.0.1:65536\"]}", "listen[0]: must be"},
    {"listen no port", "{" CDNS2 ", \"listen\": [\"127.0.0.1\"]}", "listen[0]: must be"},
    {"listen not string", "{" CDNS2 ", \"listen\": [8080]}", "listen[0]: must be a string"},
    {"listen duplicate", "{" CDNS2 ", \"listen\": [\"127.0.0.1:8080\", \"127.0.0.1:8080\"]}",
     "listen[1]: duplicate of listen[0]"},
    {"listen duplicate v6 spelling", "{" CDNS2 ", \"listen\": [\"[::1]:80\", \"[0::1]:80\"]}",
     "listen[1]: duplicate of listen[0]"},
    {"admin not object", "{" CDNS2 ", \"admin\": \"127.0.0.1:1\"}", "admin: must be an object"},
    {"admin listen bad", "{" CDNS2 ", \"admin\": {\"listen\": \"127.0.0.1\"}}",
     "admin.listen: must be"},
    {"admin listen clash", "{" CDNS2 ", \"admin\": {\"listen\": \"127.0.0.1:8080\"}}",
     "admin.listen: same address as listen[0]"},
    {"admin token short", "{" CDNS2 ", \"admin\": {\"token\": \"short\"}}",
     "admin.token: must be 16..256"},
    {"admin token empty", "{" CDNS2 ", \"admin\": {\"token\": \"\"}}", "admin.token: must be"},
    {"admin token space", "{" CDNS2 ", \"admin\": {\"token\": \"0123456789 abcdefgh\"}}",
     "admin.token: must be"},
    {"admin token number", "{" CDNS2 ", \"admin\": {\"token\": 1234567890123456}}",
     "admin.token: must be a string or null"},
    {"admin unknown", "{" CDNS2 ", \"admin\": {\"tokne\": null}}", "admin.tokne: unknown key"},
    /* trusted proxies, origin, geoip */
    {"proxies not array", "{" CDNS2 ", \"trusted_proxies\": \"127.0.0.1/32\"}",
     "trusted_proxies: must be an array"},
    {"proxies host bits", "{" CDNS2 ", \"trusted_proxies\": [\"10.0.0.1/8\"]}",
     "trusted_proxies[0]: must be an IPv4 or IPv6 CIDR"},
    {"proxies garbage", "{" CDNS2 ", \"trusted_proxies\": [\"127.0.0.1/32\", \"nope\"]}",
     "trusted_proxies[1]: must be an IPv4 or IPv6 CIDR"},
    /* targets: internal addresses need allow_targets, numeric forms, the admin listener */
    {"target loopback no allow", "{\"cdns\": [" CDN("a", "http://127.0.0.1:9001") "]}",
     "cdns[0].base_url: host 127.0.0.1 is an internal address"},
    {"target loopback names the fix", "{\"cdns\": [" CDN("a", "http://127.0.0.1:9001") "]}",
     "list it in allow_targets (e.g. \"127.0.0.1/32\")"},
    {"target private 10/8", "{" CDNS1_URL("http://10.0.0.1/") "}",
     "cdns[0].base_url: host 10.0.0.1 is an internal address"},
    {"target private 172.16/12", "{" CDNS1_URL("http://172.31.255.1/") "}",
     "cdns[0].base_url: host 172.31.255.1 is an internal address"},
    {"target private 192.168/16", "{" CDNS1_URL("https://192.168.1.1:8443/x") "}",
     "cdns[0].base_url: host 192.168.1.1 is an internal address"},
    {"target cgnat", "{" CDNS1_URL("http://100.64.0.1/") "}",
     "cdns[0].base_url: host 100.64.0.1 is an internal address"},
    {"target link-local", "{" CDNS1_URL("http://169.254.169.254/latest/meta-data") "}",
     "cdns[0].base_url: host 169.254.169.254 is an internal address"},
    {"target unspecified", "{" CDNS1_URL("http://0.0.0.0:9001/") "}",
     "cdns[0].base_url: host 0.0.0.0 is an internal address"},
    {"target broadcast", "{" CDNS1_URL("http://255.255.255.255/") "}",
     "cdns[0].base_url: host 255.255.255.255 is an internal address"},
    {"target multicast", "{" CDNS1_URL("http://239.1.1.1/") "}",
     "cdns[0].base_url: host 239.1.1.1 is an internal address"},
    {"target v6 link-local", "{" CDNS1_URL("http://[fe80::1]/") "}",
     "cdns[0].base_url: host fe80::1 is an internal address"},
    {"target v6 unique local", "{" CDNS1_URL("http://[fd00::1]:80/") "}",
     "cdns[0].base_url: host fd00::1 is an internal address"},
    {"target v4-mapped private", "{" CDNS1_URL("http://[::ffff:10.0.0.1]/") "}",
     "cdns[0].base_url: host 10.0.0.1 is an internal address"},
    {"target v4-mapped loopback", "{\"cdns\": [" CDN("a", "http://[::ffff:127.0.0.1]/") "]}",
     "cdns[0].base_url: host 127.0.0.1 is an internal address"},
    {"target nat64 metadata", "{" CDNS1_URL("http://[64:ff9b::a9fe:a9fe]/") "}",
     "cdns[0].base_url: host 64:ff9b::a9fe:a9fe is an internal address"},
    {"target v6 loopback no allow", "{\"cdns\": [" CDN("a", "http://[::1]:9001") "]}",
     "cdns[0].base_url: host ::1 is an internal address"},
    {"target probe url private",
     "{" ALLOW_LOOPBACK "\"cdns\": [{\"id\": \"a\", \"base_url\": \"http://127.0.0.1:1\","
     " \"probe\": {\"url\": \"http://192.168.0.10/p?x=1\"}}]}",
     "cdns[0].probe.url: host 192.168.0.10 is an internal address"},
    {"target origin link-local",
     "{" CDNS2 ", \"origin\": {\"base_url\": \"http://169.254.0.1/vod\"}}",
     "origin.base_url: host 169.254.0.1 is an internal address"},
    {"target decimal ip", "{" CDNS1_URL("http://2130706433/") "}",
     "cdns[0].base_url: host is not a valid dotted-quad"},
    {"target hex ip", "{" CDNS1_URL("http://0x7f000001/") "}",
     "cdns[0].base_url: host is not a valid dotted-quad"},
    {"target octal ip", "{" CDNS1_URL("http://0177.0.0.1/") "}",
     "cdns[0].base_url: host is not a valid dotted-quad"},
    {"target probe decimal ip",
     "{" ALLOW_LOOPBACK "\"cdns\": [{\"id\": \"a\", \"base_url\": \"http://127.0.0.1:1\","
     " \"probe\": {\"url\": \"http://2852039166/p\"}}]}",
     "cdns[0].probe.url: host is not a valid dotted-quad"},
    {"target origin short ip", "{" CDNS2 ", \"origin\": {\"base_url\": \"http://10.1/\"}}",
     "origin.base_url: host is not a valid dotted-quad"},
    {"target file scheme", "{" CDNS1_URL("file:///etc/passwd") "}",
     "cdns[0].base_url: scheme must be http or https"},
    {"target probe gopher",
     "{" ALLOW_LOOPBACK "\"cdns\": [{\"id\": \"a\", \"base_url\": \"http://127.0.0.1:1\","
     " \"probe\": {\"url\": \"gopher://127.0.0.1:70/_x\"}}]}",
     "cdns[0].probe.url: scheme must be http or https"},
    {"target admin listener", "{" CDNS1_URL("http://127.0.0.1:8081/") "}",
     "cdns[0].base_url: points at the admin listener (admin.listen 127.0.0.1:8081)"},
    {"target admin listener probe",
     "{" ALLOW_LOOPBACK "\"admin\": {\"listen\": \"127.0.0.1:9100\"},"
     " \"cdns\": [{\"id\": \"a\", \"base_url\": \"http://127.0.0.1:1\","
     " \"probe\": {\"url\": \"http://127.0.0.1:9100/state\"}}]}",
     "cdns[0].probe.url: points at the admin listener"},
    {"target admin listener origin",
     "{" CDNS2 ", \"admin\": {\"listen\": \"[::1]:9100\"},"
     " \"origin\": {\"base_url\": \"http://[::1]:9100\"}}",
     "origin.base_url: points at the admin listener"},
    {"target admin listener by name", "{" CDNS1_URL("http://localhost:8081/x") "}",
     "cdns[0].base_url: points at the admin listener"},
    {"target admin default port",
     "{" ALLOW_LOOPBACK
     "\"admin\": {\"listen\": \"127.0.0.1:80\"}, \"cdns\": [" CDN("a", "http://127.0.0.1") "]}",
     "cdns[0].base_url: points at the admin listener"},
    {"target admin wildcard",
     "{" ALLOW_LOOPBACK "\"admin\": {\"listen\": \"0.0.0.0:9100\"}, \"cdns\": [" CDN(
         "a", "http://127.0.0.2:9100") "]}",
     "cdns[0].base_url: points at the admin listener"},
    {"allow_targets not array", "{" CDN_NOALLOW ", \"allow_targets\": \"127.0.0.0/8\"}",
     "allow_targets: must be an array of CIDR strings"},
    {"allow_targets bad cidr", "{" CDN_NOALLOW ", \"allow_targets\": [\"127.0.0.1/8\"]}",
     "allow_targets[0]: must be an IPv4 or IPv6 CIDR"},
    {"allow_targets not string", "{" CDN_NOALLOW ", \"allow_targets\": [\"10.0.0.0/8\", 10]}",
     "allow_targets[1]: must be a string"},
    {"allow_targets decimal", "{" CDN_NOALLOW ", \"allow_targets\": [\"2130706433/32\"]}",
     "allow_targets[0]: must be an IPv4 or IPv6 CIDR"},
    {"origin no base_url", "{" CDNS2 ", \"origin\": {}}", "origin.base_url: required"},
    {"origin gopher", "{" CDNS2 ", \"origin\": {\"base_url\": \"gopher://h/\"}}",
     "origin.base_url: scheme must be http or https"},
    {"origin not object", "{" CDNS2 ", \"origin\": \"http://h\"}", "origin: must be an object"},
    {"origin timeout low",
     "{" CDNS2 ", \"origin\": {\"base_url\": \"http://h\", \"timeout_ms\": 99}}",
     "origin.timeout_ms: must be an integer in 100..60000"},
    {"origin timeout high",
     "{" CDNS2 ", \"origin\": {\"base_url\": \"http://h\", \"timeout_ms\": 60001}}",
     "origin.timeout_ms: must be an integer in 100..60000"},
    {"origin connect timeout",
     "{" CDNS2 ", \"origin\": {\"base_url\": \"http://h\", \"connect_timeout_ms\": 50}}",
     "origin.connect_timeout_ms: must be an integer in 100..60000"},
    {"origin connect timeout type",
     "{" CDNS2 ", \"origin\": {\"base_url\": \"http://h\", \"connect_timeout_ms\": \"1s\"}}",
     "origin.connect_timeout_ms: must be an integer in 100..60000"},
    {"origin max bytes low",
     "{" CDNS2 ", \"origin\": {\"base_url\": \"http://h\", \"max_manifest_bytes\": 1023}}",
     "origin.max_manifest_bytes: must be an integer in 1024..67108864"},
    {"origin max bytes high",
     "{" CDNS2 ", \"origin\": {\"base_url\": \"http://h\", \"max_manifest_bytes\": 67108865}}",
     "origin.max_manifest_bytes: must be an integer in 1024..67108864"},
    {"origin unknown key", "{" CDNS2 ", \"origin\": {\"base_url\": \"http://h\", \"timeout\": 1}}",
     "origin.timeout: unknown key"},
    /* manifest */
    {"manifest not object", "{" CDNS2 ", \"manifest\": []}", "manifest: must be an object"},
    {"manifest unknown key", "{" CDNS2 ", \"manifest\": {\"ttl\": 1}}",
     "manifest.ttl: unknown key"},
    {"manifest vod ttl", "{" CDNS2 ", \"manifest\": {\"vod_ttl_s\": 86401}}",
     "manifest.vod_ttl_s: must be an integer in 0..86400"},
    {"manifest vod ttl negative", "{" CDNS2 ", \"manifest\": {\"vod_ttl_s\": -1}}",
     "manifest.vod_ttl_s: must be an integer in 0..86400"},
    {"manifest live ttl low", "{" CDNS2 ", \"manifest\": {\"live_ttl_min_ms\": 99}}",
     "manifest.live_ttl_min_ms: must be an integer in 100..60000"},
    {"manifest live ttl high", "{" CDNS2 ", \"manifest\": {\"live_ttl_min_ms\": 60001}}",
     "manifest.live_ttl_min_ms: must be an integer in 100..60000"},
    {"manifest error ttl", "{" CDNS2 ", \"manifest\": {\"error_ttl_ms\": 60001}}",
     "manifest.error_ttl_ms: must be an integer in 0..60000"},
    {"manifest error ttl float", "{" CDNS2 ", \"manifest\": {\"error_ttl_ms\": 1.5}}",
     "manifest.error_ttl_ms: must be an integer in 0..60000"},
    {"manifest entries zero", "{" CDNS2 ", \"manifest\": {\"cache_max_entries\": 0}}",
     "manifest.cache_max_entries: must be an integer in 1..1000000"},
    {"manifest entries high", "{" CDNS2 ", \"manifest\": {\"cache_max_entries\": 1000001}}",
     "manifest.cache_max_entries: must be an integer in 1..1000000"},
    {"manifest bytes low", "{" CDNS2 ", \"manifest\": {\"cache_max_bytes\": 1048575}}",
     "manifest.cache_max_bytes: must be an integer in 1048576..4294967296"},
    {"manifest bytes high", "{" CDNS2 ", \"manifest\": {\"cache_max_bytes\": 4294967297}}",
     "manifest.cache_max_bytes: must be an integer in 1048576..4294967296"},
    {"manifest redundant type", "{" CDNS2 ", \"manifest\": {\"redundant_streams\": 1}}",
     "manifest.redundant_streams: must be true or false"},
    {"manifest redundant string", "{" CDNS2 ", \"manifest\": {\"redundant_streams\": \"yes\"}}",
     "manifest.redundant_streams: must be true or false"},
    {"manifest public base relative",
     "{" CDNS2 ", \"manifest\": {\"public_base_url\": \"/steer\"}}",
     "manifest.public_base_url: scheme must be http or https"},
    {"manifest public base query",
     "{" CDNS2 ", \"manifest\": {\"public_base_url\": \"http://h/?a=1\"}}",
     "manifest.public_base_url: query is not allowed"},
    {"manifest public base type", "{" CDNS2 ", \"manifest\": {\"public_base_url\": 1}}",
     "manifest.public_base_url: must be a string or null"},
    {"manifest public base empty", "{" CDNS2 ", \"manifest\": {\"public_base_url\": \"\"}}",
     "manifest.public_base_url: must not be empty"},
    {"geoip number", "{" CDNS2 ", \"geoip\": {\"country_db\": 5}}",
     "geoip.country_db: must be a string or null"},
    {"geoip empty path", "{" CDNS2 ", \"geoip\": {\"asn_db\": \"\"}}",
     "geoip.asn_db: must be a non-empty path"},
    {"geoip unknown", "{" CDNS2 ", \"geoip\": {\"city_db\": null}}", "geoip.city_db: unknown key"},
    /* regions */
    {"regions not array", "{" CDNS2 ", \"regions\": {}}", "regions: must be an array"},
    {"region name bad", "{" CDNS2 ", \"regions\": [{\"name\": \"nord ics\"}]}",
     "regions[0].name: must match [A-Za-z0-9_.-]{1,64}"},
    {"region name missing", "{" CDNS2 ", \"regions\": [{\"countries\": [\"SE\"]}]}",
     "regions[0].name: required"},
    {"region name duplicate", "{" CDNS2 ", \"regions\": [{\"name\": \"eu\"}, {\"name\": \"eu\"}]}",
     "regions[1].name: duplicate region name \"eu\""},
    {"region unknown key", "{" CDNS2 ", \"regions\": [{\"name\": \"eu\", \"country\": []}]}",
     "regions[0].country: unknown key"},
    {"region country long",
     "{" CDNS2 ", \"regions\": [{\"name\": \"eu\", \"countries\": [\"SWE\"]}]}",
     "regions[0].countries[0]: must be a two-letter"},
    {"region country digits",
     "{" CDNS2 ", \"regions\": [{\"name\": \"eu\", \"countries\": [\"SE\", \"1A\"]}]}",
     "regions[0].countries[1]: must be a two-letter"},
    {"region countries not array",
     "{" CDNS2 ", \"regions\": [{\"name\": \"eu\", \"countries\": \"SE\"}]}",
     "regions[0].countries: must be an array"},
    {"region asn zero", "{" CDNS2 ", \"regions\": [{\"name\": \"eu\", \"asns\": [0]}]}",
     "regions[0].asns[0]: must be an integer in 1..4294967295"},
    {"region asn big", "{" CDNS2 ", \"regions\": [{\"name\": \"eu\", \"asns\": [4294967296]}]}",
     "regions[0].asns[0]: must be an integer in 1..4294967295"},
    {"region cidr bad",
     "{" CDNS2 ", \"regions\": [{\"name\": \"eu\", \"cidrs\": [\"192.0.2.0/33\"]}]}",
     "regions[0].cidrs[0]: must be an IPv4 or IPv6 CIDR"},
    {"default region bad", "{" CDNS2 ", \"default_region\": \"no way\"}",
     "default_region: must match"},
    {"default region number", "{" CDNS2 ", \"default_region\": 1}",
     "default_region: must be a string"},
    /* policy */
    {"policy not object", "{" CDNS2 ", \"policy\": []}", "policy: must be an object"},
    {"policy unknown key", "{" CDNS2 ", \"policy\": {\"mode\": \"rewrite\"}}",
     "policy.mode: unknown key"},
    {"policy rule unknown key", "{" CDNS2 ", \"policy\": {\"default\": {\"weights\": {}}}}",
     "policy.default.weights: unknown key"},
    {"policy default unknown cdn",
     "{" CDNS2 ", \"policy\": {\"default\": {\"cdns\": {\"gamma\": 1}}}}",
     "policy.default.cdns.gamma: unknown CDN id"},
    {"policy region unknown cdn",
     "{" CDNS2 ", \"regions\": [{\"name\": \"nordics\"}], \"policy\": {\"regions\": {\"nordics\":"
     " {\"cdns\": {\"alpha\": 3, \"gamma\": 1}}}}}",
     "policy.regions.nordics.cdns.gamma: unknown CDN id"},
    {"policy negative weight",
     "{" CDNS2 ", \"policy\": {\"default\": {\"cdns\": {\"alpha\": -1}}}}",
     "policy.default.cdns.alpha: must be an integer in 0..1000"},
    {"policy weight big", "{" CDNS2 ", \"policy\": {\"default\": {\"cdns\": {\"alpha\": 1001}}}}",
     "policy.default.cdns.alpha: must be an integer in 0..1000"},
    {"policy weight real", "{" CDNS2 ", \"policy\": {\"default\": {\"cdns\": {\"alpha\": 1.5}}}}",
     "policy.default.cdns.alpha: must be an integer"},
    {"policy cdns not object", "{" CDNS2 ", \"policy\": {\"default\": {\"cdns\": [\"alpha\"]}}}",
     "policy.default.cdns: must be an object"},
    {"policy failover unknown",
     "{" CDNS2 ", \"policy\": {\"default\": {\"failover\": [\"gamma\"]}}}",
     "policy.default.failover[0]: unknown CDN id \"gamma\""},
    {"policy failover duplicate",
     "{" CDNS2 ", \"policy\": {\"default\": {\"failover\": [\"beta\", \"beta\"]}}}",
     "policy.default.failover[1]: duplicate CDN id \"beta\""},
    {"policy failover not array",
     "{" CDNS2 ", \"policy\": {\"default\": {\"failover\": \"beta\"}}}",
     "policy.default.failover: must be an array"},
    {"policy failover number", "{" CDNS2 ", \"policy\": {\"default\": {\"failover\": [1]}}}",
     "policy.default.failover[0]: must be a CDN id string"},
    {"policy unknown region", "{" CDNS2 ", \"policy\": {\"regions\": {\"mars\": {}}}}",
     "policy.regions.mars: unknown region"},
    {"policy regions not object", "{" CDNS2 ", \"policy\": {\"regions\": []}}",
     "policy.regions: must be an object"},
    {"policy region rule not object", "{" CDNS2 ", \"policy\": {\"regions\": {\"world\": 1}}}",
     "policy.regions.world: must be an object"},
    {"policy default allows none",
     "{" CDNS2 ", \"policy\": {\"default\": {\"cdns\": {\"alpha\": 0}}}}",
     "policy.default: allows no CDN"},
    {"policy region allows none",
     "{" CDNS2 ", \"policy\": {\"regions\": {\"world\": {\"cdns\": {}, \"failover\": []}}}}",
     "policy.regions.world: allows no CDN"},
    {"max header line small", "{" CDNS2 ", \"http\": {\"max_header_line\": 100}}",
     "http.max_header_line: must be"},
    {"max header line type", "{" CDNS2 ", \"http\": {\"max_header_line\": \"8k\"}}",
     "http.max_header_line: must be"},
    {"policy manifest mode", "{" CDNS2 ", \"policy\": {\"manifest_mode\": \"proxy\"}}",
     "policy.manifest_mode: must be \"rewrite\", \"steering\" or \"redirect\""},
    {"policy manifest mode type", "{" CDNS2 ", \"policy\": {\"manifest_mode\": 1}}",
     "policy.manifest_mode: must be"},
    {"region manifest mode",
     "{" CDNS2 ", \"regions\": [{\"name\": \"r\", \"countries\": [\"SE\"]}], \"policy\": "
     "{\"regions\": {\"r\": {\"manifest_mode\": \"proxy\"}}}}",
     "policy.regions.r.manifest_mode: must be \"rewrite\", \"steering\" or \"redirect\""},
    {"paths not array", "{" CDNS2 ", \"policy\": {\"paths\": {}}}",
     "policy.paths: must be an array"},
    {"paths entry not object", "{" CDNS2 ", \"policy\": {\"paths\": [1]}}",
     "policy.paths[0]: must be an object"},
    {"paths prefix missing",
     "{" CDNS2 ", \"policy\": {\"paths\": [{\"manifest_mode\": \"rewrite\"}]}}",
     "policy.paths[0].prefix: required"},
    {"paths mode missing", "{" CDNS2 ", \"policy\": {\"paths\": [{\"prefix\": \"/live/\"}]}}",
     "policy.paths[0].manifest_mode: required"},
    {"paths unknown key",
     "{" CDNS2 ", \"policy\": {\"paths\": [{\"prefix\": \"/a/\", \"manifest_mode\": "
     "\"rewrite\", \"mode\": 1}]}}",
     "policy.paths[0].mode: unknown key"},
    {"paths bad mode",
     "{" CDNS2 ", \"policy\": {\"paths\": [{\"prefix\": \"/a/\", \"manifest_mode\": \"x\"}]}}",
     "policy.paths[0].manifest_mode: must be"},
    {"paths prefix relative",
     "{" CDNS2 ", \"policy\": {\"paths\": [{\"prefix\": \"live/\", \"manifest_mode\": "
     "\"rewrite\"}]}}",
     "policy.paths[0].prefix: must be a path prefix"},
    {"paths prefix dotdot",
     "{" CDNS2 ", \"policy\": {\"paths\": [{\"prefix\": \"/a/../b\", \"manifest_mode\": "
     "\"rewrite\"}]}}",
     "policy.paths[0].prefix: must be a path prefix"},
    {"paths prefix double slash",
     "{" CDNS2 ", \"policy\": {\"paths\": [{\"prefix\": \"/a//b\", \"manifest_mode\": "
     "\"rewrite\"}]}}",
     "policy.paths[0].prefix: must be a path prefix"},
    {"paths prefix percent",
     "{" CDNS2 ", \"policy\": {\"paths\": [{\"prefix\": \"/a%2F\", \"manifest_mode\": "
     "\"rewrite\"}]}}",
     "policy.paths[0].prefix: must be a path prefix"},
    {"paths prefix query",
     "{" CDNS2 ", \"policy\": {\"paths\": [{\"prefix\": \"/a?x\", \"manifest_mode\": "
     "\"rewrite\"}]}}",
     "policy.paths[0].prefix: must be a path prefix"},
    {"paths prefix space",
     "{" CDNS2 ", \"policy\": {\"paths\": [{\"prefix\": \"/a b\", \"manifest_mode\": "
     "\"rewrite\"}]}}",
     "policy.paths[0].prefix: must be a path prefix"},
    {"paths prefix type",
     "{" CDNS2 ", \"policy\": {\"paths\": [{\"prefix\": 5, \"manifest_mode\": \"rewrite\"}]}}",
     "policy.paths[0].prefix: must be a path prefix"},
    /* http, log */
    {"http not object", "{" CDNS2 ", \"http\": 1}", "http: must be an object"},
    {"http max headers low", "{" CDNS2 ", \"http\": {\"max_headers\": 7}}",
     "http.max_headers: must be an integer in 8..100"},
    {"http max headers high", "{" CDNS2 ", \"http\": {\"max_headers\": 101}}",
     "http.max_headers: must be an integer in 8..100"},
    {"http keepalive high", "{" CDNS2 ", \"http\": {\"keepalive_timeout_ms\": 3600001}}",
     "http.keepalive_timeout_ms: must be an integer in 0..3600000"},
    {"http request line low", "{" CDNS2 ", \"http\": {\"max_request_line_bytes\": 255}}",
     "http.max_request_line_bytes: must be an integer in 256..65536"},
    {"http max connections zero", "{" CDNS2 ", \"http\": {\"max_connections\": 0}}",
     "http.max_connections: must be an integer in 1..1000000"},
    {"http cors space", "{" CDNS2 ", \"http\": {\"cors_allow_origin\": \"https://a b\"}}",
     "http.cors_allow_origin: must be"},
    {"http cors quote", "{" CDNS2 ", \"http\": {\"cors_allow_origin\": \"https://a\\\"b\"}}",
     "http.cors_allow_origin: must be"},
    {"http cors empty", "{" CDNS2 ", \"http\": {\"cors_allow_origin\": \"\"}}",
     "http.cors_allow_origin: must be"},
    {"http cache control CRLF",
     "{" CDNS2 ", \"http\": {\"redirect_cache_control\": \"no-store\\r\\nSet-Cookie: a=b\"}}",
     "http.redirect_cache_control: must be printable ASCII"},
    {"http cache control null", "{" CDNS2 ", \"http\": {\"redirect_cache_control\": null}}",
     "http.redirect_cache_control: must be a string"},
    {"http max body high", "{" CDNS2 ", \"http\": {\"max_body_bytes\": 1048577}}",
     "http.max_body_bytes: must be an integer in 0..1048576"},
    {"http max body negative", "{" CDNS2 ", \"http\": {\"max_body_bytes\": -1}}",
     "http.max_body_bytes: must be an integer in 0..1048576"},
    {"http body timeout low", "{" CDNS2 ", \"http\": {\"body_timeout_ms\": 99}}",
     "http.body_timeout_ms: must be an integer in 100..600000"},
    {"http body timeout string", "{" CDNS2 ", \"http\": {\"body_timeout_ms\": \"10s\"}}",
     "http.body_timeout_ms: must be an integer in 100..600000"},
    {"http overload lag zero", "{" CDNS2 ", \"http\": {\"overload_lag_ms\": 0}}",
     "http.overload_lag_ms: must be an integer in 1..60000"},
    {"http overload lag high", "{" CDNS2 ", \"http\": {\"overload_lag_ms\": 60001}}",
     "http.overload_lag_ms: must be an integer in 1..60000"},
    {"http overload lag string", "{" CDNS2 ", \"http\": {\"overload_lag_ms\": \"50ms\"}}",
     "http.overload_lag_ms: must be an integer in 1..60000"},
    {"http overload percent zero", "{" CDNS2 ", \"http\": {\"overload_conn_percent\": 0}}",
     "http.overload_conn_percent: must be an integer in 1..100"},
    {"http overload percent high", "{" CDNS2 ", \"http\": {\"overload_conn_percent\": 101}}",
     "http.overload_conn_percent: must be an integer in 1..100"},
    {"http overload percent fraction", "{" CDNS2 ", \"http\": {\"overload_conn_percent\": 50.5}}",
     "http.overload_conn_percent: must be an integer in 1..100"},
    {"http overload recover negative", "{" CDNS2 ", \"http\": {\"overload_recover_ms\": -1}}",
     "http.overload_recover_ms: must be an integer in 0..600000"},
    {"http overload recover high", "{" CDNS2 ", \"http\": {\"overload_recover_ms\": 600001}}",
     "http.overload_recover_ms: must be an integer in 0..600000"},
    {"http overload unknown", "{" CDNS2 ", \"http\": {\"overload_level\": 1}}",
     "http.overload_level: unknown key"},
    /* beacon */
    {"beacon not object", "{" CDNS2 ", \"beacon\": true}", "beacon: must be an object"},
    {"beacon unknown", "{" CDNS2 ", \"beacon\": {\"rate\": 5}}", "beacon.rate: unknown key"},
    {"beacon rate zero", "{" CDNS2 ", \"beacon\": {\"rate_per_s\": 0}}",
     "beacon.rate_per_s: must be an integer in 1..1000000"},
    {"beacon rate fraction", "{" CDNS2 ", \"beacon\": {\"rate_per_s\": 2.5}}",
     "beacon.rate_per_s: must be an integer in 1..1000000"},
    {"beacon burst zero", "{" CDNS2 ", \"beacon\": {\"burst\": 0}}",
     "beacon.burst: must be an integer in 1..1000000"},
    {"beacon sources low", "{" CDNS2 ", \"beacon\": {\"max_sources\": 7}}",
     "beacon.max_sources: must be an integer in 8..10000000"},
    {"beacon queue low", "{" CDNS2 ", \"beacon\": {\"queue_per_worker\": 63}}",
     "beacon.queue_per_worker: must be an integer in 64..1048576"},
    {"beacon queue high", "{" CDNS2 ", \"beacon\": {\"queue_per_worker\": 1048577}}",
     "beacon.queue_per_worker: must be an integer in 64..1048576"},
    {"log level", "{" CDNS2 ", \"log\": {\"level\": \"verbose\"}}",
     "log.level: must be one of err, warn, notice, info, debug"},
    {"log file number", "{" CDNS2 ", \"log\": {\"file\": 5}}",
     "log.file: must be a string or null"},
    {"log unknown", "{" CDNS2 ", \"log\": {\"format\": \"json\"}}", "log.format: unknown key"},
    /* steering */
    {"steering not object", "{" CDNS2 ", \"steering\": 5}", "steering: must be an object"},
    {"steering unknown", "{" CDNS2 ", \"steering\": {\"ttl\": 5}}", "steering.ttl: unknown key"},
    {"steering ttl 0", "{" CDNS2 ", \"steering\": {\"ttl_s\": 0}}",
     "steering.ttl_s: must be an integer in 1..86400"},
    {"steering ttl max big", "{" CDNS2 ", \"steering\": {\"ttl_max_s\": 86401}}",
     "steering.ttl_max_s: must be an integer in 1..86400"},
    {"steering min > max", "{" CDNS2 ", \"steering\": {\"ttl_min_s\": 60, \"ttl_max_s\": 30}}",
     "steering.ttl_min_s: must not be greater than steering.ttl_max_s"},
    {"steering state ttl", "{" CDNS2 ", \"steering\": {\"state_ttl_s\": 59}}",
     "steering.state_ttl_s: must be an integer in 60..604800"},
    {"steering skew", "{" CDNS2 ", \"steering\": {\"clock_skew_s\": 3601}}",
     "steering.clock_skew_s: must be an integer in 0..3600"},
    {"steering qbs", "{" CDNS2 ", \"steering\": {\"query_before_start\": 1}}",
     "steering.query_before_start: must be true or false"},
    {"steering existing", "{" CDNS2 ", \"steering\": {\"existing_tag\": \"merge\"}}",
     "steering.existing_tag: must be \"replace\" or \"keep\""},
    {"steering key file empty", "{" CDNS2 ", \"steering\": {\"key_file\": \"\"}}",
     "steering.key_file: must be a non-empty path"},
    {"steering key file missing",
     "{" CDNS2 ", \"steering\": {\"key_file\": \"/nonexistent/steerd-keys.json\"}}",
     "steering.key_file: /nonexistent/steerd-keys.json: cannot read"},
    {"steering clones not array", "{" CDNS2 ", \"steering\": {\"clones\": {}}}",
     "steering.clones: must be an array"},
    {"steering clone no base", "{" CDNS2 ", \"steering\": {\"clones\": [{\"id\": \"c1\"}]}}",
     "steering.clones[0].base_id: required"},
    {"steering clone unknown base",
     "{" CDNS2 ", \"steering\": {\"clones\": [{\"id\": \"c1\", \"base_id\": \"gamma\"}]}}",
     "steering.clones[0]: base_id \"gamma\" is neither a CDN id nor an earlier clone"},
    {"steering clone id is cdn",
     "{" CDNS2 ", \"steering\": {\"clones\": [{\"id\": \"beta\", \"base_id\": \"alpha\"}]}}",
     "steering.clones[0]: id \"beta\" is already a CDN id"},
    {"steering clone dup",
     "{" CDNS2 ", \"steering\": {\"clones\": [{\"id\": \"c1\", \"base_id\": \"alpha\"},"
     " {\"id\": \"c1\", \"base_id\": \"alpha\"}]}}",
     "steering.clones[1]: duplicate clone id \"c1\""},
    {"steering clone host port",
     "{" CDNS2 ", \"steering\": {\"clones\": [{\"id\": \"c1\", \"base_id\": \"alpha\","
     " \"host\": \"h.example:8080\"}]}}",
     "steering.clones[0]: invalid clone"},
    {"steering clone param reserved",
     "{" CDNS2 ", \"steering\": {\"clones\": [{\"id\": \"c1\", \"base_id\": \"alpha\","
     " \"params\": {\"a\": \"x&y\"}}]}}",
     "steering.clones[0]: invalid clone"},
    {"steering clone param number",
     "{" CDNS2 ", \"steering\": {\"clones\": [{\"id\": \"c1\", \"base_id\": \"alpha\","
     " \"params\": {\"a\": 1}}]}}",
     "steering.clones[0].params.a: must be a string"},
    {"steering clone unknown key",
     "{" CDNS2 ", \"steering\": {\"clones\": [{\"id\": \"c1\", \"base_id\": \"alpha\","
     " \"uri\": \"x\"}]}}",
     "steering.clones[0].uri: unknown key"},
};

static void
test_cfg_manifest_and_origin_keys(void **state)
{
    (void)state;
    struct diag d;
    diag_init(&d);
    struct cfg *c = load_str(
        "{" CDNS2 ", \"origin\": {\"base_url\": \"http://127.0.0.1:9000/\", \"timeout_ms\": 100,"
        " \"connect_timeout_ms\": 60000, \"max_manifest_bytes\": 1024},"
        " \"manifest\": {\"vod_ttl_s\": 0, \"live_ttl_min_ms\": 60000, \"error_ttl_ms\": 0,"
        " \"cache_max_entries\": 1000000, \"cache_max_bytes\": 4294967296,"
        " \"redundant_streams\": false, \"public_base_url\": \"https://steer.example.com/s/\"}}",
        &d);
    if (c == NULL)
        print_diag("load", &d);
    assert_non_null(c);
    assert_string_equal(c->origin_base_url, "http://127.0.0.1:9000");
    assert_int_equal(c->origin.timeout_ms, 100);
    assert_int_equal(c->origin.connect_timeout_ms, 60000);
    assert_int_equal(c->origin.max_manifest_bytes, 1024);
    assert_int_equal(c->manifest.vod_ttl_s, 0);
    assert_int_equal(c->manifest.live_ttl_min_ms, 60000);
    assert_int_equal(c->manifest.error_ttl_ms, 0);
    assert_int_equal(c->manifest.cache_max_entries, 1000000);
    assert_true(c->manifest.cache_max_bytes == 4294967296ULL); /* above UINT32_MAX */
    assert_false(c->manifest.redundant_streams);
    /* the trailing '/' is stripped like every base URL's */
    assert_string_equal(c->manifest.public_base_url, "https://steer.example.com/s");
    cfg_free(c);

    /* the smallest cache, null public_base_url, redundant_streams true */
    c = load_str("{" CDNS2 ", \"manifest\": {\"cache_max_entries\": 1, \"cache_max_bytes\": "
                 "1048576, \"public_base_url\": null, \"redundant_streams\": true}}",
                 &d);
    assert_non_null(c);
    assert_int_equal(c->manifest.cache_max_entries, 1);
    assert_true(c->manifest.cache_max_bytes == 1048576);
    assert_null(c->manifest.public_base_url);
    assert_true(c->manifest.redundant_streams);
    /* origin keys are optional; without an origin object there is no base URL */
    assert_null(c->origin_base_url);
    assert_int_equal(c->origin.timeout_ms, 5000);
    cfg_free(c);
    assert_int_equal(d.count, 0);
    diag_free(&d);
}

static void
test_cfg_manifest_mode_by_path_and_region(void **state)
{
    (void)state;
    struct diag d;
    diag_init(&d);
    const char *json =
        "{" CDNS2 ", \"regions\": [{\"name\": \"se\", \"countries\": [\"SE\"]}, {\"name\": "
        "\"gb\", \"countries\": [\"GB\"]}], \"policy\": {\"manifest_mode\": \"rewrite\", "
        "\"regions\": {\"se\": {\"manifest_mode\": \"steering\"}}, \"paths\": [{\"prefix\": "
        "\"/live/\", \"manifest_mode\": \"redirect\"}, {\"prefix\": \"/live/special/\", "
        "\"manifest_mode\": \"rewrite\"}]}}";
    struct cfg *c = load_str(json, &d);
    if (c == NULL)
        print_diag("manifest modes", &d);
    assert_non_null(c);
    long se = cfg_region_index(c, "se"), gb = cfg_region_index(c, "gb");
    assert_true(se >= 0 && gb >= 0);
    assert_true(c->region_modes);
    assert_int_equal(c->npath_rules, 2);
#define MODE(path, region) cfg_manifest_mode_for(c, path, strlen(path), region)
    /* a path rule first (the first that matches), then the region, then the default */
    assert_int_equal(MODE("/live/a.m3u8", (uint32_t)se), CFG_MANIFEST_REDIRECT);
    assert_int_equal(MODE("/live/special/a.m3u8", (uint32_t)gb), CFG_MANIFEST_REDIRECT);
    assert_int_equal(MODE("/vod/a.m3u8", (uint32_t)se), CFG_MANIFEST_STEERING);
    assert_int_equal(MODE("/vod/a.m3u8", (uint32_t)gb), CFG_MANIFEST_REWRITE);
    assert_int_equal(MODE("/vod/a.m3u8", c->default_region), CFG_MANIFEST_REWRITE);
    assert_int_equal(MODE("/vod/a.m3u8", UINT32_MAX), CFG_MANIFEST_REWRITE);
    assert_int_equal(MODE("/liv", (uint32_t)se), CFG_MANIFEST_STEERING);
#undef MODE
    cfg_free(c);

    /* Without region modes no region lookup is needed. */
    c = load_str("{" CDNS2 ", \"policy\": {\"manifest_mode\": \"steering\"}}", &d);
    assert_non_null(c);
    assert_false(c->region_modes);
    assert_int_equal(c->npath_rules, 0);
    assert_int_equal(cfg_manifest_mode_for(c, "/a.mpd", 6, 0), CFG_MANIFEST_STEERING);
    cfg_free(c);
    /* policy.default's mode applies to every region without its own. */
    c = load_str("{" CDNS2 ", \"policy\": {\"default\": {\"manifest_mode\": \"redirect\"}}}", &d);
    assert_non_null(c);
    assert_true(c->region_modes);
    assert_int_equal(cfg_manifest_mode_for(c, "/a.mpd", 6, c->default_region),
                     CFG_MANIFEST_REDIRECT);
    cfg_free(c);
    diag_free(&d);
}

static void
test_cfg_steering_keys(void **state)
{
    struct tmp *t = *state;
    struct diag d;
    char json[1024];
    static const char good[] = "{\"current_kid\": 2, \"keys\": [{\"kid\": 1, \"key_hex\": "
                               "\"00112233445566778899aabbccddeeff\"}, {\"kid\": 2, \"key_hex\": "
                               "\"00112233445566778899AABBCCDDEEFF0011\"}]}";

    diag_init(&d);
    write_file(t->path, good, strlen(good));
    snprintf(json, sizeof(json),
             "{" CDNS2 ", \"steering\": {\"key_file\": \"%s\", \"ttl_s\": 7, \"clones\": "
             "[{\"id\": \"c1\", \"base_id\": \"alpha\", \"host\": \"h.example\", "
             "\"params\": {\"t\": \"1\"}}, {\"id\": \"c2\", \"base_id\": \"c1\"}]}}",
             t->path);
    struct cfg *c = load_str(json, &d);
    if (c == NULL)
        print_diag("good keys", &d);
    assert_non_null(c);
    assert_non_null(c->steering.keyring);
    assert_int_equal(steering_keyring_current(c->steering.keyring), 2);
    assert_int_equal(c->steering.ttl_s, 7);
    assert_int_equal(c->steering.ttl_min_s, 5);
    assert_int_equal(c->steering.ttl_max_s, 300);
    assert_int_equal(c->steering.nclones, 2);
    assert_string_equal(c->steering.clones[1].base_id, "c1");
    assert_int_equal(c->steering.clones[0].nparams, 1);
    cfg_free(c);

    /* group- or world-readable: refused */
    chmod(t->path, 0640);
    c = load_str(json, &d);
    assert_null(c);
    assert_true(diag_has(&d, "must not be readable by group or others"));
    diag_free(&d);
    chmod(t->path, 0600);

    static const struct {
        const char *body, *expect;
    } bad[] = {
        {"[]", "must be {\"current_kid\": N"},
        {"{\"current_kid\": 1}", "must be {\"current_kid\": N"},
        {"{\"current_kid\": 1, \"keys\": []}", "keys: must have 1..8 entries"},
        {"{\"current_kid\": 3, \"keys\": [{\"kid\": 1, \"key_hex\": "
         "\"00112233445566778899aabbccddeeff\"}]}",
         "current_kid: must be the kid of one of the keys"},
        {"{\"current_kid\": 1, \"keys\": [{\"kid\": 0, \"key_hex\": "
         "\"00112233445566778899aabbccddeeff\"}]}",
         "keys[0].kid: must be an integer in 1..255"},
        {"{\"current_kid\": 1, \"keys\": [{\"kid\": 1, \"key_hex\": \"0011\"}]}",
         "keys[0].key_hex: must be 32..128 hex digits"},
        {"{\"current_kid\": 1, \"keys\": [{\"kid\": 1, \"key_hex\": "
         "\"zz112233445566778899aabbccddeeff\"}]}",
         "keys[0].key_hex: must be hex digits"},
        {"{\"current_kid\": 1, \"keys\": [{\"kid\": 1, \"key_hex\": "
         "\"00112233445566778899aabbccddeeff\"}, {\"kid\": 1, \"key_hex\": "
         "\"00112233445566778899aabbccddeeff\"}]}",
         "keys[1].kid: duplicate key id 1"},
        {"{\"current_kid\": 1, \"keys\": [{\"kid\": 1}]}", "keys[0]: must be {\"kid\""},
        {"{not json", "not valid JSON"},
    };
    for (size_t i = 0; i < UTIL_ARRAY_LEN(bad); i++) {
        diag_init(&d);
        write_file(t->path, bad[i].body, strlen(bad[i].body));
        c = load_str(json, &d);
        if (c != NULL || !diag_has(&d, bad[i].expect)) {
            print_message("key file case %zu: expected \"%s\"\n", i, bad[i].expect);
            print_diag("got", &d);
        }
        assert_null(c);
        assert_true(diag_has(&d, bad[i].expect));
        /* key material never reaches a message */
        assert_false(diag_has(&d, "00112233"));
        diag_free(&d);
    }
}

static void
test_cfg_rejects_bad_configs(void **state)
{
    (void)state;
    for (size_t i = 0; i < UTIL_ARRAY_LEN(bad_cases); i++) {
        struct diag d;
        diag_init(&d);
        struct cfg *c = load_str(bad_cases[i].json, &d);
        if (c != NULL || !diag_has(&d, bad_cases[i].expect)) {
            print_message("case \"%s\": expected \"%s\"\n", bad_cases[i].name, bad_cases[i].expect);
            print_diag("got", &d);
        }
        assert_null(c);
        assert_true(diag_has(&d, bad_cases[i].expect));
        diag_free(&d);
    }
}

static void
test_cfg_rejects_long_strings(void **state)
{
    (void)state;
    struct buf b;
    struct diag d;

    /* a base URL one byte over CFG_URL_MAX */
    buf_init(&b, 0);
    buf_puts(&b, "{\"cdns\": [{\"id\": \"a\", \"base_url\": \"http://h/");
    for (size_t i = strlen("http://h/"); i < CFG_URL_MAX + 1; i++)
        buf_puts(&b, "x");
    buf_puts(&b, "\"}]}");
    diag_init(&d);
    assert_null(load_str(b.data, &d));
    assert_true(diag_has(&d, "cdns[0].base_url: must be at most 1024 bytes"));
    diag_free(&d);
    buf_free(&b);

    /* redirect_cache_control of 257 characters */
    buf_init(&b, 0);
    buf_puts(&b, "{" CDNS2 ", \"http\": {\"redirect_cache_control\": \"");
    for (size_t i = 0; i < 257; i++)
        buf_puts(&b, "a");
    buf_puts(&b, "\"}}");
    diag_init(&d);
    assert_null(load_str(b.data, &d));
    assert_true(diag_has(&d, "http.redirect_cache_control: must be 1..256"));
    diag_free(&d);
    buf_free(&b);

    /* 65 CDNs */
    buf_init(&b, 0);
    buf_puts(&b, "{\"cdns\": [");
    for (size_t i = 0; i < CFG_MAX_CDNS + 1; i++)
        buf_printf(&b, "%s{\"id\": \"c%zu\", \"base_url\": \"http://h\"}", i ? "," : "", i);
    buf_puts(&b, "]}");
    diag_init(&d);
    assert_null(load_str(b.data, &d));
    assert_true(diag_has(&d, "cdns: must have 1..64 entries"));
    diag_free(&d);
    buf_free(&b);
}

static void
test_cfg_one_bad_cdn_of_five_rejects_all(void **state)
{
    (void)state;
    struct diag d;
    diag_init(&d);
    struct cfg *c = load_str(
        "{" ALLOW_LOOPBACK
        "\"cdns\": [" CDN("a", "http://127.0.0.1:9001") "," CDN("b", "http://127.0.0.1:9002") "," CDN(
            "c", "http://127.0.0.1:9003") "," CDN("d",
                                                  "gopher://127.0.0.1:9004") "," CDN("e",
                                                                                     "http://"
                                                                                     "127.0.0.1:"
                                                                                     "9005") "]}",
        &d);
    assert_null(c);
    assert_int_equal(d.count, 1);
    assert_true(diag_has(&d, "cdns[3].base_url: scheme must be http or https"));
    diag_free(&d);
}

static void
test_cfg_reports_every_error(void **state)
{
    (void)state;
    struct diag d;
    diag_init(&d);
    struct cfg *c = load_str(
        "{" ALLOW_LOOPBACK "\"cdns\": [" CDN("alpha", "http://127.0.0.1:9001") "," CDN(
            "Beta",
            "file:///x") "],"
                         " \"workers\": 100, \"bogus\": true, \"http\": {\"max_headers\": 1},"
                         " \"policy\": {\"default\": {\"cdns\": {\"alpha\": -5, \"zeta\": 1}}}}",
        &d);
    assert_null(c);
    static const char *const want[] = {
        "bogus: unknown key",
        "workers: must be an integer in 0..64",
        "cdns[1].id: must match",
        "cdns[1].base_url: scheme must be http or https",
        "policy.default.cdns.alpha: must be an integer in 0..1000",
        "policy.default.cdns.zeta: unknown CDN id",
        "http.max_headers: must be an integer in 8..100",
    };
    for (size_t i = 0; i < UTIL_ARRAY_LEN(want); i++) {
        if (!diag_has(&d, want[i]))
            print_diag(want[i], &d);
        assert_true(diag_has(&d, want[i]));
    }
    /* policy.default also allows no CDN here (alpha rejected, zeta unknown, beta unnamed) */
    assert_int_equal(d.count, UTIL_ARRAY_LEN(want) + 1);
    diag_free(&d);
}

static void
test_cfg_appends_to_existing_diag(void **state)
{
    (void)state;
    struct diag d;
    diag_init(&d);
    diag_add(&d, "earlier: line");
    struct cfg *c = load_str("{" CDNS2 "}", &d);
    assert_non_null(c); /* an earlier line in d does not fail this load */
    cfg_free(c);
    assert_int_equal(d.count, 1);
    diag_free(&d);
}

/* ---- JSON syntax and file problems ---- */

static void
test_cfg_load_string_syntax_errors(void **state)
{
    (void)state;
    struct diag d;

    diag_init(&d);
    {
        const char *bad = "{\n  \"workers\": 1,\n  \"cdns\" [] }";
        assert_null(cfg_load_string(bad, strlen(bad), "conf.json", &d));
    }
    assert_int_equal(d.count, 1);
    assert_non_null(strstr(d.lines[0], "conf.json:3:"));
    assert_non_null(strstr(d.lines[0], "':' expected"));
    diag_free(&d);

    diag_init(&d);
    assert_null(cfg_load_string(NULL, 0, "none.json", &d));
    assert_int_equal(d.count, 1);
    assert_non_null(strstr(d.lines[0], "none.json:1:"));
    diag_free(&d);

    diag_init(&d);
    assert_null(cfg_load_string("{}", (size_t)CFG_MAX_FILE_BYTES + 1, "huge.json", &d));
    assert_true(diag_has(&d, "huge.json: larger than"));
    diag_free(&d);

    diag_init(&d);
    assert_null(load_str("{\"cdns\": [], \"x\": \"\\u0000\"}", &d));
    assert_true(diag_has(&d, "<test>:1:"));
    diag_free(&d);

    diag_init(&d);
    assert_null(load_str("{\"workers\": 99999999999999999999999}", &d));
    assert_true(diag_has(&d, "<test>:1:"));
    assert_true(diag_has(&d, "too big integer"));
    diag_free(&d);
}

static void
test_cfg_load_file_syntax_error_has_line_col(void **state)
{
    struct tmp *t = *state;
    const char *text = "{\n  \"cdns\": [\n    {\"id\": \"a\" \"base_url\": \"http://h\"}\n  ]\n}\n";
    write_file(t->path, text, strlen(text));
    struct diag d;
    diag_init(&d);
    assert_null(cfg_load(t->path, &d));
    assert_int_equal(d.count, 1);
    char want[256];
    snprintf(want, sizeof(want), "%s:3:", t->path);
    assert_ptr_equal(strstr(d.lines[0], want), d.lines[0]);
    int line = 0, col = 0;
    assert_int_equal(sscanf(d.lines[0] + strlen(t->path), ":%d:%d:", &line, &col), 2);
    assert_int_equal(line, 3);
    assert_true(col > 10);
    diag_free(&d);
}

static void
test_cfg_load_file_duplicate_key(void **state)
{
    struct tmp *t = *state;
    const char *text = "{\n  \"workers\": 1,\n  \"workers\": 2,\n  " CDNS2 "\n}\n";
    write_file(t->path, text, strlen(text));
    struct diag d;
    diag_init(&d);
    assert_null(cfg_load(t->path, &d));
    assert_int_equal(d.count, 1);
    char want[256];
    snprintf(want, sizeof(want), "%s:3:", t->path);
    assert_ptr_equal(strstr(d.lines[0], want), d.lines[0]);
    assert_non_null(strstr(d.lines[0], "duplicate object key"));
    diag_free(&d);

    /* duplicates deep inside are caught as well */
    text = "{" CDNS2 ", \"policy\": {\"default\": {\"cdns\": {\"alpha\": 1, \"alpha\": 0}}}}";
    diag_init(&d);
    assert_null(load_str(text, &d));
    assert_true(diag_has(&d, "duplicate object key"));
    diag_free(&d);
}

static void
test_cfg_load_file_truncated(void **state)
{
    struct tmp *t = *state;
    size_t len;
    char *text = read_fixture("cfg/full.json", &len);
    write_file(t->path, text, len / 2);
    free(text);
    struct diag d;
    diag_init(&d);
    assert_null(cfg_load(t->path, &d));
    assert_int_equal(d.count, 1);
    int line = 0, col = 0;
    assert_ptr_equal(strstr(d.lines[0], t->path), d.lines[0]);
    assert_int_equal(sscanf(d.lines[0] + strlen(t->path), ":%d:%d:", &line, &col), 2);
    assert_true(line > 1);
    assert_non_null(strstr(d.lines[0], "end of file"));
    diag_free(&d);
}

static void
test_cfg_load_file_empty(void **state)
{
    struct tmp *t = *state;
    write_file(t->path, "", 0);
    struct diag d;
    diag_init(&d);
    assert_null(cfg_load(t->path, &d));
    assert_int_equal(d.count, 1);
    char want[256];
    snprintf(want, sizeof(want), "%s:1:", t->path);
    assert_ptr_equal(strstr(d.lines[0], want), d.lines[0]);
    assert_non_null(strstr(d.lines[0], "expected near end of file"));
    diag_free(&d);
}

static void
test_cfg_load_file_missing(void **state)
{
    struct tmp *t = *state;
    char path[256];
    snprintf(path, sizeof(path), "%s/does-not-exist.json", t->dir);
    struct diag d;
    diag_init(&d);
    assert_null(cfg_load(path, &d));
    assert_int_equal(d.count, 1);
    char want[300];
    snprintf(want, sizeof(want), "%s: cannot read: No such file or directory", path);
    assert_string_equal(d.lines[0], want);
    diag_free(&d);

    diag_init(&d);
    assert_null(cfg_load(t->dir, &d));
    assert_int_equal(d.count, 1);
    assert_non_null(strstr(d.lines[0], ": cannot read: "));
    diag_free(&d);
}

static void
test_cfg_load_file_too_large(void **state)
{
    struct tmp *t = *state;
    int fd = open(t->path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "{", 1), 1);
    /* sparse: no 16 MiB of real data is written or read */
    assert_int_equal(ftruncate(fd, (off_t)CFG_MAX_FILE_BYTES + 1), 0);
    close(fd);
    struct diag d;
    diag_init(&d);
    assert_null(cfg_load(t->path, &d));
    assert_int_equal(d.count, 1);
    assert_ptr_equal(strstr(d.lines[0], t->path), d.lines[0]);
    assert_non_null(strstr(d.lines[0], "too large"));
    diag_free(&d);
}

static void
test_cfg_load_file_unreadable(void **state)
{
    struct tmp *t = *state;
    if (geteuid() == 0) {
        skip(); /* root reads mode-000 files */
        return;
    }
    const char *text = "{" CDNS2 "}";
    write_file(t->path, text, strlen(text));
    assert_int_equal(chmod(t->path, 0), 0);
    struct diag d;
    diag_init(&d);
    assert_null(cfg_load(t->path, &d));
    assert_int_equal(d.count, 1);
    char want[300];
    snprintf(want, sizeof(want), "%s: cannot read: Permission denied", t->path);
    assert_string_equal(d.lines[0], want);
    diag_free(&d);
}

static void
test_cfg_load_file_good(void **state)
{
    struct tmp *t = *state;
    const char *text = "{" CDNS2 "}";
    write_file(t->path, text, strlen(text));
    struct diag d;
    diag_init(&d);
    struct cfg *c = cfg_load(t->path, &d);
    assert_non_null(c);
    assert_string_equal(c->path, t->path);
    assert_int_equal(d.count, 0);
    cfg_free(c);
    diag_free(&d);
}

/* ---- small API ---- */

static void
test_cfg_split_hostport(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int rc;
        const char *host;
        uint16_t port;
    } cases[] = {
        {"127.0.0.1:8080", 0, "127.0.0.1", 8080},
        {"0.0.0.0:0", 0, "0.0.0.0", 0},
        {"[::1]:443", 0, "::1", 443},
        {"[2001:db8::1]:65535", 0, "2001:db8::1", 65535},
        {"[::ffff:127.0.0.1]:80", 0, "::ffff:127.0.0.1", 80},
        {"127.0.0.1:65536", -1, NULL, 0},
        {"127.0.0.1:", -1, NULL, 0},
        {"127.0.0.1", -1, NULL, 0},
        {":80", -1, NULL, 0},
        {"127.0.0.1:080", -1, NULL, 0},
        {"127.0.0.1:+80", -1, NULL, 0},
        {"127.0.0.1:8080x", -1, NULL, 0},
        {"localhost:80", -1, NULL, 0},
        {"127.1:80", -1, NULL, 0},
        {"::1:80", -1, NULL, 0},
        {"[::1]80", -1, NULL, 0},
        {"[::1]", -1, NULL, 0},
        {"[]:80", -1, NULL, 0},
        {"[127.0.0.1]:80", -1, NULL, 0},
        {"[fe80::1%eth0]:80", -1, NULL, 0},
        {"", -1, NULL, 0},
    };
    for (size_t i = 0; i < UTIL_ARRAY_LEN(cases); i++) {
        char host[64] = "unchanged";
        uint16_t port = 1;
        int rc = cfg_split_hostport(cases[i].in, host, sizeof(host), &port);
        if (rc != cases[i].rc)
            print_message("case \"%s\"\n", cases[i].in);
        assert_int_equal(rc, cases[i].rc);
        if (rc == 0) {
            assert_string_equal(host, cases[i].host);
            assert_int_equal(port, cases[i].port);
        }
    }
    /* host buffer too small */
    char small[4];
    uint16_t port;
    assert_int_equal(cfg_split_hostport("127.0.0.1:80", small, sizeof(small), &port), -1);
    assert_int_equal(cfg_split_hostport(NULL, small, sizeof(small), &port), -1);
    /* validation only */
    assert_int_equal(cfg_split_hostport("[::1]:80", NULL, 0, NULL), 0);
}

static void
test_cfg_free_and_index_accept_null(void **state)
{
    (void)state;
    cfg_free(NULL);
    assert_int_equal(cfg_cdn_index(NULL, "a"), -1);
    assert_int_equal(cfg_region_index(NULL, "a"), -1);
}

/* ---- the scoring engine's keys ---- */

#define REG2                                                                                       \
    "\"regions\": [{\"name\": \"eu\", \"countries\": [\"DE\"]}, {\"name\": \"us\", "               \
    "\"countries\": [\"US\"]}]"
#define PCDN(cost)                                                                                 \
    "\"cdns\":[{\"id\": \"alpha\", \"base_url\": \"http://127.0.0.1:9001\", \"cost\": " cost "}]"
#define PROBE_CDN(probe)                                                                           \
    "\"cdns\":[{\"id\": \"alpha\", \"base_url\": \"http://127.0.0.1:9001\", \"probe\": " probe "}" \
    "]"

static void
test_cfg_engine_off_by_default(void **state)
{
    (void)state;
    struct diag d;
    diag_init(&d);
    struct cfg *c = load_str("{" CDNS2 ", \"policy\": {}}", &d);
    assert_non_null(c);
    assert_false(c->score.enabled);
    assert_true(c->decision_log_sample == 0);
    assert_false(c->cdns[0].cost.priced);
    assert_true(c->cdns[0].cost.month_used_gb < 0);
    assert_int_equal(c->cdns[0].probe.nregional, 0);
    /* defaults as score.h / obs.h document them */
    assert_true(c->score.quality_bar == 0.9 && c->score.max_shift == 0.2);
    assert_int_equal(c->score.interval_ms, 60000);
    assert_int_equal(c->observe.probe_half_life_ms, 60000);
    assert_true(c->observe.tp_target_bps == 5e6);
    assert_true(c->traffic.bitrate_bps == 3e6);
    assert_int_equal(c->traffic.session_s, 300);
    cfg_free(c);
    diag_free(&d);
}

static void
test_cfg_engine_keys(void **state)
{
    (void)state;
    struct diag d;
    diag_init(&d);
    struct cfg *c = load_str(
        "{" ALLOW_LOOPBACK REG2
        ", \"cdns\": [{\"id\": \"alpha\", \"base_url\": \"http://127.0.0.1:9001\","
        " \"probe\": {\"url\": \"http://127.0.0.1:9001/p\", \"regions\": {\"eu\": "
        "\"http://127.0.0.1:9003/eu\"}},"
        " \"cost\": {\"tiers\": [{\"up_to_gb\": 100, \"price_per_gb\": 0.02}, {\"price_per_gb\": "
        "0.01}], \"commit\": {\"type\": \"gb_month\", \"amount\": 500, \"fee\": 5, "
        "\"burst_price\": 0.03}, \"capacity_gbps\": 40, \"month_used_gb\": 12.5}},"
        " {\"id\": \"beta\", \"base_url\": \"http://127.0.0.1:9002\", \"cost\": {\"commit\": "
        "{\"type\": \"p95_gbps\", \"amount\": 2.5, \"burst_price\": 100}}}],"
        " \"policy\": {\"decision_log_sample\": 0.25, \"score\": {\"w_throughput\": 3, "
        "\"cost_weight\": 1, \"quality_bar\": 0.8, \"hysteresis\": 0, \"max_shift\": 1, "
        "\"exploration\": 0.5, \"interval_ms\": 100, \"latency_good_ms\": 0, "
        "\"latency_bad_ms\": 200, \"spill_at\": 1, \"flap_half_life_ms\": 0, "
        "\"flap_suppress\": 3, \"flap_reuse\": 0.01, \"probe_tp_target_bps\": 8e6},"
        " \"observe\": {\"probe_half_life_ms\": 100, \"beacon_half_life_ms\": 1000, "
        "\"beacon_window_ms\": 0, \"beacon_max_step\": 1, \"tp_target_bps\": 1e7, "
        "\"starvation_bad\": 1, \"error_bad\": 0.5}, \"traffic\": {\"bitrate_bps\": 6000000, "
        "\"session_s\": 60}}}",
        &d);
    if (c == NULL)
        print_diag("load", &d);
    assert_non_null(c);
    assert_true(c->score.enabled);
    assert_true(c->score.w_throughput == 3 && c->score.w_rebuffer == 2);
    assert_true(c->score.cost_weight == 1 && c->score.exploration == 0.5);
    assert_int_equal(c->score.interval_ms, 100);
    assert_true(c->score.probe_tp_target_bps == 8e6);
    assert_int_equal(c->observe.beacon_window_ms, 0);
    assert_true(c->observe.error_bad == 0.5);
    assert_true(c->traffic.bitrate_bps == 6e6);
    assert_int_equal(c->traffic.session_s, 60);
    assert_true(c->decision_log_sample == 0.25);
    const struct cfg_cdn *a = &c->cdns[0], *b = &c->cdns[1];
    assert_int_equal(a->probe.nregional, 1);
    assert_int_equal(a->probe.regional[0].region, 0);
    assert_string_equal(a->probe.regional[0].url, "http://127.0.0.1:9003/eu");
    assert_true(a->cost.priced);
    assert_int_equal(a->cost.ntiers, 2);
    assert_true(a->cost.tier_up_to_gb[0] == 100 && a->cost.tier_price_per_gb[1] == 0.01);
    assert_true(a->cost.tier_up_to_gb[1] == 100); /* open last tier */
    assert_int_equal(a->cost.commit, CFG_COMMIT_GB);
    assert_true(a->cost.commit_amount == 500 && a->cost.commit_fee == 5);
    assert_true(a->cost.burst_price == 0.03 && a->cost.capacity_gbps == 40);
    assert_true(a->cost.month_used_gb == 12.5);
    assert_int_equal(b->cost.commit, CFG_COMMIT_P95_GBPS);
    assert_true(b->cost.commit_amount == 2.5 && b->cost.burst_price == 100);
    assert_int_equal(b->cost.ntiers, 0);
    cfg_free(c);
    assert_int_equal(d.count, 0);
    diag_free(&d);
}

static const struct {
    const char *name, *json, *expect;
} engine_bad_cases[] = {
    {"score not object", "{" CDNS2 ", \"policy\": {\"score\": 1}}",
     "policy.score: must be an object"},
    {"score unknown", "{" CDNS2 ", \"policy\": {\"score\": {\"w_speed\": 1}}}",
     "policy.score.w_speed: unknown key"},
    {"score weight negative", "{" CDNS2 ", \"policy\": {\"score\": {\"w_latency\": -1}}}",
     "policy.score.w_latency: must be a number in 0..100"},
    {"score weight string", "{" CDNS2 ", \"policy\": {\"score\": {\"w_rebuffer\": \"2\"}}}",
     "policy.score.w_rebuffer: must be a number"},
    {"score weights all zero",
     "{" CDNS2 ", \"policy\": {\"score\": {\"w_throughput\": 0, \"w_rebuffer\": 0, "
     "\"w_latency\": 0, \"w_availability\": 0}}}",
     "must not all be 0"},
    {"cost weight", "{" CDNS2 ", \"policy\": {\"score\": {\"cost_weight\": 1.5}}}",
     "policy.score.cost_weight: must be a number in 0..1"},
    {"quality bar", "{" CDNS2 ", \"policy\": {\"score\": {\"quality_bar\": -0.1}}}",
     "policy.score.quality_bar: must be"},
    {"hysteresis", "{" CDNS2 ", \"policy\": {\"score\": {\"hysteresis\": 2}}}",
     "policy.score.hysteresis: must be"},
    {"max shift", "{" CDNS2 ", \"policy\": {\"score\": {\"max_shift\": true}}}",
     "policy.score.max_shift: must be"},
    {"exploration", "{" CDNS2 ", \"policy\": {\"score\": {\"exploration\": 0.6}}}",
     "policy.score.exploration: must be a number in 0..0.5"},
    {"interval low", "{" CDNS2 ", \"policy\": {\"score\": {\"interval_ms\": 99}}}",
     "policy.score.interval_ms: must be an integer in 100..3600000"},
    {"interval float", "{" CDNS2 ", \"policy\": {\"score\": {\"interval_ms\": 1000.5}}}",
     "policy.score.interval_ms: must be an integer"},
    {"latency good", "{" CDNS2 ", \"policy\": {\"score\": {\"latency_good_ms\": -5}}}",
     "policy.score.latency_good_ms: must be"},
    {"latency order",
     "{" CDNS2 ", \"policy\": {\"score\": {\"latency_good_ms\": 500, \"latency_bad_ms\": 500}}}",
     "policy.score.latency_bad_ms: must be above latency_good_ms"},
    {"spill at", "{" CDNS2 ", \"policy\": {\"score\": {\"spill_at\": 0}}}",
     "policy.score.spill_at: must be a number in 0.01..1"},
    {"flap half life", "{" CDNS2 ", \"policy\": {\"score\": {\"flap_half_life_ms\": -1}}}",
     "policy.score.flap_half_life_ms: must be an integer"},
    {"flap order",
     "{" CDNS2 ", \"policy\": {\"score\": {\"flap_suppress\": 0.5, \"flap_reuse\": 1}}}",
     "policy.score.flap_suppress: must be above flap_reuse"},
    {"flap suppress", "{" CDNS2 ", \"policy\": {\"score\": {\"flap_suppress\": 0}}}",
     "policy.score.flap_suppress: must be a number in 0.1..100"},
    {"flap reuse", "{" CDNS2 ", \"policy\": {\"score\": {\"flap_reuse\": 101}}}",
     "policy.score.flap_reuse: must be"},
    {"probe tp target", "{" CDNS2 ", \"policy\": {\"score\": {\"probe_tp_target_bps\": -1}}}",
     "policy.score.probe_tp_target_bps: must be"},
    {"observe not object", "{" CDNS2 ", \"policy\": {\"observe\": []}}",
     "policy.observe: must be an object"},
    {"observe unknown", "{" CDNS2 ", \"policy\": {\"observe\": {\"window\": 1}}}",
     "policy.observe.window: unknown key"},
    {"probe half life", "{" CDNS2 ", \"policy\": {\"observe\": {\"probe_half_life_ms\": 0}}}",
     "policy.observe.probe_half_life_ms: must be an integer in 100..86400000"},
    {"beacon half life", "{" CDNS2 ", \"policy\": {\"observe\": {\"beacon_half_life_ms\": 50}}}",
     "policy.observe.beacon_half_life_ms: must be"},
    {"beacon window", "{" CDNS2 ", \"policy\": {\"observe\": {\"beacon_window_ms\": 86400001}}}",
     "policy.observe.beacon_window_ms: must be"},
    {"beacon step", "{" CDNS2 ", \"policy\": {\"observe\": {\"beacon_max_step\": 1.01}}}",
     "policy.observe.beacon_max_step: must be"},
    {"tp target", "{" CDNS2 ", \"policy\": {\"observe\": {\"tp_target_bps\": 0}}}",
     "policy.observe.tp_target_bps: must be"},
    {"starvation bad", "{" CDNS2 ", \"policy\": {\"observe\": {\"starvation_bad\": 0}}}",
     "policy.observe.starvation_bad: must be"},
    {"error bad", "{" CDNS2 ", \"policy\": {\"observe\": {\"error_bad\": 2}}}",
     "policy.observe.error_bad: must be"},
    {"traffic unknown", "{" CDNS2 ", \"policy\": {\"traffic\": {\"viewers\": 2}}}",
     "policy.traffic.viewers: unknown key"},
    {"bitrate", "{" CDNS2 ", \"policy\": {\"traffic\": {\"bitrate_bps\": 10}}}",
     "policy.traffic.bitrate_bps: must be"},
    {"session", "{" CDNS2 ", \"policy\": {\"traffic\": {\"session_s\": 0}}}",
     "policy.traffic.session_s: must be"},
    {"log sample", "{" CDNS2 ", \"policy\": {\"decision_log_sample\": 1.5}}",
     "policy.decision_log_sample: must be a number in 0..1"},
    {"log sample string", "{" CDNS2 ", \"policy\": {\"decision_log_sample\": \"all\"}}",
     "policy.decision_log_sample: must be"},
    {"cost not object", "{" PCDN("[]") "}", "cdns[0].cost: must be an object"},
    {"cost unknown", "{" PCDN("{\"price\": 1}") "}", "cdns[0].cost.price: unknown key"},
    {"capacity", "{" PCDN("{\"capacity_gbps\": -1}") "}", "cdns[0].cost.capacity_gbps: must be"},
    {"month used", "{" PCDN("{\"month_used_gb\": -2}") "}", "cdns[0].cost.month_used_gb: must be"},
    {"tiers empty", "{" PCDN("{\"tiers\": []}") "}",
     "cdns[0].cost.tiers: must be an array of 1..8"},
    {"tiers object", "{" PCDN("{\"tiers\": {}}") "}", "cdns[0].cost.tiers: must be an array"},
    {"tiers too many",
     "{" PCDN(
         "{\"tiers\": [{\"up_to_gb\":1,\"price_per_gb\":1},{\"up_to_gb\":2,\"price_per_gb\":1},"
         "{\"up_to_gb\":3,\"price_per_gb\":1},{\"up_to_gb\":4,\"price_per_gb\":1},"
         "{\"up_to_gb\":5,\"price_per_gb\":1},{\"up_to_gb\":6,\"price_per_gb\":1},"
         "{\"up_to_gb\":7,\"price_per_gb\":1},{\"up_to_gb\":8,\"price_per_gb\":1},"
         "{\"price_per_gb\":1}]}") "}",
     "cdns[0].cost.tiers: must be an array of 1..8"},
    {"tier price missing", "{" PCDN("{\"tiers\": [{\"up_to_gb\": 10}]}") "}",
     "cdns[0].cost.tiers[0].price_per_gb: required"},
    {"tier price negative", "{" PCDN("{\"tiers\": [{\"price_per_gb\": -0.01}]}") "}",
     "cdns[0].cost.tiers[0].price_per_gb: must be"},
    {"tier unknown", "{" PCDN("{\"tiers\": [{\"price_per_gb\": 1, \"from\": 0}]}") "}",
     "cdns[0].cost.tiers[0].from: unknown key"},
    {"tier bound missing",
     "{" PCDN("{\"tiers\": [{\"price_per_gb\": 1}, {\"price_per_gb\": 0.5}]}") "}",
     "cdns[0].cost.tiers[0].up_to_gb: required except in the last tier"},
    {"tier bound order",
     "{" PCDN("{\"tiers\": [{\"up_to_gb\": 10, \"price_per_gb\": 1}, {\"up_to_gb\": 10, "
              "\"price_per_gb\": 0.5}]}") "}",
     "cdns[0].cost.tiers[1].up_to_gb: must be above the previous tier's"},
    {"commit type missing", "{" PCDN("{\"commit\": {\"amount\": 1}}") "}",
     "cdns[0].cost.commit.type: required"},
    {"commit type bad", "{" PCDN("{\"commit\": {\"type\": \"monthly\", \"amount\": 1}}") "}",
     "cdns[0].cost.commit.type: must be \"p95_gbps\" or \"gb_month\""},
    {"commit amount missing", "{" PCDN("{\"commit\": {\"type\": \"gb_month\"}}") "}",
     "cdns[0].cost.commit.amount: required"},
    {"commit amount zero", "{" PCDN("{\"commit\": {\"type\": \"gb_month\", \"amount\": 0}}") "}",
     "cdns[0].cost.commit.amount: must be"},
    {"commit fee",
     "{" PCDN("{\"commit\": {\"type\": \"gb_month\", \"amount\": 1, \"fee\": -1}}") "}",
     "cdns[0].cost.commit.fee: must be"},
    {"commit burst",
     "{" PCDN("{\"commit\": {\"type\": \"gb_month\", \"amount\": 1, \"burst_price\": -2}}") "}",
     "cdns[0].cost.commit.burst_price: must be"},
    {"p95 without burst", "{" PCDN("{\"commit\": {\"type\": \"p95_gbps\", \"amount\": 1}}") "}",
     "cdns[0].cost.commit.burst_price: required"},
    {"commit unknown",
     "{" PCDN("{\"commit\": {\"type\": \"gb_month\", \"amount\": 1, \"gbps\": 1}}") "}",
     "cdns[0].cost.commit.gbps: unknown key"},
    {"probe regions not object",
     "{" REG2 ", " PROBE_CDN("{\"url\": \"http://a/p\", \"regions\": []}") "}",
     "cdns[0].probe.regions: must be an object"},
    {"probe regions unknown region",
     "{" REG2
     ", " PROBE_CDN("{\"url\": \"http://a/p\", \"regions\": {\"asia\": \"http://a/p\"}}") "}",
     "cdns[0].probe.regions.asia: unknown region"},
    {"probe regions bad url",
     "{" REG2 ", " PROBE_CDN("{\"url\": \"http://a/p\", \"regions\": {\"eu\": \"ftp://a/p\"}}") "}",
     "cdns[0].probe.regions.eu: "},
    {"probe region internal",
     "{" REG2
     ", " PROBE_CDN("{\"url\": \"http://a/p\", \"regions\": {\"eu\": \"http://10.0.0.1/p\"}}") "}",
     "cdns[0].probe.regions.eu: "},
    {"probe regions not string",
     "{" REG2 ", " PROBE_CDN("{\"url\": \"http://a/p\", \"regions\": {\"eu\": 5}}") "}",
     "cdns[0].probe.regions.eu: must be a probe URL string"},
};

static void
test_cfg_engine_rejects_bad_values(void **state)
{
    (void)state;
    for (size_t i = 0; i < UTIL_ARRAY_LEN(engine_bad_cases); i++) {
        struct diag d;
        diag_init(&d);
        struct cfg *c = load_str(engine_bad_cases[i].json, &d);
        if (c != NULL || !diag_has(&d, engine_bad_cases[i].expect)) {
            print_message("case \"%s\": expected \"%s\"\n", engine_bad_cases[i].name,
                          engine_bad_cases[i].expect);
            print_diag("got", &d);
        }
        assert_null(c);
        assert_true(diag_has(&d, engine_bad_cases[i].expect));
        diag_free(&d);
    }
}

/* Internal hosts load when allow_targets covers them; public ones and names never need it. */
static void
test_cfg_allow_targets_good(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        size_t nallow;
    } cases[] = {
        {"{\"cdns\": [" CDN("a", "https://cdn.example.com") "," CDN(
             "b", "http://203.0.113.7:8080") "," CDN("c", "http://[2001:db8::1]") "]}",
         0},
        /* a name is checked after DNS, not at load */
        {"{\"cdns\": [" CDN("a", "http://localhost:9001") "]}", 0},
        {"{\"allow_targets\": [], \"cdns\": [" CDN("a", "https://cdn.example.com") "]}", 0},
        {"{\"allow_targets\": [\"10.1.0.0/16\"], \"cdns\": [" CDN("a", "http://10.1.2.3/") "]}", 1},
        {"{\"allow_targets\": [\"192.168.7.7\"], \"cdns\": [{\"id\": \"a\", \"base_url\": "
         "\"http://192.168.7.7/\", \"probe\": {\"url\": \"http://192.168.7.7/p\"}}],"
         " \"origin\": {\"base_url\": \"http://192.168.7.7:8000/vod\"}}",
         1},
        {"{\"allow_targets\": [\"fd00::/8\", \"169.254.0.0/16\"], \"cdns\": [" CDN(
             "a", "http://[fd12::1]:81") "," CDN("b", "http://169.254.1.1") "]}",
         2},
        /* an IPv4 range covers the IPv4-mapped spelling */
        {"{\"allow_targets\": [\"127.0.0.0/8\"], \"cdns\": [" CDN(
             "a", "http://[::ffff:127.0.0.1]:9") "]}",
         1},
        /* the admin port on another address, or another port on the admin address */
        {"{\"allow_targets\": [\"127.0.0.0/8\"], \"admin\": {\"listen\": \"127.0.0.1:9100\"},"
         " \"cdns\": [" CDN("a", "http://127.0.0.1:9101") "," CDN("b",
                                                                  "http://127.0.0.2:9100") "]}",
         1},
        {"{\"allow_targets\": [\"127.0.0.0/8\"], \"admin\": {\"listen\": \"127.0.0.1:0\"},"
         " \"cdns\": [" CDN("a", "http://127.0.0.1:8081") "]}",
         1},
    };
    for (size_t i = 0; i < UTIL_ARRAY_LEN(cases); i++) {
        struct diag d;
        diag_init(&d);
        struct cfg *c = load_str(cases[i].json, &d);
        if (c == NULL)
            print_diag(cases[i].json, &d);
        assert_non_null(c);
        assert_int_equal(c->nallow_targets, cases[i].nallow);
        cfg_free(c);
        diag_free(&d);
    }

    /* the parsed ranges, and the upper bound on their number */
    struct diag d;
    diag_init(&d);
    struct cfg *c = load_str("{" CDNS2 "}", &d);
    assert_non_null(c);
    assert_int_equal(c->nallow_targets, 2);
    struct netaddr a;
    assert_int_equal(netaddr_parse("127.9.9.9", 9, &a), 0);
    assert_true(netaddr_in_cidr(&a, &c->allow_targets[0]));
    assert_int_equal(netaddr_parse("::1", 3, &a), 0);
    assert_true(netaddr_in_cidr(&a, &c->allow_targets[1]));
    cfg_free(c);

    struct buf b;
    buf_init(&b, 0);
    buf_puts(&b, "{\"cdns\": [" CDN("a", "https://cdn.example.com") "], \"allow_targets\": [");
    for (size_t i = 0; i < CFG_MAX_ALLOW_TARGETS; i++)
        buf_printf(&b, "%s\"10.0.%zu.0/24\"", i ? "," : "", i);
    buf_puts(&b, "]}");
    c = load_str(b.data, &d);
    assert_non_null(c);
    assert_int_equal(c->nallow_targets, CFG_MAX_ALLOW_TARGETS);
    cfg_free(c);
    b.len -= 2;
    buf_puts(&b, ", \"10.1.0.0/16\"]}");
    assert_null(load_str(b.data, &d));
    assert_true(diag_has(&d, "allow_targets: must have at most 64 entries"));
    buf_free(&b);
    diag_free(&d);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cfg_load_full_fixture),
        cmocka_unit_test(test_cfg_load_string_matches_file),
        cmocka_unit_test(test_cfg_empty_policy_defaults),
        cmocka_unit_test(test_cfg_probe_defaults),
        cmocka_unit_test(test_cfg_default_region_implicit_or_listed),
        cmocka_unit_test(test_cfg_rule_with_failover_only_is_allowed),
        cmocka_unit_test(test_cfg_base_url_trailing_slash_stripped),
        cmocka_unit_test(test_cfg_accepts_good_urls),
        cmocka_unit_test(test_cfg_allow_targets_good),
        cmocka_unit_test(test_cfg_manifest_and_origin_keys),
        cmocka_unit_test(test_cfg_manifest_mode_by_path_and_region),
        cmocka_unit_test_setup_teardown(test_cfg_steering_keys, tmp_setup, tmp_teardown),
        cmocka_unit_test(test_cfg_rejects_bad_configs),
        cmocka_unit_test(test_cfg_rejects_long_strings),
        cmocka_unit_test(test_cfg_one_bad_cdn_of_five_rejects_all),
        cmocka_unit_test(test_cfg_reports_every_error),
        cmocka_unit_test(test_cfg_appends_to_existing_diag),
        cmocka_unit_test(test_cfg_load_string_syntax_errors),
        cmocka_unit_test_setup_teardown(test_cfg_load_file_syntax_error_has_line_col, tmp_setup,
                                        tmp_teardown),
        cmocka_unit_test_setup_teardown(test_cfg_load_file_duplicate_key, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_cfg_load_file_truncated, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_cfg_load_file_empty, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_cfg_load_file_missing, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_cfg_load_file_too_large, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_cfg_load_file_unreadable, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_cfg_load_file_good, tmp_setup, tmp_teardown),
        cmocka_unit_test(test_cfg_split_hostport),
        cmocka_unit_test(test_cfg_free_and_index_accept_null),
        cmocka_unit_test(test_cfg_engine_off_by_default),
        cmocka_unit_test(test_cfg_engine_keys),
        cmocka_unit_test(test_cfg_engine_rejects_bad_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
