/* Tests for the HLS rewriter: golden files for every fixture in tests/fixtures/hls (regenerate
 * with STEERD_REGEN_GOLDEN=1, then review the diff), structural properties on the same
 * fixtures, and hand-written cases. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "steerd/hls.h"
#include "steerd/util.h"

#define HLS_DIR FIXTURE_DIR "/hls"
#define ORIGIN "http://origin.example"
#define CDN_A "http://cdn-a.example/edge"
#define CDN_B "https://cdn-b.example"
#define SELF "http://steerd.example:8080"
#define PL "http://origin.example/vod/x/"

static const struct hls_target two_cdns[] = {
    {"alpha", CDN_A, 0},
    {"beta", CDN_B, 0},
};

static struct hls_opts
golden_opts(const char *playlist_url)
{
    struct hls_opts o = {
        .playlist_url = playlist_url,
        .origin_base = ORIGIN,
        .cdns = two_cdns,
        .ncdns = 2,
        .self_base = SELF,
        .nested_query = "steerd_sid=s1",
        .redundant = true,
    };
    return o;
}

/* ---- helpers ---------------------------------------------------------------------------- */

static char *
read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    struct buf b;
    buf_init(&b, 0);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        buf_append(&b, chunk, n);
    fclose(f);
    if (b.data == NULL)
        buf_append(&b, "", 0);
    *len = b.len;
    return b.data;
}

static void
write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static int
cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted names of the .m3u8 fixtures; the caller frees each and the array. */
static char **
list_fixtures(size_t *count)
{
    DIR *d = opendir(HLS_DIR);
    assert_non_null(d);
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l > 5 && strcmp(e->d_name + l - 5, ".m3u8") == 0) {
            names = xrealloc(names, (n + 1) * sizeof(*names));
            names[n++] = xstrdup(e->d_name);
        }
    }
    closedir(d);
    qsort(names, n, sizeof(*names), cmp_names);
    *count = n;
    return names;
}

static void
free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* Rewrites a NUL-terminated input; returns the status, the output stays in out. */
static enum hls_status
rw(const char *in, const struct hls_opts *o, struct buf *out, struct hls_info *info)
{
    return hls_rewrite(in, strlen(in), o, out, info);
}

/* Rewrites in with o and checks the result equals want exactly. */
static void
expect_rw(const char *in, const struct hls_opts *o, const char *want)
{
    struct buf out;
    buf_init(&out, 0);
    enum hls_status st = rw(in, o, &out, NULL);
    if (st != HLS_OK)
        fail_msg("status %s for input:\n%s", hls_status_str(st), in);
    if (strcmp(out.data, want) != 0)
        fail_msg("input:\n%s\ngot:\n%s\nwant:\n%s", in, out.data, want);
    buf_free(&out);
}

/* Checks that in gives status want and leaves out empty. */
static void
expect_status(const char *in, size_t len, const struct hls_opts *o, enum hls_status want)
{
    struct buf out;
    buf_init(&out, 0);
    buf_puts(&out, "stale content");
    enum hls_status st = hls_rewrite(in, len, o, &out, NULL);
    if (st != want)
        fail_msg("status %s, want %s", hls_status_str(st), hls_status_str(want));
    if (st != HLS_OK)
        assert_int_equal(out.len, 0);
    buf_free(&out);
}

/* A line view. */
struct lv {
    const char *p;
    size_t n;
};

/* Splits s[0..len) at '\n' (a '\r' stays in the line); a final newline makes no empty line. */
static struct lv *
split_lines(const char *s, size_t len, size_t *count)
{
    struct lv *v = NULL;
    size_t n = 0;
    const char *p = s, *e = s + len;
    while (p < e) {
        const char *nl = memchr(p, '\n', (size_t)(e - p));
        const char *le = nl ? nl : e;
        v = xrealloc(v, (n + 1) * sizeof(*v));
        v[n].p = p;
        v[n].n = (size_t)(le - p);
        n++;
        p = nl ? nl + 1 : e;
    }
    *count = n;
    return v;
}

/* The URIs of a line: the whole line (trimmed) for a URI line, the quoted values of URI
 * attributes for a tag. Appends [start,len) pairs to spans; returns how many. */
static size_t
line_uris(struct lv l, struct lv *spans, size_t max)
{
    size_t n = 0;
    const char *e = l.p + l.n;
    if (l.n > 0 && e[-1] == '\r')
        e--;
    if (l.p == e)
        return 0;
    if (l.p[0] != '#') {
        const char *s = l.p;
        while (s < e && (*s == ' ' || *s == '\t'))
            s++;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (s < e && n < max)
            spans[n++] = (struct lv){s, (size_t)(e - s)};
        return n;
    }
    if (strncmp(l.p, "#EXT", 4) != 0 || strncmp(l.p, "#EXTINF", 7) == 0)
        return 0;
    /* walk the attribute list, honouring quotes */
    const char *p = memchr(l.p, ':', (size_t)(e - l.p));
    if (p == NULL)
        return 0;
    p++;
    while (p < e) {
        const char *name = p;
        while (p < e && *p != '=' && *p != ',')
            p++;
        if (p >= e)
            break;
        if (*p == ',') {
            p++;
            continue;
        }
        size_t name_len = (size_t)(p - name);
        while (name_len > 0 && name[0] == ' ') {
            name++;
            name_len--;
        }
        p++;
        if (p < e && *p == '"') {
            const char *q = memchr(p + 1, '"', (size_t)(e - p - 1));
            if (q == NULL)
                break;
            if (name_len == 3 && memcmp(name, "URI", 3) == 0 && n < max)
                spans[n++] = (struct lv){p + 1, (size_t)(q - p - 1)};
            p = q + 1;
        }
        while (p < e && *p != ',')
            p++;
        if (p < e)
            p++;
    }
    return n;
}

/* The line with each URI replaced by "@", and "-beta" removed before a closing quote (copy
 * groups), into b. */
static void
mask_line(struct lv l, struct buf *b)
{
    struct lv spans[64];
    size_t n = line_uris(l, spans, 64);
    const char *cur = l.p;
    buf_reset(b);
    for (size_t i = 0; i < n; i++) {
        buf_append(b, cur, (size_t)(spans[i].p - cur));
        buf_puts(b, "@");
        cur = spans[i].p + spans[i].n;
    }
    buf_append(b, cur, (size_t)(l.p + l.n - cur));
    char *s;
    while ((s = strstr(b->data, "-beta\"")) != NULL) {
        memmove(s, s + 5, strlen(s + 5) + 1);
        b->len -= 5;
    }
}

static bool
starts_with(struct lv s, const char *prefix)
{
    size_t n = strlen(prefix);
    return s.n >= n && memcmp(s.p, prefix, n) == 0;
}

static bool
is_http(struct lv s)
{
    return starts_with(s, "http://") || starts_with(s, "https://") || starts_with(s, "HTTP://") ||
           starts_with(s, "HTTPS://");
}

/* Checks the structural properties of out = rewrite(in) with the golden options. */
static void
check_properties(const char *name, const char *in, size_t in_len, const char *out, size_t out_len,
                 const struct hls_info *info, bool redundant)
{
    size_t ni, no;
    struct lv *li = split_lines(in, in_len, &ni);
    struct lv *lo = split_lines(out, out_len, &no);
    struct buf mi, mo;
    buf_init(&mi, 0);
    buf_init(&mo, 0);

    /* size bound */
    if (out_len > 2 * in_len + 4096)
        fail_msg("%s: output %zu bytes for %zu input bytes", name, out_len, in_len);
    /* the final newline (or its absence) is kept */
    assert_true((in_len > 0 && in[in_len - 1] == '\n') ==
                (out_len > 0 && out[out_len - 1] == '\n'));

    if (!info->multivariant || !redundant) {
        if (ni != no)
            fail_msg("%s: %zu lines in, %zu out", name, ni, no);
        for (size_t i = 0; i < ni; i++) {
            mask_line(li[i], &mi);
            mask_line(lo[i], &mo);
            if (strcmp(mi.data, mo.data) != 0)
                fail_msg("%s line %zu: \"%s\" became \"%s\"", name, i + 1, mi.data, mo.data);
        }
    } else {
        /* every input line in order; every extra line a copy of a variant or rendition line */
        size_t j = 0;
        for (size_t i = 0; i < ni; i++) {
            mask_line(li[i], &mi);
            for (;;) {
                if (j >= no)
                    fail_msg("%s: input line %zu \"%s\" missing", name, i + 1, mi.data);
                mask_line(lo[j++], &mo);
                if (strcmp(mi.data, mo.data) == 0)
                    break;
                bool copy_line = starts_with(lo[j - 1], "#EXT-X-STREAM-INF:") ||
                                 starts_with(lo[j - 1], "#EXT-X-I-FRAME-STREAM-INF:") ||
                                 starts_with(lo[j - 1], "#EXT-X-MEDIA:") ||
                                 starts_with(lo[j - 1], CDN_B "/") ||
                                 starts_with(lo[j - 1], SELF "/");
                if (!copy_line)
                    fail_msg("%s: extra output line %zu \"%s\"", name, j, mo.data);
                bool found = false;
                for (size_t k = 0; k < ni && !found; k++) {
                    mask_line(li[k], &mi);
                    found = strcmp(mi.data, mo.data) == 0;
                }
                if (!found)
                    fail_msg("%s: output line %zu \"%s\" is no copy", name, j, mo.data);
                mask_line(li[i], &mi);
            }
        }
        for (; j < no; j++) {
            if (!starts_with(lo[j], "#EXT-X-") && !starts_with(lo[j], SELF "/") &&
                !starts_with(lo[j], CDN_B "/"))
                fail_msg("%s: trailing output line %zu", name, j + 1);
        }
    }

    /* every http(s) URI of the output is under a target base or a foreign URI of the input */
    for (size_t j = 0; j < no; j++) {
        struct lv spans[64];
        size_t n = line_uris(lo[j], spans, 64);
        for (size_t s = 0; s < n; s++) {
            if (!is_http(spans[s]))
                continue;
            if (starts_with(spans[s], CDN_A "/") || starts_with(spans[s], CDN_B "/") ||
                starts_with(spans[s], SELF "/"))
                continue;
            bool found = false;
            for (size_t i = 0; i < ni && !found; i++) {
                struct lv in_spans[64];
                size_t m = line_uris(li[i], in_spans, 64);
                for (size_t t = 0; t < m && !found; t++)
                    found = in_spans[t].n == spans[s].n &&
                            memcmp(in_spans[t].p, spans[s].p, spans[s].n) == 0;
            }
            if (!found)
                fail_msg("%s: output line %zu has URI \"%.*s\" from nowhere", name, j + 1,
                         (int)spans[s].n, spans[s].p);
        }
    }
    buf_free(&mi);
    buf_free(&mo);
    free(li);
    free(lo);
}

/* ---- golden files and properties over every fixture ---------------------------------------- */

static void
test_hls_golden_fixtures(void **state)
{
    (void)state;
    size_t n;
    char **names = list_fixtures(&n);
    bool regen =
        getenv("STEERD_REGEN_GOLDEN") != NULL && strcmp(getenv("STEERD_REGEN_GOLDEN"), "1") == 0;
    assert_true(n >= 31);
    for (size_t i = 0; i < n; i++) {
        char path[1024], url[1024];
        size_t in_len = 0, want_len = 0;
        snprintf(path, sizeof(path), "%s/%s", HLS_DIR, names[i]);
        char *in = read_file(path, &in_len);
        assert_non_null(in);
        snprintf(url, sizeof(url), PL "%s", names[i]);
        struct hls_opts o = golden_opts(url);
        struct buf out;
        struct hls_info info;
        buf_init(&out, 0);
        enum hls_status st = hls_rewrite(in, in_len, &o, &out, &info);
        if (st != HLS_OK)
            fail_msg("%s: %s", names[i], hls_status_str(st));
        snprintf(path, sizeof(path), "%s/expected/%s", HLS_DIR, names[i]);
        if (regen)
            write_file(path, out.data, out.len);
        char *want = read_file(path, &want_len);
        if (want == NULL)
            fail_msg("%s: no golden file (run with STEERD_REGEN_GOLDEN=1)", names[i]);
        if (want_len != out.len || memcmp(want, out.data, out.len) != 0)
            fail_msg("%s: output differs from %s", names[i], path);
        free(want);
        buf_free(&out);
        free(in);
    }
    free_names(names, n);
}

#define STEER_URI "https://steer.example/steer/hls?steerd_s=0123456789abcdef"

static size_t
count_str(const char *hay, size_t len, const char *needle)
{
    size_t k = 0, n = strlen(needle);
    for (size_t i = 0; i + n <= len; i++)
        k += memcmp(hay + i, needle, n) == 0;
    return k;
}

/* Steering mode over every fixture: golden files in expected-steering/, one steering tag per
 * multivariant playlist, every variant in a pathway, media playlists as without steering. */
static void
test_hls_steering_golden_fixtures(void **state)
{
    (void)state;
    size_t n;
    char **names = list_fixtures(&n);
    bool regen =
        getenv("STEERD_REGEN_GOLDEN") != NULL && strcmp(getenv("STEERD_REGEN_GOLDEN"), "1") == 0;
    for (size_t i = 0; i < n; i++) {
        char path[1024], url[1024];
        size_t in_len = 0, want_len = 0;
        snprintf(path, sizeof(path), "%s/%s", HLS_DIR, names[i]);
        char *in = read_file(path, &in_len);
        assert_non_null(in);
        snprintf(url, sizeof(url), PL "%s", names[i]);
        struct hls_opts o = golden_opts(url);
        o.steering_uri = STEER_URI;
        struct buf out, plain;
        struct hls_info info;
        buf_init(&out, 0);
        buf_init(&plain, 0);
        if (hls_rewrite(in, in_len, &o, &out, &info) != HLS_OK)
            fail_msg("%s: not rewritten", names[i]);
        size_t tags = count_str(out.data, out.len, "#EXT-X-CONTENT-STEERING:");
        size_t variants = count_str(out.data, out.len, "#EXT-X-STREAM-INF:");
        size_t with_pathway = count_str(out.data, out.len, ",PATHWAY-ID=\"");
        if (info.multivariant && variants > 0) {
            if (tags != 1 || count_str(out.data, out.len, "SERVER-URI=\"" STEER_URI "\"") != 1)
                fail_msg("%s: %zu steering tags", names[i], tags);
            if (count_str(out.data, out.len, "STABLE-VARIANT-ID=") < variants)
                fail_msg("%s: a variant without STABLE-VARIANT-ID", names[i]);
            if (with_pathway < variants)
                fail_msg("%s: a variant without PATHWAY-ID", names[i]);
            if (variants % 2 != 0)
                fail_msg("%s: variants are not listed once per CDN", names[i]);
        } else {
            struct hls_opts po = golden_opts(url);
            assert_int_equal(hls_rewrite(in, in_len, &po, &plain, NULL), HLS_OK);
            if (plain.len != out.len || memcmp(plain.data, out.data, out.len) != 0)
                fail_msg("%s: a media playlist changed in steering mode", names[i]);
        }
        snprintf(path, sizeof(path), "%s/expected-steering/%s", HLS_DIR, names[i]);
        if (regen)
            write_file(path, out.data, out.len);
        char *want = read_file(path, &want_len);
        if (want == NULL)
            fail_msg("%s: no golden file (run with STEERD_REGEN_GOLDEN=1)", names[i]);
        if (want_len != out.len || memcmp(want, out.data, out.len) != 0)
            fail_msg("%s: output differs from %s", names[i], path);
        free(want);
        buf_free(&out);
        buf_free(&plain);
        free(in);
    }
    free_names(names, n);
}

/* An origin steering tag: replaced (and only the origin's first pathway kept, per CDN), or with
 * steering_keep left to the origin (the output is the one without steering). */
static void
test_hls_steering_existing_tag(void **state)
{
    (void)state;
    static const char in[] =
        "#EXTM3U\n"
        "#EXT-X-CONTENT-STEERING:SERVER-URI=\"https://elsewhere.example/s\",PATHWAY-ID=\"A\"\n"
        "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"en\",URI=\"a.m3u8\"\n"
        "#EXT-X-STREAM-INF:PATHWAY-ID=\"A\",BANDWIDTH=1,AUDIO=\"a\"\n"
        "v.m3u8\n"
        "#EXT-X-STREAM-INF:BANDWIDTH=1,AUDIO=\"a\",PATHWAY-ID=\"B\"\n"
        "https://b.example/v.m3u8\n";
    static const char want[] =
        "#EXTM3U\n"
        "#EXT-X-CONTENT-STEERING:SERVER-URI=\"" STEER_URI "\",PATHWAY-ID=\"alpha\"\n"
        "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a-alpha\",NAME=\"en\",URI=\"" SELF
        "/vod/x/a.m3u8?steerd_sid=s1&steerd_cdn=alpha\",STABLE-RENDITION-ID=\"r0\"\n"
        "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a-beta\",NAME=\"en\",URI=\"" SELF
        "/vod/x/a.m3u8?steerd_sid=s1&steerd_cdn=beta\",STABLE-RENDITION-ID=\"r0\"\n"
        "#EXT-X-STREAM-INF:BANDWIDTH=1,AUDIO=\"a-alpha\",PATHWAY-ID=\"alpha\",STABLE-VARIANT-ID="
        "\"v0\"\n" SELF "/vod/x/v.m3u8?steerd_sid=s1&steerd_cdn=alpha\n"
        "#EXT-X-STREAM-INF:BANDWIDTH=1,AUDIO=\"a-beta\",PATHWAY-ID=\"beta\",STABLE-VARIANT-ID="
        "\"v0\"\n" SELF "/vod/x/v.m3u8?steerd_sid=s1&steerd_cdn=beta\n";
    struct hls_opts o = golden_opts(PL "main.m3u8");
    o.steering_uri = STEER_URI;
    struct buf out, plain;
    struct hls_info info;
    buf_init(&out, 0);
    buf_init(&plain, 0);
    assert_int_equal(hls_rewrite(in, sizeof(in) - 1, &o, &out, &info), HLS_OK);
    assert_true(info.has_steering_tag);
    if (strcmp(out.data, want) != 0)
        fail_msg("got:\n%s\nwant:\n%s", out.data, want);

    o.steering_keep = true;
    assert_int_equal(hls_rewrite(in, sizeof(in) - 1, &o, &out, NULL), HLS_OK);
    struct hls_opts po = golden_opts(PL "main.m3u8");
    assert_int_equal(hls_rewrite(in, sizeof(in) - 1, &po, &plain, NULL), HLS_OK);
    assert_string_equal(out.data, plain.data);
    assert_non_null(strstr(out.data, "elsewhere.example"));

    /* a SERVER-URI that could break out of its quotes is refused */
    o.steering_uri = "https://steer.example/s?\"x";
    assert_int_equal(hls_rewrite(in, sizeof(in) - 1, &o, &out, NULL), HLS_BAD);
    o.steering_uri = "/relative";
    assert_int_equal(hls_rewrite(in, sizeof(in) - 1, &o, &out, NULL), HLS_BAD);
    buf_free(&out);
    buf_free(&plain);
}

static void
test_hls_fixture_properties(void **state)
{
    (void)state;
    size_t n;
    char **names = list_fixtures(&n);
    for (size_t i = 0; i < n; i++) {
        char path[1024], url[1024];
        size_t in_len = 0;
        snprintf(path, sizeof(path), "%s/%s", HLS_DIR, names[i]);
        char *in = read_file(path, &in_len);
        assert_non_null(in);
        snprintf(url, sizeof(url), PL "%s", names[i]);
        for (int redundant = 0; redundant <= 1; redundant++) {
            struct hls_opts o = golden_opts(url);
            o.redundant = redundant;
            struct buf out, again;
            struct hls_info info;
            buf_init(&out, 0);
            buf_init(&again, 0);
            assert_int_equal(hls_rewrite(in, in_len, &o, &out, &info), HLS_OK);
            check_properties(names[i], in, in_len, out.data, out.len, &info, redundant);
            /* the output is a playlist again, and without copies a second pass changes
             * nothing: every rewritten URI now points outside the origin */
            assert_int_equal(hls_rewrite(out.data, out.len, &o, &again, NULL), HLS_OK);
            if (!redundant) {
                assert_int_equal(again.len, out.len);
                assert_memory_equal(again.data, out.data, out.len);
            }
            /* the exact output size is enough room */
            o.max_output = out.len;
            assert_int_equal(hls_rewrite(in, in_len, &o, &again, NULL), HLS_OK);
            assert_int_equal(again.len, out.len);
            o.max_output = out.len - 1;
            assert_int_equal(hls_rewrite(in, in_len, &o, &again, NULL), HLS_TOO_LARGE);
            assert_int_equal(again.len, 0);
            buf_free(&out);
            buf_free(&again);
        }
        free(in);
    }
    free_names(names, n);
}

/* ---- hand-written cases ------------------------------------------------------------------ */

static struct hls_opts
simple_opts(void)
{
    struct hls_opts o = golden_opts(PL "index.m3u8");
    o.redundant = false;
    return o;
}

static void
test_hls_rewrite_keeps_line_endings(void **state)
{
    (void)state;
    struct hls_opts o = simple_opts();
    expect_rw("#EXTM3U\r\n#EXTINF:1,\r\na.ts\r\n", &o,
              "#EXTM3U\r\n#EXTINF:1,\r\n" CDN_A "/vod/x/a.ts\r\n");
    /* per line: CRLF and LF mixed, and no final newline */
    expect_rw("#EXTM3U\n#EXTINF:1,\r\na.ts\n#EXTINF:1,\nb.ts", &o,
              "#EXTM3U\n#EXTINF:1,\r\n" CDN_A "/vod/x/a.ts\n#EXTINF:1,\n" CDN_A "/vod/x/b.ts");
    /* blank lines, comments, whitespace around a URI line */
    expect_rw("#EXTM3U\n\n# a comment URI=\"x.ts\"\n  \n\t c.ts \n", &o,
              "#EXTM3U\n\n# a comment URI=\"x.ts\"\n  \n\t " CDN_A "/vod/x/c.ts \n");
}

static void
test_hls_rewrite_accepts_bom_and_utf8(void **state)
{
    (void)state;
    struct hls_opts o = simple_opts();
    expect_rw("\xEF\xBB\xBF#EXTM3U\n#EXTINF:1,caf\xC3\xA9\n\xC3\xA9t\xC3\xA9.ts\n", &o,
              "\xEF\xBB\xBF#EXTM3U\n#EXTINF:1,caf\xC3\xA9\n" CDN_A "/vod/x/\xC3\xA9t\xC3\xA9.ts\n");
    expect_rw("#EXTM3U \n", &o, "#EXTM3U \n");
    expect_rw("#EXTM3U", &o, "#EXTM3U");
}

static void
test_hls_rewrite_leaves_variables_and_other_schemes(void **state)
{
    (void)state;
    struct hls_opts o = simple_opts();
    const char *in = "#EXTM3U\n"
                     "#EXT-X-DEFINE:NAME=\"p\",VALUE=\"x\"\n"
                     "#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://key-1\"\n"
                     "#EXT-X-KEY:METHOD=SAMPLE-AES-CTR,URI=\"data:text/plain;base64,AAAA\"\n"
                     "#EXT-X-MAP:URI=\"{$p}/init.mp4\"\n"
                     "#EXTINF:1,\n"
                     "{$p}/a.ts\n"
                     "#EXTINF:1,\n"
                     "http://h.example/{$p}.ts\n"
                     "#EXTINF:1,\n"
                     "javascript:alert(1)\n";
    expect_rw(in, &o, in);
}

static void
test_hls_rewrite_resolves_references(void **state)
{
    (void)state;
    struct hls_opts o = simple_opts();
    expect_rw("#EXTM3U\n"
              "../../a.ts\n"
              "../../../../b.ts\n"
              "./c/./d/../e.ts\n"
              "/abs/f.ts\n"
              "//origin.example/g.ts\n"
              "http://origin.example/h.ts\n"
              "HTTP://ORIGIN.EXAMPLE:80/i.ts\n"
              "http://origin.example:8080/j.ts\n"
              "https://origin.example/k.ts\n"
              "http://origin.example.evil/l.ts\n"
              "http://origin.example@evil.example/m.ts\n"
              "//other.example/n.ts\n"
              "o.ts?tok=1&x=%20#t=5\n"
              "?q=1\n",
              &o,
              "#EXTM3U\n" CDN_A "/a.ts\n" CDN_A "/b.ts\n" CDN_A "/vod/x/c/e.ts\n" CDN_A
              "/abs/f.ts\n" CDN_A "/g.ts\n" CDN_A "/h.ts\n" CDN_A "/i.ts\n"
              "http://origin.example:8080/j.ts\n"
              "https://origin.example/k.ts\n"
              "http://origin.example.evil/l.ts\n"
              "http://origin.example@evil.example/m.ts\n"
              "//other.example/n.ts\n" CDN_A "/vod/x/o.ts?tok=1&x=%20#t=5\n" CDN_A
              "/vod/x/index.m3u8?q=1\n");
}

static void
test_hls_rewrite_origin_with_path(void **state)
{
    (void)state;
    struct hls_opts o = simple_opts();
    o.origin_base = "http://origin.example/vod/";
    o.playlist_url = "http://origin.example/vod/x/y.m3u8?sig=1";
    expect_rw("#EXTM3U\na.ts\n../b.ts\n../../c.ts\n/vodka/d.ts\n/vod/e.ts\n/vod\n"
              "http://origin.example/vod/f.ts\nhttp://origin.example/vodka/g.ts\n"
              "http://origin.example/vod/./h.ts\n./../x/.././i.ts\n",
              &o,
              "#EXTM3U\n" CDN_A "/x/a.ts\n" CDN_A "/b.ts\n"
              "http://origin.example/c.ts\n"
              "http://origin.example/vodka/d.ts\n" CDN_A "/e.ts\n"
              "http://origin.example/vod\n" CDN_A "/f.ts\n"
              "http://origin.example/vodka/g.ts\n" CDN_A "/h.ts\n" CDN_A "/i.ts\n");
}

static void
test_hls_rewrite_playlist_outside_origin(void **state)
{
    (void)state;
    struct hls_opts o = simple_opts();
    o.playlist_url = "http://elsewhere.example/p/q.m3u8";
    /* relative references become absolute so the player still finds them */
    expect_rw("#EXTM3U\na.ts\nhttp://origin.example/b.ts\n", &o,
              "#EXTM3U\nhttp://elsewhere.example/p/a.ts\n" CDN_A "/b.ts\n");
}

static void
test_hls_rewrite_nested_and_segment_targets(void **state)
{
    (void)state;
    struct hls_opts o = simple_opts();
    const char *in = "#EXTM3U\n"
                     "#EXT-X-SESSION-KEY:METHOD=AES-128,URI=\"k/session.key\"\n"
                     "#EXT-X-SESSION-DATA:DATA-ID=\"d\",URI=\"data.json\"\n"
                     "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"x,URI=y\",URI=\"a.m3u8\"\n"
                     "#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=1,URI=\"i.m3u8?z=1#f\"\n"
                     "#EXT-X-STREAM-INF:BANDWIDTH=2,AUDIO=\"a\"\n"
                     "v.m3u8\n";
    expect_rw(in, &o,
              "#EXTM3U\n"
              "#EXT-X-SESSION-KEY:METHOD=AES-128,URI=\"" CDN_A "/vod/x/k/session.key\"\n"
              "#EXT-X-SESSION-DATA:DATA-ID=\"d\",URI=\"" CDN_A "/vod/x/data.json\"\n"
              "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"x,URI=y\",URI=\"" SELF
              "/vod/x/a.m3u8?steerd_sid=s1\"\n"
              "#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=1,URI=\"" SELF
              "/vod/x/i.m3u8?z=1&steerd_sid=s1#f\"\n"
              "#EXT-X-STREAM-INF:BANDWIDTH=2,AUDIO=\"a\"\n" SELF "/vod/x/v.m3u8?steerd_sid=s1\n");
    /* without self_base nested playlists go to the CDN too, without nested_query */
    o.self_base = NULL;
    o.cdns = two_cdns + 1;
    o.ncdns = 1;
    expect_rw("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=2\nv.m3u8?a=b\n", &o,
              "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=2\n" CDN_B "/vod/x/v.m3u8?a=b\n");
}

static void
test_hls_rewrite_empty_self_base_gives_path_absolute(void **state)
{
    (void)state;
    struct hls_opts o = simple_opts();
    o.self_base = "";
    expect_rw(
        "#EXTM3U\n"
        "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"en\",URI=\"a.m3u8\"\n"
        "#EXT-X-STREAM-INF:BANDWIDTH=2,AUDIO=\"a\"\n"
        "v/index.m3u8?t=1\n"
        "#EXT-X-STREAM-INF:BANDWIDTH=3\n"
        "http://origin.example/other/w.m3u8\n",
        &o,
        "#EXTM3U\n"
        "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"en\",URI=\"/vod/x/a.m3u8?steerd_sid=s1\"\n"
        "#EXT-X-STREAM-INF:BANDWIDTH=2,AUDIO=\"a\"\n"
        "/vod/x/v/index.m3u8?t=1&steerd_sid=s1\n"
        "#EXT-X-STREAM-INF:BANDWIDTH=3\n"
        "/other/w.m3u8?steerd_sid=s1\n");
    /* segments still go to the CDN; "/" means the same as "" */
    o.self_base = "/";
    expect_rw("#EXTM3U\n#EXTINF:1,\na.ts\n", &o, "#EXTM3U\n#EXTINF:1,\n" CDN_A "/vod/x/a.ts\n");
    /* a relative self_base is still refused */
    o.self_base = "steerd.example";
    expect_status("#EXTM3U\n", 8, &o, HLS_BAD);
}

static void
test_hls_rewrite_keys_and_foreign_hosts(void **state)
{
    (void)state;
    struct hls_opts o = simple_opts();
    expect_rw("#EXTM3U\n"
              "#EXT-X-KEY:METHOD=AES-128,URI=\"https://keys.example/k?id=1\",IV=0x1\n"
              "#EXT-X-KEY:METHOD=AES-128,URI=\"/keys/k1\",IV=0x2\n"
              "#EXT-X-KEY:METHOD=AES-128,URI=k2\n",
              &o,
              "#EXTM3U\n"
              "#EXT-X-KEY:METHOD=AES-128,URI=\"https://keys.example/k?id=1\",IV=0x1\n"
              "#EXT-X-KEY:METHOD=AES-128,URI=\"" CDN_A "/keys/k1\",IV=0x2\n"
              "#EXT-X-KEY:METHOD=AES-128,URI=k2\n");
}

static void
test_hls_rewrite_ignores_uri_text_outside_attributes(void **state)
{
    (void)state;
    struct hls_opts o = simple_opts();
    const char *in = "#EXTM3U\n"
                     "#EXTINF:10,title URI=\"t.ts\"\n"
                     "#EXT-X-PROGRAM-DATE-TIME:2020-01-01T00:00:00Z\n"
                     "#EXT-X-DATERANGE:ID=\"1\",X-ASSET-URI=\"ad.m3u8\",X-URI=\"u\"\n"
                     "#EXT-X-CONTENT-STEERING:SERVER-URI=\"/steer\"\n"
                     "#EXT-X-FOO:BAR=\"URI=\\\"\",BAZ=1\n";
    expect_rw(in, &o, in);
    /* an unknown tag with a URI attribute is rewritten like a segment */
    expect_rw("#EXTM3U\n#EXT-X-NEW-THING:A=1, URI=\"n.bin\"\n", &o,
              "#EXTM3U\n#EXT-X-NEW-THING:A=1, URI=\"" CDN_A "/vod/x/n.bin\"\n");
}

static void
test_hls_rewrite_escapes_quotes_from_playlist_url(void **state)
{
    (void)state;
    struct hls_opts o = simple_opts();
    o.playlist_url = "http://origin.example/a\"b/p.m3u8";
    /* inside a quoted attribute '"' becomes %22; a URI line has no quotes to break */
    expect_rw("#EXTM3U\n#EXT-X-MAP:URI=\"i.mp4\"\n#EXT-X-MAP:URI=\"../c/./i.mp4\"\ns.ts\n", &o,
              "#EXTM3U\n#EXT-X-MAP:URI=\"" CDN_A "/a%22b/i.mp4\"\n#EXT-X-MAP:URI=\"" CDN_A
              "/c/i.mp4\"\n" CDN_A "/a\"b/s.ts\n");
    o.playlist_url = "http://origin.example/a\"b/./p.m3u8"; /* the slow path */
    expect_rw("#EXTM3U\n#EXT-X-MAP:URI=\"i.mp4\"\n", &o,
              "#EXTM3U\n#EXT-X-MAP:URI=\"" CDN_A "/a%22b/i.mp4\"\n");
}

static void
test_hls_rewrite_llhls_and_delta_updates(void **state)
{
    (void)state;
    struct hls_opts o = simple_opts();
    struct hls_info info;
    struct buf out;
    buf_init(&out, 0);
    const char *in = "#EXTM3U\n"
                     "#EXT-X-TARGETDURATION:4\n"
                     "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=24.0\n"
                     "#EXT-X-PART-INF:PART-TARGET=1.0005\n"
                     "#EXT-X-MEDIA-SEQUENCE:100\n"
                     "#EXT-X-SKIP:SKIPPED-SEGMENTS=3\n"
                     "#EXTINF:4.0,\n"
                     "s103.mp4\n"
                     "#EXT-X-PART:DURATION=1.0,URI=\"p104.0.mp4\",BYTERANGE=\"100@0\"\n"
                     "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"p104.1.mp4\",BYTERANGE-START=100\n"
                     "#EXT-X-RENDITION-REPORT:URI=\"../a/l.m3u8\",LAST-MSN=104,LAST-PART=0\n";
    assert_int_equal(rw(in, &o, &out, &info), HLS_OK);
    assert_string_equal(out.data, "#EXTM3U\n"
                                  "#EXT-X-TARGETDURATION:4\n"
                                  "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=24.0\n"
                                  "#EXT-X-PART-INF:PART-TARGET=1.0005\n"
                                  "#EXT-X-MEDIA-SEQUENCE:100\n"
                                  "#EXT-X-SKIP:SKIPPED-SEGMENTS=3\n"
                                  "#EXTINF:4.0,\n" CDN_A "/vod/x/s103.mp4\n"
                                  "#EXT-X-PART:DURATION=1.0,URI=\"" CDN_A
                                  "/vod/x/p104.0.mp4\",BYTERANGE=\"100@0\"\n"
                                  "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"" CDN_A
                                  "/vod/x/p104.1.mp4\",BYTERANGE-START=100\n"
                                  "#EXT-X-RENDITION-REPORT:URI=\"" SELF
                                  "/vod/a/l.m3u8?steerd_sid=s1\",LAST-MSN=104,LAST-PART=0\n");
    assert_false(info.multivariant);
    assert_false(info.endlist);
    assert_false(info.has_steering_tag);
    assert_int_equal(info.target_duration_s, 4);
    assert_int_equal(info.part_target_ms, 1001);
    buf_free(&out);
}

static void
test_hls_rewrite_reports_info(void **state)
{
    (void)state;
    struct hls_opts o = simple_opts();
    struct hls_info info;
    struct buf out;
    buf_init(&out, 0);
    assert_int_equal(rw("#EXTM3U\n#EXT-X-TARGETDURATION:x\n#EXT-X-PART-INF:PART-TARGET=0.33334\n"
                        "#EXT-X-ENDLIST\n",
                        &o, &out, &info),
                     HLS_OK);
    assert_true(info.endlist);
    assert_int_equal(info.target_duration_s, 0);
    assert_int_equal(info.part_target_ms, 333);
    assert_int_equal(rw("#EXTM3U\n#EXT-X-CONTENT-STEERING:SERVER-URI=\"s\"\n", &o, &out, &info),
                     HLS_OK);
    assert_true(info.multivariant);
    assert_true(info.has_steering_tag);
    assert_int_equal(rw("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv.m3u8\n", &o, &out, &info),
                     HLS_OK);
    assert_true(info.multivariant);
    assert_false(info.has_steering_tag);
    buf_free(&out);
}

static void
test_hls_rewrite_rejects_non_playlists(void **state)
{
    (void)state;
    struct hls_opts o = simple_opts();
    const char *bad[] = {"",           "#EXTM3",      "#EXTM3UX\n",        "<html>#EXTM3U\n",
                         " #EXTM3U\n", "\n#EXTM3U\n", "\xEF\xBB#EXTM3U\n", "#extm3u\n"};
    for (size_t i = 0; i < UTIL_ARRAY_LEN(bad); i++)
        expect_status(bad[i], strlen(bad[i]), &o, HLS_NOT_PLAYLIST);
    expect_status(NULL, 0, &o, HLS_NOT_PLAYLIST);
}

static void
test_hls_rewrite_rejects_bad_bytes_and_long_lines(void **state)
{
    (void)state;
    struct hls_opts o = simple_opts();
    expect_status("#EXTM3U\na\0b.ts\n", 14, &o, HLS_BAD);
    expect_status("#EXTM3U\na.ts\rb.ts\n", 18, &o, HLS_BAD);
    expect_status("#EXTM3U\na.ts\r", 13, &o, HLS_BAD);
    expect_status("#EXTM3U\r\r\n", 10, &o, HLS_BAD);

    size_t n = 8 + HLS_MAX_LINE + 1;
    char *in = xmalloc(n + 1);
    memcpy(in, "#EXTM3U\n", 8);
    memset(in + 8, 'a', HLS_MAX_LINE);
    in[n - 1] = '\n';
    expect_status(in, n, &o, HLS_OK); /* exactly the cap */
    in[n - 1] = 'a';
    expect_status(in, n, &o, HLS_BAD); /* one over, even without a newline */
    memcpy(in + 8, "#EXT-X-FOO:", 11);
    expect_status(in, n, &o, HLS_BAD);
    free(in);
}

static void
test_hls_rewrite_enforces_max_output(void **state)
{
    (void)state;
    struct hls_opts o = simple_opts();
    const char *in = "#EXTM3U\n#EXTINF:1,\na.ts\n";
    const char *want = "#EXTM3U\n#EXTINF:1,\n" CDN_A "/vod/x/a.ts\n";
    struct buf out;
    o.max_output = strlen(want);
    expect_rw(in, &o, want);
    o.max_output = strlen(want) - 1;
    expect_status(in, strlen(in), &o, HLS_TOO_LARGE);
    /* a cap that cuts the verbatim tail */
    o.max_output = 10;
    expect_status(in, strlen(in), &o, HLS_TOO_LARGE);
    /* the buffer's own cap counts too */
    o.max_output = 0;
    buf_init(&out, 20);
    assert_int_equal(rw(in, &o, &out, NULL), HLS_TOO_LARGE);
    assert_int_equal(out.len, 0);
    buf_free(&out);
}

static void
test_hls_rewrite_rejects_bad_options(void **state)
{
    (void)state;
    const char *in = "#EXTM3U\na.ts\n";
    struct hls_opts o = simple_opts();
    struct hls_target t[1] = {{"alpha", CDN_A, 0}};

    expect_status(in, strlen(in), NULL, HLS_BAD);
    o.ncdns = 0;
    expect_status(in, strlen(in), &o, HLS_BAD);
    o = simple_opts();
    o.self_base = "http://steerd.example/\"x";
    expect_status(in, strlen(in), &o, HLS_BAD);
    o = simple_opts();
    o.self_base = "http://steerd.example/\r\n#EXT-X-ENDLIST";
    expect_status(in, strlen(in), &o, HLS_BAD);
    o = simple_opts();
    o.nested_query = "a=1\n#EXT-X-ENDLIST";
    expect_status(in, strlen(in), &o, HLS_BAD);
    o = simple_opts();
    o.nested_query = "a=\"1";
    expect_status(in, strlen(in), &o, HLS_BAD);
    o = simple_opts();
    o.cdn_param = "a b";
    expect_status(in, strlen(in), &o, HLS_BAD);
    o = simple_opts();
    o.playlist_url = "/vod/x/index.m3u8";
    expect_status(in, strlen(in), &o, HLS_BAD);
    o = simple_opts();
    o.playlist_url = "http://origin.example/a\nb.m3u8";
    expect_status(in, strlen(in), &o, HLS_BAD);
    o = simple_opts();
    o.origin_base = "ftp://origin.example";
    expect_status(in, strlen(in), &o, HLS_BAD);

    const char *bad_ids[] = {"", "a b", "a\"b", "a,b", "al\npha"};
    for (size_t i = 0; i < UTIL_ARRAY_LEN(bad_ids); i++) {
        o = simple_opts();
        t[0] = (struct hls_target){bad_ids[i], CDN_A, 0};
        o.cdns = t;
        o.ncdns = 1;
        expect_status(in, strlen(in), &o, HLS_BAD);
    }
    const char *bad_bases[] = {"cdn-a.example", "http://c.example/\"", "http://c.example/a\r",
                               "http://c.example/?q=1", "data:,x"};
    for (size_t i = 0; i < UTIL_ARRAY_LEN(bad_bases); i++) {
        o = simple_opts();
        t[0] = (struct hls_target){"alpha", bad_bases[i], 0};
        o.cdns = t;
        o.ncdns = 1;
        expect_status(in, strlen(in), &o, HLS_BAD);
    }
    /* base_len limits the base; a trailing '/' is dropped */
    o = simple_opts();
    t[0] = (struct hls_target){"alpha", "http://c.example/e/xyz", 18};
    o.cdns = t;
    o.ncdns = 1;
    expect_rw(in, &o, "#EXTM3U\nhttp://c.example/e/vod/x/a.ts\n");
}

static const struct hls_target three_cdns[] = {
    {"alpha", CDN_A, 0},
    {"beta", CDN_B, 0},
    {"gamma", "http://cdn-c.example:81", 0},
};

static void
test_hls_rewrite_redundant_copies_in_rank_order(void **state)
{
    (void)state;
    struct hls_opts o = golden_opts(PL "m.m3u8");
    o.cdns = three_cdns;
    o.ncdns = 3;
    o.cdn_param = "pin";
    expect_rw(
        "#EXTM3U\n"
        "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"en\",URI=\"en.m3u8\"\n"
        "#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID=\"cc\",NAME=\"cc1\",INSTREAM-ID=\"CC1\"\n"
        "#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"none\",NAME=\"s\",URI=\"https://x.example/s\"\n"
        "#EXT-X-STREAM-INF:BANDWIDTH=1,AUDIO=\"aud\",CLOSED-CAPTIONS=\"cc\",SUBTITLES=\"n\"\n"
        "# between\n"
        "v1.m3u8\n"
        "#EXT-X-STREAM-INF:BANDWIDTH=2\n"
        "http://foreign.example/v2.m3u8\n"
        "#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=3,URI=\"i.m3u8\"\n",
        &o,
        "#EXTM3U\n"
        "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"en\",URI=\"" SELF
        "/vod/x/en.m3u8?steerd_sid=s1\"\n"
        "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud-beta\",NAME=\"en\",URI=\"" SELF
        "/vod/x/en.m3u8?steerd_sid=s1&pin=beta\"\n"
        "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud-gamma\",NAME=\"en\",URI=\"" SELF
        "/vod/x/en.m3u8?steerd_sid=s1&pin=gamma\"\n"
        "#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID=\"cc\",NAME=\"cc1\",INSTREAM-ID=\"CC1\"\n"
        "#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"none\",NAME=\"s\",URI=\"https://x.example/s\"\n"
        "#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"none-beta\",NAME=\"s\","
        "URI=\"https://x.example/s\"\n"
        "#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"none-gamma\",NAME=\"s\","
        "URI=\"https://x.example/s\"\n"
        "#EXT-X-STREAM-INF:BANDWIDTH=1,AUDIO=\"aud\",CLOSED-CAPTIONS=\"cc\",SUBTITLES=\"n\"\n"
        "# between\n" SELF "/vod/x/v1.m3u8?steerd_sid=s1\n"
        "#EXT-X-STREAM-INF:BANDWIDTH=1,AUDIO=\"aud-beta\",CLOSED-CAPTIONS=\"cc\","
        "SUBTITLES=\"n\"\n" SELF "/vod/x/v1.m3u8?steerd_sid=s1&pin=beta\n"
        "#EXT-X-STREAM-INF:BANDWIDTH=1,AUDIO=\"aud-gamma\",CLOSED-CAPTIONS=\"cc\","
        "SUBTITLES=\"n\"\n" SELF "/vod/x/v1.m3u8?steerd_sid=s1&pin=gamma\n"
        "#EXT-X-STREAM-INF:BANDWIDTH=2\n"
        "http://foreign.example/v2.m3u8\n"
        "#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=3,URI=\"" SELF "/vod/x/i.m3u8?steerd_sid=s1\"\n"
        "#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=3,URI=\"" SELF
        "/vod/x/i.m3u8?steerd_sid=s1&pin=beta\"\n"
        "#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=3,URI=\"" SELF
        "/vod/x/i.m3u8?steerd_sid=s1&pin=gamma\"\n");

    /* without self_base each copy points at its CDN; no final newline, CRLF */
    o.self_base = NULL;
    o.ncdns = 2;
    expect_rw("#EXTM3U\r\n#EXT-X-STREAM-INF:BANDWIDTH=1\r\nv.m3u8", &o,
              "#EXTM3U\r\n#EXT-X-STREAM-INF:BANDWIDTH=1\r\n" CDN_A
              "/vod/x/v.m3u8\r\n#EXT-X-STREAM-INF:BANDWIDTH=1\r\n" CDN_B "/vod/x/v.m3u8");
    expect_rw("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv.m3u8\n"
              "#EXT-X-MEDIA:TYPE=VIDEO,GROUP-ID=\"g\",URI=\"g.m3u8\"",
              &o,
              "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n" CDN_A
              "/vod/x/v.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=1\n" CDN_B "/vod/x/v.m3u8\n"
              "#EXT-X-MEDIA:TYPE=VIDEO,GROUP-ID=\"g\",URI=\"" CDN_A
              "/vod/x/g.m3u8\"\n#EXT-X-MEDIA:TYPE=VIDEO,GROUP-ID=\"g-beta\",URI=\"" CDN_B
              "/vod/x/g.m3u8\"");
}

static void
test_hls_rewrite_no_copies_with_steering_or_media(void **state)
{
    (void)state;
    struct hls_opts o = golden_opts(PL "m.m3u8");
    const char *pathway = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\na.m3u8\n"
                          "#EXT-X-STREAM-INF:BANDWIDTH=1,PATHWAY-ID=\"p\"\nb.m3u8\n";
    expect_rw(pathway, &o,
              "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n" SELF
              "/vod/x/a.m3u8?steerd_sid=s1\n#EXT-X-STREAM-INF:BANDWIDTH=1,PATHWAY-ID=\"p\"\n" SELF
              "/vod/x/b.m3u8?steerd_sid=s1\n");
    const char *steering = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\na.m3u8\n"
                           "#EXT-X-CONTENT-STEERING:SERVER-URI=\"/s\"\n";
    expect_rw(steering, &o,
              "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n" SELF
              "/vod/x/a.m3u8?steerd_sid=s1\n#EXT-X-CONTENT-STEERING:SERVER-URI=\"/s\"\n");
    /* a media playlist is never duplicated, even with a stray STREAM-INF */
    expect_rw("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n#EXTINF:1,\na.ts\n", &o,
              "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n#EXTINF:1,\n" SELF
              "/vod/x/a.ts?steerd_sid=s1\n");
    /* one CDN: nothing to copy */
    o.ncdns = 1;
    expect_rw("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\na.m3u8\n", &o,
              "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n" SELF "/vod/x/a.m3u8?steerd_sid=s1\n");
}

static void
test_hls_status_str_names_every_status(void **state)
{
    (void)state;
    assert_string_equal(hls_status_str(HLS_OK), "ok");
    assert_string_equal(hls_status_str(HLS_NOT_PLAYLIST), "not a playlist");
    assert_non_null(strstr(hls_status_str(HLS_BAD), "malformed"));
    assert_non_null(strstr(hls_status_str(HLS_TOO_LARGE), "too large"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hls_golden_fixtures),
        cmocka_unit_test(test_hls_steering_golden_fixtures),
        cmocka_unit_test(test_hls_steering_existing_tag),
        cmocka_unit_test(test_hls_fixture_properties),
        cmocka_unit_test(test_hls_rewrite_keeps_line_endings),
        cmocka_unit_test(test_hls_rewrite_accepts_bom_and_utf8),
        cmocka_unit_test(test_hls_rewrite_leaves_variables_and_other_schemes),
        cmocka_unit_test(test_hls_rewrite_resolves_references),
        cmocka_unit_test(test_hls_rewrite_origin_with_path),
        cmocka_unit_test(test_hls_rewrite_playlist_outside_origin),
        cmocka_unit_test(test_hls_rewrite_nested_and_segment_targets),
        cmocka_unit_test(test_hls_rewrite_empty_self_base_gives_path_absolute),
        cmocka_unit_test(test_hls_rewrite_keys_and_foreign_hosts),
        cmocka_unit_test(test_hls_rewrite_ignores_uri_text_outside_attributes),
        cmocka_unit_test(test_hls_rewrite_escapes_quotes_from_playlist_url),
        cmocka_unit_test(test_hls_rewrite_llhls_and_delta_updates),
        cmocka_unit_test(test_hls_rewrite_reports_info),
        cmocka_unit_test(test_hls_rewrite_rejects_non_playlists),
        cmocka_unit_test(test_hls_rewrite_rejects_bad_bytes_and_long_lines),
        cmocka_unit_test(test_hls_rewrite_enforces_max_output),
        cmocka_unit_test(test_hls_rewrite_rejects_bad_options),
        cmocka_unit_test(test_hls_rewrite_redundant_copies_in_rank_order),
        cmocka_unit_test(test_hls_rewrite_no_copies_with_steering_or_media),
        cmocka_unit_test(test_hls_status_str_names_every_status),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
