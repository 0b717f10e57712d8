#include "steerd/hls.h"

#include <stdio.h>
#include <string.h>

#include "steerd/url.h"
#include "steerd/util.h"

#define GROUP_BLOOM_BITS 1024
#define CACHED_CDNS 16 /* CDN base lengths computed once per call */

enum dest {
    DEST_CDN,    /* segment-like: the CDN */
    DEST_NESTED, /* a nested playlist: back through steerd (or the CDN without self_base) */
};

enum tag {
    TAG_OTHER,  /* attribute list of an unknown or segment-like tag: URI goes to the CDN */
    TAG_NOATTR, /* a value that is not an attribute list (EXTINF title, dates, numbers) */
    TAG_STREAM_INF,
    TAG_IFRAME_INF,
    TAG_MEDIA,
    TAG_RENDITION_REPORT,
    TAG_SESSION, /* EXT-X-SESSION-KEY, EXT-X-SESSION-DATA: multivariant, URI to the CDN */
    TAG_CONTENT_STEERING,
    TAG_TARGETDURATION,
    TAG_PART_INF,
    TAG_ENDLIST,
};

/* Rendition group types that get per-CDN copies (CLOSED-CAPTIONS has no URI). */
enum gtype { GT_NONE = 0, GT_AUDIO, GT_SUBTITLES, GT_VIDEO };

struct tagname {
    const char *name;
    size_t len;
    enum tag tag;
};

/* clang-format off */
#define T(s, t) {s, sizeof(s) - 1, t}
/* clang-format on */
static const struct tagname tagnames[] = {
    T("EXTINF", TAG_NOATTR),
    T("EXT-X-PROGRAM-DATE-TIME", TAG_NOATTR),
    T("EXT-X-BYTERANGE", TAG_NOATTR),
    T("EXT-X-PART", TAG_OTHER),
    T("EXT-X-KEY", TAG_OTHER),
    T("EXT-X-MAP", TAG_OTHER),
    T("EXT-X-STREAM-INF", TAG_STREAM_INF),
    T("EXT-X-I-FRAME-STREAM-INF", TAG_IFRAME_INF),
    T("EXT-X-MEDIA", TAG_MEDIA),
    T("EXT-X-RENDITION-REPORT", TAG_RENDITION_REPORT),
    T("EXT-X-SESSION-KEY", TAG_SESSION),
    T("EXT-X-SESSION-DATA", TAG_SESSION),
    T("EXT-X-CONTENT-STEERING", TAG_CONTENT_STEERING),
    T("EXT-X-TARGETDURATION", TAG_TARGETDURATION),
    T("EXT-X-PART-INF", TAG_PART_INF),
    T("EXT-X-ENDLIST", TAG_ENDLIST),
    T("EXTM3U", TAG_NOATTR),
    T("EXT-X-VERSION", TAG_NOATTR),
    T("EXT-X-MEDIA-SEQUENCE", TAG_NOATTR),
    T("EXT-X-DISCONTINUITY-SEQUENCE", TAG_NOATTR),
    T("EXT-X-DISCONTINUITY", TAG_NOATTR),
    T("EXT-X-PLAYLIST-TYPE", TAG_NOATTR),
    T("EXT-X-I-FRAMES-ONLY", TAG_NOATTR),
    T("EXT-X-INDEPENDENT-SEGMENTS", TAG_NOATTR),
    T("EXT-X-GAP", TAG_NOATTR),
    T("EXT-X-BITRATE", TAG_NOATTR),
};
#undef T

/* One input line: [start, end) is its content, [end, next) its line ending ("", "\n" or
 * "\r\n"). */
struct line {
    const char *start;
    const char *end;
    const char *next;
};

struct attr {
    const char *name;
    size_t name_len;
    const char *val; /* inside the quotes when quoted */
    size_t val_len;
    bool quoted;
};

/* The target a URI is sent to. */
struct target {
    const char *base;
    size_t base_len;
    bool nested_extras; /* add nested_query / the pin parameter */
    bool pin;
};

struct rw {
    const struct hls_opts *o;
    struct buf *out;
    size_t limit;
    enum hls_status err; /* sticky */

    size_t pl_len;
    bool pl_quote;        /* playlist_url holds a '"' */
    bool pl_under_origin; /* playlist_url lies under origin_base */
    size_t origin_len;
    size_t origin_prefix_len; /* origin_base without a trailing '/' */
    const char *origin_host;  /* origin_base's host (as url_under_base splits it) */
    size_t origin_host_len;
    const char *origin_path; /* origin_base's path, without a trailing '/' */
    size_t origin_path_len;
    size_t self_len;
    size_t nq_len;
    const char *cdn_param;
    size_t cdn_param_len;
    size_t cdn_len[CACHED_CDNS]; /* cdn_base_len() of the first CACHED_CDNS targets */

    /* Fast path for plain relative references: the playlist's directory, as a remainder
     * under origin_base. */
    bool fast_ok;
    const char *fast_rem;
    size_t fast_rem_len;

    bool copies; /* redundant copies are written */
    /* steering mode (hls_opts.steering_uri) applies to this playlist */
    bool steer;
    const char *keep_pathway; /* origin pathway whose variants are kept, NULL: all */
    size_t keep_pathway_len;
    bool skip_variant; /* the pending EXT-X-STREAM-INF is of another origin pathway */
    size_t nvariants, niframes, nrenditions; /* STABLE-*-ID ordinals */
    uint64_t groups[GROUP_BLOOM_BITS / 64];

    const char *pend; /* input not yet copied to out */
    const char *last_eol;
    size_t last_eol_len;

    bool variant_pending; /* an EXT-X-STREAM-INF waits for its URI line */
    struct line sinf;

    struct hls_info info;
};

/* ---- small helpers ---------------------------------------------------------------------- */

static bool
eq(const char *p, size_t n, const char *lit)
{
    size_t l = strlen(lit);
    return n == l && memcmp(p, lit, l) == 0;
}

static enum tag
classify(const char *name, size_t n)
{
    for (size_t i = 0; i < UTIL_ARRAY_LEN(tagnames); i++) {
        if (tagnames[i].len == n && memcmp(tagnames[i].name, name, n) == 0)
            return tagnames[i].tag;
    }
    return TAG_OTHER;
}

/* Splits a tag line "#NAME[:value]" into its name and value. */
static enum tag
tag_of(const struct line *l, const char **val)
{
    const char *name = l->start + 1;
    const char *colon = memchr(name, ':', (size_t)(l->end - name));
    *val = colon ? colon + 1 : l->end;
    return classify(name, (size_t)((colon ? colon : l->end) - name));
}

/* Reads the next attribute of an attribute list at [*pp, e). Returns false at the end of the
 * list, or when an unterminated quoted string makes the rest unreadable. An item without '='
 * is skipped; bytes between a closing quote and the next ',' are ignored. */
static bool
next_attr(const char **pp, const char *e, struct attr *a)
{
    const char *p = *pp;
    for (;;) {
        while (p < e && (*p == ',' || *p == ' ' || *p == '\t'))
            p++;
        if (p >= e)
            return false;
        /* the name runs to the first '=' or ','; memchr beats a byte loop on these lines */
        a->name = p;
        const char *eqp = memchr(p, '=', (size_t)(e - p));
        const char *comma = memchr(p, ',', (size_t)((eqp ? eqp : e) - p));
        if (comma != NULL) {
            p = comma; /* an item without '=' */
            continue;
        }
        if (eqp == NULL)
            return false;
        p = eqp;
        a->name_len = (size_t)(p - a->name);
        p++;
        if (p < e && *p == '"') {
            const char *q = memchr(p + 1, '"', (size_t)(e - p - 1));
            if (q == NULL)
                return false;
            a->quoted = true;
            a->val = p + 1;
            a->val_len = (size_t)(q - p - 1);
            p = q + 1;
            comma = memchr(p, ',', (size_t)(e - p));
            p = comma ? comma : e;
        } else {
            a->quoted = false;
            a->val = p;
            comma = memchr(p, ',', (size_t)(e - p));
            p = comma ? comma : e;
            a->val_len = (size_t)(p - a->val);
        }
        *pp = p;
        return true;
    }
}

static enum gtype
gtype_of_media(const char *v, size_t n)
{
    if (eq(v, n, "AUDIO"))
        return GT_AUDIO;
    if (eq(v, n, "SUBTITLES"))
        return GT_SUBTITLES;
    if (eq(v, n, "VIDEO"))
        return GT_VIDEO;
    return GT_NONE;
}

/* The group type a STREAM-INF / I-FRAME-STREAM-INF attribute refers to. */
static enum gtype
gtype_of_ref(const char *name, size_t n)
{
    return gtype_of_media(name, n); /* AUDIO=, SUBTITLES=, VIDEO= */
}

static void
bloom_bits(enum gtype t, const char *g, size_t n, uint32_t *b1, uint32_t *b2)
{
    uint64_t h = util_hash64(g, n, (uint64_t)t);
    *b1 = (uint32_t)(h % GROUP_BLOOM_BITS);
    *b2 = (uint32_t)((h >> 32) % GROUP_BLOOM_BITS);
}

static void
group_add(struct rw *w, enum gtype t, const char *g, size_t n)
{
    uint32_t b1, b2;
    bloom_bits(t, g, n, &b1, &b2);
    w->groups[b1 / 64] |= UINT64_C(1) << (b1 % 64);
    w->groups[b2 / 64] |= UINT64_C(1) << (b2 % 64);
}

/* True when group g of type t gets per-CDN copies. A false positive only copies a group that
 * had no URI; both the EXT-X-MEDIA copies and the STREAM-INF references use this one test, so
 * they always agree. */
static bool
group_copied(const struct rw *w, enum gtype t, const char *g, size_t n)
{
    uint32_t b1, b2;
    if (t == GT_NONE)
        return false;
    bloom_bits(t, g, n, &b1, &b2);
    return (w->groups[b1 / 64] >> (b1 % 64) & 1) && (w->groups[b2 / 64] >> (b2 % 64) & 1);
}

/* ---- output ----------------------------------------------------------------------------- */

/* Inlined: it runs several times per URI. */
static inline __attribute__((always_inline)) void
put(struct rw *w, const void *p, size_t n)
{
    struct buf *b = w->out;
    if (w->err != HLS_OK)
        return;
    if (n > w->limit - b->len) {
        w->err = HLS_TOO_LARGE;
    } else if (n < b->cap - b->len) {
        /* room for n bytes and the terminator (cap is 0 without data): what buf_append would
         * do, without the call; limit <= out->max, so max holds too */
        memcpy(b->data + b->len, p, n);
        b->len += n;
        b->data[b->len] = '\0';
    } else if (buf_append(b, p, n) != 0) {
        w->err = HLS_TOO_LARGE;
    }
}

static inline void
flush_to(struct rw *w, const char *upto)
{
    put(w, w->pend, (size_t)(upto - w->pend));
    w->pend = upto;
}

static void
truncate_out(struct buf *b, size_t len)
{
    b->len = len;
    if (b->data != NULL)
        b->data[len] = '\0';
}

/* Replaces out[at, at + del) with ins[0..n); ins must not point into out. */
static void
splice(struct rw *w, size_t at, size_t del, const char *ins, size_t n)
{
    struct buf *b = w->out;
    if (w->err != HLS_OK)
        return;
    size_t tail = b->len - at - del;
    if (n > del) {
        if (buf_append(b, ins, n - del) != 0) {
            w->err = HLS_TOO_LARGE;
            return;
        }
        memmove(b->data + at + n, b->data + at + del, tail);
    } else if (n < del) {
        memmove(b->data + at + n, b->data + at + del, tail);
        truncate_out(b, b->len - (del - n));
    }
    memcpy(b->data + at, ins, n);
}

/* Percent-encodes '"' as %22 in out[from, len), for a URI written inside a quoted attribute.
 * The only source of such a '"' is playlist_url (a quoted reference cannot hold one), so this
 * runs only when playlist_url has one. CR and LF cannot reach a rewritten URI at all: the
 * reference comes from one line (a CR not followed by LF is refused), the bases, query and
 * ids are refused with control bytes, and playlist_url is refused with CR or LF. */
static void
escape_quotes(struct rw *w, size_t from)
{
    for (size_t i = from; w->err == HLS_OK && i < w->out->len; i++) {
        if (w->out->data[i] == '"') {
            splice(w, i, 1, "%22", 3);
            i += 2;
        }
    }
}

static size_t
strip_slash(const char *s, size_t n)
{
    return (n > 0 && s[n - 1] == '/') ? n - 1 : n;
}

static size_t
cdn_base_len(const struct hls_target *t)
{
    return strip_slash(t->base, t->base_len ? t->base_len : strlen(t->base));
}

static struct target
target_for(const struct rw *w, enum dest d, size_t k)
{
    struct target t = {w->o->cdns[k].base,
                       k < CACHED_CDNS ? w->cdn_len[k] : cdn_base_len(&w->o->cdns[k]), false,
                       false};
    if (d == DEST_NESTED && w->o->self_base != NULL) {
        t.base = w->o->self_base;
        t.base_len = w->self_len;
        t.nested_extras = true;
        t.pin = (w->copies && k > 0) || w->steer;
    }
    return t;
}

/* Adds nested_query and the pin parameter to the URL remainder at out[from, len), before its
 * fragment. */
static void
add_nested_extras(struct rw *w, size_t from, const struct target *t, size_t k)
{
    struct buf *b = w->out;
    if (w->err != HLS_OK || (w->nq_len == 0 && !t->pin))
        return;
    const char *hash = memchr(b->data + from, '#', b->len - from);
    size_t at = hash ? (size_t)(hash - b->data) : b->len;
    bool has_query = memchr(b->data + from, '?', at - from) != NULL;
    if (hash == NULL) {
        /* no fragment (the usual case): the extras go at the end */
        if (w->nq_len > 0) {
            put(w, has_query ? "&" : "?", 1);
            put(w, w->o->nested_query, w->nq_len);
            has_query = true;
        }
        if (t->pin) {
            const char *id = w->o->cdns[k].id;
            put(w, has_query ? "&" : "?", 1);
            put(w, w->cdn_param, w->cdn_param_len);
            put(w, "=", 1);
            put(w, id, strlen(id));
        }
        return;
    }
    if (w->nq_len > 0) {
        splice(w, at, 0, has_query ? "&" : "?", 1);
        splice(w, at + 1, 0, w->o->nested_query, w->nq_len);
        at += 1 + w->nq_len;
        has_query = true;
    }
    if (t->pin) {
        const char *id = w->o->cdns[k].id;
        size_t id_len = strlen(id);
        splice(w, at, 0, has_query ? "&" : "?", 1);
        splice(w, at + 1, 0, w->cdn_param, w->cdn_param_len);
        splice(w, at + 1 + w->cdn_param_len, 0, "=", 1);
        splice(w, at + 2 + w->cdn_param_len, 0, id, id_len);
    }
}

/* Whether the attribute list [p, e) may hold an attribute named name (given with its '=', as
 * "URI="): next_attr() ends a name at the first '=', so such an attribute has these bytes
 * together. A cheap test that lets lines without it skip the attribute parser. */
static bool
may_have_attr(const char *p, const char *e, const char *name, size_t name_len)
{
    while ((p = memchr(p, name[0], (size_t)(e - p))) != NULL) {
        if ((size_t)(e - p) < name_len)
            return false;
        if (memcmp(p, name, name_len) == 0)
            return true;
        p++;
    }
    return false;
}

static bool
has_variable(const char *s, size_t n)
{
    const char *p = s;
    const char *e = s + n;
    while ((p = memchr(p, '{', (size_t)(e - p))) != NULL) {
        if (p + 1 < e && p[1] == '$')
            return true;
        p++;
    }
    return false;
}

/* A '/' followed by '.' in s[0..n). From the first '/' on, the dots are looked for: URLs have
 * fewer of them than slashes. */
static bool
has_slash_dot(const char *s, size_t n)
{
    const char *e = s + n;
    const char *p = memchr(s, '/', n);
    if (p == NULL)
        return false;
    while ((p = memchr(p, '.', (size_t)(e - p))) != NULL) {
        if (p[-1] == '/')
            return true;
        p++;
    }
    return false;
}

/* A reference whose resolution is playlist directory + ref: a relative path without a scheme,
 * without '.' segments and not starting with '/', '?' or '#'. */
static bool
plain_relative(const char *s, size_t n)
{
    if (n == 0 || s[0] == '/' || s[0] == '?' || s[0] == '#' || s[0] == '.')
        return false;
    return !has_slash_dot(s, n);
}

/* The fast path: for a reference "(./|../)*plain", the length of fast_rem that its resolution
 * keeps, and the plain rest. False when the reference needs the general resolver, or climbs to
 * or above origin_base's path. */
static bool
fast_resolve(const struct rw *w, const char **ref, size_t *n, size_t *keep)
{
    const char *s = *ref;
    size_t len = *n;
    size_t k = w->fast_rem_len; /* fast_rem starts and ends with '/' */
    for (;;) {
        if (len >= 2 && s[0] == '.' && s[1] == '/') {
            s += 2;
            len -= 2;
        } else if (len >= 3 && s[0] == '.' && s[1] == '.' && s[2] == '/') {
            if (k <= 1)
                return false;
            k--;
            while (w->fast_rem[k - 1] != '/')
                k--;
            s += 3;
            len -= 3;
        } else {
            break;
        }
    }
    if (!plain_relative(s, len))
        return false;
    *ref = s;
    *n = len;
    *keep = k;
    return true;
}

static bool
ascii_ieq(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (x >= 'A' && x <= 'Z')
            x = (unsigned char)(x + ('a' - 'A'));
        if (y >= 'A' && y <= 'Z')
            y = (unsigned char)(y + ('a' - 'A'));
        if (x != y)
            return false;
    }
    return true;
}

/* A quick test for a reference with an authority ("scheme://auth..." with scheme_len > 0, or
 * "//auth..."): true when the authority does not even contain origin_base's host, so neither the
 * reference nor its resolution (which keeps that authority) can lie under origin_base. False
 * means "ask url_under_base". Playlists full of segments on a foreign CDN skip the parser. */
static bool
surely_foreign(const struct rw *w, const char *ref, size_t n, size_t scheme_len)
{
    size_t i = scheme_len > 0 ? scheme_len + 1 : 0;
    size_t h = w->origin_host_len;
    if (h == 0 || n < i + 2 || ref[i] != '/' || ref[i + 1] != '/')
        return false;
    const char *a = ref + i + 2;
    const char *e = ref + n;
    const char *ae = a;
    while (ae < e && *ae != '/' && *ae != '?' && *ae != '#')
        ae++;
    for (const char *p = a; (size_t)(ae - p) >= h; p++) {
        if (ascii_ieq(p, w->origin_host, h))
            return false;
    }
    return true;
}

/* ref starts with origin_base (without its trailing '/') followed by '/'. */
static bool
spelled_like_origin(const struct rw *w, const char *ref, size_t n)
{
    size_t ol = w->origin_prefix_len;
    return n > ol && ref[ol] == '/' && memcmp(ref, w->o->origin_base, ol) == 0;
}

/* Appends the rewritten form of the URI ref[0..n) for destination d of the copy for cdns[k].
 * quoted: the URI sits inside a quoted attribute value. Returns true when the URI was sent to a
 * target base, false when it was left as it is (or written as its absolute resolution). */
static bool
put_uri(struct rw *w, const char *ref, size_t n, enum dest d, size_t k, bool quoted)
{
    struct buf *b = w->out;
    if (w->err != HLS_OK)
        return false;
    size_t scheme_len = url_scheme_len(ref, n);
    bool http = (scheme_len == 4 && ascii_ieq(ref, "http", 4)) ||
                (scheme_len == 5 && ascii_ieq(ref, "https", 5)); /* url_is_http() */
    if (has_variable(ref, n) || (scheme_len > 0 && !http)) {
        put(w, ref, n);
        return false;
    }
    bool spelled = scheme_len > 0 && spelled_like_origin(w, ref, n);
    if ((scheme_len > 0 || (n >= 2 && ref[0] == '/' && ref[1] == '/')) && !spelled &&
        surely_foreign(w, ref, n, scheme_len)) {
        put(w, ref, n); /* foreign (a resolution keeps its authority): left as it is */
        return false;
    }
    struct target t = target_for(w, d, k);
    size_t start = b->len;
    bool rewritten = true;
    const char *rest = ref;
    size_t rest_len = n, keep;
    size_t off;
    if (scheme_len == 0 && w->fast_ok && fast_resolve(w, &rest, &rest_len, &keep)) {
        put(w, t.base, t.base_len);
        put(w, w->fast_rem, keep);
        put(w, rest, rest_len);
    } else if (scheme_len == 0 && w->pl_under_origin && n > 0 && ref[0] == '/' &&
               (n == 1 || ref[1] != '/') && n > w->origin_path_len &&
               memcmp(ref, w->origin_path, w->origin_path_len) == 0 &&
               ref[w->origin_path_len] == '/' && !has_slash_dot(ref, n)) {
        /* "/path" under origin_base's path, on the playlist's (= the origin's) host */
        put(w, t.base, t.base_len);
        put(w, ref + w->origin_path_len, n - w->origin_path_len);
    } else if (scheme_len > 0 && !has_slash_dot(ref, n)) {
        /* an absolute URL without dot segments is its own resolution; spelled exactly like
         * origin_base it is under it, otherwise ask the parser (case, default ports) */
        if (spelled)
            off = w->origin_prefix_len;
        else if (!url_under_base(ref, n, w->o->origin_base, w->origin_len, &off)) {
            put(w, ref, n);
            return false;
        }
        put(w, t.base, t.base_len);
        put(w, ref + off, n - off);
    } else {
        if (url_resolve(w->o->playlist_url, w->pl_len, ref, n, b) != 0) {
            w->err = HLS_TOO_LARGE;
            return false;
        }
        if (url_under_base(b->data + start, b->len - start, w->o->origin_base, w->origin_len,
                           &off)) {
            splice(w, start, off, t.base, t.base_len);
        } else if (scheme_len > 0 || (n >= 2 && ref[0] == '/' && ref[1] == '/')) {
            truncate_out(b, start); /* foreign: left as it is */
            put(w, ref, n);
            return false;
        } else {
            rewritten = false; /* relative, resolved outside the origin: absolute URL */
        }
    }
    if (rewritten && t.nested_extras)
        add_nested_extras(w, start + t.base_len, &t, k);
    if (quoted && w->pl_quote)
        escape_quotes(w, start);
    if (w->err == HLS_OK && b->len > w->limit)
        w->err = HLS_TOO_LARGE;
    return rewritten;
}

/* ---- lines -------------------------------------------------------------------------------- */

static inline bool
next_line(const char **pp, const char *e, struct line *l)
{
    const char *p = *pp;
    if (p >= e)
        return false;
    const char *nl = memchr(p, '\n', (size_t)(e - p));
    l->start = p;
    l->next = nl ? nl + 1 : e;
    l->end = nl ? nl : e;
    if (l->end > p && l->end[-1] == '\r')
        l->end--;
    *pp = l->next;
    return true;
}

static bool
is_tag(const struct line *l)
{
    return l->end - l->start >= 4 && memcmp(l->start, "#EXT", 4) == 0;
}

static const char *
skip_ws(const char *p, const char *e)
{
    while (p < e && (*p == ' ' || *p == '\t'))
        p++;
    return p;
}

static const char *
rskip_ws(const char *s, const char *p)
{
    while (p > s && (p[-1] == ' ' || p[-1] == '\t'))
        p--;
    return p;
}

/* Copies follow their original line, each ending like it; when that line had no ending (the
 * last line of a playlist without a final newline) each copy is preceded by the ending of the
 * last line that had one, so the output still ends without a newline. */
static void
put_sep_if_needed(struct rw *w, const struct line *l)
{
    if (l->next == l->end)
        put(w, w->last_eol, w->last_eol_len);
}

static void
put_eol(struct rw *w, const struct line *l)
{
    put(w, l->end, (size_t)(l->next - l->end));
}

static enum dest
dest_of(enum tag t)
{
    switch (t) {
    case TAG_STREAM_INF:
    case TAG_IFRAME_INF:
    case TAG_MEDIA:
    case TAG_RENDITION_REPORT:
        return DEST_NESTED;
    default:
        return DEST_CDN;
    }
}

/* Writes the copy of a tag line for cdns[k] (k >= 1), without its line ending: URIs for that
 * CDN, GROUP-ID (EXT-X-MEDIA of media_type) and AUDIO/SUBTITLES/VIDEO (variants) renamed to the
 * copy groups. */
static void
put_tag_copy(struct rw *w, const struct line *l, enum tag tag, enum gtype media_type, size_t k)
{
    const char *val;
    (void)tag_of(l, &val);
    const char *cur = l->start;
    const char *p = val;
    const char *id = w->o->cdns[k].id;
    struct attr a;

    while (next_attr(&p, l->end, &a)) {
        if (eq(a.name, a.name_len, "URI") && a.quoted) {
            put(w, cur, (size_t)(a.val - cur));
            put_uri(w, a.val, a.val_len, dest_of(tag), k, true);
            cur = a.val + a.val_len;
            continue;
        }
        bool rename = false;
        if (tag == TAG_MEDIA && eq(a.name, a.name_len, "GROUP-ID"))
            rename = media_type != GT_NONE;
        else if (tag == TAG_STREAM_INF || tag == TAG_IFRAME_INF)
            rename = group_copied(w, gtype_of_ref(a.name, a.name_len), a.val, a.val_len);
        if (rename) {
            put(w, cur, (size_t)(a.val + a.val_len - cur));
            put(w, "-", 1);
            put(w, id, strlen(id));
            cur = a.val + a.val_len;
        }
    }
    put(w, cur, (size_t)(l->end - cur));
}

static uint32_t
parse_ms(const char *s, size_t n)
{
    uint64_t whole = 0, frac = 0, scale = 1000;
    size_t i = 0;
    if (n == 0)
        return 0;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
        whole = whole * 10 + (uint64_t)(s[i] - '0');
        if (whole > UINT32_MAX / 1000)
            return 0;
    }
    if (i < n && s[i] == '.') {
        for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
            if (scale > 1) {
                scale /= 10;
                frac += (uint64_t)(s[i] - '0') * scale;
            } else if (scale == 1 && s[i] >= '5') {
                frac += 1; /* round half up on the fourth digit */
                scale = 0;
            } else {
                scale = 0;
            }
        }
    }
    if (i != n)
        return 0;
    uint64_t ms = whole * 1000 + frac;
    return ms > UINT32_MAX ? 0 : (uint32_t)ms;
}

/* ---- Content Steering ------------------------------------------------------------------ */

/* An EXT-X-MEDIA tag's attributes (val..e): a rendition with a URI adds its group to the groups
 * that get per-CDN copies. */
static void
note_media_group(struct rw *w, const char *val, const char *e)
{
    enum gtype t = GT_NONE;
    const char *g = NULL;
    size_t glen = 0;
    bool uri = false;
    struct attr a;
    const char *q = val;
    while (next_attr(&q, e, &a)) {
        if (eq(a.name, a.name_len, "TYPE")) {
            t = gtype_of_media(a.val, a.val_len);
        } else if (eq(a.name, a.name_len, "GROUP-ID")) {
            g = a.val;
            glen = a.val_len;
        } else if (eq(a.name, a.name_len, "URI") && a.quoted) {
            uri = true;
        }
    }
    if (uri && g != NULL && t != GT_NONE)
        group_add(w, t, g, glen);
}

/* The PATHWAY-ID value of an attribute list, or NULL. */
static const char *
pathway_of(const char *val, const char *e, size_t *len)
{
    struct attr a;
    const char *p = val;
    if (!may_have_attr(val, e, "PATHWAY-ID=", 11))
        return NULL;
    while (next_attr(&p, e, &a)) {
        if (eq(a.name, a.name_len, "PATHWAY-ID")) {
            *len = a.val_len;
            return a.val;
        }
    }
    return NULL;
}

/* Whether a variant line belongs to the origin pathway kept in steering mode. */
static bool
pathway_kept(const struct rw *w, const char *val, const char *e)
{
    size_t n = 0;
    const char *id;
    if (w->keep_pathway == NULL)
        return true;
    id = pathway_of(val, e, &n);
    return id != NULL && n == w->keep_pathway_len && memcmp(id, w->keep_pathway, n) == 0;
}

/* Look-ahead for steering mode: a multivariant playlist with variants (no media-playlist
 * tags), not keeping an origin steering tag. Collects the groups to copy and the origin's
 * first pathway. */
static bool
prescan_steering(struct rw *w, const char *in, const char *e)
{
    struct line l;
    const char *p = in;
    bool variants = false;
    while (next_line(&p, e, &l)) {
        if (!is_tag(&l))
            continue;
        const char *val;
        switch (tag_of(&l, &val)) {
        case TAG_TARGETDURATION:
        case TAG_PART_INF:
            return false;
        case TAG_CONTENT_STEERING:
            if (w->o->steering_keep)
                return false;
            break;
        case TAG_NOATTR:
            if (l.end - l.start >= 7 && memcmp(l.start, "#EXTINF", 7) == 0)
                return false;
            break;
        case TAG_STREAM_INF:
            variants = true;
            if (w->keep_pathway == NULL) {
                size_t n = 0;
                const char *id = pathway_of(val, l.end, &n);
                if (id != NULL) {
                    w->keep_pathway = id;
                    w->keep_pathway_len = n;
                }
            }
            break;
        case TAG_IFRAME_INF:
            variants = true;
            break;
        case TAG_MEDIA:
            note_media_group(w, val, l.end);
            break;
        default:
            break;
        }
    }
    return variants;
}

static void
put_ordinal_id(struct rw *w, const char *attr, char prefix, size_t ordinal)
{
    char num[48];
    int n = snprintf(num, sizeof(num), ",%s=\"%c%zu\"", attr, prefix, ordinal);
    if (n > 0 && (size_t)n < sizeof(num))
        put(w, num, (size_t)n);
}

/* Writes the line l (EXT-X-STREAM-INF, -I-FRAME-STREAM-INF or -MEDIA) for pathway cdns[k],
 * without its line ending: URIs for that CDN, the origin's PATHWAY-ID dropped, copied groups
 * renamed "<group>-<id>", then PATHWAY-ID (variants) and a STABLE-*-ID when there is none. */
static void
put_steer_copy(struct rw *w, const struct line *l, enum tag tag, enum gtype media_type, size_t k,
               size_t ordinal)
{
    const char *val;
    (void)tag_of(l, &val);
    const char *cur = l->start;
    const char *p = val;
    const char *id = w->o->cdns[k].id;
    bool variant = tag == TAG_STREAM_INF || tag == TAG_IFRAME_INF;
    const char *stable = variant ? "STABLE-VARIANT-ID" : "STABLE-RENDITION-ID";
    bool has_stable = false;
    struct attr a;

    while (next_attr(&p, l->end, &a)) {
        if (eq(a.name, a.name_len, "URI") && a.quoted) {
            put(w, cur, (size_t)(a.val - cur));
            put_uri(w, a.val, a.val_len, dest_of(tag), k, true);
            cur = a.val + a.val_len;
            continue;
        }
        if (variant && eq(a.name, a.name_len, "PATHWAY-ID")) {
            const char *aend = a.val + a.val_len + (a.quoted ? 1 : 0);
            const char *stop = a.name;
            if (stop > val && stop[-1] == ',')
                stop--;
            else if (aend < l->end && *aend == ',')
                aend++;
            put(w, cur, (size_t)(stop - cur));
            cur = aend;
            continue;
        }
        has_stable |= eq(a.name, a.name_len, stable);
        bool rename = false;
        if (tag == TAG_MEDIA && eq(a.name, a.name_len, "GROUP-ID"))
            rename = media_type != GT_NONE;
        else if (variant)
            rename = group_copied(w, gtype_of_ref(a.name, a.name_len), a.val, a.val_len);
        if (rename) {
            put(w, cur, (size_t)(a.val + a.val_len - cur));
            put(w, "-", 1);
            put(w, id, strlen(id));
            cur = a.val + a.val_len;
        }
    }
    put(w, cur, (size_t)(l->end - cur));
    if (variant) {
        put(w, ",PATHWAY-ID=\"", 13);
        put(w, id, strlen(id));
        put(w, "\"", 1);
    }
    if (!has_stable)
        put_ordinal_id(w, stable,
                       tag == TAG_MEDIA        ? 'r'
                       : tag == TAG_IFRAME_INF ? 'i'
                                               : 'v',
                       ordinal);
}

/* Writes one copy of l per CDN (the line itself is skipped). */
static void
put_steer_copies(struct rw *w, const struct line *l, enum tag tag, enum gtype media_type,
                 size_t ordinal)
{
    flush_to(w, l->start);
    w->pend = l->next;
    for (size_t k = 0; k < w->o->ncdns; k++) {
        if (k > 0)
            put_sep_if_needed(w, l);
        put_steer_copy(w, l, tag, media_type, k, ordinal);
        put_eol(w, l);
    }
}

/* Steering mode's handling of a tag line; false when the line is left to do_tag. */
static bool
steer_tag(struct rw *w, const struct line *l, enum tag tag, const char *val)
{
    struct attr a;
    const char *p;
    switch (tag) {
    case TAG_CONTENT_STEERING: /* the origin's is replaced by steerd's */
        w->info.has_steering_tag = true;
        flush_to(w, l->start);
        w->pend = l->next;
        return true;
    case TAG_STREAM_INF: /* written with its URI line */
        w->info.multivariant = true;
        w->variant_pending = true;
        w->skip_variant = !pathway_kept(w, val, l->end);
        w->sinf = *l;
        flush_to(w, l->start);
        w->pend = l->next;
        return true;
    case TAG_IFRAME_INF:
        w->info.multivariant = true;
        if (!pathway_kept(w, val, l->end)) {
            flush_to(w, l->start);
            w->pend = l->next;
            return true;
        }
        put_steer_copies(w, l, tag, GT_NONE, w->niframes++);
        return true;
    case TAG_MEDIA: {
        enum gtype t = GT_NONE;
        const char *g = NULL;
        size_t glen = 0;
        w->info.multivariant = true;
        p = val;
        while (next_attr(&p, l->end, &a)) {
            if (eq(a.name, a.name_len, "TYPE")) {
                t = gtype_of_media(a.val, a.val_len);
            } else if (eq(a.name, a.name_len, "GROUP-ID")) {
                g = a.val;
                glen = a.val_len;
            }
        }
        if (g == NULL || !group_copied(w, t, g, glen))
            return false;
        put_steer_copies(w, l, tag, t, w->nrenditions++);
        return true;
    }
    default:
        return false;
    }
}

/* The variant's URI line in steering mode: the STREAM-INF + URI pair once per CDN. */
static void
steer_variant(struct rw *w, const struct line *l, const char *ref, const char *ref_end)
{
    flush_to(w, l->start);
    w->pend = l->next;
    if (w->skip_variant)
        return;
    size_t ord = w->nvariants++;
    for (size_t k = 0; k < w->o->ncdns; k++) {
        if (k > 0)
            put_sep_if_needed(w, l);
        put_steer_copy(w, &w->sinf, TAG_STREAM_INF, GT_NONE, k, ord);
        put_eol(w, &w->sinf);
        put(w, l->start, (size_t)(ref - l->start));
        put_uri(w, ref, (size_t)(ref_end - ref), DEST_NESTED, k, false);
        put(w, ref_end, (size_t)(l->end - ref_end));
        put_eol(w, l);
    }
}

/* After #EXTM3U: steerd's EXT-X-CONTENT-STEERING. */
static void
put_steering_tag(struct rw *w, const struct line *first)
{
    const char *id = w->o->cdns[0].id;
    flush_to(w, first->next);
    put(w, "#EXT-X-CONTENT-STEERING:SERVER-URI=\"", 36);
    put(w, w->o->steering_uri, strlen(w->o->steering_uri));
    put(w, "\",PATHWAY-ID=\"", 14);
    put(w, id, strlen(id));
    put(w, "\"", 1);
    put_eol(w, first);
}

static void
do_tag(struct rw *w, const struct line *l)
{
    /* most lines of a media playlist: EXTINF has nothing to rewrite */
    if (l->end - l->start >= 8 && memcmp(l->start, "#EXTINF:", 8) == 0)
        return;
    const char *val;
    enum tag tag = tag_of(l, &val);
    struct attr a;
    const char *p;
    enum gtype media_type = GT_NONE;
    bool copy_media = false;

    if (w->steer && steer_tag(w, l, tag, val))
        return;
    switch (tag) {
    case TAG_NOATTR:
        return;
    case TAG_ENDLIST:
        w->info.endlist = true;
        return;
    case TAG_TARGETDURATION: {
        uint64_t v;
        if (util_parse_u64(val, (size_t)(l->end - val), 0, UINT32_MAX, &v) == 0)
            w->info.target_duration_s = (uint32_t)v;
        return;
    }
    case TAG_PART_INF:
        p = val;
        while (next_attr(&p, l->end, &a)) {
            if (eq(a.name, a.name_len, "PART-TARGET") && !a.quoted)
                w->info.part_target_ms = parse_ms(a.val, a.val_len);
        }
        return;
    case TAG_CONTENT_STEERING:
        w->info.has_steering_tag = true;
        w->info.multivariant = true;
        return; /* SERVER-URI is left as it is */
    case TAG_STREAM_INF:
        w->info.multivariant = true;
        w->variant_pending = true;
        w->sinf = *l;
        break;
    case TAG_IFRAME_INF:
    case TAG_SESSION:
        w->info.multivariant = true;
        break;
    case TAG_MEDIA:
        w->info.multivariant = true;
        break;
    default:
        break;
    }

    /* One pass over the attributes: URIs rewritten in place; for EXT-X-MEDIA with copies, the
     * TYPE and GROUP-ID that decide whether the rendition is copied. */
    enum dest d = dest_of(tag);
    bool rewritten = false;
    bool media_group = tag == TAG_MEDIA && w->copies;
    const char *group = NULL;
    size_t group_len = 0;
    if (media_group || may_have_attr(val, l->end, "URI=", 4)) {
        p = val;
        while (next_attr(&p, l->end, &a)) {
            if (eq(a.name, a.name_len, "URI")) {
                if (!a.quoted)
                    continue;
                flush_to(w, a.val);
                rewritten |= put_uri(w, a.val, a.val_len, d, 0, true);
                w->pend = a.val + a.val_len;
            } else if (media_group && eq(a.name, a.name_len, "TYPE")) {
                media_type = gtype_of_media(a.val, a.val_len);
            } else if (media_group && eq(a.name, a.name_len, "GROUP-ID")) {
                group = a.val;
                group_len = a.val_len;
            }
        }
        copy_media = group != NULL && group_copied(w, media_type, group, group_len);
    }

    /* A rendition is copied whenever its group is (so every copy group is complete); an
     * I-frame variant only when its URI was rewritten (a copy would be identical). */
    if (w->copies && (copy_media || (tag == TAG_IFRAME_INF && rewritten))) {
        flush_to(w, l->next);
        for (size_t k = 1; k < w->o->ncdns; k++) {
            put_sep_if_needed(w, l);
            put_tag_copy(w, l, tag, media_type, k);
            put_eol(w, l);
        }
    }
}

static void
do_uri_line(struct rw *w, const struct line *l, const char *ref, const char *ref_end)
{
    bool variant = w->variant_pending;
    w->variant_pending = false;
    if (variant && w->steer) {
        steer_variant(w, l, ref, ref_end);
        return;
    }

    flush_to(w, ref);
    bool rewritten =
        put_uri(w, ref, (size_t)(ref_end - ref), variant ? DEST_NESTED : DEST_CDN, 0, false);
    w->pend = ref_end;

    /* a variant left as it is (foreign host, data:, variables) would only be repeated */
    if (!variant || !w->copies || !rewritten)
        return;
    flush_to(w, l->next);
    for (size_t k = 1; k < w->o->ncdns; k++) {
        put_sep_if_needed(w, l);
        put_tag_copy(w, &w->sinf, TAG_STREAM_INF, GT_NONE, k);
        put_eol(w, &w->sinf);
        put(w, l->start, (size_t)(ref - l->start));
        put_uri(w, ref, (size_t)(ref_end - ref), DEST_NESTED, k, false);
        put(w, ref_end, (size_t)(l->end - ref_end));
        put_eol(w, l);
    }
}

/* Look-ahead over a playlist for redundant copies: are there variants, none with PATHWAY-ID,
 * no EXT-X-CONTENT-STEERING and no media-playlist tags? Also collects the groups to copy.
 * Stops at the first sign of a media playlist. */
static bool
prescan_copies(struct rw *w, const char *in, const char *e)
{
    struct line l;
    const char *p = in;
    bool variants = false;
    while (next_line(&p, e, &l)) {
        if (!is_tag(&l))
            continue;
        const char *val;
        struct attr a;
        const char *q;
        switch (tag_of(&l, &val)) {
        case TAG_TARGETDURATION:
        case TAG_PART_INF:
        case TAG_CONTENT_STEERING:
            return false;
        case TAG_NOATTR:
            if (l.end - l.start >= 7 && memcmp(l.start, "#EXTINF", 7) == 0)
                return false;
            break;
        case TAG_STREAM_INF:
        case TAG_IFRAME_INF:
            variants = true;
            if (!may_have_attr(val, l.end, "PATHWAY-ID=", 11))
                break;
            q = val;
            while (next_attr(&q, l.end, &a)) {
                if (eq(a.name, a.name_len, "PATHWAY-ID"))
                    return false;
            }
            break;
        case TAG_MEDIA:
            note_media_group(w, val, l.end);
            break;
        default:
            break;
        }
    }
    return variants;
}

/* ---- checks --------------------------------------------------------------------------- */

/* A config string that may be written into a URI: no controls, space, DEL, '"' or '#'. */
static bool
safe_config(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c == 0x7f || c == '"' || c == '#')
            return false;
    }
    return true;
}

/* A base URL we append remainders to: a safe config string without a query. */
static bool
safe_base(const char *s, size_t n)
{
    return safe_config(s, n) && memchr(s, '?', n) == NULL;
}

static bool
safe_token(const char *s)
{
    if (s == NULL || *s == '\0')
        return false;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '.' || c == '_' || c == '~';
        if (!ok)
            return false;
    }
    return true;
}

/* Finds origin_base's host for surely_foreign(), the way url_under_base() splits an authority:
 * after the last '@', without a ":port" (an IP literal keeps its brackets). */
static void
origin_host(struct rw *w, const char *base, size_t n)
{
    size_t i = url_scheme_len(base, n) + 1;
    w->origin_host_len = 0;
    if (n < i + 2 || base[i] != '/' || base[i + 1] != '/')
        return;
    const char *a = base + i + 2;
    const char *e = base + n;
    const char *ae = a;
    while (ae < e && *ae != '/' && *ae != '?' && *ae != '#')
        ae++;
    const char *h = a;
    for (const char *p = ae; p > a; p--) {
        if (p[-1] == '@') {
            h = p;
            break;
        }
    }
    const char *he = ae;
    if (h < ae && *h == '[') {
        const char *close = memchr(h, ']', (size_t)(ae - h));
        he = close ? close + 1 : ae;
    } else {
        for (const char *p = ae; p > h; p--) {
            if (p[-1] == ':') {
                he = p - 1;
                break;
            }
        }
    }
    w->origin_host = h;
    w->origin_host_len = (size_t)(he - h);
}

/* Validates the options and fills the derived fields of w; false on bad options. */
static bool
setup(struct rw *w, const struct hls_opts *o)
{
    if (o->playlist_url == NULL || o->origin_base == NULL || o->cdns == NULL || o->ncdns == 0)
        return false;
    w->pl_len = strlen(o->playlist_url);
    w->origin_len = strlen(o->origin_base);
    if (!url_is_http(o->playlist_url, w->pl_len) || !url_is_http(o->origin_base, w->origin_len))
        return false;
    if (memchr(o->playlist_url, '\r', w->pl_len) || memchr(o->playlist_url, '\n', w->pl_len))
        return false;
    w->pl_quote = memchr(o->playlist_url, '"', w->pl_len) != NULL;
    if (!safe_base(o->origin_base, w->origin_len))
        return false;
    w->origin_prefix_len = strip_slash(o->origin_base, w->origin_len);
    origin_host(w, o->origin_base, w->origin_len);
    if (o->self_base != NULL) {
        /* "" (or "/") gives path-absolute references: "/remainder" */
        w->self_len = strip_slash(o->self_base, strlen(o->self_base));
        if (w->self_len > 0 &&
            (!url_is_http(o->self_base, w->self_len) || !safe_base(o->self_base, w->self_len)))
            return false;
    }
    if (o->nested_query != NULL) {
        w->nq_len = strlen(o->nested_query);
        if (!safe_config(o->nested_query, w->nq_len))
            return false;
    }
    if (o->steering_uri != NULL) {
        size_t n = strlen(o->steering_uri);
        if (!url_is_http(o->steering_uri, n) || !safe_config(o->steering_uri, n))
            return false;
    }
    w->cdn_param = o->cdn_param ? o->cdn_param : HLS_CDN_PARAM;
    if (!safe_token(w->cdn_param))
        return false;
    w->cdn_param_len = strlen(w->cdn_param);
    for (size_t k = 0; k < o->ncdns; k++) {
        const struct hls_target *t = &o->cdns[k];
        if (t->base == NULL || !safe_token(t->id))
            return false;
        size_t n = cdn_base_len(t);
        if (!url_is_http(t->base, n) || !safe_base(t->base, n))
            return false;
        if (k < CACHED_CDNS)
            w->cdn_len[k] = n;
    }

    /* fast paths: origin_base's path; the playlist URL's directory, when it has no dot
     * segments */
    size_t rest_off;
    w->pl_under_origin =
        !has_slash_dot(o->playlist_url, w->pl_len) &&
        url_under_base(o->playlist_url, w->pl_len, o->origin_base, w->origin_len, &rest_off);
    if (w->pl_under_origin) {
        /* the playlist's path starts with origin_base's path: its bytes up to rest_off */
        const char *pp = o->playlist_url + url_scheme_len(o->playlist_url, w->pl_len) + 3;
        pp = memchr(pp, '/', (size_t)(o->playlist_url + rest_off - pp) + 1);
        w->origin_path = pp;
        w->origin_path_len = (size_t)(o->playlist_url + rest_off - pp);
    }

    const char *pl = o->playlist_url;
    size_t end = strcspn(pl, "?#");
    size_t dir = end;
    while (dir > 0 && pl[dir - 1] != '/')
        dir--;
    size_t off;
    w->fast_ok = dir > 0 && !has_slash_dot(pl, dir) &&
                 url_under_base(pl, dir, o->origin_base, w->origin_len, &off);
    if (w->fast_ok) {
        w->fast_rem = pl + off;
        w->fast_rem_len = dir - off;
    }
    return true;
}

static bool
is_playlist(const char *in, size_t len)
{
    if (len >= 3 && memcmp(in, "\xEF\xBB\xBF", 3) == 0) {
        in += 3;
        len -= 3;
    }
    if (len < 7 || memcmp(in, "#EXTM3U", 7) != 0)
        return false;
    return len == 7 || in[7] == '\r' || in[7] == '\n' || in[7] == ' ' || in[7] == '\t';
}

static bool
bytes_ok(const char *in, size_t len)
{
    const char *e = in + len;
    const char *p = in;
    if (memchr(in, '\0', len) != NULL)
        return false;
    while ((p = memchr(p, '\r', (size_t)(e - p))) != NULL) {
        if (p + 1 >= e || p[1] != '\n')
            return false;
        p += 2;
    }
    return true;
}

/* ---- entry point ---------------------------------------------------------------------- */

enum hls_status
hls_rewrite(const char *in, size_t len, const struct hls_opts *o, struct buf *out,
            struct hls_info *info)
{
    struct rw w;
    enum hls_status st = HLS_OK;

    buf_reset(out);
    memset(&w, 0, sizeof(w));
    w.o = o;
    if (o == NULL || !setup(&w, o)) {
        st = HLS_BAD;
        goto out;
    }
    if (in == NULL || !is_playlist(in, len)) {
        st = HLS_NOT_PLAYLIST;
        goto out;
    }
    if (!bytes_ok(in, len)) {
        st = HLS_BAD;
        goto out;
    }
    w.out = out;
    w.limit = out->max;
    if (o->max_output != 0 && o->max_output < w.limit)
        w.limit = o->max_output;
    /* Pre-size the output: rewritten URIs usually make a playlist grow, up to about twice its
     * size (short relative URIs, or redundant copies). A larger answer still grows as needed. */
    (void)buf_reserve(out, len < w.limit / 2 ? 2 * len : w.limit);
    w.pend = in;
    w.last_eol = "\n";
    w.last_eol_len = 1;
    if (o->steering_uri != NULL)
        w.steer = prescan_steering(&w, in, in + len);
    if (!w.steer && o->redundant && o->ncdns > 1)
        w.copies = prescan_copies(&w, in, in + len);

    const char *p = in;
    const char *e = in + len;
    struct line l;
    bool first = true;
    while (w.err == HLS_OK && next_line(&p, e, &l)) {
        if (l.end - l.start > HLS_MAX_LINE) {
            st = HLS_BAD;
            goto out;
        }
        if (first) {
            first = false; /* #EXTM3U */
            if (w.steer)
                put_steering_tag(&w, &l);
        } else if (l.start < l.end && l.start[0] == '#') {
            if (is_tag(&l))
                do_tag(&w, &l);
        } else {
            const char *ref = skip_ws(l.start, l.end);
            const char *ref_end = rskip_ws(ref, l.end);
            if (ref < ref_end)
                do_uri_line(&w, &l, ref, ref_end);
        }
        if (l.next > l.end) {
            w.last_eol = l.end;
            w.last_eol_len = (size_t)(l.next - l.end);
        }
    }
    flush_to(&w, e);
    st = w.err;

out:
    if (st != HLS_OK) {
        buf_reset(out);
        return st;
    }
    if (info != NULL)
        *info = w.info;
    return HLS_OK;
}

const char *
hls_status_str(enum hls_status st)
{
    switch (st) {
    case HLS_OK:
        return "ok";
    case HLS_NOT_PLAYLIST:
        return "not a playlist";
    case HLS_BAD:
        return "malformed playlist or options";
    case HLS_TOO_LARGE:
        return "output too large";
    }
    return "unknown";
}
