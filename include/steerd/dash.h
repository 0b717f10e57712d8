/* dash: the DASH MPD rewriter. Takes an origin MPD and writes it back so that the player fetches
 * media from the CDNs chosen for it, with every candidate CDN as a ranked BaseURL so the player
 * can fail over across them. Pure: no I/O, no logging, no clock. libxml2 stays inside dash.c.
 *
 * Parsing is restricted (RELIABILITY S5): the document is parsed from memory with a per-call
 * parser context, never with entity substitution, DTD loading, XInclude or XML_PARSE_HUGE. Any
 * DOCTYPE, entity declaration, reference to an entity other than the five predefined ones, or
 * XInclude element rejects the input (DASH_FORBIDDEN): the parse stops at the DOCTYPE, before
 * any entity is declared. Input size, element depth, attribute/URL length and node count are
 * capped, and so is the work spent checking unusual relative URLs (DASH_LIMIT).
 *
 * Rewrite rules (URLs are resolved with RFC 3986 against the BaseURL chain
 * MPD -> Period -> AdaptationSet -> Representation, rooted at opts.mpd_url; "under the origin"
 * means url_under_base(url, origin_base) and "remainder" is what follows origin_base):
 * - MPD level: the first BaseURL that resolves under the origin (or, when the MPD has no
 *   BaseURL, the directory of mpd_url) is replaced by one BaseURL per CDN, in rank order:
 *   <BaseURL serviceLocation="<id>" dvb:priority="<rank+1>" dvb:weight="1">CDN base +
 *   remainder</BaseURL> (xmlns:dvb="urn:dvb:metadata:MPEGDASHProfile" is declared on the MPD
 *   element when no declaration of that namespace is in scope there). Further MPD-level
 *   BaseURLs under the origin are dropped (they were alternatives of the same content); foreign
 *   absolute ones are kept. The player fetches the MPD from steerd, not from mpd_url, so a
 *   relative MPD-level BaseURL that resolves to a foreign host is written out absolute.
 * - Period, AdaptationSet, Representation: a BaseURL is kept byte for byte when it resolves to
 *   the same place against the rewritten parent as it did against the origin's (plain relative
 *   paths: "video/", "./", "1080p.ts"); otherwise one that resolves under the origin (absolute,
 *   "/path", "//host", ".." climbing out of the CDN prefix) is replaced by one BaseURL per CDN
 *   as at MPD level (the player picks among them by serviceLocation / dvb:priority, so failover
 *   works at every level), and one that resolves elsewhere is written out absolute. A second
 *   BaseURL at the same level that would also need the per-CDN set is dropped.
 * - SegmentTemplate@media/@initialization/@index/@bitstreamSwitching, SegmentURL@media/@index,
 *   Initialization/RepresentationIndex/BitstreamSwitching@sourceURL: absolute URLs under the
 *   origin, and relative ones that would not resolve the same way against the new BaseURLs, are
 *   steered to the first CDN (written absolute); plain relative templates and foreign absolute
 *   URLs are untouched. Decisions take into account every Representation the element applies
 *   to; when one must be rewritten, its target is resolved against the element's own level.
 * - Location and PatchLocation (MPD reload URLs) that resolve under the origin are written as
 *   self_base + remainder (+ nested_query) so reloads come back through steerd; they are kept
 *   as they are when self_base is NULL or they are foreign.
 * - Everything else (ContentProtection and licence URLs, EventStream payloads, UTCTiming,
 *   ContentSteering, xlink:href, comments, whitespace) is left as it was. A ContentSteering
 *   element whose pathways name the origin's serviceLocations no longer matches the new
 *   BaseURLs: callers see it in dash_info.has_content_steering.
 *
 * Thread safety: libxml2 2.9 needs dash_global_init() once before any thread calls
 * dash_rewrite() (main does it at start-up) and dash_global_cleanup() once after the last call.
 * dash_rewrite() itself keeps no global state and may run on several threads at once. */
#ifndef STEERD_DASH_H
#define STEERD_DASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf;

#define DASH_DEFAULT_MAX_INPUT (10u * 1024u * 1024u)  /* bytes of MPD accepted */
#define DASH_DEFAULT_MAX_OUTPUT (32u * 1024u * 1024u) /* bytes of rewritten MPD */
#define DASH_DEFAULT_MAX_DEPTH 64u                    /* element nesting */
#define DASH_DEFAULT_MAX_ATTR_LEN (64u * 1024u)       /* bytes in one attribute or URL text */
#define DASH_DEFAULT_MAX_NODES 1000000u               /* elements + comments + PIs */
#define DASH_MAX_CDNS 32u
#define DASH_DVB_NS "urn:dvb:metadata:MPEGDASHProfile"

/* One candidate CDN: id becomes BaseURL@serviceLocation; base is an absolute http(s) URL
 * without query or fragment ("https://cdn-b.example" or "http://cdn-a.example/edge"; a
 * trailing '/' is ignored). base need not be NUL-terminated. */
struct dash_target {
    const char *id;
    const char *base;
    size_t base_len;
};

/* Borrowed for the duration of the call. */
struct dash_opts {
    const char *mpd_url;     /* absolute URL the origin MPD was fetched from */
    const char *origin_base; /* absolute http(s) URL of the origin, e.g. "http://origin.example" */
    const struct dash_target *cdns; /* ranked candidates, best first; 1..DASH_MAX_CDNS */
    size_t ncdns;
    const char *self_base;    /* steerd's own base URL for MPD reloads, "" for path-absolute
                                 reload URLs ("/remainder"), or NULL */
    const char *nested_query; /* appended to reload URLs ("steerd_sid=s1"), or NULL */
    /* Content Steering (steering mode): when steering_uri is set, a
     * <ContentSteering defaultServiceLocation="<cdns[0].id>" queryBeforeStart="true|false">
     * steering_uri</ContentSteering> is added at MPD level before the first Period. An origin
     * ContentSteering (MPD level or in ServiceDescription) is removed first, or, with
     * steering_keep, kept and nothing added. */
    const char *steering_uri; /* absolute http(s) URL, or NULL */
    bool query_before_start;
    bool steering_keep;
    size_t max_input;    /* 0 = DASH_DEFAULT_MAX_INPUT */
    size_t max_output;   /* 0 = DASH_DEFAULT_MAX_OUTPUT */
    size_t max_depth;    /* 0 = DASH_DEFAULT_MAX_DEPTH */
    size_t max_attr_len; /* 0 = DASH_DEFAULT_MAX_ATTR_LEN */
    size_t max_nodes;    /* 0 = DASH_DEFAULT_MAX_NODES */
};

enum dash_status {
    DASH_OK = 0,
    DASH_BAD_XML,   /* not well-formed, truncated, or an undeclared namespace prefix */
    DASH_FORBIDDEN, /* DOCTYPE, entity declaration or reference, XInclude */
    DASH_NOT_MPD,   /* the root element is not an MPD */
    DASH_TOO_LARGE, /* input above max_input, or output above max_output / out's cap */
    DASH_LIMIT,     /* depth, attribute/URL length, node count or URL-check work above its cap */
    DASH_BAD_OPTS,  /* options unusable: missing/relative URLs, no CDN, bad nested_query */
};

/* Facts about the MPD for caching and metrics. */
struct dash_info {
    bool dynamic;                      /* MPD@type="dynamic" */
    uint32_t minimum_update_period_ms; /* MPD@minimumUpdatePeriod; 0 when absent or invalid */
    bool has_content_steering;         /* a ContentSteering element (MPD or ServiceDescription) */
    size_t nperiods;
    size_t nrewritten; /* edits: BaseURLs replaced/inserted/dropped/pinned, URLs steered */
};

/* Initialises libxml2's parser globals; call once from main before starting threads. */
void dash_global_init(void);
/* Releases libxml2's globals; call once at exit after every dash_rewrite() has returned. */
void dash_global_cleanup(void);

/* Rewrites the MPD in[0..len) following the rules above. out must be initialised by the caller
 * (buf_init); it is reset and, on DASH_OK, holds the whole UTF-8 document with its XML
 * declaration (NUL-terminated); on any other status it is left empty. info may be NULL; it is
 * filled on DASH_OK only. Never aborts on input. */
enum dash_status dash_rewrite(const char *in, size_t len, const struct dash_opts *o,
                              struct buf *out, struct dash_info *info);

/* Short constant name of a status ("ok", "bad-xml", ...), for logs and metrics labels. */
const char *dash_status_str(enum dash_status st);

#endif
