#include "steerd/url.h"

#include <string.h>

#include "steerd/util.h"

/* The five components of RFC 3986 Appendix B; a NULL pointer means "undefined" for the
 * optional ones (an empty but present query "x?" is defined with length 0). */
struct parts {
    const char *scheme;
    size_t scheme_len;
    const char *auth;
    size_t auth_len;
    const char *path;
    size_t path_len;
    const char *query;
    size_t query_len;
    const char *frag;
    size_t frag_len;
};

static bool
is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static unsigned char
lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

static bool
ieq(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
            return false;
    }
    return true;
}

size_t
url_scheme_len(const char *ref, size_t len)
{
    if (len == 0 || !is_alpha((unsigned char)ref[0]))
        return 0;
    /* most references have no ':' at all: find it first, then check what precedes it */
    const char *colon = memchr(ref, ':', len);
    if (colon == NULL)
        return 0;
    size_t n = (size_t)(colon - ref);
    for (size_t i = 1; i < n; i++) {
        unsigned char c = (unsigned char)ref[i];
        if (!is_alpha(c) && !is_digit(c) && c != '+' && c != '-' && c != '.')
            return 0;
    }
    return n;
}

bool
url_is_http(const char *ref, size_t len)
{
    size_t n = url_scheme_len(ref, len);
    return (n == 4 && ieq(ref, "http", 4)) || (n == 5 && ieq(ref, "https", 5));
}

static void
split(const char *s, size_t n, struct parts *p)
{
    size_t i = 0;
    memset(p, 0, sizeof(*p));
    p->scheme_len = url_scheme_len(s, n);
    if (p->scheme_len > 0) {
        p->scheme = s;
        i = p->scheme_len + 1;
    }
    if (n - i >= 2 && s[i] == '/' && s[i + 1] == '/') {
        size_t j = i + 2;
        while (j < n && s[j] != '/' && s[j] != '?' && s[j] != '#')
            j++;
        p->auth = s + i + 2;
        p->auth_len = j - (i + 2);
        i = j;
    }
    p->path = s + i;
    while (i < n && s[i] != '?' && s[i] != '#')
        i++;
    p->path_len = (size_t)(s + i - p->path);
    if (i < n && s[i] == '?') {
        size_t j = ++i;
        while (j < n && s[j] != '#')
            j++;
        p->query = s + i;
        p->query_len = j - i;
        i = j;
    }
    if (i < n && s[i] == '#') {
        p->frag = s + i + 1;
        p->frag_len = n - i - 1;
    }
}

/* Drops the last segment of p[0..*w) and the '/' before it (RFC 3986 5.2.4 step C). */
static void
pop_segment(const char *p, size_t *w)
{
    while (*w > 0 && p[*w - 1] != '/')
        (*w)--;
    if (*w > 0)
        (*w)--;
}

/* remove_dot_segments (RFC 3986 5.2.4) in place on p[0..n); returns the new length. The
 * output never grows past the input read so far, so writing at w <= r is safe. */
static size_t
remove_dot_segments(char *p, size_t n)
{
    size_t r = 0, w = 0;
    while (r < n) {
        const char *s = p + r;
        size_t rem = n - r;
        if (rem >= 3 && s[0] == '.' && s[1] == '.' && s[2] == '/') {
            r += 3; /* A: "../" */
        } else if (rem >= 2 && s[0] == '.' && s[1] == '/') {
            r += 2; /* A: "./" */
        } else if (rem >= 3 && s[0] == '/' && s[1] == '.' && s[2] == '/') {
            r += 2; /* B: "/./" -> "/" */
        } else if (rem == 2 && s[0] == '/' && s[1] == '.') {
            r += 1; /* B: "/." at the end -> "/" */
            p[r] = '/';
        } else if (rem >= 4 && s[0] == '/' && s[1] == '.' && s[2] == '.' && s[3] == '/') {
            r += 3; /* C: "/../" -> "/" */
            pop_segment(p, &w);
        } else if (rem == 3 && s[0] == '/' && s[1] == '.' && s[2] == '.') {
            r += 2; /* C: "/.." at the end -> "/" */
            p[r] = '/';
            pop_segment(p, &w);
        } else if ((rem == 1 && s[0] == '.') || (rem == 2 && s[0] == '.' && s[1] == '.')) {
            r = n; /* D */
        } else {
            size_t j = r + (s[0] == '/' ? 1 : 0); /* E: move one segment */
            const char *slash = memchr(p + j, '/', n - j);
            j = slash ? (size_t)(slash - p) : n;
            memmove(p + w, p + r, j - r);
            w += j - r;
            r = j;
        }
    }
    return w;
}

static int
put(struct buf *out, const char *s, size_t n)
{
    return buf_append(out, s, n);
}

int
url_resolve(const char *base, size_t base_len, const char *ref, size_t ref_len, struct buf *out)
{
    struct parts b, r;
    size_t mark = out->len;
    const char *auth;
    size_t auth_len;
    const char *query;
    size_t query_len;
    int rc = 0;

    split(base, base_len, &b);
    if (b.scheme == NULL)
        return -1;
    split(ref, ref_len, &r);

    const struct parts *scheme_from = r.scheme ? &r : &b;
    rc |= put(out, scheme_from->scheme, scheme_from->scheme_len);
    rc |= put(out, ":", 1);

    if (r.scheme != NULL || r.auth != NULL) {
        auth = r.auth;
        auth_len = r.auth_len;
    } else {
        auth = b.auth;
        auth_len = b.auth_len;
    }
    if (auth != NULL) {
        rc |= put(out, "//", 2);
        rc |= put(out, auth, auth_len);
    }

    size_t path_start = out->len;
    bool dots = true;
    query = r.query;
    query_len = r.query_len;
    if (r.scheme != NULL || r.auth != NULL) {
        rc |= put(out, r.path, r.path_len);
    } else if (r.path_len == 0) {
        rc |= put(out, b.path, b.path_len);
        dots = false;
        if (r.query == NULL) {
            query = b.query;
            query_len = b.query_len;
        }
    } else if (r.path[0] == '/') {
        rc |= put(out, r.path, r.path_len);
    } else {
        /* merge (5.2.3) */
        if (b.auth != NULL && b.path_len == 0) {
            rc |= put(out, "/", 1);
        } else {
            size_t keep = b.path_len;
            while (keep > 0 && b.path[keep - 1] != '/')
                keep--;
            rc |= put(out, b.path, keep);
        }
        rc |= put(out, r.path, r.path_len);
    }
    if (rc == 0 && dots) {
        size_t n = remove_dot_segments(out->data + path_start, out->len - path_start);
        out->len = path_start + n;
        out->data[out->len] = '\0';
    }
    if (query != NULL) {
        rc |= put(out, "?", 1);
        rc |= put(out, query, query_len);
    }
    if (r.frag != NULL) {
        rc |= put(out, "#", 1);
        rc |= put(out, r.frag, r.frag_len);
    }
    if (rc != 0) {
        out->len = mark;
        if (out->data != NULL)
            out->data[mark] = '\0';
        return -1;
    }
    return 0;
}

/* Splits an authority into userinfo (NULL when absent), host and port (NULL when absent). */
struct authority {
    const char *user;
    size_t user_len;
    const char *host;
    size_t host_len;
    const char *port;
    size_t port_len;
};

static void
split_authority(const char *a, size_t n, struct authority *o)
{
    memset(o, 0, sizeof(*o));
    const char *at = NULL;
    for (size_t i = n; i > 0; i--) {
        if (a[i - 1] == '@') {
            at = a + i - 1;
            break;
        }
    }
    size_t i = 0;
    if (at != NULL) {
        o->user = a;
        o->user_len = (size_t)(at - a);
        i = o->user_len + 1;
    }
    o->host = a + i;
    size_t end = n;
    if (i < n && a[i] == '[') {
        const char *close = memchr(a + i, ']', n - i);
        size_t after = close ? (size_t)(close - a) + 1 : n;
        o->host_len = after - i;
        if (after < n && a[after] == ':') {
            o->port = a + after + 1;
            o->port_len = n - after - 1;
        }
        return;
    }
    for (size_t j = n; j > i; j--) {
        if (a[j - 1] == ':') {
            end = j - 1;
            o->port = a + j;
            o->port_len = n - j;
            break;
        }
    }
    o->host_len = end - i;
}

/* The effective port: the digits given, or the scheme's default when absent or empty; -1 when
 * the port is not a number up to 65535. */
static long
effective_port(const struct authority *a, bool https)
{
    if (a->port == NULL || a->port_len == 0)
        return https ? 443 : 80;
    long v = 0;
    for (size_t i = 0; i < a->port_len; i++) {
        if (!is_digit((unsigned char)a->port[i]))
            return -1;
        v = v * 10 + (a->port[i] - '0');
        if (v > 65535)
            return -1;
    }
    return v;
}

bool
url_under_base(const char *url, size_t url_len, const char *base, size_t base_len, size_t *rest_off)
{
    struct parts u, b;
    struct authority ua, ba;

    if (!url_is_http(url, url_len) || !url_is_http(base, base_len))
        return false;
    split(url, url_len, &u);
    split(base, base_len, &b);
    if (u.scheme_len != b.scheme_len || !ieq(u.scheme, b.scheme, u.scheme_len))
        return false;
    if (u.auth == NULL || b.auth == NULL)
        return false;
    split_authority(u.auth, u.auth_len, &ua);
    split_authority(b.auth, b.auth_len, &ba);
    if ((ua.user == NULL) != (ba.user == NULL))
        return false;
    if (ua.user != NULL &&
        (ua.user_len != ba.user_len || memcmp(ua.user, ba.user, ua.user_len) != 0))
        return false;
    if (ua.host_len == 0 || ua.host_len != ba.host_len || !ieq(ua.host, ba.host, ua.host_len))
        return false;
    bool https = u.scheme_len == 5;
    long up = effective_port(&ua, https);
    if (up < 0 || up != effective_port(&ba, https))
        return false;

    size_t bp_len = b.path_len;
    if (bp_len > 0 && b.path[bp_len - 1] == '/')
        bp_len--;
    if (u.path_len < bp_len + 1 || memcmp(u.path, b.path, bp_len) != 0 || u.path[bp_len] != '/')
        return false;
    if (rest_off != NULL)
        *rest_off = (size_t)(u.path - url) + bp_len;
    return true;
}
