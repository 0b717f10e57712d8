#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "steerd/dash.h"
#include "steerd/util.h"

#include "dash_invariants.h"

#ifndef FIXTURE_DIR
#define FIXTURE_DIR "tests/fixtures"
#endif

#define DASH_DIR FIXTURE_DIR "/dash"

static const struct dash_target golden_cdns[] = {
    {"alpha", "http://cdn-a.example/edge", sizeof("http://cdn-a.example/edge") - 1},
    {"beta", "https://cdn-b.example", sizeof("https://cdn-b.example") - 1},
};

static struct dash_opts
golden_opts(const char *mpd_url)
{
    struct dash_opts o = {
        .mpd_url = mpd_url,
        .origin_base = "http://origin.example",
        .cdns = golden_cdns,
        .ncdns = UTIL_ARRAY_LEN(golden_cdns),
        .self_base = "http://steerd.example:8080",
        .nested_query = "steerd_sid=s1",
    };
    return o;
}

#define MPD_URL "http://origin.example/vod/x/test.mpd"

static char *
read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    struct buf b;
    char chunk[65536];
    size_t n;

    if (f == NULL)
        return NULL;
    buf_init(&b, 0);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        buf_append(&b, chunk, n);
    fclose(f);
    *len = b.len;
    if (b.data == NULL)
        return xstrdup("");
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

/* Rewrites the NUL-terminated in with o; returns the status, the output in out (caller frees
 * with buf_free). */
static enum dash_status
rewrite_str(const char *in, const struct dash_opts *o, struct buf *out, struct dash_info *info)
{
    buf_init(out, 0);
    return dash_rewrite(in, strlen(in), o, out, info);
}

/* Rewrites in with the golden options and checks the invariants; returns the output. */
static char *
rewrite_ok(const char *in, struct dash_info *info)
{
    struct dash_opts o = golden_opts(MPD_URL);
    struct buf out;
    char why[512];

    assert_int_equal(rewrite_str(in, &o, &out, info), DASH_OK);
    if (dash_inv_check(in, strlen(in), out.data, out.len, &o, true, why, sizeof(why)) != 0)
        fail_msg("invariant: %s\n%s", why, out.data);
    return out.data;
}

static void
assert_contains(const char *hay, const char *needle)
{
    if (strstr(hay, needle) == NULL)
        fail_msg("missing %s in\n%s", needle, hay);
}

static void
assert_lacks(const char *hay, const char *needle)
{
    if (strstr(hay, needle) != NULL)
        fail_msg("unexpected %s in\n%s", needle, hay);
}

/* Occurrences of needle in hay (a plain loop: sanitizer interceptors make repeated strstr on a
 * large string quadratic). */
static size_t
count_of(const char *hay, const char *needle)
{
    size_t k = 0, n = strlen(needle);

    for (const char *p = hay; *p != '\0'; p++) {
        size_t i = 0;
        while (i < n && p[i] == needle[i])
            i++;
        k += i == n;
    }
    return k;
}

static int
cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted names of the .mpd fixtures; the caller frees each and the array. */
static char **
list_fixtures(size_t *count)
{
    DIR *d = opendir(DASH_DIR);
    assert_non_null(d);
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len > 4 && strcmp(e->d_name + len - 4, ".mpd") == 0) {
            names = xrealloc(names, (n + 1) * sizeof(*names));
            names[n++] = xstrdup(e->d_name);
        }
    }
    closedir(d);
    qsort(names, n, sizeof(*names), cmp_names);
    *count = n;
    return names;
}

/* ---- golden files ----------------------------------------------------------------------- */

static void
test_dash_golden_fixtures(void **state)
{
    size_t n = 0;
    char **names = list_fixtures(&n);
    bool regen =
        getenv("STEERD_REGEN_GOLDEN") != NULL && strcmp(getenv("STEERD_REGEN_GOLDEN"), "1") == 0;

    (void)state;
    assert_true(n >= 30);

    for (size_t i = 0; i < n; i++) {
        char path[1024], url[1024], why[512];
        size_t in_len = 0, want_len = 0;
        char *in, *want;
        struct dash_opts o;
        struct buf out, again;
        struct dash_info info;

        snprintf(path, sizeof(path), "%s/%s", DASH_DIR, names[i]);
        snprintf(url, sizeof(url), "http://origin.example/vod/x/%s", names[i]);
        in = read_file(path, &in_len);
        assert_non_null(in);
        o = golden_opts(url);
        buf_init(&out, 0);
        if (dash_rewrite(in, in_len, &o, &out, &info) != DASH_OK)
            fail_msg("%s: not rewritten", names[i]);
        if (dash_inv_check(in, in_len, out.data, out.len, &o, true, why, sizeof(why)) != 0)
            fail_msg("%s: %s", names[i], why);
        assert_true(info.nperiods >= 1);

        /* Deterministic, and a second pass over the output changes nothing. */
        buf_init(&again, 0);
        assert_int_equal(dash_rewrite(out.data, out.len, &o, &again, NULL), DASH_OK);
        if (again.len != out.len || memcmp(again.data, out.data, out.len) != 0)
            fail_msg("%s: rewriting the output changed it again", names[i]);
        buf_free(&again);

        snprintf(path, sizeof(path), "%s/expected/%s", DASH_DIR, names[i]);
        if (regen) {
            write_file(path, out.data, out.len);
        } else {
            want = read_file(path, &want_len);
            if (want == NULL)
                fail_msg("%s: no golden file (run with STEERD_REGEN_GOLDEN=1)", names[i]);
            if (want_len != out.len || memcmp(want, out.data, out.len) != 0)
                fail_msg("%s: output differs from %s:\n%s", names[i], path, out.data);
            free(want);
        }
        buf_free(&out);
        free(in);
        free(names[i]);
    }
    free(names);
}

#define STEER_URI "https://steer.example/steer/dash?steerd_s=0123456789abcdef"

/* Steering mode over every fixture: golden files in expected-steering/, exactly one
 * ContentSteering (steerd's, absolute, default = the first CDN), idempotent; with
 * steering_keep an origin ContentSteering is left alone. */
static void
test_dash_steering_golden_fixtures(void **state)
{
    size_t n = 0;
    char **names = list_fixtures(&n);
    bool regen =
        getenv("STEERD_REGEN_GOLDEN") != NULL && strcmp(getenv("STEERD_REGEN_GOLDEN"), "1") == 0;

    (void)state;
    for (size_t i = 0; i < n; i++) {
        char path[1024], url[1024];
        size_t in_len = 0, want_len = 0;
        struct buf out, again;
        struct dash_info info;
        snprintf(path, sizeof(path), "%s/%s", DASH_DIR, names[i]);
        snprintf(url, sizeof(url), "http://origin.example/vod/x/%s", names[i]);
        char *in = read_file(path, &in_len);
        assert_non_null(in);
        struct dash_opts o = golden_opts(url);
        o.steering_uri = STEER_URI;
        o.query_before_start = true;
        buf_init(&out, 0);
        if (dash_rewrite(in, in_len, &o, &out, &info) != DASH_OK)
            fail_msg("%s: not rewritten", names[i]);
        assert_true(info.has_content_steering);
        if (count_of(out.data, "ContentSteering>") != 1 ||
            count_of(out.data, "ContentSteering defaultServiceLocation=\"alpha\" "
                               "queryBeforeStart=\"true\">" STEER_URI "</") != 1)
            fail_msg("%s: not exactly steerd's ContentSteering:\n%s", names[i], out.data);
        buf_init(&again, 0);
        assert_int_equal(dash_rewrite(out.data, out.len, &o, &again, NULL), DASH_OK);
        if (again.len != out.len || memcmp(again.data, out.data, out.len) != 0)
            fail_msg("%s: rewriting the output changed it again", names[i]);
        buf_free(&again);
        snprintf(path, sizeof(path), "%s/expected-steering/%s", DASH_DIR, names[i]);
        if (regen) {
            write_file(path, out.data, out.len);
        } else {
            char *want = read_file(path, &want_len);
            if (want == NULL)
                fail_msg("%s: no golden file (run with STEERD_REGEN_GOLDEN=1)", names[i]);
            if (want_len != out.len || memcmp(want, out.data, out.len) != 0)
                fail_msg("%s: output differs from %s:\n%s", names[i], path, out.data);
            free(want);
        }
        /* keep: an origin ContentSteering stays the only one */
        o.steering_keep = true;
        assert_int_equal(dash_rewrite(in, in_len, &o, &out, &info), DASH_OK);
        if (count_of(in, "ContentSteering") > 0)
            assert_int_equal(count_of(out.data, STEER_URI), 0);
        else
            assert_int_equal(count_of(out.data, STEER_URI), 1);
        buf_free(&out);
        free(in);
        free(names[i]);
    }
    free(names);

    /* a steering URL that is not absolute http(s) is refused */
    struct dash_opts o = golden_opts(MPD_URL);
    struct buf out;
    buf_init(&out, 0);
    o.steering_uri = "/steer/dash";
    assert_int_equal(dash_rewrite("<MPD/>", 6, &o, &out, NULL), DASH_BAD_OPTS);
    o.steering_uri = "https://s.example/\n";
    assert_int_equal(dash_rewrite("<MPD/>", 6, &o, &out, NULL), DASH_BAD_OPTS);
    buf_free(&out);
}

/* ---- rewrite rules ---------------------------------------------------------------------- */

static void
test_dash_rewrite_inserts_cdn_baseurls_when_none(void **state)
{
    const char *in = "<?xml version=\"1.0\"?>\n"
                     "<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" type=\"static\">\n"
                     "  <ProgramInformation/>\n"
                     "  <Period>\n"
                     "    <AdaptationSet><SegmentTemplate media=\"v/$Number$.m4s\"/>"
                     "<Representation id=\"v\"/></AdaptationSet>\n"
                     "  </Period>\n"
                     "</MPD>\n";
    struct dash_info info;
    char *out = rewrite_ok(in, &info);

    (void)state;
    assert_contains(out, "<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" "
                         "xmlns:dvb=\"urn:dvb:metadata:MPEGDASHProfile\" type=\"static\">");
    assert_contains(out, "  <ProgramInformation/>\n"
                         "  <BaseURL serviceLocation=\"alpha\" dvb:priority=\"1\" "
                         "dvb:weight=\"1\">http://cdn-a.example/edge/vod/x/</BaseURL>\n"
                         "  <BaseURL serviceLocation=\"beta\" dvb:priority=\"2\" "
                         "dvb:weight=\"1\">https://cdn-b.example/vod/x/</BaseURL>\n"
                         "  <Period>");
    assert_contains(out, "media=\"v/$Number$.m4s\"");
    assert_int_equal(info.nrewritten, 1);
    free(out);
}

static void
test_dash_rewrite_replaces_mpd_level_origin_baseurls(void **state)
{
    const char *in = "<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\">\n"
                     "  <BaseURL>https://partner.example.com/a/</BaseURL>\n"
                     "  <BaseURL serviceLocation=\"o\">../live/</BaseURL>\n"
                     "  <BaseURL>http://ORIGIN.example:80/mirror/</BaseURL>\n"
                     "  <Period/>\n"
                     "</MPD>";
    char *out = rewrite_ok(in, NULL);

    (void)state;
    assert_contains(out, "  <BaseURL>https://partner.example.com/a/</BaseURL>\n"
                         "  <BaseURL serviceLocation=\"alpha\" dvb:priority=\"1\" "
                         "dvb:weight=\"1\">http://cdn-a.example/edge/vod/live/</BaseURL>\n"
                         "  <BaseURL serviceLocation=\"beta\" dvb:priority=\"2\" "
                         "dvb:weight=\"1\">https://cdn-b.example/vod/live/</BaseURL>\n"
                         "  <Period/>");
    assert_lacks(out, "mirror");
    assert_lacks(out, "serviceLocation=\"o\"");
    free(out);
}

static void
test_dash_rewrite_keeps_relative_baseurls_below_mpd(void **state)
{
    const char *in = "<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\">"
                     "<BaseURL>http://origin.example/v/</BaseURL>"
                     "<Period><BaseURL>p1/</BaseURL>"
                     "<AdaptationSet><BaseURL>./audio/</BaseURL>"
                     "<Representation><BaseURL>../a.mp4?x=1&amp;y=2</BaseURL></Representation>"
                     "<Representation><BaseURL></BaseURL></Representation>"
                     "</AdaptationSet></Period></MPD>";
    struct dash_info info;
    char *out = rewrite_ok(in, &info);

    (void)state;
    assert_contains(out, "<BaseURL>p1/</BaseURL>");
    assert_contains(out, "<BaseURL>./audio/</BaseURL>");
    assert_contains(out, "<BaseURL>../a.mp4?x=1&amp;y=2</BaseURL>");
    assert_contains(out, "<BaseURL/>");
    assert_int_equal(count_of(out, "serviceLocation="), 2);
    assert_int_equal(info.nrewritten, 1);
    free(out);
}

static void
test_dash_rewrite_steers_lower_baseurls_per_cdn(void **state)
{
    const char *in =
        "<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\">\n"
        "<BaseURL>https://elsewhere.example/v/</BaseURL>\n"
        "<Period>\n"
        " <BaseURL>http://origin.example/p/</BaseURL>\n"
        " <BaseURL>http://origin.example/p-mirror/</BaseURL>\n"
        " <AdaptationSet>\n"
        "  <BaseURL byteRange=\"$base$?r=$first$\" serviceLocation=\"x\">/abs/</BaseURL>\n"
        "  <Representation><BaseURL>//origin.example/net/</BaseURL></Representation>\n"
        "  <Representation><BaseURL>../../../../up/</BaseURL></Representation>\n"
        "  <Representation><BaseURL>https://origin.example/tls/</BaseURL></Representation>\n"
        " </AdaptationSet>\n"
        "</Period>\n"
        "</MPD>";
    char *out = rewrite_ok(in, NULL);

    (void)state;
    assert_contains(out, "<BaseURL>https://elsewhere.example/v/</BaseURL>");
    assert_contains(out, "\n <BaseURL serviceLocation=\"alpha\" dvb:priority=\"1\" "
                         "dvb:weight=\"1\">http://cdn-a.example/edge/p/</BaseURL>\n"
                         " <BaseURL serviceLocation=\"beta\" dvb:priority=\"2\" "
                         "dvb:weight=\"1\">https://cdn-b.example/p/</BaseURL>\n"
                         " <AdaptationSet>");
    assert_lacks(out, "mirror");
    assert_contains(out, "<BaseURL byteRange=\"$base$?r=$first$\" serviceLocation=\"alpha\" "
                         "dvb:priority=\"1\" dvb:weight=\"1\">http://cdn-a.example/edge/abs/"
                         "</BaseURL>");
    assert_contains(out, "<BaseURL byteRange=\"$base$?r=$first$\" serviceLocation=\"beta\" "
                         "dvb:priority=\"2\" dvb:weight=\"1\">https://cdn-b.example/abs/"
                         "</BaseURL>");
    assert_contains(out, ">http://cdn-a.example/edge/net/</BaseURL>");
    assert_contains(out, ">https://cdn-b.example/net/</BaseURL>");
    /* ".." past the CDN's path prefix would leave it: written out absolute. */
    assert_contains(out, ">http://cdn-a.example/edge/up/</BaseURL>");
    /* https://origin.example is not the (http) origin: untouched. */
    assert_contains(out, "<BaseURL>https://origin.example/tls/</BaseURL>");
    free(out);
}

static void
test_dash_rewrite_steers_segment_urls_to_first_cdn(void **state)
{
    const char *in = "<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\"><Period><AdaptationSet>"
                     "<SegmentTemplate media=\"http://origin.example/a/$Number$.m4s\" "
                     "initialization=\"/a/init.mp4\" index=\"https://other.example/i\" "
                     "bitstreamSwitching=\"true\"/>"
                     "<Representation id=\"r1\"><SegmentList>"
                     "<Initialization sourceURL=\"http://origin.example/a/../b/init.mp4\"/>"
                     "<SegmentURL media=\"1.m4s\" index=\"http://origin.example/1.idx\"/>"
                     "<SegmentURL media=\"https://other.example/2.m4s\"/>"
                     "<BitstreamSwitching sourceURL=\"data:,x\"/>"
                     "</SegmentList></Representation>"
                     "<Representation id=\"r2\"><SegmentBase>"
                     "<RepresentationIndex sourceURL=\"HTTP://origin.example/r2.sidx\"/>"
                     "</SegmentBase></Representation>"
                     "</AdaptationSet></Period></MPD>";
    struct dash_info info;
    char *out = rewrite_ok(in, &info);

    (void)state;
    assert_contains(out, "media=\"http://cdn-a.example/edge/a/$Number$.m4s\"");
    assert_contains(out, "initialization=\"http://cdn-a.example/edge/a/init.mp4\"");
    assert_contains(out, "index=\"https://other.example/i\"");
    assert_contains(out, "bitstreamSwitching=\"true\"");
    assert_contains(out, "sourceURL=\"http://cdn-a.example/edge/b/init.mp4\"");
    assert_contains(out, "<SegmentURL media=\"1.m4s\" index=\"http://cdn-a.example/edge/1.idx\"/>");
    assert_contains(out, "<SegmentURL media=\"https://other.example/2.m4s\"/>");
    assert_contains(out, "sourceURL=\"data:,x\"");
    assert_contains(out, "sourceURL=\"http://cdn-a.example/edge/r2.sidx\"");
    assert_lacks(out, "cdn-b.example/a/");
    assert_int_equal(info.nrewritten, 1 + 5);
    free(out);
}

static void
test_dash_rewrite_template_checked_against_every_representation(void **state)
{
    /* An AdaptationSet-level template applies under each Representation's base. In the first
     * set "../" resolves the same on the CDNs for r1 and stays on f.example for r2: kept. In the
     * second, r4's base is the origin's root, where "../" would climb out of the CDN's /edge
     * prefix: the template is written out absolute (against the AdaptationSet's own base). */
    const char *in = "<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\">"
                     "<BaseURL>http://origin.example/v/x/</BaseURL><Period><AdaptationSet>"
                     "<SegmentTemplate media=\"../seg/$Number$.m4s\"/>"
                     "<Representation id=\"r1\"/>"
                     "<Representation id=\"r2\"><BaseURL>https://f.example/y/</BaseURL>"
                     "</Representation></AdaptationSet><AdaptationSet>"
                     "<SegmentTemplate media=\"../seg/$Number$.m4s\"/>"
                     "<Representation id=\"r3\"/>"
                     "<Representation id=\"r4\"><BaseURL>/</BaseURL></Representation>"
                     "</AdaptationSet></Period></MPD>";
    char *out = rewrite_ok(in, NULL);

    (void)state;
    assert_int_equal(count_of(out, "media=\"../seg/$Number$.m4s\""), 1);
    assert_contains(out, "media=\"http://cdn-a.example/edge/v/seg/$Number$.m4s\"");
    free(out);
}

static void
test_dash_rewrite_reload_urls_through_self(void **state)
{
    const char *in = "<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" type=\"dynamic\">"
                     "<Location>http://origin.example/live/m.mpd</Location>"
                     "<Location serviceLocation=\"b\">https://backup.example/live/m.mpd</Location>"
                     "<PatchLocation ttl=\"60\">\n  p.mpp?publishTime=1#f\n</PatchLocation>"
                     "<Period/></MPD>";
    char *out = rewrite_ok(in, NULL);

    (void)state;
    assert_contains(out,
                    "<Location>http://steerd.example:8080/live/m.mpd?steerd_sid=s1</Location>");
    assert_contains(out, "<Location serviceLocation=\"b\">https://backup.example/live/m.mpd<");
    assert_contains(out, "<PatchLocation ttl=\"60\">http://steerd.example:8080/vod/x/"
                         "p.mpp?publishTime=1&amp;steerd_sid=s1#f</PatchLocation>");
    free(out);
}

static void
test_dash_rewrite_reload_urls_path_absolute_with_empty_self_base(void **state)
{
    const char *in = "<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" type=\"dynamic\">"
                     "<Location>http://origin.example/live/m.mpd</Location>"
                     "<PatchLocation>p.mpp</PatchLocation><Period/></MPD>";
    struct dash_opts o = golden_opts(MPD_URL);
    struct buf out;

    (void)state;
    o.self_base = "";
    assert_int_equal(rewrite_str(in, &o, &out, NULL), DASH_OK);
    assert_contains(out.data, "<Location>/live/m.mpd?steerd_sid=s1</Location>");
    assert_contains(out.data, "<PatchLocation>/vod/x/p.mpp?steerd_sid=s1</PatchLocation>");
    buf_free(&out);
}

static void
test_dash_rewrite_reload_urls_kept_without_self_base(void **state)
{
    const char *in = "<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\">"
                     "<Location>http://origin.example/live/m.mpd</Location>"
                     "<PatchLocation>p.mpp</PatchLocation><Period/></MPD>";
    struct dash_opts o = golden_opts(MPD_URL);
    struct buf out;
    char why[512];

    (void)state;
    o.self_base = NULL;
    assert_int_equal(rewrite_str(in, &o, &out, NULL), DASH_OK);
    assert_int_equal(dash_inv_check(in, strlen(in), out.data, out.len, &o, true, why, 512), 0);
    assert_contains(out.data, "<Location>http://origin.example/live/m.mpd</Location>");
    assert_contains(out.data, "<PatchLocation>p.mpp</PatchLocation>");
    buf_free(&out);

    /* Without nested_query nothing is appended. */
    o = golden_opts(MPD_URL);
    o.nested_query = NULL;
    assert_int_equal(rewrite_str(in, &o, &out, NULL), DASH_OK);
    assert_contains(out.data, "<Location>http://steerd.example:8080/live/m.mpd</Location>");
    buf_free(&out);
}

static void
test_dash_rewrite_leaves_licences_events_and_timing(void **state)
{
    const char *in =
        "<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" xmlns:dashif=\"https://dashif.org/CPS\" "
        "xmlns:ms=\"urn:microsoft\" type=\"dynamic\" minimumUpdatePeriod=\"PT4S\">"
        "<Period id=\"1\"><EventStream schemeIdUri=\"urn:x\">"
        "<Event id=\"1\"><BaseURL>http://origin.example/in-event/</BaseURL></Event>"
        "<Event id=\"2\"><![CDATA[http://origin.example/cdata?a=1&b=2]]></Event>"
        "</EventStream><AdaptationSet>"
        "<ContentProtection schemeIdUri=\"urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed\">"
        "<dashif:Laurl licenseType=\"EME-1.0\">http://origin.example/lic</dashif:Laurl>"
        "<ms:laurl licenseUrl=\"http://origin.example/pr?a=1&amp;b=2\"/>"
        "</ContentProtection></AdaptationSet></Period><Period id=\"2\"/>"
        "<UTCTiming schemeIdUri=\"urn:mpeg:dash:utc:http-iso:2014\" "
        "value=\"http://origin.example/time\"/></MPD>";
    struct dash_info info;
    char *out = rewrite_ok(in, &info);

    (void)state;
    assert_contains(out, "<Event id=\"1\"><BaseURL>http://origin.example/in-event/</BaseURL>");
    assert_contains(out, "<![CDATA[http://origin.example/cdata?a=1&b=2]]>");
    assert_contains(out, "<dashif:Laurl licenseType=\"EME-1.0\">http://origin.example/lic<");
    assert_contains(out, "<ms:laurl licenseUrl=\"http://origin.example/pr?a=1&amp;b=2\"/>");
    assert_contains(out, "value=\"http://origin.example/time\"");
    assert_true(info.dynamic);
    assert_int_equal(info.minimum_update_period_ms, 4000);
    assert_int_equal(info.nperiods, 2);
    assert_false(info.has_content_steering);
    free(out);
}

static void
test_dash_rewrite_dvb_namespace(void **state)
{
    struct dash_info info;
    char *out;

    (void)state;
    /* Reused when declared (any prefix). */
    out = rewrite_ok("<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" "
                     "xmlns:d=\"urn:dvb:metadata:MPEGDASHProfile\"><Period/></MPD>",
                     &info);
    assert_contains(out, "d:priority=\"1\" d:weight=\"1\"");
    assert_int_equal(count_of(out, "urn:dvb:metadata:MPEGDASHProfile"), 1);
    free(out);
    /* "dvb" bound elsewhere to another namespace: another prefix. */
    out = rewrite_ok("<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\"><Period>"
                     "<AdaptationSet xmlns:dvb=\"urn:other\" dvb:x=\"1\"/></Period></MPD>",
                     &info);
    assert_contains(out, "xmlns:dvb1=\"urn:dvb:metadata:MPEGDASHProfile\"");
    assert_contains(out, "dvb1:priority=\"2\"");
    free(out);
    /* Nothing steered, nothing declared. */
    out = rewrite_ok("<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\">"
                     "<BaseURL>https://else.example/</BaseURL><Period/></MPD>",
                     &info);
    assert_lacks(out, "urn:dvb");
    assert_int_equal(info.nrewritten, 0);
    free(out);
}

static void
test_dash_rewrite_without_namespace_and_prefixed(void **state)
{
    char *out;

    (void)state;
    out = rewrite_ok("<MPD><Period><AdaptationSet><BaseURL>http://origin.example/a/</BaseURL>"
                     "</AdaptationSet></Period></MPD>",
                     NULL);
    assert_contains(out, "<MPD xmlns:dvb=\"urn:dvb:metadata:MPEGDASHProfile\">");
    assert_contains(out, "<BaseURL serviceLocation=\"beta\" dvb:priority=\"2\" dvb:weight=\"1\">"
                         "https://cdn-b.example/a/</BaseURL>");
    free(out);
    out = rewrite_ok("<m:MPD xmlns:m=\"urn:mpeg:dash:schema:mpd:2011\"><m:Period>"
                     "<BaseURL>http://origin.example/not-dash-ns/</BaseURL></m:Period></m:MPD>",
                     NULL);
    assert_contains(out, "<m:BaseURL serviceLocation=\"alpha\"");
    /* An element outside the MPD namespace is not a BaseURL. */
    assert_contains(out, "<BaseURL>http://origin.example/not-dash-ns/</BaseURL>");
    free(out);
}

static void
test_dash_rewrite_content_steering_and_info(void **state)
{
    struct dash_info info;
    char *out;

    (void)state;
    out = rewrite_ok("<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" type=\"static\">"
                     "<ServiceDescription><ContentSteering>https://s.example/d</ContentSteering>"
                     "</ServiceDescription><Period/><Period/><Period/></MPD>",
                     &info);
    assert_true(info.has_content_steering);
    assert_false(info.dynamic);
    assert_int_equal(info.minimum_update_period_ms, 0);
    assert_int_equal(info.nperiods, 3);
    assert_contains(out, "<ContentSteering>https://s.example/d</ContentSteering>");
    free(out);
    out = rewrite_ok("<MPD><ContentSteering>x</ContentSteering><Period/></MPD>", &info);
    assert_true(info.has_content_steering);
    free(out);
}

static void
test_dash_info_minimum_update_period_vectors(void **state)
{
    static const struct {
        const char *in;
        uint32_t ms;
    } vec[] = {
        {"PT2S", 2000},
        {"PT0.5S", 500},
        {"PT1.234567S", 1234},
        {"PT1M30S", 90000},
        {"PT1H", 3600000},
        {"P1DT1H", 90000000},
        {" PT3S ", 3000},
        {"P1M", 2592000000u},
        {"P1Y", UINT32_MAX},
        {"PT99999999999999999999H", UINT32_MAX},
        {"PT", 0},
        {"P", 0},
        {"2S", 0},
        {"PT2", 0},
        {"-PT1S", 0},
        {"PT1.5M", 0},
        {"P1S", 0},
        {"PT1H1H", 0},
        {"PT1S1M", 0},
        {"PT.5S", 0},
        {"PT1.S", 0},
        {"PTS", 0},
        {"P1DT", 0},
        {"PT2S garbage", 0},
        {"", 0},
    };

    (void)state;
    for (size_t i = 0; i < UTIL_ARRAY_LEN(vec); i++) {
        char in[256];
        struct dash_info info;
        struct dash_opts o = golden_opts(MPD_URL);
        struct buf out;

        snprintf(in, sizeof(in), "<MPD type=\"dynamic\" minimumUpdatePeriod=\"%s\"><Period/></MPD>",
                 vec[i].in);
        assert_int_equal(rewrite_str(in, &o, &out, &info), DASH_OK);
        if (info.minimum_update_period_ms != vec[i].ms)
            fail_msg("\"%s\": %u, want %u", vec[i].in, info.minimum_update_period_ms, vec[i].ms);
        assert_true(info.dynamic);
        buf_free(&out);
    }
}

static void
test_dash_rewrite_rejects_bad_opts(void **state)
{
    static const struct dash_target bad_base[] = {{"a", "http://cdn.example/?q", 21}};
    static const struct dash_target empty_id[] = {{"", "http://cdn.example", 18}};
    static const struct dash_target space_id[] = {{"a b", "http://cdn.example", 18}};
    static const struct dash_target ftp[] = {{"a", "ftp://cdn.example", 17}};
    static const struct dash_target no_host[] = {{"a", "http:///x", 9}};
    static const struct dash_target dots[] = {{"a", "http://cdn.example/x/../y", 25}};
    const char *in = "<MPD><Period/></MPD>";
    struct dash_opts o;
    struct buf out;

    (void)state;
    buf_init(&out, 0);
    assert_int_equal(dash_rewrite(in, strlen(in), NULL, &out, NULL), DASH_BAD_OPTS);
    o = golden_opts(MPD_URL);
    assert_int_equal(dash_rewrite(in, strlen(in), &o, NULL, NULL), DASH_BAD_OPTS);
    assert_int_equal(dash_rewrite(NULL, 5, &o, &out, NULL), DASH_BAD_OPTS);
    o = golden_opts("/vod/x.mpd");
    assert_int_equal(dash_rewrite(in, strlen(in), &o, &out, NULL), DASH_BAD_OPTS);
    o = golden_opts(MPD_URL);
    o.origin_base = "http://origin.example/?x";
    assert_int_equal(dash_rewrite(in, strlen(in), &o, &out, NULL), DASH_BAD_OPTS);
    o = golden_opts(MPD_URL);
    o.ncdns = 0;
    assert_int_equal(dash_rewrite(in, strlen(in), &o, &out, NULL), DASH_BAD_OPTS);
    o.ncdns = DASH_MAX_CDNS + 1;
    assert_int_equal(dash_rewrite(in, strlen(in), &o, &out, NULL), DASH_BAD_OPTS);
    o.ncdns = 1;
    o.cdns = bad_base;
    assert_int_equal(dash_rewrite(in, strlen(in), &o, &out, NULL), DASH_BAD_OPTS);
    o.cdns = empty_id;
    assert_int_equal(dash_rewrite(in, strlen(in), &o, &out, NULL), DASH_BAD_OPTS);
    o.cdns = space_id;
    assert_int_equal(dash_rewrite(in, strlen(in), &o, &out, NULL), DASH_BAD_OPTS);
    o.cdns = ftp;
    assert_int_equal(dash_rewrite(in, strlen(in), &o, &out, NULL), DASH_BAD_OPTS);
    o.cdns = no_host;
    assert_int_equal(dash_rewrite(in, strlen(in), &o, &out, NULL), DASH_BAD_OPTS);
    o.cdns = dots;
    assert_int_equal(dash_rewrite(in, strlen(in), &o, &out, NULL), DASH_BAD_OPTS);
    o = golden_opts(MPD_URL);
    o.self_base = "steerd.example";
    assert_int_equal(dash_rewrite(in, strlen(in), &o, &out, NULL), DASH_BAD_OPTS);
    o = golden_opts(MPD_URL);
    o.nested_query = "a=1#frag";
    assert_int_equal(dash_rewrite(in, strlen(in), &o, &out, NULL), DASH_BAD_OPTS);
    o.nested_query = "a=1\r\nX: y";
    assert_int_equal(dash_rewrite(in, strlen(in), &o, &out, NULL), DASH_BAD_OPTS);
    assert_int_equal(out.len, 0);
    /* A CDN base need not be NUL-terminated; its trailing '/' is ignored. */
    {
        const char raw[] = "https://cdn-c.example/p/XXXX";
        struct dash_target t = {"c", raw, 24};
        o = golden_opts(MPD_URL);
        o.cdns = &t;
        o.ncdns = 1;
        assert_int_equal(dash_rewrite(in, strlen(in), &o, &out, NULL), DASH_OK);
        assert_contains(out.data, ">https://cdn-c.example/p/vod/x/</BaseURL>");
        assert_lacks(out.data, "XXXX");
    }
    buf_free(&out);
}

/* ---- hostile input (RELIABILITY S5, T17) ------------------------------------------------ */

static enum dash_status
rewrite_raw(const char *in, size_t len, struct buf *out)
{
    struct dash_opts o = golden_opts(MPD_URL);

    buf_init(out, 0);
    return dash_rewrite(in, len, &o, out, NULL);
}

static void
expect_status(const char *in, enum dash_status want)
{
    struct buf out;
    enum dash_status st = rewrite_raw(in, strlen(in), &out);

    if (st != want)
        fail_msg("%s: got %s, want %s", in, dash_status_str(st), dash_status_str(want));
    assert_int_equal(out.len, 0);
    buf_free(&out);
}

static double
cpu_seconds(void)
{
    return (double)clock() / CLOCKS_PER_SEC;
}

static void
test_dash_rewrite_rejects_doctype(void **state)
{
    (void)state;
    expect_status("<!DOCTYPE MPD><MPD><Period/></MPD>", DASH_FORBIDDEN);
    expect_status("<?xml version=\"1.0\"?>\n<!-- c -->\n<?pi x?>\n<!doctype MPD [ ]>"
                  "<MPD><Period/></MPD>",
                  DASH_FORBIDDEN);
    expect_status("\xEF\xBB\xBF<!DOCTYPE MPD PUBLIC \"-//x//y\" \"http://example.com/x.dtd\">"
                  "<MPD/>",
                  DASH_FORBIDDEN);
    /* A comment that only mentions a DOCTYPE is fine. */
    expect_status("<!-- <!DOCTYPE MPD> --><MPD>", DASH_BAD_XML);
}

static void
test_dash_rewrite_rejects_billion_laughs(void **state)
{
    struct buf b;
    double t0 = cpu_seconds();

    (void)state;
    buf_init(&b, 0);
    buf_puts(&b, "<?xml version=\"1.0\"?>\n<!DOCTYPE MPD [\n<!ENTITY l0 \"ha\">\n");
    for (int i = 1; i < 10; i++)
        buf_printf(&b, "<!ENTITY l%d \"&l%d;&l%d;&l%d;&l%d;&l%d;&l%d;&l%d;&l%d;&l%d;&l%d;\">\n", i,
                   i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1);
    buf_puts(&b, "]>\n<MPD><Period><BaseURL>&l9;</BaseURL></Period></MPD>\n");
    expect_status(b.data, DASH_FORBIDDEN);
    buf_free(&b);
    assert_true(cpu_seconds() - t0 < 5.0);
}

/* Encodes ASCII s as UTF-16LE with a BOM (hides a DOCTYPE from any byte scan). */
static char *
utf16le(const char *s, size_t *len)
{
    size_t n = strlen(s);
    char *o = xmalloc(2 * n + 2);

    o[0] = (char)0xFF;
    o[1] = (char)0xFE;
    for (size_t i = 0; i < n; i++) {
        o[2 + 2 * i] = s[i];
        o[3 + 2 * i] = 0;
    }
    *len = 2 * n + 2;
    return o;
}

static void
test_dash_rewrite_never_reads_external_entities(void **state)
{
    char path[] = "/tmp/steerd-dash-canary-XXXXXX";
    const char *canary = "CANARY-7f3a9c1e-never-in-output";
    int fd = mkstemp(path);
    struct buf doc, out;
    size_t len;
    char *wide;

    (void)state;
    assert_true(fd >= 0);
    assert_int_equal(write(fd, canary, strlen(canary)), (ssize_t)strlen(canary));
    close(fd);

    buf_init(&doc, 0);
    buf_printf(&doc,
               "<?xml version=\"1.0\"?>\n<!DOCTYPE MPD [<!ENTITY xxe SYSTEM \"file://%s\">]>\n"
               "<MPD><Period><BaseURL>&xxe;</BaseURL></Period></MPD>",
               path);
    assert_int_equal(rewrite_raw(doc.data, doc.len, &out), DASH_FORBIDDEN);
    assert_null(out.len ? strstr(out.data, canary) : NULL);
    buf_free(&out);

    /* The same in UTF-16: the byte scan cannot see it, the parser hooks must. */
    wide = utf16le(doc.data + strlen("<?xml version=\"1.0\"?>\n"), &len);
    assert_int_equal(rewrite_raw(wide, len, &out), DASH_FORBIDDEN);
    assert_int_equal(out.len, 0);
    buf_free(&out);
    free(wide);

    /* A parameter entity and an external DTD. */
    buf_reset(&doc);
    buf_printf(&doc, "<!DOCTYPE MPD [<!ENTITY %% p SYSTEM \"file://%s\"> %%p;]><MPD/>", path);
    wide = utf16le(doc.data, &len);
    assert_int_equal(rewrite_raw(wide, len, &out), DASH_FORBIDDEN);
    buf_free(&out);
    free(wide);
    buf_reset(&doc);
    buf_printf(&doc, "<!DOCTYPE MPD SYSTEM \"file://%s\"><MPD><Period/></MPD>", path);
    wide = utf16le(doc.data, &len);
    assert_int_equal(rewrite_raw(wide, len, &out), DASH_FORBIDDEN);
    buf_free(&out);
    free(wide);

    /* An entity reference without any declaration. */
    expect_status("<MPD><Period><BaseURL>&xxe;</BaseURL></Period></MPD>", DASH_FORBIDDEN);
    expect_status("<MPD a=\"&xxe;\"><Period/></MPD>", DASH_FORBIDDEN);
    /* The predefined entities and character references are plain text. */
    {
        const char *ok = "<MPD><Period><BaseURL>a&amp;b&#x41;&lt;</BaseURL></Period></MPD>";
        assert_int_equal(rewrite_raw(ok, strlen(ok), &out), DASH_OK);
        assert_contains(out.data, "<BaseURL>a&amp;bA&lt;</BaseURL>");
        buf_free(&out);
    }
    buf_free(&doc);
    unlink(path);
}

static void
test_dash_rewrite_rejects_xinclude(void **state)
{
    (void)state;
    expect_status("<MPD xmlns:xi=\"http://www.w3.org/2001/XInclude\"><Period>"
                  "<xi:include href=\"file:///etc/passwd\" parse=\"text\"/></Period></MPD>",
                  DASH_FORBIDDEN);
    expect_status("<MPD><Period><include xmlns=\"http://www.w3.org/2003/XInclude\" href=\"x\"/>"
                  "</Period></MPD>",
                  DASH_FORBIDDEN);
}

static void
test_dash_rewrite_limits_depth(void **state)
{
    struct buf b, out;
    double t0 = cpu_seconds();

    (void)state;
    buf_init(&b, 0);
    buf_puts(&b, "<MPD>");
    for (int i = 0; i < 10000; i++)
        buf_puts(&b, "<a>");
    for (int i = 0; i < 10000; i++)
        buf_puts(&b, "</a>");
    buf_puts(&b, "</MPD>");
    assert_int_equal(rewrite_raw(b.data, b.len, &out), DASH_LIMIT);
    buf_free(&out);
    assert_true(cpu_seconds() - t0 < 5.0);

    /* Exactly at the limit (64 elements deep, MPD included) is fine; one more is not. */
    buf_reset(&b);
    buf_puts(&b, "<MPD><Period>");
    for (int i = 0; i < 62; i++)
        buf_puts(&b, "<a>");
    for (int i = 0; i < 62; i++)
        buf_puts(&b, "</a>");
    buf_puts(&b, "</Period></MPD>");
    assert_int_equal(rewrite_raw(b.data, b.len, &out), DASH_OK);
    buf_free(&out);
    buf_reset(&b);
    buf_puts(&b, "<MPD><Period>");
    for (int i = 0; i < 63; i++)
        buf_puts(&b, "<a>");
    for (int i = 0; i < 63; i++)
        buf_puts(&b, "</a>");
    buf_puts(&b, "</Period></MPD>");
    assert_int_equal(rewrite_raw(b.data, b.len, &out), DASH_LIMIT);
    buf_free(&out);
    buf_free(&b);
}

static long
max_rss_kb(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static void
test_dash_rewrite_limits_attribute_length(void **state)
{
    const size_t big = 10u * 1000u * 1000u;
    char *doc = xmalloc(big + 64);
    size_t n = 0;
    struct buf out;
    long rss0 = max_rss_kb();
    double t0 = cpu_seconds();

    (void)state;
    n += (size_t)snprintf(doc, 64, "<MPD a=\"");
    memset(doc + n, 'x', big);
    n += big;
    memcpy(doc + n, "\"><Period/></MPD>", 18);
    n += 17;
    assert_true(n <= DASH_DEFAULT_MAX_INPUT);
    assert_int_equal(rewrite_raw(doc, n, &out), DASH_LIMIT);
    buf_free(&out);
    free(doc);
    assert_true(cpu_seconds() - t0 < 5.0);
    /* Peak memory grows by a small multiple of the input at most. */
    assert_true(max_rss_kb() - rss0 < 256 * 1024);

    /* Just under the cap is accepted; a long BaseURL text is capped the same way. */
    {
        struct dash_opts o = golden_opts(MPD_URL);
        struct buf in;
        buf_init(&in, 0);
        buf_puts(&in, "<MPD><Period><BaseURL>");
        for (int i = 0; i < 200; i++)
            buf_puts(&in, "abcdefghij");
        buf_puts(&in, "</BaseURL></Period></MPD>");
        o.max_attr_len = 1999;
        assert_int_equal(rewrite_str(in.data, &o, &out, NULL), DASH_LIMIT);
        buf_free(&out);
        o.max_attr_len = 2000;
        assert_int_equal(rewrite_str(in.data, &o, &out, NULL), DASH_OK);
        buf_free(&out);
        buf_free(&in);
    }
}

static void
test_dash_rewrite_limits_node_count(void **state)
{
    struct dash_opts o = golden_opts(MPD_URL);
    struct buf in, out;

    (void)state;
    buf_init(&in, 0);
    buf_puts(&in, "<MPD><Period>");
    for (int i = 0; i < 1000; i++)
        buf_puts(&in, "<!--c--><x/>");
    buf_puts(&in, "</Period></MPD>");
    o.max_nodes = 2002;
    assert_int_equal(rewrite_str(in.data, &o, &out, NULL), DASH_OK);
    buf_free(&out);
    o.max_nodes = 2001;
    assert_int_equal(rewrite_str(in.data, &o, &out, NULL), DASH_LIMIT);
    buf_free(&out);
    buf_free(&in);
}

static void
test_dash_rewrite_rejects_not_mpd_and_bad_xml(void **state)
{
    static const char trunc_src[] = "<?xml version=\"1.0\"?>\n<MPD xmlns=\"urn:mpeg:dash:schema:"
                                    "mpd:2011\"><Period><AdaptationSet><Representation id=\"a\"/>"
                                    "</AdaptationSet></Period></MPD>";
    struct buf out;

    (void)state;
    expect_status("<html><body/></html>", DASH_NOT_MPD);
    expect_status("<MPD xmlns=\"urn:example:other\"><Period/></MPD>", DASH_NOT_MPD);
    expect_status("<x:MPD xmlns:x=\"http://www.w3.org/1999/xhtml\"/>", DASH_NOT_MPD);
    expect_status("", DASH_BAD_XML);
    expect_status("not xml at all", DASH_BAD_XML);
    expect_status("<MPD><Period></MPD>", DASH_BAD_XML);
    expect_status("<MPD/><MPD/>", DASH_BAD_XML);
    expect_status("<MPD><BaseURL dvb:priority=\"1\">http://origin.example/</BaseURL></MPD>",
                  DASH_BAD_XML);
    expect_status("<MPD><x:Period/></MPD>", DASH_BAD_XML);
    assert_int_equal(rewrite_raw("<MPD>\0</MPD>", 12, &out), DASH_BAD_XML);
    buf_free(&out);
    /* Every truncation of a document is refused (cut inside the trailing end tag or earlier). */
    for (size_t cut = 1; cut < sizeof(trunc_src) - 1; cut++) {
        enum dash_status st = rewrite_raw(trunc_src, cut, &out);
        if (st != DASH_BAD_XML)
            fail_msg("cut at %zu: %s", cut, dash_status_str(st));
        buf_free(&out);
    }
    /* Old capitalisation of the namespace is still an MPD. */
    expect_status("<MPD xmlns=\"urn:mpeg:DASH:schema:MPD:2011\"><Period/>", DASH_BAD_XML);
    {
        const char *old_ns = "<MPD xmlns=\"urn:mpeg:DASH:schema:MPD:2011\"><Period/></MPD>";
        assert_int_equal(rewrite_raw(old_ns, strlen(old_ns), &out), DASH_OK);
        buf_free(&out);
    }
}

static void
test_dash_rewrite_size_caps(void **state)
{
    const char *in = "<MPD><Period/></MPD>";
    struct dash_opts o = golden_opts(MPD_URL);
    struct buf out;

    (void)state;
    o.max_input = strlen(in) - 1;
    assert_int_equal(rewrite_str(in, &o, &out, NULL), DASH_TOO_LARGE);
    assert_int_equal(out.len, 0);
    buf_free(&out);
    o.max_input = strlen(in);
    assert_int_equal(rewrite_str(in, &o, &out, NULL), DASH_OK);
    assert_true(out.len > 100);
    o.max_output = out.len - 1;
    buf_free(&out);
    assert_int_equal(rewrite_str(in, &o, &out, NULL), DASH_TOO_LARGE);
    assert_int_equal(out.len, 0);
    buf_free(&out);
    /* The caller's buffer cap counts too. */
    o.max_output = 0;
    buf_init(&out, 64);
    assert_int_equal(dash_rewrite(in, strlen(in), &o, &out, NULL), DASH_TOO_LARGE);
    assert_int_equal(out.len, 0);
    buf_free(&out);

    /* Per-CDN copies are budgeted while they are built, not after. */
    {
        struct dash_target many[DASH_MAX_CDNS];
        char ids[DASH_MAX_CDNS][8];
        struct buf big;
        for (size_t i = 0; i < DASH_MAX_CDNS; i++) {
            snprintf(ids[i], sizeof(ids[i]), "c%zu", i);
            many[i].id = ids[i];
            many[i].base = "https://cdn.example/p"; /* "/r/" must move under /p */
            many[i].base_len = 21;
        }
        buf_init(&big, 0);
        buf_puts(&big, "<MPD><Period><AdaptationSet>");
        for (int i = 0; i < 2000; i++)
            buf_puts(&big, "<Representation><BaseURL>/r/</BaseURL></Representation>");
        buf_puts(&big, "</AdaptationSet></Period></MPD>");
        o = golden_opts(MPD_URL);
        o.cdns = many;
        o.ncdns = DASH_MAX_CDNS;
        o.max_output = 1u << 20;
        assert_int_equal(rewrite_str(big.data, &o, &out, NULL), DASH_TOO_LARGE);
        buf_free(&out);
        o.max_output = 0;
        assert_int_equal(rewrite_str(big.data, &o, &out, NULL), DASH_OK);
        assert_int_equal(count_of(out.data, "<BaseURL "), 2000 * DASH_MAX_CDNS + DASH_MAX_CDNS);
        buf_free(&out);
        buf_free(&big);
    }
}

static void
test_dash_rewrite_errors_are_silent(void **state)
{
    char path[] = "/tmp/steerd-dash-stderr-XXXXXX";
    int fd = mkstemp(path), saved;
    struct buf out;
    size_t n = 0;
    char *got;

    (void)state;
    assert_true(fd >= 0);
    fflush(stderr);
    saved = dup(2);
    dup2(fd, 2);
    rewrite_raw("<MPD><Period></MPD>", 19, &out);
    buf_free(&out);
    rewrite_raw("<MPD>&undefined;</MPD>", 22, &out);
    buf_free(&out);
    rewrite_raw("<!DOCTYPE x [<!ENTITY a \"b\">]><MPD>&a;</MPD>", 44, &out);
    buf_free(&out);
    rewrite_raw("\xFF\xFE<\0M\0", 6, &out);
    buf_free(&out);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    close(fd);
    got = read_file(path, &n);
    unlink(path);
    assert_non_null(got);
    if (n != 0)
        fail_msg("libxml2 wrote to stderr: %s", got);
    free(got);
}

static void
test_dash_status_str_names_every_status(void **state)
{
    (void)state;
    assert_string_equal(dash_status_str(DASH_OK), "ok");
    assert_string_equal(dash_status_str(DASH_BAD_XML), "bad-xml");
    assert_string_equal(dash_status_str(DASH_FORBIDDEN), "forbidden");
    assert_string_equal(dash_status_str(DASH_NOT_MPD), "not-mpd");
    assert_string_equal(dash_status_str(DASH_TOO_LARGE), "too-large");
    assert_string_equal(dash_status_str(DASH_LIMIT), "limit");
    assert_string_equal(dash_status_str(DASH_BAD_OPTS), "bad-opts");
}

static int
group_setup(void **state)
{
    (void)state;
    dash_global_init();
    return 0;
}

static int
group_teardown(void **state)
{
    (void)state;
    dash_global_cleanup();
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dash_golden_fixtures),
        cmocka_unit_test(test_dash_steering_golden_fixtures),
        cmocka_unit_test(test_dash_rewrite_inserts_cdn_baseurls_when_none),
        cmocka_unit_test(test_dash_rewrite_replaces_mpd_level_origin_baseurls),
        cmocka_unit_test(test_dash_rewrite_keeps_relative_baseurls_below_mpd),
        cmocka_unit_test(test_dash_rewrite_steers_lower_baseurls_per_cdn),
        cmocka_unit_test(test_dash_rewrite_steers_segment_urls_to_first_cdn),
        cmocka_unit_test(test_dash_rewrite_template_checked_against_every_representation),
        cmocka_unit_test(test_dash_rewrite_reload_urls_through_self),
        cmocka_unit_test(test_dash_rewrite_reload_urls_path_absolute_with_empty_self_base),
        cmocka_unit_test(test_dash_rewrite_reload_urls_kept_without_self_base),
        cmocka_unit_test(test_dash_rewrite_leaves_licences_events_and_timing),
        cmocka_unit_test(test_dash_rewrite_dvb_namespace),
        cmocka_unit_test(test_dash_rewrite_without_namespace_and_prefixed),
        cmocka_unit_test(test_dash_rewrite_content_steering_and_info),
        cmocka_unit_test(test_dash_info_minimum_update_period_vectors),
        cmocka_unit_test(test_dash_rewrite_rejects_bad_opts),
        cmocka_unit_test(test_dash_rewrite_rejects_doctype),
        cmocka_unit_test(test_dash_rewrite_rejects_billion_laughs),
        cmocka_unit_test(test_dash_rewrite_never_reads_external_entities),
        cmocka_unit_test(test_dash_rewrite_rejects_xinclude),
        cmocka_unit_test(test_dash_rewrite_limits_depth),
        cmocka_unit_test(test_dash_rewrite_limits_attribute_length),
        cmocka_unit_test(test_dash_rewrite_limits_node_count),
        cmocka_unit_test(test_dash_rewrite_rejects_not_mpd_and_bad_xml),
        cmocka_unit_test(test_dash_rewrite_size_caps),
        cmocka_unit_test(test_dash_rewrite_errors_are_silent),
        cmocka_unit_test(test_dash_status_str_names_every_status),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
