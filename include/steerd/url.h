/* url: RFC 3986 reference resolution and "is this URL under that base" checks, shared by the
 * HLS and DASH rewriters. Pure: no I/O, no allocation beyond the caller's struct buf.
 *
 * Parsing follows RFC 3986 Appendix B (scheme, authority, path, query, fragment split on
 * ':' '/' '?' '#'); bytes are never decoded, re-encoded or validated beyond that split, so a
 * resolved URL keeps the reference's own spelling. A scheme is ALPHA *(ALPHA / DIGIT / "+" /
 * "-" / ".") followed by ':' before any '/', '?' or '#'; anything else is a relative
 * reference. Resolution is the strict algorithm of RFC 3986 section 5.2 ("http:g" is an absolute
 * URI, not a reference relative to an http base). */
#ifndef STEERD_URL_H
#define STEERD_URL_H

#include <stdbool.h>
#include <stddef.h>

struct buf;

/* Resolves ref[0..ref_len) against the absolute URI base[0..base_len) (RFC 3986 5.2.2,
 * including remove_dot_segments and the base-query rule for an empty reference path) and
 * APPENDS the target URI to out (what out held before is kept). Returns 0, or -1 when base has
 * no scheme or out's cap was hit; on -1 out->len is back to its value at entry. */
int url_resolve(const char *base, size_t base_len, const char *ref, size_t ref_len,
                struct buf *out);

/* True when url[0..url_len) lies under base[0..base_len): same scheme and host (both compared
 * ASCII case-insensitively), same userinfo (bytes), same port (an absent port equals 80 for http
 * and 443 for https), and a path that starts with base's path (without a trailing '/') followed
 * by '/'. Only http and https URLs can match. When true and rest_off is not NULL, *rest_off is
 * the offset in url of that '/', so url + *rest_off is the remainder (path, query, fragment).
 * Neither string is resolved first: pass absolute URLs (output of url_resolve). */
bool url_under_base(const char *url, size_t url_len, const char *base, size_t base_len,
                    size_t *rest_off);

/* Length of ref's scheme (the bytes before ':'), or 0 when ref[0..len) is a relative
 * reference. */
size_t url_scheme_len(const char *ref, size_t len);

/* True when ref[0..len) is an absolute http: or https: URI (scheme compared
 * case-insensitively). */
bool url_is_http(const char *ref, size_t len);

#endif
