/* uri: request-target handling for redirects. Decodes the path once, normalises it, rejects
 * what could escape the CDN base, and builds a Location that is a configured base + the
 * canonical path (+ the validated query). Pure; fuzzed (tests/fuzz/fuzz_uri.c). */
#ifndef STEERD_URI_H
#define STEERD_URI_H

#include <stdbool.h>
#include <stddef.h>

#define URI_MAX_TARGET 8192

enum uri_status {
    URI_OK = 0,
    URI_BAD,      /* 400: NUL, CR/LF or other controls, backslash, '..' segment, bad %xx,
                     double encoding, not origin-form */
    URI_TOO_LONG, /* 414: the canonical path or query would pass URI_MAX_TARGET */
};

/* The canonical split of a request target: path and query point into the caller's out buffer
 * (path) and the original target (query). path starts with '/', has no "." or ".." segments, no
 * empty segments, and every byte outside RFC 3986 pchar/'/' percent-encoded (upper-case hex),
 * so equivalent encodings give the same bytes. query excludes the '?', has no fragment, and
 * holds only bytes 0x21..0x7E with valid %xx; it is NULL when the target has none.
 *
 * Path rules, applied to every byte after decoding %xx exactly once:
 * - refused (URI_BAD): bad %xx; NUL and other controls, DEL, '\' (raw or decoded); 0xC0 and
 *   0xC1, which only start overlong UTF-8 forms of ASCII (%C0%AE is '.'); a decoded '%' followed
 *   by two hex digits (double encoding, "%252e"); a ".." segment; a "." or ".." followed by
 *   ";params" (".;x", "..;x": servers that strip path parameters read them as dot segments).
 * - a decoded '/' (%2F) separates segments exactly like a raw one: "/a%2Fb" is "/a/b", and
 *   "/%2F%2Fevil" is "/evil".
 * - empty segments ("//") and "." segments are dropped; "/" alone stays "/"; a path ending in
 *   '/' (or in "/." or "/%2F") keeps one trailing '/'.
 * - written as a literal byte: unreserved (ALPHA DIGIT - . _ ~) whether sent raw or as %xx,
 *   and ! $ & ( ) * + , ; = : @ when sent raw; everything else, including these reserved bytes
 *   when sent as %xx (RFC 3986 6.2.2.2: "%2B" and "+" are not the same to every origin), "'",
 *   '"', space, '<', '>', '%' and every byte >= 0x80, becomes %XX with upper-case hex. So
 *   "/%7e%41" is "/~A", "/a%3bb" is "/a%3Bb", and "/a;b" stays "/a;b".
 * Query rules: bytes 0x21..0x7E only, '%' followed by two hex digits. The query is not
 * decoded: it is passed on as sent, except that uri_build_location percent-encodes the bytes
 * RFC 3986 does not allow in a query ('"' '<' '>' '\' '^' '`' '{' '|' '}'), which browsers
 * encode and some players send raw (CMCD=sid="abc"). */
struct uri_parts {
    char path[URI_MAX_TARGET + 1];
    size_t path_len;
    const char *query;
    size_t query_len;
};

/* Parses target[0..len) (origin-form: "/path[?query][#frag]"). Returns URI_OK and fills out, or
 * an error status. */
enum uri_status uri_parse_target(const char *target, size_t len, struct uri_parts *out);

/* Writes base + path [+ '?' + query] into out (outsz bytes, NUL-terminated). Returns the length,
 * or 0 (and out = "") when it does not fit, the path does not start with '/', or a byte is not
 * safe in a header (defence in depth: <= 0x20, >= 0x7F). An empty query adds no '?'. base is a
 * validated config string without a trailing '/'. */
size_t uri_build_location(const char *base, size_t base_len, const struct uri_parts *u, char *out,
                          size_t outsz);

/* True when every byte of s[0..len) may stand in an HTTP header value we emit (0x21..0x7E and
 * single spaces between other bytes: no leading, trailing or doubled space). */
bool uri_header_safe(const char *s, size_t len);

/* Finds query parameter name in q[0..qlen) ("a=1&b=2"); returns a pointer to its raw (still
 * encoded) value and sets *vlen, or NULL when absent. Pairs are split on '&' only; the first
 * pair whose raw key equals name exactly wins; a bare key ("a&b=1") has an empty value. */
const char *uri_query_param(const char *q, size_t qlen, const char *name, size_t *vlen);

/* Percent-decodes s[0..len) into out (outsz bytes, NUL-terminated); returns the decoded length,
 * or -1 on a bad %xx, a decoded NUL, or no room. '+' is left as is. */
long uri_decode(const char *s, size_t len, char *out, size_t outsz);

#endif
