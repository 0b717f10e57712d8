/* Properties every MPD rewritten by dash_rewrite() must have, checked with an independent parse
 * of the input and the output. Shared by tests/unit/test_dash.c and tests/fuzz/fuzz_mpd.c
 * (header-only: every function is static).
 *
 * dash_inv_check(in, out, opts, strict, why) returns 0 when:
 * 1. the output is well-formed XML whose root is MPD;
 * 2. every absolute http(s) URL in an output attribute, and in BaseURL / Location /
 *    PatchLocation text, lies under a CDN base or under self_base, or appears byte for byte as an
 *    attribute value or text in the input; without strict, a URL that is not under origin_base
 *    and whose host is empty or appears in an input string is also accepted (a relative
 *    reference written out absolute);
 * 3. no absolute BaseURL / Location / PatchLocation text or segment URL attribute at its place
 *    in the MPD structure still lies under origin_base (Location only when self_base is set);
 * 4. apart from BaseURL elements, the output has the same elements in the same order with the
 *    same attributes and non-blank text; an attribute value may differ only for the segment URL
 *    attributes (then it lies under the first CDN) and Location / PatchLocation text only when it
 *    lies under self_base;
 * 5. under each MPD / Period / AdaptationSet / Representation, the BaseURLs that carry a CDN id
 *    as serviceLocation are either none or exactly one per CDN, in rank order, each under its
 *    CDN's base, and the other BaseURLs are no more than the input had there.
 * On failure it returns -1 and describes the first violation in why. */
#ifndef STEERD_TESTS_DASH_INVARIANTS_H
#define STEERD_TESTS_DASH_INVARIANTS_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "steerd/dash.h"
#include "steerd/url.h"
#include "steerd/util.h"

#define DASH_INV_PARSE (XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING)

struct dash_inv {
    const struct dash_opts *o;
    bool strict;
    const xmlChar *ns; /* MPD namespace href of the input (NULL: none) */
    char **seen;       /* open-addressing set of input strings */
    struct buf all;    /* every input string, decoded, one per line */
    size_t seen_cap;
    char *why;
    size_t whylen;
};

static int dash_inv_fail(struct dash_inv *v, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
dash_inv_fail(struct dash_inv *v, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(v->why, v->whylen, fmt, ap);
    va_end(ap);
    return -1;
}

static void
dash_inv_trim(const char **s, size_t *n)
{
    while (*n > 0 && strchr(" \t\r\n", (*s)[0]) != NULL) {
        (*s)++;
        (*n)--;
    }
    while (*n > 0 && strchr(" \t\r\n", (*s)[*n - 1]) != NULL)
        (*n)--;
}

static void
dash_inv_seen_add(struct dash_inv *v, const char *s, size_t n)
{
    size_t i = (size_t)util_hash64(s, n, 7) & (v->seen_cap - 1);

    while (v->seen[i] != NULL) {
        if (strlen(v->seen[i]) == n && memcmp(v->seen[i], s, n) == 0)
            return;
        i = (i + 1) & (v->seen_cap - 1);
    }
    v->seen[i] = xstrndup(s, n);
    buf_append(&v->all, s, n);
    buf_append(&v->all, "\n", 1);
}

static bool
dash_inv_seen_has(const struct dash_inv *v, const char *s, size_t n)
{
    size_t i = (size_t)util_hash64(s, n, 7) & (v->seen_cap - 1);

    while (v->seen[i] != NULL) {
        if (strlen(v->seen[i]) == n && memcmp(v->seen[i], s, n) == 0)
            return true;
        i = (i + 1) & (v->seen_cap - 1);
    }
    return false;
}

static size_t
dash_inv_count_strings(xmlNodePtr n)
{
    size_t k = 0;

    for (; n != NULL; n = n->next) {
        k++;
        if (n->type == XML_ELEMENT_NODE) {
            for (xmlAttrPtr a = n->properties; a != NULL; a = a->next)
                k++;
            k += dash_inv_count_strings(n->children);
        }
    }
    return k;
}

static void
dash_inv_collect(struct dash_inv *v, xmlNodePtr n)
{
    for (; n != NULL; n = n->next) {
        xmlChar *c = NULL;
        if (n->type == XML_ELEMENT_NODE) {
            for (xmlAttrPtr a = n->properties; a != NULL; a = a->next) {
                xmlChar *av = xmlNodeGetContent((xmlNodePtr)a);
                const char *s = av != NULL ? (const char *)av : "";
                size_t len = strlen(s);
                dash_inv_trim(&s, &len);
                dash_inv_seen_add(v, s, len);
                xmlFree(av);
            }
            c = xmlNodeGetContent(n);
            dash_inv_collect(v, n->children);
        } else if (n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE) {
            c = xmlNodeGetContent(n);
        }
        if (c != NULL) {
            const char *s = (const char *)c;
            size_t len = strlen(s);
            dash_inv_trim(&s, &len);
            dash_inv_seen_add(v, s, len);
            xmlFree(c);
        }
    }
}

static bool
dash_inv_under(const char *u, size_t n, const char *base, size_t blen)
{
    return url_under_base(u, n, base, blen, NULL);
}

static bool
dash_inv_under_cdn(const struct dash_inv *v, const char *u, size_t n, size_t *which)
{
    for (size_t i = 0; i < v->o->ncdns; i++) {
        if (dash_inv_under(u, n, v->o->cdns[i].base, v->o->cdns[i].base_len)) {
            if (which != NULL)
                *which = i;
            return true;
        }
    }
    return false;
}

/* Is u[0..n) (absolute http(s)) under origin_base once its dot segments are removed? */
static bool
dash_inv_under_origin(const struct dash_inv *v, const char *u, size_t n)
{
    struct buf b;
    bool r = false;

    buf_init(&b, 0);
    if (url_resolve(u, n, u, n, &b) == 0)
        r = dash_inv_under(b.data, b.len, v->o->origin_base, strlen(v->o->origin_base));
    buf_free(&b);
    return r;
}

/* Property 2 for one string. */
static int
dash_inv_url(struct dash_inv *v, const char *what, const char *s0)
{
    const char *s = s0;
    size_t n = strlen(s);

    dash_inv_trim(&s, &n);
    if (!url_is_http(s, n))
        return 0;
    if (dash_inv_under_cdn(v, s, n, NULL))
        return 0;
    if (v->o->self_base != NULL && dash_inv_under(s, n, v->o->self_base, strlen(v->o->self_base)))
        return 0;
    if (dash_inv_seen_has(v, s, n))
        return 0;
    if (!v->strict && !dash_inv_under_origin(v, s, n)) {
        size_t sl = url_scheme_len(s, n) + 3, e = sl;
        while (e < n && strchr("/?#", s[e]) == NULL)
            e++;
        if (e == sl || memmem(v->all.data, v->all.len, s + sl, e - sl) != NULL)
            return 0; /* no host, or one the input named */
    }
    return dash_inv_fail(v, "%s: URL %.200s is neither steered nor from the input", what, s0);
}

static bool
dash_inv_is(const struct dash_inv *v, xmlNodePtr n, const char *name)
{
    if (n->type != XML_ELEMENT_NODE || !xmlStrEqual(n->name, BAD_CAST name))
        return false;
    if (n->ns == NULL)
        return v->ns == NULL;
    return v->ns != NULL && xmlStrEqual(n->ns->href, v->ns);
}

static bool
dash_inv_url_attr(const char *name)
{
    static const char *const names[] = {"media", "initialization", "index", "sourceURL",
                                        "bitstreamSwitching"};
    for (size_t i = 0; i < UTIL_ARRAY_LEN(names); i++) {
        if (strcmp(name, names[i]) == 0)
            return true;
    }
    return false;
}

/* Property 2 everywhere (attributes of every element; BaseURL/Location/PatchLocation text). */
static int
dash_inv_urls(struct dash_inv *v, xmlNodePtr n)
{
    for (; n != NULL; n = n->next) {
        if (n->type != XML_ELEMENT_NODE)
            continue;
        for (xmlAttrPtr a = n->properties; a != NULL; a = a->next) {
            xmlChar *av = xmlNodeGetContent((xmlNodePtr)a);
            int rc = dash_inv_url(v, (const char *)a->name, av != NULL ? (const char *)av : "");
            xmlFree(av);
            if (rc != 0)
                return rc;
        }
        if (dash_inv_is(v, n, "BaseURL") || dash_inv_is(v, n, "Location") ||
            dash_inv_is(v, n, "PatchLocation")) {
            xmlChar *c = xmlNodeGetContent(n);
            int rc = dash_inv_url(v, (const char *)n->name, c != NULL ? (const char *)c : "");
            xmlFree(c);
            if (rc != 0)
                return rc;
        }
        if (dash_inv_urls(v, n->children) != 0)
            return -1;
    }
    return 0;
}

/* Property 3 for one string at a steered place. */
static int
dash_inv_not_origin(struct dash_inv *v, const char *what, const xmlChar *val)
{
    const char *s = val != NULL ? (const char *)val : "";
    size_t n = strlen(s);

    dash_inv_trim(&s, &n);
    if (url_is_http(s, n) && dash_inv_under_origin(v, s, n))
        return dash_inv_fail(v, "%s still on the origin: %.200s", what, s);
    return 0;
}

static int
dash_inv_seg_attr(struct dash_inv *v, xmlNodePtr el, const char *name)
{
    xmlChar *av = xmlGetNoNsProp(el, BAD_CAST name);
    int rc = dash_inv_not_origin(v, name, av);

    xmlFree(av);
    return rc;
}

/* Property 3 on a SegmentBase / SegmentList / SegmentTemplate and the URLs inside it. */
static int
dash_inv_seg_info(struct dash_inv *v, xmlNodePtr c)
{
    if (dash_inv_is(v, c, "SegmentTemplate") &&
        (dash_inv_seg_attr(v, c, "media") != 0 || dash_inv_seg_attr(v, c, "initialization") != 0 ||
         dash_inv_seg_attr(v, c, "index") != 0 ||
         dash_inv_seg_attr(v, c, "bitstreamSwitching") != 0))
        return -1;
    for (xmlNodePtr e = c->children; e != NULL; e = e->next) {
        if ((dash_inv_is(v, e, "Initialization") || dash_inv_is(v, e, "RepresentationIndex") ||
             dash_inv_is(v, e, "BitstreamSwitching")) &&
            dash_inv_seg_attr(v, e, "sourceURL") != 0)
            return -1;
        if (dash_inv_is(v, e, "SegmentURL") &&
            (dash_inv_seg_attr(v, e, "media") != 0 || dash_inv_seg_attr(v, e, "index") != 0))
            return -1;
    }
    return 0;
}

/* Property 3 and 5 on the children of one structural element (MPD, Period, AS, Rep). */
static int
dash_inv_level(struct dash_inv *v, xmlNodePtr x, xmlNodePtr in_x, int depth)
{
    size_t in_bases = 0, other = 0, k = 0;

    for (xmlNodePtr c = in_x != NULL ? in_x->children : NULL; c != NULL; c = c->next)
        in_bases += dash_inv_is(v, c, "BaseURL");
    for (xmlNodePtr c = x->children; c != NULL; c = c->next) {
        if (dash_inv_is(v, c, "BaseURL")) {
            xmlChar *sl = xmlGetNoNsProp(c, BAD_CAST "serviceLocation");
            xmlChar *t = xmlNodeGetContent(c);
            size_t i = k;
            const char *s = t != NULL ? (const char *)t : "";
            size_t n = strlen(s);
            int rc = 0;
            dash_inv_trim(&s, &n);
            if (sl != NULL && k < v->o->ncdns && xmlStrEqual(sl, BAD_CAST v->o->cdns[k].id) &&
                dash_inv_under_cdn(v, s, n, &i) && i == k) {
                k++;
            } else {
                other++;
                rc = dash_inv_not_origin(v, "BaseURL", t);
            }
            xmlFree(sl);
            xmlFree(t);
            if (rc != 0)
                return rc;
        } else if ((dash_inv_is(v, c, "Location") || dash_inv_is(v, c, "PatchLocation")) &&
                   depth == 1 && v->o->self_base != NULL) {
            xmlChar *t = xmlNodeGetContent(c);
            int rc = dash_inv_not_origin(v, "Location", t);
            xmlFree(t);
            if (rc != 0)
                return rc;
        } else if (depth > 1 &&
                   (dash_inv_is(v, c, "SegmentTemplate") || dash_inv_is(v, c, "SegmentList") ||
                    dash_inv_is(v, c, "SegmentBase"))) {
            if (dash_inv_seg_info(v, c) != 0)
                return -1;
        }
    }
    if (v->strict && k != 0 && k != v->o->ncdns)
        return dash_inv_fail(v, "%s has %zu of %zu CDN BaseURLs", (const char *)x->name, k,
                             v->o->ncdns);
    if (other > in_bases)
        return dash_inv_fail(v, "%s has %zu other BaseURLs, input had %zu", (const char *)x->name,
                             other, in_bases);
    return 0;
}

static xmlNodePtr
dash_inv_next_el(const struct dash_inv *v, xmlNodePtr n)
{
    while (n != NULL && (n->type != XML_ELEMENT_NODE || dash_inv_is(v, n, "BaseURL")))
        n = n->next;
    return n;
}

/* The non-blank text directly under n, white space removed (removing a BaseURL may join two
 * text nodes, so nodes are not compared one by one). */
static char *
dash_inv_text(xmlNodePtr n)
{
    struct buf b;

    buf_init(&b, 0);
    buf_puts(&b, "");
    for (xmlNodePtr c = n->children; c != NULL; c = c->next) {
        if ((c->type != XML_TEXT_NODE && c->type != XML_CDATA_SECTION_NODE) || c->content == NULL)
            continue;
        for (const xmlChar *p = c->content; *p != '\0'; p++) {
            if (strchr(" \t\r\n", *p) == NULL)
                buf_append(&b, p, 1);
        }
    }
    return b.data;
}

/* Property 4 on one pair of elements and, recursively, their children. */
static int
dash_inv_same(struct dash_inv *v, xmlNodePtr a, xmlNodePtr b, int depth, bool pstruct)
{
    xmlNodePtr ca, cb;
    bool reload = dash_inv_is(v, a, "Location") || dash_inv_is(v, a, "PatchLocation");
    bool structural = pstruct && ((depth == 1 && dash_inv_is(v, a, "MPD")) ||
                                  (depth == 2 && dash_inv_is(v, a, "Period")) ||
                                  (depth == 3 && dash_inv_is(v, a, "AdaptationSet")) ||
                                  (depth == 4 && dash_inv_is(v, a, "Representation")));
    char *ta, *tb;
    size_t na = 0, nb = 0;

    if (!xmlStrEqual(a->name, b->name) || (a->ns == NULL) != (b->ns == NULL) ||
        (a->ns != NULL && !xmlStrEqual(a->ns->href, b->ns->href)))
        return dash_inv_fail(v, "element %s became %s", (const char *)a->name,
                             (const char *)b->name);
    for (xmlAttrPtr x = a->properties; x != NULL; x = x->next)
        na++;
    for (xmlAttrPtr x = b->properties; x != NULL; x = x->next)
        nb++;
    if (na != nb)
        return dash_inv_fail(v, "%s: %zu attributes became %zu", (const char *)a->name, na, nb);
    for (xmlAttrPtr x = a->properties; x != NULL; x = x->next) {
        const xmlChar *href = x->ns != NULL ? x->ns->href : NULL;
        xmlChar *va = xmlNodeGetContent((xmlNodePtr)x);
        xmlChar *vb = href != NULL ? xmlGetNsProp(b, x->name, href) : xmlGetNoNsProp(b, x->name);
        int rc = 0;
        if (vb == NULL) {
            rc = dash_inv_fail(v, "%s@%s dropped", (const char *)a->name, (const char *)x->name);
        } else if (!xmlStrEqual(va, vb)) {
            const char *s = (const char *)vb;
            size_t n = strlen(s);
            bool steered = dash_inv_under(s, n, v->o->cdns[0].base, v->o->cdns[0].base_len);
            bool pinned = !v->strict && url_is_http(s, n) && !dash_inv_under_origin(v, s, n);
            if (href != NULL || !dash_inv_url_attr((const char *)x->name) || !(steered || pinned))
                rc = dash_inv_fail(v, "%s@%s changed: %.200s -> %.200s", (const char *)a->name,
                                   (const char *)x->name, (const char *)va, s);
        }
        xmlFree(va);
        xmlFree(vb);
        if (rc != 0)
            return rc;
    }
    if (reload) {
        xmlChar *ra = xmlNodeGetContent(a), *rb = xmlNodeGetContent(b);
        int rc = 0;
        if (!xmlStrEqual(ra, rb) &&
            (v->o->self_base == NULL || !dash_inv_under((const char *)rb, strlen((const char *)rb),
                                                        v->o->self_base, strlen(v->o->self_base))))
            rc = dash_inv_fail(v, "%s text changed: %.200s", (const char *)a->name,
                               (const char *)rb);
        xmlFree(ra);
        xmlFree(rb);
        return rc;
    }
    if (structural && dash_inv_level(v, b, a, depth) != 0)
        return -1;
    ta = dash_inv_text(a);
    tb = dash_inv_text(b);
    if (strcmp(ta, tb) != 0) {
        free(ta);
        free(tb);
        return dash_inv_fail(v, "text under %s changed", (const char *)a->name);
    }
    free(ta);
    free(tb);
    ca = dash_inv_next_el(v, a->children);
    cb = dash_inv_next_el(v, b->children);
    while (ca != NULL || cb != NULL) {
        if (ca == NULL || cb == NULL)
            return dash_inv_fail(v, "children of %s differ in number", (const char *)a->name);
        if (dash_inv_same(v, ca, cb, depth + 1, structural) != 0)
            return -1;
        ca = dash_inv_next_el(v, ca->next);
        cb = dash_inv_next_el(v, cb->next);
    }
    return 0;
}

static int
dash_inv_check(const char *in, size_t in_len, const char *out, size_t out_len,
               const struct dash_opts *o, bool strict, char *why, size_t whylen)
{
    struct dash_inv v;
    xmlDocPtr din = NULL, dout = NULL;
    xmlNodePtr rin, rout;
    int rc = -1;

    memset(&v, 0, sizeof(v));
    v.o = o;
    v.strict = strict;
    v.why = why;
    v.whylen = whylen;
    why[0] = '\0';
    din = xmlReadMemory(in, (int)in_len, NULL, NULL, DASH_INV_PARSE);
    dout = xmlReadMemory(out, (int)out_len, NULL, NULL, DASH_INV_PARSE);
    if (din == NULL) {
        dash_inv_fail(&v, "the input does not parse on its own");
        goto done;
    }
    if (dout == NULL) {
        dash_inv_fail(&v, "the output does not parse");
        goto done;
    }
    rin = xmlDocGetRootElement(din);
    rout = xmlDocGetRootElement(dout);
    if (rout == NULL || !xmlStrEqual(rout->name, BAD_CAST "MPD")) {
        dash_inv_fail(&v, "the output root is not MPD");
        goto done;
    }
    v.ns = rin->ns != NULL ? rin->ns->href : NULL;
    v.seen_cap = 64;
    while (v.seen_cap < 2 * dash_inv_count_strings(din->children) + 2)
        v.seen_cap *= 2;
    v.seen = xcalloc(v.seen_cap, sizeof(*v.seen));
    buf_init(&v.all, 0);
    dash_inv_collect(&v, din->children);
    if (dash_inv_urls(&v, rout) != 0 || dash_inv_same(&v, rin, rout, 1, true) != 0)
        goto done;
    rc = 0;
done:
    for (size_t i = 0; i < v.seen_cap; i++)
        free(v.seen[i]);
    free(v.seen);
    buf_free(&v.all);
    xmlFreeDoc(din);
    xmlFreeDoc(dout);
    return rc;
}

#endif
