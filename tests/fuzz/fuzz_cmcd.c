/* libFuzzer harness for cmcd over arbitrary bytes, in every form players send it: a CMCD list
 * (cmcd_find, cmcd_find_sid, cmcd_parse), a query string (cmcd_parse_query), the four CMCD-*
 * headers (cmcd_parse_headers: the input split at its first three LFs) and an application/cmcd
 * body (cmcd_parse_body). Aborts when a returned value lies outside the input, when a session id
 * is empty, longer than CMCD_SID_MAX, unquoted or holds a control byte, when cmcd_find and
 * cmcd_find_sid disagree, when a refused payload leaves anything in its report, when an accepted
 * report breaks the header's contract (strings terminated and bounded, tokens from their sets,
 * only known key bits), when a parse is not deterministic, or when a body's counts disagree with
 * the reports handed over. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "steerd/cmcd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fail(const char *what)
{
    fprintf(stderr, "fuzz_cmcd: invariant violated: %s\n", what);
    abort();
}

static void
check_inside(const char *buf, size_t len, const char *v, size_t vlen, const char *what)
{
    if (v < buf || vlen > len || (size_t)(v - buf) > len - vlen)
        fail(what);
}

/* The keys players send (CTA-5004) and a few shapes around them. */
static const char *const keys[] = {"sid", "cid",           "br", "bl", "ot",  "sf", "st", "su", "v",
                                   "nor", "com.example-x", "",   "si", "sidx"};

#define ALL_KEYS ((uint32_t)(CMCD_KEY_TTFB << 1) - 1u)

static int
one_of(const char *tok, const char *const *set)
{
    for (; *set != NULL; set++) {
        if (strcmp(tok, *set) == 0)
            return 1;
    }
    return 0;
}

/* A NUL-terminated string inside its array, without control bytes. */
static void
check_str(const char *s, size_t cap, size_t min, const char *what)
{
    const char *end = memchr(s, '\0', cap);

    if (end == NULL)
        fail(what);
    if ((size_t)(end - s) < min)
        fail(what);
    for (; s < end; s++) {
        unsigned char c = (unsigned char)*s;

        if (c < 0x20 || c == 0x7f)
            fail(what);
    }
}

static void
check_report(const struct cmcd_report *r)
{
    static const char *const ots[] = {"m", "a", "v", "av", "i", "c", "tt", "k", "o", NULL};
    static const char *const sfs[] = {"d", "h", "e", "s", "o", NULL};
    static const char *const sts[] = {"v", "l", "ll", NULL};
    static const char *const stas[] = {"s", "p", "k", "r", "a", "w", "e", "f", "q", "d", NULL};

    if ((r->has & ~ALL_KEYS) != 0)
        fail("unknown key bit in has");
    if (r->has & CMCD_KEY_SID) {
        check_str(r->sid, sizeof(r->sid), 1, "report sid");
        if (strlen(r->sid) > CMCD_SID_MAX)
            fail("report sid too long");
    }
    if (r->has & CMCD_KEY_CID)
        check_str(r->cid, sizeof(r->cid), 0, "report cid");
    if (r->has & CMCD_KEY_CDN)
        check_str(r->cdn, sizeof(r->cdn), 0, "report cdn");
    if (r->has & CMCD_KEY_OT) {
        check_str(r->ot, sizeof(r->ot), 1, "report ot");
        if (!one_of(r->ot, ots))
            fail("ot outside its set");
    }
    if (r->has & CMCD_KEY_SF) {
        check_str(r->sf, sizeof(r->sf), 1, "report sf");
        if (!one_of(r->sf, sfs))
            fail("sf outside its set");
    }
    if (r->has & CMCD_KEY_ST) {
        check_str(r->st, sizeof(r->st), 1, "report st");
        if (!one_of(r->st, sts))
            fail("st outside its set");
    }
    if (r->has & CMCD_KEY_STA) {
        check_str(r->sta, sizeof(r->sta), 1, "report sta");
        if (!one_of(r->sta, stas))
            fail("sta outside its set");
    }
}

/* A report after a parse that returned st. */
static void
check_outcome(enum cmcd_status st, const struct cmcd_report *r, int absent_ok)
{
    if (st == CMCD_OK) {
        check_report(r);
        return;
    }
    if (st == CMCD_ABSENT && !absent_ok)
        fail("CMCD_ABSENT from a parser that cannot return it");
    if (st != CMCD_ABSENT && st != CMCD_ESYNTAX && st != CMCD_ETYPE && st != CMCD_ERANGE)
        fail("unknown status");
    if (r->has != 0 || r->v != 1)
        fail("a refused payload left data in its report");
    if (strcmp(cmcd_status_str(st), "unknown") == 0)
        fail("status without a name");
}

struct body_count {
    uint32_t n;
};

static void
on_report(const struct cmcd_report *r, void *arg)
{
    struct body_count *bc = arg;

    check_report(r);
    bc->n++;
}

/* Runs the strict parsers over buf[0..size). */
static void
fuzz_parsers(const char *buf, size_t size)
{
    struct cmcd_report r, again;
    enum cmcd_status st;

    memset(&r, 0xa5, sizeof(r));
    st = cmcd_parse(buf, size, &r);
    check_outcome(st, &r, 0);
    memset(&again, 0x5a, sizeof(again));
    if (cmcd_parse(buf, size, &again) != st || memcmp(&r, &again, sizeof(r)) != 0)
        fail("cmcd_parse is not deterministic");

    memset(&r, 0xa5, sizeof(r));
    st = cmcd_parse_query(buf, size, &r);
    check_outcome(st, &r, 1);

    /* The four header values: the input cut at its first three LFs; an empty piece is a header
     * that is absent. */
    {
        const char *vals[CMCD_NHEADERS] = {NULL, NULL, NULL, NULL};
        size_t lens[CMCD_NHEADERS] = {0, 0, 0, 0};
        size_t pos = 0;
        int any = 0;

        for (int h = 0; h < CMCD_NHEADERS && pos <= size; h++) {
            const char *nl = memchr(buf + pos, '\n', size - pos);
            size_t end = (h == CMCD_NHEADERS - 1 || nl == NULL) ? size : (size_t)(nl - buf);

            if (end > pos) {
                vals[h] = buf + pos;
                lens[h] = end - pos;
                any = 1;
            }
            pos = end + 1;
        }
        memset(&r, 0xa5, sizeof(r));
        st = cmcd_parse_headers(vals, lens, &r);
        check_outcome(st, &r, 1);
        if ((st == CMCD_ABSENT) != !any)
            fail("CMCD_ABSENT does not match the headers given");
    }

    {
        struct cmcd_body_result res;
        struct body_count bc = {0};

        memset(&res, 0xa5, sizeof(res));
        cmcd_parse_body(buf, size, on_report, &bc, &res);
        if (bc.n != res.ok)
            fail("body: ok count differs from the reports handed over");
        if (res.ok > CMCD_BODY_MAX_REPORTS)
            fail("body: more reports than CMCD_BODY_MAX_REPORTS");
        if ((res.bad == 0) != (res.first_error == CMCD_OK))
            fail("body: first_error does not match bad");
        if (res.ok + (uint64_t)res.bad > size + 1)
            fail("body: more reports than bytes");
    }

    if (size <= 64) {
        int h = cmcd_header_index(buf, size);

        if (h < -1 || h >= CMCD_NHEADERS)
            fail("header index out of range");
        if (h >= 0 && (size < 11 || strncasecmp(buf, "cmcd-", 5) != 0))
            fail("header index for a name that is no CMCD header");
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size heap copy, so ASan catches any read past the list. */
    char *buf = malloc(size ? size : 1);
    const char *sid;
    size_t sidlen = 0, vlen = 0;

    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);

    for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
        size_t klen = strlen(keys[k]);
        const char *v;

        vlen = (size_t)-1;
        v = cmcd_find(buf, size, keys[k], &vlen);
        if (v == NULL)
            continue;
        check_inside(buf, size, v, vlen, "value outside the input");
        /* The value follows "key=" or "key=\"" inside the input. */
        if (v == buf || (v[-1] != '=' && v[-1] != '"'))
            fail("value does not follow '=' or '\"'");
        if (v[-1] == '"') {
            if ((size_t)(v - buf) + vlen >= size || v[vlen] != '"')
                fail("quoted value not closed by '\"'");
            if ((size_t)(v - buf) < klen + 2 || v[-2] != '=')
                fail("quoted value not after '='");
        } else {
            if ((size_t)(v - buf) + vlen < size && v[vlen] != ',')
                fail("token value not ended by ',' or the end");
            if (memchr(v, ',', vlen) != NULL)
                fail("token value holds ','");
        }
    }

    sid = cmcd_find_sid(buf, size, &sidlen);
    if (sid != NULL) {
        const char *v;

        check_inside(buf, size, sid, sidlen, "sid outside the input");
        if (sidlen == 0 || sidlen > CMCD_SID_MAX)
            fail("sid length");
        for (size_t i = 0; i < sidlen; i++) {
            unsigned char c = (unsigned char)sid[i];

            if (c < 0x20 || c == 0x7f)
                fail("control byte in sid");
        }
        if (sid == buf || sid[-1] != '"')
            fail("sid not a quoted string");
        v = cmcd_find(buf, size, "sid", &vlen);
        if (v != sid || vlen != sidlen)
            fail("cmcd_find_sid disagrees with cmcd_find");
    }

    /* A prefix of the input is a list of its own: the answer stays inside it (an exact-size
     * copy, so a read past the shorter end is caught too). */
    if (size > 1) {
        size_t half = size / 2, hl = 0;
        char *pre = malloc(half);
        const char *a;

        if (pre != NULL) {
            memcpy(pre, buf, half);
            a = cmcd_find_sid(pre, half, &hl);
            if (a != NULL)
                check_inside(pre, half, a, hl, "prefix sid outside the prefix");
            free(pre);
        }
    }
    fuzz_parsers(buf, size);
    free(buf);
    return 0;
}
