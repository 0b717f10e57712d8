#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "steerd/steering.h"
#include "steerd/util.h"

#ifndef FIXTURE_DIR
#define FIXTURE_DIR "tests/fixtures"
#endif

static char *
read_fixture(const char *rel, size_t *len)
{
    char path[512];
    char chunk[4096];
    struct buf b;
    size_t n;
    FILE *f;

    snprintf(path, sizeof(path), "%s/steering/%s", FIXTURE_DIR, rel);
    f = fopen(path, "rb");
    assert_non_null(f);
    buf_init(&b, 0);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        assert_int_equal(buf_append(&b, chunk, n), 0);
    fclose(f);
    if (len != NULL)
        *len = b.len;
    return b.data;
}

/* ---- Steering manifest ------------------------------------------------------------------ */

static const char *const prio3[] = {"beta", "alpha", "gamma"};

static struct steering_manifest
base_manifest(enum steering_kind kind)
{
    struct steering_manifest m = {
        .kind = kind,
        .ttl_s = 30,
        .ttl_min_s = 5,
        .ttl_max_s = 600,
        .reload_uri = "https://steer.example/steer/hls?st=AbC-_9",
        .priority = prio3,
        .npriority = 3,
    };
    return m;
}

/* Writes m after a prefix and returns the JSON text (a new string), or NULL when refused; in
 * that case the buffer must hold exactly the prefix. */
static char *
write_json(const struct steering_manifest *m, enum steering_status want)
{
    struct buf b;
    char *json = NULL;

    buf_init(&b, 0);
    assert_int_equal(buf_puts(&b, "prefix:"), 0);
    assert_int_equal(steering_write_manifest(&b, m), want);
    if (want == STEERING_OK) {
        assert_memory_equal(b.data, "prefix:", 7);
        json = xstrdup(b.data + 7);
    } else {
        assert_int_equal(b.len, 7);
        assert_string_equal(b.data, "prefix:");
    }
    buf_free(&b);
    return json;
}

static void
test_steering_manifest_priority_order(void **state)
{
    struct steering_manifest m = base_manifest(STEERING_HLS);
    json_error_t jerr;
    json_t *root, *prio;
    char *json;

    (void)state;
    json = write_json(&m, STEERING_OK);
    assert_string_equal(json, "{\"VERSION\":1,\"TTL\":30,\"RELOAD-URI\":"
                              "\"https://steer.example/steer/hls?st=AbC-_9\","
                              "\"PATHWAY-PRIORITY\":[\"beta\",\"alpha\",\"gamma\"]}");
    root = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);
    assert_non_null(root);
    assert_int_equal(json_integer_value(json_object_get(root, "VERSION")), 1);
    prio = json_object_get(root, "PATHWAY-PRIORITY");
    assert_int_equal(json_array_size(prio), 3);
    for (size_t i = 0; i < 3; i++)
        assert_string_equal(json_string_value(json_array_get(prio, i)), prio3[i]);
    assert_null(json_object_get(root, "PATHWAY-CLONES"));
    json_decref(root);
    free(json);

    /* The HLS unnamed pathway "." is a valid entry; a single entry is enough. */
    static const char *const dot[] = {".", "alpha"};
    m.priority = dot;
    m.npriority = 2;
    json = write_json(&m, STEERING_OK);
    assert_non_null(strstr(json, "\"PATHWAY-PRIORITY\":[\".\",\"alpha\"]"));
    free(json);
    m.npriority = 1;
    m.priority = prio3 + 2;
    json = write_json(&m, STEERING_OK);
    assert_non_null(strstr(json, "\"PATHWAY-PRIORITY\":[\"gamma\"]"));
    free(json);
}

static void
test_steering_manifest_omits_absent_reload_uri(void **state)
{
    struct steering_manifest m = base_manifest(STEERING_DASH);
    json_error_t jerr;
    json_t *root;
    char *json;

    (void)state;
    m.reload_uri = NULL;
    json = write_json(&m, STEERING_OK);
    assert_string_equal(
        json, "{\"VERSION\":1,\"TTL\":30,\"PATHWAY-PRIORITY\":[\"beta\",\"alpha\",\"gamma\"]}");
    assert_null(strstr(json, "null"));
    root = json_loads(json, 0, &jerr);
    assert_non_null(root);
    assert_null(json_object_get(root, "RELOAD-URI"));
    json_decref(root);
    free(json);
}

static void
test_steering_manifest_ttl_clamp(void **state)
{
    static const struct {
        uint32_t ttl, min, max;
        enum steering_status want;
        const char *ttl_text;
    } cases[] = {
        {30, 5, 600, STEERING_OK, "\"TTL\":30,"},
        {0, 5, 600, STEERING_OK, "\"TTL\":5,"},
        {4, 5, 600, STEERING_OK, "\"TTL\":5,"},
        {5, 5, 600, STEERING_OK, "\"TTL\":5,"},
        {600, 5, 600, STEERING_OK, "\"TTL\":600,"},
        {601, 5, 600, STEERING_OK, "\"TTL\":600,"},
        {UINT32_MAX, 5, 600, STEERING_OK, "\"TTL\":600,"},
        {300, 300, 300, STEERING_OK, "\"TTL\":300,"},
        {UINT32_MAX, 1, UINT32_MAX, STEERING_OK, "\"TTL\":4294967295,"},
        {30, 0, 600, STEERING_BAD_TTL, NULL},
        {30, 601, 600, STEERING_BAD_TTL, NULL},
    };

    (void)state;
    for (size_t i = 0; i < UTIL_ARRAY_LEN(cases); i++) {
        struct steering_manifest m = base_manifest(STEERING_HLS);
        char *json;

        m.ttl_s = cases[i].ttl;
        m.ttl_min_s = cases[i].min;
        m.ttl_max_s = cases[i].max;
        json = write_json(&m, cases[i].want);
        if (cases[i].ttl_text != NULL)
            assert_non_null(strstr(json, cases[i].ttl_text));
        free(json);
    }
}

static void
test_steering_manifest_clones(void **state)
{
    static const char *const prio[] = {"alpha-c1", "alpha", "beta"};
    static const struct steering_pair params[] = {{"token", "dkfs1239414"}, {"e", "1~2.3_4-5"}};
    static const struct steering_pair variants[] = {
        {"Video-768", "https://backup3.example.com/video12/hi/video.m3u8?custom=768"},
        {"v/1+2=", "http://h.example/a%20b"}};
    static const struct steering_pair renditions[] = {
        {"Audio-37262", "https://backup3.example.com/video12/audio/eng.m3u8?custom=37262"}};
    struct steering_clone clones[] = {
        {.base_id = "alpha",
         .id = "alpha-c1",
         .host = "backup2.example.com",
         .params = params,
         .nparams = 2,
         .per_variant_uris = variants,
         .nper_variant_uris = 2,
         .per_rendition_uris = renditions,
         .nper_rendition_uris = 1},
        /* A clone of a clone, with no replacement at all, and one of ".". */
        {.base_id = "alpha-c1", .id = "alpha-c2"},
        {.base_id = ".", .id = "dot-c", .host = "10.0.0.1"},
    };
    struct steering_manifest m = base_manifest(STEERING_HLS);
    json_error_t jerr;
    json_t *root, *want;
    char *json;

    (void)state;
    m.priority = prio;
    m.npriority = 3;
    m.clones = clones;
    m.nclones = 3;
    json = write_json(&m, STEERING_OK);
    root = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);
    assert_non_null(root);
    want = json_pack("{s:i, s:i, s:s, s:[s,s,s], s:[{s:s, s:s, s:{s:s, s:{s:s, s:s}, s:{s:s, s:s}, "
                     "s:{s:s}}}, {s:s, s:s, s:{}}, {s:s, s:s, s:{s:s}}]}",
                     "VERSION", 1, "TTL", 30, "RELOAD-URI", m.reload_uri, "PATHWAY-PRIORITY",
                     "alpha-c1", "alpha", "beta", "PATHWAY-CLONES", "BASE-ID", "alpha", "ID",
                     "alpha-c1", "URI-REPLACEMENT", "HOST", "backup2.example.com", "PARAMS",
                     "token", "dkfs1239414", "e", "1~2.3_4-5", "PER-VARIANT-URIS", "Video-768",
                     variants[0].value, "v/1+2=", variants[1].value, "PER-RENDITION-URIS",
                     "Audio-37262", renditions[0].value, "BASE-ID", "alpha-c1", "ID", "alpha-c2",
                     "URI-REPLACEMENT", "BASE-ID", ".", "ID", "dot-c", "URI-REPLACEMENT", "HOST",
                     "10.0.0.1");
    assert_non_null(want);
    assert_true(json_equal(root, want));
    /* Key order inside a clone: BASE-ID, ID, URI-REPLACEMENT{HOST, PARAMS, PER-*}. */
    assert_non_null(strstr(json, "{\"BASE-ID\":\"alpha\",\"ID\":\"alpha-c1\",\"URI-REPLACEMENT\":"
                                 "{\"HOST\":\"backup2.example.com\",\"PARAMS\":{\"token\":"));
    assert_non_null(strstr(json, "{\"BASE-ID\":\"alpha-c1\",\"ID\":\"alpha-c2\","
                                 "\"URI-REPLACEMENT\":{}}"));
    json_decref(want);
    json_decref(root);
    free(json);

    /* DASH: HOST and PARAMS are fine, per-variant URIs are an HLS-only feature. */
    m.kind = STEERING_DASH;
    m.nclones = 2;
    clones[0].nper_variant_uris = 0;
    clones[0].nper_rendition_uris = 0;
    json = write_json(&m, STEERING_OK);
    assert_null(strstr(json, "PER-"));
    assert_non_null(strstr(json, "\"PARAMS\":{\"token\":\"dkfs1239414\",\"e\":\"1~2.3_4-5\"}"));
    free(json);
    clones[0].nper_rendition_uris = 1;
    free(write_json(&m, STEERING_BAD_CLONE));
    clones[0].nper_rendition_uris = 0;
    clones[0].nper_variant_uris = 1;
    free(write_json(&m, STEERING_BAD_CLONE));
    /* DASH has no "." pathway. */
    m.nclones = 3;
    clones[0].nper_variant_uris = 0;
    free(write_json(&m, STEERING_BAD_CLONE));
}

static void
test_steering_manifest_refuses_bad_reload_uri(void **state)
{
    static const char *const bad[] = {
        "",
        "/steer/hls?st=x",
        "//steer.example/x",
        "ftp://steer.example/x",
        "javascript:alert(1)",
        "data:application/json,{}",
        "http://",
        "https://",
        "http:///path",
        "http://?q",
        "http://:80/",
        "http://a\"b/",
        "http://a/\"onload",
        "http://a/'x",
        "http://a/x\r\nSet-Cookie:x=1",
        "http://a/x\ny",
        "http://a/x\ty",
        "http://a/x y",
        "http://a/x\x7f",
        "http://a/x\x80",
        "http://a/x\\y",
        "http://a/<x>",
        "http://a/x{y}",
        "http://a/x|y",
        "http://a/x^y",
        "http://a/x`y",
        "http://a/%zz",
        "http://a/%4",
        "http://a/%",
        "http://ours.example@evil.example/",
        "http://user:pw@a/",
    };
    static const char *const good[] = {
        "http://a",
        "HTTPS://A.example:8443/steer/dash?st=x&y=%2F#frag",
        "http://127.0.0.1:8080/steer/hls?st=AAAA-_",
        "http://[::1]:8080/steer/hls",
        "https://a/x@y;z=1,2!$&()*+",
    };
    char long_uri[STEERING_URI_MAX + 2];

    (void)state;
    for (size_t i = 0; i < UTIL_ARRAY_LEN(bad); i++) {
        struct steering_manifest m = base_manifest(STEERING_HLS);

        m.reload_uri = bad[i];
        free(write_json(&m, STEERING_BAD_RELOAD_URI));
    }
    for (size_t i = 0; i < UTIL_ARRAY_LEN(good); i++) {
        struct steering_manifest m = base_manifest(STEERING_HLS);
        char *json;

        m.reload_uri = good[i];
        json = write_json(&m, STEERING_OK);
        free(json);
    }
    memcpy(long_uri, "http://a/", 9);
    memset(long_uri + 9, 'x', sizeof(long_uri) - 10);
    long_uri[sizeof(long_uri) - 1] = '\0'; /* STEERING_URI_MAX + 1 bytes */
    {
        struct steering_manifest m = base_manifest(STEERING_HLS);

        m.reload_uri = long_uri;
        free(write_json(&m, STEERING_BAD_RELOAD_URI));
        long_uri[STEERING_URI_MAX] = '\0';
        free(write_json(&m, STEERING_OK));
    }
}

static void
test_steering_manifest_refuses_bad_priority(void **state)
{
    static const char *const dup[] = {"a", "b", "a"};
    static const char *const upper[] = {"CDN-A"};
    static const char *const under[] = {"a_b"};
    static const char *const empty_id[] = {""};
    static const char *const long_id[] = {"abcdefghijklmnopqrstuvwxyz0123456"};
    static const char *const max_id[] = {"abcdefghijklmnopqrstuvwxyz012345"};
    static const char *const null_id[] = {"a", NULL};
    static const char *const quote[] = {"a\"b"};
    static const char *const dots[] = {".."};
    static const char *const dot[] = {"."};
    const char *many[STEERING_MAX_PATHWAYS + 1];
    char names[STEERING_MAX_PATHWAYS + 1][8];
    struct steering_manifest m;

    (void)state;
    m = base_manifest(STEERING_HLS);
    m.npriority = 0;
    free(write_json(&m, STEERING_BAD_PRIORITY));
    m.priority = NULL;
    m.npriority = 1;
    free(write_json(&m, STEERING_BAD_PRIORITY));
#define BAD_PRIO(arr)                                                                              \
    do {                                                                                           \
        m = base_manifest(STEERING_HLS);                                                           \
        m.priority = arr;                                                                          \
        m.npriority = UTIL_ARRAY_LEN(arr);                                                         \
        free(write_json(&m, STEERING_BAD_PRIORITY));                                               \
    } while (0)
    BAD_PRIO(dup);
    BAD_PRIO(upper);
    BAD_PRIO(under);
    BAD_PRIO(empty_id);
    BAD_PRIO(long_id);
    BAD_PRIO(null_id);
    BAD_PRIO(quote);
    BAD_PRIO(dots);
#undef BAD_PRIO
    m = base_manifest(STEERING_HLS);
    m.priority = max_id;
    m.npriority = 1;
    free(write_json(&m, STEERING_OK));
    /* "." is HLS only. */
    m.priority = dot;
    free(write_json(&m, STEERING_OK));
    m.kind = STEERING_DASH;
    free(write_json(&m, STEERING_BAD_PRIORITY));

    for (size_t i = 0; i < UTIL_ARRAY_LEN(many); i++) {
        snprintf(names[i], sizeof(names[i]), "c%zu", i);
        many[i] = names[i];
    }
    m = base_manifest(STEERING_DASH);
    m.priority = many;
    m.npriority = STEERING_MAX_PATHWAYS;
    free(write_json(&m, STEERING_OK));
    m.npriority = STEERING_MAX_PATHWAYS + 1;
    free(write_json(&m, STEERING_BAD_PRIORITY));
}

static void
test_steering_manifest_refuses_bad_clones(void **state)
{
    static const struct steering_pair p_pct[] = {{"t", "a%20b"}};
    static const struct steering_pair p_amp[] = {{"t", "a&b=c"}};
    static const struct steering_pair p_eq[] = {{"t=x", "1"}};
    static const struct steering_pair p_empty_name[] = {{"", "1"}};
    static const struct steering_pair p_dup[] = {{"t", "1"}, {"t", "2"}};
    static const struct steering_pair p_null[] = {{"t", NULL}};
    static const struct steering_pair p_crlf[] = {{"t", "1\r\nx"}};
    static const struct steering_pair p_ok_empty_value[] = {{"t", ""}};
    static const struct steering_pair v_space[] = {{"Video 1", "http://a/v.m3u8"}};
    static const struct steering_pair v_rel[] = {{"v1", "hi/video.m3u8"}};
    static const struct steering_pair v_js[] = {{"v1", "javascript:alert(1)"}};
    static const struct steering_pair v_quote[] = {{"v1", "http://a/\"x"}};
    static const struct steering_pair v_dup[] = {{"v1", "http://a/1"}, {"v1", "http://a/2"}};
    static const struct steering_pair v_empty[] = {{"", "http://a/1"}};
    static const char *const bad_hosts[] = {
        "",           "h.example:80", "h.example.",  ".h.example", "h..example",
        "-h.example", "h-.example",   "h_x.example", "user@h",     "h/x",
        "[::1]",      "h example",    "h\r\nx",      "h\"x",
    };
    static const char *const good_hosts[] = {
        "h", "H.Example.COM", "a-b.c-d.e", "192.0.2.1", "xn--bcher-kva.example",
    };
    static const char *const prio[] = {"alpha", "beta"};
    struct steering_clone c;
    struct steering_clone two[2];
    struct steering_manifest m = base_manifest(STEERING_HLS);

    (void)state;
    m.priority = prio;
    m.npriority = 2;
    m.clones = &c;
    m.nclones = 1;
#define CLONE(want, ...)                                                                           \
    do {                                                                                           \
        c = (struct steering_clone){.base_id = "alpha", .id = "alpha-c"};                          \
        __VA_ARGS__;                                                                               \
        free(write_json(&m, want));                                                                \
    } while (0)
    CLONE(STEERING_OK, c.host = "h.example");
    CLONE(STEERING_BAD_CLONE, c.id = ".");
    CLONE(STEERING_BAD_CLONE, c.id = "Alpha-C");
    CLONE(STEERING_BAD_CLONE, c.id = NULL);
    CLONE(STEERING_BAD_CLONE, c.id = "");
    CLONE(STEERING_BAD_CLONE, c.base_id = NULL);
    CLONE(STEERING_BAD_CLONE, c.base_id = "ALPHA");
    CLONE(STEERING_BAD_CLONE, c.base_id = "alpha-c");
    CLONE(STEERING_BAD_CLONE, c.params = p_pct, c.nparams = 1);
    CLONE(STEERING_BAD_CLONE, c.params = p_amp, c.nparams = 1);
    CLONE(STEERING_BAD_CLONE, c.params = p_eq, c.nparams = 1);
    CLONE(STEERING_BAD_CLONE, c.params = p_empty_name, c.nparams = 1);
    CLONE(STEERING_BAD_CLONE, c.params = p_dup, c.nparams = 2);
    CLONE(STEERING_BAD_CLONE, c.params = p_null, c.nparams = 1);
    CLONE(STEERING_BAD_CLONE, c.params = p_crlf, c.nparams = 1);
    CLONE(STEERING_BAD_CLONE, c.params = NULL, c.nparams = 1);
    CLONE(STEERING_OK, c.params = p_ok_empty_value, c.nparams = 1);
    CLONE(STEERING_BAD_CLONE, c.per_variant_uris = v_space, c.nper_variant_uris = 1);
    CLONE(STEERING_BAD_CLONE, c.per_variant_uris = v_rel, c.nper_variant_uris = 1);
    CLONE(STEERING_BAD_CLONE, c.per_variant_uris = v_js, c.nper_variant_uris = 1);
    CLONE(STEERING_BAD_CLONE, c.per_variant_uris = v_quote, c.nper_variant_uris = 1);
    CLONE(STEERING_BAD_CLONE, c.per_variant_uris = v_dup, c.nper_variant_uris = 2);
    CLONE(STEERING_BAD_CLONE, c.per_rendition_uris = v_empty, c.nper_rendition_uris = 1);
    CLONE(STEERING_BAD_CLONE, c.per_rendition_uris = v_rel, c.nper_rendition_uris = 1);
    CLONE(STEERING_OK, c.per_rendition_uris = v_dup, c.nper_rendition_uris = 1);
    for (size_t i = 0; i < UTIL_ARRAY_LEN(bad_hosts); i++)
        CLONE(STEERING_BAD_CLONE, c.host = bad_hosts[i]);
    for (size_t i = 0; i < UTIL_ARRAY_LEN(good_hosts); i++)
        CLONE(STEERING_OK, c.host = good_hosts[i]);
#undef CLONE
    /* Clone IDs are unique. */
    two[0] = (struct steering_clone){.base_id = "alpha", .id = "x"};
    two[1] = (struct steering_clone){.base_id = "beta", .id = "x"};
    m.clones = two;
    m.nclones = 2;
    free(write_json(&m, STEERING_BAD_CLONE));
    two[1].id = "y";
    free(write_json(&m, STEERING_OK));
    m.clones = NULL;
    free(write_json(&m, STEERING_BAD_CLONE));
}

static void
test_steering_manifest_overflow_leaves_buffer(void **state)
{
    struct steering_manifest m = base_manifest(STEERING_HLS);
    struct buf b;
    size_t full;

    (void)state;
    buf_init(&b, 0);
    assert_int_equal(steering_write_manifest(&b, &m), STEERING_OK);
    full = b.len;
    buf_free(&b);
    /* Every cap short of the full length fails and leaves the buffer as it was. */
    for (size_t max = 3; max < full + 2; max++) {
        buf_init(&b, max);
        assert_int_equal(buf_puts(&b, "ab"), 0);
        assert_int_equal(steering_write_manifest(&b, &m), STEERING_OVERFLOW);
        assert_int_equal(b.len, 2);
        assert_string_equal(b.data, "ab");
        buf_free(&b);
    }
    buf_init(&b, full + 2);
    assert_int_equal(buf_puts(&b, "ab"), 0);
    assert_int_equal(steering_write_manifest(&b, &m), STEERING_OK);
    assert_int_equal(b.len, full + 2);
    buf_free(&b);
    assert_string_equal(steering_status_str(STEERING_OVERFLOW), "overflow");
    assert_string_equal(steering_status_str(STEERING_OK), "ok");
}

/* A steering manifest read with jansson, turned into the writer's input. */
struct conv {
    const char *prio[STEERING_MAX_PATHWAYS];
    struct steering_clone clones[8];
    struct steering_pair pairs[8][3][8];
    struct steering_manifest m;
};

static size_t
conv_pairs(json_t *obj, struct steering_pair *out)
{
    const char *key;
    json_t *val;
    size_t n = 0;

    if (obj == NULL)
        return 0;
    json_object_foreach(obj, key, val)
    {
        assert_true(n < 8);
        out[n].name = key;
        out[n].value = json_string_value(val);
        n++;
    }
    return n;
}

static void
conv_manifest(json_t *root, enum steering_kind kind, struct conv *cv)
{
    json_t *prio = json_object_get(root, "PATHWAY-PRIORITY");
    json_t *clones = json_object_get(root, "PATHWAY-CLONES");
    size_t i;
    json_t *v;

    memset(cv, 0, sizeof(*cv));
    cv->m.kind = kind;
    cv->m.ttl_s = (uint32_t)json_integer_value(json_object_get(root, "TTL"));
    cv->m.ttl_min_s = 1;
    cv->m.ttl_max_s = 86400;
    cv->m.reload_uri = json_string_value(json_object_get(root, "RELOAD-URI"));
    json_array_foreach(prio, i, v)
    {
        assert_true(i < STEERING_MAX_PATHWAYS);
        cv->prio[i] = json_string_value(v);
    }
    cv->m.priority = cv->prio;
    cv->m.npriority = json_array_size(prio);
    json_array_foreach(clones, i, v)
    {
        json_t *rep = json_object_get(v, "URI-REPLACEMENT");
        struct steering_clone *c = &cv->clones[i];

        assert_true(i < 8);
        c->base_id = json_string_value(json_object_get(v, "BASE-ID"));
        c->id = json_string_value(json_object_get(v, "ID"));
        c->host = json_string_value(json_object_get(rep, "HOST"));
        c->params = cv->pairs[i][0];
        c->nparams = conv_pairs(json_object_get(rep, "PARAMS"), cv->pairs[i][0]);
        c->per_variant_uris = cv->pairs[i][1];
        c->nper_variant_uris =
            conv_pairs(json_object_get(rep, "PER-VARIANT-URIS"), cv->pairs[i][1]);
        c->per_rendition_uris = cv->pairs[i][2];
        c->nper_rendition_uris =
            conv_pairs(json_object_get(rep, "PER-RENDITION-URIS"), cv->pairs[i][2]);
    }
    cv->m.clones = cv->clones;
    cv->m.nclones = json_array_size(clones);
}

static void
lower_string(json_t *s)
{
    char tmp[256];
    const char *v = json_string_value(s);
    size_t n = strlen(v);

    assert_true(n < sizeof(tmp));
    for (size_t i = 0; i <= n; i++)
        tmp[i] = (char)((v[i] >= 'A' && v[i] <= 'Z') ? v[i] - 'A' + 'a' : v[i]);
    assert_int_equal(json_string_set(s, tmp), 0);
}

/* Lower-cases every pathway id (priority entries, clone ID and BASE-ID): steerd's ids are CDN
 * ids ([a-z0-9-]), the players' samples use upper case. */
static void
lower_ids(json_t *root)
{
    size_t i;
    json_t *v;

    json_array_foreach(json_object_get(root, "PATHWAY-PRIORITY"), i, v) lower_string(v);
    json_array_foreach(json_object_get(root, "PATHWAY-CLONES"), i, v)
    {
        lower_string(json_object_get(v, "ID"));
        lower_string(json_object_get(v, "BASE-ID"));
    }
}

static void
test_steering_manifest_matches_player_samples(void **state)
{
    static const struct {
        const char *file;
        enum steering_kind kind;
        enum steering_status as_is;   /* the sample's own ids */
        enum steering_status lowered; /* ids lower-cased */
    } cases[] = {
        {"cml-steering-manifest.json", STEERING_HLS, STEERING_OK, STEERING_OK},
        {"cml-steering-manifest.json", STEERING_DASH, STEERING_OK, STEERING_OK},
        {"dash-dcsm-priority-a-c-b.json", STEERING_DASH, STEERING_OK, STEERING_OK},
        /* media3 rejects an empty PATHWAY-PRIORITY: steerd never writes one. */
        {"dash-dcsm-empty-priority.json", STEERING_DASH, STEERING_BAD_PRIORITY,
         STEERING_BAD_PRIORITY},
        {"hls-steering-clone-buzz.json", STEERING_HLS, STEERING_BAD_PRIORITY, STEERING_OK},
        {"hls-steering-failback-clone.json", STEERING_HLS, STEERING_BAD_PRIORITY, STEERING_OK},
        {"hls-steering-per-variant-uris.json", STEERING_HLS, STEERING_BAD_PRIORITY, STEERING_OK},
        {"hls-steering-per-variant-uris.json", STEERING_DASH, STEERING_BAD_PRIORITY,
         STEERING_BAD_CLONE},
        {"hls-steering-priority-only.json", STEERING_HLS, STEERING_BAD_PRIORITY, STEERING_OK},
        /* No PATHWAY-PRIORITY at all. */
        {"hls-steering-reload-uri.json", STEERING_HLS, STEERING_BAD_PRIORITY,
         STEERING_BAD_PRIORITY},
    };

    (void)state;
    for (size_t i = 0; i < UTIL_ARRAY_LEN(cases); i++) {
        for (int lowered = 0; lowered < 2; lowered++) {
            enum steering_status want = lowered ? cases[i].lowered : cases[i].as_is;
            char *text = read_fixture(cases[i].file, NULL);
            json_error_t jerr;
            json_t *sample = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
            struct conv *cv = xcalloc(1, sizeof(*cv));
            char *json;

            assert_non_null(sample);
            if (lowered)
                lower_ids(sample);
            conv_manifest(sample, cases[i].kind, cv);
            json = write_json(&cv->m, want);
            if (want == STEERING_OK) {
                json_t *got = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);

                assert_non_null(got);
                if (!json_equal(got, sample))
                    fail_msg("%s: wrote %s", cases[i].file, json);
                json_decref(got);
            }
            free(json);
            free(cv);
            json_decref(sample);
            free(text);
        }
    }
}

/* ---- Player query parameters ------------------------------------------------------------ */

struct qcase {
    const char *q;
    unsigned errors;
    const char *hls_pathway; /* NULL: absent */
    long long hls_tp;        /* -1: absent */
    const char *dash;        /* the pathways joined with ',', NULL: none */
    const char *dash_tp;     /* the throughputs joined with ',', NULL: none */
    const char *state;       /* NULL: absent */
};

static void
join_ids(const struct steering_query *sq, char *out, size_t outsz)
{
    size_t o = 0;

    out[0] = '\0';
    for (size_t i = 0; i < sq->ndash_pathways; i++)
        o += (size_t)snprintf(out + o, outsz - o, "%s%s", i ? "," : "", sq->dash_pathways[i]);
}

static void
join_nums(const struct steering_query *sq, char *out, size_t outsz)
{
    size_t o = 0;

    out[0] = '\0';
    for (size_t i = 0; i < sq->ndash_throughputs; i++)
        o += (size_t)snprintf(out + o, outsz - o, "%s%llu", i ? "," : "",
                              (unsigned long long)sq->dash_throughput_bps[i]);
}

static void
check_query(const struct qcase *c, size_t qlen)
{
    struct steering_query *sq = xmalloc(sizeof(*sq));
    char joined[4096];
    int rc;

    memset(sq, 0xA5, sizeof(*sq)); /* the parser must reset everything */
    rc = steering_parse_query(c->q, qlen, sq);
    if (sq->errors != c->errors)
        fail_msg("query \"%s\": errors 0x%x, want 0x%x", c->q, sq->errors, c->errors);
    assert_int_equal(rc, c->errors ? -1 : 0);
    assert_int_equal(sq->has_hls_pathway, c->hls_pathway != NULL);
    if (c->hls_pathway != NULL)
        assert_string_equal(sq->hls_pathway, c->hls_pathway);
    assert_int_equal(sq->has_hls_throughput, c->hls_tp >= 0);
    if (c->hls_tp >= 0)
        assert_int_equal(sq->hls_throughput_bps, (uint64_t)c->hls_tp);
    join_ids(sq, joined, sizeof(joined));
    if (strcmp(joined, c->dash ? c->dash : "") != 0)
        fail_msg("query \"%s\": dash pathways \"%s\", want \"%s\"", c->q, joined,
                 c->dash ? c->dash : "");
    join_nums(sq, joined, sizeof(joined));
    if (strcmp(joined, c->dash_tp ? c->dash_tp : "") != 0)
        fail_msg("query \"%s\": dash throughputs \"%s\", want \"%s\"", c->q, joined,
                 c->dash_tp ? c->dash_tp : "");
    assert_true(sq->ndash_throughputs <= sq->ndash_pathways);
    assert_int_equal(sq->has_state, c->state != NULL);
    if (c->state != NULL) {
        assert_string_equal(sq->state, c->state);
        assert_int_equal(sq->state_len, strlen(c->state));
    }
    free(sq);
}

#define E_MAL STEERING_QERR_MALFORMED
#define E_HP STEERING_QERR_HLS_PATHWAY
#define E_HT STEERING_QERR_HLS_THROUGHPUT
#define E_DP STEERING_QERR_DASH_PATHWAY
#define E_DT STEERING_QERR_DASH_THROUGHPUT
#define E_ST STEERING_QERR_STATE

static const struct qcase qcases[] = {
    {"", 0, NULL, -1, NULL, NULL, NULL},
    {"foo=bar&x&&=&y=%zz&z=%00", 0, NULL, -1, NULL, NULL, NULL},
    /* HLS: hls.js sends the pathway unquoted, the spec shows it quoted. */
    {"_HLS_pathway=cdn-a&_HLS_throughput=500000", 0, "cdn-a", 500000, NULL, NULL, NULL},
    {"_HLS_pathway=\"cdn-a\"", 0, "cdn-a", -1, NULL, NULL, NULL},
    {"_HLS_pathway=%22cdn-a%22", 0, "cdn-a", -1, NULL, NULL, NULL},
    {"_HLS_pathway=%63dn-a", 0, "cdn-a", -1, NULL, NULL, NULL},
    {"_HLS_pathway=.", 0, ".", -1, NULL, NULL, NULL},
    {"_HLS_pathway=abcdefghijklmnopqrstuvwxyz012345", 0, "abcdefghijklmnopqrstuvwxyz012345", -1,
     NULL, NULL, NULL},
    {"_HLS_pathway=abcdefghijklmnopqrstuvwxyz0123456", E_HP, NULL, -1, NULL, NULL, NULL},
    {"_HLS_pathway=CDN-A", E_HP, NULL, -1, NULL, NULL, NULL},
    {"_HLS_pathway=", E_HP, NULL, -1, NULL, NULL, NULL},
    {"_HLS_pathway", E_HP, NULL, -1, NULL, NULL, NULL},
    {"_HLS_pathway=\"\"", E_HP, NULL, -1, NULL, NULL, NULL},
    {"_HLS_pathway=\"cdn-a", E_HP, NULL, -1, NULL, NULL, NULL},
    {"_HLS_pathway=cdn-a\"", E_HP, NULL, -1, NULL, NULL, NULL},
    {"_HLS_pathway=\"", E_HP, NULL, -1, NULL, NULL, NULL},
    {"_HLS_pathway=\"\"cdn-a\"\"", E_HP, NULL, -1, NULL, NULL, NULL},
    {"_HLS_pathway=cdn+a", E_HP, NULL, -1, NULL, NULL, NULL},
    {"_HLS_pathway=cdn-a%0D%0ASet-Cookie:x", E_HP, NULL, -1, NULL, NULL, NULL},
    {"_HLS_pathway=cdn-a%0a%23EXT-X-ENDLIST", E_HP, NULL, -1, NULL, NULL, NULL},
    {"_HLS_pathway=cdn%00a", E_HP, NULL, -1, NULL, NULL, NULL},
    {"_HLS_pathway=cdn-a%00", E_HP, NULL, -1, NULL, NULL, NULL},
    {"_HLS_pathway=%2522cdn-a%2522", E_HP, NULL, -1, NULL, NULL, NULL},
    {"_HLS_pathway=cdn-a%", E_HP, NULL, -1, NULL, NULL, NULL},
    {"_HLS_pathway=cdn-a%zz", E_HP, NULL, -1, NULL, NULL, NULL},
    {"_HLS_pathway=a,b", E_HP, NULL, -1, NULL, NULL, NULL},
    {"_HLS_pathway=a&_HLS_pathway=a", E_HP, NULL, -1, NULL, NULL, NULL},
    {"_hls_pathway=a&_HLS_Pathway=b", 0, NULL, -1, NULL, NULL, NULL},
    /* HLS throughput: an integer 0..10^12. */
    {"_HLS_throughput=0", 0, NULL, 0, NULL, NULL, NULL},
    {"_HLS_throughput=1000000000000", 0, NULL, 1000000000000LL, NULL, NULL, NULL},
    {"_HLS_throughput=0001", 0, NULL, 1, NULL, NULL, NULL},
    {"_HLS_throughput=1000000000001", E_HT, NULL, -1, NULL, NULL, NULL},
    {"_HLS_throughput=18446744073709551615", E_HT, NULL, -1, NULL, NULL, NULL},
    {"_HLS_throughput=18446744073709551616", E_HT, NULL, -1, NULL, NULL, NULL},
    {"_HLS_throughput=99999999999999999999999999999999999999", E_HT, NULL, -1, NULL, NULL, NULL},
    {"_HLS_throughput=-1294967296", E_HT, NULL, -1, NULL, NULL, NULL},
    {"_HLS_throughput=1.5", E_HT, NULL, -1, NULL, NULL, NULL},
    {"_HLS_throughput=1e6", E_HT, NULL, -1, NULL, NULL, NULL},
    {"_HLS_throughput=NaN", E_HT, NULL, -1, NULL, NULL, NULL},
    {"_HLS_throughput=", E_HT, NULL, -1, NULL, NULL, NULL},
    {"_HLS_throughput=+5", E_HT, NULL, -1, NULL, NULL, NULL},
    {"_HLS_throughput=%205", E_HT, NULL, -1, NULL, NULL, NULL},
    {"_HLS_throughput=5&_HLS_throughput=5", E_HT, NULL, -1, NULL, NULL, NULL},
    /* A bad part does not spoil the others. */
    {"_HLS_pathway=BAD&_HLS_throughput=7", E_HP, NULL, 7, NULL, NULL, NULL},
    {"_HLS_pathway=ok&_HLS_throughput=x", E_HT, "ok", -1, NULL, NULL, NULL},
    /* DASH: a quoted comma list (dash.js), URL-encoded by URLSearchParams, or raw. */
    {"_DASH_pathway=%22cdn1%2Ccdn2%22&_DASH_throughput=5500000", 0, NULL, -1, "cdn1,cdn2",
     "5500000", NULL},
    {"_DASH_pathway=\"cdn1,cdn2\"&_DASH_throughput=5500000,1000", 0, NULL, -1, "cdn1,cdn2",
     "5500000,1000", NULL},
    {"_DASH_pathway=cdn1,cdn2&_DASH_throughput=%225%2C6%22", 0, NULL, -1, "cdn1,cdn2", "5,6", NULL},
    {"_DASH_pathway=%22cdn-a%22", 0, NULL, -1, "cdn-a", NULL, NULL},
    {"_DASH_pathway=a,a", 0, NULL, -1, "a,a", NULL, NULL},
    {"_DASH_pathway=a&_DASH_throughput=", 0, NULL, -1, "a", NULL, NULL},
    {"_DASH_throughput=&_DASH_pathway=a,b", 0, NULL, -1, "a,b", NULL, NULL},
    {"_DASH_pathway=a,b&_DASH_throughput=1,2,3", E_DT, NULL, -1, "a,b", NULL, NULL},
    {"_DASH_throughput=5500000", E_DT, NULL, -1, NULL, NULL, NULL},
    {"_DASH_pathway=A,b&_DASH_throughput=1", E_DP | E_DT, NULL, -1, NULL, NULL, NULL},
    {"_DASH_pathway=a,b&_DASH_throughput=1,NaN", E_DT, NULL, -1, "a,b", NULL, NULL},
    {"_DASH_pathway=a,b&_DASH_throughput=1,", E_DT, NULL, -1, "a,b", NULL, NULL},
    {"_DASH_pathway=a,b&_DASH_throughput=,1", E_DT, NULL, -1, "a,b", NULL, NULL},
    {"_DASH_pathway=a,b&_DASH_throughput=1000000000001", E_DT, NULL, -1, "a,b", NULL, NULL},
    {"_DASH_pathway=a,,b", E_DP, NULL, -1, NULL, NULL, NULL},
    {"_DASH_pathway=a,b,", E_DP, NULL, -1, NULL, NULL, NULL},
    {"_DASH_pathway=,a", E_DP, NULL, -1, NULL, NULL, NULL},
    {"_DASH_pathway=", E_DP, NULL, -1, NULL, NULL, NULL},
    {"_DASH_pathway=\"\"", E_DP, NULL, -1, NULL, NULL, NULL},
    {"_DASH_pathway=.", E_DP, NULL, -1, NULL, NULL, NULL},
    {"_DASH_pathway=a,%20b", E_DP, NULL, -1, NULL, NULL, NULL},
    {"_DASH_pathway=\"a\",\"b\"", E_DP, NULL, -1, NULL, NULL, NULL},
    {"_DASH_pathway=a%0d%0a,b", E_DP, NULL, -1, NULL, NULL, NULL},
    {"_DASH_pathway=a&_DASH_pathway=b", E_DP, NULL, -1, NULL, NULL, NULL},
    /* The state parameter: base64url, syntax only. */
    {"st=AbC-_9", 0, NULL, -1, NULL, NULL, "AbC-_9"},
    {"st=%41", 0, NULL, -1, NULL, NULL, "A"},
    {"st=", E_ST, NULL, -1, NULL, NULL, NULL},
    {"st", E_ST, NULL, -1, NULL, NULL, NULL},
    {"st=a.b", E_ST, NULL, -1, NULL, NULL, NULL},
    {"st=a=", E_ST, NULL, -1, NULL, NULL, NULL},
    {"st=a+b", E_ST, NULL, -1, NULL, NULL, NULL},
    {"st=a%2Fb", E_ST, NULL, -1, NULL, NULL, NULL},
    {"st=a&st=a", E_ST, NULL, -1, NULL, NULL, NULL},
    {"ST=a&xst=b&st_=c", 0, NULL, -1, NULL, NULL, NULL},
    /* Everything at once, with unknown parameters around. */
    {"video=12&st=tok&_HLS_pathway=beta&_HLS_throughput=8000000&CMCD=sid%3D%22x%22&", 0, "beta",
     8000000, NULL, NULL, "tok"},
    /* Raw bytes outside 0x21..0x7E: nothing is parsed. */
    {"_HLS_pathway=a\r\nX: y", E_MAL, NULL, -1, NULL, NULL, NULL},
    {"_HLS_pathway=a\n", E_MAL, NULL, -1, NULL, NULL, NULL},
    {"_HLS_pathway=a b", E_MAL, NULL, -1, NULL, NULL, NULL},
    {"_HLS_pathway=a\t", E_MAL, NULL, -1, NULL, NULL, NULL},
    {"_HLS_pathway=a\x7f", E_MAL, NULL, -1, NULL, NULL, NULL},
    {"_HLS_pathway=a\xc3\xa9", E_MAL, NULL, -1, NULL, NULL, NULL},
    {"x=\x01&_HLS_pathway=a", E_MAL, NULL, -1, NULL, NULL, NULL},
};

static void
test_steering_query_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < UTIL_ARRAY_LEN(qcases); i++)
        check_query(&qcases[i], strlen(qcases[i].q));
    /* A raw NUL is outside 0x21..0x7E too, and the length is what counts. */
    {
        static const char q[] = "_HLS_pathway=a\0b";
        struct qcase c = {q, E_MAL, NULL, -1, NULL, NULL, NULL};
        struct qcase c2 = {q, 0, "a", -1, NULL, NULL, NULL};

        check_query(&c, sizeof(q) - 1);
        check_query(&c2, 14);
    }
    {
        struct steering_query sq;

        assert_int_equal(steering_parse_query(NULL, 0, &sq), 0);
        assert_int_equal(sq.errors, 0);
    }
}

/* Every line of the players' sample file (a URL's query, or a bare parameter). */
static void
test_steering_query_player_samples(void **state)
{
    static const struct qcase want[] = {
        /* hls.js: unquoted pathway and integer throughput. */
        {NULL, 0, "pathway-2", 500000, NULL, NULL, NULL},
        /* dash.js: the decoded pathway list, quotes included. */
        {NULL, 0, NULL, -1, "cdn1,cdn2", NULL, NULL},
        /* A throughput alone has no pathway to belong to. */
        {NULL, E_DT, NULL, -1, NULL, NULL, NULL},
    };
    char *text = read_fixture("steering-request-queries.txt", NULL);
    char *save = NULL;
    size_t n = 0;

    (void)state;
    for (char *line = strtok_r(text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        struct qcase c;
        char *q = strchr(line, '?');

        if (line[0] == '#')
            continue;
        assert_true(n < UTIL_ARRAY_LEN(want));
        c = want[n++];
        c.q = q != NULL ? q + 1 : line;
        check_query(&c, strlen(c.q));
    }
    assert_int_equal(n, UTIL_ARRAY_LEN(want));
    free(text);

    /* The two dash.js parameters as one request, raw and as URLSearchParams encodes them. */
    {
        struct qcase c = {"_DASH_pathway=\"cdn1,cdn2\"&_DASH_throughput=5500000",
                          0,
                          NULL,
                          -1,
                          "cdn1,cdn2",
                          "5500000",
                          NULL};
        struct qcase e = {"_DASH_pathway=%22cdn1%2Ccdn2%22&_DASH_throughput=5500000",
                          0,
                          NULL,
                          -1,
                          "cdn1,cdn2",
                          "5500000",
                          NULL};

        check_query(&c, strlen(c.q));
        check_query(&e, strlen(e.q));
    }
}

/* Builds name=["]e0,e1,...["] with n entries made by fmt from their index. */
static char *
make_list(const char *name, size_t n, const char *fmt, bool quoted)
{
    struct buf b;

    buf_init(&b, 0);
    assert_int_equal(buf_printf(&b, "%s=%s", name, quoted ? "%22" : ""), 0);
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            assert_int_equal(buf_puts(&b, quoted ? "%2C" : ","), 0);
        assert_int_equal(buf_printf(&b, fmt, i), 0);
    }
    if (quoted)
        assert_int_equal(buf_puts(&b, "%22"), 0);
    return b.data;
}

static void
test_steering_query_list_bounds(void **state)
{
    struct steering_query *sq = xmalloc(sizeof(*sq));
    struct buf q;
    char *p, *t;

    (void)state;
    /* 64 pathways of the longest id, quoted and encoded, with 64 throughputs: all kept. */
    p = make_list("_DASH_pathway", STEERING_MAX_PATHWAYS, "abcdefghijklmnopqrstuvwxyz-%05zu", true);
    t = make_list("_DASH_throughput", STEERING_MAX_PATHWAYS, "10000000%02zu", false);
    buf_init(&q, 0);
    assert_int_equal(buf_printf(&q, "%s&%s", p, t), 0);
    assert_int_equal(steering_parse_query(q.data, q.len, sq), 0);
    assert_int_equal(sq->ndash_pathways, STEERING_MAX_PATHWAYS);
    assert_int_equal(sq->ndash_throughputs, STEERING_MAX_PATHWAYS);
    assert_string_equal(sq->dash_pathways[63], "abcdefghijklmnopqrstuvwxyz-00063");
    assert_int_equal(sq->dash_throughput_bps[63], 1000000063);
    buf_free(&q);
    free(p);
    free(t);

    /* 65 and 1000 entries: refused, never truncated. */
    for (int big = 0; big < 2; big++) {
        size_t n = big ? 1000 : STEERING_MAX_PATHWAYS + 1;

        p = make_list("_DASH_pathway", n, "c%zu", big);
        t = make_list("_DASH_throughput", n, "%zu", false);
        buf_init(&q, 0);
        assert_int_equal(buf_printf(&q, "%s&%s&_HLS_pathway=x", p, t), 0);
        assert_int_equal(steering_parse_query(q.data, q.len, sq), -1);
        assert_int_equal(sq->errors, E_DP | E_DT);
        assert_int_equal(sq->ndash_pathways, 0);
        assert_int_equal(sq->ndash_throughputs, 0);
        assert_true(sq->has_hls_pathway);
        buf_free(&q);
        free(p);
        free(t);
    }
    /* 1000 throughputs for 2 pathways. */
    t = make_list("_DASH_throughput", 1000, "%zu", false);
    buf_init(&q, 0);
    assert_int_equal(buf_printf(&q, "_DASH_pathway=a,b&%s", t), 0);
    assert_int_equal(steering_parse_query(q.data, q.len, sq), -1);
    assert_int_equal(sq->errors, E_DT);
    assert_int_equal(sq->ndash_pathways, 2);
    assert_int_equal(sq->ndash_throughputs, 0);
    buf_free(&q);
    free(t);

    /* A 100 KiB value and a state token one byte too long. */
    buf_init(&q, 0);
    assert_int_equal(buf_puts(&q, "_HLS_pathway="), 0);
    for (int i = 0; i < 100 * 1024; i++)
        assert_int_equal(buf_puts(&q, "a"), 0);
    assert_int_equal(buf_puts(&q, "&st="), 0);
    for (int i = 0; i < STEERING_STATE_TOKEN_MAX + 1; i++)
        assert_int_equal(buf_puts(&q, "A"), 0);
    assert_int_equal(steering_parse_query(q.data, q.len, sq), -1);
    assert_int_equal(sq->errors, E_HP | E_ST);
    q.len -= 1;
    q.data[q.len] = '\0';
    assert_int_equal(steering_parse_query(q.data, q.len, sq), -1);
    assert_int_equal(sq->errors, E_HP);
    assert_int_equal(sq->state_len, STEERING_STATE_TOKEN_MAX);
    buf_free(&q);
    free(sq);
}

/* ---- Signed session state --------------------------------------------------------------- */

static const unsigned char key1[32] = "0123456789abcdef0123456789abcdef";
static const unsigned char key2[20] = "another key, 20 byte";

static struct steering_state
sample_state(void)
{
    struct steering_state st = {
        .session_hash = 0x0123456789abcdefull,
        .region = 0xdeadbeef,
        .cdn_set = 0x01020304,
        .iat_s = 1700000000,
        .exp_s = 1700000600,
        .nprio = 3,
        .prio = {2, 0, 1},
    };
    return st;
}

static struct steering_keyring *
ring_with(uint8_t kid, const void *key, size_t len)
{
    struct steering_keyring *r = steering_keyring_new();

    assert_int_equal(steering_keyring_add(r, kid, key, len), 0);
    return r;
}

static void
assert_state_equal(const struct steering_state *a, const struct steering_state *b)
{
    assert_int_equal(a->kid, b->kid);
    assert_int_equal(a->session_hash, b->session_hash);
    assert_int_equal(a->region, b->region);
    assert_int_equal(a->cdn_set, b->cdn_set);
    assert_int_equal(a->iat_s, b->iat_s);
    assert_int_equal(a->exp_s, b->exp_s);
    assert_int_equal(a->nprio, b->nprio);
    assert_memory_equal(a->prio, b->prio, a->nprio);
}

static void
test_steering_state_round_trip(void **state)
{
    struct steering_keyring *r = ring_with(7, key1, sizeof(key1));
    struct steering_state in = sample_state(), out;
    char tok[STEERING_STATE_TOKEN_MAX + 1], tok2[STEERING_STATE_TOKEN_MAX + 1];
    size_t n;

    (void)state;
    n = steering_state_encode(r, &in, tok, sizeof(tok));
    assert_true(n > 0);
    assert_int_equal(strlen(tok), n);
    for (size_t i = 0; i < n; i++)
        assert_non_null(
            strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", tok[i]));
    assert_int_equal(steering_state_decode(r, tok, n, in.iat_s + 10, 0, &out), STEERING_STATE_OK);
    in.kid = 7; /* kid 0 asked for the current key */
    assert_state_equal(&in, &out);
    /* Deterministic. */
    assert_int_equal(steering_state_encode(r, &out, tok2, sizeof(tok2)), n);
    assert_string_equal(tok, tok2);

    /* Extremes: no priority, the longest priority, every field at its maximum. */
    in = sample_state();
    in.nprio = 0;
    n = steering_state_encode(r, &in, tok, sizeof(tok));
    assert_int_equal(n, 59);
    assert_int_equal(steering_state_decode(r, tok, n, in.iat_s, 0, &out), STEERING_STATE_OK);
    assert_int_equal(out.nprio, 0);
    in.nprio = STEERING_STATE_MAX_PRIO;
    for (int i = 0; i < STEERING_STATE_MAX_PRIO; i++)
        in.prio[i] = (uint8_t)(255 - i);
    in.session_hash = UINT64_MAX;
    in.region = UINT32_MAX;
    in.cdn_set = UINT32_MAX;
    in.iat_s = UINT32_MAX;
    in.exp_s = UINT32_MAX;
    n = steering_state_encode(r, &in, tok, sizeof(tok));
    assert_int_equal(n, STEERING_STATE_TOKEN_MAX);
    assert_int_equal(steering_state_decode(r, tok, n, UINT32_MAX, 0, &out), STEERING_STATE_OK);
    in.kid = 7;
    assert_state_equal(&in, &out);
    /* Exactly enough room, and one byte less. */
    assert_int_equal(steering_state_encode(r, &in, tok, STEERING_STATE_TOKEN_MAX + 1),
                     STEERING_STATE_TOKEN_MAX);
    assert_int_equal(steering_state_encode(r, &in, tok, STEERING_STATE_TOKEN_MAX), 0);
    assert_string_equal(tok, "");
    steering_keyring_free(r);
}

static void
b64url(const unsigned char *in, size_t n, char *out)
{
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;

    for (size_t i = 0; i < n; i++) {
        acc = acc << 8 | in[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out[o++] = al[(acc >> bits) & 63];
        }
    }
    if (bits > 0)
        out[o++] = al[(acc << (6 - bits)) & 63];
    out[o] = '\0';
}

/* The token format is a wire format between replicas (and builds): pin it with an independent
 * computation. Payload: version 1, kid, nprio, flags 0, iat, exp, session, region, cdn_set,
 * prio; tag: HMAC-SHA256(key, "steerd/steering-state/v1" || payload)[0..16). */
static void
test_steering_state_known_answer(void **state)
{
    static const char label[] = "steerd/steering-state/v1";
    struct steering_keyring *r = ring_with(7, key1, sizeof(key1));
    struct steering_state in = sample_state(), out;
    unsigned char raw[64], msg[128], md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char want[128], tok[STEERING_STATE_TOKEN_MAX + 1];
    size_t n = 0;

    (void)state;
    raw[n++] = 1;
    raw[n++] = 7;
    raw[n++] = 3;
    raw[n++] = 0;
    memcpy(raw + n, "\x65\x53\xf1\x00", 4); /* 1700000000 */
    n += 4;
    memcpy(raw + n, "\x65\x53\xf3\x58", 4); /* 1700000600 */
    n += 4;
    memcpy(raw + n, "\x01\x23\x45\x67\x89\xab\xcd\xef", 8);
    n += 8;
    memcpy(raw + n, "\xde\xad\xbe\xef\x01\x02\x03\x04\x02\x00\x01", 11);
    n += 11;
    memcpy(msg, label, sizeof(label) - 1);
    memcpy(msg + sizeof(label) - 1, raw, n);
    assert_non_null(HMAC(EVP_sha256(), key1, sizeof(key1), msg, sizeof(label) - 1 + n, md, &mdlen));
    assert_int_equal(mdlen, 32);
    memcpy(raw + n, md, 16);
    b64url(raw, n + 16, want);
    assert_int_equal(steering_state_encode(r, &in, tok, sizeof(tok)), strlen(want));
    assert_string_equal(tok, want);
    /* And the pinned text, so a change of either side is seen. */
    assert_string_equal(tok, "AQcDAGVT8QBlU_NYASNFZ4mrze_erb7vAQIDBAIAARrSTsmW32wczkS1LKUmzFY");
    assert_int_equal(steering_state_decode(r, want, strlen(want), 1700000000, 0, &out),
                     STEERING_STATE_OK);
    steering_keyring_free(r);
}

static void
test_steering_state_tampering_rejected(void **state)
{
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    struct steering_keyring *r = ring_with(1, key1, sizeof(key1));
    struct steering_state in = sample_state(), out;
    char tok[STEERING_STATE_TOKEN_MAX + 1], bad[STEERING_STATE_TOKEN_MAX + 2];
    size_t n;

    (void)state;
    n = steering_state_encode(r, &in, tok, sizeof(tok));
    assert_true(n > 0);
    /* Every character replaced by every other one: never accepted. */
    for (size_t i = 0; i < n; i++) {
        for (size_t a = 0; a < 64; a++) {
            enum steering_state_status s;

            if (al[a] == tok[i])
                continue;
            memcpy(bad, tok, n + 1);
            bad[i] = al[a];
            s = steering_state_decode(r, bad, n, in.iat_s, 0, &out);
            if (s == STEERING_STATE_OK)
                fail_msg("tampered token accepted: position %zu char %c", i, al[a]);
            assert_int_equal(out.session_hash, 0); /* out is zeroed on error */
        }
    }
    /* A change inside the payload with the structure intact is a bad tag. */
    memcpy(bad, tok, n + 1);
    bad[20] = bad[20] == 'A' ? 'B' : 'A';
    assert_int_equal(steering_state_decode(r, bad, n, in.iat_s, 0, &out), STEERING_STATE_BAD_TAG);
    /* The tag part changed: bad tag. */
    memcpy(bad, tok, n + 1);
    bad[n - 5] = bad[n - 5] == 'A' ? 'B' : 'A';
    assert_int_equal(steering_state_decode(r, bad, n, in.iat_s, 0, &out), STEERING_STATE_BAD_TAG);
    /* Characters outside base64url, padding. */
    memcpy(bad, tok, n + 1);
    bad[10] = '+';
    assert_int_equal(steering_state_decode(r, bad, n, in.iat_s, 0, &out), STEERING_STATE_MALFORMED);
    bad[10] = '\0';
    assert_int_equal(steering_state_decode(r, bad, n, in.iat_s, 0, &out), STEERING_STATE_MALFORMED);
    memcpy(bad, tok, n + 1);
    bad[n] = '=';
    assert_int_equal(steering_state_decode(r, bad, n + 1, in.iat_s, 0, &out),
                     STEERING_STATE_MALFORMED);
    steering_keyring_free(r);
}

static void
test_steering_state_crafted_layouts(void **state)
{
    struct steering_keyring *r = ring_with(1, key1, sizeof(key1));
    struct steering_state in = sample_state(), out;
    char tok[STEERING_STATE_TOKEN_MAX + 1], t2[STEERING_STATE_TOKEN_MAX + 8];
    unsigned char raw[128];
    size_t n;

    (void)state;
    in.nprio = 0; /* 44 bytes: the last character carries 2 padding bits */
    n = steering_state_encode(r, &in, tok, sizeof(tok));
    assert_int_equal(n, 59);
    /* A second spelling of the same bytes (non-zero padding bits) is refused. */
    memcpy(t2, tok, n + 1);
    {
        const char *al = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        size_t v = (size_t)(strchr(al, tok[n - 1]) - al);

        assert_int_equal(v & 3, 0);
        t2[n - 1] = al[v | 1];
    }
    assert_int_equal(steering_state_decode(r, t2, n, in.iat_s, 0, &out), STEERING_STATE_MALFORMED);

    /* Raw layouts built by hand (tag left as zeros: the layout is checked first). */
    memset(raw, 0, sizeof(raw));
    raw[0] = 2;
    raw[1] = 1;
    b64url(raw, 44, t2);
    assert_int_equal(steering_state_decode(r, t2, strlen(t2), 0, 0, &out),
                     STEERING_STATE_BAD_VERSION);
    raw[0] = 1;
    b64url(raw, 44, t2);
    assert_int_equal(steering_state_decode(r, t2, strlen(t2), 0, 0, &out), STEERING_STATE_BAD_TAG);
    raw[1] = 9; /* no such kid */
    b64url(raw, 44, t2);
    assert_int_equal(steering_state_decode(r, t2, strlen(t2), 0, 0, &out),
                     STEERING_STATE_UNKNOWN_KID);
    raw[1] = 0;
    b64url(raw, 44, t2);
    assert_int_equal(steering_state_decode(r, t2, strlen(t2), 0, 0, &out),
                     STEERING_STATE_UNKNOWN_KID);
    raw[1] = 1;
    raw[3] = 1; /* flags must be zero */
    b64url(raw, 44, t2);
    assert_int_equal(steering_state_decode(r, t2, strlen(t2), 0, 0, &out),
                     STEERING_STATE_MALFORMED);
    raw[3] = 0;
    raw[2] = 1; /* says one prio entry, has none */
    b64url(raw, 44, t2);
    assert_int_equal(steering_state_decode(r, t2, strlen(t2), 0, 0, &out),
                     STEERING_STATE_MALFORMED);
    b64url(raw, 45, t2);
    assert_int_equal(steering_state_decode(r, t2, strlen(t2), 0, 0, &out), STEERING_STATE_BAD_TAG);
    raw[2] = 65; /* more than the maximum */
    b64url(raw, 44 + 65, t2);
    assert_int_equal(steering_state_decode(r, t2, strlen(t2), 0, 0, &out),
                     STEERING_STATE_MALFORMED);
    raw[2] = 0;
    b64url(raw, 43, t2);
    assert_int_equal(steering_state_decode(r, t2, strlen(t2), 0, 0, &out),
                     STEERING_STATE_MALFORMED);
    steering_keyring_free(r);
}

static void
test_steering_state_truncated(void **state)
{
    struct steering_keyring *r = ring_with(1, key1, sizeof(key1));
    struct steering_state in = sample_state(), out;
    char tok[STEERING_STATE_TOKEN_MAX + 1], longer[STEERING_STATE_TOKEN_MAX + 8];
    size_t n;

    (void)state;
    n = steering_state_encode(r, &in, tok, sizeof(tok));
    for (size_t len = 0; len < n; len++) {
        enum steering_state_status s = steering_state_decode(r, tok, len, in.iat_s, 0, &out);

        assert_int_not_equal(s, STEERING_STATE_OK);
        assert_true(s == STEERING_STATE_MALFORMED || s == STEERING_STATE_BAD_TAG);
    }
    /* The first character alone decodes to no byte: malformed, not a version question. */
    assert_int_equal(steering_state_decode(r, tok, 1, in.iat_s, 0, &out), STEERING_STATE_MALFORMED);
    assert_int_equal(steering_state_decode(r, NULL, 0, in.iat_s, 0, &out),
                     STEERING_STATE_MALFORMED);
    /* Short garbage is malformed whatever its first byte says. */
    assert_int_equal(steering_state_decode(r, "BBBB", 4, in.iat_s, 0, &out),
                     STEERING_STATE_MALFORMED);
    /* Extended by one to four characters. */
    for (size_t extra = 1; extra <= 4; extra++) {
        memcpy(longer, tok, n);
        memset(longer + n, 'A', extra);
        assert_int_not_equal(steering_state_decode(r, longer, n + extra, in.iat_s, 0, &out),
                             STEERING_STATE_OK);
    }
    /* A hostile length. */
    assert_int_equal(steering_state_decode(r, tok, 100000, in.iat_s, 0, &out),
                     STEERING_STATE_MALFORMED);
    steering_keyring_free(r);
}

static void
test_steering_state_wrong_kid_or_key(void **state)
{
    struct steering_keyring *r1 = ring_with(1, key1, sizeof(key1));
    struct steering_keyring *r2 = ring_with(2, key1, sizeof(key1));
    struct steering_keyring *r1other = ring_with(1, key2, sizeof(key2));
    struct steering_keyring *empty = steering_keyring_new();
    struct steering_state in = sample_state(), out;
    char tok[STEERING_STATE_TOKEN_MAX + 1];
    size_t n;

    (void)state;
    n = steering_state_encode(r1, &in, tok, sizeof(tok));
    assert_true(n > 0);
    assert_int_equal(steering_state_decode(r2, tok, n, in.iat_s, 0, &out),
                     STEERING_STATE_UNKNOWN_KID);
    assert_int_equal(steering_state_decode(empty, tok, n, in.iat_s, 0, &out),
                     STEERING_STATE_UNKNOWN_KID);
    assert_int_equal(steering_state_decode(NULL, tok, n, in.iat_s, 0, &out),
                     STEERING_STATE_UNKNOWN_KID);
    assert_int_equal(steering_state_decode(r1other, tok, n, in.iat_s, 0, &out),
                     STEERING_STATE_BAD_TAG);
    /* Asking to sign with a kid the ring lacks, or with an empty ring, fails. */
    in.kid = 2;
    assert_int_equal(steering_state_encode(r1, &in, tok, sizeof(tok)), 0);
    assert_string_equal(tok, "");
    in.kid = 0;
    assert_int_equal(steering_state_encode(empty, &in, tok, sizeof(tok)), 0);
    steering_keyring_free(r1);
    steering_keyring_free(r2);
    steering_keyring_free(r1other);
    steering_keyring_free(empty);
}

static void
test_steering_state_time_window(void **state)
{
    static const struct {
        uint64_t now;
        uint32_t skew;
        enum steering_state_status want;
    } cases[] = {
        {1000, 0, STEERING_STATE_OK},
        {1050, 0, STEERING_STATE_OK},
        {1100, 0, STEERING_STATE_OK},
        {1101, 0, STEERING_STATE_EXPIRED},
        {1130, 30, STEERING_STATE_OK},
        {1131, 30, STEERING_STATE_EXPIRED},
        {UINT64_MAX, 30, STEERING_STATE_EXPIRED},
        {999, 0, STEERING_STATE_NOT_YET_VALID},
        {970, 30, STEERING_STATE_OK},
        {969, 30, STEERING_STATE_NOT_YET_VALID},
        {0, 0, STEERING_STATE_NOT_YET_VALID},
        {0, UINT32_MAX, STEERING_STATE_OK},
    };
    struct steering_keyring *r = ring_with(1, key1, sizeof(key1));
    struct steering_state in = sample_state(), out;
    char tok[STEERING_STATE_TOKEN_MAX + 1];
    size_t n;

    (void)state;
    in.iat_s = 1000;
    in.exp_s = 1100;
    n = steering_state_encode(r, &in, tok, sizeof(tok));
    assert_true(n > 0);
    for (size_t i = 0; i < UTIL_ARRAY_LEN(cases); i++) {
        enum steering_state_status s =
            steering_state_decode(r, tok, n, cases[i].now, cases[i].skew, &out);

        if (s != cases[i].want)
            fail_msg("now %llu skew %u: %s, want %s", (unsigned long long)cases[i].now,
                     cases[i].skew, steering_state_status_str(s),
                     steering_state_status_str(cases[i].want));
    }
    /* Encoding refuses what cannot be represented or makes no sense. */
    in.exp_s = 999;
    assert_int_equal(steering_state_encode(r, &in, tok, sizeof(tok)), 0);
    in.exp_s = (uint64_t)UINT32_MAX + 1;
    assert_int_equal(steering_state_encode(r, &in, tok, sizeof(tok)), 0);
    in.iat_s = (uint64_t)UINT32_MAX + 1;
    assert_int_equal(steering_state_encode(r, &in, tok, sizeof(tok)), 0);
    in = sample_state();
    in.nprio = STEERING_STATE_MAX_PRIO + 1;
    assert_int_equal(steering_state_encode(r, &in, tok, sizeof(tok)), 0);
    in.iat_s = in.exp_s = 5; /* a zero-length window is valid */
    in.nprio = 0;
    n = steering_state_encode(r, &in, tok, sizeof(tok));
    assert_true(n > 0);
    assert_int_equal(steering_state_decode(r, tok, n, 5, 0, &out), STEERING_STATE_OK);
    steering_keyring_free(r);
}

static void
test_steering_state_key_rotation(void **state)
{
    struct steering_keyring *r = ring_with(1, key1, sizeof(key1));
    struct steering_keyring *after = ring_with(2, key2, sizeof(key2));
    struct steering_state in = sample_state(), out;
    char old_tok[STEERING_STATE_TOKEN_MAX + 1], new_tok[STEERING_STATE_TOKEN_MAX + 1];
    size_t nold, nnew;

    (void)state;
    nold = steering_state_encode(r, &in, old_tok, sizeof(old_tok));
    assert_true(nold > 0);
    /* Step 1: the new key is added everywhere, not yet current: still signing with kid 1. */
    assert_int_equal(steering_keyring_add(r, 2, key2, sizeof(key2)), 0);
    assert_int_equal(steering_keyring_current(r), 1);
    assert_int_equal(steering_state_encode(r, &in, new_tok, sizeof(new_tok)), nold);
    assert_string_equal(new_tok, old_tok);
    /* Step 2: kid 2 becomes current; tokens signed with kid 1 still verify. */
    assert_int_equal(steering_keyring_set_current(r, 2), 0);
    assert_int_equal(steering_keyring_current(r), 2);
    nnew = steering_state_encode(r, &in, new_tok, sizeof(new_tok));
    assert_true(nnew > 0);
    assert_string_not_equal(new_tok, old_tok);
    assert_int_equal(steering_state_decode(r, old_tok, nold, in.iat_s, 0, &out), STEERING_STATE_OK);
    assert_int_equal(out.kid, 1);
    assert_int_equal(steering_state_decode(r, new_tok, nnew, in.iat_s, 0, &out), STEERING_STATE_OK);
    assert_int_equal(out.kid, 2);
    /* Re-signing with the kid a token came with reproduces it. */
    in.kid = 1;
    assert_int_equal(steering_state_encode(r, &in, new_tok, sizeof(new_tok)), nold);
    assert_string_equal(new_tok, old_tok);
    /* Step 3: kid 1 dropped: its tokens are now from an unknown key. */
    assert_int_equal(steering_state_decode(after, old_tok, nold, in.iat_s, 0, &out),
                     STEERING_STATE_UNKNOWN_KID);
    steering_keyring_free(r);
    steering_keyring_free(after);
}

static void
test_steering_keyring_rules(void **state)
{
    unsigned char big[STEERING_KEY_MAX + 1];
    struct steering_keyring *r = steering_keyring_new();

    (void)state;
    memset(big, 7, sizeof(big));
    assert_int_equal(steering_keyring_current(r), 0);
    assert_int_equal(steering_keyring_set_current(r, 1), -1);
    assert_int_equal(steering_keyring_add(r, 0, key1, sizeof(key1)), -1);
    assert_int_equal(steering_keyring_add(r, 1, key1, STEERING_KEY_MIN - 1), -1);
    assert_int_equal(steering_keyring_add(r, 1, big, STEERING_KEY_MAX + 1), -1);
    assert_int_equal(steering_keyring_add(r, 1, NULL, 32), -1);
    assert_int_equal(steering_keyring_add(r, 255, big, STEERING_KEY_MAX), 0);
    assert_int_equal(steering_keyring_current(r), 255);
    assert_int_equal(steering_keyring_add(r, 255, key1, sizeof(key1)), -1);
    for (uint8_t kid = 1; kid < STEERING_KEYRING_MAX; kid++)
        assert_int_equal(steering_keyring_add(r, kid, key1, STEERING_KEY_MIN), 0);
    assert_int_equal(steering_keyring_add(r, 100, key1, sizeof(key1)), -1); /* full */
    assert_int_equal(steering_keyring_current(r), 255);
    assert_int_equal(steering_keyring_set_current(r, 3), 0);
    assert_int_equal(steering_keyring_set_current(r, 100), -1);
    assert_int_equal(steering_keyring_current(r), 3);
    steering_keyring_free(r);
    steering_keyring_free(NULL);
    assert_string_equal(steering_state_status_str(STEERING_STATE_BAD_TAG), "bad_tag");
    assert_string_equal(steering_state_status_str(STEERING_STATE_EXPIRED), "expired");
}

/* The pieces fit together: a token written into RELOAD-URI comes back through the query parser
 * and decodes to the same state. */
static void
test_steering_state_through_reload_uri(void **state)
{
    struct steering_keyring *r = ring_with(3, key1, sizeof(key1));
    struct steering_state in = sample_state(), out;
    struct steering_query *sq = xmalloc(sizeof(*sq));
    char tok[STEERING_STATE_TOKEN_MAX + 1], uri[512];
    struct steering_manifest m = base_manifest(STEERING_HLS);
    const char *q;
    char *json;

    (void)state;
    in.nprio = STEERING_STATE_MAX_PRIO;
    assert_true(steering_state_encode(r, &in, tok, sizeof(tok)) > 0);
    snprintf(uri, sizeof(uri), "https://steer.example/steer/hls?" STEERING_STATE_PARAM "=%s", tok);
    m.reload_uri = uri;
    json = write_json(&m, STEERING_OK);
    assert_non_null(strstr(json, tok));
    free(json);
    q = strchr(uri, '?') + 1;
    /* As hls.js sends it back: its own parameters appended. */
    snprintf(uri + strlen(uri), sizeof(uri) - strlen(uri),
             "&_HLS_pathway=alpha&_HLS_throughput=123");
    assert_int_equal(steering_parse_query(q, strlen(q), sq), 0);
    assert_true(sq->has_state);
    assert_int_equal(steering_state_decode(r, sq->state, sq->state_len, in.iat_s, 0, &out),
                     STEERING_STATE_OK);
    in.kid = 3;
    assert_state_equal(&in, &out);
    free(sq);
    steering_keyring_free(r);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_steering_manifest_priority_order),
        cmocka_unit_test(test_steering_manifest_omits_absent_reload_uri),
        cmocka_unit_test(test_steering_manifest_ttl_clamp),
        cmocka_unit_test(test_steering_manifest_clones),
        cmocka_unit_test(test_steering_manifest_refuses_bad_reload_uri),
        cmocka_unit_test(test_steering_manifest_refuses_bad_priority),
        cmocka_unit_test(test_steering_manifest_refuses_bad_clones),
        cmocka_unit_test(test_steering_manifest_overflow_leaves_buffer),
        cmocka_unit_test(test_steering_manifest_matches_player_samples),
        cmocka_unit_test(test_steering_query_table),
        cmocka_unit_test(test_steering_query_player_samples),
        cmocka_unit_test(test_steering_query_list_bounds),
        cmocka_unit_test(test_steering_state_round_trip),
        cmocka_unit_test(test_steering_state_known_answer),
        cmocka_unit_test(test_steering_state_tampering_rejected),
        cmocka_unit_test(test_steering_state_crafted_layouts),
        cmocka_unit_test(test_steering_state_truncated),
        cmocka_unit_test(test_steering_state_wrong_kid_or_key),
        cmocka_unit_test(test_steering_state_time_window),
        cmocka_unit_test(test_steering_state_key_rotation),
        cmocka_unit_test(test_steering_keyring_rules),
        cmocka_unit_test(test_steering_state_through_reload_uri),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
