/* libFuzzer harness for hls: rewrites arbitrary bytes as a playlist under three option sets and
 * checks the invariants of RELIABILITY S4 on the output, aborting on any violation:
 * - errors leave nothing in out; NOT_PLAYLIST exactly when the #EXTM3U header is missing;
 * - no byte outside the playlist creates a line or a tag: outside quoted strings every tag or
 *   comment line is the input line; URI lines stay URI lines; no bare CR, no NUL;
 * - without redundant copies the output has the input's lines one for one, and a second pass
 *   changes nothing; with copies the input lines appear in order and every extra line is a
 *   variant/rendition tag or a URI;
 * - every changed URI points under a CDN base, steerd's base, or is an absolute origin URL;
 * - the output size is bounded. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "steerd/hls.h"
#include "steerd/util.h"

#define ORIGIN "http://origin.example/o"
#define PLAYLIST ORIGIN "/v/a/index.m3u8?tok=1"
#define SELF "http://steerd.example:8080"
#define NQ "sid=s1"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct hls_target cdns[] = {
    {"alpha", "http://cdn-a.example/edge", 0},
    {"beta", "https://cdn-b.example", 0},
    {"gamma", "http://cdn-c.example:81/x/", 0},
};

static const char *const allowed[] = {
    "http://cdn-a.example/edge/", "https://cdn-b.example/", "http://cdn-c.example:81/x/", SELF "/",
    "http://origin.example/",
};

struct lv {
    const char *p;
    size_t n;
};

static void
fail(const char *what)
{
    fprintf(stderr, "fuzz_hls: invariant violated: %s\n", what);
    abort();
}

/* Splits at '\n'; the '\r' of a CRLF stays with the line. */
static struct lv *
split_lines(const char *s, size_t len, size_t *count)
{
    size_t n = 0, cap = 16;
    struct lv *v = xmalloc(cap * sizeof(*v));
    const char *p = s, *e = s + len;
    while (p < e) {
        const char *nl = memchr(p, '\n', (size_t)(e - p));
        const char *le = nl ? nl : e;
        if (n == cap) {
            cap *= 2;
            v = xrealloc(v, cap * sizeof(*v));
        }
        v[n].p = p;
        v[n].n = (size_t)(le - p);
        n++;
        p = nl ? nl + 1 : e;
    }
    *count = n;
    return v;
}

static int
is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

/* '#' for a tag or comment line, 'B' for a blank one, 'U' for a URI line (as players read
 * them: "  #x" is a URI). */
static char
kind(struct lv l)
{
    if (l.n > 0 && l.p[0] == '#')
        return '#';
    for (size_t i = 0; i < l.n; i++) {
        if (!is_ws(l.p[i]))
            return 'U';
    }
    return 'B';
}

/* The line is the tag "#<name>" (followed by ':', CR or nothing). */
static int
is_tag_named(struct lv l, const char *name)
{
    size_t n = strlen(name);
    return l.n >= n && memcmp(l.p, name, n) == 0 &&
           (l.n == n || l.p[n] == ':' || (l.p[n] == '\r' && l.n == n + 1));
}

/* An extra line of a redundant copy: a variant or rendition tag, or a variant URI. */
static int
is_copy_line(struct lv l)
{
    return kind(l) == 'U' || is_tag_named(l, "#EXT-X-STREAM-INF") ||
           is_tag_named(l, "#EXT-X-MEDIA") || is_tag_named(l, "#EXT-X-I-FRAME-STREAM-INF");
}

/* A quoted attribute value of a tag line: its contents, and whether its name is URI. */
struct span {
    const char *p;
    size_t n;
    int is_uri;
};

/* Finds the quoted attribute values of a tag line "#EXT...:list" the way players split an
 * attribute list: items separated by ',', a value is quoted when '"' follows the '='. Returns
 * how many (at most max). */
static size_t
quoted_values(struct lv l, struct span *sp, size_t max)
{
    const char *e = l.p + l.n;
    size_t n = 0;
    if (l.n < 4 || memcmp(l.p, "#EXT", 4) != 0)
        return 0;
    const char *p = memchr(l.p, ':', l.n);
    if (p == NULL)
        return 0;
    p++;
    while (p < e) {
        while (p < e && (*p == ',' || *p == ' ' || *p == '\t'))
            p++;
        const char *name = p;
        while (p < e && *p != '=' && *p != ',')
            p++;
        if (p >= e)
            break;
        if (*p == ',')
            continue;
        size_t name_len = (size_t)(p - name);
        p++;
        if (p < e && *p == '"') {
            const char *q = memchr(p + 1, '"', (size_t)(e - p - 1));
            if (q == NULL)
                break;
            if (n < max)
                sp[n++] = (struct span){p + 1, (size_t)(q - p - 1),
                                        name_len == 3 && memcmp(name, "URI", 3) == 0};
            p = q + 1;
        }
        while (p < e && *p != ',')
            p++;
    }
    return n;
}

/* The line without the contents of its quoted attribute values. */
static size_t
shape_of(struct lv l, char *out, struct span *sp, size_t max, size_t *nsp)
{
    size_t ns = quoted_values(l, sp, max), n = 0;
    const char *cur = l.p;
    for (size_t i = 0; i < ns; i++) {
        memcpy(out + n, cur, (size_t)(sp[i].p - cur));
        n += (size_t)(sp[i].p - cur);
        cur = sp[i].p + sp[i].n;
    }
    memcpy(out + n, cur, (size_t)(l.p + l.n - cur));
    n += (size_t)(l.p + l.n - cur);
    if (nsp != NULL)
        *nsp = ns;
    return n;
}

struct scratch {
    char *ta, *tb;
    struct span *sa, *sb;
    size_t max;
};

static int
same_shape(struct lv a, struct lv b, struct scratch *s)
{
    char ka = kind(a), kb = kind(b);
    if (ka != kb)
        return 0;
    if (ka != '#')
        return 1;
    size_t na = shape_of(a, s->ta, s->sa, s->max, NULL);
    size_t nb = shape_of(b, s->tb, s->sb, s->max, NULL);
    return na == nb && memcmp(s->ta, s->tb, na) == 0;
}

static int
starts_allowed(const char *p, size_t n)
{
    for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
        size_t l = strlen(allowed[i]);
        if (n >= l && memcmp(p, allowed[i], l) == 0)
            return 1;
    }
    return 0;
}

/* A URI that differs from the input must point where steerd may send players. */
static void
check_changed(const char *p, size_t n)
{
    if (!starts_allowed(p, n))
        fail("rewritten URI outside the allowed bases");
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\r' || p[i] == '\n' || p[i] == '\0')
            fail("control byte in a rewritten URI");
    }
}

/* Compares a line with its rewritten counterpart (same shape already checked). */
static void
check_line_pair(struct lv in, struct lv out, struct scratch *s)
{
    if (in.n == out.n && memcmp(in.p, out.p, in.n) == 0)
        return;
    char k = kind(in);
    if (k == 'U') {
        const char *b = out.p, *e = out.p + out.n;
        while (b < e && is_ws(*b))
            b++;
        while (e > b && is_ws(e[-1]))
            e--;
        check_changed(b, (size_t)(e - b));
        return;
    }
    if (k != '#' || in.n < 4 || memcmp(in.p, "#EXT", 4) != 0)
        fail("a comment or blank line changed");
    size_t na, nb;
    (void)shape_of(in, s->ta, s->sa, s->max, &na);
    (void)shape_of(out, s->tb, s->sb, s->max, &nb);
    if (na != nb)
        fail("quoted values appeared or vanished");
    for (size_t i = 0; i < na; i++) {
        if (s->sa[i].n == s->sb[i].n && memcmp(s->sa[i].p, s->sb[i].p, s->sa[i].n) == 0)
            continue;
        if (!s->sb[i].is_uri)
            fail("a quoted value other than URI changed");
        check_changed(s->sb[i].p, s->sb[i].n);
    }
}

static size_t
count_lines_bound(size_t len, size_t nlines)
{
    size_t grow = 64 + strlen(PLAYLIST) + strlen(SELF) + strlen(NQ) + strlen(HLS_CDN_PARAM) + 16;
    return 3 * (len + (len / 6 + nlines + 1) * grow) + 4096;
}

static int
header_ok(const char *in, size_t len)
{
    if (len >= 3 && memcmp(in, "\xEF\xBB\xBF", 3) == 0) {
        in += 3;
        len -= 3;
    }
    return len >= 7 && memcmp(in, "#EXTM3U", 7) == 0 &&
           (len == 7 || in[7] == '\r' || in[7] == '\n' || in[7] == ' ' || in[7] == '\t');
}

static void
run(const char *in, size_t len, const struct hls_opts *o, int copies_possible)
{
    struct buf out, again;
    struct hls_info info;
    buf_init(&out, 0);
    buf_init(&again, 0);
    enum hls_status st = hls_rewrite(in, len, o, &out, &info);
    if (st != HLS_OK) {
        if (out.len != 0)
            fail("error with output left");
        if ((st == HLS_NOT_PLAYLIST) != !header_ok(in, len))
            fail("NOT_PLAYLIST disagrees with the header");
        if (st != HLS_NOT_PLAYLIST && st != HLS_BAD)
            fail("unexpected status");
        goto out;
    }
    if (!header_ok(in, len))
        fail("accepted without a header");
    if (memchr(out.data, '\0', out.len) != NULL)
        fail("NUL in output");
    for (const char *p = out.data; (p = memchr(p, '\r', out.len - (size_t)(p - out.data))); p++) {
        if (p + 1 >= out.data + out.len || p[1] != '\n')
            fail("bare CR in output");
    }
    if ((len > 0 && in[len - 1] == '\n') != (out.len > 0 && out.data[out.len - 1] == '\n'))
        fail("final newline not kept");

    size_t ni, no;
    struct lv *li = split_lines(in, len, &ni);
    struct lv *lo = split_lines(out.data, out.len, &no);
    size_t maxl = 0, maxl_out = 0;
    for (size_t j = 0; j < no; j++)
        maxl_out = lo[j].n > maxl_out ? lo[j].n : maxl_out;
    for (size_t i = 0; i < ni; i++)
        maxl = li[i].n > maxl ? li[i].n : maxl;
    maxl = maxl > maxl_out ? maxl : maxl_out;
    struct scratch sc = {xmalloc(maxl + 1), xmalloc(maxl + 1),
                         xmalloc((maxl / 2 + 1) * sizeof(struct span)),
                         xmalloc((maxl / 2 + 1) * sizeof(struct span)), maxl / 2 + 1};

    if (out.len > o->ncdns * count_lines_bound(len, ni))
        fail("output size bound");
    if (!copies_possible || ni == no) {
        if (ni != no)
            fail("line count changed");
        for (size_t i = 0; i < ni; i++) {
            if (!same_shape(li[i], lo[i], &sc))
                fail("line shape changed");
            check_line_pair(li[i], lo[i], &sc);
        }
    } else {
        size_t j = 0;
        for (size_t i = 0; i < ni; i++) {
            while (j < no && !same_shape(li[i], lo[j], &sc)) {
                if (!is_copy_line(lo[j]))
                    fail("extra line that is no copy");
                j++;
            }
            if (j == no)
                fail("input line missing from output");
            j++;
        }
        for (; j < no; j++) {
            if (!is_copy_line(lo[j]))
                fail("extra trailing line that is no copy");
        }
    }

    /* a second pass over an output without copies changes nothing */
    if (!copies_possible) {
        enum hls_status st2 = hls_rewrite(out.data, out.len, o, &again, NULL);
        if (st2 == HLS_OK) {
            if (again.len != out.len || memcmp(again.data, out.data, out.len) != 0)
                fail("second pass changed the output");
        } else if (!(st2 == HLS_BAD && maxl_out > HLS_MAX_LINE)) {
            fail("output is no playlist");
        }
    }
    free(sc.ta);
    free(sc.tb);
    free(sc.sa);
    free(sc.sb);
    free(li);
    free(lo);
out:
    buf_free(&out);
    buf_free(&again);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    struct hls_opts plain = {
        .playlist_url = PLAYLIST,
        .origin_base = ORIGIN,
        .cdns = cdns,
        .ncdns = 1,
        .self_base = NULL,
        .nested_query = NULL,
        .redundant = false,
    };
    struct hls_opts nested = plain;
    nested.self_base = SELF;
    nested.nested_query = NQ;
    struct hls_opts redundant = nested;
    redundant.ncdns = 3;
    redundant.redundant = true;

    run(in, size, &plain, 0);
    run(in, size, &nested, 0);
    run(in, size, &redundant, 1);
    return 0;
}
