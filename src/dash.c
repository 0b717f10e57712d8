#include "steerd/dash.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlsave.h>
#include <libxml/xmlerror.h>

#include "steerd/url.h"
#include "steerd/util.h"

/* NOERROR/NOWARNING plus a silent structured handler keep libxml2 from printing anything. Never
 * add NOENT, DTDLOAD, DTDVALID, XINCLUDE or HUGE (RELIABILITY section 2, S5). */
#define PARSE_OPTIONS (XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING)

#define XINCLUDE_NS_2001 "http://www.w3.org/2001/XInclude"
#define XINCLUDE_NS_2003 "http://www.w3.org/2003/XInclude"
#define MPD_NS_PREFIX "urn:mpeg:dash:schema:mpd:"

/* URL resolutions allowed on the slow path (relative URLs that are not plain paths, checked
 * against every base they apply to); beyond it the MPD is refused with DASH_LIMIT. */
#define SLOW_BUDGET 1000000u
/* Bytes counted for each node added to the tree, on top of its text, against max_output. */
#define NODE_COST 128u
/* "dvb", "dvb1" .. "dvb63": prefixes tried for the DVB namespace. */
#define DVB_PREFIXES 64u

/* ---- parsing ---------------------------------------------------------------------------- */

struct limits {
    size_t max_depth;
    size_t max_attr;
    size_t max_nodes;
};

/* Per-parse state reached from the SAX hooks through ctxt->_private. */
struct guard {
    startElementNsSAX2Func start;
    endElementNsSAX2Func end;
    commentSAXFunc comment;
    processingInstructionSAXFunc pi;
    const struct limits *lim;
    size_t depth;
    size_t nodes;
    enum dash_status st;
};

static void
guard_stop(xmlParserCtxtPtr ctxt, enum dash_status st)
{
    struct guard *g = ctxt->_private;

    if (g->st == DASH_OK)
        g->st = st;
    xmlStopParser(ctxt);
}

static bool
is_xinclude(const xmlChar *href)
{
    return href != NULL && (xmlStrEqual(href, BAD_CAST XINCLUDE_NS_2001) ||
                            xmlStrEqual(href, BAD_CAST XINCLUDE_NS_2003));
}

static void
on_start(void *ctx, const xmlChar *localname, const xmlChar *prefix, const xmlChar *uri,
         int nb_namespaces, const xmlChar **namespaces, int nb_attributes, int nb_defaulted,
         const xmlChar **attributes)
{
    xmlParserCtxtPtr ctxt = ctx;
    struct guard *g = ctxt->_private;

    if (is_xinclude(uri)) {
        guard_stop(ctxt, DASH_FORBIDDEN);
        return;
    }
    if (++g->depth > g->lim->max_depth || ++g->nodes > g->lim->max_nodes) {
        guard_stop(ctxt, DASH_LIMIT);
        return;
    }
    for (int i = 0; i < nb_attributes; i++) {
        const xmlChar *v = attributes[i * 5 + 3], *e = attributes[i * 5 + 4];
        if ((size_t)(e - v) > g->lim->max_attr) {
            guard_stop(ctxt, DASH_LIMIT);
            return;
        }
    }
    g->start(ctx, localname, prefix, uri, nb_namespaces, namespaces, nb_attributes, nb_defaulted,
             attributes);
}

static void
on_end(void *ctx, const xmlChar *localname, const xmlChar *prefix, const xmlChar *uri)
{
    xmlParserCtxtPtr ctxt = ctx;
    struct guard *g = ctxt->_private;

    if (g->depth > 0)
        g->depth--;
    g->end(ctx, localname, prefix, uri);
}

static void
on_comment(void *ctx, const xmlChar *value)
{
    xmlParserCtxtPtr ctxt = ctx;
    struct guard *g = ctxt->_private;

    if (++g->nodes > g->lim->max_nodes) {
        guard_stop(ctxt, DASH_LIMIT);
        return;
    }
    g->comment(ctx, value);
}

static void
on_pi(void *ctx, const xmlChar *target, const xmlChar *data)
{
    xmlParserCtxtPtr ctxt = ctx;
    struct guard *g = ctxt->_private;

    if (++g->nodes > g->lim->max_nodes) {
        guard_stop(ctxt, DASH_LIMIT);
        return;
    }
    g->pi(ctx, target, data);
}

/* A DOCTYPE stops the parse before its internal subset is read: no entity is ever declared. */
static void
on_doctype(void *ctx, const xmlChar *name, const xmlChar *external_id, const xmlChar *system_id)
{
    (void)name;
    (void)external_id;
    (void)system_id;
    guard_stop(ctx, DASH_FORBIDDEN);
}

static void
on_entity_decl(void *ctx, const xmlChar *name, int type, const xmlChar *public_id,
               const xmlChar *system_id, xmlChar *content)
{
    (void)name;
    (void)type;
    (void)public_id;
    (void)system_id;
    (void)content;
    guard_stop(ctx, DASH_FORBIDDEN);
}

/* Asked for every reference to an entity that is not one of the five predefined ones. */
static xmlEntityPtr
on_get_entity(void *ctx, const xmlChar *name)
{
    (void)name;
    guard_stop(ctx, DASH_FORBIDDEN);
    return NULL;
}

static void
on_reference(void *ctx, const xmlChar *name)
{
    (void)name;
    guard_stop(ctx, DASH_FORBIDDEN);
}

static void
on_error(void *data, xmlErrorPtr err)
{
    (void)data;
    (void)err;
}

static bool
prefix_is(const char *p, const char *end, const char *lit)
{
    size_t n = strlen(lit);
    return (size_t)(end - p) >= n && strncasecmp(p, lit, n) == 0;
}

/* Cheap first line of defence: walks the prolog (BOM, XML declaration, PIs, comments, white
 * space) and reports a DOCTYPE before libxml2 sees the bytes. The SAX hooks and the tree check
 * stay authoritative (they also cover encodings this byte scan cannot read). */
static bool
prolog_has_doctype(const char *in, size_t len)
{
    const char *p = in, *end = in + len;

    if (len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
        p += 3;
    while (p < end) {
        if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') {
            p++;
        } else if (prefix_is(p, end, "<?")) {
            const char *q = memmem(p + 2, (size_t)(end - p - 2), "?>", 2);
            if (q == NULL)
                return false;
            p = q + 2;
        } else if (prefix_is(p, end, "<!--")) {
            const char *q = memmem(p + 4, (size_t)(end - p - 4), "-->", 3);
            if (q == NULL)
                return false;
            p = q + 3;
        } else {
            return prefix_is(p, end, "<!DOCTYPE");
        }
    }
    return false;
}

static enum dash_status
parse(const char *in, size_t len, const struct limits *lim, xmlDocPtr *docp)
{
    struct guard g;
    xmlParserCtxtPtr ctxt;
    xmlDocPtr doc;
    enum dash_status st;

    *docp = NULL;
    if (prolog_has_doctype(in, len))
        return DASH_FORBIDDEN;
    ctxt = xmlNewParserCtxt();
    if (ctxt == NULL) {
        fprintf(stderr, "steerd: out of memory creating an XML parser\n");
        abort();
    }
    memset(&g, 0, sizeof(g));
    g.start = ctxt->sax->startElementNs;
    g.end = ctxt->sax->endElementNs;
    g.comment = ctxt->sax->comment;
    g.pi = ctxt->sax->processingInstruction;
    g.lim = lim;
    g.st = DASH_OK;
    ctxt->_private = &g;
    ctxt->sax->startElementNs = on_start;
    ctxt->sax->endElementNs = on_end;
    ctxt->sax->comment = on_comment;
    ctxt->sax->processingInstruction = on_pi;
    ctxt->sax->internalSubset = on_doctype;
    ctxt->sax->externalSubset = on_doctype;
    ctxt->sax->entityDecl = on_entity_decl;
    ctxt->sax->getEntity = on_get_entity;
    ctxt->sax->getParameterEntity = on_get_entity;
    ctxt->sax->reference = on_reference;
    ctxt->sax->serror = on_error;

    doc = xmlCtxtReadMemory(ctxt, in, (int)len, NULL, NULL, PARSE_OPTIONS);
    st = g.st;
    /* An undeclared prefix leaves "p:name" as a plain name: refuse it, as players' parsers do. */
    if (st == DASH_OK && (doc == NULL || !ctxt->wellFormed || !ctxt->nsWellFormed))
        st = DASH_BAD_XML;
    xmlFreeParserCtxt(ctxt);
    if (st != DASH_OK) {
        xmlFreeDoc(doc);
        return st;
    }
    *docp = doc;
    return DASH_OK;
}

/* 0 for "dvb", k for "dvb1".."dvb63", -1 for any other prefix. */
static int
dvb_prefix_index(const char *p)
{
    unsigned v;

    if (p == NULL || strncmp(p, "dvb", 3) != 0)
        return -1;
    if (p[3] == '\0')
        return 0;
    if (p[3] < '1' || p[3] > '9')
        return -1;
    v = (unsigned)(p[3] - '0');
    if (p[4] >= '0' && p[4] <= '9' && p[5] == '\0')
        v = v * 10 + (unsigned)(p[4] - '0');
    else if (p[4] != '\0')
        return -1;
    return v < DVB_PREFIXES ? (int)v : -1;
}

/* Records in *used which of "dvb", "dvb1".."dvb63" some element declares for a namespace other
 * than DVB's. */
static void
note_prefixes(xmlNodePtr n, uint64_t *used)
{
    for (xmlNsPtr ns = n->nsDef; ns != NULL; ns = ns->next) {
        int k = dvb_prefix_index((const char *)ns->prefix);
        if (k >= 0 && !xmlStrEqual(ns->href, BAD_CAST DASH_DVB_NS))
            *used |= (uint64_t)1 << k;
    }
}

/* The authoritative check on the parsed tree: no DTD, no entity nodes, no XInclude, depth and
 * node count within the limits. */
static enum dash_status
check_tree(xmlDocPtr doc, const struct limits *lim, uint64_t *dvb_used)
{
    xmlNodePtr n = doc->children;
    size_t depth = 1, nodes = 0;

    if (doc->intSubset != NULL || doc->extSubset != NULL)
        return DASH_FORBIDDEN;
    while (n != NULL) {
        switch (n->type) {
        case XML_ELEMENT_NODE:
            if (n->ns != NULL && is_xinclude(n->ns->href))
                return DASH_FORBIDDEN;
            if (depth > lim->max_depth || ++nodes > lim->max_nodes)
                return DASH_LIMIT;
            note_prefixes(n, dvb_used);
            for (xmlAttrPtr a = n->properties; a != NULL; a = a->next) {
                for (xmlNodePtr c = a->children; c != NULL; c = c->next) {
                    if (c->type != XML_TEXT_NODE)
                        return DASH_FORBIDDEN;
                }
            }
            break;
        case XML_COMMENT_NODE:
        case XML_PI_NODE:
            if (++nodes > lim->max_nodes)
                return DASH_LIMIT;
            break;
        case XML_TEXT_NODE:
        case XML_CDATA_SECTION_NODE:
            break;
        default: /* entity references and declarations, DTD nodes, XInclude markers */
            return DASH_FORBIDDEN;
        }
        if (n->type == XML_ELEMENT_NODE && n->children != NULL) {
            n = n->children;
            depth++;
            continue;
        }
        while (n != NULL && n->next == NULL) {
            n = n->parent;
            depth--;
            if (n == (xmlNodePtr)doc)
                n = NULL;
        }
        if (n != NULL)
            n = n->next;
    }
    return DASH_OK;
}

/* ---- rewriting -------------------------------------------------------------------------- */

/* A resolved base URL as the origin MPD had it, and how the rewritten MPD's player sees it. */
struct rec {
    char *origin;    /* absolute, resolved */
    size_t rest_off; /* when under: where the remainder after origin_base starts */
    bool under;      /* steered: the player sees CDN i's base + the remainder (view()) */
    bool opaque;     /* the player's view is unknown (the MPD's own URL): relative refs move */
    bool simple_ok;  /* every plain relative path resolves the same way for the player */
    unsigned mark;   /* de-duplication stamp while building base sets */
};

/* Per Period / AdaptationSet / Representation (in node->_private). */
struct snode {
    struct rec *rec;  /* its effective base (own BaseURL or inherited) */
    struct rec **set; /* distinct effective bases of it and every node below it */
    size_t nset, capset;
    bool set_ok; /* every base in set has simple_ok */
    bool built;
};

enum verdict {
    V_KEEP,  /* resolves the same for the player: leave it */
    V_STEER, /* under the origin: write the CDN form(s) */
    V_PIN,   /* elsewhere, but would resolve differently: write the absolute URL */
};

struct decision {
    enum verdict v;
    char *target; /* resolved against the first base (owned; NULL when kept on the fast path) */
    size_t rest_off;
};

struct rw {
    const struct dash_opts *o;
    const struct limits *lim;
    xmlDocPtr doc;
    xmlNodePtr root;
    const xmlChar *ns_href; /* the MPD element's namespace, or NULL */
    size_t origin_len;
    char *origin_slash; /* origin_base + "/" (for "could a plain path reach the origin") */
    size_t *cdn_len;    /* CDN base lengths without trailing '/' */
    size_t self_len;
    struct buf r0, r1, r2;
    struct rec **recs;
    size_t nrecs, caprecs;
    struct snode **snodes;
    size_t nsnodes, capsnodes;
    struct buf vbuf; /* a view being built */
    uint64_t dvb_used;
    xmlNsPtr dvb;
    bool dvb_done;
    unsigned stamp;
    size_t budget;
    size_t added;     /* estimated bytes added to the document */
    size_t max_added; /* max_output - input length */
    size_t nrewritten;
    enum dash_status err;
};

static void
rw_fail(struct rw *w, enum dash_status st)
{
    if (w->err == DASH_OK)
        w->err = st;
}

static bool
is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static void
trim(const char **s, size_t *n)
{
    while (*n > 0 && is_ws((*s)[0])) {
        (*s)++;
        (*n)--;
    }
    while (*n > 0 && is_ws((*s)[*n - 1]))
        (*n)--;
}

static bool
mpd_el(const struct rw *w, xmlNodePtr n, const char *name)
{
    if (n->type != XML_ELEMENT_NODE || !xmlStrEqual(n->name, BAD_CAST name))
        return false;
    if (n->ns == NULL || n->ns->href == NULL)
        return w->ns_href == NULL;
    return w->ns_href != NULL && xmlStrEqual(n->ns->href, w->ns_href);
}

static int
resolve(struct rw *w, const char *base, const char *ref, size_t ref_len, struct buf *out)
{
    buf_reset(out);
    if (url_resolve(base, strlen(base), ref, ref_len, out) != 0) {
        rw_fail(w, DASH_LIMIT);
        return -1;
    }
    return 0;
}

static bool
under_origin(const struct rw *w, const char *url, size_t len, size_t *rest_off)
{
    return url_under_base(url, len, w->o->origin_base, w->origin_len, rest_off);
}

/* CDN i's base + the remainder of url (which lies under the origin at rest_off). */
static char *
cdn_form(const struct rw *w, size_t i, const char *url, size_t rest_off)
{
    size_t rest = strlen(url + rest_off), n = w->cdn_len[i];
    char *s = xmalloc(n + rest + 1);

    memcpy(s, w->o->cdns[i].base, n);
    memcpy(s + n, url + rest_off, rest + 1);
    return s;
}

/* True when s equals CDN i's base + the remainder of url at rest_off, without building it. */
static bool
equals_cdn_form(const struct rw *w, size_t i, const char *s, size_t slen, const char *url,
                size_t rest_off)
{
    size_t n = w->cdn_len[i], rest = strlen(url + rest_off);
    return slen == n + rest && memcmp(s, w->o->cdns[i].base, n) == 0 &&
           memcmp(s + n, url + rest_off, rest) == 0;
}

/* A relative-path reference without ".." segments: it appends to the base's directory for
 * every base, so it keeps working wherever the directory structure is preserved. */
static bool
plain_relative(const char *t, size_t n)
{
    size_t seg = 0;

    if (url_scheme_len(t, n) > 0 || (n > 0 && t[0] == '/'))
        return false;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || t[i] == '/' || t[i] == '?' || t[i] == '#') {
            if (i - seg == 2 && t[seg] == '.' && t[seg + 1] == '.')
                return false;
            if (i == n || t[i] != '/')
                break;
            seg = i + 1;
        }
    }
    return true;
}

static int
check_added(struct rw *w, size_t bytes)
{
    w->added += bytes + NODE_COST;
    if (w->added > w->max_added) {
        rw_fail(w, DASH_TOO_LARGE);
        return -1;
    }
    return 0;
}

static struct rec *
rec_new(struct rw *w, const char *origin, bool opaque)
{
    struct rec *r = xcalloc(1, sizeof(*r));

    if (w->nrecs == w->caprecs) {
        w->caprecs = w->caprecs ? w->caprecs * 2 : 16;
        w->recs = xrealloc(w->recs, w->caprecs * sizeof(*w->recs));
    }
    w->recs[w->nrecs++] = r;
    r->origin = xstrdup(origin);
    r->opaque = opaque;
    if (opaque)
        return r;
    r->under = under_origin(w, r->origin, strlen(r->origin), &r->rest_off);
    if (r->under) {
        /* The remainder starts with '/', so the directory of every CDN form is the CDN base +
         * the remainder's directory: a plain relative path appends to both alike. */
        r->simple_ok = true;
    } else {
        /* Foreign: its view is itself; a plain path could only reach the origin if the
         * origin lies under this base's directory. */
        if (resolve(w, r->origin, ".", 1, &w->r0) != 0)
            return r;
        r->simple_ok =
            !url_under_base(w->origin_slash, strlen(w->origin_slash), w->r0.data, w->r0.len, NULL);
    }
    return r;
}

/* The player's view of a steered base r through CDN i, in w->vbuf. */
static const char *
view(struct rw *w, const struct rec *r, size_t i)
{
    buf_reset(&w->vbuf);
    if (buf_append(&w->vbuf, w->o->cdns[i].base, w->cdn_len[i]) != 0 ||
        buf_puts(&w->vbuf, r->origin + r->rest_off) != 0) {
        rw_fail(w, DASH_LIMIT);
        return NULL;
    }
    return w->vbuf.data;
}

/* Decides what to do with the URL reference t[0..n) that applies under every base in set
 * (set[0] is the base of the element itself). */
static int
decide(struct rw *w, const char *t, size_t n, struct rec *const *set, size_t nset, bool set_ok,
       struct decision *d)
{
    bool keep = true, under0;
    size_t off0;

    memset(d, 0, sizeof(*d));
    if (set_ok && plain_relative(t, n)) {
        d->v = V_KEEP;
        return 0;
    }
    if (resolve(w, set[0]->origin, t, n, &w->r0) != 0)
        return -1;
    under0 = under_origin(w, w->r0.data, w->r0.len, &off0);
    d->target = xstrndup(w->r0.data, w->r0.len);
    d->rest_off = off0;
    if (url_scheme_len(t, n) > 0) {
        d->v = (url_is_http(t, n) && under0) ? V_STEER : V_KEEP;
        return 0;
    }
    for (size_t k = 0; keep && k < nset; k++) {
        const struct rec *s = set[k];
        size_t roff = 0;
        bool under;

        if (s->opaque) {
            keep = false;
            break;
        }
        if (w->budget < 1 + w->o->ncdns) {
            rw_fail(w, DASH_LIMIT);
            return -1;
        }
        w->budget -= 1 + w->o->ncdns;
        if (resolve(w, s->origin, t, n, &w->r1) != 0)
            return -1;
        under = under_origin(w, w->r1.data, w->r1.len, &roff);
        if (!s->under) {
            keep = !under; /* the player resolves it exactly as the origin did */
            continue;
        }
        for (size_t i = 0; keep && i < w->o->ncdns; i++) {
            const char *sv = view(w, s, i);
            if (sv == NULL || resolve(w, sv, t, n, &w->r2) != 0)
                return -1;
            if (under)
                keep = equals_cdn_form(w, i, w->r2.data, w->r2.len, w->r1.data, roff);
            else
                keep = w->r2.len == w->r1.len && memcmp(w->r2.data, w->r1.data, w->r1.len) == 0;
        }
    }
    d->v = keep ? V_KEEP : under0 ? V_STEER : V_PIN;
    return 0;
}

static void
decision_free(struct decision *d)
{
    free(d->target);
    d->target = NULL;
}

/* White space right before n, when that is all its previous sibling holds (indentation). */
static xmlChar *
ws_before(xmlNodePtr n)
{
    xmlNodePtr p = n != NULL ? n->prev : NULL;

    if (p == NULL || p->type != XML_TEXT_NODE || p->content == NULL)
        return NULL;
    for (const xmlChar *c = p->content; *c != '\0'; c++) {
        if (!is_ws((char)*c))
            return NULL;
    }
    return xmlStrdup(p->content);
}

static void
add_before(xmlNodePtr ref, xmlNodePtr n)
{
    if (xmlAddPrevSibling(ref, n) == NULL)
        xmlFreeNode(n);
}

static void
remove_node(xmlNodePtr n)
{
    xmlUnlinkNode(n);
    xmlFreeNode(n);
}

/* Drops element n with the indentation in front of it. */
static void
remove_el(xmlNodePtr n)
{
    xmlNodePtr p = n->prev;
    xmlChar *ws = ws_before(n);

    if (ws != NULL)
        remove_node(p);
    xmlFree(ws);
    remove_node(n);
}

static void
set_text(xmlNodePtr el, const char *s)
{
    xmlNodePtr t = xmlNewDocText(el->doc, BAD_CAST s);

    xmlFreeNodeList(el->children);
    el->children = el->last = NULL;
    xmlAddChild(el, t);
}

/* The DVB namespace for dvb:priority / dvb:weight, declared on the MPD element on first use;
 * NULL when every candidate prefix is taken (the BaseURLs then carry serviceLocation only). */
static xmlNsPtr
dvb_ns(struct rw *w)
{
    char prefix[8];

    if (w->dvb_done)
        return w->dvb;
    w->dvb_done = true;
    w->dvb = xmlSearchNsByHref(w->doc, w->root, BAD_CAST DASH_DVB_NS);
    if (w->dvb != NULL && w->dvb->prefix != NULL) {
        /* Reused unless a descendant rebinds the same prefix to something else. */
        int k = dvb_prefix_index((const char *)w->dvb->prefix);
        if (k < 0 || (w->dvb_used & ((uint64_t)1 << k)) == 0)
            return w->dvb;
    }
    w->dvb = NULL;
    for (unsigned k = 0; k < DVB_PREFIXES; k++) {
        if (w->dvb_used & ((uint64_t)1 << k))
            continue;
        if (k == 0)
            snprintf(prefix, sizeof(prefix), "dvb");
        else
            snprintf(prefix, sizeof(prefix), "dvb%u", k);
        w->dvb = xmlNewNs(w->root, BAD_CAST DASH_DVB_NS, BAD_CAST prefix);
        if (w->dvb != NULL)
            break;
    }
    return w->dvb;
}

/* like's namespace declarations are copied onto n; ns pointers into like->nsDef are mapped. */
static xmlNsPtr
map_ns(xmlNodePtr like, xmlNodePtr n, xmlNsPtr ns)
{
    xmlNsPtr a = like->nsDef, b = n->nsDef;

    while (a != NULL && b != NULL) {
        if (a == ns)
            return b;
        a = a->next;
        b = b->next;
    }
    return ns;
}

/* A BaseURL for CDN i with text url, carrying like's other attributes (like may be NULL). */
static xmlNodePtr
make_baseurl(struct rw *w, xmlNodePtr like, size_t i, const char *url)
{
    xmlNsPtr dvb = dvb_ns(w);
    xmlNodePtr n;
    char num[24];

    if (check_added(w, strlen(url) + strlen(w->o->cdns[i].id)) != 0)
        return NULL;
    n = xmlNewDocNode(w->doc, like != NULL ? like->ns : w->root->ns, BAD_CAST "BaseURL", NULL);
    if (like != NULL) {
        for (xmlNsPtr ns = like->nsDef; ns != NULL; ns = ns->next)
            xmlNewNs(n, ns->href, ns->prefix);
        n->ns = map_ns(like, n, like->ns);
        for (xmlAttrPtr a = like->properties; a != NULL; a = a->next) {
            xmlChar *v;
            if (a->ns == NULL && xmlStrEqual(a->name, BAD_CAST "serviceLocation"))
                continue;
            if (a->ns != NULL && xmlStrEqual(a->ns->href, BAD_CAST DASH_DVB_NS) &&
                (xmlStrEqual(a->name, BAD_CAST "priority") ||
                 xmlStrEqual(a->name, BAD_CAST "weight")))
                continue;
            v = xmlNodeGetContent((xmlNodePtr)a);
            xmlNewNsProp(n, map_ns(like, n, a->ns), a->name, v != NULL ? v : BAD_CAST "");
            xmlFree(v);
        }
    }
    xmlNewProp(n, BAD_CAST "serviceLocation", BAD_CAST w->o->cdns[i].id);
    if (dvb != NULL) {
        snprintf(num, sizeof(num), "%zu", i + 1);
        xmlNewNsProp(n, dvb, BAD_CAST "priority", BAD_CAST num);
        xmlNewNsProp(n, dvb, BAD_CAST "weight", BAD_CAST "1");
    }
    xmlAddChild(n, xmlNewDocText(w->doc, BAD_CAST url));
    return n;
}

/* Inserts the per-CDN BaseURLs for target (under the origin at rest_off) before ref, with
 * ref's indentation between them; ref == NULL appends them to parent. */
static int
insert_cdn_set(struct rw *w, xmlNodePtr parent, xmlNodePtr ref, xmlNodePtr like, const char *target,
               size_t rest_off)
{
    xmlChar *ws = ws_before(ref);
    int rc = 0;

    for (size_t i = 0; i < w->o->ncdns; i++) {
        char *url = cdn_form(w, i, target, rest_off);
        xmlNodePtr n = make_baseurl(w, like, i, url);
        free(url);
        if (n == NULL) {
            rc = -1;
            break;
        }
        if (ref == NULL) {
            xmlAddChild(parent, n);
            continue;
        }
        if (i > 0 && ws != NULL && like != NULL)
            add_before(ref, xmlNewDocText(w->doc, ws));
        add_before(ref, n);
        if (ws != NULL && like == NULL)
            add_before(ref, xmlNewDocText(w->doc, ws));
    }
    xmlFree(ws);
    return rc;
}

static struct snode *
snode_new(struct rw *w, xmlNodePtr n, struct rec *rec)
{
    struct snode *s = xcalloc(1, sizeof(*s));

    if (w->nsnodes == w->capsnodes) {
        w->capsnodes = w->capsnodes ? w->capsnodes * 2 : 16;
        w->snodes = xrealloc(w->snodes, w->capsnodes * sizeof(*w->snodes));
    }
    w->snodes[w->nsnodes++] = s;
    s->rec = rec;
    n->_private = s;
    return s;
}

/* Applies the BaseURL rules to the BaseURL children of x, whose parent base is parent; returns
 * x's effective base (NULL on error). mpd_level also inserts a BaseURL when x has none. */
static struct rec *
do_baseurls(struct rw *w, xmlNodePtr x, struct rec *parent, bool mpd_level)
{
    struct rec *first = NULL;
    bool steered = false;
    size_t count = 0;
    xmlNodePtr next;
    struct decision d;

    for (xmlNodePtr c = x->children; c != NULL; c = next) {
        xmlChar *text;
        const char *t;
        size_t n;
        int rc;

        next = c->next;
        if (!mpd_el(w, c, "BaseURL"))
            continue;
        count++;
        text = xmlNodeGetContent(c);
        t = text != NULL ? (const char *)text : "";
        n = strlen(t);
        trim(&t, &n);
        if (n > w->lim->max_attr) {
            xmlFree(text);
            rw_fail(w, DASH_LIMIT);
            return NULL;
        }
        rc = decide(w, t, n, &parent, 1, parent->simple_ok, &d);
        if (rc == 0 && first == NULL) {
            if (d.target != NULL) {
                first = rec_new(w, d.target, false);
            } else if (resolve(w, parent->origin, t, n, &w->r0) == 0) {
                first = rec_new(w, w->r0.data, false);
            }
        }
        xmlFree(text);
        if (rc != 0 || w->err != DASH_OK) {
            decision_free(&d);
            return NULL;
        }
        if (d.v == V_STEER && steered) {
            remove_el(c);
            w->nrewritten++;
        } else if (d.v == V_STEER) {
            steered = true;
            rc = insert_cdn_set(w, x, c, c, d.target, d.rest_off);
            remove_node(c);
            w->nrewritten++;
        } else if (d.v == V_PIN) {
            set_text(c, d.target);
            w->nrewritten++;
        }
        decision_free(&d);
        if (rc != 0)
            return NULL;
    }
    if (count > 0)
        return first;
    if (!mpd_level)
        return parent;

    /* No BaseURL in the MPD: segments resolved against the MPD's URL, which the player no
     * longer fetches from the origin. Insert the bases the origin implied. */
    if (decide(w, ".", 1, &parent, 1, false, &d) != 0)
        return NULL;
    first = rec_new(w, d.target, false);
    if (w->err == DASH_OK) {
        xmlNodePtr ref = NULL;
        for (xmlNodePtr c = x->children; c != NULL; c = c->next) {
            if (c->type == XML_ELEMENT_NODE && !mpd_el(w, c, "ProgramInformation")) {
                ref = c;
                break;
            }
        }
        if (d.v == V_STEER) {
            insert_cdn_set(w, x, ref, NULL, d.target, d.rest_off);
        } else if (check_added(w, strlen(d.target)) == 0) {
            xmlNodePtr b = xmlNewDocNode(w->doc, w->root->ns, BAD_CAST "BaseURL", NULL);
            xmlChar *ws = ws_before(ref);
            xmlAddChild(b, xmlNewDocText(w->doc, BAD_CAST d.target));
            if (ref == NULL) {
                xmlAddChild(x, b);
            } else {
                add_before(ref, b);
                if (ws != NULL)
                    add_before(ref, xmlNewDocText(w->doc, ws));
            }
            xmlFree(ws);
        }
        w->nrewritten++;
    }
    decision_free(&d);
    return w->err == DASH_OK ? first : NULL;
}

static void
set_add(struct rw *w, struct snode *s, struct rec *r)
{
    if (r->mark == w->stamp)
        return;
    r->mark = w->stamp;
    if (s->nset == s->capset) {
        s->capset = s->capset ? s->capset * 2 : 4;
        s->set = xrealloc(s->set, s->capset * sizeof(*s->set));
    }
    s->set[s->nset++] = r;
    s->set_ok = s->set_ok && r->simple_ok;
}

/* The distinct bases segment information at x applies to: x's own and those of every
 * AdaptationSet / Representation below it. */
static struct snode *
base_set(struct rw *w, xmlNodePtr x)
{
    struct snode *s = x->_private;

    if (s->built)
        return s;
    s->built = true;
    s->set_ok = true;
    w->stamp++;
    set_add(w, s, s->rec);
    for (xmlNodePtr a = x->children; a != NULL; a = a->next) {
        if (a->type != XML_ELEMENT_NODE || a->_private == NULL)
            continue;
        set_add(w, s, ((struct snode *)a->_private)->rec);
        for (xmlNodePtr r = a->children; r != NULL; r = r->next) {
            if (r->type == XML_ELEMENT_NODE && r->_private != NULL)
                set_add(w, s, ((struct snode *)r->_private)->rec);
        }
    }
    return s;
}

static void
do_attr(struct rw *w, xmlNodePtr el, const char *name, const struct snode *s)
{
    xmlChar *v = xmlGetNoNsProp(el, BAD_CAST name);
    const char *t;
    size_t n;
    struct decision d;

    if (v == NULL)
        return;
    t = (const char *)v;
    n = strlen(t);
    trim(&t, &n);
    if (n > w->lim->max_attr) {
        rw_fail(w, DASH_LIMIT);
    } else if (decide(w, t, n, s->set, s->nset, s->set_ok, &d) == 0) {
        if (d.v == V_STEER) {
            char *url = cdn_form(w, 0, d.target, d.rest_off);
            if (check_added(w, strlen(url)) == 0)
                xmlSetProp(el, BAD_CAST name, BAD_CAST url);
            free(url);
            w->nrewritten++;
        } else if (d.v == V_PIN) {
            if (check_added(w, strlen(d.target)) == 0)
                xmlSetProp(el, BAD_CAST name, BAD_CAST d.target);
            w->nrewritten++;
        }
        decision_free(&d);
    }
    xmlFree(v);
}

/* SegmentBase / SegmentList / SegmentTemplate c, child of x. */
static void
do_segment_info(struct rw *w, xmlNodePtr x, xmlNodePtr c)
{
    const struct snode *s = base_set(w, x);

    if (mpd_el(w, c, "SegmentTemplate")) {
        xmlChar *bs = xmlGetNoNsProp(c, BAD_CAST "bitstreamSwitching");
        do_attr(w, c, "media", s);
        do_attr(w, c, "initialization", s);
        do_attr(w, c, "index", s);
        if (bs != NULL && !xmlStrEqual(bs, BAD_CAST "true") && !xmlStrEqual(bs, BAD_CAST "false"))
            do_attr(w, c, "bitstreamSwitching", s);
        xmlFree(bs);
    }
    for (xmlNodePtr e = c->children; e != NULL && w->err == DASH_OK; e = e->next) {
        if (mpd_el(w, e, "Initialization") || mpd_el(w, e, "RepresentationIndex") ||
            mpd_el(w, e, "BitstreamSwitching")) {
            do_attr(w, e, "sourceURL", s);
        } else if (mpd_el(w, e, "SegmentURL")) {
            do_attr(w, e, "media", s);
            do_attr(w, e, "index", s);
        }
    }
}

static bool
is_segment_info(const struct rw *w, xmlNodePtr c)
{
    return mpd_el(w, c, "SegmentBase") || mpd_el(w, c, "SegmentList") ||
           mpd_el(w, c, "SegmentTemplate");
}

/* Location / PatchLocation under the origin come back through self_base. */
static void
do_reload_url(struct rw *w, xmlNodePtr el)
{
    xmlChar *text = xmlNodeGetContent(el);
    const char *t = text != NULL ? (const char *)text : "";
    const char *nq = w->o->nested_query;
    size_t n = strlen(t), off;
    struct buf b;

    trim(&t, &n);
    if (n > w->lim->max_attr) {
        rw_fail(w, DASH_LIMIT);
    } else if (resolve(w, w->o->mpd_url, t, n, &w->r0) == 0 &&
               under_origin(w, w->r0.data, w->r0.len, &off)) {
        const char *rest = w->r0.data + off;
        const char *frag = strchr(rest, '#');
        size_t body = frag != NULL ? (size_t)(frag - rest) : strlen(rest);
        bool has_q = memchr(rest, '?', body) != NULL;

        buf_init(&b, 0);
        buf_append(&b, w->o->self_base, w->self_len);
        buf_append(&b, rest, body);
        if (nq != NULL && nq[0] != '\0') {
            buf_puts(&b, has_q ? "&" : "?");
            buf_puts(&b, nq);
        }
        if (frag != NULL)
            buf_puts(&b, frag);
        if (check_added(w, b.len) == 0) {
            set_text(el, b.data);
            w->nrewritten++;
        }
        buf_free(&b);
    }
    xmlFree(text);
}

/* BaseURLs top-down (each level's effective base feeds the next), then segment information
 * (which needs the bases of every Representation below it). */
static void
rewrite(struct rw *w)
{
    struct rec *mpd = rec_new(w, w->o->mpd_url, true);
    struct rec *top;

    if (w->err != DASH_OK)
        return;
    top = do_baseurls(w, w->root, mpd, true);
    if (top == NULL)
        return;
    for (xmlNodePtr p = w->root->children; p != NULL; p = p->next) {
        struct rec *prec;
        if (!mpd_el(w, p, "Period"))
            continue;
        prec = do_baseurls(w, p, top, false);
        if (prec == NULL)
            return;
        snode_new(w, p, prec);
        for (xmlNodePtr a = p->children; a != NULL; a = a->next) {
            struct rec *arec;
            if (!mpd_el(w, a, "AdaptationSet"))
                continue;
            arec = do_baseurls(w, a, prec, false);
            if (arec == NULL)
                return;
            snode_new(w, a, arec);
            for (xmlNodePtr r = a->children; r != NULL; r = r->next) {
                struct rec *rrec;
                if (!mpd_el(w, r, "Representation"))
                    continue;
                rrec = do_baseurls(w, r, arec, false);
                if (rrec == NULL)
                    return;
                snode_new(w, r, rrec);
            }
        }
    }
    for (xmlNodePtr p = w->root->children; p != NULL; p = p->next) {
        if (p->_private == NULL || !mpd_el(w, p, "Period"))
            continue;
        for (xmlNodePtr c = p->children; c != NULL && w->err == DASH_OK; c = c->next) {
            if (is_segment_info(w, c))
                do_segment_info(w, p, c);
            if (c->_private == NULL || !mpd_el(w, c, "AdaptationSet"))
                continue;
            for (xmlNodePtr e = c->children; e != NULL && w->err == DASH_OK; e = e->next) {
                if (is_segment_info(w, e))
                    do_segment_info(w, c, e);
                if (e->_private == NULL || !mpd_el(w, e, "Representation"))
                    continue;
                for (xmlNodePtr f = e->children; f != NULL && w->err == DASH_OK; f = f->next) {
                    if (is_segment_info(w, f))
                        do_segment_info(w, e, f);
                }
            }
        }
    }
    if (w->o->self_base == NULL)
        return;
    for (xmlNodePtr c = w->root->children; c != NULL && w->err == DASH_OK; c = c->next) {
        if (mpd_el(w, c, "Location") || mpd_el(w, c, "PatchLocation"))
            do_reload_url(w, c);
    }
}

/* ContentSteering elements of the MPD (MPD level and inside ServiceDescription) into out[]. */
static size_t
find_steering(struct rw *w, xmlNodePtr *out, size_t max)
{
    size_t n = 0;
    for (xmlNodePtr c = w->root->children; c != NULL; c = c->next) {
        if (mpd_el(w, c, "ContentSteering") && n < max)
            out[n++] = c;
        if (!mpd_el(w, c, "ServiceDescription"))
            continue;
        for (xmlNodePtr s = c->children; s != NULL; s = s->next) {
            if (mpd_el(w, s, "ContentSteering") && n < max)
                out[n++] = s;
        }
    }
    return n;
}

/* Steering mode: steerd's ContentSteering element, pointing at opts.steering_uri. */
static void
inject_steering(struct rw *w)
{
    xmlNodePtr found[16];
    size_t n = find_steering(w, found, UTIL_ARRAY_LEN(found));
    if (n > 0 && w->o->steering_keep)
        return;
    for (size_t i = 0; i < n; i++)
        remove_el(found[i]);
    if (check_added(w, strlen(w->o->steering_uri) + strlen(w->o->cdns[0].id) + 96) != 0)
        return;
    xmlNodePtr el = xmlNewDocNode(w->doc, w->root->ns, BAD_CAST "ContentSteering", NULL);
    xmlNewProp(el, BAD_CAST "defaultServiceLocation", BAD_CAST w->o->cdns[0].id);
    xmlNewProp(el, BAD_CAST "queryBeforeStart",
               BAD_CAST(w->o->query_before_start ? "true" : "false"));
    xmlAddChild(el, xmlNewDocText(w->doc, BAD_CAST w->o->steering_uri));
    xmlNodePtr period = NULL;
    for (xmlNodePtr c = w->root->children; c != NULL && period == NULL; c = c->next) {
        if (mpd_el(w, c, "Period"))
            period = c;
    }
    if (period == NULL) {
        xmlAddChild(w->root, el);
        return;
    }
    xmlChar *ws = ws_before(period);
    add_before(period, el);
    if (ws != NULL)
        add_before(period, xmlNewDocText(w->doc, ws));
    xmlFree(ws);
    w->nrewritten++;
}

static void
rw_free(struct rw *w)
{
    for (size_t i = 0; i < w->nrecs; i++) {
        free(w->recs[i]->origin);
        free(w->recs[i]);
    }
    free(w->recs);
    for (size_t i = 0; i < w->nsnodes; i++) {
        free(w->snodes[i]->set);
        free(w->snodes[i]);
    }
    free(w->snodes);
    free(w->cdn_len);
    free(w->origin_slash);
    buf_free(&w->r0);
    buf_free(&w->r1);
    buf_free(&w->r2);
    buf_free(&w->vbuf);
}

/* ---- info ------------------------------------------------------------------------------- */

/* Reads digits at *p into *v (saturating at 1e15); false when there is none. */
static bool
read_num(const char **p, uint64_t *v)
{
    const char *s = *p;

    *v = 0;
    while (**p >= '0' && **p <= '9') {
        if (*v < 1000000000000000ull)
            *v = *v * 10 + (uint64_t)(**p - '0');
        (*p)++;
    }
    return *p > s;
}

/* xs:duration ("PT2S", "PT0.5S", "P1DT2H30M") in milliseconds, saturated to UINT32_MAX; 0 when
 * malformed or negative. Years count 365 days and months 30. */
static uint32_t
duration_ms(const char *s)
{
    static const struct {
        char unit;
        bool time;
        uint64_t ms;
    } units[] = {{'Y', false, 31536000000ull}, {'M', false, 2592000000ull},
                 {'D', false, 86400000ull},    {'H', true, 3600000ull},
                 {'M', true, 60000ull},        {'S', true, 1000ull}};
    uint64_t total = 0, v, frac;
    size_t u = 0;
    bool time = false, any = false, time_any = false;
    const char *p = s;

    while (is_ws(*p))
        p++;
    if (*p++ != 'P')
        return 0;
    while (*p != '\0' && !is_ws(*p)) {
        if (*p == 'T') {
            if (time)
                return 0;
            time = true;
            p++;
            while (u < UTIL_ARRAY_LEN(units) && !units[u].time)
                u++;
            continue;
        }
        if (!read_num(&p, &v))
            return 0;
        frac = 0;
        if (*p == '.') {
            uint64_t scale = 100;
            p++;
            if (*p < '0' || *p > '9')
                return 0;
            for (; *p >= '0' && *p <= '9'; p++) {
                frac += (uint64_t)(*p - '0') * scale;
                scale /= 10;
            }
        }
        while (u < UTIL_ARRAY_LEN(units) && (units[u].unit != *p || units[u].time != time))
            u++;
        if (u == UTIL_ARRAY_LEN(units) || (frac != 0 && units[u].unit != 'S'))
            return 0;
        if (v > UINT32_MAX / units[u].ms)
            total = UINT32_MAX;
        else
            total += v * units[u].ms + (units[u].unit == 'S' ? frac : 0);
        if (total > UINT32_MAX)
            total = UINT32_MAX;
        u++;
        p++;
        any = true;
        time_any = time;
    }
    while (is_ws(*p))
        p++;
    return (any && *p == '\0' && time == time_any) ? (uint32_t)total : 0;
}

static void
fill_info(const struct rw *w, struct dash_info *info)
{
    xmlChar *v;

    memset(info, 0, sizeof(*info));
    v = xmlGetNoNsProp(w->root, BAD_CAST "type");
    info->dynamic = v != NULL && xmlStrEqual(v, BAD_CAST "dynamic");
    xmlFree(v);
    v = xmlGetNoNsProp(w->root, BAD_CAST "minimumUpdatePeriod");
    if (v != NULL)
        info->minimum_update_period_ms = duration_ms((const char *)v);
    xmlFree(v);
    for (xmlNodePtr c = w->root->children; c != NULL; c = c->next) {
        if (mpd_el(w, c, "Period"))
            info->nperiods++;
        if (mpd_el(w, c, "ContentSteering"))
            info->has_content_steering = true;
        if (mpd_el(w, c, "ServiceDescription")) {
            for (xmlNodePtr s = c->children; s != NULL; s = s->next) {
                if (mpd_el(w, s, "ContentSteering"))
                    info->has_content_steering = true;
            }
        }
    }
    info->nrewritten = w->nrewritten;
}

/* ---- options and entry points ----------------------------------------------------------- */

static bool
printable(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7E)
            return false;
    }
    return true;
}

/* True when a path segment of s[0..n) is "." or "..". */
static bool
has_dot_segment(const char *s, size_t n)
{
    size_t seg = 0;

    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == '/') {
            size_t len = i - seg;
            if ((len == 1 && s[seg] == '.') || (len == 2 && s[seg] == '.' && s[seg + 1] == '.'))
                return true;
            seg = i + 1;
        }
    }
    return false;
}

/* An absolute http(s) URL with a host; bases also have no query, fragment or dot segment (a
 * CDN form is the base + a remainder, so the base must read the same once resolved). */
static bool
valid_url(const char *s, size_t n, bool base)
{
    size_t sl;

    if (s == NULL || !url_is_http(s, n) || !printable(s, n))
        return false;
    sl = url_scheme_len(s, n);
    if (n < sl + 4 || memcmp(s + sl, "://", 3) != 0 || strchr("/?#", s[sl + 3]) != NULL)
        return false;
    return !base || (memchr(s, '?', n) == NULL && memchr(s, '#', n) == NULL &&
                     !has_dot_segment(s + sl + 3, n - sl - 3));
}

static bool
valid_opts(const struct dash_opts *o)
{
    if (o == NULL || o->mpd_url == NULL || o->origin_base == NULL || o->cdns == NULL)
        return false;
    if (!valid_url(o->mpd_url, strlen(o->mpd_url), false) ||
        !valid_url(o->origin_base, strlen(o->origin_base), true))
        return false;
    if (o->ncdns == 0 || o->ncdns > DASH_MAX_CDNS)
        return false;
    for (size_t i = 0; i < o->ncdns; i++) {
        const struct dash_target *c = &o->cdns[i];
        if (c->id == NULL || c->id[0] == '\0' || !printable(c->id, strlen(c->id)) ||
            !valid_url(c->base, c->base_len, true))
            return false;
    }
    /* "" (or "/") gives path-absolute reload URLs: "/remainder" */
    if (o->self_base != NULL && strspn(o->self_base, "/") != strlen(o->self_base) &&
        !valid_url(o->self_base, strlen(o->self_base), true))
        return false;
    if (o->nested_query != NULL && (!printable(o->nested_query, strlen(o->nested_query)) ||
                                    strchr(o->nested_query, '#') != NULL))
        return false;
    if (o->steering_uri != NULL && !valid_url(o->steering_uri, strlen(o->steering_uri), false))
        return false;
    return true;
}

static size_t
strip_slash(const char *s, size_t n)
{
    while (n > 0 && s[n - 1] == '/')
        n--;
    return n;
}

void
dash_global_init(void)
{
    xmlInitParser();
}

void
dash_global_cleanup(void)
{
    xmlCleanupParser();
}

/* Output sink for xmlSaveToIO: appends to the caller's buffer, which carries the size cap. */
static int
save_write(void *ctx, const char *p, int n)
{
    struct buf *out = ctx;

    if (n < 0 || buf_append(out, p, (size_t)n) != 0)
        return -1;
    return n;
}

/*
 * Serialises straight into out: no intermediate libxml2 buffer and no encoder pass (the
 * document is UTF-8 throughout, so the declaration names it and nothing is converted).
 */
static enum dash_status
serialise(xmlDocPtr doc, struct buf *out, size_t max_out)
{
    xmlSaveCtxtPtr sc;
    size_t old_max = out->max;
    long rc;
    int crc;

    xmlFree((xmlChar *)doc->encoding);
    doc->encoding = xmlStrdup(BAD_CAST "UTF-8");
    if (max_out < old_max)
        out->max = max_out;
    sc = xmlSaveToIO(save_write, NULL, out, NULL, 0);
    if (sc == NULL) {
        out->max = old_max;
        return DASH_BAD_XML;
    }
    rc = xmlSaveDoc(sc, doc);
    crc = xmlSaveClose(sc);
    out->max = old_max;
    if (out->overflow)
        return DASH_TOO_LARGE;
    if (rc < 0 || crc < 0 || out->len == 0)
        return DASH_BAD_XML;
    return DASH_OK;
}

enum dash_status
dash_rewrite(const char *in, size_t len, const struct dash_opts *o, struct buf *out,
             struct dash_info *info)
{
    struct limits lim;
    struct rw w;
    xmlDocPtr doc = NULL;
    size_t max_in, max_out, url_cap;
    enum dash_status st;

    if (out == NULL)
        return DASH_BAD_OPTS;
    buf_reset(out);
    if (!valid_opts(o) || (in == NULL && len > 0))
        return DASH_BAD_OPTS;
    max_in = o->max_input ? o->max_input : DASH_DEFAULT_MAX_INPUT;
    max_out = o->max_output ? o->max_output : DASH_DEFAULT_MAX_OUTPUT;
    lim.max_depth = o->max_depth ? o->max_depth : DASH_DEFAULT_MAX_DEPTH;
    lim.max_attr = o->max_attr_len ? o->max_attr_len : DASH_DEFAULT_MAX_ATTR_LEN;
    lim.max_nodes = o->max_nodes ? o->max_nodes : DASH_DEFAULT_MAX_NODES;
    if (len > max_in || len > INT32_MAX)
        return DASH_TOO_LARGE;
    if (len == 0)
        return DASH_BAD_XML;

    st = parse(in, len, &lim, &doc);
    if (st != DASH_OK)
        return st;

    memset(&w, 0, sizeof(w));
    w.o = o;
    w.lim = &lim;
    w.doc = doc;
    st = check_tree(doc, &lim, &w.dvb_used);
    if (st != DASH_OK)
        goto out;
    w.root = xmlDocGetRootElement(doc);
    if (w.root == NULL || !xmlStrEqual(w.root->name, BAD_CAST "MPD") ||
        (w.root->ns != NULL && w.root->ns->href != NULL &&
         xmlStrncasecmp(w.root->ns->href, BAD_CAST MPD_NS_PREFIX, (int)strlen(MPD_NS_PREFIX)) !=
             0)) {
        st = DASH_NOT_MPD;
        goto out;
    }
    w.ns_href = w.root->ns != NULL ? w.root->ns->href : NULL;
    w.origin_len = strlen(o->origin_base);
    w.origin_slash = xmalloc(w.origin_len + 2);
    memcpy(w.origin_slash, o->origin_base, w.origin_len);
    memcpy(w.origin_slash + w.origin_len, "/", 2);
    w.cdn_len = xcalloc(o->ncdns, sizeof(*w.cdn_len));
    for (size_t i = 0; i < o->ncdns; i++)
        w.cdn_len[i] = strip_slash(o->cdns[i].base, o->cdns[i].base_len);
    w.self_len = o->self_base != NULL ? strip_slash(o->self_base, strlen(o->self_base)) : 0;
    /* Resolved URLs chain at most four levels of references onto the MPD URL. */
    url_cap = 8 * lim.max_attr + strlen(o->mpd_url) + 4096;
    buf_init(&w.r0, url_cap);
    buf_init(&w.r1, url_cap);
    buf_init(&w.r2, url_cap);
    buf_init(&w.vbuf, url_cap);
    w.budget = SLOW_BUDGET;
    w.max_added = max_out > len ? max_out - len : 0;
    w.err = DASH_OK;

    rewrite(&w);
    if (w.err == DASH_OK && o->steering_uri != NULL)
        inject_steering(&w);
    st = w.err;
    if (st != DASH_OK)
        goto out;
    st = serialise(doc, out, max_out);
    if (st != DASH_OK) {
        buf_reset(out);
        goto out;
    }
    if (info != NULL)
        fill_info(&w, info);
out:
    if (w.o != NULL)
        rw_free(&w);
    xmlFreeDoc(doc);
    return st;
}

const char *
dash_status_str(enum dash_status st)
{
    switch (st) {
    case DASH_OK:
        return "ok";
    case DASH_BAD_XML:
        return "bad-xml";
    case DASH_FORBIDDEN:
        return "forbidden";
    case DASH_NOT_MPD:
        return "not-mpd";
    case DASH_TOO_LARGE:
        return "too-large";
    case DASH_LIMIT:
        return "limit";
    case DASH_BAD_OPTS:
        return "bad-opts";
    }
    return "unknown";
}
