/* hls: the pure HLS playlist rewriter. Takes the origin's playlist text and writes it back so
 * that the player fetches media from the CDN(s) chosen for it. No I/O, no logging, no clock; the
 * only memory it grows is the caller's output buffer. One pass over the input (plus a short
 * look-ahead pass over multivariant playlists when redundant copies are on).
 *
 * What is rewritten: URI lines, and the quoted value of every attribute named exactly URI on
 * any tag (EXT-X-KEY, -SESSION-KEY, -MAP, -MEDIA, -I-FRAME-STREAM-INF, -PART, -PRELOAD-HINT,
 * -RENDITION-REPORT, -SESSION-DATA and unknown tags alike). Each is resolved against
 * playlist_url (RFC 3986 5.2, see url.h); when the result lies under origin_base, its remainder
 * (path, query, fragment) is appended to a target base:
 * - segment-like objects go to the CDN: media segments, EXT-X-MAP, EXT-X-PART,
 *   EXT-X-PRELOAD-HINT, EXT-X-SESSION-DATA, unknown tags, and keys (EXT-X-KEY,
 *   EXT-X-SESSION-KEY): key servers usually live on their own host and are then left alone, but
 *   a key under the origin is static content and is fetched from the CDN like a segment;
 * - nested playlists (the URI line after EXT-X-STREAM-INF, EXT-X-MEDIA, EXT-X-I-FRAME-STREAM-INF,
 *   EXT-X-RENDITION-REPORT) go back through steerd: self_base + remainder, plus nested_query as
 *   an extra query parameter (before any fragment); with self_base NULL they go to the CDN.
 * What is left byte for byte: every other byte of the playlist (tags, attribute order and
 * spelling, comments, blank lines, CRLF or LF per line, a missing final newline, a BOM, UTF-8);
 * URIs with a scheme other than http/https (data:, skd:, ...); absolute or "//host" URIs that
 * are not under origin_base; URIs holding an EXT-X-DEFINE reference "{$" (they can only be
 * resolved by the player, after substitution); unquoted URI=values (not valid HLS); attributes
 * other than URI that hold URLs (EXT-X-CONTENT-STEERING SERVER-URI, EXT-X-DATERANGE X-ASSET-URI
 * and X-ASSET-LIST), which the player resolves against the URL it fetched the rewritten playlist
 * from. A relative URI whose resolution falls outside origin_base (playlist_url outside it, or
 * ".." or "/" leaving origin_base's path) is written as the absolute resolved URL, so the
 * player still finds it.
 *
 * Injection safety: no byte outside the input playlist creates a line or a tag. The config
 * strings (bases, nested_query, ids, cdn_param) are checked: a control byte, space, '"' or '#'
 * (and '?' in a base) gives HLS_BAD; playlist_url with CR or LF gives HLS_BAD. So a rewritten
 * URI never holds CR or LF; a '"' that playlist_url brings into a quoted attribute is written
 * as %22.
 *
 * Redundant streams (redundant true, ncdns > 1, multivariant playlist). Player behaviour checked
 * in hls.js source (src/controller/level-controller.ts, content-steering-controller.ts): in
 * current hls.js (1.5 on), variants with the same BANDWIDTH, RESOLUTION, FRAME-RATE, CODECS,
 * VIDEO-RANGE and HDCP-LEVEL, no PATHWAY-ID and different URIs become separate levels in
 * generated pathways "." (first seen), "..", "..." (in playlist order); the level list is
 * filtered to pathway ".", and a fragment or playlist error that penalises a host moves playback to
 * the next pathway that is not penalised (penalty 300 s). An audio/subtitle error is mapped to its
 * pathway through the variant that references the rendition's GROUP-ID, so each copy needs its own
 * groups. Older hls.js (1.4) merges the same variants into one level with fallback URLs and
 * one audio group per URL, which this layout also serves. So steerd writes, in rank order:
 * - each EXT-X-STREAM-INF + URI line as in the input (rewritten for cdns[0]), followed right
 *   after its URI line by one copy of the pair per further CDN (cdns[1], cdns[2], ...);
 * - each EXT-X-I-FRAME-STREAM-INF line followed by its copies;
 * - each EXT-X-MEDIA of TYPE AUDIO, SUBTITLES or VIDEO whose group has a rendition with a URI
 *   followed by its copies, with GROUP-ID "<id>-<cdn id>" (URI-less members of such a group are
 *   copied too so every copy group is complete); the copied STREAM-INF / I-FRAME-STREAM-INF
 *   lines name the copy groups in AUDIO, SUBTITLES and VIDEO; CLOSED-CAPTIONS is unchanged.
 * A variant or I-frame variant whose URI is left as it is (foreign host, data:, "{$") gets no
 * copies: they would repeat it. A copy group name can collide with a group of the same name
 * already in the input ("aud-beta"); playlists are not checked for that.
 * So the output is the input lines in order (URIs rewritten) plus these copies. A copy for
 * cdns[k] sends segment-like URIs to cdns[k].base and nested playlists either to cdns[k].base
 * (self_base NULL) or to self_base with "<cdn_param>=<cdns[k].id>" added for k >= 1 (so the
 * player's backup pathway fetches media playlists pinned to that CDN; the cdns[0] copy carries
 * no pin, so steerd keeps choosing for it on every reload). No copies are made when a variant
 * has PATHWAY-ID or the playlist has EXT-X-CONTENT-STEERING (content steering owns failover
 * there), nor for media playlists, which are always rewritten line for line. */
#ifndef STEERD_HLS_H
#define STEERD_HLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf;

#define HLS_MAX_LINE (64 * 1024)   /* longer lines give HLS_BAD */
#define HLS_CDN_PARAM "steerd_cdn" /* default pin parameter name (hls_opts.cdn_param) */

/* One candidate CDN. All strings are borrowed for the duration of the call. */
struct hls_target {
    const char *id;   /* non-empty, only [A-Za-z0-9._~-] (used in GROUP-IDs and queries) */
    const char *base; /* absolute http(s) URL; a trailing '/' is ignored */
    size_t base_len;  /* length of base, or 0 to use strlen(base) */
};

/* Rewrite options; every string is borrowed for the duration of the call. */
struct hls_opts {
    const char *playlist_url;      /* absolute http(s) URL the playlist was fetched from */
    const char *origin_base;       /* origin base URL (scheme://host[:port][/path]) */
    const struct hls_target *cdns; /* ranked candidates, cdns[0] is the choice */
    size_t ncdns;                  /* >= 1 */
    const char *self_base;         /* steerd's absolute base for nested playlists, "" for
                                      path-absolute references ("/remainder"), or NULL */
    const char *nested_query;      /* "k=v[&k=v]" added to nested playlist URIs, or NULL */
    const char *cdn_param;         /* pin parameter name for redundant copies, NULL = default */
    bool redundant;                /* list each variant/rendition once per CDN (multivariant) */
    /* Content Steering (steering mode), multivariant playlists only: when steering_uri is set,
     * #EXT-X-CONTENT-STEERING:SERVER-URI="<steering_uri>",PATHWAY-ID="<cdns[0].id>" is written
     * after #EXTM3U, and every EXT-X-STREAM-INF (+ URI line), EXT-X-I-FRAME-STREAM-INF and
     * EXT-X-MEDIA of a group with a URI is written once per CDN in rank order: variants get
     * PATHWAY-ID="<cdn id>" (replacing the origin's) and STABLE-VARIANT-ID ("v<n>", I-frame
     * "i<n>", when the origin has none), renditions GROUP-ID "<group>-<cdn id>" (and the
     * variants' AUDIO/SUBTITLES/VIDEO follow) and STABLE-RENDITION-ID ("r<n>" when absent);
     * nested playlist URIs carry the pin "<cdn_param>=<cdn id>" for every CDN. An origin
     * EXT-X-CONTENT-STEERING is dropped and only the variants of the origin's first pathway
     * are kept (then expressed per CDN); with steering_keep such a playlist is rewritten as
     * without steering_uri. redundant is ignored when steering applies. */
    const char *steering_uri; /* absolute http(s) URL without '"', controls or spaces */
    bool steering_keep;
    size_t max_output; /* cap on output bytes; 0 = only out->max */
};

enum hls_status {
    HLS_OK = 0,
    HLS_NOT_PLAYLIST, /* the first line (after an optional UTF-8 BOM) is not #EXTM3U */
    HLS_BAD,          /* NUL byte, CR not followed by LF, line over HLS_MAX_LINE, bad options */
    HLS_TOO_LARGE,    /* the output would pass max_output or out->max */
};

/* What a cache needs to know about a playlist; filled on HLS_OK only. */
struct hls_info {
    bool multivariant;          /* STREAM-INF, I-FRAME-STREAM-INF, MEDIA, SESSION-* seen */
    bool endlist;               /* EXT-X-ENDLIST seen (VOD / ended live) */
    bool has_steering_tag;      /* EXT-X-CONTENT-STEERING seen */
    uint32_t target_duration_s; /* EXT-X-TARGETDURATION, 0 when absent or unreadable */
    uint32_t part_target_ms;    /* EXT-X-PART-INF PART-TARGET in ms (rounded), 0 when absent */
};

/* Rewrites in[0..len) into out (reset first; the caller owns out and frees it with buf_free).
 * Returns HLS_OK and fills *info (may be NULL), or an error status with out reset to empty:
 * nothing partial is ever left in out. out->max should leave room for one resolved URL above
 * max_output, as a URL being rewritten is briefly held in out in its resolved form. */
enum hls_status hls_rewrite(const char *in, size_t len, const struct hls_opts *o, struct buf *out,
                            struct hls_info *info);

/* A static name for a status ("ok", "not a playlist", ...), for logs and metrics. */
const char *hls_status_str(enum hls_status st);

#endif
